//  umb_billing_plans - plans (their limits) and prices (per TEE type), read
//  from the plans file (proto/msgpack/billing.md, "Plans and prices"), and
//  what a CVM's time costs at those prices
//
//      char reason [256];
//      umb_billing_plans_t *plans = umb_billing_plans_load ("", "", reason, sizeof reason);
//      int plan = umb_billing_plans_find (plans, "team");
//      int64_t limit = umb_billing_plans_limit (plans, plan, UMB_BILLING_LIMIT_MEMBERS);
//      int64_t cost;
//      umb_billing_cost (umb_billing_plans_price (plans, "tdx"), 2, 4096, 3600, true, &cost);
#ifndef UMB_BILLING_PLANS_H_INCLUDED
#define UMB_BILLING_PLANS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    UMB_BILLING_LIMIT_COMPUTATIONS = 0,
    UMB_BILLING_LIMIT_RUNS_PER_MONTH,
    UMB_BILLING_LIMIT_CONCURRENT_CVMS,
    UMB_BILLING_LIMIT_VCPU_HOURS,
    UMB_BILLING_LIMIT_MEMBERS,
    UMB_BILLING_LIMITS
} umb_billing_limit_t;

#define UMB_BILLING_UNLIMITED (-1)
#define UMB_BILLING_TEES      3             //  none, sev-snp, tdx
#define UMB_BILLING_PRICE_MAX 1000000000000LL   //  micro-credits per unit and hour

//  Micro-credits per vCPU-hour, per GiB-hour of memory, and per run
typedef struct {
    int64_t vcpu_hour;
    int64_t memory_gib_hour;
    int64_t run;
} umb_billing_price_t;

typedef struct _umb_billing_plans_t umb_billing_plans_t;

//  Reads the plans file at path ("" or NULL: the built-in plans, which are
//  deploy/billing-plans.json). default_plan, when not empty, overrides the
//  file's default_plan and must name one of its plans. NULL with the reason.
umb_billing_plans_t *umb_billing_plans_load (const char *path, const char *default_plan,
                                             char *reason, size_t reason_size);
//  The same from text (size bytes).
umb_billing_plans_t *umb_billing_plans_parse (const char *text, size_t size,
                                              const char *default_plan, char *reason,
                                              size_t reason_size);
void                 umb_billing_plans_destroy (umb_billing_plans_t **self_p);

//  The built-in plans file (embedded at build time).
const char          *umb_billing_plans_embedded (size_t *size);

size_t               umb_billing_plans_count (umb_billing_plans_t *self);
const char          *umb_billing_plans_name (umb_billing_plans_t *self, size_t index);
//  The index of the plan called name, or -1.
int                  umb_billing_plans_find (umb_billing_plans_t *self, const char *name);
//  The index of the default plan.
int                  umb_billing_plans_default (umb_billing_plans_t *self);
//  A plan's limit, or UMB_BILLING_UNLIMITED.
int64_t              umb_billing_plans_limit (umb_billing_plans_t *self, int plan,
                                              umb_billing_limit_t limit);
//  The prices of TEE type tee ("none", "sev-snp", "tdx"), or NULL.
const umb_billing_price_t *umb_billing_plans_price (umb_billing_plans_t *self, const char *tee);
//  "none", "sev-snp", "tdx" by index (0..UMB_BILLING_TEES - 1).
const char          *umb_billing_tee_name (size_t index);

//  A limit's name in plans and refusals ("runs_per_month"), and what it
//  counts, for people ("runs this month").
const char          *umb_billing_limit_name (umb_billing_limit_t limit);
const char          *umb_billing_limit_what (umb_billing_limit_t limit);

//  What seconds of a CVM with vcpus and memory_mb cost at price, plus the
//  run's price when run: each component rounded up to a micro-credit.
//  0, or -1 when the cost does not fit in an int64_t (never for values the
//  service accepts).
int                  umb_billing_cost (const umb_billing_price_t *price, int64_t vcpus,
                                       int64_t memory_mb, int64_t seconds, bool run,
                                       int64_t *cost);

void                 umb_billing_plans_test (bool verbose);

#endif
