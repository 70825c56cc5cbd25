//  umb_store - SQLite-backed store: WAL, foreign keys, versioned migrations,
//  transactions and a cache of prepared statements.
//
//  SQL written against it stays portable (standard types, no AUTOINCREMENT,
//  no INSERT OR ...; ON CONFLICT is fine) so a PostgreSQL store can follow.
#ifndef UMB_STORE_H_INCLUDED
#define UMB_STORE_H_INCLUDED

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include "umb_log.h"

typedef struct _umb_store_t umb_store_t;

//  One migration: version numbers start at 1 and increase by one; sql may hold
//  several statements. A migration runs in one transaction with its version bump.
typedef struct {
    int         version;
    const char *sql;
} umb_migration_t;

//  Opens (creating if needed) the database at path (":memory:" allowed), sets
//  WAL, foreign_keys=ON, busy_timeout, and applies pending migrations, which
//  must be terminated by {0, NULL}. Refuses a database whose version is newer
//  than the last migration. NULL on failure (logged once).
umb_store_t *umb_store_new (const char *path, const umb_migration_t *migrations, umb_log_t *log);
void         umb_store_destroy (umb_store_t **self_p);

int          umb_store_version (umb_store_t *self);

//  Returns a prepared statement for sql, reset and with bindings cleared.
//  Statements are cached by the sql pointer's text and owned by the store:
//  never finalize them. NULL on SQL error (logged).
sqlite3_stmt *umb_store_prepare (umb_store_t *self, const char *sql);

//  Runs a statement with no result rows (or ignores them). 0 ok, -1 error.
int          umb_store_exec (umb_store_t *self, const char *sql);

//  Steps a prepared statement to completion expecting no rows; returns 0 ok,
//  UMB_STORE_CONSTRAINT when a UNIQUE/FOREIGN KEY/CHECK constraint refused it,
//  -1 on other errors (logged). Resets the statement.
#define UMB_STORE_CONSTRAINT (-2)
int          umb_store_step_done (umb_store_t *self, sqlite3_stmt *stmt);

//  Binds parameters 1..n of stmt, one per character of format:
//    's'  const char *, bound without copying (it must outlive the step);
//         NULL binds SQL NULL
//    'i'  int64_t: pass an int64_t, never a plain int or a literal (cast it),
//         or the arguments after it are read wrongly
//    'b'  bool (passed as int): binds 1 or 0
//  format must name every parameter of stmt, no more, no fewer (asserted).
//  0 ok; -1 if SQLite refused a value (too big, out of memory): logged,
//  without the value, and the bindings are cleared.
int          umb_store_bind (umb_store_t *self, sqlite3_stmt *stmt, const char *format, ...);
int          umb_store_vbind (umb_store_t *self, sqlite3_stmt *stmt, const char *format,
                              va_list args);

//  umb_store_prepare, umb_store_bind and umb_store_step_done in one: runs sql
//  with the arguments of format. Returns what umb_store_step_done returns (0,
//  UMB_STORE_CONSTRAINT, -1), or -1 when sql or a value is refused (logged).
int          umb_store_run (umb_store_t *self, const char *sql, const char *format, ...);

//  Reads. umb_store_query is umb_store_prepare and umb_store_bind in one: the
//  statement for sql with the arguments of format bound, or NULL when sql or a
//  value is refused (logged). umb_store_get, umb_store_scalar and
//  umb_store_each run it; each takes NULL as the failed query and returns -1,
//  and each resets the statement, so it holds no snapshot open.
sqlite3_stmt *umb_store_query (umb_store_t *self, const char *sql, const char *format, ...);

//  Copies text column of the current row into dest (truncated to size,
//  always terminated); SQL NULL copies "".
void         umb_store_column (sqlite3_stmt *stmt, int column, char *dest, size_t size);

//  Copies the current row into dest.
typedef void (umb_store_row_fn) (sqlite3_stmt *stmt, void *dest);

//  Runs a single-row query and copies its row into dest with row (): 0,
//  UMB_STORE_NOT_FOUND when there is no row, -1 on error.
#define UMB_STORE_NOT_FOUND 1
int          umb_store_get (sqlite3_stmt *stmt, umb_store_row_fn *row, void *dest);

//  The first column of a single-row query (a COUNT(*), a version) as an
//  integer; -1 on error or when there is no row.
int64_t      umb_store_scalar (sqlite3_stmt *stmt);

//  Decodes the current row and hands it to the caller's callback fn with arg.
typedef void (umb_store_each_fn) (sqlite3_stmt *stmt, void *fn, void *arg);

//  Steps through every row of a query, calling row (stmt, fn, arg) on each.
//  0, or -1 on error.
int          umb_store_each (sqlite3_stmt *stmt, umb_store_each_fn *row, void *fn, void *arg);

//  A query whose rows are (name, count), as counts [i] for each names [i]
//  (NULL-terminated; 0 for a name no row has). 0, or -1 on error.
int          umb_store_counts (sqlite3_stmt *stmt, const char *const *names, int64_t *counts);

//  Transactions (BEGIN IMMEDIATE). Nesting is not allowed (asserted).
//  A commit that fails (a deferred constraint, I/O) has rolled back: -1,
//  and the store is out of the transaction either way.
int          umb_store_begin (umb_store_t *self);
int          umb_store_commit (umb_store_t *self);
void         umb_store_rollback (umb_store_t *self);

//  Rows changed by the last statement.
int64_t      umb_store_changes (umb_store_t *self);
sqlite3     *umb_store_handle (umb_store_t *self);

//  Fault injection for tests: the n-th next write statement (1 = next) run
//  through umb_store_step_done, umb_store_run or umb_store_exec returns -1 as if SQLite had
//  failed, without running; reads and BEGIN/COMMIT do not count. It fires
//  once; 0 disarms it.
void         umb_store_fail_after (umb_store_t *self, int n);

void         umb_store_test (bool verbose);

#endif
