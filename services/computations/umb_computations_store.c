//  umb_computations_store - the computations service's SQL
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             //  qsort_r
#endif
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "umb_computations_store.h"
#include "umb_audit.h"

#define S_STREQ(a, b) (strcmp ((a), (b)) == 0)

static const char s_schema [] =
    "CREATE TABLE computations ("
    "  id           TEXT PRIMARY KEY,"
    "  workspace_id TEXT NOT NULL,"
    "  name         TEXT NOT NULL,"
    "  owner        TEXT NOT NULL,"
    "  definition   TEXT NOT NULL,"
    "  version      INTEGER NOT NULL,"
    "  created_at   INTEGER NOT NULL,"
    "  updated_at   INTEGER NOT NULL,"
    "  UNIQUE (workspace_id, name));"
    "CREATE INDEX computations_by_time ON computations (workspace_id, created_at, id);"
    "CREATE TABLE participants ("
    "  computation_id TEXT NOT NULL REFERENCES computations (id) ON DELETE CASCADE,"
    "  user_id        TEXT NOT NULL,"
    "  roles          INTEGER NOT NULL,"
    "  key            TEXT,"
    "  key_type       TEXT,"
    "  fingerprint    TEXT,"
    "  PRIMARY KEY (computation_id, user_id));"
    "CREATE INDEX participants_by_user ON participants (user_id);";

static const char s_runs_schema [] =
    "CREATE TABLE runs ("
    "  id              TEXT PRIMARY KEY,"
    "  computation_id  TEXT NOT NULL,"
    "  workspace_id    TEXT NOT NULL,"
    "  state           TEXT NOT NULL,"
    "  reason          TEXT NOT NULL,"
    "  manifest        TEXT NOT NULL,"
    "  tee             TEXT NOT NULL,"
    "  vcpus           INTEGER NOT NULL,"
    "  memory_mb       INTEGER NOT NULL,"
    "  ttl_s           INTEGER NOT NULL,"
    "  cvm             TEXT NOT NULL,"
    "  agent_endpoint  TEXT NOT NULL,"
    "  attest_endpoint TEXT NOT NULL,"
    "  backend_after   INTEGER NOT NULL,"
    "  events          INTEGER NOT NULL,"
    "  started_by      TEXT NOT NULL,"
    "  created_at      INTEGER NOT NULL,"
    "  updated_at      INTEGER NOT NULL,"
    "  deadline_at     INTEGER NOT NULL);"
    "CREATE INDEX runs_by_computation ON runs (computation_id, created_at);"
    "CREATE INDEX runs_by_workspace ON runs (workspace_id, created_at);"
    "CREATE TABLE run_events ("
    "  run_id  TEXT NOT NULL,"
    "  seq     INTEGER NOT NULL,"
    "  time    INTEGER NOT NULL,"
    "  source  TEXT NOT NULL,"
    "  type    TEXT NOT NULL,"
    "  state   TEXT NOT NULL,"
    "  message TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, seq));";

umb_store_t *
umb_computations_store_open (const char *path, umb_log_t *log)
{
    const umb_migration_t migrations [] = {
        { 1, s_schema },
        { 2, umb_audit_schema },
        { 3, s_runs_schema },
        //  What billing holds for a run: '' (nothing: billing is off), 'reserved'
        //  (its maximum cost, until it is settled), 'settled'
        { 4, "ALTER TABLE runs ADD COLUMN billing TEXT NOT NULL DEFAULT '';"
             "CREATE INDEX runs_by_state ON runs (state);" },
        //  The tick looks for reservations left to settle: only those runs
        { 5, "CREATE INDEX runs_reserved ON runs (updated_at) WHERE billing = 'reserved';" },
        { 0, NULL }
    };
    return umb_store_new (path, migrations, log);
}

int
umb_computations_store_insert (umb_store_t *store, const umb_computation_t *cmp)
{
    char *json = umb_computation_to_json (cmp);
    assert (json);
    int rc = umb_store_run (store,
        "INSERT INTO computations (id, workspace_id, name, owner, definition, version, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "sssssiii",
        cmp->id, cmp->workspace_id, cmp->name, cmp->owner, json, cmp->version, cmp->created_at,
        cmp->updated_at);
    free (json);
    return rc;
}

int
umb_computations_store_update (umb_store_t *store, const umb_computation_t *cmp)
{
    char *json = umb_computation_to_json (cmp);
    assert (json);
    int rc = umb_store_run (store,
        "UPDATE computations SET name = ?, definition = ?, version = ?, updated_at = ?"
        " WHERE id = ?", "ssiis",
        cmp->name, json, cmp->version, cmp->updated_at, cmp->id);
    free (json);
    return rc;
}

int
umb_computations_store_delete (umb_store_t *store, const char *id)
{
    return umb_store_run (store, "DELETE FROM computations WHERE id = ?", "s", id);
}

//  What the columns of a row say beside its definition.
static void
s_row_columns (sqlite3_stmt *stmt, umb_computation_t *cmp)
{
    umb_store_column (stmt, 0, cmp->id, sizeof cmp->id);
    umb_store_column (stmt, 1, cmp->workspace_id, sizeof cmp->workspace_id);
    umb_store_column (stmt, 2, cmp->name, sizeof cmp->name);
    umb_store_column (stmt, 3, cmp->owner, sizeof cmp->owner);
    cmp->version = sqlite3_column_int64 (stmt, 5);
    cmp->created_at = sqlite3_column_int64 (stmt, 6);
    cmp->updated_at = sqlite3_column_int64 (stmt, 7);
}

//  One row: the definition, then the columns. A definition that does not
//  load leaves cmp->id empty (the caller reports a storage fault).
static void
s_row (sqlite3_stmt *stmt, void *dest)
{
    umb_computation_t *cmp = dest;
    const char *json = (const char *) sqlite3_column_text (stmt, 4);
    char reason [256];
    if (!json || umb_computation_from_json (cmp, json, reason, sizeof reason)) {
        umb_computation_clear (cmp);    //  what a failed load left
        umb_computation_init (cmp);
        return;
    }
    s_row_columns (stmt, cmp);
}

#define S_SELECT \
    "SELECT id, workspace_id, name, owner, definition, version, created_at, updated_at" \
    " FROM computations "

int
umb_computations_store_get (umb_store_t *store, const char *workspace_id, const char *id,
                            umb_computation_t *cmp)
{
    memset (cmp, 0, sizeof *cmp);
    int rc = umb_store_get (umb_store_query (store, S_SELECT "WHERE id = ? AND workspace_id = ?",
                                             "ss", id, workspace_id), s_row, cmp);
    if (rc == 0 && !*cmp->id) {
        umb_computation_clear (cmp);
        return -1;
    }
    if (rc)
        umb_computation_init (cmp);
    return rc;
}

//  One page of a listing: its computations in order, then their participants.
typedef struct {
    umb_computation_t  *rows;
    umb_participant_t **parts;          //  per row
    size_t             *parts_count;    //  per row
    size_t             *by_id;          //  row indexes sorted by id
    umb_computation_cache_t *cache;     //  when not NULL, rows borrow their definitions from it
    int64_t             limit;
    int64_t             seen;           //  rows the query gave: one past limit means more
    size_t              count;          //  rows kept
    int                 failed;         //  a stored definition did not load
} s_page_t;

static void
s_page_row (sqlite3_stmt *stmt, void *fn, void *arg)
{
    (void) fn;
    s_page_t *page = arg;
    if (++page->seen > page->limit)
        return;
    umb_computation_t *cmp = &page->rows [page->count];
    memset (cmp, 0, sizeof *cmp);
    if (page->cache) {
        //  A copy of the cached definition's fields, its pointers borrowed
        const char *id = (const char *) sqlite3_column_text (stmt, 0);
        const char *json = (const char *) sqlite3_column_text (stmt, 4);
        char reason [256];
        const umb_computation_t *parsed = id && json
            ? umb_computation_cache_get (page->cache, id, json, reason, sizeof reason) : NULL;
        if (parsed) {
            *cmp = *parsed;
            s_row_columns (stmt, cmp);
        }
    }
    else
        s_row (stmt, cmp);
    if (*cmp->id)
        page->count++;
    else {
        if (!page->cache)
            umb_computation_clear (cmp);
        page->failed = 1;
    }
}

static int
s_by_id (const void *left, const void *right, void *arg)
{
    const s_page_t *page = arg;
    return strcmp (page->rows [*(const size_t *) left].id, page->rows [*(const size_t *) right].id);
}

static int
s_page_find (const s_page_t *page, const char *id)
{
    size_t low = 0, high = page->count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        int order = strcmp (page->rows [page->by_id [middle]].id, id);
        if (order == 0)
            return (int) page->by_id [middle];
        if (order < 0)
            low = middle + 1;
        else
            high = middle;
    }
    return -1;
}

static void s_part_fill (sqlite3_stmt *stmt, int first, umb_participant_t *part);

static void
s_page_part (sqlite3_stmt *stmt, void *fn, void *arg)
{
    (void) fn;
    s_page_t *page = arg;
    int row = s_page_find (page, (const char *) sqlite3_column_text (stmt, 0));
    if (row < 0)
        return;
    size_t *count = &page->parts_count [row];
    page->parts [row] = realloc (page->parts [row], (*count + 1) * sizeof (umb_participant_t));
    assert (page->parts [row]);
    s_part_fill (stmt, 1, &page->parts [row][(*count)++]);
}

//  The participants of every computation of the page, in one query.
static int
s_page_parts (umb_store_t *store, s_page_t *page)
{
    if (page->count == 0)
        return 0;
    page->by_id = malloc (page->count * sizeof (size_t));
    assert (page->by_id);
    for (size_t i = 0; i < page->count; i++)
        page->by_id [i] = i;
    qsort_r (page->by_id, page->count, sizeof (size_t), s_by_id, page);
    json_t *ids = json_array ();
    for (size_t i = 0; i < page->count; i++)
        json_array_append_new (ids, json_string (page->rows [i].id));
    char *text = json_dumps (ids, JSON_COMPACT);
    json_decref (ids);
    assert (text);
    sqlite3_stmt *stmt = umb_store_query (store,
        "SELECT computation_id, user_id, roles, key, key_type, fingerprint FROM participants"
        " WHERE computation_id IN (SELECT value FROM json_each (?))"
        " ORDER BY computation_id, user_id", "s", text);
    int rc = umb_store_each (stmt, s_page_part, NULL, page);
    free (text);
    return rc;
}

static void
s_page_clear (s_page_t *page)
{
    for (size_t i = 0; i < page->count; i++) {
        if (!page->cache)
            umb_computation_clear (&page->rows [i]);
        umb_computations_store_parts_free (&page->parts [i], page->parts_count [i]);
    }
    free (page->rows);
    free (page->parts);
    free (page->parts_count);
    free (page->by_id);
}

int
umb_computations_store_list (umb_store_t *store, umb_computation_cache_t *cache,
                             const char *workspace_id, const char *participant,
                             const char *name_prefix, const char *cursor, int64_t limit,
                             umb_computations_fn *fn, void *arg, bool *more)
{
    assert (limit > 0 && limit <= UMB_COMPUTATIONS_LIST_MAX && fn && more);
    int64_t cursor_time = INT64_MAX;
    char cursor_id [40] = "\x7f";
    if (cursor && *cursor) {
        sqlite3_stmt *stmt = umb_store_query (store,
            "SELECT created_at FROM computations WHERE id = ? AND workspace_id = ?", "ss",
            cursor, workspace_id);
        int64_t time = umb_store_scalar (stmt);
        if (time < 0) {
            *more = false;          //  an unknown cursor: nothing follows it
            return 0;
        }
        cursor_time = time;
        snprintf (cursor_id, sizeof cursor_id, "%s", cursor);
    }
    //  LIKE with the prefix's own % and _ escaped
    char pattern [300] = "";
    if (name_prefix) {
        size_t at = 0;
        for (const char *c = name_prefix; *c && at < sizeof pattern - 3; c++) {
            if (*c == '%' || *c == '_' || *c == '\\')
                pattern [at++] = '\\';
            pattern [at++] = *c;
        }
        pattern [at++] = '%';
        pattern [at] = 0;
    }
    s_page_t page = { .limit = limit, .cache = cache };
    page.rows = calloc ((size_t) limit, sizeof (umb_computation_t));
    page.parts = calloc ((size_t) limit, sizeof (umb_participant_t *));
    page.parts_count = calloc ((size_t) limit, sizeof (size_t));
    assert (page.rows && page.parts && page.parts_count);
    sqlite3_stmt *stmt = umb_store_query (store, S_SELECT
        "WHERE workspace_id = ?"
        " AND (? IS NULL OR id IN (SELECT computation_id FROM participants WHERE user_id = ?))"
        " AND (? IS NULL OR name LIKE ? ESCAPE '\\')"
        " AND (created_at < ? OR (created_at = ? AND id < ?))"
        " ORDER BY created_at DESC, id DESC LIMIT ?", "sssssiisi",
        workspace_id, participant, participant, name_prefix ? pattern : NULL,
        name_prefix ? pattern : NULL, cursor_time, cursor_time, cursor_id, limit + 1);
    int rc = umb_store_each (stmt, s_page_row, NULL, &page);
    if (rc == 0 && page.failed)
        rc = -1;
    if (rc == 0)
        rc = s_page_parts (store, &page);
    if (rc == 0)
        for (size_t i = 0; i < page.count; i++)
            fn (&page.rows [i], page.parts [i], page.parts_count [i], arg);
    *more = rc == 0 && page.seen > limit;
    s_page_clear (&page);
    return rc;
}

typedef struct {
    umb_participant_t *parts;
    size_t             count;
} s_parts_t;

static void
s_part_fill (sqlite3_stmt *stmt, int first, umb_participant_t *part)
{
    memset (part, 0, sizeof *part);
    umb_store_column (stmt, first, part->user, sizeof part->user);
    part->roles = (unsigned) sqlite3_column_int64 (stmt, first + 1);
    const char *key = (const char *) sqlite3_column_text (stmt, first + 2);
    part->key = key ? strdup (key) : NULL;
    umb_store_column (stmt, first + 3, part->key_type, sizeof part->key_type);
    umb_store_column (stmt, first + 4, part->fingerprint, sizeof part->fingerprint);
}

static void
s_part_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    (void) fn;
    s_parts_t *parts = arg;
    parts->parts = realloc (parts->parts, (parts->count + 1) * sizeof (umb_participant_t));
    assert (parts->parts);
    s_part_fill (stmt, 0, &parts->parts [parts->count++]);
}

int
umb_computations_store_parts (umb_store_t *store, const char *id, umb_participant_t **parts,
                              size_t *count)
{
    s_parts_t found = { NULL, 0 };
    sqlite3_stmt *stmt = umb_store_query (store,
        "SELECT user_id, roles, key, key_type, fingerprint FROM participants"
        " WHERE computation_id = ? ORDER BY user_id", "s", id);
    int rc = umb_store_each (stmt, s_part_each, NULL, &found);
    if (rc) {
        umb_computations_store_parts_free (&found.parts, found.count);
        found.count = 0;
    }
    *parts = found.parts;
    *count = found.count;
    return rc;
}

void
umb_computations_store_parts_free (umb_participant_t **parts, size_t count)
{
    assert (parts);
    for (size_t i = 0; *parts && i < count; i++)
        umb_participant_clear (&(*parts) [i]);
    free (*parts);
    *parts = NULL;
}

int
umb_computations_store_parts_set (umb_store_t *store, const char *id,
                                  const umb_participant_t *parts, size_t count)
{
    int rc = umb_store_run (store, "DELETE FROM participants WHERE computation_id = ?", "s", id);
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = umb_store_run (store,
            "INSERT INTO participants (computation_id, user_id, roles, key, key_type, fingerprint)"
            " VALUES (?, ?, ?, ?, ?, ?)", "ssisss",
            id, parts [i].user, (int64_t) parts [i].roles, parts [i].key,
            *parts [i].key_type ? parts [i].key_type : NULL,
            *parts [i].fingerprint ? parts [i].fingerprint : NULL);
    return rc;
}

//  ---------------------------------------------------------------- runs

#define S_RUN_COLUMNS \
    "id, computation_id, workspace_id, state, reason, tee, vcpus, memory_mb, ttl_s, cvm," \
    " agent_endpoint, attest_endpoint, backend_after, events, started_by, created_at, updated_at," \
    " deadline_at, billing"

int
umb_computations_store_run_insert (umb_store_t *store, const umb_run_row_t *run)
{
    return umb_store_run (store,
        "INSERT INTO runs (" S_RUN_COLUMNS ", manifest) VALUES"
        " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "ssssssiiisssiisiiiss",
        run->id, run->computation_id, run->workspace_id, run->state, run->reason, run->tee,
        run->vcpus, run->memory_mb, run->ttl_s, run->cvm, run->agent_endpoint,
        run->attest_endpoint, run->backend_after, run->events, run->started_by, run->created_at,
        run->updated_at, run->deadline_at, run->billing, run->manifest ? run->manifest : "");
}

int
umb_computations_store_run_update (umb_store_t *store, const umb_run_row_t *run)
{
    return umb_store_run (store,
        "UPDATE runs SET state = ?, reason = ?, cvm = ?, agent_endpoint = ?, attest_endpoint = ?,"
        " backend_after = ?, events = ?, updated_at = ?, deadline_at = ? WHERE id = ?",
        "sssssiiiis", run->state, run->reason, run->cvm, run->agent_endpoint,
        run->attest_endpoint, run->backend_after, run->events, run->updated_at,
        run->deadline_at, run->id);
}

static void
s_run_row (sqlite3_stmt *stmt, void *dest)
{
    umb_run_row_t *run = dest;
    memset (run, 0, sizeof *run);
    umb_store_column (stmt, 0, run->id, sizeof run->id);
    umb_store_column (stmt, 1, run->computation_id, sizeof run->computation_id);
    umb_store_column (stmt, 2, run->workspace_id, sizeof run->workspace_id);
    umb_store_column (stmt, 3, run->state, sizeof run->state);
    umb_store_column (stmt, 4, run->reason, sizeof run->reason);
    umb_store_column (stmt, 5, run->tee, sizeof run->tee);
    run->vcpus = sqlite3_column_int64 (stmt, 6);
    run->memory_mb = sqlite3_column_int64 (stmt, 7);
    run->ttl_s = sqlite3_column_int64 (stmt, 8);
    umb_store_column (stmt, 9, run->cvm, sizeof run->cvm);
    umb_store_column (stmt, 10, run->agent_endpoint, sizeof run->agent_endpoint);
    umb_store_column (stmt, 11, run->attest_endpoint, sizeof run->attest_endpoint);
    run->backend_after = sqlite3_column_int64 (stmt, 12);
    run->events = sqlite3_column_int64 (stmt, 13);
    umb_store_column (stmt, 14, run->started_by, sizeof run->started_by);
    run->created_at = sqlite3_column_int64 (stmt, 15);
    run->updated_at = sqlite3_column_int64 (stmt, 16);
    run->deadline_at = sqlite3_column_int64 (stmt, 17);
    umb_store_column (stmt, 18, run->billing, sizeof run->billing);
    if (sqlite3_column_count (stmt) > 19) {
        const char *manifest = (const char *) sqlite3_column_text (stmt, 19);
        run->manifest = strdup (manifest ? manifest : "");
    }
}

int
umb_computations_store_run_get (umb_store_t *store, const char *workspace_id, const char *id,
                                umb_run_row_t *run)
{
    memset (run, 0, sizeof *run);
    return umb_store_get (umb_store_query (store,
        "SELECT " S_RUN_COLUMNS ", manifest FROM runs WHERE id = ? AND (? IS NULL OR workspace_id = ?)",
        "sss", id, workspace_id, workspace_id), s_run_row, run);
}

void
umb_computations_store_run_clear (umb_run_row_t *run)
{
    if (run) {
        free (run->manifest);
        run->manifest = NULL;
    }
}

static void
s_run_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_run_row_t run;
    s_run_row (stmt, &run);
    ((umb_run_row_fn *) fn) (&run, arg);
    umb_computations_store_run_clear (&run);
}

#define S_LIVE_STATES "('Pending', 'Provisioning', 'AwaitingAssets', 'Running', 'ResultsReady')"

int
umb_computations_store_runs (umb_store_t *store, const char *workspace_id,
                             const char *computation_id, bool live, int64_t limit,
                             umb_run_row_fn *fn, void *arg)
{
    return umb_store_each (umb_store_query (store,
        "SELECT " S_RUN_COLUMNS " FROM runs WHERE workspace_id = ?"
        " AND (? IS NULL OR computation_id = ?) AND (? = 0 OR state IN " S_LIVE_STATES ")"
        " ORDER BY created_at DESC, id DESC LIMIT ?", "sssbi",
        workspace_id, computation_id, computation_id, live, limit), s_run_each, (void *) fn, arg);
}

int64_t
umb_computations_store_runs_live_count (umb_store_t *store, const char *computation_id)
{
    return umb_store_scalar (umb_store_query (store,
        "SELECT COUNT(*) FROM runs WHERE computation_id = ? AND state IN " S_LIVE_STATES, "s",
        computation_id));
}

int
umb_computations_store_run_billing (umb_store_t *store, const char *id, const char *billing)
{
    return umb_store_run (store, "UPDATE runs SET billing = ? WHERE id = ?", "ss", billing, id);
}

int
umb_computations_store_runs_unsettled (umb_store_t *store, umb_run_row_fn *fn, void *arg)
{
    return umb_store_each (umb_store_query (store,
        "SELECT " S_RUN_COLUMNS " FROM runs WHERE billing = 'reserved'"
        " AND state NOT IN " S_LIVE_STATES " ORDER BY updated_at LIMIT 100", ""),
        s_run_each, (void *) fn, arg);
}

int64_t
umb_computations_store_count (umb_store_t *store, const char *workspace_id)
{
    return umb_store_scalar (umb_store_query (store,
        "SELECT COUNT(*) FROM computations WHERE workspace_id = ?", "s", workspace_id));
}

int
umb_computations_store_runs_live (umb_store_t *store, umb_run_row_fn *fn, void *arg)
{
    return umb_store_each (umb_store_query (store,
        "SELECT " S_RUN_COLUMNS " FROM runs WHERE state IN " S_LIVE_STATES " ORDER BY created_at",
        ""), s_run_each, (void *) fn, arg);
}

int
umb_computations_store_run_event (umb_store_t *store, umb_run_row_t *run, const char *source,
                                  const char *type, const char *state, const char *message,
                                  int64_t time)
{
    int64_t seq = run->events + 1;
    int rc = umb_store_run (store,
        "INSERT INTO run_events (run_id, seq, time, source, type, state, message)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)", "siissss", run->id, seq, time, source, type, state,
        message ? message : "");
    if (rc == 0)
        rc = umb_store_run (store, "UPDATE runs SET events = ? WHERE id = ?", "is", seq, run->id);
    if (rc == 0)
        run->events = seq;
    return rc;
}

static void
s_event_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_run_event_row_t event = {
        .seq = sqlite3_column_int64 (stmt, 0), .time = sqlite3_column_int64 (stmt, 1),
        .source = (const char *) sqlite3_column_text (stmt, 2),
        .type = (const char *) sqlite3_column_text (stmt, 3),
        .state = (const char *) sqlite3_column_text (stmt, 4),
        .message = (const char *) sqlite3_column_text (stmt, 5)
    };
    ((umb_run_event_fn *) fn) (&event, arg);
}

int
umb_computations_store_run_events (umb_store_t *store, const char *run_id, const char *type,
                                   int64_t after, int64_t max, umb_run_event_fn *fn, void *arg)
{
    return umb_store_each (umb_store_query (store,
        "SELECT seq, time, source, type, state, message FROM run_events"
        " WHERE run_id = ? AND (? IS NULL OR type = ?) AND seq > ? ORDER BY seq LIMIT ?", "sssii",
        run_id, type, type, after, max), s_event_each, (void *) fn, arg);
}

//  ---------------------------------------------------------------- statistics

static void
s_day_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_computations_day_t day;
    memset (&day, 0, sizeof day);
    umb_store_column (stmt, 0, day.day, sizeof day.day);
    day.computations_created = sqlite3_column_int64 (stmt, 1);
    day.runs_started = sqlite3_column_int64 (stmt, 2);
    day.runs_completed = sqlite3_column_int64 (stmt, 3);
    day.runs_failed = sqlite3_column_int64 (stmt, 4);
    day.runs_cancelled = sqlite3_column_int64 (stmt, 5);
    ((umb_computations_day_fn *) fn) (&day, arg);
}

int
umb_computations_store_stats (umb_store_t *store, const char *workspace_id, int64_t since,
                              umb_computations_day_fn *fn, void *arg)
{
    //  A run "ends" on the day it last changed once final
    return umb_store_each (umb_store_query (store,
        "SELECT day, SUM(created), SUM(started), SUM(completed), SUM(failed), SUM(cancelled) FROM ("
        "  SELECT date(created_at, 'unixepoch') AS day, 1 AS created, 0 AS started, 0 AS completed,"
        "         0 AS failed, 0 AS cancelled"
        "    FROM computations WHERE workspace_id = ? AND created_at >= ?"
        "  UNION ALL"
        "  SELECT date(created_at, 'unixepoch'), 0, 1, 0, 0, 0"
        "    FROM runs WHERE workspace_id = ? AND created_at >= ?"
        "  UNION ALL"
        "  SELECT date(updated_at, 'unixepoch'), 0, 0, state = 'Completed', state = 'Failed',"
        "         state = 'Cancelled'"
        "    FROM runs WHERE workspace_id = ? AND updated_at >= ?"
        "     AND state IN ('Completed', 'Failed', 'Cancelled'))"
        " GROUP BY day ORDER BY day", "sisisi",
        workspace_id, since, workspace_id, since, workspace_id, since), s_day_each, (void *) fn, arg);
}

//  ---------------------------------------------------------------- selftest

static void
s_test_count (umb_computation_t *cmp, const umb_participant_t *parts, size_t count, void *arg)
{
    (void) cmp; (void) parts; (void) count;
    (*(int *) arg)++;
}

//  Each listed computation's participants are the ones stored for it.
typedef struct {
    umb_store_t *store;
    int          computations, participants;
} s_test_parts_t;

static void
s_test_parts (umb_computation_t *cmp, const umb_participant_t *parts, size_t count, void *arg)
{
    s_test_parts_t *test = arg;
    umb_participant_t *stored = NULL;
    size_t stored_count = 0;
    assert (umb_computations_store_parts (test->store, cmp->id, &stored, &stored_count) == 0);
    assert (count == stored_count);
    for (size_t i = 0; i < count; i++)
        assert (S_STREQ (parts [i].user, stored [i].user) && parts [i].roles == stored [i].roles
                && !parts [i].key == !stored [i].key);
    umb_computations_store_parts_free (&stored, stored_count);
    test->computations++;
    test->participants += (int) count;
}

//  The algorithm provider a listing gives for one computation.
typedef struct {
    const char *id;
    char        provider [UMB_COMPUTATION_USER_SIZE];
} s_test_provider_t;

static void
s_test_provider (umb_computation_t *cmp, const umb_participant_t *parts, size_t count, void *arg)
{
    (void) parts; (void) count;
    s_test_provider_t *test = arg;
    if (S_STREQ (cmp->id, test->id))
        snprintf (test->provider, sizeof test->provider, "%s", cmp->algo_provider);
}

static void
s_test_count_run (umb_run_row_t *run, void *arg)
{
    (void) run;
    (*(int *) arg)++;
}

static void
s_test_day (const umb_computations_day_t *day, void *arg)
{
    *(umb_computations_day_t *) arg = *day;
}

static void
s_test_count_event (const umb_run_event_row_t *event, void *arg)
{
    assert (S_STREQ (event->source, "agent") && event->seq == 2);
    (*(int *) arg)++;
}

void
umb_computations_store_test (bool verbose)
{
    if (verbose)
        printf (" * umb_computations_store: ");
    umb_log_t *log = umb_log_new ("test", UMB_LOG_ERROR, false);
    umb_store_t *store = umb_computations_store_open (":memory:", log);
    assert (store);
    for (int i = 0; i < 5; i++) {
        umb_computation_t cmp;
        umb_computation_init (&cmp);
        snprintf (cmp.id, sizeof cmp.id, "cmp_%d", i);
        snprintf (cmp.workspace_id, sizeof cmp.workspace_id, "%s", i < 4 ? "ws_1" : "ws_2");
        snprintf (cmp.name, sizeof cmp.name, "%s_%d", i % 2 ? "odd" : "even", i);
        snprintf (cmp.owner, sizeof cmp.owner, "usr_a");
        snprintf (cmp.algo_provider, sizeof cmp.algo_provider, "usr_b");
        cmp.version = 1;
        cmp.created_at = cmp.updated_at = 100 + i / 2;
        assert (umb_computations_store_insert (store, &cmp) == 0);
        umb_participant_t parts [2] = { { .roles = UMB_ROLE_OWNER }, { .roles = UMB_ROLE_ALGORITHM_PROVIDER } };
        snprintf (parts [0].user, sizeof parts [0].user, "usr_a");
        snprintf (parts [1].user, sizeof parts [1].user, "%s", i == 3 ? "usr_c" : "usr_b");
        assert (umb_computations_store_parts_set (store, cmp.id, parts, 2) == 0);
        umb_computation_clear (&cmp);
    }
    //  A name is unique in its workspace
    umb_computation_t dup;
    umb_computation_init (&dup);
    snprintf (dup.id, sizeof dup.id, "cmp_x");
    snprintf (dup.workspace_id, sizeof dup.workspace_id, "ws_1");
    snprintf (dup.name, sizeof dup.name, "even_0");
    assert (umb_computations_store_insert (store, &dup) == UMB_STORE_CONSTRAINT);
    snprintf (dup.workspace_id, sizeof dup.workspace_id, "ws_2");
    assert (umb_computations_store_insert (store, &dup) == 0);
    umb_computation_clear (&dup);

    umb_computation_t cmp;
    assert (umb_computations_store_get (store, "ws_1", "cmp_2", &cmp) == 0);
    assert (S_STREQ (cmp.name, "even_2") && S_STREQ (cmp.algo_provider, "usr_b") && cmp.version == 1);
    cmp.version = 2;
    snprintf (cmp.name, sizeof cmp.name, "renamed");
    assert (umb_computations_store_update (store, &cmp) == 0);
    umb_computation_clear (&cmp);
    assert (umb_computations_store_get (store, "ws_1", "cmp_2", &cmp) == 0);
    assert (S_STREQ (cmp.name, "renamed") && cmp.version == 2);
    umb_computation_clear (&cmp);
    assert (umb_computations_store_get (store, "ws_2", "cmp_2", &cmp) == UMB_STORE_NOT_FOUND);
    umb_computation_clear (&cmp);

    //  Lists: all, by participant, by name prefix, paged
    int count = 0;
    bool more = true;
    assert (umb_computations_store_list (store, NULL, "ws_1", NULL, NULL, NULL, 10, s_test_count, &count,
                                         &more) == 0 && count == 4 && !more);
    count = 0;
    assert (umb_computations_store_list (store, NULL, "ws_1", "usr_c", NULL, NULL, 10, s_test_count,
                                         &count, &more) == 0 && count == 1);
    count = 0;
    assert (umb_computations_store_list (store, NULL, "ws_1", NULL, "odd", NULL, 10, s_test_count,
                                         &count, &more) == 0 && count == 2);
    count = 0;
    assert (umb_computations_store_list (store, NULL, "ws_1", NULL, "od%", NULL, 10, s_test_count,
                                         &count, &more) == 0 && count == 0);
    count = 0;
    assert (umb_computations_store_list (store, NULL, "ws_1", NULL, NULL, NULL, 3, s_test_count, &count,
                                         &more) == 0 && count == 3 && more);
    count = 0;
    assert (umb_computations_store_list (store, NULL, "ws_1", NULL, NULL, "cmp_1", 3, s_test_count,
                                         &count, &more) == 0 && count == 1 && !more);
    //  ... each with its own participants, read for the whole page at once
    s_test_parts_t listed = { store, 0, 0 };
    assert (umb_computations_store_list (store, NULL, "ws_1", NULL, NULL, NULL, 10, s_test_parts,
                                         &listed, &more) == 0);
    assert (listed.computations == 4 && listed.participants == 8);
    //  ... the same through a cache of parsed definitions: parsed once, then
    //  served; a definition changed in the store is parsed again
    umb_computation_cache_t *cache = umb_computation_cache_new (UMB_COMPUTATIONS_LIST_MAX + 1);
    for (int round = 0; round < 2; round++) {
        listed = (s_test_parts_t) { store, 0, 0 };
        assert (umb_computations_store_list (store, cache, "ws_1", NULL, NULL, NULL, 10,
                                             s_test_parts, &listed, &more) == 0);
        assert (listed.computations == 4 && listed.participants == 8);
    }
    size_t parsed = 0, hits = 0;
    umb_computation_cache_stats (cache, &parsed, &hits);
    assert (parsed == 4 && hits == 4);
    umb_computation_t changed;
    assert (umb_computations_store_get (store, "ws_1", "cmp_0", &changed) == 0);
    snprintf (changed.algo_provider, sizeof changed.algo_provider, "usr_z");
    changed.version++;
    assert (umb_computations_store_update (store, &changed) == 0);
    umb_computation_clear (&changed);
    s_test_provider_t provider = { "cmp_0", "" };
    assert (umb_computations_store_list (store, cache, "ws_1", NULL, NULL, NULL, 10,
                                         s_test_provider, &provider, &more) == 0);
    assert (S_STREQ (provider.provider, "usr_z"));
    umb_computation_cache_stats (cache, &parsed, &hits);
    assert (parsed == 5 && hits == 7);
    umb_computation_cache_destroy (&cache);

    //  Participants, replaced and deleted with their computation
    umb_participant_t *parts = NULL;
    size_t parts_count = 0;
    assert (umb_computations_store_parts (store, "cmp_3", &parts, &parts_count) == 0);
    assert (parts_count == 2 && S_STREQ (parts [1].user, "usr_c") && !parts [1].key);
    parts [1].key = strdup ("-----BEGIN PUBLIC KEY-----\n");
    snprintf (parts [1].key_type, sizeof parts [1].key_type, "ed25519");
    assert (umb_computations_store_parts_set (store, "cmp_3", parts, parts_count) == 0);
    umb_computations_store_parts_free (&parts, parts_count);
    assert (umb_computations_store_parts (store, "cmp_3", &parts, &parts_count) == 0);
    assert (parts_count == 2 && parts [1].key && S_STREQ (parts [1].key_type, "ed25519"));
    umb_computations_store_parts_free (&parts, parts_count);
    assert (umb_computations_store_delete (store, "cmp_3") == 0);
    assert (umb_computations_store_parts (store, "cmp_3", &parts, &parts_count) == 0);
    assert (parts_count == 0);
    umb_computations_store_parts_free (&parts, parts_count);

    //  Runs and their events
    umb_run_row_t run = { .id = "run_1", .computation_id = "cmp_1", .workspace_id = "ws_1",
                          .state = "Pending", .tee = "none", .vcpus = 1, .memory_mb = 512,
                          .ttl_s = 600, .started_by = "usr_a", .created_at = 5, .updated_at = 5,
                          .deadline_at = 905 };
    run.manifest = strdup ("{\"id\": \"cmp_1\"}");
    assert (umb_computations_store_run_insert (store, &run) == 0);
    assert (umb_computations_store_run_event (store, &run, "computations", "state", "Pending",
                                              "started", 5) == 0 && run.events == 1);
    assert (umb_computations_store_run_event (store, &run, "agent", "log", "Running", "line", 6) == 0);
    snprintf (run.state, sizeof run.state, "Provisioning");
    snprintf (run.cvm, sizeof run.cvm, "cvm_1");
    run.backend_after = 7;
    assert (umb_computations_store_run_update (store, &run) == 0);
    umb_computations_store_run_clear (&run);
    umb_run_row_t back;
    assert (umb_computations_store_run_get (store, "ws_1", "run_1", &back) == 0);
    assert (S_STREQ (back.state, "Provisioning") && S_STREQ (back.cvm, "cvm_1") && back.events == 2);
    assert (back.backend_after == 7 && back.manifest && strstr (back.manifest, "cmp_1"));
    umb_computations_store_run_clear (&back);
    assert (umb_computations_store_run_get (store, "ws_2", "run_1", &back) == UMB_STORE_NOT_FOUND);
    assert (umb_computations_store_run_get (store, NULL, "run_1", &back) == 0);
    umb_computations_store_run_clear (&back);
    int live = 0;
    assert (umb_computations_store_runs_live (store, s_test_count_run, &live) == 0 && live == 1);
    int events = 0;
    assert (umb_computations_store_run_events (store, "run_1", NULL, 1, 10, s_test_count_event,
                                               &events) == 0);
    assert (events == 1);
    events = 0;
    assert (umb_computations_store_run_events (store, "run_1", "log", 0, 10, s_test_count_event,
                                               &events) == 0);
    assert (events == 1);           //  only the log line
    //  Statistics: computations of ws_1 made at 100..101 (1970-01-01), the run started at 5
    umb_computations_day_t day = { .runs_started = -1 };
    assert (umb_computations_store_stats (store, "ws_1", 0, s_test_day, &day) == 0);
    assert (S_STREQ (day.day, "1970-01-01") && day.computations_created == 3 && day.runs_started == 1);
    assert (day.runs_completed == 0);
    memset (&day, 0, sizeof day);
    assert (umb_computations_store_stats (store, "ws_1", 86400, s_test_day, &day) == 0);
    assert (!*day.day);
    umb_store_destroy (&store);
    umb_log_destroy (&log);
    if (verbose)
        printf ("OK\n");
}
