//  umb_cli_backup - `umbra backup` and `umbra restore`: the platform's state
//  copied while the services run (SQLite's online backup API) and put back
//  into a new state directory, checked against a manifest
//
//      umbra backup  --out BACKUP_DIR [--state DIR] [--config FILE]
//          copies every *.db of the state (each database's snapshot is taken
//          before any is copied, then checked with PRAGMA integrity_check),
//          then every other file (CURVE keys, the token signing key, the CA)
//          with its mode, and writes BACKUP_DIR/MANIFEST last: each file's
//          path, mode, size and SHA-256, the umbra version and the time.
//          BACKUP_DIR (made 0700) must be empty or absent, and outside the
//          state. The state is --state, else the settings (state_dir,
//          UMBRA_STATE_DIR), else $XDG_DATA_HOME/umbra. Databases and the
//          keys and CA directories that settings relocate (auth.db, certs.db,
//          computations.db, backends.db, billing.db, mesh.keys_dir,
//          certs.ca_dir) are taken from where the settings say and stored
//          where they are by default. The CVMs' working directories and link
//          sockets (backends/cvms, backends/links) belong to running VMs and
//          are left out.
//      umbra restore --from BACKUP_DIR [--state NEW_DIR] [--config FILE]
//          checks every file the MANIFEST names (size and SHA-256) and that
//          there is nothing else, and only then copies them into NEW_DIR
//          (empty or absent) in the default layout with their modes.
//
//  A changed, missing or unexpected file, or a target that is not empty,
//  refuses the whole command before anything is written (exit 1, the reason
//  on stderr); a failure halfway removes what the command wrote. Key contents
//  are never printed, and the buffers they passed through are wiped.
//  Exit codes: 0 done, 1 refused or failed, 2 usage or settings error.
#ifndef UMB_CLI_BACKUP_H_INCLUDED
#define UMB_CLI_BACKUP_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

//  argv [0] is "backup" / "restore".
int  umb_cli_backup (int argc, char **argv);
int  umb_cli_restore (int argc, char **argv);

//  The same, with the environment (UMBRA_* settings, XDG_DATA_HOME, HOME)
//  and the streams given. getopt may reorder argv.
int  umb_cli_backup_run (int argc, char **argv, char **envp, FILE *out, FILE *err);
int  umb_cli_restore_run (int argc, char **argv, char **envp, FILE *out, FILE *err);

void umb_cli_backup_test (bool verbose);

#endif
