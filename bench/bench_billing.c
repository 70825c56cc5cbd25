//  bench_billing - usage records ingested per second and billing.check calls per
//  second with their latency, each against a peer measured in the same run
//
//  Run it through bench/run (release build), or alone:
//
//      build-bench/bench/bench_billing [records [rounds]]
//
//  It starts the real auth and billing actors in this process (umb_runtime on a
//  temporary state directory, log level error, the built-in plans and prices,
//  default plan enterprise, a welcome credit no charge here can exhaust) and
//  calls billing as a service does, with the "computations" mesh identity, over
//  CURVE on tcp://127.0.0.1, for one workspace id billing has not seen before
//  (billing trusts services on workspace ids). In one process and one run:
//    a) ingest: billing.usage.record in batches of 1000, 100 and 1 record(s)
//       with unique ids, none paid by a run, so each one is also metered and
//       charged on the ledger in its batch's transaction (the realistic worst
//       case): `records` records per measurement (default 10000; one by one, a
//       tenth of them). The client encodes each batch inside the clock, as a
//       backends service would. Peer: the same rows inserted with the sqlite3
//       C API into a plain table of the same columns in a file beside
//       billing's, with the pragmas umb_store sets (WAL, synchronous=NORMAL),
//       one transaction per batch of the same size; umbra / raw is how much of
//       the bare database's rate survives the mesh, validation and the ledger.
//       The target is 20 000 records/s on the standard machine.
//    b) checks: billing.check (computation.create, in_use 1) from 1 client,
//       then from 4 threads with a client each; every call's latency is kept.
//       Peer: sys.ping round trips to the same billing service from the same
//       clients (the mesh alone), so check / ping is what the check costs.
//  Each measurement interleaves with its peer in slices, the order flipped
//  every slice (the machine may be shared: both then see the same load), over
//  several rounds (default 5); medians of rounds are reported. Billing keeps
//  every record, so each round ingests into a larger database than the one
//  before (the round lines say how many records it holds): compare runs of
//  the same records and rounds, and read the rounds for the trend. At the end the
//  workspace's available balance must be the welcome credit less the price of
//  every record sent. Nothing is asserted on time: the exit code is 0 unless
//  something failed to work (an answer other than 200, a record not accepted,
//  a ledger that does not add up).
//
//  The last lines are "key = value" pairs for bench/run to collect.
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include <czmq.h>
#include "umb_bench.h"
#include "umb_runtime.h"
#include "umb_client.h"
#include "umb_mp.h"
#include "umb_testkit.h"
#include "umb_auth.h"
#include "umb_billing.h"

//  Defaults measured on the standard machine (2 cores): about 16 s in all
#define S_DEFAULT_RECORDS   10000
#define S_DEFAULT_ROUNDS    5
#define S_MAX_ROUNDS        99
#define S_MAX_RECORDS       10000000
#define S_SLICES            10          //  slices of an ingest measurement
#define S_CHECK_SLICE       100         //  calls of one client in a slice
#define S_CLIENTS           4           //  concurrent clients of the second check measurement
#define S_WARMUP            200
#define S_TIMEOUT_MS        30000
#define S_TARGET            20000.0     //  records/s
#define S_WORKSPACE         "ws_0123456789abcdef"
#define S_WELCOME           1000000000000000LL
//  A record's price at the built-in prices for "none" (20000 µcr per vCPU-hour,
//  5000 per GiB-hour), 2 vCPUs and 1024 MiB for 60 s:
//  ceil (2·60·20000 / 3600) + ceil (1024·60·5000 / (1024·3600)) = 667 + 84
#define S_RECORD_PRICE      751

static const int s_batches [] = { 1000, 100, 1 };
#define S_BATCHES ((int) (sizeof s_batches / sizeof s_batches [0]))

static const char s_raw_schema [] =
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
    "  month        TEXT NOT NULL)";

typedef struct _s_pool_t s_pool_t;

typedef struct {
    s_pool_t     *pool;
    umb_client_t *client;
    int           index;
    bool          failed;
} s_worker_t;

//  Client threads that run one slice of calls each, all at once: main sets
//  the slice, then meets them at start, and again at end when all are done
struct _s_pool_t {
    pthread_barrier_t start, end;
    pthread_t         threads [S_CLIENTS];
    s_worker_t        workers [S_CLIENTS];
    int               running;
    bool              stop;
    const char       *op;
    const void       *body;
    size_t            size;
    int               count;            //  calls per client
    double           *latencies;        //  client i writes count of them from i * count
};

typedef struct {
    char          *dir;
    umb_runtime_t *runtime;
    zactor_t      *auth, *billing;
    zcert_t       *identity;
    char          *endpoint, *key;      //  billing's
    umb_client_t  *client;
    umb_w_t       *w;
    sqlite3       *db;
    sqlite3_stmt  *insert;
    int64_t        recorded;            //  records billing accepted
    s_pool_t      *pool;
} s_bench_t;

typedef struct {
    double rate;                        //  per second
    double p50, p99;                    //  milliseconds
} s_figures_t;

//  Prints what came instead of the expected answer
static void
s_unexpected (umb_reply_t *reply, const char *op)
{
    fprintf (stderr, "bench_billing: %s answered %d %s: %s\n", op, umb_reply_status (reply),
             umb_reply_code (reply)? umb_reply_code (reply): "",
             umb_reply_error (reply)? umb_reply_error (reply): "(a 2xx answer not as expected)");
}


//  ---------------------------------------------------------------- ingest

//  Sends count records in batches of batch, numbered from first: the seconds
//  it took, or -1 when billing did not accept them all
static double
s_umbra_slice (s_bench_t *self, int round, int batch, int first, int count)
{
    umb_w_t *w = self->w;
    char id [64];
    double started = umb_bench_now ();
    for (int done = 0; done < count; done += batch) {
        int64_t at = (int64_t) time (NULL);
        umb_w_reset (w);
        umb_w_map_begin (w);
        umb_w_key (w, "records");
        umb_w_array_begin (w);
        for (int i = 0; i < batch; i++) {
            snprintf (id, sizeof id, "bench:%d:%d:%d", round, batch, first + done + i);
            umb_w_map_begin (w);
            umb_w_kv_str (w, "id", id);
            umb_w_kv_str (w, "workspace_id", S_WORKSPACE);
            umb_w_kv_str (w, "kind", "cvm");
            umb_w_kv_str (w, "tee", "none");
            umb_w_kv_int (w, "vcpus", 2);
            umb_w_kv_int (w, "memory_mb", 1024);
            umb_w_kv_int (w, "seconds", 60);
            umb_w_kv_int (w, "at", at);
            umb_w_kv_bool (w, "paid", false);
            umb_w_map_end (w);
        }
        umb_w_array_end (w);
        umb_w_map_end (w);
        umb_reply_t *reply = umb_client_callw (self->client, "billing.usage.record", NULL, w,
                                               S_TIMEOUT_MS, NULL);
        int64_t accepted = umb_reply_status (reply) == 200
            ? umb_msg_int (umb_reply_body (reply), "accepted", 0, INT64_MAX, -1, true): -1;
        if (accepted != batch) {
            s_unexpected (reply, "billing.usage.record");
            umb_reply_destroy (&reply);
            return -1;
        }
        umb_reply_destroy (&reply);
        self->recorded += batch;
    }
    return umb_bench_now () - started;
}

static int
s_raw_exec (sqlite3 *db, const char *sql)
{
    char *error = NULL;
    if (sqlite3_exec (db, sql, NULL, NULL, &error) == SQLITE_OK)
        return 0;
    fprintf (stderr, "bench_billing: raw SQLite: %s: %s\n", sql, error? error: "failed");
    sqlite3_free (error);
    return -1;
}

//  The peer of s_umbra_slice: the same rows, in transactions of batch rows
static double
s_raw_slice (s_bench_t *self, int round, int batch, int first, int count)
{
    sqlite3_stmt *insert = self->insert;
    char id [64], month [8];
    double started = umb_bench_now ();
    for (int done = 0; done < count; done += batch) {
        time_t at = time (NULL);
        struct tm tm;
        gmtime_r (&at, &tm);
        strftime (month, sizeof month, "%Y-%m", &tm);
        if (s_raw_exec (self->db, "BEGIN IMMEDIATE"))
            return -1;
        for (int i = 0; i < batch; i++) {
            snprintf (id, sizeof id, "bench:%d:%d:%d", round, batch, first + done + i);
            sqlite3_bind_text (insert, 1, id, -1, SQLITE_STATIC);
            sqlite3_bind_text (insert, 2, S_WORKSPACE, -1, SQLITE_STATIC);
            sqlite3_bind_text (insert, 3, "cvm", -1, SQLITE_STATIC);
            sqlite3_bind_text (insert, 4, "none", -1, SQLITE_STATIC);
            sqlite3_bind_int64 (insert, 5, 2);
            sqlite3_bind_int64 (insert, 6, 1024);
            sqlite3_bind_int64 (insert, 7, 60);
            sqlite3_bind_int64 (insert, 8, 0);
            sqlite3_bind_int64 (insert, 9, (sqlite3_int64) at);
            sqlite3_bind_text (insert, 10, month, -1, SQLITE_STATIC);
            int rc = sqlite3_step (insert);
            sqlite3_reset (insert);
            if (rc != SQLITE_DONE) {
                fprintf (stderr, "bench_billing: raw SQLite insert: %s\n",
                         sqlite3_errmsg (self->db));
                s_raw_exec (self->db, "ROLLBACK");
                return -1;
            }
        }
        if (s_raw_exec (self->db, "COMMIT"))
            return -1;
    }
    return umb_bench_now () - started;
}

//  One measurement of a batch size: count records each way, interleaved in
//  S_SLICES slices; rates in records/s. 0 ok, -1 on failure.
static int
s_ingest (s_bench_t *self, int round, int batch, int count, double *umbra_rate,
          double *raw_rate)
{
    int slice = count / S_SLICES / batch * batch;
    if (slice < batch)
        slice = batch;
    double umbra_time = 0, raw_time = 0;
    int done = 0;
    for (int index = 0; done < count; index++) {
        int size = count - done < slice? count - done: slice;
        bool umbra_first = index % 2 == 0;
        for (int turn = 0; turn < 2; turn++) {
            bool umbra_turn = (turn == 0) == umbra_first;
            double seconds = umbra_turn? s_umbra_slice (self, round, batch, done, size)
                                       : s_raw_slice (self, round, batch, done, size);
            if (seconds < 0)
                return -1;
            if (umbra_turn)
                umbra_time += seconds;
            else
                raw_time += seconds;
        }
        done += size;
    }
    *umbra_rate = count / umbra_time;
    *raw_rate = count / raw_time;
    return 0;
}


//  ---------------------------------------------------------------- checks

//  count synchronous calls of op, each one's latency (seconds) in latencies;
//  0, or -1 at the first answer other than 200
static int
s_calls (umb_client_t *client, const char *op, const void *body, size_t size, int count,
         double *latencies)
{
    for (int i = 0; i < count; i++) {
        double started = umb_bench_now ();
        umb_reply_t *reply = umb_client_call (client, op, NULL, body, size, S_TIMEOUT_MS, NULL);
        latencies [i] = umb_bench_now () - started;
        if (umb_reply_status (reply) != 200) {
            s_unexpected (reply, op);
            umb_reply_destroy (&reply);
            return -1;
        }
        umb_reply_destroy (&reply);
    }
    return 0;
}

static void *
s_worker_run (void *args)
{
    s_worker_t *worker = args;
    s_pool_t *pool = worker->pool;
    while (true) {
        pthread_barrier_wait (&pool->start);
        if (pool->stop)
            break;
        if (!worker->failed
        &&  s_calls (worker->client, pool->op, pool->body, pool->size, pool->count,
                     pool->latencies + worker->index * pool->count))
            worker->failed = true;
        pthread_barrier_wait (&pool->end);
    }
    return NULL;
}

static s_pool_t *
s_pool_new (s_bench_t *bench)
{
    s_pool_t *self = calloc (1, sizeof (s_pool_t));
    assert (self);
    for (int i = 0; i < S_CLIENTS; i++) {
        self->workers [i] = (s_worker_t) { self, umb_client_new (bench->endpoint, bench->key,
                                                                 bench->identity), i, false };
        if (!self->workers [i].client) {
            fprintf (stderr, "bench_billing: cannot make a client of billing\n");
            while (i >= 0)
                umb_client_destroy (&self->workers [i--].client);
            free (self);
            return NULL;
        }
        umb_client_set_attempts (self->workers [i].client, 1);
    }
    pthread_barrier_init (&self->start, NULL, S_CLIENTS + 1);
    pthread_barrier_init (&self->end, NULL, S_CLIENTS + 1);
    for (int i = 0; i < S_CLIENTS; i++)
        assert (pthread_create (&self->threads [i], NULL, s_worker_run, &self->workers [i]) == 0);
    self->running = S_CLIENTS;
    return self;
}

static void
s_pool_destroy (s_pool_t **self_p)
{
    s_pool_t *self = *self_p;
    if (!self)
        return;
    self->stop = true;
    pthread_barrier_wait (&self->start);
    for (int i = 0; i < self->running; i++)
        pthread_join (self->threads [i], NULL);
    pthread_barrier_destroy (&self->start);
    pthread_barrier_destroy (&self->end);
    for (int i = 0; i < S_CLIENTS; i++)
        umb_client_destroy (&self->workers [i].client);
    free (self);
    *self_p = NULL;
}

//  count calls of op from each of clients clients at once (1: this thread's
//  client): the wall-clock seconds, or -1 on failure
static double
s_call_slice (s_bench_t *self, int clients, const char *op, const void *body, size_t size,
              int count, double *latencies)
{
    double started = umb_bench_now ();
    if (clients == 1)
        return s_calls (self->client, op, body, size, count, latencies)? -1: umb_bench_now () - started;
    s_pool_t *pool = self->pool;
    pool->op = op;
    pool->body = body;
    pool->size = size;
    pool->count = count;
    pool->latencies = latencies;
    pthread_barrier_wait (&pool->start);
    pthread_barrier_wait (&pool->end);
    double seconds = umb_bench_now () - started;
    for (int i = 0; i < S_CLIENTS; i++)
        if (pool->workers [i].failed)
            return -1;
    return seconds;
}

static void
s_figures (double *latencies, int count, double seconds, s_figures_t *figures)
{
    umb_bench_sort (latencies, (size_t) count);
    figures->rate = count / seconds;
    figures->p50 = 1000 * umb_bench_percentile (latencies, count, 500);
    figures->p99 = 1000 * umb_bench_percentile (latencies, count, 990);
}

//  One measurement of billing.check against sys.ping from clients clients:
//  calls of each per client, interleaved in slices. 0 ok, -1 on failure.
static int
s_checks (s_bench_t *self, int clients, int calls, const void *body, size_t size,
          s_figures_t *check, s_figures_t *ping)
{
    int total = calls * clients;
    double *check_latencies = calloc ((size_t) total, sizeof (double));
    double *ping_latencies = calloc ((size_t) total, sizeof (double));
    assert (check_latencies && ping_latencies);
    double check_time = 0, ping_time = 0;
    int rc = 0, done = 0;
    for (int index = 0; done < calls && rc == 0; index++) {
        int count = calls - done < S_CHECK_SLICE? calls - done: S_CHECK_SLICE;
        bool check_first = index % 2 == 0;
        for (int turn = 0; turn < 2 && rc == 0; turn++) {
            bool check_turn = (turn == 0) == check_first;
            double seconds = check_turn
                ? s_call_slice (self, clients, "billing.check", body, size, count,
                                check_latencies + done * clients)
                : s_call_slice (self, clients, "sys.ping", NULL, 0, count,
                                ping_latencies + done * clients);
            if (seconds < 0)
                rc = -1;
            else
            if (check_turn)
                check_time += seconds;
            else
                ping_time += seconds;
        }
        done += count;
    }
    if (rc == 0) {
        s_figures (check_latencies, total, check_time, check);
        s_figures (ping_latencies, total, ping_time, ping);
    }
    free (check_latencies);
    free (ping_latencies);
    return rc;
}

//  The workspace's available balance, as billing.check answers it; -1 on failure
static int
s_available (s_bench_t *self, const void *body, size_t size, int64_t *available)
{
    umb_reply_t *reply = umb_client_call (self->client, "billing.check", NULL, body, size,
                                          S_TIMEOUT_MS, NULL);
    umb_msg_t *answer = umb_reply_body (reply);
    *available = umb_msg_int (answer, "available", INT64_MIN, INT64_MAX, 0, true);
    int rc = umb_reply_status (reply) == 200 && !umb_msg_failed (answer)? 0: -1;
    if (rc)
        s_unexpected (reply, "billing.check");
    umb_reply_destroy (&reply);
    return rc;
}


//  ---------------------------------------------------------------- set-up

//  Starts a service actor and points "<name>.endpoint" at where it bound
static zactor_t *
s_actor_start (s_bench_t *self, zactor_fn *actor, const char *name, char **endpoint_p)
{
    zactor_t *service = zactor_new (actor, self->runtime);
    assert (service);
    zstr_send (service, "ENDPOINT");
    char *endpoint = zstr_recv (service);
    if (!endpoint || !*endpoint) {
        zstr_send (service, "REASON");
        char *reason = zstr_recv (service);
        fprintf (stderr, "bench_billing: the %s service did not start: %s\n", name,
                 reason? reason: "no reason");
        zstr_free (&reason);
        zstr_free (&endpoint);
        return service;
    }
    char *setting = zsys_sprintf ("%s.endpoint", name);
    char *error = NULL;
    int rc = umb_config_set (umb_runtime_config (self->runtime), setting, endpoint, &error);
    assert (rc == 0);
    zstr_free (&setting);
    *endpoint_p = endpoint;
    return service;
}

static int
s_start (s_bench_t *self)
{
    char dir [] = "/tmp/umb-bench-billing-XXXXXX";
    if (!mkdtemp (dir)) {
        fprintf (stderr, "bench_billing: cannot make a temporary directory\n");
        return -1;
    }
    self->dir = strdup (dir);
    char welcome [32];
    snprintf (welcome, sizeof welcome, "%lld", S_WELCOME);
    const char *settings [] = {
        "state_dir", dir, "log.level", "error",
        //  An administrator of its own, or auth makes one and prints its password
        "admin.username", "root", "admin.password", "bench-root-password",
        "auth.endpoint", "tcp://127.0.0.1:*", "auth.pub_endpoint", "tcp://127.0.0.1:*",
        "billing.endpoint", "tcp://127.0.0.1:*", "billing.pub_endpoint", "tcp://127.0.0.1:*",
        "billing.default_plan", "enterprise", "billing.welcome_credit", welcome, NULL
    };
    umb_config_t *config = umb_config_new ();
    char *error = NULL;
    for (const char **setting = settings; *setting; setting += 2)
        if (umb_config_set (config, setting [0], setting [1], &error)) {
            fprintf (stderr, "bench_billing: %s: %s\n", setting [0], error);
            free (error);
            umb_config_destroy (&config);
            return -1;
        }
    self->runtime = umb_runtime_new (&config, &error);
    if (!self->runtime) {
        fprintf (stderr, "bench_billing: %s\n", error? error: "cannot make the runtime");
        free (error);
        return -1;
    }
    self->identity = umb_runtime_identity (self->runtime, "computations");
    char *auth_endpoint = NULL;
    self->auth = s_actor_start (self, umb_auth_actor, "auth", &auth_endpoint);
    if (!auth_endpoint || !self->identity)
        return -1;
    zstr_free (&auth_endpoint);
    self->billing = s_actor_start (self, umb_billing_actor, "billing", &self->endpoint);
    if (!self->endpoint)
        return -1;
    self->key = umb_runtime_public_key (self->runtime, "billing");
    self->client = self->key? umb_client_new (self->endpoint, self->key, self->identity): NULL;
    if (!self->client) {
        fprintf (stderr, "bench_billing: cannot make a client of billing\n");
        return -1;
    }
    umb_client_set_attempts (self->client, 1);
    self->w = umb_w_new ();

    char *path = zsys_sprintf ("%s/raw.db", dir);
    int rc = sqlite3_open (path, &self->db);
    zstr_free (&path);
    if (rc != SQLITE_OK
    ||  s_raw_exec (self->db, "PRAGMA journal_mode = WAL")
    ||  s_raw_exec (self->db, "PRAGMA synchronous = NORMAL")
    ||  s_raw_exec (self->db, s_raw_schema)
    ||  sqlite3_prepare_v2 (self->db,
            "INSERT INTO usage (id, workspace_id, kind, tee, vcpus, memory_mb, seconds, paid, at,"
            " month) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &self->insert, NULL) != SQLITE_OK) {
        fprintf (stderr, "bench_billing: cannot set up the raw SQLite peer: %s\n",
                 self->db? sqlite3_errmsg (self->db): "out of memory");
        return -1;
    }
    self->pool = s_pool_new (self);
    return self->pool? 0: -1;
}

static void
s_stop (s_bench_t *self)
{
    s_pool_destroy (&self->pool);
    sqlite3_finalize (self->insert);
    sqlite3_close (self->db);
    umb_w_destroy (&self->w);
    umb_client_destroy (&self->client);
    zactor_destroy (&self->billing);
    zactor_destroy (&self->auth);
    zcert_destroy (&self->identity);
    umb_runtime_destroy (&self->runtime);
    zstr_free (&self->endpoint);
    zstr_free (&self->key);
    if (self->dir)
        umb_testkit_remove_dir (self->dir);
    free (self->dir);
}


//  ---------------------------------------------------------------- main

static int
s_usage (void)
{
    fprintf (stderr, "usage: bench_billing [records [rounds]]\n"
                     "  records  usage records per ingest measurement, batches of 1000 and 100\n"
                     "           (default %d; one by one: a tenth; billing.check: half, of each\n"
                     "           kind, from 1 client and from %d)\n"
                     "  rounds   rounds of interleaved measurements, 1..%d (default %d)\n",
             S_DEFAULT_RECORDS, S_CLIENTS, S_MAX_ROUNDS, S_DEFAULT_ROUNDS);
    return 2;
}

int
main (int argc, char *argv [])
{
    int records = S_DEFAULT_RECORDS;
    int rounds = S_DEFAULT_ROUNDS;
    if (argc > 3)
        return s_usage ();
    if (argc > 1) {
        char *end;
        long value = strtol (argv [1], &end, 10);
        if (*end || value < 10 || value > S_MAX_RECORDS)
            return s_usage ();
        records = (int) value;
    }
    if (argc > 2) {
        char *end;
        long value = strtol (argv [2], &end, 10);
        if (*end || value < 1 || value > S_MAX_ROUNDS)
            return s_usage ();
        rounds = (int) value;
    }
    zsys_init ();
    s_bench_t bench = { NULL };
    int rc = 1;
    if (s_start (&bench))
        goto done;

    //  Each batch size sends a whole number of batches
    int counts [S_BATCHES];
    for (int b = 0; b < S_BATCHES; b++) {
        int count = s_batches [b] == 1? records / 10: records;
        counts [b] = count < s_batches [b]? s_batches [b]: count / s_batches [b] * s_batches [b];
    }
    int calls = records / 2;
    int pool_calls = calls / S_CLIENTS > 0? calls / S_CLIENTS: 1;
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace_id", S_WORKSPACE);
    umb_w_kv_str (w, "action", "computation.create");
    umb_w_kv_int (w, "quantity", 1);
    umb_w_kv_int (w, "in_use", 1);
    umb_w_map_end (w);
    size_t check_size;
    const void *check_body = umb_w_data (w, &check_size);

    //  Warm-up, not reported: billing meets the workspace (and grants the
    //  welcome credit), both databases and every client start up
    int64_t welcome;
    double umbra_rate, raw_rate;
    s_figures_t check, ping;
    if (s_available (&bench, check_body, check_size, &welcome)
    ||  s_ingest (&bench, 0, 100, 2 * S_WARMUP, &umbra_rate, &raw_rate)
    ||  s_checks (&bench, 1, S_WARMUP, check_body, check_size, &check, &ping)
    ||  s_checks (&bench, S_CLIENTS, S_WARMUP / S_CLIENTS, check_body, check_size, &check,
                  &ping)) {
        fprintf (stderr, "bench_billing: the warm-up failed\n");
        goto free_body;
    }

    printf ("bench_billing: billing.usage.record, %d records per measurement (%d one by one), "
            "and billing.check, %d calls from 1 client and %d from %d; %d rounds, "
            "CURVE over tcp://127.0.0.1\n", counts [0], counts [S_BATCHES - 1], calls,
            pool_calls * S_CLIENTS, S_CLIENTS, rounds);
    double umbra [S_BATCHES][S_MAX_ROUNDS], raw [S_BATCHES][S_MAX_ROUNDS];
    double ratio [S_BATCHES][S_MAX_ROUNDS];
    //  [0]: 1 client, [1]: S_CLIENTS clients
    double check_rate [2][S_MAX_ROUNDS], check_p50 [2][S_MAX_ROUNDS], check_p99 [2][S_MAX_ROUNDS];
    double ping_rate [2][S_MAX_ROUNDS], ping_p50 [2][S_MAX_ROUNDS], ping_p99 [2][S_MAX_ROUNDS];
    double check_ratio [2][S_MAX_ROUNDS];
    for (int round = 0; round < rounds; round++) {
        printf ("round %d (billing holds %lld records)\n  records/s:", round + 1,
                (long long) bench.recorded);
        for (int b = 0; b < S_BATCHES; b++) {
            if (s_ingest (&bench, round + 1, s_batches [b], counts [b], &umbra [b][round],
                          &raw [b][round]))
                goto free_body;
            ratio [b][round] = umbra [b][round] / raw [b][round];
            printf ("  %d/call %.0f (raw %.0f, %.3f)", s_batches [b], umbra [b][round],
                    raw [b][round], ratio [b][round]);
            fflush (stdout);
        }
        printf ("\n  checks/s: ");
        for (int mode = 0; mode < 2; mode++) {
            int clients = mode? S_CLIENTS: 1;
            if (s_checks (&bench, clients, mode? pool_calls: calls, check_body, check_size,
                          &check, &ping))
                goto free_body;
            check_rate [mode][round] = check.rate;
            check_p50 [mode][round] = check.p50;
            check_p99 [mode][round] = check.p99;
            ping_rate [mode][round] = ping.rate;
            ping_p50 [mode][round] = ping.p50;
            ping_p99 [mode][round] = ping.p99;
            check_ratio [mode][round] = check.rate / ping.rate;
            printf ("  %d client%s %.0f, p99 %.2f ms (ping %.0f, %.3f)", clients,
                    clients > 1? "s": "", check.rate, check.p99, ping.rate,
                    check_ratio [mode][round]);
            fflush (stdout);
        }
        printf ("\n");
    }

    //  Every record was charged once, and nothing else was
    int64_t available;
    if (s_available (&bench, check_body, check_size, &available))
        goto free_body;
    if (welcome != S_WELCOME || available != welcome - bench.recorded * S_RECORD_PRICE) {
        fprintf (stderr, "bench_billing: the ledger does not add up: %lld records at %d µcr "
                 "from %lld should leave %lld available, billing says %lld\n",
                 (long long) bench.recorded, S_RECORD_PRICE, (long long) welcome,
                 (long long) (welcome - bench.recorded * S_RECORD_PRICE),
                 (long long) available);
        goto free_body;
    }

    printf ("\n");
    printf ("usage records ingested (medians of %d rounds; each record also charged on the ledger)\n",
            rounds);
    printf ("  %-14s %14s %16s %10s %14s\n", "records/call", "umbra rec/s", "raw SQLite rows/s",
            "umbra/raw", "umbra/20000");
    double medians [S_BATCHES][3];
    for (int b = 0; b < S_BATCHES; b++) {
        medians [b][0] = umb_bench_median (umbra [b], rounds);
        medians [b][1] = umb_bench_median (raw [b], rounds);
        medians [b][2] = umb_bench_median (ratio [b], rounds);
        printf ("  %-14d %14.0f %16.0f %10.3f %14.2f%s\n", s_batches [b], medians [b][0],
                medians [b][1], medians [b][2], medians [b][0] / S_TARGET,
                b == 0? (medians [b][0] >= S_TARGET? "   (target >= 1: met)"
                                                   : "   (target >= 1: NOT met)"): "");
    }
    printf ("  ledger: %lld records charged %d µcr each; the available balance adds up\n",
            (long long) bench.recorded, S_RECORD_PRICE);
    printf ("billing.check computation.create against sys.ping on the same service (medians)\n");
    printf ("  %-8s %12s %8s %8s %12s %8s %8s %11s\n", "clients", "checks/s", "p50 ms",
            "p99 ms", "pings/s", "p50 ms", "p99 ms", "check/ping");
    double check_medians [2][7];
    for (int mode = 0; mode < 2; mode++) {
        double *row = check_medians [mode];
        row [0] = umb_bench_median (check_rate [mode], rounds);
        row [1] = umb_bench_median (check_p50 [mode], rounds);
        row [2] = umb_bench_median (check_p99 [mode], rounds);
        row [3] = umb_bench_median (ping_rate [mode], rounds);
        row [4] = umb_bench_median (ping_p50 [mode], rounds);
        row [5] = umb_bench_median (ping_p99 [mode], rounds);
        row [6] = umb_bench_median (check_ratio [mode], rounds);
        printf ("  %-8d %12.0f %8.3f %8.3f %12.0f %8.3f %8.3f %11.3f\n", mode? S_CLIENTS: 1,
                row [0], row [1], row [2], row [3], row [4], row [5], row [6]);
    }
    printf ("\n");
    for (int b = 0; b < S_BATCHES; b++) {
        printf ("billing.ingest_%d_per_s = %.0f\n", s_batches [b], medians [b][0]);
        printf ("billing.raw_%d_per_s = %.0f\n", s_batches [b], medians [b][1]);
        printf ("billing.ingest_%d_over_raw = %.3f\n", s_batches [b], medians [b][2]);
        printf ("billing.ingest_%d_over_target = %.3f\n", s_batches [b], medians [b][0] / S_TARGET);
    }
    for (int mode = 0; mode < 2; mode++) {
        double *row = check_medians [mode];
        int clients = mode? S_CLIENTS: 1;
        printf ("billing.check_%d_per_s = %.0f\n", clients, row [0]);
        printf ("billing.check_%d_p50_ms = %.3f\n", clients, row [1]);
        printf ("billing.check_%d_p99_ms = %.3f\n", clients, row [2]);
        printf ("billing.ping_%d_per_s = %.0f\n", clients, row [3]);
        printf ("billing.ping_%d_p50_ms = %.3f\n", clients, row [4]);
        printf ("billing.ping_%d_p99_ms = %.3f\n", clients, row [5]);
        printf ("billing.check_%d_over_ping = %.3f\n", clients, row [6]);
    }
    printf ("billing.records_charged = %lld\n", (long long) bench.recorded);
    rc = 0;

free_body:
    umb_w_destroy (&w);
done:
    s_stop (&bench);
    return rc;
}
