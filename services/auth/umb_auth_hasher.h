//  umb_auth_hasher - Argon2id password hashing and verification, run off the
//  event loop by worker actors
//
//  A hash or a verification costs ~100 ms of CPU and 64..256 MiB of memory, so
//  the service never does one on its loop. It submits a job with a context;
//  the workers compute it and the result comes back through the loop, which
//  calls the done callback with that context. Passwords are copied into
//  guarded memory (sodium_malloc) and wiped when the job ends; the caller
//  wipes its own copy right after submitting.
#ifndef UMB_AUTH_HASHER_H_INCLUDED
#define UMB_AUTH_HASHER_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>
#include <sodium.h>
#include "umb_log.h"

typedef struct _umb_auth_hasher_t umb_auth_hasher_t;

typedef struct {
    void       *context;        //  as submitted
    bool        cancelled;      //  the hasher is being destroyed; nothing was computed
    bool        failed;         //  the worker could not compute (out of memory)
    bool        verified;       //  password matched the stored hash
    //  A new hash: of new_password, or of password when the stored hash was
    //  made with other limits than the current ones; NULL if none. Borrowed
    //  until the callback returns.
    const char *hash;
} umb_auth_hasher_result_t;

typedef void (umb_auth_hasher_fn) (void *arg, const umb_auth_hasher_result_t *result);

//  Starts workers (at least one) hashing with the given Argon2id limits, and
//  reads their results on loop (borrowed), calling done (arg) for each.
umb_auth_hasher_t *umb_auth_hasher_new (zloop_t *loop, size_t workers, unsigned long long opslimit,
                                        size_t memlimit, umb_auth_hasher_fn *done, void *arg,
                                        umb_log_t *log);
//  Stops the workers; every job still pending is reported with cancelled set,
//  so owners of contexts can release them.
void               umb_auth_hasher_destroy (umb_auth_hasher_t **self_p);

//  Queues a job. With password, verifies it against stored_hash (NULL:
//  against a dummy hash of the same cost, so an unknown user costs what a
//  known one does, and never matches). With new_password, hashes it, after a
//  successful verification if password was given too. Strings are copied;
//  passwords must be at most 1024 bytes. Returns 0, or -1 when the queue is
//  full (the caller answers 503) or a password is too long.
int                umb_auth_hasher_submit (umb_auth_hasher_t *self, const char *stored_hash,
                                           const char *password, const char *new_password,
                                           void *context)
                       __attribute__ ((warn_unused_result));
//  Jobs queued or running.
size_t             umb_auth_hasher_pending (umb_auth_hasher_t *self);

void               umb_auth_hasher_test (bool verbose);

#endif
