//  umb_billing_store - the billing service's SQL: workspaces' subscriptions,
//  the double-entry ledger (append-only; balances kept by a trigger in the
//  same transaction), reservations, metered usage and its monthly totals
//
//  Writes run inside the caller's transaction (umb_store_begin): an operation
//  writes all it has to or nothing.
#ifndef UMB_BILLING_STORE_H_INCLUDED
#define UMB_BILLING_STORE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "umb_store.h"
#include "umb_billing_plans.h"

#define UMB_BILLING_REVENUE "platform:revenue"
#define UMB_BILLING_CREDIT  "platform:credit"
#define UMB_BILLING_ACCOUNT_MAX 96
#define UMB_BILLING_REF_MAX     200

umb_store_t *umb_billing_store_open (const char *path, umb_log_t *log);

//  "ws:<workspace_id>:<which>" ("available" or "reserved") into out
void umb_billing_account (char *out, size_t size, const char *workspace_id, const char *which);
//  "YYYY-MM" of Unix time (UTC) into out (8 bytes)
void umb_billing_month (int64_t time, char *out);
//  The first second of month ("YYYY-MM") and of the one after; -1 if month is malformed
int  umb_billing_month_bounds (const char *month, int64_t *start, int64_t *end);

//  ---------------------------------------------------------------- the ledger

typedef struct {
    const char *account;
    int64_t     amount;
} umb_billing_leg_t;

//  Writes the transaction (kind, ref) of workspace_id: its legs, whose
//  amounts sum to zero (asserted). txn_id receives its id (40 bytes). 0,
//  UMB_STORE_CONSTRAINT when (kind, ref) was written before, -1.
int umb_billing_store_post (umb_store_t *store, const char *kind, const char *ref,
                            const char *workspace_id, int64_t time,
                            const umb_billing_leg_t *legs, size_t count, char *txn_id);
//  The transaction (kind, ref): 0 with its id and amount (what it moved
//  into its first leg's account, negated), UMB_STORE_NOT_FOUND, -1.
int umb_billing_store_txn_find (umb_store_t *store, const char *kind, const char *ref,
                                char *txn_id, int64_t *amount);
//  An account's balance (0 when it has no entries). 0, -1.
int umb_billing_store_balance (umb_store_t *store, const char *account, int64_t *amount);

typedef struct {
    int64_t     seq;
    const char *txn;
    int64_t     time;
    const char *kind;
    const char *ref;
    const char *account;
    int64_t     amount;
} umb_billing_entry_t;
typedef void (umb_billing_entry_fn) (const umb_billing_entry_t *entry, void *arg);
//  The workspace's entries after seq after, at most limit, in order.
int umb_billing_store_entries (umb_store_t *store, const char *workspace_id, int64_t after,
                               int64_t limit, umb_billing_entry_fn *fn, void *arg);

//  One transaction of a workspace as a statement line: how it moved the
//  workspace's available and reserved balances, and what it charged
typedef struct {
    const char *txn;
    int64_t     time;
    const char *kind;
    const char *ref;
    int64_t     available;
    int64_t     reserved;
    int64_t     charge;
} umb_billing_line_t;
typedef void (umb_billing_line_fn) (const umb_billing_line_t *line, void *arg);
int umb_billing_store_lines (umb_store_t *store, const char *workspace_id, const char *month,
                             umb_billing_line_fn *fn, void *arg);

//  A month's totals for a workspace (oldest month first for _months)
typedef struct {
    char    month [8];
    int64_t credits;            //  credit and grant
    int64_t charges;            //  revenue taken
    int64_t change;             //  of available + reserved
} umb_billing_month_t;
typedef void (umb_billing_month_fn) (const umb_billing_month_t *month, void *arg);
int umb_billing_store_months (umb_store_t *store, const char *workspace_id,
                              umb_billing_month_fn *fn, void *arg);
//  available + reserved of the workspace before time
int umb_billing_store_holdings_before (umb_store_t *store, const char *workspace_id, int64_t time,
                                       int64_t *amount);

//  Checks the ledger: every transaction sums to zero, all entries sum to
//  zero, every kept balance equals its account's entries. 0 with counts, or
//  1 with the first problem in reason; -1 on a storage fault.
typedef struct {
    int64_t transactions;
    int64_t entries;
    int64_t accounts;
} umb_billing_verify_t;
int umb_billing_store_verify (umb_store_t *store, umb_billing_verify_t *counts, char *reason,
                              size_t reason_size);

//  ---------------------------------------------------------------- workspaces

typedef struct {
    char    id [64];
    char    plan [40];          //  "" for the default plan
    int64_t plan_since;
    int64_t first_seen;
} umb_billing_ws_t;

int umb_billing_store_ws_get (umb_store_t *store, const char *id, umb_billing_ws_t *ws);
int umb_billing_store_ws_insert (umb_store_t *store, const umb_billing_ws_t *ws);
int umb_billing_store_ws_set_plan (umb_store_t *store, const char *id, const char *plan,
                                   int64_t since);

//  ---------------------------------------------------------------- reservations

typedef struct {
    char                id [72];
    char                workspace_id [64];
    char                tee [16];
    int64_t             vcpus, memory_mb, seconds;
    int64_t             amount;
    umb_billing_price_t price;      //  as they were when it was made
    char                state [16]; //  open, settled, released, expired
    int64_t             charged;
    int64_t             created_at, expires_at, settled_at;
} umb_billing_reservation_t;

int umb_billing_store_reservation_get (umb_store_t *store, const char *id,
                                       umb_billing_reservation_t *row);
int umb_billing_store_reservation_insert (umb_store_t *store, const umb_billing_reservation_t *row);
//  Moves an open reservation to state; UMB_STORE_NOT_FOUND when it is not open.
int umb_billing_store_reservation_close (umb_store_t *store, const char *id, const char *state,
                                         int64_t charged, int64_t time);
//  Open reservations of the workspace: how many, and their vCPU-seconds
int umb_billing_store_reservations_open (umb_store_t *store, const char *workspace_id,
                                         int64_t *count, int64_t *vcpu_seconds);
//  The ids of up to max open reservations past their expiry at now (caller
//  frees each and the array, which ends with NULL)
char **umb_billing_store_reservations_expired (umb_store_t *store, int64_t now, size_t max);

//  ---------------------------------------------------------------- usage

typedef struct {
    char    id [132];
    char    workspace_id [64];
    char    kind [8];                   //  "cvm" or "run"
    char    tee [16];
    int64_t vcpus, memory_mb, seconds, at;
    bool    paid;
} umb_billing_usage_t;

//  Records usage and adds it to its month's totals. 0, UMB_STORE_CONSTRAINT
//  when a record with its id was recorded before (nothing changes), -1.
int umb_billing_store_usage_insert (umb_store_t *store, const umb_billing_usage_t *usage);

typedef struct {
    int64_t cvm_seconds, vcpu_seconds, memory_mib_seconds, runs;
} umb_billing_meter_t;
//  The month's metered totals of a workspace: by TEE type (indexes of
//  umb_billing_tee_name) and in all
int umb_billing_store_meter (umb_store_t *store, const char *workspace_id, const char *month,
                             umb_billing_meter_t by_tee [UMB_BILLING_TEES],
                             umb_billing_meter_t *total);

void umb_billing_store_test (bool verbose);

#endif
