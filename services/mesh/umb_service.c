//  umb_service - the server side of a mesh service: ROUTER + PUB on one zloop, and one dispatcher
#include <assert.h>
#include <stdarg.h>
#include <string.h>
#include "umb_service.h"
#include "umb_envelope.h"
#include "umb_client.h"

#define S_DEFAULT_MAX_BODY (1024 * 1024)
//  libzmq drops a connection that sends more than this; the dispatcher
//  answers anything between max_body and this limit with 413.
#define S_HARD_MAX_MESSAGE (64 * 1024 * 1024)

struct _umb_service_t {
    char                *name;
    umb_log_t           *log;
    zloop_t             *loop;
    zsock_t             *router;
    zsock_t             *pub;
    char                *endpoint;
    char                *pub_endpoint;
    zhashx_t            *routes;        //  op -> const umb_route_t *
    zhashx_t            *mesh_services; //  Z85 key -> "" for UMB_ACCESS_MESH callers
    void                *state;
    umb_authenticate_fn *authenticate;
    umb_authorize_fn    *authorize;
    umb_authenticate_async_fn *authenticate_async;
    umb_authorize_async_fn    *authorize_async;
    umb_auth_cancel_fn        *auth_cancel;
    void                *hook_state;
    zlistx_t            *parked;        //  umb_req_t * held by an asynchronous hook
    umb_zap_t           *zap;
    umb_metrics_t       *metrics;
    size_t               max_body;
    int64_t              started;
    umb_w_t             *header;        //  reused for reply headers
};

struct _umb_req_t {
    zframe_t        *routing;
    char            *id;
    char            *op;
    umb_envelope_t  *envelope;
    umb_msg_t       *body;
    umb_principal_t  principal;
    char             mesh_key [41];     //  the caller's CURVE key (Z85)
    char             workspace [64];
    int64_t          deadline;          //  zclock_mono ms
    int64_t          received;          //  zclock_usecs
    umb_w_t         *writer;
    char            *code;
    char            *message;
    bool             retryable;
    bool             deferred;
    const umb_route_t *route;           //  once admitted
    int              stage;             //  the dispatch step it is at (s_stage_t)
    void            *parked;            //  handle in the service's parked list
    int              timer_id;          //  its deadline while parked
};

//  The steps of a dispatch after admission; an asynchronous hook may stop
//  one, and umb_service_resume goes on from there.
typedef enum {
    S_STAGE_AUTHENTICATE,
    S_STAGE_AUTHORIZE,
    S_STAGE_HANDLE
} s_stage_t;

static int s_sys_ping (void *state, umb_req_t *req);
static int s_sys_health (void *state, umb_req_t *req);
static int s_sys_metrics (void *state, umb_req_t *req);

static const umb_route_t s_system_routes [] = {
    { "sys.ping",    s_sys_ping,    UMB_ACCESS_PUBLIC, NULL },
    { "sys.health",  s_sys_health,  UMB_ACCESS_PUBLIC, NULL },
    { "sys.metrics", s_sys_metrics, UMB_ACCESS_MESH,   NULL },
    { NULL }
};

static const unsigned char s_empty_map [] = { 0x80 };

//  ---------------------------------------------------------------- requests

static umb_req_t *
s_req_new (zframe_t **routing_p)
{
    umb_req_t *self = calloc (1, sizeof (umb_req_t));
    assert (self);
    self->routing = *routing_p;
    *routing_p = NULL;
    self->writer = umb_w_new ();
    self->received = zclock_usecs ();
    self->deadline = zclock_mono () + 5000;
    self->timer_id = -1;
    return self;
}

static void
s_req_destroy (umb_req_t **self_p)
{
    umb_req_t *self = *self_p;
    if (self) {
        zframe_destroy (&self->routing);
        umb_envelope_destroy (&self->envelope);
        umb_msg_destroy (&self->body);
        umb_w_destroy (&self->writer);
        free (self->id);
        free (self->op);
        free (self->code);
        free (self->message);
        free (self);
        *self_p = NULL;
    }
}

umb_msg_t             *umb_req_body (umb_req_t *self)      { assert (self); return self->body; }
const char            *umb_req_op (umb_req_t *self)        { assert (self); return self->op; }
const char            *umb_req_id (umb_req_t *self)        { assert (self); return self->id; }
const umb_principal_t *umb_req_principal (umb_req_t *self) { assert (self); return &self->principal; }
const char            *umb_req_workspace (umb_req_t *self) { assert (self); return self->workspace; }
umb_w_t               *umb_req_body_writer (umb_req_t *self) { assert (self); return self->writer; }
void                   umb_req_set_retryable (umb_req_t *self) { assert (self); self->retryable = true; }

int64_t
umb_req_remaining_ms (umb_req_t *self)
{
    assert (self);
    return self->deadline - zclock_mono ();
}

int
umb_req_fail (umb_req_t *self, int status, const char *code, const char *format, ...)
{
    assert (self);
    assert (status >= 400 && status <= 599);
    free (self->code);
    free (self->message);
    self->code = strdup (code ? code : umb_status_code (status));
    va_list args;
    va_start (args, format);
    if (vasprintf (&self->message, format, args) < 0)
        self->message = NULL;
    va_end (args);
    return status;
}

int
umb_req_page (umb_req_t *self, int64_t dflt, int64_t max, int64_t *after, int64_t *limit)
{
    umb_msg_t *body = umb_req_body (self);
    *after = umb_msg_int (body, "after", INT64_MIN, INT64_MAX, 0, false);
    *limit = umb_msg_int (body, "limit", INT64_MIN, INT64_MAX, dflt, false);
    if (umb_msg_failed (body))
        return umb_req_fail (self, 400, "bad_request", "%s", umb_msg_error (body));
    if (*after < 0)
        return umb_req_fail (self, 422, "invalid_argument", "after: 0 or more");
    if (*limit < 1 || *limit > max)
        return umb_req_fail (self, 422, "invalid_argument", "limit: 1..%lld", (long long) max);
    return 0;
}

umb_req_t *
umb_req_defer (umb_req_t *self)
{
    assert (self);
    assert (!self->deferred);
    self->deferred = true;
    return self;
}

//  ---------------------------------------------------------------- replies

static void
s_send_reply (umb_service_t *self, umb_req_t *req, int status)
{
    assert (status >= 200 && status <= 599);
    if (status >= 300 && !req->message)
        umb_req_fail (req, status, NULL, "%s", umb_status_code (status));
    umb_w_reset (self->header);
    umb_envelope_write_reply (self->header, req->id ? req->id : "", status, req->retryable,
                              req->code, req->message);
    size_t header_size, body_size = 0;
    const void *header = umb_w_data (self->header, &header_size);
    const void *body = status < 300 ? umb_w_data (req->writer, &body_size) : NULL;
    if (body_size == 0) {
        body = s_empty_map;
        body_size = sizeof (s_empty_map);
    }
    void *router = zsock_resolve (self->router);
    //  A peer that went away makes these fail; there is nobody left to tell.
    if (zmq_send (router, zframe_data (req->routing), zframe_size (req->routing), ZMQ_SNDMORE) != -1
    &&  zmq_send (router, header, header_size, ZMQ_SNDMORE) != -1)
        zmq_send (router, body, body_size, 0);

    char labels [160];
    char op_label [96];
    umb_metrics_label_escape (op_label, sizeof (op_label),
                              req->op && zhashx_lookup (self->routes, req->op) ? req->op : "(invalid)");
    snprintf (labels, sizeof (labels), "op=\"%s\",status=\"%d\"", op_label, status);
    umb_metrics_count (self->metrics, "umbra_mesh_requests_total",
                       "Mesh requests answered, by operation and status", labels, 1);
    snprintf (labels, sizeof (labels), "op=\"%s\"", op_label);
    umb_metrics_observe (self->metrics, "umbra_mesh_request_seconds",
                         "Time from receipt to answer of mesh requests", labels,
                         (double) (zclock_usecs () - req->received) / 1e6);
    if (status >= 500)
        umb_log_warn (self->log, "%s %s -> %d %s", req->id ? req->id : "-",
                      req->op ? req->op : "-", status, req->message ? req->message : "");
    else
        umb_log_debug (self->log, "%s %s -> %d", req->id ? req->id : "-", req->op ? req->op : "-",
                       status);
}

void
umb_service_reply (umb_service_t *self, umb_req_t **req_p, int status)
{
    assert (self && req_p && *req_p);
    s_send_reply (self, *req_p, status);
    s_req_destroy (req_p);
}

//  ---------------------------------------------------------------- dispatch

//  Every check a handler would otherwise repeat, in order; returns the status
//  to answer with, or 0 when the handler should run.
static int
s_admit (umb_service_t *self, umb_req_t *req, zmsg_t *msg)
{
    if (zmsg_size (msg) != 2)
        return umb_req_fail (req, 400, "bad_envelope", "a request is [header][body]: got %zu frames",
                             zmsg_size (msg));
    zframe_t *header = zmsg_first (msg);
    zframe_t *body = zmsg_next (msg);
    const char *user_id = zframe_meta (header, "User-Id");
    snprintf (req->mesh_key, sizeof (req->mesh_key), "%s", user_id ? user_id : "");
    memcpy (req->principal.mesh_key, req->mesh_key, sizeof (req->mesh_key));

    char *error = NULL;
    req->envelope = umb_envelope_decode (zframe_data (header), zframe_size (header), false,
                                         &error, &req->id);
    if (!req->envelope) {
        int status = umb_req_fail (req, 400, "bad_envelope", "%s", error ? error : "bad header");
        free (error);
        return status;
    }
    req->op = strdup (umb_envelope_op (req->envelope));
    //  ZAP refuses a revoked key's new connections; this shuts its open ones
    if (umb_zap_revoked (self->zap, req->principal.mesh_key))
        return umb_req_fail (req, 401, "identity_revoked", "this mesh identity is revoked");
    req->deadline = zclock_mono () + umb_envelope_deadline_ms (req->envelope);
    if (zframe_size (body) > self->max_body)
        return umb_req_fail (req, 413, NULL, "body of %zu bytes is over the limit of %zu",
                             zframe_size (body), self->max_body);
    const umb_route_t *route = zhashx_lookup (self->routes, req->op);
    if (!route)
        return umb_req_fail (req, 404, "unknown_operation", "'%s' is not an operation of %s",
                             req->op, self->name);
    req->body = umb_msg_decode (zframe_data (body), zframe_size (body), &error);
    if (!req->body || !umb_msg_is_map (req->body)) {
        int status = umb_req_fail (req, 400, "bad_body", "body: %s", error ? error : "expected a map");
        free (error);
        return status;
    }
    if (route->access == UMB_ACCESS_MESH && !zhashx_lookup (self->mesh_services, req->principal.mesh_key))
        return umb_req_fail (req, 403, NULL, "'%s' is for mesh services only", req->op);
    req->route = route;
    return 0;
}

//  A hook's answer as the step's result: 0, UMB_PENDING, or the status to
//  answer with. 503 means the check could not be made, so nothing was done.
static int
s_checked (umb_req_t *req, int status, const char *reason, const char *otherwise)
{
    if (status == 0 || status == UMB_PENDING)
        return status;
    if (status == 503)
        umb_req_set_retryable (req);
    return umb_req_fail (req, status, NULL, "%s", reason && *reason ? reason : otherwise);
}

//  The step req is at: 0 to go on, UMB_PENDING, or the status to answer with.
static int
s_step (umb_service_t *self, umb_req_t *req)
{
    const umb_route_t *route = req->route;
    char reason [256] = "";
    if (req->stage == S_STAGE_AUTHENTICATE) {
        if (route->access != UMB_ACCESS_USER)
            return 0;
        const char *token = umb_envelope_token (req->envelope);
        if (!token || !*token)
            return umb_req_fail (req, 401, NULL, "this operation needs a bearer token or API key");
        req->principal.token = token;
        int status = self->authenticate_async
                   ? self->authenticate_async (self->hook_state, req, token, &req->principal,
                                               reason, sizeof (reason))
                   : self->authenticate (self->hook_state, token, &req->principal, reason,
                                         sizeof (reason));
        assert (status != UMB_PENDING || self->authenticate_async);
        return s_checked (req, status, reason, "not authenticated");
    }
    assert (req->stage == S_STAGE_AUTHORIZE);
    if (route->access != UMB_ACCESS_USER || !route->action)
        return 0;
    const char *workspace = umb_msg_str (req->body, "workspace", 128, true);
    if (!workspace)
        return umb_req_fail (req, 400, NULL, "%s", umb_msg_error (req->body));
    int status = self->authorize_async
               ? self->authorize_async (self->hook_state, req, &req->principal, route->action,
                                        workspace, req->workspace, reason, sizeof (reason))
               : self->authorize (self->hook_state, &req->principal, route->action, workspace,
                                  req->workspace, reason, sizeof (reason));
    assert (status != UMB_PENDING || self->authorize_async);
    return s_checked (req, status, reason, "not allowed");
}

//  A step passed: on to the next.
static void
s_step_done (umb_req_t *req)
{
    if (req->stage == S_STAGE_AUTHENTICATE) {
        //  The hook fills the principal; what the transport says is not its to change
        memcpy (req->principal.mesh_key, req->mesh_key, sizeof (req->mesh_key));
        req->principal.token = umb_envelope_token (req->envelope);
    }
    req->stage++;
}

static int s_on_parked_timer (zloop_t *loop, int timer_id, void *arg);

static void
s_park (umb_service_t *self, umb_req_t *req)
{
    assert (!req->parked);
    req->parked = zlistx_add_end (self->parked, req);
    int64_t wait = umb_req_remaining_ms (req);
    //  One-shot; the handler looks at every parked request, so a timer that
    //  outlives its request does no harm
    req->timer_id = zloop_timer (self->loop, (size_t) (wait > 0 ? wait : 0) + 1, 1,
                                 s_on_parked_timer, self);
}

static void
s_unpark (umb_service_t *self, umb_req_t *req)
{
    assert (req->parked);
    zlistx_delete (self->parked, req->parked);
    req->parked = NULL;
    if (req->timer_id != -1)
        zloop_timer_end (self->loop, req->timer_id);
    req->timer_id = -1;
}

//  Runs the steps from where req is, then its handler, and answers unless a
//  hook or the handler took it; status is a failure already decided, or 0.
static void
s_dispatch (umb_service_t *self, umb_req_t *req, int status)
{
    while (status == 0 && req->stage < S_STAGE_HANDLE) {
        status = s_step (self, req);
        if (status == UMB_PENDING) {
            s_park (self, req);
            return;                 //  umb_service_resume goes on from here
        }
        if (status == 0)
            s_step_done (req);
    }
    if (status == 0) {
        const umb_route_t *route = req->route;
        void *state = route >= s_system_routes
                   && route < s_system_routes + sizeof (s_system_routes) / sizeof (s_system_routes [0])
                    ? self : self->state;
        status = route->handler (state, req);
        if (status == UMB_DEFERRED) {
            assert (req->deferred);
            return;                 //  the handler owns it now
        }
        assert (!req->deferred);
        //  A handler that failed must not leak a half-written body
        if (status >= 300)
            umb_w_reset (req->writer);
    }
    s_send_reply (self, req, status);
    s_req_destroy (&req);
}

void
umb_service_resume (umb_service_t *self, umb_req_t *req, int status, const char *reason)
{
    assert (self && req);
    assert (req->parked);
    assert (status == 0 || (status >= 400 && status <= 599));
    s_unpark (self, req);
    if (status == 0 && umb_req_remaining_ms (req) <= 0) {
        umb_req_set_retryable (req);
        status = umb_req_fail (req, 504, NULL, "the deadline passed while authorization was pending");
    }
    else {
        status = s_checked (req, status, reason,
                            req->stage == S_STAGE_AUTHENTICATE ? "not authenticated" : "not allowed");
        if (status == 0)
            s_step_done (req);
    }
    s_dispatch (self, req, status);
}

size_t
umb_service_pending (umb_service_t *self)
{
    assert (self);
    return zlistx_size (self->parked);
}

//  Drops a parked request: the hook is told, the caller answered.
static void
s_drop (umb_service_t *self, umb_req_t *req, int status, const char *message)
{
    s_unpark (self, req);
    self->auth_cancel (self->hook_state, req);
    umb_req_set_retryable (req);
    umb_req_fail (req, status, NULL, "%s", message);
    s_send_reply (self, req, status);
    s_req_destroy (&req);
}

static int
s_on_parked_timer (zloop_t *loop, int timer_id, void *arg)
{
    umb_service_t *self = arg;
    int64_t now = zclock_mono ();
    //  From the start after each drop: the cancel hook may change the list
    bool dropped = true;
    while (dropped) {
        dropped = false;
        for (umb_req_t *req = zlistx_first (self->parked); req; req = zlistx_next (self->parked))
            if (req->deadline <= now) {
                if (req->timer_id == timer_id)
                    req->timer_id = -1;     //  fired; nothing to end
                s_drop (self, req, 504, "the deadline passed while authorization was pending");
                dropped = true;
                break;
            }
    }
    return 0;
}

static int
s_on_request (zloop_t *loop, zsock_t *router, void *arg)
{
    umb_service_t *self = arg;
    zmsg_t *msg = zmsg_recv (router);
    if (!msg)
        return 0;
    zframe_t *routing = zmsg_pop (msg);
    if (!routing) {
        zmsg_destroy (&msg);
        return 0;
    }
    umb_req_t *req = s_req_new (&routing);
    int status = s_admit (self, req, msg);
    zmsg_destroy (&msg);
    s_dispatch (self, req, status);
    return 0;
}

//  ---------------------------------------------------------------- system ops

static int
s_sys_ping (void *state, umb_req_t *req)
{
    umb_service_t *self = state;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "service", self->name);
    umb_w_kv_int (w, "time_ms", zclock_time ());
    umb_w_map_end (w);
    return 200;
}

static int
s_sys_health (void *state, umb_req_t *req)
{
    umb_service_t *self = state;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "service", self->name);
    umb_w_kv_str (w, "status", "ok");
    umb_w_kv_int (w, "uptime_s", (zclock_mono () - self->started) / 1000);
    umb_w_map_end (w);
    return 200;
}

static int
s_sys_metrics (void *state, umb_req_t *req)
{
    umb_service_t *self = state;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "service", self->name);
    umb_w_key (w, "families");
    umb_metrics_pack (self->metrics, w);
    umb_w_map_end (w);
    return 200;
}

//  ---------------------------------------------------------------- lifecycle

static bool
s_tcp (const char *endpoint)
{
    return strncmp (endpoint, "tcp://", 6) == 0;
}

umb_service_t *
umb_service_new (const umb_service_config_t *config)
{
    assert (config && config->name && config->endpoint && config->routes);
    assert (config->cert);
    assert (config->zap);
    umb_service_t *self = calloc (1, sizeof (umb_service_t));
    assert (self);
    self->name = strdup (config->name);
    self->log = config->log;
    self->state = config->state;
    self->authenticate = config->authenticate;
    self->authorize = config->authorize;
    self->authenticate_async = config->authenticate_async;
    self->authorize_async = config->authorize_async;
    self->auth_cancel = config->auth_cancel;
    //  One kind of hook for each check; asynchronous ones can be cancelled
    assert (!(config->authenticate && config->authenticate_async));
    assert (!(config->authorize && config->authorize_async));
    assert (config->auth_cancel || !(config->authenticate_async || config->authorize_async));
    self->parked = zlistx_new ();
    self->hook_state = config->hook_state ? config->hook_state : config->state;
    self->zap = config->zap;
    self->max_body = config->max_body ? config->max_body : S_DEFAULT_MAX_BODY;
    self->metrics = umb_metrics_new (config->name);
    self->header = umb_w_new ();
    self->started = zclock_mono ();
    self->mesh_services = zhashx_new ();
    for (const char *const *key = config->mesh_services; key && *key; key++)
        zhashx_update (self->mesh_services, *key, (void *) "");
    self->routes = zhashx_new ();
    for (const umb_route_t *route = s_system_routes; route->op; route++)
        zhashx_insert (self->routes, route->op, (void *) route);
    for (const umb_route_t *route = config->routes; route->op; route++) {
        //  A route table that contradicts itself is a programming error
        assert (route->handler);
        assert (route->access != UMB_ACCESS_USER || config->authenticate
                                                 || config->authenticate_async);
        assert (!route->action || (route->access == UMB_ACCESS_USER
                                   && (config->authorize || config->authorize_async)));
        int rc = zhashx_insert (self->routes, route->op, (void *) route);
        assert (rc == 0);
    }

    self->router = zsock_new (ZMQ_ROUTER);
    assert (self->router);
    zcert_apply (config->cert, self->router);
    zsock_set_curve_server (self->router, 1);
    zsock_set_zap_domain (self->router, config->open? UMB_ZAP_DOMAIN_OPEN: UMB_ZAP_DOMAIN);
    zsock_set_zap_enforce_domain (self->router, 1);
    zsock_set_maxmsgsize (self->router, S_HARD_MAX_MESSAGE);
    zsock_set_linger (self->router, 0);
    zsock_set_router_mandatory (self->router, 0);
    if (zsock_bind (self->router, "%s", config->endpoint) == -1) {
        umb_log_error (self->log, "cannot bind %s: %s", config->endpoint, zmq_strerror (zmq_errno ()));
        umb_service_destroy (&self);
        return NULL;
    }
    self->endpoint = strdup (zsock_endpoint (self->router));
    if (config->pub_endpoint) {
        self->pub = zsock_new (ZMQ_PUB);
        assert (self->pub);
        zcert_apply (config->cert, self->pub);
        zsock_set_curve_server (self->pub, 1);
        zsock_set_zap_domain (self->pub, config->open? UMB_ZAP_DOMAIN_OPEN: UMB_ZAP_DOMAIN);
        zsock_set_zap_enforce_domain (self->pub, 1);
        zsock_set_linger (self->pub, 0);
        if (zsock_bind (self->pub, "%s", config->pub_endpoint) == -1) {
            umb_log_error (self->log, "cannot bind %s: %s", config->pub_endpoint,
                           zmq_strerror (zmq_errno ()));
            umb_service_destroy (&self);
            return NULL;
        }
        self->pub_endpoint = strdup (zsock_endpoint (self->pub));
    }
    if (!s_tcp (self->endpoint))
        umb_log_warn (self->log, "%s is not a TCP endpoint", self->endpoint);
    self->loop = zloop_new ();
    assert (self->loop);
    //  $TERM on the pipe ends the loop, not a signal: umbra up stops actors in order
    zloop_set_nonstop (self->loop, true);
    zloop_reader (self->loop, self->router, s_on_request, self);
    umb_log_info (self->log, "%s listening on %s%s%s", self->name, self->endpoint,
                  self->pub_endpoint ? ", events on " : "", self->pub_endpoint ? self->pub_endpoint : "");
    return self;
}

void
umb_service_destroy (umb_service_t **self_p)
{
    assert (self_p);
    umb_service_t *self = *self_p;
    if (self) {
        //  Whoever still waits on a hook is told to ask again
        umb_req_t *req;
        while (self->parked && (req = zlistx_first (self->parked)))
            s_drop (self, req, 503, "the service is stopping");
        zlistx_destroy (&self->parked);
        zloop_destroy (&self->loop);
        //  Long enough for the answers given while stopping to leave
        if (self->router)
            zsock_set_linger (self->router, 100);
        zsock_destroy (&self->router);
        zsock_destroy (&self->pub);
        zhashx_destroy (&self->routes);
        zhashx_destroy (&self->mesh_services);
        umb_metrics_destroy (&self->metrics);
        umb_w_destroy (&self->header);
        free (self->endpoint);
        free (self->pub_endpoint);
        free (self->name);
        free (self);
        *self_p = NULL;
    }
}

const char    *umb_service_endpoint (umb_service_t *self)     { assert (self); return self->endpoint; }
const char    *umb_service_pub_endpoint (umb_service_t *self) { assert (self); return self->pub_endpoint; }
zloop_t       *umb_service_loop (umb_service_t *self)         { assert (self); return self->loop; }
umb_metrics_t *umb_service_metrics (umb_service_t *self)      { assert (self); return self->metrics; }
umb_log_t     *umb_service_log (umb_service_t *self)          { assert (self); return self->log; }

static int
s_on_pipe (zloop_t *loop, zsock_t *pipe, void *arg)
{
    umb_service_t *self = arg;
    char *command = zstr_recv (pipe);
    int rc = 0;
    if (!command || streq (command, "$TERM"))
        rc = -1;
    else
    if (streq (command, "ENDPOINT"))
        zstr_send (pipe, self->endpoint);
    else
    if (streq (command, "PUB"))
        zstr_send (pipe, self->pub_endpoint ? self->pub_endpoint : "");
    zstr_free (&command);
    return rc;
}

int
umb_service_run (umb_service_t *self, zsock_t *pipe)
{
    assert (self && pipe);
    zloop_reader (self->loop, pipe, s_on_pipe, self);
    int rc = zloop_start (self->loop);
    zloop_reader_end (self->loop, pipe);
    umb_log_info (self->log, "%s stopped", self->name);
    return rc;
}

//  What umb_service_serve answers the pipe with
typedef struct {
    umb_service_t          *service;    //  NULL when it did not start
    const char             *failure;
    umb_service_command_fn *handler;
    void                   *arg;
} s_serve_t;

static int
s_on_serve_pipe (zloop_t *loop, zsock_t *pipe, void *arg)
{
    s_serve_t *serve = arg;
    char *command = zstr_recv (pipe);
    int rc = 0;
    if (!command || streq (command, "$TERM"))
        rc = -1;
    else
    if (streq (command, "ENDPOINT"))
        zstr_send (pipe, serve->service ? serve->service->endpoint : "");
    else
    if (streq (command, "PUB"))
        zstr_send (pipe, serve->service && serve->service->pub_endpoint
                         ? serve->service->pub_endpoint : "");
    else
    if (streq (command, "REASON"))
        zstr_send (pipe, serve->failure ? serve->failure : "");
    else
        serve->handler (serve->arg, pipe, command);
    zstr_free (&command);
    (void) loop;
    return rc;
}

void
umb_service_serve (umb_service_t *self, zsock_t *pipe, const char *failure,
                   umb_service_command_fn *handler, void *arg)
{
    assert (pipe && handler);
    s_serve_t serve = { self, failure, handler, arg };
    if (self) {
        zloop_reader (self->loop, pipe, s_on_serve_pipe, &serve);
        zloop_start (self->loop);
        zloop_reader_end (self->loop, pipe);
        umb_log_info (self->log, "%s stopped", self->name);
        return;
    }
    zpoller_t *poller = zpoller_new (pipe, NULL);
    assert (poller);
    while (true) {
        void *which = zpoller_wait (poller, 1000);
        if (!which) {
            if (zpoller_terminated (poller))
                break;
            continue;
        }
        if (s_on_serve_pipe (NULL, pipe, &serve) == -1)
            break;
    }
    zpoller_destroy (&poller);
}

void
umb_service_publish (umb_service_t *self, const char *topic, umb_w_t *body)
{
    assert (self && topic && body);
    if (!self->pub)
        return;
    size_t size;
    const void *data = umb_w_data (body, &size);
    void *pub = zsock_resolve (self->pub);
    zmq_send (pub, topic, strlen (topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (pub, data, size, ZMQ_DONTWAIT);
}

//  ---------------------------------------------------------------- selftest

typedef struct {
    umb_service_t   *service;
    int              flaky_calls;
    umb_req_t       *parked;
    //  The request an asynchronous hook holds, and where its answer goes
    umb_req_t       *held;
    umb_principal_t *held_principal;
    char            *held_workspace_id;
    int              cancelled;
} s_test_state_t;

static int
s_test_auth (void *state, const char *token, umb_principal_t *principal, char *reason, size_t size)
{
    if (streq (token, "good") || streq (token, "boss")) {
        strcpy (principal->subject, streq (token, "good") ? "u-good" : "u-boss");
        principal->is_admin = streq (token, "boss");
        return 0;
    }
    snprintf (reason, size, "token refused");
    return 401;
}

static int
s_test_authorize (void *state, const umb_principal_t *principal, const char *action,
                  const char *workspace, char *workspace_id, char *reason, size_t size)
{
    if (!streq (workspace, "ws1")) {
        snprintf (reason, size, "no workspace '%s'", workspace);
        return 404;
    }
    if (streq (action, "ws.admin") && !principal->is_admin) {
        snprintf (reason, size, "needs admin");
        return 403;
    }
    snprintf (workspace_id, 64, "id-ws1");
    return 0;
}

//  Answers at once what the synchronous hooks answer, except the token
//  "later" and workspace "ws1": those wait for test.release.
static int
s_test_auth_async (void *state, umb_req_t *req, const char *token, umb_principal_t *principal,
                   char *reason, size_t size)
{
    s_test_state_t *self = state;
    if (!streq (token, "later"))
        return s_test_auth (state, token, principal, reason, size);
    assert (!self->held);
    self->held = req;
    self->held_principal = principal;
    strcpy (principal->mesh_key, "overwritten by the hook");
    return UMB_PENDING;
}

static int
s_test_authorize_async (void *state, umb_req_t *req, const umb_principal_t *principal,
                        const char *action, const char *workspace, char *workspace_id,
                        char *reason, size_t size)
{
    s_test_state_t *self = state;
    if (!streq (workspace, "ws1"))
        return s_test_authorize (state, principal, action, workspace, workspace_id, reason, size);
    assert (!self->held);
    self->held = req;
    self->held_workspace_id = workspace_id;
    return UMB_PENDING;
}

static void
s_test_cancel (void *state, umb_req_t *req)
{
    s_test_state_t *self = state;
    assert (self->held == req);
    self->held = NULL;
    self->cancelled++;
}

//  Resumes the held request with the body's status; tells how many were cancelled.
static int
s_test_release_hook (void *state, umb_req_t *req)
{
    s_test_state_t *self = state;
    int status = (int) umb_msg_int (umb_req_body (req), "status", 0, 599, 0, false);
    bool held = self->held != NULL;
    if (held) {
        umb_req_t *waiting = self->held;
        self->held = NULL;
        if (self->held_principal)
            strcpy (self->held_principal->subject, "u-later");
        if (self->held_workspace_id)
            strcpy (self->held_workspace_id, "id-ws1");
        self->held_principal = NULL;
        self->held_workspace_id = NULL;
        umb_service_resume (self->service, waiting, status, status ? "refused later" : NULL);
    }
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_bool (w, "held", held);
    umb_w_kv_int (w, "cancelled", self->cancelled);
    umb_w_kv_int (w, "pending", (int64_t) umb_service_pending (self->service));
    umb_w_map_end (w);
    return 200;
}

static int
s_test_echo (void *state, umb_req_t *req)
{
    const char *text = umb_msg_str (umb_req_body (req), "text", 100, true);
    if (!text)
        return umb_req_fail (req, 400, NULL, "%s", umb_msg_error (umb_req_body (req)));
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "text", text);
    umb_w_kv_str (w, "subject", umb_req_principal (req)->subject);
    umb_w_kv_str (w, "workspace", umb_req_workspace (req));
    umb_w_kv_str (w, "mesh_key", umb_req_principal (req)->mesh_key);
    umb_w_map_end (w);
    return 200;
}

static int
s_test_conflict (void *state, umb_req_t *req)
{
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);             //  half-written, must not reach the caller
    return umb_req_fail (req, 409, NULL, "already there");
}

static int
s_test_flaky (void *state, umb_req_t *req)
{
    s_test_state_t *self = state;
    if (++self->flaky_calls < 3) {
        umb_req_set_retryable (req);
        return umb_req_fail (req, 503, NULL, "try again");
    }
    umb_w_map_begin (umb_req_body_writer (req));
    umb_w_map_end (umb_req_body_writer (req));
    return 200;
}

static int
s_test_release (zloop_t *loop, int timer_id, void *arg)
{
    s_test_state_t *self = arg;
    umb_w_t *w = umb_req_body_writer (self->parked);
    umb_w_map_begin (w);
    umb_w_kv_bool (w, "late", true);
    umb_w_map_end (w);
    umb_service_reply (self->service, &self->parked, 200);
    return 0;
}

static int
s_test_slow (void *state, umb_req_t *req)
{
    s_test_state_t *self = state;
    self->parked = umb_req_defer (req);
    zloop_timer (umb_service_loop (self->service), 300, 1, s_test_release, self);
    return UMB_DEFERRED;
}

static const umb_route_t s_test_routes [] = {
    { "test.echo",     s_test_echo,     UMB_ACCESS_PUBLIC, NULL },
    { "test.whoami",   s_test_echo,     UMB_ACCESS_USER,   NULL },
    { "test.ws.read",  s_test_echo,     UMB_ACCESS_USER,   "ws.read" },
    { "test.ws.admin", s_test_echo,     UMB_ACCESS_USER,   "ws.admin" },
    { "test.conflict", s_test_conflict, UMB_ACCESS_PUBLIC, NULL },
    { "test.flaky",    s_test_flaky,    UMB_ACCESS_PUBLIC, NULL },
    { "test.slow",     s_test_slow,     UMB_ACCESS_PUBLIC, NULL },
    { "test.release",  s_test_release_hook, UMB_ACCESS_PUBLIC, NULL },
    { NULL }
};

typedef struct {
    zcert_t    *cert;
    umb_zap_t  *zap;
    const char *mesh_services [2];
    bool        async;          //  the asynchronous hooks
} s_test_args_t;

static void
s_test_actor (zsock_t *pipe, void *args)
{
    s_test_args_t *test = args;
    s_test_state_t state = { 0 };
    state.service = umb_service_new (&(umb_service_config_t) {
        .name = "test", .endpoint = "tcp://127.0.0.1:*", .pub_endpoint = "tcp://127.0.0.1:*",
        .cert = test->cert, .zap = test->zap, .routes = s_test_routes, .state = &state,
        .authenticate = test->async ? NULL : s_test_auth,
        .authorize = test->async ? NULL : s_test_authorize,
        .authenticate_async = test->async ? s_test_auth_async : NULL,
        .authorize_async = test->async ? s_test_authorize_async : NULL,
        .auth_cancel = test->async ? s_test_cancel : NULL, .max_body = 4096,
        .mesh_services = test->mesh_services });
    assert (state.service);
    zsock_signal (pipe, 0);
    umb_service_run (state.service, pipe);
    umb_service_destroy (&state.service);
}

static umb_reply_t *
s_test_call (umb_client_t *client, const char *op, const char *token, const char *text,
             const char *workspace)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    if (text)
        umb_w_kv_str (w, "text", text);
    if (workspace)
        umb_w_kv_str (w, "workspace", workspace);
    umb_w_map_end (w);
    umb_reply_t *reply = umb_client_callw (client, op, token, w, 2000, NULL);
    umb_w_destroy (&w);
    return reply;
}

static void
s_expect (umb_reply_t **reply_p, int status, const char *error_part)
{
    umb_reply_t *reply = *reply_p;
    if (umb_reply_status (reply) != status)
        fprintf (stderr, "expected %d, got %d %s\n", status, umb_reply_status (reply),
                 umb_reply_error (reply) ? umb_reply_error (reply) : "");
    assert (umb_reply_status (reply) == status);
    if (error_part)
        assert (umb_reply_error (reply) && strstr (umb_reply_error (reply), error_part));
    umb_reply_destroy (reply_p);
}

//  Sends raw frames and returns the decoded reply header's status.
static int
s_raw_status (const char *endpoint, zcert_t *server, zcert_t *client, zmsg_t **msg_p)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zcert_apply (client, dealer);
    zsock_set_curve_serverkey (dealer, zcert_public_txt (server));
    zsock_set_rcvtimeo (dealer, 2000);
    zsock_connect (dealer, "%s", endpoint);
    zmsg_send (msg_p, dealer);
    zmsg_t *reply = zmsg_recv (dealer);
    assert (reply && zmsg_size (reply) == 2);
    zframe_t *header = zmsg_first (reply);
    char *error = NULL;
    umb_envelope_t *envelope = umb_envelope_decode (zframe_data (header), zframe_size (header),
                                                    true, &error, NULL);
    assert (envelope);
    int status = umb_envelope_status (envelope);
    umb_envelope_destroy (&envelope);
    zmsg_destroy (&reply);
    zsock_destroy (&dealer);
    return status;
}

static zsock_t *
s_raw_dealer (const char *endpoint, zcert_t *server, zcert_t *client)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zcert_apply (client, dealer);
    zsock_set_curve_serverkey (dealer, zcert_public_txt (server));
    zsock_set_rcvtimeo (dealer, 5000);
    zsock_set_linger (dealer, 0);
    assert (zsock_connect (dealer, "%s", endpoint) == 0);
    return dealer;
}

//  Sends a request with a "workspace" (when not NULL) and does not wait.
static void
s_raw_send (zsock_t *dealer, const char *id, const char *op, const char *token,
            const char *workspace, int64_t deadline_ms)
{
    umb_w_t *header = umb_w_new ();
    umb_envelope_write_request (header, id, op, token, deadline_ms);
    umb_w_t *body = umb_w_new ();
    umb_w_map_begin (body);
    umb_w_kv_str (body, "text", "raw");
    if (workspace)
        umb_w_kv_str (body, "workspace", workspace);
    umb_w_map_end (body);
    size_t header_size, body_size;
    const void *header_data = umb_w_data (header, &header_size);
    const void *body_data = umb_w_data (body, &body_size);
    assert (zmq_send (zsock_resolve (dealer), header_data, header_size, ZMQ_SNDMORE) != -1);
    assert (zmq_send (zsock_resolve (dealer), body_data, body_size, 0) != -1);
    umb_w_destroy (&header);
    umb_w_destroy (&body);
}

//  Receives the answer to id; asserts its status and retryable flag, and
//  the body's field key when value is not NULL.
static void
s_raw_expect (zsock_t *dealer, const char *id, int status, bool retryable, const char *key,
              const char *value)
{
    zmsg_t *msg = zmsg_recv (dealer);
    assert (msg && zmsg_size (msg) == 2);
    zframe_t *frame = zmsg_first (msg);
    char *error = NULL;
    umb_envelope_t *envelope = umb_envelope_decode (zframe_data (frame), zframe_size (frame),
                                                    true, &error, NULL);
    assert (envelope && !error);
    if (umb_envelope_status (envelope) != status)
        fprintf (stderr, "%s: expected %d, got %d %s\n", id, status, umb_envelope_status (envelope),
                 umb_envelope_error (envelope) ? umb_envelope_error (envelope) : "");
    assert (streq (umb_envelope_id (envelope), id));
    assert (umb_envelope_status (envelope) == status);
    assert (umb_envelope_retryable (envelope) == retryable);
    if (value) {
        frame = zmsg_next (msg);
        umb_msg_t *body = umb_msg_decode (zframe_data (frame), zframe_size (frame), &error);
        assert (body && !error);
        const char *got = umb_msg_str (body, key, 100, true);
        if (!got || !streq (got, value))
            fprintf (stderr, "%s: %s is %s, not %s\n", id, key, got ? got : "missing", value);
        assert (got && streq (got, value));
        umb_msg_destroy (&body);
    }
    umb_envelope_destroy (&envelope);
    zmsg_destroy (&msg);
}

//  Calls test.release with status; checks whether a request was held and
//  how many were cancelled so far.
static void
s_release (umb_client_t *client, int status, bool held, int64_t cancelled)
{
    //  The request to release travels on another connection, so it may not
    //  be parked yet when the release arrives: ask again until it is
    int64_t until = zclock_mono () + 2000;
    while (true) {
        umb_w_t *w = umb_w_new ();
        umb_w_map_begin (w);
        umb_w_kv_int (w, "status", status);
        umb_w_map_end (w);
        umb_reply_t *reply = umb_client_callw (client, "test.release", NULL, w, 2000, NULL);
        umb_w_destroy (&w);
        assert (umb_reply_status (reply) == 200);
        bool was_held = umb_msg_bool (umb_reply_body (reply), "held", false, true);
        if (held && !was_held && zclock_mono () < until) {
            umb_reply_destroy (&reply);
            zclock_sleep (5);
            continue;
        }
        assert (was_held == held);
        assert (umb_msg_int (umb_reply_body (reply), "cancelled", 0, 1000, -1, true) == cancelled);
        assert (umb_msg_int (umb_reply_body (reply), "pending", 0, 1000, -1, true) == 0);
        umb_reply_destroy (&reply);
        return;
    }
}

//  The dispatcher with asynchronous hooks: a request waiting for a hook
//  does not hold up the others, and goes on where it stopped.
static void
s_test_async (zcert_t *server_cert, zcert_t *client_cert, umb_zap_t *zap)
{
    s_test_args_t args = { server_cert, zap, { zcert_public_txt (client_cert), NULL }, true };
    zactor_t *actor = zactor_new (s_test_actor, &args);
    zstr_send (actor, "ENDPOINT");
    char *endpoint = zstr_recv (actor);
    assert (endpoint);
    umb_client_t *client = umb_client_new (endpoint, zcert_public_txt (server_cert), client_cert);
    zsock_t *dealer = s_raw_dealer (endpoint, server_cert, client_cert);

    //  Answers given at once go through as with the synchronous hooks
    umb_reply_t *reply = s_test_call (client, "test.ws.read", "good", "x", "secret");
    s_expect (&reply, 404, "no workspace");
    reply = s_test_call (client, "test.whoami", "forged", "x", NULL);
    s_expect (&reply, 401, "token refused");

    //  Authorization pending: sys.ping is answered meanwhile, then the
    //  request goes on to its handler with the hook's workspace
    s_raw_send (dealer, "a1", "test.ws.read", "good", "ws1", 5000);
    reply = umb_client_call (client, "sys.ping", NULL, NULL, 0, 2000, NULL);
    s_expect (&reply, 200, NULL);
    s_release (client, 0, true, 0);
    s_raw_expect (dealer, "a1", 200, false, "workspace", "id-ws1");
    //  ... or is refused with the hook's status and reason
    s_raw_send (dealer, "a2", "test.ws.admin", "good", "ws1", 5000);
    s_release (client, 403, true, 0);
    s_raw_expect (dealer, "a2", 403, false, NULL, NULL);
    //  503 from a hook: auth could not answer, safe to retry
    s_raw_send (dealer, "a3", "test.ws.admin", "good", "ws1", 5000);
    s_release (client, 503, true, 0);
    s_raw_expect (dealer, "a3", 503, true, NULL, NULL);
    //  Authentication pending, then authorization: the principal is the
    //  hook's, the mesh key the transport's
    s_raw_send (dealer, "a4", "test.whoami", "later", NULL, 5000);
    s_release (client, 0, true, 0);
    s_raw_expect (dealer, "a4", 200, false, "subject", "u-later");
    s_raw_send (dealer, "a5", "test.whoami", "later", NULL, 5000);
    s_release (client, 0, true, 0);
    s_raw_expect (dealer, "a5", 200, false, "mesh_key", zcert_public_txt (client_cert));

    //  Past its deadline a parked request gets 504 and the hook is told
    int64_t started = zclock_mono ();
    s_raw_send (dealer, "a6", "test.ws.read", "good", "ws1", 150);
    s_raw_expect (dealer, "a6", 504, true, NULL, NULL);
    assert (zclock_mono () - started < 2000);
    s_release (client, 0, false, 1);

    //  A service that stops answers what is parked
    s_raw_send (dealer, "a7", "test.ws.read", "good", "ws1", 5000);
    reply = umb_client_call (client, "sys.ping", NULL, NULL, 0, 2000, NULL);
    s_expect (&reply, 200, NULL);
    zactor_destroy (&actor);
    s_raw_expect (dealer, "a7", 503, true, NULL, NULL);

    zsock_destroy (&dealer);
    umb_client_destroy (&client);
    zstr_free (&endpoint);
}

void
umb_service_test (bool verbose)
{
    if (verbose)
        printf (" * umb_service: ");
    umb_zap_t *zap = umb_zap_new (NULL);
    assert (zap);
    zcert_t *server_cert = zcert_new ();
    zcert_t *client_cert = zcert_new ();
    zcert_t *stranger_cert = zcert_new ();
    umb_zap_allow (zap, zcert_public_txt (client_cert), "client");
    s_test_async (server_cert, client_cert, zap);
    zcert_t *peer_cert = zcert_new ();
    umb_zap_allow (zap, zcert_public_txt (peer_cert), "peer");
    s_test_args_t args = { server_cert, zap, { zcert_public_txt (client_cert), NULL } };
    zactor_t *actor = zactor_new (s_test_actor, &args);
    zstr_send (actor, "ENDPOINT");
    char *endpoint = zstr_recv (actor);
    assert (endpoint && strncmp (endpoint, "tcp://127.0.0.1:", 16) == 0);

    umb_client_t *client = umb_client_new (endpoint, zcert_public_txt (server_cert), client_cert);
    umb_reply_t *reply = s_test_call (client, "test.echo", NULL, "hello", NULL);
    assert (umb_reply_status (reply) == 200);
    assert (streq (umb_msg_str (umb_reply_body (reply), "text", 100, true), "hello"));
    //  The server sees the caller's authenticated CURVE key
    assert (streq (umb_msg_str (umb_reply_body (reply), "mesh_key", 100, true),
                   zcert_public_txt (client_cert)));
    umb_reply_destroy (&reply);

    //  Token and authorization are checked once, in the dispatcher
    reply = s_test_call (client, "test.whoami", NULL, "x", NULL);
    s_expect (&reply, 401, "bearer token");
    reply = s_test_call (client, "test.whoami", "forged", "x", NULL);
    s_expect (&reply, 401, "token refused");
    reply = s_test_call (client, "test.whoami", "good", "x", NULL);
    assert (streq (umb_msg_str (umb_reply_body (reply), "subject", 100, true), "u-good"));
    s_expect (&reply, 200, NULL);
    reply = s_test_call (client, "test.ws.read", "good", "x", NULL);
    s_expect (&reply, 400, "'workspace' is required");
    reply = s_test_call (client, "test.ws.read", "good", "x", "secret");
    s_expect (&reply, 404, "no workspace");
    reply = s_test_call (client, "test.ws.admin", "good", "x", "ws1");
    s_expect (&reply, 403, "needs admin");
    reply = s_test_call (client, "test.ws.admin", "boss", "x", "ws1");
    assert (streq (umb_msg_str (umb_reply_body (reply), "workspace", 100, true), "id-ws1"));
    s_expect (&reply, 200, NULL);

    //  Caller errors
    reply = s_test_call (client, "test.nope", NULL, "x", NULL);
    assert (streq (umb_reply_code (reply), "unknown_operation"));
    s_expect (&reply, 404, "not an operation");
    reply = s_test_call (client, "test.echo", NULL, NULL, NULL);
    s_expect (&reply, 400, "'text' is required");
    reply = s_test_call (client, "test.conflict", NULL, NULL, NULL);
    assert (umb_msg_size (umb_reply_body (reply)) == 0);
    s_expect (&reply, 409, "already there");
    char big [5000];
    memset (big, 'a', sizeof (big) - 1);
    big [sizeof (big) - 1] = 0;
    reply = s_test_call (client, "test.echo", NULL, big, NULL);
    s_expect (&reply, 413, "over the limit");
    const unsigned char not_map [] = { 0x91, 0x01 };
    reply = umb_client_call (client, "test.echo", NULL, not_map, sizeof (not_map), 2000, NULL);
    s_expect (&reply, 400, "expected a map");
    const unsigned char garbage [] = { 0xc1, 0xc1 };
    reply = umb_client_call (client, "test.echo", NULL, garbage, sizeof (garbage), 2000, NULL);
    s_expect (&reply, 400, "body:");

    //  Malformed envelopes from a raw peer still get an answer
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, garbage, sizeof (garbage));
    zmsg_addmem (msg, garbage, sizeof (garbage));
    assert (s_raw_status (endpoint, server_cert, client_cert, &msg) == 400);
    msg = zmsg_new ();
    zmsg_addstr (msg, "one");
    zmsg_addstr (msg, "two");
    zmsg_addstr (msg, "three");
    assert (s_raw_status (endpoint, server_cert, client_cert, &msg) == 400);

    //  Retryable failures are retried; stale replies are discarded
    reply = s_test_call (client, "test.flaky", NULL, NULL, NULL);
    s_expect (&reply, 200, NULL);
    reply = umb_client_call (client, "test.slow", NULL, NULL, 0, 100, NULL);
    s_expect (&reply, 504, "deadline");
    zclock_sleep (400);             //  let the late answer arrive and be ignored
    reply = s_test_call (client, "test.echo", NULL, "after", NULL);
    assert (streq (umb_msg_str (umb_reply_body (reply), "text", 100, true), "after"));
    s_expect (&reply, 200, NULL);

    //  System operations
    reply = umb_client_call (client, "sys.metrics", NULL, NULL, 0, 2000, NULL);
    assert (umb_reply_status (reply) == 200);
    umb_msg_t *families = umb_msg_array (umb_reply_body (reply), "families", 1000, true);
    assert (families && umb_msg_size (families) >= 2);
    char *text = umb_metrics_render (NULL, &families, 1);
    assert (strstr (text, "umbra_mesh_requests_total{service=\"test\",op=\"test.echo\",status=\"200\"}"));
    assert (strstr (text, "op=\"(invalid)\",status=\"404\""));
    free (text);
    umb_reply_destroy (&reply);
    reply = umb_client_call (client, "sys.health", NULL, NULL, 0, 2000, NULL);
    assert (streq (umb_msg_str (umb_reply_body (reply), "status", 10, true), "ok"));
    s_expect (&reply, 200, NULL);

    //  An admitted peer that is not a service identity cannot use MESH routes
    umb_client_t *peer = umb_client_new (endpoint, zcert_public_txt (server_cert), peer_cert);
    reply = umb_client_call (peer, "sys.metrics", NULL, NULL, 0, 2000, NULL);
    s_expect (&reply, 403, "mesh services only");
    reply = umb_client_call (peer, "sys.ping", NULL, NULL, 0, 2000, NULL);
    s_expect (&reply, 200, NULL);
    umb_client_destroy (&peer);
    zcert_destroy (&peer_cert);

    //  A revoked peer is refused on the connection it already has
    reply = s_test_call (client, "test.echo", NULL, "still here", NULL);
    s_expect (&reply, 200, NULL);
    assert (umb_zap_revoke (zap, zcert_public_txt (client_cert)) == 0);
    reply = s_test_call (client, "test.echo", NULL, "still here", NULL);
    assert (streq (umb_reply_code (reply), "identity_revoked"));
    s_expect (&reply, 401, "revoked");

    //  A key outside the allow-list never reaches the dispatcher
    umb_client_t *stranger = umb_client_new (endpoint, zcert_public_txt (server_cert), stranger_cert);
    umb_client_set_attempts (stranger, 1);
    reply = umb_client_call (stranger, "sys.ping", NULL, NULL, 0, 300, NULL);
    assert (umb_reply_status (reply) == 503 || umb_reply_status (reply) == 504);
    umb_reply_destroy (&reply);
    assert (umb_zap_refused (zap) >= 1);
    umb_client_destroy (&stranger);

    umb_client_destroy (&client);
    zstr_free (&endpoint);
    zactor_destroy (&actor);
    zcert_destroy (&server_cert);
    zcert_destroy (&client_cert);
    zcert_destroy (&stranger_cert);
    umb_zap_destroy (&zap);
    if (verbose)
        printf ("OK\n");
}
