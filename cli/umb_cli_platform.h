//  umb_cli_platform - the services of the whole platform, in start order, as
//  `umbra up` and `umbra demo` run them in one process (umb_program_run stops
//  them in reverse)
#ifndef UMB_CLI_PLATFORM_H_INCLUDED
#define UMB_CLI_PLATFORM_H_INCLUDED

#include "umb_program.h"

//  The table, terminated by an entry with name NULL.
const umb_program_actor_t *umb_cli_platform (void);
//  The index of the actor called name in the table; asserts it exists.
size_t umb_cli_platform_index (const char *name);

#endif
