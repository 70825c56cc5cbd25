//  umb_run_follower - follows one run's CVM: long-polls backends.run.events
//  with the service's own mesh identity and hands each page to the service's
//  loop, which stores it and only then acknowledges it
//
//      zactor_t *follower = umb_run_follower_new (runtime, cert, cvm_id, after);
//      //  the follower sends [EVENTS][body]  (body: backends' reply, msgpack)
//      //                  or [ERROR][reason] (backends could not be asked; it retries)
//      //  and waits for     [AFTER][n]       (the events up to n are stored: go on)
//      zactor_destroy (&follower);
//
//  One page is in flight at a time: nothing is acknowledged to backends before
//  the service has stored it, so a crash of either side loses no event and
//  repeats none.
#ifndef UMB_RUN_FOLLOWER_H_INCLUDED
#define UMB_RUN_FOLLOWER_H_INCLUDED

#include <stdint.h>
#include <czmq.h>
#include "umb_runtime.h"

//  cert is borrowed (it outlives the follower). NULL if it cannot start.
zactor_t *umb_run_follower_new (umb_runtime_t *runtime, zcert_t *cert, const char *cvm_id,
                                int64_t after);

#endif
