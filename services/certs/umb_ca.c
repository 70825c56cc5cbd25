//  umb_ca - the platform's CA: root, issuing CA and OCSP signer in a directory; issuance, CRLs
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libgen.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include "umb_ca.h"
#include "umb_utf8.h"

#define UMB_CA_DAY              86400
#define UMB_CA_ROOT_DAYS        7305            //  20 years
#define UMB_CA_ISSUING_DAYS     3653            //  10 years
#define UMB_CA_OCSP_DAYS        365
#define UMB_CA_OCSP_RENEW_DAYS  30
#define UMB_CA_TTL_MIN          60
#define UMB_CA_TTL_MAX          (825 * UMB_CA_DAY)
#define UMB_CA_NAME_MAX         64
#define UMB_CA_DNS_MAX          253
#define UMB_CA_URI_MAX          1024
#define UMB_CA_SANS_MAX         100
#define UMB_CA_FILE_MAX         (64 * 1024)
#define UMB_CA_SERIAL_BYTES     16
#define UMB_CA_X25519_SIZE      32

//  KeyUsage bit positions (RFC 5280 4.2.1.3).
#define UMB_CA_KU_DIGITAL_SIGNATURE 0
#define UMB_CA_KU_KEY_ENCIPHERMENT  2
#define UMB_CA_KU_KEY_AGREEMENT     4
#define UMB_CA_KU_KEY_CERT_SIGN     5
#define UMB_CA_KU_CRL_SIGN          6

static const char *const s_key_type_names [] = { "ec-p256", "rsa-3072", "ed25519" };

//  Indexed by reason code; 7 is not assigned.
static const char *const s_reason_names [] = {
    "unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
    "cessationOfOperation", "certificateHold", NULL, "removeFromCRL", "privilegeWithdrawn",
    "aACompromise"
};

static const char *const s_reserved_names [] = {
    "umbra root CA", "umbra issuing CA", "umbra OCSP signer"
};

//  One issuing CA: the first in the CA directory itself, each later one (made
//  by umb_ca_rotate) in issuers/<serial>/. Its files never move.
typedef struct {
    char             *key_path, *cert_path;
    char             *ocsp_key_path, *ocsp_cert_path;
    X509             *cert, *ocsp;
    EVP_PKEY         *ocsp_key;
    umb_ca_key_type_t key_type;         //  of its key; its OCSP signers get it too
    char             *chain_pem;        //  its certificate, then the root
    char             *crl_url;          //  what its certificates name, or NULL
    char              id [41];          //  its certificate's serial
} s_issuer_t;

struct _umb_ca_t {
    umb_log_t        *log;              //  borrowed, may be NULL
    char             *dir;
    char             *root_key_path, *root_cert_path;
    char             *issuers_dir;      //  dir/issuers
    char             *current_path;     //  dir/current: the current issuer's id, once rotated
    char             *ocsp_url;         //  NULL: issued certificates carry no AIA
    char             *crl_url;          //  NULL: ... no CRL distribution point
    umb_ca_key_type_t key_type;         //  what a new issuing CA is made of
    X509             *root;
    char             *root_pem;
    //  Append-only while loaded: a rotation fills the next slot, then
    //  publishes it by raising issuer_count, then moves current (both
    //  release stores, read with acquire), so readers on other threads see
    //  whole issuers only
    s_issuer_t        issuers [UMB_CA_ISSUERS_MAX];
    size_t            issuer_count;     //  the first, then the later ones, oldest first
    size_t            current;          //  the one that issues
};

static size_t
s_issuer_count (umb_ca_t *self)
{
    return __atomic_load_n (&self->issuer_count, __ATOMIC_ACQUIRE);
}

static size_t
s_current (umb_ca_t *self)
{
    return __atomic_load_n (&self->current, __ATOMIC_ACQUIRE);
}

static bool
s_streq (const char *left, const char *right)
{
    return strcmp (left, right) == 0;
}

static void s_ssl_error (umb_log_t *log, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
static int s_refuse (char *reason, size_t reason_size, int status, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

//  OpenSSL keeps a per-thread error queue: its last entry is logged once, and
//  the queue emptied so a stale error never surfaces under a later call.
static void
s_ssl_error (umb_log_t *log, const char *format, ...)
{
    char what [512];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof (what), format, args);
    va_end (args);
    char detail [256] = "no detail from OpenSSL";
    unsigned long code = ERR_peek_last_error ();
    if (code)
        ERR_error_string_n (code, detail, sizeof (detail));
    umb_log_error (log, "ca: %s: %s", what, detail);
    ERR_clear_error ();
}

static int
s_refuse (char *reason, size_t reason_size, int status, const char *format, ...)
{
    if (reason && reason_size) {
        va_list args;
        va_start (args, format);
        vsnprintf (reason, reason_size, format, args);
        va_end (args);
    }
    return status;
}

//  Peer text echoed in a reason: printable ASCII only, and not too long.
static void
s_printable (const char *text, char *out, size_t size)
{
    assert (size > 4);
    size_t at = 0;
    for (; *text && at + 4 < size; text++)
        out [at++] = (*text >= 0x20 && *text < 0x7f) ? *text : '?';
    if (*text)
        memcpy (out + at, "...", 3), at += 3;
    out [at] = 0;
}

static char *
s_path (const char *dir, const char *name)
{
    char *path = NULL;
    if (asprintf (&path, "%s/%s", dir, name) < 0)
        return NULL;
    return path;
}

static void
s_hex (const unsigned char *data, size_t size, char *hex)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        hex [2 * i] = digits [data [i] >> 4];
        hex [2 * i + 1] = digits [data [i] & 15];
    }
    hex [2 * size] = 0;
}

static int64_t
s_time_unix (const ASN1_TIME *time)
{
    struct tm tm;
    if (!time || ASN1_TIME_to_tm (time, &tm) != 1) {
        ERR_clear_error ();
        return -1;
    }
    return (int64_t) timegm (&tm);
}

//  ---------------------------------------------------------------------------
//  Files

//  0 and *data (NUL-terminated; caller frees, and wipes it if secret), 1 if
//  there is no such file, -1 on error (logged). A secret file must be a
//  regular file, not a symbolic link, with no group or other permission.
static int
s_file_read (umb_ca_t *self, const char *path, bool secret, char **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    int fd = open (path, O_RDONLY | O_CLOEXEC | (secret ? O_NOFOLLOW : 0));
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        umb_log_error (self->log, "ca: cannot open %s: %s", path, strerror (errno));
        return -1;
    }
    struct stat st;
    if (fstat (fd, &st) || !S_ISREG (st.st_mode) || st.st_size > UMB_CA_FILE_MAX) {
        umb_log_error (self->log, "ca: %s is not a regular file of at most %d bytes", path,
                       UMB_CA_FILE_MAX);
        close (fd);
        return -1;
    }
    if (secret && (st.st_mode & 077)) {
        umb_log_error (self->log, "ca: %s is accessible by group or others (mode %03o); "
                       "refusing it", path, (unsigned) (st.st_mode & 0777));
        close (fd);
        return -1;
    }
    size_t capacity = (size_t) st.st_size;
    char *buffer = malloc (capacity + 1);
    size_t used = 0;
    while (buffer && used < capacity) {
        ssize_t got = read (fd, buffer + used, capacity - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        used += (size_t) got;
    }
    close (fd);
    if (!buffer || used == 0) {
        umb_log_error (self->log, "ca: cannot read %s", path);
        free (buffer);
        return -1;
    }
    buffer [used] = 0;
    *data = buffer;
    *size = used;
    return 0;
}

static void
s_dir_sync (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync (fd);
        close (fd);
    }
}

//  The whole file is written under a temporary name first, so no reader
//  ever sees half of it, then linked into place: link fails if the name
//  exists, which settles a race between two processes creating the CA.
//  replace renames over an existing file instead. 0, or -1 with errno.
static int
s_file_publish (umb_ca_t *self, const char *path, const void *data, size_t size, mode_t mode,
                bool replace)
{
    uint32_t nonce = 0;
    if (RAND_bytes ((unsigned char *) &nonce, sizeof (nonce)) != 1)
        ERR_clear_error ();         //  O_EXCL still catches a collision
    char *temporary = NULL;
    if (asprintf (&temporary, "%s.tmp.%ld.%08x", path, (long) getpid (), (unsigned) nonce) < 0)
        return -1;
    int fd = open (temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        int saved = errno;
        free (temporary);
        errno = saved;
        return -1;
    }
    const char *bytes = data;
    size_t done = 0;
    errno = 0;
    while (done < size) {
        ssize_t wrote = write (fd, bytes + done, size - done);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            break;
        done += (size_t) wrote;
    }
    int rc = done == size && fsync (fd) == 0 ? 0 : -1;
    if (rc && errno == 0)
        errno = EIO;
    int saved = errno;
    close (fd);
    if (rc == 0) {
        rc = replace ? rename (temporary, path) : link (temporary, path);
        saved = errno;
    }
    unlink (temporary);
    free (temporary);
    if (rc == 0) {
        char *parent = strdup (path);
        if (parent)
            s_dir_sync (dirname (parent));
        free (parent);
    }
    errno = saved;
    return rc;
}

static int
s_no_passphrase (char *buffer, int size, int rwflag, void *state)
{
    return -1;                      //  keys are never encrypted; never prompt on a terminal
}

//  0 and *key, 1 if there is no key file, -1 on error (logged).
static int
s_key_read (umb_ca_t *self, const char *path, EVP_PKEY **key)
{
    *key = NULL;
    char *data;
    size_t size;
    int rc = s_file_read (self, path, true, &data, &size);
    if (rc)
        return rc;
    BIO *bio = BIO_new_mem_buf (data, (int) size);
    if (bio)
        *key = PEM_read_bio_PrivateKey (bio, NULL, s_no_passphrase, NULL);
    BIO_free (bio);
    OPENSSL_cleanse (data, size);
    free (data);
    if (!*key) {
        s_ssl_error (self->log, "%s is not a PEM private key", path);
        return -1;
    }
    return 0;
}

//  PKCS#8 PEM in a malloc'd buffer the caller wipes. The BIO lives in the
//  secure heap and is cleared when freed.
static char *
s_key_pem (EVP_PKEY *key, size_t *size)
{
    BIO *bio = BIO_new (BIO_s_secmem ());
    char *copy = NULL;
    if (bio && PEM_write_bio_PKCS8PrivateKey (bio, key, NULL, NULL, 0, NULL, NULL) == 1) {
        char *data = NULL;
        long length = BIO_get_mem_data (bio, &data);
        if (length > 0 && (copy = malloc ((size_t) length + 1))) {
            memcpy (copy, data, (size_t) length);
            copy [length] = 0;
            *size = (size_t) length;
        }
    }
    BIO_free (bio);
    return copy;
}

static char *
s_cert_pem (X509 *cert)
{
    BIO *bio = BIO_new (BIO_s_mem ());
    char *copy = NULL;
    if (bio && PEM_write_bio_X509 (bio, cert) == 1) {
        char *data = NULL;
        long length = BIO_get_mem_data (bio, &data);
        if (length > 0 && (copy = malloc ((size_t) length + 1))) {
            memcpy (copy, data, (size_t) length);
            copy [length] = 0;
        }
    }
    BIO_free (bio);
    return copy;
}

static EVP_PKEY *
s_keygen (umb_ca_key_type_t type)
{
    switch (type) {
        case UMB_CA_KEY_EC_P256:
            return EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
        case UMB_CA_KEY_RSA_3072:
            return EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 3072);
        case UMB_CA_KEY_ED25519:
            return EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
    }
    assert (false);
    return NULL;
}

//  The type we would make for this key, or -1.
static int
s_key_type_of (EVP_PKEY *key)
{
    char group [64];
    switch (EVP_PKEY_get_base_id (key)) {
        case EVP_PKEY_EC:
            if (EVP_PKEY_get_utf8_string_param (key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                sizeof (group), NULL) == 1
            &&  s_streq (group, "prime256v1"))
                return UMB_CA_KEY_EC_P256;
            ERR_clear_error ();
            return -1;
        case EVP_PKEY_RSA:
            return EVP_PKEY_get_bits (key) >= 3072 ? UMB_CA_KEY_RSA_3072 : -1;
        case EVP_PKEY_ED25519:
            return UMB_CA_KEY_ED25519;
    }
    return -1;
}

static const EVP_MD *
s_digest (EVP_PKEY *signer)
{
    int type = EVP_PKEY_get_base_id (signer);
    return type == EVP_PKEY_ED25519 || type == EVP_PKEY_ED448 ? NULL : EVP_sha256 ();
}

//  A new key pair in a new key file. 0600 from the first byte; if another
//  process wrote the file first, its key is the one.
static EVP_PKEY *
s_key_create (umb_ca_t *self, const char *path, umb_ca_key_type_t type, bool replace)
{
    EVP_PKEY *key = s_keygen (type);
    if (!key) {
        s_ssl_error (self->log, "cannot make a %s key", s_key_type_names [type]);
        return NULL;
    }
    size_t size = 0;
    char *pem = s_key_pem (key, &size);
    if (!pem) {
        s_ssl_error (self->log, "cannot encode a %s key", s_key_type_names [type]);
        EVP_PKEY_free (key);
        return NULL;
    }
    int rc = s_file_publish (self, path, pem, size, 0600, replace);
    int saved = errno;
    OPENSSL_cleanse (pem, size);
    free (pem);
    if (rc == 0) {
        umb_log_info (self->log, "ca: made %s (%s)", path, s_key_type_names [type]);
        return key;
    }
    EVP_PKEY_free (key);
    if (saved == EEXIST) {
        EVP_PKEY *theirs = NULL;
        s_key_read (self, path, &theirs);
        return theirs;
    }
    umb_log_error (self->log, "ca: cannot write %s: %s", path, strerror (saved));
    return NULL;
}

//  0 and *cert, 1 if there is no file, -1 on error (logged).
static int
s_cert_read (umb_ca_t *self, const char *path, X509 **cert)
{
    *cert = NULL;
    char *data;
    size_t size;
    int rc = s_file_read (self, path, false, &data, &size);
    if (rc)
        return rc;
    BIO *bio = BIO_new_mem_buf (data, (int) size);
    if (bio)
        *cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
    BIO_free (bio);
    free (data);
    if (!*cert) {
        s_ssl_error (self->log, "%s is not a PEM certificate", path);
        return -1;
    }
    return 0;
}

//  0, or -1 with errno (EEXIST: someone published first).
static int
s_cert_publish (umb_ca_t *self, const char *path, X509 *cert, bool replace)
{
    char *pem = s_cert_pem (cert);
    if (!pem) {
        s_ssl_error (self->log, "cannot encode %s", path);
        errno = ENOMEM;
        return -1;
    }
    int rc = s_file_publish (self, path, pem, strlen (pem), 0644, replace);
    int saved = errno;
    free (pem);
    errno = saved;
    return rc;
}

//  ---------------------------------------------------------------------------
//  Certificate building

static ASN1_INTEGER *
s_serial_new (void)
{
    unsigned char bytes [UMB_CA_SERIAL_BYTES];
    bool zero = true;
    while (zero) {
        if (RAND_bytes (bytes, sizeof (bytes)) != 1)
            return NULL;
        //  Cleared top bit: the DER INTEGER needs no sign padding, so a serial
        //  is never longer than 16 octets.
        bytes [0] &= 0x7f;
        for (size_t i = 0; i < sizeof (bytes) && zero; i++)
            zero = bytes [i] == 0;
    }
    BIGNUM *number = BN_bin2bn (bytes, sizeof (bytes), NULL);
    ASN1_INTEGER *serial = number ? BN_to_ASN1_INTEGER (number, NULL) : NULL;
    BN_free (number);
    OPENSSL_cleanse (bytes, sizeof (bytes));
    return serial;
}

static void
s_serial_hex (const ASN1_INTEGER *serial, char hex [41])
{
    static const char digits [] = "0123456789abcdef";
    const unsigned char *data = ASN1_STRING_get0_data (serial);
    int size = ASN1_STRING_length (serial);
    size_t at = 0;
    if (size > 20)
        size = 0;                   //  not one of ours; RFC 5280 caps serials at 20 octets
    for (int i = 0; i < size; i++) {
        unsigned nibbles [2] = { data [i] >> 4, data [i] & 15u };
        for (int n = 0; n < 2; n++)
            if (at || nibbles [n])
                hex [at++] = digits [nibbles [n]];
    }
    if (at == 0)
        hex [at++] = '0';
    hex [at] = 0;
}

static ASN1_INTEGER *
s_serial_parse (const char *hex)
{
    size_t length = strlen (hex);
    if (length == 0 || length > 40 || strspn (hex, "0123456789abcdefABCDEF") != length)
        return NULL;
    BIGNUM *number = NULL;
    ASN1_INTEGER *serial = NULL;
    if (BN_hex2bn (&number, hex) == (int) length && !BN_is_zero (number))
        serial = BN_to_ASN1_INTEGER (number, NULL);
    BN_free (number);
    return serial;
}

static X509_NAME *
s_name_new (const char *common_name)
{
    X509_NAME *name = X509_NAME_new ();
    if (name
    &&  X509_NAME_add_entry_by_txt (name, "O", MBSTRING_UTF8, (const unsigned char *) "umbra",
                                    -1, -1, 0) == 1
    &&  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8,
                                    (const unsigned char *) common_name, -1, -1, 0) == 1)
        return name;
    X509_NAME_free (name);
    return NULL;
}

static int
s_add_ext (X509 *cert, int nid, void *value, bool critical)
{
    return X509_add1_ext_i2d (cert, nid, value, critical ? 1 : 0, X509V3_ADD_REPLACE) == 1 ? 0 : -1;
}

static int
s_add_basic_constraints (X509 *cert, bool ca, long pathlen)
{
    BASIC_CONSTRAINTS *constraints = BASIC_CONSTRAINTS_new ();
    int rc = -1;
    if (constraints) {
        constraints->ca = ca ? 0xff : 0;
        if (ca && pathlen >= 0) {
            constraints->pathlen = ASN1_INTEGER_new ();
            if (constraints->pathlen && ASN1_INTEGER_set (constraints->pathlen, pathlen) == 1)
                rc = s_add_ext (cert, NID_basic_constraints, constraints, true);
        }
        else
            rc = s_add_ext (cert, NID_basic_constraints, constraints, true);
    }
    BASIC_CONSTRAINTS_free (constraints);
    return rc;
}

//  bits: a mask of (1 << UMB_CA_KU_*).
static int
s_add_key_usage (X509 *cert, unsigned bits)
{
    ASN1_BIT_STRING *usage = ASN1_BIT_STRING_new ();
    int rc = usage ? 0 : -1;
    for (int bit = 0; rc == 0 && bit < 9; bit++)
        if ((bits & (1u << bit)) && ASN1_BIT_STRING_set_bit (usage, bit, 1) != 1)
            rc = -1;
    if (rc == 0)
        rc = s_add_ext (cert, NID_key_usage, usage, true);
    ASN1_BIT_STRING_free (usage);
    return rc;
}

static int
s_add_ext_key_usage (X509 *cert, const int *nids, size_t count)
{
    EXTENDED_KEY_USAGE *usage = sk_ASN1_OBJECT_new_null ();
    int rc = usage ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < count; i++)
        if (sk_ASN1_OBJECT_push (usage, OBJ_nid2obj (nids [i])) <= 0)
            rc = -1;
    if (rc == 0)
        rc = s_add_ext (cert, NID_ext_key_usage, usage, false);
    sk_ASN1_OBJECT_free (usage);    //  the objects are OpenSSL's static ones
    return rc;
}

//  RFC 5280 key identifier, method 1: SHA-1 of the subjectPublicKey bits.
static ASN1_OCTET_STRING *
s_key_id (X509 *cert)
{
    unsigned char md [EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (X509_pubkey_digest (cert, EVP_sha1 (), md, &size) != 1)
        return NULL;
    ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new ();
    if (id && ASN1_OCTET_STRING_set (id, md, (int) size) == 1)
        return id;
    ASN1_OCTET_STRING_free (id);
    return NULL;
}

static AUTHORITY_KEYID *
s_authority_key_id (const ASN1_OCTET_STRING *issuer_id)
{
    AUTHORITY_KEYID *id = AUTHORITY_KEYID_new ();
    if (id && issuer_id && (id->keyid = ASN1_OCTET_STRING_dup (issuer_id)))
        return id;
    AUTHORITY_KEYID_free (id);
    return NULL;
}

//  A dNSName or URI; text already validated.
static GENERAL_NAME *
s_general_name (int type, const char *text)
{
    ASN1_IA5STRING *value = ASN1_IA5STRING_new ();
    GENERAL_NAME *name = GENERAL_NAME_new ();
    if (!value || !name || ASN1_STRING_set (value, text, -1) != 1) {
        ASN1_IA5STRING_free (value);
        GENERAL_NAME_free (name);
        return NULL;
    }
    GENERAL_NAME_set0_value (name, type, value);
    return name;
}

static int
s_add_ocsp_access (X509 *cert, const char *url)
{
    AUTHORITY_INFO_ACCESS *access = sk_ACCESS_DESCRIPTION_new_null ();
    ACCESS_DESCRIPTION *description = ACCESS_DESCRIPTION_new ();
    GENERAL_NAME *location = s_general_name (GEN_URI, url);
    int rc = -1;
    if (access && description && location) {
        GENERAL_NAME_free (description->location);
        description->location = location;
        location = NULL;
        ASN1_OBJECT_free (description->method);
        description->method = OBJ_nid2obj (NID_ad_OCSP);
        if (sk_ACCESS_DESCRIPTION_push (access, description) > 0) {
            description = NULL;
            rc = s_add_ext (cert, NID_info_access, access, false);
        }
    }
    GENERAL_NAME_free (location);
    ACCESS_DESCRIPTION_free (description);
    AUTHORITY_INFO_ACCESS_free (access);
    return rc;
}

static int
s_add_crl_point (X509 *cert, const char *url)
{
    CRL_DIST_POINTS *points = sk_DIST_POINT_new_null ();
    DIST_POINT *point = DIST_POINT_new ();
    DIST_POINT_NAME *name = DIST_POINT_NAME_new ();
    GENERAL_NAMES *names = GENERAL_NAMES_new ();
    GENERAL_NAME *location = s_general_name (GEN_URI, url);
    int rc = -1;
    if (points && point && name && names && location
    &&  sk_GENERAL_NAME_push (names, location) > 0) {
        location = NULL;
        name->type = 0;             //  fullName
        name->name.fullname = names;
        names = NULL;
        DIST_POINT_NAME_free (point->distpoint);
        point->distpoint = name;
        name = NULL;
        if (sk_DIST_POINT_push (points, point) > 0) {
            point = NULL;
            rc = s_add_ext (cert, NID_crl_distribution_points, points, false);
        }
    }
    GENERAL_NAME_free (location);
    GENERAL_NAMES_free (names);
    DIST_POINT_NAME_free (name);
    DIST_POINT_free (point);
    CRL_DIST_POINTS_free (points);
    return rc;
}

static int
s_add_ocsp_no_check (X509 *cert)
{
    ASN1_NULL *value = ASN1_NULL_new ();
    int rc = value ? s_add_ext (cert, NID_id_pkix_OCSP_noCheck, value, false) : -1;
    ASN1_NULL_free (value);
    return rc;
}

//  Version, serial, names, validity, key, SKI and AKI: what every
//  certificate here has. issuer NULL makes it self-issued.
static X509 *
s_cert_start (const char *common_name, EVP_PKEY *subject_key, X509 *issuer, int64_t not_before,
              int64_t not_after)
{
    X509 *cert = X509_new ();
    ASN1_INTEGER *serial = s_serial_new ();
    X509_NAME *subject = s_name_new (common_name);
    ASN1_OCTET_STRING *key_id = NULL;
    AUTHORITY_KEYID *authority_id = NULL;
    bool ok = cert && serial && subject
        && X509_set_version (cert, X509_VERSION_3) == 1
        && X509_set_serialNumber (cert, serial) == 1
        && X509_set_subject_name (cert, subject) == 1
        && X509_set_issuer_name (cert, issuer ? X509_get_subject_name (issuer) : subject) == 1
        && ASN1_TIME_set (X509_getm_notBefore (cert), (time_t) not_before)
        && ASN1_TIME_set (X509_getm_notAfter (cert), (time_t) not_after)
        && X509_set_pubkey (cert, subject_key) == 1
        && (key_id = s_key_id (cert))
        && s_add_ext (cert, NID_subject_key_identifier, key_id, false) == 0
        && (authority_id = s_authority_key_id (issuer ? X509_get0_subject_key_id (issuer) : key_id))
        && s_add_ext (cert, NID_authority_key_identifier, authority_id, false) == 0;
    AUTHORITY_KEYID_free (authority_id);
    ASN1_OCTET_STRING_free (key_id);
    X509_NAME_free (subject);
    ASN1_INTEGER_free (serial);
    if (!ok) {
        X509_free (cert);
        return NULL;
    }
    return cert;
}

static int
s_sign (X509 *cert, EVP_PKEY *signer)
{
    return X509_sign (cert, signer, s_digest (signer)) > 0 ? 0 : -1;
}

static int64_t
s_min (int64_t left, int64_t right)
{
    return left < right ? left : right;
}

//  Root (issuer NULL) or issuing CA certificate for key, signed by signer.
static X509 *
s_ca_cert_new (umb_ca_t *self, EVP_PKEY *key, X509 *issuer, EVP_PKEY *signer)
{
    int64_t now = (int64_t) time (NULL);
    int64_t not_after = issuer
        ? s_min (now + (int64_t) UMB_CA_ISSUING_DAYS * UMB_CA_DAY,
                 s_time_unix (X509_get0_notAfter (issuer)))
        : now + (int64_t) UMB_CA_ROOT_DAYS * UMB_CA_DAY;
    X509 *cert = s_cert_start (issuer ? "umbra issuing CA" : "umbra root CA", key, issuer, now,
                               not_after);
    if (!cert
    ||  s_add_basic_constraints (cert, true, issuer ? 0 : 1)
    ||  s_add_key_usage (cert, 1u << UMB_CA_KU_KEY_CERT_SIGN | 1u << UMB_CA_KU_CRL_SIGN)
    ||  s_sign (cert, signer)) {
        s_ssl_error (self->log, "cannot make the %s CA certificate", issuer ? "issuing" : "root");
        X509_free (cert);
        return NULL;
    }
    return cert;
}

//  A fresh key and certificate for the delegated OCSP signer.
static int
s_ocsp_make (umb_ca_t *self, s_issuer_t *issuer, EVP_PKEY *issuing_key, int64_t lifetime_s,
             X509 **cert, EVP_PKEY **key)
{
    *cert = NULL;
    *key = s_keygen (issuer->key_type);
    if (!*key) {
        s_ssl_error (self->log, "cannot make the OCSP signer's key");
        return -1;
    }
    int64_t now = (int64_t) time (NULL);
    int64_t not_after = s_min (now + lifetime_s, s_time_unix (X509_get0_notAfter (issuer->cert)));
    const int usage [] = { NID_OCSP_sign };
    *cert = s_cert_start ("umbra OCSP signer", *key, issuer->cert, now, not_after);
    if (!*cert
    ||  s_add_basic_constraints (*cert, false, -1)
    ||  s_add_key_usage (*cert, 1u << UMB_CA_KU_DIGITAL_SIGNATURE)
    ||  s_add_ext_key_usage (*cert, usage, 1)
    ||  s_add_ocsp_no_check (*cert)
    ||  s_sign (*cert, issuing_key)) {
        s_ssl_error (self->log, "cannot make the OCSP signer certificate");
        X509_free (*cert);
        EVP_PKEY_free (*key);
        *cert = NULL;
        *key = NULL;
        return -1;
    }
    return 0;
}

//  The key goes first: a process loading in between sees a key that does
//  not match the certificate and renews again, which is harmless.
static int
s_ocsp_publish (umb_ca_t *self, s_issuer_t *issuer, X509 *cert, EVP_PKEY *key)
{
    size_t size = 0;
    char *pem = s_key_pem (key, &size);
    if (!pem) {
        s_ssl_error (self->log, "cannot encode the OCSP signer's key");
        return -1;
    }
    int rc = s_file_publish (self, issuer->ocsp_key_path, pem, size, 0600, true);
    int saved = errno;
    OPENSSL_cleanse (pem, size);
    free (pem);
    if (rc == 0) {
        rc = s_cert_publish (self, issuer->ocsp_cert_path, cert, true);
        saved = errno;
    }
    if (rc)
        umb_log_error (self->log, "ca: cannot write the OCSP signer to %s: %s",
                       issuer->ocsp_cert_path, strerror (saved));
    return rc;
}

//  ---------------------------------------------------------------------------
//  Loading

static int
s_dir_prepare (umb_ca_t *self)
{
    if (mkdir (self->dir, 0700) && errno != EEXIST) {
        umb_log_error (self->log, "ca: cannot create %s: %s", self->dir, strerror (errno));
        return -1;
    }
    struct stat st;
    if (stat (self->dir, &st) || !S_ISDIR (st.st_mode)) {
        umb_log_error (self->log, "ca: %s is not a directory", self->dir);
        return -1;
    }
    //  Whoever can write here can swap a certificate or a key under us.
    if (st.st_mode & 022) {
        umb_log_error (self->log, "ca: %s is writable by group or others (mode %03o); refusing it",
                       self->dir, (unsigned) (st.st_mode & 0777));
        return -1;
    }
    return 0;
}

//  Publishes cert at path unless someone else did first; then theirs is read.
static int
s_cert_settle (umb_ca_t *self, const char *path, X509 **cert)
{
    if (s_cert_publish (self, path, *cert, false) == 0) {
        umb_log_info (self->log, "ca: made %s", path);
        return 0;
    }
    int saved = errno;
    X509_free (*cert);
    *cert = NULL;
    if (saved == EEXIST)
        return s_cert_read (self, path, cert) == 0 ? 0 : -1;
    umb_log_error (self->log, "ca: cannot write %s: %s", path, strerror (saved));
    return -1;
}

//  The root key may be absent once the CA is set up: it is only needed to
//  certify the issuing CA, and may be kept offline.
static int
s_root_load (umb_ca_t *self, EVP_PKEY **root_key)
{
    if (s_key_read (self, self->root_key_path, root_key) < 0)
        return -1;
    int rc = s_cert_read (self, self->root_cert_path, &self->root);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        if (!*root_key
        &&  !(*root_key = s_key_create (self, self->root_key_path, self->key_type, false)))
            return -1;
        self->root = s_ca_cert_new (self, *root_key, NULL, *root_key);
        if (!self->root || s_cert_settle (self, self->root_cert_path, &self->root))
            return -1;
    }
    if (X509_verify (self->root, X509_get0_pubkey (self->root)) != 1
    ||  X509_check_ca (self->root) == 0) {
        s_ssl_error (self->log, "%s is not a self-signed CA certificate", self->root_cert_path);
        return -1;
    }
    if (*root_key && X509_check_private_key (self->root, *root_key) != 1) {
        s_ssl_error (self->log, "%s does not match %s", self->root_key_path, self->root_cert_path);
        return -1;
    }
    return 0;
}

//  Loads issuer's certificate and checks it against its key (read into
//  *issuing_key). create: make both when there is no certificate yet (the
//  first issuing CA only).
static int
s_issuing_load (umb_ca_t *self, s_issuer_t *issuer, EVP_PKEY *root_key, bool create,
                EVP_PKEY **issuing_key)
{
    if (s_key_read (self, issuer->key_path, issuing_key) < 0)
        return -1;
    int rc = s_cert_read (self, issuer->cert_path, &issuer->cert);
    if (rc < 0)
        return -1;
    if (rc == 1 && !create) {
        umb_log_error (self->log, "ca: %s is missing", issuer->cert_path);
        return -1;
    }
    if (rc == 1) {
        if (!root_key) {
            umb_log_error (self->log, "ca: %s is needed to certify the issuing CA",
                           self->root_key_path);
            return -1;
        }
        if (!*issuing_key
        &&  !(*issuing_key = s_key_create (self, issuer->key_path, self->key_type, false)))
            return -1;
        issuer->cert = s_ca_cert_new (self, *issuing_key, self->root, root_key);
        if (!issuer->cert || s_cert_settle (self, issuer->cert_path, &issuer->cert))
            return -1;
    }
    if (!*issuing_key) {
        umb_log_error (self->log, "ca: %s is missing", issuer->key_path);
        return -1;
    }
    if (X509_verify (issuer->cert, X509_get0_pubkey (self->root)) != 1
    ||  X509_check_ca (issuer->cert) == 0) {
        s_ssl_error (self->log, "%s is not a CA certificate signed by the root",
                     issuer->cert_path);
        return -1;
    }
    if (X509_check_private_key (issuer->cert, *issuing_key) != 1) {
        s_ssl_error (self->log, "%s does not match %s", issuer->key_path, issuer->cert_path);
        return -1;
    }
    if (s_time_unix (X509_get0_notAfter (issuer->cert)) <= (int64_t) time (NULL)) {
        umb_log_error (self->log, "ca: %s has expired", issuer->cert_path);
        return -1;
    }
    int type = s_key_type_of (*issuing_key);
    if (type < 0) {
        umb_log_error (self->log, "ca: %s is of a key type this CA does not make",
                       issuer->key_path);
        return -1;
    }
    issuer->key_type = (umb_ca_key_type_t) type;
    s_serial_hex (X509_get0_serialNumber (issuer->cert), issuer->id);
    return 0;
}

static int
s_ocsp_load (umb_ca_t *self, s_issuer_t *issuer, EVP_PKEY *issuing_key)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    if (s_key_read (self, issuer->ocsp_key_path, &key) < 0)
        return -1;
    if (s_cert_read (self, issuer->ocsp_cert_path, &cert) < 0) {
        EVP_PKEY_free (key);
        return -1;
    }
    const char *why = NULL;
    if (!key || !cert)
        why = "none yet";
    else
    if (X509_check_private_key (cert, key) != 1)
        why = "key and certificate do not match";
    else
    if (X509_verify (cert, X509_get0_pubkey (issuer->cert)) != 1)
        why = "not signed by the issuing CA";
    else
    if (s_time_unix (X509_get0_notAfter (cert))
        < (int64_t) time (NULL) + (int64_t) UMB_CA_OCSP_RENEW_DAYS * UMB_CA_DAY)
        why = "expires within 30 days";
    ERR_clear_error ();             //  a mismatch above is an answer, not a failure
    if (why) {
        X509_free (cert);
        EVP_PKEY_free (key);
        if (s_ocsp_make (self, issuer, issuing_key, (int64_t) UMB_CA_OCSP_DAYS * UMB_CA_DAY,
                         &cert, &key))
            return -1;
        if (s_ocsp_publish (self, issuer, cert, key)) {
            X509_free (cert);
            EVP_PKEY_free (key);
            return -1;
        }
        umb_log_info (self->log, "ca: made a new OCSP signer for issuing CA %s (%s)", issuer->id,
                      why);
    }
    issuer->ocsp = cert;
    issuer->ocsp_key = key;
    return 0;
}

static void
s_issuer_clear (s_issuer_t *issuer)
{
    free (issuer->key_path);
    free (issuer->cert_path);
    free (issuer->ocsp_key_path);
    free (issuer->ocsp_cert_path);
    X509_free (issuer->cert);
    X509_free (issuer->ocsp);
    EVP_PKEY_free (issuer->ocsp_key);
    free (issuer->chain_pem);
    free (issuer->crl_url);
    memset (issuer, 0, sizeof (*issuer));
}

//  The paths of an issuer whose files are in dir. 0 or -1.
static int
s_issuer_paths (s_issuer_t *issuer, const char *dir)
{
    issuer->key_path = s_path (dir, "issuing.key");
    issuer->cert_path = s_path (dir, "issuing.pem");
    issuer->ocsp_key_path = s_path (dir, "ocsp.key");
    issuer->ocsp_cert_path = s_path (dir, "ocsp.pem");
    return issuer->key_path && issuer->cert_path && issuer->ocsp_key_path
        && issuer->ocsp_cert_path ? 0 : -1;
}

//  An issuer's OCSP signer, chain and CRL URL, once its certificate is
//  loaded. first: the first issuing CA, whose certificates name the CRL URL
//  itself; a later one's name crl_url/<its id>. 0 or -1.
static int
s_issuer_finish (umb_ca_t *self, s_issuer_t *issuer, EVP_PKEY *issuing_key, bool first)
{
    if (s_ocsp_load (self, issuer, issuing_key))
        return -1;
    char *pem = s_cert_pem (issuer->cert);
    if (!pem || asprintf (&issuer->chain_pem, "%s%s", pem, self->root_pem) < 0)
        issuer->chain_pem = NULL;
    free (pem);
    if (self->crl_url
    &&  (first ? !(issuer->crl_url = strdup (self->crl_url))
               : asprintf (&issuer->crl_url, "%s/%s", self->crl_url, issuer->id) < 0))
        issuer->crl_url = NULL;
    return issuer->chain_pem && (!self->crl_url || issuer->crl_url) ? 0 : -1;
}

//  Loads an issuer from dir into the next slot (kept only on success). 0, or
//  -1 (logged).
static int
s_issuer_add (umb_ca_t *self, const char *dir, EVP_PKEY *root_key, bool first)
{
    if (self->issuer_count == UMB_CA_ISSUERS_MAX) {
        umb_log_error (self->log, "ca: more than %d issuing CAs in %s", UMB_CA_ISSUERS_MAX,
                       self->dir);
        return -1;
    }
    s_issuer_t *issuer = &self->issuers [self->issuer_count];
    EVP_PKEY *issuing_key = NULL;
    int rc = s_issuer_paths (issuer, dir)
          || s_issuing_load (self, issuer, root_key, first, &issuing_key)
          || s_issuer_finish (self, issuer, issuing_key, first) ? -1 : 0;
    EVP_PKEY_free (issuing_key);
    if (rc)
        s_issuer_clear (issuer);
    else
        __atomic_store_n (&self->issuer_count, self->issuer_count + 1, __ATOMIC_RELEASE);
    return rc;
}

static int
s_remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

static int
s_by_age (const void *left, const void *right)
{
    const s_issuer_t *a = left, *b = right;
    int order = ASN1_TIME_compare (X509_get0_notBefore (a->cert), X509_get0_notBefore (b->cert));
    return order ? order : strcmp (a->id, b->id);
}

//  The later issuing CAs, in issuers/: each a directory named by its
//  certificate's serial. What a rotation left half-made (*.tmp) is removed;
//  one that has expired is no longer loaded (its certificates have too).
static int
s_issuers_load (umb_ca_t *self)
{
    DIR *dir = opendir (self->issuers_dir);
    if (!dir)
        return errno == ENOENT ? 0 : -1;
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir (dir))) {
        const char *name = entry->d_name;
        if (name [0] == '.')
            continue;
        char *path = s_path (self->issuers_dir, name);
        size_t length = strlen (name);
        if (!path)
            rc = -1;
        else
        if (length > 4 && s_streq (name + length - 4, ".tmp")) {
            umb_log_warn (self->log, "ca: removing %s, left by a rotation that did not finish",
                          path);
            nftw (path, s_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
        }
        else
        if (length == 0 || length > 40 || strspn (name, "0123456789abcdef") != length) {
            umb_log_error (self->log, "ca: %s is not an issuing CA's directory", path);
            rc = -1;
        }
        else {
            char *cert_path = s_path (path, "issuing.pem");
            X509 *cert = NULL;
            if (!cert_path || s_cert_read (self, cert_path, &cert))
                rc = -1;
            else
            if (s_time_unix (X509_get0_notAfter (cert)) <= (int64_t) time (NULL))
                umb_log_info (self->log, "ca: issuing CA %s has expired; no longer loaded", name);
            else
                rc = s_issuer_add (self, path, NULL, false);
            X509_free (cert);
            free (cert_path);
        }
        free (path);
    }
    closedir (dir);
    if (self->issuer_count > 2)
        qsort (self->issuers + 1, self->issuer_count - 1, sizeof (s_issuer_t), s_by_age);
    return rc;
}

//  Which issuer issues: the one named in current, or the first.
static int
s_current_load (umb_ca_t *self)
{
    char *data = NULL;
    size_t size = 0;
    int rc = s_file_read (self, self->current_path, false, &data, &size);
    if (rc == 1) {
        __atomic_store_n (&self->current, 0, __ATOMIC_RELEASE);
        return 0;
    }
    if (rc < 0)
        return -1;
    data [strcspn (data, "\r\n")] = 0;
    int found = umb_ca_issuer_find (self, data);
    if (found < 0)
        umb_log_error (self->log, "ca: %s names issuing CA '%.40s', which is not loaded (missing "
                       "from %s, or expired)", self->current_path, data, self->issuers_dir);
    else
        __atomic_store_n (&self->current, (size_t) found, __ATOMIC_RELEASE);
    free (data);
    return found < 0 ? -1 : 0;
}

//  ---------------------------------------------------------------------------
//  Request checks

static bool
s_uri_char (unsigned char c)
{
    //  RFC 3986: unreserved, reserved, and '%' of percent-encoding
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || (c && strchr ("-._~:/?#[]@!$&'()*+,;=%", c));
}

static bool
s_uri_valid (const char *text)
{
    const char *colon = strchr (text, ':');
    size_t length = strlen (text);
    if (!colon || colon == text || length > UMB_CA_URI_MAX
    ||  !((text [0] >= 'a' && text [0] <= 'z') || (text [0] >= 'A' && text [0] <= 'Z')))
        return false;
    for (const char *c = text; c < colon; c++)
        if (!(s_uri_char ((unsigned char) *c) && !strchr (":/?#[]@!$&'()*,;=%~_", *c)))
            return false;           //  scheme: letters, digits, '+', '-', '.'
    //  Nothing after the scheme, or "x::...": an IPv6 address that failed, not a URI.
    if (colon [1] == 0 || colon [1] == ':')
        return false;
    for (const char *c = text; *c; c++)
        if (!s_uri_char ((unsigned char) *c))
            return false;
    return true;
}

//  LDH labels (RFC 1123), no wildcard, not all-numeric at the top so that a
//  mistyped address is never taken for a name.
static bool
s_dns_valid (const char *text)
{
    size_t length = strlen (text);
    if (length == 0 || length > UMB_CA_DNS_MAX)
        return false;
    const char *label = text;
    while (true) {
        size_t size = strcspn (label, ".");
        if (size == 0 || size > 63 || label [0] == '-' || label [size - 1] == '-')
            return false;
        bool numeric = true;
        for (size_t i = 0; i < size; i++) {
            char c = label [i];
            bool digit = c >= '0' && c <= '9';
            if (!(digit || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-'))
                return false;
            numeric = numeric && digit;
        }
        if (label [size] == 0)
            return !numeric;
        label += size + 1;
    }
}

//  Only text that could be an address goes to a2i_IPADDRESS, which would
//  otherwise take "1.2.3.4 junk" or "01.2.3.4".
static bool
s_ip_candidate (const char *text)
{
    if (strspn (text, "0123456789abcdefABCDEF.:") != strlen (text))
        return false;
    if (strchr (text, ':'))
        return true;
    if (strspn (text, "0123456789.") != strlen (text))
        return false;
    for (const char *octet = text; *octet; ) {
        size_t size = strcspn (octet, ".");
        if (size > 1 && octet [0] == '0')
            return false;
        octet += size + (octet [size] == '.');
    }
    return true;
}

//  0 and *name; 422 if text is not a name we certify; 500.
static int
s_san_parse (const char *text, GENERAL_NAME **name)
{
    *name = NULL;
    if (s_ip_candidate (text)) {
        ASN1_OCTET_STRING *address = a2i_IPADDRESS (text);
        if (address) {
            *name = GENERAL_NAME_new ();
            if (!*name) {
                ASN1_OCTET_STRING_free (address);
                return 500;
            }
            GENERAL_NAME_set0_value (*name, GEN_IPADD, address);
            return 0;
        }
        ERR_clear_error ();
    }
    int type = strchr (text, ':') ? GEN_URI : GEN_DNS;
    if (type == GEN_URI ? !s_uri_valid (text) : !s_dns_valid (text))
        return 422;
    *name = s_general_name (type, text);
    return *name ? 0 : 500;
}

//  Code points a name must not carry: controls, and the invisible or
//  direction-changing ones that let a name display as another.
static bool
s_code_point_hidden (uint32_t code)
{
    return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code == 0xad
        || (code >= 0x200b && code <= 0x200f) || (code >= 0x2028 && code <= 0x202e)
        || (code >= 0x2060 && code <= 0x206f) || code == 0xfeff
        || (code >= 0xfff9 && code <= 0xfffb);
}

static bool
s_name_printable (const char *name, size_t length)
{
    const unsigned char *s = (const unsigned char *) name;
    for (size_t at = 0; at < length; ) {
        size_t size = umb_utf8_sequence (s + at, length - at);
        if (size == 0)
            return false;
        uint32_t code = size == 1 ? s [at] : s [at] & (0x7f >> size);
        for (size_t i = 1; i < size; i++)
            code = (code << 6) | (s [at + i] & 0x3f);
        if (s_code_point_hidden (code))
            return false;
        at += size;
    }
    return true;
}

static int
s_name_check (const umb_ca_request_t *request, char *reason, size_t reason_size)
{
    const char *name = request->common_name;
    if (!name || !*name)
        return s_refuse (reason, reason_size, 422, "common_name is required");
    size_t length = strlen (name);
    if (length > UMB_CA_NAME_MAX)
        return s_refuse (reason, reason_size, 422, "common_name is longer than %d bytes",
                         UMB_CA_NAME_MAX);
    if (!s_name_printable (name, length))
        return s_refuse (reason, reason_size, 422, "common_name is not printable UTF-8");
    if (name [0] == '.' || name [length - 1] == '.' || name [0] == ' ' || name [length - 1] == ' ')
        return s_refuse (reason, reason_size, 422,
                         "common_name must not start or end with a dot or a space");
    if (strchr (name, '*'))
        return s_refuse (reason, reason_size, 422, "wildcard names are not issued");
    for (size_t i = 0; i < sizeof (s_reserved_names) / sizeof (s_reserved_names [0]); i++)
        if (strcasecmp (name, s_reserved_names [i]) == 0)
            return s_refuse (reason, reason_size, 422, "'%s' is reserved for the platform", name);
    //  The name becomes the umbra-mesh: URI, and matches the CURVE identity names.
    if (request->profile == UMB_CA_PROFILE_MESH
    &&  strspn (name, "abcdefghijklmnopqrstuvwxyz" "ABCDEFGHIJKLMNOPQRSTUVWXYZ" "0123456789-_.")
        != length)
        return s_refuse (reason, reason_size, 422,
                         "a mesh identity name has only letters, digits, '-', '_' and '.'");
    return 0;
}

static int
s_sans_build (const umb_ca_request_t *request, GENERAL_NAMES **sans, char *reason,
              size_t reason_size)
{
    *sans = NULL;
    GENERAL_NAMES *names = GENERAL_NAMES_new ();
    if (!names)
        return s_refuse (reason, reason_size, 500, "internal error");
    int status = 0;
    if (request->profile == UMB_CA_PROFILE_MESH) {
        char *uri = NULL;
        GENERAL_NAME *name = NULL;
        if (asprintf (&uri, "umbra-mesh:%s", request->common_name) < 0
        ||  !(name = s_general_name (GEN_URI, uri))
        ||  sk_GENERAL_NAME_push (names, name) <= 0) {
            GENERAL_NAME_free (name);
            status = s_refuse (reason, reason_size, 500, "internal error");
        }
        free (uri);
    }
    for (size_t i = 0; status == 0 && request->sans && request->sans [i]; i++) {
        if (i == UMB_CA_SANS_MAX) {
            status = s_refuse (reason, reason_size, 422,
                               "more than %d subject alternative names", UMB_CA_SANS_MAX);
            break;
        }
        GENERAL_NAME *name = NULL;
        status = s_san_parse (request->sans [i], &name);
        if (status == 0 && sk_GENERAL_NAME_push (names, name) <= 0) {
            GENERAL_NAME_free (name);
            status = 500;
        }
        if (status == 422) {
            char shown [80];
            s_printable (request->sans [i], shown, sizeof (shown));
            s_refuse (reason, reason_size, 422, "bad subject alternative name '%s'", shown);
        }
        else
        if (status)
            s_refuse (reason, reason_size, 500, "internal error");
    }
    if (status || sk_GENERAL_NAME_num (names) == 0)
        GENERAL_NAMES_free (names);
    else
        *sans = names;
    return status;
}

//  The key types we certify from a CSR.
static bool
s_csr_key_accepted (EVP_PKEY *key)
{
    char group [64];
    switch (EVP_PKEY_get_base_id (key)) {
        case EVP_PKEY_EC:
            if (EVP_PKEY_get_utf8_string_param (key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                sizeof (group), NULL) != 1) {
                ERR_clear_error ();         //  explicit curve parameters: no
                return false;
            }
            return s_streq (group, "prime256v1") || s_streq (group, "secp384r1");
        case EVP_PKEY_RSA:
            return EVP_PKEY_get_bits (key) >= 2048;
        case EVP_PKEY_ED25519:
            return true;
    }
    return false;
}

//  Only the public key is taken from a CSR: its subject and extension
//  requests are the requester's wishes, not ours to certify.
static int
s_csr_key (const char *csr_pem, EVP_PKEY **key, char *reason, size_t reason_size)
{
    size_t length = strnlen (csr_pem, UMB_CA_FILE_MAX + 1);
    if (length > UMB_CA_FILE_MAX)
        return s_refuse (reason, reason_size, 400, "CSR is larger than %d bytes", UMB_CA_FILE_MAX);
    BIO *bio = BIO_new_mem_buf (csr_pem, (int) length);
    X509_REQ *csr = bio ? PEM_read_bio_X509_REQ (bio, NULL, NULL, NULL) : NULL;
    BIO_free (bio);
    int status = 0;
    EVP_PKEY *public = csr ? X509_REQ_get0_pubkey (csr) : NULL;
    if (!csr)
        status = s_refuse (reason, reason_size, 400, "CSR is not a PEM certificate request");
    else
    if (!public || !s_csr_key_accepted (public))
        status = s_refuse (reason, reason_size, 422,
                           "CSR key must be EC P-256 or P-384, RSA of 2048 bits or more, "
                           "or Ed25519");
    else
    if (X509_REQ_verify (csr, public) != 1)
        status = s_refuse (reason, reason_size, 400, "CSR signature does not verify");
    else
    if (EVP_PKEY_up_ref (public) == 1)
        *key = public;
    else
        status = s_refuse (reason, reason_size, 500, "internal error");
    X509_REQ_free (csr);
    ERR_clear_error ();             //  a bad CSR is the requester's, nothing to log
    return status;
}

static int
s_subject_key (const umb_ca_request_t *request, EVP_PKEY **key, bool *made_here, char *reason,
               size_t reason_size)
{
    *key = NULL;
    *made_here = false;
    if (request->profile == UMB_CA_PROFILE_MESH) {
        if (request->csr_pem)
            return s_refuse (reason, reason_size, 422,
                             "a mesh certificate certifies an X25519 key, not a CSR");
        if (!request->x25519_public)
            return s_refuse (reason, reason_size, 422, "a mesh certificate needs x25519_public");
        uint8_t any = 0;
        for (size_t i = 0; i < UMB_CA_X25519_SIZE; i++)
            any |= request->x25519_public [i];
        if (!any)
            return s_refuse (reason, reason_size, 422, "x25519_public is not a usable key");
        *key = EVP_PKEY_new_raw_public_key (EVP_PKEY_X25519, NULL, request->x25519_public,
                                            UMB_CA_X25519_SIZE);
        return *key ? 0 : s_refuse (reason, reason_size, 500, "internal error");
    }
    if (request->x25519_public)
        return s_refuse (reason, reason_size, 422, "x25519_public is for mesh certificates only");
    if (request->csr_pem)
        return s_csr_key (request->csr_pem, key, reason, reason_size);
    assert (request->key_type >= UMB_CA_KEY_EC_P256 && request->key_type <= UMB_CA_KEY_ED25519);
    *key = s_keygen (request->key_type);
    if (!*key)
        return s_refuse (reason, reason_size, 500, "internal error");
    *made_here = true;
    return 0;
}

static X509 *
s_leaf_new (umb_ca_t *self, const s_issuer_t *issuer, const umb_ca_request_t *request,
            EVP_PKEY *subject_key, GENERAL_NAMES *sans)
{
    int64_t now = (int64_t) time (NULL);
    int64_t not_after = s_min (now + request->ttl_s,
                               s_time_unix (X509_get0_notAfter (issuer->cert)));
    X509 *cert = s_cert_start (request->common_name, subject_key, issuer->cert, now, not_after);
    if (!cert)
        return NULL;
    unsigned usage = 1u << UMB_CA_KU_DIGITAL_SIGNATURE;
    int purposes [2] = { NID_server_auth, NID_client_auth };
    size_t purpose_count = 1;
    if (request->profile == UMB_CA_PROFILE_SERVER) {
        //  TLS 1.2 RSA key exchange encrypts to the server's key
        if (EVP_PKEY_get_base_id (subject_key) == EVP_PKEY_RSA)
            usage |= 1u << UMB_CA_KU_KEY_ENCIPHERMENT;
    }
    else
    if (request->profile == UMB_CA_PROFILE_CLIENT)
        purposes [0] = NID_client_auth;
    else {
        usage = 1u << UMB_CA_KU_KEY_AGREEMENT;
        purpose_count = 2;
    }
    if (s_add_basic_constraints (cert, false, -1)
    ||  s_add_key_usage (cert, usage)
    ||  s_add_ext_key_usage (cert, purposes, purpose_count)
    ||  (sans && s_add_ext (cert, NID_subject_alt_name, sans, false))
    ||  (self->ocsp_url && s_add_ocsp_access (cert, self->ocsp_url))
    ||  (issuer->crl_url && s_add_crl_point (cert, issuer->crl_url))) {
        X509_free (cert);
        return NULL;
    }
    return cert;
}

static int
s_issued_fill (X509 *cert, EVP_PKEY *made_here, umb_ca_issued_t *issued)
{
    unsigned char md [EVP_MAX_MD_SIZE];
    unsigned int md_size = 0;
    size_t key_size = 0;
    s_serial_hex (X509_get0_serialNumber (cert), issued->serial);
    issued->not_before = s_time_unix (X509_get0_notBefore (cert));
    issued->not_after = s_time_unix (X509_get0_notAfter (cert));
    issued->certificate_pem = s_cert_pem (cert);
    if (made_here)
        issued->private_key_pem = s_key_pem (made_here, &key_size);
    if (!issued->certificate_pem || (made_here && !issued->private_key_pem)
    ||  X509_digest (cert, EVP_sha256 (), md, &md_size) != 1 || md_size != 32)
        return -1;
    s_hex (md, md_size, issued->fingerprint);
    return 0;
}

//  ---------------------------------------------------------------------------
//  Public API

umb_ca_t *
umb_ca_load_or_create (const char *dir, umb_ca_key_type_t key_type, const char *ocsp_url,
                       const char *crl_url, umb_log_t *log)
{
    assert (dir && *dir);
    assert (key_type >= UMB_CA_KEY_EC_P256 && key_type <= UMB_CA_KEY_ED25519);
    if ((ocsp_url && !s_uri_valid (ocsp_url)) || (crl_url && !s_uri_valid (crl_url))) {
        umb_log_error (log, "ca: the OCSP and CRL URLs must be URIs");
        return NULL;
    }
    umb_ca_t *self = calloc (1, sizeof (umb_ca_t));
    if (!self)
        return NULL;
    self->log = log;
    self->key_type = key_type;
    self->dir = strdup (dir);
    self->root_key_path = s_path (dir, "root.key");
    self->root_cert_path = s_path (dir, "root.pem");
    self->issuers_dir = s_path (dir, "issuers");
    self->current_path = s_path (dir, "current");
    self->ocsp_url = ocsp_url ? strdup (ocsp_url) : NULL;
    self->crl_url = crl_url ? strdup (crl_url) : NULL;
    EVP_PKEY *root_key = NULL;
    if (!self->dir || !self->root_key_path || !self->root_cert_path || !self->issuers_dir
    ||  !self->current_path || (ocsp_url && !self->ocsp_url) || (crl_url && !self->crl_url))
        goto failed;
    if (s_dir_prepare (self) || s_root_load (self, &root_key))
        goto failed;
    self->root_pem = s_cert_pem (self->root);
    if (!self->root_pem || s_issuer_add (self, dir, root_key, true))
        goto failed;
    //  What a new issuing CA is made of: what the configuration asks for,
    //  unless the CA already holds another kind
    if (self->issuers [0].key_type != key_type)
        umb_log_info (log, "ca: %s holds a %s CA; keeping it", self->dir,
                      s_key_type_names [self->issuers [0].key_type]);
    self->key_type = self->issuers [0].key_type;
    EVP_PKEY_free (root_key);
    root_key = NULL;
    if (s_issuers_load (self) || s_current_load (self))
        goto failed;
    if (!self->ocsp_url || !self->crl_url)
        umb_log_warn (log, "ca: no %s URL: issued certificates will not carry it",
                      self->ocsp_url ? "CRL" : "OCSP");
    ERR_clear_error ();
    return self;
failed:
    EVP_PKEY_free (root_key);
    umb_ca_destroy (&self);
    ERR_clear_error ();
    return NULL;
}

void
umb_ca_destroy (umb_ca_t **self_p)
{
    assert (self_p);
    umb_ca_t *self = *self_p;
    if (!self)
        return;
    X509_free (self->root);
    for (size_t i = 0; i < self->issuer_count; i++)
        s_issuer_clear (&self->issuers [i]);
    free (self->root_pem);
    free (self->dir);
    free (self->root_key_path);
    free (self->root_cert_path);
    free (self->issuers_dir);
    free (self->current_path);
    free (self->ocsp_url);
    free (self->crl_url);
    free (self);
    *self_p = NULL;
}

int
umb_ca_issue (umb_ca_t *self, const umb_ca_request_t *request, umb_ca_issued_t *issued,
              char *reason, size_t reason_size)
{
    assert (self && request && issued);
    assert (request->profile >= UMB_CA_PROFILE_SERVER && request->profile <= UMB_CA_PROFILE_MESH);
    memset (issued, 0, sizeof (*issued));
    if (reason && reason_size)
        reason [0] = 0;
    int status = s_name_check (request, reason, reason_size);
    if (status)
        return status;
    if (request->ttl_s < UMB_CA_TTL_MIN || request->ttl_s > UMB_CA_TTL_MAX)
        return s_refuse (reason, reason_size, 422, "ttl_s must be from 60 s to 825 days");
    GENERAL_NAMES *sans = NULL;
    status = s_sans_build (request, &sans, reason, reason_size);
    if (status)
        return status;
    EVP_PKEY *subject_key = NULL;
    bool made_here = false;
    status = s_subject_key (request, &subject_key, &made_here, reason, reason_size);
    X509 *cert = NULL;
    EVP_PKEY *issuing_key = NULL;
    const s_issuer_t *issuer = &self->issuers [s_current (self)];
    if (status == 0) {
        cert = s_leaf_new (self, issuer, request, subject_key, sans);
        if (!cert) {
            s_ssl_error (self->log, "cannot build a certificate for '%s'", request->common_name);
            status = s_refuse (reason, reason_size, 500, "internal error");
        }
    }
    if (status == 0 && s_key_read (self, issuer->key_path, &issuing_key))
        status = s_refuse (reason, reason_size, 500, "the issuing CA key is not available");
    if (status == 0 && s_sign (cert, issuing_key)) {
        s_ssl_error (self->log, "cannot sign a certificate for '%s'", request->common_name);
        status = s_refuse (reason, reason_size, 500, "internal error");
    }
    EVP_PKEY_free (issuing_key);
    if (status == 0 && s_issued_fill (cert, made_here ? subject_key : NULL, issued)) {
        s_ssl_error (self->log, "cannot encode the certificate for '%s'", request->common_name);
        umb_ca_issued_free (issued);
        status = s_refuse (reason, reason_size, 500, "internal error");
    }
    if (status == 0) {
        snprintf (issued->issuer, sizeof (issued->issuer), "%s", issuer->id);
        umb_log_info (self->log, "ca: issued %s to '%s' (issuing CA %s), valid until %lld",
                      issued->serial, request->common_name, issuer->id,
                      (long long) issued->not_after);
    }
    X509_free (cert);
    EVP_PKEY_free (subject_key);
    GENERAL_NAMES_free (sans);
    ERR_clear_error ();
    return status;
}

void
umb_ca_issued_free (umb_ca_issued_t *issued)
{
    assert (issued);
    free (issued->certificate_pem);
    if (issued->private_key_pem) {
        OPENSSL_cleanse (issued->private_key_pem, strlen (issued->private_key_pem));
        free (issued->private_key_pem);
    }
    memset (issued, 0, sizeof (*issued));
}

static bool
s_reason_valid (int reason)
{
    return reason >= 0 && reason <= UMB_CA_REASON_AA_COMPROMISE && reason != 7;
}

//  One CRL entry; 0, or -1 if the entry is not valid (logged).
static int
s_crl_add (umb_ca_t *self, X509_CRL *crl, const umb_ca_revoked_t *revoked)
{
    char shown [64];
    s_printable (revoked->serial ? revoked->serial : "(null)", shown, sizeof (shown));
    ASN1_INTEGER *serial = revoked->serial ? s_serial_parse (revoked->serial) : NULL;
    if (!serial || !s_reason_valid (revoked->reason) || revoked->revoked_at < 0) {
        umb_log_error (self->log, "ca: CRL entry '%s' (reason %d, at %lld) is not valid", shown,
                       revoked->reason, (long long) revoked->revoked_at);
        ASN1_INTEGER_free (serial);
        ERR_clear_error ();
        return -1;
    }
    X509_REVOKED *entry = X509_REVOKED_new ();
    ASN1_TIME *when = ASN1_TIME_set (NULL, (time_t) revoked->revoked_at);
    ASN1_ENUMERATED *code = NULL;
    bool ok = entry && when
        && X509_REVOKED_set_serialNumber (entry, serial) == 1
        && X509_REVOKED_set_revocationDate (entry, when) == 1;
    //  RFC 5280 5.3.1: unspecified is expressed by leaving the reason out
    if (ok && revoked->reason != UMB_CA_REASON_UNSPECIFIED)
        ok = (code = ASN1_ENUMERATED_new ())
          && ASN1_ENUMERATED_set (code, revoked->reason) == 1
          && X509_REVOKED_add1_ext_i2d (entry, NID_crl_reason, code, 0, 0) == 1;
    if (ok && X509_CRL_add0_revoked (crl, entry) == 1)
        entry = NULL;
    else
        ok = false;
    if (!ok)
        s_ssl_error (self->log, "cannot add '%s' to a CRL", shown);
    ASN1_ENUMERATED_free (code);
    ASN1_TIME_free (when);
    X509_REVOKED_free (entry);
    ASN1_INTEGER_free (serial);
    return ok ? 0 : -1;
}

uint8_t *
umb_ca_crl (umb_ca_t *self, size_t index, const umb_ca_revoked_t *revoked, size_t count,
            uint64_t crl_number, int64_t next_update_s, size_t *size)
{
    assert (self && size);
    assert (revoked || count == 0);
    assert (index < s_issuer_count (self));
    const s_issuer_t *issuer = &self->issuers [index];
    *size = 0;
    if (next_update_s <= 0) {
        umb_log_error (self->log, "ca: a CRL's next update must be in the future");
        return NULL;
    }
    int64_t now = (int64_t) time (NULL);
    X509_CRL *crl = X509_CRL_new ();
    ASN1_TIME *this_update = ASN1_TIME_set (NULL, (time_t) now);
    ASN1_TIME *next_update = ASN1_TIME_set (NULL, (time_t) (now + next_update_s));
    ASN1_INTEGER *number = ASN1_INTEGER_new ();
    AUTHORITY_KEYID *authority_id = s_authority_key_id (X509_get0_subject_key_id (issuer->cert));
    EVP_PKEY *issuing_key = NULL;
    uint8_t *der = NULL;
    int ok = crl && this_update && next_update && number && authority_id
        && X509_CRL_set_version (crl, X509_CRL_VERSION_2) == 1
        && X509_CRL_set_issuer_name (crl, X509_get_subject_name (issuer->cert)) == 1
        && X509_CRL_set1_lastUpdate (crl, this_update) == 1
        && X509_CRL_set1_nextUpdate (crl, next_update) == 1
        && ASN1_INTEGER_set_uint64 (number, crl_number) == 1
        && X509_CRL_add1_ext_i2d (crl, NID_crl_number, number, 0, 0) == 1
        && X509_CRL_add1_ext_i2d (crl, NID_authority_key_identifier, authority_id, 0, 0) == 1;
    if (!ok)
        s_ssl_error (self->log, "cannot build a CRL");
    for (size_t i = 0; ok && i < count; i++)
        //  removeFromCRL only has a meaning in delta CRLs (RFC 5280 5.3.1):
        //  in a complete CRL the certificate is simply no longer listed.
        if (revoked [i].reason != UMB_CA_REASON_REMOVE_FROM_CRL)
            ok = s_crl_add (self, crl, &revoked [i]) == 0;
    if (ok && s_key_read (self, issuer->key_path, &issuing_key))
        ok = false;
    if (ok && (X509_CRL_sort (crl) != 1
           ||  X509_CRL_sign (crl, issuing_key, s_digest (issuing_key)) <= 0)) {
        s_ssl_error (self->log, "cannot sign a CRL");
        ok = false;
    }
    EVP_PKEY_free (issuing_key);
    int length = ok ? i2d_X509_CRL (crl, NULL) : -1;
    if (length > 0 && (der = malloc ((size_t) length))) {
        unsigned char *cursor = der;
        if (i2d_X509_CRL (crl, &cursor) == length)
            *size = (size_t) length;
        else {
            free (der);
            der = NULL;
        }
    }
    if (ok && !der)
        s_ssl_error (self->log, "cannot encode a CRL");
    AUTHORITY_KEYID_free (authority_id);
    ASN1_INTEGER_free (number);
    ASN1_TIME_free (next_update);
    ASN1_TIME_free (this_update);
    X509_CRL_free (crl);
    ERR_clear_error ();
    return der;
}

const char *
umb_ca_chain_pem (umb_ca_t *self)
{
    assert (self);
    return self->issuers [s_current (self)].chain_pem;
}

const char *
umb_ca_root_pem (umb_ca_t *self)
{
    assert (self);
    return self->root_pem;
}

X509 *
umb_ca_root (umb_ca_t *self)
{
    assert (self);
    return self->root;
}

X509 *
umb_ca_issuing (umb_ca_t *self)
{
    assert (self);
    return self->issuers [s_current (self)].cert;
}

X509 *
umb_ca_ocsp_signer (umb_ca_t *self)
{
    assert (self);
    return self->issuers [s_current (self)].ocsp;
}

EVP_PKEY *
umb_ca_ocsp_key (umb_ca_t *self)
{
    assert (self);
    return self->issuers [s_current (self)].ocsp_key;
}

size_t
umb_ca_issuer_count (umb_ca_t *self)
{
    assert (self);
    return s_issuer_count (self);
}

void
umb_ca_issuer (umb_ca_t *self, size_t index, umb_ca_issuer_t *issuer)
{
    assert (self && issuer && index < s_issuer_count (self));
    const s_issuer_t *own = &self->issuers [index];
    issuer->id = own->id;
    issuer->cert = own->cert;
    issuer->ocsp_signer = own->ocsp;
    issuer->ocsp_key = own->ocsp_key;
    issuer->chain_pem = own->chain_pem;
    issuer->crl_url = own->crl_url;
    issuer->current = index == s_current (self);
    issuer->not_before = s_time_unix (X509_get0_notBefore (own->cert));
    issuer->not_after = s_time_unix (X509_get0_notAfter (own->cert));
}

int
umb_ca_issuer_find (umb_ca_t *self, const char *id)
{
    assert (self && id);
    size_t count = s_issuer_count (self);
    for (size_t i = 0; i < count; i++)
        if (s_streq (self->issuers [i].id, id))
            return (int) i;
    return -1;
}

//  A new issuing CA's files, made in a directory of their own beside where
//  they go, then moved there in one rename: a crash leaves either nothing
//  or the whole issuer (a *.tmp directory is removed at the next load).
static int
s_rotate_files (umb_ca_t *self, EVP_PKEY *root_key, char *id, char **dir)
{
    *dir = NULL;
    int rc = -1;
    s_issuer_t issuer = { .key_type = self->key_type };
    EVP_PKEY *key = s_keygen (self->key_type);
    X509 *ocsp = NULL;
    EVP_PKEY *ocsp_key = NULL;
    char *temporary = NULL;
    if (!key)
        s_ssl_error (self->log, "cannot make a %s key", s_key_type_names [self->key_type]);
    else
    if ((issuer.cert = s_ca_cert_new (self, key, self->root, root_key))) {
        s_serial_hex (X509_get0_serialNumber (issuer.cert), issuer.id);
        if (asprintf (&temporary, "%s/%s.tmp", self->issuers_dir, issuer.id) < 0)
            temporary = NULL;
        *dir = s_path (self->issuers_dir, issuer.id);
    }
    size_t size = 0;
    char *pem = key ? s_key_pem (key, &size) : NULL;
    if (temporary && *dir && pem
    &&  (mkdir (self->issuers_dir, 0700) == 0 || errno == EEXIST)
    &&  mkdir (temporary, 0700) == 0
    &&  s_issuer_paths (&issuer, temporary) == 0
    &&  s_file_publish (self, issuer.key_path, pem, size, 0600, false) == 0
    &&  s_cert_publish (self, issuer.cert_path, issuer.cert, false) == 0
    &&  s_ocsp_make (self, &issuer, key, (int64_t) UMB_CA_OCSP_DAYS * UMB_CA_DAY, &ocsp,
                     &ocsp_key) == 0
    &&  s_ocsp_publish (self, &issuer, ocsp, ocsp_key) == 0
    &&  rename (temporary, *dir) == 0) {
        s_dir_sync (self->issuers_dir);
        snprintf (id, 41, "%s", issuer.id);
        rc = 0;
    }
    else
        umb_log_error (self->log, "ca: cannot make a new issuing CA in %s: %s", self->issuers_dir,
                       errno ? strerror (errno) : "see above");
    if (rc && temporary)
        nftw (temporary, s_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    if (pem)
        OPENSSL_cleanse (pem, size);
    free (pem);
    free (temporary);
    X509_free (ocsp);
    EVP_PKEY_free (ocsp_key);
    EVP_PKEY_free (key);
    s_issuer_clear (&issuer);
    if (rc) {
        free (*dir);
        *dir = NULL;
    }
    return rc;
}

int
umb_ca_rotate (umb_ca_t *self, char id [41])
{
    assert (self && id);
    if (self->issuer_count == UMB_CA_ISSUERS_MAX) {
        umb_log_error (self->log, "ca: %d issuing CAs are in use already; one must expire first",
                       UMB_CA_ISSUERS_MAX);
        return -1;
    }
    EVP_PKEY *root_key = NULL;
    if (s_key_read (self, self->root_key_path, &root_key) || !root_key) {
        if (!root_key)
            umb_log_error (self->log, "ca: %s is needed to certify a new issuing CA",
                           self->root_key_path);
        EVP_PKEY_free (root_key);
        return -1;
    }
    char *dir = NULL;
    int rc = s_rotate_files (self, root_key, id, &dir);
    EVP_PKEY_free (root_key);
    //  The commit: from here on the new one issues
    if (rc == 0) {
        char line [43];
        int length = snprintf (line, sizeof (line), "%s\n", id);
        rc = s_file_publish (self, self->current_path, line, (size_t) length, 0644, true);
        if (rc)
            umb_log_error (self->log, "ca: cannot write %s: %s", self->current_path,
                           strerror (errno));
    }
    if (rc == 0)
        rc = s_issuer_add (self, dir, NULL, false);
    if (rc == 0) {
        __atomic_store_n (&self->current, self->issuer_count - 1, __ATOMIC_RELEASE);
        umb_log_info (self->log, "ca: issuing CA %s made; it issues from now on (%zu in use)",
                      id, self->issuer_count);
    }
    free (dir);
    ERR_clear_error ();
    return rc;
}

int
umb_ca_key_type_parse (const char *text)
{
    for (size_t i = 0; text && i < sizeof (s_key_type_names) / sizeof (s_key_type_names [0]); i++)
        if (s_streq (text, s_key_type_names [i]))
            return (int) i;
    return -1;
}

int
umb_ca_reason_parse (const char *text)
{
    if (!text || !*text)
        return -1;
    size_t length = strlen (text);
    if (length <= 2 && strspn (text, "0123456789") == length) {
        int reason = atoi (text);
        return s_reason_valid (reason) ? reason : -1;
    }
    for (int i = 0; i <= UMB_CA_REASON_AA_COMPROMISE; i++)
        if (s_reason_names [i] && strcasecmp (text, s_reason_names [i]) == 0)
            return i;
    return -1;
}

const char *
umb_ca_reason_name (int reason)
{
    return s_reason_valid (reason) ? s_reason_names [reason] : NULL;
}

//  ---------------------------------------------------------------------------
//  Selftest

#define UMB_CA_TEST_OCSP_URL  "http://ocsp.umbra.test/ocsp"
#define UMB_CA_TEST_CRL_URL   "http://ca.umbra.test/crl/issuing.crl"

static int s_test_run (char *output, size_t size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Runs a shell command; its exit status, and its stdout and stderr in output.
static int
s_test_run (char *output, size_t size, const char *format, ...)
{
    char command [2048];
    va_list args;
    va_start (args, format);
    int length = vsnprintf (command, sizeof (command) - 8, format, args);
    va_end (args);
    assert (length > 0 && (size_t) length < sizeof (command) - 8);
    strcat (command, " 2>&1");
    FILE *pipe = popen (command, "r");
    assert (pipe);
    size_t used = fread (output, 1, size - 1, pipe);
    output [used] = 0;
    int status = pclose (pipe);
    assert (status != -1 && WIFEXITED (status));
    return WEXITSTATUS (status);
}

static void
s_test_write (const char *dir, const char *name, const void *data, size_t size)
{
    char *path = s_path (dir, name);
    assert (path);
    FILE *file = fopen (path, "wb");
    assert (file);
    assert (fwrite (data, 1, size, file) == size);
    assert (fclose (file) == 0);
    free (path);
}

static X509 *
s_test_x509 (const char *pem)
{
    BIO *bio = BIO_new_mem_buf (pem, -1);
    X509 *cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
    BIO_free (bio);
    assert (cert);
    return cert;
}

static void
s_test_fingerprint (X509 *cert, char hex [65])
{
    unsigned char md [EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    assert (X509_digest (cert, EVP_sha256 (), md, &size) == 1 && size == 32);
    s_hex (md, size, hex);
}

//  A CSR that asks for more than it gets: another subject, CA:TRUE, a SAN.
static char *
s_test_csr (EVP_PKEY *key, bool tamper)
{
    X509_REQ *csr = X509_REQ_new ();
    assert (csr);
    X509_NAME *name = X509_REQ_get_subject_name (csr);
    assert (X509_NAME_add_entry_by_txt (name, "O", MBSTRING_ASC,
                                        (const unsigned char *) "elsewhere", -1, -1, 0));
    assert (X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_ASC,
                                        (const unsigned char *) "csr-subject", -1, -1, 0));
    assert (X509_REQ_set_version (csr, X509_REQ_VERSION_1) == 1);
    assert (X509_REQ_set_pubkey (csr, key) == 1);
    STACK_OF (X509_EXTENSION) *extensions = sk_X509_EXTENSION_new_null ();
    X509_EXTENSION *extension = X509V3_EXT_nconf_nid (NULL, NULL, NID_basic_constraints,
                                                      "critical,CA:TRUE");
    assert (extension && sk_X509_EXTENSION_push (extensions, extension));
    extension = X509V3_EXT_nconf_nid (NULL, NULL, NID_subject_alt_name, "DNS:evil.test");
    assert (extension && sk_X509_EXTENSION_push (extensions, extension));
    assert (X509_REQ_add_extensions (csr, extensions) == 1);
    sk_X509_EXTENSION_pop_free (extensions, X509_EXTENSION_free);
    assert (X509_REQ_sign (csr, key, s_digest (key)) > 0);
    unsigned char *der = NULL;
    int size = i2d_X509_REQ (csr, &der);
    assert (size > 0);
    if (tamper)
        der [size - 1] ^= 0x01;     //  the last byte belongs to the signature
    BIO *bio = BIO_new (BIO_s_mem ());
    assert (PEM_write_bio (bio, "CERTIFICATE REQUEST", "", der, size) > 0);
    char *data = NULL;
    long length = BIO_get_mem_data (bio, &data);
    char *pem = strndup (data, (size_t) length);
    assert (pem);
    BIO_free (bio);
    OPENSSL_free (der);
    X509_REQ_free (csr);
    return pem;
}

static char *
s_test_crl_pem (const uint8_t *der, size_t size)
{
    const unsigned char *cursor = der;
    X509_CRL *crl = size <= (size_t) INT32_MAX ? d2i_X509_CRL (NULL, &cursor, (long) size) : NULL;
    BIO *bio = crl ? BIO_new (BIO_s_mem ()) : NULL;
    char *copy = NULL;
    if (bio && cursor == der + size && PEM_write_bio_X509_CRL (bio, crl) == 1) {
        char *data = NULL;
        long length = BIO_get_mem_data (bio, &data);
        if (length > 0 && (copy = malloc ((size_t) length + 1))) {
            memcpy (copy, data, (size_t) length);
            copy [length] = 0;
        }
    }
    BIO_free (bio);
    X509_CRL_free (crl);
    ERR_clear_error ();
    return copy;
}

static int
s_test_issue (umb_ca_t *ca, const umb_ca_request_t *request, umb_ca_issued_t *issued,
              char *reason, size_t reason_size)
{
    int status = umb_ca_issue (ca, request, issued, reason, reason_size);
    assert (ERR_peek_error () == 0);
    if (status)
        assert (issued->certificate_pem == NULL && reason [0]);
    return status;
}

static void
s_test_refused (umb_ca_t *ca, const umb_ca_request_t *request, int expected, const char *text)
{
    umb_ca_issued_t issued;
    char reason [256];
    int status = s_test_issue (ca, request, &issued, reason, sizeof (reason));
    if (status != expected || !strstr (reason, text)) {
        fprintf (stderr, "umb_ca: expected %d '%s', got %d '%s'\n", expected, text, status, reason);
        assert (false);
    }
}

static int
s_test_sans_count (X509 *cert, int type, const char *text)
{
    GENERAL_NAMES *names = X509_get_ext_d2i (cert, NID_subject_alt_name, NULL, NULL);
    int found = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num (names); i++) {
        GENERAL_NAME *name = sk_GENERAL_NAME_value (names, i);
        int name_type;
        ASN1_STRING *value = GENERAL_NAME_get0_value (name, &name_type);
        size_t size = text ? strlen (text) : 0;
        if (name_type == type
        &&  (!text || (ASN1_STRING_length (value) == (int) size
                       && memcmp (ASN1_STRING_get0_data (value), text, size) == 0)))
            found++;
    }
    GENERAL_NAMES_free (names);
    return found;
}

static int
s_test_remove (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove (path);
}

//  The serial as `openssl crl -text` prints it: upper case, whole octets.
static void
s_test_serial_upper (const char *serial, char *out)
{
    size_t at = 0;
    if (strlen (serial) % 2)
        out [at++] = '0';
    for (const char *c = serial; *c; c++)
        out [at++] = (*c >= 'a' && *c <= 'f') ? (char) (*c - 32) : *c;
    out [at] = 0;
}

static void
s_test_key_files (const char *dir, mode_t expected)
{
    const char *names [] = { "root.key", "issuing.key", "ocsp.key" };
    for (size_t i = 0; i < 3; i++) {
        char *path = s_path (dir, names [i]);
        struct stat st;
        assert (stat (path, &st) == 0 && (st.st_mode & 0777) == expected);
        free (path);
    }
}

//  Several processes making the same CA at once all end with the same one.
static void
s_test_race (const char *base)
{
    char *dir = s_path (base, "race");
    int fds [2];
    assert (pipe (fds) == 0);
    const int children = 4;
    for (int i = 0; i < children; i++) {
        pid_t pid = fork ();
        assert (pid >= 0);
        if (pid == 0) {
            umb_ca_t *ca = umb_ca_load_or_create (dir, UMB_CA_KEY_EC_P256, UMB_CA_TEST_OCSP_URL,
                                                  UMB_CA_TEST_CRL_URL, NULL);
            char record [130] = "failed";
            if (ca) {
                s_test_fingerprint (umb_ca_root (ca), record);
                s_test_fingerprint (umb_ca_issuing (ca), record + 64);
            }
            umb_ca_destroy (&ca);
            _exit (write (fds [1], record, sizeof (record)) == sizeof (record) ? 0 : 1);
        }
    }
    close (fds [1]);
    char records [4][130];
    for (int i = 0; i < children; i++) {
        size_t got = 0;
        while (got < sizeof (records [i])) {
            ssize_t size = read (fds [0], records [i] + got, sizeof (records [i]) - got);
            assert (size > 0);
            got += (size_t) size;
        }
    }
    close (fds [0]);
    for (int i = 0; i < children; i++) {
        int status;
        assert (wait (&status) > 0 && WIFEXITED (status) && WEXITSTATUS (status) == 0);
    }
    umb_ca_t *ca = umb_ca_load_or_create (dir, UMB_CA_KEY_EC_P256, NULL, NULL, NULL);
    assert (ca);
    char mine [130] = "";
    s_test_fingerprint (umb_ca_root (ca), mine);
    s_test_fingerprint (umb_ca_issuing (ca), mine + 64);
    for (int i = 0; i < children; i++)
        assert (memcmp (records [i], mine, sizeof (mine)) == 0);
    umb_ca_destroy (&ca);
    free (dir);
}

//  A signer under 30 days is replaced at the next load.
static void
s_test_ocsp_renewal (umb_ca_t *ca, const char *dir)
{
    EVP_PKEY *issuing_key = NULL;
    assert (s_key_read (ca, ca->issuers [0].key_path, &issuing_key) == 0);
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    assert (s_ocsp_make (ca, &ca->issuers [0], issuing_key, 10 * UMB_CA_DAY, &cert, &key) == 0);
    assert (s_ocsp_publish (ca, &ca->issuers [0], cert, key) == 0);
    EVP_PKEY_free (issuing_key);
    char short_lived [65], renewed [65], again [65];
    s_test_fingerprint (cert, short_lived);
    X509_free (cert);
    EVP_PKEY_free (key);
    umb_ca_t *reloaded = umb_ca_load_or_create (dir, UMB_CA_KEY_EC_P256, NULL, NULL, NULL);
    assert (reloaded);
    s_test_fingerprint (umb_ca_ocsp_signer (reloaded), renewed);
    assert (strcmp (short_lived, renewed) != 0);
    int64_t left = s_time_unix (X509_get0_notAfter (umb_ca_ocsp_signer (reloaded))) - time (NULL);
    assert (left > 360 * (int64_t) UMB_CA_DAY);
    assert (X509_check_private_key (umb_ca_ocsp_signer (reloaded), umb_ca_ocsp_key (reloaded)));
    umb_ca_destroy (&reloaded);
    reloaded = umb_ca_load_or_create (dir, UMB_CA_KEY_EC_P256, NULL, NULL, NULL);
    assert (reloaded);
    s_test_fingerprint (umb_ca_ocsp_signer (reloaded), again);
    assert (s_streq (renewed, again));
    umb_ca_destroy (&reloaded);
}

static void
s_test_requests (umb_ca_t *ca, bool first)
{
    const char *good_sans [] = { "ok.umbra.test", NULL };
    umb_ca_request_t request = {
        .common_name = "ok.umbra.test", .sans = good_sans, .key_type = UMB_CA_KEY_ED25519,
        .profile = UMB_CA_PROFILE_SERVER, .ttl_s = 3600
    };
    const char *bad_sans [] = {
        "exa mple.umbra.test", "-bad.umbra.test", "a..b.test", "trailing.dot.", "*.umbra.test",
        "1.2.3.4:80", "01.2.3.4", "1.2.3", "no-scheme//x", "://x", "1bad:x", "fe80::1%eth0",
        "x@y.test", "", "caf\xc3\xa9.test", "http://a b", "a_b.test", NULL
    };
    for (size_t i = 0; bad_sans [i]; i++) {
        const char *sans [] = { "fine.umbra.test", bad_sans [i], NULL };
        request.sans = sans;
        s_test_refused (ca, &request, 422, "bad subject alternative name");
    }
    char long_label [80];
    memset (long_label, 'a', 64);
    strcpy (long_label + 64, ".test");
    const char *long_sans [] = { long_label, NULL };
    request.sans = long_sans;
    s_test_refused (ca, &request, 422, "bad subject alternative name");
    request.sans = good_sans;

    const char *bad_names [] = {
        "*.umbra.test", "a*b", ".umbra.test", "umbra.test.", "UMBRA ROOT CA", "umbra issuing ca",
        "Umbra OCSP Signer", "", " padded", "tab\there", "bidi\xe2\x80\xaeoverride",
        "bad\xff" "utf8", "overlong\xc0\xaf", NULL
    };
    for (size_t i = 0; bad_names [i]; i++) {
        request.common_name = bad_names [i];
        s_test_refused (ca, &request, 422, "");
    }
    char name [80];
    memset (name, 'n', 65);
    name [65] = 0;
    request.common_name = name;
    s_test_refused (ca, &request, 422, "longer than 64");
    request.common_name = NULL;
    s_test_refused (ca, &request, 422, "common_name is required");
    request.common_name = "ok.umbra.test";
    request.ttl_s = 59;
    s_test_refused (ca, &request, 422, "ttl_s");
    request.ttl_s = UMB_CA_TTL_MAX + 1;
    s_test_refused (ca, &request, 422, "ttl_s");

    if (!first)
        return;
    //  Once: accepted extremes, and CSR key types
    umb_ca_issued_t issued;
    char reason [256];
    request.ttl_s = UMB_CA_TTL_MAX;
    name [64] = 0;
    request.common_name = name;
    assert (s_test_issue (ca, &request, &issued, reason, sizeof (reason)) == 0);
    assert (issued.not_after - issued.not_before == UMB_CA_TTL_MAX);
    umb_ca_issued_free (&issued);
    umb_ca_issued_free (&issued);
    request.common_name = "caf\xc3\xa9 \xe2\x82\xac";
    assert (s_test_issue (ca, &request, &issued, reason, sizeof (reason)) == 0);
    umb_ca_issued_free (&issued);
    request.common_name = "ok.umbra.test";
    request.ttl_s = 60;

    struct { const char *type; const char *parameter; int expected; } keys [] = {
        { "EC", "P-384", 0 }, { "EC", "P-521", 422 }, { "RSA", NULL, 422 }, { "ED448", NULL, 422 }
    };
    for (size_t i = 0; i < sizeof (keys) / sizeof (keys [0]); i++) {
        EVP_PKEY *key = keys [i].parameter
            ? EVP_PKEY_Q_keygen (NULL, NULL, keys [i].type, keys [i].parameter)
            : s_streq (keys [i].type, "RSA") ? EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 1024)
                                           : EVP_PKEY_Q_keygen (NULL, NULL, keys [i].type);
        assert (key);
        char *csr = s_test_csr (key, false);
        request.csr_pem = csr;
        int status = s_test_issue (ca, &request, &issued, reason, sizeof (reason));
        assert (status == keys [i].expected);
        umb_ca_issued_free (&issued);
        free (csr);
        EVP_PKEY_free (key);
    }
    request.csr_pem = "-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n"
                      "-----END CERTIFICATE REQUEST-----\n";
    s_test_refused (ca, &request, 400, "not a PEM certificate request");
    request.csr_pem = "garbage";
    s_test_refused (ca, &request, 400, "not a PEM certificate request");
    request.csr_pem = NULL;

    //  Mesh misuse
    uint8_t zero [32] = { 0 };
    request.profile = UMB_CA_PROFILE_MESH;
    request.common_name = "svc auth";
    s_test_refused (ca, &request, 422, "mesh identity name");
    request.common_name = "svc-auth";
    s_test_refused (ca, &request, 422, "needs x25519_public");
    request.x25519_public = zero;
    s_test_refused (ca, &request, 422, "not a usable key");
    request.csr_pem = "anything";
    s_test_refused (ca, &request, 422, "not a CSR");
    request.csr_pem = NULL;
    request.profile = UMB_CA_PROFILE_CLIENT;
    s_test_refused (ca, &request, 422, "mesh certificates only");
}

static void
s_test_crl_checks (umb_ca_t *ca, const uint8_t *der, size_t size, const char *serial_1,
                   const char *serial_2)
{
    const unsigned char *cursor = der;
    X509_CRL *crl = d2i_X509_CRL (NULL, &cursor, (long) size);
    assert (crl && cursor == der + size);
    assert (X509_CRL_get_version (crl) == X509_CRL_VERSION_2);
    X509 *issuing = umb_ca_issuing (ca);
    assert (X509_NAME_cmp (X509_CRL_get_issuer (crl), X509_get_subject_name (issuing)) == 0);
    assert (X509_CRL_verify (crl, X509_get0_pubkey (issuing)) == 1);
    int64_t this_update = s_time_unix (X509_CRL_get0_lastUpdate (crl));
    int64_t next_update = s_time_unix (X509_CRL_get0_nextUpdate (crl));
    assert (next_update - this_update == 7 * UMB_CA_DAY);
    ASN1_INTEGER *number = X509_CRL_get_ext_d2i (crl, NID_crl_number, NULL, NULL);
    assert (number && ASN1_INTEGER_get (number) == 42);
    ASN1_INTEGER_free (number);
    AUTHORITY_KEYID *authority_id = X509_CRL_get_ext_d2i (crl, NID_authority_key_identifier,
                                                          NULL, NULL);
    assert (authority_id);
    assert (ASN1_OCTET_STRING_cmp (authority_id->keyid, X509_get0_subject_key_id (issuing)) == 0);
    AUTHORITY_KEYID_free (authority_id);
    STACK_OF (X509_REVOKED) *entries = X509_CRL_get_REVOKED (crl);
    assert (sk_X509_REVOKED_num (entries) == 2);       //  removeFromCRL left out
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        X509_REVOKED *entry = sk_X509_REVOKED_value (entries, i);
        char hex [41];
        s_serial_hex (X509_REVOKED_get0_serialNumber (entry), hex);
        ASN1_ENUMERATED *code = X509_REVOKED_get_ext_d2i (entry, NID_crl_reason, NULL, NULL);
        assert (code);
        long reason = ASN1_ENUMERATED_get (code);
        ASN1_ENUMERATED_free (code);
        int64_t when = s_time_unix (X509_REVOKED_get0_revocationDate (entry));
        if (s_streq (hex, serial_1) && reason == UMB_CA_REASON_KEY_COMPROMISE && when == 1700000000)
            seen |= 1;
        if (s_streq (hex, serial_2) && reason == UMB_CA_REASON_SUPERSEDED && when == 1700000100)
            seen |= 2;
    }
    assert (seen == 3);
    X509_CRL_free (crl);
}

static void
s_test_pass (const char *base, umb_ca_key_type_t type, bool verbose)
{
    struct timespec started;
    clock_gettime (CLOCK_MONOTONIC, &started);
    char *dir = s_path (base, s_key_type_names [type]);
    umb_ca_t *ca = umb_ca_load_or_create (dir, type, UMB_CA_TEST_OCSP_URL, UMB_CA_TEST_CRL_URL,
                                          NULL);
    assert (ca);
    assert (ERR_peek_error () == 0);
    X509 *root = umb_ca_root (ca), *issuing = umb_ca_issuing (ca), *ocsp = umb_ca_ocsp_signer (ca);
    assert (root && issuing && ocsp && umb_ca_ocsp_key (ca));
    assert (s_key_type_of (X509_get0_pubkey (root)) == (int) type);
    assert (s_key_type_of (umb_ca_ocsp_key (ca)) == (int) type);
    assert (X509_get_pathlen (root) == 1 && X509_get_pathlen (issuing) == 0);
    assert (X509_get_key_usage (root) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    assert (X509_get_key_usage (issuing) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    assert (X509_check_ca (root) && X509_check_ca (issuing) && !X509_check_ca (ocsp));
    assert (X509_get_extended_key_usage (ocsp) == XKU_OCSP_SIGN);
    assert (X509_get_key_usage (ocsp) == KU_DIGITAL_SIGNATURE);
    assert (X509_get_ext_by_NID (ocsp, NID_id_pkix_OCSP_noCheck, -1) >= 0);
    assert (X509_check_issued (issuing, ocsp) == X509_V_OK);
    assert (X509_check_private_key (ocsp, umb_ca_ocsp_key (ca)) == 1);
    assert (X509_NAME_get_index_by_NID (X509_get_subject_name (root), NID_commonName, -1) >= 0);
    char *root_pem = s_cert_pem (root);
    assert (s_streq (umb_ca_root_pem (ca), root_pem));
    const char *chain = umb_ca_chain_pem (ca);
    assert (strstr (chain, root_pem) && strstr (chain, root_pem) != chain);
    free (root_pem);
    s_test_key_files (dir, 0600);
    struct stat st;
    assert (stat (dir, &st) == 0 && (st.st_mode & 0777) == 0700);
    struct stat key_before, key_after;
    char *root_key_path = s_path (dir, "root.key");
    char *issuing_key_path = s_path (dir, "issuing.key");
    assert (stat (root_key_path, &key_before) == 0);

    //  Reload: same certificates, no new keys
    char fingerprints [3][65], reloaded [3][65];
    s_test_fingerprint (root, fingerprints [0]);
    s_test_fingerprint (issuing, fingerprints [1]);
    s_test_fingerprint (ocsp, fingerprints [2]);
    umb_ca_t *again = umb_ca_load_or_create (dir, (type + 1) % 3, UMB_CA_TEST_OCSP_URL,
                                             UMB_CA_TEST_CRL_URL, NULL);
    assert (again);
    s_test_fingerprint (umb_ca_root (again), reloaded [0]);
    s_test_fingerprint (umb_ca_issuing (again), reloaded [1]);
    s_test_fingerprint (umb_ca_ocsp_signer (again), reloaded [2]);
    assert (memcmp (fingerprints, reloaded, sizeof (fingerprints)) == 0);
    assert (stat (root_key_path, &key_after) == 0);
    assert (key_before.st_ino == key_after.st_ino
            && key_before.st_mtim.tv_nsec == key_after.st_mtim.tv_nsec);
    umb_ca_destroy (&again);
    umb_ca_destroy (&again);

    //  The root key may be kept offline once the issuing CA exists
    char *offline_path = s_path (dir, "root.key.offline");
    assert (rename (root_key_path, offline_path) == 0);
    again = umb_ca_load_or_create (dir, type, NULL, NULL, NULL);
    assert (again);
    s_test_fingerprint (umb_ca_issuing (again), reloaded [1]);
    assert (s_streq (reloaded [1], fingerprints [1]));
    umb_ca_destroy (&again);
    assert (rename (offline_path, root_key_path) == 0);
    free (offline_path);

    //  Key files readable by others are refused, at load and at signing
    assert (chmod (root_key_path, 0644) == 0);
    assert (umb_ca_load_or_create (dir, type, NULL, NULL, NULL) == NULL);
    assert (ERR_peek_error () == 0);
    assert (chmod (root_key_path, 0600) == 0);
    assert (chmod (issuing_key_path, 0640) == 0);
    umb_ca_issued_t issued;
    char reason [256];
    umb_ca_request_t request = {
        .common_name = "api.umbra.test", .key_type = UMB_CA_KEY_EC_P256,
        .profile = UMB_CA_PROFILE_SERVER, .ttl_s = 30 * UMB_CA_DAY
    };
    assert (s_test_issue (ca, &request, &issued, reason, sizeof (reason)) == 500);
    assert (chmod (issuing_key_path, 0600) == 0);

    //  Server certificate from a CSR
    EVP_PKEY *csr_key = type == UMB_CA_KEY_EC_P256 ? EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256")
                      : type == UMB_CA_KEY_ED25519 ? EVP_PKEY_Q_keygen (NULL, NULL, "ED25519")
                      : NULL;
    if (!csr_key) {
        //  RSA keys are slow to make: reuse the one this CA made for OCSP
        csr_key = umb_ca_ocsp_key (ca);
        EVP_PKEY_up_ref (csr_key);
    }
    char *csr = s_test_csr (csr_key, false);
    const char *sans [] = { "api.umbra.test", "10.1.2.3", "fd00::1", "spiffe://umbra/api", NULL };
    request.csr_pem = csr;
    request.sans = sans;
    assert (s_test_issue (ca, &request, &issued, reason, sizeof (reason)) == 0);
    assert (issued.certificate_pem && !issued.private_key_pem);
    assert (issued.not_after - issued.not_before == 30 * UMB_CA_DAY);
    assert (llabs (issued.not_before - (int64_t) time (NULL)) < 5);
    assert (strlen (issued.fingerprint) == 64 && strlen (issued.serial) >= 1);
    assert (issued.serial [0] != '0'
            && strspn (issued.serial, "0123456789abcdef") == strlen (issued.serial));
    X509 *leaf = s_test_x509 (issued.certificate_pem);
    char hex [65];
    s_test_fingerprint (leaf, hex);
    assert (s_streq (hex, issued.fingerprint));
    s_serial_hex (X509_get0_serialNumber (leaf), hex);
    assert (s_streq (hex, issued.serial));
    assert (ASN1_STRING_length (X509_get0_serialNumber (leaf)) <= 16);
    assert (EVP_PKEY_eq (X509_get0_pubkey (leaf), csr_key) == 1);
    assert (X509_NAME_entry_count (X509_get_subject_name (leaf)) == 2);
    char cn [80];
    assert (X509_NAME_get_text_by_NID (X509_get_subject_name (leaf), NID_commonName, cn,
                                       sizeof (cn)) > 0 && s_streq (cn, "api.umbra.test"));
    assert (X509_check_ca (leaf) == 0);
    assert (X509_get_key_usage (leaf) == (type == UMB_CA_KEY_RSA_3072
            ? (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT) : KU_DIGITAL_SIGNATURE));
    assert (X509_get_extended_key_usage (leaf) == XKU_SSL_SERVER);
    assert (s_test_sans_count (leaf, GEN_DNS, NULL) == 1);
    assert (s_test_sans_count (leaf, GEN_DNS, "api.umbra.test") == 1);
    assert (s_test_sans_count (leaf, GEN_IPADD, NULL) == 2);
    assert (s_test_sans_count (leaf, GEN_URI, "spiffe://umbra/api") == 1);
    assert (X509_check_issued (issuing, leaf) == X509_V_OK);
    assert (X509_verify (leaf, X509_get0_pubkey (issuing)) == 1);
    assert (X509_check_host (leaf, "api.umbra.test", 0, 0, NULL) == 1);
    assert (X509_check_ip_asc (leaf, "fd00::1", 0) == 1);
    s_test_write (dir, "leaf.pem", issued.certificate_pem, strlen (issued.certificate_pem));
    umb_ca_issued_free (&issued);
    X509_free (leaf);
    free (csr);

    //  Tampered CSR
    csr = s_test_csr (csr_key, true);
    request.csr_pem = csr;
    s_test_refused (ca, &request, 400, "CSR signature does not verify");
    free (csr);
    EVP_PKEY_free (csr_key);

    //  Client certificate with a key made here (never RSA in the test: slow)
    request.csr_pem = NULL;
    request.sans = NULL;
    request.common_name = "worker-1";
    request.profile = UMB_CA_PROFILE_CLIENT;
    request.key_type = type == UMB_CA_KEY_RSA_3072 ? UMB_CA_KEY_EC_P256 : type;
    assert (s_test_issue (ca, &request, &issued, reason, sizeof (reason)) == 0);
    assert (issued.private_key_pem
            && strstr (issued.private_key_pem, "-----BEGIN PRIVATE KEY-----"));
    leaf = s_test_x509 (issued.certificate_pem);
    BIO *bio = BIO_new_mem_buf (issued.private_key_pem, -1);
    EVP_PKEY *key = PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL);
    BIO_free (bio);
    assert (key && X509_check_private_key (leaf, key) == 1);
    assert (s_key_type_of (key) == (int) request.key_type);
    EVP_PKEY_free (key);
    assert (X509_get_extended_key_usage (leaf) == XKU_SSL_CLIENT);
    assert (X509_get_ext_by_NID (leaf, NID_subject_alt_name, -1) < 0);
    char revoked_1 [41];
    strcpy (revoked_1, issued.serial);
    s_test_write (dir, "revoked.pem", issued.certificate_pem, strlen (issued.certificate_pem));
    umb_ca_issued_free (&issued);
    X509_free (leaf);

    //  Mesh identity from a CURVE public key
    uint8_t curve [32];
    assert (RAND_bytes (curve, sizeof (curve)) == 1);
    memset (&request, 0, sizeof (request));
    request.common_name = "svc-auth";
    request.profile = UMB_CA_PROFILE_MESH;
    request.ttl_s = UMB_CA_DAY;
    request.x25519_public = curve;
    assert (s_test_issue (ca, &request, &issued, reason, sizeof (reason)) == 0);
    assert (!issued.private_key_pem);
    leaf = s_test_x509 (issued.certificate_pem);
    EVP_PKEY *public = X509_get0_pubkey (leaf);
    assert (public && EVP_PKEY_get_base_id (public) == EVP_PKEY_X25519);
    uint8_t raw [32];
    size_t raw_size = sizeof (raw);
    assert (EVP_PKEY_get_raw_public_key (public, raw, &raw_size) == 1 && raw_size == 32);
    assert (memcmp (raw, curve, 32) == 0);
    assert (X509_get_key_usage (leaf) == KU_KEY_AGREEMENT);
    assert (X509_get_extended_key_usage (leaf) == (XKU_SSL_SERVER | XKU_SSL_CLIENT));
    assert (s_test_sans_count (leaf, GEN_URI, "umbra-mesh:svc-auth") == 1);
    assert (X509_verify (leaf, X509_get0_pubkey (issuing)) == 1);
    char revoked_2 [41];
    strcpy (revoked_2, issued.serial);
    s_test_write (dir, "mesh.pem", issued.certificate_pem, strlen (issued.certificate_pem));
    umb_ca_issued_free (&issued);
    X509_free (leaf);

    s_test_requests (ca, type == UMB_CA_KEY_EC_P256);

    //  CRL
    umb_ca_revoked_t revoked [] = {
        { revoked_1, 1700000000, UMB_CA_REASON_KEY_COMPROMISE },
        { revoked_2, 1700000100, UMB_CA_REASON_SUPERSEDED },
        { "abc123", 1700000200, UMB_CA_REASON_REMOVE_FROM_CRL }
    };
    size_t size = 0;
    uint8_t *der = umb_ca_crl (ca, 0, revoked, 3, 42, 7 * UMB_CA_DAY, &size);
    assert (der && size > 0 && ERR_peek_error () == 0);
    s_test_crl_checks (ca, der, size, revoked_1, revoked_2);
    s_test_write (dir, "crl.der", der, size);
    char *crl_pem = s_test_crl_pem (der, size);
    assert (crl_pem && strstr (crl_pem, "-----BEGIN X509 CRL-----"));
    s_test_write (dir, "crl.pem", crl_pem, strlen (crl_pem));
    free (crl_pem);
    assert (s_test_crl_pem (der, size - 1) == NULL);
    free (der);
    umb_ca_revoked_t bad [] = { { "xyz", 0, 1 }, { "", 0, 1 }, { "0", 0, 1 }, { "ab", 0, 7 },
                                { "ab", 0, 11 }, { "ab", -1, 1 }, { NULL, 0, 1 } };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        assert (umb_ca_crl (ca, 0, &bad [i], 1, 1, UMB_CA_DAY, &size) == NULL && size == 0);
        assert (ERR_peek_error () == 0);
    }
    assert (umb_ca_crl (ca, 0, revoked, 1, 1, 0, &size) == NULL);
    der = umb_ca_crl (ca, 0, NULL, 0, UINT64_MAX, UMB_CA_DAY, &size);
    assert (der);
    free (der);

    //  Interop with the openssl command line
    char output [16384];
    char upper_1 [48], upper_2 [48];
    s_test_serial_upper (revoked_1, upper_1);
    s_test_serial_upper (revoked_2, upper_2);
    const char *openssl = "/usr/bin/openssl";
    assert (s_test_run (output, sizeof (output), "cd '%s' && %s verify -CAfile root.pem -untrusted "
                        "issuing.pem leaf.pem mesh.pem ocsp.pem", dir, openssl) == 0);
    assert (strstr (output, "leaf.pem: OK") && strstr (output, "mesh.pem: OK")
            && strstr (output, "ocsp.pem: OK"));
    assert (s_test_run (output, sizeof (output), "cd '%s' && %s x509 -text -noout -in leaf.pem",
                        dir, openssl) == 0);
    assert (strstr (output, "OCSP - URI:" UMB_CA_TEST_OCSP_URL));
    assert (strstr (output, "X509v3 CRL Distribution Points"));
    assert (strstr (output, "URI:" UMB_CA_TEST_CRL_URL));
    assert (strstr (output, "DNS:api.umbra.test, IP Address:10.1.2.3, "
                            "IP Address:FD00:0:0:0:0:0:0:1, URI:spiffe://umbra/api"));
    assert (strstr (output, "CA:FALSE") && strstr (output, "TLS Web Server Authentication"));
    assert (strstr (output, "Subject: O = umbra, CN = api.umbra.test"));
    assert (s_test_run (output, sizeof (output), "cd '%s' && %s crl -inform DER -in crl.der "
                        "-text -noout", dir, openssl) == 0);
    assert (strstr (output, "X509v3 CRL Number") && strstr (output, "42"));
    assert (strstr (output, upper_1) && strstr (output, upper_2));
    assert (strstr (output, "Key Compromise") && strstr (output, "Superseded"));
    assert (strstr (output, "Issuer: O = umbra, CN = umbra issuing CA"));
    assert (s_test_run (output, sizeof (output), "cd '%s' && %s verify -crl_check -CRLfile crl.pem "
                        "-CAfile root.pem -untrusted issuing.pem revoked.pem", dir, openssl) != 0);
    assert (strstr (output, "certificate revoked"));
    assert (s_test_run (output, sizeof (output), "cd '%s' && %s verify -crl_check -CRLfile crl.pem "
                        "-CAfile root.pem -untrusted issuing.pem mesh.pem", dir, openssl) != 0);
    assert (strstr (output, "certificate revoked"));
    assert (s_test_run (output, sizeof (output), "cd '%s' && %s verify -crl_check -CRLfile crl.pem "
                        "-CAfile root.pem -untrusted issuing.pem leaf.pem", dir, openssl) == 0);
    assert (strstr (output, "leaf.pem: OK"));
    assert (s_test_run (output, sizeof (output), "cd '%s' && %s x509 -text -noout -in ocsp.pem",
                        dir, openssl) == 0);
    assert (strstr (output, "OCSP Signing") && strstr (output, "OCSP No Check"));
    assert (strstr (output, "Subject: O = umbra, CN = umbra OCSP signer"));

    if (type == UMB_CA_KEY_EC_P256) {
        s_test_ocsp_renewal (ca, dir);
        s_test_race (base);
    }
    umb_ca_destroy (&ca);
    umb_ca_destroy (&ca);
    free (root_key_path);
    free (issuing_key_path);
    free (dir);
    if (verbose) {
        struct timespec ended;
        clock_gettime (CLOCK_MONOTONIC, &ended);
        printf ("%s %.2f s; ", s_key_type_names [type], (double) (ended.tv_sec - started.tv_sec)
                + (double) (ended.tv_nsec - started.tv_nsec) / 1e9);
    }
}

//  Rotation: a new issuing CA under the same root issues; the first keeps
//  its CRL and OCSP signer; both come back at the next load; what a rotation
//  left half-made is removed; a current that names no issuer is refused.
static void
s_test_rotate (const char *base)
{
    char *dir = s_path (base, "rotate");
    umb_ca_t *ca = umb_ca_load_or_create (dir, UMB_CA_KEY_EC_P256, UMB_CA_TEST_OCSP_URL,
                                          "http://ca.umbra.test/crl", NULL);
    assert (ca && umb_ca_issuer_count (ca) == 1);
    umb_ca_request_t request = { .common_name = "svc.example", .key_type = UMB_CA_KEY_EC_P256,
                                 .profile = UMB_CA_PROFILE_SERVER, .ttl_s = 3600 };
    umb_ca_issued_t before, after;
    char reason [256];
    assert (s_test_issue (ca, &request, &before, reason, sizeof (reason)) == 0);
    umb_ca_issuer_t first;
    umb_ca_issuer (ca, 0, &first);
    assert (first.current && s_streq (before.issuer, first.id));
    assert (s_streq (first.crl_url, "http://ca.umbra.test/crl"));
    char first_id [41];
    snprintf (first_id, sizeof (first_id), "%s", first.id);

    char id [41] = "";
    assert (umb_ca_rotate (ca, id) == 0 && *id && !s_streq (id, first_id));
    assert (umb_ca_issuer_count (ca) == 2 && umb_ca_issuer_find (ca, id) == 1);
    umb_ca_issuer_t second;
    umb_ca_issuer (ca, 1, &second);
    umb_ca_issuer (ca, 0, &first);
    assert (second.current && !first.current && s_streq (second.id, id));
    char expected_url [128];
    snprintf (expected_url, sizeof (expected_url), "http://ca.umbra.test/crl/%s", id);
    assert (s_streq (second.crl_url, expected_url));
    assert (X509_verify (second.cert, X509_get0_pubkey (umb_ca_root (ca))) == 1);
    assert (X509_check_issued (second.cert, second.ocsp_signer) == X509_V_OK);
    assert (X509_NAME_cmp (X509_get_subject_name (first.cert),
                           X509_get_subject_name (second.cert)) == 0);
    assert (umb_ca_issuing (ca) == second.cert && s_streq (umb_ca_chain_pem (ca), second.chain_pem));
    //  New certificates: the new issuer, its CRL; the old one verifies under the first still
    assert (s_test_issue (ca, &request, &after, reason, sizeof (reason)) == 0);
    assert (s_streq (after.issuer, id));
    BIO *bio = BIO_new_mem_buf (after.certificate_pem, -1);
    X509 *leaf = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
    BIO_free (bio);
    assert (leaf && X509_check_issued (second.cert, leaf) == X509_V_OK
            && X509_check_issued (first.cert, leaf) != X509_V_OK);
    X509_free (leaf);
    bio = BIO_new_mem_buf (before.certificate_pem, -1);
    leaf = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
    BIO_free (bio);
    assert (leaf && X509_check_issued (first.cert, leaf) == X509_V_OK);
    X509_free (leaf);
    //  Each signs its own CRL
    size_t size = 0;
    for (size_t index = 0; index < 2; index++) {
        umb_ca_issuer_t issuer;
        umb_ca_issuer (ca, index, &issuer);
        uint8_t *der = umb_ca_crl (ca, index, NULL, 0, 1, UMB_CA_DAY, &size);
        const unsigned char *cursor = der;
        X509_CRL *crl = d2i_X509_CRL (NULL, &cursor, (long) size);
        assert (crl && X509_CRL_verify (crl, X509_get0_pubkey (issuer.cert)) == 1);
        umb_ca_issuer_t other;
        umb_ca_issuer (ca, 1 - index, &other);
        assert (X509_CRL_verify (crl, X509_get0_pubkey (other.cert)) != 1);
        ERR_clear_error ();
        X509_CRL_free (crl);
        free (der);
    }
    umb_ca_issued_free (&before);
    umb_ca_issued_free (&after);
    umb_ca_destroy (&ca);

    //  The next load: both, the second current; a half-made rotation is gone
    char *issuers = s_path (dir, "issuers");
    char *stale = s_path (issuers, "abc.tmp");
    assert (mkdir (stale, 0700) == 0);
    s_test_write (stale, "issuing.key", "half", 4);
    ca = umb_ca_load_or_create (dir, UMB_CA_KEY_EC_P256, UMB_CA_TEST_OCSP_URL,
                                "http://ca.umbra.test/crl", NULL);
    assert (ca && umb_ca_issuer_count (ca) == 2);
    assert (access (stale, F_OK) != 0);
    umb_ca_issuer (ca, 1, &second);
    assert (second.current && s_streq (second.id, id));
    umb_ca_destroy (&ca);
    //  A current naming an issuer that is not there: refused, not the first instead
    char *current = s_path (dir, "current");
    s_test_write (dir, "current", "beef\n", 5);
    ERR_clear_error ();
    assert (umb_ca_load_or_create (dir, UMB_CA_KEY_EC_P256, NULL, NULL, NULL) == NULL);
    //  ... and the second's directory without its key: refused too
    char *second_dir = s_path (issuers, id);
    char *second_key = s_path (second_dir, "issuing.key");
    char line [43];
    snprintf (line, sizeof (line), "%s\n", id);
    s_test_write (dir, "current", line, strlen (line));
    char *moved = s_path (dir, "moved.key");
    assert (rename (second_key, moved) == 0);
    assert (umb_ca_load_or_create (dir, UMB_CA_KEY_EC_P256, NULL, NULL, NULL) == NULL);
    assert (rename (moved, second_key) == 0);
    ca = umb_ca_load_or_create (dir, UMB_CA_KEY_EC_P256, NULL, NULL, NULL);
    assert (ca && umb_ca_issuer_count (ca) == 2);
    //  Without the root key no new issuing CA can be made, and nothing changes
    char *root_key = s_path (dir, "root.key");
    char *root_moved = s_path (dir, "root.moved");
    assert (rename (root_key, root_moved) == 0);
    char none [41] = "";
    assert (umb_ca_rotate (ca, none) == -1 && umb_ca_issuer_count (ca) == 2);
    assert (rename (root_moved, root_key) == 0);
    umb_ca_destroy (&ca);
    ERR_clear_error ();
    free (root_key);
    free (root_moved);
    free (moved);
    free (second_key);
    free (second_dir);
    free (current);
    free (stale);
    free (issuers);
    free (dir);
}

void
umb_ca_test (bool verbose)
{
    if (verbose)
        printf (" * umb_ca: ");
    assert (umb_ca_key_type_parse ("ec-p256") == UMB_CA_KEY_EC_P256);
    assert (umb_ca_key_type_parse ("rsa-3072") == UMB_CA_KEY_RSA_3072);
    assert (umb_ca_key_type_parse ("ed25519") == UMB_CA_KEY_ED25519);
    assert (umb_ca_key_type_parse ("rsa") == -1 && umb_ca_key_type_parse (NULL) == -1);
    assert (umb_ca_reason_parse ("keyCompromise") == 1);
    assert (umb_ca_reason_parse ("superseded") == 4);
    assert (umb_ca_reason_parse ("aACompromise") == 10);
    assert (umb_ca_reason_parse ("removeFromCRL") == 8);
    assert (umb_ca_reason_parse ("0") == 0 && umb_ca_reason_parse ("10") == 10);
    assert (umb_ca_reason_parse ("7") == -1 && umb_ca_reason_parse ("11") == -1);
    assert (umb_ca_reason_parse ("-1") == -1 && umb_ca_reason_parse ("") == -1);
    assert (umb_ca_reason_parse ("1x") == -1 && umb_ca_reason_parse ("bogus") == -1);
    for (int reason = 0; reason <= 10; reason++)
        assert (reason == 7 ? umb_ca_reason_name (reason) == NULL
                            : umb_ca_reason_parse (umb_ca_reason_name (reason)) == reason);
    assert (umb_ca_reason_name (-1) == NULL && umb_ca_reason_name (11) == NULL);

    ASN1_INTEGER *serial = s_serial_parse ("0a0b");
    char hex [41];
    s_serial_hex (serial, hex);
    assert (s_streq (hex, "a0b"));
    ASN1_INTEGER_free (serial);

    char base [] = "/tmp/umb_ca_test_XXXXXX";
    assert (mkdtemp (base));
    //  A directory others can write to is refused
    char *open_dir = s_path (base, "open");
    assert (mkdir (open_dir, 0777) == 0 && chmod (open_dir, 0777) == 0);
    assert (umb_ca_load_or_create (open_dir, UMB_CA_KEY_EC_P256, NULL, NULL, NULL) == NULL);
    assert (umb_ca_load_or_create (base, UMB_CA_KEY_EC_P256, "no scheme", NULL, NULL) == NULL);
    free (open_dir);

    s_test_pass (base, UMB_CA_KEY_EC_P256, verbose);
    s_test_pass (base, UMB_CA_KEY_ED25519, verbose);
    s_test_pass (base, UMB_CA_KEY_RSA_3072, verbose);
    s_test_rotate (base);
    assert (ERR_peek_error () == 0);
    assert (nftw (base, s_test_remove, 16, FTW_DEPTH | FTW_PHYS) == 0);
    if (verbose)
        printf ("OK\n");
}
