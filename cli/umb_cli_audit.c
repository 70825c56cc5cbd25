//  umb_cli_audit - `umbra audit verify`: a workspace's audit trail, verified here
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <jansson.h>
#include "umb_cli_audit.h"
#include "umb_cli_rest.h"
#include "umb_http_client.h"
#include "umb_audit.h"
#include "umb_utf8.h"

#define S_EXIT_OK      UMB_CLI_REST_EXIT_OK
#define S_EXIT_FAILED  UMB_CLI_REST_EXIT_FAILED
#define S_EXIT_USAGE   UMB_CLI_REST_EXIT_USAGE

#define S_PAGE         500              //  records asked for at a time
#define S_HEAD_MAX     128              //  a head file is "SEQ HASH\n"

static const struct option s_options [] = {
    { "workspace",  required_argument, NULL, 'w' },
    { "json",       no_argument,       NULL, 'j' },
    { "anchor-dir", required_argument, NULL, 'a' },
    { "url",        required_argument, NULL, 'u' },
    { "token",      required_argument, NULL, 'T' },
    { "config",     required_argument, NULL, 'c' },
    { "help",       no_argument,       NULL, 'h' },
    { NULL, 0, NULL, 0 }
};

static const char s_verify_usage [] =
    "verify --workspace WS [--json] [--anchor-dir DIR]\n"
    "       fetches the workspace's audit trail and checks every record's hash, that seq\n"
    "       grows by one and each prev is the hash before it; keeps the last verified head\n"
    "       in DIR/WS.head (default $XDG_DATA_HOME/umbra/audit) and requires the trail to\n"
    "       still hold it next time, so a trail cut short is caught";

//  One run of the command: what was asked, and where to say things.
typedef struct {
    FILE           *out;
    FILE           *err;
    umb_cli_rest_t *rest;
    const char     *workspace;
    bool            json;
    char           *anchor_dir;         //  the option's value or the default
    char           *head_path;          //  anchor_dir/WS.head
} s_cli_t;

static void
s_usage (FILE *stream)
{
    umb_cli_rest_usage_group (stream, "audit");
    umb_cli_rest_usage (stream, s_verify_usage);
    umb_cli_rest_usage_common (stream);
}

//  The value of name in envp, or NULL.
static const char *
s_env (char **envp, const char *name)
{
    size_t length = strlen (name);
    for (size_t i = 0; envp [i]; i++)
        if (strncmp (envp [i], name, length) == 0 && envp [i][length] == '=')
            return envp [i] + length + 1;
    return NULL;
}

//  ---------------------------------------------------------------- the head file

//  Creates dir and its parents, private. 0 or -1 (errno set).
static int
s_make_dirs (const char *dir)
{
    char *copy = strdup (dir);
    assert (copy);
    int rc = 0;
    for (char *slash = strchr (copy + 1, '/'); slash && rc == 0; slash = strchr (slash + 1, '/')) {
        *slash = 0;
        if (*copy && mkdir (copy, 0700) && errno != EEXIST)
            rc = -1;
        *slash = '/';
    }
    if (rc == 0 && mkdir (copy, 0700) && errno != EEXIST)
        rc = -1;
    free (copy);
    return rc;
}

//  Reads the head seen before: 0 with *seq 0 when there is none, 0 with it,
//  or -1 having said why.
static int
s_head_read (s_cli_t *cli, int64_t *seq, char hash [65])
{
    *seq = 0;
    int fd = open (cli->head_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0) {
        fprintf (cli->err, "umbra: cannot read %s: %s\n", cli->head_path, strerror (errno));
        return -1;
    }
    char text [S_HEAD_MAX + 1];
    ssize_t size = read (fd, text, S_HEAD_MAX);
    int error = errno;
    close (fd);
    if (size < 0) {
        fprintf (cli->err, "umbra: cannot read %s: %s\n", cli->head_path, strerror (error));
        return -1;
    }
    text [size] = 0;
    //  Exactly "SEQ HASH\n": SEQ a positive decimal, HASH 64 lowercase hex
    char *end = NULL;
    errno = 0;
    long long number = text [0] >= '1' && text [0] <= '9' ? strtoll (text, &end, 10) : 0;
    bool valid = errno == 0 && number > 0 && end && *end == ' '
              && strspn (end + 1, "0123456789abcdef") == 64 && strcmp (end + 65, "\n") == 0;
    if (!valid) {
        fprintf (cli->err, "umbra: %s is not an audit head (SEQ HASH); remove it only if you "
                 "trust the trail as it is now\n", cli->head_path);
        return -1;
    }
    *seq = number;
    memcpy (hash, end + 1, 64);
    hash [64] = 0;
    return 0;
}

//  Replaces the head file atomically (a private temporary file, renamed).
//  0, or -1 having said why.
static int
s_head_write (s_cli_t *cli, int64_t seq, const char *hash)
{
    if (s_make_dirs (cli->anchor_dir)) {
        fprintf (cli->err, "umbra: cannot create %s: %s\n", cli->anchor_dir, strerror (errno));
        return -1;
    }
    char *temporary = NULL;
    if (asprintf (&temporary, "%s.XXXXXX", cli->head_path) < 0)
        temporary = NULL;
    assert (temporary);
    char text [S_HEAD_MAX];
    int length = snprintf (text, sizeof (text), "%" PRId64 " %s\n", seq, hash);
    assert (length > 0 && length < (int) sizeof (text));
    int fd = mkostemp (temporary, O_CLOEXEC);
    int rc = fd < 0 || fchmod (fd, 0600)
          || write (fd, text, (size_t) length) != length || fsync (fd) ? -1 : 0;
    int error = errno;
    if (fd >= 0 && close (fd) && rc == 0) {
        rc = -1;
        error = errno;
    }
    if (rc == 0 && rename (temporary, cli->head_path)) {
        rc = -1;
        error = errno;
    }
    if (rc) {
        if (fd >= 0)
            unlink (temporary);
        fprintf (cli->err, "umbra: cannot write %s: %s\n", cli->head_path, strerror (error));
    }
    else {
        //  The rename itself made durable
        int dir = open (cli->anchor_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir >= 0) {
            fsync (dir);
            close (dir);
        }
    }
    free (temporary);
    return rc;
}

//  ---------------------------------------------------------------- records from the gateway

//  Copies the string at key into dest (size bytes); false when it is not a
//  string that fits, without NULs.
static bool
s_copy_string (json_t *item, const char *key, char *dest, size_t size)
{
    json_t *value = json_object_get (item, key);
    if (!json_is_string (value) || json_string_length (value) >= size
    ||  strlen (json_string_value (value)) != json_string_length (value))
        return false;
    memcpy (dest, json_string_value (value), json_string_length (value) + 1);
    return true;
}

//  Reads one record of an answer. 0, or -1 with the reason.
static int
s_record_read (json_t *item, umb_audit_record_t *record, char *reason, size_t size)
{
    json_t *seq = json_object_get (item, "seq");
    json_t *when = json_object_get (item, "time");
    json_t *detail = json_object_get (item, "detail");
    const char *bad = !json_is_object (item) ? "it is not an object"
                    : !json_is_integer (seq) ? "'seq' is not an integer"
                    : !json_is_integer (when) ? "'time' is not an integer"
                    : NULL;
    if (!bad) {
        record->seq = json_integer_value (seq);
        record->time = json_integer_value (when);
        bad = !s_copy_string (item, "computation", record->computation, sizeof (record->computation))
              ? "'computation' is not a string of at most 39 bytes"
            : !s_copy_string (item, "actor", record->actor, sizeof (record->actor))
              ? "'actor' is not a string of at most 63 bytes"
            : !s_copy_string (item, "action", record->action, sizeof (record->action))
              ? "'action' is not a string of at most 31 bytes"
            : !s_copy_string (item, "prev", record->prev, sizeof (record->prev))
              ? "'prev' is not a string of at most 64 bytes"
            : !s_copy_string (item, "hash", record->hash, sizeof (record->hash))
              ? "'hash' is not a string of at most 64 bytes"
            : !json_is_string (detail)
              || strlen (json_string_value (detail)) != json_string_length (detail)
              ? "'detail' is not a string" : NULL;
    }
    if (bad) {
        if (json_is_integer (seq))
            snprintf (reason, size, "unreadable answer: record %" JSON_INTEGER_FORMAT ": %s",
                      json_integer_value (seq), bad);
        else
            snprintf (reason, size, "unreadable answer: a record: %s", bad);
        return -1;
    }
    record->detail = strdup (json_string_value (detail));
    assert (record->detail);
    return 0;
}

//  Fetches and verifies the trail, page by page. S_EXIT_OK with the verifier
//  ended, S_EXIT_FAILED with the reason (refused) or having said why (the
//  gateway failed: *reason stays "").
static int
s_fetch (s_cli_t *cli, umb_audit_verifier_t *verifier, char *reason, size_t size)
{
    char *workspace = umb_http_client_escape (cli->workspace);
    assert (workspace);
    int rc = S_EXIT_OK;
    bool done = false;
    while (rc == S_EXIT_OK && !done) {
        int64_t after = umb_audit_verifier_last_seq (verifier);
        char *path = NULL;
        if (asprintf (&path, "/workspaces/%s/audit?after=%" PRId64 "&limit=%d", workspace, after,
                      S_PAGE) < 0)
            path = NULL;
        assert (path);
        umb_http_response_t response;
        if (umb_cli_rest_call (cli->rest, "GET", path, NULL, &response)) {
            free (path);
            rc = S_EXIT_FAILED;
            break;
        }
        json_t *root = umb_http_response_is_json (&response)
                     ? json_loadb (response.body, response.size, 0, NULL) : NULL;
        umb_http_response_clear (&response);
        json_t *records = json_object_get (root, "records");
        json_t *last = json_object_get (root, "last");
        if (!json_is_array (records) || !json_is_integer (last) || json_integer_value (last) < 0) {
            snprintf (reason, size, "unreadable answer: GET %s did not answer a JSON object "
                      "{\"records\": [...], \"last\": N}", path);
            rc = S_EXIT_FAILED;
        }
        size_t index;
        json_t *item;
        json_array_foreach (records, index, item) {
            if (rc != S_EXIT_OK)
                break;
            umb_audit_record_t record = { .seq = 0 };
            if (s_record_read (item, &record, reason, size)
            ||  umb_audit_verifier_feed (verifier, &record, reason, size))
                rc = S_EXIT_FAILED;
            umb_audit_record_clear (&record);
        }
        if (rc == S_EXIT_OK) {
            int64_t seen = umb_audit_verifier_last_seq (verifier);
            if (seen >= json_integer_value (last))
                done = true;
            else
            if (seen == after) {
                //  No progress: the answer cannot be trusted to ever reach last
                snprintf (reason, size, "unreadable answer: no records after record %" PRId64
                          ", though the trail's last is %" JSON_INTEGER_FORMAT, after,
                          json_integer_value (last));
                rc = S_EXIT_FAILED;
            }
        }
        json_decref (root);
        free (path);
    }
    free (workspace);
    if (rc == S_EXIT_OK && umb_audit_verifier_end (verifier, reason, size))
        rc = S_EXIT_FAILED;
    return rc;
}

static int
s_verify (s_cli_t *cli)
{
    int64_t anchor_seq = 0;
    char anchor_hash [65] = "";
    if (s_head_read (cli, &anchor_seq, anchor_hash))
        return S_EXIT_FAILED;
    umb_audit_verifier_t *verifier = umb_audit_verifier_new (anchor_seq, anchor_seq ? anchor_hash : NULL);
    char reason [512] = "";
    int rc = s_fetch (cli, verifier, reason, sizeof (reason));
    int64_t seq = umb_audit_verifier_last_seq (verifier);
    const char *hash = umb_audit_verifier_last_hash (verifier);
    if (rc == S_EXIT_OK && seq > 0 && s_head_write (cli, seq, hash))
        rc = S_EXIT_FAILED;         //  verified, but next time could not tell a truncation
    else
    if (rc == S_EXIT_OK) {
        if (cli->json) {
            json_t *answer = json_pack ("{s:s, s:b, s:I, s:{s:I, s:s}}", "workspace", cli->workspace,
                                        "verified", 1, "records", (json_int_t) seq, "head", "seq",
                                        (json_int_t) seq, "hash", hash);
            assert (answer);
            //  Left out when the path is not UTF-8
            json_object_set_new (answer, "head_file", json_string (cli->head_path));
            json_object_set_new (answer, "anchor", anchor_seq
                                 ? json_pack ("{s:I, s:s}", "seq", (json_int_t) anchor_seq, "hash", anchor_hash)
                                 : json_null ());
            umb_cli_rest_print_json (cli->out, answer);
            json_decref (answer);
        }
        else
            fprintf (cli->out, "audit trail of %s verified: %" PRId64 " records, head %" PRId64 " %s\n",
                     cli->workspace, seq, seq, hash);
    }
    else
    if (*reason) {
        fprintf (cli->err, "refused: %s\n", reason);
        if (cli->json) {
            json_t *answer = json_pack ("{s:s, s:b, s:s}", "workspace", cli->workspace, "verified", 0,
                                        "reason", reason);
            assert (answer);
            umb_cli_rest_print_json (cli->out, answer);
            json_decref (answer);
        }
    }
    umb_audit_verifier_destroy (&verifier);
    return rc;
}

//  ---------------------------------------------------------------- command line

//  The head file's place: --anchor-dir or the default from envp. 0, or
//  S_EXIT_USAGE having said why.
static int
s_anchor_paths (s_cli_t *cli, const char *anchor_dir, char **envp)
{
    const char *xdg = s_env (envp, "XDG_DATA_HOME");
    const char *home = s_env (envp, "HOME");
    if (anchor_dir)
        cli->anchor_dir = strdup (anchor_dir);
    else
    if (xdg && *xdg == '/') {
        if (asprintf (&cli->anchor_dir, "%s/umbra/audit", xdg) < 0)
            cli->anchor_dir = NULL;
    }
    else
    if (home && *home) {
        if (asprintf (&cli->anchor_dir, "%s/.local/share/umbra/audit", home) < 0)
            cli->anchor_dir = NULL;
    }
    else {
        fprintf (cli->err, "umbra: neither XDG_DATA_HOME nor HOME is set: pass --anchor-dir DIR\n");
        return S_EXIT_USAGE;
    }
    assert (cli->anchor_dir);
    //  Any workspace name is one file name: '/' and the like are escaped
    char *name = umb_http_client_escape (cli->workspace);
    assert (name);
    if (asprintf (&cli->head_path, "%s/%s.head", cli->anchor_dir, name) < 0)
        cli->head_path = NULL;
    assert (cli->head_path);
    free (name);
    return S_EXIT_OK;
}

int
umb_cli_audit_run (int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    assert (argc >= 1 && argv && envp && out && err);
    if (argc < 2) {
        s_usage (err);
        return S_EXIT_USAGE;
    }
    if (umb_cli_rest_is_help (argv [1])) {
        s_usage (out);
        return S_EXIT_OK;
    }
    if (strcmp (argv [1], "verify") != 0) {
        fprintf (err, "umbra: unknown audit command '%s'\n", argv [1]);
        s_usage (err);
        return S_EXIT_USAGE;
    }
    s_cli_t cli = { .out = out, .err = err };
    const char *url = NULL, *config_path = NULL, *anchor_dir = NULL;
    char *token = NULL;
    int rc = S_EXIT_OK;
    int option;
    umb_cli_rest_getopt_start (&argc, &argv);
    char name [64];                 //  how the user wrote the option, for messages
    while (rc == S_EXIT_OK
       &&  (option = umb_cli_rest_getopt (argc, argv, ":", s_options, name, sizeof (name))) != -1) {
        const char **value = NULL;
        switch (option) {
            case 'w': value = &cli.workspace; break;
            case 'a': value = &anchor_dir; break;
            case 'j': cli.json = true; break;
            case 'u': url = optarg; break;
            case 'T': umb_cli_rest_take_secret (&token, optarg); break;
            case 'c': config_path = optarg; break;
            case 'h':
                umb_cli_rest_usage_command (out, "audit", s_verify_usage);
                umb_cli_rest_usage_common (out);
                rc = -1;
                break;
            default:
                rc = umb_cli_rest_option_error (err, option, argv [optind - 1], "audit", "verify");
                break;
        }
        if (value && *value) {
            fprintf (err, "umbra: '%s' is given twice\n", name);
            rc = S_EXIT_USAGE;
        }
        else
        if (value)
            *value = optarg;
    }
    bool help = rc == -1;
    if (help)
        rc = S_EXIT_OK;
    else
    if (rc == S_EXIT_OK) {
        if (argc > optind) {
            fprintf (err, "umbra: audit verify takes no arguments\n");
            rc = S_EXIT_USAGE;
        }
        else
        if (!cli.workspace) {
            fprintf (err, "umbra: audit verify needs --workspace WS\n");
            rc = S_EXIT_USAGE;
        }
        else
        if (!*cli.workspace || (anchor_dir && !*anchor_dir)) {
            fprintf (err, "umbra: an empty value\n");
            rc = S_EXIT_USAGE;
        }
        else
        if (strcmp (cli.workspace, ".") == 0 || strcmp (cli.workspace, "..") == 0
        ||  !umb_utf8_valid (cli.workspace, strlen (cli.workspace))) {
            fprintf (err, "umbra: '%s' is not a workspace\n", cli.workspace);
            rc = S_EXIT_USAGE;
        }
        if (rc)
            umb_cli_rest_usage_command (err, "audit", s_verify_usage);
    }
    if (rc == S_EXIT_OK && !help)
        rc = s_anchor_paths (&cli, anchor_dir, envp);
    if (rc == S_EXIT_OK && !help)
        cli.rest = umb_cli_rest_new (config_path, envp, url, token, err, &rc);
    if (rc == S_EXIT_OK && !help)
        rc = s_verify (&cli);
    umb_cli_rest_destroy (&cli.rest);
    umb_cli_rest_wipe (&token);
    free (cli.anchor_dir);
    free (cli.head_path);
    return rc;
}

int
umb_cli_audit (int argc, char **argv)
{
    extern char **environ;
    return umb_cli_audit_run (argc, argv, environ, stdout, stderr);
}

//  ---------------------------------------------------------------- selftest
//  The computations service does not serve the trail yet: a small HTTP
//  responder in a thread of this process answers canned trails made with
//  umb_audit_hash, as the gateway will.
#include <poll.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <czmq.h>
#include "umb_cli_testkit.h"

typedef struct {
    pthread_mutex_t lock;
    pthread_t       thread;
    int             listener;
    int             stop [2];           //  a pipe: written to stop the thread
    char            url [64];
    //  What is served, under lock
    json_t         *records;            //  the trail, in the order served
    int64_t         last;               //  -1: the last record's seq
    size_t          page;               //  most records per answer
    int             status;             //  of every answer
    char           *body;               //  when set, the answer's body whatever asked
    //  What was asked, under lock
    int             requests;
    char            path [512];
    char            authorization [256];
} s_test_server_t;

//  The answer to one request's path, under lock. The caller frees it.
static char *
s_test_answer (s_test_server_t *self, const char *path)
{
    if (self->body)
        return strdup (self->body);
    const char *after_text = strstr (path, "after=");
    const char *limit_text = strstr (path, "limit=");
    long long after = after_text ? atoll (after_text + 6) : 0;
    size_t limit = limit_text ? (size_t) atoll (limit_text + 6) : 100;
    json_t *records = json_array ();
    size_t index;
    json_t *item;
    json_array_foreach (self->records, index, item)
        if (json_integer_value (json_object_get (item, "seq")) > after
        &&  json_array_size (records) < limit && json_array_size (records) < self->page)
            json_array_append (records, item);
    size_t count = json_array_size (self->records);
    json_int_t last = self->last >= 0 ? self->last
                    : count ? json_integer_value (json_object_get (json_array_get (self->records,
                                                                                   count - 1), "seq"))
                    : 0;
    json_t *answer = json_pack ("{s:o, s:I}", "records", records, "last", last);
    char *text = json_dumps (answer, JSON_COMPACT);
    json_decref (answer);
    return text;
}

static void
s_test_serve (s_test_server_t *self, int client)
{
    char request [8192];
    size_t size = 0;
    struct pollfd item = { client, POLLIN, 0 };
    while (size < sizeof (request) - 1 && poll (&item, 1, 5000) == 1) {
        ssize_t got = recv (client, request + size, sizeof (request) - 1 - size, 0);
        if (got <= 0)
            break;
        size += (size_t) got;
        request [size] = 0;
        if (strstr (request, "\r\n\r\n"))
            break;
    }
    request [size] = 0;
    char path [512] = "";
    sscanf (request, "GET %511s ", path);
    const char *authorization = strcasestr (request, "\r\nAuthorization: ");
    pthread_mutex_lock (&self->lock);
    self->requests++;
    snprintf (self->path, sizeof (self->path), "%s", path);
    snprintf (self->authorization, sizeof (self->authorization), "%.*s",
              authorization ? (int) strcspn (authorization + 17, "\r") : 0,
              authorization ? authorization + 17 : "");
    char *body = s_test_answer (self, path);
    int status = self->status;
    pthread_mutex_unlock (&self->lock);
    char *head = zsys_sprintf ("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                               "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, strlen (body));
    assert (send (client, head, strlen (head), MSG_NOSIGNAL) == (ssize_t) strlen (head));
    assert (send (client, body, strlen (body), MSG_NOSIGNAL) == (ssize_t) strlen (body));
    zstr_free (&head);
    free (body);
}

static void *
s_test_server_thread (void *arg)
{
    s_test_server_t *self = (s_test_server_t *) arg;
    struct pollfd items [2] = { { self->listener, POLLIN, 0 }, { self->stop [0], POLLIN, 0 } };
    while (poll (items, 2, -1) > 0 && !(items [1].revents & POLLIN)) {
        int client = accept4 (self->listener, NULL, NULL, SOCK_CLOEXEC);
        if (client >= 0) {
            s_test_serve (self, client);
            close (client);
        }
    }
    return NULL;
}

static s_test_server_t *
s_test_server_new (void)
{
    s_test_server_t *self = calloc (1, sizeof (s_test_server_t));
    assert (self);
    pthread_mutex_init (&self->lock, NULL);
    self->records = json_array ();
    self->last = -1;
    self->page = 1000;
    self->status = 200;
    self->listener = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert (self->listener >= 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = 0 };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (bind (self->listener, (struct sockaddr *) &address, sizeof (address)) == 0);
    assert (listen (self->listener, 16) == 0);
    socklen_t length = sizeof (address);
    assert (getsockname (self->listener, (struct sockaddr *) &address, &length) == 0);
    snprintf (self->url, sizeof (self->url), "http://127.0.0.1:%d", ntohs (address.sin_port));
    assert (pipe2 (self->stop, O_CLOEXEC) == 0);
    assert (pthread_create (&self->thread, NULL, s_test_server_thread, self) == 0);
    return self;
}

static void
s_test_server_destroy (s_test_server_t **self_p)
{
    s_test_server_t *self = *self_p;
    assert (write (self->stop [1], "x", 1) == 1);
    pthread_join (self->thread, NULL);
    close (self->stop [0]);
    close (self->stop [1]);
    close (self->listener);
    json_decref (self->records);
    free (self->body);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

//  Serves count records of a good trail (made afresh, the same each time),
//  and resets what else was set.
static void
s_test_server_trail (s_test_server_t *self, int64_t count)
{
    pthread_mutex_lock (&self->lock);
    json_array_clear (self->records);
    char prev [65] = UMB_AUDIT_GENESIS;
    for (int64_t seq = 1; seq <= count; seq++) {
        umb_audit_record_t record = { .seq = seq, .time = 1700000000 + seq };
        snprintf (record.computation, sizeof (record.computation), "cmp_00000000000000a1");
        snprintf (record.actor, sizeof (record.actor), "usr_%s", seq % 2 ? "alice" : "bob");
        snprintf (record.action, sizeof (record.action), seq == 1 ? "create" : "keys.set");
        record.detail = zsys_sprintf ("{\"version\":%" PRId64 "}", seq);
        memcpy (record.prev, prev, sizeof (prev));
        umb_audit_hash (&record);
        memcpy (prev, record.hash, sizeof (prev));
        json_array_append_new (self->records, json_pack ("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s}",
            "seq", (json_int_t) record.seq, "time", (json_int_t) record.time,
            "computation", record.computation, "actor", record.actor, "action", record.action,
            "detail", record.detail, "prev", record.prev, "hash", record.hash));
        zstr_free (&record.detail);
    }
    self->last = -1;
    self->page = 1000;
    self->status = 200;
    free (self->body);
    self->body = NULL;
    self->requests = 0;
    pthread_mutex_unlock (&self->lock);
}

//  How answers go: page records at most, last as the trail's last (-1: the
//  last record's), status, and body instead of the trail when not NULL.
static void
s_test_server_set (s_test_server_t *self, size_t page, int64_t last, int status, const char *body)
{
    pthread_mutex_lock (&self->lock);
    self->page = page;
    self->last = last;
    self->status = status;
    free (self->body);
    self->body = body ? strdup (body) : NULL;
    pthread_mutex_unlock (&self->lock);
}

static int
s_test_server_requests (s_test_server_t *self)
{
    pthread_mutex_lock (&self->lock);
    int requests = self->requests;
    pthread_mutex_unlock (&self->lock);
    return requests;
}

//  The hash of served record seq (the caller frees).
static char *
s_test_server_hash (s_test_server_t *self, int64_t seq)
{
    pthread_mutex_lock (&self->lock);
    char *hash = strdup (json_string_value (json_object_get (json_array_get (self->records,
                                                                             (size_t) seq - 1), "hash")));
    pthread_mutex_unlock (&self->lock);
    return hash;
}

UMB_CLI_TESTKIT_RUNNER (s_test_run, umb_cli_audit_run, "audit")

//  Asserts the head file holds seq and hash, private.
static void
s_test_head (const char *path, int64_t seq, const char *hash)
{
    mode_t mode = 0;
    char *text = umb_cli_testkit_read (path, NULL, &mode);
    char *expected = zsys_sprintf ("%" PRId64 " %s\n", seq, hash);
    if (!text || !streq (text, expected))
        fprintf (stderr, "\n%s holds '%s', not '%s'\n", path, text ? text : "(nothing)", expected);
    assert (text && streq (text, expected) && mode == 0600);
    free (text);
    zstr_free (&expected);
}

void
umb_cli_audit_test (bool verbose)
{
    if (verbose)
        printf (" * umb_cli_audit: ");
    char dir [] = "/tmp/umb-cli-audit-XXXXXX";
    assert (mkdtemp (dir));
    char *anchors = zsys_sprintf ("%s/anchors/deep", dir);
    char *head = zsys_sprintf ("%s/lab.head", anchors);
    s_test_server_t *server = s_test_server_new ();
    char url [64];
    snprintf (url, sizeof (url), "%s", server->url);
    //  The good trail's hashes (every trail served is a part of it, or altered)
    char good [8][65];
    s_test_server_trail (server, 7);
    for (int64_t seq = 1; seq <= 7; seq++) {
        char *hash = s_test_server_hash (server, seq);
        snprintf (good [seq], sizeof (good [seq]), "%s", hash);
        free (hash);
    }
    s_test_server_trail (server, 5);

    //  Usage errors: exit 2, nothing asked
    umb_cli_testkit_run_t run = s_test_run (url, "t0k", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "usage: umbra audit COMMAND");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, "t0k", "help", NULL);
    umb_cli_testkit_expect (&run, 0, "verify --workspace WS [--json] [--anchor-dir DIR]", NULL);
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, "t0k", "verify", "--help", NULL);
    umb_cli_testkit_expect (&run, 0, "options of every command", NULL);
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, "t0k", "check", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "unknown audit command 'check'");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, "t0k", "verify", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "needs --workspace WS");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--workspace", "x", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "'--workspace' is given twice");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "extra", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "takes no arguments");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, "t0k", "verify", "--workspace", "", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "an empty value");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, "t0k", "verify", "--workspace", "..", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "'..' is not a workspace");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, "t0k", "verify", "--workspace", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "--workspace needs a value");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--nope", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "unknown option '--nope'");
    umb_cli_testkit_run_free (&run);
    //  ...no HOME nor XDG_DATA_HOME in the environment, no --anchor-dir
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "pass --anchor-dir DIR");
    umb_cli_testkit_run_free (&run);
    run = s_test_run ("ftp://x", "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "client.url");
    umb_cli_testkit_run_free (&run);
    assert (s_test_server_requests (server) == 0);

    //  A good trail: verified, the head kept (0600, directories made)
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 0, "audit trail of lab verified: 5 records, head 5 ", NULL);
    assert (strstr (run.out, good [5]));
    umb_cli_testkit_run_free (&run);
    pthread_mutex_lock (&server->lock);
    assert (server->requests == 1);
    assert (streq (server->path, "/workspaces/lab/audit?after=0&limit=500"));
    assert (streq (server->authorization, "Bearer t0k"));
    pthread_mutex_unlock (&server->lock);
    s_test_head (head, 5, good [5]);

    //  Two more records, over pages of 3: three requests, the head moves on
    s_test_server_trail (server, 7);
    s_test_server_set (server, 3, -1, 200, NULL);
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, "--json", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    json_t *answer = json_loads (run.out, 0, NULL);
    assert (json_is_true (json_object_get (answer, "verified")));
    assert (json_integer_value (json_object_get (answer, "records")) == 7);
    assert (json_integer_value (json_object_get (json_object_get (answer, "head"), "seq")) == 7);
    assert (json_integer_value (json_object_get (json_object_get (answer, "anchor"), "seq")) == 5);
    json_decref (answer);
    umb_cli_testkit_run_free (&run);
    pthread_mutex_lock (&server->lock);
    assert (server->requests == 3);
    assert (streq (server->path, "/workspaces/lab/audit?after=6&limit=500"));
    pthread_mutex_unlock (&server->lock);
    s_test_head (head, 7, good [7]);

    //  A record changed: refused, the head kept as it was
    s_test_server_trail (server, 7);
    pthread_mutex_lock (&server->lock);
    json_object_set_new (json_array_get (server->records, 2), "detail", json_string ("{\"version\":9}"));
    pthread_mutex_unlock (&server->lock);
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 1, NULL,
                            "refused: record 3: its hash does not match its contents (changed)\n");
    assert (!*run.out);
    umb_cli_testkit_run_free (&run);
    s_test_head (head, 7, good [7]);

    //  A record removed from the middle (over pages), as JSON too
    s_test_server_trail (server, 7);
    pthread_mutex_lock (&server->lock);
    json_array_remove (server->records, 3);
    server->page = 2;
    pthread_mutex_unlock (&server->lock);
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, "--json", NULL);
    umb_cli_testkit_expect (&run, 1, "\"verified\": false",
                            "refused: record 5 follows record 3 (removed or reordered)");
    umb_cli_testkit_run_free (&run);
    s_test_head (head, 7, good [7]);

    //  Truncated: the trail ends before the head seen last time
    s_test_server_trail (server, 6);
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 1, NULL,
                            "refused: the trail ends at record 6, but record 7 was seen before (truncated)");
    umb_cli_testkit_run_free (&run);
    s_test_head (head, 7, good [7]);
    //  ...or rewritten from some record on, consistently: the head is not the one seen
    s_test_server_trail (server, 7);
    pthread_mutex_lock (&server->lock);
    json_t *item = json_array_get (server->records, 6);
    umb_audit_record_t forged = { .seq = 7, .time = 1 };
    snprintf (forged.computation, sizeof (forged.computation), "%s", umb_cli_rest_str (item, "computation"));
    snprintf (forged.actor, sizeof (forged.actor), "usr_mallory");
    snprintf (forged.action, sizeof (forged.action), "%s", umb_cli_rest_str (item, "action"));
    forged.detail = (char *) "{}";
    snprintf (forged.prev, sizeof (forged.prev), "%s", umb_cli_rest_str (item, "prev"));
    umb_audit_hash (&forged);
    json_object_set_new (item, "time", json_integer (1));
    json_object_set_new (item, "actor", json_string ("usr_mallory"));
    json_object_set_new (item, "detail", json_string ("{}"));
    json_object_set_new (item, "hash", json_string (forged.hash));
    pthread_mutex_unlock (&server->lock);
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "refused: record 7: its hash ");
    assert (strstr (run.err, "(rewritten)"));
    umb_cli_testkit_run_free (&run);
    s_test_head (head, 7, good [7]);

    //  Unreadable answers: not JSON, not the shape, a record that is not one, a last never reached
    s_test_server_trail (server, 7);
    s_test_server_set (server, 1000, -1, 200, "not json");
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "refused: unreadable answer: GET /workspaces/lab/audit?after=0");
    umb_cli_testkit_run_free (&run);
    s_test_server_set (server, 1000, -1, 200, "{\"items\":[],\"next\":null}");
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "refused: unreadable answer: ");
    umb_cli_testkit_run_free (&run);
    s_test_server_set (server, 1000, -1, 200, NULL);
    pthread_mutex_lock (&server->lock);
    json_object_set_new (json_array_get (server->records, 1), "actor", json_integer (7));
    pthread_mutex_unlock (&server->lock);
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 1, NULL,
                            "refused: unreadable answer: record 2: 'actor' is not a string of at most 63 bytes");
    umb_cli_testkit_run_free (&run);
    s_test_server_trail (server, 7);
    pthread_mutex_lock (&server->lock);
    json_object_set_new (json_array_get (server->records, 0), "computation",
                         json_string ("cmp_0123456789012345678901234567890123456789"));
    pthread_mutex_unlock (&server->lock);
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "refused: unreadable answer: record 1: 'computation'");
    umb_cli_testkit_run_free (&run);
    s_test_server_trail (server, 7);
    s_test_server_set (server, 1000, 9, 200, NULL);
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 1, NULL,
                            "refused: unreadable answer: no records after record 7, though the trail's last is 9");
    umb_cli_testkit_run_free (&run);
    s_test_head (head, 7, good [7]);
    //  ...an error status: the gateway's reason, exit 1
    s_test_server_trail (server, 7);
    s_test_server_set (server, 1000, -1, 404,
                       "{\"error\":{\"code\":\"not_found\",\"message\":\"no workspace 'lab'\"}}");
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: 404 not_found: no workspace 'lab'");
    assert (!strstr (run.err, "refused"));
    umb_cli_testkit_run_free (&run);
    s_test_head (head, 7, good [7]);

    //  A head file that is not one: refused before anything is asked, left alone
    s_test_server_trail (server, 7);
    char *other = zsys_sprintf ("%s/other.head", anchors);
    FILE *file = fopen (other, "w");
    assert (file);
    fputs ("7 nothex\n", file);
    fclose (file);
    run = s_test_run (url, "t0k", "verify", "--workspace", "other", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "is not an audit head (SEQ HASH)");
    umb_cli_testkit_run_free (&run);
    assert (s_test_server_requests (server) == 0);
    char *text = umb_cli_testkit_read (other, NULL, NULL);
    assert (streq (text, "7 nothex\n"));
    free (text);
    zstr_free (&other);

    //  The default place, from XDG_DATA_HOME; a workspace name that is no file name; --token
    char *argv [] = { strdup ("audit"), strdup ("verify"), strdup ("--workspace"), strdup ("a/b"),
                      strdup ("--token"), strdup ("s3cr3t-token"), strdup ("--url"), strdup (url), NULL };
    char *envp [] = { zsys_sprintf ("XDG_DATA_HOME=%s/xdg", dir), strdup ("HOME=/nonexistent"), NULL };
    FILE *out = tmpfile (), *err = tmpfile ();
    assert (out && err);
    assert (umb_cli_audit_run (8, argv, envp, out, err) == 0);
    for (size_t i = 0; i < 8; i++) {
        assert (!strstr (argv [i], "s3cr3t-token"));
        free (argv [i]);
    }
    for (size_t i = 0; i < 2; i++)
        free (envp [i]);
    text = umb_cli_testkit_slurp (out, NULL);
    assert (strstr (text, "audit trail of a/b verified: 7 records, head 7 "));
    free (text);
    text = umb_cli_testkit_slurp (err, NULL);
    assert (!strstr (text, "s3cr3t-token"));
    free (text);
    fclose (out);
    fclose (err);
    pthread_mutex_lock (&server->lock);
    assert (streq (server->path, "/workspaces/a%2Fb/audit?after=0&limit=500"));
    assert (streq (server->authorization, "Bearer s3cr3t-token"));
    pthread_mutex_unlock (&server->lock);
    char *xdg_head = zsys_sprintf ("%s/xdg/umbra/audit/a%%2Fb.head", dir);
    s_test_head (xdg_head, 7, good [7]);

    //  An empty trail: verified, nothing kept; nobody there: exit 1
    s_test_server_trail (server, 0);
    run = s_test_run (url, NULL, "verify", "--workspace", "empty", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 0, "audit trail of empty verified: 0 records, head 0 "
                            UMB_AUDIT_GENESIS "\n", NULL);
    umb_cli_testkit_run_free (&run);
    char *empty_head = zsys_sprintf ("%s/empty.head", anchors);
    assert (access (empty_head, F_OK) == -1);
    s_test_server_destroy (&server);
    run = s_test_run (url, "t0k", "verify", "--workspace", "lab", "--anchor-dir", anchors, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: cannot reach http://127.0.0.1:");
    umb_cli_testkit_run_free (&run);

    //  Clean up the scratch directory
    unlink (xdg_head);
    unlink (head);
    char *path = zsys_sprintf ("%s/other.head", anchors);
    unlink (path);
    zstr_free (&path);
    const char *const dirs [] = { "xdg/umbra/audit", "xdg/umbra", "xdg", "anchors/deep", "anchors", "" };
    for (size_t i = 0; i < sizeof (dirs) / sizeof (dirs [0]); i++) {
        path = zsys_sprintf ("%s/%s", dir, dirs [i]);
        assert (rmdir (path) == 0);
        zstr_free (&path);
    }
    zstr_free (&empty_head);
    zstr_free (&xdg_head);
    zstr_free (&head);
    zstr_free (&anchors);
    if (verbose)
        printf ("OK\n");
}
