//  umb_certs_private - the certs actor's state and what its files share
//  (umb_certs.c, umb_certs_tls.c, umb_certs_mesh.c, the selftest); not for
//  other services
#ifndef UMB_CERTS_PRIVATE_H_INCLUDED
#define UMB_CERTS_PRIVATE_H_INCLUDED

#include <czmq.h>
#include "umb_certs.h"
#include "umb_ca.h"
#include "umb_ocsp.h"
#include "umb_certs_store.h"
#include "umb_certs_status.h"
#include "umb_certs_http.h"
#include "umb_worker.h"
#include "umb_auth_client.h"
#include "umb_runtime.h"
#include "umb_service.h"

//  Longest values read from peers before the rules judge them: longer ones
//  are refused by the reader (400), shorter invalid ones by the rules (422).
#define UMB_CERTS_READ_NAME     256         //  common_name, mesh name
#define UMB_CERTS_READ_WORD     32          //  profile, key_type, status, reason
#define UMB_CERTS_READ_SERIAL   64
#define UMB_CERTS_READ_SAN      256
#define UMB_CERTS_READ_CSR      65536
#define UMB_CERTS_MAX_SANS      100
#define UMB_CERTS_MIN_TTL       60
#define UMB_CERTS_QUEUE         32          //  issuances waiting for the worker before 503
//  A mesh certificate of the service's own key is made again when less than
//  this is left of it at start.
#define UMB_CERTS_OWN_MARGIN_S  (7 * 86400)

typedef struct _umb_certs_t umb_certs_t;

//  A signed CRL of one issuing CA: on its way from the CA to the store and
//  the HTTP server, or the one served.
typedef struct {
    uint8_t *der;
    size_t   size;
    char    *pem;
    int64_t  number;
    int64_t  this_update;
    int64_t  next_update;
} umb_certs_crl_t;

struct _umb_certs_t {
    umb_runtime_t      *runtime;        //  borrowed
    umb_config_t       *config;         //  borrowed from the runtime
    umb_log_t          *log;
    zcert_t            *cert;           //  the service's CURVE identity
    umb_auth_client_t  *auth;
    umb_store_t        *store;
    umb_ca_t           *ca;
    umb_certs_status_t *status;         //  what the OCSP responder reads
    umb_ocsp_t         *ocsp;
    umb_certs_http_t   *http;
    umb_service_t      *service;
    umb_worker_t *worker;
    int64_t             default_ttl;
    int64_t             max_ttl;
    int64_t             crl_validity;
    int                 crl_timer;
    //  Each issuing CA's current CRL (by umb_ca_issuer index), as served by
    //  certs.crl and the HTTP server
    umb_certs_crl_t     crls [UMB_CA_ISSUERS_MAX];
    char                failure [512];  //  why start failed; "" when running
};

//  An issuance on its way through the worker: what to ask the CA, what to
//  store with the result, and the deferred request to answer.
typedef struct {
    umb_req_t        *req;
    umb_ca_t         *ca;               //  borrowed, for the worker
    umb_ocsp_t       *ocsp;             //  ...and the responder, for a rotation
    //  What to ask
    char              common_name [UMB_CERTS_READ_NAME + 1];
    char            **sans;             //  NULL-terminated, owned; NULL for none
    char             *csr;              //  owned, or NULL
    umb_ca_key_type_t key_type;
    umb_ca_profile_t  profile;
    int64_t           ttl;
    bool              mesh;
    bool              rotate;           //  not an issuance: a new issuing CA (certs.ca.rotate)
    char              rotated [41];     //  ...its serial, once made
    uint8_t           x25519 [32];
    //  What to store
    char              workspace_id [64];
    char              created_by [64];
    char              renewed_from [41];
    char              public_key [41];  //  Z85, mesh
    //  The CA's answer
    int               status;
    char              reason [256];
    umb_ca_issued_t   issued;
} umb_certs_job_t;

//  ---------------------------------------------------------------- lifecycle
//  The actor in pieces, so a test can reach inside: always returns an
//  object; umb_certs_failure says why it cannot serve ("" if it can).
umb_certs_t *umb_certs_new (umb_runtime_t *runtime);
void         umb_certs_destroy (umb_certs_t **self_p);
const char  *umb_certs_failure (umb_certs_t *self);
//  Serves until $TERM; answers ENDPOINT, PUB, HTTP and REASON on pipe.
void         umb_certs_run (umb_certs_t *self, zsock_t *pipe);

//  ---------------------------------------------------------------- shared helpers
int64_t umb_certs_now (void);
//  Answers for the common failures; each returns the status.
int     umb_certs_bad_request (umb_req_t *req);                   //  400, the reader's error
int     umb_certs_store_error (umb_certs_t *self, umb_req_t *req);  //  500, retryable, logged
//  Ends a write's transaction: commits if rc is 0, else rolls back. 0 when
//  committed, else the 500 answered.
int     umb_certs_commit (umb_certs_t *self, umb_req_t *req, int rc);
//  "valid", "revoked" or "expired" at now.
const char *umb_certs_status_name (const umb_certs_cert_t *cert, int64_t now);
//  Parses a status filter ("valid", "revoked", "expired"); -1 if unknown.
int     umb_certs_filter_parse (const char *text);
//  The key type of a certificate's public key: "ec-p256", "rsa-3072", "ed25519",
//  "x25519", ... ("unknown" if it cannot be told).
void    umb_certs_key_type_of (const char *pem, char *key_type, size_t size);
//  True for a serial as the CA writes them: 1..40 lowercase hex digits, no
//  leading zero.
bool    umb_certs_serial_valid (const char *serial);

//  Submits job (taken) to the worker and defers its request. Returns
//  UMB_DEFERRED, or 503 answered when the worker is saturated.
int     umb_certs_job_submit (umb_certs_t *self, umb_certs_job_t **job_p, umb_req_t *req);
void    umb_certs_job_destroy (umb_certs_job_t **job_p);
//  Stores an issued certificate (one transaction) and records it for OCSP.
//  0, or the 500 answered on req (req may be NULL at start).
int     umb_certs_store_issued (umb_certs_t *self, umb_certs_job_t *job, umb_req_t *req,
                                umb_certs_cert_t *row);

//  Revokes serial (one transaction: the row, the mesh version for mesh
//  certificates, the next CRL), then brings OCSP and the HTTP server up to
//  date and publishes certs.revoked, before the caller answers. 0, or the
//  status answered (404, 409, 500).
int     umb_certs_revoke (umb_certs_t *self, umb_req_t *req, umb_certs_cert_t *cert, int reason);
//  Parses the optional "reason" field into *reason: 0, or 422 answered.
int     umb_certs_reason_read (umb_req_t *req, const char *text, int *reason);

//  Reply objects, as proto/msgpack/certs.md describes them.
void    umb_certs_write_cert (umb_certs_t *self, umb_w_t *w, const umb_certs_cert_t *cert,
                              const char *private_key, int64_t now);
void    umb_certs_write_mesh_cert (umb_w_t *w, const umb_certs_cert_t *cert, int64_t now);

//  ---------------------------------------------------------------- handlers
int  umb_certs_issue (void *state, umb_req_t *req);
int  umb_certs_list (void *state, umb_req_t *req);
int  umb_certs_get (void *state, umb_req_t *req);
int  umb_certs_revoke_op (void *state, umb_req_t *req);
int  umb_certs_renew (void *state, umb_req_t *req);
int  umb_certs_mesh_issue (void *state, umb_req_t *req);
int  umb_certs_mesh_list (void *state, umb_req_t *req);
int  umb_certs_mesh_revoke (void *state, umb_req_t *req);
int  umb_certs_mesh_retire (void *state, umb_req_t *req);
int  umb_certs_mesh_revoked (void *state, umb_req_t *req);
//  At start: a mesh certificate for the service's own CURVE key, unless a
//  valid one exists. 0 or -1 (failure set).
int  umb_certs_mesh_own (umb_certs_t *self);

//  ---------------------------------------------------------------- test helpers
//  A response read off the wire by a small HTTP/1.1 client.
typedef struct {
    int      status;
    char    *head;              //  status line and headers
    uint8_t *body;              //  NUL-terminated
    size_t   body_size;
} umb_certs_http_response_t;

umb_certs_http_response_t *umb_certs_http_fetch (uint16_t port, const char *method,
                                                 const char *path, const char *content_type,
                                                 const void *body, size_t size);
const char *umb_certs_http_response_header (umb_certs_http_response_t *self, const char *name,
                                            char *value, size_t size);
void        umb_certs_http_response_destroy (umb_certs_http_response_t **self_p);

#endif
