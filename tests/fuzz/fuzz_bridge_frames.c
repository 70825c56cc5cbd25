//  fuzz_bridge_frames - libFuzzer target for the bridge link (peer input): the
//  frame decoder and HELLO scan on the raw bytes, then a real bridge fed the
//  same bytes after a valid HELLO over a socketpair (its whole state machine)
#include <assert.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "umb_link.h"
#include "umb_bridge.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
s_decode_all (const uint8_t *data, size_t size)
{
    size_t offset = 0;
    while (offset < size) {
        umb_link_frame_t frame;
        char reason [128] = "";
        ssize_t rc = umb_link_decode (data + offset, size - offset, &frame, reason, sizeof reason);
        if (rc == 0)
            break;
        if (rc < 0) {
            assert (reason [0]);
            //  Resynchronise as a bridge waiting for HELLO would
            size_t skip = umb_link_scan (data + offset + 1, size - offset - 1);
            offset += 1 + skip;
            continue;
        }
        assert ((size_t) rc == UMB_LINK_HEADER_SIZE + frame.length && (size_t) rc <= size - offset);
        assert (frame.length <= UMB_LINK_DATA_MAX);
        if (frame.type == UMB_LINK_HELLO)
            assert (frame.hello_session && frame.hello_window >= UMB_LINK_WINDOW_MIN);
        if (frame.type == UMB_LINK_OPEN)
            assert (umb_link_name_valid ((const char *) frame.payload, frame.length));
        offset += (size_t) rc;
    }
    assert (umb_link_scan (data, size) <= size);
}

//  The target of stream "echo": a unix listener made once per process (the
//  harness's only state); each input's connections are taken and closed
static int s_echo_fd = -1;
static char s_echo_path [108];

static void
s_echo_cleanup (void)
{
    unlink (s_echo_path);
}

static void
s_echo_setup (void)
{
    if (s_echo_fd >= 0)
        return;
    atexit (s_echo_cleanup);
    snprintf (s_echo_path, sizeof s_echo_path, "/tmp/umb-fuzz-bridge-%d.sock", (int) getpid ());
    unlink (s_echo_path);
    s_echo_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    strcpy (sun.sun_path, s_echo_path);
    assert (s_echo_fd >= 0 && bind (s_echo_fd, (struct sockaddr *) &sun, sizeof sun) == 0);
    assert (listen (s_echo_fd, 64) == 0);
}

static void
s_echo_serve (int *held, size_t *count)
{
    int fd;
    while (*count < 8 && (fd = accept4 (s_echo_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        //  Answer something, so the bridge reads from a target too
        if (send (fd, "pong", 4, MSG_NOSIGNAL) < 0) { }
        held [(*count)++] = fd;
    }
    uint8_t sink [4096];
    for (size_t i = 0; i < *count; i++)
        while (recv (held [i], sink, sizeof sink, MSG_DONTWAIT) > 0)
            ;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_decode_all (data, size);
    s_echo_setup ();
    if (size > 60000)
        return 0;
    int pair [2];
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair))
        return 0;
    int sndbuf = 1 << 20;
    setsockopt (pair [1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    char link [32];
    snprintf (link, sizeof link, "fd:%d", pair [0]);
    //  "echo" is served; "gone" cannot be reached (OPEN gets a CLOSE back)
    char echo [128];
    snprintf (echo, sizeof echo, "unix:%s", s_echo_path);
    umb_bridge_route_t targets [] = {{ "echo", echo }, { "gone", "unix:/nonexistent/umb-fuzz.sock" }};
    umb_bridge_config_t config = { .link = link, .targets = targets, .targets_count = 2,
                                   .window = 4096, .max_streams = 4 };
    umb_bridge_t *bridge = umb_bridge_new (&config, NULL);
    assert (bridge);
    uint8_t hello [UMB_LINK_HEADER_SIZE + UMB_LINK_HELLO_SIZE];
    umb_link_hello (hello, 0, 0x0123456789ABCDEFULL, 4096);
    if (write (pair [1], hello, sizeof hello) != (ssize_t) sizeof hello) {
        umb_bridge_destroy (&bridge);
        close (pair [1]);
        return 0;
    }
    size_t offset = 0;
    uint8_t sink [65536];
    int held [8];
    size_t held_count = 0;
    for (int round = 0; round < 64; round++) {
        if (offset < size) {
            ssize_t rc = send (pair [1], data + offset, size - offset, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (rc > 0)
                offset += (size_t) rc;
        }
        umb_bridge_poll (bridge, 0, -1);
        s_echo_serve (held, &held_count);
        umb_bridge_poll (bridge, 0, -1);
        while (recv (pair [1], sink, sizeof sink, MSG_DONTWAIT) > 0)
            ;
        if (offset == size && round > 4)
            break;
    }
    umb_bridge_stats_t stats;
    umb_bridge_stats (bridge, &stats);
    assert (stats.buffered <= 4 * 1024 * 1024);
    umb_bridge_destroy (&bridge);
    close (pair [1]);
    for (size_t i = 0; i < held_count; i++)
        close (held [i]);
    //  Connections the bridge made but we did not take
    int fd;
    while ((fd = accept4 (s_echo_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
        close (fd);
    return 0;
}
