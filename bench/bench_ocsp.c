//  bench_ocsp - an HTTP load generator for OCSP responders, and certificate
//  issuance through the REST gateway
//
//  Run it through bench/run (release build), or alone:
//
//      bench_ocsp load --target HOST:PORT --requests DIR [--name NAME] [--mode close|keepalive]
//                      [--connections 64] [--threads 2] [--seconds 10] [--warmup 1] [--path /ocsp]
//      UMBRA_CLIENT_TOKEN=... bench_ocsp issue --url URL --workspace WS --count N [--clients C]
//                      [--prefix NAME]
//
//  load: every *.der file in DIR is one OCSP request (DER, as made by
//  `openssl ocsp -reqout`); each connection POSTs them round-robin as
//  application/ocsp-request for the run's duration, keeping --connections
//  requests in flight from --threads threads (epoll, non-blocking sockets).
//  With --mode close each request opens its own connection and asks the
//  server to close it (latency includes the connect); with keepalive a
//  connection carries request after request, and is opened again only when
//  the server closes it (as `openssl ocsp` does after every answer). An
//  answer counts when it is HTTP 200 and an OCSPResponse whose responseStatus
//  is successful; anything else is an error. Requests answered during the
//  warm-up are not counted.
//
//  issue: C clients (threads, each with one keep-alive HTTP connection)
//  issue N certificates together with POST /workspaces/WS/certs (the
//  service makes each key), and the rate is measured over all of them.
//
//  Output: "NAME.MODE.key = value" lines (load) and "issue.clients_C.key =
//  value" lines (issue). Nothing is asserted on time: the exit code is 0
//  unless something failed to work (no answer at all, a refused issuance).
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <jansson.h>
#include "umb_http_client.h"

#define S_MAX_REQUESTS   100000
#define S_MAX_DER        65536
#define S_RESPONSE_MAX   65536      //  bytes of one HTTP answer we accept
#define S_MAX_CONNS      4096
#define S_MAX_THREADS    64

static int64_t
s_usecs (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  ---------------------------------------------------------------- load

//  One OCSP request as bytes on the wire.
typedef struct {
    char   *bytes;
    size_t  size;
} s_request_t;

typedef enum { S_IDLE, S_CONNECTING, S_SENDING, S_READING, S_DRAINING } s_state_t;

typedef struct {
    int                fd;
    s_state_t          state;
    const s_request_t *request;
    size_t             sent;
    char              *buffer;          //  S_RESPONSE_MAX
    size_t             received;
    bool               reused;          //  the request went on a connection that answered before
    uint32_t           events;          //  what epoll watches for; 0 when not added
    int64_t            started;         //  usecs
    size_t             next;            //  index of the next request
} s_conn_t;

typedef struct {
    //  Shared, read-only
    const s_request_t *requests;
    size_t             request_count;
    struct sockaddr_storage address;
    socklen_t          address_size;
    bool               keepalive;
    int64_t            warm_end;
    int64_t            end;
    //  This thread's
    size_t             first_conn;
    size_t             conn_count;
    s_conn_t          *conns;
    int                epoll;
    uint32_t          *latencies;       //  usecs of each counted answer
    size_t             latency_count;
    size_t             latency_capacity;
    uint64_t           errors;
    uint64_t           connects;
    char               first_error [160];
} s_worker_t;

static void
s_error (s_worker_t *self, const char *what, int error)
{
    if (self->warm_end <= s_usecs ())
        self->errors++;
    if (!*self->first_error)
        snprintf (self->first_error, sizeof (self->first_error), "%s%s%s", what, error ? ": " : "",
                  error ? strerror (error) : "");
}

static void
s_record (s_worker_t *self, int64_t now, int64_t started)
{
    if (now < self->warm_end || now >= self->end)
        return;
    if (self->latency_count == self->latency_capacity) {
        self->latency_capacity = self->latency_capacity ? self->latency_capacity * 2 : 65536;
        self->latencies = realloc (self->latencies, self->latency_capacity * sizeof (uint32_t));
        assert (self->latencies);
    }
    int64_t usecs = now - started;
    self->latencies [self->latency_count++] = usecs > UINT32_MAX ? UINT32_MAX : (uint32_t) usecs;
}

static void
s_close (s_worker_t *self, s_conn_t *conn)
{
    if (conn->fd >= 0)
        close (conn->fd);           //  which also takes it out of epoll
    conn->fd = -1;
    conn->events = 0;
    conn->state = S_IDLE;
}

//  Watches for events, with a system call only when they change: a request
//  on an open connection usually goes out and its answer comes in without one.
static void
s_watch (s_worker_t *self, s_conn_t *conn, uint32_t events)
{
    if (conn->events == events)
        return;
    struct epoll_event event = { .events = events, .data.ptr = conn };
    int rc = epoll_ctl (self->epoll, conn->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, conn->fd, &event);
    assert (rc == 0);
    conn->events = events;
}

static void s_send (s_worker_t *self, s_conn_t *conn);

//  Starts the next request: on the open connection, or on a new one.
static void
s_begin (s_worker_t *self, s_conn_t *conn, bool retry)
{
    if (!retry) {
        conn->request = &self->requests [conn->next];
        conn->next = (conn->next + 1) % self->request_count;
        conn->started = s_usecs ();
    }
    conn->sent = 0;
    conn->received = 0;
    if (conn->fd >= 0) {
        conn->reused = true;
        conn->state = S_SENDING;
        s_send (self, conn);
        return;
    }
    conn->reused = false;
    conn->fd = socket (self->address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert (conn->fd >= 0);
    int one = 1;
    setsockopt (conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
    self->connects++;
    conn->state = S_CONNECTING;
    if (connect (conn->fd, (struct sockaddr *) &self->address, self->address_size) == 0) {
        conn->state = S_SENDING;
        s_send (self, conn);
    }
    else
    if (errno == EINPROGRESS)
        s_watch (self, conn, EPOLLOUT);
    else {
        s_error (self, "connect", errno);
        close (conn->fd);
        conn->fd = -1;
        conn->state = S_IDLE;       //  tried again on the next turn
    }
}

static void
s_send (s_worker_t *self, s_conn_t *conn)
{
    while (conn->sent < conn->request->size) {
        ssize_t rc = send (conn->fd, conn->request->bytes + conn->sent,
                           conn->request->size - conn->sent, MSG_NOSIGNAL);
        if (rc < 0 && errno == EAGAIN) {
            s_watch (self, conn, EPOLLOUT);
            return;
        }
        if (rc <= 0) {
            int error = errno;
            bool reused = conn->reused;
            s_close (self, conn);
            if (reused)                 //  the server closed the idle connection: again, afresh
                s_begin (self, conn, true);
            else
                s_error (self, "send", error);
            return;
        }
        conn->sent += (size_t) rc;
    }
    conn->state = S_READING;
    s_watch (self, conn, EPOLLIN);
}

//  Looks at the answer so far: 0 incomplete, 1 complete and good, -1 bad.
//  *close set when the server will close the connection.
static int
s_parse (s_conn_t *conn, bool eof, bool *close_after)
{
    conn->buffer [conn->received] = 0;
    char *end = strstr (conn->buffer, "\r\n\r\n");
    if (!end)
        return eof ? -1 : 0;
    size_t head = (size_t) (end - conn->buffer) + 4;
    if (strncmp (conn->buffer, "HTTP/1.", 7))
        return -1;
    bool http10 = conn->buffer [7] == '0';
    int status = atoi (conn->buffer + 9);
    long length = -1;
    *close_after = http10;
    for (char *line = strstr (conn->buffer, "\r\n"); line && line < end; line = strstr (line + 2, "\r\n")) {
        char *name = line + 2;
        if (strncasecmp (name, "Content-Length:", 15) == 0)
            length = strtol (name + 15, NULL, 10);
        else
        if (strncasecmp (name, "Connection:", 11) == 0) {
            char *value = name + 11;
            while (*value == ' ')
                value++;
            if (strncasecmp (value, "close", 5) == 0)
                *close_after = true;
            else
            if (strncasecmp (value, "keep-alive", 10) == 0)
                *close_after = false;
        }
    }
    if (length < 0 && !eof)
        return 0;                   //  until the server closes
    size_t body = length < 0 ? conn->received - head : (size_t) length;
    if (conn->received < head + body)
        return eof ? -1 : 0;
    if (length < 0)
        *close_after = true;
    //  OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED (successful 0), ... }
    const unsigned char *der = (const unsigned char *) conn->buffer + head;
    size_t at = 2;
    if (body >= 2 && der [1] == 0x81)
        at = 3;
    else
    if (body >= 2 && der [1] == 0x82)
        at = 4;
    bool good = status == 200 && body >= at + 3 && der [0] == 0x30
             && der [at] == 0x0a && der [at + 1] == 0x01 && der [at + 2] == 0x00;
    return good ? 1 : -1;
}

static void
s_read (s_worker_t *self, s_conn_t *conn)
{
    while (true) {
        if (conn->received == S_RESPONSE_MAX) {
            s_error (self, "an answer over 64 KiB", 0);
            s_close (self, conn);
            return;
        }
        ssize_t rc = recv (conn->fd, conn->buffer + conn->received, S_RESPONSE_MAX - conn->received, 0);
        if (rc < 0 && errno == EAGAIN)
            return;
        if (conn->state == S_DRAINING) {
            //  The answer is in; waiting for the server to close first, so
            //  TIME_WAIT stays on its side and ports are not exhausted here
            if (rc <= 0)
                s_close (self, conn);
            else
                continue;
            return;
        }
        bool eof = rc <= 0;
        if (eof && conn->received == 0 && conn->reused) {
            //  Closed while idle, before answering: not an error; again, afresh
            s_close (self, conn);
            s_begin (self, conn, true);
            return;
        }
        if (!eof)
            conn->received += (size_t) rc;
        bool close_after = false;
        int verdict = s_parse (conn, eof, &close_after);
        if (verdict == 0 && !eof)
            continue;
        int64_t now = s_usecs ();
        if (verdict == 1)
            s_record (self, now, conn->started);
        else
            s_error (self, eof && rc < 0 ? "recv" : "a bad or unsuccessful answer", eof && rc < 0 ? errno : 0);
        if (verdict != 1 || eof) {
            s_close (self, conn);
            return;
        }
        if (!self->keepalive || close_after) {
            conn->state = S_DRAINING;
            continue;
        }
        if (now < self->end)
            s_begin (self, conn, false);
        return;
    }
}

static void *
s_worker_run (void *arg)
{
    s_worker_t *self = arg;
    self->epoll = epoll_create1 (EPOLL_CLOEXEC);
    assert (self->epoll >= 0);
    for (size_t i = 0; i < self->conn_count; i++) {
        s_conn_t *conn = &self->conns [i];
        conn->fd = -1;
        conn->next = (self->first_conn + i) % self->request_count;
        conn->buffer = malloc (S_RESPONSE_MAX + 1);
        assert (conn->buffer);
        s_begin (self, conn, false);
    }
    struct epoll_event events [256];
    while (true) {
        int64_t now = s_usecs ();
        if (now >= self->end)
            break;
        int count = epoll_wait (self->epoll, events, 256, 10);
        for (int i = 0; i < count; i++) {
            s_conn_t *conn = events [i].data.ptr;
            if (conn->state == S_CONNECTING) {
                int error = 0;
                socklen_t size = sizeof (error);
                getsockopt (conn->fd, SOL_SOCKET, SO_ERROR, &error, &size);
                if (error) {
                    s_error (self, "connect", error);
                    s_close (self, conn);
                    continue;
                }
                conn->state = S_SENDING;
            }
            if (conn->state == S_SENDING)
                s_send (self, conn);
            else
            if (conn->state == S_READING || conn->state == S_DRAINING)
                s_read (self, conn);
        }
        //  Connections that ended start the next request
        now = s_usecs ();
        for (size_t i = 0; i < self->conn_count && now < self->end; i++)
            if (self->conns [i].state == S_IDLE)
                s_begin (self, &self->conns [i], false);
    }
    for (size_t i = 0; i < self->conn_count; i++) {
        s_close (self, &self->conns [i]);
        free (self->conns [i].buffer);
    }
    close (self->epoll);
    return NULL;
}

static int
s_compare_u32 (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static int
s_compare_name (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

//  Reads every *.der in dir as an HTTP POST of path to host. Returns the count.
static size_t
s_load_requests (const char *dir, const char *host, const char *path, bool keepalive,
                 s_request_t **requests_p)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return 0;
    char **names = calloc (S_MAX_REQUESTS, sizeof (char *));
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir (handle)) && count < S_MAX_REQUESTS) {
        size_t length = strlen (entry->d_name);
        if (length > 4 && strcmp (entry->d_name + length - 4, ".der") == 0)
            names [count++] = strdup (entry->d_name);
    }
    closedir (handle);
    qsort (names, count, sizeof (char *), s_compare_name);
    s_request_t *requests = calloc (count ? count : 1, sizeof (s_request_t));
    size_t loaded = 0;
    for (size_t i = 0; i < count; i++) {
        char file_path [4096];
        snprintf (file_path, sizeof (file_path), "%s/%s", dir, names [i]);
        free (names [i]);
        FILE *file = fopen (file_path, "rb");
        if (!file)
            continue;
        unsigned char der [S_MAX_DER];
        size_t size = fread (der, 1, sizeof (der), file);
        fclose (file);
        if (size == 0 || size == sizeof (der))
            continue;
        char head [512];
        int head_size = snprintf (head, sizeof (head),
                                  "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/ocsp-request\r\n"
                                  "Content-Length: %zu\r\n%s\r\n", path, host, size,
                                  keepalive ? "" : "Connection: close\r\n");
        requests [loaded].bytes = malloc ((size_t) head_size + size);
        memcpy (requests [loaded].bytes, head, (size_t) head_size);
        memcpy (requests [loaded].bytes + head_size, der, size);
        requests [loaded].size = (size_t) head_size + size;
        loaded++;
    }
    free (names);
    *requests_p = requests;
    return loaded;
}

static int
s_load (int argc, char **argv)
{
    static const struct option options [] = {
        { "target", required_argument, NULL, 't' }, { "requests", required_argument, NULL, 'r' },
        { "name", required_argument, NULL, 'n' }, { "mode", required_argument, NULL, 'm' },
        { "connections", required_argument, NULL, 'c' }, { "threads", required_argument, NULL, 'T' },
        { "seconds", required_argument, NULL, 's' }, { "warmup", required_argument, NULL, 'w' },
        { "path", required_argument, NULL, 'p' }, { NULL, 0, NULL, 0 }
    };
    const char *target = NULL, *dir = NULL, *name = "target", *mode = "keepalive", *path = "/ocsp";
    long connections = 64, threads = 2;
    double seconds = 10, warmup = 1;
    int option;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (option) {
            case 't': target = optarg; break;
            case 'r': dir = optarg; break;
            case 'n': name = optarg; break;
            case 'm': mode = optarg; break;
            case 'c': connections = strtol (optarg, NULL, 10); break;
            case 'T': threads = strtol (optarg, NULL, 10); break;
            case 's': seconds = strtod (optarg, NULL); break;
            case 'w': warmup = strtod (optarg, NULL); break;
            case 'p': path = optarg; break;
            default: return 2;
        }
    }
    bool keepalive = strcmp (mode, "keepalive") == 0;
    if (!target || !dir || (!keepalive && strcmp (mode, "close")) || connections < 1
    ||  connections > S_MAX_CONNS || threads < 1 || threads > S_MAX_THREADS || seconds <= 0
    ||  warmup < 0) {
        fprintf (stderr, "bench_ocsp load: --target HOST:PORT and --requests DIR are needed; "
                 "--mode is close or keepalive; 1 <= connections <= %d; 1 <= threads <= %d\n",
                 S_MAX_CONNS, S_MAX_THREADS);
        return 2;
    }
    if (threads > connections)
        threads = connections;
    char host [256];
    snprintf (host, sizeof (host), "%s", target);
    char *colon = strrchr (host, ':');
    if (!colon) {
        fprintf (stderr, "bench_ocsp load: --target is HOST:PORT\n");
        return 2;
    }
    *colon = 0;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *address = NULL;
    if (getaddrinfo (host, colon + 1, &hints, &address)) {
        fprintf (stderr, "bench_ocsp load: cannot resolve %s\n", target);
        return 1;
    }
    s_request_t *requests = NULL;
    size_t count = s_load_requests (dir, target, path, keepalive, &requests);
    if (count == 0) {
        fprintf (stderr, "bench_ocsp load: no .der requests in %s\n", dir);
        freeaddrinfo (address);
        return 1;
    }

    s_worker_t workers [S_MAX_THREADS];
    pthread_t ids [S_MAX_THREADS];
    int64_t start = s_usecs ();
    size_t first = 0;
    for (long t = 0; t < threads; t++) {
        s_worker_t *worker = &workers [t];
        memset (worker, 0, sizeof (*worker));
        worker->requests = requests;
        worker->request_count = count;
        memcpy (&worker->address, address->ai_addr, address->ai_addrlen);
        worker->address_size = address->ai_addrlen;
        worker->keepalive = keepalive;
        worker->warm_end = start + (int64_t) (warmup * 1e6);
        worker->end = worker->warm_end + (int64_t) (seconds * 1e6);
        worker->first_conn = first;
        worker->conn_count = (size_t) (connections / threads + (t < connections % threads));
        worker->conns = calloc (worker->conn_count, sizeof (s_conn_t));
        first += worker->conn_count;
        int rc = pthread_create (&ids [t], NULL, s_worker_run, worker);
        assert (rc == 0);
    }
    size_t total = 0;
    uint64_t errors = 0, connects = 0;
    const char *first_error = NULL;
    for (long t = 0; t < threads; t++) {
        pthread_join (ids [t], NULL);
        total += workers [t].latency_count;
        errors += workers [t].errors;
        connects += workers [t].connects;
        if (!first_error && *workers [t].first_error)
            first_error = workers [t].first_error;
    }
    uint32_t *all = malloc ((total ? total : 1) * sizeof (uint32_t));
    size_t at = 0;
    for (long t = 0; t < threads; t++) {
        memcpy (all + at, workers [t].latencies, workers [t].latency_count * sizeof (uint32_t));
        at += workers [t].latency_count;
    }
    qsort (all, total, sizeof (uint32_t), s_compare_u32);
    double p50 = total ? all [(size_t) ((double) total * 0.50)] / 1000.0 : 0;
    double p99 = total ? all [(size_t) ((double) total * 0.99)] / 1000.0 : 0;
    double max = total ? all [total - 1] / 1000.0 : 0;
    printf ("%s.%s.requests_per_s = %.0f\n", name, mode, (double) total / seconds);
    printf ("%s.%s.p50_ms = %.3f\n", name, mode, p50);
    printf ("%s.%s.p99_ms = %.3f\n", name, mode, p99);
    printf ("%s.%s.max_ms = %.3f\n", name, mode, max);
    printf ("%s.%s.answers = %zu\n", name, mode, total);
    printf ("%s.%s.errors = %llu\n", name, mode, (unsigned long long) errors);
    printf ("%s.%s.connections_opened = %llu\n", name, mode, (unsigned long long) connects);
    if (first_error)
        printf ("# %s %s: first error: %s\n", name, mode, first_error);
    fflush (stdout);
    for (long t = 0; t < threads; t++) {
        free (workers [t].latencies);
        free (workers [t].conns);
    }
    for (size_t i = 0; i < count; i++)
        free (requests [i].bytes);
    free (requests);
    free (all);
    freeaddrinfo (address);
    return total ? 0 : 1;
}

//  ---------------------------------------------------------------- issue

typedef struct {
    const char  *url;
    const char  *token;
    const char  *path;
    const char  *prefix;
    int          count;
    atomic_int   next;
    atomic_int   issued;
    atomic_int   failed;
    char         failure [512];
    pthread_mutex_t mutex;
} s_issue_t;

static void *
s_issuer_run (void *arg)
{
    s_issue_t *self = arg;
    umb_http_client_t *client = umb_http_client_new (self->url, self->token);
    assert (client);
    for (int index = atomic_fetch_add (&self->next, 1); index < self->count;
         index = atomic_fetch_add (&self->next, 1)) {
        char body [256];
        snprintf (body, sizeof (body), "{\"common_name\":\"%s-%d.bench\",\"sans\":[\"%s-%d.bench\"]}",
                  self->prefix, index, self->prefix, index);
        umb_http_response_t response;
        char reason [512] = "";
        if (umb_http_client_post (client, self->path, body, &response))
            snprintf (reason, sizeof (reason), "%s", umb_http_client_error (client));
        else
        if (response.status != 201)
            umb_http_response_describe (&response, reason, sizeof (reason));
        umb_http_response_clear (&response);        //  wipes the private key
        if (*reason) {
            atomic_fetch_add (&self->failed, 1);
            pthread_mutex_lock (&self->mutex);
            if (!*self->failure)
                snprintf (self->failure, sizeof (self->failure), "%s", reason);
            pthread_mutex_unlock (&self->mutex);
        }
        else
            atomic_fetch_add (&self->issued, 1);
    }
    umb_http_client_destroy (&client);
    return NULL;
}

static int
s_issue (int argc, char **argv)
{
    static const struct option options [] = {
        { "url", required_argument, NULL, 'u' }, { "workspace", required_argument, NULL, 'w' },
        { "count", required_argument, NULL, 'n' }, { "clients", required_argument, NULL, 'c' },
        { "prefix", required_argument, NULL, 'p' }, { NULL, 0, NULL, 0 }
    };
    const char *url = "http://127.0.0.1:8080", *workspace = NULL, *prefix = "cert";
    long count = 100, clients = 1;
    int option;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (option) {
            case 'u': url = optarg; break;
            case 'w': workspace = optarg; break;
            case 'n': count = strtol (optarg, NULL, 10); break;
            case 'c': clients = strtol (optarg, NULL, 10); break;
            case 'p': prefix = optarg; break;
            default: return 2;
        }
    }
    const char *token = getenv ("UMBRA_CLIENT_TOKEN");
    if (!workspace || !token || !*token || count < 1 || clients < 1 || clients > S_MAX_THREADS) {
        fprintf (stderr, "bench_ocsp issue: --workspace WS and UMBRA_CLIENT_TOKEN are needed; "
                 "1 <= clients <= %d\n", S_MAX_THREADS);
        return 2;
    }
    char *escaped = umb_http_client_escape (workspace);
    char path [512];
    snprintf (path, sizeof (path), "/workspaces/%s/certs", escaped);
    free (escaped);
    s_issue_t self = { .url = url, .token = token, .path = path, .prefix = prefix, .count = (int) count };
    pthread_mutex_init (&self.mutex, NULL);
    pthread_t ids [S_MAX_THREADS];
    int64_t start = s_usecs ();
    for (long c = 0; c < clients; c++)
        assert (pthread_create (&ids [c], NULL, s_issuer_run, &self) == 0);
    for (long c = 0; c < clients; c++)
        pthread_join (ids [c], NULL);
    double seconds = (double) (s_usecs () - start) / 1e6;
    pthread_mutex_destroy (&self.mutex);
    printf ("issue.clients_%ld.per_s = %.1f\n", clients, atomic_load (&self.issued) / seconds);
    printf ("issue.clients_%ld.issued = %d\n", clients, atomic_load (&self.issued));
    printf ("issue.clients_%ld.failed = %d\n", clients, atomic_load (&self.failed));
    if (*self.failure)
        printf ("# issue: first failure: %s\n", self.failure);
    return atomic_load (&self.failed) ? 1 : 0;
}

int
main (int argc, char **argv)
{
    if (argc >= 2 && strcmp (argv [1], "load") == 0)
        return s_load (argc - 1, argv + 1);
    if (argc >= 2 && strcmp (argv [1], "issue") == 0)
        return s_issue (argc - 1, argv + 1);
    fprintf (stderr, "usage: bench_ocsp load|issue OPTIONS (see the top of bench/bench_ocsp.c)\n");
    return 2;
}
