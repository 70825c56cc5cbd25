//  umb_sandbox - runs the participants' algorithm isolated, event-loop friendly
#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include "umb_cgroup.h"
#include "umb_seccomp.h"
#include "umb_sandbox.h"
#include "umb_reason.h"

#define S_PAGE              4096ULL
#define S_RESULTS_FILES     16384
#define S_TMP_BYTES         (64ULL << 20)
#define S_NOFILE            1024
#define S_CUT_MARK          " [line cut]"
#define S_REPORT_MAGIC      0x554d4253      //  "UMBS"
#define S_COPY_DEPTH        64
#define S_READ_CHUNK        16384
#define S_DESTROY_GRACE_MS  5000
//  The supervisor and pid 1 count against the pids limit too
#define S_OWN_TASKS         2

//  epoll tags
enum { S_TAG_STDOUT = 1, S_TAG_STDERR = 2, S_TAG_STATUS = 3, S_TAG_PIDFD = 4, S_TAG_TIMER = 5 };

//  What the supervisor tells the caller, in one write before it exits
typedef struct {
    uint32_t magic;
    int32_t  ran;               //  1 once the algorithm was started
    int32_t  status_valid;      //  wait_status holds the algorithm's status
    int32_t  wait_status;
    int32_t  exec_errno;        //  exec failed with this errno
    int32_t  killed;            //  stopped on request (SIGTERM)
    int32_t  results_over;      //  bytes over the cap (or the tmpfs filled up)
    int32_t  results_files_over;
    int32_t  copied;            //  results copied to the caller's directory
    uint32_t skipped;           //  entries not copied (not regular files/dirs)
    uint64_t results_bytes;
    char     message [512];     //  setup or copy error, or the first skipped entry
} s_report_t;

struct _umb_sandbox_t {
    //  The spec, copied
    char *workdir;
    char **argv;
    char **envp;                //  the whole environment of the algorithm
    char *id;
    char *hostname;
    uid_t uid;
    gid_t gid;
    umb_sandbox_limits_t limits;
    umb_sandbox_output_fn *on_output;
    void *on_output_arg;
    bool cgroup_fallback;       //  no cgroup: rlimits stand in

    umb_cgroup_t *cgroup;
    pid_t pid;                  //  the supervisor
    int pidfd;
    int epoll_fd;
    int timer_fd;
    int status_fd;
    int out_fds [3];            //  [1] stdout, [2] stderr read ends

    //  Output line assembly
    char *line [3];
    size_t line_len [3];
    bool line_cutting [3];
    uint64_t output_bytes;
    uint64_t dropped_lines;
    uint64_t dropped_bytes;

    bool reaped;
    int supervisor_status;
    s_report_t report;
    size_t report_have;
    bool timed_out;
    bool kill_requested;
    uint64_t oom_kills;
    uint64_t pids_hits;
    bool done;
};

static char *
s_strdup (const char *text)
{
    char *copy = strdup (text);
    assert (copy);
    return copy;
}

static void
s_close (int *fd)
{
    if (*fd >= 0)
        close (*fd);
    *fd = -1;
}

//  --------------------------------------------------------------------------
//  Inside the sandbox: the supervisor, pid 1 and the algorithm. These run in
//  forked children and end with _exit; they never return to the caller.

//  Closes every fd but those in keep (and 0..2 if keep_std)
static void
s_close_except (const int *keep, size_t count)
{
    int sorted [8];
    assert (count <= 8);
    memcpy (sorted, keep, count * sizeof (int));
    for (size_t i = 1; i < count; i++)
        for (size_t j = i; j > 0 && sorted [j - 1] > sorted [j]; j--) {
            int swap = sorted [j];
            sorted [j] = sorted [j - 1];
            sorted [j - 1] = swap;
        }
    unsigned int from = 0;
    for (size_t i = 0; i < count; i++) {
        if (sorted [i] < 0)
            continue;
        if ((unsigned int) sorted [i] > from)
            close_range (from, (unsigned int) sorted [i] - 1, 0);
        from = (unsigned int) sorted [i] + 1;
    }
    close_range (from, ~0U, 0);
}

static int
s_write_all (int fd, const void *data, size_t size)
{
    const char *bytes = data;
    while (size) {
        ssize_t rc = write (fd, bytes, size);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        bytes += rc;
        size -= (size_t) rc;
    }
    return 0;
}

static void
s_reset_signals (void)
{
    for (int sig = 1; sig < NSIG; sig++)
        signal (sig, SIG_DFL);          //  fails harmlessly for KILL, STOP, RT internals
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);
}

//  Mounts and the pivot. Everything is relative to the new root at base.
typedef struct {
    const char *base;           //  where the new root's tmpfs is mounted
    char reason [512];
} s_setup_t;

static int
s_fail (s_setup_t *setup, const char *what, const char *path)
{
    umb_reason_set (setup->reason, sizeof setup->reason, "%s %s: %s", what, path, strerror (errno));
    return -1;
}

//  Read-only bind of a host path (directory or file) at the same path in the
//  new root; symlinks are recreated; a missing path is skipped
static int
s_bind_host (s_setup_t *setup, const char *path, bool file)
{
    char target [PATH_MAX];
    snprintf (target, sizeof target, "%s%s", setup->base, path);
    struct stat info;
    if (lstat (path, &info))
        return 0;
    if (S_ISLNK (info.st_mode)) {
        struct stat followed;
        if (stat (path, &followed))
            return 0;           //  dangling on the host: leave it out
        char link [PATH_MAX];
        ssize_t size = readlink (path, link, sizeof link - 1);
        if (size < 0)
            return s_fail (setup, "readlink", path);
        link [size] = 0;
        if (symlink (link, target))
            return s_fail (setup, "symlink", target);
        return 0;
    }
    if (file) {
        int fd = open (target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return s_fail (setup, "create", target);
        close (fd);
    }
    else
    if (mkdir (target, 0755) && errno != EEXIST)
        return s_fail (setup, "mkdir", target);
    if (mount (path, target, NULL, MS_BIND | MS_REC, NULL))
        return s_fail (setup, "bind", path);
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID;
    if (!file)
        flags |= MS_NODEV;
    if (mount (NULL, target, NULL, flags, NULL))
        return s_fail (setup, "remount read-only", target);
    return 0;
}

static int
s_tmpfs (s_setup_t *setup, const char *path, const char *options, unsigned long flags)
{
    char target [PATH_MAX];
    snprintf (target, sizeof target, "%s%s", setup->base, path);
    if (mkdir (target, 0755) && errno != EEXIST)
        return s_fail (setup, "mkdir", target);
    if (mount ("tmpfs", target, "tmpfs", flags, options))
        return s_fail (setup, "mount tmpfs on", path);
    return 0;
}

static uint64_t
s_results_tmpfs_size (uint64_t cap)
{
    return (cap + S_PAGE - 1) / S_PAGE * S_PAGE + S_PAGE;
}

static int
s_setup_root (umb_sandbox_t *self, s_setup_t *setup, int workdir_fd)
{
    //  Nothing of what follows may leak back to the host
    if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
        return s_fail (setup, "make private (the root must be a mount point)", "/");

    static const char *const bases [] = { "/tmp", "/mnt", "/run", "/var/tmp", NULL };
    for (size_t i = 0; bases [i]; i++) {
        struct stat info;
        if (lstat (bases [i], &info) == 0 && S_ISDIR (info.st_mode)) {
            setup->base = bases [i];
            break;
        }
    }
    if (!setup->base) {
        errno = ENOENT;
        return s_fail (setup, "no directory for the new root", "(/tmp, /mnt, /run)");
    }
    if (mount ("tmpfs", setup->base, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=0755"))
        return s_fail (setup, "mount root tmpfs on", setup->base);

    static const char *const host_dirs [] = {
        "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", NULL
    };
    for (size_t i = 0; host_dirs [i]; i++)
        if (s_bind_host (setup, host_dirs [i], false))
            return -1;

    //  The working directory, read-only; results/ a capped tmpfs over it
    char target [PATH_MAX], source [64], options [256];
    snprintf (target, sizeof target, "%s%s", setup->base, UMB_SANDBOX_ROOT_DIR);
    if (mkdir (target, 0755))
        return s_fail (setup, "mkdir", target);
    snprintf (source, sizeof source, "/proc/self/fd/%d", workdir_fd);
    if (mount (source, target, NULL, MS_BIND, NULL))
        return s_fail (setup, "bind", self->workdir);
    if (mount (NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL))
        return s_fail (setup, "remount read-only", self->workdir);
    snprintf (options, sizeof options, "size=%llu,nr_inodes=%llu,mode=0700,uid=%u,gid=%u",
              (unsigned long long) s_results_tmpfs_size (self->limits.results_bytes),
              (unsigned long long) self->limits.results_files,
              (unsigned) self->uid, (unsigned) self->gid);
    if (s_tmpfs (setup, UMB_SANDBOX_RESULTS_DIR, options, MS_NOSUID | MS_NODEV))
        return -1;

    snprintf (options, sizeof options, "size=%llu,mode=1777",
              (unsigned long long) self->limits.tmp_bytes);
    if (s_tmpfs (setup, "/tmp", options, MS_NOSUID | MS_NODEV))
        return -1;

    //  A minimal /dev
    if (s_tmpfs (setup, "/dev", "size=64k,nr_inodes=64,mode=0755", MS_NOSUID | MS_NOEXEC))
        return -1;
    static const char *const devices [] = {
        "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", NULL
    };
    for (size_t i = 0; devices [i]; i++) {
        char device [PATH_MAX];
        snprintf (device, sizeof device, "%s%s", setup->base, devices [i]);
        int fd = open (device, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0)
            return s_fail (setup, "create", device);
        close (fd);
        if (mount (devices [i], device, NULL, MS_BIND, NULL))
            return s_fail (setup, "bind", devices [i]);
        if (mount (NULL, device, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC, NULL))
            return s_fail (setup, "remount", device);
    }
    static const char *const links [][2] = {
        { "/proc/self/fd", "/dev/fd" }, { "/proc/self/fd/0", "/dev/stdin" },
        { "/proc/self/fd/1", "/dev/stdout" }, { "/proc/self/fd/2", "/dev/stderr" }
    };
    for (size_t i = 0; i < sizeof links / sizeof links [0]; i++) {
        snprintf (target, sizeof target, "%s%s", setup->base, links [i][1]);
        if (symlink (links [i][0], target))
            return s_fail (setup, "symlink", target);
    }
    snprintf (options, sizeof options, "size=%llu,mode=1777",
              (unsigned long long) self->limits.tmp_bytes);
    if (s_tmpfs (setup, "/dev/shm", options, MS_NOSUID | MS_NODEV))
        return -1;
    snprintf (target, sizeof target, "%s/dev", setup->base);
    if (mount (NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL))
        return s_fail (setup, "remount read-only", "/dev");

    snprintf (target, sizeof target, "%s/proc", setup->base);
    if (mkdir (target, 0555))
        return s_fail (setup, "mkdir", target);

    //  pivot_root (".", ".") stacks the old root under the new one; detach it.
    //  An initramfs root cannot be pivoted: move the new root over it and
    //  chroot instead (the algorithm has no capability to climb out of that)
    if (chdir (setup->base))
        return s_fail (setup, "chdir", setup->base);
    if (syscall (SYS_pivot_root, ".", ".") == 0) {
        if (umount2 (".", MNT_DETACH))
            return s_fail (setup, "detach", "the old root");
    }
    else
    if (errno == EINVAL) {
        if (mount (".", "/", NULL, MS_MOVE, NULL))
            return s_fail (setup, "move the new root over", "/");
        if (chroot ("."))
            return s_fail (setup, "chroot", setup->base);
    }
    else
        return s_fail (setup, "pivot_root", setup->base);
    if (chdir ("/"))
        return s_fail (setup, "chdir", "/");
    if (mount (NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL))
        return s_fail (setup, "remount read-only", "/");
    return 0;
}

//  The algorithm: pid 2. Never returns.
static void
s_algorithm (umb_sandbox_t *self, int stdout_fd, int stderr_fd, int exec_fd)
{
    s_reset_signals ();
    //  Out of the way of 0..2 first, whatever numbers they had
    exec_fd = fcntl (exec_fd, F_DUPFD_CLOEXEC, 10);
    stdout_fd = fcntl (stdout_fd, F_DUPFD, 10);
    stderr_fd = fcntl (stderr_fd, F_DUPFD, 10);
    int null_fd = open ("/dev/null", O_RDONLY);
    if (exec_fd < 0 || stdout_fd < 0 || stderr_fd < 0 || null_fd < 0
    ||  dup2 (null_fd, 0) < 0 || dup2 (stdout_fd, 1) < 0 || dup2 (stderr_fd, 2) < 0)
        goto failed;
    int keep [] = { 0, 1, 2, exec_fd };
    s_close_except (keep, 4);
    if (chdir (UMB_SANDBOX_ROOT_DIR))
        goto failed;
    //  No capability can come back, even through a setuid binary
    for (int cap = 0; cap < 64; cap++)
        if (prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) && errno == EINVAL)
            break;
    prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (setgroups (0, NULL) || setresgid (self->gid, self->gid, self->gid)
    ||  setresuid (self->uid, self->uid, self->uid))
        goto failed;
    if (getuid () != self->uid || geteuid () != self->uid || getgid () != self->gid) {
        errno = EPERM;
        goto failed;
    }
    struct rlimit limit;
    limit.rlim_cur = limit.rlim_max = 0;
    setrlimit (RLIMIT_CORE, &limit);
    limit.rlim_cur = limit.rlim_max = self->limits.nofile;
    setrlimit (RLIMIT_NOFILE, &limit);
    //  One page above the results tmpfs: a file hits ENOSPC there first
    limit.rlim_cur = limit.rlim_max = s_results_tmpfs_size (self->limits.results_bytes) + S_PAGE;
    if (self->limits.tmp_bytes + S_PAGE > limit.rlim_cur)
        limit.rlim_cur = limit.rlim_max = self->limits.tmp_bytes + S_PAGE;
    setrlimit (RLIMIT_FSIZE, &limit);
    if (self->cgroup_fallback && self->limits.pids) {
        limit.rlim_cur = limit.rlim_max = self->limits.pids;
        setrlimit (RLIMIT_NPROC, &limit);
    }
    char reason [256];
    if (umb_seccomp_apply (reason, sizeof reason)) {
        errno = EPERM;
        goto failed;
    }
    //  Last: this process is still a copy of the caller, whose address space
    //  may well be larger than the limit (no allocation may follow)
    if (self->limits.address_space_bytes
    || (self->cgroup_fallback && self->limits.memory_bytes)) {
        limit.rlim_cur = limit.rlim_max = self->limits.address_space_bytes
                                        ? self->limits.address_space_bytes: self->limits.memory_bytes;
        setrlimit (RLIMIT_AS, &limit);
    }
    execvpe (self->argv [0], self->argv, self->envp);
failed: {
        int32_t code = errno;
        s_write_all (exec_fd, &code, sizeof code);
        _exit (127);
    }
}

//  pid 1 of the new pid namespace: mounts /proc, starts the algorithm, reaps
//  everything, reports the algorithm's status. Its exit ends the namespace.
static void
s_init (umb_sandbox_t *self, int alive_fd, int status_fd, int exec_fd, int stdout_fd, int stderr_fd)
{
    s_reset_signals ();
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    struct pollfd item = { alive_fd, POLLIN, 0 };
    if (poll (&item, 1, 0) != 0)
        _exit (1);              //  the supervisor is already gone
    if (mount ("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) {
        int32_t code = errno;
        s_write_all (exec_fd, &code, sizeof code);
        _exit (1);
    }
    pid_t pid = fork ();
    if (pid < 0) {
        int32_t code = errno;
        s_write_all (exec_fd, &code, sizeof code);
        _exit (1);
    }
    if (pid == 0)
        s_algorithm (self, stdout_fd, stderr_fd, exec_fd);
    close (stdout_fd);
    close (stderr_fd);
    close (exec_fd);
    while (true) {
        int status;
        pid_t reaped = waitpid (-1, &status, 0);
        if (reaped < 0 && errno == EINTR)
            continue;
        if (reaped < 0)
            _exit (1);
        if (reaped == pid) {
            int32_t value = status;
            s_write_all (status_fd, &value, sizeof value);
            _exit (0);
        }
    }
}

//  Adds up the results tree; -1 on error. Counts entries that are not
//  regular files or directories in *skipped.
static int
s_results_size (int dir_fd, int depth, uint64_t *bytes, uint32_t *skipped)
{
    if (depth > S_COPY_DEPTH) {
        close (dir_fd);
        return -1;
    }
    DIR *dir = fdopendir (dir_fd);
    if (!dir) {
        close (dir_fd);
        return -1;
    }
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir (dir))) {
        if (strcmp (entry->d_name, ".") == 0 || strcmp (entry->d_name, "..") == 0)
            continue;
        struct stat info;
        if (fstatat (dirfd (dir), entry->d_name, &info, AT_SYMLINK_NOFOLLOW)) {
            rc = -1;
            break;
        }
        if (S_ISREG (info.st_mode))
            *bytes += (uint64_t) info.st_size;
        else
        if (S_ISDIR (info.st_mode)) {
            int child = openat (dirfd (dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc = child < 0? -1: s_results_size (child, depth + 1, bytes, skipped);
        }
        else
            (*skipped)++;
    }
    closedir (dir);
    return rc;
}

static int
s_copy_file (int from_dir, int to_dir, const char *name, s_report_t *report)
{
    int from = openat (from_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (from < 0)
        return -1;
    int to = openat (to_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (to < 0) {
        snprintf (report->message, sizeof report->message, "cannot create results/%s: %s",
                  name, strerror (errno));
        close (from);
        return -1;
    }
    char buffer [65536];
    int rc = 0;
    while (true) {
        ssize_t size = read (from, buffer, sizeof buffer);
        if (size < 0 && errno == EINTR)
            continue;
        if (size < 0)
            rc = -1;
        if (size <= 0)
            break;
        if (s_write_all (to, buffer, (size_t) size)) {
            snprintf (report->message, sizeof report->message, "cannot write results/%s: %s",
                      name, strerror (errno));
            rc = -1;
            break;
        }
    }
    close (from);
    if (close (to))
        rc = -1;
    return rc;
}

//  Copies regular files and directories; others are skipped, the first one
//  named in the report
static int
s_copy_tree (int from_fd, int to_fd, int depth, s_report_t *report)
{
    if (depth > S_COPY_DEPTH) {
        close (from_fd);
        return -1;
    }
    DIR *dir = fdopendir (from_fd);
    if (!dir) {
        close (from_fd);
        return -1;
    }
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir (dir))) {
        if (strcmp (entry->d_name, ".") == 0 || strcmp (entry->d_name, "..") == 0)
            continue;
        struct stat info;
        if (fstatat (dirfd (dir), entry->d_name, &info, AT_SYMLINK_NOFOLLOW)) {
            rc = -1;
            break;
        }
        if (S_ISREG (info.st_mode))
            rc = s_copy_file (dirfd (dir), to_fd, entry->d_name, report);
        else
        if (S_ISDIR (info.st_mode)) {
            if (mkdirat (to_fd, entry->d_name, 0755) && errno != EEXIST) {
                snprintf (report->message, sizeof report->message, "cannot create results/%s: %s",
                          entry->d_name, strerror (errno));
                rc = -1;
                break;
            }
            int from_child = openat (dirfd (dir), entry->d_name,
                                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int to_child = openat (to_fd, entry->d_name,
                                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (from_child < 0 || to_child < 0) {
                if (from_child >= 0)
                    close (from_child);
                rc = -1;
            }
            else
                rc = s_copy_tree (from_child, to_child, depth + 1, report);
            if (to_child >= 0)
                close (to_child);
        }
        else {
            if (report->skipped++ == 0)
                umb_reason_set (report->message, sizeof report->message, "%s (%s)", entry->d_name,
                                S_ISLNK (info.st_mode)? "symlink":
                                S_ISFIFO (info.st_mode)? "fifo":
                                S_ISSOCK (info.st_mode)? "socket": "device");
        }
    }
    closedir (dir);
    return rc;
}

static void
s_results (umb_sandbox_t *self, int results_fd, s_report_t *report)
{
    struct statfs fs;
    if (statfs (UMB_SANDBOX_RESULTS_DIR, &fs) == 0) {
        if (fs.f_bavail == 0)
            report->results_over = 1;
        if (fs.f_ffree == 0)
            report->results_files_over = 1;
    }
    int dir_fd = open (UMB_SANDBOX_RESULTS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    uint32_t skipped = 0;
    if (dir_fd < 0 || s_results_size (dir_fd, 0, &report->results_bytes, &skipped)) {
        snprintf (report->message, sizeof report->message,
                  "the results are nested deeper than %d directories", S_COPY_DEPTH);
        return;
    }
    if (report->results_bytes > self->limits.results_bytes)
        report->results_over = 1;
    bool success = report->status_valid && WIFEXITED (report->wait_status)
                && WEXITSTATUS (report->wait_status) == 0;
    if (!success || report->results_over || report->results_files_over || report->killed)
        return;
    dir_fd = open (UMB_SANDBOX_RESULTS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0 && s_copy_tree (dir_fd, results_fd, 0, report) == 0)
        report->copied = 1;
    else
    if (!report->message [0])
        snprintf (report->message, sizeof report->message, "cannot copy the results: %s",
                  strerror (errno));
}

//  The supervisor. Never returns.
static void
s_supervisor (umb_sandbox_t *self, pid_t parent, int sync_fd, int report_fd,
              int stdout_fd, int stderr_fd)
{
    s_report_t report = { .magic = S_REPORT_MAGIC };
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (getppid () != parent)
        _exit (1);
    int keep [] = { sync_fd, report_fd, stdout_fd, stderr_fd };
    s_close_except (keep, 4);
    //  Keep 0..2 taken so later fds never land there
    int fill;
    while ((fill = open ("/dev/null", O_RDWR | O_CLOEXEC)) >= 0 && fill < 3)
        ;
    if (fill >= 3)
        close (fill);
    //  SIGTERM and SIGCHLD arrive blocked (the caller blocked them around fork)
    //  and stay so, for the signalfd
    for (int sig = 1; sig < NSIG; sig++)
        signal (sig, SIG_DFL);
    signal (SIGPIPE, SIG_IGN);

    //  Wait until the caller has put us into the cgroup
    char go = 0;
    while (read (sync_fd, &go, 1) < 0 && errno == EINTR)
        ;
    close (sync_fd);
    if (go != 'G')
        _exit (1);

    s_setup_t setup = { NULL, "" };
    int workdir_fd = -1, results_fd = -1;
    int alive [2] = { -1, -1 }, status [2] = { -1, -1 }, exec_pipe [2] = { -1, -1 };
    int signal_fd = -1;
    pid_t init = -1;
    if (unshare (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET)) {
        s_fail (&setup, "unshare", "namespaces");
        goto report;
    }
    //  Opened in the new mount namespace (a bind source must be in it), before
    //  the new root covers anything
    workdir_fd = open (self->workdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    results_fd = workdir_fd < 0? -1:
        openat (workdir_fd, "results", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (workdir_fd < 0 || results_fd < 0) {
        s_fail (&setup, "cannot open", "the workdir or its results/");
        goto report;
    }
    if (sethostname (self->hostname, strlen (self->hostname))) {
        s_fail (&setup, "sethostname", self->hostname);
        goto report;
    }
    if (s_setup_root (self, &setup, workdir_fd))
        goto report;
    close (workdir_fd);
    workdir_fd = -1;

    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGCHLD);
    signal_fd = signalfd (-1, &signals, SFD_CLOEXEC);
    if (signal_fd < 0
    ||  pipe2 (alive, O_CLOEXEC) || pipe2 (status, O_CLOEXEC) || pipe2 (exec_pipe, O_CLOEXEC)) {
        s_fail (&setup, "create", "pipes");
        goto report;
    }
    init = fork ();
    if (init < 0) {
        s_fail (&setup, "fork", "pid 1");
        goto report;
    }
    if (init == 0) {
        close (alive [1]);
        close (status [0]);
        close (exec_pipe [0]);
        close (report_fd);
        close (results_fd);
        close (signal_fd);
        s_init (self, alive [0], status [1], exec_pipe [1], stdout_fd, stderr_fd);
    }
    report.ran = 1;
    close (alive [0]);
    close (status [1]);
    close (exec_pipe [1]);
    close (stdout_fd);
    close (stderr_fd);
    while (true) {
        struct signalfd_siginfo info;
        ssize_t size = read (signal_fd, &info, sizeof info);
        if (size < 0 && errno == EINTR)
            continue;
        if (size != sizeof info)
            break;
        if (info.ssi_signo == SIGTERM) {
            report.killed = 1;
            kill (init, SIGKILL);
        }
        int wait_status;
        if (waitpid (init, &wait_status, WNOHANG) == init)
            break;
    }
    //  pid 1 has exited: the kernel has killed and reaped the rest
    int32_t value;
    if (read (status [0], &value, sizeof value) == sizeof value) {
        report.status_valid = 1;
        report.wait_status = value;
    }
    if (read (exec_pipe [0], &value, sizeof value) == sizeof value)
        report.exec_errno = value;
    s_results (self, results_fd, &report);
report:
    if (setup.reason [0])
        snprintf (report.message, sizeof report.message, "%s", setup.reason);
    s_write_all (report_fd, &report, sizeof report);
    _exit (0);
}

//  --------------------------------------------------------------------------
//  The caller's side

static void
s_deliver (umb_sandbox_t *self, int stream, const char *line, size_t len, bool own)
{
    if (!own) {
        if (self->output_bytes + len > self->limits.output_bytes_max) {
            self->dropped_lines++;
            self->dropped_bytes += len;
            return;
        }
        self->output_bytes += len + 1;
    }
    if (self->on_output)
        self->on_output (self->on_output_arg, stream, line, len);
}

static void
s_notice (umb_sandbox_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_notice (umb_sandbox_t *self, const char *format, ...)
{
    char line [1024];
    int size = snprintf (line, sizeof line, "[umbra] ");
    va_list args;
    va_start (args, format);
    vsnprintf (line + size, sizeof line - (size_t) size, format, args);
    va_end (args);
    s_deliver (self, UMB_SANDBOX_STDERR, line, strlen (line), true);
}

static void
s_emit_line (umb_sandbox_t *self, int stream, bool cut)
{
    char *line = self->line [stream];
    size_t len = self->line_len [stream];
    if (cut) {
        memcpy (line + len, S_CUT_MARK, strlen (S_CUT_MARK));
        len += strlen (S_CUT_MARK);
    }
    line [len] = 0;
    s_deliver (self, stream, line, len, false);
    self->line_len [stream] = 0;
}

static void
s_consume (umb_sandbox_t *self, int stream, const char *data, size_t size)
{
    while (size) {
        const char *newline = memchr (data, '\n', size);
        size_t chunk = newline? (size_t) (newline - data): size;
        if (self->line_cutting [stream]) {
            //  Dropping the rest of a cut line
        }
        else {
            size_t room = self->limits.output_line_max - self->line_len [stream];
            size_t take = chunk < room? chunk: room;
            memcpy (self->line [stream] + self->line_len [stream], data, take);
            self->line_len [stream] += take;
            if (take < chunk) {
                s_emit_line (self, stream, true);
                self->line_cutting [stream] = true;
            }
        }
        if (newline) {
            if (self->line_cutting [stream])
                self->line_cutting [stream] = false;
            else
                s_emit_line (self, stream, false);
            chunk++;
        }
        data += chunk;
        size -= chunk;
    }
}

//  Reads one chunk (or all, when draining) from an output pipe
static void
s_read_output (umb_sandbox_t *self, int stream, bool drain)
{
    char buffer [S_READ_CHUNK];
    while (self->out_fds [stream] >= 0) {
        ssize_t size = read (self->out_fds [stream], buffer, sizeof buffer);
        if (size < 0 && errno == EINTR)
            continue;
        if (size > 0) {
            s_consume (self, stream, buffer, (size_t) size);
            if (drain)
                continue;
            return;
        }
        if (size < 0 && errno == EAGAIN && !drain)
            return;
        //  End of file (or an error, or nothing more after the supervisor
        //  exited): flush a last unterminated line
        if (self->line_len [stream] && !self->line_cutting [stream])
            s_emit_line (self, stream, false);
        epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, self->out_fds [stream], NULL);
        s_close (&self->out_fds [stream]);
    }
}

static void
s_read_report (umb_sandbox_t *self)
{
    while (self->status_fd >= 0 && self->report_have < sizeof self->report) {
        ssize_t size = read (self->status_fd, (char *) &self->report + self->report_have,
                             sizeof self->report - self->report_have);
        if (size < 0 && errno == EINTR)
            continue;
        if (size > 0) {
            self->report_have += (size_t) size;
            continue;
        }
        if (size < 0 && errno == EAGAIN)
            return;
        epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, self->status_fd, NULL);
        s_close (&self->status_fd);
    }
}

static void
s_signal (umb_sandbox_t *self, int sig)
{
    if (self->reaped)
        return;
    if (self->pidfd >= 0)
        syscall (SYS_pidfd_send_signal, self->pidfd, sig, NULL, 0);
    else
        kill (self->pid, sig);
}

static void
s_reap (umb_sandbox_t *self, bool block)
{
    if (self->reaped || self->pid <= 0)
        return;
    int status;
    pid_t rc;
    do
        rc = waitpid (self->pid, &status, block? 0: WNOHANG);
    while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return;
    self->reaped = true;
    self->supervisor_status = rc == self->pid? status: -1;
    if (self->cgroup) {
        self->oom_kills = umb_cgroup_oom_kills (self->cgroup);
        self->pids_hits = umb_cgroup_pids_max_hits (self->cgroup);
    }
    if (self->pidfd >= 0) {
        epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, self->pidfd, NULL);
        s_close (&self->pidfd);
    }
    if (self->timer_fd >= 0) {
        epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, self->timer_fd, NULL);
        s_close (&self->timer_fd);
    }
}

static void
s_finish (umb_sandbox_t *self)
{
    if (self->done || !self->reaped)
        return;
    s_read_report (self);
    s_read_output (self, UMB_SANDBOX_STDOUT, true);
    s_read_output (self, UMB_SANDBOX_STDERR, true);
    if (self->cgroup_fallback)
        s_notice (self, "no writable cgroup: memory and process limits were rlimits only, "
                  "and there was no CPU limit");
    if (self->report_have == sizeof self->report && self->report.skipped)
        s_notice (self, "results: %u entries were not regular files or directories and were not "
                  "copied (first: %s)", self->report.skipped, self->report.message);
    if (self->dropped_lines)
        s_notice (self, "%llu lines (%llu bytes) of output dropped past the limit of %llu bytes",
                  (unsigned long long) self->dropped_lines,
                  (unsigned long long) self->dropped_bytes,
                  (unsigned long long) self->limits.output_bytes_max);
    self->done = true;
}

int
umb_sandbox_handle (umb_sandbox_t *self)
{
    assert (self);
    if (self->done)
        return -1;
    struct epoll_event events [8];
    int count = epoll_wait (self->epoll_fd, events, 8, 0);
    for (int i = 0; i < count; i++) {
        switch (events [i].data.u32) {
            case S_TAG_STDOUT:
            case S_TAG_STDERR:
                s_read_output (self, (int) events [i].data.u32, false);
                break;
            case S_TAG_STATUS:
                s_read_report (self);
                //  Without a pidfd the status pipe's end means it is exiting
                if (self->status_fd < 0 && self->pidfd < 0)
                    s_reap (self, true);
                break;
            case S_TAG_PIDFD:
                s_reap (self, false);
                break;
            case S_TAG_TIMER: {
                uint64_t expirations;
                if (read (self->timer_fd, &expirations, sizeof expirations) == sizeof expirations
                &&  !self->reaped && !self->kill_requested) {
                    self->timed_out = true;
                    self->kill_requested = true;
                    s_signal (self, SIGTERM);
                }
                break;
            }
            default:
                assert (false);
        }
    }
    s_finish (self);
    return self->done? -1: 0;
}

static void
s_free (umb_sandbox_t *self)
{
    free (self->workdir);
    for (size_t i = 0; self->argv && self->argv [i]; i++)
        free (self->argv [i]);
    free (self->argv);
    for (size_t i = 0; self->envp && self->envp [i]; i++)
        free (self->envp [i]);
    free (self->envp);
    free (self->id);
    free (self->hostname);
    free (self->line [1]);
    free (self->line [2]);
    free (self);
}

void
umb_sandbox_destroy (umb_sandbox_t **self_p)
{
    assert (self_p);
    umb_sandbox_t *self = *self_p;
    if (!self)
        return;
    if (self->pid > 0 && !self->reaped) {
        s_signal (self, SIGTERM);
        //  The supervisor ends the namespace at once; give it a grace period
        if (self->pidfd >= 0) {
            struct pollfd item = { self->pidfd, POLLIN, 0 };
            if (poll (&item, 1, S_DESTROY_GRACE_MS) == 0)
                s_signal (self, SIGKILL);
        }
        s_reap (self, true);
    }
    if (self->cgroup)
        umb_cgroup_destroy (&self->cgroup);
    s_close (&self->pidfd);
    s_close (&self->timer_fd);
    s_close (&self->status_fd);
    s_close (&self->out_fds [1]);
    s_close (&self->out_fds [2]);
    s_close (&self->epoll_fd);
    s_free (self);
    *self_p = NULL;
}

static char **
s_strv_copy (const char *const *strings, size_t extra)
{
    size_t count = 0;
    while (strings && strings [count])
        count++;
    char **copy = calloc (count + extra + 1, sizeof (char *));
    assert (copy);
    for (size_t i = 0; i < count; i++)
        copy [i] = s_strdup (strings [i]);
    return copy;
}

static void
s_resolve_user (umb_sandbox_t *self, const umb_sandbox_spec_t *spec)
{
    char buffer [4096];
    self->uid = spec->uid;
    self->gid = spec->gid;
    if (self->uid == 0) {
        struct passwd entry, *found = NULL;
        self->uid = getpwnam_r ("nobody", &entry, buffer, sizeof buffer, &found) == 0 && found
                  ? found->pw_uid: 65534;
    }
    if (self->gid == 0) {
        struct group entry, *found = NULL;
        self->gid = getgrnam_r ("nogroup", &entry, buffer, sizeof buffer, &found) == 0 && found
                  ? found->gr_gid: 65534;
    }
}

static int
s_check_spec (const umb_sandbox_spec_t *spec, char *reason, size_t reason_size)
{
    if (!spec->workdir || spec->workdir [0] != '/') {
        umb_reason_set (reason, reason_size, "workdir must be an absolute path");
        return -1;
    }
    if (!spec->argv || !spec->argv [0] || !spec->argv [0][0]) {
        umb_reason_set (reason, reason_size, "no program to run");
        return -1;
    }
    //  The id names the run's cgroup
    if (spec->id && (strlen (spec->id) > 64 || !umb_cgroup_name_valid (spec->id))) {
        umb_reason_set (reason, reason_size, "invalid run id");
        return -1;
    }
    if (spec->limits.results_bytes == 0) {
        umb_reason_set (reason, reason_size, "a results cap is required");
        return -1;
    }
    static const char *const dirs [] = { "", "/datasets", "/results" };
    for (size_t i = 0; i < 3; i++) {
        char path [PATH_MAX];
        struct stat info;
        snprintf (path, sizeof path, "%s%s", spec->workdir, dirs [i]);
        if (lstat (path, &info) || !S_ISDIR (info.st_mode)) {
            umb_reason_set (reason, reason_size, "%s is not a directory", path);
            return -1;
        }
    }
    for (size_t i = 0; spec->env && spec->env [i]; i++)
        if (!strchr (spec->env [i], '=') || spec->env [i][0] == '=') {
            umb_reason_set (reason, reason_size, "environment entry without a name: %s", spec->env [i]);
            return -1;
        }
    return 0;
}

static umb_sandbox_t *
s_new (const umb_sandbox_spec_t *spec)
{
    umb_sandbox_t *self = calloc (1, sizeof (umb_sandbox_t));
    assert (self);
    self->pid = -1;
    self->pidfd = self->epoll_fd = self->timer_fd = self->status_fd = -1;
    self->out_fds [0] = self->out_fds [1] = self->out_fds [2] = -1;
    self->workdir = s_strdup (spec->workdir);
    self->argv = s_strv_copy (spec->argv, 0);
    self->hostname = s_strdup (spec->hostname? spec->hostname: "umbra-sandbox");
    if (spec->id)
        self->id = s_strdup (spec->id);
    else {
        char id [64];
        struct timespec now;
        clock_gettime (CLOCK_MONOTONIC, &now);
        snprintf (id, sizeof id, "run-%ld-%lld%09ld", (long) getpid (),
                  (long long) now.tv_sec, now.tv_nsec);
        self->id = s_strdup (id);
    }
    s_resolve_user (self, spec);
    self->limits = spec->limits;
    if (!self->limits.results_files)
        self->limits.results_files = S_RESULTS_FILES;
    if (!self->limits.tmp_bytes)
        self->limits.tmp_bytes = S_TMP_BYTES;
    if (!self->limits.nofile)
        self->limits.nofile = S_NOFILE;
    if (!self->limits.output_line_max)
        self->limits.output_line_max = UMB_SANDBOX_LINE_MAX_DEFAULT;
    if (!self->limits.output_bytes_max)
        self->limits.output_bytes_max = UMB_SANDBOX_OUTPUT_MAX_DEFAULT;
    self->on_output = spec->on_output;
    self->on_output_arg = spec->on_output_arg;
    for (int stream = 1; stream <= 2; stream++) {
        self->line [stream] = malloc (self->limits.output_line_max + strlen (S_CUT_MARK) + 1);
        assert (self->line [stream]);
    }

    //  The algorithm's environment: ours first, so extras cannot override them
    static const char *const fixed [] = {
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "HOME=/tmp",
        "LANG=C.UTF-8",
        "PYTHONDONTWRITEBYTECODE=1",
        "UMBRA_DATASETS=" UMB_SANDBOX_DATASETS_DIR,
        "UMBRA_RESULTS=" UMB_SANDBOX_RESULTS_DIR,
        NULL
    };
    size_t extras = 0;
    while (spec->env && spec->env [extras])
        extras++;
    self->envp = s_strv_copy (fixed, extras);
    size_t count = sizeof fixed / sizeof fixed [0] - 1;
    for (size_t i = 0; i < extras; i++) {
        size_t name_len = strcspn (spec->env [i], "=");
        bool taken = false;
        for (size_t j = 0; j < count; j++)
            if (strncmp (self->envp [j], spec->env [i], name_len + 1) == 0)
                taken = true;
        if (!taken)
            self->envp [count++] = s_strdup (spec->env [i]);
    }
    return self;
}

static int
s_watch (umb_sandbox_t *self, int fd, uint32_t tag)
{
    struct epoll_event event = { .events = EPOLLIN, .data.u32 = tag };
    return epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &event);
}

umb_sandbox_t *
umb_sandbox_start (const umb_sandbox_spec_t *spec, char *reason, size_t reason_size)
{
    assert (spec);
    if (s_check_spec (spec, reason, reason_size))
        return NULL;
    umb_sandbox_t *self = s_new (spec);

    char cgroup_reason [512] = "";
    umb_cgroup_limits_t cgroup_limits = {
        .memory_bytes = self->limits.memory_bytes,
        .cpus = self->limits.cpus,
        .pids = self->limits.pids? self->limits.pids + S_OWN_TASKS: 0
    };
    self->cgroup = umb_cgroup_new (spec->cgroup_root, self->id, &cgroup_limits,
                                   cgroup_reason, sizeof cgroup_reason);
    if (!self->cgroup) {
        if (spec->require_cgroup) {
            umb_reason_set (reason, reason_size, "%s", cgroup_reason);
            s_free (self);
            return NULL;
        }
        self->cgroup_fallback = true;
    }

    int sync [2] = { -1, -1 }, status [2] = { -1, -1 }, out [2] = { -1, -1 }, err [2] = { -1, -1 };
    self->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
    self->timer_fd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (self->epoll_fd < 0 || self->timer_fd < 0
    ||  pipe2 (sync, O_CLOEXEC) || pipe2 (status, O_CLOEXEC)
    ||  pipe2 (out, O_CLOEXEC) || pipe2 (err, O_CLOEXEC)) {
        umb_reason_set (reason, reason_size, "cannot create pipes: %s", strerror (errno));
        goto failed;
    }
    //  The supervisor starts with SIGTERM and SIGCHLD blocked, so a kill
    //  right after the fork stays pending for its signalfd
    sigset_t blocked, saved;
    sigemptyset (&blocked);
    sigaddset (&blocked, SIGTERM);
    sigaddset (&blocked, SIGCHLD);
    pthread_sigmask (SIG_BLOCK, &blocked, &saved);
    pid_t parent = getpid ();
    self->pid = fork ();
    if (self->pid == 0) {
        close (sync [1]);
        close (status [0]);
        close (out [0]);
        close (err [0]);
        s_supervisor (self, parent, sync [0], status [1], out [1], err [1]);
    }
    int saved_errno = errno;
    pthread_sigmask (SIG_SETMASK, &saved, NULL);
    close (sync [0]);
    close (status [1]);
    close (out [1]);
    close (err [1]);
    sync [0] = status [1] = out [1] = err [1] = -1;
    if (self->pid < 0) {
        umb_reason_set (reason, reason_size, "cannot fork: %s", strerror (saved_errno));
        goto failed;
    }
    self->status_fd = status [0];
    self->out_fds [1] = out [0];
    self->out_fds [2] = err [0];
    status [0] = out [0] = err [0] = -1;
    self->pidfd = (int) syscall (SYS_pidfd_open, self->pid, 0);
    if (self->cgroup && umb_cgroup_attach (self->cgroup, self->pid, reason, reason_size))
        goto failed;
    for (int i = 1; i <= 2; i++)
        fcntl (self->out_fds [i], F_SETFL, O_NONBLOCK);
    fcntl (self->status_fd, F_SETFL, O_NONBLOCK);
    if (s_watch (self, self->out_fds [1], S_TAG_STDOUT)
    ||  s_watch (self, self->out_fds [2], S_TAG_STDERR)
    ||  s_watch (self, self->status_fd, S_TAG_STATUS)
    ||  s_watch (self, self->timer_fd, S_TAG_TIMER)
    ||  (self->pidfd >= 0 && s_watch (self, self->pidfd, S_TAG_PIDFD))) {
        umb_reason_set (reason, reason_size, "epoll: %s", strerror (errno));
        goto failed;
    }
    if (self->limits.wall_timeout_ms) {
        struct itimerspec timeout = { { 0, 0 }, {
            (time_t) (self->limits.wall_timeout_ms / 1000),
            (long) (self->limits.wall_timeout_ms % 1000) * 1000000L } };
        timerfd_settime (self->timer_fd, 0, &timeout, NULL);
    }
    char go = 'G';
    if (write (sync [1], &go, 1) != 1) {
        umb_reason_set (reason, reason_size, "the supervisor died at start");
        goto failed;
    }
    close (sync [1]);
    return self;

failed:
    for (int i = 0; i < 2; i++) {
        if (sync [i] >= 0) close (sync [i]);
        if (status [i] >= 0) close (status [i]);
        if (out [i] >= 0) close (out [i]);
        if (err [i] >= 0) close (err [i]);
    }
    if (self->pid > 0) {
        //  It has not left its sync read yet: SIGKILL is safe and immediate
        kill (self->pid, SIGKILL);
        s_reap (self, true);
    }
    self->reaped = true;
    umb_sandbox_destroy (&self);
    return NULL;
}

int
umb_sandbox_fd (umb_sandbox_t *self)
{
    assert (self);
    return self->epoll_fd;
}

bool
umb_sandbox_done (umb_sandbox_t *self)
{
    assert (self);
    return self->done;
}

pid_t
umb_sandbox_pid (umb_sandbox_t *self)
{
    assert (self);
    return self->pid;
}

void
umb_sandbox_kill (umb_sandbox_t *self)
{
    assert (self);
    if (self->reaped || self->kill_requested)
        return;
    self->kill_requested = true;
    s_signal (self, SIGTERM);
}

static void
s_format_timeout (char *text, size_t size, uint64_t ms)
{
    if (ms % 1000 == 0)
        snprintf (text, size, "%llu s", (unsigned long long) (ms / 1000));
    else
        snprintf (text, size, "%.1f s", (double) ms / 1000.0);
}

int
umb_sandbox_outcome (umb_sandbox_t *self, char *reason, size_t reason_size)
{
    assert (self);
    assert (self->done);
    char text [640] = "", detail [128] = "";
    const s_report_t *report = &self->report;
    bool have_report = self->report_have == sizeof *report && report->magic == S_REPORT_MAGIC;
    int status = report->wait_status;
    bool exited = have_report && report->status_valid && WIFEXITED (status);
    bool signalled = have_report && report->status_valid && WIFSIGNALED (status);

    if (signalled)
        snprintf (detail, sizeof detail, "killed by signal %d (%s)",
                  WTERMSIG (status), strsignal (WTERMSIG (status)));
    else
    if (exited && WEXITSTATUS (status) != 0)
        snprintf (detail, sizeof detail, "exit status %d", WEXITSTATUS (status));

    if (self->timed_out) {
        char timeout [32];
        s_format_timeout (timeout, sizeof timeout, self->limits.wall_timeout_ms);
        snprintf (text, sizeof text, "wall-clock timeout after %s", timeout);
        detail [0] = 0;
    }
    else
    if (self->kill_requested) {
        snprintf (text, sizeof text, "killed");
        detail [0] = 0;
    }
    else
    if (!have_report) {
        if (WIFSIGNALED (self->supervisor_status))
            snprintf (text, sizeof text, "sandbox supervisor killed by signal %d (%s)",
                      WTERMSIG (self->supervisor_status), strsignal (WTERMSIG (self->supervisor_status)));
        else
            snprintf (text, sizeof text, "sandbox supervisor ended without a report");
    }
    else
    if (!report->ran)
        snprintf (text, sizeof text, "sandbox setup failed: %s", report->message);
    else
    if (report->exec_errno) {
        snprintf (text, sizeof text, "cannot execute %s: %s", self->argv [0], strerror (report->exec_errno));
        detail [0] = 0;
    }
    else
    if (!report->status_valid)
        snprintf (text, sizeof text, "the algorithm's status was lost");
    else
    if (self->oom_kills && (signalled || (exited && WEXITSTATUS (status) != 0))) {
        snprintf (text, sizeof text, "memory limit exceeded");
        if (signalled && WTERMSIG (status) == SIGKILL)
            detail [0] = 0;
    }
    else
    if (report->results_over || (signalled && WTERMSIG (status) == SIGXFSZ))
        snprintf (text, sizeof text, "results exceed the cap of %llu bytes",
                  (unsigned long long) self->limits.results_bytes);
    else
    if (report->results_files_over)
        snprintf (text, sizeof text, "results exceed the limit of %llu files",
                  (unsigned long long) self->limits.results_files);
    else
    if (detail [0]) {
        snprintf (text, sizeof text, "%s", detail);
        detail [0] = 0;
    }
    else
    if (!report->copied)
        snprintf (text, sizeof text, "cannot copy the results: %s", report->message);

    if (!text [0])
        return 0;
    size_t used = 0;
    if (reason && reason_size) {
        used = (size_t) snprintf (reason, reason_size, "%s", text);
        if (detail [0] && used < reason_size)
            used += (size_t) snprintf (reason + used, reason_size - used, " (%s)", detail);
        if (self->pids_hits && used < reason_size)
            snprintf (reason + used, reason_size - used, " (process limit of %llu reached)",
                      (unsigned long long) self->limits.pids);
    }
    return -1;
}

int
umb_sandbox_run (const umb_sandbox_spec_t *spec, char *reason, size_t reason_size)
{
    umb_sandbox_t *self = umb_sandbox_start (spec, reason, reason_size);
    if (!self)
        return -1;
    while (!umb_sandbox_done (self)) {
        struct pollfd item = { umb_sandbox_fd (self), POLLIN, 0 };
        if (poll (&item, 1, -1) < 0 && errno != EINTR)
            break;
        umb_sandbox_handle (self);
    }
    int rc = -1;
    if (umb_sandbox_done (self))
        rc = umb_sandbox_outcome (self, reason, reason_size);
    else
        umb_reason_set (reason, reason_size, "poll: %s", strerror (errno));
    umb_sandbox_destroy (&self);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest (as root, real namespaces; skipped with a note otherwise)


typedef struct {
    char text [65536];          //  "<stream>:<line>\n" per line
    size_t size;
    size_t lines;
} s_capture_t;

static void
s_capture (void *arg, int stream, const char *line, size_t len)
{
    s_capture_t *capture = arg;
    assert (stream == UMB_SANDBOX_STDOUT || stream == UMB_SANDBOX_STDERR);
    assert (line [len] == 0);
    int size = snprintf (capture->text + capture->size, sizeof capture->text - capture->size,
                         "%d:%.*s\n", stream, (int) len, line);
    if (size > 0 && capture->size + (size_t) size < sizeof capture->text)
        capture->size += (size_t) size;
    capture->lines++;
}

typedef struct {
    char workdir [64];
    s_capture_t capture;
    umb_sandbox_spec_t spec;
    const char *argv [8];
    char reason [512];
} s_case_t;

static void
s_write_file (const char *dir, const char *name, const char *text, mode_t mode)
{
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert (fd >= 0);
    assert (s_write_all (fd, text, strlen (text)) == 0);
    close (fd);
}

//  A fresh workdir holding datasets/input.txt, an empty results/ and the
//  script as algo.sh (or algo.py), run by /bin/sh (or /usr/bin/python3 -I)
static void
s_case_new (s_case_t *test, const char *script, bool python)
{
    memset (test, 0, sizeof *test);
    snprintf (test->workdir, sizeof test->workdir, "/tmp/umb-sandbox-XXXXXX");
    assert (mkdtemp (test->workdir));
    assert (chmod (test->workdir, 0755) == 0);
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/datasets", test->workdir);
    assert (mkdir (path, 0755) == 0);
    s_write_file (path, "input.txt", "dataset-line\n", 0644);
    snprintf (path, sizeof path, "%s/results", test->workdir);
    assert (mkdir (path, 0755) == 0);
    s_write_file (test->workdir, python? "algo.py": "algo.sh", script, 0644);
    if (python) {
        test->argv [0] = "/usr/bin/python3";
        test->argv [1] = "-I";
        test->argv [2] = "algo.py";
    }
    else {
        test->argv [0] = "/bin/sh";
        test->argv [1] = "algo.sh";
    }
    test->spec.workdir = test->workdir;
    test->spec.argv = test->argv;
    test->spec.limits.results_bytes = 1 << 20;
    test->spec.limits.wall_timeout_ms = 30000;
    test->spec.limits.memory_bytes = 256 << 20;
    test->spec.limits.pids = 64;
    test->spec.on_output = s_capture;
    test->spec.on_output_arg = &test->capture;
}

static int
s_case_run (s_case_t *test)
{
    test->reason [0] = 0;
    int rc = umb_sandbox_run (&test->spec, test->reason, sizeof test->reason);
    if (getenv ("UMB_SANDBOX_TEST_TRACE"))
        fprintf (stderr, "\n--- rc %d: %s\n%s", rc, test->reason, test->capture.text);
    return rc;
}

static bool
s_has (s_case_t *test, const char *text)
{
    return strstr (test->capture.text, text) != NULL;
}

static void
s_remove_tree (int dir_fd)
{
    DIR *dir = fdopendir (dir_fd);
    assert (dir);
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (strcmp (entry->d_name, ".") == 0 || strcmp (entry->d_name, "..") == 0)
            continue;
        if (unlinkat (dirfd (dir), entry->d_name, 0) == 0)
            continue;
        int child = openat (dirfd (dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        assert (child >= 0);
        s_remove_tree (child);
        assert (unlinkat (dirfd (dir), entry->d_name, AT_REMOVEDIR) == 0);
    }
    closedir (dir);
}

static void
s_case_destroy (s_case_t *test, bool verbose)
{
    int fd = open (test->workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert (fd >= 0);
    s_remove_tree (fd);
    assert (rmdir (test->workdir) == 0);
}

static bool
s_results_has (s_case_t *test, const char *name, const char *content)
{
    char path [PATH_MAX], buffer [256] = "";
    snprintf (path, sizeof path, "%s/results/%s", test->workdir, name);
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    ssize_t size = read (fd, buffer, sizeof buffer - 1);
    close (fd);
    return size >= 0 && strcmp (buffer, content) == 0;
}

static bool
s_results_empty (s_case_t *test)
{
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/results", test->workdir);
    DIR *dir = opendir (path);
    assert (dir);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (strcmp (entry->d_name, ".") && strcmp (entry->d_name, ".."))
            count++;
    closedir (dir);
    return count == 0;
}

//  True if any process's command line has this argument
static bool
s_process_with_arg (const char *arg)
{
    DIR *proc = opendir ("/proc");
    assert (proc);
    bool found = false;
    struct dirent *entry;
    while (!found && (entry = readdir (proc))) {
        if (entry->d_name [0] < '0' || entry->d_name [0] > '9')
            continue;
        char path [300], cmdline [4096];
        snprintf (path, sizeof path, "/proc/%s/cmdline", entry->d_name);
        int fd = open (path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t size = read (fd, cmdline, sizeof cmdline - 1);
        close (fd);
        for (ssize_t at = 0; at < size; at += (ssize_t) strlen (cmdline + at) + 1) {
            cmdline [size] = 0;
            if (strcmp (cmdline + at, arg) == 0)
                found = true;
        }
    }
    closedir (proc);
    return found;
}

static bool
s_cgroup_dir_gone (const char *id)
{
    //  Either hierarchy layout: look for umbra/<id> under the usual places
    char own [2048] = "", path [4096];
    static const char *const roots [] = {
        "/sys/fs/cgroup/umbra", "/sys/fs/cgroup/pids/umbra", "/sys/fs/cgroup/cpu/umbra", NULL
    };
    for (size_t i = 0; roots [i]; i++) {
        snprintf (path, sizeof path, "%s/%s", roots [i], id);
        if (access (path, F_OK) == 0)
            return false;
    }
    FILE *file = fopen ("/proc/self/cgroup", "re");
    if (file) {
        char line [4096];
        while (fgets (line, sizeof line, file))
            if (strncmp (strchr (line, ':') + 1, "memory:", 7) == 0) {
                line [strcspn (line, "\n")] = 0;
                snprintf (own, sizeof own, "%s", strchr (line, '/'));
            }
        fclose (file);
    }
    snprintf (path, sizeof path, "/sys/fs/cgroup/memory%s/umbra/%s", own, id);
    return access (path, F_OK) != 0;
}

void
umb_sandbox_test (bool verbose)
{
    if (verbose)
        printf (" * umb_sandbox:");
    if (geteuid () != 0) {
        if (verbose)
            printf (" skipped (needs root)\n");
        return;
    }
    s_case_t *test = calloc (1, sizeof (s_case_t));
    assert (test);
    char reason [256];
    //  Names and sleep arguments unique to this process, so that concurrent
    //  selftest runs do not see each other's cgroups and processes
    long self_pid = (long) getpid ();
    char ok_id [64], timeout_id [64], probe_id [64], sleeps [4][32];
    snprintf (ok_id, sizeof ok_id, "selftest-ok-%ld", self_pid);
    snprintf (timeout_id, sizeof timeout_id, "selftest-timeout-%ld", self_pid);
    snprintf (probe_id, sizeof probe_id, "selftest-probe-%ld", self_pid);
    for (int i = 0; i < 4; i++)
        snprintf (sleeps [i], sizeof sleeps [i], "30.%ld%d", self_pid, i);
    char hostname [256] = "";
    gethostname (hostname, sizeof hostname);

    //  Bad specs are refused before anything runs
    s_case_new (test, "exit 0\n", false);
    test->spec.limits.results_bytes = 0;
    assert (umb_sandbox_start (&test->spec, reason, sizeof reason) == NULL);
    assert (strstr (reason, "cap"));
    test->spec.limits.results_bytes = 1024;
    test->spec.workdir = "relative";
    assert (umb_sandbox_start (&test->spec, reason, sizeof reason) == NULL);
    test->spec.workdir = "/nonexistent-umb";
    assert (umb_sandbox_start (&test->spec, reason, sizeof reason) == NULL);
    assert (strstr (reason, "not a directory"));
    test->spec.workdir = test->workdir;
    test->spec.id = "../x";
    assert (umb_sandbox_start (&test->spec, reason, sizeof reason) == NULL);
    s_case_destroy (test, verbose);

    //  Success: identity, environment, namespaces, read-only inputs, results
    //  copied (a symlink is skipped and reported)
    char script [2048];
    snprintf (script, sizeof script,
        "echo hello\n"
        "echo warning >&2\n"
        "echo \"UID=$(id -u) GID=$(id -g)\"\n"
        "echo \"DS=$UMBRA_DATASETS RS=$UMBRA_RESULTS PWD=$(pwd)\"\n"
        "echo \"HOST=$(cat /proc/sys/kernel/hostname)\"\n"
        "echo \"PID=$$\"\n"
        "echo \"NPROC=$(ls /proc | grep -c '^[0-9]')\"\n"
        "test -e /proc/%ld && echo SEES_HOST_PID\n"
        "echo \"IFACES=$(grep -c : /proc/net/dev)\"\n"
        "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status\n"
        "cat \"$UMBRA_DATASETS/input.txt\"\n"
        "echo x > \"$UMBRA_DATASETS/new\" 2>/dev/null && echo DATASETS_WRITABLE\n"
        "echo x > \"$UMBRA_DATASETS/input.txt\" 2>/dev/null && echo DATASETS_WRITABLE\n"
        "echo x > /umbra/new 2>/dev/null && echo WORKDIR_WRITABLE\n"
        "echo x > /etc/umb-new 2>/dev/null && echo ETC_WRITABLE\n"
        "echo x > /tmp/scratch && echo TMP_OK\n"
        "test -e %s && echo SEES_HOST_FILES\n"
        "echo result > \"$UMBRA_RESULTS/out.txt\"\n"
        "mkdir \"$UMBRA_RESULTS/sub\" && echo nested > \"$UMBRA_RESULTS/sub/n.txt\"\n"
        "ln -s /etc/passwd \"$UMBRA_RESULTS/link\"\n"
        "printf 'no newline at the end'\n",
        (long) getpid (), test->workdir);
    s_case_new (test, script, false);
    test->spec.id = ok_id;
    assert (s_case_run (test) == 0);
    assert (s_has (test, "1:hello\n"));
    assert (s_has (test, "2:warning\n"));
    assert (s_has (test, "1:UID=65534 GID=65534\n"));
    assert (s_has (test, "1:DS=/umbra/datasets RS=/umbra/results PWD=/umbra\n"));
    assert (s_has (test, "1:HOST=umbra-sandbox\n"));
    assert (strcmp (hostname, "umbra-sandbox") != 0);
    assert (s_has (test, "1:PID=2\n"));
    const char *nproc = strstr (test->capture.text, "1:NPROC=");
    assert (nproc && atoi (nproc + 8) > 0 && atoi (nproc + 8) < 10);
    assert (!s_has (test, "SEES_HOST_PID"));
    assert (s_has (test, "1:IFACES=1\n"));        //  lo only
    assert (s_has (test, "1:CapEff:\t0000000000000000\n"));
    assert (s_has (test, "1:CapBnd:\t0000000000000000\n"));
    assert (s_has (test, "1:NoNewPrivs:\t1\n"));
    assert (s_has (test, "1:Seccomp:\t2\n"));
    assert (s_has (test, "1:dataset-line\n"));
    assert (!s_has (test, "WRITABLE"));
    assert (s_has (test, "1:TMP_OK\n"));
    assert (!s_has (test, "SEES_HOST_FILES"));
    assert (s_has (test, "1:no newline at the end\n"));
    assert (s_has (test, "2:[umbra] results: 1 entries were not regular files"));
    assert (s_results_has (test, "out.txt", "result\n"));
    assert (s_results_has (test, "sub/n.txt", "nested\n"));
    char path [PATH_MAX];
    struct stat info;
    snprintf (path, sizeof path, "%s/results/link", test->workdir);
    assert (lstat (path, &info) == -1 && errno == ENOENT);
    assert (s_cgroup_dir_gone (ok_id));
    s_case_destroy (test, verbose);
    if (verbose)
        printf (" ok");

    //  Exit status, signals, exec failure
    s_case_new (test, "echo partial > \"$UMBRA_RESULTS/r\"\nexit 3\n", false);
    assert (s_case_run (test) == -1);
    assert (strcmp (test->reason, "exit status 3") == 0);
    assert (s_results_empty (test));
    s_case_destroy (test, verbose);

    s_case_new (test, "kill -SEGV $$\n", false);
    assert (s_case_run (test) == -1);
    assert (strcmp (test->reason, "killed by signal 11 (Segmentation fault)") == 0);
    s_case_destroy (test, verbose);

    s_case_new (test, "import os\nos.abort()\n", true);
    assert (s_case_run (test) == -1);
    assert (strstr (test->reason, "killed by signal 6"));
    s_case_destroy (test, verbose);

    s_case_new (test, "", false);
    test->argv [0] = "./missing-program";
    test->argv [1] = NULL;
    assert (s_case_run (test) == -1);
    assert (strcmp (test->reason, "cannot execute ./missing-program: No such file or directory") == 0);
    s_case_destroy (test, verbose);
    if (verbose)
        printf (" status");

    //  Timeout: everything is killed, nothing left behind
    snprintf (script, sizeof script, "sleep %s &\nsleep %s\n", sleeps [0], sleeps [1]);
    s_case_new (test, script, false);
    test->spec.limits.wall_timeout_ms = 1000;
    test->spec.id = timeout_id;
    struct timespec started, ended;
    clock_gettime (CLOCK_MONOTONIC, &started);
    assert (s_case_run (test) == -1);
    clock_gettime (CLOCK_MONOTONIC, &ended);
    assert (strcmp (test->reason, "wall-clock timeout after 1 s") == 0);
    assert (ended.tv_sec - started.tv_sec < 10);
    assert (!s_process_with_arg (sleeps [0]));
    assert (!s_process_with_arg (sleeps [1]));
    assert (s_cgroup_dir_gone (timeout_id));
    s_case_destroy (test, verbose);
    if (verbose)
        printf (" timeout");

    //  A background process left behind does not outlive the run, nor hold it
    snprintf (script, sizeof script, "sleep %s &\necho left-behind\n", sleeps [0]);
    s_case_new (test, script, false);
    clock_gettime (CLOCK_MONOTONIC, &started);
    assert (s_case_run (test) == 0);
    clock_gettime (CLOCK_MONOTONIC, &ended);
    assert (ended.tv_sec - started.tv_sec < 10);
    assert (s_has (test, "1:left-behind\n"));
    assert (!s_process_with_arg (sleeps [0]));
    s_case_destroy (test, verbose);

    //  Network: a listener on the host's loopback sees nothing; python runs
    //  under the filter, AF_UNIX works, AF_INET is refused
    int listener = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert (listener >= 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert (bind (listener, (struct sockaddr *) &address, sizeof address) == 0);
    assert (listen (listener, 8) == 0);
    socklen_t address_len = sizeof address;
    assert (getsockname (listener, (struct sockaddr *) &address, &address_len) == 0);
    snprintf (script, sizeof script,
        "import socket\n"
        "a, b = socket.socketpair()\n"
        "a.sendall(b'x'); assert b.recv(1) == b'x'\n"
        "print('UNIX_OK', flush=True)\n"
        "import subprocess, threading\n"
        "subprocess.run(['true'], check=True)\n"
        "t = threading.Thread(target=print, args=('THREAD_OK',)); t.start(); t.join()\n"
        "socket.create_connection(('127.0.0.1', %d), timeout=5)\n"
        "print('CONNECTED')\n", ntohs (address.sin_port));
    s_case_new (test, script, true);
    assert (s_case_run (test) == -1);
    assert (strcmp (test->reason, "exit status 1") == 0);
    assert (s_has (test, "1:UNIX_OK\n"));
    assert (s_has (test, "1:THREAD_OK\n"));
    assert (!s_has (test, "CONNECTED"));
    assert (s_has (test, "PermissionError"));
    struct pollfd item = { listener, POLLIN, 0 };
    assert (poll (&item, 1, 0) == 0);
    assert (accept (listener, NULL, NULL) == -1 && errno == EAGAIN);
    close (listener);
    s_case_destroy (test, verbose);
    if (verbose)
        printf (" network");

    //  Results cap: the tmpfs fills, the run fails, nothing is copied
    s_case_new (test,
        "dd if=/dev/zero of=\"$UMBRA_RESULTS/big\" bs=65536 count=32 2>/dev/null\n"
        "echo \"dd=$?\"\n"
        "exit 0\n", false);
    assert (s_case_run (test) == -1);
    assert (strcmp (test->reason, "results exceed the cap of 1048576 bytes") == 0);
    assert (!s_has (test, "dd=0"));
    assert (s_results_empty (test));
    s_case_destroy (test, verbose);

    //  Too deep a tree is refused, not copied
    s_case_new (test, "d=\"$UMBRA_RESULTS\"; for i in $(seq 70); do d=$d/d; mkdir $d; done\n", false);
    assert (s_case_run (test) == -1);
    assert (strcmp (test->reason, "cannot copy the results: the results are nested deeper "
                                  "than 64 directories") == 0);
    assert (s_results_empty (test));
    s_case_destroy (test, verbose);

    //  Exactly the cap fits
    s_case_new (test, "head -c 1048576 /dev/zero > \"$UMBRA_RESULTS/exact\"\n", false);
    assert (s_case_run (test) == 0);
    snprintf (path, sizeof path, "%s/results/exact", test->workdir);
    assert (stat (path, &info) == 0 && info.st_size == 1048576);
    s_case_destroy (test, verbose);
    if (verbose)
        printf (" cap");

    //  Output bounds: a long line is cut, lines past the total are dropped
    s_case_new (test,
        "printf '%0100d\\n' 7\n"
        "i=0; while [ $i -lt 50 ]; do echo line$i; i=$((i+1)); done\n", false);
    test->spec.limits.output_line_max = 16;
    test->spec.limits.output_bytes_max = 100;
    assert (s_case_run (test) == 0);
    assert (s_has (test, "1:0000000000000000 [line cut]\n"));
    assert (s_has (test, "1:line0\n"));
    assert (!s_has (test, "1:line49\n"));
    assert (s_has (test, "2:[umbra] "));
    assert (s_has (test, "lines ("));
    assert (s_has (test, "of output dropped past the limit of 100 bytes"));
    s_case_destroy (test, verbose);
    //  Lots of output: read as it comes (no pipe stall), bounded
    s_case_new (test, "head -c 5000000 /dev/zero | tr '\\0' a | fold -w 99\necho done >&2\n", false);
    test->spec.limits.output_bytes_max = 10000;
    assert (s_case_run (test) == 0);
    assert (test->capture.lines == 100 + 1);     //  100 lines of 99 + newline, the summary
    //  50505 lines of 99 bytes, one of 5 and "done": all but the first 100
    assert (s_has (test, "2:[umbra] 50407 lines (4990104 bytes) of output dropped"));
    s_case_destroy (test, verbose);
    if (verbose)
        printf (" output");

    //  Event-loop use and kill
    snprintf (script, sizeof script, "echo started\nexec sleep %s\n", sleeps [2]);
    s_case_new (test, script, false);
    umb_sandbox_t *sandbox = umb_sandbox_start (&test->spec, reason, sizeof reason);
    assert (sandbox);
    assert (umb_sandbox_pid (sandbox) > 0);
    while (!s_has (test, "1:started\n")) {
        struct pollfd waiting = { umb_sandbox_fd (sandbox), POLLIN, 0 };
        assert (poll (&waiting, 1, 10000) == 1);
        assert (umb_sandbox_handle (sandbox) == 0);
    }
    assert (!umb_sandbox_done (sandbox));
    umb_sandbox_kill (sandbox);
    while (!umb_sandbox_done (sandbox)) {
        struct pollfd waiting = { umb_sandbox_fd (sandbox), POLLIN, 0 };
        assert (poll (&waiting, 1, 10000) == 1);
        umb_sandbox_handle (sandbox);
    }
    assert (umb_sandbox_handle (sandbox) == -1);
    assert (umb_sandbox_outcome (sandbox, reason, sizeof reason) == -1);
    assert (strcmp (reason, "killed") == 0);
    assert (!s_process_with_arg (sleeps [2]));
    umb_sandbox_destroy (&sandbox);
    assert (sandbox == NULL);
    umb_sandbox_destroy (&sandbox);
    //  Destroy while running
    sandbox = umb_sandbox_start (&test->spec, reason, sizeof reason);
    assert (sandbox);
    umb_sandbox_destroy (&sandbox);
    assert (!s_process_with_arg (sleeps [2]));
    s_case_destroy (test, verbose);
    if (verbose)
        printf (" kill");

    //  cgroup limits (only where a cgroup hierarchy is writable)
    umb_cgroup_limits_t probe_limits = { .memory_bytes = 64 << 20, .pids = 8 };
    umb_cgroup_t *probe = umb_cgroup_new (NULL, probe_id, &probe_limits, reason, sizeof reason);
    bool cgroups = probe != NULL;
    umb_cgroup_destroy (&probe);
    if (cgroups) {
        //  A fork bomb stops at the pids limit
        snprintf (script, sizeof script,
            "i=0; while [ $i -lt 40 ]; do sleep %s & i=$((i+1)); done\n"
            "echo spawned-all\n", sleeps [3]);
        s_case_new (test, script, false);
        test->spec.limits.pids = 8;
        test->spec.limits.wall_timeout_ms = 20000;
        assert (s_case_run (test) == -1);
        assert (strstr (test->reason, "(process limit of 8 reached)"));
        assert (!s_has (test, "spawned-all"));
        assert (!s_process_with_arg (sleeps [3]));
        s_case_destroy (test, verbose);

        //  Memory: the OOM kill is reported
        s_case_new (test, "data = b'x' * (512 << 20)\nprint('allocated')\n", true);
        test->spec.limits.memory_bytes = 64 << 20;
        assert (s_case_run (test) == -1);
        assert (strncmp (test->reason, "memory limit exceeded", 21) == 0);
        assert (!s_has (test, "allocated"));
        s_case_destroy (test, verbose);
        if (verbose)
            printf (" cgroup");
    }
    else
    if (verbose)
        printf (" (no cgroups: %s)", reason);

    //  Without a writable cgroup: refused when required, else rlimits stand
    //  in (RLIMIT_NPROC counts all of the uid's processes, so it is only
    //  checked as a limit on forks here) and the output says so
    s_case_new (test,
        "ulimit -v; ulimit -p\n"
        "i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done\n"
        "echo spawned-all\n", false);
    test->spec.cgroup_root = "/nonexistent-cgroup-root";
    test->spec.require_cgroup = true;
    assert (umb_sandbox_start (&test->spec, reason, sizeof reason) == NULL);
    assert (strstr (reason, "no writable cgroup"));
    test->spec.require_cgroup = false;
    test->spec.limits.memory_bytes = 128 << 20;
    test->spec.limits.pids = 20;
    assert (s_case_run (test) == -1);
    assert (strcmp (test->reason, "exit status 2") == 0);
    assert (s_has (test, "1:131072\n"));        //  RLIMIT_AS in KiB
    assert (s_has (test, "1:20\n"));
    assert (s_has (test, "Cannot fork"));
    assert (!s_has (test, "spawned-all"));
    assert (s_has (test, "2:[umbra] no writable cgroup"));
    s_case_destroy (test, verbose);

    //  A v2 hierarchy (hybrid hosts mount an empty one): the run goes through
    //  the v2 cgroup when it holds no limits
    if (access ("/sys/fs/cgroup/unified/cgroup.controllers", W_OK) == 0) {
        s_case_new (test, "cat /proc/self/cgroup\n", false);
        test->spec.cgroup_root = "/sys/fs/cgroup/unified";
        test->spec.require_cgroup = true;
        test->spec.limits.memory_bytes = 0;
        test->spec.limits.pids = 0;
        test->spec.id = ok_id;
        assert (s_case_run (test) == 0);
        snprintf (script, sizeof script, "1:0::/umbra/%s\n", ok_id);
        assert (s_has (test, script) || s_has (test, "1:0::/\n"));   //  cgroup ns may hide it
        assert (!s_has (test, "[umbra]"));
        snprintf (path, sizeof path, "/sys/fs/cgroup/unified/umbra/%s", ok_id);
        assert (access (path, F_OK) == -1);
        s_case_destroy (test, verbose);
        if (verbose)
            printf (" v2");
    }
    free (test);
    if (verbose)
        printf (" OK\n");
}
