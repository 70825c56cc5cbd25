//  umb_auth_client - how services other than auth check callers: access
//  tokens are verified here against auth's published keys (JWKS), and every
//  decision that needs auth's data (sessions, API keys, memberships, roles)
//  is asked of auth (auth.introspect, auth.authorize) and cached briefly.
//
//  Its two functions have the shape of umb_service_t's authenticate and
//  authorize hooks: pass the client as the service's hook_state.
//  Revocations reach a service within UMB_AUTH_CLIENT_CACHE_MS.
#ifndef UMB_AUTH_CLIENT_H_INCLUDED
#define UMB_AUTH_CLIENT_H_INCLUDED

#include "umb_runtime.h"
#include "umb_service.h"

#define UMB_AUTH_CLIENT_CACHE_MS 2000

typedef struct _umb_auth_client_t umb_auth_client_t;

//  A client of the auth service as identity (a cert from umb_runtime_identity,
//  borrowed). Used from one thread (the service's loop). NULL on failure.
umb_auth_client_t *umb_auth_client_new (umb_runtime_t *runtime, zcert_t *identity);
void               umb_auth_client_destroy (umb_auth_client_t **self_p);

//  umb_authenticate_fn: the token's subject, or 401 with the reason; 503
//  when auth cannot be reached (fails closed).
int umb_auth_client_authenticate (void *self, const char *token, umb_principal_t *principal,
                                  char *reason, size_t reason_size);
//  umb_authorize_fn: auth's decision for principal (its token) doing action
//  in workspace: 0 with the workspace id, 403/404 with the reason, 503 when
//  auth cannot be reached.
int umb_auth_client_authorize (void *self, const umb_principal_t *principal, const char *action,
                               const char *workspace, char *workspace_id, char *reason,
                               size_t reason_size);

//  How long answers are remembered (default UMB_AUTH_CLIENT_CACHE_MS; 0 never).
void umb_auth_client_set_cache_ms (umb_auth_client_t *self, int64_t cache_ms);

void umb_auth_client_test (bool verbose);

#endif
