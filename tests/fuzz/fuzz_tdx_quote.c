//  fuzz_tdx_quote - libFuzzer target for the Intel TDX quote parser and verifier (peer input)
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "umb_tdx.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char reason [256] = "";
    umb_tdx_quote_t *quote = umb_tdx_quote_parse (data, size, reason, sizeof reason);
    if (!quote) {
        assert (reason [0]);            //  every refusal says why
        return 0;
    }
    uint16_t version = umb_tdx_quote_version (quote);
    assert (version == 4 || version == 5);
    assert (umb_tdx_quote_att_key_type (quote) == UMB_TDX_ATT_KEY_ECDSA_P256);
    assert (umb_tdx_quote_tee_type (quote) == UMB_TDX_TEE_TYPE_TDX);
    assert (umb_tdx_quote_size (quote) <= size);
    size_t signed_size = 0;
    const uint8_t *signed_region = umb_tdx_quote_signed (quote, &signed_size);
    assert (signed_size <= umb_tdx_quote_size (quote) && memcmp (signed_region, data, signed_size) == 0);
    bool td15 = umb_tdx_quote_body_type (quote) == UMB_TDX_BODY_TYPE_TD15;
    assert ((umb_tdx_quote_mr_service_td (quote) != NULL) == td15);
    assert (memcmp (umb_tdx_quote_report_data (quote), data + signed_size - (td15? 64 + 64: 64), 64) == 0);
    size_t auth_size = 0;
    umb_tdx_quote_qe_auth_data (quote, &auth_size);
    assert (auth_size < umb_tdx_quote_sig_data_size (quote));
    assert (umb_tdx_quote_pck_chain (quote));
    json_t *dump = umb_tdx_quote_to_json (quote);
    assert (dump);
    json_decref (dump);
    X509 *pck = umb_tdx_quote_pck (quote);
    //  The full verification runs on whatever came in; it must refuse, not
    //  crash, on anything but a genuine quote
    int rc = umb_tdx_verify (quote, NULL, 1767225600, reason, sizeof reason);
    assert (rc == 0 || reason [0]);
    assert (umb_tdx_verify_qe_report (quote, NULL, reason, sizeof reason) == -1);
    if (pck) {
        rc = umb_tdx_verify_qe_report (quote, pck, reason, sizeof reason);
        X509_free (pck);
    }
    //  An empty policy never passes
    umb_tdx_policy_t policy;
    memset (&policy, 0, sizeof policy);
    assert (umb_tdx_check_policy (quote, &policy, reason, sizeof reason) == -1);
    policy.mr_td.set = true;
    assert (umb_tdx_check_policy (quote, &policy, reason, sizeof reason) == -1);
    umb_tdx_quote_destroy (&quote);
    return 0;
}
