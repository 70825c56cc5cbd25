//  umb_auth_client - how services other than auth check callers: access
//  tokens are verified here against auth's published keys (JWKS), and every
//  decision that needs auth's data (sessions, API keys, memberships, roles)
//  is asked of auth (auth.introspect, auth.authorize) and cached briefly.
//
//  Its functions are umb_service_t's asynchronous hooks: pass the client as
//  the service's hook_state with authenticate_async, authorize_async and
//  auth_cancel, then attach it to the service. A cache hit or a token refused
//  locally is answered at once; otherwise the request waits, without blocking
//  the service's loop, for auth's answer on the client's own connection.
//  Requests waiting for the same answer share one call. Revocations reach a
//  service within UMB_AUTH_CLIENT_CACHE_MS.
//
//      umb_auth_client_t *auth = umb_auth_client_new (runtime, identity);
//      umb_service_t *service = umb_service_new (&(umb_service_config_t) {
//          ..., .hook_state = auth, .authenticate_async = umb_auth_client_authenticate,
//          .authorize_async = umb_auth_client_authorize, .auth_cancel = umb_auth_client_cancel });
//      umb_auth_client_attach (auth, service);
//      ...
//      umb_auth_client_destroy (&auth);        //  before the service
//      umb_service_destroy (&service);
#ifndef UMB_AUTH_CLIENT_H_INCLUDED
#define UMB_AUTH_CLIENT_H_INCLUDED

#include "umb_runtime.h"
#include "umb_service.h"

#define UMB_AUTH_CLIENT_CACHE_MS 2000

typedef struct _umb_auth_client_t umb_auth_client_t;

//  A client of the auth service ("auth.endpoint") as identity (a cert from
//  umb_runtime_identity, borrowed). Waits at most mesh.timeout_ms for an
//  answer. Used from one thread (the service's loop). NULL on failure.
umb_auth_client_t *umb_auth_client_new (umb_runtime_t *runtime, zcert_t *identity);
//  Answers the requests still waiting with 503; destroy it before the
//  service it is attached to.
void               umb_auth_client_destroy (umb_auth_client_t **self_p);

//  Receives auth's answers on service's loop; needed before the hooks run.
void umb_auth_client_attach (umb_auth_client_t *self, umb_service_t *service);

//  The service called name as every service but auth runs it: its ROUTER and
//  PUB at the settings "<name>.endpoint" and "<name>.pub_endpoint" (empty: no
//  PUB), the runtime's ZAP handler and mesh identities, mesh.max_body_bytes,
//  and its callers checked through this client on the service's loop
//  (attached). cert, routes, state and log are the service's (borrowed).
//  NULL with the reason when it cannot bind.
umb_service_t *umb_auth_client_service (umb_auth_client_t *self, umb_runtime_t *runtime,
                                        const char *name, zcert_t *cert,
                                        const umb_route_t *routes, void *state, umb_log_t *log,
                                        char *reason, size_t reason_size);

//  umb_authenticate_async_fn: the token's subject, or 401 with the reason;
//  503 when auth does not answer in time (fails closed); UMB_PENDING.
int  umb_auth_client_authenticate (void *self, umb_req_t *req, const char *token,
                                   umb_principal_t *principal, char *reason, size_t reason_size);
//  umb_authorize_async_fn: auth's decision for principal (its token) doing
//  action in workspace: 0 with the workspace id, 403/404 with the reason,
//  503 when auth does not answer in time; UMB_PENDING.
int  umb_auth_client_authorize (void *self, umb_req_t *req, const umb_principal_t *principal,
                                const char *action, const char *workspace, char *workspace_id,
                                char *reason, size_t reason_size);
//  umb_auth_cancel_fn.
void umb_auth_client_cancel (void *self, umb_req_t *req);

//  How long answers are remembered (default UMB_AUTH_CLIENT_CACHE_MS; 0 never).
void   umb_auth_client_set_cache_ms (umb_auth_client_t *self, int64_t cache_ms);
//  Calls to auth in flight, and requests waiting on them.
size_t umb_auth_client_calls (umb_auth_client_t *self);
size_t umb_auth_client_waiting (umb_auth_client_t *self);

void umb_auth_client_test (bool verbose);

#endif
