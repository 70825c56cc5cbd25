//  umb_auth_quota - members are a billing limit: before a workspace gains a
//  member (an invitation made, an invitation accepted) billing is asked
//  (billing.check "member.add") off the loop, and the handler runs again
//  with its answer, checking the count once more where it writes
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umb_auth_private.h"

#define S_QUEUE_MAX 64

typedef struct {
    umb_auth_t            *self;
    umb_req_t             *req;
    umb_auth_again_fn     *again;
    char                   workspace_id [UMB_AUTH_ID_SIZE];
    int64_t                in_use;
    umb_billing_verdict_t  verdict;
} s_ask_t;

static void
s_work (void *arg)
{
    s_ask_t *ask = arg;
    umb_billing_client_check (ask->self->billing, ask->workspace_id, "member.add", 1,
                              ask->in_use, false, &ask->verdict);
}

static void
s_done (void *arg, void *job, bool cancelled)
{
    umb_auth_t *self = arg;
    s_ask_t *ask = job;
    int status;
    if (cancelled)
        status = umb_req_fail (ask->req, 503, NULL, "the service is stopping");
    else
    if (ask->verdict.status) {
        if (ask->verdict.status == 503)
            umb_req_set_retryable (ask->req);
        status = umb_req_fail (ask->req, ask->verdict.status, ask->verdict.code, "%s",
                               ask->verdict.reason);
    }
    else
        status = ask->again (self, ask->req, &ask->verdict);
    umb_service_reply (self->service, &ask->req, status);
    free (ask);
}

int
umb_auth_quota_start (umb_auth_t *self)
{
    self->billing = umb_billing_client_new (self->runtime, self->cert);
    self->billing_worker = umb_worker_new (umb_service_loop (self->service), s_work, s_done, self,
                                           S_QUEUE_MAX);
    return self->billing_worker ? 0 : -1;
}

void
umb_auth_quota_stop (umb_auth_t *self)
{
    umb_worker_destroy (&self->billing_worker);
    umb_billing_client_destroy (&self->billing);
}

int
umb_auth_member_quota (umb_auth_t *self, umb_req_t *req, const char *workspace_id,
                       int64_t in_use, const umb_billing_verdict_t *verdict,
                       umb_auth_again_fn *again)
{
    if (in_use < 0)
        return umb_auth_store_error (self, req);
    if (verdict)
        return umb_billing_verdict_within (verdict, in_use, 1) ? 0
             : umb_req_fail (req, 403, "limit_exceeded", "the workspace's plan allows %lld "
                             "members (limit 'members'); the workspace has %lld",
                             (long long) verdict->limit, (long long) in_use);
    if (!umb_billing_client_enabled (self->billing))
        return 0;
    s_ask_t *ask = calloc (1, sizeof (s_ask_t));
    assert (ask);
    ask->self = self;
    ask->again = again;
    snprintf (ask->workspace_id, sizeof ask->workspace_id, "%s", workspace_id);
    ask->in_use = in_use;
    if (umb_worker_submit (self->billing_worker, ask)) {
        free (ask);
        umb_req_set_retryable (req);
        return umb_req_fail (req, 503, NULL, "too many requests are waiting; try again");
    }
    ask->req = umb_req_defer (req);
    return UMB_AUTH_ASKED;
}
