//  umb_manifest - the computation manifest: CocosAI's JSON plus umbra's additions
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <jansson.h>
#include "umb_manifest.h"
#include "umb_hex.h"
#include "umb_reason.h"
#include "umb_sig.h"

//  Defaults and bounds of the run settings
#define S_TIMEOUT_DEFAULT      3600
#define S_TIMEOUT_MAX          604800

typedef struct {
    const char *name;
    uint64_t    fallback;
    uint64_t    min;
    uint64_t    max;
} s_limit_t;

//  The order is the order of umb_manifest_limits_t's fields
static const s_limit_t s_limits [] = {
    { "memory_mb",    1024,  16, 1048576 },
    { "cpus",         1,     1,  1024 },
    { "pids",         256,   1,  65536 },
    { "results_mb",   100,   1,  1048576 },
    { "output_lines", 10000, 0,  10000000 },
    { "workdir_mb",   10240, 1,  16777216 },
    { NULL }
};

typedef struct {
    uint8_t   hash [UMB_SIG_HASH_SIZE];
    char      hash_hex [UMB_SIG_HASH_HEX_SIZE];
    EVP_PKEY *key;
    char     *filename;         //  datasets only
    bool      decompress;       //  datasets only
} s_entry_t;

struct _umb_manifest_t {
    char                 *json;
    char                 *id;
    char                 *name;
    char                 *description;
    s_entry_t             algorithm;
    umb_manifest_algo_type_t algo_type;
    char                **args;
    size_t                arg_count;
    bool                  requirements;
    s_entry_t            *datasets;
    size_t                dataset_count;
    EVP_PKEY            **consumers;
    uint8_t             **consumer_ders;    //  DER SubjectPublicKeyInfo of each
    int                  *consumer_der_lens;
    size_t               *consumer_first;   //  index of the first consumer with the same key
    size_t                consumer_count;
    size_t                consumer_distinct;
    uint32_t              run_timeout_s;
    umb_manifest_limits_t limits;
    char                 *agent_port;
    bool                  agent_attested_tls;
};

//  Parsing state: where we are (the JSON path) and why we stopped
typedef struct {
    char  *reason;
    size_t reason_size;
    bool   failed;
} s_parser_t;

static void
s_fail (s_parser_t *parser, const char *path, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_fail (s_parser_t *parser, const char *path, const char *format, ...)
{
    if (parser->failed)
        return;                         //  the first reason is the one that counts
    parser->failed = true;
    if (!parser->reason || parser->reason_size == 0)
        return;
    char message [512];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof (message), format, args);
    va_end (args);
    if (path && *path)
        snprintf (parser->reason, parser->reason_size, "%s: %s", path, message);
    else
        snprintf (parser->reason, parser->reason_size, "%s", message);
}

static const char *
s_json_type_name (json_t *value)
{
    switch (json_typeof (value)) {
        case JSON_OBJECT:  return "an object";
        case JSON_ARRAY:   return "an array";
        case JSON_STRING:  return "a string";
        case JSON_INTEGER: return "an integer";
        case JSON_REAL:    return "a number";
        case JSON_TRUE:
        case JSON_FALSE:   return "a boolean";
        default:           return "null";
    }
}

//  Path of a member: "parent.key" or "key"
static void
s_path (char *out, size_t size, const char *parent, const char *key)
{
    if (parent && *parent)
        snprintf (out, size, "%s.%s", parent, key);
    else
        snprintf (out, size, "%s", key);
}

//  Gets an optional member of the expected JSON type; NULL if absent (or
//  null, as Go's omitempty peers may send). A wrong type fails.
static json_t *
s_member (s_parser_t *parser, json_t *object, const char *parent, const char *key,
          json_type type, const char *type_name)
{
    json_t *value = json_object_get (object, key);
    if (!value || json_is_null (value))
        return NULL;
    bool ok = json_typeof (value) == type
           || (type == JSON_TRUE && json_is_boolean (value));
    if (!ok) {
        char path [300];
        s_path (path, sizeof (path), parent, key);
        s_fail (parser, path, "expected %s, got %s", type_name, s_json_type_name (value));
        return NULL;
    }
    return value;
}

//  A string member: NULL when absent; fails on a wrong type
static const char *
s_string (s_parser_t *parser, json_t *object, const char *parent, const char *key)
{
    json_t *value = s_member (parser, object, parent, key, JSON_STRING, "a string");
    return value ? json_string_value (value) : NULL;
}

static bool
s_bool (s_parser_t *parser, json_t *object, const char *parent, const char *key)
{
    json_t *value = s_member (parser, object, parent, key, JSON_TRUE, "a boolean");
    return value ? json_is_true (value) : false;
}

//  An integer member within [min, max], or fallback when absent
static uint64_t
s_integer (s_parser_t *parser, json_t *object, const char *parent, const char *key,
           uint64_t fallback, uint64_t min, uint64_t max)
{
    json_t *value = s_member (parser, object, parent, key, JSON_INTEGER, "an integer");
    if (!value)
        return fallback;
    json_int_t number = json_integer_value (value);
    if (number < 0 || (uint64_t) number < min || (uint64_t) number > max) {
        char path [300];
        s_path (path, sizeof (path), parent, key);
        s_fail (parser, path, "%lld is out of range (%llu..%llu)", (long long) number,
                (unsigned long long) min, (unsigned long long) max);
        return fallback;
    }
    return (uint64_t) number;
}

//  A SHA3-256: 64 hex chars, or CocosAI's [32]byte as 32 integers 0..255
static void
s_hash (s_parser_t *parser, json_t *object, const char *parent, s_entry_t *entry)
{
    char path [300];
    s_path (path, sizeof (path), parent, "hash");
    json_t *value = json_object_get (object, "hash");
    if (!value || json_is_null (value)) {
        s_fail (parser, path, "missing (SHA3-256 of the asset, 64 hex chars)");
        return;
    }
    if (json_is_string (value)) {
        const char *hex = json_string_value (value);
        if (json_string_length (value) != 2 * UMB_SIG_HASH_SIZE) {
            s_fail (parser, path, "a SHA3-256 is 64 hex chars, not %zu", json_string_length (value));
            return;
        }
        if (umb_hex_decode (hex, entry->hash, UMB_SIG_HASH_SIZE)) {
            s_fail (parser, path, "not hex");
            return;
        }
    }
    else
    if (json_is_array (value)) {
        if (json_array_size (value) != UMB_SIG_HASH_SIZE) {
            s_fail (parser, path, "a SHA3-256 is 32 bytes, not %zu", json_array_size (value));
            return;
        }
        for (size_t i = 0; i < UMB_SIG_HASH_SIZE; i++) {
            json_t *byte = json_array_get (value, i);
            if (!json_is_integer (byte)
            ||  json_integer_value (byte) < 0 || json_integer_value (byte) > 255) {
                s_fail (parser, path, "element %zu is not an integer 0..255", i);
                return;
            }
            entry->hash [i] = (uint8_t) json_integer_value (byte);
        }
    }
    else {
        s_fail (parser, path, "expected 64 hex chars or an array of 32 bytes, got %s",
                s_json_type_name (value));
        return;
    }
    umb_hex_encode (entry->hash, UMB_SIG_HASH_SIZE, entry->hash_hex);
}

//  Decodes standard base64 (with padding); returns the length or -1
static int
s_base64_decode (const char *text, size_t len, uint8_t **out)
{
    *out = NULL;
    if (len == 0 || len % 4 != 0 || len > 64 * 1024)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = text [i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
               || c == '+' || c == '/' || (c == '=' && i >= len - 2);
        if (!ok)
            return -1;
    }
    if (text [len - 2] == '=' && text [len - 1] != '=')
        return -1;
    uint8_t *buffer = malloc (len / 4 * 3 + 1);
    if (!buffer)
        return -1;
    int size = EVP_DecodeBlock (buffer, (const unsigned char *) text, (int) len);
    if (size < 0) {
        free (buffer);
        return -1;
    }
    //  EVP_DecodeBlock counts the padding as zero bytes
    if (text [len - 1] == '=')
        size--;
    if (text [len - 2] == '=')
        size--;
    *out = buffer;
    return size;
}

static bool
s_is_pem (const char *text, size_t len)
{
    static const char begin [] = "-----BEGIN";
    //  Leading blanks are allowed, as PEM readers skip them
    while (len > 0 && strchr (" \t\r\n", *text)) {
        text++;
        len--;
    }
    return len >= sizeof (begin) - 1 && memcmp (text, begin, sizeof (begin) - 1) == 0;
}

//  A participant's key: "userKey" (PEM, as DESIGN names it) or "user_key"
//  (CocosAI's Go encoding of []byte: base64 of DER SubjectPublicKeyInfo, or
//  of PEM; PEM text is taken as well).
static EVP_PKEY *
s_user_key (s_parser_t *parser, json_t *object, const char *parent)
{
    char path [300];
    json_t *camel = json_object_get (object, "userKey");
    json_t *snake = json_object_get (object, "user_key");
    if (camel && json_is_null (camel))
        camel = NULL;
    if (snake && json_is_null (snake))
        snake = NULL;
    if (camel && snake) {
        s_path (path, sizeof (path), parent, "userKey");
        s_fail (parser, path, "both userKey and user_key given; use one");
        return NULL;
    }
    if (!camel && !snake) {
        s_path (path, sizeof (path), parent, "userKey");
        s_fail (parser, path, "missing (the participant's PEM public key)");
        return NULL;
    }
    json_t *value = camel ? camel : snake;
    s_path (path, sizeof (path), parent, camel ? "userKey" : "user_key");
    if (!json_is_string (value)) {
        s_fail (parser, path, "expected a string (PEM public key), got %s", s_json_type_name (value));
        return NULL;
    }
    const char *text = json_string_value (value);
    size_t len = json_string_length (value);
    char why [256] = "";
    EVP_PKEY *key = NULL;
    if (s_is_pem (text, len))
        key = umb_sig_public_load_pem (text, len, why, sizeof (why));
    else
    if (snake) {
        uint8_t *bytes = NULL;
        int size = s_base64_decode (text, len, &bytes);
        if (size <= 0)
            snprintf (why, sizeof (why), "neither PEM nor base64");
        else
        if (s_is_pem ((const char *) bytes, (size_t) size))
            key = umb_sig_public_load_pem ((const char *) bytes, (size_t) size, why, sizeof (why));
        else {
            const unsigned char *cursor = bytes;
            key = d2i_PUBKEY (NULL, &cursor, size);
            if (!key)
                snprintf (why, sizeof (why), "not a DER SubjectPublicKeyInfo");
            else
            if (cursor != bytes + size) {
                snprintf (why, sizeof (why), "data after the DER public key");
                EVP_PKEY_free (key);
                key = NULL;
            }
            else
            if (umb_sig_key_check (key, why, sizeof (why)) == UMB_SIG_KEY_NONE) {
                EVP_PKEY_free (key);
                key = NULL;
            }
            ERR_clear_error ();
        }
        free (bytes);
    }
    else
        snprintf (why, sizeof (why), "not a PEM public key (-----BEGIN PUBLIC KEY-----)");
    if (!key)
        s_fail (parser, path, "%s", why);
    return key;
}

//  A dataset's file name: a safe basename
static const char *
s_filename_problem (const char *name, size_t len)
{
    if (len == 0)
        return "empty";
    if (len > UMB_MANIFEST_MAX_FILENAME)
        return "longer than 255 bytes";
    if (name [0] == '.')
        return "starts with '.'";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) name [i];
        if (c == '/')
            return "holds '/'";
        if (c < 0x20 || c == 0x7f)
            return "holds a control character";
    }
    if (strstr (name, ".."))
        return "holds \"..\"";
    return NULL;
}

static void
s_entry_free (s_entry_t *entry)
{
    EVP_PKEY_free (entry->key);
    free (entry->filename);
}

static void
s_parse_algorithm (s_parser_t *parser, umb_manifest_t *self, json_t *root)
{
    json_t *algo = json_object_get (root, "algorithm");
    if (!algo || json_is_null (algo)) {
        //  An old CocosAI manifest names "algorithms" (a list); say so
        if (json_object_get (root, "algorithms"))
            s_fail (parser, "algorithm", "missing (\"algorithms\" is the old CocosAI form; "
                    "give one \"algorithm\" object)");
        else
            s_fail (parser, "algorithm", "missing");
        return;
    }
    if (!json_is_object (algo)) {
        s_fail (parser, "algorithm", "expected an object, got %s", s_json_type_name (algo));
        return;
    }
    s_hash (parser, algo, "algorithm", &self->algorithm);
    if (parser->failed)
        return;
    self->algorithm.key = s_user_key (parser, algo, "algorithm");
    if (parser->failed)
        return;
    const char *type = s_string (parser, algo, "algorithm", "type");
    if (!type || strcmp (type, "bin") == 0)
        self->algo_type = UMB_MANIFEST_ALGO_BIN;
    else
    if (strcmp (type, "python") == 0)
        self->algo_type = UMB_MANIFEST_ALGO_PYTHON;
    else {
        s_fail (parser, "algorithm.type", "\"%s\" is not a type (\"bin\" or \"python\")", type);
        return;
    }
    json_t *args = s_member (parser, algo, "algorithm", "args", JSON_ARRAY, "an array of strings");
    if (args) {
        size_t count = json_array_size (args);
        if (count > UMB_MANIFEST_MAX_ARGS) {
            s_fail (parser, "algorithm.args", "%zu arguments, at most %d", count, UMB_MANIFEST_MAX_ARGS);
            return;
        }
        self->args = calloc (count + 1, sizeof (char *));
        if (!self->args) {
            s_fail (parser, NULL, "out of memory");
            return;
        }
        for (size_t i = 0; i < count; i++) {
            json_t *arg = json_array_get (args, i);
            char path [64];
            snprintf (path, sizeof (path), "algorithm.args[%zu]", i);
            if (!json_is_string (arg)) {
                s_fail (parser, path, "expected a string, got %s", s_json_type_name (arg));
                return;
            }
            if (json_string_length (arg) > UMB_MANIFEST_MAX_ARG_SIZE) {
                s_fail (parser, path, "longer than %d bytes", UMB_MANIFEST_MAX_ARG_SIZE);
                return;
            }
            self->args [i] = strdup (json_string_value (arg));
            if (!self->args [i]) {
                s_fail (parser, NULL, "out of memory");
                return;
            }
            self->arg_count = i + 1;
        }
    }
    self->requirements = s_bool (parser, algo, "algorithm", "requirements");
    if (self->requirements && self->algo_type != UMB_MANIFEST_ALGO_PYTHON)
        s_fail (parser, "algorithm.requirements", "only for \"type\": \"python\"");
}

static void
s_parse_datasets (s_parser_t *parser, umb_manifest_t *self, json_t *root)
{
    json_t *datasets = s_member (parser, root, NULL, "datasets", JSON_ARRAY, "an array");
    if (!datasets)
        return;
    size_t count = json_array_size (datasets);
    if (count > UMB_MANIFEST_MAX_DATASETS) {
        s_fail (parser, "datasets", "%zu datasets, at most %d", count, UMB_MANIFEST_MAX_DATASETS);
        return;
    }
    self->datasets = calloc (count ? count : 1, sizeof (s_entry_t));
    if (!self->datasets) {
        s_fail (parser, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < count && !parser->failed; i++) {
        char path [64];
        snprintf (path, sizeof (path), "datasets[%zu]", i);
        json_t *item = json_array_get (datasets, i);
        if (!json_is_object (item)) {
            s_fail (parser, path, "expected an object, got %s", s_json_type_name (item));
            return;
        }
        s_entry_t *entry = &self->datasets [i];
        self->dataset_count = i + 1;            //  so destroy frees it
        s_hash (parser, item, path, entry);
        if (parser->failed)
            return;
        for (size_t j = 0; j < i; j++)
            if (memcmp (self->datasets [j].hash, entry->hash, UMB_SIG_HASH_SIZE) == 0) {
                char hash_path [80];
                snprintf (hash_path, sizeof (hash_path), "%s.hash", path);
                s_fail (parser, hash_path, "the same hash as datasets[%zu]", j);
                return;
            }
        entry->key = s_user_key (parser, item, path);
        if (parser->failed)
            return;
        char name_path [80];
        snprintf (name_path, sizeof (name_path), "%s.filename", path);
        json_t *filename = s_member (parser, item, path, "filename", JSON_STRING, "a string");
        if (parser->failed)
            return;
        if (!filename) {
            s_fail (parser, name_path, "missing (the name the algorithm sees the dataset by)");
            return;
        }
        const char *problem = s_filename_problem (json_string_value (filename),
                                                  json_string_length (filename));
        if (problem) {
            s_fail (parser, name_path, "not a safe file name: %s", problem);
            return;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp (self->datasets [j].filename, json_string_value (filename)) == 0) {
                s_fail (parser, name_path, "the same file name as datasets[%zu]", j);
                return;
            }
        entry->filename = strdup (json_string_value (filename));
        if (!entry->filename) {
            s_fail (parser, NULL, "out of memory");
            return;
        }
        entry->decompress = s_bool (parser, item, path, "decompress");
    }
}

static void
s_parse_consumers (s_parser_t *parser, umb_manifest_t *self, json_t *root)
{
    json_t *consumers = s_member (parser, root, NULL, "result_consumers", JSON_ARRAY, "an array");
    if (parser->failed)
        return;
    size_t count = consumers ? json_array_size (consumers) : 0;
    if (count == 0) {
        s_fail (parser, "result_consumers", "at least one result consumer is needed");
        return;
    }
    if (count > UMB_MANIFEST_MAX_CONSUMERS) {
        s_fail (parser, "result_consumers", "%zu consumers, at most %d", count, UMB_MANIFEST_MAX_CONSUMERS);
        return;
    }
    self->consumers = calloc (count, sizeof (EVP_PKEY *));
    self->consumer_ders = calloc (count, sizeof (uint8_t *));
    self->consumer_der_lens = calloc (count, sizeof (int));
    self->consumer_first = calloc (count, sizeof (size_t));
    if (!self->consumers || !self->consumer_ders || !self->consumer_der_lens || !self->consumer_first) {
        s_fail (parser, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < count && !parser->failed; i++) {
        char path [64];
        snprintf (path, sizeof (path), "result_consumers[%zu]", i);
        json_t *item = json_array_get (consumers, i);
        if (!json_is_object (item)) {
            s_fail (parser, path, "expected an object with a userKey, got %s", s_json_type_name (item));
            return;
        }
        self->consumers [i] = s_user_key (parser, item, path);
        if (parser->failed)
            return;
        self->consumer_count = i + 1;
        self->consumer_der_lens [i] = umb_sig_public_der (self->consumers [i], &self->consumer_ders [i]);
        if (self->consumer_der_lens [i] < 0) {
            s_fail (parser, path, "cannot encode the key");
            return;
        }
        self->consumer_first [i] = i;
        for (size_t j = 0; j < i; j++)
            if (self->consumer_der_lens [j] == self->consumer_der_lens [i]
            &&  memcmp (self->consumer_ders [j], self->consumer_ders [i],
                        (size_t) self->consumer_der_lens [i]) == 0) {
                self->consumer_first [i] = j;
                break;
            }
        if (self->consumer_first [i] == i)
            self->consumer_distinct++;
    }
}

static void
s_parse_agent_config (s_parser_t *parser, umb_manifest_t *self, json_t *root)
{
    json_t *config = s_member (parser, root, NULL, "agent_config", JSON_OBJECT, "an object");
    if (!config)
        return;
    //  Go's AgentConfig has port as a string; a number is taken as well
    json_t *port = json_object_get (config, "port");
    char text [32] = "";
    if (port && json_is_integer (port)) {
        json_int_t number = json_integer_value (port);
        if (number < 0 || number > 65535) {
            s_fail (parser, "agent_config.port", "%lld is not a port", (long long) number);
            return;
        }
        snprintf (text, sizeof (text), "%lld", (long long) number);
    }
    else {
        const char *value = s_string (parser, config, "agent_config", "port");
        if (value)
            snprintf (text, sizeof (text), "%s", value);
    }
    self->agent_port = strdup (text);
    if (!self->agent_port)
        s_fail (parser, NULL, "out of memory");
    //  Kept for compatibility, unused by umbra: CURVE replaces their TLS
    static const char *const strings [] = {
        "cert_file", "key_file", "server_key", "server_ca_file", "client_ca_file",
        "log_level", "host", NULL
    };
    for (size_t i = 0; strings [i]; i++)
        s_string (parser, config, "agent_config", strings [i]);
    self->agent_attested_tls = s_bool (parser, config, "agent_config", "attested_tls");
    s_bool (parser, config, "agent_config", "tee");
}

static void
s_parse_limits (s_parser_t *parser, umb_manifest_t *self, json_t *root)
{
    json_t *limits = s_member (parser, root, NULL, "limits", JSON_OBJECT, "an object");
    uint64_t values [6];
    for (size_t i = 0; s_limits [i].name; i++) {
        assert (i < 6);
        values [i] = limits
            ? s_integer (parser, limits, "limits", s_limits [i].name, s_limits [i].fallback,
                         s_limits [i].min, s_limits [i].max)
            : s_limits [i].fallback;
    }
    self->limits.memory_mb = values [0];
    self->limits.cpus = (uint32_t) values [1];
    self->limits.pids = (uint32_t) values [2];
    self->limits.results_mb = values [3];
    self->limits.output_lines = values [4];
    self->limits.workdir_mb = values [5];
}

umb_manifest_t *
umb_manifest_parse (const char *json, size_t len, char *reason, size_t reason_size)
{
    s_parser_t parser = { reason, reason_size, false };
    if (reason && reason_size)
        *reason = 0;
    if (!json || len == 0) {
        s_fail (&parser, NULL, "empty manifest");
        return NULL;
    }
    if (len > UMB_MANIFEST_MAX_SIZE) {
        s_fail (&parser, NULL, "manifest of %zu bytes is larger than %d", len, UMB_MANIFEST_MAX_SIZE);
        return NULL;
    }
    json_error_t error;
    json_t *root = json_loadb (json, len, JSON_REJECT_DUPLICATES, &error);
    if (!root) {
        s_fail (&parser, NULL, "not JSON: %s (line %d, column %d)", error.text, error.line, error.column);
        return NULL;
    }
    umb_manifest_t *self = NULL;
    if (!json_is_object (root)) {
        s_fail (&parser, NULL, "expected a JSON object, got %s", s_json_type_name (root));
        goto done;
    }
    self = calloc (1, sizeof (umb_manifest_t));
    if (!self) {
        s_fail (&parser, NULL, "out of memory");
        goto done;
    }
    self->json = malloc (len + 1);
    if (!self->json) {
        s_fail (&parser, NULL, "out of memory");
        goto done;
    }
    memcpy (self->json, json, len);
    self->json [len] = 0;

    const char *id = s_string (&parser, root, NULL, "id");
    if (parser.failed)
        goto done;
    if (!id || !*id) {
        s_fail (&parser, "id", "missing (the computation's id)");
        goto done;
    }
    if (strlen (id) > UMB_MANIFEST_MAX_ID_SIZE) {
        s_fail (&parser, "id", "longer than %d bytes", UMB_MANIFEST_MAX_ID_SIZE);
        goto done;
    }
    const char *name = s_string (&parser, root, NULL, "name");
    const char *description = s_string (&parser, root, NULL, "description");
    if (parser.failed)
        goto done;
    self->id = strdup (id);
    self->name = strdup (name ? name : "");
    self->description = strdup (description ? description : "");
    if (!self->id || !self->name || !self->description) {
        s_fail (&parser, NULL, "out of memory");
        goto done;
    }
    s_parse_algorithm (&parser, self, root);
    if (!parser.failed)
        s_parse_datasets (&parser, self, root);
    if (!parser.failed)
        s_parse_consumers (&parser, self, root);
    if (!parser.failed)
        s_parse_agent_config (&parser, self, root);
    if (!parser.failed)
        self->run_timeout_s = (uint32_t) s_integer (&parser, root, NULL, "run_timeout_s",
                                                    S_TIMEOUT_DEFAULT, 1, S_TIMEOUT_MAX);
    if (!parser.failed)
        s_parse_limits (&parser, self, root);
done:
    json_decref (root);
    if (parser.failed)
        umb_manifest_destroy (&self);
    return self;
}

umb_manifest_t *
umb_manifest_load (const char *path, char *reason, size_t reason_size)
{
    assert (path);
    FILE *file = fopen (path, "rb");
    if (!file) {
        umb_reason_set (reason, reason_size, "cannot open %s: %s", path, strerror (errno));
        return NULL;
    }
    char *buffer = malloc (UMB_MANIFEST_MAX_SIZE + 1);
    size_t size = buffer ? fread (buffer, 1, UMB_MANIFEST_MAX_SIZE + 1, file) : 0;
    bool failed = !buffer || ferror (file);
    fclose (file);
    umb_manifest_t *self = NULL;
    if (failed)
        umb_reason_set (reason, reason_size, "cannot read %s", path);
    else
        self = umb_manifest_parse (buffer, size, reason, reason_size);
    free (buffer);
    return self;
}

void
umb_manifest_destroy (umb_manifest_t **self_p)
{
    assert (self_p);
    umb_manifest_t *self = *self_p;
    if (!self)
        return;
    free (self->json);
    free (self->id);
    free (self->name);
    free (self->description);
    s_entry_free (&self->algorithm);
    for (size_t i = 0; i < self->arg_count; i++)
        free (self->args [i]);
    free (self->args);
    for (size_t i = 0; i < self->dataset_count; i++)
        s_entry_free (&self->datasets [i]);
    free (self->datasets);
    for (size_t i = 0; i < self->consumer_count; i++)
        EVP_PKEY_free (self->consumers [i]);
    free (self->consumers);
    if (self->consumer_ders)
        for (size_t i = 0; i < self->consumer_count; i++)
            OPENSSL_free (self->consumer_ders [i]);
    free (self->consumer_ders);
    free (self->consumer_der_lens);
    free (self->consumer_first);
    free (self->agent_port);
    free (self);
    *self_p = NULL;
}

const char *
umb_manifest_json (umb_manifest_t *self)
{
    assert (self);
    return self->json;
}

const char *
umb_manifest_id (umb_manifest_t *self)
{
    assert (self);
    return self->id;
}

const char *
umb_manifest_name (umb_manifest_t *self)
{
    assert (self);
    return self->name;
}

const char *
umb_manifest_description (umb_manifest_t *self)
{
    assert (self);
    return self->description;
}

const uint8_t *
umb_manifest_algorithm_hash (umb_manifest_t *self)
{
    assert (self);
    return self->algorithm.hash;
}

const char *
umb_manifest_algorithm_hash_hex (umb_manifest_t *self)
{
    assert (self);
    return self->algorithm.hash_hex;
}

EVP_PKEY *
umb_manifest_algorithm_key (umb_manifest_t *self)
{
    assert (self);
    return self->algorithm.key;
}

umb_manifest_algo_type_t
umb_manifest_algorithm_type (umb_manifest_t *self)
{
    assert (self);
    return self->algo_type;
}

size_t
umb_manifest_algorithm_arg_count (umb_manifest_t *self)
{
    assert (self);
    return self->arg_count;
}

const char *
umb_manifest_algorithm_arg (umb_manifest_t *self, size_t index)
{
    assert (self);
    assert (index < self->arg_count);
    return self->args [index];
}

bool
umb_manifest_algorithm_requirements (umb_manifest_t *self)
{
    assert (self);
    return self->requirements;
}

size_t
umb_manifest_dataset_count (umb_manifest_t *self)
{
    assert (self);
    return self->dataset_count;
}

const uint8_t *
umb_manifest_dataset_hash (umb_manifest_t *self, size_t index)
{
    assert (self);
    assert (index < self->dataset_count);
    return self->datasets [index].hash;
}

const char *
umb_manifest_dataset_hash_hex (umb_manifest_t *self, size_t index)
{
    assert (self);
    assert (index < self->dataset_count);
    return self->datasets [index].hash_hex;
}

EVP_PKEY *
umb_manifest_dataset_key (umb_manifest_t *self, size_t index)
{
    assert (self);
    assert (index < self->dataset_count);
    return self->datasets [index].key;
}

const char *
umb_manifest_dataset_filename (umb_manifest_t *self, size_t index)
{
    assert (self);
    assert (index < self->dataset_count);
    return self->datasets [index].filename;
}

bool
umb_manifest_dataset_decompress (umb_manifest_t *self, size_t index)
{
    assert (self);
    assert (index < self->dataset_count);
    return self->datasets [index].decompress;
}

int
umb_manifest_dataset_find (umb_manifest_t *self, const uint8_t hash [32])
{
    assert (self);
    assert (hash);
    for (size_t i = 0; i < self->dataset_count; i++)
        if (memcmp (self->datasets [i].hash, hash, UMB_SIG_HASH_SIZE) == 0)
            return (int) i;
    return -1;
}

int
umb_manifest_dataset_find_hex (umb_manifest_t *self, const char *hex)
{
    assert (self);
    uint8_t hash [UMB_SIG_HASH_SIZE];
    if (umb_hex_decode (hex, hash, sizeof (hash)))
        return -1;
    return umb_manifest_dataset_find (self, hash);
}

size_t
umb_manifest_consumer_count (umb_manifest_t *self)
{
    assert (self);
    return self->consumer_count;
}

EVP_PKEY *
umb_manifest_consumer_key (umb_manifest_t *self, size_t index)
{
    assert (self);
    assert (index < self->consumer_count);
    return self->consumers [index];
}

int
umb_manifest_consumer_find (umb_manifest_t *self, EVP_PKEY *key)
{
    assert (self);
    uint8_t *der = NULL;
    int len = key ? umb_sig_public_der (key, &der) : -1;
    int found = -1;
    for (size_t i = 0; len > 0 && i < self->consumer_count && found < 0; i++)
        if (self->consumer_der_lens [i] == len && memcmp (self->consumer_ders [i], der, (size_t) len) == 0)
            found = (int) i;
    OPENSSL_free (der);
    return found;
}

size_t
umb_manifest_consumer_first (umb_manifest_t *self, size_t index)
{
    assert (self);
    assert (index < self->consumer_count);
    return self->consumer_first [index];
}

size_t
umb_manifest_consumer_distinct_count (umb_manifest_t *self)
{
    assert (self);
    return self->consumer_distinct;
}

uint32_t
umb_manifest_run_timeout_s (umb_manifest_t *self)
{
    assert (self);
    return self->run_timeout_s;
}

const umb_manifest_limits_t *
umb_manifest_limits (umb_manifest_t *self)
{
    assert (self);
    return &self->limits;
}

const char *
umb_manifest_agent_port (umb_manifest_t *self)
{
    assert (self);
    return self->agent_port ? self->agent_port : "";
}

bool
umb_manifest_agent_attested_tls (umb_manifest_t *self)
{
    assert (self);
    return self->agent_attested_tls;
}

//  ---------------------------------------------------------------------------
//  Selftest

static bool
s_streq (const char *a, const char *b)
{
    return strcmp (a, b) == 0;
}

//  Parses root (consumed); expect NULL: must be accepted (returned),
//  otherwise refused with a reason holding expect.
static umb_manifest_t *
s_test_parse (json_t *root, const char *expect, bool verbose)
{
    assert (root);
    char *text = json_dumps (root, JSON_COMPACT);
    assert (text);
    json_decref (root);
    char reason [512] = "";
    umb_manifest_t *self = umb_manifest_parse (text, strlen (text), reason, sizeof (reason));
    free (text);
    if (expect) {
        if (self || !strstr (reason, expect))
            fprintf (stderr, "\nexpected a refusal with '%s', got '%s'\n", expect, reason);
        assert (!self);
        assert (strstr (reason, expect));
        return NULL;
    }
    if (!self)
        fprintf (stderr, "\nexpected the manifest accepted, got '%s'\n", reason);
    assert (self);
    return self;
}

static void
s_test_hash (uint8_t hash [32], int seed)
{
    for (int i = 0; i < 32; i++)
        hash [i] = (uint8_t) (seed * 31 + i * 7);
    hash [0] = (uint8_t) seed;
    hash [1] = (uint8_t) (seed >> 8);
}

static json_t *
s_test_hash_hex (int seed)
{
    uint8_t hash [32];
    char hex [65];
    s_test_hash (hash, seed);
    umb_hex_encode (hash, 32, hex);
    return json_string (hex);
}

static json_t *
s_test_hash_array (int seed)
{
    uint8_t hash [32];
    s_test_hash (hash, seed);
    json_t *array = json_array ();
    for (int i = 0; i < 32; i++)
        json_array_append_new (array, json_integer (hash [i]));
    return array;
}

//  Base64 of the key's DER SubjectPublicKeyInfo, as Go encodes []byte
static json_t *
s_test_key_base64 (EVP_PKEY *key, bool as_pem)
{
    uint8_t *der = NULL;
    char *pem = NULL;
    int len;
    const uint8_t *bytes;
    if (as_pem) {
        pem = umb_sig_public_pem (key);
        assert (pem);
        bytes = (const uint8_t *) pem;
        len = (int) strlen (pem);
    }
    else {
        len = umb_sig_public_der (key, &der);
        assert (len > 0);
        bytes = der;
    }
    char *text = malloc ((size_t) len * 2 + 8);
    assert (text);
    EVP_EncodeBlock ((unsigned char *) text, bytes, len);
    json_t *value = json_string (text);
    free (text);
    free (pem);
    OPENSSL_free (der);
    return value;
}

static json_t *
s_test_pem (EVP_PKEY *key)
{
    char *pem = umb_sig_public_pem (key);
    assert (pem);
    json_t *value = json_string (pem);
    free (pem);
    return value;
}

//  A valid manifest: every key type and every umbra addition
static json_t *
s_test_full (EVP_PKEY **keys)
{
    json_t *root = json_pack ("{s:s, s:s, s:s}", "id", "comp-1", "name", "Census",
                              "description", "mean age by region");
    json_t *algo = json_pack ("{s:o, s:o, s:s, s:[s,s], s:b}",
        "hash", s_test_hash_hex (0), "userKey", s_test_pem (keys [0]),
        "type", "python", "args", "--rounds", "3", "requirements", 1);
    json_object_set_new (root, "algorithm", algo);
    json_t *datasets = json_array ();
    json_array_append_new (datasets, json_pack ("{s:o, s:o, s:s}",
        "hash", s_test_hash_hex (1), "userKey", s_test_pem (keys [1]), "filename", "north.csv"));
    json_array_append_new (datasets, json_pack ("{s:o, s:o, s:s, s:b}",
        "hash", s_test_hash_array (2), "userKey", s_test_pem (keys [2]),
        "filename", "south.tar.gz", "decompress", 1));
    json_array_append_new (datasets, json_pack ("{s:o, s:o, s:s, s:b}",
        "hash", s_test_hash_hex (3), "userKey", s_test_pem (keys [3]),
        "filename", "east data 2024.json", "decompress", 0));
    json_object_set_new (root, "datasets", datasets);
    json_object_set_new (root, "result_consumers", json_pack ("[{s:o}, {s:o}, {s:o}]",
        "userKey", s_test_pem (keys [0]), "userKey", s_test_pem (keys [3]),
        "userKey", s_test_pem (keys [0])));
    json_object_set_new (root, "agent_config", json_pack ("{s:s, s:s, s:s, s:s, s:s, s:b}",
        "port", "7002", "cert_file", "", "key_file", "", "server_ca_file", "",
        "client_ca_file", "", "attested_tls", 1));
    json_object_set_new (root, "run_timeout_s", json_integer (120));
    json_object_set_new (root, "limits", json_pack ("{s:i, s:i, s:i, s:i, s:i, s:i, s:s}",
        "memory_mb", 512, "cpus", 2, "pids", 64, "results_mb", 10, "output_lines", 5,
        "workdir_mb", 100, "gpu", "later"));
    //  Forward compatible: unknown members are tolerated
    json_object_set_new (root, "snp_policy", json_pack ("{s:i}", "policy", 196608));
    return root;
}

//  Copies base, sets path (one or two levels, "datasets" entries by index) to value
static json_t *
s_test_with (json_t *base, const char *key, const char *member, json_t *value)
{
    json_t *root = json_deep_copy (base);
    json_t *target = root;
    if (member) {
        target = json_object_get (root, key);
        if (json_is_array (target))
            target = json_array_get (target, 0);
        key = member;
    }
    assert (target);
    if (value)
        json_object_set_new (target, key, value);
    else
        json_object_del (target, key);
    return root;
}

void
umb_manifest_test (bool verbose)
{
    printf (" * umb_manifest: ");
    EVP_PKEY *keys [4];
    keys [0] = umb_sig_key_generate ("ed25519");
    keys [1] = umb_sig_key_generate ("ecdsa-p256");
    keys [2] = umb_sig_key_generate ("ecdsa-p384");
    keys [3] = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 2048);
    for (int i = 0; i < 4; i++)
        assert (keys [i]);

    //  The full manifest, every accessor
    json_t *base = s_test_full (keys);
    umb_manifest_t *self = s_test_parse (json_deep_copy (base), NULL, verbose);
    assert (s_streq (umb_manifest_id (self), "comp-1"));
    assert (s_streq (umb_manifest_name (self), "Census"));
    assert (s_streq (umb_manifest_description (self), "mean age by region"));
    assert (strstr (umb_manifest_json (self), "\"comp-1\""));
    uint8_t hash [32];
    char hex [65];
    s_test_hash (hash, 0);
    umb_hex_encode (hash, 32, hex);
    assert (memcmp (umb_manifest_algorithm_hash (self), hash, 32) == 0);
    assert (s_streq (umb_manifest_algorithm_hash_hex (self), hex));
    assert (umb_sig_key_equal (umb_manifest_algorithm_key (self), keys [0]));
    assert (umb_manifest_algorithm_type (self) == UMB_MANIFEST_ALGO_PYTHON);
    assert (umb_manifest_algorithm_arg_count (self) == 2);
    assert (s_streq (umb_manifest_algorithm_arg (self, 0), "--rounds"));
    assert (s_streq (umb_manifest_algorithm_arg (self, 1), "3"));
    assert (umb_manifest_algorithm_requirements (self));
    assert (umb_manifest_dataset_count (self) == 3);
    static const char *names [] = { "north.csv", "south.tar.gz", "east data 2024.json" };
    for (int i = 0; i < 3; i++) {
        s_test_hash (hash, i + 1);
        umb_hex_encode (hash, 32, hex);
        assert (memcmp (umb_manifest_dataset_hash (self, i), hash, 32) == 0);
        assert (s_streq (umb_manifest_dataset_hash_hex (self, i), hex));
        assert (umb_manifest_dataset_find (self, hash) == i);
        assert (umb_manifest_dataset_find_hex (self, hex) == i);
        assert (umb_sig_key_equal (umb_manifest_dataset_key (self, i), keys [i + 1]));
        assert (s_streq (umb_manifest_dataset_filename (self, i), names [i]));
        assert (umb_manifest_dataset_decompress (self, i) == (i == 1));
    }
    //  The dataset given as 32 integers has the same hex as if given as hex
    s_test_hash (hash, 2);
    umb_hex_encode (hash, 32, hex);
    for (int i = 0; i < 64; i++)            //  agent.upload.begin may send either case
        hex [i] = (char) toupper ((unsigned char) hex [i]);
    assert (umb_manifest_dataset_find_hex (self, hex) == 1);
    s_test_hash (hash, 0);              //  the algorithm's, not a dataset's
    assert (umb_manifest_dataset_find (self, hash) == -1);
    assert (umb_manifest_dataset_find_hex (self, "00") == -1);
    assert (umb_manifest_dataset_find_hex (self, "zz") == -1);
    assert (umb_manifest_consumer_count (self) == 3);
    assert (umb_manifest_consumer_distinct_count (self) == 2);
    assert (umb_sig_key_equal (umb_manifest_consumer_key (self, 1), keys [3]));
    assert (umb_manifest_consumer_find (self, keys [0]) == 0);
    assert (umb_manifest_consumer_find (self, keys [3]) == 1);
    assert (umb_manifest_consumer_find (self, keys [1]) == -1);
    assert (umb_manifest_consumer_find (self, NULL) == -1);
    assert (umb_manifest_consumer_first (self, 0) == 0);
    assert (umb_manifest_consumer_first (self, 1) == 1);
    assert (umb_manifest_consumer_first (self, 2) == 0);  //  the same key as consumer 0
    assert (umb_manifest_run_timeout_s (self) == 120);
    const umb_manifest_limits_t *limits = umb_manifest_limits (self);
    assert (limits->memory_mb == 512 && limits->cpus == 2 && limits->pids == 64);
    assert (limits->results_mb == 10 && limits->output_lines == 5 && limits->workdir_mb == 100);
    assert (s_streq (umb_manifest_agent_port (self), "7002"));
    assert (umb_manifest_agent_attested_tls (self));
    umb_manifest_destroy (&self);
    umb_manifest_destroy (&self);
    assert (self == NULL);

    //  The smallest manifest: defaults everywhere
    json_t *minimal = json_pack ("{s:s, s:{s:o, s:o}, s:[{s:o}]}", "id", "m",
        "algorithm", "hash", s_test_hash_hex (9), "userKey", s_test_pem (keys [3]),
        "result_consumers", "userKey", s_test_pem (keys [1]));
    self = s_test_parse (minimal, NULL, verbose);
    assert (s_streq (umb_manifest_name (self), "") && s_streq (umb_manifest_description (self), ""));
    assert (umb_manifest_algorithm_type (self) == UMB_MANIFEST_ALGO_BIN);
    assert (umb_manifest_algorithm_arg_count (self) == 0);
    assert (!umb_manifest_algorithm_requirements (self));
    assert (umb_manifest_dataset_count (self) == 0);
    assert (umb_manifest_consumer_distinct_count (self) == 1);
    assert (umb_manifest_run_timeout_s (self) == 3600);
    limits = umb_manifest_limits (self);
    assert (limits->memory_mb == 1024 && limits->cpus == 1 && limits->pids == 256);
    assert (limits->results_mb == 100 && limits->output_lines == 10000 && limits->workdir_mb == 10240);
    assert (s_streq (umb_manifest_agent_port (self), ""));
    assert (!umb_manifest_agent_attested_tls (self));
    umb_manifest_destroy (&self);

    //  CocosAI's own encoding, as its Go agent marshals agent.Computation:
    //  hash [32]byte -> 32 integers, user_key []byte -> base64 of DER
    //  (or of PEM), agent_config with server_key, log_level, host, tee
    json_t *cocos = json_pack ("{s:s, s:s, s:s, s:[{s:o, s:o, s:s}, {s:o, s:o, s:s}],"
                               " s:{s:o, s:o}, s:[{s:o}, {s:o}],"
                               " s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b}}",
        "id", "7f3a", "name", "cocos", "description", "as is",
        "datasets",
            "hash", s_test_hash_array (1), "user_key", s_test_key_base64 (keys [1], false),
            "filename", "iris.csv",
            "hash", s_test_hash_array (2), "user_key", s_test_key_base64 (keys [2], true),
            "filename", "iris2.csv",
        "algorithm", "hash", s_test_hash_array (0), "user_key", s_test_key_base64 (keys [3], false),
        "result_consumers", "user_key", s_test_key_base64 (keys [0], false),
                            "user_key", s_test_pem (keys [3]),
        "agent_config", "log_level", "info", "host", "", "port", "7002", "cert_file", "",
            "server_key", "", "server_ca_file", "", "client_ca_file", "",
            "attested_tls", 0, "tee", 1);
    self = s_test_parse (cocos, NULL, verbose);
    assert (umb_manifest_dataset_count (self) == 2);
    assert (umb_sig_key_equal (umb_manifest_dataset_key (self, 0), keys [1]));
    assert (umb_sig_key_equal (umb_manifest_dataset_key (self, 1), keys [2]));
    assert (umb_sig_key_equal (umb_manifest_algorithm_key (self), keys [3]));
    assert (umb_sig_key_equal (umb_manifest_consumer_key (self, 0), keys [0]));
    assert (umb_sig_key_equal (umb_manifest_consumer_key (self, 1), keys [3]));
    s_test_hash (hash, 0);
    assert (memcmp (umb_manifest_algorithm_hash (self), hash, 32) == 0);
    assert (s_streq (umb_manifest_agent_port (self), "7002"));
    umb_manifest_destroy (&self);

    //  Refusals, each with a reason naming the place
    s_test_parse (s_test_with (base, "algorithm", "hash", json_string ("abcd")),
                  "algorithm.hash: a SHA3-256 is 64 hex chars, not 4", verbose);
    char bad_hex [65];
    memset (bad_hex, 'a', 64);
    bad_hex [64] = 0;
    bad_hex [10] = 'x';
    s_test_parse (s_test_with (base, "datasets", "hash", json_string (bad_hex)),
                  "datasets[0].hash: not hex", verbose);
    json_t *short_array = s_test_hash_array (5);
    json_array_remove (short_array, 31);
    s_test_parse (s_test_with (base, "datasets", "hash", short_array),
                  "datasets[0].hash: a SHA3-256 is 32 bytes, not 31", verbose);
    json_t *big_byte = s_test_hash_array (5);
    json_array_set_new (big_byte, 3, json_integer (256));
    s_test_parse (s_test_with (base, "datasets", "hash", big_byte),
                  "element 3 is not an integer 0..255", verbose);
    s_test_parse (s_test_with (base, "algorithm", "hash", json_integer (5)),
                  "algorithm.hash: expected 64 hex chars or an array of 32 bytes", verbose);
    s_test_parse (s_test_with (base, "algorithm", "hash", NULL), "algorithm.hash: missing", verbose);
    //  Unsafe file names
    static const struct { const char *name; const char *why; } unsafe [] = {
        { "../etc/passwd", "starts with '.'" },
        { "x/../../etc",   "holds '/'" },
        { "a/b",           "holds '/'" },
        { "..",            "starts with '.'" },
        { ".",             "starts with '.'" },
        { ".hidden",       "starts with '.'" },
        { "",              "empty" },
        { "a..b",          "holds \"..\"" },
        { "tab\there",     "control character" },
        { NULL }
    };
    for (size_t i = 0; unsafe [i].name; i++)
        s_test_parse (s_test_with (base, "datasets", "filename", json_string (unsafe [i].name)),
                      unsafe [i].why, verbose);
    char long_name [257];
    memset (long_name, 'n', 256);
    long_name [256] = 0;
    s_test_parse (s_test_with (base, "datasets", "filename", json_string (long_name)),
                  "datasets[0].filename: not a safe file name: longer than 255 bytes", verbose);
    long_name [255] = 0;                //  255 is fine
    self = s_test_parse (s_test_with (base, "datasets", "filename", json_string (long_name)), NULL, verbose);
    umb_manifest_destroy (&self);
    s_test_parse (s_test_with (base, "datasets", "filename", NULL),
                  "datasets[0].filename: missing", verbose);
    s_test_parse (s_test_with (base, "datasets", "filename", json_string ("south.tar.gz")),
                  "datasets[1].filename: the same file name as datasets[0]", verbose);
    //  Duplicate hash (hex and array forms of the same bytes)
    s_test_parse (s_test_with (base, "datasets", "hash", s_test_hash_hex (2)),
                  "datasets[1].hash: the same hash as datasets[0]", verbose);
    //  Keys: bad PEM, refused types and sizes, ambiguous spelling
    s_test_parse (s_test_with (base, "algorithm", "userKey", json_string ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")),
                  "algorithm.userKey: not a PEM public key", verbose);
    s_test_parse (s_test_with (base, "algorithm", "userKey", json_string ("ssh-ed25519 AAAAC3Nza")),
                  "algorithm.userKey: not a PEM public key", verbose);
    s_test_parse (s_test_with (base, "algorithm", "userKey", json_integer (1)),
                  "algorithm.userKey: expected a string", verbose);
    s_test_parse (s_test_with (base, "algorithm", "userKey", NULL), "algorithm.userKey: missing", verbose);
    s_test_parse (s_test_with (base, "algorithm", "user_key", s_test_pem (keys [0])),
                  "both userKey and user_key", verbose);
    EVP_PKEY *weak = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 1024);
    s_test_parse (s_test_with (base, "datasets", "userKey", s_test_pem (weak)),
                  "datasets[0].userKey: RSA key of 1024 bits is not allowed", verbose);
    json_t *weak_root = s_test_with (base, "datasets", "userKey", NULL);
    json_object_set_new (json_array_get (json_object_get (weak_root, "datasets"), 0), "user_key",
                         s_test_key_base64 (weak, false));
    s_test_parse (weak_root, "datasets[0].user_key: RSA key of 1024 bits", verbose);
    EVP_PKEY_free (weak);
    weak = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "secp256k1");
    s_test_parse (s_test_with (base, "result_consumers", "userKey", s_test_pem (weak)),
                  "result_consumers[0].userKey: EC curve secp256k1 is not allowed", verbose);
    EVP_PKEY_free (weak);
    json_t *no_camel = s_test_with (base, "datasets", "userKey", NULL);
    json_object_set_new (json_array_get (json_object_get (no_camel, "datasets"), 0), "user_key",
                         json_string ("@@@not base64@@"));
    s_test_parse (no_camel, "datasets[0].user_key: neither PEM nor base64", verbose);
    no_camel = s_test_with (base, "datasets", "userKey", NULL);
    json_object_set_new (json_array_get (json_object_get (no_camel, "datasets"), 0), "user_key",
                         json_string ("aGVsbG8gd29ybGQh"));
    s_test_parse (no_camel, "not a DER SubjectPublicKeyInfo", verbose);
    //  Wrong JSON types, with the path
    s_test_parse (s_test_with (base, "datasets", NULL, json_object ()),
                  "datasets: expected an array, got an object", verbose);
    s_test_parse (s_test_with (base, "run_timeout_s", NULL, json_string ("60")),
                  "run_timeout_s: expected an integer, got a string", verbose);
    s_test_parse (s_test_with (base, "run_timeout_s", NULL, json_real (60.5)),
                  "run_timeout_s: expected an integer, got a number", verbose);
    s_test_parse (s_test_with (base, "limits", "cpus", json_true ()),
                  "limits.cpus: expected an integer, got a boolean", verbose);
    s_test_parse (s_test_with (base, "limits", NULL, json_array ()),
                  "limits: expected an object", verbose);
    s_test_parse (s_test_with (base, "algorithm", "args", json_pack ("[s,i]", "a", 3)),
                  "algorithm.args[1]: expected a string, got an integer", verbose);
    s_test_parse (s_test_with (base, "algorithm", "args", json_string ("-v")),
                  "algorithm.args: expected an array of strings", verbose);
    s_test_parse (s_test_with (base, "datasets", "decompress", json_string ("yes")),
                  "datasets[0].decompress: expected a boolean, got a string", verbose);
    s_test_parse (s_test_with (base, "agent_config", "attested_tls", json_string ("true")),
                  "agent_config.attested_tls: expected a boolean", verbose);
    s_test_parse (s_test_with (base, "agent_config", "cert_file", json_integer (1)),
                  "agent_config.cert_file: expected a string", verbose);
    s_test_parse (s_test_with (base, "agent_config", "port", json_integer (70000)),
                  "agent_config.port: 70000 is not a port", verbose);
    self = s_test_parse (s_test_with (base, "agent_config", "port", json_integer (7002)), NULL, verbose);
    assert (s_streq (umb_manifest_agent_port (self), "7002"));
    umb_manifest_destroy (&self);
    s_test_parse (s_test_with (base, "name", NULL, json_integer (5)), "name: expected a string", verbose);
    s_test_parse (s_test_with (base, "algorithm", NULL, json_string ("x")),
                  "algorithm: expected an object, got a string", verbose);
    s_test_parse (s_test_with (base, "datasets", NULL, json_pack ("[s]", "x")),
                  "datasets[0]: expected an object, got a string", verbose);
    //  CocosAI's old forms: consumers as names, "algorithms" as a list
    s_test_parse (s_test_with (base, "result_consumers", NULL, json_pack ("[s]", "consumer1")),
                  "result_consumers[0]: expected an object", verbose);
    json_t *old = s_test_with (base, "algorithm", NULL, NULL);
    json_object_set_new (old, "algorithms", json_array ());
    s_test_parse (old, "old CocosAI form", verbose);
    //  Values out of range, and umbra's enumerations
    s_test_parse (s_test_with (base, "run_timeout_s", NULL, json_integer (0)), "run_timeout_s: 0 is out of range", verbose);
    s_test_parse (s_test_with (base, "run_timeout_s", NULL, json_integer (604801)), "out of range (1..604800)", verbose);
    self = s_test_parse (s_test_with (base, "run_timeout_s", NULL, json_integer (604800)), NULL, verbose);
    umb_manifest_destroy (&self);
    s_test_parse (s_test_with (base, "limits", "memory_mb", json_integer (1)), "limits.memory_mb: 1 is out of range", verbose);
    s_test_parse (s_test_with (base, "limits", "pids", json_integer (-1)), "limits.pids: -1 is out of range", verbose);
    s_test_parse (s_test_with (base, "algorithm", "type", json_string ("java")), "algorithm.type: \"java\" is not a type", verbose);
    s_test_parse (s_test_with (base, "algorithm", "type", json_string ("bin")),
                  "algorithm.requirements: only for \"type\": \"python\"", verbose);
    //  id
    s_test_parse (s_test_with (base, "id", NULL, NULL), "id: missing", verbose);
    s_test_parse (s_test_with (base, "id", NULL, json_string ("")), "id: missing", verbose);
    char long_id [257];
    memset (long_id, 'i', 256);
    long_id [256] = 0;
    s_test_parse (s_test_with (base, "id", NULL, json_string (long_id)), "id: longer than 255", verbose);
    s_test_parse (s_test_with (base, "result_consumers", NULL, json_array ()), "result_consumers: at least one", verbose);
    s_test_parse (s_test_with (base, "result_consumers", NULL, NULL), "result_consumers: at least one", verbose);
    //  Counts: 1025 datasets or consumers are refused before anything else
    json_t *many = json_array ();
    for (int i = 0; i < 1025; i++)
        json_array_append_new (many, json_object ());
    s_test_parse (s_test_with (base, "datasets", NULL, json_deep_copy (many)), "datasets: 1025 datasets, at most 1024", verbose);
    s_test_parse (s_test_with (base, "result_consumers", NULL, many), "result_consumers: 1025 consumers, at most 1024", verbose);
    //  ... and 1024 of each are accepted
    json_t *datasets = json_array ();
    json_t *consumers = json_array ();
    for (int i = 0; i < 1024; i++) {
        char name [32];
        snprintf (name, sizeof (name), "part-%04d.csv", i);
        json_array_append_new (datasets, json_pack ("{s:o, s:o, s:s}", "hash", s_test_hash_hex (100 + i),
                                                    "userKey", s_test_pem (keys [0]), "filename", name));
        json_array_append_new (consumers, json_pack ("{s:o}", "userKey", s_test_pem (keys [i % 2])));
    }
    json_t *large = s_test_with (base, "datasets", NULL, datasets);
    json_object_set_new (large, "result_consumers", consumers);
    self = s_test_parse (large, NULL, verbose);
    assert (umb_manifest_dataset_count (self) == 1024 && umb_manifest_consumer_count (self) == 1024);
    assert (umb_manifest_consumer_distinct_count (self) == 2);
    assert (umb_manifest_consumer_first (self, 1001) == 1);
    assert (umb_manifest_consumer_find (self, keys [1]) == 1);
    assert (umb_manifest_dataset_find_hex (self, umb_manifest_dataset_hash_hex (self, 1000)) == 1000);
    umb_manifest_destroy (&self);
    //  Too big: more than 1 MiB of JSON
    size_t big_size = UMB_MANIFEST_MAX_SIZE + 1;
    char *big = malloc (big_size + 1);
    assert (big);
    memset (big, ' ', big_size);
    big [0] = '{';
    big [big_size - 1] = '}';
    big [big_size] = 0;
    char reason [512];
    assert (umb_manifest_parse (big, big_size, reason, sizeof (reason)) == NULL);
    assert (strstr (reason, "larger than 1048576"));
    free (big);
    //  Not JSON, not an object, duplicate keys, NUL, empty
    assert (umb_manifest_parse ("{", 1, reason, sizeof (reason)) == NULL);
    assert (strstr (reason, "not JSON"));
    assert (umb_manifest_parse ("[1]", 3, reason, sizeof (reason)) == NULL);
    assert (strstr (reason, "expected a JSON object, got an array"));
    const char *twice = "{\"id\":\"a\",\"id\":\"b\"}";
    assert (umb_manifest_parse (twice, strlen (twice), reason, sizeof (reason)) == NULL);
    assert (strstr (reason, "duplicate"));
    const char *nul = "{\"id\":\"a\\u0000b\"}";
    assert (umb_manifest_parse (nul, strlen (nul), reason, sizeof (reason)) == NULL);
    assert (umb_manifest_parse ("", 0, reason, sizeof (reason)) == NULL);
    assert (umb_manifest_parse (NULL, 0, NULL, 0) == NULL);

    //  Load from a file
    char path [] = "/tmp/umb_manifest_test.XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    char *text = json_dumps (base, JSON_INDENT (2));
    assert (write (fd, text, strlen (text)) == (ssize_t) strlen (text));
    close (fd);
    free (text);
    self = umb_manifest_load (path, reason, sizeof (reason));
    assert (self && umb_manifest_dataset_count (self) == 3);
    umb_manifest_destroy (&self);
    unlink (path);
    assert (umb_manifest_load (path, reason, sizeof (reason)) == NULL);
    assert (strstr (reason, "cannot open"));

    json_decref (base);
    for (int i = 0; i < 4; i++)
        EVP_PKEY_free (keys [i]);
    printf ("OK\n");
}
