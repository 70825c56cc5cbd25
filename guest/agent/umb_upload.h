//  umb_upload - one streamed upload to a file, hashed while it is written;
//  and the archive jobs (unpack a dataset, pack the results) run as children
//
//  An upload writes each chunk straight to a temporary file in its directory
//  (nothing is kept in memory), feeds it to SHA3-256 and refuses bytes past the
//  announced size. Commit renames the file into place; destroying an upload
//  that was not committed deletes the partial file.
//
//  An archive job runs /bin/tar (python3's zipfile or unzip for zip) in a child process with
//  stdin on /dev/null and stdout/stderr on a pipe; the caller polls
//  umb_upload_job_fd from its loop, calls umb_upload_job_read when it is
//  readable, and umb_upload_job_finish once that returns 1 (end of output).
//  Unpacking never keeps owners, permissions, set-id bits, devices or fifos
//  from the archive; GNU tar refuses members with "..", strips leading "/" and
//  never writes through a link pointing out; zip archives are unpacked by
//  Python's zipfile (no links; "..", "/" dropped), else unzip (all checked by
//  the selftest).
#ifndef UMB_UPLOAD_H_INCLUDED
#define UMB_UPLOAD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define UMB_UPLOAD_HASH_SIZE 32

typedef struct _umb_upload_t umb_upload_t;

//  Creates a temporary file in dir for an asset of exactly size bytes.
//  NULL with the reason.
umb_upload_t *umb_upload_new (const char *dir, uint64_t size, char *reason, size_t reason_size);
//  Deletes the partial file unless it was committed.
void          umb_upload_destroy (umb_upload_t **self_p);

//  Appends data. -1 with the reason if it would pass the announced size
//  (too_large true) or the write fails; the upload is then unusable.
int           umb_upload_write (umb_upload_t *self, const void *data, size_t size,
                                bool *too_large, char *reason, size_t reason_size);
uint64_t      umb_upload_received (umb_upload_t *self);
uint64_t      umb_upload_size (umb_upload_t *self);      //  the announced size
//  Finishes the hash (once; later calls return the same) into hash.
void          umb_upload_hash (umb_upload_t *self, uint8_t hash [UMB_UPLOAD_HASH_SIZE]);
//  Moves the file to path with mode (after umb_upload_hash). 0, or -1 with the reason.
int           umb_upload_commit (umb_upload_t *self, const char *path, mode_t mode,
                                 char *reason, size_t reason_size);

//  SHA3-256 of a file, read in blocks. 0 or -1 with the reason.
int           umb_upload_hash_file (const char *path, uint8_t hash [UMB_UPLOAD_HASH_SIZE],
                                    uint64_t *size, char *reason, size_t reason_size);

//  ---------------------------------------------------------------- jobs
typedef struct _umb_upload_job_t umb_upload_job_t;

//  Unpacks archive (tar, tar.gz / .bz2 / .xz, or zip, recognised by content)
//  into the existing directory dest. NULL with the reason.
umb_upload_job_t *umb_upload_unpack_start (const char *archive, const char *dest,
                                           char *reason, size_t reason_size);
//  Packs the contents of dir into a ustar archive at tar_path. NULL with the reason.
umb_upload_job_t *umb_upload_pack_start (const char *dir, const char *tar_path,
                                         char *reason, size_t reason_size);
//  The fd to poll for input (the child's output pipe).
int               umb_upload_job_fd (umb_upload_job_t *self);
//  Reads what is there: 0 more to come, 1 the child closed its output.
int               umb_upload_job_read (umb_upload_job_t *self);
//  Waits for the child (call after read returned 1). 0 if it exited 0,
//  otherwise -1 with the reason (its exit and last output line).
int               umb_upload_job_finish (umb_upload_job_t *self, char *reason, size_t reason_size);
//  Kills a child still running and reaps it.
void              umb_upload_job_destroy (umb_upload_job_t **self_p);
//  Runs a job to its end, blocking (for tests and tools). 0 or -1 with the reason.
int               umb_upload_job_wait (umb_upload_job_t **self_p, char *reason, size_t reason_size);

void          umb_upload_test (bool verbose);

#endif
