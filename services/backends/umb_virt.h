//  umb_virt - one libvirt host connection: capabilities, domains, lifecycle events
//
//  Threading contract
//  ------------------
//  * Every call here may block (libvirt RPC, ssh, DNS): call them from a
//    worker thread, never from a service's zloop. One umb_virt_t is used by
//    one thread at a time (the owner); different umb_virt_t may be used from
//    different threads at once.
//  * libvirt's event loop is process-wide. umb_virt registers libvirt's
//    default event implementation once per process (before the first
//    connection is opened, as keepalive and events need it) and runs
//    virEventRunDefaultImpl in one dedicated thread, started by the first
//    open connection and stopped when the last one is destroyed.
//  * Event callbacks (umb_virt_event_fn) run on that event thread, never on
//    the owner's, and one at a time for the whole process. A callback must be
//    short, must not block and must not call umb_virt_*: it copies its
//    arguments out (e.g. a non-blocking send on a socket that only the event
//    thread writes to, like a PUSH/PAIR zsock or a socketpair end read by the
//    backends actor's zloop) and returns. A callback that blocks stalls every
//    connection's events and keepalives (and umb_virt_events_stop gives up
//    waiting for it after 10 s with an assertion).
//    After umb_virt_events_stop or umb_virt_destroy returns, the callback is
//    not running and will not run again, so its arg may be freed.
//  * A lost connection (keepalive timeout, daemon gone, ssh dropped) is
//    reported once through the same callback with name NULL and event
//    UMB_VIRT_EVENT_CONNECTION_LOST; the owner then destroys the handle and
//    opens a new one. umb_virt_alive says the same on demand.
//
//  Errors: functions return -1 (or NULL) on failure; umb_virt_error gives the
//  text of the last failure on this handle. libvirt's own printing to stderr
//  is silenced (an error handler is installed on the connection and,
//  once, process-wide).
//
//  URIs: only qemu://, qemu+ssh://, qemu+tls://, qemu+unix:// and test://
//  are accepted (umb_virt_uri_check); a qemu URI's path is /system or
//  /session. libvirt is never allowed to prompt (no auth callback), so
//  qemu+ssh needs key authentication; how long an unreachable ssh host takes
//  to fail is ssh's ConnectTimeout (set it in the service user's ~/.ssh/config).
//  A name that does not resolve, a refused port or a missing socket fails at once.
//  Every test:///default connection in one process sees the same host.
#ifndef UMB_VIRT_H_INCLUDED
#define UMB_VIRT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _umb_virt_t umb_virt_t;

#define UMB_VIRT_UUID_SIZE   37      //  36 characters + NUL
#define UMB_VIRT_NAME_SIZE   256

//  Domain states (same values as libvirt's virDomainState)
typedef enum {
    UMB_VIRT_STATE_NOSTATE     = 0,
    UMB_VIRT_STATE_RUNNING     = 1,
    UMB_VIRT_STATE_BLOCKED     = 2,
    UMB_VIRT_STATE_PAUSED      = 3,
    UMB_VIRT_STATE_SHUTDOWN    = 4,     //  being shut down
    UMB_VIRT_STATE_SHUTOFF     = 5,     //  defined, not running
    UMB_VIRT_STATE_CRASHED     = 6,
    UMB_VIRT_STATE_PMSUSPENDED = 7
} umb_virt_state_t;

//  Lifecycle events (same values as libvirt's virDomainEventType); details
//  are libvirt's virDomainEvent*DetailType values for that event
#define UMB_VIRT_EVENT_DEFINED          0
#define UMB_VIRT_EVENT_UNDEFINED        1
#define UMB_VIRT_EVENT_STARTED          2
#define UMB_VIRT_EVENT_SUSPENDED        3
#define UMB_VIRT_EVENT_RESUMED          4
#define UMB_VIRT_EVENT_STOPPED          5
#define UMB_VIRT_EVENT_SHUTDOWN         6
#define UMB_VIRT_EVENT_PMSUSPENDED      7
#define UMB_VIRT_EVENT_CRASHED          8
//  Not a domain event: the connection is gone (name is NULL, detail is
//  libvirt's virConnectCloseReason: 0 error, 1 eof, 2 keepalive, 3 client)
#define UMB_VIRT_EVENT_CONNECTION_LOST  100

//  Details of UMB_VIRT_EVENT_STOPPED (virDomainEventStoppedDetailType)
#define UMB_VIRT_STOPPED_SHUTDOWN       0   //  guest powered off
#define UMB_VIRT_STOPPED_DESTROYED      1   //  virsh destroy / umb_virt_domain_destroy
#define UMB_VIRT_STOPPED_CRASHED        2
#define UMB_VIRT_STOPPED_MIGRATED       3
#define UMB_VIRT_STOPPED_SAVED          4
#define UMB_VIRT_STOPPED_FAILED         5   //  the hypervisor (QEMU) failed
#define UMB_VIRT_STOPPED_FROM_SNAPSHOT  6

//  Called on the event thread (see the threading contract). name is borrowed
//  for the call; NULL for UMB_VIRT_EVENT_CONNECTION_LOST.
typedef void (umb_virt_event_fn) (const char *name, int event, int detail, void *arg);

//  What a host offers
typedef struct {
    char     arch [32];             //  "x86_64"
    char     hostname [256];
    bool     kvm;                   //  domain type kvm usable (else TCG only)
    bool     sev;                   //  <sev supported='yes'> in domcapabilities
    bool     sev_snp;               //  SEV-SNP (libvirt >= 10.5 reports launchSecurity sev-snp)
    bool     tdx;                   //  TDX (<tdx supported='yes'> / launchSecurity tdx)
    unsigned sev_cbitpos;           //  from <sev>, 0 if unknown
    unsigned sev_reduced_phys_bits; //  from <sev>, 0 if unknown
    unsigned cpus;                  //  logical CPUs
    uint64_t memory_mib;            //  total
    uint64_t free_memory_mib;       //  free now
} umb_virt_caps_t;

//  One domain as listed
typedef struct {
    char     name [UMB_VIRT_NAME_SIZE];
    char     uuid [UMB_VIRT_UUID_SIZE];
    int      id;                    //  -1 when not running
    int      state;                 //  umb_virt_state_t
    bool     active;
    bool     persistent;
    unsigned vcpus;
    uint64_t memory_mib;
} umb_virt_domain_t;

//  0 if uri is one umbra accepts, else -1 with the reason. No I/O.
int
    umb_virt_uri_check (const char *uri, char *reason, size_t reason_size);

//  Opens a connection (read-write), sets keepalive (5 s interval, 3 missed =
//  lost; skipped where the driver has none). NULL with the reason on failure.
umb_virt_t *
    umb_virt_open (const char *uri, char *reason, size_t reason_size);

//  Stops events, closes the connection. Idempotent; sets *self_p to NULL.
void
    umb_virt_destroy (umb_virt_t **self_p);

//  Text of the last failure on this handle ("" if none). Borrowed, valid
//  until the next call on the handle.
const char *
    umb_virt_error (umb_virt_t *self);

//  The URI as given to open (borrowed)
const char *
    umb_virt_uri (umb_virt_t *self);

//  True while the connection works
bool
    umb_virt_alive (umb_virt_t *self);

//  Fills caps. test:/// reports no TEE and kvm false.
int
    umb_virt_caps (umb_virt_t *self, umb_virt_caps_t *caps);

//  Defines the domain from xml and starts it; on a start failure the
//  definition is removed again (nothing half-created stays). uuid (may be
//  NULL) receives the domain's UUID text.
int
    umb_virt_domain_create (umb_virt_t *self, const char *xml, char uuid [UMB_VIRT_UUID_SIZE]);

//  Defines without starting / starts a defined domain
int
    umb_virt_domain_define (umb_virt_t *self, const char *xml, char uuid [UMB_VIRT_UUID_SIZE]);
int
    umb_virt_domain_start (umb_virt_t *self, const char *name);

//  Asks the guest to power off (ACPI); the domain stops later (event STOPPED/SHUTDOWN)
int
    umb_virt_domain_shutdown (umb_virt_t *self, const char *name);

//  Hard stop. 0 also when the domain is not running; -1 when it does not exist.
int
    umb_virt_domain_destroy (umb_virt_t *self, const char *name);

//  Removes the definition (with its NVRAM, managed save and snapshot
//  metadata). Stops it first if running. 0 also when it does not exist.
int
    umb_virt_domain_undefine (umb_virt_t *self, const char *name);

//  Looks a domain up by name, or by UUID text when key parses as a UUID.
//  1 found (info filled, may be NULL), 0 no such domain, -1 error.
int
    umb_virt_domain_lookup (umb_virt_t *self, const char *key, umb_virt_domain_t *info);

//  Every domain (running or only defined) whose name starts with prefix
//  (NULL or "": all), sorted by name. *list_p is the caller's (free); 0 or -1.
int
    umb_virt_domain_list (umb_virt_t *self, const char *prefix,
                          umb_virt_domain_t **list_p, size_t *count_p);

//  The domain's state (umb_virt_state_t), or -1 (also when it does not exist)
int
    umb_virt_domain_state (umb_virt_t *self, const char *name);

//  The live domain XML (caller frees), or NULL
char *
    umb_virt_domain_xml (umb_virt_t *self, const char *name);

//  The host-side unix socket path of the domain's <channel type='unix'>
//  whose target name is target (NULL: UMB_DOMAIN_CHANNEL_NAME, i.e.
//  "org.umbra.link.0"), read from the live XML (so a path libvirt chose is
//  found too). Caller frees; NULL when the domain or channel is missing.
char *
    umb_virt_domain_channel_path (umb_virt_t *self, const char *name, const char *target);

//  umbra's metadata element (<umbra:cvm ...>, see umb_domain.h) of the
//  domain's persistent config, as XML text (caller frees; parse it with
//  umb_domain_meta_parse), or NULL when absent.
char *
    umb_virt_domain_metadata (umb_virt_t *self, const char *name);

//  Starts delivering lifecycle events of every domain on this connection,
//  and the connection's loss, to fn (see the threading contract). One
//  subscription per handle: -1 if already started.
int
    umb_virt_events_start (umb_virt_t *self, umb_virt_event_fn *fn, void *arg);

//  Stops them; when it returns, fn is not running and never runs again. Idempotent.
void
    umb_virt_events_stop (umb_virt_t *self);

//  "defined", "undefined", "started", "suspended", "resumed", "stopped",
//  "shutdown", "pmsuspended", "crashed", "connection-lost"; "unknown" otherwise
const char *
    umb_virt_event_str (int event);

//  "running", "shutoff", ... ; "unknown" otherwise
const char *
    umb_virt_state_str (int state);

//  Selftest (test:///default only; no daemon)
void
    umb_virt_test (bool verbose);

#endif
