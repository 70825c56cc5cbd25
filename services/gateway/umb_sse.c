//  umb_sse - a Server-Sent Events stream of an event log read in pages
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umb_sse.h"

struct _umb_sse_t {
    umb_sse_fetch_fn *fetch;
    umb_sse_final_fn *final;
    void             *arg;
    void            (*free_arg) (void *arg);
    int64_t           after;
    int               wait_ms;
    char             *pending;      //  bytes not handed out yet
    size_t            size, sent;
    bool              ended;        //  nothing is fetched any more
};

umb_sse_t *
umb_sse_new (umb_sse_fetch_fn *fetch, umb_sse_final_fn *final, void *arg,
             void (*free_arg) (void *arg), int64_t after, int wait_ms)
{
    assert (fetch && final);
    umb_sse_t *self = calloc (1, sizeof (umb_sse_t));
    assert (self);
    self->fetch = fetch;
    self->final = final;
    self->arg = arg;
    self->free_arg = free_arg;
    self->after = after > 0 ? after : 0;
    self->wait_ms = wait_ms > 0 ? wait_ms : 0;
    return self;
}

void
umb_sse_destroy (umb_sse_t **self_p)
{
    assert (self_p);
    umb_sse_t *self = *self_p;
    if (self) {
        if (self->free_arg)
            self->free_arg (self->arg);
        free (self->pending);
        free (self);
        *self_p = NULL;
    }
}

//  Appends one SSE record: id (when >= 0), event and data (one JSON line)
static void
s_append (umb_sse_t *self, int64_t id, const char *event, json_t *data)
{
    char *json = json_dumps (data, JSON_COMPACT);
    char *record = NULL;
    int size = id >= 0
        ? asprintf (&record, "id: %lld\nevent: %s\ndata: %s\n\n", (long long) id, event, json)
        : asprintf (&record, "event: %s\ndata: %s\n\n", event, json);
    free (json);
    assert (size > 0 && record);
    self->pending = realloc (self->pending, self->size + (size_t) size + 1);
    assert (self->pending);
    memcpy (self->pending + self->size, record, (size_t) size);
    self->size += (size_t) size;
    free (record);
}

static void
s_comment (umb_sse_t *self, const char *text)
{
    size_t size = strlen (text);
    self->pending = realloc (self->pending, self->size + size + 1);
    assert (self->pending);
    memcpy (self->pending + self->size, text, size);
    self->size += size;
}

//  One page into pending
static void
s_fetch (umb_sse_t *self)
{
    int status = 0;
    char code [64] = "", message [512] = "";
    json_t *page = self->fetch (self->arg, self->after, self->wait_ms, &status, code, sizeof code,
                                message, sizeof message);
    if (!page) {
        json_t *error = json_pack ("{s:i, s:s, s:s}", "status", status, "code", code,
                                   "message", message);
        s_append (self, -1, "error", error);
        json_decref (error);
        self->ended = true;
        return;
    }
    json_t *events = json_object_get (page, "events");
    const char *state = json_string_value (json_object_get (page, "state"));
    size_t index;
    json_t *event;
    json_array_foreach (events, index, event) {
        json_int_t seq = json_integer_value (json_object_get (event, "seq"));
        const char *type = json_string_value (json_object_get (event, "type"));
        if (seq <= self->after)
            continue;
        s_append (self, seq, type && *type && !strpbrk (type, "\r\n") ? type : "message", event);
        self->after = seq;
    }
    if (json_array_size (events) == 0) {
        if (state && self->final (self->arg, state)) {
            json_t *end = json_pack ("{s:s}", "state", state);
            s_append (self, -1, "end", end);
            json_decref (end);
            self->ended = true;
        }
        else
            s_comment (self, ": keepalive\n\n");
    }
    json_decref (page);
}

ssize_t
umb_sse_read (umb_sse_t *self, char *buf, size_t max)
{
    assert (self && buf);
    while (self->sent == self->size) {
        free (self->pending);
        self->pending = NULL;
        self->size = self->sent = 0;
        if (self->ended)
            return -1;
        s_fetch (self);
    }
    size_t count = self->size - self->sent;
    if (count > max)
        count = max;
    memcpy (buf, self->pending + self->sent, count);
    self->sent += count;
    return (ssize_t) count;
}

//  ---------------------------------------------------------------- selftest

typedef struct {
    int calls;
} s_test_t;

//  Three pages: two events, none (keepalive), then the end; a fourth call fails
static json_t *
s_test_fetch (void *arg, int64_t after, int wait_ms, int *status, char *code, size_t code_size,
              char *message, size_t message_size)
{
    s_test_t *test = arg;
    test->calls++;
    assert (wait_ms == 500);
    if (test->calls == 1) {
        assert (after == 3);
        return json_pack ("{s:[{s:i, s:s, s:s}, {s:i, s:s, s:s}], s:s}", "events",
                          "seq", 4, "type", "state", "message", "a", "seq", 5, "type", "log",
                          "message", "line\nwith a newline", "state", "Running");
    }
    if (test->calls == 2) {
        assert (after == 5);
        return json_pack ("{s:[], s:s}", "events", "state", "Running");
    }
    if (test->calls == 3)
        return json_pack ("{s:[], s:s}", "events", "state", "Completed");
    *status = 404;
    snprintf (code, code_size, "not_found");
    snprintf (message, message_size, "no run");
    return NULL;
}

static bool
s_test_final (void *arg, const char *state)
{
    (void) arg;
    return strcmp (state, "Completed") == 0;
}

static char *
s_test_drain (umb_sse_t *sse, size_t chunk)
{
    char *all = calloc (1, 1);
    size_t size = 0;
    char buf [64];
    ssize_t got;
    while ((got = umb_sse_read (sse, buf, chunk < sizeof buf ? chunk : sizeof buf)) >= 0) {
        all = realloc (all, size + (size_t) got + 1);
        memcpy (all + size, buf, (size_t) got);
        size += (size_t) got;
        all [size] = 0;
    }
    return all;
}

void
umb_sse_test (bool verbose)
{
    if (verbose)
        printf (" * umb_sse: ");
    s_test_t test = { 0 };
    umb_sse_t *sse = umb_sse_new (s_test_fetch, s_test_final, &test, NULL, 3, 500);
    char *text = s_test_drain (sse, 7);         //  small reads split records
    assert (strstr (text, "id: 4\nevent: state\ndata: {\"seq\":4,"));
    //  A newline in a message stays inside its JSON string: one data line
    assert (strstr (text, "id: 5\nevent: log\ndata: {\"seq\":5,\"type\":\"log\",\"message\":\"line\\nwith a newline\"}\n\n"));
    assert (strstr (text, ": keepalive\n\n"));
    assert (strstr (text, "event: end\ndata: {\"state\":\"Completed\"}\n\n"));
    assert (test.calls == 3);
    umb_sse_destroy (&sse);
    free (text);
    //  An error ends the stream with its reason
    test.calls = 3;
    sse = umb_sse_new (s_test_fetch, s_test_final, &test, NULL, 0, 500);
    text = s_test_drain (sse, 64);
    assert (strcmp (text, "event: error\ndata: {\"status\":404,\"code\":\"not_found\","
                          "\"message\":\"no run\"}\n\n") == 0);
    umb_sse_destroy (&sse);
    free (text);
    if (verbose)
        printf ("OK\n");
}
