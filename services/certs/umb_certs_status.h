//  umb_certs_status - what the OCSP responder's threads know about serials:
//  an in-memory table of every certificate the CA issued and its revocation,
//  kept in step with the store by the certs actor
//
//  The actor loads it at start and updates it after each issuance or
//  revocation commits and before it answers, so an OCSP response never lags
//  behind a revocation the caller was told about. Lookups come from the HTTP
//  threads; every method is thread-safe.
#ifndef UMB_CERTS_STATUS_H_INCLUDED
#define UMB_CERTS_STATUS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "umb_ocsp.h"

typedef struct _umb_certs_status_t umb_certs_status_t;

umb_certs_status_t *umb_certs_status_new (void);
void                umb_certs_status_destroy (umb_certs_status_t **self_p);

//  Records serial (lowercase hex) as issued by issuer (its issuing CA's
//  serial); revoked_at 0 means good.
void                umb_certs_status_set (umb_certs_status_t *self, const char *serial,
                                          const char *issuer, int64_t revoked_at, int reason);
size_t              umb_certs_status_size (umb_certs_status_t *self);

//  umb_ocsp_lookup_fn: good, revoked (with time and reason) or, for a serial
//  issuer never issued, unknown. state is the table.
umb_ocsp_status_t   umb_certs_status_lookup (void *state, const char *issuer, const char *serial,
                                             int64_t *revoked_at, int *reason);

void                umb_certs_status_test (bool verbose);

#endif
