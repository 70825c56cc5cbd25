//  umbra-backends - the backends service as a program of its own, until SIGINT/SIGTERM
#include "umb_program.h"
#include "umb_backends.h"

static const char s_usage [] =
    "usage: umbra-backends [--config FILE] [--state DIR]\n"
    "\n"
    "Runs the umbra backends service: TEE hosts (libvirt URIs, libvirt's test driver,\n"
    "or local processes for development), confidential VMs with the agent inside,\n"
    "their guest links, attestation, manifests and events (proto/msgpack/backends.md).\n"
    "\n"
    "  -c, --config FILE  settings file (INI: [backends] endpoint = ...)\n"
    "  -s, --state DIR    state directory (keys, database, links)\n"
    "  -h, --help         show this help\n"
    "Settings also come from UMBRA_* environment variables (UMBRA_BACKENDS_ENDPOINT for\n"
    "backends.endpoint), which win over the file; see `umbra config`. The auth service\n"
    "must be reachable at auth.endpoint for operations with a user's token.\n";

static const umb_program_actor_t s_actors [] = {
    { "backends", umb_backends_actor, "ENDPOINT" },
    { NULL }
};

int
main (int argc, char **argv)
{
    int exit_code = UMB_EXIT_OK;
    umb_config_t *config = umb_program_config ("umbra-backends", s_usage, false, argc, argv,
                                               &exit_code);
    if (!config)
        return exit_code;
    umb_program_exit (umb_program_run ("umbra-backends", &config, s_actors, NULL));
}
