//  umb_auth - the auth service actor: start-up, route table, token checks and authorization
#include <assert.h>
#include <stdarg.h>
#include <string.h>
#include "umb_auth_private.h"

static int s_jwks (void *state, umb_req_t *req);
static int s_introspect (void *state, umb_req_t *req);
static int s_authorize_op (void *state, umb_req_t *req);

//  The contract is proto/msgpack/auth.md (summary in auth-ops.txt)
static const umb_route_t s_routes [] = {
    { "auth.users.register",     umb_auth_users_register,     UMB_ACCESS_PUBLIC, NULL },
    { "auth.users.get",          umb_auth_users_get,          UMB_ACCESS_USER,   NULL },
    { "auth.users.update",       umb_auth_users_update,       UMB_ACCESS_USER,   NULL },
    { "auth.users.disable",      umb_auth_users_disable,      UMB_ACCESS_USER,   NULL },
    { "auth.tokens.create",      umb_auth_tokens_create,      UMB_ACCESS_PUBLIC, NULL },
    { "auth.tokens.refresh",     umb_auth_tokens_refresh,     UMB_ACCESS_PUBLIC, NULL },
    { "auth.tokens.revoke",      umb_auth_tokens_revoke,      UMB_ACCESS_USER,   NULL },
    { "auth.jwks",               s_jwks,                      UMB_ACCESS_PUBLIC, NULL },
    { "auth.introspect",         s_introspect,                UMB_ACCESS_MESH,   NULL },
    { "auth.authorize",          s_authorize_op,              UMB_ACCESS_MESH,   NULL },
    { "auth.workspaces.create",  umb_auth_workspaces_create,  UMB_ACCESS_USER,   NULL },
    { "auth.workspaces.list",    umb_auth_workspaces_list,    UMB_ACCESS_USER,   NULL },
    { "auth.workspaces.get",     umb_auth_workspaces_get,     UMB_ACCESS_USER,   "workspace.read" },
    { "auth.workspaces.lookup",  umb_auth_workspaces_lookup,  UMB_ACCESS_MESH,   NULL },
    { "auth.workspaces.rename",  umb_auth_workspaces_rename,  UMB_ACCESS_USER,   "workspace.update" },
    { "auth.workspaces.delete",  umb_auth_workspaces_delete,  UMB_ACCESS_USER,   "workspace.delete" },
    { "auth.members.list",       umb_auth_members_list,       UMB_ACCESS_USER,   "members.read" },
    { "auth.members.update",     umb_auth_members_update,     UMB_ACCESS_USER,   "members.manage" },
    { "auth.members.remove",     umb_auth_members_remove,     UMB_ACCESS_USER,   NULL },
    { "auth.invitations.create", umb_auth_invitations_create, UMB_ACCESS_USER,   "members.manage" },
    { "auth.invitations.list",   umb_auth_invitations_list,   UMB_ACCESS_USER,   "members.read" },
    { "auth.invitations.mine",   umb_auth_invitations_mine,   UMB_ACCESS_USER,   NULL },
    { "auth.invitations.accept", umb_auth_invitations_accept, UMB_ACCESS_USER,   NULL },
    { "auth.invitations.reject", umb_auth_invitations_reject, UMB_ACCESS_USER,   NULL },
    { "auth.invitations.cancel", umb_auth_invitations_cancel, UMB_ACCESS_USER,   NULL },
    { "auth.apikeys.create",     umb_auth_apikeys_create,     UMB_ACCESS_USER,   "apikeys.manage" },
    { "auth.apikeys.list",       umb_auth_apikeys_list,       UMB_ACCESS_USER,   "apikeys.manage" },
    { "auth.apikeys.revoke",     umb_auth_apikeys_revoke,     UMB_ACCESS_USER,   "apikeys.manage" },
    { NULL }
};

//  ---------------------------------------------------------------- helpers

int64_t
umb_auth_now (void)
{
    return (int64_t) time (NULL);
}

void
umb_auth_new_id (const char *prefix, char *id, size_t size)
{
    unsigned char random [8];
    char hex [sizeof random * 2 + 1];
    randombytes_buf (random, sizeof random);
    sodium_bin2hex (hex, sizeof hex, random, sizeof random);
    snprintf (id, size, "%s%s", prefix, hex);
}

void
umb_auth_sha256_hex (const char *text, char hex [crypto_hash_sha256_BYTES * 2 + 1])
{
    unsigned char digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, (const unsigned char *) text, strlen (text));
    sodium_bin2hex (hex, crypto_hash_sha256_BYTES * 2 + 1, digest, sizeof digest);
}

void
umb_auth_wipe (umb_msg_t *body, const char *key, const char *copy)
{
    if (copy)
        sodium_memzero ((char *) copy, strlen (copy));
    if (!body || !umb_msg_is_map (body))
        return;
    const msgpack_object *map = umb_msg_object (body);
    size_t key_size = strlen (key);
    for (uint32_t index = 0; index < map->via.map.size; index++) {
        const msgpack_object *k = &map->via.map.ptr [index].key;
        const msgpack_object *v = &map->via.map.ptr [index].val;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == key_size
        &&  memcmp (k->via.str.ptr, key, key_size) == 0 && v->type == MSGPACK_OBJECT_STR)
            //  The document owns these bytes (its copy of the frame)
            sodium_memzero ((char *) v->via.str.ptr, v->via.str.size);
    }
}

int
umb_auth_bad_request (umb_req_t *req)
{
    umb_msg_t *body = umb_req_body (req);
    return umb_req_fail (req, 400, NULL, "%s", umb_msg_failed (body) ? umb_msg_error (body)
                                                                    : "invalid request");
}

int
umb_auth_store_error (umb_auth_t *self, umb_req_t *req)
{
    sqlite3 *db = umb_store_handle (self->store);
    //  umb_store logged the failed statement; this says which request it broke
    umb_log_error (self->log, "%s: storage error%s%s", umb_req_op (req),
                   sqlite3_errcode (db) != SQLITE_OK ? ": " : "",
                   sqlite3_errcode (db) != SQLITE_OK ? sqlite3_errmsg (db) : "");
    //  Writes run in transactions that rolled back: nothing was done
    umb_req_set_retryable (req);
    return umb_req_fail (req, 500, NULL, "storage error; nothing was changed");
}

int
umb_auth_commit (umb_auth_t *self, umb_req_t *req, int rc)
{
    if (rc) {
        umb_store_rollback (self->store);
        return umb_auth_store_error (self, req);
    }
    if (umb_store_commit (self->store))
        return umb_auth_store_error (self, req);
    return 0;
}

int
umb_auth_user_token_only (umb_req_t *req)
{
    if (umb_req_principal (req)->is_api_key)
        return umb_req_fail (req, 403, NULL, "API keys cannot do '%s'; use a user's access token",
                             umb_req_op (req));
    return 0;
}

static bool
s_is_user_id (const char *ref)
{
    if (strncmp (ref, "usr_", 4) != 0 || strlen (ref) != 20)
        return false;
    for (const char *c = ref + 4; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

int
umb_auth_user_find (umb_auth_t *self, umb_req_t *req, const char *ref, umb_auth_user_t *user)
{
    const umb_principal_t *principal = umb_req_principal (req);
    int rc;
    if (streq (ref, "me"))
        rc = umb_auth_store_user_by_id (self->store, principal->subject, user);
    else
    if (s_is_user_id (ref))
        rc = umb_auth_store_user_by_id (self->store, ref, user);
    else
        rc = umb_auth_store_user_by_name (self->store, ref, user);
    if (rc == UMB_AUTH_NOT_FOUND)
        return umb_req_fail (req, 404, NULL, "no user '%.64s'", ref);
    if (rc)
        return umb_auth_store_error (self, req);
    return 0;
}

//  ---------------------------------------------------------------- writers

void
umb_auth_write_user (umb_w_t *w, const umb_auth_user_t *user, bool full)
{
    umb_w_map_begin (w);
    umb_w_kv_str (w, "id", user->id);
    umb_w_kv_str (w, "username", user->username);
    if (full) {
        umb_w_kv_str (w, "email", *user->email ? user->email : NULL);
        umb_w_kv_bool (w, "is_admin", user->is_admin);
        umb_w_kv_bool (w, "disabled", user->disabled);
        umb_w_kv_int (w, "created_at", user->created_at);
    }
    umb_w_map_end (w);
}

void
umb_auth_write_workspace (umb_w_t *w, const umb_auth_workspace_t *ws)
{
    umb_w_map_begin (w);
    umb_w_kv_str (w, "id", ws->id);
    umb_w_kv_str (w, "name", ws->name);
    umb_w_kv_str (w, "display_name", ws->display_name);
    umb_w_kv_str (w, "role", umb_auth_role_name (ws->role));
    umb_w_kv_int (w, "created_at", ws->created_at);
    umb_w_map_end (w);
}

void
umb_auth_write_member (umb_w_t *w, const umb_auth_member_t *member)
{
    umb_w_map_begin (w);
    umb_w_kv_str (w, "user_id", member->user_id);
    umb_w_kv_str (w, "username", member->username);
    umb_w_kv_str (w, "role", umb_auth_role_name (member->role));
    umb_w_kv_int (w, "joined_at", member->joined_at);
    umb_w_map_end (w);
}

void
umb_auth_write_invitation (umb_w_t *w, const umb_auth_invitation_t *row)
{
    umb_w_map_begin (w);
    umb_w_kv_str (w, "id", row->id);
    umb_w_kv_str (w, "workspace_id", row->workspace_id);
    umb_w_kv_str (w, "workspace_name", row->workspace_name);
    umb_w_kv_str (w, "username", row->username);
    umb_w_kv_str (w, "role", umb_auth_role_name (row->role));
    umb_w_kv_str (w, "state", row->state);
    umb_w_kv_str (w, "invited_by", row->invited_by);
    umb_w_kv_int (w, "created_at", row->created_at);
    umb_w_map_end (w);
}

static void
s_write_actions (umb_w_t *w, const char *list)
{
    umb_w_array_begin (w);
    for (const char *item = list; *item; ) {
        const char *comma = strchr (item, ',');
        size_t length = comma ? (size_t) (comma - item) : strlen (item);
        if (length)
            umb_w_strn (w, item, length);
        if (!comma)
            break;
        item = comma + 1;
    }
    umb_w_array_end (w);
}

void
umb_auth_write_apikey (umb_w_t *w, const umb_auth_apikey_t *key, const char *secret_key)
{
    umb_w_map_begin (w);
    umb_w_kv_str (w, "id", key->id);
    umb_w_kv_str (w, "name", key->name);
    //  "umb_<hex>": the part of the key that is not secret, to recognise it by
    char prefix [UMB_AUTH_ID_SIZE];
    snprintf (prefix, sizeof prefix, "%s%s", UMB_AUTH_APIKEY_PREFIX, key->id + 4);
    umb_w_kv_str (w, "prefix", prefix);
    umb_w_kv_str (w, "workspace_id", key->workspace_id);
    umb_w_key (w, "actions");
    s_write_actions (w, key->actions);
    umb_w_kv_int (w, "created_at", key->created_at);
    umb_w_key (w, "expires_at");
    if (key->expires_at)
        umb_w_int (w, key->expires_at);
    else
        umb_w_nil (w);
    umb_w_key (w, "last_used_at");
    if (key->last_used_at)
        umb_w_int (w, key->last_used_at);
    else
        umb_w_nil (w);
    umb_w_kv_bool (w, "revoked", key->revoked);
    if (secret_key)
        umb_w_kv_str (w, "key", secret_key);
    umb_w_map_end (w);
}

//  ---------------------------------------------------------------- identify

static int
s_refuse (char *reason, size_t reason_size, const char *text)
{
    snprintf (reason, reason_size, "%s", text);
    return 401;
}

static int
s_identify_apikey (umb_auth_t *self, const char *token, umb_principal_t *principal, int64_t *exp,
                   char *reason, size_t reason_size)
{
    //  umb_<16 hex>_<43 base64url>
    if (strlen (token) != UMB_AUTH_APIKEY_SIZE - 1 || token [20] != '_')
        return s_refuse (reason, reason_size, "invalid API key");
    for (int index = 4; index < 20; index++)
        if (!((token [index] >= '0' && token [index] <= '9')
        ||    (token [index] >= 'a' && token [index] <= 'f')))
            return s_refuse (reason, reason_size, "invalid API key");
    char id [UMB_AUTH_ID_SIZE];
    snprintf (id, sizeof id, "key_%.16s", token + 4);
    umb_auth_apikey_t key;
    int rc = umb_auth_store_apikey_get (self->store, id, &key);
    if (rc == UMB_AUTH_NOT_FOUND)
        return s_refuse (reason, reason_size, "invalid API key");
    if (rc)
        goto store_error;
    //  Compare digests in constant time; the id alone proves nothing
    unsigned char stored [crypto_hash_sha256_BYTES];
    unsigned char presented [crypto_hash_sha256_BYTES];
    const char *secret = token + 21;
    crypto_hash_sha256 (presented, (const unsigned char *) secret, strlen (secret));
    bool match = sodium_hex2bin (stored, sizeof stored, key.secret_hash, strlen (key.secret_hash),
                                 NULL, NULL, NULL) == 0
              && sodium_memcmp (stored, presented, sizeof stored) == 0;
    sodium_memzero (presented, sizeof presented);
    sodium_memzero (key.secret_hash, sizeof key.secret_hash);
    if (!match)
        return s_refuse (reason, reason_size, "invalid API key");
    int64_t now = umb_auth_now ();
    if (key.revoked)
        return s_refuse (reason, reason_size, "API key revoked");
    if (key.expires_at && key.expires_at <= now)
        return s_refuse (reason, reason_size, "API key expired");
    umb_auth_user_t user;
    rc = umb_auth_store_user_by_id (self->store, key.created_by, &user);
    if (rc == UMB_AUTH_NOT_FOUND || (rc == 0 && user.disabled))
        return s_refuse (reason, reason_size, "the API key's user is disabled");
    if (rc)
        goto store_error;
    if (key.last_used_at != now && umb_auth_store_apikey_touch (self->store, key.id, now))
        umb_log_warn (self->log, "cannot record the use of API key %s", key.id);
    snprintf (principal->subject, sizeof principal->subject, "%s", user.id);
    snprintf (principal->username, sizeof principal->username, "%s", user.username);
    principal->session [0] = 0;
    principal->is_admin = false;        //  never platform powers through a key
    principal->is_api_key = true;
    snprintf (principal->key_id, sizeof principal->key_id, "%s", key.id);
    snprintf (principal->key_workspace, sizeof principal->key_workspace, "%s", key.workspace_id);
    snprintf (principal->key_actions, sizeof principal->key_actions, "%s", key.actions);
    if (exp)
        *exp = key.expires_at;
    return 0;

store_error:
    umb_log_error (self->log, "cannot check an API key: %s",
                   sqlite3_errmsg (umb_store_handle (self->store)));
    snprintf (reason, reason_size, "storage error");
    return 500;
}

static int
s_identify_jwt (umb_auth_t *self, const char *token, umb_principal_t *principal, int64_t *exp,
                char *reason, size_t reason_size)
{
    json_t *claims = NULL;
    if (umb_jwt_verify (self->keyring, token, self->issuer, umb_auth_now (),
                        UMB_AUTH_JWT_LEEWAY_S, &claims, reason, reason_size))
        return 401;
    const char *subject = json_string_value (json_object_get (claims, "sub"));
    const char *session_id = json_string_value (json_object_get (claims, "sid"));
    int64_t expiry = json_integer_value (json_object_get (claims, "exp"));
    int status = 0;
    umb_auth_session_t session;
    umb_auth_user_t user;
    int rc = 0;
    if (!subject || !session_id)
        status = s_refuse (reason, reason_size, "token lacks a subject or session");
    else
    if ((rc = umb_auth_store_session_get (self->store, session_id, &session)) == UMB_AUTH_NOT_FOUND
    ||  (rc == 0 && !streq (session.user_id, subject)))
        status = s_refuse (reason, reason_size, "unknown session");
    else
    if (rc == 0 && session.revoked)
        status = s_refuse (reason, reason_size, "session revoked");
    else
    if (rc == 0 && (rc = umb_auth_store_user_by_id (self->store, subject, &user)) == UMB_AUTH_NOT_FOUND)
        status = s_refuse (reason, reason_size, "unknown user");
    else
    if (rc == 0 && user.disabled)
        status = s_refuse (reason, reason_size, "account disabled");
    if (rc && rc != UMB_AUTH_NOT_FOUND) {
        umb_log_error (self->log, "cannot check a token: %s",
                       sqlite3_errmsg (umb_store_handle (self->store)));
        snprintf (reason, reason_size, "storage error");
        status = 500;
    }
    if (status == 0) {
        memset (principal->key_id, 0, sizeof principal->key_id);
        snprintf (principal->subject, sizeof principal->subject, "%s", user.id);
        snprintf (principal->username, sizeof principal->username, "%s", user.username);
        snprintf (principal->session, sizeof principal->session, "%s", session.id);
        principal->is_admin = user.is_admin;
        principal->is_api_key = false;
        principal->key_workspace [0] = 0;
        principal->key_actions [0] = 0;
        if (exp)
            *exp = expiry;
    }
    json_decref (claims);
    return status;
}

int
umb_auth_identify (umb_auth_t *self, const char *token, umb_principal_t *principal, int64_t *exp,
                   char *reason, size_t reason_size)
{
    assert (self && token && principal);
    if (strncmp (token, UMB_AUTH_APIKEY_PREFIX, strlen (UMB_AUTH_APIKEY_PREFIX)) == 0)
        return s_identify_apikey (self, token, principal, exp, reason, reason_size);
    return s_identify_jwt (self, token, principal, exp, reason, reason_size);
}

static int
s_authenticate (void *state, const char *token, umb_principal_t *principal, char *reason,
                size_t reason_size)
{
    return umb_auth_identify ((umb_auth_t *) state, token, principal, NULL, reason, reason_size);
}

//  ---------------------------------------------------------------- authorize

int
umb_auth_decide (umb_auth_t *self, const umb_principal_t *principal, const char *action,
                 const char *workspace, umb_auth_workspace_t *ws, umb_role_t *role,
                 char *reason, size_t reason_size)
{
    assert (self && principal && action && workspace && ws && role);
    *role = UMB_ROLE_NONE;
    //  The same answer whether the workspace exists or not, whatever its name:
    //  names do not leak
    int rc = umb_auth_store_workspace_get (self->store, workspace, ws);
    umb_auth_member_t member;
    if (rc == 0 && principal->is_api_key && !streq (ws->id, principal->key_workspace))
        rc = UMB_AUTH_NOT_FOUND;
    if (rc == 0)
        rc = umb_auth_store_member_get (self->store, ws->id, principal->subject, &member);
    if (rc == UMB_AUTH_NOT_FOUND) {
        snprintf (reason, reason_size, "%s", UMB_AUTH_NO_WORKSPACE);
        return 404;
    }
    if (rc) {
        umb_log_error (self->log, "cannot authorize: %s",
                       sqlite3_errmsg (umb_store_handle (self->store)));
        snprintf (reason, reason_size, "storage error");
        return 500;
    }
    ws->role = member.role;
    umb_role_t needed = umb_auth_action_role (action);
    if (needed == UMB_ROLE_NONE) {
        snprintf (reason, reason_size, "unknown action '%.64s'", action);
        return 403;
    }
    if (member.role < needed) {
        snprintf (reason, reason_size, "role '%s' cannot do '%s'",
                  umb_auth_role_name (member.role), action);
        return 403;
    }
    if (principal->is_api_key && !umb_auth_actions_has (principal->key_actions, action)) {
        snprintf (reason, reason_size, "API key '%s' does not hold '%s'", principal->key_id, action);
        return 403;
    }
    *role = member.role;
    snprintf (reason, reason_size, "role '%s' may do '%s'", umb_auth_role_name (member.role),
              action);
    return 0;
}

static int
s_authorize (void *state, const umb_principal_t *principal, const char *action,
             const char *workspace, char *workspace_id, char *reason, size_t reason_size)
{
    umb_auth_workspace_t ws;
    umb_role_t role;
    int status = umb_auth_decide ((umb_auth_t *) state, principal, action, workspace, &ws, &role,
                                  reason, reason_size);
    if (status == 0)
        snprintf (workspace_id, 64, "%s", ws.id);
    return status;
}

int
umb_auth_request_workspace (umb_auth_t *self, umb_req_t *req, umb_auth_workspace_t *ws)
{
    umb_auth_member_t member;
    int rc = umb_auth_store_workspace_get (self->store, umb_req_workspace (req), ws);
    if (rc == 0)
        rc = umb_auth_store_member_get (self->store, ws->id, umb_req_principal (req)->subject,
                                        &member);
    if (rc == UMB_AUTH_NOT_FOUND)
        return umb_req_fail (req, 404, NULL, UMB_AUTH_NO_WORKSPACE);
    if (rc)
        return umb_auth_store_error (self, req);
    ws->role = member.role;
    return 0;
}

//  ---------------------------------------------------------------- mesh operations

//  JWKS is JSON; the mesh speaks msgpack. Only what a JWKS holds is needed.
static void
s_write_json (umb_w_t *w, json_t *value)
{
    if (json_is_object (value)) {
        umb_w_map_begin (w);
        const char *key;
        json_t *item;
        json_object_foreach (value, key, item) {
            umb_w_key (w, key);
            s_write_json (w, item);
        }
        umb_w_map_end (w);
    }
    else
    if (json_is_array (value)) {
        umb_w_array_begin (w);
        size_t index;
        json_t *item;
        json_array_foreach (value, index, item)
            s_write_json (w, item);
        umb_w_array_end (w);
    }
    else
    if (json_is_string (value))
        umb_w_strn (w, json_string_value (value), json_string_length (value));
    else
    if (json_is_integer (value))
        umb_w_int (w, json_integer_value (value));
    else
    if (json_is_real (value))
        umb_w_double (w, json_real_value (value));
    else
    if (json_is_boolean (value))
        umb_w_bool (w, json_is_true (value));
    else
        umb_w_nil (w);
}

static int
s_jwks (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    json_t *jwks = umb_jwt_signer_jwks (self->signer);
    if (!jwks)
        return umb_req_fail (req, 500, NULL, "cannot build the key set");
    s_write_json (umb_req_body_writer (req), jwks);
    json_decref (jwks);
    return 200;
}

static void
s_write_principal (umb_w_t *w, const umb_principal_t *principal, int64_t exp)
{
    umb_w_kv_str (w, "subject", principal->subject);
    umb_w_kv_str (w, "username", principal->username);
    umb_w_kv_str (w, "session", principal->session);
    umb_w_kv_bool (w, "is_admin", principal->is_admin);
    umb_w_kv_bool (w, "is_api_key", principal->is_api_key);
    umb_w_kv_str (w, "key_id", principal->key_id);
    umb_w_kv_str (w, "key_workspace", principal->key_workspace);
    umb_w_key (w, "key_actions");
    s_write_actions (w, principal->key_actions);
    umb_w_key (w, "exp");
    if (exp)
        umb_w_int (w, exp);
    else
        umb_w_nil (w);
}

static int
s_introspect (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *token = umb_msg_str (body, "token", UMB_AUTH_READ_TOKEN, true);
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    umb_principal_t principal = { { 0 } };
    char reason [256] = "";
    int64_t exp = 0;
    int status = umb_auth_identify (self, token, &principal, &exp, reason, sizeof reason);
    if (status >= 500)
        return umb_req_fail (req, status, NULL, "%s", reason);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_bool (w, "active", status == 0);
    if (status)
        umb_w_kv_str (w, "reason", reason);
    else
        s_write_principal (w, &principal, exp);
    umb_w_map_end (w);
    return 200;
}

static int
s_authorize_op (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *token = umb_msg_str (body, "token", UMB_AUTH_READ_TOKEN, true);
    const char *action = umb_msg_str (body, "action", UMB_AUTH_READ_NAME, true);
    const char *workspace = umb_msg_str (body, "workspace", UMB_AUTH_READ_REF, true);
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    umb_principal_t principal = { { 0 } };
    char reason [256] = "";
    umb_auth_workspace_t ws;
    umb_role_t role = UMB_ROLE_NONE;
    int status = umb_auth_identify (self, token, &principal, NULL, reason, sizeof reason);
    if (status == 0)
        status = umb_auth_decide (self, &principal, action, workspace, &ws, &role, reason,
                                  sizeof reason);
    if (status >= 500)
        return umb_req_fail (req, status, NULL, "%s", reason);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_bool (w, "allowed", status == 0);
    if (status)
        umb_w_kv_int (w, "status", status);
    umb_w_kv_str (w, "reason", reason);
    if (status == 0) {
        umb_w_kv_str (w, "workspace_id", ws.id);
        umb_w_kv_str (w, "role", umb_auth_role_name (role));
        umb_w_kv_str (w, "subject", principal.subject);
        umb_w_kv_str (w, "username", principal.username);
        umb_w_kv_bool (w, "is_api_key", principal.is_api_key);
    }
    umb_w_map_end (w);
    return 200;
}

//  ---------------------------------------------------------------- hasher results

static void
s_on_hashed (void *arg, const umb_auth_hasher_result_t *result)
{
    umb_auth_users_hashed ((umb_auth_t *) arg, (umb_auth_pending_t *) result->context, result);
}

//  ---------------------------------------------------------------- first admin

static void s_fail (umb_auth_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_fail (umb_auth_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->failure, sizeof self->failure, format, args);
    va_end (args);
    umb_log_error (self->log, "cannot start: %s", self->failure);
}

//  Creates a platform administrator in one transaction. 0, 1 if the
//  username was taken meanwhile, -1.
static int
s_admin_create (umb_auth_t *self, const char *username, const char *password, const char *email)
{
    umb_auth_user_t user = { .is_admin = true, .created_at = umb_auth_now () };
    umb_auth_new_id ("usr_", user.id, sizeof user.id);
    snprintf (user.username, sizeof user.username, "%s", username);
    snprintf (user.email, sizeof user.email, "%s", email);
    if (crypto_pwhash_str (user.password_hash, password, strlen (password), self->opslimit,
                           self->memlimit) != 0)
        return -1;
    if (umb_store_begin (self->store))
        return -1;
    int rc = umb_auth_store_user_insert (self->store, &user);
    if (rc) {
        umb_store_rollback (self->store);
        return rc == UMB_STORE_CONSTRAINT ? 1 : -1;
    }
    return umb_store_commit (self->store);
}

static int
s_bootstrap (umb_auth_t *self)
{
    const char *username = umb_config_str (self->config, "admin.username");
    const char *password = umb_config_str (self->config, "admin.password");
    const char *email = umb_config_str (self->config, "admin.email");
    char why [160];
    umb_auth_user_t user;
    if (*username) {
        if (!umb_auth_username_valid (username, why, sizeof why)) {
            s_fail (self, "admin.username is not a valid username (%s)", why);
            return -1;
        }
        int rc = umb_auth_store_user_by_name (self->store, username, &user);
        if (rc == 0)
            return 0;                   //  made on an earlier start; its password is its own now
        if (rc != UMB_AUTH_NOT_FOUND) {
            s_fail (self, "cannot read the users table");
            return -1;
        }
        //  Never print the password: only what is wrong with it
        if (!*password) {
            s_fail (self, "admin.password is not set; it is needed to create the administrator '%s'",
                    username);
            return -1;
        }
        if (!umb_auth_password_valid (password, (size_t) self->password_min, why, sizeof why)) {
            s_fail (self, "admin.password does not satisfy the password rules (%s)", why);
            return -1;
        }
        if (*email && !umb_auth_email_valid (email, why, sizeof why)) {
            s_fail (self, "admin.email is not valid (%s)", why);
            return -1;
        }
        if (s_admin_create (self, username, password, email) < 0) {
            s_fail (self, "cannot create the administrator '%s'", username);
            return -1;
        }
        umb_log_info (self->log, "created the platform administrator '%s'", username);
        return 0;
    }
    int64_t admins = umb_auth_store_admin_count (self->store);
    if (admins < 0) {
        s_fail (self, "cannot read the users table");
        return -1;
    }
    if (admins > 0)
        return 0;
    static const char alphabet [] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    char secret [25];
    for (size_t index = 0; index < sizeof secret - 1; index++)
        secret [index] = alphabet [randombytes_uniform (sizeof alphabet - 1)];
    secret [sizeof secret - 1] = 0;
    int rc = s_admin_create (self, "admin", secret, email);
    if (rc == 0) {
        //  Once, to the operator's terminal, never to the log
        printf ("umbra: first admin 'admin' created with password: %s\n", secret);
        fflush (stdout);
        umb_log_info (self->log, "created the first platform administrator 'admin' "
                      "(password printed on standard output)");
    }
    else
    if (rc == 1)
        umb_log_warn (self->log, "there is no platform administrator and the username 'admin' "
                      "is taken; set admin.username and admin.password to create one");
    sodium_memzero (secret, sizeof secret);
    if (rc < 0) {
        s_fail (self, "cannot create the first administrator");
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------- lifecycle

umb_auth_t *
umb_auth_new (umb_runtime_t *runtime)
{
    assert (runtime);
    umb_auth_t *self = calloc (1, sizeof (umb_auth_t));
    assert (self);
    self->runtime = runtime;
    self->config = umb_runtime_config (runtime);
    self->log = umb_log_dup (umb_runtime_log (runtime), "auth");
    assert (self->log);
    self->issuer = umb_config_str (self->config, "auth.issuer");
    self->access_ttl = umb_config_int (self->config, "auth.access_ttl_s");
    self->refresh_ttl = umb_config_int (self->config, "auth.refresh_ttl_s");
    self->password_min = umb_config_int (self->config, "auth.password_min_length");
    self->max_failures = umb_config_int (self->config, "auth.login_max_failures");
    self->failure_window = umb_config_int (self->config, "auth.login_window_s");
    bool moderate = streq (umb_config_str (self->config, "auth.pwhash"), "moderate");
    self->opslimit = moderate ? crypto_pwhash_OPSLIMIT_MODERATE : crypto_pwhash_OPSLIMIT_INTERACTIVE;
    self->memlimit = moderate ? crypto_pwhash_MEMLIMIT_MODERATE : crypto_pwhash_MEMLIMIT_INTERACTIVE;

    char *dir = umb_runtime_service_dir (runtime, "auth");
    char *db_path = NULL, *key_path = NULL;
    if (!dir) {
        s_fail (self, "cannot create the service directory under %s",
                umb_runtime_state_dir (runtime));
        goto done;
    }
    self->cert = umb_runtime_identity (runtime, "auth");
    if (!self->cert) {
        s_fail (self, "cannot load the CURVE identity 'auth' from %s",
                umb_runtime_keys_dir (runtime));
        goto done;
    }
    db_path = umb_runtime_db_path (runtime, "auth", dir);
    self->store = umb_auth_store_open (db_path, self->log);
    if (!self->store) {
        s_fail (self, "cannot open the database %s", db_path);
        goto done;
    }
    key_path = zsys_sprintf ("%s/jwt-ed25519.key", dir);
    self->signer = umb_jwt_signer_load_or_create (key_path, self->log);
    self->keyring = umb_jwt_keyring_new ();
    if (!self->signer || !self->keyring
    ||  umb_jwt_keyring_add_signer (self->keyring, self->signer) < 0) {
        s_fail (self, "cannot load or create the token signing key %s", key_path);
        goto done;
    }
    //  The first administrator exists before anyone can connect
    if (s_bootstrap (self))
        goto done;
    const char *endpoint = umb_config_str (self->config, "auth.endpoint");
    const char *pub_endpoint = umb_config_str (self->config, "auth.pub_endpoint");
    self->service = umb_service_new (&(umb_service_config_t) {
        .name = "auth", .endpoint = endpoint, .pub_endpoint = *pub_endpoint ? pub_endpoint : NULL,
        .cert = self->cert, .zap = umb_runtime_zap (runtime), .routes = s_routes, .state = self,
        .authenticate = s_authenticate, .authorize = s_authorize, .log = self->log,
        .mesh_services = umb_runtime_service_keys (runtime),
        .max_body = (size_t) umb_config_int (self->config, "mesh.max_body_bytes") });
    if (!self->service) {
        s_fail (self, "cannot bind %s%s%s", endpoint, *pub_endpoint ? " or " : "", pub_endpoint);
        goto done;
    }
    self->hasher = umb_auth_hasher_new (umb_service_loop (self->service), UMB_AUTH_HASH_WORKERS,
                                        self->opslimit, self->memlimit, s_on_hashed, self,
                                        self->log);
    if (!self->hasher) {
        s_fail (self, "cannot start the password hashers");
        goto done;
    }
    if (umb_auth_quota_start (self)) {
        s_fail (self, "cannot start the billing worker");
        goto done;
    }
    if (umb_auth_store_failures_prune (self->store, umb_auth_now () - self->failure_window))
        umb_log_warn (self->log, "cannot prune old failed logins");

done:
    if (*self->failure) {
        //  Serve nothing at all rather than half a service
        umb_auth_quota_stop (self);
        umb_auth_hasher_destroy (&self->hasher);
        umb_service_destroy (&self->service);
    }
    zstr_free (&dir);
    zstr_free (&db_path);
    zstr_free (&key_path);
    return self;
}

void
umb_auth_destroy (umb_auth_t **self_p)
{
    assert (self_p);
    umb_auth_t *self = *self_p;
    if (self) {
        //  The hasher and the billing worker answer the requests they still
        //  hold, through the service
        umb_auth_hasher_destroy (&self->hasher);
        umb_auth_quota_stop (self);
        umb_service_destroy (&self->service);
        umb_jwt_keyring_destroy (&self->keyring);
        umb_jwt_signer_destroy (&self->signer);
        umb_store_destroy (&self->store);
        zcert_destroy (&self->cert);
        umb_log_destroy (&self->log);
        free (self);
        *self_p = NULL;
    }
}

const char  *umb_auth_failure (umb_auth_t *self) { assert (self); return self->failure; }
umb_store_t *umb_auth_store (umb_auth_t *self)   { assert (self); return self->store; }

void
umb_auth_run (umb_auth_t *self, zsock_t *pipe)
{
    assert (self && pipe);
    if (self->service) {
        umb_service_run (self->service, pipe);
        return;
    }
    while (true) {
        char *command = zstr_recv (pipe);
        if (!command)
            break;                      //  interrupted
        bool term = streq (command, "$TERM");
        if (streq (command, "ENDPOINT") || streq (command, "PUB"))
            zstr_send (pipe, "");
        else
        if (streq (command, "REASON"))
            zstr_send (pipe, self->failure);
        zstr_free (&command);
        if (term)
            break;
    }
}

void
umb_auth_actor (zsock_t *pipe, void *args)
{
    umb_auth_t *self = umb_auth_new ((umb_runtime_t *) args);
    zsock_signal (pipe, 0);
    umb_auth_run (self, pipe);
    umb_auth_destroy (&self);
}
