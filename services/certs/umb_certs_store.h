//  umb_certs_store - the certs service's SQL: schema migrations and one
//  function per query over a umb_store_t
//
//  Functions take the store (borrowed) and never open transactions: the
//  service wraps every write in umb_store_begin/commit, so a revocation, its
//  CRL and the mesh revocation version commit or roll back together.
//  Lookups return 0 (found), UMB_CERTS_NOT_FOUND, or -1 on a database error
//  (logged by umb_store). Writes return 0, UMB_STORE_CONSTRAINT, or -1.
//  Times are seconds since the epoch.
#ifndef UMB_CERTS_STORE_H_INCLUDED
#define UMB_CERTS_STORE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "umb_store.h"

#define UMB_CERTS_NOT_FOUND 1

//  One certificate row. The three char * fields are owned by the row when it
//  was filled by the store (free them with umb_certs_cert_clear); for
//  umb_certs_store_insert they are borrowed.
typedef struct {
    char     serial [41];           //  lowercase hex, no leading zeros
    char     kind [8];              //  "tls" | "mesh"
    char     workspace_id [64];     //  "" for mesh certificates
    char     common_name [257];     //  for mesh certificates, the identity's name
    char    *sans;                  //  JSON array of strings ("[]" when none)
    char     profile [16];          //  "server" | "client" | "mesh"
    char     key_type [16];         //  of the certificate's key: "ec-p256", "rsa-3072", ...
    char     public_key [41];       //  Z85 CURVE key of mesh certificates, else ""
    char    *csr;                   //  the PKCS#10 request it was issued from, NULL if the key was made here
    char    *pem;                   //  the certificate
    char     fingerprint [65];      //  SHA-256 of the DER, hex
    int64_t  not_before;
    int64_t  not_after;
    int64_t  revoked_at;            //  0 when not revoked
    int      reason;                //  RFC 5280 CRLReason, when revoked
    char     created_by [64];       //  user id, or the mesh key (Z85) of the calling service
    int64_t  created_at;
    char     renewed_from [41];     //  serial this one renews, or ""
    char     issuer [41];           //  serial of the issuing CA that signed it
} umb_certs_cert_t;

//  Status filter of umb_certs_store_list: what "status" a cert reports.
typedef enum {
    UMB_CERTS_ANY = 0,
    UMB_CERTS_VALID,                //  not revoked, not_after in the future
    UMB_CERTS_REVOKED,
    UMB_CERTS_EXPIRED               //  not revoked, not_after passed
} umb_certs_filter_t;

//  The state of the last CRL made.
typedef struct {
    int64_t  number;                //  0 when none was made yet
    int64_t  this_update;
    int64_t  next_update;
    char    *der_base64;            //  owned; NULL when none
} umb_certs_crl_row_t;

typedef void (umb_certs_cert_fn) (void *arg, const umb_certs_cert_t *cert);
//  One revoked or issued serial, with its issuing CA's serial: revoked_at 0
//  means not revoked.
typedef void (umb_certs_serial_fn) (void *arg, const char *serial, const char *issuer,
                                    int64_t revoked_at, int reason);

//  Opens the database at path (":memory:" allowed) and migrates it.
umb_store_t *umb_certs_store_open (const char *path, umb_log_t *log);

void umb_certs_cert_clear (umb_certs_cert_t *cert);

int  umb_certs_store_insert (umb_store_t *store, const umb_certs_cert_t *cert);
int  umb_certs_store_get (umb_store_t *store, const char *serial, umb_certs_cert_t *cert);
//  The TLS certificates of workspace_id, or (NULL) the mesh certificates,
//  newest first, filtered by their status at now.
int  umb_certs_store_list (umb_store_t *store, const char *workspace_id, umb_certs_filter_t filter,
                           int64_t now, umb_certs_cert_fn *each, void *arg);
//  Marks serial revoked; UMB_CERTS_NOT_FOUND when it does not exist or is
//  revoked already.
int  umb_certs_store_revoke (umb_store_t *store, const char *serial, int64_t revoked_at,
                             int reason);
//  issuer's revoked certificates that have not expired at now: what its CRL
//  lists.
int  umb_certs_store_revoked (umb_store_t *store, const char *issuer, int64_t now,
                              umb_certs_serial_fn *each, void *arg);
//  Every serial with its revocation (for the OCSP status table).
int  umb_certs_store_serials (umb_store_t *store, umb_certs_serial_fn *each, void *arg);
//  Names the first issuing CA where rows from before several issuers ('')
//  leave it unnamed: certificates and the CRL.
int  umb_certs_store_adopt (umb_store_t *store, const char *first_issuer);
int64_t umb_certs_store_count (umb_store_t *store);

//  The last CRL of issuer (its issuing CA's serial).
int  umb_certs_store_crl_get (umb_store_t *store, const char *issuer, umb_certs_crl_row_t *crl);
int  umb_certs_store_crl_put (umb_store_t *store, const char *issuer, int64_t number,
                              int64_t this_update, int64_t next_update, const char *der_base64);
void umb_certs_crl_row_clear (umb_certs_crl_row_t *crl);

//  The mesh revocation version: a counter raised by every mesh revocation.
//  -1 on error.
int64_t umb_certs_store_mesh_version (umb_store_t *store);
int  umb_certs_store_mesh_version_bump (umb_store_t *store);
//  Distinct Z85 keys of revoked mesh certificates that have not expired at now.
int  umb_certs_store_mesh_revoked_keys (umb_store_t *store, int64_t now,
                                        void (*each) (void *arg, const char *key), void *arg);
//  Distinct Z85 keys holding a mesh certificate valid at now, of which none was ever revoked.
int  umb_certs_store_mesh_certified_keys (umb_store_t *store, int64_t now,
                                          void (*each) (void *arg, const char *key), void *arg);
//  1 if any mesh certificate of public_key was ever revoked, 0 if none, -1.
int  umb_certs_store_mesh_key_revoked (umb_store_t *store, const char *public_key);
//  A mesh certificate for public_key valid at now and still valid at
//  now + margin_s, the one expiring last.
int  umb_certs_store_mesh_valid (umb_store_t *store, const char *public_key, int64_t now,
                                 int64_t margin_s, umb_certs_cert_t *cert);

void umb_certs_store_test (bool verbose);

#endif
