//  umb_certs_http - the OCSP responder, CRL and CA chain over HTTP (libmicrohttpd)
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <sodium.h>
#include <czmq.h>
#include "umb_certs_http.h"
#include "umb_address.h"
#include "umb_percent.h"
#include "umb_certs_private.h"

#define S_OCSP_REQUEST   "application/ocsp-request"
#define S_OCSP_RESPONSE  "application/ocsp-response"
#define S_CRL_DER        "application/pkix-crl"
#define S_PEM            "application/x-pem-file"
#define S_TEXT           "text/plain; charset=utf-8"
#define S_IDLE_TIMEOUT_S 30

//  One issuing CA's CRL.
typedef struct {
    char        issuer [41];        //  the issuing CA's serial
    bool        first;              //  the first issuing CA's: also at /crl
    uint8_t    *der;
    size_t      size;
    char       *pem;
} s_crl_t;

//  What the actor hands over; guarded by the mutex.
typedef struct {
    umb_ocsp_t *ocsp;               //  NULL until ready
    char       *chain;
    s_crl_t     crls [UMB_CA_ISSUERS_MAX];
    size_t      crl_count;
} s_shared_t;

struct _umb_certs_http_t {
    struct MHD_Daemon *daemon;
    uint16_t           port;
    umb_metrics_t     *metrics;     //  borrowed
    umb_log_t         *log;
    pthread_mutex_t    mutex;
    s_shared_t         shared;
    //  OCSP counters already turned into metrics (under stats_mutex)
    pthread_mutex_t    stats_mutex;
    uint64_t           counted [5];
};

typedef enum {
    S_ROUTE_NONE = 0,
    S_ROUTE_OCSP_POST,
    S_ROUTE_OCSP_GET,
    S_ROUTE_CRL,
    S_ROUTE_CRL_PEM,
    S_ROUTE_CA
} s_route_t;

//  One request, from its headers to its answer.
typedef struct {
    s_route_t   route;
    const char *label;              //  route label for metrics
    const char *method;             //  method label
    int         status;             //  answered with; 0 before
    int64_t     started;
    uint8_t    *body;
    size_t      body_size;
    bool        too_large;
    char        issuer [41];        //  /crl/{issuer}: which; "" for /crl
} s_request_t;

//  ---------------------------------------------------------------- OCSP GET paths

uint8_t *
umb_certs_http_ocsp_path_decode (const char *path, size_t *size)
{
    assert (path && size);
    *size = 0;
    size_t length = strlen (path);
    if (length == 0 || length > UMB_CERTS_HTTP_MAX_BODY * 2)
        return NULL;
    //  Percent-escapes first, and one alphabet: '-' and '_' are the URL-safe
    //  spellings of '+' and '/'
    char *text = malloc (length + 1);
    assert (text);
    int decoded = umb_percent_unescape (text, path, length, false);
    if (decoded < 0) {
        free (text);
        return NULL;
    }
    size_t used = (size_t) decoded;
    for (size_t index = 0; index < used; index++)
        text [index] = text [index] == '-' ? '+' : text [index] == '_' ? '/' : text [index];
    //  Padding only at the end, at most two ('=' elsewhere fails to decode)
    for (int pad = 0; pad < 2 && used > 0 && text [used - 1] == '='; pad++)
        used--;
    text [used] = 0;
    size_t capacity = used / 4 * 3 + 3;
    uint8_t *der = malloc (capacity);
    assert (der);
    const char *end = NULL;
    if (used == 0
    ||  sodium_base642bin (der, capacity, text, used, NULL, size, &end,
                           sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0
    ||  end != text + used) {
        free (der);
        der = NULL;
        *size = 0;
    }
    free (text);
    return der;
}

//  ---------------------------------------------------------------- metrics

static const char *
s_ocsp_response_status (const uint8_t *der, size_t size)
{
    //  OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, ... }
    static const char *const names [] = {
        "successful", "malformedRequest", "internalError", "tryLater", "4", "sigRequired",
        "unauthorized"
    };
    if (size < 5 || der [0] != 0x30)
        return "invalid";
    size_t at = 2;
    if (der [1] & 0x80)
        at += der [1] & 0x7f;
    if (at + 3 > size || der [at] != 0x0a || der [at + 1] != 0x01 || der [at + 2] > 6)
        return "invalid";
    return names [der [at + 2]];
}

//  Turns the responder's counters into metrics: adds what grew since last time.
static void
s_count_ocsp (umb_certs_http_t *self, umb_ocsp_t *ocsp)
{
    static const char *const labels [] = {
        "status=\"good\"", "status=\"revoked\"", "status=\"unknown\"", "status=\"malformed\"", NULL
    };
    uint64_t now [5];
    umb_ocsp_stats (ocsp, &now [0], &now [1], &now [2], &now [3], &now [4]);
    pthread_mutex_lock (&self->stats_mutex);
    for (int index = 0; index < 4; index++)
        if (now [index] > self->counted [index])
            umb_metrics_count (self->metrics, "umbra_ocsp_responses_total",
                               "OCSP single responses by certificate status (malformed: requests "
                               "answered malformedRequest)", labels [index],
                               now [index] - self->counted [index]);
    if (now [4] > self->counted [4])
        umb_metrics_count (self->metrics, "umbra_ocsp_cache_hits_total",
                           "OCSP responses served from the signed-response cache", NULL,
                           now [4] - self->counted [4]);
    for (int index = 0; index < 5; index++)
        if (now [index] > self->counted [index])
            self->counted [index] = now [index];
    pthread_mutex_unlock (&self->stats_mutex);
}

//  ---------------------------------------------------------------- answers

static enum MHD_Result
s_respond (s_request_t *req, struct MHD_Connection *conn, int status, const char *content_type,
           const void *body, size_t size, const char *cache_control, const char *allow)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer (size, (void *) body, MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL,
                             cache_control ? cache_control : "no-store");
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
    if (allow)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result rc = MHD_queue_response (conn, (unsigned) status, response);
    MHD_destroy_response (response);
    if (rc == MHD_YES)
        req->status = status;
    return rc;
}

static enum MHD_Result
s_respond_text (s_request_t *req, struct MHD_Connection *conn, int status, const char *text,
                const char *allow)
{
    char line [256];
    snprintf (line, sizeof line, "%s\n", text);
    return s_respond (req, conn, status, S_TEXT, line, strlen (line), NULL, allow);
}

static enum MHD_Result
s_answer_ocsp (umb_certs_http_t *self, s_request_t *req, struct MHD_Connection *conn,
               umb_ocsp_t *ocsp, const uint8_t *der, size_t size)
{
    size_t response_size = 0;
    //  A NULL request (undecodable GET path) is as malformed as garbage bytes
    static const uint8_t nothing [1] = { 0 };
    uint8_t *response = umb_ocsp_respond (ocsp, der ? der : nothing, der ? size : 0, &response_size);
    if (!response)
        return s_respond_text (req, conn, 500, "cannot answer", NULL);
    char labels [64];
    snprintf (labels, sizeof labels, "response_status=\"%s\"",
              s_ocsp_response_status (response, response_size));
    umb_metrics_count (self->metrics, "umbra_ocsp_http_responses_total",
                       "OCSP responses sent over HTTP, by OCSP responseStatus", labels, 1);
    s_count_ocsp (self, ocsp);
    enum MHD_Result rc = s_respond (req, conn, 200, S_OCSP_RESPONSE, response, response_size,
                                    "max-age=0, no-cache", NULL);
    free (response);
    return rc;
}

//  Under the mutex: the CRL a request names, or NULL.
static const s_crl_t *
s_crl_find (umb_certs_http_t *self, const char *issuer)
{
    for (size_t i = 0; i < self->shared.crl_count; i++) {
        const s_crl_t *crl = &self->shared.crls [i];
        if (*issuer ? streq (crl->issuer, issuer) : crl->first)
            return crl;
    }
    return NULL;
}

static enum MHD_Result
s_handle (umb_certs_http_t *self, s_request_t *req, struct MHD_Connection *conn, const char *url)
{
    //  What the actor handed over, copied out under the lock
    pthread_mutex_lock (&self->mutex);
    umb_ocsp_t *ocsp = self->shared.ocsp;
    char *copy = NULL;
    size_t copy_size = 0;
    if (ocsp && req->route == S_ROUTE_CA && self->shared.chain) {
        copy = strdup (self->shared.chain);
        copy_size = copy ? strlen (copy) : 0;
    }
    const s_crl_t *crl = ocsp && (req->route == S_ROUTE_CRL || req->route == S_ROUTE_CRL_PEM)
                       ? s_crl_find (self, req->issuer) : NULL;
    bool unknown = ocsp && *req->issuer && !crl;
    if (crl && req->route == S_ROUTE_CRL_PEM) {
        copy = strdup (crl->pem);
        copy_size = copy ? strlen (copy) : 0;
    }
    else
    if (crl) {
        copy = malloc (crl->size);
        if (copy) {
            memcpy (copy, crl->der, crl->size);
            copy_size = crl->size;
        }
    }
    pthread_mutex_unlock (&self->mutex);

    enum MHD_Result rc;
    if (!ocsp)
        rc = s_respond_text (req, conn, 503, "starting", NULL);
    else
    if (req->route == S_ROUTE_OCSP_POST)
        rc = s_answer_ocsp (self, req, conn, ocsp, req->body, req->body_size);
    else
    if (req->route == S_ROUTE_OCSP_GET) {
        size_t size = 0;
        uint8_t *der = umb_certs_http_ocsp_path_decode (url + strlen ("/ocsp/"), &size);
        rc = s_answer_ocsp (self, req, conn, ocsp, der, size);
        free (der);
    }
    else
    if (unknown)
        rc = s_respond_text (req, conn, 404, "no such issuing CA", NULL);
    else
    if (!copy)
        rc = s_respond_text (req, conn, 503, "not available yet", NULL);
    else
        rc = s_respond (req, conn, 200,
                        req->route == S_ROUTE_CRL ? S_CRL_DER : S_PEM, copy, copy_size,
                        "max-age=60", NULL);
    free (copy);
    return rc;
}

//  ---------------------------------------------------------------- MHD callbacks

static void
s_route (s_request_t *req, const char *method, const char *url, const char **allow)
{
    *allow = NULL;
    bool get = streq (method, "GET") || streq (method, "HEAD");
    bool post = streq (method, "POST");
    req->method = get ? (streq (method, "GET") ? "GET" : "HEAD") : post ? "POST" : "other";
    req->label = "(unmatched)";
    if (streq (url, "/ocsp")) {
        req->label = "/ocsp";
        *allow = "POST";
        req->route = post ? S_ROUTE_OCSP_POST : S_ROUTE_NONE;
    }
    else
    if (strncmp (url, "/ocsp/", 6) == 0) {
        req->label = "/ocsp/{request}";
        *allow = "GET, HEAD";
        req->route = get ? S_ROUTE_OCSP_GET : S_ROUTE_NONE;
    }
    else
    if (streq (url, "/crl") || streq (url, "/crl.pem") || streq (url, "/ca.pem")) {
        req->label = streq (url, "/crl") ? "/crl" : streq (url, "/crl.pem") ? "/crl.pem" : "/ca.pem";
        *allow = "GET, HEAD";
        req->route = !get ? S_ROUTE_NONE
                   : streq (url, "/crl") ? S_ROUTE_CRL
                   : streq (url, "/crl.pem") ? S_ROUTE_CRL_PEM : S_ROUTE_CA;
    }
    else
    if (strncmp (url, "/crl/", 5) == 0) {
        //  An issuing CA's serial: 1..40 lowercase hex digits, then .pem or not
        const char *id = url + 5;
        size_t length = strspn (id, "0123456789abcdef");
        bool pem = streq (id + length, ".pem");
        if (length == 0 || length > 40 || (id [length] && !pem))
            return;
        snprintf (req->issuer, sizeof req->issuer, "%.*s", (int) length, id);
        req->label = pem ? "/crl/{issuer}.pem" : "/crl/{issuer}";
        *allow = "GET, HEAD";
        req->route = !get ? S_ROUTE_NONE : pem ? S_ROUTE_CRL_PEM : S_ROUTE_CRL;
    }
}


static bool
s_is_ocsp_request_type (const char *value)
{
    if (!value)
        return false;
    size_t length = strlen (S_OCSP_REQUEST);
    return strncasecmp (value, S_OCSP_REQUEST, length) == 0
        && (value [length] == 0 || value [length] == ';' || value [length] == ' ');
}

//  Everything decided from the request line and headers, before any body.
static enum MHD_Result
s_on_headers (umb_certs_http_t *self, s_request_t *req, struct MHD_Connection *conn,
              const char *method, const char *url)
{
    const char *allow = NULL;
    s_route (req, method, url, &allow);
    if (req->route == S_ROUTE_NONE && !allow)
        return s_respond_text (req, conn, 404, "no such path", NULL);
    if (req->route == S_ROUTE_NONE)
        return s_respond_text (req, conn, 405, "method not allowed", allow);
    const char *length = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long declared = length ? strtoull (length, NULL, 10) : 0;
    if (req->route == S_ROUTE_OCSP_POST) {
        if (declared > UMB_CERTS_HTTP_MAX_BODY)
            return s_respond_text (req, conn, 413, "an OCSP request is at most 64 KiB", NULL);
        if (!s_is_ocsp_request_type (MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                                  MHD_HTTP_HEADER_CONTENT_TYPE)))
            return s_respond_text (req, conn, 415, "send the request as " S_OCSP_REQUEST, NULL);
        size_t expected = declared > 0 ? (size_t) declared : 4096;
        req->body = malloc (expected);
        if (!req->body)
            return MHD_NO;
    }
    return MHD_YES;
}

static void
s_on_body_data (s_request_t *req, const char *data, size_t size)
{
    if (req->too_large || !req->body)
        return;
    if (size > UMB_CERTS_HTTP_MAX_BODY - req->body_size) {
        req->too_large = true;
        return;
    }
    //  Grown to what arrives; the cap above bounds it
    uint8_t *grown = realloc (req->body, req->body_size + size);
    if (!grown) {
        req->too_large = true;
        return;
    }
    req->body = grown;
    memcpy (req->body + req->body_size, data, size);
    req->body_size += size;
}

static enum MHD_Result
s_on_request (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
              const char *version, const char *upload_data, size_t *upload_data_size,
              void **con_cls)
{
    umb_certs_http_t *self = cls;
    s_request_t *req = *con_cls;
    if (!req) {
        req = calloc (1, sizeof (s_request_t));
        if (!req)
            return MHD_NO;
        req->started = zclock_usecs ();
        *con_cls = req;
        return s_on_headers (self, req, conn, method, url);
    }
    if (*upload_data_size > 0) {
        if (!req->status)
            s_on_body_data (req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->status)
        return MHD_YES;
    if (req->too_large)
        return s_respond_text (req, conn, 413, "an OCSP request is at most 64 KiB", NULL);
    return s_handle (self, req, conn, url);
}

static void
s_on_completed (void *cls, struct MHD_Connection *conn, void **con_cls,
                enum MHD_RequestTerminationCode code)
{
    umb_certs_http_t *self = cls;
    s_request_t *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    if (req->status) {
        char labels [160];
        snprintf (labels, sizeof labels, "route=\"%s\",method=\"%s\",status=\"%d\"", req->label,
                  req->method, req->status);
        umb_metrics_count (self->metrics, "umbra_certs_http_requests_total",
                           "HTTP requests answered by the OCSP/CRL server, by route, method and "
                           "status", labels, 1);
        snprintf (labels, sizeof labels, "route=\"%s\"", req->label);
        umb_metrics_observe (self->metrics, "umbra_certs_http_request_seconds",
                             "Time from an OCSP/CRL HTTP request's headers to its answer", labels,
                             (double) (zclock_usecs () - req->started) / 1e6);
    }
    umb_log_debug (self->log, "%s %s %d", req->method ? req->method : "-", req->label ? req->label : "-",
                   req->status);
    free (req->body);
    free (req);
}

static size_t
s_unescape_nothing (void *cls, struct MHD_Connection *conn, char *text)
{
    //  /ocsp/ paths are decoded by us: base64's '+' must not become anything else
    return strlen (text);
}

//  ---------------------------------------------------------------- lifecycle

umb_certs_http_t *
umb_certs_http_new (const char *listen, size_t threads, umb_metrics_t *metrics, umb_log_t *log,
                    char **reason)
{
    assert (listen && metrics && reason);
    *reason = NULL;
    struct addrinfo *address = umb_address_resolve (listen, "certs.http_listen", reason);
    if (!address)
        return NULL;
    const char *colon = strrchr (listen, ':');
    umb_certs_http_t *self = calloc (1, sizeof (umb_certs_http_t));
    assert (self);
    self->metrics = metrics;
    self->log = log;
    pthread_mutex_init (&self->mutex, NULL);
    pthread_mutex_init (&self->stats_mutex, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC;
    if (address->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    self->daemon = MHD_start_daemon (
        flags, 0, NULL, NULL, s_on_request, self,
        MHD_OPTION_SOCK_ADDR, address->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned) (threads > 1 ? threads : 0),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned) 1024,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) S_IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, s_on_completed, self,
        MHD_OPTION_UNESCAPE_CALLBACK, s_unescape_nothing, NULL,
        MHD_OPTION_END);
    int error = errno;
    freeaddrinfo (address);
    if (!self->daemon) {
        *reason = zsys_sprintf ("cannot listen on %s: %s", listen,
                                error ? strerror (error) : "libmicrohttpd refused");
        umb_certs_http_destroy (&self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : 0;
    umb_log_info (log, "OCSP and CRL on http://%.*s:%u (%zu thread%s)", (int) (colon - listen),
                  listen, self->port, threads, threads == 1 ? "" : "s");
    return self;
}

void
umb_certs_http_destroy (umb_certs_http_t **self_p)
{
    assert (self_p);
    umb_certs_http_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon) {
        //  OCSP and CRL answers take microseconds, so there is nothing to drain;
        //  and MHD 0.9.75 can abort when quiescing a thread pool on epoll
        //  ("Failed to remove listen FD from epoll set"), seen in this selftest
        MHD_stop_daemon (self->daemon);
    }
    free (self->shared.chain);
    for (size_t i = 0; i < self->shared.crl_count; i++) {
        free (self->shared.crls [i].der);
        free (self->shared.crls [i].pem);
    }
    pthread_mutex_destroy (&self->mutex);
    pthread_mutex_destroy (&self->stats_mutex);
    free (self);
    *self_p = NULL;
}

uint16_t
umb_certs_http_port (umb_certs_http_t *self)
{
    assert (self);
    return self->port;
}

void
umb_certs_http_ready (umb_certs_http_t *self, umb_ocsp_t *ocsp, const char *chain_pem)
{
    assert (self && ocsp && chain_pem);
    char *chain = strdup (chain_pem);
    assert (chain);
    pthread_mutex_lock (&self->mutex);
    free (self->shared.chain);
    self->shared.chain = chain;
    self->shared.ocsp = ocsp;
    pthread_mutex_unlock (&self->mutex);
}

void
umb_certs_http_set_chain (umb_certs_http_t *self, const char *chain_pem)
{
    assert (self && chain_pem);
    char *chain = strdup (chain_pem);
    assert (chain);
    pthread_mutex_lock (&self->mutex);
    free (self->shared.chain);
    self->shared.chain = chain;
    pthread_mutex_unlock (&self->mutex);
}

void
umb_certs_http_set_crl (umb_certs_http_t *self, const char *issuer, bool first, const uint8_t *der,
                        size_t size, const char *pem)
{
    assert (self && issuer && *issuer && der && size && pem);
    uint8_t *der_copy = malloc (size);
    char *pem_copy = strdup (pem);
    assert (der_copy && pem_copy);
    memcpy (der_copy, der, size);
    pthread_mutex_lock (&self->mutex);
    s_crl_t *crl = (s_crl_t *) s_crl_find (self, issuer);
    if (!crl) {
        assert (self->shared.crl_count < UMB_CA_ISSUERS_MAX);
        crl = &self->shared.crls [self->shared.crl_count++];
        snprintf (crl->issuer, sizeof crl->issuer, "%s", issuer);
    }
    crl->first = first;
    free (crl->der);
    free (crl->pem);
    crl->der = der_copy;
    crl->size = size;
    crl->pem = pem_copy;
    pthread_mutex_unlock (&self->mutex);
}

//  ---------------------------------------------------------------- test client

void
umb_certs_http_response_destroy (umb_certs_http_response_t **self_p)
{
    umb_certs_http_response_t *self = *self_p;
    if (self) {
        free (self->head);
        free (self->body);
        free (self);
        *self_p = NULL;
    }
}

const char *
umb_certs_http_response_header (umb_certs_http_response_t *self, const char *name, char *value,
                                size_t size)
{
    *value = 0;
    size_t length = strlen (name);
    for (const char *line = strstr (self->head, "\r\n"); line; line = strstr (line + 2, "\r\n")) {
        const char *start = line + 2;
        if (strncasecmp (start, name, length) == 0 && start [length] == ':') {
            const char *text = start + length + 1;
            while (*text == ' ')
                text++;
            const char *end = strstr (text, "\r\n");
            snprintf (value, size, "%.*s", (int) (end ? end - text : (long) strlen (text)), text);
            return value;
        }
    }
    return NULL;
}

umb_certs_http_response_t *
umb_certs_http_fetch (uint16_t port, const char *method, const char *path, const char *content_type,
                      const void *body, size_t size)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct timeval timeout = { 20, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons (port) };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int rc = connect (fd, (struct sockaddr *) &address, sizeof address);
    assert (rc == 0);
    char *head = zsys_sprintf ("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n"
                               "%s%s%s" "Content-Length: %zu\r\n\r\n", method, path, port,
                               content_type ? "Content-Type: " : "", content_type ? content_type : "",
                               content_type ? "\r\n" : "", size);
    assert (head);
    ssize_t sent = send (fd, head, strlen (head), MSG_NOSIGNAL);
    assert (sent == (ssize_t) strlen (head));
    zstr_free (&head);
    //  A server may answer (413) before reading the whole body: stop sending then
    for (size_t done = 0; done < size; ) {
        sent = send (fd, (const char *) body + done, size - done, MSG_NOSIGNAL);
        if (sent <= 0)
            break;
        done += (size_t) sent;
    }
    shutdown (fd, SHUT_WR);
    size_t capacity = 65536, used = 0;
    char *data = malloc (capacity + 1);
    assert (data);
    while (true) {
        if (used == capacity) {
            capacity *= 2;
            data = realloc (data, capacity + 1);
            assert (data);
        }
        ssize_t got = recv (fd, data + used, capacity - used, 0);
        if (got <= 0)
            break;
        used += (size_t) got;
    }
    close (fd);
    data [used] = 0;
    char *split = strstr (data, "\r\n\r\n");
    assert (split);
    umb_certs_http_response_t *response = calloc (1, sizeof (umb_certs_http_response_t));
    assert (response);
    response->head = strndup (data, (size_t) (split - data));
    assert (sscanf (data, "HTTP/1.1 %d", &response->status) == 1);
    const char *payload = split + 4;
    response->body_size = used - (size_t) (payload - data);
    response->body = malloc (response->body_size + 1);
    assert (response->body);
    memcpy (response->body, payload, response->body_size);
    response->body [response->body_size] = 0;
    free (data);
    return response;
}

//  ---------------------------------------------------------------- selftest

static void
s_test_decode (const char *path, const uint8_t *expected, size_t expected_size)
{
    size_t size = 0;
    uint8_t *der = umb_certs_http_ocsp_path_decode (path, &size);
    if (!expected)
        assert (der == NULL && size == 0);
    else {
        assert (der && size == expected_size && memcmp (der, expected, size) == 0);
        free (der);
    }
}

void
umb_certs_http_test (bool verbose)
{
    if (verbose)
        printf (" * umb_certs_http: ");
    //  0xfb 0xff 0xbf: "+/+/" in the standard alphabet, "-_-_" URL-safe
    static const uint8_t bytes [] = { 0xfb, 0xff, 0xbf };
    static const uint8_t four [] = { 0xfb, 0xff, 0xbf, 0x01 };
    s_test_decode ("+/+/", bytes, 3);
    s_test_decode ("-_-_", bytes, 3);
    s_test_decode ("%2B%2F%2b%2f", bytes, 3);
    s_test_decode ("+/+/AQ", four, 4);
    s_test_decode ("+/+/AQ==", four, 4);
    s_test_decode ("+/+/AQ%3D%3D", four, 4);
    s_test_decode ("", NULL, 0);
    s_test_decode ("+/+/A", NULL, 0);           //  not a whole byte
    s_test_decode ("+/=+/", NULL, 0);           //  padding in the middle
    s_test_decode ("+/+/AQ===", NULL, 0);
    s_test_decode ("%2", NULL, 0);
    s_test_decode ("%zz+/+/", NULL, 0);
    s_test_decode ("+/ +/", NULL, 0);
    s_test_decode ("====", NULL, 0);

    umb_metrics_t *metrics = umb_metrics_new ("certs");
    char *reason = NULL;
    umb_certs_http_t *http = umb_certs_http_new ("127.0.0.1:0", 2, metrics, NULL, &reason);
    assert (http && !reason);
    uint16_t port = umb_certs_http_port (http);
    assert (port > 0);
    //  Taken ports and bad addresses are refused with a reason
    char *taken = zsys_sprintf ("127.0.0.1:%u", port);
    assert (umb_certs_http_new (taken, 1, metrics, NULL, &reason) == NULL && reason);
    zstr_free (&reason);
    zstr_free (&taken);
    assert (umb_certs_http_new ("no-port", 1, metrics, NULL, &reason) == NULL && reason);
    zstr_free (&reason);

    //  Before the actor hands over the responder: 503, but paths are known
    umb_certs_http_response_t *response = umb_certs_http_fetch (port, "GET", "/crl", NULL, NULL, 0);
    assert (response->status == 503);
    umb_certs_http_response_destroy (&response);
    response = umb_certs_http_fetch (port, "GET", "/nowhere", NULL, NULL, 0);
    assert (response->status == 404);
    umb_certs_http_response_destroy (&response);
    response = umb_certs_http_fetch (port, "DELETE", "/crl", NULL, NULL, 0);
    char value [64];
    assert (response->status == 405);
    assert (umb_certs_http_response_header (response, "Allow", value, sizeof value)
            && streq (value, "GET, HEAD"));
    umb_certs_http_response_destroy (&response);
    response = umb_certs_http_fetch (port, "GET", "/ocsp", NULL, NULL, 0);
    assert (response->status == 405);
    umb_certs_http_response_destroy (&response);
    //  Wrong type and too large are refused from the headers
    response = umb_certs_http_fetch (port, "POST", "/ocsp", "text/plain", "x", 1);
    assert (response->status == 415);
    umb_certs_http_response_destroy (&response);
    size_t big_size = UMB_CERTS_HTTP_MAX_BODY + 1;
    char *big = calloc (1, big_size);
    response = umb_certs_http_fetch (port, "POST", "/ocsp", S_OCSP_REQUEST, big, big_size);
    assert (response->status == 413);
    umb_certs_http_response_destroy (&response);
    free (big);

    umb_certs_http_destroy (&http);
    umb_certs_http_destroy (&http);
    char *text = umb_metrics_render (metrics, NULL, 0);
    assert (strstr (text, "umbra_certs_http_requests_total{service=\"certs\",route=\"/crl\","
                          "method=\"GET\",status=\"503\"} 1"));
    assert (strstr (text, "route=\"/ocsp\",method=\"POST\",status=\"413\"} 1"));
    zstr_free (&text);
    umb_metrics_destroy (&metrics);
    if (verbose)
        printf ("OK\n");
}
