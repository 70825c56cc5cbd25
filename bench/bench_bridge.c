//  bench_bridge - relay throughput of the bridge over a unix-socket link against
//  a direct TCP connection, in the same run
//
//  Run it through bench/run (release build), or alone:
//
//      build-bench/bench/bench_bridge [mebibytes [rounds]]
//
//  A sink thread accepts TCP connections on 127.0.0.1 and reads every byte.
//  Each measurement sends `mebibytes` MiB (default 256) from the main thread
//  over one TCP connection and stops the clock when the sink has read them all:
//    a) direct: client -> sink;
//    b) relay: client -> host bridge listener -> unix-socket link (the framing
//       of proto/bridge.md, per-stream credit) -> guest bridge -> sink;
//       each bridge runs in its own thread (umb_bridge_actor), as in a process.
//    c) bare: the same two hops (TCP -> unix socketpair -> TCP) through two
//       threads that only splice(2) bytes along, without framing, credit or an
//       event loop: the ceiling of any user-space relay over this topology.
//  Then what the bridge carries in umbra, ZeroMQ with CURVE: a PUSH (CURVE
//  client) sends the same amount in 64 KiB messages to a PULL (CURVE server)
//  in another thread, directly and through the bridges.
//  Direct, relay and bare alternate over several rounds (default 5); medians
//  are reported, with relay / direct (target >= 0.8) and relay / bare (what
//  the bridge's protocol and loop cost). Nothing is asserted on time.
//
//  The last lines are "key = value" pairs for bench/run to collect.
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <czmq.h>
#include "umb_bench.h"
#include "umb_bridge.h"

#define S_MAX_ROUNDS    99
#define S_TARGET_RATIO  0.8

typedef struct {
    int listen_fd;
    int done_pipe [2];          //  the sink writes one byte per completed transfer
    uint64_t expected;
} s_sink_t;

static void *
s_sink_run (void *arg)
{
    s_sink_t *sink = arg;
    size_t size = 1 << 20;
    uint8_t *buffer = malloc (size);
    assert (buffer);
    while (true) {
        int fd = accept (sink->listen_fd, NULL, NULL);
        if (fd < 0)
            break;
        uint64_t received = 0;
        while (received < sink->expected) {
            ssize_t rc = recv (fd, buffer, size, 0);
            if (rc <= 0)
                break;
            received += (uint64_t) rc;
        }
        char done = received == sink->expected? 'y': 'n';
        if (write (sink->done_pipe [1], &done, 1) != 1)
            break;
        close (fd);
    }
    free (buffer);
    return NULL;
}

//  Sends bytes to port and returns MiB/s once the sink has them all, or -1
static double
s_transfer (s_sink_t *sink, int port, const uint8_t *chunk, size_t chunk_size)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    if (connect (fd, (struct sockaddr *) &sin, sizeof sin) < 0) {
        close (fd);
        return -1;
    }
    double start = umb_bench_now ();
    uint64_t sent = 0;
    while (sent < sink->expected) {
        size_t want = chunk_size;
        if (sink->expected - sent < want)
            want = (size_t) (sink->expected - sent);
        ssize_t rc = send (fd, chunk, want, MSG_NOSIGNAL);
        if (rc <= 0) {
            close (fd);
            return -1;
        }
        sent += (uint64_t) rc;
    }
    char done = 0;
    struct pollfd pfd = { .fd = sink->done_pipe [0], .events = POLLIN };
    if (poll (&pfd, 1, 60000) != 1 || read (sink->done_pipe [0], &done, 1) != 1 || done != 'y') {
        close (fd);
        return -1;
    }
    double elapsed = umb_bench_now () - start;
    close (fd);
    return (double) sink->expected / (1024.0 * 1024.0) / elapsed;
}

typedef struct {
    int in;
    int out;
} s_hop_t;

static void *
s_hop_run (void *arg)
{
    s_hop_t *hop = arg;
    int pipe_fds [2];
    if (pipe (pipe_fds) == 0) {
        while (true) {
            ssize_t rc = splice (hop->in, NULL, pipe_fds [1], NULL, 65536, SPLICE_F_MOVE);
            if (rc <= 0)
                break;
            while (rc > 0) {
                ssize_t sent = splice (pipe_fds [0], NULL, hop->out, NULL, (size_t) rc, SPLICE_F_MOVE);
                if (sent <= 0)
                    break;
                rc -= sent;
            }
            if (rc > 0)
                break;
        }
        close (pipe_fds [0]);
        close (pipe_fds [1]);
    }
    close (hop->in);
    close (hop->out);
    return NULL;
}

//  The bare relay: a listener, and for its one connection two splicing hops
static double
s_bare_transfer (s_sink_t *sink, int sink_port, const uint8_t *chunk, size_t chunk_size)
{
    int listener = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof sin;
    int pair [2];
    if (listener < 0 || bind (listener, (struct sockaddr *) &sin, sizeof sin) < 0
    ||  listen (listener, 1) < 0 || getsockname (listener, (struct sockaddr *) &sin, &len) < 0
    ||  socketpair (AF_UNIX, SOCK_STREAM, 0, pair) < 0)
        return -1;
    int to_sink = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sink_addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) sink_port),
                                     .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    if (connect (to_sink, (struct sockaddr *) &sink_addr, sizeof sink_addr) < 0)
        return -1;
    s_hop_t first = { .in = -1, .out = pair [0] };
    s_hop_t second = { .in = pair [1], .out = to_sink };
    pthread_t second_thread;
    pthread_create (&second_thread, NULL, s_hop_run, &second);
    //  The client's connect completes in the backlog; the first hop starts once accepted
    int client = socket (AF_INET, SOCK_STREAM, 0);
    if (connect (client, (struct sockaddr *) &sin, sizeof sin) < 0)
        return -1;
    first.in = accept (listener, NULL, NULL);
    pthread_t first_thread;
    pthread_create (&first_thread, NULL, s_hop_run, &first);
    double start = umb_bench_now ();
    uint64_t sent = 0;
    while (sent < sink->expected) {
        size_t want = chunk_size;
        if (sink->expected - sent < want)
            want = (size_t) (sink->expected - sent);
        ssize_t rc = send (client, chunk, want, MSG_NOSIGNAL);
        if (rc <= 0)
            break;
        sent += (uint64_t) rc;
    }
    char done = 0;
    struct pollfd pfd = { .fd = sink->done_pipe [0], .events = POLLIN };
    bool ok = sent == sink->expected && poll (&pfd, 1, 60000) == 1
           && read (sink->done_pipe [0], &done, 1) == 1 && done == 'y';
    double elapsed = umb_bench_now () - start;
    close (client);
    pthread_join (first_thread, NULL);
    pthread_join (second_thread, NULL);
    close (listener);
    return ok? (double) sink->expected / (1024.0 * 1024.0) / elapsed: -1;
}

#define S_ZMQ_MESSAGE (64 * 1024)

//  The PULL side: "EXPECT n" -> receives n messages -> "DONE ok|short"
static void
s_pull_actor (zsock_t *pipe, void *args)
{
    zcert_t *cert = args;
    zsock_t *pull = zsock_new (ZMQ_PULL);
    zcert_apply (cert, pull);
    zsock_set_curve_server (pull, 1);
    zsock_set_rcvhwm (pull, 1000);
    int port = zsock_bind (pull, "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "%d", port);
    while (true) {
        char *command = zstr_recv (pipe);
        if (!command || streq (command, "$TERM")) {
            zstr_free (&command);
            break;
        }
        long expected = atol (command + 7);
        zstr_free (&command);
        long received = 0;
        zsock_set_rcvtimeo (pull, 30000);
        while (received < expected) {
            zmq_msg_t msg;
            zmq_msg_init (&msg);
            int rc = zmq_msg_recv (&msg, zsock_resolve (pull), 0);
            zmq_msg_close (&msg);
            if (rc < 0)
                break;
            received++;
        }
        zstr_send (pipe, received == expected? "DONE ok": "DONE short");
    }
    zsock_destroy (&pull);
}

//  MiB/s of CURVE messages to endpoint, or -1
static double
s_zmq_transfer (zactor_t *puller, const char *endpoint, zcert_t *server, zcert_t *client,
                uint64_t bytes, const uint8_t *payload)
{
    long count = (long) (bytes / S_ZMQ_MESSAGE);
    zsock_t *push = zsock_new (ZMQ_PUSH);
    zcert_apply (client, push);
    zsock_set_curve_serverkey (push, zcert_public_txt (server));
    zsock_set_sndhwm (push, 1000);
    zsock_set_linger (push, 0);
    if (zsock_connect (push, "%s", endpoint)) {
        zsock_destroy (&push);
        return -1;
    }
    zstr_sendf (puller, "EXPECT %ld", count);
    double start = umb_bench_now ();
    for (long i = 0; i < count; i++)
        if (zmq_send (zsock_resolve (push), payload, S_ZMQ_MESSAGE, 0) < 0)
            break;
    char *done = zstr_recv (puller);
    double elapsed = umb_bench_now () - start;
    bool ok = done && streq (done, "DONE ok");
    zstr_free (&done);
    zsock_destroy (&push);
    return ok? (double) count * S_ZMQ_MESSAGE / (1024.0 * 1024.0) / elapsed: -1;
}

int
main (int argc, char **argv)
{
    long mebibytes = argc > 1? atol (argv [1]): 256;
    int rounds = argc > 2? atoi (argv [2]): 5;
    if (mebibytes < 1 || mebibytes > 65536 || rounds < 1 || rounds > S_MAX_ROUNDS) {
        fprintf (stderr, "usage: bench_bridge [mebibytes (1..65536) [rounds (1..99)]]\n");
        return 2;
    }
    zsys_init ();
    zsys_set_logstream (NULL);

    s_sink_t sink = { .expected = (uint64_t) mebibytes * 1024 * 1024 };
    sink.listen_fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof sin;
    if (sink.listen_fd < 0 || bind (sink.listen_fd, (struct sockaddr *) &sin, sizeof sin) < 0
    ||  listen (sink.listen_fd, 16) < 0 || getsockname (sink.listen_fd, (struct sockaddr *) &sin, &len) < 0
    ||  pipe (sink.done_pipe) < 0) {
        fprintf (stderr, "bench_bridge: cannot make the sink: %s\n", strerror (errno));
        return 1;
    }
    int sink_port = ntohs (sin.sin_port);
    pthread_t sink_thread;
    pthread_create (&sink_thread, NULL, s_sink_run, &sink);

    //  The two bridges, linked by a unix socket
    char path [108], link_guest [128], link_host [128], target [64];
    snprintf (path, sizeof path, "/tmp/umb-bench-bridge-%d.sock", (int) getpid ());
    snprintf (link_guest, sizeof link_guest, "unix-listen:%s", path);
    snprintf (link_host, sizeof link_host, "unix-connect:%s", path);
    snprintf (target, sizeof target, "tcp://127.0.0.1:%d", sink_port);
    zcert_t *server_cert = zcert_new ();
    zcert_t *client_cert = zcert_new ();
    zactor_t *puller = zactor_new (s_pull_actor, server_cert);
    char *pull_port = zstr_recv (puller);
    char pull_endpoint [64], pull_target [64];
    snprintf (pull_endpoint, sizeof pull_endpoint, "tcp://127.0.0.1:%s", pull_port? pull_port: "0");
    snprintf (pull_target, sizeof pull_target, "tcp://127.0.0.1:%s", pull_port? pull_port: "0");
    zstr_free (&pull_port);
    umb_bridge_route_t targets [] = {{ "bulk", target }, { "zmq", pull_target }};
    umb_bridge_route_t listen_routes [] = {{ "bulk", "tcp:127.0.0.1:0" }, { "zmq", "tcp:127.0.0.1:0" }};
    umb_bridge_config_t guest_config = { .link = link_guest, .targets = targets, .targets_count = 2 };
    umb_bridge_config_t host_config = { .link = link_host, .listeners = listen_routes, .listeners_count = 2 };
    char *reason = NULL;
    zactor_t *guest = umb_bridge_actor_new (&guest_config, &reason);
    zactor_t *host = guest? umb_bridge_actor_new (&host_config, &reason): NULL;
    if (!guest || !host) {
        fprintf (stderr, "bench_bridge: %s\n", reason? reason: "cannot start the bridges");
        return 1;
    }
    zstr_sendx (host, "PORT", "bulk", NULL);
    char *port_text = zstr_recv (host);
    int relay_port = port_text? atoi (port_text): -1;
    zstr_free (&port_text);
    zstr_sendx (host, "ENDPOINT", "zmq", NULL);
    char *relay_zmq = zstr_recv (host);
    //  Wait for the link (the host retries its connect)
    for (int i = 0; i < 500; i++) {
        zstr_send (host, "STATUS");
        char *status = zstr_recv (host);
        bool up = status && streq (status, "up");
        zstr_free (&status);
        if (up)
            break;
        zclock_sleep (10);
    }

    size_t chunk_size = 256 * 1024;
    uint8_t *chunk = malloc (chunk_size);
    assert (chunk);
    for (size_t i = 0; i < chunk_size; i++)
        chunk [i] = (uint8_t) (i * 131 + 7);

    printf ("bench_bridge: %ld MiB per transfer, %d rounds, direct, relay and bare relay alternating\n",
            mebibytes, rounds);
    //  Warm-up (not counted)
    sink.expected = 16 * 1024 * 1024;
    if (s_transfer (&sink, sink_port, chunk, chunk_size) < 0
    ||  s_transfer (&sink, relay_port, chunk, chunk_size) < 0) {
        fprintf (stderr, "bench_bridge: warm-up transfer failed\n");
        return 1;
    }
    sink.expected = (uint64_t) mebibytes * 1024 * 1024;
    double direct [S_MAX_ROUNDS], relay [S_MAX_ROUNDS], bare [S_MAX_ROUNDS];
    for (int round = 0; round < rounds; round++) {
        direct [round] = s_transfer (&sink, sink_port, chunk, chunk_size);
        relay [round] = s_transfer (&sink, relay_port, chunk, chunk_size);
        bare [round] = s_bare_transfer (&sink, sink_port, chunk, chunk_size);
        if (direct [round] < 0 || relay [round] < 0 || bare [round] < 0) {
            fprintf (stderr, "bench_bridge: a transfer failed in round %d\n", round + 1);
            return 1;
        }
        printf ("round %d: direct %8.1f MiB/s   relay %8.1f MiB/s   bare splice relay %8.1f MiB/s\n",
                round + 1, direct [round], relay [round], bare [round]);
    }
    //  ZeroMQ CURVE messages
    double zdirect [S_MAX_ROUNDS], zrelay [S_MAX_ROUNDS];
    uint64_t zbytes = sink.expected;
    if (s_zmq_transfer (puller, pull_endpoint, server_cert, client_cert, 16 * 1024 * 1024, chunk) < 0
    ||  s_zmq_transfer (puller, relay_zmq, server_cert, client_cert, 16 * 1024 * 1024, chunk) < 0) {
        fprintf (stderr, "bench_bridge: ZeroMQ warm-up failed\n");
        return 1;
    }
    for (int round = 0; round < rounds; round++) {
        zdirect [round] = s_zmq_transfer (puller, pull_endpoint, server_cert, client_cert, zbytes, chunk);
        zrelay [round] = s_zmq_transfer (puller, relay_zmq, server_cert, client_cert, zbytes, chunk);
        if (zdirect [round] < 0 || zrelay [round] < 0) {
            fprintf (stderr, "bench_bridge: a ZeroMQ transfer failed in round %d\n", round + 1);
            return 1;
        }
        printf ("round %d: ZeroMQ CURVE 64 KiB messages: direct %8.1f MiB/s   relay %8.1f MiB/s\n",
                round + 1, zdirect [round], zrelay [round]);
    }
    zstr_free (&relay_zmq);
    zstr_send (host, "STATS");
    char *stats = zstr_recv (host);
    printf ("host bridge: %s\n", stats? stats: "?");
    zstr_free (&stats);
    double direct_median = umb_bench_median (direct, rounds);
    double relay_median = umb_bench_median (relay, rounds);
    double bare_median = umb_bench_median (bare, rounds);
    double ratio = relay_median / direct_median;
    printf ("relay / direct = %.3f (target >= %.1f); relay / bare splice relay = %.3f\n",
            ratio, S_TARGET_RATIO, relay_median / bare_median);
    printf ("bridge.direct_mib_s = %.1f\n", direct_median);
    printf ("bridge.relay_mib_s = %.1f\n", relay_median);
    printf ("bridge.bare_mib_s = %.1f\n", bare_median);
    printf ("bridge.relay_over_direct = %.3f\n", ratio);
    printf ("bridge.relay_over_bare = %.3f\n", relay_median / bare_median);
    double zdirect_median = umb_bench_median (zdirect, rounds);
    double zrelay_median = umb_bench_median (zrelay, rounds);
    printf ("bridge.zmq_direct_mib_s = %.1f\n", zdirect_median);
    printf ("bridge.zmq_relay_mib_s = %.1f\n", zrelay_median);
    printf ("bridge.zmq_relay_over_direct = %.3f\n", zrelay_median / zdirect_median);

    zactor_destroy (&host);
    zactor_destroy (&guest);
    zactor_destroy (&puller);
    zcert_destroy (&server_cert);
    zcert_destroy (&client_cert);
    shutdown (sink.listen_fd, SHUT_RDWR);
    close (sink.listen_fd);
    pthread_join (sink_thread, NULL);
    free (chunk);
    return 0;
}
