//  umb_certs_selftest - the certs service's selftest: the real certs actor and
//  the real auth actor in one runtime, through the real client, and OCSP over
//  real HTTP
#include <assert.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "umb_certs_private.h"
#include "umb_testkit.h"
#include "umb_auth.h"

#define S_TIMEOUT UMB_TESTKIT_TIMEOUT
#define S_STR_MAX 65536               //  longest string field read from a reply
#define S_ROOT_PASSWORD "root-password-0123"

typedef struct {
    bool           verbose;
    umb_runtime_t *runtime;
    zactor_t      *auth;
    zactor_t      *certs;
    umb_store_t   *store;       //  the certs actor's, for fault injection
    zcert_t       *gateway;     //  a service identity: may call MESH operations
    umb_client_t  *auth_client;
    umb_client_t  *client;      //  certs, as the gateway
    char          *endpoint;
    uint16_t       http_port;
    char          *state_dir;
    int            null_fd;
} s_test_t;

//  ---------------------------------------------------------------- plumbing

static const char *
s_str (umb_reply_t *reply, const char *key)
{
    return umb_msg_str (umb_reply_body (reply), key, S_STR_MAX, false);
}

static size_t
s_items (umb_reply_t *reply)
{
    umb_msg_t *items = umb_msg_array (umb_reply_body (reply), "items", 10000, true);
    assert (items);
    return umb_msg_size (items);
}

//  Asserts a reply is 2xx and returns it.
static umb_reply_t *
s_ok (umb_reply_t *reply, int status)
{
    if (umb_reply_status (reply) != status)
        fprintf (stderr, "expected %d, got %d %s\n", status, umb_reply_status (reply),
                 umb_reply_error (reply) ? umb_reply_error (reply) : "");
    assert (umb_reply_status (reply) == status);
    return reply;
}

//  ---------------------------------------------------------------- the platform

static void
s_fault_actor (zsock_t *pipe, void *args)
{
    umb_certs_t *self = umb_certs_new ((umb_runtime_t *) args);
    zsock_signal (pipe, 0);
    zsock_send (pipe, "p", self->store);
    umb_certs_run (self, pipe);
    umb_certs_destroy (&self);
}

static void
s_certs_start (s_test_t *test)
{
    test->certs = zactor_new (s_fault_actor, test->runtime);
    assert (test->certs);
    assert (zsock_recv (test->certs, "p", &test->store) == 0);
    zstr_send (test->certs, "ENDPOINT");
    test->endpoint = zstr_recv (test->certs);
    assert (test->endpoint);
    if (!*test->endpoint) {
        zstr_send (test->certs, "REASON");
        char *reason = zstr_recv (test->certs);
        fprintf (stderr, "certs did not start: %s\n", reason);
        zstr_free (&reason);
    }
    assert (*test->endpoint);
    zstr_send (test->certs, "HTTP");
    char *port = zstr_recv (test->certs);
    assert (port && atoi (port) > 0);
    test->http_port = (uint16_t) atoi (port);
    zstr_free (&port);
    char *server_key = umb_runtime_public_key (test->runtime, "certs");
    test->client = umb_client_new (test->endpoint, server_key, test->gateway);
    assert (test->client);
    zstr_free (&server_key);
}

static void
s_certs_stop (s_test_t *test)
{
    umb_client_destroy (&test->client);
    zactor_destroy (&test->certs);
    zstr_free (&test->endpoint);
    test->store = NULL;
}

static void
s_platform_start (s_test_t *test)
{
    char dir [] = "/tmp/umb-certs-test-XXXXXX";
    assert (mkdtemp (dir));
    test->state_dir = strdup (dir);
    umb_config_t *config = umb_config_new ();
    char *error = NULL;
    static const char *const settings [] = {
        "auth.endpoint", "tcp://127.0.0.1:*", "auth.pub_endpoint", "tcp://127.0.0.1:*",
        "auth.pwhash", "interactive", "log.level", "error",
        "admin.username", "root", "admin.password", S_ROOT_PASSWORD,
        "certs.endpoint", "tcp://127.0.0.1:*", "certs.pub_endpoint", "tcp://127.0.0.1:*",
        "certs.http_listen", "127.0.0.1:0", "certs.http_threads", "2",
        "certs.max_ttl_s", "31536000", "certs.default_ttl_s", "86400",
        "billing.enabled", "false", NULL    //  no billing here: members are not limited
    };
    assert (umb_config_set (config, "state_dir", dir, &error) == 0);
    for (const char *const *setting = settings; *setting; setting += 2)
        assert (umb_config_set (config, setting [0], setting [1], &error) == 0);
    test->runtime = umb_runtime_new (&config, &error);
    assert (test->runtime);
    test->null_fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
    assert (test->null_fd >= 0);
    umb_log_set_fd (umb_runtime_log (test->runtime), test->null_fd);
    test->gateway = umb_runtime_identity (test->runtime, "gateway");
    assert (test->gateway);

    //  The real auth service; certs asks it about tokens and workspaces
    test->auth = zactor_new (umb_auth_actor, test->runtime);
    zstr_send (test->auth, "ENDPOINT");
    char *auth_endpoint = zstr_recv (test->auth);
    assert (auth_endpoint && *auth_endpoint);
    assert (umb_config_set (umb_runtime_config (test->runtime), "auth.endpoint", auth_endpoint,
                            &error) == 0);
    char *auth_key = umb_runtime_public_key (test->runtime, "auth");
    test->auth_client = umb_client_new (auth_endpoint, auth_key, test->gateway);
    assert (test->auth_client);
    zstr_free (&auth_key);
    zstr_free (&auth_endpoint);
    s_certs_start (test);
}

static void
s_platform_stop (s_test_t *test)
{
    s_certs_stop (test);
    umb_client_destroy (&test->auth_client);
    zactor_destroy (&test->auth);
    zcert_destroy (&test->gateway);
    umb_runtime_destroy (&test->runtime);
    close (test->null_fd);
    umb_testkit_remove_dir (test->state_dir);
    free (test->state_dir);
}

//  Registers (unless it is root) and logs in; returns the access token.
static char *
s_user (s_test_t *test, const char *username, const char *password)
{
    umb_reply_t *reply;
    if (!streq (username, "root")) {
        reply = umb_testkit_call (test->auth_client, "auth.users.register", NULL, "username",
                                  username, "password", password, NULL);
        umb_testkit_expect (&reply, 201, NULL, NULL);
    }
    reply = s_ok (umb_testkit_call (test->auth_client, "auth.tokens.create", NULL, "username",
                                    username, "password", password, NULL), 201);
    char *token = umb_testkit_dup (reply, "access_token", S_STR_MAX);
    umb_reply_destroy (&reply);
    return token;
}

//  ---------------------------------------------------------------- X.509 helpers

static X509 *
s_x509 (const char *pem)
{
    BIO *bio = BIO_new_mem_buf (pem, -1);
    X509 *cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
    BIO_free (bio);
    assert (cert);
    return cert;
}

//  A PKCS#10 request for common_name with a P-256 key (returned in *key).
//  With tamper, one bit of the signature is flipped.
static char *
s_csr (const char *common_name, EVP_PKEY **key, bool tamper)
{
    *key = EVP_EC_gen ("P-256");
    assert (*key);
    X509_REQ *req = X509_REQ_new ();
    assert (req && X509_REQ_set_version (req, 0) && X509_REQ_set_pubkey (req, *key));
    X509_NAME_add_entry_by_txt (X509_REQ_get_subject_name (req), "CN", MBSTRING_ASC,
                                (const unsigned char *) common_name, -1, -1, 0);
    assert (X509_REQ_sign (req, *key, EVP_sha256 ()) > 0);
    unsigned char *der = NULL;
    int size = i2d_X509_REQ (req, &der);
    assert (size > 0);
    if (tamper)
        der [size - 3] ^= 0x01;             //  inside the signature's INTEGERs
    BIO *bio = BIO_new (BIO_s_mem ());
    assert (PEM_write_bio (bio, "CERTIFICATE REQUEST", "", der, size) > 0);
    char *data = NULL;
    long length = BIO_get_mem_data (bio, &data);
    char *pem = strndup (data, (size_t) length);
    BIO_free (bio);
    OPENSSL_free (der);
    X509_REQ_free (req);
    return pem;
}

//  A DER OCSP request for cert (SHA-1 CertID, no nonce); caller frees.
static uint8_t *
s_ocsp_request (X509 *cert, X509 *issuer, size_t *size)
{
    OCSP_REQUEST *request = OCSP_REQUEST_new ();
    OCSP_CERTID *id = OCSP_cert_to_id (NULL, cert, issuer);
    assert (request && id && OCSP_request_add0_id (request, id));
    unsigned char *der = NULL;
    int length = i2d_OCSP_REQUEST (request, &der);
    assert (length > 0);
    uint8_t *copy = malloc ((size_t) length);
    memcpy (copy, der, (size_t) length);
    OPENSSL_free (der);
    OCSP_REQUEST_free (request);
    *size = (size_t) length;
    return copy;
}

//  Asks the OCSP responder over HTTP (POST, or GET with the request in the
//  URL) about cert, verifies the answer and returns the status.
static umb_ocsp_status_t
s_ocsp_ask (s_test_t *test, const char *cert_pem, const char *chain_pem, const char *root_pem,
            bool get, int *reason)
{
    X509 *cert = s_x509 (cert_pem);
    X509 *issuer = s_x509 (chain_pem);          //  the first of the chain
    size_t size = 0;
    uint8_t *der = s_ocsp_request (cert, issuer, &size);
    umb_certs_http_response_t *response;
    if (get) {
        size_t b64_size = sodium_base64_ENCODED_LEN (size, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        char *b64 = malloc (b64_size);
        sodium_bin2base64 (b64, b64_size, der, size, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        char *path = zsys_sprintf ("/ocsp/%s", b64);
        response = umb_certs_http_fetch (test->http_port, "GET", path, NULL, NULL, 0);
        zstr_free (&path);
        free (b64);
    }
    else
        response = umb_certs_http_fetch (test->http_port, "POST", "/ocsp",
                                         "application/ocsp-request", der, size);
    assert (response->status == 200);
    char type [64];
    assert (umb_certs_http_response_header (response, "Content-Type", type, sizeof type)
            && streq (type, "application/ocsp-response"));
    char serial [41], why [256] = "";
    ASN1_INTEGER *number = (ASN1_INTEGER *) X509_get0_serialNumber (cert);
    BIGNUM *bn = ASN1_INTEGER_to_BN (number, NULL);
    char *hex = BN_bn2hex (bn);
    for (char *c = hex; *c; c++)
        *c = (char) (*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
    snprintf (serial, sizeof serial, "%s", hex [0] == '0' && hex [1] ? hex + 1 : hex);
    OPENSSL_free (hex);
    BN_free (bn);
    umb_ocsp_status_t status = UMB_OCSP_UNKNOWN;
    int64_t revoked_at = 0;
    int rc = umb_ocsp_verify (response->body, response->body_size, issuer, root_pem, serial, NULL,
                              0, umb_certs_now (), &status, &revoked_at, reason, why, sizeof why);
    if (rc)
        fprintf (stderr, "OCSP verification failed: %s\n", why);
    assert (rc == 0);
    umb_certs_http_response_destroy (&response);
    free (der);
    X509_free (cert);
    X509_free (issuer);
    return status;
}

static bool
s_crl_lists (const uint8_t *der, size_t size, const char *cert_pem)
{
    const unsigned char *cursor = der;
    X509_CRL *crl = d2i_X509_CRL (NULL, &cursor, (long) size);
    assert (crl);
    X509 *cert = s_x509 (cert_pem);
    X509_REVOKED *entry = NULL;
    bool listed = X509_CRL_get0_by_cert (crl, &entry, cert) == 1;
    X509_free (cert);
    X509_CRL_free (crl);
    return listed;
}

//  ---------------------------------------------------------------- requests

static umb_reply_t *
s_issue (s_test_t *test, const char *token, const char *workspace, const char *common_name,
         const char *const *sans, const char *csr, int64_t ttl, const char *profile,
         const char *key_type)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace", workspace);
    umb_w_kv_str (w, "common_name", common_name);
    if (sans) {
        umb_w_key (w, "sans");
        umb_w_array_begin (w);
        for (const char *const *san = sans; *san; san++)
            umb_w_str (w, *san);
        umb_w_array_end (w);
    }
    if (csr)
        umb_w_kv_str (w, "csr", csr);
    if (ttl)
        umb_w_kv_int (w, "ttl", ttl);
    if (profile)
        umb_w_kv_str (w, "profile", profile);
    if (key_type)
        umb_w_kv_str (w, "key_type", key_type);
    umb_w_map_end (w);
    return umb_testkit_callw (test->client, "certs.issue", token, w);
}

//  The sans array of a cert reply as "a,b,c".
static void
s_sans_text (umb_reply_t *reply, char *text, size_t size)
{
    size_t count = 0;
    const char **sans = umb_msg_strv (umb_reply_body (reply), "sans", 100, 256, &count, true);
    assert (sans);
    *text = 0;
    for (size_t index = 0; index < count; index++)
        snprintf (text + strlen (text), size - strlen (text), "%s%s", index ? "," : "", sans [index]);
}

//  ---------------------------------------------------------------- the test

static void
s_test_service (s_test_t *test)
{
    umb_reply_t *reply;
    char *alice = s_user (test, "alice", "alice-password-1");
    char *bob = s_user (test, "bob", "bob-password-12");
    char *carol = s_user (test, "carol", "carol-password-1");
    char *root = s_user (test, "root", S_ROOT_PASSWORD);
    reply = umb_testkit_call (test->auth_client, "auth.workspaces.create", alice, "name", "acme",
                              NULL);
    umb_testkit_expect (&reply, 201, NULL, NULL);
    reply = umb_testkit_call (test->auth_client, "auth.workspaces.create", carol, "name", "globex",
                              NULL);
    umb_testkit_expect (&reply, 201, NULL, NULL);
    reply = s_ok (umb_testkit_call (test->auth_client, "auth.invitations.create", alice,
                                    "workspace", "acme", "username", "bob", "role", "member",
                                    NULL), 201);
    char *invitation = umb_testkit_dup (reply, "id", S_STR_MAX);
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test->auth_client, "auth.invitations.accept", bob, "invitation",
                              invitation, NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    zstr_free (&invitation);

    //  Live notifications, subscribed early (PUB/SUB joins slowly)
    zstr_send (test->certs, "PUB");
    char *pub_endpoint = zstr_recv (test->certs);
    char *certs_key = umb_runtime_public_key (test->runtime, "certs");
    zsock_t *sub = zsock_new (ZMQ_SUB);
    zcert_apply (test->gateway, sub);
    zsock_set_curve_serverkey (sub, certs_key);
    zsock_set_rcvtimeo (sub, 5000);
    zsock_set_subscribe (sub, "certs.revoked");
    assert (zsock_connect (sub, "%s", pub_endpoint) == 0);
    zstr_free (&pub_endpoint);
    zstr_free (&certs_key);

    //  The CA, public
    reply = s_ok (umb_testkit_call (test->client, "certs.ca", NULL, NULL), 200);
    char *root_pem = umb_testkit_dup (reply, "root", S_STR_MAX);
    char *chain_pem = umb_testkit_dup (reply, "chain", S_STR_MAX);
    umb_reply_destroy (&reply);
    assert (strstr (chain_pem, root_pem) && strncmp (chain_pem, root_pem, 20) == 0);
    umb_certs_http_response_t *http = umb_certs_http_fetch (test->http_port, "GET", "/ca.pem",
                                                            NULL, NULL, 0);
    assert (http->status == 200 && streq ((char *) http->body, chain_pem));
    umb_certs_http_response_destroy (&http);

    //  ---- issue with a key made here
    static const char *const sans [] = { "www.acme.test", "10.0.0.1", NULL };
    reply = s_ok (s_issue (test, alice, "acme", "www.acme.test", sans, NULL, 0, NULL, NULL), 201);
    char *web_serial = umb_testkit_dup (reply, "serial", S_STR_MAX);
    char *web_pem = umb_testkit_dup (reply, "certificate", S_STR_MAX);
    char *web_key = umb_testkit_dup (reply, "private_key", S_STR_MAX);
    char text [512];
    s_sans_text (reply, text, sizeof text);
    assert (streq (text, "www.acme.test,10.0.0.1"));
    assert (streq (s_str (reply, "status"), "valid") && streq (s_str (reply, "profile"), "server"));
    assert (streq (s_str (reply, "key_type"), "ec-p256") && streq (s_str (reply, "chain"), chain_pem));
    assert (strlen (s_str (reply, "fingerprint")) == 64);
    assert (umb_testkit_int (reply, "not_after") - umb_testkit_int (reply,
                             "not_before") <= 86400 + 1);
    assert (umb_msg_has (umb_reply_body (reply), "revoked_at") == false);   //  nil
    assert (umb_certs_serial_valid (web_serial));
    assert (strstr (web_key, "PRIVATE KEY"));
    umb_reply_destroy (&reply);
    //  The key belongs to the certificate
    X509 *web_x509 = s_x509 (web_pem);
    BIO *bio = BIO_new_mem_buf (web_key, -1);
    EVP_PKEY *web_private = PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL);
    BIO_free (bio);
    assert (web_private && X509_check_private_key (web_x509, web_private) == 1);
    EVP_PKEY_free (web_private);
    X509_free (web_x509);

    //  Another with an RSA key and the client profile (made on the worker)
    reply = s_ok (s_issue (test, bob, "acme", "robot", NULL, NULL, 3600, "client", "rsa-3072"), 201);
    assert (streq (s_str (reply, "key_type"), "rsa-3072") && streq (s_str (reply, "profile"), "client"));
    char *robot_serial = umb_testkit_dup (reply, "serial", S_STR_MAX);
    umb_reply_destroy (&reply);

    //  ---- issue from a CSR: no private key in the answer
    EVP_PKEY *api_key = NULL;
    char *csr = s_csr ("api.acme.test", &api_key, false);
    static const char *const api_sans [] = { "api.acme.test", NULL };
    reply = s_ok (s_issue (test, alice, "acme", "api.acme.test", api_sans, csr, 7200, NULL, NULL), 201);
    assert (!umb_msg_has (umb_reply_body (reply), "private_key"));
    char *api_serial = umb_testkit_dup (reply, "serial", S_STR_MAX);
    char *api_pem = umb_testkit_dup (reply, "certificate", S_STR_MAX);
    umb_reply_destroy (&reply);
    X509 *api_x509 = s_x509 (api_pem);
    assert (EVP_PKEY_eq (X509_get0_pubkey (api_x509), api_key) == 1);
    X509_free (api_x509);

    //  ---- refusals
    EVP_PKEY *forged_key = NULL;
    char *forged = s_csr ("api.acme.test", &forged_key, true);
    reply = s_issue (test, alice, "acme", "api.acme.test", NULL, forged, 0, NULL, NULL);
    umb_testkit_expect (&reply, 400, NULL, "signature");
    EVP_PKEY_free (forged_key);
    zstr_free (&forged);
    reply = s_issue (test, alice, "acme", "api.acme.test", NULL, "not a csr", 0, NULL, NULL);
    umb_testkit_expect (&reply, 400, NULL, "CSR");
    static const char *const bad_sans [] = { "bad name!", NULL };
    reply = s_issue (test, alice, "acme", "a.acme.test", bad_sans, NULL, 0, NULL, NULL);
    umb_testkit_expect (&reply, 422, "invalid_argument", "subject alternative name");
    static const char *const wild_sans [] = { "*.acme.test", NULL };
    reply = s_issue (test, alice, "acme", "a.acme.test", wild_sans, NULL, 0, NULL, NULL);
    umb_testkit_expect (&reply, 422, NULL, NULL);
    reply = s_issue (test, alice, "acme", "*.acme.test", NULL, NULL, 0, NULL, NULL);
    umb_testkit_expect (&reply, 422, NULL, "wildcard");
    reply = s_issue (test, alice, "acme", "a.acme.test", NULL, NULL, 59, NULL, NULL);
    umb_testkit_expect (&reply, 422, NULL, "ttl");
    reply = s_issue (test, alice, "acme", "a.acme.test", NULL, NULL, 31536001, NULL, NULL);
    umb_testkit_expect (&reply, 422, NULL, "ttl");
    reply = s_issue (test, alice, "acme", "a.acme.test", NULL, NULL, 0, "mesh", NULL);
    umb_testkit_expect (&reply, 422, NULL, "profile");
    reply = s_issue (test, alice, "acme", "a.acme.test", NULL, NULL, 0, NULL, "dsa-1024");
    umb_testkit_expect (&reply, 422, NULL, "key_type");
    reply = s_issue (test, alice, "acme", "a.acme.test", NULL, csr, 0, NULL, "ec-p256");
    umb_testkit_expect (&reply, 422, NULL, "key_type");
    reply = umb_testkit_call (test->client, "certs.issue", alice, "workspace", "acme", NULL);
    umb_testkit_expect (&reply, 400, "bad_request", "common_name");
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace", "acme");
    umb_w_kv_int (w, "common_name", 7);
    umb_w_map_end (w);
    reply = umb_testkit_callw (test->client, "certs.issue", alice, w);
    umb_testkit_expect (&reply, 400, NULL, "common_name");
    //  A body over mesh.max_body_bytes
    size_t huge_size = 1100 * 1024;
    char *huge = malloc (huge_size + 1);
    memset (huge, 'a', huge_size);
    huge [huge_size] = 0;
    reply = s_issue (test, alice, "acme", huge, NULL, NULL, 0, NULL, NULL);
    umb_testkit_expect (&reply, 413, "too_large", NULL);
    free (huge);
    //  Who may issue
    reply = s_issue (test, carol, "acme", "x.acme.test", NULL, NULL, 0, NULL, NULL);
    umb_testkit_expect (&reply, 404, NULL, NULL);
    reply = s_issue (test, NULL, "acme", "x.acme.test", NULL, NULL, 0, NULL, NULL);
    umb_testkit_expect (&reply, 401, NULL, NULL);
    reply = s_issue (test, "forged.token.here", "acme", "x.acme.test", NULL, NULL, 0, NULL, NULL);
    umb_testkit_expect (&reply, 401, NULL, NULL);

    //  ---- list and get
    reply = s_ok (umb_testkit_call (test->client, "certs.list", alice, "workspace", "acme",
                                    NULL), 200);
    assert (s_items (reply) == 3);
    umb_reply_destroy (&reply);
    reply = s_ok (umb_testkit_call (test->client, "certs.list", bob, "workspace", "acme", "status",
                                    "valid", NULL), 200);
    assert (s_items (reply) == 3);
    umb_reply_destroy (&reply);
    reply = s_ok (umb_testkit_call (test->client, "certs.list", alice, "workspace", "acme",
                                    "status", "revoked", NULL), 200);
    assert (s_items (reply) == 0);
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test->client, "certs.list", alice, "workspace", "acme", "status",
                              "lost", NULL);
    umb_testkit_expect (&reply, 422, NULL, "status");
    reply = umb_testkit_call (test->client, "certs.list", carol, "workspace", "acme", NULL);
    umb_testkit_expect (&reply, 404, NULL, NULL);
    reply = s_ok (umb_testkit_call (test->client, "certs.get", bob, "workspace", "acme", "serial",
                                    web_serial, NULL), 200);
    assert (streq (s_str (reply, "certificate"), web_pem) && !s_str (reply, "private_key"));
    assert (streq (s_str (reply, "common_name"), "www.acme.test"));
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test->client, "certs.get", carol, "workspace", "acme", "serial",
                              web_serial, NULL);
    umb_testkit_expect (&reply, 404, NULL, NULL);
    reply = umb_testkit_call (test->client, "certs.get", alice, "workspace", "acme", "serial",
                              "abc", NULL);
    umb_testkit_expect (&reply, 404, "not_found", "no certificate 'abc'");
    reply = umb_testkit_call (test->client, "certs.get", alice, "workspace", "acme", "serial",
                              "Not Hex", NULL);
    umb_testkit_expect (&reply, 404, NULL, "no certificate");
    //  Another workspace's certificate reads exactly like a missing one
    reply = s_ok (s_issue (test, carol, "globex", "globex.test", NULL, NULL, 0, NULL, NULL), 201);
    char *globex_serial = umb_testkit_dup (reply, "serial", S_STR_MAX);
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test->client, "certs.get", alice, "workspace", "acme", "serial",
                              globex_serial, NULL);
    char expected [128];
    snprintf (expected, sizeof expected, "no certificate '%s'", globex_serial);
    umb_testkit_expect (&reply, 404, "not_found", expected);
    reply = umb_testkit_call (test->client, "certs.revoke", alice, "workspace", "acme", "serial",
                              globex_serial, NULL);
    umb_testkit_expect (&reply, 404, NULL, expected);

    //  ---- OCSP over HTTP, POST and GET: good
    int reason = -1;
    assert (s_ocsp_ask (test, web_pem, chain_pem, root_pem, false, &reason) == UMB_OCSP_GOOD);
    assert (s_ocsp_ask (test, web_pem, chain_pem, root_pem, true, &reason) == UMB_OCSP_GOOD);
    assert (s_ocsp_ask (test, web_pem, chain_pem, root_pem, false, &reason) == UMB_OCSP_GOOD);
    //  Garbage is answered malformedRequest, with HTTP 200
    http = umb_certs_http_fetch (test->http_port, "POST", "/ocsp", "application/ocsp-request",
                                 "garbage", 7);
    assert (http->status == 200);
    OCSP_RESPONSE *malformed = NULL;
    const unsigned char *cursor = http->body;
    malformed = d2i_OCSP_RESPONSE (NULL, &cursor, (long) http->body_size);
    assert (malformed && OCSP_response_status (malformed) == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    OCSP_RESPONSE_free (malformed);
    umb_certs_http_response_destroy (&http);
    http = umb_certs_http_fetch (test->http_port, "GET", "/ocsp/%%%", NULL, NULL, 0);
    assert (http->status == 200);
    umb_certs_http_response_destroy (&http);

    //  ---- revocation: members may not, admins may, once
    reply = umb_testkit_call (test->client, "certs.revoke", bob, "workspace", "acme", "serial",
                              web_serial, "reason", "keyCompromise", NULL);
    umb_testkit_expect (&reply, 403, "forbidden", NULL);
    reply = umb_testkit_call (test->client, "certs.revoke", alice, "workspace", "acme", "serial",
                              web_serial, "reason", "stolen", NULL);
    umb_testkit_expect (&reply, 422, NULL, "reason");
    reply = umb_testkit_call (test->client, "certs.revoke", alice, "workspace", "acme", "serial",
                              web_serial, "reason", "certificateHold", NULL);
    umb_testkit_expect (&reply, 422, NULL, "reason");
    reply = umb_testkit_call (test->client, "certs.revoke", alice, "workspace", "acme", "serial",
                              "ffff", NULL);
    umb_testkit_expect (&reply, 404, NULL, "no certificate 'ffff'");
    reply = s_ok (umb_testkit_call (test->client, "certs.crl", NULL, NULL), 200);
    int64_t crl_number = umb_testkit_int (reply, "number");
    umb_reply_destroy (&reply);
    reply = s_ok (umb_testkit_call (test->client, "certs.revoke", alice, "workspace", "acme",
                                    "serial", web_serial, "reason", "keyCompromise", NULL), 200);
    assert (streq (s_str (reply, "status"), "revoked"));
    assert (streq (s_str (reply, "reason"), "keyCompromise"));
    assert (umb_testkit_int (reply, "revoked_at") > 0);
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test->client, "certs.revoke", alice, "workspace", "acme", "serial",
                              web_serial, NULL);
    umb_testkit_expect (&reply, 409, "already_revoked", "revoked already");
    //  Published
    char *topic = NULL;
    zframe_t *frame = NULL;
    assert (zsock_recv (sub, "sf", &topic, &frame) == 0 && streq (topic, "certs.revoked"));
    umb_msg_t *event = umb_msg_decode (zframe_data (frame), zframe_size (frame), NULL);
    assert (event && streq (umb_msg_str (event, "serial", 64, true), web_serial));
    assert (streq (umb_msg_str (event, "reason", 64, true), "keyCompromise"));
    umb_msg_destroy (&event);
    zframe_destroy (&frame);
    zstr_free (&topic);

    //  OCSP says so at once (the cached "good" is gone), CRL lists it
    assert (s_ocsp_ask (test, web_pem, chain_pem, root_pem, false, &reason) == UMB_OCSP_REVOKED);
    assert (reason == UMB_CA_REASON_KEY_COMPROMISE);
    assert (s_ocsp_ask (test, web_pem, chain_pem, root_pem, true, &reason) == UMB_OCSP_REVOKED);
    assert (s_ocsp_ask (test, api_pem, chain_pem, root_pem, true, &reason) == UMB_OCSP_GOOD);
    reply = s_ok (umb_testkit_call (test->client, "certs.crl", NULL, NULL), 200);
    assert (umb_testkit_int (reply, "number") == crl_number + 1);
    size_t crl_size = 0;
    const uint8_t *crl_der = umb_msg_bin (umb_reply_body (reply), "crl_der", 1 << 20, &crl_size, true);
    assert (crl_der && s_crl_lists (crl_der, crl_size, web_pem) && !s_crl_lists (crl_der, crl_size, api_pem));
    assert (strncmp (s_str (reply, "crl_pem"), "-----BEGIN X509 CRL-----", 24) == 0);
    assert (umb_testkit_int (reply, "next_update") > umb_testkit_int (reply, "this_update"));
    http = umb_certs_http_fetch (test->http_port, "GET", "/crl", NULL, NULL, 0);
    char type [64];
    assert (http->status == 200 && http->body_size == crl_size && memcmp (http->body, crl_der, crl_size) == 0);
    assert (umb_certs_http_response_header (http, "Content-Type", type, sizeof type)
            && streq (type, "application/pkix-crl"));
    umb_certs_http_response_destroy (&http);
    http = umb_certs_http_fetch (test->http_port, "GET", "/crl.pem", NULL, NULL, 0);
    assert (http->status == 200 && streq ((char *) http->body, s_str (reply, "crl_pem")));
    umb_certs_http_response_destroy (&http);
    umb_reply_destroy (&reply);
    reply = s_ok (umb_testkit_call (test->client, "certs.list", alice, "workspace", "acme",
                                    "status", "revoked", NULL), 200);
    assert (s_items (reply) == 1);
    umb_reply_destroy (&reply);

    //  A revocation that cannot be stored changes nothing
    umb_store_fail_after (test->store, 2);
    umb_client_set_attempts (test->client, 1);      //  or the client's retry succeeds
    reply = umb_testkit_call (test->client, "certs.revoke", alice, "workspace", "acme", "serial",
                              api_serial, NULL);
    umb_client_set_attempts (test->client, 3);
    assert (umb_reply_retryable (reply));
    umb_testkit_expect (&reply, 500, NULL, "nothing was changed");
    assert (s_ocsp_ask (test, api_pem, chain_pem, root_pem, false, &reason) == UMB_OCSP_GOOD);
    reply = s_ok (umb_testkit_call (test->client, "certs.crl", NULL, NULL), 200);
    assert (umb_testkit_int (reply, "number") == crl_number + 1);
    umb_reply_destroy (&reply);

    //  ---- renewal: same names; a new key, or the CSR's key again
    reply = umb_testkit_call (test->client, "certs.renew", alice, "workspace", "acme", "serial",
                              web_serial, NULL);
    umb_testkit_expect (&reply, 409, NULL, "revoked");
    reply = s_ok (umb_testkit_call (test->client, "certs.renew", bob, "workspace", "acme", "serial",
                                    robot_serial, NULL), 201);
    assert (!streq (s_str (reply, "serial"), robot_serial) && s_str (reply, "private_key"));
    assert (streq (s_str (reply, "common_name"), "robot") && streq (s_str (reply, "profile"), "client"));
    assert (streq (s_str (reply, "key_type"), "rsa-3072"));
    umb_reply_destroy (&reply);
    reply = s_ok (umb_testkit_call (test->client, "certs.renew", alice, "workspace", "acme",
                                    "serial", api_serial, NULL), 201);
    char *renewed_serial = umb_testkit_dup (reply, "serial", S_STR_MAX);
    assert (!streq (renewed_serial, api_serial) && !s_str (reply, "private_key"));
    s_sans_text (reply, text, sizeof text);
    assert (streq (text, "api.acme.test"));
    X509 *renewed = s_x509 (s_str (reply, "certificate"));
    assert (EVP_PKEY_eq (X509_get0_pubkey (renewed), api_key) == 1);
    X509_free (renewed);
    umb_reply_destroy (&reply);
    //  The renewed one stays valid
    reply = s_ok (umb_testkit_call (test->client, "certs.get", alice, "workspace", "acme", "serial",
                                    api_serial, NULL), 200);
    assert (streq (s_str (reply, "status"), "valid"));
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test->client, "certs.renew", alice, "workspace", "acme", "serial",
                              api_serial, "ttl", "long", NULL);
    umb_testkit_expect (&reply, 400, NULL, "ttl");
    reply = umb_testkit_call (test->client, "certs.renew", carol, "workspace", "globex", "serial",
                              api_serial, NULL);
    umb_testkit_expect (&reply, 404, NULL, "no certificate");

    //  ---- mesh identities
    zcert_t *agent = zcert_new ();
    reply = umb_testkit_call (test->client, "certs.mesh.issue", NULL, "name", "agent-1",
                              "public_key", zcert_public_txt (agent), NULL);
    reply = s_ok (reply, 201);
    char *agent_serial = umb_testkit_dup (reply, "serial", S_STR_MAX);
    assert (streq (s_str (reply, "name"), "agent-1") && streq (s_str (reply, "status"), "valid"));
    assert (streq (s_str (reply, "public_key"), zcert_public_txt (agent)));
    X509 *agent_x509 = s_x509 (s_str (reply, "certificate"));
    uint8_t raw [32];
    size_t raw_size = sizeof raw;
    assert (EVP_PKEY_get_raw_public_key (X509_get0_pubkey (agent_x509), raw, &raw_size) == 1);
    assert (raw_size == 32 && memcmp (raw, zcert_public_key (agent), 32) == 0);
    X509_free (agent_x509);
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test->client, "certs.mesh.issue", NULL, "name", "agent 1",
                              "public_key", zcert_public_txt (agent), NULL);
    umb_testkit_expect (&reply, 422, NULL, "name");
    reply = umb_testkit_call (test->client, "certs.mesh.issue", NULL, "name", "agent-1",
                              "public_key", "short", NULL);
    umb_testkit_expect (&reply, 422, NULL, "public_key");
    //  Only service identities may ask
    zcert_t *stranger = zcert_new ();
    umb_zap_allow (umb_runtime_zap (test->runtime), zcert_public_txt (stranger), "stranger");
    char *server_key = umb_runtime_public_key (test->runtime, "certs");
    umb_client_t *outsider = umb_client_new (test->endpoint, server_key, stranger);
    zstr_free (&server_key);
    reply = umb_testkit_call (outsider, "certs.mesh.issue", NULL, "name", "me", "public_key",
                              zcert_public_txt (stranger), NULL);
    umb_testkit_expect (&reply, 403, "forbidden", NULL);
    reply = umb_testkit_call (outsider, "certs.mesh.revoked", NULL, NULL);
    umb_testkit_expect (&reply, 403, NULL, NULL);
    reply = s_ok (umb_testkit_call (outsider, "certs.ca", NULL, NULL), 200);
    umb_reply_destroy (&reply);
    umb_client_destroy (&outsider);
    zcert_destroy (&stranger);

    reply = s_ok (umb_testkit_call (test->client, "certs.mesh.revoked", NULL, NULL), 200);
    int64_t version = umb_testkit_int (reply, "version");
    umb_msg_t *keys = umb_msg_array (umb_reply_body (reply), "keys", 100, true);
    assert (keys && umb_msg_size (keys) == 0);
    umb_reply_destroy (&reply);
    //  Platform administrators only
    reply = umb_testkit_call (test->client, "certs.mesh.list", alice, NULL);
    umb_testkit_expect (&reply, 403, NULL, "administrators");
    reply = umb_testkit_call (test->client, "certs.mesh.revoke", alice, "serial", agent_serial,
                              NULL);
    umb_testkit_expect (&reply, 403, NULL, "administrators");
    reply = s_ok (umb_testkit_call (test->client, "certs.mesh.list", root, NULL), 200);
    assert (s_items (reply) == 2);          //  the agent's and the service's own
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test->client, "certs.mesh.revoke", root, "serial", api_serial, NULL);
    umb_testkit_expect (&reply, 404, NULL, "no mesh certificate");
    reply = s_ok (umb_testkit_call (test->client, "certs.mesh.revoke", root, "serial", agent_serial,
                                    "reason", "cessationOfOperation", NULL), 200);
    assert (streq (s_str (reply, "status"), "revoked"));
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test->client, "certs.mesh.revoke", root, "serial", agent_serial,
                              NULL);
    umb_testkit_expect (&reply, 409, NULL, NULL);
    reply = s_ok (umb_testkit_call (test->client, "certs.mesh.revoked", NULL, NULL), 200);
    assert (umb_testkit_int (reply, "version") == version + 1);
    keys = umb_msg_array (umb_reply_body (reply), "keys", 100, true);
    assert (keys && umb_msg_size (keys) == 1);
    assert (streq (umb_msg_as_str (umb_msg_at (keys, 0), 40, "key"), zcert_public_txt (agent)));
    umb_reply_destroy (&reply);
    //  A revoked key is not certified again
    reply = umb_testkit_call (test->client, "certs.mesh.issue", NULL, "name", "agent-1",
                              "public_key", zcert_public_txt (agent), NULL);
    umb_testkit_expect (&reply, 409, NULL, "revoked");
    zcert_destroy (&agent);

    //  A service retires a certificate it asked for, and only such a one
    zcert_t *agent2 = zcert_new ();
    reply = s_ok (umb_testkit_call (test->client, "certs.mesh.issue", NULL, "name", "agent-2",
                                    "public_key", zcert_public_txt (agent2), NULL), 201);
    char *agent2_serial = umb_testkit_dup (reply, "serial", S_STR_MAX);
    umb_reply_destroy (&reply);
    reply = s_ok (umb_testkit_call (test->client, "certs.mesh.list", root, NULL), 200);
    umb_msg_t *items = umb_msg_array (umb_reply_body (reply), "items", 100, true);
    char *own_serial = NULL;
    for (size_t index = 0; items && index < umb_msg_size (items); index++) {
        umb_msg_t *item = umb_msg_at (items, index);
        if (streq (umb_msg_str (item, "name", 64, true), "certs"))
            own_serial = strdup (umb_msg_str (item, "serial", 64, true));
    }
    assert (own_serial);
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test->client, "certs.mesh.retire", NULL, "serial", own_serial, NULL);
    umb_testkit_expect (&reply, 403, NULL, "not issued at this identity's request");
    reply = umb_testkit_call (test->client, "certs.mesh.retire", NULL, "serial", "ffff", NULL);
    umb_testkit_expect (&reply, 404, NULL, "no mesh certificate");
    reply = umb_testkit_call (test->client, "certs.mesh.retire", alice, "serial", agent2_serial,
                              "reason", "noSuchReason", NULL);
    umb_testkit_expect (&reply, 422, NULL, "reason");
    reply = s_ok (umb_testkit_call (test->client, "certs.mesh.retire", NULL, "serial",
                                    agent2_serial, NULL), 200);
    assert (streq (s_str (reply, "status"), "revoked"));
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test->client, "certs.mesh.retire", NULL, "serial", agent2_serial, NULL);
    umb_testkit_expect (&reply, 409, "already_revoked", NULL);
    reply = s_ok (umb_testkit_call (test->client, "certs.mesh.revoked", NULL, NULL), 200);
    assert (umb_testkit_int (reply, "version") == version + 2);
    keys = umb_msg_array (umb_reply_body (reply), "keys", 100, true);
    assert (keys && umb_msg_size (keys) == 2);
    umb_reply_destroy (&reply);
    zstr_free (&agent2_serial);
    free (own_serial);
    zcert_destroy (&agent2);

    //  Metrics of the HTTP side reach sys.metrics
    reply = s_ok (umb_testkit_call (test->client, "sys.metrics", NULL, NULL), 200);
    size_t raw_reply_size = 0;
    const char *raw_reply = umb_reply_raw (reply, &raw_reply_size);
    assert (memmem (raw_reply, raw_reply_size, "umbra_ocsp_responses_total", 26));
    assert (memmem (raw_reply, raw_reply_size, "umbra_certs_http_requests_total", 31));
    umb_reply_destroy (&reply);

    //  ---- a restart keeps everything: revocations, serials, the CRL, its own certificate
    reply = s_ok (umb_testkit_call (test->client, "certs.crl", NULL, NULL), 200);
    crl_number = umb_testkit_int (reply, "number");
    umb_reply_destroy (&reply);
    s_certs_stop (test);
    s_certs_start (test);
    assert (s_ocsp_ask (test, web_pem, chain_pem, root_pem, false, &reason) == UMB_OCSP_REVOKED);
    assert (s_ocsp_ask (test, api_pem, chain_pem, root_pem, false, &reason) == UMB_OCSP_GOOD);
    reply = s_ok (umb_testkit_call (test->client, "certs.crl", NULL, NULL), 200);
    assert (umb_testkit_int (reply, "number") == crl_number);
    umb_reply_destroy (&reply);
    reply = s_ok (umb_testkit_call (test->client, "certs.mesh.list", root, NULL), 200);
    assert (s_items (reply) == 3);          //  the two agents' and its own
    umb_reply_destroy (&reply);
    reply = s_ok (umb_testkit_call (test->client, "certs.ca", NULL, NULL), 200);
    assert (streq (s_str (reply, "root"), root_pem));
    umb_reply_destroy (&reply);

    zsock_destroy (&sub);
    EVP_PKEY_free (api_key);
    zstr_free (&csr);
    zstr_free (&agent_serial);
    zstr_free (&renewed_serial);
    zstr_free (&globex_serial);
    zstr_free (&api_serial);
    zstr_free (&api_pem);
    zstr_free (&robot_serial);
    zstr_free (&web_serial);
    zstr_free (&web_pem);
    sodium_memzero (web_key, strlen (web_key));
    zstr_free (&web_key);
    zstr_free (&root_pem);
    zstr_free (&chain_pem);
    zstr_free (&alice);
    zstr_free (&bob);
    zstr_free (&carol);
    zstr_free (&root);
}

//  A start that cannot bind its HTTP port says why, and serves nothing.
static void
s_test_refused_start (s_test_t *test)
{
    char *taken = zsys_sprintf ("127.0.0.1:%u", test->http_port);
    char *error = NULL;
    assert (umb_config_set (umb_runtime_config (test->runtime), "certs.http_listen", taken,
                            &error) == 0);
    zactor_t *second = zactor_new (umb_certs_actor, test->runtime);
    zstr_send (second, "ENDPOINT");
    char *answer = zstr_recv (second);
    assert (answer && *answer == 0);
    zstr_free (&answer);
    zstr_send (second, "HTTP");
    answer = zstr_recv (second);
    assert (answer && *answer == 0);
    zstr_free (&answer);
    zstr_send (second, "REASON");
    answer = zstr_recv (second);
    assert (answer && strstr (answer, "cannot"));
    zstr_free (&answer);
    zactor_destroy (&second);
    assert (umb_config_set (umb_runtime_config (test->runtime), "certs.http_listen", "127.0.0.1:0",
                            &error) == 0);
    zstr_free (&taken);
}

void
umb_certs_test (bool verbose)
{
    if (verbose)
        printf (" * umb_certs: ");
    s_test_t test = { .verbose = verbose };
    s_platform_start (&test);
    s_test_service (&test);
    s_test_refused_start (&test);
    s_platform_stop (&test);
    if (verbose)
        printf ("OK\n");
}
