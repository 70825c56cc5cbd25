//  umb_backends - the backends service actor: hosts, CVM lifecycle, agent
//  links, events, TTL and reconciliation (proto/msgpack/backends.md)
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <jansson.h>
#include <sodium.h>
#include "umb_backends.h"
#include "umb_billing_client.h"
#include "umb_meter.h"
#include "umb_backends_store.h"
#include "umb_worker.h"
#include "umb_agent_link.h"
#include "umb_auth_client.h"
#include "umb_cvm.h"
#include "umb_domain.h"
#include "umb_driver.h"
#include "umb_sched.h"
#include "umb_service.h"

#define S_QUEUE_MAX     256         //  jobs waiting for the worker
#define S_METER_TICKS   4           //  usage is metered every this many ticks
#define S_GAUGE_TICKS   20          //  the CVMs by state are counted every this many ticks
#define S_TICK_MS       250         //  TTL checks
#define S_RECONNECT_TICKS 40        //  unreachable hosts are tried every 10 s
#define S_STR_MAX       256

typedef struct _s_host_t s_host_t;
typedef struct _s_cvm_t s_cvm_t;

struct _umb_backends_t {
    umb_runtime_t         *runtime;
    umb_config_t          *config;
    umb_log_t             *log;
    zcert_t               *cert;
    char                  *public_key;
    char                  *dir;
    char                  *agent_path;
    umb_store_t           *store;
    umb_auth_client_t     *auth;
    umb_service_t         *service;
    umb_worker_t          *worker;
    umb_worker_t          *billing_worker;  //  asks billing: checks, and usage records
    umb_billing_client_t  *billing;         //  ...its thread's client
    bool                   flushing;        //  usage records are on their way to billing
    int64_t                usage_interval;
    umb_sched_t           *sched;
    zsock_t               *virt_events;     //  PULL: domain events from libvirt's thread
    char                   virt_endpoint [64];
    zhashx_t              *hosts;           //  host id -> s_host_t
    zhashx_t              *cvms;            //  cvm id -> s_cvm_t (live CVMs)
    zlistx_t              *waiters;         //  events.pull long-polls
    umb_driver_env_t       env;
    int64_t                default_ttl, max_ttl;
    int                    boot_timeout_ms, agent_timeout_ms;
    bool                   certify;
    int                    tick;
    int64_t                ticks;
    int                    reconciled;      //  hosts reconciled since start
    int                    orphans;         //  orphan domains destroyed since start
    bool                   stopping;
    char                   failure [512];
};

//  A host at run time. driver is touched only on the worker thread.
struct _s_host_t {
    char              id [32];
    char              uri [1040];
    umb_driver_kind_t kind;
    bool              insecure_dev;
    bool              reachable;
    umb_driver_t     *driver;
    umb_sched_rep_t   rep;
    bool              reconnecting;         //  a RECONCILE job is queued
    char              push_endpoint [64];
    zsock_t          *push;                 //  made and used on libvirt's event thread
    umb_backends_t   *owner;
};

//  A live CVM at run time
struct _s_cvm_t {
    char            id [32];
    char            host_id [32];
    umb_backends_t *owner;
    int64_t         expires_at;
    int64_t         started_ms;             //  create, for boot latency
    zactor_t       *link;
    bool            link_ready;
    int             pidfd;
    pid_t           pid;
    char           *manifest;               //  given at create; delivered at AgentReady
    umb_req_t      *create_req;             //  answered once the domain runs
    umb_req_t      *destroy_req;            //  answered once it is gone
    umb_req_t      *manifest_req;
    bool            teardown;               //  a teardown job is queued or done
    bool            stop_sent;
    bool            pinned;                 //  the creator named the host
    int             attempts;               //  hosts tried
};

typedef struct {
    umb_req_t *req;
    char       cvm_id [32];
    int64_t    after;
    int64_t    max;
    int        timer;
    umb_backends_t *owner;
} s_waiter_t;

//  Work for the worker thread; the loop reads the results in s_on_job.
typedef enum {
    S_JOB_OPEN,             //  register: open the driver, read caps, start events
    S_JOB_RECONCILE,        //  start-up: open, list, adopt or clean
    S_JOB_CREATE,
    S_JOB_TEARDOWN,
    S_JOB_CLOSE,            //  host removed: stop events, close
    S_JOB_CERTIFY,          //  certs.mesh.issue for an agent key
    S_JOB_RETIRE,           //  certs.mesh.retire: the agent's certificate, once its CVM is gone
    S_JOB_BEHIND            //  tests: destroy a domain on the host as an operator would
} s_job_kind_t;

typedef struct {
    s_job_kind_t  kind;
    s_host_t     *host;
    bool          owns_host;            //  OPEN: the host is not in the map yet
    umb_req_t    *req;
    //  in
    char          cvm_id [32];
    char          workspace [64];
    char          tee [16];
    int64_t       vcpus, memory_mb, created, ttl;
    char        **live;                 //  RECONCILE: live cvm ids of the host (NULL-terminated)
    char        **spared;               //  RECONCILE: live cvm ids of other hosts: never orphans
    bool          restart;              //  RECONCILE: at start (else a host coming back)
    bool          open_failed;          //  CREATE: the host could not be reached
    char          agent_key [41];
    //  out
    int           rc;
    char          reason [768];
    umb_driver_caps_t caps;
    umb_driver_started_t started;
    zactor_t     *link;                 //  TEARDOWN: the CVM's agent link, to end off the loop
    char        **orphans;              //  RECONCILE: destroyed
    char        **adopted_reasons;      //  RECONCILE: per live id, "" adopted or why not
    umb_driver_started_t *adopted;      //  RECONCILE: per live id
    char          serial [72];
} s_job_t;

static void s_on_job (void *arg, void *job_arg, bool cancelled);
static int s_pick (umb_backends_t *self, umb_req_t *req, const char *workspace_id,
                   const char *host_key, int tee_kind, int64_t vcpus, int64_t memory,
                   umb_backends_host_t *chosen, char *reason, size_t reason_size);
static void s_cvm_fail (umb_backends_t *self, const char *cvm_id, const char *reason);
static void s_event (umb_backends_t *self, const char *cvm_id, const char *source,
                     const char *type, const char *state, int64_t agent_seq,
                     const char *format, ...) __attribute__ ((format (printf, 7, 8)));

static int64_t
s_now (void)
{
    return (int64_t) time (NULL);
}

static void
s_new_id (const char *prefix, char *out, size_t size)
{
    uint8_t random [8];
    randombytes_buf (random, sizeof random);
    char hex [17];
    sodium_bin2hex (hex, sizeof hex, random, sizeof random);
    snprintf (out, size, "%s%s", prefix, hex);
}

static int
s_storage_error (umb_backends_t *self, umb_req_t *req)
{
    umb_log_error (self->log, "%s: storage error", req ? umb_req_op (req) : "backends");
    if (!req)
        return 500;
    umb_req_set_retryable (req);
    return umb_req_fail (req, 500, NULL, "storage error; nothing was changed");
}

static int
s_bad_request (umb_req_t *req)
{
    umb_msg_t *body = umb_req_body (req);
    return umb_req_fail (req, 400, NULL, "%s", umb_msg_failed (body) ? umb_msg_error (body)
                                                                    : "invalid request");
}

//  ---------------------------------------------------------------- writers

static void
s_write_host (umb_backends_t *self, umb_w_t *w, const umb_backends_host_t *row)
{
    s_host_t *host = zhashx_lookup (self->hosts, row->id);
    int64_t cvms = 0, vcpus = 0, memory = 0;
    umb_backends_store_host_load (self->store, row->id, &cvms, &vcpus, &memory);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "id", row->id);
    umb_w_kv_str (w, "workspace_id", row->workspace_id);
    umb_w_kv_str (w, "name", row->name);
    umb_w_kv_str (w, "uri", row->uri);
    umb_w_kv_str (w, "driver", row->driver);
    umb_w_kv_bool (w, "insecure_dev", row->insecure_dev);
    bool reachable = host ? host->reachable : streq (row->status, "up");
    umb_w_kv_str (w, "status", reachable ? "up" : "unreachable");
    umb_w_kv_str (w, "error", reachable || !*row->error ? NULL : row->error);
    umb_w_key (w, "caps");
    umb_w_map_begin (w);
    umb_w_key (w, "tees");
    umb_w_array_begin (w);
    char tees [64];
    snprintf (tees, sizeof tees, "%s", row->tees);
    char *save = NULL;
    for (char *tee = strtok_r (tees, ",", &save); tee; tee = strtok_r (NULL, ",", &save))
        umb_w_str (w, tee);
    umb_w_array_end (w);
    umb_w_kv_int (w, "cpus", row->cpus);
    umb_w_kv_int (w, "memory_mb", row->memory_mb);
    umb_w_kv_bool (w, "kvm", row->kvm);
    umb_w_map_end (w);
    umb_w_key (w, "capacity");
    umb_w_map_begin (w);
    umb_w_kv_int (w, "cvms", cvms);
    umb_w_kv_int (w, "vcpus_used", vcpus);
    umb_w_kv_int (w, "memory_mb_used", memory);
    umb_w_kv_int (w, "vcpus_free", row->cpus > vcpus ? row->cpus - vcpus : 0);
    umb_w_kv_int (w, "memory_mb_free", row->memory_mb > memory ? row->memory_mb - memory : 0);
    umb_w_map_end (w);
    umb_w_kv_double (w, "reputation", host ? umb_sched_reliability (self->sched, &host->rep,
                                                                     zclock_time ()) : 1.0);
    umb_w_kv_str (w, "created_by", row->created_by);
    umb_w_kv_int (w, "created_at", row->created_at);
    umb_w_map_end (w);
}

static void
s_write_opt (umb_w_t *w, const char *key, const char *value)
{
    umb_w_kv_str (w, key, value && *value ? value : NULL);
}

static void
s_write_cvm (umb_backends_t *self, umb_w_t *w, const umb_backends_cvm_t *cvm)
{
    umb_backends_host_t host;
    if (umb_backends_store_host_by_id (self->store, cvm->host_id, &host))
        snprintf (host.name, sizeof host.name, "%s", cvm->host_id);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "id", cvm->id);
    umb_w_kv_str (w, "workspace_id", cvm->workspace_id);
    umb_w_kv_str (w, "host_id", cvm->host_id);
    umb_w_kv_str (w, "host", host.name);
    char domain [64];
    snprintf (domain, sizeof domain, "%s%s", UMB_DOMAIN_NAME_PREFIX, cvm->id);
    umb_w_kv_str (w, "domain", domain);
    umb_w_kv_str (w, "tee", cvm->tee);
    umb_w_kv_int (w, "vcpus", cvm->vcpus);
    umb_w_kv_int (w, "memory_mb", cvm->memory_mb);
    umb_w_kv_int (w, "ttl_s", cvm->ttl_s);
    umb_w_kv_int (w, "expires_at", cvm->expires_at);
    umb_w_kv_str (w, "state", cvm->state);
    s_write_opt (w, "reason", cvm->reason);
    s_write_opt (w, "computation", cvm->computation);
    umb_w_kv_str (w, "agent", cvm->agent);
    s_write_opt (w, "agent_key", cvm->agent_key);
    umb_w_kv_bool (w, "insecure", cvm->insecure);
    s_write_opt (w, "agent_endpoint", cvm->agent_endpoint);
    s_write_opt (w, "attest_endpoint", cvm->attest_endpoint);
    s_write_opt (w, "mesh_cert", cvm->mesh_cert);
    umb_w_kv_int (w, "events", cvm->events);
    umb_w_kv_int (w, "acked", cvm->acked);
    umb_w_kv_str (w, "created_by", cvm->created_by);
    s_write_opt (w, "created_by_service", cvm->service_key);
    umb_w_kv_int (w, "created_at", cvm->created_at);
    umb_w_kv_int (w, "updated_at", cvm->updated_at);
    umb_w_map_end (w);
}

//  Answers a deferred request with the CVM as it is now.
static void
s_reply_cvm (umb_backends_t *self, umb_req_t **req_p, int status, const char *cvm_id)
{
    umb_backends_cvm_t cvm;
    if (umb_backends_store_cvm_get (self->store, NULL, cvm_id, &cvm)) {
        umb_service_reply (self->service, req_p, s_storage_error (self, *req_p));
        return;
    }
    s_write_cvm (self, umb_req_body_writer (*req_p), &cvm);
    umb_service_reply (self->service, req_p, status);
}

//  ---------------------------------------------------------------- runtime state

static void
s_cvm_rt_destroy (s_cvm_t **cvm_p)
{
    s_cvm_t *cvm = *cvm_p;
    if (!cvm)
        return;
    umb_backends_t *self = cvm->owner;
    if (cvm->link) {
        zloop_reader_end (umb_service_loop (self->service), zactor_sock (cvm->link));
        zactor_destroy (&cvm->link);
    }
    if (cvm->pidfd >= 0) {
        zmq_pollitem_t item = { .fd = cvm->pidfd, .events = ZMQ_POLLIN };
        zloop_poller_end (umb_service_loop (self->service), &item);
        close (cvm->pidfd);
    }
    //  Requests still waiting are answered by whoever holds them; here only
    //  at shutdown
    if (cvm->create_req) {
        umb_req_set_retryable (cvm->create_req);
        umb_req_fail (cvm->create_req, 503, NULL, "the service is stopping");
        umb_service_reply (self->service, &cvm->create_req, 503);
    }
    if (cvm->destroy_req) {
        umb_req_fail (cvm->destroy_req, 503, NULL, "the service is stopping");
        umb_service_reply (self->service, &cvm->destroy_req, 503);
    }
    if (cvm->manifest_req) {
        umb_req_fail (cvm->manifest_req, 503, NULL, "the service is stopping");
        umb_service_reply (self->service, &cvm->manifest_req, 503);
    }
    free (cvm->manifest);
    free (cvm);
    *cvm_p = NULL;
}

static s_cvm_t *
s_cvm_rt_new (umb_backends_t *self, const char *id, const char *host_id, int64_t expires_at)
{
    s_cvm_t *cvm = calloc (1, sizeof (s_cvm_t));
    assert (cvm);
    snprintf (cvm->id, sizeof cvm->id, "%s", id);
    snprintf (cvm->host_id, sizeof cvm->host_id, "%s", host_id);
    cvm->owner = self;
    cvm->expires_at = expires_at;
    cvm->pidfd = -1;
    cvm->started_ms = zclock_mono ();
    zhashx_insert (self->cvms, id, cvm);
    return cvm;
}

//  ---------------------------------------------------------------- libvirt events

//  On libvirt's event thread: copy out, nothing else (umb_virt.h)
static void
s_on_virt_event (const char *name, int event, int detail, void *arg)
{
    s_host_t *host = arg;
    if (!host->push) {
        host->push = zsock_new_push (host->push_endpoint);
        if (!host->push)
            return;
    }
    char event_text [16], detail_text [16];
    snprintf (event_text, sizeof event_text, "%d", event);
    snprintf (detail_text, sizeof detail_text, "%d", detail);
    zstr_sendx (host->push, host->id, name ? name : "", event_text, detail_text, NULL);
}

//  ---------------------------------------------------------------- the worker

static bool
s_ids_has (char **ids, const char *id)
{
    for (size_t index = 0; ids && ids [index]; index++)
        if (streq (ids [index], id))
            return true;
    return false;
}

static void
s_job_destroy (s_job_t **job_p)
{
    s_job_t *job = *job_p;
    if (!job)
        return;
    umb_driver_ids_free (&job->live);
    umb_driver_ids_free (&job->spared);
    umb_driver_ids_free (&job->orphans);
    umb_driver_ids_free (&job->adopted_reasons);
    free (job->adopted);
    zactor_destroy (&job->link);
    if (job->started.link_fd >= 0 && job->kind == S_JOB_CREATE)
        close (job->started.link_fd);
    if (job->started.pidfd >= 0 && job->kind == S_JOB_CREATE)
        close (job->started.pidfd);
    free (job);
    *job_p = NULL;
}

static s_job_t *
s_job_new (s_job_kind_t kind, s_host_t *host)
{
    s_job_t *job = calloc (1, sizeof (s_job_t));
    assert (job);
    job->kind = kind;
    job->host = host;
    job->started.link_fd = -1;
    job->started.pidfd = -1;
    return job;
}

static int
s_open (s_host_t *host, const umb_driver_env_t *env, char *reason, size_t reason_size)
{
    if (host->driver && umb_driver_alive (host->driver))
        return 0;
    if (host->driver) {
        umb_driver_events_stop (host->driver);
        zsock_destroy (&host->push);
        umb_driver_destroy (&host->driver);
    }
    host->driver = umb_driver_open (host->kind, host->uri, env, reason, reason_size);
    if (!host->driver)
        return -1;
    if (umb_driver_events_start (host->driver, s_on_virt_event, host)) {
        snprintf (reason, reason_size, "cannot watch the domain events of %.200s", host->uri);
        umb_driver_destroy (&host->driver);
        return -1;
    }
    return 0;
}

//  On the worker thread. The job's host (and its driver) belong to this
//  thread while the job runs.
//  Calls op on the certs service from the worker, with body (taken); on
//  failure the reply is NULL or not ok and job->reason says why
static umb_reply_t *
s_certs_call (umb_backends_t *self, const char *op, umb_w_t **body_p, s_job_t *job)
{
    umb_client_t *client = umb_runtime_client (self->runtime, "certs", self->cert);
    if (!client) {
        umb_w_destroy (body_p);
        snprintf (job->reason, sizeof job->reason, "no client of certs");
        return NULL;
    }
    umb_reply_t *reply = umb_client_callw (client, op, NULL, *body_p,
                                           (int) umb_config_int (self->config, "mesh.timeout_ms"),
                                           NULL);
    umb_w_destroy (body_p);
    if (!umb_reply_ok (reply))
        snprintf (job->reason, sizeof job->reason, "%d %s", umb_reply_status (reply),
                  umb_reply_error (reply) ? umb_reply_error (reply) : "");
    umb_client_destroy (&client);
    return reply;
}

static void
s_work (void *arg)
{
    s_job_t *job = arg;
    s_host_t *host = job->host;
    umb_backends_t *self = host->owner;
    job->rc = -1;
    switch (job->kind) {
        case S_JOB_OPEN:
            if (s_open (host, &self->env, job->reason, sizeof job->reason) == 0)
                job->rc = umb_driver_caps (host->driver, &job->caps, job->reason,
                                           sizeof job->reason);
            break;
        case S_JOB_RECONCILE: {
            if (s_open (host, &self->env, job->reason, sizeof job->reason))
                break;
            if (umb_driver_caps (host->driver, &job->caps, job->reason, sizeof job->reason))
                break;
            char **present = NULL;
            if (umb_driver_list (host->driver, &present, job->reason, sizeof job->reason))
                break;
            //  Orphans: umbra-* domains no live CVM owns. A live CVM of
            //  another host is not one: the same libvirt may be registered
            //  under two URIs (qemu:///system and qemu+unix:///system), and
            //  each registration must not destroy the other's domains
            size_t orphans = 0;
            job->orphans = calloc (1, sizeof (char *));
            for (size_t index = 0; present [index]; index++)
                if (!s_ids_has (job->live, present [index])
                &&  !s_ids_has (job->spared, present [index])) {
                    char why [256];
                    if (umb_driver_teardown (host->driver, present [index], why, sizeof why) == 0) {
                        job->orphans = realloc (job->orphans, (orphans + 2) * sizeof (char *));
                        job->orphans [orphans++] = strdup (present [index]);
                        job->orphans [orphans] = NULL;
                    }
                }
            size_t live = 0;
            while (job->live && job->live [live])
                live++;
            job->adopted = calloc (live + 1, sizeof (umb_driver_started_t));
            job->adopted_reasons = calloc (live + 1, sizeof (char *));
            for (size_t index = 0; index < live; index++) {
                char why [256] = "";
                if (umb_driver_adopt (host->driver, job->live [index], &job->adopted [index],
                                      why, sizeof why))
                    umb_driver_teardown (host->driver, job->live [index], NULL, 0);
                job->adopted_reasons [index] = strdup (why);
            }
            umb_driver_ids_free (&present);
            job->rc = 0;
            break;
        }
        case S_JOB_CREATE: {
            if (s_open (host, &self->env, job->reason, sizeof job->reason)) {
                job->open_failed = true;
                break;
            }
            umb_driver_spec_t spec = {
                .cvm_id = job->cvm_id, .workspace = job->workspace, .tee = job->tee,
                .vcpus = (unsigned) job->vcpus, .memory_mb = (uint64_t) job->memory_mb,
                .created = job->created, .ttl = job->ttl
            };
            job->rc = umb_driver_create (host->driver, &spec, &job->started, job->reason,
                                         sizeof job->reason);
            break;
        }
        case S_JOB_TEARDOWN:
            //  The link was told to stop when the teardown was asked for:
            //  it has ended, or ends within its poll, here rather than on the loop
            zactor_destroy (&job->link);
            if (s_open (host, &self->env, job->reason, sizeof job->reason))
                break;
            job->rc = umb_driver_teardown (host->driver, job->cvm_id, job->reason,
                                           sizeof job->reason);
            break;
        case S_JOB_BEHIND:
            //  As `virsh destroy` would: on the host, not through the lifecycle
            if (s_open (host, &self->env, job->reason, sizeof job->reason) == 0)
                job->rc = umb_driver_teardown (host->driver, job->cvm_id, job->reason,
                                               sizeof job->reason);
            break;
        case S_JOB_CLOSE:
            if (host->driver)
                umb_driver_events_stop (host->driver);
            zsock_destroy (&host->push);
            umb_driver_destroy (&host->driver);
            job->rc = 0;
            break;
        case S_JOB_CERTIFY: {
            char name [64];
            snprintf (name, sizeof name, "agent-%s", job->cvm_id);
            umb_w_t *w = umb_w_new ();
            umb_w_map_begin (w);
            umb_w_kv_str (w, "name", name);
            umb_w_kv_str (w, "public_key", job->agent_key);
            umb_w_map_end (w);
            umb_reply_t *reply = s_certs_call (self, "certs.mesh.issue", &w, job);
            if (umb_reply_ok (reply)) {
                const char *serial = umb_msg_str (umb_reply_body (reply), "serial", 64, false);
                snprintf (job->serial, sizeof job->serial, "%s", serial ? serial : "");
                job->rc = 0;
            }
            umb_reply_destroy (&reply);
            break;
        }
        case S_JOB_RETIRE: {
            umb_w_t *w = umb_w_new ();
            umb_w_map_begin (w);
            umb_w_kv_str (w, "serial", job->serial);
            umb_w_map_end (w);
            umb_reply_t *reply = s_certs_call (self, "certs.mesh.retire", &w, job);
            //  Revoked already (by an administrator) is as good
            if (umb_reply_ok (reply) || umb_reply_status (reply) == 409)
                job->rc = 0;
            umb_reply_destroy (&reply);
            break;
        }
    }
}

static void
s_submit (umb_backends_t *self, s_job_t *job)
{
    if (umb_worker_submit (self->worker, job)) {
        //  The queue is full: the work is done inline rather than lost
        umb_log_warn (self->log, "the worker queue is full; running a job on the loop");
        s_work (job);
        s_on_job (self, job, false);
    }
}

//  ---------------------------------------------------------------- events

static void
s_wake (umb_backends_t *self, const char *cvm_id, bool final);

static void
s_event (umb_backends_t *self, const char *cvm_id, const char *source, const char *type,
         const char *state, int64_t agent_seq, const char *format, ...)
{
    char message [4200];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    umb_backends_event_t event = { .time = s_now (), .source = source, .type = type,
                                   .state = state, .message = message, .agent_seq = agent_seq };
    int64_t seq = 0;
    if (umb_backends_store_event_append (self->store, cvm_id, &event, &seq)) {
        umb_log_error (self->log, "CVM %s: cannot store an event (%s)", cvm_id, message);
        return;
    }
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "cvm", cvm_id);
    umb_w_kv_int (w, "seq", seq);
    umb_w_map_end (w);
    umb_service_publish (self->service, "backends.cvm.event", w);
    umb_w_destroy (&w);
    s_wake (self, cvm_id, false);
}

//  ---------------------------------------------------------------- the lifecycle

static void s_actions (umb_backends_t *self, umb_backends_cvm_t *row, unsigned actions);

//  Applies event to the CVM: the table's next state is stored with an event,
//  then its actions run. -1 with the reason when the table refuses it.
static int
s_step (umb_backends_t *self, const char *cvm_id, umb_cvm_event_t event, const char *why,
        char *reason, size_t reason_size)
{
    umb_backends_cvm_t row;
    if (umb_backends_store_cvm_get (self->store, NULL, cvm_id, &row)) {
        snprintf (reason, reason_size, "no CVM '%s'", cvm_id);
        return -1;
    }
    int state = umb_cvm_state_parse (row.state);
    assert (state >= 0);
    umb_cvm_step_t step;
    if (umb_cvm_next ((umb_cvm_state_t) state, event, &step, reason, reason_size))
        return -1;
    const char *next = umb_cvm_state_str (step.next);
    if (step.next != (umb_cvm_state_t) state) {
        snprintf (row.state, sizeof row.state, "%s", next);
        if (why && (step.next == UMB_CVM_FAILED || step.next == UMB_CVM_STOPPING))
            snprintf (row.reason, sizeof row.reason, "%s", why);
        row.updated_at = s_now ();
        if (umb_backends_store_cvm_update (self->store, &row)) {
            snprintf (reason, reason_size, "storage error");
            return -1;
        }
        s_event (self, cvm_id, "backends", "state", next, 0, "%s -> %s%s%s",
                 umb_cvm_state_str ((umb_cvm_state_t) state), next, why ? ": " : "",
                 why ? why : "");
        umb_w_t *w = umb_w_new ();
        umb_w_map_begin (w);
        umb_w_kv_str (w, "cvm", cvm_id);
        umb_w_kv_str (w, "workspace_id", row.workspace_id);
        umb_w_kv_str (w, "state", next);
        s_write_opt (w, "reason", row.reason);
        umb_w_map_end (w);
        umb_service_publish (self->service, "backends.cvm.state", w);
        umb_w_destroy (&w);
        if (step.next == UMB_CVM_FAILED)
            umb_log_warn (self->log, "CVM %s failed: %s", cvm_id, why ? why : "");
        else
            umb_log_info (self->log, "CVM %s: %s", cvm_id, next);
        if (umb_cvm_final (step.next))
            s_wake (self, cvm_id, true);
    }
    s_actions (self, &row, step.actions);
    return 0;
}

static void
s_cvm_fail (umb_backends_t *self, const char *cvm_id, const char *reason)
{
    char why [256];
    if (s_step (self, cvm_id, UMB_CVM_EV_FAIL, reason, why, sizeof why))
        umb_log_debug (self->log, "CVM %s: %s (ignored: %s)", cvm_id, reason, why);
}

static void
s_record (umb_backends_t *self, const char *host_id, bool success, s_cvm_t *cvm)
{
    s_host_t *host = zhashx_lookup (self->hosts, host_id);
    if (!host)
        return;
    double boot = cvm ? (double) (zclock_mono () - cvm->started_ms) / 1000.0 : 0;
    umb_sched_record (self->sched, &host->rep, success, boot, zclock_time ());
}

static void
s_teardown (umb_backends_t *self, s_cvm_t *cvm)
{
    if (cvm->teardown)
        return;
    cvm->teardown = true;
    zactor_t *link = NULL;
    if (cvm->link) {
        //  The link stops now, and is reaped by the worker with the domain: a
        //  link in the middle of a poll must not hold up the loop
        zloop_reader_end (umb_service_loop (self->service), zactor_sock (cvm->link));
        zstr_send (cvm->link, "$TERM");
        link = cvm->link;
        cvm->link = NULL;
        cvm->link_ready = false;
    }
    if (cvm->pidfd >= 0) {
        zmq_pollitem_t item = { .fd = cvm->pidfd, .events = ZMQ_POLLIN };
        zloop_poller_end (umb_service_loop (self->service), &item);
        close (cvm->pidfd);
        cvm->pidfd = -1;
    }
    s_host_t *host = zhashx_lookup (self->hosts, cvm->host_id);
    assert (host);
    s_job_t *job = s_job_new (S_JOB_TEARDOWN, host);
    snprintf (job->cvm_id, sizeof job->cvm_id, "%s", cvm->id);
    job->link = link;
    s_submit (self, job);
}

static void
s_actions (umb_backends_t *self, umb_backends_cvm_t *row, unsigned actions)
{
    s_cvm_t *cvm = zhashx_lookup (self->cvms, row->id);
    if ((actions & UMB_CVM_DO_RECORD) && cvm)
        s_record (self, row->host_id, streq (row->state, "Running")
                                   || streq (row->state, "AgentReady"), cvm);
    if ((actions & UMB_CVM_DO_CERTIFY) && cvm) {
        if (!self->certify)
            umb_log_info (self->log, "CVM %s: the agent's key is not certified "
                          "(backends.certify_agents is off)", row->id);
        else {
            s_job_t *job = s_job_new (S_JOB_CERTIFY, zhashx_lookup (self->hosts, row->host_id));
            snprintf (job->cvm_id, sizeof job->cvm_id, "%s", row->id);
            snprintf (job->agent_key, sizeof job->agent_key, "%s", row->agent_key);
            s_submit (self, job);
        }
    }
    if ((actions & UMB_CVM_DO_MANIFEST) && cvm && cvm->manifest && cvm->link)
        zstr_sendx (cvm->link, "MANIFEST", "auto", cvm->manifest, NULL);
    if ((actions & UMB_CVM_DO_STOP_AGENT) && cvm && cvm->link && cvm->link_ready
    &&  !cvm->stop_sent) {
        //  The teardown follows the agent's answer (or the link's refusal)
        cvm->stop_sent = true;
        zstr_sendx (cvm->link, "STOP", "stop", row->reason, NULL);
        return;
    }
    if ((actions & UMB_CVM_DO_TEARDOWN) && cvm)
        s_teardown (self, cvm);
    else
    if ((actions & UMB_CVM_DO_TEARDOWN) && !cvm) {
        //  A final CVM with nothing at run time (Failed, destroyed now):
        //  make sure the host has nothing left of it
        s_host_t *host = zhashx_lookup (self->hosts, row->host_id);
        if (host) {
            cvm = s_cvm_rt_new (self, row->id, row->host_id, row->expires_at);
            s_teardown (self, cvm);
        }
    }
}

//  ---------------------------------------------------------------- agent links

static void
s_link_reply (umb_backends_t *self, s_cvm_t *cvm, zmsg_t *msg)
{
    char *tag = zmsg_popstr (msg);
    char *status_text = zmsg_popstr (msg);
    char *code = zmsg_popstr (msg);
    char *error = zmsg_popstr (msg);
    char *agent_state = zmsg_popstr (msg);
    int status = status_text ? atoi (status_text) : 500;
    char reason [256];
    if (tag && streq (tag, "auto")) {
        if (status == 200) {
            if (s_step (self, cvm->id, UMB_CVM_EV_MANIFEST_OK, NULL, reason, sizeof reason))
                umb_log_warn (self->log, "CVM %s: %s", cvm->id, reason);
        }
        else {
            char why [600];
            snprintf (why, sizeof why, "the manifest was refused: %s", error ? error : "");
            s_cvm_fail (self, cvm->id, why);
        }
    }
    else
    if (tag && streq (tag, "user") && cvm->manifest_req) {
        umb_req_t *req = cvm->manifest_req;
        cvm->manifest_req = NULL;
        if (status == 200) {
            if (s_step (self, cvm->id, UMB_CVM_EV_MANIFEST_OK, NULL, reason, sizeof reason))
                umb_log_warn (self->log, "CVM %s: %s", cvm->id, reason);
            umb_backends_cvm_t row;
            if (umb_backends_store_cvm_get (self->store, NULL, cvm->id, &row))
                umb_service_reply (self->service, &req, s_storage_error (self, req));
            else {
                umb_w_t *w = umb_req_body_writer (req);
                umb_w_map_begin (w);
                umb_w_key (w, "cvm");
                s_write_cvm (self, w, &row);
                umb_w_kv_str (w, "agent_state", agent_state ? agent_state : "");
                umb_w_map_end (w);
                umb_service_reply (self->service, &req, 200);
            }
        }
        else {
            if (status < 400 || status > 599)
                status = 502;
            umb_req_fail (req, status, code && *code ? code : NULL, "the agent: %s",
                          error && *error ? error : "no answer");
            umb_service_reply (self->service, &req, status);
        }
    }
    else
    if (tag && streq (tag, "stop")) {
        //  Best effort: whatever the agent said, the domain goes now
        if (status != 200)
            umb_log_info (self->log, "CVM %s: agent.control.stop: %d %s", cvm->id, status,
                          error ? error : "");
        s_teardown (self, cvm);
    }
    zstr_free (&tag);
    zstr_free (&status_text);
    zstr_free (&code);
    zstr_free (&error);
    zstr_free (&agent_state);
}

static int
s_on_link (zloop_t *loop, zsock_t *sock, void *arg)
{
    s_cvm_t *cvm = arg;
    umb_backends_t *self = cvm->owner;
    zmsg_t *msg = zmsg_recv (sock);
    if (!msg)
        return 0;
    char *command = zmsg_popstr (msg);
    umb_backends_cvm_t row;
    bool have_row = umb_backends_store_cvm_get (self->store, NULL, cvm->id, &row) == 0;
    char reason [256];
    if (!command || !have_row)
        ;
    else
    if (streq (command, "ENDPOINTS")) {
        char *agent = zmsg_popstr (msg);
        char *attest = zmsg_popstr (msg);
        snprintf (row.agent_endpoint, sizeof row.agent_endpoint, "%s", agent ? agent : "");
        snprintf (row.attest_endpoint, sizeof row.attest_endpoint, "%s", attest ? attest : "");
        row.updated_at = s_now ();
        umb_backends_store_cvm_update (self->store, &row);
        zstr_free (&agent);
        zstr_free (&attest);
    }
    else
    if (streq (command, "READY")) {
        char *key = zmsg_popstr (msg);
        char *platform = zmsg_popstr (msg);
        char *insecure = zmsg_popstr (msg);
        bool is_insecure = insecure && streq (insecure, "1");
        snprintf (row.agent_key, sizeof row.agent_key, "%s", key ? key : "");
        snprintf (row.agent, sizeof row.agent, "%s", is_insecure ? "insecure" : "verified");
        row.insecure = row.insecure || is_insecure;
        row.updated_at = s_now ();
        umb_backends_store_cvm_update (self->store, &row);
        cvm->link_ready = true;
        if (is_insecure) {
            umb_log_warn (self->log, "CVM %s: INSECURE: the agent's attestation is 'none' "
                          "(accepted: the host is insecure_dev)", cvm->id);
            s_event (self, cvm->id, "backends", "info", row.state, 0,
                     "insecure: the agent's attestation is none (insecure_dev host); nothing "
                     "is attested");
        }
        if (s_step (self, cvm->id, UMB_CVM_EV_AGENT_READY, NULL, reason, sizeof reason))
            umb_log_warn (self->log, "CVM %s: %s", cvm->id, reason);
        zstr_free (&key);
        zstr_free (&platform);
        zstr_free (&insecure);
    }
    else
    if (streq (command, "EVENTS")) {
        char *count_text = zmsg_popstr (msg);
        long count = count_text ? atol (count_text) : 0;
        zstr_free (&count_text);
        int64_t last = row.agent_seq;
        bool stored = true;
        for (long index = 0; index < count && stored; index++) {
            char *seq = zmsg_popstr (msg);
            char *when = zmsg_popstr (msg);
            char *type = zmsg_popstr (msg);
            char *state = zmsg_popstr (msg);
            char *message = zmsg_popstr (msg);
            int64_t agent_seq = seq ? atoll (seq) : 0;
            //  An event stored before a restart is not stored twice
            if (agent_seq > last && message) {
                umb_backends_event_t event = {
                    .time = when ? atoll (when) : s_now (), .source = "agent",
                    .type = type ? type : "", .state = state ? state : "",
                    .message = message, .agent_seq = agent_seq };
                if (umb_backends_store_event_append (self->store, cvm->id, &event, NULL))
                    stored = false;
                else
                    last = agent_seq;
            }
            zstr_free (&seq);
            zstr_free (&when);
            zstr_free (&type);
            zstr_free (&state);
            zstr_free (&message);
        }
        if (last > row.agent_seq) {
            s_wake (self, cvm->id, false);
            umb_w_t *w = umb_w_new ();
            umb_w_map_begin (w);
            umb_w_kv_str (w, "cvm", cvm->id);
            umb_w_kv_int (w, "seq", last);
            umb_w_map_end (w);
            umb_service_publish (self->service, "backends.cvm.event", w);
            umb_w_destroy (&w);
        }
        //  Acknowledged to the agent only once stored
        char ack [32];
        snprintf (ack, sizeof ack, "%lld", (long long) last);
        zstr_sendx (sock, "ACK", ack, NULL);
    }
    else
    if (streq (command, "FAILED")) {
        char *why = zmsg_popstr (msg);
        s_cvm_fail (self, cvm->id, why ? why : "the agent link failed");
        zstr_free (&why);
    }
    else
    if (streq (command, "REPLY"))
        s_link_reply (self, cvm, msg);
    zstr_free (&command);
    zmsg_destroy (&msg);
    (void) loop;
    return 0;
}

static int
s_on_pidfd (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_cvm_t *cvm = arg;
    umb_backends_t *self = cvm->owner;
    zloop_poller_end (loop, item);
    close (cvm->pidfd);
    cvm->pidfd = -1;
    //  The worker reaps it at teardown; read how it ended without reaping
    siginfo_t info = { 0 };
    char why [128] = "the agent process died";
    if (waitid (P_PID, (id_t) cvm->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0
    &&  info.si_pid == cvm->pid) {
        if (info.si_code == CLD_EXITED)
            snprintf (why, sizeof why, "the agent process died (exit status %d)", info.si_status);
        else
            snprintf (why, sizeof why, "the agent process died (signal %d)", info.si_status);
    }
    s_cvm_fail (self, cvm->id, why);
    return 0;
}

//  Starts the host side of a CVM's link.
static void
s_link_start (umb_backends_t *self, s_cvm_t *cvm, const umb_driver_started_t *started,
              bool insecure_dev, int64_t after)
{
    char *control = zsys_sprintf ("%s/links/%s.control", self->dir, cvm->id);
    char reason [512];
    cvm->link = umb_agent_link_new (&(umb_agent_link_config_t) {
        .cvm_id = cvm->id, .link = started->link, .control_path = control,
        .participant_address = umb_config_str (self->config, "backends.participant_address"),
        .identity = self->cert, .insecure_dev = insecure_dev, .after = after,
        .boot_timeout_ms = self->boot_timeout_ms, .agent_timeout_ms = self->agent_timeout_ms,
        .poll_ms = 500, .log = self->log }, reason, sizeof reason);
    free (control);
    if (!cvm->link) {
        s_cvm_fail (self, cvm->id, reason);
        return;
    }
    zloop_reader (umb_service_loop (self->service), zactor_sock (cvm->link), s_on_link, cvm);
}

//  ---------------------------------------------------------------- job results

static void s_on_register_done (umb_backends_t *self, s_job_t *job);
static void s_on_reconcile_done (umb_backends_t *self, s_job_t *job);

static void
s_on_create_done (umb_backends_t *self, s_job_t *job)
{
    s_cvm_t *cvm = zhashx_lookup (self->cvms, job->cvm_id);
    if (!cvm) {
        umb_log_warn (self->log, "CVM %s vanished while it was created", job->cvm_id);
        return;
    }
    char reason [512];
    //  The host cannot be reached: another one is tried, unless the creator named it
    umb_backends_cvm_t row;
    s_host_t *failed = zhashx_lookup (self->hosts, cvm->host_id);
    if (job->rc && job->open_failed && failed && !cvm->teardown
    &&  umb_backends_store_cvm_get (self->store, NULL, cvm->id, &row) == 0) {
        failed->reachable = false;
        umb_backends_store_host_status (self->store, failed->id, "unreachable", job->reason);
        umb_sched_record (self->sched, &failed->rep, false, 0, zclock_time ());
        umb_backends_host_t chosen;
        if (!cvm->pinned && cvm->attempts < 3
        &&  s_pick (self, NULL, row.workspace_id, NULL, umb_domain_tee_parse (row.tee),
                    row.vcpus, row.memory_mb, &chosen, reason, sizeof reason) == 0
        &&  !streq (chosen.id, failed->id)
        &&  umb_backends_store_cvm_move (self->store, cvm->id, chosen.id) == 0) {
            s_event (self, cvm->id, "backends", "info", row.state, 0, "host %s cannot be "
                     "reached (%s); trying host %s", failed->uri, job->reason, chosen.name);
            snprintf (cvm->host_id, sizeof cvm->host_id, "%s", chosen.id);
            cvm->attempts++;
            s_job_t *retry = s_job_new (S_JOB_CREATE, zhashx_lookup (self->hosts, chosen.id));
            snprintf (retry->cvm_id, sizeof retry->cvm_id, "%s", job->cvm_id);
            snprintf (retry->workspace, sizeof retry->workspace, "%s", job->workspace);
            snprintf (retry->tee, sizeof retry->tee, "%s", job->tee);
            retry->vcpus = job->vcpus;
            retry->memory_mb = job->memory_mb;
            retry->created = job->created;
            retry->ttl = job->ttl;
            s_submit (self, retry);
            return;
        }
    }
    umb_req_t *req = cvm->create_req;
    cvm->create_req = NULL;
    if (job->rc) {
        char why [900];
        snprintf (why, sizeof why, "%s", job->reason);
        s_cvm_fail (self, cvm->id, why);
        if (req) {
            umb_req_fail (req, 502, "host_failed", "%s", why);
            umb_service_reply (self->service, &req, 502);
        }
        return;
    }
    if (s_step (self, cvm->id, UMB_CVM_EV_DEFINED, NULL, reason, sizeof reason) == 0) {
        if (*job->started.accel)
            s_event (self, cvm->id, "backends", "info", "Booting", 0, "the VM runs under %s",
                     streq (job->started.accel, "kvm") ? "KVM" : "TCG (software emulation)");
        if (job->started.has_agent) {
            s_step (self, cvm->id, UMB_CVM_EV_STARTED, NULL, reason, sizeof reason);
            if (job->started.pidfd >= 0) {
                cvm->pidfd = job->started.pidfd;
                cvm->pid = job->started.pid;
                job->started.pidfd = -1;
                zmq_pollitem_t item = { .fd = cvm->pidfd, .events = ZMQ_POLLIN };
                zloop_poller (umb_service_loop (self->service), &item, s_on_pidfd, cvm);
            }
            s_host_t *host = zhashx_lookup (self->hosts, cvm->host_id);
            job->started.link_fd = -1;          //  the bridge owns it now
            s_link_start (self, cvm, &job->started, host && host->insecure_dev, 0);
        }
        else {
            if (umb_backends_store_cvm_get (self->store, NULL, cvm->id, &row) == 0) {
                snprintf (row.agent, sizeof row.agent, "none (test driver: no guest)");
                umb_backends_store_cvm_update (self->store, &row);
            }
            s_event (self, cvm->id, "backends", "info", "Booting", 0,
                     "test driver: there is no guest; the agent part is skipped");
            s_step (self, cvm->id, UMB_CVM_EV_NO_AGENT, NULL, reason, sizeof reason);
        }
    }
    else {
        //  Destroyed while it was being created: the teardown is queued after us
        umb_log_info (self->log, "CVM %s: %s", cvm->id, reason);
        if (job->started.link_fd >= 0)
            close (job->started.link_fd);
        job->started.link_fd = -1;
    }
    if (req)
        s_reply_cvm (self, &req, 201, cvm->id);
}

//  The CVM is gone: its agent's mesh certificate is revoked, so the key is
//  shut out of the mesh (certs.mesh.retire; the service asked for it)
static void
s_retire (umb_backends_t *self, const umb_backends_cvm_t *row)
{
    s_host_t *host = zhashx_lookup (self->hosts, row->host_id);
    if (!host) {
        umb_log_warn (self->log, "CVM %s is gone, its host too: revoke its agent's mesh "
                      "certificate %s with certs.mesh.revoke", row->id, row->mesh_cert);
        return;
    }
    s_job_t *job = s_job_new (S_JOB_RETIRE, host);
    snprintf (job->cvm_id, sizeof job->cvm_id, "%s", row->id);
    snprintf (job->serial, sizeof job->serial, "%s", row->mesh_cert);
    s_submit (self, job);
}

static void
s_on_retire_done (umb_backends_t *self, s_job_t *job)
{
    umb_backends_cvm_t row;
    if (umb_backends_store_cvm_get (self->store, NULL, job->cvm_id, &row))
        return;
    if (job->rc)
        umb_log_warn (self->log, "CVM %s: its agent's mesh certificate %s could not be revoked "
                      "(%s); a platform administrator can (certs.mesh.revoke)", row.id,
                      job->serial, job->reason);
    else
        s_event (self, row.id, "backends", "info", row.state, 0,
                 "the agent's mesh certificate %s is revoked", job->serial);
}

static void
s_on_teardown_done (umb_backends_t *self, s_job_t *job)
{
    s_cvm_t *cvm = zhashx_lookup (self->cvms, job->cvm_id);
    char reason [256];
    if (job->rc)
        umb_log_warn (self->log, "CVM %s: teardown: %s", job->cvm_id, job->reason);
    umb_backends_cvm_t row;
    if (umb_backends_store_cvm_get (self->store, NULL, job->cvm_id, &row) == 0) {
        if (streq (row.state, "Stopping"))
            s_step (self, job->cvm_id, UMB_CVM_EV_GONE, NULL, reason, sizeof reason);
        if (*row.mesh_cert)
            s_retire (self, &row);
    }
    if (cvm) {
        if (cvm->destroy_req)
            s_reply_cvm (self, &cvm->destroy_req, 200, cvm->id);
        zhashx_delete (self->cvms, job->cvm_id);
    }
}

static void
s_on_certify_done (umb_backends_t *self, s_job_t *job)
{
    umb_backends_cvm_t row;
    if (job->rc) {
        umb_log_warn (self->log, "CVM %s: certs did not certify the agent's key: %s",
                      job->cvm_id, job->reason);
        return;
    }
    if (umb_backends_store_cvm_get (self->store, NULL, job->cvm_id, &row) == 0) {
        snprintf (row.mesh_cert, sizeof row.mesh_cert, "%s", job->serial);
        row.updated_at = s_now ();
        umb_backends_store_cvm_update (self->store, &row);
        s_event (self, row.id, "backends", "info", row.state, 0,
                 "the agent's key holds mesh certificate %s", job->serial);
        //  The CVM went while certs was asked: the certificate goes with it
        if (streq (row.state, "Destroyed") || streq (row.state, "Failed"))
            s_retire (self, &row);
    }
}

static void
s_on_job (void *arg, void *job_arg, bool cancelled)
{
    umb_backends_t *self = arg;
    s_job_t *job = job_arg;
    if (cancelled) {
        if (job->req) {
            umb_req_fail (job->req, 503, NULL, "the service is stopping");
            umb_service_reply (self->service, &job->req, 503);
        }
        if (job->owns_host || job->kind == S_JOB_CLOSE) {
            if (job->host->driver)
                umb_driver_events_stop (job->host->driver);
            zsock_destroy (&job->host->push);
            umb_driver_destroy (&job->host->driver);
            free (job->host);
        }
        s_job_destroy (&job);
        return;
    }
    switch (job->kind) {
        case S_JOB_OPEN:      s_on_register_done (self, job); break;
        case S_JOB_RECONCILE: s_on_reconcile_done (self, job); break;
        case S_JOB_CREATE:    s_on_create_done (self, job); break;
        case S_JOB_TEARDOWN:  s_on_teardown_done (self, job); break;
        case S_JOB_CERTIFY:   s_on_certify_done (self, job); break;
        case S_JOB_RETIRE:    s_on_retire_done (self, job); break;
        case S_JOB_BEHIND:
            if (job->rc)
                umb_log_warn (self->log, "cannot destroy %s behind the service: %s",
                              job->cvm_id, job->reason);
            break;
        case S_JOB_CLOSE:
            free (job->host);
            break;
    }
    s_job_destroy (&job);
}

//  ---------------------------------------------------------------- hosts

static s_host_t *
s_host_new (umb_backends_t *self, const char *id, const char *uri, umb_driver_kind_t kind,
            bool insecure_dev)
{
    s_host_t *host = calloc (1, sizeof (s_host_t));
    assert (host);
    snprintf (host->id, sizeof host->id, "%s", id);
    snprintf (host->uri, sizeof host->uri, "%s", uri);
    snprintf (host->push_endpoint, sizeof host->push_endpoint, "%s", self->virt_endpoint);
    host->kind = kind;
    host->insecure_dev = insecure_dev;
    host->owner = self;
    return host;
}

static void
s_on_register_done (umb_backends_t *self, s_job_t *job)
{
    umb_req_t *req = job->req;
    job->req = NULL;
    s_host_t *host = job->host;
    umb_msg_t *body = umb_req_body (req);
    if (job->rc) {
        umb_req_fail (req, 502, "host_unreachable", "cannot reach %s: %s", host->uri, job->reason);
        umb_service_reply (self->service, &req, 502);
        //  Nothing is stored; the worker closes what it opened
        s_submit (self, s_job_new (S_JOB_CLOSE, host));
        return;
    }
    umb_backends_host_t row = { 0 };
    snprintf (row.id, sizeof row.id, "%s", host->id);
    snprintf (row.workspace_id, sizeof row.workspace_id, "%s", umb_req_workspace (req));
    snprintf (row.name, sizeof row.name, "%s", umb_msg_str (body, "name", 128, true));
    snprintf (row.uri, sizeof row.uri, "%s", host->uri);
    snprintf (row.driver, sizeof row.driver, "%s", umb_driver_kind_str (host->kind));
    row.insecure_dev = host->insecure_dev;
    snprintf (row.status, sizeof row.status, "up");
    snprintf (row.tees, sizeof row.tees, "%s", job->caps.tees);
    row.cpus = job->caps.cpus;
    row.memory_mb = job->caps.memory_mb;
    row.kvm = job->caps.kvm;
    snprintf (row.created_by, sizeof row.created_by, "%s", umb_req_principal (req)->subject);
    row.created_at = s_now ();
    int rc = umb_backends_store_host_insert (self->store, &row);
    if (rc) {
        if (rc == UMB_STORE_CONSTRAINT)
            umb_req_fail (req, 409, "duplicate_host", "a host named '%s' or the URI %s is "
                          "registered already", row.name, row.uri);
        int status = rc == UMB_STORE_CONSTRAINT ? 409 : s_storage_error (self, req);
        umb_service_reply (self->service, &req, status);
        s_submit (self, s_job_new (S_JOB_CLOSE, host));
        return;
    }
    host->reachable = true;
    zhashx_insert (self->hosts, host->id, host);
    job->owns_host = false;
    if (host->insecure_dev)
        umb_log_warn (self->log, "host %s (%s) is INSECURE: its agents' attestation 'none' is "
                      "accepted", row.name, row.uri);
    umb_log_info (self->log, "host %s registered: %s, driver %s, TEEs %s, %lld CPUs, %lld MiB",
                  row.name, row.uri, row.driver, row.tees, (long long) row.cpus,
                  (long long) row.memory_mb);
    s_write_host (self, umb_req_body_writer (req), &row);
    umb_service_reply (self->service, &req, 201);
}

static void
s_on_reconcile_done (umb_backends_t *self, s_job_t *job)
{
    s_host_t *host = job->host;
    host->reconnecting = false;
    if (job->restart)
        self->reconciled++;
    if (job->rc) {
        if (host->reachable || job->restart)
            umb_log_warn (self->log, "host %s is unreachable: %s", host->uri, job->reason);
        host->reachable = false;
        umb_backends_store_host_status (self->store, host->id, "unreachable", job->reason);
        return;
    }
    if (!host->reachable && !job->restart)
        umb_log_info (self->log, "host %s is reachable again", host->uri);
    host->reachable = true;
    umb_backends_store_host_status (self->store, host->id, "up", NULL);
    for (size_t index = 0; job->orphans && job->orphans [index]; index++, self->orphans++)
        umb_log_warn (self->log, "host %s: destroyed the orphan domain %s%s", host->uri,
                      UMB_DOMAIN_NAME_PREFIX, job->orphans [index]);
    for (size_t index = 0; job->live && job->live [index]; index++) {
        const char *id = job->live [index];
        const char *why = job->adopted_reasons [index];
        s_cvm_t *cvm = zhashx_lookup (self->cvms, id);
        if (cvm && (cvm->teardown || cvm->create_req))
            continue;               //  under way here: not for reconciliation
        if (*why) {
            s_cvm_fail (self, id, why);
            continue;
        }
        umb_backends_cvm_t row;
        if (umb_backends_store_cvm_get (self->store, NULL, id, &row))
            continue;
        if (cvm && (cvm->link || !job->adopted [index].has_agent))
            continue;               //  it ran on through the outage
        if (!cvm)
            cvm = s_cvm_rt_new (self, id, host->id, row.expires_at);
        umb_log_info (self->log, "CVM %s adopted on %s (%s)", id, host->uri, row.state);
        s_event (self, id, "backends", "info", row.state, 0, "adopted %s",
                 job->restart ? "after a restart of the service" : "after the host came back");
        if (streq (row.state, "Stopping"))
            s_teardown (self, cvm);
        else
        if (job->restart && (streq (row.state, "Requested") || streq (row.state, "Defining")))
            s_cvm_fail (self, id, "the service stopped while the CVM was being created");
        else
        if (job->adopted [index].has_agent)
            s_link_start (self, cvm, &job->adopted [index], host->insecure_dev, row.agent_seq);
    }
}

typedef struct {
    umb_backends_t *self;
    const char     *host_id;
    zlistx_t       *ids;            //  live CVMs of the host
    zlistx_t       *others;         //  live CVMs of other hosts
} s_live_t;

static void
s_collect_live (const umb_backends_cvm_t *cvm, void *arg)
{
    s_live_t *live = arg;
    zlistx_add_end (streq (cvm->host_id, live->host_id) ? live->ids : live->others,
                    strdup (cvm->id));
}

//  The ids of list as a NULL-terminated array; list is emptied
static char **
s_ids_take (zlistx_t *list)
{
    char **ids = calloc (zlistx_size (list) + 1, sizeof (char *));
    assert (ids);
    size_t index = 0;
    for (char *id = zlistx_first (list); id; id = zlistx_next (list))
        ids [index++] = id;
    return ids;
}

//  Lists the host's domains against the store: adopts, cleans up orphans
static void
s_reconcile (umb_backends_t *self, s_host_t *host, bool restart)
{
    s_live_t live = { self, host->id, zlistx_new (), zlistx_new () };
    umb_backends_store_cvm_live (self->store, s_collect_live, &live);
    s_job_t *job = s_job_new (S_JOB_RECONCILE, host);
    job->restart = restart;
    job->live = s_ids_take (live.ids);
    job->spared = s_ids_take (live.others);
    zlistx_destroy (&live.ids);
    zlistx_destroy (&live.others);
    host->reconnecting = true;
    s_submit (self, job);
}

static void
s_reconcile_host (umb_backends_t *self, const umb_backends_host_t *row, void *unused)
{
    (void) unused;
    int kind = umb_driver_kind_parse (row->driver);
    assert (kind >= 0);
    s_host_t *host = s_host_new (self, row->id, row->uri, (umb_driver_kind_t) kind,
                                 row->insecure_dev);
    host->reachable = streq (row->status, "up");
    zhashx_insert (self->hosts, host->id, host);
    s_reconcile (self, host, true);
}

static void
s_reconcile_each (const umb_backends_host_t *row, void *arg)
{
    s_reconcile_host ((umb_backends_t *) arg, row, NULL);
}

//  Domain events from libvirt's thread
static int
s_on_virt (zloop_t *loop, zsock_t *sock, void *arg)
{
    umb_backends_t *self = arg;
    char *host_id = NULL, *name = NULL, *event_text = NULL, *detail_text = NULL;
    if (zstr_recvx (sock, &host_id, &name, &event_text, &detail_text, NULL) != 4)
        goto done;
    int event = atoi (event_text), detail = atoi (detail_text);
    s_host_t *host = zhashx_lookup (self->hosts, host_id);
    if (event == UMB_VIRT_EVENT_CONNECTION_LOST) {
        if (host) {
            host->reachable = false;
            umb_backends_store_host_status (self->store, host->id, "unreachable",
                                            "the libvirt connection was lost");
            umb_log_warn (self->log, "host %s: the libvirt connection was lost", host->uri);
        }
        goto done;
    }
    size_t prefix = strlen (UMB_DOMAIN_NAME_PREFIX);
    if (strncmp (name, UMB_DOMAIN_NAME_PREFIX, prefix) != 0)
        goto done;
    const char *cvm_id = name + prefix;
    umb_backends_cvm_t row;
    if (umb_backends_store_cvm_get (self->store, NULL, cvm_id, &row))
        goto done;
    umb_log_debug (self->log, "domain %s: %s (%d)", name, umb_virt_event_str (event), detail);
    bool ended = event == UMB_VIRT_EVENT_STOPPED || event == UMB_VIRT_EVENT_CRASHED
              || event == UMB_VIRT_EVENT_UNDEFINED;
    s_cvm_t *cvm = zhashx_lookup (self->cvms, cvm_id);
    //  Ours to end: Stopping, or a teardown under way
    if (ended && !umb_cvm_final ((umb_cvm_state_t) umb_cvm_state_parse (row.state))
    &&  !streq (row.state, "Stopping") && !(cvm && cvm->teardown)) {
        bool crashed = event == UMB_VIRT_EVENT_CRASHED
                    || (event == UMB_VIRT_EVENT_STOPPED && detail == UMB_VIRT_STOPPED_CRASHED);
        s_cvm_fail (self, cvm_id, crashed ? "the VM crashed"
                                          : "the VM was destroyed behind the service's back");
        s_record (self, row.host_id, false, NULL);
    }
done:
    zstr_free (&host_id);
    zstr_free (&name);
    zstr_free (&event_text);
    zstr_free (&detail_text);
    (void) loop;
    return 0;
}

//  ---------------------------------------------------------------- TTL

static void s_meter (umb_backends_t *self, int64_t now);

//  The CVMs by state, for /metrics
static void
s_gauge_states (umb_backends_t *self)
{
    const char *states [UMB_CVM_STATES + 1] = { NULL };
    for (int state = 0; state < UMB_CVM_STATES; state++)
        states [state] = umb_cvm_state_str ((umb_cvm_state_t) state);
    int64_t counts [UMB_CVM_STATES];
    if (umb_store_counts (umb_store_query (self->store,
            "SELECT state, COUNT(*) FROM cvms GROUP BY state", ""), states, counts))
        return;
    for (int state = 0; state < UMB_CVM_STATES; state++) {
        char labels [64];
        snprintf (labels, sizeof labels, "state=\"%s\"", states [state]);
        umb_metrics_gauge (umb_service_metrics (self->service), "umbra_cvms",
                           "confidential VMs, by state", labels, (double) counts [state]);
    }
}

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    umb_backends_t *self = arg;
    int64_t now = s_now ();
    zlistx_t *expired = zlistx_new ();
    for (s_cvm_t *cvm = zhashx_first (self->cvms); cvm; cvm = zhashx_next (self->cvms))
        if (cvm->expires_at && cvm->expires_at <= now && !cvm->teardown)
            zlistx_add_end (expired, cvm->id);
    for (char *id = zlistx_first (expired); id; id = zlistx_next (expired)) {
        char reason [256];
        if (s_step (self, id, UMB_CVM_EV_TTL, "ttl expired", reason, sizeof reason) == 0)
            umb_log_info (self->log, "CVM %s: ttl expired", id);
    }
    zlistx_destroy (&expired);
    if (umb_billing_client_enabled (self->billing) && self->ticks % S_METER_TICKS == 0)
        s_meter (self, now);
    if (self->ticks % S_GAUGE_TICKS == 0)
        s_gauge_states (self);
    //  Unreachable hosts are tried again now and then
    if (++self->ticks % S_RECONNECT_TICKS == 0)
        for (s_host_t *host = zhashx_first (self->hosts); host; host = zhashx_next (self->hosts))
            if (!host->reachable && !host->reconnecting)
                s_reconcile (self, host, false);
    (void) loop;
    (void) timer_id;
    return 0;
}

//  ---------------------------------------------------------------- events.pull

static void
s_write_event (const umb_backends_event_t *event, void *arg)
{
    umb_w_t *w = arg;
    umb_w_map_begin (w);
    umb_w_kv_int (w, "seq", event->seq);
    umb_w_kv_int (w, "time", event->time);
    umb_w_kv_str (w, "source", event->source);
    umb_w_kv_str (w, "type", event->type);
    umb_w_kv_str (w, "state", event->state);
    umb_w_kv_str (w, "message", event->message);
    umb_w_key (w, "agent_seq");
    if (event->agent_seq)
        umb_w_int (w, event->agent_seq);
    else
        umb_w_nil (w);
    umb_w_map_end (w);
}

static int
s_pull_answer (umb_backends_t *self, umb_req_t *req, const char *cvm_id, int64_t after,
               int64_t max)
{
    umb_backends_cvm_t row;
    if (umb_backends_store_cvm_get (self->store, NULL, cvm_id, &row))
        return s_storage_error (self, req);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_key (w, "events");
    umb_w_array_begin (w);
    if (umb_backends_store_events (self->store, cvm_id, after, max, s_write_event, w)) {
        umb_w_reset (w);
        return s_storage_error (self, req);
    }
    umb_w_array_end (w);
    umb_w_kv_int (w, "last", row.events);
    umb_w_kv_int (w, "acked", row.acked);
    umb_w_kv_str (w, "state", row.state);
    umb_w_map_end (w);
    return 200;
}

static void
s_waiter_answer (umb_backends_t *self, s_waiter_t *waiter)
{
    int status = s_pull_answer (self, waiter->req, waiter->cvm_id, waiter->after, waiter->max);
    umb_service_reply (self->service, &waiter->req, status);
}

static int
s_on_waiter_timer (zloop_t *loop, int timer_id, void *arg)
{
    s_waiter_t *waiter = arg;
    umb_backends_t *self = waiter->owner;
    void *handle = zlistx_find (self->waiters, waiter);
    if (handle) {
        zlistx_detach (self->waiters, handle);
        s_waiter_answer (self, waiter);
        free (waiter);
    }
    (void) loop;
    (void) timer_id;
    return 0;
}

static void
s_wake (umb_backends_t *self, const char *cvm_id, bool final)
{
    (void) final;
    zlistx_t *ready = zlistx_new ();
    for (s_waiter_t *waiter = zlistx_first (self->waiters); waiter;
         waiter = zlistx_next (self->waiters))
        if (streq (waiter->cvm_id, cvm_id))
            zlistx_add_end (ready, waiter);
    for (s_waiter_t *waiter = zlistx_first (ready); waiter; waiter = zlistx_next (ready)) {
        zlistx_delete (self->waiters, zlistx_find (self->waiters, waiter));
        zloop_timer_end (umb_service_loop (self->service), waiter->timer);
        s_waiter_answer (self, waiter);
        free (waiter);
    }
    zlistx_destroy (&ready);
}

//  ---------------------------------------------------------------- operations

static const char *s_tee_names [] = { "none", "sev-snp", "tdx", NULL };

static bool
s_name_valid (const char *name)
{
    size_t length = strlen (name);
    if (length == 0 || length > 64)
        return false;
    for (const char *c = name; *c; c++)
        if (!(isalnum ((unsigned char) *c) || strchr ("._-", *c)))
            return false;
    return true;
}

//  Which CVMs a request acts on: the workspace the dispatcher authorized
//  (USER operations), or those one mesh service created (backends.run.*)
typedef struct {
    const char *workspace_id;       //  USER; NULL for MESH
    const char *service_key;        //  MESH: the caller's CURVE key; NULL for USER
} s_scope_t;

static s_scope_t
s_user_scope (umb_req_t *req)
{
    return (s_scope_t) { .workspace_id = umb_req_workspace (req) };
}

static s_scope_t
s_mesh_scope (umb_req_t *req)
{
    return (s_scope_t) { .service_key = umb_req_principal (req)->mesh_key };
}

//  Who asked, for events and reasons
static void
s_caller (umb_req_t *req, s_scope_t scope, char *out, size_t size)
{
    if (scope.service_key)
        snprintf (out, size, "the mesh service %s", scope.service_key);
    else
        snprintf (out, size, "%s", umb_req_principal (req)->subject);
}

static int
s_hosts_register (void *state, umb_req_t *req)
{
    umb_backends_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *name = umb_msg_str (body, "name", 128, true);
    const char *uri = umb_msg_str (body, "uri", 1024, true);
    const char *driver = umb_msg_str (body, "driver", 16, false);
    bool insecure_dev = umb_msg_bool (body, "insecure_dev", false, false);
    if (umb_msg_failed (body))
        return s_bad_request (req);
    if (!s_name_valid (name))
        return umb_req_fail (req, 422, NULL, "name: 1..64 characters of A-Z a-z 0-9 . _ -");
    char reason [512];
    int kind = umb_driver_kind_of_uri (uri, reason, sizeof reason);
    if (kind < 0)
        return umb_req_fail (req, 422, NULL, "%s", reason);
    if (driver && umb_driver_kind_parse (driver) != kind)
        return umb_req_fail (req, 422, NULL, "driver: '%.16s' does not drive %s (its driver is "
                             "%s)", driver, uri, umb_driver_kind_str ((umb_driver_kind_t) kind));
    if (kind == UMB_DRIVER_PROCESS && !insecure_dev)
        return umb_req_fail (req, 422, NULL, "insecure_dev: the process driver runs agents "
                             "without a TEE; register it with insecure_dev: true");
    umb_backends_host_t existing;
    if (umb_backends_store_host_get (self->store, umb_req_workspace (req), name, &existing) == 0)
        return umb_req_fail (req, 409, "duplicate_host", "a host named '%s' exists", name);
    if (umb_backends_store_uri_taken (self->store, uri))
        return umb_req_fail (req, 409, "duplicate_host", "the URI %s is registered already", uri);
    char id [32];
    s_new_id ("host_", id, sizeof id);
    s_host_t *host = s_host_new (self, id, uri, (umb_driver_kind_t) kind, insecure_dev);
    s_job_t *job = s_job_new (S_JOB_OPEN, host);
    job->owns_host = true;
    job->req = umb_req_defer (req);
    s_submit (self, job);
    return UMB_DEFERRED;
}

typedef struct {
    umb_backends_t *self;
    umb_w_t        *w;
    char            last [32];
} s_writer_t;

static void
s_write_host_each (const umb_backends_host_t *row, void *arg)
{
    s_writer_t *writer = arg;
    s_write_host (writer->self, writer->w, row);
}

static int
s_hosts_list (void *state, umb_req_t *req)
{
    umb_backends_t *self = state;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_key (w, "items");
    umb_w_array_begin (w);
    s_writer_t writer = { self, w, "" };
    if (umb_backends_store_host_each (self->store, umb_req_workspace (req), s_write_host_each,
                                      &writer)) {
        umb_w_reset (w);
        return s_storage_error (self, req);
    }
    umb_w_array_end (w);
    umb_w_map_end (w);
    return 200;
}

static int
s_host_read (umb_backends_t *self, umb_req_t *req, umb_backends_host_t *row)
{
    umb_msg_t *body = umb_req_body (req);
    const char *key = umb_msg_str (body, "host", 128, true);
    if (umb_msg_failed (body))
        return s_bad_request (req);
    int rc = umb_backends_store_host_get (self->store, umb_req_workspace (req), key, row);
    if (rc == UMB_STORE_NOT_FOUND)
        return umb_req_fail (req, 404, NULL, "no host '%s'", key);
    return rc ? s_storage_error (self, req) : 0;
}

static int
s_hosts_get (void *state, umb_req_t *req)
{
    umb_backends_t *self = state;
    umb_backends_host_t row;
    int status = s_host_read (self, req, &row);
    if (status)
        return status;
    s_write_host (self, umb_req_body_writer (req), &row);
    return 200;
}

static int
s_hosts_remove (void *state, umb_req_t *req)
{
    umb_backends_t *self = state;
    umb_backends_host_t row;
    int status = s_host_read (self, req, &row);
    if (status)
        return status;
    int64_t cvms = 0, vcpus = 0, memory = 0;
    umb_backends_store_host_load (self->store, row.id, &cvms, &vcpus, &memory);
    //  CVMs still tearing down count too
    for (s_cvm_t *cvm = zhashx_first (self->cvms); cvm; cvm = zhashx_next (self->cvms))
        if (streq (cvm->host_id, row.id) && cvm->teardown)
            cvms++;
    if (cvms)
        return umb_req_fail (req, 409, "host_busy", "host '%s' has %lld live CVMs", row.name,
                             (long long) cvms);
    s_write_host (self, umb_req_body_writer (req), &row);
    if (umb_backends_store_host_delete (self->store, row.id)) {
        umb_w_reset (umb_req_body_writer (req));
        return s_storage_error (self, req);
    }
    s_host_t *host = zhashx_lookup (self->hosts, row.id);
    if (host) {
        zhashx_delete (self->hosts, row.id);
        s_submit (self, s_job_new (S_JOB_CLOSE, host));
    }
    umb_log_info (self->log, "host %s (%s) removed", row.name, row.uri);
    return 200;
}

typedef struct {
    umb_sched_host_t *hosts;
    umb_backends_host_t *rows;
    size_t count, size;
} s_candidates_t;

static void
s_add_candidate (const umb_backends_host_t *row, void *arg)
{
    s_candidates_t *list = arg;
    if (list->count == list->size) {
        list->size = list->size ? list->size * 2 : 8;
        list->hosts = realloc (list->hosts, list->size * sizeof (umb_sched_host_t));
        list->rows = realloc (list->rows, list->size * sizeof (umb_backends_host_t));
        assert (list->hosts && list->rows);
    }
    list->rows [list->count] = *row;
    list->count++;
}

//  Picks a host for a CVM among the workspace's (or the named one): 0 with
//  chosen, 404 (no such host), 409 (none can run it; reason), or a 500 from
//  req (storage).
static int
s_pick (umb_backends_t *self, umb_req_t *req, const char *workspace_id, const char *host_key,
        int tee_kind, int64_t vcpus, int64_t memory, umb_backends_host_t *chosen,
        char *reason, size_t reason_size)
{
    s_candidates_t list = { 0 };
    if (host_key) {
        umb_backends_host_t row;
        int rc = umb_backends_store_host_get (self->store, workspace_id, host_key, &row);
        if (rc == UMB_STORE_NOT_FOUND)
            return 404;
        if (rc)
            return req ? s_storage_error (self, req) : 500;
        s_add_candidate (&row, &list);
    }
    else
    if (umb_backends_store_host_each (self->store, workspace_id, s_add_candidate, &list))
        return req ? s_storage_error (self, req) : 500;
    for (size_t index = 0; index < list.count; index++) {
        umb_backends_host_t *row = &list.rows [index];
        s_host_t *host = zhashx_lookup (self->hosts, row->id);
        int64_t cvms = 0, used_vcpus = 0, used_memory = 0;
        umb_backends_store_host_load (self->store, row->id, &cvms, &used_vcpus, &used_memory);
        unsigned mask = 0;
        for (int t = 0; s_tee_names [t]; t++)
            if (strstr (row->tees, s_tee_names [t]))
                mask |= UMB_SCHED_TEE_BIT (t);
        list.hosts [index] = (umb_sched_host_t) {
            .id = row->id, .tee_mask = mask,
            .vcpus_total = (unsigned) row->cpus,
            .vcpus_free = (unsigned) (row->cpus > used_vcpus ? row->cpus - used_vcpus : 0),
            .memory_total_mib = (uint64_t) row->memory_mb,
            .memory_free_mib = (uint64_t) (row->memory_mb > used_memory
                                           ? row->memory_mb - used_memory : 0),
            .cvms = (unsigned) cvms, .reachable = host && host->reachable,
            .rep = host ? host->rep : (umb_sched_rep_t) { 0 }
        };
    }
    umb_sched_request_t request = { .tee = (umb_domain_tee_t) tee_kind,
                                    .vcpus = (unsigned) vcpus, .memory_mib = (uint64_t) memory };
    int pick = umb_sched_pick (self->sched, list.hosts, list.count, &request, zclock_time (),
                               reason, reason_size);
    if (pick >= 0)
        *chosen = list.rows [pick];
    free (list.hosts);
    free (list.rows);
    return pick >= 0 ? 0 : 409;
}

//  A workspace id as auth makes them ("ws_" and letters or digits): a
//  workspace's name is never taken for one
static bool
s_workspace_id_valid (const char *id)
{
    size_t length = strlen (id);
    if (length < 4 || length > 63 || strncmp (id, "ws_", 3))
        return false;
    for (const char *c = id + 3; *c; c++)
        if (!isalnum ((unsigned char) *c))
            return false;
    return true;
}

//  backends.cvms.create and backends.run.create: a service names the
//  workspace (already authorized by it), the user and the computation
static int s_billing_later (umb_backends_t *self, umb_req_t *req, const char *workspace_id,
                            int64_t live, bool run);

//  verdict is billing's answer once it was asked (req is deferred then),
//  NULL before
static int
s_create (umb_backends_t *self, umb_req_t *req, s_scope_t scope,
          const umb_billing_verdict_t *verdict)
{
    umb_msg_t *body = umb_req_body (req);
    bool run = scope.service_key != NULL;
    const char *workspace_id = run ? umb_msg_str (body, "workspace_id", 64, true)
                                   : scope.workspace_id;
    const char *created_by = run ? umb_msg_str (body, "created_by", 64, true)
                                 : umb_req_principal (req)->subject;
    const char *tee = umb_msg_str (body, "tee", 16, true);
    int64_t vcpus = umb_msg_int (body, "vcpus", INT64_MIN, INT64_MAX, 0, true);
    int64_t memory = umb_msg_int (body, "memory_mb", INT64_MIN, INT64_MAX, 0, true);
    int64_t ttl = umb_msg_int (body, "ttl_s", INT64_MIN, INT64_MAX, self->default_ttl, false);
    const char *host_key = umb_msg_str (body, "host", 128, false);
    const char *computation = umb_msg_str (body, "computation", 128, run);
    const char *manifest = umb_msg_str (body, "manifest", 1048576, false);
    if (umb_msg_failed (body))
        return s_bad_request (req);
    if (run && !s_workspace_id_valid (workspace_id))
        return umb_req_fail (req, 422, NULL, "workspace_id: '%s' is not a workspace id (ws_...)",
                             workspace_id);
    if (run && !*created_by)
        return umb_req_fail (req, 422, NULL, "created_by: a user id of 1..64 bytes");
    if (run && !*computation)
        return umb_req_fail (req, 422, NULL, "computation: a label of 1..128 bytes");
    int tee_kind = umb_domain_tee_parse (tee);
    if (tee_kind < 0)
        return umb_req_fail (req, 422, NULL, "tee: '%.16s' is not a TEE type (none, sev-snp, tdx)",
                             tee);
    if (vcpus < UMB_DOMAIN_VCPUS_MIN || vcpus > UMB_DOMAIN_VCPUS_MAX)
        return umb_req_fail (req, 422, NULL, "vcpus: %lld is impossible (%d..%d)",
                             (long long) vcpus, UMB_DOMAIN_VCPUS_MIN, UMB_DOMAIN_VCPUS_MAX);
    if (memory < UMB_DOMAIN_MEMORY_MIN_MIB || memory > UMB_DOMAIN_MEMORY_MAX_MIB)
        return umb_req_fail (req, 422, NULL, "memory_mb: %lld is impossible (%d..%d)",
                             (long long) memory, UMB_DOMAIN_MEMORY_MIN_MIB,
                             UMB_DOMAIN_MEMORY_MAX_MIB);
    if (ttl < 1 || ttl > self->max_ttl)
        return umb_req_fail (req, 422, NULL, "ttl_s: %lld is not within 1..%lld",
                             (long long) ttl, (long long) self->max_ttl);
    if (manifest) {
        json_error_t error;
        json_t *json = json_loads (manifest, 0, &error);
        bool object = json_is_object (json);
        json_decref (json);
        if (!object)
            return umb_req_fail (req, 422, NULL, "manifest: not a JSON object");
    }
    //  Billing says whether the workspace may have one more CVM; the count is
    //  checked against its limit again here, at the insert, so concurrent
    //  creates cannot pass it together
    int64_t live = umb_backends_store_cvm_live_count (self->store, workspace_id);
    if (live < 0)
        return s_storage_error (self, req);
    if (!verdict && umb_billing_client_enabled (self->billing))
        return s_billing_later (self, req, workspace_id, live, run);
    if (verdict && !umb_billing_verdict_within (verdict, live, 1))
        return umb_req_fail (req, 403, "limit_exceeded", "the workspace's plan allows %lld "
                             "concurrent CVMs (limit 'concurrent_cvms'); the workspace has %lld",
                             (long long) verdict->limit, (long long) live);
    umb_backends_host_t chosen;
    char reason [512];
    int status = s_pick (self, req, workspace_id, host_key, tee_kind, vcpus, memory,
                         &chosen, reason, sizeof reason);
    if (status == 404)
        return umb_req_fail (req, 404, NULL, "no host '%s'", host_key);
    if (status == 409)
        return umb_req_fail (req, 409, "no_host", "no host can run a %s CVM with %lld vCPUs and "
                             "%lld MiB: %s", tee, (long long) vcpus, (long long) memory, reason);
    if (status)
        return status;
    s_host_t *host = zhashx_lookup (self->hosts, chosen.id);
    assert (host);

    umb_backends_cvm_t row = { 0 };
    s_new_id ("cvm_", row.id, sizeof row.id);
    snprintf (row.workspace_id, sizeof row.workspace_id, "%s", workspace_id);
    snprintf (row.host_id, sizeof row.host_id, "%s", chosen.id);
    snprintf (row.tee, sizeof row.tee, "%s", tee);
    row.vcpus = vcpus;
    row.memory_mb = memory;
    row.ttl_s = ttl;
    row.created_at = row.updated_at = s_now ();
    row.expires_at = row.created_at + ttl;
    snprintf (row.state, sizeof row.state, "Requested");
    snprintf (row.computation, sizeof row.computation, "%s", computation ? computation : "");
    snprintf (row.agent, sizeof row.agent, "pending");
    row.insecure = host->insecure_dev;
    snprintf (row.created_by, sizeof row.created_by, "%s", created_by);
    snprintf (row.service_key, sizeof row.service_key, "%s", run ? scope.service_key : "");
    if (umb_backends_store_cvm_insert (self->store, &row))
        return s_storage_error (self, req);
    s_event (self, row.id, "backends", "state", "Requested", 0,
             "requested by %s%s%s: %s, %lld vCPUs, %lld MiB, ttl %lld s, on host %s",
             row.created_by, run ? " through the mesh service " : "",
             run ? scope.service_key : "", tee, (long long) vcpus, (long long) memory,
             (long long) ttl, chosen.name);
    s_cvm_t *cvm = s_cvm_rt_new (self, row.id, row.host_id, row.expires_at);
    if (manifest)
        cvm->manifest = strdup (manifest);
    cvm->pinned = host_key != NULL;
    cvm->attempts = 1;
    cvm->create_req = verdict ? req : umb_req_defer (req);
    s_job_t *job = s_job_new (S_JOB_CREATE, host);
    snprintf (job->cvm_id, sizeof job->cvm_id, "%s", row.id);
    snprintf (job->workspace, sizeof job->workspace, "%s", row.workspace_id);
    snprintf (job->tee, sizeof job->tee, "%s", tee);
    job->vcpus = vcpus;
    job->memory_mb = memory;
    job->created = row.created_at;
    job->ttl = ttl;
    if (s_step (self, row.id, UMB_CVM_EV_SCHEDULED, NULL, reason, sizeof reason)) {
        s_job_destroy (&job);
        umb_req_t *parked = cvm->create_req;
        cvm->create_req = NULL;
        umb_req_fail (parked, 500, NULL, "%s", reason);
        umb_service_reply (self->service, &parked, 500);
        return UMB_DEFERRED;
    }
    s_submit (self, job);
    return UMB_DEFERRED;
}

static void
s_write_cvm_each (const umb_backends_cvm_t *cvm, void *arg)
{
    s_writer_t *writer = arg;
    s_write_cvm (writer->self, writer->w, cvm);
    snprintf (writer->last, sizeof writer->last, "%s", cvm->id);
}

static int
s_cvms_list (void *state, umb_req_t *req)
{
    umb_backends_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *filter = umb_msg_str (body, "state", 16, false);
    int64_t limit = umb_msg_int (body, "limit", INT64_MIN, INT64_MAX, 100, false);
    const char *cursor = umb_msg_str (body, "cursor", 128, false);
    if (umb_msg_failed (body))
        return s_bad_request (req);
    if (filter && umb_cvm_state_parse (filter) < 0)
        return umb_req_fail (req, 422, NULL, "state: '%s' is not a CVM state", filter);
    if (limit < 1 || limit > 500)
        return umb_req_fail (req, 422, NULL, "limit: 1..500");
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_key (w, "items");
    umb_w_array_begin (w);
    s_writer_t writer = { self, w, "" };
    bool more = false;
    if (umb_backends_store_cvm_list (self->store, umb_req_workspace (req), filter,
                                     cursor ? cursor : "", limit, s_write_cvm_each, &writer,
                                     &more)) {
        umb_w_reset (w);
        return s_storage_error (self, req);
    }
    umb_w_array_end (w);
    umb_w_key (w, "next");
    if (more)
        umb_w_str (w, writer.last);
    else
        umb_w_nil (w);
    umb_w_map_end (w);
    return 200;
}

//  The CVM named by the body's "cvm", if scope may see it; another
//  workspace's, or a CVM this mesh service did not create, is not found.
static int
s_cvm_read (umb_backends_t *self, umb_req_t *req, s_scope_t scope, umb_backends_cvm_t *row)
{
    assert (scope.workspace_id || scope.service_key);
    umb_msg_t *body = umb_req_body (req);
    const char *id = umb_msg_str (body, "cvm", 128, true);
    if (umb_msg_failed (body))
        return s_bad_request (req);
    int rc = umb_backends_store_cvm_get (self->store, scope.workspace_id, id, row);
    if (rc == 0 && scope.service_key
    &&  (!*scope.service_key || !streq (row->service_key, scope.service_key)))
        rc = UMB_STORE_NOT_FOUND;
    if (rc == UMB_STORE_NOT_FOUND)
        return umb_req_fail (req, 404, NULL, "no CVM '%s'", id);
    return rc ? s_storage_error (self, req) : 0;
}

static int
s_get (umb_backends_t *self, umb_req_t *req, s_scope_t scope)
{
    umb_backends_cvm_t row;
    int status = s_cvm_read (self, req, scope, &row);
    if (status)
        return status;
    s_write_cvm (self, umb_req_body_writer (req), &row);
    return 200;
}

static int
s_destroy (umb_backends_t *self, umb_req_t *req, s_scope_t scope)
{
    umb_backends_cvm_t row;
    int status = s_cvm_read (self, req, scope, &row);
    if (status)
        return status;
    const char *why = umb_msg_str (umb_req_body (req), "reason", 256, false);
    if (umb_msg_failed (umb_req_body (req)))
        return s_bad_request (req);
    s_cvm_t *cvm = zhashx_lookup (self->cvms, row.id);
    if (cvm && cvm->destroy_req)
        return umb_req_fail (req, 409, "wrong_state", "CVM '%s' is being destroyed", row.id);
    char reason [300], text [400], caller [96];
    s_caller (req, scope, caller, sizeof caller);
    snprintf (text, sizeof text, "destroyed by %s%s%s", caller, why ? ": " : "", why ? why : "");
    if (s_step (self, row.id, UMB_CVM_EV_DESTROY, text, reason, sizeof reason))
        return umb_req_fail (req, 409, "wrong_state", "CVM '%s' is %s: %s", row.id, row.state,
                             reason);
    cvm = zhashx_lookup (self->cvms, row.id);
    if (!cvm) {
        //  Nothing runs (it failed and was cleaned up): done now
        umb_backends_store_cvm_get (self->store, NULL, row.id, &row);
        s_write_cvm (self, umb_req_body_writer (req), &row);
        return 200;
    }
    cvm->destroy_req = umb_req_defer (req);
    return UMB_DEFERRED;
}

static int
s_manifest (umb_backends_t *self, umb_req_t *req, s_scope_t scope)
{
    umb_backends_cvm_t row;
    int status = s_cvm_read (self, req, scope, &row);
    if (status)
        return status;
    const char *manifest = umb_msg_str (umb_req_body (req), "manifest", 1048576, true);
    if (umb_msg_failed (umb_req_body (req)))
        return s_bad_request (req);
    s_cvm_t *cvm = zhashx_lookup (self->cvms, row.id);
    char reason [256];
    umb_cvm_step_t step;
    if (umb_cvm_next ((umb_cvm_state_t) umb_cvm_state_parse (row.state), UMB_CVM_EV_MANIFEST_OK,
                      &step, reason, sizeof reason) || !cvm || !cvm->link_ready)
        return umb_req_fail (req, 409, "wrong_state", "CVM '%s' is %s%s: a manifest goes to an "
                             "agent that is ready (AgentReady)", row.id, row.state,
                             streq (row.agent, "none (test driver: no guest)")
                             ? " and has no agent (test driver)" : "");
    if (cvm->manifest_req)
        return umb_req_fail (req, 409, "wrong_state", "a manifest is being delivered to CVM '%s'",
                             row.id);
    cvm->manifest_req = umb_req_defer (req);
    zstr_sendx (cvm->link, "MANIFEST", "user", manifest, NULL);
    return UMB_DEFERRED;
}

static int
s_pull (umb_backends_t *self, umb_req_t *req, s_scope_t scope)
{
    umb_backends_cvm_t row;
    int status = s_cvm_read (self, req, scope, &row);
    if (status)
        return status;
    umb_msg_t *body = umb_req_body (req);
    bool has_after = umb_msg_has (body, "after");
    int64_t after = umb_msg_int (body, "after", INT64_MIN, INT64_MAX, row.acked, false);
    int64_t max = umb_msg_int (body, "max", INT64_MIN, INT64_MAX, 100, false);
    int64_t wait_ms = umb_msg_int (body, "wait_ms", INT64_MIN, INT64_MAX, 0, false);
    if (umb_msg_failed (body))
        return s_bad_request (req);
    if (after < 0)
        return umb_req_fail (req, 422, NULL, "after: 0 or more");
    if (max < 1 || max > 1000)
        return umb_req_fail (req, 422, NULL, "max: 1..1000");
    if (wait_ms < 0 || wait_ms > 60000)
        return umb_req_fail (req, 422, NULL, "wait_ms: 0..60000");
    if (has_after && after > row.acked) {
        if (umb_backends_store_ack (self->store, row.id, after))
            return s_storage_error (self, req);
    }
    //  Never wait past the caller's deadline
    int64_t budget = umb_req_remaining_ms (req) - 100;
    if (wait_ms > budget)
        wait_ms = budget > 0 ? budget : 0;
    bool final = umb_cvm_final ((umb_cvm_state_t) umb_cvm_state_parse (row.state));
    if (wait_ms > 0 && row.events <= after && !final) {
        s_waiter_t *waiter = calloc (1, sizeof (s_waiter_t));
        assert (waiter);
        waiter->owner = self;
        snprintf (waiter->cvm_id, sizeof waiter->cvm_id, "%s", row.id);
        waiter->after = after;
        waiter->max = max;
        waiter->req = umb_req_defer (req);
        waiter->timer = zloop_timer (umb_service_loop (self->service), (size_t) wait_ms, 1,
                                     s_on_waiter_timer, waiter);
        zlistx_add_end (self->waiters, waiter);
        return UMB_DEFERRED;
    }
    return s_pull_answer (self, req, row.id, after, max);
}

//  ---------------------------------------------------------------- billing

#define S_USAGE_BATCH   500         //  usage records sent to billing at once

//  A job for the billing worker: a create's check, or usage records
typedef struct {
    umb_backends_t        *self;
    umb_req_t             *req;             //  a create waiting for billing's word
    char                   workspace [64];
    int64_t                live;
    bool                   run;
    umb_billing_record_t  *records;         //  ...or usage on its way
    size_t                 count;
    umb_billing_verdict_t  verdict;
} s_bill_t;

static void
s_bill_work (void *arg)
{
    s_bill_t *job = arg;
    if (job->req)
        umb_billing_client_check (job->self->billing, job->workspace, "cvm.create", 1, job->live,
                                  job->run, &job->verdict);
    else
        umb_billing_client_usage (job->self->billing, job->records, job->count, &job->verdict);
}

static void
s_bill_done (void *arg, void *job_arg, bool cancelled)
{
    umb_backends_t *self = arg;
    s_bill_t *job = job_arg;
    if (!job->req) {
        self->flushing = false;
        if (!cancelled && job->verdict.status == 0)
            umb_meter_sent (self->store, job->records, job->count);
        else
        if (!cancelled)
            umb_log_warn (self->log, "%zu usage records wait for billing: %s", job->count,
                          job->verdict.reason);
    }
    else {
        int status;
        if (cancelled)
            status = umb_req_fail (job->req, 503, "unavailable", "the service is stopping");
        else
        if (job->verdict.status) {
            if (job->verdict.status == 503)
                umb_req_set_retryable (job->req);
            status = umb_req_fail (job->req, job->verdict.status, job->verdict.code, "%s",
                                   job->verdict.reason);
        }
        else
            status = s_create (self, job->req, job->run ? s_mesh_scope (job->req)
                                                        : s_user_scope (job->req), &job->verdict);
        if (status != UMB_DEFERRED)
            umb_service_reply (self->service, &job->req, status);
    }
    free (job->records);
    free (job);
}

static int
s_billing_later (umb_backends_t *self, umb_req_t *req, const char *workspace_id, int64_t live,
                 bool run)
{
    s_bill_t *job = calloc (1, sizeof (s_bill_t));
    assert (job);
    job->self = self;
    job->req = req;
    snprintf (job->workspace, sizeof job->workspace, "%s", workspace_id);
    job->live = live;
    job->run = run;
    if (umb_worker_submit (self->billing_worker, job)) {
        free (job);
        umb_req_set_retryable (req);
        return umb_req_fail (req, 503, "unavailable", "too many requests are waiting; try again");
    }
    umb_req_defer (req);
    return UMB_DEFERRED;
}

//  Cuts the CVMs' time into usage records, and sends what waits to billing
static void
s_meter (umb_backends_t *self, int64_t now)
{
    if (umb_meter_collect (self->store, now, self->usage_interval) < 0)
        umb_log_warn (self->log, "cannot record the CVMs' usage; trying again");
    if (self->flushing)
        return;
    s_bill_t *job = calloc (1, sizeof (s_bill_t));
    assert (job);
    job->self = self;
    job->records = calloc (S_USAGE_BATCH, sizeof (umb_billing_record_t));
    assert (job->records);
    job->count = umb_meter_pending (self->store, job->records, S_USAGE_BATCH);
    if (job->count == 0 || umb_worker_submit (self->billing_worker, job)) {
        free (job->records);
        free (job);
        return;
    }
    self->flushing = true;
}

//  One handler per operation; the USER and MESH (backends.run.*) variants
//  share the work and differ only in scope
static int
s_cvms_create (void *state, umb_req_t *req)
{
    return s_create (state, req, s_user_scope (req), NULL);
}

static int
s_cvms_get (void *state, umb_req_t *req)
{
    return s_get (state, req, s_user_scope (req));
}

static int
s_cvms_destroy (void *state, umb_req_t *req)
{
    return s_destroy (state, req, s_user_scope (req));
}

static int
s_cvms_manifest (void *state, umb_req_t *req)
{
    return s_manifest (state, req, s_user_scope (req));
}

static int
s_events_pull (void *state, umb_req_t *req)
{
    return s_pull (state, req, s_user_scope (req));
}

static int
s_run_create (void *state, umb_req_t *req)
{
    return s_create (state, req, s_mesh_scope (req), NULL);
}

static int
s_run_get (void *state, umb_req_t *req)
{
    return s_get (state, req, s_mesh_scope (req));
}

static int
s_run_destroy (void *state, umb_req_t *req)
{
    return s_destroy (state, req, s_mesh_scope (req));
}

static int
s_run_manifest (void *state, umb_req_t *req)
{
    return s_manifest (state, req, s_mesh_scope (req));
}

static int
s_run_events (void *state, umb_req_t *req)
{
    return s_pull (state, req, s_mesh_scope (req));
}

//  The contract is proto/msgpack/backends.md
static const umb_route_t s_routes [] = {
    { "backends.hosts.register", s_hosts_register, UMB_ACCESS_USER, "backends.manage" },
    { "backends.hosts.list",     s_hosts_list,     UMB_ACCESS_USER, "backends.read" },
    { "backends.hosts.get",      s_hosts_get,      UMB_ACCESS_USER, "backends.read" },
    { "backends.hosts.remove",   s_hosts_remove,   UMB_ACCESS_USER, "backends.manage" },
    { "backends.cvms.create",    s_cvms_create,    UMB_ACCESS_USER, "cvms.manage" },
    { "backends.cvms.list",      s_cvms_list,      UMB_ACCESS_USER, "cvms.read" },
    { "backends.cvms.get",       s_cvms_get,       UMB_ACCESS_USER, "cvms.read" },
    { "backends.cvms.destroy",   s_cvms_destroy,   UMB_ACCESS_USER, "cvms.manage" },
    { "backends.cvms.manifest",  s_cvms_manifest,  UMB_ACCESS_USER, "cvms.manage" },
    { "backends.events.pull",    s_events_pull,    UMB_ACCESS_USER, "cvms.read" },
    //  For services (computations): no user token; only the caller's own CVMs
    { "backends.run.create",     s_run_create,     UMB_ACCESS_MESH, NULL },
    { "backends.run.get",        s_run_get,        UMB_ACCESS_MESH, NULL },
    { "backends.run.destroy",    s_run_destroy,    UMB_ACCESS_MESH, NULL },
    { "backends.run.manifest",   s_run_manifest,   UMB_ACCESS_MESH, NULL },
    { "backends.run.events",     s_run_events,     UMB_ACCESS_MESH, NULL },
    { NULL }
};

//  ---------------------------------------------------------------- lifecycle

static void s_fail (umb_backends_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_fail (umb_backends_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->failure, sizeof self->failure, format, args);
    va_end (args);
    umb_log_error (self->log, "cannot start: %s", self->failure);
}

//  umbra-agent beside the running executable, else on $PATH
static char *
s_agent_path (umb_backends_t *self)
{
    const char *configured = umb_config_str (self->config, "backends.agent_path");
    if (*configured)
        return strdup (configured);
    char exe [4096];
    ssize_t size = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (size > 0) {
        exe [size] = 0;
        char *slash = strrchr (exe, '/');
        if (slash) {
            *slash = 0;
            static const char *const relative [] = {
                "umbra-agent", "../guest/agent/umbra-agent", "../../guest/agent/umbra-agent", NULL
            };
            for (const char *const *path = relative; *path; path++) {
                char *candidate = zsys_sprintf ("%s/%s", exe, *path);
                if (access (candidate, X_OK) == 0)
                    return candidate;
                free (candidate);
            }
        }
    }
    const char *path = getenv ("PATH");
    char *copy = strdup (path ? path : "/usr/local/bin:/usr/bin");
    char *save = NULL;
    char *found = NULL;
    for (char *dir = strtok_r (copy, ":", &save); dir && !found;
         dir = strtok_r (NULL, ":", &save)) {
        char *candidate = zsys_sprintf ("%s/umbra-agent", dir);
        if (access (candidate, X_OK) == 0)
            found = candidate;
        else
            free (candidate);
    }
    free (copy);
    return found ? found : strdup ("umbra-agent");
}

static void
s_cvm_item_free (void **item)
{
    s_cvm_rt_destroy ((s_cvm_t **) item);
}

umb_backends_t *
umb_backends_new (umb_runtime_t *runtime)
{
    assert (runtime);
    umb_backends_t *self = calloc (1, sizeof (umb_backends_t));
    assert (self);
    self->runtime = runtime;
    self->config = umb_runtime_config (runtime);
    self->log = umb_log_dup (umb_runtime_log (runtime), "backends");
    assert (self->log);
    self->tick = -1;
    self->default_ttl = umb_config_int (self->config, "backends.default_ttl_s");
    self->max_ttl = umb_config_int (self->config, "backends.max_ttl_s");
    self->boot_timeout_ms = (int) umb_config_int (self->config, "backends.boot_timeout_s") * 1000;
    self->agent_timeout_ms = (int) umb_config_int (self->config, "backends.agent_timeout_s")
                           * 1000;
    self->certify = umb_config_bool (self->config, "backends.certify_agents");
    self->hosts = zhashx_new ();
    self->cvms = zhashx_new ();
    self->waiters = zlistx_new ();
    self->sched = umb_sched_new (NULL);
    char *db_path = NULL;
    char *links = NULL, *work = NULL;
    if (sodium_init () < 0) {
        s_fail (self, "libsodium cannot start");
        goto done;
    }
    if (self->default_ttl > self->max_ttl) {
        s_fail (self, "backends.default_ttl_s (%lld) is above backends.max_ttl_s (%lld)",
                (long long) self->default_ttl, (long long) self->max_ttl);
        goto done;
    }
    self->dir = umb_runtime_service_dir (runtime, "backends");
    if (!self->dir) {
        s_fail (self, "cannot create the service directory under %s",
                umb_runtime_state_dir (runtime));
        goto done;
    }
    links = zsys_sprintf ("%s/links", self->dir);
    work = zsys_sprintf ("%s/cvms", self->dir);
    if ((mkdir (links, 0700) && errno != EEXIST) || (mkdir (work, 0700) && errno != EEXIST)) {
        s_fail (self, "cannot create %s or %s: %s", links, work, strerror (errno));
        goto done;
    }
    self->cert = umb_runtime_identity (runtime, "backends");
    if (!self->cert) {
        s_fail (self, "cannot load the CURVE identity 'backends' from %s",
                umb_runtime_keys_dir (runtime));
        goto done;
    }
    self->public_key = strdup (zcert_public_txt (self->cert));
    self->agent_path = s_agent_path (self);
    self->env = (umb_driver_env_t) {
        .agent_path = self->agent_path,
        .image_dir = umb_config_str (self->config, "backends.image_dir"),
        .control_key = self->public_key,
        .none_accel = umb_config_str (self->config, "backends.none_accel"),
        .firmware_snp = umb_config_str (self->config, "backends.firmware_snp"),
        .igvm_snp = umb_config_str (self->config, "backends.igvm_snp"),
        .firmware_tdx = umb_config_str (self->config, "backends.firmware_tdx"),
        .work_dir = NULL, .log = self->log };
    db_path = umb_runtime_db_path (runtime, "backends", self->dir);
    self->store = umb_backends_store_open (db_path, self->log);
    if (!self->store) {
        s_fail (self, "cannot open the database %s", db_path);
        goto done;
    }
    self->auth = umb_auth_client_new (runtime, self->cert);
    if (!self->auth) {
        s_fail (self, "cannot make a client of the auth service");
        goto done;
    }
    char reason [600];
    self->service = umb_auth_client_service (self->auth, runtime, "backends", self->cert, s_routes,
                                             self, self->log, reason, sizeof reason);
    if (!self->service) {
        s_fail (self, "%s", reason);
        goto done;
    }
    zhashx_set_destructor (self->cvms, s_cvm_item_free);
    snprintf (self->virt_endpoint, sizeof self->virt_endpoint, "inproc://backends-virt-%p",
              (void *) self);
    self->virt_events = zsock_new_pull (self->virt_endpoint);
    assert (self->virt_events);
    char push [64];
    snprintf (push, sizeof push, ">%.60s", self->virt_endpoint);
    snprintf (self->virt_endpoint, sizeof self->virt_endpoint, "%s", push);
    zloop_t *loop = umb_service_loop (self->service);
    zloop_reader (loop, self->virt_events, s_on_virt, self);
    self->worker = umb_worker_new (loop, s_work, s_on_job, self, S_QUEUE_MAX);
    self->billing = umb_billing_client_new (runtime, self->cert);
    self->billing_worker = umb_worker_new (loop, s_bill_work, s_bill_done, self, S_QUEUE_MAX);
    self->usage_interval = umb_config_int (self->config, "billing.usage_interval_s");
    self->tick = zloop_timer (loop, S_TICK_MS, 0, s_on_tick, self);
    //  env.work_dir must outlive the drivers: keep it in self
    self->env.work_dir = work;
    work = NULL;
    //  Reconciliation: every host, off the loop
    if (umb_backends_store_host_each (self->store, NULL, s_reconcile_each, self)) {
        s_fail (self, "cannot read the hosts table");
        goto done;
    }
    umb_log_info (self->log, "backends on %s; agent %s; %zu hosts to reconcile",
                  umb_service_endpoint (self->service), self->agent_path,
                  zhashx_size (self->hosts));
done:
    if (*self->failure) {
        umb_worker_destroy (&self->worker);
        umb_worker_destroy (&self->billing_worker);
        umb_auth_client_destroy (&self->auth);
        umb_service_destroy (&self->service);
    }
    free (db_path);
    free (links);
    free (work);
    return self;
}

void
umb_backends_destroy (umb_backends_t **self_p)
{
    assert (self_p);
    umb_backends_t *self = *self_p;
    if (!self)
        return;
    self->stopping = true;
    //  Waiting pulls are answered now
    for (s_waiter_t *waiter = zlistx_first (self->waiters); waiter;
         waiter = zlistx_next (self->waiters)) {
        if (self->service) {
            s_waiter_answer (self, waiter);
            zloop_timer_end (umb_service_loop (self->service), waiter->timer);
        }
        free (waiter);
    }
    zlistx_destroy (&self->waiters);
    //  Links first (they talk to the loop), then the worker finishes its job
    if (self->cvms)
        zhashx_destroy (&self->cvms);
    umb_worker_destroy (&self->worker);
    umb_worker_destroy (&self->billing_worker);
    umb_billing_client_destroy (&self->billing);
    //  Close every driver on this thread: the worker is gone. Process
    //  children die with their driver; VMs stay, for the next start to adopt.
    for (s_host_t *host = zhashx_first (self->hosts); host; host = zhashx_next (self->hosts)) {
        if (host->driver)
            umb_driver_events_stop (host->driver);
        zsock_destroy (&host->push);
        umb_driver_destroy (&host->driver);
        free (host);
    }
    zhashx_destroy (&self->hosts);
    if (self->service && self->virt_events)
        zloop_reader_end (umb_service_loop (self->service), self->virt_events);
    zsock_destroy (&self->virt_events);
    umb_auth_client_destroy (&self->auth);
    umb_service_destroy (&self->service);
    umb_sched_destroy (&self->sched);
    umb_store_destroy (&self->store);
    zcert_destroy (&self->cert);
    free (self->public_key);
    free (self->agent_path);
    free ((char *) self->env.work_dir);
    free (self->dir);
    umb_log_destroy (&self->log);
    free (self);
    *self_p = NULL;
}

const char *
umb_backends_failure (umb_backends_t *self)
{
    assert (self);
    return self->failure;
}

static void
s_on_command (void *arg, zsock_t *pipe, const char *command)
{
    umb_backends_t *self = arg;
    if (streq (command, "RECONCILED"))
        zstr_sendf (pipe, "%d %d", self->reconciled, self->orphans);
    else
    if (streq (command, "BEHIND")) {
        //  Tests: the domain is destroyed on its host as an operator's
        //  `virsh destroy` would, on the service's own connection
        char *cvm_id = zstr_recv (pipe);
        umb_backends_cvm_t row;
        s_host_t *host = NULL;
        if (cvm_id && umb_backends_store_cvm_get (self->store, NULL, cvm_id, &row) == 0)
            host = zhashx_lookup (self->hosts, row.host_id);
        if (host) {
            s_job_t *job = s_job_new (S_JOB_BEHIND, host);
            snprintf (job->cvm_id, sizeof job->cvm_id, "%s", cvm_id);
            s_submit (self, job);
        }
        zstr_send (pipe, host ? "1" : "0");
        zstr_free (&cvm_id);
    }
    else
        umb_log_warn (self->log, "unknown command on the pipe: %.32s", command);
}

void
umb_backends_run (umb_backends_t *self, zsock_t *pipe)
{
    assert (self && pipe);
    umb_service_serve (self->service, pipe, self->failure, s_on_command, self);
}

void
umb_backends_actor (zsock_t *pipe, void *args)
{
    umb_backends_t *self = umb_backends_new ((umb_runtime_t *) args);
    zsock_signal (pipe, 0);
    umb_backends_run (self, pipe);
    umb_backends_destroy (&self);
}
