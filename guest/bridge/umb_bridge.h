//  umb_bridge - byte relay carrying ZeroMQ (ZMTP) connections over one link
//
//  A bridge holds one byte-stream "link" (virtio-serial port, unix or TCP
//  socket, AF_VSOCK, or an inherited fd) and multiplexes named streams over
//  it with the framing of proto/bridge.md (HELLO, OPEN, DATA, CREDIT, CLOSE,
//  PING/PONG). It never parses ZMTP: bytes in, bytes out, so CURVE stays end
//  to end and the bridge only sees ciphertext. Guest and host run the same
//  code:
//
//  - a local connection accepted on a *listener* NAME opens a stream NAME;
//  - a stream NAME opened by the peer is connected to the local *target* NAME.
//
//  Each stream has a credit window (default 256 KiB): a side sends DATA only
//  within the credit the other granted and stops reading its local socket
//  when out of credit, so a slow reader back-pressures the writer through TCP
//  flow control and no buffer grows without bound. A malformed frame, an
//  unknown stream, DATA beyond credit or an oversize frame resets the link
//  (all streams closed, HELLO again); the bridge stays up. Link loss is
//  detected by EOF or by keepalive (virtio-serial gives no EOF when the other
//  side dies) and the link is retried with backoff. On socket links, DATA
//  payloads move between the link and local sockets with splice(2) (no copy
//  in user space) unless a tap is set.
//
//  Link specs:
//      virtio-serial:PATH|NAME   guest port: /dev/vportNpM, or a port name
//                                ("org.umbra.link.0") looked up under
//                                /dev/virtio-ports/ and /sys/class/virtio-ports/
//      unix-connect:PATH         e.g. the host end of a libvirt <channel type='unix'>
//      unix-listen:PATH
//      tcp-connect:HOST:PORT
//      tcp-listen:HOST:PORT      (PORT 0 picks one; see umb_bridge_link_port)
//      vsock-connect:CID:PORT
//      vsock-listen:PORT
//      fd:N                      an inherited socket (socketpair end); the
//                                bridge owns it from umb_bridge_new on
//  A *-listen link serves one peer at a time; a new connection replaces the
//  current one (the peer restarted).
//
//  Listener addresses (local, where clients connect):
//      tcp:HOST:PORT  or tcp://HOST:PORT   (PORT 0 or * picks one)
//      unix:PATH      or ipc://PATH        (a stale socket file is replaced)
//  Target addresses (local, where streams are connected to):
//      tcp://HOST:PORT, tcp:HOST:PORT, ipc://PATH, unix:PATH
//  Stream names: 1..64 characters of [A-Za-z0-9._-].
//
//  Use in a process (the host side in umbra-backends):
//
//      umb_bridge_route_t listen [] = {{ "control", "tcp:127.0.0.1:0" }};
//      umb_bridge_config_t config = {
//          .link = "unix-connect:/var/lib/libvirt/qemu/channel/target/x/org.umbra.link.0",
//          .listeners = listen, .listeners_count = 1 };
//      char *reason = NULL;
//      zactor_t *bridge = umb_bridge_actor_new (&config, &reason);
//      if (!bridge) { ... reason ...; free (reason); }
//      zstr_send (bridge, "ENDPOINT");  ... see umb_bridge_actor
//      char *endpoint = zstr_recv (bridge);      //  "tcp://127.0.0.1:40123"
//      ...
//      zactor_destroy (&bridge);
//
//  or synchronously, in one thread: umb_bridge_new, then umb_bridge_poll in a
//  loop (tests, or a caller with its own loop).
#ifndef UMB_BRIDGE_H_INCLUDED
#define UMB_BRIDGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>
#include "umb_log.h"

#define UMB_BRIDGE_WINDOW_DEFAULT     (256 * 1024)   //  per-stream credit window, bytes
#define UMB_BRIDGE_KEEPALIVE_DEFAULT  5000           //  PING after this much silence, ms
#define UMB_BRIDGE_MAX_STREAMS_DEFAULT 256
#define UMB_BRIDGE_MAX_ROUTES         32             //  listeners, and targets, per bridge

typedef struct _umb_bridge_t umb_bridge_t;

//  One listener or target: a stream name and a local address. Both borrowed.
typedef struct {
    const char *name;
    const char *address;
} umb_bridge_route_t;

//  All strings are borrowed and copied by umb_bridge_new. Zero means default.
typedef struct {
    const char *link;                       //  link spec (required)
    const umb_bridge_route_t *listeners;    //  local listeners: name -> listen address
    size_t listeners_count;
    const umb_bridge_route_t *targets;      //  local targets: name -> connect address
    size_t targets_count;
    umb_log_t *log;                         //  borrowed, may be NULL (no logging)
    uint32_t window;                        //  per-stream receive window, bytes (4 KiB..16 MiB)
    int keepalive_ms;                       //  PING interval; the link is dead after
                                            //  3 intervals without a byte from the peer
    int retry_max_ms;                       //  cap of the link retry backoff (default 2000)
    int max_streams;                        //  open streams, both directions (default 256)
} umb_bridge_config_t;

//  Counters, for operators and tests.
typedef struct {
    bool     link_up;           //  transport connected and the peer's HELLO received
    uint64_t peer_session;      //  the peer's session id (0 before HELLO)
    uint64_t link_ups;          //  times the link came up (HELLO exchanged)
    uint64_t link_resets;       //  protocol errors, dead keepalives, peer restarts, losses
    uint64_t protocol_errors;   //  malformed or illegal frames received
    uint64_t streams;           //  open streams (both directions)
    uint64_t streams_opened;    //  total streams opened (both directions)
    uint64_t streams_refused;   //  OPENs refused (unknown name, target down, too many)
    uint64_t pending;           //  local connections waiting for the link to come up
    uint64_t paused;            //  streams not read because they are out of credit
    size_t   buffered;          //  bytes held now: link in/out buffers + stream buffers
    size_t   buffered_peak;     //  the highest value buffered has had
    uint64_t link_bytes_in;     //  bytes read from the link
    uint64_t link_bytes_out;    //  bytes written to the link
    uint64_t discarded;         //  bytes skipped while looking for the peer's HELLO
    uint64_t spliced;           //  DATA payload bytes moved with splice(2), both ways
} umb_bridge_stats_t;

//  Parses the config, opens the listeners (bound at once: ports are readable
//  right away) and prepares the link (connected or opened by the first
//  umb_bridge_poll, and again with backoff whenever it is lost). NULL and
//  *reason (the caller frees it) on a bad config or a listener that cannot bind.
umb_bridge_t *
    umb_bridge_new (const umb_bridge_config_t *config, char **reason);

//  Closes every socket and the link; unlinks unix listener sockets it made.
//  Idempotent; sets *self_p to NULL.
void
    umb_bridge_destroy (umb_bridge_t **self_p);

//  Runs the event loop once: waits up to timeout_ms for the link, listeners,
//  streams and extra_fd (-1: none), handles what is ready. Returns 1 if
//  extra_fd is readable, 0 otherwise. Never fails: link and stream errors are
//  handled (and logged) inside.
int
    umb_bridge_poll (umb_bridge_t *self, int timeout_ms, int extra_fd);

//  The bound TCP port of listener name, or -1 (no such listener, or unix).
int
    umb_bridge_port (umb_bridge_t *self, const char *name);

//  A ZeroMQ endpoint that reaches listener name ("tcp://127.0.0.1:PORT" or
//  "ipc://PATH"), or NULL. Borrowed, valid while the bridge lives.
const char *
    umb_bridge_endpoint (umb_bridge_t *self, const char *name);

//  For *-listen links: the bound port (tcp-listen:H:0 picks one), else -1.
int
    umb_bridge_link_port (umb_bridge_t *self);

void
    umb_bridge_stats (umb_bridge_t *self, umb_bridge_stats_t *stats);

//  Drops the link now as if it were lost (closes the transport, all streams),
//  and retries it after the backoff. For tests and operators.
void
    umb_bridge_link_drop (umb_bridge_t *self);

//  Reads the link's bytes as they are received (tap) into a callback; tests
//  use it to check that only ciphertext crosses. NULL removes it.
typedef void (umb_bridge_tap_fn) (void *arg, bool outgoing, const uint8_t *data, size_t size);
void
    umb_bridge_set_tap (umb_bridge_t *self, umb_bridge_tap_fn *tap, void *arg);

//  The actor. args is an umb_bridge_t * made by umb_bridge_new; the actor
//  takes it (and destroys it on $TERM). Commands on the pipe (strings):
//      "PORT" name       -> "N" (listener's TCP port) or "-1"
//      "ENDPOINT" name   -> a ZeroMQ endpoint for listener name, or ""
//      "LINKPORT"        -> "N" (a *-listen link's port) or "-1"
//      "STATUS"          -> "up" or "down"
//      "STATS"           -> one line "link_up=0|1 link_ups=N link_resets=N
//                           protocol_errors=N streams=N pending=N buffered=N ..."
//      "DROP"            -> (no reply) umb_bridge_link_drop
//      "$TERM"           -> the actor ends
void
    umb_bridge_actor (zsock_t *pipe, void *args);

//  umb_bridge_new + zactor_new (umb_bridge_actor). NULL and *reason (the
//  caller frees it) on failure.
zactor_t *
    umb_bridge_actor_new (const umb_bridge_config_t *config, char **reason);

void
    umb_bridge_test (bool verbose);

#endif
