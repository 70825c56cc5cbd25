//  umb_cli_agent - the participants' commands that talk to an agent
//
//      umbra algo FILE --key KEY --agent ENDPOINT [--type bin|python] [--args ARG]...
//      umbra data FILE --key KEY --agent ENDPOINT
//      umbra result --key KEY --agent ENDPOINT -o DIR [--force]
//      umbra agent status --agent ENDPOINT [--json]
//      umbra attestation get --agent ENDPOINT [--out FILE] [--json]
//
//  Options of every command:
//      --policy FILE           attestation policy (umb_verify)
//      --insecure-dev          accept an agent without a TEE (platform none);
//                              a usage error (2) with a real platform
//      --attest-endpoint EP    the attestation endpoint (default: port + 1 of --agent)
//      --timeout SECONDS       each request's budget (default 60)
//
//  algo/data: the file is hashed (SHA3-256: the manifest entry), signed over
//  a fresh challenge with KEY (a private key PEM) and streamed. --type/--args
//  are informational (the manifest decides): a warning if the agent reports
//  others. result: fetches the results/ tar, checks its hash, and unpacks it
//  safely into DIR (no absolute paths, no "..", no links leaving DIR, no
//  devices; existing files are not replaced unless --force). A progress bar
//  goes to stderr when it is a terminal. Exit codes: 0 done, 1 refused or
//  failed (the agent's reason on stderr), 2 usage error.
#ifndef UMB_CLI_AGENT_H_INCLUDED
#define UMB_CLI_AGENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  argv [0] is the command name ("algo", "data", "result", "agent")
int  umb_cli_agent_algo (int argc, char **argv);
int  umb_cli_agent_data (int argc, char **argv);
int  umb_cli_agent_result (int argc, char **argv);
int  umb_cli_agent (int argc, char **argv);
//  argv [0] is "get" (the attestation command's subcommand)
int  umb_cli_agent_attestation_get (int argc, char **argv);

//  Unpacks the ustar archive at tar_path into dir (which must exist): first
//  into a fresh directory inside dir, refusing absolute names, "..", links
//  that leave the tree, hard links, devices and FIFOs; then moves the files
//  into dir, refusing any that exist unless force (nothing is moved then). A
//  single top-level "results/" directory is stripped. 0, or -1 with the reason.
int  umb_cli_agent_untar (const char *tar_path, const char *dir, bool force,
                          char *reason, size_t reason_size);

void umb_cli_agent_test (bool verbose);

#endif
