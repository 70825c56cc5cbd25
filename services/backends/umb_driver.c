//  umb_driver - the backends service's three drivers: libvirt, test, process
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <czmq.h>
#include "umb_driver.h"
#include "umb_domain.h"
#include "umb_sched.h"
#include "umb_bridge.h"
#include "umb_testkit.h"

#define S_STOP_GRACE_MS 2000        //  SIGTERM, then SIGKILL

//  A child of the process driver: the agent, and the guest side of its link
typedef struct {
    char      cvm_id [64];
    pid_t     pid;
    int       pidfd;
    zactor_t *guest_bridge;
    char     *dir;
} s_child_t;

struct _umb_driver_t {
    umb_driver_kind_t kind;
    char             *uri;
    umb_driver_env_t  env;
    umb_virt_t       *virt;         //  libvirt, test
    bool              kvm;          //  libvirt, test: domain type kvm offered (as the caps said)
    zhashx_t         *children;     //  process: cvm id -> s_child_t
};

static const char *const s_kind_names [] = { "libvirt", "test", "process" };

//  ---------------------------------------------------------------- URIs

int
umb_driver_kind_of_uri (const char *uri, char *reason, size_t reason_size)
{
    assert (uri);
    if (strncmp (uri, "process://", 10) == 0) {
        const char *rest = uri + 10;
        if (*rest != '/') {
            snprintf (reason, reason_size, "uri: a process host is process:/// or "
                      "process:///LABEL, not '%.64s'", uri);
            return -1;
        }
        for (const char *c = rest + 1; *c; c++)
            if (!(isalnum ((unsigned char) *c) || strchr ("._-", *c))) {
                snprintf (reason, reason_size, "uri: the label of a process host is letters, "
                          "digits, '.', '_' and '-'");
                return -1;
            }
        return UMB_DRIVER_PROCESS;
    }
    char why [400];
    if (umb_virt_uri_check (uri, why, sizeof why)) {
        snprintf (reason, reason_size, "uri: %s", why);
        return -1;
    }
    return strncmp (uri, "test:", 5) == 0 ? UMB_DRIVER_TEST : UMB_DRIVER_LIBVIRT;
}

const char *
umb_driver_kind_str (umb_driver_kind_t kind)
{
    assert ((unsigned) kind <= UMB_DRIVER_PROCESS);
    return s_kind_names [kind];
}

int
umb_driver_kind_parse (const char *name)
{
    for (int index = 0; name && index <= UMB_DRIVER_PROCESS; index++)
        if (streq (name, s_kind_names [index]))
            return index;
    return -1;
}

//  ---------------------------------------------------------------- helpers

static int
s_pidfd_open (pid_t pid)
{
    return (int) syscall (SYS_pidfd_open, pid, 0);
}

static int
s_pidfd_signal (int pidfd, int signal)
{
    return (int) syscall (SYS_pidfd_send_signal, pidfd, signal, NULL, 0);
}

static int
s_make_dirs (const char *path)
{
    char *copy = strdup (path);
    assert (copy);
    for (char *slash = strchr (copy + 1, '/'); slash; slash = strchr (slash + 1, '/')) {
        *slash = 0;
        if (mkdir (copy, 0700) && errno != EEXIST) {
            free (copy);
            return -1;
        }
        *slash = '/';
    }
    int rc = mkdir (copy, 0700) && errno != EEXIST ? -1 : 0;
    free (copy);
    return rc;
}

static int
s_remove_entry (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info; (void) flag; (void) ftw;
    remove (path);
    return 0;
}

static void
s_remove_tree (const char *path)
{
    nftw (path, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *
s_read_text (const char *path)
{
    FILE *file = fopen (path, "re");
    if (!file)
        return NULL;
    char buffer [4096];
    size_t size = fread (buffer, 1, sizeof buffer - 1, file);
    fclose (file);
    buffer [size] = 0;
    while (size > 0 && (buffer [size - 1] == '\n' || buffer [size - 1] == ' '))
        buffer [--size] = 0;
    return strdup (buffer);
}

static void
s_child_destroy (s_child_t **child_p)
{
    s_child_t *child = *child_p;
    if (!child)
        return;
    if (child->pidfd >= 0) {
        //  SIGTERM, a grace period, then SIGKILL; always reaped
        if (s_pidfd_signal (child->pidfd, SIGTERM) == 0) {
            struct pollfd item = { .fd = child->pidfd, .events = POLLIN };
            if (poll (&item, 1, S_STOP_GRACE_MS) == 0)
                s_pidfd_signal (child->pidfd, SIGKILL);
        }
        int status;
        while (waitpid (child->pid, &status, 0) == -1 && errno == EINTR)
            ;
        close (child->pidfd);
    }
    zactor_destroy (&child->guest_bridge);
    if (child->dir) {
        s_remove_tree (child->dir);
        free (child->dir);
    }
    free (child);
    *child_p = NULL;
}

static void
s_child_free (void **item)
{
    s_child_destroy ((s_child_t **) item);
}

//  ---------------------------------------------------------------- open

umb_driver_t *
umb_driver_open (umb_driver_kind_t kind, const char *uri, const umb_driver_env_t *env,
                 char *reason, size_t reason_size)
{
    assert (uri && env);
    umb_driver_t *self = calloc (1, sizeof (umb_driver_t));
    assert (self);
    self->kind = kind;
    self->uri = strdup (uri);
    self->env = *env;
    if (kind == UMB_DRIVER_PROCESS) {
        if (!env->agent_path || access (env->agent_path, X_OK)) {
            snprintf (reason, reason_size, "the agent %s cannot be run: %s",
                      env->agent_path ? env->agent_path : "(none)", strerror (errno));
            umb_driver_destroy (&self);
            return NULL;
        }
        self->children = zhashx_new ();
        zhashx_set_destructor (self->children, s_child_free);
        return self;
    }
    self->virt = umb_virt_open (uri, reason, reason_size);
    if (!self->virt)
        umb_driver_destroy (&self);
    return self;
}

void
umb_driver_destroy (umb_driver_t **self_p)
{
    assert (self_p);
    umb_driver_t *self = *self_p;
    if (self) {
        //  Children die with their driver (as VMs do not: libvirt keeps them)
        zhashx_destroy (&self->children);
        umb_virt_destroy (&self->virt);
        free (self->uri);
        free (self);
        *self_p = NULL;
    }
}

umb_driver_kind_t
umb_driver_kind (umb_driver_t *self)
{
    assert (self);
    return self->kind;
}

bool
umb_driver_alive (umb_driver_t *self)
{
    assert (self);
    return self->virt ? umb_virt_alive (self->virt) : true;
}

//  ---------------------------------------------------------------- caps

int
umb_driver_caps (umb_driver_t *self, umb_driver_caps_t *caps, char *reason, size_t reason_size)
{
    assert (self && caps);
    memset (caps, 0, sizeof *caps);
    if (self->kind == UMB_DRIVER_PROCESS) {
        struct sysinfo info;
        if (sysinfo (&info)) {
            snprintf (reason, reason_size, "sysinfo: %s", strerror (errno));
            return -1;
        }
        caps->cpus = sysconf (_SC_NPROCESSORS_ONLN);
        caps->memory_mb = (int64_t) ((uint64_t) info.totalram * info.mem_unit / (1024 * 1024));
        snprintf (caps->tees, sizeof caps->tees, "none");
        caps->tee_mask = UMB_SCHED_TEE_BIT (UMB_DOMAIN_TEE_NONE);
        return 0;
    }
    umb_virt_caps_t virt;
    if (umb_virt_caps (self->virt, &virt)) {
        snprintf (reason, reason_size, "cannot read the capabilities of %s: %s", self->uri,
                  umb_virt_error (self->virt));
        return -1;
    }
    caps->cpus = virt.cpus;
    caps->memory_mb = (int64_t) virt.memory_mib;
    caps->kvm = virt.kvm;
    self->kvm = virt.kvm;
    caps->tee_mask = UMB_SCHED_TEE_BIT (UMB_DOMAIN_TEE_NONE);
    snprintf (caps->tees, sizeof caps->tees, "none");
    if (virt.sev_snp) {
        caps->tee_mask |= UMB_SCHED_TEE_BIT (UMB_DOMAIN_TEE_SEV_SNP);
        strcat (caps->tees, ",sev-snp");
    }
    if (virt.tdx) {
        caps->tee_mask |= UMB_SCHED_TEE_BIT (UMB_DOMAIN_TEE_TDX);
        strcat (caps->tees, ",tdx");
    }
    return 0;
}

//  ---------------------------------------------------------------- process

//  fork + exec with the agent's output in log_path; the child dies with the
//  thread that made it (the service's worker). Returns once the child has
//  exec'd, so its death signal is armed while that thread still lives (a
//  thread ending between fork and prctl would leave the agent running on
//  its own); -1 with errno when it could not exec.
static pid_t
s_spawn (char *const argv [], const char *log_path)
{
    int log_fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return -1;
    //  Closed by a successful exec; carries errno back when exec fails
    int ready [2];
    if (pipe2 (ready, O_CLOEXEC)) {
        int saved = errno;
        close (log_fd);
        errno = saved;
        return -1;
    }
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == 0) {
        close (ready [0]);
        int failure = 0;
        if (prctl (PR_SET_PDEATHSIG, SIGKILL) || getppid () != parent)
            failure = ESRCH;
        int null_fd = failure ? -1 : open ("/dev/null", O_RDONLY);
        if (null_fd >= 0)
            dup2 (null_fd, 0);
        if (!failure) {
            dup2 (log_fd, 1);
            dup2 (log_fd, 2);
            //  The service blocks its stop signals; the agent must not inherit that
            sigset_t none;
            sigemptyset (&none);
            sigprocmask (SIG_SETMASK, &none, NULL);
            execv (argv [0], argv);
            failure = errno;
        }
        ssize_t wrote = write (ready [1], &failure, sizeof failure);
        (void) wrote;
        _exit (127);
    }
    int saved = errno;
    close (log_fd);
    close (ready [1]);
    if (pid < 0) {
        close (ready [0]);
        errno = saved;
        return -1;
    }
    int failure = 0;
    ssize_t got;
    while ((got = read (ready [0], &failure, sizeof failure)) < 0 && errno == EINTR)
        ;
    close (ready [0]);
    if (got > 0) {
        while (waitpid (pid, NULL, 0) == -1 && errno == EINTR)
            ;
        errno = failure ? failure : ECHILD;
        return -1;
    }
    return pid;
}

static int
s_process_create (umb_driver_t *self, const umb_driver_spec_t *spec,
                  umb_driver_started_t *started, char *reason, size_t reason_size)
{
    if (zhashx_lookup (self->children, spec->cvm_id)) {
        snprintf (reason, reason_size, "CVM %s runs already", spec->cvm_id);
        return -1;
    }
    s_child_t *child = calloc (1, sizeof (s_child_t));
    assert (child);
    snprintf (child->cvm_id, sizeof child->cvm_id, "%s", spec->cvm_id);
    child->pidfd = -1;
    child->dir = zsys_sprintf ("%s/%s", self->env.work_dir, spec->cvm_id);
    char *agent_dir = zsys_sprintf ("%s/agent", child->dir);
    char *log_path = zsys_sprintf ("%s/agent.log", child->dir);
    int pair [2] = { -1, -1 };
    int rc = -1;
    if (s_make_dirs (agent_dir)) {
        snprintf (reason, reason_size, "cannot make %s: %s", agent_dir, strerror (errno));
        goto done;
    }
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair)) {
        snprintf (reason, reason_size, "socketpair: %s", strerror (errno));
        goto done;
    }
    //  The guest side of the link, as the guest image runs it
    //  The agent's endpoints are abstract unix sockets named after the CVM:
    //  nothing to pick (a TCP port picked here could be taken by another
    //  process before the agent binds it) and nothing left on disk
    char link [32], agent_ep [96], attest_ep [96];
    snprintf (link, sizeof link, "fd:%d", pair [1]);
    snprintf (agent_ep, sizeof agent_ep, "ipc://@umbra-%d-%s-agent", (int) getpid (), spec->cvm_id);
    snprintf (attest_ep, sizeof attest_ep, "ipc://@umbra-%d-%s-attest", (int) getpid (),
              spec->cvm_id);
    umb_bridge_route_t targets [] = {
        { "control", agent_ep }, { "agent", agent_ep }, { "attest", attest_ep }
    };
    char *bridge_reason = NULL;
    child->guest_bridge = umb_bridge_actor_new (&(umb_bridge_config_t) {
        .link = link, .targets = targets, .targets_count = 3, .log = self->env.log },
        &bridge_reason);
    if (!child->guest_bridge) {
        snprintf (reason, reason_size, "the guest side of the bridge: %s",
                  bridge_reason ? bridge_reason : "cannot start");
        free (bridge_reason);
        close (pair [1]);
        pair [1] = -1;
        goto done;
    }
    pair [1] = -1;                      //  the bridge owns it
    char *argv [] = {
        (char *) self->env.agent_path, "--listen", agent_ep, "--attest-listen", attest_ep,
        "--workdir", agent_dir, "--attestation", "none",
        "--control-key", (char *) self->env.control_key, NULL
    };
    child->pid = s_spawn (argv, log_path);
    if (child->pid <= 0) {
        snprintf (reason, reason_size, "cannot start %s: %s", self->env.agent_path,
                  strerror (errno));
        goto done;
    }
    child->pidfd = s_pidfd_open (child->pid);
    if (child->pidfd < 0) {
        snprintf (reason, reason_size, "pidfd_open: %s", strerror (errno));
        kill (child->pid, SIGKILL);
        waitpid (child->pid, NULL, 0);
        goto done;
    }
    started->has_agent = true;
    started->link_fd = pair [0];
    snprintf (started->link, sizeof started->link, "fd:%d", pair [0]);
    pair [0] = -1;
    started->pid = child->pid;
    started->pidfd = fcntl (child->pidfd, F_DUPFD_CLOEXEC, 3);
    zhashx_insert (self->children, spec->cvm_id, child);
    child = NULL;
    rc = 0;
done:
    if (pair [0] >= 0)
        close (pair [0]);
    if (pair [1] >= 0)
        close (pair [1]);
    s_child_destroy (&child);
    free (agent_dir);
    free (log_path);
    return rc;
}

//  ---------------------------------------------------------------- libvirt

static int
s_virt_create (umb_driver_t *self, const umb_driver_spec_t *spec,
               umb_driver_started_t *started, char *reason, size_t reason_size)
{
    bool test = self->kind == UMB_DRIVER_TEST;
    const char *image = self->env.image_dir ? self->env.image_dir : "/var/cache/umbra/eos";
    char *kernel = zsys_sprintf ("%s/vmlinux", image);
    char *initrd = zsys_sprintf ("%s/initramfs.cpio.gz", image);
    char *cmdline_path = zsys_sprintf ("%s/cmdline", image);
    char *base = s_read_text (cmdline_path);
    int tee = umb_domain_tee_parse (spec->tee);
    const char *attestation = tee == UMB_DOMAIN_TEE_SEV_SNP ? "snp"
                            : tee == UMB_DOMAIN_TEE_TDX ? "tdx" : "none";
    char *cmdline = zsys_sprintf ("%s%sumbra.attestation=%s umbra.control_key=%s",
                                  base ? base : "console=ttyS0", " ", attestation,
                                  self->env.control_key);
    char name [UMB_DOMAIN_NAME_MAX + 8];
    snprintf (name, sizeof name, "%s%s", UMB_DOMAIN_NAME_PREFIX, spec->cvm_id);
    int rc = -1;
    char *xml = NULL;
    if (!test && (access (kernel, R_OK) || access (initrd, R_OK))) {
        snprintf (reason, reason_size, "the guest image is missing in %s (vmlinux, "
                  "initramfs.cpio.gz): build it with guest/eos", image);
        goto done;
    }
    //  A TEE needs KVM (the template's default); a none VM is KVM when usable
    const char *virt_type = NULL;
    if (tee == UMB_DOMAIN_TEE_NONE) {
        const char *accel = self->env.none_accel ? self->env.none_accel : "auto";
        virt_type = streq (accel, "kvm") || (streq (accel, "auto") && self->kvm && !test)
                  ? "kvm" : "qemu";
    }
    //  A confidential VM boots the firmware its TEE type needs, from the settings
    const char *loader = tee == UMB_DOMAIN_TEE_SEV_SNP ? self->env.firmware_snp
                       : tee == UMB_DOMAIN_TEE_TDX ? self->env.firmware_tdx : NULL;
    const char *igvm = tee == UMB_DOMAIN_TEE_SEV_SNP ? self->env.igvm_snp : NULL;
    if (tee != UMB_DOMAIN_TEE_NONE && !(loader && *loader) && !(igvm && *igvm)) {
        snprintf (reason, reason_size, "no firmware for %s VMs: set %s", spec->tee,
                  tee == UMB_DOMAIN_TEE_TDX ? "backends.firmware_tdx (TDVF)"
                                            : "backends.firmware_snp (OVMF for SEV-SNP) or "
                                              "backends.igvm_snp");
        goto done;
    }
    umb_domain_spec_t domain = {
        .name = name, .tee = spec->tee, .virt_type = virt_type,
        .loader = loader && *loader ? loader : NULL, .igvm = igvm && *igvm ? igvm : NULL,
        .vcpus = spec->vcpus, .memory_mib = spec->memory_mb,
        .kernel = kernel, .initrd = initrd, .cmdline = cmdline,
        .channel_path = test ? NULL : "",
        .cvm_id = spec->cvm_id, .owner = self->env.control_key, .workspace = spec->workspace,
        .created = spec->created, .ttl = spec->ttl
    };
    xml = umb_domain_xml (&domain, reason, reason_size);
    if (!xml)
        goto done;
    if (umb_virt_domain_create (self->virt, xml, NULL)) {
        snprintf (reason, reason_size, "%s", umb_virt_error (self->virt));
        goto done;
    }
    started->has_agent = !test;
    snprintf (started->accel, sizeof started->accel, "%s",
              test ? "" : virt_type && streq (virt_type, "qemu") ? "tcg" : "kvm");
    started->pidfd = -1;
    started->link_fd = -1;
    if (!test) {
        char *path = umb_virt_domain_channel_path (self->virt, name, NULL);
        if (!path) {
            snprintf (reason, reason_size, "the domain has no %s channel: %s",
                      UMB_DOMAIN_CHANNEL_NAME, umb_virt_error (self->virt));
            umb_virt_domain_undefine (self->virt, name);
            goto done;
        }
        snprintf (started->link, sizeof started->link, "unix-connect:%s", path);
        free (path);
    }
    rc = 0;
done:
    free (xml);
    free (kernel);
    free (initrd);
    free (cmdline_path);
    free (base);
    free (cmdline);
    return rc;
}

int
umb_driver_create (umb_driver_t *self, const umb_driver_spec_t *spec,
                   umb_driver_started_t *started, char *reason, size_t reason_size)
{
    assert (self && spec && started);
    memset (started, 0, sizeof *started);
    started->pidfd = -1;
    started->link_fd = -1;
    return self->kind == UMB_DRIVER_PROCESS
         ? s_process_create (self, spec, started, reason, reason_size)
         : s_virt_create (self, spec, started, reason, reason_size);
}

int
umb_driver_teardown (umb_driver_t *self, const char *cvm_id, char *reason, size_t reason_size)
{
    assert (self && cvm_id);
    if (self->kind == UMB_DRIVER_PROCESS) {
        zhashx_delete (self->children, cvm_id);
        return 0;
    }
    char name [UMB_DOMAIN_NAME_MAX + 8];
    snprintf (name, sizeof name, "%s%s", UMB_DOMAIN_NAME_PREFIX, cvm_id);
    //  destroy fails when the domain is gone already: undefine says the rest
    umb_virt_domain_destroy (self->virt, name);
    if (umb_virt_domain_undefine (self->virt, name)) {
        snprintf (reason, reason_size, "cannot undefine %s: %s", name,
                  umb_virt_error (self->virt));
        return -1;
    }
    return 0;
}

int
umb_driver_list (umb_driver_t *self, char ***ids_p, char *reason, size_t reason_size)
{
    assert (self && ids_p);
    *ids_p = NULL;
    if (self->kind == UMB_DRIVER_PROCESS) {
        size_t count = zhashx_size (self->children);
        char **ids = calloc (count + 1, sizeof (char *));
        assert (ids);
        size_t index = 0;
        for (s_child_t *child = zhashx_first (self->children); child;
             child = zhashx_next (self->children))
            ids [index++] = strdup (child->cvm_id);
        *ids_p = ids;
        return 0;
    }
    umb_virt_domain_t *list = NULL;
    size_t count = 0;
    if (umb_virt_domain_list (self->virt, UMB_DOMAIN_NAME_PREFIX, &list, &count)) {
        snprintf (reason, reason_size, "cannot list the domains of %s: %s", self->uri,
                  umb_virt_error (self->virt));
        return -1;
    }
    //  Only the domains this service made: another umbra service may drive
    //  the same libvirt, and its domains are none of ours to adopt or destroy
    char **ids = calloc (count + 1, sizeof (char *));
    assert (ids);
    size_t kept = 0;
    for (size_t index = 0; index < count; index++) {
        char *xml = umb_virt_domain_metadata (self->virt, list [index].name);
        umb_domain_meta_t meta;
        char why [256] = "";
        if (umb_domain_meta_parse (xml, &meta, why, sizeof why) == 0
        &&  streq (meta.owner, self->env.control_key))
            ids [kept++] = strdup (list [index].name + strlen (UMB_DOMAIN_NAME_PREFIX));
        else
            umb_log_info (self->env.log, "%s: %s is not this service's (%s); left alone",
                          self->uri, list [index].name,
                          *why ? why : "another service's key owns it");
        free (xml);
    }
    free (list);
    *ids_p = ids;
    return 0;
}

bool
umb_driver_running (umb_driver_t *self, const char *cvm_id)
{
    assert (self && cvm_id);
    if (self->kind == UMB_DRIVER_PROCESS) {
        s_child_t *child = zhashx_lookup (self->children, cvm_id);
        if (!child)
            return false;
        struct pollfd item = { .fd = child->pidfd, .events = POLLIN };
        return poll (&item, 1, 0) == 0;
    }
    char name [UMB_DOMAIN_NAME_MAX + 8];
    snprintf (name, sizeof name, "%s%s", UMB_DOMAIN_NAME_PREFIX, cvm_id);
    return umb_virt_domain_state (self->virt, name) == UMB_VIRT_STATE_RUNNING;
}

int
umb_driver_adopt (umb_driver_t *self, const char *cvm_id, umb_driver_started_t *started,
                  char *reason, size_t reason_size)
{
    assert (self && cvm_id && started);
    memset (started, 0, sizeof *started);
    started->pidfd = -1;
    started->link_fd = -1;
    if (self->kind == UMB_DRIVER_PROCESS) {
        snprintf (reason, reason_size, "backends restarted");
        return -1;
    }
    if (!umb_driver_running (self, cvm_id)) {
        snprintf (reason, reason_size, "the VM disappeared while the service was down");
        return -1;
    }
    if (self->kind == UMB_DRIVER_TEST)
        return 0;
    char name [UMB_DOMAIN_NAME_MAX + 8];
    snprintf (name, sizeof name, "%s%s", UMB_DOMAIN_NAME_PREFIX, cvm_id);
    char *path = umb_virt_domain_channel_path (self->virt, name, NULL);
    if (!path) {
        snprintf (reason, reason_size, "the domain has no %s channel", UMB_DOMAIN_CHANNEL_NAME);
        return -1;
    }
    started->has_agent = true;
    snprintf (started->link, sizeof started->link, "unix-connect:%s", path);
    free (path);
    return 0;
}

int
umb_driver_events_start (umb_driver_t *self, umb_virt_event_fn *fn, void *arg)
{
    assert (self);
    return self->virt ? umb_virt_events_start (self->virt, fn, arg) : 0;
}

void
umb_driver_events_stop (umb_driver_t *self)
{
    assert (self);
    if (self->virt)
        umb_virt_events_stop (self->virt);
}

void
umb_driver_ids_free (char ***ids_p)
{
    assert (ids_p);
    char **ids = *ids_p;
    if (ids) {
        for (char **id = ids; *id; id++)
            free (*id);
        free (ids);
        *ids_p = NULL;
    }
}

//  ---------------------------------------------------------------- selftest

void
umb_driver_test (bool verbose)
{
    printf (" * umb_driver: ");
    char reason [512];
    assert (umb_driver_kind_of_uri ("test:///default", reason, sizeof reason) == UMB_DRIVER_TEST);
    assert (umb_driver_kind_of_uri ("qemu:///system", reason, sizeof reason) == UMB_DRIVER_LIBVIRT);
    assert (umb_driver_kind_of_uri ("qemu+ssh://root@h/system", reason, sizeof reason)
            == UMB_DRIVER_LIBVIRT);
    assert (umb_driver_kind_of_uri ("process:///", reason, sizeof reason) == UMB_DRIVER_PROCESS);
    assert (umb_driver_kind_of_uri ("process:///dev-1", reason, sizeof reason)
            == UMB_DRIVER_PROCESS);
    assert (umb_driver_kind_of_uri ("process://host", reason, sizeof reason) == -1);
    assert (umb_driver_kind_of_uri ("http://example.com/", reason, sizeof reason) == -1);
    assert (*reason);
    assert (umb_driver_kind_of_uri ("not a uri", reason, sizeof reason) == -1);
    assert (umb_driver_kind_parse ("process") == UMB_DRIVER_PROCESS);
    assert (umb_driver_kind_parse ("xen") == -1);

    //  test:///default: define/start/list/teardown without a guest
    umb_log_t *log = umb_log_new ("test", UMB_LOG_ERROR, false);
    umb_driver_env_t env = { .agent_path = "/nonexistent/umbra-agent", .image_dir = "/nonexistent",
                             .control_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
                             .work_dir = "/tmp", .log = log };
    umb_driver_t *driver = umb_driver_open (UMB_DRIVER_TEST, "test:///default", &env, reason,
                                            sizeof reason);
    assert (driver);
    umb_driver_caps_t caps;
    assert (umb_driver_caps (driver, &caps, reason, sizeof reason) == 0);
    assert (streq (caps.tees, "none") && caps.cpus > 0 && caps.memory_mb > 0);
    umb_driver_started_t started;
    umb_driver_spec_t spec = { .cvm_id = "cvm_drivertest", .workspace = "ws", .tee = "none",
                               .vcpus = 1, .memory_mb = 256, .created = 1, .ttl = 60 };
    assert (umb_driver_create (driver, &spec, &started, reason, sizeof reason) == 0);
    assert (!started.has_agent);
    assert (umb_driver_running (driver, "cvm_drivertest"));
    char **ids = NULL;
    assert (umb_driver_list (driver, &ids, reason, sizeof reason) == 0);
    assert (ids [0] && streq (ids [0], "cvm_drivertest") && !ids [1]);
    umb_driver_ids_free (&ids);
    assert (umb_driver_teardown (driver, "cvm_drivertest", reason, sizeof reason) == 0);
    assert (!umb_driver_running (driver, "cvm_drivertest"));
    assert (umb_driver_teardown (driver, "cvm_drivertest", reason, sizeof reason) == 0);
    //  A confidential VM without its firmware set is refused, naming the setting
    umb_driver_spec_t tdx = spec;
    tdx.tee = "tdx";
    tdx.cvm_id = "cvm_drivertdx";
    assert (umb_driver_create (driver, &tdx, &started, reason, sizeof reason) == -1);
    assert (strstr (reason, "no firmware for tdx VMs: set backends.firmware_tdx"));
    tdx.tee = "sev-snp";
    assert (umb_driver_create (driver, &tdx, &started, reason, sizeof reason) == -1);
    assert (strstr (reason, "backends.firmware_snp"));
    assert (!umb_driver_running (driver, "cvm_drivertdx"));
    umb_driver_destroy (&driver);

    //  The process driver refuses an agent it cannot run, keeping nothing
    driver = umb_driver_open (UMB_DRIVER_PROCESS, "process:///", &env, reason, sizeof reason);
    assert (!driver && strstr (reason, "cannot be run"));
    //  ... and an agent that is executable but does not exec fails the create
    //  itself, with the reason, leaving no child behind
    char work [] = "/tmp/umb-driver-test-XXXXXX";
    assert (mkdtemp (work));
    char *fake = zsys_sprintf ("%s/not-an-agent", work);
    FILE *file = fopen (fake, "w");
    assert (file && fputs ("not a program\n", file) >= 0 && fclose (file) == 0);
    assert (chmod (fake, 0755) == 0);
    env.agent_path = fake;
    env.work_dir = work;
    driver = umb_driver_open (UMB_DRIVER_PROCESS, "process:///", &env, reason, sizeof reason);
    assert (driver);
    spec.cvm_id = "cvm_driverexec";
    assert (umb_driver_create (driver, &spec, &started, reason, sizeof reason) == -1);
    assert (strstr (reason, "cannot start") && strstr (reason, "format"));
    assert (!umb_driver_running (driver, "cvm_driverexec"));
    umb_driver_destroy (&driver);
    unlink (fake);
    zstr_free (&fake);
    umb_testkit_remove_dir (work);
    umb_log_destroy (&log);
    if (verbose)
        printf ("(verbose) ");
    printf ("OK\n");
}
