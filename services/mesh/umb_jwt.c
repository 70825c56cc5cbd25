//  umb_jwt - JSON Web Tokens signed with Ed25519 (JWS alg "EdDSA", RFC 7515/7519/8037) and JWKS
#ifndef _GNU_SOURCE
#   define _GNU_SOURCE          //  asprintf, strndup, stpcpy
#endif
//  Programming-error checks and the selftest's checks stay on in release builds
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include "umb_jwt.h"

#define UMB_JWT_TOKEN_MAX    8192           //  longer tokens are refused unread
#define UMB_JWT_KID_BYTES    12             //  of SHA-256 (public key)
#define UMB_JWT_KID_MAX      128            //  longest kid accepted from a JWKS
#define UMB_JWT_B64          sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define UMB_JWT_KID_SIZE     sodium_base64_ENCODED_LEN (UMB_JWT_KID_BYTES, UMB_JWT_B64)
#define UMB_JWT_SIG_B64_SIZE sodium_base64_ENCODED_LEN (crypto_sign_BYTES, UMB_JWT_B64)
#define UMB_JWT_PK_B64_SIZE  sodium_base64_ENCODED_LEN (crypto_sign_PUBLICKEYBYTES, UMB_JWT_B64)
#define UMB_JWT_SEED_PREFIX  "umbra-ed25519-seed-v1 "
#define UMB_JWT_JSON_FLAGS   (JSON_COMPACT | JSON_SORT_KEYS)

struct _umb_jwt_signer_t {
    unsigned char *secret_key;          //  sodium_malloc'd, read-only once built
    unsigned char public_key [crypto_sign_PUBLICKEYBYTES];
    char kid [UMB_JWT_KID_SIZE];
};

typedef struct {
    char *kid;
    unsigned char public_key [crypto_sign_PUBLICKEYBYTES];
} s_key_t;

struct _umb_jwt_keyring_t {
    s_key_t *keys;
    size_t count;
    size_t capacity;
};

//  Key file contents and the decoded seed, kept in guarded, locked memory
typedef struct {
    unsigned char seed [crypto_sign_SEEDBYTES];
    char text [128];
} s_scratch_t;


//  ---------------------------------------------------------------- helpers

static void s_reason (char *reason, size_t reason_size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_reason (char *reason, size_t reason_size, const char *format, ...)
{
    if (!reason || reason_size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (reason, reason_size, format, args);
    va_end (args);
}

static void s_log (umb_log_t *log, umb_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Callers may run without a logger (tests, tools)
static void
s_log (umb_log_t *log, umb_log_level_t level, const char *format, ...)
{
    if (!log)
        return;
    char line [512];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof line, format, args);
    va_end (args);
    umb_log_write (log, level, "%s", line);
}

//  Peer-chosen text quoted in a reason: short, printable ASCII only
static void
s_printable (char *dest, size_t dest_size, const char *text)
{
    assert (dest_size > 0);
    size_t i = 0;
    for (; text [i] && i + 1 < dest_size; i++) {
        unsigned char c = (unsigned char) text [i];
        dest [i] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
    }
    dest [i] = 0;
}

static char *
s_b64_encode (const unsigned char *bin, size_t bin_len)
{
    size_t size = sodium_base64_ENCODED_LEN (bin_len, UMB_JWT_B64);
    char *text = malloc (size);
    if (text)
        sodium_bin2base64 (text, size, bin, bin_len, UMB_JWT_B64);
    return text;
}

//  Strict base64url: no padding, no whitespace, canonical trailing bits,
//  exactly bin_len bytes.
static int __attribute__ ((warn_unused_result))
s_b64_decode_fixed (const char *text, size_t text_len, unsigned char *bin, size_t bin_len)
{
    size_t decoded = 0;
    if (sodium_base642bin (bin, bin_len, text, text_len, NULL, &decoded, NULL, UMB_JWT_B64) != 0
    ||  decoded != bin_len)
        return -1;
    return 0;
}

//  Strict base64url into a fresh buffer; NULL if invalid or out of memory.
static unsigned char *
s_b64_decode (const char *text, size_t text_len, size_t *bin_len_p)
{
    size_t capacity = text_len / 4 * 3 + 3;
    unsigned char *bin = malloc (capacity);
    if (!bin)
        return NULL;
    if (sodium_base642bin (bin, capacity, text, text_len, NULL, bin_len_p, NULL,
                           UMB_JWT_B64) != 0) {
        free (bin);
        return NULL;
    }
    return bin;
}

static void
s_kid (const unsigned char *public_key, char *kid, size_t kid_size)
{
    assert (kid_size >= UMB_JWT_KID_SIZE);
    unsigned char hash [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (hash, public_key, crypto_sign_PUBLICKEYBYTES);
    sodium_bin2base64 (kid, kid_size, hash, UMB_JWT_KID_BYTES, UMB_JWT_B64);
}

//  Raw Ed25519 over the JWS signing input; no header knowledge here so the
//  RFC 8037 known-answer test can use it as is.
static void
s_sign_raw (const unsigned char *secret_key, const char *input, size_t input_len,
            unsigned char *signature)
{
    crypto_sign_detached (signature, NULL, (const unsigned char *) input, input_len, secret_key);
}

static int __attribute__ ((warn_unused_result))
s_verify_raw (const unsigned char *public_key, const char *input, size_t input_len,
              const unsigned char *signature)
{
    return crypto_sign_verify_detached (signature, (const unsigned char *) input, input_len,
                                        public_key) == 0? 0: -1;
}


//  ---------------------------------------------------------------- signer

//  Builds a signer from a seed (borrowed; the caller wipes it).
static umb_jwt_signer_t *
s_signer_from_seed (const unsigned char *seed)
{
    umb_jwt_signer_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    //  sodium_malloc locks the pages (when the rlimit allows) and fences them
    self->secret_key = sodium_malloc (crypto_sign_SECRETKEYBYTES);
    if (!self->secret_key) {
        free (self);
        return NULL;
    }
    if (seed)
        crypto_sign_seed_keypair (self->public_key, self->secret_key, seed);
    else
        crypto_sign_keypair (self->public_key, self->secret_key);
    sodium_mprotect_readonly (self->secret_key);
    s_kid (self->public_key, self->kid, sizeof self->kid);
    return self;
}

//  0 loaded, 1 absent, -1 refused (logged)
static int
s_seed_read (const char *path, umb_log_t *log, s_scratch_t *scratch)
{
    //  O_NONBLOCK: a FIFO planted at path must not hang us before fstat refuses it
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        s_log (log, UMB_LOG_ERROR, "jwt: cannot open signing key %s: %s", path, strerror (errno));
        return -1;
    }
    int rc = -1;
    struct stat st;
    size_t size = 0;
    if (fstat (fd, &st)) {
        s_log (log, UMB_LOG_ERROR, "jwt: cannot stat signing key %s: %s", path, strerror (errno));
        goto done;
    }
    if (!S_ISREG (st.st_mode)) {
        s_log (log, UMB_LOG_ERROR, "jwt: signing key %s is not a regular file; refusing it", path);
        goto done;
    }
    if (st.st_mode & 077) {
        s_log (log, UMB_LOG_ERROR,
               "jwt: signing key %s is accessible by group or others (mode %03o); refusing it"
               " (chmod 600 if it was not exposed, otherwise replace it)",
               path, (unsigned) (st.st_mode & 0777));
        goto done;
    }
    while (size < sizeof scratch->text) {
        ssize_t got = read (fd, scratch->text + size, sizeof scratch->text - size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            s_log (log, UMB_LOG_ERROR, "jwt: cannot read signing key %s: %s", path,
                   strerror (errno));
            goto done;
        }
        if (got == 0)
            break;
        size += (size_t) got;
    }
    size_t prefix_len = strlen (UMB_JWT_SEED_PREFIX);
    size_t b64_len = UMB_JWT_PK_B64_SIZE - 1;     //  a seed is as long as a public key
    if (size == sizeof scratch->text
    ||  size < prefix_len + b64_len
    ||  memcmp (scratch->text, UMB_JWT_SEED_PREFIX, prefix_len) != 0
    ||  !(size == prefix_len + b64_len
      || (size == prefix_len + b64_len + 1 && scratch->text [size - 1] == '\n'))
    ||  s_b64_decode_fixed (scratch->text + prefix_len, b64_len, scratch->seed,
                            sizeof scratch->seed) != 0) {
        s_log (log, UMB_LOG_ERROR, "jwt: signing key %s is malformed (expected one line '%s<seed>');"
               " refusing it", path, UMB_JWT_SEED_PREFIX);
        goto done;
    }
    rc = 0;
done:
    close (fd);
    return rc;
}

static int
s_mkdir_parents (const char *path, umb_log_t *log)
{
    char *dir = strdup (path);
    if (!dir) {
        s_log (log, UMB_LOG_ERROR, "jwt: out of memory creating the directory of %s", path);
        return -1;
    }
    char *slash = strrchr (dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = 0;
        for (char *cursor = dir + 1; rc == 0; cursor++) {
            if (*cursor != '/' && *cursor != 0)
                continue;
            char saved = *cursor;
            *cursor = 0;
            if (mkdir (dir, 0700) && errno != EEXIST) {
                s_log (log, UMB_LOG_ERROR, "jwt: cannot create directory %s: %s", dir,
                       strerror (errno));
                rc = -1;
            }
            *cursor = saved;
            if (saved == 0)
                break;
        }
    }
    free (dir);
    return rc;
}

static int
s_write_all (int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t done = write (fd, data, size);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0)
            return -1;
        data += done;
        size -= (size_t) done;
    }
    return 0;
}

//  0 created, 1 someone else created it first, -1 error (logged)
static int
s_seed_create (const char *path, umb_log_t *log, s_scratch_t *scratch)
{
    if (s_mkdir_parents (path, log))
        return -1;
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 1;
        s_log (log, UMB_LOG_ERROR, "jwt: cannot create signing key %s: %s", path, strerror (errno));
        return -1;
    }
    randombytes_buf (scratch->seed, sizeof scratch->seed);
    size_t prefix_len = strlen (UMB_JWT_SEED_PREFIX);
    memcpy (scratch->text, UMB_JWT_SEED_PREFIX, prefix_len);
    sodium_bin2base64 (scratch->text + prefix_len, sizeof scratch->text - prefix_len,
                       scratch->seed, sizeof scratch->seed, UMB_JWT_B64);
    size_t size = strlen (scratch->text);
    assert (size + 1 < sizeof scratch->text);
    scratch->text [size++] = '\n';

    int rc = 0;
    if (s_write_all (fd, scratch->text, size) || fsync (fd))
        rc = -1;
    int saved_errno = errno;
    if (close (fd) && rc == 0) {
        saved_errno = errno;
        rc = -1;
    }
    if (rc) {
        //  A half-written key would be refused on every later start
        unlink (path);
        s_log (log, UMB_LOG_ERROR, "jwt: cannot write signing key %s: %s", path,
               strerror (saved_errno));
    }
    return rc;
}

umb_jwt_signer_t *
umb_jwt_signer_load_or_create (const char *path, umb_log_t *log)
{
    assert (path);
    if (sodium_init () < 0) {
        s_log (log, UMB_LOG_ERROR, "jwt: libsodium failed to initialise");
        return NULL;
    }
    s_scratch_t *scratch = sodium_malloc (sizeof *scratch);
    if (!scratch) {
        s_log (log, UMB_LOG_ERROR, "jwt: out of memory loading signing key %s", path);
        return NULL;
    }
    bool created = false;
    int rc = s_seed_read (path, log, scratch);
    if (rc == 1) {
        rc = s_seed_create (path, log, scratch);
        if (rc == 0)
            created = true;
        else
        if (rc == 1) {
            //  Lost a creation race to another process: use its key
            rc = s_seed_read (path, log, scratch);
            if (rc == 1) {
                s_log (log, UMB_LOG_ERROR, "jwt: signing key %s vanished while loading", path);
                rc = -1;
            }
        }
    }
    umb_jwt_signer_t *self = NULL;
    if (rc == 0) {
        self = s_signer_from_seed (scratch->seed);
        if (!self)
            s_log (log, UMB_LOG_ERROR, "jwt: out of memory loading signing key %s", path);
    }
    sodium_free (scratch);          //  wipes seed and file text
    if (self)
        s_log (log, UMB_LOG_INFO, "jwt: %s signing key %s (kid %s)",
               created? "created": "loaded", path, self->kid);
    return self;
}

umb_jwt_signer_t *
umb_jwt_signer_new_ephemeral (void)
{
    if (sodium_init () < 0)
        return NULL;
    return s_signer_from_seed (NULL);
}

void
umb_jwt_signer_destroy (umb_jwt_signer_t **self_p)
{
    assert (self_p);
    umb_jwt_signer_t *self = *self_p;
    if (!self)
        return;
    sodium_free (self->secret_key);             //  wipes it
    sodium_memzero (self, sizeof *self);
    free (self);
    *self_p = NULL;
}

const char *
umb_jwt_signer_kid (umb_jwt_signer_t *self)
{
    assert (self);
    return self->kid;
}

char *
umb_jwt_sign (umb_jwt_signer_t *self, json_t *claims)
{
    assert (self);
    assert (json_is_object (claims));
    char *token = NULL;
    char *header_json = NULL, *header_b64 = NULL;
    char *payload_json = NULL, *payload_b64 = NULL;
    json_t *header = json_pack ("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", "JWT", "kid", self->kid);
    if (!header)
        goto done;
    header_json = json_dumps (header, UMB_JWT_JSON_FLAGS);
    payload_json = json_dumps (claims, UMB_JWT_JSON_FLAGS);
    if (!header_json || !payload_json)
        goto done;
    header_b64 = s_b64_encode ((const unsigned char *) header_json, strlen (header_json));
    payload_b64 = s_b64_encode ((const unsigned char *) payload_json, strlen (payload_json));
    if (!header_b64 || !payload_b64)
        goto done;

    size_t header_len = strlen (header_b64);
    size_t payload_len = strlen (payload_b64);
    size_t input_len = header_len + 1 + payload_len;
    //  Never issue a token our own verifiers would refuse as too large
    if (input_len + 1 + UMB_JWT_SIG_B64_SIZE - 1 > UMB_JWT_TOKEN_MAX)
        goto done;
    token = malloc (input_len + 1 + UMB_JWT_SIG_B64_SIZE);
    if (!token)
        goto done;
    memcpy (token, header_b64, header_len);
    token [header_len] = '.';
    memcpy (token + header_len + 1, payload_b64, payload_len);
    unsigned char signature [crypto_sign_BYTES];
    s_sign_raw (self->secret_key, token, input_len, signature);
    token [input_len] = '.';
    sodium_bin2base64 (token + input_len + 1, UMB_JWT_SIG_B64_SIZE, signature, sizeof signature,
                       UMB_JWT_B64);
done:
    json_decref (header);
    free (header_json);
    free (header_b64);
    free (payload_json);
    free (payload_b64);
    return token;
}

json_t *
umb_jwt_signer_jwks (umb_jwt_signer_t *self)
{
    assert (self);
    char x [UMB_JWT_PK_B64_SIZE];
    sodium_bin2base64 (x, sizeof x, self->public_key, sizeof self->public_key, UMB_JWT_B64);
    return json_pack ("{s:[{s:s, s:s, s:s, s:s, s:s, s:s}]}", "keys",
                      "kty", "OKP", "crv", "Ed25519", "x", x, "kid", self->kid,
                      "alg", "EdDSA", "use", "sig");
}


//  ---------------------------------------------------------------- keyring

umb_jwt_keyring_t *
umb_jwt_keyring_new (void)
{
    if (sodium_init () < 0)
        return NULL;
    return calloc (1, sizeof (umb_jwt_keyring_t));
}

void
umb_jwt_keyring_destroy (umb_jwt_keyring_t **self_p)
{
    assert (self_p);
    umb_jwt_keyring_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free (self->keys [i].kid);
    free (self->keys);
    free (self);
    *self_p = NULL;
}

static s_key_t *
s_keyring_find (umb_jwt_keyring_t *self, const char *kid)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->keys [i].kid, kid) == 0)
            return &self->keys [i];
    return NULL;
}

//  Adds or, for a known kid, replaces (key rotation). 0 or -1 out of memory.
static int
s_keyring_put (umb_jwt_keyring_t *self, const char *kid, const unsigned char *public_key)
{
    s_key_t *key = s_keyring_find (self, kid);
    if (!key) {
        if (self->count == self->capacity) {
            size_t capacity = self->capacity? self->capacity * 2: 4;
            s_key_t *keys = realloc (self->keys, capacity * sizeof *keys);
            if (!keys)
                return -1;
            self->keys = keys;
            self->capacity = capacity;
        }
        char *copy = strdup (kid);
        if (!copy)
            return -1;
        key = &self->keys [self->count++];
        key->kid = copy;
    }
    memcpy (key->public_key, public_key, sizeof key->public_key);
    return 0;
}

int
umb_jwt_keyring_add_signer (umb_jwt_keyring_t *self, umb_jwt_signer_t *signer)
{
    assert (self);
    assert (signer);
    return s_keyring_put (self, signer->kid, signer->public_key);
}

//  1 usable Ed25519 key (public_key filled), 0 not ours to use, -1 malformed.
static int
s_jwk_parse (json_t *jwk, size_t index, unsigned char *public_key, const char **kid_p,
             char *reason, size_t reason_size)
{
    if (!json_is_object (jwk)) {
        s_reason (reason, reason_size, "malformed JWKS: key %zu is not an object", index);
        return -1;
    }
    json_t *kty = json_object_get (jwk, "kty");
    if (!json_is_string (kty)) {
        s_reason (reason, reason_size, "malformed JWKS: key %zu has no \"kty\"", index);
        return -1;
    }
    json_t *crv = json_object_get (jwk, "crv");
    if (strcmp (json_string_value (kty), "OKP") != 0
    ||  !json_is_string (crv) || strcmp (json_string_value (crv), "Ed25519") != 0)
        return 0;
    //  Keys published for another purpose or algorithm are not for token checks
    json_t *use = json_object_get (jwk, "use");
    json_t *alg = json_object_get (jwk, "alg");
    if ((use && !(json_is_string (use) && strcmp (json_string_value (use), "sig") == 0))
    ||  (alg && !(json_is_string (alg) && strcmp (json_string_value (alg), "EdDSA") == 0)))
        return 0;

    json_t *kid = json_object_get (jwk, "kid");
    if (!json_is_string (kid) || json_string_length (kid) == 0
    ||  json_string_length (kid) > UMB_JWT_KID_MAX) {
        s_reason (reason, reason_size, "malformed JWKS: Ed25519 key %zu has no usable \"kid\"",
                  index);
        return -1;
    }
    json_t *x = json_object_get (jwk, "x");
    if (!json_is_string (x)
    ||  s_b64_decode_fixed (json_string_value (x), json_string_length (x), public_key,
                            crypto_sign_PUBLICKEYBYTES) != 0) {
        s_reason (reason, reason_size,
                  "malformed JWKS: Ed25519 key %zu: \"x\" is not 32 bytes of base64url", index);
        return -1;
    }
    if (!crypto_core_ed25519_is_valid_point (public_key)) {
        s_reason (reason, reason_size,
                  "malformed JWKS: Ed25519 key %zu: \"x\" is not a valid public key", index);
        return -1;
    }
    *kid_p = json_string_value (kid);
    return 1;
}

int
umb_jwt_keyring_add_jwks (umb_jwt_keyring_t *self, json_t *jwks, char *reason, size_t reason_size)
{
    assert (self);
    if (reason && reason_size)
        reason [0] = 0;
    json_t *keys = json_is_object (jwks)? json_object_get (jwks, "keys"): NULL;
    if (!json_is_array (keys)) {
        s_reason (reason, reason_size, "malformed JWKS: expected an object with a \"keys\" array");
        return -1;
    }
    //  Check every key first, so a bad set changes nothing
    size_t index;
    json_t *jwk;
    unsigned char public_key [crypto_sign_PUBLICKEYBYTES];
    const char *kid;
    json_array_foreach (keys, index, jwk)
        if (s_jwk_parse (jwk, index, public_key, &kid, reason, reason_size) < 0)
            return -1;
    int added = 0;
    json_array_foreach (keys, index, jwk) {
        if (s_jwk_parse (jwk, index, public_key, &kid, NULL, 0) != 1)
            continue;
        if (s_keyring_put (self, kid, public_key)) {
            s_reason (reason, reason_size, "out of memory");
            return -1;
        }
        added++;
    }
    return added;
}


//  ---------------------------------------------------------------- verify

static int64_t
s_add_saturated (int64_t a, int64_t b)
{
    int64_t sum;
    if (__builtin_add_overflow (a, b, &sum))
        return b > 0? INT64_MAX: INT64_MIN;
    return sum;
}

//  Checks the validated claims: 0 or -1 with reason
static int
s_claims_check (json_t *claims, const char *issuer, int64_t now, int64_t leeway_s,
                char *reason, size_t reason_size)
{
    json_t *exp = json_object_get (claims, "exp");
    json_t *nbf = json_object_get (claims, "nbf");
    json_t *iat = json_object_get (claims, "iat");
    if (!exp) {
        s_reason (reason, reason_size, "token has no expiry");
        return -1;
    }
    if (!json_is_integer (exp) || (nbf && !json_is_integer (nbf))
    ||  (iat && !json_is_integer (iat))) {
        s_reason (reason, reason_size, "malformed claims: exp, nbf and iat must be integers");
        return -1;
    }
    if (json_integer_value (exp) <= now) {
        s_reason (reason, reason_size, "token expired");
        return -1;
    }
    int64_t horizon = s_add_saturated (now, leeway_s);
    if (nbf && json_integer_value (nbf) > horizon) {
        s_reason (reason, reason_size, "token not yet valid");
        return -1;
    }
    if (iat && json_integer_value (iat) > horizon) {
        s_reason (reason, reason_size, "token issued in the future");
        return -1;
    }
    if (issuer) {
        json_t *iss = json_object_get (claims, "iss");
        if (!json_is_string (iss) || strcmp (json_string_value (iss), issuer) != 0) {
            s_reason (reason, reason_size, "wrong issuer");
            return -1;
        }
    }
    return 0;
}

//  Checks the protected header; returns the key it names, or NULL with reason.
static const s_key_t *
s_header_check (umb_jwt_keyring_t *self, json_t *header, char *reason, size_t reason_size)
{
    char quoted [40];
    json_t *alg = json_object_get (header, "alg");
    if (!json_is_string (alg)) {
        s_reason (reason, reason_size, "unsupported algorithm (none given)");
        return NULL;
    }
    if (strcmp (json_string_value (alg), "EdDSA") != 0) {
        s_printable (quoted, sizeof quoted, json_string_value (alg));
        s_reason (reason, reason_size, "unsupported algorithm '%s'", quoted);
        return NULL;
    }
    //  We implement no extensions, so any critical one must be refused (RFC 7515 4.1.11)
    if (json_object_get (header, "crit")) {
        s_reason (reason, reason_size, "unsupported critical header");
        return NULL;
    }
    json_t *typ = json_object_get (header, "typ");
    if (typ && !(json_is_string (typ) && strcasecmp (json_string_value (typ), "JWT") == 0)) {
        s_reason (reason, reason_size, "unsupported token type");
        return NULL;
    }
    json_t *kid = json_object_get (header, "kid");
    if (!json_is_string (kid) || json_string_length (kid) == 0) {
        s_reason (reason, reason_size, "missing key id");
        return NULL;
    }
    const s_key_t *key = s_keyring_find (self, json_string_value (kid));
    if (!key)
        s_reason (reason, reason_size, "unknown key id");
    return key;
}

int
umb_jwt_verify (umb_jwt_keyring_t *self, const char *token, const char *issuer,
                int64_t now, int64_t leeway_s, json_t **claims_p,
                char *reason, size_t reason_size)
{
    assert (self);
    assert (token);
    assert (leeway_s >= 0);
    if (claims_p)
        *claims_p = NULL;
    if (reason && reason_size)
        reason [0] = 0;

    int rc = -1;
    unsigned char *header_bin = NULL, *payload_bin = NULL;
    json_t *header = NULL, *claims = NULL;

    size_t token_len = strnlen (token, UMB_JWT_TOKEN_MAX + 1);
    if (token_len > UMB_JWT_TOKEN_MAX) {
        s_reason (reason, reason_size, "token too large");
        goto done;
    }
    const char *dot1 = memchr (token, '.', token_len);
    const char *dot2 = dot1? memchr (dot1 + 1, '.', token_len - (size_t) (dot1 + 1 - token)): NULL;
    if (!dot2 || memchr (dot2 + 1, '.', token_len - (size_t) (dot2 + 1 - token))) {
        s_reason (reason, reason_size, "malformed token");
        goto done;
    }
    size_t header_len = (size_t) (dot1 - token);
    size_t payload_len = (size_t) (dot2 - dot1 - 1);
    size_t signature_len = token_len - (size_t) (dot2 + 1 - token);
    size_t header_bin_len = 0, payload_bin_len = 0;
    unsigned char signature [crypto_sign_BYTES];
    json_error_t error;
    if (header_len == 0 || payload_len == 0 || signature_len == 0
    ||  !(header_bin = s_b64_decode (token, header_len, &header_bin_len))
    ||  s_b64_decode_fixed (dot2 + 1, signature_len, signature, sizeof signature) != 0) {
        s_reason (reason, reason_size, "malformed token");
        goto done;
    }
    //  Duplicate names are refused: {"alg":"none","alg":"EdDSA"} must not mean two things
    header = json_loadb ((const char *) header_bin, header_bin_len, JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object (header)) {
        s_reason (reason, reason_size, "malformed token");
        goto done;
    }
    const s_key_t *key = s_header_check (self, header, reason, reason_size);
    if (!key)
        goto done;
    //  The signature covers the segments exactly as received
    if (s_verify_raw (key->public_key, token, header_len + 1 + payload_len, signature)) {
        s_reason (reason, reason_size, "bad signature");
        goto done;
    }
    payload_bin = s_b64_decode (dot1 + 1, payload_len, &payload_bin_len);
    if (payload_bin)
        claims = json_loadb ((const char *) payload_bin, payload_bin_len,
                             JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object (claims)) {
        s_reason (reason, reason_size, "malformed claims");
        goto done;
    }
    if (s_claims_check (claims, issuer, now, leeway_s, reason, reason_size))
        goto done;
    rc = 0;
    if (claims_p) {
        *claims_p = claims;
        claims = NULL;
    }
done:
    json_decref (header);
    json_decref (claims);
    free (header_bin);
    free (payload_bin);
    return rc;
}


//  ---------------------------------------------------------------- selftest

static char *
s_test_b64 (const char *text)
{
    char *b64 = s_b64_encode ((const unsigned char *) text, strlen (text));
    assert (b64);
    return b64;
}

//  A token with any header and payload text, signed by signer
static char *
s_test_forge (umb_jwt_signer_t *signer, const char *header, const char *payload)
{
    char *header_b64 = s_test_b64 (header);
    char *payload_b64 = s_test_b64 (payload);
    char *input = NULL;
    assert (asprintf (&input, "%s.%s", header_b64, payload_b64) > 0);
    unsigned char signature [crypto_sign_BYTES];
    s_sign_raw (signer->secret_key, input, strlen (input), signature);
    char signature_b64 [UMB_JWT_SIG_B64_SIZE];
    sodium_bin2base64 (signature_b64, sizeof signature_b64, signature, sizeof signature,
                       UMB_JWT_B64);
    char *token = NULL;
    assert (asprintf (&token, "%s.%s", input, signature_b64) > 0);
    free (header_b64);
    free (payload_b64);
    free (input);
    return token;
}

//  The segment-th segment of token (0-based), as a fresh string
static char *
s_test_segment (const char *token, int segment)
{
    const char *start = token;
    for (int i = 0; i < segment; i++) {
        start = strchr (start, '.');
        assert (start);
        start++;
    }
    const char *end = strchr (start, '.');
    return strndup (start, end? (size_t) (end - start): strlen (start));
}

//  template with every '@' replaced by value
static char *
s_test_fill (const char *template, const char *value)
{
    size_t size = strlen (template) + 1;
    for (const char *c = template; *c; c++)
        if (*c == '@')
            size += strlen (value);
    char *text = malloc (size);
    assert (text);
    char *out = text;
    for (const char *c = template; *c; c++)
        if (*c == '@')
            out = stpcpy (out, value);
        else
            *out++ = *c;
    *out = 0;
    return text;
}

static void
s_test_refused (umb_jwt_keyring_t *keyring, const char *token, const char *issuer, int64_t now,
                const char *expected)
{
    char reason [128];
    json_t *sentinel = json_object ();
    json_t *claims = sentinel;
    assert (umb_jwt_verify (keyring, token, issuer, now, 60, &claims, reason, sizeof reason) == -1);
    assert (claims == NULL);
    json_decref (sentinel);
    if (strcmp (reason, expected) != 0) {
        fprintf (stderr, "umb_jwt: expected '%s', got '%s'\n", expected, reason);
        assert (false);
    }
}

static void
s_test_accepted (umb_jwt_keyring_t *keyring, const char *token, const char *issuer, int64_t now)
{
    char reason [128];
    json_t *claims = NULL;
    int rc = umb_jwt_verify (keyring, token, issuer, now, 60, &claims, reason, sizeof reason);
    if (rc != 0)
        fprintf (stderr, "umb_jwt: refused: %s\n", reason);
    assert (rc == 0);
    assert (json_is_object (claims));
    json_decref (claims);
}

static void
s_test_rfc8037 (void)
{
    //  RFC 8037 Appendix A.1 key, A.4 signature
    const char *d = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    const char *x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const char *input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    const char *expected = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

    unsigned char *seed = sodium_malloc (crypto_sign_SEEDBYTES);
    unsigned char *secret_key = sodium_malloc (crypto_sign_SECRETKEYBYTES);
    assert (seed && secret_key);
    unsigned char public_key [crypto_sign_PUBLICKEYBYTES], expected_pk [crypto_sign_PUBLICKEYBYTES];
    assert (s_b64_decode_fixed (d, strlen (d), seed, crypto_sign_SEEDBYTES) == 0);
    assert (s_b64_decode_fixed (x, strlen (x), expected_pk, sizeof expected_pk) == 0);
    crypto_sign_seed_keypair (public_key, secret_key, seed);
    assert (memcmp (public_key, expected_pk, sizeof public_key) == 0);

    size_t payload_len = 0;
    unsigned char *payload = s_b64_decode (strchr (input, '.') + 1,
                                           strlen (strchr (input, '.') + 1), &payload_len);
    assert (payload && payload_len == 26 && memcmp (payload, "Example of Ed25519 signing", 26) == 0);
    free (payload);

    unsigned char signature [crypto_sign_BYTES];
    s_sign_raw (secret_key, input, strlen (input), signature);
    char signature_b64 [UMB_JWT_SIG_B64_SIZE];
    sodium_bin2base64 (signature_b64, sizeof signature_b64, signature, sizeof signature,
                       UMB_JWT_B64);
    assert (strcmp (signature_b64, expected) == 0);

    unsigned char decoded [crypto_sign_BYTES];
    assert (s_b64_decode_fixed (expected, strlen (expected), decoded, sizeof decoded) == 0);
    assert (s_verify_raw (public_key, input, strlen (input), decoded) == 0);
    decoded [7] ^= 1;
    assert (s_verify_raw (public_key, input, strlen (input), decoded) == -1);
    decoded [7] ^= 1;
    assert (s_verify_raw (public_key, input, strlen (input) - 1, decoded) == -1);
    sodium_free (seed);
    sodium_free (secret_key);

    //  Through the verifier the RFC token has no kid, so it is refused for that
    umb_jwt_keyring_t *keyring = umb_jwt_keyring_new ();
    char jwks_text [256];
    snprintf (jwks_text, sizeof jwks_text,
              "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"kid\":\"rfc\"}]}", x);
    json_t *jwks = json_loads (jwks_text, 0, NULL);
    assert (umb_jwt_keyring_add_jwks (keyring, jwks, NULL, 0) == 1);
    char *token = NULL;
    assert (asprintf (&token, "%s.%s", input, expected) > 0);
    s_test_refused (keyring, token, NULL, 0, "missing key id");
    free (token);
    json_decref (jwks);
    umb_jwt_keyring_destroy (&keyring);
}

static void
s_test_base64 (void)
{
    unsigned char bin [4];
    size_t len = 0;
    unsigned char *out = s_b64_decode ("", 0, &len);
    assert (out && len == 0);
    free (out);
    assert (s_b64_decode_fixed ("AAAA", 4, bin, 3) == 0);
    assert (s_b64_decode_fixed ("AAAA", 4, bin, 4) == -1);      //  too short
    assert (s_b64_decode_fixed ("AAAAAA", 6, bin, 3) == -1);    //  too long
    assert (s_b64_decode_fixed ("AA==", 4, bin, 1) == -1);      //  padding
    assert (s_b64_decode_fixed ("AA", 2, bin, 1) == 0);
    assert (s_b64_decode_fixed ("AB", 2, bin, 1) == -1);        //  non-canonical
    assert (s_b64_decode_fixed ("A", 1, bin, 1) == -1);         //  impossible length
    assert (s_b64_decode_fixed ("A+A/", 4, bin, 3) == -1);      //  standard alphabet
    assert (s_b64_decode_fixed ("A A", 3, bin, 2) == -1);       //  whitespace
    assert (s_b64_decode_fixed ("-_-_", 4, bin, 3) == 0);
}

static void
s_test_file_write (const char *path, mode_t mode, const char *text)
{
    unlink (path);
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL, mode);
    assert (fd >= 0);
    assert (fchmod (fd, mode) == 0);
    assert (s_write_all (fd, text, strlen (text)) == 0);
    close (fd);
}

static void
s_test_key_file (umb_log_t *log, int64_t now)
{
    char dir [] = "/tmp/umb-jwt-XXXXXX";
    assert (mkdtemp (dir));
    char sub [64], path [96], backup [96];
    snprintf (sub, sizeof sub, "%s/state/keys", dir);
    snprintf (path, sizeof path, "%s/jwt.key", sub);
    snprintf (backup, sizeof backup, "%s/jwt.key.saved", sub);

    umb_jwt_signer_t *first = umb_jwt_signer_load_or_create (path, log);
    assert (first);
    struct stat st;
    assert (stat (path, &st) == 0 && S_ISREG (st.st_mode) && (st.st_mode & 0777) == 0600);
    assert (stat (sub, &st) == 0 && S_ISDIR (st.st_mode) && (st.st_mode & 0777) == 0700);
    char text [128] = "";
    int fd = open (path, O_RDONLY);
    assert (fd >= 0);
    assert (read (fd, text, sizeof text - 1) == 66);
    close (fd);
    assert (strncmp (text, UMB_JWT_SEED_PREFIX, strlen (UMB_JWT_SEED_PREFIX)) == 0);
    assert (text [65] == '\n');

    json_t *claims = json_pack ("{s:s, s:I}", "sub", "alice", "exp", (json_int_t) now + 300);
    char *token = umb_jwt_sign (first, claims);
    assert (token);

    umb_jwt_signer_t *again = umb_jwt_signer_load_or_create (path, log);
    assert (again);
    assert (strcmp (umb_jwt_signer_kid (first), umb_jwt_signer_kid (again)) == 0);
    umb_jwt_keyring_t *keyring = umb_jwt_keyring_new ();
    assert (umb_jwt_keyring_add_signer (keyring, again) == 0);
    s_test_accepted (keyring, token, NULL, now);
    //  Ed25519 is deterministic: the reloaded key signs the same bytes
    char *token_again = umb_jwt_sign (again, claims);
    assert (token_again && strcmp (token, token_again) == 0);
    free (token_again);

    //  A key readable or writable by group or others is refused
    assert (rename (path, backup) == 0);
    s_test_file_write (path, 0644, text);
    assert (umb_jwt_signer_load_or_create (path, log) == NULL);
    assert (chmod (path, 0620) == 0);
    assert (umb_jwt_signer_load_or_create (path, log) == NULL);
    assert (chmod (path, 0600) == 0);
    umb_jwt_signer_t *fixed = umb_jwt_signer_load_or_create (path, log);
    assert (fixed && strcmp (umb_jwt_signer_kid (fixed), umb_jwt_signer_kid (first)) == 0);
    umb_jwt_signer_destroy (&fixed);

    //  Malformed files are refused, never replaced
    const char *bad [] = {
        "",
        "garbage\n",
        "umbra-ed25519-seed-v2 nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\n",
        "umbra-ed25519-seed-v1 nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2\n",
        "umbra-ed25519-seed-v1 nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2B\n",
        "umbra-ed25519-seed-v1 nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=\n",
        "umbra-ed25519-seed-v1 nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\n\n",
        "umbra-ed25519-seed-v1 nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A \n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        s_test_file_write (path, 0600, bad [i]);
        assert (umb_jwt_signer_load_or_create (path, log) == NULL);
        assert (stat (path, &st) == 0 && (size_t) st.st_size == strlen (bad [i]));
    }
    //  A well-formed file without trailing newline is fine: the RFC 8037 key
    s_test_file_write (path, 0600,
                       "umbra-ed25519-seed-v1 nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
    umb_jwt_signer_t *rfc = umb_jwt_signer_load_or_create (path, log);
    assert (rfc);
    char x [UMB_JWT_PK_B64_SIZE];
    sodium_bin2base64 (x, sizeof x, rfc->public_key, sizeof rfc->public_key, UMB_JWT_B64);
    assert (strcmp (x, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo") == 0);
    umb_jwt_signer_destroy (&rfc);

    //  Not a regular file
    assert (unlink (path) == 0);
    assert (mkdir (path, 0700) == 0);
    assert (umb_jwt_signer_load_or_create (path, log) == NULL);
    assert (rmdir (path) == 0);

    assert (unlink (backup) == 0);
    umb_jwt_keyring_destroy (&keyring);
    umb_jwt_signer_destroy (&again);
    umb_jwt_signer_destroy (&first);
    umb_jwt_signer_destroy (&first);
    json_decref (claims);
    free (token);
    assert (rmdir (sub) == 0);
    char state [64];
    snprintf (state, sizeof state, "%s/state", dir);
    assert (rmdir (state) == 0);
    assert (rmdir (dir) == 0);
}

static void
s_test_jwks (int64_t now)
{
    umb_jwt_signer_t *signer = umb_jwt_signer_new_ephemeral ();
    assert (signer);
    json_t *jwks = umb_jwt_signer_jwks (signer);
    assert (jwks);
    json_t *jwk = json_array_get (json_object_get (jwks, "keys"), 0);
    assert (json_array_size (json_object_get (jwks, "keys")) == 1);
    assert (strcmp (json_string_value (json_object_get (jwk, "kty")), "OKP") == 0);
    assert (strcmp (json_string_value (json_object_get (jwk, "crv")), "Ed25519") == 0);
    assert (strcmp (json_string_value (json_object_get (jwk, "alg")), "EdDSA") == 0);
    assert (strcmp (json_string_value (json_object_get (jwk, "use")), "sig") == 0);
    assert (strcmp (json_string_value (json_object_get (jwk, "kid")),
                    umb_jwt_signer_kid (signer)) == 0);
    assert (json_string_length (json_object_get (jwk, "x")) == 43);
    assert (json_object_get (jwk, "d") == NULL);

    //  Round trip through text, as a verifier fetching it would see it
    char *text = json_dumps (jwks, UMB_JWT_JSON_FLAGS);
    assert (text);
    json_t *fetched = json_loads (text, 0, NULL);
    free (text);
    umb_jwt_keyring_t *keyring = umb_jwt_keyring_new ();
    char reason [128];
    assert (umb_jwt_keyring_add_jwks (keyring, fetched, reason, sizeof reason) == 1);
    json_t *claims = json_pack ("{s:s, s:I}", "sub", "bob", "exp", (json_int_t) now + 60);
    char *token = umb_jwt_sign (signer, claims);
    assert (token);
    s_test_accepted (keyring, token, NULL, now);
    //  Same kid again replaces rather than duplicates
    assert (umb_jwt_keyring_add_jwks (keyring, fetched, reason, sizeof reason) == 1);
    assert (keyring->count == 1);
    json_decref (fetched);

    //  Foreign key types are ignored; a bad Ed25519 key refuses the whole set
    const char *rsa =
        "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"n\":\"0vx7agoebGcQSuu\",\"e\":\"AQAB\"},"
        "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"kid\":\"x1\","
        "\"x\":\"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo\"},"
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e1\",\"x\":\"AA\",\"y\":\"AA\"},"
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"enc\",\"use\":\"enc\","
        "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";
    json_t *set = json_loads (rsa, 0, NULL);
    assert (set);
    umb_jwt_keyring_t *empty = umb_jwt_keyring_new ();
    assert (umb_jwt_keyring_add_jwks (empty, set, reason, sizeof reason) == 0);
    s_test_refused (empty, token, NULL, now, "unknown key id");
    json_decref (set);

    const char *refused [] = {
        "[]",
        "{}",
        "{\"keys\":{}}",
        "{\"keys\":[1]}",
        "{\"keys\":[{\"crv\":\"Ed25519\"}]}",
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"k\","
            "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR\"}]}",
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"k\","
            "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURoAAA\"}]}",
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"k\","
            "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"}]}",
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"k\"}]}",
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
            "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",
        //  A small-order point, not a usable public key
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"k\","
            "\"x\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
        //  One good key does not rescue a bad one, and is not added either
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"good\","
            "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},"
            "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"bad\",\"x\":\"AAAA\"}]}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused [0]; i++) {
        set = json_loads (refused [i], JSON_DECODE_ANY, NULL);
        assert (set);
        reason [0] = 0;
        assert (umb_jwt_keyring_add_jwks (empty, set, reason, sizeof reason) == -1);
        assert (strncmp (reason, "malformed JWKS", 14) == 0);
        json_decref (set);
    }
    assert (empty->count == 0);
    assert (umb_jwt_keyring_add_jwks (empty, NULL, reason, sizeof reason) == -1);

    //  Rotation: tokens of the old and the new key both verify
    umb_jwt_signer_t *next = umb_jwt_signer_new_ephemeral ();
    assert (next && strcmp (umb_jwt_signer_kid (next), umb_jwt_signer_kid (signer)) != 0);
    json_t *next_jwks = umb_jwt_signer_jwks (next);
    assert (umb_jwt_keyring_add_jwks (keyring, next_jwks, NULL, 0) == 1);
    assert (keyring->count == 2);
    char *next_token = umb_jwt_sign (next, claims);
    s_test_accepted (keyring, token, NULL, now);
    s_test_accepted (keyring, next_token, NULL, now);
    free (next_token);
    json_decref (next_jwks);
    umb_jwt_signer_destroy (&next);

    free (token);
    json_decref (claims);
    json_decref (jwks);
    umb_jwt_keyring_destroy (&empty);
    umb_jwt_keyring_destroy (&keyring);
    umb_jwt_keyring_destroy (&keyring);
    umb_jwt_signer_destroy (&signer);
}

static void
s_test_tokens (int64_t now)
{
    umb_jwt_signer_t *signer = umb_jwt_signer_new_ephemeral ();
    umb_jwt_signer_t *stranger = umb_jwt_signer_new_ephemeral ();
    umb_jwt_keyring_t *keyring = umb_jwt_keyring_new ();
    assert (signer && stranger && keyring);
    assert (umb_jwt_keyring_add_signer (keyring, signer) == 0);
    const char *kid = umb_jwt_signer_kid (signer);

    //  kid is the first 12 bytes of SHA-256 (public key), base64url
    unsigned char hash [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (hash, signer->public_key, sizeof signer->public_key);
    char *expected_kid = s_b64_encode (hash, 12);
    assert (strlen (kid) == 16 && strcmp (kid, expected_kid) == 0);
    free (expected_kid);

    //  Round trip
    json_t *claims = json_pack ("{s:s, s:s, s:I, s:I, s:I, s:[s]}", "iss", "umbra-auth",
                                "sub", "alice", "exp", (json_int_t) now + 300,
                                "iat", (json_int_t) now, "nbf", (json_int_t) now,
                                "scope", "computations.read");
    char *token = umb_jwt_sign (signer, claims);
    assert (token);
    char *header_b64 = s_test_segment (token, 0);
    size_t header_len = 0;
    char *header = (char *) s_b64_decode (header_b64, strlen (header_b64), &header_len);
    char expected_header [80];
    snprintf (expected_header, sizeof expected_header,
              "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"typ\":\"JWT\"}", kid);
    assert (header && header_len == strlen (expected_header)
            && memcmp (header, expected_header, header_len) == 0);
    free (header);
    free (header_b64);
    char *signature_b64 = s_test_segment (token, 2);
    assert (strlen (signature_b64) == 86);
    free (signature_b64);

    json_t *verified = NULL;
    char reason [128];
    assert (umb_jwt_verify (keyring, token, "umbra-auth", now, 60, &verified,
                            reason, sizeof reason) == 0);
    assert (json_equal (verified, claims));
    json_decref (verified);
    assert (umb_jwt_verify (keyring, token, NULL, now, 0, NULL, NULL, 0) == 0);
    s_test_refused (keyring, token, "umbra-billing", now, "wrong issuer");
    s_test_refused (keyring, token, "umbra-aut", now, "wrong issuer");
    //  A short reason buffer truncates, never overflows
    char tiny [6];
    assert (umb_jwt_verify (keyring, token, "x", now, 60, NULL, tiny, sizeof tiny) == -1);
    assert (strcmp (tiny, "wrong") == 0);

    //  Tampered payload and signature
    char *copy = strdup (token);
    size_t middle = (size_t) (strchr (token, '.') - token) + 10;
    copy [middle] = copy [middle] == 'A'? 'B': 'A';
    s_test_refused (keyring, copy, NULL, now, "bad signature");
    strcpy (copy, token);
    size_t sig_at = strlen (copy) - 40;
    copy [sig_at] = copy [sig_at] == 'A'? 'B': 'A';
    s_test_refused (keyring, copy, NULL, now, "bad signature");
    //  Signature with non-canonical trailing bits, padding, standard alphabet
    strcpy (copy, token);
    char *last = copy + strlen (copy) - 1;
    *last = *last == 'B'? 'C': 'B';     //  'A','Q','g','w' are the only canonical last chars
    s_test_refused (keyring, copy, NULL, now, "malformed token");
    free (copy);
    char *padded = NULL;
    assert (asprintf (&padded, "%s==", token) > 0);
    s_test_refused (keyring, padded, NULL, now, "malformed token");
    free (padded);
    char *segments [3] = { s_test_segment (token, 0), s_test_segment (token, 1),
                           s_test_segment (token, 2) };
    char *variant = NULL;
    assert (asprintf (&variant, "%s=.%s.%s", segments [0], segments [1], segments [2]) > 0);
    s_test_refused (keyring, variant, NULL, now, "malformed token");
    free (variant);
    assert (asprintf (&variant, "%s.%s=.%s", segments [0], segments [1], segments [2]) > 0);
    s_test_refused (keyring, variant, NULL, now, "bad signature");
    free (variant);
    assert (asprintf (&variant, " %s", token) > 0);
    s_test_refused (keyring, variant, NULL, now, "malformed token");
    free (variant);
    assert (asprintf (&variant, "%s\n", token) > 0);
    s_test_refused (keyring, variant, NULL, now, "malformed token");
    free (variant);

    //  Wrong number of segments, empty segments
    assert (asprintf (&variant, "%s.%s", segments [0], segments [1]) > 0);
    s_test_refused (keyring, variant, NULL, now, "malformed token");
    free (variant);
    assert (asprintf (&variant, "%s.%s.%s.%s", segments [0], segments [1], segments [2],
                      segments [2]) > 0);
    s_test_refused (keyring, variant, NULL, now, "malformed token");
    free (variant);
    assert (asprintf (&variant, "%s.%s.", segments [0], segments [1]) > 0);
    s_test_refused (keyring, variant, NULL, now, "malformed token");
    free (variant);
    assert (asprintf (&variant, "%s..%s", segments [0], segments [2]) > 0);
    s_test_refused (keyring, variant, NULL, now, "malformed token");
    free (variant);
    s_test_refused (keyring, "", NULL, now, "malformed token");
    s_test_refused (keyring, "..", NULL, now, "malformed token");
    s_test_refused (keyring, token + strlen (segments [0]), NULL, now, "malformed token");

    //  Header swapped for another algorithm: kept signature, or none at all
    const char *algs [] = { "none", "HS256", "EdDSA ", "eddsa", "ES256", "Ed25519" };
    for (size_t i = 0; i < sizeof algs / sizeof algs [0]; i++) {
        char swapped [128], expected [64];
        snprintf (swapped, sizeof swapped, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}",
                  algs [i], kid);
        snprintf (expected, sizeof expected, "unsupported algorithm '%s'", algs [i]);
        char *swapped_b64 = s_test_b64 (swapped);
        assert (asprintf (&variant, "%s.%s.%s", swapped_b64, segments [1], segments [2]) > 0);
        s_test_refused (keyring, variant, NULL, now, expected);
        free (variant);
        assert (asprintf (&variant, "%s.%s.", swapped_b64, segments [1]) > 0);
        s_test_refused (keyring, variant, NULL, now, "malformed token");
        free (variant);
        //  Even when the signature is genuine over the swapped header
        variant = s_test_forge (signer, swapped, "{\"exp\":9999999999}");
        s_test_refused (keyring, variant, NULL, now, expected);
        free (variant);
        free (swapped_b64);
    }
    for (int i = 0; i < 3; i++)
        free (segments [i]);

    //  Header checks, each on a genuinely signed token
    const char *payload = "{\"exp\":9999999999}";
    struct { const char *header; const char *reason; } headers [] = {
        { "{\"kid\":\"@\"}", "unsupported algorithm (none given)" },
        { "{\"alg\":null,\"kid\":\"@\"}", "unsupported algorithm (none given)" },
        { "{\"alg\":[\"EdDSA\"],\"kid\":\"@\"}", "unsupported algorithm (none given)" },
        { "{\"alg\":\"EdDSA\\u0007\\n\",\"kid\":\"@\"}", "unsupported algorithm 'EdDSA?" "?'" },
        { "{\"alg\":\"none\",\"alg\":\"EdDSA\",\"kid\":\"@\"}", "malformed token" },
        { "{\"alg\":\"EdDSA\",\"alg\":\"EdDSA\",\"kid\":\"@\"}", "malformed token" },
        { "{\"alg\":\"EdDSA\",\"kid\":\"@\",\"crit\":[\"exp\"],\"exp\":1}",
          "unsupported critical header" },
        { "{\"alg\":\"EdDSA\",\"kid\":\"@\",\"crit\":[]}", "unsupported critical header" },
        { "{\"alg\":\"EdDSA\",\"kid\":\"@\",\"typ\":\"JWE\"}", "unsupported token type" },
        { "{\"alg\":\"EdDSA\",\"kid\":\"@\",\"typ\":\"jwt\"}", NULL },
        { "{\"alg\":\"EdDSA\",\"kid\":\"@\"}", NULL },
        { "{\"alg\":\"EdDSA\",\"kid\":\"@x\"}", "unknown key id" },
        { "{\"alg\":\"EdDSA\",\"kid\":\"\"}", "missing key id" },
        { "{\"alg\":\"EdDSA\",\"kid\":7}", "missing key id" },
        { "{\"alg\":\"EdDSA\"}", "missing key id" },
        { "[\"EdDSA\"]", "malformed token" },
        { "\"EdDSA\"", "malformed token" },
        { "{\"alg\":\"EdDSA\",", "malformed token" },
        { "{\"alg\":\"EdDSA\",\"kid\":\"@\"} x", "malformed token" },
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers [0]; i++) {
        char *text = s_test_fill (headers [i].header, kid);
        variant = s_test_forge (signer, text, payload);
        free (text);
        if (headers [i].reason)
            s_test_refused (keyring, variant, NULL, now, headers [i].reason);
        else
            s_test_accepted (keyring, variant, NULL, now);
        free (variant);
    }

    //  Unknown signer with a well-formed token
    char *foreign = umb_jwt_sign (stranger, claims);
    s_test_refused (keyring, foreign, NULL, now, "unknown key id");
    free (foreign);
    //  A stranger's signature under our kid
    snprintf (expected_header, sizeof expected_header, "{\"alg\":\"EdDSA\",\"kid\":\"%s\"}", kid);
    foreign = s_test_forge (stranger, expected_header, payload);
    s_test_refused (keyring, foreign, NULL, now, "bad signature");
    free (foreign);

    //  Claims: time checks and types, each genuinely signed
    struct { const char *payload; const char *reason; } payloads [] = {
        { "{\"exp\":@}", NULL },
        { "{\"exp\":@,\"nbf\":1700000060,\"iat\":1700000060}", NULL },
        { "{\"exp\":@,\"nbf\":1700000061}", "token not yet valid" },
        { "{\"exp\":@,\"iat\":1700000061}", "token issued in the future" },
        { "{\"exp\":@,\"nbf\":9223372036854775807}", "token not yet valid" },
        { "{\"exp\":@,\"nbf\":-9223372036854775807}", NULL },
        { "{\"exp\":1700000000}", "token expired" },
        { "{\"exp\":1699999999}", "token expired" },
        { "{\"exp\":-5}", "token expired" },
        { "{\"sub\":\"alice\"}", "token has no expiry" },
        { "{\"exp\":null}", "malformed claims: exp, nbf and iat must be integers" },
        { "{\"exp\":\"@\"}", "malformed claims: exp, nbf and iat must be integers" },
        { "{\"exp\":@.5}", "malformed claims: exp, nbf and iat must be integers" },
        { "{\"exp\":@,\"nbf\":\"0\"}", "malformed claims: exp, nbf and iat must be integers" },
        { "{\"exp\":@,\"exp\":1}", "malformed claims" },
        { "[@]", "malformed claims" },
        { "@", "malformed claims" },
        { "{\"exp\":@", "malformed claims" },
        { "", "malformed token" },
    };
    assert (now == 1700000000);
    for (size_t i = 0; i < sizeof payloads / sizeof payloads [0]; i++) {
        char *text = s_test_fill (payloads [i].payload, "1700000300");
        variant = s_test_forge (signer, expected_header, text);
        free (text);
        if (payloads [i].reason)
            s_test_refused (keyring, variant, NULL, now, payloads [i].reason);
        else
            s_test_accepted (keyring, variant, NULL, now);
        free (variant);
    }
    //  Not yet valid at one instant, valid at the next
    variant = s_test_forge (signer, expected_header, "{\"exp\":1700000300,\"nbf\":1700000100}");
    s_test_refused (keyring, variant, NULL, now, "token not yet valid");
    s_test_accepted (keyring, variant, NULL, now + 40);
    s_test_refused (keyring, variant, NULL, now + 300, "token expired");
    free (variant);
    //  issuer present but required and missing
    variant = s_test_forge (signer, expected_header, "{\"exp\":1700000300}");
    s_test_refused (keyring, variant, "umbra-auth", now, "wrong issuer");
    free (variant);
    variant = s_test_forge (signer, expected_header, "{\"exp\":1700000300,\"iss\":7}");
    s_test_refused (keyring, variant, "umbra-auth", now, "wrong issuer");
    free (variant);

    //  Size limits: the signer refuses what the verifier would, and oversize is refused unread
    json_t *big = json_deep_copy (claims);
    char *filler = malloc (UMB_JWT_TOKEN_MAX);
    assert (big && filler);
    memset (filler, 'a', UMB_JWT_TOKEN_MAX - 1);
    filler [UMB_JWT_TOKEN_MAX - 1] = 0;
    json_object_set_new (big, "filler", json_string (filler));
    assert (umb_jwt_sign (signer, big) == NULL);
    filler [5000] = 0;
    json_object_set_new (big, "filler", json_string (filler));
    char *large = umb_jwt_sign (signer, big);
    assert (large && strlen (large) <= UMB_JWT_TOKEN_MAX);
    s_test_accepted (keyring, large, NULL, now);
    free (large);
    memset (filler, 'A', UMB_JWT_TOKEN_MAX - 1);
    filler [UMB_JWT_TOKEN_MAX - 1] = 0;
    char *oversize = NULL;
    assert (asprintf (&oversize, "%s.%s", token, filler) > 0);
    s_test_refused (keyring, oversize, NULL, now, "token too large");
    free (oversize);
    free (filler);
    json_decref (big);

    json_decref (claims);
    free (token);
    umb_jwt_keyring_destroy (&keyring);
    umb_jwt_signer_destroy (&stranger);
    umb_jwt_signer_destroy (&signer);
    assert (signer == NULL);
}

void
umb_jwt_test (bool verbose)
{
    if (verbose)
        printf (" * umb_jwt: ");
    assert (sodium_init () >= 0);
    //  Refusals are logged by design; keep them off the test output unless asked
    int null_fd = verbose? -1: open ("/dev/null", O_WRONLY | O_CLOEXEC);
    umb_log_t *log = umb_log_new ("jwt", verbose? UMB_LOG_DEBUG: UMB_LOG_ERROR, false);
    assert (log);
    if (null_fd >= 0)
        umb_log_set_fd (log, null_fd);

    int64_t now = 1700000000;
    s_test_base64 ();
    s_test_rfc8037 ();
    s_test_tokens (now);
    s_test_key_file (log, now);
    s_test_key_file (NULL, now);
    s_test_jwks (now);

    umb_log_destroy (&log);
    if (null_fd >= 0)
        close (null_fd);
    if (verbose)
        printf ("OK\n");
}
