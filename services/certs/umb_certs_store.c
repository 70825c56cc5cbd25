//  umb_certs_store - the certs service's SQL: schema migrations and queries
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <czmq.h>
#include "umb_certs_store.h"

//  Portable SQL: standard types, serials made by the CA, no AUTOINCREMENT, no
//  INSERT OR. Certificates are never deleted: the CRL, OCSP and audits need
//  them after they expire. The CRL's DER is kept as base64 text.
static const umb_migration_t s_migrations [] = {
    { 1,
      "CREATE TABLE certificates ("
      "  serial       TEXT PRIMARY KEY,"
      "  kind         TEXT NOT NULL CHECK (kind IN ('tls', 'mesh')),"
      "  workspace_id TEXT,"
      "  common_name  TEXT NOT NULL,"
      "  sans         TEXT NOT NULL,"
      "  profile      TEXT NOT NULL CHECK (profile IN ('server', 'client', 'mesh')),"
      "  key_type     TEXT NOT NULL,"
      "  public_key   TEXT,"
      "  csr          TEXT,"
      "  pem          TEXT NOT NULL,"
      "  fingerprint  TEXT NOT NULL,"
      "  not_before   INTEGER NOT NULL,"
      "  not_after    INTEGER NOT NULL,"
      "  revoked_at   INTEGER,"
      "  reason       INTEGER,"
      "  created_by   TEXT NOT NULL,"
      "  created_at   INTEGER NOT NULL,"
      "  renewed_from TEXT REFERENCES certificates (serial),"
      "  CHECK ((kind = 'tls' AND workspace_id IS NOT NULL AND public_key IS NULL)"
      "      OR (kind = 'mesh' AND workspace_id IS NULL AND public_key IS NOT NULL)),"
      "  CHECK ((revoked_at IS NULL) = (reason IS NULL))"
      ");"
      "CREATE INDEX certificates_by_workspace ON certificates (workspace_id, created_at);"
      "CREATE INDEX certificates_by_kind ON certificates (kind, created_at);"
      "CREATE INDEX certificates_by_key ON certificates (public_key);"
      "CREATE INDEX certificates_revoked ON certificates (revoked_at);"
      "CREATE TABLE crl_state ("
      "  id           INTEGER PRIMARY KEY CHECK (id = 1),"
      "  number       INTEGER NOT NULL,"
      "  this_update  INTEGER NOT NULL,"
      "  next_update  INTEGER NOT NULL,"
      "  der_base64   TEXT NOT NULL"
      ");"
      "CREATE TABLE mesh_state ("
      "  id                 INTEGER PRIMARY KEY CHECK (id = 1),"
      "  revocation_version INTEGER NOT NULL"
      ");"
      "INSERT INTO mesh_state (id, revocation_version) VALUES (1, 0);"
    },
    //  Several issuing CAs (umb_ca_rotate): each certificate names its issuer,
    //  and each issuer has a CRL of its own. '' is the first issuing CA until
    //  the service names it (umb_certs_store_adopt).
    { 2,
      "ALTER TABLE certificates ADD COLUMN issuer TEXT NOT NULL DEFAULT '';"
      "CREATE INDEX certificates_by_issuer ON certificates (issuer, revoked_at);"
      "CREATE TABLE crls ("
      "  issuer       TEXT PRIMARY KEY,"
      "  number       INTEGER NOT NULL,"
      "  this_update  INTEGER NOT NULL,"
      "  next_update  INTEGER NOT NULL,"
      "  der_base64   TEXT NOT NULL"
      ");"
      "INSERT INTO crls (issuer, number, this_update, next_update, der_base64)"
      "  SELECT '', number, this_update, next_update, der_base64 FROM crl_state;"
      "DROP TABLE crl_state;"
    },
    { 0, NULL }
};

umb_store_t *
umb_certs_store_open (const char *path, umb_log_t *log)
{
    return umb_store_new (path, s_migrations, log);
}

//  ---------------------------------------------------------------- helpers

_Static_assert (UMB_CERTS_NOT_FOUND == UMB_STORE_NOT_FOUND, "umb_store_get's not found");

static char *
s_column_dup (sqlite3_stmt *stmt, int column)
{
    const char *text = (const char *) sqlite3_column_text (stmt, column);
    if (!text)
        return NULL;
    char *copy = strdup (text);
    assert (copy);
    return copy;
}

//  ---------------------------------------------------------------- certificates

#define S_CERT_SELECT \
    "SELECT serial, kind, workspace_id, common_name, sans, profile, key_type, public_key, csr," \
    " pem, fingerprint, not_before, not_after, revoked_at, reason, created_by, created_at," \
    " renewed_from, issuer FROM certificates"

void
umb_certs_cert_clear (umb_certs_cert_t *cert)
{
    assert (cert);
    free (cert->sans);
    free (cert->csr);
    free (cert->pem);
    memset (cert, 0, sizeof *cert);
}

static void
s_cert_row (sqlite3_stmt *stmt, void *dest)
{
    umb_certs_cert_t *cert = dest;
    memset (cert, 0, sizeof *cert);
    umb_store_column (stmt, 0, cert->serial, sizeof cert->serial);
    umb_store_column (stmt, 1, cert->kind, sizeof cert->kind);
    umb_store_column (stmt, 2, cert->workspace_id, sizeof cert->workspace_id);
    umb_store_column (stmt, 3, cert->common_name, sizeof cert->common_name);
    cert->sans = s_column_dup (stmt, 4);
    umb_store_column (stmt, 5, cert->profile, sizeof cert->profile);
    umb_store_column (stmt, 6, cert->key_type, sizeof cert->key_type);
    umb_store_column (stmt, 7, cert->public_key, sizeof cert->public_key);
    cert->csr = s_column_dup (stmt, 8);
    cert->pem = s_column_dup (stmt, 9);
    umb_store_column (stmt, 10, cert->fingerprint, sizeof cert->fingerprint);
    cert->not_before = sqlite3_column_int64 (stmt, 11);
    cert->not_after = sqlite3_column_int64 (stmt, 12);
    cert->revoked_at = sqlite3_column_int64 (stmt, 13);
    cert->reason = sqlite3_column_int (stmt, 14);
    umb_store_column (stmt, 15, cert->created_by, sizeof cert->created_by);
    cert->created_at = sqlite3_column_int64 (stmt, 16);
    umb_store_column (stmt, 17, cert->renewed_from, sizeof cert->renewed_from);
    umb_store_column (stmt, 18, cert->issuer, sizeof cert->issuer);
    if (!cert->sans) {
        cert->sans = strdup ("[]");
        assert (cert->sans);
    }
    if (!cert->pem) {
        cert->pem = strdup ("");
        assert (cert->pem);
    }
}

static const char *
s_or_null (const char *text)
{
    return text && *text ? text : NULL;
}

int
umb_certs_store_insert (umb_store_t *store, const umb_certs_cert_t *cert)
{
    assert (cert && cert->pem);
    return umb_store_run (store,
        "INSERT INTO certificates (serial, kind, workspace_id, common_name, sans, profile,"
        " key_type, public_key, csr, pem, fingerprint, not_before, not_after, created_by,"
        " created_at, renewed_from, issuer)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "sssssssssssiisiss",
        cert->serial, cert->kind, s_or_null (cert->workspace_id), cert->common_name,
        cert->sans ? cert->sans : "[]", cert->profile, cert->key_type,
        s_or_null (cert->public_key), s_or_null (cert->csr), cert->pem, cert->fingerprint,
        cert->not_before, cert->not_after, cert->created_by, cert->created_at,
        s_or_null (cert->renewed_from), cert->issuer);
}

int
umb_certs_store_get (umb_store_t *store, const char *serial, umb_certs_cert_t *cert)
{
    return umb_store_get (umb_store_query (store, S_CERT_SELECT " WHERE serial = ?", "s", serial),
                          s_cert_row, cert);
}

//  Prepares the listing of one filter, of a workspace's TLS certificates or
//  (workspace_id NULL) of mesh certificates.
static sqlite3_stmt *
s_list_query (umb_store_t *store, const char *workspace_id, umb_certs_filter_t filter, int64_t now)
{
#define S_TLS(condition) \
    S_CERT_SELECT " WHERE kind = 'tls' AND workspace_id = ?" condition \
    " ORDER BY created_at DESC, serial"
#define S_MESH(condition) \
    S_CERT_SELECT " WHERE kind = 'mesh'" condition " ORDER BY created_at DESC, serial"
#define S_VALID   " AND revoked_at IS NULL AND not_after > ?"
#define S_REVOKED " AND revoked_at IS NOT NULL"
#define S_EXPIRED " AND revoked_at IS NULL AND not_after <= ?"
    if (workspace_id)
        switch (filter) {
            case UMB_CERTS_ANY:
                return umb_store_query (store, S_TLS (""), "s", workspace_id);
            case UMB_CERTS_VALID:
                return umb_store_query (store, S_TLS (S_VALID), "si", workspace_id, now);
            case UMB_CERTS_REVOKED:
                return umb_store_query (store, S_TLS (S_REVOKED), "s", workspace_id);
            case UMB_CERTS_EXPIRED:
                return umb_store_query (store, S_TLS (S_EXPIRED), "si", workspace_id, now);
        }
    else
        switch (filter) {
            case UMB_CERTS_ANY:     return umb_store_query (store, S_MESH (""), "");
            case UMB_CERTS_VALID:   return umb_store_query (store, S_MESH (S_VALID), "i", now);
            case UMB_CERTS_REVOKED: return umb_store_query (store, S_MESH (S_REVOKED), "");
            case UMB_CERTS_EXPIRED: return umb_store_query (store, S_MESH (S_EXPIRED), "i", now);
        }
#undef S_TLS
#undef S_MESH
#undef S_VALID
#undef S_REVOKED
#undef S_EXPIRED
    assert (false);
    return NULL;
}

static void
s_cert_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    umb_certs_cert_t cert;
    s_cert_row (stmt, &cert);
    ((umb_certs_cert_fn *) fn) (arg, &cert);
    umb_certs_cert_clear (&cert);
}

int
umb_certs_store_list (umb_store_t *store, const char *workspace_id, umb_certs_filter_t filter,
                      int64_t now, umb_certs_cert_fn *each, void *arg)
{
    assert (each);
    return umb_store_each (s_list_query (store, workspace_id, filter, now), s_cert_each,
                           (void *) each, arg);
}

int
umb_certs_store_revoke (umb_store_t *store, const char *serial, int64_t revoked_at, int reason)
{
    int rc = umb_store_run (store,
        "UPDATE certificates SET revoked_at = ?, reason = ? WHERE serial = ? AND revoked_at IS NULL",
        "iis", revoked_at, (int64_t) reason, serial);
    return rc == 0 && umb_store_changes (store) != 1 ? UMB_CERTS_NOT_FOUND : rc;
}

static void
s_serial_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    ((umb_certs_serial_fn *) fn) (arg, (const char *) sqlite3_column_text (stmt, 0),
                                  (const char *) sqlite3_column_text (stmt, 1),
                                  sqlite3_column_int64 (stmt, 2), sqlite3_column_int (stmt, 3));
}

int
umb_certs_store_revoked (umb_store_t *store, const char *issuer, int64_t now,
                         umb_certs_serial_fn *each, void *arg)
{
    return umb_store_each (umb_store_query (store,
        "SELECT serial, issuer, revoked_at, reason FROM certificates"
        " WHERE issuer = ? AND revoked_at IS NOT NULL AND not_after > ?"
        " ORDER BY revoked_at, serial", "si", issuer, now),
        s_serial_each, (void *) each, arg);
}

int
umb_certs_store_serials (umb_store_t *store, umb_certs_serial_fn *each, void *arg)
{
    return umb_store_each (umb_store_query (store,
        "SELECT serial, issuer, COALESCE(revoked_at, 0), COALESCE(reason, 0) FROM certificates",
        ""), s_serial_each, (void *) each, arg);
}

int
umb_certs_store_adopt (umb_store_t *store, const char *first_issuer)
{
    assert (first_issuer && *first_issuer);
    int rc = umb_store_run (store, "UPDATE certificates SET issuer = ? WHERE issuer = ''", "s",
                            first_issuer);
    if (rc == 0)
        rc = umb_store_run (store, "UPDATE crls SET issuer = ? WHERE issuer = ''", "s",
                            first_issuer);
    return rc;
}

int64_t
umb_certs_store_count (umb_store_t *store)
{
    return umb_store_scalar (umb_store_query (store, "SELECT COUNT(*) FROM certificates", ""));
}

//  ---------------------------------------------------------------- CRL

static void
s_crl_row (sqlite3_stmt *stmt, void *dest)
{
    umb_certs_crl_row_t *crl = dest;
    crl->number = sqlite3_column_int64 (stmt, 0);
    crl->this_update = sqlite3_column_int64 (stmt, 1);
    crl->next_update = sqlite3_column_int64 (stmt, 2);
    crl->der_base64 = s_column_dup (stmt, 3);
}

int
umb_certs_store_crl_get (umb_store_t *store, const char *issuer, umb_certs_crl_row_t *crl)
{
    assert (issuer && crl);
    memset (crl, 0, sizeof *crl);
    return umb_store_get (umb_store_query (store, "SELECT number, this_update, next_update,"
                                           " der_base64 FROM crls WHERE issuer = ?", "s", issuer),
                          s_crl_row, crl);
}

int
umb_certs_store_crl_put (umb_store_t *store, const char *issuer, int64_t number,
                         int64_t this_update, int64_t next_update, const char *der_base64)
{
    return umb_store_run (store,
        "INSERT INTO crls (issuer, number, this_update, next_update, der_base64)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (issuer) DO UPDATE SET number = excluded.number,"
        " this_update = excluded.this_update, next_update = excluded.next_update,"
        " der_base64 = excluded.der_base64", "siiis", issuer, number, this_update, next_update,
        der_base64);
}

void
umb_certs_crl_row_clear (umb_certs_crl_row_t *crl)
{
    assert (crl);
    free (crl->der_base64);
    memset (crl, 0, sizeof *crl);
}

//  ---------------------------------------------------------------- mesh

int64_t
umb_certs_store_mesh_version (umb_store_t *store)
{
    return umb_store_scalar (umb_store_query (store,
        "SELECT revocation_version FROM mesh_state WHERE id = 1", ""));
}

int
umb_certs_store_mesh_version_bump (umb_store_t *store)
{
    int rc = umb_store_run (store, "UPDATE mesh_state SET revocation_version = revocation_version + 1"
                                   " WHERE id = 1", "");
    return rc == 0 && umb_store_changes (store) != 1 ? -1 : rc;
}

static void
s_revoked_key_each (sqlite3_stmt *stmt, void *fn, void *arg)
{
    void (*each) (void *arg, const char *key) = (void (*) (void *, const char *)) fn;
    each (arg, (const char *) sqlite3_column_text (stmt, 0));
}

int
umb_certs_store_mesh_revoked_keys (umb_store_t *store, int64_t now,
                                   void (*each) (void *arg, const char *key), void *arg)
{
    return umb_store_each (umb_store_query (store,
        "SELECT DISTINCT public_key FROM certificates WHERE kind = 'mesh'"
        " AND revoked_at IS NOT NULL AND not_after > ? ORDER BY public_key", "i", now),
        s_revoked_key_each, (void *) each, arg);
}

int
umb_certs_store_mesh_certified_keys (umb_store_t *store, int64_t now,
                                     void (*each) (void *arg, const char *key), void *arg)
{
    return umb_store_each (umb_store_query (store,
        "SELECT DISTINCT public_key FROM certificates c WHERE kind = 'mesh'"
        " AND revoked_at IS NULL AND not_before <= ? AND not_after > ?"
        " AND NOT EXISTS (SELECT 1 FROM certificates r WHERE r.kind = 'mesh'"
        " AND r.public_key = c.public_key AND r.revoked_at IS NOT NULL) ORDER BY public_key",
        "ii", now, now),
        s_revoked_key_each, (void *) each, arg);
}

int
umb_certs_store_mesh_key_revoked (umb_store_t *store, const char *public_key)
{
    int64_t count = umb_store_scalar (umb_store_query (store,
        "SELECT COUNT(*) FROM certificates WHERE kind = 'mesh' AND public_key = ?"
        " AND revoked_at IS NOT NULL", "s", public_key));
    return count < 0 ? -1 : count > 0;
}

int
umb_certs_store_mesh_valid (umb_store_t *store, const char *public_key, int64_t now,
                            int64_t margin_s, umb_certs_cert_t *cert)
{
    return umb_store_get (umb_store_query (store,
        S_CERT_SELECT " WHERE kind = 'mesh' AND public_key = ?"
        " AND revoked_at IS NULL AND not_before <= ? AND not_after > ?"
        " ORDER BY not_after DESC LIMIT 1", "sii", public_key, now, now + margin_s),
        s_cert_row, cert);
}

//  ---------------------------------------------------------------- selftest

static void
s_test_count_cert (void *arg, const umb_certs_cert_t *cert)
{
    assert (cert->pem && cert->sans);
    (*(int *) arg)++;
}

static void
s_test_count_serial (void *arg, const char *serial, const char *issuer, int64_t revoked_at,
                     int reason)
{
    assert (serial && *serial && issuer);
    (*(int *) arg)++;
}

static void
s_test_key (void *arg, const char *key)
{
    snprintf ((char *) arg, 41, "%s", key);
}

static int
s_test_list (umb_store_t *store, const char *workspace, umb_certs_filter_t filter, int64_t now)
{
    int count = 0;
    assert (umb_certs_store_list (store, workspace, filter, now, s_test_count_cert, &count) == 0);
    return count;
}

void
umb_certs_store_test (bool verbose)
{
    if (verbose)
        printf (" * umb_certs_store: ");
    umb_store_t *store = umb_certs_store_open (":memory:", NULL);
    assert (store);
    assert (umb_store_version (store) == 2);
    assert (umb_certs_store_count (store) == 0);
    assert (umb_certs_store_mesh_version (store) == 0);

    umb_certs_cert_t cert = {
        .serial = "1a", .kind = "tls", .workspace_id = "ws_1", .common_name = "a.example",
        .sans = "[\"a.example\"]", .profile = "server", .key_type = "ec-p256",
        .pem = "-----BEGIN CERTIFICATE-----\n", .fingerprint = "00", .not_before = 100,
        .not_after = 1000, .created_by = "usr_1", .created_at = 100
    };
    assert (umb_certs_store_insert (store, &cert) == 0);
    assert (umb_certs_store_insert (store, &cert) == UMB_STORE_CONSTRAINT);
    //  A TLS certificate needs a workspace; a mesh one a key and no workspace
    umb_certs_cert_t bad = cert;
    snprintf (bad.serial, sizeof bad.serial, "1b");
    bad.workspace_id [0] = 0;
    assert (umb_certs_store_insert (store, &bad) == UMB_STORE_CONSTRAINT);
    snprintf (bad.kind, sizeof bad.kind, "mesh");
    snprintf (bad.profile, sizeof bad.profile, "mesh");
    assert (umb_certs_store_insert (store, &bad) == UMB_STORE_CONSTRAINT);
    snprintf (bad.public_key, sizeof bad.public_key, "%s", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
    bad.not_after = 500;
    assert (umb_certs_store_insert (store, &bad) == 0);

    cert.csr = "-----BEGIN CERTIFICATE REQUEST-----\n";
    snprintf (cert.issuer, sizeof cert.issuer, "b2");
    snprintf (cert.serial, sizeof cert.serial, "2c");
    snprintf (cert.renewed_from, sizeof cert.renewed_from, "1a");
    cert.created_at = 200;
    assert (umb_certs_store_insert (store, &cert) == 0);
    snprintf (cert.renewed_from, sizeof cert.renewed_from, "ff");
    snprintf (cert.serial, sizeof cert.serial, "3d");
    assert (umb_certs_store_insert (store, &cert) == UMB_STORE_CONSTRAINT);
    assert (umb_certs_store_count (store) == 3);

    umb_certs_cert_t row;
    assert (umb_certs_store_get (store, "2c", &row) == 0);
    assert (streq (row.workspace_id, "ws_1") && streq (row.csr, cert.csr));
    assert (streq (row.renewed_from, "1a") && row.revoked_at == 0 && row.not_after == 1000);
    assert (streq (row.sans, "[\"a.example\"]") && *row.public_key == 0);
    umb_certs_cert_clear (&row);
    assert (umb_certs_store_get (store, "1a", &row) == 0 && row.csr == NULL);
    umb_certs_cert_clear (&row);
    assert (umb_certs_store_get (store, "99", &row) == UMB_CERTS_NOT_FOUND);

    assert (s_test_list (store, "ws_1", UMB_CERTS_ANY, 150) == 2);
    assert (s_test_list (store, "ws_2", UMB_CERTS_ANY, 150) == 0);
    assert (s_test_list (store, NULL, UMB_CERTS_ANY, 150) == 1);
    assert (s_test_list (store, "ws_1", UMB_CERTS_VALID, 150) == 2);
    assert (s_test_list (store, "ws_1", UMB_CERTS_EXPIRED, 2000) == 2);

    //  Revocation: once only
    assert (umb_certs_store_revoke (store, "1a", 300, 1) == 0);
    assert (umb_certs_store_revoke (store, "1a", 301, 1) == UMB_CERTS_NOT_FOUND);
    assert (umb_certs_store_revoke (store, "77", 301, 1) == UMB_CERTS_NOT_FOUND);
    assert (s_test_list (store, "ws_1", UMB_CERTS_REVOKED, 150) == 1);
    assert (s_test_list (store, "ws_1", UMB_CERTS_VALID, 150) == 1);
    //  A revoked certificate reports "revoked" after it expires too
    assert (s_test_list (store, "ws_1", UMB_CERTS_EXPIRED, 2000) == 1);
    //  ... listed on its issuer's CRL once that issuer is named
    int count = 0;
    assert (umb_certs_store_revoked (store, "", 150, s_test_count_serial, &count) == 0 && count == 1);
    assert (umb_certs_store_adopt (store, "a1") == 0);
    assert (umb_certs_store_get (store, "1a", &row) == 0 && streq (row.issuer, "a1"));
    umb_certs_cert_clear (&row);
    assert (umb_certs_store_get (store, "2c", &row) == 0 && streq (row.issuer, "b2"));
    umb_certs_cert_clear (&row);
    count = 0;
    assert (umb_certs_store_revoked (store, "a1", 150, s_test_count_serial, &count) == 0 && count == 1);
    count = 0;
    assert (umb_certs_store_revoked (store, "b2", 150, s_test_count_serial, &count) == 0 && count == 0);
    count = 0;
    assert (umb_certs_store_revoked (store, "a1", 1000, s_test_count_serial, &count) == 0 && count == 0);
    count = 0;
    assert (umb_certs_store_serials (store, s_test_count_serial, &count) == 0 && count == 3);

    //  Mesh keys and the version
    assert (umb_certs_store_mesh_valid (store, bad.public_key, 150, 0, &row) == 0);
    assert (streq (row.serial, "1b"));
    umb_certs_cert_clear (&row);
    assert (umb_certs_store_mesh_valid (store, bad.public_key, 150, 400, &row) == UMB_CERTS_NOT_FOUND);
    assert (umb_certs_store_mesh_key_revoked (store, bad.public_key) == 0);
    char certified [41] = "";
    assert (umb_certs_store_mesh_certified_keys (store, 150, s_test_key, certified) == 0);
    assert (streq (certified, bad.public_key));
    *certified = 0;
    assert (umb_certs_store_mesh_certified_keys (store, 600, s_test_key, certified) == 0);
    assert (*certified == 0);                   //  expired: certifies nothing
    assert (umb_certs_store_revoke (store, "1b", 160, 4) == 0);
    assert (umb_certs_store_mesh_key_revoked (store, bad.public_key) == 1);
    assert (umb_certs_store_mesh_valid (store, bad.public_key, 170, 0, &row) == UMB_CERTS_NOT_FOUND);
    assert (umb_certs_store_mesh_version_bump (store) == 0);
    assert (umb_certs_store_mesh_version (store) == 1);
    assert (umb_certs_store_mesh_certified_keys (store, 150, s_test_key, certified) == 0);
    assert (*certified == 0);                   //  revoked: never certified again
    char key [41] = "";
    assert (umb_certs_store_mesh_revoked_keys (store, 170, s_test_key, key) == 0);
    assert (streq (key, bad.public_key));
    *key = 0;
    assert (umb_certs_store_mesh_revoked_keys (store, 600, s_test_key, key) == 0 && *key == 0);

    //  CRL state, one per issuer: absent, then replaced in place
    umb_certs_crl_row_t crl;
    assert (umb_certs_store_crl_get (store, "a1", &crl) == UMB_CERTS_NOT_FOUND && crl.number == 0);
    assert (umb_certs_store_crl_put (store, "a1", 1, 10, 20, "AAAA") == 0);
    assert (umb_certs_store_crl_put (store, "a1", 2, 30, 40, "BBBB") == 0);
    assert (umb_certs_store_crl_put (store, "b2", 1, 50, 60, "CCCC") == 0);
    assert (umb_certs_store_crl_get (store, "a1", &crl) == 0);
    assert (crl.number == 2 && crl.this_update == 30 && crl.next_update == 40);
    assert (streq (crl.der_base64, "BBBB"));
    umb_certs_crl_row_clear (&crl);
    assert (umb_certs_store_crl_get (store, "b2", &crl) == 0 && crl.number == 1);
    umb_certs_crl_row_clear (&crl);

    //  A failed write inside a transaction leaves nothing behind
    assert (umb_store_begin (store) == 0);
    umb_store_fail_after (store, 2);
    assert (umb_certs_store_revoke (store, "2c", 400, 1) == 0);
    assert (umb_certs_store_mesh_version_bump (store) == -1);
    umb_store_rollback (store);
    assert (umb_certs_store_get (store, "2c", &row) == 0 && row.revoked_at == 0);
    umb_certs_cert_clear (&row);
    assert (umb_certs_store_mesh_version (store) == 1);

    umb_store_destroy (&store);

    //  A database from before several issuers: its certificates and CRL
    //  become the first issuer's when the service names it
    char dir [] = "/tmp/umb-certs-store-XXXXXX";
    assert (mkdtemp (dir));
    char *path = zsys_sprintf ("%s/certs.db", dir);
    const umb_migration_t first [] = { s_migrations [0], { 0, NULL } };
    store = umb_store_new (path, first, NULL);
    assert (store && umb_store_version (store) == 1);
    assert (umb_store_run (store, "INSERT INTO crl_state (id, number, this_update, next_update,"
                           " der_base64) VALUES (1, 7, 10, 20, 'DDDD')", "") == 0);
    assert (umb_store_run (store, "INSERT INTO certificates (serial, kind, workspace_id,"
                           " common_name, sans, profile, key_type, pem, fingerprint, not_before,"
                           " not_after, revoked_at, reason, created_by, created_at) VALUES ('5e',"
                           " 'tls', 'ws_1', 'old', '[]', 'server', 'ec-p256', 'x', '00', 1, 9000,"
                           " 50, 1, 'usr_1', 1)", "") == 0);
    umb_store_destroy (&store);
    store = umb_certs_store_open (path, NULL);
    assert (store && umb_store_version (store) == 2);
    assert (umb_certs_store_crl_get (store, "", &crl) == 0 && crl.number == 7);
    umb_certs_crl_row_clear (&crl);
    assert (umb_certs_store_adopt (store, "f00d") == 0);
    assert (umb_certs_store_crl_get (store, "f00d", &crl) == 0 && crl.number == 7
            && streq (crl.der_base64, "DDDD"));
    umb_certs_crl_row_clear (&crl);
    count = 0;
    assert (umb_certs_store_revoked (store, "f00d", 100, s_test_count_serial, &count) == 0
            && count == 1);
    umb_store_destroy (&store);
    char *wal = zsys_sprintf ("%s-wal", path), *shm = zsys_sprintf ("%s-shm", path);
    unlink (path);
    unlink (wal);
    unlink (shm);
    rmdir (dir);
    zstr_free (&wal);
    zstr_free (&shm);
    zstr_free (&path);
    if (verbose)
        printf ("OK\n");
}
