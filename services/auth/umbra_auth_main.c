//  umbra-auth - the auth service as a program: config, runtime, the actor, until SIGINT/SIGTERM
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <czmq.h>
#include "umb_auth.h"
#include "umb_config.h"
#include "umb_runtime.h"

extern char **environ;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: umbra-auth [--config FILE] [--state DIR]\n"
        "\n"
        "Runs the umbra auth service: users, tokens, workspaces, memberships, API keys.\n"
        "\n"
        "  -c, --config FILE  read settings from FILE (INI: [auth] endpoint = ...)\n"
        "  -s, --state DIR    state directory (keys, database); overrides UMBRA_STATE_DIR\n"
        "  -h, --help         show this help\n"
        "\n"
        "Settings also come from UMBRA_* environment variables (UMBRA_AUTH_ENDPOINT for\n"
        "auth.endpoint), which win over the file.\n");
}

int
main (int argc, char *argv [])
{
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' },
        { "state",  required_argument, NULL, 's' },
        { "help",   no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *config_path = NULL;
    const char *state_dir = NULL;
    int option;
    while ((option = getopt_long (argc, argv, "c:s:h", options, NULL)) != -1) {
        if (option == 'c')
            config_path = optarg;
        else
        if (option == 's')
            state_dir = optarg;
        else
        if (option == 'h') {
            s_usage (stdout);
            return 0;
        }
        else {
            s_usage (stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "umbra-auth: unexpected argument '%s'\n", argv [optind]);
        s_usage (stderr);
        return 2;
    }

    umb_config_t *config = umb_config_new ();
    char *error = NULL;
    if ((config_path && umb_config_load_file (config, config_path, &error))
    ||  umb_config_load_env (config, environ, &error)
    ||  (state_dir && umb_config_set (config, "state_dir", state_dir, &error))) {
        fprintf (stderr, "umbra-auth: %s\n", error ? error : "invalid configuration");
        free (error);
        umb_config_destroy (&config);
        return 2;
    }

    //  Every thread inherits a mask blocking the stop signals; this one
    //  waits for them. CZMQ's own handler would only set a flag nobody polls.
    zsys_handler_set (NULL);
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);

    umb_runtime_t *runtime = umb_runtime_new (&config, &error);
    if (!runtime) {
        fprintf (stderr, "umbra-auth: %s\n", error ? error : "cannot start");
        free (error);
        umb_config_destroy (&config);
        return 1;
    }
    zactor_t *actor = zactor_new (umb_auth_actor, runtime);
    zstr_send (actor, "ENDPOINT");
    char *endpoint = zstr_recv (actor);
    int rc = 0;
    if (!endpoint || !*endpoint) {
        zstr_send (actor, "REASON");
        char *reason = zstr_recv (actor);
        fprintf (stderr, "umbra-auth: cannot start: %s\n", reason && *reason ? reason : "unknown");
        zstr_free (&reason);
        rc = 1;
    }
    else {
        int signal_number = 0;
        while (sigwait (&stop, &signal_number) != 0)
            ;
    }
    zstr_free (&endpoint);
    zactor_destroy (&actor);
    umb_runtime_destroy (&runtime);
    return rc;
}
