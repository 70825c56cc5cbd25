//  fuzz_snp_certs - libFuzzer target for the SEV-SNP certificate blob an
//  agent hands over with its evidence (PEM, or the GHCB certificate table)
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "umb_verify.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char reason [256] = "";
    size_t pem_size = 0;
    char *pem = umb_verify_snp_certs_pem (data, size, &pem_size, reason, sizeof reason);
    if (!pem) {
        assert (reason [0]);            //  every refusal says why
        return 0;
    }
    //  What comes out is PEM, sized as said, and holds a certificate
    assert (strlen (pem) == pem_size);
    assert (strstr (pem, "-----BEGIN CERTIFICATE-----"));
    free (pem);
    return 0;
}
