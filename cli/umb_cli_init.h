//  umb_cli_init - `umbra init`: the mesh identities' key pairs and the CA,
//  made once before a deployment's first start
#ifndef UMB_CLI_INIT_H_INCLUDED
#define UMB_CLI_INIT_H_INCLUDED

#include <stdbool.h>

int  umb_cli_init (int argc, char **argv);

void umb_cli_init_test (bool verbose);

#endif
