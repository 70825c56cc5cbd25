//  umb_cli_platform - the services of the whole platform, in start order
#include <assert.h>
#include <string.h>
#include "umb_cli_platform.h"
#include "umb_auth.h"
#include "umb_certs.h"
#include "umb_backends.h"
#include "umb_computations.h"
#include "umb_billing.h"
#include "umb_gateway.h"

static const umb_program_actor_t s_platform [] = {
    { "auth",         umb_auth_actor,         "ENDPOINT" },
    { "billing",      umb_billing_actor,      "ENDPOINT" },
    { "certs",        umb_certs_actor,        "HTTP" },
    { "backends",     umb_backends_actor,     "ENDPOINT" },
    { "computations", umb_computations_actor, "ENDPOINT" },
    { "gateway",      umb_gateway_actor,      "PORT" },
    { NULL }
};

const umb_program_actor_t *
umb_cli_platform (void)
{
    return s_platform;
}

size_t
umb_cli_platform_index (const char *name)
{
    for (size_t i = 0; s_platform [i].name; i++)
        if (strcmp (s_platform [i].name, name) == 0)
            return i;
    assert (false);
    return 0;
}
