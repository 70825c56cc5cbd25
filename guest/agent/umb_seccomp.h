//  umb_seccomp - the seccomp filter the algorithm runs under (libseccomp)
//
//  Default allow, with a deny list answered by EPERM (the call fails, the
//  process lives on):
//    - socket () for every family except AF_UNIX (no network of any kind,
//      even if a namespace were misconfigured); io_uring (it can open sockets
//      behind the filter's back)
//    - ptrace, process_vm_readv/writev, kcmp, pidfd_getfd
//    - mount, umount2, pivot_root, chroot, the new mount API (fsopen, fsmount,
//      fsconfig, fspick, move_mount, open_tree, mount_setattr)
//    - unshare, setns, and clone with any CLONE_NEW* flag; clone3 answers
//      ENOSYS instead (its flags sit behind a pointer), so libc falls back to clone
//    - keyctl, add_key, request_key, bpf, perf_event_open, userfaultfd,
//      open_by_handle_at, name_to_handle_at, fanotify_init
//    - kexec_load, kexec_file_load, init_module, finit_module, delete_module,
//      reboot, swapon, swapoff, acct, quotactl, syslog, iopl, ioperm,
//      modify_ldt, uselib, vhangup, settimeofday, clock_settime, clock_adjtime,
//      adjtimex, sethostname, setdomainname
//    - personality () setting ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC or
//      MMAP_PAGE_ZERO (querying and PER_LINUX stay allowed)
//  Syscalls of other ABIs (x32, i386 through int 0x80) kill the process
//  (libseccomp's bad-architecture action). Names the running libseccomp does
//  not know are skipped.
#ifndef UMB_SECCOMP_H_INCLUDED
#define UMB_SECCOMP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Loads the filter into the calling thread (and its future children). Sets
//  PR_SET_NO_NEW_PRIVS first. 0, or -1 and the reason. Uses malloc: call it
//  in a single-threaded process (e.g. after fork, before exec).
int
    umb_seccomp_apply (char *reason, size_t reason_size);

void
    umb_seccomp_test (bool verbose);

#endif
