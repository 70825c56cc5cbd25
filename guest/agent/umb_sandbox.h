//  umb_sandbox - runs the participants' algorithm isolated: namespaces, cgroup
//  limits, rlimits, seccomp, a wall-clock timeout, bounded output and a capped
//  results directory; event-loop friendly (one pollable fd)
//
//  Layout the caller prepares (the agent, as root):
//
//      workdir/                  anything the algorithm needs (its file, wheels)
//      workdir/datasets/         the datasets, each under its uploaded filename
//      workdir/results/          empty; receives the results after the run
//
//  Inside the sandbox the algorithm sees a fresh, minimal root:
//
//      /usr /bin /lib* /sbin /etc    read-only binds of the host's
//      /umbra                        workdir, read-only (cwd of the algorithm)
//      /umbra/datasets               read-only
//      /umbra/results                tmpfs of results_bytes (+1 page); the kernel
//                                    enforces the cap (writes fail with ENOSPC)
//      /tmp, /dev/shm                small private tmpfs (tmp_bytes)
//      /dev                          null zero full random urandom, fd symlinks
//      /proc                         fresh, for the new pid namespace
//
//  and runs in new mount, pid, ipc, uts and net namespaces (no network: the
//  net namespace has only a down loopback), as uid/gid (default nobody/nogroup),
//  with no capabilities, PR_SET_NO_NEW_PRIVS, rlimits and a seccomp filter.
//  Environment: PATH, HOME=/tmp, LANG=C.UTF-8, PYTHONDONTWRITEBYTECODE=1,
//  UMBRA_DATASETS=/umbra/datasets, UMBRA_RESULTS=/umbra/results, plus
//  spec->env (which cannot override those). Relative argv[0] is resolved
//  against /umbra (so "./algorithm" runs workdir/algorithm); a name without a
//  slash is looked up in PATH; for python use
//  argv = { "/usr/bin/python3", "-I", "algorithm.py", args... }.
//  The workdir tree is shown as is: it must be readable (and its directories
//  searchable) by uid/gid; nothing is chowned.
//
//  Limits: results_bytes is the size of the results tmpfs (rounded up to a
//  page, plus one); the run fails with "results exceed the cap" when the
//  files add up to more than the cap or the tmpfs filled up (a write past it
//  fails with ENOSPC inside). RLIMIT_FSIZE is one page above the larger of
//  the results and /tmp sizes, RLIMIT_CORE 0, RLIMIT_NOFILE nofile. Pages
//  written to the results, /tmp and /dev/shm tmpfs count against
//  memory_bytes (they are memory). pids counts the algorithm's tasks
//  (threads too); the sandbox's own two processes are added on top.
//
//  After the algorithm exits, regular files and directories under
//  /umbra/results are copied to the caller's workdir/results (symlinks, devices,
//  fifos and sockets are skipped and reported as an output line). Results are
//  only copied when the algorithm exited 0 and stayed within the cap.
//
//  Processes: the caller forks a supervisor (new namespaces, mounts, results
//  copy-out), which forks pid 1 of the new pid namespace (a reaper), which
//  forks the algorithm (pid 2). When pid 1 exits the kernel kills everything
//  left in the namespace, so nothing survives the run. Timeout, kill and
//  destroy send SIGTERM to the supervisor, which SIGKILLs pid 1 and waits for
//  the namespace to empty. If the thread that called start exits, the
//  supervisor and pid 1 die with it (PR_SET_PDEATHSIG). The root is
//  pivot_root'ed (or, on an initramfs root, moved over / and chroot'ed).
//
//  cgroups: v2 (<root>/umbra/<id>) or v1 (<ctrl>/<own path>/umbra/<id> for
//  memory, pids, cpu) are created per run, and removed by destroy. If no
//  cgroup hierarchy is writable the run goes ahead with rlimits only
//  (RLIMIT_AS = memory_bytes, RLIMIT_NPROC = pids) and says so in one stderr
//  output line starting with "[umbra]"; set require_cgroup to refuse instead.
//
//  Event loop use (the caller must not ignore SIGCHLD, nor reap with
//  waitpid (-1)):
//
//      umb_sandbox_t *sb = umb_sandbox_start (&spec, reason, sizeof reason);
//      //  poll umb_sandbox_fd (sb) for reading (e.g. zloop_poller with .fd);
//      //  when readable:
//      umb_sandbox_handle (sb);        //  reads output, fires the timeout, reaps
//      if (umb_sandbox_done (sb)) {
//          //  remove the poller first, then:
//          int rc = umb_sandbox_outcome (sb, reason, sizeof reason);
//          umb_sandbox_destroy (&sb);
//      }
//
//  The fd is an epoll fd over the output pipes, the supervisor's status pipe
//  and pidfd, and a timerfd for the wall-clock timeout: the caller needs no
//  timer of its own. umb_sandbox_handle never blocks; start does only quick
//  work (cgroup files, fork); destroy of a sandbox still running waits for the
//  supervisor (normally milliseconds; SIGKILL after 5 s).
#ifndef UMB_SANDBOX_H_INCLUDED
#define UMB_SANDBOX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define UMB_SANDBOX_STDOUT 1
#define UMB_SANDBOX_STDERR 2

#define UMB_SANDBOX_LINE_MAX_DEFAULT    4096
#define UMB_SANDBOX_OUTPUT_MAX_DEFAULT  (1024 * 1024)
#define UMB_SANDBOX_ROOT_DIR            "/umbra"
#define UMB_SANDBOX_DATASETS_DIR        "/umbra/datasets"
#define UMB_SANDBOX_RESULTS_DIR         "/umbra/results"

//  Called for each complete output line (no newline; NUL-terminated for
//  convenience, but may contain any bytes, so use len). A line longer than
//  output_line_max is cut to that size and " [line cut]" appended; once
//  output_bytes_max bytes were delivered, further lines are dropped and one
//  summary line on stderr says how many. Lines starting with "[umbra]" on
//  stderr come from the sandbox itself (cgroup fallback, skipped results,
//  dropped output).
typedef void (umb_sandbox_output_fn) (void *arg, int stream, const char *line, size_t len);

typedef struct {
    uint64_t memory_bytes;      //  0 = no limit
    double   cpus;              //  CPU bandwidth in CPUs (0.5, 2); 0 = no limit
    uint64_t pids;              //  max tasks in the cgroup; 0 = no limit
    uint64_t wall_timeout_ms;   //  0 = no timeout
    uint64_t results_bytes;     //  cap on results/ (required, > 0)
    uint64_t results_files;     //  max inodes in results/; 0 = 16384
    uint64_t tmp_bytes;         //  size of /tmp and /dev/shm; 0 = 64 MiB
    uint64_t nofile;            //  RLIMIT_NOFILE; 0 = 1024
    uint64_t address_space_bytes;   //  RLIMIT_AS; 0 = none (see cgroup note)
    size_t   output_line_max;   //  0 = UMB_SANDBOX_LINE_MAX_DEFAULT
    size_t   output_bytes_max;  //  0 = UMB_SANDBOX_OUTPUT_MAX_DEFAULT
} umb_sandbox_limits_t;

typedef struct {
    const char *workdir;        //  absolute path, see the layout above
    const char *const *argv;    //  NULL-terminated; argv [0] is the program
    const char *const *env;     //  extra "NAME=value" entries, NULL-terminated, or NULL
    const char *id;             //  run id, names the cgroup (umbra/<id>); [A-Za-z0-9_.-]
    uid_t uid;                  //  0 = "nobody" resolved by name (else 65534)
    gid_t gid;                  //  0 = "nogroup" resolved by name (else 65534)
    bool require_cgroup;        //  refuse to run without a writable cgroup
    const char *cgroup_root;    //  NULL = /sys/fs/cgroup (v2 if cgroup.controllers is there)
    const char *hostname;       //  NULL = "umbra-sandbox"
    umb_sandbox_limits_t limits;
    umb_sandbox_output_fn *on_output;   //  may be NULL (output discarded)
    void *on_output_arg;
} umb_sandbox_spec_t;

typedef struct _umb_sandbox_t umb_sandbox_t;

//  Starts the run; NULL and the reason if it could not be started (bad spec,
//  no namespaces, cgroup required but unavailable). The spec is copied.
umb_sandbox_t *
    umb_sandbox_start (const umb_sandbox_spec_t *spec, char *reason, size_t reason_size);

//  Kills what is still running (waits for it: the supervisor tears the pid
//  namespace down at once), reaps, removes the cgroup. Idempotent; NULLs *self_p.
void
    umb_sandbox_destroy (umb_sandbox_t **self_p);

//  The one fd to poll for reading (owned by the sandbox; valid until destroy).
int
    umb_sandbox_fd (umb_sandbox_t *self);

//  Call when the fd is readable (calling it at other times is harmless):
//  delivers output lines, enforces the timeout, reaps. Never blocks.
//  Returns 0, or -1 if the sandbox is done.
int
    umb_sandbox_handle (umb_sandbox_t *self);

//  True once the supervisor was reaped and all output delivered.
bool
    umb_sandbox_done (umb_sandbox_t *self);

//  Only when done: 0 if the algorithm exited 0 and its results fit the cap
//  (and were copied out), else -1 and why: "exit status 3", "killed by signal
//  11 (Segmentation fault)", "wall-clock timeout after 2 s", "results exceed
//  the cap of N bytes", "memory limit exceeded", "killed", ... A
//  " (process limit of N reached)" note is appended when the pids limit was hit.
int
    umb_sandbox_outcome (umb_sandbox_t *self, char *reason, size_t reason_size);

//  Asks for the run to end now (async: the fd becomes readable when it has);
//  the outcome is then "killed" (or the timeout, if that fired first).
void
    umb_sandbox_kill (umb_sandbox_t *self);

//  Host pid of the supervisor (for logs), or -1.
pid_t
    umb_sandbox_pid (umb_sandbox_t *self);

//  Blocking convenience: start, poll until done, outcome, destroy.
//  Returns what outcome returns (or -1 if it could not start).
int
    umb_sandbox_run (const umb_sandbox_spec_t *spec, char *reason, size_t reason_size);

void
    umb_sandbox_test (bool verbose);

#endif
