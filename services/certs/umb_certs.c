//  umb_certs - the certs service actor: start-up, route table, issuance
//  through the worker, revocation and CRLs
#include <assert.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <sodium.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "umb_certs_private.h"

static int s_ca_op (void *state, umb_req_t *req);
static int s_ca_rotate_op (void *state, umb_req_t *req);
static int s_crl_op (void *state, umb_req_t *req);

//  The contract is proto/msgpack/certs.md (summary in certs-ops.txt)
static const umb_route_t s_routes [] = {
    { "certs.issue",        umb_certs_issue,        UMB_ACCESS_USER,   "certs.issue" },
    { "certs.list",         umb_certs_list,         UMB_ACCESS_USER,   "certs.read" },
    { "certs.get",          umb_certs_get,          UMB_ACCESS_USER,   "certs.read" },
    { "certs.revoke",       umb_certs_revoke_op,    UMB_ACCESS_USER,   "certs.revoke" },
    { "certs.renew",        umb_certs_renew,        UMB_ACCESS_USER,   "certs.issue" },
    { "certs.ca",           s_ca_op,                UMB_ACCESS_PUBLIC, NULL },
    { "certs.ca.rotate",    s_ca_rotate_op,         UMB_ACCESS_USER,   NULL },
    { "certs.crl",          s_crl_op,               UMB_ACCESS_PUBLIC, NULL },
    { "certs.mesh.issue",   umb_certs_mesh_issue,   UMB_ACCESS_MESH,   NULL },
    { "certs.mesh.list",    umb_certs_mesh_list,    UMB_ACCESS_USER,   NULL },
    { "certs.mesh.revoke",  umb_certs_mesh_revoke,  UMB_ACCESS_USER,   NULL },
    { "certs.mesh.retire",  umb_certs_mesh_retire,  UMB_ACCESS_MESH,   NULL },
    { "certs.mesh.revoked", umb_certs_mesh_revoked, UMB_ACCESS_MESH,   NULL },
    { NULL }
};

//  ---------------------------------------------------------------- helpers

int64_t
umb_certs_now (void)
{
    return (int64_t) time (NULL);
}

int
umb_certs_bad_request (umb_req_t *req)
{
    umb_msg_t *body = umb_req_body (req);
    return umb_req_fail (req, 400, NULL, "%s", umb_msg_failed (body) ? umb_msg_error (body)
                                                                    : "invalid request");
}

int
umb_certs_store_error (umb_certs_t *self, umb_req_t *req)
{
    sqlite3 *db = umb_store_handle (self->store);
    umb_log_error (self->log, "%s: storage error%s%s", req ? umb_req_op (req) : "start-up",
                   sqlite3_errcode (db) != SQLITE_OK ? ": " : "",
                   sqlite3_errcode (db) != SQLITE_OK ? sqlite3_errmsg (db) : "");
    if (!req)
        return 500;
    //  Writes run in transactions that rolled back: nothing was done
    umb_req_set_retryable (req);
    return umb_req_fail (req, 500, NULL, "storage error; nothing was changed");
}

int
umb_certs_commit (umb_certs_t *self, umb_req_t *req, int rc)
{
    if (rc) {
        umb_store_rollback (self->store);
        return umb_certs_store_error (self, req);
    }
    if (umb_store_commit (self->store))
        return umb_certs_store_error (self, req);
    return 0;
}

const char *
umb_certs_status_name (const umb_certs_cert_t *cert, int64_t now)
{
    return cert->revoked_at ? "revoked" : cert->not_after <= now ? "expired" : "valid";
}

int
umb_certs_filter_parse (const char *text)
{
    return streq (text, "valid") ? UMB_CERTS_VALID
         : streq (text, "revoked") ? UMB_CERTS_REVOKED
         : streq (text, "expired") ? UMB_CERTS_EXPIRED : -1;
}

bool
umb_certs_serial_valid (const char *serial)
{
    size_t length = strlen (serial);
    if (length == 0 || length > 40 || (serial [0] == '0' && length > 1))
        return false;
    for (const char *c = serial; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

void
umb_certs_key_type_of (const char *pem, char *key_type, size_t size)
{
    snprintf (key_type, size, "unknown");
    BIO *bio = BIO_new_mem_buf (pem, -1);
    X509 *x509 = bio ? PEM_read_bio_X509 (bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = x509 ? X509_get0_pubkey (x509) : NULL;
    if (key) {
        int type = EVP_PKEY_get_base_id (key);
        char group [64] = "";
        size_t group_size = 0;
        if (type == EVP_PKEY_ED25519)
            snprintf (key_type, size, "ed25519");
        else
        if (type == EVP_PKEY_X25519)
            snprintf (key_type, size, "x25519");
        else
        if (type == EVP_PKEY_RSA)
            snprintf (key_type, size, "rsa-%d", EVP_PKEY_get_bits (key));
        else
        if (type == EVP_PKEY_EC
        &&  EVP_PKEY_get_group_name (key, group, sizeof group, &group_size) == 1)
            snprintf (key_type, size, "%s", streq (group, "prime256v1") ? "ec-p256"
                                          : streq (group, "secp384r1") ? "ec-p384"
                                          : streq (group, "secp521r1") ? "ec-p521" : group);
    }
    X509_free (x509);
    BIO_free (bio);
    ERR_clear_error ();
}

int
umb_certs_reason_read (umb_req_t *req, const char *text, int *reason)
{
    *reason = UMB_CA_REASON_UNSPECIFIED;
    if (!text)
        return 0;
    int parsed = umb_ca_reason_parse (text);
    if (parsed < 0)
        return umb_req_fail (req, 422, NULL, "reason: '%.32s' is not an RFC 5280 reason "
                             "(keyCompromise, superseded, cessationOfOperation, ...)", text);
    //  A hold would need a release, and removeFromCRL only exists in delta CRLs
    if (parsed == UMB_CA_REASON_CERTIFICATE_HOLD || parsed == UMB_CA_REASON_REMOVE_FROM_CRL)
        return umb_req_fail (req, 422, NULL, "reason: '%s' is not supported; revocation is final",
                             umb_ca_reason_name (parsed));
    *reason = parsed;
    return 0;
}

//  ---------------------------------------------------------------- writers

static void
s_write_time (umb_w_t *w, const char *key, int64_t value)
{
    umb_w_key (w, key);
    if (value)
        umb_w_int (w, value);
    else
        umb_w_nil (w);
}

static void
s_write_revocation (umb_w_t *w, const umb_certs_cert_t *cert)
{
    s_write_time (w, "revoked_at", cert->revoked_at);
    umb_w_kv_str (w, "reason", cert->revoked_at ? umb_ca_reason_name (cert->reason) : NULL);
}

static void
s_write_sans (umb_w_t *w, const char *json)
{
    umb_w_array_begin (w);
    json_t *array = json ? json_loads (json, 0, NULL) : NULL;
    size_t index;
    json_t *item;
    json_array_foreach (array, index, item)
        if (json_is_string (item))
            umb_w_str (w, json_string_value (item));
    json_decref (array);
    umb_w_array_end (w);
}

//  The chain of the issuing CA that signed cert (its certificate, the root).
static const char *
s_chain_of (umb_certs_t *self, const umb_certs_cert_t *cert)
{
    int index = umb_ca_issuer_find (self->ca, cert->issuer);
    if (index < 0)
        return umb_ca_chain_pem (self->ca);
    umb_ca_issuer_t issuer;
    umb_ca_issuer (self->ca, (size_t) index, &issuer);
    return issuer.chain_pem;
}

//  The serial of the issuing CA that issues.
static const char *
s_current_issuer (umb_certs_t *self)
{
    size_t count = umb_ca_issuer_count (self->ca);
    for (size_t index = 0; index < count; index++) {
        umb_ca_issuer_t issuer;
        umb_ca_issuer (self->ca, index, &issuer);
        if (issuer.current)
            return issuer.id;
    }
    return "";
}

void
umb_certs_write_cert (umb_certs_t *self, umb_w_t *w, const umb_certs_cert_t *cert,
                      const char *private_key, int64_t now)
{
    umb_w_map_begin (w);
    umb_w_kv_str (w, "serial", cert->serial);
    umb_w_kv_str (w, "workspace_id", cert->workspace_id);
    umb_w_kv_str (w, "common_name", cert->common_name);
    umb_w_key (w, "sans");
    s_write_sans (w, cert->sans);
    umb_w_kv_str (w, "profile", cert->profile);
    umb_w_kv_str (w, "key_type", cert->key_type);
    umb_w_kv_str (w, "status", umb_certs_status_name (cert, now));
    umb_w_kv_int (w, "not_before", cert->not_before);
    umb_w_kv_int (w, "not_after", cert->not_after);
    umb_w_kv_str (w, "fingerprint", cert->fingerprint);
    umb_w_kv_str (w, "certificate", cert->pem);
    umb_w_kv_str (w, "chain", s_chain_of (self, cert));
    umb_w_kv_str (w, "issuer", cert->issuer);
    s_write_revocation (w, cert);
    umb_w_kv_str (w, "created_by", cert->created_by);
    umb_w_kv_int (w, "created_at", cert->created_at);
    if (private_key)
        umb_w_kv_str (w, "private_key", private_key);
    umb_w_map_end (w);
}

void
umb_certs_write_mesh_cert (umb_w_t *w, const umb_certs_cert_t *cert, int64_t now)
{
    umb_w_map_begin (w);
    umb_w_kv_str (w, "serial", cert->serial);
    umb_w_kv_str (w, "name", cert->common_name);
    umb_w_kv_str (w, "public_key", cert->public_key);
    umb_w_kv_str (w, "status", umb_certs_status_name (cert, now));
    umb_w_kv_int (w, "not_before", cert->not_before);
    umb_w_kv_int (w, "not_after", cert->not_after);
    umb_w_kv_str (w, "certificate", cert->pem);
    s_write_revocation (w, cert);
    umb_w_map_end (w);
}

//  ---------------------------------------------------------------- issuance

void
umb_certs_job_destroy (umb_certs_job_t **job_p)
{
    assert (job_p);
    umb_certs_job_t *job = *job_p;
    if (job) {
        for (char **san = job->sans; san && *san; san++)
            free (*san);
        free (job->sans);
        free (job->csr);
        umb_ca_issued_free (&job->issued);
        sodium_memzero (job, sizeof *job);
        free (job);
        *job_p = NULL;
    }
}

static char *
s_sans_json (char *const *sans)
{
    json_t *array = json_array ();
    assert (array);
    for (char *const *san = sans; san && *san; san++)
        json_array_append_new (array, json_string (*san));
    char *text = json_dumps (array, JSON_COMPACT);
    json_decref (array);
    assert (text);
    return text;
}

static const char *
s_profile_name (umb_ca_profile_t profile)
{
    return profile == UMB_CA_PROFILE_CLIENT ? "client"
         : profile == UMB_CA_PROFILE_MESH ? "mesh" : "server";
}

int
umb_certs_store_issued (umb_certs_t *self, umb_certs_job_t *job, umb_req_t *req,
                        umb_certs_cert_t *row)
{
    memset (row, 0, sizeof *row);
    const umb_ca_issued_t *issued = &job->issued;
    snprintf (row->serial, sizeof row->serial, "%s", issued->serial);
    snprintf (row->kind, sizeof row->kind, "%s", job->mesh ? "mesh" : "tls");
    snprintf (row->workspace_id, sizeof row->workspace_id, "%s", job->workspace_id);
    snprintf (row->common_name, sizeof row->common_name, "%s", job->common_name);
    row->sans = s_sans_json (job->sans);
    snprintf (row->profile, sizeof row->profile, "%s", s_profile_name (job->profile));
    umb_certs_key_type_of (issued->certificate_pem, row->key_type, sizeof row->key_type);
    snprintf (row->public_key, sizeof row->public_key, "%s", job->public_key);
    row->csr = job->csr ? strdup (job->csr) : NULL;
    row->pem = strdup (issued->certificate_pem);
    assert (row->pem);
    snprintf (row->fingerprint, sizeof row->fingerprint, "%s", issued->fingerprint);
    row->not_before = issued->not_before;
    row->not_after = issued->not_after;
    snprintf (row->created_by, sizeof row->created_by, "%s", job->created_by);
    row->created_at = umb_certs_now ();
    snprintf (row->renewed_from, sizeof row->renewed_from, "%s", job->renewed_from);
    snprintf (row->issuer, sizeof row->issuer, "%s", issued->issuer);
    int status = umb_store_begin (self->store)
               ? umb_certs_store_error (self, req)
               : umb_certs_commit (self, req, umb_certs_store_insert (self->store, row));
    if (status == 0)
        umb_certs_status_set (self->status, row->serial, row->issuer, 0, 0);
    else
        umb_certs_cert_clear (row);
    return status;
}

static void
s_work (void *arg)
{
    umb_certs_job_t *job = arg;
    //  A caller who gave up waiting gets nothing made behind its back (the
    //  deferred request is not touched by the loop while it is here)
    if (job->req && umb_req_remaining_ms (job->req) <= 0) {
        job->status = 503;
        snprintf (job->reason, sizeof job->reason, "the deadline passed in the queue; nothing "
                  "was issued");
        return;
    }
    if (job->rotate) {
        //  Here, where certificates are issued, so none is issued half-way
        //  through; OCSP answers for the new issuer before it issues
        job->status = umb_ca_rotate (job->ca, job->rotated) ? 500 : 0;
        if (job->status == 0) {
            int index = umb_ca_issuer_find (job->ca, job->rotated);
            if (index < 0 || umb_ocsp_issuer_add (job->ocsp, job->ca, (size_t) index))
                job->status = 500;
        }
        if (job->status)
            snprintf (job->reason, sizeof job->reason, "cannot make a new issuing CA (is root.key "
                      "in the CA directory?)");
        return;
    }
    umb_ca_request_t request = {
        .common_name = job->common_name, .sans = (const char *const *) job->sans,
        .csr_pem = job->csr, .key_type = job->key_type, .profile = job->profile,
        .ttl_s = job->ttl, .x25519_public = job->mesh ? job->x25519 : NULL
    };
    job->status = umb_ca_issue (job->ca, &request, &job->issued, job->reason, sizeof job->reason);
}

static void
s_publish_issued (umb_certs_t *self, const umb_certs_cert_t *row)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "serial", row->serial);
    umb_w_kv_str (w, "kind", row->kind);
    umb_w_kv_str (w, "workspace_id", *row->workspace_id ? row->workspace_id : NULL);
    umb_w_kv_str (w, "common_name", row->common_name);
    umb_w_kv_int (w, "not_after", row->not_after);
    umb_w_map_end (w);
    umb_service_publish (self->service, "certs.issued", w);
    umb_w_destroy (&w);
}

static int s_crl_refresh (umb_certs_t *self, size_t index);
static void s_write_ca (umb_certs_t *self, umb_w_t *w);

//  A new issuing CA made by the worker, on the loop: its first CRL, the
//  chain /ca.pem serves; the answer is the CA.
static int
s_rotated (umb_certs_t *self, umb_req_t *req, umb_certs_job_t *job)
{
    int index = umb_ca_issuer_find (self->ca, job->rotated);
    assert (index >= 0);
    if (s_crl_refresh (self, (size_t) index))
        umb_log_warn (self->log, "issuing CA %s has no CRL yet; the timer makes it",
                      job->rotated);
    umb_certs_http_set_chain (self->http, umb_ca_chain_pem (self->ca));
    umb_log_info (self->log, "issuing CA %s made by %s; it issues from now on (%zu in use)",
                  job->rotated, umb_req_principal (req)->subject, umb_ca_issuer_count (self->ca));
    s_write_ca (self, umb_req_body_writer (req));
    return 201;
}

//  The worker's answer, on the loop: store, then answer.
static void
s_on_issued (void *arg, void *pointer, bool cancelled)
{
    umb_certs_t *self = arg;
    umb_certs_job_t *job = pointer;
    umb_req_t *req = job->req;
    job->req = NULL;
    int status;
    if (cancelled) {
        umb_req_set_retryable (req);
        status = umb_req_fail (req, 503, NULL, "the service is stopping; nothing was issued");
    }
    else
    if (job->status) {
        if (job->status >= 500)
            umb_req_set_retryable (req);    //  the CA made nothing
        status = umb_req_fail (req, job->status >= 400 && job->status <= 599 ? job->status : 500,
                               NULL, "%s", *job->reason ? job->reason : "cannot issue");
    }
    else
    if (job->rotate)
        status = s_rotated (self, req, job);
    else {
        umb_certs_cert_t row;
        status = umb_certs_store_issued (self, job, req, &row);
        if (status == 0) {
            int64_t now = umb_certs_now ();
            umb_w_t *w = umb_req_body_writer (req);
            if (job->mesh)
                umb_certs_write_mesh_cert (w, &row, now);
            else
                umb_certs_write_cert (self, w, &row, job->issued.private_key_pem, now);
            s_publish_issued (self, &row);
            umb_log_info (self->log, "issued %s certificate %s for '%s'", row.kind, row.serial,
                          row.common_name);
            status = 201;
        }
        umb_certs_cert_clear (&row);
    }
    umb_service_reply (self->service, &req, status);
    umb_certs_job_destroy (&job);
}

int
umb_certs_job_submit (umb_certs_t *self, umb_certs_job_t **job_p, umb_req_t *req)
{
    umb_certs_job_t *job = *job_p;
    *job_p = NULL;
    job->ca = self->ca;
    job->ocsp = self->ocsp;
    if (umb_worker_submit (self->worker, job)) {
        umb_certs_job_destroy (&job);
        umb_req_set_retryable (req);
        return umb_req_fail (req, 503, NULL, "too many certificates are being issued; try again");
    }
    job->req = umb_req_defer (req);
    return UMB_DEFERRED;
}

//  ---------------------------------------------------------------- CRL

typedef umb_certs_crl_t s_crl_t;

static void
s_crl_free (s_crl_t *crl)
{
    free (crl->der);
    free (crl->pem);
    memset (crl, 0, sizeof *crl);
}

typedef struct {
    umb_ca_revoked_t *items;
    size_t            count;
    size_t            capacity;
} s_revoked_t;

static void
s_revoked_add (void *arg, const char *serial, const char *issuer, int64_t revoked_at, int reason)
{
    (void) issuer;
    s_revoked_t *list = arg;
    if (list->count == list->capacity) {
        list->capacity = list->capacity ? list->capacity * 2 : 64;
        list->items = realloc (list->items, list->capacity * sizeof (umb_ca_revoked_t));
        assert (list->items);
    }
    char *copy = strdup (serial);
    assert (copy);
    list->items [list->count++] = (umb_ca_revoked_t) { copy, revoked_at, reason };
}

static bool
s_asn1_seconds (const ASN1_TIME *time, int64_t *seconds)
{
    struct tm tm;
    if (!time || ASN1_TIME_to_tm (time, &tm) != 1)
        return false;
    *seconds = (int64_t) timegm (&tm);
    return true;
}

//  Fills crl's PEM and times from its DER. 0 or -1.
static int
s_crl_describe (s_crl_t *crl)
{
    const unsigned char *cursor = crl->der;
    X509_CRL *x509 = d2i_X509_CRL (NULL, &cursor, (long) crl->size);
    BIO *bio = BIO_new (BIO_s_mem ());
    int rc = -1;
    if (x509 && bio && PEM_write_bio_X509_CRL (bio, x509)
    &&  s_asn1_seconds (X509_CRL_get0_lastUpdate (x509), &crl->this_update)
    &&  s_asn1_seconds (X509_CRL_get0_nextUpdate (x509), &crl->next_update)) {
        char *data = NULL;
        long size = BIO_get_mem_data (bio, &data);
        crl->pem = strndup (data, (size_t) size);
        assert (crl->pem);
        rc = 0;
    }
    BIO_free (bio);
    X509_CRL_free (x509);
    ERR_clear_error ();
    return rc;
}

//  The serial of issuing CA index.
static const char *
s_issuer_id (umb_certs_t *self, size_t index)
{
    umb_ca_issuer_t issuer;
    umb_ca_issuer (self->ca, index, &issuer);
    return issuer.id;
}

//  Inside the caller's transaction: signs issuing CA index's next CRL
//  (number + 1) over its revocations as stored now and stores it. 0; -1 on a
//  storage error; -2 when the CA cannot sign.
static int
s_crl_sign (umb_certs_t *self, size_t index, int64_t now, s_crl_t *crl)
{
    memset (crl, 0, sizeof *crl);
    const char *issuer = s_issuer_id (self, index);
    umb_certs_crl_row_t last;
    int rc = umb_certs_store_crl_get (self->store, issuer, &last);
    if (rc < 0)
        return -1;
    crl->number = last.number + 1;
    umb_certs_crl_row_clear (&last);
    s_revoked_t list = { NULL, 0, 0 };
    if (umb_certs_store_revoked (self->store, issuer, now, s_revoked_add, &list))
        rc = -1;
    else {
        crl->der = umb_ca_crl (self->ca, index, list.items, list.count, (uint64_t) crl->number,
                               self->crl_validity, &crl->size);
        rc = crl->der && s_crl_describe (crl) == 0 ? 0 : -2;
    }
    for (size_t item = 0; item < list.count; item++)
        free ((char *) list.items [item].serial);
    free (list.items);
    if (rc == 0) {
        char *base64 = malloc (sodium_base64_ENCODED_LEN (crl->size, sodium_base64_VARIANT_ORIGINAL));
        assert (base64);
        sodium_bin2base64 (base64, sodium_base64_ENCODED_LEN (crl->size, sodium_base64_VARIANT_ORIGINAL),
                           crl->der, crl->size, sodium_base64_VARIANT_ORIGINAL);
        rc = umb_certs_store_crl_put (self->store, issuer, crl->number, crl->this_update,
                                      crl->next_update, base64) ? -1 : 0;
        free (base64);
    }
    if (rc)
        s_crl_free (crl);
    return rc;
}

//  After the commit: the CRL becomes issuing CA index's one served. Takes
//  crl's contents.
static void
s_crl_apply (umb_certs_t *self, size_t index, s_crl_t *crl)
{
    if (self->http)
        umb_certs_http_set_crl (self->http, s_issuer_id (self, index), index == 0, crl->der,
                                crl->size, crl->pem);
    s_crl_free (&self->crls [index]);
    self->crls [index] = *crl;
    memset (crl, 0, sizeof *crl);
}

//  Makes and stores issuing CA index's new CRL in its own transaction. 0 or
//  -1 (logged).
static int
s_crl_refresh (umb_certs_t *self, size_t index)
{
    if (umb_store_begin (self->store))
        return -1;
    s_crl_t crl;
    int rc = s_crl_sign (self, index, umb_certs_now (), &crl);
    if (rc) {
        umb_store_rollback (self->store);
        umb_log_error (self->log, "cannot make a CRL of issuing CA %s: %s",
                       s_issuer_id (self, index),
                       rc == -2 ? "the CA cannot sign it" : "storage error");
        return -1;
    }
    if (umb_store_commit (self->store)) {
        s_crl_free (&crl);
        umb_log_error (self->log, "cannot store the CRL");
        return -1;
    }
    umb_log_info (self->log, "CRL %lld of issuing CA %s made, valid until %lld",
                  (long long) crl.number, s_issuer_id (self, index), (long long) crl.next_update);
    s_crl_apply (self, index, &crl);
    return 0;
}

//  A CRL is made again when half of its validity has passed.
static bool
s_crl_stale (umb_certs_t *self, size_t index, int64_t now)
{
    const s_crl_t *crl = &self->crls [index];
    return !crl->der || now >= crl->this_update + (crl->next_update - crl->this_update) / 2;
}

static int
s_crl_load_one (umb_certs_t *self, size_t index)
{
    umb_certs_crl_row_t row;
    int rc = umb_certs_store_crl_get (self->store, s_issuer_id (self, index), &row);
    if (rc < 0)
        return -1;
    if (rc == 0 && row.der_base64) {
        s_crl_t crl = { .number = row.number };
        size_t length = strlen (row.der_base64);
        crl.der = malloc (length);
        assert (crl.der);
        if (sodium_base642bin (crl.der, length, row.der_base64, length, NULL, &crl.size, NULL,
                               sodium_base64_VARIANT_ORIGINAL) == 0
        &&  crl.size > 0 && s_crl_describe (&crl) == 0)
            s_crl_apply (self, index, &crl);
        else {
            s_crl_free (&crl);
            umb_log_warn (self->log, "the stored CRL cannot be read; making a new one");
        }
    }
    umb_certs_crl_row_clear (&row);
    return s_crl_stale (self, index, umb_certs_now ()) ? s_crl_refresh (self, index) : 0;
}


//  At start: each issuing CA's stored CRL, or a new one when there is none
//  or it is stale.
static int
s_crl_load (umb_certs_t *self)
{
    size_t count = umb_ca_issuer_count (self->ca);
    for (size_t index = 0; index < count; index++)
        if (s_crl_load_one (self, index))
            return -1;
    return 0;
}
static int
s_on_crl_timer (zloop_t *loop, int timer_id, void *arg)
{
    umb_certs_t *self = arg;
    size_t count = umb_ca_issuer_count (self->ca);
    for (size_t index = 0; index < count; index++)
        if (s_crl_stale (self, index, umb_certs_now ()))
            s_crl_refresh (self, index);    //  logged; tried again on the next tick
    return 0;
}

//  ---------------------------------------------------------------- revocation

static void
s_publish_revoked (umb_certs_t *self, const umb_certs_cert_t *cert, size_t index, int64_t version)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "serial", cert->serial);
    umb_w_kv_str (w, "kind", cert->kind);
    umb_w_kv_str (w, "workspace_id", *cert->workspace_id ? cert->workspace_id : NULL);
    umb_w_kv_str (w, "public_key", *cert->public_key ? cert->public_key : NULL);
    umb_w_kv_str (w, "reason", umb_ca_reason_name (cert->reason));
    umb_w_kv_int (w, "revoked_at", cert->revoked_at);
    umb_w_kv_str (w, "issuer", cert->issuer);
    umb_w_kv_int (w, "crl_number", self->crls [index].number);
    if (version >= 0)
        umb_w_kv_int (w, "mesh_version", version);
    umb_w_map_end (w);
    umb_service_publish (self->service, "certs.revoked", w);
    umb_w_destroy (&w);
}

int
umb_certs_revoke (umb_certs_t *self, umb_req_t *req, umb_certs_cert_t *cert, int reason)
{
    if (cert->revoked_at)
        return umb_req_fail (req, 409, "already_revoked", "certificate '%s' is revoked already",
                             cert->serial);
    bool mesh = streq (cert->kind, "mesh");
    int64_t now = umb_certs_now ();
    int index = umb_ca_issuer_find (self->ca, cert->issuer);
    if (index < 0)
        //  Its issuing CA has expired, so it has too: no relying party takes it
        return umb_req_fail (req, 409, "expired", "certificate '%s' was issued by issuing CA '%s', "
                             "which has expired; so has the certificate", cert->serial,
                             cert->issuer);
    if (umb_store_begin (self->store))
        return umb_certs_store_error (self, req);
    int rc = umb_certs_store_revoke (self->store, cert->serial, now, reason);
    if (rc == UMB_CERTS_NOT_FOUND) {
        umb_store_rollback (self->store);
        return umb_req_fail (req, 409, "already_revoked", "certificate '%s' is revoked already",
                             cert->serial);
    }
    if (rc == 0 && mesh)
        rc = umb_certs_store_mesh_version_bump (self->store);
    s_crl_t crl = { 0 };
    if (rc == 0 && (rc = s_crl_sign (self, (size_t) index, now, &crl)) == -2) {
        umb_store_rollback (self->store);
        umb_log_error (self->log, "%s: the CA cannot sign a CRL", umb_req_op (req));
        umb_req_set_retryable (req);
        return umb_req_fail (req, 500, NULL, "cannot sign the CRL; nothing was changed");
    }
    int status = umb_certs_commit (self, req, rc);
    if (status) {
        s_crl_free (&crl);
        return status;
    }
    //  Committed: OCSP and the CRL say so before the caller hears it
    cert->revoked_at = now;
    cert->reason = reason;
    umb_certs_status_set (self->status, cert->serial, cert->issuer, now, reason);
    umb_ocsp_invalidate (self->ocsp, cert->serial);
    s_crl_apply (self, (size_t) index, &crl);
    int64_t version = mesh ? umb_certs_store_mesh_version (self->store) : -1;
    s_publish_revoked (self, cert, (size_t) index, version);
    umb_log_info (self->log, "revoked %s certificate %s (%s) by %s", cert->kind, cert->serial,
                  umb_ca_reason_name (reason), umb_req_principal (req)->subject);
    return 0;
}

//  ---------------------------------------------------------------- public ops

static int
s_ca_op (void *state, umb_req_t *req)
{
    s_write_ca ((umb_certs_t *) state, umb_req_body_writer (req));
    return 200;
}

static int
s_ca_rotate_op (void *state, umb_req_t *req)
{
    umb_certs_t *self = state;
    if (!umb_req_principal (req)->is_admin)
        return umb_req_fail (req, 403, NULL, "only platform administrators can do '%s'",
                             umb_req_op (req));
    if (umb_ca_issuer_count (self->ca) == UMB_CA_ISSUERS_MAX)
        return umb_req_fail (req, 409, NULL, "%d issuing CAs are in use already; one must expire "
                             "first", UMB_CA_ISSUERS_MAX);
    umb_certs_job_t *job = calloc (1, sizeof (umb_certs_job_t));
    assert (job);
    job->rotate = true;
    return umb_certs_job_submit (self, &job, req);
}

//  The CA as certs.ca answers it.
static void
s_write_ca (umb_certs_t *self, umb_w_t *w)
{
    umb_w_map_begin (w);
    umb_w_kv_str (w, "root", umb_ca_root_pem (self->ca));
    umb_w_kv_str (w, "chain", umb_ca_chain_pem (self->ca));
    umb_w_str (w, "issuers");
    umb_w_array_begin (w);
    size_t count = umb_ca_issuer_count (self->ca);
    for (size_t index = 0; index < count; index++) {
        umb_ca_issuer_t issuer;
        umb_ca_issuer (self->ca, index, &issuer);
        umb_w_map_begin (w);
        umb_w_kv_str (w, "id", issuer.id);
        umb_w_kv_bool (w, "current", issuer.current);
        umb_w_kv_int (w, "not_before", issuer.not_before);
        umb_w_kv_int (w, "not_after", issuer.not_after);
        umb_w_kv_str (w, "crl_url", issuer.crl_url);
        umb_w_kv_str (w, "chain", issuer.chain_pem);
        umb_w_map_end (w);
    }
    umb_w_array_end (w);
    umb_w_map_end (w);
}

static int
s_crl_op (void *state, umb_req_t *req)
{
    umb_certs_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *issuer = umb_msg_str (body, "issuer", UMB_CERTS_READ_SERIAL, false);
    if (umb_msg_failed (body))
        return umb_certs_bad_request (req);
    int index = issuer ? umb_ca_issuer_find (self->ca, issuer) : 0;
    if (index < 0)
        return umb_req_fail (req, 404, NULL, "no issuing CA '%s'", issuer);
    const s_crl_t *crl = &self->crls [index];
    if (!crl->der) {
        umb_req_set_retryable (req);
        return umb_req_fail (req, 503, NULL, "no CRL has been made yet");
    }
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "issuer", s_issuer_id (self, (size_t) index));
    umb_w_kv_str (w, "crl_pem", crl->pem);
    umb_w_key (w, "crl_der");
    umb_w_bin (w, crl->der, crl->size);
    umb_w_kv_int (w, "number", crl->number);
    umb_w_kv_int (w, "this_update", crl->this_update);
    umb_w_kv_int (w, "next_update", crl->next_update);
    umb_w_map_end (w);
    return 200;
}

//  ---------------------------------------------------------------- lifecycle

static void s_fail (umb_certs_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_fail (umb_certs_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->failure, sizeof self->failure, format, args);
    va_end (args);
    umb_log_error (self->log, "cannot start: %s", self->failure);
}

static void
s_status_load (void *arg, const char *serial, const char *issuer, int64_t revoked_at, int reason)
{
    umb_certs_status_set ((umb_certs_status_t *) arg, serial, issuer, revoked_at, reason);
}

//  The base URL written into certificates: certs.public_url, or the HTTP
//  server's address with the port it got. Caller frees.
static char *
s_public_url (umb_certs_t *self)
{
    const char *configured = umb_config_str (self->config, "certs.public_url");
    if (*configured) {
        char *url = strdup (configured);
        assert (url);
        size_t length = strlen (url);
        while (length > 0 && url [length - 1] == '/')
            url [--length] = 0;
        return url;
    }
    const char *listen = umb_config_str (self->config, "certs.http_listen");
    const char *colon = strrchr (listen, ':');
    assert (colon);                     //  the config checked host:port
    char host [256];
    snprintf (host, sizeof host, "%.*s", (int) (colon - listen), listen);
    if (streq (host, "*") || streq (host, "0.0.0.0") || streq (host, "[::]") || !*host) {
        umb_log_warn (self->log, "certs.http_listen %s names no single host; certificates point at "
                      "127.0.0.1 (set certs.public_url)", listen);
        snprintf (host, sizeof host, "127.0.0.1");
    }
    return zsys_sprintf ("http://%s:%u", host, umb_certs_http_port (self->http));
}

static int
s_start_ca (umb_certs_t *self, const char *dir)
{
    const char *configured = umb_config_str (self->config, "certs.ca_dir");
    char *ca_dir = *configured ? strdup (configured) : zsys_sprintf ("%s/ca", dir);
    char *base = s_public_url (self);
    char *ocsp_url = zsys_sprintf ("%s/ocsp", base);
    char *crl_url = zsys_sprintf ("%s/crl", base);
    int key_type = umb_ca_key_type_parse (umb_config_str (self->config, "certs.key_type"));
    self->ca = key_type < 0 ? NULL
             : umb_ca_load_or_create (ca_dir, (umb_ca_key_type_t) key_type, ocsp_url, crl_url,
                                      self->log);
    if (!self->ca)
        s_fail (self, "cannot load or create the CA in %s", ca_dir);
    else
        umb_log_info (self->log, "CA in %s; OCSP %s, CRL %s", ca_dir, ocsp_url, crl_url);
    zstr_free (&ca_dir);
    zstr_free (&base);
    zstr_free (&ocsp_url);
    zstr_free (&crl_url);
    return self->ca ? 0 : -1;
}

umb_certs_t *
umb_certs_new (umb_runtime_t *runtime)
{
    assert (runtime);
    umb_certs_t *self = calloc (1, sizeof (umb_certs_t));
    assert (self);
    self->runtime = runtime;
    self->config = umb_runtime_config (runtime);
    self->log = umb_log_dup (umb_runtime_log (runtime), "certs");
    assert (self->log);
    self->default_ttl = umb_config_int (self->config, "certs.default_ttl_s");
    self->max_ttl = umb_config_int (self->config, "certs.max_ttl_s");
    self->crl_validity = umb_config_int (self->config, "certs.crl_validity_s");
    self->crl_timer = -1;
    self->status = umb_certs_status_new ();

    char *dir = umb_runtime_service_dir (runtime, "certs");
    char *db_path = NULL;
    char *reason = NULL;
    if (sodium_init () < 0) {
        s_fail (self, "libsodium cannot start");
        goto done;
    }
    if (self->default_ttl > self->max_ttl) {
        s_fail (self, "certs.default_ttl_s (%lld) is above certs.max_ttl_s (%lld)",
                (long long) self->default_ttl, (long long) self->max_ttl);
        goto done;
    }
    if (!dir) {
        s_fail (self, "cannot create the service directory under %s",
                umb_runtime_state_dir (runtime));
        goto done;
    }
    self->cert = umb_runtime_identity (runtime, "certs");
    if (!self->cert) {
        s_fail (self, "cannot load the CURVE identity 'certs' from %s",
                umb_runtime_keys_dir (runtime));
        goto done;
    }
    db_path = umb_runtime_db_path (runtime, "certs", dir);
    self->store = umb_certs_store_open (db_path, self->log);
    if (!self->store) {
        s_fail (self, "cannot open the database %s", db_path);
        goto done;
    }
    self->auth = umb_auth_client_new (runtime, self->cert);
    if (!self->auth) {
        s_fail (self, "cannot make a client of the auth service");
        goto done;
    }
    char why [600];
    self->service = umb_auth_client_service (self->auth, runtime, "certs", self->cert, s_routes,
                                             self, self->log, why, sizeof why);
    if (!self->service) {
        s_fail (self, "%s", why);
        goto done;
    }
    //  The HTTP port comes first: certificates carry its URLs
    self->http = umb_certs_http_new (umb_config_str (self->config, "certs.http_listen"),
                                     (size_t) umb_config_int (self->config, "certs.http_threads"),
                                     umb_service_metrics (self->service), self->log, &reason);
    if (!self->http) {
        s_fail (self, "%s", reason ? reason : "cannot start the HTTP server");
        goto done;
    }
    if (s_start_ca (self, dir))
        goto done;
    //  Rows from before several issuing CAs are the first one's
    if (umb_store_begin (self->store)
    ||  umb_certs_store_adopt (self->store, s_issuer_id (self, 0))
    ||  umb_store_commit (self->store)) {
        umb_store_rollback (self->store);
        s_fail (self, "cannot name the first issuing CA in the certificates table");
        goto done;
    }
    if (umb_certs_store_serials (self->store, s_status_load, self->status)) {
        s_fail (self, "cannot read the certificates table");
        goto done;
    }
    self->ocsp = umb_ocsp_new (self->ca, umb_certs_status_lookup, self->status,
                               umb_config_int (self->config, "certs.ocsp_validity_s"));
    if (!self->ocsp) {
        s_fail (self, "cannot start the OCSP responder (is the OCSP signer in the CA directory "
                "intact?)");
        goto done;
    }
    if (s_crl_load (self)) {
        s_fail (self, "cannot make the first CRL");
        goto done;
    }
    if (umb_certs_mesh_own (self))
        goto done;
    self->worker = umb_worker_new (umb_service_loop (self->service), s_work, s_on_issued,
                                         self, UMB_CERTS_QUEUE);
    //  Checked often enough to refresh a CRL before half its life is over
    int64_t period_s = self->crl_validity / 4 < 60 ? self->crl_validity / 4 : 60;
    self->crl_timer = zloop_timer (umb_service_loop (self->service), (size_t) period_s * 1000, 0,
                                   s_on_crl_timer, self);
    umb_certs_http_ready (self->http, self->ocsp, umb_ca_chain_pem (self->ca));
    umb_log_info (self->log, "%zu certificates known; %zu issuing CAs, %s issues",
                  umb_certs_status_size (self->status), umb_ca_issuer_count (self->ca),
                  s_current_issuer (self));

done:
    if (*self->failure) {
        //  Serve nothing at all rather than half a service
        umb_worker_destroy (&self->worker);
        umb_certs_http_destroy (&self->http);
        umb_auth_client_destroy (&self->auth);      //  attached to the service's loop
        umb_service_destroy (&self->service);
    }
    zstr_free (&dir);
    zstr_free (&db_path);
    zstr_free (&reason);
    return self;
}

void
umb_certs_destroy (umb_certs_t **self_p)
{
    assert (self_p);
    umb_certs_t *self = *self_p;
    if (self) {
        //  The worker answers the requests it still holds, through the service
        umb_worker_destroy (&self->worker);
        umb_certs_http_destroy (&self->http);
        //  Before the service: it answers the requests still waiting for auth
        umb_auth_client_destroy (&self->auth);
        umb_service_destroy (&self->service);
        umb_ocsp_destroy (&self->ocsp);
        umb_ca_destroy (&self->ca);
        umb_certs_status_destroy (&self->status);
        umb_store_destroy (&self->store);
        zcert_destroy (&self->cert);
        for (size_t index = 0; index < UMB_CA_ISSUERS_MAX; index++)
            s_crl_free (&self->crls [index]);
        umb_log_destroy (&self->log);
        free (self);
        *self_p = NULL;
    }
}

const char *
umb_certs_failure (umb_certs_t *self)
{
    assert (self);
    return self->failure;
}

//  Answers the questions of whoever started the actor; $TERM ends the loop.
static void
s_on_command (void *arg, zsock_t *pipe, const char *command)
{
    umb_certs_t *self = arg;
    if (streq (command, "HTTP")) {
        if (self->service)
            zstr_sendf (pipe, "%u", umb_certs_http_port (self->http));
        else
            zstr_send (pipe, "");
    }
    else
        umb_log_warn (self->log, "unknown command on the pipe: %.32s", command);
}

void
umb_certs_run (umb_certs_t *self, zsock_t *pipe)
{
    assert (self && pipe);
    umb_service_serve (self->service, pipe, self->failure, s_on_command, self);
}

void
umb_certs_actor (zsock_t *pipe, void *args)
{
    umb_certs_t *self = umb_certs_new ((umb_runtime_t *) args);
    zsock_signal (pipe, 0);
    umb_certs_run (self, pipe);
    umb_certs_destroy (&self);
}
