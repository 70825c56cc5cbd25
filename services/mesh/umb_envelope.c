//  umb_envelope - the mesh envelope: a msgpack header map in front of every body
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umb_envelope.h"

#define S_MAX_DEADLINE_MS 3600000

struct _umb_envelope_t {
    umb_msg_t  *header;         //  owns the strings below
    bool        is_reply;
    int         version;
    const char *id;
    const char *op;
    const char *token;
    int64_t     deadline_ms;
    int         status;
    bool        retryable;
    const char *code;
    const char *error;
};

static const struct {
    int         status;
    const char *code;
} s_codes [] = {
    { 200, "ok" }, { 201, "created" }, { 202, "accepted" }, { 204, "no_content" },
    { 400, "bad_request" }, { 401, "unauthenticated" }, { 403, "forbidden" },
    { 404, "not_found" }, { 405, "method_not_allowed" }, { 408, "timeout" },
    { 409, "conflict" }, { 410, "gone" }, { 413, "too_large" }, { 415, "unsupported_media_type" },
    { 422, "invalid_argument" }, { 429, "too_many_requests" },
    { 500, "internal" }, { 501, "not_implemented" }, { 502, "bad_reply" },
    { 503, "unavailable" }, { 504, "deadline_exceeded" },
};

const char *
umb_status_code (int status)
{
    for (size_t i = 0; i < sizeof (s_codes) / sizeof (s_codes [0]); i++)
        if (s_codes [i].status == status)
            return s_codes [i].code;
    return status < 300 ? "ok" : status < 500 ? "bad_request" : "internal";
}

//  Ids travel into logs and HTTP headers: keep them to a safe alphabet.
static bool
s_token_chars (const char *text, const char *extra)
{
    for (const char *c = text; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
        ||    strchr (extra, *c)))
            return false;
    return true;
}

umb_envelope_t *
umb_envelope_decode (const void *data, size_t size, bool is_reply, char **error, char **id_p)
{
    assert (error);
    *error = NULL;
    if (id_p)
        *id_p = NULL;
    char *reason = NULL;
    umb_msg_t *header = umb_msg_decode (data, size, &reason);
    if (!header) {
        if (asprintf (error, "header: %s", reason) < 0)
            *error = NULL;
        free (reason);
        return NULL;
    }
    if (!umb_msg_is_map (header)) {
        *error = strdup ("header: expected a map");
        umb_msg_destroy (&header);
        return NULL;
    }
    umb_envelope_t *self = calloc (1, sizeof (umb_envelope_t));
    assert (self);
    self->header = header;
    self->is_reply = is_reply;
    self->id = umb_msg_str (header, "id", UMB_ENVELOPE_MAX_ID, true);
    //  Replies to unreadable requests carry "", so a request may not
    if (self->id && ((!is_reply && !*self->id) || !s_token_chars (self->id, "-_.:"))) {
        umb_msg_fail (header, "field 'id': 1..64 characters of letters, digits and -_.:");
        self->id = NULL;
    }
    if (self->id && id_p)
        *id_p = strdup (self->id);
    self->version = (int) umb_msg_int (header, "v", 0, INT32_MAX, 0, true);
    if (!umb_msg_failed (header) && self->version != UMB_PROTOCOL_VERSION)
        umb_msg_fail (header, "protocol version %d is not supported (this peer speaks %d)",
                      self->version, UMB_PROTOCOL_VERSION);
    if (is_reply) {
        self->status = (int) umb_msg_int (header, "status", 100, 599, 500, true);
        self->retryable = umb_msg_bool (header, "retryable", false, false);
        self->code = umb_msg_str (header, "code", 64, false);
        self->error = umb_msg_str (header, "error", 4096, false);
    }
    else {
        self->op = umb_msg_str (header, "op", UMB_ENVELOPE_MAX_OP, true);
        if (self->op && (!*self->op || !s_token_chars (self->op, "._-")))
            umb_msg_fail (header, "field 'op': only letters, digits and ._- are allowed");
        self->token = umb_msg_str (header, "token", UMB_ENVELOPE_MAX_TOKEN, false);
        self->deadline_ms = umb_msg_int (header, "deadline_ms", 1, S_MAX_DEADLINE_MS, 0, true);
    }
    if (umb_msg_failed (header)) {
        if (asprintf (error, "header: %s", umb_msg_error (header)) < 0)
            *error = NULL;
        umb_envelope_destroy (&self);
    }
    return self;
}

void
umb_envelope_destroy (umb_envelope_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        umb_msg_destroy (&(*self_p)->header);
        free (*self_p);
        *self_p = NULL;
    }
}

int         umb_envelope_version (umb_envelope_t *self)     { assert (self); return self->version; }
const char *umb_envelope_id (umb_envelope_t *self)          { assert (self); return self->id; }
const char *umb_envelope_op (umb_envelope_t *self)          { assert (self); return self->op; }
const char *umb_envelope_token (umb_envelope_t *self)       { assert (self); return self->token; }
int64_t     umb_envelope_deadline_ms (umb_envelope_t *self) { assert (self); return self->deadline_ms; }
int         umb_envelope_status (umb_envelope_t *self)      { assert (self); return self->status; }
bool        umb_envelope_retryable (umb_envelope_t *self)   { assert (self); return self->retryable; }
const char *umb_envelope_code (umb_envelope_t *self)        { assert (self); return self->code; }
const char *umb_envelope_error (umb_envelope_t *self)       { assert (self); return self->error; }

void
umb_envelope_write_request (umb_w_t *w, const char *id, const char *op, const char *token,
                            int64_t deadline_ms)
{
    assert (w && id && op);
    umb_w_map_begin (w);
    umb_w_kv_int (w, "v", UMB_PROTOCOL_VERSION);
    umb_w_kv_str (w, "id", id);
    umb_w_kv_str (w, "op", op);
    if (token)
        umb_w_kv_str (w, "token", token);
    umb_w_kv_int (w, "deadline_ms", deadline_ms);
    umb_w_map_end (w);
}

void
umb_envelope_write_reply (umb_w_t *w, const char *id, int status, bool retryable,
                          const char *code, const char *message)
{
    assert (w && id);
    umb_w_map_begin (w);
    umb_w_kv_int (w, "v", UMB_PROTOCOL_VERSION);
    umb_w_kv_str (w, "id", id);
    umb_w_kv_int (w, "status", status);
    umb_w_kv_bool (w, "retryable", retryable);
    if (status >= 300) {
        umb_w_kv_str (w, "code", code ? code : umb_status_code (status));
        umb_w_kv_str (w, "error", message ? message : umb_status_code (status));
    }
    umb_w_map_end (w);
}

void
umb_envelope_test (bool verbose)
{
    if (verbose)
        printf (" * umb_envelope: ");
    umb_w_t *w = umb_w_new ();
    umb_envelope_write_request (w, "req-1", "auth.users.get", "tok", 5000);
    size_t size;
    const void *data = umb_w_data (w, &size);
    char *error = NULL;
    umb_envelope_t *envelope = umb_envelope_decode (data, size, false, &error, NULL);
    assert (envelope && !error);
    assert (umb_envelope_version (envelope) == 1);
    assert (strcmp (umb_envelope_id (envelope), "req-1") == 0);
    assert (strcmp (umb_envelope_op (envelope), "auth.users.get") == 0);
    assert (strcmp (umb_envelope_token (envelope), "tok") == 0);
    assert (umb_envelope_deadline_ms (envelope) == 5000);
    umb_envelope_destroy (&envelope);
    assert (!envelope);

    //  A request is not a reply
    assert (!umb_envelope_decode (data, size, true, &error, NULL));
    assert (strstr (error, "status"));
    free (error);

    umb_w_reset (w);
    umb_envelope_write_reply (w, "req-1", 404, false, NULL, "no user 'bob'");
    data = umb_w_data (w, &size);
    envelope = umb_envelope_decode (data, size, true, &error, NULL);
    assert (envelope);
    assert (umb_envelope_status (envelope) == 404);
    assert (strcmp (umb_envelope_code (envelope), "not_found") == 0);
    assert (strcmp (umb_envelope_error (envelope), "no user 'bob'") == 0);
    assert (!umb_envelope_retryable (envelope));
    umb_envelope_destroy (&envelope);

    //  Bad headers: wrong version (id still recovered), bad id, missing op, bad deadline
    struct { const char *id; const char *op; int64_t version; int64_t deadline; const char *expect; } cases [] = {
        { "a1", "x.y", 2, 10, "version 2" },
        { "a b", "x.y", 1, 10, "'id'" },
        { "a1", "", 1, 10, "'op'" },
        { "a1", "x.y", 1, 0, "deadline_ms" },
        { "", "x.y", 1, 10, "'id'" },
        { "a1", "x/y", 1, 10, "'op'" },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        umb_w_reset (w);
        umb_w_map_begin (w);
        umb_w_kv_int (w, "v", cases [i].version);
        umb_w_kv_str (w, "id", cases [i].id);
        umb_w_kv_str (w, "op", cases [i].op);
        umb_w_kv_int (w, "deadline_ms", cases [i].deadline);
        umb_w_map_end (w);
        data = umb_w_data (w, &size);
        char *id = NULL;
        assert (!umb_envelope_decode (data, size, false, &error, &id));
        assert (strstr (error, cases [i].expect));
        if (i == 0)
            assert (id && strcmp (id, "a1") == 0);
        free (id);
        free (error);
    }
    const unsigned char garbage [] = { 0xc1, 0x00 };
    assert (!umb_envelope_decode (garbage, sizeof (garbage), false, &error, NULL));
    assert (strstr (error, "header:"));
    free (error);
    assert (strcmp (umb_status_code (409), "conflict") == 0);
    umb_w_destroy (&w);
    if (verbose)
        printf ("OK\n");
}
