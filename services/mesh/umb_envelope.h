//  umb_envelope - the mesh envelope: a msgpack header map in front of every body
//
//  Request header:  {v, id, op, token?, deadline_ms}
//  Reply header:    {v, id, status, retryable, code?, error?}
//  See proto/msgpack/envelope.md, which is the source of truth.
#ifndef UMB_ENVELOPE_H_INCLUDED
#define UMB_ENVELOPE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "umb_mp.h"

#define UMB_PROTOCOL_VERSION   1
#define UMB_ENVELOPE_MAX_ID    64
#define UMB_ENVELOPE_MAX_OP    64
#define UMB_ENVELOPE_MAX_TOKEN 4096

typedef struct _umb_envelope_t umb_envelope_t;

//  Decodes a request (is_reply false) or reply header. NULL with a reason in
//  *error (caller frees) if the frame is not a valid header of that kind.
//  *id_p, when given, receives a copy of the id if one could be read even
//  though the header was invalid, so the error reply can carry it (caller frees).
umb_envelope_t *umb_envelope_decode (const void *data, size_t size, bool is_reply,
                                     char **error, char **id_p);
void        umb_envelope_destroy (umb_envelope_t **self_p);

int         umb_envelope_version (umb_envelope_t *self);
const char *umb_envelope_id (umb_envelope_t *self);
const char *umb_envelope_op (umb_envelope_t *self);          //  requests
const char *umb_envelope_token (umb_envelope_t *self);       //  NULL if none
int64_t     umb_envelope_deadline_ms (umb_envelope_t *self); //  budget left when sent
int         umb_envelope_status (umb_envelope_t *self);      //  replies
bool        umb_envelope_retryable (umb_envelope_t *self);
const char *umb_envelope_code (umb_envelope_t *self);        //  NULL on success
const char *umb_envelope_error (umb_envelope_t *self);       //  NULL on success

void umb_envelope_write_request (umb_w_t *w, const char *id, const char *op, const char *token,
                                 int64_t deadline_ms);
//  code NULL picks the default code for the status.
void umb_envelope_write_reply (umb_w_t *w, const char *id, int status, bool retryable,
                               const char *code, const char *message);

//  Default machine-readable code for a status ("not_found" for 404, ...).
const char *umb_status_code (int status);

void umb_envelope_test (bool verbose);

#endif
