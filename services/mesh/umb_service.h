//  umb_service - the server side of a mesh service: a CURVE ROUTER and a PUB
//  socket on one zloop, and one dispatcher that does everything a handler
//  should not repeat: size limits, envelope decoding, version and deadline
//  checks, route lookup, token check, authorization, reply encoding, metrics.
//
//  A service actor builds its state, then:
//
//      static const umb_route_t s_routes [] = {
//          { "auth.users.get", s_users_get, UMB_ACCESS_USER, NULL },
//          { "auth.members.list", s_members_list, UMB_ACCESS_USER, "members.read" },
//          { NULL }
//      };
//      umb_service_t *service = umb_service_new (&(umb_service_config_t) {...});
//      zsock_signal (pipe, 0);
//      umb_service_run (service, pipe);      //  until $TERM or interrupt
//
//  Every service also answers sys.ping, sys.health and sys.metrics.
#ifndef UMB_SERVICE_H_INCLUDED
#define UMB_SERVICE_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>
#include "umb_log.h"
#include "umb_mp.h"
#include "umb_metrics.h"
#include "umb_zap.h"

typedef struct _umb_service_t umb_service_t;
typedef struct _umb_req_t umb_req_t;

//  Who is calling, as established by the service's authenticate hook.
typedef struct {
    char subject [64];         //  user id
    char username [64];
    char session [64];         //  session id of an access token ("" for API keys)
    bool is_admin;             //  platform administrator
    bool is_api_key;
    char key_id [64];          //  API key id
    char key_workspace [64];   //  the only workspace an API key acts in
    char key_actions [512];    //  its actions, comma-separated
    char mesh_key [41];        //  the CURVE key of the calling peer (Z85)
    const char *token;         //  the request's token (borrowed; valid while it is handled)
} umb_principal_t;

typedef enum {
    UMB_ACCESS_PUBLIC = 0,     //  anyone admitted to the mesh; a token is not checked
    UMB_ACCESS_USER   = 1,     //  a valid access token or API key
    UMB_ACCESS_MESH   = 2      //  service identities only (config mesh_services); no user token
} umb_access_t;

//  A handler returns the reply status: 2xx after writing the body with
//  umb_req_body_writer, an error status from umb_req_fail, or UMB_DEFERRED
//  after taking the request with umb_req_defer (answered later with
//  umb_service_reply).
#define UMB_DEFERRED 0
typedef int (umb_handler_fn) (void *state, umb_req_t *req);

typedef struct {
    const char     *op;
    umb_handler_fn *handler;
    umb_access_t    access;
    //  With UMB_ACCESS_USER: an action checked by the authorize hook on the
    //  workspace named by the body's "workspace" field (id or name), which
    //  must be present. NULL: any authenticated caller; the handler checks.
    const char     *action;
} umb_route_t;

//  Checks token and fills principal; returns 0, or a status (401) with a
//  reason for people in reason.
typedef int (umb_authenticate_fn) (void *state, const char *token, umb_principal_t *principal,
                                   char *reason, size_t reason_size);
//  Decides whether principal may do action in workspace (id or name); on
//  success writes the workspace id into workspace_id (64 bytes) and returns 0.
//  Returns 404 when the caller may not know the workspace exists, 403 when it
//  may but lacks the right, with a reason.
typedef int (umb_authorize_fn) (void *state, const umb_principal_t *principal,
                                const char *action, const char *workspace,
                                char *workspace_id, char *reason, size_t reason_size);

//  The asynchronous hooks, for checks that need a round trip (a service
//  asking auth): the same answers as above, given at once (a cache hit, a
//  check made locally), or UMB_PENDING. Pending, the dispatcher parks req and
//  keeps serving others; the hook later calls umb_service_resume exactly once
//  with the answer, having filled principal (authenticate) or workspace_id
//  (authorize), which point into req and stay valid until then. The hook
//  must never resume a request the dispatcher cancelled (umb_auth_cancel_fn).
#define UMB_PENDING 1
typedef int (umb_authenticate_async_fn) (void *state, umb_req_t *req, const char *token,
                                         umb_principal_t *principal, char *reason,
                                         size_t reason_size);
typedef int (umb_authorize_async_fn) (void *state, umb_req_t *req,
                                      const umb_principal_t *principal, const char *action,
                                      const char *workspace, char *workspace_id, char *reason,
                                      size_t reason_size);
//  The dispatcher dropped req while a hook held it pending (its deadline
//  passed, or the service is being destroyed): forget it, never resume it.
typedef void (umb_auth_cancel_fn) (void *state, umb_req_t *req);

typedef struct {
    const char          *name;          //  "auth": metrics label, log component
    const char          *endpoint;      //  ROUTER bind endpoint, "tcp://127.0.0.1:*" allowed
    const char          *pub_endpoint;  //  PUB bind endpoint, or NULL
    zcert_t             *cert;          //  server key pair (borrowed); required
    umb_zap_t           *zap;           //  the process's ZAP handler (borrowed); required,
                                        //  as libzmq admits anyone when none runs
    const umb_route_t   *routes;        //  terminated by { NULL }
    void                *state;         //  handed to handlers (and hooks, without hook_state)
    void                *hook_state;    //  handed to authenticate/authorize when not NULL
    umb_authenticate_fn *authenticate;  //  required if any route is UMB_ACCESS_USER
    umb_authorize_fn    *authorize;     //  required if any route has an action
    //  Instead of authenticate / authorize (not both kinds): the asynchronous
    //  hooks, with auth_cancel (required with them).
    umb_authenticate_async_fn *authenticate_async;
    umb_authorize_async_fn    *authorize_async;
    umb_auth_cancel_fn        *auth_cancel;
    //  CURVE keys (Z85) of the service identities allowed UMB_ACCESS_MESH
    //  routes, NULL-terminated (copied). Other admitted peers get 403 there.
    const char *const   *mesh_services;
    umb_log_t           *log;           //  borrowed
    size_t               max_body;      //  larger requests get 413 (default 1 MiB)
    //  Admit any CURVE client (UMB_ZAP_DOMAIN_OPEN) instead of mesh
    //  identities only; UMB_ACCESS_MESH routes still need mesh_services.
    bool                 open;
} umb_service_config_t;

//  Binds the sockets. NULL on failure (logged once).
umb_service_t *umb_service_new (const umb_service_config_t *config);
void           umb_service_destroy (umb_service_t **self_p);

//  The bound ROUTER / PUB endpoints with real ports.
const char    *umb_service_endpoint (umb_service_t *self);
const char    *umb_service_pub_endpoint (umb_service_t *self);
zloop_t       *umb_service_loop (umb_service_t *self);
umb_metrics_t *umb_service_metrics (umb_service_t *self);
umb_log_t     *umb_service_log (umb_service_t *self);

//  Runs the loop until $TERM arrives on pipe or the process is interrupted.
//  Answers "ENDPOINT" on pipe with the ROUTER endpoint and "PUB" with the PUB one.
int            umb_service_run (umb_service_t *self, zsock_t *pipe);

//  The same for a service actor with commands of its own. It answers $TERM
//  (stop), ENDPOINT and PUB ("" when the service did not start) and REASON
//  (failure, "" when it started) itself, and hands any other command to
//  handler (arg, pipe, command), which answers it or logs it as unknown.
//  self may be NULL (the service did not start): the pipe is then answered
//  alone until $TERM or an interrupt, so a failed actor can still say why.
typedef void (umb_service_command_fn) (void *arg, zsock_t *pipe, const char *command);
void           umb_service_serve (umb_service_t *self, zsock_t *pipe, const char *failure,
                                  umb_service_command_fn *handler, void *arg);

//  Publishes [topic][body] on the PUB socket (live views only; may be lost).
void           umb_service_publish (umb_service_t *self, const char *topic, umb_w_t *body);

//  ---------------------------------------------------------------- requests
umb_msg_t             *umb_req_body (umb_req_t *self);          //  the decoded body map
const char            *umb_req_op (umb_req_t *self);
const char            *umb_req_id (umb_req_t *self);
const umb_principal_t *umb_req_principal (umb_req_t *self);     //  zeroed for public routes
//  Workspace id resolved by the authorize hook for routes with an action.
const char            *umb_req_workspace (umb_req_t *self);
//  Milliseconds left before the caller's deadline.
int64_t                umb_req_remaining_ms (umb_req_t *self);
//  The reply body writer; the handler writes one map.
umb_w_t               *umb_req_body_writer (umb_req_t *self);
//  Records an error for the reply and returns status, so handlers can
//  "return umb_req_fail (req, 404, "not_found", "no user '%s'", name);".
//  code NULL takes the status's default code.
int                    umb_req_fail (umb_req_t *self, int status, const char *code,
                                     const char *format, ...)
                           __attribute__ ((format (printf, 4, 5)));
//  Reads a page of a list: "after" (0 or more, default 0) and "limit"
//  (1..max, default dflt). 0, or 400/422 answered.
int                    umb_req_page (umb_req_t *self, int64_t dflt, int64_t max, int64_t *after,
                                     int64_t *limit);
//  Marks a failure as safe to retry (the service did nothing).
void                   umb_req_set_retryable (umb_req_t *self);
//  Takes the request out of the dispatcher; the caller must answer it with
//  umb_service_reply. Returns the request, now owned by the caller.
umb_req_t             *umb_req_defer (umb_req_t *self);
//  Answers a deferred request with status (the body writer / fail message as
//  set on it) and destroys it.
void                   umb_service_reply (umb_service_t *self, umb_req_t **req_p, int status);
//  Answers the asynchronous hook that left req pending: status 0 continues
//  the dispatch where it stopped (authorization, then the handler); 401, 403,
//  404 or 503 (auth could not answer; sent as retryable) refuse it with reason.
void                   umb_service_resume (umb_service_t *self, umb_req_t *req, int status,
                                           const char *reason);
//  Requests parked on an asynchronous hook now.
size_t                 umb_service_pending (umb_service_t *self);

void                   umb_service_test (bool verbose);

#endif
