//  umb_audit - a workspace's append-only, hash-chained audit trail: records
//  appended in the caller's transaction, listed in order, and verified by a
//  streaming verifier (proto/msgpack/computations.md, "Audit trail")
//
//      umb_store_begin (store);
//      umb_audit_record_t record = { .time = 0 };
//      snprintf (record.computation, sizeof (record.computation), "%s", id);
//      snprintf (record.actor, sizeof (record.actor), "%s", user_id);
//      snprintf (record.action, sizeof (record.action), "create");
//      record.detail = json_dumps (what, JSON_COMPACT);
//      if (umb_audit_append (store, workspace_id, &record) == 0)
//          umb_store_commit (store);
//      else
//          umb_store_rollback (store);
//      umb_audit_record_clear (&record);
//
//      umb_audit_verifier_t *verifier = umb_audit_verifier_new (anchor_seq, anchor_hash);
//      for each record in seq order:
//          if (umb_audit_verifier_feed (verifier, &record, reason, sizeof (reason)))
//              ...refuse with reason...
//      if (umb_audit_verifier_end (verifier, reason, sizeof (reason)))
//          ...refuse with reason...
//      umb_audit_verifier_destroy (&verifier);
//
//  The module logs nothing: a record's detail never reaches a log line here.
#ifndef UMB_AUDIT_H_INCLUDED
#define UMB_AUDIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "umb_store.h"

//  One record. The strings are NUL-terminated within their arrays.
typedef struct {
    int64_t seq;
    int64_t time;
    char    computation [40];
    char    actor [64];
    char    action [32];
    char   *detail;            //  JSON object text; owned by the record (umb_audit_record_clear frees it)
    char    prev [65];         //  64 lowercase hex
    char    hash [65];
} umb_audit_record_t;

//  The prev of a trail's first record.
#define UMB_AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

//  The largest detail umb_audit_append takes, in bytes.
#define UMB_AUDIT_MAX_DETAIL (1024 * 1024)

//  Computes record->hash from its other fields:
//  hex (SHA-256 ("umbra-audit-v1" || F(seq) || F(time) || F(computation) ||
//  F(actor) || F(action) || F(detail) || F(prev))), F(x) being x's length as
//  4 bytes big-endian and then its bytes, the integers in decimal ASCII. A
//  NULL detail hashes as "".
void umb_audit_hash (umb_audit_record_t *record);

//  The SQL of the audit table, for the service to append to its own
//  migrations: audit (workspace_id, seq, time, computation, actor, action,
//  detail, prev, hash), PRIMARY KEY (workspace_id, seq).
extern const char *const umb_audit_schema;

//  Appends record to workspace_id's trail inside the caller's open
//  transaction (asserted; umb_store_begin and umb_store_commit are the
//  caller's): reads the trail's last (seq, hash) and fills record's seq,
//  prev, hash and time (now unless record->time is set). A NULL detail becomes
//  "{}". 0, or -1 when detail is not a JSON object in UTF-8 (without NULs) of
//  at most UMB_AUDIT_MAX_DETAIL bytes, or the store failed (the store logs its
//  own failures, without values; detail is never logged).
int  umb_audit_append (umb_store_t *store, const char *workspace_id, umb_audit_record_t *record)
         __attribute__ ((warn_unused_result));

//  Hands the records of workspace_id's trail after seq `after`, at most limit
//  (0 lists none), in seq order, to fn with arg, one at a time; the record is
//  borrowed and valid during the call only. *last (when not NULL) receives the
//  trail's last seq (0 when it is empty); no record listed is beyond it.
//  0, or -1 on a store error.
typedef void (umb_audit_fn) (const umb_audit_record_t *record, void *arg);
int  umb_audit_list (umb_store_t *store, const char *workspace_id, int64_t after, int64_t limit,
                     umb_audit_fn *fn, void *arg, int64_t *last);

//  A streaming verifier: fed a whole trail in order, from record 1, it checks
//  each record's hash, that seq grows by one and that each prev is the hash
//  before it. The anchor is a (seq, hash) seen before (0 and NULL for none):
//  the trail must still hold it, unchanged.
typedef struct _umb_audit_verifier_t umb_audit_verifier_t;
umb_audit_verifier_t *umb_audit_verifier_new (int64_t anchor_seq, const char *anchor_hash);
void umb_audit_verifier_destroy (umb_audit_verifier_t **self_p);

//  0 when record continues the trail; -1 with the reason in reason (size
//  bytes, always terminated), e.g. "record 5: its hash does not match its
//  contents (changed)", "record 7 follows record 5 (removed or reordered)",
//  "record 6: prev is not record 5's hash". Once refused, the verifier
//  refuses every later record with the first reason.
int  umb_audit_verifier_feed (umb_audit_verifier_t *self, const umb_audit_record_t *record,
                              char *reason, size_t size) __attribute__ ((warn_unused_result));
//  After the last record: 0, or -1 with the reason when a record was refused,
//  or the trail ends before the anchor ("the trail ends at record 4, but
//  record 9 was seen before (truncated)").
int  umb_audit_verifier_end (umb_audit_verifier_t *self, char *reason, size_t size)
         __attribute__ ((warn_unused_result));
//  The last record accepted: its seq (0 before any) and hash (borrowed;
//  UMB_AUDIT_GENESIS before any).
int64_t     umb_audit_verifier_last_seq (umb_audit_verifier_t *self);
const char *umb_audit_verifier_last_hash (umb_audit_verifier_t *self);

//  Frees record->detail and NULLs it; the record can be cleared again.
void umb_audit_record_clear (umb_audit_record_t *record);

void umb_audit_test (bool verbose);

#endif
