//  umb_cli_rest - what the gateway's command-line clients share
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "umb_cli_rest.h"
#include "umb_cli_testkit.h"

struct _umb_cli_rest_t {
    umb_config_t      *config;
    umb_http_client_t *client;
    FILE              *err;
    bool               has_token;
};

static const char s_common [] =
    "\n"
    "options of every command:\n"
    "  --url URL       the gateway (setting client.url, UMBRA_CLIENT_URL; default http://127.0.0.1:8080)\n"
    "  --token TOKEN   access token or API key (setting client.token, UMBRA_CLIENT_TOKEN;\n"
    "                  prefer the variable: arguments are visible to other users)\n"
    "  --config FILE   settings file\n"
    "exit codes: 0 done, 1 refused or failed (reason on stderr), 2 usage error\n";

umb_cli_rest_t *
umb_cli_rest_new (const char *config_path, char **envp, const char *url, const char *token,
                  FILE *err, int *exit_code)
{
    assert (envp && err && exit_code);
    umb_cli_rest_t *self = calloc (1, sizeof (umb_cli_rest_t));
    assert (self);
    self->err = err;
    self->config = umb_config_new ();
    assert (self->config);
    char *error = NULL;
    if ((config_path && umb_config_load_file (self->config, config_path, &error))
    ||  umb_config_load_env (self->config, envp, &error)
    ||  (url && umb_config_set (self->config, "client.url", url, &error))
    ||  (token && umb_config_set (self->config, "client.token", token, &error))) {
        fprintf (err, "umbra: %s\n", error ? error : "invalid settings");
        free (error);
        *exit_code = UMB_CLI_REST_EXIT_USAGE;
        umb_cli_rest_destroy (&self);
        return NULL;
    }
    const char *bearer = umb_config_str (self->config, "client.token");
    self->has_token = *bearer != 0;
    self->client = umb_http_client_new (umb_config_str (self->config, "client.url"), bearer);
    if (!self->client) {
        fprintf (err, "umbra: libcurl cannot start\n");
        *exit_code = UMB_CLI_REST_EXIT_FAILED;
        umb_cli_rest_destroy (&self);
        return NULL;
    }
    *exit_code = UMB_CLI_REST_EXIT_OK;
    return self;
}

void
umb_cli_rest_destroy (umb_cli_rest_t **self_p)
{
    assert (self_p);
    umb_cli_rest_t *self = *self_p;
    if (self) {
        umb_http_client_destroy (&self->client);
        umb_config_destroy (&self->config);
        free (self);
        *self_p = NULL;
    }
}

umb_config_t *
umb_cli_rest_config (umb_cli_rest_t *self)
{
    assert (self);
    return self->config;
}

umb_http_client_t *
umb_cli_rest_client (umb_cli_rest_t *self)
{
    assert (self);
    return self->client;
}

int
umb_cli_rest_call (umb_cli_rest_t *self, const char *method, const char *path, json_t *body,
                   umb_http_response_t *response)
{
    assert (self && method && path && response);
    bool with_body = strcmp (method, "POST") == 0 || strcmp (method, "PUT") == 0
                  || strcmp (method, "PATCH") == 0;
    char *json = with_body && body ? json_dumps (body, JSON_COMPACT) : NULL;
    int rc = with_body ? umb_http_client_send (self->client, method, path, json ? json : "{}",
                                               response)
           : strcmp (method, "DELETE") == 0 ? umb_http_client_delete (self->client, path, response)
           : umb_http_client_get (self->client, path, response);
    if (json) {
        sodium_memzero (json, strlen (json));
        free (json);
    }
    if (rc) {
        fprintf (self->err, "umbra: %s\n", umb_http_client_error (self->client));
        return -1;
    }
    if (response->status < 200 || response->status > 299) {
        char text [1024];
        umb_http_response_describe (response, text, sizeof (text));
        fprintf (self->err, "umbra: %s%s\n", text, response->status == 401 && !self->has_token
                 ? " (no token given: set UMBRA_CLIENT_TOKEN or pass --token)" : "");
        umb_http_response_clear (response);
        return -1;
    }
    return 0;
}

json_t *
umb_cli_rest_call_json (umb_cli_rest_t *self, const char *method, const char *path, json_t *body)
{
    umb_http_response_t response;
    if (umb_cli_rest_call (self, method, path, body, &response))
        return NULL;
    json_t *root = umb_http_response_is_json (&response)
                 ? json_loadb (response.body, response.size, 0, NULL) : NULL;
    if (!json_is_object (root)) {
        fprintf (self->err, "umbra: %s %s answered %d without a JSON object\n", method, path,
                 response.status);
        json_decref (root);
        root = NULL;
    }
    umb_http_response_clear (&response);
    return root;
}

int
umb_cli_rest_answer (FILE *out, bool json, json_t *root)
{
    assert (out);
    if (!root)
        return UMB_CLI_REST_EXIT_FAILED;
    if (json)
        umb_cli_rest_print_json (out, root);
    json_decref (root);
    return UMB_CLI_REST_EXIT_OK;
}

json_t *
umb_cli_rest_list (umb_cli_rest_t *self, const char *path, int64_t limit, int64_t page_size)
{
    assert (self && path);
    json_t *all = json_array ();
    json_t *last = NULL;
    char *cursor = NULL;
    bool failed = false;
    do {
        char *page = strdup (path);
        assert (page);
        if (limit || page_size)
            umb_cli_rest_query_int (&page, "limit", limit ? limit : page_size);
        if (cursor)
            umb_cli_rest_query (&page, "cursor", cursor);
        free (cursor);
        cursor = NULL;
        json_decref (last);
        last = umb_cli_rest_call_json (self, "GET", page, NULL);
        free (page);
        json_t *items = json_object_get (last, "items");
        if (last && !json_is_array (items))
            fprintf (self->err, "umbra: the answer holds no items\n");
        if (!json_is_array (items)) {
            failed = true;
            break;
        }
        json_array_extend (all, items);
        const char *next = json_string_value (json_object_get (last, "next"));
        if (next && *next && !limit)
            cursor = strdup (next);
    } while (cursor);
    if (failed) {
        json_decref (last);
        last = NULL;
    }
    else
    if (!limit) {
        //  Every page as one, with no next
        json_object_set (last, "items", all);
        json_object_set_new (last, "next", json_null ());
    }
    json_decref (all);
    return last;
}

void
umb_cli_rest_query (char **path_p, const char *name, const char *value)
{
    assert (path_p && *path_p && name && value);
    char *escaped = umb_http_client_escape (value);
    char *path = NULL;
    char separator = strchr (*path_p, '?') ? '&' : '?';
    if (asprintf (&path, "%s%c%s=%s", *path_p, separator, name, escaped) < 0)
        path = NULL;
    assert (path);
    free (escaped);
    free (*path_p);
    *path_p = path;
}

void
umb_cli_rest_query_int (char **path_p, const char *name, int64_t value)
{
    char text [32];
    snprintf (text, sizeof (text), "%" PRId64, value);
    umb_cli_rest_query (path_p, name, text);
}

bool
umb_cli_rest_is_help (const char *arg)
{
    assert (arg);
    return strcmp (arg, "help") == 0 || strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0;
}

void
umb_cli_rest_getopt_start (int *argc_p, char ***argv_p)
{
    assert (argc_p && *argc_p >= 1 && argv_p);
    (*argc_p)--;
    (*argv_p)++;
    optind = 0;
    opterr = 0;
}

int
umb_cli_rest_getopt (int argc, char **argv, const char *shortopts, const struct option *options,
                     char *name, size_t size)
{
    assert (argv && shortopts && options && name && size);
    int index = -1;
    int option = getopt_long (argc, argv, shortopts, options, &index);
    if (option != -1)
        snprintf (name, size, "%s%s", index >= 0 ? "--" : "",
                  index >= 0 ? options [index].name : argv [optind - 1]);
    return option;
}

int
umb_cli_rest_option_error (FILE *err, int option, const char *arg, const char *group,
                           const char *command)
{
    assert (err && arg && group && command);
    if (option == ':')
        fprintf (err, "umbra: %s needs a value\n", arg);
    else
        fprintf (err, "umbra: unknown option '%s' for %s %s\n", arg, group, command);
    return UMB_CLI_REST_EXIT_USAGE;
}

int
umb_cli_rest_number (FILE *err, const char *name, const char *text, int64_t min, int64_t *value)
{
    assert (err && name && text && value);
    char *end = NULL;
    errno = 0;
    long long number = strtoll (text, &end, 10);
    if (errno || end == text || *end || *text == '-' || *text == '+' || number < min) {
        fprintf (err, "umbra: %s takes a number%s, not '%s'\n", name, min > 0 ? " above 0" : "",
                 text);
        return -1;
    }
    *value = number;
    return 0;
}

bool
umb_cli_rest_one_of (const char *value, const char *const *choices)
{
    assert (value && choices);
    for (size_t i = 0; choices [i]; i++)
        if (strcmp (value, choices [i]) == 0)
            return true;
    return false;
}

void
umb_cli_rest_take_secret (char **secret_p, char *arg)
{
    assert (secret_p && arg);
    umb_cli_rest_wipe (secret_p);
    *secret_p = strdup (arg);
    assert (*secret_p);
    sodium_memzero (arg, strlen (arg));
}

void
umb_cli_rest_wipe (char **secret_p)
{
    assert (secret_p);
    if (*secret_p) {
        sodium_memzero (*secret_p, strlen (*secret_p));
        free (*secret_p);
        *secret_p = NULL;
    }
}

const char *
umb_cli_rest_str (json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    return value ? value : "";
}

long long
umb_cli_rest_int (json_t *object, const char *key)
{
    return (long long) json_integer_value (json_object_get (object, key));
}

void
umb_cli_rest_time (json_t *object, const char *key, char *text, size_t size)
{
    json_t *value = json_object_get (object, key);
    time_t seconds = (time_t) json_integer_value (value);
    struct tm tm;
    if (!json_is_integer (value) || !gmtime_r (&seconds, &tm))
        snprintf (text, size, "-");
    else
        strftime (text, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
umb_cli_rest_print_json (FILE *out, json_t *value)
{
    char *text = json_dumps (value, JSON_INDENT (2));
    if (text)
        fprintf (out, "%s\n", text);
    free (text);
}

void
umb_cli_rest_print_text (FILE *out, const char *text)
{
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        fputc (*c < 0x20 || *c == 0x7f ? '?' : *c, out);
}

void
umb_cli_rest_print_event (FILE *out, json_t *event, bool json)
{
    if (json) {
        char *text = json_dumps (event, JSON_COMPACT);
        if (text)
            fprintf (out, "%s\n", text);
        free (text);
        return;
    }
    char time [32];
    umb_cli_rest_time (event, "time", time, sizeof (time));
    fprintf (out, "%lld  %s  %-8s  %-7s  %-10s  ", umb_cli_rest_int (event, "seq"), time,
             umb_cli_rest_str (event, "source"), umb_cli_rest_str (event, "type"),
             umb_cli_rest_str (event, "state"));
    umb_cli_rest_print_text (out, umb_cli_rest_str (event, "message"));
    fputc ('\n', out);
}

void
umb_cli_rest_usage (FILE *stream, const char *usage)
{
    fputs ("  ", stream);
    for (const char *c = usage; *c; c++)
        if (*c == '\n')
            fputs ("\n  ", stream);
        else
            fputc (*c, stream);
    fputc ('\n', stream);
}

void
umb_cli_rest_usage_group (FILE *stream, const char *group)
{
    fprintf (stream, "usage: umbra %s COMMAND [OPTIONS]\n\ncommands:\n", group);
}

void
umb_cli_rest_usage_command (FILE *stream, const char *group, const char *usage)
{
    fprintf (stream, "usage: umbra %s\n", group);
    umb_cli_rest_usage (stream, usage);
}

void
umb_cli_rest_usage_common (FILE *stream)
{
    fputs (s_common, stream);
}

//  ---------------------------------------------------------------- selftest
//  Calls that reach a gateway are tested by umb_cli_certs and umb_cli_backends,
//  lists of many pages by umb_cli_backends and umb_cli_computations.

//  What was written to stream, which is emptied for what follows.
static char *
s_test_text (FILE *stream)
{
    char *text = umb_cli_testkit_slurp (stream, NULL);
    rewind (stream);
    assert (ftruncate (fileno (stream), 0) == 0);
    return text;
}

void
umb_cli_rest_test (bool verbose)
{
    if (verbose)
        printf (" * umb_cli_rest: ");
    FILE *err = tmpfile ();
    assert (err);

    //  Settings: a bad URL is a usage error; the flags win over the variables
    char *envp [] = { (char *) "UMBRA_CLIENT_URL=http://127.0.0.1:1", NULL };
    int exit_code = -1;
    umb_cli_rest_t *rest = umb_cli_rest_new (NULL, envp, "ftp://x", NULL, err, &exit_code);
    assert (!rest && exit_code == UMB_CLI_REST_EXIT_USAGE);
    char *text = s_test_text (err);
    assert (strstr (text, "umbra: ") && strstr (text, "client.url"));
    free (text);
    rest = umb_cli_rest_new ("/nonexistent/umbra.conf", envp, NULL, NULL, err, &exit_code);
    assert (!rest && exit_code == UMB_CLI_REST_EXIT_USAGE);
    free (s_test_text (err));
    rest = umb_cli_rest_new (NULL, envp, NULL, "s3cret", err, &exit_code);
    assert (rest && exit_code == UMB_CLI_REST_EXIT_OK);
    assert (strcmp (umb_config_str (umb_cli_rest_config (rest), "client.url"),
                    "http://127.0.0.1:1") == 0);
    assert (umb_cli_rest_client (rest));

    //  Nobody there: why, on err, never the token
    umb_http_response_t response;
    assert (umb_cli_rest_call (rest, "DELETE", "/x", NULL, &response) == -1);
    assert (!umb_cli_rest_call_json (rest, "POST", "/x", NULL));
    assert (!umb_cli_rest_list (rest, "/x", 0, 10));
    text = s_test_text (err);
    assert (strncmp (text, "umbra: cannot reach http://127.0.0.1:1", 38) == 0);
    assert (!strstr (text, "s3cret"));
    free (text);
    umb_cli_rest_destroy (&rest);
    umb_cli_rest_destroy (&rest);

    //  Secrets taken from arguments
    char arg [] = "t0k3n", other [] = "again";
    char *secret = NULL;
    umb_cli_rest_take_secret (&secret, arg);
    assert (strcmp (secret, "t0k3n") == 0 && arg [0] == 0);
    umb_cli_rest_take_secret (&secret, other);
    assert (strcmp (secret, "again") == 0 && other [0] == 0);
    umb_cli_rest_wipe (&secret);
    assert (!secret);
    umb_cli_rest_wipe (&secret);

    //  Queries, escaped; numbers and choices from options
    char *path = strdup ("/workspaces/lab/cvms");
    umb_cli_rest_query (&path, "state", "Running");
    umb_cli_rest_query (&path, "name", "a b&c");
    umb_cli_rest_query_int (&path, "limit", -25);
    assert (strcmp (path, "/workspaces/lab/cvms?state=Running&name=a%20b%26c&limit=-25") == 0);
    free (path);
    int64_t number = -1;
    assert (umb_cli_rest_number (err, "--after", "0", 0, &number) == 0 && number == 0);
    assert (umb_cli_rest_number (err, "-l", "42", 1, &number) == 0 && number == 42);
    assert (umb_cli_rest_number (err, "--limit", "0", 1, &number) == -1 && number == 42);
    assert (umb_cli_rest_number (err, "--after", "-1", 0, &number) == -1);
    assert (umb_cli_rest_number (err, "--after", "+1", 0, &number) == -1);
    assert (umb_cli_rest_number (err, "--after", "", 0, &number) == -1);
    assert (umb_cli_rest_number (err, "--after", "1x", 0, &number) == -1);
    assert (umb_cli_rest_number (err, "--after", "99999999999999999999", 0, &number) == -1);
    text = s_test_text (err);
    assert (strncmp (text, "umbra: --limit takes a number above 0, not '0'\n"
                           "umbra: --after takes a number, not '-1'\n", 87) == 0);
    free (text);
    assert (umb_cli_rest_is_help ("help") && umb_cli_rest_is_help ("-h"));
    assert (!umb_cli_rest_is_help ("list") && !umb_cli_rest_is_help ("--helper"));
    const struct option options [] = {
        { "limit", required_argument, NULL, 'l' }, { "json", no_argument, NULL, 'j' },
        { NULL, 0, NULL, 0 }
    };
    char *words [] = { (char *) "cvms", (char *) "list", (char *) "--limit", (char *) "5",
                       (char *) "-j", (char *) "--bogus", (char *) "--limit", NULL };
    int argc = 7;
    char **argv = words;
    char name [16];
    umb_cli_rest_getopt_start (&argc, &argv);
    assert (argc == 6 && argv == words + 1 && optind == 0 && opterr == 0);
    assert (umb_cli_rest_getopt (argc, argv, ":j", options, name, sizeof (name)) == 'l');
    assert (strcmp (name, "--limit") == 0 && strcmp (optarg, "5") == 0);
    assert (umb_cli_rest_getopt (argc, argv, ":j", options, name, sizeof (name)) == 'j');
    assert (strcmp (name, "-j") == 0);
    int option = umb_cli_rest_getopt (argc, argv, ":j", options, name, sizeof (name));
    assert (umb_cli_rest_option_error (err, option, argv [optind - 1], "cvms", "list")
            == UMB_CLI_REST_EXIT_USAGE);
    option = umb_cli_rest_getopt (argc, argv, ":j", options, name, sizeof (name));
    assert (option == ':');
    assert (umb_cli_rest_option_error (err, option, argv [optind - 1], "cvms", "list")
            == UMB_CLI_REST_EXIT_USAGE);
    assert (umb_cli_rest_getopt (argc, argv, ":j", options, name, sizeof (name)) == -1);
    text = s_test_text (err);
    assert (strcmp (text, "umbra: unknown option '--bogus' for cvms list\n"
                          "umbra: --limit needs a value\n") == 0);
    free (text);
    const char *const choices [] = { "none", "tdx", NULL };
    assert (umb_cli_rest_one_of ("tdx", choices));
    assert (!umb_cli_rest_one_of ("TDX", choices) && !umb_cli_rest_one_of ("", choices));

    //  Values from answers
    json_t *object = json_pack ("{s:s, s:I, s:n}", "name", "h1", "at", (json_int_t) 86400, "gone");
    assert (umb_cli_rest_int (object, "at") == 86400);
    assert (umb_cli_rest_int (object, "name") == 0 && umb_cli_rest_int (NULL, "at") == 0);
    assert (strcmp (umb_cli_rest_str (object, "name"), "h1") == 0);
    assert (strcmp (umb_cli_rest_str (object, "at"), "") == 0);
    assert (strcmp (umb_cli_rest_str (NULL, "name"), "") == 0);
    char when [32];
    umb_cli_rest_time (object, "at", when, sizeof (when));
    assert (strcmp (when, "1970-01-02T00:00:00Z") == 0);
    umb_cli_rest_time (object, "gone", when, sizeof (when));
    assert (strcmp (when, "-") == 0);
    umb_cli_rest_print_json (err, object);
    umb_cli_rest_usage (err, "one\ntwo");
    umb_cli_rest_usage_common (err);
    text = s_test_text (err);
    json_t *back = json_loadb (text, strcspn (text, "}") + 1, 0, NULL);
    assert (json_equal (back, object));
    assert (strstr (text, "}\n  one\n  two\n\noptions of every command:"));
    free (text);
    json_decref (back);
    umb_cli_rest_usage_group (err, "cvms");
    umb_cli_rest_usage_command (err, "cvms", "list\n  x");
    text = s_test_text (err);
    assert (strcmp (text, "usage: umbra cvms COMMAND [OPTIONS]\n\ncommands:\n"
                          "usage: umbra cvms\n  list\n    x\n") == 0);
    free (text);

    //  Answers: printed as JSON when asked for, and freed; a failed call
    assert (umb_cli_rest_answer (err, true, object) == UMB_CLI_REST_EXIT_OK);
    assert (umb_cli_rest_answer (err, false, json_object ()) == UMB_CLI_REST_EXIT_OK);
    assert (umb_cli_rest_answer (err, true, NULL) == UMB_CLI_REST_EXIT_FAILED);
    text = s_test_text (err);
    assert (strncmp (text, "{\n  \"name\": \"h1\",", 17) == 0 && text [strlen (text) - 2] == '}');
    free (text);
    fclose (err);
    if (verbose)
        printf ("OK\n");
}
