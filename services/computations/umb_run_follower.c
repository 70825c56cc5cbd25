//  umb_run_follower - follows one run's CVM through backends.run.events
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umb_run_follower.h"
#include "umb_client.h"
#include "umb_config.h"

#define S_WAIT_MS    1000           //  long-poll of backends.run.events (also how long a
                                    //  follower may take to stop)
#define S_RETRY_MS   1000           //  after backends could not be asked

typedef struct {
    umb_runtime_t *runtime;
    zcert_t       *cert;
    char           cvm [64];
    int64_t        after;
} s_args_t;

//  Waits up to ms for a command; -1 on $TERM (or interrupt), else 0 with
//  *after set when AFTER came
static int
s_wait (zsock_t *pipe, int ms, int64_t *after)
{
    zpoller_t *poller = zpoller_new (pipe, NULL);
    assert (poller);
    void *which = zpoller_wait (poller, ms);
    bool stop = zpoller_terminated (poller);
    zpoller_destroy (&poller);
    if (stop)
        return -1;
    if (!which)
        return 0;
    char *command = NULL, *value = NULL;
    if (zstr_recvx (pipe, &command, &value, NULL) < 1 || streq (command, "$TERM")) {
        zstr_free (&command);
        zstr_free (&value);
        return -1;
    }
    if (streq (command, "AFTER") && value)
        *after = strtoll (value, NULL, 10);
    zstr_free (&command);
    zstr_free (&value);
    return 0;
}

static void
s_actor (zsock_t *pipe, void *arg)
{
    s_args_t *args = arg;
    umb_client_t *client = umb_runtime_client (args->runtime, "backends", args->cert);
    zsock_signal (pipe, 0);
    int64_t after = args->after;
    umb_config_t *config = umb_runtime_config (args->runtime);
    int timeout = (int) umb_config_int (config, "mesh.timeout_ms") + S_WAIT_MS;
    while (!zsys_interrupted) {
        if (!client)
            client = umb_runtime_client (args->runtime, "backends", args->cert);
        umb_reply_t *reply = NULL;
        if (client) {
            umb_w_t *w = umb_w_new ();
            umb_w_map_begin (w);
            umb_w_kv_str (w, "cvm", args->cvm);
            umb_w_kv_int (w, "after", after);
            umb_w_kv_int (w, "wait_ms", S_WAIT_MS);
            umb_w_map_end (w);
            reply = umb_client_callw (client, "backends.run.events", NULL, w, timeout, NULL);
            umb_w_destroy (&w);
        }
        if (!reply || !umb_reply_ok (reply)) {
            char reason [300];
            snprintf (reason, sizeof reason, "%d %s", reply ? umb_reply_status (reply) : 503,
                      reply && umb_reply_error (reply) ? umb_reply_error (reply) : "no client");
            umb_reply_destroy (&reply);
            zstr_sendx (pipe, "ERROR", reason, NULL);
            if (s_wait (pipe, S_RETRY_MS, &after) < 0)
                break;
            continue;
        }
        size_t size = 0;
        const void *raw = umb_reply_raw (reply, &size);
        zmsg_t *msg = zmsg_new ();
        zmsg_addstr (msg, "EVENTS");
        zmsg_addmem (msg, raw, size);
        umb_reply_destroy (&reply);
        zmsg_send (&msg, pipe);
        //  The service stores the page, then says how far to acknowledge
        if (s_wait (pipe, -1, &after) < 0)
            break;
    }
    umb_client_destroy (&client);
    free (args);
}

zactor_t *
umb_run_follower_new (umb_runtime_t *runtime, zcert_t *cert, const char *cvm_id, int64_t after)
{
    assert (runtime && cert && cvm_id);
    s_args_t *args = calloc (1, sizeof (s_args_t));
    assert (args);
    args->runtime = runtime;
    args->cert = cert;
    snprintf (args->cvm, sizeof args->cvm, "%s", cvm_id);
    args->after = after;
    return zactor_new (s_actor, args);
}
