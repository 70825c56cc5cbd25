//  umb_verify - the one attestation verifier: is this evidence genuine, does
//  it satisfy the policy, and does it bind the agent key and the nonce?
//
//  Used by `umbra attestation verify`/`get` and by the services. Fails
//  closed: anything it cannot establish is a refusal with a reason.
//
//      umb_verify_opts_t opts = { .platform = UMB_VERIFY_PLATFORM_SNP,
//          .evidence = report, .evidence_size = 1184, .certs = certs, .certs_size = n,
//          .policy = policy, .agent_key = key32, .nonce = nonce, .nonce_size = 32 };
//      umb_verify_result_t *result = NULL;
//      if (umb_verify_evidence (&opts, &result, reason, sizeof reason))
//          refuse (reason);
//
//  SNP: the report is parsed; the VCEK/VLEK is opts.vcek, else the one in
//  opts.certs; the ASK/ARK chain is opts.chain_pem, else the rest of
//  opts.certs (missing either: "missing certificate ..."). The chain must end
//  in a built-in AMD root and be valid at opts.at_time; the report signature,
//  the TCB/chip binding and the policy must hold. opts.certs is PEM (the
//  agent's `certs` field) or the raw SEV-SNP certificate table (GUID table,
//  as configfs-tsm auxblob and SNP_GET_EXT_REPORT return it).
//
//  TDX: the quote is parsed and verified (signature, PCK chain to the Intel
//  SGX root, QE report; opts.chain_pem replaces the quote's chain when
//  given), then the policy (umb_policy_check_tdx).
//
//  none: refused unless opts.insecure_dev; then accepted as "insecure: no
//  TEE". Its evidence is empty or the 64-byte report_data (nothing proves it).
//
//  Binding: with opts.agent_key, the evidence's report_data must equal
//  SHA-512 ("umbra-attest-v1" || agent_key || nonce). opts.report_data (the
//  value an agent claimed beside its evidence), when given, must equal the
//  evidence's too.
#ifndef UMB_VERIFY_H_INCLUDED
#define UMB_VERIFY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "umb_policy.h"

#define UMB_VERIFY_REPORT_DATA_SIZE 64
#define UMB_VERIFY_AGENT_KEY_SIZE   32
#define UMB_VERIFY_CONTEXT          "umbra-attest-v1"

typedef enum {
    UMB_VERIFY_PLATFORM_NONE = 0,
    UMB_VERIFY_PLATFORM_SNP  = 1,
    UMB_VERIFY_PLATFORM_TDX  = 2
} umb_verify_platform_t;

typedef struct {
    umb_verify_platform_t platform;
    const uint8_t *evidence;            //  SNP report, TDX quote, or none's (empty/64 bytes)
    size_t         evidence_size;
    const uint8_t *vcek;                //  SNP: VCEK or VLEK, DER or PEM; optional
    size_t         vcek_size;
    const char    *chain_pem;           //  SNP: ASK/ARK (ASVK/ARK); TDX: PCK chain; optional, NUL-terminated
    const uint8_t *certs;               //  certificates the TEE supplied; optional
    size_t         certs_size;
    const umb_policy_t *policy;         //  NULL: the defaults (umb_policy_new)
    int64_t        at_time;             //  certificate validity time, seconds; 0 = now
    bool           insecure_dev;        //  accept platform none
    const uint8_t *agent_key;           //  32 raw bytes (the CURVE key); NULL = no binding check
    const uint8_t *nonce;               //  required with agent_key
    size_t         nonce_size;
    const uint8_t *report_data;         //  64, the agent's claimed report_data; optional
} umb_verify_opts_t;

typedef struct _umb_verify_result_t umb_verify_result_t;

//  0 and a new *result when the evidence is genuine, within policy and (if
//  asked) bound; -1 and the reason (and *result NULL) otherwise.
int
    umb_verify_evidence (const umb_verify_opts_t *opts, umb_verify_result_t **result,
                         char *reason, size_t reason_size)
    __attribute__ ((warn_unused_result));

//  out = SHA-512 ("umbra-attest-v1" || agent_key || nonce). 0, or -1 if
//  the digest cannot be computed.
int
    umb_verify_report_data (const uint8_t agent_key [UMB_VERIFY_AGENT_KEY_SIZE],
                            const uint8_t *nonce, size_t nonce_size,
                            uint8_t out [UMB_VERIFY_REPORT_DATA_SIZE]);

//  SEV-SNP certificates (PEM, or the GHCB certificate table of auxblob /
//  SNP_GET_EXT_REPORT) as PEM, the VCEK/VLEK first, then ASK and ARK; other
//  table entries are dropped. A new string (caller frees) and *pem_size, or
//  NULL with the reason (malformed, or no certificate at all).
char *
    umb_verify_snp_certs_pem (const uint8_t *certs, size_t size, size_t *pem_size,
                              char *reason, size_t reason_size);

//  "snp", "tdx", "none"
const char *
    umb_verify_platform_name (umb_verify_platform_t platform);
//  The platform named so, or -1.
int
    umb_verify_platform_parse (const char *name);

//  Idempotent; sets *self_p to NULL.
void
    umb_verify_result_destroy (umb_verify_result_t **self_p);

umb_verify_platform_t
    umb_verify_result_platform (const umb_verify_result_t *self);
//  True for platform none: nothing was attested.
bool
    umb_verify_result_insecure (const umb_verify_result_t *self);
//  True when the agent key/nonce binding was checked (and held).
bool
    umb_verify_result_bound (const umb_verify_result_t *self);
//  The evidence's report_data (64 bytes), or NULL (none without one).
const uint8_t *
    umb_verify_result_report_data (const umb_verify_result_t *self);
//  The launch measurement (SNP MEASUREMENT, TDX MRTD; 48 bytes), or NULL.
const uint8_t *
    umb_verify_result_measurement (const umb_verify_result_t *self);
//  Warnings for people ("insecure: no TEE", "no measurement is pinned ..."),
//  one per line, or "" (borrowed).
const char *
    umb_verify_result_warnings (const umb_verify_result_t *self);
//  The parsed fields, for --json (borrowed; valid while the result lives):
//  { platform, genuine, insecure, bound, warnings [], product, signer, report | quote {...} }
json_t *
    umb_verify_result_json (const umb_verify_result_t *self);

//  Selftest
void
    umb_verify_test (bool verbose);

#endif
