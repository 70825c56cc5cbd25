//  umb_agent_client - the participants' side of the agent protocol
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <czmq.h>
#include <jansson.h>
#include <sodium.h>
#include "umb_agent_client.h"
#include "umb_hex.h"
#include "umb_envelope.h"
#include "umb_sig.h"
#include "umb_verify.h"
//  The selftest runs the real agent actor, and unpacks its result
#include "umb_agent.h"
#include "umb_zap.h"
#include "umb_cli_agent.h"
#include "umb_cli_testkit.h"

#define S_MAX_EVIDENCE   (1024 * 1024)
#define S_MAX_CERTS      (1024 * 1024)
#define S_ABORT_TIMEOUT  2000
#define S_READ_BUFFER    (1024 * 1024)

//  One reply off a socket
typedef struct {
    char       id [UMB_ENVELOPE_MAX_ID + 1];
    int        status;
    char       code [64];
    char       error [512];
    umb_msg_t *body;
} s_reply_t;

//  A chunk request in flight: its request id and sequence number
typedef struct {
    char     id [UMB_ENVELOPE_MAX_ID + 1];
    uint64_t seq;
    bool     used;
} s_flight_t;

struct _umb_agent_client_t {
    char     *endpoint;
    char     *attest_endpoint;
    char     *policy_path;
    bool      insecure_dev;
    int       timeout_ms;
    umb_agent_client_progress_fn *progress;
    void     *progress_arg;
    //  The attestation
    bool      attested;
    char      platform [16];
    char      agent_key [41];
    uint8_t   nonce [UMB_AGENT_CLIENT_NONCE_SIZE];
    uint8_t   report_data [64];
    uint8_t  *evidence;
    size_t    evidence_size;
    char     *certs;
    size_t    certs_size;
    bool      insecure;
    void     *attestation_raw;
    size_t    attestation_raw_size;
    char      warnings [1024];
    //  The channel
    zsock_t  *dealer;
    char     *computation;
    char      state [64];
    char      id_prefix [17];
    uint64_t  sequence;
    umb_w_t  *header;
    umb_w_t  *body;
    //  The last failure
    char      reason [1024];
    int       refusal_status;
    char      refusal_code [64];
};

static void
s_fail (umb_agent_client_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_fail (umb_agent_client_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->reason, sizeof (self->reason), format, args);
    va_end (args);
}

static void
s_reply_clear (s_reply_t *reply)
{
    umb_msg_destroy (&reply->body);
    memset (reply, 0, sizeof (*reply));
}

//  ---------------------------------------------------------------- endpoints

char *
umb_agent_client_next_port (const char *endpoint)
{
    assert (endpoint);
    const char *colon = strrchr (endpoint, ':');
    if (!colon || strncmp (endpoint, "tcp://", 6) != 0 || colon < endpoint + 6)
        return NULL;
    const char *digits = colon + 1;
    if (*digits < '0' || *digits > '9' || strlen (digits) > 5)
        return NULL;
    for (const char *c = digits; *c; c++)
        if (*c < '0' || *c > '9')
            return NULL;
    long port = strtol (digits, NULL, 10);
    if (port < 1 || port >= 65535)
        return NULL;
    char *next = NULL;
    if (asprintf (&next, "%.*s:%ld", (int) (colon - endpoint), endpoint, port + 1) < 0)
        return NULL;
    return next;
}

umb_agent_client_t *
umb_agent_client_new (const char *endpoint)
{
    assert (endpoint);
    char *next = umb_agent_client_next_port (endpoint);
    if (!next)
        return NULL;
    umb_agent_client_t *self = calloc (1, sizeof (umb_agent_client_t));
    assert (self);
    self->endpoint = strdup (endpoint);
    self->attest_endpoint = next;
    self->timeout_ms = UMB_AGENT_CLIENT_TIMEOUT_MS;
    self->header = umb_w_new ();
    self->body = umb_w_new ();
    uint8_t random [8];
    randombytes_buf (random, sizeof (random));
    sodium_bin2hex (self->id_prefix, sizeof (self->id_prefix), random, sizeof (random));
    return self;
}

void
umb_agent_client_destroy (umb_agent_client_t **self_p)
{
    assert (self_p);
    umb_agent_client_t *self = *self_p;
    if (self) {
        zsock_destroy (&self->dealer);
        umb_w_destroy (&self->header);
        umb_w_destroy (&self->body);
        free (self->endpoint);
        free (self->attest_endpoint);
        free (self->policy_path);
        free (self->evidence);
        free (self->certs);
        free (self->attestation_raw);
        free (self->computation);
        free (self);
        *self_p = NULL;
    }
}

void
umb_agent_client_set_attest_endpoint (umb_agent_client_t *self, const char *attest_endpoint)
{
    assert (self);
    if (attest_endpoint) {
        free (self->attest_endpoint);
        self->attest_endpoint = strdup (attest_endpoint);
    }
}

void
umb_agent_client_set_policy (umb_agent_client_t *self, const char *policy_path)
{
    assert (self);
    free (self->policy_path);
    self->policy_path = policy_path ? strdup (policy_path) : NULL;
}

void
umb_agent_client_set_insecure_dev (umb_agent_client_t *self, bool insecure_dev)
{
    assert (self);
    self->insecure_dev = insecure_dev;
}

void
umb_agent_client_set_timeout (umb_agent_client_t *self, int timeout_ms)
{
    assert (self);
    assert (timeout_ms > 0);
    self->timeout_ms = timeout_ms;
}

void
umb_agent_client_set_progress (umb_agent_client_t *self, umb_agent_client_progress_fn *fn,
                               void *arg)
{
    assert (self);
    self->progress = fn;
    self->progress_arg = arg;
}

const char *
umb_agent_client_reason (umb_agent_client_t *self)
{
    assert (self);
    return self->reason;
}

int
umb_agent_client_refusal_status (umb_agent_client_t *self)
{
    assert (self);
    return self->refusal_status;
}

const char *
umb_agent_client_refusal_code (umb_agent_client_t *self)
{
    assert (self);
    return self->refusal_code [0] ? self->refusal_code : NULL;
}

//  ---------------------------------------------------------------- messages

//  Sends op with the body in self->body (NULL: {}) on sock; the request id
//  goes to id (UMB_ENVELOPE_MAX_ID + 1 bytes). 0, or -1 with the reason.
static int
s_send (umb_agent_client_t *self, zsock_t *sock, const char *op, umb_w_t *body, char *id)
{
    snprintf (id, UMB_ENVELOPE_MAX_ID + 1, "%s-%" PRIu64, self->id_prefix, ++self->sequence);
    umb_w_reset (self->header);
    //  The envelope allows deadlines up to an hour
    umb_envelope_write_request (self->header, id, op, NULL,
                                self->timeout_ms < 3600000 ? self->timeout_ms : 3600000);
    size_t header_size, body_size = 1;
    const void *header = umb_w_data (self->header, &header_size);
    static const uint8_t s_empty_map [] = { 0x80 };
    const void *data = body ? umb_w_data (body, &body_size) : s_empty_map;
    zsock_set_sndtimeo (sock, self->timeout_ms);
    if (zmq_send (zsock_resolve (sock), header, header_size, ZMQ_SNDMORE) == -1
    ||  zmq_send (zsock_resolve (sock), data, body_size, 0) == -1) {
        s_fail (self, "no connection to the agent (%s) within %d s: %s",
                sock == self->dealer ? self->endpoint : self->attest_endpoint,
                self->timeout_ms / 1000, zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

//  Receives one reply within timeout_ms. 0 with *reply filled (the caller
//  clears it), or -1 with the reason (timeout, or a reply that is not an
//  envelope: then the connection cannot be trusted to carry on).
static int
s_receive (umb_agent_client_t *self, zsock_t *sock, int timeout_ms, s_reply_t *reply)
{
    memset (reply, 0, sizeof (*reply));
    zmq_pollitem_t item = { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 };
    int rc = zmq_poll (&item, 1, timeout_ms);
    if (rc <= 0) {
        s_fail (self, "no answer from the agent (%s) within %d s",
                sock == self->dealer ? self->endpoint : self->attest_endpoint, timeout_ms / 1000);
        return -1;
    }
    zmsg_t *msg = zmsg_recv (sock);
    if (!msg) {
        s_fail (self, "receiving from the agent failed");
        return -1;
    }
    zframe_t *header = zmsg_first (msg);
    zframe_t *body = zmsg_next (msg);
    char *error = NULL;
    umb_envelope_t *envelope = header && body && zmsg_size (msg) == 2
        ? umb_envelope_decode (zframe_data (header), zframe_size (header), true, &error, NULL)
        : NULL;
    if (!envelope) {
        s_fail (self, "the agent sent a malformed reply: %s",
                error ? error : "not [header][body]");
        free (error);
        zmsg_destroy (&msg);
        return -1;
    }
    snprintf (reply->id, sizeof (reply->id), "%s", umb_envelope_id (envelope));
    reply->status = umb_envelope_status (envelope);
    snprintf (reply->code, sizeof (reply->code), "%s",
              umb_envelope_code (envelope) ? umb_envelope_code (envelope) : "");
    snprintf (reply->error, sizeof (reply->error), "%s",
              umb_envelope_error (envelope) ? umb_envelope_error (envelope) : "");
    umb_envelope_destroy (&envelope);
    reply->body = umb_msg_decode (zframe_data (body), zframe_size (body), &error);
    zmsg_destroy (&msg);
    if (!reply->body || !umb_msg_is_map (reply->body)) {
        s_fail (self, "the agent sent a reply body that is not a map%s%s",
                error ? ": " : "", error ? error : "");
        free (error);
        s_reply_clear (reply);
        return -1;
    }
    return 0;
}

//  Records a refusal: the agent's status, code and words
static void
s_refused (umb_agent_client_t *self, const char *op, s_reply_t *reply)
{
    self->refusal_status = reply->status;
    snprintf (self->refusal_code, sizeof (self->refusal_code), "%s", reply->code);
    s_fail (self, "the agent refused %s: %s (%d %s)", op,
            reply->error [0] ? reply->error : "no reason given", reply->status, reply->code);
}

//  One request and its reply; replies to other (abandoned) requests are
//  discarded. 0 with a 2xx *reply (the caller clears it), or -1 with the
//  reason (*reply cleared).
static int
s_call (umb_agent_client_t *self, zsock_t *sock, const char *op, umb_w_t *body,
        int timeout_ms, s_reply_t *reply)
{
    char id [UMB_ENVELOPE_MAX_ID + 1];
    memset (reply, 0, sizeof (*reply));
    if (s_send (self, sock, op, body, id))
        return -1;
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        int64_t remaining = deadline - zclock_mono ();
        if (remaining <= 0) {
            s_fail (self, "no answer from the agent to %s within %d s", op, timeout_ms / 1000);
            return -1;
        }
        if (s_receive (self, sock, (int) remaining, reply))
            return -1;
        if (streq (reply->id, id))
            break;
        s_reply_clear (reply);
    }
    if (reply->status < 200 || reply->status > 299) {
        s_refused (self, op, reply);
        s_reply_clear (reply);
        return -1;
    }
    if (umb_msg_failed (reply->body)) {
        s_fail (self, "bad reply to %s: %s", op, umb_msg_error (reply->body));
        s_reply_clear (reply);
        return -1;
    }
    return 0;
}

//  Checks a reply body's fields after reading them; -1 with the reason
static int
s_check_body (umb_agent_client_t *self, const char *op, s_reply_t *reply)
{
    if (umb_msg_failed (reply->body)) {
        s_fail (self, "the agent's reply to %s is malformed: %s", op, umb_msg_error (reply->body));
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------- attestation

//  Verifies the evidence itself (platform signature, chain, policy, binding)
static int
s_verify (umb_agent_client_t *self, const uint8_t key_raw [32])
{
    char reason [512] = "";
    int platform = umb_verify_platform_parse (self->platform);
    if (platform < 0) {
        s_fail (self, "the agent presents evidence of an unknown platform '%s'", self->platform);
        return -1;
    }
    umb_policy_t *policy = NULL;
    if (self->policy_path) {
        policy = umb_policy_load (self->policy_path, reason, sizeof (reason));
        if (!policy) {
            s_fail (self, "the policy %s: %s", self->policy_path, reason);
            return -1;
        }
    }
    umb_verify_opts_t opts = {
        .platform = (umb_verify_platform_t) platform,
        .evidence = self->evidence,
        .evidence_size = self->evidence_size,
        .certs = (const uint8_t *) self->certs,
        .certs_size = self->certs_size,
        .policy = policy,
        .insecure_dev = self->insecure_dev,
        .agent_key = key_raw,
        .nonce = self->nonce,
        .nonce_size = sizeof (self->nonce),
        .report_data = self->report_data
    };
    umb_verify_result_t *result = NULL;
    int rc = umb_verify_evidence (&opts, &result, reason, sizeof (reason));
    umb_policy_destroy (&policy);
    if (rc) {
        s_fail (self, "the agent's attestation does not verify: %s", reason);
        return -1;
    }
    snprintf (self->warnings, sizeof (self->warnings), "%s", umb_verify_result_warnings (result));
    umb_verify_result_destroy (&result);
    return 0;
}

int
umb_agent_client_attest (umb_agent_client_t *self)
{
    assert (self);
    self->reason [0] = 0;
    self->refusal_status = 0;
    self->refusal_code [0] = 0;
    if (self->attested)
        return 0;
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    assert (sock);
    zsock_set_linger (sock, 0);
    zsock_set_immediate (sock, 1);
    if (zsock_connect (sock, "%s", self->attest_endpoint)) {
        s_fail (self, "bad attestation endpoint '%s'", self->attest_endpoint);
        zsock_destroy (&sock);
        return -1;
    }
    randombytes_buf (self->nonce, sizeof (self->nonce));
    umb_w_reset (self->body);
    umb_w_map_begin (self->body);
    umb_w_key (self->body, "nonce");
    umb_w_bin (self->body, self->nonce, sizeof (self->nonce));
    umb_w_map_end (self->body);
    s_reply_t reply;
    int rc = s_call (self, sock, "agent.attestation", self->body, self->timeout_ms, &reply);
    zsock_destroy (&sock);
    if (rc)
        return -1;
    umb_msg_t *body = reply.body;
    const char *platform = umb_msg_str (body, "platform", 8, true);
    const char *agent_key = umb_msg_str (body, "agent_key", 40, true);
    size_t nonce_size = 0, report_data_size = 0, evidence_size = 0, certs_size = 0;
    const uint8_t *nonce = umb_msg_bin (body, "nonce", 64, &nonce_size, true);
    const uint8_t *report_data = umb_msg_bin (body, "report_data", 64, &report_data_size, true);
    const uint8_t *evidence = umb_msg_bin (body, "evidence", S_MAX_EVIDENCE, &evidence_size, true);
    const uint8_t *certs = umb_msg_bin (body, "certs", S_MAX_CERTS, &certs_size, false);
    bool insecure = umb_msg_bool (body, "insecure", false, false);
    if (s_check_body (self, "agent.attestation", &reply)) {
        s_reply_clear (&reply);
        return -1;
    }
    uint8_t key_raw [32];
    if (strlen (agent_key) != 40 || !zmq_z85_decode (key_raw, agent_key)) {
        s_fail (self, "the attestation's agent_key is not a Z85 CURVE key");
        s_reply_clear (&reply);
        return -1;
    }
    if (nonce_size != sizeof (self->nonce) || memcmp (nonce, self->nonce, nonce_size) != 0) {
        s_fail (self, "the attestation does not echo our nonce (a replayed or foreign answer)");
        s_reply_clear (&reply);
        return -1;
    }
    //  report_data = SHA-512 ("umbra-attest-v1" || agent key || nonce)
    uint8_t expected [64];
    crypto_hash_sha512_state sha;
    crypto_hash_sha512_init (&sha);
    crypto_hash_sha512_update (&sha, (const uint8_t *) "umbra-attest-v1", 15);
    crypto_hash_sha512_update (&sha, key_raw, sizeof (key_raw));
    crypto_hash_sha512_update (&sha, self->nonce, sizeof (self->nonce));
    crypto_hash_sha512_final (&sha, expected);
    if (report_data_size != 64 || sodium_memcmp (report_data, expected, 64) != 0) {
        s_fail (self, "the attestation's report_data does not bind the agent key to our nonce");
        s_reply_clear (&reply);
        return -1;
    }
    snprintf (self->platform, sizeof (self->platform), "%s", platform);
    memcpy (self->agent_key, agent_key, 41);
    memcpy (self->report_data, report_data, 64);
    free (self->evidence);
    self->evidence = malloc (evidence_size + 1);
    assert (self->evidence);
    memcpy (self->evidence, evidence, evidence_size);
    self->evidence_size = evidence_size;
    free (self->certs);
    self->certs = malloc (certs_size + 1);
    assert (self->certs);
    if (certs_size)
        memcpy (self->certs, certs, certs_size);
    self->certs [certs_size] = 0;
    self->certs_size = certs_size;
    self->insecure = insecure;
    free (self->attestation_raw);
    self->attestation_raw = NULL;
    umb_w_reset (self->body);
    umb_w_msg (self->body, body);
    const void *raw = umb_w_data (self->body, &self->attestation_raw_size);
    self->attestation_raw = malloc (self->attestation_raw_size);
    assert (self->attestation_raw);
    memcpy (self->attestation_raw, raw, self->attestation_raw_size);
    s_reply_clear (&reply);

    bool none = streq (self->platform, "none");
    if (none != self->insecure) {
        s_fail (self, "the attestation says platform '%s' but insecure %s",
                self->platform, self->insecure ? "true" : "false");
        return -1;
    }
    if (!none && self->insecure_dev) {
        s_fail (self, "--insecure-dev is only for agents without a TEE; this agent presents "
                      "'%s' evidence, which is always verified", self->platform);
        return -2;
    }
    if (none && !self->insecure_dev) {
        s_fail (self, "the agent runs without a TEE (platform none): nothing is attested; "
                      "--insecure-dev accepts that, for development only");
        return -1;
    }
    if (s_verify (self, key_raw))
        return -1;
    self->attested = true;
    return 0;
}

int
umb_agent_client_connect (umb_agent_client_t *self)
{
    assert (self);
    int rc = umb_agent_client_attest (self);
    if (rc)
        return rc;
    if (self->dealer)
        return 0;
    zcert_t *cert = zcert_new ();
    assert (cert);
    self->dealer = zsock_new (ZMQ_DEALER);
    assert (self->dealer);
    zcert_apply (cert, self->dealer);
    zcert_destroy (&cert);          //  the key pair lives in the socket only
    zsock_set_curve_serverkey (self->dealer, self->agent_key);
    zsock_set_linger (self->dealer, 0);
    zsock_set_immediate (self->dealer, 1);
    if (zsock_connect (self->dealer, "%s", self->endpoint)) {
        s_fail (self, "bad agent endpoint '%s'", self->endpoint);
        zsock_destroy (&self->dealer);
        return -1;
    }
    umb_msg_t *status = umb_agent_client_status (self);
    if (!status) {
        zsock_destroy (&self->dealer);
        return -1;
    }
    const char *computation = umb_msg_str (status, "computation", UMB_SIG_ID_MAX, false);
    const char *state = umb_msg_str (status, "state", 63, false);
    if (umb_msg_failed (status)) {
        s_fail (self, "the agent's status is malformed: %s", umb_msg_error (status));
        umb_msg_destroy (&status);
        zsock_destroy (&self->dealer);
        return -1;
    }
    free (self->computation);
    self->computation = computation ? strdup (computation) : NULL;
    snprintf (self->state, sizeof (self->state), "%s", state ? state : "");
    umb_msg_destroy (&status);
    return 0;
}

const char *umb_agent_client_platform (umb_agent_client_t *self)  { assert (self); return self->platform [0] ? self->platform : NULL; }
const char *umb_agent_client_agent_key (umb_agent_client_t *self) { assert (self); return self->agent_key [0] ? self->agent_key : NULL; }
bool        umb_agent_client_insecure (umb_agent_client_t *self)  { assert (self); return self->insecure; }
const char *umb_agent_client_computation (umb_agent_client_t *self) { assert (self); return self->computation; }
const char *umb_agent_client_warnings (umb_agent_client_t *self) { assert (self); return self->warnings; }

const char *
umb_agent_client_state (umb_agent_client_t *self)
{
    assert (self);
    return self->state [0] ? self->state : NULL;
}

const uint8_t *
umb_agent_client_nonce (umb_agent_client_t *self, size_t *size)
{
    assert (self && size);
    *size = self->platform [0] ? sizeof (self->nonce) : 0;
    return self->platform [0] ? self->nonce : NULL;
}

const uint8_t *
umb_agent_client_report_data (umb_agent_client_t *self)
{
    assert (self);
    return self->platform [0] ? self->report_data : NULL;
}

const uint8_t *
umb_agent_client_evidence (umb_agent_client_t *self, size_t *size)
{
    assert (self && size);
    *size = self->evidence_size;
    return self->evidence;
}

const char *
umb_agent_client_certs (umb_agent_client_t *self, size_t *size)
{
    assert (self && size);
    *size = self->certs_size;
    return self->certs;
}

const void *
umb_agent_client_attestation_raw (umb_agent_client_t *self, size_t *size)
{
    assert (self && size);
    *size = self->attestation_raw_size;
    return self->attestation_raw;
}

//  ---------------------------------------------------------------- status, challenges

umb_msg_t *
umb_agent_client_status (umb_agent_client_t *self)
{
    assert (self && self->dealer);
    s_reply_t reply;
    if (s_call (self, self->dealer, "agent.status", NULL, self->timeout_ms, &reply))
        return NULL;
    umb_msg_t *body = reply.body;
    reply.body = NULL;
    return body;
}

//  A fresh challenge into challenge. 0 or -1.
static int
s_challenge (umb_agent_client_t *self, uint8_t challenge [UMB_SIG_CHALLENGE_SIZE])
{
    s_reply_t reply;
    if (s_call (self, self->dealer, "agent.challenge", NULL, self->timeout_ms, &reply))
        return -1;
    size_t size = 0;
    const void *data = umb_msg_bin (reply.body, "challenge", UMB_SIG_CHALLENGE_SIZE, &size, true);
    if (s_check_body (self, "agent.challenge", &reply)) {
        s_reply_clear (&reply);
        return -1;
    }
    if (size != UMB_SIG_CHALLENGE_SIZE) {
        s_fail (self, "the agent's challenge is not %d bytes", UMB_SIG_CHALLENGE_SIZE);
        s_reply_clear (&reply);
        return -1;
    }
    memcpy (challenge, data, UMB_SIG_CHALLENGE_SIZE);
    s_reply_clear (&reply);
    return 0;
}

static int
s_need_channel (umb_agent_client_t *self)
{
    self->reason [0] = 0;
    self->refusal_status = 0;
    self->refusal_code [0] = 0;
    if (!self->computation || !self->computation [0]) {
        s_fail (self, "the agent has no computation yet (no manifest)");
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------- uploads

bool
umb_agent_client_window_open (uint64_t sent, uint64_t answered, int64_t credit)
{
    assert (answered <= sent);
    return credit > 0 && sent - answered < (uint64_t) credit;
}

//  Reads exactly size bytes at offset; -1 on an error or a short file
static int
s_pread_full (int fd, uint8_t *buffer, size_t size, uint64_t offset)
{
    size_t done = 0;
    while (done < size) {
        ssize_t rc = pread (fd, buffer + done, size - done, (off_t) (offset + done));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0)
            errno = 0;              //  the file got shorter
        if (rc <= 0)
            return -1;
        done += (size_t) rc;
    }
    return 0;
}

//  Best effort; keeps the reason (and refusal) of the failure that led here
static void
s_upload_abort (umb_agent_client_t *self, const char *upload)
{
    char reason [sizeof (self->reason)], code [sizeof (self->refusal_code)];
    memcpy (reason, self->reason, sizeof (reason));
    memcpy (code, self->refusal_code, sizeof (code));
    int status = self->refusal_status;
    umb_w_reset (self->body);
    umb_w_map_begin (self->body);
    umb_w_kv_str (self->body, "upload", upload);
    umb_w_map_end (self->body);
    s_reply_t reply;
    if (s_call (self, self->dealer, "agent.upload.abort", self->body, S_ABORT_TIMEOUT, &reply) == 0)
        s_reply_clear (&reply);
    memcpy (self->reason, reason, sizeof (reason));
    memcpy (self->refusal_code, code, sizeof (code));
    self->refusal_status = status;
}

//  Finds and frees the flight with this id; its seq into *seq. false if none.
static bool
s_flight_take (s_flight_t *flights, size_t count, const char *id, uint64_t *seq)
{
    for (size_t i = 0; i < count; i++)
        if (flights [i].used && streq (flights [i].id, id)) {
            flights [i].used = false;
            *seq = flights [i].seq;
            return true;
        }
    return false;
}

//  A free slot, growing the table as needed
static s_flight_t *
s_flight_slot (s_flight_t **flights, size_t *count)
{
    for (size_t i = 0; i < *count; i++)
        if (!(*flights) [i].used)
            return &(*flights) [i];
    size_t grown = *count ? *count * 2 : 16;
    *flights = realloc (*flights, grown * sizeof (s_flight_t));
    assert (*flights);
    memset (*flights + *count, 0, (grown - *count) * sizeof (s_flight_t));
    s_flight_t *slot = &(*flights) [*count];
    *count = grown;
    return slot;
}

static void
s_free_chunk (void *data, void *hint)
{
    free (data);
}

//  Sends agent.upload.chunk {upload, seq, data} with the file's bytes read
//  straight into the frame zmq sends (no copies): the body is encoded here
//  as fixmap 3, str8 upload, uint64 seq, bin32 data. The request id goes to
//  id. 0, or -1 with the reason.
static int
s_send_chunk (umb_agent_client_t *self, int fd, const char *upload, uint64_t seq,
              uint64_t offset, size_t length, char *id)
{
    size_t upload_length = strlen (upload);
    assert (upload_length <= 255);
    size_t header_size = 1 + 7 + 2 + upload_length + 4 + 9 + 5 + 5;
    uint8_t *frame = malloc (header_size + length);
    assert (frame);
    uint8_t *at = frame;
    *at++ = 0x83;
    *at++ = 0xa6;
    memcpy (at, "upload", 6);
    at += 6;
    *at++ = 0xd9;
    *at++ = (uint8_t) upload_length;
    memcpy (at, upload, upload_length);
    at += upload_length;
    *at++ = 0xa3;
    memcpy (at, "seq", 3);
    at += 3;
    *at++ = 0xcf;
    for (int shift = 56; shift >= 0; shift -= 8)
        *at++ = (uint8_t) (seq >> shift);
    *at++ = 0xa4;
    memcpy (at, "data", 4);
    at += 4;
    *at++ = 0xc6;
    for (int shift = 24; shift >= 0; shift -= 8)
        *at++ = (uint8_t) ((uint32_t) length >> shift);
    assert ((size_t) (at - frame) == header_size);
    if (s_pread_full (fd, at, length, offset)) {
        s_fail (self, "reading the file failed at byte %" PRIu64 " (%s)", offset,
                errno ? strerror (errno) : "it got shorter while uploading");
        free (frame);
        return -1;
    }
    snprintf (id, UMB_ENVELOPE_MAX_ID + 1, "%s-%" PRIu64, self->id_prefix, ++self->sequence);
    umb_w_reset (self->header);
    umb_envelope_write_request (self->header, id, "agent.upload.chunk", NULL,
                                self->timeout_ms < 3600000 ? self->timeout_ms : 3600000);
    size_t envelope_size;
    const void *envelope = umb_w_data (self->header, &envelope_size);
    zsock_set_sndtimeo (self->dealer, self->timeout_ms);
    zmq_msg_t msg;
    int rc = zmq_msg_init_data (&msg, frame, header_size + length, s_free_chunk, NULL);
    assert (rc == 0);
    if (zmq_send (zsock_resolve (self->dealer), envelope, envelope_size, ZMQ_SNDMORE) == -1
    ||  zmq_msg_send (&msg, zsock_resolve (self->dealer), 0) == -1) {
        s_fail (self, "sending to the agent (%s) failed within %d s: %s", self->endpoint,
                self->timeout_ms / 1000, zmq_strerror (zmq_errno ()));
        zmq_msg_close (&msg);
        return -1;
    }
    return 0;
}

//  Streams the chunks of an open upload; 0 or -1
static int
s_upload_chunks (umb_agent_client_t *self, int fd, const char *upload, uint64_t size,
                 uint64_t chunk_size, int64_t credit)
{
    uint64_t chunks = (size + chunk_size - 1) / chunk_size;
    s_flight_t *flights = NULL;
    size_t flight_count = 0;
    uint64_t sent = 0, answered = 0;
    int rc = 0;
    while (answered < chunks) {
        while (sent < chunks && umb_agent_client_window_open (sent, answered, credit)) {
            uint64_t offset = sent * chunk_size;
            size_t length = (size_t) (size - offset < chunk_size ? size - offset : chunk_size);
            s_flight_t *slot = s_flight_slot (&flights, &flight_count);
            if (s_send_chunk (self, fd, upload, sent, offset, length, slot->id)) {
                rc = -1;
                goto done;
            }
            slot->seq = sent;
            slot->used = true;
            sent++;
        }
        if (answered == sent) {
            s_fail (self, "the agent gives no credit to send chunk %" PRIu64, sent);
            rc = -1;
            goto done;
        }
        s_reply_t reply;
        if (s_receive (self, self->dealer, self->timeout_ms, &reply)) {
            rc = -1;
            goto done;
        }
        uint64_t seq;
        if (!s_flight_take (flights, flight_count, reply.id, &seq)) {
            s_reply_clear (&reply);         //  an answer to an abandoned request
            continue;
        }
        if (reply.status < 200 || reply.status > 299) {
            s_refused (self, "the upload's chunk", &reply);
            s_reply_clear (&reply);
            rc = -1;
            goto done;
        }
        int64_t reply_seq = umb_msg_int (reply.body, "seq", 0, INT64_MAX, 0, true);
        int64_t reply_credit = umb_msg_int (reply.body, "credit", 0, INT32_MAX, 0, true);
        if (s_check_body (self, "agent.upload.chunk", &reply) || (uint64_t) reply_seq != seq) {
            if ((uint64_t) reply_seq != seq && !umb_msg_failed (reply.body))
                s_fail (self, "the agent answered chunk %" PRIu64 " with seq %" PRId64,
                        seq, reply_seq);
            s_reply_clear (&reply);
            rc = -1;
            goto done;
        }
        s_reply_clear (&reply);
        credit = reply_credit;
        answered++;
        if (self->progress) {
            uint64_t done_bytes = answered * chunk_size;
            self->progress (self->progress_arg, "uploading", done_bytes > size ? size : done_bytes, size);
        }
    }
done:
    free (flights);
    return rc;
}

int
umb_agent_client_upload (umb_agent_client_t *self, const char *role, const char *path,
                         EVP_PKEY *key, const uint8_t *hash)
{
    assert (self && self->dealer && role && path && key);
    if (s_need_channel (self))
        return -1;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat (fd, &st) || !S_ISREG (st.st_mode)) {
        s_fail (self, "%s: %s", path, fd < 0 ? strerror (errno) : "not a regular file");
        if (fd >= 0)
            close (fd);
        return -1;
    }
    uint64_t size = (uint64_t) st.st_size;
    uint8_t digest [UMB_SIG_HASH_SIZE];
    if (hash)
        memcpy (digest, hash, sizeof (digest));
    else {
        umb_sig_sha3_t *sha = umb_sig_sha3_new ();
        assert (sha);
        uint8_t *buffer = malloc (S_READ_BUFFER);
        assert (buffer);
        uint64_t total = 0;
        ssize_t got;
        while ((got = read (fd, buffer, S_READ_BUFFER)) != 0) {
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                break;
            umb_sig_sha3_update (sha, buffer, (size_t) got);
            total += (uint64_t) got;
            if (self->progress)
                self->progress (self->progress_arg, "hashing", total > size ? size : total, size);
        }
        umb_sig_sha3_final (sha, digest);
        umb_sig_sha3_destroy (&sha);
        free (buffer);
        if (got < 0 || total != size) {
            s_fail (self, "%s: reading failed (%s)", path,
                    got < 0 ? strerror (errno) : "its size changed");
            close (fd);
            return -1;
        }
    }
    char hex [UMB_SIG_HASH_HEX_SIZE];
    umb_hex_encode (digest, sizeof (digest), hex);

    uint8_t challenge [UMB_SIG_CHALLENGE_SIZE];
    uint8_t statement [UMB_SIG_STATEMENT_MAX];
    uint8_t *signature = NULL;
    size_t signature_size = 0;
    if (s_challenge (self, challenge)) {
        close (fd);
        return -1;
    }
    ssize_t statement_size = umb_sig_statement_upload (role, self->computation, digest, challenge,
                                                       statement, sizeof (statement));
    if (statement_size < 0
    ||  umb_sig_sign (key, statement, (size_t) statement_size, &signature, &signature_size)) {
        s_fail (self, "signing the upload statement failed (role '%s')", role);
        close (fd);
        return -1;
    }
    umb_w_reset (self->body);
    umb_w_map_begin (self->body);
    umb_w_kv_str (self->body, "role", role);
    umb_w_kv_str (self->body, "computation", self->computation);
    umb_w_kv_str (self->body, "hash", hex);
    umb_w_kv_int (self->body, "size", (int64_t) size);
    umb_w_key (self->body, "challenge");
    umb_w_bin (self->body, challenge, sizeof (challenge));
    umb_w_key (self->body, "signature");
    umb_w_bin (self->body, signature, signature_size);
    umb_w_map_end (self->body);
    free (signature);
    s_reply_t reply;
    if (s_call (self, self->dealer, "agent.upload.begin", self->body, self->timeout_ms, &reply)) {
        close (fd);
        return -1;
    }
    const char *upload_id = umb_msg_str (reply.body, "upload", 128, true);
    int64_t chunk_size = umb_msg_int (reply.body, "chunk_size", 1, UMB_AGENT_CLIENT_MAX_CHUNK, 0, true);
    int64_t credit = umb_msg_int (reply.body, "credit", 1, INT32_MAX, 0, true);
    if (s_check_body (self, "agent.upload.begin", &reply)) {
        s_reply_clear (&reply);
        close (fd);
        return -1;
    }
    char *upload = strdup (upload_id);
    s_reply_clear (&reply);
    if (self->progress)
        self->progress (self->progress_arg, "uploading", 0, size);

    int rc = s_upload_chunks (self, fd, upload, size, (uint64_t) chunk_size, credit);
    close (fd);
    if (rc) {
        //  A refused chunk aborted the upload on the agent already
        if (!self->refusal_status)
            s_upload_abort (self, upload);
        free (upload);
        return -1;
    }
    uint64_t chunks = (size + (uint64_t) chunk_size - 1) / (uint64_t) chunk_size;
    umb_w_reset (self->body);
    umb_w_map_begin (self->body);
    umb_w_kv_str (self->body, "upload", upload);
    umb_w_kv_int (self->body, "chunks", (int64_t) chunks);
    umb_w_map_end (self->body);
    free (upload);
    if (s_call (self, self->dealer, "agent.upload.end", self->body, self->timeout_ms, &reply))
        return -1;
    const char *their_hash = umb_msg_str (reply.body, "hash", 64, true);
    int64_t their_size = umb_msg_int (reply.body, "size", 0, INT64_MAX, 0, true);
    const char *state = umb_msg_str (reply.body, "state", 63, true);
    if (s_check_body (self, "agent.upload.end", &reply)) {
        s_reply_clear (&reply);
        return -1;
    }
    if (strcasecmp (their_hash, hex) != 0 || (uint64_t) their_size != size) {
        s_fail (self, "the agent recorded %s (%" PRId64 " bytes), not what was sent, %s "
                "(%" PRIu64 " bytes)", their_hash, their_size, hex, size);
        s_reply_clear (&reply);
        return -1;
    }
    snprintf (self->state, sizeof (self->state), "%s", state);
    s_reply_clear (&reply);
    return 0;
}

//  ---------------------------------------------------------------- results

//  Downloads the chunks into fd; 0 or -1
static int
s_download_chunks (umb_agent_client_t *self, int fd, const char *download, uint64_t size,
                   uint64_t chunk_size)
{
    uint64_t chunks = (size + chunk_size - 1) / chunk_size;
    s_flight_t *flights = NULL;
    size_t flight_count = 0;
    uint64_t sent = 0, answered = 0, bytes = 0;
    int rc = 0;
    while (answered < chunks) {
        while (sent < chunks && sent - answered < UMB_AGENT_CLIENT_DOWNLOAD_WINDOW) {
            umb_w_reset (self->body);
            umb_w_map_begin (self->body);
            umb_w_kv_str (self->body, "download", download);
            umb_w_kv_int (self->body, "seq", (int64_t) sent);
            umb_w_map_end (self->body);
            s_flight_t *slot = s_flight_slot (&flights, &flight_count);
            if (s_send (self, self->dealer, "agent.result.chunk", self->body, slot->id)) {
                rc = -1;
                goto done;
            }
            slot->seq = sent++;
            slot->used = true;
        }
        s_reply_t reply;
        if (s_receive (self, self->dealer, self->timeout_ms, &reply)) {
            rc = -1;
            goto done;
        }
        uint64_t seq;
        if (!s_flight_take (flights, flight_count, reply.id, &seq)) {
            s_reply_clear (&reply);
            continue;
        }
        if (reply.status < 200 || reply.status > 299) {
            s_refused (self, "the result's chunk", &reply);
            s_reply_clear (&reply);
            rc = -1;
            goto done;
        }
        int64_t reply_seq = umb_msg_int (reply.body, "seq", 0, INT64_MAX, 0, true);
        size_t length = 0;
        const uint8_t *data = umb_msg_bin (reply.body, "data", (size_t) chunk_size, &length, true);
        uint64_t offset = seq * chunk_size;
        uint64_t expected = size - offset < chunk_size ? size - offset : chunk_size;
        if (s_check_body (self, "agent.result.chunk", &reply)) {
            s_reply_clear (&reply);
            rc = -1;
            goto done;
        }
        if ((uint64_t) reply_seq != seq || length != expected) {
            s_fail (self, "the agent answered chunk %" PRIu64 " with seq %" PRId64 " and %zu "
                    "bytes (expected %" PRIu64 ")", seq, reply_seq, length, expected);
            s_reply_clear (&reply);
            rc = -1;
            goto done;
        }
        size_t written = 0;
        while (written < length) {
            ssize_t w = pwrite (fd, data + written, length - written, (off_t) (offset + written));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                s_fail (self, "writing the result failed: %s", strerror (errno));
                s_reply_clear (&reply);
                rc = -1;
                goto done;
            }
            written += (size_t) w;
        }
        s_reply_clear (&reply);
        answered++;
        bytes += length;
        if (self->progress)
            self->progress (self->progress_arg, "downloading", bytes, size);
    }
done:
    free (flights);
    return rc;
}

int
umb_agent_client_result (umb_agent_client_t *self, EVP_PKEY *key, const char *tar_path)
{
    assert (self && self->dealer && key && tar_path);
    if (s_need_channel (self))
        return -1;
    uint8_t challenge [UMB_SIG_CHALLENGE_SIZE];
    uint8_t statement [UMB_SIG_STATEMENT_MAX];
    uint8_t *signature = NULL;
    size_t signature_size = 0;
    if (s_challenge (self, challenge))
        return -1;
    ssize_t statement_size = umb_sig_statement_result (self->computation, challenge,
                                                       statement, sizeof (statement));
    char *pem = umb_sig_public_pem (key);
    if (statement_size < 0 || !pem
    ||  umb_sig_sign (key, statement, (size_t) statement_size, &signature, &signature_size)) {
        s_fail (self, "signing the result statement failed");
        free (pem);
        return -1;
    }
    umb_w_reset (self->body);
    umb_w_map_begin (self->body);
    umb_w_kv_str (self->body, "computation", self->computation);
    umb_w_key (self->body, "challenge");
    umb_w_bin (self->body, challenge, sizeof (challenge));
    umb_w_key (self->body, "signature");
    umb_w_bin (self->body, signature, signature_size);
    umb_w_kv_str (self->body, "key", pem);
    umb_w_map_end (self->body);
    free (signature);
    free (pem);
    s_reply_t reply;
    if (s_call (self, self->dealer, "agent.result.begin", self->body, self->timeout_ms, &reply))
        return -1;
    const char *download_id = umb_msg_str (reply.body, "download", 128, true);
    int64_t size = umb_msg_int (reply.body, "size", 0, INT64_MAX, 0, true);
    const char *hash_hex = umb_msg_str (reply.body, "hash", 64, true);
    int64_t chunk_size = umb_msg_int (reply.body, "chunk_size", 1, UMB_AGENT_CLIENT_MAX_CHUNK, 0, true);
    uint8_t announced [UMB_SIG_HASH_SIZE];
    if (s_check_body (self, "agent.result.begin", &reply)) {
        s_reply_clear (&reply);
        return -1;
    }
    if (umb_hex_decode (hash_hex, announced, sizeof (announced))) {
        s_fail (self, "the agent announced a malformed result hash");
        s_reply_clear (&reply);
        return -1;
    }
    char *download = strdup (download_id);
    s_reply_clear (&reply);

    char *temp = NULL;
    if (asprintf (&temp, "%s.part-XXXXXX", tar_path) < 0)
        assert (false);
    int fd = mkostemp (temp, O_CLOEXEC);
    if (fd < 0) {
        s_fail (self, "cannot create a file beside %s: %s", tar_path, strerror (errno));
        free (temp);
        free (download);
        return -1;
    }
    if (self->progress)
        self->progress (self->progress_arg, "downloading", 0, (uint64_t) size);
    int rc = s_download_chunks (self, fd, download, (uint64_t) size, (uint64_t) chunk_size);
    if (rc == 0 && fsync (fd)) {
        s_fail (self, "writing %s failed: %s", temp, strerror (errno));
        rc = -1;
    }
    close (fd);
    if (rc == 0) {
        uint8_t digest [UMB_SIG_HASH_SIZE];
        uint64_t got_size = 0;
        char reason [256];
        if (umb_sig_sha3_file (temp, digest, &got_size, reason, sizeof (reason))) {
            s_fail (self, "hashing the result failed: %s", reason);
            rc = -1;
        }
        else
        if (got_size != (uint64_t) size || sodium_memcmp (digest, announced, sizeof (digest))) {
            s_fail (self, "the result received does not match the hash the agent announced");
            rc = -1;
        }
    }
    if (rc == 0 && rename (temp, tar_path)) {
        s_fail (self, "cannot rename the result to %s: %s", tar_path, strerror (errno));
        rc = -1;
    }
    if (rc)
        unlink (temp);
    free (temp);
    if (rc == 0) {
        umb_w_reset (self->body);
        umb_w_map_begin (self->body);
        umb_w_kv_str (self->body, "download", download);
        umb_w_map_end (self->body);
        rc = s_call (self, self->dealer, "agent.result.end", self->body, self->timeout_ms, &reply);
        if (rc == 0) {
            const char *state = umb_msg_str (reply.body, "state", 63, true);
            if (s_check_body (self, "agent.result.end", &reply))
                rc = -1;
            else
                snprintf (self->state, sizeof (self->state), "%s", state);
            s_reply_clear (&reply);
        }
    }
    free (download);
    return rc;
}

//  ---------------------------------------------------------------- selftest

enum {
    S_FAKE_WRONG_NONCE = 0,
    S_FAKE_WRONG_BINDING,
    S_FAKE_NONE,
    S_FAKE_SNP,
    S_FAKE_BAD_KEY,
    S_FAKE_REFUSE
};

//  Answers agent.attestation on a plain ROUTER in one of the ways above; sends
//  its port + 0 (the attestation port) up the pipe when ready.
static void
s_fake_attestation (zsock_t *pipe, void *args)
{
    int mode = *(int *) args;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert (port > 0);
    zsock_signal (pipe, 0);
    zsock_send (pipe, "i", port);
    uint8_t public [32], secret [32];
    crypto_box_keypair (public, secret);
    sodium_memzero (secret, sizeof (secret));
    char z85 [41];
    zmq_z85_encode (z85, public, 32);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which != router)
            break;
        zmsg_t *msg = zmsg_recv (router);
        assert (msg && zmsg_size (msg) == 3);
        zframe_t *routing = zmsg_pop (msg);
        zframe_t *header = zmsg_pop (msg);
        zframe_t *body = zmsg_pop (msg);
        char *error = NULL;
        umb_envelope_t *envelope = umb_envelope_decode (zframe_data (header), zframe_size (header),
                                                        false, &error, NULL);
        free (error);
        assert (envelope && streq (umb_envelope_op (envelope), "agent.attestation"));
        umb_msg_t *request = umb_msg_decode (zframe_data (body), zframe_size (body), NULL);
        size_t nonce_size = 0;
        const uint8_t *nonce = umb_msg_bin (request, "nonce", 64, &nonce_size, true);
        assert (nonce && nonce_size == 32);
        uint8_t echo [32];
        memcpy (echo, nonce, 32);
        if (mode == S_FAKE_WRONG_NONCE)
            echo [0] ^= 1;
        uint8_t report_data [64];
        crypto_hash_sha512_state sha;
        crypto_hash_sha512_init (&sha);
        crypto_hash_sha512_update (&sha, (const uint8_t *) "umbra-attest-v1", 15);
        crypto_hash_sha512_update (&sha, public, 32);
        crypto_hash_sha512_update (&sha, nonce, 32);
        crypto_hash_sha512_final (&sha, report_data);
        if (mode == S_FAKE_WRONG_BINDING)
            report_data [63] ^= 1;
        umb_w_t *w_header = umb_w_new ();
        umb_w_t *w_body = umb_w_new ();
        umb_w_map_begin (w_body);
        if (mode != S_FAKE_REFUSE) {
            umb_envelope_write_reply (w_header, umb_envelope_id (envelope), 200, false, NULL, NULL);
            umb_w_kv_str (w_body, "platform", mode == S_FAKE_SNP ? "snp" : "none");
            umb_w_kv_str (w_body, "agent_key", mode == S_FAKE_BAD_KEY ? "not a key" : z85);
            umb_w_key (w_body, "nonce");
            umb_w_bin (w_body, echo, 32);
            umb_w_key (w_body, "report_data");
            umb_w_bin (w_body, report_data, 64);
            umb_w_key (w_body, "evidence");
            umb_w_bin (w_body, "", 0);
            umb_w_key (w_body, "certs");
            umb_w_bin (w_body, "", 0);
            umb_w_kv_bool (w_body, "insecure", mode != S_FAKE_SNP);
        }
        else
            umb_envelope_write_reply (w_header, umb_envelope_id (envelope), 404, false,
                                      "unknown_operation", "no such operation here");
        umb_w_map_end (w_body);
        size_t size;
        const void *data = umb_w_data (w_header, &size);
        zmsg_t *reply = zmsg_new ();
        zmsg_append (reply, &routing);
        zmsg_addmem (reply, data, size);
        data = umb_w_data (w_body, &size);
        zmsg_addmem (reply, data, size);
        zmsg_send (&reply, router);
        umb_w_destroy (&w_header);
        umb_w_destroy (&w_body);
        umb_msg_destroy (&request);
        umb_envelope_destroy (&envelope);
        zframe_destroy (&header);
        zframe_destroy (&body);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}


//  A fake participant endpoint (CURVE ROUTER, open ZAP domain) with its
//  attestation endpoint, to check the client against a peer that watches it:
//  chunk replies are held back until the client has used its whole credit, and
//  a chunk beyond the credit is counted as a violation. Pipe commands:
//  "WRONG-HASH" (result.begin announces a wrong hash), "STATS" -> max pending,
//  violations, chunks received.
#define S_FAKE_CREDIT 3
#define S_FAKE_CHUNK  1000

typedef struct {
    zframe_t *routing;
    char      id [UMB_ENVELOPE_MAX_ID + 1];
    int64_t   seq;
} s_pending_t;

static void
s_fake_reply (zsock_t *router, zframe_t *routing, const char *id, umb_w_t *body)
{
    umb_w_t *header = umb_w_new ();
    umb_envelope_write_reply (header, id, 200, false, NULL, NULL);
    size_t size;
    const void *data = umb_w_data (header, &size);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, zframe_data (routing), zframe_size (routing));
    zmsg_addmem (msg, data, size);
    data = umb_w_data (body, &size);
    zmsg_addmem (msg, data, size);
    zmsg_send (&msg, router);
    umb_w_destroy (&header);
}

static void
s_fake_agent (zsock_t *pipe, void *args)
{
    zcert_t *cert = zcert_new ();
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_t *plain = zsock_new (ZMQ_ROUTER);
    assert (cert && router && plain);
    zcert_apply (cert, router);
    zsock_set_curve_server (router, 1);
    zsock_set_zap_domain (router, UMB_ZAP_DOMAIN_OPEN);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    int plain_port = zsock_bind (plain, "tcp://127.0.0.1:*");
    assert (port > 0 && plain_port > 0);
    uint8_t public [32];
    memcpy (public, zcert_public_key (cert), 32);
    zsock_signal (pipe, 0);
    zsock_send (pipe, "ii", port, plain_port);

    uint8_t blob [2500];                    //  the "result": 3 chunks, the last short
    for (size_t i = 0; i < sizeof (blob); i++)
        blob [i] = (uint8_t) (i * 7);
    bool wrong_hash = false;
    int max_pending = 0, violations = 0, chunks = 0;
    s_pending_t pending [16];
    int pending_count = 0;
    umb_sig_sha3_t *sha = NULL;
    uint64_t received = 0;
    umb_w_t *body = umb_w_new ();
    zpoller_t *poller = zpoller_new (pipe, router, plain, NULL);
    while (true) {
        //  With chunk replies held back, a short wait: if nothing more comes,
        //  the client has used all the credit it believes it has
        void *which = zpoller_wait (poller, pending_count ? 100 : -1);
        if (!which && pending_count) {
            s_pending_t *oldest = &pending [0];
            umb_w_reset (body);
            umb_w_map_begin (body);
            umb_w_kv_int (body, "seq", oldest->seq);
            umb_w_kv_int (body, "credit", S_FAKE_CREDIT);
            umb_w_map_end (body);
            s_fake_reply (router, oldest->routing, oldest->id, body);
            zframe_destroy (&oldest->routing);
            memmove (pending, pending + 1, (size_t) (--pending_count) * sizeof (s_pending_t));
            continue;
        }
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM")) {
                zstr_free (&command);
                break;
            }
            if (streq (command, "WRONG-HASH"))
                wrong_hash = true;
            else
            if (streq (command, "STATS"))
                zsock_send (pipe, "iii", max_pending, violations, chunks);
            zstr_free (&command);
            continue;
        }
        if (!which)
            break;
        zmsg_t *msg = zmsg_recv (which);
        assert (msg && zmsg_size (msg) == 3);
        zframe_t *routing = zmsg_pop (msg);
        zframe_t *header = zmsg_pop (msg);
        zframe_t *frame = zmsg_pop (msg);
        char *error = NULL;
        umb_envelope_t *envelope = umb_envelope_decode (zframe_data (header), zframe_size (header),
                                                        false, &error, NULL);
        free (error);
        assert (envelope);
        umb_msg_t *request = umb_msg_decode (zframe_data (frame), zframe_size (frame), NULL);
        assert (request);
        const char *op = umb_envelope_op (envelope);
        const char *id = umb_envelope_id (envelope);
        umb_w_reset (body);
        umb_w_map_begin (body);
        bool answer = true;
        if (streq (op, "agent.attestation")) {
            assert (which == plain);
            size_t nonce_size = 0;
            const uint8_t *nonce = umb_msg_bin (request, "nonce", 64, &nonce_size, true);
            uint8_t report_data [64];
            crypto_hash_sha512_state state;
            crypto_hash_sha512_init (&state);
            crypto_hash_sha512_update (&state, (const uint8_t *) "umbra-attest-v1", 15);
            crypto_hash_sha512_update (&state, public, 32);
            crypto_hash_sha512_update (&state, nonce, nonce_size);
            crypto_hash_sha512_final (&state, report_data);
            umb_w_kv_str (body, "platform", "none");
            umb_w_kv_str (body, "agent_key", zcert_public_txt (cert));
            umb_w_key (body, "nonce");
            umb_w_bin (body, nonce, nonce_size);
            umb_w_key (body, "report_data");
            umb_w_bin (body, report_data, 64);
            umb_w_key (body, "evidence");
            umb_w_bin (body, "", 0);
            umb_w_kv_bool (body, "insecure", true);
        }
        else
        if (streq (op, "agent.status")) {
            umb_w_kv_str (body, "state", "ReceivingData");
            umb_w_kv_str (body, "computation", "fake");
        }
        else
        if (streq (op, "agent.challenge")) {
            uint8_t challenge [32];
            randombytes_buf (challenge, sizeof (challenge));
            umb_w_key (body, "challenge");
            umb_w_bin (body, challenge, sizeof (challenge));
        }
        else
        if (streq (op, "agent.upload.begin")) {
            umb_sig_sha3_destroy (&sha);
            sha = umb_sig_sha3_new ();
            received = 0;
            umb_w_kv_str (body, "upload", "u1");
            umb_w_kv_int (body, "chunk_size", S_FAKE_CHUNK);
            umb_w_kv_int (body, "credit", S_FAKE_CREDIT);
        }
        else
        if (streq (op, "agent.upload.chunk")) {
            size_t size = 0;
            const void *data = umb_msg_bin (request, "data", S_FAKE_CHUNK, &size, true);
            int64_t seq = umb_msg_int (request, "seq", 0, INT64_MAX, 0, true);
            assert (!umb_msg_failed (request) && seq == chunks);
            umb_sig_sha3_update (sha, data, size);
            received += size;
            chunks++;
            if (pending_count >= S_FAKE_CREDIT)
                violations++;
            assert (pending_count < 16);
            pending [pending_count].routing = zframe_dup (routing);
            snprintf (pending [pending_count].id, sizeof (pending [0].id), "%s", id);
            pending [pending_count++].seq = seq;
            if (pending_count > max_pending)
                max_pending = pending_count;
            answer = false;
        }
        else
        if (streq (op, "agent.upload.end")) {
            uint8_t digest [32];
            char hex [65];
            umb_sig_sha3_final (sha, digest);
            umb_hex_encode (digest, 32, hex);
            umb_w_kv_str (body, "hash", hex);
            umb_w_kv_int (body, "size", (int64_t) received);
            umb_w_kv_str (body, "state", "ReceivingData");
        }
        else
        if (streq (op, "agent.result.begin")) {
            uint8_t digest [32];
            char hex [65];
            umb_sig_sha3 (blob, sizeof (blob), digest);
            if (wrong_hash)
                digest [0] ^= 1;
            umb_hex_encode (digest, 32, hex);
            umb_w_kv_str (body, "download", "d1");
            umb_w_kv_int (body, "size", sizeof (blob));
            umb_w_kv_str (body, "hash", hex);
            umb_w_kv_int (body, "chunk_size", S_FAKE_CHUNK);
        }
        else
        if (streq (op, "agent.result.chunk")) {
            int64_t seq = umb_msg_int (request, "seq", 0, 2, 0, true);
            assert (!umb_msg_failed (request));
            size_t offset = (size_t) seq * S_FAKE_CHUNK;
            size_t size = sizeof (blob) - offset < S_FAKE_CHUNK ? sizeof (blob) - offset : S_FAKE_CHUNK;
            umb_w_kv_int (body, "seq", seq);
            umb_w_key (body, "data");
            umb_w_bin (body, blob + offset, size);
        }
        else
        if (streq (op, "agent.result.end"))
            umb_w_kv_str (body, "state", "Complete");
        umb_w_map_end (body);
        if (answer)
            s_fake_reply (which, routing, id, body);
        umb_msg_destroy (&request);
        umb_envelope_destroy (&envelope);
        zframe_destroy (&routing);
        zframe_destroy (&header);
        zframe_destroy (&frame);
        zmsg_destroy (&msg);
    }
    for (int i = 0; i < pending_count; i++)
        zframe_destroy (&pending [i].routing);
    umb_sig_sha3_destroy (&sha);
    umb_w_destroy (&body);
    zpoller_destroy (&poller);
    zsock_destroy (&router);
    zsock_destroy (&plain);
    zcert_destroy (&cert);
}

//  The client against the watching fake: the credit is used, never exceeded;
//  a result whose bytes do not match the announced hash is not kept
static void
s_test_fake_agent (const char *dir)
{
    zactor_t *fake = zactor_new (s_fake_agent, NULL);
    assert (fake);
    int port = 0, plain_port = 0;
    assert (zsock_recv (fake, "ii", &port, &plain_port) == 0);
    char endpoint [64], attest [64];
    snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", port);
    snprintf (attest, sizeof (attest), "tcp://127.0.0.1:%d", plain_port);
    umb_agent_client_t *client = umb_agent_client_new (endpoint);
    umb_agent_client_set_attest_endpoint (client, attest);
    umb_agent_client_set_insecure_dev (client, true);
    umb_agent_client_set_timeout (client, 5000);
    int rc = umb_agent_client_connect (client);
    if (rc)
        printf ("%s\n", umb_agent_client_reason (client));
    assert (rc == 0);

    size_t size = 10 * S_FAKE_CHUNK + 240;          //  11 chunks
    uint8_t *data = malloc (size);
    assert (data);
    randombytes_buf (data, size);
    char *path = umb_cli_testkit_write_data (dir, "fake-upload.bin", data, size);
    EVP_PKEY *key = umb_sig_key_generate ("ed25519");
    assert (key);
    rc = umb_agent_client_upload (client, "dataset", path, key, NULL);
    if (rc)
        printf ("%s\n", umb_agent_client_reason (client));
    assert (rc == 0);
    int max_pending = 0, violations = 0, chunks = 0;
    zstr_send (fake, "STATS");
    assert (zsock_recv (fake, "iii", &max_pending, &violations, &chunks) == 0);
    assert (chunks == 11);
    assert (violations == 0);
    assert (max_pending == S_FAKE_CREDIT);          //  the window was filled, not exceeded

    char *tar_path = NULL;
    assert (asprintf (&tar_path, "%s/fake.tar", dir) > 0);
    assert (umb_agent_client_result (client, key, tar_path) == 0);
    zchunk_t *chunk = zchunk_slurp (tar_path, 0);
    assert (chunk && zchunk_size (chunk) == 2500 && zchunk_data (chunk) [999] == (uint8_t) (999 * 7));
    zchunk_destroy (&chunk);
    unlink (tar_path);
    zstr_send (fake, "WRONG-HASH");
    assert (umb_agent_client_result (client, key, tar_path) == -1);
    assert (strstr (umb_agent_client_reason (client), "does not match"));
    assert (access (tar_path, F_OK) == -1);
    //  ... and no partial file is left beside it
    DIR *listing = opendir (dir);
    assert (listing);
    struct dirent *entry;
    while ((entry = readdir (listing)))
        assert (!strstr (entry->d_name, ".part-"));
    closedir (listing);

    free (tar_path);
    free (path);
    free (data);
    EVP_PKEY_free (key);
    umb_agent_client_destroy (&client);
    zactor_destroy (&fake);
}

static void
s_test_progress (void *arg, const char *phase, uint64_t done, uint64_t total)
{
    uint64_t *calls = arg;
    assert (done <= total);
    if (streq (phase, "uploading"))
        calls [0]++;
    else
    if (streq (phase, "downloading"))
        calls [1]++;
    else {
        assert (streq (phase, "hashing"));
        calls [2]++;
    }
}

//  Waits (10 s at most) for the agent to reach state; the status call itself
//  waits on the socket, so this loop polls a live agent, not a clock
static void
s_test_wait_state (umb_agent_client_t *client, const char *state)
{
    int64_t deadline = zclock_mono () + 10000;
    while (true) {
        umb_msg_t *status = umb_agent_client_status (client);
        assert (status);
        const char *now = umb_msg_str (status, "state", 64, true);
        bool reached = now && streq (now, state);
        if (!reached && zclock_mono () > deadline) {
            printf ("the agent is in %s, not %s\n", now, state);
            assert (false);
        }
        umb_msg_destroy (&status);
        if (reached)
            break;
        zclock_sleep (20);
    }
}

//  The real agent actor, in this process: a small chunk size and credit make
//  every upload a pipelined stream of many chunks
static void
s_test_real_agent (bool verbose)
{
    umb_zap_t *zap = umb_zap_new (NULL);
    assert (zap);
    char dir [] = "/tmp/umb-agent-client-XXXXXX";
    assert (mkdtemp (dir));
    char workdir [256];
    snprintf (workdir, sizeof (workdir), "%s/work", dir);

    EVP_PKEY *algo_key = umb_sig_key_generate ("ed25519");
    EVP_PKEY *data_key = umb_sig_key_generate ("rsa");
    EVP_PKEY *consumer = umb_sig_key_generate ("ecdsa-p384");
    EVP_PKEY *stranger = umb_sig_key_generate ("ecdsa-p256");
    assert (algo_key && data_key && consumer && stranger);
    const char algorithm [] =
        "#!/bin/sh\n"
        "wc -c < datasets/blob.bin > results/size.txt\n"
        "sha256sum < datasets/blob.bin | cut -c1-64 > results/sum.txt\n"
        "mkdir results/deep && head -c 300000 datasets/blob.bin > results/deep/part.bin\n";
    size_t blob_size = 123457;                  //  31 chunks of 4096, the last one short
    uint8_t *blob = malloc (blob_size);
    assert (blob);
    randombytes_buf (blob, blob_size);
    char *algo_path = umb_cli_testkit_write (dir, "algorithm.sh", algorithm);
    char *blob_path = umb_cli_testkit_write_data (dir, "blob.bin", blob, blob_size);
    uint8_t hash [UMB_SIG_HASH_SIZE];
    char algo_hex [UMB_SIG_HASH_HEX_SIZE], blob_hex [UMB_SIG_HASH_HEX_SIZE];
    umb_sig_sha3 (algorithm, strlen (algorithm), hash);
    umb_hex_encode (hash, sizeof (hash), algo_hex);
    umb_sig_sha3 (blob, blob_size, hash);
    umb_hex_encode (hash, sizeof (hash), blob_hex);
    char *algo_pem = umb_sig_public_pem (algo_key);
    char *data_pem = umb_sig_public_pem (data_key);
    char *consumer_pem = umb_sig_public_pem (consumer);
    json_t *json = json_pack ("{s:s, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}], s:[{s:s}], s:i}",
                              "id", "client-test",
                              "algorithm", "hash", algo_hex, "userKey", algo_pem, "type", "bin",
                              "datasets", "hash", blob_hex, "userKey", data_pem, "filename", "blob.bin",
                              "result_consumers", "userKey", consumer_pem,
                              "run_timeout_s", 60);
    assert (json);
    char *manifest = json_dumps (json, JSON_COMPACT);
    json_decref (json);
    umb_agent_config_t config = {
        .endpoint = "tcp://127.0.0.1:*", .workdir = workdir, .attestation = "none",
        .manifest_json = manifest, .zap = zap, .chunk_size = 4096, .credit = 3
    };
    zactor_t *agent = zactor_new (umb_agent_actor, &config);
    assert (agent);
    char *status = NULL, *endpoint = NULL, *attest = NULL, *key = NULL;
    assert (zstr_recvx (agent, &status, &endpoint, &attest, &key, NULL) == 4);
    if (!streq (status, "READY"))
        printf ("agent: %s\n", endpoint);
    assert (streq (status, "READY"));

    //  The attestation endpoint is where the agent says (its port is "*" here)
    umb_agent_client_t *client = umb_agent_client_new (endpoint);
    assert (client);
    umb_agent_client_set_attest_endpoint (client, attest);
    umb_agent_client_set_timeout (client, 10000);
    assert (umb_agent_client_connect (client) == -1);          //  none needs --insecure-dev
    umb_agent_client_set_insecure_dev (client, true);
    assert (umb_agent_client_connect (client) == 0);
    assert (streq (umb_agent_client_agent_key (client), key));
    assert (streq (umb_agent_client_platform (client), "none"));
    assert (streq (umb_agent_client_computation (client), "client-test"));
    uint64_t calls [3] = { 0, 0, 0 };
    umb_agent_client_set_progress (client, s_test_progress, calls);

    //  Refusals leave the state as it was
    assert (umb_agent_client_upload (client, "dataset", blob_path, data_key, NULL) == -1);
    assert (umb_agent_client_refusal_status (client) == 409);
    assert (streq (umb_agent_client_refusal_code (client), "wrong_state"));
    assert (umb_agent_client_upload (client, "algorithm", algo_path, stranger, NULL) == -1);
    assert (streq (umb_agent_client_refusal_code (client), "bad_signature"));
    assert (strstr (umb_agent_client_reason (client), "403"));
    //  A hash the caller claims wrongly: the agent does not know it
    uint8_t wrong [UMB_SIG_HASH_SIZE] = { 0 };
    assert (umb_agent_client_upload (client, "algorithm", algo_path, algo_key, wrong) == -1);
    assert (streq (umb_agent_client_refusal_code (client), "unknown_asset"));
    assert (umb_agent_client_upload (client, "algorithm", "/nonexistent/file", algo_key, NULL) == -1);
    assert (umb_agent_client_refusal_status (client) == 0);
    assert (strstr (umb_agent_client_reason (client), "/nonexistent/file"));
    char *tar_path = NULL;
    assert (asprintf (&tar_path, "%s/result.tar", dir) > 0);
    assert (umb_agent_client_result (client, consumer, tar_path) == -1);
    assert (streq (umb_agent_client_refusal_code (client), "not_ready"));
    s_test_wait_state (client, "ReceivingAlgorithm");

    //  The algorithm, then the dataset in 31 chunks with at most 3 in flight
    assert (umb_agent_client_upload (client, "algorithm", algo_path, algo_key, NULL) == 0);
    assert (streq (umb_agent_client_state (client), "ReceivingData"));
    calls [0] = calls [2] = 0;
    int rc = umb_agent_client_upload (client, "dataset", blob_path, data_key, NULL);
    if (rc)
        printf ("%s\n", umb_agent_client_reason (client));
    assert (rc == 0);
    assert (calls [2] >= 1);                     //  hashed first
    assert (calls [0] == 1 + 31);                //  the start, then one per chunk
    s_test_wait_state (client, "ConsumingResults");

    //  The result: a stranger is refused; the consumer gets it, checked, unpacked
    assert (umb_agent_client_result (client, stranger, tar_path) == -1);
    assert (streq (umb_agent_client_refusal_code (client), "not_a_consumer"));
    assert (access (tar_path, F_OK) == -1);
    rc = umb_agent_client_result (client, consumer, tar_path);
    if (rc)
        printf ("%s\n", umb_agent_client_reason (client));
    assert (rc == 0);
    assert (streq (umb_agent_client_state (client), "Complete"));
    assert (calls [1] >= 2);
    char out [256], reason [256], path [512];
    snprintf (out, sizeof (out), "%s/out", dir);
    assert (mkdir (out, 0700) == 0);
    rc = umb_cli_agent_untar (tar_path, out, false, reason, sizeof (reason));
    if (rc)
        printf ("%s\n", reason);
    assert (rc == 0);
    snprintf (path, sizeof (path), "%s/size.txt", out);
    zchunk_t *chunk = zchunk_slurp (path, 0);
    assert (chunk && zchunk_size (chunk) == 7 && memcmp (zchunk_data (chunk), "123457\n", 7) == 0);
    zchunk_destroy (&chunk);
    snprintf (path, sizeof (path), "%s/deep/part.bin", out);
    chunk = zchunk_slurp (path, 0);
    assert (chunk && zchunk_size (chunk) == blob_size
            && memcmp (zchunk_data (chunk), blob, blob_size) == 0);
    zchunk_destroy (&chunk);
    //  Fetching again works while the agent runs (it is Complete)
    assert (umb_agent_client_result (client, consumer, tar_path) == 0);

    umb_agent_client_destroy (&client);
    zactor_destroy (&agent);
    zstr_free (&status);
    zstr_free (&endpoint);
    zstr_free (&attest);
    zstr_free (&key);
    free (manifest);
    free (algo_pem);
    free (data_pem);
    free (consumer_pem);
    free (tar_path);
    free (algo_path);
    free (blob_path);
    free (blob);
    EVP_PKEY_free (algo_key);
    EVP_PKEY_free (data_key);
    EVP_PKEY_free (consumer);
    EVP_PKEY_free (stranger);
    s_test_fake_agent (dir);
    char command [300];
    snprintf (command, sizeof (command), "rm -rf '%s'", dir);
    assert (system (command) == 0);
    assert (access (dir, F_OK) == -1);
    umb_zap_destroy (&zap);
    (void) verbose;
}

void
umb_agent_client_test (bool verbose)
{
    if (verbose)
        printf (" * umb_agent_client: ");

    //  The attestation endpoint is the next port
    char *next = umb_agent_client_next_port ("tcp://127.0.0.1:7002");
    assert (next && streq (next, "tcp://127.0.0.1:7003"));
    free (next);
    next = umb_agent_client_next_port ("tcp://[::1]:9");
    assert (next && streq (next, "tcp://[::1]:10"));
    free (next);
    assert (!umb_agent_client_next_port ("tcp://127.0.0.1"));
    assert (!umb_agent_client_next_port ("tcp://127.0.0.1:65535"));
    assert (!umb_agent_client_next_port ("tcp://127.0.0.1:*"));
    assert (!umb_agent_client_next_port ("tcp://127.0.0.1:12x"));
    assert (!umb_agent_client_next_port ("ipc:///tmp/x:1"));
    assert (!umb_agent_client_new ("tcp://host"));

    //  The credit window: at most credit unanswered chunks
    assert (umb_agent_client_window_open (0, 0, 4));
    assert (umb_agent_client_window_open (3, 0, 4));
    assert (!umb_agent_client_window_open (4, 0, 4));
    assert (umb_agent_client_window_open (4, 1, 4));
    assert (!umb_agent_client_window_open (5, 1, 4));
    assert (!umb_agent_client_window_open (0, 0, 0));      //  no credit, nothing goes
    assert (!umb_agent_client_window_open (2, 2, 0));
    assert (!umb_agent_client_window_open (9, 2, 3));      //  credit shrank: wait
    assert (umb_agent_client_window_open (9, 7, 3));
    //  A simulated sender never exceeds the credit, whatever the agent says
    uint64_t sent = 0, answered = 0;
    int64_t credits [] = { 3, 1, 5, 2, 8, 4, 1, 6 };
    for (size_t round = 0; answered < 100; round++) {
        int64_t credit = credits [round % 8];
        uint64_t before = sent;
        while (sent < 100 && umb_agent_client_window_open (sent, answered, credit))
            sent++;
        //  What went out this round fits the credit (chunks sent under a
        //  larger, earlier credit may still be in flight)
        assert (sent == before || sent - answered <= (uint64_t) credit);
        assert (sent > answered);
        answered++;
    }
    assert (sent == 100);

    //  Flight table: growth and matching by id
    s_flight_t *flights = NULL;
    size_t count = 0;
    for (int i = 0; i < 40; i++) {
        s_flight_t *slot = s_flight_slot (&flights, &count);
        snprintf (slot->id, sizeof (slot->id), "id-%d", i);
        slot->seq = (uint64_t) i;
        slot->used = true;
    }
    assert (count >= 40);
    uint64_t seq = 0;
    assert (s_flight_take (flights, count, "id-33", &seq) && seq == 33);
    assert (!s_flight_take (flights, count, "id-33", &seq));
    assert (!s_flight_take (flights, count, "stale", &seq));
    free (flights);

    //  Nobody listens on the attestation endpoint: a failure within the
    //  timeout, with a reason, never a hang
    umb_agent_client_t *client = umb_agent_client_new ("tcp://127.0.0.1:1");
    assert (client);
    umb_agent_client_set_timeout (client, 300);
    umb_agent_client_set_insecure_dev (client, true);
    int64_t started = zclock_mono ();
    assert (umb_agent_client_connect (client) == -1);
    assert (zclock_mono () - started < 3000);
    assert (strstr (umb_agent_client_reason (client), "127.0.0.1:2"));
    assert (umb_agent_client_refusal_status (client) == 0);
    assert (!umb_agent_client_platform (client));

    //  A fake attestation endpoint (a plain ROUTER in an actor): each round
    //  answers one way, and connect must refuse it for the right reason
    static const struct {
        int         mode;
        bool        insecure_dev;
        int         rc;
        const char *reason;
    } s_rounds [] = {
        { S_FAKE_WRONG_NONCE,   true,  -1, "does not echo our nonce" },
        { S_FAKE_WRONG_BINDING, true,  -1, "does not bind the agent key" },
        { S_FAKE_NONE,          false, -1, "without a TEE" },
        { S_FAKE_SNP,           true,  -2, "only for agents without a TEE" },
        { S_FAKE_BAD_KEY,       true,  -1, "not a Z85 CURVE key" },
        { S_FAKE_REFUSE,        true,  -1, "404" },
    };
    for (size_t round = 0; round < sizeof (s_rounds) / sizeof (s_rounds [0]); round++) {
        int mode = s_rounds [round].mode;
        zactor_t *fake = zactor_new (s_fake_attestation, &mode);
        assert (fake);
        int port = 0;
        assert (zsock_recv (fake, "i", &port) == 0 && port > 1);
        char endpoint [64];
        snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", port - 1);
        umb_agent_client_destroy (&client);
        client = umb_agent_client_new (endpoint);
        umb_agent_client_set_timeout (client, 5000);
        umb_agent_client_set_insecure_dev (client, s_rounds [round].insecure_dev);
        int rc = umb_agent_client_connect (client);
        if (rc != s_rounds [round].rc || !strstr (umb_agent_client_reason (client),
                                                  s_rounds [round].reason)) {
            printf ("round %zu: rc %d, reason '%s'\n", round, rc, umb_agent_client_reason (client));
            assert (false);
        }
        zactor_destroy (&fake);
    }
    umb_agent_client_destroy (&client);
    umb_agent_client_destroy (&client);

    s_test_real_agent (verbose);
    if (verbose)
        printf ("OK\n");
}
