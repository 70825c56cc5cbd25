//  umb_backends - the backends service: TEE hosts, CVM lifecycle, agent links
//  (proto/msgpack/backends.md is the contract)
//
//      zactor_t *backends = zactor_new (umb_backends_actor, runtime);
//      zstr_send (backends, "ENDPOINT");
//      char *endpoint = zstr_recv (backends);   //  "" when it did not start: ask "REASON"
//
//  The actor also answers "PUB" (the PUB endpoint) and "RECONCILED" ("H O":
//  hosts reconciled and orphan domains destroyed since start, for tests) and,
//  for fault tests, "BEHIND" cvm_id ("1"/"0"): the CVM's domain is destroyed on
//  its host outside the lifecycle, as `virsh destroy` would.
#ifndef UMB_BACKENDS_H_INCLUDED
#define UMB_BACKENDS_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>
#include "umb_runtime.h"

typedef struct _umb_backends_t umb_backends_t;

//  Never NULL; umb_backends_failure says why it cannot serve ("" when it can).
umb_backends_t *umb_backends_new (umb_runtime_t *runtime);
void            umb_backends_destroy (umb_backends_t **self_p);
const char     *umb_backends_failure (umb_backends_t *self);
//  Runs the service's loop until $TERM on pipe.
void            umb_backends_run (umb_backends_t *self, zsock_t *pipe);

void umb_backends_actor (zsock_t *pipe, void *args);

void umb_backends_test (bool verbose);

#endif
