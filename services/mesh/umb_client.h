//  umb_client - mesh client: CURVE DEALER connection to one service, calls
//  with deadlines, retries of retryable errors, and stale-reply discarding
//
//  One client holds one connection and is used by one thread at a time; the
//  gateway keeps a pool. Calls are synchronous.
#ifndef UMB_CLIENT_H_INCLUDED
#define UMB_CLIENT_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>
#include "umb_mp.h"

typedef struct _umb_client_t umb_client_t;
typedef struct _umb_reply_t umb_reply_t;

//  Connects to endpoint, authenticating the server by server_key (Z85) and
//  itself with cert's key pair (copied). NULL on a bad endpoint or key.
umb_client_t *umb_client_new (const char *endpoint, const char *server_key, zcert_t *cert);
void          umb_client_destroy (umb_client_t **self_p);

//  At most this many attempts for retryable errors (default 3), backoff with jitter.
void          umb_client_set_attempts (umb_client_t *self, int attempts);

//  Calls op with body (one encoded msgpack map; NULL sends {}), token (may be
//  NULL), within timeout_ms in total. request_id NULL makes one. Never returns
//  NULL: failures to reach the service come back as local replies
//  (503 unavailable, 504 deadline_exceeded, 502 bad_reply).
umb_reply_t  *umb_client_call (umb_client_t *self, const char *op, const char *token,
                               const void *body, size_t size, int timeout_ms,
                               const char *request_id);
//  The same, taking a writer holding the body.
umb_reply_t  *umb_client_callw (umb_client_t *self, const char *op, const char *token,
                                umb_w_t *body, int timeout_ms, const char *request_id);

int           umb_reply_status (umb_reply_t *self);
bool          umb_reply_ok (umb_reply_t *self);              //  2xx
bool          umb_reply_retryable (umb_reply_t *self);
const char   *umb_reply_code (umb_reply_t *self);            //  NULL on success
const char   *umb_reply_error (umb_reply_t *self);           //  NULL on success
const char   *umb_reply_id (umb_reply_t *self);
//  Decoded body (a map; empty map on errors); owned by the reply.
umb_msg_t    *umb_reply_body (umb_reply_t *self);
const void   *umb_reply_raw (umb_reply_t *self, size_t *size);
void          umb_reply_destroy (umb_reply_t **self_p);

void          umb_client_test (bool verbose);

#endif
