//  umb_sig - participants' keys, signed statements and SHA3-256 hashing
//
//  A participant proves an upload or a result request by signing a statement
//  (proto/msgpack/agent.md, "Challenges and signed statements"):
//
//      upload:  "umbra-upload-v1" 0x00 role 0x00 computation_id 0x00 sha3_256 (32) challenge (32)
//      result:  "umbra-result-v1" 0x00 computation_id 0x00 challenge (32)
//
//  Key types and signature algorithms:
//
//      Ed25519        Ed25519 (pure) over the statement, 64 bytes
//      ECDSA P-256    ECDSA with SHA-256, DER ECDSA-Sig-Value
//      ECDSA P-384    ECDSA with SHA-384, DER ECDSA-Sig-Value
//      RSA 2048..8192 RSASSA-PSS, SHA-256, MGF1-SHA-256, salt length 32
//
//  Any other key (another curve, RSA outside 2048..8192, DSA, X25519 ...)
//  is refused by umb_sig_key_check, umb_sig_public_load_pem and
//  umb_sig_verify. Typical verifier:
//
//      uint8_t stmt [UMB_SIG_STATEMENT_MAX];
//      ssize_t len = umb_sig_statement_upload ("dataset", id, hash, challenge, stmt, sizeof stmt);
//      if (len < 0
//      ||  umb_sig_verify (key, stmt, len, sig, sig_len, reason, sizeof reason))
//          refuse (reason);
//
//  EVP_PKEY values returned are the caller's (EVP_PKEY_free); private keys are
//  never logged. Returned char * are the caller's to free.
#ifndef UMB_SIG_H_INCLUDED
#define UMB_SIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/evp.h>

#define UMB_SIG_HASH_SIZE        32      //  SHA3-256
#define UMB_SIG_HASH_HEX_SIZE    65      //  64 lowercase hex chars + NUL
#define UMB_SIG_CHALLENGE_SIZE   32
#define UMB_SIG_ID_MAX           255     //  longest computation id in a statement
//  Big enough for any statement whose computation id is at most UMB_SIG_ID_MAX bytes
#define UMB_SIG_STATEMENT_MAX    (16 + 10 + UMB_SIG_ID_MAX + 1 + UMB_SIG_HASH_SIZE + UMB_SIG_CHALLENGE_SIZE)
#define UMB_SIG_SIGNATURE_MAX    1024    //  RSA-8192 signatures are 1024 bytes

#define UMB_SIG_UPLOAD_PREFIX    "umbra-upload-v1"
#define UMB_SIG_RESULT_PREFIX    "umbra-result-v1"

typedef enum {
    UMB_SIG_KEY_NONE = 0,           //  not an allowed key
    UMB_SIG_KEY_ED25519,
    UMB_SIG_KEY_ECDSA_P256,
    UMB_SIG_KEY_ECDSA_P384,
    UMB_SIG_KEY_RSA
} umb_sig_key_type_t;

//  ---------------------------------------------------------------------------
//  Keys

//  Generates a private key. type: "ed25519", "ecdsa" or "ecdsa-p256",
//  "ecdsa-p384", "rsa" (3072 bits); also `umbra certs`' names "ec-p256",
//  "ec-p384", "rsa-3072". NULL for another type or on failure.
EVP_PKEY *
    umb_sig_key_generate (const char *type);

//  Writes the private key (PKCS#8 PEM, unencrypted) to private_path, mode
//  0600, and its public key (SubjectPublicKeyInfo PEM) to public_path (0644;
//  may be NULL to skip). Both files are created with O_EXCL: an existing file
//  is never overwritten. Each is written to a temporary name in the same
//  directory and linked into place, so no half-written file is ever left.
//  0 ok, -1 with the reason.
int
    umb_sig_key_save (EVP_PKEY *key, const char *private_path, const char *public_path,
                      char *reason, size_t reason_size)
    __attribute__ ((warn_unused_result));

//  Reads a private key from a PEM file (PKCS#8 or traditional, unencrypted).
//  Refuses a key type umbra does not allow. NULL with the reason.
EVP_PKEY *
    umb_sig_private_load (const char *path, char *reason, size_t reason_size);

//  Parses a public key: PEM "PUBLIC KEY" (SubjectPublicKeyInfo). Refuses a key
//  type or size umbra does not allow. NULL with the reason.
EVP_PKEY *
    umb_sig_public_load_pem (const char *pem, size_t len, char *reason, size_t reason_size);

//  Reads a public key from a PEM file (as umb_sig_public_load_pem).
EVP_PKEY *
    umb_sig_public_load (const char *path, char *reason, size_t reason_size);

//  The key's public half as SubjectPublicKeyInfo PEM, NUL-terminated; the
//  caller frees it. NULL on failure.
char *
    umb_sig_public_pem (EVP_PKEY *key);

//  The key's public half as DER SubjectPublicKeyInfo; *der is the caller's
//  (OPENSSL_free). Returns the length, or -1.
int
    umb_sig_public_der (EVP_PKEY *key, uint8_t **der);

//  True if a and b have the same public key (DER SubjectPublicKeyInfo equal);
//  either may be a private key. False if either is NULL.
bool
    umb_sig_key_equal (EVP_PKEY *a, EVP_PKEY *b);

//  The key's type, or UMB_SIG_KEY_NONE (and the reason) when umbra does not
//  allow it (other curves, RSA under 2048 or over 8192 bits, other algorithms).
umb_sig_key_type_t
    umb_sig_key_check (EVP_PKEY *key, char *reason, size_t reason_size);

//  "ed25519", "ecdsa-p256", "ecdsa-p384", "rsa" or "none"
const char *
    umb_sig_key_type_name (umb_sig_key_type_t type);

//  ---------------------------------------------------------------------------
//  Statements. Each writes the exact bytes of the statement into out and
//  returns its length, or -1 if role is not "algorithm"/"dataset", the id is
//  empty, longer than UMB_SIG_ID_MAX or holds a NUL, or out is too small.

ssize_t
    umb_sig_statement_upload (const char *role, const char *computation_id,
                              const uint8_t hash [UMB_SIG_HASH_SIZE],
                              const uint8_t challenge [UMB_SIG_CHALLENGE_SIZE],
                              uint8_t *out, size_t out_size);

ssize_t
    umb_sig_statement_result (const char *computation_id,
                              const uint8_t challenge [UMB_SIG_CHALLENGE_SIZE],
                              uint8_t *out, size_t out_size);

//  ---------------------------------------------------------------------------
//  Signatures

//  Signs msg with priv using the algorithm of its type (table above).
//  *sig is malloc'd (the caller frees it), *sig_len its length. 0 ok, -1.
int
    umb_sig_sign (EVP_PKEY *priv, const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len)
    __attribute__ ((warn_unused_result));

//  Verifies sig over msg with pub, using only the algorithm of pub's type.
//  0 if valid; -1 with the reason otherwise (bad signature, key type not
//  allowed, malformed signature).
int
    umb_sig_verify (EVP_PKEY *pub, const uint8_t *msg, size_t len,
                    const uint8_t *sig, size_t sig_len, char *reason, size_t reason_size)
    __attribute__ ((warn_unused_result));

//  ---------------------------------------------------------------------------
//  SHA3-256 (as hex: umb_hex_encode, UMB_SIG_HASH_HEX_SIZE bytes)

//  SHA3-256 of a whole buffer.
void
    umb_sig_sha3 (const void *data, size_t size, uint8_t out [UMB_SIG_HASH_SIZE]);

//  SHA3-256 of a file, read in chunks (never whole in memory). *size_p (if
//  not NULL) gets the file's size. 0 ok, -1 with the reason.
int
    umb_sig_sha3_file (const char *path, uint8_t out [UMB_SIG_HASH_SIZE], uint64_t *size_p,
                       char *reason, size_t reason_size)
    __attribute__ ((warn_unused_result));

//  Incremental SHA3-256 (for streamed uploads). _new returns NULL only on
//  allocation failure; _final writes the hash and may be called once.
typedef struct _umb_sig_sha3_t umb_sig_sha3_t;
umb_sig_sha3_t *umb_sig_sha3_new (void);
void            umb_sig_sha3_update (umb_sig_sha3_t *self, const void *data, size_t size);
void            umb_sig_sha3_final (umb_sig_sha3_t *self, uint8_t out [UMB_SIG_HASH_SIZE]);
void            umb_sig_sha3_destroy (umb_sig_sha3_t **self_p);

//  Selftest
void
    umb_sig_test (bool verbose);

#endif
