//  umb_policy - attestation policy: what a genuine TEE report must also say
//  to be accepted (pinned measurements, no debug, minimum TCB, ...)
//
//  A policy is a JSON file (docs/attestation-policy.md):
//
//      { "snp": { "measurements": ["<96 hex>", ...], "allow_debug": false,
//                 "min_tcb": { "bootloader": 3, "tee": 0, "snp": 8, "microcode": 115 },
//                 "max_vmpl": 0, "product": ["Milan", "Genoa"], "min_guest_svn": 1, ... },
//        "tdx": { ... fields of umb_tdx_policy_t ... } }
//
//  Loading fails closed: an unknown key (at any level), a value of the
//  wrong type or a hex value of the wrong length refuses the whole file, so
//  a typo never silently weakens a policy. A key given with an empty list
//  ("measurements": []) allows nothing: every report is refused by it.
//  Absent keys leave that property unconstrained, except debug: a report of
//  a guest that allows debugging is refused unless "allow_debug": true.
#ifndef UMB_POLICY_H_INCLUDED
#define UMB_POLICY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>
#include "umb_snp.h"
#include "umb_tdx.h"

#define UMB_POLICY_MAX_VALUES       64      //  per list (measurements, products)

//  SNP guest policy bits (SEV-SNP ABI, GUEST_POLICY)
#define UMB_SNP_POLICY_SMT              (1ULL << 16)
#define UMB_SNP_POLICY_MIGRATE_MA       (1ULL << 18)
#define UMB_SNP_POLICY_DEBUG            (1ULL << 19)
#define UMB_SNP_POLICY_SINGLE_SOCKET    (1ULL << 20)
#define UMB_SNP_POLICY_CXL_ALLOW        (1ULL << 21)
#define UMB_SNP_POLICY_MEM_AES_256_XTS  (1ULL << 22)
#define UMB_SNP_POLICY_RAPL_DIS         (1ULL << 23)
#define UMB_SNP_POLICY_CIPHERTEXT_HIDING (1ULL << 24)
#define UMB_SNP_POLICY_PAGE_SWAP_DISABLE (1ULL << 25)

//  Products, as a bit set
#define UMB_SNP_PRODUCT_MILAN   (1u << 0)
#define UMB_SNP_PRODUCT_GENOA   (1u << 1)
#define UMB_SNP_PRODUCT_TURIN   (1u << 2)

//  The SNP part. A count of -1 (or a *_set false) means the key was absent:
//  unconstrained. A count of 0 means the key was an empty list: nothing
//  passes. TCB minimums of -1 are unconstrained.
typedef struct {
    int      measurement_count;
    uint8_t  measurements [UMB_POLICY_MAX_VALUES][48];
    bool     allow_debug;                   //  false: GUEST_POLICY.DEBUG refused
    uint64_t policy_must_clear;             //  bits that must be 0 (DEBUG unless allow_debug)
    uint64_t policy_must_set;               //  bits that must be 1
    int      min_bootloader, min_tee, min_snp, min_microcode, min_fmc;
    int      vmpl;                          //  exact VMPL, -1 unconstrained
    int      max_vmpl;                      //  -1 unconstrained
    bool     report_data_set;
    uint8_t  report_data [64];
    bool     host_data_set;
    uint8_t  host_data [32];
    int      product_count;                 //  -1 unconstrained
    unsigned products;                      //  UMB_SNP_PRODUCT_* bits
    bool     family_id_set;
    uint8_t  family_id [16];
    bool     image_id_set;
    uint8_t  image_id [16];
    int64_t  min_guest_svn;                 //  -1 unconstrained
} umb_snp_policy_t;

typedef struct _umb_policy_t umb_policy_t;

//  The defaults: debug refused, nothing else constrained (no measurement pinned).
umb_policy_t *
    umb_policy_new (void);

//  Loads a policy file; NULL with the reason if it cannot be read or is not
//  a valid policy (see above).
umb_policy_t *
    umb_policy_load (const char *path, char *reason, size_t reason_size);

//  The same from JSON text.
umb_policy_t *
    umb_policy_parse (const char *json, char *reason, size_t reason_size);

//  Idempotent; sets *self_p to NULL.
void
    umb_policy_destroy (umb_policy_t **self_p);

//  Borrowed views of the two parts.
const umb_snp_policy_t *
    umb_policy_snp (const umb_policy_t *self);
const umb_tdx_policy_t *
    umb_policy_tdx (const umb_policy_t *self);

//  True when the policy pins the launch measurement of that platform
//  ("snp": measurements; "tdx": MRTD), so callers can warn loudly when not.
bool
    umb_policy_pins_measurement (const umb_policy_t *self, const char *platform);

//  Checks an SNP report (already verified genuine) against the policy. vcek
//  (optional) names the product; without it the report's CPUID is used.
//  0 when every constraint holds, -1 with the first one that does not.
int
    umb_policy_check_snp (const umb_policy_t *self, umb_snp_report_t *report, X509 *vcek,
                          char *reason, size_t reason_size)
    __attribute__ ((warn_unused_result));

//  The product of a report: from the VCEK/VLEK issuer (SEV-Milan, SEV-VLEK-Genoa,
//  ...) when given, else from the report's CPUID (version 3+). One of
//  UMB_SNP_PRODUCT_*, or 0 when unknown.
unsigned
    umb_policy_snp_product (umb_snp_report_t *report, X509 *vcek);

//  "Milan", "Genoa", "Turin" or "unknown".
const char *
    umb_policy_product_name (unsigned product);

//  Checks a TDX quote (already verified genuine). With a "tdx" part in the
//  policy this is umb_tdx_check_policy (which requires an MRTD list); with
//  none (the defaults) only TD attribute DEBUG is refused.
int
    umb_policy_check_tdx (const umb_policy_t *self, umb_tdx_quote_t *quote,
                          char *reason, size_t reason_size)
    __attribute__ ((warn_unused_result));

//  Selftest
void
    umb_policy_test (bool verbose);

#endif
