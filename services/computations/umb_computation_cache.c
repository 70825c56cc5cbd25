//  umb_computation_cache - stored definitions, parsed once
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "umb_computation_cache.h"

typedef struct _entry_t entry_t;
struct _entry_t {
    entry_t          *older, *newer;    //  the use order
    char             *id;               //  the key, owned
    char             *json;             //  what it was parsed from
    umb_computation_t parsed;
};

struct _umb_computation_cache_t {
    zhashx_t *entries;                  //  id -> entry_t (the hash frees none)
    entry_t  *oldest, *newest;
    size_t    capacity;
    size_t    parsed, hits;
};

static void
s_entry_destroy (entry_t **entry_p)
{
    entry_t *entry = *entry_p;
    if (entry) {
        umb_computation_clear (&entry->parsed);
        free (entry->json);
        free (entry->id);
        free (entry);
        *entry_p = NULL;
    }
}

static void
s_unlink (umb_computation_cache_t *self, entry_t *entry)
{
    if (entry->older)
        entry->older->newer = entry->newer;
    else
        self->oldest = entry->newer;
    if (entry->newer)
        entry->newer->older = entry->older;
    else
        self->newest = entry->older;
    entry->older = entry->newer = NULL;
}

static void
s_push (umb_computation_cache_t *self, entry_t *entry)
{
    entry->older = self->newest;
    entry->newer = NULL;
    if (self->newest)
        self->newest->newer = entry;
    else
        self->oldest = entry;
    self->newest = entry;
}

static void
s_remove (umb_computation_cache_t *self, entry_t *entry)
{
    s_unlink (self, entry);
    zhashx_delete (self->entries, entry->id);
    s_entry_destroy (&entry);
}

umb_computation_cache_t *
umb_computation_cache_new (size_t capacity)
{
    assert (capacity > 0);
    umb_computation_cache_t *self = calloc (1, sizeof (umb_computation_cache_t));
    assert (self);
    self->entries = zhashx_new ();
    assert (self->entries);
    self->capacity = capacity;
    return self;
}

void
umb_computation_cache_destroy (umb_computation_cache_t **self_p)
{
    assert (self_p);
    umb_computation_cache_t *self = *self_p;
    if (!self)
        return;
    while (self->oldest)
        s_remove (self, self->oldest);
    zhashx_destroy (&self->entries);
    free (self);
    *self_p = NULL;
}

const umb_computation_t *
umb_computation_cache_get (umb_computation_cache_t *self, const char *id, const char *json,
                           char *reason, size_t reason_size)
{
    assert (self && id && json);
    entry_t *entry = zhashx_lookup (self->entries, id);
    if (entry && strcmp (entry->json, json) == 0) {
        s_unlink (self, entry);
        s_push (self, entry);
        self->hits++;
        return &entry->parsed;
    }
    if (entry)
        s_remove (self, entry);         //  the stored text changed
    entry = calloc (1, sizeof (entry_t));
    assert (entry);
    if (umb_computation_from_json (&entry->parsed, json, reason, reason_size)) {
        umb_computation_clear (&entry->parsed);
        free (entry);
        return NULL;
    }
    self->parsed++;
    entry->id = strdup (id);
    entry->json = strdup (json);
    assert (entry->id && entry->json);
    while (zhashx_size (self->entries) >= self->capacity)
        s_remove (self, self->oldest);
    int rc = zhashx_insert (self->entries, entry->id, entry);
    assert (rc == 0);
    s_push (self, entry);
    return &entry->parsed;
}

size_t
umb_computation_cache_size (umb_computation_cache_t *self)
{
    assert (self);
    return zhashx_size (self->entries);
}

void
umb_computation_cache_stats (umb_computation_cache_t *self, size_t *parsed, size_t *hits)
{
    assert (self);
    if (parsed)
        *parsed = self->parsed;
    if (hits)
        *hits = self->hits;
}

//  ---------------------------------------------------------------- selftest

//  A stored definition named name, as the store keeps it.
static char *
s_test_json (const char *name)
{
    umb_computation_t cmp;
    umb_computation_init (&cmp);
    snprintf (cmp.name, sizeof cmp.name, "%s", name);
    snprintf (cmp.algo_provider, sizeof cmp.algo_provider, "usr_a");
    cmp.consumers = calloc (1, sizeof (umb_computation_user_t));
    assert (cmp.consumers);
    snprintf (cmp.consumers [0], sizeof cmp.consumers [0], "usr_b");
    cmp.consumers_count = 1;
    char *json = umb_computation_to_json (&cmp);
    assert (json);
    umb_computation_clear (&cmp);
    return json;
}

void
umb_computation_cache_test (bool verbose)
{
    if (verbose)
        printf (" * umb_computation_cache: ");
    umb_computation_cache_t *cache = umb_computation_cache_new (2);
    char reason [256];
    char *one = s_test_json ("one"), *two = s_test_json ("two"), *three = s_test_json ("three");
    char *renamed = s_test_json ("one renamed");
    size_t parsed = 0, hits = 0;

    //  Parsed once, then served while the text is the same
    const umb_computation_t *first = umb_computation_cache_get (cache, "cmp_1", one, reason,
                                                                sizeof reason);
    assert (first && streq (first->name, "one") && streq (first->consumers [0], "usr_b"));
    assert (umb_computation_cache_get (cache, "cmp_1", one, reason, sizeof reason) == first);
    umb_computation_cache_stats (cache, &parsed, &hits);
    assert (parsed == 1 && hits == 1);
    //  A changed text is parsed again: no stale definition is ever served
    const umb_computation_t *again = umb_computation_cache_get (cache, "cmp_1", renamed, reason,
                                                                sizeof reason);
    assert (again && streq (again->name, "one renamed"));
    umb_computation_cache_stats (cache, &parsed, &hits);
    assert (parsed == 2 && hits == 1 && umb_computation_cache_size (cache) == 1);
    //  The least recently used goes first
    assert (umb_computation_cache_get (cache, "cmp_2", two, reason, sizeof reason));
    assert (umb_computation_cache_get (cache, "cmp_1", renamed, reason, sizeof reason));
    assert (umb_computation_cache_get (cache, "cmp_3", three, reason, sizeof reason));
    assert (umb_computation_cache_size (cache) == 2);
    umb_computation_cache_stats (cache, &parsed, &hits);
    assert (parsed == 4 && hits == 2);
    assert (umb_computation_cache_get (cache, "cmp_1", renamed, reason, sizeof reason));
    umb_computation_cache_stats (cache, &parsed, &hits);
    assert (parsed == 4 && hits == 3);      //  cmp_1 stayed; cmp_2 went
    assert (umb_computation_cache_get (cache, "cmp_2", two, reason, sizeof reason));
    umb_computation_cache_stats (cache, &parsed, &hits);
    assert (parsed == 5);
    //  What does not load is refused with the reason, and not kept
    size_t size = umb_computation_cache_size (cache);
    assert (!umb_computation_cache_get (cache, "cmp_9", "{\"name\": 1}", reason, sizeof reason));
    assert (*reason && umb_computation_cache_size (cache) == size);
    assert (!umb_computation_cache_get (cache, "cmp_2", "not json", reason, sizeof reason));
    assert (umb_computation_cache_size (cache) == size - 1);

    umb_computation_cache_destroy (&cache);
    assert (!cache);
    free (one);
    free (two);
    free (three);
    free (renamed);
    if (verbose)
        printf ("OK\n");
}
