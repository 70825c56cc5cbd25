//  umb_computation_cache - stored definitions, parsed once: a computation's
//  definition JSON is parsed again only when the stored text changed
//
//  A listing of 100 computations spent most of the service's loop parsing
//  the same definitions over and over. The cache maps a computation id to
//  its definition's text and what it parses to; an entry serves as long as
//  the text read from the store is byte for byte the one it was parsed from,
//  so no write path needs to invalidate anything. The least recently used
//  entries go first once capacity is reached.
//
//  Not thread-safe: the service's loop owns it.
#ifndef UMB_COMPUTATION_CACHE_H_INCLUDED
#define UMB_COMPUTATION_CACHE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "umb_computation.h"

typedef struct _umb_computation_cache_t umb_computation_cache_t;

//  capacity: entries kept, at least 1.
umb_computation_cache_t *umb_computation_cache_new (size_t capacity);
void                     umb_computation_cache_destroy (umb_computation_cache_t **self_p);

//  The definition json of computation id, parsed (umb_computation_from_json)
//  or from the cache. Borrowed: it stays valid until capacity other
//  computations were asked for, or the cache is destroyed; the caller must
//  not change it. NULL with the reason when json does not load.
const umb_computation_t *umb_computation_cache_get (umb_computation_cache_t *self, const char *id,
                                                    const char *json, char *reason,
                                                    size_t reason_size);

//  Entries held; parses done and answers served from the cache.
size_t umb_computation_cache_size (umb_computation_cache_t *self);
void   umb_computation_cache_stats (umb_computation_cache_t *self, size_t *parsed, size_t *hits);

void   umb_computation_cache_test (bool verbose);

#endif
