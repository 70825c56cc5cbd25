//  umbra-computations - the computations service as a program of its own, until SIGINT/SIGTERM
#include "umb_program.h"
#include "umb_computations.h"

static const char s_usage [] =
    "usage: umbra-computations [--config FILE] [--state DIR]\n"
    "\n"
    "Runs the umbra computations service: computation definitions, their participants,\n"
    "keys and assets, the manifest the agent takes, and each workspace's hash-chained\n"
    "audit trail (proto/msgpack/computations.md).\n"
    "\n"
    "  -c, --config FILE  settings file (INI: [computations] endpoint = ...)\n"
    "  -s, --state DIR    state directory (keys, database)\n"
    "  -h, --help         show this help\n"
    "Settings also come from UMBRA_* environment variables (UMBRA_COMPUTATIONS_ENDPOINT for\n"
    "computations.endpoint), which win over the file; see `umbra config`. The auth service\n"
    "must be reachable at auth.endpoint.\n";

static const umb_program_actor_t s_actors [] = {
    { "computations", umb_computations_actor, "ENDPOINT" },
    { NULL }
};

int
main (int argc, char **argv)
{
    int exit_code = UMB_EXIT_OK;
    umb_config_t *config = umb_program_config ("umbra-computations", s_usage, false, argc, argv,
                                               &exit_code);
    if (!config)
        return exit_code;
    umb_program_exit (umb_program_run ("umbra-computations", &config, s_actors, NULL));
}
