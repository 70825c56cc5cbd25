//  umb_runtime - what the service actors of one process share: the settings,
//  the ZAP handler, the root logger, the state and key directories
//
//  umb_runtime_new resolves state_dir (UMBRA_STATE_DIR / --state, default
//  $XDG_DATA_HOME/umbra or ~/.local/share/umbra), creates it with mode 0700,
//  makes the CURVE key pair of every mesh identity on first start, starts the
//  process's ZAP handler and admits every identity's public key plus those in
//  mesh.allow_dir. Actors receive the runtime as their args (borrowed; it
//  outlives them) and only read from it.
#ifndef UMB_RUNTIME_H_INCLUDED
#define UMB_RUNTIME_H_INCLUDED

#include <czmq.h>
#include "umb_config.h"
#include "umb_log.h"
#include "umb_zap.h"
#include "umb_client.h"

typedef struct _umb_runtime_t umb_runtime_t;

//  The names of every mesh identity ("auth", "certs", "gateway", ...),
//  NULL-terminated: those whose key pairs a state holds.
const char *const *umb_runtime_identities (void);
//  mkdir -p with mode 0700 for what it makes. 0, or -1 (errno set).
int            umb_runtime_make_dirs (const char *path);

//  The state and keys directories config names, defaults resolved, without
//  making or starting anything (for tools that only read them). Caller frees.
char          *umb_runtime_state_path (umb_config_t *config);
char          *umb_runtime_keys_path (umb_config_t *config);

//  Takes the config. NULL with a reason in *error (caller frees).
umb_runtime_t *umb_runtime_new (umb_config_t **config_p, char **error);
void           umb_runtime_destroy (umb_runtime_t **self_p);

umb_config_t  *umb_runtime_config (umb_runtime_t *self);
umb_zap_t     *umb_runtime_zap (umb_runtime_t *self);
umb_log_t     *umb_runtime_log (umb_runtime_t *self);
const char    *umb_runtime_state_dir (umb_runtime_t *self);
const char    *umb_runtime_keys_dir (umb_runtime_t *self);

//  The key pair of mesh identity name ("auth", "gateway", ...). Caller destroys.
zcert_t       *umb_runtime_identity (umb_runtime_t *self, const char *name);
//  The public key of service name: "<name>.public_key" when set, else the key
//  directory. Caller frees; NULL if unknown.
char          *umb_runtime_public_key (umb_runtime_t *self, const char *name);
//  A client of service name at "<name>.endpoint", authenticated as identity
//  (a cert from umb_runtime_identity, borrowed). NULL if it cannot be made.
umb_client_t  *umb_runtime_client (umb_runtime_t *self, const char *name, zcert_t *identity);
//  The public keys (Z85) of every service identity, NULL-terminated: what
//  a service passes as mesh_services. Owned by the runtime.
const char *const *umb_runtime_service_keys (umb_runtime_t *self);
//  Service name's database: the setting "<name>.db", else dir/<name>.db.
//  Caller frees.
char          *umb_runtime_db_path (umb_runtime_t *self, const char *name, const char *dir);
//  A directory for service name's files under the state dir (created 0700).
//  Caller frees.
char          *umb_runtime_service_dir (umb_runtime_t *self, const char *name);

void           umb_runtime_test (bool verbose);

#endif
