//  umb_x509 - certificate helpers the TEE evidence verifiers share
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "umb_x509.h"
#include "umb_reason.h"

bool
umb_x509_same (X509 *a, X509 *b)
{
    assert (a && b);
    uint8_t *der_a = NULL, *der_b = NULL;
    int size_a = i2d_X509 (a, &der_a);
    int size_b = i2d_X509 (b, &der_b);
    bool same = size_a > 0 && size_a == size_b && memcmp (der_a, der_b, (size_t) size_a) == 0;
    OPENSSL_free (der_a);
    OPENSSL_free (der_b);
    return same;
}

X509 *
umb_x509_from_pem (const char *pem)
{
    X509 *cert = NULL;
    return umb_x509_read_pem (pem, &cert, 1) == 1 ? cert : NULL;
}

size_t
umb_x509_read_pem (const char *pem, X509 **certs, size_t max)
{
    assert (certs || max == 0);
    size_t count = 0;
    if (!pem)
        return 0;
    BIO *bio = BIO_new_mem_buf (pem, -1);
    while (bio && count < max) {
        X509 *cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
        if (!cert)
            break;
        certs [count++] = cert;
    }
    BIO_free (bio);
    ERR_clear_error ();
    return count;
}

int
umb_x509_check_signed (X509 *cert, EVP_PKEY *key, const char *what, time_t when, char *reason, size_t size)
{
    assert (cert && what);
    if (!key || X509_verify (cert, key) != 1) {
        ERR_clear_error ();
        return umb_reason_set (reason, size, "%s signature does not verify", what);
    }
    if (X509_cmp_time (X509_get0_notBefore (cert), &when) != -1)
        return umb_reason_set (reason, size, "%s is not yet valid", what);
    if (X509_cmp_time (X509_get0_notAfter (cert), &when) != 1)
        return umb_reason_set (reason, size, "%s has expired", what);
    return 0;
}

//  ---------------------------------------------------------------- selftest

#define S_NOW 1767225600        //  2026-01-01

//  A self-signed P-256 certificate valid for a day around S_NOW
static X509 *
s_test_cert (EVP_PKEY *key, const char *name)
{
    X509 *cert = X509_new ();
    assert (cert);
    assert (X509_set_version (cert, 2) == 1);
    assert (ASN1_INTEGER_set (X509_get_serialNumber (cert), 1) == 1);
    X509_NAME *subject = X509_get_subject_name (cert);
    assert (X509_NAME_add_entry_by_txt (subject, "CN", MBSTRING_ASC, (const unsigned char *) name, -1, -1, 0) == 1);
    assert (X509_set_issuer_name (cert, subject) == 1);
    assert (X509_time_adj_ex (X509_getm_notBefore (cert), 0, -3600, &(time_t) { S_NOW }));
    assert (X509_time_adj_ex (X509_getm_notAfter (cert), 0, 3600, &(time_t) { S_NOW }));
    assert (X509_set_pubkey (cert, key) == 1);
    assert (X509_sign (cert, key, EVP_sha256 ()) > 0);
    return cert;
}

static char *
s_test_pem (X509 *cert)
{
    BIO *bio = BIO_new (BIO_s_mem ());
    assert (bio && PEM_write_bio_X509 (bio, cert) == 1);
    char *data;
    long size = BIO_get_mem_data (bio, &data);
    char *pem = (char *) malloc ((size_t) size + 1);
    assert (pem);
    memcpy (pem, data, (size_t) size);
    pem [size] = 0;
    BIO_free (bio);
    return pem;
}

void
umb_x509_test (bool verbose)
{
    if (verbose)
        printf (" * umb_x509: ");
    EVP_PKEY *key_a = EVP_EC_gen ("P-256");
    EVP_PKEY *key_b = EVP_EC_gen ("P-256");
    assert (key_a && key_b);
    X509 *a = s_test_cert (key_a, "a");
    X509 *b = s_test_cert (key_b, "b");
    char *pem_a = s_test_pem (a);
    char *pem_b = s_test_pem (b);

    //  PEM in, the same DER out
    X509 *a2 = umb_x509_from_pem (pem_a);
    assert (a2 && umb_x509_same (a, a2) && umb_x509_same (a2, a));
    assert (!umb_x509_same (a, b));
    assert (umb_x509_from_pem ("") == NULL);
    assert (umb_x509_from_pem (NULL) == NULL);
    assert (umb_x509_from_pem ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") == NULL);
    assert (ERR_peek_error () == 0);

    //  Several blocks, bounded by max, stopping at the first bad one
    size_t both_size = strlen (pem_a) + strlen (pem_b) + 64;
    char *both = (char *) malloc (both_size);
    assert (both);
    snprintf (both, both_size, "%s%s-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n%s",
              pem_a, pem_b, pem_a);
    X509 *certs [4] = { NULL };
    assert (umb_x509_read_pem (both, certs, 4) == 2);
    assert (umb_x509_same (certs [0], a) && umb_x509_same (certs [1], b));
    X509_free (certs [0]);
    X509_free (certs [1]);
    assert (umb_x509_read_pem (both, certs, 1) == 1);
    assert (umb_x509_same (certs [0], a));
    X509_free (certs [0]);
    assert (umb_x509_read_pem (both, certs, 0) == 0);
    assert (ERR_peek_error () == 0);

    //  Signature and validity, in that order
    char reason [128];
    assert (umb_x509_check_signed (a, key_a, "A", S_NOW, reason, sizeof reason) == 0);
    assert (umb_x509_check_signed (a, key_b, "A", S_NOW, reason, sizeof reason) == -1);
    assert (strcmp (reason, "A signature does not verify") == 0);
    assert (umb_x509_check_signed (a, NULL, "A", S_NOW, reason, sizeof reason) == -1);
    assert (strcmp (reason, "A signature does not verify") == 0);
    assert (umb_x509_check_signed (a, key_b, "A", S_NOW + 86400, reason, sizeof reason) == -1);
    assert (strcmp (reason, "A signature does not verify") == 0);
    assert (umb_x509_check_signed (a, key_a, "A", S_NOW - 7200, reason, sizeof reason) == -1);
    assert (strcmp (reason, "A is not yet valid") == 0);
    assert (umb_x509_check_signed (a, key_a, "A", S_NOW + 7200, reason, sizeof reason) == -1);
    assert (strcmp (reason, "A has expired") == 0);
    assert (ERR_peek_error () == 0);

    free (both);
    free (pem_a);
    free (pem_b);
    X509_free (a2);
    X509_free (a);
    X509_free (b);
    EVP_PKEY_free (key_a);
    EVP_PKEY_free (key_b);
    if (verbose)
        printf ("OK\n");
}
