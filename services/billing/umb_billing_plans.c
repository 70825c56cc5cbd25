//  umb_billing_plans - plans, limits and prices
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "umb_billing_plans.h"

#define S_PLANS_MAX     64
#define S_NAME_MAX      32
#define S_FILE_MAX      (1024 * 1024)
#define S_LIMIT_MAX     1000000000000LL

typedef struct {
    char    name [S_NAME_MAX + 1];
    int64_t limits [UMB_BILLING_LIMITS];
} s_plan_t;

struct _umb_billing_plans_t {
    s_plan_t            plans [S_PLANS_MAX];
    size_t              count;
    int                 default_plan;
    umb_billing_price_t prices [UMB_BILLING_TEES];
};

static const char *const s_limit_names [UMB_BILLING_LIMITS] = {
    "computations", "runs_per_month", "concurrent_cvms", "vcpu_hours_per_month", "members"
};
static const char *const s_limit_whats [UMB_BILLING_LIMITS] = {
    "computations", "runs this month", "concurrent CVMs", "vCPU-hours this month", "members"
};
static const char *const s_tees [UMB_BILLING_TEES + 1] = { "none", "sev-snp", "tdx", NULL };

const char *
umb_billing_limit_name (umb_billing_limit_t limit)
{
    assert (limit < UMB_BILLING_LIMITS);
    return s_limit_names [limit];
}

const char *
umb_billing_limit_what (umb_billing_limit_t limit)
{
    assert (limit < UMB_BILLING_LIMITS);
    return s_limit_whats [limit];
}

const char *
umb_billing_tee_name (size_t index)
{
    assert (index < UMB_BILLING_TEES);
    return s_tees [index];
}

static bool
s_name_valid (const char *name)
{
    size_t length = strlen (name);
    return length > 0 && length <= S_NAME_MAX
        && strspn (name, "abcdefghijklmnopqrstuvwxyz0123456789-_") == length;
}

//  One integer field of object in 0..max: 0, or -1 with the reason
static int
s_amount (json_t *object, const char *where, const char *key, int64_t max, bool nullable,
          int64_t *value, char *reason, size_t reason_size)
{
    json_t *item = json_object_get (object, key);
    if (nullable && json_is_null (item)) {
        *value = UMB_BILLING_UNLIMITED;
        return 0;
    }
    if (!json_is_integer (item) || json_integer_value (item) < 0
    ||  json_integer_value (item) > max) {
        snprintf (reason, reason_size, "%s.%s: expected an integer 0..%lld%s", where, key,
                  (long long) max, nullable ? " or null" : "");
        return -1;
    }
    *value = json_integer_value (item);
    return 0;
}

//  Refuses keys other than those of known (NULL-terminated)
static int
s_only (json_t *object, const char *where, const char *const *known, char *reason,
        size_t reason_size)
{
    const char *key;
    json_t *value;
    json_object_foreach (object, key, value) {
        bool found = false;
        for (size_t i = 0; known [i] && !found; i++)
            found = strcmp (known [i], key) == 0;
        if (!found) {
            snprintf (reason, reason_size, "%s: unknown field '%.64s'", where, key);
            return -1;
        }
    }
    return 0;
}

static int
s_read_plans (umb_billing_plans_t *self, json_t *plans, char *reason, size_t reason_size)
{
    if (!json_is_object (plans) || json_object_size (plans) == 0
    ||  json_object_size (plans) > S_PLANS_MAX) {
        snprintf (reason, reason_size, "plans: expected an object of 1..%d plans", S_PLANS_MAX);
        return -1;
    }
    static const char *const known [] = {
        "computations", "runs_per_month", "concurrent_cvms", "vcpu_hours_per_month", "members",
        NULL
    };
    const char *name;
    json_t *limits;
    json_object_foreach (plans, name, limits) {
        char where [64];
        snprintf (where, sizeof where, "plans.%.40s", name);
        if (!s_name_valid (name)) {
            snprintf (reason, reason_size, "%s: a plan's name is 1..%d of a-z, 0-9, '-' and '_'",
                      where, S_NAME_MAX);
            return -1;
        }
        if (!json_is_object (limits)) {
            snprintf (reason, reason_size, "%s: expected an object of limits", where);
            return -1;
        }
        if (s_only (limits, where, known, reason, reason_size))
            return -1;
        s_plan_t *plan = &self->plans [self->count++];
        snprintf (plan->name, sizeof plan->name, "%s", name);
        for (size_t i = 0; i < UMB_BILLING_LIMITS; i++)
            if (s_amount (limits, where, s_limit_names [i], S_LIMIT_MAX, true, &plan->limits [i],
                          reason, reason_size))
                return -1;
    }
    return 0;
}

static int
s_read_prices (umb_billing_plans_t *self, json_t *prices, char *reason, size_t reason_size)
{
    if (!json_is_object (prices)) {
        snprintf (reason, reason_size, "prices: expected an object of TEE types");
        return -1;
    }
    static const char *const known [] = { "vcpu_hour", "memory_gib_hour", "run", NULL };
    if (s_only (prices, "prices", s_tees, reason, reason_size))
        return -1;
    for (size_t i = 0; i < UMB_BILLING_TEES; i++) {
        json_t *price = json_object_get (prices, s_tees [i]);
        char where [32];
        snprintf (where, sizeof where, "prices.%s", s_tees [i]);
        if (!json_is_object (price)) {
            snprintf (reason, reason_size, "%s: expected an object (every TEE type is priced)",
                      where);
            return -1;
        }
        umb_billing_price_t *into = &self->prices [i];
        if (s_only (price, where, known, reason, reason_size)
        ||  s_amount (price, where, "vcpu_hour", UMB_BILLING_PRICE_MAX, false, &into->vcpu_hour,
                      reason, reason_size)
        ||  s_amount (price, where, "memory_gib_hour", UMB_BILLING_PRICE_MAX, false,
                      &into->memory_gib_hour, reason, reason_size)
        ||  s_amount (price, where, "run", UMB_BILLING_PRICE_MAX, false, &into->run, reason,
                      reason_size))
            return -1;
    }
    return 0;
}

umb_billing_plans_t *
umb_billing_plans_parse (const char *text, size_t size, const char *default_plan, char *reason,
                         size_t reason_size)
{
    assert (text && reason);
    json_error_t error;
    json_t *root = json_loadb (text, size, JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object (root)) {
        if (root)
            snprintf (reason, reason_size, "the plans file is not a JSON object");
        else
            snprintf (reason, reason_size, "the plans file is not JSON: %s (line %d)", error.text,
                      error.line);
        json_decref (root);
        return NULL;
    }
    umb_billing_plans_t *self = calloc (1, sizeof (umb_billing_plans_t));
    assert (self);
    static const char *const known [] = { "default_plan", "plans", "prices", NULL };
    const char *named = json_string_value (json_object_get (root, "default_plan"));
    int rc = s_only (root, "the plans file", known, reason, reason_size);
    if (rc == 0)
        rc = s_read_plans (self, json_object_get (root, "plans"), reason, reason_size);
    if (rc == 0)
        rc = s_read_prices (self, json_object_get (root, "prices"), reason, reason_size);
    if (rc == 0 && !named) {
        snprintf (reason, reason_size, "default_plan: expected the name of a plan");
        rc = -1;
    }
    if (rc == 0 && default_plan && *default_plan)
        named = default_plan;
    if (rc == 0 && (self->default_plan = umb_billing_plans_find (self, named)) < 0) {
        snprintf (reason, reason_size, "default plan '%.32s' is not one of the plans", named);
        rc = -1;
    }
    json_decref (root);
    if (rc)
        umb_billing_plans_destroy (&self);
    return self;
}

umb_billing_plans_t *
umb_billing_plans_load (const char *path, const char *default_plan, char *reason,
                        size_t reason_size)
{
    if (!path || !*path) {
        size_t size;
        const char *text = umb_billing_plans_embedded (&size);
        return umb_billing_plans_parse (text, size, default_plan, reason, reason_size);
    }
    FILE *file = fopen (path, "rb");
    if (!file) {
        snprintf (reason, reason_size, "cannot open the plans file %s", path);
        return NULL;
    }
    char *text = malloc (S_FILE_MAX + 1);
    assert (text);
    size_t size = fread (text, 1, S_FILE_MAX + 1, file);
    bool error = ferror (file) != 0;
    fclose (file);
    umb_billing_plans_t *self = NULL;
    if (error || size > S_FILE_MAX)
        snprintf (reason, reason_size, "cannot read the plans file %s (at most %d bytes)", path,
                  S_FILE_MAX);
    else
        self = umb_billing_plans_parse (text, size, default_plan, reason, reason_size);
    free (text);
    return self;
}

void
umb_billing_plans_destroy (umb_billing_plans_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

size_t
umb_billing_plans_count (umb_billing_plans_t *self)
{
    return self->count;
}

const char *
umb_billing_plans_name (umb_billing_plans_t *self, size_t index)
{
    assert (index < self->count);
    return self->plans [index].name;
}

int
umb_billing_plans_find (umb_billing_plans_t *self, const char *name)
{
    for (size_t i = 0; name && i < self->count; i++)
        if (strcmp (self->plans [i].name, name) == 0)
            return (int) i;
    return -1;
}

int
umb_billing_plans_default (umb_billing_plans_t *self)
{
    return self->default_plan;
}

int64_t
umb_billing_plans_limit (umb_billing_plans_t *self, int plan, umb_billing_limit_t limit)
{
    assert (plan >= 0 && (size_t) plan < self->count && limit < UMB_BILLING_LIMITS);
    return self->plans [plan].limits [limit];
}

const umb_billing_price_t *
umb_billing_plans_price (umb_billing_plans_t *self, const char *tee)
{
    for (size_t i = 0; tee && i < UMB_BILLING_TEES; i++)
        if (strcmp (s_tees [i], tee) == 0)
            return &self->prices [i];
    return NULL;
}

//  ceil (a * b / divisor) without overflow; -1 if it does not fit
static int
s_mul_div_up (int64_t a, int64_t b, int64_t c, int64_t divisor, int64_t *result)
{
    unsigned __int128 product = (unsigned __int128) a * (unsigned __int128) b;
    product *= (unsigned __int128) c;
    unsigned __int128 quotient = (product + (unsigned __int128) divisor - 1)
                               / (unsigned __int128) divisor;
    if (quotient > (unsigned __int128) INT64_MAX)
        return -1;
    *result = (int64_t) quotient;
    return 0;
}

int
umb_billing_cost (const umb_billing_price_t *price, int64_t vcpus, int64_t memory_mb,
                  int64_t seconds, bool run, int64_t *cost)
{
    assert (price && cost);
    if (vcpus < 0 || memory_mb < 0 || seconds < 0)
        return -1;
    int64_t cpu, memory;
    if (s_mul_div_up (vcpus, seconds, price->vcpu_hour, 3600, &cpu)
    ||  s_mul_div_up (memory_mb, seconds, price->memory_gib_hour, 1024 * 3600, &memory))
        return -1;
    int64_t fee = run ? price->run : 0;
    if (cpu > INT64_MAX - memory || cpu + memory > INT64_MAX - fee)
        return -1;
    *cost = cpu + memory + fee;
    return 0;
}

//  ---------------------------------------------------------------- selftest

static void
s_refused (const char *text, const char *expected)
{
    char reason [256] = "";
    umb_billing_plans_t *plans = umb_billing_plans_parse (text, strlen (text), NULL, reason,
                                                          sizeof reason);
    assert (plans == NULL);
    if (!strstr (reason, expected)) {
        fprintf (stderr, "plans refused with '%s', expected '%s'\n", reason, expected);
        assert (false);
    }
}

void
umb_billing_plans_test (bool verbose)
{
    if (verbose)
        printf (" * umb_billing_plans: ");
    char reason [256];
    //  The built-in plans are the deploy file's
    umb_billing_plans_t *plans = umb_billing_plans_load ("", "", reason, sizeof reason);
    assert (plans);
    assert (umb_billing_plans_count (plans) == 3);
    int free_plan = umb_billing_plans_find (plans, "free");
    assert (free_plan >= 0 && umb_billing_plans_default (plans) == free_plan);
    assert (umb_billing_plans_limit (plans, free_plan, UMB_BILLING_LIMIT_COMPUTATIONS) == 5);
    int enterprise = umb_billing_plans_find (plans, "enterprise");
    assert (umb_billing_plans_limit (plans, enterprise, UMB_BILLING_LIMIT_MEMBERS)
            == UMB_BILLING_UNLIMITED);
    assert (umb_billing_plans_find (plans, "gold") == -1);
    const umb_billing_price_t *tdx = umb_billing_plans_price (plans, "tdx");
    assert (tdx && tdx->vcpu_hour == 40000 && tdx->run == 10000);
    assert (umb_billing_plans_price (plans, "sgx") == NULL);
    umb_billing_plans_destroy (&plans);
    plans = umb_billing_plans_load ("", "team", reason, sizeof reason);
    assert (umb_billing_plans_default (plans) == umb_billing_plans_find (plans, "team"));
    umb_billing_plans_destroy (&plans);
    assert (!umb_billing_plans_load ("", "gold", reason, sizeof reason));
    assert (strstr (reason, "'gold' is not one of the plans"));
    assert (!umb_billing_plans_load ("/nonexistent/plans.json", "", reason, sizeof reason));

    //  Costs: whole hours, partial ones rounded up per component, and the fee
    umb_billing_price_t price = { 40000, 8000, 10000 };
    int64_t cost;
    assert (umb_billing_cost (&price, 2, 4096, 3600, false, &cost) == 0);
    assert (cost == 2 * 40000 + 4 * 8000);
    assert (umb_billing_cost (&price, 2, 4096, 3600, true, &cost) == 0);
    assert (cost == 2 * 40000 + 4 * 8000 + 10000);
    assert (umb_billing_cost (&price, 1, 1024, 1, false, &cost) == 0);
    assert (cost == 12 + 3);                //  40000/3600 = 11.1 -> 12, 8000/3600 = 2.2 -> 3
    assert (umb_billing_cost (&price, 1, 1024, 0, false, &cost) == 0 && cost == 0);
    umb_billing_price_t dear = { INT64_MAX, INT64_MAX, 0 };
    assert (umb_billing_cost (&dear, 1024, 4194304, 2592000, false, &cost) == -1);
    assert (umb_billing_cost (&price, -1, 1, 1, false, &cost) == -1);

    //  Bad files name what is wrong
    s_refused ("[]", "not a JSON object");
    s_refused ("{", "not JSON");
    const char *prices = "\"prices\": {\"none\": {\"vcpu_hour\": 1, \"memory_gib_hour\": 1, "
                         "\"run\": 0}, \"sev-snp\": {\"vcpu_hour\": 1, \"memory_gib_hour\": 1, "
                         "\"run\": 0}, \"tdx\": {\"vcpu_hour\": 1, \"memory_gib_hour\": 1, \"run\": 0}}";
    char text [1024];
    snprintf (text, sizeof text, "{\"default_plan\": \"a\", \"plans\": {\"a\": {\"computations\": -1, "
              "\"runs_per_month\": 1, \"concurrent_cvms\": 1, \"vcpu_hours_per_month\": 1, "
              "\"members\": 1}}, %s}", prices);
    s_refused (text, "plans.a.computations: expected an integer");
    snprintf (text, sizeof text, "{\"default_plan\": \"a\", \"plans\": {\"A b\": {}}, %s}", prices);
    s_refused (text, "a plan's name");
    snprintf (text, sizeof text, "{\"default_plan\": \"a\", \"plans\": {\"a\": {\"computations\": 1, "
              "\"runs_per_month\": 1, \"concurrent_cvms\": 1, \"vcpu_hours_per_month\": 1, "
              "\"members\": 1, \"gpus\": 1}}, %s}", prices);
    s_refused (text, "unknown field 'gpus'");
    snprintf (text, sizeof text, "{\"default_plan\": \"b\", \"plans\": {\"a\": {\"computations\": 1, "
              "\"runs_per_month\": 1, \"concurrent_cvms\": 1, \"vcpu_hours_per_month\": null, "
              "\"members\": 1}}, %s}", prices);
    s_refused (text, "default plan 'b'");
    snprintf (text, sizeof text, "{\"default_plan\": \"a\", \"plans\": {\"a\": {\"computations\": 1, "
              "\"runs_per_month\": 1, \"concurrent_cvms\": 1, \"vcpu_hours_per_month\": null, "
              "\"members\": 1}}, \"prices\": {\"none\": {\"vcpu_hour\": 1, "
              "\"memory_gib_hour\": 1, \"run\": 0}}}");
    s_refused (text, "prices.sev-snp: expected an object");
    snprintf (text, sizeof text, "{\"default_plan\": \"a\", \"plans\": {\"a\": {\"computations\": 1, "
              "\"runs_per_month\": 1, \"concurrent_cvms\": 1, \"vcpu_hours_per_month\": null, "
              "\"members\": 1}}, %s}", prices);
    plans = umb_billing_plans_parse (text, strlen (text), NULL, reason, sizeof reason);
    assert (plans);
    assert (umb_billing_plans_limit (plans, 0, UMB_BILLING_LIMIT_VCPU_HOURS) == UMB_BILLING_UNLIMITED);
    umb_billing_plans_destroy (&plans);
    if (verbose)
        printf ("OK\n");
}
