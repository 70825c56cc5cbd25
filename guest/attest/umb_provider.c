//  umb_provider - guest-side attestation evidence: configfs-tsm, /dev/sev-guest, none
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <dirent.h>
#include <czmq.h>
#include <openssl/rand.h>
#include "umb_snp.h"
#include "umb_verify.h"
#include "umb_provider.h"
#include "umb_bytes.h"
#include "umb_reason.h"

//  The SEV guest driver's ioctl (kernel uapi linux/sev-guest.h); defined
//  here when the header is not installed
#if defined (__has_include)
#   if __has_include (<linux/sev-guest.h>)
#       include <linux/sev-guest.h>
#       define S_HAVE_SEV_GUEST_H 1
#   endif
#endif
#ifndef S_HAVE_SEV_GUEST_H
#include <linux/types.h>
struct snp_report_req {
    __u8  user_data [64];
    __u32 vmpl;
    __u8  rsvd [28];
};
struct snp_report_resp {
    __u8 data [4000];
};
struct snp_guest_request_ioctl {
    __u8  msg_version;
    __u64 req_data;
    __u64 resp_data;
    union {
        __u64 exitinfo2;
        struct {
            __u32 fw_error;
            __u32 vmm_error;
        };
    };
};
struct snp_ext_report_req {
    struct snp_report_req data;
    __u64 certs_address;
    __u32 certs_len;
};
#define SNP_GUEST_REQ_IOC_TYPE 'S'
#define SNP_GET_REPORT     _IOWR (SNP_GUEST_REQ_IOC_TYPE, 0x0, struct snp_guest_request_ioctl)
#define SNP_GET_EXT_REPORT _IOWR (SNP_GUEST_REQ_IOC_TYPE, 0x2, struct snp_guest_request_ioctl)
#endif

typedef enum {
    S_SOURCE_NONE,
    S_SOURCE_CONFIGFS,
    S_SOURCE_SEV_GUEST
} s_source_t;

struct _umb_provider_t {
    char                 *platform;     //  "snp", "tdx", "none"
    s_source_t            source;
    char                 *root;         //  configfs-tsm report directory
    umb_provider_fake_fn *fake;
    void                 *fake_arg;
    unsigned              sequence;     //  entry names
};

#define S_MAX_BLOB          (1 << 20)   //  outblob/auxblob limit
#define S_EXT_CERTS_SIZE    (4 * 4096)  //  SNP_GET_EXT_REPORT certificate buffer
#define S_MSG_REPORT_RSP_REPORT 0x20    //  the report inside MSG_REPORT_RSP
#define S_VMM_ERR_INVALID_LEN   1       //  SNP_GUEST_VMM_ERR_INVALID_LEN: certificate buffer too small

//  ---------------------------------------------------------------- files

//  Reads a whole file (up to limit bytes); NULL with the reason otherwise.
//  The data is NUL-terminated beyond *size.
static uint8_t *
s_read_file (const char *path, size_t limit, size_t *size, char *reason, size_t reason_size)
{
    *size = 0;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        umb_reason_set (reason, reason_size, "cannot open %s: %s", path, strerror (errno));
        return NULL;
    }
    size_t capacity = 4096;
    uint8_t *data = (uint8_t *) malloc (capacity + 1);
    while (data) {
        if (*size == capacity) {
            if (capacity >= limit) {
                umb_reason_set (reason, reason_size, "%s is larger than %zu bytes", path, limit);
                free (data);
                data = NULL;
                break;
            }
            capacity *= 2;
            uint8_t *bigger = (uint8_t *) realloc (data, capacity + 1);
            if (!bigger) {
                free (data);
                data = NULL;
                break;
            }
            data = bigger;
        }
        ssize_t got = read (fd, data + *size, capacity - *size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            umb_reason_set (reason, reason_size, "cannot read %s: %s", path, strerror (errno));
            free (data);
            data = NULL;
            break;
        }
        if (got == 0) {
            data [*size] = 0;
            break;
        }
        *size += (size_t) got;
    }
    if (!data && reason && !*reason)
        umb_reason_set (reason, reason_size, "out of memory reading %s", path);
    close (fd);
    return data;
}

static int
s_write_file (const char *path, const uint8_t *data, size_t size, char *reason, size_t reason_size)
{
    int fd = open (path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return umb_reason_set (reason, reason_size, "cannot open %s: %s", path, strerror (errno));
    ssize_t wrote;
    do
        wrote = write (fd, data, size);
    while (wrote < 0 && errno == EINTR);
    int saved = errno;
    close (fd);
    if (wrote != (ssize_t) size)
        return umb_reason_set (reason, reason_size, "cannot write %s: %s", path,
                               wrote < 0? strerror (saved): "short write");
    return 0;
}

//  A small text attribute (provider, generation), trailing newline removed
static int
s_read_text (const char *path, char *text, size_t text_size, char *reason, size_t reason_size)
{
    size_t size;
    uint8_t *data = s_read_file (path, 4096, &size, reason, reason_size);
    if (!data)
        return -1;
    while (size && (data [size - 1] == '\n' || data [size - 1] == ' '))
        size--;
    data [size] = 0;
    int rc = 0;
    if (size >= text_size || strlen ((char *) data) != size)
        rc = umb_reason_set (reason, reason_size, "%s: unexpected content", path);
    else
        memcpy (text, data, size + 1);
    free (data);
    return rc;
}

static int
s_read_generation (const char *entry, uint64_t *generation, char *reason, size_t reason_size)
{
    char path [4096], text [32], *end = NULL;
    snprintf (path, sizeof path, "%s/generation", entry);
    if (s_read_text (path, text, sizeof text, reason, reason_size))
        return -1;
    errno = 0;
    *generation = strtoull (text, &end, 10);
    if (errno || end == text || *end)
        return umb_reason_set (reason, reason_size, "%s: not a number", path);
    return 0;
}

//  ---------------------------------------------------------------- configfs-tsm

static void
s_fake (umb_provider_t *self, const char *entry, umb_provider_fake_event_t event)
{
    if (self->fake)
        self->fake (entry, event, self->fake_arg);
}

//  Makes a report entry under root; its path in entry
static int
s_entry_make (umb_provider_t *self, char *entry, size_t entry_size, char *reason, size_t reason_size)
{
    uint32_t nonce = 0;
    if (RAND_bytes ((unsigned char *) &nonce, sizeof nonce) != 1)
        nonce = (uint32_t) zclock_usecs ();
    snprintf (entry, entry_size, "%s/umbra-%ld-%u-%08x", self->root, (long) getpid (), self->sequence++,
              (unsigned) nonce);
    if (mkdir (entry, 0700))
        return umb_reason_set (reason, reason_size, "configfs-tsm: cannot make %s: %s", entry, strerror (errno));
    s_fake (self, entry, UMB_PROVIDER_FAKE_MKDIR);
    return 0;
}

static void
s_entry_remove (umb_provider_t *self, const char *entry)
{
    s_fake (self, entry, UMB_PROVIDER_FAKE_RMDIR);
    if (rmdir (entry))
        zsys_warning ("umb_provider: cannot remove %s: %s", entry, strerror (errno));
}

//  The platform of the entry's provider attribute
static int
s_entry_platform (const char *entry, const char **platform, char *reason, size_t reason_size)
{
    char path [4096], provider [64];
    snprintf (path, sizeof path, "%s/provider", entry);
    if (s_read_text (path, provider, sizeof provider, reason, reason_size))
        return -1;
    if (streq (provider, "sev_guest"))
        *platform = "snp";
    else
    if (streq (provider, "tdx_guest"))
        *platform = "tdx";
    else
        return umb_reason_set (reason, reason_size, "configfs-tsm: unknown provider '%s'", provider);
    return 0;
}

static int
s_configfs_get (umb_provider_t *self, const uint8_t report_data [64], uint8_t **evidence, size_t *evidence_size,
                uint8_t **certs, size_t *certs_size, char *reason, size_t reason_size)
{
    char entry [3072], path [4096];
    if (s_entry_make (self, entry, sizeof entry, reason, reason_size))
        return -1;
    int rc = -1;
    const char *platform = NULL;
    uint8_t *outblob = NULL, *auxblob = NULL;
    size_t outblob_size = 0, auxblob_size = 0;
    uint64_t before = 0, after = 0, last = 0;
    if (s_entry_platform (entry, &platform, reason, reason_size))
        goto done;
    if (!streq (platform, self->platform)) {
        umb_reason_set (reason, reason_size, "configfs-tsm: the provider is %s, not %s", platform, self->platform);
        goto done;
    }
    if (s_read_generation (entry, &before, reason, reason_size))
        goto done;
    snprintf (path, sizeof path, "%s/inblob", entry);
    if (s_write_file (path, report_data, 64, reason, reason_size))
        goto done;
    s_fake (self, entry, UMB_PROVIDER_FAKE_INBLOB);
    snprintf (path, sizeof path, "%s/outblob", entry);
    if (!(outblob = s_read_file (path, S_MAX_BLOB, &outblob_size, reason, reason_size)))
        goto done;
    if (s_read_generation (entry, &after, reason, reason_size))
        goto done;
    //  Our inblob write advanced it once; more means another writer raced us
    if (after != before + 1) {
        umb_reason_set (reason, reason_size, "configfs-tsm: generation went from %" PRIu64 " to %" PRIu64
                        " (another writer used the entry); evidence discarded", before, after);
        goto done;
    }
    if (outblob_size == 0) {
        umb_reason_set (reason, reason_size, "configfs-tsm: empty outblob");
        goto done;
    }
    snprintf (path, sizeof path, "%s/auxblob", entry);
    if (access (path, F_OK) == 0) {
        if (!(auxblob = s_read_file (path, S_MAX_BLOB, &auxblob_size, reason, reason_size)))
            goto done;
        if (s_read_generation (entry, &last, reason, reason_size))
            goto done;
        if (last != after) {
            umb_reason_set (reason, reason_size, "configfs-tsm: generation changed while reading auxblob;"
                            " evidence discarded");
            goto done;
        }
    }
    if (streq (self->platform, "snp") && outblob_size != UMB_SNP_REPORT_SIZE) {
        umb_reason_set (reason, reason_size, "configfs-tsm: outblob is %zu bytes, not an SNP report (%d)",
                        outblob_size, UMB_SNP_REPORT_SIZE);
        goto done;
    }
    if (streq (self->platform, "snp") && auxblob_size) {
        size_t pem_size = 0;
        char why [200];
        char *pem = umb_verify_snp_certs_pem (auxblob, auxblob_size, &pem_size, why, sizeof why);
        if (!pem) {
            umb_reason_set (reason, reason_size, "configfs-tsm: auxblob: %s", why);
            goto done;
        }
        free (auxblob);
        auxblob = (uint8_t *) pem;
        auxblob_size = pem_size;
    }
    *evidence = outblob;
    *evidence_size = outblob_size;
    outblob = NULL;
    if (auxblob_size) {
        *certs = auxblob;
        *certs_size = auxblob_size;
        auxblob = NULL;
    }
    rc = 0;
done:
    free (outblob);
    free (auxblob);
    s_entry_remove (self, entry);
    return rc;
}

//  ---------------------------------------------------------------- /dev/sev-guest

static int
s_sev_guest_get (umb_provider_t *self, const uint8_t report_data [64], uint8_t **evidence, size_t *evidence_size,
                 uint8_t **certs, size_t *certs_size, char *reason, size_t reason_size)
{
    int fd = open (UMB_PROVIDER_SEV_GUEST, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return umb_reason_set (reason, reason_size, "cannot open %s: %s", UMB_PROVIDER_SEV_GUEST, strerror (errno));
    struct snp_ext_report_req ext;
    struct snp_report_resp response;
    struct snp_guest_request_ioctl request;
    uint8_t *table = (uint8_t *) calloc (1, S_EXT_CERTS_SIZE);
    memset (&ext, 0, sizeof ext);
    memset (&response, 0, sizeof response);
    memcpy (ext.data.user_data, report_data, 64);
    ext.data.vmpl = 0;
    ext.certs_address = (uint64_t) (uintptr_t) table;
    ext.certs_len = table? S_EXT_CERTS_SIZE: 0;
    memset (&request, 0, sizeof request);
    request.msg_version = 1;
    request.req_data = (uint64_t) (uintptr_t) &ext;
    request.resp_data = (uint64_t) (uintptr_t) &response;
    //  The extended request also returns the certificates; hosts without
    //  them (or older kernels) answer the plain one
    bool with_certs = table && ioctl (fd, SNP_GET_EXT_REPORT, &request) == 0;
    size_t table_size = S_EXT_CERTS_SIZE;
    if (!with_certs && table && request.vmm_error == S_VMM_ERR_INVALID_LEN
    &&  ext.certs_len > table_size && ext.certs_len <= S_MAX_BLOB) {
        //  The host has more certificates than we made room for; it said how many bytes
        table_size = ext.certs_len;
        uint8_t *bigger = (uint8_t *) calloc (1, table_size);
        if (bigger) {
            free (table);
            table = bigger;
            ext.certs_address = (uint64_t) (uintptr_t) table;
            request.exitinfo2 = 0;
            with_certs = ioctl (fd, SNP_GET_EXT_REPORT, &request) == 0;
        }
    }
    if (!with_certs) {
        memset (&response, 0, sizeof response);
        memset (&request, 0, sizeof request);
        request.msg_version = 1;
        request.req_data = (uint64_t) (uintptr_t) &ext.data;
        request.resp_data = (uint64_t) (uintptr_t) &response;
        if (ioctl (fd, SNP_GET_REPORT, &request)) {
            int saved = errno;
            close (fd);
            free (table);
            return umb_reason_set (reason, reason_size, "SNP_GET_REPORT failed: %s (firmware error 0x%x, VMM error 0x%x)",
                                   strerror (saved), request.fw_error, request.vmm_error);
        }
    }
    close (fd);
    const uint8_t *data = response.data;
    uint32_t status = umb_bytes_le32 (data);
    uint32_t size = umb_bytes_le32 (data + 4);
    if (status != 0 || size != UMB_SNP_REPORT_SIZE) {
        free (table);
        return umb_reason_set (reason, reason_size, "SNP report response: status 0x%x, size %u", status, size);
    }
    *evidence = (uint8_t *) malloc (UMB_SNP_REPORT_SIZE);
    if (!*evidence) {
        free (table);
        return umb_reason_set (reason, reason_size, "out of memory");
    }
    memcpy (*evidence, data + S_MSG_REPORT_RSP_REPORT, UMB_SNP_REPORT_SIZE);
    *evidence_size = UMB_SNP_REPORT_SIZE;
    if (with_certs && !umb_bytes_is_zero (table, 16)) {
        size_t pem_size = 0;
        char why [200];
        char *pem = umb_verify_snp_certs_pem (table, table_size, &pem_size, why, sizeof why);
        if (pem) {
            *certs = (uint8_t *) pem;
            *certs_size = pem_size;
        }
        else
            zsys_warning ("umb_provider: SNP certificates dropped: %s", why);
    }
    free (table);
    return 0;
}

//  ---------------------------------------------------------------- the provider

static bool
s_is_directory (const char *path)
{
    struct stat info;
    return stat (path, &info) == 0 && S_ISDIR (info.st_mode);
}

umb_provider_t *
umb_provider_new_fake (const char *kind, const char *root, umb_provider_fake_fn *fake, void *arg,
                       char *reason, size_t reason_size)
{
    assert (kind);
    if (!streq (kind, "snp") && !streq (kind, "tdx") && !streq (kind, "none") && !streq (kind, "auto")) {
        umb_reason_set (reason, reason_size, "unknown attestation provider '%s' (snp, tdx, none, auto)", kind);
        return NULL;
    }
    umb_provider_t *self = (umb_provider_t *) calloc (1, sizeof (umb_provider_t));
    if (!self || !(self->root = strdup (root? root: UMB_PROVIDER_CONFIGFS_ROOT))) {
        free (self);
        umb_reason_set (reason, reason_size, "out of memory");
        return NULL;
    }
    self->fake = fake;
    self->fake_arg = arg;
    //  configfs-tsm names its provider (a probe entry, made and removed);
    //  snp falls back to /dev/sev-guest; nothing falls back to none
    const char *platform = NULL;
    char why [256] = "no configfs-tsm";
    if (streq (kind, "none")) {
        platform = "none";
        self->source = S_SOURCE_NONE;
    }
    else {
        const char *found = NULL;
        if (s_is_directory (self->root)) {
            char entry [3072];
            if (s_entry_make (self, entry, sizeof entry, why, sizeof why) == 0) {
                if (s_entry_platform (entry, &found, why, sizeof why))
                    found = NULL;
                s_entry_remove (self, entry);
            }
        }
        if (found && (streq (kind, "auto") || streq (kind, found))) {
            platform = found;
            self->source = S_SOURCE_CONFIGFS;
        }
        else
        if (found)
            snprintf (why, sizeof why, "configfs-tsm's provider is %s", found);
        if (!platform && !streq (kind, "tdx") && access (UMB_PROVIDER_SEV_GUEST, F_OK) == 0) {
            platform = "snp";
            self->source = S_SOURCE_SEV_GUEST;
        }
        if (!platform) {
            if (streq (kind, "auto"))
                umb_reason_set (reason, reason_size, "auto: no TEE found (%s at %s; no %s); refusing rather than"
                                " running without attestation (use \"none\" for insecure development)",
                                why, self->root, UMB_PROVIDER_SEV_GUEST);
            else
                umb_reason_set (reason, reason_size, "%s: no %s TEE found (%s at %s%s)", kind, kind, why, self->root,
                                streq (kind, "snp")? "; no " UMB_PROVIDER_SEV_GUEST: "");
            umb_provider_destroy (&self);
            return NULL;
        }
    }
    self->platform = strdup (platform);
    if (!self->platform) {
        umb_reason_set (reason, reason_size, "out of memory");
        umb_provider_destroy (&self);
    }
    return self;
}

umb_provider_t *
umb_provider_new_reason (const char *kind, const char *root, char *reason, size_t reason_size)
{
    return umb_provider_new_fake (kind, root, NULL, NULL, reason, reason_size);
}

umb_provider_t *
umb_provider_new_at (const char *kind, const char *root)
{
    char reason [512] = "";
    umb_provider_t *self = umb_provider_new_reason (kind, root, reason, sizeof reason);
    if (!self)
        zsys_error ("umb_provider: %s", reason);
    return self;
}

umb_provider_t *
umb_provider_new (const char *kind)
{
    return umb_provider_new_at (kind, NULL);
}

void
umb_provider_destroy (umb_provider_t **self_p)
{
    assert (self_p);
    umb_provider_t *self = *self_p;
    if (self) {
        free (self->platform);
        free (self->root);
        free (self);
        *self_p = NULL;
    }
}

const char *
umb_provider_platform (umb_provider_t *self)
{
    assert (self);
    return self->platform;
}

const char *
umb_provider_source (umb_provider_t *self)
{
    assert (self);
    return self->source == S_SOURCE_CONFIGFS? "configfs-tsm":
           self->source == S_SOURCE_SEV_GUEST? "sev-guest ioctl": "none";
}

int
umb_provider_get (umb_provider_t *self, const uint8_t report_data [64],
                  uint8_t **evidence, size_t *evidence_size, uint8_t **certs, size_t *certs_size,
                  char *reason, size_t reason_size)
{
    assert (self);
    assert (report_data);
    assert (evidence && evidence_size && certs && certs_size);
    *evidence = NULL;
    *evidence_size = 0;
    *certs = NULL;
    *certs_size = 0;
    if (self->source == S_SOURCE_NONE)
        return 0;
    int rc = self->source == S_SOURCE_CONFIGFS
           ? s_configfs_get (self, report_data, evidence, evidence_size, certs, certs_size, reason, reason_size)
           : s_sev_guest_get (self, report_data, evidence, evidence_size, certs, certs_size, reason, reason_size);
    if (rc) {
        free (*evidence);
        free (*certs);
        *evidence = *certs = NULL;
        *evidence_size = *certs_size = 0;
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest. configfs-tsm cannot run here (no TEE, no configfs), so the
//  configfs code path runs against a FAKE: a temporary directory tree that
//  imitates it, and s_fake_kernel, which does what the kernel would do at
//  mkdir, at the inblob write and at rmdir. The SNP report it "generates" is
//  a real one from the vectors; the verifier then checks it.

typedef struct {
    const char *provider;           //  "sev_guest", "tdx_guest", ...
    const uint8_t *outblob;
    size_t outblob_size;
    const uint8_t *auxblob;         //  NULL: no auxblob file
    size_t auxblob_size;
    int generation_step;            //  1 normally; 2 imitates another writer
    uint8_t inblob [64];            //  what was written
    size_t inblob_size;
    int entries;                    //  made minus removed
} s_fake_t;

static void
s_fake_write (const char *entry, const char *name, const void *data, size_t size)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/%s", entry, name);
    FILE *file = fopen (path, "wb");
    assert (file);
    if (size)
        assert (fwrite (data, 1, size, file) == size);
    fclose (file);
}

static void
s_fake_kernel (const char *entry, umb_provider_fake_event_t event, void *arg)
{
    s_fake_t *fake = (s_fake_t *) arg;
    const char *names [] = { "provider", "generation", "inblob", "outblob", "auxblob", "privlevel" };
    char path [4096];
    if (event == UMB_PROVIDER_FAKE_MKDIR) {
        fake->entries++;
        s_fake_write (entry, "provider", fake->provider, strlen (fake->provider));
        s_fake_write (entry, "generation", "0\n", 2);
        s_fake_write (entry, "inblob", "", 0);
        s_fake_write (entry, "outblob", "", 0);
        if (fake->auxblob)
            s_fake_write (entry, "auxblob", "", 0);
        s_fake_write (entry, "privlevel", "0\n", 2);
    }
    else
    if (event == UMB_PROVIDER_FAKE_INBLOB) {
        snprintf (path, sizeof path, "%s/inblob", entry);
        FILE *file = fopen (path, "rb");
        assert (file);
        fake->inblob_size = fread (fake->inblob, 1, sizeof fake->inblob, file);
        fclose (file);
        s_fake_write (entry, "outblob", fake->outblob, fake->outblob_size);
        if (fake->auxblob)
            s_fake_write (entry, "auxblob", fake->auxblob, fake->auxblob_size);
        char text [16];
        snprintf (text, sizeof text, "%d\n", fake->generation_step);
        s_fake_write (entry, "generation", text, strlen (text));
    }
    else {
        fake->entries--;
        for (size_t i = 0; i < sizeof names / sizeof names [0]; i++) {
            snprintf (path, sizeof path, "%s/%s", entry, names [i]);
            unlink (path);
        }
    }
}

static uint8_t *
s_test_load (const char *name, size_t *size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/sev-snp/%s", UMB_VECTORS_DIR, name);
    FILE *file = fopen (path, "rb");
    assert (file);
    uint8_t *data = (uint8_t *) malloc (1 << 16);
    assert (data);
    *size = fread (data, 1, (1 << 16) - 1, file);
    data [*size] = 0;
    fclose (file);
    return data;
}

static bool
s_dir_is_empty (const char *path)
{
    DIR *dir = opendir (path);
    assert (dir);
    struct dirent *item;
    bool empty = true;
    while ((item = readdir (dir)))
        if (!streq (item->d_name, ".") && !streq (item->d_name, ".."))
            empty = false;
    closedir (dir);
    return empty;
}

void
umb_provider_test (bool verbose)
{
    printf (" * umb_provider: ");
    if (verbose)
        printf ("\n");
    char reason [512] = "";
    uint8_t report_data [64];
    for (int i = 0; i < 64; i++)
        report_data [i] = (uint8_t) (i * 3);
    uint8_t *evidence, *certs;
    size_t evidence_size, certs_size;

    //  none: empty evidence, no certificates
    umb_provider_t *provider = umb_provider_new ("none");
    assert (provider);
    assert (streq (umb_provider_platform (provider), "none"));
    assert (streq (umb_provider_source (provider), "none"));
    assert (umb_provider_get (provider, report_data, &evidence, &evidence_size, &certs, &certs_size,
                              reason, sizeof reason) == 0);
    assert (!evidence && evidence_size == 0 && !certs && certs_size == 0);
    umb_provider_destroy (&provider);
    umb_provider_destroy (&provider);
    //  Unknown kinds
    assert (!umb_provider_new_reason ("sev", NULL, reason, sizeof reason));
    assert (strstr (reason, "unknown attestation provider"));

    //  The FAKE configfs-tsm tree
    char root [] = "/tmp/umb_provider_fake_configfs_XXXXXX";
    assert (mkdtemp (root));
    //  A real SNP report and its certificates as a GHCB table would carry them (PEM here)
    size_t report_size, vcek_size, chain_size;
    uint8_t *report = s_test_load ("virtee-sev/report_milan.bin", &report_size);
    uint8_t *vcek = s_test_load ("virtee-sev/vcek_milan.der", &vcek_size);
    uint8_t *chain = s_test_load ("virtee-sev/cert_chain_milan", &chain_size);
    s_fake_t fake = { "sev_guest", report, report_size, chain, chain_size, 1 };

    provider = umb_provider_new_fake ("snp", root, s_fake_kernel, &fake, reason, sizeof reason);
    assert (provider);
    assert (streq (umb_provider_platform (provider), "snp"));
    assert (streq (umb_provider_source (provider), "configfs-tsm"));
    int rc = umb_provider_get (provider, report_data, &evidence, &evidence_size, &certs, &certs_size,
                               reason, sizeof reason);
    if (rc)
        fprintf (stderr, "umb_provider: %s\n", reason);
    assert (rc == 0);
    assert (fake.inblob_size == 64 && memcmp (fake.inblob, report_data, 64) == 0);
    assert (evidence_size == report_size && memcmp (evidence, report, report_size) == 0);
    assert (certs && certs_size > 0 && strstr ((char *) certs, "-----BEGIN CERTIFICATE-----"));
    assert (fake.entries == 0 && s_dir_is_empty (root));
    //  What it returned verifies (with the VCEK given; the chain from the certificates)
    umb_verify_opts_t opts = { .platform = UMB_VERIFY_PLATFORM_SNP, .evidence = evidence,
        .evidence_size = evidence_size, .vcek = vcek, .vcek_size = vcek_size,
        .certs = certs, .certs_size = certs_size };
    umb_verify_result_t *result = NULL;
    rc = umb_verify_evidence (&opts, &result, reason, sizeof reason);
    if (rc)
        fprintf (stderr, "umb_provider: verify: %s\n", reason);
    assert (rc == 0);
    umb_verify_result_destroy (&result);
    free (evidence);
    free (certs);
    if (verbose)
        printf (" * provider: fake configfs-tsm SNP report read and verified\n");

    //  Another writer advanced the generation: refused, and the entry removed
    fake.generation_step = 2;
    assert (umb_provider_get (provider, report_data, &evidence, &evidence_size, &certs, &certs_size,
                              reason, sizeof reason) == -1);
    assert (strstr (reason, "generation") && !evidence && !certs);
    assert (fake.entries == 0 && s_dir_is_empty (root));
    fake.generation_step = 1;
    //  A truncated report is refused
    fake.outblob_size = 100;
    assert (umb_provider_get (provider, report_data, &evidence, &evidence_size, &certs, &certs_size,
                              reason, sizeof reason) == -1);
    assert (strstr (reason, "not an SNP report"));
    fake.outblob_size = report_size;
    //  An auxblob that is no certificate table is refused
    fake.auxblob = (const uint8_t *) "junk";
    fake.auxblob_size = 4;
    assert (umb_provider_get (provider, report_data, &evidence, &evidence_size, &certs, &certs_size,
                              reason, sizeof reason) == -1);
    assert (strstr (reason, "auxblob"));
    //  No auxblob: evidence alone
    fake.auxblob = NULL;
    fake.auxblob_size = 0;
    assert (umb_provider_get (provider, report_data, &evidence, &evidence_size, &certs, &certs_size,
                              reason, sizeof reason) == 0);
    assert (evidence_size == report_size && !certs && certs_size == 0);
    free (evidence);
    //  The entry's provider is TDX: an SNP provider refuses it
    fake.provider = "tdx_guest";
    assert (umb_provider_get (provider, report_data, &evidence, &evidence_size, &certs, &certs_size,
                              reason, sizeof reason) == -1);
    assert (strstr (reason, "provider is tdx"));
    umb_provider_destroy (&provider);
    assert (s_dir_is_empty (root));

    //  TDX over the same fake: the quote is passed through as is
    const uint8_t quote [] = "not a real quote, the provider does not parse it";
    fake.outblob = quote;
    fake.outblob_size = sizeof quote;
    provider = umb_provider_new_fake ("tdx", root, s_fake_kernel, &fake, reason, sizeof reason);
    assert (provider);
    assert (umb_provider_get (provider, report_data, &evidence, &evidence_size, &certs, &certs_size,
                              reason, sizeof reason) == 0);
    assert (evidence_size == sizeof quote && memcmp (evidence, quote, sizeof quote) == 0 && !certs);
    free (evidence);
    umb_provider_destroy (&provider);

    //  auto: the provider attribute names the platform
    provider = umb_provider_new_fake ("auto", root, s_fake_kernel, &fake, reason, sizeof reason);
    assert (provider && streq (umb_provider_platform (provider), "tdx"));
    umb_provider_destroy (&provider);
    fake.provider = "sev_guest";
    provider = umb_provider_new_fake ("auto", root, s_fake_kernel, &fake, reason, sizeof reason);
    assert (provider && streq (umb_provider_platform (provider), "snp"));
    assert (streq (umb_provider_source (provider), "configfs-tsm"));
    umb_provider_destroy (&provider);
    assert (fake.entries == 0 && s_dir_is_empty (root));
    //  ... an unknown provider, or no configfs at all: refused, never "none"
    //  (unless this machine really has /dev/sev-guest)
    bool sev_guest = access (UMB_PROVIDER_SEV_GUEST, F_OK) == 0;
    fake.provider = "arm_cca_guest";
    provider = umb_provider_new_fake ("auto", root, s_fake_kernel, &fake, reason, sizeof reason);
    assert (sev_guest? provider != NULL: provider == NULL);
    if (!sev_guest)
        assert (strstr (reason, "no TEE found") && strstr (reason, "unknown provider"));
    umb_provider_destroy (&provider);
    char missing [4200];
    snprintf (missing, sizeof missing, "%s/missing", root);
    provider = umb_provider_new_reason ("auto", missing, reason, sizeof reason);
    assert (sev_guest? provider != NULL: provider == NULL);
    umb_provider_destroy (&provider);
    assert (!umb_provider_new_reason ("tdx", missing, reason, sizeof reason));
    assert (strstr (reason, "no configfs-tsm"));
    if (!sev_guest) {
        assert (!umb_provider_new_reason ("snp", missing, reason, sizeof reason));
        assert (strstr (reason, "no snp TEE found"));
        //  A TDX guest's configfs-tsm asked for SNP (and the other way round): refused
        fake.provider = "tdx_guest";
        assert (!umb_provider_new_fake ("snp", root, s_fake_kernel, &fake, reason, sizeof reason));
        assert (strstr (reason, "provider is tdx"));
        fake.provider = "sev_guest";
        assert (!umb_provider_new_fake ("tdx", root, s_fake_kernel, &fake, reason, sizeof reason));
        assert (strstr (reason, "provider is snp"));
    }
    assert (s_dir_is_empty (root));
    assert (rmdir (root) == 0);
    free (report);
    free (vcek);
    free (chain);
    printf ("OK\n");
}
