//  umb_cli_agent - `umbra algo|data|result|agent status|attestation get`
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <czmq.h>
#include <jansson.h>
#include <sodium.h>
#include "umb_cli_agent.h"
#include "umb_agent_client.h"
#include "umb_sig.h"

#define S_EXIT_OK      0
#define S_EXIT_FAILED  1
#define S_EXIT_USAGE   2

#define S_MAX_ARGS     256
#define S_TAR_BLOCK    512
#define S_MAX_NAME     4096
#define S_MAX_DEPTH    64

enum {
    S_OPT_KEY      = 1 << 0,
    S_OPT_TYPE     = 1 << 1,
    S_OPT_ARGS     = 1 << 2,
    S_OPT_OUT      = 1 << 3,
    S_OPT_FORCE    = 1 << 4,
    S_OPT_JSON     = 1 << 5
};

static const struct option s_options [] = {
    { "key",             required_argument, NULL, 'k' },
    { "agent",           required_argument, NULL, 'a' },
    { "type",            required_argument, NULL, 't' },
    { "args",            required_argument, NULL, 'A' },
    { "out",             required_argument, NULL, 'o' },
    { "force",           no_argument,       NULL, 'f' },
    { "json",            no_argument,       NULL, 'j' },
    { "policy",          required_argument, NULL, 'p' },
    { "insecure-dev",    no_argument,       NULL, 'I' },
    { "attest-endpoint", required_argument, NULL, 'E' },
    { "timeout",         required_argument, NULL, 'T' },
    { "help",            no_argument,       NULL, 'h' },
    { NULL, 0, NULL, 0 }
};

//  One run of a command
typedef struct {
    const char *name;               //  "algo", "data", "result", "agent status", "attestation get"
    const char *usage;
    unsigned    options;            //  S_OPT_* it takes beyond the common ones
    const char *path;               //  FILE
    const char *key_path;
    const char *agent;
    const char *type;
    const char *args [S_MAX_ARGS];
    size_t      arg_count;
    const char *out;
    bool        force;
    bool        json;
    const char *policy;
    bool        insecure_dev;
    const char *attest_endpoint;
    int         timeout_ms;
    //  Progress bar (stderr is a terminal)
    bool        tty;
    const char *verb;
    int64_t     started;
    int64_t     last_print;
    bool        printed;
} s_cli_t;

static const char s_common [] =
    "options of every command:\n"
    "  --agent ENDPOINT         the agent's participant endpoint, tcp://HOST:PORT\n"
    "  --policy FILE            attestation policy\n"
    "  --insecure-dev           accept an agent without a TEE (platform none; development only)\n"
    "  --attest-endpoint EP     attestation endpoint (default: the port after --agent's)\n"
    "  --timeout SECONDS        each request's budget (default 60)\n"
    "exit codes: 0 done, 1 refused or failed (reason on stderr), 2 usage error\n";

static int
s_usage_error (s_cli_t *cli, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static int
s_usage_error (s_cli_t *cli, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "umbra %s: ", cli->name);
    vfprintf (stderr, format, args);
    va_end (args);
    fprintf (stderr, "\nusage: %s\n", cli->usage);
    return S_EXIT_USAGE;
}

//  Parses argv (argv [0] the command); positional: how many FILE operands
//  (0 or 1). Returns -1 when parsed, or the exit code to return.
static int
s_parse (s_cli_t *cli, int argc, char **argv, int positional)
{
    cli->timeout_ms = UMB_AGENT_CLIENT_TIMEOUT_MS;
    optind = 0;
    opterr = 0;
    int option, index = -1;
    while ((option = getopt_long (argc, argv, ":o:", s_options, &index)) != -1) {
        unsigned needs = 0;
        char name [32];
        snprintf (name, sizeof (name), "%s%s", index >= 0 ? "--" : "-o",
                  index >= 0 ? s_options [index].name : "");
        index = -1;
        switch (option) {
            case 'k': needs = S_OPT_KEY;   cli->key_path = optarg; break;
            case 'a': cli->agent = optarg; break;
            case 't': needs = S_OPT_TYPE;  cli->type = optarg; break;
            case 'A':
                needs = S_OPT_ARGS;
                if (cli->arg_count == S_MAX_ARGS)
                    return s_usage_error (cli, "at most %d --args", S_MAX_ARGS);
                cli->args [cli->arg_count++] = optarg;
                break;
            case 'o': needs = S_OPT_OUT;   cli->out = optarg; break;
            case 'f': needs = S_OPT_FORCE; cli->force = true; break;
            case 'j': needs = S_OPT_JSON;  cli->json = true; break;
            case 'p': cli->policy = optarg; break;
            case 'I': cli->insecure_dev = true; break;
            case 'E': cli->attest_endpoint = optarg; break;
            case 'T': {
                char *end = NULL;
                errno = 0;
                long seconds = strtol (optarg, &end, 10);
                if (errno || !end || *end || seconds < 1 || seconds > 3600)
                    return s_usage_error (cli, "--timeout takes whole seconds, 1..3600");
                cli->timeout_ms = (int) seconds * 1000;
                break;
            }
            case 'h':
                printf ("usage: %s\n\n%s", cli->usage, s_common);
                return S_EXIT_OK;
            case ':':
                return s_usage_error (cli, "%s needs a value", argv [optind - 1]);
            default:
                return s_usage_error (cli, "unknown option '%s'", argv [optind - 1]);
        }
        if (needs && !(cli->options & needs))
            return s_usage_error (cli, "'%s' takes no %s", cli->name, name);
    }
    int operands = argc - optind;
    if (operands != positional)
        return s_usage_error (cli, positional ? "expected one FILE" : "unexpected '%s'",
                              operands ? argv [optind] : "");
    if (positional)
        cli->path = argv [optind];
    if (!cli->agent)
        return s_usage_error (cli, "--agent ENDPOINT is required");
    if ((cli->options & S_OPT_KEY) && !cli->key_path)
        return s_usage_error (cli, "--key KEY is required");
    if (cli->type && strcmp (cli->type, "bin") != 0 && strcmp (cli->type, "python") != 0)
        return s_usage_error (cli, "--type is bin or python");
    cli->tty = isatty (STDERR_FILENO) == 1;
    return -1;
}

//  ---------------------------------------------------------------- progress

static void s_progress_end (s_cli_t *cli);

static void
s_progress (void *arg, const char *phase, uint64_t done, uint64_t total)
{
    s_cli_t *cli = arg;
    if (!cli->tty)
        return;
    if (cli->verb != phase) {
        s_progress_end (cli);
        cli->verb = phase;
    }
    int64_t now = zclock_mono ();
    if (!cli->started)
        cli->started = now;
    if (now - cli->last_print < 100 && done < total)
        return;
    cli->last_print = now;
    double seconds = (double) (now - cli->started) / 1000.0;
    double rate = seconds > 0 ? (double) done / seconds / (1024.0 * 1024.0) : 0;
    int percent = total ? (int) (done * 100 / total) : 100;
    char bar [31];
    int filled = percent * 30 / 100;
    for (int i = 0; i < 30; i++)
        bar [i] = i < filled ? '#' : '.';
    bar [30] = 0;
    fprintf (stderr, "\r%-11s [%s] %3d%% %8.1f MiB/s %10.1f/%.1f MiB", cli->verb, bar, percent, rate,
             (double) done / 1048576.0, (double) total / 1048576.0);
    cli->printed = true;
}

static void
s_progress_end (s_cli_t *cli)
{
    if (cli->printed)
        fputc ('\n', stderr);
    cli->printed = false;
    cli->started = 0;
    cli->last_print = 0;
}

//  ---------------------------------------------------------------- connecting

//  A client attested (connect false) or connected; NULL with the exit code
static umb_agent_client_t *
s_open (s_cli_t *cli, bool connect, int *exit_code)
{
    umb_agent_client_t *client = umb_agent_client_new (cli->agent);
    if (!client) {
        *exit_code = s_usage_error (cli, "--agent takes tcp://HOST:PORT, not '%s'", cli->agent);
        return NULL;
    }
    umb_agent_client_set_attest_endpoint (client, cli->attest_endpoint);
    umb_agent_client_set_policy (client, cli->policy);
    umb_agent_client_set_insecure_dev (client, cli->insecure_dev);
    umb_agent_client_set_timeout (client, cli->timeout_ms);
    umb_agent_client_set_progress (client, s_progress, cli);
    int rc = connect ? umb_agent_client_connect (client) : umb_agent_client_attest (client);
    if (umb_agent_client_insecure (client) && cli->insecure_dev)
        fprintf (stderr, "umbra: WARNING: the agent runs without a TEE (platform none); nothing "
                 "is attested and the operator can see everything (--insecure-dev)\n");
    if (rc) {
        if (rc == -2)
            *exit_code = s_usage_error (cli, "%s", umb_agent_client_reason (client));
        else {
            fprintf (stderr, "umbra %s: %s\n", cli->name, umb_agent_client_reason (client));
            *exit_code = S_EXIT_FAILED;
        }
        umb_agent_client_destroy (&client);
    }
    return client;
}

static EVP_PKEY *
s_load_key (s_cli_t *cli)
{
    char reason [256];
    EVP_PKEY *key = umb_sig_private_load (cli->key_path, reason, sizeof (reason));
    if (!key)
        fprintf (stderr, "umbra %s: %s: %s\n", cli->name, cli->key_path, reason);
    return key;
}

//  ---------------------------------------------------------------- algo, data

//  Warns if the agent's algorithm type or args (when its status shows them)
//  differ from --type/--args
static void
s_compare_algorithm (s_cli_t *cli, umb_agent_client_t *client)
{
    if (!cli->type && !cli->arg_count)
        return;
    umb_msg_t *status = umb_agent_client_status (client);
    if (!status)
        return;
    umb_msg_t *algorithm = umb_msg_map (status, "algorithm", false);
    if (algorithm) {
        const char *type = umb_msg_str (algorithm, "type", 16, false);
        if (cli->type && type && strcmp (type, cli->type) != 0)
            fprintf (stderr, "umbra algo: warning: --type %s, but the manifest says %s (the "
                     "manifest decides)\n", cli->type, type);
        size_t count = 0;
        const char **args = umb_msg_strv (algorithm, "args", S_MAX_ARGS, 4096, &count, false);
        bool differ = args && count != cli->arg_count;
        for (size_t i = 0; args && !differ && i < count; i++)
            differ = strcmp (args [i], cli->args [i]) != 0;
        if (cli->arg_count && differ)
            fprintf (stderr, "umbra algo: warning: --args differ from the manifest's (the "
                     "manifest decides)\n");
    }
    umb_msg_destroy (&status);
}

static int
s_upload (s_cli_t *cli, const char *role)
{
    struct stat st;
    if (stat (cli->path, &st)) {
        fprintf (stderr, "umbra %s: %s: %s\n", cli->name, cli->path, strerror (errno));
        return S_EXIT_FAILED;
    }
    if (!S_ISREG (st.st_mode)) {
        fprintf (stderr, "umbra %s: %s: not a regular file\n", cli->name, cli->path);
        return S_EXIT_FAILED;
    }
    EVP_PKEY *key = s_load_key (cli);
    if (!key)
        return S_EXIT_FAILED;
    int exit_code = S_EXIT_OK;
    umb_agent_client_t *client = s_open (cli, true, &exit_code);
    if (!client) {
        EVP_PKEY_free (key);
        return exit_code;
    }
    if (streq (role, "algorithm"))
        s_compare_algorithm (cli, client);
    int rc = umb_agent_client_upload (client, role, cli->path, key, NULL);
    s_progress_end (cli);
    if (rc) {
        fprintf (stderr, "umbra %s: %s\n", cli->name, umb_agent_client_reason (client));
        exit_code = S_EXIT_FAILED;
    }
    else
        printf ("%s %s uploaded (%" PRIu64 " bytes); agent state %s\n", role, cli->path,
                (uint64_t) st.st_size, umb_agent_client_state (client));
    umb_agent_client_destroy (&client);
    EVP_PKEY_free (key);
    return exit_code;
}

int
umb_cli_agent_algo (int argc, char **argv)
{
    s_cli_t cli = {
        .name = "algo", .options = S_OPT_KEY | S_OPT_TYPE | S_OPT_ARGS,
        .usage = "umbra algo FILE --key KEY --agent ENDPOINT [--type bin|python] [--args ARG]..."
    };
    int rc = s_parse (&cli, argc, argv, 1);
    return rc >= 0 ? rc : s_upload (&cli, "algorithm");
}

int
umb_cli_agent_data (int argc, char **argv)
{
    s_cli_t cli = {
        .name = "data", .options = S_OPT_KEY,
        .usage = "umbra data FILE --key KEY --agent ENDPOINT"
    };
    int rc = s_parse (&cli, argc, argv, 1);
    return rc >= 0 ? rc : s_upload (&cli, "dataset");
}

//  ---------------------------------------------------------------- result

//  Removes dir and everything under it (no links followed)
static void
s_remove_tree (int parent_fd, const char *name)
{
    int fd = openat (parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        unlinkat (parent_fd, name, 0);
        return;
    }
    DIR *dir = fdopendir (fd);
    if (!dir) {
        close (fd);
        return;
    }
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (strcmp (entry->d_name, ".") && strcmp (entry->d_name, ".."))
            s_remove_tree (dirfd (dir), entry->d_name);
    closedir (dir);
    unlinkat (parent_fd, name, AT_REMOVEDIR);
}

int
umb_cli_agent_result (int argc, char **argv)
{
    s_cli_t cli = {
        .name = "result", .options = S_OPT_KEY | S_OPT_OUT | S_OPT_FORCE,
        .usage = "umbra result --key KEY --agent ENDPOINT -o DIR [--force]"
    };
    int rc = s_parse (&cli, argc, argv, 0);
    if (rc >= 0)
        return rc;
    if (!cli.out)
        return s_usage_error (&cli, "-o DIR is required");
    struct stat st;
    if (stat (cli.out, &st) && errno == ENOENT && mkdir (cli.out, 0755) == 0)
        stat (cli.out, &st);
    if (stat (cli.out, &st) || !S_ISDIR (st.st_mode)) {
        fprintf (stderr, "umbra result: %s: not a directory\n", cli.out);
        return S_EXIT_FAILED;
    }
    EVP_PKEY *key = s_load_key (&cli);
    if (!key)
        return S_EXIT_FAILED;
    int exit_code = S_EXIT_OK;
    umb_agent_client_t *client = s_open (&cli, true, &exit_code);
    if (!client) {
        EVP_PKEY_free (key);
        return exit_code;
    }
    char *fetch_dir = NULL;
    if (asprintf (&fetch_dir, "%s/.umbra-fetch-XXXXXX", cli.out) < 0 || !mkdtemp (fetch_dir)) {
        fprintf (stderr, "umbra result: cannot create a directory in %s: %s\n", cli.out,
                 strerror (errno));
        free (fetch_dir);
        umb_agent_client_destroy (&client);
        EVP_PKEY_free (key);
        return S_EXIT_FAILED;
    }
    char *tar_path = NULL;
    if (asprintf (&tar_path, "%s/result.tar", fetch_dir) < 0)
        assert (false);
    rc = umb_agent_client_result (client, key, tar_path);
    s_progress_end (&cli);
    if (rc) {
        fprintf (stderr, "umbra result: %s\n", umb_agent_client_reason (client));
        exit_code = S_EXIT_FAILED;
    }
    else {
        char reason [512];
        if (umb_cli_agent_untar (tar_path, cli.out, cli.force, reason, sizeof (reason))) {
            fprintf (stderr, "umbra result: the result was received but not unpacked: %s\n",
                     reason);
            exit_code = S_EXIT_FAILED;
        }
        else
            printf ("result unpacked into %s; agent state %s\n", cli.out,
                    umb_agent_client_state (client));
    }
    s_remove_tree (AT_FDCWD, fetch_dir);
    free (tar_path);
    free (fetch_dir);
    umb_agent_client_destroy (&client);
    EVP_PKEY_free (key);
    return exit_code;
}

//  ---------------------------------------------------------------- JSON of msgpack

static json_t *
s_to_json (const msgpack_object *object, int depth)
{
    if (depth > UMB_MSG_MAX_DEPTH)
        return json_null ();
    switch (object->type) {
        case MSGPACK_OBJECT_BOOLEAN:
            return json_boolean (object->via.boolean);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            return json_integer ((json_int_t) object->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return json_integer ((json_int_t) object->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            return json_real (object->via.f64);
        case MSGPACK_OBJECT_STR:
            return json_stringn (object->via.str.ptr, object->via.str.size);
        case MSGPACK_OBJECT_BIN: {
            //  bytes as lowercase hex
            size_t size = object->via.bin.size;
            char *hex = malloc (size * 2 + 1);
            assert (hex);
            sodium_bin2hex (hex, size * 2 + 1, (const uint8_t *) object->via.bin.ptr, size);
            json_t *value = json_string (hex);
            free (hex);
            return value;
        }
        case MSGPACK_OBJECT_ARRAY: {
            json_t *array = json_array ();
            for (uint32_t i = 0; i < object->via.array.size; i++)
                json_array_append_new (array, s_to_json (&object->via.array.ptr [i], depth + 1));
            return array;
        }
        case MSGPACK_OBJECT_MAP: {
            json_t *map = json_object ();
            for (uint32_t i = 0; i < object->via.map.size; i++) {
                const msgpack_object *key = &object->via.map.ptr [i].key;
                if (key->type != MSGPACK_OBJECT_STR)
                    continue;
                char *name = strndup (key->via.str.ptr, key->via.str.size);
                json_object_set_new (map, name, s_to_json (&object->via.map.ptr [i].val, depth + 1));
                free (name);
            }
            return map;
        }
        default:
            return json_null ();
    }
}

//  ---------------------------------------------------------------- agent status

static int
s_status (s_cli_t *cli)
{
    int exit_code = S_EXIT_OK;
    umb_agent_client_t *client = s_open (cli, true, &exit_code);
    if (!client)
        return exit_code;
    umb_msg_t *status = umb_agent_client_status (client);
    if (!status) {
        fprintf (stderr, "umbra agent status: %s\n", umb_agent_client_reason (client));
        umb_agent_client_destroy (&client);
        return S_EXIT_FAILED;
    }
    if (cli->json) {
        json_t *json = s_to_json (umb_msg_object (status), 0);
        json_dumpf (json, stdout, JSON_INDENT (2) | JSON_SORT_KEYS);
        putchar ('\n');
        json_decref (json);
    }
    else {
        const char *state = umb_msg_str (status, "state", 64, false);
        const char *reason = umb_msg_str (status, "reason", 4096, false);
        printf ("state        %s\n", state ? state : "?");
        if (reason && *reason)
            printf ("reason       %s\n", reason);
        printf ("computation  %s\n", umb_agent_client_computation (client)
                                     ? umb_agent_client_computation (client) : "-");
        umb_msg_t *algorithm = umb_msg_map (status, "algorithm", false);
        if (algorithm)
            printf ("algorithm    %s %s\n", umb_msg_str (algorithm, "hash", 64, false) ?: "-",
                    umb_msg_bool (algorithm, "received", false, false) ? "received" : "waiting");
        umb_msg_t *datasets = umb_msg_array (status, "datasets", 100000, false);
        for (size_t i = 0; datasets && i < umb_msg_size (datasets); i++) {
            umb_msg_t *dataset = umb_msg_at (datasets, i);
            printf ("dataset      %s %s%s%s\n", umb_msg_str (dataset, "hash", 64, false) ?: "-",
                    umb_msg_bool (dataset, "received", false, false) ? "received" : "waiting",
                    umb_msg_str (dataset, "filename", 255, false) ? " " : "",
                    umb_msg_str (dataset, "filename", 255, false) ?: "");
        }
        umb_msg_t *consumers = umb_msg_array (status, "consumers", 100000, false);
        size_t fetched = 0;
        for (size_t i = 0; consumers && i < umb_msg_size (consumers); i++)
            if (umb_msg_bool (umb_msg_at (consumers, i), "fetched", false, false))
                fetched++;
        if (consumers)
            printf ("consumers    %zu of %zu fetched\n", fetched, umb_msg_size (consumers));
        printf ("events       %" PRId64 "\n", umb_msg_int (status, "events", 0, INT64_MAX, 0, false));
    }
    umb_msg_destroy (&status);
    umb_agent_client_destroy (&client);
    return S_EXIT_OK;
}

int
umb_cli_agent (int argc, char **argv)
{
    if (argc < 2 || strcmp (argv [1], "status") != 0) {
        fprintf (stderr, "usage: umbra agent status --agent ENDPOINT [--json]\n\n%s", s_common);
        return argc >= 2 && (streq (argv [1], "help") || streq (argv [1], "--help"))
               ? S_EXIT_OK : S_EXIT_USAGE;
    }
    s_cli_t cli = {
        .name = "agent status", .options = S_OPT_JSON,
        .usage = "umbra agent status --agent ENDPOINT [--json]"
    };
    int rc = s_parse (&cli, argc - 1, argv + 1, 0);
    return rc >= 0 ? rc : s_status (&cli);
}

//  ---------------------------------------------------------------- attestation get

int
umb_cli_agent_attestation_get (int argc, char **argv)
{
    s_cli_t cli = {
        .name = "attestation get", .options = S_OPT_OUT | S_OPT_JSON,
        .usage = "umbra attestation get --agent ENDPOINT [--out FILE] [--json] [--policy FILE] "
                 "[--insecure-dev]"
    };
    int rc = s_parse (&cli, argc, argv, 0);
    if (rc >= 0)
        return rc;
    int exit_code = S_EXIT_OK;
    umb_agent_client_t *client = s_open (&cli, false, &exit_code);
    if (!client)
        return exit_code;
    size_t evidence_size = 0, certs_size = 0, nonce_size = 0;
    const uint8_t *evidence = umb_agent_client_evidence (client, &evidence_size);
    const char *certs = umb_agent_client_certs (client, &certs_size);
    const uint8_t *nonce = umb_agent_client_nonce (client, &nonce_size);
    char *text = NULL;
    size_t text_size = 0;
    if (cli.json) {
        char nonce_hex [2 * 64 + 1], report_data_hex [129];
        sodium_bin2hex (nonce_hex, sizeof (nonce_hex), nonce, nonce_size);
        sodium_bin2hex (report_data_hex, sizeof (report_data_hex),
                        umb_agent_client_report_data (client), 64);
        size_t b64_size = sodium_base64_encoded_len (evidence_size, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc (b64_size);
        assert (b64);
        sodium_bin2base64 (b64, b64_size, evidence, evidence_size, sodium_base64_VARIANT_ORIGINAL);
        json_t *json = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s%, s:b, s:b}",
                                  "platform", umb_agent_client_platform (client),
                                  "agent_key", umb_agent_client_agent_key (client),
                                  "nonce", nonce_hex,
                                  "report_data", report_data_hex,
                                  "evidence", b64,
                                  "certs", certs, certs_size,
                                  "insecure", umb_agent_client_insecure (client),
                                  "verified", 1);
        free (b64);
        assert (json);
        text = json_dumps (json, JSON_INDENT (2) | JSON_SORT_KEYS);
        json_decref (json);
        text_size = strlen (text);
    }
    if (cli.out) {
        const void *data = cli.json ? text : (const void *) evidence;
        size_t size = cli.json ? text_size : evidence_size;
        FILE *file = fopen (cli.out, "wbx");
        if (!file || (size && fwrite (data, 1, size, file) != size) || (cli.json && fputc ('\n', file) == EOF)
        ||  fclose (file)) {
            fprintf (stderr, "umbra attestation get: %s: %s\n", cli.out,
                     errno == EEXIST ? "exists already" : strerror (errno));
            exit_code = S_EXIT_FAILED;
        }
    }
    else
    if (cli.json)
        printf ("%s\n", text);
    //  The certificates beside raw evidence, so `attestation verify` can check it again later
    char *certs_path = NULL;
    if (exit_code == S_EXIT_OK && cli.out && !cli.json && certs_size) {
        if (asprintf (&certs_path, "%s.certs", cli.out) < 0)
            assert (false);
        FILE *file = fopen (certs_path, "wbx");
        if (!file || fwrite (certs, 1, certs_size, file) != certs_size || fclose (file)) {
            fprintf (stderr, "umbra attestation get: %s: %s\n", certs_path,
                     errno == EEXIST ? "exists already" : strerror (errno));
            exit_code = S_EXIT_FAILED;
        }
    }
    if (exit_code == S_EXIT_OK && !cli.json) {
        char nonce_hex [2 * 64 + 1];
        sodium_bin2hex (nonce_hex, sizeof (nonce_hex), nonce, nonce_size);
        printf ("platform   %s%s\nagent key  %s\nnonce      %s\nevidence   %zu bytes%s%s\n",
                umb_agent_client_platform (client),
                umb_agent_client_insecure (client) ? " (insecure: no TEE)" : "",
                umb_agent_client_agent_key (client), nonce_hex, evidence_size,
                cli.out ? ", written to " : "", cli.out ? cli.out : "");
        if (cli.out && umb_agent_client_insecure (client))
            printf ("check again with: umbra attestation verify --platform none --evidence %s "
                    "--insecure-dev (nothing binds a none agent's key)\n", cli.out);
        else
        if (cli.out)
            printf ("check again with: umbra attestation verify --platform %s --evidence %s%s%s "
                    "--nonce %s --agent-key '%s'%s%s%s\n", umb_agent_client_platform (client),
                    cli.out, certs_path ? " --certs " : "", certs_path ? certs_path : "",
                    nonce_hex, umb_agent_client_agent_key (client),
                    cli.policy ? " --policy " : "", cli.policy ? cli.policy : "",
                    umb_agent_client_insecure (client) ? " --insecure-dev" : "");
    }
    free (certs_path);
    const char *warnings = umb_agent_client_warnings (client);
    if (exit_code == S_EXIT_OK && *warnings)
        fprintf (stderr, "umbra: warning: %s%s", warnings,
                 warnings [strlen (warnings) - 1] == '\n' ? "" : "\n");
    if (exit_code == S_EXIT_OK)
        fprintf (stderr, "umbra: attestation verified: platform %s, agent key %s\n",
                 umb_agent_client_platform (client), umb_agent_client_agent_key (client));
    free (text);
    umb_agent_client_destroy (&client);
    return exit_code;
}

//  ---------------------------------------------------------------- safe ustar extraction

//  Reads exactly size bytes; 0, or -1 (error or end of file)
static int
s_read_full (int fd, void *buffer, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t rc = read (fd, (uint8_t *) buffer + done, size - done);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        done += (size_t) rc;
    }
    return 0;
}

//  An octal field; -1 if malformed (base-256 is refused)
static int64_t
s_octal (const char *field, size_t size)
{
    int64_t value = 0;
    size_t i = 0;
    while (i < size && field [i] == ' ')
        i++;
    bool digits = false;
    for (; i < size && field [i] >= '0' && field [i] <= '7'; i++) {
        if (value > (INT64_MAX >> 3))
            return -1;
        value = value * 8 + (field [i] - '0');
        digits = true;
    }
    for (; i < size; i++)
        if (field [i] != ' ' && field [i] != 0)
            return -1;
    return digits ? value : (size ? 0 : -1);
}

//  Normalizes an archive name in place: drops "." components and leading
//  "/"-less "./"; refuses absolute names, "..", empty names. Returns the
//  depth (components), 0 for the root itself, -1 when refused.
static int
s_clean_name (char *name, char *reason, size_t reason_size)
{
    if (name [0] == '/') {
        snprintf (reason, reason_size, "'%s' is an absolute name", name);
        return -1;
    }
    char out [S_MAX_NAME];
    size_t length = 0;
    int depth = 0;
    char *save = NULL;
    char copy [S_MAX_NAME];
    snprintf (copy, sizeof (copy), "%s", name);
    for (char *part = strtok_r (copy, "/", &save); part; part = strtok_r (NULL, "/", &save)) {
        if (streq (part, "."))
            continue;
        if (streq (part, "..")) {
            snprintf (reason, reason_size, "'%s' climbs out with '..'", name);
            return -1;
        }
        if (++depth > S_MAX_DEPTH) {
            snprintf (reason, reason_size, "'%s' is nested too deep", name);
            return -1;
        }
        length += (size_t) snprintf (out + length, sizeof (out) - length, "%s%s",
                                     length ? "/" : "", part);
    }
    out [length] = 0;
    strcpy (name, out);
    return depth;
}

//  Opens the directory path (relative to root_fd) walking one component at a
//  time, never through a link; creates missing ones when create. -1 on failure.
static int
s_open_dir (int root_fd, const char *path, bool create)
{
    int fd = dup (root_fd);
    char copy [S_MAX_NAME];
    snprintf (copy, sizeof (copy), "%s", path);
    char *save = NULL;
    for (char *part = strtok_r (copy, "/", &save); part && fd >= 0;
         part = strtok_r (NULL, "/", &save)) {
        int next = openat (fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && create) {
            if (mkdirat (fd, part, 0755) == 0 || errno == EEXIST)
                next = openat (fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        close (fd);
        fd = next;
    }
    return fd;
}

//  Splits path into its parent directory (written to parent) and last name
static const char *
s_split (const char *path, char *parent, size_t parent_size)
{
    const char *slash = strrchr (path, '/');
    if (!slash) {
        snprintf (parent, parent_size, "%s", "");
        return path;
    }
    snprintf (parent, parent_size, "%.*s", (int) (slash - path), path);
    return slash + 1;
}

//  A symlink target is allowed if it is relative, of the form (../)*names
//  with no ".." after a name, and its leading ".." stay within the tree
//  (depth is the link's own depth, its directory's depth + 1).
static bool
s_link_inside (const char *target, int depth)
{
    if (!*target || target [0] == '/')
        return false;
    char copy [S_MAX_NAME];
    snprintf (copy, sizeof (copy), "%s", target);
    int up = 0;
    bool named = false;
    char *save = NULL;
    for (char *part = strtok_r (copy, "/", &save); part; part = strtok_r (NULL, "/", &save)) {
        if (streq (part, "."))
            continue;
        if (streq (part, "..")) {
            if (named)
                return false;
            up++;
        }
        else
            named = true;
    }
    return up <= depth - 1;
}

//  Parses pax records "LEN key=value\n" for path, linkpath and size
static int
s_pax (const char *data, size_t size, char *path, char *linkpath, int64_t *pax_size)
{
    size_t at = 0;
    while (at < size) {
        char *end = NULL;
        unsigned long length = strtoul (data + at, &end, 10);
        if (!end || *end != ' ' || length < 5 || length > size - at)
            return -1;
        const char *record = end + 1;
        const char *stop = data + at + length - 1;          //  the '\n'
        if (*stop != '\n' || record > stop)
            return -1;
        const char *equals = memchr (record, '=', (size_t) (stop - record));
        if (!equals)
            return -1;
        size_t key_length = (size_t) (equals - record);
        size_t value_length = (size_t) (stop - equals - 1);
        const char *value = equals + 1;
        if (value_length >= S_MAX_NAME)
            return -1;
        if (key_length == 4 && memcmp (record, "path", 4) == 0) {
            memcpy (path, value, value_length);
            path [value_length] = 0;
            if (strlen (path) != value_length)
                return -1;
        }
        else
        if (key_length == 8 && memcmp (record, "linkpath", 8) == 0) {
            memcpy (linkpath, value, value_length);
            linkpath [value_length] = 0;
            if (strlen (linkpath) != value_length)
                return -1;
        }
        else
        if (key_length == 4 && memcmp (record, "size", 4) == 0) {
            char number [32];
            if (value_length == 0 || value_length >= sizeof (number))
                return -1;
            memcpy (number, value, value_length);
            number [value_length] = 0;
            char *stop_number = NULL;
            long long parsed = strtoll (number, &stop_number, 10);
            if (*stop_number || parsed < 0)
                return -1;
            *pax_size = parsed;
        }
        at += length;
    }
    return 0;
}

//  Copies size bytes from the archive into out_fd (-1: skips them), then
//  skips the padding to the next block
static int
s_copy_data (int tar_fd, int out_fd, int64_t size)
{
    static const size_t s_buffer_size = 64 * 1024;
    uint8_t *buffer = malloc (s_buffer_size);
    assert (buffer);
    int64_t left = size;
    int rc = 0;
    while (left > 0 && rc == 0) {
        size_t piece = left > (int64_t) s_buffer_size ? s_buffer_size : (size_t) left;
        if (s_read_full (tar_fd, buffer, piece))
            rc = -1;
        else
        if (out_fd >= 0) {
            size_t written = 0;
            while (written < piece && rc == 0) {
                ssize_t w = write (out_fd, buffer + written, piece - written);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    rc = -1;
                else
                    written += (size_t) w;
            }
        }
        left -= (int64_t) piece;
    }
    size_t padding = (size_t) ((S_TAR_BLOCK - size % S_TAR_BLOCK) % S_TAR_BLOCK);
    if (rc == 0 && padding && s_read_full (tar_fd, buffer, padding))
        rc = -1;
    free (buffer);
    return rc;
}

//  Reads size bytes of an extension header's data (pax, GNU long name)
static char *
s_read_extension (int tar_fd, int64_t size)
{
    if (size < 0 || size > 1024 * 1024)
        return NULL;
    size_t padded = (size_t) ((size + S_TAR_BLOCK - 1) / S_TAR_BLOCK * S_TAR_BLOCK);
    char *data = malloc (padded + 1);
    assert (data);
    if (padded && s_read_full (tar_fd, data, padded)) {
        free (data);
        return NULL;
    }
    data [size] = 0;
    return data;
}

//  Extracts the archive into root_fd (an empty directory). 0, or -1 and why.
static int
s_extract (int tar_fd, int root_fd, char *reason, size_t reason_size)
{
    uint8_t block [S_TAR_BLOCK];
    char long_name [S_MAX_NAME] = "", long_link [S_MAX_NAME] = "";
    int64_t pax_size = -1;
    size_t entries = 0;
    while (true) {
        if (s_read_full (tar_fd, block, sizeof (block))) {
            snprintf (reason, reason_size, "the archive is truncated");
            return -1;
        }
        bool zero = true;
        for (size_t i = 0; i < sizeof (block) && zero; i++)
            zero = block [i] == 0;
        if (zero)
            break;                  //  end of archive
        //  Checksum: the header's bytes with the checksum field as spaces
        int64_t stored = s_octal ((const char *) block + 148, 8);
        int64_t sum = 0;
        for (size_t i = 0; i < sizeof (block); i++)
            sum += (i >= 148 && i < 156) ? ' ' : block [i];
        if (stored < 0 || stored != sum) {
            snprintf (reason, reason_size, "the archive has a corrupt header (entry %zu)",
                      entries + 1);
            return -1;
        }
        if (memcmp (block + 257, "ustar", 5) != 0) {
            snprintf (reason, reason_size, "the archive is not a ustar archive");
            return -1;
        }
        entries++;
        char type = (char) block [156];
        int64_t size = s_octal ((const char *) block + 124, 12);
        if (size < 0) {
            snprintf (reason, reason_size, "entry %zu has a malformed size", entries);
            return -1;
        }
        if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
            char *data = s_read_extension (tar_fd, size);
            if (!data) {
                snprintf (reason, reason_size, "entry %zu: a malformed extension header", entries);
                return -1;
            }
            int rc = 0;
            if (type == 'x')
                rc = s_pax (data, (size_t) size, long_name, long_link, &pax_size);
            else
            if (type == 'L' || type == 'K') {
                if (strlen (data) >= S_MAX_NAME)
                    rc = -1;
                else
                    strcpy (type == 'L' ? long_name : long_link, data);
            }
            free (data);
            if (rc) {
                snprintf (reason, reason_size, "entry %zu: a malformed extension header", entries);
                return -1;
            }
            continue;
        }
        if (pax_size >= 0)
            size = pax_size;
        //  The name: pax/GNU long name, else prefix/name
        char name [S_MAX_NAME];
        if (long_name [0])
            snprintf (name, sizeof (name), "%s", long_name);
        else {
            char short_name [101], prefix [156];
            memcpy (short_name, block, 100);
            short_name [100] = 0;
            memcpy (prefix, block + 345, 155);
            prefix [155] = 0;
            bool posix = memcmp (block + 257, "ustar\0", 6) == 0;
            if (posix && prefix [0])
                snprintf (name, sizeof (name), "%s/%s", prefix, short_name);
            else
                snprintf (name, sizeof (name), "%s", short_name);
        }
        char link [S_MAX_NAME];
        if (long_link [0])
            snprintf (link, sizeof (link), "%s", long_link);
        else {
            memcpy (link, block + 157, 100);
            link [100] = 0;
        }
        long_name [0] = long_link [0] = 0;
        pax_size = -1;
        char shown [S_MAX_NAME];
        snprintf (shown, sizeof (shown), "%s", name);
        int depth = s_clean_name (name, reason, reason_size);
        if (depth < 0)
            return -1;
        int64_t mode = s_octal ((const char *) block + 100, 8);
        char parent [S_MAX_NAME];
        const char *base = s_split (name, parent, sizeof (parent));
        if (type == '5') {
            if (depth > 0) {
                int fd = s_open_dir (root_fd, name, true);
                if (fd < 0) {
                    snprintf (reason, reason_size, "'%s': cannot make the directory (%s)", shown,
                              strerror (errno));
                    return -1;
                }
                close (fd);
            }
            if (s_copy_data (tar_fd, -1, size)) {
                snprintf (reason, reason_size, "the archive is truncated");
                return -1;
            }
            continue;
        }
        if (depth == 0) {
            snprintf (reason, reason_size, "entry %zu has an empty name", entries);
            return -1;
        }
        int parent_fd = s_open_dir (root_fd, parent, true);
        if (parent_fd < 0) {
            snprintf (reason, reason_size, "'%s' goes through a link or a file", shown);
            return -1;
        }
        int rc = 0;
        if (type == '0' || type == '\0' || type == '7') {
            int fd = openat (parent_fd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                             (mode >= 0 && (mode & 0111)) ? 0755 : 0644);
            if (fd < 0) {
                snprintf (reason, reason_size, "'%s': %s", shown,
                          errno == EEXIST ? "appears twice in the archive" : strerror (errno));
                rc = -1;
            }
            else {
                if (s_copy_data (tar_fd, fd, size)) {
                    snprintf (reason, reason_size, "'%s': the archive is truncated, or writing "
                              "failed", shown);
                    rc = -1;
                }
                close (fd);
            }
        }
        else
        if (type == '2') {
            if (!s_link_inside (link, depth)) {
                snprintf (reason, reason_size, "'%s' is a link to '%s', outside the result",
                          shown, link);
                rc = -1;
            }
            else
            if (symlinkat (link, parent_fd, base)) {
                snprintf (reason, reason_size, "'%s': %s", shown, strerror (errno));
                rc = -1;
            }
            else
            if (s_copy_data (tar_fd, -1, size))
                rc = -1;
        }
        else {
            snprintf (reason, reason_size, "'%s' is a %s, which a result may not hold", shown,
                      type == '1' ? "hard link" : type == '3' ? "character device"
                      : type == '4' ? "block device" : type == '6' ? "FIFO" : "special entry");
            rc = -1;
        }
        close (parent_fd);
        if (rc)
            return -1;
    }
    return 0;
}

//  The tree's entries, relative paths, collected depth-first (directories
//  before their contents)
typedef struct {
    char  **paths;
    bool   *dirs;
    size_t  count;
    size_t  capacity;
} s_list_t;

static void
s_list_add (s_list_t *list, const char *path, bool dir)
{
    if (list->count == list->capacity) {
        list->capacity = list->capacity ? list->capacity * 2 : 64;
        list->paths = realloc (list->paths, list->capacity * sizeof (char *));
        list->dirs = realloc (list->dirs, list->capacity * sizeof (bool));
        assert (list->paths && list->dirs);
    }
    list->paths [list->count] = strdup (path);
    list->dirs [list->count++] = dir;
}

static void
s_list_free (s_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free (list->paths [i]);
    free (list->paths);
    free (list->dirs);
}

static int
s_list_tree (int dir_fd, const char *prefix, s_list_t *list, int depth)
{
    if (depth > S_MAX_DEPTH)
        return -1;
    int fd = dup (dir_fd);
    DIR *dir = fd >= 0 ? fdopendir (fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close (fd);
        return -1;
    }
    rewinddir (dir);
    struct dirent *entry;
    int rc = 0;
    while (rc == 0 && (entry = readdir (dir))) {
        if (streq (entry->d_name, ".") || streq (entry->d_name, ".."))
            continue;
        char path [S_MAX_NAME];
        snprintf (path, sizeof (path), "%s%s%s", prefix, *prefix ? "/" : "", entry->d_name);
        struct stat st;
        if (fstatat (dir_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
            rc = -1;
            break;
        }
        s_list_add (list, path, S_ISDIR (st.st_mode));
        if (S_ISDIR (st.st_mode)) {
            int sub = openat (dir_fd, entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc = sub < 0 ? -1 : s_list_tree (sub, path, list, depth + 1);
            if (sub >= 0)
                close (sub);
        }
    }
    closedir (dir);
    return rc;
}

//  Moves the tree under src_fd into dst_fd: checks every name first
static int
s_move_tree (int src_fd, int dst_fd, bool force, char *reason, size_t reason_size)
{
    s_list_t list = { 0 };
    if (s_list_tree (src_fd, "", &list, 0)) {
        snprintf (reason, reason_size, "cannot read the unpacked result");
        s_list_free (&list);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < list.count && rc == 0; i++) {
        char parent [S_MAX_NAME];
        const char *base = s_split (list.paths [i], parent, sizeof (parent));
        int parent_fd = s_open_dir (dst_fd, parent, false);
        if (parent_fd < 0) {
            if (errno == ENOENT)
                continue;           //  made when moving
            snprintf (reason, reason_size, "%s: %s in the output directory is not a "
                      "directory", list.paths [i], parent);
            rc = -1;
            break;
        }
        struct stat st;
        if (fstatat (parent_fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            bool is_dir = S_ISDIR (st.st_mode);
            if (list.dirs [i] != is_dir || (!is_dir && !force)) {
                snprintf (reason, reason_size, "%s exists already in the output directory%s",
                          list.paths [i], list.dirs [i] != is_dir ? " (and is not the same kind)"
                          : "; --force replaces it");
                rc = -1;
            }
        }
        close (parent_fd);
    }
    for (size_t i = 0; i < list.count && rc == 0; i++) {
        char parent [S_MAX_NAME];
        const char *base = s_split (list.paths [i], parent, sizeof (parent));
        if (list.dirs [i]) {
            int fd = s_open_dir (dst_fd, list.paths [i], true);
            if (fd < 0) {
                snprintf (reason, reason_size, "%s: cannot make the directory (%s)",
                          list.paths [i], strerror (errno));
                rc = -1;
            }
            else
                close (fd);
            continue;
        }
        int from_fd = s_open_dir (src_fd, parent, false);
        int to_fd = s_open_dir (dst_fd, parent, true);
        if (from_fd < 0 || to_fd < 0 || renameat (from_fd, base, to_fd, base)) {
            snprintf (reason, reason_size, "%s: cannot move it into place (%s)", list.paths [i],
                      strerror (errno));
            rc = -1;
        }
        if (from_fd >= 0)
            close (from_fd);
        if (to_fd >= 0)
            close (to_fd);
    }
    s_list_free (&list);
    return rc;
}

int
umb_cli_agent_untar (const char *tar_path, const char *dir, bool force, char *reason,
                     size_t reason_size)
{
    assert (tar_path && dir && reason);
    int tar_fd = open (tar_path, O_RDONLY | O_CLOEXEC);
    if (tar_fd < 0) {
        snprintf (reason, reason_size, "%s: %s", tar_path, strerror (errno));
        return -1;
    }
    int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        snprintf (reason, reason_size, "%s: %s", dir, strerror (errno));
        close (tar_fd);
        return -1;
    }
    char staging [64];
    int rc = -1;
    for (int attempt = 0; attempt < 100; attempt++) {
        uint32_t random = randombytes_random ();
        snprintf (staging, sizeof (staging), ".umbra-unpack-%08x", random);
        if (mkdirat (dir_fd, staging, 0700) == 0) {
            rc = 0;
            break;
        }
        if (errno != EEXIST)
            break;
    }
    if (rc) {
        snprintf (reason, reason_size, "cannot make a directory in %s: %s", dir, strerror (errno));
        close (tar_fd);
        close (dir_fd);
        return -1;
    }
    int staging_fd = openat (dir_fd, staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    assert (staging_fd >= 0);
    rc = s_extract (tar_fd, staging_fd, reason, reason_size);
    if (rc == 0) {
        //  A single top-level results/ directory is the results themselves
        int source_fd = dup (staging_fd);
        s_list_t top = { 0 };
        DIR *listing = fdopendir (dup (staging_fd));
        if (listing) {
            struct dirent *entry;
            while ((entry = readdir (listing)))
                if (strcmp (entry->d_name, ".") && strcmp (entry->d_name, ".."))
                    s_list_add (&top, entry->d_name, entry->d_type == DT_DIR);
            closedir (listing);
        }
        if (top.count == 1 && top.dirs [0] && streq (top.paths [0], "results")) {
            close (source_fd);
            source_fd = openat (staging_fd, "results", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        s_list_free (&top);
        rc = source_fd < 0 ? -1 : s_move_tree (source_fd, dir_fd, force, reason, reason_size);
        if (source_fd >= 0)
            close (source_fd);
    }
    close (staging_fd);
    s_remove_tree (dir_fd, staging);
    close (dir_fd);
    close (tar_fd);
    return rc;
}

//  ---------------------------------------------------------------- selftest

//  Appends one ustar header (and data) to a buffer
static void
s_tar_entry (zchunk_t *tar, const char *name, char type, const char *link, const char *data)
{
    uint8_t header [S_TAR_BLOCK] = { 0 };
    size_t size = data ? strlen (data) : 0;
    snprintf ((char *) header, 100, "%s", name);
    snprintf ((char *) header + 100, 8, "%07o", type == '5' ? 0755 : 0644);
    snprintf ((char *) header + 108, 8, "%07o", 0);
    snprintf ((char *) header + 116, 8, "%07o", 0);
    snprintf ((char *) header + 124, 12, "%011o", (unsigned) (size & 07777777));
    snprintf ((char *) header + 136, 12, "%011o", 0);
    header [156] = (uint8_t) type;
    if (link)
        snprintf ((char *) header + 157, 100, "%s", link);
    memcpy (header + 257, "ustar\0" "00", 8);
    memset (header + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < S_TAR_BLOCK; i++)
        sum += header [i];
    snprintf ((char *) header + 148, 8, "%06o", sum);
    zchunk_extend (tar, header, S_TAR_BLOCK);
    if (size) {
        zchunk_extend (tar, data, size);
        uint8_t zeros [S_TAR_BLOCK] = { 0 };
        if (size % S_TAR_BLOCK)
            zchunk_extend (tar, zeros, S_TAR_BLOCK - size % S_TAR_BLOCK);
    }
}

static void
s_tar_write (zchunk_t *tar, const char *path)
{
    uint8_t zeros [2 * S_TAR_BLOCK] = { 0 };
    zchunk_extend (tar, zeros, sizeof (zeros));
    FILE *file = fopen (path, "wb");
    assert (file);
    assert (fwrite (zchunk_data (tar), 1, zchunk_size (tar), file) == zchunk_size (tar));
    fclose (file);
}

//  Expects the archive to be refused with a reason holding part, and the
//  output directory to stay empty
static void
s_expect_refusal (const char *tar_path, const char *dir, zchunk_t *tar, const char *part)
{
    s_tar_write (tar, tar_path);
    char reason [512] = "";
    int rc = umb_cli_agent_untar (tar_path, dir, false, reason, sizeof (reason));
    if (rc != -1 || !strstr (reason, part)) {
        printf ("expected a refusal with '%s', got rc %d '%s'\n", part, rc, reason);
        assert (false);
    }
    DIR *listing = opendir (dir);
    assert (listing);
    struct dirent *entry;
    while ((entry = readdir (listing)))
        assert (streq (entry->d_name, ".") || streq (entry->d_name, ".."));
    closedir (listing);
    zchunk_destroy (&tar);
}

static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *text = calloc (1, 4096);
    assert (text);
    size_t n = fread (text, 1, 4095, file);
    (void) n;
    fclose (file);
    return text;
}

void
umb_cli_agent_test (bool verbose)
{
    if (verbose)
        printf (" * umb_cli_agent: ");
    char base [] = "/tmp/umb-cli-agent-XXXXXX";
    assert (mkdtemp (base));
    char tar_path [256], out [256], path [1024];
    snprintf (tar_path, sizeof (tar_path), "%s/r.tar", base);
    snprintf (out, sizeof (out), "%s/out", base);
    assert (mkdir (out, 0755) == 0);

    //  Names and links
    char name [S_MAX_NAME], reason [256];
    strcpy (name, "./a/./b");
    assert (s_clean_name (name, reason, sizeof (reason)) == 2 && streq (name, "a/b"));
    strcpy (name, "a/../../b");
    assert (s_clean_name (name, reason, sizeof (reason)) == -1);
    strcpy (name, "/etc/passwd");
    assert (s_clean_name (name, reason, sizeof (reason)) == -1);
    strcpy (name, "./");
    assert (s_clean_name (name, reason, sizeof (reason)) == 0);
    assert (s_link_inside ("x", 1));
    assert (s_link_inside ("sub/x", 1));
    assert (s_link_inside ("../x", 2));
    assert (!s_link_inside ("../x", 1));
    assert (!s_link_inside ("../../x", 2));
    assert (!s_link_inside ("/etc/passwd", 3));
    assert (!s_link_inside ("a/../../x", 3));        //  ".." after a name could cross a link
    assert (!s_link_inside ("", 1));

    //  Refusals: nothing lands in the output directory
    zchunk_t *tar = zchunk_new (NULL, 0);
    s_tar_entry (tar, "/etc/evil", '0', NULL, "x");
    s_expect_refusal (tar_path, out, tar, "absolute");
    tar = zchunk_new (NULL, 0);
    s_tar_entry (tar, "results/ok.txt", '0', NULL, "fine");
    s_tar_entry (tar, "results/../../evil", '0', NULL, "x");
    s_expect_refusal (tar_path, out, tar, "'..'");
    tar = zchunk_new (NULL, 0);
    s_tar_entry (tar, "results/link", '2', "../../etc", NULL);
    s_expect_refusal (tar_path, out, tar, "outside the result");
    tar = zchunk_new (NULL, 0);
    s_tar_entry (tar, "results/abs", '2', "/etc/passwd", NULL);
    s_expect_refusal (tar_path, out, tar, "outside the result");
    tar = zchunk_new (NULL, 0);
    //  A link inside, then a file written through it: refused
    s_tar_entry (tar, "results/sub", '5', NULL, NULL);
    s_tar_entry (tar, "results/l", '2', "sub", NULL);
    s_tar_entry (tar, "results/l/x", '0', NULL, "x");
    s_expect_refusal (tar_path, out, tar, "goes through a link");
    tar = zchunk_new (NULL, 0);
    s_tar_entry (tar, "results/hard", '1', "results/ok", NULL);
    s_expect_refusal (tar_path, out, tar, "hard link");
    tar = zchunk_new (NULL, 0);
    s_tar_entry (tar, "results/dev", '3', NULL, NULL);
    s_expect_refusal (tar_path, out, tar, "character device");
    tar = zchunk_new (NULL, 0);
    s_tar_entry (tar, "results/fifo", '6', NULL, NULL);
    s_expect_refusal (tar_path, out, tar, "FIFO");
    tar = zchunk_new (NULL, 0);
    s_tar_entry (tar, "results/a", '0', NULL, "1");
    s_tar_entry (tar, "results/a", '0', NULL, "2");
    s_expect_refusal (tar_path, out, tar, "twice");
    //  A corrupt checksum, and a truncated archive
    tar = zchunk_new (NULL, 0);
    s_tar_entry (tar, "results/a", '0', NULL, "1");
    zchunk_data (tar) [0] ^= 1;
    s_expect_refusal (tar_path, out, tar, "corrupt header");
    tar = zchunk_new (NULL, 0);
    s_tar_entry (tar, "results/a", '0', NULL, "1");
    FILE *file = fopen (tar_path, "wb");
    assert (fwrite (zchunk_data (tar), 1, 600, file) == 600);
    fclose (file);
    assert (umb_cli_agent_untar (tar_path, out, false, reason, sizeof (reason)) == -1);
    assert (strstr (reason, "truncated"));
    zchunk_destroy (&tar);

    //  A good archive: results/ stripped, a link inside kept
    tar = zchunk_new (NULL, 0);
    s_tar_entry (tar, "results/", '5', NULL, NULL);
    s_tar_entry (tar, "results/model.json", '0', NULL, "{\"slope\": 2}\n");
    s_tar_entry (tar, "results/sub/", '5', NULL, NULL);
    s_tar_entry (tar, "results/sub/deep.txt", '0', NULL, "deep");
    s_tar_entry (tar, "results/sub/up", '2', "../model.json", NULL);
    s_tar_write (tar, tar_path);
    zchunk_destroy (&tar);
    assert (umb_cli_agent_untar (tar_path, out, false, reason, sizeof (reason)) == 0);
    snprintf (path, sizeof (path), "%s/model.json", out);
    char *text = s_slurp (path);
    assert (text && streq (text, "{\"slope\": 2}\n"));
    free (text);
    snprintf (path, sizeof (path), "%s/sub/up", out);
    text = s_slurp (path);
    assert (text && streq (text, "{\"slope\": 2}\n"));
    free (text);
    //  Again: refused (the files exist), unchanged; with force, replaced
    assert (umb_cli_agent_untar (tar_path, out, false, reason, sizeof (reason)) == -1);
    assert (strstr (reason, "exists already"));
    assert (umb_cli_agent_untar (tar_path, out, true, reason, sizeof (reason)) == 0);
    //  No staging directory is left behind
    DIR *listing = opendir (out);
    struct dirent *entry;
    size_t count = 0;
    while ((entry = readdir (listing))) {
        assert (strncmp (entry->d_name, ".umbra", 6) != 0);
        count++;
    }
    closedir (listing);
    assert (count == 4);            //  ., .., model.json, sub

    //  An archive GNU tar writes (ustar and pax), with a long name
    char command [2048];
    snprintf (command, sizeof (command),
              "cd %s && mkdir -p src/results/nested/%060d && echo one > src/results/a.txt && "
              "echo two > src/results/nested/%060d/%060d.txt && "
              "tar --format=ustar -C src -cf u.tar results && tar --format=pax -C src -cf p.tar results",
              base, 7, 7, 8);
    int tar_rc = system (command);
    assert (tar_rc == 0);
    {
        const char *formats [] = { "u.tar", "p.tar" };
        for (int i = 0; i < 2; i++) {
            char dir [512], archive [512];
            snprintf (dir, sizeof (dir), "%s/gnu%d", base, i);
            snprintf (archive, sizeof (archive), "%s/%s", base, formats [i]);
            assert (mkdir (dir, 0755) == 0);
            int rc = umb_cli_agent_untar (archive, dir, false, reason, sizeof (reason));
            if (rc)
                printf ("%s: %s\n", formats [i], reason);
            assert (rc == 0);
            snprintf (path, sizeof (path), "%s/a.txt", dir);
            text = s_slurp (path);
            assert (text && streq (text, "one\n"));
            free (text);
            snprintf (path, sizeof (path), "%s/nested/%060d/%060d.txt", dir, 7, 8);
            text = s_slurp (path);
            assert (text && streq (text, "two\n"));
            free (text);
        }
    }
    s_remove_tree (AT_FDCWD, base);
    struct stat st;
    assert (stat (base, &st) == -1);
    if (verbose)
        printf ("OK\n");
}
