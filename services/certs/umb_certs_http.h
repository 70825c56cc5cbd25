//  umb_certs_http - the certs service's own HTTP server: the OCSP responder
//  (RFC 6960 appendix A: POST /ocsp and GET /ocsp/{base64}), the CRL and the
//  CA chain, on libmicrohttpd with a thread pool
//
//      POST /ocsp          application/ocsp-request, at most 64 KiB (else 413)
//      GET  /ocsp/{b64}    the DER request in base64 (standard or URL-safe
//                          alphabet, padding optional), URL-encoded or not
//      GET  /crl           application/pkix-crl (DER): the first issuing CA's CRL
//      GET  /crl.pem       the same CRL in PEM
//      GET  /crl/{issuer}  the CRL of the issuing CA of that serial (404 if none)
//      GET  /crl/{issuer}.pem
//      GET  /ca.pem        the issuing CA and the root (application/x-pem-file)
//
//  OCSP answers are always HTTP 200 application/ocsp-response, a request that
//  cannot be read included (it gets the malformedRequest OCSP status, as RFC
//  6960 responders do). Other paths are 404, other methods 405.
//
//  The server holds no database handle: the OCSP responder asks its lookup
//  (an umb_certs_status_t kept by the actor), and the CRL is handed over by
//  the actor each time it makes one. Until umb_certs_http_ready, requests for
//  these paths get 503.
#ifndef UMB_CERTS_HTTP_H_INCLUDED
#define UMB_CERTS_HTTP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "umb_log.h"
#include "umb_metrics.h"
#include "umb_ocsp.h"

#define UMB_CERTS_HTTP_MAX_BODY (64 * 1024)

typedef struct _umb_certs_http_t umb_certs_http_t;

//  Listens on listen ("host:port"; port 0 picks a free one; host "*" is
//  every address) with threads threads. metrics (borrowed, thread-safe) gets
//  the HTTP and OCSP counters. NULL with a reason (caller frees) on failure.
umb_certs_http_t *umb_certs_http_new (const char *listen, size_t threads, umb_metrics_t *metrics,
                                      umb_log_t *log, char **reason);
//  Stops serving: requests in flight are finished first.
void              umb_certs_http_destroy (umb_certs_http_t **self_p);

//  The port it listens on.
uint16_t          umb_certs_http_port (umb_certs_http_t *self);

//  Starts answering: OCSP with ocsp (borrowed; it must outlive this server),
//  /ca.pem with chain_pem (copied).
void              umb_certs_http_ready (umb_certs_http_t *self, umb_ocsp_t *ocsp,
                                        const char *chain_pem);
//  Replaces the chain /ca.pem serves (copied), after a rotation.
void              umb_certs_http_set_chain (umb_certs_http_t *self, const char *chain_pem);
//  Replaces the CRL served for issuer (an issuing CA's serial; first: the
//  first issuing CA, whose CRL is also /crl). Both copied.
void              umb_certs_http_set_crl (umb_certs_http_t *self, const char *issuer, bool first,
                                          const uint8_t *der, size_t size, const char *pem);

//  Decodes the path part of GET /ocsp/{...}: percent-escapes, then base64 of
//  either alphabet with optional padding. Returns the DER (caller frees) with
//  *size, or NULL if it is not that.
uint8_t          *umb_certs_http_ocsp_path_decode (const char *path, size_t *size);

void              umb_certs_http_test (bool verbose);

#endif
