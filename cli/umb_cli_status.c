//  umb_cli_status - `umbra status`: the health of every service, through the
//  gateway's /health, or of one service straight over the mesh (what a
//  container's health check or a systemd ExecStartPost runs)
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "umb_cli_status.h"
#include "umb_cli_rest.h"
#include "umb_program.h"
#include "umb_runtime.h"
#include "umb_client.h"
#include "umb_keys.h"
#include "umb_cli_testkit.h"

static const char s_usage [] =
    "usage: umbra status [--url URL] [--json]\n"
    "       umbra status --service NAME [--config FILE] [--state DIR] [--json]\n"
    "\n"
    "Prints the health of every service as the gateway sees it (GET URL/health, URL\n"
    "from --url or client.url), or with --service of one service asked straight over\n"
    "the mesh (sys.health) with a mesh identity whose key pair is in the state's keys\n"
    "directory: NAME's own first (a container's health check, `umbra status --service\n"
    "auth`). Exit 0 when every service asked is up, 1 when one is not (or cannot be\n"
    "reached), 2 on a usage error.\n";

//  Prints one service's health line; true when it is up
static bool
s_print (FILE *out, const char *name, json_t *health)
{
    const char *status = json_string_value (json_object_get (health, "status"));
    bool up = status && streq (status, "ok");
    json_t *uptime = json_object_get (health, "uptime_s");
    const char *message = json_string_value (json_object_get (health, "message"));
    fprintf (out, "%-13s %-5s", name, up ? "up" : "down");
    if (json_is_integer (uptime))
        fprintf (out, "  uptime %lld s", (long long) json_integer_value (uptime));
    if (!up && message)
        fprintf (out, "  %s", message);
    fprintf (out, "\n");
    return up;
}

static int
s_gateway (const char *url, bool json, FILE *out, FILE *err)
{
    int exit_code = UMB_EXIT_OK;
    umb_cli_rest_t *rest = umb_cli_rest_new (NULL, environ, url, NULL, err, &exit_code);
    if (!rest)
        return exit_code;
    umb_http_response_t response = { 0 };
    int rc = umb_http_client_get (umb_cli_rest_client (rest), "/health", &response);
    json_t *root = rc == 0 ? json_loadb (response.body, response.size, 0, NULL) : NULL;
    json_t *services = json_object_get (root, "services");
    if (!json_is_object (services)) {
        fprintf (err, "umbra: the gateway cannot be asked: %s\n",
                 rc ? umb_http_client_error (umb_cli_rest_client (rest)) : "no health in its answer");
        exit_code = UMB_EXIT_FAILED;
    }
    else
    if (json) {
        char *text = json_dumps (root, JSON_INDENT (2) | JSON_SORT_KEYS);
        fprintf (out, "%s\n", text);
        free (text);
    }
    else {
        const char *name;
        json_t *health;
        json_object_foreach (services, name, health)
            if (!s_print (out, name, health))
                exit_code = UMB_EXIT_FAILED;
    }
    if (json_is_object (services) && response.status != 200)
        exit_code = UMB_EXIT_FAILED;
    json_decref (root);
    umb_http_response_clear (&response);
    umb_cli_rest_destroy (&rest);
    return exit_code;
}

//  The first identity with a secret key in keys: name's own first
static zcert_t *
s_identity (const char *keys, const char *name)
{
    const char *const *names = umb_runtime_identities ();
    zcert_t *cert = umb_keys_load (keys, name, false, NULL);
    for (size_t i = 0; !cert && names [i]; i++) {
        char *path = zsys_sprintf ("%s/%s.key", keys, names [i]);
        if (access (path, R_OK) == 0)
            cert = umb_keys_load (keys, names [i], false, NULL);
        zstr_free (&path);
    }
    return cert;
}

//  Asks name's sys.health over the mesh; nothing of the state is made
static int
s_mesh (int argc, char **argv, const char *name, bool json, FILE *out, FILE *err)
{
    int exit_code = UMB_EXIT_OK;
    umb_config_t *config = umb_program_config ("umbra status", s_usage, false, argc, argv,
                                               &exit_code);
    if (!config)
        return exit_code;
    char key [96];
    snprintf (key, sizeof key, "%s.endpoint", name);
    if (!umb_config_declared (config, key)) {
        fprintf (err, "umbra: no service '%s' (auth, certs, backends, computations, billing)\n",
                 name);
        umb_config_destroy (&config);
        return UMB_EXIT_USAGE;
    }
    char *keys = umb_runtime_keys_path (config);
    char setting [96];
    snprintf (setting, sizeof setting, "%s.public_key", name);
    const char *configured = umb_config_declared (config, setting)
                           ? umb_config_str (config, setting) : "";
    char *server_key = *configured ? strdup (configured) : umb_keys_public (keys, name);
    zcert_t *identity = s_identity (keys, name);
    umb_client_t *client = identity && server_key
        ? umb_client_new (umb_config_str (config, key), server_key, identity) : NULL;
    umb_reply_t *reply = client
        ? umb_client_call (client, "sys.health", NULL, NULL, 0,
                           (int) umb_config_int (config, "mesh.timeout_ms"), NULL)
        : NULL;
    exit_code = UMB_EXIT_FAILED;
    if (!server_key)
        fprintf (err, "umbra: no public key of %s in %s\n", name, keys);
    else
    if (!identity)
        fprintf (err, "umbra: no mesh identity's key pair in %s to ask with\n", keys);
    else
    if (!umb_reply_ok (reply))
        fprintf (err, "umbra: %s does not answer: %d %s\n", name, umb_reply_status (reply),
                 umb_reply_error (reply) ? umb_reply_error (reply) : "");
    else {
        umb_msg_t *body = umb_reply_body (reply);
        const char *status = umb_msg_str (body, "status", 32, true);
        int64_t uptime = umb_msg_int (body, "uptime_s", 0, INT64_MAX, 0, true);
        json_t *health = json_pack ("{s:s, s:I}", "status", status ? status : "",
                                    "uptime_s", (json_int_t) uptime);
        char *text = json ? json_dumps (health, JSON_SORT_KEYS) : NULL;
        if (text)
            fprintf (out, "%s\n", text);
        free (text);
        bool up = json ? status && streq (status, "ok") : s_print (out, name, health);
        json_decref (health);
        exit_code = up ? UMB_EXIT_OK : UMB_EXIT_FAILED;
    }
    umb_reply_destroy (&reply);
    umb_client_destroy (&client);
    zcert_destroy (&identity);
    zstr_free (&server_key);
    zstr_free (&keys);
    umb_config_destroy (&config);
    return exit_code;
}

int
umb_cli_status_run (int argc, char **argv, FILE *out, FILE *err)
{
    //  --service NAME, --url URL and --json are status's own; the rest are
    //  the settings' options (with --service)
    const char *service = NULL, *url = NULL;
    bool json = false;
    char **rest = calloc ((size_t) argc + 1, sizeof (char *));
    assert (rest);
    int count = 0, usage = 0;
    for (int i = 0; i < argc; i++) {
        if ((streq (argv [i], "--service") || streq (argv [i], "--url")) && i + 1 < argc) {
            const char **into = streq (argv [i], "--service") ? &service : &url;
            usage |= *into != NULL;
            *into = argv [++i];
        }
        else
        if (streq (argv [i], "--json"))
            json = true;
        else
        if (streq (argv [i], "--service") || streq (argv [i], "--url"))
            usage = 1;
        else
            rest [count++] = argv [i];
    }
    int exit_code;
    if (usage || (service && url) || (!service && count > 1)) {
        fprintf (err, "%s", s_usage);
        exit_code = UMB_EXIT_USAGE;
    }
    else
    if (!service && count == 1 && umb_cli_rest_is_help (rest [0])) {
        fprintf (out, "%s", s_usage);
        exit_code = UMB_EXIT_OK;
    }
    else
        exit_code = service ? s_mesh (count, rest, service, json, out, err)
                            : s_gateway (url, json, out, err);
    free (rest);
    return exit_code;
}

int
umb_cli_status (int argc, char **argv)
{
    return umb_cli_status_run (argc, argv, stdout, stderr);
}

//  ---------------------------------------------------------------- selftest

//  Runs status with argv (NULL-terminated); what it printed in out and err
static int
s_test_run (char *const *argv, char **out, char **err)
{
    int argc = 0;
    while (argv [argc])
        argc++;
    size_t out_size, err_size;
    FILE *out_stream = open_memstream (out, &out_size);
    FILE *err_stream = open_memstream (err, &err_size);
    int rc = umb_cli_status_run (argc, (char **) argv, out_stream, err_stream);
    fclose (out_stream);
    fclose (err_stream);
    return rc;
}

void
umb_cli_status_test (bool verbose)
{
    if (verbose)
        printf (" * umb_cli_status: ");
    const char *services [] = { "computations", NULL };
    umb_cli_testkit_t *kit = umb_cli_testkit_new ("umb-cli-status", services, NULL);
    const char *url = umb_cli_testkit_url (kit);
    char *out = NULL, *err = NULL;
    //  Through the gateway: every service it knows; certs and backends do
    //  not run in this kit, so the platform is not all up
    char *argv [] = { "status", "--url", (char *) url, NULL };
    int rc = s_test_run (argv, &out, &err);
    assert (rc == 1);
    assert (strstr (out, "auth          up") && strstr (out, "billing       up"));
    assert (strstr (out, "gateway       up") && strstr (out, "computations  up"));
    assert (strstr (out, "certs         down") && strstr (out, "backends      down"));
    zstr_free (&out);
    zstr_free (&err);
    //  A gateway that is not there
    char *nowhere [] = { "status", "--url", "http://127.0.0.1:1", NULL };
    assert (s_test_run (nowhere, &out, &err) == 1);
    assert (strstr (err, "cannot be asked"));
    zstr_free (&out);
    zstr_free (&err);
    //  Straight over the mesh, with the state's keys (the kit's services are
    //  on ipc endpoints: the settings say so)
    char *state = zsys_sprintf ("--state=%s/state", umb_cli_testkit_dir (kit));
    char *billing = zsys_sprintf ("ipc://%s/billing.ipc", umb_cli_testkit_dir (kit));
    char *certs = zsys_sprintf ("ipc://%s/certs.ipc", umb_cli_testkit_dir (kit));
    setenv ("UMBRA_BILLING_ENDPOINT", billing, 1);
    setenv ("UMBRA_CERTS_ENDPOINT", certs, 1);
    setenv ("UMBRA_MESH_TIMEOUT_MS", "1000", 1);
    char *mesh [] = { "status", "--service", "billing", state, NULL };
    assert (s_test_run (mesh, &out, &err) == 0 && strstr (out, "billing       up"));
    zstr_free (&out);
    zstr_free (&err);
    char *unknown [] = { "status", "--service", "nothing", state, NULL };
    assert (s_test_run (unknown, &out, &err) == 2 && strstr (err, "no service 'nothing'"));
    zstr_free (&out);
    zstr_free (&err);
    //  A service that is down: certs does not run in this kit
    char *down [] = { "status", "--service", "certs", state, NULL };
    assert (s_test_run (down, &out, &err) == 1 && strstr (err, "certs does not answer"));
    zstr_free (&out);
    zstr_free (&err);
    char *both [] = { "status", "--service", "auth", "--url", (char *) url, NULL };
    assert (s_test_run (both, &out, &err) == 2);
    zstr_free (&out);
    zstr_free (&err);
    unsetenv ("UMBRA_BILLING_ENDPOINT");
    unsetenv ("UMBRA_CERTS_ENDPOINT");
    unsetenv ("UMBRA_MESH_TIMEOUT_MS");
    zstr_free (&billing);
    zstr_free (&certs);
    zstr_free (&state);
    umb_cli_testkit_destroy (&kit);
    if (verbose)
        printf ("OK\n");
}
