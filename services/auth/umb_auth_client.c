//  umb_auth_client - how services other than auth check callers
#include <assert.h>
#include <string.h>
#include <sodium.h>
#include "umb_auth_client.h"
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

struct _umb_auth_client_t {
    umb_client_t      *auth;
    umb_log_t         *log;
    umb_jwt_keyring_t *keyring;     //  auth's published keys, fetched on first need
    char              *issuer;
    int                timeout_ms;
    int64_t            cache_ms;
    zhashx_t          *cache;       //  key text -> s_answer_t
};

umb_auth_client_t *
umb_auth_client_new (umb_runtime_t *runtime, zcert_t *identity)
{
    assert (runtime && identity);
    umb_client_t *auth = umb_runtime_client (runtime, "auth", identity);
    if (!auth)
        return NULL;
    umb_auth_client_t *self = calloc (1, sizeof (umb_auth_client_t));
    assert (self);
    umb_config_t *config = umb_runtime_config (runtime);
    self->auth = auth;
    self->log = umb_runtime_log (runtime);
    self->issuer = strdup (umb_config_str (config, "auth.issuer"));
    self->timeout_ms = (int) umb_config_int (config, "mesh.timeout_ms");
    self->cache_ms = UMB_AUTH_CLIENT_CACHE_MS;
    self->cache = zhashx_new ();
    zhashx_set_destructor (self->cache, s_answer_destroy);
    return self;
}

void
umb_auth_client_destroy (umb_auth_client_t **self_p)
{
    assert (self_p);
    umb_auth_client_t *self = *self_p;
    if (self) {
        umb_client_destroy (&self->auth);
        umb_jwt_keyring_destroy (&self->keyring);
        zhashx_destroy (&self->cache);
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

//  Calls auth; returns the reply, or NULL with 503 and the reason set.
static umb_reply_t *
s_call (umb_auth_client_t *self, const char *op, umb_w_t *body, int *status, char *reason,
        size_t reason_size)
{
    umb_reply_t *reply = umb_client_callw (self->auth, op, NULL, body, self->timeout_ms, NULL);
    if (umb_reply_ok (reply))
        return reply;
    *status = 503;
    snprintf (reason, reason_size, "auth cannot answer %s now: %s", op,
              umb_reply_error (reply) ? umb_reply_error (reply) : "no reason");
    umb_log_warn (self->log, "%s", reason);
    umb_reply_destroy (&reply);
    return NULL;
}

//  Fetches auth's key set; 0 or a status.
static int
s_load_keys (umb_auth_client_t *self, char *reason, size_t reason_size)
{
    int status = 0;
    umb_reply_t *reply = s_call (self, "auth.jwks", NULL, &status, reason, reason_size);
    if (!reply)
        return status;
    umb_msg_t *keys = umb_msg_array (umb_reply_body (reply), "keys", 64, true);
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
    int added = umb_msg_failed (umb_reply_body (reply)) ? -1
              : umb_jwt_keyring_add_jwks (keyring, jwks, reason, reason_size);
    json_decref (jwks);
    umb_reply_destroy (&reply);
    if (added <= 0) {
        umb_jwt_keyring_destroy (&keyring);
        if (added == 0)
            snprintf (reason, reason_size, "auth publishes no usable key");
        umb_log_error (self->log, "auth's key set is unusable: %s", reason);
        return 503;
    }
    umb_jwt_keyring_destroy (&self->keyring);
    self->keyring = keyring;
    return 0;
}

//  Checks a JWT's signature and times here, so forged and expired tokens
//  never cost a round trip; 0 or 401/503 with the reason.
static int
s_verify_locally (umb_auth_client_t *self, const char *token, char *reason, size_t reason_size)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!self->keyring || attempt == 1) {
            int status = s_load_keys (self, reason, reason_size);
            if (status)
                return status;
        }
        json_t *claims = NULL;
        if (umb_jwt_verify (self->keyring, token, self->issuer, (int64_t) time (NULL), 30, &claims,
                            reason, reason_size) == 0) {
            json_decref (claims);
            return 0;
        }
        //  a key auth rotated in since we last asked: fetch once more
        if (!strstr (reason, "unknown key id"))
            break;
    }
    return 401;
}

int
umb_auth_client_authenticate (void *state, const char *token, umb_principal_t *principal,
                              char *reason, size_t reason_size)
{
    umb_auth_client_t *self = state;
    assert (self && token && principal);
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
        int status = s_verify_locally (self, token, reason, reason_size);
        if (status)
            return status;
    }
    //  Sessions, API keys and disabled users are auth's to know
    umb_w_t *body = umb_w_new ();
    umb_w_map_begin (body);
    umb_w_kv_str (body, "token", token);
    umb_w_map_end (body);
    int status = 0;
    umb_reply_t *reply = s_call (self, "auth.introspect", body, &status, reason, reason_size);
    umb_w_destroy (&body);
    if (!reply)
        return status;
    umb_msg_t *answer = umb_reply_body (reply);
    s_answer_t result = { 0 };
    if (!umb_msg_bool (answer, "active", false, true)) {
        result.status = 401;
        snprintf (result.reason, sizeof (result.reason), "%s",
                  umb_msg_str (answer, "reason", 200, false) ? umb_msg_str (answer, "reason", 200, false)
                                                            : "token refused");
    }
    else {
        umb_principal_t *p = &result.principal;
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
        if (umb_msg_failed (answer)) {
            umb_log_error (self->log, "auth.introspect answered badly: %s", umb_msg_error (answer));
            result.status = 503;
            snprintf (result.reason, sizeof (result.reason), "auth answered badly");
        }
    }
    umb_reply_destroy (&reply);
    if (result.status != 503)
        s_cache_put (self, key, &result);
    if (result.status == 0)
        *principal = result.principal;
    snprintf (reason, reason_size, "%s", result.reason);
    return result.status;
}

int
umb_auth_client_authorize (void *state, const umb_principal_t *principal, const char *action,
                           const char *workspace, char *workspace_id, char *reason,
                           size_t reason_size)
{
    umb_auth_client_t *self = state;
    assert (self && principal && principal->token && action && workspace && workspace_id);
    char key [512];
    s_cache_key (key, sizeof (key), "authz", principal->token, action, workspace);
    s_answer_t result = { 0 };
    s_answer_t *cached = s_cache_get (self, key);
    if (cached)
        result = *cached;
    else {
        umb_w_t *body = umb_w_new ();
        umb_w_map_begin (body);
        umb_w_kv_str (body, "token", principal->token);
        umb_w_kv_str (body, "action", action);
        umb_w_kv_str (body, "workspace", workspace);
        umb_w_map_end (body);
        int status = 0;
        umb_reply_t *reply = s_call (self, "auth.authorize", body, &status, reason, reason_size);
        umb_w_destroy (&body);
        if (!reply)
            return status;
        umb_msg_t *answer = umb_reply_body (reply);
        const char *text = umb_msg_str (answer, "reason", 250, false);
        snprintf (result.reason, sizeof (result.reason), "%s", text ? text : "");
        if (umb_msg_bool (answer, "allowed", false, true)) {
            text = umb_msg_str (answer, "workspace_id", 63, true);
            snprintf (result.workspace_id, sizeof (result.workspace_id), "%s", text ? text : "");
        }
        else {
            result.status = (int) umb_msg_int (answer, "status", 400, 499, 403, false);
            //  anything but "you may not know it exists" is a refusal
            if (result.status != 404 && result.status != 401)
                result.status = 403;
        }
        if (umb_msg_failed (answer)) {
            umb_log_error (self->log, "auth.authorize answered badly: %s", umb_msg_error (answer));
            umb_reply_destroy (&reply);
            snprintf (reason, reason_size, "auth answered badly");
            return 503;
        }
        umb_reply_destroy (&reply);
        s_cache_put (self, key, &result);
    }
    snprintf (workspace_id, 64, "%s", result.workspace_id);
    snprintf (reason, reason_size, "%s", result.reason);
    return result.status;
}
