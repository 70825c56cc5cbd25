//  umb_billing_store - the billing service's SQL
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sodium.h>
#include <czmq.h>
#include "umb_billing_store.h"

#define S_STREQ(a, b) (strcmp ((a), (b)) == 0)

//  Transactions and entries are append-only: triggers refuse any change.
//  balances is what the entries sum to per account, kept by a trigger in
//  the same transaction as each entry; umb_billing_store_verify checks it.
static const char s_schema [] =
    "CREATE TABLE workspaces ("
    "  id         TEXT PRIMARY KEY,"
    "  plan       TEXT NOT NULL,"
    "  plan_since INTEGER NOT NULL,"
    "  first_seen INTEGER NOT NULL);"
    "CREATE TABLE txns ("
    "  id           TEXT PRIMARY KEY,"
    "  kind         TEXT NOT NULL,"
    "  ref          TEXT NOT NULL,"
    "  workspace_id TEXT NOT NULL,"
    "  time         INTEGER NOT NULL,"
    "  month        TEXT NOT NULL,"
    "  amount       INTEGER NOT NULL,"
    "  UNIQUE (kind, ref));"
    "CREATE INDEX txns_by_workspace ON txns (workspace_id, month);"
    "CREATE TABLE entries ("
    "  seq          INTEGER PRIMARY KEY,"
    "  txn          TEXT NOT NULL REFERENCES txns (id),"
    "  account      TEXT NOT NULL,"
    "  workspace_id TEXT NOT NULL,"
    "  amount       INTEGER NOT NULL);"
    "CREATE INDEX entries_by_txn ON entries (txn);"
    "CREATE INDEX entries_by_workspace ON entries (workspace_id, seq);"
    "CREATE TABLE balances ("
    "  account TEXT PRIMARY KEY,"
    "  amount  INTEGER NOT NULL);"
    "CREATE TRIGGER entries_balance AFTER INSERT ON entries BEGIN"
    "  INSERT INTO balances (account, amount) VALUES (NEW.account, NEW.amount)"
    "    ON CONFLICT (account) DO UPDATE SET amount = amount + excluded.amount;"
    "END;"
    "CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries BEGIN"
    "  SELECT RAISE (ABORT, 'the ledger is append-only');"
    "END;"
    "CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries BEGIN"
    "  SELECT RAISE (ABORT, 'the ledger is append-only');"
    "END;"
    "CREATE TRIGGER txns_no_update BEFORE UPDATE ON txns BEGIN"
    "  SELECT RAISE (ABORT, 'the ledger is append-only');"
    "END;"
    "CREATE TRIGGER txns_no_delete BEFORE DELETE ON txns BEGIN"
    "  SELECT RAISE (ABORT, 'the ledger is append-only');"
    "END;"
    "CREATE TABLE reservations ("
    "  id              TEXT PRIMARY KEY,"
    "  workspace_id    TEXT NOT NULL,"
    "  tee             TEXT NOT NULL,"
    "  vcpus           INTEGER NOT NULL,"
    "  memory_mb       INTEGER NOT NULL,"
    "  seconds         INTEGER NOT NULL,"
    "  amount          INTEGER NOT NULL,"
    "  vcpu_hour       INTEGER NOT NULL,"
    "  memory_gib_hour INTEGER NOT NULL,"
    "  run_price       INTEGER NOT NULL,"
    "  state           TEXT NOT NULL"
    "    CHECK (state IN ('open', 'settled', 'released', 'expired')),"
    "  charged         INTEGER NOT NULL,"
    "  created_at      INTEGER NOT NULL,"
    "  expires_at      INTEGER NOT NULL,"
    "  settled_at      INTEGER NOT NULL);"
    "CREATE INDEX reservations_open ON reservations (state, expires_at);"
    "CREATE INDEX reservations_by_workspace ON reservations (workspace_id, state);"
    "CREATE TABLE usage ("
    "  id           TEXT PRIMARY KEY,"
    "  workspace_id TEXT NOT NULL,"
    "  kind         TEXT NOT NULL,"
    "  tee          TEXT NOT NULL,"
    "  vcpus        INTEGER NOT NULL,"
    "  memory_mb    INTEGER NOT NULL,"
    "  seconds      INTEGER NOT NULL,"
    "  paid         INTEGER NOT NULL,"
    "  at           INTEGER NOT NULL,"
    "  month        TEXT NOT NULL);"
    "CREATE TABLE usage_month ("
    "  workspace_id       TEXT NOT NULL,"
    "  month              TEXT NOT NULL,"
    "  tee                TEXT NOT NULL,"
    "  cvm_seconds        INTEGER NOT NULL,"
    "  vcpu_seconds       INTEGER NOT NULL,"
    "  memory_mib_seconds INTEGER NOT NULL,"
    "  runs               INTEGER NOT NULL,"
    "  PRIMARY KEY (workspace_id, month, tee));";

umb_store_t *
umb_billing_store_open (const char *path, umb_log_t *log)
{
    const umb_migration_t migrations [] = {
        { 1, s_schema },
        { 0, NULL }
    };
    return umb_store_new (path, migrations, log);
}

void
umb_billing_account (char *out, size_t size, const char *workspace_id, const char *which)
{
    snprintf (out, size, "ws:%s:%s", workspace_id, which);
}

void
umb_billing_month (int64_t time, char *out)
{
    time_t when = (time_t) time;
    struct tm tm;
    gmtime_r (&when, &tm);
    strftime (out, 8, "%Y-%m", &tm);
}

int
umb_billing_month_bounds (const char *month, int64_t *start, int64_t *end)
{
    if (!month || strlen (month) != 7 || month [4] != '-'
    ||  strspn (month, "0123456789") != 4 || strspn (month + 5, "0123456789") != 2)
        return -1;
    int year = atoi (month), number = atoi (month + 5);
    if (year < 1970 || number < 1 || number > 12)
        return -1;
    struct tm tm = { .tm_year = year - 1900, .tm_mon = number - 1, .tm_mday = 1 };
    *start = (int64_t) timegm (&tm);
    tm = (struct tm) { .tm_year = year - 1900 + (number == 12), .tm_mon = number % 12, .tm_mday = 1 };
    *end = (int64_t) timegm (&tm);
    return 0;
}

//  A single integer that may be negative: 0, -1
static int
s_integer (sqlite3_stmt *stmt, int64_t *value)
{
    if (!stmt)
        return -1;
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW)
        *value = sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    return rc == SQLITE_ROW ? 0 : -1;
}

//  ---------------------------------------------------------------- the ledger

int
umb_billing_store_post (umb_store_t *store, const char *kind, const char *ref,
                        const char *workspace_id, int64_t time, const umb_billing_leg_t *legs,
                        size_t count, char *txn_id)
{
    assert (count >= 2);
    int64_t sum = 0;
    for (size_t i = 0; i < count; i++)
        sum += legs [i].amount;
    assert (sum == 0);
    char month [8];
    umb_billing_month (time, month);
    char id [40];
    int rc = UMB_STORE_CONSTRAINT;
    for (int attempt = 0; attempt < 4 && rc == UMB_STORE_CONSTRAINT; attempt++) {
        //  Ids that grow with time (microseconds, then 12 random bits): each
        //  new transaction lands at the end of the ledger's indexes, not at a
        //  random page of them, so writes stay as fast as the ledger grows
        struct timespec now;
        clock_gettime (CLOCK_REALTIME, &now);
        unsigned long long micros = (unsigned long long) now.tv_sec * 1000000ULL
                                  + (unsigned long long) now.tv_nsec / 1000ULL;
        snprintf (id, sizeof id, "txn_%013llx%03x", micros % (1ULL << 52),
                  (unsigned) randombytes_uniform (4096));
        rc = umb_store_run (store,
            "INSERT INTO txns (id, kind, ref, workspace_id, time, month, amount)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)", "ssssisi", id, kind, ref, workspace_id, time, month,
            -legs [0].amount);
        //  Refused: (kind, ref) was written before, or (rarely) the id was
        //  taken in the same microsecond, and another is tried
        if (rc == UMB_STORE_CONSTRAINT
        &&  umb_billing_store_txn_find (store, kind, ref, NULL, NULL) != UMB_STORE_NOT_FOUND)
            return UMB_STORE_CONSTRAINT;
    }
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = umb_store_run (store,
            "INSERT INTO entries (txn, account, workspace_id, amount) VALUES (?, ?, ?, ?)",
            "sssi", id, legs [i].account, workspace_id, legs [i].amount);
    if (rc == 0 && txn_id)
        snprintf (txn_id, 40, "%s", id);
    return rc;
}

typedef struct {
    char    id [40];
    int64_t amount;
} s_txn_t;

static void
s_txn_row (sqlite3_stmt *stmt, void *dest)
{
    s_txn_t *row = dest;
    umb_store_column (stmt, 0, row->id, sizeof row->id);
    row->amount = sqlite3_column_int64 (stmt, 1);
}

int
umb_billing_store_txn_find (umb_store_t *store, const char *kind, const char *ref, char *txn_id,
                            int64_t *amount)
{
    s_txn_t row;
    int rc = umb_store_get (umb_store_query (store,
        "SELECT id, amount FROM txns WHERE kind = ? AND ref = ?", "ss", kind, ref),
        s_txn_row, &row);
    if (rc == 0) {
        if (txn_id)
            snprintf (txn_id, 40, "%s", row.id);
        if (amount)
            *amount = row.amount;
    }
    return rc;
}

int
umb_billing_store_balance (umb_store_t *store, const char *account, int64_t *amount)
{
    return s_integer (umb_store_query (store,
        "SELECT COALESCE ((SELECT amount FROM balances WHERE account = ?), 0)", "s", account),
        amount);
}

static void
s_entry_row (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_billing_entry_t entry = {
        .seq = sqlite3_column_int64 (stmt, 0),
        .txn = (const char *) sqlite3_column_text (stmt, 1),
        .time = sqlite3_column_int64 (stmt, 2),
        .kind = (const char *) sqlite3_column_text (stmt, 3),
        .ref = (const char *) sqlite3_column_text (stmt, 4),
        .account = (const char *) sqlite3_column_text (stmt, 5),
        .amount = sqlite3_column_int64 (stmt, 6)
    };
    ((umb_billing_entry_fn *) fn) (&entry, arg);
}

int
umb_billing_store_entries (umb_store_t *store, const char *workspace_id, int64_t after,
                           int64_t limit, umb_billing_entry_fn *fn, void *arg)
{
    return umb_store_each (umb_store_query (store,
        "SELECT e.seq, e.txn, t.time, t.kind, t.ref, e.account, e.amount"
        " FROM entries e JOIN txns t ON t.id = e.txn"
        " WHERE e.workspace_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?",
        "sii", workspace_id, after, limit), s_entry_row, (void *) fn, arg);
}

static void
s_line_row (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_billing_line_t line = {
        .txn = (const char *) sqlite3_column_text (stmt, 0),
        .time = sqlite3_column_int64 (stmt, 1),
        .kind = (const char *) sqlite3_column_text (stmt, 2),
        .ref = (const char *) sqlite3_column_text (stmt, 3),
        .available = sqlite3_column_int64 (stmt, 4),
        .reserved = sqlite3_column_int64 (stmt, 5),
        .charge = sqlite3_column_int64 (stmt, 6)
    };
    ((umb_billing_line_fn *) fn) (&line, arg);
}

int
umb_billing_store_lines (umb_store_t *store, const char *workspace_id, const char *month,
                         umb_billing_line_fn *fn, void *arg)
{
    char available [UMB_BILLING_ACCOUNT_MAX], reserved [UMB_BILLING_ACCOUNT_MAX];
    umb_billing_account (available, sizeof available, workspace_id, "available");
    umb_billing_account (reserved, sizeof reserved, workspace_id, "reserved");
    return umb_store_each (umb_store_query (store,
        "SELECT t.id, t.time, t.kind, t.ref,"
        "  SUM (CASE WHEN e.account = ?1 THEN e.amount ELSE 0 END),"
        "  SUM (CASE WHEN e.account = ?2 THEN e.amount ELSE 0 END),"
        "  SUM (CASE WHEN e.account = '" UMB_BILLING_REVENUE "' THEN e.amount ELSE 0 END)"
        " FROM txns t JOIN entries e ON e.txn = t.id"
        " WHERE t.workspace_id = ?3 AND t.month = ?4"
        " GROUP BY t.id, t.time, t.kind, t.ref ORDER BY MIN (e.seq)",
        "ssss", available, reserved, workspace_id, month), s_line_row, (void *) fn, arg);
}

static void
s_month_row (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_billing_month_t month = {
        .credits = sqlite3_column_int64 (stmt, 1),
        .charges = sqlite3_column_int64 (stmt, 2),
        .change = sqlite3_column_int64 (stmt, 3)
    };
    umb_store_column (stmt, 0, month.month, sizeof month.month);
    ((umb_billing_month_fn *) fn) (&month, arg);
}

int
umb_billing_store_months (umb_store_t *store, const char *workspace_id, umb_billing_month_fn *fn,
                          void *arg)
{
    char available [UMB_BILLING_ACCOUNT_MAX], reserved [UMB_BILLING_ACCOUNT_MAX];
    umb_billing_account (available, sizeof available, workspace_id, "available");
    umb_billing_account (reserved, sizeof reserved, workspace_id, "reserved");
    return umb_store_each (umb_store_query (store,
        "SELECT t.month,"
        "  SUM (CASE WHEN e.account = ?1 AND t.kind IN ('credit', 'grant')"
        "      THEN e.amount ELSE 0 END),"
        "  SUM (CASE WHEN e.account = '" UMB_BILLING_REVENUE "' THEN e.amount ELSE 0 END),"
        "  SUM (CASE WHEN e.account IN (?1, ?2) THEN e.amount ELSE 0 END)"
        " FROM txns t JOIN entries e ON e.txn = t.id"
        " WHERE t.workspace_id = ?3 GROUP BY t.month ORDER BY t.month",
        "sss", available, reserved, workspace_id), s_month_row, (void *) fn, arg);
}

int
umb_billing_store_holdings_before (umb_store_t *store, const char *workspace_id, int64_t time,
                                   int64_t *amount)
{
    char available [UMB_BILLING_ACCOUNT_MAX], reserved [UMB_BILLING_ACCOUNT_MAX];
    umb_billing_account (available, sizeof available, workspace_id, "available");
    umb_billing_account (reserved, sizeof reserved, workspace_id, "reserved");
    return s_integer (umb_store_query (store,
        "SELECT COALESCE (SUM (e.amount), 0) FROM txns t JOIN entries e ON e.txn = t.id"
        " WHERE t.workspace_id = ?1 AND t.time < ?2 AND e.account IN (?3, ?4)",
        "siss", workspace_id, time, available, reserved), amount);
}

int
umb_billing_store_verify (umb_store_t *store, umb_billing_verify_t *counts, char *reason,
                          size_t reason_size)
{
    int64_t total = 0, unbalanced = 0, drifted = 0;
    if (s_integer (umb_store_query (store, "SELECT COUNT (*) FROM txns", ""),
                   &counts->transactions)
    ||  s_integer (umb_store_query (store, "SELECT COUNT (*) FROM entries", ""), &counts->entries)
    ||  s_integer (umb_store_query (store, "SELECT COUNT (*) FROM balances", ""),
                   &counts->accounts)
    ||  s_integer (umb_store_query (store, "SELECT COALESCE (SUM (amount), 0) FROM entries", ""),
                   &total)
    ||  s_integer (umb_store_query (store,
            "SELECT COUNT (*) FROM (SELECT txn FROM entries GROUP BY txn"
            " HAVING SUM (amount) <> 0 OR COUNT (*) < 2)", ""), &unbalanced)
    ||  s_integer (umb_store_query (store,
            "SELECT COUNT (*) FROM balances b LEFT JOIN"
            " (SELECT account, SUM (amount) AS amount FROM entries GROUP BY account) s"
            " ON s.account = b.account WHERE s.amount IS NULL OR s.amount <> b.amount", ""),
            &drifted))
        return -1;
    if (total != 0)
        snprintf (reason, reason_size, "the entries sum to %lld, not 0", (long long) total);
    else
    if (unbalanced)
        snprintf (reason, reason_size, "%lld transactions do not sum to 0", (long long) unbalanced);
    else
    if (drifted)
        snprintf (reason, reason_size, "%lld balances differ from their entries",
                  (long long) drifted);
    return total || unbalanced || drifted ? 1 : 0;
}

//  ---------------------------------------------------------------- workspaces

static void
s_ws_row (sqlite3_stmt *stmt, void *dest)
{
    umb_billing_ws_t *ws = dest;
    umb_store_column (stmt, 0, ws->id, sizeof ws->id);
    umb_store_column (stmt, 1, ws->plan, sizeof ws->plan);
    ws->plan_since = sqlite3_column_int64 (stmt, 2);
    ws->first_seen = sqlite3_column_int64 (stmt, 3);
}

int
umb_billing_store_ws_get (umb_store_t *store, const char *id, umb_billing_ws_t *ws)
{
    return umb_store_get (umb_store_query (store,
        "SELECT id, plan, plan_since, first_seen FROM workspaces WHERE id = ?", "s", id),
        s_ws_row, ws);
}

int
umb_billing_store_ws_insert (umb_store_t *store, const umb_billing_ws_t *ws)
{
    return umb_store_run (store,
        "INSERT INTO workspaces (id, plan, plan_since, first_seen) VALUES (?, ?, ?, ?)",
        "ssii", ws->id, ws->plan, ws->plan_since, ws->first_seen);
}

int
umb_billing_store_ws_set_plan (umb_store_t *store, const char *id, const char *plan,
                               int64_t since)
{
    return umb_store_run (store, "UPDATE workspaces SET plan = ?, plan_since = ? WHERE id = ?",
                          "sis", plan, since, id);
}

//  ---------------------------------------------------------------- reservations

static void
s_reservation_row (sqlite3_stmt *stmt, void *dest)
{
    umb_billing_reservation_t *row = dest;
    umb_store_column (stmt, 0, row->id, sizeof row->id);
    umb_store_column (stmt, 1, row->workspace_id, sizeof row->workspace_id);
    umb_store_column (stmt, 2, row->tee, sizeof row->tee);
    row->vcpus = sqlite3_column_int64 (stmt, 3);
    row->memory_mb = sqlite3_column_int64 (stmt, 4);
    row->seconds = sqlite3_column_int64 (stmt, 5);
    row->amount = sqlite3_column_int64 (stmt, 6);
    row->price.vcpu_hour = sqlite3_column_int64 (stmt, 7);
    row->price.memory_gib_hour = sqlite3_column_int64 (stmt, 8);
    row->price.run = sqlite3_column_int64 (stmt, 9);
    umb_store_column (stmt, 10, row->state, sizeof row->state);
    row->charged = sqlite3_column_int64 (stmt, 11);
    row->created_at = sqlite3_column_int64 (stmt, 12);
    row->expires_at = sqlite3_column_int64 (stmt, 13);
    row->settled_at = sqlite3_column_int64 (stmt, 14);
}

int
umb_billing_store_reservation_get (umb_store_t *store, const char *id,
                                   umb_billing_reservation_t *row)
{
    return umb_store_get (umb_store_query (store,
        "SELECT id, workspace_id, tee, vcpus, memory_mb, seconds, amount, vcpu_hour,"
        " memory_gib_hour, run_price, state, charged, created_at, expires_at, settled_at"
        " FROM reservations WHERE id = ?", "s", id), s_reservation_row, row);
}

int
umb_billing_store_reservation_insert (umb_store_t *store, const umb_billing_reservation_t *row)
{
    return umb_store_run (store,
        "INSERT INTO reservations (id, workspace_id, tee, vcpus, memory_mb, seconds, amount,"
        " vcpu_hour, memory_gib_hour, run_price, state, charged, created_at, expires_at,"
        " settled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "sssiiiiiiisiiii", row->id, row->workspace_id, row->tee, row->vcpus, row->memory_mb,
        row->seconds, row->amount, row->price.vcpu_hour, row->price.memory_gib_hour,
        row->price.run, row->state, row->charged, row->created_at, row->expires_at,
        row->settled_at);
}

int
umb_billing_store_reservation_close (umb_store_t *store, const char *id, const char *state,
                                     int64_t charged, int64_t time)
{
    int rc = umb_store_run (store,
        "UPDATE reservations SET state = ?, charged = ?, settled_at = ?"
        " WHERE id = ? AND state = 'open'", "siis", state, charged, time, id);
    if (rc == 0 && umb_store_changes (store) != 1)
        rc = UMB_STORE_NOT_FOUND;
    return rc;
}

static void
s_pair_row (sqlite3_stmt *stmt, void *dest)
{
    int64_t *pair = dest;
    pair [0] = sqlite3_column_int64 (stmt, 0);
    pair [1] = sqlite3_column_int64 (stmt, 1);
}

int
umb_billing_store_reservations_open (umb_store_t *store, const char *workspace_id, int64_t *count,
                                     int64_t *vcpu_seconds)
{
    int64_t pair [2] = { 0, 0 };
    int rc = umb_store_get (umb_store_query (store,
        "SELECT COUNT (*), COALESCE (SUM (vcpus * seconds), 0) FROM reservations"
        " WHERE workspace_id = ? AND state = 'open'", "s", workspace_id), s_pair_row, pair);
    *count = pair [0];
    *vcpu_seconds = pair [1];
    return rc;
}

static void
s_id_row (sqlite3_stmt *stmt, void *fn, void *arg)
{
    zlistx_t *list = arg;
    zlistx_add_end (list, strdup ((const char *) sqlite3_column_text (stmt, 0)));
}

char **
umb_billing_store_reservations_expired (umb_store_t *store, int64_t now, size_t max)
{
    zlistx_t *list = zlistx_new ();
    int rc = umb_store_each (umb_store_query (store,
        "SELECT id FROM reservations WHERE state = 'open' AND expires_at <= ? LIMIT ?",
        "ii", now, (int64_t) max), s_id_row, NULL, list);
    char **ids = calloc (zlistx_size (list) + 1, sizeof (char *));
    assert (ids);
    size_t count = 0;
    for (char *id = zlistx_first (list); id; id = zlistx_next (list))
        ids [count++] = id;
    zlistx_destroy (&list);
    if (rc) {
        for (size_t i = 0; i < count; i++)
            free (ids [i]);
        free (ids);
        return NULL;
    }
    return ids;
}

//  ---------------------------------------------------------------- usage

int
umb_billing_store_usage_insert (umb_store_t *store, const umb_billing_usage_t *usage)
{
    char month [8];
    umb_billing_month (usage->at, month);
    int rc = umb_store_run (store,
        "INSERT INTO usage (id, workspace_id, kind, tee, vcpus, memory_mb, seconds, paid, at,"
        " month) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        "ssssiiibis", usage->id, usage->workspace_id, usage->kind, usage->tee, usage->vcpus,
        usage->memory_mb, usage->seconds, usage->paid, usage->at, month);
    if (rc)
        return rc;
    if (umb_store_changes (store) != 1)
        return UMB_STORE_CONSTRAINT;
    bool run = S_STREQ (usage->kind, "run");
    int64_t cvm_seconds = run ? 0 : usage->seconds;
    int64_t vcpu_seconds = run ? 0 : usage->vcpus * usage->seconds;
    int64_t memory_seconds = run ? 0 : usage->memory_mb * usage->seconds;
    return umb_store_run (store,
        "INSERT INTO usage_month (workspace_id, month, tee, cvm_seconds, vcpu_seconds,"
        " memory_mib_seconds, runs) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (workspace_id, month, tee) DO UPDATE SET"
        "  cvm_seconds = cvm_seconds + excluded.cvm_seconds,"
        "  vcpu_seconds = vcpu_seconds + excluded.vcpu_seconds,"
        "  memory_mib_seconds = memory_mib_seconds + excluded.memory_mib_seconds,"
        "  runs = runs + excluded.runs",
        "sssiiii", usage->workspace_id, month, usage->tee, cvm_seconds, vcpu_seconds,
        memory_seconds, (int64_t) (run ? 1 : 0));
}

typedef struct {
    umb_billing_meter_t *by_tee;
    umb_billing_meter_t *total;
} s_meter_t;

static void
s_meter_row (sqlite3_stmt *stmt, void *fn, void *arg)
{
    s_meter_t *meter = arg;
    const char *tee = (const char *) sqlite3_column_text (stmt, 0);
    umb_billing_meter_t row = {
        sqlite3_column_int64 (stmt, 1), sqlite3_column_int64 (stmt, 2),
        sqlite3_column_int64 (stmt, 3), sqlite3_column_int64 (stmt, 4)
    };
    for (size_t i = 0; i < UMB_BILLING_TEES; i++)
        if (tee && S_STREQ (tee, umb_billing_tee_name (i)))
            meter->by_tee [i] = row;
    meter->total->cvm_seconds += row.cvm_seconds;
    meter->total->vcpu_seconds += row.vcpu_seconds;
    meter->total->memory_mib_seconds += row.memory_mib_seconds;
    meter->total->runs += row.runs;
}

int
umb_billing_store_meter (umb_store_t *store, const char *workspace_id, const char *month,
                         umb_billing_meter_t by_tee [UMB_BILLING_TEES], umb_billing_meter_t *total)
{
    memset (by_tee, 0, UMB_BILLING_TEES * sizeof (umb_billing_meter_t));
    memset (total, 0, sizeof *total);
    s_meter_t meter = { by_tee, total };
    return umb_store_each (umb_store_query (store,
        "SELECT tee, cvm_seconds, vcpu_seconds, memory_mib_seconds, runs FROM usage_month"
        " WHERE workspace_id = ? AND month = ?", "ss", workspace_id, month),
        s_meter_row, NULL, &meter);
}

//  ---------------------------------------------------------------- selftest

static void
s_test_line (const umb_billing_line_t *line, void *arg)
{
    int64_t *sums = arg;
    sums [0]++;
    sums [1] += line->available + line->reserved;
    sums [2] += line->charge;
}

static void
s_test_month (const umb_billing_month_t *month, void *arg)
{
    *(umb_billing_month_t *) arg = *month;
}

void
umb_billing_store_test (bool verbose)
{
    if (verbose)
        printf (" * umb_billing_store: ");
    umb_log_t *log = umb_log_new ("billing-store", UMB_LOG_ERROR, false);
    int null_fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
    umb_log_set_fd (log, null_fd);          //  the refused writes below are logged
    umb_store_t *store = umb_billing_store_open (":memory:", log);
    assert (store);
    const char *ws = "ws_00000000000000aa";
    char available [UMB_BILLING_ACCOUNT_MAX], reserved [UMB_BILLING_ACCOUNT_MAX];
    umb_billing_account (available, sizeof available, ws, "available");
    umb_billing_account (reserved, sizeof reserved, ws, "reserved");
    assert (S_STREQ (available, "ws:ws_00000000000000aa:available"));

    //  Months
    char month [8];
    umb_billing_month (1796601600, month);          //  2026-12-07
    assert (S_STREQ (month, "2026-12"));
    int64_t start, end;
    assert (umb_billing_month_bounds ("2026-12", &start, &end) == 0);
    assert (start == 1796083200 && end == 1798761600);
    assert (umb_billing_month_bounds ("2026-13", &start, &end) == -1);
    assert (umb_billing_month_bounds ("2026-1", &start, &end) == -1);
    assert (umb_billing_month_bounds ("x026-01", &start, &end) == -1);

    //  A credit, a reservation, its settlement: balances follow the entries
    int64_t now = 1796601600;
    umb_billing_leg_t credit [] = { { UMB_BILLING_CREDIT, -1000 }, { available, 1000 } };
    char txn [40];
    assert (umb_store_begin (store) == 0);
    assert (umb_billing_store_post (store, "credit", "ws:pay-1", ws, now, credit, 2, txn) == 0);
    assert (umb_store_commit (store) == 0);
    assert (strncmp (txn, "txn_", 4) == 0 && strlen (txn) == 20);
    //  The same (kind, ref) twice is refused by the store itself
    assert (umb_store_begin (store) == 0);
    assert (umb_billing_store_post (store, "credit", "ws:pay-1", ws, now, credit, 2, NULL)
            == UMB_STORE_CONSTRAINT);
    umb_store_rollback (store);
    char found [40];
    int64_t amount = 0;
    assert (umb_billing_store_txn_find (store, "credit", "ws:pay-1", found, &amount) == 0);
    assert (S_STREQ (found, txn) && amount == 1000);
    assert (umb_billing_store_txn_find (store, "credit", "ws:pay-2", found, &amount)
            == UMB_STORE_NOT_FOUND);
    umb_billing_leg_t reserve [] = { { available, -600 }, { reserved, 600 } };
    umb_billing_leg_t settle [] = { { reserved, -600 }, { UMB_BILLING_REVENUE, 250 },
                                    { available, 350 } };
    assert (umb_store_begin (store) == 0);
    assert (umb_billing_store_post (store, "reserve", "run_1", ws, now + 1, reserve, 2, NULL) == 0);
    assert (umb_billing_store_post (store, "settle", "run_1", ws, now + 2, settle, 3, NULL) == 0);
    assert (umb_store_commit (store) == 0);
    int64_t balance;
    assert (umb_billing_store_balance (store, available, &balance) == 0 && balance == 750);
    assert (umb_billing_store_balance (store, reserved, &balance) == 0 && balance == 0);
    assert (umb_billing_store_balance (store, UMB_BILLING_REVENUE, &balance) == 0
            && balance == 250);
    assert (umb_billing_store_balance (store, "ws:none:available", &balance) == 0 && balance == 0);
    umb_billing_verify_t counts;
    char reason [256] = "";
    assert (umb_billing_store_verify (store, &counts, reason, sizeof reason) == 0);
    assert (counts.transactions == 3 && counts.entries == 7 && counts.accounts == 4);
    //  Append-only: the database itself refuses to change an entry
    assert (umb_store_exec (store, "UPDATE entries SET amount = 0 WHERE seq = 1") == -1);
    assert (umb_store_exec (store, "DELETE FROM txns") == -1);
    //  A balance that drifted from its entries is found
    assert (umb_store_exec (store, "UPDATE balances SET amount = 1 WHERE account = '"
                            UMB_BILLING_REVENUE "'") == 0);
    assert (umb_billing_store_verify (store, &counts, reason, sizeof reason) == 1);
    assert (strstr (reason, "1 balances differ"));
    assert (umb_store_exec (store, "UPDATE balances SET amount = 250 WHERE account = '"
                            UMB_BILLING_REVENUE "'") == 0);
    int64_t holdings;
    assert (umb_billing_store_holdings_before (store, ws, now + 2, &holdings) == 0
            && holdings == 1000);
    assert (umb_billing_store_holdings_before (store, ws, now + 3, &holdings) == 0
            && holdings == 750);

    //  Usage: a duplicate changes nothing
    umb_billing_usage_t usage = { .kind = "cvm", .tee = "tdx", .vcpus = 2, .memory_mb = 1024,
                                  .seconds = 60, .at = now };
    snprintf (usage.id, sizeof usage.id, "cvm_1:1");
    snprintf (usage.workspace_id, sizeof usage.workspace_id, "%s", ws);
    assert (umb_billing_store_usage_insert (store, &usage) == 0);
    assert (umb_billing_store_usage_insert (store, &usage) == UMB_STORE_CONSTRAINT);
    snprintf (usage.id, sizeof usage.id, "run:run_1");
    snprintf (usage.kind, sizeof usage.kind, "run");
    assert (umb_billing_store_usage_insert (store, &usage) == 0);
    umb_billing_meter_t by_tee [UMB_BILLING_TEES], total;
    assert (umb_billing_store_meter (store, ws, "2026-12", by_tee, &total) == 0);
    assert (total.vcpu_seconds == 120 && total.cvm_seconds == 60 && total.runs == 1);
    assert (total.memory_mib_seconds == 61440 && by_tee [2].vcpu_seconds == 120);
    assert (umb_billing_store_meter (store, ws, "2026-11", by_tee, &total) == 0
            && total.vcpu_seconds == 0);

    //  Reservations close once
    umb_billing_reservation_t row = { .vcpus = 1, .memory_mb = 512, .seconds = 60, .amount = 5,
                                      .created_at = now, .expires_at = now + 10 };
    snprintf (row.id, sizeof row.id, "run_2");
    snprintf (row.workspace_id, sizeof row.workspace_id, "%s", ws);
    snprintf (row.tee, sizeof row.tee, "none");
    snprintf (row.state, sizeof row.state, "open");
    assert (umb_billing_store_reservation_insert (store, &row) == 0);
    int64_t open_count, vcpu_seconds;
    assert (umb_billing_store_reservations_open (store, ws, &open_count, &vcpu_seconds) == 0);
    assert (open_count == 1 && vcpu_seconds == 60);
    char **expired = umb_billing_store_reservations_expired (store, now + 9, 10);
    assert (expired && expired [0] == NULL);
    free (expired);
    expired = umb_billing_store_reservations_expired (store, now + 10, 10);
    assert (expired && S_STREQ (expired [0], "run_2") && expired [1] == NULL);
    free (expired [0]);
    free (expired);
    assert (umb_billing_store_reservation_close (store, "run_2", "settled", 3, now + 5) == 0);
    assert (umb_billing_store_reservation_close (store, "run_2", "released", 0, now + 6)
            == UMB_STORE_NOT_FOUND);
    umb_billing_reservation_t back;
    assert (umb_billing_store_reservation_get (store, "run_2", &back) == 0);
    assert (S_STREQ (back.state, "settled") && back.charged == 3 && back.settled_at == now + 5);

    //  Statement lines and months
    int64_t lines [3] = { 0, 0, 0 };
    assert (umb_billing_store_lines (store, ws, "2026-12", s_test_line, lines) == 0);
    assert (lines [0] == 3 && lines [1] == 750 && lines [2] == 250);
    umb_billing_month_t months [2];
    memset (months, 0, sizeof months);
    assert (umb_billing_store_months (store, ws, s_test_month, months) == 0);
    assert (S_STREQ (months [0].month, "2026-12") && months [0].credits == 1000);
    assert (months [0].charges == 250 && months [0].change == 750);
    umb_store_destroy (&store);
    umb_log_destroy (&log);
    close (null_fd);
    if (verbose)
        printf ("OK\n");
}
