//  umb_zap - the process's ZAP handler: admits CURVE peers on the mesh allow-list
#include <assert.h>
#include <dirent.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <czmq.h>
#include "umb_zap.h"

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"

//  The key tables, shared by the handler thread and every caller.
typedef struct {
    zsock_t         *handler;   //  REP bound to the ZAP endpoint; the actor's alone
    umb_log_t       *log;
    pthread_rwlock_t lock;      //  guards the two tables
    zhashx_t        *allowed;   //  Z85 key -> name
    zhashx_t        *revoked;   //  Z85 key -> "" (revocation is final)
    zhashx_t        *pinned;    //  Z85 key -> "": admitted without a certificate
    zhashx_t        *certified; //  Z85 key -> "": holds a valid mesh certificate
    bool             strict;    //  certificates required, since the first certified set
    int64_t          certified_at;  //  zclock_mono of the last certified set
    int64_t          max_age_ms;    //  older than this, the set proves nothing
    char             exempt [41];   //  the certs service: reachable to refresh the set
    _Atomic uint64_t admitted;
    _Atomic uint64_t refused;
} s_state_t;

struct _umb_zap_t {
    zactor_t  *actor;
    s_state_t *state;
};

static void
s_answer (zsock_t *handler, const char *request_id, const char *status, const char *text,
          const char *user_id)
{
    zstr_sendx (handler, "1.0", request_id, status, text, user_id, "", NULL);
}

static void
s_handle_zap (s_state_t *self)
{
    zmsg_t *request = zmsg_recv (self->handler);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    char *request_id = zmsg_popstr (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *identity = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *key = zmsg_pop (request);
    if (!version || !streq (version, "1.0") || !request_id) {
        //  libzmq only ever sends well-formed requests; answer anyway so REP stays in step
        s_answer (self->handler, request_id ? request_id : "", "500", "malformed ZAP request", "");
    }
    else
    if (!mechanism || !streq (mechanism, "CURVE") || !key || zframe_size (key) != 32) {
        self->refused++;
        umb_log_warn (self->log, "zap: refused %s peer from %s: only CURVE is accepted",
                      mechanism ? mechanism : "?", address ? address : "?");
        s_answer (self->handler, request_id, "400", "CURVE required", "");
    }
    else
    if (domain && streq (domain, UMB_ZAP_DOMAIN_OPEN)) {
        //  Any CURVE client: the channel is encrypted and the server
        //  authenticated; the service authorizes each request itself
        char public_txt [41];
        zmq_z85_encode (public_txt, zframe_data (key), 32);
        pthread_rwlock_rdlock (&self->lock);
        bool revoked = zhashx_lookup (self->revoked, public_txt) != NULL;
        pthread_rwlock_unlock (&self->lock);
        if (revoked) {
            self->refused++;
            umb_log_warn (self->log, "zap: refused CURVE key %s from %s: revoked",
                          public_txt, address ? address : "?");
            s_answer (self->handler, request_id, "400", "mesh identity revoked", "");
        }
        else {
            self->admitted++;
            s_answer (self->handler, request_id, "200", "OK", public_txt);
        }
    }
    else
    if (!domain || !streq (domain, UMB_ZAP_DOMAIN)) {
        self->refused++;
        umb_log_warn (self->log, "zap: refused peer from %s: unknown domain", address ? address : "?");
        s_answer (self->handler, request_id, "400", "unknown domain", "");
    }
    else {
        char public_txt [41];
        zmq_z85_encode (public_txt, zframe_data (key), 32);
        char name [64] = "";
        const char *uncertified = NULL;
        pthread_rwlock_rdlock (&self->lock);
        const char *known = zhashx_lookup (self->allowed, public_txt);
        bool revoked = zhashx_lookup (self->revoked, public_txt) != NULL;
        if (known)
            snprintf (name, sizeof (name), "%s", known);
        if (known && self->strict && !zhashx_lookup (self->pinned, public_txt)
        &&  !streq (public_txt, self->exempt)) {
            if (zclock_mono () - self->certified_at > self->max_age_ms)
                uncertified = "the mesh certificate state is older than its bound";
            else
            if (!zhashx_lookup (self->certified, public_txt))
                uncertified = "no valid mesh certificate";
        }
        pthread_rwlock_unlock (&self->lock);
        if (!revoked && uncertified) {
            self->refused++;
            umb_log_warn (self->log, "zap: refused '%s' (%s) from %s: %s", name, public_txt,
                          address ? address : "?", uncertified);
            s_answer (self->handler, request_id, "400", uncertified, "");
        }
        else
        if (revoked) {
            self->refused++;
            umb_log_warn (self->log, "zap: refused CURVE key %s from %s: its mesh identity is revoked",
                          public_txt, address ? address : "?");
            s_answer (self->handler, request_id, "400", "mesh identity revoked", "");
        }
        else
        if (*name) {
            self->admitted++;
            umb_log_debug (self->log, "zap: admitted '%s' from %s", name, address ? address : "?");
            s_answer (self->handler, request_id, "200", "OK", public_txt);
        }
        else {
            self->refused++;
            umb_log_warn (self->log, "zap: refused CURVE key %s from %s: not on the mesh allow-list",
                          public_txt, address ? address : "?");
            s_answer (self->handler, request_id, "400", "key not on the mesh allow-list", "");
        }
    }
    zstr_free (&version);
    zstr_free (&request_id);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&identity);
    zstr_free (&mechanism);
    zframe_destroy (&key);
    zmsg_destroy (&request);
}

static bool
s_key_valid (const char *public_txt)
{
    uint8_t raw [32];
    return public_txt && strlen (public_txt) == 40 && zmq_z85_decode (raw, public_txt) != NULL;
}

static void
s_zap_actor (zsock_t *pipe, void *args)
{
    s_state_t *self = args;
    zpoller_t *poller = zpoller_new (pipe, self->handler, NULL);
    zsock_signal (pipe, 0);
    while (true) {
        zsock_t *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (term)
                break;
        }
        else
        if (which == self->handler)
            s_handle_zap (self);
        else
        if (zpoller_terminated (poller))
            break;
    }
    zpoller_destroy (&poller);
}

umb_zap_t *
umb_zap_new (umb_log_t *log)
{
    //  The REP socket is bound here so a second handler fails at once.
    zsock_t *handler = zsock_new (ZMQ_REP);
    if (!handler)
        return NULL;
    if (zsock_bind (handler, S_ZAP_ENDPOINT) != 0) {
        umb_log_error (log, "zap: a ZAP handler already runs in this process");
        zsock_destroy (&handler);
        return NULL;
    }
    s_state_t *state = calloc (1, sizeof (s_state_t));
    umb_zap_t *self = calloc (1, sizeof (umb_zap_t));
    assert (state && self);
    state->handler = handler;
    state->log = log;
    state->allowed = zhashx_new ();
    zhashx_set_destructor (state->allowed, (zhashx_destructor_fn *) zstr_free);
    state->revoked = zhashx_new ();
    state->pinned = zhashx_new ();
    state->certified = zhashx_new ();
    pthread_rwlock_init (&state->lock, NULL);
    zsock_set_linger (handler, 0);
    self->state = state;
    self->actor = zactor_new (s_zap_actor, state);
    return self;
}

void
umb_zap_destroy (umb_zap_t **self_p)
{
    assert (self_p);
    umb_zap_t *self = *self_p;
    if (self) {
        zactor_destroy (&self->actor);
        //  Closing is asynchronous; unbinding frees the endpoint now, so a
        //  new handler can start at once
        zsock_unbind (self->state->handler, S_ZAP_ENDPOINT);
        zsock_destroy (&self->state->handler);
        zhashx_destroy (&self->state->allowed);
        zhashx_destroy (&self->state->revoked);
        zhashx_destroy (&self->state->pinned);
        zhashx_destroy (&self->state->certified);
        pthread_rwlock_destroy (&self->state->lock);
        free (self->state);
        free (self);
        *self_p = NULL;
    }
}

int
umb_zap_allow (umb_zap_t *self, const char *public_z85, const char *name)
{
    assert (self);
    if (!s_key_valid (public_z85))
        return -1;
    s_state_t *state = self->state;
    pthread_rwlock_wrlock (&state->lock);
    int rc = -1;
    if (!zhashx_lookup (state->revoked, public_z85)) {
        zhashx_update (state->allowed, public_z85, strdup (name ? name : "?"));
        rc = 0;
    }
    pthread_rwlock_unlock (&state->lock);
    return rc;
}

int
umb_zap_revoke (umb_zap_t *self, const char *public_z85)
{
    assert (self);
    if (!s_key_valid (public_z85))
        return -1;
    s_state_t *state = self->state;
    pthread_rwlock_wrlock (&state->lock);
    bool fresh = zhashx_lookup (state->revoked, public_z85) == NULL;
    const char *name = zhashx_lookup (state->allowed, public_z85);
    if (fresh) {
        zhashx_insert (state->revoked, public_z85, (void *) "");
        umb_log_warn (state->log, "zap: mesh identity %s%s%s revoked: refused from now on",
                      public_z85, name ? " of " : "", name ? name : "");
    }
    zhashx_delete (state->allowed, public_z85);
    pthread_rwlock_unlock (&state->lock);
    return fresh ? 0 : 1;
}

bool
umb_zap_revoked (umb_zap_t *self, const char *public_z85)
{
    assert (self);
    if (!public_z85)
        return false;
    pthread_rwlock_rdlock (&self->state->lock);
    bool revoked = zhashx_lookup (self->state->revoked, public_z85) != NULL;
    pthread_rwlock_unlock (&self->state->lock);
    return revoked;
}

int
umb_zap_pin (umb_zap_t *self, const char *public_z85, const char *name)
{
    if (umb_zap_allow (self, public_z85, name))
        return -1;
    pthread_rwlock_wrlock (&self->state->lock);
    zhashx_update (self->state->pinned, public_z85, (void *) "");
    pthread_rwlock_unlock (&self->state->lock);
    return 0;
}

void
umb_zap_exempt (umb_zap_t *self, const char *public_z85)
{
    assert (self && public_z85);
    pthread_rwlock_wrlock (&self->state->lock);
    snprintf (self->state->exempt, sizeof (self->state->exempt), "%s", public_z85);
    pthread_rwlock_unlock (&self->state->lock);
}

void
umb_zap_certified (umb_zap_t *self, const char *const *keys, size_t count, int64_t max_age_ms)
{
    assert (self && (keys || count == 0));
    assert (max_age_ms > 0);
    s_state_t *state = self->state;
    pthread_rwlock_wrlock (&state->lock);
    zhashx_purge (state->certified);
    for (size_t i = 0; i < count; i++)
        if (s_key_valid (keys [i]))
            zhashx_update (state->certified, keys [i], (void *) "");
    if (!state->strict)
        umb_log_info (state->log, "zap: mesh certificates required from now on (%zu certified)",
                      zhashx_size (state->certified));
    state->strict = true;
    state->certified_at = zclock_mono ();
    state->max_age_ms = max_age_ms;
    pthread_rwlock_unlock (&state->lock);
}

int
umb_zap_allow_dir (umb_zap_t *self, const char *dir)
{
    assert (self && dir);
    DIR *handle = opendir (dir);
    if (!handle)
        return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        size_t length = strlen (entry->d_name);
        if (length <= 4 || entry->d_name [0] == '.' || !streq (entry->d_name + length - 4, ".pub"))
            continue;
        char *path = zsys_sprintf ("%s/%s", dir, entry->d_name);
        zcert_t *cert = path ? zcert_load (path) : NULL;
        char name [256];
        snprintf (name, sizeof (name), "%.*s", (int) (length - 4), entry->d_name);
        if (cert && umb_zap_pin (self, zcert_public_txt (cert), name) == 0)
            count++;
        zcert_destroy (&cert);
        zstr_free (&path);
    }
    closedir (handle);
    return count;
}

uint64_t
umb_zap_admitted (umb_zap_t *self)
{
    assert (self);
    return self->state->admitted;
}

uint64_t
umb_zap_refused (umb_zap_t *self)
{
    assert (self);
    return self->state->refused;
}

//  Sends one request over CURVE and reports whether an echo came back.
static bool
s_try_echo (zsock_t *server, zcert_t *server_cert, zcert_t *client_cert)
{
    zsock_t *client = zsock_new (ZMQ_DEALER);
    zcert_apply (client_cert, client);
    zsock_set_curve_serverkey (client, zcert_public_txt (server_cert));
    zsock_set_linger (client, 0);
    zsock_set_rcvtimeo (client, 500);
    zsock_connect (client, "%s", zsock_endpoint (server));
    zstr_send (client, "hello");
    bool echoed = false;
    zpoller_t *poller = zpoller_new (server, client, NULL);
    for (int turns = 0; turns < 4 && !echoed; turns++) {
        zsock_t *which = zpoller_wait (poller, 500);
        if (which == server) {
            zmsg_t *msg = zmsg_recv (server);
            zframe_t *body = zmsg_last (msg);
            const char *user = zframe_meta (body, "User-Id");
            assert (user && streq (user, zcert_public_txt (client_cert)));
            zmsg_send (&msg, server);
        }
        else
        if (which == client) {
            char *reply = zstr_recv (client);
            echoed = reply && streq (reply, "hello");
            zstr_free (&reply);
        }
        else
            break;
    }
    zpoller_destroy (&poller);
    zsock_destroy (&client);
    return echoed;
}

void
umb_zap_test (bool verbose)
{
    if (verbose)
        printf (" * umb_zap: ");
    umb_zap_t *zap = umb_zap_new (NULL);
    assert (zap);
    assert (umb_zap_new (NULL) == NULL);        //  one per process

    zcert_t *server_cert = zcert_new ();
    zcert_t *friend_cert = zcert_new ();
    zcert_t *stranger_cert = zcert_new ();
    assert (umb_zap_allow (zap, zcert_public_txt (friend_cert), "friend") == 0);
    assert (umb_zap_allow (zap, "not-a-key", "bad") == -1);

    zsock_t *server = zsock_new (ZMQ_ROUTER);
    zcert_apply (server_cert, server);
    zsock_set_curve_server (server, 1);
    zsock_set_zap_domain (server, UMB_ZAP_DOMAIN);
    zsock_set_zap_enforce_domain (server, 1);
    assert (zsock_bind (server, "tcp://127.0.0.1:*") > 0);

    assert (s_try_echo (server, server_cert, friend_cert));
    assert (!s_try_echo (server, server_cert, stranger_cert));
    assert (umb_zap_refused (zap) >= 1);
    assert (umb_zap_admitted (zap) >= 1);

    //  A revoked key is refused on its next connection
    assert (umb_zap_revoke (zap, zcert_public_txt (friend_cert)) == 0);
    assert (umb_zap_revoke (zap, zcert_public_txt (friend_cert)) == 1);
    assert (umb_zap_revoke (zap, "short") == -1);
    assert (umb_zap_revoked (zap, zcert_public_txt (friend_cert)));
    assert (!umb_zap_revoked (zap, zcert_public_txt (stranger_cert)));
    assert (!s_try_echo (server, server_cert, friend_cert));
    //  Revocation is final: the key cannot be admitted again
    assert (umb_zap_allow (zap, zcert_public_txt (friend_cert), "friend") == -1);
    assert (!s_try_echo (server, server_cert, friend_cert));

    //  Once certificates are required, an allowed key needs one, fresh
    zcert_t *service_cert = zcert_new ();
    zcert_t *certs_cert = zcert_new ();
    assert (umb_zap_allow (zap, zcert_public_txt (service_cert), "service") == 0);
    assert (umb_zap_allow (zap, zcert_public_txt (certs_cert), "certs") == 0);
    assert (s_try_echo (server, server_cert, service_cert));        //  not yet required
    umb_zap_exempt (zap, zcert_public_txt (certs_cert));
    umb_zap_certified (zap, NULL, 0, 60000);
    assert (!s_try_echo (server, server_cert, service_cert));
    assert (s_try_echo (server, server_cert, certs_cert));          //  certs stays reachable
    const char *certified [] = { zcert_public_txt (service_cert) };
    umb_zap_certified (zap, certified, 1, 60000);
    assert (s_try_echo (server, server_cert, service_cert));
    umb_zap_certified (zap, certified, 1, 1);                       //  a set that goes stale
    zclock_sleep (10);
    assert (!s_try_echo (server, server_cert, service_cert));
    umb_zap_certified (zap, certified, 1, 60000);
    zcert_destroy (&service_cert);
    zcert_destroy (&certs_cert);

    //  Keys from a directory are pinned: admitted without a certificate
    char dir [] = "/tmp/umb-zap-XXXXXX";
    assert (mkdtemp (dir));
    char *path = zsys_sprintf ("%s/stranger.pub", dir);
    assert (zcert_save_public (stranger_cert, path) == 0);
    zstr_free (&path);
    assert (umb_zap_allow_dir (zap, dir) == 1);
    assert (s_try_echo (server, server_cert, stranger_cert));
    path = zsys_sprintf ("%s/stranger.pub", dir);
    unlink (path);
    zstr_free (&path);
    rmdir (dir);
    assert (umb_zap_allow_dir (zap, "/nonexistent/umbra") == -1);

    //  The open domain admits any CURVE key, but never a revoked one
    zsock_t *open_server = zsock_new (ZMQ_ROUTER);
    zcert_apply (server_cert, open_server);
    zsock_set_curve_server (open_server, 1);
    zsock_set_zap_domain (open_server, UMB_ZAP_DOMAIN_OPEN);
    zsock_set_zap_enforce_domain (open_server, 1);
    assert (zsock_bind (open_server, "tcp://127.0.0.1:*") > 0);
    zcert_t *anyone_cert = zcert_new ();
    assert (s_try_echo (open_server, server_cert, anyone_cert));
    assert (!s_try_echo (open_server, server_cert, friend_cert));     //  revoked above
    zcert_destroy (&anyone_cert);
    zsock_destroy (&open_server);

    zsock_destroy (&server);
    zcert_destroy (&server_cert);
    zcert_destroy (&friend_cert);
    zcert_destroy (&stranger_cert);
    umb_zap_destroy (&zap);
    assert (!zap);

    if (verbose)
        printf ("OK\n");
}
