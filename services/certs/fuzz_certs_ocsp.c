//  fuzz_certs_ocsp - libFuzzer target for what the certs HTTP server does with
//  peer bytes: the GET /ocsp/{...} path decoder, and the OCSP responder on the
//  decoded request and on the raw bytes as a POST body. Every answer must be
//  a well-formed DER OCSPResponse.
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/ocsp.h>
#include <czmq.h>
#include "umb_ca.h"
#include "umb_ocsp.h"
#include "umb_certs_http.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  The fuzzer's process lives as long as the target: its CA and responder
//  are made once (libFuzzer's interface leaves no other place for them).
static umb_ca_t   *s_ca;
static umb_ocsp_t *s_ocsp;
static char        s_dir [] = "/tmp/umb-fuzz-ocsp-XXXXXX";

static umb_ocsp_status_t
s_lookup (void *state, const char *issuer, const char *serial, int64_t *revoked_at, int *reason)
{
    size_t length = strlen (serial);
    char last = length ? serial [length - 1] : '0';
    if (last == '0')
        return UMB_OCSP_UNKNOWN;
    if (last == '1') {
        *revoked_at = 1700000000;
        *reason = UMB_CA_REASON_KEY_COMPROMISE;
        return UMB_OCSP_REVOKED;
    }
    return UMB_OCSP_GOOD;
}

static void
s_cleanup (void)
{
    umb_ocsp_destroy (&s_ocsp);
    umb_ca_destroy (&s_ca);
    char *command = zsys_sprintf ("rm -rf '%s'", s_dir);
    if (command && system (command) != 0)
        fprintf (stderr, "cannot remove %s\n", s_dir);
    zstr_free (&command);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    assert (mkdtemp (s_dir));
    s_ca = umb_ca_load_or_create (s_dir, UMB_CA_KEY_EC_P256, "http://127.0.0.1:1/ocsp",
                                  "http://127.0.0.1:1/crl", NULL);
    assert (s_ca);
    s_ocsp = umb_ocsp_new (s_ca, s_lookup, NULL, 3600);
    assert (s_ocsp);
    atexit (s_cleanup);
    return 0;
}

static void
s_respond_check (const uint8_t *request, size_t size)
{
    size_t response_size = 0;
    uint8_t *response = umb_ocsp_respond (s_ocsp, request, size, &response_size);
    assert (response && response_size > 0);
    const unsigned char *cursor = response;
    OCSP_RESPONSE *parsed = d2i_OCSP_RESPONSE (NULL, &cursor, (long) response_size);
    assert (parsed && cursor == response + response_size);
    OCSP_RESPONSE_free (parsed);
    free (response);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  The bytes as a POST body
    s_respond_check (data, size);
    //  ... and as the path after /ocsp/ (a C string: it ends at the first NUL)
    char *path = malloc (size + 1);
    assert (path);
    memcpy (path, data, size);
    path [size] = 0;
    size_t der_size = 0;
    uint8_t *der = umb_certs_http_ocsp_path_decode (path, &der_size);
    if (der) {
        assert (der_size > 0 && der_size <= strlen (path));
        s_respond_check (der, der_size);
        free (der);
    }
    else
        assert (der_size == 0);
    free (path);
    return 0;
}
