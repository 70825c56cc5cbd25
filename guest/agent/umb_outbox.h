//  umb_outbox - the agent's bounded on-disk event queue (<workdir>/events)
//
//  Events are numbered from 1 and kept, one file each, until the control side
//  acknowledges them (umb_outbox_ack deletes every event up to a number). The
//  queue is bounded in bytes: a log line that does not fit is not stored but
//  counted, and the count is stored as one "dropped" event as soon as room is
//  made (or before the next state event). State and dropped events are never
//  dropped: they are stored even over the bound. Reopening a directory
//  continues where the last process stopped (sequence numbers never go back).
//
//  Each event file holds one msgpack map {seq, time, type, state, message},
//  exactly the element agent.events.pull returns.
#ifndef UMB_OUTBOX_H_INCLUDED
#define UMB_OUTBOX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "umb_mp.h"

typedef struct _umb_outbox_t umb_outbox_t;

#define UMB_OUTBOX_MAX_MESSAGE 4096     //  longer messages are cut to this many bytes

//  Opens (creating, mode 0700) the queue in dir, holding at most max_bytes of
//  log events. NULL with the reason if the directory cannot be used.
umb_outbox_t *umb_outbox_new (const char *dir, size_t max_bytes, char *reason, size_t reason_size);
void          umb_outbox_destroy (umb_outbox_t **self_p);

//  Appends an event. type is "state", "log" or "dropped"; state the agent's
//  state name (may be NULL for ""), message one line (may be NULL for "").
//  Returns the new sequence number, 0 when a log line was dropped for lack of
//  room (counted), -1 on an I/O error (logged by the caller with the reason).
int64_t       umb_outbox_append (umb_outbox_t *self, const char *type, const char *state,
                                 const char *message, char *reason, size_t reason_size);

//  Deletes every event with seq <= upto. Returns how many were deleted.
size_t        umb_outbox_ack (umb_outbox_t *self, uint64_t upto);

//  Writes an array of at most max events with seq > after into w (the array
//  is opened and closed here). Returns how many were written.
size_t        umb_outbox_read (umb_outbox_t *self, uint64_t after, size_t max, umb_w_t *w);

uint64_t      umb_outbox_last (umb_outbox_t *self);       //  last sequence number given (0: none)
uint64_t      umb_outbox_first (umb_outbox_t *self);      //  oldest kept (0: empty)
size_t        umb_outbox_count (umb_outbox_t *self);      //  events kept
size_t        umb_outbox_bytes (umb_outbox_t *self);      //  bytes kept on disk
uint64_t      umb_outbox_pending_dropped (umb_outbox_t *self);  //  log lines dropped, not yet reported

void          umb_outbox_test (bool verbose);

#endif
