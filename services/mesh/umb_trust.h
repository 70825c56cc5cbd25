//  umb_trust - keeps this process's ZAP handler in step with the certs
//  service's mesh revocations
//
//  An actor asks certs.mesh.revoked every mesh.trust_refresh_ms and revokes
//  each key listed (umb_zap_revoke): from then on the identity's new
//  connections fail the handshake and its open ones get 401 from every
//  service of the process. A revoked identity is so shut out of the whole
//  mesh within one interval plus one round trip (2 s with the default
//  1000 ms). Revocations are never forgotten; while certs cannot be reached
//  the last known set stays in force and a warning is logged once.
#ifndef UMB_TRUST_H_INCLUDED
#define UMB_TRUST_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "umb_runtime.h"

typedef struct _umb_trust_t umb_trust_t;

//  Starts watching, asking as the first of names (the mesh identities of the
//  services of this process, NULL-terminated, copied). On the first answer
//  from certs it also has each of them certified (certs.mesh.issue: their
//  X25519 CURVE keys get mesh certificates, reused while they have time left).
umb_trust_t *umb_trust_new (umb_runtime_t *runtime, const char *const *names);
void         umb_trust_destroy (umb_trust_t **self_p);
//  Rounds in which certs answered so far (tests wait on it).
uint64_t     umb_trust_rounds (umb_trust_t *self);

void         umb_trust_test (bool verbose);

#endif
