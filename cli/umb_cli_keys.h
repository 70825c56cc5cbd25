//  umb_cli_keys - `umbra keys generate` and `umbra checksum`: a participant's
//  signing keys and the SHA3-256 hashes the manifest names assets by
//
//      umbra keys generate [--type ed25519|ecdsa|ecdsa-p384|rsa] [--out PREFIX]
//          writes PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (public PEM);
//          default type ed25519, default prefix "umbra-key"; never overwrites
//      umbra checksum FILE [--manifest]
//          prints the file's SHA3-256 as 64 lowercase hex chars; with --manifest,
//          a JSON object to paste into a manifest entry: {"hash": "<hex>"}
//
//  Exit codes: 0 done, 1 refused or failed (reason on stderr), 2 usage error.
#ifndef UMB_CLI_KEYS_H_INCLUDED
#define UMB_CLI_KEYS_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

//  argv [0] is "keys", argv [1] the subcommand ("generate").
int  umb_cli_keys (int argc, char **argv);

//  argv [0] is "checksum".
int  umb_cli_checksum (int argc, char **argv);

//  The same, with the streams given (for tests).
int  umb_cli_keys_run (int argc, char **argv, FILE *out, FILE *err);
int  umb_cli_checksum_run (int argc, char **argv, FILE *out, FILE *err);

void umb_cli_keys_test (bool verbose);

#endif
