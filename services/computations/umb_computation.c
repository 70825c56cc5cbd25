//  umb_computation - a computation's definition, participants and manifest
#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include "umb_computation.h"
#include "umb_hex.h"
#include "umb_reason.h"
#include "umb_utf8.h"
#include "umb_manifest.h"
#include "umb_policy.h"
#include "umb_sig.h"

#define S_STREQ(a, b) (strcmp ((a), (b)) == 0)

#define S_NAME_MAX          128
#define S_DESCRIPTION_MAX   4096
#define S_ARG_MAX           1024
#define S_POLICY_MAX        65536
#define S_KEY_MAX           16384
#define S_AGENT_PORT        "7002"

static const char *const s_tees [] = { "none", "sev-snp", "tdx", NULL };
static const char *const s_types [] = { "python", "bin", NULL };

//  Limits of the manifest's "limits" (docs/manifest.md)
static const struct {
    const char *key;
    size_t      offset;
    int64_t     min, max;
} s_limits [] = {
    { "memory_mb",    offsetof (umb_computation_t, limit_memory_mb),    16, 1048576 },
    { "cpus",         offsetof (umb_computation_t, limit_cpus),         1, 256 },
    { "pids",         offsetof (umb_computation_t, limit_pids),         1, 65536 },
    { "results_mb",   offsetof (umb_computation_t, limit_results_mb),   1, 1048576 },
    { "output_lines", offsetof (umb_computation_t, limit_output_lines), 0, 1000000 },
};
#define S_LIMITS (sizeof (s_limits) / sizeof (s_limits [0]))

static int64_t *
s_limit (umb_computation_t *self, size_t index)
{
    return (int64_t *) ((char *) self + s_limits [index].offset);
}

static int64_t
s_limit_get (const umb_computation_t *self, size_t index)
{
    return *(const int64_t *) ((const char *) self + s_limits [index].offset);
}

//  Formats a rule's refusal into reason; returns 422
static int
s_rule (char *reason, size_t size, const char *format, ...) __attribute__ ((format (printf, 3, 4)));

static int
s_rule (char *reason, size_t size, const char *format, ...)
{
    if (reason && size) {
        va_list args;
        va_start (args, format);
        vsnprintf (reason, size, format, args);
        va_end (args);
    }
    return 422;
}

static bool
s_one_of (const char *value, const char *const *choices)
{
    for (size_t i = 0; choices [i]; i++)
        if (S_STREQ (value, choices [i]))
            return true;
    return false;
}

//  1..max bytes of UTF-8 without control characters
static bool
s_text_ok (const char *text, size_t min, size_t max)
{
    size_t size = strlen (text);
    if (size < min || size > max || !umb_utf8_valid (text, size))
        return false;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

static bool
s_hash_ok (const char *hash)
{
    if (strlen (hash) != 64)
        return false;
    for (const char *c = hash; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

static bool
s_filename_ok (const char *name)
{
    size_t size = strlen (name);
    return size >= 1 && size <= 255 && !strchr (name, '/') && !S_STREQ (name, ".")
        && !S_STREQ (name, "..") && umb_utf8_valid (name, size);
}

void
umb_computation_init (umb_computation_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
    self->description = strdup ("");
    assert (self->description);
    snprintf (self->algo_type, sizeof self->algo_type, "python");
    snprintf (self->tee, sizeof self->tee, "none");
    self->vcpus = 1;
    self->memory_mb = 1024;
    self->run_timeout_s = 3600;
    for (size_t i = 0; i < S_LIMITS; i++)
        *s_limit (self, i) = -1;
}

void
umb_computation_clear (umb_computation_t *self)
{
    if (!self)
        return;
    free (self->description);
    for (size_t i = 0; i < self->algo_args_count; i++)
        free (self->algo_args [i]);
    free (self->algo_args);
    free (self->datasets);
    free (self->consumers);
    free (self->policy);
    memset (self, 0, sizeof *self);
}

//  A deep copy of from into to (to is overwritten, not freed)
static void
s_copy (umb_computation_t *to, const umb_computation_t *from)
{
    *to = *from;
    to->description = strdup (from->description ? from->description : "");
    to->policy = from->policy ? strdup (from->policy) : NULL;
    to->algo_args = calloc (from->algo_args_count + 1, sizeof (char *));
    for (size_t i = 0; i < from->algo_args_count; i++)
        to->algo_args [i] = strdup (from->algo_args [i]);
    to->datasets = calloc (from->datasets_count + 1, sizeof (umb_computation_dataset_t));
    if (from->datasets_count)
        memcpy (to->datasets, from->datasets, from->datasets_count * sizeof (umb_computation_dataset_t));
    to->consumers = calloc (from->consumers_count + 1, sizeof (umb_computation_user_t));
    if (from->consumers_count)
        memcpy (to->consumers, from->consumers, from->consumers_count * sizeof (umb_computation_user_t));
    assert (to->description && to->algo_args && to->datasets && to->consumers);
}

//  ---------------------------------------------------------------- reading

//  Reads the algorithm map into next; 0, or 422 with the reason (a type
//  error is left in the document)
static int
s_read_algorithm (umb_computation_t *next, umb_msg_t *algorithm, bool update, char *reason,
                  size_t size)
{
    const char *provider = umb_msg_str (algorithm, "provider", 128, !update);
    const char *type = umb_msg_str (algorithm, "type", 16, false);
    const char *hash = umb_msg_str (algorithm, "hash", 128, false);
    size_t args_count = 0;
    const char **args = umb_msg_strv (algorithm, "args", UMB_COMPUTATION_MAX_ITEMS, S_ARG_MAX,
                                      &args_count, false);
    bool has_requirements = umb_msg_has (algorithm, "requirements");
    bool requirements = umb_msg_bool (algorithm, "requirements", false, false);
    if (umb_msg_failed (algorithm))
        return 400;
    if (provider) {
        if (!*provider)
            return s_rule (reason, size, "algorithm.provider: empty");
        snprintf (next->algo_provider, sizeof next->algo_provider, "%s", provider);
    }
    if (type) {
        if (!s_one_of (type, s_types))
            return s_rule (reason, size, "algorithm.type: '%.16s' is not python or bin",
                                   type);
        snprintf (next->algo_type, sizeof next->algo_type, "%s", type);
    }
    if (umb_msg_has (algorithm, "hash")) {
        if (hash && !s_hash_ok (hash))
            return s_rule (reason, size, "algorithm.hash: not 64 lowercase hex digits "
                                   "(SHA3-256, as umbra checksum prints)");
        snprintf (next->algo_hash, sizeof next->algo_hash, "%s", hash ? hash : "");
    }
    if (args) {
        if (args_count > UMB_COMPUTATION_MAX_ARGS)
            return s_rule (reason, size, "algorithm.args: %zu arguments, at most %d",
                                   args_count, UMB_COMPUTATION_MAX_ARGS);
        for (size_t i = 0; i < args_count; i++)
            if (!umb_utf8_valid (args [i], strlen (args [i])))
                return s_rule (reason, size, "algorithm.args[%zu]: not UTF-8", i);
        for (size_t i = 0; i < next->algo_args_count; i++)
            free (next->algo_args [i]);
        free (next->algo_args);
        next->algo_args = calloc (args_count + 1, sizeof (char *));
        assert (next->algo_args);
        for (size_t i = 0; i < args_count; i++)
            next->algo_args [i] = strdup (args [i]);
        next->algo_args_count = args_count;
    }
    if (has_requirements)
        next->algo_requirements = requirements;
    return 0;
}

static int
s_read_datasets (umb_computation_t *next, umb_msg_t *datasets, char *reason, size_t size)
{
    size_t count = umb_msg_size (datasets);
    umb_computation_dataset_t *items = calloc (count + 1, sizeof (umb_computation_dataset_t));
    assert (items);
    int status = 0;
    for (size_t i = 0; i < count && status == 0; i++) {
        umb_msg_t *item = umb_msg_at (datasets, i);
        if (!umb_msg_is_map (item)) {
            umb_msg_fail (datasets, "datasets[%zu]: not a map", i);
            status = 400;
            break;
        }
        const char *provider = umb_msg_str (item, "provider", 128, true);
        const char *filename = umb_msg_str (item, "filename", 512, true);
        const char *hash = umb_msg_str (item, "hash", 128, false);
        bool decompress = umb_msg_bool (item, "decompress", false, false);
        if (umb_msg_failed (item)) {
            status = 400;
            break;
        }
        if (!*provider)
            status = s_rule (reason, size, "datasets[%zu].provider: empty", i);
        else
        if (!s_filename_ok (filename))
            status = s_rule (reason, size, "datasets[%zu].filename: not a safe file name "
                                     "(1..255 bytes, no '/', not '.' or '..')", i);
        else
        if (hash && !s_hash_ok (hash))
            status = s_rule (reason, size, "datasets[%zu].hash: not 64 lowercase hex digits",
                                     i);
        for (size_t j = 0; j < i && status == 0; j++) {
            if (S_STREQ (items [j].filename, filename))
                status = s_rule (reason, size, "datasets[%zu].filename: '%.64s' is named "
                                         "twice", i, filename);
            else
            if (hash && S_STREQ (items [j].hash, hash))
                status = s_rule (reason, size, "datasets[%zu].hash: the same as "
                                         "datasets[%zu]'s", i, j);
        }
        if (status == 0) {
            snprintf (items [i].provider, sizeof items [i].provider, "%s", provider);
            snprintf (items [i].filename, sizeof items [i].filename, "%s", filename);
            snprintf (items [i].hash, sizeof items [i].hash, "%s", hash ? hash : "");
            items [i].decompress = decompress;
        }
    }
    if (status) {
        free (items);
        return status;
    }
    free (next->datasets);
    next->datasets = items;
    next->datasets_count = count;
    return 0;
}

static int
s_read_consumers (umb_computation_t *next, const char **consumers, size_t count, char *reason,
                  size_t size)
{
    if (count == 0)
        return s_rule (reason, size, "consumers: at least one result consumer");
    for (size_t i = 0; i < count; i++) {
        if (!*consumers [i])
            return s_rule (reason, size, "consumers[%zu]: empty", i);
        for (size_t j = 0; j < i; j++)
            if (S_STREQ (consumers [i], consumers [j]))
                return s_rule (reason, size, "consumers: user '%.64s' is named twice",
                                       consumers [i]);
    }
    umb_computation_user_t *items = calloc (count + 1, sizeof (umb_computation_user_t));
    assert (items);
    for (size_t i = 0; i < count; i++)
        snprintf (items [i], sizeof items [i], "%s", consumers [i]);
    free (next->consumers);
    next->consumers = items;
    next->consumers_count = count;
    return 0;
}

static int
s_read_backend (umb_computation_t *next, umb_msg_t *backend, char *reason, size_t size)
{
    const char *tee = umb_msg_str (backend, "tee", 16, false);
    int64_t vcpus = umb_msg_int (backend, "vcpus", INT64_MIN, INT64_MAX, next->vcpus, false);
    int64_t memory = umb_msg_int (backend, "memory_mb", INT64_MIN, INT64_MAX, next->memory_mb, false);
    if (umb_msg_failed (backend))
        return 400;
    if (tee && !s_one_of (tee, s_tees))
        return s_rule (reason, size, "backend.tee: '%.16s' is not a TEE type (none, "
                               "sev-snp, tdx)", tee);
    if (vcpus < 1 || vcpus > 256)
        return s_rule (reason, size, "backend.vcpus: %lld is impossible (1..256)",
                               (long long) vcpus);
    if (memory < 128 || memory > 1048576)
        return s_rule (reason, size, "backend.memory_mb: %lld is impossible "
                               "(128..1048576)", (long long) memory);
    if (tee)
        snprintf (next->tee, sizeof next->tee, "%s", tee);
    next->vcpus = vcpus;
    next->memory_mb = memory;
    return 0;
}

static int
s_read_limits (umb_computation_t *next, umb_msg_t *limits, char *reason, size_t size)
{
    int64_t values [S_LIMITS];
    for (size_t i = 0; i < S_LIMITS; i++)
        values [i] = umb_msg_int (limits, s_limits [i].key, INT64_MIN, INT64_MAX, -1, false);
    if (umb_msg_failed (limits))
        return 400;
    for (size_t i = 0; i < S_LIMITS; i++)
        if (umb_msg_has (limits, s_limits [i].key)
        &&  (values [i] < s_limits [i].min || values [i] > s_limits [i].max))
            return s_rule (reason, size, "limits.%s: %lld is out of range (%lld..%lld)",
                                   s_limits [i].key, (long long) values [i],
                                   (long long) s_limits [i].min, (long long) s_limits [i].max);
    for (size_t i = 0; i < S_LIMITS; i++)
        *s_limit (next, i) = values [i];
    return 0;
}

//  The reader's 400 as a reason
static int
s_bad (umb_msg_t *body, char *reason, size_t size)
{
    umb_reason_set (reason, size, "%s", umb_msg_error (body) ? umb_msg_error (body) : "bad request");
    return 400;
}

int
umb_computation_read (umb_computation_t *self, umb_msg_t *body, bool update, char *reason,
                      size_t reason_size)
{
    assert (self && body);
    umb_computation_t next;
    if (update)
        s_copy (&next, self);
    else
        umb_computation_init (&next);
    int status = 0;
    const char *name = umb_msg_str (body, "name", 256, !update);
    const char *description = umb_msg_str (body, "description", 65536, false);
    umb_msg_t *algorithm = umb_msg_map (body, "algorithm", !update);
    umb_msg_t *datasets = umb_msg_array (body, "datasets", UMB_COMPUTATION_MAX_ITEMS, false);
    size_t consumers_count = 0;
    const char **consumers = umb_msg_strv (body, "consumers", UMB_COMPUTATION_MAX_ITEMS, 128,
                                           &consumers_count, !update);
    umb_msg_t *backend = umb_msg_map (body, "backend", false);
    const char *policy = umb_msg_str (body, "policy", S_POLICY_MAX, false);
    bool has_policy = umb_msg_has (body, "policy");
    int64_t timeout = umb_msg_int (body, "run_timeout_s", INT64_MIN, INT64_MAX, next.run_timeout_s,
                                   false);
    umb_msg_t *limits = umb_msg_map (body, "limits", false);
    if (umb_msg_failed (body)) {
        status = s_bad (body, reason, reason_size);
        goto done;
    }
    if (name) {
        if (!s_text_ok (name, 1, S_NAME_MAX)) {
            status = s_rule (reason, reason_size, "name: 1 to %d bytes of UTF-8 without "
                                     "control characters", S_NAME_MAX);
            goto done;
        }
        snprintf (next.name, sizeof next.name, "%s", name);
    }
    if (description) {
        if (strlen (description) > S_DESCRIPTION_MAX
        ||  !umb_utf8_valid (description, strlen (description))) {
            status = s_rule (reason, reason_size, "description: at most %d bytes of UTF-8",
                                     S_DESCRIPTION_MAX);
            goto done;
        }
        free (next.description);
        next.description = strdup (description);
    }
    if (algorithm && (status = s_read_algorithm (&next, algorithm, update, reason, reason_size))) {
        if (status == 400)
            s_bad (algorithm, reason, reason_size);
        goto done;
    }
    if (datasets && (status = s_read_datasets (&next, datasets, reason, reason_size))) {
        if (status == 400)
            s_bad (datasets, reason, reason_size);
        goto done;
    }
    if (consumers && (status = s_read_consumers (&next, consumers, consumers_count, reason,
                                                 reason_size)))
        goto done;
    if (backend && (status = s_read_backend (&next, backend, reason, reason_size))) {
        if (status == 400)
            s_bad (backend, reason, reason_size);
        goto done;
    }
    if (has_policy) {
        free (next.policy);
        next.policy = NULL;
        if (policy) {
            char why [512] = "";
            umb_policy_t *parsed = umb_policy_parse (policy, why, sizeof why);
            if (!parsed) {
                status = s_rule (reason, reason_size, "policy: %s", why);
                goto done;
            }
            umb_policy_destroy (&parsed);
            next.policy = strdup (policy);
        }
    }
    if (timeout < 1 || timeout > 604800) {
        status = s_rule (reason, reason_size, "run_timeout_s: %lld is out of range "
                                 "(1..604800)", (long long) timeout);
        goto done;
    }
    next.run_timeout_s = timeout;
    if (limits && (status = s_read_limits (&next, limits, reason, reason_size))) {
        if (status == 400)
            s_bad (limits, reason, reason_size);
        goto done;
    }
done:
    if (status) {
        umb_computation_clear (&next);
        return status;
    }
    umb_computation_clear (self);
    *self = next;
    return 0;
}

//  ---------------------------------------------------------------- JSON

char *
umb_computation_to_json (const umb_computation_t *self)
{
    assert (self);
    json_t *args = json_array ();
    for (size_t i = 0; i < self->algo_args_count; i++)
        json_array_append_new (args, json_string (self->algo_args [i]));
    json_t *datasets = json_array ();
    for (size_t i = 0; i < self->datasets_count; i++)
        json_array_append_new (datasets, json_pack ("{s:s, s:s, s:s, s:b}",
            "filename", self->datasets [i].filename, "provider", self->datasets [i].provider,
            "hash", self->datasets [i].hash, "decompress", self->datasets [i].decompress));
    json_t *consumers = json_array ();
    for (size_t i = 0; i < self->consumers_count; i++)
        json_array_append_new (consumers, json_string (self->consumers [i]));
    json_t *limits = json_object ();
    for (size_t i = 0; i < S_LIMITS; i++)
        if (s_limit_get (self, i) >= 0)
            json_object_set_new (limits, s_limits [i].key, json_integer (s_limit_get (self, i)));
    json_t *root = json_pack ("{s:s, s:s, s:{s:s, s:s, s:s, s:o, s:b}, s:o, s:o, "
                              "s:{s:s, s:I, s:I}, s:s*, s:I, s:o}",
        "name", self->name, "description", self->description ? self->description : "",
        "algorithm", "provider", self->algo_provider, "hash", self->algo_hash,
                     "type", self->algo_type, "args", args, "requirements", self->algo_requirements,
        "datasets", datasets, "consumers", consumers,
        "backend", "tee", self->tee, "vcpus", (json_int_t) self->vcpus,
                   "memory_mb", (json_int_t) self->memory_mb,
        "policy", self->policy,
        "run_timeout_s", (json_int_t) self->run_timeout_s,
        "limits", limits);
    assert (root);
    char *text = json_dumps (root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (root);
    return text;
}

int
umb_computation_from_json (umb_computation_t *self, const char *json, char *reason,
                           size_t reason_size)
{
    assert (self && json);
    umb_computation_init (self);
    json_error_t error;
    json_t *root = json_loads (json, JSON_REJECT_DUPLICATES, &error);
    json_t *args = NULL, *datasets = NULL, *consumers = NULL, *limits = NULL;
    const char *name = NULL, *description = NULL, *provider = NULL, *hash = NULL, *type = NULL;
    const char *tee = NULL, *policy = NULL;
    int requirements = 0;
    json_int_t vcpus = 0, memory = 0, timeout = 0;
    if (!root
    ||  json_unpack_ex (root, &error, JSON_STRICT, "{s:s, s:s, s:{s:s, s:s, s:s, s:o, s:b}, s:o, "
                        "s:o, s:{s:s, s:I, s:I}, s?s, s:I, s:o}",
                        "name", &name, "description", &description,
                        "algorithm", "provider", &provider, "hash", &hash, "type", &type,
                                     "args", &args, "requirements", &requirements,
                        "datasets", &datasets, "consumers", &consumers,
                        "backend", "tee", &tee, "vcpus", &vcpus, "memory_mb", &memory,
                        "policy", &policy, "run_timeout_s", &timeout, "limits", &limits)
    ||  !json_is_array (args) || !json_is_array (datasets) || !json_is_array (consumers)
    ||  !json_is_object (limits)) {
        umb_reason_set (reason, reason_size, "stored definition is malformed: %s", error.text);
        json_decref (root);
        return -1;
    }
    snprintf (self->name, sizeof self->name, "%s", name);
    free (self->description);
    self->description = strdup (description);
    snprintf (self->algo_provider, sizeof self->algo_provider, "%s", provider);
    snprintf (self->algo_hash, sizeof self->algo_hash, "%s", hash);
    snprintf (self->algo_type, sizeof self->algo_type, "%s", type);
    self->algo_requirements = requirements;
    self->algo_args_count = json_array_size (args);
    self->algo_args = calloc (self->algo_args_count + 1, sizeof (char *));
    for (size_t i = 0; i < self->algo_args_count; i++) {
        const char *arg = json_string_value (json_array_get (args, i));
        self->algo_args [i] = strdup (arg ? arg : "");
    }
    self->datasets_count = json_array_size (datasets);
    self->datasets = calloc (self->datasets_count + 1, sizeof (umb_computation_dataset_t));
    for (size_t i = 0; i < self->datasets_count; i++) {
        json_t *item = json_array_get (datasets, i);
        umb_computation_dataset_t *dataset = &self->datasets [i];
        snprintf (dataset->filename, sizeof dataset->filename, "%s",
                  json_string_value (json_object_get (item, "filename")) ?: "");
        snprintf (dataset->provider, sizeof dataset->provider, "%s",
                  json_string_value (json_object_get (item, "provider")) ?: "");
        snprintf (dataset->hash, sizeof dataset->hash, "%s",
                  json_string_value (json_object_get (item, "hash")) ?: "");
        dataset->decompress = json_is_true (json_object_get (item, "decompress"));
    }
    self->consumers_count = json_array_size (consumers);
    self->consumers = calloc (self->consumers_count + 1, sizeof (umb_computation_user_t));
    for (size_t i = 0; i < self->consumers_count; i++)
        snprintf (self->consumers [i], sizeof self->consumers [i], "%s",
                  json_string_value (json_array_get (consumers, i)) ?: "");
    snprintf (self->tee, sizeof self->tee, "%s", tee);
    self->vcpus = vcpus;
    self->memory_mb = memory;
    self->policy = policy ? strdup (policy) : NULL;
    self->run_timeout_s = timeout;
    for (size_t i = 0; i < S_LIMITS; i++) {
        json_t *value = json_object_get (limits, s_limits [i].key);
        *s_limit (self, i) = json_is_integer (value) ? json_integer_value (value) : -1;
    }
    json_decref (root);
    assert (self->algo_args && self->datasets && self->consumers && self->description);
    return 0;
}

//  ---------------------------------------------------------------- users and roles

size_t
umb_computation_users (const umb_computation_t *self, const char **users, size_t max)
{
    assert (self && users);
    size_t count = 0;
    const char *all [2 * UMB_COMPUTATION_MAX_ITEMS + 1];
    size_t total = 0;
    if (*self->algo_provider)
        all [total++] = self->algo_provider;
    for (size_t i = 0; i < self->datasets_count; i++)
        all [total++] = self->datasets [i].provider;
    for (size_t i = 0; i < self->consumers_count; i++)
        all [total++] = self->consumers [i];
    for (size_t i = 0; i < total && count < max; i++) {
        bool seen = false;
        for (size_t j = 0; j < count && !seen; j++)
            seen = S_STREQ (users [j], all [i]);
        if (!seen)
            users [count++] = all [i];
    }
    return count;
}

int
umb_computation_resolve (umb_computation_t *self, umb_computation_resolve_fn *resolve, void *arg,
                         char *reason, size_t reason_size)
{
    assert (self && resolve);
    if (!resolve (arg, self->algo_provider))
        return umb_reason_set (reason, reason_size, "algorithm.provider: '%.64s' is not a member "
                               "of this workspace", self->algo_provider);
    for (size_t i = 0; i < self->datasets_count; i++)
        if (!resolve (arg, self->datasets [i].provider))
            return umb_reason_set (reason, reason_size, "datasets[%zu].provider: '%.64s' is not a "
                                   "member of this workspace", i, self->datasets [i].provider);
    for (size_t i = 0; i < self->consumers_count; i++) {
        const char *id = resolve (arg, self->consumers [i]);
        if (!id)
            return umb_reason_set (reason, reason_size, "consumers[%zu]: '%.64s' is not a member "
                                   "of this workspace", i, self->consumers [i]);
        //  By name once and by id once is still twice
        for (size_t j = 0; j < i; j++)
            if (S_STREQ (resolve (arg, self->consumers [j]), id))
                return umb_reason_set (reason, reason_size, "consumers: user '%.64s' is named "
                                       "twice", self->consumers [i]);
    }
    //  Every name resolves: replace them
    char resolved [UMB_COMPUTATION_USER_SIZE];
    snprintf (resolved, sizeof resolved, "%s", resolve (arg, self->algo_provider));
    snprintf (self->algo_provider, sizeof self->algo_provider, "%s", resolved);
    for (size_t i = 0; i < self->datasets_count; i++) {
        snprintf (resolved, sizeof resolved, "%s", resolve (arg, self->datasets [i].provider));
        snprintf (self->datasets [i].provider, sizeof self->datasets [i].provider, "%s", resolved);
    }
    for (size_t i = 0; i < self->consumers_count; i++) {
        snprintf (resolved, sizeof resolved, "%s", resolve (arg, self->consumers [i]));
        snprintf (self->consumers [i], sizeof self->consumers [i], "%s", resolved);
    }
    return 0;
}

unsigned
umb_computation_roles (const umb_computation_t *self, const char *user)
{
    assert (self && user);
    unsigned roles = 0;
    if (S_STREQ (self->owner, user))
        roles |= UMB_ROLE_OWNER;
    if (S_STREQ (self->algo_provider, user))
        roles |= UMB_ROLE_ALGORITHM_PROVIDER;
    for (size_t i = 0; i < self->datasets_count; i++)
        if (S_STREQ (self->datasets [i].provider, user))
            roles |= UMB_ROLE_DATA_PROVIDER;
    for (size_t i = 0; i < self->consumers_count; i++)
        if (S_STREQ (self->consumers [i], user))
            roles |= UMB_ROLE_RESULT_CONSUMER;
    return roles;
}

static const char *const s_role_names [] = {
    "owner", "algorithm_provider", "data_provider", "result_consumer"
};

void
umb_computation_roles_text (unsigned roles, char *text, size_t size)
{
    assert (text && size);
    text [0] = 0;
    for (size_t i = 0; i < 4; i++)
        if (roles & (1u << i)) {
            size_t used = strlen (text);
            snprintf (text + used, size - used, "%s%s", used ? "," : "", s_role_names [i]);
        }
}

int
umb_computation_set_hash (umb_computation_t *self, const char *asset, const char *hash,
                          const char **provider)
{
    assert (self && asset && hash);
    if (S_STREQ (asset, "algorithm")) {
        snprintf (self->algo_hash, sizeof self->algo_hash, "%s", hash);
        if (provider)
            *provider = self->algo_provider;
        return 0;
    }
    for (size_t i = 0; i < self->datasets_count; i++)
        if (S_STREQ (self->datasets [i].filename, asset)) {
            snprintf (self->datasets [i].hash, sizeof self->datasets [i].hash, "%s", hash);
            if (provider)
                *provider = self->datasets [i].provider;
            return 0;
        }
    return -1;
}

//  ---------------------------------------------------------------- keys

int
umb_participant_set_key (umb_participant_t *participant, const char *pem, char *reason,
                         size_t reason_size)
{
    assert (participant && pem);
    if (strlen (pem) > S_KEY_MAX)
        return umb_reason_set (reason, reason_size, "key: longer than %d bytes", S_KEY_MAX);
    char why [256] = "";
    EVP_PKEY *key = umb_sig_public_load_pem (pem, strlen (pem), why, sizeof why);
    if (!key)
        return umb_reason_set (reason, reason_size, "key: %s", why);
    umb_sig_key_type_t type = umb_sig_key_check (key, why, sizeof why);
    uint8_t *der = NULL;
    int der_size = type == UMB_SIG_KEY_NONE ? -1 : umb_sig_public_der (key, &der);
    char *canonical = der_size > 0 ? umb_sig_public_pem (key) : NULL;
    EVP_PKEY_free (key);
    if (type == UMB_SIG_KEY_NONE || der_size <= 0 || !canonical) {
        OPENSSL_free (der);
        free (canonical);
        return umb_reason_set (reason, reason_size, "key: %s", *why ? why : "not usable");
    }
    uint8_t digest [SHA256_DIGEST_LENGTH];
    SHA256 (der, (size_t) der_size, digest);
    OPENSSL_free (der);
    free (participant->key);
    participant->key = canonical;
    snprintf (participant->key_type, sizeof participant->key_type, "%s",
              umb_sig_key_type_name (type));
    umb_hex_encode (digest, sizeof digest, participant->fingerprint);
    return 0;
}

void
umb_participant_clear (umb_participant_t *participant)
{
    if (!participant)
        return;
    free (participant->key);
    memset (participant, 0, sizeof *participant);
}

//  ---------------------------------------------------------------- readiness

static const umb_participant_t *
s_participant (const umb_participant_t *parts, size_t count, const char *user)
{
    for (size_t i = 0; i < count; i++)
        if (S_STREQ (parts [i].user, user))
            return &parts [i];
    return NULL;
}

static void
s_missing_add (char ***missing, size_t *count, char *item)
{
    assert (item);
    *missing = realloc (*missing, (*count + 2) * sizeof (char *));
    assert (*missing);
    (*missing) [(*count)++] = item;
    (*missing) [*count] = NULL;
}

static char *
s_printf (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

static char *
s_printf (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *text = NULL;
    if (vasprintf (&text, format, args) < 0)
        text = NULL;
    va_end (args);
    return text;
}

char **
umb_computation_missing (const umb_computation_t *self, const umb_participant_t *parts,
                         size_t count)
{
    assert (self);
    char **missing = calloc (1, sizeof (char *));
    assert (missing);
    size_t found = 0;
    if (!*self->algo_hash)
        s_missing_add (&missing, &found, strdup ("algorithm.hash"));
    for (size_t i = 0; i < self->datasets_count; i++)
        if (!*self->datasets [i].hash)
            s_missing_add (&missing, &found, s_printf ("datasets[%s].hash",
                                                       self->datasets [i].filename));
    if (self->consumers_count == 0)
        s_missing_add (&missing, &found, strdup ("consumers"));
    const char *users [2 * UMB_COMPUTATION_MAX_ITEMS + 1];
    size_t named = umb_computation_users (self, users, 2 * UMB_COMPUTATION_MAX_ITEMS + 1);
    for (size_t i = 0; i < named; i++) {
        const umb_participant_t *part = s_participant (parts, count, users [i]);
        if (part && part->key)
            continue;
        char roles [96];
        umb_computation_roles_text (umb_computation_roles (self, users [i]) & ~UMB_ROLE_OWNER,
                                    roles, sizeof roles);
        s_missing_add (&missing, &found, s_printf ("key of %s (%s)", users [i], roles));
    }
    return missing;
}

void
umb_computation_missing_free (char ***missing_p)
{
    assert (missing_p);
    for (size_t i = 0; *missing_p && (*missing_p) [i]; i++)
        free ((*missing_p) [i]);
    free (*missing_p);
    *missing_p = NULL;
}

char *
umb_computation_manifest (const umb_computation_t *self, const umb_participant_t *parts,
                          size_t count, char *reason, size_t reason_size)
{
    assert (self);
    char **missing = umb_computation_missing (self, parts, count);
    if (missing [0]) {
        char list [1024] = "";
        for (size_t i = 0; missing [i]; i++) {
            size_t used = strlen (list);
            snprintf (list + used, sizeof list - used, "%s%s", used ? ", " : "", missing [i]);
        }
        umb_reason_set (reason, reason_size, "computation '%s' is not ready: %s", self->id, list);
        umb_computation_missing_free (&missing);
        return NULL;
    }
    umb_computation_missing_free (&missing);
    json_t *args = json_array ();
    for (size_t i = 0; i < self->algo_args_count; i++)
        json_array_append_new (args, json_string (self->algo_args [i]));
    json_t *datasets = json_array ();
    for (size_t i = 0; i < self->datasets_count; i++)
        json_array_append_new (datasets, json_pack ("{s:s, s:s, s:s, s:b}",
            "hash", self->datasets [i].hash,
            "userKey", s_participant (parts, count, self->datasets [i].provider)->key,
            "filename", self->datasets [i].filename, "decompress", self->datasets [i].decompress));
    json_t *consumers = json_array ();
    for (size_t i = 0; i < self->consumers_count; i++)
        json_array_append_new (consumers, json_pack ("{s:s}", "userKey",
            s_participant (parts, count, self->consumers [i])->key));
    json_t *limits = json_object ();
    for (size_t i = 0; i < S_LIMITS; i++)
        if (s_limit_get (self, i) >= 0)
            json_object_set_new (limits, s_limits [i].key, json_integer (s_limit_get (self, i)));
    json_t *root = json_pack ("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:o, s:b}, s:o, s:o, "
                              "s:{s:s, s:b}, s:I}",
        "id", self->id, "name", self->name, "description", self->description,
        "algorithm", "hash", self->algo_hash,
                     "userKey", s_participant (parts, count, self->algo_provider)->key,
                     "type", self->algo_type, "args", args, "requirements", self->algo_requirements,
        "datasets", datasets, "result_consumers", consumers,
        "agent_config", "port", S_AGENT_PORT, "attested_tls", 0,
        "run_timeout_s", (json_int_t) self->run_timeout_s);
    assert (root);
    if (json_object_size (limits))
        json_object_set (root, "limits", limits);
    json_decref (limits);
    char *text = json_dumps (root, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
    json_decref (root);
    assert (text);
    //  The agent's own parser decides: what it refuses is never handed out
    char why [512] = "";
    umb_manifest_t *parsed = umb_manifest_parse (text, strlen (text), why, sizeof why);
    if (!parsed) {
        umb_reason_set (reason, reason_size, "the manifest is refused: %s", why);
        free (text);
        return NULL;
    }
    umb_manifest_destroy (&parsed);
    return text;
}

//  ---------------------------------------------------------------- replies

void
umb_participant_write (const umb_participant_t *participant, umb_w_t *w)
{
    assert (participant && w);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "user", participant->user);
    umb_w_str (w, "roles");
    umb_w_array_begin (w);
    for (size_t i = 0; i < 4; i++)
        if (participant->roles & (1u << i))
            umb_w_str (w, s_role_names [i]);
    umb_w_array_end (w);
    umb_w_kv_str (w, "key", participant->key);
    umb_w_kv_str (w, "key_type", *participant->key_type ? participant->key_type : NULL);
    umb_w_kv_str (w, "key_fingerprint", *participant->fingerprint ? participant->fingerprint : NULL);
    umb_w_map_end (w);
}

void
umb_computation_write (const umb_computation_t *self, const umb_participant_t *parts,
                       size_t count, umb_w_t *w)
{
    assert (self && w);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "id", self->id);
    umb_w_kv_str (w, "workspace_id", self->workspace_id);
    umb_w_kv_str (w, "name", self->name);
    umb_w_kv_str (w, "description", self->description);
    umb_w_kv_str (w, "owner", self->owner);
    umb_w_str (w, "algorithm");
    umb_w_map_begin (w);
    umb_w_kv_str (w, "provider", self->algo_provider);
    umb_w_kv_str (w, "hash", *self->algo_hash ? self->algo_hash : NULL);
    umb_w_kv_str (w, "type", self->algo_type);
    umb_w_str (w, "args");
    umb_w_array_begin (w);
    for (size_t i = 0; i < self->algo_args_count; i++)
        umb_w_str (w, self->algo_args [i]);
    umb_w_array_end (w);
    umb_w_kv_bool (w, "requirements", self->algo_requirements);
    umb_w_map_end (w);
    umb_w_str (w, "datasets");
    umb_w_array_begin (w);
    for (size_t i = 0; i < self->datasets_count; i++) {
        umb_w_map_begin (w);
        umb_w_kv_str (w, "filename", self->datasets [i].filename);
        umb_w_kv_str (w, "provider", self->datasets [i].provider);
        umb_w_kv_str (w, "hash", *self->datasets [i].hash ? self->datasets [i].hash : NULL);
        umb_w_kv_bool (w, "decompress", self->datasets [i].decompress);
        umb_w_map_end (w);
    }
    umb_w_array_end (w);
    umb_w_str (w, "consumers");
    umb_w_array_begin (w);
    for (size_t i = 0; i < self->consumers_count; i++)
        umb_w_str (w, self->consumers [i]);
    umb_w_array_end (w);
    umb_w_str (w, "backend");
    umb_w_map_begin (w);
    umb_w_kv_str (w, "tee", self->tee);
    umb_w_kv_int (w, "vcpus", self->vcpus);
    umb_w_kv_int (w, "memory_mb", self->memory_mb);
    umb_w_map_end (w);
    umb_w_kv_str (w, "policy", self->policy);
    umb_w_kv_int (w, "run_timeout_s", self->run_timeout_s);
    umb_w_str (w, "limits");
    umb_w_map_begin (w);
    for (size_t i = 0; i < S_LIMITS; i++)
        if (s_limit_get (self, i) >= 0)
            umb_w_kv_int (w, s_limits [i].key, s_limit_get (self, i));
    umb_w_map_end (w);
    umb_w_str (w, "participants");
    umb_w_array_begin (w);
    for (size_t i = 0; i < count; i++)
        umb_participant_write (&parts [i], w);
    umb_w_array_end (w);
    umb_w_kv_int (w, "version", self->version);
    umb_w_kv_int (w, "created_at", self->created_at);
    umb_w_kv_int (w, "updated_at", self->updated_at);
    umb_w_map_end (w);
}

//  ---------------------------------------------------------------- selftest

//  Decodes what w holds into a document (the test's request bodies)
static umb_msg_t *
s_test_body (umb_w_t *w)
{
    size_t size;
    const void *data = umb_w_data (w, &size);
    char *error = NULL;
    umb_msg_t *body = umb_msg_decode (data, size, &error);
    assert (body && !error);
    return body;
}

//  A definition body: algorithm by alice, datasets by bob and carol, consumers alice and dave
static umb_msg_t *
s_test_definition (const char *name, const char *hash, const char *consumer)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "name", name);
    umb_w_kv_str (w, "description", "two regions");
    umb_w_str (w, "algorithm");
    umb_w_map_begin (w);
    umb_w_kv_str (w, "provider", "alice");
    umb_w_kv_str (w, "hash", hash);
    umb_w_str (w, "args");
    umb_w_array_begin (w);
    umb_w_str (w, "--rounds");
    umb_w_str (w, "3");
    umb_w_array_end (w);
    umb_w_map_end (w);
    umb_w_str (w, "datasets");
    umb_w_array_begin (w);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "provider", "bob");
    umb_w_kv_str (w, "filename", "north.csv");
    umb_w_map_end (w);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "provider", "usr_carol");
    umb_w_kv_str (w, "filename", "south.tar.gz");
    umb_w_kv_bool (w, "decompress", true);
    umb_w_map_end (w);
    umb_w_array_end (w);
    umb_w_str (w, "consumers");
    umb_w_array_begin (w);
    umb_w_str (w, "alice");
    umb_w_str (w, consumer);
    umb_w_array_end (w);
    umb_w_str (w, "limits");
    umb_w_map_begin (w);
    umb_w_kv_int (w, "memory_mb", 256);
    umb_w_map_end (w);
    umb_w_map_end (w);
    umb_msg_t *body = s_test_body (w);
    umb_w_destroy (&w);
    return body;
}

//  Names to ids: alice, bob, dave by name; usr_carol as it is
static const char *
s_test_resolve (void *arg, const char *name)
{
    static const char *const table [] [2] = {
        { "alice", "usr_alice" }, { "usr_alice", "usr_alice" }, { "bob", "usr_bob" },
        { "usr_bob", "usr_bob" }, { "usr_carol", "usr_carol" }, { "dave", "usr_dave" },
        { "usr_dave", "usr_dave" }, { NULL, NULL }
    };
    (void) arg;
    for (size_t i = 0; table [i][0]; i++)
        if (S_STREQ (table [i][0], name))
            return table [i][1];
    return NULL;
}

//  A one-key body { key: value } with an int or a string
static int
s_test_update (umb_computation_t *self, const char *key, const char *text, int64_t number,
               char *reason, size_t size)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    if (text)
        umb_w_kv_str (w, key, text);
    else
        umb_w_kv_int (w, key, number);
    umb_w_map_end (w);
    umb_msg_t *body = s_test_body (w);
    umb_w_destroy (&w);
    int status = umb_computation_read (self, body, true, reason, size);
    umb_msg_destroy (&body);
    return status;
}

void
umb_computation_test (bool verbose)
{
    if (verbose)
        printf (" * umb_computation: ");
    const char *hash = "bb83f9c1dd657cfdedea029c7a0040945b9a07485ce72b06a703f73fd1f74f6a";
    char reason [512];
    umb_computation_t def;
    umb_computation_init (&def);
    umb_msg_t *body = s_test_definition ("regression", hash, "dave");
    assert (umb_computation_read (&def, body, false, reason, sizeof reason) == 0);
    umb_msg_destroy (&body);
    assert (S_STREQ (def.name, "regression") && S_STREQ (def.algo_type, "python"));
    assert (def.algo_args_count == 2 && S_STREQ (def.algo_args [1], "3"));
    assert (def.datasets_count == 2 && def.datasets [1].decompress && !*def.datasets [0].hash);
    assert (def.consumers_count == 2 && def.limit_memory_mb == 256 && def.limit_cpus == -1);
    assert (def.vcpus == 1 && def.memory_mb == 1024 && S_STREQ (def.tee, "none"));

    //  Users resolve to ids; unknown ones and a user named twice are refused
    const char *users [8];
    assert (umb_computation_users (&def, users, 8) == 4);        //  alice, bob, usr_carol, dave
    assert (umb_computation_resolve (&def, s_test_resolve, NULL, reason, sizeof reason) == 0);
    assert (S_STREQ (def.algo_provider, "usr_alice") && S_STREQ (def.datasets [0].provider, "usr_bob"));
    assert (S_STREQ (def.consumers [1], "usr_dave"));
    snprintf (def.owner, sizeof def.owner, "usr_alice");
    snprintf (def.id, sizeof def.id, "cmp_0123456789abcdef");
    assert (umb_computation_roles (&def, "usr_alice")
            == (UMB_ROLE_OWNER | UMB_ROLE_ALGORITHM_PROVIDER | UMB_ROLE_RESULT_CONSUMER));
    assert (umb_computation_roles (&def, "usr_bob") == UMB_ROLE_DATA_PROVIDER);
    assert (umb_computation_roles (&def, "usr_mallory") == 0);
    char roles [96];
    umb_computation_roles_text (umb_computation_roles (&def, "usr_alice"), roles, sizeof roles);
    assert (S_STREQ (roles, "owner,algorithm_provider,result_consumer"));
    umb_computation_t other;
    umb_computation_init (&other);
    body = s_test_definition ("x", hash, "mallory");
    assert (umb_computation_read (&other, body, false, reason, sizeof reason) == 0);
    umb_msg_destroy (&body);
    assert (umb_computation_resolve (&other, s_test_resolve, NULL, reason, sizeof reason) == -1);
    assert (strstr (reason, "consumers[1]: 'mallory' is not a member"));
    assert (S_STREQ (other.consumers [1], "mallory"));            //  unchanged
    umb_computation_clear (&other);
    umb_computation_init (&other);
    body = s_test_definition ("x", hash, "usr_alice");             //  alice by name and by id
    assert (umb_computation_read (&other, body, false, reason, sizeof reason) == 0);
    umb_msg_destroy (&body);
    assert (umb_computation_resolve (&other, s_test_resolve, NULL, reason, sizeof reason) == -1);
    assert (strstr (reason, "named twice"));
    umb_computation_clear (&other);
    body = s_test_definition ("x", hash, "alice");                 //  the same name twice
    umb_computation_init (&other);
    assert (umb_computation_read (&other, body, false, reason, sizeof reason) == 422);
    assert (strstr (reason, "consumers: user 'alice' is named twice"));
    umb_msg_destroy (&body);
    umb_computation_clear (&other);

    //  Rules: 422 naming the field; self unchanged
    assert (s_test_update (&def, "name", "", 0, reason, sizeof reason) == 422);
    assert (strstr (reason, "name:") && S_STREQ (def.name, "regression"));
    assert (s_test_update (&def, "name", "tab\there", 0, reason, sizeof reason) == 422);
    assert (s_test_update (&def, "run_timeout_s", NULL, 0, reason, sizeof reason) == 422);
    assert (s_test_update (&def, "run_timeout_s", "soon", 0, reason, sizeof reason) == 400);
    assert (s_test_update (&def, "policy", "{\"snp\": {\"no_such_key\": 1}}", 0, reason,
                           sizeof reason) == 422);
    assert (strstr (reason, "policy:") && !def.policy);
    assert (s_test_update (&def, "policy", "{}", 0, reason, sizeof reason) == 0 && def.policy);
    char *huge = calloc (1, 5000);
    memset (huge, 'd', 4999);
    assert (s_test_update (&def, "description", huge, 0, reason, sizeof reason) == 422);
    free (huge);
    assert (s_test_update (&def, "run_timeout_s", NULL, 600, reason, sizeof reason) == 0);
    assert (def.run_timeout_s == 600 && def.datasets_count == 2);  //  the rest kept
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_str (w, "datasets");
    umb_w_array_begin (w);
    for (int i = 0; i < 2; i++) {
        umb_w_map_begin (w);
        umb_w_kv_str (w, "provider", "bob");
        umb_w_kv_str (w, "filename", i ? "../etc" : "a.csv");
        umb_w_map_end (w);
    }
    umb_w_array_end (w);
    umb_w_str (w, "backend");
    umb_w_map_begin (w);
    umb_w_kv_str (w, "tee", "sgx");
    umb_w_map_end (w);
    umb_w_map_end (w);
    body = s_test_body (w);
    umb_w_destroy (&w);
    assert (umb_computation_read (&def, body, true, reason, sizeof reason) == 422);
    assert (strstr (reason, "datasets[1].filename"));
    assert (S_STREQ (def.datasets [0].filename, "north.csv"));
    umb_msg_destroy (&body);

    //  JSON round trip
    char *json = umb_computation_to_json (&def);
    umb_computation_t back;
    assert (umb_computation_from_json (&back, json, reason, sizeof reason) == 0);
    char *again = umb_computation_to_json (&back);
    assert (S_STREQ (json, again));
    free (again);
    free (json);
    umb_computation_clear (&back);
    assert (umb_computation_from_json (&back, "{\"name\": 1}", reason, sizeof reason) == -1);
    umb_computation_clear (&back);

    //  Readiness: hashes and keys missing, then none
    umb_participant_t parts [4];
    memset (parts, 0, sizeof parts);
    const char *ids [] = { "usr_alice", "usr_bob", "usr_carol", "usr_dave" };
    for (size_t i = 0; i < 4; i++) {
        snprintf (parts [i].user, sizeof parts [i].user, "%s", ids [i]);
        parts [i].roles = umb_computation_roles (&def, ids [i]);
    }
    char **missing = umb_computation_missing (&def, parts, 4);
    size_t count = 0;
    while (missing [count])
        count++;
    assert (count == 6);        //  two dataset hashes, four keys
    assert (S_STREQ (missing [0], "datasets[north.csv].hash"));
    assert (S_STREQ (missing [2], "key of usr_alice (algorithm_provider,result_consumer)"));
    umb_computation_missing_free (&missing);
    assert (!umb_computation_manifest (&def, parts, 4, reason, sizeof reason));
    assert (strstr (reason, "is not ready: datasets[north.csv].hash"));
    const char *provider = NULL;
    assert (umb_computation_set_hash (&def, "north.csv", "52c23179bf258941e3552a280e655f99b9bba323f07ea30e1ae653783182c959",
                                      &provider) == 0 && S_STREQ (provider, "usr_bob"));
    assert (umb_computation_set_hash (&def, "south.tar.gz", "b054fb55bf3d2706f91eedc9868efcc83297abfe10875584466e46eb4b163439",
                                      NULL) == 0);
    assert (umb_computation_set_hash (&def, "west.csv", hash, NULL) == -1);
    const char *types [] = { "ed25519", "ecdsa", "ecdsa-p384", "rsa" };
    for (size_t i = 0; i < 4; i++) {
        EVP_PKEY *key = umb_sig_key_generate (types [i]);
        assert (key);
        char *pem = umb_sig_public_pem (key);
        EVP_PKEY_free (key);
        assert (umb_participant_set_key (&parts [i], pem, reason, sizeof reason) == 0);
        assert (strlen (parts [i].fingerprint) == 64);
        free (pem);
    }
    assert (S_STREQ (parts [1].key_type, "ecdsa-p256") && S_STREQ (parts [3].key_type, "rsa"));
    assert (umb_participant_set_key (&parts [0], "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                                     reason, sizeof reason) == -1);
    assert (strstr (reason, "key:") && S_STREQ (parts [0].key_type, "ed25519"));   //  kept
    missing = umb_computation_missing (&def, parts, 4);
    assert (missing [0] == NULL);
    umb_computation_missing_free (&missing);
    char *manifest = umb_computation_manifest (&def, parts, 4, reason, sizeof reason);
    assert (manifest);
    umb_manifest_t *parsed = umb_manifest_parse (manifest, strlen (manifest), reason, sizeof reason);
    assert (parsed && S_STREQ (umb_manifest_id (parsed), "cmp_0123456789abcdef"));
    assert (umb_manifest_dataset_count (parsed) == 2);
    assert (S_STREQ (umb_manifest_algorithm_hash_hex (parsed), hash));
    umb_manifest_destroy (&parsed);
    assert (strstr (manifest, "\"memory_mb\": 256"));
    free (manifest);

    //  The reply
    w = umb_w_new ();
    umb_computation_write (&def, parts, 4, w);
    body = s_test_body (w);
    umb_w_destroy (&w);
    assert (S_STREQ (umb_msg_str (body, "name", 200, true), "regression"));
    umb_msg_t *list = umb_msg_array (body, "participants", 10, true);
    assert (list && umb_msg_size (list) == 4);
    assert (S_STREQ (umb_msg_str (umb_msg_at (list, 3), "key_type", 16, true), "rsa"));
    assert (!umb_msg_failed (body));
    umb_msg_destroy (&body);
    for (size_t i = 0; i < 4; i++)
        umb_participant_clear (&parts [i]);
    umb_computation_clear (&def);
    if (verbose)
        printf ("OK\n");
}
