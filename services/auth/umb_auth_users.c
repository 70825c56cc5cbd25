//  umb_auth_users - the auth service's users, passwords, sessions and tokens
#include <assert.h>
#include <string.h>
#include "umb_auth_private.h"

#define S_BAD_LOGIN "invalid username or password"

//  ---------------------------------------------------------------- helpers

//  The refresh token's text and hash, made fresh.
typedef struct {
    char token [UMB_AUTH_REFRESH_SIZE];
    char hash [crypto_hash_sha256_BYTES * 2 + 1];
} s_refresh_t;

static void
s_refresh_make (s_refresh_t *refresh)
{
    unsigned char random [32];
    randombytes_buf (random, sizeof random);
    memcpy (refresh->token, UMB_AUTH_REFRESH_PREFIX, 4);
    sodium_bin2base64 (refresh->token + 4, sizeof refresh->token - 4, random, sizeof random,
                       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero (random, sizeof random);
    umb_auth_sha256_hex (refresh->token, refresh->hash);
}

//  Signs an access token for user in session. Caller frees; NULL on failure.
static char *
s_access_token (umb_auth_t *self, const umb_auth_user_t *user, const char *session_id)
{
    char jti [UMB_AUTH_ID_SIZE];
    umb_auth_new_id ("", jti, sizeof jti);
    int64_t now = umb_auth_now ();
    json_t *claims = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}",
                                "iss", self->issuer, "sub", user->id, "name", user->username,
                                "sid", session_id, "jti", jti, "iat", (json_int_t) now,
                                "nbf", (json_int_t) now, "exp", (json_int_t) (now + self->access_ttl));
    char *token = claims ? umb_jwt_sign (self->signer, claims) : NULL;
    json_decref (claims);
    return token;
}

//  Writes the tokens reply; wipes the tokens.
static int
s_tokens_reply (umb_auth_t *self, umb_req_t *req, const umb_auth_user_t *user,
                const char *session_id, s_refresh_t *refresh, int status)
{
    char *access = s_access_token (self, user, session_id);
    if (!access) {
        sodium_memzero (refresh, sizeof *refresh);
        return umb_req_fail (req, 500, NULL, "cannot sign the access token");
    }
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "access_token", access);
    umb_w_kv_str (w, "refresh_token", refresh->token);
    umb_w_kv_str (w, "token_type", "Bearer");
    umb_w_kv_int (w, "expires_in", self->access_ttl);
    umb_w_kv_int (w, "refresh_expires_in", self->refresh_ttl);
    umb_w_key (w, "user");
    umb_auth_write_user (w, user, false);
    umb_w_map_end (w);
    sodium_memzero (access, strlen (access));
    free (access);
    sodium_memzero (refresh, sizeof *refresh);
    return status;
}

//  429 if username is locked out for failed logins; 0 if not; 500.
static int
s_lockout (umb_auth_t *self, umb_req_t *req, const char *username)
{
    int64_t now = umb_auth_now ();
    int64_t until = 0;
    int rc = umb_auth_store_lockout (self->store, username, now - self->failure_window,
                                     self->max_failures, self->failure_window, &until);
    if (rc < 0)
        return umb_auth_store_error (self, req);
    if (rc == 0)
        return 0;
    int64_t wait = until - now > 0 ? until - now : 1;
    return umb_req_fail (req, 429, NULL, "too many failed logins; try again in %lld s",
                         (long long) wait);
}

static void
s_failure_record (umb_auth_t *self, const char *username)
{
    int64_t now = umb_auth_now ();
    if (umb_store_begin (self->store) == 0) {
        if (umb_auth_store_failure_add (self->store, username, now) == 0
        &&  umb_auth_store_failures_prune (self->store, now - self->failure_window) == 0) {
            umb_store_commit (self->store);
            return;
        }
        umb_store_rollback (self->store);
    }
    umb_log_error (self->log, "cannot record a failed login");
}

static umb_auth_pending_t *
s_pending_new (umb_auth_op_t kind)
{
    umb_auth_pending_t *pending = calloc (1, sizeof (umb_auth_pending_t));
    assert (pending);
    pending->kind = kind;
    return pending;
}

//  Queues a hash job for req; on success the request is deferred and owned
//  by pending. Returns UMB_DEFERRED, or 503 when the hashers are saturated.
static int
s_submit (umb_auth_t *self, umb_req_t *req, umb_auth_pending_t *pending, const char *stored,
          const char *password, const char *new_password)
{
    if (umb_auth_hasher_submit (self->hasher, stored, password, new_password, pending)) {
        free (pending);
        umb_req_set_retryable (req);
        return umb_req_fail (req, 503, NULL, "too many password checks in progress; try again");
    }
    pending->req = umb_req_defer (req);
    return UMB_DEFERRED;
}

//  ---------------------------------------------------------------- register

int
umb_auth_users_register (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *username = umb_msg_str (body, "username", UMB_AUTH_READ_NAME, true);
    const char *password = umb_msg_str (body, "password", UMB_AUTH_READ_PASSWORD, true);
    const char *email = umb_msg_str (body, "email", UMB_AUTH_READ_TEXT, false);
    int status = 0;
    char why [160];
    umb_auth_user_t user;
    if (umb_msg_failed (body))
        status = umb_auth_bad_request (req);
    else
    if (!umb_auth_username_valid (username, why, sizeof why)
    ||  !umb_auth_password_valid (password, (size_t) self->password_min, why, sizeof why)
    ||  (email && *email && !umb_auth_email_valid (email, why, sizeof why)))
        status = umb_req_fail (req, 422, NULL, "%s", why);
    else {
        //  Refuse a taken name before paying for a hash
        int rc = umb_auth_store_user_by_name (self->store, username, &user);
        if (rc == 0)
            status = umb_req_fail (req, 409, "username_taken", "username '%s' is taken", username);
        else
        if (rc != UMB_AUTH_NOT_FOUND)
            status = umb_auth_store_error (self, req);
    }
    if (status == 0) {
        umb_auth_pending_t *pending = s_pending_new (UMB_AUTH_OP_REGISTER);
        snprintf (pending->username, sizeof pending->username, "%s", username);
        snprintf (pending->email, sizeof pending->email, "%s", email ? email : "");
        status = s_submit (self, req, pending, NULL, NULL, password);
    }
    umb_auth_wipe (body, "password", password);
    return status;
}

static int
s_registered (umb_auth_t *self, umb_auth_pending_t *pending, const char *hash)
{
    umb_req_t *req = pending->req;
    umb_auth_user_t user = { .created_at = umb_auth_now () };
    umb_auth_new_id ("usr_", user.id, sizeof user.id);
    snprintf (user.username, sizeof user.username, "%.32s", pending->username);
    snprintf (user.email, sizeof user.email, "%s", pending->email);
    snprintf (user.password_hash, sizeof user.password_hash, "%s", hash);
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    int rc = umb_auth_store_user_insert (self->store, &user);
    if (rc == UMB_STORE_CONSTRAINT) {
        umb_store_rollback (self->store);
        return umb_req_fail (req, 409, "username_taken", "username '%s' is taken", user.username);
    }
    int status = umb_auth_commit (self, req, rc);
    if (status)
        return status;
    sodium_memzero (user.password_hash, sizeof user.password_hash);
    umb_log_info (self->log, "registered user '%s' (%s)", user.username, user.id);
    umb_auth_write_user (umb_req_body_writer (req), &user, true);
    return 201;
}

//  ---------------------------------------------------------------- login

int
umb_auth_tokens_create (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *username = umb_msg_str (body, "username", UMB_AUTH_READ_NAME, true);
    const char *password = umb_msg_str (body, "password", UMB_AUTH_READ_PASSWORD, true);
    int status = 0;
    umb_auth_user_t user;
    int rc = UMB_AUTH_NOT_FOUND;
    if (umb_msg_failed (body))
        status = umb_auth_bad_request (req);
    else
    if (strlen (password) > UMB_AUTH_PASSWORD_MAX)
        status = umb_req_fail (req, 422, NULL, "password: at most 1024 bytes");
    else
        status = s_lockout (self, req, username);
    if (status == 0) {
        rc = umb_auth_store_user_by_name (self->store, username, &user);
        if (rc != 0 && rc != UMB_AUTH_NOT_FOUND)
            status = umb_auth_store_error (self, req);
    }
    if (status == 0) {
        //  Unknown users are checked against a dummy hash: the same work, the same answer
        umb_auth_pending_t *pending = s_pending_new (UMB_AUTH_OP_LOGIN);
        snprintf (pending->username, sizeof pending->username, "%s", username);
        if (rc == 0)
            snprintf (pending->user_id, sizeof pending->user_id, "%s", user.id);
        status = s_submit (self, req, pending, rc == 0 ? user.password_hash : NULL, password, NULL);
    }
    if (rc == 0)
        sodium_memzero (user.password_hash, sizeof user.password_hash);
    umb_auth_wipe (body, "password", password);
    return status;
}

//  Opens a session with its first refresh token, inside the caller's transaction.
static int
s_session_open (umb_auth_t *self, const char *user_id, char *session_id, size_t size,
                s_refresh_t *refresh)
{
    int64_t now = umb_auth_now ();
    umb_auth_new_id ("ses_", session_id, size);
    s_refresh_make (refresh);
    int rc = umb_auth_store_session_insert (self->store, session_id, user_id, now,
                                            now + self->refresh_ttl);
    if (rc == 0)
        rc = umb_auth_store_refresh_insert (self->store, refresh->hash, session_id, now,
                                            now + self->refresh_ttl);
    return rc;
}

static int
s_logged_in (umb_auth_t *self, umb_auth_pending_t *pending, const umb_auth_hasher_result_t *result)
{
    umb_req_t *req = pending->req;
    if (!result->verified) {
        s_failure_record (self, pending->username);
        umb_log_info (self->log, "failed login for '%.64s'", pending->username);
        return umb_req_fail (req, 401, NULL, S_BAD_LOGIN);
    }
    umb_auth_user_t user;
    int rc = umb_auth_store_user_by_id (self->store, pending->user_id, &user);
    if (rc == UMB_AUTH_NOT_FOUND)
        return umb_req_fail (req, 401, NULL, S_BAD_LOGIN);
    if (rc)
        return umb_auth_store_error (self, req);
    sodium_memzero (user.password_hash, sizeof user.password_hash);
    //  Only someone who knows the password learns the account is disabled
    if (user.disabled)
        return umb_req_fail (req, 403, "disabled", "account '%s' is disabled", user.username);
    char session_id [UMB_AUTH_ID_SIZE];
    s_refresh_t refresh;
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    rc = umb_auth_store_failures_clear (self->store, user.username);
    if (rc == 0 && result->hash)
        rc = umb_auth_store_user_set_password (self->store, user.id, result->hash, umb_auth_now ());
    if (rc == 0)
        rc = s_session_open (self, user.id, session_id, sizeof session_id, &refresh);
    int status = umb_auth_commit (self, req, rc);
    if (status) {
        sodium_memzero (&refresh, sizeof refresh);
        return status;
    }
    umb_log_info (self->log, "user '%s' logged in (session %s)", user.username, session_id);
    return s_tokens_reply (self, req, &user, session_id, &refresh, 201);
}

//  ---------------------------------------------------------------- refresh

int
umb_auth_tokens_refresh (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *token = umb_msg_str (body, "refresh_token", UMB_AUTH_READ_NAME, true);
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    if (strlen (token) != UMB_AUTH_REFRESH_SIZE - 1
    ||  strncmp (token, UMB_AUTH_REFRESH_PREFIX, 4) != 0) {
        umb_auth_wipe (body, "refresh_token", token);
        return umb_req_fail (req, 401, NULL, "invalid refresh token");
    }
    char hash [crypto_hash_sha256_BYTES * 2 + 1];
    umb_auth_sha256_hex (token, hash);
    umb_auth_wipe (body, "refresh_token", token);

    int64_t now = umb_auth_now ();
    umb_auth_refresh_t old;
    umb_auth_session_t session;
    umb_auth_user_t user;
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    int rc = umb_auth_store_refresh_get (self->store, hash, &old);
    if (rc == 0 && old.rotated) {
        //  A token used twice was stolen from one of its holders: end the session for both
        rc = umb_auth_store_session_revoke (self->store, old.session_id, now,
                                            "refresh token reused", NULL);
        int status = umb_auth_commit (self, req, rc);
        if (status)
            return status;
        umb_log_warn (self->log, "refresh token reused on session %s: session revoked",
                      old.session_id);
        return umb_req_fail (req, 401, "refresh_reused",
                             "refresh token already used; the session is revoked");
    }
    int status = 0;
    if (rc == UMB_AUTH_NOT_FOUND)
        status = umb_req_fail (req, 401, NULL, "invalid refresh token");
    else
    if (rc == 0 && old.expires_at <= now)
        status = umb_req_fail (req, 401, NULL, "refresh token expired");
    else
    if (rc == 0 && (rc = umb_auth_store_session_get (self->store, old.session_id, &session)) == 0
    &&  session.revoked)
        status = umb_req_fail (req, 401, NULL, "session revoked");
    else
    if (rc == 0 && (rc = umb_auth_store_user_by_id (self->store, session.user_id, &user)) == 0
    &&  user.disabled)
        status = umb_req_fail (req, 401, NULL, "account disabled");
    if (status || rc) {
        umb_store_rollback (self->store);
        return status ? status : umb_auth_store_error (self, req);
    }
    sodium_memzero (user.password_hash, sizeof user.password_hash);
    s_refresh_t refresh;
    s_refresh_make (&refresh);
    rc = umb_auth_store_refresh_rotate (self->store, hash, now);
    if (rc == 0)
        rc = umb_auth_store_refresh_insert (self->store, refresh.hash, session.id, now,
                                            now + self->refresh_ttl);
    if (rc == 0)
        rc = umb_auth_store_session_extend (self->store, session.id, now + self->refresh_ttl);
    status = umb_auth_commit (self, req, rc);
    if (status) {
        sodium_memzero (&refresh, sizeof refresh);
        return status;
    }
    return s_tokens_reply (self, req, &user, session.id, &refresh, 200);
}

//  ---------------------------------------------------------------- revoke

int
umb_auth_tokens_revoke (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const umb_principal_t *principal = umb_req_principal (req);
    const char *token = umb_msg_str (body, "refresh_token", UMB_AUTH_READ_NAME, false);
    bool all = umb_msg_bool (body, "all", false, false);
    char hash [crypto_hash_sha256_BYTES * 2 + 1] = "";
    if (token)
        umb_auth_sha256_hex (token, hash);
    umb_auth_wipe (body, "refresh_token", token);
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    int status = umb_auth_user_token_only (req);
    if (status)
        return status;

    int64_t now = umb_auth_now ();
    int64_t revoked = 0;
    umb_auth_refresh_t refresh;
    umb_auth_session_t session;
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    int rc;
    if (all)
        rc = umb_auth_store_sessions_revoke_user (self->store, principal->subject, NULL, now,
                                                  "revoked all", &revoked);
    else
    if (token) {
        //  Someone else's token is as unknown as a made-up one
        rc = umb_auth_store_refresh_get (self->store, hash, &refresh);
        if (rc == 0)
            rc = umb_auth_store_session_get (self->store, refresh.session_id, &session);
        if (rc == 0 && !streq (session.user_id, principal->subject))
            rc = UMB_AUTH_NOT_FOUND;
        if (rc == UMB_AUTH_NOT_FOUND) {
            umb_store_rollback (self->store);
            return umb_req_fail (req, 404, NULL, "unknown refresh token");
        }
        if (rc == 0)
            rc = umb_auth_store_session_revoke (self->store, session.id, now, "revoked", &revoked);
    }
    else
        rc = umb_auth_store_session_revoke (self->store, principal->session, now, "logout",
                                            &revoked);
    status = umb_auth_commit (self, req, rc);
    if (status)
        return status;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_int (w, "revoked", revoked);
    umb_w_map_end (w);
    return 200;
}

//  ---------------------------------------------------------------- users

//  The user a request's one field "user" names: 0, or 400/404/500 answered.
static int
s_user_requested (umb_auth_t *self, umb_req_t *req, umb_auth_user_t *user)
{
    umb_msg_t *body = umb_req_body (req);
    const char *ref = umb_msg_str (body, "user", UMB_AUTH_READ_REF, true);
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    return umb_auth_user_find (self, req, ref, user);
}

int
umb_auth_users_get (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_auth_user_t user;
    int status = s_user_requested (self, req, &user);
    if (status)
        return status;
    const umb_principal_t *principal = umb_req_principal (req);
    bool full = streq (user.id, principal->subject) || principal->is_admin;
    umb_auth_write_user (umb_req_body_writer (req), &user, full);
    return 200;
}

//  Only the user or a platform administrator, with a user token, may change
//  a user. 0 or 403.
static int
s_may_change (umb_req_t *req, const umb_auth_user_t *user)
{
    int status = umb_auth_user_token_only (req);
    if (status)
        return status;
    const umb_principal_t *principal = umb_req_principal (req);
    if (!streq (user->id, principal->subject) && !principal->is_admin)
        return umb_req_fail (req, 403, NULL,
                             "only '%s' or a platform administrator can change this user",
                             user->username);
    return 0;
}

//  Applies a user update in one transaction and answers with the user.
static int
s_user_save (umb_auth_t *self, umb_req_t *req, const char *user_id, const char *email,
             const char *hash, const char *keep_session)
{
    int64_t now = umb_auth_now ();
    int64_t revoked = 0;
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    int rc = 0;
    if (email)
        rc = umb_auth_store_user_set_email (self->store, user_id, email, now);
    //  A new password ends every other session: whoever had the old one is out
    if (rc == 0 && hash)
        rc = umb_auth_store_user_set_password (self->store, user_id, hash, now);
    if (rc == 0 && hash)
        rc = umb_auth_store_sessions_revoke_user (self->store, user_id,
                                                  *keep_session ? keep_session : NULL, now,
                                                  "password changed", &revoked);
    int status = umb_auth_commit (self, req, rc);
    if (status)
        return status;
    umb_auth_user_t user;
    rc = umb_auth_store_user_by_id (self->store, user_id, &user);
    if (rc)
        return umb_auth_store_error (self, req);
    sodium_memzero (user.password_hash, sizeof user.password_hash);
    if (hash)
        umb_log_info (self->log, "password of '%s' changed; %lld other sessions revoked",
                      user.username, (long long) revoked);
    umb_auth_write_user (umb_req_body_writer (req), &user, true);
    return 200;
}

//  Checks the values of an update; 0 when it may go ahead, else the answered status.
static int
s_update_check (umb_auth_t *self, umb_req_t *req, const umb_auth_user_t *user, bool self_change,
                const char *email, const char *password, const char *current)
{
    char why [160];
    if (!email && !password)
        return umb_req_fail (req, 422, NULL, "nothing to update: give email or password");
    if ((email && *email && !umb_auth_email_valid (email, why, sizeof why))
    ||  (password && !umb_auth_password_valid (password, (size_t) self->password_min, why,
                                               sizeof why)))
        return umb_req_fail (req, 422, NULL, "%s", why);
    if (password && self_change && !current)
        return umb_req_fail (req, 400, NULL,
                             "field 'current_password' is required to change your own password");
    //  Guessing one's own password through here is throttled like logging in
    if (password && self_change)
        return s_lockout (self, req, user->username);
    return 0;
}

int
umb_auth_users_update (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const umb_principal_t *principal = umb_req_principal (req);
    const char *ref = umb_msg_str (body, "user", UMB_AUTH_READ_REF, true);
    const char *email = umb_msg_str (body, "email", UMB_AUTH_READ_TEXT, false);
    const char *password = umb_msg_str (body, "password", UMB_AUTH_READ_PASSWORD, false);
    const char *current = umb_msg_str (body, "current_password", UMB_AUTH_READ_PASSWORD, false);
    umb_auth_user_t user = { { 0 } };
    int status = umb_msg_failed (body) ? umb_auth_bad_request (req)
                                       : umb_auth_user_find (self, req, ref, &user);
    if (status == 0)
        status = s_may_change (req, &user);
    bool self_change = streq (user.id, principal->subject);
    if (status == 0)
        status = s_update_check (self, req, &user, self_change, email, password, current);

    if (status == 0 && !password)
        status = s_user_save (self, req, user.id, email, NULL, NULL);
    else
    if (status == 0) {
        umb_auth_pending_t *pending = s_pending_new (UMB_AUTH_OP_PASSWORD);
        snprintf (pending->user_id, sizeof pending->user_id, "%s", user.id);
        snprintf (pending->username, sizeof pending->username, "%s", user.username);
        pending->set_email = email != NULL;
        snprintf (pending->email, sizeof pending->email, "%s", email ? email : "");
        pending->self_change = self_change;
        if (self_change)
            snprintf (pending->keep_session, sizeof pending->keep_session, "%s", principal->session);
        //  Yourself: prove the current password; an administrator: just set it
        status = s_submit (self, req, pending, self_change ? user.password_hash : NULL,
                           self_change ? current : NULL, password);
    }
    sodium_memzero (user.password_hash, sizeof user.password_hash);
    umb_auth_wipe (body, "password", password);
    umb_auth_wipe (body, "current_password", current);
    return status;
}

static int
s_password_changed (umb_auth_t *self, umb_auth_pending_t *pending,
                    const umb_auth_hasher_result_t *result)
{
    umb_req_t *req = pending->req;
    if (pending->self_change && !result->verified) {
        s_failure_record (self, pending->username);
        return umb_req_fail (req, 403, "wrong_password", "the current password is wrong");
    }
    if (!result->hash)
        return umb_req_fail (req, 500, NULL, "cannot hash the new password");
    return s_user_save (self, req, pending->user_id, pending->set_email ? pending->email : NULL,
                        result->hash, pending->keep_session);
}

int
umb_auth_users_disable (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_auth_user_t user;
    int status = s_user_requested (self, req, &user);
    if (status == 0)
        status = s_may_change (req, &user);
    sodium_memzero (user.password_hash, sizeof user.password_hash);
    if (status)
        return status;
    if (!user.disabled) {
        int64_t now = umb_auth_now ();
        if (umb_store_begin (self->store))
            return umb_auth_store_error (self, req);
        int64_t admins = user.is_admin ? umb_auth_store_admin_count (self->store) : 2;
        if (admins >= 0 && admins <= 1) {
            umb_store_rollback (self->store);
            return umb_req_fail (req, 409, "last_admin",
                                 "'%s' is the last platform administrator", user.username);
        }
        int rc = admins < 0 ? -1 : umb_auth_store_user_disable (self->store, user.id, now);
        if (rc == 0)
            rc = umb_auth_store_sessions_revoke_user (self->store, user.id, NULL, now,
                                                      "user disabled", NULL);
        if ((status = umb_auth_commit (self, req, rc)))
            return status;
        user.disabled = true;
        umb_log_info (self->log, "user '%s' disabled by '%s'", user.username,
                      umb_req_principal (req)->username);
    }
    umb_auth_write_user (umb_req_body_writer (req), &user, true);
    return 200;
}

//  ---------------------------------------------------------------- hasher results

void
umb_auth_users_hashed (umb_auth_t *self, umb_auth_pending_t *pending,
                       const umb_auth_hasher_result_t *result)
{
    umb_req_t *req = pending->req;
    int status;
    if (result->cancelled) {
        umb_req_set_retryable (req);
        status = umb_req_fail (req, 503, NULL, "the service is stopping");
    }
    else
    if (result->failed)
        status = umb_req_fail (req, 500, NULL, "cannot hash the password");
    else
    if (pending->kind == UMB_AUTH_OP_REGISTER)
        status = result->hash ? s_registered (self, pending, result->hash)
                              : umb_req_fail (req, 500, NULL, "cannot hash the password");
    else
    if (pending->kind == UMB_AUTH_OP_LOGIN)
        status = s_logged_in (self, pending, result);
    else
        status = s_password_changed (self, pending, result);
    if (status >= 300)
        umb_w_reset (umb_req_body_writer (req));
    umb_service_reply (self->service, &pending->req, status);
    sodium_memzero (pending, sizeof *pending);
    free (pending);
}
