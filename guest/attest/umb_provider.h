//  umb_provider - guest-side attestation evidence: asks the TEE for a report
//  (SEV-SNP) or quote (TDX) that carries the caller's 64-byte report_data
//
//  Kinds:
//    "snp"   configfs-tsm (provider sev_guest) when present, else the
//            /dev/sev-guest SNP_GET_EXT_REPORT / SNP_GET_REPORT ioctl
//    "tdx"   configfs-tsm (provider tdx_guest)
//    "none"  no TEE: empty evidence (development only; verifiers refuse it
//            unless told it is insecure)
//    "auto"  configfs-tsm (its provider names the platform), then
//            /dev/sev-guest; refused when neither exists (never "none")
//
//  Construction probes configfs-tsm (an entry made and removed) and refuses
//  a kind its provider does not match ("snp" on a TDX guest, ...).
//
//  configfs-tsm (Documentation/ABI/testing/configfs-tsm): a report is an
//  entry made with mkdir under ROOT (/sys/kernel/config/tsm/report); the
//  64 bytes are written to inblob, the evidence read from outblob and the
//  certificates from auxblob; generation is read before and after, and a
//  change by anyone else refuses the result; the entry is removed after.
//  SNP certificates (the GHCB certificate table) are returned as PEM,
//  VCEK/VLEK first, as the agent's `certs` field carries them.
#ifndef UMB_PROVIDER_H_INCLUDED
#define UMB_PROVIDER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UMB_PROVIDER_CONFIGFS_ROOT  "/sys/kernel/config/tsm/report"
#define UMB_PROVIDER_SEV_GUEST      "/dev/sev-guest"

typedef struct _umb_provider_t umb_provider_t;

//  A provider of that kind with the default configfs root; NULL if the kind
//  is unknown or "auto" finds no TEE (the reason is logged).
umb_provider_t *
    umb_provider_new (const char *kind);

//  The same with another configfs-tsm root (NULL = the default).
umb_provider_t *
    umb_provider_new_at (const char *kind, const char *root);

//  The same, with the reason when it returns NULL.
umb_provider_t *
    umb_provider_new_reason (const char *kind, const char *root, char *reason, size_t reason_size);

//  Test seam, for the selftest only: configfs cannot run here, so a fake
//  "kernel" is called at the points where real configfs acts by itself:
//  after mkdir of ENTRY (make the attribute files), after the inblob write
//  (write outblob/auxblob, advance generation) and before rmdir (remove the
//  files). Given at construction so "auto" probing sees it too.
typedef enum {
    UMB_PROVIDER_FAKE_MKDIR,
    UMB_PROVIDER_FAKE_INBLOB,
    UMB_PROVIDER_FAKE_RMDIR
} umb_provider_fake_event_t;
typedef void (umb_provider_fake_fn) (const char *entry, umb_provider_fake_event_t event, void *arg);

umb_provider_t *
    umb_provider_new_fake (const char *kind, const char *root, umb_provider_fake_fn *fake, void *arg,
                           char *reason, size_t reason_size);

//  Idempotent; sets *self_p to NULL.
void
    umb_provider_destroy (umb_provider_t **self_p);

//  "snp", "tdx" or "none" (auto resolved at construction)
const char *
    umb_provider_platform (umb_provider_t *self);

//  "configfs-tsm", "sev-guest ioctl" or "none"
const char *
    umb_provider_source (umb_provider_t *self);

//  Gets evidence for report_data. On success 0, *evidence (caller frees;
//  NULL with size 0 for "none") and *certs (PEM, caller frees; NULL with
//  size 0 when the TEE gave none). -1 and the reason otherwise.
int
    umb_provider_get (umb_provider_t *self, const uint8_t report_data [64],
                      uint8_t **evidence, size_t *evidence_size,
                      uint8_t **certs, size_t *certs_size,
                      char *reason, size_t reason_size)
    __attribute__ ((warn_unused_result));

//  Selftest
void
    umb_provider_test (bool verbose);

#endif
