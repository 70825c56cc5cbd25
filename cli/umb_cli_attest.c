//  umb_cli_attest - `umbra attestation`: verify TEE evidence
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <czmq.h>
#include <jansson.h>
#include "umb_hex.h"
#include "umb_cli_attest.h"
#include "umb_hex.h"
#include "umb_cli_agent.h"
#include "umb_cli_rest.h"
#include "umb_policy.h"
#include "umb_verify.h"

#define S_EXIT_OK      0
#define S_EXIT_FAILED  1
#define S_EXIT_USAGE   2

#define S_MAX_INPUT    (1 << 20)        //  evidence, certificates, chain
#define S_MAX_NONCE    1024

typedef int (s_subcommand_fn) (int argc, char **argv);

static int s_help (int argc, char **argv);

//  The subcommands; `get` (an agent's evidence, fetched and verified) lives
//  in cli/umb_cli_agent.c.
static const struct {
    const char      *name;
    s_subcommand_fn *run;
    const char      *summary;
} s_subcommands [] = {
    { "verify", umb_cli_attest_verify,
      "verify --platform snp|tdx|none --evidence FILE [--vcek FILE] [--chain FILE]\n"
      "       [--certs FILE] [--policy FILE] [--time RFC3339] [--json] [--insecure-dev]\n"
      "       [--nonce HEX --agent-key Z85]\n"
      "       checks that the evidence is genuine (signature, certificate chain to the\n"
      "       built-in AMD/Intel roots), satisfies the policy, and (with --nonce and\n"
      "       --agent-key) binds that key and nonce" },
    { "get", umb_cli_agent_attestation_get,
      "get    --agent ENDPOINT [--out FILE] [--json] [--policy FILE] [--insecure-dev]\n"
      "       asks an agent for evidence with a fresh nonce and verifies it (see\n"
      "       `umbra attestation get --help`)" },
    //  ATTESTATION-SUBCOMMANDS (one row per subcommand; keep this marker)
    { "help", s_help, "help   this help" },
    { NULL }
};

static const char s_verify_options [] =
    "options of verify:\n"
    "  --platform P      snp, tdx or none (none: no TEE; refused without --insecure-dev)\n"
    "  --evidence FILE   the SNP report (1184 bytes), the TDX quote, or for none an empty\n"
    "                    file or the agent's 64-byte report_data\n"
    "  --vcek FILE       SNP: the VCEK or VLEK certificate, DER or PEM\n"
    "  --chain FILE      SNP: ASK and ARK (ASVK and ARK for a VLEK), PEM; TDX: the PCK\n"
    "                    chain (default: the quote's own)\n"
    "  --certs FILE      the certificates the TEE supplied with the evidence (the agent's\n"
    "                    `certs`: PEM, or the SEV-SNP certificate table); used for the\n"
    "                    VCEK and chain not given; without either, SNP is refused\n"
    "  --policy FILE     the policy (JSON, docs/attestation-policy.md); without one only\n"
    "                    debug guests are refused and no measurement is pinned\n"
    "  --time RFC3339    check certificate validity at this time instead of now\n"
    "  --json            print the parsed fields as JSON\n"
    "  --insecure-dev    accept platform none (development only: nothing is attested)\n"
    "  --nonce HEX       with --agent-key: require report_data =\n"
    "  --agent-key Z85   SHA-512(\"umbra-attest-v1\" || agent key || nonce)\n"
    "exit codes: 0 genuine and within policy, 1 refused (\"refused: REASON\" on stderr),\n"
    "2 usage error\n";

static void
s_usage (FILE *stream)
{
    fprintf (stream, "usage: umbra attestation COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; s_subcommands [i].name; i++) {
        fputs ("  ", stream);
        for (const char *c = s_subcommands [i].summary; *c; c++)
            if (*c == '\n')
                fputs ("\n  ", stream);
            else
                fputc (*c, stream);
        fputc ('\n', stream);
    }
    fputc ('\n', stream);
    fputs (s_verify_options, stream);
}

static int
s_help (int argc, char **argv)
{
    s_usage (stdout);
    return S_EXIT_OK;
}

int
umb_cli_attestation (int argc, char **argv)
{
    assert (argc >= 1 && argv);
    if (argc < 2) {
        s_usage (stderr);
        return S_EXIT_USAGE;
    }
    if (streq (argv [1], "--help") || streq (argv [1], "-h"))
        return s_help (argc - 1, argv + 1);
    for (size_t i = 0; s_subcommands [i].name; i++)
        if (streq (argv [1], s_subcommands [i].name))
            return s_subcommands [i].run (argc - 1, argv + 1);
    fprintf (stderr, "umbra: unknown attestation command '%s'; see `umbra attestation help`\n", argv [1]);
    return S_EXIT_USAGE;
}

//  ---------------------------------------------------------------- parsing

int
umb_cli_attest_parse_time (const char *text, int64_t *seconds)
{
    assert (seconds);
    if (!text)
        return -1;
    struct tm tm;
    memset (&tm, 0, sizeof tm);
    const char *rest = strptime (text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        rest = strptime (text, "%Y-%m-%dt%H:%M:%S", &tm);
    //  strptime accepts single digits; RFC 3339 does not
    if (!rest || rest - text != 19 || text [4] != '-' || text [7] != '-' || text [13] != ':' || text [16] != ':')
        return -1;
    if (*rest == '.') {
        rest++;
        if (*rest < '0' || *rest > '9')
            return -1;
        while (*rest >= '0' && *rest <= '9')
            rest++;
    }
    int64_t offset = 0;
    if (*rest == 'Z' || *rest == 'z')
        rest++;
    else
    if ((*rest == '+' || *rest == '-')
    &&  rest [1] >= '0' && rest [1] <= '9' && rest [2] >= '0' && rest [2] <= '9' && rest [3] == ':'
    &&  rest [4] >= '0' && rest [4] <= '9' && rest [5] >= '0' && rest [5] <= '9') {
        int hours = (rest [1] - '0') * 10 + rest [2] - '0';
        int minutes = (rest [4] - '0') * 10 + rest [5] - '0';
        if (hours > 23 || minutes > 59)
            return -1;
        offset = (int64_t) (hours * 3600 + minutes * 60) * (*rest == '+'? 1: -1);
        rest += 6;
    }
    else
        return -1;
    if (*rest)
        return -1;
    int day = tm.tm_mday;
    time_t when = timegm (&tm);
    if (when == (time_t) -1 || tm.tm_mday != day)     //  timegm normalised an impossible date
        return -1;
    *seconds = (int64_t) when - offset;
    return 0;
}

int
umb_cli_attest_parse_key (const char *z85, uint8_t key [32])
{
    assert (key);
    if (!z85 || strlen (z85) != 40)
        return -1;
    return zmq_z85_decode (key, z85)? 0: -1;
}

//  Hex -> a new buffer; -1 if malformed or not 1..max bytes
static int
s_parse_hex (const char *text, size_t max, uint8_t **data, size_t *size)
{
    size_t length = strlen (text);
    if (length == 0 || length % 2 || length / 2 > max)
        return -1;
    *data = (uint8_t *) malloc (length / 2);
    assert (*data);
    if (umb_hex_decode (text, *data, length / 2)) {
        free (*data);
        *data = NULL;
        return -1;
    }
    *size = length / 2;
    return 0;
}

//  A whole input file (NUL-terminated beyond *size); NULL with the reason
static uint8_t *
s_read_input (const char *what, const char *path, size_t *size, char *reason, size_t reason_size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        snprintf (reason, reason_size, "cannot read %s %s: %s", what, path, strerror (errno));
        return NULL;
    }
    uint8_t *data = (uint8_t *) malloc (S_MAX_INPUT + 2);
    *size = data? fread (data, 1, S_MAX_INPUT + 1, file): 0;
    bool failed = ferror (file);
    fclose (file);
    if (!data || failed || *size > S_MAX_INPUT) {
        snprintf (reason, reason_size, "cannot read %s %s: %s", what, path,
                  !data? "out of memory": failed? "read error": "larger than 1 MiB");
        free (data);
        return NULL;
    }
    data [*size] = 0;
    return data;
}

//  ---------------------------------------------------------------- printing

void
umb_cli_attest_print (const umb_verify_result_t *result, bool json, FILE *out, FILE *err)
{
    assert (result && out && err);
    const char *warnings = umb_verify_result_warnings (result);
    while (*warnings) {
        const char *end = strchr (warnings, '\n');
        int length = end? (int) (end - warnings): (int) strlen (warnings);
        bool insecure = strncmp (warnings, "insecure", 8) == 0;
        fprintf (err, "%s: %.*s\n", insecure? "WARNING": "warning", length, warnings);
        warnings += length + (end? 1: 0);
    }
    if (json) {
        char *text = json_dumps (umb_verify_result_json (result), JSON_INDENT (2));
        if (text)
            fprintf (out, "%s\n", text);
        free (text);
        return;
    }
    umb_verify_platform_t platform = umb_verify_result_platform (result);
    if (umb_verify_result_insecure (result))
        fprintf (out, "insecure: no TEE (platform none accepted because of --insecure-dev)%s\n",
                 umb_verify_result_bound (result)? "; report_data matches the agent key and nonce": "");
    else {
        fprintf (out, "genuine: %s evidence within policy; measurement ", umb_verify_platform_name (platform));
        const uint8_t *measurement = umb_verify_result_measurement (result);
        char hex [2 * 48 + 1];
        if (measurement)
            fputs (umb_hex_encode (measurement, 48, hex), out);
        fprintf (out, "%s\n", umb_verify_result_bound (result)? "; bound to the agent key and nonce": "");
    }
}

//  ---------------------------------------------------------------- verify

static const struct option s_options [] = {
    { "platform",     required_argument, NULL, 'p' },
    { "evidence",     required_argument, NULL, 'e' },
    { "vcek",         required_argument, NULL, 'v' },
    { "chain",        required_argument, NULL, 'c' },
    { "certs",        required_argument, NULL, 'C' },
    { "policy",       required_argument, NULL, 'P' },
    { "time",         required_argument, NULL, 't' },
    { "json",         no_argument,       NULL, 'j' },
    { "insecure-dev", no_argument,       NULL, 'I' },
    { "nonce",        required_argument, NULL, 'n' },
    { "agent-key",    required_argument, NULL, 'k' },
    { "help",         no_argument,       NULL, 'h' },
    { NULL, 0, NULL, 0 }
};

int
umb_cli_attest_verify_run (int argc, char **argv, FILE *out, FILE *err)
{
    assert (argc >= 1 && argv && out && err);
    const char *platform_name = NULL, *evidence_path = NULL, *vcek_path = NULL, *chain_path = NULL;
    const char *certs_path = NULL, *policy_path = NULL, *time_text = NULL, *key_text = NULL;
    bool json = false, insecure_dev = false;
    uint8_t *nonce = NULL;
    size_t nonce_size = 0;
    uint8_t agent_key [32];
    int64_t at_time = 0;
    int rc = S_EXIT_OK;
    int option;
    optind = 0;                     //  GNU getopt: start afresh
    opterr = 0;
    while (rc == S_EXIT_OK && (option = getopt_long (argc, argv, ":", s_options, NULL)) != -1) {
        switch (option) {
            case 'p': platform_name = optarg; break;
            case 'e': evidence_path = optarg; break;
            case 'v': vcek_path = optarg; break;
            case 'c': chain_path = optarg; break;
            case 'C': certs_path = optarg; break;
            case 'P': policy_path = optarg; break;
            case 't': time_text = optarg; break;
            case 'j': json = true; break;
            case 'I': insecure_dev = true; break;
            case 'n':
                free (nonce);
                nonce = NULL;
                if (s_parse_hex (optarg, S_MAX_NONCE, &nonce, &nonce_size)) {
                    fprintf (err, "umbra: --nonce takes 1..%d bytes of hex, not '%s'\n", S_MAX_NONCE, optarg);
                    rc = S_EXIT_USAGE;
                }
                break;
            case 'k': key_text = optarg; break;
            case 'h':
                fprintf (out, "usage: umbra attestation %s\n\n%s", s_subcommands [0].summary, s_verify_options);
                rc = -1;
                break;
            default:
                rc = umb_cli_rest_option_error (err, option, argv [optind - 1], "attestation",
                                                "verify");
                break;
        }
    }
    if (rc == -1) {
        free (nonce);
        return S_EXIT_OK;
    }
    int platform = -1;
    if (rc == S_EXIT_OK && optind < argc) {
        fprintf (err, "umbra: unexpected argument '%s'\n", argv [optind]);
        rc = S_EXIT_USAGE;
    }
    if (rc == S_EXIT_OK && !platform_name) {
        fprintf (err, "umbra: attestation verify needs --platform snp|tdx|none\n");
        rc = S_EXIT_USAGE;
    }
    if (rc == S_EXIT_OK && (platform = umb_verify_platform_parse (platform_name)) < 0) {
        fprintf (err, "umbra: --platform is snp, tdx or none, not '%s'\n", platform_name);
        rc = S_EXIT_USAGE;
    }
    if (rc == S_EXIT_OK && !evidence_path) {
        fprintf (err, "umbra: attestation verify needs --evidence FILE\n");
        rc = S_EXIT_USAGE;
    }
    if (rc == S_EXIT_OK && time_text && umb_cli_attest_parse_time (time_text, &at_time)) {
        fprintf (err, "umbra: --time takes an RFC 3339 time like 2025-06-01T00:00:00Z, not '%s'\n", time_text);
        rc = S_EXIT_USAGE;
    }
    if (rc == S_EXIT_OK && key_text && umb_cli_attest_parse_key (key_text, agent_key)) {
        fprintf (err, "umbra: --agent-key takes a Z85 CURVE public key (40 characters)\n");
        rc = S_EXIT_USAGE;
    }
    if (rc == S_EXIT_OK && (!key_text != !nonce)) {
        fprintf (err, "umbra: --nonce and --agent-key go together\n");
        rc = S_EXIT_USAGE;
    }
    if (rc == S_EXIT_OK && vcek_path && platform != UMB_VERIFY_PLATFORM_SNP) {
        fprintf (err, "umbra: --vcek is for --platform snp\n");
        rc = S_EXIT_USAGE;
    }
    if (rc != S_EXIT_OK) {
        fprintf (err, "see `umbra attestation help`\n");
        free (nonce);
        return rc;
    }

    char reason [1024] = "";
    uint8_t *evidence = NULL, *vcek = NULL, *certs = NULL;
    char *chain = NULL;
    size_t evidence_size = 0, vcek_size = 0, certs_size = 0, chain_size = 0;
    umb_policy_t *policy = NULL;
    umb_verify_result_t *result = NULL;
    rc = S_EXIT_FAILED;
    if (!(evidence = s_read_input ("evidence", evidence_path, &evidence_size, reason, sizeof reason)))
        goto done;
    if (vcek_path && !(vcek = s_read_input ("VCEK/VLEK", vcek_path, &vcek_size, reason, sizeof reason)))
        goto done;
    if (chain_path && !(chain = (char *) s_read_input ("chain", chain_path, &chain_size, reason, sizeof reason)))
        goto done;
    if (certs_path && !(certs = s_read_input ("certificates", certs_path, &certs_size, reason, sizeof reason)))
        goto done;
    if (policy_path && !(policy = umb_policy_load (policy_path, reason, sizeof reason)))
        goto done;
    if (!policy_path && platform != UMB_VERIFY_PLATFORM_NONE)
        fprintf (err, "WARNING: no --policy: NO MEASUREMENT IS PINNED; any genuine %s guest that does not"
                 " allow debugging is accepted\n", platform_name);

    umb_verify_opts_t opts = {
        .platform = (umb_verify_platform_t) platform,
        .evidence = evidence, .evidence_size = evidence_size,
        .vcek = vcek, .vcek_size = vcek_size,
        .chain_pem = chain,
        .certs = certs, .certs_size = certs_size,
        .policy = policy, .at_time = at_time, .insecure_dev = insecure_dev,
        .agent_key = key_text? agent_key: NULL,
        .nonce = nonce, .nonce_size = nonce_size };
    if (umb_verify_evidence (&opts, &result, reason, sizeof reason))
        goto done;
    umb_cli_attest_print (result, json, out, err);
    rc = S_EXIT_OK;
done:
    if (rc != S_EXIT_OK) {
        //  One line: reasons never hold newlines, but make sure
        for (char *c = reason; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
        fprintf (err, "refused: %s\n", *reason? reason: "unknown reason");
    }
    umb_verify_result_destroy (&result);
    umb_policy_destroy (&policy);
    free (evidence);
    free (vcek);
    free (chain);
    free (certs);
    free (nonce);
    return rc;
}

int
umb_cli_attest_verify (int argc, char **argv)
{
    return umb_cli_attest_verify_run (argc, argv, stdout, stderr);
}

//  --------------------------------------------------------------------------
//  Selftest

typedef struct {
    int   rc;
    char *out;
    char *err;
} s_test_run_t;

static char *
s_slurp (FILE *file)
{
    fflush (file);
    long size = ftell (file);
    rewind (file);
    char *text = (char *) calloc (1, (size_t) size + 1);
    assert (text);
    assert (fread (text, 1, (size_t) size, file) == (size_t) size);
    return text;
}

//  Runs verify with the arguments (NULL-terminated); a %V in one is the vectors dir
static s_test_run_t
s_test_run (const char *first, ...)
{
    char *argv [32];
    int argc = 0;
    argv [argc++] = strdup ("verify");
    va_list args;
    va_start (args, first);
    for (const char *arg = first; arg; arg = va_arg (args, const char *)) {
        assert (argc < 31);
        if (strncmp (arg, "%V/", 3) == 0)
            argv [argc++] = zsys_sprintf ("%s/sev-snp/%s", UMB_VECTORS_DIR, arg + 3);
        else
            argv [argc++] = strdup (arg);
    }
    va_end (args);
    argv [argc] = NULL;
    FILE *out = tmpfile ();
    FILE *err = tmpfile ();
    assert (out && err);
    s_test_run_t run;
    run.rc = umb_cli_attest_verify_run (argc, argv, out, err);
    run.out = s_slurp (out);
    run.err = s_slurp (err);
    fclose (out);
    fclose (err);
    for (int i = 0; i < argc; i++)
        free (argv [i]);
    return run;
}

static void
s_expect (s_test_run_t run, int rc, const char *in_out, const char *in_err)
{
    if (run.rc != rc || (in_out && !strstr (run.out, in_out)) || (in_err && !strstr (run.err, in_err))) {
        fprintf (stderr, "\numb_cli_attest: exit %d (expected %d)\nstdout: %s\nstderr: %s\n",
                 run.rc, rc, run.out, run.err);
        assert (false);
    }
    free (run.out);
    free (run.err);
}

void
umb_cli_attest_test (bool verbose)
{
    printf (" * umb_cli_attest: ");
    if (verbose)
        printf ("\n");
    int64_t seconds = 0;
    assert (umb_cli_attest_parse_time ("2025-06-01T00:00:00Z", &seconds) == 0 && seconds == 1748736000);
    assert (umb_cli_attest_parse_time ("2025-06-01T02:00:00.123+02:00", &seconds) == 0 && seconds == 1748736000);
    assert (umb_cli_attest_parse_time ("2025-05-31T23:30:00-00:30", &seconds) == 0 && seconds == 1748736000);
    assert (umb_cli_attest_parse_time ("2025-06-01T00:00:00", &seconds) == -1);
    assert (umb_cli_attest_parse_time ("2025-06-01 00:00:00Z", &seconds) == -1);
    assert (umb_cli_attest_parse_time ("2025-6-1T00:00:00Z", &seconds) == -1);
    assert (umb_cli_attest_parse_time ("2025-02-30T00:00:00Z", &seconds) == -1);
    assert (umb_cli_attest_parse_time ("2025-06-01T00:00:00Zjunk", &seconds) == -1);
    assert (umb_cli_attest_parse_time ("yesterday", &seconds) == -1);
    uint8_t key [32];
    assert (umb_cli_attest_parse_key ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", key) == 0);
    assert (umb_cli_attest_parse_key ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf", key) == -1);
    assert (umb_cli_attest_parse_key ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf~", key) == -1);

    //  Genuine, with --json
    s_expect (s_test_run ("--platform", "snp", "--evidence", "%V/virtee-sev/report_milan.bin",
                          "--vcek", "%V/virtee-sev/vcek_milan.der", "--chain", "%V/virtee-sev/cert_chain_milan",
                          "--json", NULL),
              0, "\"measurement\": \"7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f\"",
              "NO MEASUREMENT IS PINNED");
    s_expect (s_test_run ("--platform=snp", "--evidence", "%V/trustee/test-vlek-report.bin",
                          "--vcek", "%V/trustee/test-vlek.der", "--chain", "%V/trustee/milan_ask_ark_asvk.pem",
                          "--time", "2025-06-01T00:00:00Z", NULL),
              0, "genuine: snp evidence within policy; measurement 8922ebbd", NULL);
    //  The expired VLEK without --time: refused
    s_expect (s_test_run ("--platform=snp", "--evidence", "%V/trustee/test-vlek-report.bin",
                          "--vcek", "%V/trustee/test-vlek.der", "--chain", "%V/trustee/milan_ask_ark_asvk.pem", NULL),
              1, NULL, "refused: snp: not genuine: VCEK/VLEK has expired");
    //  No chain: fail closed
    s_expect (s_test_run ("--platform", "snp", "--evidence", "%V/virtee-sev/report_milan.bin",
                          "--vcek", "%V/virtee-sev/vcek_milan.der", NULL),
              1, NULL, "refused: snp: missing certificate");
    //  Unreadable input: refused (1), not a usage error
    s_expect (s_test_run ("--platform", "snp", "--evidence", "/nonexistent/report.bin", NULL),
              1, NULL, "refused: cannot read evidence /nonexistent/report.bin");
    s_expect (s_test_run ("--platform", "snp", "--evidence", "%V/virtee-sev/report_milan.bin",
                          "--policy", "/nonexistent/policy.json", NULL),
              1, NULL, "refused: cannot read policy");
    //  none
    s_expect (s_test_run ("--platform", "none", "--evidence", "/dev/null", NULL), 1, NULL, "refused: platform none");
    s_expect (s_test_run ("--platform", "none", "--evidence", "/dev/null", "--insecure-dev", NULL),
              0, "insecure: no TEE", "WARNING: insecure: no TEE");
    //  Usage errors
    s_expect (s_test_run ("--platform", "snp", NULL), 2, NULL, "needs --evidence");
    s_expect (s_test_run ("--evidence", "/dev/null", NULL), 2, NULL, "needs --platform");
    s_expect (s_test_run ("--platform", "sgx", "--evidence", "/dev/null", NULL), 2, NULL, "snp, tdx or none");
    s_expect (s_test_run ("--platform", "none", "--evidence", "/dev/null", "--bogus", NULL), 2, NULL, "unknown option");
    s_expect (s_test_run ("--platform", "none", "--evidence", "/dev/null", "--time", "now", NULL), 2, NULL, "RFC 3339");
    s_expect (s_test_run ("--platform", "none", "--evidence", "/dev/null", "--nonce", "0g", NULL), 2, NULL, "--nonce");
    s_expect (s_test_run ("--platform", "none", "--evidence", "/dev/null", "--nonce", "00", NULL), 2, NULL, "together");
    s_expect (s_test_run ("--platform", "none", "--evidence", "/dev/null", "--agent-key", "short", "--nonce", "00",
                          NULL), 2, NULL, "Z85");
    s_expect (s_test_run ("--platform", "tdx", "--evidence", "/dev/null", "--vcek", "/dev/null", NULL),
              2, NULL, "--vcek is for");
    s_expect (s_test_run ("--platform", "none", "--evidence", "/dev/null", "extra", NULL), 2, NULL, "unexpected");
    s_expect (s_test_run ("--platform", NULL), 2, NULL, "needs a value");
    s_expect (s_test_run ("--help", NULL), 0, "--insecure-dev", NULL);
    printf ("OK\n");
}
