//  umb_sig - participants' keys, signed statements and SHA3-256 hashing
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include "umb_sig.h"
#include "umb_hex.h"
#include "umb_reason.h"

#define S_RSA_MIN_BITS      2048
#define S_RSA_MAX_BITS      8192
#define S_RSA_GEN_BITS      3072
#define S_PSS_SALT          32
#define S_PEM_MAX           (64 * 1024)
#define S_FILE_CHUNK        (64 * 1024)

struct _umb_sig_sha3_t {
    EVP_MD_CTX *ctx;
};

//  The first error OpenSSL queued, as text; clears the queue
static const char *
s_ssl_error (char *buffer, size_t size)
{
    unsigned long code = ERR_get_error ();
    if (code == 0)
        snprintf (buffer, size, "unknown OpenSSL error");
    else
        ERR_error_string_n (code, buffer, size);
    ERR_clear_error ();
    return buffer;
}

//  ---------------------------------------------------------------------------
//  Keys

EVP_PKEY *
umb_sig_key_generate (const char *type)
{
    assert (type);
    EVP_PKEY *key = NULL;
    //  The aliases are the names `umbra certs --key-type` uses
    if (strcmp (type, "ed25519") == 0)
        key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
    else
    if (strcmp (type, "ecdsa") == 0 || strcmp (type, "ecdsa-p256") == 0 || strcmp (type, "ec-p256") == 0)
        key = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
    else
    if (strcmp (type, "ecdsa-p384") == 0 || strcmp (type, "ec-p384") == 0)
        key = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-384");
    else
    if (strcmp (type, "rsa") == 0 || strcmp (type, "rsa-3072") == 0)
        key = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) S_RSA_GEN_BITS);
    else
        return NULL;
    ERR_clear_error ();
    return key;
}

static bool
s_group_is (const char *name, const char *a, const char *b)
{
    return strcmp (name, a) == 0 || strcmp (name, b) == 0;
}

umb_sig_key_type_t
umb_sig_key_check (EVP_PKEY *key, char *reason, size_t reason_size)
{
    if (!key) {
        umb_reason_set (reason, reason_size, "no key");
        return UMB_SIG_KEY_NONE;
    }
    if (EVP_PKEY_is_a (key, "ED25519"))
        return UMB_SIG_KEY_ED25519;
    if (EVP_PKEY_is_a (key, "EC")) {
        char group [64] = "";
        size_t group_len = 0;
        if (!EVP_PKEY_get_group_name (key, group, sizeof (group), &group_len)) {
            ERR_clear_error ();
            umb_reason_set (reason, reason_size, "EC key without a named curve is not allowed");
            return UMB_SIG_KEY_NONE;
        }
        if (s_group_is (group, "prime256v1", "P-256"))
            return UMB_SIG_KEY_ECDSA_P256;
        if (s_group_is (group, "secp384r1", "P-384"))
            return UMB_SIG_KEY_ECDSA_P384;
        umb_reason_set (reason, reason_size, "EC curve %s is not allowed (P-256 or P-384 only)", group);
        return UMB_SIG_KEY_NONE;
    }
    if (EVP_PKEY_is_a (key, "RSA")) {
        int bits = EVP_PKEY_get_bits (key);
        if (bits < S_RSA_MIN_BITS || bits > S_RSA_MAX_BITS) {
            umb_reason_set (reason, reason_size, "RSA key of %d bits is not allowed (%d..%d)",
                            bits, S_RSA_MIN_BITS, S_RSA_MAX_BITS);
            return UMB_SIG_KEY_NONE;
        }
        return UMB_SIG_KEY_RSA;
    }
    const char *name = EVP_PKEY_get0_type_name (key);
    umb_reason_set (reason, reason_size, "key type %s is not allowed (Ed25519, ECDSA P-256/P-384, RSA)",
                    name ? name : "unknown");
    return UMB_SIG_KEY_NONE;
}

const char *
umb_sig_key_type_name (umb_sig_key_type_t type)
{
    switch (type) {
        case UMB_SIG_KEY_ED25519:    return "ed25519";
        case UMB_SIG_KEY_ECDSA_P256: return "ecdsa-p256";
        case UMB_SIG_KEY_ECDSA_P384: return "ecdsa-p384";
        case UMB_SIG_KEY_RSA:        return "rsa";
        default:                     return "none";
    }
}

//  Refuses to ask for a passphrase: encrypted keys are not supported
static int
s_no_password (char *buf, int size, int rwflag, void *u)
{
    return -1;
}

EVP_PKEY *
umb_sig_private_load (const char *path, char *reason, size_t reason_size)
{
    assert (path);
    BIO *bio = BIO_new_file (path, "r");
    if (!bio) {
        ERR_clear_error ();
        umb_reason_set (reason, reason_size, "cannot open %s: %s", path, strerror (errno));
        return NULL;
    }
    EVP_PKEY *key = PEM_read_bio_PrivateKey (bio, NULL, s_no_password, NULL);
    BIO_free (bio);
    if (!key) {
        ERR_clear_error ();
        umb_reason_set (reason, reason_size, "%s holds no unencrypted PEM private key", path);
        return NULL;
    }
    char why [160];
    if (umb_sig_key_check (key, why, sizeof (why)) == UMB_SIG_KEY_NONE) {
        umb_reason_set (reason, reason_size, "%s: %s", path, why);
        EVP_PKEY_free (key);
        return NULL;
    }
    return key;
}

EVP_PKEY *
umb_sig_public_load_pem (const char *pem, size_t len, char *reason, size_t reason_size)
{
    if (!pem || len == 0) {
        umb_reason_set (reason, reason_size, "empty public key");
        return NULL;
    }
    if (len > S_PEM_MAX) {
        umb_reason_set (reason, reason_size, "public key PEM larger than %d bytes", S_PEM_MAX);
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf (pem, (int) len);
    if (!bio) {
        umb_reason_set (reason, reason_size, "out of memory");
        return NULL;
    }
    EVP_PKEY *key = PEM_read_bio_PUBKEY (bio, NULL, s_no_password, NULL);
    //  One key and nothing else: a second block would be silently ignored
    bool trailing = false;
    char rest [256];
    int got;
    while (key && !trailing && (got = BIO_read (bio, rest, sizeof (rest))) > 0)
        for (int i = 0; i < got; i++)
            if (!strchr (" \t\r\n", rest [i]) || rest [i] == 0)
                trailing = true;
    BIO_free (bio);
    ERR_clear_error ();
    if (!key) {
        umb_reason_set (reason, reason_size, "not a PEM public key (-----BEGIN PUBLIC KEY-----)");
        return NULL;
    }
    if (trailing) {
        umb_reason_set (reason, reason_size, "data after the PEM public key");
        EVP_PKEY_free (key);
        return NULL;
    }
    if (umb_sig_key_check (key, reason, reason_size) == UMB_SIG_KEY_NONE) {
        EVP_PKEY_free (key);
        return NULL;
    }
    return key;
}

EVP_PKEY *
umb_sig_public_load (const char *path, char *reason, size_t reason_size)
{
    assert (path);
    FILE *file = fopen (path, "r");
    if (!file) {
        umb_reason_set (reason, reason_size, "cannot open %s: %s", path, strerror (errno));
        return NULL;
    }
    char *buffer = malloc (S_PEM_MAX + 1);
    size_t size = buffer ? fread (buffer, 1, S_PEM_MAX + 1, file) : 0;
    bool failed = buffer == NULL || ferror (file);
    fclose (file);
    EVP_PKEY *key = NULL;
    if (failed)
        umb_reason_set (reason, reason_size, "cannot read %s", path);
    else
    if (size > S_PEM_MAX)
        umb_reason_set (reason, reason_size, "%s is larger than %d bytes", path, S_PEM_MAX);
    else {
        char why [160];
        key = umb_sig_public_load_pem (buffer, size, why, sizeof (why));
        if (!key)
            umb_reason_set (reason, reason_size, "%s: %s", path, why);
    }
    free (buffer);
    return key;
}

char *
umb_sig_public_pem (EVP_PKEY *key)
{
    assert (key);
    BIO *bio = BIO_new (BIO_s_mem ());
    if (!bio)
        return NULL;
    char *pem = NULL;
    if (PEM_write_bio_PUBKEY (bio, key)) {
        char *data = NULL;
        long size = BIO_get_mem_data (bio, &data);
        if (size > 0 && (pem = malloc ((size_t) size + 1))) {
            memcpy (pem, data, (size_t) size);
            pem [size] = 0;
        }
    }
    ERR_clear_error ();
    BIO_free (bio);
    return pem;
}

int
umb_sig_public_der (EVP_PKEY *key, uint8_t **der)
{
    assert (key);
    assert (der);
    *der = NULL;
    int len = i2d_PUBKEY (key, der);
    if (len <= 0) {
        ERR_clear_error ();
        *der = NULL;
        return -1;
    }
    return len;
}

bool
umb_sig_key_equal (EVP_PKEY *a, EVP_PKEY *b)
{
    if (!a || !b)
        return false;
    uint8_t *der_a = NULL, *der_b = NULL;
    int len_a = umb_sig_public_der (a, &der_a);
    int len_b = umb_sig_public_der (b, &der_b);
    bool equal = len_a > 0 && len_a == len_b && memcmp (der_a, der_b, (size_t) len_a) == 0;
    OPENSSL_free (der_a);
    OPENSSL_free (der_b);
    return equal;
}

//  Creates a temporary file next to path ("<dir>/.<base>.XXXXXX", mode 0600);
//  returns its fd and writes its name into tmp, or -1.
static int
s_temp_next_to (const char *path, char *tmp, size_t tmp_size)
{
    const char *slash = strrchr (path, '/');
    int written;
    if (slash)
        written = snprintf (tmp, tmp_size, "%.*s/.%s.XXXXXX", (int) (slash - path), path, slash + 1);
    else
        written = snprintf (tmp, tmp_size, ".%s.XXXXXX", path);
    if (written < 0 || (size_t) written >= tmp_size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkstemp (tmp);
}

//  Writes key (private or public PEM) to a temporary file and links it to
//  path; fails if path exists. 0 ok, -1 with the reason.
static int
s_save_pem (EVP_PKEY *key, bool private, const char *path, char *reason, size_t reason_size)
{
    char tmp [PATH_MAX];
    int fd = s_temp_next_to (path, tmp, sizeof (tmp));
    if (fd < 0) {
        umb_reason_set (reason, reason_size, "cannot create a file next to %s: %s", path, strerror (errno));
        return -1;
    }
    int rc = -1;
    if (!private && fchmod (fd, 0644) != 0)
        umb_reason_set (reason, reason_size, "cannot chmod %s: %s", tmp, strerror (errno));
    else {
        //  Written straight to the fd, so the private PEM has no copy in our memory
        BIO *bio = BIO_new_fd (fd, BIO_NOCLOSE);
        int ok = bio && (private
            ? PEM_write_bio_PrivateKey (bio, key, NULL, NULL, 0, NULL, NULL)
            : PEM_write_bio_PUBKEY (bio, key));
        if (bio)
            ok = ok && BIO_flush (bio) == 1;
        BIO_free (bio);
        ERR_clear_error ();
        if (!ok)
            umb_reason_set (reason, reason_size, "cannot write %s", path);
        else
        if (fsync (fd) != 0)
            umb_reason_set (reason, reason_size, "cannot write %s: %s", path, strerror (errno));
        else
        if (link (tmp, path) != 0)
            umb_reason_set (reason, reason_size, errno == EEXIST ? "%s exists; not overwritten"
                                                                 : "cannot create %s: %s",
                            path, strerror (errno));
        else
            rc = 0;
    }
    close (fd);
    unlink (tmp);
    return rc;
}

int
umb_sig_key_save (EVP_PKEY *key, const char *private_path, const char *public_path,
                  char *reason, size_t reason_size)
{
    assert (key);
    assert (private_path);
    //  Refuse early when either exists, so neither is written
    struct stat st;
    if (lstat (private_path, &st) == 0) {
        umb_reason_set (reason, reason_size, "%s exists; not overwritten", private_path);
        return -1;
    }
    if (public_path && lstat (public_path, &st) == 0) {
        umb_reason_set (reason, reason_size, "%s exists; not overwritten", public_path);
        return -1;
    }
    if (s_save_pem (key, true, private_path, reason, reason_size))
        return -1;
    if (public_path && s_save_pem (key, false, public_path, reason, reason_size)) {
        unlink (private_path);          //  ours: created above, with O_EXCL semantics
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Statements

static bool
s_id_ok (const char *id)
{
    size_t len = id ? strnlen (id, UMB_SIG_ID_MAX + 1) : 0;
    return len > 0 && len <= UMB_SIG_ID_MAX;
}

ssize_t
umb_sig_statement_upload (const char *role, const char *computation_id,
                          const uint8_t hash [UMB_SIG_HASH_SIZE],
                          const uint8_t challenge [UMB_SIG_CHALLENGE_SIZE],
                          uint8_t *out, size_t out_size)
{
    assert (hash);
    assert (challenge);
    assert (out);
    if (!role || (strcmp (role, "algorithm") != 0 && strcmp (role, "dataset") != 0))
        return -1;
    if (!s_id_ok (computation_id))
        return -1;
    size_t prefix_len = strlen (UMB_SIG_UPLOAD_PREFIX);
    size_t role_len = strlen (role);
    size_t id_len = strlen (computation_id);
    size_t total = prefix_len + 1 + role_len + 1 + id_len + 1 + UMB_SIG_HASH_SIZE + UMB_SIG_CHALLENGE_SIZE;
    if (total > out_size)
        return -1;
    uint8_t *p = out;
    memcpy (p, UMB_SIG_UPLOAD_PREFIX, prefix_len);  p += prefix_len;
    *p++ = 0;
    memcpy (p, role, role_len);                     p += role_len;
    *p++ = 0;
    memcpy (p, computation_id, id_len);             p += id_len;
    *p++ = 0;
    memcpy (p, hash, UMB_SIG_HASH_SIZE);            p += UMB_SIG_HASH_SIZE;
    memcpy (p, challenge, UMB_SIG_CHALLENGE_SIZE);  p += UMB_SIG_CHALLENGE_SIZE;
    assert ((size_t) (p - out) == total);
    return (ssize_t) total;
}

ssize_t
umb_sig_statement_result (const char *computation_id,
                          const uint8_t challenge [UMB_SIG_CHALLENGE_SIZE],
                          uint8_t *out, size_t out_size)
{
    assert (challenge);
    assert (out);
    if (!s_id_ok (computation_id))
        return -1;
    size_t prefix_len = strlen (UMB_SIG_RESULT_PREFIX);
    size_t id_len = strlen (computation_id);
    size_t total = prefix_len + 1 + id_len + 1 + UMB_SIG_CHALLENGE_SIZE;
    if (total > out_size)
        return -1;
    uint8_t *p = out;
    memcpy (p, UMB_SIG_RESULT_PREFIX, prefix_len);  p += prefix_len;
    *p++ = 0;
    memcpy (p, computation_id, id_len);             p += id_len;
    *p++ = 0;
    memcpy (p, challenge, UMB_SIG_CHALLENGE_SIZE);  p += UMB_SIG_CHALLENGE_SIZE;
    assert ((size_t) (p - out) == total);
    return (ssize_t) total;
}

//  ---------------------------------------------------------------------------
//  Signatures

//  Sets ctx up to sign or verify with key, by the algorithm of its type.
static int
s_digest_init (EVP_MD_CTX *ctx, EVP_PKEY *key, umb_sig_key_type_t type, bool sign)
{
    const char *md = NULL;
    if (type == UMB_SIG_KEY_ECDSA_P256 || type == UMB_SIG_KEY_RSA)
        md = "SHA256";
    else
    if (type == UMB_SIG_KEY_ECDSA_P384)
        md = "SHA384";
    EVP_PKEY_CTX *pctx = NULL;
    int ok = sign ? EVP_DigestSignInit_ex (ctx, &pctx, md, NULL, NULL, key, NULL)
                  : EVP_DigestVerifyInit_ex (ctx, &pctx, md, NULL, NULL, key, NULL);
    if (ok != 1)
        return -1;
    if (type == UMB_SIG_KEY_RSA) {
        if (EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PSS_PADDING) != 1
        ||  EVP_PKEY_CTX_set_rsa_mgf1_md_name (pctx, "SHA256", NULL) != 1
        ||  EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, S_PSS_SALT) != 1)
            return -1;
    }
    return 0;
}

int
umb_sig_sign (EVP_PKEY *priv, const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len)
{
    assert (priv);
    assert (msg || len == 0);
    assert (sig);
    assert (sig_len);
    *sig = NULL;
    *sig_len = 0;
    umb_sig_key_type_t type = umb_sig_key_check (priv, NULL, 0);
    if (type == UMB_SIG_KEY_NONE)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    if (!ctx)
        return -1;
    int rc = -1;
    size_t size = 0;
    uint8_t *buffer = NULL;
    if (s_digest_init (ctx, priv, type, true) == 0
    &&  EVP_DigestSign (ctx, NULL, &size, msg, len) == 1
    &&  (buffer = malloc (size))
    &&  EVP_DigestSign (ctx, buffer, &size, msg, len) == 1) {
        *sig = buffer;
        *sig_len = size;
        rc = 0;
    }
    else
        free (buffer);
    ERR_clear_error ();
    EVP_MD_CTX_free (ctx);
    return rc;
}

int
umb_sig_verify (EVP_PKEY *pub, const uint8_t *msg, size_t len,
                const uint8_t *sig, size_t sig_len, char *reason, size_t reason_size)
{
    assert (msg || len == 0);
    char why [160];
    umb_sig_key_type_t type = umb_sig_key_check (pub, why, sizeof (why));
    if (type == UMB_SIG_KEY_NONE) {
        umb_reason_set (reason, reason_size, "%s", why);
        return -1;
    }
    if (!sig || sig_len == 0) {
        umb_reason_set (reason, reason_size, "empty signature");
        return -1;
    }
    if (sig_len > UMB_SIG_SIGNATURE_MAX) {
        umb_reason_set (reason, reason_size, "signature of %zu bytes is too long", sig_len);
        return -1;
    }
    if (type == UMB_SIG_KEY_ED25519 && sig_len != 64) {
        umb_reason_set (reason, reason_size, "an Ed25519 signature is 64 bytes, not %zu", sig_len);
        return -1;
    }
    if (type == UMB_SIG_KEY_RSA && sig_len != (size_t) EVP_PKEY_get_size (pub)) {
        umb_reason_set (reason, reason_size, "an RSA-%d signature is %d bytes, not %zu",
                        EVP_PKEY_get_bits (pub), EVP_PKEY_get_size (pub), sig_len);
        return -1;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    if (!ctx) {
        umb_reason_set (reason, reason_size, "out of memory");
        return -1;
    }
    int rc = -1;
    if (s_digest_init (ctx, pub, type, false) != 0)
        umb_reason_set (reason, reason_size, "cannot verify with this key: %s", s_ssl_error (why, sizeof (why)));
    else
    if (EVP_DigestVerify (ctx, sig, sig_len, msg, len) != 1)
        umb_reason_set (reason, reason_size, "the %s signature does not verify with the key",
                        umb_sig_key_type_name (type));
    else
        rc = 0;
    ERR_clear_error ();
    EVP_MD_CTX_free (ctx);
    return rc;
}

//  ---------------------------------------------------------------------------
//  SHA3-256 and hex

void
umb_sig_sha3 (const void *data, size_t size, uint8_t out [UMB_SIG_HASH_SIZE])
{
    assert (data || size == 0);
    assert (out);
    unsigned int out_len = 0;
    int ok = EVP_Digest (data, size, out, &out_len, EVP_sha3_256 (), NULL);
    assert (ok == 1 && out_len == UMB_SIG_HASH_SIZE);
    (void) ok;
}

umb_sig_sha3_t *
umb_sig_sha3_new (void)
{
    umb_sig_sha3_t *self = calloc (1, sizeof (umb_sig_sha3_t));
    if (!self)
        return NULL;
    self->ctx = EVP_MD_CTX_new ();
    if (!self->ctx || EVP_DigestInit_ex (self->ctx, EVP_sha3_256 (), NULL) != 1) {
        EVP_MD_CTX_free (self->ctx);
        free (self);
        return NULL;
    }
    return self;
}

void
umb_sig_sha3_update (umb_sig_sha3_t *self, const void *data, size_t size)
{
    assert (self);
    assert (data || size == 0);
    int ok = EVP_DigestUpdate (self->ctx, data, size);
    assert (ok == 1);
    (void) ok;
}

void
umb_sig_sha3_final (umb_sig_sha3_t *self, uint8_t out [UMB_SIG_HASH_SIZE])
{
    assert (self);
    assert (out);
    unsigned int out_len = 0;
    int ok = EVP_DigestFinal_ex (self->ctx, out, &out_len);
    assert (ok == 1 && out_len == UMB_SIG_HASH_SIZE);
    (void) ok;
}

void
umb_sig_sha3_destroy (umb_sig_sha3_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        EVP_MD_CTX_free ((*self_p)->ctx);
        free (*self_p);
        *self_p = NULL;
    }
}

int
umb_sig_sha3_file (const char *path, uint8_t out [UMB_SIG_HASH_SIZE], uint64_t *size_p,
                   char *reason, size_t reason_size)
{
    assert (path);
    assert (out);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        umb_reason_set (reason, reason_size, "cannot open %s: %s", path, strerror (errno));
        return -1;
    }
    struct stat st;
    if (fstat (fd, &st) != 0 || S_ISDIR (st.st_mode)) {
        umb_reason_set (reason, reason_size, "%s is not a file", path);
        close (fd);
        return -1;
    }
    uint8_t *buffer = malloc (S_FILE_CHUNK);
    umb_sig_sha3_t *sha3 = umb_sig_sha3_new ();
    int rc = -1;
    uint64_t total = 0;
    if (!buffer || !sha3)
        umb_reason_set (reason, reason_size, "out of memory");
    else {
        while (true) {
            ssize_t got = read (fd, buffer, S_FILE_CHUNK);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0) {
                umb_reason_set (reason, reason_size, "cannot read %s: %s", path, strerror (errno));
                break;
            }
            if (got == 0) {
                umb_sig_sha3_final (sha3, out);
                if (size_p)
                    *size_p = total;
                rc = 0;
                break;
            }
            umb_sig_sha3_update (sha3, buffer, (size_t) got);
            total += (uint64_t) got;
        }
    }
    umb_sig_sha3_destroy (&sha3);
    free (buffer);
    close (fd);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Selftest

//  An RSA public key of 8200 bits: over the maximum (made with openssl genpkey)
static const char s_test_rsa8200_pem [] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIEIzANBgkqhkiG9w0BAQEFAAOCBBAAMIIECwKCBAIAmEhG8nlzo+iWf8JHKirs\n"
    "aidJqm/ZT0003mK/KBmc/oAquEhxinms8X/goFUdqnjkvkPZVI6AwZ+IhqM2dQuc\n"
    "4ECdLKsGuqkOYgy+yMHshBN5WpkmWp9afEAmu5/HLGZ0tEhia/9wryES/sJdzOla\n"
    "SpJE6qoAkeP7XPstIjv3yJf5GKKjNBMA32EOsBPzcR/kYUFIez3bNmS8B650baKl\n"
    "egdI+Ka7d5401QO6umheCvYcoLga3TPl98bBssAxu9nMZIaQbZOSJerFTr5bwrJU\n"
    "4GnSuBe/q7FHAoLioFXoVYlvWQBxxZjg4RozfAIR6ZzIGYvRL+EXK0MRkx8/g7Hk\n"
    "2hDisJ5fHdVRg+ZbXAn9nE8NJOhSSKtn9SggSodh0/aKC18KF4bWu/KhJ6AHs0Iu\n"
    "ojDsvTzRn5CjtPt6yFjsRCzUQ6B7eSSuXTkiW+oozLrCh/f85gIbS5S2QGuaTOXT\n"
    "bhjsU67nnsBATYasMKcCTtcJrAxDuw1al/kyVTe1Kr7HGbNakkXI+30n5uB01Ym2\n"
    "LW23EQB3ByfyY9fS6iIjKM9CvOvKVChz1OIyDrwygXmo8eOP/Bu7KBt8Oweb1n6A\n"
    "z59MG1omyZLwo4hIeFnV3YFeea+GRZgJ26N6zZTwyL6dLqpTFP0vmUsmUW21Hpdz\n"
    "szDEkJsySARD+l9fApk4rqw1iJe77ol5TN8NfEM/wQwQ2ZKO28y2ov/n05gVUdVQ\n"
    "dvzIAkiPw8Ot2CFZmiygaupIFvjHvjjJ7S+V7gvDTRYmnntGW+KUu3urConW3SUK\n"
    "nv919maqQbV5fBEGslzo6dTK7+sE6jzSfgzfj6ZNHGLjj20bq0otE2eVladh7t+u\n"
    "SGh+1lEhZVR3OfVanFo0mvDX//QKcD7Vw+8I6RgOShKRnMI3XlRhOGU6eZVYg1fJ\n"
    "1noXy+BTQhU3FudCsHxQKMKaDEWRxNpcIqF+SdrWc2lgQ75f5ks+K6ibis8lyXvl\n"
    "J/Gz8zVgx5wxH7gJNEBO9aXbRZXTptE8btmFbr1oqo7FHy/oZS09PuHyfi3QD9OB\n"
    "OzE7irXTFcGGCqTF9QJcvNCgHKX/gj2gzX3GfkF2hC1ZDZ7bo20UNbua/Eb0mw/z\n"
    "uOh2FBbu0dmiZJfgOiKmSc2M7QW+I9vnFctovbo0T0EAKimMPNVTa8F8JTYIuBna\n"
    "ZYTJoOuJ/Z1E7Wq4aJucjDq5VWymdqzqDy9/mOCyLsngC3RtUaBjnK4b2i4q0Olo\n"
    "x/usnmSXMjOnrJ7mBklwBETfe86M1QwybU6J5lUbyPrh6Gk8e6jSUCbKFAOvvQWo\n"
    "9uJbYd3gyR6KAt9Jy8ur1MkL254xiOadllHhB6VUo3sx83Zqr0tNNH2UX1chwWaS\n"
    "y4cCAwEAAQ==\n"
    "-----END PUBLIC KEY-----\n"
    ;

//  RFC 8032, 7.1, TEST 1 (empty message)
static const char s_test_ed_secret [] =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char s_test_ed_public [] =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
static const char s_test_ed_signature [] =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

static bool
s_streq (const char *a, const char *b)
{
    return strcmp (a, b) == 0;
}

static void
s_test_refused_key (EVP_PKEY *key, const char *expect)
{
    char reason [256] = "";
    assert (key);
    assert (umb_sig_key_check (key, reason, sizeof (reason)) == UMB_SIG_KEY_NONE);
    assert (strstr (reason, expect));
    //  Neither signing nor verifying works with it
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    const uint8_t msg [] = "m";
    assert (umb_sig_sign (key, msg, 1, &sig, &sig_len) == -1);
    assert (sig == NULL);
    uint8_t fake [64] = { 1 };
    assert (umb_sig_verify (key, msg, 1, fake, sizeof (fake), reason, sizeof (reason)) == -1);
    //  Nor does its PEM load as a participant key
    char *pem = umb_sig_public_pem (key);
    assert (pem);
    assert (umb_sig_public_load_pem (pem, strlen (pem), reason, sizeof (reason)) == NULL);
    assert (strstr (reason, expect));
    free (pem);
}


static void
s_test_write (const char *path, const uint8_t *data, size_t size)
{
    FILE *file = fopen (path, "w");
    assert (file);
    assert (fwrite (data, 1, size, file) == size);
    fclose (file);
}

//  Reads a whole small file; *size gets its length; the caller frees it
static uint8_t *
s_test_read (const char *path, size_t *size)
{
    FILE *file = fopen (path, "r");
    assert (file);
    uint8_t *data = malloc (4096);
    assert (data);
    *size = fread (data, 1, 4096, file);
    fclose (file);
    return data;
}

//  The openssl command that signs (or verifies) a statement with key type t
//  (0 Ed25519, 1 P-256, 2 P-384, 3 RSA), exactly as the spec says
static void
s_test_command (char *command, size_t size, int t, bool sign,
                const char *key, const char *stmt, const char *sig)
{
    static const char *digests [] = { "", "-sha256", "-sha384",
        "-sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256" };
    if (t == 0 && sign)
        snprintf (command, size, "openssl pkeyutl -sign -rawin -inkey %s -in %s -out %s", key, stmt, sig);
    else
    if (t == 0)
        snprintf (command, size, "openssl pkeyutl -verify -rawin -pubin -inkey %s -in %s -sigfile %s"
                  " >/dev/null 2>&1", key, stmt, sig);
    else
    if (sign)
        snprintf (command, size, "openssl dgst %s -sign %s -out %s %s", digests [t], key, sig, stmt);
    else
        snprintf (command, size, "openssl dgst %s -verify %s -signature %s %s >/dev/null 2>&1",
                  digests [t], key, sig, stmt);
}

//  Signatures interoperate with the openssl command line, both ways:
//  openssl signs, umb_sig verifies; umb_sig signs, openssl verifies.
//  Returns false (skipped) if there is no openssl command.
static bool
s_test_openssl_interop (EVP_PKEY **keys, const uint8_t *stmt, size_t stmt_len)
{
    if (system ("openssl version >/dev/null 2>&1") != 0)
        return false;
    char dir [] = "/tmp/umb_sig_openssl.XXXXXX";
    assert (mkdtemp (dir));
    static const char *names [] = { "ed25519", "p256", "p384", "rsa" };
    char key_path [PATH_MAX], pub_path [PATH_MAX], stmt_path [PATH_MAX], other_path [PATH_MAX];
    char sig_path [PATH_MAX], command [4 * PATH_MAX + 256], reason [256];
    snprintf (stmt_path, sizeof (stmt_path), "%s/statement", dir);
    snprintf (other_path, sizeof (other_path), "%s/other", dir);
    snprintf (sig_path, sizeof (sig_path), "%s/signature", dir);
    s_test_write (stmt_path, stmt, stmt_len);
    uint8_t *other = malloc (stmt_len);
    assert (other);
    memcpy (other, stmt, stmt_len);
    other [stmt_len - 1] ^= 0x80;               //  another challenge
    s_test_write (other_path, other, stmt_len);
    free (other);
    for (int t = 0; t < 4; t++) {
        snprintf (key_path, sizeof (key_path), "%s/%s.key", dir, names [t]);
        snprintf (pub_path, sizeof (pub_path), "%s/%s.pub", dir, names [t]);
        assert (umb_sig_key_save (keys [t], key_path, pub_path, reason, sizeof (reason)) == 0);
        EVP_PKEY *pub = umb_sig_public_load (pub_path, reason, sizeof (reason));
        assert (pub);
        //  openssl signs, we verify (and refuse one flipped bit)
        s_test_command (command, sizeof (command), t, true, key_path, stmt_path, sig_path);
        assert (system (command) == 0);
        size_t sig_len = 0;
        uint8_t *sig = s_test_read (sig_path, &sig_len);
        assert (umb_sig_verify (pub, stmt, stmt_len, sig, sig_len, reason, sizeof (reason)) == 0);
        sig [sig_len / 2] ^= 0x04;
        assert (umb_sig_verify (pub, stmt, stmt_len, sig, sig_len, reason, sizeof (reason)) == -1);
        free (sig);
        unlink (sig_path);
        //  We sign, openssl verifies; and refuses it over another challenge
        assert (umb_sig_sign (keys [t], stmt, stmt_len, &sig, &sig_len) == 0);
        s_test_write (sig_path, sig, sig_len);
        free (sig);
        s_test_command (command, sizeof (command), t, false, pub_path, stmt_path, sig_path);
        assert (system (command) == 0);
        s_test_command (command, sizeof (command), t, false, pub_path, other_path, sig_path);
        assert (system (command) != 0);
        unlink (sig_path);
        unlink (key_path);
        unlink (pub_path);
        EVP_PKEY_free (pub);
    }
    unlink (stmt_path);
    unlink (other_path);
    assert (rmdir (dir) == 0);
    return true;
}

void
umb_sig_test (bool verbose)
{
    printf (" * umb_sig: ");
    char reason [256];

    //  SHA3-256 known answers (FIPS 202 examples), whole and streamed
    uint8_t digest [32], expect [32];
    umb_sig_sha3 ("", 0, digest);
    assert (umb_hex_decode ("a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a", expect, 32) == 0);
    assert (memcmp (digest, expect, 32) == 0);
    umb_sig_sha3 ("abc", 3, digest);
    assert (umb_hex_decode ("3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532", expect, 32) == 0);
    assert (memcmp (digest, expect, 32) == 0);
    umb_sig_sha3_t *sha3 = umb_sig_sha3_new ();
    assert (sha3);
    umb_sig_sha3_update (sha3, "a", 1);
    umb_sig_sha3_update (sha3, "", 0);
    umb_sig_sha3_update (sha3, "bc", 2);
    umb_sig_sha3_final (sha3, digest);
    umb_sig_sha3_destroy (&sha3);
    umb_sig_sha3_destroy (&sha3);
    assert (sha3 == NULL);
    assert (memcmp (digest, expect, 32) == 0);

    //  A file over several chunks hashes as the whole buffer does
    char dir [] = "/tmp/umb_sig_test.XXXXXX";
    assert (mkdtemp (dir));
    char path [PATH_MAX], path2 [PATH_MAX];
    snprintf (path, sizeof (path), "%s/blob", dir);
    size_t blob_size = 3 * S_FILE_CHUNK + 1234;
    uint8_t *blob = malloc (blob_size);
    assert (blob);
    for (size_t i = 0; i < blob_size; i++)
        blob [i] = (uint8_t) (i * 7 + (i >> 9));
    FILE *file = fopen (path, "w");
    assert (file);
    assert (fwrite (blob, 1, blob_size, file) == blob_size);
    fclose (file);
    uint64_t file_size = 0;
    assert (umb_sig_sha3_file (path, digest, &file_size, reason, sizeof (reason)) == 0);
    assert (file_size == blob_size);
    umb_sig_sha3 (blob, blob_size, expect);
    assert (memcmp (digest, expect, 32) == 0);
    free (blob);
    unlink (path);
    assert (umb_sig_sha3_file (path, digest, NULL, reason, sizeof (reason)) == -1);
    assert (strstr (reason, "cannot open"));
    assert (umb_sig_sha3_file (dir, digest, NULL, reason, sizeof (reason)) == -1);

    //  Statements: exact bytes
    uint8_t hash [32], challenge [32], other_challenge [32];
    for (int i = 0; i < 32; i++) {
        hash [i] = (uint8_t) i;
        challenge [i] = (uint8_t) (0xa0 + i);
        other_challenge [i] = (uint8_t) (0xa0 + i);
    }
    other_challenge [31] ^= 1;
    static const uint8_t upload_kat [] = {
        'u','m','b','r','a','-','u','p','l','o','a','d','-','v','1', 0x00,
        'd','a','t','a','s','e','t', 0x00,
        'c','-','4','2', 0x00,
        0x00,0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08,0x09,0x0a,0x0b,0x0c,0x0d,0x0e,0x0f,
        0x10,0x11,0x12,0x13,0x14,0x15,0x16,0x17,0x18,0x19,0x1a,0x1b,0x1c,0x1d,0x1e,0x1f,
        0xa0,0xa1,0xa2,0xa3,0xa4,0xa5,0xa6,0xa7,0xa8,0xa9,0xaa,0xab,0xac,0xad,0xae,0xaf,
        0xb0,0xb1,0xb2,0xb3,0xb4,0xb5,0xb6,0xb7,0xb8,0xb9,0xba,0xbb,0xbc,0xbd,0xbe,0xbf
    };
    static const uint8_t result_kat [] = {
        'u','m','b','r','a','-','r','e','s','u','l','t','-','v','1', 0x00,
        'c','-','4','2', 0x00,
        0xa0,0xa1,0xa2,0xa3,0xa4,0xa5,0xa6,0xa7,0xa8,0xa9,0xaa,0xab,0xac,0xad,0xae,0xaf,
        0xb0,0xb1,0xb2,0xb3,0xb4,0xb5,0xb6,0xb7,0xb8,0xb9,0xba,0xbb,0xbc,0xbd,0xbe,0xbf
    };
    uint8_t stmt [UMB_SIG_STATEMENT_MAX];
    ssize_t stmt_len = umb_sig_statement_upload ("dataset", "c-42", hash, challenge, stmt, sizeof (stmt));
    assert (stmt_len == (ssize_t) sizeof (upload_kat));
    assert (memcmp (stmt, upload_kat, sizeof (upload_kat)) == 0);
    ssize_t algo_len = umb_sig_statement_upload ("algorithm", "c-42", hash, challenge, stmt, sizeof (stmt));
    assert (algo_len == stmt_len + 2);
    assert (memcmp (stmt + 16, "algorithm\0c-42\0", 15) == 0);
    assert (umb_sig_statement_result ("c-42", challenge, stmt, sizeof (stmt)) == (ssize_t) sizeof (result_kat));
    assert (memcmp (stmt, result_kat, sizeof (result_kat)) == 0);
    //  Refused: unknown role, empty or too long id, small buffer
    assert (umb_sig_statement_upload ("result", "c", hash, challenge, stmt, sizeof (stmt)) == -1);
    assert (umb_sig_statement_upload (NULL, "c", hash, challenge, stmt, sizeof (stmt)) == -1);
    assert (umb_sig_statement_upload ("dataset", "", hash, challenge, stmt, sizeof (stmt)) == -1);
    assert (umb_sig_statement_result ("", challenge, stmt, sizeof (stmt)) == -1);
    char long_id [UMB_SIG_ID_MAX + 2];
    memset (long_id, 'x', sizeof (long_id) - 1);
    long_id [sizeof (long_id) - 1] = 0;
    assert (umb_sig_statement_result (long_id, challenge, stmt, sizeof (stmt)) == -1);
    long_id [UMB_SIG_ID_MAX] = 0;               //  exactly the maximum fits
    assert (umb_sig_statement_upload ("algorithm", long_id, hash, challenge, stmt, sizeof (stmt)) > 0);
    assert (umb_sig_statement_upload ("dataset", "c-42", hash, challenge, stmt, sizeof (upload_kat) - 1) == -1);
    assert (umb_sig_statement_result ("c-42", challenge, stmt, sizeof (result_kat) - 1) == -1);

    //  Ed25519 known answer (RFC 8032 test 1): our signature is the RFC's
    uint8_t ed_secret [32], ed_public [32], ed_expect [64];
    assert (umb_hex_decode (s_test_ed_secret, ed_secret, 32) == 0);
    assert (umb_hex_decode (s_test_ed_public, ed_public, 32) == 0);
    assert (umb_hex_decode (s_test_ed_signature, ed_expect, 64) == 0);
    EVP_PKEY *ed_priv = EVP_PKEY_new_raw_private_key (EVP_PKEY_ED25519, NULL, ed_secret, 32);
    EVP_PKEY *ed_pub = EVP_PKEY_new_raw_public_key (EVP_PKEY_ED25519, NULL, ed_public, 32);
    OPENSSL_cleanse (ed_secret, sizeof (ed_secret));
    assert (ed_priv && ed_pub);
    assert (umb_sig_key_equal (ed_priv, ed_pub));
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    assert (umb_sig_sign (ed_priv, (const uint8_t *) "", 0, &sig, &sig_len) == 0);
    assert (sig_len == 64 && memcmp (sig, ed_expect, 64) == 0);
    free (sig);
    assert (umb_sig_verify (ed_pub, (const uint8_t *) "", 0, ed_expect, 64, reason, sizeof (reason)) == 0);
    EVP_PKEY_free (ed_priv);
    EVP_PKEY_free (ed_pub);

    //  Every allowed type: round trip; every wrong key, flipped bit and
    //  other challenge refused
    static const char *types [] = { "ed25519", "ecdsa", "ecdsa-p384", "rsa" };
    static const umb_sig_key_type_t expect_types [] = {
        UMB_SIG_KEY_ED25519, UMB_SIG_KEY_ECDSA_P256, UMB_SIG_KEY_ECDSA_P384, UMB_SIG_KEY_RSA
    };
    EVP_PKEY *keys [4], *others [4];
    for (int t = 0; t < 4; t++) {
        keys [t] = umb_sig_key_generate (types [t]);
        assert (keys [t]);
        assert (umb_sig_key_check (keys [t], NULL, 0) == expect_types [t]);
    }
    others [0] = umb_sig_key_generate ("ed25519");
    others [1] = umb_sig_key_generate ("ecdsa-p256");
    others [2] = umb_sig_key_generate ("ecdsa-p384");
    //  The second RSA key is 2048 bits: the minimum is allowed too
    others [3] = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 2048);
    for (int t = 0; t < 4; t++)
        assert (others [t] && umb_sig_key_check (others [t], NULL, 0) == expect_types [t]);
    assert (EVP_PKEY_get_bits (keys [3]) == 3072);
    assert (umb_sig_key_generate ("dsa") == NULL);
    EVP_PKEY *alias = umb_sig_key_generate ("ec-p384");
    assert (alias && umb_sig_key_check (alias, NULL, 0) == UMB_SIG_KEY_ECDSA_P384);
    EVP_PKEY_free (alias);
    alias = umb_sig_key_generate ("ec-p256");
    assert (alias && umb_sig_key_check (alias, NULL, 0) == UMB_SIG_KEY_ECDSA_P256);
    EVP_PKEY_free (alias);
    assert (umb_sig_key_generate ("ecdsa-p521") == NULL);

    stmt_len = umb_sig_statement_upload ("dataset", "c-42", hash, challenge, stmt, sizeof (stmt));
    uint8_t other_stmt [UMB_SIG_STATEMENT_MAX];
    ssize_t other_len = umb_sig_statement_upload ("dataset", "c-42", hash, other_challenge,
                                                  other_stmt, sizeof (other_stmt));
    assert (other_len == stmt_len);
    for (int t = 0; t < 4; t++) {
        assert (umb_sig_sign (keys [t], stmt, (size_t) stmt_len, &sig, &sig_len) == 0);
        if (t == 0)
            assert (sig_len == 64);
        if (t == 3)
            assert (sig_len == 384);
        //  Public half only, through PEM, as the agent has it
        char *pem = umb_sig_public_pem (keys [t]);
        assert (pem && strstr (pem, "-----BEGIN PUBLIC KEY-----"));
        EVP_PKEY *pub = umb_sig_public_load_pem (pem, strlen (pem), reason, sizeof (reason));
        assert (pub);
        assert (umb_sig_key_equal (pub, keys [t]));
        assert (!umb_sig_key_equal (pub, others [t]));
        assert (!umb_sig_key_equal (pub, NULL));
        assert (umb_sig_verify (pub, stmt, (size_t) stmt_len, sig, sig_len, reason, sizeof (reason)) == 0);
        //  Another key of the same type, and keys of every other type
        assert (umb_sig_verify (others [t], stmt, (size_t) stmt_len, sig, sig_len, reason, sizeof (reason)) == -1);
        for (int u = 0; u < 4; u++)
            if (u != t)
                assert (umb_sig_verify (keys [u], stmt, (size_t) stmt_len, sig, sig_len,
                                        reason, sizeof (reason)) == -1);
        //  Over another challenge
        assert (umb_sig_verify (pub, other_stmt, (size_t) other_len, sig, sig_len, reason, sizeof (reason)) == -1);
        //  One flipped bit in the statement, anywhere
        for (ssize_t i = 0; i < stmt_len; i += 7) {
            stmt [i] ^= 0x10;
            assert (umb_sig_verify (pub, stmt, (size_t) stmt_len, sig, sig_len, reason, sizeof (reason)) == -1);
            stmt [i] ^= 0x10;
        }
        //  One flipped bit in the signature, anywhere
        for (size_t i = 0; i < sig_len; i += 5) {
            sig [i] ^= 0x01;
            assert (umb_sig_verify (pub, stmt, (size_t) stmt_len, sig, sig_len, reason, sizeof (reason)) == -1);
            sig [i] ^= 0x01;
        }
        //  Truncated, extended, empty
        assert (umb_sig_verify (pub, stmt, (size_t) stmt_len, sig, sig_len - 1, reason, sizeof (reason)) == -1);
        uint8_t *longer = malloc (sig_len + 1);
        assert (longer);
        memcpy (longer, sig, sig_len);
        longer [sig_len] = 0;
        assert (umb_sig_verify (pub, stmt, (size_t) stmt_len, longer, sig_len + 1, reason, sizeof (reason)) == -1);
        free (longer);
        assert (umb_sig_verify (pub, stmt, (size_t) stmt_len, sig, 0, reason, sizeof (reason)) == -1);
        assert (umb_sig_verify (pub, stmt, (size_t) stmt_len, NULL, 0, reason, sizeof (reason)) == -1);
        //  Untouched, it still verifies
        assert (umb_sig_verify (pub, stmt, (size_t) stmt_len, sig, sig_len, reason, sizeof (reason)) == 0);
        //  A result statement is not an upload statement
        uint8_t result_stmt [UMB_SIG_STATEMENT_MAX];
        ssize_t result_len = umb_sig_statement_result ("c-42", challenge, result_stmt, sizeof (result_stmt));
        assert (umb_sig_verify (pub, result_stmt, (size_t) result_len, sig, sig_len, reason, sizeof (reason)) == -1);
        free (sig);
        free (pem);
        EVP_PKEY_free (pub);
    }

    //  RSA-PSS with another salt length than 32 is refused
    {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
        EVP_PKEY_CTX *pctx = NULL;
        assert (EVP_DigestSignInit_ex (ctx, &pctx, "SHA256", NULL, NULL, keys [3], NULL) == 1);
        assert (EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PSS_PADDING) == 1);
        assert (EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, 20) == 1);
        uint8_t rsa_sig [384];
        size_t rsa_len = sizeof (rsa_sig);
        assert (EVP_DigestSign (ctx, rsa_sig, &rsa_len, stmt, (size_t) stmt_len) == 1);
        EVP_MD_CTX_free (ctx);
        assert (umb_sig_verify (keys [3], stmt, (size_t) stmt_len, rsa_sig, rsa_len, reason, sizeof (reason)) == -1);
        //  Nor PKCS#1 v1.5
        ctx = EVP_MD_CTX_new ();
        assert (EVP_DigestSignInit_ex (ctx, NULL, "SHA256", NULL, NULL, keys [3], NULL) == 1);
        rsa_len = sizeof (rsa_sig);
        assert (EVP_DigestSign (ctx, rsa_sig, &rsa_len, stmt, (size_t) stmt_len) == 1);
        EVP_MD_CTX_free (ctx);
        assert (umb_sig_verify (keys [3], stmt, (size_t) stmt_len, rsa_sig, rsa_len, reason, sizeof (reason)) == -1);
    }
    //  ECDSA P-384 signed over SHA-256 is refused (the digest is fixed per curve)
    {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
        assert (EVP_DigestSignInit_ex (ctx, NULL, "SHA256", NULL, NULL, keys [2], NULL) == 1);
        uint8_t ec_sig [128];
        size_t ec_len = sizeof (ec_sig);
        assert (EVP_DigestSign (ctx, ec_sig, &ec_len, stmt, (size_t) stmt_len) == 1);
        EVP_MD_CTX_free (ctx);
        assert (umb_sig_verify (keys [2], stmt, (size_t) stmt_len, ec_sig, ec_len, reason, sizeof (reason)) == -1);
    }

    //  Keys umbra does not allow
    EVP_PKEY *bad = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "secp256k1");
    s_test_refused_key (bad, "secp256k1");
    EVP_PKEY_free (bad);
    bad = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-521");
    s_test_refused_key (bad, "not allowed");
    EVP_PKEY_free (bad);
    bad = EVP_PKEY_Q_keygen (NULL, NULL, "X25519");
    s_test_refused_key (bad, "X25519");
    EVP_PKEY_free (bad);
    bad = EVP_PKEY_Q_keygen (NULL, NULL, "ED448");
    s_test_refused_key (bad, "ED448");
    EVP_PKEY_free (bad);
    bad = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 1024);
    s_test_refused_key (bad, "1024 bits");
    EVP_PKEY_free (bad);
    assert (umb_sig_public_load_pem (s_test_rsa8200_pem, strlen (s_test_rsa8200_pem),
                                     reason, sizeof (reason)) == NULL);
    assert (strstr (reason, "8200 bits"));
    assert (umb_sig_verify (NULL, stmt, 1, stmt, 1, reason, sizeof (reason)) == -1);

    //  Malformed PEM
    assert (umb_sig_public_load_pem ("", 0, reason, sizeof (reason)) == NULL);
    assert (umb_sig_public_load_pem ("hello", 5, reason, sizeof (reason)) == NULL);
    assert (strstr (reason, "not a PEM public key"));
    char *pem = umb_sig_public_pem (keys [0]);
    char *pem2 = umb_sig_public_pem (keys [1]);
    size_t pem_len = strlen (pem);
    //  Two keys, or junk after the key, are refused
    char *both = malloc (pem_len + strlen (pem2) + 1);
    assert (both);
    strcpy (both, pem);
    strcat (both, pem2);
    assert (umb_sig_public_load_pem (both, strlen (both), reason, sizeof (reason)) == NULL);
    assert (strstr (reason, "after"));
    strcpy (both, pem);
    strcat (both, "\n  \n");
    EVP_PKEY *pub = umb_sig_public_load_pem (both, strlen (both), reason, sizeof (reason));
    assert (pub);
    EVP_PKEY_free (pub);
    free (both);
    //  A corrupted body
    pem [40] = pem [40] == 'A' ? 'B' : 'A';
    pub = umb_sig_public_load_pem (pem, pem_len, reason, sizeof (reason));
    assert (pub == NULL || !umb_sig_key_equal (pub, keys [0]));
    EVP_PKEY_free (pub);
    //  Truncated
    assert (umb_sig_public_load_pem (pem2, strlen (pem2) / 2, reason, sizeof (reason)) == NULL);
    free (pem);
    free (pem2);

    //  Save and load: 0600 private, 0644 public, never overwritten
    snprintf (path, sizeof (path), "%s/k.key", dir);
    snprintf (path2, sizeof (path2), "%s/k.pub", dir);
    assert (umb_sig_key_save (keys [1], path, path2, reason, sizeof (reason)) == 0);
    struct stat st;
    assert (stat (path, &st) == 0 && (st.st_mode & 0777) == 0600);
    assert (stat (path2, &st) == 0 && (st.st_mode & 0777) == 0644);
    assert (umb_sig_key_save (keys [0], path, path2, reason, sizeof (reason)) == -1);
    assert (strstr (reason, "exists"));
    EVP_PKEY *loaded = umb_sig_private_load (path, reason, sizeof (reason));
    assert (loaded && umb_sig_key_equal (loaded, keys [1]));
    //  The loaded private key signs what the saved public key verifies
    pub = umb_sig_public_load (path2, reason, sizeof (reason));
    assert (pub && umb_sig_key_equal (pub, keys [1]));
    assert (umb_sig_sign (loaded, stmt, (size_t) stmt_len, &sig, &sig_len) == 0);
    assert (umb_sig_verify (pub, stmt, (size_t) stmt_len, sig, sig_len, reason, sizeof (reason)) == 0);
    free (sig);
    EVP_PKEY_free (loaded);
    EVP_PKEY_free (pub);
    //  A public key is not a private key, and vice versa
    assert (umb_sig_private_load (path2, reason, sizeof (reason)) == NULL);
    assert (umb_sig_public_load (path, reason, sizeof (reason)) == NULL);
    unlink (path2);
    //  The public file exists: neither is written (the private stays absent)
    unlink (path);
    file = fopen (path2, "w");
    assert (file);
    fclose (file);
    assert (umb_sig_key_save (keys [1], path, path2, reason, sizeof (reason)) == -1);
    assert (access (path, F_OK) != 0);
    unlink (path2);
    //  Private only
    assert (umb_sig_key_save (keys [3], path, NULL, reason, sizeof (reason)) == 0);
    loaded = umb_sig_private_load (path, reason, sizeof (reason));
    assert (loaded && umb_sig_key_equal (loaded, keys [3]));
    EVP_PKEY_free (loaded);
    unlink (path);
    //  Unwritable place
    snprintf (path, sizeof (path), "%s/missing/k.key", dir);
    assert (umb_sig_key_save (keys [0], path, NULL, reason, sizeof (reason)) == -1);
    //  An encrypted private key is refused, without asking for a passphrase
    snprintf (path, sizeof (path), "%s/enc.key", dir);
    BIO *bio = BIO_new_file (path, "w");
    assert (bio);
    assert (PEM_write_bio_PKCS8PrivateKey (bio, keys [0], EVP_aes_256_cbc (), "pass", 4, NULL, NULL) == 1);
    BIO_free (bio);
    assert (umb_sig_private_load (path, reason, sizeof (reason)) == NULL);
    assert (strstr (reason, "unencrypted"));
    unlink (path);
    //  A private key of a refused type
    bad = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 1024);
    bio = BIO_new_file (path, "w");
    assert (bio && PEM_write_bio_PrivateKey (bio, bad, NULL, NULL, 0, NULL, NULL) == 1);
    BIO_free (bio);
    EVP_PKEY_free (bad);
    assert (umb_sig_private_load (path, reason, sizeof (reason)) == NULL);
    assert (strstr (reason, "1024"));
    unlink (path);
    assert (umb_sig_private_load (path, reason, sizeof (reason)) == NULL);
    assert (strstr (reason, "cannot open"));
    //  No temporary file was left behind: the directory is empty
    assert (rmdir (dir) == 0);

    bool interop = s_test_openssl_interop (keys, stmt, (size_t) stmt_len);
    if (!interop)
        printf ("(no openssl command: interop skipped) ");
    for (int t = 0; t < 4; t++) {
        EVP_PKEY_free (keys [t]);
        EVP_PKEY_free (others [t]);
    }
    assert (umb_sig_key_type_name (UMB_SIG_KEY_RSA) && s_streq (umb_sig_key_type_name (UMB_SIG_KEY_NONE), "none"));
    if (verbose)
        printf ("(4 key types, KATs%s) ", interop ? ", openssl CLI interop" : "");
    printf ("OK\n");
}
