//  umb_certs - the certs service: the platform's CA for TLS certificates of
//  workspaces and for the X25519 identities of the mesh; revocation through
//  CRL and an RFC 6960 OCSP responder on its own HTTP port
//
//  The operations are specified in proto/msgpack/certs.md.
//
//      zactor_t *certs = zactor_new (umb_certs_actor, runtime);
//      zstr_send (certs, "ENDPOINT");
//      char *endpoint = zstr_recv (certs);     //  "" if the service could not start
//      zstr_send (certs, "HTTP");
//      char *port = zstr_recv (certs);         //  the OCSP/CRL HTTP port, "" if not started
//      ...
//      zactor_destroy (&certs);
#ifndef UMB_CERTS_H_INCLUDED
#define UMB_CERTS_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>

//  args is the umb_runtime_t * of the process (borrowed; it outlives the
//  actor). Settings: certs.endpoint, certs.pub_endpoint, certs.db,
//  certs.ca_dir, certs.key_type, certs.http_listen, certs.public_url,
//  certs.default_ttl_s, certs.max_ttl_s, certs.ocsp_validity_s,
//  certs.crl_validity_s, certs.http_threads, mesh.timeout_ms (calls to auth).
//  Signals ready even when start fails (the reason is logged once); it then
//  answers "ENDPOINT", "PUB" and "HTTP" with "" and "REASON" with the reason,
//  until $TERM.
void umb_certs_actor (zsock_t *pipe, void *args);

void umb_certs_test (bool verbose);

#endif
