//  umb_program - the shape every umbra executable shares: settings from the
//  command line, a file and UMBRA_* variables; the runtime; actors started in
//  order and stopped in reverse when SIGINT or SIGTERM arrives
//
//  Exit codes follow DESIGN.md: 0 success, 1 failed (reason on stderr),
//  2 usage or settings error.
#ifndef UMB_PROGRAM_H_INCLUDED
#define UMB_PROGRAM_H_INCLUDED

#include <czmq.h>
#include "umb_config.h"
#include "umb_runtime.h"

#define UMB_EXIT_OK     0
#define UMB_EXIT_FAILED 1
#define UMB_EXIT_USAGE  2

//  One actor of a program. It is asked question ("ENDPOINT", "PORT") once
//  started; an answer of "" or "0" means it failed, and it then answers
//  "REASON" with why.
typedef struct {
    const char *name;
    zactor_fn  *actor;
    const char *question;
} umb_program_actor_t;

//  Called once every actor is up, with their answers in order.
typedef void (umb_program_ready_fn) (umb_runtime_t *runtime, char **answers);

//  Reads --config FILE, --state DIR, --listen HOST:PORT (when listen is
//  true) and --help from argv, then the file, the environment and those
//  options, later ones winning. usage is printed for --help and on errors.
//  NULL with *exit_code set when the program should stop (0 for --help,
//  2 with the message on stderr otherwise).
umb_config_t *umb_program_config (const char *name, const char *usage, bool listen,
                                  int argc, char **argv, int *exit_code);

//  Takes the config, makes the runtime, starts the actors (terminated by
//  { NULL }), calls ready, waits for SIGINT/SIGTERM, stops the actors in
//  reverse order and returns the exit code. Call it before any thread starts:
//  it blocks the stop signals for every thread so only this one receives them.
int umb_program_run (const char *name, umb_config_t **config_p,
                     const umb_program_actor_t *actors, umb_program_ready_fn *ready);

//  Ends a program that ran actors with code, once they are gone: stdio is
//  flushed, and the exit handlers are skipped. czmq's (zsys_shutdown) takes
//  the sockets still on its list without the lock with which an actor's
//  thread, still finishing after zactor_destroy returned, closes its pipe;
//  on a loaded machine the two collided and corrupted the heap (an abort on
//  SIGTERM). Everything the program owns is closed by then.
void umb_program_exit (int code) __attribute__ ((noreturn));

#endif
