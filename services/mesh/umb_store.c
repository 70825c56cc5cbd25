//  umb_store - SQLite-backed store: WAL, foreign keys, versioned migrations,
//  transactions and a cache of prepared statements
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <czmq.h>
#include "umb_store.h"

struct _umb_store_t {
    sqlite3   *db;
    char      *path;
    umb_log_t *log;                 //  borrowed, may be NULL
    zhashx_t  *statements;          //  SQL text -> sqlite3_stmt *
    int        version;
    bool       in_transaction;
    int        fail_after;          //  0: no fault armed
};

static void s_log (umb_store_t *self, umb_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_log (umb_store_t *self, umb_log_level_t level, const char *format, ...)
{
    if (!self->log || level < umb_log_level (self->log))
        return;
    char message [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof (message), format, args);
    va_end (args);
    umb_log_write (self->log, level, "%s: %s", self->path, message);
}

static void
s_statement_destroy (void **item_p)
{
    sqlite3_finalize ((sqlite3_stmt *) *item_p);
    *item_p = NULL;
}

static bool
s_is_memory (const char *path)
{
    return *path == 0 || streq (path, ":memory:");
}

//  Runs transaction control or pragmas directly, outside the cache and the
//  fault injection. Returns the SQLite result code.
static int
s_exec_raw (umb_store_t *self, const char *sql, char **error)
{
    return sqlite3_exec (self->db, sql, NULL, NULL, error);
}

//  Reads the schema version inside the current transaction; -1 on error.
static int
s_read_version (umb_store_t *self)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2 (self->db,
        "SELECT COUNT(*), COALESCE(MAX(version), 0) FROM schema_version", -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step (stmt);
    if (rc != SQLITE_ROW) {
        s_log (self, UMB_LOG_ERROR, "cannot read schema_version: %s", sqlite3_errmsg (self->db));
        sqlite3_finalize (stmt);
        return -1;
    }
    int64_t rows = sqlite3_column_int64 (stmt, 0);
    int64_t version = sqlite3_column_int64 (stmt, 1);
    sqlite3_finalize (stmt);
    if (rows > 1 || version < 0 || version > INT32_MAX) {
        s_log (self, UMB_LOG_ERROR, "schema_version is damaged (%lld rows, version %lld)",
               (long long) rows, (long long) version);
        return -1;
    }
    return (int) version;
}

static int
s_write_version (umb_store_t *self, int version)
{
    char sql [128];
    snprintf (sql, sizeof (sql),
              "DELETE FROM schema_version; INSERT INTO schema_version (version) VALUES (%d)", version);
    return s_exec_raw (self, sql, NULL) == SQLITE_OK? 0: -1;
}

//  Applies pending migrations, one transaction each. The version is read
//  again inside every transaction, so two processes opening the same new
//  database cannot both apply a migration.
static int
s_migrate (umb_store_t *self, const umb_migration_t *migrations)
{
    int last = 0;
    for (const umb_migration_t *migration = migrations; migration && migration->sql; migration++) {
        assert (migration->version == last + 1);
        last = migration->version;
    }
    while (true) {
        char *error = NULL;
        if (s_exec_raw (self, "BEGIN IMMEDIATE", &error) != SQLITE_OK
        ||  s_exec_raw (self, "CREATE TABLE IF NOT EXISTS schema_version ("
                              "version INTEGER NOT NULL)", &error) != SQLITE_OK) {
            s_log (self, UMB_LOG_ERROR, "cannot start migrations: %s", error);
            sqlite3_free (error);
            if (!sqlite3_get_autocommit (self->db))
                s_exec_raw (self, "ROLLBACK", NULL);
            return -1;
        }
        int version = s_read_version (self);
        if (version < 0) {
            s_exec_raw (self, "ROLLBACK", NULL);
            return -1;
        }
        if (version > last) {
            s_log (self, UMB_LOG_ERROR, "schema version %d is newer than this program's %d; "
                   "refusing to open it (upgrade the program, or restore a backup)", version, last);
            s_exec_raw (self, "ROLLBACK", NULL);
            return -1;
        }
        if (version == last) {
            self->version = version;
            if (s_exec_raw (self, "COMMIT", &error) != SQLITE_OK) {
                s_log (self, UMB_LOG_ERROR, "cannot commit: %s", error);
                sqlite3_free (error);
                s_exec_raw (self, "ROLLBACK", NULL);
                return -1;
            }
            return 0;
        }
        const umb_migration_t *migration = &migrations [version];
        int rc = s_exec_raw (self, migration->sql, &error);
        if (rc == SQLITE_OK && sqlite3_get_autocommit (self->db)) {
            rc = SQLITE_MISUSE;
            error = sqlite3_mprintf ("it ended the migration's transaction itself");
        }
        if (rc == SQLITE_OK && s_write_version (self, migration->version))
            error = sqlite3_mprintf ("%s", sqlite3_errmsg (self->db));
        else
        if (rc == SQLITE_OK && s_exec_raw (self, "COMMIT", &error) == SQLITE_OK) {
            s_log (self, UMB_LOG_INFO, "applied migration %d", migration->version);
            continue;
        }
        s_log (self, UMB_LOG_ERROR, "migration %d failed, rolled back: %s",
               migration->version, error? error: sqlite3_errmsg (self->db));
        sqlite3_free (error);
        if (!sqlite3_get_autocommit (self->db))
            s_exec_raw (self, "ROLLBACK", NULL);
        return -1;
    }
}

static int
s_configure (umb_store_t *self)
{
    sqlite3_extended_result_codes (self->db, 1);
    sqlite3_busy_timeout (self->db, 5000);
    char *error = NULL;
    if (s_exec_raw (self, "PRAGMA foreign_keys = ON", &error) != SQLITE_OK
    ||  s_exec_raw (self, "PRAGMA synchronous = NORMAL", &error) != SQLITE_OK) {
        s_log (self, UMB_LOG_ERROR, "cannot configure: %s", error);
        sqlite3_free (error);
        return -1;
    }
    if (s_is_memory (self->path))
        return 0;

    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2 (self->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step (stmt);
    if (rc != SQLITE_ROW) {
        //  The first read of the file: this is where "not a database" shows
        s_log (self, UMB_LOG_ERROR, "cannot open: %s", sqlite3_errmsg (self->db));
        sqlite3_finalize (stmt);
        return -1;
    }
    const char *mode = (const char *) sqlite3_column_text (stmt, 0);
    if (!mode || strcasecmp (mode, "wal") != 0)
        s_log (self, UMB_LOG_WARN, "journal mode is %s, not WAL", mode? mode: "unknown");
    sqlite3_finalize (stmt);
    return 0;
}

umb_store_t *
umb_store_new (const char *path, const umb_migration_t *migrations, umb_log_t *log)
{
    assert (path);
    umb_store_t *self = (umb_store_t *) calloc (1, sizeof (umb_store_t));
    if (!self)
        return NULL;
    self->log = log;
    self->path = strdup (path);
    self->statements = zhashx_new ();
    if (!self->path || !self->statements) {
        umb_store_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->statements, s_statement_destroy);

    if (!s_is_memory (path)) {
        //  Users, hashes and tokens live here: create it private. SQLite
        //  gives the -wal and -shm files the same mode.
        int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            s_log (self, UMB_LOG_ERROR, "cannot open: %s", strerror (errno));
            umb_store_destroy (&self);
            return NULL;
        }
        close (fd);
    }
    int rc = sqlite3_open_v2 (path, &self->db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        s_log (self, UMB_LOG_ERROR, "cannot open: %s",
               self->db? sqlite3_errmsg (self->db): sqlite3_errstr (rc));
        umb_store_destroy (&self);
        return NULL;
    }
    if (s_configure (self) || s_migrate (self, migrations)) {
        umb_store_destroy (&self);
        return NULL;
    }
    return self;
}

void
umb_store_destroy (umb_store_t **self_p)
{
    assert (self_p);
    umb_store_t *self = *self_p;
    if (self) {
        if (self->in_transaction) {
            s_log (self, UMB_LOG_WARN, "closed inside a transaction; rolling it back");
            umb_store_rollback (self);
        }
        zhashx_destroy (&self->statements);
        if (self->db)
            sqlite3_close_v2 (self->db);
        free (self->path);
        free (self);
        *self_p = NULL;
    }
}

int
umb_store_version (umb_store_t *self)
{
    assert (self);
    return self->version;
}

sqlite3_stmt *
umb_store_prepare (umb_store_t *self, const char *sql)
{
    assert (self);
    assert (sql);
    sqlite3_stmt *stmt = (sqlite3_stmt *) zhashx_lookup (self->statements, sql);
    if (stmt) {
        sqlite3_reset (stmt);
        sqlite3_clear_bindings (stmt);
        return stmt;
    }
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3 (self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) {
        s_log (self, UMB_LOG_ERROR, "cannot prepare \"%.200s\": %s", sql, sqlite3_errmsg (self->db));
        return NULL;
    }
    if (tail)
        tail += strspn (tail, " \t\r\n;");
    if (!stmt || (tail && *tail)) {
        s_log (self, UMB_LOG_ERROR, "cannot prepare \"%.200s\": %s", sql,
               stmt? "more than one statement": "no statement");
        sqlite3_finalize (stmt);
        return NULL;
    }
    if (zhashx_insert (self->statements, sql, stmt)) {
        sqlite3_finalize (stmt);
        return NULL;
    }
    return stmt;
}

//  Counts down an armed fault; true when this write is the one to fail.
static bool
s_inject_fault (umb_store_t *self, sqlite3_stmt *stmt)
{
    if (self->fail_after == 0 || sqlite3_stmt_readonly (stmt))
        return false;
    if (--self->fail_after > 0)
        return false;
    s_log (self, UMB_LOG_ERROR, "injected fault: \"%.200s\" not run", sqlite3_sql (stmt));
    return true;
}

int
umb_store_step_done (umb_store_t *self, sqlite3_stmt *stmt)
{
    assert (self);
    assert (stmt);
    assert (sqlite3_db_handle (stmt) == self->db);
    if (s_inject_fault (self, stmt)) {
        sqlite3_reset (stmt);
        sqlite3_clear_bindings (stmt);
        return -1;
    }
    int rc;
    do
        rc = sqlite3_step (stmt);
    while (rc == SQLITE_ROW);

    int result = 0;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        s_log (self, UMB_LOG_DEBUG, "refused: %s", sqlite3_errmsg (self->db));
        result = UMB_STORE_CONSTRAINT;
    }
    else
    if (rc != SQLITE_DONE) {
        s_log (self, UMB_LOG_ERROR, "\"%.200s\" failed: %s", sqlite3_sql (stmt),
               sqlite3_errmsg (self->db));
        result = -1;
    }
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return result;
}

int
umb_store_vbind (umb_store_t *self, sqlite3_stmt *stmt, const char *format, va_list args)
{
    assert (self);
    assert (stmt);
    assert (format);
    assert (sqlite3_db_handle (stmt) == self->db);
    //  A format that does not fit its SQL is the caller's bug, whatever the values
    assert (strlen (format) == (size_t) sqlite3_bind_parameter_count (stmt));
    for (int index = 1; format [index - 1]; index++) {
        int rc = SQLITE_MISUSE;
        switch (format [index - 1]) {
            case 's': {
                const char *text = va_arg (args, const char *);
                rc = text? sqlite3_bind_text (stmt, index, text, -1, SQLITE_STATIC)
                         : sqlite3_bind_null (stmt, index);
                break;
            }
            case 'i':
                rc = sqlite3_bind_int64 (stmt, index, va_arg (args, int64_t));
                break;
            case 'b':
                rc = sqlite3_bind_int (stmt, index, va_arg (args, int) != 0);
                break;
            default:
                assert (!"umb_store_bind: format characters are s, i and b");
        }
        if (rc != SQLITE_OK) {
            //  Never the value: it may be a password hash or a token
            s_log (self, UMB_LOG_ERROR, "cannot bind parameter %d of \"%.200s\": %s", index,
                   sqlite3_sql (stmt), sqlite3_errstr (rc));
            sqlite3_clear_bindings (stmt);
            return -1;
        }
    }
    return 0;
}

int
umb_store_bind (umb_store_t *self, sqlite3_stmt *stmt, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    int rc = umb_store_vbind (self, stmt, format, args);
    va_end (args);
    return rc;
}

int
umb_store_run (umb_store_t *self, const char *sql, const char *format, ...)
{
    assert (self);
    sqlite3_stmt *stmt = umb_store_prepare (self, sql);
    if (!stmt)
        return -1;
    va_list args;
    va_start (args, format);
    int rc = umb_store_vbind (self, stmt, format, args);
    va_end (args);
    return rc? -1: umb_store_step_done (self, stmt);
}

sqlite3_stmt *
umb_store_query (umb_store_t *self, const char *sql, const char *format, ...)
{
    assert (self);
    sqlite3_stmt *stmt = umb_store_prepare (self, sql);
    if (!stmt)
        return NULL;
    va_list args;
    va_start (args, format);
    int rc = umb_store_vbind (self, stmt, format, args);
    va_end (args);
    return rc ? NULL : stmt;
}

void
umb_store_column (sqlite3_stmt *stmt, int column, char *dest, size_t size)
{
    assert (stmt);
    assert (dest && size > 0);
    const char *text = (const char *) sqlite3_column_text (stmt, column);
    snprintf (dest, size, "%s", text ? text : "");
}

int
umb_store_get (sqlite3_stmt *stmt, umb_store_row_fn *row, void *dest)
{
    assert (row);
    if (!stmt)
        return -1;
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW)
        row (stmt, dest);
    sqlite3_reset (stmt);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? UMB_STORE_NOT_FOUND : -1;
}

static void
s_int64_row (sqlite3_stmt *stmt, void *dest)
{
    *(int64_t *) dest = sqlite3_column_int64 (stmt, 0);
}

int64_t
umb_store_scalar (sqlite3_stmt *stmt)
{
    int64_t value = 0;
    return umb_store_get (stmt, s_int64_row, &value) == 0 ? value : -1;
}

int
umb_store_each (sqlite3_stmt *stmt, umb_store_each_fn *row, void *fn, void *arg)
{
    assert (row);
    if (!stmt)
        return -1;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
        row (stmt, fn, arg);
    sqlite3_reset (stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

int
umb_store_counts (sqlite3_stmt *stmt, const char *const *names, int64_t *counts)
{
    size_t count = 0;
    while (names [count])
        counts [count++] = 0;
    if (!stmt)
        return -1;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        const char *name = (const char *) sqlite3_column_text (stmt, 0);
        for (size_t i = 0; name && i < count; i++)
            if (strcmp (names [i], name) == 0)
                counts [i] = sqlite3_column_int64 (stmt, 1);
    }
    sqlite3_reset (stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

int
umb_store_exec (umb_store_t *self, const char *sql)
{
    assert (self);
    sqlite3_stmt *stmt = umb_store_prepare (self, sql);
    if (!stmt)
        return -1;
    int rc = umb_store_step_done (self, stmt);
    if (rc == UMB_STORE_CONSTRAINT) {
        s_log (self, UMB_LOG_ERROR, "\"%.200s\" failed: %s", sql, sqlite3_errmsg (self->db));
        rc = -1;
    }
    return rc;
}

int
umb_store_begin (umb_store_t *self)
{
    assert (self);
    assert (!self->in_transaction);
    char *error = NULL;
    if (s_exec_raw (self, "BEGIN IMMEDIATE", &error) != SQLITE_OK) {
        s_log (self, UMB_LOG_ERROR, "cannot begin a transaction: %s", error);
        sqlite3_free (error);
        return -1;
    }
    self->in_transaction = true;
    return 0;
}

int
umb_store_commit (umb_store_t *self)
{
    assert (self);
    assert (self->in_transaction);
    char *error = NULL;
    if (s_exec_raw (self, "COMMIT", &error) != SQLITE_OK) {
        s_log (self, UMB_LOG_ERROR, "cannot commit, rolled back: %s", error);
        sqlite3_free (error);
        umb_store_rollback (self);
        return -1;
    }
    self->in_transaction = false;
    return 0;
}

void
umb_store_rollback (umb_store_t *self)
{
    assert (self);
    assert (self->in_transaction);
    //  SQLite may have rolled back already (SQLITE_FULL, IOERR, NOMEM...)
    if (!sqlite3_get_autocommit (self->db)) {
        char *error = NULL;
        if (s_exec_raw (self, "ROLLBACK", &error) != SQLITE_OK) {
            s_log (self, UMB_LOG_ERROR, "cannot roll back: %s", error);
            sqlite3_free (error);
        }
    }
    self->in_transaction = false;
}

int64_t
umb_store_changes (umb_store_t *self)
{
    assert (self);
    return sqlite3_changes64 (self->db);
}

sqlite3 *
umb_store_handle (umb_store_t *self)
{
    assert (self);
    return self->db;
}

void
umb_store_fail_after (umb_store_t *self, int n)
{
    assert (self);
    assert (n >= 0);
    self->fail_after = n;
}

//  --------------------------------------------------------------------------
//  Selftest

#include <sys/stat.h>

#define UMB_STORE_TEST_M1 \
    "CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE," \
    "  age INTEGER CHECK (age >= 0));" \
    "INSERT INTO users (id, name, age) VALUES ('u0', 'root', 0);"
#define UMB_STORE_TEST_M2 \
    "CREATE TABLE keys (id TEXT PRIMARY KEY," \
    "  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE);" \
    "CREATE TABLE notes (id TEXT PRIMARY KEY," \
    "  user_id TEXT REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED);"

static const umb_migration_t s_test_v1 [] = {
    { 1, UMB_STORE_TEST_M1 },
    { 0, NULL }
};
static const umb_migration_t s_test_v2 [] = {
    { 1, UMB_STORE_TEST_M1 },
    { 2, UMB_STORE_TEST_M2 },
    { 0, NULL }
};
static const umb_migration_t s_test_broken [] = {
    { 1, UMB_STORE_TEST_M1 },
    { 2, "CREATE TABLE half (x INTEGER); INSERT INTO nope VALUES (1);" },
    { 0, NULL }
};
static const umb_migration_t s_test_commits [] = {
    { 1, UMB_STORE_TEST_M1 },
    { 2, "CREATE TABLE early (x INTEGER); COMMIT;" },
    { 0, NULL }
};

//  Returns what the logger wrote since the last call; caller frees.
static char *
s_test_drain (int fd)
{
    char *text = (char *) zmalloc (65537);
    ssize_t size = read (fd, text, 65536);
    assert (size > 0 || (size < 0 && errno == EAGAIN));
    return text;
}

static int
s_test_lines (const char *text)
{
    int lines = 0;
    for (; *text; text++)
        lines += *text == '\n';
    return lines;
}

static int64_t
s_test_count (umb_store_t *self, const char *sql)
{
    sqlite3_stmt *stmt = umb_store_prepare (self, sql);
    assert (stmt);
    int rc = sqlite3_step (stmt);
    assert (rc == SQLITE_ROW);
    int64_t count = sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    return count;
}

static bool
s_test_has_table (umb_store_t *self, const char *name)
{
    sqlite3_stmt *stmt = umb_store_prepare (self,
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?");
    assert (stmt);
    sqlite3_bind_text (stmt, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step (stmt);
    assert (rc == SQLITE_ROW);
    bool found = sqlite3_column_int (stmt, 0) == 1;
    sqlite3_reset (stmt);
    return found;
}

static int
s_test_insert_user (umb_store_t *self, const char *id, const char *name, int64_t age)
{
    return umb_store_run (self, "INSERT INTO users (id, name, age) VALUES (?, ?, ?)",
                          "ssi", id, name, age);
}

static int
s_test_insert_key (umb_store_t *self, const char *table, const char *id, const char *user_id)
{
    char sql [128];
    snprintf (sql, sizeof (sql), "INSERT INTO %s (id, user_id) VALUES (?, ?)", table);
    sqlite3_stmt *stmt = umb_store_prepare (self, sql);
    assert (stmt);
    int rc = umb_store_bind (self, stmt, "ss", id, user_id);
    assert (rc == 0);
    return umb_store_step_done (self, stmt);
}

static const char *
s_test_pragma (umb_store_t *self, const char *sql, char *value, size_t size)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2 (umb_store_handle (self), sql, -1, &stmt, NULL);
    assert (rc == SQLITE_OK);
    rc = sqlite3_step (stmt);
    assert (rc == SQLITE_ROW);
    snprintf (value, size, "%s", (const char *) sqlite3_column_text (stmt, 0));
    sqlite3_finalize (stmt);
    return value;
}

//  umb_store_get's row: the note column, truncated to 4 bytes with the NUL
static void
s_test_note_row (sqlite3_stmt *stmt, void *dest)
{
    umb_store_column (stmt, 0, dest, 4);
}

//  umb_store_each's row: appends "id;" to the buffer fn, counts rows in arg
static void
s_test_id_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    char id [8];
    umb_store_column (stmt, 0, id, sizeof (id));
    strcat ((char *) fn, id);
    strcat ((char *) fn, ";");
    (*(int *) arg)++;
}

void
umb_store_test (bool verbose)
{
    if (verbose)
        printf (" * umb_store: ");

    int pipe_fds [2];
    int rc = pipe2 (pipe_fds, O_NONBLOCK | O_CLOEXEC);
    assert (rc == 0);
    umb_log_t *log = umb_log_new ("store", UMB_LOG_INFO, false);
    assert (log);
    umb_log_set_fd (log, pipe_fds [1]);
    char value [64];
    char *out;

    //  No logger, no migrations
    umb_store_t *store = umb_store_new (":memory:", NULL, NULL);
    assert (store);
    assert (umb_store_version (store) == 0);
    assert (s_test_has_table (store, "schema_version"));
    assert (umb_store_prepare (store, "SELECT nonsense FROM nowhere") == NULL);
    umb_store_destroy (&store);
    assert (store == NULL);
    umb_store_destroy (&store);

    char dir [] = "/tmp/umb_store_test_XXXXXX";
    assert (mkdtemp (dir));
    char path [128], other [128], junk [128];
    snprintf (path, sizeof (path), "%s/main.db", dir);
    snprintf (other, sizeof (other), "%s/other.db", dir);
    snprintf (junk, sizeof (junk), "%s/junk.db", dir);

    //  A file database: WAL, foreign keys, private, migrated once
    store = umb_store_new (path, s_test_v1, log);
    assert (store);
    assert (umb_store_version (store) == 1);
    assert (streq (s_test_pragma (store, "PRAGMA journal_mode", value, sizeof (value)), "wal"));
    assert (streq (s_test_pragma (store, "PRAGMA foreign_keys", value, sizeof (value)), "1"));
    assert (streq (s_test_pragma (store, "PRAGMA synchronous", value, sizeof (value)), "1"));
    assert (s_test_count (store, "SELECT COUNT(*) FROM users") == 1);
    struct stat info;
    rc = stat (path, &info);
    assert (rc == 0 && (info.st_mode & 0777) == 0600);
    umb_store_destroy (&store);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "INFO  store: ") && strstr (out, "applied migration 1"));
    zstr_free (&out);

    store = umb_store_new (path, s_test_v1, log);
    assert (store);
    assert (umb_store_version (store) == 1);
    assert (s_test_count (store, "SELECT COUNT(*) FROM users") == 1);
    umb_store_destroy (&store);
    out = s_test_drain (pipe_fds [0]);
    assert (*out == 0);
    zstr_free (&out);

    store = umb_store_new (path, s_test_v2, log);
    assert (store);
    assert (umb_store_version (store) == 2);
    assert (s_test_count (store, "SELECT COUNT(*) FROM users") == 1);
    assert (s_test_count (store, "SELECT COUNT(*) FROM schema_version") == 1);
    assert (s_test_has_table (store, "keys"));
    umb_store_destroy (&store);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "applied migration 2"));
    zstr_free (&out);

    //  An older program refuses a newer database, and leaves it alone
    store = umb_store_new (path, s_test_v1, log);
    assert (store == NULL);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "ERROR store: "));
    assert (strstr (out, "schema version 2 is newer than this program's 1"));
    zstr_free (&out);
    store = umb_store_new (path, s_test_v2, log);
    assert (store && umb_store_version (store) == 2);

    //  Transactions on a file, seen from a second connection
    umb_store_t *reader = umb_store_new (path, s_test_v2, log);
    assert (reader);
    rc = umb_store_begin (store);
    assert (rc == 0);
    rc = s_test_insert_user (store, "u1", "alice", 30);
    assert (rc == 0);
    assert (s_test_count (reader, "SELECT COUNT(*) FROM users") == 1);
    //  One writer at a time: a second BEGIN IMMEDIATE waits, then gives up
    sqlite3_busy_timeout (umb_store_handle (reader), 10);
    rc = umb_store_begin (reader);
    assert (rc == -1);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "cannot begin a transaction: database is locked"));
    zstr_free (&out);
    rc = umb_store_commit (store);
    assert (rc == 0);
    assert (s_test_count (reader, "SELECT COUNT(*) FROM users") == 2);
    rc = umb_store_begin (reader);
    assert (rc == 0);
    umb_store_rollback (reader);

    rc = umb_store_begin (store);
    assert (rc == 0);
    rc = s_test_insert_user (store, "u2", "bob", 40);
    assert (rc == 0);
    umb_store_rollback (store);
    assert (s_test_count (store, "SELECT COUNT(*) FROM users") == 2);
    assert (s_test_count (reader, "SELECT COUNT(*) FROM users") == 2);

    //  Closing inside a transaction rolls it back
    rc = umb_store_begin (store);
    assert (rc == 0);
    rc = s_test_insert_user (store, "u3", "carol", 50);
    assert (rc == 0);
    umb_store_destroy (&store);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "WARN  store: ") && strstr (out, "rolling it back"));
    zstr_free (&out);
    assert (s_test_count (reader, "SELECT COUNT(*) FROM users") == 2);
    umb_store_destroy (&reader);

    //  A damaged version table is refused
    store = umb_store_new (path, s_test_v2, log);
    assert (store);
    rc = umb_store_exec (store, "INSERT INTO schema_version (version) VALUES (1)");
    assert (rc == 0);
    umb_store_destroy (&store);
    store = umb_store_new (path, s_test_v2, log);
    assert (store == NULL);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "schema_version is damaged (2 rows"));
    zstr_free (&out);

    //  A failing migration rolls back whole and is logged once
    store = umb_store_new (other, s_test_broken, log);
    assert (store == NULL);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 2 && strstr (out, "applied migration 1"));
    assert (strstr (out, "migration 2 failed, rolled back: no such table: nope"));
    zstr_free (&out);
    store = umb_store_new (other, s_test_v1, log);
    assert (store);
    assert (umb_store_version (store) == 1);
    assert (!s_test_has_table (store, "half"));
    assert (s_test_count (store, "SELECT MAX(version) FROM schema_version") == 1);
    umb_store_destroy (&store);
    //  ...and one that ends its own transaction is caught
    store = umb_store_new (other, s_test_commits, log);
    assert (store == NULL);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "ended the migration's transaction"));
    zstr_free (&out);

    //  Not a database; no such directory
    FILE *file = fopen (junk, "w");
    assert (file);
    for (int index = 0; index < 100; index++)
        fputs ("this is not a database\n", file);
    fclose (file);
    store = umb_store_new (junk, s_test_v1, log);
    assert (store == NULL);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "file is not a database"));
    zstr_free (&out);
    store = umb_store_new ("/nonexistent/umbra/x.db", s_test_v1, log);
    assert (store == NULL);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "No such file or directory"));
    zstr_free (&out);

    //  Constraints
    store = umb_store_new (":memory:", s_test_v2, log);
    assert (store);
    assert (umb_store_version (store) == 2);
    out = s_test_drain (pipe_fds [0]);
    zstr_free (&out);
    rc = s_test_insert_user (store, "u1", "alice", 30);
    assert (rc == 0);
    assert (umb_store_changes (store) == 1);
    assert (s_test_insert_user (store, "u1", "other", 1) == UMB_STORE_CONSTRAINT);
    assert (s_test_insert_user (store, "u2", "alice", 1) == UMB_STORE_CONSTRAINT);
    assert (s_test_insert_user (store, "u2", NULL, 1) == UMB_STORE_CONSTRAINT);
    assert (s_test_insert_user (store, "u2", "bob", -1) == UMB_STORE_CONSTRAINT);
    assert (s_test_insert_key (store, "keys", "k1", "nobody") == UMB_STORE_CONSTRAINT);
    assert (s_test_insert_key (store, "keys", "k1", "u1") == 0);
    assert (s_test_insert_key (store, "keys", "k2", "u1") == 0);
    rc = umb_store_exec (store, "DELETE FROM users WHERE id = 'u1'");
    assert (rc == 0);
    assert (umb_store_changes (store) == 1);
    assert (s_test_count (store, "SELECT COUNT(*) FROM keys") == 0);
    out = s_test_drain (pipe_fds [0]);
    assert (*out == 0);                 //  refusals are the caller's to report
    zstr_free (&out);
    rc = umb_store_exec (store, "INSERT INTO users (id, name) VALUES ('u0', 'again')");
    assert (rc == -1);
    rc = umb_store_exec (store, "DELETE FROM nowhere");
    assert (rc == -1);
    rc = umb_store_exec (store, "SELECT 1; SELECT 2");
    assert (rc == -1);
    assert (umb_store_prepare (store, "  ; ") == NULL);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 4);
    assert (strstr (out, "UNIQUE constraint failed: users.id"));
    assert (strstr (out, "no such table: nowhere"));
    assert (strstr (out, "more than one statement"));
    assert (strstr (out, "no statement"));
    zstr_free (&out);

    //  A deferred constraint fails the commit, which then rolls back
    rc = umb_store_begin (store);
    assert (rc == 0);
    rc = s_test_insert_user (store, "u5", "eve", 20);
    assert (rc == 0);
    assert (s_test_insert_key (store, "notes", "n1", "nobody") == 0);
    rc = umb_store_commit (store);
    assert (rc == -1);
    assert (sqlite3_get_autocommit (umb_store_handle (store)));
    assert (s_test_count (store, "SELECT COUNT(*) FROM users WHERE id = 'u5'") == 0);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "cannot commit, rolled back: FOREIGN KEY"));
    zstr_free (&out);
    rc = umb_store_begin (store);
    assert (rc == 0);
    rc = umb_store_commit (store);
    assert (rc == 0);

    //  Cached statements come back reset with bindings cleared
    const char *select = "SELECT name FROM users WHERE id = ?";
    sqlite3_stmt *stmt = umb_store_prepare (store, select);
    assert (stmt);
    sqlite3_bind_text (stmt, 1, "u0", -1, SQLITE_STATIC);
    rc = sqlite3_step (stmt);
    assert (rc == SQLITE_ROW);
    assert (streq ((const char *) sqlite3_column_text (stmt, 0), "root"));
    assert (sqlite3_stmt_busy (stmt));
    char *copy = strdup (select);
    assert (copy);
    sqlite3_stmt *again = umb_store_prepare (store, copy);
    free (copy);
    assert (again == stmt);
    assert (!sqlite3_stmt_busy (again));
    rc = sqlite3_step (again);
    assert (rc == SQLITE_DONE);         //  id = NULL matches nothing
    assert (umb_store_prepare (store, "SELECT name FROM users") != stmt);

    //  Fault injection counts writes only, fires once
    umb_store_fail_after (store, 2);
    assert (s_test_insert_user (store, "f1", "first", 1) == 0);
    stmt = umb_store_prepare (store, "SELECT COUNT(*) FROM users");
    assert (umb_store_step_done (store, stmt) == 0);
    assert (s_test_insert_user (store, "f2", "second", 2) == -1);
    assert (s_test_insert_user (store, "f3", "third", 3) == 0);
    assert (s_test_count (store, "SELECT COUNT(*) FROM users WHERE id LIKE 'f%'") == 2);
    assert (s_test_count (store, "SELECT COUNT(*) FROM users WHERE id = 'f2'") == 0);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "injected fault: \"INSERT INTO users"));
    zstr_free (&out);
    umb_store_fail_after (store, 1);
    assert (umb_store_exec (store, "DELETE FROM users WHERE id = 'f1'") == -1);
    assert (umb_store_exec (store, "DELETE FROM users WHERE id = 'f1'") == 0);
    umb_store_fail_after (store, 1);
    umb_store_fail_after (store, 0);
    assert (umb_store_exec (store, "DELETE FROM users WHERE id = 'f3'") == 0);
    rc = umb_store_begin (store);
    assert (rc == 0);
    umb_store_fail_after (store, 2);
    assert (s_test_insert_user (store, "t1", "tx1", 1) == 0);
    assert (s_test_insert_user (store, "t2", "tx2", 1) == -1);
    umb_store_rollback (store);
    assert (s_test_count (store, "SELECT COUNT(*) FROM users WHERE id LIKE 't%'") == 0);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 2);
    zstr_free (&out);

    //  Binding from a format: every type, the extremes, and what follows them
    stmt = umb_store_prepare (store, "SELECT ?, ?, ?, ?, ?, ?, ?, typeof (?3)");
    assert (stmt);
    rc = umb_store_bind (store, stmt, "sisibbs", "first", INT64_MIN, NULL, INT64_MAX,
                         true, false, "last");
    assert (rc == 0);
    rc = sqlite3_step (stmt);
    assert (rc == SQLITE_ROW);
    assert (streq ((const char *) sqlite3_column_text (stmt, 0), "first"));
    assert (sqlite3_column_type (stmt, 1) == SQLITE_INTEGER);
    assert (sqlite3_column_int64 (stmt, 1) == INT64_MIN);
    assert (sqlite3_column_type (stmt, 2) == SQLITE_NULL);
    assert (sqlite3_column_int64 (stmt, 3) == INT64_MAX);
    assert (sqlite3_column_type (stmt, 4) == SQLITE_INTEGER && sqlite3_column_int (stmt, 4) == 1);
    assert (sqlite3_column_type (stmt, 5) == SQLITE_INTEGER && sqlite3_column_int (stmt, 5) == 0);
    assert (streq ((const char *) sqlite3_column_text (stmt, 6), "last"));
    assert (streq ((const char *) sqlite3_column_text (stmt, 7), "null"));
    sqlite3_reset (stmt);
    stmt = umb_store_prepare (store, "SELECT 1");
    assert (umb_store_bind (store, stmt, "") == 0);

    //  umb_store_run: values round-trip, constraints map as umb_store_step_done's
    rc = umb_store_exec (store, "CREATE TABLE typed (id TEXT PRIMARY KEY, note TEXT,"
                                " n INTEGER NOT NULL, flag INTEGER NOT NULL CHECK (flag IN (0, 1)),"
                                " owner TEXT REFERENCES users (id))");
    assert (rc == 0);
    const char *insert_typed =
        "INSERT INTO typed (id, note, n, flag, owner) VALUES (?, ?, ?, ?, ?)";
    rc = umb_store_run (store, insert_typed, "ssibs", "lo", NULL, INT64_MIN, true, NULL);
    assert (rc == 0);
    assert (umb_store_changes (store) == 1);
    rc = umb_store_run (store, insert_typed, "ssibs", "hi", "x", INT64_MAX, false, "u0");
    assert (rc == 0);
    assert (s_test_count (store, "SELECT n FROM typed WHERE id = 'lo'") == INT64_MIN);
    assert (s_test_count (store, "SELECT n FROM typed WHERE id = 'hi'") == INT64_MAX);
    assert (s_test_count (store, "SELECT COUNT(*) FROM typed WHERE id = 'lo' AND note IS NULL"
                                 " AND flag = 1 AND owner IS NULL") == 1);
    assert (s_test_count (store, "SELECT COUNT(*) FROM typed WHERE id = 'hi' AND note = 'x'"
                                 " AND flag = 0 AND owner = 'u0'") == 1);
    assert (umb_store_run (store, insert_typed, "ssibs", "lo", NULL, (int64_t) 0, false, NULL)
            == UMB_STORE_CONSTRAINT);           //  UNIQUE
    assert (umb_store_run (store, insert_typed, "ssibs", "fk", NULL, (int64_t) 0, false, "nobody")
            == UMB_STORE_CONSTRAINT);           //  FOREIGN KEY
    assert (s_test_insert_user (store, "neg", "negative", INT64_MIN)
            == UMB_STORE_CONSTRAINT);           //  CHECK
    assert (umb_store_run (store, "INSERT INTO users (id, name) VALUES (?, ?)", "ss", "nn", NULL)
            == UMB_STORE_CONSTRAINT);           //  NOT NULL
    rc = umb_store_run (store, "UPDATE typed SET flag = ? WHERE id = ?", "bs", true, "none");
    assert (rc == 0);
    assert (umb_store_changes (store) == 0);
    rc = umb_store_run (store, "UPDATE typed SET flag = ? WHERE id = ?", "bs", true, "hi");
    assert (rc == 0);
    assert (umb_store_changes (store) == 1);
    assert (s_test_count (store, "SELECT flag FROM typed WHERE id = 'hi'") == 1);
    rc = umb_store_run (store, "SELECT n FROM typed WHERE id = ?", "s", "lo");
    assert (rc == 0);                   //  rows are ignored
    rc = umb_store_run (store, "DELETE FROM nowhere WHERE id = ?", "s", "x");
    assert (rc == -1);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "no such table: nowhere"));
    zstr_free (&out);

    //  A value SQLite refuses fails the run, logged without the value
    int length_limit = sqlite3_limit (umb_store_handle (store), SQLITE_LIMIT_LENGTH, 16);
    rc = umb_store_run (store, insert_typed, "ssibs", "long", "secret-longer-than-sixteen",
                        (int64_t) 1, false, NULL);
    assert (rc == -1);
    sqlite3_limit (umb_store_handle (store), SQLITE_LIMIT_LENGTH, length_limit);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1);
    assert (strstr (out, "cannot bind parameter 2 of \"INSERT INTO typed"));
    assert (strstr (out, "too big") && !strstr (out, "secret"));
    zstr_free (&out);
    assert (s_test_count (store, "SELECT COUNT(*) FROM typed WHERE id = 'long'") == 0);
    rc = umb_store_run (store, insert_typed, "ssibs", "long", "secret-longer-than-sixteen",
                        (int64_t) 1, false, NULL);
    assert (rc == 0);

    //  Fault injection counts the writes of umb_store_run, not its reads
    umb_store_fail_after (store, 2);
    rc = umb_store_run (store, "SELECT COUNT(*) FROM typed WHERE id = ?", "s", "lo");
    assert (rc == 0);
    rc = umb_store_run (store, "UPDATE typed SET n = ? WHERE id = ?", "is", (int64_t) 7, "lo");
    assert (rc == 0);
    rc = umb_store_run (store, "UPDATE typed SET n = ? WHERE id = ?", "is", (int64_t) 8, "hi");
    assert (rc == -1);
    rc = umb_store_run (store, "DELETE FROM typed WHERE id = ?", "s", "long");
    assert (rc == 0);
    assert (s_test_count (store, "SELECT n FROM typed WHERE id = 'lo'") == 7);
    assert (s_test_count (store, "SELECT n FROM typed WHERE id = 'hi'") == INT64_MAX);
    assert (s_test_count (store, "SELECT COUNT(*) FROM typed") == 2);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "injected fault: \"UPDATE typed SET n"));
    zstr_free (&out);

    //  Reads: umb_store_query binds, umb_store_get/scalar/each step and reset
    const char *select_note = "SELECT note FROM typed WHERE id = ?";
    strcpy (value, "junk");
    assert (umb_store_get (umb_store_query (store, select_note, "s", "hi"), s_test_note_row,
                           value) == 0);
    assert (streq (value, "x"));
    rc = umb_store_run (store, "UPDATE typed SET note = ? WHERE id = ?", "ss", "longer", "hi");
    assert (rc == 0);                   //  the read was reset: no snapshot held
    assert (umb_store_get (umb_store_query (store, select_note, "s", "hi"), s_test_note_row,
                           value) == 0);
    assert (streq (value, "lon"));      //  truncated, terminated
    assert (umb_store_get (umb_store_query (store, select_note, "s", "lo"), s_test_note_row,
                           value) == 0);
    assert (streq (value, ""));         //  SQL NULL
    strcpy (value, "kept");
    assert (umb_store_get (umb_store_query (store, select_note, "s", "none"), s_test_note_row,
                           value) == UMB_STORE_NOT_FOUND);
    assert (streq (value, "kept"));
    assert (umb_store_get (NULL, s_test_note_row, value) == -1);
    assert (umb_store_scalar (umb_store_query (store, "SELECT n FROM typed WHERE id = ?", "s",
                                               "lo")) == 7);
    assert (umb_store_scalar (umb_store_query (store, "SELECT COUNT(*) FROM typed WHERE n > ?",
                                               "i", (int64_t) 7)) == 1);
    assert (umb_store_scalar (umb_store_query (store, "SELECT n FROM typed WHERE id = ?", "s",
                                               "none")) == -1);
    assert (umb_store_scalar (NULL) == -1);
    char ids [64] = "";
    int rows = 0;
    rc = umb_store_each (umb_store_query (store, "SELECT id FROM typed WHERE n >= ? ORDER BY id",
                                          "i", (int64_t) 0), s_test_id_each, ids, &rows);
    assert (rc == 0 && rows == 2 && streq (ids, "hi;lo;"));
    ids [0] = 0;
    rows = 0;
    rc = umb_store_each (umb_store_query (store, "SELECT id FROM typed WHERE id = ?", "s", "none"),
                         s_test_id_each, ids, &rows);
    assert (rc == 0 && rows == 0 && streq (ids, ""));
    assert (umb_store_each (NULL, s_test_id_each, ids, &rows) == -1);
    assert (rows == 0);
    out = s_test_drain (pipe_fds [0]);
    assert (*out == 0);
    zstr_free (&out);
    //  A query that SQLite refuses, or a value it refuses, is NULL (logged)
    assert (umb_store_query (store, "SELECT name FROM nowhere", "") == NULL);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "no such table: nowhere"));
    zstr_free (&out);
    length_limit = sqlite3_limit (umb_store_handle (store), SQLITE_LIMIT_LENGTH, 16);
    assert (umb_store_query (store, select_note, "s", "secret-longer-than-sixteen") == NULL);
    sqlite3_limit (umb_store_handle (store), SQLITE_LIMIT_LENGTH, length_limit);
    out = s_test_drain (pipe_fds [0]);
    assert (s_test_lines (out) == 1 && strstr (out, "too big") && !strstr (out, "secret"));
    zstr_free (&out);
    umb_store_destroy (&store);
    out = s_test_drain (pipe_fds [0]);
    zstr_free (&out);

    umb_log_destroy (&log);
    close (pipe_fds [0]);
    close (pipe_fds [1]);
    const char *suffixes [] = { "", "-wal", "-shm" };
    for (int index = 0; index < 3; index++) {
        char name [160];
        snprintf (name, sizeof (name), "%s%s", path, suffixes [index]);
        unlink (name);
        snprintf (name, sizeof (name), "%s%s", other, suffixes [index]);
        unlink (name);
    }
    unlink (junk);
    rc = rmdir (dir);
    assert (rc == 0);

    if (verbose)
        printf ("OK\n");
}
