//  umb_virt - one libvirt host connection: capabilities, domains, lifecycle events
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include "umb_domain.h"
#include "umb_virt.h"

#define S_KEEPALIVE_INTERVAL  5     //  seconds between keepalive probes
#define S_KEEPALIVE_COUNT     3     //  unanswered probes before the connection is lost
#define S_EVENTS_STOP_WAIT_S  10    //  bound on waiting for libvirt to drop our callback

struct _umb_virt_t {
    virConnectPtr conn;
    char *uri;
    char error [512];
    //  Events: fn/arg are set before registration and not changed while
    //  registered, so the event thread reads them without a lock
    umb_virt_event_fn *fn;
    void *arg;
    int callback_id;                //  -1 when not registered
    bool close_registered;
    pthread_mutex_t mutex;          //  guards callback_freed
    pthread_cond_t cond;
    bool callback_freed;
};

//  --------------------------------------------------------------------------
//  libvirt's event loop is process-wide (virEventRegisterDefaultImpl), so the
//  thread running it is too: this is the one piece of state in umbra kept at
//  process level, because the library it drives is. Started by the first
//  open connection, stopped (and joined) when the last one is destroyed.

typedef struct {
    pthread_mutex_t mutex;
    unsigned users;
    bool running;
    atomic_bool quit;
    pthread_t thread;
} s_loop_t;

static s_loop_t s_loop = { .mutex = PTHREAD_MUTEX_INITIALIZER };
static pthread_once_t s_init_once = PTHREAD_ONCE_INIT;
static int s_init_rc = -1;

//  libvirt reports through return codes and virGetLastError; never print
static void
s_quiet (void *arg, virErrorPtr error)
{
}

static void
s_init (void)
{
    virSetErrorFunc (NULL, s_quiet);
    if (virInitialize () == 0 && virEventRegisterDefaultImpl () == 0)
        s_init_rc = 0;
}

static void *
s_loop_run (void *arg)
{
    while (!atomic_load (&s_loop.quit))
        virEventRunDefaultImpl ();
    return NULL;
}

//  A zero timeout that wakes the event loop once
static void
s_loop_wake (int timer, void *arg)
{
    virEventRemoveTimeout (timer);
}

static int
s_loop_acquire (void)
{
    int rc = 0;
    pthread_mutex_lock (&s_loop.mutex);
    if (s_loop.users == 0) {
        atomic_store (&s_loop.quit, false);
        if (pthread_create (&s_loop.thread, NULL, s_loop_run, NULL) == 0)
            s_loop.running = true;
        else
            rc = -1;
    }
    if (rc == 0)
        s_loop.users++;
    pthread_mutex_unlock (&s_loop.mutex);
    return rc;
}

static void
s_loop_release (void)
{
    pthread_mutex_lock (&s_loop.mutex);
    assert (s_loop.users > 0);
    if (--s_loop.users == 0 && s_loop.running) {
        atomic_store (&s_loop.quit, true);
        virEventAddTimeout (0, s_loop_wake, NULL, NULL);
        pthread_join (s_loop.thread, NULL);
        s_loop.running = false;
    }
    pthread_mutex_unlock (&s_loop.mutex);
}

//  --------------------------------------------------------------------------

//  Records a failure: the message, then libvirt's last error on this thread
static void
s_error (umb_virt_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_error (umb_virt_t *self, const char *format, ...)
{
    char prefix [256];
    va_list args;
    va_start (args, format);
    vsnprintf (prefix, sizeof prefix, format, args);
    va_end (args);
    virErrorPtr error = virGetLastError ();
    if (error && error->message)
        snprintf (self->error, sizeof self->error, "%s: %s", prefix, error->message);
    else
        snprintf (self->error, sizeof self->error, "%s", prefix);
    virResetLastError ();
}

static int
s_last_code (void)
{
    virErrorPtr error = virGetLastError ();
    return error? error->code: VIR_ERR_OK;
}

int
umb_virt_uri_check (const char *uri, char *reason, size_t reason_size)
{
    static const char *schemes [] = { "qemu", "qemu+ssh", "qemu+tls", "qemu+unix", "test" };
    char scratch [8];
    if (!reason) {
        reason = scratch;
        reason_size = sizeof scratch;
    }
    if (!uri || !*uri) {
        snprintf (reason, reason_size, "the host URI is empty");
        return -1;
    }
    size_t size = strlen (uri);
    if (size > 1024) {
        snprintf (reason, reason_size, "the host URI is longer than 1024 characters");
        return -1;
    }
    for (size_t i = 0; i < size; i++)
        if ((unsigned char) uri [i] <= 0x20 || (unsigned char) uri [i] >= 0x7f) {
            snprintf (reason, reason_size, "the host URI has spaces, control or non-ASCII characters");
            return -1;
        }
    const char *separator = strstr (uri, "://");
    size_t scheme_size = separator? (size_t) (separator - uri): 0;
    size_t index;
    for (index = 0; index < sizeof schemes / sizeof schemes [0]; index++)
        if (scheme_size == strlen (schemes [index])
        &&  strncmp (uri, schemes [index], scheme_size) == 0)
            break;
    if (index == sizeof schemes / sizeof schemes [0]) {
        snprintf (reason, reason_size,
                  "'%.*s' is not a libvirt host URI umbra accepts "
                  "(qemu://, qemu+ssh://, qemu+tls://, qemu+unix://, test://)",
                  (int) (size > 64? 64: size), uri);
        return -1;
    }
    if (strcmp (schemes [index], "test") != 0) {
        //  qemu: the path names the daemon instance
        const char *path = strchr (separator + 3, '/');
        size_t path_size = path? strcspn (path, "?#"): 0;
        if (!path
        || !((path_size == 7 && strncmp (path, "/system", 7) == 0)
          || (path_size == 8 && strncmp (path, "/session", 8) == 0))) {
            snprintf (reason, reason_size, "a qemu host URI ends in /system or /session (e.g. qemu:///system)");
            return -1;
        }
    }
    return 0;
}

umb_virt_t *
umb_virt_open (const char *uri, char *reason, size_t reason_size)
{
    char scratch [8];
    if (!reason) {
        reason = scratch;
        reason_size = sizeof scratch;
    }
    if (umb_virt_uri_check (uri, reason, reason_size))
        return NULL;
    pthread_once (&s_init_once, s_init);
    if (s_init_rc) {
        snprintf (reason, reason_size, "libvirt could not be initialised");
        return NULL;
    }
    umb_virt_t *self = calloc (1, sizeof *self);
    if (!self || !(self->uri = strdup (uri))) {
        free (self);
        snprintf (reason, reason_size, "out of memory");
        return NULL;
    }
    self->callback_id = -1;
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->cond, NULL);
    if (s_loop_acquire ()) {
        snprintf (reason, reason_size, "cannot start the libvirt event thread");
        pthread_mutex_destroy (&self->mutex);
        pthread_cond_destroy (&self->cond);
        free (self->uri);
        free (self);
        return NULL;
    }
    //  No auth callback: libvirt never prompts (a daemon has nobody to ask)
    self->conn = virConnectOpen (uri);
    if (!self->conn) {
        s_error (self, "cannot connect to %s", uri);
        snprintf (reason, reason_size, "%s", self->error);
        umb_virt_destroy (&self);
        return NULL;
    }
    virConnSetErrorFunc (self->conn, NULL, s_quiet);
    //  Drivers without keepalive (test://, local qemu://) refuse: that is fine
    if (virConnectSetKeepAlive (self->conn, S_KEEPALIVE_INTERVAL, S_KEEPALIVE_COUNT) < 0)
        virResetLastError ();
    return self;
}

void
umb_virt_destroy (umb_virt_t **self_p)
{
    assert (self_p);
    umb_virt_t *self = *self_p;
    if (!self)
        return;
    umb_virt_events_stop (self);
    if (self->conn)
        virConnectClose (self->conn);
    s_loop_release ();
    pthread_mutex_destroy (&self->mutex);
    pthread_cond_destroy (&self->cond);
    free (self->uri);
    free (self);
    *self_p = NULL;
}

const char *
umb_virt_error (umb_virt_t *self)
{
    assert (self);
    return self->error;
}

const char *
umb_virt_uri (umb_virt_t *self)
{
    assert (self);
    return self->uri;
}

bool
umb_virt_alive (umb_virt_t *self)
{
    assert (self);
    int alive = virConnectIsAlive (self->conn);
    if (alive < 0)
        virResetLastError ();
    return alive == 1;
}

//  --------------------------------------------------------------------------
//  Capabilities

static xmlDocPtr
s_xml_parse (const char *text)
{
    if (!text)
        return NULL;
    return xmlReadMemory (text, (int) strlen (text), "libvirt.xml", NULL,
                          XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

//  The first element child of node named name (NULL node: NULL)
static xmlNodePtr
s_child (xmlNodePtr node, const char *name)
{
    for (xmlNodePtr child = node? node->children: NULL; child; child = child->next)
        if (child->type == XML_ELEMENT_NODE && strcmp ((const char *) child->name, name) == 0)
            return child;
    return NULL;
}

//  True if node's attribute name equals value
static bool
s_attr_is (xmlNodePtr node, const char *name, const char *value)
{
    if (!node)
        return false;
    xmlChar *attr = xmlGetProp (node, BAD_CAST name);
    bool equal = attr && strcmp ((const char *) attr, value) == 0;
    xmlFree (attr);
    return equal;
}

static unsigned
s_child_uint (xmlNodePtr node, const char *name)
{
    xmlNodePtr child = s_child (node, name);
    if (!child)
        return 0;
    xmlChar *content = xmlNodeGetContent (child);
    unsigned value = content? (unsigned) strtoul ((const char *) content, NULL, 10): 0;
    xmlFree (content);
    return value;
}

//  True if the <enum name='enum_name'> under node lists value
static bool
s_enum_has (xmlNodePtr node, const char *enum_name, const char *value)
{
    for (xmlNodePtr child = node? node->children: NULL; child; child = child->next) {
        if (child->type != XML_ELEMENT_NODE || strcmp ((const char *) child->name, "enum")
        ||  !s_attr_is (child, "name", enum_name))
            continue;
        for (xmlNodePtr item = child->children; item; item = item->next) {
            if (item->type != XML_ELEMENT_NODE || strcmp ((const char *) item->name, "value"))
                continue;
            xmlChar *content = xmlNodeGetContent (item);
            bool equal = content && strcmp ((const char *) content, value) == 0;
            xmlFree (content);
            if (equal)
                return true;
        }
    }
    return false;
}

//  Reads TEE support from a domcapabilities document
static void
s_caps_domain (umb_virt_caps_t *caps, const char *text)
{
    xmlDocPtr doc = s_xml_parse (text);
    if (!doc)
        return;
    xmlNodePtr root = xmlDocGetRootElement (doc);
    xmlNodePtr features = s_child (root, "features");
    xmlNodePtr sev = s_child (features, "sev");
    if (s_attr_is (sev, "supported", "yes")) {
        caps->sev = true;
        caps->sev_cbitpos = s_child_uint (sev, "cbitpos");
        caps->sev_reduced_phys_bits = s_child_uint (sev, "reducedPhysBits");
    }
    //  libvirt >= 10.5 lists the launch security types it can start
    xmlNodePtr security = s_child (features, "launchSecurity");
    if (s_attr_is (security, "supported", "yes")) {
        if (s_enum_has (security, "sectype", "sev-snp"))
            caps->sev_snp = true;
        if (s_enum_has (security, "sectype", "tdx"))
            caps->tdx = true;
    }
    if (s_attr_is (s_child (features, "tdx"), "supported", "yes"))
        caps->tdx = true;
    xmlFreeDoc (doc);
}

int
umb_virt_caps (umb_virt_t *self, umb_virt_caps_t *caps)
{
    assert (self);
    assert (caps);
    memset (caps, 0, sizeof *caps);
    virNodeInfo info;
    if (virNodeGetInfo (self->conn, &info) < 0) {
        s_error (self, "cannot read the host's node info");
        return -1;
    }
    caps->cpus = info.cpus;
    caps->memory_mib = info.memory / 1024;
    unsigned long long free_bytes = virNodeGetFreeMemory (self->conn);
    if (free_bytes == 0)
        virResetLastError ();
    caps->free_memory_mib = free_bytes / (1024 * 1024);

    char *hostname = virConnectGetHostname (self->conn);
    if (hostname)
        snprintf (caps->hostname, sizeof caps->hostname, "%s", hostname);
    else
        virResetLastError ();
    free (hostname);

    char *text = virConnectGetCapabilities (self->conn);
    if (!text) {
        s_error (self, "cannot read the host's capabilities");
        return -1;
    }
    xmlDocPtr doc = s_xml_parse (text);
    free (text);
    if (doc) {
        xmlNodePtr arch = s_child (s_child (s_child (xmlDocGetRootElement (doc), "host"), "cpu"), "arch");
        xmlChar *content = arch? xmlNodeGetContent (arch): NULL;
        if (content)
            snprintf (caps->arch, sizeof caps->arch, "%s", (const char *) content);
        xmlFree (content);
        xmlFreeDoc (doc);
    }
    //  KVM is usable when libvirt offers domain type kvm for the host arch;
    //  TEE support is only read from there (test:/// has no domcapabilities)
    char *domcaps = virConnectGetDomainCapabilities (self->conn, NULL,
                                                    caps->arch [0]? caps->arch: NULL,
                                                    NULL, "kvm", 0);
    if (domcaps) {
        caps->kvm = true;
        s_caps_domain (caps, domcaps);
        free (domcaps);
    }
    else
        virResetLastError ();
    return 0;
}

//  --------------------------------------------------------------------------
//  Domains

static bool
s_is_uuid (const char *key)
{
    unsigned char raw [VIR_UUID_BUFLEN];
    if (strlen (key) != 36)
        return false;
    return sscanf (key, "%2hhx%2hhx%2hhx%2hhx-%2hhx%2hhx-%2hhx%2hhx-%2hhx%2hhx-"
                        "%2hhx%2hhx%2hhx%2hhx%2hhx%2hhx",
                   &raw [0], &raw [1], &raw [2], &raw [3], &raw [4], &raw [5], &raw [6], &raw [7],
                   &raw [8], &raw [9], &raw [10], &raw [11], &raw [12], &raw [13], &raw [14],
                   &raw [15]) == 16;
}

//  Looks a domain up; NULL with self->error set (not_found true if it does not exist)
static virDomainPtr
s_lookup (umb_virt_t *self, const char *key, bool *not_found)
{
    if (not_found)
        *not_found = false;
    virDomainPtr domain = s_is_uuid (key)? virDomainLookupByUUIDString (self->conn, key)
                                         : virDomainLookupByName (self->conn, key);
    if (!domain) {
        if (not_found && s_last_code () == VIR_ERR_NO_DOMAIN)
            *not_found = true;
        s_error (self, "domain %.64s", key);
    }
    return domain;
}

static int
s_fill_info (virDomainPtr domain, umb_virt_domain_t *info)
{
    memset (info, 0, sizeof *info);
    const char *name = virDomainGetName (domain);
    snprintf (info->name, sizeof info->name, "%s", name? name: "");
    if (virDomainGetUUIDString (domain, info->uuid) < 0)
        info->uuid [0] = 0;
    unsigned int id = virDomainGetID (domain);
    info->id = id == (unsigned int) -1? -1: (int) id;
    virDomainInfo raw;
    if (virDomainGetInfo (domain, &raw) < 0)
        return -1;
    info->state = raw.state;
    info->vcpus = raw.nrVirtCpu;
    info->memory_mib = raw.maxMem / 1024;
    info->active = virDomainIsActive (domain) == 1;
    info->persistent = virDomainIsPersistent (domain) == 1;
    virResetLastError ();
    return 0;
}

int
umb_virt_domain_define (umb_virt_t *self, const char *xml, char uuid [UMB_VIRT_UUID_SIZE])
{
    assert (self);
    assert (xml);
    virDomainPtr domain = virDomainDefineXML (self->conn, xml);
    if (!domain) {
        s_error (self, "cannot define the domain");
        return -1;
    }
    if (uuid && virDomainGetUUIDString (domain, uuid) < 0)
        uuid [0] = 0;
    virDomainFree (domain);
    return 0;
}

int
umb_virt_domain_start (umb_virt_t *self, const char *name)
{
    assert (self);
    assert (name);
    virDomainPtr domain = s_lookup (self, name, NULL);
    if (!domain)
        return -1;
    int rc = virDomainCreate (domain);
    if (rc < 0)
        s_error (self, "cannot start domain %.64s", name);
    virDomainFree (domain);
    return rc < 0? -1: 0;
}

//  Undefines with every flag the driver accepts (the test driver knows fewer)
static int
s_undefine (virDomainPtr domain)
{
    static const unsigned int flag_sets [] = {
        VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
      | VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA,
        VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
        0
    };
    for (size_t index = 0; index < sizeof flag_sets / sizeof flag_sets [0]; index++) {
        if (virDomainUndefineFlags (domain, flag_sets [index]) == 0)
            return 0;
        int code = s_last_code ();
        if (code != VIR_ERR_INVALID_ARG && code != VIR_ERR_NO_SUPPORT)
            return -1;
    }
    return -1;
}

//  True (with self->error set) if the domain xml names, by name or UUID, exists already
static bool
s_exists (umb_virt_t *self, const char *xml)
{
    xmlDocPtr doc = s_xml_parse (xml);
    if (!doc)
        return false;       //  libvirt's define reports the syntax error
    bool exists = false;
    xmlNodePtr root = xmlDocGetRootElement (doc);
    const char *keys [] = { "name", "uuid" };
    for (size_t index = 0; index < 2 && !exists; index++) {
        xmlNodePtr node = s_child (root, keys [index]);
        xmlChar *key = node? xmlNodeGetContent (node): NULL;
        if (key && *key) {
            virDomainPtr domain = index == 0? virDomainLookupByName (self->conn, (const char *) key)
                                            : virDomainLookupByUUIDString (self->conn, (const char *) key);
            if (domain) {
                snprintf (self->error, sizeof self->error, "domain %.64s already exists (%s)",
                          virDomainGetName (domain), index == 0? "same name": "same uuid");
                virDomainFree (domain);
                exists = true;
            }
            virResetLastError ();
        }
        xmlFree (key);
    }
    xmlFreeDoc (doc);
    return exists;
}

int
umb_virt_domain_create (umb_virt_t *self, const char *xml, char uuid [UMB_VIRT_UUID_SIZE])
{
    assert (self);
    assert (xml);
    //  Defining over an existing domain would replace its config, and the
    //  clean-up below would then remove a domain this call did not make
    if (s_exists (self, xml))
        return -1;
    virDomainPtr domain = virDomainDefineXML (self->conn, xml);
    if (!domain) {
        s_error (self, "cannot define the domain");
        return -1;
    }
    if (virDomainCreate (domain) < 0) {
        s_error (self, "cannot start domain %.64s", virDomainGetName (domain));
        //  Nothing half-created stays behind; the start error is what counts
        char saved [sizeof self->error];
        memcpy (saved, self->error, sizeof saved);
        if (s_undefine (domain) < 0)
            virResetLastError ();
        memcpy (self->error, saved, sizeof saved);
        virDomainFree (domain);
        return -1;
    }
    if (uuid && virDomainGetUUIDString (domain, uuid) < 0)
        uuid [0] = 0;
    virDomainFree (domain);
    return 0;
}

int
umb_virt_domain_shutdown (umb_virt_t *self, const char *name)
{
    assert (self);
    assert (name);
    virDomainPtr domain = s_lookup (self, name, NULL);
    if (!domain)
        return -1;
    int rc = virDomainShutdown (domain);
    if (rc < 0)
        s_error (self, "cannot shut domain %.64s down", name);
    virDomainFree (domain);
    return rc < 0? -1: 0;
}

int
umb_virt_domain_destroy (umb_virt_t *self, const char *name)
{
    assert (self);
    assert (name);
    virDomainPtr domain = s_lookup (self, name, NULL);
    if (!domain)
        return -1;
    int rc = 0;
    if (virDomainIsActive (domain) == 1 && virDomainDestroy (domain) < 0) {
        //  It may have stopped meanwhile
        if (s_last_code () == VIR_ERR_OPERATION_INVALID)
            virResetLastError ();
        else {
            s_error (self, "cannot destroy domain %.64s", name);
            rc = -1;
        }
    }
    virDomainFree (domain);
    return rc;
}

int
umb_virt_domain_undefine (umb_virt_t *self, const char *name)
{
    assert (self);
    assert (name);
    bool not_found;
    virDomainPtr domain = s_lookup (self, name, &not_found);
    if (!domain) {
        if (not_found) {
            self->error [0] = 0;
            return 0;
        }
        return -1;
    }
    int rc = 0;
    if (virDomainIsActive (domain) == 1 && virDomainDestroy (domain) < 0
    &&  s_last_code () != VIR_ERR_OPERATION_INVALID) {
        s_error (self, "cannot destroy domain %.64s", name);
        rc = -1;
    }
    if (rc == 0 && virDomainIsPersistent (domain) == 1 && s_undefine (domain) < 0) {
        s_error (self, "cannot undefine domain %.64s", name);
        rc = -1;
    }
    virResetLastError ();
    virDomainFree (domain);
    return rc;
}

int
umb_virt_domain_lookup (umb_virt_t *self, const char *key, umb_virt_domain_t *info)
{
    assert (self);
    assert (key);
    bool not_found;
    virDomainPtr domain = s_lookup (self, key, &not_found);
    if (!domain)
        return not_found? 0: -1;
    int rc = 1;
    umb_virt_domain_t scratch;
    if (s_fill_info (domain, info? info: &scratch) < 0) {
        s_error (self, "cannot read domain %.64s", key);
        rc = -1;
    }
    virDomainFree (domain);
    return rc;
}

static int
s_compare_names (const void *a, const void *b)
{
    return strcmp (((const umb_virt_domain_t *) a)->name, ((const umb_virt_domain_t *) b)->name);
}

int
umb_virt_domain_list (umb_virt_t *self, const char *prefix,
                      umb_virt_domain_t **list_p, size_t *count_p)
{
    assert (self);
    assert (list_p);
    assert (count_p);
    *list_p = NULL;
    *count_p = 0;
    virDomainPtr *domains = NULL;
    int total = virConnectListAllDomains (self->conn, &domains, 0);
    if (total < 0) {
        s_error (self, "cannot list domains");
        return -1;
    }
    umb_virt_domain_t *list = calloc (total? (size_t) total: 1, sizeof *list);
    size_t count = 0;
    size_t prefix_size = prefix? strlen (prefix): 0;
    for (int index = 0; index < total; index++) {
        const char *name = virDomainGetName (domains [index]);
        if (list && name && strncmp (name, prefix? prefix: "", prefix_size) == 0
        &&  s_fill_info (domains [index], &list [count]) == 0)
            count++;
        virDomainFree (domains [index]);
    }
    free (domains);
    virResetLastError ();
    if (!list) {
        snprintf (self->error, sizeof self->error, "out of memory");
        return -1;
    }
    qsort (list, count, sizeof *list, s_compare_names);
    *list_p = list;
    *count_p = count;
    return 0;
}

int
umb_virt_domain_state (umb_virt_t *self, const char *name)
{
    assert (self);
    assert (name);
    virDomainPtr domain = s_lookup (self, name, NULL);
    if (!domain)
        return -1;
    int state = -1, reason = 0;
    if (virDomainGetState (domain, &state, &reason, 0) < 0) {
        s_error (self, "cannot read the state of domain %.64s", name);
        state = -1;
    }
    virDomainFree (domain);
    return state;
}

char *
umb_virt_domain_xml (umb_virt_t *self, const char *name)
{
    assert (self);
    assert (name);
    virDomainPtr domain = s_lookup (self, name, NULL);
    if (!domain)
        return NULL;
    char *xml = virDomainGetXMLDesc (domain, 0);
    if (!xml)
        s_error (self, "cannot read the XML of domain %.64s", name);
    virDomainFree (domain);
    return xml;
}

char *
umb_virt_domain_channel_path (umb_virt_t *self, const char *name, const char *target)
{
    assert (self);
    assert (name);
    if (!target)
        target = UMB_DOMAIN_CHANNEL_NAME;
    char *xml = umb_virt_domain_xml (self, name);
    if (!xml)
        return NULL;
    xmlDocPtr doc = s_xml_parse (xml);
    free (xml);
    char *path = NULL;
    xmlNodePtr devices = doc? s_child (xmlDocGetRootElement (doc), "devices"): NULL;
    for (xmlNodePtr node = devices? devices->children: NULL; node && !path; node = node->next) {
        if (node->type != XML_ELEMENT_NODE || strcmp ((const char *) node->name, "channel")
        ||  !s_attr_is (node, "type", "unix")
        ||  !s_attr_is (s_child (node, "target"), "name", target))
            continue;
        xmlNodePtr source = s_child (node, "source");
        xmlChar *attr = source? xmlGetProp (source, BAD_CAST "path"): NULL;
        if (attr && *attr)
            path = strdup ((const char *) attr);
        xmlFree (attr);
    }
    if (doc)
        xmlFreeDoc (doc);
    if (!path)
        snprintf (self->error, sizeof self->error,
                  "domain %.64s has no unix channel named %.64s", name, target);
    return path;
}

char *
umb_virt_domain_metadata (umb_virt_t *self, const char *name)
{
    assert (self);
    assert (name);
    virDomainPtr domain = s_lookup (self, name, NULL);
    if (!domain)
        return NULL;
    //  The persistent config first; a transient domain only has the live one
    char *text = virDomainGetMetadata (domain, VIR_DOMAIN_METADATA_ELEMENT,
                                       UMB_DOMAIN_METADATA_URI, VIR_DOMAIN_AFFECT_CONFIG);
    if (!text) {
        virResetLastError ();
        text = virDomainGetMetadata (domain, VIR_DOMAIN_METADATA_ELEMENT,
                                     UMB_DOMAIN_METADATA_URI, VIR_DOMAIN_AFFECT_CURRENT);
    }
    if (!text)
        s_error (self, "domain %.64s has no umbra metadata", name);
    virDomainFree (domain);
    return text;
}

//  --------------------------------------------------------------------------
//  Events (these callbacks run on the event thread)

static int
s_on_lifecycle (virConnectPtr conn, virDomainPtr domain, int event, int detail, void *opaque)
{
    umb_virt_t *self = (umb_virt_t *) opaque;
    const char *name = virDomainGetName (domain);
    if (name)
        self->fn (name, event, detail, self->arg);
    return 0;
}

static void
s_on_close (virConnectPtr conn, int reason, void *opaque)
{
    umb_virt_t *self = (umb_virt_t *) opaque;
    self->fn (NULL, UMB_VIRT_EVENT_CONNECTION_LOST, reason, self->arg);
}

//  libvirt drops the lifecycle callback: after this it never runs again
static void
s_on_callback_freed (void *opaque)
{
    umb_virt_t *self = (umb_virt_t *) opaque;
    pthread_mutex_lock (&self->mutex);
    self->callback_freed = true;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->mutex);
}

int
umb_virt_events_start (umb_virt_t *self, umb_virt_event_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    if (self->callback_id >= 0) {
        snprintf (self->error, sizeof self->error, "events are already started");
        return -1;
    }
    self->fn = fn;
    self->arg = arg;
    self->callback_freed = false;
    self->callback_id = virConnectDomainEventRegisterAny (
        self->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        VIR_DOMAIN_EVENT_CALLBACK (s_on_lifecycle), self, s_on_callback_freed);
    if (self->callback_id < 0) {
        s_error (self, "cannot register for domain events");
        self->callback_id = -1;
        return -1;
    }
    if (virConnectRegisterCloseCallback (self->conn, s_on_close, self, NULL) == 0)
        self->close_registered = true;
    else
        virResetLastError ();
    return 0;
}

void
umb_virt_events_stop (umb_virt_t *self)
{
    assert (self);
    if (self->close_registered) {
        //  libvirt holds the callback's lock while calling it: once this
        //  returns, the close callback is not running
        if (virConnectUnregisterCloseCallback (self->conn, s_on_close) < 0)
            virResetLastError ();
        self->close_registered = false;
    }
    if (self->callback_id < 0)
        return;
    if (virConnectDomainEventDeregisterAny (self->conn, self->callback_id) < 0)
        virResetLastError ();
    self->callback_id = -1;
    //  While libvirt is dispatching it only marks the callback deleted and
    //  frees it after the dispatch: wait for that, bounded
    struct timespec deadline;
    clock_gettime (CLOCK_REALTIME, &deadline);
    deadline.tv_sec += S_EVENTS_STOP_WAIT_S;
    pthread_mutex_lock (&self->mutex);
    while (!self->callback_freed)
        if (pthread_cond_timedwait (&self->cond, &self->mutex, &deadline) == ETIMEDOUT)
            break;
    bool freed = self->callback_freed;
    pthread_mutex_unlock (&self->mutex);
    assert (freed);     //  libvirt always frees a deregistered callback
}

const char *
umb_virt_event_str (int event)
{
    static const char *names [] = {
        "defined", "undefined", "started", "suspended", "resumed",
        "stopped", "shutdown", "pmsuspended", "crashed"
    };
    if (event >= 0 && (size_t) event < sizeof names / sizeof names [0])
        return names [event];
    if (event == UMB_VIRT_EVENT_CONNECTION_LOST)
        return "connection-lost";
    return "unknown";
}

const char *
umb_virt_state_str (int state)
{
    static const char *names [] = {
        "nostate", "running", "blocked", "paused", "shutdown", "shutoff", "crashed", "pmsuspended"
    };
    if (state >= 0 && (size_t) state < sizeof names / sizeof names [0])
        return names [state];
    return "unknown";
}

//  --------------------------------------------------------------------------
//  Selftest

#include <poll.h>
#include <unistd.h>

typedef struct {
    char name [64];
    int event;
    int detail;
} s_record_t;

//  What a service does: copy the event out through a socket and return
static void
s_forward (const char *name, int event, int detail, void *arg)
{
    int fd = *(int *) arg;
    s_record_t record = { .event = event, .detail = detail };
    snprintf (record.name, sizeof record.name, "%s", name? name: "");
    ssize_t rc = write (fd, &record, sizeof record);
    assert (rc == (ssize_t) sizeof record);
}

//  Waits (up to 5 s) for the event (name, event) and returns its detail;
//  events of other domains, or earlier events, are skipped
static int
s_expect_event (int fd, const char *name, int event, bool verbose)
{
    while (true) {
        struct pollfd item = { .fd = fd, .events = POLLIN };
        int ready = poll (&item, 1, 5000);
        assert (ready == 1);
        s_record_t record;
        ssize_t rc = read (fd, &record, sizeof record);
        assert (rc == (ssize_t) sizeof record);
        if (verbose)
            printf ("  event %s %s/%d\n", record.name, umb_virt_event_str (record.event), record.detail);
        if (strcmp (record.name, name) == 0 && record.event == event)
            return record.detail;
    }
}

static char *
s_test_xml (const char *name, const char *cvm_id)
{
    umb_domain_spec_t spec = {
        .name = name, .tee = "none", .virt_type = "qemu", .vcpus = 1, .memory_mib = 256,
        .kernel = "/var/cache/umbra/eos/vmlinux", .initrd = "/var/cache/umbra/eos/initramfs.cpio.gz",
        .cmdline = "console=ttyS0", .channel_path = "/run/umbra/test-link.sock",
        .serial_log = "/tmp/umbra-test-console.log",
        .cvm_id = cvm_id, .workspace = "ws1", .created = 1700000000, .ttl = 60
    };
    char reason [256];
    char *xml = umb_domain_xml (&spec, reason, sizeof reason);
    assert (xml);
    return xml;
}

void
umb_virt_test (bool verbose)
{
    if (verbose)
        printf (" * umb_virt:\n");
    char reason [512];

    //  URIs
    assert (umb_virt_uri_check ("qemu:///system", reason, sizeof reason) == 0);
    assert (umb_virt_uri_check ("qemu:///session", reason, sizeof reason) == 0);
    assert (umb_virt_uri_check ("qemu+ssh://root@host.example/system?keyfile=/k", reason, sizeof reason) == 0);
    assert (umb_virt_uri_check ("qemu+tls://host.example:16514/system", reason, sizeof reason) == 0);
    assert (umb_virt_uri_check ("qemu+unix:///system?socket=/run/libvirt/libvirt-sock", reason, sizeof reason) == 0);
    assert (umb_virt_uri_check ("test:///default", reason, sizeof reason) == 0);
    assert (umb_virt_uri_check ("http://x", reason, sizeof reason) == -1);
    assert (strstr (reason, "is not a libvirt host URI"));
    assert (umb_virt_uri_check ("xen:///system", reason, sizeof reason) == -1);
    assert (umb_virt_uri_check ("qemu+ext:///system?command=/bin/sh", reason, sizeof reason) == -1);
    assert (umb_virt_uri_check ("qemu", reason, sizeof reason) == -1);
    assert (umb_virt_uri_check ("", reason, sizeof reason) == -1);
    assert (umb_virt_uri_check (NULL, reason, sizeof reason) == -1);
    assert (umb_virt_uri_check ("qemu:///embed?root=/tmp", reason, sizeof reason) == -1);
    assert (strstr (reason, "/system or /session"));
    assert (umb_virt_uri_check ("qemu+ssh://host", reason, sizeof reason) == -1);
    assert (umb_virt_uri_check ("test:///default x", reason, sizeof reason) == -1);
    assert (umb_virt_open ("http://x", reason, sizeof reason) == NULL);
    assert (strstr (reason, "is not a libvirt host URI"));

    //  An unreachable host fails at once with libvirt's reason
    umb_virt_t *virt = umb_virt_open ("qemu+unix:///system?socket=/nonexistent/libvirt-sock",
                                      reason, sizeof reason);
    assert (virt == NULL);
    if (verbose)
        printf ("  unreachable: %s\n", reason);
    assert (strstr (reason, "cannot connect to qemu+unix:///system"));
    assert (strstr (reason, "/nonexistent/libvirt-sock"));
    //  ... also over ssh (the name cannot resolve: .invalid is reserved)
    virt = umb_virt_open ("qemu+ssh://nonexistent.invalid/system", reason, sizeof reason);
    assert (virt == NULL);
    if (verbose)
        printf ("  unreachable: %s\n", reason);
    assert (strstr (reason, "cannot connect to qemu+ssh://nonexistent.invalid/system: "));

    virt = umb_virt_open ("test:///default", reason, sizeof reason);
    assert (virt);
    assert (umb_virt_alive (virt));
    assert (strcmp (umb_virt_uri (virt), "test:///default") == 0);

    //  Capabilities: test:/// has 16 CPUs, 8 GiB, no TEE, no KVM
    umb_virt_caps_t caps;
    assert (umb_virt_caps (virt, &caps) == 0);
    if (verbose)
        printf ("  caps: arch %s, %u cpus, %" PRIu64 " MiB (%" PRIu64 " free), kvm %d sev %d snp %d tdx %d\n",
                caps.arch, caps.cpus, caps.memory_mib, caps.free_memory_mib,
                caps.kvm, caps.sev, caps.sev_snp, caps.tdx);
    assert (caps.cpus > 0);
    assert (caps.memory_mib > 0);
    assert (!caps.kvm && !caps.sev && !caps.sev_snp && !caps.tdx);

    //  Events through a socket, as the backends actor receives them
    int pair [2];
    int rc = pipe (pair);
    assert (rc == 0);
    assert (umb_virt_events_start (virt, s_forward, &pair [1]) == 0);
    assert (umb_virt_events_start (virt, s_forward, &pair [1]) == -1);

    //  define + start from umb_domain's XML
    char *xml = s_test_xml ("umbra-vtest-t1", "t1");
    char uuid [UMB_VIRT_UUID_SIZE];
    assert (umb_virt_domain_create (virt, xml, uuid) == 0);
    free (xml);
    assert (strlen (uuid) == 36);
    s_expect_event (pair [0], "umbra-vtest-t1", UMB_VIRT_EVENT_DEFINED, verbose);
    s_expect_event (pair [0], "umbra-vtest-t1", UMB_VIRT_EVENT_STARTED, verbose);
    assert (umb_virt_domain_state (virt, "umbra-vtest-t1") == UMB_VIRT_STATE_RUNNING);

    umb_virt_domain_t info;
    assert (umb_virt_domain_lookup (virt, "umbra-vtest-t1", &info) == 1);
    assert (strcmp (info.uuid, uuid) == 0);
    assert (info.active && info.persistent && info.id > 0);
    assert (info.vcpus == 1 && info.memory_mib == 256);
    assert (umb_virt_domain_lookup (virt, uuid, &info) == 1);
    assert (strcmp (info.name, "umbra-vtest-t1") == 0);
    assert (umb_virt_domain_lookup (virt, "umbra-vtest-missing", &info) == 0);
    assert (umb_virt_domain_lookup (virt, "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", NULL) == 0);

    char *path = umb_virt_domain_channel_path (virt, "umbra-vtest-t1", NULL);
    assert (path && strcmp (path, "/run/umbra/test-link.sock") == 0);
    free (path);
    assert (umb_virt_domain_channel_path (virt, "umbra-vtest-t1", "org.other") == NULL);
    assert (umb_virt_domain_channel_path (virt, "umbra-vtest-missing", NULL) == NULL);

    char *metadata = umb_virt_domain_metadata (virt, "umbra-vtest-t1");
    assert (metadata);
    umb_domain_meta_t meta;
    assert (umb_domain_meta_parse (metadata, &meta, reason, sizeof reason) == 0);
    assert (strcmp (meta.cvm_id, "t1") == 0 && strcmp (meta.workspace, "ws1") == 0);
    assert (meta.ttl == 60);
    free (metadata);
    //  test:///default's own domain has no umbra metadata
    assert (umb_virt_domain_metadata (virt, "test") == NULL);

    //  A second, only defined; list by prefix (test:///default has "test" too)
    xml = s_test_xml ("umbra-vtest-t0", "t0");
    assert (umb_virt_domain_define (virt, xml, NULL) == 0);
    free (xml);
    s_expect_event (pair [0], "umbra-vtest-t0", UMB_VIRT_EVENT_DEFINED, verbose);
    assert (umb_virt_domain_state (virt, "umbra-vtest-t0") == UMB_VIRT_STATE_SHUTOFF);
    umb_virt_domain_t *list;
    size_t count;
    assert (umb_virt_domain_list (virt, "umbra-vtest-", &list, &count) == 0);
    assert (count == 2);
    assert (strcmp (list [0].name, "umbra-vtest-t0") == 0 && !list [0].active && list [0].id == -1);
    assert (strcmp (list [1].name, "umbra-vtest-t1") == 0 && list [1].active);
    free (list);
    assert (umb_virt_domain_list (virt, NULL, &list, &count) == 0);
    assert (count >= 3);        //  and test:///default's own "test"
    free (list);

    //  Invalid XML and a duplicate are refused with libvirt's reason
    assert (umb_virt_domain_create (virt, "<domain>", NULL) == -1);
    assert (strstr (umb_virt_error (virt), "cannot define the domain"));
    xml = s_test_xml ("umbra-vtest-t1", "t1");
    assert (umb_virt_domain_create (virt, xml, NULL) == -1);
    if (verbose)
        printf ("  duplicate: %s\n", umb_virt_error (virt));
    assert (strstr (umb_virt_error (virt), "domain umbra-vtest-t1 already exists (same name)"));
    free (xml);
    //  ... also under another name with the same UUID; the original is untouched
    umb_domain_spec_t clash = {
        .name = "umbra-vtest-t9", .uuid = uuid, .vcpus = 1, .memory_mib = 128,
        .kernel = "/vmlinux", .cvm_id = "t9" };
    xml = umb_domain_xml (&clash, reason, sizeof reason);
    assert (xml);
    assert (umb_virt_domain_create (virt, xml, NULL) == -1);
    assert (strstr (umb_virt_error (virt), "(same uuid)"));
    free (xml);
    assert (umb_virt_domain_state (virt, "umbra-vtest-t1") == UMB_VIRT_STATE_RUNNING);
    assert (umb_virt_domain_lookup (virt, "umbra-vtest-t1", &info) == 1 && info.persistent);
    assert (umb_virt_domain_lookup (virt, "umbra-vtest-t9", NULL) == 0);

    //  destroy, undefine (idempotent)
    assert (umb_virt_domain_destroy (virt, "umbra-vtest-t1") == 0);
    int detail = s_expect_event (pair [0], "umbra-vtest-t1", UMB_VIRT_EVENT_STOPPED, verbose);
    assert (detail == UMB_VIRT_STOPPED_DESTROYED);
    assert (umb_virt_domain_state (virt, "umbra-vtest-t1") == UMB_VIRT_STATE_SHUTOFF);
    assert (umb_virt_domain_destroy (virt, "umbra-vtest-t1") == 0);
    assert (umb_virt_domain_destroy (virt, "umbra-vtest-missing") == -1);
    assert (umb_virt_domain_undefine (virt, "umbra-vtest-t1") == 0);
    s_expect_event (pair [0], "umbra-vtest-t1", UMB_VIRT_EVENT_UNDEFINED, verbose);
    assert (umb_virt_domain_undefine (virt, "umbra-vtest-t1") == 0);
    assert (umb_virt_domain_state (virt, "umbra-vtest-t1") == -1);

    //  Undefine of a running domain stops it first
    assert (umb_virt_domain_start (virt, "umbra-vtest-t0") == 0);
    s_expect_event (pair [0], "umbra-vtest-t0", UMB_VIRT_EVENT_STARTED, verbose);
    assert (umb_virt_domain_shutdown (virt, "umbra-vtest-t0") == 0);
    s_expect_event (pair [0], "umbra-vtest-t0", UMB_VIRT_EVENT_STOPPED, verbose);
    assert (umb_virt_domain_start (virt, "umbra-vtest-t0") == 0);
    s_expect_event (pair [0], "umbra-vtest-t0", UMB_VIRT_EVENT_STARTED, verbose);
    assert (umb_virt_domain_undefine (virt, "umbra-vtest-t0") == 0);
    s_expect_event (pair [0], "umbra-vtest-t0", UMB_VIRT_EVENT_UNDEFINED, verbose);
    assert (umb_virt_domain_lookup (virt, "umbra-vtest-t0", NULL) == 0);
    assert (umb_virt_domain_list (virt, "umbra-vtest-", &list, &count) == 0);
    assert (count == 0);
    free (list);

    //  After events_stop nothing more arrives
    umb_virt_events_stop (virt);
    umb_virt_events_stop (virt);
    xml = s_test_xml ("umbra-vtest-t2", "t2");
    assert (umb_virt_domain_define (virt, xml, NULL) == 0);
    assert (umb_virt_domain_undefine (virt, "umbra-vtest-t2") == 0);
    free (xml);
    struct pollfd item = { .fd = pair [0], .events = POLLIN };
    assert (poll (&item, 1, 0) == 0);

    //  Two connections at once share the one event thread, each with its
    //  own subscriber (test:///default is one host for the whole process, so
    //  both see the domain)
    int pair2 [2];
    rc = pipe (pair2);
    assert (rc == 0);
    umb_virt_t *other = umb_virt_open ("test:///default", reason, sizeof reason);
    assert (other);
    assert (umb_virt_events_start (other, s_forward, &pair2 [1]) == 0);
    assert (umb_virt_events_start (virt, s_forward, &pair [1]) == 0);
    xml = s_test_xml ("umbra-vtest-t3", "t3");
    assert (umb_virt_domain_define (other, xml, NULL) == 0);
    free (xml);
    s_expect_event (pair2 [0], "umbra-vtest-t3", UMB_VIRT_EVENT_DEFINED, verbose);
    s_expect_event (pair [0], "umbra-vtest-t3", UMB_VIRT_EVENT_DEFINED, verbose);
    assert (umb_virt_domain_lookup (virt, "umbra-vtest-t3", NULL) == 1);
    umb_virt_destroy (&other);
    assert (other == NULL);
    //  virt still works and still hears events after other is gone
    assert (umb_virt_domain_undefine (virt, "umbra-vtest-t3") == 0);
    s_expect_event (pair [0], "umbra-vtest-t3", UMB_VIRT_EVENT_UNDEFINED, verbose);
    umb_virt_destroy (&virt);
    umb_virt_destroy (&virt);
    assert (virt == NULL);
    assert (poll (&item, 1, 0) == 0);
    item.fd = pair2 [0];
    assert (poll (&item, 1, 0) == 0);
    close (pair2 [0]);
    close (pair2 [1]);
    close (pair [0]);
    close (pair [1]);

    //  The event thread restarts for a new connection
    virt = umb_virt_open ("test:///default", reason, sizeof reason);
    assert (virt);
    assert (umb_virt_alive (virt));
    umb_virt_destroy (&virt);

    assert (strcmp (umb_virt_event_str (UMB_VIRT_EVENT_CRASHED), "crashed") == 0);
    assert (strcmp (umb_virt_event_str (UMB_VIRT_EVENT_CONNECTION_LOST), "connection-lost") == 0);
    assert (strcmp (umb_virt_event_str (42), "unknown") == 0);
    assert (strcmp (umb_virt_state_str (UMB_VIRT_STATE_SHUTOFF), "shutoff") == 0);
    if (verbose)
        printf ("OK\n");
}
