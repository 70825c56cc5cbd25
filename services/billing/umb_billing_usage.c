//  umb_billing_usage - usage records and ids as peers send them
#include <stdio.h>
#include <string.h>
#include "umb_billing_usage.h"

bool
umb_billing_workspace_id_valid (const char *id)
{
    return id && strlen (id) == 19 && strncmp (id, "ws_", 3) == 0
        && strspn (id + 3, "0123456789abcdef") == 16;
}

bool
umb_billing_ref_valid (const char *ref, size_t max)
{
    static const char allowed [] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789._:/-";
    size_t length = ref ? strlen (ref) : 0;
    return length > 0 && length <= max && strspn (ref, allowed) == length
        && strchr ("._:/-", ref [0]) == NULL;
}

int
umb_billing_usage_read (umb_msg_t *item, umb_billing_plans_t *plans, int64_t now,
                        umb_billing_usage_t *usage, char *why, size_t why_size)
{
    memset (usage, 0, sizeof *usage);
    if (!umb_msg_is_map (item)) {
        snprintf (why, why_size, "expected a map");
        return -1;
    }
    const char *id = umb_msg_str (item, "id", UMB_BILLING_RECORD_ID_MAX, true);
    const char *workspace_id = umb_msg_str (item, "workspace_id", 64, true);
    const char *kind = umb_msg_str (item, "kind", 8, true);
    const char *tee = umb_msg_str (item, "tee", 16, true);
    usage->vcpus = umb_msg_int (item, "vcpus", 1, 1024, 0, true);
    usage->memory_mb = umb_msg_int (item, "memory_mb", 1, 4194304, 0, true);
    usage->seconds = umb_msg_int (item, "seconds", 0, UMB_BILLING_PERIOD_MAX, 0, true);
    usage->at = umb_msg_int (item, "at", 1, now + 86400, 0, true);
    usage->paid = umb_msg_bool (item, "paid", false, false);
    const char *refused = NULL;
    if (umb_msg_failed (item))
        refused = umb_msg_error (item);
    else
    if (!umb_billing_ref_valid (id, UMB_BILLING_RECORD_ID_MAX))
        refused = "id: 1..128 of letters, digits and ._:/- starting with a letter or digit";
    else
    if (!umb_billing_workspace_id_valid (workspace_id))
        refused = "workspace_id: not a workspace id";
    else
    if (strcmp (kind, "cvm") != 0)
        refused = "kind: expected \"cvm\"";
    else
    if (!umb_billing_plans_price (plans, tee))
        refused = "tee: not a TEE type (none, sev-snp, tdx)";
    if (refused) {
        snprintf (why, why_size, "%s", refused);
        return -1;
    }
    snprintf (usage->id, sizeof usage->id, "%s", id);
    snprintf (usage->workspace_id, sizeof usage->workspace_id, "%s", workspace_id);
    snprintf (usage->kind, sizeof usage->kind, "%s", kind);
    snprintf (usage->tee, sizeof usage->tee, "%s", tee);
    return 0;
}
