//  umb_computations_private - what the computations service's modules share:
//  its state, and the helpers both the definitions (umb_computations) and
//  the runs (umb_computations_runs) use. Not for other services.
#ifndef UMB_COMPUTATIONS_PRIVATE_H_INCLUDED
#define UMB_COMPUTATIONS_PRIVATE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <czmq.h>
#include <jansson.h>
#include "umb_runtime.h"
#include "umb_service.h"
#include "umb_client.h"
#include "umb_store.h"
#include "umb_worker.h"
#include "umb_auth_client.h"
#include "umb_computation.h"
#include "umb_computation_cache.h"
#include "umb_billing_client.h"

typedef struct {
    umb_runtime_t     *runtime;
    umb_config_t      *config;
    umb_log_t         *log;
    zcert_t           *cert;
    umb_store_t       *store;
    umb_computation_cache_t *definitions;   //  the loop's parsed definitions, for listings
    umb_auth_client_t *auth;
    umb_service_t     *service;
    umb_worker_t      *worker;
    umb_worker_t      *cleanup;         //  destroys of runs' CVMs, so they never wait behind
                                        //  (or hold up) the other runs' jobs
    umb_worker_t      *calls;           //  short calls: auth's members, billing's checks,
                                        //  reservations and settlements
    umb_billing_client_t *billing;      //  ...the calls thread's client of billing
    zhashx_t          *settling;        //  run ids whose settlement is on its way
    umb_client_t      *members_client;  //  the worker thread's own client of auth
    umb_client_t      *backends_client; //  ...and of backends
    zhashx_t          *runs;            //  live runs being followed: run id -> their state
    zlistx_t          *waiters;         //  runs.events requests waiting for an event
    int                tick;
    int64_t            ticks;
    char              *dir;
    char               failure [256];
} umb_computations_t;

//  Worker jobs start with their kind
typedef enum {
    UMB_CMP_JOB_MEMBERS = 0,            //  auth.members.list (and billing.check) for a create
                                        //  or update
    UMB_CMP_JOB_CVM_CREATE,             //  backends.run.create
    UMB_CMP_JOB_CVM_GET,                //  backends.run.get: the participants' endpoints
    UMB_CMP_JOB_CVM_DESTROY,            //  backends.run.destroy
    UMB_CMP_JOB_REAP,                   //  the end of a run's follower (it may be mid-call)
    UMB_CMP_JOB_RESERVE,                //  billing.reserve before a run starts
    UMB_CMP_JOB_SETTLE                  //  billing.settle once it ended
} umb_cmp_job_kind_t;

//  Shared helpers (umb_computations.c). Statuses as handlers return them.
int64_t umb_computations_now (void);
int     umb_computations_store_fault (umb_computations_t *self, umb_req_t *req);
//  Loads the computation the body names ("computation") in the caller's
//  workspace, and its participants when parts is not NULL.
int     umb_computations_load (umb_computations_t *self, umb_req_t *req, umb_computation_t *cmp,
                               umb_participant_t **parts, size_t *count);
int     umb_computations_owner_only (umb_req_t *req, const umb_computation_t *cmp);
//  Appends an audit record in the open transaction; detail is taken.
int     umb_computations_audit (umb_computations_t *self, const char *workspace_id,
                                const char *computation_id, const char *actor,
                                const char *action, json_t *detail);
//  Queues a worker job on the worker its kind goes to; 0, or -1 when the
//  queue is full.
int     umb_computations_submit (umb_computations_t *self, void *job);

//  Runs (umb_computations_runs.c): handlers, the worker's side of their jobs,
//  start-up, the deadline tick and the end
int  umb_computations_runs_start (void *state, umb_req_t *req);
int  umb_computations_runs_list (void *state, umb_req_t *req);
int  umb_computations_runs_get (void *state, umb_req_t *req);
int  umb_computations_runs_stop (void *state, umb_req_t *req);
int  umb_computations_runs_events (void *state, umb_req_t *req);
int  umb_computations_runs_logs (void *state, umb_req_t *req);
void umb_computations_runs_work (void *job);
void umb_computations_runs_done (umb_computations_t *self, void *job, bool cancelled);
int  umb_computations_runs_resume (umb_computations_t *self);
void umb_computations_runs_tick (umb_computations_t *self);
void umb_computations_runs_destroy (umb_computations_t *self);
//  True when computation id has a run that is not final.
bool umb_computations_runs_live (umb_computations_t *self, const char *computation_id);

#endif
