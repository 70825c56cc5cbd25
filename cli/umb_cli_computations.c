//  umb_cli_computations - `umbra computations` through the gateway's REST API
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>
#include "umb_cli_computations.h"
#include "umb_cli_rest.h"
#include "umb_http_client.h"
#include "umb_hex.h"
#include "umb_sig.h"

#define S_EXIT_OK      UMB_CLI_REST_EXIT_OK
#define S_EXIT_FAILED  UMB_CLI_REST_EXIT_FAILED
#define S_EXIT_USAGE   UMB_CLI_REST_EXIT_USAGE

#define S_MAX_FILE      1048576     //  bytes of a definition, a patch or a policy we read
#define S_MAX_KEY       16384       //  bytes of a public key, as the service reads at most
#define S_AUDIT_MAX     1000        //  records asked for in one request
#define S_EVENTS_MAX    1000        //  run events asked for in one request
#define S_DAYS_MAX      366         //  days of statistics the service gives at most
//  A followed run's stream is given up when nothing came for this long; the
//  gateway sends a keepalive after each empty long poll (15 s)
#define S_FOLLOW_IDLE_MS 60000

//  Options; a subcommand lists those it takes.
enum {
    S_OPT_WORKSPACE   = 1 << 0,
    S_OPT_JSON        = 1 << 1,
    S_OPT_FILE        = 1 << 2,
    S_OPT_NAME        = 1 << 3,
    S_OPT_PROVIDER    = 1 << 4,
    S_OPT_TYPE        = 1 << 5,
    S_OPT_ARG         = 1 << 6,
    S_OPT_DATASET     = 1 << 7,
    S_OPT_CONSUMER    = 1 << 8,
    S_OPT_TEE         = 1 << 9,
    S_OPT_VCPUS       = 1 << 10,
    S_OPT_MEMORY      = 1 << 11,
    S_OPT_TIMEOUT     = 1 << 12,
    S_OPT_POLICY      = 1 << 13,
    S_OPT_DESCRIPTION = 1 << 14,
    S_OPT_PARTICIPANT = 1 << 15,
    S_OPT_LIMIT       = 1 << 16,
    S_OPT_VERSION     = 1 << 17,
    S_OPT_KEY         = 1 << 18,
    S_OPT_HASH        = 1 << 19,
    S_OPT_OUTPUT      = 1 << 20,
    S_OPT_AFTER       = 1 << 21,
    S_OPT_PAGE_SIZE   = 1 << 22,
    S_OPT_FOLLOW      = 1 << 23,
    S_OPT_DAYS        = 1 << 24
};

//  Options that may be given more than once
#define S_REPEATABLE (S_OPT_ARG | S_OPT_DATASET | S_OPT_CONSUMER)
//  The definition's flags, which --file replaces
#define S_DEFINITION (S_OPT_NAME | S_OPT_PROVIDER | S_OPT_TYPE | S_OPT_ARG | S_OPT_DATASET \
                      | S_OPT_CONSUMER | S_OPT_TEE | S_OPT_VCPUS | S_OPT_MEMORY | S_OPT_TIMEOUT \
                      | S_OPT_POLICY | S_OPT_DESCRIPTION)

static const struct option s_options [] = {
    { "workspace",          required_argument, NULL, 'w' },
    { "json",               no_argument,       NULL, 'j' },
    { "file",               required_argument, NULL, 'f' },
    { "name",               required_argument, NULL, 'n' },
    { "algorithm-provider", required_argument, NULL, 'A' },
    { "algorithm-type",     required_argument, NULL, 'Y' },
    { "arg",                required_argument, NULL, 'r' },
    { "dataset",            required_argument, NULL, 'd' },
    { "consumer",           required_argument, NULL, 'C' },
    { "tee",                required_argument, NULL, 'e' },
    { "vcpus",              required_argument, NULL, 'v' },
    { "memory-mb",          required_argument, NULL, 'm' },
    { "run-timeout",        required_argument, NULL, 't' },
    { "policy",             required_argument, NULL, 'p' },
    { "description",        required_argument, NULL, 'D' },
    { "participant",        required_argument, NULL, 'P' },
    { "limit",              required_argument, NULL, 'l' },
    { "version",            required_argument, NULL, 'V' },
    { "key",                required_argument, NULL, 'k' },
    { "hash",               required_argument, NULL, 'H' },
    { "output",             required_argument, NULL, 'o' },
    { "after",              required_argument, NULL, 'a' },
    { "page-size",          required_argument, NULL, 'S' },
    { "follow",             no_argument,       NULL, 'F' },
    { "days",               required_argument, NULL, 'y' },
    { "url",                required_argument, NULL, 'u' },
    { "token",              required_argument, NULL, 'T' },
    { "config",             required_argument, NULL, 'c' },
    { "help",               no_argument,       NULL, 'h' },
    { NULL, 0, NULL, 0 }
};

//  What a required option is called in messages, by its bit.
static const struct {
    unsigned    bit;
    const char *text;
} s_required_names [] = {
    { S_OPT_WORKSPACE, "--workspace WS" }, { S_OPT_FILE, "--file FILE" },
    { S_OPT_KEY, "--key FILE.pub" }, { 0 }
};

static const char *const s_tees [] = { "none", "sev-snp", "tdx", NULL };
static const char *const s_types [] = { "python", "bin", NULL };

//  One run of a command: what was asked, and where to say things.
typedef struct _s_command_t s_command_t;

typedef struct {
    FILE              *out;
    FILE              *err;
    const s_command_t *command;
    const char        *url;         //  --url, --config, --token (owned; wiped)
    const char        *config_path;
    char              *token;
    umb_cli_rest_t    *rest;
    unsigned           given;       //  the options given, by bit
    const char        *workspace;
    bool               json;
    const char        *file;
    const char        *name;
    const char        *provider;
    const char        *type;
    json_t            *args;        //  --arg, --dataset ({provider, filename, decompress})
    json_t            *datasets;    //  and --consumer as they came (owned)
    json_t            *consumers;
    const char        *tee;
    int64_t            vcpus;
    int64_t            memory_mb;
    int64_t            run_timeout;
    const char        *policy_path;
    const char        *description;
    const char        *participant;
    int64_t            limit;       //  0 when not given
    int64_t            page_size;   //  0 when not given
    int64_t            version;     //  0 when not given
    const char        *key_path;
    const char        *hash;
    const char        *output;
    int64_t            after;
    bool               follow;
    int64_t            days;        //  0 when not given
    const char        *arguments [2];   //  CMP, then ASSET or RUN
} s_cli_t;

typedef int (s_run_fn) (s_cli_t *cli);

struct _s_command_t {
    const char *name;
    s_run_fn   *run;
    unsigned    options;
    unsigned    required;
    int         arguments;          //  positional arguments it takes
    const char *argument;           //  what they are called, for messages
    const char *usage;
};

static int s_create (s_cli_t *cli);
static int s_list (s_cli_t *cli);
static int s_get (s_cli_t *cli);
static int s_update (s_cli_t *cli);
static int s_delete (s_cli_t *cli);
static int s_key (s_cli_t *cli);
static int s_asset (s_cli_t *cli);
static int s_check (s_cli_t *cli);
static int s_manifest (s_cli_t *cli);
static int s_audit (s_cli_t *cli);
static int s_run (s_cli_t *cli);
static int s_runs (s_cli_t *cli);
static int s_run_get (s_cli_t *cli);
static int s_stop (s_cli_t *cli);
static int s_events (s_cli_t *cli);
static int s_stats (s_cli_t *cli);

#define S_WS (S_OPT_WORKSPACE | S_OPT_JSON)

static const s_command_t s_commands [] = {
    { "create", s_create, S_WS | S_OPT_FILE | S_DEFINITION, S_OPT_WORKSPACE, 0, NULL,
      "create   --workspace WS --file DEF.json [--json]\n"
      "create   --workspace WS --name NAME --algorithm-provider USER\n"
      "         [--algorithm-type python|bin] [--arg ARG]...\n"
      "         [--dataset PROVIDER:FILENAME[:decompress]]... --consumer USER...\n"
      "         [--tee none|sev-snp|tdx] [--vcpus N] [--memory-mb M] [--run-timeout SECONDS]\n"
      "         [--policy FILE] [--description TEXT] [--json]\n"
      "         a computation (you are its owner), from a definition as\n"
      "         proto/msgpack/computations.md describes it or from flags; users are\n"
      "         workspace members by id or username; prints the computation's id" },
    { "list", s_list, S_WS | S_OPT_PARTICIPANT | S_OPT_NAME | S_OPT_LIMIT | S_OPT_PAGE_SIZE,
      S_OPT_WORKSPACE, 0, NULL,
      "list     --workspace WS [--participant me|USER_ID] [--name PREFIX]\n"
      "         [--limit N | --page-size N] [--json]\n"
      "         newest first; with --limit one page of N, else every page, --page-size\n"
      "         (default 100) computations a request" },
    { "get", s_get, S_WS, S_OPT_WORKSPACE, 1, "CMP",
      "get      --workspace WS CMP [--json]" },
    { "update", s_update, S_WS | S_OPT_FILE | S_OPT_VERSION, S_OPT_WORKSPACE | S_OPT_FILE, 1, "CMP",
      "update   --workspace WS CMP --file PATCH.json [--version V] [--json]\n"
      "         changes the fields PATCH.json holds (the owner); with --version, only if\n"
      "         the computation is still at version V" },
    { "delete", s_delete, S_WS, S_OPT_WORKSPACE, 1, "CMP",
      "delete   --workspace WS CMP [--json]   (the owner; its audit records stay)" },
    { "key", s_key, S_WS | S_OPT_KEY, S_OPT_WORKSPACE | S_OPT_KEY, 1, "CMP",
      "key      --workspace WS CMP --key FILE.pub [--json]\n"
      "         registers your public key (`umbra keys generate` writes one) for CMP" },
    { "asset", s_asset, S_WS | S_OPT_HASH | S_OPT_FILE, S_OPT_WORKSPACE, 2, "CMP and one ASSET",
      "asset    --workspace WS CMP ASSET (--hash HEX | --file PATH) [--json]\n"
      "         sets the SHA3-256 of ASSET (algorithm, or a dataset's filename); --file\n"
      "         computes it here (the file is not sent)" },
    { "check", s_check, S_WS, S_OPT_WORKSPACE, 1, "CMP",
      "check    --workspace WS CMP [--json]\n"
      "         prints \"ready\" (exit 0), or what is missing (exit 1)" },
    { "manifest", s_manifest, S_WS | S_OPT_OUTPUT, S_OPT_WORKSPACE, 1, "CMP",
      "manifest --workspace WS CMP [--output FILE] [--json]\n"
      "         the manifest the agent takes, as JSON, to FILE (-o) or stdout" },
    { "audit", s_audit, S_WS | S_OPT_AFTER, S_OPT_WORKSPACE, 0, NULL,
      "audit    --workspace WS [--after N] [--json]\n"
      "         the workspace's audit records after N, one a line: SEQ TIME ACTION\n"
      "         COMPUTATION ACTOR DETAIL (check them with `umbra audit verify`)" },
    { "run", s_run, S_WS | S_OPT_FOLLOW, S_OPT_WORKSPACE, 1, "CMP",
      "run      --workspace WS CMP [--follow] [--json]\n"
      "         starts a run of CMP (the owner; CMP must be ready) and prints its id;\n"
      "         --follow then prints its events as they come until it ends: exit 0 when\n"
      "         it Completed, 1 when it Failed or was Cancelled (the reason on stderr);\n"
      "         with --json, JSON lines: the run, each event, the run as it ended" },
    { "runs", s_runs, S_WS | S_OPT_LIMIT, S_OPT_WORKSPACE, 1, "CMP",
      "runs     --workspace WS CMP [--limit N] [--json]\n"
      "         CMP's runs, newest first (default 100, at most 500)" },
    { "run-get", s_run_get, S_WS, S_OPT_WORKSPACE, 2, "CMP and one RUN",
      "run-get  --workspace WS CMP RUN [--json]\n"
      "         the run's state and the endpoints its participants upload and fetch\n"
      "         through (`umbra algo|data|result --agent AGENT --attest-endpoint ATTEST`)" },
    { "stop", s_stop, S_WS, S_OPT_WORKSPACE, 2, "CMP and one RUN",
      "stop     --workspace WS CMP RUN [--json]   (the owner; its CVM is destroyed)" },
    { "events", s_events, S_WS | S_OPT_AFTER | S_OPT_FOLLOW, S_OPT_WORKSPACE, 2,
      "CMP and one RUN",
      "events   --workspace WS CMP RUN [--after N] [--follow] [--json]\n"
      "         the run's events after N, one a line: SEQ TIME SOURCE TYPE STATE MESSAGE\n"
      "         (--json: one JSON object a line); --follow waits for more until the run\n"
      "         ends" },
    { "stats", s_stats, S_WS | S_OPT_DAYS, S_OPT_WORKSPACE, 0, NULL,
      "stats    --workspace WS [--days N] [--json]\n"
      "         per UTC day of the last N (default 30, at most 366) that had any:\n"
      "         computations created, runs started, completed, failed and cancelled" },
    { NULL }
};

static void
s_usage (FILE *stream)
{
    umb_cli_rest_usage_group (stream, "computations");
    for (size_t i = 0; s_commands [i].name; i++)
        umb_cli_rest_usage (stream, s_commands [i].usage);
    umb_cli_rest_usage_common (stream);
}

static void
s_command_usage (FILE *stream, const s_command_t *command)
{
    umb_cli_rest_usage_command (stream, "computations", command->usage);
}

//  "/workspaces/WS/COLLECTION[/ITEM[/ACTION[/NAME]]]", each part escaped
//  but action (a fixed text). Caller frees.
static char *
s_path (s_cli_t *cli, const char *collection, const char *item, const char *action,
        const char *name)
{
    char *workspace = umb_http_client_escape (cli->workspace);
    char *escaped = item ? umb_http_client_escape (item) : NULL;
    char *escaped_name = name ? umb_http_client_escape (name) : NULL;
    char *path = NULL;
    if (asprintf (&path, "/workspaces/%s/%s%s%s%s%s%s%s", workspace, collection,
                  escaped ? "/" : "", escaped ? escaped : "", action ? "/" : "",
                  action ? action : "", escaped_name ? "/" : "",
                  escaped_name ? escaped_name : "") < 0)
        path = NULL;
    assert (path);
    free (workspace);
    free (escaped);
    free (escaped_name);
    return path;
}

//  Prints the answer as JSON or, for people, with print.
static int
s_answer (s_cli_t *cli, json_t *root, void (*print) (s_cli_t *cli, json_t *root))
{
    if (root && !cli->json)
        print (cli, root);
    return umb_cli_rest_answer (cli->out, cli->json, root);
}

//  A file's text, at most max bytes, NUL-terminated; *size_p (when not NULL)
//  its length. NULL having said why.
static char *
s_read_file (s_cli_t *cli, const char *path, size_t max, const char *what, size_t *size_p)
{
    FILE *file = fopen (path, "re");
    if (!file) {
        fprintf (cli->err, "umbra: cannot read %s: %s\n", path, strerror (errno));
        return NULL;
    }
    char *text = calloc (1, max + 2);
    assert (text);
    size_t size = fread (text, 1, max + 1, file);
    int error = ferror (file) ? errno : 0;
    fclose (file);
    if (error || size > max) {
        if (error)
            fprintf (cli->err, "umbra: cannot read %s: %s\n", path, strerror (error));
        else
            fprintf (cli->err, "umbra: %s is larger than %s may be (%zu bytes)\n", path, what, max);
        free (text);
        return NULL;
    }
    if (size_p)
        *size_p = size;
    return text;
}

//  A file holding one JSON object (the caller's). NULL having said why.
static json_t *
s_read_object (s_cli_t *cli, const char *path, const char *what)
{
    size_t size;
    char *text = s_read_file (cli, path, S_MAX_FILE, what, &size);
    if (!text)
        return NULL;
    json_error_t parse;
    json_t *json = json_loadb (text, size, JSON_REJECT_DUPLICATES, &parse);
    free (text);
    if (!json)
        fprintf (cli->err, "umbra: %s is not JSON: line %d: %s\n", path, parse.line, parse.text);
    else
    if (!json_is_object (json)) {
        fprintf (cli->err, "umbra: %s is not %s (a JSON object)\n", path, what);
        json_decref (json);
        json = NULL;
    }
    return json;
}

//  ---------------------------------------------------------------- printing

static void
s_print_id (s_cli_t *cli, json_t *root)
{
    fprintf (cli->out, "%s\n", umb_cli_rest_str (root, "id"));
}

static void
s_print_hash (s_cli_t *cli, json_t *object)
{
    const char *hash = umb_cli_rest_str (object, "hash");
    fprintf (cli->out, "%s", *hash ? hash : "(no hash yet)");
}

//  "a, b, c" of an array of strings
static void
s_print_list (s_cli_t *cli, json_t *array)
{
    size_t index;
    json_t *item;
    json_array_foreach (array, index, item) {
        fprintf (cli->out, "%s", index ? ", " : "");
        umb_cli_rest_print_text (cli->out, json_string_value (item) ? json_string_value (item) : "?");
    }
    if (json_array_size (array) == 0)
        fprintf (cli->out, "-");
}

static void
s_print_computation (s_cli_t *cli, json_t *cmp)
{
    char created [32], updated [32];
    umb_cli_rest_time (cmp, "created_at", created, sizeof (created));
    umb_cli_rest_time (cmp, "updated_at", updated, sizeof (updated));
    json_t *algorithm = json_object_get (cmp, "algorithm");
    json_t *backend = json_object_get (cmp, "backend");
    fprintf (cli->out, "id            %s\nname          ", umb_cli_rest_str (cmp, "id"));
    umb_cli_rest_print_text (cli->out, umb_cli_rest_str (cmp, "name"));
    if (*umb_cli_rest_str (cmp, "description")) {
        fprintf (cli->out, "\ndescription   ");
        umb_cli_rest_print_text (cli->out, umb_cli_rest_str (cmp, "description"));
    }
    fprintf (cli->out,
             "\nversion       %lld\n"
             "owner         %s\n"
             "algorithm     %s by %s, hash ",
             umb_cli_rest_int (cmp, "version"), umb_cli_rest_str (cmp, "owner"),
             umb_cli_rest_str (algorithm, "type"), umb_cli_rest_str (algorithm, "provider"));
    s_print_hash (cli, algorithm);
    if (json_is_true (json_object_get (algorithm, "requirements")))
        fprintf (cli->out, ", with requirements");
    if (json_array_size (json_object_get (algorithm, "args"))) {
        fprintf (cli->out, "\n  args        ");
        s_print_list (cli, json_object_get (algorithm, "args"));
    }
    fprintf (cli->out, "\ndatasets      ");
    size_t index;
    json_t *item;
    json_array_foreach (json_object_get (cmp, "datasets"), index, item) {
        fprintf (cli->out, "%s", index ? "\n              " : "");
        umb_cli_rest_print_text (cli->out, umb_cli_rest_str (item, "filename"));
        fprintf (cli->out, " by %s, hash ", umb_cli_rest_str (item, "provider"));
        s_print_hash (cli, item);
        if (json_is_true (json_object_get (item, "decompress")))
            fprintf (cli->out, ", decompressed");
    }
    if (json_array_size (json_object_get (cmp, "datasets")) == 0)
        fprintf (cli->out, "-");
    fprintf (cli->out, "\nconsumers     ");
    s_print_list (cli, json_object_get (cmp, "consumers"));
    fprintf (cli->out,
             "\nbackend       %s, %lld vCPUs, %lld MiB\n"
             "run timeout   %lld s\n"
             "limits        ",
             umb_cli_rest_str (backend, "tee"), umb_cli_rest_int (backend, "vcpus"),
             umb_cli_rest_int (backend, "memory_mb"), umb_cli_rest_int (cmp, "run_timeout_s"));
    const char *key;
    json_t *value;
    size_t limits = 0;
    json_object_foreach (json_object_get (cmp, "limits"), key, value)
        if (json_is_integer (value))
            fprintf (cli->out, "%s%s %lld", limits++ ? ", " : "", key,
                     (long long) json_integer_value (value));
    fprintf (cli->out, "%s\n", limits ? "" : "the agent's defaults");
    const char *policy = umb_cli_rest_str (cmp, "policy");
    if (*policy)
        fprintf (cli->out, "policy        %zu bytes\n", strlen (policy));
    else
        fprintf (cli->out, "policy        none\n");
    fprintf (cli->out, "participants\n");
    json_array_foreach (json_object_get (cmp, "participants"), index, item) {
        fprintf (cli->out, "  %s  ", umb_cli_rest_str (item, "user"));
        s_print_list (cli, json_object_get (item, "roles"));
        if (*umb_cli_rest_str (item, "key_fingerprint"))
            fprintf (cli->out, "  key %s %s\n", umb_cli_rest_str (item, "key_type"),
                     umb_cli_rest_str (item, "key_fingerprint"));
        else
            fprintf (cli->out, "  (no key yet)\n");
    }
    fprintf (cli->out,
             "created       %s\n"
             "updated       %s\n", created, updated);
}

static void
s_print_computations (s_cli_t *cli, json_t *root)
{
    json_t *items = json_object_get (root, "items");
    fprintf (cli->out, "%-20s  %7s  %-7s  %8s  %9s  %-20s  %s\n", "ID", "VERSION", "TEE",
             "DATASETS", "CONSUMERS", "UPDATED", "NAME");
    size_t index;
    json_t *cmp;
    json_array_foreach (items, index, cmp) {
        char updated [32];
        umb_cli_rest_time (cmp, "updated_at", updated, sizeof (updated));
        fprintf (cli->out, "%-20s  %7lld  %-7s  %8zu  %9zu  %-20s  ", umb_cli_rest_str (cmp, "id"),
                 umb_cli_rest_int (cmp, "version"),
                 umb_cli_rest_str (json_object_get (cmp, "backend"), "tee"),
                 json_array_size (json_object_get (cmp, "datasets")),
                 json_array_size (json_object_get (cmp, "consumers")), updated);
        umb_cli_rest_print_text (cli->out, umb_cli_rest_str (cmp, "name"));
        fputc ('\n', cli->out);
    }
}

//  ---------------------------------------------------------------- commands

static int
s_create (s_cli_t *cli)
{
    json_t *body = NULL;
    int rc = S_EXIT_OK;
    if (cli->file) {
        if (cli->given & S_DEFINITION) {
            fprintf (cli->err, "umbra: --file holds the whole definition: no other definition "
                     "flag goes with it\n");
            rc = S_EXIT_USAGE;
        }
        else
        if (!(body = s_read_object (cli, cli->file, "a definition")))
            rc = S_EXIT_FAILED;
    }
    else
    if (!cli->name || !cli->provider || !cli->consumers) {
        fprintf (cli->err, "umbra: computations create needs --file DEF.json, or --name NAME, "
                 "--algorithm-provider USER and --consumer USER\n");
        rc = S_EXIT_USAGE;
    }
    else {
        //  json_string refuses text that is not UTF-8
        body = json_object ();
        json_t *algorithm = json_object ();
        bool bad = json_object_set_new (body, "name", json_string (cli->name)) != 0;
        bad |= json_object_set_new (algorithm, "provider", json_string (cli->provider)) != 0;
        if (cli->type)
            json_object_set_new (algorithm, "type", json_string (cli->type));
        if (cli->args)
            json_object_set (algorithm, "args", cli->args);
        json_object_set_new (body, "algorithm", algorithm);
        if (cli->datasets)
            json_object_set (body, "datasets", cli->datasets);
        json_object_set (body, "consumers", cli->consumers);
        if (cli->description)
            bad |= json_object_set_new (body, "description", json_string (cli->description)) != 0;
        if (cli->tee || cli->vcpus || cli->memory_mb) {
            json_t *backend = json_object ();
            if (cli->tee)
                json_object_set_new (backend, "tee", json_string (cli->tee));
            if (cli->vcpus)
                json_object_set_new (backend, "vcpus", json_integer (cli->vcpus));
            if (cli->memory_mb)
                json_object_set_new (backend, "memory_mb", json_integer (cli->memory_mb));
            json_object_set_new (body, "backend", backend);
        }
        if (cli->run_timeout)
            json_object_set_new (body, "run_timeout_s", json_integer (cli->run_timeout));
        if (bad) {
            fprintf (cli->err, "umbra: --name, --algorithm-provider and --description must be "
                     "UTF-8 text\n");
            rc = S_EXIT_USAGE;
        }
        else
        if (cli->policy_path) {
            char *policy = s_read_file (cli, cli->policy_path, S_MAX_FILE, "a policy", NULL);
            if (!policy)
                rc = S_EXIT_FAILED;
            else
            if (json_object_set_new (body, "policy", json_string (policy))) {
                fprintf (cli->err, "umbra: %s is not UTF-8 text\n", cli->policy_path);
                rc = S_EXIT_FAILED;
            }
            free (policy);
        }
    }
    if (rc == S_EXIT_OK) {
        char *path = s_path (cli, "computations", NULL, NULL, NULL);
        rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "POST", path, body), s_print_id);
        free (path);
    }
    else
    if (rc == S_EXIT_USAGE)
        s_command_usage (cli->err, cli->command);
    json_decref (body);
    return rc;
}

static int
s_list (s_cli_t *cli)
{
    if (cli->limit && cli->page_size) {
        fprintf (cli->err, "umbra: --limit and --page-size exclude each other\n");
        return S_EXIT_USAGE;
    }
    char *path = s_path (cli, "computations", NULL, NULL, NULL);
    if (cli->participant)
        umb_cli_rest_query (&path, "participant", cli->participant);
    if (cli->name)
        umb_cli_rest_query (&path, "name", cli->name);
    json_t *root = umb_cli_rest_list (cli->rest, path, cli->limit, cli->page_size);
    free (path);
    return s_answer (cli, root, s_print_computations);
}

static int
s_get (s_cli_t *cli)
{
    char *path = s_path (cli, "computations", cli->arguments [0], NULL, NULL);
    int rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "GET", path, NULL),
                       s_print_computation);
    free (path);
    return rc;
}

static void
s_print_updated (s_cli_t *cli, json_t *cmp)
{
    fprintf (cli->out, "%s is at version %lld\n", umb_cli_rest_str (cmp, "id"),
             umb_cli_rest_int (cmp, "version"));
}

static int
s_update (s_cli_t *cli)
{
    json_t *body = s_read_object (cli, cli->file, "a change");
    if (!body)
        return S_EXIT_FAILED;
    if (cli->version)
        json_object_set_new (body, "version", json_integer (cli->version));
    char *path = s_path (cli, "computations", cli->arguments [0], NULL, NULL);
    int rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "PATCH", path, body), s_print_updated);
    free (path);
    json_decref (body);
    return rc;
}

static void
s_print_deleted (s_cli_t *cli, json_t *cmp)
{
    fprintf (cli->out, "deleted %s (", umb_cli_rest_str (cmp, "id"));
    umb_cli_rest_print_text (cli->out, umb_cli_rest_str (cmp, "name"));
    fprintf (cli->out, ")\n");
}

static int
s_delete (s_cli_t *cli)
{
    char *path = s_path (cli, "computations", cli->arguments [0], NULL, NULL);
    int rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "DELETE", path, NULL),
                       s_print_deleted);
    free (path);
    return rc;
}

static void
s_print_key (s_cli_t *cli, json_t *participant)
{
    fprintf (cli->out, "key of %s: %s %s\n", umb_cli_rest_str (participant, "user"),
             umb_cli_rest_str (participant, "key_type"),
             umb_cli_rest_str (participant, "key_fingerprint"));
}

static int
s_key (s_cli_t *cli)
{
    char *key = s_read_file (cli, cli->key_path, S_MAX_KEY, "a public key", NULL);
    if (!key)
        return S_EXIT_FAILED;
    json_t *body = json_object ();
    int rc = S_EXIT_FAILED;
    if (json_object_set_new (body, "key", json_string (key)))
        fprintf (cli->err, "umbra: %s is not a PEM public key\n", cli->key_path);
    else {
        char *path = s_path (cli, "computations", cli->arguments [0], "participants/me/key", NULL);
        rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "PUT", path, body), s_print_key);
        free (path);
    }
    json_decref (body);
    free (key);
    return rc;
}

static void
s_print_asset (s_cli_t *cli, json_t *cmp)
{
    //  The asset's hash as the computation now holds it
    const char *asset = cli->arguments [1];
    json_t *entry = NULL;
    if (strcmp (asset, "algorithm") == 0)
        entry = json_object_get (cmp, "algorithm");
    size_t index;
    json_t *dataset;
    json_array_foreach (json_object_get (cmp, "datasets"), index, dataset)
        if (!entry && strcmp (umb_cli_rest_str (dataset, "filename"), asset) == 0)
            entry = dataset;
    fprintf (cli->out, "%s: ", umb_cli_rest_str (cmp, "id"));
    umb_cli_rest_print_text (cli->out, asset);
    fprintf (cli->out, " %s (version %lld)\n", umb_cli_rest_str (entry, "hash"),
             umb_cli_rest_int (cmp, "version"));
}

static int
s_asset (s_cli_t *cli)
{
    if (!cli->hash == !cli->file) {
        fprintf (cli->err, "umbra: computations asset takes --hash HEX or --file PATH\n");
        s_command_usage (cli->err, cli->command);
        return S_EXIT_USAGE;
    }
    char hex [UMB_SIG_HASH_HEX_SIZE];
    if (cli->file) {
        uint8_t hash [UMB_SIG_HASH_SIZE];
        char reason [512];
        if (umb_sig_sha3_file (cli->file, hash, NULL, reason, sizeof (reason))) {
            fprintf (cli->err, "umbra: %s\n", reason);
            return S_EXIT_FAILED;
        }
        umb_hex_encode (hash, sizeof (hash), hex);
    }
    json_t *body = json_object ();
    int rc = S_EXIT_USAGE;
    if (json_object_set_new (body, "hash", json_string (cli->file ? hex : cli->hash)))
        fprintf (cli->err, "umbra: --hash must be UTF-8 text\n");
    else {
        char *path = s_path (cli, "computations", cli->arguments [0], "assets", cli->arguments [1]);
        rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "PUT", path, body), s_print_asset);
        free (path);
    }
    json_decref (body);
    return rc;
}

static int
s_check (s_cli_t *cli)
{
    char *path = s_path (cli, "computations", cli->arguments [0], "check", NULL);
    json_t *root = umb_cli_rest_call_json (cli->rest, "GET", path, NULL);
    free (path);
    if (!root)
        return S_EXIT_FAILED;
    bool ready = json_is_true (json_object_get (root, "ready"));
    if (cli->json)
        umb_cli_rest_print_json (cli->out, root);
    else
    if (ready)
        fprintf (cli->out, "ready\n");
    else {
        fprintf (cli->out, "not ready; missing:\n");
        size_t index;
        json_t *missing;
        json_array_foreach (json_object_get (root, "missing"), index, missing) {
            fprintf (cli->out, "  ");
            umb_cli_rest_print_text (cli->out, json_string_value (missing) ? json_string_value (missing) : "?");
            fputc ('\n', cli->out);
        }
    }
    json_decref (root);
    return ready ? S_EXIT_OK : S_EXIT_FAILED;
}

static int
s_manifest (s_cli_t *cli)
{
    char *path = s_path (cli, "computations", cli->arguments [0], "manifest", NULL);
    json_t *root = umb_cli_rest_call_json (cli->rest, "GET", path, NULL);
    free (path);
    if (!root)
        return S_EXIT_FAILED;
    const char *manifest = json_string_value (json_object_get (root, "manifest"));
    int rc = S_EXIT_OK;
    if (!manifest) {
        fprintf (cli->err, "umbra: the answer holds no manifest\n");
        rc = S_EXIT_FAILED;
    }
    else
    if (cli->output) {
        FILE *file = fopen (cli->output, "we");
        bool written = file && fwrite (manifest, 1, strlen (manifest), file) == strlen (manifest);
        if (file && fclose (file))
            written = false;
        if (!written) {
            fprintf (cli->err, "umbra: cannot write %s: %s\n", cli->output, strerror (errno));
            rc = S_EXIT_FAILED;
        }
        else
        if (cli->json)
            umb_cli_rest_print_json (cli->out, root);
        else
            fprintf (cli->out, "manifest of %s (version %lld) written to %s\n", cli->arguments [0],
                     umb_cli_rest_int (root, "version"), cli->output);
    }
    else
    if (cli->json)
        umb_cli_rest_print_json (cli->out, root);
    else
        fprintf (cli->out, "%s\n", manifest);
    json_decref (root);
    return rc;
}

static void
s_print_record (s_cli_t *cli, json_t *record)
{
    char time [32];
    umb_cli_rest_time (record, "time", time, sizeof (time));
    fprintf (cli->out, "%lld  %s  %-10s  %-20s  %-20s  ", umb_cli_rest_int (record, "seq"), time,
             umb_cli_rest_str (record, "action"), umb_cli_rest_str (record, "computation"),
             umb_cli_rest_str (record, "actor"));
    umb_cli_rest_print_text (cli->out, umb_cli_rest_str (record, "detail"));
    fputc ('\n', cli->out);
}

//  Pages of records after --after, until the trail's last.
static int
s_audit (s_cli_t *cli)
{
    json_t *all = json_array ();
    int64_t after = cli->after;
    json_int_t last = 0;
    int rc = S_EXIT_OK;
    while (true) {
        char *path = s_path (cli, "audit", NULL, NULL, NULL);
        umb_cli_rest_query_int (&path, "after", after);
        umb_cli_rest_query_int (&path, "limit", S_AUDIT_MAX);
        json_t *root = umb_cli_rest_call_json (cli->rest, "GET", path, NULL);
        free (path);
        if (!root) {
            rc = S_EXIT_FAILED;
            break;
        }
        json_t *records = json_object_get (root, "records");
        if (!json_is_array (records) || !json_is_integer (json_object_get (root, "last"))) {
            fprintf (cli->err, "umbra: the answer holds no records\n");
            json_decref (root);
            rc = S_EXIT_FAILED;
            break;
        }
        last = json_integer_value (json_object_get (root, "last"));
        bool more = false;
        size_t index;
        json_t *record;
        json_array_foreach (records, index, record) {
            //  seq grows, else we would ask for the same page forever
            if (umb_cli_rest_int (record, "seq") > after) {
                after = umb_cli_rest_int (record, "seq");
                more = true;
            }
            json_array_append (all, record);
        }
        json_decref (root);
        if (!more || after >= last)
            break;
    }
    if (rc == S_EXIT_OK) {
        if (cli->json) {
            json_t *answer = json_pack ("{s:O, s:I}", "records", all, "last", last);
            umb_cli_rest_print_json (cli->out, answer);
            json_decref (answer);
        }
        else {
            size_t index;
            json_t *record;
            json_array_foreach (all, index, record)
                s_print_record (cli, record);
        }
    }
    json_decref (all);
    return rc;
}

//  ---------------------------------------------------------------- runs

//  ".../computations/CMP/runs/RUN" and suffix ("" or "/stop", "/events").
//  Caller frees.
static char *
s_run_path (s_cli_t *cli, const char *suffix)
{
    char *base = s_path (cli, "computations", cli->arguments [0], "runs", cli->arguments [1]);
    char *path = NULL;
    if (asprintf (&path, "%s%s", base, suffix) < 0)
        path = NULL;
    assert (path);
    free (base);
    return path;
}

//  value as one JSON line (--json of a command whose output is a stream)
static void
s_print_line (s_cli_t *cli, json_t *value)
{
    char *text = json_dumps (value, JSON_COMPACT);
    if (text)
        fprintf (cli->out, "%s\n", text);
    free (text);
}

//  The string at key for people: "-" for none (null)
static void
s_print_field (s_cli_t *cli, const char *label, json_t *object, const char *key)
{
    const char *value = umb_cli_rest_str (object, key);
    fprintf (cli->out, "%-16s", label);
    umb_cli_rest_print_text (cli->out, *value ? value : "-");
    fputc ('\n', cli->out);
}

static void
s_print_run (s_cli_t *cli, json_t *run)
{
    char created [32], updated [32], deadline [32];
    umb_cli_rest_time (run, "created_at", created, sizeof (created));
    umb_cli_rest_time (run, "updated_at", updated, sizeof (updated));
    umb_cli_rest_time (run, "deadline_at", deadline, sizeof (deadline));
    s_print_field (cli, "id", run, "id");
    s_print_field (cli, "computation", run, "computation");
    s_print_field (cli, "state", run, "state");
    s_print_field (cli, "reason", run, "reason");
    s_print_field (cli, "cvm", run, "cvm");
    s_print_field (cli, "agent_endpoint", run, "agent_endpoint");
    s_print_field (cli, "attest_endpoint", run, "attest_endpoint");
    fprintf (cli->out,
             "%-16s%lld\n"
             "%-16s%s\n"
             "%-16s%s\n"
             "%-16s%s\n"
             "%-16s%s\n", "events", umb_cli_rest_int (run, "events"),
             "started by", umb_cli_rest_str (run, "started_by"), "created", created,
             "updated", updated, "deadline", deadline);
}

static void
s_print_runs (s_cli_t *cli, json_t *root)
{
    fprintf (cli->out, "%-20s  %-14s  %-20s  %-20s  %s\n", "ID", "STATE", "CREATED", "CVM",
             "REASON");
    size_t index;
    json_t *run;
    json_array_foreach (json_object_get (root, "items"), index, run) {
        char created [32];
        umb_cli_rest_time (run, "created_at", created, sizeof (created));
        const char *cvm = umb_cli_rest_str (run, "cvm");
        const char *reason = umb_cli_rest_str (run, "reason");
        fprintf (cli->out, "%-20s  %-14s  %-20s  %-20s  ", umb_cli_rest_str (run, "id"),
                 umb_cli_rest_str (run, "state"), created, *cvm ? cvm : "-");
        umb_cli_rest_print_text (cli->out, *reason ? reason : "-");
        fputc ('\n', cli->out);
    }
}

//  "run_... Cancelled (stopped by usr_...)"
static void
s_print_state (s_cli_t *cli, json_t *run)
{
    const char *reason = umb_cli_rest_str (run, "reason");
    fprintf (cli->out, "%s %s", umb_cli_rest_str (run, "id"), umb_cli_rest_str (run, "state"));
    if (*reason) {
        fprintf (cli->out, " (");
        umb_cli_rest_print_text (cli->out, reason);
        fputc (')', cli->out);
    }
    fputc ('\n', cli->out);
}

//  A run's stream as it is read: where it got to and how it ended
typedef struct {
    s_cli_t *cli;
    int64_t  after;                 //  the last seq printed
    char     state [32];            //  the `end` event's final state; "" until it came
    json_t  *error;                 //  the `error` event's {status, code, message}
    bool     garbled;               //  an event that was not a JSON object
} s_follow_t;

static int
s_on_event (void *arg, const char *type, const char *id, const char *data)
{
    s_follow_t *follow = arg;
    json_t *event = json_loads (data, 0, NULL);
    if (!json_is_object (event)) {
        follow->garbled = true;
        json_decref (event);
        return -1;
    }
    if (strcmp (type, "end") == 0) {
        snprintf (follow->state, sizeof (follow->state), "%s", umb_cli_rest_str (event, "state"));
        json_decref (event);
        return 1;
    }
    if (strcmp (type, "error") == 0) {
        follow->error = event;
        return 1;
    }
    umb_cli_rest_print_event (follow->cli->out, event, follow->cli->json);
    fflush (follow->cli->out);
    if (umb_cli_rest_int (event, "seq") > follow->after)
        follow->after = umb_cli_rest_int (event, "seq");
    json_decref (event);
    return 0;
}

//  Prints the events of the run (arguments [1]) after after as they come, the
//  gateway streaming them (?follow=1), until the run is final. 0, or -1
//  having said why.
static int
s_follow (s_cli_t *cli, int64_t after)
{
    char *path = s_run_path (cli, "/events");
    umb_cli_rest_query (&path, "follow", "1");
    umb_cli_rest_query_int (&path, "after", after);
    s_follow_t follow = { .cli = cli, .after = after };
    umb_http_response_t response;
    umb_http_client_t *client = umb_cli_rest_client (cli->rest);
    int rc = umb_http_client_events (client, path, S_FOLLOW_IDLE_MS, s_on_event, &follow,
                                     &response);
    if (rc)
        fprintf (cli->err, "umbra: %s\n", umb_http_client_error (client));
    else {
        char text [1024];
        rc = -1;
        if (response.status < 200 || response.status > 299) {
            umb_http_response_describe (&response, text, sizeof (text));
            fprintf (cli->err, "umbra: %s\n", text);
        }
        else
        if (follow.error)
            fprintf (cli->err, "umbra: %lld %s: %s\n", umb_cli_rest_int (follow.error, "status"),
                     umb_cli_rest_str (follow.error, "code"),
                     umb_cli_rest_str (follow.error, "message"));
        else
        if (follow.garbled)
            fprintf (cli->err, "umbra: GET %s: an event that is not a JSON object\n", path);
        else
        if (!*follow.state)
            fprintf (cli->err, "umbra: GET %s: the stream ended before the run did (go on with "
                     "--after %" PRId64 ")\n", path, follow.after);
        else
            rc = 0;
        umb_http_response_clear (&response);
    }
    json_decref (follow.error);
    free (path);
    return rc;
}

static int
s_run (s_cli_t *cli)
{
    char *path = s_path (cli, "computations", cli->arguments [0], "runs", NULL);
    json_t *run = umb_cli_rest_call_json (cli->rest, "POST", path, NULL);
    free (path);
    if (!cli->follow || !run)
        return s_answer (cli, run, s_print_id);
    if (cli->json)
        s_print_line (cli, run);
    else
        s_print_id (cli, run);
    fflush (cli->out);
    char *id = strdup (umb_cli_rest_str (run, "id"));
    assert (id);
    json_decref (run);
    cli->arguments [1] = id;
    int rc = S_EXIT_FAILED;
    if (s_follow (cli, 0) == 0) {
        //  How it ended, with the reason
        path = s_run_path (cli, "");
        run = umb_cli_rest_call_json (cli->rest, "GET", path, NULL);
        free (path);
        if (run) {
            const char *state = umb_cli_rest_str (run, "state");
            if (cli->json)
                s_print_line (cli, run);
            if (strcmp (state, "Completed") == 0) {
                if (!cli->json)
                    fprintf (cli->out, "run %s Completed\n", id);
                rc = S_EXIT_OK;
            }
            else {
                fprintf (cli->err, "umbra: run %s %s: ", id, state);
                umb_cli_rest_print_text (cli->err, *umb_cli_rest_str (run, "reason")
                                        ? umb_cli_rest_str (run, "reason") : "no reason given");
                fputc ('\n', cli->err);
            }
            json_decref (run);
        }
    }
    cli->arguments [1] = NULL;
    free (id);
    return rc;
}

static int
s_runs (s_cli_t *cli)
{
    char *path = s_path (cli, "computations", cli->arguments [0], "runs", NULL);
    if (cli->limit)
        umb_cli_rest_query_int (&path, "limit", cli->limit);
    int rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "GET", path, NULL), s_print_runs);
    free (path);
    return rc;
}

static int
s_run_get (s_cli_t *cli)
{
    char *path = s_run_path (cli, "");
    int rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "GET", path, NULL), s_print_run);
    free (path);
    return rc;
}

static int
s_stop (s_cli_t *cli)
{
    char *path = s_run_path (cli, "/stop");
    int rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "POST", path, NULL), s_print_state);
    free (path);
    return rc;
}

//  Pages of events after --after until the log's last, or (--follow) the
//  stream until the run is final.
static int
s_events (s_cli_t *cli)
{
    if (cli->follow)
        return s_follow (cli, cli->after) ? S_EXIT_FAILED : S_EXIT_OK;
    int64_t after = cli->after;
    while (true) {
        char *path = s_run_path (cli, "/events");
        umb_cli_rest_query_int (&path, "after", after);
        umb_cli_rest_query_int (&path, "max", S_EVENTS_MAX);
        json_t *root = umb_cli_rest_call_json (cli->rest, "GET", path, NULL);
        free (path);
        if (!root)
            return S_EXIT_FAILED;
        json_t *events = json_object_get (root, "events");
        if (!json_is_array (events) || !json_is_integer (json_object_get (root, "last"))) {
            fprintf (cli->err, "umbra: the answer holds no events\n");
            json_decref (root);
            return S_EXIT_FAILED;
        }
        //  seq grows, else we would ask for the same page forever
        bool more = false;
        size_t index;
        json_t *event;
        json_array_foreach (events, index, event) {
            umb_cli_rest_print_event (cli->out, event, cli->json);
            if (umb_cli_rest_int (event, "seq") > after) {
                after = umb_cli_rest_int (event, "seq");
                more = true;
            }
        }
        more &= after < umb_cli_rest_int (root, "last");
        json_decref (root);
        if (!more)
            return S_EXIT_OK;
    }
}

static void
s_print_stats (s_cli_t *cli, json_t *root)
{
    static const char *const columns [] = { "computations_created", "runs_started",
                                            "runs_completed", "runs_failed", "runs_cancelled" };
    static const int widths [] = { 7, 7, 9, 6, 9 };     //  those of the headings
    long long total [5] = { 0 };
    fprintf (cli->out, "%-10s  %7s  %7s  %9s  %6s  %9s\n", "DAY", "CREATED", "STARTED",
             "COMPLETED", "FAILED", "CANCELLED");
    size_t index;
    json_t *day;
    json_array_foreach (json_object_get (root, "days"), index, day) {
        fprintf (cli->out, "%-10s", umb_cli_rest_str (day, "day"));
        for (size_t i = 0; i < 5; i++) {
            long long count = umb_cli_rest_int (day, columns [i]);
            fprintf (cli->out, "  %*lld", widths [i], count);
            total [i] += count;
        }
        fputc ('\n', cli->out);
    }
    fprintf (cli->out, "%-10s  %7lld  %7lld  %9lld  %6lld  %9lld\n", "total", total [0],
             total [1], total [2], total [3], total [4]);
}

static int
s_stats (s_cli_t *cli)
{
    char *path = s_path (cli, "computations", NULL, "stats", NULL);
    if (cli->days)
        umb_cli_rest_query_int (&path, "days", cli->days);
    int rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "GET", path, NULL), s_print_stats);
    free (path);
    return rc;
}

//  ---------------------------------------------------------------- command line

//  Appends a string to *array_p (made when NULL). -1 when it is not UTF-8.
static int
s_append (json_t **array_p, const char *text)
{
    if (!*array_p)
        *array_p = json_array ();
    return json_array_append_new (*array_p, json_string (text));
}

//  PROVIDER:FILENAME[:decompress] as a dataset. -1 having said why.
static int
s_dataset (s_cli_t *cli, const char *text)
{
    const char *colon = strchr (text, ':');
    size_t length = strlen (text);
    const char *suffix = ":decompress";
    bool decompress = colon && length > strlen (suffix)
                   && strcmp (text + length - strlen (suffix), suffix) == 0
                   && text + length - strlen (suffix) > colon;
    size_t filename_length = colon ? length - (size_t) (colon + 1 - text)
                                     - (decompress ? strlen (suffix) : 0) : 0;
    if (!colon || colon == text || filename_length == 0) {
        fprintf (cli->err, "umbra: --dataset is PROVIDER:FILENAME[:decompress], not '%s'\n", text);
        return -1;
    }
    char *provider = strndup (text, (size_t) (colon - text));
    char *filename = strndup (colon + 1, filename_length);
    assert (provider && filename);
    json_t *dataset = json_object ();
    bool bad = json_object_set_new (dataset, "provider", json_string (provider)) != 0;
    bad |= json_object_set_new (dataset, "filename", json_string (filename)) != 0;
    if (decompress)
        json_object_set_new (dataset, "decompress", json_true ());
    free (provider);
    free (filename);
    if (bad) {
        fprintf (cli->err, "umbra: --dataset must be UTF-8 text\n");
        json_decref (dataset);
        return -1;
    }
    if (!cli->datasets)
        cli->datasets = json_array ();
    json_array_append_new (cli->datasets, dataset);
    return 0;
}

//  Reads the command line into cli (which is zeroed first). S_EXIT_OK to run
//  the command, -1 when help was asked for (and given), else the exit code.
static int
s_parse (s_cli_t *cli, int argc, char **argv, FILE *out, FILE *err)
{
    assert (argc >= 1 && argv && out && err);
    *cli = (s_cli_t) { .out = out, .err = err };
    if (argc < 2) {
        s_usage (err);
        return S_EXIT_USAGE;
    }
    if (umb_cli_rest_is_help (argv [1])) {
        s_usage (out);
        return -1;
    }
    const s_command_t *command = s_commands;
    while (command->name && strcmp (command->name, argv [1]))
        command++;
    if (!command->name) {
        fprintf (err, "umbra: unknown computations command '%s'\n", argv [1]);
        s_usage (err);
        return S_EXIT_USAGE;
    }
    cli->command = command;
    int rc = S_EXIT_OK;
    int option;
    umb_cli_rest_getopt_start (&argc, &argv);
    char name [64];                 //  how the user wrote the option, for messages
    while (rc == S_EXIT_OK
       &&  (option = umb_cli_rest_getopt (argc, argv, ":w:jf:o:", s_options, name,
                                          sizeof (name))) != -1) {
        unsigned bit = 0;
        int64_t *number = NULL;     //  where a number option's value goes
        int64_t min = 1;
        switch (option) {
            case 'w': bit = S_OPT_WORKSPACE; cli->workspace = optarg; break;
            case 'j': bit = S_OPT_JSON; cli->json = true; break;
            case 'f': bit = S_OPT_FILE; cli->file = optarg; break;
            case 'n': bit = S_OPT_NAME; cli->name = optarg; break;
            case 'A': bit = S_OPT_PROVIDER; cli->provider = optarg; break;
            case 'Y': bit = S_OPT_TYPE; cli->type = optarg; break;
            case 'r':
                bit = S_OPT_ARG;
                if (s_append (&cli->args, optarg)) {
                    fprintf (err, "umbra: --arg must be UTF-8 text\n");
                    rc = S_EXIT_USAGE;
                }
                break;
            case 'd':
                bit = S_OPT_DATASET;
                if (s_dataset (cli, optarg))
                    rc = S_EXIT_USAGE;
                break;
            case 'C':
                bit = S_OPT_CONSUMER;
                if (s_append (&cli->consumers, optarg)) {
                    fprintf (err, "umbra: --consumer must be UTF-8 text\n");
                    rc = S_EXIT_USAGE;
                }
                break;
            case 'e': bit = S_OPT_TEE; cli->tee = optarg; break;
            case 'v': bit = S_OPT_VCPUS; number = &cli->vcpus; break;
            case 'm': bit = S_OPT_MEMORY; number = &cli->memory_mb; break;
            case 't': bit = S_OPT_TIMEOUT; number = &cli->run_timeout; break;
            case 'p': bit = S_OPT_POLICY; cli->policy_path = optarg; break;
            case 'D': bit = S_OPT_DESCRIPTION; cli->description = optarg; break;
            case 'P': bit = S_OPT_PARTICIPANT; cli->participant = optarg; break;
            case 'l': bit = S_OPT_LIMIT; number = &cli->limit; break;
            case 'S': bit = S_OPT_PAGE_SIZE; number = &cli->page_size; break;
            case 'V': bit = S_OPT_VERSION; number = &cli->version; break;
            case 'k': bit = S_OPT_KEY; cli->key_path = optarg; break;
            case 'H': bit = S_OPT_HASH; cli->hash = optarg; break;
            case 'o': bit = S_OPT_OUTPUT; cli->output = optarg; break;
            case 'a': bit = S_OPT_AFTER; number = &cli->after; min = 0; break;
            case 'F': bit = S_OPT_FOLLOW; cli->follow = true; break;
            case 'y': bit = S_OPT_DAYS; number = &cli->days; break;
            case 'u': cli->url = optarg; break;
            case 'T': umb_cli_rest_take_secret (&cli->token, optarg); break;
            case 'c': cli->config_path = optarg; break;
            case 'h':
                s_command_usage (out, command);
                umb_cli_rest_usage_common (out);
                rc = -1;
                break;
            default:
                rc = umb_cli_rest_option_error (err, option, argv [optind - 1], "computations",
                                                command->name);
                break;
        }
        if (number && umb_cli_rest_number (err, name, optarg, min, number))
            rc = S_EXIT_USAGE;
        if (rc == S_EXIT_OK && bit && !(command->options & bit)) {
            fprintf (err, "umbra: computations %s does not take '%s'\n", command->name, name);
            rc = S_EXIT_USAGE;
        }
        if (rc == S_EXIT_OK && (cli->given & bit & ~S_REPEATABLE)) {
            fprintf (err, "umbra: '%s' is given twice\n", name);
            rc = S_EXIT_USAGE;
        }
        cli->given |= bit;
    }
    if (rc)
        return rc;
    //  Positional: as many as the command takes, nothing else
    int positional = argc - optind;
    if (positional == command->arguments) {
        for (int i = 0; i < positional; i++)
            cli->arguments [i] = argv [optind + i];
    }
    else {
        if (command->arguments)
            fprintf (err, "umbra: computations %s takes %s%s\n", command->name,
                     command->arguments == 1 ? "one " : "", command->argument);
        else
            fprintf (err, "umbra: computations %s takes no arguments\n", command->name);
        rc = S_EXIT_USAGE;
    }
    unsigned missing = command->required & ~cli->given;
    for (size_t i = 0; rc == S_EXIT_OK && missing && s_required_names [i].bit; i++)
        if (missing & s_required_names [i].bit) {
            fprintf (err, "umbra: computations %s needs %s\n", command->name,
                     s_required_names [i].text);
            rc = S_EXIT_USAGE;
        }
    if (rc == S_EXIT_OK && cli->tee && !umb_cli_rest_one_of (cli->tee, s_tees)) {
        fprintf (err, "umbra: --tee is none, sev-snp or tdx, not '%s'\n", cli->tee);
        rc = S_EXIT_USAGE;
    }
    if (rc == S_EXIT_OK && cli->days > S_DAYS_MAX) {
        fprintf (err, "umbra: --days is at most %d, not %" PRId64 "\n", S_DAYS_MAX, cli->days);
        rc = S_EXIT_USAGE;
    }
    if (rc == S_EXIT_OK && cli->type && !umb_cli_rest_one_of (cli->type, s_types)) {
        fprintf (err, "umbra: --algorithm-type is python or bin, not '%s'\n", cli->type);
        rc = S_EXIT_USAGE;
    }
    const char *values [] = { cli->workspace, cli->arguments [0], cli->arguments [1], cli->file,
                              cli->name, cli->provider, cli->policy_path, cli->participant,
                              cli->key_path, cli->hash, cli->output };
    for (size_t i = 0; rc == S_EXIT_OK && i < sizeof (values) / sizeof (values [0]); i++)
        if (values [i] && !*values [i]) {
            fprintf (err, "umbra: an empty value\n");
            rc = S_EXIT_USAGE;
        }
    if (rc)
        s_command_usage (err, command);
    return rc;
}

//  Settings, then the HTTP client. S_EXIT_OK, or the exit code having said why.
static int
s_connect (s_cli_t *cli, char **envp)
{
    int rc;
    cli->rest = umb_cli_rest_new (cli->config_path, envp, cli->url, cli->token, cli->err, &rc);
    return rc;
}

static void
s_cli_clear (s_cli_t *cli)
{
    umb_cli_rest_destroy (&cli->rest);
    umb_cli_rest_wipe (&cli->token);
    json_decref (cli->args);
    json_decref (cli->datasets);
    json_decref (cli->consumers);
    cli->args = cli->datasets = cli->consumers = NULL;
}

int
umb_cli_computations_run (int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    assert (envp);
    s_cli_t cli;
    int rc = s_parse (&cli, argc, argv, out, err);
    if (rc == S_EXIT_OK)
        rc = s_connect (&cli, envp);
    if (rc == S_EXIT_OK)
        rc = cli.command->run (&cli);
    s_cli_clear (&cli);
    return rc == -1 ? S_EXIT_OK : rc;
}

int
umb_cli_computations (int argc, char **argv)
{
    extern char **environ;
    return umb_cli_computations_run (argc, argv, environ, stdout, stderr);
}

//  ---------------------------------------------------------------- selftest
//  The commands against the real gateway, auth and computations services in
//  this process.
#include <czmq.h>
#include <pthread.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "umb_cli_testkit.h"

#define S_TEST_WS "lab"

UMB_CLI_TESTKIT_RUNNER (s_test_run, umb_cli_computations_run, "computations")

//  Runs the command and checks it, in one.
#define S_EXPECT UMB_CLI_TESTKIT_EXPECT

//  A new public key in dir/name (PEM). Caller frees the path.
static char *
s_test_key (const char *dir, const char *name, const char *type)
{
    EVP_PKEY *key = umb_sig_key_generate (type);
    assert (key);
    char *pem = umb_sig_public_pem (key);
    assert (pem);
    char *path = umb_cli_testkit_write (dir, name, pem);
    free (pem);
    EVP_PKEY_free (key);
    return path;
}

//  A member's id, by their token
static char *
s_test_user_id (const char *url, const char *token)
{
    umb_http_client_t *client = umb_http_client_new (url, token);
    umb_http_response_t response;
    int rc = umb_http_client_get (client, "/users/me", &response);
    assert (rc == 0 && response.status == 200);
    json_t *root = json_loadb (response.body, response.size, 0, NULL);
    char *id = strdup (umb_cli_rest_str (root, "id"));
    assert (strncmp (id, "usr_", 4) == 0);
    json_decref (root);
    umb_http_response_clear (&response);
    umb_http_client_destroy (&client);
    return id;
}

//  Follows a run's events (as the gateway streams them) until one holds text
typedef struct {
    const char *text;
    bool        seen;
} s_test_wait_t;

static int
s_test_on_run_event (void *arg, const char *type, const char *id, const char *data)
{
    s_test_wait_t *wait = arg;
    wait->seen = strstr (data, wait->text) != NULL;
    return wait->seen;
}

static void
s_test_wait_event (const char *url, const char *token, const char *cmp, const char *run,
                   const char *text)
{
    umb_http_client_t *client = umb_http_client_new (url, token);
    assert (client);
    char *path = zsys_sprintf ("/workspaces/%s/computations/%s/runs/%s/events?follow=1",
                               S_TEST_WS, cmp, run);
    s_test_wait_t wait = { .text = text };
    umb_http_response_t response;
    int rc = umb_http_client_events (client, path, 30000, s_test_on_run_event, &wait, &response);
    if (!wait.seen)
        fprintf (stderr, "\n%s: no event holds '%s' (%s)\n", path, text,
                 rc ? umb_http_client_error (client) : "the stream ended");
    assert (rc == 0 && response.status == 200 && wait.seen);
    umb_http_response_clear (&response);
    zstr_free (&path);
    umb_http_client_destroy (&client);
}

//  Runs a command parsed beforehand (getopt is not for two threads at once)
typedef struct {
    s_cli_t cli;
    int     rc;
} s_test_follow_t;

static void *
s_test_follow (void *arg)
{
    s_test_follow_t *follow = arg;
    follow->rc = follow->cli.command->run (&follow->cli);
    return NULL;
}

//  What is left to read of stream (a pipe), after start; the caller frees
static char *
s_test_read_all (FILE *stream, const char *start)
{
    size_t size = strlen (start);
    char *text = malloc (size + 1);
    assert (text);
    memcpy (text, start, size + 1);
    char buffer [4096];
    size_t got;
    while ((got = fread (buffer, 1, sizeof (buffer), stream)) > 0) {
        text = realloc (text, size + got + 1);
        assert (text);
        memcpy (text + size, buffer, got);
        size += got;
        text [size] = 0;
    }
    return text;
}

//  Lines of text
static size_t
s_test_lines (const char *text)
{
    size_t lines = 0;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    return lines;
}

void
umb_cli_computations_test (bool verbose)
{
    if (verbose)
        printf (" * umb_cli_computations: ");
    //  Runs need backends, with a process host: the agent is this build's
    //  (backends finds it beside the test runner), and nobody certifies it
    const char *services [] = { "backends", "computations", NULL };
    const char *const settings [] [2] = { { "backends.certify_agents", "false" }, { NULL } };
    umb_cli_testkit_t *kit = umb_cli_testkit_new ("umb-cli-computations", services, settings);
    const char *url = umb_cli_testkit_url (kit);
    const char *dir = umb_cli_testkit_dir (kit);

    //  alice is admin of lab, bob a member, carol outside
    char *alice = umb_cli_testkit_user (url, "alice");
    char *bob = umb_cli_testkit_user (url, "bob");
    char *carol = umb_cli_testkit_user (url, "carol");
    umb_cli_testkit_workspace (url, S_TEST_WS, alice, "bob", bob);
    char *alice_id = s_test_user_id (url, alice);
    char *bob_id = s_test_user_id (url, bob);

    //  Usage errors: exit 2, nothing sent
    S_EXPECT (s_test_run (url, alice, NULL), 2, NULL, "usage: umbra computations COMMAND");
    S_EXPECT (s_test_run (url, alice, "help", NULL), 0, "usage: umbra computations COMMAND", NULL);
    S_EXPECT (s_test_run (url, alice, "create", "--help", NULL), 0, "--algorithm-provider USER",
              NULL);
    S_EXPECT (s_test_run (url, alice, "launch", NULL), 2, NULL,
              "unknown computations command 'launch'");
    S_EXPECT (s_test_run (url, alice, "list", NULL), 2, NULL, "needs --workspace WS");
    S_EXPECT (s_test_run (url, alice, "list", "-w", S_TEST_WS, "--bogus", NULL), 2, NULL,
              "unknown option '--bogus' for computations list");
    S_EXPECT (s_test_run (url, alice, "get", "-w", S_TEST_WS, NULL), 2, NULL, "takes one CMP");
    S_EXPECT (s_test_run (url, alice, "asset", "-w", S_TEST_WS, "c", NULL), 2, NULL,
              "takes CMP and one ASSET");
    S_EXPECT (s_test_run (url, alice, "asset", "-w", S_TEST_WS, "c", "algorithm", NULL), 2, NULL,
              "takes --hash HEX or --file PATH");
    S_EXPECT (s_test_run (url, alice, "list", "-w", S_TEST_WS, "--tee", "none", NULL), 2, NULL,
              "computations list does not take '--tee'");
    S_EXPECT (s_test_run (url, alice, "create", "-w", S_TEST_WS, "--name", "x", NULL), 2, NULL,
              "needs --file DEF.json, or --name NAME");
    S_EXPECT (s_test_run (url, alice, "create", "-w", S_TEST_WS, "--file", "d.json", "--name", "x",
                          NULL), 2, NULL, "no other definition flag");
    S_EXPECT (s_test_run (url, alice, "create", "-w", S_TEST_WS, "--name", "x",
                          "--algorithm-provider", "alice", "--consumer", "alice", "--dataset",
                          "nofilename", NULL), 2, NULL, "--dataset is PROVIDER:FILENAME");
    S_EXPECT (s_test_run (url, alice, "create", "-w", S_TEST_WS, "--name", "x",
                          "--algorithm-provider", "alice", "--consumer", "alice",
                          "--algorithm-type", "java", NULL), 2, NULL, "python or bin");
    S_EXPECT (s_test_run (url, alice, "create", "-w", S_TEST_WS, "--name", "x", "--name", "y",
                          NULL), 2, NULL, "is given twice");
    S_EXPECT (s_test_run (url, alice, "list", "-w", S_TEST_WS, "--limit", "0", NULL), 2, NULL,
              "--limit takes a number above 0");
    S_EXPECT (s_test_run (url, alice, "list", "-w", S_TEST_WS, "--limit", "1", "--page-size", "1",
                          NULL), 2, NULL, "exclude each other");
    S_EXPECT (s_test_run (url, alice, "audit", "-w", S_TEST_WS, "--after", "-1", NULL), 2, NULL,
              "--after takes a number, not '-1'");
    S_EXPECT (s_test_run (url, alice, "key", "-w", S_TEST_WS, "c", NULL), 2, NULL,
              "needs --key FILE.pub");
    S_EXPECT (s_test_run (url, alice, "update", "-w", S_TEST_WS, "c", NULL), 2, NULL,
              "needs --file FILE");
    S_EXPECT (s_test_run (url, alice, "get", "-w", "", "c", NULL), 2, NULL, "an empty value");
    S_EXPECT (s_test_run (url, alice, "run-get", "-w", S_TEST_WS, "c", NULL), 2, NULL,
              "computations run-get takes CMP and one RUN");
    S_EXPECT (s_test_run (url, alice, "runs", "-w", S_TEST_WS, "c", "--follow", NULL), 2, NULL,
              "computations runs does not take '--follow'");
    S_EXPECT (s_test_run (url, alice, "stats", "-w", S_TEST_WS, "--days", "0", NULL), 2, NULL,
              "--days takes a number above 0");
    S_EXPECT (s_test_run (url, alice, "stats", "-w", S_TEST_WS, "--days", "367", NULL), 2, NULL,
              "--days is at most 366, not 367");
    S_EXPECT (s_test_run (url, alice, "stats", "-w", S_TEST_WS, "--days", "week", NULL), 2, NULL,
              "--days takes a number");
    S_EXPECT (s_test_run (url, alice, "events", "-w", S_TEST_WS, "c", "r", "--after", "x", NULL), 2,
              NULL, "--after takes a number");

    //  Create from flags: the id printed; a non-member refused with the service's reason
    char *policy = umb_cli_testkit_write (dir, "policy.json",
                                          "{\"comment\": \"t\", \"snp\": {\"allow_debug\": false}}");
    char *bad_policy = umb_cli_testkit_write (dir, "bad-policy.json",
                                              "{\"snp\": {\"allow_debg\": true}}");
    S_EXPECT (s_test_run (url, alice, "create", "-w", S_TEST_WS, "--name", "other",
                          "--algorithm-provider", "alice", "--consumer", "alice", "--tee", "tdx",
                          "--policy", bad_policy, NULL), 1, NULL, "umbra: 422 ");
    umb_cli_testkit_run_t run = s_test_run (url, alice, "create", "-w", S_TEST_WS, "--name",
        "regression", "--algorithm-provider", "alice", "--arg", "--epochs",
        "--dataset", "bob:north.csv", "--dataset", "alice:south.csv.gz:decompress",
        "--consumer", "alice", "--consumer", "bob", "--vcpus", "2",
        "--memory-mb", "512", "--run-timeout", "120", "--description", "two regions",
        "--policy", policy, NULL);
    umb_cli_testkit_expect (&run, 0, "cmp_", NULL);
    char *cmp1 = umb_cli_testkit_first_line (&run);
    assert (strlen (run.out) == strlen (cmp1) + 1);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, alice, "create", "-w", S_TEST_WS, "--name", "other",
                          "--algorithm-provider", "carol", "--consumer", "alice", NULL), 1, NULL,
              "umbra: 422 ");
    run = s_test_run (url, alice, "create", "-w", S_TEST_WS, "--name", "other",
                      "--algorithm-provider", "alice", "--consumer", "carol", NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: 422 ");
    assert (strstr (run.err, "'carol' is not a member of this workspace"));
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, alice, "create", "-w", S_TEST_WS, "--name", "regression",
                          "--algorithm-provider", "alice", "--consumer", "alice", NULL), 1, NULL,
              "umbra: 409 duplicate_name: ");
    S_EXPECT (s_test_run (url, carol, "list", "-w", S_TEST_WS, NULL), 1, NULL, "umbra: 404 ");

    //  ...and from a file, with a policy file's text
    char *definition = umb_cli_testkit_write (dir, "def.json",
        "{\"name\": \"second\", \"algorithm\": {\"provider\": \"bob\", \"type\": \"bin\"},"
        " \"datasets\": [], \"consumers\": [\"bob\"], \"run_timeout_s\": 60,"
        " \"limits\": {\"memory_mb\": 256}}");
    run = s_test_run (url, bob, "create", "-w", S_TEST_WS, "--file", definition, "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    json_t *root = umb_cli_testkit_json (&run);
    char *cmp2 = strdup (umb_cli_rest_str (root, "id"));
    assert (streq (umb_cli_rest_str (root, "owner"), bob_id));
    assert (json_integer_value (json_object_get (root, "version")) == 1);
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    char *not_json = umb_cli_testkit_write (dir, "bad.json", "{\"name\": ");
    S_EXPECT (s_test_run (url, alice, "create", "-w", S_TEST_WS, "--file", not_json, NULL), 1,
              NULL, "is not JSON");
    S_EXPECT (s_test_run (url, alice, "create", "-w", S_TEST_WS, "--file", "/nonexistent/d.json",
                          NULL), 1, NULL, "umbra: cannot read /nonexistent/d.json: ");
    char *third = umb_cli_testkit_write (dir, "third.json",
        "{\"name\": \"third\", \"algorithm\": {\"provider\": \"alice\"}, \"consumers\": [\"alice\"]}");
    run = s_test_run (url, alice, "create", "-w", S_TEST_WS, "--file", third, NULL);
    umb_cli_testkit_expect (&run, 0, "cmp_", NULL);
    char *cmp3 = umb_cli_testkit_first_line (&run);
    umb_cli_testkit_run_free (&run);

    //  List: every page (pages of 1), one page, filtered, as JSON
    run = s_test_run (url, alice, "list", "-w", S_TEST_WS, "--page-size", "1", NULL);
    umb_cli_testkit_expect (&run, 0, "ID                    VERSION", NULL);
    assert (strstr (run.out, cmp1) && strstr (run.out, cmp2) && strstr (run.out, cmp3));
    assert (strstr (run.out, "regression\n") && strstr (run.out, "second\n"));
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "list", "-w", S_TEST_WS, "--limit", "1", "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (json_array_size (json_object_get (root, "items")) == 1);
    char *cursor = strdup (umb_cli_rest_str (root, "next"));
    assert (*cursor);
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    free (cursor);
    run = s_test_run (url, alice, "list", "-w", S_TEST_WS, "--page-size", "2", "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (json_array_size (json_object_get (root, "items")) == 3);
    const char *ids [] = { cmp1, cmp2, cmp3 };
    for (size_t i = 0; i < 3; i++) {
        size_t seen = 0, index;
        json_t *item;
        json_array_foreach (json_object_get (root, "items"), index, item)
            seen += streq (umb_cli_rest_str (item, "id"), ids [i]);
        assert (seen == 1);
    }
    assert (json_is_null (json_object_get (root, "next")));
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "list", "-w", S_TEST_WS, "--participant", bob_id, "--name", "se",
                      NULL);
    umb_cli_testkit_expect (&run, 0, cmp2, NULL);
    assert (!strstr (run.out, cmp1) && !strstr (run.out, cmp3));
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "list", "-w", S_TEST_WS, "--participant", "me", "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (json_array_size (json_object_get (root, "items")) == 2);
    json_decref (root);
    umb_cli_testkit_run_free (&run);

    //  Get: the detail block; unknown → 404
    run = s_test_run (url, bob, "get", "-w", S_TEST_WS, cmp1, NULL);
    umb_cli_testkit_expect (&run, 0, "name          regression\n", NULL);
    assert (strstr (run.out, "description   two regions\n"));
    assert (strstr (run.out, "version       1\n"));
    assert (strstr (run.out, "args        --epochs\n"));
    assert (strstr (run.out, "north.csv by ") && strstr (run.out, "hash (no hash yet)"));
    assert (strstr (run.out, "south.csv.gz by ") && strstr (run.out, ", decompressed"));
    assert (strstr (run.out, "backend       none, 2 vCPUs, 512 MiB\n"));
    assert (strstr (run.out, "run timeout   120 s\n"));
    assert (strstr (run.out, "policy        47 bytes\n"));
    char *line = zsys_sprintf ("  %s  owner, algorithm_provider, data_provider, result_consumer"
                               "  (no key yet)\n", alice_id);
    assert (strstr (run.out, line));
    zstr_free (&line);
    line = zsys_sprintf ("  %s  data_provider, result_consumer  (no key yet)\n", bob_id);
    assert (strstr (run.out, line));
    zstr_free (&line);
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "get", "-w", S_TEST_WS, cmp2, NULL);
    umb_cli_testkit_expect (&run, 0, "limits        memory_mb 256\n", NULL);
    assert (strstr (run.out, "algorithm     bin by "));
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, bob, "get", "-w", S_TEST_WS, "cmp_0000000000000000", NULL), 1, NULL,
              "umbra: 404 not_found: no computation 'cmp_0000000000000000'");

    //  Update: with the current version, then a stale one (409); only the owner
    char *patch = umb_cli_testkit_write (dir, "patch.json",
                                         "{\"description\": \"north and south\"}");
    S_EXPECT (s_test_run (url, alice, "update", "-w", S_TEST_WS, cmp1, "--file", patch,
                          "--version", "1", NULL), 0, " is at version 2\n", NULL);
    S_EXPECT (s_test_run (url, alice, "update", "-w", S_TEST_WS, cmp1, "--file", patch,
                          "--version", "1", NULL), 1, NULL, "umbra: 409 conflict: ");
    S_EXPECT (s_test_run (url, bob, "update", "-w", S_TEST_WS, cmp1, "--file", patch, NULL), 1,
              NULL, "umbra: 403 ");
    S_EXPECT (s_test_run (url, alice, "update", "-w", S_TEST_WS, cmp1, "--file", not_json, NULL),
              1, NULL, "is not JSON");
    run = s_test_run (url, alice, "update", "-w", S_TEST_WS, cmp1, "--file", patch, "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (json_integer_value (json_object_get (root, "version")) == 3);
    assert (streq (umb_cli_rest_str (root, "description"), "north and south"));
    json_decref (root);
    umb_cli_testkit_run_free (&run);

    //  Check: not ready, what is missing
    run = s_test_run (url, bob, "check", "-w", S_TEST_WS, cmp1, NULL);
    umb_cli_testkit_expect (&run, 1, "not ready; missing:\n", NULL);
    assert (strstr (run.out, "  algorithm.hash\n") && strstr (run.out, "datasets[north.csv].hash"));
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, alice, "manifest", "-w", S_TEST_WS, cmp1, NULL), 1, NULL,
              "umbra: 409 not_ready: ");

    //  Keys: each participant's own; a bad key and a non-participant refused
    char *alice_pub = s_test_key (dir, "alice.pub", "ed25519");
    char *bob_pub = s_test_key (dir, "bob.pub", "ecdsa");
    char *junk = umb_cli_testkit_write (dir, "junk.pub", "-----BEGIN PUBLIC KEY-----\nAAAA\n"
                                                         "-----END PUBLIC KEY-----\n");
    S_EXPECT (s_test_run (url, alice, "key", "-w", S_TEST_WS, cmp1, "--key", alice_pub, NULL), 0,
              ": ed25519 ", NULL);
    run = s_test_run (url, bob, "key", "-w", S_TEST_WS, cmp1, "--key", bob_pub, "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (streq (umb_cli_rest_str (root, "user"), bob_id));
    assert (streq (umb_cli_rest_str (root, "key_type"), "ecdsa-p256"));
    char *bob_fingerprint = strdup (umb_cli_rest_str (root, "key_fingerprint"));
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, bob, "key", "-w", S_TEST_WS, cmp1, "--key", junk, NULL), 1, NULL,
              "umbra: 422 ");
    S_EXPECT (s_test_run (url, bob, "key", "-w", S_TEST_WS, cmp3, "--key", bob_pub, NULL), 1, NULL,
              "umbra: 403 ");
    S_EXPECT (s_test_run (url, bob, "key", "-w", S_TEST_WS, cmp1, "--key", "/nonexistent.pub",
                          NULL), 1, NULL, "cannot read /nonexistent.pub");

    //  Assets: by --file (hashed here, as `umbra checksum` does) and by --hash
    char *algorithm = umb_cli_testkit_write (dir, "abc.py", "abc");
    static const char abc [] = "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532";
    static const char other [] = "0000000000000000000000000000000000000000000000000000000000000001";
    run = s_test_run (url, alice, "asset", "-w", S_TEST_WS, cmp1, "algorithm", "--file", algorithm,
                      NULL);
    umb_cli_testkit_expect (&run, 0, abc, NULL);
    assert (strstr (run.out, ": algorithm ") && strstr (run.out, "(version 6)"));
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, bob, "asset", "-w", S_TEST_WS, cmp1, "north.csv", "--hash", other,
                          NULL), 0, "north.csv 0000", NULL);
    S_EXPECT (s_test_run (url, bob, "asset", "-w", S_TEST_WS, cmp1, "south.csv.gz", "--hash",
                          other, NULL), 1, NULL, "umbra: 403 ");
    S_EXPECT (s_test_run (url, alice, "asset", "-w", S_TEST_WS, cmp1, "nothing.csv", "--hash",
                          other, NULL), 1, NULL, "umbra: 404 ");
    S_EXPECT (s_test_run (url, alice, "asset", "-w", S_TEST_WS, cmp1, "south.csv.gz", "--hash",
                          "xyz", NULL), 1, NULL, "umbra: 422 ");
    S_EXPECT (s_test_run (url, alice, "asset", "-w", S_TEST_WS, cmp1, "south.csv.gz", "--hash",
                          other, "--file", algorithm, NULL), 2, NULL, "takes --hash HEX or --file");
    S_EXPECT (s_test_run (url, alice, "asset", "-w", S_TEST_WS, cmp1, "south.csv.gz", "--file",
                          "/nonexistent/file", NULL), 1, NULL, "umbra: ");
    run = s_test_run (url, bob, "check", "-w", S_TEST_WS, cmp1, "--json", NULL);
    umb_cli_testkit_expect (&run, 1, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (json_is_false (json_object_get (root, "ready")));
    assert (json_array_size (json_object_get (root, "missing")) == 1);
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    char *other_file = umb_cli_testkit_write (dir, "south.csv.gz", "south");
    S_EXPECT (s_test_run (url, alice, "asset", "-w", S_TEST_WS, cmp1, "south.csv.gz", "--file",
                          other_file, NULL), 0, "south.csv.gz ", NULL);

    //  Ready: check, the manifest to a file
    S_EXPECT (s_test_run (url, bob, "check", "-w", S_TEST_WS, cmp1, NULL), 0, "ready\n", NULL);
    run = s_test_run (url, bob, "get", "-w", S_TEST_WS, cmp1, NULL);
    umb_cli_testkit_expect (&run, 0, bob_fingerprint, NULL);
    assert (strstr (run.out, abc) && !strstr (run.out, "(no hash yet)") && !strstr (run.out, "no key"));
    umb_cli_testkit_run_free (&run);
    char *manifest = zsys_sprintf ("%s/manifest.json", dir);
    run = s_test_run (url, bob, "manifest", "-w", S_TEST_WS, cmp1, "-o", manifest, NULL);
    umb_cli_testkit_expect (&run, 0, "written to ", NULL);
    umb_cli_testkit_run_free (&run);
    json_error_t error;
    root = json_load_file (manifest, 0, &error);
    assert (root);
    assert (streq (umb_cli_rest_str (root, "id"), cmp1));
    assert (streq (umb_cli_rest_str (json_object_get (root, "algorithm"), "hash"), abc));
    assert (json_array_size (json_object_get (root, "datasets")) == 2);
    assert (json_array_size (json_object_get (root, "result_consumers")) == 2);
    json_decref (root);
    run = s_test_run (url, bob, "manifest", "-w", S_TEST_WS, cmp1, NULL);
    umb_cli_testkit_expect (&run, 0, "\"result_consumers\"", NULL);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, bob, "manifest", "-w", S_TEST_WS, cmp1, "-o", "/nonexistent/m.json",
                          NULL), 1, NULL, "cannot write /nonexistent/m.json");

    //  Delete: only the owner; then gone
    S_EXPECT (s_test_run (url, bob, "delete", "-w", S_TEST_WS, cmp3, NULL), 1, NULL, "umbra: 403 ");
    S_EXPECT (s_test_run (url, alice, "delete", "-w", S_TEST_WS, cmp3, NULL), 0, "deleted ", NULL);
    S_EXPECT (s_test_run (url, alice, "get", "-w", S_TEST_WS, cmp3, NULL), 1, NULL, "umbra: 404 ");

    //  Audit: every record (create x3, update x2, keys x2, assets x3, delete), after N
    run = s_test_run (url, bob, "audit", "-w", S_TEST_WS, NULL);
    umb_cli_testkit_expect (&run, 0, "1  ", NULL);
    size_t lines = 0;
    for (const char *c = run.out; *c; c++)
        lines += *c == '\n';
    assert (lines == 11);
    assert (strstr (run.out, "  create  ") && strstr (run.out, "  keys.set  ")
            && strstr (run.out, "  assets.set  ") && strstr (run.out, "  delete  "));
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "audit", "-w", S_TEST_WS, "--after", "9", "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (json_array_size (json_object_get (root, "records")) == 2);
    assert (json_integer_value (json_object_get (root, "last")) == 11);
    assert (json_integer_value (json_object_get (json_array_get (json_object_get (root, "records"),
                                                                 0), "seq")) == 10);
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, carol, "audit", "-w", S_TEST_WS, NULL), 1, NULL, "umbra: 404 ");

    //  Runs: a process host makes the CVMs (nothing is attested on it)
    umb_http_client_t *client = umb_http_client_new (url, alice);
    free (umb_cli_testkit_post (client, "/workspaces/" S_TEST_WS "/backends",
                                "{\"name\": \"dev\", \"uri\": \"process:///\","
                                " \"insecure_dev\": true}", 201, NULL));
    umb_http_client_destroy (&client);
    S_EXPECT (s_test_run (url, bob, "run", "-w", S_TEST_WS, cmp2, NULL), 1, NULL,
              "umbra: 409 not_ready: ");
    S_EXPECT (s_test_run (url, bob, "run", "-w", S_TEST_WS, cmp1, NULL), 1, NULL, "umbra: 403 ");
    run = s_test_run (url, alice, "run", "-w", S_TEST_WS, cmp1, NULL);
    umb_cli_testkit_expect (&run, 0, "run_", NULL);
    char *run1 = umb_cli_testkit_first_line (&run);
    assert (strlen (run.out) == strlen (run1) + 1);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, alice, "run", "-w", S_TEST_WS, cmp1, NULL), 1, NULL,
              "umbra: 409 run_active: ");
    run = s_test_run (url, bob, "runs", "-w", S_TEST_WS, cmp1, NULL);
    umb_cli_testkit_expect (&run, 0, "ID                    STATE           CREATED", NULL);
    assert (strstr (run.out, run1) && s_test_lines (run.out) == 2);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, bob, "runs", "-w", S_TEST_WS, cmp2, NULL), 0, "REASON\n", NULL);

    //  Its agent up, the participants' endpoints are there
    s_test_wait_event (url, bob, cmp1, run1, "participants reach the agent at ");
    run = s_test_run (url, bob, "run-get", "-w", S_TEST_WS, cmp1, run1, NULL);
    umb_cli_testkit_expect (&run, 0, "state           AwaitingAssets\n", NULL);
    assert (strstr (run.out, run1) && strstr (run.out, "reason          -\n"));
    assert (strstr (run.out, "cvm             cvm_"));
    assert (!strstr (run.out, "agent_endpoint  -\n") && !strstr (run.out, "attest_endpoint -\n"));
    assert (strstr (run.out, "deadline        20"));
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "run-get", "-w", S_TEST_WS, cmp1, run1, "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (streq (umb_cli_rest_str (root, "state"), "AwaitingAssets"));
    assert (*umb_cli_rest_str (root, "agent_endpoint") && *umb_cli_rest_str (root, "attest_endpoint"));
    assert (streq (umb_cli_rest_str (root, "started_by"), alice_id));
    json_decref (root);
    umb_cli_testkit_run_free (&run);

    //  Stop: only the owner, once
    S_EXPECT (s_test_run (url, bob, "stop", "-w", S_TEST_WS, cmp1, run1, NULL), 1, NULL,
              "umbra: 403 ");
    run = s_test_run (url, alice, "stop", "-w", S_TEST_WS, cmp1, run1, NULL);
    line = zsys_sprintf ("%s Cancelled (stopped by %s)\n", run1, alice_id);
    umb_cli_testkit_expect (&run, 0, line, NULL);
    zstr_free (&line);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, alice, "stop", "-w", S_TEST_WS, cmp1, run1, NULL), 1, NULL,
              "umbra: 409 wrong_state: ");
    run = s_test_run (url, bob, "run-get", "-w", S_TEST_WS, cmp1, run1, NULL);
    umb_cli_testkit_expect (&run, 0, "state           Cancelled\n", NULL);
    assert (strstr (run.out, "reason          stopped by "));
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, bob, "run-get", "-w", S_TEST_WS, cmp1, "run_0000000000000000",
                          NULL), 1, NULL, "umbra: 404 ");
    S_EXPECT (s_test_run (url, carol, "runs", "-w", S_TEST_WS, cmp1, NULL), 1, NULL, "umbra: 404 ");

    //  Events: every one, after N, followed (the run is over: at once)
    run = s_test_run (url, bob, "events", "-w", S_TEST_WS, cmp1, run1, NULL);
    umb_cli_testkit_expect (&run, 0, "1  20", NULL);
    assert (strstr (run.out, "  computations  state    Pending     "));
    assert (strstr (run.out, "Provisioning -> AwaitingAssets"));
    assert (strstr (run.out, "AwaitingAssets -> Cancelled: stopped by "));
    assert (strstr (run.out, "  cvm  "));
    char *events = strdup (run.out);
    size_t count = s_test_lines (events);
    assert (count >= 5);
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "events", "-w", S_TEST_WS, cmp1, run1, "--follow", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    assert (streq (run.out, events) && !*run.err);
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "events", "-w", S_TEST_WS, cmp1, run1, "--after", "2", "--json",
                      NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    assert (s_test_lines (run.out) == count - 2);
    json_t *event = json_loadb (run.out, (size_t) (strchr (run.out, '\n') - run.out), 0, NULL);
    assert (json_integer_value (json_object_get (event, "seq")) == 3);
    assert (*umb_cli_rest_str (event, "source") && *umb_cli_rest_str (event, "type"));
    json_decref (event);
    umb_cli_testkit_run_free (&run);
    char *after = zsys_sprintf ("%zu", count);
    S_EXPECT (s_test_run (url, bob, "events", "-w", S_TEST_WS, cmp1, run1, "--after", after,
                          "--follow", NULL), 0, NULL, NULL);
    zstr_free (&after);
    S_EXPECT (s_test_run (url, bob, "events", "-w", S_TEST_WS, cmp1, "run_0000000000000000",
                          "--follow", NULL), 1, NULL, "umbra: 404 not_found: ");
    S_EXPECT (s_test_run (url, carol, "events", "-w", S_TEST_WS, cmp1, run1, NULL), 1, NULL,
              "umbra: 404 ");

    //  run --follow: a second run, stopped from here while it is followed
    int pipe_fds [2];
    assert (pipe (pipe_fds) == 0);
    FILE *follow_out = fdopen (pipe_fds [1], "w");
    FILE *follow_err = tmpfile ();
    FILE *follow_read = fdopen (pipe_fds [0], "r");
    assert (follow_out && follow_err && follow_read);
    char *follow_argv [] = { strdup ("computations"), strdup ("run"), strdup ("-w"),
                             strdup (S_TEST_WS), strdup (cmp1), strdup ("--follow"),
                             strdup ("--url"), strdup (url), strdup ("--token"), strdup (alice),
                             NULL };
    char *no_envp [] = { NULL };
    s_test_follow_t follow;
    assert (s_parse (&follow.cli, 10, follow_argv, follow_out, follow_err) == 0);
    assert (s_connect (&follow.cli, no_envp) == 0);
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_test_follow, &follow) == 0);
    char first [64] = "";
    assert (fgets (first, sizeof (first), follow_read));
    assert (strncmp (first, "run_", 4) == 0 && first [20] == '\n');
    char *run2 = strndup (first, 20);
    s_test_wait_event (url, bob, cmp1, run2, "participants reach the agent at ");
    S_EXPECT (s_test_run (url, alice, "stop", "-w", S_TEST_WS, cmp1, run2, NULL), 0,
              " Cancelled (stopped by ", NULL);
    assert (pthread_join (thread, NULL) == 0);
    s_cli_clear (&follow.cli);
    fclose (follow_out);
    run.rc = follow.rc;
    run.out = s_test_read_all (follow_read, first);
    run.err = umb_cli_testkit_slurp (follow_err, NULL);
    line = zsys_sprintf ("umbra: run %s Cancelled: stopped by %s\n", run2, alice_id);
    umb_cli_testkit_expect (&run, 1, "AwaitingAssets -> Cancelled: stopped by ", line);
    assert (strncmp (run.out, run2, 20) == 0 && strstr (run.out, "Pending -> Provisioning"));
    zstr_free (&line);
    umb_cli_testkit_run_free (&run);
    fclose (follow_read);
    fclose (follow_err);
    for (size_t i = 0; follow_argv [i]; i++)
        free (follow_argv [i]);

    run = s_test_run (url, bob, "runs", "-w", S_TEST_WS, cmp1, "--limit", "1", "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (json_array_size (json_object_get (root, "items")) == 1);
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    free (run2);

    //  Statistics: today's computations and runs
    run = s_test_run (url, bob, "stats", "-w", S_TEST_WS, "--days", "1", NULL);
    umb_cli_testkit_expect (&run, 0, "DAY         CREATED  STARTED  COMPLETED  FAILED  CANCELLED\n",
                            NULL);
    //  (cmp3, deleted, is not counted)
    assert (strstr (run.out, "total             2        2          0       0          2\n"));
    assert (s_test_lines (run.out) == 3);
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "stats", "-w", S_TEST_WS, "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    json_t *today = json_array_get (json_object_get (root, "days"),
                                    json_array_size (json_object_get (root, "days")) - 1);
    assert (json_integer_value (json_object_get (today, "runs_started")) == 2);
    assert (json_integer_value (json_object_get (today, "runs_cancelled")) == 2);
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_run (url, carol, "stats", "-w", S_TEST_WS, NULL), 1, NULL, "umbra: 404 ");

    //  The gateway gone: a clear reason, exit 1, for GET and for PUT alike
    umb_cli_testkit_stop_gateway (kit);
    run = s_test_run (url, bob, "get", "-w", S_TEST_WS, cmp1, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: cannot reach http://127.0.0.1:");
    assert (!strstr (run.err, bob));
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "key", "-w", S_TEST_WS, cmp1, "--key", bob_pub, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: cannot reach http://127.0.0.1:");
    assert (!strstr (run.err, bob));
    umb_cli_testkit_run_free (&run);

    free (run1);
    free (events);
    free (cmp1);
    free (cmp2);
    free (cmp3);
    free (bob_fingerprint);
    zstr_free (&definition);
    zstr_free (&policy);
    zstr_free (&bad_policy);
    zstr_free (&not_json);
    zstr_free (&third);
    zstr_free (&patch);
    zstr_free (&alice_pub);
    zstr_free (&bob_pub);
    zstr_free (&junk);
    zstr_free (&algorithm);
    zstr_free (&other_file);
    zstr_free (&manifest);
    free (alice_id);
    free (bob_id);
    free (alice);
    free (bob);
    free (carol);
    umb_cli_testkit_destroy (&kit);
    if (verbose)
        printf ("OK\n");
}
