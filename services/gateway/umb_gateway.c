//  umb_gateway - the REST gateway: libmicrohttpd in front of the mesh
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <sodium.h>
#include "umb_gateway.h"
#include "umb_address.h"
#include "umb_percent.h"
#include "umb_testkit.h"
#include "umb_runtime.h"
#include "umb_metrics.h"
#include "umb_envelope.h"
#include "umb_json.h"
#include "umb_routes.h"
#include "umb_sse.h"
#include "umb_openapi.h"
#include "umb_auth.h"              //  the selftest runs the real auth service
#include "umb_certs.h"             //  ...and the real certs service
#include "umb_backends.h"          //  ...and the real backends service (libvirt's test driver)
#include "umb_computations.h"      //  ...and the real computations service
#include "umb_billing.h"           //  ...and billing
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define S_POOL_MAX_IDLE  64         //  idle clients kept per service
#define S_PROBE_MAX_MS   2000       //  /health and /metrics wait at most this per service
#define S_MAX_ID         64         //  request ids, as the envelope takes them

#define S_CONTENT_JSON    "application/json"
#define S_CONTENT_METRICS "text/plain; version=0.0.4"

//  The mesh services behind the gateway and the settings naming their
//  endpoints (umb_runtime_client reads "<name>.endpoint" and the public key).
static const struct {
    const char *name;
    const char *endpoint_key;
} s_services [] = {
    { "auth", "auth.endpoint" },
    { "certs", "certs.endpoint" },
    { "backends", "backends.endpoint" },
    { "computations", "computations.endpoint" },
    { "billing", "billing.endpoint" },
    { NULL }
};
#define S_SERVICES (sizeof (s_services) / sizeof (s_services [0]) - 1)

//  Methods that get their own metric label; any other is "other".
static const char *const s_method_labels [] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", NULL
};

//  Mesh clients are not thread-safe: each HTTP thread takes one from its
//  service's pool for one call and gives it back.
typedef struct {
    const char      *name;
    pthread_mutex_t  mutex;
    umb_client_t    *idle [S_POOL_MAX_IDLE];
    size_t           idle_count;
} s_pool_t;

typedef struct {
    umb_runtime_t     *runtime;         //  borrowed
    umb_log_t         *log;
    umb_metrics_t     *metrics;
    zcert_t           *identity;        //  the gateway's mesh key pair
    s_pool_t           pools [S_SERVICES];
    bool               pools_ready;
    struct MHD_Daemon *daemon;
    bool               thread_pool;     //  gateway.threads > 0
    unsigned           port;
    size_t             max_body;
    int                timeout_ms;
    const char        *openapi;         //  what /openapi.json serves
    size_t             openapi_size;
    atomic_int         in_flight;
    int64_t            started;         //  zclock_mono
} s_gateway_t;

typedef struct {
    s_gateway_t        *gateway;
    int64_t             started;        //  zclock_usecs
    const char         *method_label;
    const char         *route_label;    //  the route's pattern, never the raw path
    char                request_id [S_MAX_ID + 1];
    umb_routes_match_t  match;
    char               *body;
    size_t              body_size;
    size_t              body_capacity;
    bool                has_body;
    bool                too_large;
    int                 status;         //  what was answered; 0 before
} s_request_t;

//  ---------------------------------------------------------------- client pools

static s_pool_t *
s_pool (s_gateway_t *self, const char *service)
{
    for (size_t i = 0; i < S_SERVICES; i++)
        if (streq (self->pools [i].name, service))
            return &self->pools [i];
    return NULL;
}

//  An idle client of the pool's service, or a new one; NULL if none can be made.
static umb_client_t *
s_pool_take (s_gateway_t *self, s_pool_t *pool)
{
    pthread_mutex_lock (&pool->mutex);
    umb_client_t *client = pool->idle_count ? pool->idle [--pool->idle_count] : NULL;
    if (!client)
        client = umb_runtime_client (self->runtime, pool->name, self->identity);
    pthread_mutex_unlock (&pool->mutex);
    return client;
}

//  Returns a client to its pool. One whose call ended without an answer is
//  dropped instead: its late reply must never meet another caller's request
//  that happens to carry the same id.
static void
s_pool_give (s_pool_t *pool, umb_client_t **client_p, bool reusable)
{
    if (!*client_p)
        return;
    pthread_mutex_lock (&pool->mutex);
    if (reusable && pool->idle_count < S_POOL_MAX_IDLE) {
        pool->idle [pool->idle_count++] = *client_p;
        *client_p = NULL;
    }
    pthread_mutex_unlock (&pool->mutex);
    umb_client_destroy (client_p);
}

//  The outcome of one mesh call.
typedef struct {
    umb_reply_t *reply;             //  NULL when no client could be made
    int          status;
    const char  *code;              //  set when status >= 300
    const char  *message;           //  set when status >= 300
    char         local [160];
} s_call_t;

//  Calls op on service with body (NULL: {}). Failing to make a client comes
//  back as a local 503, like the client's own failures to reach the service.
static void
s_call (s_gateway_t *self, const char *service, const char *op, const char *token, umb_w_t *body,
        int timeout_ms, const char *request_id, s_call_t *call)
{
    memset (call, 0, sizeof (*call));
    s_pool_t *pool = s_pool (self, service);
    assert (pool);
    umb_client_t *client = s_pool_take (self, pool);
    if (client) {
        call->reply = umb_client_callw (client, op, token, body, timeout_ms, request_id);
        call->status = umb_reply_status (call->reply);
        s_pool_give (pool, &client, call->status != 504 && call->status != 502);
        if (!umb_reply_ok (call->reply)) {
            call->code = umb_reply_code (call->reply);
            call->message = umb_reply_error (call->reply);
        }
    }
    else {
        call->status = 503;
        snprintf (call->local, sizeof (call->local), "no client of %s could be made", service);
        call->message = call->local;
    }
    //  A refusal of the gateway itself is no fault of the person asking
    if (call->code && streq (call->code, "identity_revoked")) {
        call->status = 503;
        call->code = umb_status_code (503);
        snprintf (call->local, sizeof (call->local),
                  "the gateway's mesh identity was revoked; %s refuses it", service);
        call->message = call->local;
    }
    if (call->status >= 300 && !call->code)
        call->code = umb_status_code (call->status);
    if (call->status >= 300 && !call->message)
        call->message = call->code;
    //  Failures of the transport: counted, as they say the mesh is unwell
    if (call->status == 502 || call->status == 503 || call->status == 504) {
        char labels [160];
        snprintf (labels, sizeof (labels), "upstream=\"%s\",code=\"%s\"", service,
                  umb_status_code (call->status));
        umb_metrics_count (self->metrics, "umbra_gateway_mesh_errors_total",
                           "Mesh calls of the gateway that got no usable answer, by service and code",
                           labels, 1);
    }
}

//  ---------------------------------------------------------------- responses

//  Queues status with response (taken). Every response carries the request
//  id and the security headers.
static enum MHD_Result
s_queue (s_request_t *req, struct MHD_Connection *conn, int status, const char *content_type,
         struct MHD_Response *response, const char *allow)
{
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (response, "X-Request-Id", req->request_id);
    if (allow)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == 401)
        MHD_add_response_header (response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == 503)
        MHD_add_response_header (response, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    enum MHD_Result rc = MHD_queue_response (conn, (unsigned) status, response);
    MHD_destroy_response (response);
    if (rc == MHD_YES)
        req->status = status;
    return rc;
}

//  Queues status with body (taken with MHD_RESPMEM_MUST_FREE; freed by MHD).
static enum MHD_Result
s_respond (s_request_t *req, struct MHD_Connection *conn, int status, const char *content_type,
           char *body, size_t size, enum MHD_ResponseMemoryMode mode, const char *allow)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (size, body, mode);
    if (!response && mode == MHD_RESPMEM_MUST_FREE)
        free (body);
    return s_queue (req, conn, status, content_type, response, allow);
}

//  JSON answers may carry tokens or private keys: wiped once sent.
static void
s_wipe_text (void *text)
{
    sodium_memzero (text, strlen (text));
    free (text);
}

//  Takes text (JSON, or NULL when it could not be made).
static enum MHD_Result
s_respond_text (s_request_t *req, struct MHD_Connection *conn, int status, char *text,
                const char *allow)
{
    if (!text) {
        static char s_failed [] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        return s_respond (req, conn, 500, S_CONTENT_JSON, s_failed, strlen (s_failed),
                          MHD_RESPMEM_PERSISTENT, NULL);
    }
    struct MHD_Response *response
        = MHD_create_response_from_buffer_with_free_callback (strlen (text), text, s_wipe_text);
    if (!response)
        s_wipe_text (text);
    return s_queue (req, conn, status, S_CONTENT_JSON, response, allow);
}

//  Takes value.
static enum MHD_Result
s_respond_json (s_request_t *req, struct MHD_Connection *conn, int status, json_t *value,
                const char *allow)
{
    char *text = value ? umb_json_dump (value) : NULL;
    json_decref (value);
    return s_respond_text (req, conn, status, text, allow);
}

static json_t *
s_error_value (const char *code, const char *message)
{
    json_t *error = json_object ();
    json_t *root = json_object ();
    if (!error || !root) {
        json_decref (error);
        json_decref (root);
        return NULL;
    }
    json_object_set_new (error, "code", umb_json_stringn (code, strlen (code)));
    json_object_set_new (error, "message", umb_json_stringn (message, strlen (message)));
    json_object_set_new (root, "error", error);
    return root;
}

static enum MHD_Result
s_respond_error (s_request_t *req, struct MHD_Connection *conn, int status, const char *code,
                 const char *allow, const char *format, ...) __attribute__ ((format (printf, 6, 7)));

static enum MHD_Result
s_respond_error (s_request_t *req, struct MHD_Connection *conn, int status, const char *code,
                 const char *allow, const char *format, ...)
{
    char message [512];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof (message), format, args);
    va_end (args);
    return s_respond_json (req, conn, status, s_error_value (code ? code : umb_status_code (status),
                                                             message), allow);
}

//  ---------------------------------------------------------------- request parsing

//  "application/json", optionally with "; charset=utf-8".
static bool
s_content_type_json (const char *value)
{
    if (!value)
        return false;
    while (*value == ' ' || *value == '\t')
        value++;
    if (strncasecmp (value, "application/json", 16))
        return false;
    value += 16;
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value == 0)
        return true;
    if (*value++ != ';')
        return false;
    while (*value == ' ' || *value == '\t')
        value++;
    if (strncasecmp (value, "charset", 7))
        return false;
    value += 7;
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value++ != '=')
        return false;
    while (*value == ' ' || *value == '\t')
        value++;
    bool quoted = *value == '"';
    value += quoted;
    if (strncasecmp (value, "utf-8", 5))
        return false;
    value += 5;
    if (quoted && *value++ != '"')
        return false;
    while (*value == ' ' || *value == '\t')
        value++;
    return *value == 0;
}

static bool
s_request_id_valid (const char *id)
{
    size_t length = strlen (id);
    return length >= 1 && length <= S_MAX_ID
        && strspn (id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == length;
}

//  The caller's credential, from "Authorization: Bearer <token>" or
//  "X-API-Key: <key>". Returns 0 with *token NULL when there is none, or a
//  copy (free with s_token_free); -1 with a reason when one is malformed.
static int
s_token (struct MHD_Connection *conn, char **token, char *reason, size_t reason_size)
{
    *token = NULL;
    const char *value = NULL;
    const char *authorization = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                             MHD_HTTP_HEADER_AUTHORIZATION);
    if (authorization && strncasecmp (authorization, "Bearer", 6) == 0
    &&  (authorization [6] == ' ' || authorization [6] == '\t' || authorization [6] == 0)) {
        value = authorization + 6;
        while (*value == ' ' || *value == '\t')
            value++;
    }
    if (!value)
        value = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "X-API-Key");
    if (!value)
        return 0;
    size_t length = strlen (value);
    while (length && (value [length - 1] == ' ' || value [length - 1] == '\t'))
        length--;
    if (length == 0 || length > UMB_ENVELOPE_MAX_TOKEN) {
        snprintf (reason, reason_size, "the bearer token or API key is empty or longer than %d bytes",
                  UMB_ENVELOPE_MAX_TOKEN);
        return -1;
    }
    for (size_t i = 0; i < length; i++)
        if ((unsigned char) value [i] < 0x21 || (unsigned char) value [i] > 0x7e) {
            snprintf (reason, reason_size, "the bearer token or API key holds characters other "
                      "than printable ASCII");
            return -1;
        }
    *token = strndup (value, length);
    return 0;
}

static void
s_token_free (char **token_p)
{
    if (*token_p) {
        sodium_memzero (*token_p, strlen (*token_p));
        free (*token_p);
        *token_p = NULL;
    }
}

//  Sets field to value in body unless the body already holds something
//  else there. Returns 0, or -1 with a reason.
static int
s_force_field (json_t *body, const char *field, const char *value, const char *source,
               char *reason, size_t reason_size)
{
    json_t *present = json_object_get (body, field);
    if (present) {
        if (json_is_string (present) && streq (json_string_value (present), value))
            return 0;
        snprintf (reason, reason_size, "the body field '%s' contradicts the %s", field, source);
        return -1;
    }
    json_object_set_new (body, field, json_string (value));
    return 0;
}

//  Sets body.field to the decimal integer text (an optional '-', then 1..18
//  digits), unless the body already has it: the query and the body must not
//  both say it. Returns 0, or -1 with a reason.
static int
s_force_int_field (json_t *body, const char *field, const char *text, char *reason,
                   size_t reason_size)
{
    const char *digits = text [0] == '-' ? text + 1 : text;
    size_t count = strspn (digits, "0123456789");
    if (count == 0 || count > 18 || digits [count]) {
        snprintf (reason, reason_size, "the query parameter '%s' must be an integer", field);
        return -1;
    }
    if (json_object_get (body, field)) {
        snprintf (reason, reason_size, "the body field '%s' contradicts the query", field);
        return -1;
    }
    json_object_set_new (body, field, json_integer ((json_int_t) strtoll (text, NULL, 10)));
    return 0;
}

//  The query parameters a route takes: its query list, its int_query list,
//  then its raw_query.
#define S_QUERY_MAX (2 * UMB_ROUTES_MAX_QUERY + 2)

typedef struct {
    const char *names [S_QUERY_MAX];
    char       *values [S_QUERY_MAX];       //  decoded; NULL when absent
    char        reason [160];
} s_query_t;

static enum MHD_Result
s_on_query_argument (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    s_query_t *query = cls;
    char *name = umb_percent_decode (key, strlen (key), false);
    if (!name)
        return MHD_YES;             //  cannot be one the route takes
    enum MHD_Result rc = MHD_YES;
    for (size_t i = 0; i < S_QUERY_MAX && query->names [i]; i++) {
        if (!streq (query->names [i], name))
            continue;
        if (query->values [i]) {
            snprintf (query->reason, sizeof (query->reason), "the query parameter '%s' is repeated",
                      query->names [i]);
            rc = MHD_NO;
        }
        else {
            query->values [i] = umb_percent_decode (value ? value : "", value ? strlen (value) : 0,
                                                    false);
            if (!query->values [i]) {
                snprintf (query->reason, sizeof (query->reason), "the query parameter '%s' has a bad "
                          "percent-encoding, a NUL byte or invalid UTF-8", query->names [i]);
                rc = MHD_NO;
            }
        }
    }
    free (name);
    return rc;
}

//  Reads the query parameters route takes; others are ignored. Returns 0, or
//  -1 with query->reason.
static int
s_query_read (struct MHD_Connection *conn, const umb_routes_entry_t *route, s_query_t *query)
{
    memset (query, 0, sizeof (*query));
    size_t count = 0;
    for (size_t i = 0; i < UMB_ROUTES_MAX_QUERY && route->query [i]; i++)
        query->names [count++] = route->query [i];
    for (size_t i = 0; i < UMB_ROUTES_MAX_QUERY && route->int_query [i]; i++)
        query->names [count++] = route->int_query [i];
    if (route->raw_query)
        query->names [count++] = route->raw_query;
    if (route->follow_final)
        query->names [count++] = "follow";
    if (count)
        MHD_get_connection_values (conn, MHD_GET_ARGUMENT_KIND, s_on_query_argument, query);
    return *query->reason ? -1 : 0;
}

//  The value of parameter name, or NULL when it was not given.
static const char *
s_query_value (s_query_t *query, const char *name)
{
    for (size_t i = 0; i < S_QUERY_MAX && query->names [i]; i++)
        if (streq (query->names [i], name))
            return query->values [i];
    return NULL;
}

static void
s_query_clear (s_query_t *query)
{
    for (size_t i = 0; i < S_QUERY_MAX; i++)
        free (query->values [i]);
    memset (query, 0, sizeof (*query));
}

//  MHD would decode the path before we split it into segments, so "%2F"
//  would become a separator; we decode ourselves, per segment.
static size_t
s_unescape_nothing (void *cls, struct MHD_Connection *conn, char *text)
{
    return strlen (text);
}

//  ---------------------------------------------------------------- handlers

//  The mesh body of a route: the JSON body, plus path parameters, the fixed
//  field and the route's query parameters. Returns 0, or a status with a reason.
static int
s_mesh_body (s_request_t *req, s_query_t *query, umb_w_t *w, char *reason, size_t reason_size)
{
    const umb_routes_entry_t *route = req->match.route;
    json_t *body = NULL;
    if (req->body_size > 0) {
        char *error = NULL;
        body = umb_json_parse (req->body, req->body_size, &error);
        if (!body) {
            snprintf (reason, reason_size, "%s", error ? error : "invalid JSON");
            free (error);
            return 400;
        }
        if (!json_is_object (body)) {
            json_decref (body);
            snprintf (reason, reason_size, "the request body must be a JSON object");
            return 400;
        }
    }
    else
        body = json_object ();
    if (!body) {
        snprintf (reason, reason_size, "out of memory");
        return 500;
    }
    int status = 0;
    for (size_t i = 0; i < req->match.params && status == 0; i++)
        if (s_force_field (body, route->fields [i], req->match.values [i], "path", reason,
                           reason_size))
            status = 400;
    if (status == 0 && route->fixed_field
    &&  s_force_field (body, route->fixed_field, route->fixed_value, "path", reason, reason_size))
        status = 400;
    for (size_t i = 0; i < UMB_ROUTES_MAX_QUERY && route->query [i] && status == 0; i++) {
        const char *value = s_query_value (query, route->query [i]);
        if (value && s_force_field (body, route->query [i], value, "query", reason, reason_size))
            status = 400;
    }
    for (size_t i = 0; i < UMB_ROUTES_MAX_QUERY && route->int_query [i] && status == 0; i++) {
        const char *value = s_query_value (query, route->int_query [i]);
        if (value && s_force_int_field (body, route->int_query [i], value, reason, reason_size))
            status = 400;
    }
    if (status == 0 && umb_json_to_mp (body, w)) {
        snprintf (reason, reason_size, "the body is nested too deeply");
        status = 400;
    }
    json_decref (body);
    return status;
}

//  The form a raw route answers in, from its query parameter; NULL with a
//  reason when the value names none.
static const umb_routes_form_t *
s_raw_form (const umb_routes_entry_t *route, s_query_t *query, char *reason, size_t reason_size)
{
    const char *name = route->raw_query ? s_query_value (query, route->raw_query) : NULL;
    const umb_routes_form_t *form = umb_routes_form (route, name);
    if (!form) {
        int used = snprintf (reason, reason_size, "the query parameter '%s' must be one of:",
                             route->raw_query);
        for (size_t i = 0; i < UMB_ROUTES_MAX_FORMS && route->forms [i].name && used > 0
                           && (size_t) used < reason_size; i++)
            used += snprintf (reason + used, reason_size - (size_t) used, "%s %s%s", i ? "," : "",
                              route->forms [i].name, i ? "" : " (the default)");
    }
    return form;
}

//  A raw route's answer: the form's field of the reply, as it is.
static enum MHD_Result
s_respond_form (s_gateway_t *self, s_request_t *req, struct MHD_Connection *conn, s_call_t *call,
                const umb_routes_form_t *form)
{
    umb_msg_t *body = umb_reply_body (call->reply);
    size_t size = 0;
    const void *data = umb_msg_bin (body, form->field, SIZE_MAX, &size, true);
    if (!data) {
        umb_log_warn (self->log, "%s: %s answered %s without a usable '%s': %s", req->request_id,
                      req->match.route->service, req->match.route->op, form->field,
                      umb_msg_error (body));
        return s_respond_error (req, conn, 502, "bad_reply", NULL, "%s answered without '%s'",
                                req->match.route->service, form->field);
    }
    return s_respond (req, conn, call->status, form->content_type, (char *) data, size,
                      MHD_RESPMEM_MUST_COPY, NULL);
}

//  A mesh route, answered as JSON, or a raw route, answered with one field
//  of the reply. Errors are JSON either way.
//  ---------------------------------------------------------------- event streams

#define S_FOLLOW_WAIT_MS 15000      //  each long poll of a followed log

//  What a stream asks the mesh with: the route's operation, the caller's
//  token and the path's fields
typedef struct {
    s_gateway_t              *self;
    const umb_routes_entry_t *route;
    char                     *token;        //  wiped when the stream ends
    char                     *values [UMB_ROUTES_MAX_PARAMS];
    size_t                    params;
    char                      request_id [S_MAX_ID + 1];
} s_follow_t;

static void
s_follow_free (void *arg)
{
    s_follow_t *follow = arg;
    s_token_free (&follow->token);
    for (size_t i = 0; i < follow->params; i++)
        free (follow->values [i]);
    free (follow);
}

static json_t *
s_follow_fetch (void *arg, int64_t after, int wait_ms, int *status, char *code, size_t code_size,
                char *message, size_t message_size)
{
    s_follow_t *follow = arg;
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    for (size_t i = 0; i < follow->params; i++)
        umb_w_kv_str (w, follow->route->fields [i], follow->values [i]);
    umb_w_kv_int (w, "after", after);
    umb_w_kv_int (w, "max", 100);
    umb_w_kv_int (w, "wait_ms", wait_ms);
    umb_w_map_end (w);
    s_call_t call;
    s_call (follow->self, follow->route->service, follow->route->op, follow->token, w,
            wait_ms + follow->self->timeout_ms, follow->request_id, &call);
    umb_w_destroy (&w);
    json_t *page = NULL;
    if (call.status >= 200 && call.status < 300)
        page = umb_json_from_msg (umb_reply_body (call.reply));
    else {
        *status = call.status;
        snprintf (code, code_size, "%s", call.code ? call.code : "");
        snprintf (message, message_size, "%s", call.message ? call.message : "");
    }
    umb_reply_destroy (&call.reply);
    return page;
}

static bool
s_follow_final (void *arg, const char *state)
{
    const s_follow_t *follow = arg;
    for (const char *const *final = follow->route->follow_final; *final; final++)
        if (streq (*final, state))
            return true;
    return false;
}

static ssize_t
s_follow_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    (void) pos;
    ssize_t count = umb_sse_read ((umb_sse_t *) cls, buf, max);
    return count < 0 ? MHD_CONTENT_READER_END_OF_STREAM : count;
}

static void
s_follow_end (void *cls)
{
    umb_sse_t *sse = cls;
    umb_sse_destroy (&sse);
}

//  ?follow=1 on an event log: the first page is asked for at once, so a
//  refusal (404, 401 ...) is an ordinary error answer; then the stream.
//  Takes the query and the token.
static enum MHD_Result
s_handle_follow (s_gateway_t *self, s_request_t *req, struct MHD_Connection *conn,
                 s_query_t *query, char **token_p)
{
    const umb_routes_entry_t *route = req->match.route;
    s_follow_t *follow = calloc (1, sizeof (s_follow_t));
    assert (follow);
    follow->self = self;
    follow->route = route;
    follow->token = *token_p;
    *token_p = NULL;
    follow->params = req->match.params;
    for (size_t i = 0; i < req->match.params; i++)
        follow->values [i] = strdup (req->match.values [i]);
    snprintf (follow->request_id, sizeof follow->request_id, "%s", req->request_id);
    //  Where to start: Last-Event-ID (a reconnecting browser), else ?after=
    const char *last = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Last-Event-ID");
    const char *after_text = last ? last : s_query_value (query, "after");
    int64_t after = after_text ? strtoll (after_text, NULL, 10) : 0;
    s_query_clear (query);
    int status = 0;
    char code [64] = "", message [512] = "";
    json_t *probe = s_follow_fetch (follow, after < 0 ? 0 : after, 0, &status, code, sizeof code,
                                    message, sizeof message);
    if (!probe) {
        s_follow_free (follow);
        return s_respond_error (req, conn, status >= 400 && status <= 599 ? status : 502,
                                *code ? code : NULL, NULL, "%s", message);
    }
    json_decref (probe);
    umb_sse_t *sse = umb_sse_new (s_follow_fetch, s_follow_final, follow, s_follow_free, after,
                                  S_FOLLOW_WAIT_MS);
    struct MHD_Response *response = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 4096,
                                                                       s_follow_read, sse,
                                                                       s_follow_end);
    if (!response) {
        umb_sse_destroy (&sse);
        return MHD_NO;
    }
    MHD_add_response_header (response, "X-Accel-Buffering", "no");
    return s_queue (req, conn, 200, "text/event-stream", response, NULL);
}

static enum MHD_Result
s_handle_mesh (s_gateway_t *self, s_request_t *req, struct MHD_Connection *conn)
{
    const umb_routes_entry_t *route = req->match.route;
    char reason [512];
    s_query_t query;
    if (s_query_read (conn, route, &query)) {
        snprintf (reason, sizeof (reason), "%s", query.reason);
        s_query_clear (&query);
        return s_respond_error (req, conn, 400, NULL, NULL, "%s", reason);
    }
    const umb_routes_form_t *form = NULL;
    if (route->kind == UMB_ROUTES_RAW
    &&  (form = s_raw_form (route, &query, reason, sizeof (reason))) == NULL) {
        s_query_clear (&query);
        return s_respond_error (req, conn, 400, NULL, NULL, "%s", reason);
    }
    char *token = NULL;
    if (s_token (conn, &token, reason, sizeof (reason))) {
        s_query_clear (&query);
        return s_respond_error (req, conn, 401, "unauthenticated", NULL, "%s", reason);
    }
    const char *follow_value = route->follow_final ? s_query_value (&query, "follow") : NULL;
    if (follow_value && (streq (follow_value, "1") || streq (follow_value, "true")))
        return s_handle_follow (self, req, conn, &query, &token);
    umb_w_t *w = umb_w_new ();
    assert (w);
    int status = s_mesh_body (req, &query, w, reason, sizeof (reason));
    s_query_clear (&query);
    if (status) {
        s_token_free (&token);
        umb_w_destroy (&w);
        return s_respond_error (req, conn, status, NULL, NULL, "%s", reason);
    }
    s_call_t call;
    s_call (self, route->service, route->op, token, w, self->timeout_ms, req->request_id, &call);
    s_token_free (&token);
    size_t size;
    void *sent = (void *) umb_w_data (w, &size);
    sodium_memzero (sent, size);        //  it may hold passwords
    umb_w_destroy (&w);

    enum MHD_Result rc;
    if (call.status >= 200 && call.status < 300 && form)
        rc = s_respond_form (self, req, conn, &call, form);
    else
    if (call.status >= 200 && call.status < 300) {
        size_t length;
        char *text = umb_json_text_from_msg (umb_reply_body (call.reply), &length);
        rc = s_respond_text (req, conn, call.status, text, NULL);
    }
    else
    if (call.status >= 400 && call.status <= 599)
        rc = s_respond_error (req, conn, call.status, call.code, NULL, "%s", call.message);
    else
        rc = s_respond_error (req, conn, 502, "bad_reply", NULL, "%s answered with status %d",
                             route->service, call.status);
    umb_reply_destroy (&call.reply);
    return rc;
}

static enum MHD_Result
s_handle_health (s_gateway_t *self, s_request_t *req, struct MHD_Connection *conn)
{
    int timeout_ms = self->timeout_ms < S_PROBE_MAX_MS ? self->timeout_ms : S_PROBE_MAX_MS;
    json_t *services = json_object ();
    json_object_set_new (services, "gateway",
                         json_pack ("{s:s, s:I}", "status", "ok", "uptime_s",
                                    (json_int_t) ((zclock_mono () - self->started) / 1000)));
    char down [300] = "";
    for (size_t i = 0; i < S_SERVICES; i++) {
        const char *name = self->pools [i].name;
        s_call_t call;
        s_call (self, name, "sys.health", NULL, NULL, timeout_ms, req->request_id, &call);
        json_t *health;
        if (call.status >= 200 && call.status < 300) {
            health = umb_json_from_msg (umb_reply_body (call.reply));
            json_object_del (health, "service");
        }
        else {
            health = json_pack ("{s:s, s:s}", "status", "down", "code", call.code);
            json_object_set_new (health, "message", umb_json_stringn (call.message,
                                                                      strlen (call.message)));
            if (!*down)
                snprintf (down, sizeof (down), "%s is down: %s", name, call.message);
        }
        json_object_set_new (services, name, health);
        umb_reply_destroy (&call.reply);
    }
    json_t *root = json_pack ("{s:s, s:o}", "status", *down ? "unavailable" : "ok",
                              "services", services);
    if (*down && root) {
        json_t *error = s_error_value ("unavailable", down);
        json_object_set (root, "error", json_object_get (error, "error"));
        json_decref (error);
    }
    return s_respond_json (req, conn, *down ? 503 : 200, root, NULL);
}

static enum MHD_Result
s_handle_metrics (s_gateway_t *self, s_request_t *req, struct MHD_Connection *conn)
{
    int timeout_ms = self->timeout_ms < S_PROBE_MAX_MS ? self->timeout_ms : S_PROBE_MAX_MS;
    s_call_t calls [S_SERVICES];
    umb_msg_t *packed [S_SERVICES];
    size_t count = 0;
    for (size_t i = 0; i < S_SERVICES; i++) {
        s_call (self, self->pools [i].name, "sys.metrics", NULL, NULL, timeout_ms, req->request_id,
                &calls [i]);
        umb_msg_t *families = calls [i].status == 200
            ? umb_msg_array (umb_reply_body (calls [i].reply), "families", 1000000, true) : NULL;
        if (families)
            packed [count++] = families;
        else
            umb_log_warn (self->log, "%s: no metrics from %s: %d %s", req->request_id,
                          self->pools [i].name, calls [i].status,
                          calls [i].message ? calls [i].message : "without families");
    }
    //  Set here only: updates racing from many threads could leave it stale
    umb_metrics_gauge (self->metrics, "umbra_http_requests_in_flight",
                       "HTTP requests the gateway is handling", "", atomic_load (&self->in_flight));
    char *text = umb_metrics_render (self->metrics, packed, count);
    for (size_t i = 0; i < S_SERVICES; i++)
        umb_reply_destroy (&calls [i].reply);
    if (!text)
        return s_respond_error (req, conn, 500, NULL, NULL, "the metrics could not be rendered");
    return s_respond (req, conn, 200, S_CONTENT_METRICS, text, strlen (text), MHD_RESPMEM_MUST_FREE,
                      NULL);
}

static enum MHD_Result
s_handle_openapi (s_gateway_t *self, s_request_t *req, struct MHD_Connection *conn)
{
    return s_respond (req, conn, 200, S_CONTENT_JSON, (char *) self->openapi, self->openapi_size,
                      MHD_RESPMEM_PERSISTENT, NULL);
}

//  ---------------------------------------------------------------- MHD callbacks

static s_request_t *
s_request_new (s_gateway_t *self, struct MHD_Connection *conn, const char *method, const char *url)
{
    s_request_t *req = calloc (1, sizeof (s_request_t));
    if (!req)
        return NULL;
    req->gateway = self;
    req->started = zclock_usecs ();
    req->method_label = "other";
    for (size_t i = 0; s_method_labels [i]; i++)
        if (streq (s_method_labels [i], method))
            req->method_label = s_method_labels [i];
    const char *id = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "X-Request-Id");
    if (id && s_request_id_valid (id))
        snprintf (req->request_id, sizeof (req->request_id), "%s", id);
    else {
        uint8_t random [12];
        randombytes_buf (random, sizeof (random));
        sodium_bin2hex (req->request_id, sizeof (req->request_id), random, sizeof (random));
    }
    umb_routes_match (method, url, &req->match);
    req->route_label = req->match.route ? req->match.route->pattern : "(unmatched)";
    atomic_fetch_add (&self->in_flight, 1);
    return req;
}

static void
s_request_destroy (s_request_t **req_p)
{
    s_request_t *req = *req_p;
    if (req) {
        if (req->body) {
            sodium_memzero (req->body, req->body_size);     //  it may hold passwords
            free (req->body);
        }
        free (req);
        *req_p = NULL;
    }
}

//  Everything that can be decided from the request line and headers alone
//  is answered before the body is read.
static enum MHD_Result
s_on_headers (s_gateway_t *self, s_request_t *req, struct MHD_Connection *conn)
{
    umb_routes_match_t *match = &req->match;
    if (match->status == 404)
        return s_respond_error (req, conn, 404, "not_found", NULL, "no such path");
    if (match->status == 405)
        return s_respond_error (req, conn, 405, "method_not_allowed", match->allow, "%s",
                                match->reason);
    if (match->status)
        return s_respond_error (req, conn, match->status, match->status == 414 ? "too_long" : NULL,
                                NULL, "%s", match->reason);
    const char *length = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *encoding = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_TRANSFER_ENCODING);
    //  MHD has checked Content-Length is a number
    unsigned long long declared = length ? strtoull (length, NULL, 10) : 0;
    req->has_body = declared > 0 || (encoding && strcasecmp (encoding, "identity") != 0);
    if (declared > self->max_body)
        return s_respond_error (req, conn, 413, "too_large", NULL,
                                "the body of %llu bytes is over the limit of %zu", declared,
                                self->max_body);
    if (req->has_body
    &&  !s_content_type_json (MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                           MHD_HTTP_HEADER_CONTENT_TYPE)))
        return s_respond_error (req, conn, 415, "unsupported_media_type", NULL,
                                "send the body as application/json");
    //  Memory grows with what arrives, not with what a header promises
    size_t expected = declared < 16384 ? (size_t) declared : 16384;
    if (expected > 0) {
        req->body = malloc (expected);
        req->body_capacity = req->body ? expected : 0;
    }
    return MHD_YES;
}

static void
s_on_body_data (s_gateway_t *self, s_request_t *req, const char *data, size_t size)
{
    if (req->too_large)
        return;                     //  read off the connection, never kept
    if (size > self->max_body - req->body_size) {
        req->too_large = true;
        if (req->body)
            sodium_memzero (req->body, req->body_size);
        free (req->body);
        req->body = NULL;
        req->body_size = req->body_capacity = 0;
        return;
    }
    if (req->body_size + size > req->body_capacity) {
        size_t capacity = req->body_capacity ? req->body_capacity * 2 : 4096;
        while (capacity < req->body_size + size)
            capacity *= 2;
        if (capacity > self->max_body)
            capacity = self->max_body;
        char *grown = malloc (capacity);
        if (!grown) {
            req->too_large = true;  //  answered as too large: nothing better to say
            return;
        }
        if (req->body) {
            memcpy (grown, req->body, req->body_size);
            sodium_memzero (req->body, req->body_size);
            free (req->body);
        }
        req->body = grown;
        req->body_capacity = capacity;
    }
    memcpy (req->body + req->body_size, data, size);
    req->body_size += size;
}

static enum MHD_Result
s_on_request (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
              const char *version, const char *upload_data, size_t *upload_data_size,
              void **con_cls)
{
    s_gateway_t *self = cls;
    s_request_t *req = *con_cls;
    if (!req) {
        req = s_request_new (self, conn, method, url);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        return s_on_headers (self, req, conn);
    }
    if (*upload_data_size > 0) {
        if (!req->status)
            s_on_body_data (self, req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->status)
        return MHD_YES;
    if (req->too_large)
        return s_respond_error (req, conn, 413, "too_large", NULL,
                                "the body is over the limit of %zu bytes", self->max_body);
    switch (req->match.route->kind) {
        case UMB_ROUTES_MESH:
        case UMB_ROUTES_RAW:     return s_handle_mesh (self, req, conn);
        case UMB_ROUTES_HEALTH:  return s_handle_health (self, req, conn);
        case UMB_ROUTES_METRICS: return s_handle_metrics (self, req, conn);
        case UMB_ROUTES_OPENAPI: return s_handle_openapi (self, req, conn);
    }
    return MHD_NO;
}

static const char *
s_termination (enum MHD_RequestTerminationCode code)
{
    switch (code) {
        case MHD_REQUEST_TERMINATED_COMPLETED_OK:       return "ok";
        case MHD_REQUEST_TERMINATED_WITH_ERROR:         return "error";
        case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:    return "timeout";
        case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:    return "shutdown";
        case MHD_REQUEST_TERMINATED_READ_ERROR:         return "read error";
        case MHD_REQUEST_TERMINATED_CLIENT_ABORT:       return "client abort";
        default:                                        return "unknown";
    }
}

static void
s_on_completed (void *cls, struct MHD_Connection *conn, void **con_cls,
                enum MHD_RequestTerminationCode code)
{
    s_gateway_t *self = cls;
    s_request_t *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    double seconds = (double) (zclock_usecs () - req->started) / 1e6;
    char labels [256];
    if (req->status) {
        snprintf (labels, sizeof (labels), "route=\"%s\",method=\"%s\",status=\"%d\"",
                  req->route_label, req->method_label, req->status);
        umb_metrics_count (self->metrics, "umbra_http_requests_total",
                           "HTTP requests answered by the gateway, by route pattern, method and status",
                           labels, 1);
        snprintf (labels, sizeof (labels), "route=\"%s\"", req->route_label);
        umb_metrics_observe (self->metrics, "umbra_http_request_seconds",
                             "Time from an HTTP request's headers to its answer, by route pattern",
                             labels, seconds);
    }
    atomic_fetch_sub (&self->in_flight, 1);
    if (code == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        umb_log_info (self->log, "%s %s %d %.1f ms id=%s", req->method_label, req->route_label,
                      req->status, seconds * 1000, req->request_id);
    else
        umb_log_info (self->log, "%s %s %d %.1f ms id=%s (connection ended: %s)",
                      req->method_label, req->route_label, req->status, seconds * 1000,
                      req->request_id, s_termination (code));
    s_request_destroy (&req);
}

//  ---------------------------------------------------------------- lifecycle

static void s_gateway_destroy (s_gateway_t **self_p);

static int
s_listen (s_gateway_t *self, umb_config_t *config, char **reason)
{
    const char *listen = umb_config_str (config, "gateway.listen");
    const char *colon = strrchr (listen, ':');
    assert (colon);                 //  the config checked host:port
    struct addrinfo *address = umb_address_resolve (listen, "gateway.listen", reason);
    if (!address)
        return -1;
    int64_t threads = umb_config_int (config, "gateway.threads");
    self->thread_pool = threads > 0;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC;
    if (threads == 0)
        flags |= MHD_USE_THREAD_PER_CONNECTION;
    if (address->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    //  Idle connections are closed after twice the mesh deadline
    unsigned idle_s = (unsigned) ((self->timeout_ms + 999) / 1000) * 2;
    self->daemon = MHD_start_daemon (
        flags, 0, NULL, NULL, s_on_request, self,
        MHD_OPTION_SOCK_ADDR, address->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned) umb_config_int (config, "gateway.max_connections"),
        MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned) threads,
        MHD_OPTION_NOTIFY_COMPLETED, s_on_completed, self,
        MHD_OPTION_UNESCAPE_CALLBACK, s_unescape_nothing, NULL,
        MHD_OPTION_END);
    int error = errno;
    freeaddrinfo (address);
    if (!self->daemon) {
        *reason = zsys_sprintf ("cannot listen on %s: %s", listen,
                                error ? strerror (error) : "libmicrohttpd refused");
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : 0;
    umb_log_info (self->log, "listening on http://%.*s:%u (%s)", (int) (colon - listen), listen,
                  self->port, threads ? "thread pool" : "a thread per connection");
    return 0;
}

static s_gateway_t *
s_gateway_new (umb_runtime_t *runtime, char **reason)
{
    *reason = NULL;
    if (sodium_init () < 0) {
        *reason = strdup ("libsodium cannot start");
        return NULL;
    }
    umb_config_t *config = umb_runtime_config (runtime);
    s_gateway_t *self = calloc (1, sizeof (s_gateway_t));
    assert (self);
    self->runtime = runtime;
    self->log = umb_log_dup (umb_runtime_log (runtime), "gateway");
    self->metrics = umb_metrics_new ("gateway");
    self->started = zclock_mono ();
    self->max_body = (size_t) umb_config_int (config, "gateway.max_body_bytes");
    self->timeout_ms = (int) umb_config_int (config, "gateway.timeout_ms");
    atomic_init (&self->in_flight, 0);
    assert (self->log && self->metrics);
    for (size_t i = 0; i < S_SERVICES; i++) {
        self->pools [i].name = s_services [i].name;
        pthread_mutex_init (&self->pools [i].mutex, NULL);
    }
    self->pools_ready = true;

    self->openapi = umb_openapi_embedded (&self->openapi_size);

    self->identity = umb_runtime_identity (runtime, "gateway");
    if (!self->identity) {
        *reason = strdup ("the gateway's mesh key pair cannot be loaded");
        s_gateway_destroy (&self);
        return NULL;
    }
    for (size_t i = 0; i < S_SERVICES; i++)
        umb_log_debug (self->log, "%s at %s", s_services [i].name,
                       umb_config_str (config, s_services [i].endpoint_key));
    if (s_listen (self, config, reason)) {
        s_gateway_destroy (&self);
        return NULL;
    }
    return self;
}

static void
s_gateway_destroy (s_gateway_t **self_p)
{
    s_gateway_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon) {
        //  Stop accepting, let the requests in flight finish, then stop. MHD
        //  0.9.75 can abort when quiescing a thread pool on epoll, so a pool
        //  (gateway.threads > 0) stops at once
        MHD_socket listener = self->thread_pool ? MHD_INVALID_SOCKET
                                                : MHD_quiesce_daemon (self->daemon);
        int64_t deadline = zclock_mono () + self->timeout_ms + 1000;
        while (atomic_load (&self->in_flight) > 0 && zclock_mono () < deadline)
            zclock_sleep (5);
        MHD_stop_daemon (self->daemon);
        if (listener != MHD_INVALID_SOCKET)
            close (listener);
        umb_log_info (self->log, "stopped");
    }
    if (self->pools_ready)
        for (size_t i = 0; i < S_SERVICES; i++) {
            s_pool_t *pool = &self->pools [i];
            while (pool->idle_count)
                umb_client_destroy (&pool->idle [--pool->idle_count]);
            pthread_mutex_destroy (&pool->mutex);
        }
    zcert_destroy (&self->identity);
    umb_metrics_destroy (&self->metrics);
    umb_log_destroy (&self->log);
    free (self);
    *self_p = NULL;
}

void
umb_gateway_actor (zsock_t *pipe, void *args)
{
    umb_runtime_t *runtime = args;
    assert (runtime);
    char *reason = NULL;
    s_gateway_t *self = s_gateway_new (runtime, &reason);
    if (!self) {
        umb_log_t *log = umb_log_dup (umb_runtime_log (runtime), "gateway");
        umb_log_error (log, "not started: %s", reason ? reason : "out of memory");
        umb_log_destroy (&log);
    }
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    assert (poller);
    while (true) {
        void *which = zpoller_wait (poller, 1000);
        if (!which) {
            if (zpoller_terminated (poller))
                break;
            continue;
        }
        char *command = zstr_recv (pipe);
        if (!command || streq (command, "$TERM")) {
            zstr_free (&command);
            break;
        }
        if (streq (command, "PORT"))
            zstr_sendf (pipe, "%u", self ? self->port : 0);
        else
        if (streq (command, "REASON"))
            zstr_send (pipe, self ? "" : reason ? reason : "out of memory");
        else
        if (self)
            umb_log_warn (self->log, "unknown command on the pipe: %.32s", command);
        zstr_free (&command);
    }
    zpoller_destroy (&poller);
    s_gateway_destroy (&self);
    free (reason);
}

//  ---------------------------------------------------------------- selftest

//  A response as read off the wire by a small HTTP/1.1 client.
typedef struct {
    int     status;
    char   *head;           //  status line and headers
    char   *body;           //  NUL-terminated
    size_t  body_size;
    json_t *json;           //  the body as JSON, if it is
} s_http_t;

static void
s_http_destroy (s_http_t **self_p)
{
    s_http_t *self = *self_p;
    if (self) {
        json_decref (self->json);
        free (self->head);
        free (self->body);
        free (self);
        *self_p = NULL;
    }
}

static int
s_test_connect (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct timeval timeout = { 20, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof (timeout));
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof (timeout));
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int rc = connect (fd, (struct sockaddr *) &address, sizeof (address));
    assert (rc == 0);
    return fd;
}

//  Everything the server sends until it closes.
static char *
s_test_read_all (int fd, size_t *size)
{
    size_t capacity = 65536;
    char *data = malloc (capacity + 1);
    assert (data);
    *size = 0;
    while (true) {
        if (*size == capacity) {
            capacity *= 2;
            data = realloc (data, capacity + 1);
            assert (data);
        }
        ssize_t got = read (fd, data + *size, capacity - *size);
        if (got <= 0)
            break;
        *size += (size_t) got;
    }
    data [*size] = 0;
    return data;
}

//  Sends request (which asks for Connection: close) and reads the response.
static s_http_t *
s_http_raw (int port, const char *request, size_t size)
{
    int fd = s_test_connect (port);
    //  The server may answer and close before it read everything (413)
    for (size_t sent = 0; sent < size; ) {
        ssize_t rc = send (fd, request + sent, size - sent, MSG_NOSIGNAL);
        if (rc <= 0)
            break;
        sent += (size_t) rc;
    }
    size_t total;
    char *data = s_test_read_all (fd, &total);
    close (fd);
    s_http_t *self = calloc (1, sizeof (s_http_t));
    assert (self);
    char *end = strstr (data, "\r\n\r\n");
    assert (end);
    assert (strncmp (data, "HTTP/1.1 ", 9) == 0);
    self->status = atoi (data + 9);
    self->head = strndup (data, (size_t) (end - data) + 2);
    self->body_size = total - (size_t) (end + 4 - data);
    self->body = malloc (self->body_size + 1);
    assert (self->body);
    memcpy (self->body, end + 4, self->body_size);
    self->body [self->body_size] = 0;
    self->json = json_loadb (self->body, self->body_size, 0, NULL);
    free (data);
    return self;
}

//  headers: zero or more "Name: value\r\n" lines; body NULL for none.
static s_http_t *
s_http (int port, const char *method, const char *path, const char *headers, const char *body)
{
    char length [64] = "";
    if (body)
        snprintf (length, sizeof (length), "Content-Length: %zu\r\n", strlen (body));
    char *request = zsys_sprintf ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s\r\n%s",
                                  method, path, headers ? headers : "", length, body ? body : "");
    s_http_t *response = s_http_raw (port, request, strlen (request));
    zstr_free (&request);
    return response;
}

//  A header's value (caller frees), or NULL.
static char *
s_http_header (s_http_t *self, const char *name)
{
    size_t length = strlen (name);
    for (const char *line = strstr (self->head, "\r\n"); line && line [2]; line = strstr (line + 2, "\r\n")) {
        const char *start = line + 2;
        if (strncasecmp (start, name, length) == 0 && start [length] == ':') {
            const char *value = start + length + 1;
            while (*value == ' ')
                value++;
            return strndup (value, strcspn (value, "\r"));
        }
    }
    return NULL;
}

static bool
s_http_header_is (s_http_t *self, const char *name, const char *expected)
{
    char *value = s_http_header (self, name);
    bool same = value && streq (value, expected);
    free (value);
    return same;
}

//  The status, with what every response carries.
static void
s_expect (s_http_t *self, int status, const char *content_type)
{
    if (self->status != status)
        fprintf (stderr, "\nexpected %d, got:\n%s\n%s\n", status, self->head, self->body);
    assert (self->status == status);
    assert (s_http_header_is (self, "Content-Type", content_type));
    assert (s_http_header_is (self, "Cache-Control", "no-store"));
    assert (s_http_header_is (self, "X-Content-Type-Options", "nosniff"));
    char *id = s_http_header (self, "X-Request-Id");
    assert (id && s_request_id_valid (id));
    free (id);
    if (streq (content_type, S_CONTENT_JSON))
        assert (self->json);
    if (status >= 400) {
        json_t *error = json_object_get (self->json, "error");
        assert (json_is_string (json_object_get (error, "code")));
        assert (json_is_string (json_object_get (error, "message")));
    }
}

static const char *
s_json_str (json_t *value, const char *key)
{
    return json_string_value (json_object_get (value, key));
}

static zactor_t *
s_test_gateway (umb_runtime_t *runtime, int *port)
{
    zactor_t *gateway = zactor_new (umb_gateway_actor, runtime);
    assert (gateway);
    zstr_send (gateway, "PORT");
    char *answer = zstr_recv (gateway);
    assert (answer);
    *port = atoi (answer);
    zstr_free (&answer);
    return gateway;
}

//  Every "# HELP name" and "# TYPE name" appears once.
static void
s_test_metrics_headers (const char *text)
{
    zhashx_t *seen = zhashx_new ();
    for (const char *line = text; line && *line; line = strchr (line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp (line, "# HELP ", 7) && strncmp (line, "# TYPE ", 7))
            continue;
        size_t name = strcspn (line + 7, " \n");
        char *key = zsys_sprintf ("%.6s %.*s", line, (int) name, line + 7);
        if (zhashx_lookup (seen, key))
            fprintf (stderr, "\n'%s' appears twice in /metrics\n", key);
        assert (zhashx_lookup (seen, key) == NULL);
        zhashx_insert (seen, key, (void *) 1);
        zstr_free (&key);
    }
    zhashx_destroy (&seen);
}

//  Posts JSON as the holder of bearer (a full "Authorization: ...\r\n" line).
static s_http_t *
s_http_post (int port, const char *path, const char *bearer, const char *json)
{
    char *headers = zsys_sprintf ("%sContent-Type: application/json\r\n", bearer ? bearer : "");
    s_http_t *response = s_http (port, "POST", path, headers, json);
    zstr_free (&headers);
    return response;
}

//  Logs username in; returns "Authorization: Bearer ...\r\n" (caller frees).
static char *
s_test_login (int port, const char *username, const char *password, bool create)
{
    char *json = zsys_sprintf ("{\"username\": \"%s\", \"password\": \"%s\"}", username, password);
    s_http_t *response;
    if (create) {
        response = s_http_post (port, "/users", NULL, json);
        s_expect (response, 201, S_CONTENT_JSON);
        s_http_destroy (&response);
    }
    response = s_http_post (port, "/users/tokens", NULL, json);
    s_expect (response, 201, S_CONTENT_JSON);
    char *bearer = zsys_sprintf ("Authorization: Bearer %s\r\n",
                                 s_json_str (response->json, "access_token"));
    s_http_destroy (&response);
    zstr_free (&json);
    return bearer;
}

//  A PKCS#10 request for a new P-256 key, PEM (caller frees).
static char *
s_test_csr (const char *common_name)
{
    EVP_PKEY *key = EVP_EC_gen ("P-256");
    X509_REQ *request = X509_REQ_new ();
    assert (key && request);
    X509_NAME *name = X509_REQ_get_subject_name (request);
    X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *) common_name, -1,
                                -1, 0);
    assert (X509_REQ_set_pubkey (request, key) == 1);
    assert (X509_REQ_sign (request, key, EVP_sha256 ()) > 0);
    BIO *bio = BIO_new (BIO_s_mem ());
    assert (bio && PEM_write_bio_X509_REQ (bio, request) == 1);
    char *data = NULL;
    long size = BIO_get_mem_data (bio, &data);
    char *pem = strndup (data, (size_t) size);
    BIO_free (bio);
    X509_REQ_free (request);
    EVP_PKEY_free (key);
    return pem;
}

//  The common name of a PEM certificate, or "" if it does not parse (caller frees).
static char *
s_test_cert_cn (const char *pem)
{
    BIO *bio = BIO_new_mem_buf (pem, -1);
    X509 *cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
    char name [256] = "";
    if (cert)
        X509_NAME_get_text_by_NID (X509_get_subject_name (cert), NID_commonName, name, sizeof (name));
    X509_free (cert);
    BIO_free (bio);
    return strdup (name);
}

//  True if the CRL lists serial (lowercase hex).
static bool
s_test_crl_lists (X509_CRL *crl, const char *serial)
{
    BIGNUM *wanted = NULL;
    assert (BN_hex2bn (&wanted, serial) > 0);
    bool found = false;
    STACK_OF (X509_REVOKED) *revoked = X509_CRL_get_REVOKED (crl);
    for (int i = 0; i < sk_X509_REVOKED_num (revoked) && !found; i++) {
        BIGNUM *number = ASN1_INTEGER_to_BN (X509_REVOKED_get0_serialNumber (
                                                 sk_X509_REVOKED_value (revoked, i)), NULL);
        found = BN_cmp (number, wanted) == 0;
        BN_free (number);
    }
    BN_free (wanted);
    return found;
}

//  Posts JSON (a jansson value, taken) as the holder of bearer.
static s_http_t *
s_http_post_value (int port, const char *path, const char *bearer, json_t *value)
{
    char *json = json_dumps (value, JSON_COMPACT);
    json_decref (value);
    s_http_t *response = s_http_post (port, path, bearer, json);
    free (json);
    return response;
}

//  The certs routes against the real certs service: alice is admin of "lab",
//  bob a member, carol outside it, root the platform administrator. Returns
//  the private key certs made for alice (caller frees), which the log must
//  never show.
static char *
s_test_certs (umb_runtime_t *runtime, int port, const char *alice, const char *alice_json)
{
    char *bob = s_test_login (port, "bob", "bob-password-12", true);
    char *carol = s_test_login (port, "carol", "carol-password-1", true);
    char *root = s_test_login (port, "root", "root-password-0123", false);
    s_http_t *response = s_http (port, "POST", "/workspaces/lab/invitations", alice_json,
                                 "{\"username\": \"bob\", \"role\": \"member\"}");
    s_expect (response, 201, S_CONTENT_JSON);
    char *accept = zsys_sprintf ("/invitations/%s/accept", s_json_str (response->json, "id"));
    s_http_destroy (&response);
    response = s_http (port, "POST", accept, bob, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    s_http_destroy (&response);
    zstr_free (&accept);

    //  Issue with a key made by the service: 201 with the key, once
    response = s_http_post (port, "/workspaces/lab/certs", alice,
                            "{\"common_name\": \"svc.lab\", \"sans\": [\"svc.lab\", \"10.0.0.1\"], "
                            "\"ttl\": 3600, \"key_type\": \"ed25519\", \"profile\": \"client\"}");
    s_expect (response, 201, S_CONTENT_JSON);
    char *serial = strdup (s_json_str (response->json, "serial"));
    char *private_key = strdup (s_json_str (response->json, "private_key"));
    char *chain = strdup (s_json_str (response->json, "chain"));
    assert (*serial && strstr (private_key, "PRIVATE KEY-----") && strstr (chain, "CERTIFICATE"));
    char *cn = s_test_cert_cn (s_json_str (response->json, "certificate"));
    assert (streq (cn, "svc.lab"));
    free (cn);
    assert (streq (s_json_str (response->json, "key_type"), "ed25519"));
    assert (streq (s_json_str (response->json, "profile"), "client"));
    assert (streq (s_json_str (response->json, "status"), "valid"));
    assert (json_array_size (json_object_get (response->json, "sans")) == 2);
    assert (strncmp (s_json_str (response->json, "workspace_id"), "ws_", 3) == 0);
    s_http_destroy (&response);

    //  ...and from a CSR, by a member: no key comes back
    char *csr = s_test_csr ("from-csr.lab");
    response = s_http_post_value (port, "/workspaces/lab/certs", bob,
                                  json_pack ("{s:s, s:s}", "common_name", "from-csr.lab", "csr", csr));
    s_expect (response, 201, S_CONTENT_JSON);
    assert (!json_object_get (response->json, "private_key"));
    char *csr_serial = strdup (s_json_str (response->json, "serial"));
    s_http_destroy (&response);
    free (csr);

    //  Refused input: the service's statuses come through
    response = s_http_post (port, "/workspaces/lab/certs", alice, "{\"common_name\": \"\"}");
    s_expect (response, 422, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http_post (port, "/workspaces/lab/certs", alice, "{\"common_name\": 7}");
    s_expect (response, 400, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http_post (port, "/workspaces/lab/certs", alice,
                            "{\"common_name\": \"a\", \"workspace\": \"other\"}");
    s_expect (response, 400, S_CONTENT_JSON);
    assert (strstr (response->body, "contradicts"));
    s_http_destroy (&response);

    //  List, with the status filter as a query parameter; get one
    response = s_http (port, "GET", "/workspaces/lab/certs", bob, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (json_array_size (json_object_get (response->json, "items")) == 2);
    assert (!strstr (response->body, "PRIVATE KEY"));
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces/lab/certs?status=revoked", alice, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (json_array_size (json_object_get (response->json, "items")) == 0);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces/lab/certs?status=bogus", alice, NULL);
    s_expect (response, 422, S_CONTENT_JSON);
    s_http_destroy (&response);
    char *path = zsys_sprintf ("/workspaces/lab/certs/%s", serial);
    response = s_http (port, "GET", path, bob, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (streq (s_json_str (response->json, "serial"), serial));
    assert (streq (s_json_str (response->json, "chain"), chain));
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces/lab/certs/ffff", bob, NULL);
    s_expect (response, 404, S_CONTENT_JSON);
    s_http_destroy (&response);

    //  Outside the workspace: 404, never 403; a member cannot revoke: 403 saying why
    response = s_http (port, "GET", path, carol, NULL);
    s_expect (response, 404, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces/lab/certs", NULL, NULL);
    s_expect (response, 401, S_CONTENT_JSON);
    s_http_destroy (&response);
    zstr_free (&path);
    path = zsys_sprintf ("/workspaces/lab/certs/%s/revoke", serial);
    response = s_http_post (port, path, bob, "{\"reason\": \"keyCompromise\"}");
    s_expect (response, 403, S_CONTENT_JSON);
    assert (strstr (s_json_str (json_object_get (response->json, "error"), "message"), "certs.revoke"));
    s_http_destroy (&response);
    response = s_http_post (port, path, carol, "{}");
    s_expect (response, 404, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http_post (port, path, alice, "{\"reason\": \"keyCompromise\"}");
    s_expect (response, 200, S_CONTENT_JSON);
    assert (streq (s_json_str (response->json, "status"), "revoked"));
    assert (streq (s_json_str (response->json, "reason"), "keyCompromise"));
    assert (json_integer_value (json_object_get (response->json, "revoked_at")) > 0);
    s_http_destroy (&response);
    response = s_http (port, "POST", path, alice, NULL);     //  no body at all
    s_expect (response, 409, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces/lab/certs?status=revoked", alice, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (json_array_size (json_object_get (response->json, "items")) == 1);
    s_http_destroy (&response);
    zstr_free (&path);

    //  Renew: a new serial, 201; a revoked one cannot be renewed
    path = zsys_sprintf ("/workspaces/lab/certs/%s/renew", csr_serial);
    response = s_http_post (port, path, bob, "{\"ttl\": 600}");
    s_expect (response, 201, S_CONTENT_JSON);
    assert (*s_json_str (response->json, "serial"));
    assert (!streq (s_json_str (response->json, "serial"), csr_serial));
    s_http_destroy (&response);
    zstr_free (&path);
    path = zsys_sprintf ("/workspaces/lab/certs/%s/renew", serial);
    response = s_http_post (port, path, alice, "{}");
    s_expect (response, 409, S_CONTENT_JSON);
    s_http_destroy (&response);
    zstr_free (&path);

    //  Raw routes: one reply field as the body, as sent, under its content type
    response = s_http (port, "GET", "/ca.pem", NULL, NULL);
    s_expect (response, 200, "application/x-pem-file");
    assert (response->body_size == strlen (chain) && streq (response->body, chain));
    s_http_destroy (&response);
    response = s_http (port, "GET", "/crl", NULL, NULL);
    s_expect (response, 200, "application/pkix-crl");
    const unsigned char *cursor = (const unsigned char *) response->body;
    X509_CRL *crl = d2i_X509_CRL (NULL, &cursor, (long) response->body_size);
    assert (crl && cursor == (const unsigned char *) response->body + response->body_size);
    assert (s_test_crl_lists (crl, serial) && !s_test_crl_lists (crl, csr_serial));
    unsigned char *der = NULL;
    int der_size = i2d_X509_CRL (crl, &der);
    X509_CRL_free (crl);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/crl?format=der&other=1", NULL, NULL);
    s_expect (response, 200, "application/pkix-crl");
    assert (response->body_size == (size_t) der_size && memcmp (response->body, der, (size_t) der_size) == 0);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/crl?format=%70em", NULL, NULL);
    s_expect (response, 200, "application/x-pem-file");
    BIO *bio = BIO_new_mem_buf (response->body, (int) response->body_size);
    crl = PEM_read_bio_X509_CRL (bio, NULL, NULL, NULL);
    BIO_free (bio);
    unsigned char *pem_der = NULL;
    assert (crl && i2d_X509_CRL (crl, &pem_der) == der_size && memcmp (pem_der, der, (size_t) der_size) == 0);
    X509_CRL_free (crl);
    OPENSSL_free (pem_der);
    OPENSSL_free (der);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/crl?format=txt", NULL, NULL);
    s_expect (response, 400, S_CONTENT_JSON);
    assert (strstr (response->body, "'format' must be one of: der (the default), pem"));
    s_http_destroy (&response);
    response = s_http (port, "GET", "/crl?format=pem&format=der", NULL, NULL);
    s_expect (response, 400, S_CONTENT_JSON);
    assert (strstr (response->body, "repeated"));
    s_http_destroy (&response);
    response = s_http (port, "GET", "/crl?format=%zz", NULL, NULL);
    s_expect (response, 400, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "POST", "/crl", NULL, NULL);
    s_expect (response, 405, S_CONTENT_JSON);
    s_http_destroy (&response);

    //  Mesh identities: platform administrators only. A peer's key is
    //  certified over the mesh, as a service would, then revoked over REST.
    zcert_t *identity = umb_runtime_identity (runtime, "gateway");
    umb_client_t *mesh = umb_runtime_client (runtime, "certs", identity);
    zcert_t *peer = zcert_new ();
    assert (identity && mesh && peer);
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "name", "test-peer");
    umb_w_kv_str (w, "public_key", zcert_public_txt (peer));
    umb_w_map_end (w);
    umb_reply_t *reply = umb_client_callw (mesh, "certs.mesh.issue", NULL, w, 10000, NULL);
    assert (umb_reply_status (reply) == 201);
    char *mesh_serial = strdup (umb_msg_str (umb_reply_body (reply), "serial", 64, true));
    umb_reply_destroy (&reply);
    umb_w_destroy (&w);
    umb_client_destroy (&mesh);
    zcert_destroy (&peer);
    zcert_destroy (&identity);
    response = s_http (port, "GET", "/mesh/certs", alice, NULL);
    s_expect (response, 403, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/mesh/certs", root, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (strstr (response->body, mesh_serial) && strstr (response->body, "test-peer"));
    s_http_destroy (&response);
    path = zsys_sprintf ("/mesh/certs/%s/revoke", mesh_serial);
    response = s_http_post (port, path, alice, "{}");
    s_expect (response, 403, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http_post (port, path, root, "{\"reason\": \"superseded\"}");
    s_expect (response, 200, S_CONTENT_JSON);
    assert (streq (s_json_str (response->json, "status"), "revoked"));
    s_http_destroy (&response);
    response = s_http_post (port, "/mesh/certs/ffff/revoke", root, "{}");
    s_expect (response, 404, S_CONTENT_JSON);
    s_http_destroy (&response);
    zstr_free (&path);

    free (mesh_serial);
    free (serial);
    free (csr_serial);
    free (chain);
    zstr_free (&bob);
    zstr_free (&carol);
    zstr_free (&root);
    return private_key;
}

//  The backends routes, against the real service on libvirt's test driver:
//  path and query parameters (integers typed) reach the mesh operation.
static void
s_test_backends (int port, const char *alice, const char *alice_json)
{
    s_http_t *response = s_http (port, "POST", "/workspaces/lab/backends", alice_json,
                                 "{\"name\": \"t1\", \"uri\": \"test:///default\"}");
    s_expect (response, 201, S_CONTENT_JSON);
    assert (streq (s_json_str (response->json, "driver"), "test"));
    char *host = strdup (s_json_str (response->json, "id"));
    s_http_destroy (&response);
    response = s_http (port, "POST", "/workspaces/lab/backends", alice_json,
                       "{\"name\": \"t2\", \"uri\": \"http://example.org/\"}");
    s_expect (response, 422, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces/lab/backends/t1", alice, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (streq (s_json_str (response->json, "id"), host));
    s_http_destroy (&response);

    //  Two CVMs on it (the test driver has no guest: Running at once)
    char *cvms [2];
    for (int i = 0; i < 2; i++) {
        response = s_http (port, "POST", "/workspaces/lab/cvms", alice_json,
                           "{\"tee\": \"none\", \"vcpus\": 1, \"memory_mb\": 256, \"ttl_s\": 600}");
        s_expect (response, 201, S_CONTENT_JSON);
        assert (streq (s_json_str (response->json, "state"), "Running"));
        cvms [i] = strdup (s_json_str (response->json, "id"));
        s_http_destroy (&response);
    }
    response = s_http (port, "POST", "/workspaces/lab/cvms", alice_json,
                       "{\"tee\": \"quantum\", \"vcpus\": 1, \"memory_mb\": 256}");
    s_expect (response, 422, S_CONTENT_JSON);
    s_http_destroy (&response);

    //  Paged by the integer query parameter, filtered by the string one
    response = s_http (port, "GET", "/workspaces/lab/cvms?limit=1&state=Running", alice, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (json_array_size (json_object_get (response->json, "items")) == 1);
    const char *next = s_json_str (response->json, "next");
    assert (next && *next);
    char *second = zsys_sprintf ("/workspaces/lab/cvms?limit=1&cursor=%s", next);
    s_http_destroy (&response);
    response = s_http (port, "GET", second, alice, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (json_array_size (json_object_get (response->json, "items")) == 1);
    s_http_destroy (&response);
    zstr_free (&second);
    response = s_http (port, "GET", "/workspaces/lab/cvms?limit=abc", alice, NULL);
    s_expect (response, 400, S_CONTENT_JSON);
    assert (strstr (response->body, "'limit' must be an integer"));
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces/lab/cvms?limit=0", alice, NULL);
    s_expect (response, 422, S_CONTENT_JSON);
    s_http_destroy (&response);

    //  Events, acknowledged through after
    char *path = zsys_sprintf ("/workspaces/lab/cvms/%s/events?after=0&max=1&wait_ms=0", cvms [0]);
    response = s_http (port, "GET", path, alice, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (json_array_size (json_object_get (response->json, "events")) == 1);
    assert (json_integer_value (json_object_get (response->json, "last")) >= 1);
    assert (streq (s_json_str (response->json, "state"), "Running"));
    s_http_destroy (&response);
    zstr_free (&path);

    //  Destroyed with the reason from the query; a second time is 409
    path = zsys_sprintf ("/workspaces/lab/cvms/%s?reason=done%%20here", cvms [0]);
    response = s_http (port, "DELETE", path, alice, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (streq (s_json_str (response->json, "state"), "Destroyed"));
    assert (strstr (s_json_str (response->json, "reason"), ": done here"));
    s_http_destroy (&response);
    response = s_http (port, "DELETE", path, alice, NULL);
    s_expect (response, 409, S_CONTENT_JSON);
    s_http_destroy (&response);
    zstr_free (&path);

    //  A host with a live CVM cannot go; without it, it can
    response = s_http (port, "DELETE", "/workspaces/lab/backends/t1", alice, NULL);
    s_expect (response, 409, S_CONTENT_JSON);
    s_http_destroy (&response);
    path = zsys_sprintf ("/workspaces/lab/cvms/%s", cvms [1]);
    response = s_http (port, "DELETE", path, alice, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "GET", path, alice, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (streq (s_json_str (response->json, "state"), "Destroyed"));
    s_http_destroy (&response);
    zstr_free (&path);
    response = s_http (port, "DELETE", "/workspaces/lab/backends/t1", alice, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces/lab/backends", alice, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (json_array_size (json_object_get (response->json, "items")) == 0);
    s_http_destroy (&response);
    free (cvms [0]);
    free (cvms [1]);
    free (host);
}

void
umb_gateway_test (bool verbose)
{
    if (verbose)
        printf (" * umb_gateway: ");
    //  Media types
    assert (s_content_type_json ("application/json"));
    assert (s_content_type_json ("Application/JSON ; charset=UTF-8"));
    assert (s_content_type_json ("application/json;charset=\"utf-8\""));
    assert (!s_content_type_json ("application/json; charset=latin1"));
    assert (!s_content_type_json ("application/jsonx"));
    assert (!s_content_type_json ("application/json; boundary=x"));
    assert (!s_content_type_json ("text/plain"));
    assert (!s_content_type_json (NULL));
    assert (s_request_id_valid ("a.b_c:d-9") && !s_request_id_valid ("") && !s_request_id_valid ("a b"));

    char dir [] = "/tmp/umb-gateway-XXXXXX";
    assert (mkdtemp (dir));
    char *state = zsys_sprintf ("%s/state", dir);
    char *log_path = zsys_sprintf ("%s/log", dir);
    char *auth_endpoint = zsys_sprintf ("ipc://%s/auth.ipc", dir);
    char *auth_pub = zsys_sprintf ("ipc://%s/auth-pub.ipc", dir);
    char *certs_endpoint = zsys_sprintf ("ipc://%s/certs.ipc", dir);
    char *certs_pub = zsys_sprintf ("ipc://%s/certs-pub.ipc", dir);
    char *backends_endpoint = zsys_sprintf ("ipc://%s/backends.ipc", dir);
    char *backends_pub = zsys_sprintf ("ipc://%s/backends-pub.ipc", dir);
    char *computations_endpoint = zsys_sprintf ("ipc://%s/computations.ipc", dir);
    char *computations_pub = zsys_sprintf ("ipc://%s/computations-pub.ipc", dir);
    char *billing_endpoint = zsys_sprintf ("ipc://%s/billing.ipc", dir);
    char *billing_pub = zsys_sprintf ("ipc://%s/billing-pub.ipc", dir);
    umb_config_t *config = umb_config_new ();
    char *error = NULL;
    const char *settings [] [2] = {
        { "state_dir", state }, { "log.level", "info" },
        { "auth.endpoint", auth_endpoint }, { "auth.pub_endpoint", auth_pub },
        { "certs.endpoint", certs_endpoint }, { "certs.pub_endpoint", certs_pub },
        { "certs.http_listen", "127.0.0.1:0" },
        { "backends.endpoint", backends_endpoint }, { "backends.pub_endpoint", backends_pub },
        { "backends.certify_agents", "false" },
        { "computations.endpoint", computations_endpoint },
        { "computations.pub_endpoint", computations_pub },
        { "billing.endpoint", billing_endpoint }, { "billing.pub_endpoint", billing_pub },
        { "billing.default_plan", "enterprise" }, { "billing.welcome_credit", "1000000000000" },
        { "admin.username", "root" }, { "admin.password", "root-password-0123" },
        { "gateway.listen", "127.0.0.1:0" }, { "gateway.max_body_bytes", "1024" },
        { "gateway.timeout_ms", "5000" }, { NULL }
    };
    for (size_t i = 0; settings [i][0]; i++) {
        int rc = umb_config_set (config, settings [i][0], settings [i][1], &error);
        assert (rc == 0);
    }
    //  The log goes to a file read at the end, the runtime's first lines too
    int log_fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    assert (log_fd >= 0);
    int saved_stderr = dup (STDERR_FILENO);
    dup2 (log_fd, STDERR_FILENO);
    umb_runtime_t *runtime = umb_runtime_new (&config, &error);
    dup2 (saved_stderr, STDERR_FILENO);
    close (saved_stderr);
    assert (runtime);
    umb_log_set_fd (umb_runtime_log (runtime), log_fd);

    zactor_t *auth = zactor_new (umb_auth_actor, runtime);
    zstr_send (auth, "ENDPOINT");
    char *endpoint = zstr_recv (auth);
    assert (endpoint && *endpoint);
    zstr_free (&endpoint);
    zactor_t *certs = zactor_new (umb_certs_actor, runtime);
    zstr_send (certs, "ENDPOINT");
    endpoint = zstr_recv (certs);
    assert (endpoint && *endpoint);
    zstr_free (&endpoint);
    zactor_t *backends = zactor_new (umb_backends_actor, runtime);
    zstr_send (backends, "ENDPOINT");
    endpoint = zstr_recv (backends);
    assert (endpoint && *endpoint);
    zstr_free (&endpoint);
    zactor_t *computations = zactor_new (umb_computations_actor, runtime);
    zstr_send (computations, "ENDPOINT");
    endpoint = zstr_recv (computations);
    assert (endpoint && *endpoint);
    zstr_free (&endpoint);
    zactor_t *billing = zactor_new (umb_billing_actor, runtime);
    zstr_send (billing, "ENDPOINT");
    endpoint = zstr_recv (billing);
    assert (endpoint && *endpoint);
    zstr_free (&endpoint);
    int port;
    zactor_t *gateway = s_test_gateway (runtime, &port);
    assert (port > 0);

    //  Register: 201 with an id; the caller's request id comes back
    const char *alice = "{\"username\": \"alice\", \"password\": \"alice-password-1\"}";
    s_http_t *response = s_http (port, "POST", "/users",
                                 "Content-Type: application/json; charset=utf-8\r\n"
                                 "X-Request-Id: gw-test.1:a_b\r\n", alice);
    s_expect (response, 201, S_CONTENT_JSON);
    assert (s_json_str (response->json, "id") && *s_json_str (response->json, "id"));
    assert (s_http_header_is (response, "X-Request-Id", "gw-test.1:a_b"));
    s_http_destroy (&response);
    response = s_http (port, "POST", "/users", "Content-Type: application/json\r\n", alice);
    s_expect (response, 409, S_CONTENT_JSON);
    s_http_destroy (&response);

    //  Log in
    response = s_http (port, "POST", "/users/tokens", "Content-Type: application/json\r\n", alice);
    s_expect (response, 201, S_CONTENT_JSON);
    char *token = strdup (s_json_str (response->json, "access_token"));
    assert (token && *token);
    s_http_destroy (&response);
    char *bearer = zsys_sprintf ("Authorization: Bearer %s\r\n", token);
    char *bearer_json = zsys_sprintf ("%sContent-Type: application/json\r\n", bearer);

    //  With and without a token
    response = s_http (port, "GET", "/workspaces", bearer, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (json_is_array (json_object_get (response->json, "items")));
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces", NULL, NULL);
    s_expect (response, 401, S_CONTENT_JSON);
    assert (s_http_header_is (response, "WWW-Authenticate", "Bearer"));
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces", "Authorization: Bearer a b\r\n", NULL);
    s_expect (response, 401, S_CONTENT_JSON);
    s_http_destroy (&response);

    //  Path parameters become fields; a body contradicting them is refused
    response = s_http (port, "POST", "/workspaces", bearer_json, "{\"name\": \"lab\"}");
    s_expect (response, 201, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces/lab/", bearer, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (streq (s_json_str (response->json, "name"), "lab"));
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces/%6Cab", bearer, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "PATCH", "/workspaces/lab", bearer_json,
                       "{\"workspace\": \"other\", \"display_name\": \"Lab\"}");
    s_expect (response, 400, S_CONTENT_JSON);
    assert (strstr (response->body, "contradicts"));
    s_http_destroy (&response);
    response = s_http (port, "GET", "/users/me", bearer, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (streq (s_json_str (response->json, "username"), "alice"));
    s_http_destroy (&response);
    response = s_http (port, "GET", "/invitations?state=pending&unrelated=1", bearer, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/invitations?state=pending&state=accepted", bearer, NULL);
    s_expect (response, 400, S_CONTENT_JSON);
    s_http_destroy (&response);

    //  An API key, as X-API-Key
    response = s_http (port, "POST", "/workspaces/lab/api-keys", bearer_json,
                       "{\"name\": \"ci\", \"actions\": [\"workspace.read\"]}");
    s_expect (response, 201, S_CONTENT_JSON);
    char *key = zsys_sprintf ("X-API-Key: %s\r\n", s_json_str (response->json, "key"));
    assert (strncmp (s_json_str (response->json, "key"), "umb_", 4) == 0);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces/lab", key, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    s_http_destroy (&response);

    char *private_key = s_test_certs (runtime, port, bearer, bearer_json);
    s_test_backends (port, bearer, bearer_json);

    //  Bodies: invalid JSON, not an object, wrong type, too large
    response = s_http (port, "POST", "/users", "Content-Type: application/json\r\n", "{\"username\":");
    s_expect (response, 400, S_CONTENT_JSON);
    assert (strstr (s_json_str (json_object_get (response->json, "error"), "message"), "line 1"));
    s_http_destroy (&response);
    response = s_http (port, "POST", "/users", "Content-Type: application/json\r\n",
                       "{\"a\": 1, \"a\": 2}");
    s_expect (response, 400, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "POST", "/users", "Content-Type: application/json\r\n", "[1, 2]");
    s_expect (response, 400, S_CONTENT_JSON);
    assert (strstr (response->body, "must be a JSON object"));
    s_http_destroy (&response);
    response = s_http (port, "POST", "/users", "Content-Type: text/plain\r\n", alice);
    s_expect (response, 415, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "POST", "/users", NULL, alice);
    s_expect (response, 415, S_CONTENT_JSON);
    s_http_destroy (&response);
    const char *huge = "POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                       "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
    response = s_http_raw (port, huge, strlen (huge));
    s_expect (response, 413, S_CONTENT_JSON);
    s_http_destroy (&response);
    //  Chunked, so the size is only known while reading: read, never kept, then 413
    char chunk [700];
    memset (chunk, ' ', sizeof (chunk));
    char *chunked = zsys_sprintf ("POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                                  "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "2bc\r\n%.700s\r\n2bc\r\n%.700s\r\n0\r\n\r\n", chunk, chunk);
    response = s_http_raw (port, chunked, strlen (chunked));
    s_expect (response, 413, S_CONTENT_JSON);
    s_http_destroy (&response);
    zstr_free (&chunked);

    //  Paths and methods
    response = s_http (port, "GET", "/nope", NULL, NULL);
    s_expect (response, 404, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "DELETE", "/users", NULL, NULL);
    s_expect (response, 405, S_CONTENT_JSON);
    assert (s_http_header_is (response, "Allow", "POST"));
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces/%zz", bearer, NULL);
    s_expect (response, 400, S_CONTENT_JSON);
    s_http_destroy (&response);

    //  An invalid request id is replaced
    response = s_http (port, "GET", "/health", "X-Request-Id: bad id!\r\n", NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    char *id = s_http_header (response, "X-Request-Id");
    assert (id && strlen (id) == 24);
    free (id);
    assert (streq (s_json_str (response->json, "status"), "ok"));
    json_t *services = json_object_get (response->json, "services");
    assert (streq (s_json_str (json_object_get (services, "auth"), "status"), "ok"));
    assert (streq (s_json_str (json_object_get (services, "certs"), "status"), "ok"));
    assert (streq (s_json_str (json_object_get (services, "gateway"), "status"), "ok"));
    s_http_destroy (&response);

    //  The document served is the one the routes were checked against
    response = s_http (port, "GET", "/openapi.json", NULL, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    assert (streq (s_json_str (response->json, "openapi"), "3.1.0"));
    assert (umb_routes_check_openapi (response->body, response->body_size, &error) == 0);
    s_http_destroy (&response);

    //  Two requests on one connection
    const char *two = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                      "GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    int fd = s_test_connect (port);
    assert (send (fd, two, strlen (two), MSG_NOSIGNAL) == (ssize_t) strlen (two));
    size_t size;
    char *both = s_test_read_all (fd, &size);
    close (fd);
    assert (strncmp (both, "HTTP/1.1 200", 12) == 0 && strstr (both, "HTTP/1.1 404"));
    free (both);

    //  Metrics of the gateway and of auth, each family introduced once
    response = s_http (port, "GET", "/metrics", NULL, NULL);
    s_expect (response, 200, S_CONTENT_METRICS);
    assert (strstr (response->body, "# TYPE umbra_http_requests_total counter\n"));
    assert (strstr (response->body, "# TYPE umbra_http_request_seconds histogram\n"));
    assert (strstr (response->body, "# TYPE umbra_http_requests_in_flight gauge\n"));
    assert (strstr (response->body, "route=\"/users\",method=\"POST\",status=\"201\"} 3\n"));
    assert (strstr (response->body, "route=\"/workspaces/{ws}\",method=\"GET\",status=\"200\"} 3\n"));
    assert (strstr (response->body, "route=\"(unmatched)\",method=\"GET\",status=\"404\"} 2\n"));
    assert (strstr (response->body, "# TYPE umbra_mesh_requests_total counter\n"));
    assert (strstr (response->body, "umbra_mesh_requests_total{service=\"auth\""));
    assert (strstr (response->body, "umbra_mesh_requests_total{service=\"certs\""));
    assert (strstr (response->body, "route=\"/crl\",method=\"GET\",status=\"200\"} 3\n"));
    assert (!strstr (response->body, "/workspaces/lab"));
    s_test_metrics_headers (response->body);
    s_http_destroy (&response);
    zactor_destroy (&gateway);

    //  A gateway that cannot listen says so, and answers PORT with 0
    int holder = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (bind (holder, (struct sockaddr *) &address, sizeof (address)) == 0);
    assert (listen (holder, 1) == 0);
    socklen_t length = sizeof (address);
    assert (getsockname (holder, (struct sockaddr *) &address, &length) == 0);
    char *taken = zsys_sprintf ("127.0.0.1:%d", ntohs (address.sin_port));
    config = umb_runtime_config (runtime);
    assert (umb_config_set (config, "gateway.listen", taken, &error) == 0);
    gateway = s_test_gateway (runtime, &port);
    assert (port == 0);
    zstr_send (gateway, "PORT");
    char *again = zstr_recv (gateway);
    assert (again && streq (again, "0"));
    zstr_free (&again);
    zactor_destroy (&gateway);
    close (holder);
    zstr_free (&taken);

    //  A thread pool, a short deadline, and auth gone: 503 with the reason
    assert (umb_config_set (config, "gateway.listen", "127.0.0.1:0", &error) == 0);
    assert (umb_config_set (config, "gateway.threads", "2", &error) == 0);
    assert (umb_config_set (config, "gateway.timeout_ms", "200", &error) == 0);
    gateway = s_test_gateway (runtime, &port);
    assert (port > 0);
    response = s_http (port, "GET", "/health", NULL, NULL);
    s_expect (response, 200, S_CONTENT_JSON);
    s_http_destroy (&response);
    zactor_destroy (&auth);
    zactor_destroy (&certs);
    zactor_destroy (&backends);
    zactor_destroy (&computations);
    zactor_destroy (&billing);
    //  A raw route whose service is gone answers with the JSON error
    response = s_http (port, "GET", "/ca.pem", NULL, NULL);
    assert (response->status == 503 || response->status == 504);
    s_expect (response, response->status, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/health", NULL, NULL);
    s_expect (response, 503, S_CONTENT_JSON);
    services = json_object_get (response->json, "services");
    assert (streq (s_json_str (json_object_get (services, "auth"), "status"), "down"));
    assert (strstr (response->body, "auth is down"));
    s_http_destroy (&response);
    response = s_http (port, "GET", "/workspaces", bearer, NULL);
    assert (response->status == 503 || response->status == 504);
    s_expect (response, response->status, S_CONTENT_JSON);
    s_http_destroy (&response);
    response = s_http (port, "GET", "/metrics", NULL, NULL);
    s_expect (response, 200, S_CONTENT_METRICS);
    assert (strstr (response->body, "umbra_gateway_mesh_errors_total{service=\"gateway\",upstream=\"auth\""));
    s_http_destroy (&response);
    zactor_destroy (&gateway);
    umb_runtime_destroy (&runtime);

    //  One line per request, with the pattern, never a secret
    close (log_fd);
    FILE *file = fopen (log_path, "r");
    assert (file);
    char *log = s_test_read_all (fileno (file), &size);
    fclose (file);
    assert (strstr (log, "POST /users 201 "));
    assert (strstr (log, "GET /workspaces/{ws} 200 "));
    assert (strstr (log, "id=gw-test.1:a_b"));
    assert (!strstr (log, "alice-password-1"));
    assert (!strstr (log, token));
    char *key_line = strchr (private_key, '\n');      //  a line of the key certs made
    assert (key_line && strlen (key_line) > 20);
    key_line [20] = 0;
    assert (!strstr (log, key_line + 1));
    free (private_key);
    assert (strstr (log, "POST /workspaces/{ws}/certs/{serial}/revoke 403 "));
    free (log);

    free (token);
    zstr_free (&bearer);
    zstr_free (&bearer_json);
    zstr_free (&key);
    zstr_free (&auth_endpoint);
    zstr_free (&auth_pub);
    zstr_free (&certs_endpoint);
    zstr_free (&certs_pub);
    zstr_free (&backends_endpoint);
    zstr_free (&backends_pub);
    zstr_free (&computations_endpoint);
    zstr_free (&computations_pub);
    zstr_free (&billing_endpoint);
    zstr_free (&billing_pub);
    zstr_free (&log_path);
    umb_testkit_remove_dir (dir);
    zstr_free (&state);
    if (verbose)
        printf ("OK\n");
}
