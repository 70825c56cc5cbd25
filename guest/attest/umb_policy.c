//  umb_policy - attestation policy: loading (fails closed) and the SNP checks
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <czmq.h>
#include <jansson.h>
#include <openssl/x509.h>
#include "umb_policy.h"
#include "umb_hex.h"
#include "umb_reason.h"

struct _umb_policy_t {
    umb_snp_policy_t snp;
    bool             tdx_given;     //  the file had a "tdx" part
    umb_tdx_policy_t tdx;
};

static void
s_snp_defaults (umb_snp_policy_t *snp)
{
    memset (snp, 0, sizeof *snp);
    snp->measurement_count = -1;
    snp->allow_debug = false;
    snp->policy_must_clear = UMB_SNP_POLICY_DEBUG;
    snp->min_bootloader = snp->min_tee = snp->min_snp = snp->min_microcode = snp->min_fmc = -1;
    snp->vmpl = -1;
    snp->max_vmpl = -1;
    snp->product_count = -1;
    snp->min_guest_svn = -1;
}

umb_policy_t *
umb_policy_new (void)
{
    umb_policy_t *self = (umb_policy_t *) calloc (1, sizeof (umb_policy_t));
    if (!self)
        return NULL;
    s_snp_defaults (&self->snp);
    self->tdx.allow_debug = false;
    return self;
}

void
umb_policy_destroy (umb_policy_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

const umb_snp_policy_t *
umb_policy_snp (const umb_policy_t *self)
{
    assert (self);
    return &self->snp;
}

const umb_tdx_policy_t *
umb_policy_tdx (const umb_policy_t *self)
{
    assert (self);
    return &self->tdx;
}

bool
umb_policy_pins_measurement (const umb_policy_t *self, const char *platform)
{
    assert (self);
    assert (platform);
    if (streq (platform, "snp"))
        return self->snp.measurement_count >= 0;
    if (streq (platform, "tdx"))
        return self->tdx_given && self->tdx.mr_td.set;
    return false;
}

//  ---------------------------------------------------------------- loading

//  Exactly size bytes of hex from a JSON string
static int
s_hex (json_t *value, const char *where, uint8_t *out, size_t size, char *reason, size_t reason_size)
{
    const char *text = json_string_value (value);
    if (!text)
        return umb_reason_set (reason, reason_size, "%s: expected a string of %zu hex digits", where, 2 * size);
    if (strlen (text) != 2 * size)
        return umb_reason_set (reason, reason_size, "%s: expected %zu hex digits, got %zu",
                               where, 2 * size, strlen (text));
    if (umb_hex_decode (text, out, size)) {
        size_t at = 0;
        while (umb_hex_digit (text [at]) >= 0)
            at++;
        return umb_reason_set (reason, reason_size, "%s: not a hex digit at position %zu", where, at - at % 2);
    }
    return 0;
}

static int
s_integer (json_t *value, const char *where, int64_t min, int64_t max, int64_t *out,
           char *reason, size_t reason_size)
{
    if (!json_is_integer (value))
        return umb_reason_set (reason, reason_size, "%s: expected an integer", where);
    json_int_t number = json_integer_value (value);
    if (number < min || number > max)
        return umb_reason_set (reason, reason_size, "%s: %lld is out of range %lld..%lld", where,
                               (long long) number, (long long) min, (long long) max);
    *out = number;
    return 0;
}

static int
s_bool (json_t *value, const char *where, bool *out, char *reason, size_t reason_size)
{
    if (!json_is_boolean (value))
        return umb_reason_set (reason, reason_size, "%s: expected true or false", where);
    *out = json_is_true (value);
    return 0;
}

//  A u64 as a hex string ("0x" optional, 1..16 digits); JSON integers
//  cannot hold every mask
static int
s_u64_hex (json_t *value, const char *where, uint64_t *out, char *reason, size_t reason_size)
{
    const char *text = json_string_value (value);
    if (!text)
        return umb_reason_set (reason, reason_size, "%s: expected a hex string like \"0x1\"", where);
    if (text [0] == '0' && (text [1] == 'x' || text [1] == 'X'))
        text += 2;
    size_t length = strlen (text);
    if (length == 0 || length > 16)
        return umb_reason_set (reason, reason_size, "%s: expected 1..16 hex digits", where);
    uint64_t number = 0;
    for (size_t i = 0; i < length; i++) {
        int digit = umb_hex_digit (text [i]);
        if (digit < 0)
            return umb_reason_set (reason, reason_size, "%s: not a hex digit at position %zu", where, i);
        number = number << 4 | (uint64_t) digit;
    }
    *out = number;
    return 0;
}

//  A list of 48-byte hex values into a TDX policy list
static int
s_tdx_list (json_t *value, const char *where, umb_tdx_policy_list_t *list, char *reason, size_t reason_size)
{
    if (!json_is_array (value))
        return umb_reason_set (reason, reason_size, "%s: expected a list of hex strings", where);
    if (json_array_size (value) > UMB_TDX_POLICY_MAX_VALUES)
        return umb_reason_set (reason, reason_size, "%s: more than %d values", where, UMB_TDX_POLICY_MAX_VALUES);
    list->set = true;
    list->count = 0;
    size_t index;
    json_t *item;
    json_array_foreach (value, index, item) {
        char item_where [128];
        snprintf (item_where, sizeof item_where, "%.64s[%zu]", where, index);
        if (s_hex (item, item_where, list->values [index], UMB_TDX_MEASUREMENT_SIZE, reason, reason_size))
            return -1;
        list->count++;
    }
    return 0;
}

static int
s_mask_value (json_t *value, const char *where, bool *set, uint64_t *mask, uint64_t *expected,
              char *reason, size_t reason_size)
{
    if (!json_is_object (value))
        return umb_reason_set (reason, reason_size, "%s: expected {\"mask\": \"0x..\", \"value\": \"0x..\"}", where);
    const char *key;
    json_t *item;
    bool has_mask = false, has_value = false;
    json_object_foreach (value, key, item) {
        char item_where [128];
        snprintf (item_where, sizeof item_where, "%.64s.%.32s", where, key);
        if (streq (key, "mask")) {
            if (s_u64_hex (item, item_where, mask, reason, reason_size))
                return -1;
            has_mask = true;
        }
        else
        if (streq (key, "value")) {
            if (s_u64_hex (item, item_where, expected, reason, reason_size))
                return -1;
            has_value = true;
        }
        else
            return umb_reason_set (reason, reason_size, "%s: unknown key '%s'", where, key);
    }
    if (!has_mask || !has_value)
        return umb_reason_set (reason, reason_size, "%s: needs both mask and value", where);
    *set = true;
    return 0;
}

static int
s_parse_tdx (json_t *object, umb_tdx_policy_t *tdx, char *reason, size_t reason_size)
{
    if (!json_is_object (object))
        return umb_reason_set (reason, reason_size, "tdx: expected an object");
    const char *key;
    json_t *value;
    json_object_foreach (object, key, value) {
        char where [64];
        snprintf (where, sizeof where, "tdx.%s", key);
        int rc = 0;
        if (streq (key, "mr_td"))
            rc = s_tdx_list (value, where, &tdx->mr_td, reason, reason_size);
        else
        if (streq (key, "mr_seam"))
            rc = s_tdx_list (value, where, &tdx->mr_seam, reason, reason_size);
        else
        if (streq (key, "mr_config_id"))
            rc = s_tdx_list (value, where, &tdx->mr_config_id, reason, reason_size);
        else
        if (streq (key, "mr_owner"))
            rc = s_tdx_list (value, where, &tdx->mr_owner, reason, reason_size);
        else
        if (streq (key, "mr_owner_config"))
            rc = s_tdx_list (value, where, &tdx->mr_owner_config, reason, reason_size);
        else
        if (strlen (key) == 5 && strncmp (key, "rtmr", 4) == 0 && key [4] >= '0' && key [4] <= '3') {
            umb_tdx_policy_value_t *rtmr = &tdx->rtmr [key [4] - '0'];
            rc = s_hex (value, where, rtmr->value, UMB_TDX_MEASUREMENT_SIZE, reason, reason_size);
            rtmr->set = rc == 0;
        }
        else
        if (streq (key, "allow_debug"))
            rc = s_bool (value, where, &tdx->allow_debug, reason, reason_size);
        else
        if (streq (key, "td_attributes"))
            rc = s_mask_value (value, where, &tdx->td_attributes_set, &tdx->td_attributes_mask,
                               &tdx->td_attributes_value, reason, reason_size);
        else
        if (streq (key, "xfam"))
            rc = s_mask_value (value, where, &tdx->xfam_set, &tdx->xfam_mask, &tdx->xfam_value,
                               reason, reason_size);
        else
        if (streq (key, "min_tee_tcb_svn")) {
            rc = s_hex (value, where, tdx->min_tee_tcb_svn, 16, reason, reason_size);
            tdx->min_tee_tcb_svn_set = rc == 0;
        }
        else
        if (streq (key, "report_data")) {
            rc = s_hex (value, where, tdx->report_data, UMB_TDX_REPORT_DATA_SIZE, reason, reason_size);
            tdx->report_data_set = rc == 0;
        }
        else
            return umb_reason_set (reason, reason_size, "tdx: unknown key '%s'", key);
        if (rc)
            return -1;
    }
    return 0;
}

//  Boolean keys that constrain one GUEST_POLICY bit: value that constrains,
//  and whether the bit must then be clear (allow_*: false) or set (require_*: true)
static const struct {
    const char *key;
    uint64_t    bit;
    bool        must_set;
} s_policy_bits [] = {
    { "allow_smt",                  UMB_SNP_POLICY_SMT,               false },
    { "allow_migration_agent",      UMB_SNP_POLICY_MIGRATE_MA,        false },
    { "allow_cxl",                  UMB_SNP_POLICY_CXL_ALLOW,         false },
    { "require_single_socket",      UMB_SNP_POLICY_SINGLE_SOCKET,     true },
    { "require_mem_aes_256_xts",    UMB_SNP_POLICY_MEM_AES_256_XTS,   true },
    { "require_rapl_disabled",      UMB_SNP_POLICY_RAPL_DIS,          true },
    { "require_ciphertext_hiding",  UMB_SNP_POLICY_CIPHERTEXT_HIDING, true },
    { "require_page_swap_disabled", UMB_SNP_POLICY_PAGE_SWAP_DISABLE, true },
};

static const struct {
    const char *name;
    unsigned    bit;
} s_products [] = {
    { "Milan", UMB_SNP_PRODUCT_MILAN },
    { "Genoa", UMB_SNP_PRODUCT_GENOA },
    { "Turin", UMB_SNP_PRODUCT_TURIN },
};

const char *
umb_policy_product_name (unsigned product)
{
    for (size_t i = 0; i < sizeof s_products / sizeof s_products [0]; i++)
        if (product == s_products [i].bit)
            return s_products [i].name;
    return "unknown";
}

static int
s_product (json_t *value, const char *where, unsigned *bit, char *reason, size_t reason_size)
{
    const char *name = json_string_value (value);
    for (size_t i = 0; name && i < sizeof s_products / sizeof s_products [0]; i++)
        if (streq (name, s_products [i].name)) {
            *bit = s_products [i].bit;
            return 0;
        }
    return umb_reason_set (reason, reason_size, "%s: expected \"Milan\", \"Genoa\" or \"Turin\"", where);
}

static int
s_parse_min_tcb (json_t *object, umb_snp_policy_t *snp, char *reason, size_t reason_size)
{
    if (!json_is_object (object))
        return umb_reason_set (reason, reason_size, "snp.min_tcb: expected an object");
    const char *key;
    json_t *value;
    json_object_foreach (object, key, value) {
        char where [64];
        snprintf (where, sizeof where, "snp.min_tcb.%s", key);
        int *field = streq (key, "bootloader")? &snp->min_bootloader:
                     streq (key, "tee")?        &snp->min_tee:
                     streq (key, "snp")?        &snp->min_snp:
                     streq (key, "microcode")?  &snp->min_microcode:
                     streq (key, "fmc")?        &snp->min_fmc: NULL;
        if (!field)
            return umb_reason_set (reason, reason_size, "snp.min_tcb: unknown key '%s'", key);
        int64_t number = 0;
        if (s_integer (value, where, 0, 255, &number, reason, reason_size))
            return -1;
        *field = (int) number;
    }
    return 0;
}

static int
s_parse_snp (json_t *object, umb_snp_policy_t *snp, char *reason, size_t reason_size)
{
    if (!json_is_object (object))
        return umb_reason_set (reason, reason_size, "snp: expected an object");
    const char *key;
    json_t *value;
    json_object_foreach (object, key, value) {
        char where [64];
        snprintf (where, sizeof where, "snp.%s", key);
        int64_t number = 0;
        bool flag = false;
        bool known = false;
        for (size_t i = 0; i < sizeof s_policy_bits / sizeof s_policy_bits [0]; i++)
            if (streq (key, s_policy_bits [i].key)) {
                known = true;
                if (s_bool (value, where, &flag, reason, reason_size))
                    return -1;
                if (s_policy_bits [i].must_set && flag)
                    snp->policy_must_set |= s_policy_bits [i].bit;
                if (!s_policy_bits [i].must_set && !flag)
                    snp->policy_must_clear |= s_policy_bits [i].bit;
            }
        if (known)
            continue;
        if (streq (key, "measurements")) {
            if (!json_is_array (value))
                return umb_reason_set (reason, reason_size, "%s: expected a list of hex strings", where);
            if (json_array_size (value) > UMB_POLICY_MAX_VALUES)
                return umb_reason_set (reason, reason_size, "%s: more than %d values", where, UMB_POLICY_MAX_VALUES);
            size_t index;
            json_t *item;
            snp->measurement_count = 0;
            json_array_foreach (value, index, item) {
                char item_where [128];
                snprintf (item_where, sizeof item_where, "%.64s[%zu]", where, index);
                if (s_hex (item, item_where, snp->measurements [index], 48, reason, reason_size))
                    return -1;
                snp->measurement_count++;
            }
        }
        else
        if (streq (key, "allow_debug")) {
            if (s_bool (value, where, &snp->allow_debug, reason, reason_size))
                return -1;
            if (snp->allow_debug)
                snp->policy_must_clear &= ~UMB_SNP_POLICY_DEBUG;
            else
                snp->policy_must_clear |= UMB_SNP_POLICY_DEBUG;
        }
        else
        if (streq (key, "min_tcb")) {
            if (s_parse_min_tcb (value, snp, reason, reason_size))
                return -1;
        }
        else
        if (streq (key, "vmpl")) {
            if (s_integer (value, where, 0, 3, &number, reason, reason_size))
                return -1;
            snp->vmpl = (int) number;
        }
        else
        if (streq (key, "max_vmpl")) {
            if (s_integer (value, where, 0, 3, &number, reason, reason_size))
                return -1;
            snp->max_vmpl = (int) number;
        }
        else
        if (streq (key, "report_data")) {
            if (s_hex (value, where, snp->report_data, 64, reason, reason_size))
                return -1;
            snp->report_data_set = true;
        }
        else
        if (streq (key, "host_data")) {
            if (s_hex (value, where, snp->host_data, 32, reason, reason_size))
                return -1;
            snp->host_data_set = true;
        }
        else
        if (streq (key, "family_id")) {
            if (s_hex (value, where, snp->family_id, 16, reason, reason_size))
                return -1;
            snp->family_id_set = true;
        }
        else
        if (streq (key, "image_id")) {
            if (s_hex (value, where, snp->image_id, 16, reason, reason_size))
                return -1;
            snp->image_id_set = true;
        }
        else
        if (streq (key, "min_guest_svn")) {
            if (s_integer (value, where, 0, UINT32_MAX, &snp->min_guest_svn, reason, reason_size))
                return -1;
        }
        else
        if (streq (key, "product")) {
            unsigned bit = 0;
            snp->products = 0;
            if (json_is_string (value)) {
                if (s_product (value, where, &bit, reason, reason_size))
                    return -1;
                snp->products = bit;
                snp->product_count = 1;
            }
            else
            if (json_is_array (value)) {
                size_t index;
                json_t *item;
                snp->product_count = 0;
                json_array_foreach (value, index, item) {
                    char item_where [128];
                    snprintf (item_where, sizeof item_where, "%.64s[%zu]", where, index);
                    if (s_product (item, item_where, &bit, reason, reason_size))
                        return -1;
                    snp->products |= bit;
                    snp->product_count++;
                }
            }
            else
                return umb_reason_set (reason, reason_size, "%s: expected a product name or a list of them", where);
        }
        else
            return umb_reason_set (reason, reason_size, "snp: unknown key '%s'", key);
    }
    return 0;
}

umb_policy_t *
umb_policy_parse (const char *text, char *reason, size_t reason_size)
{
    assert (text);
    json_error_t error;
    json_t *root = json_loads (text, JSON_REJECT_DUPLICATES, &error);
    if (!root) {
        umb_reason_set (reason, reason_size, "not valid JSON: %s (line %d)", error.text, error.line);
        return NULL;
    }
    umb_policy_t *self = umb_policy_new ();
    int rc = self? 0: umb_reason_set (reason, reason_size, "out of memory");
    if (rc == 0 && !json_is_object (root))
        rc = umb_reason_set (reason, reason_size, "a policy is a JSON object");
    const char *key;
    json_t *value;
    if (rc == 0)
        json_object_foreach (root, key, value) {
            if (streq (key, "snp"))
                rc = s_parse_snp (value, &self->snp, reason, reason_size);
            else
            if (streq (key, "tdx")) {
                rc = s_parse_tdx (value, &self->tdx, reason, reason_size);
                self->tdx_given = true;
            }
            else
            if (streq (key, "comment"))
                rc = json_is_string (value)? 0: umb_reason_set (reason, reason_size, "comment: expected a string");
            else
                rc = umb_reason_set (reason, reason_size, "unknown key '%s' (expected snp, tdx, comment)", key);
            if (rc)
                break;
        }
    json_decref (root);
    if (rc)
        umb_policy_destroy (&self);
    return self;
}

#define S_MAX_POLICY_FILE (1 << 20)

umb_policy_t *
umb_policy_load (const char *path, char *reason, size_t reason_size)
{
    assert (path);
    FILE *file = fopen (path, "rb");
    if (!file) {
        umb_reason_set (reason, reason_size, "cannot read policy %s: %s", path, strerror (errno));
        return NULL;
    }
    char *text = (char *) malloc (S_MAX_POLICY_FILE + 1);
    size_t size = text? fread (text, 1, S_MAX_POLICY_FILE + 1, file): 0;
    bool failed = ferror (file);
    fclose (file);
    if (!text || failed || size > S_MAX_POLICY_FILE) {
        umb_reason_set (reason, reason_size, "cannot read policy %s: %s", path,
                        !text? "out of memory": failed? "read error": "larger than 1 MiB");
        free (text);
        return NULL;
    }
    text [size] = 0;
    if (strlen (text) != size) {
        free (text);
        umb_reason_set (reason, reason_size, "policy %s: holds a NUL byte", path);
        return NULL;
    }
    char why [200] = "";
    umb_policy_t *self = umb_policy_parse (text, why, sizeof why);
    free (text);
    if (!self)
        umb_reason_set (reason, reason_size, "policy %s: %s", path, why);
    return self;
}

//  ---------------------------------------------------------------- checks

unsigned
umb_policy_snp_product (umb_snp_report_t *report, X509 *vcek)
{
    if (vcek) {
        char issuer [64] = "";
        if (X509_NAME_get_text_by_NID (X509_get_issuer_name (vcek), NID_commonName,
                                       issuer, sizeof issuer) > 0) {
            const char *name = strncmp (issuer, "SEV-VLEK-", 9) == 0? issuer + 9:
                               strncmp (issuer, "SEV-", 4) == 0? issuer + 4: "";
            for (size_t i = 0; i < sizeof s_products / sizeof s_products [0]; i++)
                if (streq (name, s_products [i].name))
                    return s_products [i].bit;
        }
        return 0;
    }
    uint8_t family = 0, model = 0;
    if (!report || !umb_snp_report_cpuid (report, &family, &model, NULL))
        return 0;
    if (family == 0x19 && model <= 0x0F)
        return UMB_SNP_PRODUCT_MILAN;
    if (family == 0x19 && ((model >= 0x10 && model <= 0x1F) || (model >= 0xA0 && model <= 0xAF)))
        return UMB_SNP_PRODUCT_GENOA;
    if (family == 0x1A)
        return UMB_SNP_PRODUCT_TURIN;
    return 0;
}

static int
s_check_min (const char *name, int actual, int minimum, char *reason, size_t size)
{
    if (minimum >= 0 && actual < minimum)
        return umb_reason_set (reason, size, "reported TCB %s SPL %d is below the policy minimum %d",
                               name, actual, minimum);
    return 0;
}

int
umb_policy_check_snp (const umb_policy_t *self, umb_snp_report_t *report, X509 *vcek,
                      char *reason, size_t size)
{
    assert (self);
    if (!report)
        return umb_reason_set (reason, size, "no report");
    const umb_snp_policy_t *snp = &self->snp;
    char hex [129];

    uint64_t guest_policy = umb_snp_report_policy (report);
    if ((guest_policy & UMB_SNP_POLICY_DEBUG) && !snp->allow_debug)
        return umb_reason_set (reason, size, "guest policy 0x%llx allows debugging (DEBUG, bit 19) and the policy"
                               " does not allow_debug", (unsigned long long) guest_policy);
    uint64_t wrong_set = guest_policy & snp->policy_must_clear;
    if (wrong_set)
        return umb_reason_set (reason, size, "guest policy 0x%llx has bit(s) 0x%llx set that the policy forbids",
                               (unsigned long long) guest_policy, (unsigned long long) wrong_set);
    uint64_t missing = ~guest_policy & snp->policy_must_set;
    if (missing)
        return umb_reason_set (reason, size, "guest policy 0x%llx lacks bit(s) 0x%llx that the policy requires",
                               (unsigned long long) guest_policy, (unsigned long long) missing);

    if (snp->measurement_count >= 0) {
        const uint8_t *measurement = umb_snp_report_measurement (report);
        bool found = false;
        for (int i = 0; i < snp->measurement_count && !found; i++)
            found = memcmp (snp->measurements [i], measurement, 48) == 0;
        if (!found) {
            umb_hex_encode (measurement, 48, hex);
            return umb_reason_set (reason, size, snp->measurement_count == 0
                                   ? "measurement %s: the policy's measurements list is empty (allows none)"
                                   : "measurement %s is not one the policy allows", hex);
        }
    }
    unsigned product = 0;
    bool need_product = snp->product_count >= 0 || snp->min_bootloader >= 0 || snp->min_tee >= 0
                     || snp->min_snp >= 0 || snp->min_microcode >= 0 || snp->min_fmc >= 0;
    if (need_product) {
        product = umb_policy_snp_product (report, vcek);
        if (!product)
            return umb_reason_set (reason, size, "cannot tell the report's product (Milan, Genoa, Turin),"
                                   " which the policy needs");
    }
    if (snp->product_count >= 0 && !(snp->products & product))
        return umb_reason_set (reason, size, "product %s is not one the policy allows%s",
                               umb_policy_product_name (product),
                               snp->product_count == 0? " (its product list is empty)": "");
    if (need_product) {
        uint64_t tcb = umb_snp_report_reported_tcb (report);
        int bl, tee, spl, ucode, fmc = -1;
        if (product == UMB_SNP_PRODUCT_TURIN) {
            fmc = (int) (tcb & 0xFF);
            bl = (int) (tcb >> 8 & 0xFF);
            tee = (int) (tcb >> 16 & 0xFF);
            spl = (int) (tcb >> 24 & 0xFF);
        }
        else {
            bl = (int) (tcb & 0xFF);
            tee = (int) (tcb >> 8 & 0xFF);
            spl = (int) (tcb >> 48 & 0xFF);
        }
        ucode = (int) (tcb >> 56 & 0xFF);
        if (s_check_min ("bootloader", bl, snp->min_bootloader, reason, size)
        ||  s_check_min ("tee", tee, snp->min_tee, reason, size)
        ||  s_check_min ("snp", spl, snp->min_snp, reason, size)
        ||  s_check_min ("microcode", ucode, snp->min_microcode, reason, size)
        ||  (fmc >= 0 && s_check_min ("fmc", fmc, snp->min_fmc, reason, size)))
            return -1;
    }
    uint32_t vmpl = umb_snp_report_vmpl (report);
    if (snp->vmpl >= 0 && vmpl != (uint32_t) snp->vmpl)
        return umb_reason_set (reason, size, "VMPL %u is not the policy's %d", vmpl, snp->vmpl);
    if (snp->max_vmpl >= 0 && vmpl > (uint32_t) snp->max_vmpl)
        return umb_reason_set (reason, size, "VMPL %u is above the policy's maximum %d", vmpl, snp->max_vmpl);
    if (snp->report_data_set && memcmp (snp->report_data, umb_snp_report_report_data (report), 64)) {
        umb_hex_encode (umb_snp_report_report_data (report), 64, hex);
        return umb_reason_set (reason, size, "report_data %s is not the policy's", hex);
    }
    if (snp->host_data_set && memcmp (snp->host_data, umb_snp_report_host_data (report), 32)) {
        umb_hex_encode (umb_snp_report_host_data (report), 32, hex);
        return umb_reason_set (reason, size, "host_data %s is not the policy's", hex);
    }
    if (snp->family_id_set && memcmp (snp->family_id, umb_snp_report_family_id (report), 16)) {
        umb_hex_encode (umb_snp_report_family_id (report), 16, hex);
        return umb_reason_set (reason, size, "family_id %s is not the policy's", hex);
    }
    if (snp->image_id_set && memcmp (snp->image_id, umb_snp_report_image_id (report), 16)) {
        umb_hex_encode (umb_snp_report_image_id (report), 16, hex);
        return umb_reason_set (reason, size, "image_id %s is not the policy's", hex);
    }
    uint32_t svn = umb_snp_report_guest_svn (report);
    if (snp->min_guest_svn >= 0 && (int64_t) svn < snp->min_guest_svn)
        return umb_reason_set (reason, size, "guest_svn %u is below the policy minimum %lld", svn,
                               (long long) snp->min_guest_svn);
    return 0;
}

int
umb_policy_check_tdx (const umb_policy_t *self, umb_tdx_quote_t *quote, char *reason, size_t size)
{
    assert (self);
    if (!quote)
        return umb_reason_set (reason, size, "no quote");
    if (self->tdx_given)
        return umb_tdx_check_policy (quote, &self->tdx, reason, size);
    uint64_t attributes = umb_tdx_quote_td_attributes (quote);
    if (attributes & UMB_TDX_TD_ATTR_DEBUG)
        return umb_reason_set (reason, size, "TD attributes 0x%llx allow debugging (DEBUG, bit 0) and the policy"
                               " does not allow_debug", (unsigned long long) attributes);
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest

static umb_snp_report_t *
s_test_report (const char *name, X509 **cert, const char *cert_name)
{
    char path [512];
    snprintf (path, sizeof path, "%s/sev-snp/%s", UMB_VECTORS_DIR, name);
    FILE *file = fopen (path, "rb");
    assert (file);
    uint8_t data [UMB_SNP_REPORT_SIZE + 1];
    size_t size = fread (data, 1, sizeof data, file);
    fclose (file);
    assert (size == UMB_SNP_REPORT_SIZE);
    umb_snp_report_t *report = umb_snp_report_parse (data, size, NULL, 0);
    assert (report);
    if (cert) {
        snprintf (path, sizeof path, "%s/sev-snp/%s", UMB_VECTORS_DIR, cert_name);
        file = fopen (path, "rb");
        assert (file);
        *cert = d2i_X509_fp (file, NULL);
        fclose (file);
        assert (*cert);
    }
    return report;
}

//  Parses the policy (which must load) and checks the report with it
static int
s_check (const char *json, umb_snp_report_t *report, X509 *vcek, char *reason, size_t size)
{
    char why [256] = "";
    umb_policy_t *policy = umb_policy_parse (json, why, sizeof why);
    if (!policy)
        fprintf (stderr, "umb_policy: %s: %s\n", json, why);
    assert (policy);
    int rc = umb_policy_check_snp (policy, report, vcek, reason, size);
    umb_policy_destroy (&policy);
    return rc;
}

static void
s_expect (const char *json, umb_snp_report_t *report, X509 *vcek, bool pass, const char *why)
{
    char reason [256] = "";
    int rc = s_check (json, report, vcek, reason, sizeof reason);
    if ((rc == 0) != pass || (!pass && why && !strstr (reason, why))) {
        fprintf (stderr, "umb_policy: %s: expected %s (%s), got rc=%d '%s'\n", json,
                 pass? "pass": "refusal", why? why: "", rc, reason);
        assert (false);
    }
}

static void
s_refuse_load (const char *json, const char *why)
{
    char reason [256] = "";
    umb_policy_t *policy = umb_policy_parse (json, reason, sizeof reason);
    if (policy || !strstr (reason, why)) {
        fprintf (stderr, "umb_policy: %s: expected a load refusal saying '%s', got '%s'\n", json, why, reason);
        assert (false);
    }
}

void
umb_policy_test (bool verbose)
{
    printf (" * umb_policy: ");
    if (verbose)
        printf ("\n");
    //  trustee/test-report.bin: policy 0x3001f, vmpl 0, guest_svn 4, family 01.., image 02..,
    //  reported TCB bl=3 tee=0 snp=8 ucode=115 (0x73), Milan
    X509 *vcek = NULL;
    umb_snp_report_t *report = s_test_report ("trustee/test-report.bin", &vcek, "trustee/test-vcek.der");
    const char *measurement = "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c";
    const char *other = "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01";
    char json [2048];

    //  Defaults: everything passes but debug; nothing pinned
    umb_policy_t *policy = umb_policy_new ();
    assert (policy);
    assert (!umb_policy_pins_measurement (policy, "snp"));
    assert (!umb_policy_pins_measurement (policy, "tdx"));
    assert (!umb_policy_pins_measurement (policy, "none"));
    assert (umb_policy_snp (policy)->policy_must_clear == UMB_SNP_POLICY_DEBUG);
    char reason [256] = "";
    assert (umb_policy_check_snp (policy, report, vcek, reason, sizeof reason) == 0);
    assert (umb_policy_check_snp (policy, NULL, vcek, reason, sizeof reason) == -1);
    umb_policy_destroy (&policy);
    umb_policy_destroy (&policy);
    s_expect ("{}", report, vcek, true, NULL);
    s_expect ("{\"snp\": {}, \"comment\": \"empty\"}", report, vcek, true, NULL);

    //  measurements
    snprintf (json, sizeof json, "{\"snp\": {\"measurements\": [\"%s\", \"%s\"]}}", other, measurement);
    s_expect (json, report, vcek, true, NULL);
    policy = umb_policy_parse (json, reason, sizeof reason);
    assert (policy && umb_policy_pins_measurement (policy, "snp"));
    assert (umb_policy_snp (policy)->measurement_count == 2);
    umb_policy_destroy (&policy);
    snprintf (json, sizeof json, "{\"snp\": {\"measurements\": [\"%s\"]}}", other);
    s_expect (json, report, vcek, false, "not one the policy allows");
    s_expect ("{\"snp\": {\"measurements\": []}}", report, vcek, false, "empty");
    s_refuse_load ("{\"snp\": {\"measurements\": [\"a1f3\"]}}", "96 hex digits");
    s_refuse_load ("{\"snp\": {\"measurements\": \"a1f3\"}}", "list");
    snprintf (json, sizeof json, "{\"snp\": {\"measurements\": [\"%.94szz\"]}}", measurement);
    s_refuse_load (json, "hex digit");

    //  debug and the other guest policy bits (0x3001f: SMT on, no debug, no single socket)
    s_expect ("{\"snp\": {\"allow_debug\": false}}", report, vcek, true, NULL);
    s_expect ("{\"snp\": {\"allow_smt\": true}}", report, vcek, true, NULL);
    s_expect ("{\"snp\": {\"allow_smt\": false}}", report, vcek, false, "forbids");
    s_expect ("{\"snp\": {\"allow_migration_agent\": false, \"allow_cxl\": false}}", report, vcek, true, NULL);
    s_expect ("{\"snp\": {\"require_single_socket\": false}}", report, vcek, true, NULL);
    s_expect ("{\"snp\": {\"require_single_socket\": true}}", report, vcek, false, "requires");
    s_expect ("{\"snp\": {\"require_mem_aes_256_xts\": true}}", report, vcek, false, "requires");
    s_expect ("{\"snp\": {\"require_rapl_disabled\": true}}", report, vcek, false, "requires");
    s_expect ("{\"snp\": {\"require_ciphertext_hiding\": true}}", report, vcek, false, "requires");
    s_expect ("{\"snp\": {\"require_page_swap_disabled\": true}}", report, vcek, false, "requires");
    s_refuse_load ("{\"snp\": {\"allow_debug\": 1}}", "true or false");
    {
        //  go-sev-guest's report (policy 0xb0000) allows debugging
        X509 *debug_vcek = NULL;
        umb_snp_report_t *debug = s_test_report ("go-sev-guest/attestation.bin", &debug_vcek,
                                                 "go-sev-guest/vcek.testcer");
        s_expect ("{}", debug, debug_vcek, false, "DEBUG");
        s_expect ("{\"snp\": {\"allow_debug\": false}}", debug, debug_vcek, false, "DEBUG");
        s_expect ("{\"snp\": {\"allow_debug\": true}}", debug, debug_vcek, true, NULL);
        umb_snp_report_destroy (&debug);
        X509_free (debug_vcek);
    }
    //  min_tcb: bl=3 tee=0 snp=8 ucode=115
    s_expect ("{\"snp\": {\"min_tcb\": {\"bootloader\": 3, \"tee\": 0, \"snp\": 8, \"microcode\": 115}}}",
              report, vcek, true, NULL);
    s_expect ("{\"snp\": {\"min_tcb\": {\"bootloader\": 4}}}", report, vcek, false, "bootloader SPL 3");
    s_expect ("{\"snp\": {\"min_tcb\": {\"tee\": 1}}}", report, vcek, false, "tee SPL 0");
    s_expect ("{\"snp\": {\"min_tcb\": {\"snp\": 9}}}", report, vcek, false, "snp SPL 8");
    s_expect ("{\"snp\": {\"min_tcb\": {\"microcode\": 116}}}", report, vcek, false, "microcode SPL 115");
    s_expect ("{\"snp\": {\"min_tcb\": {\"fmc\": 200}}}", report, vcek, true, NULL);   //  Turin only
    s_refuse_load ("{\"snp\": {\"min_tcb\": {\"microcode\": 256}}}", "out of range");
    s_refuse_load ("{\"snp\": {\"min_tcb\": {\"ucode\": 1}}}", "unknown key 'ucode'");
    //  vmpl (0)
    s_expect ("{\"snp\": {\"vmpl\": 0, \"max_vmpl\": 0}}", report, vcek, true, NULL);
    s_expect ("{\"snp\": {\"vmpl\": 1}}", report, vcek, false, "VMPL 0");
    s_refuse_load ("{\"snp\": {\"vmpl\": 4}}", "out of range");
    s_refuse_load ("{\"snp\": {\"max_vmpl\": -1}}", "out of range");
    {
        X509 *vlek = NULL;
        umb_snp_report_t *vmpl1 = s_test_report ("trustee/test-vlek-report.bin", &vlek, "trustee/test-vlek.der");
        s_expect ("{\"snp\": {\"max_vmpl\": 0}}", vmpl1, vlek, false, "above");
        s_expect ("{\"snp\": {\"max_vmpl\": 1, \"vmpl\": 1, \"product\": \"Milan\"}}", vmpl1, vlek, true, NULL);
        assert (umb_policy_snp_product (vmpl1, vlek) == UMB_SNP_PRODUCT_MILAN);
        //  Version 3: CPUID family 0x19 model 1 is Milan too
        assert (umb_policy_snp_product (vmpl1, NULL) == UMB_SNP_PRODUCT_MILAN);
        umb_snp_report_destroy (&vmpl1);
        X509_free (vlek);
    }
    //  report_data, host_data, family_id, image_id
    s_expect ("{\"snp\": {\"report_data\": \"ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2"
              "0000000000000000000000000000000000000000000000000000000000000000\"}}", report, vcek, true, NULL);
    s_expect ("{\"snp\": {\"report_data\": \"ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2"
              "0000000000000000000000000000000000000000000000000000000000000001\"}}", report, vcek, false,
              "report_data");
    s_refuse_load ("{\"snp\": {\"report_data\": \"00\"}}", "128 hex digits");
    s_expect ("{\"snp\": {\"host_data\": \"0000000000000000000000000000000000000000000000000000000000000000\"}}",
              report, vcek, true, NULL);
    s_expect ("{\"snp\": {\"host_data\": \"0100000000000000000000000000000000000000000000000000000000000000\"}}",
              report, vcek, false, "host_data");
    s_refuse_load ("{\"snp\": {\"host_data\": \"000000\"}}", "64 hex digits");
    s_expect ("{\"snp\": {\"family_id\": \"01000000000000000000000000000000\","
              " \"image_id\": \"02000000000000000000000000000000\"}}", report, vcek, true, NULL);
    s_expect ("{\"snp\": {\"family_id\": \"02000000000000000000000000000000\"}}", report, vcek, false, "family_id");
    s_expect ("{\"snp\": {\"image_id\": \"01000000000000000000000000000000\"}}", report, vcek, false, "image_id");
    s_refuse_load ("{\"snp\": {\"image_id\": \"01\"}}", "32 hex digits");
    //  product
    s_expect ("{\"snp\": {\"product\": \"Milan\"}}", report, vcek, true, NULL);
    s_expect ("{\"snp\": {\"product\": [\"Genoa\", \"Milan\"]}}", report, vcek, true, NULL);
    s_expect ("{\"snp\": {\"product\": \"Genoa\"}}", report, vcek, false, "product Milan");
    s_expect ("{\"snp\": {\"product\": [\"Turin\"]}}", report, vcek, false, "product Milan");
    s_expect ("{\"snp\": {\"product\": []}}", report, vcek, false, "empty");
    s_refuse_load ("{\"snp\": {\"product\": \"milan\"}}", "expected \"Milan\"");
    s_refuse_load ("{\"snp\": {\"product\": 1}}", "product name");
    //  Version 2 reports carry no CPUID: without the certificate the product is unknown
    {
        char why [256];
        umb_policy_t *milan = umb_policy_parse ("{\"snp\": {\"product\": \"Milan\"}}", why, sizeof why);
        assert (milan);
        assert (umb_policy_check_snp (milan, report, NULL, why, sizeof why) == -1);
        assert (strstr (why, "cannot tell"));
        umb_policy_destroy (&milan);
    }
    //  min_guest_svn (4)
    s_expect ("{\"snp\": {\"min_guest_svn\": 4}}", report, vcek, true, NULL);
    s_expect ("{\"snp\": {\"min_guest_svn\": 5}}", report, vcek, false, "guest_svn 4");
    s_refuse_load ("{\"snp\": {\"min_guest_svn\": 4294967296}}", "out of range");
    s_refuse_load ("{\"snp\": {\"min_guest_svn\": \"4\"}}", "integer");

    //  Typos and junk never load
    s_refuse_load ("{\"snp\": {\"measurement\": []}}", "unknown key 'measurement'");
    s_refuse_load ("{\"snp\": {\"allow_debg\": false}}", "unknown key 'allow_debg'");
    s_refuse_load ("{\"sev\": {}}", "unknown key 'sev'");
    s_refuse_load ("{\"tdx\": {\"mrtd\": []}}", "unknown key 'mrtd'");
    s_refuse_load ("{\"tdx\": {\"td_attributes\": {\"mask\": \"0x1\", \"valu\": \"0x0\"}}}", "unknown key 'valu'");
    s_refuse_load ("{\"snp\": {}, \"snp\": {}}", "duplicate");
    s_refuse_load ("[]", "JSON object");
    s_refuse_load ("{\"snp\": []}", "snp: expected an object");
    s_refuse_load ("{\"snp\": {", "not valid JSON");
    s_refuse_load ("", "not valid JSON");
    s_refuse_load ("{\"comment\": 1}", "comment");

    //  The TDX part: every key lands in umb_tdx_policy_t
    const char *m48 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f";
    snprintf (json, sizeof json,
              "{\"tdx\": {\"mr_td\": [\"%s\"], \"mr_seam\": [], \"mr_config_id\": [\"%s\", \"%s\"],"
              " \"mr_owner\": [\"%s\"], \"mr_owner_config\": [\"%s\"], \"rtmr0\": \"%s\", \"rtmr3\": \"%s\","
              " \"allow_debug\": true, \"td_attributes\": {\"mask\": \"0xffffffffffffffff\", \"value\": \"0x10000000\"},"
              " \"xfam\": {\"mask\": \"e7\", \"value\": \"0X000000e7\"},"
              " \"min_tee_tcb_svn\": \"0102030405060708090a0b0c0d0e0f10\","
              " \"report_data\": \"%s%s\"}}",
              m48, m48, m48, m48, m48, m48, m48, m48, "0102030405060708090a0b0c0d0e0f10");
    policy = umb_policy_parse (json, reason, sizeof reason);
    if (!policy)
        fprintf (stderr, "umb_policy: %s\n", reason);
    assert (policy);
    assert (umb_policy_pins_measurement (policy, "tdx"));
    const umb_tdx_policy_t *tdx = umb_policy_tdx (policy);
    assert (tdx->mr_td.set && tdx->mr_td.count == 1 && tdx->mr_td.values [0][47] == 0x2f);
    assert (tdx->mr_seam.set && tdx->mr_seam.count == 0);
    assert (tdx->mr_config_id.set && tdx->mr_config_id.count == 2);
    assert (tdx->mr_owner.set && tdx->mr_owner.count == 1);
    assert (tdx->mr_owner_config.set && tdx->mr_owner_config.count == 1);
    assert (tdx->rtmr [0].set && !tdx->rtmr [1].set && !tdx->rtmr [2].set && tdx->rtmr [3].set);
    assert (tdx->rtmr [3].value [1] == 0x01);
    assert (tdx->allow_debug);
    assert (tdx->td_attributes_set && tdx->td_attributes_mask == ~0ULL && tdx->td_attributes_value == 0x10000000);
    assert (tdx->xfam_set && tdx->xfam_mask == 0xe7 && tdx->xfam_value == 0xe7);
    assert (tdx->min_tee_tcb_svn_set && tdx->min_tee_tcb_svn [15] == 0x10);
    assert (tdx->report_data_set && tdx->report_data [63] == 0x10);
    //  and leaves the SNP part at its defaults
    assert (umb_policy_snp (policy)->measurement_count == -1);
    assert (umb_policy_snp (policy)->policy_must_clear == UMB_SNP_POLICY_DEBUG);
    umb_policy_destroy (&policy);
    policy = umb_policy_parse ("{\"tdx\": {}}", reason, sizeof reason);
    assert (policy && !umb_policy_pins_measurement (policy, "tdx"));
    assert (!umb_policy_tdx (policy)->allow_debug && !umb_policy_tdx (policy)->mr_td.set);
    umb_policy_destroy (&policy);
    s_refuse_load ("{\"tdx\": {\"mr_td\": [\"00\"]}}", "96 hex digits");
    s_refuse_load ("{\"tdx\": {\"rtmr4\": \"00\"}}", "unknown key 'rtmr4'");
    s_refuse_load ("{\"tdx\": {\"xfam\": {\"mask\": \"0x1\"}}}", "both");
    s_refuse_load ("{\"tdx\": {\"xfam\": {\"mask\": \"0x11111111111111111\", \"value\": \"0\"}}}", "1..16");
    s_refuse_load ("{\"tdx\": {\"min_tee_tcb_svn\": \"01\"}}", "32 hex digits");

    //  Files
    char path [] = "/tmp/umb_policy_test_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    snprintf (json, sizeof json, "{\"snp\": {\"measurements\": [\"%s\"], \"max_vmpl\": 0}}\n", measurement);
    assert (write (fd, json, strlen (json)) == (ssize_t) strlen (json));
    close (fd);
    policy = umb_policy_load (path, reason, sizeof reason);
    assert (policy);
    assert (umb_policy_check_snp (policy, report, vcek, reason, sizeof reason) == 0);
    umb_policy_destroy (&policy);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs ("{\"snp\": {\"max_vmpl\": 0, \"maxvmpl\": 0}}", file);
    fclose (file);
    assert (!umb_policy_load (path, reason, sizeof reason));
    assert (strstr (reason, path) && strstr (reason, "unknown key 'maxvmpl'"));
    unlink (path);
    assert (!umb_policy_load (path, reason, sizeof reason));
    assert (strstr (reason, "cannot read"));

    umb_snp_report_destroy (&report);
    X509_free (vcek);
    printf ("OK\n");
}
