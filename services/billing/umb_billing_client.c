//  umb_billing_client - what other services ask of billing
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umb_billing_client.h"
#include "umb_client.h"

struct _umb_billing_client_t {
    umb_runtime_t *runtime;
    zcert_t       *identity;        //  borrowed
    umb_client_t  *client;          //  made at the first call
    bool           enabled;
    int            timeout_ms;
};

umb_billing_client_t *
umb_billing_client_new (umb_runtime_t *runtime, zcert_t *identity)
{
    umb_billing_client_t *self = calloc (1, sizeof (umb_billing_client_t));
    assert (self);
    self->runtime = runtime;
    self->identity = identity;
    umb_config_t *config = umb_runtime_config (runtime);
    self->enabled = umb_config_bool (config, "billing.enabled");
    self->timeout_ms = (int) umb_config_int (config, "mesh.timeout_ms");
    return self;
}

void
umb_billing_client_destroy (umb_billing_client_t **self_p)
{
    umb_billing_client_t *self = *self_p;
    if (self) {
        umb_client_destroy (&self->client);
        free (self);
        *self_p = NULL;
    }
}

bool
umb_billing_client_enabled (umb_billing_client_t *self)
{
    return self->enabled;
}

static void
s_allowed (umb_billing_verdict_t *verdict)
{
    memset (verdict, 0, sizeof *verdict);
    verdict->limit = -1;
}

//  The body of a call, its map begun; NULL when billing is off (the
//  verdict, allowed, is the answer then)
static umb_w_t *
s_body (umb_billing_client_t *self, umb_billing_verdict_t *verdict)
{
    s_allowed (verdict);
    if (!self->enabled)
        return NULL;
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    return w;
}

//  Calls op with the body w (taken); fills verdict. The reply is returned
//  on success for the caller to read (and destroy), NULL otherwise.
static umb_reply_t *
s_call (umb_billing_client_t *self, const char *op, umb_w_t *w, umb_billing_verdict_t *verdict)
{
    s_allowed (verdict);
    if (!self->client)
        self->client = umb_runtime_client (self->runtime, "billing", self->identity);
    if (!self->client) {
        umb_w_destroy (&w);
        verdict->status = 503;
        snprintf (verdict->code, sizeof verdict->code, "unavailable");
        snprintf (verdict->reason, sizeof verdict->reason, "billing cannot be reached (no client "
                  "could be made); nothing was done");
        return NULL;
    }
    umb_reply_t *reply = umb_client_callw (self->client, op, NULL, w, self->timeout_ms, NULL);
    umb_w_destroy (&w);
    if (umb_reply_ok (reply))
        return reply;
    int status = umb_reply_status (reply);
    const char *code = umb_reply_code (reply);
    const char *error = umb_reply_error (reply);
    //  Billing's refusals pass on as they are; its failures are ours to
    //  retry: 503, whatever they were
    bool refusal = status == 402 || status == 403 || status == 404 || status == 409
                || status == 422;
    verdict->status = refusal ? status : 503;
    snprintf (verdict->code, sizeof verdict->code, "%s", refusal && code ? code : "unavailable");
    if (refusal)
        snprintf (verdict->reason, sizeof verdict->reason, "%s", error ? error : "refused");
    else
        snprintf (verdict->reason, sizeof verdict->reason, "billing cannot answer (%d %s); "
                  "nothing was done, try again", status, error ? error : "");
    umb_reply_destroy (&reply);
    return NULL;
}

int
umb_billing_client_check (umb_billing_client_t *self, const char *workspace_id,
                          const char *action, int64_t quantity, int64_t in_use, bool run,
                          umb_billing_verdict_t *verdict)
{
    umb_w_t *w = s_body (self, verdict);
    if (!w)
        return 0;
    umb_w_kv_str (w, "workspace_id", workspace_id);
    umb_w_kv_str (w, "action", action);
    umb_w_kv_int (w, "quantity", quantity);
    if (in_use >= 0)
        umb_w_kv_int (w, "in_use", in_use);
    if (run)
        umb_w_kv_bool (w, "run", true);
    umb_w_map_end (w);
    umb_reply_t *reply = s_call (self, "billing.check", w, verdict);
    if (reply) {
        umb_msg_t *body = umb_reply_body (reply);
        verdict->limit = umb_msg_int (body, "limit", 0, INT64_MAX, -1, false);
        if (umb_msg_failed (body))
            verdict->limit = -1;
        umb_reply_destroy (&reply);
    }
    return verdict->status;
}

bool
umb_billing_verdict_within (const umb_billing_verdict_t *verdict, int64_t count, int64_t quantity)
{
    return verdict->limit < 0 || count + quantity <= verdict->limit;
}

int
umb_billing_client_reserve (umb_billing_client_t *self, const char *reservation,
                            const char *workspace_id, const char *tee, int64_t vcpus,
                            int64_t memory_mb, int64_t seconds, int64_t expires_s,
                            umb_billing_verdict_t *verdict)
{
    umb_w_t *w = s_body (self, verdict);
    if (!w)
        return 0;
    umb_w_kv_str (w, "reservation", reservation);
    umb_w_kv_str (w, "workspace_id", workspace_id);
    umb_w_kv_str (w, "tee", tee);
    umb_w_kv_int (w, "vcpus", vcpus);
    umb_w_kv_int (w, "memory_mb", memory_mb);
    umb_w_kv_int (w, "seconds", seconds);
    umb_w_kv_int (w, "expires_s", expires_s);
    umb_w_map_end (w);
    umb_reply_t *reply = s_call (self, "billing.reserve", w, verdict);
    if (reply) {
        umb_msg_t *body = umb_reply_body (reply);
        verdict->amount = umb_msg_int (body, "amount", 0, INT64_MAX, 0, false);
        verdict->replayed = umb_reply_status (reply) == 200;
        umb_reply_destroy (&reply);
    }
    return verdict->status;
}

int
umb_billing_client_settle (umb_billing_client_t *self, const char *reservation,
                           const char *outcome, int64_t seconds, umb_billing_verdict_t *verdict)
{
    umb_w_t *w = s_body (self, verdict);
    if (!w)
        return 0;
    umb_w_kv_str (w, "reservation", reservation);
    umb_w_kv_str (w, "outcome", outcome);
    umb_w_kv_int (w, "seconds", seconds);
    umb_w_map_end (w);
    umb_reply_t *reply = s_call (self, "billing.settle", w, verdict);
    if (reply) {
        umb_msg_t *body = umb_reply_body (reply);
        verdict->amount = umb_msg_int (body, "charged", 0, INT64_MAX, 0, false);
        verdict->replayed = umb_msg_bool (body, "replayed", false, false);
        umb_reply_destroy (&reply);
    }
    return verdict->status;
}

int
umb_billing_client_usage (umb_billing_client_t *self, const umb_billing_record_t *records,
                          size_t count, umb_billing_verdict_t *verdict)
{
    umb_w_t *w = count ? s_body (self, verdict) : NULL;
    if (!w) {
        s_allowed (verdict);
        return 0;
    }
    umb_w_str (w, "records");
    umb_w_array_begin (w);
    for (size_t i = 0; i < count; i++) {
        const umb_billing_record_t *record = &records [i];
        umb_w_map_begin (w);
        umb_w_kv_str (w, "id", record->id);
        umb_w_kv_str (w, "workspace_id", record->workspace_id);
        umb_w_kv_str (w, "kind", "cvm");
        umb_w_kv_str (w, "tee", record->tee);
        umb_w_kv_int (w, "vcpus", record->vcpus);
        umb_w_kv_int (w, "memory_mb", record->memory_mb);
        umb_w_kv_int (w, "seconds", record->seconds);
        umb_w_kv_int (w, "at", record->at);
        umb_w_kv_bool (w, "paid", record->paid);
        umb_w_map_end (w);
    }
    umb_w_array_end (w);
    umb_w_map_end (w);
    umb_reply_t *reply = s_call (self, "billing.usage.record", w, verdict);
    umb_reply_destroy (&reply);
    return verdict->status;
}
