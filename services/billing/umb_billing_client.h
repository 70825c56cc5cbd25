//  umb_billing_client - what other services ask of billing: a check before
//  each gated action, a reservation before a run and its settlement after,
//  and usage records (proto/msgpack/billing.md, MESH operations)
//
//  Calls are synchronous, within mesh.timeout_ms: make them from a worker
//  thread, never a service's loop. One client is used by one thread. With
//  billing.enabled false every call answers "allowed" at once and nothing is
//  sent. Billing that cannot be reached refuses (503): gated actions fail
//  closed.
//
//      umb_billing_client_t *billing = umb_billing_client_new (runtime, identity);
//      umb_billing_verdict_t verdict;
//      if (umb_billing_client_check (billing, workspace_id, "computation.create", 1, count,
//                                    false, &verdict))
//          refuse (verdict.status, verdict.code, verdict.reason);
//      ...
//      //  on the loop, at the commit: still within the limit?
//      if (!umb_billing_verdict_within (&verdict, count_now, 1)) ...
#ifndef UMB_BILLING_CLIENT_H_INCLUDED
#define UMB_BILLING_CLIENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "umb_runtime.h"

typedef struct _umb_billing_client_t umb_billing_client_t;

typedef struct {
    int     status;             //  0 allowed (or done); else the status to answer
    char    code [32];          //  "limit_exceeded", "insufficient_credit", "unavailable" ...
    char    reason [400];
    int64_t limit;              //  a check's limit, -1 for none
    int64_t amount;             //  a reservation's amount, a settlement's charge
    bool    replayed;           //  billing had done this before (a repeated call)
} umb_billing_verdict_t;

//  A client as identity (borrowed cert from umb_runtime_identity). Never NULL.
umb_billing_client_t *umb_billing_client_new (umb_runtime_t *runtime, zcert_t *identity);
void                  umb_billing_client_destroy (umb_billing_client_t **self_p);

//  Whether billing is asked at all (billing.enabled).
bool umb_billing_client_enabled (umb_billing_client_t *self);

//  billing.check: may workspace_id do action (quantity more of it, with
//  in_use now; -1 when the action counts nothing of the caller's)? run: a
//  CVM a run's reservation pays for. 0 allowed, else the verdict's status.
int  umb_billing_client_check (umb_billing_client_t *self, const char *workspace_id,
                               const char *action, int64_t quantity, int64_t in_use, bool run,
                               umb_billing_verdict_t *verdict);
//  True when count + quantity stays within the verdict's limit.
bool umb_billing_verdict_within (const umb_billing_verdict_t *verdict, int64_t count,
                                 int64_t quantity);

//  billing.reserve: the run's maximum cost. 0 reserved (amount), else refused.
int  umb_billing_client_reserve (umb_billing_client_t *self, const char *reservation,
                                 const char *workspace_id, const char *tee, int64_t vcpus,
                                 int64_t memory_mb, int64_t seconds, int64_t expires_s,
                                 umb_billing_verdict_t *verdict);
//  billing.settle with outcome "completed", "cancelled" or "failed". 0 done
//  (now or before; amount is the charge), else the verdict's status.
int  umb_billing_client_settle (umb_billing_client_t *self, const char *reservation,
                                const char *outcome, int64_t seconds,
                                umb_billing_verdict_t *verdict);

//  A CVM's usage over a period (billing.usage.record's record)
typedef struct {
    char    id [132];
    char    workspace_id [64];
    char    tee [16];
    int64_t vcpus, memory_mb, seconds, at;
    bool    paid;
} umb_billing_record_t;
//  billing.usage.record of count records (at most 1000). 0 recorded (each
//  once), else the verdict's status.
int  umb_billing_client_usage (umb_billing_client_t *self, const umb_billing_record_t *records,
                               size_t count, umb_billing_verdict_t *verdict);

#endif
