//  umb_auth_private - the auth actor's state and what its handler files share
//  (umb_auth.c, umb_auth_users.c, umb_auth_workspaces.c); not for other services
#ifndef UMB_AUTH_PRIVATE_H_INCLUDED
#define UMB_AUTH_PRIVATE_H_INCLUDED

#include <czmq.h>
#include <jansson.h>
#include <sodium.h>
#include "umb_auth.h"
#include "umb_auth_hasher.h"
#include "umb_auth_rules.h"
#include "umb_auth_store.h"
#include "umb_jwt.h"
#include "umb_runtime.h"
#include "umb_service.h"
#include "umb_worker.h"
#include "umb_billing_client.h"

//  Longest values read from peers before the rules judge them: longer
//  values are refused by the reader (400), shorter invalid ones by the
//  rules (422).
#define UMB_AUTH_READ_NAME      256
#define UMB_AUTH_READ_TEXT      1024
#define UMB_AUTH_READ_PASSWORD  65536
#define UMB_AUTH_READ_REF       128
#define UMB_AUTH_READ_TOKEN     4096

#define UMB_AUTH_JWT_LEEWAY_S   60

//  What a caller who may not see a workspace is told: one text for every
//  name, so a hidden workspace reads exactly like a missing one.
#define UMB_AUTH_NO_WORKSPACE   "no such workspace, or you are not a member of it"
#define UMB_AUTH_HASH_WORKERS   2

//  Refresh tokens: "umr_" + 43 base64url characters (32 random bytes)
#define UMB_AUTH_REFRESH_PREFIX "umr_"
#define UMB_AUTH_REFRESH_SIZE   (4 + 43 + 1)
//  API keys: "umb_" + 16 hex id + "_" + 43 base64url characters (32 random bytes)
#define UMB_AUTH_APIKEY_PREFIX  "umb_"
#define UMB_AUTH_APIKEY_SIZE    (4 + 16 + 1 + 43 + 1)

typedef struct _umb_auth_t umb_auth_t;

struct _umb_auth_t {
    umb_runtime_t     *runtime;         //  borrowed
    umb_config_t      *config;          //  borrowed from the runtime
    umb_log_t         *log;
    zcert_t           *cert;
    umb_store_t       *store;
    umb_jwt_signer_t  *signer;
    umb_jwt_keyring_t *keyring;
    umb_service_t     *service;
    umb_auth_hasher_t *hasher;
    const char        *issuer;          //  borrowed from the config
    int64_t            access_ttl;
    int64_t            refresh_ttl;
    int64_t            password_min;
    int64_t            max_failures;
    int64_t            failure_window;
    unsigned long long opslimit;        //  Argon2id limits of new hashes
    size_t             memlimit;
    umb_worker_t      *billing_worker;  //  billing.check for new members (umb_auth_quota)
    umb_billing_client_t *billing;      //  ...its thread's client
    char               failure [512];   //  why start failed; "" when running
};

//  A request waiting for the hasher.
typedef enum {
    UMB_AUTH_OP_REGISTER,
    UMB_AUTH_OP_LOGIN,
    UMB_AUTH_OP_PASSWORD
} umb_auth_op_t;

typedef struct {
    umb_auth_op_t kind;
    umb_req_t    *req;                  //  deferred; answered when the hash is done
    char          username [UMB_AUTH_READ_NAME + 1];
    char          user_id [UMB_AUTH_ID_SIZE];
    bool          set_email;
    char          email [UMB_AUTH_EMAIL_MAX + 1];
    bool          self_change;          //  a user changing their own password
    char          keep_session [UMB_AUTH_ID_SIZE];
} umb_auth_pending_t;

//  ---------------------------------------------------------------- members quota
//  (umb_auth_quota.c)
//  A handler that runs again once billing answered (req is deferred then);
//  it returns the status to answer.
typedef int (umb_auth_again_fn) (umb_auth_t *self, umb_req_t *req,
                                 const umb_billing_verdict_t *verdict);
#define UMB_AUTH_ASKED (-1)
int  umb_auth_quota_start (umb_auth_t *self);
void umb_auth_quota_stop (umb_auth_t *self);
//  May the workspace have one more member beside in_use (-1: the count
//  failed)? With verdict NULL: 0 when billing is off, else UMB_AUTH_ASKED
//  after deferring req (again runs with billing's verdict). With a verdict:
//  0 when in_use + 1 is within its limit. Otherwise the status answered.
int  umb_auth_member_quota (umb_auth_t *self, umb_req_t *req, const char *workspace_id,
                            int64_t in_use, const umb_billing_verdict_t *verdict,
                            umb_auth_again_fn *again);

//  ---------------------------------------------------------------- lifecycle
//  The actor in pieces, so a test can reach the store: always returns an
//  object; umb_auth_failure tells why it cannot serve ("" if it can).
umb_auth_t  *umb_auth_new (umb_runtime_t *runtime);
void         umb_auth_destroy (umb_auth_t **self_p);
const char  *umb_auth_failure (umb_auth_t *self);
umb_store_t *umb_auth_store (umb_auth_t *self);
//  Serves until $TERM; a failed object answers "ENDPOINT" and "PUB" with "".
void         umb_auth_run (umb_auth_t *self, zsock_t *pipe);

//  ---------------------------------------------------------------- shared helpers
int64_t umb_auth_now (void);
//  prefix + 16 random hex characters.
void    umb_auth_new_id (const char *prefix, char *id, size_t size);
//  Lowercase hex SHA-256 of text (65 bytes with the NUL).
void    umb_auth_sha256_hex (const char *text, char hex [crypto_hash_sha256_BYTES * 2 + 1]);
//  Wipes the string field key of body in place (the decoded copy and the raw
//  bytes), and copy if given. For passwords and tokens.
void    umb_auth_wipe (umb_msg_t *body, const char *key, const char *copy);

//  Answers for the common failures; each returns the status.
int     umb_auth_bad_request (umb_req_t *req);                  //  400, the reader's error
int     umb_auth_store_error (umb_auth_t *self, umb_req_t *req);//  500, retryable, logged
int     umb_auth_user_token_only (umb_req_t *req);              //  403 for API keys, else 0
//  Ends a write's transaction: rc is its last step's result. Commits if rc
//  is 0, else rolls back. 0 when committed, else the 500 answered.
int     umb_auth_commit (umb_auth_t *self, umb_req_t *req, int rc);

//  Finds the user named by ref (an id, a username, or "me"). 0, or 404/500
//  answered on req.
int     umb_auth_user_find (umb_auth_t *self, umb_req_t *req, const char *ref,
                            umb_auth_user_t *user);
//  Checks a token; 0 with principal filled (and *exp, 0 if it never
//  expires), or 401 (500) with a reason.
int     umb_auth_identify (umb_auth_t *self, const char *token, umb_principal_t *principal,
                           int64_t *exp, char *reason, size_t reason_size);
//  Decides whether principal may do action in workspace (id or name): 0 with
//  ws and role filled, 404 when the caller may not see it, 403 when it lacks
//  the right, 500; reason for people in every case.
int     umb_auth_decide (umb_auth_t *self, const umb_principal_t *principal, const char *action,
                         const char *workspace, umb_auth_workspace_t *ws, umb_role_t *role,
                         char *reason, size_t reason_size);
//  The workspace the dispatcher authorized for req, with the caller's role.
int     umb_auth_request_workspace (umb_auth_t *self, umb_req_t *req, umb_auth_workspace_t *ws);

//  Reply objects, as proto/msgpack/auth.md describes them.
void    umb_auth_write_user (umb_w_t *w, const umb_auth_user_t *user, bool full);
void    umb_auth_write_workspace (umb_w_t *w, const umb_auth_workspace_t *ws);
void    umb_auth_write_member (umb_w_t *w, const umb_auth_member_t *member);
void    umb_auth_write_invitation (umb_w_t *w, const umb_auth_invitation_t *row);
void    umb_auth_write_apikey (umb_w_t *w, const umb_auth_apikey_t *key, const char *secret_key);

//  ---------------------------------------------------------------- handlers
int  umb_auth_users_register (void *state, umb_req_t *req);
int  umb_auth_users_get (void *state, umb_req_t *req);
int  umb_auth_users_update (void *state, umb_req_t *req);
int  umb_auth_users_disable (void *state, umb_req_t *req);
int  umb_auth_tokens_create (void *state, umb_req_t *req);
int  umb_auth_tokens_refresh (void *state, umb_req_t *req);
int  umb_auth_tokens_revoke (void *state, umb_req_t *req);
//  The hasher's answer to a pending request; answers and frees it.
void umb_auth_users_hashed (umb_auth_t *self, umb_auth_pending_t *pending,
                            const umb_auth_hasher_result_t *result);

int  umb_auth_workspaces_create (void *state, umb_req_t *req);
int  umb_auth_workspaces_list (void *state, umb_req_t *req);
int  umb_auth_workspaces_get (void *state, umb_req_t *req);
int  umb_auth_workspaces_lookup (void *state, umb_req_t *req);
int  umb_auth_workspaces_rename (void *state, umb_req_t *req);
int  umb_auth_workspaces_delete (void *state, umb_req_t *req);
int  umb_auth_members_list (void *state, umb_req_t *req);
int  umb_auth_members_update (void *state, umb_req_t *req);
int  umb_auth_members_remove (void *state, umb_req_t *req);
int  umb_auth_invitations_create (void *state, umb_req_t *req);
int  umb_auth_invitations_list (void *state, umb_req_t *req);
int  umb_auth_invitations_mine (void *state, umb_req_t *req);
int  umb_auth_invitations_accept (void *state, umb_req_t *req);
int  umb_auth_invitations_reject (void *state, umb_req_t *req);
int  umb_auth_invitations_cancel (void *state, umb_req_t *req);
int  umb_auth_apikeys_create (void *state, umb_req_t *req);
int  umb_auth_apikeys_list (void *state, umb_req_t *req);
int  umb_auth_apikeys_revoke (void *state, umb_req_t *req);

#endif
