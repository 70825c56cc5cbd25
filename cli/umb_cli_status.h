//  umb_cli_status - `umbra status`: the health of every service, through the
//  gateway, or of one straight over the mesh
#ifndef UMB_CLI_STATUS_H_INCLUDED
#define UMB_CLI_STATUS_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

int  umb_cli_status_run (int argc, char **argv, FILE *out, FILE *err);
int  umb_cli_status (int argc, char **argv);

void umb_cli_status_test (bool verbose);

#endif
