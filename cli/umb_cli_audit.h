//  umb_cli_audit - `umbra audit verify`: a workspace's hash-chained audit
//  trail, fetched through the gateway's REST API and verified here
//
//      umbra audit verify --workspace WS [--json] [--anchor-dir DIR]
//
//  Fetches GET /workspaces/WS/audit?after=N&limit=500 page by page, checks
//  every record's hash, that seq grows by one and each prev is the hash before
//  it (umb_audit). The last verified head (SEQ HASH) of each workspace is kept
//  in DIR/WS.head (default $XDG_DATA_HOME/umbra/audit, else
//  ~/.local/share/umbra/audit; mode 0600, replaced atomically) and the trail
//  must still hold it next time, unchanged: that catches a trail cut short.
//  Takes --url URL, --token TOKEN and --config FILE as every gateway command.
//  Exit codes: 0 verified ("audit trail of WS verified: N records, head SEQ
//  HASH"), 1 refused ("refused: <reason>" on stderr: a record changed,
//  removed, reordered, the trail truncated, an unreadable answer; the head is
//  then kept as it was) or failed, 2 usage error.
#ifndef UMB_CLI_AUDIT_H_INCLUDED
#define UMB_CLI_AUDIT_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

//  argv [0] is "audit", argv [1] the subcommand ("verify").
int  umb_cli_audit (int argc, char **argv);

//  The same, with the environment (UMBRA_* settings, XDG_DATA_HOME, HOME)
//  and the streams given. Options are read with getopt, which may reorder
//  argv; --token's argument is overwritten once read, so argv's strings must
//  be writable.
int  umb_cli_audit_run (int argc, char **argv, char **envp, FILE *out, FILE *err);

void umb_cli_audit_test (bool verbose);

#endif
