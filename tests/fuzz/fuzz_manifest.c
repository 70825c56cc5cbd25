//  fuzz_manifest - libFuzzer target for the computation manifest parser (umb_manifest:
//  JSON from the control plane or a participant, with PEM/DER keys inside)
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "umb_manifest.h"
#include "umb_sig.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char reason [512] = "";
    umb_manifest_t *manifest = umb_manifest_parse ((const char *) data, size, reason, sizeof reason);
    if (!manifest) {
        assert (reason [0]);            //  every refusal says why
        return 0;
    }
    //  What the parser promises about an accepted manifest
    const char *id = umb_manifest_id (manifest);
    assert (id [0] && strlen (id) <= UMB_MANIFEST_MAX_ID_SIZE);
    uint8_t statement [UMB_SIG_STATEMENT_MAX];
    uint8_t challenge [UMB_SIG_CHALLENGE_SIZE] = { 0 };
    assert (umb_sig_statement_upload ("algorithm", id, umb_manifest_algorithm_hash (manifest),
                                      challenge, statement, sizeof statement) > 0);
    assert (umb_sig_statement_result (id, challenge, statement, sizeof statement) > 0);
    assert (strlen (umb_manifest_algorithm_hash_hex (manifest)) == 64);
    assert (umb_sig_key_check (umb_manifest_algorithm_key (manifest), NULL, 0) != UMB_SIG_KEY_NONE);
    for (size_t i = 0; i < umb_manifest_algorithm_arg_count (manifest); i++)
        assert (umb_manifest_algorithm_arg (manifest, i));
    size_t datasets = umb_manifest_dataset_count (manifest);
    assert (datasets <= UMB_MANIFEST_MAX_DATASETS);
    for (size_t i = 0; i < datasets; i++) {
        const char *filename = umb_manifest_dataset_filename (manifest, i);
        size_t len = strlen (filename);
        assert (len >= 1 && len <= UMB_MANIFEST_MAX_FILENAME);
        assert (filename [0] != '.' && !strchr (filename, '/') && !strstr (filename, ".."));
        assert (umb_manifest_dataset_find (manifest, umb_manifest_dataset_hash (manifest, i)) == (int) i);
        assert (umb_manifest_dataset_find_hex (manifest, umb_manifest_dataset_hash_hex (manifest, i)) == (int) i);
        assert (umb_sig_key_check (umb_manifest_dataset_key (manifest, i), NULL, 0) != UMB_SIG_KEY_NONE);
        umb_manifest_dataset_decompress (manifest, i);
    }
    size_t consumers = umb_manifest_consumer_count (manifest);
    assert (consumers >= 1 && consumers <= UMB_MANIFEST_MAX_CONSUMERS);
    assert (umb_manifest_consumer_distinct_count (manifest) >= 1
         && umb_manifest_consumer_distinct_count (manifest) <= consumers);
    for (size_t i = 0; i < consumers; i++) {
        size_t first = umb_manifest_consumer_first (manifest, i);
        assert (first <= i);
        assert (umb_manifest_consumer_find (manifest, umb_manifest_consumer_key (manifest, i)) == (int) first);
    }
    uint32_t timeout = umb_manifest_run_timeout_s (manifest);
    assert (timeout >= 1 && timeout <= 604800);
    const umb_manifest_limits_t *limits = umb_manifest_limits (manifest);
    assert (limits->cpus >= 1 && limits->memory_mb >= 16 && limits->results_mb >= 1);
    umb_manifest_agent_port (manifest);
    umb_manifest_destroy (&manifest);
    return 0;
}
