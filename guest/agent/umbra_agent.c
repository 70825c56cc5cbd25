//  umbra-agent - the agent inside the confidential VM
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <czmq.h>
#include "umb_agent.h"
#include "umb_log.h"
#include "umb_program.h"
#include "umb_zap.h"

static const char s_usage [] =
    "usage: umbra-agent --listen ENDPOINT --workdir DIR [options]\n"
    "\n"
    "  --listen ENDPOINT         CURVE endpoint of participants and control (tcp://HOST:PORT)\n"
    "  --attest-listen ENDPOINT  plain attestation endpoint (default: the listen port + 1)\n"
    "  --workdir DIR             uploads, the run, results and the event queue\n"
    "  --attestation KIND        none, snp, tdx or auto (default: auto)\n"
    "  --control-key Z85         CURVE public key of the control side (agent.control.*,\n"
    "                            agent.events.*); without it nobody may use them\n"
    "  --manifest FILE           standalone: the computation manifest, delivered at start\n"
    "  --exit-when-done          exit once the computation is Complete (0), Failed or Stopped (1)\n"
    "  --chunk-size BYTES        upload and download chunk size (default 524288)\n"
    "  --credit N                chunks a client may have in flight (default 8)\n"
    "  --log-level LEVEL         debug, info, warn or error (default info)\n"
    "  --log-json                write logs as JSON lines\n"
    "  --help\n"
    "\n"
    "Prints 'umbra-agent: listening on ENDPOINT attestation ENDPOINT key Z85' when ready.\n";

static int s_usage_error (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

static int
s_usage_error (const char *format, ...)
{
    fprintf (stderr, "umbra-agent: ");
    va_list args;
    va_start (args, format);
    vfprintf (stderr, format, args);
    va_end (args);
    fprintf (stderr, "\n%s", s_usage);
    return UMB_EXIT_USAGE;
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "listen",         required_argument, NULL, 'l' },
        { "attest-listen",  required_argument, NULL, 'a' },
        { "workdir",        required_argument, NULL, 'w' },
        { "attestation",    required_argument, NULL, 't' },
        { "control-key",    required_argument, NULL, 'k' },
        { "manifest",       required_argument, NULL, 'm' },
        { "exit-when-done", no_argument,       NULL, 'x' },
        { "chunk-size",     required_argument, NULL, 'c' },
        { "credit",         required_argument, NULL, 'r' },
        { "log-level",      required_argument, NULL, 'v' },
        { "log-json",       no_argument,       NULL, 'j' },
        { "help",           no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    umb_agent_config_t config = { .attestation = "auto" };
    int level = UMB_LOG_INFO;
    bool json = false;
    int option;
    opterr = 0;
    while ((option = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (option) {
            case 'l': config.endpoint = optarg; break;
            case 'a': config.attest_endpoint = optarg; break;
            case 'w': config.workdir = optarg; break;
            case 't': config.attestation = optarg; break;
            case 'k': config.control_key = optarg; break;
            case 'm': config.manifest_path = optarg; break;
            case 'x': config.exit_when_done = true; break;
            case 'j': json = true; break;
            case 'c': {
                char *end = NULL;
                long value = strtol (optarg, &end, 10);
                if (!end || *end || value < 1024 || value > 16 * 1024 * 1024)
                    return s_usage_error ("--chunk-size must be 1024..16777216, not '%s'", optarg);
                config.chunk_size = (size_t) value;
                break;
            }
            case 'r': {
                char *end = NULL;
                long value = strtol (optarg, &end, 10);
                if (!end || *end || value < 1 || value > 64)
                    return s_usage_error ("--credit must be 1..64, not '%s'", optarg);
                config.credit = (int) value;
                break;
            }
            case 'v':
                level = umb_log_level_parse (optarg);
                if (level < 0)
                    return s_usage_error ("unknown log level '%s'", optarg);
                break;
            case 'h':
                fputs (s_usage, stdout);
                return UMB_EXIT_OK;
            default:
                return s_usage_error ("unknown or incomplete option '%s'", argv [optind - 1]);
        }
    }
    if (optind < argc)
        return s_usage_error ("unexpected argument '%s'", argv [optind]);
    if (!config.endpoint)
        return s_usage_error ("%s is required", "--listen");
    if (!config.workdir)
        return s_usage_error ("%s is required", "--workdir");
    if (!streq (config.attestation, "none") && !streq (config.attestation, "snp")
    &&  !streq (config.attestation, "tdx") && !streq (config.attestation, "auto"))
        return s_usage_error ("--attestation must be none, snp, tdx or auto, not '%s'",
                              config.attestation);
    if (config.control_key && strlen (config.control_key) != 40)
        return s_usage_error ("--control-key must be a Z85 CURVE public key (40 characters), not '%s'",
                              config.control_key);

    //  Only this thread takes the stop signals (through a signalfd)
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);
    zsys_handler_set (NULL);
    int signal_fd = signalfd (-1, &stop, SFD_CLOEXEC);
    assert (signal_fd != -1);

    umb_log_t *log = umb_log_new ("agent", (umb_log_level_t) level, json);
    umb_zap_t *zap = umb_zap_new (log);
    assert (zap);
    config.zap = zap;
    config.log = log;
    zactor_t *agent = zactor_new (umb_agent_actor, &config);
    assert (agent);
    int exit_code = UMB_EXIT_OK;
    char *status = NULL, *first = NULL, *second = NULL, *third = NULL;
    if (zstr_recvx (agent, &status, &first, &second, &third, NULL) < 2 || !streq (status, "READY")) {
        fprintf (stderr, "umbra-agent: %s\n", first ? first : "the agent did not start");
        exit_code = UMB_EXIT_FAILED;
    }
    else {
        printf ("umbra-agent: listening on %s attestation %s key %s\n", first, second, third);
        fflush (stdout);
        zmq_pollitem_t items [] = {
            { zsock_resolve (agent), 0, ZMQ_POLLIN, 0 },
            { NULL, signal_fd, ZMQ_POLLIN, 0 }
        };
        while (true) {
            if (zmq_poll (items, 2, -1) == -1) {
                if (errno == EINTR)
                    continue;
                break;
            }
            if (items [1].revents & ZMQ_POLLIN) {
                struct signalfd_siginfo info;
                if (read (signal_fd, &info, sizeof info) == sizeof info)
                    umb_log_info (log, "stopping on %s", info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
                break;
            }
            if (items [0].revents & ZMQ_POLLIN) {
                char *done = NULL, *state = NULL;
                zstr_recvx (agent, &done, &state, NULL);
                bool finished = done && streq (done, "DONE");
                if (finished) {
                    umb_log_info (log, "computation finished: %s", state ? state : "?");
                    exit_code = state && streq (state, "Complete") ? UMB_EXIT_OK : UMB_EXIT_FAILED;
                }
                zstr_free (&done);
                zstr_free (&state);
                if (finished)
                    break;
            }
        }
    }
    zstr_free (&status);
    zstr_free (&first);
    zstr_free (&second);
    zstr_free (&third);
    zactor_destroy (&agent);
    umb_zap_destroy (&zap);
    umb_log_destroy (&log);
    close (signal_fd);
    return exit_code;
}
