//  umb_auth - the auth service: users, passwords, sessions and tokens,
//  workspaces, memberships, invitations, API keys, and authorization for the
//  other services
//
//  The operations are specified in proto/msgpack/auth.md.
//
//      zactor_t *auth = zactor_new (umb_auth_actor, runtime);
//      zstr_send (auth, "ENDPOINT");
//      char *endpoint = zstr_recv (auth);      //  "" if the service could not start
//      ...
//      zactor_destroy (&auth);
#ifndef UMB_AUTH_H_INCLUDED
#define UMB_AUTH_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>

//  args is the umb_runtime_t * of the process (borrowed; it outlives the
//  actor). Settings: auth.endpoint, auth.pub_endpoint, auth.db, auth.issuer,
//  auth.access_ttl_s, auth.refresh_ttl_s, auth.password_min_length,
//  auth.pwhash, auth.login_max_failures, auth.login_window_s, admin.*.
//  Signals ready even when start fails (the reason is logged once); it then
//  answers "ENDPOINT" and "PUB" with "" and "REASON" with the reason, until
//  $TERM.
void umb_auth_actor (zsock_t *pipe, void *args);

void umb_auth_test (bool verbose);

#endif
