//  umb_cgroup - a per-run cgroup (v2, or v1 memory/pids/cpu) with limits,
//  OOM and pids-limit counters, kill-all and removal
//
//  v2 (when <mount>/cgroup.controllers exists): <mount>/umbra/<name>, with
//  +memory +pids +cpu enabled in the subtree controls on the way down.
//  v1: <ctrl mount>/<own cgroup path>/umbra/<name> in each of the memory,
//  pids and cpu hierarchies that are mounted and writable. The mount point is
//  /sys/fs/cgroup unless given.
#ifndef UMB_CGROUP_H_INCLUDED
#define UMB_CGROUP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    uint64_t memory_bytes;      //  0 = no limit
    double   cpus;              //  0 = no limit
    uint64_t pids;              //  0 = no limit
} umb_cgroup_limits_t;

typedef struct _umb_cgroup_t umb_cgroup_t;

//  True if name is a usable cgroup name: 1..128 of [A-Za-z0-9_.-], not "."
//  or "..". NULL is not.
bool
    umb_cgroup_name_valid (const char *name);

//  Creates the cgroup and sets the limits; NULL and the reason if no
//  hierarchy is writable or a limit cannot be set. root NULL = /sys/fs/cgroup.
//  name: [A-Za-z0-9_.-]+. A leftover cgroup of that name is reused.
umb_cgroup_t *
    umb_cgroup_new (const char *root, const char *name,
                    const umb_cgroup_limits_t *limits, char *reason, size_t reason_size);

//  Kills what is left in it, removes it. Idempotent; NULLs *self_p.
void
    umb_cgroup_destroy (umb_cgroup_t **self_p);

//  2 or 1
int
    umb_cgroup_version (umb_cgroup_t *self);

//  Moves a process (and its future children) in; 0 or -1 and reason.
int
    umb_cgroup_attach (umb_cgroup_t *self, pid_t pid, char *reason, size_t reason_size);

//  Number of OOM kills in the cgroup so far (v2 memory.events oom_kill, v1
//  memory.oom_control oom_kill); 0 when there is no memory controller.
uint64_t
    umb_cgroup_oom_kills (umb_cgroup_t *self);

//  Times a fork was refused by the pids limit (pids.events max).
uint64_t
    umb_cgroup_pids_max_hits (umb_cgroup_t *self);

//  Number of processes in it now (all hierarchies), -1 on error.
int
    umb_cgroup_count (umb_cgroup_t *self);

//  SIGKILLs every process in it (v2 cgroup.kill when present); returns how
//  many were signalled.
int
    umb_cgroup_kill (umb_cgroup_t *self);

//  Directory of the cgroup in the first hierarchy (for logs/tests), borrowed
const char *
    umb_cgroup_path (umb_cgroup_t *self);

void
    umb_cgroup_test (bool verbose);

#endif
