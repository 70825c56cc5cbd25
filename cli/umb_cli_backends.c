//  umb_cli_backends - `umbra backends` and `umbra cvms` through the gateway's REST API
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "umb_cli_backends.h"
#include "umb_cli_rest.h"
#include "umb_http_client.h"

#define S_EXIT_OK      UMB_CLI_REST_EXIT_OK
#define S_EXIT_FAILED  UMB_CLI_REST_EXIT_FAILED
#define S_EXIT_USAGE   UMB_CLI_REST_EXIT_USAGE

#define S_MAX_MANIFEST  1048576     //  bytes, as the service reads at most
#define S_MAX_WAIT_MS   60000       //  the longest wait_ms the service takes
#define S_EVENTS_MAX    1000        //  events asked for in one request

//  Options; a subcommand lists those it takes.
enum {
    S_OPT_WORKSPACE   = 1 << 0,
    S_OPT_JSON        = 1 << 1,
    S_OPT_NAME        = 1 << 2,
    S_OPT_URI         = 1 << 3,
    S_OPT_INSECURE    = 1 << 4,
    S_OPT_TEE         = 1 << 5,
    S_OPT_VCPUS       = 1 << 6,
    S_OPT_MEMORY      = 1 << 7,
    S_OPT_TTL         = 1 << 8,
    S_OPT_HOST        = 1 << 9,
    S_OPT_COMPUTATION = 1 << 10,
    S_OPT_MANIFEST    = 1 << 11,
    S_OPT_STATE       = 1 << 12,
    S_OPT_LIMIT       = 1 << 13,
    S_OPT_PAGE_SIZE   = 1 << 14,
    S_OPT_REASON      = 1 << 15,
    S_OPT_AFTER       = 1 << 16,
    S_OPT_FOLLOW      = 1 << 17
};

static const struct option s_options [] = {
    { "workspace",    required_argument, NULL, 'w' },
    { "json",         no_argument,       NULL, 'j' },
    { "name",         required_argument, NULL, 'n' },
    { "uri",          required_argument, NULL, 'U' },
    { "insecure-dev", no_argument,       NULL, 'I' },
    { "tee",          required_argument, NULL, 'e' },
    { "vcpus",        required_argument, NULL, 'v' },
    { "memory-mb",    required_argument, NULL, 'm' },
    { "ttl",          required_argument, NULL, 't' },
    { "host",         required_argument, NULL, 'H' },
    { "computation",  required_argument, NULL, 'C' },
    { "manifest",     required_argument, NULL, 'M' },
    { "state",        required_argument, NULL, 's' },
    { "limit",        required_argument, NULL, 'l' },
    { "page-size",    required_argument, NULL, 'P' },
    { "reason",       required_argument, NULL, 'R' },
    { "after",        required_argument, NULL, 'a' },
    { "follow",       no_argument,       NULL, 'f' },
    { "url",          required_argument, NULL, 'u' },
    { "token",        required_argument, NULL, 'T' },
    { "config",       required_argument, NULL, 'c' },
    { "help",         no_argument,       NULL, 'h' },
    { NULL, 0, NULL, 0 }
};

//  What a required option is called in messages, by its bit.
static const struct {
    unsigned    bit;
    const char *text;
} s_required_names [] = {
    { S_OPT_WORKSPACE, "--workspace WS" }, { S_OPT_NAME, "--name NAME" },
    { S_OPT_URI, "--uri URI" },
    { S_OPT_TEE, "--tee none|sev-snp|tdx" }, { S_OPT_VCPUS, "--vcpus N" },
    { S_OPT_MEMORY, "--memory-mb M" }, { S_OPT_MANIFEST, "--manifest FILE" }, { 0 }
};

static const char *const s_tees [] = { "none", "sev-snp", "tdx", NULL };
static const char *const s_states [] = {
    "Requested", "Defining", "Booting", "AgentReady", "Running", "Stopping", "Destroyed", "Failed",
    NULL
};

//  One run of a command: what was asked, and where to say things.
typedef struct _s_command_t s_command_t;

typedef struct {
    FILE              *out;
    FILE              *err;
    const char        *group;       //  "backends" or "cvms"
    const s_command_t *command;
    const char        *url;         //  --url, --config, --token (owned; wiped)
    const char        *config_path;
    char              *token;
    umb_cli_rest_t    *rest;
    const char     *workspace;
    bool            json;
    const char     *name;
    const char     *uri;
    bool            insecure_dev;
    const char     *tee;
    int64_t         vcpus;
    int64_t         memory_mb;
    int64_t         ttl;            //  0 when not given
    const char     *host;
    const char     *computation;
    const char     *manifest_path;
    const char     *state;
    int64_t         limit;          //  0 when not given
    int64_t         page_size;      //  0 when not given
    const char     *reason;
    int64_t         after;          //  -1 when not given
    bool            follow;
    const char     *argument;       //  HOST or CVM
} s_cli_t;

typedef int (s_run_fn) (s_cli_t *cli);

struct _s_command_t {
    const char *name;
    s_run_fn   *run;
    unsigned    options;
    unsigned    required;
    const char *argument;           //  "HOST", "CVM", or NULL for none
    const char *usage;
};

static int s_register (s_cli_t *cli);
static int s_hosts_list (s_cli_t *cli);
static int s_hosts_get (s_cli_t *cli);
static int s_hosts_remove (s_cli_t *cli);
static int s_create (s_cli_t *cli);
static int s_cvms_list (s_cli_t *cli);
static int s_cvms_get (s_cli_t *cli);
static int s_destroy (s_cli_t *cli);
static int s_manifest (s_cli_t *cli);
static int s_events (s_cli_t *cli);

#define S_WS (S_OPT_WORKSPACE | S_OPT_JSON)

static const s_command_t s_backends_commands [] = {
    { "register", s_register, S_WS | S_OPT_NAME | S_OPT_URI | S_OPT_INSECURE,
      S_OPT_WORKSPACE | S_OPT_NAME | S_OPT_URI, NULL,
      "register --workspace WS --name NAME --uri URI [--insecure-dev] [--json]\n"
      "         a TEE host (workspace admins): URI qemu:///system, qemu+ssh://...,\n"
      "         test:///default, process:/// (needs --insecure-dev: nothing is attested);\n"
      "         prints the host's id" },
    { "list", s_hosts_list, S_WS, S_OPT_WORKSPACE, NULL,
      "list     --workspace WS [--json]" },
    { "get", s_hosts_get, S_WS, S_OPT_WORKSPACE, "HOST",
      "get      --workspace WS HOST [--json]   (HOST: its id or name)" },
    { "remove", s_hosts_remove, S_WS, S_OPT_WORKSPACE, "HOST",
      "remove   --workspace WS HOST [--json]   (refused while it has live CVMs)" },
    { NULL }
};

static const s_command_t s_cvms_commands [] = {
    { "create", s_create,
      S_WS | S_OPT_TEE | S_OPT_VCPUS | S_OPT_MEMORY | S_OPT_TTL | S_OPT_HOST | S_OPT_COMPUTATION
      | S_OPT_MANIFEST, S_OPT_WORKSPACE | S_OPT_TEE | S_OPT_VCPUS | S_OPT_MEMORY, NULL,
      "create   --workspace WS --tee none|sev-snp|tdx --vcpus N --memory-mb M [--ttl SECONDS]\n"
      "         [--host HOST] [--computation LABEL] [--manifest FILE] [--json]\n"
      "         prints the CVM's id; the agent comes up afterwards (follow it with events)" },
    { "list", s_cvms_list, S_WS | S_OPT_STATE | S_OPT_LIMIT | S_OPT_PAGE_SIZE,
      S_OPT_WORKSPACE, NULL,
      "list     --workspace WS [--state STATE] [--limit N | --page-size N] [--json]\n"
      "         newest first; with --limit one page of N, else every page, --page-size\n"
      "         (default 100) CVMs a request" },
    { "get", s_cvms_get, S_WS, S_OPT_WORKSPACE, "CVM",
      "get      --workspace WS CVM [--json]" },
    { "destroy", s_destroy, S_WS | S_OPT_REASON, S_OPT_WORKSPACE, "CVM",
      "destroy  --workspace WS CVM [--reason TEXT] [--json]" },
    { "manifest", s_manifest, S_WS | S_OPT_MANIFEST, S_OPT_WORKSPACE | S_OPT_MANIFEST, "CVM",
      "manifest --workspace WS CVM --manifest FILE [--json]\n"
      "         delivers a computation manifest (JSON, at most 1 MiB) to the CVM's agent" },
    { "events", s_events, S_WS | S_OPT_AFTER | S_OPT_FOLLOW, S_OPT_WORKSPACE, "CVM",
      "events   --workspace WS CVM [--after N] [--follow] [--json]\n"
      "         the CVM's events after N (default: after the last acknowledged; reading\n"
      "         acknowledges them), one a line: SEQ TIME SOURCE TYPE STATE MESSAGE (with\n"
      "         --json, one JSON object a line); --follow waits for more until the CVM is\n"
      "         Destroyed or Failed" },
    { NULL }
};

static void
s_usage (FILE *stream, const char *group, const s_command_t *commands)
{
    umb_cli_rest_usage_group (stream, group);
    for (size_t i = 0; commands [i].name; i++)
        umb_cli_rest_usage (stream, commands [i].usage);
    umb_cli_rest_usage_common (stream);
}

//  "/workspaces/WS/COLLECTION[/ITEM[/ACTION]]", each part escaped. Caller frees.
static char *
s_path (s_cli_t *cli, const char *collection, const char *item, const char *action)
{
    char *workspace = umb_http_client_escape (cli->workspace);
    char *escaped = item ? umb_http_client_escape (item) : NULL;
    char *path = NULL;
    if (asprintf (&path, "/workspaces/%s/%s%s%s%s%s", workspace, collection, escaped ? "/" : "",
                  escaped ? escaped : "", action ? "/" : "", action ? action : "") < 0)
        path = NULL;
    assert (path);
    free (workspace);
    free (escaped);
    return path;
}

//  A string that may be null, for people.
static const char *
s_opt (json_t *object, const char *key)
{
    const char *value = umb_cli_rest_str (object, key);
    return *value ? value : "-";
}

//  Prints the answer as JSON or, for people, with print.
static int
s_answer (s_cli_t *cli, json_t *root, void (*print) (s_cli_t *cli, json_t *root))
{
    if (root && !cli->json)
        print (cli, root);
    return umb_cli_rest_answer (cli->out, cli->json, root);
}

//  ---------------------------------------------------------------- hosts

static void
s_print_host (s_cli_t *cli, json_t *host)
{
    json_t *caps = json_object_get (host, "caps");
    json_t *capacity = json_object_get (host, "capacity");
    char tees [256] = "";
    size_t index;
    json_t *tee;
    json_array_foreach (json_object_get (caps, "tees"), index, tee) {
        size_t used = strlen (tees);
        snprintf (tees + used, sizeof (tees) - used, "%s%s", used ? ", " : "",
                  json_string_value (tee) ? json_string_value (tee) : "?");
    }
    char created [32];
    umb_cli_rest_time (host, "created_at", created, sizeof (created));
    fprintf (cli->out,
             "id            %s\n"
             "name          %s\n"
             "uri           %s\n"
             "driver        %s\n"
             "status        %s\n",
             umb_cli_rest_str (host, "id"), umb_cli_rest_str (host, "name"),
             umb_cli_rest_str (host, "uri"), umb_cli_rest_str (host, "driver"),
             umb_cli_rest_str (host, "status"));
    if (*umb_cli_rest_str (host, "error"))
        fprintf (cli->out, "error         %s\n", umb_cli_rest_str (host, "error"));
    fprintf (cli->out,
             "insecure dev  %s\n"
             "tees          %s\n"
             "vcpus         %lld (%lld free)\n"
             "memory        %lld MiB (%lld MiB free)\n"
             "kvm           %s\n"
             "cvms          %lld\n"
             "reputation    %.2f\n"
             "created       %s by %s\n",
             json_is_true (json_object_get (host, "insecure_dev")) ? "yes" : "no",
             *tees ? tees : "-",
             umb_cli_rest_int (caps, "cpus"), umb_cli_rest_int (capacity, "vcpus_free"),
             umb_cli_rest_int (caps, "memory_mb"), umb_cli_rest_int (capacity, "memory_mb_free"),
             json_is_true (json_object_get (caps, "kvm")) ? "yes" : "no",
             umb_cli_rest_int (capacity, "cvms"),
             json_number_value (json_object_get (host, "reputation")), created,
             umb_cli_rest_str (host, "created_by"));
}

static void
s_print_id (s_cli_t *cli, json_t *root)
{
    fprintf (cli->out, "%s\n", umb_cli_rest_str (root, "id"));
}

static int
s_register (s_cli_t *cli)
{
    //  json_string refuses text that is not UTF-8
    json_t *body = json_object ();
    bool bad = json_object_set_new (body, "name", json_string (cli->name)) != 0;
    bad |= json_object_set_new (body, "uri", json_string (cli->uri)) != 0;
    if (cli->insecure_dev)
        json_object_set_new (body, "insecure_dev", json_true ());
    int rc = S_EXIT_USAGE;
    if (bad)
        fprintf (cli->err, "umbra: --name and --uri must be UTF-8 text\n");
    else {
        char *path = s_path (cli, "backends", NULL, NULL);
        rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "POST", path, body), s_print_id);
        free (path);
    }
    json_decref (body);
    return rc;
}

static void
s_print_hosts (s_cli_t *cli, json_t *root)
{
    json_t *items = json_object_get (root, "items");
    int name_width = 4, uri_width = 3;
    size_t index;
    json_t *host;
    json_array_foreach (items, index, host) {
        if ((int) strlen (umb_cli_rest_str (host, "name")) > name_width)
            name_width = (int) strlen (umb_cli_rest_str (host, "name"));
        if ((int) strlen (umb_cli_rest_str (host, "uri")) > uri_width)
            uri_width = (int) strlen (umb_cli_rest_str (host, "uri"));
    }
    fprintf (cli->out, "%-*s  %-21s  %-7s  %-11s  %4s  %11s  %15s  %s\n", name_width, "NAME", "ID",
             "DRIVER", "STATUS", "CVMS", "VCPUS FREE", "MEMORY FREE", "URI");
    json_array_foreach (items, index, host) {
        json_t *capacity = json_object_get (host, "capacity");
        char memory [32];
        snprintf (memory, sizeof (memory), "%lld MiB",
                  umb_cli_rest_int (capacity, "memory_mb_free"));
        fprintf (cli->out, "%-*s  %-21s  %-7s  %-11s  %4lld  %11lld  %15s  %s\n", name_width,
                 umb_cli_rest_str (host, "name"), umb_cli_rest_str (host, "id"),
                 umb_cli_rest_str (host, "driver"), umb_cli_rest_str (host, "status"),
                 umb_cli_rest_int (capacity, "cvms"), umb_cli_rest_int (capacity, "vcpus_free"),
                 memory, umb_cli_rest_str (host, "uri"));
    }
}

static int
s_hosts_list (s_cli_t *cli)
{
    char *path = s_path (cli, "backends", NULL, NULL);
    int rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "GET", path, NULL), s_print_hosts);
    free (path);
    return rc;
}

static int
s_hosts_get (s_cli_t *cli)
{
    char *path = s_path (cli, "backends", cli->argument, NULL);
    int rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "GET", path, NULL), s_print_host);
    free (path);
    return rc;
}

static void
s_print_removed (s_cli_t *cli, json_t *host)
{
    fprintf (cli->out, "removed host %s (%s)\n", umb_cli_rest_str (host, "name"),
             umb_cli_rest_str (host, "id"));
}

static int
s_hosts_remove (s_cli_t *cli)
{
    char *path = s_path (cli, "backends", cli->argument, NULL);
    int rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "DELETE", path, NULL),
                       s_print_removed);
    free (path);
    return rc;
}

//  ---------------------------------------------------------------- CVMs

//  The manifest file's text: JSON, at most S_MAX_MANIFEST bytes. NULL having
//  said why.
static char *
s_read_manifest (s_cli_t *cli)
{
    const char *path = cli->manifest_path;
    FILE *file = fopen (path, "re");
    if (!file) {
        fprintf (cli->err, "umbra: cannot read %s: %s\n", path, strerror (errno));
        return NULL;
    }
    char *text = calloc (1, S_MAX_MANIFEST + 2);
    assert (text);
    size_t size = fread (text, 1, S_MAX_MANIFEST + 1, file);
    int error = ferror (file) ? errno : 0;
    fclose (file);
    json_error_t parse;
    json_t *json = NULL;
    if (error)
        fprintf (cli->err, "umbra: cannot read %s: %s\n", path, strerror (error ? error : EIO));
    else
    if (size > S_MAX_MANIFEST)
        fprintf (cli->err, "umbra: %s is larger than a manifest may be (%d bytes)\n", path,
                 S_MAX_MANIFEST);
    else
    if (!(json = json_loadb (text, size, JSON_REJECT_DUPLICATES, &parse)))
        fprintf (cli->err, "umbra: %s is not JSON: line %d: %s\n", path, parse.line, parse.text);
    else
    if (!json_is_object (json))
        fprintf (cli->err, "umbra: %s is not a manifest (a JSON object)\n", path);
    bool good = json_is_object (json);
    json_decref (json);
    if (!good) {
        free (text);
        return NULL;
    }
    return text;
}

static int
s_create (s_cli_t *cli)
{
    char *manifest = NULL;
    if (cli->manifest_path && !(manifest = s_read_manifest (cli)))
        return S_EXIT_FAILED;
    json_t *body = json_object ();
    json_object_set_new (body, "tee", json_string (cli->tee));
    json_object_set_new (body, "vcpus", json_integer (cli->vcpus));
    json_object_set_new (body, "memory_mb", json_integer (cli->memory_mb));
    if (cli->ttl)
        json_object_set_new (body, "ttl_s", json_integer (cli->ttl));
    bool bad = false;
    if (cli->host)
        bad |= json_object_set_new (body, "host", json_string (cli->host)) != 0;
    if (cli->computation)
        bad |= json_object_set_new (body, "computation", json_string (cli->computation)) != 0;
    if (manifest)
        bad |= json_object_set_new (body, "manifest", json_string (manifest)) != 0;
    int rc = S_EXIT_USAGE;
    if (bad)
        fprintf (cli->err, "umbra: --host, --computation and the manifest must be UTF-8 text\n");
    else {
        char *path = s_path (cli, "cvms", NULL, NULL);
        rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "POST", path, body), s_print_id);
        free (path);
    }
    json_decref (body);
    free (manifest);
    return rc;
}

static void
s_print_cvm (s_cli_t *cli, json_t *cvm)
{
    char expires [32], created [32];
    umb_cli_rest_time (cvm, "expires_at", expires, sizeof (expires));
    umb_cli_rest_time (cvm, "created_at", created, sizeof (created));
    fprintf (cli->out,
             "id            %s\n"
             "state         %s\n",
             umb_cli_rest_str (cvm, "id"), umb_cli_rest_str (cvm, "state"));
    if (*umb_cli_rest_str (cvm, "reason"))
        fprintf (cli->out, "reason        %s\n", umb_cli_rest_str (cvm, "reason"));
    fprintf (cli->out,
             "tee           %s\n"
             "vcpus         %lld\n"
             "memory        %lld MiB\n"
             "host          %s (%s)\n"
             "domain        %s\n"
             "computation   %s\n"
             "agent         %s%s\n"
             "agent key     %s\n"
             "agent at      %s\n"
             "attest at     %s\n"
             "mesh cert     %s\n"
             "events        %lld (acknowledged %lld)\n"
             "expires       %s (ttl %lld s)\n"
             "created       %s by %s\n",
             umb_cli_rest_str (cvm, "tee"), umb_cli_rest_int (cvm, "vcpus"),
             umb_cli_rest_int (cvm, "memory_mb"),
             umb_cli_rest_str (cvm, "host"), umb_cli_rest_str (cvm, "host_id"),
             umb_cli_rest_str (cvm, "domain"), s_opt (cvm, "computation"),
             umb_cli_rest_str (cvm, "agent"),
             json_is_true (json_object_get (cvm, "insecure")) ? " (INSECURE host)" : "",
             s_opt (cvm, "agent_key"), s_opt (cvm, "agent_endpoint"),
             s_opt (cvm, "attest_endpoint"),
             s_opt (cvm, "mesh_cert"), umb_cli_rest_int (cvm, "events"),
             umb_cli_rest_int (cvm, "acked"), expires, umb_cli_rest_int (cvm, "ttl_s"), created,
             umb_cli_rest_str (cvm, "created_by"));
}

static void
s_print_cvms (s_cli_t *cli, json_t *root)
{
    json_t *items = json_object_get (root, "items");
    int host_width = 4;
    size_t index;
    json_t *cvm;
    json_array_foreach (items, index, cvm)
        if ((int) strlen (umb_cli_rest_str (cvm, "host")) > host_width)
            host_width = (int) strlen (umb_cli_rest_str (cvm, "host"));
    fprintf (cli->out, "%-20s  %-10s  %-7s  %5s  %10s  %-*s  %-20s  %s\n", "ID", "STATE", "TEE",
             "VCPUS", "MEMORY", host_width, "HOST", "EXPIRES", "COMPUTATION");
    json_array_foreach (items, index, cvm) {
        char expires [32], memory [32];
        umb_cli_rest_time (cvm, "expires_at", expires, sizeof (expires));
        snprintf (memory, sizeof (memory), "%lld MiB", umb_cli_rest_int (cvm, "memory_mb"));
        fprintf (cli->out, "%-20s  %-10s  %-7s  %5lld  %10s  %-*s  %-20s  %s\n",
                 umb_cli_rest_str (cvm, "id"), umb_cli_rest_str (cvm, "state"),
                 umb_cli_rest_str (cvm, "tee"), umb_cli_rest_int (cvm, "vcpus"), memory, host_width,
                 umb_cli_rest_str (cvm, "host"), expires, s_opt (cvm, "computation"));
    }
}

static int
s_cvms_list (s_cli_t *cli)
{
    if (cli->limit && cli->page_size) {
        fprintf (cli->err, "umbra: --limit and --page-size exclude each other\n");
        return S_EXIT_USAGE;
    }
    char *path = s_path (cli, "cvms", NULL, NULL);
    if (cli->state)
        umb_cli_rest_query (&path, "state", cli->state);
    json_t *root = umb_cli_rest_list (cli->rest, path, cli->limit, cli->page_size);
    free (path);
    return s_answer (cli, root, s_print_cvms);
}

static int
s_cvms_get (s_cli_t *cli)
{
    char *path = s_path (cli, "cvms", cli->argument, NULL);
    int rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "GET", path, NULL), s_print_cvm);
    free (path);
    return rc;
}

static void
s_print_destroyed (s_cli_t *cli, json_t *cvm)
{
    fprintf (cli->out, "%s %s (%s)\n", umb_cli_rest_str (cvm, "id"),
             umb_cli_rest_str (cvm, "state"), s_opt (cvm, "reason"));
}

static int
s_destroy (s_cli_t *cli)
{
    char *path = s_path (cli, "cvms", cli->argument, NULL);
    if (cli->reason)
        umb_cli_rest_query (&path, "reason", cli->reason);
    int rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "DELETE", path, NULL),
                       s_print_destroyed);
    free (path);
    return rc;
}

static void
s_print_delivered (s_cli_t *cli, json_t *root)
{
    json_t *cvm = json_object_get (root, "cvm");
    fprintf (cli->out, "manifest delivered to %s: CVM %s, agent %s\n", umb_cli_rest_str (cvm, "id"),
             umb_cli_rest_str (cvm, "state"), umb_cli_rest_str (root, "agent_state"));
}

static int
s_manifest (s_cli_t *cli)
{
    char *manifest = s_read_manifest (cli);
    if (!manifest)
        return S_EXIT_FAILED;
    json_t *body = json_object ();
    int rc = S_EXIT_FAILED;
    if (json_object_set_new (body, "manifest", json_string (manifest)))
        fprintf (cli->err, "umbra: %s is not UTF-8 text\n", cli->manifest_path);
    else {
        char *path = s_path (cli, "cvms", cli->argument, "manifest");
        rc = s_answer (cli, umb_cli_rest_call_json (cli->rest, "POST", path, body),
                       s_print_delivered);
        free (path);
    }
    json_decref (body);
    free (manifest);
    return rc;
}

//  ---------------------------------------------------------------- events

static bool
s_final (const char *state)
{
    return strcmp (state, "Destroyed") == 0 || strcmp (state, "Failed") == 0;
}

//  Pulls until nothing is left (or, with --follow, until the CVM is over and
//  nothing follows). Each pull's after acknowledges what was printed before.
static int
s_events (s_cli_t *cli)
{
    int64_t wait_ms = 0;
    if (cli->follow) {
        //  A little below the gateway's deadline, which the service also keeps to
        int64_t deadline = umb_config_int (umb_cli_rest_config (cli->rest), "gateway.timeout_ms");
        wait_ms = deadline - (deadline / 10 > 500 ? 500 : deadline / 10);
        if (wait_ms > S_MAX_WAIT_MS)
            wait_ms = S_MAX_WAIT_MS;
        if (deadline + 10000 > UMB_HTTP_CLIENT_TIMEOUT_MS)
            umb_http_client_set_timeout (umb_cli_rest_client (cli->rest), (int) deadline + 10000);
    }
    int64_t after = cli->after;
    int rc = S_EXIT_OK;
    while (true) {
        char *path = s_path (cli, "cvms", cli->argument, "events");
        if (after >= 0)
            umb_cli_rest_query_int (&path, "after", after);
        umb_cli_rest_query_int (&path, "max", S_EVENTS_MAX);
        umb_cli_rest_query_int (&path, "wait_ms", wait_ms);
        json_t *root = umb_cli_rest_call_json (cli->rest, "GET", path, NULL);
        free (path);
        if (!root) {
            rc = S_EXIT_FAILED;
            break;
        }
        json_t *events = json_object_get (root, "events");
        json_t *last = json_object_get (root, "last");
        if (!json_is_array (events) || !json_is_integer (last)) {
            fprintf (cli->err, "umbra: the answer holds no events\n");
            json_decref (root);
            rc = S_EXIT_FAILED;
            break;
        }
        size_t index;
        json_t *event;
        json_array_foreach (events, index, event) {
            umb_cli_rest_print_event (cli->out, event, cli->json);
            if (umb_cli_rest_int (event, "seq") > after)
                after = umb_cli_rest_int (event, "seq");
        }
        fflush (cli->out);
        //  Done when a pull brings nothing: its after acknowledged all that was printed
        bool over = s_final (umb_cli_rest_str (root, "state"));
        bool drained = json_array_size (events) == 0;
        if (after < 0)
            after = umb_cli_rest_int (root, "acked");
        json_decref (root);
        if (drained && (!cli->follow || over))
            break;
    }
    return rc;
}

//  ---------------------------------------------------------------- command line

//  Reads the command line into cli (which is zeroed first). S_EXIT_OK to run
//  the command, -1 when help was asked for (and given), else the exit code.
static int
s_parse (s_cli_t *cli, const char *group, const s_command_t *commands, int argc, char **argv,
         FILE *out, FILE *err)
{
    assert (argc >= 1 && argv && out && err);
    *cli = (s_cli_t) { .out = out, .err = err, .group = group, .after = -1 };
    if (argc < 2) {
        s_usage (err, group, commands);
        return S_EXIT_USAGE;
    }
    if (umb_cli_rest_is_help (argv [1])) {
        s_usage (out, group, commands);
        return -1;
    }
    const s_command_t *command = commands;
    while (command->name && strcmp (command->name, argv [1]))
        command++;
    if (!command->name) {
        fprintf (err, "umbra: unknown %s command '%s'\n", group, argv [1]);
        s_usage (err, group, commands);
        return S_EXIT_USAGE;
    }
    cli->command = command;
    unsigned given = 0;
    int rc = S_EXIT_OK;
    int option;
    umb_cli_rest_getopt_start (&argc, &argv);
    char name [64];                 //  how the user wrote the option, for messages
    while (rc == S_EXIT_OK
       &&  (option = umb_cli_rest_getopt (argc, argv, ":w:j", s_options, name,
                                          sizeof (name))) != -1) {
        unsigned bit = 0;
        int64_t *number = NULL;     //  where a number option's value goes
        int64_t min = 1;
        switch (option) {
            case 'w': bit = S_OPT_WORKSPACE; cli->workspace = optarg; break;
            case 'j': bit = S_OPT_JSON; cli->json = true; break;
            case 'n': bit = S_OPT_NAME; cli->name = optarg; break;
            case 'U': bit = S_OPT_URI; cli->uri = optarg; break;
            case 'I': bit = S_OPT_INSECURE; cli->insecure_dev = true; break;
            case 'e': bit = S_OPT_TEE; cli->tee = optarg; break;
            case 'v': bit = S_OPT_VCPUS; number = &cli->vcpus; break;
            case 'm': bit = S_OPT_MEMORY; number = &cli->memory_mb; break;
            case 't': bit = S_OPT_TTL; number = &cli->ttl; break;
            case 'H': bit = S_OPT_HOST; cli->host = optarg; break;
            case 'C': bit = S_OPT_COMPUTATION; cli->computation = optarg; break;
            case 'M': bit = S_OPT_MANIFEST; cli->manifest_path = optarg; break;
            case 's': bit = S_OPT_STATE; cli->state = optarg; break;
            case 'l': bit = S_OPT_LIMIT; number = &cli->limit; break;
            case 'P': bit = S_OPT_PAGE_SIZE; number = &cli->page_size; break;
            case 'R': bit = S_OPT_REASON; cli->reason = optarg; break;
            case 'a': bit = S_OPT_AFTER; number = &cli->after; min = 0; break;
            case 'f': bit = S_OPT_FOLLOW; cli->follow = true; break;
            case 'u': cli->url = optarg; break;
            case 'T': umb_cli_rest_take_secret (&cli->token, optarg); break;
            case 'c': cli->config_path = optarg; break;
            case 'h':
                umb_cli_rest_usage_command (out, group, command->usage);
                umb_cli_rest_usage_common (out);
                rc = -1;
                break;
            default:
                rc = umb_cli_rest_option_error (err, option, argv [optind - 1], group,
                                                command->name);
                break;
        }
        if (number && umb_cli_rest_number (err, name, optarg, min, number))
            rc = S_EXIT_USAGE;
        if (rc == S_EXIT_OK && bit && !(command->options & bit)) {
            fprintf (err, "umbra: %s %s does not take '%s'\n", group, command->name, name);
            rc = S_EXIT_USAGE;
        }
        if (rc == S_EXIT_OK && (given & bit)) {
            fprintf (err, "umbra: '%s' is given twice\n", name);
            rc = S_EXIT_USAGE;
        }
        given |= bit;
    }
    if (rc)
        return rc;
    //  Positional: HOST or CVM where the command takes one, nothing else
    int positional = argc - optind;
    if (command->argument && positional == 1)
        cli->argument = argv [optind];
    else
    if (positional > 0 || command->argument) {
        if (command->argument)
            fprintf (err, "umbra: %s %s takes one %s\n", group, command->name, command->argument);
        else
            fprintf (err, "umbra: %s %s takes no arguments\n", group, command->name);
        rc = S_EXIT_USAGE;
    }
    unsigned missing = command->required & ~given;
    for (size_t i = 0; rc == S_EXIT_OK && missing && s_required_names [i].bit; i++)
        if (missing & s_required_names [i].bit) {
            fprintf (err, "umbra: %s %s needs %s\n", group, command->name,
                     s_required_names [i].text);
            rc = S_EXIT_USAGE;
        }
    if (rc == S_EXIT_OK && cli->tee && !umb_cli_rest_one_of (cli->tee, s_tees)) {
        fprintf (err, "umbra: --tee is none, sev-snp or tdx, not '%s'\n", cli->tee);
        rc = S_EXIT_USAGE;
    }
    if (rc == S_EXIT_OK && cli->state && !umb_cli_rest_one_of (cli->state, s_states)) {
        fprintf (err, "umbra: --state is one of Requested, Defining, Booting, AgentReady, Running, "
                 "Stopping, Destroyed, Failed\n");
        rc = S_EXIT_USAGE;
    }
    const char *values [] = { cli->workspace, cli->argument, cli->name, cli->uri, cli->host,
                              cli->computation, cli->manifest_path };
    for (size_t i = 0; rc == S_EXIT_OK && i < sizeof (values) / sizeof (values [0]); i++)
        if (values [i] && !*values [i]) {
            fprintf (err, "umbra: an empty value\n");
            rc = S_EXIT_USAGE;
        }
    if (rc)
        umb_cli_rest_usage_command (err, group, command->usage);
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
}

static int
s_main (const char *group, const s_command_t *commands, int argc, char **argv, char **envp,
        FILE *out, FILE *err)
{
    assert (envp);
    s_cli_t cli;
    int rc = s_parse (&cli, group, commands, argc, argv, out, err);
    if (rc == S_EXIT_OK)
        rc = s_connect (&cli, envp);
    if (rc == S_EXIT_OK)
        rc = cli.command->run (&cli);
    s_cli_clear (&cli);
    return rc == -1 ? S_EXIT_OK : rc;
}

int
umb_cli_backends_run (int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    return s_main ("backends", s_backends_commands, argc, argv, envp, out, err);
}

int
umb_cli_cvms_run (int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    return s_main ("cvms", s_cvms_commands, argc, argv, envp, out, err);
}

int
umb_cli_backends (int argc, char **argv)
{
    extern char **environ;
    return umb_cli_backends_run (argc, argv, environ, stdout, stderr);
}

int
umb_cli_cvms (int argc, char **argv)
{
    extern char **environ;
    return umb_cli_cvms_run (argc, argv, environ, stdout, stderr);
}

//  ---------------------------------------------------------------- selftest
//  The commands against the real gateway, auth and backends services in this
//  process; hosts are libvirt's test driver (no daemon, no guest).
#include <czmq.h>
#include <pthread.h>
#include "umb_cli_testkit.h"

#define S_TEST_WS "lab"

UMB_CLI_TESTKIT_RUNNER (s_test_backends, umb_cli_backends_run, "backends")

UMB_CLI_TESTKIT_RUNNER (s_test_cvms, umb_cli_cvms_run, "cvms")

//  Runs the command and checks it, in one.
#define S_EXPECT UMB_CLI_TESTKIT_EXPECT

//  Runs a command parsed beforehand: getopt is not for two threads at once.
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

void
umb_cli_backends_test (bool verbose)
{
    if (verbose)
        printf (" * umb_cli_backends: ");
    const char *services [] = { "backends", NULL };
    const char *const settings [] [2] = {
        { "backends.certify_agents", "false" }, { "gateway.timeout_ms", "1500" }, { NULL }
    };
    umb_cli_testkit_t *kit = umb_cli_testkit_new ("umb-cli-backends", services, settings);
    const char *url = umb_cli_testkit_url (kit);
    const char *dir = umb_cli_testkit_dir (kit);

    //  alice is admin of lab, bob a member, carol outside
    char *alice = umb_cli_testkit_user (url, "alice");
    char *bob = umb_cli_testkit_user (url, "bob");
    char *carol = umb_cli_testkit_user (url, "carol");
    umb_cli_testkit_workspace (url, S_TEST_WS, alice, "bob", bob);

    //  Usage errors: exit 2, nothing sent
    S_EXPECT (s_test_backends (url, alice, NULL), 2, NULL, "usage: umbra backends COMMAND");
    S_EXPECT (s_test_cvms (url, alice, "help", NULL), 0, "usage: umbra cvms COMMAND", NULL);
    S_EXPECT (s_test_cvms (url, alice, "create", "--help", NULL), 0, "--tee none|sev-snp|tdx", NULL);
    S_EXPECT (s_test_backends (url, alice, "add", NULL), 2, NULL, "unknown backends command 'add'");
    S_EXPECT (s_test_backends (url, alice, "register", "-w", S_TEST_WS, "--uri", "test:///default",
                               NULL), 2, NULL, "backends register needs --name NAME");
    S_EXPECT (s_test_backends (url, alice, "list", NULL), 2, NULL, "needs --workspace WS");
    S_EXPECT (s_test_backends (url, alice, "get", "-w", S_TEST_WS, NULL), 2, NULL, "takes one HOST");
    S_EXPECT (s_test_backends (url, alice, "list", "-w", S_TEST_WS, "x", NULL), 2, NULL,
              "takes no arguments");
    S_EXPECT (s_test_backends (url, alice, "list", "-w", S_TEST_WS, "--tee", "none", NULL), 2, NULL,
              "backends list does not take '--tee'");
    S_EXPECT (s_test_cvms (url, alice, "create", "-w", S_TEST_WS, "--tee", "sgx", "--vcpus", "1",
                           "--memory-mb", "256", NULL), 2, NULL, "--tee is none, sev-snp or tdx");
    S_EXPECT (s_test_cvms (url, alice, "create", "-w", S_TEST_WS, "--tee", "none", "--vcpus", "two",
                           "--memory-mb", "256", NULL), 2, NULL,
              "--vcpus takes a number above 0, not 'two'");
    S_EXPECT (s_test_cvms (url, alice, "create", "-w", S_TEST_WS, "--tee", "none", "--vcpus", "1",
                           "--memory-mb", "1G", NULL), 2, NULL, "--memory-mb takes a number");
    S_EXPECT (s_test_cvms (url, alice, "create", "-w", S_TEST_WS, "--tee", "none", "--vcpus", "1",
                           NULL), 2, NULL, "cvms create needs --memory-mb M");
    S_EXPECT (s_test_cvms (url, alice, "list", "-w", S_TEST_WS, "--state", "running", NULL), 2, NULL,
              "--state is one of");
    S_EXPECT (s_test_cvms (url, alice, "list", "-w", S_TEST_WS, "--limit", "0", NULL), 2, NULL,
              "--limit takes a number above 0");
    S_EXPECT (s_test_cvms (url, alice, "list", "-w", S_TEST_WS, "--limit", "1", "--page-size", "1",
                           NULL), 2, NULL, "exclude each other");
    S_EXPECT (s_test_cvms (url, alice, "events", "-w", S_TEST_WS, "c", "--after", "-1", NULL), 2, NULL,
              "--after takes a number, not '-1'");
    S_EXPECT (s_test_cvms (url, alice, "manifest", "-w", S_TEST_WS, "c", NULL), 2, NULL,
              "needs --manifest FILE");
    S_EXPECT (s_test_cvms (url, alice, "get", "-w", S_TEST_WS, "-w", S_TEST_WS, "c", NULL), 2, NULL,
              "is given twice");
    S_EXPECT (s_test_cvms (url, alice, "get", "-w", "", "c", NULL), 2, NULL, "an empty value");
    S_EXPECT (s_test_cvms (url, alice, "get", "--workspace", NULL), 2, NULL, "--workspace needs a value");
    S_EXPECT (s_test_cvms ("ftp://x", alice, "get", "-w", S_TEST_WS, "c", NULL), 2, NULL, "client.url");

    //  Register: the id printed; the service's refusals, exit 1
    umb_cli_testkit_run_t run = s_test_backends (url, alice, "register", "-w", S_TEST_WS, "--name", "t1",
                                                 "--uri", "test:///default", NULL);
    umb_cli_testkit_expect (&run, 0, "host_", NULL);
    char *host = umb_cli_testkit_first_line (&run);
    assert (strlen (run.out) == strlen (host) + 1);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_backends (url, alice, "register", "-w", S_TEST_WS, "--name", "t2",
                               "--uri", "http://example.org/", NULL), 1, NULL, "umbra: 422 ");
    S_EXPECT (s_test_backends (url, alice, "register", "-w", S_TEST_WS, "--name", "t1",
                               "--uri", "test:///default", NULL), 1, NULL, "umbra: 409 duplicate_host: ");
    S_EXPECT (s_test_backends (url, bob, "register", "-w", S_TEST_WS, "--name", "t3",
                               "--uri", "test:///default", NULL), 1, NULL, "umbra: 403 ");
    S_EXPECT (s_test_backends (url, NULL, "list", "-w", S_TEST_WS, NULL), 1, NULL,
              "set UMBRA_CLIENT_TOKEN or pass --token");

    //  List, get (by name and id), as JSON
    S_EXPECT (s_test_backends (url, bob, "list", "-w", S_TEST_WS, NULL), 0, "test:///default", NULL);
    run = s_test_backends (url, bob, "list", "-w", S_TEST_WS, NULL);
    assert (strncmp (run.out, "NAME  ID ", 9) == 0 && strstr (run.out, host) && strstr (run.out, " up "));
    umb_cli_testkit_run_free (&run);
    run = s_test_backends (url, bob, "list", "-w", S_TEST_WS, "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    json_t *root = umb_cli_testkit_json (&run);
    json_t *items = json_object_get (root, "items");
    size_t index;
    json_t *item;
    assert (json_array_size (items) == 1);
    assert (streq (umb_cli_rest_str (json_array_get (items, 0), "id"), host));
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_backends (url, bob, "get", "-w", S_TEST_WS, "t1", NULL), 0, "driver        test\n",
              NULL);
    run = s_test_backends (url, bob, "get", host, "-w", S_TEST_WS, "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (streq (umb_cli_rest_str (root, "name"), "t1"));
    assert (json_is_object (json_object_get (root, "caps")));
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_backends (url, bob, "get", "-w", S_TEST_WS, "t9", NULL), 1, NULL,
              "umbra: 404 not_found: no host 't9'");
    S_EXPECT (s_test_backends (url, carol, "get", "-w", S_TEST_WS, "t1", NULL), 1, NULL, "umbra: 404 ");

    //  Create: the id printed; three CVMs, one as JSON, one with a manifest
    char *manifest = umb_cli_testkit_write (dir, "manifest.json", "{\"computation\": \"c1\"}");
    run = s_test_cvms (url, bob, "create", "-w", S_TEST_WS, "--tee", "none", "--vcpus", "1",
                       "--memory-mb", "256", "--ttl", "600", "--computation", "first", NULL);
    umb_cli_testkit_expect (&run, 0, "cvm_", NULL);
    char *cvm1 = umb_cli_testkit_first_line (&run);
    assert (strlen (run.out) == strlen (cvm1) + 1);
    umb_cli_testkit_run_free (&run);
    run = s_test_cvms (url, bob, "create", "-w", S_TEST_WS, "--tee", "none", "--vcpus", "1",
                       "--memory-mb", "128", "--host", "t1", "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    char *cvm2 = strdup (umb_cli_rest_str (root, "id"));
    assert (streq (umb_cli_rest_str (root, "state"), "Running"));
    assert (streq (umb_cli_rest_str (root, "host_id"), host));
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    run = s_test_cvms (url, bob, "create", "-w", S_TEST_WS, "--tee", "none", "--vcpus", "1",
                       "--memory-mb", "128", "--manifest", manifest, NULL);
    umb_cli_testkit_expect (&run, 0, "cvm_", NULL);
    char *cvm3 = umb_cli_testkit_first_line (&run);
    umb_cli_testkit_run_free (&run);

    //  ...refused by the service (422, 409, 404), or before anything is sent
    S_EXPECT (s_test_cvms (url, bob, "create", "-w", S_TEST_WS, "--tee", "none", "--vcpus", "1000",
                           "--memory-mb", "256", NULL), 1, NULL, "umbra: 422 ");
    S_EXPECT (s_test_cvms (url, bob, "create", "-w", S_TEST_WS, "--tee", "tdx", "--vcpus", "1",
                           "--memory-mb", "256", NULL), 1, NULL, "umbra: 409 no_host: ");
    S_EXPECT (s_test_cvms (url, bob, "create", "-w", S_TEST_WS, "--tee", "none", "--vcpus", "1",
                           "--memory-mb", "256", "--host", "t9", NULL), 1, NULL, "umbra: 404 ");
    S_EXPECT (s_test_cvms (url, bob, "create", "-w", S_TEST_WS, "--tee", "none", "--vcpus", "1",
                           "--memory-mb", "256", "--manifest", "/nonexistent/m.json", NULL), 1, NULL,
              "umbra: cannot read /nonexistent/m.json: ");
    char *not_json = umb_cli_testkit_write (dir, "bad.json", "{\"a\": ");
    S_EXPECT (s_test_cvms (url, bob, "create", "-w", S_TEST_WS, "--tee", "none", "--vcpus", "1",
                           "--memory-mb", "256", "--manifest", not_json, NULL), 1, NULL, "is not JSON");
    char *big_text = malloc (S_MAX_MANIFEST + 1);
    assert (big_text);
    memset (big_text, ' ', S_MAX_MANIFEST + 1);
    big_text [0] = '{';
    big_text [S_MAX_MANIFEST] = '}';
    char *big = umb_cli_testkit_write_data (dir, "big.json", big_text, S_MAX_MANIFEST + 1);
    free (big_text);
    S_EXPECT (s_test_cvms (url, bob, "manifest", "-w", S_TEST_WS, cvm1, "--manifest", big, NULL), 1,
              NULL, "is larger than a manifest may be (1048576 bytes)");

    //  List: every page, one page, filtered, as JSON
    run = s_test_cvms (url, bob, "list", "-w", S_TEST_WS, "--page-size", "1", NULL);
    umb_cli_testkit_expect (&run, 0, "ID                    STATE", NULL);
    assert (strstr (run.out, cvm1) && strstr (run.out, cvm2) && strstr (run.out, cvm3));
    assert (strstr (run.out, "first") && strstr (run.out, "256 MiB"));
    umb_cli_testkit_run_free (&run);
    run = s_test_cvms (url, bob, "list", "-w", S_TEST_WS, "--page-size", "2", "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (json_array_size (json_object_get (root, "items")) == 3);
    assert (json_is_null (json_object_get (root, "next")));
    //  each once (newest first, but all three may be of one second)
    const char *ids [] = { cvm1, cvm2, cvm3 };
    for (size_t i = 0; i < 3; i++) {
        size_t seen = 0;
        json_array_foreach (json_object_get (root, "items"), index, item)
            seen += streq (umb_cli_rest_str (item, "id"), ids [i]);
        assert (seen == 1);
    }
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    run = s_test_cvms (url, bob, "list", "-w", S_TEST_WS, "--limit", "2", "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (json_array_size (json_object_get (root, "items")) == 2);
    assert (*umb_cli_rest_str (root, "next"));
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    run = s_test_cvms (url, bob, "list", "-w", S_TEST_WS, "--limit", "1", NULL);
    umb_cli_testkit_expect (&run, 0, "cvm_", NULL);
    assert (!!strstr (run.out, cvm1) + !!strstr (run.out, cvm2) + !!strstr (run.out, cvm3) == 1);
    umb_cli_testkit_run_free (&run);
    run = s_test_cvms (url, bob, "list", "-w", S_TEST_WS, "--state", "Destroyed", NULL);
    umb_cli_testkit_expect (&run, 0, "ID ", NULL);
    assert (!strstr (run.out, "cvm_"));
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_cvms (url, bob, "list", "-w", S_TEST_WS, "--limit", "501", NULL), 1, NULL,
              "umbra: 422 ");

    //  Get; a manifest for a CVM with no agent is refused (409)
    run = s_test_cvms (url, bob, "get", "-w", S_TEST_WS, cvm1, NULL);
    umb_cli_testkit_expect (&run, 0, "state         Running\n", NULL);
    assert (strstr (run.out, "computation   first\n") && strstr (run.out, "host          t1 (host_"));
    assert (strstr (run.out, "agent         none (test driver: no guest)"));
    umb_cli_testkit_run_free (&run);
    run = s_test_cvms (url, bob, "get", "-w", S_TEST_WS, cvm2, "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (json_integer_value (json_object_get (root, "memory_mb")) == 128);
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_cvms (url, bob, "get", "-w", S_TEST_WS, "cvm_0000000000000000", NULL), 1, NULL,
              "umbra: 404 not_found: ");
    S_EXPECT (s_test_cvms (url, bob, "manifest", "-w", S_TEST_WS, cvm1, "--manifest", manifest, NULL),
              1, NULL, "umbra: 409 wrong_state: ");

    //  Events: all there are, then nothing (they are acknowledged); from --after again
    run = s_test_cvms (url, bob, "events", "-w", S_TEST_WS, cvm1, NULL);
    umb_cli_testkit_expect (&run, 0, "1  ", NULL);
    assert (strstr (run.out, "  backends  state") && strstr (run.out, "Running"));
    size_t lines = 0;
    for (const char *c = run.out; *c; c++)
        lines += *c == '\n';
    assert (lines >= 2);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_cvms (url, bob, "events", "-w", S_TEST_WS, cvm1, NULL), 0, NULL, NULL);
    run = s_test_cvms (url, bob, "events", "-w", S_TEST_WS, cvm1, NULL);
    assert (run.rc == 0 && *run.out == 0);
    umb_cli_testkit_run_free (&run);
    run = s_test_cvms (url, bob, "events", "-w", S_TEST_WS, cvm1, "--after", "1", "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    size_t json_lines = 0;
    for (char *line = run.out; *line; line = strchr (line, '\n') + 1) {
        char *end = strchr (line, '\n');
        assert (end);
        json_t *event = json_loadb (line, (size_t) (end - line), 0, NULL);
        assert (json_is_object (event));
        assert (json_integer_value (json_object_get (event, "seq")) == (json_int_t) json_lines + 2);
        json_decref (event);
        json_lines++;
    }
    assert (json_lines == lines - 1);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_cvms (url, bob, "events", "-w", S_TEST_WS, "cvm_0000000000000000", NULL), 1,
              NULL, "umbra: 404 ");

    //  Follow: waits for what comes until the CVM is destroyed
    char *follow_argv [] = { strdup ("cvms"), strdup ("events"), strdup ("-w"), strdup (S_TEST_WS),
                             strdup (cvm1), strdup ("--follow"), strdup ("--url"), strdup (url),
                             strdup ("--token"), strdup (bob), NULL };
    char *no_envp [] = { NULL };
    FILE *follow_out = tmpfile (), *follow_err = tmpfile ();
    s_test_follow_t follow;
    assert (s_parse (&follow.cli, "cvms", s_cvms_commands, 10, follow_argv, follow_out,
                     follow_err) == 0);
    assert (s_connect (&follow.cli, no_envp) == 0);
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_test_follow, &follow) == 0);
    S_EXPECT (s_test_cvms (url, carol, "destroy", "-w", S_TEST_WS, cvm1, NULL), 1, NULL, "umbra: 404 ");
    run = s_test_cvms (url, bob, "destroy", "-w", S_TEST_WS, cvm1, "--reason", "done here", NULL);
    umb_cli_testkit_expect (&run, 0, " Destroyed (", NULL);
    assert (strstr (run.out, cvm1) && strstr (run.out, ": done here)"));
    umb_cli_testkit_run_free (&run);
    assert (pthread_join (thread, NULL) == 0);
    s_cli_clear (&follow.cli);
    run.rc = follow.rc;
    run.out = umb_cli_testkit_slurp (follow_out, NULL);
    run.err = umb_cli_testkit_slurp (follow_err, NULL);
    umb_cli_testkit_expect (&run, 0, "Stopping -> Destroyed", NULL);
    umb_cli_testkit_run_free (&run);
    fclose (follow_out);
    fclose (follow_err);
    for (size_t i = 0; follow_argv [i]; i++)
        free (follow_argv [i]);
    //  ...and of a CVM that is over, at once
    run = s_test_cvms (url, bob, "events", "-w", S_TEST_WS, cvm1, "--after", "0", "--follow", NULL);
    umb_cli_testkit_expect (&run, 0, "Running -> Stopping", NULL);
    assert (strstr (run.out, "Destroyed"));
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_cvms (url, bob, "destroy", "-w", S_TEST_WS, cvm1, NULL), 1, NULL,
              "umbra: 409 wrong_state: ");

    //  Remove: refused while CVMs live, then done
    S_EXPECT (s_test_backends (url, alice, "remove", "-w", S_TEST_WS, "t1", NULL), 1, NULL,
              "umbra: 409 host_busy: host 't1' has 2 live CVMs");
    run = s_test_cvms (url, bob, "destroy", "-w", S_TEST_WS, cvm2, "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (streq (umb_cli_rest_str (root, "state"), "Destroyed"));
    json_decref (root);
    umb_cli_testkit_run_free (&run);
    S_EXPECT (s_test_cvms (url, bob, "destroy", "-w", S_TEST_WS, cvm3, NULL), 0, "Destroyed", NULL);
    S_EXPECT (s_test_backends (url, bob, "remove", "-w", S_TEST_WS, "t1", NULL), 1, NULL, "umbra: 403 ");
    S_EXPECT (s_test_backends (url, alice, "remove", "-w", S_TEST_WS, "t1", NULL), 0,
              "removed host t1 (host_", NULL);
    S_EXPECT (s_test_backends (url, alice, "remove", "-w", S_TEST_WS, "t1", NULL), 1, NULL,
              "umbra: 404 ");
    run = s_test_backends (url, alice, "list", "-w", S_TEST_WS, "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    root = umb_cli_testkit_json (&run);
    assert (json_array_size (json_object_get (root, "items")) == 0);
    json_decref (root);
    umb_cli_testkit_run_free (&run);

    //  --token is wiped from argv once read
    char *argv [] = { strdup ("backends"), strdup ("list"), strdup ("-w"), strdup (S_TEST_WS),
                      strdup ("--token"), strdup (alice), NULL };
    char *envp [] = { zsys_sprintf ("UMBRA_CLIENT_URL=%s", url), NULL };
    FILE *out = tmpfile (), *err = tmpfile ();
    assert (umb_cli_backends_run (6, argv, envp, out, err) == 0);
    for (size_t i = 0; i < 6; i++) {
        assert (!strstr (argv [i], alice));
        free (argv [i]);
    }
    fclose (out);
    fclose (err);
    zstr_free (&envp [0]);

    //  The gateway gone: a clear reason, exit 1
    umb_cli_testkit_stop_gateway (kit);
    run = s_test_cvms (url, bob, "list", "-w", S_TEST_WS, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: cannot reach http://127.0.0.1:");
    assert (!strstr (run.err, bob));
    umb_cli_testkit_run_free (&run);

    free (cvm1);
    free (cvm2);
    free (cvm3);
    free (host);
    zstr_free (&manifest);
    zstr_free (&not_json);
    zstr_free (&big);
    free (alice);
    free (bob);
    free (carol);
    umb_cli_testkit_destroy (&kit);
    if (verbose)
        printf ("OK\n");
}
