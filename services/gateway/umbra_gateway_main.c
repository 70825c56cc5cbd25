//  umbra-gateway - runs the REST gateway alone until SIGINT or SIGTERM
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <czmq.h>
#include "umb_config.h"
#include "umb_runtime.h"
#include "umb_gateway.h"

#define S_EXIT_OK     0
#define S_EXIT_FAILED 1
#define S_EXIT_USAGE  2

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: umbra-gateway [--config FILE] [--state DIR]\n\n"
                  "Serves the REST API (HTTP/1.1, JSON) in front of the mesh services.\n\n"
                  "  --config FILE   settings file (INI: [gateway] listen = 127.0.0.1:8080)\n"
                  "  --state DIR     state directory (default $XDG_DATA_HOME/umbra)\n"
                  "  --help          print this help\n"
                  "settings also come from UMBRA_* environment variables (they win over the file);\n"
                  "see `umbra config`.\n");
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' },
        { "state",  required_argument, NULL, 's' },
        { "help",   no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *file = NULL, *state = NULL;
    int option;
    while ((option = getopt_long (argc, argv, "c:s:h", options, NULL)) != -1) {
        switch (option) {
            case 'c': file = optarg; break;
            case 's': state = optarg; break;
            case 'h': s_usage (stdout); return S_EXIT_OK;
            default:  s_usage (stderr); return S_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "umbra-gateway: unexpected argument '%s'\n", argv [optind]);
        s_usage (stderr);
        return S_EXIT_USAGE;
    }

    //  The file, then the environment, then the command line
    extern char **environ;
    umb_config_t *config = umb_config_new ();
    char *error = NULL;
    if ((file && umb_config_load_file (config, file, &error))
    ||  umb_config_load_env (config, environ, &error)
    ||  (state && umb_config_set (config, "state_dir", state, &error))) {
        fprintf (stderr, "umbra-gateway: %s\n", error);
        free (error);
        umb_config_destroy (&config);
        return S_EXIT_USAGE;
    }

    //  Block the stop signals in every thread started from here on, and
    //  wait for them on this one, so shutdown runs in order
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);
    zsys_handler_set (NULL);

    umb_runtime_t *runtime = umb_runtime_new (&config, &error);
    if (!runtime) {
        fprintf (stderr, "umbra-gateway: %s\n", error);
        free (error);
        umb_config_destroy (&config);
        return S_EXIT_FAILED;
    }
    int exit_code = S_EXIT_OK;
    zactor_t *gateway = zactor_new (umb_gateway_actor, runtime);
    zstr_send (gateway, "PORT");
    char *port = zstr_recv (gateway);
    if (!port || streq (port, "0")) {
        fprintf (stderr, "umbra-gateway: the gateway did not start (the reason is logged above)\n");
        exit_code = S_EXIT_FAILED;
    }
    else {
        int signal_number = 0;
        sigwait (&stop, &signal_number);
        umb_log_info (umb_runtime_log (runtime), "stopping on %s",
                      signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    }
    zstr_free (&port);
    zactor_destroy (&gateway);
    umb_runtime_destroy (&runtime);
    return exit_code;
}
