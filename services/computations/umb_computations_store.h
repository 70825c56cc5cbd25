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

//  Newest first. participant (a user id) and name_prefix may be NULL. The
//  cursor is the id of the previous page's last computation. *more is true
//  when another page follows. Each computation goes to fn, then is cleared.
typedef void (umb_computations_fn) (umb_computation_t *cmp, void *arg);
int umb_computations_store_list (umb_store_t *store, const char *workspace_id,
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

void umb_computations_store_test (bool verbose);

#endif
