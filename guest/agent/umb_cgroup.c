//  umb_cgroup - a per-run cgroup (v2, or v1 memory/pids/cpu) with limits and counters
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "umb_cgroup.h"
#include "umb_reason.h"

#define S_ROOT_DEFAULT  "/sys/fs/cgroup"
#define S_CPU_PERIOD_US 100000

//  v1 hierarchies, in this order in dirs []
enum { S_MEMORY = 0, S_PIDS = 1, S_CPU = 2, S_NDIRS = 3 };
static const char *const s_v1_names [S_NDIRS] = { "memory", "pids", "cpu" };

struct _umb_cgroup_t {
    int version;
    char *dirs [S_NDIRS];       //  v2: dirs [0] only; v1: NULL where not mounted
};

static int
s_write (const char *dir, const char *file, const char *text)
{
    char path [4096];
    if (snprintf (path, sizeof path, "%s/%s", dir, file) >= (int) sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open (path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen (text);
    ssize_t rc = write (fd, text, len);
    int saved = errno;
    close (fd);
    errno = saved;
    return rc == (ssize_t) len? 0: -1;
}

//  Reads a small file, NUL-terminated; -1 if missing
static int
s_read (const char *dir, const char *file, char *buffer, size_t size)
{
    char path [4096];
    if (snprintf (path, sizeof path, "%s/%s", dir, file) >= (int) sizeof path)
        return -1;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t have = 0;
    while (have + 1 < size) {
        ssize_t rc = read (fd, buffer + have, size - 1 - have);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            break;
        have += (size_t) rc;
    }
    close (fd);
    buffer [have] = 0;
    return 0;
}

static bool
s_exists (const char *dir, const char *file)
{
    char path [4096];
    if (snprintf (path, sizeof path, "%s/%s", dir, file) >= (int) sizeof path)
        return false;
    return access (path, F_OK) == 0;
}

//  The value after "key " in a flat-keyed file, or 0
static uint64_t
s_keyed (const char *dir, const char *file, const char *key)
{
    char buffer [4096];
    if (s_read (dir, file, buffer, sizeof buffer))
        return 0;
    size_t key_len = strlen (key);
    for (char *line = buffer; line && *line; ) {
        char *next = strchr (line, '\n');
        if (next)
            *next++ = 0;
        if (strncmp (line, key, key_len) == 0 && line [key_len] == ' ')
            return strtoull (line + key_len + 1, NULL, 10);
        line = next;
    }
    return 0;
}

//  mkdir that accepts an existing directory
static int
s_mkdir (const char *path)
{
    if (mkdir (path, 0755) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

//  This process's path in the v1 hierarchy holding controller, "" for the root
static int
s_v1_own_path (const char *controller, char *path, size_t size)
{
    FILE *file = fopen ("/proc/self/cgroup", "re");
    if (!file)
        return -1;
    char line [4096];
    int rc = -1;
    while (fgets (line, sizeof line, file)) {
        line [strcspn (line, "\n")] = 0;
        char *controllers = strchr (line, ':');
        char *own = controllers? strchr (controllers + 1, ':'): NULL;
        if (!own)
            continue;
        *own++ = 0;
        controllers++;
        for (char *save = NULL, *name = strtok_r (controllers, ",", &save); name;
             name = strtok_r (NULL, ",", &save))
            if (strcmp (name, controller) == 0) {
                snprintf (path, size, "%s", strcmp (own, "/") == 0? "": own);
                rc = 0;
            }
        if (rc == 0)
            break;
    }
    fclose (file);
    return rc;
}

bool
umb_cgroup_name_valid (const char *name)
{
    if (!name || !*name || strlen (name) > 128 || strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
           || *c == '_' || *c == '-' || *c == '.'))
            return false;
    return true;
}

static int
s_new_v2 (umb_cgroup_t *self, const char *root, const char *name,
          const umb_cgroup_limits_t *limits, char *reason, size_t reason_size)
{
    char base [4096], dir [4096];
    snprintf (base, sizeof base, "%s/umbra", root);
    if (snprintf (dir, sizeof dir, "%s/%s", base, name) >= (int) sizeof dir
    ||  s_mkdir (base)) {
        umb_reason_set (reason, reason_size, "cannot create cgroup %s: %s", base, strerror (errno));
        return -1;
    }
    //  Best effort: a controller that cannot be enabled is caught below if a
    //  limit needs it
    static const char *const controllers [] = { "+memory", "+pids", "+cpu" };
    for (size_t i = 0; i < sizeof controllers / sizeof controllers [0]; i++) {
        s_write (root, "cgroup.subtree_control", controllers [i]);
        s_write (base, "cgroup.subtree_control", controllers [i]);
    }
    if (s_mkdir (dir)) {
        umb_reason_set (reason, reason_size, "cannot create cgroup %s: %s", dir, strerror (errno));
        return -1;
    }
    self->dirs [0] = strdup (dir);
    assert (self->dirs [0]);
    char value [64];
    if (limits->memory_bytes) {
        snprintf (value, sizeof value, "%llu", (unsigned long long) limits->memory_bytes);
        if (s_write (dir, "memory.max", value)) {
            umb_reason_set (reason, reason_size, "cannot set %s/memory.max: %s", dir, strerror (errno));
            return -1;
        }
        s_write (dir, "memory.swap.max", "0");
    }
    if (limits->pids) {
        snprintf (value, sizeof value, "%llu", (unsigned long long) limits->pids);
        if (s_write (dir, "pids.max", value)) {
            umb_reason_set (reason, reason_size, "cannot set %s/pids.max: %s", dir, strerror (errno));
            return -1;
        }
    }
    if (limits->cpus > 0) {
        unsigned long long quota = (unsigned long long) (limits->cpus * S_CPU_PERIOD_US);
        if (quota < 1000)
            quota = 1000;
        snprintf (value, sizeof value, "%llu %d", quota, S_CPU_PERIOD_US);
        if (s_write (dir, "cpu.max", value)) {
            umb_reason_set (reason, reason_size, "cannot set %s/cpu.max: %s", dir, strerror (errno));
            return -1;
        }
    }
    return 0;
}

static int
s_new_v1 (umb_cgroup_t *self, const char *root, const char *name,
          const umb_cgroup_limits_t *limits, char *reason, size_t reason_size)
{
    const bool wanted [S_NDIRS] = {
        limits->memory_bytes > 0, limits->pids > 0, limits->cpus > 0
    };
    int created = 0;
    for (int index = 0; index < S_NDIRS; index++) {
        char mount [4096], own [2048], base [4096], dir [4096];
        snprintf (mount, sizeof mount, "%s/%s", root, s_v1_names [index]);
        if (access (mount, W_OK) || s_exists (mount, "cgroup.procs") == false
        ||  s_v1_own_path (s_v1_names [index], own, sizeof own)) {
            if (wanted [index]) {
                umb_reason_set (reason, reason_size, "no writable cgroup v1 %s hierarchy under %s",
                                s_v1_names [index], root);
                return -1;
            }
            continue;
        }
        if (snprintf (base, sizeof base, "%s%s/umbra", mount, own) >= (int) sizeof base
        ||  snprintf (dir, sizeof dir, "%s/%s", base, name) >= (int) sizeof dir
        ||  s_mkdir (base) || s_mkdir (dir)) {
            if (wanted [index]) {
                umb_reason_set (reason, reason_size, "cannot create cgroup %s: %s", dir, strerror (errno));
                return -1;
            }
            continue;
        }
        self->dirs [index] = strdup (dir);
        assert (self->dirs [index]);
        created++;
    }
    if (created == 0) {
        umb_reason_set (reason, reason_size, "no writable cgroup hierarchy under %s", root);
        return -1;
    }
    char value [64];
    if (limits->memory_bytes) {
        const char *dir = self->dirs [S_MEMORY];
        snprintf (value, sizeof value, "%llu", (unsigned long long) limits->memory_bytes);
        //  memsw must stay >= the limit: raise it first if it was lower (reused)
        if (s_exists (dir, "memory.memsw.limit_in_bytes"))
            s_write (dir, "memory.memsw.limit_in_bytes", "-1");
        if (s_write (dir, "memory.limit_in_bytes", value)) {
            umb_reason_set (reason, reason_size, "cannot set %s/memory.limit_in_bytes: %s",
                            dir, strerror (errno));
            return -1;
        }
        //  No swapping around the limit where swap accounting exists
        if (s_exists (dir, "memory.memsw.limit_in_bytes"))
            s_write (dir, "memory.memsw.limit_in_bytes", value);
    }
    if (limits->pids) {
        snprintf (value, sizeof value, "%llu", (unsigned long long) limits->pids);
        if (s_write (self->dirs [S_PIDS], "pids.max", value)) {
            umb_reason_set (reason, reason_size, "cannot set %s/pids.max: %s",
                            self->dirs [S_PIDS], strerror (errno));
            return -1;
        }
    }
    if (limits->cpus > 0) {
        const char *dir = self->dirs [S_CPU];
        long long quota = (long long) (limits->cpus * S_CPU_PERIOD_US);
        if (quota < 1000)
            quota = 1000;
        snprintf (value, sizeof value, "%lld", quota);
        if (s_write (dir, "cpu.cfs_period_us", "100000")
        ||  s_write (dir, "cpu.cfs_quota_us", value)) {
            umb_reason_set (reason, reason_size, "cannot set %s/cpu.cfs_quota_us: %s",
                            dir, strerror (errno));
            return -1;
        }
    }
    return 0;
}

umb_cgroup_t *
umb_cgroup_new (const char *root, const char *name,
                const umb_cgroup_limits_t *limits, char *reason, size_t reason_size)
{
    assert (limits);
    if (!umb_cgroup_name_valid (name)) {
        umb_reason_set (reason, reason_size, "invalid cgroup name");
        return NULL;
    }
    if (!root)
        root = S_ROOT_DEFAULT;
    umb_cgroup_t *self = calloc (1, sizeof (umb_cgroup_t));
    assert (self);
    int rc;
    if (s_exists (root, "cgroup.controllers")) {
        self->version = 2;
        rc = s_new_v2 (self, root, name, limits, reason, reason_size);
    }
    else {
        self->version = 1;
        rc = s_new_v1 (self, root, name, limits, reason, reason_size);
    }
    if (rc)
        umb_cgroup_destroy (&self);
    return self;
}

int
umb_cgroup_kill (umb_cgroup_t *self)
{
    assert (self);
    int signalled = 0;
    for (int index = 0; index < S_NDIRS; index++) {
        const char *dir = self->dirs [index];
        if (!dir)
            continue;
        if (self->version == 2 && s_exists (dir, "cgroup.kill")) {
            int count = umb_cgroup_count (self);
            if (s_write (dir, "cgroup.kill", "1") == 0)
                return count > 0? count: 0;
        }
        char path [4096];
        snprintf (path, sizeof path, "%s/cgroup.procs", dir);
        FILE *file = fopen (path, "re");
        if (!file)
            continue;
        long pid;
        while (fscanf (file, "%ld", &pid) == 1)
            if (pid > 0 && kill ((pid_t) pid, SIGKILL) == 0)
                signalled++;
        fclose (file);
    }
    return signalled;
}

int
umb_cgroup_count (umb_cgroup_t *self)
{
    assert (self);
    int most = -1;
    for (int index = 0; index < S_NDIRS; index++) {
        if (!self->dirs [index])
            continue;
        char path [4096];
        snprintf (path, sizeof path, "%s/cgroup.procs", self->dirs [index]);
        FILE *file = fopen (path, "re");
        if (!file)
            return -1;
        int count = 0;
        long pid;
        while (fscanf (file, "%ld", &pid) == 1)
            count++;
        fclose (file);
        if (count > most)
            most = count;
    }
    return most;
}

void
umb_cgroup_destroy (umb_cgroup_t **self_p)
{
    assert (self_p);
    umb_cgroup_t *self = *self_p;
    if (!self)
        return;
    //  Killed processes leave the cgroup when their exit completes, which is
    //  quick but not instant; give them up to 2 s
    for (int attempt = 0; attempt < 400; attempt++) {
        if (umb_cgroup_count (self) <= 0)
            break;
        umb_cgroup_kill (self);
        struct timespec pause = { 0, 5 * 1000 * 1000 };
        nanosleep (&pause, NULL);
    }
    for (int index = 0; index < S_NDIRS; index++) {
        if (!self->dirs [index])
            continue;
        for (int attempt = 0; attempt < 100; attempt++) {
            if (rmdir (self->dirs [index]) == 0 || errno == ENOENT)
                break;
            if (errno != EBUSY)
                break;
            struct timespec pause = { 0, 5 * 1000 * 1000 };
            nanosleep (&pause, NULL);
        }
        free (self->dirs [index]);
    }
    free (self);
    *self_p = NULL;
}

int
umb_cgroup_version (umb_cgroup_t *self)
{
    assert (self);
    return self->version;
}

const char *
umb_cgroup_path (umb_cgroup_t *self)
{
    assert (self);
    for (int index = 0; index < S_NDIRS; index++)
        if (self->dirs [index])
            return self->dirs [index];
    return NULL;
}

int
umb_cgroup_attach (umb_cgroup_t *self, pid_t pid, char *reason, size_t reason_size)
{
    assert (self);
    char value [32];
    snprintf (value, sizeof value, "%ld", (long) pid);
    for (int index = 0; index < S_NDIRS; index++) {
        if (!self->dirs [index])
            continue;
        if (s_write (self->dirs [index], "cgroup.procs", value)) {
            umb_reason_set (reason, reason_size, "cannot move pid %ld into %s: %s",
                            (long) pid, self->dirs [index], strerror (errno));
            return -1;
        }
    }
    return 0;
}

uint64_t
umb_cgroup_oom_kills (umb_cgroup_t *self)
{
    assert (self);
    if (self->version == 2)
        return s_keyed (self->dirs [0], "memory.events", "oom_kill");
    const char *dir = self->dirs [S_MEMORY];
    if (!dir)
        return 0;
    char buffer [1024];
    if (s_read (dir, "memory.oom_control", buffer, sizeof buffer) == 0 && strstr (buffer, "oom_kill "))
        return s_keyed (dir, "memory.oom_control", "oom_kill");
    //  Old kernels without the counter: the limit was at least reached
    if (s_read (dir, "memory.failcnt", buffer, sizeof buffer) == 0 && strtoull (buffer, NULL, 10) > 0)
        return 1;
    return 0;
}

uint64_t
umb_cgroup_pids_max_hits (umb_cgroup_t *self)
{
    assert (self);
    const char *dir = self->version == 2? self->dirs [0]: self->dirs [S_PIDS];
    return dir? s_keyed (dir, "pids.events", "max"): 0;
}

//  --------------------------------------------------------------------------
//  Selftest

static void
s_test_hierarchy (bool verbose, const char *root, const umb_cgroup_limits_t *limits)
{
    char reason [256] = "";
    char name [64];
    snprintf (name, sizeof name, "selftest-%ld", (long) getpid ());
    umb_cgroup_t *cgroup = umb_cgroup_new (root, name, limits, reason, sizeof reason);
    if (!cgroup) {
        if (verbose)
            printf (" (no writable cgroups under %s: %s)", root, reason);
        return;
    }
    char path [4096];
    snprintf (path, sizeof path, "%s", umb_cgroup_path (cgroup));
    struct stat info;
    assert (stat (path, &info) == 0 && S_ISDIR (info.st_mode));
    char buffer [256];
    if (umb_cgroup_version (cgroup) == 1 && limits->memory_bytes) {
        assert (s_read (path, "memory.limit_in_bytes", buffer, sizeof buffer) == 0);
        assert (strtoull (buffer, NULL, 10) == limits->memory_bytes);
    }
    assert (umb_cgroup_count (cgroup) == 0);
    assert (umb_cgroup_oom_kills (cgroup) == 0);

    //  A child blocked on a pipe, moved in, killed through the cgroup
    int pipe_fds [2];
    assert (pipe2 (pipe_fds, O_CLOEXEC) == 0);
    pid_t pid = fork ();
    assert (pid >= 0);
    if (pid == 0) {
        close (pipe_fds [1]);
        char byte;
        ssize_t rc = read (pipe_fds [0], &byte, 1);
        _exit (rc == 1? 0: 3);
    }
    close (pipe_fds [0]);
    assert (umb_cgroup_attach (cgroup, pid, reason, sizeof reason) == 0);
    assert (umb_cgroup_count (cgroup) == 1);
    assert (umb_cgroup_kill (cgroup) >= 1);
    int status;
    assert (waitpid (pid, &status, 0) == pid);
    assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
    close (pipe_fds [1]);

    int version = umb_cgroup_version (cgroup);
    umb_cgroup_destroy (&cgroup);
    assert (cgroup == NULL);
    assert (stat (path, &info) == -1 && errno == ENOENT);
    umb_cgroup_destroy (&cgroup);
    if (verbose)
        printf (" v%d", version);
}

void
umb_cgroup_test (bool verbose)
{
    if (verbose)
        printf (" * umb_cgroup:");
    char reason [256];
    umb_cgroup_limits_t none = { 0 };
    char longest [130];
    memset (longest, 'a', 128);
    longest [128] = 0;
    assert (umb_cgroup_name_valid ("run-1_a.B") && umb_cgroup_name_valid (longest));
    longest [128] = 'a';
    longest [129] = 0;
    assert (!umb_cgroup_name_valid (longest));
    assert (!umb_cgroup_name_valid (NULL) && !umb_cgroup_name_valid ("") && !umb_cgroup_name_valid ("."));
    assert (!umb_cgroup_name_valid ("..") && !umb_cgroup_name_valid ("a/b") && !umb_cgroup_name_valid ("a b"));
    assert (umb_cgroup_new (NULL, "../escape", &none, reason, sizeof reason) == NULL);
    assert (umb_cgroup_new (NULL, "", &none, reason, sizeof reason) == NULL);
    assert (umb_cgroup_new ("/nonexistent-cgroup-root", "x", &none, reason, sizeof reason) == NULL);

    //  The default hierarchy, with limits
    umb_cgroup_limits_t limits = { .memory_bytes = 64 << 20, .pids = 16, .cpus = 0.5 };
    s_test_hierarchy (verbose, S_ROOT_DEFAULT, &limits);
    //  A v2 hierarchy without controllers (hybrid hosts mount one here):
    //  exercises the v2 paths; a limit it cannot hold is refused
    if (access ("/sys/fs/cgroup/unified/cgroup.controllers", W_OK) == 0) {
        s_test_hierarchy (verbose, "/sys/fs/cgroup/unified", &none);
        char buffer [256] = "";
        s_read ("/sys/fs/cgroup/unified", "cgroup.controllers", buffer, sizeof buffer);
        if (!strstr (buffer, "memory")) {
            umb_cgroup_limits_t memory = { .memory_bytes = 64 << 20 };
            char name [64];
            snprintf (name, sizeof name, "selftest-nomem-%ld", (long) getpid ());
            assert (umb_cgroup_new ("/sys/fs/cgroup/unified", name, &memory,
                                    reason, sizeof reason) == NULL);
            assert (strstr (reason, "memory.max"));
            char path [256];
            snprintf (path, sizeof path, "/sys/fs/cgroup/unified/umbra/%s", name);
            assert (access (path, F_OK) == -1);
        }
    }
    if (verbose)
        printf (" OK\n");
}
