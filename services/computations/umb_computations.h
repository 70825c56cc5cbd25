//  umb_computations - the computations service: definitions, participants,
//  keys, assets, dry run, manifest and the audit trail
//  (proto/msgpack/computations.md is the contract)
//
//      zactor_t *computations = zactor_new (umb_computations_actor, runtime);
//      zstr_send (computations, "ENDPOINT");
//      char *endpoint = zstr_recv (computations);  //  "" when it did not start: ask "REASON"
//
//  The actor also answers "PUB" with its PUB endpoint.
#ifndef UMB_COMPUTATIONS_H_INCLUDED
#define UMB_COMPUTATIONS_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>
#include "umb_runtime.h"

void umb_computations_actor (zsock_t *pipe, void *args);

void umb_computations_test (bool verbose);

#endif
