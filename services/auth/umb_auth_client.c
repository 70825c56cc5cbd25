//  umb_auth_client - how services other than auth check callers, without blocking their loop
#include <assert.h>
#include <string.h>
#include <sodium.h>
#include "umb_auth_client.h"
#include "umb_envelope.h"
#include "umb_jwt.h"

#define S_CACHE_MAX 10000           //  entries; the oldest half goes when full

//  One remembered answer of auth.
typedef struct {
    int64_t         expires;        //  zclock_mono ms
    int             status;         //  0 or the refusal
    char            reason [256];
    umb_principal_t principal;      //  authentication answers
    char            workspace_id [64];  //  authorization answers
} s_answer_t;

static void
s_answer_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

typedef enum {
    S_JWKS,                         //  auth.jwks: the keys to verify tokens with
    S_INTROSPECT,                   //  auth.introspect: who a token is
    S_AUTHORIZE                     //  auth.authorize: may it do this
} s_kind_t;

static const char *const s_ops [] = { "auth.jwks", "auth.introspect", "auth.authorize" };

//  A call to auth in flight, and the requests waiting for its answer.
typedef struct {
    char      id [UMB_ENVELOPE_MAX_ID + 1];
    s_kind_t  kind;
    char      key [512];            //  its cache key: who may share it
    int64_t   expires;              //  zclock_mono ms
    int       timer_id;
    zmsg_t   *unsent;               //  [header][body] while there is no connection
    zlistx_t *waiters;              //  s_waiter_t *
} s_call_t;

//  A request of the service waiting for auth. Its pointers go into the
//  request, which lives until it is resumed or cancelled.
typedef struct {
    umb_req_t       *req;
    s_call_t        *call;
    void            *handle;        //  in call->waiters
    const char      *token;
    umb_principal_t *principal;     //  authentication: what to fill
    char            *workspace_id;  //  authorization: what to fill
} s_waiter_t;

struct _umb_auth_client_t {
    zsock_t           *dealer;      //  to auth; read on the service's loop
    char              *endpoint;
    umb_log_t         *log;
    umb_service_t     *service;     //  attached to
    zloop_t           *loop;
    umb_w_t           *header;
    char               id_prefix [17];
    uint64_t           sequence;
    int                retry_timer; //  sends the unsent calls again, or -1
    umb_jwt_keyring_t *keyring;     //  auth's published keys, fetched on first need
    char              *issuer;
    int                timeout_ms;
    int64_t            cache_ms;
    zhashx_t          *cache;       //  key text -> s_answer_t
    zhashx_t          *calls;       //  request id -> s_call_t
    zhashx_t          *shared;      //  cache key -> s_call_t (the same calls)
    zhashx_t          *waiting;     //  "%p" of the request -> s_waiter_t
};

umb_auth_client_t *
umb_auth_client_new (umb_runtime_t *runtime, zcert_t *identity)
{
    assert (runtime && identity);
    umb_config_t *config = umb_runtime_config (runtime);
    umb_log_t *log = umb_runtime_log (runtime);
    const char *endpoint = umb_config_str (config, "auth.endpoint");
    char *server_key = umb_runtime_public_key (runtime, "auth");
    uint8_t raw [32];
    if (!server_key || strlen (server_key) != 40 || !zmq_z85_decode (raw, server_key)) {
        umb_log_error (log, "cannot make a client of 'auth' at %s: its public key is unknown",
                       endpoint);
        zstr_free (&server_key);
        return NULL;
    }
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zcert_apply (identity, dealer);
    zsock_set_curve_serverkey (dealer, server_key);
    zstr_free (&server_key);
    zsock_set_linger (dealer, 0);
    //  A call either reaches a live connection at once or fails: no backlog
    //  delivered to auth long after its callers gave up
    zsock_set_immediate (dealer, 1);
    if (zsock_connect (dealer, "%s", endpoint) != 0) {
        umb_log_error (log, "cannot make a client of 'auth' at %s", endpoint);
        zsock_destroy (&dealer);
        return NULL;
    }
    umb_auth_client_t *self = calloc (1, sizeof (umb_auth_client_t));
    assert (self);
    self->dealer = dealer;
    self->endpoint = strdup (endpoint);
    self->log = log;
    self->header = umb_w_new ();
    uint8_t nonce [8];
    randombytes_buf (nonce, sizeof (nonce));
    sodium_bin2hex (self->id_prefix, sizeof (self->id_prefix), nonce, sizeof (nonce));
    self->issuer = strdup (umb_config_str (config, "auth.issuer"));
    self->timeout_ms = (int) umb_config_int (config, "mesh.timeout_ms");
    if (self->timeout_ms <= 0)
        self->timeout_ms = 1000;
    self->cache_ms = UMB_AUTH_CLIENT_CACHE_MS;
    self->cache = zhashx_new ();
    zhashx_set_destructor (self->cache, s_answer_destroy);
    self->calls = zhashx_new ();
    self->shared = zhashx_new ();
    self->waiting = zhashx_new ();
    self->retry_timer = -1;
    return self;
}

static void s_call_finish (umb_auth_client_t *self, s_call_t *call, int status, const char *reason);

void
umb_auth_client_destroy (umb_auth_client_t **self_p)
{
    assert (self_p);
    umb_auth_client_t *self = *self_p;
    if (self) {
        //  Nobody is left waiting for an answer that will not come
        s_call_t *call;
        while ((call = zhashx_first (self->calls)))
            s_call_finish (self, call, 503, "the auth client is stopping");
        if (self->loop && self->retry_timer != -1)
            zloop_timer_end (self->loop, self->retry_timer);
        if (self->loop)
            zloop_reader_end (self->loop, self->dealer);
        zsock_destroy (&self->dealer);
        umb_jwt_keyring_destroy (&self->keyring);
        zhashx_destroy (&self->cache);
        zhashx_destroy (&self->calls);
        zhashx_destroy (&self->shared);
        zhashx_destroy (&self->waiting);
        umb_w_destroy (&self->header);
        free (self->endpoint);
        free (self->issuer);
        free (self);
        *self_p = NULL;
    }
}

void
umb_auth_client_set_cache_ms (umb_auth_client_t *self, int64_t cache_ms)
{
    assert (self);
    self->cache_ms = cache_ms;
    zhashx_purge (self->cache);
}

size_t umb_auth_client_calls (umb_auth_client_t *self)   { assert (self); return zhashx_size (self->calls); }
size_t umb_auth_client_waiting (umb_auth_client_t *self) { assert (self); return zhashx_size (self->waiting); }

//  Cache keys hold a hash of the token, so no token is kept in memory here.
static void
s_cache_key (char *key, size_t size, const char *kind, const char *token, const char *action,
             const char *workspace)
{
    uint8_t digest [crypto_generichash_BYTES];
    crypto_generichash (digest, sizeof (digest), (const uint8_t *) token, strlen (token), NULL, 0);
    char hex [sizeof (digest) * 2 + 1];
    sodium_bin2hex (hex, sizeof (hex), digest, sizeof (digest));
    snprintf (key, size, "%s|%s|%s|%s", kind, hex, action ? action : "", workspace ? workspace : "");
}

static s_answer_t *
s_cache_get (umb_auth_client_t *self, const char *key)
{
    s_answer_t *answer = zhashx_lookup (self->cache, key);
    if (answer && answer->expires <= zclock_mono ()) {
        zhashx_delete (self->cache, key);
        answer = NULL;
    }
    return answer;
}

static void
s_cache_put (umb_auth_client_t *self, const char *key, const s_answer_t *answer)
{
    if (self->cache_ms <= 0)
        return;
    if (zhashx_size (self->cache) >= S_CACHE_MAX) {
        //  Expired first; if still full, start over: a cache, not a store
        int64_t now = zclock_mono ();
        zlistx_t *keys = zhashx_keys (self->cache);
        for (const char *k = zlistx_first (keys); k; k = zlistx_next (keys)) {
            s_answer_t *old = zhashx_lookup (self->cache, k);
            if (old && old->expires <= now)
                zhashx_delete (self->cache, k);
        }
        zlistx_destroy (&keys);
        if (zhashx_size (self->cache) >= S_CACHE_MAX)
            zhashx_purge (self->cache);
    }
    s_answer_t *copy = malloc (sizeof (s_answer_t));
    assert (copy);
    *copy = *answer;
    copy->expires = zclock_mono () + self->cache_ms;
    zhashx_update (self->cache, key, copy);
}

//  ---------------------------------------------------------------- calls

static void
s_waiter_key (char *key, size_t size, umb_req_t *req)
{
    snprintf (key, size, "%p", (void *) req);
}

//  Takes the waiter off its call and out of the index.
static void
s_waiter_remove (umb_auth_client_t *self, s_waiter_t *waiter)
{
    char key [32];
    s_waiter_key (key, sizeof (key), waiter->req);
    zlistx_delete (waiter->call->waiters, waiter->handle);
    zhashx_delete (self->waiting, key);
}

//  The call no longer answers anyone new: out of the tables, timer stopped.
static void
s_call_remove (umb_auth_client_t *self, s_call_t *call)
{
    zhashx_delete (self->calls, call->id);
    if (*call->key && zhashx_lookup (self->shared, call->key) == call)
        zhashx_delete (self->shared, call->key);
    if (call->timer_id != -1 && self->loop)
        zloop_timer_end (self->loop, call->timer_id);
    call->timer_id = -1;
}

static void
s_call_destroy (s_call_t **call_p)
{
    s_call_t *call = *call_p;
    if (call) {
        assert (zlistx_size (call->waiters) == 0);
        zlistx_destroy (&call->waiters);
        zmsg_destroy (&call->unsent);
        free (call);
        *call_p = NULL;
    }
}

//  Resumes every request waiting on call with status and reason (filled
//  results are the caller's), then forgets the call.
static void
s_call_finish (umb_auth_client_t *self, s_call_t *call, int status, const char *reason)
{
    s_call_remove (self, call);
    //  One at a time: a resumed request runs its handler, which may change things
    s_waiter_t *waiter;
    while ((waiter = zlistx_first (call->waiters))) {
        umb_req_t *req = waiter->req;
        s_waiter_remove (self, waiter);
        free (waiter);
        umb_service_resume (self->service, req, status, reason);
    }
    s_call_destroy (&call);
}

static int
s_on_timer (zloop_t *loop, int timer_id, void *arg)
{
    umb_auth_client_t *self = arg;
    int64_t now = zclock_mono ();
    //  Every call past its time, from the start after each: finishing one runs handlers
    bool finished = true;
    while (finished) {
        finished = false;
        for (s_call_t *call = zhashx_first (self->calls); call; call = zhashx_next (self->calls))
            if (call->expires <= now) {
                if (call->timer_id == timer_id)
                    call->timer_id = -1;
                char reason [300];
                if (call->unsent)
                    snprintf (reason, sizeof (reason), "auth cannot answer %s now: no connection "
                              "to %s within %d ms", s_ops [call->kind], self->endpoint,
                              self->timeout_ms);
                else
                    snprintf (reason, sizeof (reason), "auth did not answer %s within %d ms",
                              s_ops [call->kind], self->timeout_ms);
                umb_log_warn (self->log, "%s", reason);
                s_call_finish (self, call, 503, reason);
                finished = true;
                break;
            }
    }
    return 0;
}

//  Parks req on call.
static void
s_wait (umb_auth_client_t *self, s_call_t *call, umb_req_t *req, const char *token,
        umb_principal_t *principal, char *workspace_id)
{
    s_waiter_t *waiter = calloc (1, sizeof (s_waiter_t));
    assert (waiter);
    waiter->req = req;
    waiter->call = call;
    waiter->token = token;
    waiter->principal = principal;
    waiter->workspace_id = workspace_id;
    waiter->handle = zlistx_add_end (call->waiters, waiter);
    char key [32];
    s_waiter_key (key, sizeof (key), req);
    int rc = zhashx_insert (self->waiting, key, waiter);
    assert (rc == 0);               //  a request waits for one thing at a time
}

//  Sends the call unless there is no connection to auth (yet): libzmq is
//  not to queue it, or it would reach auth long after its callers gave up.
static bool
s_send (umb_auth_client_t *self, s_call_t *call)
{
    zframe_t *header = zmsg_first (call->unsent);
    zframe_t *body = zmsg_next (call->unsent);
    if (zframe_send (&header, self->dealer, ZFRAME_MORE | ZFRAME_REUSE | ZFRAME_DONTWAIT) == -1)
        return false;
    //  The rest of a message goes once its first part went
    zframe_send (&body, self->dealer, ZFRAME_REUSE | ZFRAME_DONTWAIT);
    zmsg_destroy (&call->unsent);
    return true;
}

static int s_on_retry (zloop_t *loop, int timer_id, void *arg);

static void
s_retry_later (umb_auth_client_t *self)
{
    if (self->retry_timer == -1)
        self->retry_timer = zloop_timer (self->loop, 20, 1, s_on_retry, self);
}

static int
s_on_retry (zloop_t *loop, int timer_id, void *arg)
{
    umb_auth_client_t *self = arg;
    self->retry_timer = -1;
    bool unsent = false;
    for (s_call_t *call = zhashx_first (self->calls); call; call = zhashx_next (self->calls))
        if (call->unsent && !s_send (self, call))
            unsent = true;
    if (unsent)
        s_retry_later (self);
    return 0;
}

//  Makes req wait for auth's answer to op with body, sharing a call already
//  asking the same (key); UMB_PENDING. The call's timer answers 503 if auth
//  does not answer in time.
static int
s_ask (umb_auth_client_t *self, s_kind_t kind, const char *key, umb_w_t *body, umb_req_t *req,
       const char *token, umb_principal_t *principal, char *workspace_id)
{
    assert (self->loop);            //  umb_auth_client_attach first
    s_call_t *call = zhashx_lookup (self->shared, key);
    if (!call) {
        call = calloc (1, sizeof (s_call_t));
        assert (call);
        call->kind = kind;
        snprintf (call->key, sizeof (call->key), "%s", key);
        snprintf (call->id, sizeof (call->id), "%s-%llu", self->id_prefix,
                  (unsigned long long) ++self->sequence);
        umb_w_reset (self->header);
        umb_envelope_write_request (self->header, call->id, s_ops [kind], NULL, self->timeout_ms);
        size_t size;
        const void *data = umb_w_data (self->header, &size);
        call->unsent = zmsg_new ();
        zmsg_addmem (call->unsent, data, size);
        static const unsigned char empty_map [] = { 0x80 };
        data = body ? umb_w_data (body, &size) : NULL;
        if (data)
            zmsg_addmem (call->unsent, data, size);
        else
            zmsg_addmem (call->unsent, empty_map, sizeof (empty_map));
        if (!s_send (self, call))
            s_retry_later (self);
        call->waiters = zlistx_new ();
        call->expires = zclock_mono () + self->timeout_ms;
        call->timer_id = zloop_timer (self->loop, (size_t) self->timeout_ms, 1, s_on_timer, self);
        zhashx_insert (self->calls, call->id, call);
        zhashx_insert (self->shared, call->key, call);
    }
    s_wait (self, call, req, token, principal, workspace_id);
    return UMB_PENDING;
}

//  ---------------------------------------------------------------- authentication

//  Checks a JWT's signature and times here, so forged and expired tokens
//  never cost a round trip; 0, 401 with the reason, or -1 when the keys are
//  missing or do not name the token's key (fetch them, then ask again).
static int
s_verify_locally (umb_auth_client_t *self, const char *token, bool keys_fresh, char *reason,
                  size_t reason_size)
{
    if (!self->keyring)
        return -1;
    json_t *claims = NULL;
    if (umb_jwt_verify (self->keyring, token, self->issuer, (int64_t) time (NULL), 30, &claims,
                        reason, reason_size) == 0) {
        json_decref (claims);
        return 0;
    }
    //  a key auth rotated in since we last asked: fetch once more
    if (strstr (reason, "unknown key id") && !keys_fresh)
        return -1;
    return 401;
}

static int
s_authenticate (umb_auth_client_t *self, umb_req_t *req, const char *token,
                umb_principal_t *principal, bool keys_fresh, char *reason, size_t reason_size)
{
    char key [256];
    s_cache_key (key, sizeof (key), "authn", token, NULL, NULL);
    s_answer_t *cached = s_cache_get (self, key);
    if (cached) {
        if (cached->status == 0)
            *principal = cached->principal;
        snprintf (reason, reason_size, "%s", cached->reason);
        return cached->status;
    }
    bool api_key = strncmp (token, "umb_", 4) == 0;
    if (!api_key) {
        int status = s_verify_locally (self, token, keys_fresh, reason, reason_size);
        if (status == -1)
            return s_ask (self, S_JWKS, "jwks", NULL, req, token, principal, NULL);
        if (status)
            return status;
    }
    //  Sessions, API keys and disabled users are auth's to know
    umb_w_t *body = umb_w_new ();
    umb_w_map_begin (body);
    umb_w_kv_str (body, "token", token);
    umb_w_map_end (body);
    int status = s_ask (self, S_INTROSPECT, key, body, req, token, principal, NULL);
    umb_w_destroy (&body);
    return status;
}

int
umb_auth_client_authenticate (void *state, umb_req_t *req, const char *token,
                              umb_principal_t *principal, char *reason, size_t reason_size)
{
    umb_auth_client_t *self = state;
    assert (self && req && token && principal);
    return s_authenticate (self, req, token, principal, false, reason, reason_size);
}

//  auth.jwks answered: the keys replace ours; 0 or 503 with the reason.
static int
s_on_jwks (umb_auth_client_t *self, umb_msg_t *answer, char *reason, size_t reason_size)
{
    umb_msg_t *keys = umb_msg_array (answer, "keys", 64, true);
    json_t *jwks = json_pack ("{s:[]}", "keys");
    for (size_t i = 0; keys && i < umb_msg_size (keys); i++) {
        umb_msg_t *key = umb_msg_at (keys, i);
        json_t *jwk = json_object ();
        static const char *const fields [] = { "kty", "crv", "x", "kid", "alg", "use", NULL };
        for (const char *const *field = fields; *field; field++) {
            const char *value = umb_msg_str (key, *field, 256, false);
            if (value)
                json_object_set_new (jwk, *field, json_string (value));
        }
        json_array_append_new (json_object_get (jwks, "keys"), jwk);
    }
    umb_jwt_keyring_t *keyring = umb_jwt_keyring_new ();
    int added = umb_msg_failed (answer) ? -1
              : umb_jwt_keyring_add_jwks (keyring, jwks, reason, reason_size);
    json_decref (jwks);
    if (added <= 0) {
        umb_jwt_keyring_destroy (&keyring);
        if (added == 0 || umb_msg_failed (answer))
            snprintf (reason, reason_size, "auth publishes no usable key");
        umb_log_error (self->log, "auth's key set is unusable: %s", reason);
        return 503;
    }
    umb_jwt_keyring_destroy (&self->keyring);
    self->keyring = keyring;
    return 0;
}

//  With fresh keys, each request waiting for them is checked again: at once,
//  or on to auth.introspect.
static void
s_after_jwks (umb_auth_client_t *self, s_call_t *call)
{
    s_call_remove (self, call);
    s_waiter_t *waiter;
    while ((waiter = zlistx_first (call->waiters))) {
        umb_req_t *req = waiter->req;
        const char *token = waiter->token;
        umb_principal_t *principal = waiter->principal;
        s_waiter_remove (self, waiter);
        free (waiter);
        char reason [256] = "";
        int status = s_authenticate (self, req, token, principal, true, reason, sizeof (reason));
        if (status != UMB_PENDING)
            umb_service_resume (self->service, req, status, reason);
    }
    s_call_destroy (&call);
}

//  auth.introspect answered: who the token is, or why not.
static void
s_on_introspect (umb_auth_client_t *self, umb_msg_t *answer, s_answer_t *result)
{
    if (!umb_msg_bool (answer, "active", false, true)) {
        result->status = 401;
        const char *text = umb_msg_str (answer, "reason", 200, false);
        snprintf (result->reason, sizeof (result->reason), "%s", text ? text : "token refused");
    }
    else {
        umb_principal_t *p = &result->principal;
        const char *text;
        if ((text = umb_msg_str (answer, "subject", 63, true)))
            snprintf (p->subject, sizeof (p->subject), "%s", text);
        if ((text = umb_msg_str (answer, "username", 63, false)))
            snprintf (p->username, sizeof (p->username), "%s", text);
        if ((text = umb_msg_str (answer, "session", 63, false)))
            snprintf (p->session, sizeof (p->session), "%s", text);
        if ((text = umb_msg_str (answer, "key_id", 63, false)))
            snprintf (p->key_id, sizeof (p->key_id), "%s", text);
        if ((text = umb_msg_str (answer, "key_workspace", 63, false)))
            snprintf (p->key_workspace, sizeof (p->key_workspace), "%s", text);
        p->is_admin = umb_msg_bool (answer, "is_admin", false, false);
        p->is_api_key = umb_msg_bool (answer, "is_api_key", false, false);
        size_t count = 0;
        const char **actions = umb_msg_strv (answer, "key_actions", 64, 64, &count, false);
        for (size_t i = 0; actions && i < count; i++) {
            size_t used = strlen (p->key_actions);
            snprintf (p->key_actions + used, sizeof (p->key_actions) - used, "%s%s",
                      used ? "," : "", actions [i]);
        }
    }
    if (umb_msg_failed (answer)) {
        umb_log_error (self->log, "auth.introspect answered badly: %s", umb_msg_error (answer));
        result->status = 503;
        snprintf (result->reason, sizeof (result->reason), "auth answered badly");
    }
}

//  ---------------------------------------------------------------- authorization

int
umb_auth_client_authorize (void *state, umb_req_t *req, const umb_principal_t *principal,
                           const char *action, const char *workspace, char *workspace_id,
                           char *reason, size_t reason_size)
{
    umb_auth_client_t *self = state;
    assert (self && req && principal && principal->token && action && workspace && workspace_id);
    char key [512];
    s_cache_key (key, sizeof (key), "authz", principal->token, action, workspace);
    s_answer_t *cached = s_cache_get (self, key);
    if (cached) {
        snprintf (workspace_id, 64, "%s", cached->workspace_id);
        snprintf (reason, reason_size, "%s", cached->reason);
        return cached->status;
    }
    umb_w_t *body = umb_w_new ();
    umb_w_map_begin (body);
    umb_w_kv_str (body, "token", principal->token);
    umb_w_kv_str (body, "action", action);
    umb_w_kv_str (body, "workspace", workspace);
    umb_w_map_end (body);
    int status = s_ask (self, S_AUTHORIZE, key, body, req, principal->token, NULL, workspace_id);
    umb_w_destroy (&body);
    return status;
}

//  auth.authorize answered: its decision, with its reason.
static void
s_on_authorize (umb_auth_client_t *self, umb_msg_t *answer, s_answer_t *result)
{
    const char *text = umb_msg_str (answer, "reason", 250, false);
    snprintf (result->reason, sizeof (result->reason), "%s", text ? text : "");
    if (umb_msg_bool (answer, "allowed", false, true)) {
        text = umb_msg_str (answer, "workspace_id", 63, true);
        snprintf (result->workspace_id, sizeof (result->workspace_id), "%s", text ? text : "");
    }
    else {
        result->status = (int) umb_msg_int (answer, "status", 400, 499, 403, false);
        //  anything but "you may not know it exists" is a refusal
        if (result->status != 404 && result->status != 401)
            result->status = 403;
    }
    if (umb_msg_failed (answer)) {
        umb_log_error (self->log, "auth.authorize answered badly: %s", umb_msg_error (answer));
        result->status = 503;
        snprintf (result->reason, sizeof (result->reason), "auth answered badly");
    }
}

//  ---------------------------------------------------------------- on the loop

static int
s_on_reply (zloop_t *loop, zsock_t *dealer, void *arg)
{
    umb_auth_client_t *self = arg;
    zmsg_t *msg = zmsg_recv (dealer);
    if (!msg)
        return 0;
    zframe_t *header = zmsg_first (msg);
    zframe_t *body = zmsg_next (msg);
    char *error = NULL;
    umb_envelope_t *envelope = header && body && zmsg_size (msg) == 2
        ? umb_envelope_decode (zframe_data (header), zframe_size (header), true, &error, NULL)
        : NULL;
    //  An answer to a call given up on, or garbage: nobody waits for it
    s_call_t *call = envelope ? zhashx_lookup (self->calls, umb_envelope_id (envelope)) : NULL;
    if (!call) {
        if (!envelope)
            umb_log_warn (self->log, "auth sent a bad reply: %s", error ? error : "not [header][body]");
        free (error);
        umb_envelope_destroy (&envelope);
        zmsg_destroy (&msg);
        return 0;
    }
    umb_msg_t *answer = NULL;
    s_answer_t result = { 0 };
    int status = umb_envelope_status (envelope);
    if (status < 200 || status >= 300) {
        result.status = 503;
        snprintf (result.reason, sizeof (result.reason), "auth cannot answer %s now: %s",
                  s_ops [call->kind], umb_envelope_error (envelope) ? umb_envelope_error (envelope)
                                                                   : "no reason");
        umb_log_warn (self->log, "%s", result.reason);
    }
    else {
        answer = umb_msg_decode (zframe_data (body), zframe_size (body), &error);
        if (!answer || !umb_msg_is_map (answer)) {
            result.status = 503;
            snprintf (result.reason, sizeof (result.reason), "auth answered badly");
            umb_log_error (self->log, "%s %s: %s", s_ops [call->kind], result.reason,
                           error ? error : "not a map");
        }
        else
        if (call->kind == S_JWKS)
            result.status = s_on_jwks (self, answer, result.reason, sizeof (result.reason));
        else
        if (call->kind == S_INTROSPECT)
            s_on_introspect (self, answer, &result);
        else
            s_on_authorize (self, answer, &result);
    }
    free (error);
    umb_msg_destroy (&answer);
    umb_envelope_destroy (&envelope);
    zmsg_destroy (&msg);

    if (call->kind == S_JWKS && result.status == 0)
        s_after_jwks (self, call);
    else {
        if (call->kind != S_JWKS && result.status != 503)
            s_cache_put (self, call->key, &result);
        if (result.status == 0)
            for (s_waiter_t *waiter = zlistx_first (call->waiters); waiter;
                 waiter = zlistx_next (call->waiters)) {
                if (waiter->principal)
                    *waiter->principal = result.principal;
                if (waiter->workspace_id)
                    snprintf (waiter->workspace_id, 64, "%s", result.workspace_id);
            }
        s_call_finish (self, call, result.status, result.reason);
    }
    return 0;
}

void
umb_auth_client_attach (umb_auth_client_t *self, umb_service_t *service)
{
    assert (self && service);
    assert (!self->service);
    self->service = service;
    self->loop = umb_service_loop (service);
    zloop_reader (self->loop, self->dealer, s_on_reply, self);
}

umb_service_t *
umb_auth_client_service (umb_auth_client_t *self, umb_runtime_t *runtime, const char *name,
                         zcert_t *cert, const umb_route_t *routes, void *state, umb_log_t *log,
                         char *reason, size_t reason_size)
{
    assert (self && runtime && name && cert && routes);
    umb_config_t *config = umb_runtime_config (runtime);
    char key [96];
    snprintf (key, sizeof key, "%s.endpoint", name);
    const char *endpoint = umb_config_str (config, key);
    snprintf (key, sizeof key, "%s.pub_endpoint", name);
    const char *pub_endpoint = umb_config_str (config, key);
    umb_service_t *service = umb_service_new (&(umb_service_config_t) {
        .name = name, .endpoint = endpoint, .pub_endpoint = *pub_endpoint ? pub_endpoint : NULL,
        .cert = cert, .zap = umb_runtime_zap (runtime), .routes = routes, .state = state,
        .hook_state = self, .authenticate_async = umb_auth_client_authenticate,
        .authorize_async = umb_auth_client_authorize, .auth_cancel = umb_auth_client_cancel,
        .log = log, .mesh_services = umb_runtime_service_keys (runtime),
        .max_body = (size_t) umb_config_int (config, "mesh.max_body_bytes") });
    if (!service) {
        snprintf (reason, reason_size, "cannot bind %s%s%s", endpoint, *pub_endpoint ? " or " : "",
                  pub_endpoint);
        return NULL;
    }
    //  Callers are checked on the service's loop, which never waits for auth
    umb_auth_client_attach (self, service);
    return service;
}

void
umb_auth_client_cancel (void *state, umb_req_t *req)
{
    umb_auth_client_t *self = state;
    assert (self && req);
    char key [32];
    s_waiter_key (key, sizeof (key), req);
    s_waiter_t *waiter = zhashx_lookup (self->waiting, key);
    //  The call goes on: its answer is still worth caching
    if (waiter) {
        s_waiter_remove (self, waiter);
        free (waiter);
    }
}
