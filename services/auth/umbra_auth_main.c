//  umbra-auth - the auth service as a program of its own, until SIGINT/SIGTERM
#include "umb_program.h"
#include "umb_auth.h"

static const char s_usage [] =
    "usage: umbra-auth [--config FILE] [--state DIR]\n"
    "\n"
    "Runs the umbra auth service: users, tokens, workspaces, memberships, API keys.\n"
    "\n"
    "  -c, --config FILE  settings file (INI: [auth] endpoint = ...)\n"
    "  -s, --state DIR    state directory (keys, database)\n"
    "  -h, --help         show this help\n"
    "Settings also come from UMBRA_* environment variables (UMBRA_AUTH_ENDPOINT for\n"
    "auth.endpoint), which win over the file; see `umbra config`.\n";

static const umb_program_actor_t s_actors [] = {
    { "auth", umb_auth_actor, "ENDPOINT" },
    { NULL }
};

int
main (int argc, char **argv)
{
    int exit_code = UMB_EXIT_OK;
    umb_config_t *config = umb_program_config ("umbra-auth", s_usage, false, argc, argv, &exit_code);
    if (!config)
        return exit_code;
    umb_program_exit (umb_program_run ("umbra-auth", &config, s_actors, NULL));
}
