//  umb_trust - keeps this process's ZAP handler in step with the certs service's mesh revocations
#include <assert.h>
#include <stdatomic.h>
#include <string.h>
#include "umb_trust.h"
#include "umb_testkit.h"
#include "umb_service.h"

#define S_MAX_NAMES 16

struct _umb_trust_t {
    zactor_t        *actor;
    umb_runtime_t   *runtime;
    char            *names [S_MAX_NAMES + 1];
    _Atomic uint64_t rounds;
};

//  Has every identity of this process certified; true when all are.
static bool
s_certify (umb_trust_t *self, umb_client_t *certs, int timeout_ms)
{
    bool all = true;
    for (char **name = self->names; *name; name++) {
        zcert_t *identity = umb_runtime_identity (self->runtime, *name);
        if (!identity)
            continue;
        const char *public_key = zcert_public_txt (identity);
        umb_w_t *body = umb_w_new ();
        umb_w_map_begin (body);
        umb_w_kv_str (body, "name", *name);
        umb_w_kv_str (body, "public_key", public_key);
        umb_w_map_end (body);
        umb_reply_t *reply = umb_client_callw (certs, "certs.mesh.issue", NULL, body, timeout_ms,
                                               NULL);
        if (umb_reply_ok (reply))
            umb_log_debug (umb_runtime_log (self->runtime), "trust: '%s' holds mesh certificate %s",
                           *name, umb_msg_str (umb_reply_body (reply), "serial", 64, false));
        else {
            umb_log_warn (umb_runtime_log (self->runtime), "trust: cannot certify '%s': %s", *name,
                          umb_reply_error (reply) ? umb_reply_error (reply) : "no reason");
            all = false;
        }
        umb_reply_destroy (&reply);
        umb_w_destroy (&body);
        zcert_destroy (&identity);
    }
    return all;
}

//  One round: ask, revoke what is listed, and once this process's identities
//  are certified (enforce), require certificates of everyone else in the
//  set. Returns true if certs answered.
static bool
s_refresh (umb_trust_t *self, umb_client_t *certs, int timeout_ms, int64_t *version, bool enforce,
           int64_t max_age_ms)
{
    umb_reply_t *reply = umb_client_call (certs, "certs.mesh.revoked", NULL, NULL, 0, timeout_ms,
                                          NULL);
    bool answered = umb_reply_ok (reply);
    if (answered) {
        umb_msg_t *body = umb_reply_body (reply);
        int64_t latest = umb_msg_int (body, "version", 0, INT64_MAX, 0, true);
        umb_msg_t *keys = umb_msg_array (body, "keys", 1000000, true);
        size_t count = 0;
        const char **certified = umb_msg_strv (body, "certified", 1000000, 40, &count, true);
        if (umb_msg_failed (body)) {
            umb_log_error (umb_runtime_log (self->runtime), "trust: certs.mesh.revoked answered "
                           "badly: %s", umb_msg_error (body));
            answered = false;
        }
        else
        if (latest != *version) {
            for (size_t i = 0; i < umb_msg_size (keys); i++) {
                const char *key = umb_msg_as_str (umb_msg_at (keys, i), 40, "key");
                if (key)
                    umb_zap_revoke (umb_runtime_zap (self->runtime), key);
            }
            *version = latest;
        }
        if (answered && enforce)
            umb_zap_certified (umb_runtime_zap (self->runtime), certified, count, max_age_ms);
    }
    umb_reply_destroy (&reply);
    return answered;
}

static void
s_trust_actor (zsock_t *pipe, void *args)
{
    umb_trust_t *self = args;
    umb_runtime_t *runtime = self->runtime;
    umb_config_t *config = umb_runtime_config (runtime);
    umb_log_t *log = umb_runtime_log (runtime);
    int interval = (int) umb_config_int (config, "mesh.trust_refresh_ms");
    int64_t max_age_ms = umb_config_int (config, "mesh.trust_max_age_s") * 1000;
    if (max_age_ms < 2 * (int64_t) interval)
        max_age_ms = 2 * (int64_t) interval;
    //  certs itself must stay reachable, or a stale set could never be refreshed
    char *certs_key = umb_runtime_public_key (runtime, "certs");
    if (certs_key)
        umb_zap_exempt (umb_runtime_zap (runtime), certs_key);
    free (certs_key);
    int timeout_ms = (int) umb_config_int (config, "mesh.timeout_ms");
    if (timeout_ms > interval)
        timeout_ms = interval;
    zcert_t *identity = umb_runtime_identity (runtime, self->names [0]);
    umb_client_t *certs = identity ? umb_runtime_client (runtime, "certs", identity) : NULL;
    if (certs)
        umb_client_set_attempts (certs, 1);
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    int64_t version = -1;
    bool reachable = true;
    bool certified = false;
    int64_t next = zclock_mono ();
    while (true) {
        int64_t wait = next - zclock_mono ();
        void *which = zpoller_wait (poller, wait > 0 ? (int) wait : 0);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (term)
                break;
            continue;
        }
        if (zpoller_terminated (poller))
            break;
        next = zclock_mono () + interval;
        if (!certs)
            continue;
        bool answered = s_refresh (self, certs, timeout_ms, &version, certified, max_age_ms);
        if (answered && !certified)
            certified = s_certify (self, certs, timeout_ms);
        if (answered)
            self->rounds++;
        if (answered != reachable)
            umb_log_write (log, answered ? UMB_LOG_INFO : UMB_LOG_WARN,
                           answered ? "trust: mesh revocations from certs are current again"
                                    : "trust: certs cannot be reached; the last known mesh "
                                      "revocations stay in force");
        reachable = answered;
    }
    zpoller_destroy (&poller);
    umb_client_destroy (&certs);
    zcert_destroy (&identity);
}

umb_trust_t *
umb_trust_new (umb_runtime_t *runtime, const char *const *names)
{
    assert (runtime && names && names [0]);
    umb_trust_t *self = calloc (1, sizeof (umb_trust_t));
    assert (self);
    self->runtime = runtime;
    for (size_t i = 0; names [i]; i++) {
        assert (i < S_MAX_NAMES);
        self->names [i] = strdup (names [i]);
    }
    self->actor = zactor_new (s_trust_actor, self);
    assert (self->actor);
    return self;
}

void
umb_trust_destroy (umb_trust_t **self_p)
{
    assert (self_p);
    umb_trust_t *self = *self_p;
    if (self) {
        zactor_destroy (&self->actor);
        for (char **name = self->names; *name; name++)
            free (*name);
        free (self);
        *self_p = NULL;
    }
}

uint64_t
umb_trust_rounds (umb_trust_t *self)
{
    assert (self);
    return self->rounds;
}

//  ---------------------------------------------------------------- selftest

//  A certs service as far as this module cares: certs.mesh.revoked
typedef struct {
    umb_runtime_t       *runtime;
    zcert_t             *cert;
    const char *_Atomic  revoked;   //  the key it lists, or NULL; set by the test
    _Atomic int          issued;    //  certs.mesh.issue calls
    const char          *certified; //  the one key it says is certified
} s_test_certs_t;

static int
s_test_revoked (void *state, umb_req_t *req)
{
    s_test_certs_t *certs = state;
    const char *revoked = certs->revoked;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_int (w, "version", revoked ? 2 : 1);
    umb_w_key (w, "keys");
    umb_w_array_begin (w);
    if (revoked)
        umb_w_str (w, revoked);
    umb_w_array_end (w);
    umb_w_key (w, "certified");
    umb_w_array_begin (w);
    umb_w_str (w, certs->certified);
    umb_w_array_end (w);
    umb_w_map_end (w);
    return 200;
}

static int
s_test_issue (void *state, umb_req_t *req)
{
    s_test_certs_t *certs = state;
    const char *name = umb_msg_str (umb_req_body (req), "name", 64, true);
    const char *key = umb_msg_str (umb_req_body (req), "public_key", 40, true);
    if (!name || !key)
        return umb_req_fail (req, 400, NULL, "%s", umb_msg_error (umb_req_body (req)));
    certs->issued++;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "serial", "1f");
    umb_w_map_end (w);
    return 201;
}

static const umb_route_t s_test_routes [] = {
    { "certs.mesh.issue",   s_test_issue,   UMB_ACCESS_MESH, NULL },
    { "certs.mesh.revoked", s_test_revoked, UMB_ACCESS_MESH, NULL },
    { NULL }
};

static void
s_test_certs_actor (zsock_t *pipe, void *args)
{
    s_test_certs_t *certs = args;
    umb_service_t *service = umb_service_new (&(umb_service_config_t) {
        .name = "certs", .endpoint = "tcp://127.0.0.1:*", .cert = certs->cert,
        .zap = umb_runtime_zap (certs->runtime), .routes = s_test_routes, .state = certs,
        .mesh_services = umb_runtime_service_keys (certs->runtime) });
    assert (service);
    zsock_signal (pipe, 0);
    umb_service_run (service, pipe);
    umb_service_destroy (&service);
}

//  Waits until condition holds, at most 5 s; the watcher works on its own clock.
#define S_WAIT_FOR(condition) do { \
    int64_t deadline_ = zclock_mono () + 5000; \
    while (!(condition) && zclock_mono () < deadline_) \
        zclock_sleep (10); \
    assert (condition); } while (0)

void
umb_trust_test (bool verbose)
{
    if (verbose)
        printf (" * umb_trust: ");
    char dir [] = "/tmp/umb-trust-XXXXXX";
    assert (mkdtemp (dir));
    umb_config_t *config = umb_config_new ();
    char *error = NULL;
    assert (umb_config_set (config, "state_dir", dir, &error) == 0);
    assert (umb_config_set (config, "log.level", "error", &error) == 0);
    assert (umb_config_set (config, "mesh.trust_refresh_ms", "100", &error) == 0);
    umb_runtime_t *runtime = umb_runtime_new (&config, &error);
    assert (runtime);
    zcert_t *auth = umb_runtime_identity (runtime, "auth");
    s_test_certs_t certs = { runtime, umb_runtime_identity (runtime, "certs"), NULL, 0,
                             zcert_public_txt (auth) };
    zactor_t *service = zactor_new (s_test_certs_actor, &certs);
    zstr_send (service, "ENDPOINT");
    char *endpoint = zstr_recv (service);
    assert (umb_config_set (umb_runtime_config (runtime), "certs.endpoint", endpoint, &error) == 0);
    zcert_t *victim = umb_runtime_identity (runtime, "gateway");

    static const char *const names [] = { "auth", "gateway", NULL };
    umb_trust_t *trust = umb_trust_new (runtime, names);
    S_WAIT_FOR (umb_trust_rounds (trust) >= 2);
    //  Each identity of the process was certified once, then certificates are
    //  required: the gateway, not in the certified set, is refused; auth is not
    assert (certs.issued == 2);
    S_WAIT_FOR (umb_trust_rounds (trust) >= 3);
    zcert_t *victim_probe = umb_runtime_identity (runtime, "gateway");
    umb_client_t *probe = umb_client_new (endpoint, zcert_public_txt (certs.cert), victim_probe);
    umb_client_set_attempts (probe, 1);
    umb_reply_t *reply = umb_client_call (probe, "sys.ping", NULL, NULL, 0, 300, NULL);
    assert (!umb_reply_ok (reply));
    umb_reply_destroy (&reply);
    umb_client_destroy (&probe);
    zcert_destroy (&victim_probe);
    probe = umb_client_new (endpoint, zcert_public_txt (certs.cert), auth);
    reply = umb_client_call (probe, "sys.ping", NULL, NULL, 0, 2000, NULL);
    assert (umb_reply_ok (reply));
    umb_reply_destroy (&reply);
    umb_client_destroy (&probe);
    assert (!umb_zap_revoked (umb_runtime_zap (runtime), zcert_public_txt (victim)));
    //  certs revokes the gateway: this process refuses it within an interval
    certs.revoked = zcert_public_txt (victim);
    S_WAIT_FOR (umb_zap_revoked (umb_runtime_zap (runtime), zcert_public_txt (victim)));
    //  certs gone: the revocation stays
    zactor_destroy (&service);
    uint64_t rounds = umb_trust_rounds (trust);
    zclock_sleep (300);
    assert (umb_trust_rounds (trust) == rounds);
    assert (umb_zap_revoked (umb_runtime_zap (runtime), zcert_public_txt (victim)));

    umb_trust_destroy (&trust);
    umb_trust_destroy (&trust);
    zcert_destroy (&victim);
    zcert_destroy (&auth);
    zcert_destroy (&certs.cert);
    zstr_free (&endpoint);
    umb_runtime_destroy (&runtime);
    umb_testkit_remove_dir (dir);
    if (verbose)
        printf ("OK\n");
}
