//  umb_auth_store - the auth service's SQL: schema migrations and one function
//  per query over a umb_store_t
//
//  Functions take the store (borrowed) and never open transactions: the
//  service wraps every write in umb_store_begin/commit, so several of these
//  commit or roll back together. Lookups return 0 (found, row filled),
//  UMB_AUTH_NOT_FOUND, or -1 on a database error (logged by umb_store).
//  Writes return 0, UMB_STORE_CONSTRAINT when a UNIQUE/FOREIGN KEY/CHECK
//  constraint refused them, or -1. Times are seconds since the epoch.
#ifndef UMB_AUTH_STORE_H_INCLUDED
#define UMB_AUTH_STORE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <sodium.h>
#include "umb_store.h"
#include "umb_auth_rules.h"

#define UMB_AUTH_NOT_FOUND 1
#define UMB_AUTH_ID_SIZE   64          //  "usr_" + 16 hex and the like; as umb_principal_t

typedef struct {
    char    id [UMB_AUTH_ID_SIZE];
    char    username [UMB_AUTH_USERNAME_MAX + 1];
    char    email [UMB_AUTH_EMAIL_MAX + 1];            //  "" if none
    char    password_hash [crypto_pwhash_STRBYTES];
    bool    is_admin;
    bool    disabled;
    int64_t created_at;
} umb_auth_user_t;

typedef struct {
    char    id [UMB_AUTH_ID_SIZE];
    char    user_id [UMB_AUTH_ID_SIZE];
    int64_t expires_at;
    bool    revoked;
} umb_auth_session_t;

typedef struct {
    char    session_id [UMB_AUTH_ID_SIZE];
    int64_t expires_at;
    bool    rotated;                   //  already exchanged for a newer token
} umb_auth_refresh_t;

typedef struct {
    char       id [UMB_AUTH_ID_SIZE];
    char       name [UMB_AUTH_WORKSPACE_MAX + 1];
    char       display_name [UMB_AUTH_DISPLAY_NAME_MAX + 1];
    int64_t    created_at;
    umb_role_t role;                   //  of the user it was listed for
} umb_auth_workspace_t;

typedef struct {
    char       user_id [UMB_AUTH_ID_SIZE];
    char       username [UMB_AUTH_USERNAME_MAX + 1];
    umb_role_t role;
    int64_t    joined_at;
} umb_auth_member_t;

typedef struct {
    char       id [UMB_AUTH_ID_SIZE];
    char       workspace_id [UMB_AUTH_ID_SIZE];
    char       workspace_name [UMB_AUTH_WORKSPACE_MAX + 1];
    char       user_id [UMB_AUTH_ID_SIZE];
    char       username [UMB_AUTH_USERNAME_MAX + 1];
    umb_role_t role;
    char       state [16];             //  pending | accepted | rejected | cancelled
    char       invited_by [UMB_AUTH_USERNAME_MAX + 1];   //  the inviter's username
    int64_t    created_at;
} umb_auth_invitation_t;

typedef struct {
    char    id [UMB_AUTH_ID_SIZE];
    char    workspace_id [UMB_AUTH_ID_SIZE];
    char    created_by [UMB_AUTH_ID_SIZE];
    char    name [UMB_AUTH_KEY_NAME_MAX + 1];
    char    secret_hash [crypto_hash_sha256_BYTES * 2 + 1];  //  hex
    char    actions [512];             //  comma-separated, as umb_principal_t.key_actions
    int64_t created_at;
    int64_t expires_at;                //  0: never
    int64_t last_used_at;              //  0: never
    bool    revoked;
} umb_auth_apikey_t;

typedef void (umb_auth_workspace_fn) (void *arg, const umb_auth_workspace_t *row);
typedef void (umb_auth_member_fn) (void *arg, const umb_auth_member_t *row);
typedef void (umb_auth_invitation_fn) (void *arg, const umb_auth_invitation_t *row);
typedef void (umb_auth_apikey_fn) (void *arg, const umb_auth_apikey_t *row);

//  Opens the database at path with the auth schema. NULL on failure (logged).
umb_store_t *umb_auth_store_open (const char *path, umb_log_t *log);

//  ---------------------------------------------------------------- users
int umb_auth_store_user_by_id (umb_store_t *store, const char *id, umb_auth_user_t *user);
int umb_auth_store_user_by_name (umb_store_t *store, const char *username, umb_auth_user_t *user);
int umb_auth_store_user_insert (umb_store_t *store, const umb_auth_user_t *user);
//  email "" clears it.
int umb_auth_store_user_set_email (umb_store_t *store, const char *id, const char *email,
                                   int64_t now);
int umb_auth_store_user_set_password (umb_store_t *store, const char *id, const char *hash,
                                      int64_t now);
int umb_auth_store_user_disable (umb_store_t *store, const char *id, int64_t now);
//  Enabled platform administrators; -1 on error.
int64_t umb_auth_store_admin_count (umb_store_t *store);
//  The workspace's members, and its pending invitations with invited; -1 on error
int64_t umb_auth_store_members_count (umb_store_t *store, const char *workspace_id, bool invited);

//  ---------------------------------------------------------------- failed logins
int umb_auth_store_failure_add (umb_store_t *store, const char *username, int64_t now);
int umb_auth_store_failures_clear (umb_store_t *store, const char *username);
//  Forgets failures older than before, for every username.
int umb_auth_store_failures_prune (umb_store_t *store, int64_t before);
//  If username has at least max failures after since, sets *until to when the
//  oldest of its last max failures leaves the window (its time + window) and
//  returns 1; 0 if not locked; -1 on error.
int umb_auth_store_lockout (umb_store_t *store, const char *username, int64_t since,
                            int64_t max, int64_t window, int64_t *until);

//  ---------------------------------------------------------------- sessions
int umb_auth_store_session_insert (umb_store_t *store, const char *id, const char *user_id,
                                   int64_t now, int64_t expires_at);
int umb_auth_store_session_get (umb_store_t *store, const char *id, umb_auth_session_t *session);
int umb_auth_store_session_extend (umb_store_t *store, const char *id, int64_t expires_at);
//  Revokes one session; *revoked (may be NULL) counts sessions newly revoked.
int umb_auth_store_session_revoke (umb_store_t *store, const char *id, int64_t now,
                                   const char *reason, int64_t *revoked);
//  Revokes every live session of user_id except keep (NULL: all).
int umb_auth_store_sessions_revoke_user (umb_store_t *store, const char *user_id, const char *keep,
                                         int64_t now, const char *reason, int64_t *revoked);
//  hash: hex SHA-256 of the refresh token.
int umb_auth_store_refresh_insert (umb_store_t *store, const char *hash, const char *session_id,
                                   int64_t now, int64_t expires_at);
int umb_auth_store_refresh_get (umb_store_t *store, const char *hash, umb_auth_refresh_t *refresh);
//  Marks a token exchanged; UMB_AUTH_NOT_FOUND if it already was.
int umb_auth_store_refresh_rotate (umb_store_t *store, const char *hash, int64_t now);

//  ---------------------------------------------------------------- workspaces
//  ref is an id ("ws_...") or a name. role is left UMB_ROLE_NONE.
int umb_auth_store_workspace_get (umb_store_t *store, const char *ref, umb_auth_workspace_t *ws);
int umb_auth_store_workspace_insert (umb_store_t *store, const umb_auth_workspace_t *ws,
                                     const char *created_by);
int umb_auth_store_workspace_update (umb_store_t *store, const char *id, const char *name,
                                     const char *display_name);
int umb_auth_store_workspace_delete (umb_store_t *store, const char *id);
//  The workspaces user_id belongs to, by name, with its role.
int umb_auth_store_workspaces_of (umb_store_t *store, const char *user_id,
                                  umb_auth_workspace_fn *each, void *arg);

//  ---------------------------------------------------------------- members
int umb_auth_store_member_get (umb_store_t *store, const char *workspace_id, const char *user_id,
                               umb_auth_member_t *member);
int umb_auth_store_member_insert (umb_store_t *store, const char *workspace_id,
                                  const char *user_id, umb_role_t role, int64_t now);
int umb_auth_store_member_set_role (umb_store_t *store, const char *workspace_id,
                                    const char *user_id, umb_role_t role);
int umb_auth_store_member_delete (umb_store_t *store, const char *workspace_id,
                                  const char *user_id);
//  Admins of the workspace; -1 on error.
int64_t umb_auth_store_admin_members (umb_store_t *store, const char *workspace_id);
int umb_auth_store_members (umb_store_t *store, const char *workspace_id,
                            umb_auth_member_fn *each, void *arg);

//  ---------------------------------------------------------------- invitations
//  The row's workspace_name, username and invited_by are ignored;
//  inviter_id is stored instead.
int umb_auth_store_invitation_insert (umb_store_t *store, const umb_auth_invitation_t *row,
                                      const char *inviter_id, int64_t now);
int umb_auth_store_invitation_get (umb_store_t *store, const char *id,
                                   umb_auth_invitation_t *row);
//  Moves an invitation from state from to state to; UMB_AUTH_NOT_FOUND if it
//  was not in state from (any more).
int umb_auth_store_invitation_move (umb_store_t *store, const char *id, const char *from,
                                    const char *to, int64_t now);
//  1 if a pending invitation of user_id to workspace_id exists, 0 if not, -1.
int umb_auth_store_invitation_pending (umb_store_t *store, const char *workspace_id,
                                       const char *user_id);
//  Invitations of a workspace (workspace_id) or of a user (user_id); exactly
//  one of the two is set. state NULL lists every state. Newest first.
int umb_auth_store_invitations (umb_store_t *store, const char *workspace_id, const char *user_id,
                                const char *state, umb_auth_invitation_fn *each, void *arg);

//  ---------------------------------------------------------------- API keys
int umb_auth_store_apikey_insert (umb_store_t *store, const umb_auth_apikey_t *key);
int umb_auth_store_apikey_get (umb_store_t *store, const char *id, umb_auth_apikey_t *key);
int umb_auth_store_apikeys (umb_store_t *store, const char *workspace_id,
                            umb_auth_apikey_fn *each, void *arg);
//  UMB_AUTH_NOT_FOUND if no key id lives in workspace_id.
int umb_auth_store_apikey_revoke (umb_store_t *store, const char *id, const char *workspace_id,
                                  int64_t now);
int umb_auth_store_apikey_touch (umb_store_t *store, const char *id, int64_t now);

void umb_auth_store_test (bool verbose);

#endif
