//  fuzz_computation - libFuzzer target for a computation's definition as a
//  caller sends it (computations.create / update bodies: msgpack), through
//  reading, its rules, storage as JSON and back, readiness and the manifest
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "umb_mp.h"
#include "umb_computation.h"

//  Every name resolves to itself but "nobody", so the resolution paths run
static const char *
s_resolve (void *arg, const char *name)
{
    (void) arg;
    return strcmp (name, "nobody") == 0 ? NULL : name;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *error = NULL;
    umb_msg_t *body = umb_msg_decode (data, size, &error);
    free (error);
    if (!body)
        return 0;
    if (!umb_msg_is_map (body)) {
        umb_msg_destroy (&body);
        return 0;
    }
    char reason [1024];
    umb_computation_t cmp;
    umb_computation_init (&cmp);
    int status = umb_computation_read (&cmp, body, false, reason, sizeof reason);
    assert (status == 0 || status == 400 || status == 422);
    if (status == 0) {
        snprintf (cmp.id, sizeof cmp.id, "cmp_0000000000000000");
        snprintf (cmp.owner, sizeof cmp.owner, "owner");
        //  An update with the same body keeps what it does not name
        status = umb_computation_read (&cmp, body, true, reason, sizeof reason);
        assert (status == 0);
        umb_computation_resolve (&cmp, s_resolve, NULL, reason, sizeof reason);
        //  Storage round trip: what is stored loads back to the same text
        char *json = umb_computation_to_json (&cmp);
        umb_computation_t back;
        if (umb_computation_from_json (&back, json, reason, sizeof reason) != 0)
            abort ();
        char *again = umb_computation_to_json (&back);
        if (strcmp (json, again) != 0)
            abort ();
        free (again);
        free (json);
        umb_computation_clear (&back);
        umb_participant_t part = { .roles = UMB_ROLE_OWNER };
        snprintf (part.user, sizeof part.user, "owner");
        char **missing = umb_computation_missing (&cmp, &part, 1);
        umb_computation_missing_free (&missing);
        char *manifest = umb_computation_manifest (&cmp, &part, 1, reason, sizeof reason);
        free (manifest);
        umb_w_t *w = umb_w_new ();
        umb_computation_write (&cmp, &part, 1, w);
        umb_w_destroy (&w);
    }
    umb_computation_clear (&cmp);
    umb_msg_destroy (&body);
    return 0;
}
