//  umb_client - mesh client: CURVE DEALER connection to one service, with deadlines and retries
#include <assert.h>
#include <string.h>
#include <sodium.h>
#include "umb_client.h"
#include "umb_envelope.h"

struct _umb_client_t {
    zsock_t  *dealer;
    char     *endpoint;
    int       attempts;
    char      id_prefix [17];   //  random per client, so ids never repeat across clients
    uint64_t  sequence;
    umb_w_t  *header;
    zpoller_t *poller;
};

struct _umb_reply_t {
    int        status;
    bool       retryable;
    char      *id;
    char      *code;
    char      *error;
    umb_msg_t *body;
    void      *raw;
    size_t     raw_size;
};

static const unsigned char s_empty_map [] = { 0x80 };

umb_client_t *
umb_client_new (const char *endpoint, const char *server_key, zcert_t *cert)
{
    assert (endpoint && server_key && cert);
    uint8_t raw [32];
    if (strlen (server_key) != 40 || !zmq_z85_decode (raw, server_key))
        return NULL;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return NULL;
    zcert_apply (cert, dealer);
    zsock_set_curve_serverkey (dealer, server_key);
    zsock_set_linger (dealer, 0);
    //  Queue nothing for a peer that is not connected: a send either reaches a
    //  live connection or times out, so nothing stale is delivered later.
    zsock_set_immediate (dealer, 1);
    if (zsock_connect (dealer, "%s", endpoint) != 0) {
        zsock_destroy (&dealer);
        return NULL;
    }
    umb_client_t *self = calloc (1, sizeof (umb_client_t));
    assert (self);
    self->dealer = dealer;
    self->endpoint = strdup (endpoint);
    self->attempts = 3;
    self->header = umb_w_new ();
    self->poller = zpoller_new (dealer, NULL);
    uint8_t nonce [8];
    randombytes_buf (nonce, sizeof (nonce));
    sodium_bin2hex (self->id_prefix, sizeof (self->id_prefix), nonce, sizeof (nonce));
    return self;
}

void
umb_client_destroy (umb_client_t **self_p)
{
    assert (self_p);
    umb_client_t *self = *self_p;
    if (self) {
        zpoller_destroy (&self->poller);
        zsock_destroy (&self->dealer);
        umb_w_destroy (&self->header);
        free (self->endpoint);
        free (self);
        *self_p = NULL;
    }
}

void
umb_client_set_attempts (umb_client_t *self, int attempts)
{
    assert (self);
    assert (attempts >= 1);
    self->attempts = attempts;
}

static umb_reply_t *
s_local_reply (const char *id, int status, bool retryable, const char *message)
{
    umb_reply_t *reply = calloc (1, sizeof (umb_reply_t));
    assert (reply);
    reply->status = status;
    reply->retryable = retryable;
    reply->id = strdup (id);
    reply->code = strdup (umb_status_code (status));
    reply->error = strdup (message);
    reply->body = umb_msg_decode (s_empty_map, sizeof (s_empty_map), NULL);
    return reply;
}

//  Takes one message off the socket; returns a reply if it answers id,
//  NULL for a stale answer to an earlier, abandoned call.
static umb_reply_t *
s_receive (umb_client_t *self, const char *id)
{
    zmsg_t *msg = zmsg_recv (self->dealer);
    if (!msg)
        return NULL;
    umb_reply_t *reply = NULL;
    zframe_t *header = zmsg_first (msg);
    zframe_t *body = zmsg_next (msg);
    char *error = NULL;
    umb_envelope_t *envelope = header && zmsg_size (msg) == 2
        ? umb_envelope_decode (zframe_data (header), zframe_size (header), true, &error, NULL)
        : NULL;
    if (!envelope) {
        reply = s_local_reply (id, 502, false, error ? error : "reply is not [header][body]");
        free (error);
    }
    else
    if (streq (umb_envelope_id (envelope), id)) {
        reply = calloc (1, sizeof (umb_reply_t));
        assert (reply);
        reply->status = umb_envelope_status (envelope);
        reply->retryable = umb_envelope_retryable (envelope);
        reply->id = strdup (id);
        if (umb_envelope_code (envelope))
            reply->code = strdup (umb_envelope_code (envelope));
        if (umb_envelope_error (envelope))
            reply->error = strdup (umb_envelope_error (envelope));
        reply->body = umb_msg_decode (zframe_data (body), zframe_size (body), &error);
        if (!reply->body || !umb_msg_is_map (reply->body)) {
            umb_reply_destroy (&reply);
            reply = s_local_reply (id, 502, false, error ? error : "reply body is not a map");
        }
        else {
            reply->raw_size = zframe_size (body);
            reply->raw = malloc (reply->raw_size);
            assert (reply->raw);
            memcpy (reply->raw, zframe_data (body), reply->raw_size);
        }
        free (error);
    }
    umb_envelope_destroy (&envelope);
    zmsg_destroy (&msg);
    return reply;
}

umb_reply_t *
umb_client_call (umb_client_t *self, const char *op, const char *token, const void *body,
                 size_t size, int timeout_ms, const char *request_id)
{
    assert (self && op);
    assert (timeout_ms > 0);
    char id [UMB_ENVELOPE_MAX_ID + 1];
    if (request_id)
        snprintf (id, sizeof (id), "%s", request_id);
    else
        snprintf (id, sizeof (id), "%s-%llu", self->id_prefix,
                  (unsigned long long) ++self->sequence);
    if (!body) {
        body = s_empty_map;
        size = sizeof (s_empty_map);
    }
    int64_t deadline = zclock_mono () + timeout_ms;
    umb_reply_t *reply = NULL;
    for (int attempt = 1; ; attempt++) {
        int64_t remaining = deadline - zclock_mono ();
        if (remaining <= 0) {
            reply = s_local_reply (id, 504, true, "deadline exceeded before an answer came");
            break;
        }
        umb_w_reset (self->header);
        umb_envelope_write_request (self->header, id, op, token, remaining);
        size_t header_size;
        const void *header = umb_w_data (self->header, &header_size);
        zsock_set_sndtimeo (self->dealer, (int) remaining);
        if (zmq_send (zsock_resolve (self->dealer), header, header_size, ZMQ_SNDMORE) == -1
        ||  zmq_send (zsock_resolve (self->dealer), body, size, 0) == -1) {
            char message [300];
            snprintf (message, sizeof (message), "no connection to %s", self->endpoint);
            reply = s_local_reply (id, 503, true, message);
        }
        else
        while (!reply) {
            remaining = deadline - zclock_mono ();
            if (remaining <= 0
            ||  zpoller_wait (self->poller, (int) remaining) != self->dealer) {
                reply = s_local_reply (id, 504, true, "deadline exceeded before an answer came");
                break;
            }
            reply = s_receive (self, id);
        }
        if (!reply->retryable || attempt >= self->attempts || reply->status == 504)
            break;
        //  Exponential backoff with full jitter, never past the deadline
        int64_t backoff = (int64_t) randombytes_uniform ((uint32_t) (25 << attempt)) + 1;
        if (zclock_mono () + backoff >= deadline)
            break;
        umb_reply_destroy (&reply);
        zclock_sleep ((int) backoff);
    }
    return reply;
}

umb_reply_t *
umb_client_callw (umb_client_t *self, const char *op, const char *token, umb_w_t *body,
                  int timeout_ms, const char *request_id)
{
    size_t size = 0;
    const void *data = body ? umb_w_data (body, &size) : NULL;
    return umb_client_call (self, op, token, data, size, timeout_ms, request_id);
}

int         umb_reply_status (umb_reply_t *self)    { assert (self); return self->status; }
bool        umb_reply_ok (umb_reply_t *self)        { assert (self); return self->status >= 200 && self->status < 300; }
bool        umb_reply_retryable (umb_reply_t *self) { assert (self); return self->retryable; }
const char *umb_reply_code (umb_reply_t *self)      { assert (self); return self->code; }
const char *umb_reply_error (umb_reply_t *self)     { assert (self); return self->error; }
const char *umb_reply_id (umb_reply_t *self)        { assert (self); return self->id; }
umb_msg_t  *umb_reply_body (umb_reply_t *self)      { assert (self); return self->body; }

const void *
umb_reply_raw (umb_reply_t *self, size_t *size)
{
    assert (self && size);
    if (!self->raw) {
        *size = sizeof (s_empty_map);
        return s_empty_map;
    }
    *size = self->raw_size;
    return self->raw;
}

void
umb_reply_destroy (umb_reply_t **self_p)
{
    assert (self_p);
    umb_reply_t *self = *self_p;
    if (self) {
        umb_msg_destroy (&self->body);
        if (self->raw)
            explicit_bzero (self->raw, self->raw_size);
        free (self->raw);
        free (self->id);
        free (self->code);
        free (self->error);
        free (self);
        *self_p = NULL;
    }
}

//  The client is exercised against a real service in umb_service_test; here,
//  what needs no server.
void
umb_client_test (bool verbose)
{
    if (verbose)
        printf (" * umb_client: ");
    zcert_t *cert = zcert_new ();
    assert (umb_client_new ("tcp://127.0.0.1:1", "short", cert) == NULL);
    zcert_t *server = zcert_new ();
    umb_client_t *client = umb_client_new ("tcp://127.0.0.1:1", zcert_public_txt (server), cert);
    assert (client);
    //  Nobody listens: a retryable 503 or 504 within the deadline, never a hang
    int64_t started = zclock_mono ();
    umb_reply_t *reply = umb_client_call (client, "sys.ping", NULL, NULL, 0, 200, NULL);
    assert (zclock_mono () - started < 2000);
    assert (umb_reply_status (reply) == 503 || umb_reply_status (reply) == 504);
    assert (umb_reply_retryable (reply));
    assert (umb_msg_is_map (umb_reply_body (reply)));
    assert (strstr (umb_reply_error (reply), "127.0.0.1") || umb_reply_status (reply) == 504);
    umb_reply_destroy (&reply);
    assert (!reply);
    umb_client_destroy (&client);
    umb_client_destroy (&client);
    zcert_destroy (&cert);
    zcert_destroy (&server);
    if (verbose)
        printf ("OK\n");
}
