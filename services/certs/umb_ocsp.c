//  umb_ocsp - an RFC 6960 OCSP responder core and a response verifier
#include <assert.h>
#include <ctype.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include "umb_ocsp.h"

#define UMB_OCSP_MAX_REQUEST     65536
#define UMB_OCSP_MAX_CERTIDS     64
#define UMB_OCSP_MAX_RESPONSE    (1024 * 1024)
#define UMB_OCSP_CACHE_MAX       100000
#define UMB_OCSP_CACHE_BUCKETS   65536          //  a power of two
//  Legitimate CertIDs for one serial differ only in hash algorithm (SHA-1,
//  SHA-256) and in whether its parameters are NULL or absent.
#define UMB_OCSP_CACHE_PER_SERIAL 4
#define UMB_OCSP_LEEWAY_S        300
#define UMB_OCSP_SERIAL_SIZE     41             //  20 octets (RFC 5280) in hex

typedef struct _entry_t entry_t;
struct _entry_t {
    entry_t *next;                      //  in its bucket
    entry_t *older, *newer;             //  in the age list
    uint8_t key [32];                   //  SHA-256 of the CertID's DER
    char serial [UMB_OCSP_SERIAL_SIZE];
    umb_ocsp_status_t status;
    int64_t expires;
    uint8_t *der;
    size_t size;
};

//  One issuing CA of the CA: what names it in a CertID, and who signs for it.
typedef struct {
    X509 *issuing;
    X509 *signer;                       //  its delegated OCSP signer
    EVP_PKEY *key;
    const EVP_MD *md;                   //  NULL for Ed25519 and Ed448
    char id [UMB_OCSP_SERIAL_SIZE];     //  its serial
    uint8_t name_sha1 [20], key_sha1 [20];
    uint8_t name_sha256 [32], key_sha256 [32];
} issuer_t;

struct _umb_ocsp_t {
    //  Append-only: umb_ocsp_issuer_add fills the next slot, then raises
    //  issuer_count (release; read with acquire)
    issuer_t issuers [UMB_CA_ISSUERS_MAX];
    size_t issuer_count;
    umb_ocsp_lookup_fn *lookup;
    void *state;
    int64_t validity_s;

    pthread_mutex_t mutex;              //  guards everything below it
    entry_t **buckets;                  //  by serial
    entry_t *oldest, *newest;
    size_t entries;
    uint64_t generation;                //  bumped by every invalidation

    atomic_uint_fast64_t good, revoked, unknown, malformed, cache_hits;
};

//  One CertID of a request, as answered.
typedef struct {
    OCSP_CERTID *id;                    //  borrowed from the request
    bool ours;
    bool left_out;                      //  another of our issuers': not in this response
    char serial [UMB_OCSP_SERIAL_SIZE];
    umb_ocsp_status_t status;
    int64_t revoked_at;
    int reason;
} answer_t;


//  Lowercase hex without leading zeros, as umb_ca names serials. False for a
//  negative serial or one that does not fit: never one of ours.
static bool
s_serial_hex (const ASN1_INTEGER *serial, char *hex, size_t hex_size)
{
    if (ASN1_STRING_type (serial) != V_ASN1_INTEGER)
        return false;
    const uint8_t *data = ASN1_STRING_get0_data (serial);
    size_t length = (size_t) ASN1_STRING_length (serial);
    while (length > 0 && *data == 0) {
        data++;
        length--;
    }
    if (length * 2 + 2 > hex_size)
        return false;
    static const char digits [] = "0123456789abcdef";
    size_t at = 0;
    for (size_t i = 0; i < length; i++) {
        if (i > 0 || data [i] >> 4)
            hex [at++] = digits [data [i] >> 4];
        hex [at++] = digits [data [i] & 15];
    }
    if (at == 0)
        hex [at++] = '0';
    hex [at] = 0;
    return true;
}

static bool
s_octets_equal (const ASN1_OCTET_STRING *octets, const uint8_t *expected, size_t size)
{
    return (size_t) ASN1_STRING_length (octets) == size
        && memcmp (ASN1_STRING_get0_data (octets), expected, size) == 0;
}

//  Which of our issuing CAs id names (its index), filling serial; -1 for
//  none. An unsupported hash algorithm cannot name ours. Issuers share their
//  name, so the key hash tells them apart.
static int
s_ours (umb_ocsp_t *self, OCSP_CERTID *id, char *serial, size_t serial_size)
{
    ASN1_OCTET_STRING *name_hash = NULL, *key_hash = NULL;
    ASN1_OBJECT *algorithm = NULL;
    ASN1_INTEGER *number = NULL;
    if (!OCSP_id_get0_info (&name_hash, &algorithm, &key_hash, &number, id))
        return -1;
    int nid = OBJ_obj2nid (algorithm);
    size_t count = __atomic_load_n (&self->issuer_count, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < count; i++) {
        const issuer_t *issuer = &self->issuers [i];
        bool named = nid == NID_sha1
            ? s_octets_equal (name_hash, issuer->name_sha1, sizeof (issuer->name_sha1))
              && s_octets_equal (key_hash, issuer->key_sha1, sizeof (issuer->key_sha1))
            : nid == NID_sha256
            && s_octets_equal (name_hash, issuer->name_sha256, sizeof (issuer->name_sha256))
            && s_octets_equal (key_hash, issuer->key_sha256, sizeof (issuer->key_sha256));
        if (named)
            return s_serial_hex (number, serial, serial_size) ? (int) i : -1;
    }
    return -1;
}

//  A request we are willing to read: DER with nothing after it, 1..64 CertIDs.
static OCSP_REQUEST *
s_request_parse (const uint8_t *der, size_t size)
{
    if (!der || size == 0 || size > UMB_OCSP_MAX_REQUEST)
        return NULL;
    const unsigned char *cursor = der;
    OCSP_REQUEST *request = d2i_OCSP_REQUEST (NULL, &cursor, (long) size);
    if (request && cursor == der + size) {
        int count = OCSP_request_onereq_count (request);
        if (count >= 1 && count <= UMB_OCSP_MAX_CERTIDS)
            return request;
    }
    OCSP_REQUEST_free (request);
    return NULL;
}

static uint8_t *
s_encode (OCSP_RESPONSE *response, size_t *size)
{
    uint8_t *der = NULL;
    int length = response ? i2d_OCSP_RESPONSE (response, &der) : -1;
    if (length <= 0) {
        OPENSSL_free (der);
        return NULL;
    }
    //  Callers free with free(), not OPENSSL_free()
    uint8_t *copy = malloc ((size_t) length);
    if (copy) {
        memcpy (copy, der, (size_t) length);
        *size = (size_t) length;
    }
    OPENSSL_free (der);
    return copy;
}

static uint8_t *
s_error_response (int status, size_t *size)
{
    OCSP_RESPONSE *response = OCSP_response_create (status, NULL);
    uint8_t *der = s_encode (response, size);
    OCSP_RESPONSE_free (response);
    ERR_clear_error ();
    return der;
}

static ASN1_GENERALIZEDTIME *
s_time (int64_t when)
{
    return ASN1_GENERALIZEDTIME_set (NULL, (time_t) when);
}

//  The 'unspecified' reason is left out, as RFC 5280 5.3.1 asks of CRLs;
//  codes that do not exist are left out too.
static int
s_reason_code (int reason)
{
    return reason >= 1 && reason <= 10 && reason != 7 ? reason : OCSP_REVOKED_STATUS_NOSTATUS;
}

static int
s_add_answer (OCSP_BASICRESP *basic, const answer_t *answer, ASN1_TIME *this_update,
              ASN1_TIME *next_update)
{
    int status = answer->status == UMB_OCSP_GOOD ? V_OCSP_CERTSTATUS_GOOD
               : answer->status == UMB_OCSP_REVOKED ? V_OCSP_CERTSTATUS_REVOKED
               : V_OCSP_CERTSTATUS_UNKNOWN;
    ASN1_GENERALIZEDTIME *revoked_at = NULL;
    if (status == V_OCSP_CERTSTATUS_REVOKED && !(revoked_at = s_time (answer->revoked_at)))
        return -1;
    OCSP_SINGLERESP *single = OCSP_basic_add1_status (basic, answer->id, status,
        s_reason_code (answer->reason), revoked_at, this_update, next_update);
    ASN1_GENERALIZEDTIME_free (revoked_at);
    return single ? 0 : -1;
}

//  Signs with a context of our own: the key is shared between threads, the
//  context never is.
static int
s_sign (const issuer_t *issuer, OCSP_BASICRESP *basic)
{
    EVP_MD_CTX *context = EVP_MD_CTX_new ();
    int rc = -1;
    if (context
    &&  EVP_DigestSignInit (context, NULL, issuer->md, NULL, issuer->key) == 1
    &&  OCSP_basic_sign_ctx (basic, issuer->signer, context, NULL, OCSP_RESPID_KEY) == 1)
        rc = 0;
    EVP_MD_CTX_free (context);
    return rc;
}

//  A signed, successful response for the answers; NULL on internal failure.
static uint8_t *
s_basic_response (umb_ocsp_t *self, const issuer_t *issuer, OCSP_REQUEST *request,
                  const answer_t *answers, int count, int64_t now, size_t *size)
{
    OCSP_BASICRESP *basic = OCSP_BASICRESP_new ();
    ASN1_GENERALIZEDTIME *this_update = s_time (now);
    ASN1_GENERALIZEDTIME *next_update = s_time (now + self->validity_s);
    OCSP_RESPONSE *response = NULL;
    uint8_t *der = NULL;
    bool built = basic && this_update && next_update;
    for (int i = 0; built && i < count; i++)
        built = answers [i].left_out
             || s_add_answer (basic, &answers [i], this_update, next_update) == 0;
    if (built
    &&  OCSP_copy_nonce (basic, request) > 0
    &&  s_sign (issuer, basic) == 0
    &&  (response = OCSP_response_create (OCSP_RESPONSE_STATUS_SUCCESSFUL, basic)))
        der = s_encode (response, size);
    OCSP_RESPONSE_free (response);
    OCSP_BASICRESP_free (basic);
    ASN1_GENERALIZEDTIME_free (this_update);
    ASN1_GENERALIZEDTIME_free (next_update);
    return der;
}

static size_t
s_bucket (const char *serial)
{
    uint64_t hash = 14695981039346656037ULL;        //  FNV-1a
    for (const char *c = serial; *c; c++)
        hash = (hash ^ (uint8_t) *c) * 1099511628211ULL;
    return (size_t) (hash & (UMB_OCSP_CACHE_BUCKETS - 1));
}

static void
s_entry_remove (umb_ocsp_t *self, entry_t *entry)
{
    entry_t **link = &self->buckets [s_bucket (entry->serial)];
    while (*link != entry)
        link = &(*link)->next;
    *link = entry->next;
    if (entry->older)
        entry->older->newer = entry->newer;
    else
        self->oldest = entry->newer;
    if (entry->newer)
        entry->newer->older = entry->older;
    else
        self->newest = entry->older;
    self->entries--;
    free (entry->der);
    free (entry);
}

//  Under the mutex. Copies the cached response into *der, dropping it if stale.
static bool
s_cache_find (umb_ocsp_t *self, const char *serial, const uint8_t key [32], int64_t now,
              uint8_t **der, size_t *size, umb_ocsp_status_t *status)
{
    for (entry_t *entry = self->buckets [s_bucket (serial)]; entry; entry = entry->next) {
        if (memcmp (entry->key, key, 32) != 0)
            continue;
        if (now >= entry->expires) {
            s_entry_remove (self, entry);
            return false;
        }
        *der = malloc (entry->size);
        if (!*der)
            return false;
        memcpy (*der, entry->der, entry->size);
        *size = entry->size;
        *status = entry->status;
        return true;
    }
    return false;
}

//  Under the mutex. Takes der on success.
static bool
s_cache_insert (umb_ocsp_t *self, const char *serial, const uint8_t key [32], int64_t now,
                uint8_t *der, size_t size, umb_ocsp_status_t status)
{
    size_t same_serial = 0;
    for (entry_t *entry = self->buckets [s_bucket (serial)]; entry; entry = entry->next)
        if (memcmp (entry->key, key, 32) == 0
        ||  (strcmp (entry->serial, serial) == 0 && ++same_serial >= UMB_OCSP_CACHE_PER_SERIAL))
            return false;
    //  The age list is also the expiry order: all entries live equally long
    while (self->oldest && (self->oldest->expires <= now || self->entries >= UMB_OCSP_CACHE_MAX))
        s_entry_remove (self, self->oldest);
    entry_t *entry = calloc (1, sizeof (entry_t));
    if (!entry)
        return false;
    memcpy (entry->key, key, 32);
    snprintf (entry->serial, sizeof (entry->serial), "%s", serial);
    entry->status = status;
    entry->expires = now + self->validity_s / 2;
    entry->der = der;
    entry->size = size;
    size_t bucket = s_bucket (serial);
    entry->next = self->buckets [bucket];
    self->buckets [bucket] = entry;
    entry->older = self->newest;
    if (self->newest)
        self->newest->newer = entry;
    else
        self->oldest = entry;
    self->newest = entry;
    self->entries++;
    return true;
}

static void
s_count (umb_ocsp_t *self, umb_ocsp_status_t status)
{
    atomic_fetch_add_explicit (status == UMB_OCSP_GOOD ? &self->good
                             : status == UMB_OCSP_REVOKED ? &self->revoked
                             : &self->unknown, 1, memory_order_relaxed);
}

//  The CertID hashes of issuer (RFC 6960 4.1.1: the name hash covers the DER
//  of the issuer's subject, the key hash only the value of the BIT STRING of
//  its public key) and a reference to it and its signer. 0 or -1.
static int
s_issuer_init (issuer_t *issuer, const umb_ca_issuer_t *from)
{
    if (!from->cert || !from->ocsp_signer || !from->ocsp_key)
        return -1;
    issuer->issuing = from->cert;
    issuer->signer = from->ocsp_signer;
    issuer->key = from->ocsp_key;
    X509_up_ref (issuer->issuing);
    X509_up_ref (issuer->signer);
    EVP_PKEY_up_ref (issuer->key);
    snprintf (issuer->id, sizeof (issuer->id), "%s", from->id);
    int type = EVP_PKEY_get_base_id (issuer->key);
    issuer->md = type == EVP_PKEY_ED25519 || type == EVP_PKEY_ED448 ? NULL : EVP_sha256 ();
    const X509_NAME *name = X509_get_subject_name (issuer->issuing);
    const ASN1_BIT_STRING *key = X509_get0_pubkey_bitstr (issuer->issuing);
    unsigned int name_size = 0, key_size = 0, name256_size = 0, key256_size = 0;
    return key
        && X509_NAME_digest (name, EVP_sha1 (), issuer->name_sha1, &name_size)
        && X509_NAME_digest (name, EVP_sha256 (), issuer->name_sha256, &name256_size)
        && EVP_Digest (key->data, (size_t) key->length, issuer->key_sha1, &key_size, EVP_sha1 (),
                       NULL)
        && EVP_Digest (key->data, (size_t) key->length, issuer->key_sha256, &key256_size,
                       EVP_sha256 (), NULL)
        && X509_check_private_key (issuer->signer, issuer->key) == 1 ? 0 : -1;
}

umb_ocsp_t *
umb_ocsp_new (umb_ca_t *ca, umb_ocsp_lookup_fn *lookup, void *state, int64_t validity_s)
{
    assert (ca);
    assert (lookup);
    assert (validity_s > 0);
    umb_ocsp_t *self = calloc (1, sizeof (umb_ocsp_t));
    if (!self)
        return NULL;
    self->lookup = lookup;
    self->state = state;
    self->validity_s = validity_s;
    pthread_mutex_init (&self->mutex, NULL);
    self->buckets = calloc (UMB_OCSP_CACHE_BUCKETS, sizeof (entry_t *));
    bool ok = self->buckets != NULL;
    size_t count = umb_ca_issuer_count (ca);
    assert (count <= UMB_CA_ISSUERS_MAX);
    for (size_t i = 0; ok && i < count; i++) {
        umb_ca_issuer_t from;
        umb_ca_issuer (ca, i, &from);
        ok = s_issuer_init (&self->issuers [i], &from) == 0;
        self->issuer_count = i + 1;     //  what s_issuer_init referenced, freed on failure
    }
    if (!ok || count == 0)
        umb_ocsp_destroy (&self);
    ERR_clear_error ();
    return self;
}

int
umb_ocsp_issuer_add (umb_ocsp_t *self, umb_ca_t *ca, size_t index)
{
    assert (self && ca);
    size_t count = self->issuer_count;
    if (count == UMB_CA_ISSUERS_MAX || index >= umb_ca_issuer_count (ca))
        return -1;
    umb_ca_issuer_t from;
    umb_ca_issuer (ca, index, &from);
    for (size_t i = 0; i < count; i++)
        if (strcmp (self->issuers [i].id, from.id) == 0)
            return 0;                   //  answered for already
    issuer_t *issuer = &self->issuers [count];
    int rc = s_issuer_init (issuer, &from);
    if (rc) {
        X509_free (issuer->issuing);
        X509_free (issuer->signer);
        EVP_PKEY_free (issuer->key);
        memset (issuer, 0, sizeof (*issuer));
    }
    else
        __atomic_store_n (&self->issuer_count, count + 1, __ATOMIC_RELEASE);
    ERR_clear_error ();
    return rc;
}

void
umb_ocsp_destroy (umb_ocsp_t **self_p)
{
    assert (self_p);
    umb_ocsp_t *self = *self_p;
    if (!self)
        return;
    while (self->oldest)
        s_entry_remove (self, self->oldest);
    free (self->buckets);
    pthread_mutex_destroy (&self->mutex);
    for (size_t i = 0; i < self->issuer_count; i++) {
        X509_free (self->issuers [i].issuing);
        X509_free (self->issuers [i].signer);
        EVP_PKEY_free (self->issuers [i].key);
    }
    free (self);
    *self_p = NULL;
}

uint8_t *
umb_ocsp_respond (umb_ocsp_t *self, const uint8_t *request_der, size_t size, size_t *response_size)
{
    assert (self);
    assert (response_size);
    *response_size = 0;
    OCSP_REQUEST *request = s_request_parse (request_der, size);
    if (!request) {
        atomic_fetch_add_explicit (&self->malformed, 1, memory_order_relaxed);
        return s_error_response (OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, response_size);
    }
    int count = OCSP_request_onereq_count (request);
    //  One response has one signer: the issuing CA of the first CertID that
    //  names one of ours signs it, and answers for its own CertIDs. Those of
    //  our other issuers are left out: a delegated signer is authorised for
    //  one issuer, and clients refuse a response that mixes issuers (ask
    //  again, one issuer a request). A stranger's is "unknown".
    answer_t answers [UMB_OCSP_MAX_CERTIDS];
    int signing = -1;
    for (int i = 0; i < count; i++) {
        answer_t *answer = &answers [i];
        answer->id = OCSP_onereq_get0_id (OCSP_request_onereq_get0 (request, i));
        int issuer = s_ours (self, answer->id, answer->serial, sizeof (answer->serial));
        if (signing < 0)
            signing = issuer;
        answer->ours = issuer >= 0 && issuer == signing;
        answer->left_out = issuer >= 0 && issuer != signing;
    }
    const issuer_t *issuer = &self->issuers [signing < 0
                                             ? __atomic_load_n (&self->issuer_count, __ATOMIC_ACQUIRE) - 1
                                             : (size_t) signing];
    int64_t now = (int64_t) time (NULL);

    //  Without a nonce, the answer depends on the CertID alone, so that is
    //  the key, not the request's bytes: variants of one request (signed or
    //  not, other extensions) share one entry.
    bool cacheable = count == 1 && answers [0].ours
                  && OCSP_REQUEST_get_ext_by_NID (request, NID_id_pkix_OCSP_Nonce, -1) < 0;
    uint8_t key [32];
    uint64_t generation = 0;
    if (cacheable) {
        uint8_t *id_der = NULL;
        int id_size = i2d_OCSP_CERTID (answers [0].id, &id_der);
        cacheable = id_size > 0 && EVP_Digest (id_der, (size_t) id_size, key, NULL, EVP_sha256 (), NULL);
        OPENSSL_free (id_der);
    }
    if (cacheable) {
        uint8_t *der = NULL;
        umb_ocsp_status_t status;
        pthread_mutex_lock (&self->mutex);
        bool hit = s_cache_find (self, answers [0].serial, key, now, &der, response_size, &status);
        generation = self->generation;
        pthread_mutex_unlock (&self->mutex);
        if (hit) {
            atomic_fetch_add_explicit (&self->cache_hits, 1, memory_order_relaxed);
            s_count (self, status);
            OCSP_REQUEST_free (request);
            return der;
        }
    }
    for (int i = 0; i < count; i++) {
        answer_t *answer = &answers [i];
        answer->status = UMB_OCSP_UNKNOWN;
        answer->revoked_at = 0;
        answer->reason = UMB_CA_REASON_UNSPECIFIED;
        if (answer->ours)
            answer->status = self->lookup (self->state, issuer->id, answer->serial,
                                           &answer->revoked_at, &answer->reason);
        if (answer->status != UMB_OCSP_GOOD && answer->status != UMB_OCSP_REVOKED)
            answer->status = UMB_OCSP_UNKNOWN;
    }
    uint8_t *der = s_basic_response (self, issuer, request, answers, count, now, response_size);
    OCSP_REQUEST_free (request);
    ERR_clear_error ();
    if (!der)
        return s_error_response (OCSP_RESPONSE_STATUS_INTERNALERROR, response_size);
    for (int i = 0; i < count; i++)
        if (!answers [i].left_out)
            s_count (self, answers [i].status);

    //  "unknown" is not cached: the serial may be issued in a moment. An
    //  invalidation since our lookup means the answer may already be stale.
    if (cacheable && answers [0].status != UMB_OCSP_UNKNOWN) {
        uint8_t *copy = malloc (*response_size);
        if (copy) {
            memcpy (copy, der, *response_size);
            pthread_mutex_lock (&self->mutex);
            bool kept = self->generation == generation
                     && s_cache_insert (self, answers [0].serial, key, now, copy, *response_size,
                                        answers [0].status);
            pthread_mutex_unlock (&self->mutex);
            if (!kept)
                free (copy);
        }
    }
    return der;
}

void
umb_ocsp_invalidate (umb_ocsp_t *self, const char *serial)
{
    assert (self);
    assert (serial);
    //  In the form the lookup callback is given, whatever the caller's
    char normal [UMB_OCSP_SERIAL_SIZE] = "";
    while (*serial == '0' && serial [1])
        serial++;
    for (size_t i = 0; serial [i] && i < sizeof (normal) - 1; i++)
        normal [i] = (char) tolower ((unsigned char) serial [i]);
    pthread_mutex_lock (&self->mutex);
    self->generation++;
    entry_t *entry = self->buckets [s_bucket (normal)];
    while (entry) {
        entry_t *next = entry->next;
        if (strcmp (entry->serial, normal) == 0)
            s_entry_remove (self, entry);
        entry = next;
    }
    pthread_mutex_unlock (&self->mutex);
}

void
umb_ocsp_stats (umb_ocsp_t *self, uint64_t *good, uint64_t *revoked, uint64_t *unknown,
                uint64_t *malformed, uint64_t *cache_hits)
{
    assert (self);
    if (good)
        *good = atomic_load (&self->good);
    if (revoked)
        *revoked = atomic_load (&self->revoked);
    if (unknown)
        *unknown = atomic_load (&self->unknown);
    if (malformed)
        *malformed = atomic_load (&self->malformed);
    if (cache_hits)
        *cache_hits = atomic_load (&self->cache_hits);
}

int
umb_ocsp_request_describe (const uint8_t *der, size_t size, char *serial, size_t serial_size,
                           char *hash_name, size_t hash_size)
{
    assert (serial && serial_size > 0);
    assert (hash_name && hash_size > 0);
    *serial = 0;
    *hash_name = 0;
    OCSP_REQUEST *request = s_request_parse (der, size);
    if (!request) {
        ERR_clear_error ();
        return -1;
    }
    int count = OCSP_request_onereq_count (request);
    ASN1_OBJECT *algorithm = NULL;
    ASN1_INTEGER *number = NULL;
    OCSP_CERTID *id = OCSP_onereq_get0_id (OCSP_request_onereq_get0 (request, 0));
    if (OCSP_id_get0_info (NULL, &algorithm, NULL, &number, id)) {
        if (!s_serial_hex (number, serial, serial_size))
            *serial = 0;
        int nid = OBJ_obj2nid (algorithm);
        if (nid != NID_undef)
            snprintf (hash_name, hash_size, "%s", OBJ_nid2ln (nid));
        else
            OBJ_obj2txt (hash_name, (int) hash_size, algorithm, 1);
    }
    OCSP_REQUEST_free (request);
    return count;
}


//  --------------------------------------------------------------------------
//  The verifier

static int
s_fail (char *text, size_t size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_fail (char *text, size_t size, const char *format, ...)
{
    if (text && size > 0) {
        va_list args;
        va_start (args, format);
        vsnprintf (text, size, format, args);
        va_end (args);
    }
    ERR_clear_error ();
    return -1;
}

static const char *
s_response_status_name (int status)
{
    static const char *names [] = {
        "successful", "malformedRequest", "internalError", "tryLater", NULL, "sigRequired",
        "unauthorized"
    };
    if (status >= 0 && status < (int) (sizeof (names) / sizeof (names [0])) && names [status])
        return names [status];
    return "not a known status";
}

//  RFC 6960 4.4 with RFC 5280 4.2: a critical extension not understood makes the
//  response unusable, and OpenSSL does not check. The only extension
//  understood is the nonce, and only where it belongs, in responseExtensions.
static bool
s_unknown_critical (OCSP_BASICRESP *basic)
{
    for (int i = 0; i < OCSP_BASICRESP_get_ext_count (basic); i++) {
        X509_EXTENSION *extension = OCSP_BASICRESP_get_ext (basic, i);
        if (X509_EXTENSION_get_critical (extension)
        &&  OBJ_obj2nid (X509_EXTENSION_get_object (extension)) != NID_id_pkix_OCSP_Nonce)
            return true;
    }
    for (int i = 0; i < OCSP_resp_count (basic); i++) {
        OCSP_SINGLERESP *single = OCSP_resp_get0 (basic, i);
        for (int j = 0; j < OCSP_SINGLERESP_get_ext_count (single); j++)
            if (X509_EXTENSION_get_critical (OCSP_SINGLERESP_get_ext (single, j)))
                return true;
    }
    return false;
}

static X509_STORE *
s_store_from_pem (const char *pem, int64_t now)
{
    X509_STORE *store = X509_STORE_new ();
    BIO *bio = BIO_new_mem_buf (pem, -1);
    int count = 0;
    X509 *cert;
    while (store && bio && (cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL))) {
        if (X509_STORE_add_cert (store, cert) == 1)
            count++;
        X509_free (cert);
    }
    BIO_free (bio);
    ERR_clear_error ();                 //  the end of the PEM text is an "error"
    if (count == 0) {
        X509_STORE_free (store);
        return NULL;
    }
    //  Every certificate the caller trusts is an anchor, self-signed or not
    X509_VERIFY_PARAM *param = X509_STORE_get0_param (store);
    X509_VERIFY_PARAM_set_flags (param, X509_V_FLAG_PARTIAL_CHAIN);
    X509_VERIFY_PARAM_set_time (param, (time_t) now);
    return store;
}

static ASN1_INTEGER *
s_serial_parse (const char *serial)
{
    size_t length = strlen (serial);
    if (length == 0 || length > 40 || strspn (serial, "0123456789abcdefABCDEF") != length)
        return NULL;
    BIGNUM *number = NULL;
    if (!BN_hex2bn (&number, serial))
        return NULL;
    ASN1_INTEGER *integer = BN_to_ASN1_INTEGER (number, NULL);
    BN_free (number);
    return integer;
}

//  Looks for the serial under a SHA-1 CertID, the common one, then SHA-256.
static bool
s_find_status (OCSP_BASICRESP *basic, X509 *issuer, const ASN1_INTEGER *serial, int *status,
               int *reason, ASN1_GENERALIZEDTIME **revoked_at, ASN1_GENERALIZEDTIME **this_update,
               ASN1_GENERALIZEDTIME **next_update)
{
    const EVP_MD *digests [] = { EVP_sha1 (), EVP_sha256 () };
    for (size_t i = 0; i < 2; i++) {
        OCSP_CERTID *id = OCSP_cert_id_new (digests [i], X509_get_subject_name (issuer),
                                            X509_get0_pubkey_bitstr (issuer), serial);
        int found = id && OCSP_resp_find_status (basic, id, status, reason, revoked_at,
                                                 this_update, next_update);
        OCSP_CERTID_free (id);
        if (found == 1)
            return true;
    }
    return false;
}

static bool
s_unix_time (const ASN1_GENERALIZEDTIME *time, int64_t *seconds)
{
    struct tm tm;
    if (!time || ASN1_TIME_to_tm (time, &tm) != 1)
        return false;
    *seconds = (int64_t) timegm (&tm);
    return true;
}

//  The nonce's extnValue is the DER of an OCTET STRING holding the nonce
//  (RFC 8954); a bare nonce is not accepted.
static bool
s_nonce_matches (OCSP_BASICRESP *basic, const uint8_t *nonce, size_t nonce_size)
{
    int at = OCSP_BASICRESP_get_ext_by_NID (basic, NID_id_pkix_OCSP_Nonce, -1);
    if (at < 0 || OCSP_BASICRESP_get_ext_by_NID (basic, NID_id_pkix_OCSP_Nonce, at) >= 0)
        return false;
    const ASN1_OCTET_STRING *value = X509_EXTENSION_get_data (OCSP_BASICRESP_get_ext (basic, at));
    const unsigned char *cursor = ASN1_STRING_get0_data (value);
    const unsigned char *end = cursor + ASN1_STRING_length (value);
    ASN1_OCTET_STRING *inner = d2i_ASN1_OCTET_STRING (NULL, &cursor, end - cursor);
    bool matches = inner && cursor == end
                && (size_t) ASN1_STRING_length (inner) == nonce_size
                && CRYPTO_memcmp (ASN1_STRING_get0_data (inner), nonce, nonce_size) == 0;
    ASN1_OCTET_STRING_free (inner);
    return matches;
}

int
umb_ocsp_verify (const uint8_t *response_der, size_t size, X509 *issuer, const char *roots_pem,
                 const char *serial, const uint8_t *expected_nonce, size_t nonce_size,
                 int64_t now, umb_ocsp_status_t *status, int64_t *revoked_at,
                 int *reason, char *reason_text, size_t reason_text_size)
{
    assert (issuer);
    assert (roots_pem);
    assert (serial);
    assert (status);
    assert (expected_nonce || nonce_size == 0);
    if (reason_text && reason_text_size > 0)
        *reason_text = 0;
    if (!response_der || size == 0 || size > UMB_OCSP_MAX_RESPONSE)
        return s_fail (reason_text, reason_text_size, "malformed response: empty or too large");
    const unsigned char *cursor = response_der;
    OCSP_RESPONSE *response = d2i_OCSP_RESPONSE (NULL, &cursor, (long) size);
    if (!response || cursor != response_der + size) {
        OCSP_RESPONSE_free (response);
        return s_fail (reason_text, reason_text_size, "malformed response");
    }
    int response_status = OCSP_response_status (response);
    if (response_status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        OCSP_RESPONSE_free (response);
        return s_fail (reason_text, reason_text_size, "responder error: %s",
                       s_response_status_name (response_status));
    }
    OCSP_BASICRESP *basic = OCSP_response_get1_basic (response);
    OCSP_RESPONSE_free (response);
    if (!basic)
        return s_fail (reason_text, reason_text_size, "malformed response: not a basic response");

    int rc = -1;
    X509_STORE *store = NULL;
    STACK_OF (X509) *untrusted = NULL;
    ASN1_INTEGER *number = NULL;
    int found_status = 0, found_reason = 0;
    ASN1_GENERALIZEDTIME *revocation = NULL, *this_update = NULL, *next_update = NULL;
    int64_t this_s = 0, next_s = 0, revoked_s = 0;
    if (s_unknown_critical (basic)) {
        s_fail (reason_text, reason_text_size, "unknown critical extension");
        goto done;
    }
    if (!(store = s_store_from_pem (roots_pem, now))) {
        s_fail (reason_text, reason_text_size, "no usable certificate in the roots");
        goto done;
    }
    if (!(untrusted = sk_X509_new_null ()) || !sk_X509_push (untrusted, issuer)) {
        s_fail (reason_text, reason_text_size, "out of memory");
        goto done;
    }
    //  NOEXPLICIT: a chain to a trusted root is not enough, the signer must be
    //  the issuer or a responder it delegated to with id-kp-OCSPSigning.
    if (OCSP_basic_verify (basic, untrusted, store, OCSP_NOEXPLICIT) != 1) {
        const char *data = NULL;
        int flags = 0;
        unsigned long error = ERR_peek_last_error_data (&data, &flags);
        const char *why = error ? ERR_reason_error_string (error) : NULL;
        bool detail = data && *data && (flags & ERR_TXT_STRING);
        //  OpenSSL says nothing when the signer is valid but not authorized
        s_fail (reason_text, reason_text_size, "signature does not verify: %s%s%s%s",
                why ? why : "responder not authorized by the issuer", detail ? " (" : "",
                detail ? data : "", detail ? ")" : "");
        goto done;
    }
    if (!(number = s_serial_parse (serial))) {
        s_fail (reason_text, reason_text_size, "bad serial '%.64s'", serial);
        goto done;
    }
    if (!s_find_status (basic, issuer, number, &found_status, &found_reason, &revocation,
                        &this_update, &next_update)) {
        s_fail (reason_text, reason_text_size, "no status for this certificate");
        goto done;
    }
    if (!s_unix_time (this_update, &this_s)
    ||  (next_update && !s_unix_time (next_update, &next_s))
    ||  (found_status == V_OCSP_CERTSTATUS_REVOKED && !s_unix_time (revocation, &revoked_s))) {
        s_fail (reason_text, reason_text_size, "malformed response: bad time");
        goto done;
    }
    //  OCSP_check_validity would compare with the clock, not with now
    if (!next_update) {
        s_fail (reason_text, reason_text_size, "response has no nextUpdate");
        goto done;
    }
    if (next_s < this_s) {
        s_fail (reason_text, reason_text_size, "malformed response: nextUpdate before thisUpdate");
        goto done;
    }
    if (this_s > now + UMB_OCSP_LEEWAY_S) {
        s_fail (reason_text, reason_text_size, "response not yet valid");
        goto done;
    }
    if (next_s < now - UMB_OCSP_LEEWAY_S) {
        s_fail (reason_text, reason_text_size, "response expired");
        goto done;
    }
    if (expected_nonce && !s_nonce_matches (basic, expected_nonce, nonce_size)) {
        s_fail (reason_text, reason_text_size, "nonce missing or different");
        goto done;
    }
    *status = found_status == V_OCSP_CERTSTATUS_GOOD ? UMB_OCSP_GOOD
            : found_status == V_OCSP_CERTSTATUS_REVOKED ? UMB_OCSP_REVOKED
            : UMB_OCSP_UNKNOWN;
    if (revoked_at)
        *revoked_at = *status == UMB_OCSP_REVOKED ? revoked_s : 0;
    if (reason)
        *reason = *status == UMB_OCSP_REVOKED && found_reason >= 0 ? found_reason
                                                                   : UMB_CA_REASON_UNSPECIFIED;
    rc = 0;
done:
    ASN1_INTEGER_free (number);
    sk_X509_free (untrusted);
    X509_STORE_free (store);
    OCSP_BASICRESP_free (basic);
    ERR_clear_error ();
    return rc;
}


//  --------------------------------------------------------------------------
//  Selftest

#ifndef UMB_VECTORS_DIR
#   define UMB_VECTORS_DIR NULL
#endif
#define UMB_OCSP_OPENSSL "/usr/bin/openssl"

typedef struct {
    char serial [UMB_OCSP_SERIAL_SIZE];
    char issuer [UMB_OCSP_SERIAL_SIZE];     //  "": any issuer
    umb_ocsp_status_t status;
    int64_t revoked_at;
    int reason;
} test_row_t;

typedef struct {
    pthread_mutex_t mutex;
    test_row_t rows [4];
    size_t count;
    umb_ocsp_t *invalidate_in_lookup;   //  plays a revocation racing a lookup
} test_table_t;

static umb_ocsp_status_t
s_test_lookup (void *state, const char *issuer, const char *serial, int64_t *revoked_at,
               int *reason)
{
    test_table_t *table = (test_table_t *) state;
    umb_ocsp_status_t status = UMB_OCSP_UNKNOWN;
    pthread_mutex_lock (&table->mutex);
    for (size_t i = 0; i < table->count; i++)
        if (strcmp (table->rows [i].serial, serial) == 0
        &&  (!*table->rows [i].issuer || strcmp (table->rows [i].issuer, issuer) == 0)) {
            status = table->rows [i].status;
            *revoked_at = table->rows [i].revoked_at;
            *reason = table->rows [i].reason;
        }
    umb_ocsp_t *racer = table->invalidate_in_lookup;
    pthread_mutex_unlock (&table->mutex);
    if (racer)
        umb_ocsp_invalidate (racer, serial);
    return status;
}

static void
s_test_set (test_table_t *table, const char *serial, umb_ocsp_status_t status, int64_t revoked_at,
            int reason)
{
    pthread_mutex_lock (&table->mutex);
    size_t i = 0;
    while (i < table->count && strcmp (table->rows [i].serial, serial) != 0)
        i++;
    assert (i < sizeof (table->rows) / sizeof (table->rows [0]));
    if (i == table->count)
        table->count++;
    snprintf (table->rows [i].serial, sizeof (table->rows [i].serial), "%s", serial);
    table->rows [i].status = status;
    table->rows [i].revoked_at = revoked_at;
    table->rows [i].reason = reason;
    pthread_mutex_unlock (&table->mutex);
}

static X509 *
s_test_x509 (const char *pem)
{
    BIO *bio = BIO_new_mem_buf (pem, -1);
    assert (bio);
    X509 *cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
    assert (cert);
    BIO_free (bio);
    return cert;
}

static char *
s_test_pem (X509 *const *certs, size_t count)
{
    BIO *bio = BIO_new (BIO_s_mem ());
    assert (bio);
    for (size_t i = 0; i < count; i++)
        assert (PEM_write_bio_X509 (bio, certs [i]) == 1);
    char *data = NULL;
    long size = BIO_get_mem_data (bio, &data);
    char *pem = strndup (data, (size_t) size);
    assert (pem);
    BIO_free (bio);
    return pem;
}

static uint8_t *
s_test_read_file (const char *path, size_t *size)
{
    FILE *file = fopen (path, "rb");
    assert (file);
    uint8_t *data = malloc (1024 * 1024);
    assert (data);
    *size = fread (data, 1, 1024 * 1024, file);
    fclose (file);
    return data;
}

static void
s_test_write_file (const char *path, const void *data, size_t size)
{
    FILE *file = fopen (path, "wb");
    assert (file);
    assert (fwrite (data, 1, size, file) == size);
    assert (fclose (file) == 0);
}

//  DER of a request for ids (taken), with a nonce if given.
static uint8_t *
s_test_request_ids (OCSP_CERTID **ids, size_t count, const uint8_t *nonce, size_t nonce_size,
                    size_t *size)
{
    OCSP_REQUEST *request = OCSP_REQUEST_new ();
    assert (request);
    for (size_t i = 0; i < count; i++)
        assert (OCSP_request_add0_id (request, ids [i]));
    if (nonce)
        assert (OCSP_request_add1_nonce (request, (unsigned char *) nonce, (int) nonce_size) == 1);
    uint8_t *der = NULL;
    int length = i2d_OCSP_REQUEST (request, &der);
    assert (length > 0);
    uint8_t *copy = malloc ((size_t) length);
    assert (copy);
    memcpy (copy, der, (size_t) length);
    OPENSSL_free (der);
    OCSP_REQUEST_free (request);
    *size = (size_t) length;
    return copy;
}

static uint8_t *
s_test_request (X509 *issuer, X509 *cert, const EVP_MD *md, const uint8_t *nonce,
                size_t nonce_size, size_t *size)
{
    OCSP_CERTID *id = OCSP_cert_to_id (md, cert, issuer);
    assert (id);
    return s_test_request_ids (&id, 1, nonce, nonce_size, size);
}

static OCSP_CERTID *
s_test_id (X509 *issuer, const EVP_MD *md, const char *serial)
{
    ASN1_INTEGER *number = s_serial_parse (serial);
    assert (number);
    OCSP_CERTID *id = OCSP_cert_id_new (md, X509_get_subject_name (issuer),
                                        X509_get0_pubkey_bitstr (issuer), number);
    assert (id);
    ASN1_INTEGER_free (number);
    return id;
}

static int
s_test_response_status (const uint8_t *der, size_t size)
{
    const unsigned char *cursor = der;
    OCSP_RESPONSE *response = d2i_OCSP_RESPONSE (NULL, &cursor, (long) size);
    assert (response);
    assert (cursor == der + size);
    int status = OCSP_response_status (response);
    OCSP_RESPONSE_free (response);
    return status;
}

static OCSP_BASICRESP *
s_test_basic (const uint8_t *der, size_t size)
{
    const unsigned char *cursor = der;
    OCSP_RESPONSE *response = d2i_OCSP_RESPONSE (NULL, &cursor, (long) size);
    assert (response);
    OCSP_BASICRESP *basic = OCSP_response_get1_basic (response);
    assert (basic);
    OCSP_RESPONSE_free (response);
    return basic;
}

//  The status of id in a response, read with OpenSSL alone; -1 if absent.
static int
s_test_status_of (const uint8_t *der, size_t size, OCSP_CERTID *id)
{
    OCSP_BASICRESP *basic = s_test_basic (der, size);
    int status = -1, reason = 0;
    ASN1_GENERALIZEDTIME *revoked = NULL, *this_update = NULL, *next_update = NULL;
    if (OCSP_resp_find_status (basic, id, &status, &reason, &revoked, &this_update, &next_update) != 1)
        status = -1;
    OCSP_BASICRESP_free (basic);
    return status;
}

typedef struct {
    umb_ocsp_status_t status;
    int64_t revoked_at;
    int reason;
    char text [256];
} test_verdict_t;

static int
s_test_verify (const uint8_t *der, size_t size, X509 *issuer, const char *roots, const char *serial,
               const uint8_t *nonce, size_t nonce_size, int64_t now, test_verdict_t *verdict)
{
    memset (verdict, 0, sizeof (*verdict));
    verdict->status = (umb_ocsp_status_t) -1;
    return umb_ocsp_verify (der, size, issuer, roots, serial, nonce, nonce_size, now,
                            &verdict->status, &verdict->revoked_at, &verdict->reason,
                            verdict->text, sizeof (verdict->text));
}

//  A response for id signed by anyone we like, to try the verifier with.
static uint8_t *
s_test_forge (X509 *signer, EVP_PKEY *key, OCSP_CERTID *id, int status, long shift, size_t *size)
{
    OCSP_BASICRESP *basic = OCSP_BASICRESP_new ();
    ASN1_TIME *this_update = X509_gmtime_adj (NULL, shift);
    ASN1_TIME *next_update = X509_gmtime_adj (NULL, shift + 3600);
    assert (basic && this_update && next_update);
    assert (OCSP_basic_add1_status (basic, id, status, -1, NULL, this_update, next_update));
    int type = EVP_PKEY_get_base_id (key);
    const EVP_MD *md = type == EVP_PKEY_ED25519 || type == EVP_PKEY_ED448 ? NULL : EVP_sha256 ();
    assert (OCSP_basic_sign (basic, signer, key, md, NULL, OCSP_RESPID_KEY) == 1);
    OCSP_RESPONSE *response = OCSP_response_create (OCSP_RESPONSE_STATUS_SUCCESSFUL, basic);
    assert (response);
    uint8_t *der = s_encode (response, size);
    assert (der);
    OCSP_RESPONSE_free (response);
    OCSP_BASICRESP_free (basic);
    ASN1_TIME_free (this_update);
    ASN1_TIME_free (next_update);
    return der;
}

static EVP_PKEY *
s_test_key_file (const char *path)
{
    FILE *file = fopen (path, "r");
    assert (file);
    EVP_PKEY *key = PEM_read_PrivateKey (file, NULL, NULL, NULL);
    assert (key);
    fclose (file);
    return key;
}

static EVP_PKEY *
s_test_key_pem (const char *pem)
{
    BIO *bio = BIO_new_mem_buf (pem, -1);
    assert (bio);
    EVP_PKEY *key = PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL);
    assert (key);
    BIO_free (bio);
    return key;
}

static uint64_t
s_test_random (uint64_t *state)
{
    uint64_t x = *state;                            //  xorshift64
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

//  Runs the openssl command line tool; its output (stdout and stderr) in out.
static int
s_test_openssl (const char *dir, char *out, size_t out_size, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
s_test_openssl (const char *dir, char *out, size_t out_size, const char *format, ...)
{
    char arguments [1024], command [2048], log [512];
    va_list args;
    va_start (args, format);
    vsnprintf (arguments, sizeof (arguments), format, args);
    va_end (args);
    snprintf (log, sizeof (log), "%s/openssl.out", dir);
    snprintf (command, sizeof (command), "cd '%s' && " UMB_OCSP_OPENSSL " %s >'%s' 2>&1",
              dir, arguments, log);
    int rc = system (command);
    size_t size = 0;
    uint8_t *data = s_test_read_file (log, &size);
    size = size < out_size - 1 ? size : out_size - 1;
    memcpy (out, data, size);
    out [size] = 0;
    free (data);
    return rc;
}

static int
s_test_remove (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    return remove (path);
}

typedef struct {
    umb_ocsp_t *ocsp;
    X509 *issuer;
    const char *roots;
    const uint8_t *request;
    size_t request_size;
    const char *serial;
    int answered;
} test_worker_t;

static void *
s_test_worker (void *args)
{
    test_worker_t *worker = (test_worker_t *) args;
    for (int i = 0; i < 100; i++) {
        size_t size = 0;
        uint8_t *der = umb_ocsp_respond (worker->ocsp, worker->request, worker->request_size, &size);
        assert (der);
        test_verdict_t verdict;
        int rc = s_test_verify (der, size, worker->issuer, worker->roots, worker->serial, NULL, 0,
                                (int64_t) time (NULL), &verdict);
        assert (rc == 0);
        assert (verdict.status == UMB_OCSP_GOOD || verdict.status == UMB_OCSP_REVOKED);
        worker->answered++;
        free (der);
    }
    return NULL;
}

//  The openssl tool asks for leaf's status, we answer, and it checks the answer.
static void
s_test_interop (umb_ocsp_t *ocsp, const char *dir, const char *leaf_pem, bool nonce,
                const char *expected)
{
    char path [512], out [16384];
    snprintf (path, sizeof (path), "%s/leaf.pem", dir);
    s_test_write_file (path, leaf_pem, strlen (leaf_pem));
    int rc = s_test_openssl (dir, out, sizeof (out),
                             "ocsp -issuer issuing.pem -cert leaf.pem -reqout req.der %s",
                             nonce ? "-nonce" : "-no_nonce");
    assert (rc == 0);
    snprintf (path, sizeof (path), "%s/req.der", dir);
    size_t size = 0, response_size = 0;
    uint8_t *request = s_test_read_file (path, &size);
    uint8_t *response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (response);
    snprintf (path, sizeof (path), "%s/resp.der", dir);
    s_test_write_file (path, response, response_size);
    //  Given the request (-reqin), the tool checks the nonce; given the
    //  certificate (-cert), it makes a request of its own and prints the
    //  status, so it must not want a nonce then
    rc = s_test_openssl (dir, out, sizeof (out), "ocsp -respin resp.der -reqin req.der -CAfile chain.pem");
    if (rc != 0 || !strstr (out, "Response verify OK") || strstr (out, "WARNING") || strstr (out, "rror"))
        fprintf (stderr, "openssl said:\n%s\n", out);
    assert (rc == 0);
    assert (strstr (out, "Response verify OK"));
    assert (!strstr (out, "WARNING") && !strstr (out, "rror"));
    rc = s_test_openssl (dir, out, sizeof (out),
                         "ocsp -respin resp.der -issuer issuing.pem -cert leaf.pem -no_nonce"
                         " -CAfile chain.pem -resp_text");
    if (rc != 0 || !strstr (out, "Response verify OK") || !strstr (out, expected)
    ||  strstr (out, "WARNING") || strstr (out, "rror"))
        fprintf (stderr, "openssl said:\n%s\n", out);
    assert (rc == 0);
    assert (strstr (out, "Response verify OK"));
    assert (strstr (out, expected));
    assert (!strstr (out, "WARNING") && !strstr (out, "rror"));
    assert (!nonce == !strstr (out, "OCSP Nonce"));
    free (request);
    free (response);
}

static void
s_test_vectors (umb_ocsp_t *ocsp, bool verbose)
{
    const char *base = UMB_VECTORS_DIR;
    if (!base)
        base = getenv ("VECTORS_DIR");
    if (!base)
        base = "/work/shared/vectors";
    char path [512];
    size_t size = 0;
    test_verdict_t verdict;
#define VECTOR(name) (snprintf (path, sizeof (path), "%s/ocsp/golang-x-crypto/%s", base, (name)), path)

    //  A request by another implementation is read and answered "unknown",
    //  under exactly the CertID it asked about
    uint8_t *request = s_test_read_file (VECTOR ("ocspRequest.der"), &size);
    char serial [UMB_OCSP_SERIAL_SIZE], hash [64];
    assert (umb_ocsp_request_describe (request, size, serial, sizeof (serial), hash, sizeof (hash)) == 1);
    assert (strcmp (serial, "17f77deb3bcbb235d44ccc7dba62e72") == 0);
    assert (strcmp (hash, "sha1") == 0);
    const unsigned char *cursor = request;
    OCSP_REQUEST *parsed = d2i_OCSP_REQUEST (NULL, &cursor, (long) size);
    assert (parsed);
    size_t response_size = 0;
    uint8_t *response = umb_ocsp_respond (ocsp, request, size, &response_size);
    OCSP_CERTID *asked = OCSP_onereq_get0_id (OCSP_request_onereq_get0 (parsed, 0));
    assert (s_test_status_of (response, response_size, asked) == V_OCSP_CERTSTATUS_UNKNOWN);
    OCSP_REQUEST_free (parsed);
    free (response);
    free (request);

    X509 *issuer_cert = NULL, *responder_cert = NULL;
    uint8_t *data = s_test_read_file (VECTOR ("issuerCert.der"), &size);
    cursor = data;
    assert ((issuer_cert = d2i_X509 (NULL, &cursor, (long) size)));
    free (data);
    data = s_test_read_file (VECTOR ("responderCert.der"), &size);
    cursor = data;
    assert ((responder_cert = d2i_X509 (NULL, &cursor, (long) size)));
    free (data);
    char *gts_pem = (char *) s_test_read_file (VECTOR ("GTSRoot.pem"), &size);
    gts_pem [size] = 0;
    X509 *gts = s_test_x509 (gts_pem);
    X509 *both [2] = { issuer_cert, responder_cert };
    char *roots = s_test_pem (both, 2);

    //  An error response
    data = s_test_read_file (VECTOR ("errorResponse.der"), &size);
    assert (s_test_response_status (data, size) == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    assert (s_test_verify (data, size, issuer_cert, roots, "1", NULL, 0, 0, &verdict) == -1);
    assert (strcmp (verdict.text, "responder error: malformedRequest") == 0);
    free (data);

    //  GTS CA 1C3 signed this one itself; "GTSRoot.pem" holds that CA, not a root
    data = s_test_read_file (VECTOR ("ocspResponse.der"), &size);
    const char *gts_serial = "f374542e3c7a68360a00000001103462";
    assert (s_test_verify (data, size, gts, gts_pem, gts_serial, NULL, 0, 1636329600, &verdict) == 0);
    assert (verdict.status == UMB_OCSP_GOOD);
    assert (s_test_verify (data, size, gts, gts_pem, gts_serial, NULL, 0, 1637366400, &verdict) == -1);
    assert (strcmp (verdict.text, "response expired") == 0);
    assert (s_test_verify (data, size, gts, gts_pem, "1234", NULL, 0, 1636329600, &verdict) == -1);
    assert (strcmp (verdict.text, "no status for this certificate") == 0);
    uint8_t nonce [16] = { 1 };
    assert (s_test_verify (data, size, gts, gts_pem, gts_serial, nonce, sizeof (nonce), 1636329600,
                           &verdict) == -1);
    assert (strstr (verdict.text, "nonce"));
    assert (s_test_verify (data, size, issuer_cert, roots, gts_serial, NULL, 0, 1636329600, &verdict) == -1);
    assert (strstr (verdict.text, "signature does not verify"));
    data [size - 10] ^= 1;                          //  in the signature
    assert (s_test_verify (data, size, gts, gts_pem, gts_serial, NULL, 0, 1636329600, &verdict) == -1);
    assert (strstr (verdict.text, "signature does not verify"));
    free (data);

    //  These two differ in the criticality of the nonce extension in their
    //  single response. Their responder is self-signed, not delegated by the
    //  issuer, so neither can pass; the critical one must fail for its
    //  extension, the other only later, for its signer.
    const char *facebook_serial = "17f77deb3bcbb235d44ccc7dba62e72";
    data = s_test_read_file (VECTOR ("ocspResponseWithExtension.der"), &size);
    assert (s_test_verify (data, size, issuer_cert, roots, facebook_serial, NULL, 0, 1278518400,
                           &verdict) == -1);
    if (verbose)
        printf ("\n   ocspResponseWithExtension.der: %s", verdict.text);
    assert (strstr (verdict.text, "signature does not verify"));
    //  ...and when its responder is valid and trusted, it still cannot speak
    //  for a CA that did not delegate to it
    assert (s_test_verify (data, size, issuer_cert, roots, facebook_serial, NULL, 0, 1446940800,
                           &verdict) == -1);
    assert (strcmp (verdict.text, "signature does not verify: responder not authorized by the issuer") == 0);
    //  ...yet it is a sound response: OpenSSL checks its signature with the
    //  responder's key and finds the revocation in it
    OCSP_BASICRESP *basic = s_test_basic (data, size);
    STACK_OF (X509) *signers = sk_X509_new_null ();
    assert (signers && sk_X509_push (signers, responder_cert));
    X509_STORE *store = X509_STORE_new ();
    assert (OCSP_basic_verify (basic, signers, store, OCSP_NOVERIFY) == 1);
    OCSP_CERTID *id = s_test_id (issuer_cert, EVP_sha1 (), facebook_serial);
    int status = -1, reason = -1;
    ASN1_GENERALIZEDTIME *revoked = NULL, *this_update = NULL, *next_update = NULL;
    assert (OCSP_resp_find_status (basic, id, &status, &reason, &revoked, &this_update, &next_update) == 1);
    int64_t revoked_s = 0;
    assert (status == V_OCSP_CERTSTATUS_REVOKED && reason == OCSP_REVOKED_STATUS_KEYCOMPROMISE);
    assert (s_unix_time (revoked, &revoked_s) && revoked_s == 1278514865);
    OCSP_CERTID_free (id);
    X509_STORE_free (store);
    sk_X509_free (signers);
    OCSP_BASICRESP_free (basic);
    free (data);

    data = s_test_read_file (VECTOR ("ocspResponseWithCriticalExtension.der"), &size);
    assert (s_test_response_status (data, size) == OCSP_RESPONSE_STATUS_SUCCESSFUL);
    assert (s_test_verify (data, size, issuer_cert, roots, facebook_serial, NULL, 0, 1278518400,
                           &verdict) == -1);
    assert (strcmp (verdict.text, "unknown critical extension") == 0);
    free (data);
#undef VECTOR

    free (roots);
    free (gts_pem);
    X509_free (gts);
    X509_free (issuer_cert);
    X509_free (responder_cert);
}

//  Several issuing CAs (umb_ca_rotate): each CertID is answered by its own
//  issuer's delegated signer; a serial asked of another issuer is unknown;
//  one response answers for one issuer only.
static void
s_test_rotated (const char *dir)
{
    char path [512];
    snprintf (path, sizeof (path), "%s/rotated", dir);
    umb_ca_t *ca = umb_ca_load_or_create (path, UMB_CA_KEY_EC_P256, "http://127.0.0.1:1/ocsp",
                                          "http://127.0.0.1:1/crl", NULL);
    assert (ca);
    char reason_text [256];
    umb_ca_issued_t old_leaf, new_leaf;
    umb_ca_request_t order = {
        .common_name = "old.umbra.test", .key_type = UMB_CA_KEY_EC_P256,
        .profile = UMB_CA_PROFILE_SERVER, .ttl_s = 3600
    };
    assert (umb_ca_issue (ca, &order, &old_leaf, reason_text, sizeof (reason_text)) == 0);
    char id [41];
    assert (umb_ca_rotate (ca, id) == 0);
    order.common_name = "new.umbra.test";
    assert (umb_ca_issue (ca, &order, &new_leaf, reason_text, sizeof (reason_text)) == 0);
    umb_ca_issuer_t first, second;
    umb_ca_issuer (ca, 0, &first);
    umb_ca_issuer (ca, 1, &second);
    assert (strcmp (old_leaf.issuer, first.id) == 0 && strcmp (new_leaf.issuer, second.id) == 0);
    test_table_t table = { .count = 2 };
    pthread_mutex_init (&table.mutex, NULL);
    snprintf (table.rows [0].serial, sizeof (table.rows [0].serial), "%s", old_leaf.serial);
    snprintf (table.rows [0].issuer, sizeof (table.rows [0].issuer), "%s", first.id);
    snprintf (table.rows [1].serial, sizeof (table.rows [1].serial), "%s", new_leaf.serial);
    snprintf (table.rows [1].issuer, sizeof (table.rows [1].issuer), "%s", second.id);
    table.rows [0].status = table.rows [1].status = UMB_OCSP_GOOD;
    umb_ocsp_t *ocsp = umb_ocsp_new (ca, s_test_lookup, &table, 3600);
    assert (ocsp);
    const char *roots = umb_ca_root_pem (ca);
    int64_t now = (int64_t) time (NULL);
    test_verdict_t verdict;
    X509 *old_cert = s_test_x509 (old_leaf.certificate_pem);
    X509 *new_cert = s_test_x509 (new_leaf.certificate_pem);

    //  Each asked of its own issuer: good, signed for that issuer
    size_t size = 0, response_size = 0;
    uint8_t *request = s_test_request (first.cert, old_cert, EVP_sha1 (), NULL, 0, &size);
    uint8_t *response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (s_test_verify (response, response_size, first.cert, roots, old_leaf.serial, NULL, 0,
                           now, &verdict) == 0 && verdict.status == UMB_OCSP_GOOD);
    assert (s_test_verify (response, response_size, second.cert, roots, old_leaf.serial, NULL, 0,
                           now, &verdict) == -1);
    free (request);
    free (response);
    request = s_test_request (second.cert, new_cert, EVP_sha256 (), NULL, 0, &size);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (s_test_verify (response, response_size, second.cert, roots, new_leaf.serial, NULL, 0,
                           now, &verdict) == 0 && verdict.status == UMB_OCSP_GOOD);
    free (request);
    free (response);

    //  The old serial asked of the new issuer: it never issued it
    OCSP_CERTID *cross = s_test_id (second.cert, EVP_sha1 (), old_leaf.serial);
    OCSP_CERTID *cross_copy = OCSP_CERTID_dup (cross);
    request = s_test_request_ids (&cross, 1, NULL, 0, &size);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (s_test_status_of (response, response_size, cross_copy) == V_OCSP_CERTSTATUS_UNKNOWN);
    free (request);
    free (response);

    //  Both issuers in one request: the first CertID's issuer signs and
    //  answers; the other's CertID is left out, so that the response verifies
    OCSP_CERTID *ids [2] = { s_test_id (first.cert, EVP_sha1 (), old_leaf.serial),
                             s_test_id (second.cert, EVP_sha1 (), new_leaf.serial) };
    OCSP_CERTID *copies [2] = { OCSP_CERTID_dup (ids [0]), OCSP_CERTID_dup (ids [1]) };
    request = s_test_request_ids (ids, 2, NULL, 0, &size);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (s_test_status_of (response, response_size, copies [0]) == V_OCSP_CERTSTATUS_GOOD);
    assert (s_test_status_of (response, response_size, copies [1]) == -1);
    assert (s_test_verify (response, response_size, first.cert, roots, old_leaf.serial, NULL, 0,
                           now, &verdict) == 0 && verdict.status == UMB_OCSP_GOOD);
    free (request);
    free (response);

    //  A third issuing CA made while the responder runs: unknown to it until
    //  added, then answered with its own signer; adding twice changes nothing
    char third_id [41];
    assert (umb_ca_rotate (ca, third_id) == 0);
    order.common_name = "third.umbra.test";
    umb_ca_issued_t third_leaf;
    assert (umb_ca_issue (ca, &order, &third_leaf, reason_text, sizeof (reason_text)) == 0);
    umb_ca_issuer_t third;
    umb_ca_issuer (ca, 2, &third);
    assert (strcmp (third.id, third_id) == 0 && strcmp (third_leaf.issuer, third_id) == 0);
    pthread_mutex_lock (&table.mutex);
    snprintf (table.rows [2].serial, sizeof (table.rows [2].serial), "%s", third_leaf.serial);
    snprintf (table.rows [2].issuer, sizeof (table.rows [2].issuer), "%s", third_id);
    table.rows [2].status = UMB_OCSP_GOOD;
    table.count = 3;
    pthread_mutex_unlock (&table.mutex);
    X509 *third_cert = s_test_x509 (third_leaf.certificate_pem);
    OCSP_CERTID *third_cid = OCSP_cert_to_id (EVP_sha1 (), third_cert, third.cert);
    OCSP_CERTID *third_copy = OCSP_CERTID_dup (third_cid);
    request = s_test_request_ids (&third_cid, 1, NULL, 0, &size);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (s_test_status_of (response, response_size, third_copy) == V_OCSP_CERTSTATUS_UNKNOWN);
    free (response);
    assert (umb_ocsp_issuer_add (ocsp, ca, 2) == 0);
    assert (umb_ocsp_issuer_add (ocsp, ca, 2) == 0);
    assert (umb_ocsp_issuer_add (ocsp, ca, 3) == -1);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (s_test_verify (response, response_size, third.cert, roots, third_leaf.serial, NULL, 0,
                           now, &verdict) == 0 && verdict.status == UMB_OCSP_GOOD);
    free (request);
    free (response);
    OCSP_CERTID_free (third_copy);
    X509_free (third_cert);
    umb_ca_issued_free (&third_leaf);
    OCSP_CERTID_free (cross_copy);
    OCSP_CERTID_free (copies [0]);
    OCSP_CERTID_free (copies [1]);
    X509_free (old_cert);
    X509_free (new_cert);
    umb_ocsp_destroy (&ocsp);
    pthread_mutex_destroy (&table.mutex);
    umb_ca_issued_free (&old_leaf);
    umb_ca_issued_free (&new_leaf);
    umb_ca_destroy (&ca);
    ERR_clear_error ();
}

void
umb_ocsp_test (bool verbose)
{
    if (verbose)
        printf (" * umb_ocsp: ");
    char dir [] = "/tmp/umb_ocsp_test_XXXXXX";
    assert (mkdtemp (dir));
    char path [512];
    snprintf (path, sizeof (path), "%s/ca", dir);
    umb_ca_t *ca = umb_ca_load_or_create (path, UMB_CA_KEY_EC_P256, "http://127.0.0.1:1/ocsp",
                                          "http://127.0.0.1:1/crl", NULL);
    assert (ca);
    snprintf (path, sizeof (path), "%s/other", dir);
    umb_ca_t *other = umb_ca_load_or_create (path, UMB_CA_KEY_ED25519, "http://127.0.0.1:1/ocsp",
                                             "http://127.0.0.1:1/crl", NULL);
    assert (other);
    X509 *issuer = umb_ca_issuing (ca);
    const char *roots = umb_ca_root_pem (ca);
    char reason_text [256];
    umb_ca_issued_t good, revoked, stranger;
    umb_ca_request_t order = {
        .common_name = "good.umbra.test", .key_type = UMB_CA_KEY_EC_P256,
        .profile = UMB_CA_PROFILE_SERVER, .ttl_s = 3600
    };
    assert (umb_ca_issue (ca, &order, &good, reason_text, sizeof (reason_text)) == 0);
    order.common_name = "revoked.umbra.test";
    assert (umb_ca_issue (ca, &order, &revoked, reason_text, sizeof (reason_text)) == 0);
    order.common_name = "stranger.umbra.test";
    assert (umb_ca_issue (other, &order, &stranger, reason_text, sizeof (reason_text)) == 0);
    X509 *good_cert = s_test_x509 (good.certificate_pem);
    X509 *revoked_cert = s_test_x509 (revoked.certificate_pem);
    X509 *stranger_cert = s_test_x509 (stranger.certificate_pem);

    test_table_t table = { .count = 0 };
    pthread_mutex_init (&table.mutex, NULL);
    s_test_set (&table, good.serial, UMB_OCSP_GOOD, 0, 0);
    s_test_set (&table, revoked.serial, UMB_OCSP_REVOKED, 1700000000, UMB_CA_REASON_KEY_COMPROMISE);
    umb_ocsp_t *ocsp = umb_ocsp_new (ca, s_test_lookup, &table, 3600);
    assert (ocsp);
    int64_t now = (int64_t) time (NULL);
    uint8_t nonce [32];
    assert (RAND_bytes (nonce, sizeof (nonce)) == 1);
    size_t size = 0, response_size = 0;
    uint8_t *request, *response;
    test_verdict_t verdict;

    //  Good, SHA-1, with a nonce, which comes back
    request = s_test_request (issuer, good_cert, EVP_sha1 (), nonce, sizeof (nonce), &size);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (response && s_test_response_status (response, response_size) == OCSP_RESPONSE_STATUS_SUCCESSFUL);
    assert (s_test_verify (response, response_size, issuer, roots, good.serial, nonce, sizeof (nonce),
                           now, &verdict) == 0);
    assert (verdict.status == UMB_OCSP_GOOD);
    nonce [0] ^= 1;
    assert (s_test_verify (response, response_size, issuer, roots, good.serial, nonce, sizeof (nonce),
                           now, &verdict) == -1);
    assert (strcmp (verdict.text, "nonce missing or different") == 0);
    nonce [0] ^= 1;
    {
        const unsigned char *cursor = request;
        OCSP_REQUEST *parsed = d2i_OCSP_REQUEST (NULL, &cursor, (long) size);
        OCSP_BASICRESP *basic = s_test_basic (response, response_size);
        assert (OCSP_check_nonce (parsed, basic) == 1);
        //  The responder is named by its key, and its certificate comes along
        const ASN1_OCTET_STRING *key_hash = NULL;
        const X509_NAME *name = NULL;
        assert (OCSP_resp_get0_id (basic, &key_hash, &name) == 1 && key_hash && !name);
        assert (OCSP_resp_get0_signer (basic, &(X509 *) { NULL }, NULL) == 1);
        assert (sk_X509_num (OCSP_resp_get0_certs (basic)) == 1);
        assert (X509_cmp (sk_X509_value (OCSP_resp_get0_certs (basic), 0), umb_ca_ocsp_signer (ca)) == 0);
        OCSP_BASICRESP_free (basic);
        OCSP_REQUEST_free (parsed);
    }
    //  The same response checked at the wrong times
    assert (s_test_verify (response, response_size, issuer, roots, good.serial, NULL, 0,
                           now + 3600 + 600, &verdict) == -1);
    assert (strcmp (verdict.text, "response expired") == 0);
    //  ...by the wrong issuer, and with garbage around it
    assert (s_test_verify (response, response_size, umb_ca_issuing (other), umb_ca_root_pem (other),
                           good.serial, NULL, 0, now, &verdict) == -1);
    assert (strstr (verdict.text, "signature does not verify"));
    assert (s_test_verify (response, response_size - 1, issuer, roots, good.serial, NULL, 0, now,
                           &verdict) == -1);
    assert (strcmp (verdict.text, "malformed response") == 0);
    assert (s_test_verify (NULL, 0, issuer, roots, good.serial, NULL, 0, now, &verdict) == -1);
    free (request);
    free (response);

    //  Revoked, SHA-256, no nonce: reason and time come through
    request = s_test_request (issuer, revoked_cert, EVP_sha256 (), NULL, 0, &size);
    char serial [UMB_OCSP_SERIAL_SIZE], hash [32];
    assert (umb_ocsp_request_describe (request, size, serial, sizeof (serial), hash, sizeof (hash)) == 1);
    assert (strcmp (serial, revoked.serial) == 0 && strcmp (hash, "sha256") == 0);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (s_test_verify (response, response_size, issuer, roots, revoked.serial, NULL, 0, now,
                           &verdict) == 0);
    assert (verdict.status == UMB_OCSP_REVOKED);
    assert (verdict.revoked_at == 1700000000);
    assert (verdict.reason == UMB_CA_REASON_KEY_COMPROMISE);
    assert (s_test_verify (response, response_size, issuer, roots, revoked.serial, nonce, sizeof (nonce),
                           now, &verdict) == -1);
    assert (strcmp (verdict.text, "nonce missing or different") == 0);
    free (request);
    free (response);

    //  A serial nobody issued
    OCSP_CERTID *id = s_test_id (issuer, EVP_sha1 (), "123456789abcdef");
    request = s_test_request_ids (&id, 1, NULL, 0, &size);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (s_test_verify (response, response_size, issuer, roots, "123456789abcdef", NULL, 0, now,
                           &verdict) == 0);
    assert (verdict.status == UMB_OCSP_UNKNOWN);
    free (request);
    free (response);

    //  Another issuer's certificate: "unknown", signed by a responder that
    //  cannot speak for that issuer, so its verifier refuses the answer
    request = s_test_request (umb_ca_issuing (other), stranger_cert, EVP_sha1 (), NULL, 0, &size);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    id = OCSP_cert_to_id (EVP_sha1 (), stranger_cert, umb_ca_issuing (other));
    assert (s_test_status_of (response, response_size, id) == V_OCSP_CERTSTATUS_UNKNOWN);
    OCSP_CERTID_free (id);
    assert (s_test_verify (response, response_size, umb_ca_issuing (other), umb_ca_root_pem (other),
                           stranger.serial, NULL, 0, now, &verdict) == -1);
    assert (strstr (verdict.text, "signature does not verify"));
    free (request);
    free (response);

    //  A hash algorithm other than SHA-1 and SHA-256
    request = s_test_request (issuer, good_cert, EVP_sha384 (), NULL, 0, &size);
    assert (umb_ocsp_request_describe (request, size, serial, sizeof (serial), hash, sizeof (hash)) == 1);
    assert (strcmp (serial, good.serial) == 0 && strcmp (hash, "sha384") == 0);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    id = OCSP_cert_to_id (EVP_sha384 (), good_cert, issuer);
    assert (s_test_status_of (response, response_size, id) == V_OCSP_CERTSTATUS_UNKNOWN);
    OCSP_CERTID_free (id);
    free (request);
    free (response);

    //  Two CertIDs, two answers; the hash algorithm of each is kept
    OCSP_CERTID *ids [2] = {
        OCSP_cert_to_id (EVP_sha256 (), good_cert, issuer),
        OCSP_cert_to_id (EVP_sha1 (), revoked_cert, issuer)
    };
    request = s_test_request_ids (ids, 2, nonce, sizeof (nonce), &size);
    assert (umb_ocsp_request_describe (request, size, serial, sizeof (serial), hash, sizeof (hash)) == 2);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (s_test_verify (response, response_size, issuer, roots, good.serial, nonce, sizeof (nonce),
                           now, &verdict) == 0);
    assert (verdict.status == UMB_OCSP_GOOD);
    assert (s_test_verify (response, response_size, issuer, roots, revoked.serial, nonce, sizeof (nonce),
                           now, &verdict) == 0);
    assert (verdict.status == UMB_OCSP_REVOKED);
    id = OCSP_cert_to_id (EVP_sha1 (), good_cert, issuer);
    assert (s_test_status_of (response, response_size, id) == -1);
    OCSP_CERTID_free (id);
    free (request);
    free (response);

    //  Requests we refuse to read
    const uint8_t garbage [] = "hello, responder";
    request = s_test_request (issuer, good_cert, EVP_sha1 (), NULL, 0, &size);
    uint8_t *longer = malloc (size + 1);
    assert (longer);
    memcpy (longer, request, size);
    longer [size] = 0;
    OCSP_CERTID *many [UMB_OCSP_MAX_CERTIDS + 1];
    for (size_t i = 0; i < UMB_OCSP_MAX_CERTIDS + 1; i++)
        many [i] = OCSP_cert_to_id (EVP_sha1 (), good_cert, issuer);
    size_t too_many_size = 0, most_size = 0, none_size = 0, huge_size = 0;
    uint8_t *too_many = s_test_request_ids (many, UMB_OCSP_MAX_CERTIDS + 1, NULL, 0, &too_many_size);
    for (size_t i = 0; i < UMB_OCSP_MAX_CERTIDS; i++)
        many [i] = OCSP_cert_to_id (EVP_sha1 (), good_cert, issuer);
    uint8_t *most = s_test_request_ids (many, UMB_OCSP_MAX_CERTIDS, NULL, 0, &most_size);
    uint8_t *none = s_test_request_ids (NULL, 0, NULL, 0, &none_size);
    uint8_t *big_nonce = calloc (1, UMB_OCSP_MAX_REQUEST);
    assert (big_nonce);
    id = OCSP_cert_to_id (EVP_sha1 (), good_cert, issuer);
    uint8_t *huge = s_test_request_ids (&id, 1, big_nonce, UMB_OCSP_MAX_REQUEST, &huge_size);
    struct { const uint8_t *der; size_t size; } refused [] = {
        { garbage, sizeof (garbage) }, { request, size - 1 }, { request, 0 }, { NULL, 0 },
        { longer, size + 1 }, { too_many, too_many_size }, { none, none_size }, { huge, huge_size }
    };
    uint64_t malformed_before = 0;
    umb_ocsp_stats (ocsp, NULL, NULL, NULL, &malformed_before, NULL);
    for (size_t i = 0; i < sizeof (refused) / sizeof (refused [0]); i++) {
        response = umb_ocsp_respond (ocsp, refused [i].der, refused [i].size, &response_size);
        assert (response);
        assert (s_test_response_status (response, response_size) == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
        assert (s_test_verify (response, response_size, issuer, roots, good.serial, NULL, 0, now,
                               &verdict) == -1);
        assert (strcmp (verdict.text, "responder error: malformedRequest") == 0);
        assert (umb_ocsp_request_describe (refused [i].der, refused [i].size, serial, sizeof (serial),
                                           hash, sizeof (hash)) == -1);
        free (response);
    }
    uint64_t malformed = 0;
    umb_ocsp_stats (ocsp, NULL, NULL, NULL, &malformed, NULL);
    assert (malformed == malformed_before + sizeof (refused) / sizeof (refused [0]));
    response = umb_ocsp_respond (ocsp, most, most_size, &response_size);
    assert (s_test_response_status (response, response_size) == OCSP_RESPONSE_STATUS_SUCCESSFUL);
    OCSP_BASICRESP *basic = s_test_basic (response, response_size);
    assert (OCSP_resp_count (basic) == UMB_OCSP_MAX_CERTIDS);
    OCSP_BASICRESP_free (basic);
    free (response);
    free (longer);
    free (too_many);
    free (most);
    free (none);
    free (huge);
    free (big_nonce);

    //  Mutations of a valid request never crash, never leak, always answer
    size_t nonced_size = 0;
    uint8_t *nonced = s_test_request (issuer, good_cert, EVP_sha1 (), nonce, 16, &nonced_size);
    uint8_t mutant [1024];
    assert (nonced_size + 16 < sizeof (mutant));
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    size_t answered = 0;
    for (int round = 0; round < 10000; round++) {
        size_t mutant_size = round % 2 ? nonced_size : size;
        memcpy (mutant, round % 2 ? nonced : request, mutant_size);
        int edits = 1 + (int) (s_test_random (&seed) % 3);
        for (int edit = 0; edit < edits && mutant_size > 0; edit++) {
            size_t at = (size_t) (s_test_random (&seed) % mutant_size);
            uint64_t value = s_test_random (&seed);
            switch (value % 5) {
                case 0: mutant [at] = (uint8_t) (value >> 8); break;
                case 1: mutant [at] ^= (uint8_t) (1 << ((value >> 8) % 8)); break;
                case 2: mutant_size = at; break;
                case 3:
                    memmove (mutant + at + 1, mutant + at, mutant_size - at);
                    mutant [at] = (uint8_t) (value >> 8);
                    mutant_size++;
                    break;
                default:
                    memmove (mutant + at, mutant + at + 1, mutant_size - at - 1);
                    mutant_size--;
            }
        }
        response = umb_ocsp_respond (ocsp, mutant, mutant_size, &response_size);
        assert (response);
        int status = s_test_response_status (response, response_size);
        assert (status == OCSP_RESPONSE_STATUS_SUCCESSFUL
             || status == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
        answered += status == OCSP_RESPONSE_STATUS_SUCCESSFUL;
        free (response);
    }
    if (verbose)
        printf ("\n   10000 mutations: %zu answered, the rest malformed", answered);
    free (nonced);

    //  Cache: the same question gets the same bytes until the serial changes
    uint64_t hits_before = 0, hits = 0;
    umb_ocsp_stats (ocsp, NULL, NULL, NULL, NULL, &hits_before);
    size_t first_size = 0;
    uint8_t *first = umb_ocsp_respond (ocsp, request, size, &first_size);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (response_size == first_size && memcmp (response, first, first_size) == 0);
    umb_ocsp_stats (ocsp, NULL, NULL, NULL, NULL, &hits);
    assert (hits >= hits_before + 1);
    free (response);
    hits_before = hits;
    //  ...also asked another way: a signed request for the same CertID
    {
        const unsigned char *cursor = request;
        OCSP_REQUEST *parsed = d2i_OCSP_REQUEST (NULL, &cursor, (long) size);
        EVP_PKEY *key = s_test_key_pem (good.private_key_pem);
        assert (OCSP_request_sign (parsed, good_cert, key, EVP_sha256 (), NULL, 0) == 1);
        uint8_t *signed_der = NULL;
        int signed_size = i2d_OCSP_REQUEST (parsed, &signed_der);
        assert (signed_size > 0 && (size_t) signed_size != size);
        response = umb_ocsp_respond (ocsp, signed_der, (size_t) signed_size, &response_size);
        assert (response_size == first_size && memcmp (response, first, first_size) == 0);
        free (response);
        OPENSSL_free (signed_der);
        EVP_PKEY_free (key);
        OCSP_REQUEST_free (parsed);
    }
    umb_ocsp_stats (ocsp, NULL, NULL, NULL, NULL, &hits);
    assert (hits == hits_before + 1);
    //  ...never with a nonce
    nonced = s_test_request (issuer, good_cert, EVP_sha1 (), nonce, 16, &nonced_size);
    response = umb_ocsp_respond (ocsp, nonced, nonced_size, &response_size);
    free (response);
    response = umb_ocsp_respond (ocsp, nonced, nonced_size, &response_size);
    free (response);
    umb_ocsp_stats (ocsp, NULL, NULL, NULL, NULL, &hits);
    assert (hits == hits_before + 1);
    free (nonced);
    //  ...and after a revocation, the news
    s_test_set (&table, good.serial, UMB_OCSP_REVOKED, now, UMB_CA_REASON_SUPERSEDED);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (memcmp (response, first, first_size) == 0);        //  not told yet
    free (response);
    char shouted [UMB_OCSP_SERIAL_SIZE + 2] = "00";
    for (size_t i = 0; good.serial [i]; i++)
        shouted [i + 2] = (char) toupper ((unsigned char) good.serial [i]);
    umb_ocsp_invalidate (ocsp, shouted);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    assert (s_test_verify (response, response_size, issuer, roots, good.serial, NULL, 0, now,
                           &verdict) == 0);
    assert (verdict.status == UMB_OCSP_REVOKED && verdict.reason == UMB_CA_REASON_SUPERSEDED);
    free (response);
    free (first);
    //  A revocation landing between lookup and caching: the answer is not kept
    s_test_set (&table, good.serial, UMB_OCSP_GOOD, 0, 0);
    umb_ocsp_invalidate (ocsp, good.serial);
    table.invalidate_in_lookup = ocsp;
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    free (response);
    table.invalidate_in_lookup = NULL;
    umb_ocsp_stats (ocsp, NULL, NULL, NULL, NULL, &hits_before);
    response = umb_ocsp_respond (ocsp, request, size, &response_size);
    free (response);
    umb_ocsp_stats (ocsp, NULL, NULL, NULL, NULL, &hits);
    assert (hits == hits_before);
    //  Responses valid for a second are stale at once
    umb_ocsp_t *brief = umb_ocsp_new (ca, s_test_lookup, &table, 1);
    assert (brief);
    free (umb_ocsp_respond (brief, request, size, &response_size));
    free (umb_ocsp_respond (brief, request, size, &response_size));
    umb_ocsp_stats (brief, NULL, NULL, NULL, NULL, &hits);
    assert (hits == 0);
    umb_ocsp_destroy (&brief);

    //  Threads answering at once while the serial is revoked and restored
    nonced = s_test_request (issuer, good_cert, EVP_sha256 (), nonce, 16, &nonced_size);
    test_worker_t workers [4];
    pthread_t threads [4];
    for (int i = 0; i < 4; i++) {
        workers [i] = (test_worker_t) {
            .ocsp = ocsp, .issuer = issuer, .roots = roots, .serial = good.serial,
            .request = i % 2 ? nonced : request, .request_size = i % 2 ? nonced_size : size
        };
        assert (pthread_create (&threads [i], NULL, s_test_worker, &workers [i]) == 0);
    }
    for (int i = 0; i < 50; i++) {
        s_test_set (&table, good.serial, i % 2 ? UMB_OCSP_GOOD : UMB_OCSP_REVOKED, now, 1);
        umb_ocsp_invalidate (ocsp, good.serial);
    }
    for (int i = 0; i < 4; i++) {
        assert (pthread_join (threads [i], NULL) == 0);
        assert (workers [i].answered == 100);
    }
    free (nonced);
    s_test_set (&table, good.serial, UMB_OCSP_GOOD, 0, 0);
    umb_ocsp_invalidate (ocsp, good.serial);
    free (request);

    //  Who may sign: a delegated responder of another CA, a leaf of our own
    //  issuing CA, both trusted by the roots, may not; the issuer itself may
    char *both_roots = NULL;
    assert (asprintf (&both_roots, "%s%s", roots, umb_ca_root_pem (other)) > 0);
    id = s_test_id (issuer, EVP_sha1 (), revoked.serial);
    response = s_test_forge (umb_ca_ocsp_signer (other), umb_ca_ocsp_key (other), id,
                             V_OCSP_CERTSTATUS_GOOD, 0, &response_size);
    assert (s_test_verify (response, response_size, issuer, both_roots, revoked.serial, NULL, 0, now,
                           &verdict) == -1);
    assert (strstr (verdict.text, "signature does not verify"));
    free (response);
    EVP_PKEY *key = s_test_key_pem (good.private_key_pem);
    response = s_test_forge (good_cert, key, id, V_OCSP_CERTSTATUS_GOOD, 0, &response_size);
    assert (s_test_verify (response, response_size, issuer, both_roots, revoked.serial, NULL, 0, now,
                           &verdict) == -1);
    assert (strstr (verdict.text, "signature does not verify"));
    if (verbose)
        printf ("\n   a leaf signing: %s", verdict.text);
    free (response);
    EVP_PKEY_free (key);
    snprintf (path, sizeof (path), "%s/ca/issuing.key", dir);
    key = s_test_key_file (path);
    response = s_test_forge (issuer, key, id, V_OCSP_CERTSTATUS_GOOD, 0, &response_size);
    assert (s_test_verify (response, response_size, issuer, roots, revoked.serial, NULL, 0, now,
                           &verdict) == 0);
    assert (verdict.status == UMB_OCSP_GOOD);
    //  ...but the issuer must chain to the roots
    assert (s_test_verify (response, response_size, issuer, umb_ca_root_pem (other), revoked.serial,
                           NULL, 0, now, &verdict) == -1);
    assert (strstr (verdict.text, "signature does not verify"));
    free (response);
    //  ...and its thisUpdate/nextUpdate are checked against now
    response = s_test_forge (issuer, key, id, V_OCSP_CERTSTATUS_GOOD, 1200, &response_size);
    assert (s_test_verify (response, response_size, issuer, roots, revoked.serial, NULL, 0, now,
                           &verdict) == -1);
    assert (strcmp (verdict.text, "response not yet valid") == 0);
    free (response);
    response = s_test_forge (issuer, key, id, V_OCSP_CERTSTATUS_GOOD, -4000, &response_size);
    assert (s_test_verify (response, response_size, issuer, roots, revoked.serial, NULL, 0, now,
                           &verdict) == -1);
    assert (strcmp (verdict.text, "response expired") == 0);
    free (response);
    EVP_PKEY_free (key);
    OCSP_CERTID_free (id);
    free (both_roots);

    //  An Ed25519 responder (the other CA)
    umb_ocsp_t *edwards = umb_ocsp_new (other, s_test_lookup, &table, 600);
    assert (edwards);
    s_test_set (&table, stranger.serial, UMB_OCSP_GOOD, 0, 0);
    request = s_test_request (umb_ca_issuing (other), stranger_cert, EVP_sha256 (), nonce, 20, &size);
    response = umb_ocsp_respond (edwards, request, size, &response_size);
    assert (s_test_verify (response, response_size, umb_ca_issuing (other), umb_ca_root_pem (other),
                           stranger.serial, nonce, 20, now, &verdict) == 0);
    assert (verdict.status == UMB_OCSP_GOOD);
    free (request);
    free (response);

    //  The openssl tool, as client and verifier
    X509 *issuing_only [1] = { issuer };
    char *issuing_pem = s_test_pem (issuing_only, 1);
    snprintf (path, sizeof (path), "%s/issuing.pem", dir);
    s_test_write_file (path, issuing_pem, strlen (issuing_pem));
    free (issuing_pem);
    snprintf (path, sizeof (path), "%s/chain.pem", dir);
    s_test_write_file (path, umb_ca_chain_pem (ca), strlen (umb_ca_chain_pem (ca)));
    s_test_interop (ocsp, dir, good.certificate_pem, false, "leaf.pem: good");
    s_test_interop (ocsp, dir, good.certificate_pem, true, "leaf.pem: good");
    s_test_interop (ocsp, dir, revoked.certificate_pem, false, "leaf.pem: revoked");
    s_test_interop (ocsp, dir, revoked.certificate_pem, true, "Reason: keyCompromise");
    //  ...which notices a response to another request's nonce
    {
        char out [16384];
        assert (s_test_openssl (dir, out, sizeof (out),
                                "ocsp -issuer issuing.pem -cert leaf.pem -reqout other.der -nonce") == 0);
        assert (s_test_openssl (dir, out, sizeof (out),
                                "ocsp -respin resp.der -reqin other.der -CAfile chain.pem") != 0);
        assert (strstr (out, "Nonce Verify error"));
    }
    issuing_only [0] = umb_ca_issuing (other);
    issuing_pem = s_test_pem (issuing_only, 1);
    snprintf (path, sizeof (path), "%s/issuing.pem", dir);
    s_test_write_file (path, issuing_pem, strlen (issuing_pem));
    free (issuing_pem);
    snprintf (path, sizeof (path), "%s/chain.pem", dir);
    s_test_write_file (path, umb_ca_chain_pem (other), strlen (umb_ca_chain_pem (other)));
    s_test_interop (edwards, dir, stranger.certificate_pem, true, "leaf.pem: good");
    umb_ocsp_destroy (&edwards);

    s_test_vectors (ocsp, verbose);

    uint64_t counted_good = 0, counted_revoked = 0, counted_unknown = 0;
    umb_ocsp_stats (ocsp, &counted_good, &counted_revoked, &counted_unknown, &malformed, &hits);
    assert (counted_good > 0 && counted_revoked > 0 && counted_unknown > 0 && malformed > 0 && hits > 0);
    if (verbose)
        printf ("\n   good %llu, revoked %llu, unknown %llu, malformed %llu, cache hits %llu\n   ",
                (unsigned long long) counted_good, (unsigned long long) counted_revoked,
                (unsigned long long) counted_unknown, (unsigned long long) malformed,
                (unsigned long long) hits);

    umb_ocsp_destroy (&ocsp);
    assert (ocsp == NULL);
    umb_ocsp_destroy (&ocsp);
    pthread_mutex_destroy (&table.mutex);
    s_test_rotated (dir);
    X509_free (good_cert);
    X509_free (revoked_cert);
    X509_free (stranger_cert);
    umb_ca_issued_free (&good);
    umb_ca_issued_free (&revoked);
    umb_ca_issued_free (&stranger);
    umb_ca_destroy (&ca);
    umb_ca_destroy (&other);
    assert (nftw (dir, s_test_remove, 16, FTW_DEPTH | FTW_PHYS) == 0);
    if (verbose)
        printf ("OK\n");
}
