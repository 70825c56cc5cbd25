//  umb_auth_hasher - Argon2id password hashing and verification in worker actors
#include <assert.h>
#include <stdatomic.h>
#include <string.h>
#include "umb_auth_hasher.h"

#define S_PASSWORD_MAX   1024
#define S_QUEUE_PER_WORKER 16     //  jobs per worker before callers get 503: ~1.6 s of
                                  //  interactive hashing, well inside a 5 s deadline

//  One job, in guarded memory: it holds passwords. The loop thread owns it
//  except between sending it to a worker and reading it back.
typedef struct {
    void  *context;
    size_t worker;
    bool   verify;                              //  check password against stored
    bool   use_dummy;                           //  stored is the dummy hash
    bool   make_hash;                           //  hash new_password
    bool   verified;
    bool   failed;
    bool   cancelled;
    char   stored [crypto_pwhash_STRBYTES];
    char   password [S_PASSWORD_MAX + 1];
    char   new_password [S_PASSWORD_MAX + 1];
    char   hash [crypto_pwhash_STRBYTES];       //  result, "" if none
} s_job_t;

//  What every worker reads; written only before the workers start, except
//  stopping.
typedef struct {
    unsigned long long opslimit;
    size_t             memlimit;
    char               dummy [crypto_pwhash_STRBYTES];
    atomic_bool        stopping;
} s_shared_t;

struct _umb_auth_hasher_t {
    zloop_t            *loop;           //  borrowed
    umb_log_t          *log;            //  borrowed
    umb_auth_hasher_fn *done;
    void               *arg;
    s_shared_t         *shared;
    zactor_t          **workers;
    size_t             *loads;          //  jobs in flight per worker
    size_t              worker_count;
    zlistx_t           *jobs;           //  every job in flight (s_job_t *)
};

//  ---------------------------------------------------------------- worker

static void
s_job_run (s_shared_t *shared, s_job_t *job)
{
    bool go_on = true;
    if (job->verify) {
        const char *stored = job->use_dummy ? shared->dummy : job->stored;
        job->verified = crypto_pwhash_str_verify (stored, job->password,
                                                  strlen (job->password)) == 0
                     && !job->use_dummy;
        go_on = job->verified;
    }
    if (go_on && job->make_hash) {
        if (crypto_pwhash_str (job->hash, job->new_password, strlen (job->new_password),
                               shared->opslimit, shared->memlimit) != 0)
            job->failed = true;
    }
    else
    if (job->verified
    &&  crypto_pwhash_str_needs_rehash (job->stored, shared->opslimit, shared->memlimit) != 0) {
        //  Upgrade hashes made with older limits while the password is at hand
        if (crypto_pwhash_str (job->hash, job->password, strlen (job->password),
                               shared->opslimit, shared->memlimit) != 0)
            job->hash [0] = 0;
    }
    //  Nobody needs the passwords any more
    sodium_memzero (job->password, sizeof job->password);
    sodium_memzero (job->new_password, sizeof job->new_password);
}

static void
s_worker (zsock_t *pipe, void *args)
{
    s_shared_t *shared = args;
    zsock_signal (pipe, 0);
    while (true) {
        char *command = NULL;
        void *pointer = NULL;
        if (zsock_recv (pipe, "sp", &command, &pointer) == -1)
            break;                  //  interrupted
        bool term = !command || streq (command, "$TERM");
        if (!term && streq (command, "JOB") && pointer) {
            s_job_t *job = pointer;
            if (atomic_load (&shared->stopping))
                job->cancelled = true;
            else
                s_job_run (shared, job);
            zsock_send (pipe, "sp", "DONE", job);
        }
        zstr_free (&command);
        if (term)
            break;
    }
}

//  ---------------------------------------------------------------- loop side

static void
s_job_destroy (s_job_t **job_p)
{
    if (*job_p) {
        sodium_free (*job_p);           //  wipes it
        *job_p = NULL;
    }
}

static void
s_report (umb_auth_hasher_t *self, s_job_t *job)
{
    umb_auth_hasher_result_t result = {
        .context = job->context, .cancelled = job->cancelled, .failed = job->failed,
        .verified = job->verified, .hash = job->hash [0] ? job->hash : NULL
    };
    self->done (self->arg, &result);
}

static int
s_on_done (zloop_t *loop, zsock_t *sock, void *arg)
{
    umb_auth_hasher_t *self = arg;
    char *command = NULL;
    void *pointer = NULL;
    if (zsock_recv (sock, "sp", &command, &pointer) == -1)
        return 0;
    bool done = command && streq (command, "DONE") && pointer;
    zstr_free (&command);
    if (!done)
        return 0;
    //  Only pointers we handed out come back, but check: the job list is the truth
    void *handle = zlistx_find (self->jobs, pointer);
    if (!handle)
        return 0;
    zlistx_delete (self->jobs, handle);
    s_job_t *job = pointer;
    assert (self->loads [job->worker] > 0);
    self->loads [job->worker]--;
    s_report (self, job);
    s_job_destroy (&job);
    return 0;
}

//  Makes an Argon2id string with the current limits, a random salt and a
//  random digest: verifying against it costs what a real one costs and fails.
static int
s_dummy_make (s_shared_t *shared)
{
    unsigned char salt [crypto_pwhash_SALTBYTES];
    unsigned char digest [32];
    randombytes_buf (salt, sizeof salt);
    randombytes_buf (digest, sizeof digest);
    char salt_b64 [sodium_base64_ENCODED_LEN (sizeof salt, sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
    char digest_b64 [sodium_base64_ENCODED_LEN (sizeof digest, sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
    sodium_bin2base64 (salt_b64, sizeof salt_b64, salt, sizeof salt,
                       sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    sodium_bin2base64 (digest_b64, sizeof digest_b64, digest, sizeof digest,
                       sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    snprintf (shared->dummy, sizeof shared->dummy, "$argon2id$v=19$m=%zu,t=%llu,p=1$%s$%s",
              shared->memlimit / 1024, shared->opslimit, salt_b64, digest_b64);
    //  libsodium parses it exactly as a verification would: if it disagrees
    //  with our format, a real hash of a random password does the job
    if (crypto_pwhash_str_needs_rehash (shared->dummy, shared->opslimit, shared->memlimit) == 0)
        return 0;
    char password [33];
    randombytes_buf (digest, sizeof digest);
    sodium_bin2hex (password, sizeof password, digest, 16);
    int rc = crypto_pwhash_str (shared->dummy, password, strlen (password), shared->opslimit,
                                shared->memlimit);
    sodium_memzero (password, sizeof password);
    return rc;
}

umb_auth_hasher_t *
umb_auth_hasher_new (zloop_t *loop, size_t workers, unsigned long long opslimit, size_t memlimit,
                     umb_auth_hasher_fn *done, void *arg, umb_log_t *log)
{
    assert (loop && done);
    assert (workers >= 1);
    if (sodium_init () < 0)
        return NULL;
    umb_auth_hasher_t *self = calloc (1, sizeof (umb_auth_hasher_t));
    assert (self);
    self->loop = loop;
    self->log = log;
    self->done = done;
    self->arg = arg;
    self->shared = calloc (1, sizeof (s_shared_t));
    assert (self->shared);
    self->shared->opslimit = opslimit;
    self->shared->memlimit = memlimit;
    atomic_init (&self->shared->stopping, false);
    self->jobs = zlistx_new ();
    self->workers = calloc (workers, sizeof (zactor_t *));
    self->loads = calloc (workers, sizeof (size_t));
    assert (self->jobs && self->workers && self->loads);
    if (s_dummy_make (self->shared)) {
        if (log)
            umb_log_error (log, "cannot make the dummy password hash (out of memory?)");
        umb_auth_hasher_destroy (&self);
        return NULL;
    }
    for (size_t index = 0; index < workers; index++) {
        self->workers [index] = zactor_new (s_worker, self->shared);
        assert (self->workers [index]);
        self->worker_count++;
        zloop_reader (loop, zactor_sock (self->workers [index]), s_on_done, self);
    }
    return self;
}

void
umb_auth_hasher_destroy (umb_auth_hasher_t **self_p)
{
    assert (self_p);
    umb_auth_hasher_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->shared->stopping, true);
    for (size_t index = 0; index < self->worker_count; index++) {
        zloop_reader_end (self->loop, zactor_sock (self->workers [index]));
        zactor_destroy (&self->workers [index]);
    }
    //  The workers are gone: whatever they did not hand back is ours now
    s_job_t *job = zlistx_first (self->jobs);
    while (job) {
        job->cancelled = true;
        job->hash [0] = 0;
        s_report (self, job);
        s_job_destroy (&job);
        job = zlistx_next (self->jobs);
    }
    zlistx_destroy (&self->jobs);
    free (self->workers);
    free (self->loads);
    sodium_memzero (self->shared->dummy, sizeof self->shared->dummy);
    free (self->shared);
    free (self);
    *self_p = NULL;
}

static bool
s_copy (char *dest, size_t size, const char *text)
{
    size_t length = strlen (text);
    if (length >= size)
        return false;
    memcpy (dest, text, length + 1);
    return true;
}

int
umb_auth_hasher_submit (umb_auth_hasher_t *self, const char *stored_hash, const char *password,
                        const char *new_password, void *context)
{
    assert (self);
    assert (password || new_password);
    size_t worker = 0;
    for (size_t index = 1; index < self->worker_count; index++)
        if (self->loads [index] < self->loads [worker])
            worker = index;
    if (self->loads [worker] >= S_QUEUE_PER_WORKER)
        return -1;
    s_job_t *job = sodium_malloc (sizeof (s_job_t));
    if (!job)
        return -1;
    memset (job, 0, sizeof *job);
    job->context = context;
    job->worker = worker;
    job->verify = password != NULL;
    job->use_dummy = password && !stored_hash;
    job->make_hash = new_password != NULL;
    if ((stored_hash && !s_copy (job->stored, sizeof job->stored, stored_hash))
    ||  (password && !s_copy (job->password, sizeof job->password, password))
    ||  (new_password && !s_copy (job->new_password, sizeof job->new_password, new_password))) {
        s_job_destroy (&job);
        return -1;
    }
    zlistx_add_end (self->jobs, job);
    self->loads [worker]++;
    zsock_send (zactor_sock (self->workers [worker]), "sp", "JOB", job);
    return 0;
}

size_t
umb_auth_hasher_pending (umb_auth_hasher_t *self)
{
    assert (self);
    return zlistx_size (self->jobs);
}

//  ---------------------------------------------------------------- selftest

typedef struct {
    int      reports;
    int      want;
    int      cancelled;
    bool     verified [8];
    char     hash [8][crypto_pwhash_STRBYTES];
    zsock_t *kick;              //  pokes the loop after each report
} s_test_t;

static void
s_test_done (void *arg, const umb_auth_hasher_result_t *result)
{
    s_test_t *test = arg;
    int slot = (int) (intptr_t) result->context;
    assert (slot >= 0 && slot < 8);
    test->reports++;
    if (result->cancelled)
        test->cancelled++;
    assert (!result->failed);
    test->verified [slot] = result->verified;
    snprintf (test->hash [slot], sizeof test->hash [slot], "%s", result->hash ? result->hash : "");
    if (test->kick)
        zstr_send (test->kick, "kick");
}

static int
s_test_kicked (zloop_t *loop, zsock_t *reader, void *arg)
{
    s_test_t *test = arg;
    char *kick = zstr_recv (reader);
    zstr_free (&kick);
    return test->reports >= test->want ? -1 : 0;
}

static int
s_test_timeout (zloop_t *loop, int timer_id, void *arg)
{
    return -1;
}

//  Runs the loop until want reports arrived, or 10 s passed.
static void
s_test_wait (zloop_t *loop, s_test_t *test, int want)
{
    test->want = want;
    if (test->reports >= want)
        return;
    int timer = zloop_timer (loop, 10000, 1, s_test_timeout, NULL);
    zloop_start (loop);
    zloop_timer_end (loop, timer);
    assert (test->reports >= want);
}

void
umb_auth_hasher_test (bool verbose)
{
    if (verbose)
        printf (" * umb_auth_hasher: ");
    //  Cheap limits: the logic is under test, not Argon2
    unsigned long long ops = crypto_pwhash_OPSLIMIT_MIN;
    size_t mem = 8192 * 1024;
    zloop_t *loop = zloop_new ();
    s_test_t test = { 0 };
    zsock_t *kicked = zsock_new_pair ("@inproc://umb-auth-hasher-test");
    test.kick = zsock_new_pair (">inproc://umb-auth-hasher-test");
    assert (kicked && test.kick);
    zloop_reader (loop, kicked, s_test_kicked, &test);
    umb_auth_hasher_t *hasher = umb_auth_hasher_new (loop, 2, ops, mem, s_test_done, &test, NULL);
    assert (hasher);

    //  Hash, then verify right and wrong, and against the dummy
    assert (umb_auth_hasher_submit (hasher, NULL, NULL, "correct horse", (void *) 0) == 0);
    s_test_wait (loop, &test, 1);
    assert (strncmp (test.hash [0], "$argon2id$", 10) == 0);
    char stored [crypto_pwhash_STRBYTES];
    snprintf (stored, sizeof stored, "%s", test.hash [0]);
    assert (umb_auth_hasher_submit (hasher, stored, "correct horse", NULL, (void *) 1) == 0);
    assert (umb_auth_hasher_submit (hasher, stored, "wrong horse", NULL, (void *) 2) == 0);
    assert (umb_auth_hasher_submit (hasher, NULL, "correct horse", NULL, (void *) 3) == 0);
    assert (umb_auth_hasher_pending (hasher) == 3);
    s_test_wait (loop, &test, 4);
    assert (test.verified [1] && !test.verified [2] && !test.verified [3]);
    assert (!*test.hash [1] && !*test.hash [2] && !*test.hash [3]);

    //  Verify-then-hash only hashes when the old password matched
    assert (umb_auth_hasher_submit (hasher, stored, "correct horse", "new horse", (void *) 4) == 0);
    assert (umb_auth_hasher_submit (hasher, stored, "wrong horse", "new horse", (void *) 5) == 0);
    s_test_wait (loop, &test, 6);
    assert (test.verified [4] && *test.hash [4] && strcmp (test.hash [4], stored) != 0);
    assert (!test.verified [5] && !*test.hash [5]);
    assert (crypto_pwhash_str_verify (test.hash [4], "new horse", 9) == 0);

    //  A hash made with other limits is upgraded on a successful verification
    char weak [crypto_pwhash_STRBYTES];
    assert (crypto_pwhash_str (weak, "old secret", 10, ops + 1, mem) == 0);
    assert (umb_auth_hasher_submit (hasher, weak, "old secret", NULL, (void *) 6) == 0);
    s_test_wait (loop, &test, 7);
    assert (test.verified [6] && *test.hash [6]);
    assert (crypto_pwhash_str_needs_rehash (test.hash [6], ops, mem) == 0);

    //  Over-long passwords are refused; pending jobs are cancelled on destroy
    char huge [S_PASSWORD_MAX + 2];
    memset (huge, 'p', sizeof huge - 1);
    huge [sizeof huge - 1] = 0;
    assert (umb_auth_hasher_submit (hasher, NULL, huge, NULL, (void *) 7) == -1);
    assert (umb_auth_hasher_submit (hasher, NULL, NULL, "x", (void *) 7) == 0);
    umb_auth_hasher_destroy (&hasher);
    assert (!hasher);
    assert (test.reports == 8 && test.cancelled == 1);
    zloop_destroy (&loop);
    zsock_destroy (&test.kick);
    zsock_destroy (&kicked);
    if (verbose)
        printf ("OK\n");
}
