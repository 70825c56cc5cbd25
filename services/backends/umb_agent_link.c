//  umb_agent_link - the host side of one CVM's guest link
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sodium.h>
#include "umb_agent_link.h"
#include "umb_bridge.h"
#include "umb_client.h"
#include "umb_envelope.h"
#include "umb_mp.h"
#include "umb_verify.h"

#define S_ATTEST_TIMEOUT_MS 1500
#define S_RETRY_MS          200
#define S_CALL_MARGIN_MS    3000
#define S_ACK_TIMEOUT_MS    10000
#define S_MESSAGE_MAX       8192

typedef struct {
    char       cvm_id [64];
    zactor_t  *bridge;
    char       control [256];
    char       agent [128];
    char       attest [128];
    zcert_t   *identity;
    bool       insecure_dev;
    int64_t    after;
    int        boot_timeout_ms;
    int        agent_timeout_ms;
    int        poll_ms;
    umb_log_t *log;
    //  run time
    zsock_t      *pipe;
    umb_client_t *client;
    char          agent_key [41];
    bool          done;             //  $TERM
} s_link_t;

static void
s_link_destroy (s_link_t **self_p)
{
    s_link_t *self = *self_p;
    if (self) {
        umb_client_destroy (&self->client);
        zactor_destroy (&self->bridge);
        zcert_destroy (&self->identity);
        free (self);
        *self_p = NULL;
    }
}

//  ---------------------------------------------------------------- attestation

//  0 attested (agent_key, platform, insecure set); 1 no answer yet (retry);
//  -1 refused or garbage (reason set: the CVM fails).
static int
s_attest (s_link_t *self, char *platform, size_t platform_size, bool *insecure, char *reason,
          size_t reason_size)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zsock_set_linger (dealer, 0);
    if (zsock_connect (dealer, "%s", self->attest)) {
        zsock_destroy (&dealer);
        snprintf (reason, reason_size, "cannot connect to %s", self->attest);
        return -1;
    }
    uint8_t nonce [32];
    randombytes_buf (nonce, sizeof nonce);
    char id [32];
    snprintf (id, sizeof id, "attest-%08x", randombytes_random ());
    umb_w_t *header = umb_w_new ();
    umb_envelope_write_request (header, id, "agent.attestation", NULL, S_ATTEST_TIMEOUT_MS);
    umb_w_t *body = umb_w_new ();
    umb_w_map_begin (body);
    umb_w_key (body, "nonce");
    umb_w_bin (body, nonce, sizeof nonce);
    umb_w_map_end (body);
    size_t header_size, body_size;
    const void *header_data = umb_w_data (header, &header_size);
    const void *body_data = umb_w_data (body, &body_size);
    zmsg_t *request = zmsg_new ();
    zmsg_addmem (request, header_data, header_size);
    zmsg_addmem (request, body_data, body_size);
    umb_w_destroy (&header);
    umb_w_destroy (&body);
    zmsg_send (&request, dealer);

    int rc = 1;
    zmsg_t *reply = NULL;
    zpoller_t *poller = zpoller_new (dealer, self->pipe, NULL);
    int64_t deadline = zclock_mono () + S_ATTEST_TIMEOUT_MS;
    while (!reply) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            break;
        void *which = zpoller_wait (poller, (int) left);
        if (which == dealer)
            reply = zmsg_recv (dealer);
        else
        if (which == self->pipe) {
            //  Only $TERM can come before READY
            char *command = zstr_recv (self->pipe);
            if (!command || streq (command, "$TERM"))
                self->done = true;
            zstr_free (&command);
            if (self->done)
                break;
        }
        else
        if (zpoller_terminated (poller))
            break;
    }
    zpoller_destroy (&poller);
    zsock_destroy (&dealer);
    if (!reply)
        return 1;

    umb_envelope_t *envelope = NULL;
    umb_msg_t *doc = NULL;
    char *error = NULL;
    zframe_t *head = zmsg_first (reply);
    zframe_t *data = zmsg_next (reply);
    if (zmsg_size (reply) != 2) {
        snprintf (reason, reason_size, "the guest link failed: the agent's attestation reply has "
                  "%zu frames", zmsg_size (reply));
        rc = -1;
        goto done;
    }
    envelope = umb_envelope_decode (zframe_data (head), zframe_size (head), true, &error, NULL);
    if (!envelope) {
        snprintf (reason, reason_size, "the guest link failed: the agent's attestation reply is "
                  "not an envelope: %s", error ? error : "?");
        rc = -1;
        goto done;
    }
    if (umb_envelope_status (envelope) != 200) {
        snprintf (reason, reason_size, "attestation refused: the agent answered %d %s",
                  umb_envelope_status (envelope),
                  umb_envelope_error (envelope) ? umb_envelope_error (envelope) : "");
        rc = -1;
        goto done;
    }
    doc = umb_msg_decode (zframe_data (data), zframe_size (data), &error);
    if (!doc || !umb_msg_is_map (doc)) {
        snprintf (reason, reason_size, "the guest link failed: the agent's attestation body is "
                  "not a msgpack map");
        rc = -1;
        goto done;
    }
    const char *name = umb_msg_str (doc, "platform", 16, true);
    const char *key = umb_msg_str (doc, "agent_key", 40, true);
    size_t echo_size = 0, evidence_size = 0, certs_size = 0, report_size = 0;
    const uint8_t *echo = umb_msg_bin (doc, "nonce", 64, &echo_size, true);
    const uint8_t *report_data = umb_msg_bin (doc, "report_data", 64, &report_size, false);
    const uint8_t *evidence = umb_msg_bin (doc, "evidence", 1 << 20, &evidence_size, false);
    const uint8_t *certs = umb_msg_bin (doc, "certs", 1 << 20, &certs_size, false);
    if (umb_msg_failed (doc)) {
        snprintf (reason, reason_size, "the guest link failed: the agent's attestation: %s",
                  umb_msg_error (doc));
        rc = -1;
        goto done;
    }
    uint8_t raw_key [32];
    int which = umb_verify_platform_parse (name);
    if (which < 0 || strlen (key) != 40 || !zmq_z85_decode (raw_key, key)) {
        snprintf (reason, reason_size, "attestation refused: unknown platform '%.16s' or a "
                  "malformed agent key", name);
        rc = -1;
        goto done;
    }
    if (echo_size != sizeof nonce || memcmp (echo, nonce, sizeof nonce)) {
        snprintf (reason, reason_size, "attestation refused: the agent did not echo the nonce");
        rc = -1;
        goto done;
    }
    umb_verify_opts_t opts = {
        .platform = (umb_verify_platform_t) which,
        .evidence = evidence, .evidence_size = evidence_size,
        .certs = certs, .certs_size = certs_size,
        .insecure_dev = self->insecure_dev,
        .agent_key = raw_key, .nonce = nonce, .nonce_size = sizeof nonce,
        .report_data = report_size == 64 ? report_data : NULL
    };
    umb_verify_result_t *result = NULL;
    char why [512];
    if (umb_verify_evidence (&opts, &result, why, sizeof why)) {
        snprintf (reason, reason_size, "attestation refused: %s", why);
        rc = -1;
        goto done;
    }
    *insecure = umb_verify_result_insecure (result);
    umb_verify_result_destroy (&result);
    snprintf (platform, platform_size, "%s", name);
    snprintf (self->agent_key, sizeof self->agent_key, "%s", key);
    rc = 0;
done:
    free (error);
    umb_msg_destroy (&doc);
    umb_envelope_destroy (&envelope);
    zmsg_destroy (&reply);
    return rc;
}

//  ---------------------------------------------------------------- commands

static void
s_reply (s_link_t *self, const char *tag, umb_reply_t *reply, const char *fallback_state)
{
    char status [16];
    snprintf (status, sizeof status, "%d", umb_reply_status (reply));
    const char *state = umb_reply_ok (reply)
        ? umb_msg_str (umb_reply_body (reply), "state", 64, false) : NULL;
    zstr_sendx (self->pipe, "REPLY", tag, status,
                umb_reply_code (reply) ? umb_reply_code (reply) : "",
                umb_reply_error (reply) ? umb_reply_error (reply) : "",
                state ? state : fallback_state, NULL);
}

//  Handles one command from the service; false on $TERM.
static bool
s_command (s_link_t *self, zmsg_t *msg, int64_t *acked)
{
    char *command = zmsg_popstr (msg);
    bool keep = command && !streq (command, "$TERM");
    if (keep && streq (command, "ACK")) {
        char *seq = zmsg_popstr (msg);
        if (seq && atoll (seq) > *acked)
            *acked = atoll (seq);
        zstr_free (&seq);
    }
    else
    if (keep && (streq (command, "MANIFEST") || streq (command, "STOP"))) {
        char *tag = zmsg_popstr (msg);
        char *text = zmsg_popstr (msg);
        bool manifest = streq (command, "MANIFEST");
        umb_w_t *w = umb_w_new ();
        umb_w_map_begin (w);
        umb_w_kv_str (w, manifest ? "manifest" : "reason", text ? text : "");
        umb_w_map_end (w);
        umb_reply_t *reply = umb_client_callw (self->client,
                                               manifest ? "agent.control.manifest"
                                                        : "agent.control.stop",
                                               NULL, w, manifest ? 10000 : 2000, NULL);
        umb_w_destroy (&w);
        s_reply (self, tag ? tag : "", reply, "");
        umb_reply_destroy (&reply);
        zstr_free (&tag);
        zstr_free (&text);
    }
    zstr_free (&command);
    return keep;
}

//  Sends the events of a pull to the service and waits for its ACK (or a
//  command in between). 0, or -1 on $TERM / no ACK.
static int
s_forward (s_link_t *self, umb_msg_t *events, int64_t *acked)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "EVENTS");
    size_t count = umb_msg_size (events);
    zmsg_addstrf (msg, "%zu", count);
    int64_t last = *acked;
    for (size_t index = 0; index < count; index++) {
        umb_msg_t *event = umb_msg_at (events, index);
        int64_t seq = umb_msg_int (event, "seq", 1, INT64_MAX, 0, true);
        int64_t time = umb_msg_int (event, "time", 0, INT64_MAX, 0, false);
        const char *type = umb_msg_str (event, "type", 32, false);
        const char *state = umb_msg_str (event, "state", 64, false);
        const char *message = umb_msg_str (event, "message", S_MESSAGE_MAX, false);
        if (umb_msg_failed (event))
            break;
        zmsg_addstrf (msg, "%lld", (long long) seq);
        zmsg_addstrf (msg, "%lld", (long long) time);
        zmsg_addstr (msg, type ? type : "");
        zmsg_addstr (msg, state ? state : "");
        zmsg_addstr (msg, message ? message : "");
        if (seq > last)
            last = seq;
    }
    zmsg_send (&msg, self->pipe);
    int64_t deadline = zclock_mono () + S_ACK_TIMEOUT_MS;
    while (*acked < last) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return -1;
        zpoller_t *poller = zpoller_new (self->pipe, NULL);
        void *which = zpoller_wait (poller, (int) left);
        zpoller_destroy (&poller);
        if (!which)
            return -1;
        zmsg_t *command = zmsg_recv (self->pipe);
        if (!command || !s_command (self, command, acked)) {
            zmsg_destroy (&command);
            self->done = true;
            return -1;
        }
        zmsg_destroy (&command);
    }
    return 0;
}

static void
s_failed (s_link_t *self, const char *reason)
{
    umb_log_warn (self->log, "CVM %s: %s", self->cvm_id, reason);
    zstr_sendx (self->pipe, "FAILED", reason, NULL);
}

//  Waits for $TERM after a failure (the service ends the actor).
static void
s_linger (s_link_t *self)
{
    while (!self->done) {
        zmsg_t *msg = zmsg_recv (self->pipe);
        if (!msg)
            break;
        char *command = zmsg_popstr (msg);
        if (!command || streq (command, "$TERM"))
            self->done = true;
        else
        if (streq (command, "MANIFEST") || streq (command, "STOP")) {
            char *tag = zmsg_popstr (msg);
            zstr_sendx (self->pipe, "REPLY", tag ? tag : "", "409", "wrong_state",
                        "the agent link is down", "", NULL);
            zstr_free (&tag);
        }
        zstr_free (&command);
        zmsg_destroy (&msg);
    }
}

static void
s_actor (zsock_t *pipe, void *args)
{
    s_link_t *self = args;
    self->pipe = pipe;
    zsock_signal (pipe, 0);
    zstr_sendx (pipe, "ENDPOINTS", self->agent, self->attest, NULL);

    //  1. attestation, retried until the agent answers
    char platform [16] = "";
    bool insecure = false;
    char reason [768];
    int64_t boot_deadline = zclock_mono () + self->boot_timeout_ms;
    int rc = 1;
    while (!self->done && rc == 1) {
        rc = s_attest (self, platform, sizeof platform, &insecure, reason, sizeof reason);
        if (rc == 1 && zclock_mono () >= boot_deadline) {
            snprintf (reason, sizeof reason, "the agent did not come up within %d s",
                      self->boot_timeout_ms / 1000);
            rc = -1;
        }
        if (rc == 1) {
            zpoller_t *poller = zpoller_new (pipe, NULL);
            if (zpoller_wait (poller, S_RETRY_MS) == pipe) {
                char *command = zstr_recv (pipe);
                if (!command || streq (command, "$TERM"))
                    self->done = true;
                zstr_free (&command);
            }
            zpoller_destroy (&poller);
        }
    }
    if (self->done) {
        s_link_destroy (&self);
        return;
    }
    if (rc == -1) {
        s_failed (self, reason);
        s_linger (self);
        s_link_destroy (&self);
        return;
    }
    //  2. the control connection, pinned to the attested key
    self->client = umb_client_new (self->control, self->agent_key, self->identity);
    if (!self->client) {
        s_failed (self, "cannot connect to the agent's control endpoint");
        s_linger (self);
        s_link_destroy (&self);
        return;
    }
    umb_client_set_attempts (self->client, 1);
    zstr_sendx (pipe, "READY", self->agent_key, platform, insecure ? "1" : "0", NULL);

    //  3. the event pump
    int64_t acked = self->after;
    int64_t last_ok = zclock_mono ();
    while (!self->done) {
        //  Commands first, without waiting
        while (zsock_events (pipe) & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv (pipe);
            if (!msg || !s_command (self, msg, &acked))
                self->done = true;
            zmsg_destroy (&msg);
            if (self->done)
                break;
        }
        if (self->done)
            break;
        umb_w_t *w = umb_w_new ();
        umb_w_map_begin (w);
        umb_w_kv_int (w, "after", acked);
        umb_w_kv_int (w, "max", 100);
        umb_w_kv_int (w, "wait_ms", self->poll_ms);
        umb_w_map_end (w);
        umb_reply_t *reply = umb_client_callw (self->client, "agent.events.pull", NULL, w,
                                               self->poll_ms + S_CALL_MARGIN_MS, NULL);
        umb_w_destroy (&w);
        if (umb_reply_ok (reply)) {
            last_ok = zclock_mono ();
            umb_msg_t *events = umb_msg_array (umb_reply_body (reply), "events", 1000, true);
            if (!events) {
                umb_reply_destroy (&reply);
                s_failed (self, "the guest link failed: agent.events.pull answered without "
                                "events");
                s_linger (self);
                break;
            }
            if (umb_msg_size (events) > 0 && s_forward (self, events, &acked) && !self->done) {
                umb_reply_destroy (&reply);
                s_failed (self, "the service did not store the agent's events");
                s_linger (self);
                break;
            }
        }
        else
        if (zclock_mono () - last_ok > self->agent_timeout_ms) {
            snprintf (reason, sizeof reason, "the agent stopped answering (%d %s)",
                      umb_reply_status (reply),
                      umb_reply_error (reply) ? umb_reply_error (reply) : "");
            umb_reply_destroy (&reply);
            s_failed (self, reason);
            s_linger (self);
            break;
        }
        else {
            //  Not answering yet: wait a little on the pipe, not on a clock
            zpoller_t *poller = zpoller_new (pipe, NULL);
            zpoller_wait (poller, S_RETRY_MS);
            zpoller_destroy (&poller);
        }
        umb_reply_destroy (&reply);
    }
    s_link_destroy (&self);
}

//  ---------------------------------------------------------------- new

static bool
s_bridge_endpoint (zactor_t *bridge, const char *name, char *out, size_t size)
{
    zstr_sendx (bridge, "ENDPOINT", name, NULL);
    char *endpoint = zstr_recv (bridge);
    bool ok = endpoint && *endpoint;
    if (ok)
        snprintf (out, size, "%s", endpoint);
    zstr_free (&endpoint);
    return ok;
}

zactor_t *
umb_agent_link_new (const umb_agent_link_config_t *config, char *reason, size_t reason_size)
{
    assert (config && config->cvm_id && config->link && config->control_path
            && config->identity);
    s_link_t *self = calloc (1, sizeof (s_link_t));
    assert (self);
    snprintf (self->cvm_id, sizeof self->cvm_id, "%s", config->cvm_id);
    self->identity = zcert_dup (config->identity);
    self->insecure_dev = config->insecure_dev;
    self->after = config->after;
    self->boot_timeout_ms = config->boot_timeout_ms > 0 ? config->boot_timeout_ms : 120000;
    self->agent_timeout_ms = config->agent_timeout_ms > 0 ? config->agent_timeout_ms : 15000;
    self->poll_ms = config->poll_ms > 0 ? config->poll_ms : 1000;
    self->log = config->log;

    char control [300], agent [160], attest [160];
    snprintf (control, sizeof control, "unix:%s", config->control_path);
    const char *host = config->participant_address && *config->participant_address
                     ? config->participant_address : "127.0.0.1";
    snprintf (agent, sizeof agent, "tcp:%s:0", host);
    snprintf (attest, sizeof attest, "tcp:%s:0", host);
    umb_bridge_route_t listeners [] = {
        { "control", control }, { "agent", agent }, { "attest", attest }
    };
    char *why = NULL;
    self->bridge = umb_bridge_actor_new (&(umb_bridge_config_t) {
        .link = config->link, .listeners = listeners, .listeners_count = 3, .log = config->log },
        &why);
    if (!self->bridge) {
        snprintf (reason, reason_size, "the host side of the bridge: %s",
                  why ? why : "cannot start");
        free (why);
        s_link_destroy (&self);
        return NULL;
    }
    if (!s_bridge_endpoint (self->bridge, "control", self->control, sizeof self->control)
    ||  !s_bridge_endpoint (self->bridge, "agent", self->agent, sizeof self->agent)
    ||  !s_bridge_endpoint (self->bridge, "attest", self->attest, sizeof self->attest)) {
        snprintf (reason, reason_size, "the bridge has no listener endpoints");
        s_link_destroy (&self);
        return NULL;
    }
    zactor_t *actor = zactor_new (s_actor, self);
    assert (actor);
    return actor;
}

void
umb_agent_link_test (bool verbose)
{
    //  The link runs against a real agent in umb_backends' selftest (process
    //  driver); here: a link whose agent never answers fails with the reason
    printf (" * umb_agent_link: ");
    umb_log_t *log = umb_log_new ("test", UMB_LOG_ERROR, false);
    int null_fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
    assert (null_fd >= 0);
    umb_log_set_fd (log, null_fd);      //  the bridge reports the links it loses
    zcert_t *identity = zcert_new ();
    int pair [2];
    assert (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    char link [32], control [128];
    snprintf (link, sizeof link, "fd:%d", pair [0]);
    snprintf (control, sizeof control, "/tmp/umb-agent-link-test-%d.control", getpid ());
    char reason [256];
    zactor_t *actor = umb_agent_link_new (&(umb_agent_link_config_t) {
        .cvm_id = "cvm_test", .link = link, .control_path = control,
        .participant_address = "127.0.0.1", .identity = identity, .boot_timeout_ms = 600,
        .log = log }, reason, sizeof reason);
    assert (actor);
    char *command = NULL, *agent = NULL, *attest = NULL;
    assert (zstr_recvx (actor, &command, &agent, &attest, NULL) == 3);
    assert (streq (command, "ENDPOINTS") && strncmp (agent, "tcp://127.0.0.1:", 16) == 0);
    assert (strncmp (attest, "tcp://127.0.0.1:", 16) == 0 && !streq (agent, attest));
    zstr_free (&command);
    zstr_free (&agent);
    zstr_free (&attest);
    char *why = NULL;
    zsock_set_rcvtimeo (actor, 10000);
    assert (zstr_recvx (actor, &command, &why, NULL) == 2);
    assert (streq (command, "FAILED") && strstr (why, "did not come up"));
    zstr_free (&command);
    zstr_free (&why);
    zactor_destroy (&actor);
    close (pair [1]);

    //  An "agent" speaking garbage over the bridge: a clear reason, no crash.
    //  The guest side of the bridge relays to a ROUTER that answers nonsense.
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert (port > 0);
    char target [64];
    snprintf (target, sizeof target, "tcp://127.0.0.1:%d", port);
    assert (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    char guest_link [32];
    snprintf (guest_link, sizeof guest_link, "fd:%d", pair [1]);
    umb_bridge_route_t targets [] = { { "attest", target }, { "control", target },
                                      { "agent", target } };
    char *why_guest = NULL;
    zactor_t *guest = umb_bridge_actor_new (&(umb_bridge_config_t) {
        .link = guest_link, .targets = targets, .targets_count = 3, .log = log }, &why_guest);
    assert (guest);
    snprintf (link, sizeof link, "fd:%d", pair [0]);
    actor = umb_agent_link_new (&(umb_agent_link_config_t) {
        .cvm_id = "cvm_garbage", .link = link, .control_path = control,
        .participant_address = "127.0.0.1", .identity = identity, .boot_timeout_ms = 20000,
        .log = log }, reason, sizeof reason);
    assert (actor);
    assert (zstr_recvx (actor, &command, &agent, &attest, NULL) == 3);
    zstr_free (&command);
    zstr_free (&agent);
    zstr_free (&attest);
    //  The attestation request arrives through both bridge ends
    zsock_set_rcvtimeo (router, 10000);
    zmsg_t *request = zmsg_recv (router);
    assert (request && zmsg_size (request) == 3);
    zframe_t *routing = zmsg_pop (request);
    zmsg_destroy (&request);
    zmsg_t *garbage = zmsg_new ();
    zmsg_append (garbage, &routing);
    zmsg_addstr (garbage, "\xc1 this is not msgpack");
    zmsg_addstr (garbage, "nor this");
    zmsg_send (&garbage, router);
    assert (zstr_recvx (actor, &command, &why, NULL) == 2);
    assert (streq (command, "FAILED") && strstr (why, "the guest link failed"));
    zstr_free (&command);
    zstr_free (&why);
    zactor_destroy (&actor);
    zactor_destroy (&guest);
    zsock_destroy (&router);

    zcert_destroy (&identity);
    umb_log_destroy (&log);
    close (null_fd);
    if (verbose)
        printf ("(verbose) ");
    printf ("OK\n");
}
