//  bench_upload - times one dataset upload to an agent through umb_agent_client
//
//      bench_upload --agent ENDPOINT --key KEY --file FILE [--insecure-dev]
//
//  Connects (attestation, CURVE), hashes FILE on the client (SHA3-256, as
//  `umbra data` does before it can sign), then streams it with the hash
//  already known, so the two phases are timed apart. Prints "key = value"
//  lines: upload.bytes, upload.client_hash_s, upload.stream_s (begin to end's
//  reply), upload.chunks_s (begin to the last chunk's answer), upload.end_s
//  (agent.upload.end: the agent's hash check and fsync), upload.total_s,
//  upload.stream_mib_s, upload.total_mib_s. Exit 0 if the upload succeeded.
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "umb_agent_client.h"
#include "umb_sig.h"

//  When the last chunk was answered: what follows is agent.upload.end (the
//  agent's final hash check and its fsync of the file)
static void
s_progress (void *arg, const char *phase, uint64_t done, uint64_t total)
{
    if (streq (phase, "uploading") && done == total)
        *(int64_t *) arg = zclock_usecs ();
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "agent",        required_argument, NULL, 'a' },
        { "key",          required_argument, NULL, 'k' },
        { "file",         required_argument, NULL, 'f' },
        { "insecure-dev", no_argument,       NULL, 'I' },
        { NULL, 0, NULL, 0 }
    };
    const char *agent = NULL, *key_path = NULL, *file = NULL;
    bool insecure_dev = false;
    int option;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (option) {
            case 'a': agent = optarg; break;
            case 'k': key_path = optarg; break;
            case 'f': file = optarg; break;
            case 'I': insecure_dev = true; break;
            default:
                fprintf (stderr, "usage: bench_upload --agent EP --key KEY --file FILE [--insecure-dev]\n");
                return 2;
        }
    }
    if (!agent || !key_path || !file || optind != argc) {
        fprintf (stderr, "usage: bench_upload --agent EP --key KEY --file FILE [--insecure-dev]\n");
        return 2;
    }
    char reason [256];
    EVP_PKEY *key = umb_sig_private_load (key_path, reason, sizeof (reason));
    if (!key) {
        fprintf (stderr, "bench_upload: %s: %s\n", key_path, reason);
        return 1;
    }
    umb_agent_client_t *client = umb_agent_client_new (agent);
    if (!client) {
        fprintf (stderr, "bench_upload: bad endpoint %s\n", agent);
        return 2;
    }
    umb_agent_client_set_insecure_dev (client, insecure_dev);
    if (umb_agent_client_connect (client)) {
        fprintf (stderr, "bench_upload: %s\n", umb_agent_client_reason (client));
        return 1;
    }
    int64_t started = zclock_usecs ();
    uint8_t hash [UMB_SIG_HASH_SIZE];
    uint64_t size = 0;
    if (umb_sig_sha3_file (file, hash, &size, reason, sizeof (reason))) {
        fprintf (stderr, "bench_upload: %s\n", reason);
        return 1;
    }
    int64_t hashed = zclock_usecs ();
    int64_t streamed = 0;
    umb_agent_client_set_progress (client, s_progress, &streamed);
    if (umb_agent_client_upload (client, "dataset", file, key, hash)) {
        fprintf (stderr, "bench_upload: %s\n", umb_agent_client_reason (client));
        return 1;
    }
    int64_t done = zclock_usecs ();
    double hash_s = (double) (hashed - started) / 1e6;
    double stream_s = (double) (done - hashed) / 1e6;
    double total_s = (double) (done - started) / 1e6;
    double mib = (double) size / (1024.0 * 1024.0);
    printf ("upload.bytes = %" PRIu64 "\n", size);
    printf ("upload.client_hash_s = %.3f\n", hash_s);
    printf ("upload.stream_s = %.3f\n", stream_s);
    printf ("upload.total_s = %.3f\n", total_s);
    printf ("upload.chunks_s = %.3f\n", (double) (streamed - hashed) / 1e6);
    printf ("upload.end_s = %.3f\n", (double) (done - streamed) / 1e6);
    printf ("upload.stream_mib_s = %.1f\n", mib / stream_s);
    printf ("upload.total_mib_s = %.1f\n", mib / total_s);
    printf ("upload.state = %s\n", umb_agent_client_state (client));
    umb_agent_client_destroy (&client);
    EVP_PKEY_free (key);
    return 0;
}
