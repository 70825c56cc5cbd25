//  umb_program - the shape every umbra executable shares
#include <assert.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include "umb_program.h"
#include "umb_trust.h"

#define S_MAX_ACTORS 16

umb_config_t *
umb_program_config (const char *name, const char *usage, bool listen, int argc, char **argv,
                    int *exit_code)
{
    assert (name && usage && exit_code);
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' },
        { "state",  required_argument, NULL, 's' },
        { "listen", required_argument, NULL, 'l' },
        { "help",   no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *file = NULL, *state = NULL, *address = NULL;
    int option;
    optind = 1;
    opterr = 0;
    while ((option = getopt_long (argc, argv, "c:s:l:h", options, NULL)) != -1) {
        if (option == 'c')
            file = optarg;
        else
        if (option == 's')
            state = optarg;
        else
        if (option == 'l' && listen)
            address = optarg;
        else
        if (option == 'h') {
            fputs (usage, stdout);
            *exit_code = UMB_EXIT_OK;
            return NULL;
        }
        else {
            fprintf (stderr, "%s: unknown or incomplete option '%s'\n%s", name,
                     argv [optind - 1], usage);
            *exit_code = UMB_EXIT_USAGE;
            return NULL;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "%s: unexpected argument '%s'\n%s", name, argv [optind], usage);
        *exit_code = UMB_EXIT_USAGE;
        return NULL;
    }
    extern char **environ;
    umb_config_t *config = umb_config_new ();
    assert (config);
    char *error = NULL;
    if ((file && umb_config_load_file (config, file, &error))
    ||  umb_config_load_env (config, environ, &error)
    ||  (state && umb_config_set (config, "state_dir", state, &error))
    ||  (address && umb_config_set (config, "gateway.listen", address, &error))) {
        fprintf (stderr, "%s: %s\n", name, error ? error : "invalid settings");
        free (error);
        umb_config_destroy (&config);
        *exit_code = UMB_EXIT_USAGE;
    }
    return config;
}

int
umb_program_run (const char *name, umb_config_t **config_p, const umb_program_actor_t *actors,
                 umb_program_ready_fn *ready)
{
    assert (name && config_p && *config_p && actors);
    //  A peer that closes its end is a socket error, never the end of the
    //  process: splice (the bridge's relay) raises SIGPIPE on a closed socket
    signal (SIGPIPE, SIG_IGN);
    //  Every thread started from here on inherits a mask blocking the stop
    //  signals, and this one waits for them, so shutdown runs in order here.
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);
    zsys_handler_set (NULL);

    char *error = NULL;
    umb_runtime_t *runtime = umb_runtime_new (config_p, &error);
    if (!runtime) {
        fprintf (stderr, "%s: %s\n", name, error ? error : "cannot start");
        free (error);
        umb_config_destroy (config_p);
        return UMB_EXIT_FAILED;
    }
    zactor_t *started [S_MAX_ACTORS] = { NULL };
    char *answers [S_MAX_ACTORS] = { NULL };
    size_t count = 0;
    int exit_code = UMB_EXIT_OK;
    for (; actors [count].name; count++) {
        assert (count < S_MAX_ACTORS);
        started [count] = zactor_new (actors [count].actor, runtime);
        assert (started [count]);
        zstr_send (started [count], actors [count].question);
        answers [count] = zstr_recv (started [count]);
        if (!answers [count] || !*answers [count] || streq (answers [count], "0")) {
            zstr_send (started [count], "REASON");
            char *reason = zstr_recv (started [count]);
            fprintf (stderr, "%s: %s did not start: %s\n", name, actors [count].name,
                     reason && *reason ? reason : "see the log");
            zstr_free (&reason);
            exit_code = UMB_EXIT_FAILED;
            count++;
            break;
        }
    }
    umb_trust_t *trust = NULL;
    if (exit_code == UMB_EXIT_OK) {
        //  Revoked mesh identities are shut out of every service of this process
        const char *names [S_MAX_ACTORS + 1] = { NULL };
        for (size_t i = 0; i < count; i++)
            names [i] = actors [i].name;
        trust = umb_trust_new (runtime, names);
        if (ready)
            ready (runtime, answers);
        int signal_number = 0;
        sigwait (&stop, &signal_number);
        umb_log_info (umb_runtime_log (runtime), "stopping on %s",
                      signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    }
    umb_trust_destroy (&trust);
    //  In reverse: the gateway goes before the services it calls
    while (count-- > 0) {
        zactor_destroy (&started [count]);
        zstr_free (&answers [count]);
    }
    umb_runtime_destroy (&runtime);
    return exit_code;
}

void
umb_program_exit (int code)
{
    fflush (NULL);
    _exit (code);
}
