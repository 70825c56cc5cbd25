//  umb_audit - a workspace's append-only, hash-chained audit trail
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <sodium.h>
#include "umb_audit.h"
#include "umb_hex.h"
#include "umb_utf8.h"

#define S_DOMAIN     "umbra-audit-v1"
#define S_HASH_HEX   64

const char *const umb_audit_schema =
    "CREATE TABLE audit (\n"
    "    workspace_id TEXT    NOT NULL,\n"
    "    seq          INTEGER NOT NULL,\n"
    "    time         INTEGER NOT NULL,\n"
    "    computation  TEXT    NOT NULL,\n"
    "    actor        TEXT    NOT NULL,\n"
    "    action       TEXT    NOT NULL,\n"
    "    detail       TEXT    NOT NULL,\n"
    "    prev         TEXT    NOT NULL,\n"
    "    hash         TEXT    NOT NULL,\n"
    "    PRIMARY KEY (workspace_id, seq)\n"
    ");\n";

static const char s_last_sql [] =
    "SELECT seq, hash FROM audit WHERE workspace_id = ? ORDER BY seq DESC LIMIT 1";
static const char s_last_seq_sql [] =
    "SELECT COALESCE (MAX (seq), 0) FROM audit WHERE workspace_id = ?";
static const char s_insert_sql [] =
    "INSERT INTO audit (workspace_id, seq, time, computation, actor, action, detail, prev, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char s_list_sql [] =
    "SELECT seq, time, computation, actor, action, detail, prev, hash FROM audit "
    "WHERE workspace_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?";

struct _umb_audit_verifier_t {
    int64_t anchor_seq;             //  0: no anchor
    char    anchor_hash [S_HASH_HEX + 1];
    int64_t last_seq;               //  the last record accepted, 0 before any
    char    last_hash [S_HASH_HEX + 1];
    char    refused [256];          //  the first reason; "" while all is well
};

//  ---------------------------------------------------------------- the hash

//  One field: its length as 4 bytes big-endian, then its bytes.
static void
s_hash_field (crypto_hash_sha256_state *state, const char *bytes, size_t size)
{
    assert (size <= UINT32_MAX);
    const uint8_t length [4] = {
        (uint8_t) (size >> 24), (uint8_t) (size >> 16), (uint8_t) (size >> 8), (uint8_t) size
    };
    crypto_hash_sha256_update (state, length, sizeof (length));
    crypto_hash_sha256_update (state, (const uint8_t *) bytes, size);
}

//  The hash record should have. Its arrays need not be terminated (a record
//  from a peer): a field ends at its NUL or at the end of its array.
static void
s_hash (const umb_audit_record_t *record, char hash [S_HASH_HEX + 1])
{
    char seq [24], when [24];
    snprintf (seq, sizeof (seq), "%" PRId64, record->seq);
    snprintf (when, sizeof (when), "%" PRId64, record->time);
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    crypto_hash_sha256_update (&state, (const uint8_t *) S_DOMAIN, strlen (S_DOMAIN));
    s_hash_field (&state, seq, strlen (seq));
    s_hash_field (&state, when, strlen (when));
    s_hash_field (&state, record->computation, strnlen (record->computation, sizeof (record->computation)));
    s_hash_field (&state, record->actor, strnlen (record->actor, sizeof (record->actor)));
    s_hash_field (&state, record->action, strnlen (record->action, sizeof (record->action)));
    s_hash_field (&state, record->detail ? record->detail : "",
                  record->detail ? strlen (record->detail) : 0);
    s_hash_field (&state, record->prev, strnlen (record->prev, sizeof (record->prev)));
    uint8_t digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final (&state, digest);
    umb_hex_encode (digest, sizeof (digest), hash);
}

void
umb_audit_hash (umb_audit_record_t *record)
{
    assert (record);
    s_hash (record, record->hash);
}

void
umb_audit_record_clear (umb_audit_record_t *record)
{
    assert (record);
    free (record->detail);
    record->detail = NULL;
}

//  ---------------------------------------------------------------- the store

//  A JSON object in UTF-8 without NULs, of reasonable size.
static bool
s_detail_valid (const char *detail)
{
    size_t size = strlen (detail);
    if (size > UMB_AUDIT_MAX_DETAIL || !umb_utf8_valid (detail, size))
        return false;
    json_t *object = json_loadb (detail, size, JSON_REJECT_DUPLICATES, NULL);
    bool valid = json_is_object (object);
    json_decref (object);
    return valid;
}

typedef struct {
    int64_t seq;
    char    hash [S_HASH_HEX + 1];
} s_head_t;

static void
s_head_row (sqlite3_stmt *stmt, void *dest)
{
    s_head_t *head = (s_head_t *) dest;
    head->seq = sqlite3_column_int64 (stmt, 0);
    umb_store_column (stmt, 1, head->hash, sizeof (head->hash));
}

int
umb_audit_append (umb_store_t *store, const char *workspace_id, umb_audit_record_t *record)
{
    assert (store && workspace_id && record);
    //  The last (seq, hash) and the new record must be one atomic step
    assert (!sqlite3_get_autocommit (umb_store_handle (store)));
    assert (memchr (record->computation, 0, sizeof (record->computation)));
    assert (memchr (record->actor, 0, sizeof (record->actor)));
    assert (memchr (record->action, 0, sizeof (record->action)));
    if (!record->detail) {
        record->detail = strdup ("{}");
        assert (record->detail);
    }
    if (!s_detail_valid (record->detail))
        return -1;

    s_head_t head = { 0, UMB_AUDIT_GENESIS };
    int rc = umb_store_get (umb_store_query (store, s_last_sql, "s", workspace_id), s_head_row, &head);
    if (rc == UMB_STORE_NOT_FOUND)
        head = (s_head_t) { 0, UMB_AUDIT_GENESIS };
    else
    if (rc || head.seq < 0 || head.seq == INT64_MAX)
        return -1;
    record->seq = head.seq + 1;
    snprintf (record->prev, sizeof (record->prev), "%s", head.hash);
    if (!record->time)
        record->time = (int64_t) time (NULL);
    umb_audit_hash (record);
    rc = umb_store_run (store, s_insert_sql, "siisssss" "s", workspace_id, record->seq, record->time,
                        record->computation, record->actor, record->action, record->detail,
                        record->prev, record->hash);
    return rc == 0 ? 0 : -1;
}

static void
s_record_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_audit_record_t record = {
        .seq = sqlite3_column_int64 (stmt, 0),
        .time = sqlite3_column_int64 (stmt, 1)
    };
    umb_store_column (stmt, 2, record.computation, sizeof (record.computation));
    umb_store_column (stmt, 3, record.actor, sizeof (record.actor));
    umb_store_column (stmt, 4, record.action, sizeof (record.action));
    //  Borrowed from SQLite for the call: the callback gets a const record
    const char *detail = (const char *) sqlite3_column_text (stmt, 5);
    record.detail = (char *) (detail ? detail : "");
    umb_store_column (stmt, 6, record.prev, sizeof (record.prev));
    umb_store_column (stmt, 7, record.hash, sizeof (record.hash));
    ((umb_audit_fn *) fn) (&record, arg);
}

int
umb_audit_list (umb_store_t *store, const char *workspace_id, int64_t after, int64_t limit,
                umb_audit_fn *fn, void *arg, int64_t *last)
{
    assert (store && workspace_id && fn);
    assert (limit >= 0);
    int64_t end = umb_store_scalar (umb_store_query (store, s_last_seq_sql, "s", workspace_id));
    if (end < 0)
        return -1;
    if (last)
        *last = end;
    if (limit == 0 || after >= end)
        return 0;
    return umb_store_each (umb_store_query (store, s_list_sql, "siii", workspace_id, after, end, limit),
                           s_record_each, (void *) fn, arg);
}

//  ---------------------------------------------------------------- the verifier

umb_audit_verifier_t *
umb_audit_verifier_new (int64_t anchor_seq, const char *anchor_hash)
{
    assert (anchor_seq >= 0);
    assert (anchor_seq == 0 || anchor_hash);
    umb_audit_verifier_t *self = (umb_audit_verifier_t *) calloc (1, sizeof (umb_audit_verifier_t));
    assert (self);
    self->anchor_seq = anchor_seq;
    if (anchor_seq)
        snprintf (self->anchor_hash, sizeof (self->anchor_hash), "%s", anchor_hash);
    snprintf (self->last_hash, sizeof (self->last_hash), "%s", UMB_AUDIT_GENESIS);
    return self;
}

void
umb_audit_verifier_destroy (umb_audit_verifier_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  Remembers the first reason the trail is refused for; -1.
static int
s_refuse (umb_audit_verifier_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static int
s_refuse (umb_audit_verifier_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->refused, sizeof (self->refused), format, args);
    va_end (args);
    return -1;
}

int
umb_audit_verifier_feed (umb_audit_verifier_t *self, const umb_audit_record_t *record,
                         char *reason, size_t size)
{
    assert (self && record && reason && size > 0);
    int rc = *self->refused ? -1 : 0;
    if (rc == 0) {
        int64_t seq = record->seq;
        char hash [S_HASH_HEX + 1];
        s_hash (record, hash);
        //  The record itself first, then its place in the chain
        if (strnlen (record->hash, sizeof (record->hash)) != S_HASH_HEX
        ||  memcmp (hash, record->hash, S_HASH_HEX) != 0)
            rc = s_refuse (self, "record %" PRId64 ": its hash does not match its contents (changed)",
                           seq);
        else
        if (self->last_seq == 0 && seq != 1)
            rc = s_refuse (self, "the trail starts at record %" PRId64 ", not 1 (removed or reordered)",
                           seq);
        else
        if (seq != self->last_seq + 1)
            rc = s_refuse (self, "record %" PRId64 " follows record %" PRId64
                           " (removed or reordered)", seq, self->last_seq);
        else
        if (strnlen (record->prev, sizeof (record->prev)) != S_HASH_HEX
        ||  memcmp (record->prev, self->last_hash, S_HASH_HEX) != 0)
            rc = self->last_seq == 0
               ? s_refuse (self, "record 1: prev is not the genesis hash (64 zeros)")
               : s_refuse (self, "record %" PRId64 ": prev is not record %" PRId64 "'s hash", seq,
                           self->last_seq);
        else
        if (seq == self->anchor_seq && strcmp (hash, self->anchor_hash) != 0)
            rc = s_refuse (self, "record %" PRId64 ": its hash %.16s... is not %.16s..., seen before "
                           "(rewritten)", seq, hash, self->anchor_hash);
        else {
            self->last_seq = seq;
            memcpy (self->last_hash, hash, sizeof (self->last_hash));
        }
    }
    snprintf (reason, size, "%s", self->refused);
    return rc;
}

int
umb_audit_verifier_end (umb_audit_verifier_t *self, char *reason, size_t size)
{
    assert (self && reason && size > 0);
    int rc = *self->refused ? -1 : 0;
    if (rc == 0 && self->anchor_seq > self->last_seq)
        rc = self->last_seq == 0
           ? s_refuse (self, "the trail is empty, but record %" PRId64 " was seen before (truncated)",
                       self->anchor_seq)
           : s_refuse (self, "the trail ends at record %" PRId64 ", but record %" PRId64
                       " was seen before (truncated)", self->last_seq, self->anchor_seq);
    snprintf (reason, size, "%s", self->refused);
    return rc;
}

int64_t
umb_audit_verifier_last_seq (umb_audit_verifier_t *self)
{
    assert (self);
    return self->last_seq;
}

const char *
umb_audit_verifier_last_hash (umb_audit_verifier_t *self)
{
    assert (self);
    return self->last_hash;
}

//  ---------------------------------------------------------------- selftest
#include <czmq.h>
#include <openssl/evp.h>

//  The formula again, written out byte by byte and hashed with OpenSSL.
static void
s_test_reference (const umb_audit_record_t *record, char hex [65])
{
    char seq [32], when [32];
    snprintf (seq, sizeof (seq), "%lld", (long long) record->seq);
    snprintf (when, sizeof (when), "%lld", (long long) record->time);
    const char *fields [7] = { seq, when, record->computation, record->actor, record->action,
                               record->detail ? record->detail : "", record->prev };
    size_t total = strlen ("umbra-audit-v1");
    for (size_t i = 0; i < 7; i++)
        total += 4 + strlen (fields [i]);
    unsigned char *bytes = malloc (total), *cursor = bytes;
    assert (bytes);
    memcpy (cursor, "umbra-audit-v1", 14);
    cursor += 14;
    for (size_t i = 0; i < 7; i++) {
        uint32_t length = (uint32_t) strlen (fields [i]);
        *cursor++ = (unsigned char) (length >> 24);
        *cursor++ = (unsigned char) (length >> 16 & 0xff);
        *cursor++ = (unsigned char) (length >> 8 & 0xff);
        *cursor++ = (unsigned char) (length & 0xff);
        memcpy (cursor, fields [i], length);
        cursor += length;
    }
    assert ((size_t) (cursor - bytes) == total);
    unsigned char digest [EVP_MAX_MD_SIZE];
    unsigned int digest_size = 0;
    assert (EVP_Digest (bytes, total, digest, &digest_size, EVP_sha256 (), NULL) == 1);
    assert (digest_size == 32);
    for (size_t i = 0; i < 32; i++)
        snprintf (hex + 2 * i, 3, "%02x", digest [i]);
    free (bytes);
}

//  Records listed, copied.
typedef struct {
    umb_audit_record_t records [16];
    size_t             count;
} s_test_trail_t;

static void
s_test_collect (const umb_audit_record_t *record, void *arg)
{
    s_test_trail_t *trail = (s_test_trail_t *) arg;
    assert (trail->count < 16);
    umb_audit_record_t *copy = &trail->records [trail->count++];
    *copy = *record;
    copy->detail = strdup (record->detail);
    assert (copy->detail);
}

static void
s_test_trail_clear (s_test_trail_t *trail)
{
    for (size_t i = 0; i < trail->count; i++)
        umb_audit_record_clear (&trail->records [i]);
    trail->count = 0;
}

//  Appends one record in its own transaction; its seq.
static int64_t
s_test_append (umb_store_t *store, const char *workspace, const char *computation,
               const char *action, const char *detail)
{
    umb_audit_record_t record = { .time = 0 };
    snprintf (record.computation, sizeof (record.computation), "%s", computation);
    snprintf (record.actor, sizeof (record.actor), "usr_alice");
    snprintf (record.action, sizeof (record.action), "%s", action);
    record.detail = detail ? strdup (detail) : NULL;
    assert (umb_store_begin (store) == 0);
    int rc = umb_audit_append (store, workspace, &record);
    if (rc == 0)
        assert (umb_store_commit (store) == 0);
    else
        umb_store_rollback (store);
    umb_audit_record_clear (&record);
    return rc == 0 ? record.seq : -1;
}

//  Five records in workspace.
static void
s_test_fill (umb_store_t *store, const char *workspace)
{
    static const char *const actions [] = { "create", "keys.set", "assets.set", "update", "delete" };
    for (int64_t i = 0; i < 5; i++) {
        char detail [64];
        snprintf (detail, sizeof (detail), "{\"step\":%" PRId64 "}", i + 1);
        assert (s_test_append (store, workspace, "cmp_00000000000000a1", actions [i], detail) == i + 1);
    }
}

//  Lists workspace's whole trail and verifies it against the anchor; the
//  verdict, with its reason.
static int
s_test_verify (umb_store_t *store, const char *workspace, int64_t anchor_seq,
               const char *anchor_hash, char *reason, size_t size)
{
    s_test_trail_t trail = { .count = 0 };
    int64_t last = -1;
    assert (umb_audit_list (store, workspace, 0, 16, s_test_collect, &trail, &last) == 0);
    assert (last >= 0);
    umb_audit_verifier_t *verifier = umb_audit_verifier_new (anchor_seq, anchor_hash);
    int rc = 0;
    for (size_t i = 0; i < trail.count && rc == 0; i++)
        rc = umb_audit_verifier_feed (verifier, &trail.records [i], reason, size);
    if (rc == 0)
        rc = umb_audit_verifier_end (verifier, reason, size);
    else {
        //  Refused once, refused for good, with the first reason
        char again [256];
        assert (umb_audit_verifier_end (verifier, again, sizeof (again)) == -1);
        assert (strcmp (again, reason) == 0);
    }
    umb_audit_verifier_destroy (&verifier);
    umb_audit_verifier_destroy (&verifier);
    s_test_trail_clear (&trail);
    return rc;
}

//  The hash of workspace's record seq, as stored.
static void
s_test_stored_hash (umb_store_t *store, const char *workspace, int64_t seq, char hash [65])
{
    s_test_trail_t trail = { .count = 0 };
    assert (umb_audit_list (store, workspace, seq - 1, 1, s_test_collect, &trail, NULL) == 0);
    assert (trail.count == 1 && trail.records [0].seq == seq);
    memcpy (hash, trail.records [0].hash, 65);
    s_test_trail_clear (&trail);
}

static void
s_test_expect (umb_store_t *store, const char *workspace, int64_t anchor_seq, const char *anchor_hash,
               const char *expected)
{
    char reason [256] = "";
    int rc = s_test_verify (store, workspace, anchor_seq, anchor_hash, reason, sizeof (reason));
    if (expected ? rc != -1 || !strstr (reason, expected) : rc != 0)
        fprintf (stderr, "\n%s: got %d '%s', expected '%s'\n", workspace, rc, reason,
                 expected ? expected : "ok");
    assert (expected ? rc == -1 && strstr (reason, expected) : rc == 0 && *reason == 0);
}

//  Rewrites workspace's record seq with its seq, detail and prev as given
//  (NULL: kept), and a hash that matches: what a careful forger does.
static void
s_test_forge (umb_store_t *store, const char *workspace, int64_t seq, int64_t new_seq,
              const char *detail, const char *prev)
{
    s_test_trail_t trail = { .count = 0 };
    assert (umb_audit_list (store, workspace, seq - 1, 1, s_test_collect, &trail, NULL) == 0);
    assert (trail.count == 1);
    umb_audit_record_t *record = &trail.records [0];
    record->seq = new_seq;
    if (detail) {
        free (record->detail);
        record->detail = strdup (detail);
    }
    if (prev)
        snprintf (record->prev, sizeof (record->prev), "%s", prev);
    umb_audit_hash (record);
    assert (umb_store_run (store, "UPDATE audit SET seq = ?, detail = ?, prev = ?, hash = ? "
                           "WHERE workspace_id = ? AND seq = ?", "issssi", record->seq, record->detail,
                           record->prev, record->hash, workspace, seq) == 0);
    s_test_trail_clear (&trail);
}

void
umb_audit_test (bool verbose)
{
    if (verbose)
        printf (" * umb_audit: ");
    char reason [256];

    //  Known answers: hashlib's, and the formula written out again
    umb_audit_record_t record = { .seq = 1, .time = 1700000000 };
    snprintf (record.computation, sizeof (record.computation), "cmp_0123456789abcdef");
    snprintf (record.actor, sizeof (record.actor), "usr_alice");
    snprintf (record.action, sizeof (record.action), "create");
    record.detail = strdup ("{\"name\":\"prime\",\"n\":\"\xc3\xa9\"}");
    snprintf (record.prev, sizeof (record.prev), UMB_AUDIT_GENESIS);
    umb_audit_hash (&record);
    assert (strcmp (record.hash, "6f608c2673ac925fd8e0855b48c19baff899824302a3811b86c0085591c04d10") == 0);
    char reference [65];
    s_test_reference (&record, reference);
    assert (strcmp (record.hash, reference) == 0);
    umb_audit_record_t second = { .seq = 2, .time = 1700000060 };
    snprintf (second.computation, sizeof (second.computation), "cmp_0123456789abcdef");
    snprintf (second.actor, sizeof (second.actor), "usr_bob");
    snprintf (second.action, sizeof (second.action), "keys.set");
    second.detail = strdup ("{}");
    memcpy (second.prev, record.hash, sizeof (second.prev));
    umb_audit_hash (&second);
    assert (strcmp (second.hash, "bc68fd2cbb23b2c781ffd32457331fa1ba78d9499b275be3377d670e1d729850") == 0);
    //  ...and for odd values: negative and large integers, empty strings, no detail
    umb_audit_record_t odd = { .seq = INT64_MAX, .time = -1 };
    for (int round = 0; round < 64; round++) {
        if (round) {
            odd.seq = (int64_t) randombytes_uniform (1000000) - 500000;
            odd.time = (int64_t) randombytes_random () * (round % 2 ? 1 : -1);
            snprintf (odd.actor, sizeof (odd.actor), "usr_%08x", randombytes_random ());
            odd.detail = round % 3 ? NULL : (char *) "{\"a\":[1,2,3]}";
        }
        umb_audit_hash (&odd);
        s_test_reference (&odd, reference);
        assert (strcmp (odd.hash, reference) == 0);
    }
    //  Every field is in the hash
    char before [65];
    memcpy (before, record.hash, sizeof (before));
    umb_audit_record_t changed = record;
    changed.seq = 2; umb_audit_hash (&changed);
    assert (strcmp (changed.hash, before) != 0);
    changed = record; changed.time++; umb_audit_hash (&changed);
    assert (strcmp (changed.hash, before) != 0);
    changed = record; changed.computation [4] = 'X'; umb_audit_hash (&changed);
    assert (strcmp (changed.hash, before) != 0);
    changed = record; changed.actor [4] = 'X'; umb_audit_hash (&changed);
    assert (strcmp (changed.hash, before) != 0);
    changed = record; changed.action [0] = 'X'; umb_audit_hash (&changed);
    assert (strcmp (changed.hash, before) != 0);
    changed = record; changed.detail = (char *) "{\"name\":\"prime\",\"n\":\"e\"}"; umb_audit_hash (&changed);
    assert (strcmp (changed.hash, before) != 0);
    changed = record; changed.prev [63] = '1'; umb_audit_hash (&changed);
    assert (strcmp (changed.hash, before) != 0);
    //  Lengths are in the hash: a byte moved from one field to the next is seen
    changed = record;
    snprintf (changed.actor, sizeof (changed.actor), "usr_alicec");
    snprintf (changed.action, sizeof (changed.action), "reate");
    umb_audit_hash (&changed);
    assert (strcmp (changed.hash, before) != 0);

    //  The verifier alone: the two known records, then each way of breaking them
    umb_audit_verifier_t *verifier = umb_audit_verifier_new (0, NULL);
    assert (umb_audit_verifier_last_seq (verifier) == 0);
    assert (strcmp (umb_audit_verifier_last_hash (verifier), UMB_AUDIT_GENESIS) == 0);
    assert (umb_audit_verifier_feed (verifier, &record, reason, sizeof (reason)) == 0 && !*reason);
    assert (umb_audit_verifier_feed (verifier, &second, reason, sizeof (reason)) == 0);
    assert (umb_audit_verifier_end (verifier, reason, sizeof (reason)) == 0);
    assert (umb_audit_verifier_last_seq (verifier) == 2);
    assert (strcmp (umb_audit_verifier_last_hash (verifier), second.hash) == 0);
    umb_audit_verifier_destroy (&verifier);
    verifier = umb_audit_verifier_new (1, record.hash);
    changed = second;
    changed.hash [0] = changed.hash [0] == 'b' ? 'c' : 'b';
    assert (umb_audit_verifier_feed (verifier, &record, reason, sizeof (reason)) == 0);
    assert (umb_audit_verifier_feed (verifier, &changed, reason, sizeof (reason)) == -1);
    assert (strcmp (reason, "record 2: its hash does not match its contents (changed)") == 0);
    assert (umb_audit_verifier_feed (verifier, &second, reason, sizeof (reason)) == -1);
    assert (strcmp (reason, "record 2: its hash does not match its contents (changed)") == 0);
    assert (umb_audit_verifier_last_seq (verifier) == 1);
    //  A short reason buffer is still terminated
    char tiny [8];
    assert (umb_audit_verifier_end (verifier, tiny, sizeof (tiny)) == -1);
    assert (strcmp (tiny, "record ") == 0);
    umb_audit_verifier_destroy (&verifier);
    verifier = umb_audit_verifier_new (0, NULL);
    assert (umb_audit_verifier_feed (verifier, &second, reason, sizeof (reason)) == -1);
    assert (strcmp (reason, "the trail starts at record 2, not 1 (removed or reordered)") == 0);
    umb_audit_verifier_destroy (&verifier);
    verifier = umb_audit_verifier_new (0, NULL);
    changed = record;
    changed.prev [0] = '1';
    umb_audit_hash (&changed);
    assert (umb_audit_verifier_feed (verifier, &changed, reason, sizeof (reason)) == -1);
    assert (strcmp (reason, "record 1: prev is not the genesis hash (64 zeros)") == 0);
    umb_audit_verifier_destroy (&verifier);
    //  An anchor never reached: truncated
    verifier = umb_audit_verifier_new (9, second.hash);
    assert (umb_audit_verifier_end (verifier, reason, sizeof (reason)) == -1);
    assert (strcmp (reason, "the trail is empty, but record 9 was seen before (truncated)") == 0);
    umb_audit_verifier_destroy (&verifier);

    //  Robustness: records with every byte random (arrays unterminated) are
    //  refused without reading past them; each change to a good record is seen
    for (int round = 0; round < 500; round++) {
        umb_audit_record_t noise;
        randombytes_buf (&noise, sizeof (noise));
        noise.detail = round % 2 ? NULL : (char *) "{}";
        verifier = umb_audit_verifier_new (0, NULL);
        assert (umb_audit_verifier_feed (verifier, &noise, reason, sizeof (reason)) == -1);
        assert (memchr (reason, 0, sizeof (reason)));
        umb_audit_verifier_destroy (&verifier);

        changed = second;
        char detail [64];
        snprintf (detail, sizeof (detail), "%s", second.detail);
        changed.detail = detail;
        uint8_t flip = (uint8_t) (1 + randombytes_uniform (255));
        switch (randombytes_uniform (8)) {
            case 0: changed.seq += flip; break;
            case 1: changed.time -= flip; break;
            case 2: changed.computation [randombytes_uniform ((uint32_t) strlen (changed.computation))] ^= flip; break;
            case 3: changed.actor [randombytes_uniform ((uint32_t) strlen (changed.actor))] ^= flip; break;
            case 4: changed.action [randombytes_uniform ((uint32_t) strlen (changed.action))] ^= flip; break;
            case 5: detail [randombytes_uniform ((uint32_t) strlen (detail))] ^= flip; break;
            case 6: changed.prev [randombytes_uniform (64)] ^= flip; break;
            default: changed.hash [randombytes_uniform (64)] ^= flip; break;
        }
        verifier = umb_audit_verifier_new (0, NULL);
        assert (umb_audit_verifier_feed (verifier, &record, reason, sizeof (reason)) == 0);
        assert (umb_audit_verifier_feed (verifier, &changed, reason, sizeof (reason)) == -1);
        umb_audit_verifier_destroy (&verifier);
    }
    umb_audit_record_clear (&record);
    umb_audit_record_clear (&record);
    umb_audit_record_clear (&second);

    //  The store: the schema as a migration; a log that must never see a detail
    FILE *log_file = tmpfile ();
    assert (log_file);
    umb_log_t *log = umb_log_new ("audit-test", UMB_LOG_DEBUG, false);
    umb_log_set_fd (log, fileno (log_file));
    const umb_migration_t migrations [] = { { 1, umb_audit_schema }, { 0, NULL } };
    umb_store_t *store = umb_store_new (":memory:", migrations, log);
    assert (store && umb_store_version (store) == 1);

    //  Two workspaces, interleaved: each counts from 1
    int64_t last = -1;
    s_test_trail_t trail = { .count = 0 };
    assert (umb_audit_list (store, "lab", 0, 100, s_test_collect, &trail, &last) == 0);
    assert (trail.count == 0 && last == 0);
    for (int64_t i = 1; i <= 5; i++) {
        assert (s_test_append (store, "lab", "cmp_00000000000000a1", "update", "{\"n\":1}") == i);
        assert (s_test_append (store, "other", "cmp_00000000000000b2", "create", NULL) == i);
    }
    assert (umb_audit_list (store, "lab", 0, 100, s_test_collect, &trail, &last) == 0);
    assert (trail.count == 5 && last == 5);
    int64_t now = (int64_t) time (NULL);
    for (size_t i = 0; i < 5; i++) {
        umb_audit_record_t *listed = &trail.records [i];
        assert (listed->seq == (int64_t) i + 1);
        assert (listed->time > now - 60 && listed->time <= now);
        assert (streq (listed->computation, "cmp_00000000000000a1") && streq (listed->actor, "usr_alice"));
        assert (streq (listed->action, "update") && streq (listed->detail, "{\"n\":1}"));
        assert (streq (listed->prev, i ? trail.records [i - 1].hash : UMB_AUDIT_GENESIS));
        s_test_reference (listed, reference);
        assert (streq (listed->hash, reference));
    }
    char lab_head [65];
    memcpy (lab_head, trail.records [4].hash, sizeof (lab_head));
    s_test_trail_clear (&trail);
    assert (umb_audit_list (store, "other", 0, 100, s_test_collect, &trail, &last) == 0);
    assert (trail.count == 5 && last == 5 && streq (trail.records [0].detail, "{}"));
    assert (!streq (trail.records [4].hash, lab_head));
    s_test_trail_clear (&trail);
    //  Pages: after and limit; a limit of 0 tells only the last seq
    assert (umb_audit_list (store, "lab", 2, 2, s_test_collect, &trail, &last) == 0);
    assert (trail.count == 2 && trail.records [0].seq == 3 && trail.records [1].seq == 4 && last == 5);
    s_test_trail_clear (&trail);
    assert (umb_audit_list (store, "lab", 4, 100, s_test_collect, &trail, NULL) == 0);
    assert (trail.count == 1 && trail.records [0].seq == 5);
    s_test_trail_clear (&trail);
    assert (umb_audit_list (store, "lab", 5, 100, s_test_collect, &trail, &last) == 0);
    assert (trail.count == 0 && last == 5);
    assert (umb_audit_list (store, "lab", 0, 0, s_test_collect, &trail, &last) == 0);
    assert (trail.count == 0 && last == 5);
    assert (umb_audit_list (store, "nobody", 0, 10, s_test_collect, &trail, &last) == 0);
    assert (trail.count == 0 && last == 0);

    //  A given time is kept
    umb_audit_record_t timed = { .time = 1234 };
    snprintf (timed.action, sizeof (timed.action), "create");
    assert (umb_store_begin (store) == 0);
    assert (umb_audit_append (store, "timed", &timed) == 0);
    assert (umb_store_commit (store) == 0);
    assert (timed.seq == 1 && timed.time == 1234 && streq (timed.detail, "{}"));
    assert (streq (timed.prev, UMB_AUDIT_GENESIS));
    umb_audit_record_clear (&timed);

    //  Details: a JSON object in UTF-8 without NULs, else nothing is appended
    assert (s_test_append (store, "lab", "c", "update", "not json") == -1);
    assert (s_test_append (store, "lab", "c", "update", "[1,2]") == -1);
    assert (s_test_append (store, "lab", "c", "update", "{\"a\":1,\"a\":2}") == -1);
    assert (s_test_append (store, "lab", "c", "update", "{\"a\":\"\xff\"}") == -1);
    assert (s_test_append (store, "lab", "c", "update", "{\"a\":\"\xc0\xae\"}") == -1);
    assert (s_test_append (store, "lab", "c", "update", "{\"a\":\"x\\u0000y\"}") == -1);
    assert (s_test_append (store, "lab", "c", "update", "{\"a\":1} {}") == -1);
    char *big = malloc (UMB_AUDIT_MAX_DETAIL + 16);
    assert (big);
    memset (big, ' ', UMB_AUDIT_MAX_DETAIL + 15);
    memcpy (big, "{}", 2);
    big [UMB_AUDIT_MAX_DETAIL + 15] = 0;
    assert (s_test_append (store, "lab", "c", "update", big) == -1);
    big [UMB_AUDIT_MAX_DETAIL] = 0;
    assert (s_test_append (store, "big", "c", "update", big) == 1);
    free (big);
    assert (umb_audit_list (store, "lab", 0, 0, s_test_collect, &trail, &last) == 0 && last == 5);

    //  A store failure: -1, nothing appended, and the detail never logged
    umb_store_fail_after (store, 1);
    assert (s_test_append (store, "lab", "c", "update", "{\"secret\":\"hunter2-marker\"}") == -1);
    assert (s_test_append (store, "lab", "c", "update", "{\"secret\":\"hunter2-marker\"}") == 6);
    assert (umb_store_exec (store, "DROP TABLE audit") == 0);
    assert (s_test_append (store, "lab", "c", "update", "{\"secret\":\"hunter2-marker\"}") == -1);
    assert (umb_audit_list (store, "lab", 0, 10, s_test_collect, &trail, &last) == -1);
    assert (trail.count == 0);
    assert (umb_store_exec (store, umb_audit_schema) == 0);
    fseek (log_file, 0, SEEK_END);
    long length = ftell (log_file);
    assert (length > 0);
    char *logged = calloc (1, (size_t) length + 1);
    assert (logged);
    rewind (log_file);
    assert (fread (logged, 1, (size_t) length, log_file) == (size_t) length);
    assert (!strstr (logged, "hunter2-marker") && !strstr (logged, "secret"));
    free (logged);

    //  Verified, with and without an anchor; an anchor that is not the record
    s_test_fill (store, "lab");
    s_test_fill (store, "other");
    s_test_expect (store, "lab", 0, NULL, NULL);
    s_test_expect (store, "other", 0, NULL, NULL);
    char hash [65];
    s_test_stored_hash (store, "lab", 3, hash);
    s_test_expect (store, "lab", 3, hash, NULL);
    s_test_stored_hash (store, "lab", 5, hash);
    s_test_expect (store, "lab", 5, hash, NULL);
    s_test_stored_hash (store, "lab", 2, hash);
    s_test_expect (store, "lab", 3, hash, "record 3: its hash ");
    s_test_expect (store, "lab", 3, hash, "(rewritten)");

    //  A record's detail changed in the database
    s_test_fill (store, "changed");
    assert (umb_store_run (store, "UPDATE audit SET detail = '{\"step\":99}' WHERE workspace_id = ? "
                           "AND seq = 3", "s", "changed") == 0);
    s_test_expect (store, "changed", 0, NULL,
                   "record 3: its hash does not match its contents (changed)");
    //  ...its actor
    s_test_fill (store, "actor");
    assert (umb_store_run (store, "UPDATE audit SET actor = 'usr_mallory' WHERE workspace_id = ? "
                           "AND seq = 5", "s", "actor") == 0);
    s_test_expect (store, "actor", 0, NULL, "record 5: its hash does not match its contents (changed)");

    //  A record removed from the middle; from the start
    s_test_fill (store, "removed");
    assert (umb_store_run (store, "DELETE FROM audit WHERE workspace_id = ? AND seq = 3", "s",
                           "removed") == 0);
    s_test_expect (store, "removed", 0, NULL, "record 4 follows record 2 (removed or reordered)");
    s_test_fill (store, "first");
    assert (umb_store_run (store, "DELETE FROM audit WHERE workspace_id = ? AND seq = 1", "s",
                           "first") == 0);
    s_test_expect (store, "first", 0, NULL, "the trail starts at record 2, not 1 (removed or reordered)");

    //  Two records' seq swapped
    s_test_fill (store, "swapped");
    assert (umb_store_run (store, "UPDATE audit SET seq = -2 WHERE workspace_id = ? AND seq = 2", "s",
                           "swapped") == 0);
    assert (umb_store_run (store, "UPDATE audit SET seq = 2 WHERE workspace_id = ? AND seq = 4", "s",
                           "swapped") == 0);
    assert (umb_store_run (store, "UPDATE audit SET seq = 4 WHERE workspace_id = ? AND seq = -2", "s",
                           "swapped") == 0);
    s_test_expect (store, "swapped", 0, NULL, "record 2: its hash does not match its contents (changed)");

    //  A record removed and the next renumbered with a hash that matches: the chain breaks
    s_test_fill (store, "renumbered");
    assert (umb_store_run (store, "DELETE FROM audit WHERE workspace_id = ? AND seq = 3", "s",
                           "renumbered") == 0);
    s_test_forge (store, "renumbered", 4, 3, NULL, NULL);
    s_test_expect (store, "renumbered", 0, NULL, "record 3: prev is not record 2's hash");

    //  The last record removed: unseen without an anchor, truncated against one
    s_test_fill (store, "truncated");
    s_test_stored_hash (store, "truncated", 5, hash);
    assert (umb_store_run (store, "DELETE FROM audit WHERE workspace_id = ? AND seq = 5", "s",
                           "truncated") == 0);
    s_test_expect (store, "truncated", 0, NULL, NULL);
    s_test_expect (store, "truncated", 5, hash,
                   "the trail ends at record 4, but record 5 was seen before (truncated)");
    s_test_expect (store, "truncated", 4, hash, "(rewritten)");
    assert (umb_store_run (store, "DELETE FROM audit WHERE workspace_id = ?", "s", "truncated") == 0);
    s_test_expect (store, "truncated", 5, hash,
                   "the trail is empty, but record 5 was seen before (truncated)");

    //  The last record rewritten consistently: only an anchor tells
    s_test_fill (store, "rewritten");
    s_test_stored_hash (store, "rewritten", 5, hash);
    s_test_forge (store, "rewritten", 5, 5, "{\"step\":55}", NULL);
    s_test_expect (store, "rewritten", 0, NULL, NULL);
    s_test_expect (store, "rewritten", 5, hash, "record 5: its hash ");
    //  ...and appending goes on from the trail as it is
    assert (s_test_append (store, "rewritten", "c", "update", NULL) == 6);
    s_test_expect (store, "rewritten", 0, NULL, NULL);

    umb_store_destroy (&store);
    umb_log_destroy (&log);
    fclose (log_file);
    if (verbose)
        printf ("OK\n");
}
