//  umb_cli_billing - `umbra billing`: the plans and their prices, a workspace's
//  plan, limits, usage and balance, its monthly statements (JSON or CSV) and
//  its ledger, and the platform administrators' changes (a plan, credit),
//  through the gateway's REST API (the contract is proto/msgpack/billing.md)
//
//      umbra billing plans
//      umbra billing show       -w WS
//      umbra billing statements -w WS
//      umbra billing statement  -w WS MONTH [--csv]
//      umbra billing ledger     -w WS [--after N] [--limit N | --page-size N]
//      umbra billing set-plan   -w WS PLAN
//      umbra billing credit     -w WS AMOUNT --reference REF
//
//  Amounts are shown in credits with 6 decimals (1.500000); --json prints the
//  answers as they came (integers of micro-credits). AMOUNT is credits with up
//  to 6 decimals ("2.5") or micro-credits with a 'u' ("2500000u"). Every
//  command takes --json, --url URL, --token TOKEN and --config FILE; the
//  settings client.url and client.token (UMBRA_CLIENT_URL, UMBRA_CLIENT_TOKEN)
//  are read otherwise. Exit codes: 0 done, 1 refused or failed (the server's
//  reason on stderr), 2 usage error.
#ifndef UMB_CLI_BILLING_H_INCLUDED
#define UMB_CLI_BILLING_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

//  argv [0] is "billing", argv [1] the subcommand.
int  umb_cli_billing (int argc, char **argv);

//  The same, with the environment (UMBRA_* settings) and the streams given.
//  getopt may reorder argv, and --token's argument is overwritten once read,
//  so argv's strings must be writable.
int  umb_cli_billing_run (int argc, char **argv, char **envp, FILE *out, FILE *err);

void umb_cli_billing_test (bool verbose);

#endif
