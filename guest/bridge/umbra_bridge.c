//  umbra-bridge - relays ZeroMQ connections over one link (proto/bridge.md)
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
#include "umb_bridge.h"
#include "umb_log.h"

static const char s_usage [] =
    "usage: umbra-bridge --link SPEC [--listen NAME=ADDR]... [--target NAME=ADDR]... [options]\n"
    "\n"
    "  --link SPEC           virtio-serial:PATH|NAME, unix-connect:PATH, unix-listen:PATH,\n"
    "                        tcp-connect:HOST:PORT, tcp-listen:HOST:PORT, vsock-connect:CID:PORT,\n"
    "                        vsock-listen:PORT or fd:N\n"
    "  --listen NAME=ADDR    accept local connections on ADDR (tcp:HOST:PORT, tcp://HOST:PORT,\n"
    "                        unix:PATH, ipc://PATH; port 0 picks one; @NAME for a Linux abstract\n"
    "                        socket) and open stream NAME for each\n"
    "  --target NAME=ADDR    connect streams NAME opened by the peer to ADDR (tcp://HOST:PORT,\n"
    "                        tcp:HOST:PORT, ipc://PATH, unix:PATH; PATH may be @NAME)\n"
    "  --window BYTES        per-stream credit window (default 262144)\n"
    "  --keepalive MS        PING after this much silence; dead after 3 (default 5000)\n"
    "  --max-streams N       open streams (default 256)\n"
    "  --log-level LEVEL     debug, info, warn or error (default info)\n"
    "  --log-json            write logs as JSON lines\n"
    "  --help\n"
    "\n"
    "Prints 'umbra-bridge: ready link SPEC [link-port N] [listen NAME=ENDPOINT ...]' when ready.\n"
    "Exit codes: 0 stopped by SIGINT/SIGTERM, 1 failed, 2 usage error.\n";

static int s_usage_error (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

static int
s_usage_error (const char *format, ...)
{
    fprintf (stderr, "umbra-bridge: ");
    va_list args;
    va_start (args, format);
    vfprintf (stderr, format, args);
    va_end (args);
    fprintf (stderr, "\n%s", s_usage);
    return 2;
}

//  Splits NAME=ADDR in place
static int
s_route (char *text, umb_bridge_route_t *route)
{
    char *equals = strchr (text, '=');
    if (!equals || equals == text || !equals [1])
        return -1;
    *equals = 0;
    route->name = text;
    route->address = equals + 1;
    return 0;
}

static long
s_number (const char *text, long min, long max)
{
    char *end = NULL;
    errno = 0;
    long value = strtol (text, &end, 10);
    if (errno || !*text || *end || value < min || value > max)
        return -1;
    return value;
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "link",        required_argument, NULL, 'l' },
        { "listen",      required_argument, NULL, 'L' },
        { "target",      required_argument, NULL, 't' },
        { "window",      required_argument, NULL, 'w' },
        { "keepalive",   required_argument, NULL, 'k' },
        { "max-streams", required_argument, NULL, 'm' },
        { "log-level",   required_argument, NULL, 'v' },
        { "log-json",    no_argument,       NULL, 'j' },
        { "help",        no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    umb_bridge_route_t listeners [UMB_BRIDGE_MAX_ROUTES];
    umb_bridge_route_t targets [UMB_BRIDGE_MAX_ROUTES];
    umb_bridge_config_t config = { .listeners = listeners, .targets = targets };
    int level = UMB_LOG_INFO;
    bool json = false;
    long number;
    int option;
    opterr = 0;
    while ((option = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (option) {
            case 'l':
                config.link = optarg;
                break;
            case 'L':
                if (config.listeners_count == UMB_BRIDGE_MAX_ROUTES)
                    return s_usage_error ("too many --listen");
                if (s_route (optarg, &listeners [config.listeners_count++]))
                    return s_usage_error ("--listen wants NAME=ADDR");
                break;
            case 't':
                if (config.targets_count == UMB_BRIDGE_MAX_ROUTES)
                    return s_usage_error ("too many --target");
                if (s_route (optarg, &targets [config.targets_count++]))
                    return s_usage_error ("--target wants NAME=ADDR");
                break;
            case 'w':
                if ((number = s_number (optarg, 4096, 16 * 1024 * 1024)) < 0)
                    return s_usage_error ("--window wants 4096..16777216");
                config.window = (uint32_t) number;
                break;
            case 'k':
                if ((number = s_number (optarg, 10, 3600000)) < 0)
                    return s_usage_error ("--keepalive wants 10..3600000 (ms)");
                config.keepalive_ms = (int) number;
                break;
            case 'm':
                if ((number = s_number (optarg, 1, 65536)) < 0)
                    return s_usage_error ("--max-streams wants 1..65536");
                config.max_streams = (int) number;
                break;
            case 'v':
                if ((level = umb_log_level_parse (optarg)) < 0)
                    return s_usage_error ("unknown log level '%s'", optarg);
                break;
            case 'j':
                json = true;
                break;
            case 'h':
                printf ("%s", s_usage);
                return 0;
            default:
                return s_usage_error ("unknown or incomplete option '%s'", argv [optind - 1]);
        }
    }
    if (optind < argc)
        return s_usage_error ("unexpected argument '%s'", argv [optind]);
    if (!config.link)
        return s_usage_error ("--link is required");
    if (config.listeners_count + config.targets_count == 0)
        return s_usage_error ("give at least one --listen or --target");

    //  Only this thread receives the stop signals, through a signalfd the loop polls
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    sigprocmask (SIG_BLOCK, &stop, NULL);
    signal (SIGPIPE, SIG_IGN);
    int signal_fd = signalfd (-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd < 0) {
        fprintf (stderr, "umbra-bridge: signalfd: %s\n", strerror (errno));
        return 1;
    }
    umb_log_t *log = umb_log_new ("bridge", (umb_log_level_t) level, json);
    config.log = log;
    char *reason = NULL;
    umb_bridge_t *bridge = umb_bridge_new (&config, &reason);
    if (!bridge) {
        fprintf (stderr, "umbra-bridge: %s\n", reason? reason: "cannot start");
        free (reason);
        umb_log_destroy (&log);
        close (signal_fd);
        return 1;
    }
    printf ("umbra-bridge: ready link %s", config.link);
    if (umb_bridge_link_port (bridge) >= 0)
        printf (" link-port %d", umb_bridge_link_port (bridge));
    if (config.listeners_count) {
        printf (" listen");
        for (size_t i = 0; i < config.listeners_count; i++)
            printf (" %s=%s", listeners [i].name, umb_bridge_endpoint (bridge, listeners [i].name));
    }
    printf ("\n");
    fflush (stdout);
    umb_log_info (log, "relaying over %s", config.link);

    while (!umb_bridge_poll (bridge, -1, signal_fd))
        ;
    struct signalfd_siginfo info;
    if (read (signal_fd, &info, sizeof info) == sizeof info)
        umb_log_info (log, "stopping on %s", info.ssi_signo == SIGINT? "SIGINT": "SIGTERM");
    umb_bridge_destroy (&bridge);
    umb_log_destroy (&log);
    close (signal_fd);
    return 0;
}
