//  umb_http_client - the CLI's HTTP client (libcurl)
#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <jansson.h>
#include <sodium.h>
#include "umb_http_client.h"

#define S_CONNECT_MAX_MS 10000      //  connecting takes at most this, within the whole limit

struct _umb_http_client_t {
    CURL   *curl;
    char   *base_url;               //  without a trailing slash
    char   *authorization;          //  "Authorization: Bearer ..." or NULL; wiped on destroy
    int     timeout_ms;
    size_t  max_body;
    char    curl_error [CURL_ERROR_SIZE];
    char    error [CURL_ERROR_SIZE + 512];
};

//  What a transfer collects.
typedef struct {
    char   *data;
    size_t  size;
    size_t  capacity;
    size_t  max;
    bool    too_large;
    struct _s_events_t *events;     //  when reading an event stream
    CURL   *curl;
} s_sink_t;

//  A Server-Sent Events stream being read (the WHATWG rules: lines end in
//  LF, CRLF or CR; "field: value"; a blank line ends an event)
typedef struct _s_events_t {
    umb_http_client_event_fn *fn;
    void     *arg;
    int       idle_ms;
    int       mode;                 //  S_MODE_*: known at the first bytes
    s_sink_t  line;                 //  the line under way
    s_sink_t  data;                 //  the event's data lines, each ending in LF
    char     *type;                 //  "event:", NULL when none
    char     *id;                   //  the last "id:", NULL when none
    bool      after_cr;             //  a LF next ends no line
    int64_t   heard_ms;             //  when bytes last came (monotonic)
    bool      stopped;              //  fn asked to stop
    bool      too_large;            //  a line or an event over the limit
    bool      quiet;                //  nothing came for idle_ms
} s_events_t;

#define S_MODE_UNKNOWN 0
#define S_MODE_EVENTS  1
#define S_MODE_BODY    2            //  not a 2xx event stream: collected as a body

static void
s_wipe_free (char **text_p, size_t size)
{
    if (*text_p) {
        sodium_memzero (*text_p, size);
        free (*text_p);
        *text_p = NULL;
    }
}

umb_http_client_t *
umb_http_client_new (const char *base_url, const char *token)
{
    assert (base_url);
    if (sodium_init () < 0 || curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    umb_http_client_t *self = calloc (1, sizeof (umb_http_client_t));
    assert (self);
    self->curl = curl_easy_init ();
    self->base_url = strdup (base_url);
    assert (self->base_url);
    size_t length = strlen (self->base_url);
    while (length && self->base_url [length - 1] == '/')
        self->base_url [--length] = 0;
    if (token && *token) {
        size_t size = strlen ("Authorization: Bearer ") + strlen (token) + 1;
        self->authorization = malloc (size);
        assert (self->authorization);
        snprintf (self->authorization, size, "Authorization: Bearer %s", token);
    }
    self->timeout_ms = UMB_HTTP_CLIENT_TIMEOUT_MS;
    self->max_body = UMB_HTTP_CLIENT_MAX_BODY;
    if (!self->curl)
        umb_http_client_destroy (&self);
    return self;
}

void
umb_http_client_destroy (umb_http_client_t **self_p)
{
    assert (self_p);
    umb_http_client_t *self = *self_p;
    if (self) {
        if (self->curl)
            curl_easy_cleanup (self->curl);
        if (self->authorization)
            s_wipe_free (&self->authorization, strlen (self->authorization));
        free (self->base_url);
        free (self);
        curl_global_cleanup ();
        *self_p = NULL;
    }
}

void
umb_http_client_set_timeout (umb_http_client_t *self, int timeout_ms)
{
    assert (self && timeout_ms > 0);
    self->timeout_ms = timeout_ms;
}

void
umb_http_client_set_max_body (umb_http_client_t *self, size_t max_body)
{
    assert (self && max_body > 0);
    self->max_body = max_body;
}

const char *
umb_http_client_error (umb_http_client_t *self)
{
    assert (self);
    return self->error;
}

//  ---------------------------------------------------------------- requests

//  Grows without realloc, so a body holding a private key leaves no copy behind.
static size_t
s_on_data (char *data, size_t size, size_t count, void *arg)
{
    s_sink_t *sink = arg;
    size_t bytes = size * count;
    if (bytes > sink->max - sink->size) {
        sink->too_large = true;
        return 0;                   //  libcurl stops the transfer
    }
    if (sink->size + bytes + 1 > sink->capacity) {
        size_t capacity = sink->capacity ? sink->capacity : 16384;
        while (capacity < sink->size + bytes + 1)
            capacity *= 2;
        char *grown = malloc (capacity);
        if (!grown)
            return 0;
        if (sink->data) {
            memcpy (grown, sink->data, sink->size);
            s_wipe_free (&sink->data, sink->size);
        }
        sink->data = grown;
        sink->capacity = capacity;
    }
    memcpy (sink->data + sink->size, data, bytes);
    sink->size += bytes;
    sink->data [sink->size] = 0;
    return bytes;
}

//  ---------------------------------------------------------------- event streams

static void
s_events_clear (s_events_t *events)
{
    s_wipe_free (&events->line.data, events->line.capacity);
    s_wipe_free (&events->data.data, events->data.capacity);
    free (events->type);
    free (events->id);
    events->line = events->data = (s_sink_t) { 0 };
    events->type = events->id = NULL;
}

//  One complete line (NUL-terminated, without its end). -1 when fn stopped
//  or the event grew over the limit.
static int
s_events_line (s_events_t *events, char *line)
{
    if (*line == 0) {
        //  A blank line: the event, when it has data
        int rc = 0;
        if (events->data.size) {
            events->data.data [--events->data.size] = 0;
            rc = events->fn (events->arg, events->type ? events->type : "message", events->id,
                             events->data.data);
        }
        events->data.size = 0;
        free (events->type);
        events->type = NULL;
        if (rc) {
            events->stopped = true;
            return -1;
        }
        return 0;
    }
    if (*line == ':')
        return 0;                   //  a comment (keepalive)
    char *value = strchr (line, ':');
    if (value) {
        *value++ = 0;
        if (*value == ' ')
            value++;
    }
    else
        value = "";
    if (strcmp (line, "data") == 0) {
        if (s_on_data (value, 1, strlen (value), &events->data) != strlen (value)
        ||  s_on_data ("\n", 1, 1, &events->data) != 1)
            events->too_large = true;
    }
    else
    if (strcmp (line, "event") == 0) {
        free (events->type);
        events->type = strdup (value);
    }
    else
    if (strcmp (line, "id") == 0) {
        free (events->id);
        events->id = strdup (value);
    }
    return events->too_large ? -1 : 0;
}

//  Bytes of the stream as they come. -1 when the stream is to end here.
static int
s_events_feed (s_events_t *events, const char *bytes, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        char c = bytes [i];
        bool after_cr = events->after_cr;
        events->after_cr = c == '\r';
        if (c == '\n' && after_cr)
            continue;               //  CRLF: the CR ended the line
        if (c == '\r' || c == '\n') {
            char empty [1] = "";
            int rc = s_events_line (events, events->line.size ? events->line.data : empty);
            events->line.size = 0;
            if (rc)
                return -1;
        }
        else
        if (s_on_data (&c, 1, 1, &events->line) != 1) {
            events->too_large = true;
            return -1;
        }
    }
    return 0;
}

static int64_t
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  libcurl's progress call, about once a second while nothing comes: ends a
//  stream gone quiet (libcurl's own low-speed limit averages over seconds)
static int
s_on_progress (void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
               curl_off_t ulnow)
{
    s_events_t *events = arg;
    if (s_now_ms () - events->heard_ms > events->idle_ms)
        events->quiet = true;
    return events->quiet;
}

static size_t
s_on_events (char *data, size_t size, size_t count, void *arg)
{
    s_sink_t *sink = arg;
    s_events_t *events = sink->events;
    events->heard_ms = s_now_ms ();
    if (events->mode == S_MODE_UNKNOWN) {
        long status = 0;
        char *type = NULL;
        curl_easy_getinfo (sink->curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo (sink->curl, CURLINFO_CONTENT_TYPE, &type);
        events->mode = status >= 200 && status <= 299 && type
                    && strncasecmp (type, "text/event-stream", 17) == 0 ? S_MODE_EVENTS
                                                                        : S_MODE_BODY;
    }
    if (events->mode == S_MODE_BODY)
        return s_on_data (data, size, count, sink);
    return s_events_feed (events, data, size * count) ? 0 : size * count;
}

static int
s_request (umb_http_client_t *self, const char *method, const char *path, const char *json,
           s_events_t *events, umb_http_response_t *response)
{
    assert (self && path && *path == '/' && response);
    memset (response, 0, sizeof (*response));
    *self->error = 0;
    *self->curl_error = 0;
    char *url = NULL;
    if (asprintf (&url, "%s%s", self->base_url, path) < 0) {
        snprintf (self->error, sizeof (self->error), "out of memory");
        return -1;
    }
    struct curl_slist *headers = NULL;
    headers = curl_slist_append (headers, events ? "Accept: text/event-stream"
                                                 : "Accept: application/json, */*;q=0.5");
    if (json)
        headers = curl_slist_append (headers, "Content-Type: application/json");
    if (self->authorization)
        headers = curl_slist_append (headers, self->authorization);
    headers = curl_slist_append (headers, "Expect:");   //  no 100-continue round trip

    CURL *curl = self->curl;
    s_sink_t sink = { .max = self->max_body, .events = events, .curl = curl };
    curl_easy_reset (curl);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_NOPROGRESS, 1L);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "umbra-cli/" UMB_VERSION);
    //  A stream has no end in time: it is given up when it goes quiet instead
    int limit_ms = events ? events->idle_ms : self->timeout_ms;
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS,
                      (long) (limit_ms < S_CONNECT_MAX_MS ? limit_ms : S_CONNECT_MAX_MS));
    if (events) {
        events->heard_ms = s_now_ms ();
        curl_easy_setopt (curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, s_on_progress);
        curl_easy_setopt (curl, CURLOPT_XFERINFODATA, events);
    }
    else {
        curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) limit_ms);
        curl_easy_setopt (curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) self->max_body);
    }
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, self->curl_error);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, events ? s_on_events : s_on_data);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt (curl, CURLOPT_ACCEPT_ENCODING, NULL);
    if (strcmp (method, "POST") == 0 || strcmp (method, "PUT") == 0 || strcmp (method, "PATCH") == 0) {
        curl_easy_setopt (curl, CURLOPT_POST, 1L);
        if (strcmp (method, "POST"))
            curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, json ? json : "");
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (json ? strlen (json) : 0));
    }
    else
    if (strcmp (method, "DELETE") == 0)
        curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, "DELETE");
    else
        curl_easy_setopt (curl, CURLOPT_HTTPGET, 1L);
    CURLcode code = curl_easy_perform (curl);

    //  libcurl keeps its own copies of the headers; ours are wiped
    for (struct curl_slist *header = headers; header; header = header->next)
        sodium_memzero (header->data, strlen (header->data));
    curl_slist_free_all (headers);
    int rc = 0;
    if (code == CURLE_WRITE_ERROR && events && events->stopped)
        code = CURLE_OK;            //  the caller left the stream
    if (code == CURLE_OK) {
        long status = 0;
        char *type = NULL;
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo (curl, CURLINFO_CONTENT_TYPE, &type);
        response->status = (int) status;
        response->content_type = type ? strdup (type) : NULL;
        response->body = sink.data ? sink.data : strdup ("");
        response->size = sink.size;
        sink.data = NULL;
    }
    else {
        if (events && events->too_large)
            snprintf (self->error, sizeof (self->error), "%s %s: an event is larger than %zu bytes",
                      method, url, self->max_body);
        else
        if (sink.too_large || code == CURLE_FILESIZE_EXCEEDED)
            snprintf (self->error, sizeof (self->error), "%s %s: the answer is larger than %zu bytes",
                      method, url, self->max_body);
        else
        if (events && events->quiet)
            snprintf (self->error, sizeof (self->error), "%s %s: nothing came for %d ms", method, url,
                      events->idle_ms);
        else
        if (code == CURLE_OPERATION_TIMEDOUT)
            snprintf (self->error, sizeof (self->error), "%s %s: no answer within %d ms", method, url,
                      self->timeout_ms);
        else
            snprintf (self->error, sizeof (self->error), "cannot reach %s: %s", self->base_url,
                      *self->curl_error ? self->curl_error : curl_easy_strerror (code));
        s_wipe_free (&sink.data, sink.size);
        rc = -1;
    }
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, NULL);
    free (url);
    return rc;
}

int
umb_http_client_get (umb_http_client_t *self, const char *path, umb_http_response_t *response)
{
    return s_request (self, "GET", path, NULL, NULL, response);
}

int
umb_http_client_post (umb_http_client_t *self, const char *path, const char *json,
                      umb_http_response_t *response)
{
    return s_request (self, "POST", path, json, NULL, response);
}

int
umb_http_client_send (umb_http_client_t *self, const char *method, const char *path,
                      const char *json, umb_http_response_t *response)
{
    assert (strcmp (method, "POST") == 0 || strcmp (method, "PUT") == 0
            || strcmp (method, "PATCH") == 0);
    return s_request (self, method, path, json, NULL, response);
}

int
umb_http_client_delete (umb_http_client_t *self, const char *path, umb_http_response_t *response)
{
    return s_request (self, "DELETE", path, NULL, NULL, response);
}

int
umb_http_client_events (umb_http_client_t *self, const char *path, int idle_ms,
                        umb_http_client_event_fn *fn, void *arg, umb_http_response_t *response)
{
    assert (fn && idle_ms > 0);
    s_events_t events = { .fn = fn, .arg = arg, .idle_ms = idle_ms,
                          .line = { .max = self->max_body }, .data = { .max = self->max_body } };
    int rc = s_request (self, "GET", path, NULL, &events, response);
    s_events_clear (&events);
    return rc;
}

char *
umb_http_client_escape (const char *text)
{
    assert (text);
    static const char s_hex [] = "0123456789ABCDEF";
    char *escaped = malloc (strlen (text) * 3 + 1);
    assert (escaped);
    char *out = escaped;
    for (const unsigned char *in = (const unsigned char *) text; *in; in++)
        if (isalnum (*in) || *in == '-' || *in == '.' || *in == '_' || *in == '~')
            *out++ = (char) *in;
        else {
            *out++ = '%';
            *out++ = s_hex [*in >> 4];
            *out++ = s_hex [*in & 15];
        }
    *out = 0;
    return escaped;
}

//  ---------------------------------------------------------------- responses

void
umb_http_response_clear (umb_http_response_t *response)
{
    assert (response);
    s_wipe_free (&response->body, response->size);
    free (response->content_type);
    memset (response, 0, sizeof (*response));
}

bool
umb_http_response_is_json (const umb_http_response_t *response)
{
    const char *type = response->content_type;
    return type && strncasecmp (type, "application/json", 16) == 0
        && (type [16] == 0 || type [16] == ';' || type [16] == ' ');
}

static const char *
s_reason_phrase (int status)
{
    switch (status) {
        case 400: return "bad request";
        case 401: return "unauthorized";
        case 403: return "forbidden";
        case 404: return "not found";
        case 405: return "method not allowed";
        case 409: return "conflict";
        case 413: return "payload too large";
        case 415: return "unsupported media type";
        case 422: return "unprocessable";
        case 429: return "too many requests";
        case 500: return "internal server error";
        case 502: return "bad gateway";
        case 503: return "service unavailable";
        case 504: return "gateway timeout";
        default:  return status >= 500 ? "server error" : status >= 400 ? "client error" : "unexpected";
    }
}

void
umb_http_response_describe (const umb_http_response_t *response, char *text, size_t size)
{
    assert (response && text && size);
    json_t *root = umb_http_response_is_json (response) && response->body
                 ? json_loadb (response->body, response->size, 0, NULL) : NULL;
    json_t *error = json_object_get (root, "error");
    const char *code = json_string_value (json_object_get (error, "code"));
    const char *message = json_string_value (json_object_get (error, "message"));
    if (code && message)
        snprintf (text, size, "%d %s: %s", response->status, code, message);
    else {
        //  The first line of a body that is text, printable characters only
        char excerpt [161] = "";
        size_t used = 0;
        for (size_t i = 0; response->body && i < response->size && used < sizeof (excerpt) - 1; i++) {
            unsigned char c = (unsigned char) response->body [i];
            if (c == '\n' || c == '\r')
                break;
            excerpt [used++] = c >= 0x20 && c < 0x7f ? (char) c : '?';
        }
        excerpt [used] = 0;
        snprintf (text, size, "%d %s%s%s", response->status, s_reason_phrase (response->status),
                  *excerpt ? ": " : "", excerpt);
    }
    json_decref (root);
}

//  ---------------------------------------------------------------- selftest

//  An event stream with every kind of line end, a comment, an event without
//  data, an id that carries over and, last, an event never finished
static const char s_test_stream [] =
    ": keepalive\n\nid: 1\nevent: state\ndata: {\"a\":1}\n\r\n"
    "id: 2\r\ndata: line one\r\ndata: line two\r\r: comment\nevent: empty\n\n"
    "event: end\ndata:{\"state\":\"Completed\"}\ndata\n\nid: 3\ndata: unfinished";
static const char s_test_stream_events [] =
    "state|1|{\"a\":1};message|2|line one\nline two;end|2|{\"state\":\"Completed\"}\n;";

//  The stream in pieces of 5 bytes; /quiet says one comment, then nothing
static ssize_t
s_test_stream_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    if (cls) {
        if (pos)
            sleep (2);
        const char *hello = ": hello\n\n";
        if (pos >= strlen (hello))
            return MHD_CONTENT_READER_END_OF_STREAM;
        memcpy (buf, hello, strlen (hello));
        return (ssize_t) strlen (hello);
    }
    size_t size = strlen (s_test_stream);
    if (pos >= size)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t count = size - pos < 5 ? size - pos : 5;
    count = count < max ? count : max;
    memcpy (buf, s_test_stream + pos, count);
    return (ssize_t) count;
}

//  A small server: /echo answers with what it saw (never the token itself),
//  /big with more than the limit, /slow late, /forbidden and /text with errors.
typedef struct {
    char *body;
    size_t size;
} s_upload_t;

static enum MHD_Result
s_test_server (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
               const char *version, const char *data, size_t *data_size, void **con_cls)
{
    s_upload_t *upload = *con_cls;
    if (!upload) {
        *con_cls = calloc (1, sizeof (s_upload_t));
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*data_size) {
        upload->body = realloc (upload->body, upload->size + *data_size + 1);
        memcpy (upload->body + upload->size, data, *data_size);
        upload->size += *data_size;
        upload->body [upload->size] = 0;
        *data_size = 0;
        return MHD_YES;
    }
    int status = 200;
    const char *type = "application/json";
    char *text = NULL;
    if (strcmp (url, "/echo/a%2Fb") == 0) {
        const char *authorization = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Authorization");
        const char *content = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Content-Type");
        json_t *echo = json_pack ("{s:s, s:b, s:b, s:s, s:s}", "method", method,
                                  "bearer", authorization && strcmp (authorization, "Bearer t0k3n") == 0,
                                  "json", content && strcmp (content, "application/json") == 0,
                                  "body", upload->body ? upload->body : "",
                                  "query", MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "q")
                                           ? MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "q") : "");
        text = json_dumps (echo, JSON_COMPACT);
        json_decref (echo);
        status = strcmp (method, "POST") == 0 ? 201 : 200;
    }
    else
    if (strcmp (url, "/big") == 0) {
        text = malloc (5001);
        memset (text, 'x', 5000);
        text [5000] = 0;
        type = "text/plain";
    }
    else
    if (strcmp (url, "/slow") == 0) {
        usleep (400 * 1000);
        text = strdup ("{}");
    }
    else
    if (strcmp (url, "/forbidden") == 0) {
        status = 403;
        text = strdup ("{\"error\":{\"code\":\"forbidden\",\"message\":\"role 'member' cannot do 'certs.revoke'\"}}");
    }
    else
    if (strcmp (url, "/binary") == 0) {
        text = malloc (4);
        memcpy (text, "a\0b", 4);
        type = "application/pkix-crl";
        struct MHD_Response *response = MHD_create_response_from_buffer (3, text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header (response, "Content-Type", type);
        enum MHD_Result rc = MHD_queue_response (conn, 200, response);
        MHD_destroy_response (response);
        return rc;
    }
    else
    if (strcmp (url, "/events") == 0 || strcmp (url, "/quiet") == 0) {
        const char *accept = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Accept");
        assert (accept && strcmp (accept, "text/event-stream") == 0);
        struct MHD_Response *response = MHD_create_response_from_callback (
            MHD_SIZE_UNKNOWN, 64, s_test_stream_read, strcmp (url, "/quiet") == 0 ? conn : NULL,
            NULL);
        MHD_add_response_header (response, "Content-Type", "text/event-stream");
        enum MHD_Result rc = MHD_queue_response (conn, 200, response);
        MHD_destroy_response (response);
        return rc;
    }
    else {
        status = 502;
        type = "text/html";
        text = strdup ("<h1>bad\x01gateway</h1>\nsecond line");
    }
    struct MHD_Response *response = MHD_create_response_from_buffer (strlen (text), text,
                                                                     MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (response, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response (conn, (unsigned) status, response);
    MHD_destroy_response (response);
    return rc;
}

//  Paths are seen as sent, so "%2F" can be told from "/"
static size_t
s_test_unescape_nothing (void *cls, struct MHD_Connection *conn, char *text)
{
    return strlen (text);
}

static void
s_test_completed (void *cls, struct MHD_Connection *conn, void **con_cls,
                  enum MHD_RequestTerminationCode code)
{
    s_upload_t *upload = *con_cls;
    if (upload) {
        free (upload->body);
        free (upload);
        *con_cls = NULL;
    }
}

//  Keeps "type|id|data;" of each event; stops after stop_after (when not 0)
typedef struct {
    char  text [512];
    int   count;
    int   stop_after;
} s_test_events_t;

static int
s_test_on_event (void *arg, const char *type, const char *id, const char *data)
{
    s_test_events_t *seen = arg;
    size_t used = strlen (seen->text);
    snprintf (seen->text + used, sizeof (seen->text) - used, "%s|%s|%s;", type, id ? id : "-",
              data);
    return ++seen->count == seen->stop_after;
}

void
umb_http_client_test (bool verbose)
{
    if (verbose)
        printf (" * umb_http_client: ");
    //  The event parser alone, the stream cut at every byte
    for (size_t cut = 0; cut <= strlen (s_test_stream); cut++) {
        s_test_events_t seen = { .text = "" };
        s_events_t events = { .fn = s_test_on_event, .arg = &seen, .line = { .max = 64 },
                              .data = { .max = 64 } };
        assert (s_events_feed (&events, s_test_stream, cut) == 0);
        assert (s_events_feed (&events, s_test_stream + cut, strlen (s_test_stream) - cut) == 0);
        assert (strcmp (seen.text, s_test_stream_events) == 0);
        s_events_clear (&events);
    }
    //  ...stopped by the caller, and over its limit
    s_test_events_t seen = { .text = "", .stop_after = 1 };
    s_events_t events = { .fn = s_test_on_event, .arg = &seen, .line = { .max = 64 },
                          .data = { .max = 64 } };
    assert (s_events_feed (&events, s_test_stream, strlen (s_test_stream)) == -1);
    assert (events.stopped && seen.count == 1);
    s_events_clear (&events);
    events = (s_events_t) { .fn = s_test_on_event, .arg = &seen, .line = { .max = 8 },
                            .data = { .max = 64 } };
    assert (s_events_feed (&events, s_test_stream, strlen (s_test_stream)) == -1);
    assert (events.too_large && !events.stopped);
    s_events_clear (&events);

    struct sockaddr_in address = { .sin_family = AF_INET };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    struct MHD_Daemon *daemon = MHD_start_daemon (
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO, 0, NULL, NULL,
        s_test_server, NULL, MHD_OPTION_NOTIFY_COMPLETED, s_test_completed, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, s_test_unescape_nothing, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &address, MHD_OPTION_END);
    assert (daemon);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
    assert (info && info->port);
    char base [64];
    snprintf (base, sizeof (base), "http://127.0.0.1:%u/", info->port);

    //  Escaping for one path segment
    char *escaped = umb_http_client_escape ("a/b c%d~e.f_g-h\xc3\xa9");
    assert (strcmp (escaped, "a%2Fb%20c%25d~e.f_g-h%C3%A9") == 0);
    free (escaped);

    //  GET and POST with a bearer token; the path stays as encoded
    umb_http_client_t *client = umb_http_client_new (base, "t0k3n");
    assert (client);
    umb_http_response_t response;
    int rc = umb_http_client_get (client, "/echo/a%2Fb?q=1", &response);
    assert (rc == 0 && response.status == 200 && umb_http_response_is_json (&response));
    json_t *echo = json_loadb (response.body, response.size, 0, NULL);
    assert (echo);
    assert (json_is_true (json_object_get (echo, "bearer")));
    assert (json_is_false (json_object_get (echo, "json")));
    assert (strcmp (json_string_value (json_object_get (echo, "query")), "1") == 0);
    json_decref (echo);
    umb_http_response_clear (&response);
    umb_http_response_clear (&response);
    rc = umb_http_client_post (client, "/echo/a%2Fb", "{\"a\":1}", &response);
    assert (rc == 0 && response.status == 201);
    echo = json_loadb (response.body, response.size, 0, NULL);
    assert (strcmp (json_string_value (json_object_get (echo, "method")), "POST") == 0);
    assert (strcmp (json_string_value (json_object_get (echo, "body")), "{\"a\":1}") == 0);
    assert (json_is_true (json_object_get (echo, "json")));
    json_decref (echo);
    umb_http_response_clear (&response);
    for (int i = 0; i < 2; i++) {
        const char *method = i ? "PATCH" : "PUT";
        rc = umb_http_client_send (client, method, "/echo/a%2Fb", "{\"b\":2}", &response);
        assert (rc == 0);
        echo = json_loadb (response.body, response.size, 0, NULL);
        assert (strcmp (json_string_value (json_object_get (echo, "method")), method) == 0);
        assert (strcmp (json_string_value (json_object_get (echo, "body")), "{\"b\":2}") == 0);
        json_decref (echo);
        umb_http_response_clear (&response);
    }
    rc = umb_http_client_delete (client, "/echo/a%2Fb?q=2", &response);
    assert (rc == 0 && response.status == 200);
    echo = json_loadb (response.body, response.size, 0, NULL);
    assert (strcmp (json_string_value (json_object_get (echo, "method")), "DELETE") == 0);
    assert (strcmp (json_string_value (json_object_get (echo, "body")), "") == 0);
    assert (strcmp (json_string_value (json_object_get (echo, "query")), "2") == 0);
    json_decref (echo);
    umb_http_response_clear (&response);

    //  Binary bodies come back whole
    rc = umb_http_client_get (client, "/binary", &response);
    assert (rc == 0 && response.size == 3 && memcmp (response.body, "a\0b", 3) == 0);
    assert (strcmp (response.content_type, "application/pkix-crl") == 0);
    assert (!umb_http_response_is_json (&response));
    umb_http_response_clear (&response);

    //  Errors: umbra's JSON error, and a page that is not
    char text [256];
    rc = umb_http_client_get (client, "/forbidden", &response);
    assert (rc == 0 && response.status == 403);
    umb_http_response_describe (&response, text, sizeof (text));
    assert (strcmp (text, "403 forbidden: role 'member' cannot do 'certs.revoke'") == 0);
    umb_http_response_clear (&response);
    rc = umb_http_client_get (client, "/other", &response);
    assert (rc == 0 && response.status == 502);
    umb_http_response_describe (&response, text, sizeof (text));
    assert (strcmp (text, "502 bad gateway: <h1>bad?gateway</h1>") == 0);
    umb_http_response_clear (&response);

    //  Event streams: every event, in pieces; left by the caller; an answer
    //  that is not a stream comes as a body
    memset (&seen, 0, sizeof (seen));
    rc = umb_http_client_events (client, "/events", 5000, s_test_on_event, &seen, &response);
    assert (rc == 0 && response.status == 200 && response.size == 0);
    assert (strcmp (response.content_type, "text/event-stream") == 0);
    assert (strcmp (seen.text, s_test_stream_events) == 0);
    umb_http_response_clear (&response);
    seen = (s_test_events_t) { .text = "", .stop_after = 2 };
    rc = umb_http_client_events (client, "/events", 5000, s_test_on_event, &seen, &response);
    assert (rc == 0 && response.status == 200 && seen.count == 2);
    umb_http_response_clear (&response);
    memset (&seen, 0, sizeof (seen));
    rc = umb_http_client_events (client, "/forbidden", 5000, s_test_on_event, &seen, &response);
    assert (rc == 0 && response.status == 403 && seen.count == 0);
    assert (umb_http_response_is_json (&response) && strstr (response.body, "certs.revoke"));
    umb_http_response_clear (&response);

    //  Limits: size and time; a stream that goes quiet
    rc = umb_http_client_events (client, "/quiet", 1000, s_test_on_event, &seen, &response);
    assert (rc == -1 && strstr (umb_http_client_error (client), "nothing came for 1000 ms"));
    umb_http_client_set_max_body (client, 16);
    rc = umb_http_client_events (client, "/events", 5000, s_test_on_event, &seen, &response);
    assert (rc == -1 && strstr (umb_http_client_error (client), "an event is larger than 16"));
    umb_http_client_set_max_body (client, 4096);
    rc = umb_http_client_get (client, "/big", &response);
    assert (rc == -1 && strstr (umb_http_client_error (client), "larger than 4096 bytes"));
    assert (response.body == NULL);
    umb_http_client_set_timeout (client, 100);
    rc = umb_http_client_get (client, "/slow", &response);
    assert (rc == -1 && strstr (umb_http_client_error (client), "no answer within 100 ms"));
    umb_http_client_destroy (&client);
    umb_http_client_destroy (&client);
    MHD_stop_daemon (daemon);

    //  Nobody listening: a clear reason naming where, never the token
    client = umb_http_client_new (base, "t0k3n");
    rc = umb_http_client_get (client, "/echo/a%2Fb", &response);
    assert (rc == -1);
    assert (strncmp (umb_http_client_error (client), "cannot reach http://127.0.0.1:", 30) == 0);
    assert (!strstr (umb_http_client_error (client), "t0k3n"));
    umb_http_client_destroy (&client);
    if (verbose)
        printf ("OK\n");
}
