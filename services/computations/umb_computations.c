//  umb_computations - the computations service
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <jansson.h>
#include <sodium.h>
#include "umb_computations.h"
#include "umb_computations_store.h"
#include "umb_computation.h"
#include "umb_audit.h"
#include "umb_auth_client.h"
#include "umb_service.h"
#include "umb_worker.h"
#include "umb_computations_private.h"

#define S_QUEUE_MAX      64         //  jobs waiting for the worker
#define S_AUDIT_MAX      1000
#define S_MEMBERS_MAX    100000
#define S_TICK_MS        1000       //  run deadlines are checked this often

typedef umb_computations_t self_t;

//  ---------------------------------------------------------------- membership

//  A deferred create or update waiting for the workspace's members
typedef struct {
    umb_cmp_job_kind_t kind;            //  UMB_CMP_JOB_MEMBERS
    self_t            *self;
    umb_req_t         *req;
    bool               update;
    umb_computation_t  draft;           //  the definition as asked, users as named
    char               token [4096];    //  the caller's, for auth.members.list; wiped
    char               workspace [64];
    //  out (worker)
    int                status;          //  0, or the failure to answer
    char               reason [512];
    char             **ids;             //  members: user ids and usernames, paired
    char             **names;
    size_t             count;
    int64_t            in_use;          //  a create: the workspace's computations
    umb_billing_verdict_t verdict;      //  ...and billing's word on one more
} s_job_t;

static void
s_job_destroy (s_job_t **job_p)
{
    s_job_t *job = *job_p;
    if (!job)
        return;
    sodium_memzero (job->token, sizeof job->token);
    umb_computation_clear (&job->draft);
    for (size_t i = 0; i < job->count; i++) {
        free (job->ids [i]);
        free (job->names [i]);
    }
    free (job->ids);
    free (job->names);
    free (job);
    *job_p = NULL;
}

//  On the worker: the workspace's members, asked of auth with the caller's token
static void
s_members_work (s_job_t *job)
{
    self_t *self = job->self;
    if (!self->members_client)
        self->members_client = umb_runtime_client (self->runtime, "auth", self->cert);
    if (!self->members_client) {
        job->status = 503;
        snprintf (job->reason, sizeof job->reason, "no client of auth could be made");
        return;
    }
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace", job->workspace);
    umb_w_map_end (w);
    umb_reply_t *reply = umb_client_callw (self->members_client, "auth.members.list", job->token, w,
                                           (int) umb_config_int (self->config, "mesh.timeout_ms"),
                                           NULL);
    umb_w_destroy (&w);
    umb_msg_t *items = umb_reply_ok (reply)
        ? umb_msg_array (umb_reply_body (reply), "items", S_MEMBERS_MAX, true) : NULL;
    if (!items) {
        int status = umb_reply_status (reply);
        //  A member who may not list members cannot name them either
        job->status = status == 403 || status == 404 ? 403 : 503;
        snprintf (job->reason, sizeof job->reason, "the workspace's members cannot be read (%d %s)",
                  status, umb_reply_error (reply) ? umb_reply_error (reply) : "");
        umb_reply_destroy (&reply);
        return;
    }
    size_t count = umb_msg_size (items);
    job->ids = calloc (count + 1, sizeof (char *));
    job->names = calloc (count + 1, sizeof (char *));
    assert (job->ids && job->names);
    for (size_t i = 0; i < count; i++) {
        umb_msg_t *member = umb_msg_at (items, i);
        const char *id = umb_msg_str (member, "user_id", 64, true);
        const char *name = umb_msg_str (member, "username", 64, true);
        if (umb_msg_failed (member))
            continue;
        job->ids [job->count] = strdup (id);
        job->names [job->count++] = strdup (name);
    }
    umb_reply_destroy (&reply);
    //  A new computation needs billing's word too
    if (!job->update
    &&  umb_billing_client_check (self->billing, job->workspace, "computation.create", 1,
                                  job->in_use, false, &job->verdict)) {
        job->status = job->verdict.status;
        snprintf (job->reason, sizeof job->reason, "%s", job->verdict.reason);
    }
}

//  A user named by id or username, as the workspace's member id
static const char *
s_member (void *arg, const char *name)
{
    s_job_t *job = arg;
    for (size_t i = 0; i < job->count; i++)
        if (streq (job->ids [i], name) || streq (job->names [i], name))
            return job->ids [i];
    return NULL;
}

//  ---------------------------------------------------------------- helpers

static int64_t
s_now (void)
{
    return (int64_t) time (NULL);
}

int64_t
umb_computations_now (void)
{
    return s_now ();
}

static int
s_store_fault (self_t *self, umb_req_t *req)
{
    umb_req_set_retryable (req);
    return umb_req_fail (req, 500, "internal", "the store failed; nothing was changed");
}

int
umb_computations_store_fault (umb_computations_t *self, umb_req_t *req)
{
    return s_store_fault (self, req);
}

int
umb_computations_audit (umb_computations_t *self, const char *workspace_id,
                        const char *computation_id, const char *actor, const char *action,
                        json_t *detail)
{
    umb_audit_record_t record;
    memset (&record, 0, sizeof record);
    snprintf (record.computation, sizeof record.computation, "%s", computation_id);
    snprintf (record.actor, sizeof record.actor, "%s", actor);
    snprintf (record.action, sizeof record.action, "%s", action);
    record.detail = json_dumps (detail, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (detail);
    int rc = record.detail ? umb_audit_append (self->store, workspace_id, &record) : -1;
    umb_audit_record_clear (&record);
    return rc;
}

//  Appends the audit record of an action on cmp, in the open transaction.
//  detail is a JSON object (taken).
static int
s_audit (self_t *self, const umb_computation_t *cmp, const char *actor, const char *action,
         json_t *detail)
{
    return umb_computations_audit (self, cmp->workspace_id, cmp->id, actor, action, detail);
}

static void
s_publish (self_t *self, const umb_computation_t *cmp, const char *action)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "computation", cmp->id);
    umb_w_kv_str (w, "workspace_id", cmp->workspace_id);
    umb_w_kv_str (w, "action", action);
    umb_w_kv_int (w, "version", cmp->version);
    umb_w_map_end (w);
    umb_service_publish (self->service, "computations.changed", w);
    umb_w_destroy (&w);
}

//  Loads the computation the body names in the caller's workspace; 0, or the
//  status answered
static int
s_load (self_t *self, umb_req_t *req, umb_computation_t *cmp, umb_participant_t **parts,
        size_t *count)
{
    const char *id = umb_msg_str (umb_req_body (req), "computation", 64, true);
    if (umb_msg_failed (umb_req_body (req)))
        return umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (umb_req_body (req)));
    int rc = umb_computations_store_get (self->store, umb_req_workspace (req), id, cmp);
    if (rc == UMB_STORE_NOT_FOUND) {
        umb_computation_clear (cmp);
        return umb_req_fail (req, 404, "not_found", "no computation '%.64s'", id);
    }
    if (rc == 0 && parts)
        rc = umb_computations_store_parts (self->store, cmp->id, parts, count);
    if (rc) {
        umb_computation_clear (cmp);
        return s_store_fault (self, req);
    }
    return 0;
}

int
umb_computations_load (umb_computations_t *self, umb_req_t *req, umb_computation_t *cmp,
                       umb_participant_t **parts, size_t *count)
{
    return s_load (self, req, cmp, parts, count);
}

//  The participants of cmp as its definition says, keeping the keys of those
//  who stay (old, count); the caller frees the result
static umb_participant_t *
s_participants (const umb_computation_t *cmp, const umb_participant_t *old, size_t old_count,
                size_t *count)
{
    const char *users [2 * UMB_COMPUTATION_MAX_ITEMS + 2];
    users [0] = cmp->owner;
    size_t named = 1 + umb_computation_users (cmp, users + 1, 2 * UMB_COMPUTATION_MAX_ITEMS + 1);
    umb_participant_t *parts = calloc (named + 1, sizeof (umb_participant_t));
    assert (parts);
    size_t made = 0;
    for (size_t i = 0; i < named; i++) {
        bool seen = false;
        for (size_t j = 0; j < made && !seen; j++)
            seen = streq (parts [j].user, users [i]);
        if (seen)
            continue;
        umb_participant_t *part = &parts [made++];
        snprintf (part->user, sizeof part->user, "%s", users [i]);
        part->roles = umb_computation_roles (cmp, users [i]);
        for (size_t j = 0; j < old_count; j++)
            if (streq (old [j].user, users [i]) && old [j].key) {
                part->key = strdup (old [j].key);
                snprintf (part->key_type, sizeof part->key_type, "%s", old [j].key_type);
                snprintf (part->fingerprint, sizeof part->fingerprint, "%s", old [j].fingerprint);
            }
    }
    *count = made;
    return parts;
}

static int
s_reply_computation (umb_req_t *req, const umb_computation_t *cmp, const umb_participant_t *parts,
                     size_t count, int status)
{
    umb_computation_write (cmp, parts, count, umb_req_body_writer (req));
    return status;
}

//  ---------------------------------------------------------------- create, update


//  Defers req until the workspace's members are known
static int
s_resolve_later (self_t *self, umb_req_t *req, umb_computation_t *draft, bool update)
{
    s_job_t *job = calloc (1, sizeof (s_job_t));
    assert (job);
    job->self = self;
    job->update = update;
    job->draft = *draft;                //  taken
    memset (draft, 0, sizeof *draft);
    const char *token = umb_req_principal (req)->token;
    snprintf (job->token, sizeof job->token, "%s", token ? token : "");
    snprintf (job->workspace, sizeof job->workspace, "%s", umb_req_workspace (req));
    if (!update && (job->in_use = umb_computations_store_count (self->store, job->workspace)) < 0) {
        s_job_destroy (&job);
        return s_store_fault (self, req);
    }
    if (umb_computations_submit (self, job)) {
        s_job_destroy (&job);
        umb_req_set_retryable (req);
        return umb_req_fail (req, 503, "unavailable", "too many requests are waiting; try again");
    }
    job->req = umb_req_defer (req);
    return UMB_DEFERRED;
}

//  What an update changed, for the audit record
static json_t *
s_changes (umb_msg_t *body)
{
    static const char *const fields [] = {
        "name", "description", "algorithm", "datasets", "consumers", "backend", "policy",
        "run_timeout_s", "limits", NULL
    };
    json_t *changed = json_array ();
    for (size_t i = 0; fields [i]; i++)
        if (umb_msg_has (body, fields [i]))
            json_array_append_new (changed, json_string (fields [i]));
    return changed;
}

//  The members are known: the create or update is finished and answered
static int
s_finish (self_t *self, s_job_t *job)
{
    umb_req_t *req = job->req;
    const umb_principal_t *caller = umb_req_principal (req);
    umb_computation_t *cmp = &job->draft;
    if (umb_computation_resolve (cmp, s_member, job, job->reason, sizeof job->reason))
        return umb_req_fail (req, 422, "invalid_argument", "%s", job->reason);
    //  Billing's limit holds at the insert: creates answered together cannot
    //  pass it together
    int64_t defined = job->update ? 0 : umb_computations_store_count (self->store, job->workspace);
    if (defined < 0)
        return s_store_fault (self, req);
    if (!job->update && !umb_billing_verdict_within (&job->verdict, defined, 1))
        return umb_req_fail (req, 403, "limit_exceeded", "the workspace's plan allows %lld "
                             "computations (limit 'computations'); the workspace has %lld",
                             (long long) job->verdict.limit, (long long) defined);
    umb_participant_t *old = NULL, *parts = NULL;
    size_t old_count = 0, count = 0;
    if (job->update && umb_computations_store_parts (self->store, cmp->id, &old, &old_count))
        return s_store_fault (self, req);
    int64_t now = s_now ();
    if (!job->update) {
        uint8_t random [8];
        randombytes_buf (random, sizeof random);
        snprintf (cmp->id, sizeof cmp->id, "cmp_");
        for (size_t i = 0; i < sizeof random; i++)
            snprintf (cmp->id + 4 + 2 * i, 3, "%02x", random [i]);
        snprintf (cmp->workspace_id, sizeof cmp->workspace_id, "%s", job->workspace);
        snprintf (cmp->owner, sizeof cmp->owner, "%s", caller->subject);
        cmp->version = 1;
        cmp->created_at = now;
    }
    else
        cmp->version++;
    cmp->updated_at = now;
    parts = s_participants (cmp, old, old_count, &count);
    umb_computations_store_parts_free (&old, old_count);
    int status = job->update ? 200 : 201;
    int rc = umb_store_begin (self->store);
    if (rc == 0)
        rc = job->update ? umb_computations_store_update (self->store, cmp)
                         : umb_computations_store_insert (self->store, cmp);
    if (rc == 0)
        rc = umb_computations_store_parts_set (self->store, cmp->id, parts, count);
    if (rc == 0)
        rc = s_audit (self, cmp, caller->subject, job->update ? "update" : "create",
                      job->update ? json_pack ("{s:s, s:o, s:I}", "name", cmp->name, "changed",
                                               s_changes (umb_req_body (req)),
                                               "version", (json_int_t) cmp->version)
                                  : json_pack ("{s:s, s:I}", "name", cmp->name,
                                               "participants", (json_int_t) count));
    if (rc == 0)
        rc = umb_store_commit (self->store);
    else
        umb_store_rollback (self->store);
    if (rc == UMB_STORE_CONSTRAINT)
        status = umb_req_fail (req, 409, "duplicate_name", "a computation named '%s' exists",
                               cmp->name);
    else
    if (rc)
        status = s_store_fault (self, req);
    else {
        s_reply_computation (req, cmp, parts, count, status);
        s_publish (self, cmp, job->update ? "update" : "create");
        umb_log_info (self->log, "%s computation %s (%s) by %s", job->update ? "updated" : "created",
                      cmp->id, cmp->name, caller->subject);
    }
    umb_computations_store_parts_free (&parts, count);
    return status;
}

static void
s_on_members (self_t *self, s_job_t *job, bool cancelled)
{
    int status;
    if (cancelled)
        status = umb_req_fail (job->req, 503, "unavailable", "the service is stopping");
    else
    if (job->status)
        status = umb_req_fail (job->req, job->status, *job->verdict.code ? job->verdict.code : NULL,
                               "%s", job->reason);
    else
        status = s_finish (self, job);
    umb_service_reply (self->service, &job->req, status);
    s_job_destroy (&job);
}

static int
s_create (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_computation_t draft;
    umb_computation_init (&draft);
    char reason [512];
    int status = umb_computation_read (&draft, umb_req_body (req), false, reason, sizeof reason);
    if (status) {
        umb_computation_clear (&draft);
        return umb_req_fail (req, status, NULL, "%s", reason);
    }
    return s_resolve_later (self, req, &draft, false);
}

int
umb_computations_owner_only (umb_req_t *req, const umb_computation_t *cmp)
{
    if (streq (cmp->owner, umb_req_principal (req)->subject))
        return 0;
    return umb_req_fail (req, 403, "forbidden", "only the owner of computation '%s' can do '%s'",
                         cmp->id, umb_req_op (req));
}


static int
s_update (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_computation_t cmp;
    int status = s_load (self, req, &cmp, NULL, NULL);
    if (status)
        return status;
    umb_msg_t *body = umb_req_body (req);
    int64_t version = umb_msg_int (body, "version", 1, INT64_MAX, 0, false);
    char reason [512];
    if ((status = umb_computations_owner_only (req, &cmp)) == 0) {
        if (umb_msg_failed (body))
            status = umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
        else
        if (version && version != cmp.version)
            status = umb_req_fail (req, 409, "conflict", "computation '%s' is at version %lld, "
                                   "not %lld; nothing was changed", cmp.id,
                                   (long long) cmp.version, (long long) version);
        else
        if ((status = umb_computation_read (&cmp, body, true, reason, sizeof reason)))
            status = umb_req_fail (req, status, NULL, "%s", reason);
    }
    if (status) {
        umb_computation_clear (&cmp);
        return status;
    }
    return s_resolve_later (self, req, &cmp, true);
}

static int
s_delete (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_computation_t cmp;
    umb_participant_t *parts = NULL;
    size_t count = 0;
    int status = s_load (self, req, &cmp, &parts, &count);
    if (status)
        return status;
    if ((status = umb_computations_owner_only (req, &cmp)) == 0
    &&  umb_computations_runs_live (self, cmp.id))
        status = umb_req_fail (req, 409, "run_active", "computation '%s' has a run that is not "
                               "over; stop it first", cmp.id);
    if (status == 0) {
        int rc = umb_store_begin (self->store);
        if (rc == 0)
            rc = umb_computations_store_delete (self->store, cmp.id);
        if (rc == 0)
            rc = s_audit (self, &cmp, umb_req_principal (req)->subject, "delete",
                          json_pack ("{s:s, s:I}", "name", cmp.name,
                                     "version", (json_int_t) cmp.version));
        if (rc == 0)
            rc = umb_store_commit (self->store);
        else
            umb_store_rollback (self->store);
        if (rc)
            status = s_store_fault (self, req);
        else {
            status = s_reply_computation (req, &cmp, parts, count, 200);
            s_publish (self, &cmp, "delete");
        }
    }
    umb_computations_store_parts_free (&parts, count);
    umb_computation_clear (&cmp);
    return status;
}

//  ---------------------------------------------------------------- keys, assets

//  Saves a changed computation (version + 1) with its participants and the
//  audit record of the change; 0, or the status answered
static int
s_save (self_t *self, umb_req_t *req, umb_computation_t *cmp, const umb_participant_t *parts,
        size_t count, const char *action, json_t *detail)
{
    cmp->version++;
    cmp->updated_at = s_now ();
    int rc = umb_store_begin (self->store);
    if (rc == 0)
        rc = umb_computations_store_update (self->store, cmp);
    if (rc == 0)
        rc = umb_computations_store_parts_set (self->store, cmp->id, parts, count);
    if (rc == 0)
        rc = s_audit (self, cmp, umb_req_principal (req)->subject, action, detail);
    else
        json_decref (detail);
    if (rc == 0)
        rc = umb_store_commit (self->store);
    else
        umb_store_rollback (self->store);
    if (rc)
        return s_store_fault (self, req);
    s_publish (self, cmp, action);
    return 0;
}

static int
s_keys_set (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_computation_t cmp;
    umb_participant_t *parts = NULL;
    size_t count = 0;
    int status = s_load (self, req, &cmp, &parts, &count);
    if (status)
        return status;
    const char *key = umb_msg_str (umb_req_body (req), "key", 16384, true);
    const char *caller = umb_req_principal (req)->subject;
    umb_participant_t *mine = NULL;
    for (size_t i = 0; i < count && !mine; i++)
        if (streq (parts [i].user, caller))
            mine = &parts [i];
    char reason [512];
    if (umb_msg_failed (umb_req_body (req)))
        status = umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (umb_req_body (req)));
    else
    if (!mine)
        status = umb_req_fail (req, 403, "forbidden", "you take no part in computation '%s'",
                               cmp.id);
    else
    if (umb_participant_set_key (mine, key, reason, sizeof reason))
        status = umb_req_fail (req, 422, "invalid_argument", "%s", reason);
    else
    if ((status = s_save (self, req, &cmp, parts, count, "keys.set",
                          json_pack ("{s:s, s:s, s:s}", "user", caller, "key_type", mine->key_type,
                                     "fingerprint", mine->fingerprint))) == 0) {
        umb_participant_write (mine, umb_req_body_writer (req));
        status = 200;
    }
    umb_computations_store_parts_free (&parts, count);
    umb_computation_clear (&cmp);
    return status;
}

static int
s_assets_set (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_computation_t cmp;
    umb_participant_t *parts = NULL;
    size_t count = 0;
    int status = s_load (self, req, &cmp, &parts, &count);
    if (status)
        return status;
    umb_msg_t *body = umb_req_body (req);
    const char *asset = umb_msg_str (body, "asset", 256, true);
    const char *hash = umb_msg_str (body, "hash", 128, true);
    const char *provider = NULL;
    if (umb_msg_failed (body))
        status = umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    else
    if (strlen (hash) != 64 || strspn (hash, "0123456789abcdef") != 64)
        status = umb_req_fail (req, 422, "invalid_argument", "hash: not 64 lowercase hex digits "
                               "(SHA3-256, as umbra checksum prints)");
    else
    //  Set on the loaded copy: refused, the copy is dropped unsaved
    if (umb_computation_set_hash (&cmp, asset, hash, &provider))
        status = umb_req_fail (req, 404, "not_found", "no asset '%.64s' in computation '%s'",
                               asset, cmp.id);
    else
    if (!streq (provider, umb_req_principal (req)->subject)
    &&  !streq (cmp.owner, umb_req_principal (req)->subject))
        status = umb_req_fail (req, 403, "forbidden", "only the provider of '%s' or the owner can "
                               "set its hash", asset);
    else
    if ((status = s_save (self, req, &cmp, parts, count, "assets.set",
                          json_pack ("{s:s, s:s}", "asset", asset, "hash", hash))) == 0)
        status = s_reply_computation (req, &cmp, parts, count, 200);
    umb_computations_store_parts_free (&parts, count);
    umb_computation_clear (&cmp);
    return status;
}

//  ---------------------------------------------------------------- the worker

//  Every job starts with its kind: the members' of a workspace here, the
//  runs' (the CVM's) in umb_computations_runs
static void
s_work (void *arg)
{
    if (*(umb_cmp_job_kind_t *) arg == UMB_CMP_JOB_MEMBERS)
        s_members_work (arg);
    else
        umb_computations_runs_work (arg);
}

static void
s_on_job (void *arg, void *job, bool cancelled)
{
    if (*(umb_cmp_job_kind_t *) job == UMB_CMP_JOB_MEMBERS)
        s_on_members ((self_t *) arg, job, cancelled);
    else
        umb_computations_runs_done ((self_t *) arg, job, cancelled);
}

int
umb_computations_submit (umb_computations_t *self, void *job)
{
    umb_cmp_job_kind_t kind = *(umb_cmp_job_kind_t *) job;
    umb_worker_t *worker = self->worker;
    if (kind == UMB_CMP_JOB_CVM_DESTROY || kind == UMB_CMP_JOB_REAP)
        worker = self->cleanup;
    else
    if (kind == UMB_CMP_JOB_MEMBERS || kind == UMB_CMP_JOB_RESERVE || kind == UMB_CMP_JOB_SETTLE)
        worker = self->calls;
    return umb_worker_submit (worker, job);
}

//  ---------------------------------------------------------------- reads

static int
s_get (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_computation_t cmp;
    umb_participant_t *parts = NULL;
    size_t count = 0;
    int status = s_load (self, req, &cmp, &parts, &count);
    if (status)
        return status;
    status = s_reply_computation (req, &cmp, parts, count, 200);
    umb_computations_store_parts_free (&parts, count);
    umb_computation_clear (&cmp);
    return status;
}

typedef struct {
    umb_w_t   *w;
    char       last [40];
} s_list_t;

static void
s_list_item (umb_computation_t *cmp, const umb_participant_t *parts, size_t count, void *arg)
{
    s_list_t *list = arg;
    umb_computation_write (cmp, parts, count, list->w);
    snprintf (list->last, sizeof list->last, "%s", cmp->id);
}

static int
s_list (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *participant = umb_msg_str (body, "participant", 128, false);
    const char *name = umb_msg_str (body, "name", 256, false);
    int64_t limit = umb_msg_int (body, "limit", INT64_MIN, INT64_MAX, 100, false);
    const char *cursor = umb_msg_str (body, "cursor", 128, false);
    if (umb_msg_failed (body))
        return umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    if (limit < 1 || limit > UMB_COMPUTATIONS_LIST_MAX)
        return umb_req_fail (req, 422, "invalid_argument", "limit: 1..%d", UMB_COMPUTATIONS_LIST_MAX);
    if (name && (!*name || strlen (name) > 128))
        return umb_req_fail (req, 422, "invalid_argument", "name: 1 to 128 bytes");
    if (participant && streq (participant, "me"))
        participant = umb_req_principal (req)->subject;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_str (w, "items");
    umb_w_array_begin (w);
    s_list_t list = { w, "" };
    bool more = false;
    int rc = umb_computations_store_list (self->store, self->definitions, umb_req_workspace (req),
                                          participant, name,
                                          cursor, limit, s_list_item, &list, &more);
    umb_w_array_end (w);
    umb_w_kv_str (w, "next", more ? list.last : NULL);
    umb_w_map_end (w);
    if (rc) {
        umb_w_reset (w);
        return s_store_fault (self, req);
    }
    return 200;
}

static int
s_check (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_computation_t cmp;
    umb_participant_t *parts = NULL;
    size_t count = 0;
    int status = s_load (self, req, &cmp, &parts, &count);
    if (status)
        return status;
    char **missing = umb_computation_missing (&cmp, parts, count);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_bool (w, "ready", missing [0] == NULL);
    umb_w_str (w, "missing");
    umb_w_array_begin (w);
    for (size_t i = 0; missing [i]; i++)
        umb_w_str (w, missing [i]);
    umb_w_array_end (w);
    umb_w_map_end (w);
    umb_computation_missing_free (&missing);
    umb_computations_store_parts_free (&parts, count);
    umb_computation_clear (&cmp);
    return 200;
}

static int
s_manifest (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_computation_t cmp;
    umb_participant_t *parts = NULL;
    size_t count = 0;
    int status = s_load (self, req, &cmp, &parts, &count);
    if (status)
        return status;
    char reason [1200];
    char *manifest = umb_computation_manifest (&cmp, parts, count, reason, sizeof reason);
    if (!manifest)
        status = umb_req_fail (req, 409, "not_ready", "%s", reason);
    else {
        umb_w_t *w = umb_req_body_writer (req);
        umb_w_map_begin (w);
        umb_w_kv_str (w, "manifest", manifest);
        umb_w_kv_int (w, "version", cmp.version);
        umb_w_map_end (w);
        status = 200;
    }
    free (manifest);
    umb_computations_store_parts_free (&parts, count);
    umb_computation_clear (&cmp);
    return status;
}

static void
s_audit_item (const umb_audit_record_t *record, void *arg)
{
    umb_w_t *w = arg;
    umb_w_map_begin (w);
    umb_w_kv_int (w, "seq", record->seq);
    umb_w_kv_int (w, "time", record->time);
    umb_w_kv_str (w, "computation", record->computation);
    umb_w_kv_str (w, "actor", record->actor);
    umb_w_kv_str (w, "action", record->action);
    umb_w_kv_str (w, "detail", record->detail);
    umb_w_kv_str (w, "prev", record->prev);
    umb_w_kv_str (w, "hash", record->hash);
    umb_w_map_end (w);
}

static int
s_audit_list (void *state, umb_req_t *req)
{
    self_t *self = state;
    int64_t after, limit;
    int status = umb_req_page (req, 500, S_AUDIT_MAX, &after, &limit);
    if (status)
        return status;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_str (w, "records");
    umb_w_array_begin (w);
    int64_t last = 0;
    int rc = umb_audit_list (self->store, umb_req_workspace (req), after, limit, s_audit_item, w,
                             &last);
    umb_w_array_end (w);
    umb_w_kv_int (w, "last", last);
    umb_w_map_end (w);
    if (rc) {
        umb_w_reset (w);
        return s_store_fault (self, req);
    }
    return 200;
}

static void
s_stats_day (const umb_computations_day_t *day, void *arg)
{
    umb_w_t *w = arg;
    umb_w_map_begin (w);
    umb_w_kv_str (w, "day", day->day);
    umb_w_kv_int (w, "computations_created", day->computations_created);
    umb_w_kv_int (w, "runs_started", day->runs_started);
    umb_w_kv_int (w, "runs_completed", day->runs_completed);
    umb_w_kv_int (w, "runs_failed", day->runs_failed);
    umb_w_kv_int (w, "runs_cancelled", day->runs_cancelled);
    umb_w_map_end (w);
}

static int
s_stats (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    int64_t days = umb_msg_int (body, "days", INT64_MIN, INT64_MAX, 30, false);
    if (umb_msg_failed (body))
        return umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (body));
    if (days < 1 || days > 366)
        return umb_req_fail (req, 422, "invalid_argument", "days: 1..366");
    //  From the start of the UTC day days - 1 days ago
    int64_t now = s_now ();
    int64_t since = now - now % 86400 - (days - 1) * 86400;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_str (w, "days");
    umb_w_array_begin (w);
    int rc = umb_computations_store_stats (self->store, umb_req_workspace (req), since,
                                           s_stats_day, w);
    umb_w_array_end (w);
    umb_w_map_end (w);
    if (rc) {
        umb_w_reset (w);
        return s_store_fault (self, req);
    }
    return 200;
}

//  The contract is proto/msgpack/computations.md
static const umb_route_t s_routes [] = {
    { "computations.create",     s_create,     UMB_ACCESS_USER, "computations.write" },
    { "computations.list",       s_list,       UMB_ACCESS_USER, "computations.read" },
    { "computations.get",        s_get,        UMB_ACCESS_USER, "computations.read" },
    { "computations.update",     s_update,     UMB_ACCESS_USER, "computations.write" },
    { "computations.delete",     s_delete,     UMB_ACCESS_USER, "computations.write" },
    { "computations.keys.set",   s_keys_set,   UMB_ACCESS_USER, "computations.write" },
    { "computations.assets.set", s_assets_set, UMB_ACCESS_USER, "computations.write" },
    { "computations.check",      s_check,      UMB_ACCESS_USER, "computations.read" },
    { "computations.manifest",   s_manifest,   UMB_ACCESS_USER, "computations.read" },
    { "computations.audit.list", s_audit_list, UMB_ACCESS_USER, "computations.read" },
    { "computations.stats",      s_stats,      UMB_ACCESS_USER, "computations.read" },
    { "computations.runs.start", umb_computations_runs_start, UMB_ACCESS_USER, "computations.write" },
    { "computations.runs.list",  umb_computations_runs_list,  UMB_ACCESS_USER, "computations.read" },
    { "computations.runs.get",   umb_computations_runs_get,   UMB_ACCESS_USER, "computations.read" },
    { "computations.runs.stop",  umb_computations_runs_stop,  UMB_ACCESS_USER, "computations.write" },
    { "computations.runs.events", umb_computations_runs_events, UMB_ACCESS_USER, "computations.read" },
    { "computations.runs.logs",  umb_computations_runs_logs,  UMB_ACCESS_USER, "computations.read" },
    { NULL }
};

//  ---------------------------------------------------------------- lifecycle

static void s_fail (self_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_fail (self_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->failure, sizeof self->failure, format, args);
    va_end (args);
    umb_log_error (self->log, "cannot start: %s", self->failure);
}

static int s_on_tick (zloop_t *loop, int timer_id, void *arg);

static self_t *
s_self_new (umb_runtime_t *runtime)
{
    self_t *self = calloc (1, sizeof (self_t));
    assert (self);
    self->runtime = runtime;
    self->config = umb_runtime_config (runtime);
    self->log = umb_log_dup (umb_runtime_log (runtime), "computations");
    char *db_path = NULL;
    if (sodium_init () < 0) {
        s_fail (self, "libsodium cannot start");
        goto done;
    }
    self->dir = zsys_sprintf ("%s/computations", umb_runtime_state_dir (runtime));
    if (mkdir (self->dir, 0700) && errno != EEXIST) {
        s_fail (self, "cannot create %s: %s", self->dir, strerror (errno));
        goto done;
    }
    self->cert = umb_runtime_identity (runtime, "computations");
    if (!self->cert) {
        s_fail (self, "cannot load the CURVE identity 'computations' from %s",
                umb_runtime_keys_dir (runtime));
        goto done;
    }
    db_path = umb_runtime_db_path (runtime, "computations", self->dir);
    self->store = umb_computations_store_open (db_path, self->log);
    //  Four pages of the largest listing
    self->definitions = umb_computation_cache_new (4 * UMB_COMPUTATIONS_LIST_MAX);
    if (!self->store) {
        s_fail (self, "cannot open the database %s", db_path);
        goto done;
    }
    self->auth = umb_auth_client_new (runtime, self->cert);
    if (!self->auth) {
        s_fail (self, "cannot make a client of the auth service");
        goto done;
    }
    char reason [600];
    self->service = umb_auth_client_service (self->auth, runtime, "computations", self->cert,
                                             s_routes, self, self->log, reason, sizeof reason);
    if (!self->service) {
        s_fail (self, "%s", reason);
        goto done;
    }
    self->worker = umb_worker_new (umb_service_loop (self->service), s_work, s_on_job, self,
                                   S_QUEUE_MAX);
    self->cleanup = umb_worker_new (umb_service_loop (self->service), s_work, s_on_job, self,
                                    S_QUEUE_MAX);
    self->calls = umb_worker_new (umb_service_loop (self->service), s_work, s_on_job, self,
                                  S_QUEUE_MAX);
    self->billing = umb_billing_client_new (runtime, self->cert);
    self->settling = zhashx_new ();
    self->tick = zloop_timer (umb_service_loop (self->service), S_TICK_MS, 0, s_on_tick, self);
    if (umb_computations_runs_resume (self)) {
        s_fail (self, "cannot read the runs table");
        goto done;
    }
    umb_log_info (self->log, "computations on %s", umb_service_endpoint (self->service));
done:
    if (*self->failure) {
        umb_auth_client_destroy (&self->auth);
        umb_service_destroy (&self->service);
    }
    free (db_path);
    return self;
}

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    //  The followers and the worker first: their jobs are answered (cancelled)
    umb_computations_runs_destroy (self);
    umb_worker_destroy (&self->worker);
    umb_worker_destroy (&self->cleanup);
    umb_worker_destroy (&self->calls);
    umb_billing_client_destroy (&self->billing);
    zhashx_destroy (&self->settling);
    umb_client_destroy (&self->members_client);
    umb_client_destroy (&self->backends_client);
    umb_auth_client_destroy (&self->auth);
    umb_service_destroy (&self->service);
    umb_store_destroy (&self->store);
    umb_computation_cache_destroy (&self->definitions);
    zcert_destroy (&self->cert);
    free (self->dir);
    umb_log_destroy (&self->log);
    free (self);
    *self_p = NULL;
}

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    umb_computations_runs_tick ((self_t *) arg);
    return 0;
}

static void
s_on_command (void *arg, zsock_t *pipe, const char *command)
{
    self_t *self = arg;
    umb_log_warn (self->log, "unknown command on the pipe: %.32s", command);
    (void) pipe;
}

void
umb_computations_actor (zsock_t *pipe, void *args)
{
    self_t *self = s_self_new ((umb_runtime_t *) args);
    zsock_signal (pipe, 0);
    umb_service_serve (self->service, pipe, self->failure, s_on_command, self);
    s_self_destroy (&self);
}
