//  umbra-certs - the certs service as a program of its own, until SIGINT/SIGTERM
#include "umb_program.h"
#include "umb_certs.h"

static const char s_usage [] =
    "usage: umbra-certs [--config FILE] [--state DIR]\n"
    "\n"
    "Runs the umbra certs service: the platform's CA, TLS and mesh certificates,\n"
    "revocation, the CRL and the OCSP responder (HTTP, certs.http_listen).\n"
    "\n"
    "  -c, --config FILE  settings file (INI: [certs] endpoint = ...)\n"
    "  -s, --state DIR    state directory (keys, database, CA)\n"
    "  -h, --help         show this help\n"
    "Settings also come from UMBRA_* environment variables (UMBRA_CERTS_HTTP_LISTEN for\n"
    "certs.http_listen), which win over the file; see `umbra config`. The auth service\n"
    "must be reachable at auth.endpoint for operations with a user's token.\n";

static const umb_program_actor_t s_actors [] = {
    { "certs", umb_certs_actor, "ENDPOINT" },
    { NULL }
};

int
main (int argc, char **argv)
{
    int exit_code = UMB_EXIT_OK;
    umb_config_t *config = umb_program_config ("umbra-certs", s_usage, false, argc, argv, &exit_code);
    if (!config)
        return exit_code;
    umb_program_exit (umb_program_run ("umbra-certs", &config, s_actors, NULL));
}
