//  umb_backends_store - the backends service's SQL: hosts, CVMs, events
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "umb_backends_store.h"
#include "umb_testkit.h"

//  Portable SQL (see umb_store.h). A URI is unique in the whole service: two
//  hosts on one libvirt connection would reconcile each other's domains away.
static const umb_migration_t s_migrations [] = {
    { 1,
      "CREATE TABLE hosts ("
      "  id           TEXT PRIMARY KEY,"
      "  workspace_id TEXT NOT NULL,"
      "  name         TEXT NOT NULL,"
      "  uri          TEXT NOT NULL UNIQUE,"
      "  driver       TEXT NOT NULL CHECK (driver IN ('libvirt', 'test', 'process')),"
      "  insecure_dev INTEGER NOT NULL,"
      "  status       TEXT NOT NULL,"
      "  error        TEXT,"
      "  tees         TEXT NOT NULL,"
      "  cpus         INTEGER NOT NULL,"
      "  memory_mb    INTEGER NOT NULL,"
      "  kvm          INTEGER NOT NULL,"
      "  created_by   TEXT NOT NULL,"
      "  created_at   INTEGER NOT NULL,"
      "  UNIQUE (workspace_id, name)"
      ");"
      "CREATE TABLE cvms ("
      "  id              TEXT PRIMARY KEY,"
      "  workspace_id    TEXT NOT NULL,"
      "  host_id         TEXT NOT NULL REFERENCES hosts (id),"
      "  tee             TEXT NOT NULL,"
      "  vcpus           INTEGER NOT NULL,"
      "  memory_mb       INTEGER NOT NULL,"
      "  ttl_s           INTEGER NOT NULL,"
      "  expires_at      INTEGER NOT NULL,"
      "  state           TEXT NOT NULL,"
      "  reason          TEXT,"
      "  computation     TEXT,"
      "  agent           TEXT NOT NULL,"
      "  agent_key       TEXT,"
      "  insecure        INTEGER NOT NULL,"
      "  agent_endpoint  TEXT,"
      "  attest_endpoint TEXT,"
      "  mesh_cert       TEXT,"
      "  events          INTEGER NOT NULL,"
      "  acked           INTEGER NOT NULL,"
      "  agent_seq       INTEGER NOT NULL,"
      "  created_by      TEXT NOT NULL,"
      "  created_at      INTEGER NOT NULL,"
      "  updated_at      INTEGER NOT NULL"
      ");"
      "CREATE INDEX cvms_by_workspace ON cvms (workspace_id, created_at, id);"
      "CREATE INDEX cvms_by_host ON cvms (host_id, state);"
      "CREATE TABLE events ("
      "  cvm_id    TEXT NOT NULL REFERENCES cvms (id),"
      "  seq       INTEGER NOT NULL,"
      "  time      INTEGER NOT NULL,"
      "  source    TEXT NOT NULL,"
      "  type      TEXT NOT NULL,"
      "  state     TEXT NOT NULL,"
      "  message   TEXT NOT NULL,"
      "  agent_seq INTEGER NOT NULL,"
      "  PRIMARY KEY (cvm_id, seq)"
      ");"
    },
    //  backends.run.create: the mesh service that made a CVM (NULL: a user)
    { 2, "ALTER TABLE cvms ADD COLUMN service_key TEXT;" },
    //  Metering (umb_meter): each CVM's usage is recorded up to metered_at
    //  (-1: all of it), and waits in usage_outbox until billing has it
    { 3, "ALTER TABLE cvms ADD COLUMN metered_at INTEGER NOT NULL DEFAULT -1;"
         "ALTER TABLE cvms ADD COLUMN meter_seq INTEGER NOT NULL DEFAULT 0;"
         "UPDATE cvms SET metered_at = created_at WHERE state NOT IN ('Destroyed', 'Failed');"
         "CREATE TABLE usage_outbox ("
         "  id           TEXT PRIMARY KEY,"
         "  workspace_id TEXT NOT NULL,"
         "  tee          TEXT NOT NULL,"
         "  vcpus        INTEGER NOT NULL,"
         "  memory_mb    INTEGER NOT NULL,"
         "  seconds      INTEGER NOT NULL,"
         "  at           INTEGER NOT NULL,"
         "  paid         INTEGER NOT NULL);" },
    { 4, "CREATE INDEX cvms_by_state ON cvms (state);" },
    //  umb_meter_collect reads the CVMs still metered every second: only they
    { 5, "CREATE INDEX cvms_metered ON cvms (metered_at) WHERE metered_at >= 0;" },
    { 0, NULL }
};

umb_store_t *
umb_backends_store_open (const char *path, umb_log_t *log)
{
    return umb_store_new (path, s_migrations, log);
}

//  ---------------------------------------------------------------- hosts

#define S_HOST_SELECT \
    "SELECT id, workspace_id, name, uri, driver, insecure_dev, status, error, tees, cpus," \
    " memory_mb, kvm, created_by, created_at FROM hosts "

static void
s_host_row (sqlite3_stmt *stmt, void *dest)
{
    umb_backends_host_t *host = dest;
    memset (host, 0, sizeof *host);
    umb_store_column (stmt, 0, host->id, sizeof host->id);
    umb_store_column (stmt, 1, host->workspace_id, sizeof host->workspace_id);
    umb_store_column (stmt, 2, host->name, sizeof host->name);
    umb_store_column (stmt, 3, host->uri, sizeof host->uri);
    umb_store_column (stmt, 4, host->driver, sizeof host->driver);
    host->insecure_dev = sqlite3_column_int (stmt, 5) != 0;
    umb_store_column (stmt, 6, host->status, sizeof host->status);
    umb_store_column (stmt, 7, host->error, sizeof host->error);
    umb_store_column (stmt, 8, host->tees, sizeof host->tees);
    host->cpus = sqlite3_column_int64 (stmt, 9);
    host->memory_mb = sqlite3_column_int64 (stmt, 10);
    host->kvm = sqlite3_column_int (stmt, 11) != 0;
    umb_store_column (stmt, 12, host->created_by, sizeof host->created_by);
    host->created_at = sqlite3_column_int64 (stmt, 13);
}

int
umb_backends_store_host_insert (umb_store_t *store, const umb_backends_host_t *host)
{
    return umb_store_run (store,
        "INSERT INTO hosts (id, workspace_id, name, uri, driver, insecure_dev, status, error,"
        " tees, cpus, memory_mb, kvm, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "sssssbsssiibsi",
        host->id, host->workspace_id, host->name, host->uri, host->driver,
        (int) host->insecure_dev, host->status, *host->error ? host->error : NULL, host->tees,
        host->cpus, host->memory_mb, (int) host->kvm, host->created_by, host->created_at);
}

int
umb_backends_store_host_get (umb_store_t *store, const char *workspace_id, const char *id_or_name,
                             umb_backends_host_t *host)
{
    return umb_store_get (umb_store_query (store, S_HOST_SELECT
                              "WHERE workspace_id = ? AND (id = ? OR name = ?)", "sss",
                              workspace_id, id_or_name, id_or_name), s_host_row, host);
}

int
umb_backends_store_host_by_id (umb_store_t *store, const char *id, umb_backends_host_t *host)
{
    return umb_store_get (umb_store_query (store, S_HOST_SELECT "WHERE id = ?", "s", id),
                          s_host_row, host);
}

static void
s_host_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_backends_host_t host;
    s_host_row (stmt, &host);
    ((umb_backends_host_fn *) fn) (&host, arg);
}

int
umb_backends_store_host_each (umb_store_t *store, const char *workspace_id,
                              umb_backends_host_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = workspace_id
        ? umb_store_query (store, S_HOST_SELECT "WHERE workspace_id = ? ORDER BY name", "s",
                           workspace_id)
        : umb_store_query (store, S_HOST_SELECT "ORDER BY created_at, id", "");
    return umb_store_each (stmt, s_host_each, (void *) fn, arg);
}

int
umb_backends_store_host_status (umb_store_t *store, const char *id, const char *status,
                                const char *error)
{
    return umb_store_run (store, "UPDATE hosts SET status = ?, error = ? WHERE id = ?", "sss",
                          status, error && *error ? error : NULL, id);
}

int
umb_backends_store_host_delete (umb_store_t *store, const char *id)
{
    if (umb_store_begin (store))
        return -1;
    int rc = umb_store_run (store, "DELETE FROM events WHERE cvm_id IN"
                                   " (SELECT id FROM cvms WHERE host_id = ?)", "s", id);
    if (rc == 0)
        rc = umb_store_run (store, "DELETE FROM cvms WHERE host_id = ?", "s", id);
    if (rc == 0)
        rc = umb_store_run (store, "DELETE FROM hosts WHERE id = ?", "s", id);
    if (rc) {
        umb_store_rollback (store);
        return -1;
    }
    return umb_store_commit (store);
}

typedef struct {
    int64_t cvms, vcpus, memory_mb;
} s_load_t;

static void
s_load_row (sqlite3_stmt *stmt, void *dest)
{
    s_load_t *load = dest;
    load->cvms = sqlite3_column_int64 (stmt, 0);
    load->vcpus = sqlite3_column_int64 (stmt, 1);
    load->memory_mb = sqlite3_column_int64 (stmt, 2);
}

int
umb_backends_store_host_load (umb_store_t *store, const char *id, int64_t *cvms,
                              int64_t *vcpus, int64_t *memory_mb)
{
    s_load_t load = { 0 };
    int rc = umb_store_get (umb_store_query (store,
        "SELECT COUNT(*), COALESCE(SUM(vcpus), 0), COALESCE(SUM(memory_mb), 0) FROM cvms"
        " WHERE host_id = ? AND state NOT IN ('Destroyed', 'Failed')", "s", id),
        s_load_row, &load);
    *cvms = load.cvms;
    *vcpus = load.vcpus;
    *memory_mb = load.memory_mb;
    return rc;
}

bool
umb_backends_store_uri_taken (umb_store_t *store, const char *uri)
{
    return umb_store_scalar (umb_store_query (store, "SELECT COUNT(*) FROM hosts WHERE uri = ?",
                                              "s", uri)) > 0;
}

//  ---------------------------------------------------------------- cvms

#define S_CVM_SELECT \
    "SELECT id, workspace_id, host_id, tee, vcpus, memory_mb, ttl_s, expires_at, state, reason," \
    " computation, agent, agent_key, insecure, agent_endpoint, attest_endpoint, mesh_cert," \
    " events, acked, agent_seq, created_by, created_at, updated_at, service_key FROM cvms "

static void
s_cvm_row (sqlite3_stmt *stmt, void *dest)
{
    umb_backends_cvm_t *cvm = dest;
    memset (cvm, 0, sizeof *cvm);
    umb_store_column (stmt, 0, cvm->id, sizeof cvm->id);
    umb_store_column (stmt, 1, cvm->workspace_id, sizeof cvm->workspace_id);
    umb_store_column (stmt, 2, cvm->host_id, sizeof cvm->host_id);
    umb_store_column (stmt, 3, cvm->tee, sizeof cvm->tee);
    cvm->vcpus = sqlite3_column_int64 (stmt, 4);
    cvm->memory_mb = sqlite3_column_int64 (stmt, 5);
    cvm->ttl_s = sqlite3_column_int64 (stmt, 6);
    cvm->expires_at = sqlite3_column_int64 (stmt, 7);
    umb_store_column (stmt, 8, cvm->state, sizeof cvm->state);
    umb_store_column (stmt, 9, cvm->reason, sizeof cvm->reason);
    umb_store_column (stmt, 10, cvm->computation, sizeof cvm->computation);
    umb_store_column (stmt, 11, cvm->agent, sizeof cvm->agent);
    umb_store_column (stmt, 12, cvm->agent_key, sizeof cvm->agent_key);
    cvm->insecure = sqlite3_column_int (stmt, 13) != 0;
    umb_store_column (stmt, 14, cvm->agent_endpoint, sizeof cvm->agent_endpoint);
    umb_store_column (stmt, 15, cvm->attest_endpoint, sizeof cvm->attest_endpoint);
    umb_store_column (stmt, 16, cvm->mesh_cert, sizeof cvm->mesh_cert);
    cvm->events = sqlite3_column_int64 (stmt, 17);
    cvm->acked = sqlite3_column_int64 (stmt, 18);
    cvm->agent_seq = sqlite3_column_int64 (stmt, 19);
    umb_store_column (stmt, 20, cvm->created_by, sizeof cvm->created_by);
    cvm->created_at = sqlite3_column_int64 (stmt, 21);
    cvm->updated_at = sqlite3_column_int64 (stmt, 22);
    umb_store_column (stmt, 23, cvm->service_key, sizeof cvm->service_key);
}

static const char *
s_null (const char *text)
{
    return text && *text ? text : NULL;
}

int
umb_backends_store_cvm_insert (umb_store_t *store, const umb_backends_cvm_t *cvm)
{
    return umb_store_run (store,
        "INSERT INTO cvms (id, workspace_id, host_id, tee, vcpus, memory_mb, ttl_s, expires_at,"
        " state, reason, computation, agent, agent_key, insecure, agent_endpoint, attest_endpoint,"
        " mesh_cert, events, acked, agent_seq, created_by, created_at, updated_at, service_key,"
        " metered_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?, ?, ?)",
        "ssssiiiisssssbssssiisi",
        cvm->id, cvm->workspace_id, cvm->host_id, cvm->tee, cvm->vcpus, cvm->memory_mb,
        cvm->ttl_s, cvm->expires_at, cvm->state, s_null (cvm->reason), s_null (cvm->computation),
        cvm->agent, s_null (cvm->agent_key), (int) cvm->insecure, s_null (cvm->agent_endpoint),
        s_null (cvm->attest_endpoint), s_null (cvm->mesh_cert), cvm->created_by, cvm->created_at,
        cvm->updated_at, s_null (cvm->service_key), cvm->created_at);
}

int
umb_backends_store_cvm_update (umb_store_t *store, const umb_backends_cvm_t *cvm)
{
    return umb_store_run (store,
        "UPDATE cvms SET state = ?, reason = ?, agent = ?, agent_key = ?, insecure = ?,"
        " agent_endpoint = ?, attest_endpoint = ?, mesh_cert = ?, expires_at = ?, updated_at = ?"
        " WHERE id = ?", "ssssbsssiis",
        cvm->state, s_null (cvm->reason), cvm->agent, s_null (cvm->agent_key),
        (int) cvm->insecure, s_null (cvm->agent_endpoint), s_null (cvm->attest_endpoint),
        s_null (cvm->mesh_cert), cvm->expires_at, cvm->updated_at, cvm->id);
}

int
umb_backends_store_cvm_move (umb_store_t *store, const char *id, const char *host_id)
{
    return umb_store_run (store, "UPDATE cvms SET host_id = ? WHERE id = ?", "ss", host_id, id);
}

int
umb_backends_store_cvm_get (umb_store_t *store, const char *workspace_id, const char *id,
                            umb_backends_cvm_t *cvm)
{
    if (workspace_id)
        return umb_store_get (umb_store_query (store, S_CVM_SELECT
                                  "WHERE id = ? AND workspace_id = ?", "ss", id, workspace_id),
                              s_cvm_row, cvm);
    return umb_store_get (umb_store_query (store, S_CVM_SELECT "WHERE id = ?", "s", id),
                          s_cvm_row, cvm);
}

typedef struct {
    umb_backends_cvm_fn *fn;
    void                *arg;
    int64_t              limit;
    int64_t              seen;
} s_list_t;

static void
s_cvm_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    s_list_t *list = arg;
    (void) fn;
    list->seen++;
    if (list->limit > 0 && list->seen > list->limit)
        return;                     //  the probe row for "more"
    umb_backends_cvm_t cvm;
    s_cvm_row (stmt, &cvm);
    list->fn (&cvm, list->arg);
}

int
umb_backends_store_cvm_list (umb_store_t *store, const char *workspace_id, const char *state,
                             const char *cursor, int64_t limit, umb_backends_cvm_fn *fn,
                             void *arg, bool *more)
{
    assert (limit > 0);
    //  The cursor is the last id of the previous page: rows strictly older
    //  in (created_at, id) order come next
    int64_t cursor_time = INT64_MAX;
    const char *cursor_id = "";
    umb_backends_cvm_t last;
    if (cursor && *cursor) {
        int rc = umb_backends_store_cvm_get (store, workspace_id, cursor, &last);
        if (rc == -1)
            return -1;
        if (rc == 0) {
            cursor_time = last.created_at;
            cursor_id = last.id;
        }
        else {
            *more = false;          //  an unknown cursor: nothing follows it
            return 0;
        }
    }
    int64_t probe = limit + 1;
    sqlite3_stmt *stmt = umb_store_query (store, S_CVM_SELECT
        "WHERE workspace_id = ? AND (? IS NULL OR state = ?)"
        " AND (created_at < ? OR (created_at = ? AND id < ?))"
        " ORDER BY created_at DESC, id DESC LIMIT ?", "sssiisi",
        workspace_id, state, state, cursor_time, cursor_time,
        *cursor_id ? cursor_id : "\x7f", probe);
    s_list_t list = { fn, arg, limit, 0 };
    int rc = umb_store_each (stmt, s_cvm_each, NULL, &list);
    *more = list.seen > limit;
    return rc;
}

static void
s_cvm_live_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_backends_cvm_t cvm;
    s_cvm_row (stmt, &cvm);
    ((umb_backends_cvm_fn *) fn) (&cvm, arg);
}

int
umb_backends_store_cvm_live (umb_store_t *store, umb_backends_cvm_fn *fn, void *arg)
{
    return umb_store_each (umb_store_query (store, S_CVM_SELECT
                               "WHERE state NOT IN ('Destroyed', 'Failed') ORDER BY created_at, id",
                               ""), s_cvm_live_each, (void *) fn, arg);
}

int64_t
umb_backends_store_cvm_live_count (umb_store_t *store, const char *workspace_id)
{
    return umb_store_scalar (umb_store_query (store,
        "SELECT COUNT (*) FROM cvms WHERE workspace_id = ? AND state NOT IN ('Destroyed', 'Failed')",
        "s", workspace_id));
}

//  ---------------------------------------------------------------- events

int
umb_backends_store_event_append (umb_store_t *store, const char *cvm_id,
                                 const umb_backends_event_t *event, int64_t *seq)
{
    if (umb_store_begin (store))
        return -1;
    int64_t next = umb_store_scalar (umb_store_query (store,
                       "SELECT events FROM cvms WHERE id = ?", "s", cvm_id));
    int rc = next < 0 ? -1 : 0;
    next++;
    if (rc == 0)
        rc = umb_store_run (store,
            "INSERT INTO events (cvm_id, seq, time, source, type, state, message, agent_seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "siissssi", cvm_id, next, event->time,
            event->source, event->type, event->state ? event->state : "",
            event->message ? event->message : "", event->agent_seq);
    if (rc == 0)
        rc = umb_store_run (store,
            "UPDATE cvms SET events = ?, agent_seq = MAX(agent_seq, ?) WHERE id = ?", "iis",
            next, event->agent_seq, cvm_id);
    if (rc) {
        umb_store_rollback (store);
        return -1;
    }
    if (umb_store_commit (store))
        return -1;
    if (seq)
        *seq = next;
    return 0;
}

static void
s_event_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_backends_event_t event = {
        .seq = sqlite3_column_int64 (stmt, 0),
        .time = sqlite3_column_int64 (stmt, 1),
        .source = (const char *) sqlite3_column_text (stmt, 2),
        .type = (const char *) sqlite3_column_text (stmt, 3),
        .state = (const char *) sqlite3_column_text (stmt, 4),
        .message = (const char *) sqlite3_column_text (stmt, 5),
        .agent_seq = sqlite3_column_int64 (stmt, 6)
    };
    ((umb_backends_event_fn *) fn) (&event, arg);
}

int
umb_backends_store_events (umb_store_t *store, const char *cvm_id, int64_t after, int64_t max,
                           umb_backends_event_fn *fn, void *arg)
{
    return umb_store_each (umb_store_query (store,
        "SELECT seq, time, source, type, state, message, agent_seq FROM events"
        " WHERE cvm_id = ? AND seq > ? ORDER BY seq LIMIT ?", "sii", cvm_id, after, max),
        s_event_each, (void *) fn, arg);
}

int
umb_backends_store_ack (umb_store_t *store, const char *cvm_id, int64_t acked)
{
    return umb_store_run (store, "UPDATE cvms SET acked = MAX(acked, MIN(?, events)) WHERE id = ?",
                          "is", acked, cvm_id);
}

//  ---------------------------------------------------------------- selftest

static void
s_count_cvm (const umb_backends_cvm_t *cvm, void *arg)
{
    (void) cvm;
    (*(int *) arg)++;
}

typedef struct {
    char last [32];
    int  count;
} s_page_t;

static void
s_page_cvm (const umb_backends_cvm_t *cvm, void *arg)
{
    s_page_t *page = arg;
    snprintf (page->last, sizeof page->last, "%s", cvm->id);
    page->count++;
}

static void
s_collect_event (const umb_backends_event_t *event, void *arg)
{
    char *log = arg;
    char line [128];
    snprintf (line, sizeof line, "%lld:%s:%s;", (long long) event->seq, event->source,
              event->message);
    strcat (log, line);
}

void
umb_backends_store_test (bool verbose)
{
    printf (" * umb_backends_store: ");
    umb_log_t *log = umb_log_new ("test", UMB_LOG_ERROR, false);
    umb_store_t *store = umb_backends_store_open (":memory:", log);
    assert (store);

    umb_backends_host_t host = { .id = "host_1", .workspace_id = "ws_1", .name = "h1",
        .uri = "test:///default", .driver = "test", .status = "up", .tees = "none",
        .cpus = 16, .memory_mb = 8192, .created_by = "u1", .created_at = 1 };
    assert (umb_backends_store_host_insert (store, &host) == 0);
    //  A name again in the workspace, or the URI anywhere, is refused
    umb_backends_host_t twin = host;
    snprintf (twin.id, sizeof twin.id, "host_2");
    snprintf (twin.uri, sizeof twin.uri, "test:///other");
    assert (umb_backends_store_host_insert (store, &twin) == UMB_STORE_CONSTRAINT);
    snprintf (twin.name, sizeof twin.name, "h2");
    snprintf (twin.uri, sizeof twin.uri, "test:///default");
    snprintf (twin.workspace_id, sizeof twin.workspace_id, "ws_2");
    assert (umb_backends_store_host_insert (store, &twin) == UMB_STORE_CONSTRAINT);
    assert (umb_backends_store_uri_taken (store, "test:///default"));
    assert (!umb_backends_store_uri_taken (store, "test:///other"));

    umb_backends_host_t got;
    assert (umb_backends_store_host_get (store, "ws_1", "h1", &got) == 0);
    assert (streq (got.id, "host_1") && got.cpus == 16);
    assert (umb_backends_store_host_get (store, "ws_1", "host_1", &got) == 0);
    assert (umb_backends_store_host_get (store, "ws_2", "h1", &got) == UMB_STORE_NOT_FOUND);

    //  CVMs, paging, load
    for (int index = 0; index < 5; index++) {
        umb_backends_cvm_t cvm = { .workspace_id = "ws_1", .host_id = "host_1", .tee = "none",
            .vcpus = 2, .memory_mb = 256, .ttl_s = 60, .expires_at = 100, .state = "Booting",
            .agent = "pending", .created_by = "u1", .created_at = 10 + index / 2,
            .updated_at = 10 };
        snprintf (cvm.id, sizeof cvm.id, "cvm_%d", index);
        assert (umb_backends_store_cvm_insert (store, &cvm) == 0);
    }
    //  Every field comes back as written
    umb_backends_cvm_t back;
    assert (umb_backends_store_cvm_get (store, "ws_1", "cvm_3", &back) == 0);
    assert (streq (back.created_by, "u1") && back.created_at == 11 && back.vcpus == 2
            && back.memory_mb == 256 && streq (back.state, "Booting") && streq (back.agent, "pending"));
    int64_t cvms, vcpus, memory;
    assert (umb_backends_store_host_load (store, "host_1", &cvms, &vcpus, &memory) == 0);
    assert (cvms == 5 && vcpus == 10 && memory == 1280);
    int count = 0;
    bool more = false;
    assert (umb_backends_store_cvm_list (store, "ws_1", NULL, "", 2, s_count_cvm, &count,
                                         &more) == 0);
    assert (count == 2 && more);
    //  Walk every page with the cursor
    s_page_t page = { "", 0 };
    int pages = 0;
    do {
        char cursor [32];
        snprintf (cursor, sizeof cursor, "%s", page.last);
        assert (umb_backends_store_cvm_list (store, "ws_1", NULL, cursor, 2, s_page_cvm, &page,
                                             &more) == 0);
        pages++;
    } while (more);
    int total = page.count;
    assert (pages == 3 && streq (page.last, "cvm_0"));
    assert (total == 5);
    count = 0;
    assert (umb_backends_store_cvm_list (store, "ws_1", "Failed", "", 10, s_count_cvm, &count,
                                         &more) == 0);
    assert (count == 0 && !more);

    umb_backends_cvm_t cvm;
    assert (umb_backends_store_cvm_get (store, "ws_1", "cvm_1", &cvm) == 0);
    snprintf (cvm.state, sizeof cvm.state, "Failed");
    snprintf (cvm.reason, sizeof cvm.reason, "the agent stopped answering");
    assert (umb_backends_store_cvm_update (store, &cvm) == 0);
    assert (umb_backends_store_cvm_get (store, NULL, "cvm_1", &cvm) == 0);
    assert (streq (cvm.reason, "the agent stopped answering"));
    assert (umb_backends_store_cvm_get (store, "ws_2", "cvm_1", &cvm) == UMB_STORE_NOT_FOUND);
    assert (umb_backends_store_cvm_move (store, "cvm_1", "host_1") == 0);
    count = 0;
    assert (umb_backends_store_cvm_live (store, s_count_cvm, &count) == 0);
    assert (count == 4);

    //  Events in order; acks never pass the last event
    int64_t seq = 0;
    umb_backends_event_t event = { .time = 1, .source = "backends", .type = "state",
                                   .state = "Booting", .message = "a" };
    assert (umb_backends_store_event_append (store, "cvm_0", &event, &seq) == 0 && seq == 1);
    event.source = "agent";
    event.message = "b";
    event.agent_seq = 7;
    assert (umb_backends_store_event_append (store, "cvm_0", &event, &seq) == 0 && seq == 2);
    char text [256] = "";
    assert (umb_backends_store_events (store, "cvm_0", 0, 10, s_collect_event, text) == 0);
    assert (streq (text, "1:backends:a;2:agent:b;"));
    text [0] = 0;
    assert (umb_backends_store_events (store, "cvm_0", 1, 10, s_collect_event, text) == 0);
    assert (streq (text, "2:agent:b;"));
    assert (umb_backends_store_ack (store, "cvm_0", 99) == 0);
    assert (umb_backends_store_cvm_get (store, NULL, "cvm_0", &cvm) == 0);
    assert (cvm.events == 2 && cvm.acked == 2 && cvm.agent_seq == 7);
    //  A failed write leaves no half event
    umb_store_fail_after (store, 1);
    assert (umb_backends_store_event_append (store, "cvm_0", &event, &seq) == -1);
    assert (umb_backends_store_cvm_get (store, NULL, "cvm_0", &cvm) == 0 && cvm.events == 2);

    //  A service's CVM keeps the service's key; a user's has none
    umb_backends_cvm_t run = { .id = "cvm_run", .workspace_id = "ws_1", .host_id = "host_1",
        .tee = "none", .vcpus = 1, .memory_mb = 128, .ttl_s = 60, .expires_at = 100,
        .state = "Booting", .computation = "cmp_1/run_1", .agent = "pending", .created_by = "u1",
        .service_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", .created_at = 20,
        .updated_at = 20 };
    assert (umb_backends_store_cvm_insert (store, &run) == 0);
    assert (umb_backends_store_cvm_get (store, "ws_1", "cvm_run", &cvm) == 0);
    assert (streq (cvm.service_key, run.service_key) && streq (cvm.created_by, "u1"));
    assert (umb_backends_store_cvm_get (store, NULL, "cvm_0", &cvm) == 0 && !*cvm.service_key);

    //  Deleting a host takes its CVMs and events
    assert (umb_backends_store_host_delete (store, "host_1") == 0);
    assert (umb_backends_store_host_by_id (store, "host_1", &got) == UMB_STORE_NOT_FOUND);
    assert (umb_backends_store_cvm_get (store, NULL, "cvm_0", &cvm) == UMB_STORE_NOT_FOUND);

    umb_store_destroy (&store);

    //  A version 1 database gains service_key; its CVMs are users'
    char dir [] = "/tmp/umb-backends-store-XXXXXX";
    assert (mkdtemp (dir));
    char *path = zsys_sprintf ("%s/backends.db", dir);
    const umb_migration_t v1 [] = { s_migrations [0], { 0, NULL } };
    store = umb_store_new (path, v1, log);
    assert (store && umb_store_version (store) == 1);
    assert (umb_store_run (store, "INSERT INTO hosts (id, workspace_id, name, uri, driver,"
                           " insecure_dev, status, tees, cpus, memory_mb, kvm, created_by,"
                           " created_at) VALUES ('host_1', 'ws_1', 'h1', 'test:///default',"
                           " 'test', 0, 'up', 'none', 4, 4096, 0, 'u1', 1)", "") == 0);
    assert (umb_store_run (store, "INSERT INTO cvms (id, workspace_id, host_id, tee, vcpus,"
                           " memory_mb, ttl_s, expires_at, state, agent, insecure, events, acked,"
                           " agent_seq, created_by, created_at, updated_at) VALUES ('cvm_old',"
                           " 'ws_1', 'host_1', 'none', 1, 128, 60, 61, 'Running', 'pending', 0,"
                           " 0, 0, 0, 'u1', 1, 1)", "") == 0);
    umb_store_destroy (&store);
    store = umb_backends_store_open (path, log);
    assert (store && umb_store_version (store) == 5);
    assert (umb_backends_store_cvm_get (store, "ws_1", "cvm_old", &cvm) == 0);
    assert (streq (cvm.state, "Running") && !*cvm.service_key);
    //  ...and a live one is metered from its start (version 3)
    assert (umb_store_scalar (umb_store_query (store,
        "SELECT metered_at FROM cvms WHERE id = 'cvm_old'", "")) == 1);
    umb_store_destroy (&store);
    umb_testkit_remove_dir (dir);
    zstr_free (&path);

    umb_log_destroy (&log);
    if (verbose)
        printf ("(verbose) ");
    printf ("OK\n");
}
