//  umb_cli_testkit - what the command-line clients' selftests share
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <czmq.h>
#include <jansson.h>
#include "umb_cli_testkit.h"
#include "umb_cli_rest.h"
#include "umb_testkit.h"
#include "umb_runtime.h"
#include "umb_auth.h"
#include "umb_certs.h"
#include "umb_backends.h"
#include "umb_computations.h"
#include "umb_billing.h"
#include "umb_gateway.h"

#define S_MAX_ACTORS 6

struct _umb_cli_testkit_t {
    char           dir [64];
    umb_runtime_t *runtime;
    zactor_t      *actors [S_MAX_ACTORS];   //  auth, billing, the services, the gateway last
    size_t         count;
    char          *url;
};

static const struct {
    const char *name;
    zactor_fn  *actor;
} s_services [] = {
    { "certs",    umb_certs_actor },
    { "backends", umb_backends_actor },
    { "computations", umb_computations_actor },
    { NULL }
};

//  Asks actor question and asserts a non-empty answer other than "0".
static char *
s_ask (zactor_t *actor, const char *question)
{
    zstr_send (actor, question);
    char *answer = zstr_recv (actor);
    if (!answer || !*answer || streq (answer, "0")) {
        zstr_send (actor, "REASON");
        char *reason = zstr_recv (actor);
        fprintf (stderr, "\na service did not start: %s\n", reason ? reason : "?");
        zstr_free (&reason);
    }
    assert (answer && *answer && !streq (answer, "0"));
    return answer;
}

umb_cli_testkit_t *
umb_cli_testkit_new (const char *prefix, const char *const *services,
                     const char *const (*settings) [2])
{
    assert (prefix && services);
    umb_cli_testkit_t *self = calloc (1, sizeof (umb_cli_testkit_t));
    assert (self);
    snprintf (self->dir, sizeof (self->dir), "/tmp/%s-XXXXXX", prefix);
    assert (mkdtemp (self->dir));
    umb_config_t *config = umb_config_new ();
    assert (config);
    char *error = NULL;
    const char *names [] = { "state_dir", "auth.endpoint", "auth.pub_endpoint", "certs.endpoint",
                             "certs.pub_endpoint", "backends.endpoint", "backends.pub_endpoint",
                             "computations.endpoint", "computations.pub_endpoint",
                             "billing.endpoint", "billing.pub_endpoint" };
    const char *formats [] = { "%s/state", "ipc://%s/auth.ipc", "ipc://%s/auth-pub.ipc",
                               "ipc://%s/certs.ipc", "ipc://%s/certs-pub.ipc",
                               "ipc://%s/backends.ipc", "ipc://%s/backends-pub.ipc",
                               "ipc://%s/computations.ipc", "ipc://%s/computations-pub.ipc",
                               "ipc://%s/billing.ipc", "ipc://%s/billing-pub.ipc" };
    for (size_t i = 0; i < sizeof (names) / sizeof (names [0]); i++) {
        char *value = zsys_sprintf (formats [i], self->dir);
        int rc = umb_config_set (config, names [i], value, &error);
        assert (rc == 0);
        zstr_free (&value);
    }
    const char *fixed [] [2] = {
        { "log.level", "error" }, { "certs.http_listen", "127.0.0.1:0" },
        { "gateway.listen", "127.0.0.1:0" },
        { "admin.username", "root" }, { "admin.password", "root-password-0123" },
        //  Billing runs as everywhere, but never in the way of what these
        //  tests test: no limits, and credit for any run (billing's own
        //  tests set their plans)
        { "billing.default_plan", "enterprise" }, { "billing.welcome_credit", "1000000000000" },
        { NULL }
    };
    for (size_t i = 0; fixed [i][0]; i++) {
        int rc = umb_config_set (config, fixed [i][0], fixed [i][1], &error);
        assert (rc == 0);
    }
    for (size_t i = 0; settings && settings [i][0]; i++) {
        int rc = umb_config_set (config, settings [i][0], settings [i][1], &error);
        if (rc)
            fprintf (stderr, "\n%s\n", error);
        assert (rc == 0);
    }
    self->runtime = umb_runtime_new (&config, &error);
    assert (self->runtime);

    self->actors [self->count++] = zactor_new (umb_auth_actor, self->runtime);
    char *answer = s_ask (self->actors [0], "ENDPOINT");
    zstr_free (&answer);
    self->actors [self->count++] = zactor_new (umb_billing_actor, self->runtime);
    answer = s_ask (self->actors [1], "ENDPOINT");
    zstr_free (&answer);
    for (size_t i = 0; services [i]; i++) {
        size_t service = 0;
        while (s_services [service].name && !streq (s_services [service].name, services [i]))
            service++;
        assert (s_services [service].name && self->count < S_MAX_ACTORS - 1);
        zactor_t *actor = zactor_new (s_services [service].actor, self->runtime);
        self->actors [self->count++] = actor;
        answer = s_ask (actor, "ENDPOINT");
        zstr_free (&answer);
    }
    zactor_t *gateway = zactor_new (umb_gateway_actor, self->runtime);
    self->actors [self->count++] = gateway;
    answer = s_ask (gateway, "PORT");
    self->url = zsys_sprintf ("http://127.0.0.1:%s", answer);
    zstr_free (&answer);
    return self;
}

void
umb_cli_testkit_destroy (umb_cli_testkit_t **self_p)
{
    assert (self_p);
    umb_cli_testkit_t *self = *self_p;
    if (self) {
        while (self->count)
            zactor_destroy (&self->actors [--self->count]);
        umb_runtime_destroy (&self->runtime);
        umb_testkit_remove_dir (self->dir);
        zstr_free (&self->url);
        free (self);
        *self_p = NULL;
    }
}

const char *
umb_cli_testkit_url (umb_cli_testkit_t *self)
{
    assert (self);
    return self->url;
}

const char *
umb_cli_testkit_dir (umb_cli_testkit_t *self)
{
    assert (self);
    return self->dir;
}

void
umb_cli_testkit_stop_gateway (umb_cli_testkit_t *self)
{
    assert (self && self->count > 1);
    zactor_destroy (&self->actors [self->count - 1]);
}

//  ---------------------------------------------------------------- runs

char *
umb_cli_testkit_slurp (FILE *stream, size_t *size)
{
    fflush (stream);
    long length = ftell (stream);
    assert (length >= 0);
    rewind (stream);
    char *text = calloc (1, (size_t) length + 1);
    assert (text);
    size_t got = fread (text, 1, (size_t) length, stream);
    assert (got == (size_t) length);
    if (size)
        *size = got;
    return text;
}

umb_cli_testkit_run_t
umb_cli_testkit_runv (umb_cli_testkit_fn *fn, const char *command, const char *url,
                      const char *token, va_list args)
{
    assert (fn && command);
    char *argv [32];
    int argc = 0;
    argv [argc++] = strdup (command);
    for (const char *arg = va_arg (args, const char *); arg; arg = va_arg (args, const char *)) {
        assert (argc < 31);
        argv [argc++] = strdup (arg);
    }
    argv [argc] = NULL;
    char *envp [3] = { NULL, NULL, NULL };
    int count = 0;
    if (url)
        envp [count++] = zsys_sprintf ("UMBRA_CLIENT_URL=%s", url);
    if (token)
        envp [count++] = zsys_sprintf ("UMBRA_CLIENT_TOKEN=%s", token);
    FILE *out = tmpfile ();
    FILE *err = tmpfile ();
    assert (out && err);
    umb_cli_testkit_run_t run;
    run.rc = fn (argc, argv, envp, out, err);
    run.out = umb_cli_testkit_slurp (out, NULL);
    run.err = umb_cli_testkit_slurp (err, NULL);
    fclose (out);
    fclose (err);
    for (int i = 0; i < argc; i++)
        free (argv [i]);
    for (int i = 0; i < count; i++)
        zstr_free (&envp [i]);
    return run;
}

umb_cli_testkit_run_t
umb_cli_testkit_run (umb_cli_testkit_fn *fn, const char *command, const char *url,
                     const char *token, ...)
{
    va_list args;
    va_start (args, token);
    umb_cli_testkit_run_t run = umb_cli_testkit_runv (fn, command, url, token, args);
    va_end (args);
    return run;
}

void
umb_cli_testkit_expect (umb_cli_testkit_run_t *run, int rc, const char *in_out, const char *in_err)
{
    assert (run);
    if (run->rc != rc || (in_out && !strstr (run->out, in_out)) || (in_err && !strstr (run->err, in_err)))
        fprintf (stderr, "\nexit %d (expected %d)\nstdout: %s\nstderr: %s\n", run->rc, rc, run->out,
                 run->err);
    assert (run->rc == rc);
    if (in_out)
        assert (strstr (run->out, in_out));
    if (in_err)
        assert (strstr (run->err, in_err));
}

void
umb_cli_testkit_run_free (umb_cli_testkit_run_t *run)
{
    assert (run);
    free (run->out);
    free (run->err);
    run->out = run->err = NULL;
}

char *
umb_cli_testkit_first_line (umb_cli_testkit_run_t *run)
{
    assert (run && run->out);
    char *line = strndup (run->out, strcspn (run->out, "\n"));
    assert (line);
    return line;
}

json_t *
umb_cli_testkit_json (umb_cli_testkit_run_t *run)
{
    assert (run && run->out);
    json_error_t error;
    json_t *root = json_loads (run->out, 0, &error);
    if (!root)
        fprintf (stderr, "\nnot JSON (%s): %s\n", error.text, run->out);
    assert (root);
    return root;
}

//  ---------------------------------------------------------------- files

char *
umb_cli_testkit_write (const char *dir, const char *name, const char *text)
{
    assert (text);
    return umb_cli_testkit_write_data (dir, name, text, strlen (text));
}

char *
umb_cli_testkit_write_data (const char *dir, const char *name, const void *data, size_t size)
{
    assert (dir && name && data);
    char *path = zsys_sprintf ("%s/%s", dir, name);
    assert (path);
    FILE *file = fopen (path, "w");
    assert (file);
    size_t written = fwrite (data, 1, size, file);
    assert (written == size);
    int rc = fclose (file);
    assert (rc == 0);
    return path;
}

char *
umb_cli_testkit_read (const char *path, size_t *size, mode_t *mode)
{
    assert (path);
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    struct stat info;
    int rc = fstat (fileno (file), &info);
    assert (rc == 0);
    if (mode)
        *mode = info.st_mode & 0777;
    fseek (file, 0, SEEK_END);
    char *text = umb_cli_testkit_slurp (file, size);
    fclose (file);
    return text;
}

//  ---------------------------------------------------------------- setting the scene

char *
umb_cli_testkit_post (umb_http_client_t *client, const char *path, const char *json, int status,
                      const char *field)
{
    umb_http_response_t response;
    int rc = umb_http_client_post (client, path, json, &response);
    assert (rc == 0);
    if (response.status != status)
        fprintf (stderr, "\nPOST %s: %d %s\n", path, response.status, response.body);
    assert (response.status == status);
    json_t *root = json_loadb (response.body, response.size, 0, NULL);
    char *value = field ? strdup (umb_cli_rest_str (root, field)) : NULL;
    json_decref (root);
    umb_http_response_clear (&response);
    return value;
}

char *
umb_cli_testkit_user (const char *url, const char *username)
{
    umb_http_client_t *client = umb_http_client_new (url, NULL);
    assert (client);
    char *json = zsys_sprintf ("{\"username\":\"%s\",\"password\":\"%s-password-1\"}", username,
                               username);
    free (umb_cli_testkit_post (client, "/users", json, 201, NULL));
    char *token = umb_cli_testkit_post (client, "/users/tokens", json, 201, "access_token");
    zstr_free (&json);
    umb_http_client_destroy (&client);
    return token;
}

void
umb_cli_testkit_workspace (const char *url, const char *workspace, const char *owner,
                           const char *member, const char *member_token)
{
    assert (url && workspace && owner && member && member_token);
    umb_http_client_t *client = umb_http_client_new (url, owner);
    assert (client);
    char *json = zsys_sprintf ("{\"name\":\"%s\"}", workspace);
    free (umb_cli_testkit_post (client, "/workspaces", json, 201, NULL));
    zstr_free (&json);
    char *path = zsys_sprintf ("/workspaces/%s/invitations", workspace);
    json = zsys_sprintf ("{\"username\":\"%s\",\"role\":\"member\"}", member);
    char *invitation = umb_cli_testkit_post (client, path, json, 201, "id");
    zstr_free (&json);
    zstr_free (&path);
    umb_http_client_destroy (&client);
    client = umb_http_client_new (url, member_token);
    assert (client);
    path = zsys_sprintf ("/invitations/%s/accept", invitation);
    free (umb_cli_testkit_post (client, path, NULL, 200, NULL));
    zstr_free (&path);
    free (invitation);
    umb_http_client_destroy (&client);
}

//  ---------------------------------------------------------------- selftest
//  The services are started by the commands' selftests; here, runs alone.

static int
s_test_echo (int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    for (int i = 0; i < argc; i++)
        fprintf (out, "%s%s", i ? " " : "", argv [i]);
    fputc ('\n', out);
    for (size_t i = 0; envp [i]; i++)
        fprintf (err, "%s\n", envp [i]);
    return argc == 1 ? 2 : 0;
}

void
umb_cli_testkit_test (bool verbose)
{
    if (verbose)
        printf (" * umb_cli_testkit: ");
    umb_cli_testkit_run_t run = umb_cli_testkit_run (s_test_echo, "echo", "http://h:1", "t0k", "a",
                                                     "b c", NULL);
    umb_cli_testkit_expect (&run, 0, "echo a b c\n", "UMBRA_CLIENT_URL=http://h:1\n");
    assert (strstr (run.err, "UMBRA_CLIENT_TOKEN=t0k\n"));
    umb_cli_testkit_run_free (&run);
    umb_cli_testkit_run_free (&run);
    run = umb_cli_testkit_run (s_test_echo, "echo", NULL, NULL, NULL);
    umb_cli_testkit_expect (&run, 2, "echo\n", NULL);
    assert (*run.err == 0);
    char *line = umb_cli_testkit_first_line (&run);
    assert (streq (line, "echo"));
    free (line);
    umb_cli_testkit_run_free (&run);
    UMB_CLI_TESTKIT_EXPECT (umb_cli_testkit_run (s_test_echo, "{\"a\":", NULL, NULL, "[1]}", NULL),
                            0, "{\"a\": [1]}", NULL);
    run = umb_cli_testkit_run (s_test_echo, "{\"a\":", NULL, NULL, "[1]}", NULL);
    json_t *root = umb_cli_testkit_json (&run);
    assert (json_integer_value (json_array_get (json_object_get (root, "a"), 0)) == 1);
    json_decref (root);
    umb_cli_testkit_run_free (&run);

    //  Files: text and data written, read back with their size and mode
    char dir [] = "/tmp/umb-cli-testkit-XXXXXX";
    assert (mkdtemp (dir));
    char *path = umb_cli_testkit_write (dir, "a.txt", "one\ntwo\n");
    mode_t mode = 0;
    size_t size = 0;
    char *text = umb_cli_testkit_read (path, &size, &mode);
    assert (text && streq (text, "one\ntwo\n") && size == 8 && (mode & 0600) == 0600);
    free (text);
    zstr_free (&path);
    path = umb_cli_testkit_write_data (dir, "b.bin", "a\0b", 3);
    text = umb_cli_testkit_read (path, &size, NULL);
    assert (size == 3 && memcmp (text, "a\0b", 4) == 0);
    free (text);
    zstr_free (&path);
    path = zsys_sprintf ("%s/none", dir);
    assert (!umb_cli_testkit_read (path, NULL, NULL));
    zstr_free (&path);
    umb_testkit_remove_dir (dir);

    FILE *stream = tmpfile ();
    assert (stream);
    fwrite ("a\0b", 1, 3, stream);
    text = umb_cli_testkit_slurp (stream, &size);
    assert (size == 3 && memcmp (text, "a\0b", 4) == 0);
    free (text);
    fclose (stream);
    if (verbose)
        printf ("OK\n");
}
