//  umb_cli_computations - `umbra computations`: a workspace's computation
//  definitions, their participants' keys and assets' hashes, the dry run, the
//  manifest, the audit trail, the runs and their events, and statistics,
//  through the gateway's REST API (the contract is proto/msgpack/computations.md)
//
//      umbra computations create   -w WS --file DEF.json
//      umbra computations create   -w WS --name N --algorithm-provider U [--algorithm-type python|bin]
//                                  [--arg A]... [--dataset PROVIDER:FILENAME[:decompress]]...
//                                  --consumer U... [--tee T] [--vcpus N] [--memory-mb M]
//                                  [--run-timeout S] [--policy FILE] [--description TEXT]
//      umbra computations list     -w WS [--participant me|USER_ID] [--name PREFIX]
//                                  [--limit N | --page-size N]
//      umbra computations get      -w WS CMP
//      umbra computations update   -w WS CMP --file PATCH.json [--version V]
//      umbra computations delete   -w WS CMP
//      umbra computations key      -w WS CMP --key FILE.pub
//      umbra computations asset    -w WS CMP ASSET (--hash HEX | --file PATH)
//      umbra computations check    -w WS CMP
//      umbra computations manifest -w WS CMP [-o FILE]
//      umbra computations audit    -w WS [--after N]
//      umbra computations run      -w WS CMP [--follow]
//      umbra computations runs     -w WS CMP [--limit N]
//      umbra computations run-get  -w WS CMP RUN
//      umbra computations stop     -w WS CMP RUN
//      umbra computations events   -w WS CMP RUN [--after N] [--follow]
//      umbra computations stats    -w WS [--days N]
//
//  Every command takes --json (the answer as JSON), --url URL, --token TOKEN
//  and --config FILE; the settings client.url and client.token
//  (UMBRA_CLIENT_URL, UMBRA_CLIENT_TOKEN) are read otherwise. Exit codes: 0
//  done (check: ready; run --follow: Completed), 1 refused or failed (the
//  server's reason on stderr; check: not ready, with what is missing; run
//  --follow: Failed or Cancelled, with the reason), 2 usage error.
#ifndef UMB_CLI_COMPUTATIONS_H_INCLUDED
#define UMB_CLI_COMPUTATIONS_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

//  argv [0] is "computations", argv [1] the subcommand.
int  umb_cli_computations (int argc, char **argv);

//  The same, with the environment (UMBRA_* settings) and the streams given.
//  getopt may reorder argv, and --token's argument is overwritten once read,
//  so argv's strings must be writable.
int  umb_cli_computations_run (int argc, char **argv, char **envp, FILE *out, FILE *err);

void umb_cli_computations_test (bool verbose);

#endif
