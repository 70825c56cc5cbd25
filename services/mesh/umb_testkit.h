//  umb_testkit - what the service selftests share: mesh calls through the
//  real client, checks on their replies, and scratch directories
#ifndef UMB_TESTKIT_H_INCLUDED
#define UMB_TESTKIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "umb_client.h"

//  How long a selftest's call waits for its reply, in milliseconds.
#define UMB_TESTKIT_TIMEOUT 10000

//  Calls op with the body w, which it takes (and destroys). The reply is the
//  caller's to destroy.
umb_reply_t *umb_testkit_callw (umb_client_t *client, const char *op, const char *token,
                                umb_w_t *w);

//  Calls op with a body of string fields: key, value, ..., NULL.
umb_reply_t *umb_testkit_call (umb_client_t *client, const char *op, const char *token, ...);

//  Asserts the reply's status (and error code, and a part of the error text,
//  when not NULL), printing what came instead when it differs; then destroys
//  the reply.
void         umb_testkit_expect (umb_reply_t **reply_p, int status, const char *code,
                                 const char *error_part);

//  A copy of the body's string field key (at most max bytes), which must be
//  there (asserted). The caller frees it.
char        *umb_testkit_dup (umb_reply_t *reply, const char *key, size_t max);

//  The body's integer field key, or -1 when it is not there.
int64_t      umb_testkit_int (umb_reply_t *reply, const char *key);

//  Removes dir and everything under it; asserts that it went.
void         umb_testkit_remove_dir (const char *dir);

void         umb_testkit_test (bool verbose);

#endif
