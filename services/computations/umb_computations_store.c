//  umb_computations_store - the computations service's SQL
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

umb_store_t *
umb_computations_store_open (const char *path, umb_log_t *log)
{
    const umb_migration_t migrations [] = {
        { 1, s_schema },
        { 2, umb_audit_schema },
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

//  One row: the columns, then the definition. A definition that does not
//  load leaves cmp->id empty (the caller reports a storage fault).
static void
s_row (sqlite3_stmt *stmt, void *dest)
{
    umb_computation_t *cmp = dest;
    const char *json = (const char *) sqlite3_column_text (stmt, 4);
    char reason [256];
    if (!json || umb_computation_from_json (cmp, json, reason, sizeof reason)) {
        umb_computation_init (cmp);
        return;
    }
    umb_store_column (stmt, 0, cmp->id, sizeof cmp->id);
    umb_store_column (stmt, 1, cmp->workspace_id, sizeof cmp->workspace_id);
    umb_store_column (stmt, 2, cmp->name, sizeof cmp->name);
    umb_store_column (stmt, 3, cmp->owner, sizeof cmp->owner);
    cmp->version = sqlite3_column_int64 (stmt, 5);
    cmp->created_at = sqlite3_column_int64 (stmt, 6);
    cmp->updated_at = sqlite3_column_int64 (stmt, 7);
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

typedef struct {
    umb_computations_fn *fn;
    void                *arg;
    int64_t              limit;
    int64_t              seen;
} s_list_t;

static void
s_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    (void) fn;
    s_list_t *list = arg;
    if (++list->seen > list->limit)
        return;
    umb_computation_t cmp;
    memset (&cmp, 0, sizeof cmp);
    s_row (stmt, &cmp);
    if (*cmp.id)
        list->fn (&cmp, list->arg);
    umb_computation_clear (&cmp);
}

int
umb_computations_store_list (umb_store_t *store, const char *workspace_id, const char *participant,
                             const char *name_prefix, const char *cursor, int64_t limit,
                             umb_computations_fn *fn, void *arg, bool *more)
{
    assert (limit > 0 && fn && more);
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
    int64_t probe = limit + 1;
    sqlite3_stmt *stmt = umb_store_query (store, S_SELECT
        "WHERE workspace_id = ?"
        " AND (? IS NULL OR id IN (SELECT computation_id FROM participants WHERE user_id = ?))"
        " AND (? IS NULL OR name LIKE ? ESCAPE '\\')"
        " AND (created_at < ? OR (created_at = ? AND id < ?))"
        " ORDER BY created_at DESC, id DESC LIMIT ?", "sssssiisi",
        workspace_id, participant, participant, name_prefix ? pattern : NULL,
        name_prefix ? pattern : NULL, cursor_time, cursor_time, cursor_id, probe);
    s_list_t list = { fn, arg, limit, 0 };
    int rc = umb_store_each (stmt, s_each, NULL, &list);
    *more = list.seen > limit;
    return rc;
}

typedef struct {
    umb_participant_t *parts;
    size_t             count;
} s_parts_t;

static void
s_part_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    (void) fn;
    s_parts_t *parts = arg;
    parts->parts = realloc (parts->parts, (parts->count + 1) * sizeof (umb_participant_t));
    assert (parts->parts);
    umb_participant_t *part = &parts->parts [parts->count++];
    memset (part, 0, sizeof *part);
    umb_store_column (stmt, 0, part->user, sizeof part->user);
    part->roles = (unsigned) sqlite3_column_int64 (stmt, 1);
    const char *key = (const char *) sqlite3_column_text (stmt, 2);
    part->key = key ? strdup (key) : NULL;
    umb_store_column (stmt, 3, part->key_type, sizeof part->key_type);
    umb_store_column (stmt, 4, part->fingerprint, sizeof part->fingerprint);
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

//  ---------------------------------------------------------------- selftest

static void
s_test_count (umb_computation_t *cmp, void *arg)
{
    (void) cmp;
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
    assert (umb_computations_store_list (store, "ws_1", NULL, NULL, NULL, 10, s_test_count, &count,
                                         &more) == 0 && count == 4 && !more);
    count = 0;
    assert (umb_computations_store_list (store, "ws_1", "usr_c", NULL, NULL, 10, s_test_count,
                                         &count, &more) == 0 && count == 1);
    count = 0;
    assert (umb_computations_store_list (store, "ws_1", NULL, "odd", NULL, 10, s_test_count,
                                         &count, &more) == 0 && count == 2);
    count = 0;
    assert (umb_computations_store_list (store, "ws_1", NULL, "od%", NULL, 10, s_test_count,
                                         &count, &more) == 0 && count == 0);
    count = 0;
    assert (umb_computations_store_list (store, "ws_1", NULL, NULL, NULL, 3, s_test_count, &count,
                                         &more) == 0 && count == 3 && more);
    count = 0;
    assert (umb_computations_store_list (store, "ws_1", NULL, NULL, "cmp_1", 3, s_test_count,
                                         &count, &more) == 0 && count == 1 && !more);

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
    umb_store_destroy (&store);
    umb_log_destroy (&log);
    if (verbose)
        printf ("OK\n");
}
