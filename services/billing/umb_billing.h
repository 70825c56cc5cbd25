//  umb_billing - the billing service: plans and their limits, metering,
//  prepaid credit on a double-entry ledger, reservations for runs, and
//  monthly statements (proto/msgpack/billing.md is the contract)
//
//      zactor_t *billing = zactor_new (umb_billing_actor, runtime);
//      zstr_send (billing, "ENDPOINT");
//      char *endpoint = zstr_recv (billing);   //  "" when it did not start: ask "REASON"
//
//  The actor also answers "PUB" with its PUB endpoint.
#ifndef UMB_BILLING_H_INCLUDED
#define UMB_BILLING_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>
#include "umb_runtime.h"

void umb_billing_actor (zsock_t *pipe, void *args);

void umb_billing_test (bool verbose);

#endif
