//  umb_zap - the process's ZAP handler: admits CURVE peers whose public key is
//  on the mesh allow-list and refuses every other one (logged, counted)
//
//  libzmq consults one handler per context, and admits every CURVE client when
//  no handler is bound (measured with libzmq 4.3.4, even with
//  zap_enforce_domain set). umbra therefore runs exactly one per process and
//  umb_service_new requires it, so a server can never run without one.
#ifndef UMB_ZAP_H_INCLUDED
#define UMB_ZAP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "umb_log.h"

#define UMB_ZAP_DOMAIN "umbra"
//  Sockets in this domain admit any CURVE client key that is not revoked:
//  the traffic is encrypted and the server authenticated, and the service
//  authorizes every request itself (the agent's participant channel, where
//  participants prove themselves with signatures, not mesh identities).
#define UMB_ZAP_DOMAIN_OPEN "umbra-open"

typedef struct _umb_zap_t umb_zap_t;     //  its methods are thread-safe

//  Starts the handler. NULL if one already runs in this process.
umb_zap_t *umb_zap_new (umb_log_t *log);
void       umb_zap_destroy (umb_zap_t **self_p);

//  Admits public_z85 (40 chars); name labels it in logs. 0 ok, -1 bad key.
int        umb_zap_allow (umb_zap_t *self, const char *public_z85, const char *name);
//  Revokes a key for good: new connections with it are refused, it can no
//  longer be allowed, and services refuse requests from existing connections
//  (umb_zap_revoked). 0 newly revoked, 1 already revoked, -1 bad key.
int        umb_zap_revoke (umb_zap_t *self, const char *public_z85);
//  True if public_z85 was revoked. Cheap: services ask on every request.
bool       umb_zap_revoked (umb_zap_t *self, const char *public_z85);
//  Admits public_z85 without a mesh certificate, even once certificates are
//  required (an operator's pinned key). 0 ok, -1 bad or revoked key.
int        umb_zap_pin (umb_zap_t *self, const char *public_z85, const char *name);
//  The key of the certs service, which must stay reachable without a fresh
//  certificate set (it is where the set comes from).
void       umb_zap_exempt (umb_zap_t *self, const char *public_z85);
//  The keys holding valid mesh certificates, as the certs service says now.
//  From the first call on, an allowed key that is neither pinned nor exempt
//  is admitted only if it is in the latest set and that set is younger than
//  max_age_ms (fails closed when the set cannot be refreshed).
void       umb_zap_certified (umb_zap_t *self, const char *const *keys, size_t count,
                              int64_t max_age_ms);
//  Pins every "<name>.pub" certificate in dir. Returns how many, or -1.
int        umb_zap_allow_dir (umb_zap_t *self, const char *dir);
uint64_t   umb_zap_admitted (umb_zap_t *self);
uint64_t   umb_zap_refused (umb_zap_t *self);

void       umb_zap_test (bool verbose);

#endif
