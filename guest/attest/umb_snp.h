//  umb_snp - AMD SEV-SNP attestation reports: parser, report signature,
//  VCEK/VLEK -> ASK/ASVK -> ARK chain and TCB/chip binding checks
//
//  A report is 1184 bytes (SEV-SNP ABI, table "ATTESTATION_REPORT"); versions
//  2, 3 and 5 are accepted. The signature (ECDSA P-384 over SHA-384 of bytes
//  0..0x29F, r and s little-endian, 72 bytes each) sits at 0x2A0.
//
//  Every check returns 0 when it passes and -1 otherwise, with a short,
//  human-readable reason written to reason (when not NULL). The checks are
//  independent; a verifier must run all three:
//
//      umb_snp_report_t *report = umb_snp_report_parse (data, size, reason, sizeof reason);
//      if (!report
//      ||  umb_snp_verify_chain (vcek, ask_ark_pem, 0, reason, sizeof reason)
//      ||  umb_snp_verify_signature (report, vcek, reason, sizeof reason)
//      ||  umb_snp_check_tcb (report, vcek, reason, sizeof reason))
//          refuse (reason);
//      ...
//      umb_snp_report_destroy (&report);
#ifndef UMB_SNP_H_INCLUDED
#define UMB_SNP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#define UMB_SNP_REPORT_SIZE        1184
#define UMB_SNP_SIGNED_SIZE        0x2A0
#define UMB_SNP_SIG_COMPONENT_SIZE 72
#define UMB_SNP_SIG_ALGO_ECDSA_P384_SHA384 1

//  The key that signed a report (signer_info bits 2..4)
#define UMB_SNP_SIGNING_KEY_VCEK   0
#define UMB_SNP_SIGNING_KEY_VLEK   1
#define UMB_SNP_SIGNING_KEY_NONE   7

typedef struct _umb_snp_report_t umb_snp_report_t;

//  Parses a report; NULL (and the reason) if it is not exactly 1184 bytes, has
//  an unknown version or signature algorithm, or a reserved field that must
//  be zero is not. The data is copied.
umb_snp_report_t *
    umb_snp_report_parse (const uint8_t *data, size_t size, char *reason, size_t reason_size);

//  Idempotent; sets *self_p to NULL.
void
    umb_snp_report_destroy (umb_snp_report_t **self_p);

uint32_t umb_snp_report_version (umb_snp_report_t *self);
uint32_t umb_snp_report_guest_svn (umb_snp_report_t *self);
uint64_t umb_snp_report_policy (umb_snp_report_t *self);
uint32_t umb_snp_report_vmpl (umb_snp_report_t *self);
uint32_t umb_snp_report_signature_algo (umb_snp_report_t *self);
uint64_t umb_snp_report_current_tcb (umb_snp_report_t *self);
uint64_t umb_snp_report_reported_tcb (umb_snp_report_t *self);
uint64_t umb_snp_report_committed_tcb (umb_snp_report_t *self);
uint64_t umb_snp_report_launch_tcb (umb_snp_report_t *self);
uint64_t umb_snp_report_platform_info (umb_snp_report_t *self);
//  signer_info (0x48) raw, and its decoded bits
uint32_t umb_snp_report_signer_info (umb_snp_report_t *self);
bool     umb_snp_report_author_key_en (umb_snp_report_t *self);
bool     umb_snp_report_mask_chip_id (umb_snp_report_t *self);
//  UMB_SNP_SIGNING_KEY_VCEK, _VLEK or _NONE
int      umb_snp_report_signing_key (umb_snp_report_t *self);
//  CPUID family/model/stepping of the chip; version 3 and later only (false before)
bool     umb_snp_report_cpuid (umb_snp_report_t *self, uint8_t *family, uint8_t *model, uint8_t *stepping);

//  Borrowed views into the report, fixed sizes
const uint8_t *umb_snp_report_family_id (umb_snp_report_t *self);          //  16
const uint8_t *umb_snp_report_image_id (umb_snp_report_t *self);           //  16
const uint8_t *umb_snp_report_report_data (umb_snp_report_t *self);        //  64
const uint8_t *umb_snp_report_measurement (umb_snp_report_t *self);        //  48
const uint8_t *umb_snp_report_host_data (umb_snp_report_t *self);          //  32
const uint8_t *umb_snp_report_id_key_digest (umb_snp_report_t *self);      //  48
const uint8_t *umb_snp_report_author_key_digest (umb_snp_report_t *self);  //  48
const uint8_t *umb_snp_report_report_id (umb_snp_report_t *self);          //  32
const uint8_t *umb_snp_report_report_id_ma (umb_snp_report_t *self);      //  32
const uint8_t *umb_snp_report_chip_id (umb_snp_report_t *self);            //  64
//  Bytes 0..0x29F, the part the signature covers; *size set to UMB_SNP_SIGNED_SIZE
const uint8_t *umb_snp_report_signed (umb_snp_report_t *self, size_t *size);
const uint8_t *umb_snp_report_sig_r (umb_snp_report_t *self);              //  72, little-endian
const uint8_t *umb_snp_report_sig_s (umb_snp_report_t *self);              //  72, little-endian

//  Checks the report's ECDSA P-384/SHA-384 signature with the public key of
//  vcek (a VCEK or VLEK). Says nothing about the certificate itself.
int
    umb_snp_verify_signature (umb_snp_report_t *report, X509 *vcek, char *reason, size_t size)
    __attribute__ ((warn_unused_result));

//  Checks vcek -> ASK (or ASVK for a VLEK) -> ARK. ask_ark_pem holds the
//  intermediate (and may hold ARKs and other intermediates, as AMD KDS
//  bundles do); the ARK must be one of the built-in AMD roots (Milan, Genoa,
//  Turin), byte for byte. Every signature must be RSASSA-PSS with SHA-384;
//  each certificate must be valid at at_time (seconds since the epoch; 0 =
//  now). Serial number 0 is accepted, as AMD KDS issues it.
int
    umb_snp_verify_chain (X509 *vcek, const char *ask_ark_pem, int64_t at_time, char *reason, size_t size)
    __attribute__ ((warn_unused_result));

//  Checks that vcek's AMD extensions (bl/tee/snp/ucode SPL, and FMC SPL for
//  Turin) equal the report's reported_tcb, that a VCEK's hwID equals the
//  report's chip_id, and that the report's signing-key selector names the
//  kind of certificate given (SEV-VCEK or SEV-VLEK).
int
    umb_snp_check_tcb (umb_snp_report_t *report, X509 *vcek, char *reason, size_t size)
    __attribute__ ((warn_unused_result));

//  Selftest
void
    umb_snp_test (bool verbose);

#endif
