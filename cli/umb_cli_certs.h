//  umb_cli_certs - `umbra certs`: the workspace's certificates and the CA's
//  chain and CRL, through the gateway's REST API
//
//      umbra certs issue  --workspace WS --cn NAME [--san NAME]... [--csr FILE] [--ttl SECONDS]
//                         [--key-type ec-p256|rsa-3072|ed25519] [--profile server|client] [--out DIR]
//      umbra certs list   --workspace WS [--status valid|revoked|expired] [--json]
//      umbra certs get    --workspace WS SERIAL [--pem | --json]
//      umbra certs revoke --workspace WS SERIAL [--reason NAME]
//      umbra certs renew  --workspace WS SERIAL [--ttl SECONDS] [--out DIR]
//      umbra certs ca     [--out FILE]
//      umbra certs crl    [--pem] [--out FILE]
//
//  Every command takes --url URL, --token TOKEN and --config FILE; the
//  settings client.url and client.token (UMBRA_CLIENT_URL, UMBRA_CLIENT_TOKEN)
//  are read otherwise. Exit codes: 0 done, 1 refused or failed (the server's
//  reason on stderr), 2 usage error.
#ifndef UMB_CLI_CERTS_H_INCLUDED
#define UMB_CLI_CERTS_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

//  argv [0] is "certs", argv [1] the subcommand.
int  umb_cli_certs (int argc, char **argv);

//  The same, with the environment (UMBRA_* settings) and the streams given.
//  Options are read with getopt, which may reorder argv; --token's argument
//  is overwritten once read (so it does not linger in /proc/PID/cmdline),
//  so argv's strings must be writable.
int  umb_cli_certs_run (int argc, char **argv, char **envp, FILE *out, FILE *err);

void umb_cli_certs_test (bool verbose);

#endif
