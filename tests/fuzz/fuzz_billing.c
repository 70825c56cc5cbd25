//  fuzz_billing - libFuzzer target for what billing reads: a batch of usage
//  records as services send it (billing.usage.record bodies: msgpack), and,
//  when the input starts with '{', a plans file (JSON) with the costs it prices
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "umb_mp.h"
#include "umb_billing_plans.h"
#include "umb_billing_usage.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
s_plans (const uint8_t *data, size_t size)
{
    char reason [256];
    umb_billing_plans_t *plans = umb_billing_plans_parse ((const char *) data, size, NULL, reason,
                                                          sizeof reason);
    if (!plans) {
        assert (*reason);
        return;
    }
    size_t count = umb_billing_plans_count (plans);
    assert (count > 0);
    int fallback = umb_billing_plans_default (plans);
    assert (fallback >= 0 && (size_t) fallback < count);
    for (size_t i = 0; i < count; i++) {
        assert (umb_billing_plans_find (plans, umb_billing_plans_name (plans, i)) == (int) i);
        for (size_t limit = 0; limit < UMB_BILLING_LIMITS; limit++)
            assert (umb_billing_plans_limit (plans, (int) i, (umb_billing_limit_t) limit) >= -1);
    }
    //  The largest CVM the service accepts, for the longest it reserves: priced or refused
    for (size_t tee = 0; tee < UMB_BILLING_TEES; tee++) {
        const umb_billing_price_t *price = umb_billing_plans_price (plans,
                                                                    umb_billing_tee_name (tee));
        assert (price);
        int64_t small, large;
        assert (umb_billing_cost (price, 1, 64, 1, true, &small) == 0 && small >= 0);
        if (umb_billing_cost (price, 1024, 4194304, 2592000, true, &large) == 0)
            assert (large >= small);
    }
    umb_billing_plans_destroy (&plans);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size > 0 && data [0] == '{') {
        s_plans (data, size);
        return 0;
    }
    char *error = NULL;
    umb_msg_t *body = umb_msg_decode (data, size, &error);
    free (error);
    if (!body)
        return 0;
    char reason [256];
    umb_billing_plans_t *plans = umb_billing_plans_load ("", "", reason, sizeof reason);
    assert (plans);
    umb_msg_t *records = umb_msg_is_map (body) ? umb_msg_array (body, "records", 1000, true) : NULL;
    for (size_t i = 0; records && i < umb_msg_size (records); i++) {
        umb_billing_usage_t usage;
        char why [256] = "";
        if (umb_billing_usage_read (umb_msg_at (records, i), plans, 1796601600, &usage, why,
                                    sizeof why) == 0) {
            //  What is accepted is what the store and the ledger may take
            assert (umb_billing_ref_valid (usage.id, UMB_BILLING_RECORD_ID_MAX));
            assert (umb_billing_workspace_id_valid (usage.workspace_id));
            assert (usage.vcpus >= 1 && usage.vcpus <= 1024 && usage.seconds >= 0);
            int64_t cost;
            assert (umb_billing_cost (umb_billing_plans_price (plans, usage.tee), usage.vcpus,
                                      usage.memory_mb, usage.seconds, false, &cost) == 0);
        }
        else
            assert (*why);
    }
    umb_billing_plans_destroy (&plans);
    umb_msg_destroy (&body);
    return 0;
}
