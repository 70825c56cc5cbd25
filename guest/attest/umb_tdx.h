//  umb_tdx - Intel TDX quotes (DCAP ECDSA quote v4, and v5 with a TD 1.0 or
//  TD 1.5 body): parser, quote signature, QE report signature and binding,
//  PCK chain to the built-in Intel SGX Root CA, and a TD policy
//
//  A quote is a 48-byte header, a TD report body (584 bytes; v5 prefixes it
//  with a 2-byte body type and a 4-byte size, and TD 1.5 bodies are 648
//  bytes), a u32 signature data length, and the signature data: an ECDSA
//  P-256 signature (r||s, big-endian) over header+body, the 64-byte
//  attestation public key (x||y), and certification data of type 6 (the QE
//  report, its signature by the PCK key, the QE authentication data, and
//  nested certification data of type 5: the PEM PCK chain). Bytes after the
//  signature data are ignored (quote generators append some).
//
//  Every check returns 0 when it passes and -1 otherwise, with a short,
//  human-readable reason written to reason (when not NULL). The checks are
//  independent; umb_tdx_verify runs all of them (a verifier must run it, or
//  each of the four, and then the policy):
//
//      umb_tdx_quote_t *quote = umb_tdx_quote_parse (data, size, reason, sizeof reason);
//      if (!quote
//      ||  umb_tdx_verify (quote, NULL, 0, reason, sizeof reason)
//      ||  umb_tdx_check_policy (quote, &policy, reason, sizeof reason))
//          refuse (reason);
//      umb_tdx_quote_destroy (&quote);
#ifndef UMB_TDX_H_INCLUDED
#define UMB_TDX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <openssl/x509.h>

#define UMB_TDX_HEADER_SIZE         48
#define UMB_TDX_BODY_10_SIZE        584     //  TD 1.0 report body (v4, v5 type 2)
#define UMB_TDX_BODY_15_SIZE        648     //  TD 1.5 report body (v5 type 3)
#define UMB_TDX_QE_REPORT_SIZE      384
#define UMB_TDX_MEASUREMENT_SIZE    48      //  MRTD, RTMRs, MRSEAM, MRCONFIGID, ...
#define UMB_TDX_REPORT_DATA_SIZE    64
#define UMB_TDX_ATT_KEY_ECDSA_P256  2
#define UMB_TDX_TEE_TYPE_TDX        0x81
#define UMB_TDX_BODY_TYPE_TD10      2       //  v5 body types (v4 quotes report 2)
#define UMB_TDX_BODY_TYPE_TD15      3
#define UMB_TDX_CERT_DATA_PCK_CHAIN 5
#define UMB_TDX_CERT_DATA_QE_REPORT 6

//  TD attributes (td_attributes, little-endian u64)
#define UMB_TDX_TD_ATTR_DEBUG       (1ULL << 0)

typedef struct _umb_tdx_quote_t umb_tdx_quote_t;

//  Parses a quote; NULL (and the reason) if it is truncated, has an unknown
//  version, attestation key type, TEE type or body type, or its signature
//  data or certification data are malformed or not of the expected types
//  (6 holding 5). Trailing bytes after the signature data are allowed. The
//  data is copied.
umb_tdx_quote_t *
    umb_tdx_quote_parse (const uint8_t *data, size_t size, char *reason, size_t reason_size);

//  Idempotent; sets *self_p to NULL.
void
    umb_tdx_quote_destroy (umb_tdx_quote_t **self_p);

//  Header
uint16_t umb_tdx_quote_version (umb_tdx_quote_t *self);         //  4 or 5
uint16_t umb_tdx_quote_att_key_type (umb_tdx_quote_t *self);    //  2
uint32_t umb_tdx_quote_tee_type (umb_tdx_quote_t *self);        //  0x81
uint16_t umb_tdx_quote_qe_svn (umb_tdx_quote_t *self);
uint16_t umb_tdx_quote_pce_svn (umb_tdx_quote_t *self);
const uint8_t *umb_tdx_quote_qe_vendor_id (umb_tdx_quote_t *self);     //  16
const uint8_t *umb_tdx_quote_user_data (umb_tdx_quote_t *self);        //  20
//  UMB_TDX_BODY_TYPE_TD10 or _TD15
uint16_t umb_tdx_quote_body_type (umb_tdx_quote_t *self);

//  TD report body; borrowed views, fixed sizes
const uint8_t *umb_tdx_quote_tee_tcb_svn (umb_tdx_quote_t *self);      //  16
const uint8_t *umb_tdx_quote_mr_seam (umb_tdx_quote_t *self);          //  48
const uint8_t *umb_tdx_quote_mr_signer_seam (umb_tdx_quote_t *self);   //  48
const uint8_t *umb_tdx_quote_seam_attributes (umb_tdx_quote_t *self);  //  8
const uint8_t *umb_tdx_quote_td_attributes_raw (umb_tdx_quote_t *self);//  8
const uint8_t *umb_tdx_quote_xfam_raw (umb_tdx_quote_t *self);         //  8
const uint8_t *umb_tdx_quote_mr_td (umb_tdx_quote_t *self);            //  48
const uint8_t *umb_tdx_quote_mr_config_id (umb_tdx_quote_t *self);     //  48
const uint8_t *umb_tdx_quote_mr_owner (umb_tdx_quote_t *self);         //  48
const uint8_t *umb_tdx_quote_mr_owner_config (umb_tdx_quote_t *self);  //  48
//  index 0..3 (asserted)
const uint8_t *umb_tdx_quote_rtmr (umb_tdx_quote_t *self, int index);  //  48
const uint8_t *umb_tdx_quote_report_data (umb_tdx_quote_t *self);      //  64
//  TD 1.5 bodies only; NULL otherwise
const uint8_t *umb_tdx_quote_tee_tcb_svn2 (umb_tdx_quote_t *self);     //  16
const uint8_t *umb_tdx_quote_mr_service_td (umb_tdx_quote_t *self);    //  48
//  td_attributes and xfam as little-endian u64
uint64_t umb_tdx_quote_td_attributes (umb_tdx_quote_t *self);
uint64_t umb_tdx_quote_xfam (umb_tdx_quote_t *self);

//  Bytes of the input the quote uses (trailing bytes after the signature
//  data not counted)
size_t   umb_tdx_quote_size (umb_tdx_quote_t *self);
//  Header, v5 body descriptor, body: the part the quote signature covers; *size set
const uint8_t *umb_tdx_quote_signed (umb_tdx_quote_t *self, size_t *size);
//  Signature data
uint32_t umb_tdx_quote_sig_data_size (umb_tdx_quote_t *self);
const uint8_t *umb_tdx_quote_signature (umb_tdx_quote_t *self);         //  64, r||s
const uint8_t *umb_tdx_quote_attestation_key (umb_tdx_quote_t *self);   //  64, x||y
const uint8_t *umb_tdx_quote_qe_report (umb_tdx_quote_t *self);         //  384
const uint8_t *umb_tdx_quote_qe_report_signature (umb_tdx_quote_t *self); //  64, r||s
const uint8_t *umb_tdx_quote_qe_auth_data (umb_tdx_quote_t *self, size_t *size);
//  The QE report's fields (an SGX enclave report)
const uint8_t *umb_tdx_quote_qe_mr_enclave (umb_tdx_quote_t *self);     //  32
const uint8_t *umb_tdx_quote_qe_mr_signer (umb_tdx_quote_t *self);      //  32
uint16_t umb_tdx_quote_qe_isv_prod_id (umb_tdx_quote_t *self);
uint16_t umb_tdx_quote_qe_isv_svn (umb_tdx_quote_t *self);
const uint8_t *umb_tdx_quote_qe_report_data (umb_tdx_quote_t *self);    //  64
//  The PCK chain carried in the quote (PEM, NUL-terminated, borrowed)
const char *umb_tdx_quote_pck_chain (umb_tdx_quote_t *self);
//  The first certificate of the quote's chain (the PCK leaf), or NULL;
//  the caller frees it with X509_free.
X509 *umb_tdx_quote_pck (umb_tdx_quote_t *self);

//  A new JSON object with the parsed fields (hex strings for bytes, numbers
//  for integers), for --json dumps; the caller owns it (json_decref). Keys:
//  header {version, att_key_type, tee_type "0x81", qe_svn, pce_svn,
//  qe_vendor_id, user_data}, body {body_type, tee_tcb_svn, mr_seam,
//  mr_signer_seam, seam_attributes, td_attributes, td_debug, xfam, mr_td,
//  mr_config_id, mr_owner, mr_owner_config, rtmr0..rtmr3, report_data, and
//  for TD 1.5 tee_tcb_svn2, mr_service_td}, sig_data_len, signature,
//  attestation_key, outer_cert_data_type, inner_cert_data_type, qe_report
//  {mr_enclave, mr_signer, isv_prod_id, isv_svn, report_data},
//  qe_auth_data_len, pck_chain [{subject, issuer, not_after, sha256}].
//  Parsed, not verified: run umb_tdx_verify before trusting any of it.
json_t *
    umb_tdx_quote_to_json (umb_tdx_quote_t *self);

//  Checks the quote signature (ECDSA P-256/SHA-256 over header+body) with
//  the attestation key it carries. Says nothing about who owns that key.
int
    umb_tdx_verify_signature (umb_tdx_quote_t *quote, char *reason, size_t size)
    __attribute__ ((warn_unused_result));

//  Checks the QE report signature (ECDSA P-256/SHA-256) with pck's key, that
//  the report comes from Intel's TD quoting enclave (built-in TD_QE identity:
//  MRSIGNER, ISVPRODID 2, MISCSELECT, attributes under Intel's mask, so no
//  debug QE), and that it binds the attestation key: its report_data is
//  SHA-256 (attestation_key || qe_auth_data) followed by 32 zero bytes.
//  (The QE's ISVSVN is not judged: that needs Intel's current collateral.)
int
    umb_tdx_verify_qe_report (umb_tdx_quote_t *quote, X509 *pck, char *reason, size_t size)
    __attribute__ ((warn_unused_result));

//  Checks pck -> Intel SGX PCK Platform/Processor CA -> Intel SGX Root CA.
//  chain_pem holds the intermediate (and may hold the root and the PCK,
//  as quotes do); a root in it must be the built-in Intel SGX Root CA byte
//  for byte. Every signature must be ECDSA (P-256) with SHA-256; each
//  certificate must be valid at at_time (seconds since the epoch; 0 = now).
int
    umb_tdx_verify_chain (X509 *pck, const char *chain_pem, int64_t at_time, char *reason, size_t size)
    __attribute__ ((warn_unused_result));

//  All of the above: the quote signature, the PCK chain at at_time (chain_pem,
//  or the quote's own when NULL; the PCK is the chain's first certificate),
//  the QE report signature by that PCK, and the binding.
int
    umb_tdx_verify (umb_tdx_quote_t *quote, const char *chain_pem, int64_t at_time, char *reason, size_t size)
    __attribute__ ((warn_unused_result));

//  Optional revocation check: cert (a PCK, or a PCK CA) must not be listed
//  in crl (DER or PEM; the Intel PCS "pckcrl" for a PCK, the root CA CRL
//  for a PCK CA). The CRL must be issued by cert's issuer, found in
//  chain_pem or the built-in root, signed with ECDSA/SHA-256, and current
//  at at_time (0 = now): a stale CRL is refused. Run it after
//  umb_tdx_verify_chain with the same chain.
int
    umb_tdx_check_crl (X509 *cert, const char *chain_pem, const uint8_t *crl, size_t crl_size,
                       int64_t at_time, char *reason, size_t size)
    __attribute__ ((warn_unused_result));

//  The TD policy. Plain data, zero-initialised = "nothing allowed yet":
//  umb_tdx_check_policy refuses a policy that names no MRTD. Every list or
//  value with set == true is enforced; a set list with count 0 refuses
//  every quote (fails closed, never passes silently).
#define UMB_TDX_POLICY_MAX_VALUES 16

typedef struct {
    bool set;
    size_t count;               //  0..UMB_TDX_POLICY_MAX_VALUES
    uint8_t values [UMB_TDX_POLICY_MAX_VALUES][UMB_TDX_MEASUREMENT_SIZE];
} umb_tdx_policy_list_t;

typedef struct {
    bool set;
    uint8_t value [UMB_TDX_MEASUREMENT_SIZE];
} umb_tdx_policy_value_t;

typedef struct {
    umb_tdx_policy_list_t mr_td;            //  required: allowed MRTDs
    umb_tdx_policy_list_t mr_seam;          //  allowed TDX module measurements
    umb_tdx_policy_list_t mr_config_id;
    umb_tdx_policy_list_t mr_owner;
    umb_tdx_policy_list_t mr_owner_config;
    umb_tdx_policy_value_t rtmr [4];        //  expected RTMR0..3, each optional
    //  TD attributes: DEBUG (bit 0) is refused unless allow_debug; when
    //  td_attributes_set, (td_attributes & mask) must equal value
    bool allow_debug;
    bool td_attributes_set;
    uint64_t td_attributes_mask;
    uint64_t td_attributes_value;
    //  XFAM: when xfam_set, (xfam & mask) must equal value (mask 0 is
    //  refused as empty; use ~0ULL for an exact match)
    bool xfam_set;
    uint64_t xfam_mask;
    uint64_t xfam_value;
    //  Minimum TEE TCB SVN, component by component (16 bytes)
    bool min_tee_tcb_svn_set;
    uint8_t min_tee_tcb_svn [16];
    //  Expected report_data, all 64 bytes
    bool report_data_set;
    uint8_t report_data [UMB_TDX_REPORT_DATA_SIZE];
} umb_tdx_policy_t;

//  Checks a quote (already verified) against policy; the reason names the
//  first field that does not match.
int
    umb_tdx_check_policy (umb_tdx_quote_t *quote, const umb_tdx_policy_t *policy, char *reason, size_t size)
    __attribute__ ((warn_unused_result));

//  Selftest
void
    umb_tdx_test (bool verbose);

#endif
