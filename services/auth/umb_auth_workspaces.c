//  umb_auth_workspaces - the auth service's workspaces, members, invitations and API keys
#include <assert.h>
#include <string.h>
#include "umb_auth_private.h"

#define S_KEY_TTL_MIN 60
#define S_KEY_TTL_MAX 315360000         //  ten years

//  ---------------------------------------------------------------- list writers

typedef struct {
    umb_w_t               *w;
    const umb_principal_t *principal;
} s_listing_t;

static void
s_each_workspace (void *arg, const umb_auth_workspace_t *row)
{
    s_listing_t *listing = arg;
    //  An API key sees only its own workspace
    if (!listing->principal->is_api_key || streq (row->id, listing->principal->key_workspace))
        umb_auth_write_workspace (listing->w, row);
}

static void
s_each_member (void *arg, const umb_auth_member_t *row)
{
    umb_auth_write_member ((umb_w_t *) arg, row);
}

static void
s_each_invitation (void *arg, const umb_auth_invitation_t *row)
{
    umb_auth_write_invitation ((umb_w_t *) arg, row);
}

static void
s_each_apikey (void *arg, const umb_auth_apikey_t *row)
{
    umb_auth_write_apikey ((umb_w_t *) arg, row, NULL);
}

//  Opens {items: [...]} on the request's writer and returns the writer.
static umb_w_t *
s_items_begin (umb_req_t *req)
{
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_key (w, "items");
    umb_w_array_begin (w);
    return w;
}

static int
s_items_end (umb_auth_t *self, umb_req_t *req, int rc)
{
    if (rc)
        return umb_auth_store_error (self, req);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_array_end (w);
    umb_w_map_end (w);
    return 200;
}

static int
s_done_true (umb_req_t *req, const char *key)
{
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_bool (w, key, true);
    umb_w_map_end (w);
    return 200;
}

//  ---------------------------------------------------------------- workspaces

int
umb_auth_workspaces_create (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const umb_principal_t *principal = umb_req_principal (req);
    const char *name = umb_msg_str (body, "name", UMB_AUTH_READ_NAME, true);
    const char *display_name = umb_msg_str (body, "display_name", UMB_AUTH_READ_TEXT, false);
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    int status = umb_auth_user_token_only (req);
    if (status)
        return status;
    char why [160];
    if (!display_name)
        display_name = name;
    if (!umb_auth_workspace_name_valid (name, why, sizeof why)
    ||  !umb_auth_label_valid ("display_name", display_name, UMB_AUTH_DISPLAY_NAME_MAX, why,
                               sizeof why))
        return umb_req_fail (req, 422, NULL, "%s", why);

    umb_auth_workspace_t ws = { .created_at = umb_auth_now (), .role = UMB_ROLE_ADMIN };
    umb_auth_new_id ("ws_", ws.id, sizeof ws.id);
    snprintf (ws.name, sizeof ws.name, "%s", name);
    snprintf (ws.display_name, sizeof ws.display_name, "%s", display_name);
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    int rc = umb_auth_store_workspace_insert (self->store, &ws, principal->subject);
    if (rc == UMB_STORE_CONSTRAINT) {
        umb_store_rollback (self->store);
        return umb_req_fail (req, 409, "name_taken", "workspace name '%s' is taken", name);
    }
    //  Its creator is its first admin
    if (rc == 0)
        rc = umb_auth_store_member_insert (self->store, ws.id, principal->subject,
                                           UMB_ROLE_ADMIN, ws.created_at);
    if ((status = umb_auth_commit (self, req, rc)))
        return status;
    umb_log_info (self->log, "workspace '%s' (%s) created by '%s'", ws.name, ws.id,
                  principal->username);
    umb_auth_write_workspace (umb_req_body_writer (req), &ws);
    return 201;
}

int
umb_auth_workspaces_list (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    s_listing_t listing = { s_items_begin (req), umb_req_principal (req) };
    int rc = umb_auth_store_workspaces_of (self->store, listing.principal->subject,
                                           s_each_workspace, &listing);
    return s_items_end (self, req, rc);
}

int
umb_auth_workspaces_get (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_auth_workspace_t ws;
    int status = umb_auth_request_workspace (self, req, &ws);
    if (status)
        return status;
    umb_auth_write_workspace (umb_req_body_writer (req), &ws);
    return 200;
}

//  For services acting for a platform administrator (billing): a workspace
//  by id or name, whoever is a member
int
umb_auth_workspaces_lookup (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    const char *workspace = umb_msg_str (umb_req_body (req), "workspace", UMB_AUTH_READ_NAME, true);
    if (umb_msg_failed (umb_req_body (req)))
        return umb_auth_bad_request (req);
    umb_auth_workspace_t ws;
    int rc = umb_auth_store_workspace_get (self->store, workspace, &ws);
    if (rc == UMB_AUTH_NOT_FOUND)
        return umb_req_fail (req, 404, NULL, "no workspace '%.64s'", workspace);
    if (rc)
        return umb_auth_store_error (self, req);
    ws.role = UMB_ROLE_NONE;
    umb_auth_write_workspace (umb_req_body_writer (req), &ws);
    return 200;
}

int
umb_auth_workspaces_rename (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *name = umb_msg_str (body, "name", UMB_AUTH_READ_NAME, false);
    const char *display_name = umb_msg_str (body, "display_name", UMB_AUTH_READ_TEXT, false);
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    char why [160];
    if (!name && !display_name)
        return umb_req_fail (req, 422, NULL, "nothing to change: give name or display_name");
    if ((name && !umb_auth_workspace_name_valid (name, why, sizeof why))
    ||  (display_name && !umb_auth_label_valid ("display_name", display_name,
                                                UMB_AUTH_DISPLAY_NAME_MAX, why, sizeof why)))
        return umb_req_fail (req, 422, NULL, "%s", why);
    umb_auth_workspace_t ws;
    int status = umb_auth_request_workspace (self, req, &ws);
    if (status)
        return status;
    if (name)
        snprintf (ws.name, sizeof ws.name, "%s", name);
    if (display_name)
        snprintf (ws.display_name, sizeof ws.display_name, "%s", display_name);
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    int rc = umb_auth_store_workspace_update (self->store, ws.id, ws.name, ws.display_name);
    if (rc == UMB_STORE_CONSTRAINT) {
        umb_store_rollback (self->store);
        return umb_req_fail (req, 409, "name_taken", "workspace name '%s' is taken", ws.name);
    }
    if ((status = umb_auth_commit (self, req, rc)))
        return status;
    umb_auth_write_workspace (umb_req_body_writer (req), &ws);
    return 200;
}

int
umb_auth_workspaces_delete (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    const char *id = umb_req_workspace (req);
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    //  Memberships, invitations and keys go with it (ON DELETE CASCADE)
    int rc = umb_auth_store_workspace_delete (self->store, id);
    if (rc == UMB_AUTH_NOT_FOUND) {
        umb_store_rollback (self->store);
        return umb_req_fail (req, 404, NULL, UMB_AUTH_NO_WORKSPACE);
    }
    int status = umb_auth_commit (self, req, rc);
    if (status)
        return status;
    umb_log_info (self->log, "workspace %s deleted by '%s'", id, umb_req_principal (req)->username);
    return s_done_true (req, "deleted");
}

//  ---------------------------------------------------------------- members

int
umb_auth_members_list (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_w_t *w = s_items_begin (req);
    int rc = umb_auth_store_members (self->store, umb_req_workspace (req), s_each_member, w);
    return s_items_end (self, req, rc);
}

//  The member named by ref in workspace ws: 0, or 404/500 answered.
static int
s_member_find (umb_auth_t *self, umb_req_t *req, const umb_auth_workspace_t *ws, const char *ref,
               umb_auth_member_t *member)
{
    umb_auth_user_t user;
    int status = umb_auth_user_find (self, req, ref, &user);
    sodium_memzero (user.password_hash, sizeof user.password_hash);
    if (status)
        return status;
    int rc = umb_auth_store_member_get (self->store, ws->id, user.id, member);
    if (rc == UMB_AUTH_NOT_FOUND)
        return umb_req_fail (req, 404, NULL, "'%s' is not a member of '%s'", user.username,
                             ws->name);
    if (rc)
        return umb_auth_store_error (self, req);
    return 0;
}

//  409 if taking the admin role from member would leave ws without one; 0; 500.
static int
s_last_admin (umb_auth_t *self, umb_req_t *req, const umb_auth_workspace_t *ws,
              const umb_auth_member_t *member, const char *what)
{
    if (member->role != UMB_ROLE_ADMIN)
        return 0;
    int64_t admins = umb_auth_store_admin_members (self->store, ws->id);
    if (admins < 0)
        return umb_auth_store_error (self, req);
    if (admins <= 1)
        return umb_req_fail (req, 409, "last_admin", "'%s' is the last admin of '%s' and cannot be %s",
                             member->username, ws->name, what);
    return 0;
}

int
umb_auth_members_update (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *ref = umb_msg_str (body, "user", UMB_AUTH_READ_REF, true);
    const char *role_name = umb_msg_str (body, "role", UMB_AUTH_READ_NAME, true);
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    umb_role_t role = umb_auth_role_parse (role_name);
    if (role == UMB_ROLE_NONE)
        return umb_req_fail (req, 422, NULL, "role: expected viewer, member or admin");
    umb_auth_workspace_t ws;
    umb_auth_member_t member;
    int status = umb_auth_request_workspace (self, req, &ws);
    if (status == 0)
        status = s_member_find (self, req, &ws, ref, &member);
    if (status)
        return status;
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    if (role != UMB_ROLE_ADMIN && (status = s_last_admin (self, req, &ws, &member, "demoted"))) {
        umb_store_rollback (self->store);
        return status;
    }
    int rc = umb_auth_store_member_set_role (self->store, ws.id, member.user_id, role);
    if ((status = umb_auth_commit (self, req, rc)))
        return status;
    member.role = role;
    umb_auth_write_member (umb_req_body_writer (req), &member);
    return 200;
}

int
umb_auth_members_remove (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const umb_principal_t *principal = umb_req_principal (req);
    const char *workspace = umb_msg_str (body, "workspace", UMB_AUTH_READ_REF, true);
    const char *ref = umb_msg_str (body, "user", UMB_AUTH_READ_REF, true);
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    umb_auth_user_t user;
    int status = umb_auth_user_find (self, req, ref, &user);
    sodium_memzero (user.password_hash, sizeof user.password_hash);
    if (status)
        return status;
    //  Any member may leave; removing others is managing members
    bool leaving = streq (user.id, principal->subject) && !principal->is_api_key;
    umb_auth_workspace_t ws;
    umb_role_t role;
    char reason [256];
    status = umb_auth_decide (self, principal, leaving ? "workspace.read" : "members.manage",
                              workspace, &ws, &role, reason, sizeof reason);
    if (status)
        return umb_req_fail (req, status, NULL, "%s", reason);
    umb_auth_member_t member;
    int rc = umb_auth_store_member_get (self->store, ws.id, user.id, &member);
    if (rc == UMB_AUTH_NOT_FOUND)
        return umb_req_fail (req, 404, NULL, "'%s' is not a member of '%s'", user.username, ws.name);
    if (rc)
        return umb_auth_store_error (self, req);
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    if ((status = s_last_admin (self, req, &ws, &member, "removed"))) {
        umb_store_rollback (self->store);
        return status;
    }
    rc = umb_auth_store_member_delete (self->store, ws.id, user.id);
    if ((status = umb_auth_commit (self, req, rc)))
        return status;
    umb_log_info (self->log, "'%s' removed from '%s' by '%s'", user.username, ws.name,
                  principal->username);
    return s_done_true (req, "removed");
}

//  ---------------------------------------------------------------- invitations

//  The invitation lifecycle: every move allowed, and nothing else.
static const struct {
    const char *state;
    const char *event;
    const char *next;
} s_invitation_moves [] = {
    { "pending", "accept", "accepted" },
    { "pending", "reject", "rejected" },
    { "pending", "cancel", "cancelled" },
};

static const char *
s_invitation_next (const char *state, const char *event)
{
    for (size_t index = 0; index < sizeof s_invitation_moves / sizeof s_invitation_moves [0]; index++)
        if (streq (s_invitation_moves [index].state, state)
        &&  streq (s_invitation_moves [index].event, event))
            return s_invitation_moves [index].next;
    return NULL;
}

static bool
s_state_valid (const char *state)
{
    return streq (state, "pending") || streq (state, "accepted") || streq (state, "rejected")
        || streq (state, "cancelled");
}

static int
s_invitations_create (umb_auth_t *self, umb_req_t *req, const umb_billing_verdict_t *verdict)
{
    umb_msg_t *body = umb_req_body (req);
    const umb_principal_t *principal = umb_req_principal (req);
    const char *username = umb_msg_str (body, "username", UMB_AUTH_READ_NAME, true);
    const char *role_name = umb_msg_str (body, "role", UMB_AUTH_READ_NAME, true);
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    umb_role_t role = umb_auth_role_parse (role_name);
    if (role == UMB_ROLE_NONE)
        return umb_req_fail (req, 422, NULL, "role: expected viewer, member or admin");
    umb_auth_workspace_t ws;
    int status = umb_auth_request_workspace (self, req, &ws);
    if (status)
        return status;
    umb_auth_user_t user;
    int rc = umb_auth_store_user_by_name (self->store, username, &user);
    sodium_memzero (user.password_hash, sizeof user.password_hash);
    if (rc == UMB_AUTH_NOT_FOUND)
        return umb_req_fail (req, 404, NULL, "no user '%.64s'", username);
    if (rc)
        return umb_auth_store_error (self, req);
    umb_auth_member_t member;
    rc = umb_auth_store_member_get (self->store, ws.id, user.id, &member);
    if (rc == 0)
        return umb_req_fail (req, 409, "already_member", "'%s' is already a member of '%s'",
                             user.username, ws.name);
    if (rc != UMB_AUTH_NOT_FOUND)
        return umb_auth_store_error (self, req);
    //  A pending invitation counts as a member: each may become one
    status = umb_auth_member_quota (self, req, ws.id,
                                    umb_auth_store_members_count (self->store, ws.id, true),
                                    verdict, s_invitations_create);
    if (status)
        return status == UMB_AUTH_ASKED ? UMB_DEFERRED : status;

    umb_auth_invitation_t row = { .role = role, .state = "pending" };
    umb_auth_new_id ("inv_", row.id, sizeof row.id);
    snprintf (row.workspace_id, sizeof row.workspace_id, "%s", ws.id);
    snprintf (row.user_id, sizeof row.user_id, "%s", user.id);
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    //  One pending invitation per user and workspace: a unique index says so
    rc = umb_auth_store_invitation_insert (self->store, &row, principal->subject, umb_auth_now ());
    if (rc == UMB_STORE_CONSTRAINT) {
        umb_store_rollback (self->store);
        return umb_req_fail (req, 409, "already_invited",
                             "'%s' already has a pending invitation to '%s'", user.username, ws.name);
    }
    if ((status = umb_auth_commit (self, req, rc)))
        return status;
    if (umb_auth_store_invitation_get (self->store, row.id, &row))
        return umb_auth_store_error (self, req);
    umb_auth_write_invitation (umb_req_body_writer (req), &row);
    return 201;
}

//  Reads the optional "state" filter: 0, or 400/422 answered.
static int
s_state_filter (umb_req_t *req, const char **state)
{
    umb_msg_t *body = umb_req_body (req);
    *state = umb_msg_str (body, "state", UMB_AUTH_READ_NAME, false);
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    if (*state && !s_state_valid (*state))
        return umb_req_fail (req, 422, NULL,
                             "state: expected pending, accepted, rejected or cancelled");
    return 0;
}

int
umb_auth_invitations_list (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    const char *filter;
    int status = s_state_filter (req, &filter);
    if (status)
        return status;
    umb_w_t *w = s_items_begin (req);
    int rc = umb_auth_store_invitations (self->store, umb_req_workspace (req), NULL, filter,
                                         s_each_invitation, w);
    return s_items_end (self, req, rc);
}

int
umb_auth_invitations_mine (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    const char *filter;
    int status = s_state_filter (req, &filter);
    if (status == 0)
        status = umb_auth_user_token_only (req);
    if (status)
        return status;
    umb_w_t *w = s_items_begin (req);
    int rc = umb_auth_store_invitations (self->store, NULL, umb_req_principal (req)->subject,
                                         filter, s_each_invitation, w);
    return s_items_end (self, req, rc);
}

//  Reads the invitation a request names and checks who may move it with
//  event: the invitee (accept, reject) or a workspace admin (cancel). Anyone
//  else is told it does not exist. 0, or an answered status.
static int
s_invitation_for (umb_auth_t *self, umb_req_t *req, const char *event, umb_auth_invitation_t *row)
{
    umb_msg_t *body = umb_req_body (req);
    const umb_principal_t *principal = umb_req_principal (req);
    const char *id = umb_msg_str (body, "invitation", UMB_AUTH_READ_REF, true);
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    bool by_invitee = !streq (event, "cancel");
    if (by_invitee) {
        int status = umb_auth_user_token_only (req);
        if (status)
            return status;
    }
    int rc = umb_auth_store_invitation_get (self->store, id, row);
    if (rc && rc != UMB_AUTH_NOT_FOUND)
        return umb_auth_store_error (self, req);
    if (rc == 0 && by_invitee && !streq (row->user_id, principal->subject))
        rc = UMB_AUTH_NOT_FOUND;
    if (rc == 0 && !by_invitee) {
        umb_auth_workspace_t ws;
        umb_role_t role;
        char reason [256];
        int status = umb_auth_decide (self, principal, "members.manage", row->workspace_id, &ws,
                                      &role, reason, sizeof reason);
        if (status == 404)
            rc = UMB_AUTH_NOT_FOUND;
        else
        if (status)
            return umb_req_fail (req, status, NULL, "%s", reason);
    }
    if (rc == UMB_AUTH_NOT_FOUND)
        return umb_req_fail (req, 404, NULL, "no invitation '%.64s'", id);
    if (!s_invitation_next (row->state, event))
        return umb_req_fail (req, 409, "invalid_state", "cannot %s an invitation that is %s",
                             event, row->state);
    return 0;
}

int
umb_auth_invitations_create (void *state, umb_req_t *req)
{
    return s_invitations_create ((umb_auth_t *) state, req, NULL);
}

static int
s_invitations_accept (umb_auth_t *self, umb_req_t *req, const umb_billing_verdict_t *verdict)
{
    umb_auth_invitation_t row;
    int status = s_invitation_for (self, req, "accept", &row);
    if (status)
        return status;
    status = umb_auth_member_quota (self, req, row.workspace_id,
                                    umb_auth_store_members_count (self->store, row.workspace_id,
                                                                  false),
                                    verdict, s_invitations_accept);
    if (status)
        return status == UMB_AUTH_ASKED ? UMB_DEFERRED : status;
    int64_t now = umb_auth_now ();
    const char *next = s_invitation_next (row.state, "accept");
    //  The invitation moves and the membership appears together, or neither does
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    int rc = umb_auth_store_invitation_move (self->store, row.id, row.state, next, now);
    if (rc == 0)
        rc = umb_auth_store_member_insert (self->store, row.workspace_id, row.user_id, row.role, now);
    if (rc == UMB_STORE_CONSTRAINT || rc == UMB_AUTH_NOT_FOUND) {
        umb_store_rollback (self->store);
        return rc == UMB_STORE_CONSTRAINT
            ? umb_req_fail (req, 409, "already_member", "'%s' is already a member of '%s'",
                            row.username, row.workspace_name)
            : umb_req_fail (req, 409, "invalid_state", "the invitation is no longer pending");
    }
    if ((status = umb_auth_commit (self, req, rc)))
        return status;
    snprintf (row.state, sizeof row.state, "%s", next);
    umb_auth_member_t member = { .role = row.role, .joined_at = now };
    snprintf (member.user_id, sizeof member.user_id, "%s", row.user_id);
    snprintf (member.username, sizeof member.username, "%s", row.username);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_key (w, "invitation");
    umb_auth_write_invitation (w, &row);
    umb_w_key (w, "member");
    umb_auth_write_member (w, &member);
    umb_w_map_end (w);
    umb_log_info (self->log, "'%s' joined '%s' as %s", row.username, row.workspace_name,
                  umb_auth_role_name (row.role));
    return 200;
}

int
umb_auth_invitations_accept (void *state, umb_req_t *req)
{
    return s_invitations_accept ((umb_auth_t *) state, req, NULL);
}

static int
s_invitation_close (umb_auth_t *self, umb_req_t *req, const char *event)
{
    umb_auth_invitation_t row;
    int status = s_invitation_for (self, req, event, &row);
    if (status)
        return status;
    const char *next = s_invitation_next (row.state, event);
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    int rc = umb_auth_store_invitation_move (self->store, row.id, row.state, next, umb_auth_now ());
    if (rc == UMB_AUTH_NOT_FOUND) {
        umb_store_rollback (self->store);
        return umb_req_fail (req, 409, "invalid_state", "the invitation is no longer pending");
    }
    if ((status = umb_auth_commit (self, req, rc)))
        return status;
    snprintf (row.state, sizeof row.state, "%s", next);
    umb_auth_write_invitation (umb_req_body_writer (req), &row);
    return 200;
}

int
umb_auth_invitations_reject (void *state, umb_req_t *req)
{
    return s_invitation_close ((umb_auth_t *) state, req, "reject");
}

int
umb_auth_invitations_cancel (void *state, umb_req_t *req)
{
    return s_invitation_close ((umb_auth_t *) state, req, "cancel");
}

//  ---------------------------------------------------------------- API keys

int
umb_auth_apikeys_create (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const umb_principal_t *principal = umb_req_principal (req);
    const char *name = umb_msg_str (body, "name", UMB_AUTH_READ_NAME, true);
    size_t count = 0;
    const char **actions = umb_msg_strv (body, "actions", 64, UMB_AUTH_READ_NAME, &count, true);
    int64_t ttl = umb_msg_int (body, "ttl_s", INT64_MIN, INT64_MAX, 0, false);
    bool has_ttl = umb_msg_has (body, "ttl_s");
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    char why [160];
    if (!umb_auth_label_valid ("name", name, UMB_AUTH_KEY_NAME_MAX, why, sizeof why))
        return umb_req_fail (req, 422, NULL, "%s", why);
    if (has_ttl && (ttl < S_KEY_TTL_MIN || ttl > S_KEY_TTL_MAX))
        return umb_req_fail (req, 422, NULL, "ttl_s: expected %d..%d seconds", S_KEY_TTL_MIN,
                             S_KEY_TTL_MAX);
    if (count == 0)
        return umb_req_fail (req, 422, NULL, "actions: at least one action");
    for (size_t index = 0; index < count; index++)
        if (umb_auth_action_role (actions [index]) == UMB_ROLE_NONE)
            return umb_req_fail (req, 422, NULL, "actions: unknown action '%.64s'", actions [index]);
    umb_auth_workspace_t ws;
    int status = umb_auth_request_workspace (self, req, &ws);
    if (status)
        return status;

    //  A key holds no more than its creator: their role, and the key they use
    umb_auth_apikey_t key = { .created_at = umb_auth_now () };
    size_t used = 0;
    for (size_t table = 0; umb_auth_action_at (table); table++) {
        const char *action = umb_auth_action_at (table);
        bool wanted = false;
        for (size_t index = 0; index < count && !wanted; index++)
            wanted = streq (actions [index], action);
        if (!wanted)
            continue;
        if (umb_auth_action_role (action) > ws.role)
            return umb_req_fail (req, 403, NULL, "role '%s' cannot grant '%s'",
                                 umb_auth_role_name (ws.role), action);
        if (principal->is_api_key && !umb_auth_actions_has (principal->key_actions, action))
            return umb_req_fail (req, 403, NULL, "API key '%s' cannot grant '%s', which it lacks",
                                 principal->key_id, action);
        used += snprintf (key.actions + used, sizeof key.actions - used, "%s%s",
                          used ? "," : "", action);
    }
    umb_auth_new_id ("key_", key.id, sizeof key.id);
    snprintf (key.workspace_id, sizeof key.workspace_id, "%s", ws.id);
    snprintf (key.created_by, sizeof key.created_by, "%s", principal->subject);
    snprintf (key.name, sizeof key.name, "%s", name);
    key.expires_at = has_ttl ? key.created_at + ttl : 0;

    unsigned char random [32];
    char secret [44];
    char full [UMB_AUTH_APIKEY_SIZE];
    randombytes_buf (random, sizeof random);
    sodium_bin2base64 (secret, sizeof secret, random, sizeof random,
                       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf (full, sizeof full, "%s%.16s_%s", UMB_AUTH_APIKEY_PREFIX, key.id + 4, secret);
    umb_auth_sha256_hex (secret, key.secret_hash);
    sodium_memzero (random, sizeof random);
    sodium_memzero (secret, sizeof secret);

    if (umb_store_begin (self->store))
        status = umb_auth_store_error (self, req);
    else
        status = umb_auth_commit (self, req, umb_auth_store_apikey_insert (self->store, &key));
    if (status == 0) {
        //  The only time the key is shown: only its digest is kept
        umb_auth_write_apikey (umb_req_body_writer (req), &key, full);
        umb_log_info (self->log, "API key %s '%s' created in '%s' by '%s'", key.id, key.name,
                      ws.name, principal->username);
        status = 201;
    }
    sodium_memzero (full, sizeof full);
    sodium_memzero (key.secret_hash, sizeof key.secret_hash);
    return status;
}

int
umb_auth_apikeys_list (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_w_t *w = s_items_begin (req);
    int rc = umb_auth_store_apikeys (self->store, umb_req_workspace (req), s_each_apikey, w);
    return s_items_end (self, req, rc);
}

int
umb_auth_apikeys_revoke (void *state, umb_req_t *req)
{
    umb_auth_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *id = umb_msg_str (body, "key_id", UMB_AUTH_READ_REF, true);
    if (umb_msg_failed (body))
        return umb_auth_bad_request (req);
    if (umb_store_begin (self->store))
        return umb_auth_store_error (self, req);
    int rc = umb_auth_store_apikey_revoke (self->store, id, umb_req_workspace (req), umb_auth_now ());
    if (rc == UMB_AUTH_NOT_FOUND) {
        umb_store_rollback (self->store);
        return umb_req_fail (req, 404, NULL, "no API key '%.64s' in this workspace", id);
    }
    int status = umb_auth_commit (self, req, rc);
    if (status)
        return status;
    umb_log_info (self->log, "API key %s revoked by '%s'", id, umb_req_principal (req)->username);
    return s_done_true (req, "revoked");
}
