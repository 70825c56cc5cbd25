//  umb_billing_usage - what billing reads from its peers: usage records
//  (billing.usage.record), and the ids and references they and the other
//  operations carry (proto/msgpack/billing.md)
#ifndef UMB_BILLING_USAGE_H_INCLUDED
#define UMB_BILLING_USAGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "umb_mp.h"
#include "umb_billing_plans.h"
#include "umb_billing_store.h"

#define UMB_BILLING_RECORD_ID_MAX   128
#define UMB_BILLING_PERIOD_MAX      2678400     //  a usage record's seconds: 31 days

//  "ws_" and 16 lowercase hex digits
bool umb_billing_workspace_id_valid (const char *id);
//  1..max of letters, digits and ._:/-, starting with a letter or digit (no
//  spreadsheet reads a CSV cell of it as a formula; no CSV quoting needed)
bool umb_billing_ref_valid (const char *ref, size_t max);

//  Reads one usage record (a map) into usage, against the TEE types plans
//  prices and the time now (a record may not end a day after it). 0, or -1
//  with why it was refused in why.
int  umb_billing_usage_read (umb_msg_t *item, umb_billing_plans_t *plans, int64_t now,
                             umb_billing_usage_t *usage, char *why, size_t why_size);

#endif
