//  umbra-gateway - the REST gateway as a program of its own, until SIGINT/SIGTERM
#include "umb_program.h"
#include "umb_gateway.h"

static const char s_usage [] =
    "usage: umbra-gateway [--config FILE] [--state DIR] [--listen HOST:PORT]\n"
    "\n"
    "Serves the REST API (HTTP/1.1, JSON) in front of the mesh services.\n"
    "\n"
    "  -c, --config FILE    settings file (INI: [gateway] listen = 127.0.0.1:8080)\n"
    "  -s, --state DIR      state directory (default $XDG_DATA_HOME/umbra)\n"
    "  -l, --listen H:P     HTTP address (gateway.listen)\n"
    "  -h, --help           show this help\n"
    "Settings also come from UMBRA_* environment variables, which win over the file;\n"
    "see `umbra config`.\n";

static const umb_program_actor_t s_actors [] = {
    { "gateway", umb_gateway_actor, "PORT" },
    { NULL }
};

int
main (int argc, char **argv)
{
    int exit_code = UMB_EXIT_OK;
    umb_config_t *config = umb_program_config ("umbra-gateway", s_usage, true, argc, argv,
                                               &exit_code);
    if (!config)
        return exit_code;
    umb_program_exit (umb_program_run ("umbra-gateway", &config, s_actors, NULL));
}
