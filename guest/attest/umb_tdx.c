//  umb_tdx - Intel TDX quotes: parser, quote and QE report signatures, PCK chain, TD policy
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include <jansson.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "umb_tdx.h"
#include "umb_bytes.h"
#include "umb_x509.h"
#include "umb_hex.h"
#include "umb_reason.h"

//  Quote header (Intel TDX DCAP Quoting Library API, appendix A.3)
#define S_H_VERSION         0
#define S_H_ATT_KEY_TYPE    2
#define S_H_TEE_TYPE        4
#define S_H_QE_SVN          8
#define S_H_PCE_SVN         10
#define S_H_QE_VENDOR_ID    12
#define S_H_USER_DATA       28

//  v5 body descriptor: u16 type, u32 size
#define S_V5_DESCRIPTOR     6

//  TD report body, relative to its start
#define S_B_TEE_TCB_SVN     0
#define S_B_MR_SEAM         16
#define S_B_MR_SIGNER_SEAM  64
#define S_B_SEAM_ATTRIBUTES 112
#define S_B_TD_ATTRIBUTES   120
#define S_B_XFAM            128
#define S_B_MR_TD           136
#define S_B_MR_CONFIG_ID    184
#define S_B_MR_OWNER        232
#define S_B_MR_OWNER_CONFIG 280
#define S_B_RTMR0           328
#define S_B_REPORT_DATA     520
#define S_B_TEE_TCB_SVN2    584
#define S_B_MR_SERVICE_TD   600

//  Signature data, relative to its start
#define S_S_SIGNATURE       0
#define S_S_ATT_KEY         64
#define S_S_CERT_TYPE       128
#define S_S_CERT_SIZE       130
#define S_S_CERT_DATA       134

//  QE report certification data (type 6), relative to its start
#define S_Q_REPORT          0
#define S_Q_SIGNATURE       384
#define S_Q_AUTH_SIZE       448
#define S_Q_AUTH_DATA       450

//  QE report (an SGX enclave report body)
#define S_R_MR_ENCLAVE      64
#define S_R_MR_SIGNER       128
#define S_R_ISV_PROD_ID     256
#define S_R_ISV_SVN         258
#define S_R_REPORT_DATA     320

#define S_R_MISC_SELECT     16
#define S_R_ATTRIBUTES      48

//  Intel's TD quoting enclave identity ("TD_QE", Intel PCS
//  /tdx/certification/v4/qe/identity): MRSIGNER, ISVPRODID, MISCSELECT
//  (mask all ones), and the attributes under their mask (DEBUG must be 0)
static const uint8_t s_td_qe_mr_signer [32] = {
    0xdc, 0x9e, 0x2a, 0x7c, 0x6f, 0x94, 0x8f, 0x17, 0x47, 0x4e, 0x34, 0xa7, 0xfc, 0x43, 0xed, 0x03,
    0x0f, 0x7c, 0x15, 0x63, 0xf1, 0xba, 0xbd, 0xdf, 0x63, 0x40, 0xc8, 0x2e, 0x0e, 0x54, 0xa8, 0xc5
};
#define S_TD_QE_ISV_PROD_ID 2
#define S_TD_QE_MISC_SELECT 0
static const uint8_t s_td_qe_attributes [16] = { 0x11 };
static const uint8_t s_td_qe_attributes_mask [16] = {
    0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
};

#define S_P256_SIG_SIZE     64
#define S_P256_KEY_SIZE     64

struct _umb_tdx_quote_t {
    uint8_t *data;              //  header .. end of the signature data
    size_t size;
    uint16_t body_type;
    size_t body;                //  offset of the TD report body
    size_t signed_size;         //  header, v5 descriptor, body
    size_t sig_data;            //  offset of the signature data
    uint32_t sig_data_size;
    size_t qe_cert;             //  offset of the QE report certification data
    size_t qe_auth_size;
    char *pck_chain;            //  NUL-terminated copy of the type 5 data
};

//  The Intel SGX Root CA (https://certificates.trustedservices.intel.com/
//  Intel_SGX_Provisioning_Certification_RootCA.pem), the only root trusted
static const char s_intel_sgx_root [] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw\n"
    "aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv\n"
    "cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ\n"
    "BgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG\n"
    "A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0\n"
    "aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT\n"
    "AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi7\n"
    "1OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB\n"
    "uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJ\n"
    "MEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50\n"
    "ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SV\n"
    "Ur9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI\n"
    "KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg\n"
    "AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=\n"
    "-----END CERTIFICATE-----\n";

umb_tdx_quote_t *
umb_tdx_quote_parse (const uint8_t *data, size_t size, char *reason, size_t reason_size)
{
    if (!data || size < UMB_TDX_HEADER_SIZE) {
        umb_reason_set (reason, reason_size, "quote is truncated (%zu bytes, no header)", data? size: 0);
        return NULL;
    }
    uint16_t version = umb_bytes_le16 (data + S_H_VERSION);
    if (version != 4 && version != 5) {
        umb_reason_set (reason, reason_size, "unsupported quote version %u", version);
        return NULL;
    }
    uint16_t key_type = umb_bytes_le16 (data + S_H_ATT_KEY_TYPE);
    if (key_type != UMB_TDX_ATT_KEY_ECDSA_P256) {
        umb_reason_set (reason, reason_size, "unsupported attestation key type %u", key_type);
        return NULL;
    }
    uint32_t tee_type = umb_bytes_le32 (data + S_H_TEE_TYPE);
    if (tee_type != UMB_TDX_TEE_TYPE_TDX) {
        umb_reason_set (reason, reason_size, "TEE type 0x%x is not TDX (0x81)", tee_type);
        return NULL;
    }
    size_t body = UMB_TDX_HEADER_SIZE;
    size_t body_size = UMB_TDX_BODY_10_SIZE;
    uint16_t body_type = UMB_TDX_BODY_TYPE_TD10;
    if (version == 5) {
        if (size < body + S_V5_DESCRIPTOR) {
            umb_reason_set (reason, reason_size, "quote is truncated (no body descriptor)");
            return NULL;
        }
        body_type = umb_bytes_le16 (data + body);
        uint32_t declared = umb_bytes_le32 (data + body + 2);
        body_size = body_type == UMB_TDX_BODY_TYPE_TD10? UMB_TDX_BODY_10_SIZE:
                    body_type == UMB_TDX_BODY_TYPE_TD15? UMB_TDX_BODY_15_SIZE: 0;
        if (body_size == 0) {
            umb_reason_set (reason, reason_size, "unsupported quote body type %u", body_type);
            return NULL;
        }
        if (declared != body_size) {
            umb_reason_set (reason, reason_size, "body size %u does not match body type %u (%zu bytes)",
                            declared, body_type, body_size);
            return NULL;
        }
        body += S_V5_DESCRIPTOR;
    }
    size_t signed_size = body + body_size;
    if (size < signed_size + 4) {
        umb_reason_set (reason, reason_size, "quote is truncated (%zu bytes, body needs %zu)", size, signed_size + 4);
        return NULL;
    }
    uint32_t sig_data_size = umb_bytes_le32 (data + signed_size);
    size_t sig_data = signed_size + 4;
    if (sig_data_size > size - sig_data) {
        umb_reason_set (reason, reason_size, "quote is truncated (signature data of %u bytes, %zu left)",
                        sig_data_size, size - sig_data);
        return NULL;
    }
    if (sig_data_size < S_S_CERT_DATA) {
        umb_reason_set (reason, reason_size, "signature data is too short (%u bytes)", sig_data_size);
        return NULL;
    }
    const uint8_t *sig = data + sig_data;
    uint16_t cert_type = umb_bytes_le16 (sig + S_S_CERT_TYPE);
    uint32_t cert_size = umb_bytes_le32 (sig + S_S_CERT_SIZE);
    if (cert_type != UMB_TDX_CERT_DATA_QE_REPORT) {
        umb_reason_set (reason, reason_size, "certification data type %u is not QE report certification data (6)",
                        cert_type);
        return NULL;
    }
    if (cert_size != sig_data_size - S_S_CERT_DATA) {
        umb_reason_set (reason, reason_size, "certification data size %u does not fill the signature data (%u)",
                        cert_size, sig_data_size - S_S_CERT_DATA);
        return NULL;
    }
    const uint8_t *qe = sig + S_S_CERT_DATA;
    if (cert_size < S_Q_AUTH_DATA) {
        umb_reason_set (reason, reason_size, "QE report certification data is truncated");
        return NULL;
    }
    uint16_t auth_size = umb_bytes_le16 (qe + S_Q_AUTH_SIZE);
    if ((size_t) auth_size + S_Q_AUTH_DATA + 6 > cert_size) {
        umb_reason_set (reason, reason_size, "QE authentication data (%u bytes) overruns the certification data",
                        auth_size);
        return NULL;
    }
    const uint8_t *inner = qe + S_Q_AUTH_DATA + auth_size;
    uint16_t inner_type = umb_bytes_le16 (inner);
    uint32_t inner_size = umb_bytes_le32 (inner + 2);
    if (inner_type != UMB_TDX_CERT_DATA_PCK_CHAIN) {
        umb_reason_set (reason, reason_size, "nested certification data type %u is not a PCK chain (5)", inner_type);
        return NULL;
    }
    if (inner_size != cert_size - (S_Q_AUTH_DATA + auth_size + 6)) {
        umb_reason_set (reason, reason_size, "PCK chain size %u does not fill the certification data", inner_size);
        return NULL;
    }
    if (inner_size == 0) {
        umb_reason_set (reason, reason_size, "the quote carries an empty PCK chain");
        return NULL;
    }
    //  The chain is text; a NUL may only pad its end
    const uint8_t *nul = (const uint8_t *) memchr (inner + 6, 0, inner_size);
    if (nul && !umb_bytes_is_zero (nul, (size_t) (inner + 6 + inner_size - nul))) {
        umb_reason_set (reason, reason_size, "the PCK chain holds a NUL before its end");
        return NULL;
    }
    umb_tdx_quote_t *self = (umb_tdx_quote_t *) calloc (1, sizeof (umb_tdx_quote_t));
    if (self) {
        self->size = sig_data + sig_data_size;
        self->data = (uint8_t *) malloc (self->size);
        self->pck_chain = (char *) malloc ((size_t) inner_size + 1);
    }
    if (!self || !self->data || !self->pck_chain) {
        umb_tdx_quote_destroy (&self);
        umb_reason_set (reason, reason_size, "out of memory");
        return NULL;
    }
    memcpy (self->data, data, self->size);
    memcpy (self->pck_chain, inner + 6, inner_size);
    self->pck_chain [inner_size] = 0;
    self->body_type = body_type;
    self->body = body;
    self->signed_size = signed_size;
    self->sig_data = sig_data;
    self->sig_data_size = sig_data_size;
    self->qe_cert = sig_data + S_S_CERT_DATA;
    self->qe_auth_size = auth_size;
    return self;
}

void
umb_tdx_quote_destroy (umb_tdx_quote_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        umb_tdx_quote_t *self = *self_p;
        free (self->data);
        free (self->pck_chain);
        free (self);
        *self_p = NULL;
    }
}

#define S_HEADER_U16(name, offset) \
    uint16_t umb_tdx_quote_##name (umb_tdx_quote_t *self) \
    { assert (self); return umb_bytes_le16 (self->data + (offset)); }
#define S_HEADER_BYTES(name, offset) \
    const uint8_t *umb_tdx_quote_##name (umb_tdx_quote_t *self) \
    { assert (self); return self->data + (offset); }
#define S_BODY_BYTES(name, offset) \
    const uint8_t *umb_tdx_quote_##name (umb_tdx_quote_t *self) \
    { assert (self); return self->data + self->body + (offset); }
#define S_SIG_BYTES(name, offset) \
    const uint8_t *umb_tdx_quote_##name (umb_tdx_quote_t *self) \
    { assert (self); return self->data + self->sig_data + (offset); }
#define S_QE_BYTES(name, offset) \
    const uint8_t *umb_tdx_quote_##name (umb_tdx_quote_t *self) \
    { assert (self); return self->data + self->qe_cert + (offset); }

S_HEADER_U16 (version, S_H_VERSION)
S_HEADER_U16 (att_key_type, S_H_ATT_KEY_TYPE)
S_HEADER_U16 (qe_svn, S_H_QE_SVN)
S_HEADER_U16 (pce_svn, S_H_PCE_SVN)
S_HEADER_BYTES (qe_vendor_id, S_H_QE_VENDOR_ID)
S_HEADER_BYTES (user_data, S_H_USER_DATA)
S_BODY_BYTES (tee_tcb_svn, S_B_TEE_TCB_SVN)
S_BODY_BYTES (mr_seam, S_B_MR_SEAM)
S_BODY_BYTES (mr_signer_seam, S_B_MR_SIGNER_SEAM)
S_BODY_BYTES (seam_attributes, S_B_SEAM_ATTRIBUTES)
S_BODY_BYTES (td_attributes_raw, S_B_TD_ATTRIBUTES)
S_BODY_BYTES (xfam_raw, S_B_XFAM)
S_BODY_BYTES (mr_td, S_B_MR_TD)
S_BODY_BYTES (mr_config_id, S_B_MR_CONFIG_ID)
S_BODY_BYTES (mr_owner, S_B_MR_OWNER)
S_BODY_BYTES (mr_owner_config, S_B_MR_OWNER_CONFIG)
S_BODY_BYTES (report_data, S_B_REPORT_DATA)
S_SIG_BYTES (signature, S_S_SIGNATURE)
S_SIG_BYTES (attestation_key, S_S_ATT_KEY)
S_QE_BYTES (qe_report, S_Q_REPORT)
S_QE_BYTES (qe_report_signature, S_Q_SIGNATURE)
S_QE_BYTES (qe_mr_enclave, S_Q_REPORT + S_R_MR_ENCLAVE)
S_QE_BYTES (qe_mr_signer, S_Q_REPORT + S_R_MR_SIGNER)
S_QE_BYTES (qe_report_data, S_Q_REPORT + S_R_REPORT_DATA)

uint32_t
umb_tdx_quote_tee_type (umb_tdx_quote_t *self)
{
    assert (self);
    return umb_bytes_le32 (self->data + S_H_TEE_TYPE);
}

uint16_t
umb_tdx_quote_body_type (umb_tdx_quote_t *self)
{
    assert (self);
    return self->body_type;
}

const uint8_t *
umb_tdx_quote_rtmr (umb_tdx_quote_t *self, int index)
{
    assert (self);
    assert (index >= 0 && index < 4);
    return self->data + self->body + S_B_RTMR0 + (size_t) index * UMB_TDX_MEASUREMENT_SIZE;
}

const uint8_t *
umb_tdx_quote_tee_tcb_svn2 (umb_tdx_quote_t *self)
{
    assert (self);
    return self->body_type == UMB_TDX_BODY_TYPE_TD15? self->data + self->body + S_B_TEE_TCB_SVN2: NULL;
}

const uint8_t *
umb_tdx_quote_mr_service_td (umb_tdx_quote_t *self)
{
    assert (self);
    return self->body_type == UMB_TDX_BODY_TYPE_TD15? self->data + self->body + S_B_MR_SERVICE_TD: NULL;
}

uint64_t
umb_tdx_quote_td_attributes (umb_tdx_quote_t *self)
{
    return umb_bytes_le64 (umb_tdx_quote_td_attributes_raw (self));
}

uint64_t
umb_tdx_quote_xfam (umb_tdx_quote_t *self)
{
    return umb_bytes_le64 (umb_tdx_quote_xfam_raw (self));
}

const uint8_t *
umb_tdx_quote_signed (umb_tdx_quote_t *self, size_t *size)
{
    assert (self);
    if (size)
        *size = self->signed_size;
    return self->data;
}

uint32_t
umb_tdx_quote_sig_data_size (umb_tdx_quote_t *self)
{
    assert (self);
    return self->sig_data_size;
}

const uint8_t *
umb_tdx_quote_qe_auth_data (umb_tdx_quote_t *self, size_t *size)
{
    assert (self);
    if (size)
        *size = self->qe_auth_size;
    return self->data + self->qe_cert + S_Q_AUTH_DATA;
}

uint16_t
umb_tdx_quote_qe_isv_prod_id (umb_tdx_quote_t *self)
{
    assert (self);
    return umb_bytes_le16 (self->data + self->qe_cert + S_Q_REPORT + S_R_ISV_PROD_ID);
}

uint16_t
umb_tdx_quote_qe_isv_svn (umb_tdx_quote_t *self)
{
    assert (self);
    return umb_bytes_le16 (self->data + self->qe_cert + S_Q_REPORT + S_R_ISV_SVN);
}

const char *
umb_tdx_quote_pck_chain (umb_tdx_quote_t *self)
{
    assert (self);
    return self->pck_chain;
}

size_t
umb_tdx_quote_size (umb_tdx_quote_t *self)
{
    assert (self);
    return self->size;
}

//  --------------------------------------------------------------------------
//  PEM chains

#define S_MAX_CHAIN 8

static size_t
s_count (const char *text, const char *needle)
{
    size_t count = 0;
    for (const char *at = strstr (text, needle); at; at = strstr (at + 1, needle))
        count++;
    return count;
}

//  Reads every certificate of a PEM chain into certs; refuses a chain with
//  a block that does not parse (rather than skipping it), other PEM blocks,
//  or anything but whitespace around the certificates.
static int
s_read_chain (const char *pem, X509 **certs, size_t *count, char *reason, size_t size)
{
    *count = 0;
    if (!pem)
        return umb_reason_set (reason, size, "no PCK chain");
    size_t blocks = s_count (pem, "-----BEGIN ");
    if (blocks == 0)
        return umb_reason_set (reason, size, "no certificate in the PCK chain");
    if (blocks > S_MAX_CHAIN)
        return umb_reason_set (reason, size, "the PCK chain holds more than %d certificates", S_MAX_CHAIN);
    if (s_count (pem, "-----BEGIN CERTIFICATE-----") != blocks
    ||  s_count (pem, "-----END ") != blocks
    ||  s_count (pem, "-----END CERTIFICATE-----") != blocks)
        return umb_reason_set (reason, size, "the PCK chain holds a malformed or non-certificate PEM block");
    const char *first = strstr (pem, "-----BEGIN ");
    for (const char *at = pem; at < first; at++)
        if (!strchr (" \t\r\n", *at))
            return umb_reason_set (reason, size, "the PCK chain holds text before its first certificate");
    const char *last = pem;
    for (const char *at = strstr (pem, "-----END "); at; at = strstr (at + 1, "-----END "))
        last = at + strlen ("-----END CERTIFICATE-----");
    for (const char *at = last; *at; at++)
        if (!strchr (" \t\r\n", *at))
            return umb_reason_set (reason, size, "the PCK chain holds text after its last certificate");

    *count = umb_x509_read_pem (pem, certs, blocks);
    if (*count != blocks) {
        for (size_t i = 0; i < *count; i++)
            X509_free (certs [i]);
        *count = 0;
        return umb_reason_set (reason, size, "a certificate in the PCK chain does not parse");
    }
    return 0;
}

X509 *
umb_tdx_quote_pck (umb_tdx_quote_t *self)
{
    assert (self);
    X509 *certs [S_MAX_CHAIN];
    size_t count = 0;
    if (s_read_chain (self->pck_chain, certs, &count, NULL, 0))
        return NULL;
    for (size_t i = 1; i < count; i++)
        X509_free (certs [i]);
    return certs [0];
}

//  --------------------------------------------------------------------------
//  ECDSA P-256

static bool
s_is_p256 (EVP_PKEY *key)
{
    char group [32];
    return key && EVP_PKEY_get_base_id (key) == EVP_PKEY_EC
        && EVP_PKEY_get_group_name (key, group, sizeof group, NULL) == 1
        && (streq (group, "prime256v1") || streq (group, "P-256"));
}

//  A public key from a raw x||y point; NULL unless the point is on P-256
static EVP_PKEY *
s_raw_p256 (const uint8_t *xy)
{
    uint8_t point [1 + S_P256_KEY_SIZE];
    point [0] = 0x04;
    memcpy (point + 1, xy, S_P256_KEY_SIZE);
    char group [] = "prime256v1";
    OSSL_PARAM params [] = {
        OSSL_PARAM_utf8_string (OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_octet_string (OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point),
        OSSL_PARAM_END
    };
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name (NULL, "EC", NULL);
    if (!ctx || EVP_PKEY_fromdata_init (ctx) != 1
    ||  EVP_PKEY_fromdata (ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free (key);
        key = NULL;
    }
    EVP_PKEY_CTX_free (ctx);
    ERR_clear_error ();
    return key;
}

//  Verifies a raw r||s (big-endian, 32 bytes each) ECDSA signature over
//  SHA-256 of message; 0 if it verifies
static int
s_verify_raw (EVP_PKEY *key, const uint8_t *rs, const uint8_t *message, size_t size)
{
    int rc = -1;
    uint8_t *der = NULL;
    EVP_MD_CTX *ctx = NULL;
    ECDSA_SIG *sig = ECDSA_SIG_new ();
    BIGNUM *r = BN_bin2bn (rs, 32, NULL);
    BIGNUM *s = BN_bin2bn (rs + 32, 32, NULL);
    if (!sig || !r || !s || ECDSA_SIG_set0 (sig, r, s) != 1) {
        BN_free (r);
        BN_free (s);
        goto done;
    }
    int der_size = i2d_ECDSA_SIG (sig, &der);
    ctx = EVP_MD_CTX_new ();
    if (der_size > 0 && ctx
    &&  EVP_DigestVerifyInit (ctx, NULL, EVP_sha256 (), NULL, key) == 1
    &&  EVP_DigestVerify (ctx, der, (size_t) der_size, message, size) == 1)
        rc = 0;
done:
    ERR_clear_error ();
    EVP_MD_CTX_free (ctx);
    OPENSSL_free (der);
    ECDSA_SIG_free (sig);
    return rc;
}

int
umb_tdx_verify_signature (umb_tdx_quote_t *quote, char *reason, size_t size)
{
    if (!quote)
        return umb_reason_set (reason, size, "no quote");
    EVP_PKEY *key = s_raw_p256 (umb_tdx_quote_attestation_key (quote));
    if (!key)
        return umb_reason_set (reason, size, "the attestation key is not a P-256 point");
    int rc = s_verify_raw (key, umb_tdx_quote_signature (quote), quote->data, quote->signed_size);
    EVP_PKEY_free (key);
    if (rc)
        return umb_reason_set (reason, size, "quote signature does not verify with its attestation key");
    return 0;
}

int
umb_tdx_verify_qe_report (umb_tdx_quote_t *quote, X509 *pck, char *reason, size_t size)
{
    if (!quote)
        return umb_reason_set (reason, size, "no quote");
    if (!pck)
        return umb_reason_set (reason, size, "no PCK certificate");
    EVP_PKEY *key = X509_get0_pubkey (pck);
    ERR_clear_error ();
    if (!s_is_p256 (key))
        return umb_reason_set (reason, size, "PCK key is not ECDSA P-256");
    if (s_verify_raw (key, umb_tdx_quote_qe_report_signature (quote),
                      umb_tdx_quote_qe_report (quote), UMB_TDX_QE_REPORT_SIZE))
        return umb_reason_set (reason, size, "QE report signature does not verify with the PCK key");
    //  The report is Intel's TD quoting enclave's, not a debug enclave
    const uint8_t *report = umb_tdx_quote_qe_report (quote);
    if (memcmp (report + S_R_MR_SIGNER, s_td_qe_mr_signer, sizeof s_td_qe_mr_signer) != 0
    ||  umb_bytes_le16 (report + S_R_ISV_PROD_ID) != S_TD_QE_ISV_PROD_ID)
        return umb_reason_set (reason, size, "the QE report is not from Intel's TD quoting enclave"
                               " (MRSIGNER or ISVPRODID differ)");
    if (umb_bytes_le32 (report + S_R_MISC_SELECT) != S_TD_QE_MISC_SELECT)
        return umb_reason_set (reason, size, "the QE report's MISCSELECT is not the TD QE's");
    for (size_t i = 0; i < sizeof s_td_qe_attributes_mask; i++)
        if ((report [S_R_ATTRIBUTES + i] & s_td_qe_attributes_mask [i]) != s_td_qe_attributes [i])
            return umb_reason_set (reason, size, "the QE report's attributes are not the TD QE's (debug enclave?)");
    //  report_data = SHA-256 (attestation key || QE authentication data) || 32 zero bytes
    uint8_t digest [32];
    size_t auth_size = 0;
    const uint8_t *auth = umb_tdx_quote_qe_auth_data (quote, &auth_size);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    unsigned int digest_size = 0;
    bool hashed = ctx
        && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) == 1
        && EVP_DigestUpdate (ctx, umb_tdx_quote_attestation_key (quote), S_P256_KEY_SIZE) == 1
        && EVP_DigestUpdate (ctx, auth, auth_size) == 1
        && EVP_DigestFinal_ex (ctx, digest, &digest_size) == 1 && digest_size == 32;
    EVP_MD_CTX_free (ctx);
    if (!hashed)
        return umb_reason_set (reason, size, "cannot hash the attestation key");
    const uint8_t *report_data = umb_tdx_quote_qe_report_data (quote);
    if (memcmp (report_data, digest, 32) != 0 || !umb_bytes_is_zero (report_data + 32, 32))
        return umb_reason_set (reason, size, "QE report does not bind the attestation key"
                               " (report_data is not SHA-256 (key || auth data))");
    return 0;
}

//  Checks that cert is signed by issuer with ECDSA/SHA-256 and is valid at when
static int
s_check_link (X509 *cert, X509 *issuer, const char *what, time_t when, char *reason, size_t size)
{
    if (X509_get_signature_nid (cert) != NID_ecdsa_with_SHA256)
        return umb_reason_set (reason, size, "%s is not signed with ECDSA/SHA-256", what);
    if (X509_NAME_cmp (X509_get_issuer_name (cert), X509_get_subject_name (issuer)) != 0)
        return umb_reason_set (reason, size, "%s issuer name does not match its issuer", what);
    EVP_PKEY *key = X509_get0_pubkey (issuer);
    if (!s_is_p256 (key)) {
        ERR_clear_error ();
        return umb_reason_set (reason, size, "the issuer of the %s has no P-256 key", what);
    }
    return umb_x509_check_signed (cert, key, what, when, reason, size);
}

static bool
s_self_issued (X509 *cert)
{
    return X509_NAME_cmp (X509_get_subject_name (cert), X509_get_issuer_name (cert)) == 0;
}

static bool
s_common_name_is (X509 *cert, const char *expected)
{
    char cn [128] = "";
    return X509_NAME_get_text_by_NID (X509_get_subject_name (cert), NID_commonName, cn, sizeof cn) > 0
        && streq (cn, expected);
}

//  The chain check against a given root (the built-in one, or a test root)
static int
s_verify_chain (X509 *pck, const char *chain_pem, X509 *root, int64_t at_time, char *reason, size_t size)
{
    if (!pck)
        return umb_reason_set (reason, size, "no PCK certificate");
    if (!root)
        return umb_reason_set (reason, size, "cannot load the built-in Intel SGX Root CA");
    time_t when = at_time? (time_t) at_time: time (NULL);
    X509 *chain [S_MAX_CHAIN];
    size_t count = 0;
    if (s_read_chain (chain_pem, chain, &count, reason, size))
        return -1;

    int rc = -1;
    //  A root in the chain must be ours, byte for byte
    for (size_t i = 0; i < count; i++)
        if (s_self_issued (chain [i]) && !umb_x509_same (chain [i], root)) {
            umb_reason_set (reason, size, "the PCK chain holds a root that is not the built-in Intel SGX Root CA");
            goto done;
        }
    if (s_self_issued (pck) || X509_check_ca (pck) != 0) {
        umb_reason_set (reason, size, "the PCK certificate is a CA certificate");
        goto done;
    }
    if (!s_common_name_is (pck, "Intel SGX PCK Certificate")) {
        umb_reason_set (reason, size, "the PCK certificate is not named 'Intel SGX PCK Certificate'");
        goto done;
    }
    //  The intermediate: a CA of the chain, not self-issued, that issued the PCK
    X509 *ca = NULL;
    for (size_t i = 0; i < count && !ca; i++)
        if (!s_self_issued (chain [i])
        &&  X509_NAME_cmp (X509_get_subject_name (chain [i]), X509_get_issuer_name (pck)) == 0)
            ca = chain [i];
    if (!ca) {
        umb_reason_set (reason, size, "no PCK Platform/Processor CA in the chain issued the PCK certificate");
        goto done;
    }
    if (!s_common_name_is (ca, "Intel SGX PCK Platform CA")
    &&  !s_common_name_is (ca, "Intel SGX PCK Processor CA")) {
        umb_reason_set (reason, size, "the PCK issuer is not an Intel SGX PCK Platform/Processor CA");
        goto done;
    }
    //  Nothing else may ride along: every certificate is on the path
    for (size_t i = 0; i < count; i++)
        if (chain [i] != ca && !umb_x509_same (chain [i], pck) && !umb_x509_same (chain [i], root)) {
            umb_reason_set (reason, size, "the PCK chain holds a certificate that is not on the PCK -> CA -> root path");
            goto done;
        }
    if (X509_check_ca (ca) < 1 || X509_check_ca (root) < 1) {
        umb_reason_set (reason, size, "an issuer in the PCK chain is not a CA");
        goto done;
    }
    if (s_check_link (root, root, "Intel SGX Root CA", when, reason, size)
    ||  s_check_link (ca, root, "PCK Platform/Processor CA", when, reason, size)
    ||  s_check_link (pck, ca, "PCK certificate", when, reason, size))
        goto done;
    if (!s_is_p256 (X509_get0_pubkey (pck))) {
        umb_reason_set (reason, size, "PCK key is not ECDSA P-256");
        goto done;
    }
    rc = 0;
done:
    for (size_t i = 0; i < count; i++)
        X509_free (chain [i]);
    ERR_clear_error ();
    return rc;
}

int
umb_tdx_verify_chain (X509 *pck, const char *chain_pem, int64_t at_time, char *reason, size_t size)
{
    X509 *root = umb_x509_from_pem (s_intel_sgx_root);
    int rc = s_verify_chain (pck, chain_pem, root, at_time, reason, size);
    X509_free (root);
    return rc;
}

static int
s_verify (umb_tdx_quote_t *quote, const char *chain_pem, X509 *root, int64_t at_time,
          char *reason, size_t size)
{
    if (!quote)
        return umb_reason_set (reason, size, "no quote");
    if (umb_tdx_verify_signature (quote, reason, size))
        return -1;
    const char *chain = chain_pem? chain_pem: quote->pck_chain;
    X509 *certs [S_MAX_CHAIN];
    size_t count = 0;
    if (s_read_chain (chain, certs, &count, reason, size))
        return -1;
    X509 *pck = certs [0];
    for (size_t i = 1; i < count; i++)
        X509_free (certs [i]);
    int rc = s_verify_chain (pck, chain, root, at_time, reason, size)
          || umb_tdx_verify_qe_report (quote, pck, reason, size)? -1: 0;
    X509_free (pck);
    return rc;
}

int
umb_tdx_verify (umb_tdx_quote_t *quote, const char *chain_pem, int64_t at_time, char *reason, size_t size)
{
    X509 *root = umb_x509_from_pem (s_intel_sgx_root);
    int rc = s_verify (quote, chain_pem, root, at_time, reason, size);
    X509_free (root);
    return rc;
}

int
umb_tdx_check_crl (X509 *cert, const char *chain_pem, const uint8_t *crl_data, size_t crl_size,
                   int64_t at_time, char *reason, size_t size)
{
    if (!cert)
        return umb_reason_set (reason, size, "no certificate to check for revocation");
    if (!crl_data || crl_size == 0 || crl_size > LONG_MAX)
        return umb_reason_set (reason, size, "no CRL");
    time_t when = at_time? (time_t) at_time: time (NULL);
    const uint8_t *cursor = crl_data;
    X509_CRL *crl = d2i_X509_CRL (NULL, &cursor, (long) crl_size);
    if (crl && cursor != crl_data + crl_size) {
        X509_CRL_free (crl);
        crl = NULL;
    }
    if (!crl) {
        BIO *bio = BIO_new_mem_buf (crl_data, (int) (crl_size > INT_MAX? INT_MAX: crl_size));
        crl = bio? PEM_read_bio_X509_CRL (bio, NULL, NULL, NULL): NULL;
        BIO_free (bio);
    }
    ERR_clear_error ();
    if (!crl)
        return umb_reason_set (reason, size, "the CRL does not parse");

    int rc = -1;
    X509 *chain [S_MAX_CHAIN];
    size_t count = 0;
    X509 *root = umb_x509_from_pem (s_intel_sgx_root);
    if (chain_pem && s_read_chain (chain_pem, chain, &count, reason, size))
        goto done;
    X509 *issuer = NULL;
    for (size_t i = 0; i < count && !issuer; i++)
        if (X509_NAME_cmp (X509_get_subject_name (chain [i]), X509_CRL_get_issuer (crl)) == 0)
            issuer = chain [i];
    if (!issuer && root && X509_NAME_cmp (X509_get_subject_name (root), X509_CRL_get_issuer (crl)) == 0)
        issuer = root;
    if (!issuer) {
        umb_reason_set (reason, size, "the CRL issuer is not in the chain");
        goto done;
    }
    if (X509_NAME_cmp (X509_get_issuer_name (cert), X509_CRL_get_issuer (crl)) != 0) {
        umb_reason_set (reason, size, "the CRL is not from the certificate's issuer");
        goto done;
    }
    if (X509_CRL_get_signature_nid (crl) != NID_ecdsa_with_SHA256
    ||  !s_is_p256 (X509_get0_pubkey (issuer))
    ||  X509_CRL_verify (crl, X509_get0_pubkey (issuer)) != 1) {
        umb_reason_set (reason, size, "the CRL signature does not verify (ECDSA/SHA-256 by its issuer)");
        goto done;
    }
    const ASN1_TIME *next = X509_CRL_get0_nextUpdate (crl);
    if (X509_cmp_time (X509_CRL_get0_lastUpdate (crl), &when) != -1) {
        umb_reason_set (reason, size, "the CRL is not yet valid");
        goto done;
    }
    if (!next || X509_cmp_time (next, &when) != 1) {
        umb_reason_set (reason, size, "the CRL is stale (past its nextUpdate)");
        goto done;
    }
    X509_REVOKED *revoked = NULL;
    if (X509_CRL_get0_by_serial (crl, &revoked, X509_get0_serialNumber (cert)) == 1) {
        umb_reason_set (reason, size, "the certificate is revoked");
        goto done;
    }
    rc = 0;
done:
    for (size_t i = 0; i < count; i++)
        X509_free (chain [i]);
    X509_free (root);
    X509_CRL_free (crl);
    ERR_clear_error ();
    return rc;
}

//  --------------------------------------------------------------------------
//  Policy

static int
s_check_list (const uint8_t *value, const umb_tdx_policy_list_t *list, const char *name,
              char *reason, size_t size)
{
    if (!list->set)
        return 0;
    if (list->count == 0)
        return umb_reason_set (reason, size, "policy %s list is set but empty: nothing is allowed", name);
    if (list->count > UMB_TDX_POLICY_MAX_VALUES)
        return umb_reason_set (reason, size, "policy %s list is malformed (%zu entries)", name, list->count);
    for (size_t i = 0; i < list->count; i++)
        if (memcmp (value, list->values [i], UMB_TDX_MEASUREMENT_SIZE) == 0)
            return 0;
    char hex [2 * UMB_TDX_MEASUREMENT_SIZE + 1];
    umb_hex_encode (value, UMB_TDX_MEASUREMENT_SIZE, hex);
    return umb_reason_set (reason, size, "%s %s is not allowed by the policy", name, hex);
}

int
umb_tdx_check_policy (umb_tdx_quote_t *quote, const umb_tdx_policy_t *policy, char *reason, size_t size)
{
    if (!quote)
        return umb_reason_set (reason, size, "no quote");
    if (!policy)
        return umb_reason_set (reason, size, "no TDX policy");
    if (!policy->mr_td.set)
        return umb_reason_set (reason, size, "the policy names no allowed MRTD");
    if (s_check_list (umb_tdx_quote_mr_td (quote), &policy->mr_td, "MRTD", reason, size)
    ||  s_check_list (umb_tdx_quote_mr_seam (quote), &policy->mr_seam, "MRSEAM", reason, size)
    ||  s_check_list (umb_tdx_quote_mr_config_id (quote), &policy->mr_config_id, "MRCONFIGID", reason, size)
    ||  s_check_list (umb_tdx_quote_mr_owner (quote), &policy->mr_owner, "MROWNER", reason, size)
    ||  s_check_list (umb_tdx_quote_mr_owner_config (quote), &policy->mr_owner_config,
                      "MROWNERCONFIG", reason, size))
        return -1;
    for (int i = 0; i < 4; i++)
        if (policy->rtmr [i].set
        &&  memcmp (umb_tdx_quote_rtmr (quote, i), policy->rtmr [i].value, UMB_TDX_MEASUREMENT_SIZE) != 0) {
            char hex [2 * UMB_TDX_MEASUREMENT_SIZE + 1];
            umb_hex_encode (umb_tdx_quote_rtmr (quote, i), UMB_TDX_MEASUREMENT_SIZE, hex);
            return umb_reason_set (reason, size, "RTMR%d %s does not match the policy", i, hex);
        }
    uint64_t attributes = umb_tdx_quote_td_attributes (quote);
    if ((attributes & UMB_TDX_TD_ATTR_DEBUG) && !policy->allow_debug)
        return umb_reason_set (reason, size, "the TD is a debug TD (TD attributes 0x%016llx) and the policy"
                               " does not allow debug", (unsigned long long) attributes);
    if (policy->td_attributes_set) {
        if (policy->td_attributes_mask == 0)
            return umb_reason_set (reason, size, "policy TD attributes mask is set but empty");
        if ((attributes & policy->td_attributes_mask) != policy->td_attributes_value)
            return umb_reason_set (reason, size, "TD attributes 0x%016llx & 0x%016llx are not 0x%016llx",
                                   (unsigned long long) attributes,
                                   (unsigned long long) policy->td_attributes_mask,
                                   (unsigned long long) policy->td_attributes_value);
    }
    if (policy->xfam_set) {
        uint64_t xfam = umb_tdx_quote_xfam (quote);
        if (policy->xfam_mask == 0)
            return umb_reason_set (reason, size, "policy XFAM mask is set but empty");
        if ((xfam & policy->xfam_mask) != policy->xfam_value)
            return umb_reason_set (reason, size, "XFAM 0x%016llx & 0x%016llx is not 0x%016llx",
                                   (unsigned long long) xfam, (unsigned long long) policy->xfam_mask,
                                   (unsigned long long) policy->xfam_value);
    }
    if (policy->min_tee_tcb_svn_set) {
        const uint8_t *svn = umb_tdx_quote_tee_tcb_svn (quote);
        for (int i = 0; i < 16; i++)
            if (svn [i] < policy->min_tee_tcb_svn [i])
                return umb_reason_set (reason, size, "TEE TCB SVN component %d is %u, the policy needs %u or more",
                                       i, svn [i], policy->min_tee_tcb_svn [i]);
    }
    if (policy->report_data_set
    &&  memcmp (umb_tdx_quote_report_data (quote), policy->report_data, UMB_TDX_REPORT_DATA_SIZE) != 0)
        return umb_reason_set (reason, size, "report_data does not match the policy");
    return 0;
}

//  --------------------------------------------------------------------------
//  JSON

static int
s_set_hex (json_t *object, const char *key, const uint8_t *data, size_t size)
{
    char *hex = umb_hex_encode_new (data, size);
    int rc = hex ? json_object_set_new (object, key, json_string (hex)) : -1;
    free (hex);
    return rc;
}

static json_t *
s_cert_json (X509 *cert)
{
    json_t *object = json_object ();
    char *text = NULL;
    BIO *bio = BIO_new (BIO_s_mem ());
    const unsigned long flags = XN_FLAG_SEP_COMMA_PLUS | XN_FLAG_DN_REV | ASN1_STRFLGS_RFC2253 | XN_FLAG_FN_SN;
    const char *names [] = { "subject", "issuer" };
    X509_NAME *values [] = { X509_get_subject_name (cert), X509_get_issuer_name (cert) };
    for (int i = 0; i < 2 && bio && object; i++) {
        (void) BIO_reset (bio);
        X509_NAME_print_ex (bio, values [i], 0, flags);
        BIO_write (bio, "", 1);
        BIO_get_mem_data (bio, &text);
        json_object_set_new (object, names [i], json_string (text));
    }
    BIO_free (bio);
    struct tm tm;
    char when [32] = "";
    if (ASN1_TIME_to_tm (X509_get0_notAfter (cert), &tm) == 1)
        strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
    json_object_set_new (object, "not_after", json_string (when));
    uint8_t digest [32];
    unsigned int digest_size = 0;
    if (X509_digest (cert, EVP_sha256 (), digest, &digest_size) == 1 && digest_size == 32)
        s_set_hex (object, "sha256", digest, 32);
    ERR_clear_error ();
    return object;
}

json_t *
umb_tdx_quote_to_json (umb_tdx_quote_t *self)
{
    assert (self);
    json_t *root = json_object ();
    json_t *header = json_object ();
    json_t *body = json_object ();
    json_t *qe = json_object ();
    json_t *chain = json_array ();
    if (!root || !header || !body || !qe || !chain) {
        json_decref (root);
        json_decref (header);
        json_decref (body);
        json_decref (qe);
        json_decref (chain);
        return NULL;
    }
    char tee_type [16];
    snprintf (tee_type, sizeof tee_type, "0x%x", umb_tdx_quote_tee_type (self));
    json_object_set_new (header, "version", json_integer (umb_tdx_quote_version (self)));
    json_object_set_new (header, "att_key_type", json_integer (umb_tdx_quote_att_key_type (self)));
    json_object_set_new (header, "tee_type", json_string (tee_type));
    json_object_set_new (header, "qe_svn", json_integer (umb_tdx_quote_qe_svn (self)));
    json_object_set_new (header, "pce_svn", json_integer (umb_tdx_quote_pce_svn (self)));
    s_set_hex (header, "qe_vendor_id", umb_tdx_quote_qe_vendor_id (self), 16);
    s_set_hex (header, "user_data", umb_tdx_quote_user_data (self), 20);

    json_object_set_new (body, "body_type", json_integer (self->body_type));
    s_set_hex (body, "tee_tcb_svn", umb_tdx_quote_tee_tcb_svn (self), 16);
    s_set_hex (body, "mr_seam", umb_tdx_quote_mr_seam (self), 48);
    s_set_hex (body, "mr_signer_seam", umb_tdx_quote_mr_signer_seam (self), 48);
    s_set_hex (body, "seam_attributes", umb_tdx_quote_seam_attributes (self), 8);
    s_set_hex (body, "td_attributes", umb_tdx_quote_td_attributes_raw (self), 8);
    json_object_set_new (body, "td_debug",
                         json_boolean (umb_tdx_quote_td_attributes (self) & UMB_TDX_TD_ATTR_DEBUG));
    s_set_hex (body, "xfam", umb_tdx_quote_xfam_raw (self), 8);
    s_set_hex (body, "mr_td", umb_tdx_quote_mr_td (self), 48);
    s_set_hex (body, "mr_config_id", umb_tdx_quote_mr_config_id (self), 48);
    s_set_hex (body, "mr_owner", umb_tdx_quote_mr_owner (self), 48);
    s_set_hex (body, "mr_owner_config", umb_tdx_quote_mr_owner_config (self), 48);
    const char *rtmrs [] = { "rtmr0", "rtmr1", "rtmr2", "rtmr3" };
    for (int i = 0; i < 4; i++)
        s_set_hex (body, rtmrs [i], umb_tdx_quote_rtmr (self, i), 48);
    s_set_hex (body, "report_data", umb_tdx_quote_report_data (self), 64);
    if (self->body_type == UMB_TDX_BODY_TYPE_TD15) {
        s_set_hex (body, "tee_tcb_svn2", umb_tdx_quote_tee_tcb_svn2 (self), 16);
        s_set_hex (body, "mr_service_td", umb_tdx_quote_mr_service_td (self), 48);
    }
    s_set_hex (qe, "mr_enclave", umb_tdx_quote_qe_mr_enclave (self), 32);
    s_set_hex (qe, "mr_signer", umb_tdx_quote_qe_mr_signer (self), 32);
    json_object_set_new (qe, "isv_prod_id", json_integer (umb_tdx_quote_qe_isv_prod_id (self)));
    json_object_set_new (qe, "isv_svn", json_integer (umb_tdx_quote_qe_isv_svn (self)));
    s_set_hex (qe, "report_data", umb_tdx_quote_qe_report_data (self), 64);

    X509 *certs [S_MAX_CHAIN];
    size_t count = 0;
    if (s_read_chain (self->pck_chain, certs, &count, NULL, 0) == 0)
        for (size_t i = 0; i < count; i++) {
            json_array_append_new (chain, s_cert_json (certs [i]));
            X509_free (certs [i]);
        }
    json_object_set_new (root, "header", header);
    json_object_set_new (root, "body", body);
    json_object_set_new (root, "sig_data_len", json_integer (self->sig_data_size));
    s_set_hex (root, "signature", umb_tdx_quote_signature (self), 64);
    s_set_hex (root, "attestation_key", umb_tdx_quote_attestation_key (self), 64);
    json_object_set_new (root, "outer_cert_data_type", json_integer (UMB_TDX_CERT_DATA_QE_REPORT));
    json_object_set_new (root, "inner_cert_data_type", json_integer (UMB_TDX_CERT_DATA_PCK_CHAIN));
    json_object_set_new (root, "qe_report", qe);
    json_object_set_new (root, "qe_auth_data_len", json_integer ((json_int_t) self->qe_auth_size));
    json_object_set_new (root, "pck_chain", chain);
    return root;
}

//  --------------------------------------------------------------------------
//  Selftest: known answers from ../shared/vectors/tdx (EXPECTED_TDX.json),
//  tampering, chains, and synthetic v5 quotes under a test PKI

#define S_FIXED_TIME     1767225600     //  2026-01-01, inside every vector PCK's validity
#define S_BEFORE_ROOT    1500000000     //  2017-07-14, before the Intel root's notBefore
#define S_AFTER_ROOT     2524608000     //  2050-01-01, after the Intel root's notAfter

static uint8_t *
s_load (const char *name, size_t *size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", UMB_VECTORS_DIR, name);
    FILE *file = fopen (path, "rb");
    if (!file)
        fprintf (stderr, "umb_tdx: cannot open %s\n", path);
    assert (file);
    uint8_t *data = (uint8_t *) malloc (1 << 20);
    assert (data);
    *size = fread (data, 1, (1 << 20) - 1, file);
    data [*size] = 0;           //  so PEM files are strings
    fclose (file);
    return data;
}

static void
s_unhex (const char *hex, uint8_t *out, size_t size)
{
    int rc = umb_hex_decode (hex, out, size);
    assert (rc == 0);
}

static void
s_assert_reason (int rc, const char *reason, const char *why)
{
    if (rc != -1 || !strstr (reason, why)) {
        fprintf (stderr, "umb_tdx: rc=%d reason '%s' does not say '%s'\n", rc, reason, why);
        assert (false);
    }
}

//  Every key of expected must hold an equal value in actual
static void
s_assert_json (json_t *expected, json_t *actual, const char *where)
{
    assert (json_is_object (expected));
    const char *key;
    json_t *value;
    json_object_foreach (expected, key, value) {
        json_t *mine = json_object_get (actual, key);
        if (!mine || !json_equal (value, mine)) {
            char *want = json_dumps (value, JSON_ENCODE_ANY);
            char *got = mine? json_dumps (mine, JSON_ENCODE_ANY): NULL;
            fprintf (stderr, "umb_tdx: %s.%s: got %s, expected %s\n", where, key, got? got: "nothing", want);
            free (want);
            free (got);
            assert (false);
        }
    }
}

//  A flipped byte: the parser or the full verification must refuse
static void
s_assert_tamper_refused (uint8_t *data, size_t size, size_t offset, int64_t at_time)
{
    char reason [256] = "";
    uint8_t saved = data [offset];
    data [offset] ^= (uint8_t) (1 << (offset % 8));
    umb_tdx_quote_t *quote = umb_tdx_quote_parse (data, size, reason, sizeof reason);
    if (quote) {
        int rc = umb_tdx_verify (quote, NULL, at_time, reason, sizeof reason);
        if (rc == 0)
            fprintf (stderr, "umb_tdx: a flip at offset %zu was accepted\n", offset);
        assert (rc == -1);
        umb_tdx_quote_destroy (&quote);
    }
    else
        assert (reason [0]);
    data [offset] = saved;
}

static void
s_test_vector (json_t *expected, bool verbose)
{
    char reason [256] = "";
    const char *name = json_string_value (json_object_get (expected, "file"));
    assert (name);
    size_t size;
    uint8_t *data = s_load (name, &size);
    assert ((json_int_t) size == json_integer_value (json_object_get (expected, "size")));
    uint8_t digest [32];
    unsigned int digest_size = 0;
    assert (EVP_Digest (data, size, digest, &digest_size, EVP_sha256 (), NULL) == 1);
    uint8_t want [32];
    s_unhex (json_string_value (json_object_get (expected, "sha256")), want, 32);
    assert (memcmp (digest, want, 32) == 0);

    umb_tdx_quote_t *quote = umb_tdx_quote_parse (data, size, reason, sizeof reason);
    if (!quote)
        fprintf (stderr, "umb_tdx: %s: %s\n", name, reason);
    assert (quote);

    //  Every field the upstream suites assert, through the JSON dump
    json_t *mine = umb_tdx_quote_to_json (quote);
    assert (mine);
    s_assert_json (json_object_get (expected, "header"), json_object_get (mine, "header"), "header");
    s_assert_json (json_object_get (expected, "body"), json_object_get (mine, "body"), "body");
    s_assert_json (json_object_get (expected, "qe_report"), json_object_get (mine, "qe_report"), "qe_report");
    json_t *top = json_pack ("{sOsOsOsO}",
        "sig_data_len", json_object_get (expected, "sig_data_len"),
        "outer_cert_data_type", json_object_get (expected, "outer_cert_data_type"),
        "inner_cert_data_type", json_object_get (expected, "inner_cert_data_type"),
        "qe_auth_data_len", json_object_get (expected, "qe_auth_data_len"));
    assert (top);
    s_assert_json (top, mine, "quote");
    json_decref (top);
    json_t *chain = json_object_get (expected, "pck_chain");
    json_t *my_chain = json_object_get (mine, "pck_chain");
    assert (json_array_size (chain) == 3 && json_array_size (my_chain) == 3);
    for (size_t i = 0; i < 3; i++)
        s_assert_json (json_array_get (chain, i), json_array_get (my_chain, i), "pck_chain");
    json_t *upstream = json_object_get (expected, "upstream_asserted");
    const char *key;
    json_t *value;
    json_object_foreach (upstream, key, value) {
        json_t *field = json_object_get (json_object_get (mine, "body"), key);
        if (!field)
            field = json_object_get (json_object_get (mine, "header"), key);
        if (field)
            assert (json_equal (field, value));
        else
        if (streq (key, "rtmrs"))
            for (size_t i = 0; i < 4; i++) {
                char rtmr [8];
                snprintf (rtmr, sizeof rtmr, "rtmr%zu", i);
                assert (json_equal (json_array_get (value, i),
                                    json_object_get (json_object_get (mine, "body"), rtmr)));
            }
    }
    //  Accessors agree with the dump and the layout
    assert (umb_tdx_quote_version (quote) == 4);
    assert (umb_tdx_quote_body_type (quote) == UMB_TDX_BODY_TYPE_TD10);
    assert (!umb_tdx_quote_tee_tcb_svn2 (quote) && !umb_tdx_quote_mr_service_td (quote));
    assert (umb_tdx_quote_size (quote) + (size_t) json_integer_value (
            json_object_get (expected, "trailing_bytes_after_sig_data")) == size);
    size_t signed_size = 0;
    assert (umb_tdx_quote_signed (quote, &signed_size) && signed_size == 48 + 584);
    assert (memcmp (umb_tdx_quote_mr_td (quote), data + 48 + 136, 48) == 0);
    assert (memcmp (umb_tdx_quote_rtmr (quote, 3), data + 48 + 472, 48) == 0);
    assert (umb_tdx_quote_td_attributes (quote) == umb_bytes_le64 (data + 48 + 120));
    size_t auth_size = 0;
    assert (umb_tdx_quote_qe_auth_data (quote, &auth_size) && auth_size == 32);

    //  The chain in the quote is the one extracted in pck-chains/
    char chain_name [256];
    const char *base = strrchr (name, '/');
    const char *dir = strchr (name, '/');
    assert (base && dir);
    snprintf (chain_name, sizeof chain_name, "tdx/pck-chains/%.*s__%.*s.pck_chain.pem",
              (int) (base - dir - 1), dir + 1, (int) (strrchr (base, '.') - base - 1), base + 1);
    size_t chain_size;
    char *chain_pem = (char *) s_load (chain_name, &chain_size);
    assert (streq (chain_pem, umb_tdx_quote_pck_chain (quote)));

    //  Genuine: every check, separately and together, with either chain
    X509 *pck = umb_tdx_quote_pck (quote);
    assert (pck);
    int rc = umb_tdx_verify_signature (quote, reason, sizeof reason)
          || umb_tdx_verify_qe_report (quote, pck, reason, sizeof reason)
          || umb_tdx_verify_chain (pck, umb_tdx_quote_pck_chain (quote), S_FIXED_TIME, reason, sizeof reason)
          || umb_tdx_verify_chain (pck, chain_pem, S_FIXED_TIME, reason, sizeof reason)
          || umb_tdx_verify (quote, NULL, S_FIXED_TIME, reason, sizeof reason)
          || umb_tdx_verify (quote, chain_pem, S_FIXED_TIME, reason, sizeof reason);
    if (rc)
        fprintf (stderr, "umb_tdx: %s: %s\n", name, reason);
    assert (rc == 0);
    //  Now, while the PCK is valid
    time_t now = time (NULL);
    if (X509_cmp_time (X509_get0_notAfter (pck), &now) == 1)
        assert (umb_tdx_verify (quote, NULL, 0, reason, sizeof reason) == 0);
    //  Outside the validity of the PCK and of the root
    s_assert_reason (umb_tdx_verify (quote, NULL, S_AFTER_ROOT, reason, sizeof reason), reason, "expired");
    s_assert_reason (umb_tdx_verify (quote, NULL, S_BEFORE_ROOT, reason, sizeof reason), reason, "not yet valid");
    struct tm tm;
    assert (ASN1_TIME_to_tm (X509_get0_notAfter (pck), &tm) == 1);
    int64_t pck_end = (int64_t) timegm (&tm);
    assert (umb_tdx_verify (quote, NULL, pck_end - 60, reason, sizeof reason) == 0);
    s_assert_reason (umb_tdx_verify (quote, NULL, pck_end + 1, reason, sizeof reason),
                     reason, "PCK certificate has expired");
    //  A missing chain or PCK
    s_assert_reason (umb_tdx_verify (quote, "", S_FIXED_TIME, reason, sizeof reason), reason, "no certificate");
    s_assert_reason (umb_tdx_verify (quote, "\n\n", S_FIXED_TIME, reason, sizeof reason), reason, "no certificate");
    s_assert_reason (umb_tdx_verify_chain (pck, NULL, S_FIXED_TIME, reason, sizeof reason), reason, "no PCK chain");
    s_assert_reason (umb_tdx_verify_chain (NULL, chain_pem, S_FIXED_TIME, reason, sizeof reason), reason, "no PCK");
    s_assert_reason (umb_tdx_verify_qe_report (quote, NULL, reason, sizeof reason), reason, "no PCK");
    assert (umb_tdx_verify (NULL, NULL, 0, reason, sizeof reason) == -1);
    assert (umb_tdx_verify_signature (NULL, reason, sizeof reason) == -1);
    assert (umb_tdx_verify_qe_report (NULL, pck, reason, sizeof reason) == -1);

    //  Every byte of the signed region, and of the signature data before the
    //  chain (signature, attestation key, QE report, its signature, the auth
    //  data, the certification data headers), flipped: refused
    size_t chain_start = quote->qe_cert + S_Q_AUTH_DATA + quote->qe_auth_size + 6;
    size_t quote_size = umb_tdx_quote_size (quote);
    assert (memcmp (data + chain_start, chain_pem, strlen (chain_pem)) == 0);
    for (size_t i = 0; i < chain_start; i++)
        s_assert_tamper_refused (data, size, i, S_FIXED_TIME);
    //  The chain: a flip is refused, or leaves the same certificates
    for (size_t i = chain_start; i < quote_size; i += 3) {
        data [i] ^= (uint8_t) (1 << (i % 8));
        umb_tdx_quote_t *copy = umb_tdx_quote_parse (data, size, reason, sizeof reason);
        if (copy && umb_tdx_verify (copy, NULL, S_FIXED_TIME, reason, sizeof reason) == 0) {
            json_t *dump = umb_tdx_quote_to_json (copy);
            if (!json_equal (json_object_get (dump, "pck_chain"), my_chain)) {
                char *text = json_dumps (json_object_get (dump, "pck_chain"), 0);
                fprintf (stderr, "umb_tdx: chain flip at %zu (+%zu) '%c': %s\n", i, i - chain_start, data [i], text);
                free (text);
            }
            assert (json_equal (json_object_get (dump, "pck_chain"), my_chain));
            json_decref (dump);
        }
        umb_tdx_quote_destroy (&copy);
        data [i] ^= (uint8_t) (1 << (i % 8));
    }
    //  Every truncation
    for (size_t cut = 0; cut < quote_size; cut++) {
        umb_tdx_quote_t *copy = umb_tdx_quote_parse (data, cut, reason, sizeof reason);
        assert (!copy && reason [0]);
    }
    umb_tdx_quote_destroy (&quote);
    assert (quote == NULL);
    umb_tdx_quote_destroy (&quote);
    json_decref (mine);
    X509_free (pck);
    free (chain_pem);
    free (data);
    if (verbose)
        printf (" * tdx: %s verified, tampering refused\n", name);
}

static void
s_test_policy (json_t *expected)
{
    char reason [256] = "";
    size_t size;
    uint8_t *data = s_load (json_string_value (json_object_get (expected, "file")), &size);
    umb_tdx_quote_t *quote = umb_tdx_quote_parse (data, size, reason, sizeof reason);
    assert (quote);
    json_t *body = json_object_get (expected, "body");
    const char *rtmrs [] = { "rtmr0", "rtmr1", "rtmr2", "rtmr3" };
    umb_tdx_policy_t good;
    memset (&good, 0, sizeof good);
    good.mr_td.set = true;
    good.mr_td.count = 2;
    memset (good.mr_td.values [0], 0xAA, UMB_TDX_MEASUREMENT_SIZE);
    s_unhex (json_string_value (json_object_get (body, "mr_td")), good.mr_td.values [1], 48);
    good.mr_seam.set = true;
    good.mr_seam.count = 1;
    s_unhex (json_string_value (json_object_get (body, "mr_seam")), good.mr_seam.values [0], 48);
    good.mr_config_id.set = good.mr_owner.set = good.mr_owner_config.set = true;
    good.mr_config_id.count = good.mr_owner.count = good.mr_owner_config.count = 1;
    s_unhex (json_string_value (json_object_get (body, "mr_config_id")), good.mr_config_id.values [0], 48);
    s_unhex (json_string_value (json_object_get (body, "mr_owner")), good.mr_owner.values [0], 48);
    s_unhex (json_string_value (json_object_get (body, "mr_owner_config")), good.mr_owner_config.values [0], 48);
    for (int i = 0; i < 4; i++) {
        good.rtmr [i].set = true;
        s_unhex (json_string_value (json_object_get (body, rtmrs [i])), good.rtmr [i].value, 48);
    }
    uint8_t raw [8];
    s_unhex (json_string_value (json_object_get (body, "td_attributes")), raw, 8);
    uint64_t attributes = umb_bytes_le64 (raw);
    bool debug = (attributes & UMB_TDX_TD_ATTR_DEBUG) != 0;
    good.allow_debug = debug;
    good.td_attributes_set = true;
    good.td_attributes_mask = ~0ULL;
    good.td_attributes_value = attributes;
    s_unhex (json_string_value (json_object_get (body, "xfam")), raw, 8);
    good.xfam_set = true;
    good.xfam_mask = ~0ULL;
    good.xfam_value = umb_bytes_le64 (raw);
    good.min_tee_tcb_svn_set = true;
    s_unhex (json_string_value (json_object_get (body, "tee_tcb_svn")), good.min_tee_tcb_svn, 16);
    good.report_data_set = true;
    s_unhex (json_string_value (json_object_get (body, "report_data")), good.report_data, 64);
    int rc = umb_tdx_check_policy (quote, &good, reason, sizeof reason);
    if (rc)
        fprintf (stderr, "umb_tdx: policy: %s\n", reason);
    assert (rc == 0);

    //  Only an MRTD: enough
    umb_tdx_policy_t policy;
    memset (&policy, 0, sizeof policy);
    policy.allow_debug = debug;
    policy.mr_td = good.mr_td;
    assert (umb_tdx_check_policy (quote, &policy, reason, sizeof reason) == 0);
    //  Nothing: refused
    memset (&policy, 0, sizeof policy);
    s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "no allowed MRTD");
    s_assert_reason (umb_tdx_check_policy (quote, NULL, reason, sizeof reason), reason, "no TDX policy");
    s_assert_reason (umb_tdx_check_policy (NULL, &good, reason, sizeof reason), reason, "no quote");
    //  Wrong MRTD
    policy = good;
    policy.mr_td.count = 1;
    s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "MRTD");
    //  Set but empty lists
    policy = good;
    policy.mr_td.count = 0;
    s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "set but empty");
    policy = good;
    policy.mr_seam.count = 0;
    s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "MRSEAM list is set but empty");
    policy = good;
    policy.mr_owner.count = UMB_TDX_POLICY_MAX_VALUES + 1;
    s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "malformed");
    policy = good;
    policy.mr_seam.values [0][47] ^= 1;
    s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "MRSEAM");
    policy = good;
    policy.mr_config_id.values [0][0] ^= 1;
    s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "MRCONFIGID");
    for (int i = 0; i < 4; i++) {
        policy = good;
        policy.rtmr [i].value [i] ^= 1;
        char what [8];
        snprintf (what, sizeof what, "RTMR%d", i);
        s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, what);
    }
    policy = good;
    policy.xfam_value ^= 1;
    s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "XFAM");
    policy = good;
    policy.xfam_mask = 0;
    s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "XFAM mask is set but empty");
    policy = good;
    policy.td_attributes_mask = 0;
    s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "mask is set but empty");
    policy = good;
    policy.td_attributes_value ^= 1ULL << 28;
    s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "TD attributes");
    policy = good;
    policy.report_data [63] ^= 1;
    s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "report_data");
    policy = good;
    policy.min_tee_tcb_svn [0]++;
    s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "TEE TCB SVN");

    //  Debug: refused unless the policy allows it
    if (debug) {
        policy = good;
        policy.allow_debug = false;
        s_assert_reason (umb_tdx_check_policy (quote, &policy, reason, sizeof reason), reason, "debug");
    }
    else {
        //  The same quote with the DEBUG bit set (the policy does not
        //  re-verify; the signature check would refuse the change anyway)
        data [48 + S_B_TD_ATTRIBUTES] |= 1;
        umb_tdx_quote_t *debug_quote = umb_tdx_quote_parse (data, size, reason, sizeof reason);
        assert (debug_quote);
        policy = good;
        policy.td_attributes_set = false;
        s_assert_reason (umb_tdx_check_policy (debug_quote, &policy, reason, sizeof reason), reason, "debug");
        policy.allow_debug = true;
        assert (umb_tdx_check_policy (debug_quote, &policy, reason, sizeof reason) == 0);
        umb_tdx_quote_destroy (&debug_quote);
        data [48 + S_B_TD_ATTRIBUTES] &= (uint8_t) ~1;
    }
    umb_tdx_quote_destroy (&quote);
    free (data);
}

//  A quote assembled from its parts (for malformed and synthetic quotes)
static uint8_t *
s_assemble (const uint8_t *signed_part, size_t signed_size, const uint8_t *signature,
            const uint8_t *key, const uint8_t *qe_report, const uint8_t *qe_signature,
            const uint8_t *auth, size_t auth_size, const char *chain, size_t chain_size, size_t *size)
{
    size_t inner = 6 + chain_size;
    size_t cert = S_Q_AUTH_DATA + auth_size + inner;
    size_t sig_data = S_S_CERT_DATA + cert;
    *size = signed_size + 4 + sig_data;
    uint8_t *data = (uint8_t *) calloc (1, *size);
    assert (data);
    uint8_t *at = data;
    memcpy (at, signed_part, signed_size);
    at += signed_size;
    for (int i = 0; i < 4; i++)
        *at++ = (uint8_t) (sig_data >> (8 * i));
    memcpy (at, signature, 64);
    memcpy (at + 64, key, 64);
    at += 128;
    *at++ = UMB_TDX_CERT_DATA_QE_REPORT;
    *at++ = 0;
    for (int i = 0; i < 4; i++)
        *at++ = (uint8_t) (cert >> (8 * i));
    memcpy (at, qe_report, UMB_TDX_QE_REPORT_SIZE);
    memcpy (at + S_Q_SIGNATURE, qe_signature, 64);
    at [S_Q_AUTH_SIZE] = (uint8_t) auth_size;
    at [S_Q_AUTH_SIZE + 1] = (uint8_t) (auth_size >> 8);
    if (auth_size)
        memcpy (at + S_Q_AUTH_DATA, auth, auth_size);
    at += S_Q_AUTH_DATA + auth_size;
    *at++ = UMB_TDX_CERT_DATA_PCK_CHAIN;
    *at++ = 0;
    for (int i = 0; i < 4; i++)
        *at++ = (uint8_t) (chain_size >> (8 * i));
    if (chain_size)
        memcpy (at, chain, chain_size);
    assert (at + chain_size == data + *size);
    return data;
}

static void
s_test_malformed (void)
{
    char reason [256] = "";
    size_t size;
    uint8_t *data = s_load ("tdx/trustee/tdx_quote_4.dat", &size);
    umb_tdx_quote_t *quote = umb_tdx_quote_parse (data, size, reason, sizeof reason);
    assert (quote);
    size_t qe = quote->qe_cert;
    size_t sig = quote->sig_data;
    const char *chain = umb_tdx_quote_pck_chain (quote);

    umb_tdx_quote_t *bad = umb_tdx_quote_parse (NULL, size, reason, sizeof reason);
    assert (!bad);
    s_assert_reason (-1, reason, "truncated");
    assert (!umb_tdx_quote_parse (data, 10, NULL, 0));
    struct { size_t offset; uint8_t value; const char *why; } fields [] = {
        { S_H_VERSION, 3, "version" },
        { S_H_VERSION, 6, "version" },
        { S_H_VERSION + 1, 1, "version" },
        { S_H_ATT_KEY_TYPE, 3, "attestation key type" },
        { S_H_TEE_TYPE, 0, "TEE type" },
        { S_H_TEE_TYPE + 3, 1, "TEE type" },
        { sig + S_S_CERT_TYPE, 5, "certification data type" },
        { sig + S_S_CERT_SIZE, 0, "does not fill" },
        { qe + S_Q_AUTH_SIZE + 1, 0x10, "overruns" },
        { qe + S_Q_AUTH_DATA + 32, 4, "not a PCK chain" },
        { qe + S_Q_AUTH_DATA + 32 + 2, 0, "does not fill" },
        { 48 + 584 + 1, 0x20, "truncated" },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields [0]; i++) {
        uint8_t saved = data [fields [i].offset];
        data [fields [i].offset] = fields [i].value;
        assert (!umb_tdx_quote_parse (data, size, reason, sizeof reason));
        s_assert_reason (-1, reason, fields [i].why);
        data [fields [i].offset] = saved;
    }
    //  A signature data length that leaves bytes unexplained is refused
    data [48 + 584] -= 1;
    assert (!umb_tdx_quote_parse (data, size, reason, sizeof reason));
    data [48 + 584] += 1;

    //  An empty chain does not parse; one with no certificate never verifies
    size_t auth_size = 0;
    const uint8_t *auth = umb_tdx_quote_qe_auth_data (quote, &auth_size);
    size_t built_size;
    uint8_t *built = s_assemble (data, 48 + 584, umb_tdx_quote_signature (quote),
                                 umb_tdx_quote_attestation_key (quote), umb_tdx_quote_qe_report (quote),
                                 umb_tdx_quote_qe_report_signature (quote), auth, auth_size,
                                 NULL, 0, &built_size);
    assert (!umb_tdx_quote_parse (built, built_size, reason, sizeof reason));
    s_assert_reason (-1, reason, "empty PCK chain");
    free (built);
    //  A chain with a NUL inside (text after it would go unseen)
    size_t padded_size = strlen (umb_tdx_quote_pck_chain (quote)) + 8;
    char *padded = (char *) calloc (1, padded_size);
    assert (padded);
    memcpy (padded, umb_tdx_quote_pck_chain (quote), padded_size - 8);
    padded [padded_size - 2] = '\n';
    built = s_assemble (data, 48 + 584, umb_tdx_quote_signature (quote),
                        umb_tdx_quote_attestation_key (quote), umb_tdx_quote_qe_report (quote),
                        umb_tdx_quote_qe_report_signature (quote), auth, auth_size,
                        padded, padded_size, &built_size);
    assert (!umb_tdx_quote_parse (built, built_size, reason, sizeof reason));
    s_assert_reason (-1, reason, "NUL before its end");
    free (built);
    //  Trailing NULs are fine, and so is the rebuilt quote
    padded [padded_size - 2] = 0;
    built = s_assemble (data, 48 + 584, umb_tdx_quote_signature (quote),
                        umb_tdx_quote_attestation_key (quote), umb_tdx_quote_qe_report (quote),
                        umb_tdx_quote_qe_report_signature (quote), auth, auth_size,
                        padded, padded_size, &built_size);
    bad = umb_tdx_quote_parse (built, built_size, reason, sizeof reason);
    assert (bad);
    assert (umb_tdx_verify (bad, NULL, S_FIXED_TIME, reason, sizeof reason) == 0);
    umb_tdx_quote_destroy (&bad);
    free (built);
    free (padded);
    const char *not_chains [] = {
        "\n", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    };
    for (size_t i = 0; i < sizeof not_chains / sizeof not_chains [0]; i++) {
        built = s_assemble (data, 48 + 584, umb_tdx_quote_signature (quote),
                            umb_tdx_quote_attestation_key (quote), umb_tdx_quote_qe_report (quote),
                            umb_tdx_quote_qe_report_signature (quote), auth, auth_size,
                            not_chains [i], strlen (not_chains [i]), &built_size);
        bad = umb_tdx_quote_parse (built, built_size, reason, sizeof reason);
        assert (bad);
        assert (umb_tdx_verify (bad, NULL, S_FIXED_TIME, reason, sizeof reason) == -1);
        assert (!umb_tdx_quote_pck (bad));
        json_t *dump = umb_tdx_quote_to_json (bad);
        assert (dump && json_array_size (json_object_get (dump, "pck_chain")) == 0);
        json_decref (dump);
        umb_tdx_quote_destroy (&bad);
        free (built);
    }
    //  The chain with junk around it, a block that does not parse, or no intermediate
    size_t chain_size = strlen (chain);
    char *variant = (char *) malloc (chain_size + 64);
    assert (variant);
    X509 *pck = umb_tdx_quote_pck (quote);
    assert (pck);
    snprintf (variant, chain_size + 64, "junk\n%s", chain);
    s_assert_reason (umb_tdx_verify_chain (pck, variant, S_FIXED_TIME, reason, sizeof reason), reason, "before");
    snprintf (variant, chain_size + 64, "%sjunk\n", chain);
    s_assert_reason (umb_tdx_verify_chain (pck, variant, S_FIXED_TIME, reason, sizeof reason), reason, "after");
    memcpy (variant, chain, chain_size + 1);
    char *second = strstr (variant + 1, "-----BEGIN CERTIFICATE-----");
    assert (second);
    second [40] = '*';          //  a character base64 does not have
    s_assert_reason (umb_tdx_verify_chain (pck, variant, S_FIXED_TIME, reason, sizeof reason), reason, "does not parse");
    memcpy (variant, chain, chain_size + 1);
    second = strstr (variant + 1, "-----BEGIN CERTIFICATE-----");
    char *third = strstr (second + 1, "-----BEGIN CERTIFICATE-----");
    memmove (second, third, strlen (third) + 1);
    s_assert_reason (umb_tdx_verify_chain (pck, variant, S_FIXED_TIME, reason, sizeof reason), reason,
                     "no PCK Platform/Processor CA");
    s_assert_reason (umb_tdx_verify (quote, variant, S_FIXED_TIME, reason, sizeof reason), reason,
                     "no PCK Platform/Processor CA");
    //  The intermediate or the root as the PCK
    memcpy (variant, chain, chain_size + 1);
    second = strstr (variant + 1, "-----BEGIN CERTIFICATE-----");
    s_assert_reason (umb_tdx_verify (quote, second, S_FIXED_TIME, reason, sizeof reason), reason, "CA certificate");
    third = strstr (second + 1, "-----BEGIN CERTIFICATE-----");
    s_assert_reason (umb_tdx_verify (quote, third, S_FIXED_TIME, reason, sizeof reason), reason, "CA certificate");

    //  A corrupted PCK: a flipped byte in its signature, in its key, in its name
    uint8_t *der = NULL;
    int der_size = i2d_X509 (pck, &der);
    assert (der_size > 0);
    const int offsets [] = { der_size - 1, der_size - 20, der_size / 2, 30 };
    for (size_t i = 0; i < sizeof offsets / sizeof offsets [0]; i++) {
        der [offsets [i]] ^= 0x01;
        const uint8_t *cursor = der;
        X509 *corrupt = d2i_X509 (NULL, &cursor, der_size);
        ERR_clear_error ();
        if (corrupt) {
            BIO *bio = BIO_new (BIO_s_mem ());
            PEM_write_bio_X509 (bio, corrupt);
            BIO_puts (bio, strstr (chain + 1, "-----BEGIN CERTIFICATE-----"));
            BIO_write (bio, "", 1);
            char *pem = NULL;
            BIO_get_mem_data (bio, &pem);
            assert (umb_tdx_verify_chain (corrupt, pem, S_FIXED_TIME, reason, sizeof reason) == -1);
            assert (umb_tdx_verify (quote, pem, S_FIXED_TIME, reason, sizeof reason) == -1);
            BIO_free (bio);
            X509_free (corrupt);
        }
        der [offsets [i]] ^= 0x01;
    }
    OPENSSL_free (der);

    //  Another quote's chain: its PCK did not sign this QE report
    size_t other_size;
    uint8_t *other = s_load ("tdx/trustee/td-quote.bin", &other_size);
    umb_tdx_quote_t *other_quote = umb_tdx_quote_parse (other, other_size, reason, sizeof reason);
    assert (other_quote);
    s_assert_reason (umb_tdx_verify (quote, umb_tdx_quote_pck_chain (other_quote), S_FIXED_TIME,
                                     reason, sizeof reason), reason, "QE report signature");
    umb_tdx_quote_destroy (&other_quote);
    free (other);

    //  Certificates that are not PCKs at all (the SEV-SNP vectors, valid and invalid)
    const char *strangers [] = {
        "sev-snp/trustee/test-vcek.der", "sev-snp/trustee/test-vcek-invalid-legacy.der",
        "sev-snp/trustee/test-vcek-invalid-new.der", "sev-snp/trustee/test-vlek.der"
    };
    for (size_t i = 0; i < sizeof strangers / sizeof strangers [0]; i++) {
        size_t stranger_size;
        uint8_t *stranger_der = s_load (strangers [i], &stranger_size);
        const uint8_t *cursor = stranger_der;
        X509 *stranger = d2i_X509 (NULL, &cursor, (long) stranger_size);
        ERR_clear_error ();
        if (stranger) {
            assert (umb_tdx_verify_chain (stranger, chain, S_FIXED_TIME, reason, sizeof reason) == -1);
            assert (umb_tdx_verify_qe_report (quote, stranger, reason, sizeof reason) == -1);
            X509_free (stranger);
        }
        free (stranger_der);
    }
    X509_free (pck);
    free (variant);
    umb_tdx_quote_destroy (&quote);
    free (data);
}

#define S_CRL_TIME 1687219200         //  2023-06-20, inside pckcrl's and rootcrl.der's validity

static void
s_test_crl (bool verbose)
{
    char reason [256] = "";
    size_t size, pck_crl_size, root_crl_size;
    uint8_t *data = s_load ("tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat", &size);
    uint8_t *pck_crl = s_load ("tdx/go-tdx-guest/pckcrl", &pck_crl_size);
    uint8_t *root_crl = s_load ("tdx/go-tdx-guest/rootcrl.der", &root_crl_size);
    umb_tdx_quote_t *quote = umb_tdx_quote_parse (data, size, reason, sizeof reason);
    assert (quote);
    const char *chain = umb_tdx_quote_pck_chain (quote);
    X509 *pck = umb_tdx_quote_pck (quote);
    X509 *ca = umb_x509_from_pem (strstr (chain + 1, "-----BEGIN CERTIFICATE-----"));
    assert (pck && ca);
    int rc = umb_tdx_check_crl (pck, chain, pck_crl, pck_crl_size, S_CRL_TIME, reason, sizeof reason)
          || umb_tdx_check_crl (ca, chain, root_crl, root_crl_size, S_CRL_TIME, reason, sizeof reason)
          || umb_tdx_check_crl (ca, NULL, root_crl, root_crl_size, S_CRL_TIME, reason, sizeof reason);
    if (rc)
        fprintf (stderr, "umb_tdx: CRL: %s\n", reason);
    assert (rc == 0);
    s_assert_reason (umb_tdx_check_crl (pck, chain, pck_crl, pck_crl_size, S_FIXED_TIME, reason, sizeof reason),
                     reason, "stale");
    s_assert_reason (umb_tdx_check_crl (pck, chain, pck_crl, pck_crl_size, S_CRL_TIME - 30 * 86400,
                                        reason, sizeof reason), reason, "not yet valid");
    s_assert_reason (umb_tdx_check_crl (ca, chain, pck_crl, pck_crl_size, S_CRL_TIME, reason, sizeof reason),
                     reason, "not from the certificate's issuer");
    s_assert_reason (umb_tdx_check_crl (pck, NULL, pck_crl, pck_crl_size, S_CRL_TIME, reason, sizeof reason),
                     reason, "issuer is not in the chain");
    s_assert_reason (umb_tdx_check_crl (pck, chain, NULL, 0, S_CRL_TIME, reason, sizeof reason), reason, "no CRL");
    s_assert_reason (umb_tdx_check_crl (NULL, chain, pck_crl, pck_crl_size, S_CRL_TIME, reason, sizeof reason),
                     reason, "no certificate");
    s_assert_reason (umb_tdx_check_crl (pck, chain, (const uint8_t *) "junk", 4, S_CRL_TIME, reason, sizeof reason),
                     reason, "does not parse");
    //  Any flipped byte of the CRL: refused
    for (size_t i = 0; i < pck_crl_size; i++) {
        pck_crl [i] ^= (uint8_t) (1 << (i % 8));
        assert (umb_tdx_check_crl (pck, chain, pck_crl, pck_crl_size, S_CRL_TIME, reason, sizeof reason) == -1);
        pck_crl [i] ^= (uint8_t) (1 << (i % 8));
    }
    X509_free (pck);
    X509_free (ca);
    umb_tdx_quote_destroy (&quote);
    free (data);
    free (pck_crl);
    free (root_crl);
    if (verbose)
        printf (" * tdx: PCK and root CRLs checked\n");
}

//  A test PKI shaped like Intel's, for v5 quotes and rogue roots
static X509 *
s_make_cert (const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool ca,
             long from, long until, const EVP_MD *md)
{
    X509 *cert = X509_new ();
    assert (cert);
    X509_set_version (cert, 2);
    ASN1_INTEGER_set (X509_get_serialNumber (cert), (long) (random () & 0xFFFFFF));
    X509_NAME *name = X509_get_subject_name (cert);
    X509_NAME_add_entry_by_txt (name, "C", MBSTRING_ASC, (const uint8_t *) "US", -1, -1, 0);
    X509_NAME_add_entry_by_txt (name, "ST", MBSTRING_ASC, (const uint8_t *) "CA", -1, -1, 0);
    X509_NAME_add_entry_by_txt (name, "L", MBSTRING_ASC, (const uint8_t *) "Santa Clara", -1, -1, 0);
    X509_NAME_add_entry_by_txt (name, "O", MBSTRING_ASC, (const uint8_t *) "Intel Corporation", -1, -1, 0);
    X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_ASC, (const uint8_t *) cn, -1, -1, 0);
    X509_set_issuer_name (cert, issuer? X509_get_subject_name (issuer): name);
    X509_gmtime_adj (X509_getm_notBefore (cert), from);
    X509_gmtime_adj (X509_getm_notAfter (cert), until);
    X509_set_pubkey (cert, key);
    X509_EXTENSION *extension = X509V3_EXT_conf_nid (NULL, NULL, NID_basic_constraints,
                                                     ca? "critical,CA:TRUE": "critical,CA:FALSE");
    assert (extension);
    X509_add_ext (cert, extension, -1);
    X509_EXTENSION_free (extension);
    assert (X509_sign (cert, issuer_key, md) > 0);
    return cert;
}

static void
s_raw_public (EVP_PKEY *key, uint8_t *xy)
{
    BIGNUM *x = NULL, *y = NULL;
    assert (EVP_PKEY_get_bn_param (key, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1);
    assert (EVP_PKEY_get_bn_param (key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1);
    assert (BN_bn2binpad (x, xy, 32) == 32 && BN_bn2binpad (y, xy + 32, 32) == 32);
    BN_free (x);
    BN_free (y);
}

static void
s_sign_raw (EVP_PKEY *key, const uint8_t *message, size_t size, uint8_t *rs)
{
    uint8_t der [80];
    size_t der_size = sizeof der;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    assert (ctx && EVP_DigestSignInit (ctx, NULL, EVP_sha256 (), NULL, key) == 1);
    assert (EVP_DigestSign (ctx, der, &der_size, message, size) == 1);
    EVP_MD_CTX_free (ctx);
    const uint8_t *cursor = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG (NULL, &cursor, (long) der_size);
    assert (sig);
    assert (BN_bn2binpad (ECDSA_SIG_get0_r (sig), rs, 32) == 32);
    assert (BN_bn2binpad (ECDSA_SIG_get0_s (sig), rs + 32, 32) == 32);
    ECDSA_SIG_free (sig);
}

static char *
s_pem_of (X509 **certs, size_t count)
{
    BIO *bio = BIO_new (BIO_s_mem ());
    for (size_t i = 0; i < count; i++)
        PEM_write_bio_X509 (bio, certs [i]);
    char *text = NULL;
    long size = BIO_get_mem_data (bio, &text);
    char *copy = (char *) malloc ((size_t) size + 1);
    assert (copy);
    memcpy (copy, text, (size_t) size);
    copy [size] = 0;
    BIO_free (bio);
    return copy;
}

//  A v5 quote with the given body type, signed by the test PKI
static uint8_t *
s_synthetic_quote (uint16_t body_type, EVP_PKEY *pck_key, const char *chain, int qe_tweak, size_t *size)
{
    size_t body_size = body_type == UMB_TDX_BODY_TYPE_TD15? UMB_TDX_BODY_15_SIZE: UMB_TDX_BODY_10_SIZE;
    size_t signed_size = UMB_TDX_HEADER_SIZE + S_V5_DESCRIPTOR + body_size;
    uint8_t signed_part [UMB_TDX_HEADER_SIZE + S_V5_DESCRIPTOR + UMB_TDX_BODY_15_SIZE];
    for (size_t i = 0; i < sizeof signed_part; i++)
        signed_part [i] = (uint8_t) (i * 7 + body_type);
    signed_part [0] = 5;
    signed_part [1] = 0;
    signed_part [2] = UMB_TDX_ATT_KEY_ECDSA_P256;
    signed_part [3] = 0;
    signed_part [4] = UMB_TDX_TEE_TYPE_TDX;
    signed_part [5] = signed_part [6] = signed_part [7] = 0;
    signed_part [48] = (uint8_t) body_type;
    signed_part [49] = 0;
    signed_part [50] = (uint8_t) body_size;
    signed_part [51] = (uint8_t) (body_size >> 8);
    signed_part [52] = signed_part [53] = 0;
    signed_part [54 + S_B_TD_ATTRIBUTES] &= (uint8_t) ~1;     //  not a debug TD

    EVP_PKEY *attestation = EVP_EC_gen ("P-256");
    assert (attestation);
    uint8_t key [64], signature [64], qe_report [UMB_TDX_QE_REPORT_SIZE], qe_signature [64], auth [32];
    s_raw_public (attestation, key);
    s_sign_raw (attestation, signed_part, signed_size, signature);
    EVP_PKEY_free (attestation);
    for (size_t i = 0; i < sizeof auth; i++)
        auth [i] = (uint8_t) (0xA0 + i);
    memset (qe_report, 0, sizeof qe_report);
    memcpy (qe_report + S_R_MR_SIGNER, s_td_qe_mr_signer, 32);
    qe_report [S_R_ISV_PROD_ID] = S_TD_QE_ISV_PROD_ID;
    qe_report [S_R_ATTRIBUTES] = 0x15;
    memset (qe_report + S_R_MR_ENCLAVE, 0x5A, 32);
    if (qe_tweak >= 0)
        qe_report [qe_tweak] ^= 0x02;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    unsigned int digest_size = 0;
    assert (ctx && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) == 1
         && EVP_DigestUpdate (ctx, key, 64) == 1 && EVP_DigestUpdate (ctx, auth, sizeof auth) == 1
         && EVP_DigestFinal_ex (ctx, qe_report + S_R_REPORT_DATA, &digest_size) == 1);
    EVP_MD_CTX_free (ctx);
    memset (qe_report + S_R_REPORT_DATA + 32, 0, 32);
    s_sign_raw (pck_key, qe_report, sizeof qe_report, qe_signature);
    return s_assemble (signed_part, signed_size, signature, key, qe_report, qe_signature,
                       auth, sizeof auth, chain, strlen (chain) + 1, size);
}

static void
s_test_synthetic (bool verbose)
{
    char reason [256] = "";
    EVP_PKEY *root_key = EVP_EC_gen ("P-256");
    EVP_PKEY *ca_key = EVP_EC_gen ("P-256");
    EVP_PKEY *pck_key = EVP_EC_gen ("P-256");
    assert (root_key && ca_key && pck_key);
    const long day = 86400;
    X509 *root = s_make_cert ("Intel SGX Root CA", root_key, NULL, root_key, true, -day, 30 * day, EVP_sha256 ());
    X509 *ca = s_make_cert ("Intel SGX PCK Platform CA", ca_key, root, root_key, true, -day, 20 * day, EVP_sha256 ());
    X509 *pck = s_make_cert ("Intel SGX PCK Certificate", pck_key, ca, ca_key, false, -day, 10 * day, EVP_sha256 ());
    X509 *full [] = { pck, ca, root };
    char *chain = s_pem_of (full, 3);
    int64_t now = (int64_t) time (NULL);

    const uint16_t types [] = { UMB_TDX_BODY_TYPE_TD15, UMB_TDX_BODY_TYPE_TD10 };
    for (size_t t = 0; t < 2; t++) {
        size_t size;
        uint8_t *data = s_synthetic_quote (types [t], pck_key, chain, -1, &size);
        umb_tdx_quote_t *quote = umb_tdx_quote_parse (data, size, reason, sizeof reason);
        if (!quote)
            fprintf (stderr, "umb_tdx: synthetic v5: %s\n", reason);
        assert (quote);
        assert (umb_tdx_quote_version (quote) == 5);
        assert (umb_tdx_quote_body_type (quote) == types [t]);
        size_t body = UMB_TDX_HEADER_SIZE + S_V5_DESCRIPTOR;
        assert (umb_tdx_quote_mr_td (quote) == umb_tdx_quote_signed (quote, NULL) + body + S_B_MR_TD);
        assert (memcmp (umb_tdx_quote_report_data (quote), data + body + S_B_REPORT_DATA, 64) == 0);
        if (types [t] == UMB_TDX_BODY_TYPE_TD15) {
            assert (memcmp (umb_tdx_quote_tee_tcb_svn2 (quote), data + body + 584, 16) == 0);
            assert (memcmp (umb_tdx_quote_mr_service_td (quote), data + body + 600, 48) == 0);
            json_t *dump = umb_tdx_quote_to_json (quote);
            assert (json_object_get (json_object_get (dump, "body"), "mr_service_td"));
            json_decref (dump);
        }
        else
            assert (!umb_tdx_quote_tee_tcb_svn2 (quote) && !umb_tdx_quote_mr_service_td (quote));
        size_t signed_size = 0;
        umb_tdx_quote_signed (quote, &signed_size);
        assert (signed_size == body + (types [t] == UMB_TDX_BODY_TYPE_TD15? 648: 584));
        //  It verifies under the test root, and never under Intel's
        int rc = s_verify (quote, NULL, root, 0, reason, sizeof reason);
        if (rc)
            fprintf (stderr, "umb_tdx: synthetic v5: %s\n", reason);
        assert (rc == 0);
        s_assert_reason (umb_tdx_verify (quote, NULL, 0, reason, sizeof reason), reason,
                         "not the built-in Intel SGX Root CA");
        //  Without the root in the chain, the built-in root is the issuer
        X509 *two [] = { pck, ca };
        char *short_chain = s_pem_of (two, 2);
        assert (s_verify (quote, short_chain, root, 0, reason, sizeof reason) == 0);
        s_assert_reason (umb_tdx_verify (quote, short_chain, 0, reason, sizeof reason), reason,
                         "PCK Platform/Processor CA issuer name does not match");
        free (short_chain);
        //  Time
        s_assert_reason (s_verify (quote, NULL, root, now + 15 * day, reason, sizeof reason), reason,
                         "PCK certificate has expired");
        s_assert_reason (s_verify (quote, NULL, root, now + 25 * day, reason, sizeof reason), reason,
                         "PCK Platform/Processor CA has expired");
        s_assert_reason (s_verify (quote, NULL, root, now + 40 * day, reason, sizeof reason), reason,
                         "Intel SGX Root CA has expired");
        s_assert_reason (s_verify (quote, NULL, root, now - 2 * day, reason, sizeof reason), reason,
                         "not yet valid");
        //  Every byte of the signed region (v5 descriptor included) and of
        //  the signature data before the chain
        size_t chain_start = quote->qe_cert + S_Q_AUTH_DATA + quote->qe_auth_size + 6;
        for (size_t i = 0; i < chain_start; i++) {
            data [i] ^= (uint8_t) (1 << (i % 8));
            umb_tdx_quote_t *copy = umb_tdx_quote_parse (data, size, reason, sizeof reason);
            if (copy) {
                assert (s_verify (copy, NULL, root, 0, reason, sizeof reason) == -1);
                umb_tdx_quote_destroy (&copy);
            }
            data [i] ^= (uint8_t) (1 << (i % 8));
        }
        //  A body size that does not match the type, an unknown body type
        data [50] ^= 0x40;
        assert (!umb_tdx_quote_parse (data, size, reason, sizeof reason));
        s_assert_reason (-1, reason, "body size");
        data [50] ^= 0x40;
        data [48] = 1;
        assert (!umb_tdx_quote_parse (data, size, reason, sizeof reason));
        s_assert_reason (-1, reason, "body type");
        data [48] = (uint8_t) types [t];
        for (size_t cut = 0; cut < size - strlen (chain); cut++)
            assert (!umb_tdx_quote_parse (data, cut, reason, sizeof reason));
        umb_tdx_quote_destroy (&quote);
        free (data);
    }
    //  A QE report signed by the PCK but not from the TD QE: another signer,
    //  product, MISCSELECT, a debug enclave
    struct { int offset; const char *why; } tweaks [] = {
        { S_R_MR_SIGNER + 31, "MRSIGNER" }, { S_R_ISV_PROD_ID, "ISVPRODID" },
        { S_R_MISC_SELECT, "MISCSELECT" }, { S_R_ATTRIBUTES, "debug" }, { S_R_ATTRIBUTES + 7, "attributes" }
    };
    for (size_t i = 0; i < sizeof tweaks / sizeof tweaks [0]; i++) {
        size_t size;
        uint8_t *data = s_synthetic_quote (UMB_TDX_BODY_TYPE_TD15, pck_key, chain, tweaks [i].offset, &size);
        umb_tdx_quote_t *quote = umb_tdx_quote_parse (data, size, reason, sizeof reason);
        assert (quote);
        s_assert_reason (s_verify (quote, NULL, root, 0, reason, sizeof reason), reason, tweaks [i].why);
        umb_tdx_quote_destroy (&quote);
        free (data);
    }
    //  Attributes outside the mask (bit 2 of byte 0, bytes 8..15) are free
    const int free_bits [] = { S_R_ATTRIBUTES + 8, S_R_ATTRIBUTES + 15, S_R_MR_ENCLAVE };
    for (size_t i = 0; i < sizeof free_bits / sizeof free_bits [0]; i++) {
        size_t size;
        uint8_t *data = s_synthetic_quote (UMB_TDX_BODY_TYPE_TD10, pck_key, chain, free_bits [i], &size);
        umb_tdx_quote_t *quote = umb_tdx_quote_parse (data, size, reason, sizeof reason);
        assert (quote);
        assert (s_verify (quote, NULL, root, 0, reason, sizeof reason) == 0);
        umb_tdx_quote_destroy (&quote);
        free (data);
    }
    //  Rogue shapes, each refused under the test root
    X509 *ca_as_pck = s_make_cert ("Intel SGX PCK Certificate", pck_key, ca, ca_key, true, -day, 10 * day, EVP_sha256 ());
    X509 *leaf_ca = s_make_cert ("Intel SGX PCK Platform CA", ca_key, root, root_key, false, -day, 20 * day, EVP_sha256 ());
    X509 *pck_384 = s_make_cert ("Intel SGX PCK Certificate", pck_key, ca, ca_key, false, -day, 10 * day, EVP_sha384 ());
    X509 *odd_name = s_make_cert ("Some PCK", pck_key, ca, ca_key, false, -day, 10 * day, EVP_sha256 ());
    X509 *odd_ca = s_make_cert ("Some CA", ca_key, root, root_key, true, -day, 20 * day, EVP_sha256 ());
    X509 *odd_pck = s_make_cert ("Intel SGX PCK Certificate", pck_key, odd_ca, ca_key, false, -day, 10 * day, EVP_sha256 ());
    struct { X509 *pck; X509 *ca; const char *why; } rogues [] = {
        { ca_as_pck, ca, "CA certificate" },
        { pck, leaf_ca, "not a CA" },
        { pck_384, ca, "SHA-256" },
        { odd_name, ca, "not named" },
        { odd_pck, odd_ca, "not an Intel SGX PCK Platform/Processor CA" },
    };
    for (size_t i = 0; i < sizeof rogues / sizeof rogues [0]; i++) {
        X509 *certs [] = { rogues [i].pck, rogues [i].ca, root };
        char *pem = s_pem_of (certs, 3);
        s_assert_reason (s_verify_chain (rogues [i].pck, pem, root, 0, reason, sizeof reason), reason, rogues [i].why);
        free (pem);
    }
    //  A PCK issued by a rogue CA that claims the Intel root
    size_t size;
    char *intel = (char *) s_load ("tdx/go-tdx-guest/trusted_root.pem", &size);
    X509 *intel_root = umb_x509_from_pem (intel);
    assert (intel_root);
    X509 *mimic_ca = s_make_cert ("Intel SGX PCK Platform CA", ca_key, intel_root, root_key, true, -day, 20 * day, EVP_sha256 ());
    X509 *mimic_pck = s_make_cert ("Intel SGX PCK Certificate", pck_key, mimic_ca, ca_key, false, -day, 10 * day, EVP_sha256 ());
    X509 *mimic [] = { mimic_pck, mimic_ca, intel_root };
    char *pem = s_pem_of (mimic, 3);
    s_assert_reason (umb_tdx_verify_chain (mimic_pck, pem, 0, reason, sizeof reason), reason,
                     "PCK Platform/Processor CA signature does not verify");
    free (pem);
    //  Revocation: a CRL from the test CA that lists the PCK, and one that does not
    for (int listed = 0; listed < 2; listed++) {
        X509_CRL *crl = X509_CRL_new ();
        assert (crl);
        X509_CRL_set_version (crl, 1);
        X509_CRL_set_issuer_name (crl, X509_get_subject_name (ca));
        ASN1_TIME *from = X509_gmtime_adj (NULL, -day);
        ASN1_TIME *until = X509_gmtime_adj (NULL, day);
        X509_CRL_set1_lastUpdate (crl, from);
        X509_CRL_set1_nextUpdate (crl, until);
        X509_REVOKED *entry = X509_REVOKED_new ();
        ASN1_INTEGER *serial = ASN1_INTEGER_dup (X509_get0_serialNumber (pck));
        if (!listed)
            ASN1_INTEGER_set (serial, 0x7FFFFFFF);
        X509_REVOKED_set_serialNumber (entry, serial);
        X509_REVOKED_set_revocationDate (entry, from);
        X509_CRL_add0_revoked (crl, entry);
        X509_CRL_sort (crl);
        assert (X509_CRL_sign (crl, ca_key, EVP_sha256 ()) > 0);
        uint8_t *der = NULL;
        int der_size = i2d_X509_CRL (crl, &der);
        assert (der_size > 0);
        int rc = umb_tdx_check_crl (pck, chain, der, (size_t) der_size, 0, reason, sizeof reason);
        if (listed)
            s_assert_reason (rc, reason, "revoked");
        else
            assert (rc == 0);
        //  Signed by the wrong key
        assert (X509_CRL_sign (crl, root_key, EVP_sha256 ()) > 0);
        OPENSSL_free (der);
        der = NULL;
        der_size = i2d_X509_CRL (crl, &der);
        s_assert_reason (umb_tdx_check_crl (pck, chain, der, (size_t) der_size, 0, reason, sizeof reason),
                         reason, "signature does not verify");
        OPENSSL_free (der);
        ASN1_INTEGER_free (serial);
        ASN1_TIME_free (from);
        ASN1_TIME_free (until);
        X509_CRL_free (crl);
    }
    //  The built-in root is byte for byte the published one
    X509 *builtin = umb_x509_from_pem (s_intel_sgx_root);
    assert (builtin && umb_x509_same (builtin, intel_root));
    uint8_t digest [32];
    unsigned int digest_size = 0;
    uint8_t want [32];
    s_unhex ("44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3", want, 32);
    assert (X509_digest (builtin, EVP_sha256 (), digest, &digest_size) == 1 && memcmp (digest, want, 32) == 0);
    X509_free (builtin);
    X509_free (mimic_ca);
    X509_free (mimic_pck);
    X509_free (intel_root);
    free (intel);
    X509_free (ca_as_pck);
    X509_free (leaf_ca);
    X509_free (pck_384);
    X509_free (odd_name);
    X509_free (odd_ca);
    X509_free (odd_pck);
    X509_free (root);
    X509_free (ca);
    X509_free (pck);
    EVP_PKEY_free (root_key);
    EVP_PKEY_free (ca_key);
    EVP_PKEY_free (pck_key);
    free (chain);
    if (verbose)
        printf (" * tdx: synthetic v5 quotes (TD 1.0, TD 1.5) verified under a test root, refused under Intel's\n");
}

void
umb_tdx_test (bool verbose)
{
    printf (" * umb_tdx: ");
    if (verbose)
        printf ("\n");
    char path [512];
    snprintf (path, sizeof path, "%s/tdx/EXPECTED_TDX.json", UMB_VECTORS_DIR);
    json_error_t error;
    json_t *expected = json_load_file (path, 0, &error);
    if (!expected)
        fprintf (stderr, "umb_tdx: %s: %s\n", path, error.text);
    assert (json_is_array (expected) && json_array_size (expected) == 3);
    for (size_t i = 0; i < json_array_size (expected); i++) {
        s_test_vector (json_array_get (expected, i), verbose);
        s_test_policy (json_array_get (expected, i));
    }
    json_decref (expected);
    s_test_malformed ();
    s_test_crl (verbose);
    s_test_synthetic (verbose);
    printf ("OK\n");
}
