//  umbra - the platform's command line: runs the platform and, later, the participants' tools
#include <assert.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <czmq.h>
#include "umb_runtime.h"
#include "umb_auth.h"
#include "umb_gateway.h"

#define UMB_EXIT_OK     0
#define UMB_EXIT_FAILED 1
#define UMB_EXIT_USAGE  2

typedef int (s_command_fn) (int argc, char **argv);

static int s_cmd_up (int argc, char **argv);
static int s_cmd_config (int argc, char **argv);
static int s_cmd_version (int argc, char **argv);
static int s_cmd_help (int argc, char **argv);

static const struct {
    const char   *name;
    s_command_fn *run;
    const char   *summary;
} s_commands [] = {
    { "up",      s_cmd_up,      "run the whole platform on this machine until SIGINT/SIGTERM" },
    { "config",  s_cmd_config,  "print every setting with its current value (secrets hidden)" },
    { "version", s_cmd_version, "print the version" },
    { "help",    s_cmd_help,    "print this help" },
    { NULL }
};

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: umbra COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; s_commands [i].name; i++)
        fprintf (out, "  %-9s %s\n", s_commands [i].name, s_commands [i].summary);
    fprintf (out, "\ncommon options:\n"
                  "  --config FILE   settings file (INI: [section] key = value)\n"
                  "  --state DIR     state directory (default $XDG_DATA_HOME/umbra)\n"
                  "  --listen H:P    gateway address (default 127.0.0.1:8080)\n"
                  "settings also come from UMBRA_* environment variables; see `umbra config`.\n");
}

//  Settings from the file, then the environment, then the command line.
static umb_config_t *
s_load_config (int argc, char **argv, int *exit_code)
{
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' },
        { "state",  required_argument, NULL, 's' },
        { "listen", required_argument, NULL, 'l' },
        { "help",   no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *file = NULL, *state = NULL, *listen = NULL;
    int option;
    optind = 1;
    while ((option = getopt_long (argc, argv, "c:s:l:h", options, NULL)) != -1) {
        switch (option) {
            case 'c': file = optarg; break;
            case 's': state = optarg; break;
            case 'l': listen = optarg; break;
            case 'h': s_usage (stdout); *exit_code = UMB_EXIT_OK; return NULL;
            default:  s_usage (stderr); *exit_code = UMB_EXIT_USAGE; return NULL;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "umbra: unexpected argument '%s'\n", argv [optind]);
        *exit_code = UMB_EXIT_USAGE;
        return NULL;
    }
    extern char **environ;
    umb_config_t *config = umb_config_new ();
    char *error = NULL;
    if ((file && umb_config_load_file (config, file, &error))
    ||  umb_config_load_env (config, environ, &error)
    ||  (state && umb_config_set (config, "state_dir", state, &error))
    ||  (listen && umb_config_set (config, "gateway.listen", listen, &error))) {
        fprintf (stderr, "umbra: %s\n", error);
        free (error);
        umb_config_destroy (&config);
        *exit_code = UMB_EXIT_USAGE;
    }
    return config;
}

//  Starts an actor and asks it where it listens; "" or "0" means it failed.
static zactor_t *
s_start (zactor_fn *actor_fn, umb_runtime_t *runtime, const char *question, char **answer_p)
{
    zactor_t *actor = zactor_new (actor_fn, runtime);
    assert (actor);
    zstr_send (actor, question);
    char *answer = zstr_recv (actor);
    if (!answer || !*answer || streq (answer, "0")) {
        zstr_free (&answer);
        zactor_destroy (&actor);
        return NULL;
    }
    *answer_p = answer;
    return actor;
}

static int
s_cmd_up (int argc, char **argv)
{
    int exit_code = UMB_EXIT_OK;
    umb_config_t *config = s_load_config (argc, argv, &exit_code);
    if (!config)
        return exit_code;
    //  Block the stop signals in every thread the actors start, and wait for
    //  them here, so shutdown runs in order on this thread.
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);
    zsys_handler_set (NULL);

    char *error = NULL;
    umb_runtime_t *runtime = umb_runtime_new (&config, &error);
    if (!runtime) {
        fprintf (stderr, "umbra: %s\n", error);
        free (error);
        umb_config_destroy (&config);
        return UMB_EXIT_FAILED;
    }
    char *auth_endpoint = NULL, *gateway_port = NULL;
    zactor_t *auth = s_start (umb_auth_actor, runtime, "ENDPOINT", &auth_endpoint);
    zactor_t *gateway = auth ? s_start (umb_gateway_actor, runtime, "PORT", &gateway_port) : NULL;
    if (!auth || !gateway) {
        fprintf (stderr, "umbra: the %s service did not start (see the log above)\n",
                 auth ? "gateway" : "auth");
        exit_code = UMB_EXIT_FAILED;
    }
    else {
        const char *listen = umb_config_str (umb_runtime_config (runtime), "gateway.listen");
        char host [256];
        snprintf (host, sizeof (host), "%.*s", (int) (strrchr (listen, ':') - listen), listen);
        printf ("umbra is up: gateway http://%s:%s, auth %s, state %s\n", host, gateway_port,
                auth_endpoint, umb_runtime_state_dir (runtime));
        fflush (stdout);
        int signal_number = 0;
        sigwait (&stop, &signal_number);
        umb_log_info (umb_runtime_log (runtime), "stopping on %s",
                      signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    }
    //  The gateway stops first so no request reaches a stopped service
    zactor_destroy (&gateway);
    zactor_destroy (&auth);
    zstr_free (&auth_endpoint);
    zstr_free (&gateway_port);
    umb_runtime_destroy (&runtime);
    return exit_code;
}

static int
s_cmd_config (int argc, char **argv)
{
    int exit_code = UMB_EXIT_OK;
    umb_config_t *config = s_load_config (argc, argv, &exit_code);
    if (!config)
        return exit_code;
    umb_config_dump (config, STDOUT_FILENO);
    umb_config_destroy (&config);
    return UMB_EXIT_OK;
}

static int
s_cmd_version (int argc, char **argv)
{
    printf ("umbra %s\n", UMB_VERSION);
    return UMB_EXIT_OK;
}

static int
s_cmd_help (int argc, char **argv)
{
    s_usage (stdout);
    return UMB_EXIT_OK;
}

int
main (int argc, char **argv)
{
    if (argc < 2) {
        s_usage (stderr);
        return UMB_EXIT_USAGE;
    }
    if (streq (argv [1], "--help") || streq (argv [1], "-h"))
        return s_cmd_help (argc - 1, argv + 1);
    for (size_t i = 0; s_commands [i].name; i++)
        if (streq (argv [1], s_commands [i].name))
            return s_commands [i].run (argc - 1, argv + 1);
    fprintf (stderr, "umbra: unknown command '%s'; see `umbra help`\n", argv [1]);
    return UMB_EXIT_USAGE;
}
