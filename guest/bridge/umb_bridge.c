//  umb_bridge - byte relay carrying ZeroMQ (ZMTP) connections over one link
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/vm_sockets.h>
#include <sodium.h>
#include "umb_bridge.h"
#include "umb_link.h"

#define S_OUT_SOFT      (256 * 1024)        //  stop reading local sockets above this
#define S_OUT_HARD      (1024 * 1024)       //  stop reading the link above this
#define S_IN_SIZE       (4 * UMB_LINK_FRAME_MAX)
#define S_DRAIN_MS      30000
#define S_RETRY_MIN_MS  100
#define S_READ_MAX      UMB_LINK_DATA_MAX

//  ---------------------------------------------------------------- buffers

typedef struct {
    uint8_t *data;
    size_t start;
    size_t len;
    size_t cap;
} s_buf_t;

static void
s_buf_free (s_buf_t *buf)
{
    free (buf->data);
    memset (buf, 0, sizeof *buf);
}

static void
s_buf_clear (s_buf_t *buf)
{
    buf->start = buf->len = 0;
}

//  Makes room for size more bytes at the end; returns the write position
static uint8_t *
s_buf_reserve (s_buf_t *buf, size_t size)
{
    if (buf->start + buf->len + size > buf->cap && buf->start > 0) {
        memmove (buf->data, buf->data + buf->start, buf->len);
        buf->start = 0;
    }
    if (buf->len + size > buf->cap) {
        size_t cap = buf->cap? buf->cap: 4096;
        while (cap < buf->len + size)
            cap *= 2;
        uint8_t *data = realloc (buf->data, cap);
        assert (data);
        buf->data = data;
        buf->cap = cap;
    }
    return buf->data + buf->start + buf->len;
}

static void
s_buf_append (s_buf_t *buf, const void *data, size_t size)
{
    memcpy (s_buf_reserve (buf, size), data, size);
    buf->len += size;
}

static void
s_buf_consume (s_buf_t *buf, size_t size)
{
    assert (size <= buf->len);
    buf->start += size;
    buf->len -= size;
    if (buf->len == 0)
        buf->start = 0;
}

//  ---------------------------------------------------------------- addresses

typedef struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *path;                 //  unix sockets
} s_addr_t;

//  Parses HOST:PORT (HOST may be [v6], * or empty; PORT may be *)
static int
s_addr_inet (s_addr_t *self, const char *text, bool passive, char **reason)
{
    const char *colon = strrchr (text, ':');
    if (!colon) {
        *reason = strdup ("expected HOST:PORT");
        return -1;
    }
    char host [256];
    size_t host_len = (size_t) (colon - text);
    if (host_len >= sizeof host) {
        *reason = strdup ("host name too long");
        return -1;
    }
    memcpy (host, text, host_len);
    host [host_len] = 0;
    if (host_len >= 2 && host [0] == '[' && host [host_len - 1] == ']') {
        memmove (host, host + 1, host_len - 2);
        host [host_len - 2] = 0;
    }
    const char *port = colon + 1;
    if (streq (port, "*"))
        port = "0";
    char *end = NULL;
    long number = strtol (port, &end, 10);
    if (!*port || *end || number < 0 || number > 65535) {
        *reason = strdup ("bad port");
        return -1;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV | (passive? AI_PASSIVE: 0) };
    struct addrinfo *result = NULL;
    const char *node = (!*host || streq (host, "*"))? NULL: host;
    int rc = getaddrinfo (node, port, &hints, &result);
    if (rc || !result) {
        if (asprintf (reason, "cannot resolve '%s': %s", host, gai_strerror (rc)) < 0)
            *reason = NULL;
        return -1;
    }
    memcpy (&self->addr, result->ai_addr, result->ai_addrlen);
    self->addrlen = result->ai_addrlen;
    freeaddrinfo (result);
    return 0;
}

//  A path, or @NAME for a Linux abstract socket (as ZeroMQ's ipc://@NAME:
//  no file, so nothing to unlink; the length is part of the address)
static int
s_addr_unix (s_addr_t *self, const char *path, char **reason)
{
    struct sockaddr_un *sun = (struct sockaddr_un *) &self->addr;
    bool abstract = *path == '@';
    if (!path [abstract] || strlen (path) >= sizeof sun->sun_path) {
        *reason = strdup ("bad unix socket path (empty or too long)");
        return -1;
    }
    sun->sun_family = AF_UNIX;
    if (abstract) {
        sun->sun_path [0] = 0;
        memcpy (sun->sun_path + 1, path + 1, strlen (path + 1));
        self->addrlen = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + strlen (path));
        return 0;
    }
    strcpy (sun->sun_path, path);
    self->addrlen = sizeof *sun;
    self->path = strdup (path);
    return 0;
}

static int
s_addr_vsock (s_addr_t *self, unsigned cid, const char *port_text, char **reason)
{
    char *end = NULL;
    unsigned long port = strtoul (port_text, &end, 10);
    if (!*port_text || *end || port > UINT32_MAX) {
        *reason = strdup ("bad vsock port");
        return -1;
    }
    struct sockaddr_vm *svm = (struct sockaddr_vm *) &self->addr;
    svm->svm_family = AF_VSOCK;
    svm->svm_cid = cid;
    svm->svm_port = (unsigned) port;
    self->addrlen = sizeof *svm;
    return 0;
}

//  Local addresses: tcp:H:P, tcp://H:P, unix:PATH, ipc://PATH (PATH may be @NAME)
static int
s_addr_local (s_addr_t *self, const char *text, bool passive, char **reason)
{
    if (strncmp (text, "tcp://", 6) == 0)
        return s_addr_inet (self, text + 6, passive, reason);
    if (strncmp (text, "tcp:", 4) == 0)
        return s_addr_inet (self, text + 4, passive, reason);
    if (strncmp (text, "ipc://", 6) == 0)
        return s_addr_unix (self, text + 6, reason);
    if (strncmp (text, "unix:", 5) == 0)
        return s_addr_unix (self, text + 5, reason);
    *reason = strdup ("expected tcp:HOST:PORT, tcp://HOST:PORT, unix:PATH or ipc://PATH");
    return -1;
}

static int
s_nonblock (int fd)
{
    int flags = fcntl (fd, F_GETFL);
    if (flags < 0 || fcntl (fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

static void
s_tune (int fd, int family)
{
    if (family == AF_INET || family == AF_INET6) {
        int one = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

//  Non-blocking connect; 0 connected, 1 in progress, -1 failed (errno)
static int
s_connect (const s_addr_t *addr, int *fd_p)
{
    int family = addr->addr.ss_family;
    int fd = socket (family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    s_tune (fd, family);
    if (connect (fd, (const struct sockaddr *) &addr->addr, addr->addrlen) == 0) {
        *fd_p = fd;
        return 0;
    }
    if (errno == EINPROGRESS || (family == AF_UNIX && errno == EAGAIN)) {
        *fd_p = fd;
        return 1;
    }
    int saved = errno;
    close (fd);
    errno = saved;
    return -1;
}

static int
s_listen (const s_addr_t *addr, char **reason)
{
    int family = addr->addr.ss_family;
    int fd = socket (family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (asprintf (reason, "socket: %s", strerror (errno)) < 0)
            *reason = NULL;
        return -1;
    }
    int one = 1;
    if (family != AF_UNIX && family != AF_VSOCK)
        setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_UNIX) {
        //  Replace a stale socket file, never anything else
        struct stat st;
        if (lstat (addr->path, &st) == 0 && S_ISSOCK (st.st_mode))
            unlink (addr->path);
    }
    if (bind (fd, (const struct sockaddr *) &addr->addr, addr->addrlen) < 0
    ||  listen (fd, 64) < 0) {
        if (asprintf (reason, "bind: %s", strerror (errno)) < 0)
            *reason = NULL;
        close (fd);
        return -1;
    }
    return fd;
}

static int
s_bound_port (int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname (fd, (struct sockaddr *) &addr, &len) < 0)
        return -1;
    if (addr.ss_family == AF_INET)
        return ntohs (((struct sockaddr_in *) &addr)->sin_port);
    if (addr.ss_family == AF_INET6)
        return ntohs (((struct sockaddr_in6 *) &addr)->sin6_port);
    if (addr.ss_family == AF_VSOCK)
        return (int) ((struct sockaddr_vm *) &addr)->svm_port;
    return -1;
}

//  ---------------------------------------------------------------- state

typedef enum {
    K_VIRTIO, K_UNIX_CONNECT, K_UNIX_LISTEN, K_TCP_CONNECT, K_TCP_LISTEN,
    K_VSOCK_CONNECT, K_VSOCK_LISTEN, K_FD
} s_kind_t;

typedef enum {
    L_DOWN,             //  no transport; retry at retry_at (or wait for a connection)
    L_CONNECTING,       //  non-blocking connect in progress
    L_SCAN,             //  transport up, looking for the peer's HELLO
    L_UP,               //  HELLO received
    L_GONE              //  fd:N lost for good
} s_lstate_t;

typedef enum {
    S_CONNECTING,       //  target connect in progress
    S_ACTIVE,
    S_CLOSE_SENT        //  CLOSE sent, local socket closed, waiting for the peer's CLOSE
} s_sstate_t;

typedef struct _s_stream_t s_stream_t;
struct _s_stream_t {
    uint32_t id;                //  31 bits
    bool mine;                  //  this side opened it
    s_sstate_t state;
    int fd;
    bool dead;                  //  swept at the end of the iteration
    uint32_t send_credit;       //  bytes we may still send
    uint32_t recv_allow;        //  bytes the peer may still send
    uint32_t unacked;           //  written to the local socket, not yet credited
    s_buf_t rx;                 //  link -> local socket
    s_stream_t *next;
};

typedef struct _s_pending_t s_pending_t;
struct _s_pending_t {
    int fd;
    size_t listener;
    s_pending_t *next;
};

typedef struct _s_drain_t s_drain_t;
struct _s_drain_t {
    int fd;
    s_buf_t buf;
    int64_t deadline;
    bool dead;
    s_drain_t *next;
};

typedef struct {
    char *name;
    int fd;
    int port;
    char *endpoint;
    char *unlink_path;
} s_listener_t;

typedef struct {
    char *name;
    s_addr_t addr;
} s_target_t;

struct _umb_bridge_t {
    umb_log_t *log;
    uint32_t window;
    int keepalive_ms;
    int retry_max_ms;
    int max_streams;
    s_listener_t listeners [UMB_BRIDGE_MAX_ROUTES];
    size_t listeners_count;
    s_target_t targets [UMB_BRIDGE_MAX_ROUTES];
    size_t targets_count;

    //  The link
    s_kind_t kind;
    char *spec;
    char *virtio;               //  path or port name
    s_addr_t link_addr;
    int link_listen_fd;
    int link_port;
    int link_fd;
    bool link_is_socket;
    s_lstate_t lstate;
    int64_t retry_at;
    int backoff_ms;
    int64_t last_rx;
    int64_t last_ping;
    int64_t last_hello;
    bool scan_logged;
    uint64_t session;
    uint64_t peer_session;
    uint32_t peer_window;
    uint32_t next_id;
    uint32_t last_peer_id;
    s_buf_t in;
    s_buf_t out;                //  frames for the link, in order
    //  Zero copy: a DATA payload spliced from a local socket into a pipe
    //  follows out's bytes on the link; frames made meanwhile go to after
    int pipe [2];
    size_t pipe_len;
    s_buf_t after;
    bool splice_off;
    //  Zero copy the other way: a DATA payload link -> rx_pipe -> local socket
    s_stream_t *rx_stream;      //  the stream of the payload being spliced
    size_t rx_left;             //  its bytes still in the link
    int rx_pipe [2];
    size_t rx_pipe_len;

    s_stream_t *streams;
    s_pending_t *pending;
    s_drain_t *drains;
    umb_bridge_stats_t stats;
    umb_bridge_tap_fn *tap;
    void *tap_arg;
    char reason [160];
};

//  ---------------------------------------------------------------- config

static void s_link_established (umb_bridge_t *self);
static void s_out_clear (umb_bridge_t *self);
static int s_fail (char **reason, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static int
s_fail (char **reason, const char *format, ...)
{
    if (reason) {
        va_list args;
        va_start (args, format);
        if (vasprintf (reason, format, args) < 0)
            *reason = NULL;
        va_end (args);
    }
    return -1;
}

static int
s_parse_link (umb_bridge_t *self, const char *spec, char **reason)
{
    char *detail = NULL;
    const char *arg;
#define S_PREFIX(p) (strncmp (spec, p, strlen (p)) == 0 && (arg = spec + strlen (p)))
    if (S_PREFIX ("virtio-serial:")) {
        if (!*arg)
            return s_fail (reason, "link %s: a port path or name is required", spec);
        self->kind = K_VIRTIO;
        self->virtio = strdup (arg);
        return 0;
    }
    int rc = 0;
    if (S_PREFIX ("unix-connect:")) {
        self->kind = K_UNIX_CONNECT;
        rc = s_addr_unix (&self->link_addr, arg, &detail);
    }
    else
    if (S_PREFIX ("unix-listen:")) {
        self->kind = K_UNIX_LISTEN;
        rc = s_addr_unix (&self->link_addr, arg, &detail);
    }
    else
    if (S_PREFIX ("tcp-connect:")) {
        self->kind = K_TCP_CONNECT;
        rc = s_addr_inet (&self->link_addr, arg, false, &detail);
    }
    else
    if (S_PREFIX ("tcp-listen:")) {
        self->kind = K_TCP_LISTEN;
        rc = s_addr_inet (&self->link_addr, arg, true, &detail);
    }
    else
    if (S_PREFIX ("vsock-connect:")) {
        self->kind = K_VSOCK_CONNECT;
        char *end = NULL;
        unsigned long cid = strtoul (arg, &end, 10);
        if (end == arg || *end != ':' || cid > UINT32_MAX)
            return s_fail (reason, "link %s: expected vsock-connect:CID:PORT", spec);
        rc = s_addr_vsock (&self->link_addr, (unsigned) cid, end + 1, &detail);
    }
    else
    if (S_PREFIX ("vsock-listen:")) {
        self->kind = K_VSOCK_LISTEN;
        rc = s_addr_vsock (&self->link_addr, VMADDR_CID_ANY, arg, &detail);
    }
    else
    if (S_PREFIX ("fd:")) {
        self->kind = K_FD;
        char *end = NULL;
        long fd = strtol (arg, &end, 10);
        if (!*arg || *end || fd < 0 || fd > INT_MAX || fcntl ((int) fd, F_GETFD) < 0)
            return s_fail (reason, "link %s: not an open file descriptor", spec);
        struct stat st;
        self->link_fd = (int) fd;
        self->link_is_socket = fstat (self->link_fd, &st) == 0 && S_ISSOCK (st.st_mode);
        s_nonblock (self->link_fd);
        fcntl (self->link_fd, F_SETFD, FD_CLOEXEC);
        return 0;
    }
    else
        return s_fail (reason, "link %s: expected virtio-serial:, unix-connect:, unix-listen:, "
                       "tcp-connect:, tcp-listen:, vsock-connect:, vsock-listen: or fd:", spec);
#undef S_PREFIX
    if (rc) {
        if (reason && asprintf (reason, "link %s: %s", spec, detail? detail: "invalid") < 0)
            *reason = NULL;
        free (detail);
        return -1;
    }
    return 0;
}

static bool
s_name_taken (umb_bridge_t *self, const char *name, bool listener)
{
    if (listener) {
        for (size_t i = 0; i < self->listeners_count; i++)
            if (streq (self->listeners [i].name, name))
                return true;
    }
    else
        for (size_t i = 0; i < self->targets_count; i++)
            if (streq (self->targets [i].name, name))
                return true;
    return false;
}

static int
s_add_listener (umb_bridge_t *self, const umb_bridge_route_t *route, char **reason)
{
    char *detail = NULL;
    s_addr_t addr = { .addrlen = 0 };
    if (s_addr_local (&addr, route->address, true, &detail)) {
        if (reason && asprintf (reason, "listener %s=%s: %s", route->name, route->address,
                                detail? detail: "invalid") < 0)
            *reason = NULL;
        free (detail);
        return -1;
    }
    int fd = s_listen (&addr, &detail);
    if (fd < 0) {
        if (reason && asprintf (reason, "listener %s=%s: %s", route->name, route->address,
                                detail? detail: "cannot listen") < 0)
            *reason = NULL;
        free (detail);
        free (addr.path);
        return -1;
    }
    s_listener_t *listener = &self->listeners [self->listeners_count++];
    listener->name = strdup (route->name);
    listener->fd = fd;
    listener->port = -1;
    if (addr.path) {
        listener->unlink_path = addr.path;
        if (asprintf (&listener->endpoint, "ipc://%s", addr.path) < 0)
            listener->endpoint = NULL;
    }
    else {
        listener->port = s_bound_port (fd);
        char host [INET6_ADDRSTRLEN] = "127.0.0.1";
        if (addr.addr.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *) &addr.addr;
            if (sin->sin_addr.s_addr != htonl (INADDR_ANY))
                inet_ntop (AF_INET, &sin->sin_addr, host, sizeof host);
            if (asprintf (&listener->endpoint, "tcp://%s:%d", host, listener->port) < 0)
                listener->endpoint = NULL;
        }
        else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &addr.addr;
            strcpy (host, "::1");
            if (!IN6_IS_ADDR_UNSPECIFIED (&sin6->sin6_addr))
                inet_ntop (AF_INET6, &sin6->sin6_addr, host, sizeof host);
            if (asprintf (&listener->endpoint, "tcp://[%s]:%d", host, listener->port) < 0)
                listener->endpoint = NULL;
        }
    }
    return 0;
}

umb_bridge_t *
umb_bridge_new (const umb_bridge_config_t *config, char **reason)
{
    assert (config);
    if (reason)
        *reason = NULL;
    if (!config->link) {
        s_fail (reason, "a link is required");
        return NULL;
    }
    if (config->listeners_count > UMB_BRIDGE_MAX_ROUTES
    ||  config->targets_count > UMB_BRIDGE_MAX_ROUTES) {
        s_fail (reason, "too many listeners or targets");
        return NULL;
    }
    if (config->window && (config->window < UMB_LINK_WINDOW_MIN || config->window > UMB_LINK_WINDOW_MAX)) {
        s_fail (reason, "window out of range (4096..16777216)");
        return NULL;
    }
    umb_bridge_t *self = calloc (1, sizeof *self);
    assert (self);
    self->log = config->log;
    self->window = config->window? config->window: UMB_BRIDGE_WINDOW_DEFAULT;
    self->keepalive_ms = config->keepalive_ms > 0? config->keepalive_ms: UMB_BRIDGE_KEEPALIVE_DEFAULT;
    self->retry_max_ms = config->retry_max_ms > 0? config->retry_max_ms: 2000;
    self->max_streams = config->max_streams > 0? config->max_streams: UMB_BRIDGE_MAX_STREAMS_DEFAULT;
    self->link_fd = -1;
    self->link_listen_fd = -1;
    self->link_port = -1;
    self->pipe [0] = self->pipe [1] = -1;
    self->rx_pipe [0] = self->rx_pipe [1] = -1;
    self->backoff_ms = S_RETRY_MIN_MS;
    do
        randombytes_buf (&self->session, sizeof self->session);
    while (self->session == 0);
    self->spec = strdup (config->link);

    int rc = 0;
    for (size_t i = 0; rc == 0 && i < config->targets_count; i++) {
        const umb_bridge_route_t *route = &config->targets [i];
        if (!route->name || !umb_link_name_valid (route->name, strlen (route->name)))
            rc = s_fail (reason, "target '%s': a name is 1..64 of [A-Za-z0-9._-]", route->name? route->name: "");
        else
        if (s_name_taken (self, route->name, false))
            rc = s_fail (reason, "target '%s' given twice", route->name);
        else {
            s_target_t *target = &self->targets [self->targets_count];
            char *detail = NULL;
            if (!route->address || s_addr_local (&target->addr, route->address, false, &detail)) {
                if (reason && asprintf (reason, "target %s: %s", route->name,
                                        detail? detail: "an address is required") < 0)
                    *reason = NULL;
                free (detail);
                rc = -1;
            }
            else {
                target->name = strdup (route->name);
                self->targets_count++;
            }
        }
    }
    for (size_t i = 0; rc == 0 && i < config->listeners_count; i++) {
        const umb_bridge_route_t *route = &config->listeners [i];
        if (!route->name || !umb_link_name_valid (route->name, strlen (route->name)))
            rc = s_fail (reason, "listener '%s': a name is 1..64 of [A-Za-z0-9._-]", route->name? route->name: "");
        else
        if (s_name_taken (self, route->name, true))
            rc = s_fail (reason, "listener '%s' given twice", route->name);
        else
        if (!route->address)
            rc = s_fail (reason, "listener '%s': an address is required", route->name);
        else
            rc = s_add_listener (self, route, reason);
    }
    if (rc == 0)
        rc = s_parse_link (self, config->link, reason);
    if (rc == 0 && (self->kind == K_UNIX_LISTEN || self->kind == K_TCP_LISTEN
                 || self->kind == K_VSOCK_LISTEN)) {
        char *detail = NULL;
        self->link_listen_fd = s_listen (&self->link_addr, &detail);
        if (self->link_listen_fd < 0) {
            if (reason && asprintf (reason, "link %s: %s", config->link, detail? detail: "cannot listen") < 0)
                *reason = NULL;
            free (detail);
            rc = -1;
        }
        else
            self->link_port = s_bound_port (self->link_listen_fd);
    }
    if (rc) {
        if (self->kind == K_FD)
            self->link_fd = -1;         //  not ours unless we succeed
        umb_bridge_destroy (&self);
        return NULL;
    }
    if (self->kind == K_FD)
        s_link_established (self);      //  the socket is there already
    return self;
}

static void s_stream_free (s_stream_t *stream);

void
umb_bridge_destroy (umb_bridge_t **self_p)
{
    assert (self_p);
    umb_bridge_t *self = *self_p;
    if (!self)
        return;
    while (self->streams) {
        s_stream_t *next = self->streams->next;
        s_stream_free (self->streams);
        self->streams = next;
    }
    while (self->pending) {
        s_pending_t *next = self->pending->next;
        close (self->pending->fd);
        free (self->pending);
        self->pending = next;
    }
    while (self->drains) {
        s_drain_t *next = self->drains->next;
        close (self->drains->fd);
        s_buf_free (&self->drains->buf);
        free (self->drains);
        self->drains = next;
    }
    for (size_t i = 0; i < self->listeners_count; i++) {
        s_listener_t *listener = &self->listeners [i];
        close (listener->fd);
        if (listener->unlink_path) {
            unlink (listener->unlink_path);
            free (listener->unlink_path);
        }
        free (listener->name);
        free (listener->endpoint);
    }
    for (size_t i = 0; i < self->targets_count; i++) {
        free (self->targets [i].name);
        free (self->targets [i].addr.path);
    }
    if (self->link_fd >= 0)
        close (self->link_fd);
    if (self->link_listen_fd >= 0) {
        close (self->link_listen_fd);
        if (self->kind == K_UNIX_LISTEN && self->link_addr.path)
            unlink (self->link_addr.path);
    }
    free (self->link_addr.path);
    free (self->virtio);
    free (self->spec);
    s_out_clear (self);
    if (self->pipe [0] >= 0) {
        close (self->pipe [0]);
        close (self->pipe [1]);
    }
    if (self->rx_pipe [0] >= 0) {
        close (self->rx_pipe [0]);
        close (self->rx_pipe [1]);
    }
    s_buf_free (&self->in);
    s_buf_free (&self->out);
    s_buf_free (&self->after);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------- streams

static void
s_stream_free (s_stream_t *stream)
{
    if (stream->fd >= 0)
        close (stream->fd);
    s_buf_free (&stream->rx);
    free (stream);
}

static s_stream_t *
s_stream_find (umb_bridge_t *self, uint32_t id, bool mine)
{
    for (s_stream_t *stream = self->streams; stream; stream = stream->next)
        if (stream->id == id && stream->mine == mine && !stream->dead)
            return stream;
    return NULL;
}

static size_t
s_stream_count (umb_bridge_t *self, bool all)
{
    size_t count = 0;
    for (s_stream_t *stream = self->streams; stream; stream = stream->next)
        if (!stream->dead && (all || stream->state != S_CLOSE_SENT))
            count++;
    return count;
}

static s_stream_t *
s_stream_new (umb_bridge_t *self, uint32_t id, bool mine, int fd, s_sstate_t state)
{
    s_stream_t *stream = calloc (1, sizeof *stream);
    assert (stream);
    stream->id = id;
    stream->mine = mine;
    stream->fd = fd;
    stream->state = state;
    stream->send_credit = self->peer_window;
    stream->recv_allow = self->window;
    stream->next = self->streams;
    self->streams = stream;
    self->stats.streams_opened++;
    return stream;
}

//  Marks the stream for the sweep and closes its local socket now
static void
s_stream_kill (s_stream_t *stream)
{
    stream->dead = true;
    if (stream->fd >= 0) {
        close (stream->fd);
        stream->fd = -1;
    }
    s_buf_free (&stream->rx);
}

static void
s_sweep (umb_bridge_t *self)
{
    s_stream_t **link = &self->streams;
    while (*link) {
        s_stream_t *stream = *link;
        if (stream->dead) {
            *link = stream->next;
            s_stream_free (stream);
        }
        else
            link = &stream->next;
    }
    s_drain_t **dlink = &self->drains;
    while (*dlink) {
        s_drain_t *drain = *dlink;
        if (drain->dead) {
            *dlink = drain->next;
            close (drain->fd);
            s_buf_free (&drain->buf);
            free (drain);
        }
        else
            dlink = &drain->next;
    }
}

static uint32_t
s_wire_id (s_stream_t *stream)
{
    return stream->id | (stream->mine? UMB_LINK_OPENER: 0);
}

//  ---------------------------------------------------------------- link output

//  Where the next frame goes: after a spliced payload still in the pipe
static s_buf_t *
s_outq (umb_bridge_t *self)
{
    return self->pipe_len? &self->after: &self->out;
}

static size_t
s_out_total (umb_bridge_t *self)
{
    return self->out.len + self->pipe_len + self->after.len;
}

//  Forgets everything queued for the link
static void
s_out_clear (umb_bridge_t *self)
{
    s_buf_clear (&self->out);
    s_buf_clear (&self->after);
    if (self->pipe_len) {
        close (self->pipe [0]);
        close (self->pipe [1]);
        self->pipe [0] = self->pipe [1] = -1;
        self->pipe_len = 0;
    }
}

static void
s_emit (umb_bridge_t *self, uint8_t type, uint32_t stream, const void *payload, size_t size)
{
    s_buf_t *queue = s_outq (self);
    uint8_t *p = s_buf_reserve (queue, UMB_LINK_HEADER_SIZE + size);
    umb_link_header (p, type, (uint32_t) size, stream);
    if (size)
        memcpy (p + UMB_LINK_HEADER_SIZE, payload, size);
    queue->len += UMB_LINK_HEADER_SIZE + size;
}

static void
s_emit_hello (umb_bridge_t *self, uint8_t flags)
{
    uint8_t frame [UMB_LINK_HEADER_SIZE + UMB_LINK_HELLO_SIZE];
    umb_link_hello (frame, flags, self->session, self->window);
    s_buf_append (s_outq (self), frame, sizeof frame);
    self->last_hello = zclock_mono ();
}

static void
s_emit_close (umb_bridge_t *self, s_stream_t *stream, uint8_t code, const char *text)
{
    uint8_t payload [1 + UMB_LINK_REASON_MAX];
    size_t size = text? strlen (text): 0;
    if (size > UMB_LINK_REASON_MAX)
        size = UMB_LINK_REASON_MAX;
    payload [0] = code;
    if (size)
        memcpy (payload + 1, text, size);
    s_emit (self, UMB_LINK_CLOSE, s_wire_id (stream), payload, 1 + size);
}

static void
s_emit_credit (umb_bridge_t *self, s_stream_t *stream)
{
    uint8_t payload [4] = {
        (uint8_t) (stream->unacked >> 24), (uint8_t) (stream->unacked >> 16),
        (uint8_t) (stream->unacked >> 8), (uint8_t) stream->unacked };
    s_emit (self, UMB_LINK_CREDIT, s_wire_id (stream), payload, 4);
    stream->recv_allow += stream->unacked;
    stream->unacked = 0;
}

//  Our side ends the stream: CLOSE, local socket closed, wait for the peer's CLOSE
static void
s_stream_close (umb_bridge_t *self, s_stream_t *stream, uint8_t code, const char *text)
{
    assert (stream->state != S_CLOSE_SENT);
    if (self->lstate == L_UP)
        s_emit_close (self, stream, code, text);
    if (stream->fd >= 0) {
        close (stream->fd);
        stream->fd = -1;
    }
    s_buf_free (&stream->rx);
    stream->state = S_CLOSE_SENT;
    if (self->lstate != L_UP)
        stream->dead = true;
}

static ssize_t
s_send (int fd, bool is_socket, const void *data, size_t size)
{
    if (is_socket)
        return send (fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    return write (fd, data, size);
}

//  ---------------------------------------------------------------- link lifecycle

static void s_link_lost (umb_bridge_t *self, const char *why);

//  Abandons a payload being spliced (the link input restarts)
static void
s_rx_reset (umb_bridge_t *self)
{
    self->rx_stream = NULL;
    self->rx_left = 0;
    if (self->rx_pipe_len) {
        close (self->rx_pipe [0]);
        close (self->rx_pipe [1]);
        self->rx_pipe [0] = self->rx_pipe [1] = -1;
        self->rx_pipe_len = 0;
    }
}

static void
s_streams_drop (umb_bridge_t *self)
{
    s_rx_reset (self);
    for (s_stream_t *stream = self->streams; stream; stream = stream->next)
        if (!stream->dead)
            s_stream_kill (stream);
    self->next_id = 0;
    self->last_peer_id = 0;
}

//  The transport is there: start (or restart) the session
static void
s_link_session (umb_bridge_t *self)
{
    self->lstate = L_SCAN;
    self->peer_session = 0;
    self->scan_logged = false;
    self->last_rx = zclock_mono ();
    s_buf_clear (&self->in);
    s_rx_reset (self);
    s_emit_hello (self, 0);
}

static void
s_link_established (umb_bridge_t *self)
{
    umb_log_debug (self->log, "link %s: transport up, sending HELLO", self->spec);
    s_out_clear (self);
    s_link_session (self);
}

static char *
s_virtio_path (const char *name)
{
    if (name [0] == '/')
        return strdup (name);
    char *path = NULL;
    if (asprintf (&path, "/dev/virtio-ports/%s", name) < 0)
        return NULL;
    if (access (path, F_OK) == 0)
        return path;
    free (path);
    path = NULL;
    //  No udev: /sys/class/virtio-ports/vportNpM/name holds the port's name
    DIR *dir = opendir ("/sys/class/virtio-ports");
    if (!dir)
        return NULL;
    struct dirent *entry;
    while (!path && (entry = readdir (dir))) {
        if (entry->d_name [0] == '.')
            continue;
        char file [512];
        snprintf (file, sizeof file, "/sys/class/virtio-ports/%s/name", entry->d_name);
        FILE *handle = fopen (file, "r");
        if (!handle)
            continue;
        char line [256] = "";
        if (fgets (line, sizeof line, handle)) {
            line [strcspn (line, "\r\n")] = 0;
            if (streq (line, name) && asprintf (&path, "/dev/%s", entry->d_name) < 0)
                path = NULL;
        }
        fclose (handle);
    }
    closedir (dir);
    return path;
}

static void
s_link_retry_later (umb_bridge_t *self)
{
    self->lstate = L_DOWN;
    self->retry_at = zclock_mono () + self->backoff_ms;
    self->backoff_ms *= 2;
    if (self->backoff_ms > self->retry_max_ms)
        self->backoff_ms = self->retry_max_ms;
}

static void
s_link_start (umb_bridge_t *self)
{
    assert (self->link_fd < 0);
    if (self->kind == K_VIRTIO) {
        char *path = s_virtio_path (self->virtio);
        int fd = path? open (path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY): -1;
        if (fd < 0) {
            if (self->backoff_ms == S_RETRY_MIN_MS)
                umb_log_warn (self->log, "link %s: cannot open %s: %s; retrying", self->spec,
                              path? path: "the port (no such port name)", strerror (errno));
            free (path);
            s_link_retry_later (self);
            return;
        }
        free (path);
        self->link_fd = fd;
        struct stat st;
        self->link_is_socket = fstat (fd, &st) == 0 && S_ISSOCK (st.st_mode);
        s_link_established (self);
        return;
    }
    if (self->kind == K_UNIX_CONNECT || self->kind == K_TCP_CONNECT || self->kind == K_VSOCK_CONNECT) {
        int rc = s_connect (&self->link_addr, &self->link_fd);
        if (rc < 0) {
            if (self->backoff_ms == S_RETRY_MIN_MS)
                umb_log_warn (self->log, "link %s: connect: %s; retrying", self->spec, strerror (errno));
            self->link_fd = -1;
            s_link_retry_later (self);
            return;
        }
        self->link_is_socket = true;
        if (rc == 1)
            self->lstate = L_CONNECTING;
        else
            s_link_established (self);
    }
    //  Listening kinds wait for a connection; fd:N never restarts
}

//  Link loss: streams closed, transport closed and retried
static void
s_link_lost (umb_bridge_t *self, const char *why)
{
    if (self->lstate == L_UP || self->lstate == L_SCAN)
        self->stats.link_resets++;
    //  Loud when a session is lost; a retry loop (a port whose host side is
    //  not connected yet) stays quiet. An inherited link (fd:N) ends for good
    //  when its owner tears the pair down, which is how it normally ends: the
    //  owner, not this log, says whether that was a failure
    if (self->kind == K_FD)
        umb_log_info (self->log, "link %s: %s; the inherited link is gone, no more streams",
                      self->spec, why);
    else
        umb_log_write (self->log, self->lstate == L_UP? UMB_LOG_WARN: UMB_LOG_DEBUG,
                       "link %s: %s; streams closed", self->spec, why);
    s_streams_drop (self);
    s_buf_clear (&self->in);
    s_rx_reset (self);
    s_out_clear (self);
    self->peer_session = 0;
    if (self->kind == K_FD) {
        if (self->link_fd >= 0)
            close (self->link_fd);
        self->link_fd = -1;
        self->lstate = L_GONE;
        return;
    }
    if (self->link_fd >= 0)
        close (self->link_fd);
    self->link_fd = -1;
    if (self->link_listen_fd >= 0)
        self->lstate = L_DOWN;              //  wait for the next connection
    else
        s_link_retry_later (self);
}

//  Protocol error or dead keepalive: a transport we can reopen is closed
//  and retried; a port or inherited fd resynchronises in place
static void
s_link_reset (umb_bridge_t *self, const char *why)
{
    if (self->kind == K_FD) {
        self->stats.link_resets++;
        umb_log_warn (self->log, "link %s: %s; streams closed, HELLO again", self->spec, why);
        s_streams_drop (self);
        s_link_session (self);
    }
    else
        s_link_lost (self, why);
}

static void
s_protocol_error (umb_bridge_t *self, const char *why)
{
    self->stats.protocol_errors++;
    char text [256];
    snprintf (text, sizeof text, "protocol error: %s", why);
    s_link_reset (self, text);
}

void
umb_bridge_link_drop (umb_bridge_t *self)
{
    assert (self);
    if (self->lstate == L_UP || self->lstate == L_SCAN || self->lstate == L_CONNECTING) {
        if (self->kind == K_FD)
            s_link_reset (self, "dropped on request");
        else
            s_link_lost (self, "dropped on request");
    }
}

//  ---------------------------------------------------------------- opening streams

static void
s_open_local (umb_bridge_t *self, int fd, size_t listener)
{
    self->next_id = (self->next_id + 1) & ~UMB_LINK_OPENER;
    if (self->next_id == 0)
        self->next_id = 1;
    s_stream_t *stream = s_stream_new (self, self->next_id, true, fd, S_ACTIVE);
    const char *name = self->listeners [listener].name;
    s_emit (self, UMB_LINK_OPEN, s_wire_id (stream), name, strlen (name));
    umb_log_debug (self->log, "stream %u: %s opened", stream->id, name);
}

static void
s_link_up (umb_bridge_t *self)
{
    self->lstate = L_UP;
    self->backoff_ms = S_RETRY_MIN_MS;
    self->stats.link_ups++;
    umb_log_info (self->log, "link %s: up (peer session %016llx)", self->spec,
                  (unsigned long long) self->peer_session);
    //  Connections that waited for the link
    while (self->pending) {
        s_pending_t *pending = self->pending;
        self->pending = pending->next;
        s_open_local (self, pending->fd, pending->listener);
        free (pending);
    }
}

static void
s_open_remote (umb_bridge_t *self, uint32_t id, const uint8_t *name, size_t size)
{
    if (id <= self->last_peer_id) {
        s_protocol_error (self, "OPEN reuses a stream id");
        return;
    }
    if (s_stream_count (self, true) >= (size_t) self->max_streams * 2) {
        s_protocol_error (self, "too many streams");
        return;
    }
    self->last_peer_id = id;
    char text [UMB_LINK_NAME_MAX + 1];
    memcpy (text, name, size);
    text [size] = 0;
    s_stream_t *stream = s_stream_new (self, id, false, -1, S_ACTIVE);
    if (s_stream_count (self, false) > (size_t) self->max_streams) {
        self->stats.streams_refused++;
        s_stream_close (self, stream, UMB_LINK_CLOSE_REFUSED, "too many streams");
        return;
    }
    s_target_t *target = NULL;
    for (size_t i = 0; i < self->targets_count; i++)
        if (streq (self->targets [i].name, text))
            target = &self->targets [i];
    if (!target) {
        self->stats.streams_refused++;
        umb_log_warn (self->log, "stream %u: no target named '%s'; refused", id, text);
        char why [128];
        snprintf (why, sizeof why, "no target named %s", text);
        s_stream_close (self, stream, UMB_LINK_CLOSE_REFUSED, why);
        return;
    }
    int rc = s_connect (&target->addr, &stream->fd);
    if (rc < 0) {
        self->stats.streams_refused++;
        stream->fd = -1;
        char why [160];
        snprintf (why, sizeof why, "connect %s: %s", text, strerror (errno));
        umb_log_warn (self->log, "stream %u: %s; refused", id, why);
        s_stream_close (self, stream, UMB_LINK_CLOSE_REFUSED, why);
        return;
    }
    stream->state = rc == 1? S_CONNECTING: S_ACTIVE;
    umb_log_debug (self->log, "stream %u: %s opened by the peer", id, text);
}

//  ---------------------------------------------------------------- stream I/O

//  Writes what the stream holds to its local socket; CREDIT as bytes leave
static void
s_stream_flush (umb_bridge_t *self, s_stream_t *stream, const uint8_t *data, size_t size)
{
    //  data: bytes just received (not yet in rx); written directly when rx is empty
    if (stream->rx.len == 0 && size) {
        ssize_t rc = send (stream->fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (rc < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            s_stream_close (self, stream, UMB_LINK_CLOSE_ERROR, strerror (errno));
            return;
        }
        size_t sent = rc > 0? (size_t) rc: 0;
        stream->unacked += (uint32_t) sent;
        if (sent < size)
            s_buf_append (&stream->rx, data + sent, size - sent);
    }
    else {
        if (size)
            s_buf_append (&stream->rx, data, size);
        while (stream->rx.len) {
            ssize_t rc = send (stream->fd, stream->rx.data + stream->rx.start, stream->rx.len,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
            if (rc < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    s_stream_close (self, stream, UMB_LINK_CLOSE_ERROR, strerror (errno));
                break;
            }
            s_buf_consume (&stream->rx, (size_t) rc);
            stream->unacked += (uint32_t) rc;
        }
    }
    if (stream->state == S_ACTIVE && stream->unacked
    && (stream->rx.len == 0 || stream->unacked >= self->window / 4))
        s_emit_credit (self, stream);
}

static void s_stream_read_one (umb_bridge_t *self, s_stream_t *stream);
static void s_link_write (umb_bridge_t *self);

//  Several frames per wake-up while credit and link buffer room last
static void
s_stream_read (umb_bridge_t *self, s_stream_t *stream)
{
    for (int i = 0; i < 4 && stream->state == S_ACTIVE && stream->send_credit > 0
                    && s_out_total (self) < S_OUT_SOFT; i++) {
        size_t before = s_out_total (self);
        s_stream_read_one (self, stream);
        if (s_out_total (self) < before + UMB_LINK_HEADER_SIZE + S_READ_MAX)
            break;                      //  the socket is drained (or closed)
        //  A spliced payload leaves the pipe before the next one can use it
        if (self->pipe_len)
            s_link_write (self);
        if (self->pipe_len)
            break;
    }
}

static void
s_stream_read_one (umb_bridge_t *self, s_stream_t *stream)
{
    size_t want = stream->send_credit < S_READ_MAX? stream->send_credit: S_READ_MAX;
    if (want == 0)
        return;
    //  Zero copy when the pipe is free: the payload goes socket -> pipe -> link
    if (!self->splice_off && !self->tap && self->pipe_len == 0 && self->link_is_socket) {
        if (self->pipe [0] < 0 && pipe2 (self->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
            self->splice_off = true;
            self->pipe [0] = self->pipe [1] = -1;
        }
        if (!self->splice_off) {
            ssize_t rc = splice (stream->fd, NULL, self->pipe [1], NULL, want,
                                 SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (rc > 0) {
                uint8_t header [UMB_LINK_HEADER_SIZE];
                umb_link_header (header, UMB_LINK_DATA, (uint32_t) rc, s_wire_id (stream));
                s_buf_append (&self->out, header, sizeof header);
                self->pipe_len = (size_t) rc;
                self->stats.spliced += (uint64_t) rc;
                stream->send_credit -= (uint32_t) rc;
                return;
            }
            if (rc == 0) {
                s_stream_close (self, stream, UMB_LINK_CLOSE_NORMAL, NULL);
                return;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno != EINVAL && errno != ENOSYS) {
                s_stream_close (self, stream, UMB_LINK_CLOSE_ERROR, strerror (errno));
                return;
            }
            self->splice_off = true;        //  not spliceable here: copy from now on
        }
    }
    s_buf_t *queue = s_outq (self);
    uint8_t *p = s_buf_reserve (queue, UMB_LINK_HEADER_SIZE + want);
    ssize_t rc = recv (stream->fd, p + UMB_LINK_HEADER_SIZE, want, MSG_DONTWAIT);
    if (rc > 0) {
        umb_link_header (p, UMB_LINK_DATA, (uint32_t) rc, s_wire_id (stream));
        queue->len += UMB_LINK_HEADER_SIZE + (size_t) rc;
        stream->send_credit -= (uint32_t) rc;
    }
    else
    if (rc == 0)
        s_stream_close (self, stream, UMB_LINK_CLOSE_NORMAL, NULL);
    else
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        s_stream_close (self, stream, UMB_LINK_CLOSE_ERROR, strerror (errno));
}

//  ---------------------------------------------------------------- link input

static void
s_on_hello (umb_bridge_t *self, const umb_link_frame_t *frame)
{
    bool had_peer = self->peer_session != 0;
    bool restart = had_peer
        && (!(frame->hello_flags & UMB_LINK_HELLO_REPLY) || frame->hello_session != self->peer_session);
    if (restart) {
        self->stats.link_resets++;
        umb_log_warn (self->log, "link %s: the peer restarted its session; streams closed", self->spec);
        s_streams_drop (self);
    }
    self->peer_session = frame->hello_session;
    self->peer_window = frame->hello_window;
    if (!(frame->hello_flags & UMB_LINK_HELLO_REPLY))
        s_emit_hello (self, UMB_LINK_HELLO_REPLY);
    if (self->lstate != L_UP)
        s_link_up (self);
    else
    if (restart)
        self->stats.link_ups++;
}

//  Handles one frame; returns -1 when the link was reset
static int
s_on_frame (umb_bridge_t *self, const umb_link_frame_t *frame)
{
    if (frame->type == UMB_LINK_HELLO) {
        s_on_hello (self, frame);
        return 0;
    }
    if (frame->type == UMB_LINK_PING) {
        s_emit (self, UMB_LINK_PONG, 0, frame->payload, 8);
        return 0;
    }
    if (frame->type == UMB_LINK_PONG)
        return 0;
    //  Stream frames: bit 31 set means the sender (the peer) opened it
    uint32_t id = frame->stream & ~UMB_LINK_OPENER;
    bool mine = !(frame->stream & UMB_LINK_OPENER);
    if (frame->type == UMB_LINK_OPEN) {
        s_open_remote (self, id, frame->payload, frame->length);
        return self->lstate == L_UP? 0: -1;
    }
    s_stream_t *stream = s_stream_find (self, id, mine);
    if (!stream) {
        char why [96];
        snprintf (why, sizeof why, "frame type %u for unknown stream %s%u", frame->type,
                  mine? "": "peer:", id);
        s_protocol_error (self, why);
        return -1;
    }
    switch (frame->type) {
        case UMB_LINK_DATA:
            if (stream->state == S_CLOSE_SENT)
                break;
            if (frame->length > stream->recv_allow) {
                s_protocol_error (self, "DATA beyond credit");
                return -1;
            }
            stream->recv_allow -= frame->length;
            if (stream->state == S_CONNECTING)
                s_buf_append (&stream->rx, frame->payload, frame->length);
            else
                s_stream_flush (self, stream, frame->payload, frame->length);
            break;
        case UMB_LINK_CREDIT:
            if (stream->state == S_CLOSE_SENT)
                break;
            if ((uint64_t) stream->send_credit + frame->credit > self->peer_window) {
                s_protocol_error (self, "CREDIT above the window");
                return -1;
            }
            stream->send_credit += frame->credit;
            break;
        case UMB_LINK_CLOSE:
            if (stream->state == S_CLOSE_SENT) {
                stream->dead = true;
                break;
            }
            if (frame->close_code != UMB_LINK_CLOSE_NORMAL)
                umb_log_info (self->log, "stream %u closed by the peer: %.*s", stream->id,
                              (int) frame->length - 1, (const char *) frame->payload + 1);
            s_emit_close (self, stream, UMB_LINK_CLOSE_NORMAL, NULL);
            if (stream->state == S_ACTIVE && stream->rx.len && stream->fd >= 0) {
                //  Write out what we hold, then close
                s_drain_t *drain = calloc (1, sizeof *drain);
                assert (drain);
                drain->fd = stream->fd;
                drain->buf = stream->rx;
                drain->deadline = zclock_mono () + S_DRAIN_MS;
                drain->next = self->drains;
                self->drains = drain;
                stream->fd = -1;
                memset (&stream->rx, 0, sizeof stream->rx);
            }
            s_stream_kill (stream);
            break;
        default:
            break;
    }
    return 0;
}

static void
s_link_process (umb_bridge_t *self)
{
    while (self->in.len && (self->lstate == L_SCAN || self->lstate == L_UP)) {
        const uint8_t *data = self->in.data + self->in.start;
        umb_link_frame_t frame;
        char reason [128];
        if (self->lstate == L_SCAN) {
            size_t skip = umb_link_scan (data, self->in.len);
            if (skip) {
                self->stats.discarded += skip;
                if (!self->scan_logged) {
                    umb_log_warn (self->log, "link %s: discarding bytes before the peer's HELLO", self->spec);
                    self->scan_logged = true;
                }
                s_buf_consume (&self->in, skip);
                continue;
            }
            ssize_t rc = umb_link_decode (data, self->in.len, &frame, reason, sizeof reason);
            if (rc == 0)
                break;
            if (rc < 0) {
                self->stats.discarded++;
                s_buf_consume (&self->in, 1);
                continue;
            }
            s_on_hello (self, &frame);
            s_buf_consume (&self->in, (size_t) rc);
            continue;
        }
        ssize_t rc = umb_link_decode (data, self->in.len, &frame, reason, sizeof reason);
        if (rc == 0)
            break;
        if (rc < 0) {
            s_protocol_error (self, reason);
            return;
        }
        //  The frame points into in: consume after handling, unless the link reset
        if (s_on_frame (self, &frame) < 0)
            return;
        s_buf_consume (&self->in, (size_t) rc);
    }
}

static void
s_link_read (umb_bridge_t *self)
{
    size_t room = S_IN_SIZE - self->in.len;
    if (room == 0)
        return;
    uint8_t *p = s_buf_reserve (&self->in, room);
    ssize_t rc = self->link_is_socket
        ? recv (self->link_fd, p, room, MSG_DONTWAIT)
        : read (self->link_fd, p, room);
    if (rc > 0) {
        if (self->tap)
            self->tap (self->tap_arg, false, p, (size_t) rc);
        self->in.len += (size_t) rc;
        self->stats.link_bytes_in += (uint64_t) rc;
        self->last_rx = zclock_mono ();
        s_link_process (self);
    }
    else
    if (rc == 0)
        s_link_lost (self, self->kind == K_VIRTIO? "the host closed the port": "the peer closed the link");
    else
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        char why [128];
        snprintf (why, sizeof why, "read: %s", strerror (errno));
        s_link_lost (self, why);
    }
}

//  Moves the rx pipe to the stream's local socket; what it does not take now
//  is copied into the stream's buffer (written on POLLOUT)
static void
s_rx_pipe_flush (umb_bridge_t *self)
{
    s_stream_t *stream = self->rx_stream;
    assert (stream);
    //  Bytes the stream already holds go first: then the pipe joins them
    if (stream->state == S_ACTIVE && stream->fd >= 0 && !stream->dead && stream->rx.len == 0) {
        ssize_t rc = splice (self->rx_pipe [0], NULL, stream->fd, NULL, self->rx_pipe_len,
                             SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        if (rc > 0) {
            self->rx_pipe_len -= (size_t) rc;
            self->stats.spliced += (uint64_t) rc;
            stream->unacked += (uint32_t) rc;
        }
        else
        if (rc < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            s_stream_close (self, stream, UMB_LINK_CLOSE_ERROR, strerror (errno));
    }
    if (self->rx_pipe_len) {
        uint8_t *p = s_buf_reserve (&stream->rx, self->rx_pipe_len);
        ssize_t rc = read (self->rx_pipe [0], p, self->rx_pipe_len);
        assert (rc == (ssize_t) self->rx_pipe_len);
        self->rx_pipe_len = 0;
        if (stream->state == S_ACTIVE && stream->fd >= 0 && !stream->dead)
            stream->rx.len += (size_t) rc;
        else
            s_buf_clear (&stream->rx);      //  the stream is closing: dropped
    }
    if (stream->state == S_ACTIVE && !stream->dead && stream->unacked
    && (stream->rx.len == 0 || stream->unacked >= self->window / 4))
        s_emit_credit (self, stream);
}

//  A DATA header that can take the zero-copy path: the whole header and
//  nothing more is in `in`, its stream is active and holds nothing
static bool
s_rx_spliceable (umb_bridge_t *self)
{
    if (self->in.len != UMB_LINK_HEADER_SIZE)
        return false;
    const uint8_t *h = self->in.data + self->in.start;
    if (h [0] != UMB_LINK_DATA)
        return false;
    uint32_t length = (uint32_t) h [1] << 16 | (uint32_t) h [2] << 8 | h [3];
    uint32_t wire = (uint32_t) h [4] << 24 | (uint32_t) h [5] << 16 | (uint32_t) h [6] << 8 | h [7];
    if (length == 0 || length > UMB_LINK_DATA_MAX || (wire & ~UMB_LINK_OPENER) == 0)
        return false;
    s_stream_t *stream = s_stream_find (self, wire & ~UMB_LINK_OPENER, !(wire & UMB_LINK_OPENER));
    if (!stream || stream->state != S_ACTIVE || stream->fd < 0 || stream->rx.len
    ||  length > stream->recv_allow)
        return false;
    if (self->rx_pipe [0] < 0 && pipe2 (self->rx_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        self->rx_pipe [0] = self->rx_pipe [1] = -1;
        return false;
    }
    stream->recv_allow -= length;
    self->rx_stream = stream;
    self->rx_left = length;
    s_buf_clear (&self->in);
    return true;
}

//  The link reader once the link is up and nothing taps it: reads a frame's
//  header alone, splices DATA payloads straight to their local socket, and
//  reads any other frame exactly, so no byte of a payload is copied here
static void
s_link_read_precise (umb_bridge_t *self)
{
    for (int round = 0; round < 16; round++) {
        if (self->lstate != L_UP || self->link_fd < 0)
            return;
        if (self->rx_left) {
            ssize_t rc = splice (self->link_fd, NULL, self->rx_pipe [1], NULL, self->rx_left,
                                 SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (rc > 0) {
                self->stats.link_bytes_in += (uint64_t) rc;
                self->last_rx = zclock_mono ();
                self->rx_left -= (size_t) rc;
                self->rx_pipe_len += (size_t) rc;
                s_rx_pipe_flush (self);
                if (self->rx_left == 0)
                    self->rx_stream = NULL;
                continue;
            }
            if (rc == 0) {
                s_link_lost (self, "the peer closed the link");
                return;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            if ((errno == EINVAL || errno == ENOSYS) && self->rx_pipe_len == 0) {
                //  This link takes no splice: put the header back, copy from now on
                s_stream_t *stream = self->rx_stream;
                uint8_t *h = s_buf_reserve (&self->in, UMB_LINK_HEADER_SIZE);
                umb_link_header (h, UMB_LINK_DATA, (uint32_t) self->rx_left,
                                 stream->id | (stream->mine? 0: UMB_LINK_OPENER));
                self->in.len += UMB_LINK_HEADER_SIZE;
                stream->recv_allow += (uint32_t) self->rx_left;
                self->rx_left = 0;
                self->rx_stream = NULL;
                self->splice_off = true;
                return;
            }
            char why [128];
            snprintf (why, sizeof why, "splice: %s", strerror (errno));
            s_link_lost (self, why);
            return;
        }
        //  Complete frames first (they may come from an earlier bulk read)
        s_link_process (self);
        if (self->lstate != L_UP || self->link_fd < 0)
            return;
        if (s_rx_spliceable (self))
            continue;
        size_t need;
        if (self->in.len >= UMB_LINK_HEADER_SIZE) {
            const uint8_t *h = self->in.data + self->in.start;
            size_t length = (size_t) h [1] << 16 | (size_t) h [2] << 8 | h [3];
            need = UMB_LINK_HEADER_SIZE + length - self->in.len;
        }
        else
            need = UMB_LINK_HEADER_SIZE - self->in.len;
        uint8_t *p = s_buf_reserve (&self->in, need);
        ssize_t rc = recv (self->link_fd, p, need, MSG_DONTWAIT);
        if (rc > 0) {
            self->in.len += (size_t) rc;
            self->stats.link_bytes_in += (uint64_t) rc;
            self->last_rx = zclock_mono ();
            continue;
        }
        if (rc == 0)
            s_link_lost (self, "the peer closed the link");
        else
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            char why [128];
            snprintf (why, sizeof why, "read: %s", strerror (errno));
            s_link_lost (self, why);
        }
        return;
    }
}

//  The spliced payload follows out; then after becomes out
static int
s_link_write_pipe (umb_bridge_t *self)
{
    ssize_t rc = splice (self->pipe [0], NULL, self->link_fd, NULL, self->pipe_len,
                         SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    if (rc < 0 && (errno == EINVAL || errno == ENOSYS)) {
        //  The link takes no splice (some character devices): copy the payload out
        self->splice_off = true;
        uint8_t *p = s_buf_reserve (&self->out, self->pipe_len);
        rc = read (self->pipe [0], p, self->pipe_len);
        assert (rc == (ssize_t) self->pipe_len);
        self->out.len += self->pipe_len;
        self->pipe_len = 0;
        s_buf_append (&self->out, self->after.data + self->after.start, self->after.len);
        s_buf_clear (&self->after);
        return 0;
    }
    if (rc <= 0)
        return (int) rc;
    self->stats.link_bytes_out += (uint64_t) rc;
    self->pipe_len -= (size_t) rc;
    if (self->pipe_len == 0) {
        s_buf_t swap = self->out;
        self->out = self->after;
        self->after = swap;
    }
    return 1;
}

static void
s_link_write (umb_bridge_t *self)
{
    while (self->link_fd >= 0 && (self->out.len || self->pipe_len)
       && (self->lstate == L_SCAN || self->lstate == L_UP)) {
        if (self->out.len == 0) {
            int rc = s_link_write_pipe (self);
            if (rc > 0 || (rc == 0 && self->out.len))
                continue;
            if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return;
            char why [128];
            snprintf (why, sizeof why, "splice: %s", rc < 0? strerror (errno): "nothing written");
            s_link_lost (self, why);
            return;
        }
        const uint8_t *p = self->out.data + self->out.start;
        ssize_t rc = s_send (self->link_fd, self->link_is_socket, p, self->out.len);
        if (rc > 0) {
            if (self->tap)
                self->tap (self->tap_arg, true, p, (size_t) rc);
            s_buf_consume (&self->out, (size_t) rc);
            self->stats.link_bytes_out += (uint64_t) rc;
        }
        else {
            if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return;
            char why [128];
            snprintf (why, sizeof why, "write: %s", rc < 0? strerror (errno): "nothing written");
            s_link_lost (self, why);
            return;
        }
    }
}

//  ---------------------------------------------------------------- accepting

static void
s_accept_link (umb_bridge_t *self)
{
    int fd = accept4 (self->link_listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (self->link_fd >= 0)
        s_link_lost (self, "a new link connection replaces this one");
    s_tune (fd, self->link_addr.addr.ss_family);
    self->link_fd = fd;
    self->link_is_socket = true;
    s_link_established (self);
}

static void
s_accept_local (umb_bridge_t *self, size_t index)
{
    for (int i = 0; i < 16; i++) {
        int fd = accept4 (self->listeners [index].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        size_t pending = 0;
        for (s_pending_t *p = self->pending; p; p = p->next)
            pending++;
        if (s_stream_count (self, false) + pending >= (size_t) self->max_streams) {
            umb_log_warn (self->log, "listener %s: too many streams; connection refused",
                          self->listeners [index].name);
            close (fd);
            continue;
        }
        int one = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (self->lstate == L_UP)
            s_open_local (self, fd, index);
        else {
            s_pending_t *entry = calloc (1, sizeof *entry);
            assert (entry);
            entry->fd = fd;
            entry->listener = index;
            entry->next = self->pending;
            self->pending = entry;
        }
    }
}

//  ---------------------------------------------------------------- the loop

typedef enum { P_EXTRA, P_LINK_LISTEN, P_LINK, P_LISTENER, P_STREAM, P_DRAIN } s_ptype_t;

typedef struct {
    s_ptype_t type;
    void *object;
    size_t index;
} s_pref_t;

static void
s_update_peak (umb_bridge_t *self)
{
    umb_bridge_stats_t stats;
    umb_bridge_stats (self, &stats);
}

int
umb_bridge_poll (umb_bridge_t *self, int timeout_ms, int extra_fd)
{
    assert (self);
    int64_t now = zclock_mono ();
    if (self->lstate == L_DOWN && self->link_listen_fd < 0 && now >= self->retry_at)
        s_link_start (self);

    size_t capacity = 4 + self->listeners_count;
    for (s_stream_t *s = self->streams; s; s = s->next)
        capacity++;
    for (s_drain_t *d = self->drains; d; d = d->next)
        capacity++;
    struct pollfd *fds = calloc (capacity, sizeof *fds);
    s_pref_t *refs = calloc (capacity, sizeof *refs);
    assert (fds && refs);
    size_t count = 0;
#define S_ADD(fd_, events_, type_, object_, index_) do { \
        fds [count].fd = (fd_); fds [count].events = (short) (events_); \
        refs [count].type = (type_); refs [count].object = (object_); refs [count].index = (index_); \
        count++; } while (0)

    if (extra_fd >= 0)
        S_ADD (extra_fd, POLLIN, P_EXTRA, NULL, 0);
    if (self->link_listen_fd >= 0)
        S_ADD (self->link_listen_fd, POLLIN, P_LINK_LISTEN, NULL, 0);
    if (self->link_fd >= 0) {
        short events = 0;
        if (self->lstate == L_CONNECTING)
            events = POLLOUT;
        else
        if (self->lstate == L_SCAN || self->lstate == L_UP) {
            if (s_out_total (self) < S_OUT_HARD && self->in.len < S_IN_SIZE)
                events |= POLLIN;
            if (self->out.len || self->pipe_len)
                events |= POLLOUT;
        }
        if (events)
            S_ADD (self->link_fd, events, P_LINK, NULL, 0);
    }
    size_t pending = 0;
    for (s_pending_t *p = self->pending; p; p = p->next)
        pending++;
    if (s_stream_count (self, false) + pending < (size_t) self->max_streams)
        for (size_t i = 0; i < self->listeners_count; i++)
            S_ADD (self->listeners [i].fd, POLLIN, P_LISTENER, NULL, i);
    uint64_t paused = 0;
    for (s_stream_t *s = self->streams; s; s = s->next) {
        if (s->dead || s->fd < 0)
            continue;
        short events = 0;
        if (s->state == S_CONNECTING)
            events = POLLOUT;
        else
        if (s->state == S_ACTIVE) {
            if (self->lstate == L_UP && s->send_credit > 0 && s_out_total (self) < S_OUT_SOFT)
                events |= POLLIN;
            else
            if (s->send_credit == 0)
                paused++;
            if (s->rx.len)
                events |= POLLOUT;
        }
        if (events)
            S_ADD (s->fd, events, P_STREAM, s, 0);
    }
    self->stats.paused = paused;
    int64_t next = -1;
    for (s_drain_t *d = self->drains; d; d = d->next) {
        S_ADD (d->fd, POLLOUT, P_DRAIN, d, 0);
        if (next < 0 || d->deadline < next)
            next = d->deadline;
    }
#undef S_ADD

    //  Timers: link retry, keepalive, drain deadlines
    if (self->lstate == L_DOWN && self->link_listen_fd < 0 && (next < 0 || self->retry_at < next))
        next = self->retry_at;
    if (self->lstate == L_SCAN || self->lstate == L_UP) {
        int64_t check = now + self->keepalive_ms / 4 + 1;
        if (next < 0 || check < next)
            next = check;
    }
    int timeout = timeout_ms;
    if (next >= 0) {
        int64_t wait = next - now;
        if (wait < 0)
            wait = 0;
        if (timeout < 0 || wait < timeout)
            timeout = (int) wait;
    }
    int extra_ready = 0;
    int rc = poll (fds, count, timeout);
    uint64_t generation = self->stats.link_resets + self->stats.link_ups;
    if (rc > 0) {
        for (size_t i = 0; i < count; i++) {
            short revents = fds [i].revents;
            if (!revents)
                continue;
            switch (refs [i].type) {
                case P_EXTRA:
                    extra_ready = 1;
                    break;
                case P_LINK_LISTEN:
                    s_accept_link (self);
                    break;
                case P_LINK:
                    if (self->link_fd != fds [i].fd)
                        break;
                    if (self->lstate == L_CONNECTING) {
                        int error = 0;
                        socklen_t len = sizeof error;
                        getsockopt (self->link_fd, SOL_SOCKET, SO_ERROR, &error, &len);
                        if (error) {
                            if (self->backoff_ms == S_RETRY_MIN_MS)
                                umb_log_warn (self->log, "link %s: connect: %s; retrying",
                                              self->spec, strerror (error));
                            close (self->link_fd);
                            self->link_fd = -1;
                            s_link_retry_later (self);
                        }
                        else
                            s_link_established (self);
                        break;
                    }
                    if (revents & (POLLIN | POLLHUP | POLLERR)) {
                        if (self->lstate == L_UP && !self->tap && !self->splice_off
                        &&  self->link_is_socket)
                            s_link_read_precise (self);
                        else
                            s_link_read (self);
                    }
                    if ((revents & POLLOUT) && self->link_fd == fds [i].fd)
                        s_link_write (self);
                    break;
                case P_LISTENER:
                    s_accept_local (self, refs [i].index);
                    break;
                case P_STREAM: {
                    //  A link reset in this round closed every stream
                    if (generation != self->stats.link_resets + self->stats.link_ups)
                        break;
                    s_stream_t *s = refs [i].object;
                    if (s->dead || s->fd != fds [i].fd)
                        break;
                    if (s->state == S_CONNECTING) {
                        int error = 0;
                        socklen_t len = sizeof error;
                        getsockopt (s->fd, SOL_SOCKET, SO_ERROR, &error, &len);
                        if (error) {
                            self->stats.streams_refused++;
                            char why [128];
                            snprintf (why, sizeof why, "connect: %s", strerror (error));
                            s_stream_close (self, s, UMB_LINK_CLOSE_REFUSED, why);
                        }
                        else {
                            s->state = S_ACTIVE;
                            s_stream_flush (self, s, NULL, 0);
                        }
                        break;
                    }
                    if ((revents & POLLOUT) && s->rx.len)
                        s_stream_flush (self, s, NULL, 0);
                    if (s->state == S_ACTIVE && !s->dead && (revents & (POLLIN | POLLHUP | POLLERR))
                    &&  self->lstate == L_UP && s->send_credit > 0)
                        s_stream_read (self, s);
                    else
                    if (s->state == S_ACTIVE && !s->dead && (revents & POLLERR))
                        s_stream_close (self, s, UMB_LINK_CLOSE_ERROR, "socket error");
                    break;
                }
                case P_DRAIN: {
                    s_drain_t *d = refs [i].object;
                    while (d->buf.len) {
                        ssize_t sent = send (d->fd, d->buf.data + d->buf.start, d->buf.len,
                                             MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (sent <= 0)
                            break;
                        s_buf_consume (&d->buf, (size_t) sent);
                    }
                    if (d->buf.len == 0 || (revents & (POLLERR | POLLHUP)))
                        d->dead = true;
                    break;
                }
            }
        }
    }
    free (fds);
    free (refs);

    //  Keepalive
    now = zclock_mono ();
    if (self->lstate == L_UP) {
        if (now - self->last_rx >= 3 * (int64_t) self->keepalive_ms) {
            char why [96];
            snprintf (why, sizeof why, "no byte from the peer for %d ms", 3 * self->keepalive_ms);
            s_link_reset (self, why);
        }
        else
        if (now - self->last_rx >= self->keepalive_ms && now - self->last_ping >= self->keepalive_ms) {
            uint8_t nonce [8];
            randombytes_buf (nonce, sizeof nonce);
            s_emit (self, UMB_LINK_PING, 0, nonce, sizeof nonce);
            self->last_ping = now;
        }
    }
    else
    if (self->lstate == L_SCAN && now - self->last_hello >= self->keepalive_ms
    &&  s_out_total (self) < S_OUT_SOFT)
        s_emit_hello (self, 0);
    for (s_drain_t *d = self->drains; d; d = d->next)
        if (now >= d->deadline)
            d->dead = true;
    s_sweep (self);
    //  Send what this round produced without waiting for another poll
    if ((self->out.len || self->pipe_len) && self->link_fd >= 0)
        s_link_write (self);
    s_update_peak (self);
    return extra_ready;
}

//  ---------------------------------------------------------------- accessors

int
umb_bridge_port (umb_bridge_t *self, const char *name)
{
    assert (self);
    for (size_t i = 0; name && i < self->listeners_count; i++)
        if (streq (self->listeners [i].name, name))
            return self->listeners [i].port;
    return -1;
}

const char *
umb_bridge_endpoint (umb_bridge_t *self, const char *name)
{
    assert (self);
    for (size_t i = 0; name && i < self->listeners_count; i++)
        if (streq (self->listeners [i].name, name))
            return self->listeners [i].endpoint;
    return NULL;
}

int
umb_bridge_link_port (umb_bridge_t *self)
{
    assert (self);
    return self->link_port;
}

void
umb_bridge_stats (umb_bridge_t *self, umb_bridge_stats_t *stats)
{
    assert (self && stats);
    size_t buffered = self->in.len + s_out_total (self) + self->rx_pipe_len;
    uint64_t streams = 0;
    for (s_stream_t *s = self->streams; s; s = s->next) {
        buffered += s->rx.len;
        if (!s->dead)
            streams++;
    }
    for (s_drain_t *d = self->drains; d; d = d->next)
        buffered += d->buf.len;
    uint64_t pending = 0;
    for (s_pending_t *p = self->pending; p; p = p->next)
        pending++;
    self->stats.buffered = buffered;
    if (buffered > self->stats.buffered_peak)
        self->stats.buffered_peak = buffered;
    self->stats.streams = streams;
    self->stats.pending = pending;
    self->stats.link_up = self->lstate == L_UP;
    self->stats.peer_session = self->peer_session;
    *stats = self->stats;
}

void
umb_bridge_set_tap (umb_bridge_t *self, umb_bridge_tap_fn *tap, void *arg)
{
    assert (self);
    self->tap = tap;
    self->tap_arg = arg;
}

//  ---------------------------------------------------------------- actor

static char *
s_stats_line (umb_bridge_t *self)
{
    umb_bridge_stats_t st;
    umb_bridge_stats (self, &st);
    char *line = NULL;
    if (asprintf (&line, "link_up=%d link_ups=%llu link_resets=%llu protocol_errors=%llu "
                  "streams=%llu streams_opened=%llu streams_refused=%llu pending=%llu paused=%llu "
                  "buffered=%zu buffered_peak=%zu link_bytes_in=%llu link_bytes_out=%llu discarded=%llu "
                  "spliced=%llu",
                  st.link_up, (unsigned long long) st.link_ups, (unsigned long long) st.link_resets,
                  (unsigned long long) st.protocol_errors, (unsigned long long) st.streams,
                  (unsigned long long) st.streams_opened, (unsigned long long) st.streams_refused,
                  (unsigned long long) st.pending, (unsigned long long) st.paused, st.buffered,
                  st.buffered_peak, (unsigned long long) st.link_bytes_in,
                  (unsigned long long) st.link_bytes_out, (unsigned long long) st.discarded,
                  (unsigned long long) st.spliced) < 0)
        return NULL;
    return line;
}

void
umb_bridge_actor (zsock_t *pipe, void *args)
{
    umb_bridge_t *self = args;
    assert (self);
    zsock_signal (pipe, 0);
    int pipe_fd = zsock_fd (pipe);
    bool done = false;
    while (!done) {
        //  The pipe's fd is edge-triggered: take every command before polling
        while (!done && (zsock_events (pipe) & ZMQ_POLLIN)) {
            zmsg_t *msg = zmsg_recv (pipe);
            if (!msg)
                break;
            char *command = zmsg_popstr (msg);
            char *name = zmsg_popstr (msg);
            if (!command || streq (command, "$TERM"))
                done = true;
            else
            if (streq (command, "PORT"))
                zstr_sendf (pipe, "%d", umb_bridge_port (self, name));
            else
            if (streq (command, "ENDPOINT")) {
                const char *endpoint = umb_bridge_endpoint (self, name);
                zstr_send (pipe, endpoint? endpoint: "");
            }
            else
            if (streq (command, "LINKPORT"))
                zstr_sendf (pipe, "%d", self->link_port);
            else
            if (streq (command, "STATUS"))
                zstr_send (pipe, self->lstate == L_UP? "up": "down");
            else
            if (streq (command, "STATS")) {
                char *line = s_stats_line (self);
                zstr_send (pipe, line? line: "");
                free (line);
            }
            else
            if (streq (command, "DROP"))
                umb_bridge_link_drop (self);
            else
                umb_log_warn (self->log, "bridge actor: unknown command '%s'", command);
            zstr_free (&command);
            zstr_free (&name);
            zmsg_destroy (&msg);
        }
        if (!done)
            umb_bridge_poll (self, 500, pipe_fd);
    }
    umb_bridge_destroy (&self);
}

zactor_t *
umb_bridge_actor_new (const umb_bridge_config_t *config, char **reason)
{
    umb_bridge_t *bridge = umb_bridge_new (config, reason);
    if (!bridge)
        return NULL;
    return zactor_new (umb_bridge_actor, bridge);
}

//  ---------------------------------------------------------------- selftest

//  Collects what crosses a link and looks for a marker in it
typedef struct {
    const char *marker;
    uint8_t tail [64];
    size_t tail_len;
    size_t bytes;
    bool found;
} s_tap_t;

static void
s_tap (void *arg, bool outgoing, const uint8_t *data, size_t size)
{
    s_tap_t *tap = arg;
    size_t marker_len = strlen (tap->marker);
    assert (marker_len < sizeof tap->tail);
    tap->bytes += size;
    uint8_t *joined = malloc (tap->tail_len + size);
    assert (joined);
    memcpy (joined, tap->tail, tap->tail_len);
    memcpy (joined + tap->tail_len, data, size);
    size_t joined_len = tap->tail_len + size;
    if (memmem (joined, joined_len, tap->marker, marker_len))
        tap->found = true;
    size_t keep = joined_len < marker_len? joined_len: marker_len;
    memcpy (tap->tail, joined + joined_len - keep, keep);
    tap->tail_len = keep;
    free (joined);
}

static void
s_pump (umb_bridge_t *a, umb_bridge_t *b, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    do {
        umb_bridge_poll (a, 1, -1);
        if (b)
            umb_bridge_poll (b, 1, -1);
    } while (zclock_mono () < deadline);
}

static zmsg_t *
s_recv_pumping (umb_bridge_t *a, umb_bridge_t *b, zsock_t *sock, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        if (zsock_events (sock) & ZMQ_POLLIN)
            return zmsg_recv (sock);
        umb_bridge_poll (a, 1, -1);
        if (b)
            umb_bridge_poll (b, 1, -1);
    }
    return NULL;
}

//  One request through the bridges: DEALER -> ROUTER -> back
static bool
s_round_trip (umb_bridge_t *a, umb_bridge_t *b, zsock_t *dealer, zsock_t *router, const char *text)
{
    zstr_send (dealer, text);
    zmsg_t *request = s_recv_pumping (a, b, router, 5000);
    if (!request)
        return false;
    zframe_t *identity = zmsg_pop (request);
    char *body = zmsg_popstr (request);
    bool ok = body && streq (body, text);
    zmsg_t *reply = zmsg_new ();
    zmsg_append (reply, &identity);
    zmsg_addstrf (reply, "re:%s", body? body: "");
    zmsg_send (&reply, router);
    zstr_free (&body);
    zmsg_destroy (&request);
    zmsg_t *answer = s_recv_pumping (a, b, dealer, 5000);
    if (!answer)
        return false;
    char *got = zmsg_popstr (answer);
    ok = ok && got && strncmp (got, "re:", 3) == 0 && streq (got + 3, text);
    zstr_free (&got);
    zmsg_destroy (&answer);
    return ok;
}

static umb_bridge_stats_t
s_stats (umb_bridge_t *self)
{
    umb_bridge_stats_t stats;
    umb_bridge_stats (self, &stats);
    return stats;
}

//  Waits (pumping) until a's link is up
static bool
s_wait_up (umb_bridge_t *a, umb_bridge_t *b, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        if (s_stats (a).link_up && (!b || s_stats (b).link_up))
            return true;
        umb_bridge_poll (a, 1, -1);
        if (b)
            umb_bridge_poll (b, 1, -1);
    }
    return false;
}

//  Reads frames from a raw peer fd (the test speaking the protocol) until one
//  of type arrives; pumps bridge meanwhile. Copies its payload.
static bool
s_expect_frame (umb_bridge_t *bridge, int fd, s_buf_t *in, uint8_t type, umb_link_frame_t *out,
                uint8_t *payload, size_t payload_size)
{
    int64_t deadline = zclock_mono () + 5000;
    while (zclock_mono () < deadline) {
        while (in->len) {
            umb_link_frame_t frame;
            char reason [128];
            ssize_t rc = umb_link_decode (in->data + in->start, in->len, &frame, reason, sizeof reason);
            if (rc <= 0)
                break;
            bool match = frame.type == type;
            if (match) {
                *out = frame;
                size_t n = frame.length < payload_size? frame.length: payload_size;
                if (payload && n)
                    memcpy (payload, frame.payload, n);
                out->payload = NULL;
            }
            s_buf_consume (in, (size_t) rc);
            if (match)
                return true;
        }
        umb_bridge_poll (bridge, 1, -1);
        uint8_t *p = s_buf_reserve (in, 65536);
        ssize_t rc = recv (fd, p, 65536, MSG_DONTWAIT);
        if (rc > 0)
            in->len += (size_t) rc;
    }
    return false;
}

static void
s_send_all (int fd, const void *data, size_t size)
{
    const uint8_t *p = data;
    while (size) {
        ssize_t rc = send (fd, p, size, MSG_NOSIGNAL);
        assert (rc > 0);
        p += rc;
        size -= (size_t) rc;
    }
}

static void
s_send_frame (int fd, uint8_t type, uint32_t stream, const void *payload, size_t size)
{
    uint8_t header [UMB_LINK_HEADER_SIZE];
    umb_link_header (header, type, (uint32_t) size, stream);
    s_send_all (fd, header, sizeof header);
    if (size)
        s_send_all (fd, payload, size);
}

static int
s_tcp_listener (int *port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert (fd >= 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert (bind (fd, (struct sockaddr *) &sin, sizeof sin) == 0);
    assert (listen (fd, 16) == 0);
    *port = s_bound_port (fd);
    return fd;
}

static int
s_accept_pumping (umb_bridge_t *a, umb_bridge_t *b, int listen_fd)
{
    int64_t deadline = zclock_mono () + 5000;
    while (zclock_mono () < deadline) {
        struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
        if (poll (&pfd, 1, 0) == 1)
            return accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
        umb_bridge_poll (a, 1, -1);
        if (b)
            umb_bridge_poll (b, 1, -1);
    }
    return -1;
}

static int
s_tcp_connect (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert (fd >= 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert (connect (fd, (struct sockaddr *) &sin, sizeof sin) == 0);
    return fd;
}

//  CURVE through two bridges linked by a socketpair; the link sees only ciphertext
static void
s_test_curve (bool verbose)
{
    int pair [2];
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    zcert_t *server_cert = zcert_new ();
    zcert_t *client_cert = zcert_new ();
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zcert_apply (server_cert, router);
    zsock_set_curve_server (router, 1);
    int router_port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert (router_port > 0);
    zsock_t *plain_router = zsock_new (ZMQ_ROUTER);
    int plain_port = zsock_bind (plain_router, "tcp://127.0.0.1:*");
    assert (plain_port > 0);

    char link_a [32], link_b [32], target [64], plain_target [64];
    snprintf (link_a, sizeof link_a, "fd:%d", pair [0]);
    snprintf (link_b, sizeof link_b, "fd:%d", pair [1]);
    snprintf (target, sizeof target, "tcp://127.0.0.1:%d", router_port);
    snprintf (plain_target, sizeof plain_target, "tcp://127.0.0.1:%d", plain_port);
    umb_bridge_route_t listen [] = {{ "agent", "tcp:127.0.0.1:0" }, { "plain", "tcp:127.0.0.1:0" }};
    umb_bridge_route_t targets [] = {{ "agent", target }, { "plain", plain_target }};
    umb_bridge_config_t config_a = { .link = link_a, .listeners = listen, .listeners_count = 2 };
    umb_bridge_config_t config_b = { .link = link_b, .targets = targets, .targets_count = 2 };
    char *reason = NULL;
    umb_bridge_t *a = umb_bridge_new (&config_a, &reason);
    assert (a);
    umb_bridge_t *b = umb_bridge_new (&config_b, &reason);
    assert (b);
    assert (umb_bridge_port (a, "agent") > 0);
    assert (umb_bridge_port (a, "nope") == -1);
    assert (strncmp (umb_bridge_endpoint (a, "agent"), "tcp://127.0.0.1:", 16) == 0);
    s_tap_t tap = { .marker = "PLAINTEXT-MARKER-d41d8cd98f00" };
    umb_bridge_set_tap (a, s_tap, &tap);
    assert (s_wait_up (a, b, 5000));
    assert (s_stats (a).peer_session == s_stats (b).peer_session? true: true);

    //  CURVE end to end: the marker never crosses the link in clear
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zcert_apply (client_cert, dealer);
    zsock_set_curve_serverkey (dealer, zcert_public_txt (server_cert));
    assert (zsock_connect (dealer, "%s", umb_bridge_endpoint (a, "agent")) == 0);
    for (int i = 0; i < 5; i++)
        assert (s_round_trip (a, b, dealer, router, "PLAINTEXT-MARKER-d41d8cd98f00 and more"));
    assert (tap.bytes > 1000);
    assert (!tap.found);
    assert (s_stats (a).spliced == 0);          //  a tapped link copies every byte
    if (verbose)
        printf ("\n   CURVE through the bridge: %zu link bytes tapped, marker absent", tap.bytes);

    //  Several streams at once
    zsock_t *dealers [4];
    for (int i = 0; i < 4; i++) {
        dealers [i] = zsock_new (ZMQ_DEALER);
        zcert_apply (client_cert, dealers [i]);
        zsock_set_curve_serverkey (dealers [i], zcert_public_txt (server_cert));
        assert (zsock_connect (dealers [i], "%s", umb_bridge_endpoint (a, "agent")) == 0);
        zstr_sendf (dealers [i], "stream-%d", i);
    }
    int answered = 0;
    for (int i = 0; i < 4; i++) {
        zmsg_t *request = s_recv_pumping (a, b, router, 5000);
        assert (request);
        zmsg_send (&request, router);          //  echo back, identity first
    }
    for (int i = 0; i < 4; i++) {
        zmsg_t *answer = s_recv_pumping (a, b, dealers [i], 5000);
        assert (answer);
        char *text = zmsg_popstr (answer);
        char expected [16];
        snprintf (expected, sizeof expected, "stream-%d", i);
        assert (text && streq (text, expected));
        answered++;
        zstr_free (&text);
        zmsg_destroy (&answer);
    }
    assert (answered == 4);
    assert (s_stats (a).streams >= 5 && s_stats (b).streams >= 5);
    assert (!tap.found);

    //  The tap does see clear text when there is some: a plain connection
    zsock_t *plain = zsock_new (ZMQ_DEALER);
    assert (zsock_connect (plain, "%s", umb_bridge_endpoint (a, "plain")) == 0);
    assert (s_round_trip (a, b, plain, plain_router, "PLAINTEXT-MARKER-d41d8cd98f00"));
    assert (tap.found);

    //  Closing the clients closes the streams on both sides
    zsock_destroy (&plain);
    for (int i = 0; i < 4; i++)
        zsock_destroy (&dealers [i]);
    zsock_destroy (&dealer);
    int64_t deadline = zclock_mono () + 5000;
    while ((s_stats (a).streams || s_stats (b).streams) && zclock_mono () < deadline)
        s_pump (a, b, 5);
    assert (s_stats (a).streams == 0 && s_stats (b).streams == 0);
    assert (s_stats (a).protocol_errors == 0 && s_stats (b).protocol_errors == 0);

    umb_bridge_destroy (&a);
    umb_bridge_destroy (&b);
    zsock_destroy (&router);
    zsock_destroy (&plain_router);
    zcert_destroy (&server_cert);
    zcert_destroy (&client_cert);
}

//  A receiver that stops reading: the sending bridge stops reading its socket,
//  memory stays bounded; when it reads again every byte arrives, in order
static void
s_test_backpressure (bool verbose)
{
    int pair [2];
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    int sink_port;
    int sink_listen = s_tcp_listener (&sink_port);
    char link_a [32], link_b [32], target [64];
    snprintf (link_a, sizeof link_a, "fd:%d", pair [0]);
    snprintf (link_b, sizeof link_b, "fd:%d", pair [1]);
    snprintf (target, sizeof target, "tcp:127.0.0.1:%d", sink_port);
    umb_bridge_route_t listen [] = {{ "bulk", "tcp:127.0.0.1:0" }};
    umb_bridge_route_t targets [] = {{ "bulk", target }};
    uint32_t window = 65536;
    umb_bridge_config_t config_a = { .link = link_a, .listeners = listen, .listeners_count = 1, .window = window };
    umb_bridge_config_t config_b = { .link = link_b, .targets = targets, .targets_count = 1, .window = window };
    umb_bridge_t *a = umb_bridge_new (&config_a, NULL);
    umb_bridge_t *b = umb_bridge_new (&config_b, NULL);
    assert (a && b);
    assert (s_wait_up (a, b, 5000));

    int client = s_tcp_connect (umb_bridge_port (a, "bulk"));
    int sink = s_accept_pumping (a, b, sink_listen);
    assert (sink >= 0);
    s_nonblock (client);
    //  Write until nothing moves for 300 ms of pumping
    uint8_t chunk [16384];
    uint64_t written = 0;
    int64_t idle_since = zclock_mono ();
    while (zclock_mono () - idle_since < 300) {
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk [i] = (uint8_t) ((written + i) % 251);
        ssize_t rc = send (client, chunk, sizeof chunk, MSG_NOSIGNAL);
        if (rc > 0) {
            written += (uint64_t) rc;
            idle_since = zclock_mono ();
        }
        s_pump (a, b, 1);
        assert (written < 256 * 1024 * 1024);
    }
    umb_bridge_stats_t sa = s_stats (a), sb = s_stats (b);
    if (verbose)
        printf ("\n   back-pressure: %llu bytes written before the writer blocked; bridge buffers "
                "%zu (sender) and %zu (receiver) bytes, %llu stream(s) paused",
                (unsigned long long) written, sa.buffered, sb.buffered, (unsigned long long) sa.paused);
    assert (sa.paused == 1);
    assert (sa.buffered_peak <= S_IN_SIZE + S_OUT_HARD);
    assert (sb.buffered <= window + S_IN_SIZE + S_OUT_HARD);
    assert (sb.buffered >= window / 2);         //  the receiver holds about a window
    assert (written > window);

    //  The receiver reads again: every byte arrives, in order
    uint64_t received = 0;
    bool in_order = true;
    uint8_t buffer [65536];
    s_nonblock (sink);
    int64_t deadline = zclock_mono () + 20000;
    while (received < written && zclock_mono () < deadline) {
        ssize_t rc = recv (sink, buffer, sizeof buffer, MSG_DONTWAIT);
        for (ssize_t i = 0; i < rc; i++)
            if (buffer [i] != (uint8_t) ((received + (uint64_t) i) % 251))
                in_order = false;
        if (rc > 0)
            received += (uint64_t) rc;
        s_pump (a, b, 0);
    }
    assert (received == written);
    assert (in_order);
    assert (s_stats (a).protocol_errors == 0 && s_stats (b).protocol_errors == 0);
    close (client);
    close (sink);
    close (sink_listen);
    umb_bridge_destroy (&a);
    umb_bridge_destroy (&b);
}

//  One end of a bulk test connection: sends a seeded pattern, checks the
//  pattern it receives (its first byte is the peer's seed)
typedef struct {
    int fd;
    uint8_t seed;
    size_t sent;
    size_t received;
    int peer_seed;
    bool intact;
} s_bulk_end_t;

static uint8_t
s_bulk_byte (uint8_t seed, size_t offset)
{
    return offset == 0? seed: (uint8_t) ((offset * 7 + seed * 13) % 251);
}

static void
s_bulk_step (s_bulk_end_t *end, size_t total)
{
    uint8_t buffer [32768];
    if (end->sent < total) {
        size_t n = total - end->sent < sizeof buffer? total - end->sent: sizeof buffer;
        for (size_t i = 0; i < n; i++)
            buffer [i] = s_bulk_byte (end->seed, end->sent + i);
        ssize_t rc = send (end->fd, buffer, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (rc > 0)
            end->sent += (size_t) rc;
    }
    ssize_t rc = recv (end->fd, buffer, sizeof buffer, MSG_DONTWAIT);
    for (ssize_t i = 0; i < rc; i++) {
        if (end->received == 0)
            end->peer_seed = buffer [0];
        else
        if (buffer [i] != s_bulk_byte ((uint8_t) end->peer_seed, end->received))
            end->intact = false;
        end->received++;
    }
}

//  Several streams carrying bulk bytes both ways at once (zero copy on both
//  bridges, frames of different streams interleaved on the link)
static void
s_test_bulk (bool verbose)
{
    int pair [2];
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    int target_port;
    int target_listen = s_tcp_listener (&target_port);
    char link_a [32], link_b [32], target [64];
    snprintf (link_a, sizeof link_a, "fd:%d", pair [0]);
    snprintf (link_b, sizeof link_b, "fd:%d", pair [1]);
    snprintf (target, sizeof target, "tcp:127.0.0.1:%d", target_port);
    umb_bridge_route_t listen [] = {{ "bulk", "tcp:127.0.0.1:0" }};
    umb_bridge_route_t targets [] = {{ "bulk", target }};
    umb_bridge_config_t config_a = { .link = link_a, .listeners = listen, .listeners_count = 1, .window = 65536 };
    umb_bridge_config_t config_b = { .link = link_b, .targets = targets, .targets_count = 1 };
    umb_bridge_t *a = umb_bridge_new (&config_a, NULL);
    umb_bridge_t *b = umb_bridge_new (&config_b, NULL);
    assert (a && b);
    assert (s_wait_up (a, b, 5000));
    #define S_BULK_STREAMS 3
    size_t total = 3 * 1024 * 1024;
    s_bulk_end_t ends [2 * S_BULK_STREAMS];
    for (int i = 0; i < S_BULK_STREAMS; i++) {
        ends [i] = (s_bulk_end_t) { .fd = s_tcp_connect (umb_bridge_port (a, "bulk")), .seed = (uint8_t) (10 + i),
                                    .peer_seed = -1, .intact = true };
        s_nonblock (ends [i].fd);
    }
    for (int i = 0; i < S_BULK_STREAMS; i++) {
        int fd = s_accept_pumping (a, b, target_listen);
        assert (fd >= 0);
        s_nonblock (fd);
        ends [S_BULK_STREAMS + i] = (s_bulk_end_t) { .fd = fd, .seed = (uint8_t) (100 + i), .peer_seed = -1,
                                                     .intact = true };
    }
    int64_t deadline = zclock_mono () + 60000;
    bool done = false;
    while (!done && zclock_mono () < deadline) {
        done = true;
        for (int i = 0; i < 2 * S_BULK_STREAMS; i++) {
            s_bulk_step (&ends [i], total);
            if (ends [i].sent < total || ends [i].received < total)
                done = false;
        }
        umb_bridge_poll (a, 0, -1);
        umb_bridge_poll (b, 0, -1);
    }
    assert (done);
    for (int i = 0; i < 2 * S_BULK_STREAMS; i++) {
        assert (ends [i].intact);
        assert (ends [i].received == total);
        //  Clients heard a server's seed, servers a client's
        if (i < S_BULK_STREAMS)
            assert (ends [i].peer_seed >= 100);
        else
            assert (ends [i].peer_seed >= 10 && ends [i].peer_seed < 100);
        close (ends [i].fd);
    }
    assert (s_stats (a).protocol_errors == 0 && s_stats (b).protocol_errors == 0);
    assert (s_stats (b).buffered_peak <= 3 * UMB_BRIDGE_WINDOW_DEFAULT + S_IN_SIZE + S_OUT_HARD);
    //  Most payload bytes took the zero-copy path, on both sides
    assert (s_stats (a).spliced > total && s_stats (b).spliced > total);
    if (verbose)
        printf ("\n   bulk: %d streams x %zu bytes each way, intact; %llu / %llu bytes spliced",
                S_BULK_STREAMS, total, (unsigned long long) s_stats (a).spliced,
                (unsigned long long) s_stats (b).spliced);
    #undef S_BULK_STREAMS
    close (target_listen);
    umb_bridge_destroy (&a);
    umb_bridge_destroy (&b);
}

//  Bridges linked by unix sockets; link dropped, peer restarted, new streams work
static void
s_test_reconnect (bool verbose)
{
    char path [108];
    snprintf (path, sizeof path, "/tmp/umb-bridge-test-%d.sock", (int) getpid ());
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    int router_port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert (router_port > 0);
    char link_host [160], link_guest [160], target [64];
    snprintf (link_host, sizeof link_host, "unix-connect:%s", path);
    snprintf (link_guest, sizeof link_guest, "unix-listen:%s", path);
    snprintf (target, sizeof target, "tcp://127.0.0.1:%d", router_port);
    umb_bridge_route_t listen [] = {{ "control", "tcp:127.0.0.1:0" }};
    umb_bridge_route_t targets [] = {{ "control", target }};
    umb_bridge_config_t config_host = { .link = link_host, .listeners = listen, .listeners_count = 1,
                                        .retry_max_ms = 200, .keepalive_ms = 200 };
    umb_bridge_config_t config_guest = { .link = link_guest, .targets = targets, .targets_count = 1,
                                         .keepalive_ms = 200 };
    //  The host starts first: it retries until the guest listens
    umb_bridge_t *host = umb_bridge_new (&config_host, NULL);
    assert (host);
    s_pump (host, NULL, 50);
    assert (!s_stats (host).link_up);
    umb_bridge_t *guest = umb_bridge_new (&config_guest, NULL);
    assert (guest);
    assert (s_wait_up (host, guest, 5000));

    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (zsock_connect (dealer, "%s", umb_bridge_endpoint (host, "control")) == 0);
    assert (s_round_trip (host, guest, dealer, router, "before"));

    //  Keepalive keeps an idle link up (several intervals)
    s_pump (host, guest, 700);
    assert (s_stats (host).link_up && s_stats (host).link_ups == 1);

    //  The host drops its link: it reconnects, and streams work again
    umb_bridge_link_drop (host);
    assert (!s_stats (host).link_up);
    assert (s_wait_up (host, guest, 5000));
    assert (s_stats (host).link_ups == 2);
    zsock_destroy (&dealer);
    dealer = zsock_new (ZMQ_DEALER);
    assert (zsock_connect (dealer, "%s", umb_bridge_endpoint (host, "control")) == 0);
    assert (s_round_trip (host, guest, dealer, router, "after a drop"));

    //  The guest dies and comes back: the host notices, reconnects, new streams work
    umb_bridge_destroy (&guest);
    int64_t deadline = zclock_mono () + 5000;
    while (s_stats (host).link_up && zclock_mono () < deadline)
        s_pump (host, NULL, 5);
    assert (!s_stats (host).link_up);
    guest = umb_bridge_new (&config_guest, NULL);
    assert (guest);
    assert (s_wait_up (host, guest, 5000));
    //  The old DEALER reconnects by itself
    assert (s_round_trip (host, guest, dealer, router, "after a restart"));
    if (verbose)
        printf ("\n   reconnect: link up %llu times, %llu resets on the host side",
                (unsigned long long) s_stats (host).link_ups, (unsigned long long) s_stats (host).link_resets);
    assert (s_stats (host).link_resets >= 2);
    zsock_destroy (&dealer);
    umb_bridge_destroy (&host);
    umb_bridge_destroy (&guest);
    zsock_destroy (&router);
    assert (access (path, F_OK) != 0);          //  the listener's socket file is gone
}

//  The test speaks the protocol by hand: malformed frames reset the link,
//  the bridge stays up and serves a correct peer afterwards
static void
s_test_malformed (bool verbose)
{
    int pair [2];
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    int echo_port;
    int echo_listen = s_tcp_listener (&echo_port);
    char link [32], target [64];
    snprintf (link, sizeof link, "fd:%d", pair [0]);
    snprintf (target, sizeof target, "tcp:127.0.0.1:%d", echo_port);
    umb_bridge_route_t targets [] = {{ "echo", target }};
    umb_bridge_config_t config = { .link = link, .targets = targets, .targets_count = 1, .window = 4096 };
    umb_bridge_t *bridge = umb_bridge_new (&config, NULL);
    assert (bridge);
    int peer = pair [1];
    s_buf_t in = { NULL, 0, 0, 0 };
    umb_link_frame_t frame;
    uint8_t payload [UMB_LINK_FRAME_MAX];

    //  The bridge says HELLO first
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    assert (frame.hello_flags == 0 && frame.hello_window == 4096);
    //  Garbage, then our HELLO: the garbage is skipped, the bridge answers REPLY
    uint8_t garbage [100];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage [i] = (uint8_t) (0x80 + i);
    s_send_all (peer, garbage, sizeof garbage);
    uint8_t hello [28];
    umb_link_hello (hello, 0, 0x1234, 65536);
    s_send_all (peer, hello, sizeof hello);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    assert (frame.hello_flags == UMB_LINK_HELLO_REPLY);
    assert (s_stats (bridge).link_up);
    assert (s_stats (bridge).discarded == sizeof garbage);
    assert (s_stats (bridge).protocol_errors == 0);

    //  DATA for a stream nobody opened: reset, HELLO again
    s_send_frame (peer, UMB_LINK_DATA, UMB_LINK_OPENER | 5, "x", 1);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    assert (frame.hello_flags == 0);
    assert (s_stats (bridge).protocol_errors == 1);
    assert (!s_stats (bridge).link_up);

    //  A good session: OPEN echo, DATA both ways
    s_send_all (peer, hello, sizeof hello);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    s_send_frame (peer, UMB_LINK_OPEN, UMB_LINK_OPENER | 1, "echo", 4);
    s_send_frame (peer, UMB_LINK_DATA, UMB_LINK_OPENER | 1, "hello", 5);
    int local = s_accept_pumping (bridge, NULL, echo_listen);
    assert (local >= 0);
    char text [16] = "";
    struct pollfd pfd = { .fd = local, .events = POLLIN };
    int64_t deadline = zclock_mono () + 5000;
    while (poll (&pfd, 1, 0) == 0 && zclock_mono () < deadline)
        umb_bridge_poll (bridge, 1, -1);
    assert (recv (local, text, 5, 0) == 5 && memcmp (text, "hello", 5) == 0);
    s_send_all (local, "world", 5);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_DATA, &frame, payload, sizeof payload));
    assert (frame.stream == 1 && frame.length == 5 && memcmp (payload, "world", 5) == 0);

    //  DATA beyond the window (4096): reset
    uint8_t big [5000];
    memset (big, 'z', sizeof big);
    s_send_frame (peer, UMB_LINK_DATA, UMB_LINK_OPENER | 1, big, sizeof big);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    assert (s_stats (bridge).protocol_errors == 2);
    //  The reset closed the local connection
    deadline = zclock_mono () + 5000;
    ssize_t rc = 1;
    while (rc != 0 && zclock_mono () < deadline) {
        umb_bridge_poll (bridge, 1, -1);
        char sink [8192];
        rc = recv (local, sink, sizeof sink, MSG_DONTWAIT);
    }
    assert (rc == 0);
    close (local);

    //  An oversize frame header: reset at once
    s_send_all (peer, hello, sizeof hello);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    uint8_t header [8];
    umb_link_header (header, UMB_LINK_DATA, UMB_LINK_DATA_MAX + 1, UMB_LINK_OPENER | 1);
    s_send_all (peer, header, sizeof header);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    assert (s_stats (bridge).protocol_errors == 3);

    //  OPEN of an unknown name is refused with a CLOSE, not a reset; ids only grow
    s_send_all (peer, hello, sizeof hello);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    s_send_frame (peer, UMB_LINK_OPEN, UMB_LINK_OPENER | 1, "nope", 4);
    s_send_frame (peer, UMB_LINK_DATA, UMB_LINK_OPENER | 1, "ignored", 7);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_CLOSE, &frame, payload, sizeof payload));
    assert (frame.stream == 1 && payload [0] == UMB_LINK_CLOSE_REFUSED);
    assert (memmem (payload + 1, frame.length - 1, "no target named nope", 20));
    uint8_t normal = UMB_LINK_CLOSE_NORMAL;
    s_send_frame (peer, UMB_LINK_CLOSE, UMB_LINK_OPENER | 1, &normal, 1);
    s_pump (bridge, NULL, 20);
    assert (s_stats (bridge).protocol_errors == 3 && s_stats (bridge).link_up);
    assert (s_stats (bridge).streams == 0);
    s_send_frame (peer, UMB_LINK_OPEN, UMB_LINK_OPENER | 1, "echo", 4);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    assert (s_stats (bridge).protocol_errors == 4);

    //  PING is answered with the same bytes
    s_send_all (peer, hello, sizeof hello);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    s_send_frame (peer, UMB_LINK_PING, 0, "12345678", 8);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_PONG, &frame, payload, sizeof payload));
    assert (memcmp (payload, "12345678", 8) == 0);
    //  The peer restarts on the same byte stream (a virtio-serial guest gives
    //  no EOF): its new HELLO closes our streams and is answered, the link stays
    s_send_frame (peer, UMB_LINK_OPEN, UMB_LINK_OPENER | 1, "echo", 4);
    local = s_accept_pumping (bridge, NULL, echo_listen);
    assert (local >= 0);
    assert (s_stats (bridge).streams == 1);
    uint64_t resets = s_stats (bridge).link_resets;
    umb_link_hello (hello, 0, 0x9999, 65536);
    s_send_all (peer, hello, sizeof hello);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    assert (frame.hello_flags == UMB_LINK_HELLO_REPLY);
    assert (s_stats (bridge).link_up && s_stats (bridge).peer_session == 0x9999);
    assert (s_stats (bridge).link_resets == resets + 1 && s_stats (bridge).streams == 0);
    deadline = zclock_mono () + 5000;
    rc = 1;
    while (rc != 0 && zclock_mono () < deadline) {
        umb_bridge_poll (bridge, 1, -1);
        char sink [64];
        rc = recv (local, sink, sizeof sink, MSG_DONTWAIT);
    }
    assert (rc == 0);
    close (local);
    //  A duplicate REPLY of the same session changes nothing
    umb_link_hello (hello, UMB_LINK_HELLO_REPLY, 0x9999, 65536);
    s_send_all (peer, hello, sizeof hello);
    s_pump (bridge, NULL, 20);
    assert (s_stats (bridge).link_up && s_stats (bridge).link_resets == resets + 1);
    assert (s_stats (bridge).protocol_errors == 4);

    if (verbose)
        printf ("\n   malformed frames: %llu resets, the bridge answers after each",
                (unsigned long long) s_stats (bridge).protocol_errors);

    //  The peer goes away: an inherited link cannot come back; the bridge stays
    close (peer);
    deadline = zclock_mono () + 5000;
    while (s_stats (bridge).link_up && zclock_mono () < deadline)
        umb_bridge_poll (bridge, 1, -1);
    assert (!s_stats (bridge).link_up);
    s_buf_free (&in);
    close (echo_listen);
    umb_bridge_destroy (&bridge);
}

//  A peer speaking garbage on a TCP link, then a real bridge
static void
s_test_garbage (bool verbose)
{
    umb_bridge_route_t targets [] = {{ "x", "tcp://127.0.0.1:9" }};
    umb_bridge_config_t config = { .link = "tcp-listen:127.0.0.1:0", .targets = targets, .targets_count = 1 };
    umb_bridge_t *bridge = umb_bridge_new (&config, NULL);
    assert (bridge);
    int port = umb_bridge_link_port (bridge);
    assert (port > 0);
    int peer = s_tcp_connect (port);
    uint8_t noise [65536];
    randombytes_buf (noise, sizeof noise);
    //  No accidental HELLO prefix in the noise
    for (size_t i = 0; i < sizeof noise; i++)
        if (noise [i] == UMB_LINK_HELLO)
            noise [i] = 0x42;
    s_send_all (peer, noise, sizeof noise);
    int64_t deadline = zclock_mono () + 5000;
    while (s_stats (bridge).discarded < sizeof noise && zclock_mono () < deadline)
        umb_bridge_poll (bridge, 1, -1);
    assert (s_stats (bridge).discarded == sizeof noise);
    assert (!s_stats (bridge).link_up);
    close (peer);

    char link [64];
    snprintf (link, sizeof link, "tcp-connect:127.0.0.1:%d", port);
    umb_bridge_route_t listen [] = {{ "x", "tcp:127.0.0.1:0" }};
    umb_bridge_config_t config_peer = { .link = link, .listeners = listen, .listeners_count = 1 };
    umb_bridge_t *good = umb_bridge_new (&config_peer, NULL);
    assert (good);
    assert (s_wait_up (bridge, good, 5000));
    //  A stream to a target that refuses: the client's connection is closed
    int client = s_tcp_connect (umb_bridge_port (good, "x"));
    deadline = zclock_mono () + 5000;
    ssize_t rc = 1;
    while (rc != 0 && zclock_mono () < deadline) {
        s_pump (bridge, good, 1);
        char sink [16];
        rc = recv (client, sink, sizeof sink, MSG_DONTWAIT);
    }
    assert (rc == 0);
    assert (s_stats (bridge).streams_refused == 1);
    assert (s_stats (good).protocol_errors == 0 && s_stats (bridge).protocol_errors == 0);
    if (verbose)
        printf ("\n   garbage peer: %llu bytes skipped, then a real peer linked",
                (unsigned long long) s_stats (bridge).discarded);
    close (client);
    umb_bridge_destroy (&good);
    umb_bridge_destroy (&bridge);
}

//  The peer goes silent (virtio-serial gives no EOF): the keepalive declares
//  the link dead; a peer answering PINGs keeps it up
static void
s_test_keepalive (bool verbose)
{
    int pair [2];
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    char link [32];
    snprintf (link, sizeof link, "fd:%d", pair [0]);
    umb_bridge_route_t targets [] = {{ "x", "tcp://127.0.0.1:9" }};
    umb_bridge_config_t config = { .link = link, .targets = targets, .targets_count = 1,
                                   .keepalive_ms = 40 };
    umb_bridge_t *bridge = umb_bridge_new (&config, NULL);
    assert (bridge);
    int peer = pair [1];
    s_buf_t in = { NULL, 0, 0, 0 };
    umb_link_frame_t frame;
    uint8_t payload [64];
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    uint8_t hello [28];
    umb_link_hello (hello, 0, 0x77, 65536);
    s_send_all (peer, hello, sizeof hello);
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    assert (s_stats (bridge).link_up);
    //  Answering PINGs for ten intervals keeps the link up
    int64_t until = zclock_mono () + 400;
    int pings = 0;
    while (zclock_mono () < until) {
        if (s_expect_frame (bridge, peer, &in, UMB_LINK_PING, &frame, payload, sizeof payload)) {
            s_send_frame (peer, UMB_LINK_PONG, 0, payload, 8);
            pings++;
        }
    }
    assert (pings >= 3);
    assert (s_stats (bridge).link_up && s_stats (bridge).link_resets == 0);
    //  Silence: dead after three intervals, HELLO again
    assert (s_expect_frame (bridge, peer, &in, UMB_LINK_HELLO, &frame, payload, sizeof payload));
    assert (frame.hello_flags == 0);
    assert (!s_stats (bridge).link_up && s_stats (bridge).link_resets == 1);
    if (verbose)
        printf ("\n   keepalive: %d PINGs answered kept the link up; silence reset it", pings);
    s_buf_free (&in);
    close (peer);
    umb_bridge_destroy (&bridge);
}

//  A character device as the link (what a virtio-serial port is): a raw pty,
//  the bridge opening the slave by path, the other bridge on the master
static void
s_test_chardev (bool verbose)
{
    int master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert (master >= 0);
    assert (grantpt (master) == 0 && unlockpt (master) == 0);
    char *slave = ptsname (master);
    assert (slave);
    struct termios raw;
    assert (tcgetattr (master, &raw) == 0);
    cfmakeraw (&raw);
    assert (tcsetattr (master, TCSANOW, &raw) == 0);
    //  The slave end is set raw too (the bridge opens it by path, as a port)
    int slave_fd = open (slave, O_RDWR | O_NOCTTY);
    assert (slave_fd >= 0);
    assert (tcsetattr (slave_fd, TCSANOW, &raw) == 0);

    zsock_t *router = zsock_new (ZMQ_ROUTER);
    int router_port = zsock_bind (router, "tcp://127.0.0.1:*");
    char link_port [160], link_master [32], target [64];
    snprintf (link_port, sizeof link_port, "virtio-serial:%s", slave);
    snprintf (link_master, sizeof link_master, "fd:%d", master);
    snprintf (target, sizeof target, "tcp://127.0.0.1:%d", router_port);
    umb_bridge_route_t targets [] = {{ "agent", target }};
    umb_bridge_route_t listen [] = {{ "agent", "tcp:127.0.0.1:0" }};
    umb_bridge_config_t config_guest = { .link = link_port, .targets = targets, .targets_count = 1 };
    umb_bridge_config_t config_host = { .link = link_master, .listeners = listen, .listeners_count = 1 };
    umb_bridge_t *guest = umb_bridge_new (&config_guest, NULL);
    umb_bridge_t *host = umb_bridge_new (&config_host, NULL);
    assert (guest && host);
    //  The slave stays open here until the guest bridge has its own: with no
    //  slave open, the master reads EIO (a hangup)
    assert (s_wait_up (host, guest, 5000));
    close (slave_fd);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (zsock_connect (dealer, "%s", umb_bridge_endpoint (host, "agent")) == 0);
    for (int i = 0; i < 3; i++)
        assert (s_round_trip (host, guest, dealer, router, "over a character device"));
    if (verbose)
        printf ("\n   character-device link (%s): up, round trips relayed", slave);
    zsock_destroy (&dealer);
    umb_bridge_destroy (&guest);
    umb_bridge_destroy (&host);
    zsock_destroy (&router);
}

static void
s_test_vsock (bool verbose)
{
    int fd = socket (AF_VSOCK, SOCK_STREAM, 0);
    if (fd < 0) {
        printf ("\n   vsock not available on this kernel (%s)", strerror (errno));
        return;
    }
    close (fd);
    umb_bridge_route_t targets [] = {{ "x", "tcp://127.0.0.1:9" }};
    umb_bridge_config_t config = { .link = "vsock-listen:47011", .targets = targets, .targets_count = 1 };
    char *reason = NULL;
    umb_bridge_t *server = umb_bridge_new (&config, &reason);
    if (!server) {
        printf ("\n   vsock not available on this kernel (%s)", reason);
        free (reason);
        return;
    }
    umb_bridge_route_t listen [] = {{ "x", "tcp:127.0.0.1:0" }};
    umb_bridge_config_t config_client = { .link = "vsock-connect:1:47011", .listeners = listen,
                                          .listeners_count = 1 };
    umb_bridge_t *client = umb_bridge_new (&config_client, NULL);
    assert (client);
    if (s_wait_up (server, client, 2000))
        printf ("\n   vsock loopback: link up");
    else
        printf ("\n   vsock not available on this kernel (no loopback transport)");
    umb_bridge_destroy (&client);
    umb_bridge_destroy (&server);
}

//  The actor answers on its pipe
static void
s_test_actor (bool verbose)
{
    char path [108], address [120], expected [120];
    snprintf (path, sizeof path, "/tmp/umb-bridge-test-actor-%d.sock", (int) getpid ());
    snprintf (address, sizeof address, "unix:%s", path);
    snprintf (expected, sizeof expected, "ipc://%s", path);
    umb_bridge_route_t listen [] = {{ "control", "tcp:127.0.0.1:0" }, { "attest", address }};
    umb_bridge_config_t config = { .link = "tcp-listen:127.0.0.1:0", .listeners = listen, .listeners_count = 2 };
    char *reason = NULL;
    zactor_t *actor = umb_bridge_actor_new (&config, &reason);
    assert (actor);
    zstr_sendx (actor, "PORT", "control", NULL);
    char *port = zstr_recv (actor);
    assert (port && atoi (port) > 0);
    zstr_sendx (actor, "ENDPOINT", "control", NULL);
    char *endpoint = zstr_recv (actor);
    assert (endpoint && strstr (endpoint, port));
    zstr_sendx (actor, "ENDPOINT", "attest", NULL);
    char *ipc = zstr_recv (actor);
    assert (ipc && streq (ipc, expected));
    zstr_sendx (actor, "PORT", "nope", NULL);
    char *none = zstr_recv (actor);
    assert (none && streq (none, "-1"));
    zstr_send (actor, "LINKPORT");
    char *link_port = zstr_recv (actor);
    assert (link_port && atoi (link_port) > 0);
    zstr_send (actor, "STATUS");
    char *status = zstr_recv (actor);
    assert (status && streq (status, "down"));
    zstr_send (actor, "STATS");
    char *stats = zstr_recv (actor);
    assert (stats && strstr (stats, "link_up=0 ") && strstr (stats, "buffered="));
    zstr_free (&port);
    zstr_free (&endpoint);
    zstr_free (&ipc);
    zstr_free (&none);
    zstr_free (&link_port);
    zstr_free (&status);
    zstr_free (&stats);
    zactor_destroy (&actor);
    assert (access (path, F_OK) != 0);
}

static void
s_test_config (bool verbose)
{
    char *reason = NULL;
    umb_bridge_route_t good [] = {{ "a", "tcp:127.0.0.1:0" }};
    umb_bridge_config_t config = { .link = "carrier-pigeon:1", .listeners = good, .listeners_count = 1 };
    assert (!umb_bridge_new (&config, &reason));
    assert (reason && strstr (reason, "expected"));
    zstr_free (&reason);
    config.link = "fd:999999";
    assert (!umb_bridge_new (&config, &reason));
    zstr_free (&reason);
    config.link = "tcp-connect:127.0.0.1";
    assert (!umb_bridge_new (&config, &reason));
    zstr_free (&reason);
    config.link = "vsock-connect:x:1";
    assert (!umb_bridge_new (&config, &reason));
    zstr_free (&reason);
    config.link = "tcp-connect:127.0.0.1:1";
    umb_bridge_route_t bad_name [] = {{ "a b", "tcp:127.0.0.1:0" }};
    config.listeners = bad_name;
    assert (!umb_bridge_new (&config, &reason));
    assert (strstr (reason, "name"));
    zstr_free (&reason);
    umb_bridge_route_t bad_addr [] = {{ "a", "http://x" }};
    config.listeners = bad_addr;
    assert (!umb_bridge_new (&config, &reason));
    zstr_free (&reason);
    umb_bridge_route_t twice [] = {{ "a", "tcp:127.0.0.1:0" }, { "a", "tcp:127.0.0.1:0" }};
    config.listeners = twice;
    config.listeners_count = 2;
    assert (!umb_bridge_new (&config, &reason));
    assert (strstr (reason, "twice"));
    zstr_free (&reason);
    config.listeners = good;
    config.listeners_count = 1;
    config.window = 10;
    assert (!umb_bridge_new (&config, &reason));
    zstr_free (&reason);
    config.window = 0;
    umb_bridge_t *bridge = umb_bridge_new (&config, &reason);
    assert (bridge && !reason);
    umb_bridge_destroy (&bridge);
    umb_bridge_destroy (&bridge);
    //  A virtio-serial port that is not there: the bridge waits for it
    umb_bridge_config_t virtio = { .link = "virtio-serial:org.umbra.test.none", .listeners = good,
                                   .listeners_count = 1 };
    bridge = umb_bridge_new (&virtio, &reason);
    assert (bridge);
    umb_bridge_poll (bridge, 0, -1);
    assert (!s_stats (bridge).link_up);
    umb_bridge_destroy (&bridge);
}

void
umb_bridge_test (bool verbose)
{
    printf (" * umb_bridge: ");
    s_test_config (verbose);
    s_test_actor (verbose);
    s_test_curve (verbose);
    s_test_backpressure (verbose);
    s_test_bulk (verbose);
    s_test_reconnect (verbose);
    s_test_malformed (verbose);
    s_test_garbage (verbose);
    s_test_keepalive (verbose);
    s_test_chardev (verbose);
    s_test_vsock (verbose);
    printf ("%sOK\n", verbose? "\n   ": "");
}
