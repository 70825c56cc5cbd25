//  umb_x509 - certificate helpers the TEE evidence verifiers share
#ifndef UMB_X509_H_INCLUDED
#define UMB_X509_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <openssl/x509.h>

//  True if a and b have the same DER encoding.
bool  umb_x509_same (X509 *a, X509 *b);

//  The first certificate of a PEM text (the caller frees it); NULL if there
//  is none (or pem is NULL). Leaves OpenSSL's error queue empty.
X509 *umb_x509_from_pem (const char *pem);

//  Reads up to max certificates from a PEM text into certs (the caller frees
//  them) and stops at the first block that does not parse. Returns how many
//  were read. Leaves OpenSSL's error queue empty.
size_t umb_x509_read_pem (const char *pem, X509 **certs, size_t max);

//  0 if key verifies cert's signature and cert is valid at when; -1 with the
//  reason ("<what> signature does not verify", "<what> has expired" ...).
int   umb_x509_check_signed (X509 *cert, EVP_PKEY *key, const char *what, time_t when,
                             char *reason, size_t size)
      __attribute__ ((warn_unused_result));

void  umb_x509_test (bool verbose);

#endif
