//  umb_certs_tls - the operations on workspaces' TLS certificates: issue,
//  list, get, revoke, renew
#include <assert.h>
#include <string.h>
#include <jansson.h>
#include "umb_certs_private.h"

//  ---------------------------------------------------------------- helpers

//  The certificate serial names in the caller's workspace. 0 with row
//  filled, or 404 (also for another workspace's serial or a mesh
//  certificate: nothing leaks) / 500 answered.
static int
s_find (umb_certs_t *self, umb_req_t *req, const char *serial, umb_certs_cert_t *row)
{
    memset (row, 0, sizeof *row);
    int rc = umb_certs_serial_valid (serial) ? umb_certs_store_get (self->store, serial, row)
                                             : UMB_CERTS_NOT_FOUND;
    if (rc == 0 && (!streq (row->kind, "tls") || !streq (row->workspace_id, umb_req_workspace (req)))) {
        umb_certs_cert_clear (row);
        rc = UMB_CERTS_NOT_FOUND;
    }
    if (rc == UMB_CERTS_NOT_FOUND)
        return umb_req_fail (req, 404, NULL, "no certificate '%.64s'", serial);
    if (rc)
        return umb_certs_store_error (self, req);
    return 0;
}

static char **
s_strv_copy (const char *const *items, size_t count)
{
    char **copy = calloc (count + 1, sizeof (char *));
    assert (copy);
    for (size_t index = 0; index < count; index++) {
        copy [index] = strdup (items [index]);
        assert (copy [index]);
    }
    return copy;
}

//  The stored JSON array of SANs as a vector (owned).
static char **
s_sans_parse (const char *json)
{
    json_t *array = json ? json_loads (json, 0, NULL) : NULL;
    size_t count = json_is_array (array) ? json_array_size (array) : 0;
    char **sans = calloc (count + 1, sizeof (char *));
    assert (sans);
    size_t used = 0;
    for (size_t index = 0; index < count; index++) {
        const char *text = json_string_value (json_array_get (array, index));
        if (text) {
            sans [used] = strdup (text);
            assert (sans [used]);
            used++;
        }
    }
    json_decref (array);
    return sans;
}

static umb_certs_job_t *
s_job_new (umb_req_t *req)
{
    umb_certs_job_t *job = calloc (1, sizeof (umb_certs_job_t));
    assert (job);
    snprintf (job->workspace_id, sizeof job->workspace_id, "%s", umb_req_workspace (req));
    snprintf (job->created_by, sizeof job->created_by, "%s", umb_req_principal (req)->subject);
    return job;
}

//  ttl from 60 s to certs.max_ttl_s. 0 or 422 answered.
static int
s_ttl_check (umb_certs_t *self, umb_req_t *req, int64_t ttl)
{
    if (ttl < UMB_CERTS_MIN_TTL || ttl > self->max_ttl)
        return umb_req_fail (req, 422, NULL, "ttl: from %d to %lld seconds", UMB_CERTS_MIN_TTL,
                             (long long) self->max_ttl);
    return 0;
}

//  ---------------------------------------------------------------- operations

int
umb_certs_issue (void *state, umb_req_t *req)
{
    umb_certs_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *common_name = umb_msg_str (body, "common_name", UMB_CERTS_READ_NAME, true);
    const char *csr = umb_msg_str (body, "csr", UMB_CERTS_READ_CSR, false);
    size_t san_count = 0;
    const char **sans = umb_msg_strv (body, "sans", UMB_CERTS_MAX_SANS, UMB_CERTS_READ_SAN,
                                      &san_count, false);
    int64_t ttl = umb_msg_int (body, "ttl", INT64_MIN, INT64_MAX, self->default_ttl, false);
    const char *key_type = umb_msg_str (body, "key_type", UMB_CERTS_READ_WORD, false);
    const char *profile = umb_msg_str (body, "profile", UMB_CERTS_READ_WORD, false);
    if (umb_msg_failed (body))
        return umb_certs_bad_request (req);
    int status = s_ttl_check (self, req, ttl);
    if (status)
        return status;
    if (profile && !streq (profile, "server") && !streq (profile, "client"))
        return umb_req_fail (req, 422, NULL, "profile: 'server' or 'client'");
    int type = UMB_CA_KEY_EC_P256;
    if (key_type && csr)
        return umb_req_fail (req, 422, NULL, "key_type: not with a csr; the CSR's key is certified");
    if (key_type && (type = umb_ca_key_type_parse (key_type)) < 0)
        return umb_req_fail (req, 422, NULL, "key_type: 'ec-p256', 'rsa-3072' or 'ed25519'");
    if (!key_type && !csr) {
        int configured = umb_ca_key_type_parse (umb_config_str (self->config, "certs.key_type"));
        type = configured < 0 ? UMB_CA_KEY_EC_P256 : configured;
    }

    umb_certs_job_t *job = s_job_new (req);
    snprintf (job->common_name, sizeof job->common_name, "%s", common_name);
    job->sans = sans ? s_strv_copy (sans, san_count) : NULL;
    job->csr = csr ? strdup (csr) : NULL;
    job->key_type = (umb_ca_key_type_t) type;
    job->profile = profile && streq (profile, "client") ? UMB_CA_PROFILE_CLIENT
                                                        : UMB_CA_PROFILE_SERVER;
    job->ttl = ttl;
    return umb_certs_job_submit (self, &job, req);
}

typedef struct {
    umb_certs_t *self;
    umb_w_t     *w;
    int64_t      now;
} s_list_t;

static void
s_list_item (void *arg, const umb_certs_cert_t *cert)
{
    s_list_t *list = arg;
    umb_certs_write_cert (list->self, list->w, cert, NULL, list->now);
}

int
umb_certs_list (void *state, umb_req_t *req)
{
    umb_certs_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *status = umb_msg_str (body, "status", UMB_CERTS_READ_WORD, false);
    if (umb_msg_failed (body))
        return umb_certs_bad_request (req);
    int filter = status ? umb_certs_filter_parse (status) : UMB_CERTS_ANY;
    if (filter < 0)
        return umb_req_fail (req, 422, NULL, "status: 'valid', 'revoked' or 'expired'");
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_key (w, "items");
    umb_w_array_begin (w);
    s_list_t list = { self, w, umb_certs_now () };
    int rc = umb_certs_store_list (self->store, umb_req_workspace (req),
                                   (umb_certs_filter_t) filter, list.now, s_list_item, &list);
    umb_w_array_end (w);
    umb_w_map_end (w);
    return rc ? umb_certs_store_error (self, req) : 200;
}

int
umb_certs_get (void *state, umb_req_t *req)
{
    umb_certs_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *serial = umb_msg_str (body, "serial", UMB_CERTS_READ_SERIAL, true);
    if (umb_msg_failed (body))
        return umb_certs_bad_request (req);
    umb_certs_cert_t row;
    int status = s_find (self, req, serial, &row);
    if (status)
        return status;
    umb_certs_write_cert (self, umb_req_body_writer (req), &row, NULL, umb_certs_now ());
    umb_certs_cert_clear (&row);
    return 200;
}

int
umb_certs_revoke_op (void *state, umb_req_t *req)
{
    umb_certs_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *serial = umb_msg_str (body, "serial", UMB_CERTS_READ_SERIAL, true);
    const char *reason_name = umb_msg_str (body, "reason", UMB_CERTS_READ_WORD, false);
    if (umb_msg_failed (body))
        return umb_certs_bad_request (req);
    umb_certs_cert_t row;
    int status = s_find (self, req, serial, &row);
    int reason = 0;
    if (status == 0)
        status = umb_certs_reason_read (req, reason_name, &reason);
    if (status == 0)
        status = umb_certs_revoke (self, req, &row, reason);
    if (status == 0) {
        umb_certs_write_cert (self, umb_req_body_writer (req), &row, NULL, umb_certs_now ());
        status = 200;
    }
    umb_certs_cert_clear (&row);
    return status;
}

int
umb_certs_renew (void *state, umb_req_t *req)
{
    umb_certs_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *serial = umb_msg_str (body, "serial", UMB_CERTS_READ_SERIAL, true);
    int64_t ttl = umb_msg_int (body, "ttl", INT64_MIN, INT64_MAX, self->default_ttl, false);
    if (umb_msg_failed (body))
        return umb_certs_bad_request (req);
    int status = s_ttl_check (self, req, ttl);
    if (status)
        return status;
    umb_certs_cert_t row;
    if ((status = s_find (self, req, serial, &row)))
        return status;
    //  A revoked certificate's key may be compromised: renewal would certify it again
    if (row.revoked_at) {
        umb_certs_cert_clear (&row);
        return umb_req_fail (req, 409, "revoked", "certificate '%s' is revoked; issue a new one",
                             serial);
    }
    umb_certs_job_t *job = s_job_new (req);
    snprintf (job->common_name, sizeof job->common_name, "%s", row.common_name);
    job->sans = s_sans_parse (row.sans);
    job->profile = streq (row.profile, "client") ? UMB_CA_PROFILE_CLIENT : UMB_CA_PROFILE_SERVER;
    job->ttl = ttl;
    snprintf (job->renewed_from, sizeof job->renewed_from, "%s", row.serial);
    if (row.csr) {
        //  The same request again: the same public key, proven by its signature
        job->csr = row.csr;
        row.csr = NULL;
    }
    else {
        int type = umb_ca_key_type_parse (row.key_type);
        job->key_type = type < 0 ? UMB_CA_KEY_EC_P256 : (umb_ca_key_type_t) type;
    }
    umb_certs_cert_clear (&row);
    return umb_certs_job_submit (self, &job, req);
}
