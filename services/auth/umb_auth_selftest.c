//  umb_auth_selftest - the auth service's selftest: the real actor, through the real client
#include <assert.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "umb_auth_private.h"
#include "umb_testkit.h"
#include "umb_auth_client.h"
#include "umb_envelope.h"

#define S_TIMEOUT UMB_TESTKIT_TIMEOUT
#define S_STR_MAX 8192               //  longest string field read from a reply
#define S_BAD_LOGIN "invalid username or password"

typedef struct {
    bool           verbose;
    umb_runtime_t *runtime;
    zactor_t      *actor;
    umb_store_t   *store;       //  the actor's, when started by s_fault_actor
    zcert_t       *gateway;
    umb_client_t  *client;
    char          *endpoint;
    char          *state_dir;
    int            null_fd;     //  where the service logs go
} s_test_t;

//  ---------------------------------------------------------------- plumbing

static const char *
s_str (umb_reply_t *reply, const char *key)
{
    return umb_msg_str (umb_reply_body (reply), key, S_STR_MAX, false);
}

static bool
s_bool (umb_reply_t *reply, const char *key)
{
    return umb_msg_bool (umb_reply_body (reply), key, false, true);
}

static size_t
s_items (umb_reply_t *reply)
{
    umb_msg_t *items = umb_msg_array (umb_reply_body (reply), "items", 1000, true);
    assert (items);
    return umb_msg_size (items);
}

static void
s_actor_start (s_test_t *test, zactor_fn *actor)
{
    test->actor = zactor_new (actor, test->runtime);
    assert (test->actor);
    if (actor != umb_auth_actor)
        assert (zsock_recv (test->actor, "p", &test->store) == 0 && test->store);
    zstr_send (test->actor, "ENDPOINT");
    test->endpoint = zstr_recv (test->actor);
    assert (test->endpoint);
    if (!*test->endpoint)
        return;                 //  start failed; the caller checks
    char *server_key = umb_runtime_public_key (test->runtime, "auth");
    assert (server_key);
    test->client = umb_client_new (test->endpoint, server_key, test->gateway);
    assert (test->client);
    zstr_free (&server_key);
}

static void
s_actor_stop (s_test_t *test)
{
    umb_client_destroy (&test->client);
    zactor_destroy (&test->actor);
    zstr_free (&test->endpoint);
    test->store = NULL;
}

//  The real actor's start-up, with a window onto its store for fault injection.
static void
s_fault_actor (zsock_t *pipe, void *args)
{
    umb_auth_t *self = umb_auth_new ((umb_runtime_t *) args);
    zsock_signal (pipe, 0);
    zsock_send (pipe, "p", umb_auth_store (self));
    umb_auth_run (self, pipe);
    umb_auth_destroy (&self);
}

static void
s_runtime_start (s_test_t *test, const char *const *settings)
{
    char dir [] = "/tmp/umb-auth-test-XXXXXX";
    assert (mkdtemp (dir));
    test->state_dir = strdup (dir);
    umb_config_t *config = umb_config_new ();
    char *error = NULL;
    assert (umb_config_set (config, "state_dir", dir, &error) == 0);
    assert (umb_config_set (config, "auth.endpoint", "tcp://127.0.0.1:*", &error) == 0);
    assert (umb_config_set (config, "auth.pub_endpoint", "tcp://127.0.0.1:*", &error) == 0);
    assert (umb_config_set (config, "auth.pwhash", "interactive", &error) == 0);
    assert (umb_config_set (config, "log.level", "error", &error) == 0);
    //  Members as a billing limit are tested with billing (umb_billing)
    assert (umb_config_set (config, "billing.enabled", "false", &error) == 0);
    for (const char *const *setting = settings; setting && *setting; setting += 2)
        assert (umb_config_set (config, setting [0], setting [1], &error) == 0);
    test->runtime = umb_runtime_new (&config, &error);
    assert (test->runtime);
    //  Injected faults and refused start-ups log errors by design
    test->null_fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
    assert (test->null_fd >= 0);
    umb_log_set_fd (umb_runtime_log (test->runtime), test->null_fd);
    test->gateway = umb_runtime_identity (test->runtime, "gateway");
    assert (test->gateway);
}

static void
s_runtime_stop (s_test_t *test)
{
    zcert_destroy (&test->gateway);
    umb_runtime_destroy (&test->runtime);
    close (test->null_fd);
    umb_testkit_remove_dir (test->state_dir);
    free (test->state_dir);
    test->state_dir = NULL;
}

//  Logs in; returns the reply (201) for the caller to read and destroy.
static umb_reply_t *
s_login (s_test_t *test, const char *username, const char *password)
{
    umb_reply_t *reply = umb_testkit_call (test->client, "auth.tokens.create", NULL, "username",
                                           username, "password", password, NULL);
    if (umb_reply_status (reply) != 201)
        fprintf (stderr, "login of %s: %d %s\n", username, umb_reply_status (reply),
                 umb_reply_error (reply) ? umb_reply_error (reply) : "");
    assert (umb_reply_status (reply) == 201);
    return reply;
}

static char *
s_access (s_test_t *test, const char *username, const char *password, char **refresh)
{
    umb_reply_t *reply = s_login (test, username, password);
    char *access = umb_testkit_dup (reply, "access_token", S_STR_MAX);
    if (refresh)
        *refresh = umb_testkit_dup (reply, "refresh_token", S_STR_MAX);
    umb_reply_destroy (&reply);
    return access;
}

static char *
s_register (s_test_t *test, const char *username, const char *password)
{
    umb_reply_t *reply = umb_testkit_call (test->client, "auth.users.register", NULL, "username",
                                           username, "password", password, "email",
                                           "someone@example.org", NULL);
    assert (umb_reply_status (reply) == 201);
    char *id = umb_testkit_dup (reply, "id", S_STR_MAX);
    umb_reply_destroy (&reply);
    return id;
}

//  Runs the actor with stdout captured into a file; returns what it printed.
static char *
s_start_captured (s_test_t *test, zactor_fn *actor)
{
    char path [] = "/tmp/umb-auth-stdout-XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    fflush (stdout);
    int saved = dup (STDOUT_FILENO);
    assert (saved >= 0 && dup2 (fd, STDOUT_FILENO) >= 0);
    s_actor_start (test, actor);
    fflush (stdout);
    assert (dup2 (saved, STDOUT_FILENO) >= 0);
    close (saved);
    char *text = calloc (1, 4096);
    assert (text);
    assert (lseek (fd, 0, SEEK_SET) == 0);
    ssize_t size = read (fd, text, 4095);
    assert (size >= 0);
    close (fd);
    unlink (path);
    return text;
}

//  ---------------------------------------------------------------- users and tokens

typedef struct {
    char *alice_id, *bob_id, *carol_id;
    char *alice, *alice_refresh;            //  alice's main session
    char *bob;
    char *carol;
    char *root;
} s_people_t;

static void
s_test_users (s_test_t *test, s_people_t *people)
{
    //  Registration and its failures
    people->alice_id = s_register (test, "alice", "alice-password");
    assert (strncmp (people->alice_id, "usr_", 4) == 0 && strlen (people->alice_id) == 20);
    umb_reply_t *reply = umb_testkit_call (test->client, "auth.users.register", NULL, "username",
                                           "alice", "password", "another-password", NULL);
    umb_testkit_expect (&reply, 409, "username_taken", "'alice' is taken");
    reply = umb_testkit_call (test->client, "auth.users.register", NULL, "username", "Alice!",
                              "password", "alice-password", NULL);
    umb_testkit_expect (&reply, 422, "invalid_argument", "username");
    reply = umb_testkit_call (test->client, "auth.users.register", NULL, "username",
                              "usr_0123456789abcdef", "password", "alice-password", NULL);
    umb_testkit_expect (&reply, 422, NULL, "reserved");
    reply = umb_testkit_call (test->client, "auth.users.register", NULL, "username", "dave",
                              "password", "short", NULL);
    umb_testkit_expect (&reply, 422, NULL, "password: at least 10 bytes");
    reply = umb_testkit_call (test->client, "auth.users.register", NULL, "username", "dave",
                              "password", "long-enough-1", "email", "not-an-email", NULL);
    umb_testkit_expect (&reply, 422, NULL, "email");
    reply = umb_testkit_call (test->client, "auth.users.register", NULL, "username", "dave", NULL);
    umb_testkit_expect (&reply, 400, "bad_request", "field 'password' is required");
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "username", "dave");
    umb_w_kv_int (w, "password", 1234567890);
    umb_w_map_end (w);
    reply = umb_testkit_callw (test->client, "auth.users.register", NULL, w);
    umb_testkit_expect (&reply, 400, NULL, "field 'password': expected a string");

    people->bob_id = s_register (test, "bob", "bob-password");
    people->carol_id = s_register (test, "carol", "carol-password");

    //  Logging in, and the three ways it fails
    reply = s_login (test, "alice", "alice-password");
    assert (streq (s_str (reply, "token_type"), "Bearer"));
    assert (umb_testkit_int (reply, "expires_in") == 900);
    assert (umb_testkit_int (reply, "refresh_expires_in") == 2592000);
    const char *refresh = s_str (reply, "refresh_token");
    assert (strncmp (refresh, "umr_", 4) == 0 && strlen (refresh) == 47);
    umb_msg_t *user = umb_msg_map (umb_reply_body (reply), "user", true);
    assert (user && streq (umb_msg_str (user, "username", 64, true), "alice"));
    assert (streq (umb_msg_str (user, "id", 64, true), people->alice_id));
    people->alice = umb_testkit_dup (reply, "access_token", S_STR_MAX);
    people->alice_refresh = umb_testkit_dup (reply, "refresh_token", S_STR_MAX);
    umb_reply_destroy (&reply);

    reply = umb_testkit_call (test->client, "auth.tokens.create", NULL, "username", "bob",
                              "password", "wrong-password", NULL);
    umb_testkit_expect (&reply, 401, "unauthenticated", S_BAD_LOGIN);
    reply = umb_testkit_call (test->client, "auth.tokens.create", NULL, "username", "nobody",
                              "password", "wrong-password", NULL);
    umb_testkit_expect (&reply, 401, "unauthenticated", S_BAD_LOGIN);
    reply = umb_testkit_call (test->client, "auth.tokens.create", NULL, "username", "nobody",
                              "password", "wrong-password", NULL);
    umb_testkit_expect (&reply, 401, NULL, S_BAD_LOGIN);
    //  Two failures allowed (auth.login_max_failures = 2): the third try is refused unchecked
    reply = umb_testkit_call (test->client, "auth.tokens.create", NULL, "username", "nobody",
                              "password", "wrong-password", NULL);
    umb_testkit_expect (&reply, 429, "too_many_requests", "too many failed logins; try again in ");
    reply = umb_testkit_call (test->client, "auth.tokens.create", NULL, "username", "alice", NULL);
    umb_testkit_expect (&reply, 400, NULL, "field 'password' is required");

    people->bob = s_access (test, "bob", "bob-password", NULL);
    people->carol = s_access (test, "carol", "carol-password", NULL);

    //  Using the token
    reply = umb_testkit_call (test->client, "auth.users.get", people->alice, "user", "me", NULL);
    assert (streq (s_str (reply, "username"), "alice"));
    assert (streq (s_str (reply, "email"), "someone@example.org"));
    assert (!s_bool (reply, "is_admin") && !s_bool (reply, "disabled"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.users.get", people->alice, "user", "bob", NULL);
    assert (streq (s_str (reply, "id"), people->bob_id));
    assert (!umb_msg_has (umb_reply_body (reply), "email"));       //  others see id and name
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.users.get", people->alice, "user", people->bob_id,
                              NULL);
    assert (streq (s_str (reply, "username"), "bob"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.users.get", people->alice, "user", "ghost", NULL);
    umb_testkit_expect (&reply, 404, "not_found", "no user 'ghost'");
    reply = umb_testkit_call (test->client, "auth.users.get", NULL, "user", "me", NULL);
    umb_testkit_expect (&reply, 401, NULL, "bearer token");
    reply = umb_testkit_call (test->client, "auth.users.get", "garbage", "user", "me", NULL);
    umb_testkit_expect (&reply, 401, NULL, "malformed token");

    //  A forged token: one changed character in the signature, or in the claims
    char *forged = strdup (people->alice);
    char *signature = strrchr (forged, '.') + 10;
    *signature = *signature == 'A' ? 'B' : 'A';
    reply = umb_testkit_call (test->client, "auth.users.get", forged, "user", "me", NULL);
    umb_testkit_expect (&reply, 401, NULL, "bad signature");
    free (forged);
    forged = strdup (people->alice);
    char *claims = strchr (forged, '.') + 5;
    *claims = *claims == 'A' ? 'B' : 'A';
    reply = umb_testkit_call (test->client, "auth.users.get", forged, "user", "me", NULL);
    umb_testkit_expect (&reply, 401, NULL, NULL);
    free (forged);

    //  An expired token, signed with the service's own key
    reply = umb_testkit_call (test->client, "auth.introspect", NULL, "token", people->alice, NULL);
    assert (s_bool (reply, "active"));
    char *session = umb_testkit_dup (reply, "session", S_STR_MAX);
    assert (strncmp (session, "ses_", 4) == 0);
    assert (streq (s_str (reply, "subject"), people->alice_id));
    umb_reply_destroy (&reply);
    char *key_path = zsys_sprintf ("%s/auth/jwt-ed25519.key", test->state_dir);
    umb_jwt_signer_t *signer = umb_jwt_signer_load_or_create (key_path, NULL);
    assert (signer);
    int64_t now = umb_auth_now ();
    json_t *expired_claims = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}",
        "iss", "umbra", "sub", people->alice_id, "name", "alice", "sid", session, "jti", "x",
        "iat", (json_int_t) (now - 1000), "nbf", (json_int_t) (now - 1000),
        "exp", (json_int_t) (now - 100));
    char *expired = umb_jwt_sign (signer, expired_claims);
    reply = umb_testkit_call (test->client, "auth.users.get", expired, "user", "me", NULL);
    umb_testkit_expect (&reply, 401, NULL, "token expired");
    //  The same key, valid claims: accepted (so the refusal above was the expiry)
    json_object_set_new (expired_claims, "exp", json_integer (now + 100));
    char *fresh = umb_jwt_sign (signer, expired_claims);
    reply = umb_testkit_call (test->client, "auth.users.get", fresh, "user", "me", NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    json_decref (expired_claims);
    free (expired);
    free (fresh);
    umb_jwt_signer_destroy (&signer);
    zstr_free (&key_path);
    free (session);

    //  JWKS
    reply = umb_client_call (test->client, "auth.jwks", NULL, NULL, 0, S_TIMEOUT, NULL);
    umb_msg_t *keys = umb_msg_array (umb_reply_body (reply), "keys", 10, true);
    assert (keys && umb_msg_size (keys) == 1);
    umb_msg_t *jwk = umb_msg_at (keys, 0);
    assert (streq (umb_msg_str (jwk, "kty", 10, true), "OKP"));
    assert (streq (umb_msg_str (jwk, "crv", 10, true), "Ed25519"));
    assert (streq (umb_msg_str (jwk, "alg", 10, true), "EdDSA"));
    assert (umb_msg_str (jwk, "kid", 100, true) && umb_msg_str (jwk, "x", 100, true));
    umb_testkit_expect (&reply, 200, NULL, NULL);

    //  Refresh rotation; then logout ends the session at once
    char *refresh_b;
    char *access_b = s_access (test, "alice", "alice-password", &refresh_b);
    reply = umb_testkit_call (test->client, "auth.tokens.refresh", NULL, "refresh_token", refresh_b,
                              NULL);
    char *access_b2 = umb_testkit_dup (reply, "access_token", S_STR_MAX);
    char *refresh_b2 = umb_testkit_dup (reply, "refresh_token", S_STR_MAX);
    assert (!streq (refresh_b, refresh_b2));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.users.get", access_b2, "user", "me", NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.tokens.revoke", access_b2, NULL);
    assert (umb_testkit_int (reply, "revoked") == 1);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.users.get", access_b2, "user", "me", NULL);
    umb_testkit_expect (&reply, 401, NULL, "session revoked");
    reply = umb_testkit_call (test->client, "auth.users.get", access_b, "user", "me", NULL);
    umb_testkit_expect (&reply, 401, NULL, "session revoked");
    reply = umb_testkit_call (test->client, "auth.introspect", NULL, "token", access_b2, NULL);
    assert (!s_bool (reply, "active") && streq (s_str (reply, "reason"), "session revoked"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.tokens.refresh", NULL, "refresh_token",
                              refresh_b2, NULL);
    umb_testkit_expect (&reply, 401, NULL, "session revoked");
    reply = umb_testkit_call (test->client, "auth.tokens.refresh", NULL, "refresh_token",
                              "umr_made-up", NULL);
    umb_testkit_expect (&reply, 401, NULL, "invalid refresh token");
    //  alice's main session lives on
    reply = umb_testkit_call (test->client, "auth.users.get", people->alice, "user", "me", NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    free (access_b);
    free (access_b2);
    free (refresh_b);
    free (refresh_b2);

    //  Changing a password needs the current one and ends the other sessions
    reply = umb_testkit_call (test->client, "auth.users.update", people->bob, "user", "me",
                              "password", "bob-password-2", NULL);
    umb_testkit_expect (&reply, 400, NULL, "current_password");
    reply = umb_testkit_call (test->client, "auth.users.update", people->bob, "user", "me",
                              "password", "bob-password-2", "current_password", "not-bobs-password",
                              NULL);
    umb_testkit_expect (&reply, 403, "wrong_password", NULL);
    reply = umb_testkit_call (test->client, "auth.users.update", people->bob, "user", "alice",
                              "email", "x@y.z", NULL);
    umb_testkit_expect (&reply, 403, "forbidden", "platform administrator");
    reply = umb_testkit_call (test->client, "auth.users.update", people->bob, "user", "me", NULL);
    umb_testkit_expect (&reply, 422, NULL, "nothing to update");
    reply = umb_testkit_call (test->client, "auth.users.update", people->bob, "user", "me", "email",
                              "bob@example.org", NULL);
    assert (streq (s_str (reply, "email"), "bob@example.org"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    char *bob_other = s_access (test, "bob", "bob-password", NULL);
    reply = umb_testkit_call (test->client, "auth.users.update", people->bob, "user", "me",
                              "password", "bob-password-2", "current_password", "bob-password",
                              NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.users.get", bob_other, "user", "me", NULL);
    umb_testkit_expect (&reply, 401, NULL, "session revoked");
    reply = umb_testkit_call (test->client, "auth.users.get", people->bob, "user", "me", NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    free (bob_other);
}

//  ---------------------------------------------------------------- workspaces

static void
s_test_workspaces (s_test_t *test, s_people_t *people)
{
    umb_reply_t *reply = umb_testkit_call (test->client, "auth.workspaces.create", people->alice,
                                           "name", "team-a", "display_name", "Team A", NULL);
    assert (streq (s_str (reply, "role"), "admin"));
    assert (streq (s_str (reply, "display_name"), "Team A"));
    char *team_id = umb_testkit_dup (reply, "id", S_STR_MAX);
    assert (strncmp (team_id, "ws_", 3) == 0);
    umb_testkit_expect (&reply, 201, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.workspaces.create", people->bob, "name", "team-a",
                              NULL);
    umb_testkit_expect (&reply, 409, "name_taken", NULL);
    reply = umb_testkit_call (test->client, "auth.workspaces.create", people->alice, "name",
                              "Team_A", NULL);
    umb_testkit_expect (&reply, 422, NULL, "name");
    reply = umb_testkit_call (test->client, "auth.workspaces.create", people->alice, NULL);
    umb_testkit_expect (&reply, 400, NULL, "field 'name' is required");
    reply = umb_testkit_call (test->client, "auth.workspaces.create", people->alice, "name",
                              "team-b", NULL);
    char *other_id = umb_testkit_dup (reply, "id", S_STR_MAX);
    umb_testkit_expect (&reply, 201, NULL, NULL);

    reply = umb_testkit_call (test->client, "auth.workspaces.list", people->alice, NULL);
    assert (s_items (reply) == 2);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.workspaces.get", people->alice, "workspace",
                              "team-a", NULL);
    assert (streq (s_str (reply, "id"), team_id));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.workspaces.get", people->alice, "workspace",
                              team_id, NULL);
    assert (streq (s_str (reply, "name"), "team-a"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.workspaces.rename", people->alice, "workspace",
                              "team-a", "name", "team-alpha", "display_name", "Team Alpha", NULL);
    assert (streq (s_str (reply, "name"), "team-alpha"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.workspaces.rename", people->alice, "workspace",
                              "team-alpha", "name", "team-b", NULL);
    umb_testkit_expect (&reply, 409, "name_taken", NULL);
    reply = umb_testkit_call (test->client, "auth.workspaces.rename", people->alice, "workspace",
                              "team-alpha", NULL);
    umb_testkit_expect (&reply, 422, NULL, "nothing to change");
    reply = umb_testkit_call (test->client, "auth.workspaces.get", people->alice, "workspace",
                              "team-a", NULL);
    umb_testkit_expect (&reply, 404, NULL, UMB_AUTH_NO_WORKSPACE);

    //  Outsiders cannot tell a workspace from a missing one: same status, code and text
    reply = umb_testkit_call (test->client, "auth.workspaces.get", people->carol, "workspace",
                              "team-alpha", NULL);
    char *hidden = strdup (umb_reply_error (reply));
    umb_testkit_expect (&reply, 404, "not_found", UMB_AUTH_NO_WORKSPACE);
    reply = umb_testkit_call (test->client, "auth.workspaces.get", people->carol, "workspace",
                              "team-omega", NULL);
    assert (streq (umb_reply_error (reply), hidden));
    umb_testkit_expect (&reply, 404, "not_found", NULL);
    free (hidden);
    reply = umb_testkit_call (test->client, "auth.workspaces.delete", people->carol, "workspace",
                              team_id, NULL);
    umb_testkit_expect (&reply, 404, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.members.list", people->carol, "workspace",
                              "team-alpha", NULL);
    umb_testkit_expect (&reply, 404, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.workspaces.list", people->carol, NULL);
    assert (s_items (reply) == 0);
    umb_testkit_expect (&reply, 200, NULL, NULL);

    //  Invitations
    reply = umb_testkit_call (test->client, "auth.invitations.create", people->alice, "workspace",
                              "team-alpha", "username", "bob", "role", "viewer", NULL);
    assert (streq (s_str (reply, "state"), "pending"));
    assert (streq (s_str (reply, "username"), "bob"));
    assert (streq (s_str (reply, "invited_by"), "alice"));
    assert (streq (s_str (reply, "workspace_name"), "team-alpha"));
    assert (streq (s_str (reply, "workspace_id"), team_id));
    char *invitation = umb_testkit_dup (reply, "id", S_STR_MAX);
    umb_testkit_expect (&reply, 201, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.invitations.create", people->alice, "workspace",
                              "team-alpha", "username", "bob", "role", "member", NULL);
    umb_testkit_expect (&reply, 409, "already_invited", NULL);
    reply = umb_testkit_call (test->client, "auth.invitations.create", people->alice, "workspace",
                              "team-alpha", "username", "alice", "role", "member", NULL);
    umb_testkit_expect (&reply, 409, "already_member", NULL);
    reply = umb_testkit_call (test->client, "auth.invitations.create", people->alice, "workspace",
                              "team-alpha", "username", "ghost", "role", "member", NULL);
    umb_testkit_expect (&reply, 404, NULL, "no user 'ghost'");
    reply = umb_testkit_call (test->client, "auth.invitations.create", people->alice, "workspace",
                              "team-alpha", "username", "carol", "role", "owner", NULL);
    umb_testkit_expect (&reply, 422, NULL, "role");
    reply = umb_testkit_call (test->client, "auth.invitations.list", people->alice, "workspace",
                              "team-alpha", "state", "pending", NULL);
    assert (s_items (reply) == 1);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.invitations.list", people->alice, "workspace",
                              "team-alpha", "state", "lost", NULL);
    umb_testkit_expect (&reply, 422, NULL, "state");
    reply = umb_testkit_call (test->client, "auth.invitations.mine", people->bob, NULL);
    assert (s_items (reply) == 1);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    //  Only the invitee may answer; anyone else is told there is no such invitation
    reply = umb_testkit_call (test->client, "auth.invitations.accept", people->carol, "invitation",
                              invitation, NULL);
    umb_testkit_expect (&reply, 404, NULL, "no invitation");
    reply = umb_testkit_call (test->client, "auth.invitations.accept", people->alice, "invitation",
                              invitation, NULL);
    umb_testkit_expect (&reply, 404, NULL, "no invitation");
    reply = umb_testkit_call (test->client, "auth.invitations.accept", people->bob, "invitation",
                              invitation, NULL);
    umb_msg_t *accepted = umb_msg_map (umb_reply_body (reply), "invitation", true);
    umb_msg_t *member = umb_msg_map (umb_reply_body (reply), "member", true);
    assert (accepted && streq (umb_msg_str (accepted, "state", 20, true), "accepted"));
    assert (member && streq (umb_msg_str (member, "role", 20, true), "viewer"));
    assert (streq (umb_msg_str (member, "user_id", 64, true), people->bob_id));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.invitations.accept", people->bob, "invitation",
                              invitation, NULL);
    umb_testkit_expect (&reply, 409, "invalid_state",
                        "cannot accept an invitation that is accepted");

    //  A viewer reads, and is told what it lacks
    reply = umb_testkit_call (test->client, "auth.workspaces.get", people->bob, "workspace",
                              "team-alpha", NULL);
    assert (streq (s_str (reply, "role"), "viewer"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.members.list", people->bob, "workspace",
                              "team-alpha", NULL);
    assert (s_items (reply) == 2);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.members.update", people->bob, "workspace",
                              "team-alpha", "user", "bob", "role", "admin", NULL);
    umb_testkit_expect (&reply, 403, "forbidden", "role 'viewer' cannot do 'members.manage'");
    reply = umb_testkit_call (test->client, "auth.invitations.create", people->bob, "workspace",
                              "team-alpha", "username", "carol", "role", "viewer", NULL);
    umb_testkit_expect (&reply, 403, NULL, "role 'viewer' cannot do 'members.manage'");

    //  Reject, cancel and the lifecycle's refusals
    reply = umb_testkit_call (test->client, "auth.invitations.create", people->alice, "workspace",
                              "team-alpha", "username", "carol", "role", "member", NULL);
    char *to_carol = umb_testkit_dup (reply, "id", S_STR_MAX);
    umb_testkit_expect (&reply, 201, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.invitations.reject", people->carol, "invitation",
                              to_carol, NULL);
    assert (streq (s_str (reply, "state"), "rejected"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.invitations.cancel", people->alice, "invitation",
                              to_carol, NULL);
    umb_testkit_expect (&reply, 409, "invalid_state",
                        "cannot cancel an invitation that is rejected");
    free (to_carol);
    reply = umb_testkit_call (test->client, "auth.invitations.create", people->alice, "workspace",
                              "team-alpha", "username", "carol", "role", "member", NULL);
    to_carol = umb_testkit_dup (reply, "id", S_STR_MAX);
    umb_testkit_expect (&reply, 201, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.invitations.cancel", people->bob, "invitation",
                              to_carol, NULL);
    umb_testkit_expect (&reply, 403, NULL, "members.manage");
    reply = umb_testkit_call (test->client, "auth.invitations.cancel", people->carol, "invitation",
                              to_carol, NULL);
    umb_testkit_expect (&reply, 404, NULL, "no invitation");
    reply = umb_testkit_call (test->client, "auth.invitations.cancel", people->alice, "invitation",
                              to_carol, NULL);
    assert (streq (s_str (reply, "state"), "cancelled"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.invitations.accept", people->carol, "invitation",
                              to_carol, NULL);
    umb_testkit_expect (&reply, 409, "invalid_state", NULL);
    reply = umb_testkit_call (test->client, "auth.invitations.mine", people->carol, "state",
                              "cancelled", NULL);
    assert (s_items (reply) == 1);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    free (to_carol);

    //  Members: roles change, the last admin stays
    reply = umb_testkit_call (test->client, "auth.members.update", people->alice, "workspace",
                              "team-alpha", "user", "bob", "role", "member", NULL);
    assert (streq (s_str (reply, "role"), "member"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.members.update", people->alice, "workspace",
                              "team-alpha", "user", "alice", "role", "member", NULL);
    umb_testkit_expect (&reply, 409, "last_admin", NULL);
    reply = umb_testkit_call (test->client, "auth.members.remove", people->alice, "workspace",
                              "team-alpha", "user", "me", NULL);
    umb_testkit_expect (&reply, 409, "last_admin", NULL);
    reply = umb_testkit_call (test->client, "auth.members.update", people->alice, "workspace",
                              "team-alpha", "user", "carol", "role", "member", NULL);
    umb_testkit_expect (&reply, 404, NULL, "not a member");
    reply = umb_testkit_call (test->client, "auth.members.update", people->alice, "workspace",
                              "team-alpha", "user", "bob", "role", "boss", NULL);
    umb_testkit_expect (&reply, 422, NULL, "role");
    reply = umb_testkit_call (test->client, "auth.members.remove", people->bob, "workspace",
                              "team-alpha", "user", "alice", NULL);
    umb_testkit_expect (&reply, 403, NULL, "members.manage");

    //  Authorization for the other services, as data
    reply = umb_testkit_call (test->client, "auth.authorize", NULL, "token", people->alice,
                              "action", "members.manage", "workspace", "team-alpha", NULL);
    assert (s_bool (reply, "allowed"));
    assert (streq (s_str (reply, "workspace_id"), team_id));
    assert (streq (s_str (reply, "role"), "admin"));
    assert (streq (s_str (reply, "subject"), people->alice_id));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.authorize", NULL, "token", people->bob, "action",
                              "members.manage", "workspace", team_id, NULL);
    assert (!s_bool (reply, "allowed") && umb_testkit_int (reply, "status") == 403);
    assert (streq (s_str (reply, "reason"), "role 'member' cannot do 'members.manage'"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.authorize", NULL, "token", people->bob, "action",
                              "computations.run", "workspace", team_id, NULL);
    assert (s_bool (reply, "allowed") && streq (s_str (reply, "role"), "member"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.authorize", NULL, "token", people->carol,
                              "action", "workspace.read", "workspace", "team-alpha", NULL);
    assert (!s_bool (reply, "allowed") && umb_testkit_int (reply, "status") == 404);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.authorize", NULL, "token", people->alice,
                              "action", "workspace.*", "workspace", "team-alpha", NULL);
    assert (!s_bool (reply, "allowed") && umb_testkit_int (reply, "status") == 403);
    assert (strstr (s_str (reply, "reason"), "unknown action"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.authorize", NULL, "token", "nonsense", "action",
                              "workspace.read", "workspace", "team-alpha", NULL);
    assert (!s_bool (reply, "allowed") && umb_testkit_int (reply, "status") == 401);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.authorize", NULL, "token", people->alice, NULL);
    umb_testkit_expect (&reply, 400, NULL, "'action' is required");

    //  API keys
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace", "team-alpha");
    umb_w_kv_str (w, "name", "ci");
    umb_w_key (w, "actions");
    umb_w_array_begin (w);
    umb_w_str (w, "members.read");
    umb_w_str (w, "workspace.read");
    umb_w_str (w, "workspace.read");
    umb_w_array_end (w);
    umb_w_kv_int (w, "ttl_s", 3600);
    umb_w_map_end (w);
    reply = umb_testkit_callw (test->client, "auth.apikeys.create", people->alice, w);
    if (umb_reply_status (reply) != 201)
        fprintf (stderr, "apikeys.create: %s\n", umb_reply_error (reply));
    char *key = umb_testkit_dup (reply, "key", S_STR_MAX);
    char *key_id = umb_testkit_dup (reply, "id", S_STR_MAX);
    assert (strlen (key) == UMB_AUTH_APIKEY_SIZE - 1 && strncmp (key, "umb_", 4) == 0);
    assert (strncmp (key + 4, key_id + 4, 16) == 0 && key [20] == '_');
    assert (strncmp (key, s_str (reply, "prefix"), 20) == 0);
    assert (umb_testkit_int (reply, "expires_at") > umb_auth_now ());
    umb_msg_t *actions = umb_msg_array (umb_reply_body (reply), "actions", 10, true);
    assert (actions && umb_msg_size (actions) == 2);
    umb_testkit_expect (&reply, 201, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.apikeys.list", people->alice, "workspace",
                              "team-alpha", NULL);
    assert (s_items (reply) == 1);
    umb_msg_t *listed = umb_msg_at (umb_msg_array (umb_reply_body (reply), "items", 10, true), 0);
    assert (!umb_msg_has (listed, "key"));          //  shown once, never again
    assert (!umb_msg_has (listed, "last_used_at"));
    umb_testkit_expect (&reply, 200, NULL, NULL);

    reply = umb_testkit_call (test->client, "auth.workspaces.get", key, "workspace", "team-alpha",
                              NULL);
    assert (streq (s_str (reply, "id"), team_id));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.members.list", key, "workspace", team_id, NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.workspaces.get", key, "workspace", "team-b",
                              NULL);
    umb_testkit_expect (&reply, 404, NULL, UMB_AUTH_NO_WORKSPACE);
    reply = umb_testkit_call (test->client, "auth.invitations.create", key, "workspace",
                              "team-alpha", "username", "carol", "role", "viewer", NULL);
    umb_testkit_expect (&reply, 403, NULL, "does not hold 'members.manage'");
    reply = umb_testkit_call (test->client, "auth.workspaces.create", key, "name", "by-key", NULL);
    umb_testkit_expect (&reply, 403, NULL, "API keys cannot");
    reply = umb_testkit_call (test->client, "auth.workspaces.list", key, NULL);
    assert (s_items (reply) == 1);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.introspect", NULL, "token", key, NULL);
    assert (s_bool (reply, "active") && s_bool (reply, "is_api_key"));
    assert (streq (s_str (reply, "key_workspace"), team_id));
    assert (umb_msg_size (umb_msg_array (umb_reply_body (reply), "key_actions", 10, true)) == 2);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.apikeys.list", people->alice, "workspace",
                              "team-alpha", NULL);
    listed = umb_msg_at (umb_msg_array (umb_reply_body (reply), "items", 10, true), 0);
    assert (umb_msg_int (listed, "last_used_at", 1, INT64_MAX, 0, true) > 0);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    //  A tampered secret with a real id is refused
    char *wrong = strdup (key);
    wrong [30] = wrong [30] == 'A' ? 'B' : 'A';
    reply = umb_testkit_call (test->client, "auth.workspaces.get", wrong, "workspace", "team-alpha",
                              NULL);
    umb_testkit_expect (&reply, 401, NULL, "invalid API key");
    free (wrong);

    //  What a key may hold: known actions, and only what its creator holds
    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace", "team-alpha");
    umb_w_kv_str (w, "name", "bad");
    umb_w_key (w, "actions");
    umb_w_array_begin (w);
    umb_w_str (w, "workspace.everything");
    umb_w_array_end (w);
    umb_w_map_end (w);
    reply = umb_testkit_callw (test->client, "auth.apikeys.create", people->alice, w);
    umb_testkit_expect (&reply, 422, NULL, "unknown action 'workspace.everything'");
    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace", "team-alpha");
    umb_w_kv_str (w, "name", "bad");
    umb_w_kv_str (w, "actions", "workspace.read");
    umb_w_map_end (w);
    reply = umb_testkit_callw (test->client, "auth.apikeys.create", people->alice, w);
    umb_testkit_expect (&reply, 400, NULL, "expected an array");
    reply = umb_testkit_call (test->client, "auth.apikeys.create", people->bob, "workspace",
                              "team-alpha", "name", "mine", NULL);
    umb_testkit_expect (&reply, 403, NULL, "apikeys.manage");

    //  bob, made admin, makes a key; demoted, his key can no longer manage
    reply = umb_testkit_call (test->client, "auth.members.update", people->alice, "workspace",
                              "team-alpha", "user", "bob", "role", "admin", NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace", "team-alpha");
    umb_w_kv_str (w, "name", "bob's");
    umb_w_key (w, "actions");
    umb_w_array_begin (w);
    umb_w_str (w, "members.manage");
    umb_w_str (w, "members.read");
    umb_w_array_end (w);
    umb_w_map_end (w);
    reply = umb_testkit_callw (test->client, "auth.apikeys.create", people->bob, w);
    char *bob_key = umb_testkit_dup (reply, "key", S_STR_MAX);
    assert (!umb_msg_has (umb_reply_body (reply), "expires_at")
            || umb_msg_int (umb_reply_body (reply), "expires_at", 0, 0, 0, false) == 0);
    umb_testkit_expect (&reply, 201, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.members.update", people->alice, "workspace",
                              "team-alpha", "user", "bob", "role", "member", NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.invitations.create", bob_key, "workspace",
                              "team-alpha", "username", "carol", "role", "viewer", NULL);
    umb_testkit_expect (&reply, 403, NULL, "role 'member' cannot do 'members.manage'");
    reply = umb_testkit_call (test->client, "auth.members.list", bob_key, "workspace", "team-alpha",
                              NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);

    //  Revoked keys are refused
    reply = umb_testkit_call (test->client, "auth.apikeys.revoke", people->alice, "workspace",
                              "team-alpha", "key_id", key_id, NULL);
    assert (s_bool (reply, "revoked"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.apikeys.revoke", people->alice, "workspace",
                              "team-b", "key_id", key_id, NULL);
    umb_testkit_expect (&reply, 404, NULL, "no API key");
    reply = umb_testkit_call (test->client, "auth.workspaces.get", key, "workspace", "team-alpha",
                              NULL);
    umb_testkit_expect (&reply, 401, NULL, "API key revoked");

    //  Deleting a workspace takes its keys and memberships along
    reply = umb_testkit_call (test->client, "auth.workspaces.delete", people->bob, "workspace",
                              "team-b", NULL);
    umb_testkit_expect (&reply, 404, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.workspaces.delete", people->alice, "workspace",
                              "team-b", NULL);
    assert (s_bool (reply, "deleted"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.workspaces.get", people->alice, "workspace",
                              other_id, NULL);
    umb_testkit_expect (&reply, 404, NULL, NULL);

    free (bob_key);
    free (key);
    free (key_id);
    free (invitation);
    free (team_id);
    free (other_id);
}

//  After a restart on the same state: data and keys survive; a failed step
//  of an invitation leaves nothing half-done.
static void
s_test_after_restart (s_test_t *test, s_people_t *people)
{
    assert (test->store);
    umb_reply_t *reply = umb_testkit_call (test->client, "auth.users.get", people->alice, "user",
                                           "me", NULL);
    assert (streq (s_str (reply, "id"), people->alice_id));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.tokens.refresh", NULL, "refresh_token",
                              people->alice_refresh, NULL);
    char *access = umb_testkit_dup (reply, "access_token", S_STR_MAX);
    char *refresh = umb_testkit_dup (reply, "refresh_token", S_STR_MAX);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    free (people->alice);
    people->alice = access;

    reply = umb_testkit_call (test->client, "auth.invitations.create", people->alice, "workspace",
                              "team-alpha", "username", "carol", "role", "viewer", NULL);
    char *invitation = umb_testkit_dup (reply, "id", S_STR_MAX);
    umb_testkit_expect (&reply, 201, NULL, NULL);
    umb_client_set_attempts (test->client, 1);
    for (int step = 1; step <= 2; step++) {
        umb_store_fail_after (test->store, step);
        reply = umb_testkit_call (test->client, "auth.invitations.accept", people->carol,
                                  "invitation", invitation, NULL);
        assert (umb_reply_retryable (reply));
        umb_testkit_expect (&reply, 500, "internal", "nothing was changed");
        reply = umb_testkit_call (test->client, "auth.workspaces.get", people->carol, "workspace",
                                  "team-alpha", NULL);
        umb_testkit_expect (&reply, 404, NULL, NULL);
        reply = umb_testkit_call (test->client, "auth.invitations.mine", people->carol, "state",
                                  "pending", NULL);
        assert (s_items (reply) == 1);
        umb_testkit_expect (&reply, 200, NULL, NULL);
        reply = umb_testkit_call (test->client, "auth.members.list", people->alice, "workspace",
                                  "team-alpha", NULL);
        assert (s_items (reply) == 2);
        umb_testkit_expect (&reply, 200, NULL, NULL);
    }
    //  A failed registration leaves no user
    umb_store_fail_after (test->store, 1);
    reply = umb_testkit_call (test->client, "auth.users.register", NULL, "username", "erin",
                              "password", "erin-password", NULL);
    umb_testkit_expect (&reply, 500, NULL, NULL);
    umb_client_set_attempts (test->client, 3);
    reply = umb_testkit_call (test->client, "auth.users.get", people->alice, "user", "erin", NULL);
    umb_testkit_expect (&reply, 404, NULL, NULL);

    reply = umb_testkit_call (test->client, "auth.invitations.accept", people->carol, "invitation",
                              invitation, NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.workspaces.get", people->carol, "workspace",
                              "team-alpha", NULL);
    assert (streq (s_str (reply, "role"), "viewer"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.members.remove", people->carol, "workspace",
                              "team-alpha", "user", "me", NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.workspaces.get", people->carol, "workspace",
                              "team-alpha", NULL);
    umb_testkit_expect (&reply, 404, NULL, NULL);
    free (invitation);

    //  Refresh-token reuse: the second use ends the session for everyone
    char *carol_refresh;
    free (people->carol);
    people->carol = s_access (test, "carol", "carol-password", &carol_refresh);
    reply = umb_testkit_call (test->client, "auth.tokens.refresh", NULL, "refresh_token",
                              carol_refresh, NULL);
    char *carol_access = umb_testkit_dup (reply, "access_token", S_STR_MAX);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.tokens.refresh", NULL, "refresh_token",
                              carol_refresh, NULL);
    umb_testkit_expect (&reply, 401, "refresh_reused", "session is revoked");
    reply = umb_testkit_call (test->client, "auth.users.get", carol_access, "user", "me", NULL);
    umb_testkit_expect (&reply, 401, NULL, "session revoked");
    reply = umb_testkit_call (test->client, "auth.users.get", people->carol, "user", "me", NULL);
    umb_testkit_expect (&reply, 401, NULL, "session revoked");
    free (carol_access);
    free (carol_refresh);

    //  The platform administrator made from the config
    people->root = s_access (test, "root", "root-password-1", NULL);
    reply = umb_testkit_call (test->client, "auth.users.get", people->root, "user", "me", NULL);
    assert (s_bool (reply, "is_admin"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.users.get", people->root, "user", "alice", NULL);
    assert (streq (s_str (reply, "email"), "someone@example.org"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.users.disable", people->alice, "user", "bob",
                              NULL);
    umb_testkit_expect (&reply, 403, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.users.disable", people->root, "user", "root",
                              NULL);
    umb_testkit_expect (&reply, 409, "last_admin", NULL);
    reply = umb_testkit_call (test->client, "auth.users.disable", people->root, "user", "bob",
                              NULL);
    assert (s_bool (reply, "disabled"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.users.get", people->bob, "user", "me", NULL);
    umb_testkit_expect (&reply, 401, NULL, NULL);
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_bool (w, "all", true);
    umb_w_map_end (w);
    reply = umb_testkit_callw (test->client, "auth.tokens.revoke", people->alice, w);
    assert (umb_testkit_int (reply, "revoked") >= 1);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test->client, "auth.users.get", people->alice, "user", "me", NULL);
    umb_testkit_expect (&reply, 401, NULL, "session revoked");
    reply = umb_testkit_call (test->client, "auth.tokens.refresh", NULL, "refresh_token", refresh,
                              NULL);
    umb_testkit_expect (&reply, 401, NULL, "session revoked");
    free (refresh);
}

//  ---------------------------------------------------------------- entry

static void
s_people_free (s_people_t *people)
{
    free (people->alice_id);
    free (people->bob_id);
    free (people->carol_id);
    free (people->alice);
    free (people->alice_refresh);
    free (people->bob);
    free (people->carol);
    free (people->root);
}

void
umb_auth_test (bool verbose)
{
    umb_auth_rules_test (verbose);
    umb_auth_store_test (verbose);
    umb_auth_hasher_test (verbose);
    if (verbose)
        printf (" * umb_auth: ");
    int64_t started = zclock_mono ();
    s_test_t test = { .verbose = verbose };

    //  A platform with an administrator from the config
    static const char *const settings [] = {
        "auth.login_max_failures", "2",
        "admin.username", "root",
        "admin.password", "root-password-1",
        NULL
    };
    s_runtime_start (&test, settings);
    s_actor_start (&test, umb_auth_actor);
    assert (*test.endpoint);
    s_people_t people = { 0 };
    s_test_users (&test, &people);
    s_test_workspaces (&test, &people);

    //  The same state, a new actor: users, sessions and the signing key survive
    umb_reply_t *reply = umb_client_call (test.client, "auth.jwks", NULL, NULL, 0, S_TIMEOUT, NULL);
    char *kid = strdup (umb_msg_str (umb_msg_at (umb_msg_array (umb_reply_body (reply), "keys", 10,
                                                                true), 0), "kid", 100, true));
    umb_reply_destroy (&reply);
    s_actor_stop (&test);
    s_actor_start (&test, s_fault_actor);
    reply = umb_client_call (test.client, "auth.jwks", NULL, NULL, 0, S_TIMEOUT, NULL);
    assert (streq (umb_msg_str (umb_msg_at (umb_msg_array (umb_reply_body (reply), "keys", 10, true),
                                            0), "kid", 100, true), kid));
    umb_reply_destroy (&reply);
    free (kid);
    s_test_after_restart (&test, &people);
    s_actor_stop (&test);
    s_runtime_stop (&test);
    s_people_free (&people);

    //  A fresh platform without configured administrator: one is made, its
    //  password printed once, and never again
    s_runtime_start (&test, NULL);
    char *printed = s_start_captured (&test, umb_auth_actor);
    assert (*test.endpoint);
    const char *prefix = "umbra: first admin 'admin' created with password: ";
    char *line = strstr (printed, prefix);
    assert (line);
    char password [25];
    memcpy (password, line + strlen (prefix), 24);
    password [24] = 0;
    assert (line [strlen (prefix) + 24] == '\n');
    char *admin = s_access (&test, "admin", password, NULL);
    reply = umb_testkit_call (test.client, "auth.users.get", admin, "user", "me", NULL);
    assert (s_bool (reply, "is_admin"));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    free (admin);
    free (printed);
    s_actor_stop (&test);
    printed = s_start_captured (&test, umb_auth_actor);
    assert (*test.endpoint && !strstr (printed, "first admin"));
    free (printed);
    s_actor_stop (&test);

    //  A configured administrator whose password breaks the rules stops the start
    char *error = NULL;
    umb_config_t *config = umb_runtime_config (test.runtime);
    assert (umb_config_set (config, "admin.username", "boss", &error) == 0);
    assert (umb_config_set (config, "admin.password", "weak-pw", &error) == 0);
    s_actor_start (&test, umb_auth_actor);
    assert (streq (test.endpoint, ""));
    zstr_send (test.actor, "REASON");
    char *reason = zstr_recv (test.actor);
    assert (reason && strstr (reason, "admin.password does not satisfy the password rules"));
    assert (!strstr (reason, "weak-pw"));
    zstr_free (&reason);
    s_actor_stop (&test);
    s_runtime_stop (&test);

    if (verbose)
        printf ("OK (%.1f s)\n", (double) (zclock_mono () - started) / 1000);
}

//  ---------------------------------------------------------------- the client other services use

//  A service guarded by the auth client, as certs is.
typedef struct {
    umb_auth_client_t *auth;
    umb_service_t     *service;
} s_guarded_t;

static int
s_guarded_echo (void *state, umb_req_t *req)
{
    const umb_principal_t *principal = umb_req_principal (req);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "subject", principal->subject);
    umb_w_kv_str (w, "username", principal->username);
    umb_w_kv_str (w, "workspace", umb_req_workspace (req));
    umb_w_map_end (w);
    return 200;
}

//  Sets the cache time when "ms" is given; tells what waits on auth.
static int
s_guarded_state (void *state, umb_req_t *req)
{
    s_guarded_t *self = state;
    int64_t ms = umb_msg_int (umb_req_body (req), "ms", 0, 3600000, -1, false);
    if (ms >= 0)
        umb_auth_client_set_cache_ms (self->auth, ms);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_int (w, "calls", (int64_t) umb_auth_client_calls (self->auth));
    umb_w_kv_int (w, "waiting", (int64_t) umb_auth_client_waiting (self->auth));
    umb_w_kv_int (w, "pending", (int64_t) umb_service_pending (self->service));
    umb_w_map_end (w);
    return 200;
}

static const umb_route_t s_guarded_routes [] = {
    { "t.whoami", s_guarded_echo,  UMB_ACCESS_USER,   NULL },
    { "t.manage", s_guarded_echo,  UMB_ACCESS_USER,   "members.manage" },
    { "t.read",   s_guarded_echo,  UMB_ACCESS_USER,   "workspace.read" },
    { "t.odd",    s_guarded_echo,  UMB_ACCESS_USER,   "no.such.action" },
    { "t.state",  s_guarded_state, UMB_ACCESS_PUBLIC, NULL },
    { NULL }
};

static void
s_guarded_actor (zsock_t *pipe, void *args)
{
    umb_runtime_t *runtime = args;
    s_guarded_t self = { 0 };
    zcert_t *identity = umb_runtime_identity (runtime, "certs");
    assert (identity);
    self.auth = umb_auth_client_new (runtime, identity);
    assert (self.auth);
    self.service = umb_service_new (&(umb_service_config_t) {
        .name = "guarded", .endpoint = "tcp://127.0.0.1:*", .cert = identity,
        .zap = umb_runtime_zap (runtime), .routes = s_guarded_routes, .state = &self,
        .hook_state = self.auth, .authenticate_async = umb_auth_client_authenticate,
        .authorize_async = umb_auth_client_authorize, .auth_cancel = umb_auth_client_cancel,
        .log = umb_runtime_log (runtime) });
    assert (self.service);
    umb_auth_client_attach (self.auth, self.service);
    zsock_signal (pipe, 0);
    umb_service_run (self.service, pipe);
    umb_auth_client_destroy (&self.auth);
    umb_service_destroy (&self.service);
    zcert_destroy (&identity);
}

typedef struct {
    umb_runtime_t *runtime;
    const char    *endpoint;
} s_slow_args_t;

//  An auth that answers only when the test says so: it tells the test the
//  operation of every request it holds ("auth.introspect"), and "RELEASE"
//  answers all it holds: every token is a user's, every action allowed.
static void
s_slow_auth_actor (zsock_t *pipe, void *args)
{
    umb_runtime_t *runtime = ((s_slow_args_t *) args)->runtime;
    zcert_t *identity = umb_runtime_identity (runtime, "auth");
    assert (identity);
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zcert_apply (identity, router);
    zsock_set_curve_server (router, 1);
    zsock_set_zap_domain (router, UMB_ZAP_DOMAIN);
    zsock_set_linger (router, 0);
    assert (zsock_bind (router, "%s", ((s_slow_args_t *) args)->endpoint) >= 0);
    zlistx_t *held = zlistx_new ();         //  zmsg_t *: [routing][id][op]
    zlistx_set_destructor (held, (zlistx_destructor_fn *) zmsg_destroy);
    umb_w_t *header = umb_w_new ();
    umb_w_t *body = umb_w_new ();
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    zsock_signal (pipe, 0);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == router) {
            zmsg_t *msg = zmsg_recv (router);
            assert (msg && zmsg_size (msg) == 3);
            zframe_t *routing = zmsg_pop (msg);
            zframe_t *frame = zmsg_first (msg);
            char *error = NULL;
            umb_envelope_t *envelope = umb_envelope_decode (zframe_data (frame), zframe_size (frame),
                                                            false, &error, NULL);
            assert (envelope && !error);
            zmsg_t *request = zmsg_new ();
            zmsg_append (request, &routing);
            zmsg_addstr (request, umb_envelope_id (envelope));
            zmsg_addstr (request, umb_envelope_op (envelope));
            zlistx_add_end (held, request);
            zstr_send (pipe, umb_envelope_op (envelope));
            umb_envelope_destroy (&envelope);
            zmsg_destroy (&msg);
            continue;
        }
        char *command = which == pipe ? zstr_recv (pipe) : NULL;
        if (!command || streq (command, "$TERM")) {
            zstr_free (&command);
            break;
        }
        if (streq (command, "ENDPOINT"))
            zstr_send (pipe, zsock_endpoint (router));
        else
        if (streq (command, "RELEASE")) {
            for (zmsg_t *request = zlistx_first (held); request; request = zlistx_next (held)) {
                zframe_t *routing = zmsg_first (request);
                char *id = zframe_strdup (zmsg_next (request));
                char *op = zframe_strdup (zmsg_next (request));
                umb_w_reset (header);
                umb_envelope_write_reply (header, id, 200, false, NULL, NULL);
                umb_w_reset (body);
                umb_w_map_begin (body);
                if (streq (op, "auth.introspect")) {
                    umb_w_kv_bool (body, "active", true);
                    umb_w_kv_str (body, "subject", "usr_slow");
                    umb_w_kv_str (body, "username", "slow");
                }
                else {
                    umb_w_kv_bool (body, "allowed", true);
                    umb_w_kv_str (body, "workspace_id", "wsp_slow");
                }
                umb_w_map_end (body);
                size_t header_size, body_size;
                const void *header_data = umb_w_data (header, &header_size);
                const void *body_data = umb_w_data (body, &body_size);
                void *socket = zsock_resolve (router);
                zmq_send (socket, zframe_data (routing), zframe_size (routing), ZMQ_SNDMORE);
                zmq_send (socket, header_data, header_size, ZMQ_SNDMORE);
                zmq_send (socket, body_data, body_size, 0);
                free (id);
                free (op);
            }
            zlistx_purge (held);
        }
        zstr_free (&command);
    }
    zpoller_destroy (&poller);
    zlistx_destroy (&held);
    umb_w_destroy (&header);
    umb_w_destroy (&body);
    zsock_destroy (&router);
    zcert_destroy (&identity);
}

//  The next operation the slow auth holds.
static void
s_slow_expect (zactor_t *slow, const char *op)
{
    zsock_set_rcvtimeo (slow, S_TIMEOUT);
    char *held = zstr_recv (slow);
    if (!held || !streq (held, op))
        fprintf (stderr, "slow auth: expected %s, holds %s\n", op, held ? held : "nothing");
    assert (held && streq (held, op));
    zstr_free (&held);
}

//  Nothing more reached the slow auth.
static void
s_slow_idle (zactor_t *slow)
{
    assert (!(zsock_events (slow) & ZMQ_POLLIN));
}

//  Sends a request without waiting for its answer.
static void
s_raw_send (zsock_t *dealer, const char *id, const char *op, const char *token,
            const char *workspace, int64_t deadline_ms)
{
    umb_w_t *header = umb_w_new ();
    umb_envelope_write_request (header, id, op, token, deadline_ms);
    umb_w_t *body = umb_w_new ();
    umb_w_map_begin (body);
    if (workspace)
        umb_w_kv_str (body, "workspace", workspace);
    umb_w_map_end (body);
    size_t header_size, body_size;
    const void *header_data = umb_w_data (header, &header_size);
    const void *body_data = umb_w_data (body, &body_size);
    assert (zmq_send (zsock_resolve (dealer), header_data, header_size, ZMQ_SNDMORE) != -1);
    assert (zmq_send (zsock_resolve (dealer), body_data, body_size, 0) != -1);
    umb_w_destroy (&header);
    umb_w_destroy (&body);
}

//  Receives an answer: asserts its id, status and retryable flag, and the
//  "workspace" of its body when given.
static void
s_raw_expect (zsock_t *dealer, const char *id, int status, bool retryable, const char *workspace)
{
    zsock_set_rcvtimeo (dealer, S_TIMEOUT);
    zmsg_t *msg = zmsg_recv (dealer);
    assert (msg && zmsg_size (msg) == 2);
    zframe_t *frame = zmsg_first (msg);
    char *error = NULL;
    umb_envelope_t *envelope = umb_envelope_decode (zframe_data (frame), zframe_size (frame),
                                                    true, &error, NULL);
    assert (envelope && !error);
    if (umb_envelope_status (envelope) != status)
        fprintf (stderr, "%s: expected %d, got %d %s\n", id, status, umb_envelope_status (envelope),
                 umb_envelope_error (envelope) ? umb_envelope_error (envelope) : "");
    assert (streq (umb_envelope_id (envelope), id));
    assert (umb_envelope_status (envelope) == status);
    assert (umb_envelope_retryable (envelope) == retryable);
    if (workspace) {
        frame = zmsg_next (msg);
        umb_msg_t *body = umb_msg_decode (zframe_data (frame), zframe_size (frame), &error);
        assert (body && !error && streq (umb_msg_str (body, "workspace", 64, true), workspace));
        umb_msg_destroy (&body);
    }
    umb_envelope_destroy (&envelope);
    zmsg_destroy (&msg);
}

//  Calls t.state (setting the cache time when ms >= 0) and checks what
//  waits on auth: calls in flight, requests waiting, requests parked.
static void
s_guarded_state_expect (umb_client_t *client, int64_t ms, int64_t calls, int64_t waiting,
                        int64_t pending)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    if (ms >= 0)
        umb_w_kv_int (w, "ms", ms);
    umb_w_map_end (w);
    umb_reply_t *reply = umb_testkit_callw (client, "t.state", NULL, w);
    assert (umb_reply_status (reply) == 200);
    if (calls >= 0)
        assert (umb_testkit_int (reply, "calls") == calls);
    if (waiting >= 0)
        assert (umb_testkit_int (reply, "waiting") == waiting);
    if (pending >= 0)
        assert (umb_testkit_int (reply, "pending") == pending);
    umb_reply_destroy (&reply);
}

static zactor_t *
s_guarded_start (s_test_t *test, umb_client_t **client_p, zsock_t **dealer_p)
{
    zactor_t *guarded = zactor_new (s_guarded_actor, test->runtime);
    assert (guarded);
    zstr_send (guarded, "ENDPOINT");
    char *endpoint = zstr_recv (guarded);
    assert (endpoint && *endpoint);
    char *key = umb_runtime_public_key (test->runtime, "certs");
    assert (key);
    *client_p = umb_client_new (endpoint, key, test->gateway);
    assert (*client_p);
    umb_client_set_attempts (*client_p, 1);
    if (dealer_p) {
        *dealer_p = zsock_new (ZMQ_DEALER);
        assert (*dealer_p);
        zcert_apply (test->gateway, *dealer_p);
        zsock_set_curve_serverkey (*dealer_p, key);
        zsock_set_linger (*dealer_p, 0);
        assert (zsock_connect (*dealer_p, "%s", endpoint) == 0);
    }
    zstr_free (&key);
    zstr_free (&endpoint);
    return guarded;
}

//  A loopback TCP endpoint nobody listens on (yet).
static char *
s_free_endpoint (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = 0 };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t size = sizeof (address);
    assert (bind (fd, (struct sockaddr *) &address, sizeof (address)) == 0);
    assert (getsockname (fd, (struct sockaddr *) &address, &size) == 0);
    close (fd);
    return zsys_sprintf ("tcp://127.0.0.1:%d", ntohs (address.sin_port));
}

static void
s_ping (umb_client_t *client)
{
    umb_reply_t *reply = umb_testkit_call (client, "sys.ping", NULL, NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
}

void
umb_auth_client_test (bool verbose)
{
    if (verbose)
        printf (" * umb_auth_client: ");
    s_test_t test = { .verbose = verbose };
    static const char *const settings [] = {
        "admin.username", "root", "admin.password", "root-password-1", NULL
    };
    s_runtime_start (&test, settings);
    s_actor_start (&test, umb_auth_actor);
    assert (*test.endpoint);
    char *error = NULL;
    umb_config_t *config = umb_runtime_config (test.runtime);
    assert (umb_config_set (config, "auth.endpoint", test.endpoint, &error) == 0);
    assert (umb_config_set (config, "mesh.timeout_ms", "500", &error) == 0);
    free (s_register (&test, "dora", "dora-password"));
    free (s_register (&test, "eve", "eve-password1"));
    char *dora = s_access (&test, "dora", "dora-password", NULL);
    char *eve = s_access (&test, "eve", "eve-password1", NULL);
    umb_reply_t *reply = umb_testkit_call (test.client, "auth.workspaces.create", dora, "name",
                                           "labs", NULL);
    char *labs = umb_testkit_dup (reply, "id", S_STR_MAX);
    umb_testkit_expect (&reply, 201, NULL, NULL);

    //  A service guarded by the client, against the real auth
    umb_client_t *client = NULL;
    zactor_t *guarded = s_guarded_start (&test, &client, NULL);
    s_guarded_state_expect (client, 0, 0, 0, 0);

    //  A valid token names its subject; a forged one is refused here, unasked
    reply = umb_testkit_call (client, "t.whoami", dora, NULL);
    assert (streq (umb_msg_str (umb_reply_body (reply), "username", 64, true), "dora"));
    assert (strncmp (umb_msg_str (umb_reply_body (reply), "subject", 64, true), "usr_", 4) == 0);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    char *forged = strdup (dora);
    forged [strlen (forged) - 3] ^= 1;
    reply = umb_testkit_call (client, "t.whoami", forged, NULL);
    assert (strstr (umb_reply_error (reply), "signature") || strstr (umb_reply_error (reply), "malformed"));
    umb_testkit_expect (&reply, 401, NULL, NULL);
    free (forged);
    reply = umb_testkit_call (client, "t.whoami", "umb_0000000000000000_nothing", NULL);
    umb_testkit_expect (&reply, 401, NULL, NULL);

    //  Authorization is auth's decision, with its reasons
    reply = umb_testkit_call (client, "t.manage", dora, "workspace", "labs", NULL);
    assert (streq (umb_msg_str (umb_reply_body (reply), "workspace", 64, true), labs));
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (client, "t.read", eve, "workspace", "labs", NULL);
    umb_testkit_expect (&reply, 404, NULL, NULL);
    reply = umb_testkit_call (client, "t.odd", dora, "workspace", "labs", NULL);
    umb_testkit_expect (&reply, 403, NULL, NULL);

    //  A revoked session is refused at once without caching, and within the
    //  cache time with it: the cached answer is served until then
    s_guarded_state_expect (client, 60000, 0, 0, 0);
    reply = umb_testkit_call (client, "t.whoami", eve, NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test.client, "auth.tokens.revoke", eve, NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (client, "t.whoami", eve, NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    s_guarded_state_expect (client, 0, 0, 0, 0);
    reply = umb_testkit_call (client, "t.whoami", eve, NULL);
    umb_testkit_expect (&reply, 401, NULL, NULL);

    //  Auth gone: fail closed with a retryable 503, never allow
    s_actor_stop (&test);
    reply = umb_testkit_call (client, "t.whoami", dora, NULL);
    assert (umb_reply_retryable (reply));
    umb_testkit_expect (&reply, 503, "unavailable", "auth");
    reply = umb_testkit_call (client, "t.read", dora, "workspace", "labs", NULL);
    assert (umb_reply_retryable (reply));
    umb_testkit_expect (&reply, 503, "unavailable", "auth");
    s_guarded_state_expect (client, -1, 0, 0, 0);
    umb_client_destroy (&client);
    zactor_destroy (&guarded);

    //  Against an auth that answers only when told: the service goes on
    //  serving while its requests wait
    s_slow_args_t slow_args = { test.runtime, "tcp://127.0.0.1:*" };
    zactor_t *slow = zactor_new (s_slow_auth_actor, &slow_args);
    assert (slow);
    zstr_send (slow, "ENDPOINT");
    char *slow_endpoint = zstr_recv (slow);
    assert (slow_endpoint);
    assert (umb_config_set (config, "auth.endpoint", slow_endpoint, &error) == 0);
    assert (umb_config_set (config, "mesh.timeout_ms", "1000", &error) == 0);
    zsock_t *dealer = NULL;
    guarded = s_guarded_start (&test, &client, &dealer);

    s_raw_send (dealer, "r1", "t.read", "umb_slow_key", "w1", 8000);
    s_slow_expect (slow, "auth.introspect");
    s_ping (client);
    s_guarded_state_expect (client, -1, 1, 1, 1);
    //  A second request with the same question shares the call
    s_raw_send (dealer, "r2", "t.read", "umb_slow_key", "w1", 8000);
    s_ping (client);
    s_guarded_state_expect (client, -1, 1, 2, 2);
    s_slow_idle (slow);
    zstr_send (slow, "RELEASE");
    //  Both go on to authorization, asked once, and wait again
    s_slow_expect (slow, "auth.authorize");
    s_ping (client);
    s_guarded_state_expect (client, -1, 1, 2, 2);
    zstr_send (slow, "RELEASE");
    s_raw_expect (dealer, "r1", 200, false, "wsp_slow");
    s_raw_expect (dealer, "r2", 200, false, "wsp_slow");
    s_guarded_state_expect (client, -1, 0, 0, 0);
    //  Now remembered: answered with no call at all
    s_raw_send (dealer, "r3", "t.read", "umb_slow_key", "w1", 8000);
    s_raw_expect (dealer, "r3", 200, false, "wsp_slow");
    s_slow_idle (slow);

    //  A parked request whose caller's deadline passes gets its 504; the
    //  call goes on and auth's late answer is only remembered
    int64_t started = zclock_mono ();
    s_raw_send (dealer, "r4", "t.read", "umb_late_key", "w1", 200);
    s_slow_expect (slow, "auth.introspect");
    s_raw_expect (dealer, "r4", 504, true, NULL);
    assert (zclock_mono () - started < 1000);
    s_guarded_state_expect (client, -1, 1, 0, 0);
    zstr_send (slow, "RELEASE");
    s_guarded_state_expect (client, -1, -1, 0, 0);

    //  Auth that does not answer in time: a retryable 503, never a hang
    started = zclock_mono ();
    reply = umb_testkit_call (client, "t.whoami", "umb_silent_key", NULL);
    assert (umb_reply_retryable (reply));
    umb_testkit_expect (&reply, 503, "unavailable", "did not answer");
    assert (zclock_mono () - started < 3000);
    s_slow_expect (slow, "auth.introspect");
    s_guarded_state_expect (client, -1, 0, 0, 0);
    zstr_send (slow, "RELEASE");

    //  A service that stops answers what still waits on auth
    s_raw_send (dealer, "r5", "t.whoami", "umb_stop_key", NULL, 8000);
    s_slow_expect (slow, "auth.introspect");
    zactor_destroy (&guarded);
    s_raw_expect (dealer, "r5", 503, true, NULL);
    umb_client_destroy (&client);
    zsock_destroy (&dealer);

    //  Auth down: no connection within the time, a retryable 503
    zactor_destroy (&slow);
    zstr_free (&slow_endpoint);
    slow_endpoint = s_free_endpoint ();
    assert (umb_config_set (config, "auth.endpoint", slow_endpoint, &error) == 0);
    guarded = s_guarded_start (&test, &client, &dealer);
    reply = umb_testkit_call (client, "t.whoami", "umb_down_key", NULL);
    assert (umb_reply_retryable (reply));
    umb_testkit_expect (&reply, 503, "unavailable", "no connection");
    //  Auth coming up while a request waits for it (a service starting
    //  before auth): the call goes out once connected
    s_raw_send (dealer, "r6", "t.whoami", "umb_up_key", NULL, 8000);
    slow_args.endpoint = slow_endpoint;
    slow = zactor_new (s_slow_auth_actor, &slow_args);
    s_slow_expect (slow, "auth.introspect");
    zstr_send (slow, "RELEASE");
    s_raw_expect (dealer, "r6", 200, false, NULL);
    umb_client_destroy (&client);
    zsock_destroy (&dealer);
    zactor_destroy (&guarded);
    zactor_destroy (&slow);
    zstr_free (&slow_endpoint);

    free (dora);
    free (eve);
    free (labs);
    s_runtime_stop (&test);
    if (verbose)
        printf ("OK\n");
}
