//  umb_ca - the platform's certificate authority: a root CA, an intermediate
//  issuing CA and a delegated OCSP signer, kept in a directory; issuance from
//  a CSR or with a key made here, X25519 mesh identities, CRLs
//
//  Files in the CA directory (made on first use; private keys mode 0600):
//    root.pem, root.key           self-signed root (20 years), pathlen 1
//    issuing.pem, issuing.key     the first issuing CA (10 years), pathlen 0, signs leaves and CRLs
//    ocsp.pem, ocsp.key           its delegated OCSP signer (1 year, renewed when under 30
//                                 days): id-kp-OCSPSigning, id-pkix-ocsp-nocheck
//    issuers/<serial>/            each later issuing CA (umb_ca_rotate), with the same four
//                                 files; still loaded, and answering for what it issued,
//                                 until its own certificate expires
//    current                      the serial of the issuing CA that issues, once rotated
//                                 (none: the first)
//  The root and issuing keys are read from disk for each signing and wiped
//  (freed with OPENSSL_cleanse semantics) right after; the OCSP signer's key
//  stays in memory, as it signs on the hot path.
#ifndef UMB_CA_H_INCLUDED
#define UMB_CA_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <openssl/x509.h>
#include <openssl/evp.h>
#include "umb_log.h"

typedef enum {
    UMB_CA_KEY_EC_P256 = 0,     //  default
    UMB_CA_KEY_RSA_3072 = 1,
    UMB_CA_KEY_ED25519 = 2
} umb_ca_key_type_t;

typedef enum {
    UMB_CA_PROFILE_SERVER = 0,  //  TLS server: digitalSignature (+keyEncipherment for RSA), serverAuth
    UMB_CA_PROFILE_CLIENT = 1,  //  TLS client: digitalSignature, clientAuth
    UMB_CA_PROFILE_MESH = 2     //  X25519 mesh identity: keyAgreement, serverAuth+clientAuth
} umb_ca_profile_t;

//  RFC 5280 CRLReason codes.
#define UMB_CA_REASON_UNSPECIFIED          0
#define UMB_CA_REASON_KEY_COMPROMISE       1
#define UMB_CA_REASON_CA_COMPROMISE        2
#define UMB_CA_REASON_AFFILIATION_CHANGED  3
#define UMB_CA_REASON_SUPERSEDED           4
#define UMB_CA_REASON_CESSATION            5
#define UMB_CA_REASON_CERTIFICATE_HOLD     6
#define UMB_CA_REASON_REMOVE_FROM_CRL      8
#define UMB_CA_REASON_PRIVILEGE_WITHDRAWN  9
#define UMB_CA_REASON_AA_COMPROMISE       10

typedef struct _umb_ca_t umb_ca_t;

typedef struct {
    const char        *common_name;     //  required, 1..64 bytes
    const char *const *sans;            //  NULL-terminated DNS names, IP addresses or URIs; may be NULL
    const char        *csr_pem;         //  a PKCS#10 request (signature checked), or NULL:
    umb_ca_key_type_t  key_type;        //  ...then a key of this type is made here
    umb_ca_profile_t   profile;
    int64_t            ttl_s;           //  validity from now, 60 s .. 825 days
    const uint8_t     *x25519_public;   //  UMB_CA_PROFILE_MESH: the 32-byte CURVE public key
} umb_ca_request_t;

typedef struct {
    char     serial [41];               //  lowercase hex, no leading zeros
    char     issuer [41];               //  the serial of the issuing CA that signed it
    char    *certificate_pem;           //  caller frees
    char    *private_key_pem;           //  only when the key was made here; caller wipes and frees
    int64_t  not_before, not_after;     //  Unix seconds
    char     fingerprint [65];          //  SHA-256 of the DER, hex
} umb_ca_issued_t;

//  One revoked certificate, for CRLs and OCSP.
typedef struct {
    const char *serial;                 //  hex
    int64_t     revoked_at;
    int         reason;                 //  UMB_CA_REASON_*
} umb_ca_revoked_t;

//  Loads the CA from dir, creating the three key pairs and certificates on
//  first use with key_type. ocsp_url and crl_url go into issued certificates
//  (AIA, CRL distribution point). NULL on failure (logged once).
umb_ca_t   *umb_ca_load_or_create (const char *dir, umb_ca_key_type_t key_type, const char *ocsp_url,
                                   const char *crl_url, umb_log_t *log);
void        umb_ca_destroy (umb_ca_t **self_p);

//  Issues a certificate. 0 and *issued filled; or an HTTP-like status (400,
//  422) with a reason for people in reason (bad CSR signature, forbidden name,
//  bad SAN, ttl out of range, ...). Nothing is kept: the caller stores it.
int         umb_ca_issue (umb_ca_t *self, const umb_ca_request_t *request, umb_ca_issued_t *issued,
                          char *reason, size_t reason_size);
void        umb_ca_issued_free (umb_ca_issued_t *issued);   //  wipes the private key

//  Signs a CRL (v2) of issuing CA index (umb_ca_issuer) listing revoked,
//  with the CRL number, thisUpdate now and nextUpdate now + next_update_s.
//  Returns DER (caller frees) or NULL.
uint8_t    *umb_ca_crl (umb_ca_t *self, size_t index, const umb_ca_revoked_t *revoked,
                        size_t count, uint64_t crl_number, int64_t next_update_s, size_t *size);

//  The issuing CAs: the first, then each later one, oldest first. One of
//  them issues (current); the others still sign CRLs and answer OCSP for
//  what they issued. At most UMB_CA_ISSUERS_MAX at once.
#define UMB_CA_ISSUERS_MAX 16
typedef struct {
    const char *id;                     //  its certificate's serial
    X509       *cert;
    X509       *ocsp_signer;            //  its delegated OCSP signer
    EVP_PKEY   *ocsp_key;
    const char *chain_pem;              //  its certificate, then the root
    const char *crl_url;                //  the CRL its certificates name, or NULL
    bool        current;
    int64_t     not_before, not_after;
} umb_ca_issuer_t;
size_t      umb_ca_issuer_count (umb_ca_t *self);
//  Fills issuer (everything borrowed from the CA) for index < count.
void        umb_ca_issuer (umb_ca_t *self, size_t index, umb_ca_issuer_t *issuer);
//  The index of the issuing CA whose serial is id, or -1.
int         umb_ca_issuer_find (umb_ca_t *self, const char *id);

//  Makes a new issuing CA under the same root (root.key is needed) and makes
//  it the one that issues; the earlier ones stay. Its certificates name the
//  CRL at crl_url/<id> (the first issuing CA's name crl_url itself). 0 with
//  its serial in id, or -1 (logged; the CA is unchanged). Other threads may
//  issue, sign CRLs and read issuers meanwhile (the issuers are append-only:
//  they see the new one whole, or not yet); one rotation at a time, and not
//  beside umb_ca_issue (the certs service runs both on its one worker).
int         umb_ca_rotate (umb_ca_t *self, char id [41]);

//  PEM of the current issuing CA followed by the root: what "chain" returns.
const char *umb_ca_chain_pem (umb_ca_t *self);
const char *umb_ca_root_pem (umb_ca_t *self);
//  Borrowed certificates and the OCSP signer's key.
X509       *umb_ca_root (umb_ca_t *self);
//  The current issuing CA's.
X509       *umb_ca_issuing (umb_ca_t *self);
X509       *umb_ca_ocsp_signer (umb_ca_t *self);
EVP_PKEY   *umb_ca_ocsp_key (umb_ca_t *self);

//  Parses "ec-p256" | "rsa-3072" | "ed25519"; -1 if unknown.
int         umb_ca_key_type_parse (const char *text);
//  Parses an RFC 5280 reason name ("keyCompromise", "superseded", ...) or its
//  number; -1 if unknown. umb_ca_reason_name is the reverse.
int         umb_ca_reason_parse (const char *text);
const char *umb_ca_reason_name (int reason);

void        umb_ca_test (bool verbose);

#endif
