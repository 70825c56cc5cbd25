//  umb_certs_mesh - certificates of mesh identities (X25519 CURVE keys):
//  issue for services, list and revoke for platform administrators, and the
//  revocation list every process polls
#include <assert.h>
#include <string.h>
#include <zmq.h>
#include "umb_certs_private.h"

#define S_NAME_MAX 64

//  1..64 characters of A-Z a-z 0-9 . _ -
static bool
s_name_valid (const char *name)
{
    size_t length = strlen (name);
    if (length == 0 || length > S_NAME_MAX)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
        ||    *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

//  A Z85 CURVE public key: 40 characters decoding to 32 bytes.
static bool
s_key_decode (const char *z85, uint8_t key [32])
{
    return strlen (z85) == 40 && zmq_z85_decode (key, z85) != NULL;
}

static int
s_admins_only (umb_req_t *req)
{
    if (!umb_req_principal (req)->is_admin)
        return umb_req_fail (req, 403, NULL, "only platform administrators can do '%s'",
                             umb_req_op (req));
    return 0;
}

//  ---------------------------------------------------------------- operations

int
umb_certs_mesh_issue (void *state, umb_req_t *req)
{
    umb_certs_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *name = umb_msg_str (body, "name", UMB_CERTS_READ_NAME, true);
    const char *public_key = umb_msg_str (body, "public_key", UMB_CERTS_READ_NAME, true);
    if (umb_msg_failed (body))
        return umb_certs_bad_request (req);
    if (!s_name_valid (name))
        return umb_req_fail (req, 422, NULL, "name: 1 to %d characters of A-Z a-z 0-9 . _ -",
                             S_NAME_MAX);
    uint8_t key [32];
    if (!s_key_decode (public_key, key))
        return umb_req_fail (req, 422, NULL, "public_key: a CURVE public key, 40 characters of Z85");
    //  A revoked identity stays out: its key is never certified again
    int revoked = umb_certs_store_mesh_key_revoked (self->store, public_key);
    if (revoked < 0)
        return umb_certs_store_error (self, req);
    if (revoked)
        return umb_req_fail (req, 409, "revoked", "the key %.40s is revoked", public_key);
    //  Every process asks at each start: a certificate with time left is the answer
    umb_certs_cert_t row;
    memset (&row, 0, sizeof row);
    int64_t now = umb_certs_now ();
    int valid = umb_certs_store_mesh_valid (self->store, public_key, now,
                                            UMB_CERTS_OWN_MARGIN_S < self->default_ttl / 2
                                            ? UMB_CERTS_OWN_MARGIN_S : self->default_ttl / 2, &row);
    if (valid < 0)
        return umb_certs_store_error (self, req);
    if (valid == 0) {
        umb_certs_write_mesh_cert (umb_req_body_writer (req), &row, now);
        umb_certs_cert_clear (&row);
        return 200;
    }
    umb_certs_job_t *job = calloc (1, sizeof (umb_certs_job_t));
    assert (job);
    snprintf (job->created_by, sizeof job->created_by, "%s", umb_req_principal (req)->mesh_key);
    snprintf (job->common_name, sizeof job->common_name, "%s", name);
    snprintf (job->public_key, sizeof job->public_key, "%s", public_key);
    memcpy (job->x25519, key, sizeof key);
    job->mesh = true;
    job->profile = UMB_CA_PROFILE_MESH;
    job->ttl = self->default_ttl;
    return umb_certs_job_submit (self, &job, req);
}

typedef struct {
    umb_w_t *w;
    int64_t  now;
} s_list_t;

static void
s_list_item (void *arg, const umb_certs_cert_t *cert)
{
    s_list_t *list = arg;
    umb_certs_write_mesh_cert (list->w, cert, list->now);
}

int
umb_certs_mesh_list (void *state, umb_req_t *req)
{
    umb_certs_t *self = state;
    int status = s_admins_only (req);
    if (status)
        return status;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_key (w, "items");
    umb_w_array_begin (w);
    s_list_t list = { w, umb_certs_now () };
    int rc = umb_certs_store_list (self->store, NULL, UMB_CERTS_ANY, list.now, s_list_item, &list);
    umb_w_array_end (w);
    umb_w_map_end (w);
    return rc ? umb_certs_store_error (self, req) : 200;
}

//  The mesh certificate serial names into row; 0, or the status answered
static int
s_mesh_find (umb_certs_t *self, umb_req_t *req, const char *serial, umb_certs_cert_t *row)
{
    int rc = umb_certs_serial_valid (serial) ? umb_certs_store_get (self->store, serial, row)
                                             : UMB_CERTS_NOT_FOUND;
    if (rc == 0 && !streq (row->kind, "mesh")) {
        umb_certs_cert_clear (row);
        rc = UMB_CERTS_NOT_FOUND;
    }
    if (rc == UMB_CERTS_NOT_FOUND)
        return umb_req_fail (req, 404, NULL, "no mesh certificate '%.64s'", serial);
    if (rc)
        return umb_certs_store_error (self, req);
    return 0;
}

//  Revokes row for reason_name (default_reason when NULL) and answers it
static int
s_mesh_revoke (umb_certs_t *self, umb_req_t *req, umb_certs_cert_t *row, const char *reason_name,
               const char *default_reason)
{
    int reason = 0;
    int status = umb_certs_reason_read (req, reason_name ? reason_name : default_reason, &reason);
    if (status == 0)
        status = umb_certs_revoke (self, req, row, reason);
    if (status == 0) {
        umb_certs_write_mesh_cert (umb_req_body_writer (req), row, umb_certs_now ());
        status = 200;
    }
    umb_certs_cert_clear (row);
    return status;
}

int
umb_certs_mesh_revoke (void *state, umb_req_t *req)
{
    umb_certs_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *serial = umb_msg_str (body, "serial", UMB_CERTS_READ_SERIAL, true);
    const char *reason_name = umb_msg_str (body, "reason", UMB_CERTS_READ_WORD, false);
    if (umb_msg_failed (body))
        return umb_certs_bad_request (req);
    int status = s_admins_only (req);
    if (status)
        return status;
    umb_certs_cert_t row;
    status = s_mesh_find (self, req, serial, &row);
    if (status)
        return status;
    return s_mesh_revoke (self, req, &row, reason_name, NULL);
}

//  A service gives up a certificate it asked for (an agent's, when its CVM
//  is gone): only the identity that requested it may
int
umb_certs_mesh_retire (void *state, umb_req_t *req)
{
    umb_certs_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *serial = umb_msg_str (body, "serial", UMB_CERTS_READ_SERIAL, true);
    const char *reason_name = umb_msg_str (body, "reason", UMB_CERTS_READ_WORD, false);
    if (umb_msg_failed (body))
        return umb_certs_bad_request (req);
    umb_certs_cert_t row;
    int status = s_mesh_find (self, req, serial, &row);
    if (status)
        return status;
    if (!streq (row.created_by, umb_req_principal (req)->mesh_key)) {
        umb_certs_cert_clear (&row);
        return umb_req_fail (req, 403, NULL, "mesh certificate '%.64s' was not issued at this "
                             "identity's request", serial);
    }
    return s_mesh_revoke (self, req, &row, reason_name, "cessationOfOperation");
}

static void
s_key_item (void *arg, const char *key)
{
    umb_w_str ((umb_w_t *) arg, key);
}

int
umb_certs_mesh_revoked (void *state, umb_req_t *req)
{
    umb_certs_t *self = state;
    int64_t version = umb_certs_store_mesh_version (self->store);
    if (version < 0)
        return umb_certs_store_error (self, req);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_key (w, "keys");
    umb_w_array_begin (w);
    int64_t now = umb_certs_now ();
    int rc = umb_certs_store_mesh_revoked_keys (self->store, now, s_key_item, w);
    umb_w_array_end (w);
    umb_w_key (w, "certified");
    umb_w_array_begin (w);
    if (rc == 0)
        rc = umb_certs_store_mesh_certified_keys (self->store, now, s_key_item, w);
    umb_w_array_end (w);
    umb_w_kv_int (w, "version", version);
    umb_w_map_end (w);
    return rc ? umb_certs_store_error (self, req) : 200;
}

//  ---------------------------------------------------------------- own identity

int
umb_certs_mesh_own (umb_certs_t *self)
{
    const char *public_key = zcert_public_txt (self->cert);
    umb_certs_cert_t row;
    memset (&row, 0, sizeof row);
    int rc = umb_certs_store_mesh_valid (self->store, public_key, umb_certs_now (),
                                         UMB_CERTS_OWN_MARGIN_S < self->default_ttl / 2
                                         ? UMB_CERTS_OWN_MARGIN_S : self->default_ttl / 2, &row);
    if (rc == 0) {
        umb_log_debug (self->log, "own mesh certificate %s valid until %lld", row.serial,
                       (long long) row.not_after);
        umb_certs_cert_clear (&row);
        return 0;
    }
    if (rc < 0) {
        snprintf (self->failure, sizeof self->failure, "cannot read the certificates table");
        umb_log_error (self->log, "cannot start: %s", self->failure);
        return -1;
    }
    //  The certs.mesh.issue path, done here and now: nobody waits on the loop yet
    umb_certs_job_t job = {
        .ca = self->ca, .mesh = true, .profile = UMB_CA_PROFILE_MESH, .ttl = self->default_ttl,
        .common_name = "certs", .created_by = "certs"
    };
    snprintf (job.public_key, sizeof job.public_key, "%s", public_key);
    memcpy (job.x25519, zcert_public_key (self->cert), 32);
    umb_ca_request_t request = {
        .common_name = job.common_name, .profile = UMB_CA_PROFILE_MESH, .ttl_s = job.ttl,
        .x25519_public = job.x25519
    };
    int status = umb_ca_issue (self->ca, &request, &job.issued, job.reason, sizeof job.reason);
    if (status == 0)
        status = umb_certs_store_issued (self, &job, NULL, &row);
    if (status == 0)
        umb_log_info (self->log, "issued the service's own mesh certificate %s", row.serial);
    else {
        snprintf (self->failure, sizeof self->failure, "cannot certify the service's own mesh "
                  "key: %s", *job.reason ? job.reason : "storage error");
        umb_log_error (self->log, "cannot start: %s", self->failure);
    }
    umb_certs_cert_clear (&row);
    umb_ca_issued_free (&job.issued);
    return status ? -1 : 0;
}
