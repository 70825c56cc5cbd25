//  umb_cli_backends - `umbra backends` and `umbra cvms`: a workspace's TEE
//  hosts and the confidential VMs on them, through the gateway's REST API
//  (the contract is proto/msgpack/backends.md)
//
//      umbra backends register --workspace WS --name NAME --uri URI [--insecure-dev]
//      umbra backends list     --workspace WS
//      umbra backends get      --workspace WS HOST
//      umbra backends remove   --workspace WS HOST
//      umbra cvms create   --workspace WS --tee none|sev-snp|tdx --vcpus N --memory-mb M
//                          [--ttl SECONDS] [--host HOST] [--computation LABEL] [--manifest FILE]
//      umbra cvms list     --workspace WS [--state STATE] [--limit N | --page-size N]
//      umbra cvms get      --workspace WS CVM
//      umbra cvms destroy  --workspace WS CVM [--reason TEXT]
//      umbra cvms manifest --workspace WS CVM --manifest FILE
//      umbra cvms events   --workspace WS CVM [--after N] [--follow]
//
//  Every command takes --json (the answer as JSON; events as one JSON object a
//  line), --url URL, --token TOKEN and --config FILE; the settings client.url
//  and client.token (UMBRA_CLIENT_URL, UMBRA_CLIENT_TOKEN) are read otherwise,
//  and gateway.timeout_ms for how long `events --follow` waits in one request.
//  Exit codes: 0 done, 1 refused or failed (the server's reason on stderr),
//  2 usage error.
#ifndef UMB_CLI_BACKENDS_H_INCLUDED
#define UMB_CLI_BACKENDS_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

//  argv [0] is "backends" (or "cvms"), argv [1] the subcommand.
int  umb_cli_backends (int argc, char **argv);
int  umb_cli_cvms (int argc, char **argv);

//  The same, with the environment (UMBRA_* settings) and the streams given.
//  getopt may reorder argv, and --token's argument is overwritten once read,
//  so argv's strings must be writable.
int  umb_cli_backends_run (int argc, char **argv, char **envp, FILE *out, FILE *err);
int  umb_cli_cvms_run (int argc, char **argv, char **envp, FILE *out, FILE *err);

void umb_cli_backends_test (bool verbose);

#endif
