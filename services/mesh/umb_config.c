//  umb_config - typed settings from defaults, an INI-style file and UMBRA_* environment variables
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sodium.h>
#include "umb_config.h"

typedef enum {
    UMB_CONFIG_STRING,
    UMB_CONFIG_INT,
    UMB_CONFIG_BOOL,
    UMB_CONFIG_ENUM,
    UMB_CONFIG_ENDPOINT,
    UMB_CONFIG_PATH
} s_type_t;

//  Where a value came from. A source never overrides a stronger one, so the
//  environment wins over a file whatever order the caller loads them in.
typedef enum {
    UMB_CONFIG_FROM_DEFAULT,
    UMB_CONFIG_FROM_FILE,
    UMB_CONFIG_FROM_ENV,
    UMB_CONFIG_FROM_SET
} s_source_t;

//  Extra check for a value that passed its type; fills why on failure.
typedef int (s_check_fn) (const char *value, char *why, size_t why_size);

typedef struct {
    const char        *key;
    s_type_t           type;
    const char        *fallback;         //  the default, as text
    int64_t            min, max;         //  UMB_CONFIG_INT
    const char *const *choices;          //  UMB_CONFIG_ENUM, NULL-terminated
    bool               secret;           //  never shown in dumps or errors
    s_check_fn        *check;
    const char        *help;
} s_setting_t;

static int s_check_public_key (const char *value, char *why, size_t why_size);
static int s_check_listen (const char *value, char *why, size_t why_size);
static int s_check_url (const char *value, char *why, size_t why_size);

static const char *const s_log_levels [] = { "debug", "info", "warn", "error", NULL };
static const char *const s_accels [] = { "auto", "kvm", "tcg", NULL };
static const char *const s_log_formats [] = { "text", "json", NULL };
static const char *const s_pwhash_limits [] = { "interactive", "moderate", NULL };
static const char *const s_ca_key_types [] = { "ec-p256", "rsa-3072", "ed25519", NULL };

static const s_setting_t s_schema [] = {
    { "state_dir", UMB_CONFIG_PATH, "",
      .help = "state directory; empty lets the program pick one" },
    { "log.level", UMB_CONFIG_ENUM, "info", .choices = s_log_levels,
      .help = "lowest level logged" },
    { "log.format", UMB_CONFIG_ENUM, "text", .choices = s_log_formats,
      .help = "log lines as plain text or JSON" },
    { "mesh.keys_dir", UMB_CONFIG_PATH, "",
      .help = "CURVE key pairs of the services; empty means <state_dir>/keys" },
    { "mesh.make_keys", UMB_CONFIG_BOOL, "true",
      .help = "make missing key pairs of the mesh identities at start; false reads only what "
              "`umbra init` made (each service then holds only its own secret key)" },
    { "mesh.allow_dir", UMB_CONFIG_PATH, "",
      .help = "extra public keys admitted to the mesh; empty means none" },
    { "mesh.max_body_bytes", UMB_CONFIG_INT, "1048576", 1024, 67108864,
      .help = "largest request body a service accepts" },
    { "mesh.timeout_ms", UMB_CONFIG_INT, "5000", 10, 600000,
      .help = "default deadline of mesh requests" },
    { "mesh.trust_refresh_ms", UMB_CONFIG_INT, "1000", 50, 60000,
      .help = "how often mesh revocations are fetched from certs; bounds how long a revoked peer stays in" },
    { "mesh.trust_max_age_s", UMB_CONFIG_INT, "30", 1, 86400,
      .help = "mesh certificates are required; without a fresh answer from certs for this long, identities are refused" },
    { "auth.endpoint", UMB_CONFIG_ENDPOINT, "tcp://127.0.0.1:7101",
      .help = "auth service request endpoint" },
    { "auth.pub_endpoint", UMB_CONFIG_ENDPOINT, "tcp://127.0.0.1:7102",
      .help = "auth service notification endpoint" },
    { "auth.public_key", UMB_CONFIG_STRING, "", .check = s_check_public_key,
      .help = "auth service CURVE public key (Z85); empty reads it from the keys directory" },
    { "auth.db", UMB_CONFIG_PATH, "",
      .help = "auth database; empty means <state_dir>/auth/auth.db" },
    { "auth.issuer", UMB_CONFIG_STRING, "umbra",
      .help = "issuer (iss) of access tokens" },
    { "auth.access_ttl_s", UMB_CONFIG_INT, "900", 60, 86400,
      .help = "lifetime of access tokens, seconds" },
    { "auth.refresh_ttl_s", UMB_CONFIG_INT, "2592000", 300, 31536000,
      .help = "lifetime of refresh tokens, seconds" },
    { "auth.password_min_length", UMB_CONFIG_INT, "10", 8, 128,
      .help = "shortest password accepted" },
    { "auth.pwhash", UMB_CONFIG_ENUM, "interactive", .choices = s_pwhash_limits,
      .help = "Argon2id cost of password hashes" },
    { "auth.login_max_failures", UMB_CONFIG_INT, "5", 1, 1000,
      .help = "failed logins per user allowed in the window" },
    { "auth.login_window_s", UMB_CONFIG_INT, "300", 1, 86400,
      .help = "window of the failed-login limit, seconds" },
    { "certs.endpoint", UMB_CONFIG_ENDPOINT, "tcp://127.0.0.1:7111",
      .help = "certs service request endpoint" },
    { "certs.pub_endpoint", UMB_CONFIG_ENDPOINT, "tcp://127.0.0.1:7112",
      .help = "certs service notification endpoint" },
    { "certs.public_key", UMB_CONFIG_STRING, "", .check = s_check_public_key,
      .help = "certs service CURVE public key (Z85); empty reads it from the keys directory" },
    { "certs.db", UMB_CONFIG_PATH, "",
      .help = "certs database; empty means <state_dir>/certs/certs.db" },
    { "certs.ca_dir", UMB_CONFIG_PATH, "",
      .help = "CA keys and certificates; empty means <state_dir>/certs/ca" },
    { "certs.key_type", UMB_CONFIG_ENUM, "ec-p256", .choices = s_ca_key_types,
      .help = "key type of the CA and of keys the service makes" },
    { "certs.http_listen", UMB_CONFIG_STRING, "127.0.0.1:8081", .check = s_check_listen,
      .help = "OCSP responder and CRL HTTP address, host:port" },
    { "certs.public_url", UMB_CONFIG_STRING, "",
      .help = "base URL of that HTTP server in issued certificates; empty means http://<http_listen>" },
    { "certs.default_ttl_s", UMB_CONFIG_INT, "7776000", 60, 71280000,
      .help = "validity of issued certificates when the request names none, seconds" },
    { "certs.max_ttl_s", UMB_CONFIG_INT, "71280000", 60, 71280000,
      .help = "longest validity a request may ask for, seconds" },
    { "certs.ocsp_validity_s", UMB_CONFIG_INT, "3600", 60, 604800,
      .help = "OCSP responses are valid this long (nextUpdate), seconds" },
    { "certs.crl_validity_s", UMB_CONFIG_INT, "86400", 60, 2592000,
      .help = "CRLs are valid this long (nextUpdate), seconds" },
    { "certs.http_threads", UMB_CONFIG_INT, "4", 1, 256,
      .help = "threads of the OCSP/CRL HTTP server" },
    { "backends.endpoint", UMB_CONFIG_ENDPOINT, "tcp://127.0.0.1:7131",
      .help = "backends service request endpoint" },
    { "backends.pub_endpoint", UMB_CONFIG_ENDPOINT, "tcp://127.0.0.1:7132",
      .help = "backends service notification endpoint" },
    { "computations.endpoint", UMB_CONFIG_ENDPOINT, "tcp://127.0.0.1:7141",
      .help = "computations service request endpoint" },
    { "computations.pub_endpoint", UMB_CONFIG_ENDPOINT, "tcp://127.0.0.1:7142",
      .help = "computations service notification endpoint" },
    { "computations.public_key", UMB_CONFIG_STRING, "", .check = s_check_public_key,
      .help = "computations service CURVE public key (Z85); empty reads it from the keys directory" },
    { "computations.provision_timeout_s", UMB_CONFIG_INT, "300", 1, 86400,
      .help = "a run whose CVM is not ready this long after it started fails" },
    { "computations.assets_timeout_s", UMB_CONFIG_INT, "3600", 1, 604800,
      .help = "a run whose assets are not all uploaded this long after its CVM was ready fails" },
    { "computations.results_timeout_s", UMB_CONFIG_INT, "86400", 1, 604800,
      .help = "a run whose results are not all fetched this long after they were ready fails" },
    { "computations.db", UMB_CONFIG_PATH, "",
      .help = "computations database; empty means <state_dir>/computations/computations.db" },
    { "backends.public_key", UMB_CONFIG_STRING, "", .check = s_check_public_key,
      .help = "backends service CURVE public key (Z85); empty reads it from the keys directory" },
    { "backends.db", UMB_CONFIG_PATH, "",
      .help = "backends database; empty means <state_dir>/backends/backends.db" },
    { "backends.participant_address", UMB_CONFIG_STRING, "127.0.0.1",
      .help = "address of the per-CVM participant ports (agent, attest)" },
    { "backends.agent_path", UMB_CONFIG_PATH, "",
      .help = "umbra-agent run by the process driver; empty means beside this executable, else $PATH" },
    { "backends.image_dir", UMB_CONFIG_PATH, "/var/cache/umbra/eos",
      .help = "guest image (vmlinux, initramfs.cpio.gz, cmdline) booted on libvirt hosts" },
    { "backends.none_accel", UMB_CONFIG_ENUM, "auto", .choices = s_accels,
      .help = "how a none (development) VM runs on libvirt hosts: auto is KVM when libvirt offers it, "
              "else TCG" },
    { "backends.firmware_snp", UMB_CONFIG_PATH, "",
      .help = "OVMF built for SEV-SNP (AmdSevX64) that sev-snp VMs boot on libvirt hosts; a path "
              "on the host" },
    { "backends.igvm_snp", UMB_CONFIG_PATH, "",
      .help = "an IGVM file sev-snp VMs boot instead of backends.firmware_snp (QEMU 9.1+)" },
    { "backends.firmware_tdx", UMB_CONFIG_PATH, "",
      .help = "TDVF (OVMF IntelTdx) that tdx VMs boot on libvirt hosts; a path on the host" },
    { "backends.default_ttl_s", UMB_CONFIG_INT, "3600", 1, 31536000,
      .help = "lifetime of a CVM whose request names none, seconds" },
    { "backends.max_ttl_s", UMB_CONFIG_INT, "604800", 1, 31536000,
      .help = "longest CVM lifetime a request may ask for, seconds" },
    { "backends.boot_timeout_s", UMB_CONFIG_INT, "120", 1, 3600,
      .help = "from start to a verified agent; past it the CVM is Failed" },
    { "backends.agent_timeout_s", UMB_CONFIG_INT, "15", 1, 3600,
      .help = "an agent silent this long makes its CVM Failed" },
    { "backends.certify_agents", UMB_CONFIG_BOOL, "true",
      .help = "ask certs for a mesh certificate of each verified agent key" },
    { "billing.endpoint", UMB_CONFIG_ENDPOINT, "tcp://127.0.0.1:7151",
      .help = "billing service request endpoint" },
    { "billing.pub_endpoint", UMB_CONFIG_ENDPOINT, "tcp://127.0.0.1:7152",
      .help = "billing service notification endpoint" },
    { "billing.public_key", UMB_CONFIG_STRING, "", .check = s_check_public_key,
      .help = "billing service CURVE public key (Z85); empty reads it from the keys directory" },
    { "billing.db", UMB_CONFIG_PATH, "",
      .help = "billing database; empty means <state_dir>/billing/billing.db" },
    { "billing.enabled", UMB_CONFIG_BOOL, "true",
      .help = "auth, computations and backends ask billing before gated actions and report usage" },
    { "billing.plans", UMB_CONFIG_PATH, "",
      .help = "plans and prices (JSON, proto/msgpack/billing.md); empty means the built-in ones" },
    { "billing.default_plan", UMB_CONFIG_STRING, "",
      .help = "plan of workspaces without a subscription; empty means the plans file's default" },
    { "billing.welcome_credit", UMB_CONFIG_INT, "0", 0, 1000000000000000LL,
      .help = "micro-credits granted once to each workspace when billing first sees it" },
    { "billing.reservation_grace_s", UMB_CONFIG_INT, "3600", 0, 2592000,
      .help = "an open reservation is released this long after its run's latest possible end" },
    { "billing.usage_interval_s", UMB_CONFIG_INT, "60", 1, 86400,
      .help = "backends reports each live CVM's usage at least this often, seconds" },
    { "admin.username", UMB_CONFIG_STRING, "",
      .help = "platform administrator created on first start" },
    { "admin.password", UMB_CONFIG_STRING, "", .secret = true,
      .help = "password of that administrator" },
    { "admin.email", UMB_CONFIG_STRING, "",
      .help = "email of that administrator" },
    { "gateway.listen", UMB_CONFIG_STRING, "127.0.0.1:8080", .check = s_check_listen,
      .help = "HTTP listen address, host:port" },
    { "gateway.max_body_bytes", UMB_CONFIG_INT, "1048576", 1024, 67108864,
      .help = "largest HTTP request body accepted" },
    { "gateway.max_connections", UMB_CONFIG_INT, "1024", 1, 100000,
      .help = "concurrent HTTP connections" },
    { "gateway.timeout_ms", UMB_CONFIG_INT, "5000", 10, 600000,
      .help = "HTTP request timeout" },
    { "gateway.threads", UMB_CONFIG_INT, "0", 0, 256,
      .help = "HTTP worker threads; 0 means one thread per connection" },
    { "client.url", UMB_CONFIG_STRING, "http://127.0.0.1:8080", .check = s_check_url,
      .help = "the gateway the CLI talks to (umbra certs ...), http:// or https://" },
    { "client.token", UMB_CONFIG_STRING, "", .secret = true,
      .help = "access token or API key the CLI sends as its bearer token" },
};

#define UMB_CONFIG_ENV_PREFIX "UMBRA_"
#define UMB_CONFIG_NAME_MAX   128       //  longest key or variable name we consider
#define UMB_CONFIG_ERRORS_MAX 20        //  errors reported from one source

typedef struct {
    char   *text;
    int64_t number;
    int     source;
} s_value_t;

struct _umb_config_t {
    const s_setting_t *schema;
    size_t             size;
    s_value_t         *values;
};

//  Values from one source, validated before any is applied.
typedef struct {
    s_value_t *pending;                 //  .source holds the file line, 0 elsewhere
    char      *errors;
    int        error_count;
} s_batch_t;

static void s_error (s_batch_t *batch, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_free_text (const s_setting_t *setting, char **text_p)
{
    if (*text_p) {
        if (setting->secret)
            sodium_memzero (*text_p, strlen (*text_p));
        free (*text_p);
        *text_p = NULL;
    }
}

static umb_config_t *
s_config_new (const s_setting_t *schema, size_t size);

umb_config_t *
umb_config_new (void)
{
    return s_config_new (s_schema, sizeof (s_schema) / sizeof (s_schema [0]));
}

void
umb_config_destroy (umb_config_t **self_p)
{
    assert (self_p);
    umb_config_t *self = *self_p;
    if (self) {
        for (size_t index = 0; self->values && index < self->size; index++)
            s_free_text (&self->schema [index], &self->values [index].text);
        free (self->values);
        free (self);
        *self_p = NULL;
    }
}

//  ---------------------------------------------------------------- values

static const s_setting_t *
s_find (umb_config_t *self, const char *key)
{
    for (size_t index = 0; index < self->size; index++)
        if (strcmp (self->schema [index].key, key) == 0)
            return &self->schema [index];
    return NULL;
}

static void
s_env_name (const char *key, char *name, size_t size)
{
    size_t used = snprintf (name, size, "%s", UMB_CONFIG_ENV_PREFIX);
    for (; *key && used + 1 < size; key++)
        name [used++] = *key == '.'? '_': (char) toupper ((unsigned char) *key);
    name [used] = 0;
}

static const s_setting_t *
s_find_env (umb_config_t *self, const char *name)
{
    char candidate [UMB_CONFIG_NAME_MAX + 8];
    for (size_t index = 0; index < self->size; index++) {
        s_env_name (self->schema [index].key, candidate, sizeof (candidate));
        if (strcmp (candidate, name) == 0)
            return &self->schema [index];
    }
    return NULL;
}

//  Copies text for an error message: bounded, control characters replaced.
static const char *
s_printable (const char *text, size_t length, char *buffer, size_t size)
{
    size_t used = 0;
    for (; *text && length && used + 1 < size; text++, length--)
        buffer [used++] = (unsigned char) *text < 0x20 || *text == 0x7f? '?': *text;
    buffer [used] = 0;
    if (*text && length)
        snprintf (buffer + (used > size - 4? size - 4: used), 4, "...");
    return buffer;
}

//  How a value appears in an error message; a secret never does.
static const char *
s_shown (const s_setting_t *setting, const char *value, char *buffer, size_t size)
{
    if (setting->secret)
        return "the given value";
    char printable [72];
    snprintf (buffer, size, "\"%s\"", s_printable (value, SIZE_MAX, printable, sizeof (printable)));
    return buffer;
}

static size_t
s_distance (const char *left, const char *right)
{
    size_t left_size = strlen (left), right_size = strlen (right);
    if (left_size > UMB_CONFIG_NAME_MAX || right_size > UMB_CONFIG_NAME_MAX)
        return SIZE_MAX;
    size_t row [UMB_CONFIG_NAME_MAX + 1];
    for (size_t column = 0; column <= right_size; column++)
        row [column] = column;
    for (size_t line = 1; line <= left_size; line++) {
        size_t diagonal = row [0];
        row [0] = line;
        for (size_t column = 1; column <= right_size; column++) {
            size_t above = row [column];
            size_t cost = tolower ((unsigned char) left [line - 1])
                       != tolower ((unsigned char) right [column - 1]);
            size_t best = diagonal + cost;
            if (above + 1 < best)
                best = above + 1;
            if (row [column - 1] + 1 < best)
                best = row [column - 1] + 1;
            row [column] = best;
            diagonal = above;
        }
    }
    return row [right_size];
}

//  Writes " (did you mean X?)" for a near miss of a key or variable name.
static void
s_suggest (umb_config_t *self, const char *name, bool env, char *buffer, size_t size)
{
    *buffer = 0;
    size_t best = 3;
    for (size_t index = 0; index < self->size; index++) {
        char candidate [UMB_CONFIG_NAME_MAX + 8];
        if (env)
            s_env_name (self->schema [index].key, candidate, sizeof (candidate));
        else
            snprintf (candidate, sizeof (candidate), "%s", self->schema [index].key);
        size_t distance = s_distance (name, candidate);
        if (distance < best) {
            best = distance;
            snprintf (buffer, size, " (did you mean %s?)", candidate);
        }
    }
}

static int
s_parse_bool (const char *value, int64_t *number)
{
    static const char *const truths [] = { "true", "yes", "on", "1" };
    static const char *const lies [] = { "false", "no", "off", "0" };
    for (size_t index = 0; index < 4; index++) {
        if (strcasecmp (value, truths [index]) == 0) {
            *number = 1;
            return 0;
        }
        if (strcasecmp (value, lies [index]) == 0) {
            *number = 0;
            return 0;
        }
    }
    return -1;
}

//  Accepts "host:port" where host is a name, an address, "*" or "[v6]"
//  and port is digits in [min_port, 65535], or "*" if allow_star.
static bool
s_host_port (const char *text, int min_port, bool allow_star)
{
    const char *colon = strrchr (text, ':');
    if (!colon || colon == text)
        return false;
    if (*text == '[' && colon [-1] != ']')
        return false;
    for (const char *cursor = text; *cursor; cursor++)
        if (isspace ((unsigned char) *cursor) || *cursor == '/')
            return false;
    const char *port = colon + 1;
    if (allow_star && strcmp (port, "*") == 0)
        return true;
    if (!*port || strlen (port) > 5 || strspn (port, "0123456789") != strlen (port))
        return false;
    long number = strtol (port, NULL, 10);
    return number >= min_port && number <= 65535;
}

static int
s_parse_endpoint (const char *value)
{
    if (strncmp (value, "tcp://", 6) == 0)
        return s_host_port (value + 6, 1, true)? 0: -1;
    const char *rest = NULL;
    if (strncmp (value, "ipc://", 6) == 0)
        rest = value + 6;
    else
    if (strncmp (value, "inproc://", 9) == 0)
        rest = value + 9;
    return rest && *rest? 0: -1;
}

static int
s_check_listen (const char *value, char *why, size_t why_size)
{
    if (s_host_port (value, 0, false))
        return 0;
    snprintf (why, why_size, "expected host:port with a port from 0 to 65535");
    return -1;
}

static int
s_check_url (const char *value, char *why, size_t why_size)
{
    size_t scheme = strncmp (value, "http://", 7) == 0 ? 7
                  : strncmp (value, "https://", 8) == 0 ? 8 : 0;
    if (scheme && value [scheme] && value [scheme] != '/' && !strpbrk (value, " ?#"))
        return 0;
    snprintf (why, why_size, "expected an http:// or https:// URL with a host, without a query");
    return -1;
}

static int
s_check_public_key (const char *value, char *why, size_t why_size)
{
    static const char z85 [] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               ".-:+=^!/*?&<>()[]{}@%$#";
    if (*value == 0 || (strlen (value) == 40 && strspn (value, z85) == 40))
        return 0;
    snprintf (why, why_size, "expected a 40-character Z85 public key, or nothing");
    return -1;
}

//  Validates value for setting into a new normalized *text and *number;
//  or returns -1 with the reason (without the key) in why.
static int
s_parse (const s_setting_t *setting, const char *value, char **text, int64_t *number,
         char *why, size_t why_size)
{
    char shown [96];
    *text = NULL;
    *number = 0;
    for (const char *cursor = value; *cursor; cursor++)
        if ((unsigned char) *cursor < 0x20 || *cursor == 0x7f) {
            snprintf (why, why_size, "contains a control character");
            return -1;
        }
    const char *normal = value;
    switch (setting->type) {
        case UMB_CONFIG_INT: {
            char *end = NULL;
            errno = 0;
            long long parsed = strtoll (value, &end, 10);
            if (!*value || isspace ((unsigned char) *value) || *end || errno == ERANGE) {
                snprintf (why, why_size, "expected an integer from %lld to %lld, got %s",
                          (long long) setting->min, (long long) setting->max,
                          s_shown (setting, value, shown, sizeof (shown)));
                return -1;
            }
            if (parsed < setting->min || parsed > setting->max) {
                if (setting->secret)
                    snprintf (shown, sizeof (shown), "the given value");
                else
                    snprintf (shown, sizeof (shown), "%lld", parsed);
                if (parsed < setting->min)
                    snprintf (why, why_size, "%s is below the minimum %lld",
                              shown, (long long) setting->min);
                else
                    snprintf (why, why_size, "%s is above the maximum %lld",
                              shown, (long long) setting->max);
                return -1;
            }
            *number = parsed;
            break;
        }
        case UMB_CONFIG_BOOL:
            if (s_parse_bool (value, number)) {
                snprintf (why, why_size, "expected true/false, yes/no, on/off or 1/0, got %s",
                          s_shown (setting, value, shown, sizeof (shown)));
                return -1;
            }
            normal = *number? "true": "false";
            break;
        case UMB_CONFIG_ENUM: {
            const char *const *choice = setting->choices;
            assert (choice);
            for (; *choice; choice++)
                if (strcasecmp (value, *choice) == 0)
                    break;
            if (!*choice) {
                char list [256] = "";
                for (choice = setting->choices; *choice; choice++)
                    snprintf (list + strlen (list), sizeof (list) - strlen (list), "%s%s",
                              choice == setting->choices? "": choice [1]? ", ": " or ", *choice);
                snprintf (why, why_size, "expected %s, got %s", list,
                          s_shown (setting, value, shown, sizeof (shown)));
                return -1;
            }
            *number = choice - setting->choices;
            normal = *choice;
            break;
        }
        case UMB_CONFIG_ENDPOINT:
            if (s_parse_endpoint (value)) {
                snprintf (why, why_size, "expected a ZeroMQ endpoint (tcp://host:port, tcp://host:*, "
                          "ipc://path or inproc://name), got %s",
                          s_shown (setting, value, shown, sizeof (shown)));
                return -1;
            }
            break;
        case UMB_CONFIG_STRING:
        case UMB_CONFIG_PATH:
            break;
    }
    if (setting->check && setting->check (value, why, why_size)) {
        if (!setting->secret) {
            size_t used = strlen (why);
            snprintf (why + used, why_size - used, ", got %s",
                      s_shown (setting, value, shown, sizeof (shown)));
        }
        return -1;
    }
    *text = strdup (normal);
    if (!*text) {
        snprintf (why, why_size, "out of memory");
        return -1;
    }
    return 0;
}

static umb_config_t *
s_config_new (const s_setting_t *schema, size_t size)
{
    umb_config_t *self = (umb_config_t *) calloc (1, sizeof (umb_config_t));
    if (!self)
        return NULL;
    self->schema = schema;
    self->size = size;
    self->values = (s_value_t *) calloc (size, sizeof (s_value_t));
    if (!self->values) {
        umb_config_destroy (&self);
        return NULL;
    }
    for (size_t index = 0; index < size; index++) {
        char why [256];
        s_value_t *value = &self->values [index];
        if (s_parse (&schema [index], schema [index].fallback, &value->text, &value->number,
                     why, sizeof (why))) {
            //  The table is ours: only a bad default or no memory gets here
            assert (strcmp (why, "out of memory") == 0);
            umb_config_destroy (&self);
            return NULL;
        }
    }
    return self;
}

//  ---------------------------------------------------------------- batches

static int
s_batch_init (umb_config_t *self, s_batch_t *batch)
{
    memset (batch, 0, sizeof (s_batch_t));
    batch->pending = (s_value_t *) calloc (self->size, sizeof (s_value_t));
    if (batch->pending)
        return 0;
    s_error (batch, "out of memory");
    return -1;
}

static void
s_error (s_batch_t *batch, const char *format, ...)
{
    if (++batch->error_count > UMB_CONFIG_ERRORS_MAX)
        return;
    va_list args;
    va_start (args, format);
    char *message = NULL;
    int rc = vasprintf (&message, format, args);
    va_end (args);
    if (rc < 0)
        return;
    if (batch->errors) {
        char *joined = NULL;
        rc = asprintf (&joined, "%s\n%s", batch->errors, message);
        free (message);
        if (rc < 0)
            return;
        free (batch->errors);
        message = joined;
    }
    batch->errors = message;
}

//  where is "file:line", a variable name, or NULL for umb_config_set.
static void
s_assign (umb_config_t *self, s_batch_t *batch, const char *where, int line,
          const s_setting_t *setting, const char *value)
{
    const char *prefix = where? where: "";
    const char *separator = where? ": ": "";
    s_value_t *pending = &batch->pending [setting - self->schema];
    if (pending->text) {
        if (pending->source)
            s_error (batch, "%s%s%s: already set at line %d",
                     prefix, separator, setting->key, pending->source);
        else
            s_error (batch, "%s%s%s: set twice", prefix, separator, setting->key);
        return;
    }
    char why [512];
    if (s_parse (setting, value, &pending->text, &pending->number, why, sizeof (why))) {
        s_error (batch, "%s%s%s: %s", prefix, separator, setting->key, why);
        return;
    }
    pending->source = line;
}

static void
s_assign_key (umb_config_t *self, s_batch_t *batch, const char *where, int line,
              const char *key, const char *value)
{
    const s_setting_t *setting = s_find (self, key);
    if (setting) {
        s_assign (self, batch, where, line, setting, value);
        return;
    }
    char printable [72], suggestion [UMB_CONFIG_NAME_MAX + 64];
    s_suggest (self, key, false, suggestion, sizeof (suggestion));
    s_error (batch, "%s%s%s: not a known setting%s; see `umbra config` for the list",
             where? where: "", where? ": ": "",
             s_printable (key, SIZE_MAX, printable, sizeof (printable)), suggestion);
}

//  Applies the batch if it holds no error, else hands the errors back.
//  Either way the batch is freed.
static int
s_commit (umb_config_t *self, s_batch_t *batch, s_source_t source, char **error)
{
    int rc = batch->error_count? -1: 0;
    for (size_t index = 0; batch->pending && index < self->size; index++) {
        s_value_t *pending = &batch->pending [index];
        s_value_t *value = &self->values [index];
        if (rc == 0 && pending->text && (int) source >= value->source) {
            s_free_text (&self->schema [index], &value->text);
            value->text = pending->text;
            value->number = pending->number;
            value->source = source;
            pending->text = NULL;
        }
        s_free_text (&self->schema [index], &pending->text);
    }
    free (batch->pending);
    if (rc && batch->error_count > UMB_CONFIG_ERRORS_MAX && batch->errors) {
        char *joined = NULL;
        if (asprintf (&joined, "%s\n(and %d more errors)", batch->errors,
                      batch->error_count - UMB_CONFIG_ERRORS_MAX) >= 0) {
            free (batch->errors);
            batch->errors = joined;
        }
    }
    if (rc && !batch->errors)
        batch->errors = strdup ("out of memory");
    if (error)
        *error = batch->errors;
    else
        free (batch->errors);
    batch->errors = NULL;
    return rc;
}

//  ---------------------------------------------------------------- sources

static char *
s_trim (char *text)
{
    while (isspace ((unsigned char) *text))
        text++;
    size_t size = strlen (text);
    while (size && isspace ((unsigned char) text [size - 1]))
        text [--size] = 0;
    return text;
}

//  Undoes double quotes with \" and \\ in place; NULL if malformed, with why.
static char *
s_unquote (char *value, const char **why)
{
    char *from = value + 1, *to = value;
    while (*from && *from != '"') {
        if (*from == '\\') {
            from++;
            if (*from != '"' && *from != '\\') {
                *why = *from? "only \\\" and \\\\ may follow a backslash in quotes"
                            : "missing closing quote";
                return NULL;
            }
        }
        *to++ = *from++;
    }
    if (*from != '"') {
        *why = "missing closing quote";
        return NULL;
    }
    from++;
    if (*s_trim (from)) {
        *why = "unexpected text after the closing quote";
        return NULL;
    }
    *to = 0;
    return value;
}

static bool
s_valid_section (const char *name)
{
    return *name && strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789_.-") == strlen (name);
}

//  Parses one line into the batch; *section_p is the current [section]
//  prefix, "" at top level, NULL after a bad header (its keys are skipped).
static void
s_parse_line (umb_config_t *self, s_batch_t *batch, const char *path, int number,
              char *line, char **section_p)
{
    char where [PATH_MAX + 32], printable [72];
    snprintf (where, sizeof (where), "%s:%d", path, number);
    char *text = s_trim (line);
    if (*text == 0 || *text == '#' || *text == ';')
        return;
    if (*text == '[') {
        free (*section_p);
        *section_p = NULL;
        size_t size = strlen (text);
        if (text [size - 1] != ']') {
            s_error (batch, "%s: expected ']' to close the section header", where);
            return;
        }
        text [size - 1] = 0;
        char *name = s_trim (text + 1);
        if (!s_valid_section (name)) {
            s_error (batch, "%s: [%s] is not a valid section name", where,
                     s_printable (name, SIZE_MAX, printable, sizeof (printable)));
            return;
        }
        *section_p = strdup (name);
        if (!*section_p)
            s_error (batch, "%s: out of memory", where);
        return;
    }
    char *equals = strchr (text, '=');
    if (!equals) {
        s_error (batch, "%s: expected \"key = value\", \"[section]\" or a comment", where);
        return;
    }
    *equals = 0;
    char *key = s_trim (text);
    char *value = s_trim (equals + 1);
    if (*key == 0) {
        s_error (batch, "%s: missing the key before '='", where);
        return;
    }
    if (!*section_p)
        return;                 //  the header was reported already
    char full_key [UMB_CONFIG_NAME_MAX + 1];
    if (**section_p)
        snprintf (full_key, sizeof (full_key), "%s.%s", *section_p, key);
    else
        snprintf (full_key, sizeof (full_key), "%s", key);
    if (*value == '"') {
        const char *why = NULL;
        if (!s_unquote (value, &why)) {
            s_error (batch, "%s: %s: %s", where,
                     s_printable (full_key, SIZE_MAX, printable, sizeof (printable)), why);
            return;
        }
    }
    s_assign_key (self, batch, where, number, full_key, value);
}

int
umb_config_load_file (umb_config_t *self, const char *path, char **error)
{
    assert (self);
    assert (path);
    if (error)
        *error = NULL;
    s_batch_t batch;
    if (s_batch_init (self, &batch))
        return s_commit (self, &batch, UMB_CONFIG_FROM_FILE, error);

    FILE *file = fopen (path, "re");
    if (!file) {
        s_error (&batch, "%s: cannot open: %s", path, strerror (errno));
        return s_commit (self, &batch, UMB_CONFIG_FROM_FILE, error);
    }
    char *section = strdup ("");
    char *line = NULL;
    size_t capacity = 0;
    ssize_t size;
    int number = 0;
    while ((size = getline (&line, &capacity, file)) >= 0) {
        number++;
        char *text = line;
        if (number == 1 && strncmp (text, "\xef\xbb\xbf", 3) == 0)
            text += 3;
        if ((size_t) size != strlen (line))
            s_error (&batch, "%s:%d: contains a NUL byte", path, number);
        else
            s_parse_line (self, &batch, path, number, text, &section);
        //  So getline's realloc never frees a buffer holding a secret
        sodium_memzero (line, capacity);
    }
    if (ferror (file))
        s_error (&batch, "%s: cannot read: %s", path, strerror (errno));
    free (line);
    free (section);
    fclose (file);
    return s_commit (self, &batch, UMB_CONFIG_FROM_FILE, error);
}

int
umb_config_load_env (umb_config_t *self, char **envp, char **error)
{
    assert (self);
    assert (envp);
    if (error)
        *error = NULL;
    s_batch_t batch;
    if (s_batch_init (self, &batch))
        return s_commit (self, &batch, UMB_CONFIG_FROM_ENV, error);

    const size_t prefix_size = strlen (UMB_CONFIG_ENV_PREFIX);
    for (char **entry = envp; *entry; entry++) {
        if (strncmp (*entry, UMB_CONFIG_ENV_PREFIX, prefix_size) != 0)
            continue;
        const char *equals = strchr (*entry, '=');
        if (!equals)
            continue;
        char name [UMB_CONFIG_NAME_MAX + 1], printable [72], suggestion [UMB_CONFIG_NAME_MAX + 64];
        size_t name_size = equals - *entry;
        const s_setting_t *setting = NULL;
        if (name_size < sizeof (name)) {
            memcpy (name, *entry, name_size);
            name [name_size] = 0;
            setting = s_find_env (self, name);
        }
        if (setting)
            s_assign (self, &batch, name, 0, setting, equals + 1);
        else {
            s_printable (*entry, name_size, printable, sizeof (printable));
            s_suggest (self, printable, true, suggestion, sizeof (suggestion));
            s_error (&batch, "%s: not a known setting%s; see `umbra config` for the list",
                     printable, suggestion);
        }
    }
    return s_commit (self, &batch, UMB_CONFIG_FROM_ENV, error);
}

int
umb_config_set (umb_config_t *self, const char *key, const char *value, char **error)
{
    assert (self);
    assert (key);
    assert (value);
    if (error)
        *error = NULL;
    s_batch_t batch;
    if (s_batch_init (self, &batch) == 0)
        s_assign_key (self, &batch, NULL, 0, key, value);
    return s_commit (self, &batch, UMB_CONFIG_FROM_SET, error);
}

//  ---------------------------------------------------------------- accessors

static size_t
s_index (umb_config_t *self, const char *key)
{
    assert (self);
    assert (key);
    const s_setting_t *setting = s_find (self, key);
    assert (setting);           //  every key is declared in the schema table
    return setting - self->schema;
}

bool
umb_config_declared (umb_config_t *self, const char *key)
{
    assert (self && key);
    return s_find (self, key) != NULL;
}

const char *
umb_config_str (umb_config_t *self, const char *key)
{
    size_t index = s_index (self, key);
    assert (self->schema [index].type != UMB_CONFIG_INT
         && self->schema [index].type != UMB_CONFIG_BOOL);
    return self->values [index].text;
}

int64_t
umb_config_int (umb_config_t *self, const char *key)
{
    size_t index = s_index (self, key);
    assert (self->schema [index].type == UMB_CONFIG_INT);
    return self->values [index].number;
}

bool
umb_config_bool (umb_config_t *self, const char *key)
{
    size_t index = s_index (self, key);
    assert (self->schema [index].type == UMB_CONFIG_BOOL);
    return self->values [index].number != 0;
}

bool
umb_config_is_set (umb_config_t *self, const char *key)
{
    size_t index = s_index (self, key);
    return self->values [index].source != UMB_CONFIG_FROM_DEFAULT;
}

static int
s_compare_settings (const void *left, const void *right)
{
    return strcmp ((*(const s_setting_t *const *) left)->key,
                   (*(const s_setting_t *const *) right)->key);
}

//  One row of the settings' table: the setting, its variable, its default,
//  what it means (a '|' would end a cell: it becomes '/')
static void
s_table_row (FILE *stream, const s_setting_t *setting)
{
    char variable [UMB_CONFIG_NAME_MAX];
    s_env_name (setting->key, variable, sizeof variable);
    fprintf (stream, "| `%s` | `%s` | %s%s%s | ", setting->key, variable,
             *setting->fallback ? "`" : "", *setting->fallback ? setting->fallback : "—",
             *setting->fallback ? "`" : "");
    for (const char *c = setting->help ? setting->help : ""; *c; c++)
        fputc (*c == '|' ? '/' : *c, stream);
    fprintf (stream, " |\n");
}

static void s_dump (umb_config_t *self, int fd, bool table);

void
umb_config_dump_table (umb_config_t *self, int fd)
{
    s_dump (self, fd, true);
}

void
umb_config_dump (umb_config_t *self, int fd)
{
    s_dump (self, fd, false);
}

static void
s_dump (umb_config_t *self, int fd, bool table)
{
    assert (self);
    const s_setting_t **sorted = (const s_setting_t **) calloc (self->size, sizeof (*sorted));
    char *output = NULL;
    size_t output_size = 0;
    FILE *stream = open_memstream (&output, &output_size);
    if (!sorted || !stream) {
        free (sorted);
        if (stream)
            fclose (stream);
        free (output);
        return;
    }
    for (size_t index = 0; index < self->size; index++)
        sorted [index] = &self->schema [index];
    qsort (sorted, self->size, sizeof (*sorted), s_compare_settings);
    if (table)
        fprintf (stream, "| setting | variable | default | meaning |\n|---|---|---|---|\n");
    for (size_t index = 0; table && index < self->size; index++)
        s_table_row (stream, sorted [index]);
    for (size_t index = 0; !table && index < self->size; index++) {
        const s_setting_t *setting = sorted [index];
        const char *text = self->values [setting - self->schema].text;
        fprintf (stream, "%s = ", setting->key);
        if (setting->secret)
            fputs (*text? "(set)": "(unset)", stream);
        else
        if (*text == 0 || *text == '"' || isspace ((unsigned char) *text)
        ||  (*text && isspace ((unsigned char) text [strlen (text) - 1]))) {
            //  Quoted so the dump reads back as a config file
            fputc ('"', stream);
            for (; *text; text++) {
                if (*text == '"' || *text == '\\')
                    fputc ('\\', stream);
                fputc (*text, stream);
            }
            fputc ('"', stream);
        }
        else
            fputs (text, stream);
        fputc ('\n', stream);
    }
    free (sorted);
    if (fclose (stream) == 0) {
        size_t written = 0;
        while (written < output_size) {
            ssize_t count = write (fd, output + written, output_size - written);
            if (count < 0 && errno == EINTR)
                continue;
            if (count <= 0)
                break;
            written += (size_t) count;
        }
    }
    free (output);
}

//  --------------------------------------------------------------------------
//  Selftest

#include <signal.h>
#include <fcntl.h>
#include <sys/wait.h>

static const char *const s_test_colors [] = { "red", "green", NULL };

//  Exercises the types the real schema does not use, or uses once.
static const s_setting_t s_test_schema [] = {
    { "flag", UMB_CONFIG_BOOL, "no" },
    { "count", UMB_CONFIG_INT, "5", -3, 10 },
    { "color", UMB_CONFIG_ENUM, "red", .choices = s_test_colors },
    { "pin", UMB_CONFIG_INT, "1234", 0, 9999, .secret = true },
    { "peer", UMB_CONFIG_ENDPOINT, "inproc://peer" },
    { "listen", UMB_CONFIG_STRING, "[::1]:80", .check = s_check_listen },
};

static bool
s_test_streq (const char *left, const char *right)
{
    return strcmp (left, right) == 0;
}

//  Writes text to a new temp file; the caller unlinks path.
static void
s_test_file (char *path, const char *text)
{
    strcpy (path, "/tmp/umb_config_test_XXXXXX");
    int fd = mkstemp (path);
    assert (fd >= 0);
    size_t size = strlen (text);
    ssize_t written = write (fd, text, size);
    assert (written == (ssize_t) size);
    close (fd);
}

//  Loads text as a file, expecting it to fail with every one of the given
//  substrings in the error (NULL-terminated). Returns the error to free.
static char *
s_test_bad_file (umb_config_t *self, const char *text, const char *const *expect)
{
    char path [64];
    s_test_file (path, text);
    char *error = NULL;
    int rc = umb_config_load_file (self, path, &error);
    assert (rc == -1 && error);
    for (; *expect; expect++) {
        char located [256];
        if ((*expect) [0] == ':')
            snprintf (located, sizeof (located), "%s%s", path, *expect);
        else
            snprintf (located, sizeof (located), "%s", *expect);
        if (!strstr (error, located)) {
            fprintf (stderr, "expected \"%s\" in:\n%s\n", located, error);
            assert (false);
        }
    }
    unlink (path);
    return error;
}

static char *
s_test_dump (umb_config_t *self)
{
    char path [64];
    s_test_file (path, "");
    int fd = open (path, O_RDWR | O_CLOEXEC);
    assert (fd >= 0);
    umb_config_dump (self, fd);
    off_t size = lseek (fd, 0, SEEK_END);
    char *text = (char *) calloc (1, (size_t) size + 1);
    assert (text);
    ssize_t count = pread (fd, text, (size_t) size, 0);
    assert (count == size);
    close (fd);
    unlink (path);
    return text;
}

//  True if fn (self, key) dies on an assertion.
static bool
s_test_asserts (umb_config_t *self, const char *key, int accessor)
{
    pid_t pid = fork ();
    assert (pid >= 0);
    if (pid == 0) {
        int null = open ("/dev/null", O_WRONLY);
        dup2 (null, STDERR_FILENO);
        if (accessor == 0)
            umb_config_str (self, key);
        else
        if (accessor == 1)
            umb_config_int (self, key);
        else
            umb_config_bool (self, key);
        _exit (0);
    }
    int status = 0;
    pid_t waited = waitpid (pid, &status, 0);
    assert (waited == pid);
    return WIFSIGNALED (status) && WTERMSIG (status) == SIGABRT;
}

void
umb_config_test (bool verbose)
{
    if (verbose)
        printf (" * umb_config: ");

    //  The table itself: unique keys and variables, valid defaults
    size_t size = sizeof (s_schema) / sizeof (s_schema [0]);
    for (size_t index = 0; index < size; index++) {
        const s_setting_t *setting = &s_schema [index];
        assert (setting->help && *setting->help);
        assert (strlen (setting->key) < UMB_CONFIG_NAME_MAX);
        assert (setting->type != UMB_CONFIG_INT || setting->min <= setting->max);
        for (size_t other = index + 1; other < size; other++) {
            char name [UMB_CONFIG_NAME_MAX + 8], other_name [UMB_CONFIG_NAME_MAX + 8];
            s_env_name (setting->key, name, sizeof (name));
            s_env_name (s_schema [other].key, other_name, sizeof (other_name));
            assert (strcmp (name, other_name) != 0);
        }
    }

    //  Defaults
    umb_config_t *config = umb_config_new ();
    assert (config);
    assert (s_test_streq (umb_config_str (config, "state_dir"), ""));
    assert (s_test_streq (umb_config_str (config, "log.level"), "info"));
    assert (s_test_streq (umb_config_str (config, "log.format"), "text"));
    assert (umb_config_int (config, "mesh.max_body_bytes") == 1048576);
    assert (umb_config_int (config, "mesh.timeout_ms") == 5000);
    assert (s_test_streq (umb_config_str (config, "auth.endpoint"), "tcp://127.0.0.1:7101"));
    assert (s_test_streq (umb_config_str (config, "auth.pub_endpoint"), "tcp://127.0.0.1:7102"));
    assert (s_test_streq (umb_config_str (config, "auth.issuer"), "umbra"));
    assert (umb_config_int (config, "auth.access_ttl_s") == 900);
    assert (umb_config_int (config, "auth.refresh_ttl_s") == 2592000);
    assert (umb_config_int (config, "auth.password_min_length") == 10);
    assert (s_test_streq (umb_config_str (config, "auth.pwhash"), "interactive"));
    assert (umb_config_int (config, "auth.login_max_failures") == 5);
    assert (umb_config_int (config, "auth.login_window_s") == 300);
    assert (s_test_streq (umb_config_str (config, "admin.password"), ""));
    assert (s_test_streq (umb_config_str (config, "gateway.listen"), "127.0.0.1:8080"));
    assert (umb_config_int (config, "gateway.max_connections") == 1024);
    assert (umb_config_int (config, "gateway.threads") == 0);
    assert (s_test_streq (umb_config_str (config, "client.url"), "http://127.0.0.1:8080"));
    assert (s_test_streq (umb_config_str (config, "client.token"), ""));
    assert (!umb_config_is_set (config, "auth.endpoint"));
    char *url_error = NULL;
    assert (umb_config_set (config, "client.url", "https://umbra.example:8443/api", &url_error) == 0);
    assert (umb_config_set (config, "client.url", "ftp://x", &url_error) == -1);
    assert (strstr (url_error, "client.url"));
    free (url_error);
    url_error = NULL;
    assert (umb_config_set (config, "client.url", "http://", &url_error) == -1);
    free (url_error);
    url_error = NULL;
    assert (umb_config_set (config, "client.token", "not-in-errors", &url_error) == 0);

    //  Misuse of the accessors is a programming error
    assert (s_test_asserts (config, "auth.nope", 0));
    assert (s_test_asserts (config, "auth.access_ttl_s", 0));
    assert (s_test_asserts (config, "auth.endpoint", 1));
    assert (s_test_asserts (config, "auth.endpoint", 2));
    assert (!s_test_asserts (config, "auth.endpoint", 0));

    //  A file: comments, sections, top-level keys, quotes, CRLF, a BOM
    char path [64];
    s_test_file (path,
        "\xef\xbb\xbf# umbra configuration\n"
        "; another comment\n"
        "state_dir = /var/lib/umbra  \n"
        "\n"
        "  [log]  \n"
        "level=debug\r\n"
        "format = JSON\n"
        "[auth]\n"
        "endpoint = tcp://*:7101\n"
        "pub_endpoint = ipc:///run/umbra/auth-pub\n"
        "issuer = \"  umbra \\\"prod\\\" \\\\ # not a comment \"   \n"
        "public_key = rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n"
        "access_ttl_s = 60\n"
        "[admin]\n"
        "password = \"s3cret pass\"\n"
        "[gateway]\n"
        "listen = [::]:0\n"
        "threads = 256\n"
        "[mesh]\n"
        "keys_dir=\n");
    char *error = NULL;
    int rc = umb_config_load_file (config, path, &error);
    if (rc)
        fprintf (stderr, "%s\n", error);
    assert (rc == 0 && error == NULL);
    unlink (path);
    assert (s_test_streq (umb_config_str (config, "state_dir"), "/var/lib/umbra"));
    assert (s_test_streq (umb_config_str (config, "log.level"), "debug"));
    assert (s_test_streq (umb_config_str (config, "log.format"), "json"));
    assert (s_test_streq (umb_config_str (config, "auth.endpoint"), "tcp://*:7101"));
    assert (s_test_streq (umb_config_str (config, "auth.pub_endpoint"), "ipc:///run/umbra/auth-pub"));
    assert (s_test_streq (umb_config_str (config, "auth.issuer"), "  umbra \"prod\" \\ # not a comment "));
    assert (s_test_streq (umb_config_str (config, "auth.public_key"),
                          "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"));
    assert (umb_config_int (config, "auth.access_ttl_s") == 60);
    assert (s_test_streq (umb_config_str (config, "admin.password"), "s3cret pass"));
    assert (s_test_streq (umb_config_str (config, "gateway.listen"), "[::]:0"));
    assert (umb_config_int (config, "gateway.threads") == 256);
    assert (s_test_streq (umb_config_str (config, "auth.db"), ""));
    assert (umb_config_is_set (config, "mesh.keys_dir"));
    assert (!umb_config_is_set (config, "auth.db"));
    assert (umb_config_is_set (config, "auth.issuer"));
    assert (!umb_config_is_set (config, "auth.refresh_ttl_s"));
    umb_config_destroy (&config);
    assert (config == NULL);
    umb_config_destroy (&config);
    config = umb_config_new ();
    assert (config);

    //  Every mistake in a file is reported with its line, and none applies
    error = s_test_bad_file (config,
        "state_dir = /applied/never\n"
        "[auth]\n"
        "access_ttl_s = 5\n"
        "refresh_ttl_s = 99999999999\n"
        "password_min_length = ten\n"
        "endpont = tcp://x:1\n"
        "pwhash = fast\n"
        "endpoint = http://localhost:7101\n"
        "pub_endpoint = tcp://localhost:99999\n"
        "public_key = short\n"
        "issuer = \"open\n"
        "issuer = \"bad \\n escape\"\n"
        "issuer = \"x\" y\n"
        "issuer\n"
        " = orphan\n"
        "[gateway]\n"
        "listen = localhost\n"
        "listen = 127.0.0.1:1\n"
        "listen = 127.0.0.1:2\n"
        "[bad section]\n"
        "ignored = 1\n"
        "[auth\n"
        "[log]\n"
        "level = debug\n"
        "level = info\n",
        (const char *const []) {
            ":3: auth.access_ttl_s: 5 is below the minimum 60\n",
            ":4: auth.refresh_ttl_s: 99999999999 is above the maximum 31536000\n",
            ":5: auth.password_min_length: expected an integer from 8 to 128, got \"ten\"\n",
            ":6: auth.endpont: not a known setting (did you mean auth.endpoint?); "
                "see `umbra config` for the list\n",
            ":7: auth.pwhash: expected interactive or moderate, got \"fast\"\n",
            ":8: auth.endpoint: expected a ZeroMQ endpoint (tcp://host:port, tcp://host:*, "
                "ipc://path or inproc://name), got \"http://localhost:7101\"\n",
            ":9: auth.pub_endpoint: expected a ZeroMQ endpoint",
            ":10: auth.public_key: expected a 40-character Z85 public key, or nothing, got \"short\"\n",
            ":11: auth.issuer: missing closing quote\n",
            ":12: auth.issuer: only \\\" and \\\\ may follow a backslash in quotes\n",
            ":13: auth.issuer: unexpected text after the closing quote\n",
            ":14: expected \"key = value\", \"[section]\" or a comment\n",
            ":15: missing the key before '='\n",
            ":17: gateway.listen: expected host:port with a port from 0 to 65535, got \"localhost\"\n",
            ":19: gateway.listen: already set at line 18\n",
            ":20: [bad section] is not a valid section name\n",
            ":22: expected ']' to close the section header\n",
            ":25: log.level: already set at line 24",
            NULL });
    assert (!strstr (error, ":18:"));
    assert (!strstr (error, ":21:"));       //  keys under a bad header are skipped
    assert (!strstr (error, ":24:"));
    free (error);
    assert (s_test_streq (umb_config_str (config, "state_dir"), ""));
    assert (s_test_streq (umb_config_str (config, "log.level"), "info"));
    assert (!umb_config_is_set (config, "state_dir"));

    //  A typo in a top-level key, a NUL byte, a missing file
    char nul_text [] = "state_dir = /a\nissuer = x\0y\n";
    s_test_file (path, "");
    int fd = open (path, O_WRONLY | O_CLOEXEC);
    ssize_t written = write (fd, nul_text, sizeof (nul_text) - 1);
    assert (written == (ssize_t) sizeof (nul_text) - 1);
    close (fd);
    rc = umb_config_load_file (config, path, &error);
    assert (rc == -1 && strstr (error, ":2: contains a NUL byte"));
    free (error);
    unlink (path);
    error = s_test_bad_file (config, "statedir = /x\n", (const char *const []) {
        ":1: statedir: not a known setting (did you mean state_dir?); see `umbra config` for the list",
        NULL });
    assert (s_test_streq (strchr (error, ':'), ":1: statedir: not a known setting (did you mean "
                          "state_dir?); see `umbra config` for the list"));
    free (error);
    rc = umb_config_load_file (config, "/nonexistent/umbra.conf", &error);
    assert (rc == -1);
    assert (s_test_streq (error, "/nonexistent/umbra.conf: cannot open: No such file or directory"));
    free (error);
    rc = umb_config_load_file (config, "/tmp", NULL);
    assert (rc == -1);

    //  Errors from one source are capped
    char many [2048] = "";
    for (int index = 0; index < 30; index++)
        strcat (many, "no.such.key = 1\n");
    error = s_test_bad_file (config, many, (const char *const []) {
        ":20: no.such.key", "\n(and 10 more errors)", NULL });
    assert (!strstr (error, ":21:"));
    free (error);

    //  The environment
    char *env_ok [] = {
        "PATH=/usr/bin",
        "UMBRA=not ours",
        "UMBRA_STATE_DIR=/srv/umbra",
        "UMBRA_AUTH_ENDPOINT=tcp://10.0.0.1:7101",
        "UMBRA_AUTH_ACCESS_TTL_S=120",
        "UMBRA_ADMIN_PASSWORD=from-env",
        "umbra_auth_issuer=lowercase is not ours",
        NULL };
    rc = umb_config_load_env (config, env_ok, &error);
    assert (rc == 0 && error == NULL);
    assert (s_test_streq (umb_config_str (config, "state_dir"), "/srv/umbra"));
    assert (s_test_streq (umb_config_str (config, "auth.endpoint"), "tcp://10.0.0.1:7101"));
    assert (umb_config_int (config, "auth.access_ttl_s") == 120);
    assert (s_test_streq (umb_config_str (config, "auth.issuer"), "umbra"));
    assert (umb_config_is_set (config, "admin.password"));

    //  The environment wins over a file loaded before or after it
    s_test_file (path,
        "state_dir = /from/file\n"
        "[auth]\n"
        "access_ttl_s = 600\n"
        "issuer = file-issuer\n");
    rc = umb_config_load_file (config, path, &error);
    assert (rc == 0);
    unlink (path);
    assert (s_test_streq (umb_config_str (config, "state_dir"), "/srv/umbra"));
    assert (umb_config_int (config, "auth.access_ttl_s") == 120);
    assert (s_test_streq (umb_config_str (config, "auth.issuer"), "file-issuer"));
    char *env_later [] = { "UMBRA_AUTH_ISSUER=env-issuer", NULL };
    rc = umb_config_load_env (config, env_later, &error);
    assert (rc == 0);
    assert (s_test_streq (umb_config_str (config, "auth.issuer"), "env-issuer"));
    //  ...and an explicit set wins over both
    rc = umb_config_set (config, "auth.issuer", "flag-issuer", &error);
    assert (rc == 0 && error == NULL);
    rc = umb_config_load_env (config, env_later, &error);
    assert (rc == 0);
    assert (s_test_streq (umb_config_str (config, "auth.issuer"), "flag-issuer"));

    //  An unknown or invalid variable refuses the whole environment
    char *env_bad [] = {
        "UMBRA_GATEWAY_THREADS=8",
        "UMBRA_FOO=1",
        NULL };
    rc = umb_config_load_env (config, env_bad, &error);
    assert (rc == -1);
    assert (s_test_streq (error, "UMBRA_FOO: not a known setting; see `umbra config` for the list"));
    free (error);
    assert (umb_config_int (config, "gateway.threads") == 0);
    char *env_invalid [] = {
        "UMBRA_AUTH_ACCES_TTL_S=100",
        "UMBRA_AUTH_REFRESH_TTL_S=5",
        "UMBRA_LOG_LEVEL=verbose",
        "UMBRA_ADMIN_PASSWORD=line\nbreak",
        "UMBRA_GATEWAY_THREADS=257",
        "UMBRA_MESH_TIMEOUT_MS= 50",
        NULL };
    rc = umb_config_load_env (config, env_invalid, &error);
    assert (rc == -1);
    assert (s_test_streq (error,
        "UMBRA_AUTH_ACCES_TTL_S: not a known setting (did you mean UMBRA_AUTH_ACCESS_TTL_S?); "
            "see `umbra config` for the list\n"
        "UMBRA_AUTH_REFRESH_TTL_S: auth.refresh_ttl_s: 5 is below the minimum 300\n"
        "UMBRA_LOG_LEVEL: log.level: expected debug, info, warn or error, got \"verbose\"\n"
        "UMBRA_ADMIN_PASSWORD: admin.password: contains a control character\n"
        "UMBRA_GATEWAY_THREADS: gateway.threads: 257 is above the maximum 256\n"
        "UMBRA_MESH_TIMEOUT_MS: mesh.timeout_ms: expected an integer from 10 to 600000, "
            "got \" 50\""));
    free (error);
    assert (s_test_streq (umb_config_str (config, "admin.password"), "from-env"));
    assert (s_test_streq (umb_config_str (config, "log.level"), "info"));

    //  umb_config_set
    rc = umb_config_set (config, "auth.login_window_s", "0", &error);
    assert (rc == -1);
    assert (s_test_streq (error, "auth.login_window_s: 0 is below the minimum 1"));
    free (error);
    rc = umb_config_set (config, "auth.login_windows", "5", &error);
    assert (rc == -1);
    assert (s_test_streq (error, "auth.login_windows: not a known setting (did you mean "
                          "auth.login_window_s?); see `umbra config` for the list"));
    free (error);
    rc = umb_config_set (config, "log.level", "WARN", NULL);
    assert (rc == 0);
    assert (s_test_streq (umb_config_str (config, "log.level"), "warn"));
    rc = umb_config_set (config, "auth.endpoint", "inproc://auth", NULL);
    assert (rc == 0);
    rc = umb_config_set (config, "state_dir", " padded ", NULL);
    assert (rc == 0);
    rc = umb_config_set (config, "auth.public_key", "", NULL);
    assert (rc == 0);

    //  The dump: sorted, secrets hidden, and it reads back
    char *dump = s_test_dump (config);
    assert (!strstr (dump, "from-env"));
    assert (strstr (dump, "\nadmin.password = (set)\n"));
    assert (strstr (dump, "\nauth.endpoint = inproc://auth\n"));
    assert (strstr (dump, "\nauth.db = \"\"\n"));
    assert (strstr (dump, "\nauth.access_ttl_s = 120\n"));
    assert (strstr (dump, "\nstate_dir = \" padded \"\n"));
    int lines = 0;
    char previous [UMB_CONFIG_NAME_MAX] = "";
    for (char *line = dump; *line; line = strchr (line, '\n') + 1) {
        char key [UMB_CONFIG_NAME_MAX];
        assert (strchr (line, '\n'));
        snprintf (key, sizeof (key), "%.*s", (int) strcspn (line, " "), line);
        assert (strcmp (previous, key) < 0);
        strcpy (previous, key);
        lines++;
    }
    assert (lines == (int) size);
    umb_config_t *copy = umb_config_new ();
    assert (copy);
    char *hidden = strstr (dump, "admin.password = (set)");
    memset (hidden, ' ', strlen ("admin.password = (set)"));
    hidden = strstr (dump, "client.token = (unset)");
    assert (hidden);
    memset (hidden, ' ', strlen ("client.token = (unset)"));
    s_test_file (path, dump);
    rc = umb_config_load_file (copy, path, &error);
    assert (rc == 0);
    unlink (path);
    rc = umb_config_set (copy, "admin.password", "from-env", NULL);
    assert (rc == 0);
    char *dump_copy = s_test_dump (copy);
    char *fresh = s_test_dump (config);
    assert (s_test_streq (dump_copy, fresh));
    free (dump);
    free (dump_copy);
    free (fresh);
    umb_config_destroy (&copy);
    umb_config_destroy (&config);

    //  Unset secrets; bools, signed bounds and checks through a test schema
    config = s_config_new (s_test_schema, sizeof (s_test_schema) / sizeof (s_test_schema [0]));
    assert (config);
    assert (umb_config_bool (config, "flag") == false);
    assert (umb_config_int (config, "pin") == 1234);
    const char *truths [] = { "true", "yes", "on", "1", "TRUE", "Yes", "ON" };
    const char *lies [] = { "false", "no", "off", "0", "False", "NO", "oFF" };
    for (size_t index = 0; index < sizeof (truths) / sizeof (truths [0]); index++) {
        rc = umb_config_set (config, "flag", truths [index], NULL);
        assert (rc == 0 && umb_config_bool (config, "flag"));
        rc = umb_config_set (config, "flag", lies [index], NULL);
        assert (rc == 0 && !umb_config_bool (config, "flag"));
    }
    const char *not_bools [] = { "", "2", "y", "maybe", "truee", " true" };
    for (size_t index = 0; index < sizeof (not_bools) / sizeof (not_bools [0]); index++) {
        rc = umb_config_set (config, "flag", not_bools [index], &error);
        assert (rc == -1 && strstr (error, "flag: expected true/false, yes/no, on/off or 1/0, got"));
        free (error);
    }
    assert (s_test_asserts (config, "flag", 0));
    assert (s_test_asserts (config, "flag", 1));
    assert (!s_test_asserts (config, "flag", 2));

    const char *counts [] = { "-3", "10", "+7", "0" };
    const int64_t count_values [] = { -3, 10, 7, 0 };
    for (size_t index = 0; index < 4; index++) {
        rc = umb_config_set (config, "count", counts [index], NULL);
        assert (rc == 0 && umb_config_int (config, "count") == count_values [index]);
    }
    const char *not_counts [] = { "-4", "11", "", "1.5", "0x5", "5 ", "99999999999999999999", "-" };
    for (size_t index = 0; index < sizeof (not_counts) / sizeof (not_counts [0]); index++) {
        rc = umb_config_set (config, "count", not_counts [index], &error);
        assert (rc == -1 && strncmp (error, "count: ", 7) == 0);
        free (error);
    }
    assert (umb_config_int (config, "count") == 0);

    //  A secret never appears in an error
    rc = umb_config_set (config, "pin", "12345", &error);
    assert (rc == -1 && s_test_streq (error, "pin: the given value is above the maximum 9999"));
    free (error);
    rc = umb_config_set (config, "pin", "abcd", &error);
    assert (rc == -1 && !strstr (error, "abcd"));
    free (error);

    const char *endpoints [] = { "tcp://*:5555", "tcp://[::1]:7101", "tcp://host.example:*",
                                 "tcp://eth0:1", "ipc:///tmp/x.sock", "ipc://@abstract",
                                 "inproc://a", "tcp://1.2.3.4:65535" };
    for (size_t index = 0; index < sizeof (endpoints) / sizeof (endpoints [0]); index++) {
        rc = umb_config_set (config, "peer", endpoints [index], NULL);
        assert (rc == 0 && s_test_streq (umb_config_str (config, "peer"), endpoints [index]));
    }
    const char *not_endpoints [] = { "tcp://host", "tcp://:5", "tcp://h:0", "tcp://h:65536",
                                     "tcp://h:-1", "tcp://h:", "tcp://a b:1", "tcp://[::1:5",
                                     "ipc://", "inproc://", "http://x:1", "TCP://x:1", "",
                                     "tcp://h:1/path", "udp://x:1" };
    for (size_t index = 0; index < sizeof (not_endpoints) / sizeof (not_endpoints [0]); index++) {
        rc = umb_config_set (config, "peer", not_endpoints [index], &error);
        assert (rc == -1 && strncmp (error, "peer: expected a ZeroMQ endpoint", 32) == 0);
        free (error);
    }
    const char *listens [] = { "0.0.0.0:0", "localhost:65535", "[::]:8443" };
    for (size_t index = 0; index < 3; index++) {
        rc = umb_config_set (config, "listen", listens [index], NULL);
        assert (rc == 0);
    }
    const char *not_listens [] = { "localhost", ":80", "h:65536", "h:*", "h:8o", "h:123456" };
    for (size_t index = 0; index < sizeof (not_listens) / sizeof (not_listens [0]); index++) {
        rc = umb_config_set (config, "listen", not_listens [index], &error);
        assert (rc == -1 && strncmp (error, "listen: expected host:port", 26) == 0);
        free (error);
    }
    rc = umb_config_set (config, "color", "GREEN", NULL);
    assert (rc == 0 && s_test_streq (umb_config_str (config, "color"), "green"));
    rc = umb_config_set (config, "color", "blue", &error);
    assert (rc == -1 && s_test_streq (error, "color: expected red or green, got \"blue\""));
    free (error);

    dump = s_test_dump (config);
    assert (s_test_streq (dump,
        "color = green\n"
        "count = 0\n"
        "flag = false\n"
        "listen = [::]:8443\n"
        "peer = tcp://1.2.3.4:65535\n"
        "pin = (set)\n"));
    free (dump);
    umb_config_destroy (&config);

    config = umb_config_new ();
    dump = s_test_dump (config);
    assert (strstr (dump, "\nadmin.password = (unset)\n"));
    free (dump);
    umb_config_destroy (&config);

    if (verbose)
        printf ("OK\n");
}
