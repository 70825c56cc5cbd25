//  umb_billing - the billing service
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sodium.h>
#include "umb_billing.h"
#include "umb_billing_plans.h"
#include "umb_billing_store.h"
#include "umb_billing_usage.h"
#include "umb_auth_client.h"
#include "umb_service.h"
#include "umb_worker.h"

#define S_QUEUE_MAX       64
#define S_BATCH_MAX       1000      //  usage records in one billing.usage.record
#define S_LEDGER_MAX      1000
#define S_QUANTITY_MAX    1000000
#define S_GAUGE_MAX       1000000000000LL
#define S_CREDIT_MAX      1000000000000000LL
#define S_SECONDS_MAX     2592000   //  a reservation's seconds: 30 days
#define S_EXPIRE_MAX      31536000
#define S_TICK_MS         1000      //  expired reservations are released this often
#define S_EXPIRE_BATCH    100
#define S_REF_MAX         128

typedef struct {
    umb_runtime_t       *runtime;
    umb_config_t        *config;
    umb_log_t           *log;
    zcert_t             *cert;
    umb_store_t         *store;
    umb_billing_plans_t *plans;
    umb_auth_client_t   *auth;
    umb_service_t       *service;
    umb_worker_t        *worker;        //  auth.workspaces.lookup for the administrators' routes
    umb_client_t        *lookup;        //  ...the worker thread's client of auth
    zhashx_t            *gauges;        //  workspace id -> s_gauges_t, as services report them
    int64_t              welcome;
    int64_t              grace;
    int                  tick;
    char                 failure [256];
} self_t;

//  What services last said they count (-1: nothing said)
typedef struct {
    int64_t computations, concurrent_cvms, members;
} s_gauges_t;

//  The checks services ask for, and the limit each counts against
static const struct {
    const char          *action;
    umb_billing_limit_t  limit;
    bool                 gauge;         //  in_use is the caller's count
} s_actions [] = {
    { "computation.create", UMB_BILLING_LIMIT_COMPUTATIONS,    true },
    { "member.add",         UMB_BILLING_LIMIT_MEMBERS,         true },
    { "cvm.create",         UMB_BILLING_LIMIT_CONCURRENT_CVMS, true },
    { "run.start",          UMB_BILLING_LIMIT_RUNS_PER_MONTH,  false },
    { NULL }
};

//  ---------------------------------------------------------------- helpers

//  The destructor of the hashes' and lists' items: plain allocations
static void
s_free (void **item)
{
    free (*item);
    *item = NULL;
}

static int64_t
s_now (void)
{
    return (int64_t) time (NULL);
}

static int
s_store_fault (umb_req_t *req)
{
    umb_req_set_retryable (req);
    return umb_req_fail (req, 500, "internal", "the store failed; nothing was changed");
}

static void
s_accounts (const char *workspace_id, char *available, char *reserved)
{
    umb_billing_account (available, UMB_BILLING_ACCOUNT_MAX, workspace_id, "available");
    umb_billing_account (reserved, UMB_BILLING_ACCOUNT_MAX, workspace_id, "reserved");
}

//  Makes sure billing knows the workspace, in the open transaction: the
//  first time, its row and the welcome credit. 0, -1.
static int
s_touch (self_t *self, const char *workspace_id, umb_billing_ws_t *ws)
{
    int rc = umb_billing_store_ws_get (self->store, workspace_id, ws);
    if (rc != UMB_STORE_NOT_FOUND)
        return rc;
    memset (ws, 0, sizeof *ws);
    snprintf (ws->id, sizeof ws->id, "%s", workspace_id);
    ws->first_seen = s_now ();
    rc = umb_billing_store_ws_insert (self->store, ws);
    if (rc == 0 && self->welcome > 0) {
        char available [UMB_BILLING_ACCOUNT_MAX], reserved [UMB_BILLING_ACCOUNT_MAX];
        s_accounts (workspace_id, available, reserved);
        umb_billing_leg_t legs [] = { { UMB_BILLING_CREDIT, -self->welcome },
                                      { available, self->welcome } };
        rc = umb_billing_store_post (self->store, "grant", workspace_id, workspace_id,
                                     ws->first_seen, legs, 2, NULL);
    }
    return rc;
}

//  s_touch in a transaction of its own, for operations that only read
//  afterwards: reading first, as that is all it takes once billing knows it
static int
s_know (self_t *self, const char *workspace_id, umb_billing_ws_t *ws)
{
    int rc = umb_billing_store_ws_get (self->store, workspace_id, ws);
    if (rc != UMB_STORE_NOT_FOUND)
        return rc;
    if (umb_store_begin (self->store))
        return -1;
    rc = s_touch (self, workspace_id, ws);
    if (rc == 0)
        return umb_store_commit (self->store);
    umb_store_rollback (self->store);
    return rc;
}

//  The workspace's plan: its subscription's, or the default (also when the
//  plan it had is no longer in the plans file)
static int
s_plan (self_t *self, const umb_billing_ws_t *ws)
{
    int plan = *ws->plan ? umb_billing_plans_find (self->plans, ws->plan) : -1;
    return plan >= 0 ? plan : umb_billing_plans_default (self->plans);
}

static int
s_balances (self_t *self, const char *workspace_id, int64_t *available, int64_t *reserved)
{
    char available_account [UMB_BILLING_ACCOUNT_MAX], reserved_account [UMB_BILLING_ACCOUNT_MAX];
    s_accounts (workspace_id, available_account, reserved_account);
    if (umb_billing_store_balance (self->store, available_account, available))
        return -1;
    return reserved ? umb_billing_store_balance (self->store, reserved_account, reserved) : 0;
}

static void
s_write_limit (umb_w_t *w, int64_t limit)
{
    if (limit == UMB_BILLING_UNLIMITED)
        umb_w_nil (w);
    else
        umb_w_int (w, limit);
}

static void
s_write_limits (self_t *self, umb_w_t *w, int plan)
{
    umb_w_map_begin (w);
    for (size_t i = 0; i < UMB_BILLING_LIMITS; i++) {
        umb_w_key (w, umb_billing_limit_name ((umb_billing_limit_t) i));
        s_write_limit (w, umb_billing_plans_limit (self->plans, plan, (umb_billing_limit_t) i));
    }
    umb_w_map_end (w);
}

static void
s_write_meter_fields (umb_w_t *w, const umb_billing_meter_t *meter)
{
    umb_w_kv_int (w, "vcpu_seconds", meter->vcpu_seconds);
    umb_w_kv_int (w, "memory_mib_seconds", meter->memory_mib_seconds);
    umb_w_kv_int (w, "cvm_seconds", meter->cvm_seconds);
    umb_w_kv_int (w, "runs", meter->runs);
}

//  The month's usage map (billing.get, statements); 0, -1
static int
s_write_usage (self_t *self, umb_w_t *w, const char *workspace_id, const char *month,
               bool with_reservations)
{
    umb_billing_meter_t by_tee [UMB_BILLING_TEES], total;
    int64_t open_count = 0, open_seconds = 0;
    if (umb_billing_store_meter (self->store, workspace_id, month, by_tee, &total)
    ||  (with_reservations
         && umb_billing_store_reservations_open (self->store, workspace_id, &open_count,
                                                 &open_seconds)))
        return -1;
    umb_w_map_begin (w);
    umb_w_kv_str (w, "month", month);
    s_write_meter_fields (w, &total);
    if (with_reservations)
        umb_w_kv_int (w, "open_reservations", open_count);
    umb_w_kv_double (w, "vcpu_hours", (double) total.vcpu_seconds / 3600.0);
    umb_w_str (w, "by_tee");
    umb_w_map_begin (w);
    for (size_t i = 0; i < UMB_BILLING_TEES; i++) {
        umb_w_key (w, umb_billing_tee_name (i));
        umb_w_map_begin (w);
        s_write_meter_fields (w, &by_tee [i]);
        umb_w_map_end (w);
    }
    umb_w_map_end (w);
    umb_w_map_end (w);
    return 0;
}

static void
s_write_gauge (umb_w_t *w, const char *key, int64_t value)
{
    umb_w_key (w, key);
    if (value < 0)
        umb_w_nil (w);
    else
        umb_w_int (w, value);
}

static void
s_write_balance (umb_w_t *w, int64_t available, int64_t reserved)
{
    umb_w_str (w, "balance");
    umb_w_map_begin (w);
    umb_w_kv_int (w, "available", available);
    umb_w_kv_int (w, "reserved", reserved);
    umb_w_kv_int (w, "total", available + reserved);
    umb_w_map_end (w);
}

//  The account object (billing.get, billing.plan.set); 0, or the status
static int
s_reply_account (self_t *self, umb_req_t *req, const char *workspace_id, int status)
{
    umb_billing_ws_t ws;
    int64_t available, reserved;
    if (s_know (self, workspace_id, &ws) || s_balances (self, workspace_id, &available, &reserved))
        return s_store_fault (req);
    int plan = s_plan (self, &ws);
    char month [8];
    umb_billing_month (s_now (), month);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace_id", workspace_id);
    umb_w_kv_str (w, "plan", umb_billing_plans_name (self->plans, (size_t) plan));
    umb_w_kv_int (w, "plan_since", ws.plan_since);
    umb_w_str (w, "limits");
    s_write_limits (self, w, plan);
    umb_w_str (w, "usage");
    if (s_write_usage (self, w, workspace_id, month, true)) {
        umb_w_reset (w);
        return s_store_fault (req);
    }
    s_gauges_t *gauges = zhashx_lookup (self->gauges, workspace_id);
    umb_w_str (w, "reported");
    umb_w_map_begin (w);
    s_write_gauge (w, "computations", gauges ? gauges->computations : -1);
    s_write_gauge (w, "concurrent_cvms", gauges ? gauges->concurrent_cvms : -1);
    s_write_gauge (w, "members", gauges ? gauges->members : -1);
    umb_w_map_end (w);
    s_write_balance (w, available, reserved);
    umb_w_map_end (w);
    return status;
}

static void
s_publish (self_t *self, const char *workspace_id, const char *what)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace_id", workspace_id);
    umb_w_kv_str (w, "what", what);
    umb_w_map_end (w);
    umb_service_publish (self->service, "billing.changed", w);
    umb_w_destroy (&w);
}

//  A refusal: counted, logged, answered
static int
s_refuse (self_t *self, umb_req_t *req, int status, const char *limit, const char *format, ...)
    __attribute__ ((format (printf, 5, 6)));

static int
s_refuse (self_t *self, umb_req_t *req, int status, const char *limit, const char *format, ...)
{
    char reason [400];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    char labels [64];
    snprintf (labels, sizeof labels, "limit=\"%s\"", limit);
    umb_metrics_count (umb_service_metrics (self->service), "umbra_billing_refusals_total",
                       "actions billing refused, by the limit or balance that refused them",
                       labels, 1);
    umb_log_info (self->log, "refused %s: %s", umb_req_op (req), reason);
    return umb_req_fail (req, status, status == 402 ? "insufficient_credit" : "limit_exceeded",
                         "%s", reason);
}

//  Refuses when count + quantity exceeds the plan's limit; 0 when within it
static int
s_limit (self_t *self, umb_req_t *req, int plan, umb_billing_limit_t limit, int64_t count,
         int64_t quantity)
{
    int64_t allowed = umb_billing_plans_limit (self->plans, plan, limit);
    if (allowed == UMB_BILLING_UNLIMITED || count + quantity <= allowed)
        return 0;
    return s_refuse (self, req, 403, umb_billing_limit_name (limit),
                     "plan '%s' allows %lld %s (limit '%s'); the workspace has %lld",
                     umb_billing_plans_name (self->plans, (size_t) plan), (long long) allowed,
                     umb_billing_limit_what (limit), umb_billing_limit_name (limit),
                     (long long) count);
}

//  The month's vCPU-hours: refused once the metered ones reach the plan's
//  allowance (a run's own hours are not known before it ends: its
//  reservation holds their cost, not their count)
static int
s_vcpu_hours (self_t *self, umb_req_t *req, int plan, int64_t used_seconds)
{
    int64_t hours = umb_billing_plans_limit (self->plans, plan, UMB_BILLING_LIMIT_VCPU_HOURS);
    if (hours == UMB_BILLING_UNLIMITED || used_seconds < hours * 3600)
        return 0;
    return s_refuse (self, req, 403, "vcpu_hours_per_month",
                     "plan '%s' allows %lld vCPU-hours this month (limit 'vcpu_hours_per_month');"
                     " the workspace has used %.2f", umb_billing_plans_name (self->plans,
                                                                             (size_t) plan),
                     (long long) hours, (double) used_seconds / 3600.0);
}

//  ---------------------------------------------------------------- services' checks

static void
s_remember (self_t *self, const char *workspace_id, umb_billing_limit_t limit, int64_t in_use)
{
    s_gauges_t *gauges = zhashx_lookup (self->gauges, workspace_id);
    if (!gauges) {
        gauges = malloc (sizeof (s_gauges_t));
        assert (gauges);
        *gauges = (s_gauges_t) { -1, -1, -1 };
        zhashx_insert (self->gauges, workspace_id, gauges);
    }
    if (limit == UMB_BILLING_LIMIT_COMPUTATIONS)
        gauges->computations = in_use;
    else
    if (limit == UMB_BILLING_LIMIT_CONCURRENT_CVMS)
        gauges->concurrent_cvms = in_use;
    else
    if (limit == UMB_BILLING_LIMIT_MEMBERS)
        gauges->members = in_use;
}

static int
s_check (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *workspace_id = umb_msg_str (body, "workspace_id", 64, true);
    const char *action = umb_msg_str (body, "action", 64, true);
    int64_t quantity = umb_msg_int (body, "quantity", INT64_MIN, INT64_MAX, 1, false);
    int64_t in_use = umb_msg_int (body, "in_use", INT64_MIN, INT64_MAX, -1, false);
    bool run = umb_msg_bool (body, "run", false, false);
    if (umb_msg_failed (body))
        return umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    size_t index = 0;
    while (s_actions [index].action && !streq (s_actions [index].action, action))
        index++;
    if (!s_actions [index].action)
        return umb_req_fail (req, 422, "invalid_argument", "action: '%.64s' is not one of "
                             "computation.create, member.add, cvm.create, run.start", action);
    if (!umb_billing_workspace_id_valid (workspace_id))
        return umb_req_fail (req, 422, "invalid_argument", "workspace_id: not a workspace id "
                             "(ws_ and 16 hex digits)");
    if (quantity < 1 || quantity > S_QUANTITY_MAX)
        return umb_req_fail (req, 422, "invalid_argument", "quantity: 1..%d", S_QUANTITY_MAX);
    if (s_actions [index].gauge && (in_use < 0 || in_use > S_GAUGE_MAX))
        return umb_req_fail (req, 422, "invalid_argument", "in_use: required for '%s', "
                             "0..%lld", action, (long long) S_GAUGE_MAX);
    umb_billing_ws_t ws;
    int64_t available;
    umb_billing_meter_t by_tee [UMB_BILLING_TEES], meter;
    char month [8];
    umb_billing_month (s_now (), month);
    if (s_know (self, workspace_id, &ws) || s_balances (self, workspace_id, &available, NULL)
    ||  umb_billing_store_meter (self->store, workspace_id, month, by_tee, &meter))
        return s_store_fault (req);
    int plan = s_plan (self, &ws);
    umb_billing_limit_t limit = s_actions [index].limit;
    int status;
    if (s_actions [index].gauge) {
        s_remember (self, workspace_id, limit, in_use);
        if ((status = s_limit (self, req, plan, limit, in_use, quantity)))
            return status;
    }
    bool cvm = limit == UMB_BILLING_LIMIT_CONCURRENT_CVMS;
    if (!s_actions [index].gauge) {
        int64_t open_count, open_seconds;
        if (umb_billing_store_reservations_open (self->store, workspace_id, &open_count,
                                                 &open_seconds))
            return s_store_fault (req);
        if ((status = s_limit (self, req, plan, limit, meter.runs + open_count, quantity)))
            return status;
    }
    //  A run's CVM was paid for and counted by its reservation
    if (((cvm && !run) || limit == UMB_BILLING_LIMIT_RUNS_PER_MONTH)
    &&  (status = s_vcpu_hours (self, req, plan, meter.vcpu_seconds)))
        return status;
    if (((cvm && !run) || limit == UMB_BILLING_LIMIT_RUNS_PER_MONTH) && available <= 0)
        return s_refuse (self, req, 402, "balance", "the workspace's available credit is %lld "
                         "µcr; add credit first", (long long) available);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_bool (w, "allowed", true);
    umb_w_kv_str (w, "plan", umb_billing_plans_name (self->plans, (size_t) plan));
    umb_w_key (w, "limit");
    s_write_limit (w, umb_billing_plans_limit (self->plans, plan, limit));
    umb_w_kv_int (w, "available", available);
    umb_w_map_end (w);
    return 200;
}

static void
s_write_reservation (umb_w_t *w, const umb_billing_reservation_t *row, int64_t available,
                     bool replayed)
{
    umb_w_map_begin (w);
    umb_w_kv_str (w, "reservation", row->id);
    umb_w_kv_str (w, "workspace_id", row->workspace_id);
    umb_w_kv_str (w, "state", row->state);
    umb_w_kv_int (w, "amount", row->amount);
    umb_w_kv_int (w, "charged", row->charged);
    umb_w_kv_int (w, "released", streq (row->state, "open") ? 0 : row->amount - row->charged);
    umb_w_kv_int (w, "available", available);
    umb_w_kv_int (w, "expires_at", row->expires_at);
    if (replayed)
        umb_w_kv_bool (w, "replayed", true);
    umb_w_map_end (w);
}

static int
s_reserve (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    umb_billing_reservation_t row;
    memset (&row, 0, sizeof row);
    const char *id = umb_msg_str (body, "reservation", 64, true);
    const char *workspace_id = umb_msg_str (body, "workspace_id", 64, true);
    const char *tee = umb_msg_str (body, "tee", 16, true);
    row.vcpus = umb_msg_int (body, "vcpus", 1, 1024, 0, true);
    row.memory_mb = umb_msg_int (body, "memory_mb", 64, 4194304, 0, true);
    row.seconds = umb_msg_int (body, "seconds", 1, S_SECONDS_MAX, 0, true);
    int64_t expires = umb_msg_int (body, "expires_s", 1, S_EXPIRE_MAX, row.seconds, false);
    if (umb_msg_failed (body))
        return umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    const umb_billing_price_t *price = umb_billing_plans_price (self->plans, tee);
    if (!umb_billing_ref_valid (id, 64))
        return umb_req_fail (req, 422, "invalid_argument", "reservation: 1..64 of letters, "
                             "digits and ._:/- starting with a letter or digit");
    if (!umb_billing_workspace_id_valid (workspace_id))
        return umb_req_fail (req, 422, "invalid_argument", "workspace_id: not a workspace id");
    if (!price)
        return umb_req_fail (req, 422, "invalid_argument", "tee: '%.16s' is not a TEE type "
                             "(none, sev-snp, tdx)", tee);
    char available_account [UMB_BILLING_ACCOUNT_MAX], reserved_account [UMB_BILLING_ACCOUNT_MAX];
    s_accounts (workspace_id, available_account, reserved_account);
    int64_t available;
    umb_billing_reservation_t existing;
    int rc = umb_billing_store_reservation_get (self->store, id, &existing);
    if (rc == 0) {
        if (!streq (existing.workspace_id, workspace_id))
            return umb_req_fail (req, 409, "conflict", "reservation '%s' is another workspace's",
                                 id);
        if (s_balances (self, workspace_id, &available, NULL))
            return s_store_fault (req);
        s_write_reservation (umb_req_body_writer (req), &existing, available, true);
        return 200;
    }
    if (rc != UMB_STORE_NOT_FOUND)
        return s_store_fault (req);
    int64_t cost;
    if (umb_billing_cost (price, row.vcpus, row.memory_mb, row.seconds, true, &cost))
        return umb_req_fail (req, 422, "invalid_argument", "the run's cost does not fit");
    umb_billing_ws_t ws;
    umb_billing_meter_t by_tee [UMB_BILLING_TEES], meter;
    int64_t open_count, open_seconds;
    char month [8];
    int64_t now = s_now ();
    umb_billing_month (now, month);
    if (umb_store_begin (self->store))
        return s_store_fault (req);
    if (s_touch (self, workspace_id, &ws) || s_balances (self, workspace_id, &available, NULL)
    ||  umb_billing_store_meter (self->store, workspace_id, month, by_tee, &meter)
    ||  umb_billing_store_reservations_open (self->store, workspace_id, &open_count,
                                             &open_seconds)) {
        umb_store_rollback (self->store);
        return s_store_fault (req);
    }
    int plan = s_plan (self, &ws);
    int status = s_limit (self, req, plan, UMB_BILLING_LIMIT_RUNS_PER_MONTH,
                          meter.runs + open_count, 1);
    if (status == 0)
        status = s_vcpu_hours (self, req, plan, meter.vcpu_seconds);
    if (status == 0 && cost > available)
        status = s_refuse (self, req, 402, "balance", "the run may cost %lld µcr; the "
                           "workspace has %lld available", (long long) cost,
                           (long long) available);
    if (status) {
        //  The workspace's first sight (and welcome credit) stays
        if (umb_store_commit (self->store))
            umb_log_warn (self->log, "cannot record workspace %s", workspace_id);
        return status;
    }
    snprintf (row.id, sizeof row.id, "%s", id);
    snprintf (row.workspace_id, sizeof row.workspace_id, "%s", workspace_id);
    snprintf (row.tee, sizeof row.tee, "%s", tee);
    snprintf (row.state, sizeof row.state, "open");
    row.amount = cost;
    row.price = *price;
    row.created_at = now;
    row.expires_at = now + expires + self->grace;
    umb_billing_leg_t legs [] = { { available_account, -cost }, { reserved_account, cost } };
    rc = umb_billing_store_reservation_insert (self->store, &row);
    if (rc == 0)
        rc = umb_billing_store_post (self->store, "reserve", id, workspace_id, now, legs, 2, NULL);
    if (rc == 0)
        rc = umb_store_commit (self->store);
    else
        umb_store_rollback (self->store);
    if (rc)
        return s_store_fault (req);
    s_write_reservation (umb_req_body_writer (req), &row, available - cost, false);
    return 201;
}

//  Closes an open reservation in the open transaction: kind "settle" charges
//  charge and gives the rest back, "release" and "expire" give it all back
static int
s_close (self_t *self, umb_billing_reservation_t *row, const char *kind, int64_t charge,
         int64_t now)
{
    char available [UMB_BILLING_ACCOUNT_MAX], reserved [UMB_BILLING_ACCOUNT_MAX];
    s_accounts (row->workspace_id, available, reserved);
    umb_billing_leg_t legs [3];
    size_t count = 0;
    legs [count++] = (umb_billing_leg_t) { reserved, -row->amount };
    if (charge > 0)
        legs [count++] = (umb_billing_leg_t) { UMB_BILLING_REVENUE, charge };
    if (row->amount - charge > 0 || count == 1)
        legs [count++] = (umb_billing_leg_t) { available, row->amount - charge };
    const char *state = streq (kind, "settle") ? "settled"
                      : streq (kind, "release") ? "released" : "expired";
    int rc = umb_billing_store_post (self->store, kind, row->id, row->workspace_id, now, legs,
                                     count, NULL);
    if (rc == 0)
        rc = umb_billing_store_reservation_close (self->store, row->id, state, charge, now);
    if (rc == 0) {
        snprintf (row->state, sizeof row->state, "%s", state);
        row->charged = charge;
        row->settled_at = now;
    }
    return rc;
}

static int
s_settle (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *id = umb_msg_str (body, "reservation", 64, true);
    const char *outcome = umb_msg_str (body, "outcome", 16, true);
    int64_t seconds = umb_msg_int (body, "seconds", 0, S_SECONDS_MAX, 0, false);
    if (umb_msg_failed (body))
        return umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    bool failed = streq (outcome, "failed");
    if (!failed && !streq (outcome, "completed") && !streq (outcome, "cancelled"))
        return umb_req_fail (req, 422, "invalid_argument", "outcome: completed, cancelled or "
                             "failed");
    umb_billing_reservation_t row;
    int rc = umb_billing_store_reservation_get (self->store, id, &row);
    if (rc == UMB_STORE_NOT_FOUND)
        return umb_req_fail (req, 404, "not_found", "no reservation '%.64s'", id);
    if (rc)
        return s_store_fault (req);
    int64_t available;
    if (!streq (row.state, "open")) {
        if (s_balances (self, row.workspace_id, &available, NULL))
            return s_store_fault (req);
        s_write_reservation (umb_req_body_writer (req), &row, available, true);
        return 200;
    }
    int64_t charge = 0;
    if (!failed && umb_billing_cost (&row.price, row.vcpus, row.memory_mb,
                                     seconds < row.seconds ? seconds : row.seconds, true, &charge))
        charge = row.amount;
    if (charge > row.amount)
        charge = row.amount;
    int64_t now = s_now ();
    if (umb_store_begin (self->store))
        return s_store_fault (req);
    rc = s_close (self, &row, failed ? "release" : "settle", charge, now);
    if (rc == 0 && !failed) {
        //  The run counts in its month's runs
        umb_billing_usage_t usage = { .kind = "run", .vcpus = row.vcpus,
                                      .memory_mb = row.memory_mb, .seconds = seconds, .at = now,
                                      .paid = true };
        snprintf (usage.id, sizeof usage.id, "run:%s", row.id);
        snprintf (usage.workspace_id, sizeof usage.workspace_id, "%s", row.workspace_id);
        snprintf (usage.tee, sizeof usage.tee, "%s", row.tee);
        rc = umb_billing_store_usage_insert (self->store, &usage);
        if (rc == UMB_STORE_CONSTRAINT)
            rc = 0;
    }
    if (rc == 0)
        rc = s_balances (self, row.workspace_id, &available, NULL);
    if (rc == 0)
        rc = umb_store_commit (self->store);
    else
        umb_store_rollback (self->store);
    if (rc)
        return s_store_fault (req);
    umb_log_info (self->log, "reservation %s %s: %lld of %lld µcr charged", row.id, row.state,
                  (long long) row.charged, (long long) row.amount);
    s_write_reservation (umb_req_body_writer (req), &row, available, false);
    return 200;
}

//  Reads records [index] into usage: 0, or 422 answered
static int
s_usage_read (self_t *self, umb_req_t *req, umb_msg_t *item, size_t index,
              umb_billing_usage_t *usage, int64_t now)
{
    char why [256];
    if (umb_billing_usage_read (item, self->plans, now, usage, why, sizeof why) == 0)
        return 0;
    return umb_req_fail (req, 422, "invalid_argument", "records[%zu]: %s; nothing was recorded",
                         index, why);
}

//  What a delivery of usage records charges one workspace: posted as one
//  transaction (ref "usage:" and the first record's id) in the same SQLite
//  transaction as the records, whose own ids keep each counted once
typedef struct {
    char    workspace_id [64];
    char    first [sizeof ((umb_billing_usage_t *) 0)->id];
    int64_t cost;
    int64_t at;
} s_charge_t;

//  Records one usage record in the open transaction, adding what it costs
//  (when no run pays for it) to its workspace's charge: 0, 1 (a duplicate), -1
static int
s_usage_apply (self_t *self, const umb_billing_usage_t *usage, zhashx_t *charges)
{
    umb_billing_ws_t ws;
    int rc = s_touch (self, usage->workspace_id, &ws);
    if (rc == 0)
        rc = umb_billing_store_usage_insert (self->store, usage);
    if (rc == UMB_STORE_CONSTRAINT)
        return 1;
    int64_t cost = 0;
    if (rc == 0 && !usage->paid
    &&  umb_billing_cost (umb_billing_plans_price (self->plans, usage->tee), usage->vcpus,
                          usage->memory_mb, usage->seconds, false, &cost))
        rc = -1;
    if (rc == 0 && cost > 0) {
        s_charge_t *charge = zhashx_lookup (charges, usage->workspace_id);
        if (!charge) {
            charge = calloc (1, sizeof (s_charge_t));
            assert (charge);
            snprintf (charge->workspace_id, sizeof charge->workspace_id, "%s", usage->workspace_id);
            snprintf (charge->first, sizeof charge->first, "%s", usage->id);
            zhashx_insert (charges, usage->workspace_id, charge);
        }
        charge->cost += cost;
        charge->at = usage->at > charge->at ? usage->at : charge->at;
    }
    return rc ? -1 : 0;
}

static int
s_charge_post (self_t *self, const s_charge_t *charge)
{
    char available [UMB_BILLING_ACCOUNT_MAX], reserved [UMB_BILLING_ACCOUNT_MAX];
    s_accounts (charge->workspace_id, available, reserved);
    char ref [sizeof charge->first + 8];
    snprintf (ref, sizeof ref, "usage:%s", charge->first);
    umb_billing_leg_t legs [] = { { available, -charge->cost }, { UMB_BILLING_REVENUE, charge->cost } };
    return umb_billing_store_post (self->store, "usage", ref, charge->workspace_id, charge->at,
                                   legs, 2, NULL) ? -1 : 0;
}

static int
s_usage_record (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    umb_msg_t *records = umb_msg_array (body, "records", S_BATCH_MAX, true);
    if (umb_msg_failed (body))
        return umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    size_t count = umb_msg_size (records);
    if (count == 0)
        return umb_req_fail (req, 422, "invalid_argument", "records: 1..%d records",
                             S_BATCH_MAX);
    umb_billing_usage_t *usages = calloc (count, sizeof (umb_billing_usage_t));
    assert (usages);
    int64_t now = s_now ();
    int status = 0;
    for (size_t i = 0; i < count && status == 0; i++)
        status = s_usage_read (self, req, umb_msg_at (records, i), i, &usages [i], now);
    int64_t accepted = 0, duplicates = 0;
    zhashx_t *charges = zhashx_new ();
    zhashx_set_destructor (charges, s_free);
    if (status == 0 && umb_store_begin (self->store))
        status = s_store_fault (req);
    else
    if (status == 0) {
        int rc = 0;
        for (size_t i = 0; i < count && rc >= 0; i++) {
            rc = s_usage_apply (self, &usages [i], charges);
            if (rc == 1)
                duplicates++;
            else
            if (rc == 0)
                accepted++;
        }
        for (s_charge_t *charge = zhashx_first (charges); charge && rc >= 0;
             charge = zhashx_next (charges))
            rc = s_charge_post (self, charge);
        if (rc >= 0)
            rc = umb_store_commit (self->store);
        else
            umb_store_rollback (self->store);
        if (rc < 0)
            status = s_store_fault (req);
    }
    zhashx_destroy (&charges);
    free (usages);
    if (status)
        return status;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_int (w, "accepted", accepted);
    umb_w_kv_int (w, "duplicates", duplicates);
    umb_w_map_end (w);
    return 200;
}

//  ---------------------------------------------------------------- users' reads

static int
s_plans_list (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "default_plan", umb_billing_plans_name (self->plans,
                  (size_t) umb_billing_plans_default (self->plans)));
    umb_w_str (w, "plans");
    umb_w_array_begin (w);
    for (size_t i = 0; i < umb_billing_plans_count (self->plans); i++) {
        umb_w_map_begin (w);
        umb_w_kv_str (w, "name", umb_billing_plans_name (self->plans, i));
        umb_w_str (w, "limits");
        s_write_limits (self, w, (int) i);
        umb_w_map_end (w);
    }
    umb_w_array_end (w);
    umb_w_str (w, "prices");
    umb_w_map_begin (w);
    for (size_t i = 0; i < UMB_BILLING_TEES; i++) {
        const umb_billing_price_t *price = umb_billing_plans_price (self->plans,
                                                                    umb_billing_tee_name (i));
        umb_w_key (w, umb_billing_tee_name (i));
        umb_w_map_begin (w);
        umb_w_kv_int (w, "vcpu_hour", price->vcpu_hour);
        umb_w_kv_int (w, "memory_gib_hour", price->memory_gib_hour);
        umb_w_kv_int (w, "run", price->run);
        umb_w_map_end (w);
    }
    umb_w_map_end (w);
    umb_w_map_end (w);
    return 200;
}

static int
s_get (void *state, umb_req_t *req)
{
    return s_reply_account ((self_t *) state, req, umb_req_workspace (req), 200);
}

typedef struct {
    umb_billing_month_t *months;
    size_t               count, size;
} s_months_t;

static void
s_month_item (const umb_billing_month_t *month, void *arg)
{
    s_months_t *list = arg;
    if (list->count == list->size) {
        list->size = list->size ? 2 * list->size : 16;
        list->months = realloc (list->months, list->size * sizeof (umb_billing_month_t));
        assert (list->months);
    }
    list->months [list->count++] = *month;
}

static int
s_statements_list (void *state, umb_req_t *req)
{
    self_t *self = state;
    s_months_t list = { NULL, 0, 0 };
    if (umb_billing_store_months (self->store, umb_req_workspace (req), s_month_item, &list)) {
        free (list.months);
        return s_store_fault (req);
    }
    //  Oldest first from the store; each month opens where the one before closed
    int64_t *opening = calloc (list.count + 1, sizeof (int64_t));
    assert (opening);
    for (size_t i = 0; i < list.count; i++)
        opening [i + 1] = opening [i] + list.months [i].change;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_str (w, "items");
    umb_w_array_begin (w);
    for (size_t i = list.count; i-- > 0;) {
        umb_w_map_begin (w);
        umb_w_kv_str (w, "month", list.months [i].month);
        umb_w_kv_int (w, "opening", opening [i]);
        umb_w_kv_int (w, "credits", list.months [i].credits);
        umb_w_kv_int (w, "charges", list.months [i].charges);
        umb_w_kv_int (w, "closing", opening [i + 1]);
        umb_w_map_end (w);
    }
    umb_w_array_end (w);
    umb_w_map_end (w);
    free (opening);
    free (list.months);
    return 200;
}

//  A statement's lines, copied out of the store's rows
typedef struct {
    zlistx_t *lines;            //  of s_line_t
    int64_t   credits, charges, available, reserved;
} s_statement_t;

typedef struct {
    umb_billing_line_t line;
    char               txn [40], kind [16], ref [UMB_BILLING_REF_MAX + 8];
} s_line_t;

static void
s_statement_line (const umb_billing_line_t *line, void *arg)
{
    s_statement_t *statement = arg;
    s_line_t *copy = calloc (1, sizeof (s_line_t));
    assert (copy);
    copy->line = *line;
    snprintf (copy->txn, sizeof copy->txn, "%s", line->txn ? line->txn : "");
    snprintf (copy->kind, sizeof copy->kind, "%s", line->kind ? line->kind : "");
    snprintf (copy->ref, sizeof copy->ref, "%s", line->ref ? line->ref : "");
    zlistx_add_end (statement->lines, copy);
    if (streq (copy->kind, "credit") || streq (copy->kind, "grant"))
        statement->credits += line->available;
    statement->charges += line->charge;
    statement->available += line->available;
    statement->reserved += line->reserved;
}

static void
s_time_text (int64_t time, char *out, size_t size)
{
    time_t when = (time_t) time;
    struct tm tm;
    gmtime_r (&when, &tm);
    strftime (out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

//  The lines as CSV (their fields need no quoting: ids, kinds and references
//  are plain by construction)
static char *
s_csv (s_statement_t *statement)
{
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    assert (stream);
    fprintf (stream, "time,txn,kind,ref,available,reserved,charge\r\n");
    for (s_line_t *line = zlistx_first (statement->lines); line;
         line = zlistx_next (statement->lines)) {
        char when [32];
        s_time_text (line->line.time, when, sizeof when);
        fprintf (stream, "%s,%s,%s,%s,%lld,%lld,%lld\r\n", when, line->txn, line->kind,
                 line->ref, (long long) line->line.available, (long long) line->line.reserved,
                 (long long) line->line.charge);
    }
    fclose (stream);
    return text;
}

static int
s_statements_get (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *month = umb_msg_str (body, "month", 16, true);
    const char *format = umb_msg_str (body, "format", 8, false);
    if (umb_msg_failed (body))
        return umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    int64_t start, end;
    if (umb_billing_month_bounds (month, &start, &end))
        return umb_req_fail (req, 422, "invalid_argument", "month: expected YYYY-MM, not "
                             "'%.16s'", month);
    if (format && !streq (format, "json") && !streq (format, "csv"))
        return umb_req_fail (req, 422, "invalid_argument", "format: json or csv");
    const char *workspace_id = umb_req_workspace (req);
    umb_billing_ws_t ws;
    int64_t opening;
    s_statement_t statement = { zlistx_new () };
    zlistx_set_destructor (statement.lines, s_free);
    int status = 200;
    if (s_know (self, workspace_id, &ws)
    ||  umb_billing_store_holdings_before (self->store, workspace_id, start, &opening)
    ||  umb_billing_store_lines (self->store, workspace_id, month, s_statement_line, &statement))
        status = s_store_fault (req);
    umb_w_t *w = umb_req_body_writer (req);
    if (status == 200) {
        umb_w_map_begin (w);
        umb_w_kv_str (w, "workspace_id", workspace_id);
        umb_w_kv_str (w, "month", month);
        umb_w_kv_str (w, "plan", umb_billing_plans_name (self->plans, (size_t) s_plan (self, &ws)));
        umb_w_kv_int (w, "opening", opening);
        umb_w_kv_int (w, "credits", statement.credits);
        umb_w_kv_int (w, "charges", statement.charges);
        umb_w_kv_int (w, "reserved_change", statement.reserved);
        umb_w_kv_int (w, "closing", opening + statement.available + statement.reserved);
        umb_w_str (w, "usage");
        if (s_write_usage (self, w, workspace_id, month, false))
            status = s_store_fault (req);
    }
    if (status == 200) {
        umb_w_str (w, "lines");
        umb_w_array_begin (w);
        for (s_line_t *line = zlistx_first (statement.lines); line;
             line = zlistx_next (statement.lines)) {
            umb_w_map_begin (w);
            umb_w_kv_int (w, "time", line->line.time);
            umb_w_kv_str (w, "txn", line->txn);
            umb_w_kv_str (w, "kind", line->kind);
            umb_w_kv_str (w, "ref", line->ref);
            umb_w_kv_int (w, "available", line->line.available);
            umb_w_kv_int (w, "reserved", line->line.reserved);
            umb_w_kv_int (w, "charge", line->line.charge);
            umb_w_map_end (w);
        }
        umb_w_array_end (w);
        if (format && streq (format, "csv")) {
            char *csv = s_csv (&statement);
            umb_w_kv_str (w, "csv", csv);
            free (csv);
        }
        umb_w_map_end (w);
    }
    else
        umb_w_reset (w);
    zlistx_destroy (&statement.lines);
    return status;
}

static void
s_ledger_item (const umb_billing_entry_t *entry, void *arg)
{
    umb_w_t *w = ((void **) arg) [0];
    int64_t *last = ((void **) arg) [1];
    umb_w_map_begin (w);
    umb_w_kv_int (w, "seq", entry->seq);
    umb_w_kv_str (w, "txn", entry->txn);
    umb_w_kv_int (w, "time", entry->time);
    umb_w_kv_str (w, "kind", entry->kind);
    umb_w_kv_str (w, "ref", entry->ref);
    umb_w_kv_str (w, "account", entry->account);
    umb_w_kv_int (w, "amount", entry->amount);
    umb_w_map_end (w);
    *last = entry->seq;
}

static int
s_ledger_list (void *state, umb_req_t *req)
{
    self_t *self = state;
    int64_t after, limit;
    int status = umb_req_page (req, 500, S_LEDGER_MAX, &after, &limit);
    if (status)
        return status;
    umb_w_t *w = umb_req_body_writer (req);
    int64_t last = after;
    void *arg [2] = { w, &last };
    umb_w_map_begin (w);
    umb_w_str (w, "entries");
    umb_w_array_begin (w);
    int rc = umb_billing_store_entries (self->store, umb_req_workspace (req), after, limit,
                                        s_ledger_item, arg);
    umb_w_array_end (w);
    umb_w_kv_int (w, "last", last);
    umb_w_map_end (w);
    if (rc) {
        umb_w_reset (w);
        return s_store_fault (req);
    }
    return 200;
}

//  ---------------------------------------------------------------- administrators

static int
s_admin_only (umb_req_t *req)
{
    if (umb_req_principal (req)->is_admin)
        return 0;
    return umb_req_fail (req, 403, "forbidden", "'%s' is for platform administrators",
                         umb_req_op (req));
}

static int
s_verify (void *state, umb_req_t *req)
{
    self_t *self = state;
    int status = s_admin_only (req);
    if (status)
        return status;
    umb_billing_verify_t counts;
    char reason [256] = "";
    int rc = umb_billing_store_verify (self->store, &counts, reason, sizeof reason);
    if (rc < 0)
        return s_store_fault (req);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_bool (w, "ok", rc == 0);
    umb_w_kv_str (w, "problem", rc ? reason : NULL);
    umb_w_kv_int (w, "transactions", counts.transactions);
    umb_w_kv_int (w, "entries", counts.entries);
    umb_w_kv_int (w, "accounts", counts.accounts);
    umb_w_map_end (w);
    if (rc)
        umb_log_error (self->log, "the ledger does not add up: %s", reason);
    return 200;
}

//  An administrator's change, waiting for auth to say which workspace it is
typedef struct {
    self_t    *self;
    umb_req_t *req;
    char       workspace [130];
    //  out (worker)
    int        status;
    char       workspace_id [64];
    char       reason [256];
} s_job_t;

static void
s_lookup_work (void *arg)
{
    s_job_t *job = arg;
    self_t *self = job->self;
    if (!self->lookup)
        self->lookup = umb_runtime_client (self->runtime, "auth", self->cert);
    if (!self->lookup) {
        job->status = 503;
        snprintf (job->reason, sizeof job->reason, "no client of auth could be made");
        return;
    }
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace", job->workspace);
    umb_w_map_end (w);
    umb_reply_t *reply = umb_client_callw (self->lookup, "auth.workspaces.lookup", NULL, w,
                                           (int) umb_config_int (self->config, "mesh.timeout_ms"),
                                           NULL);
    umb_w_destroy (&w);
    const char *id = umb_reply_ok (reply)
                   ? umb_msg_str (umb_reply_body (reply), "id", 63, true) : NULL;
    if (id && !umb_msg_failed (umb_reply_body (reply)))
        snprintf (job->workspace_id, sizeof job->workspace_id, "%s", id);
    else {
        int status = umb_reply_status (reply);
        job->status = status == 404 ? 404 : 503;
        snprintf (job->reason, sizeof job->reason, "%s", status == 404
                  ? "no such workspace" : "auth cannot say which workspace that is");
        if (status != 404)
            umb_log_warn (self->log, "auth.workspaces.lookup: %d %s", status,
                          umb_reply_error (reply) ? umb_reply_error (reply) : "");
    }
    umb_reply_destroy (&reply);
}

static int
s_plan_set_finish (self_t *self, umb_req_t *req, const char *workspace_id)
{
    const char *plan = umb_msg_str (umb_req_body (req), "plan", 40, true);
    umb_billing_ws_t ws;
    if (umb_store_begin (self->store))
        return s_store_fault (req);
    int rc = s_touch (self, workspace_id, &ws);
    if (rc == 0)
        rc = umb_billing_store_ws_set_plan (self->store, workspace_id, plan, s_now ());
    if (rc == 0)
        rc = umb_store_commit (self->store);
    else
        umb_store_rollback (self->store);
    if (rc)
        return s_store_fault (req);
    umb_log_info (self->log, "workspace %s is on plan '%s' (set by %s)", workspace_id, plan,
                  umb_req_principal (req)->subject);
    s_publish (self, workspace_id, "plan");
    return s_reply_account (self, req, workspace_id, 200);
}

static int
s_credits_finish (self_t *self, umb_req_t *req, const char *workspace_id)
{
    umb_msg_t *body = umb_req_body (req);
    int64_t amount = umb_msg_int (body, "amount", 1, S_CREDIT_MAX, 0, true);
    const char *reference = umb_msg_str (body, "reference", S_REF_MAX, true);
    char ref [UMB_BILLING_REF_MAX];
    snprintf (ref, sizeof ref, "%s:%s", workspace_id, reference);
    char txn [40];
    int64_t before = 0, available, reserved;
    int rc = umb_billing_store_txn_find (self->store, "credit", ref, txn, &before);
    int status = 201;
    if (rc == 0 && before != amount)
        return umb_req_fail (req, 409, "duplicate_reference", "reference '%s' already added "
                             "%lld µcr to this workspace", reference, (long long) before);
    if (rc == 0)
        status = 200;
    else
    if (rc != UMB_STORE_NOT_FOUND)
        return s_store_fault (req);
    else {
        char available_account [UMB_BILLING_ACCOUNT_MAX], reserved_account [UMB_BILLING_ACCOUNT_MAX];
        s_accounts (workspace_id, available_account, reserved_account);
        umb_billing_leg_t legs [] = { { UMB_BILLING_CREDIT, -amount }, { available_account, amount } };
        umb_billing_ws_t ws;
        if (umb_store_begin (self->store))
            return s_store_fault (req);
        rc = s_touch (self, workspace_id, &ws);
        if (rc == 0)
            rc = umb_billing_store_post (self->store, "credit", ref, workspace_id, s_now (), legs,
                                         2, txn);
        if (rc == 0)
            rc = umb_store_commit (self->store);
        else
            umb_store_rollback (self->store);
        if (rc)
            return s_store_fault (req);
        umb_log_info (self->log, "credit of %lld µcr to workspace %s (reference %s, by %s)",
                      (long long) amount, workspace_id, reference,
                      umb_req_principal (req)->subject);
        s_publish (self, workspace_id, "credit");
    }
    if (s_balances (self, workspace_id, &available, &reserved))
        return s_store_fault (req);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "txn", txn);
    umb_w_kv_str (w, "workspace_id", workspace_id);
    umb_w_kv_int (w, "amount", amount);
    umb_w_kv_str (w, "reference", reference);
    s_write_balance (w, available, reserved);
    if (status == 200)
        umb_w_kv_bool (w, "replayed", true);
    umb_w_map_end (w);
    return status;
}

static void
s_on_job (void *arg, void *job_arg, bool cancelled)
{
    self_t *self = arg;
    s_job_t *job = job_arg;
    int status;
    if (cancelled)
        status = umb_req_fail (job->req, 503, "unavailable", "the service is stopping");
    else
    if (job->status == 404)
        status = umb_req_fail (job->req, 404, "not_found", "no workspace '%.64s'",
                               job->workspace);
    else
    if (job->status) {
        umb_req_set_retryable (job->req);
        status = umb_req_fail (job->req, job->status, NULL, "%s", job->reason);
    }
    else
    if (streq (umb_req_op (job->req), "billing.plan.set"))
        status = s_plan_set_finish (self, job->req, job->workspace_id);
    else
        status = s_credits_finish (self, job->req, job->workspace_id);
    umb_service_reply (self->service, &job->req, status);
    free (job);
}

//  Defers an administrator's request until auth names its workspace
static int
s_admin_later (self_t *self, umb_req_t *req, const char *workspace)
{
    s_job_t *job = calloc (1, sizeof (s_job_t));
    assert (job);
    job->self = self;
    snprintf (job->workspace, sizeof job->workspace, "%s", workspace);
    if (umb_worker_submit (self->worker, job)) {
        free (job);
        umb_req_set_retryable (req);
        return umb_req_fail (req, 503, "unavailable", "too many requests are waiting; try again");
    }
    job->req = umb_req_defer (req);
    return UMB_DEFERRED;
}

static int
s_plan_set (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *workspace = umb_msg_str (body, "workspace", 128, true);
    const char *plan = umb_msg_str (body, "plan", 40, true);
    int status = s_admin_only (req);
    if (status)
        return status;
    if (umb_msg_failed (body))
        return umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    if (umb_billing_plans_find (self->plans, plan) < 0) {
        char names [512] = "";
        for (size_t i = 0; i < umb_billing_plans_count (self->plans); i++)
            snprintf (names + strlen (names), sizeof names - strlen (names), "%s%s",
                      i ? ", " : "", umb_billing_plans_name (self->plans, i));
        return umb_req_fail (req, 422, "invalid_argument", "plan: '%.40s' is not one of %s",
                             plan, names);
    }
    return s_admin_later (self, req, workspace);
}

static int
s_credits_add (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *workspace = umb_msg_str (body, "workspace", 128, true);
    int64_t amount = umb_msg_int (body, "amount", INT64_MIN, INT64_MAX, 0, true);
    const char *reference = umb_msg_str (body, "reference", 256, true);
    int status = s_admin_only (req);
    if (status)
        return status;
    if (umb_msg_failed (body))
        return umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    if (amount < 1 || amount > S_CREDIT_MAX)
        return umb_req_fail (req, 422, "invalid_argument", "amount: 1..%lld micro-credits",
                             (long long) S_CREDIT_MAX);
    if (!umb_billing_ref_valid (reference, S_REF_MAX))
        return umb_req_fail (req, 422, "invalid_argument", "reference: 1..%d of letters, digits "
                             "and ._:/- starting with a letter or digit", S_REF_MAX);
    return s_admin_later (self, req, workspace);
}

//  The contract is proto/msgpack/billing.md
static const umb_route_t s_routes [] = {
    { "billing.plans.list",      s_plans_list,      UMB_ACCESS_USER, NULL },
    { "billing.get",             s_get,             UMB_ACCESS_USER, "billing.read" },
    { "billing.statements.list", s_statements_list, UMB_ACCESS_USER, "billing.read" },
    { "billing.statements.get",  s_statements_get,  UMB_ACCESS_USER, "billing.read" },
    { "billing.ledger.list",     s_ledger_list,     UMB_ACCESS_USER, "billing.read" },
    { "billing.plan.set",        s_plan_set,        UMB_ACCESS_USER, NULL },
    { "billing.credits.add",     s_credits_add,     UMB_ACCESS_USER, NULL },
    { "billing.verify",          s_verify,          UMB_ACCESS_USER, NULL },
    { "billing.check",           s_check,           UMB_ACCESS_MESH, NULL },
    { "billing.reserve",         s_reserve,         UMB_ACCESS_MESH, NULL },
    { "billing.settle",          s_settle,          UMB_ACCESS_MESH, NULL },
    { "billing.usage.record",    s_usage_record,    UMB_ACCESS_MESH, NULL },
    { NULL }
};

//  ---------------------------------------------------------------- expiry

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    self_t *self = arg;
    int64_t now = s_now ();
    char **ids = umb_billing_store_reservations_expired (self->store, now, S_EXPIRE_BATCH);
    for (size_t i = 0; ids && ids [i]; i++) {
        umb_billing_reservation_t row;
        int rc = umb_billing_store_reservation_get (self->store, ids [i], &row);
        if (rc == 0 && umb_store_begin (self->store) == 0) {
            rc = s_close (self, &row, "expire", 0, now);
            if (rc == 0)
                rc = umb_store_commit (self->store);
            else
                umb_store_rollback (self->store);
        }
        if (rc == 0)
            umb_log_warn (self->log, "reservation %s of workspace %s expired unsettled: %lld µcr "
                          "released", row.id, row.workspace_id, (long long) row.amount);
        free (ids [i]);
    }
    free (ids);
    (void) loop;
    (void) timer_id;
    return 0;
}

//  ---------------------------------------------------------------- lifecycle

static void s_fail (self_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_fail (self_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->failure, sizeof self->failure, format, args);
    va_end (args);
    umb_log_error (self->log, "cannot start: %s", self->failure);
}

static self_t *
s_self_new (umb_runtime_t *runtime)
{
    self_t *self = calloc (1, sizeof (self_t));
    assert (self);
    self->runtime = runtime;
    self->config = umb_runtime_config (runtime);
    self->log = umb_log_dup (umb_runtime_log (runtime), "billing");
    self->gauges = zhashx_new ();
    zhashx_set_destructor (self->gauges, s_free);
    self->welcome = umb_config_int (self->config, "billing.welcome_credit");
    self->grace = umb_config_int (self->config, "billing.reservation_grace_s");
    char *dir = NULL, *db_path = NULL;
    char reason [600];
    if (sodium_init () < 0) {
        s_fail (self, "libsodium cannot start");
        goto done;
    }
    self->plans = umb_billing_plans_load (umb_config_str (self->config, "billing.plans"),
                                          umb_config_str (self->config, "billing.default_plan"),
                                          reason, sizeof reason);
    if (!self->plans) {
        s_fail (self, "%s", reason);
        goto done;
    }
    dir = zsys_sprintf ("%s/billing", umb_runtime_state_dir (runtime));
    if (mkdir (dir, 0700) && errno != EEXIST) {
        s_fail (self, "cannot create %s: %s", dir, strerror (errno));
        goto done;
    }
    self->cert = umb_runtime_identity (runtime, "billing");
    if (!self->cert) {
        s_fail (self, "cannot load the CURVE identity 'billing' from %s",
                umb_runtime_keys_dir (runtime));
        goto done;
    }
    db_path = umb_runtime_db_path (runtime, "billing", dir);
    self->store = umb_billing_store_open (db_path, self->log);
    if (!self->store) {
        s_fail (self, "cannot open the database %s", db_path);
        goto done;
    }
    self->auth = umb_auth_client_new (runtime, self->cert);
    if (!self->auth) {
        s_fail (self, "cannot make a client of the auth service");
        goto done;
    }
    self->service = umb_auth_client_service (self->auth, runtime, "billing", self->cert,
                                             s_routes, self, self->log, reason, sizeof reason);
    if (!self->service) {
        s_fail (self, "%s", reason);
        goto done;
    }
    self->worker = umb_worker_new (umb_service_loop (self->service), s_lookup_work, s_on_job,
                                   self, S_QUEUE_MAX);
    self->tick = zloop_timer (umb_service_loop (self->service), S_TICK_MS, 0, s_on_tick, self);
    umb_log_info (self->log, "billing on %s (default plan '%s')",
                  umb_service_endpoint (self->service),
                  umb_billing_plans_name (self->plans,
                                          (size_t) umb_billing_plans_default (self->plans)));
done:
    if (*self->failure) {
        umb_auth_client_destroy (&self->auth);
        umb_service_destroy (&self->service);
    }
    free (dir);
    free (db_path);
    return self;
}

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    umb_worker_destroy (&self->worker);
    umb_client_destroy (&self->lookup);
    umb_auth_client_destroy (&self->auth);
    umb_service_destroy (&self->service);
    umb_store_destroy (&self->store);
    umb_billing_plans_destroy (&self->plans);
    zhashx_destroy (&self->gauges);
    zcert_destroy (&self->cert);
    umb_log_destroy (&self->log);
    free (self);
    *self_p = NULL;
}

static void
s_on_command (void *arg, zsock_t *pipe, const char *command)
{
    self_t *self = arg;
    umb_log_warn (self->log, "unknown command on the pipe: %.32s", command);
    (void) pipe;
}

void
umb_billing_actor (zsock_t *pipe, void *args)
{
    self_t *self = s_self_new ((umb_runtime_t *) args);
    zsock_signal (pipe, 0);
    umb_service_serve (self->service, pipe, self->failure, s_on_command, self);
    s_self_destroy (&self);
}
