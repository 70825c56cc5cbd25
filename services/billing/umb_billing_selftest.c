//  umb_billing_selftest - the billing service against the real auth service:
//  plans and their limits, credit, reservations and settlements, usage
//  records, statements, the ledger, and bad input
#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "umb_billing.h"
#include "umb_billing_plans.h"
#include "umb_billing_store.h"
#include "umb_auth.h"
#include "umb_testkit.h"

#define S_ROOT_PASSWORD "root-password-123"

typedef struct {
    char          *dir;
    umb_runtime_t *runtime;
    zactor_t      *auth, *billing;
    zcert_t       *identity;
    umb_client_t  *auth_client, *client;
    char          *root, *alice;
    char           workspace_id [64];
    int            null_fd;
} s_test_t;

static char *
s_token (s_test_t *test, const char *username, const char *password, bool create)
{
    umb_reply_t *reply;
    if (create) {
        reply = umb_testkit_call (test->auth_client, "auth.users.register", NULL, "username",
                                  username, "password", password, NULL);
        umb_testkit_expect (&reply, 201, NULL, NULL);
    }
    reply = umb_testkit_call (test->auth_client, "auth.tokens.create", NULL, "username", username,
                              "password", password, NULL);
    assert (umb_reply_status (reply) == 201);
    char *token = umb_testkit_dup (reply, "access_token", 8192);
    umb_reply_destroy (&reply);
    return token;
}

static char *
s_actor_endpoint (zactor_t *actor)
{
    zstr_send (actor, "ENDPOINT");
    char *endpoint = zstr_recv (actor);
    assert (endpoint && *endpoint);
    return endpoint;
}

//  A plans file of tiny limits, so each can be reached
static const char s_plans [] =
    "{\"default_plan\": \"tiny\", \"plans\": {"
    " \"tiny\": {\"computations\": 1, \"runs_per_month\": 2, \"concurrent_cvms\": 1,"
    "  \"vcpu_hours_per_month\": 3, \"members\": 2},"
    " \"big\": {\"computations\": null, \"runs_per_month\": null, \"concurrent_cvms\": null,"
    "  \"vcpu_hours_per_month\": null, \"members\": null}},"
    " \"prices\": {"
    "  \"none\": {\"vcpu_hour\": 20000, \"memory_gib_hour\": 5000, \"run\": 0},"
    "  \"sev-snp\": {\"vcpu_hour\": 40000, \"memory_gib_hour\": 8000, \"run\": 10000},"
    "  \"tdx\": {\"vcpu_hour\": 40000, \"memory_gib_hour\": 8000, \"run\": 10000}}}";

static void
s_start (s_test_t *test)
{
    char dir [] = "/tmp/umb-billing-test-XXXXXX";
    assert (mkdtemp (dir));
    test->dir = strdup (dir);
    char *plans = zsys_sprintf ("%s/plans.json", dir);
    FILE *file = fopen (plans, "w");
    assert (file && fputs (s_plans, file) >= 0 && fclose (file) == 0);
    umb_config_t *config = umb_config_new ();
    char *error = NULL;
    const char *settings [] = {
        "auth.endpoint", "tcp://127.0.0.1:*", "auth.pub_endpoint", "tcp://127.0.0.1:*",
        "auth.pwhash", "interactive", "log.level", "error",
        "admin.username", "root", "admin.password", S_ROOT_PASSWORD,
        "billing.endpoint", "tcp://127.0.0.1:*", "billing.pub_endpoint", "tcp://127.0.0.1:*",
        "billing.plans", plans, "billing.reservation_grace_s", "0", NULL
    };
    assert (umb_config_set (config, "state_dir", dir, &error) == 0);
    for (const char **setting = settings; *setting; setting += 2)
        assert (umb_config_set (config, setting [0], setting [1], &error) == 0);
    test->runtime = umb_runtime_new (&config, &error);
    assert (test->runtime);
    free (plans);
    test->null_fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
    umb_log_set_fd (umb_runtime_log (test->runtime), test->null_fd);
    test->identity = umb_runtime_identity (test->runtime, "computations");
    test->auth = zactor_new (umb_auth_actor, test->runtime);
    char *endpoint = s_actor_endpoint (test->auth);
    assert (umb_config_set (umb_runtime_config (test->runtime), "auth.endpoint", endpoint,
                            &error) == 0);
    char *key = umb_runtime_public_key (test->runtime, "auth");
    test->auth_client = umb_client_new (endpoint, key, test->identity);
    zstr_free (&key);
    zstr_free (&endpoint);
    test->billing = zactor_new (umb_billing_actor, test->runtime);
    endpoint = s_actor_endpoint (test->billing);
    assert (umb_config_set (umb_runtime_config (test->runtime), "billing.endpoint", endpoint,
                            &error) == 0);
    key = umb_runtime_public_key (test->runtime, "billing");
    test->client = umb_client_new (endpoint, key, test->identity);
    zstr_free (&key);
    zstr_free (&endpoint);
    test->root = s_token (test, "root", S_ROOT_PASSWORD, false);
    test->alice = s_token (test, "alice", "alice-password-1", true);
    umb_reply_t *reply = umb_testkit_call (test->auth_client, "auth.workspaces.create",
                                           test->alice, "name", "lab", NULL);
    assert (umb_reply_status (reply) == 201);
    char *id = umb_testkit_dup (reply, "id", 63);
    snprintf (test->workspace_id, sizeof test->workspace_id, "%s", id);
    free (id);
    umb_reply_destroy (&reply);
}

static void
s_stop (s_test_t *test)
{
    umb_client_destroy (&test->client);
    umb_client_destroy (&test->auth_client);
    zactor_destroy (&test->billing);
    zactor_destroy (&test->auth);
    zcert_destroy (&test->identity);
    umb_runtime_destroy (&test->runtime);
    close (test->null_fd);
    umb_testkit_remove_dir (test->dir);
    free (test->dir);
    zstr_free (&test->root);
    zstr_free (&test->alice);
}

//  ---------------------------------------------------------------- calls

static umb_reply_t *
s_check (s_test_t *test, const char *workspace_id, const char *action, int64_t in_use)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace_id", workspace_id);
    umb_w_kv_str (w, "action", action);
    if (in_use >= 0)
        umb_w_kv_int (w, "in_use", in_use);
    umb_w_map_end (w);
    return umb_testkit_callw (test->client, "billing.check", NULL, w);
}

static umb_reply_t *
s_reserve (s_test_t *test, const char *id, int64_t vcpus, int64_t seconds, int64_t expires)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "reservation", id);
    umb_w_kv_str (w, "workspace_id", test->workspace_id);
    umb_w_kv_str (w, "tee", "none");
    umb_w_kv_int (w, "vcpus", vcpus);
    umb_w_kv_int (w, "memory_mb", 2048);
    umb_w_kv_int (w, "seconds", seconds);
    if (expires)
        umb_w_kv_int (w, "expires_s", expires);
    umb_w_map_end (w);
    return umb_testkit_callw (test->client, "billing.reserve", NULL, w);
}

static umb_reply_t *
s_settle (s_test_t *test, const char *id, const char *outcome, int64_t seconds)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "reservation", id);
    umb_w_kv_str (w, "outcome", outcome);
    umb_w_kv_int (w, "seconds", seconds);
    umb_w_map_end (w);
    return umb_testkit_callw (test->client, "billing.settle", NULL, w);
}

static umb_reply_t *
s_credit (s_test_t *test, const char *token, const char *workspace, int64_t amount,
          const char *reference)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "workspace", workspace);
    umb_w_kv_int (w, "amount", amount);
    umb_w_kv_str (w, "reference", reference);
    umb_w_map_end (w);
    return umb_testkit_callw (test->client, "billing.credits.add", token, w);
}

//  The account's available and reserved balances
static void
s_balance (s_test_t *test, int64_t *available, int64_t *reserved)
{
    umb_reply_t *reply = umb_testkit_call (test->client, "billing.get", test->alice,
                                           "workspace", "lab", NULL);
    assert (umb_reply_status (reply) == 200);
    umb_msg_t *balance = umb_msg_map (umb_reply_body (reply), "balance", true);
    *available = umb_msg_int (balance, "available", INT64_MIN, INT64_MAX, 0, true);
    *reserved = umb_msg_int (balance, "reserved", INT64_MIN, INT64_MAX, 0, true);
    assert (!umb_msg_failed (balance));
    umb_reply_destroy (&reply);
}

static umb_reply_t *
s_usage (s_test_t *test, const char *id1, const char *id2, int64_t vcpus2)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_str (w, "records");
    umb_w_array_begin (w);
    const char *ids [] = { id1, id2 };
    for (size_t i = 0; i < 2; i++) {
        umb_w_map_begin (w);
        umb_w_kv_str (w, "id", ids [i]);
        umb_w_kv_str (w, "workspace_id", test->workspace_id);
        umb_w_kv_str (w, "kind", "cvm");
        umb_w_kv_str (w, "tee", "none");
        umb_w_kv_int (w, "vcpus", i ? vcpus2 : 1);
        umb_w_kv_int (w, "memory_mb", 1024);
        umb_w_kv_int (w, "seconds", 3600);
        umb_w_kv_int (w, "at", (int64_t) time (NULL));
        umb_w_map_end (w);
    }
    umb_w_array_end (w);
    umb_w_map_end (w);
    return umb_testkit_callw (test->client, "billing.usage.record", NULL, w);
}

static int64_t
s_entries (s_test_t *test)
{
    umb_reply_t *reply = umb_testkit_call (test->client, "billing.verify", test->root, NULL);
    assert (umb_reply_status (reply) == 200);
    umb_msg_t *body = umb_reply_body (reply);
    assert (umb_msg_bool (body, "ok", false, true));
    int64_t entries = umb_msg_int (body, "entries", 0, INT64_MAX, 0, true);
    umb_reply_destroy (&reply);
    return entries;
}

//  ---------------------------------------------------------------- the test

void
umb_billing_test (bool verbose)
{
    umb_billing_plans_test (verbose);
    umb_billing_store_test (verbose);
    printf (" * umb_billing: ");
    fflush (stdout);
    s_test_t test = { NULL };
    s_start (&test);
    const char *ws = test.workspace_id;
    umb_reply_t *reply;

    //  Plans, and a workspace on the default one with nothing
    reply = umb_testkit_call (test.client, "billing.plans.list", test.alice, NULL);
    assert (umb_reply_status (reply) == 200);
    assert (umb_msg_size (umb_msg_array (umb_reply_body (reply), "plans", 10, true)) == 2);
    umb_reply_destroy (&reply);
    int64_t available, reserved;
    s_balance (&test, &available, &reserved);
    assert (available == 0 && reserved == 0);
    reply = umb_testkit_call (test.client, "billing.get", NULL, "workspace", "lab", NULL);
    umb_testkit_expect (&reply, 401, NULL, NULL);

    //  Each gauge limit refuses what would pass it, naming it
    umb_testkit_expect ((reply = s_check (&test, ws, "computation.create", 0), &reply), 200,
                        NULL, NULL);
    reply = s_check (&test, ws, "computation.create", 1);
    umb_testkit_expect (&reply, 403, "limit_exceeded", "plan 'tiny' allows 1 computations "
                        "(limit 'computations'); the workspace has 1");
    reply = s_check (&test, ws, "member.add", 2);
    umb_testkit_expect (&reply, 403, "limit_exceeded", "(limit 'members')");
    reply = s_check (&test, ws, "cvm.create", 1);
    umb_testkit_expect (&reply, 403, "limit_exceeded", "(limit 'concurrent_cvms')");
    //  Without credit no CVM and no run
    reply = s_check (&test, ws, "cvm.create", 0);
    umb_testkit_expect (&reply, 402, "insufficient_credit", "available credit is 0");
    reply = s_check (&test, ws, "run.start", -1);
    umb_testkit_expect (&reply, 402, "insufficient_credit", NULL);
    //  Bad checks
    reply = s_check (&test, ws, "computation.create", -1);
    umb_testkit_expect (&reply, 422, NULL, "in_use: required");
    reply = s_check (&test, ws, "launch", 0);
    umb_testkit_expect (&reply, 422, NULL, "action: 'launch'");
    reply = s_check (&test, "lab", "member.add", 0);
    umb_testkit_expect (&reply, 422, NULL, "workspace_id");
    //  MESH operations are for services, with no token
    reply = umb_testkit_call (test.client, "billing.check", test.alice, "workspace_id", ws,
                              "action", "run.start", NULL);
    assert (umb_reply_status (reply) != 200);
    umb_reply_destroy (&reply);

    //  Credit: administrators only, once per reference, to known workspaces
    reply = s_credit (&test, test.alice, "lab", 1000, "pay-1");
    umb_testkit_expect (&reply, 403, NULL, "platform administrators");
    reply = s_credit (&test, test.root, "lab", 1000000, "pay-1");
    umb_testkit_expect (&reply, 201, NULL, NULL);
    reply = s_credit (&test, test.root, ws, 1000000, "pay-1");
    assert (umb_reply_status (reply) == 200);
    assert (umb_msg_bool (umb_reply_body (reply), "replayed", false, true));
    umb_reply_destroy (&reply);
    reply = s_credit (&test, test.root, "lab", 5, "pay-1");
    umb_testkit_expect (&reply, 409, "duplicate_reference", NULL);
    reply = s_credit (&test, test.root, "nowhere", 5, "pay-2");
    umb_testkit_expect (&reply, 404, NULL, "no workspace 'nowhere'");
    int64_t entries = s_entries (&test);
    reply = s_credit (&test, test.root, "lab", -5, "pay-3");
    umb_testkit_expect (&reply, 422, NULL, "amount");
    reply = s_credit (&test, test.root, "lab", 5, "=cmd()");
    umb_testkit_expect (&reply, 422, NULL, "reference");
    assert (s_entries (&test) == entries);
    s_balance (&test, &available, &reserved);
    assert (available == 1000000 && reserved == 0);

    //  A run: its maximum cost reserved, the actual cost settled, the rest back
    reply = s_reserve (&test, "run_a", 2, 3600, 0);
    assert (umb_reply_status (reply) == 201);
    assert (umb_testkit_int (reply, "amount") == 2 * 20000 + 2 * 5000);
    umb_reply_destroy (&reply);
    reply = s_reserve (&test, "run_a", 2, 3600, 0);
    assert (umb_reply_status (reply) == 200);
    assert (umb_msg_bool (umb_reply_body (reply), "replayed", false, true));
    umb_reply_destroy (&reply);
    s_balance (&test, &available, &reserved);
    assert (available == 950000 && reserved == 50000);
    //  The month allows 2 runs: the open one counts, and a third is refused
    reply = s_reserve (&test, "run_b", 1, 600, 0);
    umb_testkit_expect (&reply, 201, NULL, NULL);
    reply = s_reserve (&test, "run_c", 1, 60, 0);
    umb_testkit_expect (&reply, 403, "limit_exceeded", "(limit 'runs_per_month')");
    reply = s_settle (&test, "run_a", "completed", 1800);
    assert (umb_reply_status (reply) == 200);
    assert (umb_testkit_int (reply, "charged") == 25000);
    assert (umb_testkit_int (reply, "released") == 25000);
    umb_reply_destroy (&reply);
    reply = s_settle (&test, "run_a", "completed", 1800);
    assert (umb_reply_status (reply) == 200 && umb_testkit_int (reply, "charged") == 25000);
    assert (umb_msg_bool (umb_reply_body (reply), "replayed", false, true));
    umb_reply_destroy (&reply);
    //  A failed run releases all it held, and does not count
    reply = s_settle (&test, "run_b", "failed", 500);
    assert (umb_reply_status (reply) == 200 && umb_testkit_int (reply, "charged") == 0);
    umb_reply_destroy (&reply);
    s_balance (&test, &available, &reserved);
    assert (available == 975000 && reserved == 0);
    reply = s_settle (&test, "run_z", "completed", 1);
    umb_testkit_expect (&reply, 404, NULL, NULL);
    reply = s_settle (&test, "run_a", "won", 1);
    umb_testkit_expect (&reply, 422, NULL, "outcome");
    //  vCPU-hours: 3 a month; once CVMs used them (1 + 2 vCPUs for an hour,
    //  70000 µcr), no run and no CVM
    reply = s_usage (&test, "cvm_0:1", "cvm_0:2", 2);
    assert (umb_reply_status (reply) == 200 && umb_testkit_int (reply, "accepted") == 2);
    umb_reply_destroy (&reply);
    reply = s_reserve (&test, "run_d", 1, 60, 0);
    umb_testkit_expect (&reply, 403, "limit_exceeded", "(limit 'vcpu_hours_per_month'); the "
                        "workspace has used 3.00");
    reply = s_check (&test, ws, "cvm.create", 0);
    umb_testkit_expect (&reply, 403, "limit_exceeded", "(limit 'vcpu_hours_per_month')");
    //  More than the balance
    reply = umb_testkit_call (test.client, "billing.plan.set", test.root, "workspace", "lab",
                              "plan", "big", NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = s_reserve (&test, "run_e", 64, 2592000, 0);
    umb_testkit_expect (&reply, 402, "insufficient_credit", "the run may cost");
    reply = s_check (&test, ws, "computation.create", 1000);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    reply = umb_testkit_call (test.client, "billing.plan.set", test.root, "workspace", "lab",
                              "plan", "gold", NULL);
    umb_testkit_expect (&reply, 422, NULL, "'gold' is not one of tiny, big");
    reply = umb_testkit_call (test.client, "billing.plan.set", test.alice, "workspace", "lab",
                              "plan", "big", NULL);
    umb_testkit_expect (&reply, 403, NULL, NULL);

    //  Usage: charged once per record id; a bad batch writes nothing
    reply = s_usage (&test, "cvm_1:1", "cvm_1:1", 1);
    assert (umb_reply_status (reply) == 200);
    assert (umb_testkit_int (reply, "accepted") == 1 && umb_testkit_int (reply, "duplicates") == 1);
    umb_reply_destroy (&reply);
    reply = s_usage (&test, "cvm_1:1", "cvm_1:2", 1);
    assert (umb_testkit_int (reply, "accepted") == 1 && umb_testkit_int (reply, "duplicates") == 1);
    umb_reply_destroy (&reply);
    s_balance (&test, &available, &reserved);
    assert (available == 975000 - 70000 - 2 * (20000 + 5000));
    entries = s_entries (&test);
    reply = s_usage (&test, "cvm_2:1", "cvm_2:2", 0);
    umb_testkit_expect (&reply, 422, NULL, "records[1]");
    reply = umb_testkit_call (test.client, "billing.usage.record", NULL, NULL);
    umb_testkit_expect (&reply, 400, NULL, "records");
    assert (s_entries (&test) == entries);

    //  An unsettled reservation is released once it expires
    reply = s_reserve (&test, "run_f", 1, 60, 1);
    umb_testkit_expect (&reply, 201, NULL, NULL);
    int64_t deadline = zclock_mono () + UMB_TESTKIT_TIMEOUT;
    do {
        zclock_sleep (200);
        s_balance (&test, &available, &reserved);
    } while (reserved != 0 && zclock_mono () < deadline);
    assert (reserved == 0);
    reply = s_settle (&test, "run_f", "completed", 30);
    assert (umb_reply_status (reply) == 200 && umb_testkit_int (reply, "charged") == 0);
    umb_reply_destroy (&reply);

    //  The statement adds up to the balance, as JSON and CSV
    char month [8];
    umb_billing_month ((int64_t) time (NULL), month);
    reply = umb_testkit_call (test.client, "billing.statements.get", test.alice, "workspace",
                              "lab", "month", month, "format", "csv", NULL);
    assert (umb_reply_status (reply) == 200);
    assert (umb_testkit_int (reply, "opening") == 0);
    assert (umb_testkit_int (reply, "credits") == 1000000);
    assert (umb_testkit_int (reply, "closing") == available + reserved);
    assert (umb_testkit_int (reply, "charges") == 1000000 - available);
    char *csv = umb_testkit_dup (reply, "csv", 1 << 20);
    assert (strncmp (csv, "time,txn,kind,ref,available,reserved,charge\r\n", 45) == 0);
    assert (strstr (csv, ",credit," ) && strstr (csv, ",settle,run_a,25000,-50000,25000"));
    free (csv);
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test.client, "billing.statements.get", test.alice, "workspace",
                              "lab", "month", "2026-13", NULL);
    umb_testkit_expect (&reply, 422, NULL, "month");
    reply = umb_testkit_call (test.client, "billing.statements.list", test.alice, "workspace",
                              "lab", NULL);
    assert (umb_reply_status (reply) == 200);
    umb_msg_t *items = umb_msg_array (umb_reply_body (reply), "items", 100, true);
    assert (umb_msg_size (items) == 1);
    assert (umb_msg_int (umb_msg_at (items, 0), "closing", INT64_MIN, INT64_MAX, 0, true)
            == available + reserved);
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test.client, "billing.ledger.list", test.alice, "workspace", "lab",
                              NULL);
    assert (umb_reply_status (reply) == 200);
    assert (umb_msg_size (umb_msg_array (umb_reply_body (reply), "entries", 1000, true)) > 10);
    umb_reply_destroy (&reply);
    reply = umb_testkit_call (test.client, "billing.verify", test.alice, NULL);
    umb_testkit_expect (&reply, 403, NULL, NULL);

    //  Auth asks billing before a workspace gains a member: the plan allows 2,
    //  alice is one, and a pending invitation counts
    reply = umb_testkit_call (test.client, "billing.plan.set", test.root, "workspace", "lab",
                              "plan", "tiny", NULL);
    umb_testkit_expect (&reply, 200, NULL, NULL);
    char *bob = s_token (&test, "bob", "bob-password-12", true);
    char *carol = s_token (&test, "carol", "carol-password-1", true);
    reply = umb_testkit_call (test.auth_client, "auth.invitations.create", test.alice,
                              "workspace", "lab", "username", "bob", "role", "member", NULL);
    umb_testkit_expect (&reply, 201, NULL, NULL);
    reply = umb_testkit_call (test.auth_client, "auth.invitations.create", test.alice,
                              "workspace", "lab", "username", "carol", "role", "member", NULL);
    umb_testkit_expect (&reply, 403, "limit_exceeded", "(limit 'members'); the workspace has 2");
    zstr_free (&bob);
    zstr_free (&carol);
    s_entries (&test);
    s_stop (&test);
    printf ("OK\n");
}
