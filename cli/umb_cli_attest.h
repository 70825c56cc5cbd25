//  umb_cli_attest - `umbra attestation`: verify TEE evidence (and, from
//  cli/umb_cli_agent, get an agent's)
//
//      umbra attestation verify --platform snp|tdx|none --evidence FILE
//                               [--vcek FILE] [--chain FILE] [--certs FILE]
//                               [--policy FILE] [--time RFC3339] [--json]
//                               [--insecure-dev] [--nonce HEX --agent-key Z85]
//
//  Exit codes: 0 the evidence is genuine and within the policy (and bound to
//  the agent key and nonce, when given); 1 refused, with one line on stderr
//  starting "refused: " (this includes an input file that cannot be read
//  or a policy file that is not valid); 2 usage error (unknown option,
//  missing --platform or --evidence, malformed --time, --nonce, --agent-key).
#ifndef UMB_CLI_ATTEST_H_INCLUDED
#define UMB_CLI_ATTEST_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "umb_verify.h"

//  argv [0] is "attestation", argv [1] the subcommand (verify, help, and
//  the rows of the subcommand table in umb_cli_attest.c).
int  umb_cli_attestation (int argc, char **argv);

//  `umbra attestation verify`: argv [0] is "verify".
int  umb_cli_attest_verify (int argc, char **argv);

//  The same with the streams given (getopt may reorder argv).
int  umb_cli_attest_verify_run (int argc, char **argv, FILE *out, FILE *err);

//  Helpers for other attestation commands (`get`), so they print and parse alike:
//  Prints a verified result: the JSON (json) or a summary line to out, and
//  every warning to err ("warning: ...").
void umb_cli_attest_print (const umb_verify_result_t *result, bool json, FILE *out, FILE *err);

//  RFC 3339 ("2025-06-01T00:00:00Z", "...+02:00", fractions ignored) ->
//  seconds since the epoch; -1 if malformed.
int  umb_cli_attest_parse_time (const char *text, int64_t *seconds);

//  A Z85 CURVE public key (40 characters) -> 32 bytes; -1 if malformed.
int  umb_cli_attest_parse_key (const char *z85, uint8_t key [32]);

void umb_cli_attest_test (bool verbose);

#endif
