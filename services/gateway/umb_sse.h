//  umb_sse - a Server-Sent Events stream of an event log read in pages
//
//  The gateway answers `GET ...?follow=1` on an events route with a stream:
//  it asks fetch for the events after the last one sent (long-polling), and
//  writes each as
//
//      id: <seq>
//      event: <type>
//      data: <the event as JSON, one line>
//
//  then, once the log's state is final and nothing follows, an `end` event
//  with {"state": ...}. A page without events writes a comment line
//  (`: keepalive`), so proxies keep the connection. A failed fetch ends the
//  stream with an `error` event carrying {"status", "code", "message"}. A
//  client that reconnects with Last-Event-ID continues after that id.
#ifndef UMB_SSE_H_INCLUDED
#define UMB_SSE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

typedef struct _umb_sse_t umb_sse_t;

//  Fetches the page after after, waiting up to wait_ms for one. Returns the
//  answer {events: [{seq, type, ...}], state: str} (the caller's, decref'd by
//  the stream), or NULL with *status, code and message set (an error).
typedef json_t *(umb_sse_fetch_fn) (void *arg, int64_t after, int wait_ms, int *status,
                                    char *code, size_t code_size, char *message,
                                    size_t message_size);
//  True when a log in this state gets no more events.
typedef bool (umb_sse_final_fn) (void *arg, const char *state);

//  arg is borrowed; free_arg (may be NULL) frees it with the stream.
umb_sse_t *umb_sse_new (umb_sse_fetch_fn *fetch, umb_sse_final_fn *final, void *arg,
                        void (*free_arg) (void *arg), int64_t after, int wait_ms);
void       umb_sse_destroy (umb_sse_t **self_p);

//  Fills buf with up to max bytes of the stream, blocking on fetch while it
//  has none; returns the count, or -1 at the end of the stream.
ssize_t    umb_sse_read (umb_sse_t *self, char *buf, size_t max);

void       umb_sse_test (bool verbose);

#endif
