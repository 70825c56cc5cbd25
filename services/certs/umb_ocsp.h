//  umb_ocsp - an RFC 6960 OCSP responder core and a response verifier
//
//  The responder answers DER requests with DER responses signed by a
//  delegated OCSP signer of the CA, never by the certificate asked about. One
//  or several CertIDs (SHA-1 or SHA-256) per request; the nonce extension is
//  echoed. Every issuing CA of the CA answers for what it issued, with its own
//  signer: the first CertID naming one of them picks the signer of the
//  response, CertIDs of the CA's other issuing CAs are left out of it (a
//  client asks those again), a CertID of an issuer not the CA's is "unknown",
//  and so is a serial the issuer named did not issue. Anything unparsable
//  gets a malformedRequest response. Answers to requests without a nonce and with
//  one CertID of a known serial are signed once and cached until the status
//  of that serial changes (umb_ocsp_invalidate) or the response is half-way
//  to its nextUpdate.
#ifndef UMB_OCSP_H_INCLUDED
#define UMB_OCSP_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <openssl/x509.h>
#include "umb_ca.h"

typedef enum {
    UMB_OCSP_GOOD = 0,
    UMB_OCSP_REVOKED = 1,
    UMB_OCSP_UNKNOWN = 2
} umb_ocsp_status_t;

//  Looks up a serial (lowercase hex) of the issuing CA whose serial is
//  issuer; fills revoked_at and reason for UMB_OCSP_REVOKED. Called from the
//  responder's threads: must be thread-safe.
typedef umb_ocsp_status_t (umb_ocsp_lookup_fn) (void *state, const char *issuer,
                                               const char *serial, int64_t *revoked_at,
                                               int *reason);

typedef struct _umb_ocsp_t umb_ocsp_t;

//  A responder for ca's issuing CA (borrowed; must outlive it). Responses are
//  valid for validity_s (nextUpdate = thisUpdate + validity_s).
umb_ocsp_t *umb_ocsp_new (umb_ca_t *ca, umb_ocsp_lookup_fn *lookup, void *state,
                          int64_t validity_s);
void        umb_ocsp_destroy (umb_ocsp_t **self_p);

//  Starts answering for the CA's issuing CA index too (one made by
//  umb_ca_rotate since): 0 (also when it answers for it already), or -1.
//  Safe while other threads answer requests; one caller at a time.
int         umb_ocsp_issuer_add (umb_ocsp_t *self, umb_ca_t *ca, size_t index);

//  Answers one DER request. Always returns a DER OCSPResponse (caller frees):
//  successful, or malformedRequest / internalError as fitting.
//  Thread-safe.
uint8_t    *umb_ocsp_respond (umb_ocsp_t *self, const uint8_t *request, size_t size,
                              size_t *response_size);
//  Forgets cached responses for serial (call on revocation, before answering again).
void        umb_ocsp_invalidate (umb_ocsp_t *self, const char *serial);
//  Counters: responses by status, cache hits.
void        umb_ocsp_stats (umb_ocsp_t *self, uint64_t *good, uint64_t *revoked, uint64_t *unknown,
                            uint64_t *malformed, uint64_t *cache_hits);

//  Verifies a DER response for the certificate serial issued by issuer,
//  trusting roots (PEM bundle): structure, responseStatus successful, a
//  signature by the issuer or a delegated signer it certified with
//  id-kp-OCSPSigning, no unknown critical extension, thisUpdate/nextUpdate
//  around now, nonce equal to expected_nonce when given. Returns 0 with the
//  status (and revocation time/reason), or -1 with a reason for people.
int         umb_ocsp_verify (const uint8_t *response, size_t size, X509 *issuer, const char *roots_pem,
                             const char *serial, const uint8_t *expected_nonce, size_t nonce_size,
                             int64_t now, umb_ocsp_status_t *status, int64_t *revoked_at,
                             int *reason, char *reason_text, size_t reason_text_size);

//  Describes a DER request for logs and tests: the number of CertIDs (-1 if
//  it is not a request umb_ocsp_respond would read), and the serial (lowercase
//  hex; "" if negative or longer than 20 octets) and hash algorithm ("sha1",
//  "sha256", ... or a dotted OID) of the first CertID.
int         umb_ocsp_request_describe (const uint8_t *der, size_t size, char *serial,
                                       size_t serial_size, char *hash_name, size_t hash_size);

void        umb_ocsp_test (bool verbose);

#endif
