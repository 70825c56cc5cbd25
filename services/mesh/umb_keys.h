//  umb_keys - CURVE key pairs of mesh identities, kept as files in a key directory
//
//  <dir>/<name>.pub holds the public key, <dir>/<name>.key the secret key
//  (mode 0600, created with O_EXCL). Both are CZMQ certificate (ZPL) files.
#ifndef UMB_KEYS_H_INCLUDED
#define UMB_KEYS_H_INCLUDED

#include <czmq.h>
#include "umb_log.h"

//  Loads name's key pair from dir; with create, makes dir (0700) and the pair
//  on first use. NULL on failure or, without create, when it does not exist
//  (logged). Caller destroys the cert.
zcert_t *umb_keys_load (const char *dir, const char *name, bool create, umb_log_t *log);
//  Public key (Z85, 40 chars) of name in dir; NULL if absent. Caller frees.
char    *umb_keys_public (const char *dir, const char *name);

void     umb_keys_test (bool verbose);

#endif
