//  umb_worker - runs a service's blocking work (the CA's key generation and
//  signing, libvirt calls) off the actor's loop, one job at a time, in order
//
//  The loop submits a job; a worker thread runs work (job) and hands the job
//  back through the loop, which calls done (arg, job, false). Jobs still
//  queued when the worker is destroyed are handed back with cancelled true,
//  so their owners can answer and free them.
#ifndef UMB_WORKER_H_INCLUDED
#define UMB_WORKER_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>

typedef struct _umb_worker_t umb_worker_t;

typedef void (umb_worker_work_fn) (void *job);                         //  on the worker thread
typedef void (umb_worker_done_fn) (void *arg, void *job, bool cancelled); //  on the loop

//  Reads results on loop (borrowed). queue_max jobs may wait (at least 1).
umb_worker_t *umb_worker_new (zloop_t *loop, umb_worker_work_fn *work, umb_worker_done_fn *done,
                              void *arg, size_t queue_max);
void          umb_worker_destroy (umb_worker_t **self_p);

//  Queues job. 0, or -1 when the queue is full (the caller answers 503).
int           umb_worker_submit (umb_worker_t *self, void *job)
                  __attribute__ ((warn_unused_result));
size_t        umb_worker_pending (umb_worker_t *self);

void          umb_worker_test (bool verbose);

#endif
