//  umb_seccomp - the seccomp filter the algorithm runs under (libseccomp)
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <seccomp.h>
#include "umb_seccomp.h"
#include "umb_reason.h"

static const char *const s_denied [] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "mount", "umount2", "pivot_root", "chroot",
    "fsopen", "fsmount", "fsconfig", "fspick", "move_mount", "open_tree", "mount_setattr",
    "unshare", "setns",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "open_by_handle_at", "name_to_handle_at", "fanotify_init",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "iopl", "ioperm",
    "modify_ldt", "uselib", "vhangup", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "sethostname", "setdomainname",
    NULL
};

#ifndef CLONE_NEWTIME
#   define CLONE_NEWTIME 0x00000080
#endif
static const uint64_t s_clone_flags [] = {
    CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
    CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME
};

static const uint64_t s_personality_flags [] = {
    ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, MMAP_PAGE_ZERO
};

int
umb_seccomp_apply (char *reason, size_t reason_size)
{
    if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
        umb_reason_set (reason, reason_size, "PR_SET_NO_NEW_PRIVS: %s", strerror (errno));
        return -1;
    }
    scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ALLOW);
    if (!ctx) {
        umb_reason_set (reason, reason_size, "seccomp_init failed");
        return -1;
    }
    int rc = 0;
    const char *failed = NULL;
    for (size_t i = 0; s_denied [i] && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name (s_denied [i]);
        if (nr == __NR_SCMP_ERROR)
            continue;
        rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), nr, 0);
        failed = s_denied [i];
    }
    if (rc == 0) {
        failed = "socket";
        rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (socket), 1,
                               SCMP_A0 (SCMP_CMP_NE, AF_UNIX));
    }
    for (size_t i = 0; i < sizeof s_clone_flags / sizeof s_clone_flags [0] && rc == 0; i++) {
        failed = "clone";
        rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (clone), 1,
                               SCMP_A0 (SCMP_CMP_MASKED_EQ, s_clone_flags [i], s_clone_flags [i]));
    }
    if (rc == 0) {
        failed = "clone3";
        int nr = seccomp_syscall_resolve_name ("clone3");
        if (nr != __NR_SCMP_ERROR)
            rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (ENOSYS), nr, 0);
    }
    for (size_t i = 0; i < sizeof s_personality_flags / sizeof s_personality_flags [0] && rc == 0; i++) {
        failed = "personality";
        //  0xffffffff (query) has every bit set: leave it alone
        rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (personality), 2,
                               SCMP_A0 (SCMP_CMP_MASKED_EQ, s_personality_flags [i], s_personality_flags [i]),
                               SCMP_A0 (SCMP_CMP_NE, 0xffffffff));
        if (rc == -EINVAL)      //  older libseccomp: one comparison per argument
            rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (personality), 1,
                                   SCMP_A0 (SCMP_CMP_EQ, s_personality_flags [i]));
    }
    if (rc) {
        umb_reason_set (reason, reason_size, "seccomp rule for %s: %s", failed, strerror (-rc));
        seccomp_release (ctx);
        return -1;
    }
    rc = seccomp_load (ctx);
    seccomp_release (ctx);
    if (rc) {
        umb_reason_set (reason, reason_size, "seccomp_load: %s", strerror (-rc));
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest: each check runs in a forked child under the filter; the child's
//  exit code is the number of the first failed check (0 = all passed)

static int
s_child_checks (void)
{
    char reason [256];
    if (umb_seccomp_apply (reason, sizeof reason))
        return 1;
    errno = 0;
    if (socket (AF_INET, SOCK_STREAM, 0) != -1 || errno != EPERM)
        return 2;
    if (socket (AF_INET6, SOCK_DGRAM, 0) != -1 || errno != EPERM)
        return 3;
    if (socket (AF_NETLINK, SOCK_RAW, 0) != -1 || errno != EPERM)
        return 4;
    int fds [2];
    if (socketpair (AF_UNIX, SOCK_STREAM, 0, fds))
        return 5;
    close (fds [0]);
    close (fds [1]);
    int fd = socket (AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0)
        return 6;
    close (fd);
    if (unshare (CLONE_NEWNET) != -1 || errno != EPERM)
        return 7;
    if (syscall (SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0) != -1 || errno != EPERM)
        return 8;
    if (syscall (SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0) != -1 || errno != EPERM)
        return 9;
    if (syscall (SYS_mount, "none", "/tmp", "tmpfs", 0, NULL) != -1 || errno != EPERM)
        return 10;
    if (syscall (SYS_bpf, 0, NULL, 0) != -1 || errno != EPERM)
        return 11;
    if (personality (0xffffffff) == -1)
        return 12;
    if (personality (PER_LINUX | ADDR_NO_RANDOMIZE) != -1 || errno != EPERM)
        return 13;
#ifdef SYS_clone3
    if (syscall (SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
        return 14;
#endif
    //  Plain fork and threads still work (fork goes through clone)
    pid_t pid = fork ();
    if (pid < 0)
        return 15;
    if (pid == 0)
        _exit (7);
    int status;
    if (waitpid (pid, &status, 0) != pid || !WIFEXITED (status) || WEXITSTATUS (status) != 7)
        return 16;
    return 0;
}

void
umb_seccomp_test (bool verbose)
{
    if (verbose)
        printf (" * umb_seccomp:");
    pid_t pid = fork ();
    assert (pid >= 0);
    if (pid == 0)
        _exit (s_child_checks ());
    int status;
    assert (waitpid (pid, &status, 0) == pid);
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        fprintf (stderr, "umb_seccomp: child check %d failed\n",
                 WIFEXITED (status)? WEXITSTATUS (status): -WTERMSIG (status));
    assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    //  The parent is untouched
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    close (fd);
    if (verbose)
        printf (" OK\n");
}
