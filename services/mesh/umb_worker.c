//  umb_worker - one worker thread for a service's blocking work
#include <assert.h>
#include <stdatomic.h>
#include "umb_worker.h"

typedef struct {
    umb_worker_work_fn *work;
    atomic_bool        stopping;
} s_shared_t;

struct _umb_worker_t {
    zloop_t           *loop;            //  borrowed
    umb_worker_done_fn *done;
    void              *arg;
    size_t             queue_max;
    s_shared_t        *shared;
    zactor_t          *actor;
    zlistx_t          *jobs;            //  every job in flight, in order
};

//  Jobs come back marked: the worker thread never touches the job list.
typedef struct {
    void *job;
    bool  cancelled;
} s_result_t;

static void
s_worker (zsock_t *pipe, void *args)
{
    s_shared_t *shared = args;
    zsock_signal (pipe, 0);
    while (true) {
        char *command = NULL;
        void *job = NULL;
        if (zsock_recv (pipe, "sp", &command, &job) == -1)
            break;
        bool term = !command || streq (command, "$TERM");
        if (!term && streq (command, "JOB") && job) {
            bool cancelled = atomic_load (&shared->stopping);
            if (!cancelled)
                shared->work (job);
            zsock_send (pipe, "spi", "DONE", job, cancelled ? 1 : 0);
        }
        zstr_free (&command);
        if (term)
            break;
    }
}

static int
s_on_done (zloop_t *loop, zsock_t *sock, void *arg)
{
    umb_worker_t *self = arg;
    char *command = NULL;
    void *job = NULL;
    int cancelled = 0;
    if (zsock_recv (sock, "spi", &command, &job, &cancelled) == -1)
        return 0;
    bool done = command && streq (command, "DONE") && job;
    zstr_free (&command);
    if (!done)
        return 0;
    void *handle = zlistx_find (self->jobs, job);
    if (!handle)
        return 0;
    zlistx_delete (self->jobs, handle);
    self->done (self->arg, job, cancelled != 0);
    return 0;
}

umb_worker_t *
umb_worker_new (zloop_t *loop, umb_worker_work_fn *work, umb_worker_done_fn *done, void *arg,
                      size_t queue_max)
{
    assert (loop && work && done);
    umb_worker_t *self = calloc (1, sizeof (umb_worker_t));
    assert (self);
    self->loop = loop;
    self->done = done;
    self->arg = arg;
    self->queue_max = queue_max ? queue_max : 1;
    self->shared = calloc (1, sizeof (s_shared_t));
    assert (self->shared);
    self->shared->work = work;
    atomic_init (&self->shared->stopping, false);
    self->jobs = zlistx_new ();
    assert (self->jobs);
    self->actor = zactor_new (s_worker, self->shared);
    assert (self->actor);
    zloop_reader (loop, zactor_sock (self->actor), s_on_done, self);
    return self;
}

void
umb_worker_destroy (umb_worker_t **self_p)
{
    assert (self_p);
    umb_worker_t *self = *self_p;
    if (!self)
        return;
    //  The worker finishes the job it runs and skips the rest; it reads $TERM
    //  after the queued jobs, so it is joined with nothing of ours in hand
    atomic_store (&self->shared->stopping, true);
    zloop_reader_end (self->loop, zactor_sock (self->actor));
    zactor_destroy (&self->actor);
    //  Results left unread in the pipe died with it; the list says who waits
    void *job;
    while ((job = zlistx_first (self->jobs))) {
        zlistx_delete (self->jobs, zlistx_cursor (self->jobs));
        self->done (self->arg, job, true);
    }
    zlistx_destroy (&self->jobs);
    free (self->shared);
    free (self);
    *self_p = NULL;
}

int
umb_worker_submit (umb_worker_t *self, void *job)
{
    assert (self && job);
    if (zlistx_size (self->jobs) >= self->queue_max)
        return -1;
    if (zsock_send (zactor_sock (self->actor), "sp", "JOB", job) == -1)
        return -1;
    zlistx_add_end (self->jobs, job);
    return 0;
}

size_t
umb_worker_pending (umb_worker_t *self)
{
    assert (self);
    return zlistx_size (self->jobs);
}

//  ---------------------------------------------------------------- selftest

typedef struct {
    int  value;
    int  result;
} s_test_job_t;

typedef struct {
    int  done;
    int  cancelled;
    int  last;
} s_test_state_t;

static void
s_test_work (void *job)
{
    s_test_job_t *test_job = job;
    zclock_sleep (1);
    test_job->result = test_job->value * 2;
}

static void
s_test_done (void *arg, void *job, bool cancelled)
{
    s_test_state_t *state = arg;
    s_test_job_t *test_job = job;
    if (cancelled)
        state->cancelled++;
    else {
        assert (test_job->result == test_job->value * 2);
        assert (test_job->value > state->last);      //  in order
        state->last = test_job->value;
        state->done++;
    }
    free (test_job);
}

static int
s_test_check (zloop_t *loop, int timer_id, void *arg)
{
    s_test_state_t *state = arg;
    return state->done == 5 ? -1 : 0;
}

void
umb_worker_test (bool verbose)
{
    if (verbose)
        printf (" * umb_worker: ");
    zloop_t *loop = zloop_new ();
    s_test_state_t state = { 0 };
    umb_worker_t *worker = umb_worker_new (loop, s_test_work, s_test_done, &state, 5);
    for (int index = 1; index <= 5; index++) {
        s_test_job_t *job = calloc (1, sizeof (s_test_job_t));
        job->value = index;
        assert (umb_worker_submit (worker, job) == 0);
    }
    s_test_job_t *extra = calloc (1, sizeof (s_test_job_t));
    assert (umb_worker_submit (worker, extra) == -1);     //  the queue is full
    free (extra);
    zloop_timer (loop, 5, 0, s_test_check, &state);
    zloop_timer (loop, 10000, 1, s_test_check, &state);          //  a bound on a broken worker
    zloop_start (loop);
    assert (state.done == 5 && umb_worker_pending (worker) == 0);

    //  Jobs queued at destruction come back cancelled
    for (int index = 6; index <= 8; index++) {
        s_test_job_t *job = calloc (1, sizeof (s_test_job_t));
        job->value = index;
        assert (umb_worker_submit (worker, job) == 0);
    }
    umb_worker_destroy (&worker);
    assert (state.done + state.cancelled == 8);
    assert (worker == NULL);
    zloop_destroy (&loop);
    if (verbose)
        printf ("OK\n");
}
