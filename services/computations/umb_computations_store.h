//  umb_computations_store - the computations service's SQL: computations
//  (their definition as JSON), participants with their keys, and the audit
//  trail's table (umb_audit)
//
//  Every function takes an open store and returns 0, UMB_STORE_NOT_FOUND (1),
//  UMB_STORE_CONSTRAINT (-2) for a name taken in the workspace, or -1 on a
//  storage error (logged by umb_store). Writes that belong together are the
//  caller's transaction (umb_store_begin/commit).
#ifndef UMB_COMPUTATIONS_STORE_H_INCLUDED
#define UMB_COMPUTATIONS_STORE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "umb_store.h"
#include "umb_computation.h"
#include "umb_computation_cache.h"

umb_store_t *umb_computations_store_open (const char *path, umb_log_t *log);

//  Inserts or updates the row of cmp (id, workspace, name, owner, version,
//  times and the definition JSON).
int umb_computations_store_insert (umb_store_t *store, const umb_computation_t *cmp);
int umb_computations_store_update (umb_store_t *store, const umb_computation_t *cmp);
//  Deletes the computation and its participants.
int umb_computations_store_delete (umb_store_t *store, const char *id);

//  Loads the computation id of workspace_id into cmp (initialised by it;
//  umb_computation_clear it after).
int umb_computations_store_get (umb_store_t *store, const char *workspace_id, const char *id,
                                umb_computation_t *cmp);

//  Newest first, at most limit (1..UMB_COMPUTATIONS_LIST_MAX). participant (a
//  user id) and name_prefix may be NULL. The cursor is the id of the previous
//  page's last computation. *more is true when another page follows. The page
//  is read whole (its participants in one query) before each computation goes
//  to fn with its participants by user id (both borrowed for the call); fn is
//  called for none when reading failed (-1). With a cache (its capacity above
//  UMB_COMPUTATIONS_LIST_MAX), definitions are parsed only when their stored
//  text changed; NULL parses every one.
#define UMB_COMPUTATIONS_LIST_MAX 500
typedef void (umb_computations_fn) (umb_computation_t *cmp, const umb_participant_t *parts,
                                    size_t count, void *arg);
int umb_computations_store_list (umb_store_t *store, umb_computation_cache_t *cache,
                                 const char *workspace_id,
                                 const char *participant, const char *name_prefix,
                                 const char *cursor, int64_t limit, umb_computations_fn *fn,
                                 void *arg, bool *more);

//  The participants of computation id by user id, as an array the caller
//  frees with umb_computations_store_parts_free.
int  umb_computations_store_parts (umb_store_t *store, const char *id, umb_participant_t **parts,
                                   size_t *count);
void umb_computations_store_parts_free (umb_participant_t **parts, size_t count);
//  Replaces every participant of computation id with parts.
int  umb_computations_store_parts_set (umb_store_t *store, const char *id,
                                       const umb_participant_t *parts, size_t count);

//  ---------------------------------------------------------------- runs

typedef struct {
    char    id [40];
    char    computation_id [40];
    char    workspace_id [64];
    char    state [24];
    char    reason [512];
    char   *manifest;               //  the manifest the run started with (the caller frees)
    char    tee [16];
    int64_t vcpus, memory_mb, ttl_s;
    char    cvm [40];               //  "" until backends made it
    char    agent_endpoint [128];
    char    attest_endpoint [128];
    int64_t backend_after;          //  backends events stored (acknowledged next pull)
    int64_t events;                 //  the run's own last event seq
    char    started_by [72];
    int64_t created_at, updated_at, deadline_at;
    char    billing [16];           //  "", "reserved", "settled"
} umb_run_row_t;

typedef struct {
    int64_t     seq;
    int64_t     time;
    const char *source;             //  computations, backends, agent
    const char *type;               //  state, log, info ...
    const char *state;
    const char *message;
} umb_run_event_row_t;

int  umb_computations_store_run_insert (umb_store_t *store, const umb_run_row_t *run);
int  umb_computations_store_run_update (umb_store_t *store, const umb_run_row_t *run);
//  workspace_id NULL: any. run->manifest is the caller's to free.
int  umb_computations_store_run_get (umb_store_t *store, const char *workspace_id, const char *id,
                                     umb_run_row_t *run);
void umb_computations_store_run_clear (umb_run_row_t *run);
typedef void (umb_run_row_fn) (umb_run_row_t *run, void *arg);
//  Runs of a computation (NULL: of the workspace), newest first; live only
//  when live. The manifest is not loaded.
int  umb_computations_store_runs (umb_store_t *store, const char *workspace_id,
                                  const char *computation_id, bool live, int64_t limit,
                                  umb_run_row_fn *fn, void *arg);
//  How many runs of computation_id are not final; -1 on a storage fault.
int64_t umb_computations_store_runs_live_count (umb_store_t *store, const char *computation_id);
//  Marks what billing holds for run id ("reserved", "settled").
int  umb_computations_store_run_billing (umb_store_t *store, const char *id, const char *billing);
//  Up to 100 final runs whose reservation is not settled yet, oldest first.
int  umb_computations_store_runs_unsettled (umb_store_t *store, umb_run_row_fn *fn, void *arg);
//  How many computations the workspace has; -1 on a storage fault.
int64_t umb_computations_store_count (umb_store_t *store, const char *workspace_id);
//  Every run that is not final (the service resumes them at start).
int  umb_computations_store_runs_live (umb_store_t *store, umb_run_row_fn *fn, void *arg);
//  Appends an event (seq = the run's events + 1, which it bumps in run too).
int  umb_computations_store_run_event (umb_store_t *store, umb_run_row_t *run,
                                       const char *source, const char *type, const char *state,
                                       const char *message, int64_t time);
typedef void (umb_run_event_fn) (const umb_run_event_row_t *event, void *arg);
//  type NULL: every event; else only events of that type ("log": the
//  algorithm's output lines).
int  umb_computations_store_run_events (umb_store_t *store, const char *run_id, const char *type,
                                        int64_t after, int64_t max, umb_run_event_fn *fn,
                                        void *arg);

//  Per-day counts of workspace_id since since (unix seconds, UTC days), oldest
//  first: computations created, runs started, and runs that ended Completed,
//  Failed or Cancelled that day.
typedef struct {
    char    day [16];               //  YYYY-MM-DD
    int64_t computations_created;
    int64_t runs_started, runs_completed, runs_failed, runs_cancelled;
} umb_computations_day_t;
typedef void (umb_computations_day_fn) (const umb_computations_day_t *day, void *arg);
int  umb_computations_store_stats (umb_store_t *store, const char *workspace_id, int64_t since,
                                   umb_computations_day_fn *fn, void *arg);

void umb_computations_store_test (bool verbose);

#endif
