//  umb_cli_demo - `umbra demo`: one real computation end to end, told step by
//  step: the platform (in this process, or one running at --url), four users
//  and their workspace, their signing keys, a computation with its keys and
//  hashes, a TEE host, a run, the signed uploads and the result through the
//  agent's attested channel, and the workspace's audit trail verified
//
//      umbra demo [--url URL [--admin-user NAME] [--admin-password PW]] [--vm]
//                 [--state DIR] [--keep]
//
//  Without --url the services of `umbra up` run in this process on a fresh
//  temporary state directory, ipc:// endpoints in it and the gateway on a port
//  the system picks, with a generated administrator; all of it is stopped and
//  removed at the end (--keep keeps the directory; --state DIR puts the state
//  there instead, and keeps it). With --url it uses that platform and needs an
//  administrator's credentials (--admin-user and --admin-password, else
//  UMBRA_ADMIN_USERNAME and UMBRA_ADMIN_PASSWORD). Users and the workspace get
//  random suffixes and the users random passwords; the administrator signs in
//  first and, on a platform that outlives the demo (--url, --state) and unless
//  --keep, disables the demo's users and removes its host at the end.
//
//  The computation runs on process:/// (umbra-agent as a child of the
//  backends service, insecure_dev: nothing is attested, and the demo says so)
//  or with --vm in a VM on qemu:///system (TCG).
//
//  Exit codes: 0 the result came back and the audit trail verified, 1 a step
//  failed (which one and why on stderr), 2 usage error.
#ifndef UMB_CLI_DEMO_H_INCLUDED
#define UMB_CLI_DEMO_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

//  argv [0] is "demo".
int  umb_cli_demo (int argc, char **argv);

//  The same, with the environment (UMBRA_ADMIN_*, UMBRA_LOG_LEVEL, TMPDIR)
//  and the streams given. --admin-password's argument is overwritten once
//  read, so argv's strings must be writable. Without --url it runs the
//  platform through umb_program_run: call it from the main thread, before any
//  other thread starts, as `umbra up` does.
int  umb_cli_demo_run (int argc, char **argv, char **envp, FILE *out, FILE *err);

void umb_cli_demo_test (bool verbose);

#endif
