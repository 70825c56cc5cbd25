//  umb_verify - the one attestation verifier (SNP, TDX, none), policy and binding
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "umb_snp.h"
#include "umb_tdx.h"
#include "umb_policy.h"
#include "umb_verify.h"
#include "umb_bytes.h"
#include "umb_hex.h"
#include "umb_reason.h"

struct _umb_verify_result_t {
    umb_verify_platform_t platform;
    bool     insecure;
    bool     bound;
    bool     has_report_data;
    uint8_t  report_data [UMB_VERIFY_REPORT_DATA_SIZE];
    bool     has_measurement;
    uint8_t  measurement [48];
    char    *warnings;              //  "" or lines
    json_t  *json;
};

static const char *const s_platforms [] = { "none", "snp", "tdx" };

const char *
umb_verify_platform_name (umb_verify_platform_t platform)
{
    assert ((unsigned) platform < 3);
    return s_platforms [platform];
}

int
umb_verify_platform_parse (const char *name)
{
    for (int i = 0; name && i < 3; i++)
        if (streq (name, s_platforms [i]))
            return i;
    return -1;
}

int
umb_verify_report_data (const uint8_t agent_key [UMB_VERIFY_AGENT_KEY_SIZE],
                        const uint8_t *nonce, size_t nonce_size,
                        uint8_t out [UMB_VERIFY_REPORT_DATA_SIZE])
{
    assert (agent_key);
    assert (nonce || nonce_size == 0);
    assert (out);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    unsigned int size = 0;
    int ok = ctx
          && EVP_DigestInit_ex (ctx, EVP_sha512 (), NULL) == 1
          && EVP_DigestUpdate (ctx, UMB_VERIFY_CONTEXT, strlen (UMB_VERIFY_CONTEXT)) == 1
          && EVP_DigestUpdate (ctx, agent_key, UMB_VERIFY_AGENT_KEY_SIZE) == 1
          && (nonce_size == 0 || EVP_DigestUpdate (ctx, nonce, nonce_size) == 1)
          && EVP_DigestFinal_ex (ctx, out, &size) == 1
          && size == UMB_VERIFY_REPORT_DATA_SIZE;
    EVP_MD_CTX_free (ctx);
    return ok? 0: -1;
}

//  ---------------------------------------------------------------- results

static umb_verify_result_t *
s_result_new (umb_verify_platform_t platform)
{
    umb_verify_result_t *self = (umb_verify_result_t *) calloc (1, sizeof (umb_verify_result_t));
    if (!self)
        return NULL;
    self->platform = platform;
    self->warnings = strdup ("");
    self->json = json_object ();
    if (!self->warnings || !self->json) {
        umb_verify_result_destroy (&self);
        return NULL;
    }
    json_object_set_new (self->json, "platform", json_string (umb_verify_platform_name (platform)));
    json_object_set_new (self->json, "warnings", json_array ());
    return self;
}

void
umb_verify_result_destroy (umb_verify_result_t **self_p)
{
    assert (self_p);
    umb_verify_result_t *self = *self_p;
    if (self) {
        free (self->warnings);
        json_decref (self->json);
        free (self);
        *self_p = NULL;
    }
}

static void
s_warn (umb_verify_result_t *self, const char *warning)
{
    size_t size = strlen (self->warnings) + strlen (warning) + 2;
    char *warnings = (char *) malloc (size);
    if (warnings) {
        snprintf (warnings, size, "%s%s\n", self->warnings, warning);
        free (self->warnings);
        self->warnings = warnings;
    }
    json_array_append_new (json_object_get (self->json, "warnings"), json_string (warning));
}

umb_verify_platform_t
umb_verify_result_platform (const umb_verify_result_t *self)
{
    assert (self);
    return self->platform;
}

bool
umb_verify_result_insecure (const umb_verify_result_t *self)
{
    assert (self);
    return self->insecure;
}

bool
umb_verify_result_bound (const umb_verify_result_t *self)
{
    assert (self);
    return self->bound;
}

const uint8_t *
umb_verify_result_report_data (const umb_verify_result_t *self)
{
    assert (self);
    return self->has_report_data? self->report_data: NULL;
}

const uint8_t *
umb_verify_result_measurement (const umb_verify_result_t *self)
{
    assert (self);
    return self->has_measurement? self->measurement: NULL;
}

const char *
umb_verify_result_warnings (const umb_verify_result_t *self)
{
    assert (self);
    return self->warnings;
}

json_t *
umb_verify_result_json (const umb_verify_result_t *self)
{
    assert (self);
    return self->json;
}

//  ---------------------------------------------------------------- SNP certificates

static json_t *
s_hex_json (const uint8_t *data, size_t size)
{
    char *hex = umb_hex_encode_new (data, size);
    json_t *value = hex ? json_string (hex) : json_null ();
    free (hex);
    return value;
}

//  A certificate in DER or PEM
static X509 *
s_load_cert (const uint8_t *data, size_t size)
{
    if (!data || size == 0 || size > 65536)
        return NULL;
    const uint8_t *cursor = data;
    X509 *cert = d2i_X509 (NULL, &cursor, (long) size);
    if (cert && cursor != data + size) {
        X509_free (cert);
        cert = NULL;
    }
    if (!cert) {
        BIO *bio = BIO_new_mem_buf (data, (int) size);
        cert = bio? PEM_read_bio_X509 (bio, NULL, NULL, NULL): NULL;
        BIO_free (bio);
    }
    ERR_clear_error ();
    return cert;
}

static bool
s_is_leaf (X509 *cert)
{
    char cn [64] = "";
    return X509_NAME_get_text_by_NID (X509_get_subject_name (cert), NID_commonName, cn, sizeof cn) > 0
        && (streq (cn, "SEV-VCEK") || streq (cn, "SEV-VLEK"));
}

//  Appends cert as PEM to bio
static void
s_append_pem (BIO *bio, X509 *cert)
{
    PEM_write_bio_X509 (bio, cert);
}

//  The GUIDs of the SEV-SNP certificate table (GHCB spec), as text
static const char s_guid_vcek [] = "63da758d-e664-4564-adc5-f4b93be8accd";
static const char s_guid_vlek [] = "a8074bc2-a25a-483e-aae6-39c045a0b8a1";
static const char s_guid_ask []  = "4ab7b379-bbac-4fe4-a02f-05aef327c782";
static const char s_guid_ark []  = "c0b406a4-a803-4952-9743-3fb6014cd0ae";

//  The 16 bytes of a GUID in string order, and in the mixed-endian (EFI) order
static void
s_guid_bytes (const char *text, uint8_t plain [16], uint8_t mixed [16])
{
    size_t count = 0;
    for (const char *c = text; *c && count < 16; c++) {
        if (*c == '-')
            continue;
        unsigned value = 0;
        sscanf (c, "%2x", &value);
        plain [count++] = (uint8_t) value;
        c++;
    }
    memcpy (mixed, plain, 16);
    const uint8_t swap [16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
    for (int i = 0; i < 16; i++)
        mixed [i] = plain [swap [i]];
}

static bool
s_guid_is (const uint8_t *guid, const char *text)
{
    uint8_t plain [16], mixed [16];
    s_guid_bytes (text, plain, mixed);
    return memcmp (guid, plain, 16) == 0 || memcmp (guid, mixed, 16) == 0;
}

//  Splits the TEE's certificates (PEM, or a SEV-SNP certificate table) into
//  the VCEK/VLEK (*leaf, may stay NULL) and the rest as PEM (*chain, caller
//  frees, NULL when there is none). -1 with reason if certs is malformed.
static int
s_split_certs (const uint8_t *certs, size_t size, X509 **leaf, char **chain, char *reason, size_t reason_size)
{
    *leaf = NULL;
    *chain = NULL;
    if (!certs || size == 0)
        return 0;
    if (size > (1 << 20))
        return umb_reason_set (reason, reason_size, "evidence certificates are larger than 1 MiB");
    BIO *out = BIO_new (BIO_s_mem ());
    if (!out)
        return umb_reason_set (reason, reason_size, "out of memory");
    size_t others = 0;
    int rc = 0;
    const char *pem_mark = "-----BEGIN";
    if (size >= strlen (pem_mark) && memmem (certs, size, pem_mark, strlen (pem_mark))) {
        BIO *in = BIO_new_mem_buf (certs, (int) size);
        X509 *cert;
        while (in && (cert = PEM_read_bio_X509 (in, NULL, NULL, NULL))) {
            if (!*leaf && s_is_leaf (cert))
                *leaf = cert;
            else {
                s_append_pem (out, cert);
                others++;
                X509_free (cert);
            }
        }
        BIO_free (in);
        if (!*leaf && others == 0)
            rc = umb_reason_set (reason, reason_size, "evidence certificates: no certificate in the PEM");
    }
    else {
        //  The certificate table: 24-byte entries (GUID, offset, length), then a zero GUID
        size_t entry = 0;
        for (;; entry += 24) {
            if (entry + 24 > size) {
                rc = umb_reason_set (reason, reason_size, "evidence certificate table has no terminating entry");
                break;
            }
            const uint8_t *guid = certs + entry;
            if (umb_bytes_is_zero (guid, 16))
                break;
            uint32_t offset = umb_bytes_le32 (guid + 16);
            uint32_t length = umb_bytes_le32 (guid + 20);
            if ((size_t) offset > size || (size_t) length > size - offset) {
                rc = umb_reason_set (reason, reason_size, "evidence certificate table entry %zu lies outside it", entry / 24);
                break;
            }
            bool is_leaf = s_guid_is (guid, s_guid_vcek) || s_guid_is (guid, s_guid_vlek);
            bool is_chain = s_guid_is (guid, s_guid_ask) || s_guid_is (guid, s_guid_ark);
            if (!is_leaf && !is_chain)
                continue;           //  CRLs and others
            X509 *cert = s_load_cert (certs + offset, length);
            if (!cert) {
                rc = umb_reason_set (reason, reason_size, "evidence certificate table entry %zu is not a certificate",
                                     entry / 24);
                break;
            }
            if (is_leaf && !*leaf)
                *leaf = cert;
            else {
                s_append_pem (out, cert);
                others++;
                X509_free (cert);
            }
        }
    }
    if (rc == 0 && others) {
        char *data = NULL;
        long length = BIO_get_mem_data (out, &data);
        *chain = (char *) malloc ((size_t) length + 1);
        if (*chain) {
            memcpy (*chain, data, (size_t) length);
            (*chain) [length] = 0;
        }
        else
            rc = umb_reason_set (reason, reason_size, "out of memory");
    }
    BIO_free (out);
    ERR_clear_error ();
    if (rc) {
        X509_free (*leaf);
        *leaf = NULL;
        free (*chain);
        *chain = NULL;
    }
    return rc;
}

char *
umb_verify_snp_certs_pem (const uint8_t *certs, size_t size, size_t *pem_size, char *reason, size_t reason_size)
{
    assert (pem_size);
    *pem_size = 0;
    X509 *leaf = NULL;
    char *chain = NULL;
    if (s_split_certs (certs, size, &leaf, &chain, reason, reason_size))
        return NULL;
    if (!leaf && !chain) {
        umb_reason_set (reason, reason_size, "no certificate");
        return NULL;
    }
    BIO *bio = BIO_new (BIO_s_mem ());
    char *pem = NULL;
    if (bio) {
        if (leaf)
            s_append_pem (bio, leaf);
        if (chain)
            BIO_puts (bio, chain);
        char *data = NULL;
        long length = BIO_get_mem_data (bio, &data);
        pem = (char *) malloc ((size_t) length + 1);
        if (pem) {
            memcpy (pem, data, (size_t) length);
            pem [length] = 0;
            *pem_size = (size_t) length;
        }
    }
    if (!pem)
        umb_reason_set (reason, reason_size, "out of memory");
    BIO_free (bio);
    X509_free (leaf);
    free (chain);
    return pem;
}

//  A TCB as EXPECTED_SNP.json shows it: raw bytes, and the SPLs of the product
static json_t *
s_tcb_json (uint64_t tcb, unsigned product)
{
    uint8_t bytes [8];
    for (int i = 0; i < 8; i++)
        bytes [i] = (uint8_t) (tcb >> (8 * i));
    json_t *object = json_object ();
    json_object_set_new (object, "raw", s_hex_json (bytes, 8));
    if (product == UMB_SNP_PRODUCT_TURIN) {
        json_object_set_new (object, "fmc", json_integer (bytes [0]));
        json_object_set_new (object, "bootloader", json_integer (bytes [1]));
        json_object_set_new (object, "tee", json_integer (bytes [2]));
        json_object_set_new (object, "snp", json_integer (bytes [3]));
    }
    else {
        json_object_set_new (object, "bootloader", json_integer (bytes [0]));
        json_object_set_new (object, "tee", json_integer (bytes [1]));
        json_object_set_new (object, "snp", json_integer (bytes [6]));
    }
    json_object_set_new (object, "microcode", json_integer (bytes [7]));
    return object;
}

static json_t *
s_u64_json (uint64_t value)
{
    char text [24];
    snprintf (text, sizeof text, "0x%llx", (unsigned long long) value);
    return json_string (text);
}

static json_t *
s_snp_json (umb_snp_report_t *report, unsigned product)
{
    json_t *object = json_object ();
    json_object_set_new (object, "version", json_integer (umb_snp_report_version (report)));
    json_object_set_new (object, "guest_svn", json_integer (umb_snp_report_guest_svn (report)));
    json_object_set_new (object, "policy", s_u64_json (umb_snp_report_policy (report)));
    json_object_set_new (object, "debug_allowed",
                         json_boolean (umb_snp_report_policy (report) & UMB_SNP_POLICY_DEBUG));
    json_object_set_new (object, "family_id", s_hex_json (umb_snp_report_family_id (report), 16));
    json_object_set_new (object, "image_id", s_hex_json (umb_snp_report_image_id (report), 16));
    json_object_set_new (object, "vmpl", json_integer (umb_snp_report_vmpl (report)));
    json_object_set_new (object, "signature_algo", json_integer (umb_snp_report_signature_algo (report)));
    json_object_set_new (object, "current_tcb", s_tcb_json (umb_snp_report_current_tcb (report), product));
    json_object_set_new (object, "reported_tcb", s_tcb_json (umb_snp_report_reported_tcb (report), product));
    json_object_set_new (object, "committed_tcb", s_tcb_json (umb_snp_report_committed_tcb (report), product));
    json_object_set_new (object, "launch_tcb", s_tcb_json (umb_snp_report_launch_tcb (report), product));
    json_object_set_new (object, "platform_info", s_u64_json (umb_snp_report_platform_info (report)));
    json_object_set_new (object, "signer_info", s_u64_json (umb_snp_report_signer_info (report)));
    json_object_set_new (object, "report_data", s_hex_json (umb_snp_report_report_data (report), 64));
    json_object_set_new (object, "measurement", s_hex_json (umb_snp_report_measurement (report), 48));
    json_object_set_new (object, "host_data", s_hex_json (umb_snp_report_host_data (report), 32));
    json_object_set_new (object, "id_key_digest", s_hex_json (umb_snp_report_id_key_digest (report), 48));
    json_object_set_new (object, "author_key_digest", s_hex_json (umb_snp_report_author_key_digest (report), 48));
    json_object_set_new (object, "report_id", s_hex_json (umb_snp_report_report_id (report), 32));
    json_object_set_new (object, "report_id_ma", s_hex_json (umb_snp_report_report_id_ma (report), 32));
    json_object_set_new (object, "chip_id", s_hex_json (umb_snp_report_chip_id (report), 64));
    uint8_t family, model, stepping;
    if (umb_snp_report_cpuid (report, &family, &model, &stepping)) {
        json_object_set_new (object, "cpuid_fam_id", json_integer (family));
        json_object_set_new (object, "cpuid_mod_id", json_integer (model));
        json_object_set_new (object, "cpuid_step", json_integer (stepping));
    }
    return object;
}

//  ---------------------------------------------------------------- verifiers

//  Checks the binding and the claimed report_data against the evidence's
static int
s_check_binding (const umb_verify_opts_t *opts, const uint8_t *evidence_report_data,
                 umb_verify_result_t *result, char *reason, size_t size)
{
    if (opts->report_data && evidence_report_data
    &&  CRYPTO_memcmp (opts->report_data, evidence_report_data, UMB_VERIFY_REPORT_DATA_SIZE) != 0)
        return umb_reason_set (reason, size, "the claimed report_data differs from the evidence's");
    if (!opts->agent_key)
        return 0;
    if (!evidence_report_data)
        return umb_reason_set (reason, size, "binding: the evidence carries no report_data");
    uint8_t expected [UMB_VERIFY_REPORT_DATA_SIZE];
    if (umb_verify_report_data (opts->agent_key, opts->nonce, opts->nonce_size, expected))
        return umb_reason_set (reason, size, "binding: cannot compute SHA-512");
    if (CRYPTO_memcmp (expected, evidence_report_data, sizeof expected) != 0)
        return umb_reason_set (reason, size, "binding: report_data is not SHA-512(\"" UMB_VERIFY_CONTEXT "\" || "
                               "agent key || nonce): wrong agent key or nonce (replayed or substituted evidence)");
    result->bound = true;
    return 0;
}

static int
s_verify_snp (const umb_verify_opts_t *opts, const umb_policy_t *policy, umb_verify_result_t *result,
              char *reason, size_t size)
{
    char why [256] = "";
    umb_snp_report_t *report = umb_snp_report_parse (opts->evidence, opts->evidence_size, why, sizeof why);
    if (!report)
        return umb_reason_set (reason, size, "snp: %s", why);
    int rc = -1;
    X509 *vcek = NULL, *supplied = NULL;
    char *supplied_chain = NULL;
    if (s_split_certs (opts->certs, opts->certs_size, &supplied, &supplied_chain, why, sizeof why)) {
        umb_reason_set (reason, size, "snp: %s", why);
        goto done;
    }
    if (opts->vcek) {
        vcek = s_load_cert (opts->vcek, opts->vcek_size);
        if (!vcek) {
            umb_reason_set (reason, size, "snp: the VCEK/VLEK is not a certificate (DER or PEM)");
            goto done;
        }
    }
    else {
        vcek = supplied;
        supplied = NULL;
    }
    const char *chain = opts->chain_pem? opts->chain_pem: supplied_chain;
    if (!vcek) {
        umb_reason_set (reason, size, "snp: missing certificate: no VCEK/VLEK (give one, or evidence certificates"
                        " that carry it)");
        goto done;
    }
    if (!chain) {
        umb_reason_set (reason, size, "snp: missing certificate: no ASK/ARK chain (give one, or evidence certificates"
                        " that carry it)");
        goto done;
    }
    if (umb_snp_verify_chain (vcek, chain, opts->at_time, why, sizeof why)
    ||  umb_snp_verify_signature (report, vcek, why, sizeof why)
    ||  umb_snp_check_tcb (report, vcek, why, sizeof why)) {
        umb_reason_set (reason, size, "snp: not genuine: %s", why);
        goto done;
    }
    if (umb_policy_check_snp (policy, report, vcek, why, sizeof why)) {
        umb_reason_set (reason, size, "snp: policy: %s", why);
        goto done;
    }
    if (s_check_binding (opts, umb_snp_report_report_data (report), result, why, sizeof why)) {
        umb_reason_set (reason, size, "snp: %s", why);
        goto done;
    }
    unsigned product = umb_policy_snp_product (report, vcek);
    result->has_report_data = true;
    memcpy (result->report_data, umb_snp_report_report_data (report), 64);
    result->has_measurement = true;
    memcpy (result->measurement, umb_snp_report_measurement (report), 48);
    json_object_set_new (result->json, "product", json_string (umb_policy_product_name (product)));
    json_object_set_new (result->json, "signer", json_string (
        umb_snp_report_signing_key (report) == UMB_SNP_SIGNING_KEY_VLEK? "VLEK": "VCEK"));
    json_object_set_new (result->json, "report", s_snp_json (report, product));
    rc = 0;
done:
    X509_free (vcek);
    X509_free (supplied);
    free (supplied_chain);
    umb_snp_report_destroy (&report);
    return rc;
}

static int
s_verify_tdx (const umb_verify_opts_t *opts, const umb_policy_t *policy, umb_verify_result_t *result,
              char *reason, size_t size)
{
    if (opts->vcek)
        return umb_reason_set (reason, size, "tdx: a VCEK/VLEK is for SNP evidence");
    char why [256] = "";
    umb_tdx_quote_t *quote = umb_tdx_quote_parse (opts->evidence, opts->evidence_size, why, sizeof why);
    if (!quote)
        return umb_reason_set (reason, size, "tdx: %s", why);
    int rc = -1;
    if (umb_tdx_verify (quote, opts->chain_pem, opts->at_time, why, sizeof why))
        umb_reason_set (reason, size, "tdx: not genuine: %s", why);
    else
    if (umb_policy_check_tdx (policy, quote, why, sizeof why))
        umb_reason_set (reason, size, "tdx: policy: %s", why);
    else
    if (s_check_binding (opts, umb_tdx_quote_report_data (quote), result, why, sizeof why))
        umb_reason_set (reason, size, "tdx: %s", why);
    else {
        result->has_report_data = true;
        memcpy (result->report_data, umb_tdx_quote_report_data (quote), 64);
        result->has_measurement = true;
        memcpy (result->measurement, umb_tdx_quote_mr_td (quote), 48);
        json_t *fields = umb_tdx_quote_to_json (quote);
        json_object_set_new (result->json, "quote", fields? fields: json_null ());
        rc = 0;
    }
    umb_tdx_quote_destroy (&quote);
    return rc;
}

static int
s_verify_none (const umb_verify_opts_t *opts, umb_verify_result_t *result, char *reason, size_t size)
{
    if (!opts->insecure_dev)
        return umb_reason_set (reason, size, "platform none: there is no TEE and nothing is attested"
                               " (accepted only in insecure development mode)");
    if (opts->evidence_size != 0 && opts->evidence_size != UMB_VERIFY_REPORT_DATA_SIZE)
        return umb_reason_set (reason, size, "platform none: evidence must be empty or the 64-byte report_data,"
                               " not %zu bytes", opts->evidence_size);
    const uint8_t *report_data = opts->evidence_size? opts->evidence: opts->report_data;
    char why [256];
    if (s_check_binding (opts, report_data, result, why, sizeof why))
        return umb_reason_set (reason, size, "none: %s", why);
    if (report_data) {
        result->has_report_data = true;
        memcpy (result->report_data, report_data, UMB_VERIFY_REPORT_DATA_SIZE);
        json_object_set_new (result->json, "report_data", s_hex_json (report_data, UMB_VERIFY_REPORT_DATA_SIZE));
    }
    result->insecure = true;
    s_warn (result, "insecure: no TEE");
    return 0;
}

int
umb_verify_evidence (const umb_verify_opts_t *opts, umb_verify_result_t **result_p,
                     char *reason, size_t size)
{
    assert (opts);
    assert (result_p);
    *result_p = NULL;
    if ((unsigned) opts->platform > UMB_VERIFY_PLATFORM_TDX)
        return umb_reason_set (reason, size, "unknown platform %d", (int) opts->platform);
    if (!opts->evidence && opts->evidence_size)
        return umb_reason_set (reason, size, "no evidence");
    if (opts->agent_key && (!opts->nonce || opts->nonce_size == 0))
        return umb_reason_set (reason, size, "binding: an agent key needs the nonce it was asked with");
    if (!opts->agent_key && opts->nonce)
        return umb_reason_set (reason, size, "binding: a nonce needs the agent key");

    umb_policy_t *defaults = NULL;
    const umb_policy_t *policy = opts->policy;
    if (!policy && !(policy = defaults = umb_policy_new ()))
        return umb_reason_set (reason, size, "out of memory");
    umb_verify_result_t *result = s_result_new (opts->platform);
    int rc = result? 0: umb_reason_set (reason, size, "out of memory");
    if (rc == 0) {
        if (opts->platform == UMB_VERIFY_PLATFORM_SNP)
            rc = s_verify_snp (opts, policy, result, reason, size);
        else
        if (opts->platform == UMB_VERIFY_PLATFORM_TDX)
            rc = s_verify_tdx (opts, policy, result, reason, size);
        else
            rc = s_verify_none (opts, result, reason, size);
    }
    if (rc == 0 && !result->insecure
    &&  !umb_policy_pins_measurement (policy, umb_verify_platform_name (opts->platform)))
        s_warn (result, "no measurement is pinned: any genuine guest of this platform is accepted"
                " (give a policy with measurements)");
    if (rc == 0) {
        json_object_set_new (result->json, "genuine", json_boolean (!result->insecure));
        json_object_set_new (result->json, "insecure", json_boolean (result->insecure));
        json_object_set_new (result->json, "bound", json_boolean (result->bound));
        if (result->has_measurement)
            json_object_set_new (result->json, "measurement", s_hex_json (result->measurement, 48));
        *result_p = result;
    }
    else
        umb_verify_result_destroy (&result);
    umb_policy_destroy (&defaults);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest: the SEV-SNP vectors of ../shared/vectors/sev-snp

static uint8_t *
s_test_load (const char *name, size_t *size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/sev-snp/%s", UMB_VECTORS_DIR, name);
    FILE *file = fopen (path, "rb");
    assert (file);
    uint8_t *data = (uint8_t *) malloc (1 << 16);
    assert (data);
    *size = fread (data, 1, (1 << 16) - 1, file);
    data [*size] = 0;
    fclose (file);
    return data;
}

typedef struct {
    const char *report, *vcek, *chain;
    int64_t at_time;
    const char *measurement;
    const char *policy;             //  needed to pass (go-sev-guest's report allows debug)
} s_vector_t;

static const s_vector_t s_vectors [] = {
    { "go-sev-guest/attestation.bin", "go-sev-guest/vcek.testcer", "go-sev-guest/ask_ark_milan.pem", 0,
      "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01",
      "{\"snp\": {\"allow_debug\": true}}" },
    { "virtee-sev/report_milan.bin", "virtee-sev/vcek_milan.der", "virtee-sev/cert_chain_milan", 0,
      "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f", NULL },
    { "trustee/test-report.bin", "trustee/test-vcek.der", "trustee/milan_ask_ark_asvk.pem", 0,
      "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c", NULL },
    { "trustee/test-vlek-report.bin", "trustee/test-vlek.der", "trustee/milan_ask_ark_asvk.pem", 1748736000,
      "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0", NULL },
};

static int
s_run (const umb_verify_opts_t *opts, char *reason, size_t size, umb_verify_result_t **result)
{
    umb_verify_result_t *own = NULL;
    int rc = umb_verify_evidence (opts, result? result: &own, reason, size);
    umb_verify_result_destroy (&own);
    return rc;
}

static void
s_expect_refusal (const umb_verify_opts_t *opts, const char *why)
{
    char reason [512] = "";
    umb_verify_result_t *result = (umb_verify_result_t *) 1;
    int rc = umb_verify_evidence (opts, &result, reason, sizeof reason);
    if (rc != -1 || result || !strstr (reason, why)) {
        fprintf (stderr, "umb_verify: expected a refusal saying '%s', got rc=%d '%s'\n", why, rc, reason);
        assert (false);
    }
}

//  PEM -> a SEV-SNP certificate table with the given certificates (DER),
//  VCEK first; GUIDs in string order (mixed = false) or mixed-endian
static uint8_t *
s_make_table (X509 *vcek, const char *chain_pem, bool mixed, size_t *size)
{
    X509 *certs [4] = { vcek, NULL, NULL, NULL };
    const char *guids [4] = { s_guid_vcek, s_guid_ask, s_guid_ark, NULL };
    //  The intermediate that issued vcek (ASK or ASVK), and the root
    BIO *bio = BIO_new_mem_buf (chain_pem, -1);
    X509 *cert;
    while ((cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL))) {
        bool root = X509_NAME_cmp (X509_get_subject_name (cert), X509_get_issuer_name (cert)) == 0;
        if (!certs [1] && X509_NAME_cmp (X509_get_subject_name (cert), X509_get_issuer_name (vcek)) == 0)
            certs [1] = cert;
        else
        if (!certs [2] && root)
            certs [2] = cert;
        else
            X509_free (cert);
    }
    ERR_clear_error ();
    BIO_free (bio);
    assert (certs [1] && certs [2]);
    uint8_t *table = (uint8_t *) calloc (1, 1 << 15);
    size_t offset = 24 * 5;         //  3 entries, one CRL-like entry, terminator
    for (int i = 0; i < 3; i++) {
        uint8_t plain [16], mixed_bytes [16];
        s_guid_bytes (guids [i], plain, mixed_bytes);
        memcpy (table + 24 * i, mixed? mixed_bytes: plain, 16);
        uint8_t *der = table + offset;
        int length = i2d_X509 (certs [i], &der);
        assert (length > 0);
        for (int b = 0; b < 4; b++) {
            table [24 * i + 16 + b] = (uint8_t) (offset >> (8 * b));
            table [24 * i + 20 + b] = (uint8_t) ((uint32_t) length >> (8 * b));
        }
        offset += (size_t) length;
    }
    //  An entry of an unknown GUID (a CRL, say) is skipped
    memset (table + 24 * 3, 0x5A, 16);
    X509_free (certs [1]);
    X509_free (certs [2]);
    *size = offset;
    return table;
}

void
umb_verify_test (bool verbose)
{
    printf (" * umb_verify: ");
    if (verbose)
        printf ("\n");
    char reason [512] = "";

    //  The binding digest, a known answer computed with sha512sum:
    //  printf 'umbra-attest-v1' ; 32 bytes 0x00..0x1f ; nonce "nonce"
    uint8_t key [32], digest [64], again [64];
    for (int i = 0; i < 32; i++)
        key [i] = (uint8_t) i;
    assert (umb_verify_report_data (key, (const uint8_t *) "nonce", 5, digest) == 0);
    {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
        uint8_t message [15 + 32 + 5];
        memcpy (message, "umbra-attest-v1", 15);
        memcpy (message + 15, key, 32);
        memcpy (message + 47, "nonce", 5);
        unsigned int length = 0;
        assert (EVP_Digest (message, sizeof message, again, &length, EVP_sha512 (), NULL) == 1);
        EVP_MD_CTX_free (ctx);
        assert (memcmp (digest, again, 64) == 0);
    }
    assert (umb_verify_report_data (key, (const uint8_t *) "noncf", 5, again) == 0);
    assert (memcmp (digest, again, 64) != 0);
    key [31] ^= 1;
    assert (umb_verify_report_data (key, (const uint8_t *) "nonce", 5, again) == 0);
    assert (memcmp (digest, again, 64) != 0);
    key [31] ^= 1;

    assert (umb_verify_platform_parse ("snp") == UMB_VERIFY_PLATFORM_SNP);
    assert (umb_verify_platform_parse ("tdx") == UMB_VERIFY_PLATFORM_TDX);
    assert (umb_verify_platform_parse ("none") == UMB_VERIFY_PLATFORM_NONE);
    assert (umb_verify_platform_parse ("sev") == -1);
    assert (umb_verify_platform_parse (NULL) == -1);
    assert (streq (umb_verify_platform_name (UMB_VERIFY_PLATFORM_TDX), "tdx"));

    //  Genuine SNP vectors verify; tampered copies and policy mismatches do not
    for (size_t i = 0; i < sizeof s_vectors / sizeof s_vectors [0]; i++) {
        const s_vector_t *vector = &s_vectors [i];
        size_t report_size, vcek_size, chain_size;
        uint8_t *report = s_test_load (vector->report, &report_size);
        uint8_t *vcek = s_test_load (vector->vcek, &vcek_size);
        char *chain = (char *) s_test_load (vector->chain, &chain_size);
        umb_policy_t *policy = vector->policy? umb_policy_parse (vector->policy, reason, sizeof reason): NULL;
        umb_verify_opts_t opts = {
            .platform = UMB_VERIFY_PLATFORM_SNP, .evidence = report, .evidence_size = report_size,
            .vcek = vcek, .vcek_size = vcek_size, .chain_pem = chain, .policy = policy,
            .at_time = vector->at_time };
        umb_verify_result_t *result = NULL;
        int rc = umb_verify_evidence (&opts, &result, reason, sizeof reason);
        if (rc)
            fprintf (stderr, "umb_verify: %s: %s\n", vector->report, reason);
        assert (rc == 0 && result);
        assert (umb_verify_result_platform (result) == UMB_VERIFY_PLATFORM_SNP);
        assert (!umb_verify_result_insecure (result));
        assert (!umb_verify_result_bound (result));
        assert (strstr (umb_verify_result_warnings (result), "no measurement is pinned"));
        json_t *json = umb_verify_result_json (result);
        assert (streq (json_string_value (json_object_get (json, "platform")), "snp"));
        assert (json_is_true (json_object_get (json, "genuine")));
        assert (streq (json_string_value (json_object_get (json, "product")), "Milan"));
        assert (streq (json_string_value (json_object_get (json, "measurement")), vector->measurement));
        assert (streq (json_string_value (json_object_get (json_object_get (json, "report"), "measurement")),
                       vector->measurement));
        assert (umb_verify_result_report_data (result));
        assert (memcmp (umb_verify_result_report_data (result), report + 0x50, 64) == 0);
        assert (memcmp (umb_verify_result_measurement (result), report + 0x90, 48) == 0);
        if (verbose) {
            char *text = json_dumps (json_object_get (json, "report"), JSON_COMPACT);
            printf (" * verify: %s genuine (%.120s...)\n", vector->report, text);
            free (text);
        }
        umb_verify_result_destroy (&result);
        umb_verify_result_destroy (&result);

        //  The claimed report_data must be the report's
        opts.report_data = report + 0x50;
        assert (s_run (&opts, reason, sizeof reason, NULL) == 0);
        uint8_t claimed [64];
        memcpy (claimed, report + 0x50, 64);
        claimed [0] ^= 1;
        opts.report_data = claimed;
        s_expect_refusal (&opts, "claimed report_data");
        opts.report_data = NULL;

        //  A pinned measurement passes; another is refused
        char json_text [512];
        snprintf (json_text, sizeof json_text, "{\"snp\": {\"allow_debug\": true, \"measurements\": [\"%s\"]}}",
                  vector->measurement);
        umb_policy_t *pinned = umb_policy_parse (json_text, reason, sizeof reason);
        assert (pinned);
        opts.policy = pinned;
        assert (s_run (&opts, reason, sizeof reason, &result) == 0);
        assert (streq (umb_verify_result_warnings (result), ""));
        umb_verify_result_destroy (&result);
        umb_policy_destroy (&pinned);
        pinned = umb_policy_parse ("{\"snp\": {\"allow_debug\": true, \"measurements\": [\"000000000000"
                                   "000000000000000000000000000000000000000000000000000000000000000000000000000000"
                                   "000000\"]}}", reason, sizeof reason);
        assert (pinned);
        opts.policy = pinned;
        s_expect_refusal (&opts, "policy: measurement");
        umb_policy_destroy (&pinned);
        opts.policy = policy;

        //  Tampered: a flipped measurement bit, then a flipped signature bit
        report [0x90] ^= 0x01;
        s_expect_refusal (&opts, "not genuine");
        report [0x90] ^= 0x01;
        report [0x2A0] ^= 0x01;
        s_expect_refusal (&opts, "signature does not verify");
        report [0x2A0] ^= 0x01;
        //  Truncated
        opts.evidence_size = report_size - 1;
        s_expect_refusal (&opts, "snp: report size");
        opts.evidence_size = report_size;

        //  Missing certificates fail closed
        opts.chain_pem = NULL;
        s_expect_refusal (&opts, "missing certificate: no ASK/ARK");
        opts.chain_pem = chain;
        opts.vcek = NULL;
        s_expect_refusal (&opts, "missing certificate: no VCEK/VLEK");
        //  ... unless the evidence's certificates carry them: PEM
        {
            X509 *leaf = s_load_cert (vcek, vcek_size);
            assert (leaf);
            BIO *bio = BIO_new (BIO_s_mem ());
            PEM_write_bio_X509 (bio, leaf);
            BIO_puts (bio, chain);
            char *pem = NULL;
            long pem_size = BIO_get_mem_data (bio, &pem);
            opts.certs = (const uint8_t *) pem;
            opts.certs_size = (size_t) pem_size;
            opts.chain_pem = NULL;
            rc = s_run (&opts, reason, sizeof reason, NULL);
            if (rc)
                fprintf (stderr, "umb_verify: %s with PEM certs: %s\n", vector->report, reason);
            assert (rc == 0);
            //  the certificate table, GUIDs either way
            for (int mixed = 0; mixed < 2; mixed++) {
                size_t table_size;
                uint8_t *table = s_make_table (leaf, chain, mixed, &table_size);
                opts.certs = table;
                opts.certs_size = table_size;
                rc = s_run (&opts, reason, sizeof reason, NULL);
                if (rc)
                    fprintf (stderr, "umb_verify: %s with a cert table: %s\n", vector->report, reason);
                assert (rc == 0);
                size_t table_pem_size = 0;
                char *as_pem = umb_verify_snp_certs_pem (table, table_size, &table_pem_size, reason, sizeof reason);
                assert (as_pem && table_pem_size == strlen (as_pem));
                X509 *first = s_load_cert ((const uint8_t *) as_pem, table_pem_size);
                assert (first && X509_cmp (first, leaf) == 0);
                X509_free (first);
                free (as_pem);
                //  truncated: entries point outside it
                opts.certs_size = 24 * 5 + 10;
                s_expect_refusal (&opts, "outside");
                opts.certs_size = 20;
                s_expect_refusal (&opts, "terminating");
                free (table);
            }
            opts.certs = (const uint8_t *) "junk";
            opts.certs_size = 4;
            s_expect_refusal (&opts, "terminating");
            opts.certs = NULL;
            opts.certs_size = 0;
            BIO_free (bio);
            X509_free (leaf);
        }
        opts.vcek = vcek;
        opts.chain_pem = chain;
        //  Outside the certificates' validity
        opts.at_time = 946684800;       //  2000-01-01
        s_expect_refusal (&opts, "not yet valid");
        opts.at_time = vector->at_time;
        //  A VCEK that is not a certificate
        opts.vcek = (const uint8_t *) "garbage";
        opts.vcek_size = 7;
        s_expect_refusal (&opts, "not a certificate");
        opts.vcek = vcek;
        opts.vcek_size = vcek_size;
        //  The report's report_data is fixed: any agent key/nonce binding fails
        opts.agent_key = key;
        opts.nonce = (const uint8_t *) "nonce";
        opts.nonce_size = 5;
        s_expect_refusal (&opts, "binding");
        opts.nonce = NULL;
        s_expect_refusal (&opts, "needs the nonce");
        opts.agent_key = NULL;
        opts.nonce = (const uint8_t *) "nonce";
        s_expect_refusal (&opts, "needs the agent key");

        umb_policy_destroy (&policy);
        free (report);
        free (vcek);
        free (chain);
    }
    //  The default policy refuses a report that allows debugging
    {
        size_t report_size, vcek_size, chain_size;
        uint8_t *report = s_test_load ("go-sev-guest/attestation.bin", &report_size);
        uint8_t *vcek = s_test_load ("go-sev-guest/vcek.testcer", &vcek_size);
        char *chain = (char *) s_test_load ("go-sev-guest/ask_ark_milan.pem", &chain_size);
        umb_verify_opts_t opts = {
            .platform = UMB_VERIFY_PLATFORM_SNP, .evidence = report, .evidence_size = report_size,
            .vcek = vcek, .vcek_size = vcek_size, .chain_pem = chain };
        s_expect_refusal (&opts, "DEBUG");
        //  and a VCEK of another chip is refused
        free (vcek);
        vcek = s_test_load ("virtee-sev/vcek_milan.der", &vcek_size);
        opts.vcek = vcek;
        opts.vcek_size = vcek_size;
        s_expect_refusal (&opts, "not genuine");
        //  SNP evidence checked as TDX is refused by the TDX parser
        opts.platform = UMB_VERIFY_PLATFORM_TDX;
        opts.vcek = NULL;
        s_expect_refusal (&opts, "tdx: ");
        opts.vcek = vcek;
        s_expect_refusal (&opts, "for SNP evidence");
        free (report);
        free (vcek);
        free (chain);
    }
    //  TDX: a genuine quote through the same entry point (umb_tdx verifies it)
    {
        size_t quote_size, debug_size;
        char path [512];
        snprintf (path, sizeof path, "%s/tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat", UMB_VECTORS_DIR);
        FILE *file = fopen (path, "rb");
        assert (file);
        uint8_t *quote = (uint8_t *) malloc (1 << 16);
        assert (quote);
        quote_size = fread (quote, 1, 1 << 16, file);
        fclose (file);
        snprintf (path, sizeof path, "%s/tdx/trustee/tdx_quote_4.dat", UMB_VECTORS_DIR);
        file = fopen (path, "rb");
        assert (file);
        uint8_t *debug = (uint8_t *) malloc (1 << 16);
        assert (debug);
        debug_size = fread (debug, 1, 1 << 16, file);
        fclose (file);
        const char *mr_td = "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f"
                            "22fc00b8dcd404bc10d5e119d7215cbb";
        umb_verify_opts_t opts = { .platform = UMB_VERIFY_PLATFORM_TDX, .evidence = quote,
                                   .evidence_size = quote_size };
        umb_verify_result_t *result = NULL;
        int rc = umb_verify_evidence (&opts, &result, reason, sizeof reason);
        if (rc)
            fprintf (stderr, "umb_verify: TDX: %s\n", reason);
        assert (rc == 0);
        assert (strstr (umb_verify_result_warnings (result), "no measurement is pinned"));
        json_t *json = umb_verify_result_json (result);
        assert (streq (json_string_value (json_object_get (json, "platform")), "tdx"));
        assert (streq (json_string_value (json_object_get (json, "measurement")), mr_td));
        assert (json_is_object (json_object_get (json, "quote")));
        umb_verify_result_destroy (&result);
        char text [512];
        snprintf (text, sizeof text, "{\"tdx\": {\"mr_td\": [\"%s\"]}}", mr_td);
        umb_policy_t *policy = umb_policy_parse (text, reason, sizeof reason);
        assert (policy);
        opts.policy = policy;
        assert (umb_verify_evidence (&opts, &result, reason, sizeof reason) == 0);
        assert (streq (umb_verify_result_warnings (result), ""));
        umb_verify_result_destroy (&result);
        umb_policy_destroy (&policy);
        snprintf (text, sizeof text, "{\"tdx\": {\"mr_td\": [\"%.94s00\"]}}", mr_td);
        policy = umb_policy_parse (text, reason, sizeof reason);
        assert (policy);
        opts.policy = policy;
        s_expect_refusal (&opts, "tdx: policy");
        umb_policy_destroy (&policy);
        policy = umb_policy_parse ("{\"tdx\": {}}", reason, sizeof reason);
        assert (policy);
        opts.policy = policy;
        s_expect_refusal (&opts, "tdx: policy");
        umb_policy_destroy (&policy);
        opts.policy = NULL;
        //  Fixed report_data: a binding to our key and nonce fails
        opts.agent_key = key;
        opts.nonce = (const uint8_t *) "nonce";
        opts.nonce_size = 5;
        s_expect_refusal (&opts, "tdx: binding");
        opts.agent_key = NULL;
        opts.nonce = NULL;
        opts.nonce_size = 0;
        //  Tampered body (MRTD), and a quote whose TD allows debugging
        quote [48 + 136] ^= 0x01;
        s_expect_refusal (&opts, "tdx: not genuine");
        quote [48 + 136] ^= 0x01;
        opts.evidence = debug;
        opts.evidence_size = debug_size;
        s_expect_refusal (&opts, "DEBUG");
        //  Platform mix-ups: a quote as SNP
        opts.platform = UMB_VERIFY_PLATFORM_SNP;
        s_expect_refusal (&opts, "snp: report size");
        free (quote);
        free (debug);
        if (verbose)
            printf (" * verify: TDX quote genuine, policy and tampering checked\n");
    }
    //  none: refused without insecure_dev; with it, "insecure: no TEE"
    {
        umb_verify_opts_t opts = { .platform = UMB_VERIFY_PLATFORM_NONE };
        s_expect_refusal (&opts, "no TEE");
        opts.insecure_dev = true;
        umb_verify_result_t *result = NULL;
        assert (umb_verify_evidence (&opts, &result, reason, sizeof reason) == 0);
        assert (umb_verify_result_insecure (result));
        assert (!umb_verify_result_bound (result));
        assert (!umb_verify_result_report_data (result));
        assert (!umb_verify_result_measurement (result));
        assert (strstr (umb_verify_result_warnings (result), "insecure: no TEE"));
        json_t *json = umb_verify_result_json (result);
        assert (json_is_false (json_object_get (json, "genuine")));
        assert (json_is_true (json_object_get (json, "insecure")));
        assert (streq (json_string_value (json_array_get (json_object_get (json, "warnings"), 0)),
                       "insecure: no TEE"));
        umb_verify_result_destroy (&result);

        //  The binding through none: the agent's report_data (as evidence, or claimed)
        uint8_t nonce [32];
        for (int i = 0; i < 32; i++)
            nonce [i] = (uint8_t) (0xA0 + i);
        uint8_t report_data [64];
        assert (umb_verify_report_data (key, nonce, sizeof nonce, report_data) == 0);
        opts.evidence = report_data;
        opts.evidence_size = 64;
        opts.agent_key = key;
        opts.nonce = nonce;
        opts.nonce_size = sizeof nonce;
        assert (umb_verify_evidence (&opts, &result, reason, sizeof reason) == 0);
        assert (umb_verify_result_bound (result) && umb_verify_result_insecure (result));
        assert (memcmp (umb_verify_result_report_data (result), report_data, 64) == 0);
        umb_verify_result_destroy (&result);
        opts.evidence = NULL;
        opts.evidence_size = 0;
        opts.report_data = report_data;
        assert (s_run (&opts, reason, sizeof reason, NULL) == 0);
        //  wrong nonce, wrong key, shorter nonce: refused
        nonce [0] ^= 1;
        s_expect_refusal (&opts, "wrong agent key or nonce");
        nonce [0] ^= 1;
        opts.nonce_size = 31;
        s_expect_refusal (&opts, "wrong agent key or nonce");
        opts.nonce_size = 32;
        key [0] ^= 1;
        s_expect_refusal (&opts, "wrong agent key or nonce");
        key [0] ^= 1;
        assert (s_run (&opts, reason, sizeof reason, NULL) == 0);
        //  binding asked but nothing to bind to
        opts.report_data = NULL;
        s_expect_refusal (&opts, "carries no report_data");
        //  none evidence of another size
        opts.evidence = report_data;
        opts.evidence_size = 63;
        s_expect_refusal (&opts, "empty or the 64-byte");
        //  still refused without insecure_dev, even when bound
        opts.evidence_size = 64;
        opts.insecure_dev = false;
        s_expect_refusal (&opts, "no TEE");
    }
    printf ("OK\n");
}
