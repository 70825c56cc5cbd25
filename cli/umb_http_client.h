//  umb_http_client - the CLI's HTTP client (libcurl): GET, POST JSON and DELETE to
//  the gateway with a bearer token, a time limit and a response size limit, and
//  event logs followed as Server-Sent Events
//
//      umb_http_client_t *client = umb_http_client_new ("http://127.0.0.1:8080", token);
//      umb_http_response_t response;
//      if (umb_http_client_get (client, "/workspaces/lab/certs", &response) == 0) {
//          ...response.status, response.body...
//          umb_http_response_clear (&response);
//      }
//      else
//          fprintf (stderr, "umbra: %s\n", umb_http_client_error (client));
//      umb_http_client_destroy (&client);
//
//  Redirects are not followed (the token would go wherever they point), only
//  http and https are spoken, and the token is never logged nor shown: it is
//  wiped from the client's memory on destroy, and response bodies (they may
//  hold private keys) are wiped by umb_http_response_clear.
#ifndef UMB_HTTP_CLIENT_H_INCLUDED
#define UMB_HTTP_CLIENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define UMB_HTTP_CLIENT_TIMEOUT_MS 30000                //  default limit of a whole request
#define UMB_HTTP_CLIENT_MAX_BODY   (32 * 1024 * 1024)   //  default largest response body

typedef struct _umb_http_client_t umb_http_client_t;

//  One answer, whatever its status. Fields are owned by the response.
typedef struct {
    int     status;             //  HTTP status
    char   *content_type;       //  NULL when the server sent none
    char   *body;               //  size bytes, then a NUL (the body itself may hold NULs)
    size_t  size;
} umb_http_response_t;

//  base_url is "http[s]://host[:port][/prefix]" (no trailing slash needed);
//  token (copied) may be NULL or "" for anonymous requests. NULL when libcurl
//  cannot start.
umb_http_client_t *umb_http_client_new (const char *base_url, const char *token);
void               umb_http_client_destroy (umb_http_client_t **self_p);

void umb_http_client_set_timeout (umb_http_client_t *self, int timeout_ms);
void umb_http_client_set_max_body (umb_http_client_t *self, size_t max_body);

//  path starts with '/' and is already percent-encoded (see
//  umb_http_client_escape). Returns 0 with *response filled for any HTTP
//  status, or -1 when no complete answer came (cannot connect, time limit,
//  body over the limit), with the reason in umb_http_client_error.
int  umb_http_client_get (umb_http_client_t *self, const char *path, umb_http_response_t *response)
         __attribute__ ((warn_unused_result));
//  POSTs json (a JSON text; NULL sends no body).
int  umb_http_client_post (umb_http_client_t *self, const char *path, const char *json,
                           umb_http_response_t *response) __attribute__ ((warn_unused_result));

//  The same with method POST, PUT or PATCH.
int  umb_http_client_send (umb_http_client_t *self, const char *method, const char *path,
                           const char *json, umb_http_response_t *response)
         __attribute__ ((warn_unused_result));

//  DELETEs path (no body).
int  umb_http_client_delete (umb_http_client_t *self, const char *path, umb_http_response_t *response)
         __attribute__ ((warn_unused_result));

//  One Server-Sent Event as umb_http_client_events hands it out: its type
//  ("message" when the stream named none), the last id the stream gave (NULL
//  before any) and its data (the event's data lines joined by newlines), all
//  borrowed for the call. Returns 0 to read on; anything else leaves the
//  stream, and umb_http_client_events returns 0.
typedef int (umb_http_client_event_fn) (void *arg, const char *type, const char *id,
                                        const char *data);

//  GETs path as a Server-Sent Events stream (?follow=1 on an event log) and,
//  when the answer is 2xx text/event-stream, hands fn each event as it comes
//  (comments, such as keepalives, are skipped), until fn stops or the server
//  ends the stream; an event that was not finished is dropped. There is no
//  limit on the whole request: it fails instead when nothing (not even a
//  keepalive) came for idle_ms. One event may be as large as the body limit.
//  Returns 0 with *response holding the status and content type, and the body
//  of any other answer (as umb_http_client_get); or -1 as umb_http_client_get.
int  umb_http_client_events (umb_http_client_t *self, const char *path, int idle_ms,
                             umb_http_client_event_fn *fn, void *arg,
                             umb_http_response_t *response) __attribute__ ((warn_unused_result));

//  Why the last request failed, for people ("cannot reach http://...: ...").
const char *umb_http_client_error (umb_http_client_t *self);

//  text percent-encoded for one path segment or query value (caller frees).
char *umb_http_client_escape (const char *text);

//  Wipes and frees what response holds; it can be cleared again.
void umb_http_response_clear (umb_http_response_t *response);

//  True if the body is JSON (by its content type).
bool umb_http_response_is_json (const umb_http_response_t *response);

//  An answer that is not 2xx, for people: "403 forbidden: role 'member' cannot
//  do 'certs.revoke'" from umbra's JSON error body, else the status, its
//  reason phrase and the start of a text body.
void umb_http_response_describe (const umb_http_response_t *response, char *text, size_t size);

void umb_http_client_test (bool verbose);

#endif
