//  umb_driver - one TEE host as the backends service drives it: `libvirt`
//  (a real hypervisor through umb_virt), `test` (libvirt's test driver: no
//  guest, no agent) and `process` (umbra-agent as a local child, reached
//  through a bridge over a socketpair, exactly as a VM's link would be;
//  insecure, for development and tests)
//
//  Threading: every call but umb_driver_kind_of_uri may block; the service
//  makes them on its worker thread, one thread per driver at a time. Domain
//  events of libvirt hosts arrive on libvirt's event thread (umb_virt.h).
#ifndef UMB_DRIVER_H_INCLUDED
#define UMB_DRIVER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "umb_log.h"
#include "umb_virt.h"

typedef enum {
    UMB_DRIVER_LIBVIRT = 0,
    UMB_DRIVER_TEST    = 1,
    UMB_DRIVER_PROCESS = 2
} umb_driver_kind_t;

typedef struct _umb_driver_t umb_driver_t;

//  What every driver of a service shares (strings borrowed for the driver's life).
typedef struct {
    const char *agent_path;     //  umbra-agent for the process driver
    const char *image_dir;      //  vmlinux, initramfs.cpio.gz, cmdline for libvirt hosts
    const char *control_key;    //  the service's CURVE public key (Z85): the agents' --control-key
    const char *none_accel;     //  how a none VM runs on libvirt hosts: "auto" (KVM when libvirt
                                //  offers it, else TCG), "kvm" or "tcg"; NULL: "auto"
    const char *work_dir;       //  per-CVM directories are made under it
    //  The firmware of confidential VMs on libvirt hosts ("" or NULL: none set)
    const char *firmware_snp;   //  OVMF built for SEV-SNP (AmdSevX64), or
    const char *igvm_snp;       //  ...an IGVM file instead
    const char *firmware_tdx;   //  TDVF (OVMF IntelTdx)
    umb_log_t  *log;            //  borrowed
} umb_driver_env_t;

typedef struct {
    char     tees [64];         //  comma-separated: none,sev-snp,tdx
    unsigned tee_mask;          //  UMB_SCHED_TEE_BIT of each
    int64_t  cpus;
    int64_t  memory_mb;
    bool     kvm;
} umb_driver_caps_t;

typedef struct {
    const char *cvm_id;
    const char *workspace;
    const char *tee;            //  none, sev-snp, tdx
    unsigned    vcpus;
    uint64_t    memory_mb;
    int64_t     created;
    int64_t     ttl;
} umb_driver_spec_t;

//  What a started CVM offers the service.
typedef struct {
    bool  has_agent;            //  false on the test driver
    char  link [1100];          //  the host side's bridge link spec ("unix-connect:PATH", "fd:N")
    int   link_fd;              //  process: the host end of the socketpair (the caller owns it)
    int   pidfd;                //  process: readable when the agent exits (the caller owns it), else -1
    pid_t pid;                  //  process: the agent's pid, else 0
    char  accel [8];            //  libvirt: "kvm" or "tcg", how the VM runs; else ""
} umb_driver_started_t;

//  The driver a URI names: 0..2, or -1 with the reason (not a URI umbra
//  drives). No I/O.
int umb_driver_kind_of_uri (const char *uri, char *reason, size_t reason_size);
const char *umb_driver_kind_str (umb_driver_kind_t kind);
//  "libvirt", "test", "process" -> kind, else -1.
int umb_driver_kind_parse (const char *name);

//  Connects (libvirt, test) or checks the agent executable (process). NULL
//  with the reason: nothing is kept.
umb_driver_t *umb_driver_open (umb_driver_kind_t kind, const char *uri,
                               const umb_driver_env_t *env, char *reason, size_t reason_size);
void          umb_driver_destroy (umb_driver_t **self_p);
umb_driver_kind_t umb_driver_kind (umb_driver_t *self);
//  True while the connection works (process: always).
bool          umb_driver_alive (umb_driver_t *self);

int umb_driver_caps (umb_driver_t *self, umb_driver_caps_t *caps, char *reason, size_t reason_size);

//  Defines and starts the CVM's domain (process: spawns the agent and the
//  guest side of the bridge). On failure nothing is left behind: -1 and the reason.
int umb_driver_create (umb_driver_t *self, const umb_driver_spec_t *spec,
                       umb_driver_started_t *started, char *reason, size_t reason_size);

//  Destroys and undefines the CVM's domain (process: kills the children and
//  reaps them). 0 also when it is gone already.
int umb_driver_teardown (umb_driver_t *self, const char *cvm_id, char *reason, size_t reason_size);

//  The cvm ids of the umbra-* domains on the host that this service made:
//  their metadata's owner is env.control_key; others are logged and left out
//  (process: the children it runs). *ids_p is a NULL-terminated vector the caller frees (each, then it).
int umb_driver_list (umb_driver_t *self, char ***ids_p, char *reason, size_t reason_size);

//  True when the CVM's domain is running (process: its child lives).
bool umb_driver_running (umb_driver_t *self, const char *cvm_id);

//  Re-finds a running CVM's link after a restart of the service (libvirt:
//  its channel socket). 0 with started filled, -1 when it cannot be adopted.
int umb_driver_adopt (umb_driver_t *self, const char *cvm_id, umb_driver_started_t *started,
                      char *reason, size_t reason_size);

//  libvirt and test: domain events on libvirt's event thread (umb_virt.h).
//  0, or -1 (process: there are none; not an error, returns 0).
int  umb_driver_events_start (umb_driver_t *self, umb_virt_event_fn *fn, void *arg);
void umb_driver_events_stop (umb_driver_t *self);

//  Frees a vector from umb_driver_list.
void umb_driver_ids_free (char ***ids_p);

void umb_driver_test (bool verbose);

#endif
