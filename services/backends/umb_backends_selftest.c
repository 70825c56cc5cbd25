//  umb_backends_selftest - the backends service's selftest: the real actor with
//  the real auth actor, through the real client; hosts on libvirt's test
//  driver (test:///default and a test:///FILE holding an orphan domain) and
//  the process driver with the real umbra-agent behind the bridge
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "umb_backends.h"
#include "umb_domain.h"
#include "umb_auth.h"
#include "umb_certs.h"
#include "umb_testkit.h"

#define S_STR_MAX 65536
#define S_ROOT_PASSWORD "root-password-0123"

typedef struct {
    bool           verbose;
    umb_runtime_t *runtime;
    zactor_t      *auth;
    zactor_t      *certs;
    zactor_t      *backends;
    zcert_t       *gateway;
    umb_client_t  *auth_client;
    umb_client_t  *client;
    char          *state_dir;
    char          *token;           //  alice: admin of workspace "lab"
    char          *viewer;          //  bob: viewer of "lab"
    int            null_fd;
} s_test_t;

//  ---------------------------------------------------------------- plumbing

static umb_reply_t *
s_expect (umb_reply_t *reply, int status)
{
    if (umb_reply_status (reply) != status)
        fprintf (stderr, "\nexpected %d, got %d %s %s\n", status, umb_reply_status (reply),
                 umb_reply_code (reply) ? umb_reply_code (reply) : "",
                 umb_reply_error (reply) ? umb_reply_error (reply) : "");
    assert (umb_reply_status (reply) == status);
    return reply;
}

static const char *
s_str (umb_reply_t *reply, const char *key)
{
    return umb_msg_str (umb_reply_body (reply), key, S_STR_MAX, false);
}

static void
s_backends_start (s_test_t *test)
{
    test->backends = zactor_new (umb_backends_actor, test->runtime);
    assert (test->backends);
    zstr_send (test->backends, "ENDPOINT");
    char *endpoint = zstr_recv (test->backends);
    assert (endpoint);
    if (!*endpoint) {
        zstr_send (test->backends, "REASON");
        char *reason = zstr_recv (test->backends);
        fprintf (stderr, "backends did not start: %s\n", reason);
        zstr_free (&reason);
    }
    assert (*endpoint);
    char *key = umb_runtime_public_key (test->runtime, "backends");
    test->client = umb_client_new (endpoint, key, test->gateway);
    assert (test->client);
    zstr_free (&key);
    zstr_free (&endpoint);
}

static void
s_backends_stop (s_test_t *test)
{
    umb_client_destroy (&test->client);
    zactor_destroy (&test->backends);
}

//  Waits until the actor has reconciled hosts hosts; returns the orphans it destroyed.
//  A test-driver domain with umbra's metadata naming owner (caller frees)
static char *
s_test_domain (const char *name, const char *cvm_id, const char *owner)
{
    //  Z85 has <, > and &
    char *escaped = calloc (1, 5 * strlen (owner) + 1);
    assert (escaped);
    char *at = escaped;
    for (const char *c = owner; *c; c++)
        at = stpcpy (at, *c == '<' ? "&lt;" : *c == '>' ? "&gt;" : *c == '&' ? "&amp;"
                       : (char [2]) { *c, 0 });
    char *xml = zsys_sprintf (
        "  <domain type='test'><name>%s</name><memory>131072</memory>"
        "<vcpu>1</vcpu><os><type>hvm</type></os>"
        "<metadata><umbra:cvm xmlns:umbra='" UMB_DOMAIN_METADATA_URI "'>"
        "<umbra:id>%s</umbra:id><umbra:owner>%s</umbra:owner><umbra:created>1</umbra:created>"
        "</umbra:cvm></metadata></domain>\n", name, cvm_id, escaped);
    free (escaped);
    return xml;
}

static int
s_reconciled (s_test_t *test, int hosts)
{
    int64_t deadline = zclock_mono () + UMB_TESTKIT_TIMEOUT;
    while (true) {
        zstr_send (test->backends, "RECONCILED");
        char *answer = zstr_recv (test->backends);
        int done = 0, orphans = 0;
        assert (answer && sscanf (answer, "%d %d", &done, &orphans) == 2);
        zstr_free (&answer);
        if (done >= hosts)
            return orphans;
        assert (zclock_mono () < deadline);
        //  Ask again after the loop had a turn: a ping is a round trip through it
        umb_reply_t *reply = umb_testkit_call (test->client, "sys.ping", NULL, NULL);
        umb_reply_destroy (&reply);
    }
}

static char *
s_user (s_test_t *test, const char *username, const char *password)
{
    umb_reply_t *reply;
    if (!streq (username, "root")) {
        reply = umb_testkit_call (test->auth_client, "auth.users.register", NULL, "username",
                                  username, "password", password, NULL);
        umb_testkit_expect (&reply, 201, NULL, NULL);
    }
    reply = s_expect (umb_testkit_call (test->auth_client, "auth.tokens.create", NULL, "username",
                                        username, "password", password, NULL), 201);
    char *token = umb_testkit_dup (reply, "access_token", S_STR_MAX);
    umb_reply_destroy (&reply);
    return token;
}

static void
s_platform_start (s_test_t *test)
{
    char dir [] = "/tmp/umb-backends-test-XXXXXX";
    assert (mkdtemp (dir));
    test->state_dir = strdup (dir);
    umb_config_t *config = umb_config_new ();
    char *error = NULL;
    static const char *const settings [] = {
        "auth.endpoint", "tcp://127.0.0.1:*", "auth.pub_endpoint", "tcp://127.0.0.1:*",
        "auth.pwhash", "interactive", "log.level", "error",
        "admin.username", "root", "admin.password", S_ROOT_PASSWORD,
        "backends.endpoint", "tcp://127.0.0.1:*", "backends.pub_endpoint", "tcp://127.0.0.1:*",
        "certs.endpoint", "tcp://127.0.0.1:*", "certs.pub_endpoint", "tcp://127.0.0.1:*",
        "certs.http_listen", "127.0.0.1:0", "certs.http_threads", "1",
        "backends.certify_agents", "true", "backends.boot_timeout_s", "30",
        "backends.agent_timeout_s", "10",
        //  Billing's checks and usage are tested with billing (umb_billing,
        //  tests/integration/billing_rest.sh)
        "billing.enabled", "false", NULL
    };
    assert (umb_config_set (config, "state_dir", dir, &error) == 0);
    for (const char *const *setting = settings; *setting; setting += 2)
        assert (umb_config_set (config, setting [0], setting [1], &error) == 0);
    test->runtime = umb_runtime_new (&config, &error);
    assert (test->runtime);
    test->null_fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
    assert (test->null_fd >= 0);
    umb_log_set_fd (umb_runtime_log (test->runtime), test->null_fd);
    test->gateway = umb_runtime_identity (test->runtime, "gateway");
    assert (test->gateway);
    test->auth = zactor_new (umb_auth_actor, test->runtime);
    zstr_send (test->auth, "ENDPOINT");
    char *auth_endpoint = zstr_recv (test->auth);
    assert (auth_endpoint && *auth_endpoint);
    assert (umb_config_set (umb_runtime_config (test->runtime), "auth.endpoint", auth_endpoint,
                            &error) == 0);
    char *auth_key = umb_runtime_public_key (test->runtime, "auth");
    test->auth_client = umb_client_new (auth_endpoint, auth_key, test->gateway);
    assert (test->auth_client);
    zstr_free (&auth_key);
    zstr_free (&auth_endpoint);
    //  The real certs service: agents' keys get mesh certificates
    test->certs = zactor_new (umb_certs_actor, test->runtime);
    zstr_send (test->certs, "ENDPOINT");
    char *certs_endpoint = zstr_recv (test->certs);
    assert (certs_endpoint && *certs_endpoint);
    assert (umb_config_set (umb_runtime_config (test->runtime), "certs.endpoint", certs_endpoint,
                            &error) == 0);
    zstr_free (&certs_endpoint);

    //  alice owns workspace "lab"; bob is a viewer there
    test->token = s_user (test, "alice", "alice-password-1");
    umb_reply_t *reply = umb_testkit_call (test->auth_client, "auth.workspaces.create",
                                           test->token, "name", "lab", NULL);
    umb_testkit_expect (&reply, 201, NULL, NULL);
    test->viewer = s_user (test, "bob", "bob-password-12");
    reply = umb_testkit_call (test->auth_client, "auth.members.add", test->token,
                              "workspace", "lab", "username", "bob", "role", "viewer", NULL);
    if (umb_reply_status (reply) != 201 && umb_reply_status (reply) != 200) {
        //  Invitations instead of direct adds: bob simply stays outside
        zstr_free (&test->viewer);
    }
    umb_reply_destroy (&reply);
    s_backends_start (test);
}

static void
s_platform_stop (s_test_t *test)
{
    s_backends_stop (test);
    umb_client_destroy (&test->auth_client);
    zactor_destroy (&test->certs);
    zactor_destroy (&test->auth);
    zcert_destroy (&test->gateway);
    umb_runtime_destroy (&test->runtime);
    close (test->null_fd);
    umb_testkit_remove_dir (test->state_dir);
    free (test->state_dir);
    zstr_free (&test->token);
    zstr_free (&test->viewer);
}

//  ---------------------------------------------------------------- calls

static umb_reply_t *
s_register (s_test_t *test, const char *name, const char *uri, const char *driver,
            bool insecure_dev)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace", "lab");
    umb_w_kv_str (w, "name", name);
    umb_w_kv_str (w, "uri", uri);
    if (driver)
        umb_w_kv_str (w, "driver", driver);
    if (insecure_dev)
        umb_w_kv_bool (w, "insecure_dev", true);
    umb_w_map_end (w);
    return umb_testkit_callw (test->client, "backends.hosts.register", test->token, w);
}

static umb_reply_t *
s_create (s_test_t *test, const char *host, const char *tee, int64_t vcpus, int64_t memory,
          int64_t ttl, const char *manifest)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace", "lab");
    if (host)
        umb_w_kv_str (w, "host", host);
    umb_w_kv_str (w, "tee", tee);
    umb_w_kv_int (w, "vcpus", vcpus);
    umb_w_kv_int (w, "memory_mb", memory);
    if (ttl)
        umb_w_kv_int (w, "ttl_s", ttl);
    if (manifest)
        umb_w_kv_str (w, "manifest", manifest);
    umb_w_map_end (w);
    return umb_testkit_callw (test->client, "backends.cvms.create", test->token, w);
}

//  backends.events.pull as alice, or (run) backends.run.events as the
//  client's mesh identity
static umb_reply_t *
s_pull_as (s_test_t *test, bool run, const char *cvm, int64_t after, int64_t wait_ms)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    if (!run)
        umb_w_kv_str (w, "workspace", "lab");
    umb_w_kv_str (w, "cvm", cvm);
    umb_w_kv_int (w, "after", after);
    umb_w_kv_int (w, "wait_ms", wait_ms);
    umb_w_map_end (w);
    return umb_testkit_callw (test->client, run ? "backends.run.events" : "backends.events.pull",
                              run ? NULL : test->token, w);
}

static umb_reply_t *
s_pull (s_test_t *test, const char *cvm, int64_t after, int64_t wait_ms)
{
    return s_pull_as (test, false, cvm, after, wait_ms);
}

//  backends.run.create as client's identity; NULL fields are left out
static umb_reply_t *
s_run_create (umb_client_t *client, const char *workspace_id, const char *host, const char *tee,
              const char *computation, const char *manifest)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    if (workspace_id)
        umb_w_kv_str (w, "workspace_id", workspace_id);
    umb_w_kv_str (w, "created_by", "usr_0123456789abcdef");
    if (host)
        umb_w_kv_str (w, "host", host);
    umb_w_kv_str (w, "tee", tee);
    umb_w_kv_int (w, "vcpus", 1);
    umb_w_kv_int (w, "memory_mb", 256);
    if (computation)
        umb_w_kv_str (w, "computation", computation);
    if (manifest)
        umb_w_kv_str (w, "manifest", manifest);
    umb_w_map_end (w);
    return umb_testkit_callw (client, "backends.run.create", NULL, w);
}

//  A client of the backends service with cert's identity (borrowed)
static umb_client_t *
s_client_as (s_test_t *test, zcert_t *cert)
{
    zstr_send (test->backends, "ENDPOINT");
    char *endpoint = zstr_recv (test->backends);
    char *key = umb_runtime_public_key (test->runtime, "backends");
    umb_client_t *client = umb_client_new (endpoint, key, cert);
    assert (client);
    zstr_free (&key);
    zstr_free (&endpoint);
    return client;
}

//  The workspace id of "lab", as its host t1 says
static char *
s_lab_id (s_test_t *test)
{
    umb_reply_t *reply = s_expect (umb_testkit_call (test->client, "backends.hosts.get",
                                                     test->token, "workspace", "lab", "host",
                                                     "t1", NULL), 200);
    char *id = umb_testkit_dup (reply, "workspace_id", 64);
    umb_reply_destroy (&reply);
    return id;
}

static char *
s_state (s_test_t *test, const char *cvm)
{
    umb_reply_t *reply = s_expect (umb_testkit_call (test->client, "backends.cvms.get",
                                                     test->token, "workspace", "lab", "cvm", cvm,
                                                     NULL), 200);
    char *state = umb_testkit_dup (reply, "state", 32);
    umb_reply_destroy (&reply);
    return state;
}

//  Pulls (and acknowledges) events until the CVM reaches state; asserts the
//  sequence numbers grow by one. Returns every message seen, joined by
//  newlines (caller frees).
static char *
s_wait_as (s_test_t *test, bool run, const char *cvm, const char *state)
{
    int64_t after = 0;
    size_t size = 1;
    char *seen = calloc (1, size);
    int64_t deadline = zclock_mono () + 60000;
    while (true) {
        assert (zclock_mono () < deadline);
        umb_reply_t *reply = s_expect (s_pull_as (test, run, cvm, after, 2000), 200);
        umb_msg_t *events = umb_msg_array (umb_reply_body (reply), "events", 1000, true);
        assert (events);
        for (size_t index = 0; index < umb_msg_size (events); index++) {
            umb_msg_t *event = umb_msg_at (events, index);
            int64_t seq = umb_msg_int (event, "seq", 1, INT64_MAX, 0, true);
            assert (seq == after + 1);
            after = seq;
            const char *source = umb_msg_str (event, "source", 32, true);
            const char *message = umb_msg_str (event, "message", 8192, true);
            assert (!umb_msg_failed (event));
            char *line = zsys_sprintf ("%s: %s\n", source, message);
            size += strlen (line);
            seen = realloc (seen, size);
            strcat (seen, line);
            free (line);
        }
        const char *now = s_str (reply, "state");
        bool reached = now && streq (now, state);
        umb_reply_destroy (&reply);
        if (reached)
            return seen;
    }
}

static char *
s_wait_state (s_test_t *test, const char *cvm, const char *state)
{
    return s_wait_as (test, false, cvm, state);
}

//  ---------------------------------------------------------------- test:///

static void
s_test_driver (s_test_t *test)
{
    umb_reply_t *reply;
    //  Bad hosts: not libvirt, wrong driver, process without insecure_dev
    reply = s_register (test, "web", "http://example.com/", NULL, false);
    umb_testkit_expect (&reply, 422, "invalid_argument", NULL);
    reply = s_register (test, "bad", "test:///default", "libvirt", false);
    umb_testkit_expect (&reply, 422, NULL, "does not drive");
    reply = s_register (test, "p0", "process:///", NULL, false);
    umb_testkit_expect (&reply, 422, NULL, "insecure_dev");
    reply = s_register (test, "bad name!", "test:///default", NULL, false);
    umb_testkit_expect (&reply, 422, NULL, "name");
    //  Unreachable: 502 with the reason, nothing stored
    reply = s_register (test, "gone", "qemu+unix:///system?socket=/nonexistent/libvirt-sock",
                        NULL, false);
    umb_testkit_expect (&reply, 502, "host_unreachable", "cannot reach");

    reply = s_expect (s_register (test, "t1", "test:///default", NULL, false), 201);
    assert (streq (s_str (reply, "driver"), "test") && streq (s_str (reply, "status"), "up"));
    umb_msg_t *caps = umb_msg_map (umb_reply_body (reply), "caps", true);
    assert (umb_msg_int (caps, "cpus", 1, INT64_MAX, 0, true) > 0);
    size_t count = 0;
    const char **tees = umb_msg_strv (caps, "tees", 8, 16, &count, true);
    assert (tees && count == 1 && streq (tees [0], "none"));
    umb_reply_destroy (&reply);
    //  Duplicates: the name, or the URI
    reply = s_register (test, "t1", "test:///default", NULL, false);
    umb_testkit_expect (&reply, 409, "duplicate_host", NULL);
    reply = s_register (test, "t1b", "test:///default", NULL, false);
    umb_testkit_expect (&reply, 409, "duplicate_host", "registered already");
    //  Viewers read, never manage; strangers see nothing
    if (test->viewer) {
        reply = umb_testkit_call (test->client, "backends.hosts.list", test->viewer,
                                  "workspace", "lab", NULL);
        umb_testkit_expect (&reply, 200, NULL, NULL);
        reply = umb_testkit_call (test->client, "backends.hosts.remove", test->viewer,
                                  "workspace", "lab", "host", "t1", NULL);
        umb_testkit_expect (&reply, 403, NULL, NULL);
    }
    reply = umb_testkit_call (test->client, "backends.hosts.get", test->token,
                              "workspace", "lab", "host", "t1", NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "backends.hosts.get", test->token,
                              "workspace", "lab", "host", "nope", NULL);
    umb_testkit_expect (&reply, 404, NULL, "no host");

    //  Bad CVMs
    reply = s_create (test, NULL, "sgx", 1, 256, 0, NULL);
    umb_testkit_expect (&reply, 422, NULL, "not a TEE type");
    reply = s_create (test, NULL, "none", 0, 256, 0, NULL);
    umb_testkit_expect (&reply, 422, NULL, "vcpus");
    reply = s_create (test, NULL, "none", 1, 64, 0, NULL);
    umb_testkit_expect (&reply, 422, NULL, "memory_mb");
    reply = s_create (test, NULL, "none", 1, 256, -5, NULL);
    umb_testkit_expect (&reply, 422, NULL, "ttl_s");
    reply = s_create (test, NULL, "none", 1, 256, 0, "[not json");
    umb_testkit_expect (&reply, 422, NULL, "manifest");
    reply = s_create (test, NULL, "sev-snp", 1, 256, 0, NULL);
    umb_testkit_expect (&reply, 409, "no_host", "sev-snp");
    reply = s_create (test, "nope", "none", 1, 256, 0, NULL);
    umb_testkit_expect (&reply, 404, NULL, NULL);

    //  A CVM on test:///default: defined and started, no agent
    reply = s_expect (s_create (test, NULL, "none", 1, 256, 0, NULL), 201);
    char *cvm = umb_testkit_dup (reply, "id", 64);
    assert (streq (s_str (reply, "state"), "Running"));
    assert (strstr (s_str (reply, "agent"), "test driver"));
    assert (strncmp (s_str (reply, "domain"), "umbra-cvm_", 10) == 0);
    umb_reply_destroy (&reply);
    char *seen = s_wait_state (test, cvm, "Running");
    assert (strstr (seen, "Requested -> Defining") && strstr (seen, "Booting -> Running"));
    assert (strstr (seen, "the agent part is skipped"));
    free (seen);
    //  Capacity follows
    reply = s_expect (umb_testkit_call (test->client, "backends.hosts.get", test->token,
                                        "workspace", "lab", "host", "t1", NULL), 200);
    umb_msg_t *capacity = umb_msg_map (umb_reply_body (reply), "capacity", true);
    assert (umb_msg_int (capacity, "cvms", 0, 100, 0, true) == 1);
    assert (umb_msg_int (capacity, "memory_mb_used", 0, INT64_MAX, 0, true) == 256);
    umb_reply_destroy (&reply);
    //  No agent: no manifest
    reply = umb_testkit_call (test->client, "backends.cvms.manifest", test->token,
                              "workspace", "lab", "cvm", cvm, "manifest", "{}", NULL);
    umb_testkit_expect (&reply, 409, "wrong_state", "no agent");
    //  A busy host is not removed
    reply = umb_testkit_call (test->client, "backends.hosts.remove", test->token,
                              "workspace", "lab", "host", "t1", NULL);
    umb_testkit_expect (&reply, 409, "host_busy", NULL);

    //  A second one, then paging
    reply = s_expect (s_create (test, "t1", "none", 2, 512, 0, NULL), 201);
    char *second = umb_testkit_dup (reply, "id", 64);
    umb_reply_destroy (&reply);
    reply = s_expect (umb_testkit_call (test->client, "backends.cvms.list", test->token,
                                        "workspace", "lab", NULL), 200);
    assert (umb_msg_size (umb_msg_array (umb_reply_body (reply), "items", 100, true)) == 2);
    umb_reply_destroy (&reply);
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace", "lab");
    umb_w_kv_int (w, "limit", 1);
    umb_w_map_end (w);
    reply = s_expect (umb_testkit_callw (test->client, "backends.cvms.list", test->token, w), 200);
    umb_msg_t *items = umb_msg_array (umb_reply_body (reply), "items", 100, true);
    assert (umb_msg_size (items) == 1);
    char *next = umb_testkit_dup (reply, "next", 64);
    umb_reply_destroy (&reply);
    reply = s_expect (umb_testkit_call (test->client, "backends.cvms.list", test->token,
                                        "workspace", "lab", "cursor", next, "state", "Running",
                                        NULL), 200);
    items = umb_msg_array (umb_reply_body (reply), "items", 100, true);
    assert (umb_msg_size (items) == 1);
    umb_reply_destroy (&reply);
    free (next);

    //  Destroy: Stopping -> Destroyed; again is refused with the reason
    reply = s_expect (umb_testkit_call (test->client, "backends.cvms.destroy", test->token,
                                        "workspace", "lab", "cvm", cvm, NULL), 200);
    assert (streq (s_str (reply, "state"), "Destroyed"));
    assert (strstr (s_str (reply, "reason"), "destroyed by"));
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test->client, "backends.cvms.destroy", test->token,
                              "workspace", "lab", "cvm", cvm, NULL);
    umb_testkit_expect (&reply, 409, "wrong_state", "destroyed already");
    seen = s_wait_state (test, cvm, "Destroyed");
    free (seen);

    //  Destroyed behind the service's back: libvirt's event makes it Failed
    reply = s_expect (s_create (test, "t1", "none", 1, 128, 0, NULL), 201);
    char *victim = umb_testkit_dup (reply, "id", 64);
    umb_reply_destroy (&reply);
    zstr_sendx (test->backends, "BEHIND", victim, NULL);
    char *sent = zstr_recv (test->backends);
    assert (sent && streq (sent, "1"));
    zstr_free (&sent);
    seen = s_wait_state (test, victim, "Failed");
    assert (strstr (seen, "the VM was destroyed behind the service's back"));
    free (seen);
    free (victim);

    //  TTL: one second
    reply = s_expect (s_create (test, "t1", "none", 1, 128, 1, NULL), 201);
    char *brief = umb_testkit_dup (reply, "id", 64);
    umb_reply_destroy (&reply);
    seen = s_wait_state (test, brief, "Destroyed");
    assert (strstr (seen, "ttl expired"));
    free (seen);
    //  Acknowledged events stay readable; the ack is remembered
    reply = s_expect (umb_testkit_call (test->client, "backends.cvms.get", test->token,
                                        "workspace", "lab", "cvm", brief, NULL), 200);
    assert (umb_testkit_int (reply, "acked") > 0);
    assert (umb_testkit_int (reply, "acked") <= umb_testkit_int (reply, "events"));
    umb_reply_destroy (&reply);
    free (brief);
    free (cvm);

    //  Reconciliation: a test:///FILE host whose file holds umbra-orphan (made
    //  by this service: its key in the metadata), umbra-foreign (another umbra
    //  service's) and not-ours (no umbra name)
    char *own_key = umb_runtime_public_key (test->runtime, "backends");
    assert (own_key);
    char *orphan_xml = s_test_domain ("umbra-orphan", "orphan", own_key);
    char *foreign_xml = s_test_domain ("umbra-foreign", "foreign",
                                       "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
    char *file = zsys_sprintf ("%s/node.xml", test->state_dir);
    FILE *out = fopen (file, "w");
    assert (out);
    fprintf (out,
        "<node>\n"
        "  <cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>"
        "<active>4</active><mhz>2000</mhz><model>x86_64</model></cpu>\n"
        "  <memory>8388608</memory>\n"
        "%s%s"
        "  <domain type='test'><name>not-ours</name><memory>131072</memory>"
        "<vcpu>1</vcpu><os><type>hvm</type></os></domain>\n"
        "</node>\n", orphan_xml, foreign_xml);
    fclose (out);
    char *uri = zsys_sprintf ("test://%s", file);
    reply = s_expect (s_register (test, "t2", uri, NULL, false), 201);
    umb_reply_destroy (&reply);
    //  A host that is gone after the restart: its file disappears
    char *gone_file = zsys_sprintf ("%s/gone.xml", test->state_dir);
    char *command = zsys_sprintf ("cp '%s' '%s'", file, gone_file);
    assert (system (command) == 0);
    free (command);
    char *gone_uri = zsys_sprintf ("test://%s", gone_file);
    reply = s_expect (s_register (test, "t3", gone_uri, NULL, false), 201);
    umb_reply_destroy (&reply);
    assert (unlink (gone_file) == 0);
    //  A CVM on t2; its domain lives in the service's connection only, so the
    //  file gets it too, as if libvirt had kept it through the restart
    reply = s_expect (s_create (test, "t2", "none", 1, 128, 0, NULL), 201);
    char *kept = umb_testkit_dup (reply, "id", 64);
    umb_reply_destroy (&reply);
    char *kept_name = zsys_sprintf ("umbra-%s", kept);
    char *kept_xml = s_test_domain (kept_name, kept, own_key);
    out = fopen (file, "w");
    assert (out);
    fprintf (out,
        "<node>\n"
        "  <cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>"
        "<active>4</active><mhz>2000</mhz><model>x86_64</model></cpu>\n"
        "  <memory>8388608</memory>\n"
        "%s%s%s"
        "</node>\n", orphan_xml, foreign_xml, kept_xml);
    fclose (out);
    zstr_free (&kept_name);
    zstr_free (&kept_xml);
    //  Restart: test:///default comes back empty (its state lived in the old
    //  connection), so the live CVM there is Failed; the orphan is destroyed
    s_backends_stop (test);
    s_backends_start (test);
    //  t2's fresh connection holds umbra-orphan: destroyed (the one orphan);
    //  umbra-foreign is another service's: left alone; t3's file is gone: the
    //  host is unreachable, with the reason
    assert (s_reconciled (test, 3) == 1);
    reply = s_expect (umb_testkit_call (test->client, "backends.hosts.get", test->token,
                                        "workspace", "lab", "host", "t3", NULL), 200);
    assert (streq (s_str (reply, "status"), "unreachable") && *s_str (reply, "error"));
    umb_reply_destroy (&reply);
    reply = s_create (test, "t3", "none", 1, 128, 0, NULL);
    umb_testkit_expect (&reply, 409, "no_host", "unreachable");
    //  Unpinned, the scheduler picks a reachable host
    for (int index = 0; index < 3; index++) {
        reply = s_expect (s_create (test, NULL, "none", 1, 128, 0, NULL), 201);
        assert (!streq (s_str (reply, "host"), "t3"));
        umb_reply_destroy (&reply);
    }
    free (gone_uri);
    free (gone_file);
    seen = s_wait_state (test, second, "Failed");
    assert (strstr (seen, "the VM disappeared while the service was down"));
    free (seen);
    //  The CVM whose domain is there is adopted, still Running
    seen = s_wait_state (test, kept, "Running");
    assert (strstr (seen, "adopted after a restart of the service"));
    free (seen);
    free (kept);
    free (second);
    free (uri);
    free (file);
    zstr_free (&own_key);
    zstr_free (&orphan_xml);
    zstr_free (&foreign_xml);
}

//  ---------------------------------------------------------------- backends.run.*

//  Every run.* operation as client, on cvm, answered with status
static void
s_run_refused (umb_client_t *client, const char *cvm, int status)
{
    //  A create names no CVM: refused to callers that are not services; for
    //  services, this workspace has no host
    umb_reply_t *reply = s_run_create (client, "ws_0123456789abcdef", NULL, "none", "cmp_x/run_y",
                                       NULL);
    umb_testkit_expect (&reply, status == 404 ? 409 : status, NULL, NULL);
    static const char *const ops [] = {
        "backends.run.get", "backends.run.destroy", "backends.run.events", NULL
    };
    char *missing = zsys_sprintf ("no CVM '%s'", cvm);
    for (const char *const *op = ops; *op; op++) {
        reply = umb_testkit_call (client, *op, NULL, "cvm", cvm, NULL);
        umb_testkit_expect (&reply, status, NULL, status == 404 ? missing : NULL);
    }
    reply = umb_testkit_call (client, "backends.run.manifest", NULL, "cvm", cvm, "manifest", "{}",
                              NULL);
    umb_testkit_expect (&reply, status, NULL, status == 404 ? missing : NULL);
    zstr_free (&missing);
}

//  The MESH variant on test:///default: test->client is the gateway's mesh
//  identity, a service; auth's key is another; a stranger's key is none
static void
s_run_ops (s_test_t *test)
{
    char *lab = s_lab_id (test);
    char *gateway_key = strdup (zcert_public_txt (test->gateway));
    umb_reply_t *reply;
    //  Bad requests: the trusted fields are required, the rest as cvms.create
    reply = s_run_create (test->client, NULL, "t1", "none", "cmp_x/run_y", NULL);
    umb_testkit_expect (&reply, 400, NULL, "workspace_id");
    reply = s_run_create (test->client, lab, "t1", "none", NULL, NULL);
    umb_testkit_expect (&reply, 400, NULL, "computation");
    reply = s_run_create (test->client, lab, "t1", "sgx", "cmp_x/run_y", NULL);
    umb_testkit_expect (&reply, 422, NULL, "not a TEE type");
    reply = s_run_create (test->client, "lab", "t1", "none", "cmp_x/run_y", NULL);
    umb_testkit_expect (&reply, 422, NULL, "workspace_id");
    reply = s_run_create (test->client, lab, "t1", "none", "", NULL);
    umb_testkit_expect (&reply, 422, NULL, "computation");
    reply = s_run_create (test->client, lab, "t1", "none", "cmp_x/run_y", "[not json");
    umb_testkit_expect (&reply, 422, NULL, "manifest");
    reply = s_run_create (test->client, lab, "nope", "none", "cmp_x/run_y", NULL);
    umb_testkit_expect (&reply, 404, NULL, "no host 'nope'");
    //  A workspace without hosts
    reply = s_run_create (test->client, "ws_0123456789abcdef", NULL, "none", "cmp_x/run_y", NULL);
    umb_testkit_expect (&reply, 409, "no_host", NULL);

    //  Created for alice's workspace without a token; the service's key is kept
    reply = s_expect (s_run_create (test->client, lab, "t1", "none", "cmp_x/run_y", NULL), 201);
    char *cvm = umb_testkit_dup (reply, "id", 64);
    assert (streq (s_str (reply, "state"), "Running"));
    assert (streq (s_str (reply, "workspace_id"), lab));
    assert (streq (s_str (reply, "computation"), "cmp_x/run_y"));
    assert (streq (s_str (reply, "created_by"), "usr_0123456789abcdef"));
    assert (streq (s_str (reply, "created_by_service"), gateway_key));
    umb_reply_destroy (&reply);
    reply = s_expect (umb_testkit_call (test->client, "backends.run.get", NULL, "cvm", cvm, NULL),
                      200);
    assert (streq (s_str (reply, "id"), cvm) && streq (s_str (reply, "state"), "Running"));
    umb_reply_destroy (&reply);
    //  The workspace's members see it as any of its CVMs
    reply = s_expect (umb_testkit_call (test->client, "backends.cvms.get", test->token,
                                        "workspace", "lab", "cvm", cvm, NULL), 200);
    assert (streq (s_str (reply, "created_by_service"), gateway_key));
    umb_reply_destroy (&reply);
    //  A CVM a user created is not the service's, nor is an unknown one
    reply = s_expect (s_create (test, "t1", "none", 1, 128, 0, NULL), 201);
    char *users = umb_testkit_dup (reply, "id", 64);
    assert (s_str (reply, "created_by_service") == NULL);
    umb_reply_destroy (&reply);
    s_run_refused (test->client, users, 404);
    s_run_refused (test->client, "cvm_0000000000000000", 404);

    //  Another service identity sees none of it, and makes its own
    zcert_t *auth_cert = umb_runtime_identity (test->runtime, "auth");
    assert (auth_cert);
    umb_client_t *other = s_client_as (test, auth_cert);
    s_run_refused (other, cvm, 404);
    reply = s_expect (s_run_create (other, lab, "t1", "none", "cmp_z/run_1", NULL), 201);
    char *others = umb_testkit_dup (reply, "id", 64);
    assert (streq (s_str (reply, "created_by_service"), zcert_public_txt (auth_cert)));
    umb_reply_destroy (&reply);
    s_run_refused (test->client, others, 404);
    reply = s_expect (umb_testkit_call (other, "backends.run.destroy", NULL, "cvm", others,
                                        NULL), 200);
    assert (streq (s_str (reply, "state"), "Destroyed"));
    umb_reply_destroy (&reply);
    //  A key admitted to the mesh that is no service: 403 everywhere, a
    //  user's token notwithstanding
    zcert_t *stranger = zcert_new ();
    umb_zap_allow (umb_runtime_zap (test->runtime), zcert_public_txt (stranger), "stranger");
    umb_client_t *outsider = s_client_as (test, stranger);
    s_run_refused (outsider, cvm, 403);
    reply = umb_testkit_call (outsider, "backends.run.get", test->token, "cvm", cvm, NULL);
    umb_testkit_expect (&reply, 403, NULL, "mesh services only");
    umb_client_destroy (&outsider);
    zcert_destroy (&stranger);
    umb_client_destroy (&other);
    zcert_destroy (&auth_cert);

    //  Its events, in order; no agent on the test driver: no manifest
    char *seen = s_wait_as (test, true, cvm, "Running");
    assert (strstr (seen, "through the mesh service") && strstr (seen, "Booting -> Running"));
    free (seen);
    reply = umb_testkit_call (test->client, "backends.run.manifest", NULL, "cvm", cvm,
                              "manifest", "{}", NULL);
    umb_testkit_expect (&reply, 409, "wrong_state", "no agent");
    //  Destroyed by the service, said so; again is refused
    reply = s_expect (umb_testkit_call (test->client, "backends.run.destroy", NULL, "cvm", cvm,
                                        "reason", "run finished", NULL), 200);
    assert (streq (s_str (reply, "state"), "Destroyed"));
    assert (strstr (s_str (reply, "reason"), "destroyed by the mesh service")
            && strstr (s_str (reply, "reason"), "run finished"));
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test->client, "backends.run.destroy", NULL, "cvm", cvm, NULL);
    umb_testkit_expect (&reply, 409, "wrong_state", "destroyed already");
    seen = s_wait_as (test, true, cvm, "Destroyed");
    free (seen);
    reply = s_expect (umb_testkit_call (test->client, "backends.cvms.destroy", test->token,
                                        "workspace", "lab", "cvm", users, NULL), 200);
    umb_reply_destroy (&reply);
    free (others);
    free (users);
    free (cvm);
    free (gateway_key);
    free (lab);
}

//  ---------------------------------------------------------------- process

//  The pid of the umbra-agent whose work dir is under the CVM's, or 0
static pid_t
s_agent_pid (const char *cvm)
{
    DIR *proc = opendir ("/proc");
    assert (proc);
    pid_t found = 0;
    struct dirent *entry;
    char needle [128];
    snprintf (needle, sizeof needle, "/%s/agent", cvm);
    while (!found && (entry = readdir (proc))) {
        pid_t pid = (pid_t) atoi (entry->d_name);
        if (pid <= 0)
            continue;
        char path [64], cmdline [4096];
        snprintf (path, sizeof path, "/proc/%d/cmdline", pid);
        FILE *file = fopen (path, "r");
        if (!file)
            continue;
        size_t size = fread (cmdline, 1, sizeof cmdline - 1, file);
        fclose (file);
        for (size_t index = 0; index < size; index++)
            if (!cmdline [index])
                cmdline [index] = ' ';
        cmdline [size] = 0;
        if (strstr (cmdline, "umbra-agent") && strstr (cmdline, needle))
            found = pid;
    }
    closedir (proc);
    return found;
}

static char *
s_manifest (const char *id)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
    assert (key);
    BIO *bio = BIO_new (BIO_s_mem ());
    assert (PEM_write_bio_PUBKEY (bio, key));
    char *data = NULL;
    long size = BIO_get_mem_data (bio, &data);
    //  JSON-escape the PEM's newlines
    char pem [1024] = "";
    for (long index = 0, out = 0; index < size && out < (long) sizeof pem - 3; index++) {
        if (data [index] == '\n') {
            pem [out++] = '\\';
            pem [out++] = 'n';
        }
        else
            pem [out++] = data [index];
    }
    char *json = zsys_sprintf (
        "{\"id\": \"%s\", \"name\": \"backends selftest\","
        " \"algorithm\": {\"hash\": \"%064d\", \"userKey\": \"%s\", \"type\": \"python\"},"
        " \"datasets\": [], \"result_consumers\": [{\"userKey\": \"%s\"}]}", id, 7, pem, pem);
    BIO_free (bio);
    EVP_PKEY_free (key);
    return json;
}

static void
s_process_driver (s_test_t *test)
{
    umb_reply_t *reply = s_expect (s_register (test, "p1", "process:///", NULL, true), 201);
    assert (streq (s_str (reply, "driver"), "process"));
    umb_reply_destroy (&reply);
    reply = s_expect (s_create (test, "p1", "none", 1, 256, 0, NULL), 201);
    char *cvm = umb_testkit_dup (reply, "id", 64);
    assert (streq (s_str (reply, "state"), "Booting"));
    umb_reply_destroy (&reply);
    //  The agent comes up behind the bridge; its attestation (none) is accepted
    //  because the host is insecure_dev, and said so
    char *seen = s_wait_state (test, cvm, "AgentReady");
    assert (strstr (seen, "insecure: the agent's attestation is none"));
    free (seen);
    reply = s_expect (umb_testkit_call (test->client, "backends.cvms.get", test->token,
                                        "workspace", "lab", "cvm", cvm, NULL), 200);
    assert (streq (s_str (reply, "agent"), "insecure"));
    assert (strlen (s_str (reply, "agent_key")) == 40);
    assert (strncmp (s_str (reply, "agent_endpoint"), "tcp://127.0.0.1:", 16) == 0);
    assert (strncmp (s_str (reply, "attest_endpoint"), "tcp://127.0.0.1:", 16) == 0);
    umb_reply_destroy (&reply);
    //  The agent's key gets a mesh certificate from certs
    int64_t deadline = zclock_mono () + 20000;
    while (true) {
        reply = s_expect (umb_testkit_call (test->client, "backends.cvms.get", test->token,
                                            "workspace", "lab", "cvm", cvm, NULL), 200);
        bool certified = s_str (reply, "mesh_cert") != NULL;
        umb_reply_destroy (&reply);
        if (certified)
            break;
        assert (zclock_mono () < deadline);
        reply = s_pull (test, cvm, 0, 200);
        umb_reply_destroy (&reply);
    }
    //  A manifest the agent refuses: its reason, the CVM stays ready
    reply = umb_testkit_call (test->client, "backends.cvms.manifest", test->token,
                              "workspace", "lab", "cvm", cvm, "manifest", "{\"id\": 5}", NULL);
    umb_testkit_expect (&reply, 422, "bad_manifest", NULL);
    char *state = s_state (test, cvm);
    assert (streq (state, "AgentReady"));
    free (state);
    //  A good one: Running, and the agent's own events arrive in order
    char *manifest = s_manifest (cvm);
    reply = s_expect (umb_testkit_call (test->client, "backends.cvms.manifest", test->token,
                                        "workspace", "lab", "cvm", cvm, "manifest", manifest,
                                        NULL), 200);
    assert (streq (s_str (reply, "agent_state"), "ReceivingAlgorithm"));
    umb_reply_destroy (&reply);
    free (manifest);
    seen = s_wait_state (test, cvm, "Running");
    free (seen);
    deadline = zclock_mono () + 20000;
    bool agent_event = false;
    while (!agent_event) {
        assert (zclock_mono () < deadline);
        reply = s_expect (s_pull (test, cvm, 0, 1000), 200);
        umb_msg_t *events = umb_msg_array (umb_reply_body (reply), "events", 1000, true);
        for (size_t index = 0; index < umb_msg_size (events); index++) {
            umb_msg_t *event = umb_msg_at (events, index);
            const char *source = umb_msg_str (event, "source", 32, true);
            const char *message = umb_msg_str (event, "message", 8192, true);
            if (streq (source, "agent") && strstr (message, "ReceivingAlgorithm"))
                agent_event = true;
        }
        umb_reply_destroy (&reply);
    }
    //  Destroy: the children are killed and reaped before the answer
    pid_t pid = s_agent_pid (cvm);
    assert (pid > 0);
    reply = s_expect (umb_testkit_call (test->client, "backends.cvms.destroy", test->token,
                                        "workspace", "lab", "cvm", cvm, NULL), 200);
    assert (streq (s_str (reply, "state"), "Destroyed"));
    umb_reply_destroy (&reply);
    assert (kill (pid, 0) == -1);
    //  ...and its agent's mesh certificate is revoked (certs.mesh.retire)
    deadline = zclock_mono () + 20000;
    bool retired = false;
    while (!retired) {
        assert (zclock_mono () < deadline);
        reply = s_expect (s_pull (test, cvm, 0, 500), 200);
        umb_msg_t *events = umb_msg_array (umb_reply_body (reply), "events", 1000, true);
        for (size_t index = 0; index < umb_msg_size (events); index++) {
            const char *message = umb_msg_str (umb_msg_at (events, index), "message", 8192, true);
            if (strstr (message, "the agent's mesh certificate") && strstr (message, "is revoked"))
                retired = true;
        }
        umb_reply_destroy (&reply);
        if (!retired)
            zclock_sleep (20);
    }
    free (cvm);

    //  backends.run.* on a real agent: the service's CVM comes up, takes a
    //  manifest and goes, all without a token
    char *lab = s_lab_id (test);
    reply = s_expect (s_run_create (test->client, lab, "p1", "none", "cmp_p/run_1", NULL), 201);
    cvm = umb_testkit_dup (reply, "id", 64);
    assert (streq (s_str (reply, "state"), "Booting"));
    umb_reply_destroy (&reply);
    free (lab);
    seen = s_wait_as (test, true, cvm, "AgentReady");
    assert (strstr (seen, "through the mesh service"));
    free (seen);
    reply = umb_testkit_call (test->client, "backends.run.manifest", NULL, "cvm", cvm,
                              "manifest", "{\"id\": 5}", NULL);
    umb_testkit_expect (&reply, 422, "bad_manifest", NULL);
    manifest = s_manifest (cvm);
    reply = s_expect (umb_testkit_call (test->client, "backends.run.manifest", NULL, "cvm", cvm,
                                        "manifest", manifest, NULL), 200);
    assert (streq (s_str (reply, "agent_state"), "ReceivingAlgorithm"));
    umb_reply_destroy (&reply);
    free (manifest);
    seen = s_wait_as (test, true, cvm, "Running");
    free (seen);
    pid = s_agent_pid (cvm);
    assert (pid > 0);
    reply = s_expect (umb_testkit_call (test->client, "backends.run.destroy", NULL, "cvm", cvm,
                                        NULL), 200);
    assert (streq (s_str (reply, "state"), "Destroyed"));
    umb_reply_destroy (&reply);
    assert (kill (pid, 0) == -1);
    free (cvm);

    //  The agent dies: Failed with the reason
    reply = s_expect (s_create (test, "p1", "none", 1, 256, 0, NULL), 201);
    cvm = umb_testkit_dup (reply, "id", 64);
    umb_reply_destroy (&reply);
    seen = s_wait_state (test, cvm, "AgentReady");
    free (seen);
    pid = s_agent_pid (cvm);
    assert (pid > 0);
    assert (kill (pid, SIGKILL) == 0);
    seen = s_wait_state (test, cvm, "Failed");
    assert (strstr (seen, "the agent process died (signal 9)"));
    free (seen);
    free (cvm);

    //  A restart: process children do not survive it
    reply = s_expect (s_create (test, "p1", "none", 1, 256, 0, NULL), 201);
    cvm = umb_testkit_dup (reply, "id", 64);
    umb_reply_destroy (&reply);
    seen = s_wait_state (test, cvm, "AgentReady");
    free (seen);
    s_backends_stop (test);
    s_backends_start (test);
    seen = s_wait_state (test, cvm, "Failed");
    assert (strstr (seen, "backends restarted"));
    free (seen);
    free (cvm);
}

void
umb_backends_test (bool verbose)
{
    printf (" * umb_backends: ");
    fflush (stdout);
    s_test_t test = { .verbose = verbose };
    s_platform_start (&test);
    s_test_driver (&test);
    s_run_ops (&test);
    if (access ("/proc/self/exe", R_OK) == 0)
        s_process_driver (&test);
    s_platform_stop (&test);
    if (verbose)
        printf ("(verbose) ");
    printf ("OK\n");
}
