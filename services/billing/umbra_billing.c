//  umbra-billing - the billing service as a program of its own, until SIGINT/SIGTERM
#include "umb_program.h"
#include "umb_billing.h"

static const char s_usage [] =
    "usage: umbra-billing [--config FILE] [--state DIR]\n"
    "\n"
    "Runs the umbra billing service: plans and their limits, metering of what each\n"
    "workspace used, prepaid credit on a double-entry ledger, reservations for runs,\n"
    "and monthly statements (proto/msgpack/billing.md).\n"
    "\n"
    "  -c, --config FILE  settings file (INI: [billing] endpoint = ...)\n"
    "  -s, --state DIR    state directory (keys, database)\n"
    "  -h, --help         show this help\n"
    "Settings also come from UMBRA_* environment variables (UMBRA_BILLING_ENDPOINT for\n"
    "billing.endpoint), which win over the file; see `umbra config`. The auth service\n"
    "must be reachable at auth.endpoint.\n";

static const umb_program_actor_t s_actors [] = {
    { "billing", umb_billing_actor, "ENDPOINT" },
    { NULL }
};

int
main (int argc, char **argv)
{
    int exit_code = UMB_EXIT_OK;
    umb_config_t *config = umb_program_config ("umbra-billing", s_usage, false, argc, argv,
                                               &exit_code);
    if (!config)
        return exit_code;
    umb_program_exit (umb_program_run ("umbra-billing", &config, s_actors, NULL));
}
