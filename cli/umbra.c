//  umbra - the platform's command line: runs the platform and, later, the participants' tools
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "umb_program.h"
#include "umb_cli_platform.h"
#include "umb_cli_certs.h"
#include "umb_cli_backends.h"
#include "umb_cli_keys.h"
#include "umb_cli_agent.h"
#include "umb_cli_attest.h"
#include "umb_cli_audit.h"
#include "umb_cli_computations.h"
#include "umb_cli_billing.h"
#include "umb_cli_init.h"
#include "umb_cli_status.h"
#include "umb_cli_demo.h"
#include "umb_cli_backup.h"

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
    { "backup",  umb_cli_backup, "copy the state while it runs: backup --out DIR" },
    { "restore", umb_cli_restore, "check a backup and put it into a new state: restore --from DIR --state DIR" },
    { "status",  umb_cli_status, "the health of every service (through the gateway), or of one over the mesh" },
    { "init",    umb_cli_init,  "make the mesh identities' key pairs and the CA once, before a deployment starts" },
    { "certs",   umb_cli_certs, "issue, list, get, revoke, renew certificates; ca, crl (see `umbra certs help`)" },
    { "backends", umb_cli_backends, "register, list, get, remove a workspace's TEE hosts (see `umbra backends help`)" },
    { "cvms",    umb_cli_cvms,  "create, list, get, destroy CVMs; manifest, events (see `umbra cvms help`)" },
    { "computations", umb_cli_computations, "create, list, get, update, delete computations; key, asset, check, manifest, audit (see `umbra computations help`)" },
    { "billing", umb_cli_billing, "plans, a workspace's plan, usage, balance, statements and ledger; set-plan, credit (see `umbra billing help`)" },
    { "keys",    umb_cli_keys,  "generate a participant's signing key: keys generate [--type T] [--out PREFIX]" },
    { "checksum", umb_cli_checksum, "print a file's SHA3-256, the hash a manifest names it by" },
    { "algo",    umb_cli_agent_algo,   "upload the algorithm to an agent (signed, attested channel)" },
    { "data",    umb_cli_agent_data,   "upload a dataset to an agent (signed, attested channel)" },
    { "result",  umb_cli_agent_result, "fetch the result from an agent and unpack it into a directory" },
    { "agent",   umb_cli_agent,        "agent status: an agent's state, assets and consumers" },
    { "attestation", umb_cli_attestation, "verify TEE evidence; get an agent's (see `umbra attestation help`)" },
    { "audit", umb_cli_audit, "verify a workspace's hash-chained audit trail: audit verify --workspace WS" },
    { "demo",    umb_cli_demo,  "run one real computation end to end and print its story and result" },
    { "version", s_cmd_version, "print the version" },
    { "help",    s_cmd_help,    "print this help" },
    { NULL }
};


static const char s_options [] =
    "options:\n"
    "  --config FILE   settings file (INI: [section] key = value)\n"
    "  --state DIR     state directory (default $XDG_DATA_HOME/umbra)\n"
    "  --listen H:P    gateway address (default 127.0.0.1:8080)\n"
    "Settings also come from UMBRA_* environment variables; see `umbra config`.\n";

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: umbra COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; s_commands [i].name; i++)
        fprintf (out, "  %-9s %s\n", s_commands [i].name, s_commands [i].summary);
    fprintf (out, "\n%s", s_options);
}

//  The answer of the platform's actor called name
static const char *
s_answer (char **answers, const char *name)
{
    return answers [umb_cli_platform_index (name)];
}

static void
s_platform_ready (umb_runtime_t *runtime, char **answers)
{
    const char *listen = umb_config_str (umb_runtime_config (runtime), "gateway.listen");
    const char *colon = strrchr (listen, ':');
    const char *ocsp = umb_config_str (umb_runtime_config (runtime), "certs.http_listen");
    const char *ocsp_colon = strrchr (ocsp, ':');
    printf ("umbra is up: gateway http://%.*s:%s, auth %s, certs OCSP http://%.*s:%s/ocsp, "
            "state %s\n", (int) (colon - listen), listen, s_answer (answers, "gateway"),
            s_answer (answers, "auth"), (int) (ocsp_colon - ocsp), ocsp,
            s_answer (answers, "certs"), umb_runtime_state_dir (runtime));
    fflush (stdout);
}

static int
s_cmd_up (int argc, char **argv)
{
    int exit_code = UMB_EXIT_OK;
    char usage [1024];
    snprintf (usage, sizeof (usage), "usage: umbra up [OPTIONS]\n\n%s", s_options);
    umb_config_t *config = umb_program_config ("umbra up", usage, true, argc, argv, &exit_code);
    if (!config)
        return exit_code;
    return umb_program_run ("umbra up", &config, umb_cli_platform (), s_platform_ready);
}

static int
s_cmd_config (int argc, char **argv)
{
    int exit_code = UMB_EXIT_OK;
    char usage [1024];
    snprintf (usage, sizeof (usage), "usage: umbra config [--table] [OPTIONS]\n\n"
              "--table prints every setting, its UMBRA_* variable, default and meaning as a\n"
              "Markdown table (docs/settings.md) instead of the current values.\n\n%s", s_options);
    bool table = argc > 1 && streq (argv [argc - 1], "--table");
    umb_config_t *config = umb_program_config ("umbra config", usage, true, table ? argc - 1 : argc,
                                               argv, &exit_code);
    if (!config)
        return exit_code;
    if (table)
        umb_config_dump_table (config, STDOUT_FILENO);
    else
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
            umb_program_exit (s_commands [i].run (argc - 1, argv + 1));
    fprintf (stderr, "umbra: unknown command '%s'; see `umbra help`\n", argv [1]);
    return UMB_EXIT_USAGE;
}
