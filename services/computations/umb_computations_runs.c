//  umb_computations_runs - runs of computations: started by the owner, a CVM
//  from backends with the manifest, the agent's events followed and stored,
//  deadlines, cleanup (proto/msgpack/computations.md, "Runs")
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>
#include "umb_computations_private.h"
#include "umb_computations_store.h"
#include "umb_run.h"
#include "umb_run_follower.h"

#define S_RUN_LIST_MAX    500
#define S_EVENTS_MAX      1000
#define S_TTL_MARGIN_S    300       //  the CVM outlives the run's deadlines by this much
#define S_TTL_MAX_S       604800    //  backends' default backends.max_ttl_s
#define S_SETTLE_TICKS    10        //  unsettled runs are settled again this often (ticks)

typedef umb_computations_t self_t;

//  A live run the service follows
typedef struct {
    self_t   *self;
    char      id [40];
    zactor_t *follower;             //  while it has a CVM and is not final
    bool      waiting_for_host;     //  said so in an event already
    int       retry_timer;          //  asking backends again for a host (0: not waiting)
} s_live_t;

//  A job for the worker: the CVM's side of a run
typedef struct {
    umb_cmp_job_kind_t kind;
    self_t  *self;
    char     run [40];
    char     cvm [40];
    char     workspace [64];
    char     created_by [72];
    char     label [96];
    char     tee [16];
    int64_t  vcpus, memory_mb, ttl_s;
    char    *manifest;
    zactor_t *follower;             //  REAP: stopped and waited for off the loop
    umb_req_t *req;                 //  RESERVE: the start, waiting for billing
    umb_run_row_t row;              //  ...the run it starts (its manifest is the job's)
    int64_t  version;               //  ...of the computation
    char     outcome [16];          //  SETTLE: completed, cancelled or failed
    int64_t  seconds;               //  ...how long the run held its CVM
    umb_billing_verdict_t verdict;  //  RESERVE, SETTLE: billing's answer
    //  out
    int      rc;
    bool     no_host;               //  CREATE: backends had no host free for it (409 no_host)
    char     reason [512];
    char     agent_endpoint [128];
    char     attest_endpoint [128];
} s_job_t;

//  A runs.events request waiting for the run's next event
typedef struct {
    self_t    *self;
    char       run [40];
    int64_t    after, max;
    umb_req_t *req;
    int        timer;
} s_waiter_t;

static void s_act (self_t *self, umb_run_row_t *run, unsigned actions);
static void s_wake (self_t *self, const char *run_id);

//  ---------------------------------------------------------------- deadlines

//  The run's algorithm limit, from the manifest it started with
static int64_t
s_run_timeout (const umb_run_row_t *run)
{
    json_t *root = run->manifest ? json_loads (run->manifest, 0, NULL) : NULL;
    int64_t timeout = json_integer_value (json_object_get (root, "run_timeout_s"));
    json_decref (root);
    return timeout > 0 ? timeout : 3600;
}

static int64_t
s_deadline (self_t *self, const umb_run_row_t *run, umb_run_state_t state)
{
    int64_t now = umb_computations_now ();
    switch (state) {
        case UMB_RUN_PENDING:
        case UMB_RUN_PROVISIONING:
            return now + umb_config_int (self->config, "computations.provision_timeout_s");
        case UMB_RUN_AWAITING_ASSETS:
            return now + umb_config_int (self->config, "computations.assets_timeout_s");
        case UMB_RUN_RUNNING:
            return now + s_run_timeout (run) + 60;
        case UMB_RUN_RESULTS_READY:
            return now + umb_config_int (self->config, "computations.results_timeout_s");
        default:
            return 0;
    }
}

//  Why a run past its deadline fails
static const char *
s_late (umb_run_state_t state)
{
    switch (state) {
        case UMB_RUN_PENDING:
        case UMB_RUN_PROVISIONING:     return "the CVM was not ready in time (provision timeout)";
        case UMB_RUN_AWAITING_ASSETS:  return "the assets were not all uploaded in time (assets timeout)";
        case UMB_RUN_RUNNING:          return "the algorithm did not finish in time (run timeout)";
        default:                       return "the results were not all fetched in time (results timeout)";
    }
}

//  ---------------------------------------------------------------- the state machine

//  Applies event to run (loaded, with its manifest when the next state's
//  deadline needs it) in the open transaction: the new state, reason,
//  deadline, and a state event. Returns the actions to do once committed, or
//  -1 when the table refuses the event (nothing changed).
static int
s_step (self_t *self, umb_run_row_t *run, umb_run_event_t event, const char *why)
{
    int state = umb_run_state_parse (run->state);
    umb_run_step_t step;
    if (state < 0 || umb_run_next ((umb_run_state_t) state, event, &step, NULL, 0))
        return -1;
    char message [700];
    snprintf (message, sizeof message, "%s -> %s%s%s", run->state, umb_run_state_name (step.next),
              why ? ": " : "", why ? why : "");
    snprintf (run->state, sizeof run->state, "%s", umb_run_state_name (step.next));
    if (why && (step.next == UMB_RUN_FAILED || step.next == UMB_RUN_CANCELLED))
        snprintf (run->reason, sizeof run->reason, "%s", why);
    run->deadline_at = s_deadline (self, run, step.next);
    run->updated_at = umb_computations_now ();
    if (umb_computations_store_run_event (self->store, run, "computations", "state", run->state,
                                          message, run->updated_at)
    ||  umb_computations_store_run_update (self->store, run))
        return -2;
    umb_log_info (self->log, "run %s: %s", run->id, message);
    return (int) step.actions;
}

//  Runs fn in one transaction and the actions it asks for after the commit.
//  fn returns the actions, or -1 (nothing to do), or -2 (a storage fault).
static int
s_commit (self_t *self, umb_run_row_t *run, int actions)
{
    if (actions == -2) {
        umb_store_rollback (self->store);
        return -1;
    }
    if (umb_store_commit (self->store))
        return -1;
    s_wake (self, run->id);
    if (actions > 0)
        s_act (self, run, (unsigned) actions);
    return 0;
}

//  ---------------------------------------------------------------- the worker's side

static umb_client_t *
s_backends (self_t *self)
{
    if (!self->backends_client)
        self->backends_client = umb_runtime_client (self->runtime, "backends", self->cert);
    return self->backends_client;
}

void
umb_computations_runs_work (void *arg)
{
    s_job_t *job = arg;
    self_t *self = job->self;
    if (job->kind == UMB_CMP_JOB_REAP) {
        zactor_destroy (&job->follower);
        return;
    }
    if (job->kind == UMB_CMP_JOB_RESERVE) {
        //  The run's most: its CVM for as long as backends may keep it
        umb_billing_client_reserve (self->billing, job->run, job->workspace, job->row.tee,
                                    job->row.vcpus, job->row.memory_mb, job->row.ttl_s,
                                    job->row.ttl_s, &job->verdict);
        return;
    }
    if (job->kind == UMB_CMP_JOB_SETTLE) {
        umb_billing_client_settle (self->billing, job->run, job->outcome, job->seconds,
                                   &job->verdict);
        return;
    }
    //  The cleanup worker's thread has a client of its own for each job
    bool cleanup = job->kind == UMB_CMP_JOB_CVM_DESTROY;
    umb_client_t *own = cleanup ? umb_runtime_client (self->runtime, "backends", self->cert) : NULL;
    umb_client_t *client = cleanup ? own : s_backends (self);
    if (!client) {
        job->rc = -1;
        snprintf (job->reason, sizeof job->reason, "no client of backends could be made");
        return;
    }
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    const char *op = "backends.run.get";
    if (job->kind == UMB_CMP_JOB_CVM_CREATE) {
        op = "backends.run.create";
        umb_w_kv_str (w, "workspace_id", job->workspace);
        umb_w_kv_str (w, "created_by", job->created_by);
        umb_w_kv_str (w, "computation", job->label);
        umb_w_kv_str (w, "tee", job->tee);
        umb_w_kv_int (w, "vcpus", job->vcpus);
        umb_w_kv_int (w, "memory_mb", job->memory_mb);
        umb_w_kv_int (w, "ttl_s", job->ttl_s);
        umb_w_kv_str (w, "manifest", job->manifest);
    }
    else {
        umb_w_kv_str (w, "cvm", job->cvm);
        if (job->kind == UMB_CMP_JOB_CVM_DESTROY) {
            op = "backends.run.destroy";
            umb_w_kv_str (w, "reason", "the run ended");
        }
    }
    umb_w_map_end (w);
    //  Creating a VM takes longer than an ordinary call
    int timeout = (int) umb_config_int (self->config, "mesh.timeout_ms")
                * (job->kind == UMB_CMP_JOB_CVM_GET ? 1 : 12);
    umb_reply_t *reply = umb_client_callw (client, op, NULL, w, timeout, NULL);
    umb_w_destroy (&w);
    //  Destroyed already is as good as destroyed
    job->rc = umb_reply_ok (reply)
           || (job->kind == UMB_CMP_JOB_CVM_DESTROY && umb_reply_status (reply) == 409) ? 0 : -1;
    if (job->rc) {
        snprintf (job->reason, sizeof job->reason, "%s: %d %s", op, umb_reply_status (reply),
                  umb_reply_error (reply) ? umb_reply_error (reply) : "");
        job->no_host = umb_reply_status (reply) == 409 && umb_reply_code (reply)
                    && streq (umb_reply_code (reply), "no_host");
    }
    else {
        umb_msg_t *body = umb_reply_body (reply);
        const char *id = umb_msg_str (body, "id", 39, false);
        const char *agent = umb_msg_str (body, "agent_endpoint", 127, false);
        const char *attest = umb_msg_str (body, "attest_endpoint", 127, false);
        if (id && job->kind == UMB_CMP_JOB_CVM_CREATE)
            snprintf (job->cvm, sizeof job->cvm, "%s", id);
        snprintf (job->agent_endpoint, sizeof job->agent_endpoint, "%s", agent ? agent : "");
        snprintf (job->attest_endpoint, sizeof job->attest_endpoint, "%s", attest ? attest : "");
    }
    umb_reply_destroy (&reply);
    umb_client_destroy (&own);
}

static s_job_t *
s_job_new (self_t *self, umb_cmp_job_kind_t kind, const umb_run_row_t *run)
{
    s_job_t *job = calloc (1, sizeof (s_job_t));
    assert (job);
    job->kind = kind;
    job->self = self;
    snprintf (job->run, sizeof job->run, "%s", run->id);
    snprintf (job->cvm, sizeof job->cvm, "%s", run->cvm);
    return job;
}

static void
s_job_destroy (s_job_t **job_p)
{
    s_job_t *job = *job_p;
    if (job) {
        zactor_destroy (&job->follower);
        free (job->manifest);
        umb_computations_store_run_clear (&job->row);
        free (job);
        *job_p = NULL;
    }
}

static void
s_submit (self_t *self, s_job_t *job)
{
    if (umb_computations_submit (self, job)) {
        //  The queue is full: done inline rather than lost
        umb_log_warn (self->log, "the worker queue is full; a run's job runs on the loop");
        umb_computations_runs_work (job);
        umb_computations_runs_done (self, job, false);
    }
}

//  ---------------------------------------------------------------- following

static int s_on_follower (zloop_t *loop, zsock_t *sock, void *arg);

static s_live_t *
s_live (self_t *self, const char *run_id)
{
    s_live_t *live = zhashx_lookup (self->runs, run_id);
    if (!live) {
        live = calloc (1, sizeof (s_live_t));
        assert (live);
        live->self = self;
        snprintf (live->id, sizeof live->id, "%s", run_id);
        zhashx_insert (self->runs, run_id, live);
    }
    return live;
}

static void
s_follow (self_t *self, const umb_run_row_t *run)
{
    s_live_t *live = s_live (self, run->id);
    if (live->follower || !*run->cvm)
        return;
    live->follower = umb_run_follower_new (self->runtime, self->cert, run->cvm, run->backend_after);
    if (live->follower)
        zloop_reader (umb_service_loop (self->service), zactor_sock (live->follower), s_on_follower,
                      live);
}

//  Stops following: the follower goes at the next tick (never inside its own
//  reader's callback)
static void
s_unfollow (self_t *self, const char *run_id)
{
    s_live_t *live = zhashx_lookup (self->runs, run_id);
    if (live && live->follower)
        zloop_reader_end (umb_service_loop (self->service), zactor_sock (live->follower));
    if (live)
        live->id [0] = 0;           //  marked: gone at the next tick
}

//  ---------------------------------------------------------------- billing

//  Settles the reservation of a run that ended (again, until billing has
//  it: the tick retries those left reserved)
static void
s_settle (self_t *self, const umb_run_row_t *run)
{
    int state = umb_run_state_parse (run->state);
    if (!streq (run->billing, "reserved") || !umb_run_final ((umb_run_state_t) state)
    ||  zhashx_lookup (self->settling, run->id))
        return;
    s_job_t *job = s_job_new (self, UMB_CMP_JOB_SETTLE, run);
    snprintf (job->outcome, sizeof job->outcome, "%s", state == UMB_RUN_COMPLETED ? "completed"
                                                    : state == UMB_RUN_CANCELLED ? "cancelled"
                                                    : "failed");
    job->seconds = run->updated_at > run->created_at ? run->updated_at - run->created_at : 0;
    zhashx_insert (self->settling, run->id, (void *) "");
    if (umb_computations_submit (self, job)) {
        //  Tried again at a tick
        zhashx_delete (self->settling, run->id);
        s_job_destroy (&job);
    }
}

static void
s_settled (self_t *self, s_job_t *job)
{
    zhashx_delete (self->settling, job->run);
    if (job->verdict.status) {
        umb_log_warn (self->log, "run %s: the reservation is not settled yet (%s); trying again",
                      job->run, job->verdict.reason);
        return;
    }
    if (umb_computations_store_run_billing (self->store, job->run, "settled"))
        umb_log_warn (self->log, "run %s: settled, but the run does not say so yet", job->run);
    else
        umb_log_info (self->log, "run %s: %s, %lld µcr charged%s", job->run, job->outcome,
                      (long long) job->verdict.amount, job->verdict.replayed ? " (before)" : "");
}

static void
s_settle_each (umb_run_row_t *run, void *arg)
{
    s_settle ((self_t *) arg, run);
}

static int s_begin (self_t *self, umb_req_t *req, umb_run_row_t *run, int64_t version);

//  Billing answered a start's reservation: the run begins, or the start is
//  refused with billing's reason (nothing was written)
static void
s_reserved (self_t *self, s_job_t *job)
{
    umb_req_t *req = job->req;
    int status;
    if (job->verdict.status) {
        if (job->verdict.status == 503)
            umb_req_set_retryable (req);
        status = umb_req_fail (req, job->verdict.status, job->verdict.code, "%s",
                               job->verdict.reason);
    }
    else
    if (umb_computations_runs_live (self, job->row.computation_id))
        //  Another start of it was quicker
        status = umb_req_fail (req, 409, "run_active", "computation '%s' has a run that is not "
                               "over; stop it first", job->row.computation_id);
    else {
        snprintf (job->row.billing, sizeof job->row.billing, "reserved");
        status = s_begin (self, req, &job->row, job->version);
    }
    if (status >= 300 && !job->verdict.status) {
        //  Reserved for nothing: given back
        snprintf (job->row.billing, sizeof job->row.billing, "reserved");
        snprintf (job->row.state, sizeof job->row.state, "Failed");
        job->row.updated_at = job->row.created_at;
        s_settle (self, &job->row);
    }
    umb_service_reply (self->service, &req, status);
}

static void
s_act (self_t *self, umb_run_row_t *run, unsigned actions)
{
    if (actions & UMB_RUN_DO_CREATE_CVM) {
        s_job_t *job = s_job_new (self, UMB_CMP_JOB_CVM_CREATE, run);
        snprintf (job->workspace, sizeof job->workspace, "%s", run->workspace_id);
        snprintf (job->created_by, sizeof job->created_by, "%s", run->started_by);
        snprintf (job->label, sizeof job->label, "%s/%s", run->computation_id, run->id);
        snprintf (job->tee, sizeof job->tee, "%s", run->tee);
        job->vcpus = run->vcpus;
        job->memory_mb = run->memory_mb;
        job->ttl_s = run->ttl_s;
        job->manifest = strdup (run->manifest ? run->manifest : "");
        s_live (self, run->id);
        s_submit (self, job);
    }
    if (actions & UMB_RUN_DO_ENDPOINTS)
        s_submit (self, s_job_new (self, UMB_CMP_JOB_CVM_GET, run));
    if (actions & UMB_RUN_DO_CLEANUP) {
        s_unfollow (self, run->id);
        if (*run->cvm)
            s_submit (self, s_job_new (self, UMB_CMP_JOB_CVM_DESTROY, run));
        s_settle (self, run);
    }
}

//  What one backends event means for the run, or -1
static int
s_meaning (const char *source, const char *type, const char *state)
{
    if (!streq (type, "state"))
        return -1;
    if (streq (source, "agent"))
        return umb_run_event_of_agent_state (state);
    if (streq (state, "Running"))
        return UMB_RUN_EV_CVM_READY;
    if (streq (state, "Failed") || streq (state, "Destroyed"))
        return UMB_RUN_EV_FAIL;
    return -1;
}

//  A page of the CVM's events: stored with the run's state changes in one
//  transaction, then acknowledged (AFTER)
static void
s_on_events (self_t *self, s_live_t *live, zframe_t *frame)
{
    umb_run_row_t run;
    if (umb_computations_store_run_get (self->store, NULL, live->id, &run)) {
        umb_log_error (self->log, "run %s: cannot be read; its events wait", live->id);
        return;
    }
    char *error = NULL;
    umb_msg_t *body = umb_msg_decode (zframe_data (frame), zframe_size (frame), &error);
    umb_msg_t *events = body ? umb_msg_array (body, "events", 100000, true) : NULL;
    int64_t acked = run.backend_after;
    if (!events || umb_store_begin (self->store)) {
        umb_log_warn (self->log, "run %s: a page of events is unreadable: %s", run.id,
                      error ? error : umb_msg_error (body));
        free (error);
        umb_msg_destroy (&body);
        umb_computations_store_run_clear (&run);
        zstr_sendx (live->follower, "AFTER", "0", NULL);
        return;
    }
    unsigned actions = 0;
    int rc = 0;
    for (size_t i = 0; i < umb_msg_size (events) && rc == 0; i++) {
        umb_msg_t *event = umb_msg_at (events, i);
        int64_t seq = umb_msg_int (event, "seq", 1, INT64_MAX, 0, true);
        int64_t time = umb_msg_int (event, "time", 0, INT64_MAX, 0, false);
        const char *source = umb_msg_str (event, "source", 32, true);
        const char *type = umb_msg_str (event, "type", 32, true);
        const char *state = umb_msg_str (event, "state", 64, true);
        const char *message = umb_msg_str (event, "message", 65536, true);
        if (umb_msg_failed (event) || seq <= run.backend_after)
            continue;               //  malformed, or stored already
        rc = umb_computations_store_run_event (self->store, &run,
                                               streq (source, "agent") ? "agent" : "cvm", type,
                                               state, message, time);
        run.backend_after = seq;
        int meaning = umb_run_final (umb_run_state_parse (run.state)) ? -1
                    : s_meaning (source, type, state);
        if (rc == 0 && meaning >= 0) {
            int done = s_step (self, &run, (umb_run_event_t) meaning,
                               meaning == UMB_RUN_EV_FAIL ? message : NULL);
            if (done == -2)
                rc = -1;
            else
            if (done > 0)
                actions |= (unsigned) done;
        }
    }
    if (rc == 0)
        rc = umb_computations_store_run_update (self->store, &run);
    if (rc)
        umb_store_rollback (self->store);
    else
    if (umb_store_commit (self->store))
        rc = -1;
    umb_msg_destroy (&body);
    if (rc) {
        //  Nothing stored: the same page comes again
        char after [24];
        snprintf (after, sizeof after, "%lld", (long long) acked);
        zstr_sendx (live->follower, "AFTER", after, NULL);
    }
    else {
        char after [24];
        snprintf (after, sizeof after, "%lld", (long long) run.backend_after);
        zstr_sendx (live->follower, "AFTER", after, NULL);
        s_wake (self, run.id);
        if (actions)
            s_act (self, &run, actions);
    }
    umb_computations_store_run_clear (&run);
}

static int
s_on_follower (zloop_t *loop, zsock_t *sock, void *arg)
{
    s_live_t *live = arg;
    self_t *self = live->self;
    zmsg_t *msg = zmsg_recv (sock);
    char *kind = msg ? zmsg_popstr (msg) : NULL;
    if (kind && *live->id) {
        if (streq (kind, "EVENTS")) {
            zframe_t *frame = zmsg_pop (msg);
            if (frame)
                s_on_events (self, live, frame);
            zframe_destroy (&frame);
        }
        else
        if (streq (kind, "ERROR")) {
            char *reason = zmsg_popstr (msg);
            umb_log_warn (self->log, "run %s: backends.run.events: %s", live->id,
                          reason ? reason : "");
            zstr_free (&reason);
        }
    }
    zstr_free (&kind);
    zmsg_destroy (&msg);
    (void) loop;
    return 0;
}

//  ---------------------------------------------------------------- jobs done

#define S_RETRY_MS 1000             //  a run waiting for a free host asks again this often

//  The timer belongs to the live run: freeing that cancels it
static int
s_on_retry (zloop_t *loop, int timer_id, void *arg)
{
    s_live_t *live = arg;
    live->retry_timer = 0;
    umb_run_row_t run;
    if (*live->id && umb_computations_store_run_get (live->self->store, NULL, live->id, &run) == 0) {
        if (umb_run_state_parse (run.state) == UMB_RUN_PROVISIONING && !*run.cvm)
            s_act (live->self, &run, UMB_RUN_DO_CREATE_CVM);
        umb_computations_store_run_clear (&run);
    }
    (void) loop;
    (void) timer_id;
    return 0;
}

static void
s_retry_create (self_t *self, umb_run_row_t *run, const char *why)
{
    s_live_t *live = s_live (self, run->id);
    //  Said once per run, not on every attempt
    if (!live->waiting_for_host) {
        live->waiting_for_host = true;
        char message [700];
        snprintf (message, sizeof message, "no host is free yet (%s); asking again every %d ms",
                  why, S_RETRY_MS);
        if (umb_store_begin (self->store) == 0)
            s_commit (self, run, umb_computations_store_run_event (self->store, run, "computations",
                                                                   "info", run->state, message,
                                                                   umb_computations_now ())
                              ? -2 : 0);
    }
    if (!live->retry_timer)
        live->retry_timer = zloop_timer (umb_service_loop (self->service), S_RETRY_MS, 1,
                                         s_on_retry, live);
}

void
umb_computations_runs_done (self_t *self, void *arg, bool cancelled)
{
    s_job_t *job = arg;
    umb_run_row_t run;
    if (job->kind == UMB_CMP_JOB_RESERVE && cancelled) {
        umb_req_fail (job->req, 503, "unavailable", "the service is stopping");
        umb_service_reply (self->service, &job->req, 503);
    }
    else
    if (job->kind == UMB_CMP_JOB_RESERVE)
        s_reserved (self, job);
    else
    if (job->kind == UMB_CMP_JOB_SETTLE && !cancelled)
        s_settled (self, job);
    if (job->kind == UMB_CMP_JOB_REAP || job->kind == UMB_CMP_JOB_RESERVE
    ||  job->kind == UMB_CMP_JOB_SETTLE
    ||  cancelled || umb_computations_store_run_get (self->store, NULL, job->run, &run)) {
        s_job_destroy (&job);
        return;
    }
    if (job->kind == UMB_CMP_JOB_CVM_CREATE && job->no_host
    &&  umb_run_state_parse (run.state) == UMB_RUN_PROVISIONING) {
        //  Every host is full for now (a run that just ended may still be
        //  giving its CVM back): the run waits in Provisioning and asks again,
        //  until its provision deadline fails it
        s_retry_create (self, &run, job->reason);
        umb_computations_store_run_clear (&run);
        s_job_destroy (&job);
        return;
    }
    if (job->kind == UMB_CMP_JOB_CVM_CREATE) {
        if (umb_store_begin (self->store) == 0) {
            int actions;
            if (job->rc)
                actions = s_step (self, &run, UMB_RUN_EV_FAIL, job->reason);
            else {
                snprintf (run.cvm, sizeof run.cvm, "%s", job->cvm);
                char message [200];
                snprintf (message, sizeof message, "CVM %s created", job->cvm);
                actions = umb_computations_store_run_event (self->store, &run, "computations",
                                                            "info", run.state, message,
                                                            umb_computations_now ())
                       || umb_computations_store_run_update (self->store, &run) ? -2 : 0;
            }
            s_commit (self, &run, actions);
        }
        //  A run stopped while its CVM was being made: the CVM goes at once
        if (!job->rc && umb_run_final (umb_run_state_parse (run.state)))
            s_act (self, &run, UMB_RUN_DO_CLEANUP);
        else
        if (!job->rc)
            s_follow (self, &run);
    }
    else
    if (job->kind == UMB_CMP_JOB_CVM_GET) {
        if (job->rc == 0 && *job->agent_endpoint && umb_store_begin (self->store) == 0) {
            snprintf (run.agent_endpoint, sizeof run.agent_endpoint, "%s", job->agent_endpoint);
            snprintf (run.attest_endpoint, sizeof run.attest_endpoint, "%s", job->attest_endpoint);
            char message [400];
            snprintf (message, sizeof message, "participants reach the agent at %s (attestation at %s)",
                      run.agent_endpoint, run.attest_endpoint);
            int actions = umb_computations_store_run_event (self->store, &run, "computations",
                                                            "info", run.state, message,
                                                            umb_computations_now ())
                       || umb_computations_store_run_update (self->store, &run) ? -2 : 0;
            s_commit (self, &run, actions);
        }
        else
        if (job->rc)
            umb_log_warn (self->log, "run %s: %s", run.id, job->reason);
    }
    else
    if (job->rc)
        umb_log_warn (self->log, "run %s: the CVM %s could not be destroyed (%s); backends destroys "
                      "it at its TTL", run.id, job->cvm, job->reason);
    umb_computations_store_run_clear (&run);
    s_job_destroy (&job);
}

//  ---------------------------------------------------------------- replies

static void
s_write_run (umb_w_t *w, const umb_run_row_t *run)
{
    umb_w_map_begin (w);
    umb_w_kv_str (w, "id", run->id);
    umb_w_kv_str (w, "computation", run->computation_id);
    umb_w_kv_str (w, "workspace_id", run->workspace_id);
    umb_w_kv_str (w, "state", run->state);
    umb_w_kv_str (w, "reason", *run->reason ? run->reason : NULL);
    umb_w_kv_str (w, "cvm", *run->cvm ? run->cvm : NULL);
    umb_w_kv_str (w, "agent_endpoint", *run->agent_endpoint ? run->agent_endpoint : NULL);
    umb_w_kv_str (w, "attest_endpoint", *run->attest_endpoint ? run->attest_endpoint : NULL);
    umb_w_kv_int (w, "events", run->events);
    umb_w_kv_str (w, "started_by", run->started_by);
    umb_w_kv_int (w, "created_at", run->created_at);
    umb_w_kv_int (w, "updated_at", run->updated_at);
    umb_w_str (w, "deadline_at");
    if (run->deadline_at)
        umb_w_int (w, run->deadline_at);
    else
        umb_w_nil (w);
    umb_w_map_end (w);
}

//  The run the body names, of the computation it names, in the caller's workspace
static int
s_load_run (self_t *self, umb_req_t *req, umb_run_row_t *run)
{
    umb_msg_t *body = umb_req_body (req);
    const char *computation = umb_msg_str (body, "computation", 64, true);
    const char *id = umb_msg_str (body, "run", 64, true);
    if (umb_msg_failed (body))
        return umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    int rc = umb_computations_store_run_get (self->store, umb_req_workspace (req), id, run);
    if (rc == 0 && !streq (run->computation_id, computation))
        rc = UMB_STORE_NOT_FOUND;
    if (rc == UMB_STORE_NOT_FOUND) {
        umb_computations_store_run_clear (run);
        return umb_req_fail (req, 404, "not_found", "no run '%.64s' of computation '%.64s'", id,
                             computation);
    }
    return rc ? umb_computations_store_fault (self, req) : 0;
}

//  ---------------------------------------------------------------- handlers

bool
umb_computations_runs_live (self_t *self, const char *computation_id)
{
    //  A storage fault counts as live: nothing is deleted or started on a doubt
    return umb_computations_store_runs_live_count (self->store, computation_id) != 0;
}

int
umb_computations_runs_start (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_computation_t cmp;
    umb_participant_t *parts = NULL;
    size_t count = 0;
    int status = umb_computations_load (self, req, &cmp, &parts, &count);
    if (status)
        return status;
    char reason [1200];
    char *manifest = NULL;
    if ((status = umb_computations_owner_only (req, &cmp)) == 0) {
        if (umb_computations_runs_live (self, cmp.id))
            status = umb_req_fail (req, 409, "run_active", "computation '%s' has a run that is "
                                   "not over; stop it first", cmp.id);
        else
        if (!(manifest = umb_computation_manifest (&cmp, parts, count, reason, sizeof reason)))
            status = umb_req_fail (req, 409, "not_ready", "%s", reason);
    }
    umb_computations_store_parts_free (&parts, count);
    if (status) {
        umb_computation_clear (&cmp);
        return status;
    }
    umb_run_row_t run;
    memset (&run, 0, sizeof run);
    uint8_t random [8];
    randombytes_buf (random, sizeof random);
    snprintf (run.id, sizeof run.id, "run_");
    for (size_t i = 0; i < sizeof random; i++)
        snprintf (run.id + 4 + 2 * i, 3, "%02x", random [i]);
    snprintf (run.computation_id, sizeof run.computation_id, "%s", cmp.id);
    snprintf (run.workspace_id, sizeof run.workspace_id, "%s", cmp.workspace_id);
    snprintf (run.state, sizeof run.state, "Pending");
    snprintf (run.tee, sizeof run.tee, "%s", cmp.tee);
    snprintf (run.started_by, sizeof run.started_by, "%s", umb_req_principal (req)->subject);
    run.manifest = manifest;
    run.vcpus = cmp.vcpus;
    run.memory_mb = cmp.memory_mb;
    int64_t ttl = umb_config_int (self->config, "computations.provision_timeout_s")
                + umb_config_int (self->config, "computations.assets_timeout_s")
                + cmp.run_timeout_s + 60
                + umb_config_int (self->config, "computations.results_timeout_s") + S_TTL_MARGIN_S;
    run.ttl_s = ttl < S_TTL_MAX_S ? ttl : S_TTL_MAX_S;
    run.created_at = run.updated_at = umb_computations_now ();
    run.deadline_at = s_deadline (self, &run, UMB_RUN_PENDING);
    int64_t version = cmp.version;
    umb_computation_clear (&cmp);
    if (umb_billing_client_enabled (self->billing)) {
        //  Billing reserves the run's most before it starts
        s_job_t *job = s_job_new (self, UMB_CMP_JOB_RESERVE, &run);
        snprintf (job->workspace, sizeof job->workspace, "%s", run.workspace_id);
        job->row = run;                 //  the manifest is the job's now
        job->version = version;
        if (umb_computations_submit (self, job)) {
            s_job_destroy (&job);
            umb_req_set_retryable (req);
            return umb_req_fail (req, 503, "unavailable", "too many requests are waiting; "
                                 "try again");
        }
        job->req = umb_req_defer (req);
        return UMB_DEFERRED;
    }
    status = s_begin (self, req, &run, version);
    umb_computations_store_run_clear (&run);
    return status;
}

//  Writes the run that starts and answers with it (201), or a storage fault
static int
s_begin (self_t *self, umb_req_t *req, umb_run_row_t *run, int64_t version)
{
    int actions = -2;
    if (umb_store_begin (self->store) == 0) {
        char message [200];
        snprintf (message, sizeof message, "started by %s (computation version %lld)",
                  run->started_by, (long long) version);
        if (umb_computations_store_run_insert (self->store, run) == 0
        &&  umb_computations_store_run_event (self->store, run, "computations", "state", "Pending",
                                              message, run->created_at) == 0
        &&  umb_computations_audit (self, run->workspace_id, run->computation_id, run->started_by,
                                    "runs.start", json_pack ("{s:s, s:I}", "run", run->id,
                                                             "version", (json_int_t) version)) == 0)
            actions = s_step (self, run, UMB_RUN_EV_PROVISION, NULL);
        if (actions == -2)
            umb_store_rollback (self->store);
        else
        if (umb_store_commit (self->store))
            actions = -2;
    }
    if (actions == -2)
        return umb_computations_store_fault (self, req);
    s_write_run (umb_req_body_writer (req), run);
    s_act (self, run, (unsigned) actions);
    return 201;
}

int
umb_computations_runs_get (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_run_row_t run;
    int status = s_load_run (self, req, &run);
    if (status)
        return status;
    s_write_run (umb_req_body_writer (req), &run);
    umb_computations_store_run_clear (&run);
    return 200;
}

static void
s_list_run (umb_run_row_t *run, void *arg)
{
    s_write_run ((umb_w_t *) arg, run);
}

int
umb_computations_runs_list (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *computation = umb_msg_str (body, "computation", 64, false);
    bool live = umb_msg_bool (body, "live", false, false);
    int64_t limit = umb_msg_int (body, "limit", INT64_MIN, INT64_MAX, 100, false);
    if (umb_msg_failed (body))
        return umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    if (limit < 1 || limit > S_RUN_LIST_MAX)
        return umb_req_fail (req, 422, "invalid_argument", "limit: 1..%d", S_RUN_LIST_MAX);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_str (w, "items");
    umb_w_array_begin (w);
    int rc = umb_computations_store_runs (self->store, umb_req_workspace (req), computation, live,
                                          limit, s_list_run, w);
    umb_w_array_end (w);
    umb_w_map_end (w);
    if (rc) {
        umb_w_reset (w);
        return umb_computations_store_fault (self, req);
    }
    return 200;
}

int
umb_computations_runs_stop (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_run_row_t run;
    int status = s_load_run (self, req, &run);
    if (status)
        return status;
    umb_computation_t cmp;
    status = umb_computations_load (self, req, &cmp, NULL, NULL);
    if (status == 0)
        status = umb_computations_owner_only (req, &cmp);
    umb_computation_clear (&cmp);
    umb_run_step_t step;
    char reason [200];
    int current = umb_run_state_parse (run.state);
    if (status == 0 && (current < 0 || umb_run_next ((umb_run_state_t) current, UMB_RUN_EV_STOP,
                                                     &step, reason, sizeof reason)))
        status = umb_req_fail (req, 409, "wrong_state", "%s", reason);
    if (status == 0) {
        char why [120];
        snprintf (why, sizeof why, "stopped by %s", umb_req_principal (req)->subject);
        int actions = umb_store_begin (self->store) ? -2 : s_step (self, &run, UMB_RUN_EV_STOP, why);
        if (actions >= 0
        &&  umb_computations_audit (self, run.workspace_id, run.computation_id,
                                    umb_req_principal (req)->subject, "runs.stop",
                                    json_pack ("{s:s}", "run", run.id)))
            actions = -2;
        if (actions == -2 || s_commit (self, &run, actions))
            status = umb_computations_store_fault (self, req);
        else {
            s_write_run (umb_req_body_writer (req), &run);
            status = 200;
        }
    }
    umb_computations_store_run_clear (&run);
    return status;
}

static void
s_write_event (const umb_run_event_row_t *event, void *arg)
{
    umb_w_t *w = arg;
    umb_w_map_begin (w);
    umb_w_kv_int (w, "seq", event->seq);
    umb_w_kv_int (w, "time", event->time);
    umb_w_kv_str (w, "source", event->source);
    umb_w_kv_str (w, "type", event->type);
    umb_w_kv_str (w, "state", event->state);
    umb_w_kv_str (w, "message", event->message);
    umb_w_map_end (w);
}

//  Writes the run's events after after (at most max; of type only, unless
//  NULL) as the answer of req
static int
s_events_answer (self_t *self, umb_req_t *req, const umb_run_row_t *run, const char *type,
                 int64_t after, int64_t max)
{
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_str (w, "events");
    umb_w_array_begin (w);
    int rc = umb_computations_store_run_events (self->store, run->id, type, after, max,
                                                s_write_event, w);
    umb_w_array_end (w);
    umb_w_kv_int (w, "last", run->events);
    umb_w_kv_str (w, "state", run->state);
    umb_w_map_end (w);
    if (rc) {
        umb_w_reset (w);
        return umb_computations_store_fault (self, req);
    }
    return 200;
}

//  Answers a waiter with what there is now and frees it
static void
s_waiter_answer (s_waiter_t *waiter)
{
    self_t *self = waiter->self;
    umb_run_row_t run;
    int status;
    if (umb_computations_store_run_get (self->store, NULL, waiter->run, &run))
        status = umb_computations_store_fault (self, waiter->req);
    else
        status = s_events_answer (self, waiter->req, &run, NULL, waiter->after, waiter->max);
    umb_computations_store_run_clear (&run);
    umb_service_reply (self->service, &waiter->req, status);
    free (waiter);
}

static int
s_on_waiter_timer (zloop_t *loop, int timer_id, void *arg)
{
    s_waiter_t *waiter = arg;
    void *handle = zlistx_find (waiter->self->waiters, waiter);
    if (handle) {
        zlistx_detach (waiter->self->waiters, handle);
        s_waiter_answer (waiter);
    }
    (void) loop;
    (void) timer_id;
    return 0;
}

//  New events of run_id are stored: its waiters are answered
static void
s_wake (self_t *self, const char *run_id)
{
    if (!self->waiters)
        return;
    zlistx_t *ready = zlistx_new ();
    for (s_waiter_t *waiter = zlistx_first (self->waiters); waiter;
         waiter = zlistx_next (self->waiters))
        if (streq (waiter->run, run_id))
            zlistx_add_end (ready, waiter);
    for (s_waiter_t *waiter = zlistx_first (ready); waiter; waiter = zlistx_next (ready)) {
        zlistx_detach (self->waiters, zlistx_find (self->waiters, waiter));
        zloop_timer_end (umb_service_loop (self->service), waiter->timer);
        s_waiter_answer (waiter);
    }
    zlistx_destroy (&ready);
}

int
umb_computations_runs_events (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_run_row_t run;
    int status = s_load_run (self, req, &run);
    if (status)
        return status;
    umb_msg_t *body = umb_req_body (req);
    int64_t after = umb_msg_int (body, "after", INT64_MIN, INT64_MAX, 0, false);
    int64_t max = umb_msg_int (body, "max", INT64_MIN, INT64_MAX, 100, false);
    int64_t wait_ms = umb_msg_int (body, "wait_ms", INT64_MIN, INT64_MAX, 0, false);
    if (umb_msg_failed (body))
        status = umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    else
    if (after < 0 || max < 1 || max > S_EVENTS_MAX || wait_ms < 0 || wait_ms > 60000)
        status = umb_req_fail (req, 422, "invalid_argument", "after: 0 or more; max: 1..%d; "
                               "wait_ms: 0..60000", S_EVENTS_MAX);
    else {
        //  Never wait past the caller's deadline
        int64_t budget = umb_req_remaining_ms (req) - 100;
        if (wait_ms > budget)
            wait_ms = budget > 0 ? budget : 0;
        int current = umb_run_state_parse (run.state);
        if (wait_ms > 0 && run.events <= after && current >= 0
        &&  !umb_run_final ((umb_run_state_t) current)) {
            s_waiter_t *waiter = calloc (1, sizeof (s_waiter_t));
            assert (waiter);
            waiter->self = self;
            snprintf (waiter->run, sizeof waiter->run, "%s", run.id);
            waiter->after = after;
            waiter->max = max;
            waiter->req = umb_req_defer (req);
            waiter->timer = zloop_timer (umb_service_loop (self->service), (size_t) wait_ms, 1,
                                         s_on_waiter_timer, waiter);
            zlistx_add_end (self->waiters, waiter);
            status = UMB_DEFERRED;
        }
        else
            status = s_events_answer (self, req, &run, NULL, after, max);
    }
    umb_computations_store_run_clear (&run);
    return status;
}

int
umb_computations_runs_logs (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_run_row_t run;
    int status = s_load_run (self, req, &run);
    if (status)
        return status;
    umb_msg_t *body = umb_req_body (req);
    int64_t after = umb_msg_int (body, "after", INT64_MIN, INT64_MAX, 0, false);
    int64_t max = umb_msg_int (body, "max", INT64_MIN, INT64_MAX, 100, false);
    if (umb_msg_failed (body))
        status = umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    else
    if (after < 0 || max < 1 || max > S_EVENTS_MAX)
        status = umb_req_fail (req, 422, "invalid_argument", "after: 0 or more; max: 1..%d",
                               S_EVENTS_MAX);
    else
        status = s_events_answer (self, req, &run, "log", after, max);
    umb_computations_store_run_clear (&run);
    return status;
}

//  ---------------------------------------------------------------- start, tick, end

static void
s_resume (umb_run_row_t *run, void *arg)
{
    self_t *self = arg;
    umb_run_row_t full;
    //  The list does not load manifests: a run without its CVM needs it
    if (umb_computations_store_run_get (self->store, NULL, run->id, &full))
        return;
    if (!*full.cvm) {
        //  The service stopped before backends answered: asked again (a CVM
        //  backends made meanwhile expires at its TTL)
        umb_log_warn (self->log, "run %s: resumed without a CVM; asking backends again", full.id);
        s_act (self, &full, UMB_RUN_DO_CREATE_CVM);
    }
    else {
        s_follow (self, &full);
        int state = umb_run_state_parse (full.state);
        if (state >= UMB_RUN_AWAITING_ASSETS && !*full.agent_endpoint)
            s_act (self, &full, UMB_RUN_DO_ENDPOINTS);
        umb_log_info (self->log, "run %s: resumed in %s, following CVM %s after event %lld",
                      full.id, full.state, full.cvm, (long long) full.backend_after);
    }
    umb_computations_store_run_clear (&full);
}

static void
s_live_free (void **item)
{
    s_live_t *live = *item;
    if (live) {
        if (live->retry_timer && live->self->service)
            zloop_timer_end (umb_service_loop (live->self->service), live->retry_timer);
        zactor_destroy (&live->follower);
        free (live);
        *item = NULL;
    }
}

int
umb_computations_runs_resume (self_t *self)
{
    self->runs = zhashx_new ();
    self->waiters = zlistx_new ();
    assert (self->runs && self->waiters);
    zhashx_set_destructor (self->runs, s_live_free);
    return umb_computations_store_runs_live (self->store, s_resume, self);
}

typedef struct {
    self_t  *self;
    int64_t  now;
    zlistx_t *late;
} s_tick_t;

static void
s_check_deadline (umb_run_row_t *run, void *arg)
{
    s_tick_t *tick = arg;
    if (run->deadline_at && run->deadline_at < tick->now)
        zlistx_add_end (tick->late, strdup (run->id));
}

void
umb_computations_runs_tick (self_t *self)
{
    //  Followers of runs that ended go now, outside their callbacks: told to
    //  stop here and waited for on the cleanup worker, since one in the middle
    //  of a long poll ends only when backends answers
    zlistx_t *gone = zlistx_new ();
    for (s_live_t *live = zhashx_first (self->runs); live; live = zhashx_next (self->runs))
        if (!*live->id) {
            if (live->follower) {
                zstr_send (live->follower, "$TERM");
                s_job_t *job = calloc (1, sizeof (s_job_t));
                assert (job);
                job->kind = UMB_CMP_JOB_REAP;
                job->self = self;
                job->follower = live->follower;
                live->follower = NULL;
                s_submit (self, job);
            }
            zlistx_add_end (gone, (void *) zhashx_cursor (self->runs));
        }
    for (const char *key = zlistx_first (gone); key; key = zlistx_next (gone))
        zhashx_delete (self->runs, key);
    zlistx_destroy (&gone);

    s_tick_t tick = { self, umb_computations_now (), zlistx_new () };
    zlistx_set_destructor (tick.late, (zlistx_destructor_fn *) zstr_free);
    umb_computations_store_runs_live (self->store, s_check_deadline, &tick);
    for (char *id = zlistx_first (tick.late); id; id = zlistx_next (tick.late)) {
        umb_run_row_t run;
        if (umb_computations_store_run_get (self->store, NULL, id, &run))
            continue;
        int state = umb_run_state_parse (run.state);
        if (state >= 0 && !umb_run_final ((umb_run_state_t) state)
        &&  umb_store_begin (self->store) == 0)
            s_commit (self, &run, s_step (self, &run, UMB_RUN_EV_FAIL,
                                          s_late ((umb_run_state_t) state)));
        umb_computations_store_run_clear (&run);
    }
    zlistx_destroy (&tick.late);
    //  Settlements billing did not take yet, and the runs by state for
    //  /metrics, now and then
    if (++self->ticks % S_SETTLE_TICKS != 1)
        return;
    if (umb_billing_client_enabled (self->billing))
        umb_computations_store_runs_unsettled (self->store, s_settle_each, self);
    const char *states [UMB_RUN_STATES + 1] = { NULL };
    for (int state = 0; state < UMB_RUN_STATES; state++)
        states [state] = umb_run_state_name ((umb_run_state_t) state);
    int64_t counts [UMB_RUN_STATES];
    if (umb_store_counts (umb_store_query (self->store,
            "SELECT state, COUNT(*) FROM runs GROUP BY state", ""), states, counts) == 0)
        for (int state = 0; state < UMB_RUN_STATES; state++) {
            char labels [64];
            snprintf (labels, sizeof labels, "state=\"%s\"", states [state]);
            umb_metrics_gauge (umb_service_metrics (self->service), "umbra_runs",
                               "runs of computations, by state", labels, (double) counts [state]);
        }
}

void
umb_computations_runs_destroy (self_t *self)
{
    //  Every follower is told first, so their long polls end together
    for (s_live_t *live = self->runs ? zhashx_first (self->runs) : NULL; live;
         live = zhashx_next (self->runs))
        if (live->follower) {
            if (*live->id && self->service)
                zloop_reader_end (umb_service_loop (self->service), zactor_sock (live->follower));
            zstr_send (live->follower, "$TERM");
        }
    zhashx_destroy (&self->runs);
    //  Waiting requests are answered with what there is
    for (s_waiter_t *waiter = self->waiters ? zlistx_first (self->waiters) : NULL; waiter;
         waiter = zlistx_next (self->waiters)) {
        if (self->service)
            zloop_timer_end (umb_service_loop (self->service), waiter->timer);
        s_waiter_answer (waiter);
    }
    zlistx_destroy (&self->waiters);
}
