//  umb_meter - CVM usage records for billing
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umb_meter.h"
#include "umb_backends_store.h"

//  A CVM whose period is due
typedef struct {
    char    id [40];
    char    workspace_id [64];
    char    tee [16];
    int64_t vcpus, memory_mb, metered_at, seq, end;
    bool    final, paid;
} s_due_t;

static void
s_due_row (sqlite3_stmt *stmt, void *fn, void *arg)
{
    zlistx_t *list = arg;
    s_due_t *due = calloc (1, sizeof (s_due_t));
    assert (due);
    umb_store_column (stmt, 0, due->id, sizeof due->id);
    umb_store_column (stmt, 1, due->workspace_id, sizeof due->workspace_id);
    umb_store_column (stmt, 2, due->tee, sizeof due->tee);
    due->vcpus = sqlite3_column_int64 (stmt, 3);
    due->memory_mb = sqlite3_column_int64 (stmt, 4);
    due->metered_at = sqlite3_column_int64 (stmt, 5);
    due->seq = sqlite3_column_int64 (stmt, 6);
    due->final = sqlite3_column_int (stmt, 7) != 0;
    due->end = due->final ? sqlite3_column_int64 (stmt, 8) : *(int64_t *) fn;
    due->paid = sqlite3_column_type (stmt, 9) != SQLITE_NULL;
    zlistx_add_end (list, due);
}

static void
s_due_free (void **item)
{
    free (*item);
    *item = NULL;
}

int
umb_meter_collect (umb_store_t *store, int64_t now, int64_t interval)
{
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, s_due_free);
    //  A CVM made by a service (created_by_service) is a run's: its
    //  reservation pays, so its records are metered, not charged
    int rc = umb_store_each (umb_store_query (store,
        "SELECT id, workspace_id, tee, vcpus, memory_mb, metered_at, meter_seq,"
        "  state IN ('Destroyed', 'Failed'), updated_at, service_key FROM cvms"
        " WHERE metered_at >= 0 AND (state IN ('Destroyed', 'Failed') OR metered_at + ? <= ?)",
        "ii", interval, now), s_due_row, &now, list);
    int made = 0;
    if (rc == 0 && zlistx_size (list) > 0 && (rc = umb_store_begin (store)) == 0) {
        for (s_due_t *due = zlistx_first (list); due && rc == 0; due = zlistx_next (list)) {
            int64_t seconds = due->end > due->metered_at ? due->end - due->metered_at : 0;
            char id [64];
            snprintf (id, sizeof id, "%s:%lld", due->id, (long long) due->seq + 1);
            rc = umb_store_run (store,
                "INSERT INTO usage_outbox (id, workspace_id, tee, vcpus, memory_mb, seconds, at,"
                " paid) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "sssiiiib", id, due->workspace_id,
                due->tee, due->vcpus, due->memory_mb, seconds, due->end, (int) due->paid);
            if (rc == 0)
                rc = umb_store_run (store,
                    "UPDATE cvms SET metered_at = ?, meter_seq = ? WHERE id = ?", "iis",
                    due->final ? (int64_t) -1 : due->end, due->seq + 1, due->id);
            made++;
        }
        if (rc == 0)
            rc = umb_store_commit (store);
        else
            umb_store_rollback (store);
    }
    zlistx_destroy (&list);
    return rc ? -1 : made;
}

typedef struct {
    umb_billing_record_t *records;
    size_t                count;
} s_pending_t;

static void
s_pending_row (sqlite3_stmt *stmt, void *fn, void *arg)
{
    s_pending_t *pending = arg;
    umb_billing_record_t *record = &pending->records [pending->count++];
    memset (record, 0, sizeof *record);
    umb_store_column (stmt, 0, record->id, sizeof record->id);
    umb_store_column (stmt, 1, record->workspace_id, sizeof record->workspace_id);
    umb_store_column (stmt, 2, record->tee, sizeof record->tee);
    record->vcpus = sqlite3_column_int64 (stmt, 3);
    record->memory_mb = sqlite3_column_int64 (stmt, 4);
    record->seconds = sqlite3_column_int64 (stmt, 5);
    record->at = sqlite3_column_int64 (stmt, 6);
    record->paid = sqlite3_column_int (stmt, 7) != 0;
}

size_t
umb_meter_pending (umb_store_t *store, umb_billing_record_t *records, size_t max)
{
    s_pending_t pending = { records, 0 };
    if (umb_store_each (umb_store_query (store,
            "SELECT id, workspace_id, tee, vcpus, memory_mb, seconds, at, paid FROM usage_outbox"
            " ORDER BY at, id LIMIT ?", "i", (int64_t) max), s_pending_row, NULL, &pending))
        return 0;
    return pending.count;
}

int
umb_meter_sent (umb_store_t *store, const umb_billing_record_t *records, size_t count)
{
    if (umb_store_begin (store))
        return -1;
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = umb_store_run (store, "DELETE FROM usage_outbox WHERE id = ?", "s", records [i].id);
    if (rc == 0)
        return umb_store_commit (store);
    umb_store_rollback (store);
    return -1;
}

//  ---------------------------------------------------------------- selftest

void
umb_meter_test (bool verbose)
{
    if (verbose)
        printf (" * umb_meter: ");
    umb_log_t *log = umb_log_new ("meter-test", UMB_LOG_ERROR, false);
    umb_store_t *store = umb_backends_store_open (":memory:", log);
    assert (store);
    umb_backends_host_t host = { .created_at = 1 };
    snprintf (host.id, sizeof host.id, "host_1");
    snprintf (host.workspace_id, sizeof host.workspace_id, "ws_1");
    snprintf (host.name, sizeof host.name, "h");
    snprintf (host.uri, sizeof host.uri, "test:///default");
    snprintf (host.driver, sizeof host.driver, "test");
    snprintf (host.status, sizeof host.status, "up");
    assert (umb_backends_store_host_insert (store, &host) == 0);
    //  A user's CVM from 1000, and a run's (made by a service) from 1030
    umb_backends_cvm_t cvm = { .vcpus = 2, .memory_mb = 1024, .ttl_s = 60, .created_at = 1000,
                               .updated_at = 1000 };
    snprintf (cvm.id, sizeof cvm.id, "cvm_a");
    snprintf (cvm.workspace_id, sizeof cvm.workspace_id, "ws_1");
    snprintf (cvm.host_id, sizeof cvm.host_id, "host_1");
    snprintf (cvm.tee, sizeof cvm.tee, "tdx");
    snprintf (cvm.state, sizeof cvm.state, "Running");
    snprintf (cvm.agent, sizeof cvm.agent, "ready");
    snprintf (cvm.created_by, sizeof cvm.created_by, "usr_1");
    assert (umb_backends_store_cvm_insert (store, &cvm) == 0);
    snprintf (cvm.id, sizeof cvm.id, "cvm_b");
    snprintf (cvm.service_key, sizeof cvm.service_key, "service-key");
    cvm.created_at = cvm.updated_at = 1030;
    assert (umb_backends_store_cvm_insert (store, &cvm) == 0);

    //  Nothing is due before a period has passed; then one record each
    assert (umb_meter_collect (store, 1050, 60) == 0);
    assert (umb_meter_collect (store, 1060, 60) == 1);
    assert (umb_meter_collect (store, 1060, 60) == 0);
    assert (umb_meter_collect (store, 1090, 60) == 1);
    umb_billing_record_t records [10];
    size_t count = umb_meter_pending (store, records, 10);
    assert (count == 2);
    assert (streq (records [0].id, "cvm_a:1") && records [0].seconds == 60 && !records [0].paid);
    assert (records [0].at == 1060 && records [0].vcpus == 2 && streq (records [0].tee, "tdx"));
    assert (streq (records [1].id, "cvm_b:1") && records [1].seconds == 60 && records [1].paid);
    //  The end of a CVM is its last period, whenever it comes
    snprintf (cvm.state, sizeof cvm.state, "Destroyed");
    cvm.updated_at = 1100;
    assert (umb_backends_store_cvm_update (store, &cvm) == 0);
    assert (umb_meter_collect (store, 1101, 60) == 1);
    assert (umb_meter_collect (store, 2000, 60) == 1);      //  cvm_a only: cvm_b is done
    assert (umb_meter_sent (store, records, count) == 0);
    count = umb_meter_pending (store, records, 10);
    assert (count == 2);
    assert (streq (records [0].id, "cvm_b:2") && records [0].seconds == 10 && records [0].at == 1100);
    assert (streq (records [1].id, "cvm_a:2") && records [1].seconds == 940);
    assert (umb_meter_sent (store, records, count) == 0);
    assert (umb_meter_pending (store, records, 10) == 0);
    umb_store_destroy (&store);
    umb_log_destroy (&log);
    if (verbose)
        printf ("OK\n");
}
