//  umb_domain - libvirt domain XML for umbra's CVMs, built from a spec
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include "umb_utf8.h"
#include "umb_domain.h"
#include "umb_reason.h"

static const char *s_tee_names [UMB_DOMAIN_TEE_COUNT] = { "none", "sev-snp", "tdx" };

int
umb_domain_tee_parse (const char *text)
{
    if (!text)
        return -1;
    for (int tee = 0; tee < UMB_DOMAIN_TEE_COUNT; tee++)
        if (strcmp (text, s_tee_names [tee]) == 0)
            return tee;
    return -1;
}

const char *
umb_domain_tee_str (umb_domain_tee_t tee)
{
    assert ((unsigned) tee < UMB_DOMAIN_TEE_COUNT);
    return s_tee_names [tee];
}

//  A string umbra may put in XML: well-formed UTF-8, no control characters
static bool
s_text_ok (const char *text)
{
    size_t size = strlen (text);
    if (!umb_utf8_valid (text, size))
        return false;
    for (size_t i = 0; i < size; i++)
        if ((unsigned char) text [i] < 0x20 || text [i] == 0x7f)
            return false;
    return true;
}

static int
s_check_text (const char *field, const char *text, size_t max, char *reason, size_t reason_size)
{
    if (!s_text_ok (text))
        return umb_reason_set (reason, reason_size, "%s has control characters or is not UTF-8", field);
    if (strlen (text) > max)
        return umb_reason_set (reason, reason_size, "%s is longer than %zu bytes", field, max);
    return 0;
}

static int
s_check_path (const char *field, const char *path, bool required, char *reason, size_t reason_size)
{
    if (!path) {
        if (required)
            return umb_reason_set (reason, reason_size, "%s is required", field);
        return 0;
    }
    if (path [0] != '/')
        return umb_reason_set (reason, reason_size, "%s must be an absolute path", field);
    return s_check_text (field, path, 4095, reason, reason_size);
}

static bool
s_name_ok (const char *name)
{
    size_t size = strlen (name);
    if (size == 0 || size > UMB_DOMAIN_NAME_MAX || !isalnum ((unsigned char) name [0]))
        return false;
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char) name [i];
        if (!(isalnum (c) || c == '_' || c == '.' || c == '+' || c == '-'))
            return false;
    }
    return true;
}

static bool
s_uuid_ok (const char *uuid)
{
    if (strlen (uuid) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (uuid [i] != '-')
                return false;
        }
        else
        if (!isxdigit ((unsigned char) uuid [i]))
            return false;
    }
    return true;
}

//  Writes text XML-escaped (for element content and attribute values alike)
static void
s_escape (FILE *out, const char *text)
{
    for (; *text; text++) {
        switch (*text) {
            case '&':  fputs ("&amp;", out); break;
            case '<':  fputs ("&lt;", out); break;
            case '>':  fputs ("&gt;", out); break;
            case '\'': fputs ("&apos;", out); break;
            case '"':  fputs ("&quot;", out); break;
            default:   fputc (*text, out);
        }
    }
}

//  Element <tag>escaped text</tag> on its own line
static void
s_element (FILE *out, const char *indent, const char *tag, const char *text)
{
    fprintf (out, "%s<%s>", indent, tag);
    s_escape (out, text);
    fprintf (out, "</%s>\n", tag);
}

static int
s_validate (const umb_domain_spec_t *spec, int tee, bool kvm, char *reason, size_t reason_size)
{
    if (!spec->name || !s_name_ok (spec->name))
        return umb_reason_set (reason, reason_size,
                       "domain name must be 1..%d characters of [A-Za-z0-9_.+-], starting alphanumeric",
                       UMB_DOMAIN_NAME_MAX);
    if (spec->uuid && !s_uuid_ok (spec->uuid))
        return umb_reason_set (reason, reason_size, "uuid is not a UUID");
    if (tee != UMB_DOMAIN_TEE_NONE && !kvm)
        return umb_reason_set (reason, reason_size, "a %s CVM needs virt type kvm", s_tee_names [tee]);
    if (spec->vcpus < UMB_DOMAIN_VCPUS_MIN || spec->vcpus > UMB_DOMAIN_VCPUS_MAX)
        return umb_reason_set (reason, reason_size, "vcpus must be %d..%d, not %u",
                       UMB_DOMAIN_VCPUS_MIN, UMB_DOMAIN_VCPUS_MAX, spec->vcpus);
    if (spec->memory_mib < UMB_DOMAIN_MEMORY_MIN_MIB || spec->memory_mib > UMB_DOMAIN_MEMORY_MAX_MIB)
        return umb_reason_set (reason, reason_size, "memory must be %d..%d MiB, not %" PRIu64,
                       UMB_DOMAIN_MEMORY_MIN_MIB, UMB_DOMAIN_MEMORY_MAX_MIB, spec->memory_mib);
    bool igvm = tee == UMB_DOMAIN_TEE_SEV_SNP && spec->igvm;
    if (spec->igvm && tee != UMB_DOMAIN_TEE_SEV_SNP)
        return umb_reason_set (reason, reason_size, "igvm is only used with sev-snp");
    if (s_check_path ("kernel", spec->kernel, !igvm, reason, reason_size)
    ||  s_check_path ("initrd", spec->initrd, false, reason, reason_size)
    ||  s_check_path ("serial_log", spec->serial_log, false, reason, reason_size)
    ||  s_check_path ("igvm", spec->igvm, false, reason, reason_size)
    ||  s_check_path ("loader", spec->loader,
                      tee == UMB_DOMAIN_TEE_TDX || (tee == UMB_DOMAIN_TEE_SEV_SNP && !igvm),
                      reason, reason_size))
        return -1;
    if (spec->igvm && strchr (spec->igvm, ','))
        return umb_reason_set (reason, reason_size, "igvm path must not contain ','");
    if (spec->cmdline
    &&  s_check_text ("cmdline", spec->cmdline, UMB_DOMAIN_CMDLINE_MAX, reason, reason_size))
        return -1;
    if (spec->machine
    && (s_check_text ("machine", spec->machine, 64, reason, reason_size) || !spec->machine [0]))
        return umb_reason_set (reason, reason_size, "machine is not a machine type");
    if (spec->vsock_cid == 1 || spec->vsock_cid == 2)
        return umb_reason_set (reason, reason_size, "vsock CID %u is reserved (use 3 or more)", spec->vsock_cid);
    if (spec->channel_path && spec->channel_path [0]) {
        if (s_check_path ("channel_path", spec->channel_path, true, reason, reason_size))
            return -1;
        if (strlen (spec->channel_path) >= 108)
            return umb_reason_set (reason, reason_size, "channel_path is too long for a unix socket");
    }
    if (!spec->cvm_id || !spec->cvm_id [0])
        return umb_reason_set (reason, reason_size, "cvm_id is required");
    if (s_check_text ("cvm_id", spec->cvm_id, 127, reason, reason_size)
    || (spec->workspace && s_check_text ("workspace", spec->workspace, 127, reason, reason_size)))
        return -1;
    if (spec->created < 0 || spec->ttl < 0)
        return umb_reason_set (reason, reason_size, "created and ttl must not be negative");
    return 0;
}

char *
umb_domain_xml (const umb_domain_spec_t *spec, char *reason, size_t reason_size)
{
    assert (spec);
    int tee = umb_domain_tee_parse (spec->tee? spec->tee: "none");
    if (tee < 0) {
        umb_reason_set (reason, reason_size, "unknown TEE type '%.32s' (known: none, sev-snp, tdx)", spec->tee);
        return NULL;
    }
    const char *virt_type = spec->virt_type? spec->virt_type: tee == UMB_DOMAIN_TEE_NONE? "qemu": "kvm";
    if (strcmp (virt_type, "kvm") && strcmp (virt_type, "qemu")) {
        umb_reason_set (reason, reason_size, "unknown virt type '%.32s' (known: kvm, qemu)", virt_type);
        return NULL;
    }
    bool kvm = strcmp (virt_type, "kvm") == 0;
    if (s_validate (spec, tee, kvm, reason, reason_size))
        return NULL;

    bool secure = tee != UMB_DOMAIN_TEE_NONE;
    bool igvm = tee == UMB_DOMAIN_TEE_SEV_SNP && spec->igvm;
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out) {
        umb_reason_set (reason, reason_size, "out of memory");
        return NULL;
    }
    fprintf (out, "<domain type='%s'%s>\n", virt_type,
             igvm? " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'": "");
    s_element (out, "  ", "name", spec->name);
    if (spec->uuid)
        s_element (out, "  ", "uuid", spec->uuid);
    fprintf (out, "  <metadata>\n"
                  "    <" UMB_DOMAIN_METADATA_PREFIX ":cvm xmlns:" UMB_DOMAIN_METADATA_PREFIX
                  "='" UMB_DOMAIN_METADATA_URI "'>\n");
    s_element (out, "      ", "umbra:id", spec->cvm_id);
    if (spec->owner)
        s_element (out, "      ", "umbra:owner", spec->owner);
    s_element (out, "      ", "umbra:workspace", spec->workspace? spec->workspace: "");
    fprintf (out, "      <umbra:created>%" PRId64 "</umbra:created>\n"
                  "      <umbra:ttl>%" PRId64 "</umbra:ttl>\n"
                  "      <umbra:tee>%s</umbra:tee>\n"
                  "    </umbra:cvm>\n"
                  "  </metadata>\n",
             spec->created, spec->ttl, s_tee_names [tee]);
    fprintf (out, "  <memory unit='MiB'>%" PRIu64 "</memory>\n"
                  "  <vcpu placement='static'>%u</vcpu>\n", spec->memory_mib, spec->vcpus);
    fprintf (out, "  <os>\n    <type arch='x86_64' machine='");
    s_escape (out, spec->machine? spec->machine: "q35");
    fprintf (out, "'>hvm</type>\n");
    if (spec->loader && secure && !igvm) {
        fprintf (out, "    <loader readonly='yes' type='rom'>");
        s_escape (out, spec->loader);
        fprintf (out, "</loader>\n");
    }
    if (spec->kernel)
        s_element (out, "    ", "kernel", spec->kernel);
    if (spec->initrd)
        s_element (out, "    ", "initrd", spec->initrd);
    if (spec->cmdline)
        s_element (out, "    ", "cmdline", spec->cmdline);
    fprintf (out, "  </os>\n");
    fprintf (out, "  <features>\n    <acpi/>\n    <apic/>\n%s  </features>\n",
             tee == UMB_DOMAIN_TEE_TDX? "    <ioapic driver='qemu'/>\n": "");
    if (secure)
        fprintf (out, "  <cpu mode='host-passthrough'/>\n");
    fprintf (out, "  <clock offset='utc'/>\n"
                  "  <on_poweroff>destroy</on_poweroff>\n"
                  "  <on_reboot>destroy</on_reboot>\n"
                  "  <on_crash>destroy</on_crash>\n"
                  "  <pm>\n"
                  "    <suspend-to-mem enabled='no'/>\n"
                  "    <suspend-to-disk enabled='no'/>\n"
                  "  </pm>\n"
                  "  <devices>\n");
    //  Under SEV-SNP and TDX virtio devices must use the (bounce-buffered) IOMMU path
    const char *iommu = secure? "<driver iommu='on'/>": "";
    if (spec->channel_path && secure)
        fprintf (out, "    <controller type='virtio-serial' index='0'>%s</controller>\n", iommu);
    else
    if (spec->channel_path)
        fprintf (out, "    <controller type='virtio-serial' index='0'/>\n");
    if (spec->serial_log) {
        fprintf (out, "    <serial type='file'>\n      <source path='");
        s_escape (out, spec->serial_log);
        fprintf (out, "'/>\n      <target port='0'/>\n    </serial>\n");
    }
    if (spec->channel_path) {
        fprintf (out, "    <channel type='unix'>\n      <source mode='bind'");
        if (spec->channel_path [0]) {
            fprintf (out, " path='");
            s_escape (out, spec->channel_path);
            fprintf (out, "'");
        }
        fprintf (out, "/>\n      <target type='virtio' name='" UMB_DOMAIN_CHANNEL_NAME "'/>\n"
                      "    </channel>\n");
    }
    if (spec->vsock_cid == UMB_DOMAIN_VSOCK_AUTO)
        fprintf (out, "    <vsock model='virtio'>\n      <cid auto='yes'/>\n%s%s%s    </vsock>\n",
                 secure? "      ": "", iommu, secure? "\n": "");
    else
    if (spec->vsock_cid)
        fprintf (out, "    <vsock model='virtio'>\n      <cid auto='no' address='%u'/>\n%s%s%s    </vsock>\n",
                 spec->vsock_cid, secure? "      ": "", iommu, secure? "\n": "");
    fprintf (out, "    <memballoon model='none'/>\n"
                  "  </devices>\n");
    if (tee == UMB_DOMAIN_TEE_SEV_SNP) {
        //  With a kernel, measured direct boot: OVMF hashes kernel, initrd
        //  and command line into the launch measurement
        fprintf (out, "  <launchSecurity type='sev-snp'%s>\n",
                 spec->kernel && !igvm? " kernelHashes='yes'": "");
        if (spec->sev_cbitpos)
            fprintf (out, "    <cbitpos>%u</cbitpos>\n", spec->sev_cbitpos);
        if (spec->sev_reduced_phys_bits)
            fprintf (out, "    <reducedPhysBits>%u</reducedPhysBits>\n", spec->sev_reduced_phys_bits);
        fprintf (out, "    <policy>0x%08" PRIx64 "</policy>\n  </launchSecurity>\n",
                 spec->policy? spec->policy: (uint64_t) UMB_DOMAIN_SNP_POLICY_DEFAULT);
    }
    else
    if (tee == UMB_DOMAIN_TEE_TDX)
        fprintf (out, "  <launchSecurity type='tdx'>\n    <policy>0x%08" PRIx64 "</policy>\n"
                      "  </launchSecurity>\n",
                 spec->policy? spec->policy: (uint64_t) UMB_DOMAIN_TDX_POLICY_DEFAULT);
    if (igvm) {
        //  libvirt has no IGVM element yet: QEMU >= 9.2's igvm-cfg object, passed through
        fprintf (out, "  <qemu:commandline>\n"
                      "    <qemu:arg value='-object'/>\n"
                      "    <qemu:arg value='igvm-cfg,id=umbra-igvm0,file=");
        s_escape (out, spec->igvm);
        fprintf (out, "'/>\n"
                      "    <qemu:arg value='-machine'/>\n"
                      "    <qemu:arg value='igvm-cfg=umbra-igvm0'/>\n"
                      "  </qemu:commandline>\n");
    }
    fprintf (out, "</domain>\n");
    if (fclose (out) != 0 || !text) {
        free (text);
        umb_reason_set (reason, reason_size, "out of memory");
        return NULL;
    }
    return text;
}

//  --------------------------------------------------------------------------
//  Metadata

//  The <umbra:cvm> element: in umbra's namespace anywhere, or a bare <cvm>
//  as the root (virDomainGetMetadata returns the element without its namespace)
static xmlNodePtr
s_find_cvm (xmlNodePtr node, int depth)
{
    if (node && depth == 0 && node->type == XML_ELEMENT_NODE && !node->ns
    &&  strcmp ((const char *) node->name, "cvm") == 0)
        return node;
    for (; node && depth < 8; node = node->next) {
        if (node->type == XML_ELEMENT_NODE
        &&  node->ns && node->ns->href
        &&  strcmp ((const char *) node->ns->href, UMB_DOMAIN_METADATA_URI) == 0
        &&  strcmp ((const char *) node->name, "cvm") == 0)
            return node;
        if (node->type == XML_ELEMENT_NODE) {
            xmlNodePtr found = s_find_cvm (node->children, depth + 1);
            if (found)
                return found;
        }
    }
    return NULL;
}

static int
s_parse_int64 (const char *text, int64_t *value)
{
    if (!text || !*text)
        return -1;
    char *end = NULL;
    long long parsed = strtoll (text, &end, 10);
    if (*end || parsed < 0)
        return -1;
    *value = parsed;
    return 0;
}

int
umb_domain_meta_parse (const char *xml, umb_domain_meta_t *meta, char *reason, size_t reason_size)
{
    assert (meta);
    memset (meta, 0, sizeof *meta);
    if (!xml || !*xml)
        return umb_reason_set (reason, reason_size, "no metadata");
    size_t size = strlen (xml);
    if (size > 1024 * 1024)
        return umb_reason_set (reason, reason_size, "metadata too large");
    xmlDocPtr doc = xmlReadMemory (xml, (int) size, "metadata.xml", NULL,
                                   XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return umb_reason_set (reason, reason_size, "metadata is not well-formed XML");
    int rc = -1;
    xmlNodePtr cvm = s_find_cvm (xmlDocGetRootElement (doc), 0);
    if (!cvm) {
        umb_reason_set (reason, reason_size, "no <umbra:cvm> element");
        goto done;
    }
    bool have_id = false, have_created = false;
    for (xmlNodePtr child = cvm->children; child; child = child->next) {
        if (child->type != XML_ELEMENT_NODE || (child->ns == NULL) != (cvm->ns == NULL)
        || (child->ns && strcmp ((const char *) child->ns->href, UMB_DOMAIN_METADATA_URI) != 0))
            continue;
        const char *name = (const char *) child->name;
        xmlChar *content = xmlNodeGetContent (child);
        const char *value = content? (const char *) content: "";
        int bad = 0;
        if (strcmp (name, "id") == 0) {
            bad = !*value || strlen (value) >= sizeof meta->cvm_id;
            if (!bad) {
                snprintf (meta->cvm_id, sizeof meta->cvm_id, "%s", value);
                have_id = true;
            }
        }
        else
        if (strcmp (name, "owner") == 0) {
            bad = strlen (value) >= sizeof meta->owner;
            if (!bad)
                snprintf (meta->owner, sizeof meta->owner, "%s", value);
        }
        else
        if (strcmp (name, "workspace") == 0) {
            bad = strlen (value) >= sizeof meta->workspace;
            if (!bad)
                snprintf (meta->workspace, sizeof meta->workspace, "%s", value);
        }
        else
        if (strcmp (name, "created") == 0) {
            bad = s_parse_int64 (value, &meta->created);
            have_created = !bad;
        }
        else
        if (strcmp (name, "ttl") == 0)
            bad = s_parse_int64 (value, &meta->ttl);
        xmlFree (content);
        if (bad) {
            umb_reason_set (reason, reason_size, "metadata element <umbra:%.32s> is malformed", name);
            goto done;
        }
    }
    if (!have_id || !have_created) {
        umb_reason_set (reason, reason_size, "metadata lacks <umbra:id> or <umbra:created>");
        goto done;
    }
    rc = 0;
done:
    if (rc)
        memset (meta, 0, sizeof *meta);
    xmlFreeDoc (doc);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

static void
s_quiet (void *arg, virErrorPtr error)
{
}

//  Evaluates an XPath expression on doc and returns its string value (caller frees)
static char *
s_xpath (xmlDocPtr doc, const char *expression)
{
    xmlXPathContextPtr context = xmlXPathNewContext (doc);
    assert (context);
    xmlXPathRegisterNs (context, BAD_CAST "umbra", BAD_CAST UMB_DOMAIN_METADATA_URI);
    xmlXPathRegisterNs (context, BAD_CAST "qemu", BAD_CAST "http://libvirt.org/schemas/domain/qemu/1.0");
    xmlXPathObjectPtr result = xmlXPathEvalExpression (BAD_CAST expression, context);
    assert (result);
    xmlChar *value = xmlXPathCastToString (result);
    char *copy = strdup ((const char *) value);
    xmlFree (value);
    xmlXPathFreeObject (result);
    xmlXPathFreeContext (context);
    return copy;
}

static void
s_expect (xmlDocPtr doc, const char *expression, const char *expected)
{
    char *value = s_xpath (doc, expression);
    if (strcmp (value, expected) != 0) {
        fprintf (stderr, "umb_domain: %s = '%s', expected '%s'\n", expression, value, expected);
        assert (false);
    }
    free (value);
}

static xmlDocPtr
s_parse (const char *xml)
{
    xmlDocPtr doc = xmlReadMemory (xml, (int) strlen (xml), "domain.xml", NULL,
                                   XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    assert (doc);
    return doc;
}

static void
s_expect_refused (umb_domain_spec_t spec, const char *fragment, bool verbose)
{
    char reason [256] = "";
    char *xml = umb_domain_xml (&spec, reason, sizeof reason);
    if (verbose)
        printf ("  refused: %s\n", reason);
    assert (xml == NULL);
    if (!strstr (reason, fragment)) {
        fprintf (stderr, "umb_domain: reason '%s' lacks '%s'\n", reason, fragment);
        assert (false);
    }
}

void
umb_domain_test (bool verbose)
{
    if (verbose)
        printf (" * umb_domain:\n");
    char reason [256];
    xmlInitParser ();

    assert (umb_domain_tee_parse ("none") == UMB_DOMAIN_TEE_NONE);
    assert (umb_domain_tee_parse ("sev-snp") == UMB_DOMAIN_TEE_SEV_SNP);
    assert (umb_domain_tee_parse ("tdx") == UMB_DOMAIN_TEE_TDX);
    assert (umb_domain_tee_parse ("sev") == -1);
    assert (umb_domain_tee_parse (NULL) == -1);
    assert (strcmp (umb_domain_tee_str (UMB_DOMAIN_TEE_SEV_SNP), "sev-snp") == 0);

    //  `none`: defined on test:///default and read back by libvirt
    umb_domain_spec_t spec = {
        .name = "umbra-dtest-c1", .uuid = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
        .tee = "none", .virt_type = "qemu", .vcpus = 2, .memory_mib = 512,
        .kernel = "/var/cache/umbra/eos/vmlinux",
        .initrd = "/var/cache/umbra/eos/initramfs.cpio.gz",
        .cmdline = "console=ttyS0 umbra.attestation=none umbra.control_key=a<b&c'd\"",
        .vsock_cid = 42, .channel_path = "/run/umbra/c1.link",
        .serial_log = "/var/log/umbra/c1 & <console>.log",
        .cvm_id = "c1", .workspace = "ws<&>1", .created = 1700000000, .ttl = 3600
    };
    char *xml = umb_domain_xml (&spec, reason, sizeof reason);
    assert (xml);
    virSetErrorFunc (NULL, s_quiet);
    virConnectPtr conn = virConnectOpen ("test:///default");
    assert (conn);
    virDomainPtr domain = virDomainDefineXML (conn, xml);
    if (!domain) {
        virErrorPtr error = virGetLastError ();
        fprintf (stderr, "umb_domain: test:///default refused: %s\n", error? error->message: "?");
        assert (false);
    }
    char *back = virDomainGetXMLDesc (domain, 0);
    assert (back);
    xmlDocPtr doc = s_parse (back);
    s_expect (doc, "string(/domain/@type)", "qemu");
    s_expect (doc, "string(/domain/name)", "umbra-dtest-c1");
    s_expect (doc, "string(/domain/uuid)", "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9");
    s_expect (doc, "string(/domain/memory)", "524288");
    s_expect (doc, "string(/domain/memory/@unit)", "KiB");
    s_expect (doc, "string(/domain/vcpu)", "2");
    s_expect (doc, "string(/domain/os/kernel)", "/var/cache/umbra/eos/vmlinux");
    s_expect (doc, "string(/domain/os/initrd)", "/var/cache/umbra/eos/initramfs.cpio.gz");
    s_expect (doc, "string(/domain/os/cmdline)", spec.cmdline);
    s_expect (doc, "string(/domain/on_poweroff)", "destroy");
    s_expect (doc, "string(/domain/on_crash)", "destroy");
    s_expect (doc, "count(/domain/features/acpi)", "1");
    s_expect (doc, "count(/domain/devices/interface)", "0");
    s_expect (doc, "string(/domain/devices/memballoon/@model)", "none");
    s_expect (doc, "string(/domain/devices/serial/@type)", "file");
    s_expect (doc, "string(/domain/devices/serial/source/@path)", spec.serial_log);
    s_expect (doc, "string(/domain/devices/channel[@type='unix']/source/@path)", "/run/umbra/c1.link");
    s_expect (doc, "string(/domain/devices/channel[@type='unix']/source/@mode)", "bind");
    s_expect (doc, "string(/domain/devices/channel/target/@name)", UMB_DOMAIN_CHANNEL_NAME);
    s_expect (doc, "string(/domain/devices/vsock/cid/@address)", "42");
    s_expect (doc, "string(/domain/metadata/umbra:cvm/umbra:id)", "c1");
    s_expect (doc, "string(/domain/metadata/umbra:cvm/umbra:workspace)", "ws<&>1");
    s_expect (doc, "count(/domain/launchSecurity)", "0");
    xmlFreeDoc (doc);

    //  Metadata read back through libvirt's metadata API and parsed
    umb_domain_meta_t meta;
    char *element = virDomainGetMetadata (domain, VIR_DOMAIN_METADATA_ELEMENT,
                                          UMB_DOMAIN_METADATA_URI, VIR_DOMAIN_AFFECT_CONFIG);
    assert (element);
    assert (umb_domain_meta_parse (element, &meta, reason, sizeof reason) == 0);
    assert ((strcmp (meta.cvm_id, "c1") == 0));
    assert ((strcmp (meta.workspace, "ws<&>1") == 0));
    assert (meta.created == 1700000000);
    assert (meta.ttl == 3600);
    free (element);
    //  ... and from the whole domain XML
    assert (umb_domain_meta_parse (back, &meta, reason, sizeof reason) == 0);
    assert ((strcmp (meta.cvm_id, "c1") == 0));
    free (back);
    assert (virDomainUndefine (domain) == 0);
    virDomainFree (domain);

    //  A channel whose path libvirt picks, no vsock, no serial
    spec.uuid = NULL;
    spec.channel_path = "";
    spec.vsock_cid = 0;
    spec.serial_log = NULL;
    free (xml);
    xml = umb_domain_xml (&spec, reason, sizeof reason);
    assert (xml);
    doc = s_parse (xml);
    s_expect (doc, "count(/domain/devices/channel/source/@path)", "0");
    s_expect (doc, "count(/domain/devices/vsock)", "0");
    s_expect (doc, "count(/domain/devices/serial)", "0");
    s_expect (doc, "count(/domain/uuid)", "0");
    xmlFreeDoc (doc);
    domain = virDomainDefineXML (conn, xml);
    assert (domain);
    assert (virDomainUndefine (domain) == 0);
    virDomainFree (domain);
    free (xml);

    //  sev-snp: checked by structure (libvirt 9 does not know launchSecurity sev-snp)
    umb_domain_spec_t snp = spec;
    snp.tee = "sev-snp";
    snp.virt_type = NULL;       //  kvm by default for a TEE
    snp.loader = "/usr/share/ovmf/OVMF.amdsev.fd";
    snp.vsock_cid = UMB_DOMAIN_VSOCK_AUTO;
    snp.sev_cbitpos = 51;
    snp.sev_reduced_phys_bits = 1;
    xml = umb_domain_xml (&snp, reason, sizeof reason);
    assert (xml);
    doc = s_parse (xml);
    s_expect (doc, "string(/domain/@type)", "kvm");
    s_expect (doc, "string(/domain/launchSecurity/@type)", "sev-snp");
    s_expect (doc, "string(/domain/launchSecurity/@kernelHashes)", "yes");
    s_expect (doc, "string(/domain/launchSecurity/policy)", "0x00030000");
    s_expect (doc, "string(/domain/launchSecurity/cbitpos)", "51");
    s_expect (doc, "string(/domain/launchSecurity/reducedPhysBits)", "1");
    s_expect (doc, "string(/domain/os/loader)", "/usr/share/ovmf/OVMF.amdsev.fd");
    s_expect (doc, "string(/domain/devices/vsock/cid/@auto)", "yes");
    s_expect (doc, "string(/domain/devices/vsock/driver/@iommu)", "on");
    s_expect (doc, "string(/domain/devices/controller[@type='virtio-serial']/driver/@iommu)", "on");
    s_expect (doc, "string(/domain/metadata/umbra:cvm/umbra:tee)", "sev-snp");
    s_expect (doc, "count(/domain/devices/interface)", "0");
    xmlFreeDoc (doc);
    domain = virDomainDefineXML (conn, xml);
    if (domain) {
        //  A libvirt that knows sev-snp accepts it; it must not be running
        assert (virDomainIsActive (domain) == 0);
        virDomainUndefine (domain);
        virDomainFree (domain);
    }
    free (xml);

    //  sev-snp with IGVM: no loader, QEMU's igvm-cfg passed through
    snp.loader = NULL;
    snp.igvm = "/var/cache/umbra/eos/umbra.igvm";
    xml = umb_domain_xml (&snp, reason, sizeof reason);
    assert (xml);
    doc = s_parse (xml);
    s_expect (doc, "count(/domain/os/loader)", "0");
    s_expect (doc, "count(/domain/launchSecurity/@kernelHashes)", "0");
    s_expect (doc, "string(/domain/qemu:commandline/qemu:arg[2]/@value)",
              "igvm-cfg,id=umbra-igvm0,file=/var/cache/umbra/eos/umbra.igvm");
    xmlFreeDoc (doc);
    free (xml);

    //  tdx
    umb_domain_spec_t tdx = spec;
    tdx.tee = "tdx";
    tdx.virt_type = "kvm";
    tdx.loader = "/usr/share/ovmf/OVMF.inteltdx.fd";
    tdx.vsock_cid = 7;
    xml = umb_domain_xml (&tdx, reason, sizeof reason);
    assert (xml);
    doc = s_parse (xml);
    s_expect (doc, "string(/domain/launchSecurity/@type)", "tdx");
    s_expect (doc, "string(/domain/launchSecurity/policy)", "0x10000000");
    s_expect (doc, "string(/domain/features/ioapic/@driver)", "qemu");
    s_expect (doc, "string(/domain/os/loader)", "/usr/share/ovmf/OVMF.inteltdx.fd");
    s_expect (doc, "string(/domain/devices/vsock/cid/@address)", "7");
    s_expect (doc, "string(/domain/on_reboot)", "destroy");
    xmlFreeDoc (doc);
    free (xml);

    //  Refusals
    umb_domain_spec_t bad = spec;
    bad.tee = "sgx";
    s_expect_refused (bad, "unknown TEE type 'sgx'", verbose);
    bad = spec; bad.virt_type = "xen";
    s_expect_refused (bad, "unknown virt type", verbose);
    bad = spec; bad.vcpus = 0;
    s_expect_refused (bad, "vcpus must be 1..256, not 0", verbose);
    bad = spec; bad.vcpus = 257;
    s_expect_refused (bad, "vcpus must be 1..256", verbose);
    bad = spec; bad.memory_mib = 127;
    s_expect_refused (bad, "memory must be 128..1048576 MiB, not 127", verbose);
    bad = spec; bad.memory_mib = 1048577;
    s_expect_refused (bad, "memory must be", verbose);
    bad = spec; bad.name = "../etc";
    s_expect_refused (bad, "domain name", verbose);
    bad = spec; bad.name = NULL;
    s_expect_refused (bad, "domain name", verbose);
    bad = spec; bad.uuid = "not-a-uuid";
    s_expect_refused (bad, "uuid", verbose);
    bad = spec; bad.kernel = NULL;
    s_expect_refused (bad, "kernel is required", verbose);
    bad = spec; bad.kernel = "vmlinux";
    s_expect_refused (bad, "kernel must be an absolute path", verbose);
    bad = spec; bad.cmdline = "console=ttyS0\n<evil/>";
    s_expect_refused (bad, "cmdline has control characters", verbose);
    bad = spec; bad.workspace = "ws\xff";
    s_expect_refused (bad, "workspace has control characters or is not UTF-8", verbose);
    bad = spec; bad.vsock_cid = 2;
    s_expect_refused (bad, "vsock CID 2 is reserved", verbose);
    bad = spec; bad.cvm_id = NULL;
    s_expect_refused (bad, "cvm_id is required", verbose);
    bad = spec; bad.ttl = -1;
    s_expect_refused (bad, "must not be negative", verbose);
    bad = spec;
    bad.channel_path = "/run/umbra/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock";
    s_expect_refused (bad, "too long for a unix socket", verbose);
    bad = snp; bad.virt_type = "qemu";
    s_expect_refused (bad, "a sev-snp CVM needs virt type kvm", verbose);
    bad = tdx; bad.loader = NULL;
    s_expect_refused (bad, "loader is required", verbose);
    bad = spec; bad.igvm = "/x.igvm";
    s_expect_refused (bad, "igvm is only used with sev-snp", verbose);
    char *long_cmdline = malloc (UMB_DOMAIN_CMDLINE_MAX + 2);
    assert (long_cmdline);
    memset (long_cmdline, 'a', UMB_DOMAIN_CMDLINE_MAX + 1);
    long_cmdline [UMB_DOMAIN_CMDLINE_MAX + 1] = 0;
    bad = spec; bad.cmdline = long_cmdline;
    s_expect_refused (bad, "cmdline is longer than 2047 bytes", verbose);
    long_cmdline [UMB_DOMAIN_CMDLINE_MAX] = 0;
    xml = umb_domain_xml (&bad, reason, sizeof reason);
    assert (xml);
    free (xml);
    free (long_cmdline);

    //  Metadata parser on bad input
    assert (umb_domain_meta_parse ("", &meta, reason, sizeof reason) == -1);
    assert (umb_domain_meta_parse ("<a><b></a>", &meta, reason, sizeof reason) == -1);
    assert (strstr (reason, "well-formed"));
    assert (umb_domain_meta_parse ("<domain><metadata/></domain>", &meta, reason, sizeof reason) == -1);
    assert (strstr (reason, "no <umbra:cvm>"));
    assert (umb_domain_meta_parse ("<cvm xmlns='https://umbra.dev/cvm'><id>x</id><created>-5</created></cvm>",
                                   &meta, reason, sizeof reason) == -1);
    assert (strstr (reason, "<umbra:created> is malformed"));
    assert (umb_domain_meta_parse ("<cvm xmlns='https://umbra.dev/cvm'><created>5</created></cvm>",
                                   &meta, reason, sizeof reason) == -1);
    assert (umb_domain_meta_parse ("<cvm xmlns='https://umbra.dev/cvm'><id>x</id><created>5</created></cvm>",
                                   &meta, reason, sizeof reason) == 0);
    assert ((strcmp (meta.cvm_id, "x") == 0) && meta.created == 5 && meta.ttl == 0);
    //  External entities are never fetched nor expanded
    assert (umb_domain_meta_parse ("<!DOCTYPE c [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
                                   "<cvm xmlns='https://umbra.dev/cvm'><id>&e;</id><created>5</created></cvm>",
                                   &meta, reason, sizeof reason) == -1
        || !strstr (meta.cvm_id, "root"));

    virConnectClose (conn);
    if (verbose)
        printf ("OK\n");
}
