//  umb_meter - what each CVM used, for billing: every live CVM's time is
//  cut into periods (at least one per billing.usage_interval_s, and a last
//  one when it ends), each a usage record with an id of its own
//  ("<cvm id>:<seq>") kept in the backends store's outbox until billing has
//  it. Records are written in the same transaction that moves the CVM's
//  metered_at on, so none is lost or made twice; billing counts a record
//  delivered twice once.
//
//      umb_meter_collect (store, now, 60);              //  on each tick
//      umb_billing_record_t records [100];
//      size_t count = umb_meter_pending (store, records, 100);
//      ... billing.usage.record ...
//      umb_meter_sent (store, records, count);
#ifndef UMB_METER_H_INCLUDED
#define UMB_METER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "umb_store.h"
#include "umb_billing_client.h"

//  Records the usage of every CVM whose period is due at now (interval
//  seconds since its last record, or its end) into the outbox, in one
//  transaction. The number of records made, or -1.
int    umb_meter_collect (umb_store_t *store, int64_t now, int64_t interval);
//  Up to max records waiting in the outbox, oldest first; how many.
size_t umb_meter_pending (umb_store_t *store, umb_billing_record_t *records, size_t max);
//  Removes records billing has from the outbox. 0, -1.
int    umb_meter_sent (umb_store_t *store, const umb_billing_record_t *records, size_t count);

void   umb_meter_test (bool verbose);

#endif
