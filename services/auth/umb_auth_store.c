//  umb_auth_store - the auth service's SQL: schema migrations and queries
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <czmq.h>
#include "umb_auth_store.h"

//  Portable SQL: standard types, ids made by the service, no AUTOINCREMENT,
//  no INSERT OR. Users are never deleted, only disabled, so sessions, keys
//  and invitations can point at them safely.
static const umb_migration_t s_migrations [] = {
    { 1,
      "CREATE TABLE users ("
      "  id            TEXT PRIMARY KEY,"
      "  username      TEXT NOT NULL UNIQUE,"
      "  email         TEXT,"
      "  password_hash TEXT NOT NULL,"
      "  is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),"
      "  disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),"
      "  created_at    INTEGER NOT NULL,"
      "  updated_at    INTEGER NOT NULL"
      ");"
      "CREATE TABLE login_failures ("
      "  username      TEXT NOT NULL,"
      "  at            INTEGER NOT NULL"
      ");"
      "CREATE INDEX login_failures_by_username ON login_failures (username, at);"
      "CREATE INDEX login_failures_by_time ON login_failures (at);"
      "CREATE TABLE sessions ("
      "  id            TEXT PRIMARY KEY,"
      "  user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
      "  created_at    INTEGER NOT NULL,"
      "  expires_at    INTEGER NOT NULL,"
      "  revoked_at    INTEGER,"
      "  revoke_reason TEXT"
      ");"
      "CREATE INDEX sessions_by_user ON sessions (user_id);"
      "CREATE TABLE refresh_tokens ("
      "  hash          TEXT PRIMARY KEY,"
      "  session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
      "  created_at    INTEGER NOT NULL,"
      "  expires_at    INTEGER NOT NULL,"
      "  rotated_at    INTEGER"
      ");"
      "CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);"
      "CREATE TABLE workspaces ("
      "  id            TEXT PRIMARY KEY,"
      "  name          TEXT NOT NULL UNIQUE,"
      "  display_name  TEXT NOT NULL,"
      "  created_by    TEXT NOT NULL REFERENCES users (id),"
      "  created_at    INTEGER NOT NULL"
      ");"
      "CREATE TABLE memberships ("
      "  workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,"
      "  user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
      "  role          TEXT NOT NULL CHECK (role IN ('viewer', 'member', 'admin')),"
      "  joined_at     INTEGER NOT NULL,"
      "  PRIMARY KEY (workspace_id, user_id)"
      ");"
      "CREATE INDEX memberships_by_user ON memberships (user_id);"
      "CREATE TABLE invitations ("
      "  id            TEXT PRIMARY KEY,"
      "  workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,"
      "  user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
      "  role          TEXT NOT NULL CHECK (role IN ('viewer', 'member', 'admin')),"
      "  state         TEXT NOT NULL"
      "                CHECK (state IN ('pending', 'accepted', 'rejected', 'cancelled')),"
      "  invited_by    TEXT NOT NULL REFERENCES users (id),"
      "  created_at    INTEGER NOT NULL,"
      "  updated_at    INTEGER NOT NULL"
      ");"
      "CREATE UNIQUE INDEX invitations_one_pending ON invitations (workspace_id, user_id)"
      "  WHERE state = 'pending';"
      "CREATE INDEX invitations_by_workspace ON invitations (workspace_id);"
      "CREATE INDEX invitations_by_user ON invitations (user_id);"
      "CREATE TABLE api_keys ("
      "  id            TEXT PRIMARY KEY,"
      "  workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,"
      "  created_by    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
      "  name          TEXT NOT NULL,"
      "  secret_hash   TEXT NOT NULL,"
      "  actions       TEXT NOT NULL,"
      "  created_at    INTEGER NOT NULL,"
      "  expires_at    INTEGER,"
      "  revoked_at    INTEGER,"
      "  last_used_at  INTEGER"
      ");"
      "CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id);"
    },
    { 0, NULL }
};

umb_store_t *
umb_auth_store_open (const char *path, umb_log_t *log)
{
    return umb_store_new (path, s_migrations, log);
}

//  ---------------------------------------------------------------- helpers

_Static_assert (UMB_AUTH_NOT_FOUND == UMB_STORE_NOT_FOUND, "umb_store_get's not found");

static void
s_int64_row (sqlite3_stmt *stmt, void *dest)
{
    *(int64_t *) dest = sqlite3_column_int64 (stmt, 0);
}

//  For writes that must change exactly one row: no row changed is
//  UMB_AUTH_NOT_FOUND.
static int
s_one_row (umb_store_t *store, int rc)
{
    return rc == 0 && umb_store_changes (store) != 1 ? UMB_AUTH_NOT_FOUND : rc;
}

//  Adds the rows a successful write changed to *changed (may be NULL).
static int
s_add_changes (umb_store_t *store, int rc, int64_t *changed)
{
    if (rc == 0 && changed)
        *changed += umb_store_changes (store);
    return rc;
}

//  ---------------------------------------------------------------- users

#define S_USER_SELECT \
    "SELECT id, username, email, password_hash, is_admin, disabled, created_at FROM users"

static void
s_user_row (sqlite3_stmt *stmt, void *dest)
{
    umb_auth_user_t *user = dest;
    memset (user, 0, sizeof *user);
    umb_store_column (stmt, 0, user->id, sizeof user->id);
    umb_store_column (stmt, 1, user->username, sizeof user->username);
    umb_store_column (stmt, 2, user->email, sizeof user->email);
    umb_store_column (stmt, 3, user->password_hash, sizeof user->password_hash);
    user->is_admin = sqlite3_column_int (stmt, 4) != 0;
    user->disabled = sqlite3_column_int (stmt, 5) != 0;
    user->created_at = sqlite3_column_int64 (stmt, 6);
}

int
umb_auth_store_user_by_id (umb_store_t *store, const char *id, umb_auth_user_t *user)
{
    return umb_store_get (umb_store_query (store, S_USER_SELECT " WHERE id = ?", "s", id),
                          s_user_row, user);
}

int
umb_auth_store_user_by_name (umb_store_t *store, const char *username, umb_auth_user_t *user)
{
    return umb_store_get (umb_store_query (store,
        S_USER_SELECT " WHERE username = ?", "s", username), s_user_row, user);
}

int
umb_auth_store_user_insert (umb_store_t *store, const umb_auth_user_t *user)
{
    return umb_store_run (store,
        "INSERT INTO users (id, username, email, password_hash, is_admin, disabled, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "ssssbbii",
        user->id, user->username, *user->email ? user->email : NULL, user->password_hash,
        user->is_admin, user->disabled, user->created_at, user->created_at);
}

int
umb_auth_store_user_set_email (umb_store_t *store, const char *id, const char *email, int64_t now)
{
    return umb_store_run (store, "UPDATE users SET email = ?, updated_at = ? WHERE id = ?", "sis",
                          email && *email ? email : NULL, now, id);
}

int
umb_auth_store_user_set_password (umb_store_t *store, const char *id, const char *hash, int64_t now)
{
    return umb_store_run (store, "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
                          "sis", hash, now, id);
}

int
umb_auth_store_user_disable (umb_store_t *store, const char *id, int64_t now)
{
    return umb_store_run (store, "UPDATE users SET disabled = 1, updated_at = ? WHERE id = ?",
                          "is", now, id);
}

int64_t
umb_auth_store_admin_count (umb_store_t *store)
{
    return umb_store_scalar (umb_store_query (store,
        "SELECT COUNT(*) FROM users WHERE is_admin = 1 AND disabled = 0", ""));
}

int64_t
umb_auth_store_members_count (umb_store_t *store, const char *workspace_id, bool invited)
{
    return umb_store_scalar (umb_store_query (store,
        "SELECT (SELECT COUNT(*) FROM memberships WHERE workspace_id = ?1)"
        " + (CASE WHEN ?2 THEN (SELECT COUNT(*) FROM invitations WHERE workspace_id = ?1"
        "                        AND state = 'pending') ELSE 0 END)", "sb", workspace_id, invited));
}

//  ---------------------------------------------------------------- failed logins

int
umb_auth_store_failure_add (umb_store_t *store, const char *username, int64_t now)
{
    return umb_store_run (store, "INSERT INTO login_failures (username, at) VALUES (?, ?)", "si",
                          username, now);
}

int
umb_auth_store_failures_clear (umb_store_t *store, const char *username)
{
    return umb_store_run (store, "DELETE FROM login_failures WHERE username = ?", "s", username);
}

int
umb_auth_store_failures_prune (umb_store_t *store, int64_t before)
{
    return umb_store_run (store, "DELETE FROM login_failures WHERE at < ?", "i", before);
}

int
umb_auth_store_lockout (umb_store_t *store, const char *username, int64_t since, int64_t max,
                        int64_t window, int64_t *until)
{
    assert (max >= 1 && until);
    *until = 0;
    int64_t oldest;
    int rc = umb_store_get (umb_store_query (store,
        "SELECT at FROM login_failures WHERE username = ? AND at > ?"
        " ORDER BY at DESC LIMIT 1 OFFSET ?", "sii", username, since, max - 1),
        s_int64_row, &oldest);
    if (rc == UMB_AUTH_NOT_FOUND)
        return 0;
    if (rc)
        return -1;
    *until = oldest + window;
    return 1;
}

//  ---------------------------------------------------------------- sessions

static void
s_session_row (sqlite3_stmt *stmt, void *dest)
{
    umb_auth_session_t *session = dest;
    memset (session, 0, sizeof *session);
    umb_store_column (stmt, 0, session->id, sizeof session->id);
    umb_store_column (stmt, 1, session->user_id, sizeof session->user_id);
    session->expires_at = sqlite3_column_int64 (stmt, 2);
    session->revoked = sqlite3_column_int (stmt, 3) != 0;
}

static void
s_refresh_row (sqlite3_stmt *stmt, void *dest)
{
    umb_auth_refresh_t *refresh = dest;
    memset (refresh, 0, sizeof *refresh);
    umb_store_column (stmt, 0, refresh->session_id, sizeof refresh->session_id);
    refresh->expires_at = sqlite3_column_int64 (stmt, 1);
    refresh->rotated = sqlite3_column_int (stmt, 2) != 0;
}

int
umb_auth_store_session_insert (umb_store_t *store, const char *id, const char *user_id,
                               int64_t now, int64_t expires_at)
{
    return umb_store_run (store,
        "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)", "ssii",
        id, user_id, now, expires_at);
}

int
umb_auth_store_session_get (umb_store_t *store, const char *id, umb_auth_session_t *session)
{
    return umb_store_get (umb_store_query (store,
        "SELECT id, user_id, expires_at, revoked_at IS NOT NULL FROM sessions WHERE id = ?", "s",
        id), s_session_row, session);
}

int
umb_auth_store_session_extend (umb_store_t *store, const char *id, int64_t expires_at)
{
    return umb_store_run (store, "UPDATE sessions SET expires_at = ? WHERE id = ?", "is",
                          expires_at, id);
}

int
umb_auth_store_session_revoke (umb_store_t *store, const char *id, int64_t now, const char *reason,
                               int64_t *revoked)
{
    return s_add_changes (store, umb_store_run (store,
        "UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL",
        "iss", now, reason, id), revoked);
}

int
umb_auth_store_sessions_revoke_user (umb_store_t *store, const char *user_id, const char *keep,
                                     int64_t now, const char *reason, int64_t *revoked)
{
    return s_add_changes (store, umb_store_run (store,
        "UPDATE sessions SET revoked_at = ?1, revoke_reason = ?2"
        " WHERE user_id = ?3 AND revoked_at IS NULL AND (?4 IS NULL OR id <> ?4)",
        "isss", now, reason, user_id, keep), revoked);
}

int
umb_auth_store_refresh_insert (umb_store_t *store, const char *hash, const char *session_id,
                               int64_t now, int64_t expires_at)
{
    return umb_store_run (store,
        "INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        "ssii", hash, session_id, now, expires_at);
}

int
umb_auth_store_refresh_get (umb_store_t *store, const char *hash, umb_auth_refresh_t *refresh)
{
    return umb_store_get (umb_store_query (store,
        "SELECT session_id, expires_at, rotated_at IS NOT NULL FROM refresh_tokens WHERE hash = ?",
        "s", hash), s_refresh_row, refresh);
}

int
umb_auth_store_refresh_rotate (umb_store_t *store, const char *hash, int64_t now)
{
    return s_one_row (store, umb_store_run (store,
        "UPDATE refresh_tokens SET rotated_at = ? WHERE hash = ? AND rotated_at IS NULL", "is",
        now, hash));
}

//  ---------------------------------------------------------------- workspaces

static void
s_workspace_row (sqlite3_stmt *stmt, void *dest)
{
    umb_auth_workspace_t *ws = dest;
    memset (ws, 0, sizeof *ws);
    umb_store_column (stmt, 0, ws->id, sizeof ws->id);
    umb_store_column (stmt, 1, ws->name, sizeof ws->name);
    umb_store_column (stmt, 2, ws->display_name, sizeof ws->display_name);
    ws->created_at = sqlite3_column_int64 (stmt, 3);
    if (sqlite3_column_count (stmt) > 4)
        ws->role = umb_auth_role_parse ((const char *) sqlite3_column_text (stmt, 4));
}

int
umb_auth_store_workspace_get (umb_store_t *store, const char *ref, umb_auth_workspace_t *ws)
{
    //  Names never hold '_' and ids always start "ws_": one lookup serves both
    return umb_store_get (umb_store_query (store,
        "SELECT id, name, display_name, created_at FROM workspaces WHERE id = ?1 OR name = ?1",
        "s", ref), s_workspace_row, ws);
}

int
umb_auth_store_workspace_insert (umb_store_t *store, const umb_auth_workspace_t *ws,
                                 const char *created_by)
{
    return umb_store_run (store,
        "INSERT INTO workspaces (id, name, display_name, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?)", "ssssi",
        ws->id, ws->name, ws->display_name, created_by, ws->created_at);
}

int
umb_auth_store_workspace_update (umb_store_t *store, const char *id, const char *name,
                                 const char *display_name)
{
    return umb_store_run (store, "UPDATE workspaces SET name = ?, display_name = ? WHERE id = ?",
                          "sss", name, display_name, id);
}

int
umb_auth_store_workspace_delete (umb_store_t *store, const char *id)
{
    return s_one_row (store, umb_store_run (store, "DELETE FROM workspaces WHERE id = ?", "s", id));
}

static void
s_workspace_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_auth_workspace_t ws;
    s_workspace_row (stmt, &ws);
    ((umb_auth_workspace_fn *) fn) (arg, &ws);
}

int
umb_auth_store_workspaces_of (umb_store_t *store, const char *user_id, umb_auth_workspace_fn *each,
                              void *arg)
{
    return umb_store_each (umb_store_query (store,
        "SELECT w.id, w.name, w.display_name, w.created_at, m.role"
        " FROM memberships m JOIN workspaces w ON w.id = m.workspace_id"
        " WHERE m.user_id = ? ORDER BY w.name", "s", user_id),
        s_workspace_each, (void *) each, arg);
}

//  ---------------------------------------------------------------- members

#define S_MEMBER_SELECT \
    "SELECT m.user_id, u.username, m.role, m.joined_at" \
    " FROM memberships m JOIN users u ON u.id = m.user_id"

static void
s_member_row (sqlite3_stmt *stmt, void *dest)
{
    umb_auth_member_t *member = dest;
    memset (member, 0, sizeof *member);
    umb_store_column (stmt, 0, member->user_id, sizeof member->user_id);
    umb_store_column (stmt, 1, member->username, sizeof member->username);
    member->role = umb_auth_role_parse ((const char *) sqlite3_column_text (stmt, 2));
    member->joined_at = sqlite3_column_int64 (stmt, 3);
}

int
umb_auth_store_member_get (umb_store_t *store, const char *workspace_id, const char *user_id,
                           umb_auth_member_t *member)
{
    return umb_store_get (umb_store_query (store,
        S_MEMBER_SELECT " WHERE m.workspace_id = ? AND m.user_id = ?", "ss", workspace_id, user_id),
        s_member_row, member);
}

int
umb_auth_store_member_insert (umb_store_t *store, const char *workspace_id, const char *user_id,
                              umb_role_t role, int64_t now)
{
    return umb_store_run (store,
        "INSERT INTO memberships (workspace_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)",
        "sssi", workspace_id, user_id, umb_auth_role_name (role), now);
}

int
umb_auth_store_member_set_role (umb_store_t *store, const char *workspace_id, const char *user_id,
                                umb_role_t role)
{
    return s_one_row (store, umb_store_run (store,
        "UPDATE memberships SET role = ? WHERE workspace_id = ? AND user_id = ?", "sss",
        umb_auth_role_name (role), workspace_id, user_id));
}

int
umb_auth_store_member_delete (umb_store_t *store, const char *workspace_id, const char *user_id)
{
    return s_one_row (store, umb_store_run (store,
        "DELETE FROM memberships WHERE workspace_id = ? AND user_id = ?", "ss",
        workspace_id, user_id));
}

int64_t
umb_auth_store_admin_members (umb_store_t *store, const char *workspace_id)
{
    return umb_store_scalar (umb_store_query (store,
        "SELECT COUNT(*) FROM memberships WHERE workspace_id = ? AND role = 'admin'", "s",
        workspace_id));
}

static void
s_member_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_auth_member_t member;
    s_member_row (stmt, &member);
    ((umb_auth_member_fn *) fn) (arg, &member);
}

int
umb_auth_store_members (umb_store_t *store, const char *workspace_id, umb_auth_member_fn *each,
                        void *arg)
{
    return umb_store_each (umb_store_query (store,
        S_MEMBER_SELECT " WHERE m.workspace_id = ? ORDER BY u.username", "s", workspace_id),
        s_member_each, (void *) each, arg);
}

//  ---------------------------------------------------------------- invitations

#define S_INVITATION_SELECT \
    "SELECT i.id, i.workspace_id, w.name, i.user_id, u.username, i.role, i.state, b.username," \
    " i.created_at FROM invitations i" \
    " JOIN workspaces w ON w.id = i.workspace_id" \
    " JOIN users u ON u.id = i.user_id" \
    " JOIN users b ON b.id = i.invited_by"

static void
s_invitation_row (sqlite3_stmt *stmt, void *dest)
{
    umb_auth_invitation_t *row = dest;
    memset (row, 0, sizeof *row);
    umb_store_column (stmt, 0, row->id, sizeof row->id);
    umb_store_column (stmt, 1, row->workspace_id, sizeof row->workspace_id);
    umb_store_column (stmt, 2, row->workspace_name, sizeof row->workspace_name);
    umb_store_column (stmt, 3, row->user_id, sizeof row->user_id);
    umb_store_column (stmt, 4, row->username, sizeof row->username);
    row->role = umb_auth_role_parse ((const char *) sqlite3_column_text (stmt, 5));
    umb_store_column (stmt, 6, row->state, sizeof row->state);
    umb_store_column (stmt, 7, row->invited_by, sizeof row->invited_by);
    row->created_at = sqlite3_column_int64 (stmt, 8);
}

int
umb_auth_store_invitation_insert (umb_store_t *store, const umb_auth_invitation_t *row,
                                  const char *inviter_id, int64_t now)
{
    return umb_store_run (store,
        "INSERT INTO invitations (id, workspace_id, user_id, role, state, invited_by, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "ssssssii",
        row->id, row->workspace_id, row->user_id, umb_auth_role_name (row->role), row->state,
        inviter_id, now, now);
}

int
umb_auth_store_invitation_get (umb_store_t *store, const char *id, umb_auth_invitation_t *row)
{
    return umb_store_get (umb_store_query (store, S_INVITATION_SELECT " WHERE i.id = ?", "s", id),
                          s_invitation_row, row);
}

int
umb_auth_store_invitation_move (umb_store_t *store, const char *id, const char *from,
                                const char *to, int64_t now)
{
    return s_one_row (store, umb_store_run (store,
        "UPDATE invitations SET state = ?, updated_at = ? WHERE id = ? AND state = ?", "siss",
        to, now, id, from));
}

int
umb_auth_store_invitation_pending (umb_store_t *store, const char *workspace_id,
                                   const char *user_id)
{
    int64_t count = umb_store_scalar (umb_store_query (store,
        "SELECT COUNT(*) FROM invitations WHERE workspace_id = ? AND user_id = ?"
        " AND state = 'pending'", "ss", workspace_id, user_id));
    return count < 0 ? -1 : count > 0;
}

static void
s_invitation_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_auth_invitation_t row;
    s_invitation_row (stmt, &row);
    ((umb_auth_invitation_fn *) fn) (arg, &row);
}

int
umb_auth_store_invitations (umb_store_t *store, const char *workspace_id, const char *user_id,
                            const char *state, umb_auth_invitation_fn *each, void *arg)
{
    assert ((workspace_id == NULL) != (user_id == NULL));
    return umb_store_each (umb_store_query (store, workspace_id
        ? S_INVITATION_SELECT " WHERE i.workspace_id = ?1 AND (?2 IS NULL OR i.state = ?2)"
          " ORDER BY i.created_at DESC, i.id"
        : S_INVITATION_SELECT " WHERE i.user_id = ?1 AND (?2 IS NULL OR i.state = ?2)"
          " ORDER BY i.created_at DESC, i.id", "ss", workspace_id ? workspace_id : user_id, state),
        s_invitation_each, (void *) each, arg);
}

//  ---------------------------------------------------------------- API keys

#define S_APIKEY_SELECT \
    "SELECT id, workspace_id, created_by, name, secret_hash, actions, created_at," \
    " COALESCE(expires_at, 0), revoked_at IS NOT NULL, COALESCE(last_used_at, 0) FROM api_keys"

static void
s_apikey_row (sqlite3_stmt *stmt, void *dest)
{
    umb_auth_apikey_t *key = dest;
    memset (key, 0, sizeof *key);
    umb_store_column (stmt, 0, key->id, sizeof key->id);
    umb_store_column (stmt, 1, key->workspace_id, sizeof key->workspace_id);
    umb_store_column (stmt, 2, key->created_by, sizeof key->created_by);
    umb_store_column (stmt, 3, key->name, sizeof key->name);
    umb_store_column (stmt, 4, key->secret_hash, sizeof key->secret_hash);
    umb_store_column (stmt, 5, key->actions, sizeof key->actions);
    key->created_at = sqlite3_column_int64 (stmt, 6);
    key->expires_at = sqlite3_column_int64 (stmt, 7);
    key->revoked = sqlite3_column_int (stmt, 8) != 0;
    key->last_used_at = sqlite3_column_int64 (stmt, 9);
}

int
umb_auth_store_apikey_insert (umb_store_t *store, const umb_auth_apikey_t *key)
{
    //  expires_at 0 (never) is stored as NULL
    return umb_store_run (store,
        "INSERT INTO api_keys (id, workspace_id, created_by, name, secret_hash, actions,"
        " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULLIF(?, 0))", "ssssssii",
        key->id, key->workspace_id, key->created_by, key->name, key->secret_hash, key->actions,
        key->created_at, key->expires_at);
}

int
umb_auth_store_apikey_get (umb_store_t *store, const char *id, umb_auth_apikey_t *key)
{
    return umb_store_get (umb_store_query (store, S_APIKEY_SELECT " WHERE id = ?", "s", id),
                          s_apikey_row, key);
}

static void
s_apikey_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_auth_apikey_t key;
    s_apikey_row (stmt, &key);
    ((umb_auth_apikey_fn *) fn) (arg, &key);
    sodium_memzero (key.secret_hash, sizeof key.secret_hash);
}

int
umb_auth_store_apikeys (umb_store_t *store, const char *workspace_id, umb_auth_apikey_fn *each,
                        void *arg)
{
    return umb_store_each (umb_store_query (store,
        S_APIKEY_SELECT " WHERE workspace_id = ? ORDER BY created_at, id", "s", workspace_id),
        s_apikey_each, (void *) each, arg);
}

int
umb_auth_store_apikey_revoke (umb_store_t *store, const char *id, const char *workspace_id,
                              int64_t now)
{
    return s_one_row (store, umb_store_run (store,
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?)"
        " WHERE id = ? AND workspace_id = ?", "iss", now, id, workspace_id));
}

int
umb_auth_store_apikey_touch (umb_store_t *store, const char *id, int64_t now)
{
    return umb_store_run (store, "UPDATE api_keys SET last_used_at = ? WHERE id = ?", "is",
                          now, id);
}

//  ---------------------------------------------------------------- selftest

static void
s_test_count_member (void *arg, const umb_auth_member_t *row)
{
    (*(int *) arg)++;
}

static void
s_test_count_invitation (void *arg, const umb_auth_invitation_t *row)
{
    (*(int *) arg)++;
}

void
umb_auth_store_test (bool verbose)
{
    if (verbose)
        printf (" * umb_auth_store: ");
    umb_store_t *store = umb_auth_store_open (":memory:", NULL);
    assert (store && umb_store_version (store) == 1);

    umb_auth_user_t alice = { .id = "usr_a", .username = "alice", .password_hash = "$h",
                              .created_at = 100 };
    umb_auth_user_t bob = { .id = "usr_b", .username = "bob", .email = "b@x",
                            .password_hash = "$h", .created_at = 100 };
    assert (umb_auth_store_user_insert (store, &alice) == 0);
    assert (umb_auth_store_user_insert (store, &bob) == 0);
    umb_auth_user_t twin = alice;
    snprintf (twin.id, sizeof twin.id, "usr_c");
    assert (umb_auth_store_user_insert (store, &twin) == UMB_STORE_CONSTRAINT);
    umb_auth_user_t user;
    assert (umb_auth_store_user_by_name (store, "bob", &user) == 0);
    assert (streq (user.id, "usr_b") && streq (user.email, "b@x") && !user.is_admin);
    assert (umb_auth_store_user_by_id (store, "usr_a", &user) == 0 && streq (user.email, ""));
    assert (umb_auth_store_user_by_id (store, "usr_z", &user) == UMB_AUTH_NOT_FOUND);
    assert (umb_auth_store_admin_count (store) == 0);

    //  Lockout: 3 failures allowed in a window of 60 s
    int64_t until;
    for (int64_t at = 1000; at < 1003; at++)
        assert (umb_auth_store_failure_add (store, "alice", at) == 0);
    assert (umb_auth_store_lockout (store, "alice", 1003 - 60, 3, 60, &until) == 1);
    assert (until == 1060);
    assert (umb_auth_store_lockout (store, "alice", 1003 - 60, 4, 60, &until) == 0);
    assert (umb_auth_store_lockout (store, "alice", 1061 - 60, 3, 60, &until) == 0);
    assert (umb_auth_store_lockout (store, "bob", 0, 1, 60, &until) == 0);
    assert (umb_auth_store_failures_clear (store, "alice") == 0);
    assert (umb_auth_store_lockout (store, "alice", 0, 1, 60, &until) == 0);

    //  Sessions and refresh-token rotation
    int64_t revoked = 0;
    assert (umb_auth_store_session_insert (store, "ses_1", "usr_a", 100, 200) == 0);
    assert (umb_auth_store_session_insert (store, "ses_2", "usr_a", 100, 200) == 0);
    assert (umb_auth_store_refresh_insert (store, "h1", "ses_1", 100, 200) == 0);
    umb_auth_refresh_t refresh;
    assert (umb_auth_store_refresh_get (store, "h1", &refresh) == 0 && !refresh.rotated);
    assert (umb_auth_store_refresh_rotate (store, "h1", 150) == 0);
    assert (umb_auth_store_refresh_rotate (store, "h1", 150) == UMB_AUTH_NOT_FOUND);
    assert (umb_auth_store_refresh_get (store, "h1", &refresh) == 0 && refresh.rotated);
    assert (umb_auth_store_sessions_revoke_user (store, "usr_a", "ses_2", 160, "test", &revoked) == 0);
    assert (revoked == 1);
    umb_auth_session_t session;
    assert (umb_auth_store_session_get (store, "ses_1", &session) == 0 && session.revoked);
    assert (umb_auth_store_session_get (store, "ses_2", &session) == 0 && !session.revoked);
    assert (umb_auth_store_session_revoke (store, "ses_1", 170, "again", &revoked) == 0);
    assert (revoked == 1);

    //  Workspaces, members, invitations, keys; deleting cascades
    umb_auth_workspace_t ws = { .id = "ws_1", .name = "team", .display_name = "Team",
                                .created_at = 100 };
    assert (umb_auth_store_workspace_insert (store, &ws, "usr_a") == 0);
    assert (umb_auth_store_workspace_insert (store, &ws, "usr_a") == UMB_STORE_CONSTRAINT);
    umb_auth_workspace_t found;
    assert (umb_auth_store_workspace_get (store, "team", &found) == 0 && streq (found.id, "ws_1"));
    assert (umb_auth_store_workspace_get (store, "ws_1", &found) == 0 && streq (found.name, "team"));
    assert (umb_auth_store_member_insert (store, "ws_1", "usr_a", UMB_ROLE_ADMIN, 100) == 0);
    assert (umb_auth_store_member_insert (store, "ws_1", "usr_a", UMB_ROLE_ADMIN, 100)
            == UMB_STORE_CONSTRAINT);
    assert (umb_auth_store_member_insert (store, "ws_1", "usr_nobody", UMB_ROLE_ADMIN, 100)
            == UMB_STORE_CONSTRAINT);
    assert (umb_auth_store_admin_members (store, "ws_1") == 1);
    umb_auth_invitation_t invitation = { .id = "inv_1", .workspace_id = "ws_1", .user_id = "usr_b",
                                         .role = UMB_ROLE_VIEWER, .state = "pending" };
    assert (umb_auth_store_invitation_insert (store, &invitation, "usr_a", 110) == 0);
    snprintf (invitation.id, sizeof invitation.id, "inv_2");
    assert (umb_auth_store_invitation_insert (store, &invitation, "usr_a", 110)
            == UMB_STORE_CONSTRAINT);       //  one pending invitation per user and workspace
    assert (umb_auth_store_invitation_pending (store, "ws_1", "usr_b") == 1);
    assert (umb_auth_store_invitation_get (store, "inv_1", &invitation) == 0);
    assert (streq (invitation.username, "bob") && streq (invitation.invited_by, "alice"));
    assert (streq (invitation.workspace_name, "team"));
    int count = 0;
    assert (umb_auth_store_invitations (store, NULL, "usr_b", "pending", s_test_count_invitation,
                                        &count) == 0 && count == 1);
    count = 0;
    assert (umb_auth_store_invitations (store, "ws_1", NULL, "accepted", s_test_count_invitation,
                                        &count) == 0 && count == 0);
    assert (umb_auth_store_invitation_move (store, "inv_1", "pending", "accepted", 120) == 0);
    assert (umb_auth_store_invitation_move (store, "inv_1", "pending", "rejected", 120)
            == UMB_AUTH_NOT_FOUND);
    assert (umb_auth_store_member_insert (store, "ws_1", "usr_b", UMB_ROLE_VIEWER, 120) == 0);
    count = 0;
    assert (umb_auth_store_members (store, "ws_1", s_test_count_member, &count) == 0 && count == 2);
    umb_auth_apikey_t key = { .id = "key_1", .workspace_id = "ws_1", .created_by = "usr_a",
                              .name = "ci", .secret_hash = "00", .actions = "workspace.read",
                              .created_at = 130 };
    assert (umb_auth_store_apikey_insert (store, &key) == 0);
    assert (umb_auth_store_apikey_revoke (store, "key_1", "ws_other", 140) == UMB_AUTH_NOT_FOUND);
    assert (umb_auth_store_apikey_touch (store, "key_1", 140) == 0);
    assert (umb_auth_store_apikey_get (store, "key_1", &key) == 0);
    assert (!key.revoked && key.last_used_at == 140 && key.expires_at == 0);

    assert (umb_auth_store_workspace_delete (store, "ws_1") == 0);
    assert (umb_auth_store_member_get (store, "ws_1", "usr_a", &(umb_auth_member_t) { 0 })
            == UMB_AUTH_NOT_FOUND);
    assert (umb_auth_store_invitation_get (store, "inv_1", &invitation) == UMB_AUTH_NOT_FOUND);
    assert (umb_auth_store_apikey_get (store, "key_1", &key) == UMB_AUTH_NOT_FOUND);
    assert (umb_auth_store_workspace_delete (store, "ws_1") == UMB_AUTH_NOT_FOUND);
    umb_store_destroy (&store);
    if (verbose)
        printf ("OK\n");
}
