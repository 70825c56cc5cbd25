//  fuzz_snp_report - libFuzzer target for the SEV-SNP attestation report parser (peer input)
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "umb_snp.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char reason [256] = "";
    umb_snp_report_t *report = umb_snp_report_parse (data, size, reason, sizeof reason);
    if (!report) {
        assert (reason [0]);            //  every refusal says why
        return 0;
    }
    assert (size == UMB_SNP_REPORT_SIZE);
    uint32_t version = umb_snp_report_version (report);
    assert (version == 2 || version == 3 || version == 5);
    assert (umb_snp_report_signature_algo (report) == UMB_SNP_SIG_ALGO_ECDSA_P384_SHA384);
    size_t signed_size = 0;
    const uint8_t *signed_region = umb_snp_report_signed (report, &signed_size);
    assert (signed_size == UMB_SNP_SIGNED_SIZE && memcmp (signed_region, data, signed_size) == 0);
    assert (memcmp (umb_snp_report_chip_id (report), data + 0x1A0, 64) == 0);
    assert (memcmp (umb_snp_report_sig_s (report), data + 0x2A0 + 72, 72) == 0);
    uint8_t family, model, stepping;
    umb_snp_report_cpuid (report, &family, &model, &stepping);
    umb_snp_report_signing_key (report);
    //  No certificate: both checks must refuse, not crash
    assert (umb_snp_verify_signature (report, NULL, reason, sizeof reason) == -1);
    assert (umb_snp_check_tcb (report, NULL, reason, sizeof reason) == -1);
    umb_snp_report_destroy (&report);
    return 0;
}
