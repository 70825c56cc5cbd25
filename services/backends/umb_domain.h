//  umb_domain - libvirt domain XML for umbra's CVMs, built from a spec
//
//  One template per TEE type: `none` (development VM, KVM or TCG),
//  `sev-snp` (AMD SEV-SNP, OVMF or IGVM, measured direct kernel boot) and
//  `tdx` (Intel TDX, TDVF). Every domain direct-boots the guest image
//  (kernel, initrd, command line), has no network interface at all, no
//  memory balloon, ACPI (so a guest poweroff ends the domain), is destroyed
//  on poweroff, reboot and crash, and carries umbra's metadata element
//
//      <umbra:cvm xmlns:umbra='https://umbra.dev/cvm'>
//        <umbra:id>..</umbra:id><umbra:workspace>..</umbra:workspace>
//        <umbra:created>unix seconds</umbra:created><umbra:ttl>seconds</umbra:ttl>
//      </umbra:cvm>
//
//  which reconciliation reads back (umb_virt_domain_metadata + umb_domain_meta_parse).
//  Domains are named UMB_DOMAIN_NAME_PREFIX + cvm id.
//
//      umb_domain_spec_t spec = {
//          .name = "umbra-c1", .tee = "none", .virt_type = "qemu",
//          .vcpus = 1, .memory_mib = 512,
//          .kernel = "/var/cache/umbra/eos/vmlinux",
//          .initrd = "/var/cache/umbra/eos/initramfs.cpio.gz",
//          .cmdline = "console=ttyS0 umbra.attestation=none",
//          .channel_path = "",            //  libvirt chooses the socket path
//          .cvm_id = "c1", .workspace = "ws1", .created = time (NULL), .ttl = 3600 };
//      char reason [256];
//      char *xml = umb_domain_xml (&spec, reason, sizeof reason);
//      if (!xml)
//          refuse (reason);
//      ...
//      free (xml);
//
//  Pure code (no I/O); every string in the spec is XML-escaped, and strings
//  with control characters or invalid UTF-8 are refused.
#ifndef UMB_DOMAIN_H_INCLUDED
#define UMB_DOMAIN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UMB_DOMAIN_NAME_PREFIX      "umbra-"
#define UMB_DOMAIN_METADATA_URI     "https://umbra.dev/cvm"
#define UMB_DOMAIN_METADATA_PREFIX  "umbra"
//  The virtio-serial port name of the guest link (proto/bridge.md)
#define UMB_DOMAIN_CHANNEL_NAME     "org.umbra.link.0"

#define UMB_DOMAIN_VCPUS_MIN        1
#define UMB_DOMAIN_VCPUS_MAX        256
#define UMB_DOMAIN_MEMORY_MIN_MIB   128
#define UMB_DOMAIN_MEMORY_MAX_MIB   1048576
#define UMB_DOMAIN_NAME_MAX         64      //  characters, [A-Za-z0-9_.+-], first alnum
#define UMB_DOMAIN_CMDLINE_MAX      2047    //  x86 COMMAND_LINE_SIZE - 1
//  vsock_cid value asking libvirt to pick the CID
#define UMB_DOMAIN_VSOCK_AUTO       UINT32_MAX
//  SEV-SNP guest policy default: SMT allowed, reserved bit 17 set, ABI 0.0
#define UMB_DOMAIN_SNP_POLICY_DEFAULT  0x30000ULL
//  TDX TD attributes default: SEPT_VE_DISABLE, no debug
#define UMB_DOMAIN_TDX_POLICY_DEFAULT  0x10000000ULL

typedef enum {
    UMB_DOMAIN_TEE_NONE    = 0,
    UMB_DOMAIN_TEE_SEV_SNP = 1,
    UMB_DOMAIN_TEE_TDX     = 2
} umb_domain_tee_t;
#define UMB_DOMAIN_TEE_COUNT 3

//  What to build. Zero/NULL fields take the defaults noted; the caller owns
//  every string (borrowed for the call only).
typedef struct {
    const char *name;           //  required, see UMB_DOMAIN_NAME_MAX
    const char *uuid;           //  NULL: libvirt assigns one; else 36-char UUID text
    const char *tee;            //  "none" (default when NULL), "sev-snp", "tdx"
    const char *virt_type;      //  "kvm" or "qemu" (TCG); NULL: "kvm" for TEEs, "qemu" for none
    unsigned    vcpus;          //  1..256
    uint64_t    memory_mib;     //  128..1048576
    const char *kernel;         //  absolute path; required unless igvm is set
    const char *initrd;         //  absolute path or NULL
    const char *cmdline;        //  kernel command line or NULL
    const char *machine;        //  NULL: "q35"
    uint32_t    vsock_cid;      //  0: no vsock device; 3..UINT32_MAX-1 fixed; UMB_DOMAIN_VSOCK_AUTO
    const char *channel_path;   //  NULL: no channel; "": libvirt picks the path; else an absolute
                                //  path where QEMU listens (host side of org.umbra.link.0)
    const char *serial_log;     //  NULL: no serial port; else absolute path of the console log
    //  sev-snp / tdx
    const char *loader;         //  firmware: OVMF (AMD SEV) / TDVF; required for tdx, and for
                                //  sev-snp unless igvm is set
    const char *igvm;           //  sev-snp: IGVM file (passed to QEMU as igvm-cfg); optional
    uint64_t    policy;         //  0: UMB_DOMAIN_SNP_POLICY_DEFAULT / UMB_DOMAIN_TDX_POLICY_DEFAULT
    unsigned    sev_cbitpos;    //  0: omitted (libvirt takes it from the host's domcapabilities)
    unsigned    sev_reduced_phys_bits;  //  0: omitted
    //  metadata (reconciliation)
    const char *cvm_id;         //  required
    const char *owner;          //  the owning service's identity (its CURVE key); NULL: none
    const char *workspace;      //  NULL: ""
    int64_t     created;        //  unix seconds
    int64_t     ttl;            //  seconds, 0 = none; >= 0
} umb_domain_spec_t;

//  Returns the domain XML (caller frees with free), or NULL with the reason:
//  unknown TEE or virt type, sizes out of range, missing or relative paths,
//  a bad name, UUID or string, a vsock CID < 3, a TEE domain with virt
//  type qemu (TEEs need KVM).
char *
    umb_domain_xml (const umb_domain_spec_t *spec, char *reason, size_t reason_size);

//  "none" -> UMB_DOMAIN_TEE_NONE ...; -1 for anything else (NULL too)
int
    umb_domain_tee_parse (const char *text);
//  Canonical name of a TEE type ("none", "sev-snp", "tdx")
const char *
    umb_domain_tee_str (umb_domain_tee_t tee);

//  umbra's metadata read back from libvirt
typedef struct {
    char    cvm_id [128];
    char    owner [128];        //  "" when the domain names none
    char    workspace [128];
    int64_t created;
    int64_t ttl;
} umb_domain_meta_t;

//  Parses the <umbra:cvm> element, given alone (as virDomainGetMetadata
//  returns it) or inside a whole domain XML. 0, or -1 with the reason when it
//  is missing or malformed. Peer-ish input: never asserts.
int
    umb_domain_meta_parse (const char *xml, umb_domain_meta_t *meta, char *reason, size_t reason_size);

//  Selftest
void
    umb_domain_test (bool verbose);

#endif
