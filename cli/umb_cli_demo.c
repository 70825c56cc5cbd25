//  umb_cli_demo - `umbra demo`: one real computation end to end, told step by step
#include <assert.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <czmq.h>
#include <jansson.h>
#include <sodium.h>
#include "umb_cli_demo.h"
#include "umb_cli_platform.h"
#include "umb_cli_rest.h"
#include "umb_cli_keys.h"
#include "umb_cli_agent.h"
#include "umb_cli_audit.h"
#include "umb_cli_testkit.h"
#include "umb_agent_client.h"
#include "umb_sig.h"
#include "umb_hex.h"
#include "umb_program.h"

#define S_EXIT_OK       0
#define S_EXIT_FAILED   1
#define S_EXIT_USAGE    2

#define S_HANDOFF       "inproc://umbra-demo"   //  the platform's ready callback -> the demo
#define S_POLL_MS       100                     //  between two looks at a run
#define S_AGENT_MS      30000                   //  each request to the agent
#define S_PROVISION_MS  60000                   //  a process host's agent, up
#define S_BOOT_MS       300000                  //  a VM under TCG, booted
#define S_RUN_MS        120000                  //  the algorithm, done
#define S_FINISH_MS     30000                   //  the run Completed and its CVM gone


//  Settings the caller's environment may tune for the platform run here;
//  the others (state, endpoints, administrator) are the demo's own.
static const char *const s_tunables [] = {
    "UMBRA_LOG_LEVEL", "UMBRA_LOG_FORMAT", "UMBRA_BACKENDS_AGENT_PATH",
    "UMBRA_BACKENDS_IMAGE_DIR", "UMBRA_BACKENDS_NONE_ACCEL", "UMBRA_BACKENDS_BOOT_TIMEOUT_S", NULL
};

//  The algorithm: tests/integration/seed/linreg.py
static const char s_linreg [] =
    "#!/usr/bin/python3\n"
    "\"\"\"linreg - the seed scenario's algorithm: least-squares linear regression over\n"
    "every CSV dataset (columns x,y with a header), pure Python. Writes\n"
    "results/model.json: {\"slope\", \"intercept\", \"n\"}.\"\"\"\n"
    "import csv\n"
    "import json\n"
    "import os\n"
    "\n"
    "datasets = os.environ.get(\"UMBRA_DATASETS\", \"datasets\")\n"
    "results = os.environ.get(\"UMBRA_RESULTS\", \"results\")\n"
    "xs, ys = [], []\n"
    "for name in sorted(os.listdir(datasets)):\n"
    "    with open(os.path.join(datasets, name), newline=\"\") as f:\n"
    "        for row in csv.DictReader(f):\n"
    "            xs.append(float(row[\"x\"]))\n"
    "            ys.append(float(row[\"y\"]))\n"
    "n = len(xs)\n"
    "mean_x = sum(xs) / n\n"
    "mean_y = sum(ys) / n\n"
    "sxx = sum((x - mean_x) ** 2 for x in xs)\n"
    "sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))\n"
    "slope = sxy / sxx\n"
    "intercept = mean_y - slope * mean_x\n"
    "with open(os.path.join(results, \"model.json\"), \"w\") as f:\n"
    "    json.dump({\"slope\": slope, \"intercept\": intercept, \"n\": n}, f, sort_keys=True)\n"
    "    f.write(\"\\n\")\n"
    "print(\"fitted %d points: slope %.6f intercept %.6f\" % (n, slope, intercept))\n";

//  bob's and cy's data: tests/integration/seed/data1.csv and data2.csv
static const char s_north [] =
    "x,y\n1,3.1\n2,5.2\n3,6.8\n4,9.1\n5,11.0\n6,12.9\n7,15.2\n8,16.8\n";
static const char s_south [] =
    "x,y\n9,19.1\n10,21.2\n11,22.7\n12,25.1\n13,27.0\n14,28.8\n15,31.3\n";

enum { S_ADA, S_BOB, S_CY, S_DEE, S_PARTIES };

//  Who takes part: name, role for the story, key type
static const struct {
    const char *name;
    const char *roles;
    const char *key_type;
} s_cast [S_PARTIES] = {
    { "ada", "owner, algorithm provider", "ed25519" },
    { "bob", "data provider",             "ecdsa" },
    { "cy",  "data provider",             "ecdsa-p384" },
    { "dee", "result consumer",           "ed25519" }
};

//  The assets: file, content, provider, the asset's name in the computation
static const struct {
    const char *file;
    const char *text;
    int         provider;
    const char *asset;
    const char *role;               //  for the agent
} s_assets [] = {
    { "linreg.py", s_linreg, S_ADA, "algorithm", "algorithm" },
    { "north.csv", s_north,  S_BOB, "north.csv", "dataset" },
    { "south.csv", s_south,  S_CY,  "south.csv", "dataset" }
};
#define S_ASSETS 3

typedef struct {
    char            username [48];
    char           *password;       //  wiped
    char           *token;          //  their access token; wiped
    char           *id;
    umb_cli_rest_t *rest;           //  signed in as them
    char           *key_prefix;     //  DIR/keys/NAME: .key and .pub
    char           *public_pem;
    EVP_PKEY       *key;
} s_party_t;

typedef struct {
    FILE           *out;
    FILE           *err;
    char          **envp;
    //  What was asked
    const char     *url;            //  --url; NULL: the platform runs in this process
    bool            vm;
    bool            keep;
    const char     *state;          //  --state
    bool            lasting;        //  the platform outlives the demo (--url, --state)
    char           *admin_user;
    char           *admin_password; //  wiped
    //  Where
    char           *work;           //  the temporary directory
    char           *base;           //  the gateway's URL
    char            suffix [8];     //  of the users' and the workspace's names
    char            workspace [48];
    char           *host_uri;
    //  REST, through the shared helpers; what they say goes to why
    FILE           *why;
    char           *why_text;
    size_t          why_size;
    char           *no_env [1];     //  the helpers read no UMBRA_* of the caller
    umb_cli_rest_t *anon;
    s_party_t       admin;
    s_party_t       party [S_PARTIES];
    char           *computation;
    char           *host;
    char           *run;
    char           *cvm;
    char           *agent;
    char           *attest;
    uint8_t         hash [S_ASSETS][UMB_SIG_HASH_SIZE];
    char            hash_hex [S_ASSETS][UMB_SIG_HASH_HEX_SIZE];
    char           *result;         //  model.json as the consumer got it
    //  The story
    int             step;
    const char     *doing;          //  the step under way
    char            reason [2048];
    int64_t         started;
    bool            told;           //  the platform's ready callback reached the demo
    int             exit_code;
} s_demo_t;

static const char s_usage [] =
    "usage: umbra demo [--url URL [--admin-user NAME] [--admin-password PW]] [--vm]\n"
    "                  [--state DIR] [--keep]\n"
    "\n"
    "Runs one real computation end to end and tells what happens, a line a step:\n"
    "four users (ada owns the computation and provides the algorithm, a linear\n"
    "regression in Python; bob and cy each provide a CSV dataset; dee gets the\n"
    "result), their workspace, their signing keys (`umbra keys generate`), the\n"
    "computation with its keys and SHA3-256 hashes (`umbra checksum`), a host, a\n"
    "run, the signed uploads and the result fetch over the agent's attested\n"
    "channel (`umbra algo|data|result`), the result, and the workspace's audit\n"
    "trail verified (`umbra audit verify`).\n"
    "\n"
    "Without --url the whole platform (the services of `umbra up`) runs in this\n"
    "process: a fresh state directory under $TMPDIR (default /tmp), ipc:// endpoints\n"
    "in it, the gateway on a port the system picks, a generated administrator. It is\n"
    "stopped and removed at the end.\n"
    "\n"
    "options:\n"
    "  --url URL              use the platform running at URL instead. The users and\n"
    "                         workspace get random suffixes and random passwords; an\n"
    "                         administrator signs in first and disables the users and\n"
    "                         removes the host at the end\n"
    "  --admin-user NAME      with --url: a platform administrator\n"
    "                         (default $UMBRA_ADMIN_USERNAME)\n"
    "  --admin-password PW    with --url: their password (default $UMBRA_ADMIN_PASSWORD;\n"
    "                         prefer the variable: arguments are visible to other users)\n"
    "  --vm                   run in a VM on qemu:///system (libvirt must answer and the\n"
    "                         guest image be in backends.image_dir, /var/cache/umbra/eos;\n"
    "                         build it with guest/eos/build-image) instead of an\n"
    "                         umbra-agent process (process:///). The platform run here\n"
    "                         sets backends.none_accel=tcg: nested KVM guests do not boot\n"
    "                         on many virtual machines, TCG always does (slowly)\n"
    "  --state DIR            the state directory of the platform run here (kept; each\n"
    "                         demo adds its own administrator, demo-admin-SUFFIX, and\n"
    "                         disables its users and removes its host at the end)\n"
    "  --keep                 keep the temporary directory (state, keys, assets, result);\n"
    "                         with --url or --state, keep the users and the host too\n"
    "\n"
    "Either host is for development: the agent runs without a TEE (platform none),\n"
    "nothing is attested, and the demo says so.\n"
    "exit codes: 0 the result came back and the audit trail verified, 1 a step failed\n"
    "(which and why on stderr), 2 usage error\n";

//  ---------------------------------------------------------------- small things

//  The "NAME=value" entry of envp, or NULL
static char *
s_env_entry (char **envp, const char *name)
{
    size_t length = strlen (name);
    for (size_t i = 0; envp [i]; i++)
        if (strncmp (envp [i], name, length) == 0 && envp [i][length] == '=')
            return envp [i];
    return NULL;
}

static const char *
s_env (char **envp, const char *name)
{
    const char *entry = s_env_entry (envp, name);
    return entry ? entry + strlen (name) + 1 : NULL;
}

static void
s_wipe (char *text, size_t size)
{
    sodium_memzero (text, size);
}

//  A small file whole, NUL-terminated (the caller frees), or NULL
static char *
s_read_file (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *text = calloc (1, 65537);
    assert (text);
    size_t size = fread (text, 1, 65536, file);
    bool whole = !ferror (file) && feof (file);
    fclose (file);
    if (!whole || memchr (text, 0, size)) {
        free (text);
        return NULL;
    }
    return text;
}

static int
s_remove_entry (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    return remove (path) == 0 || errno == ENOENT ? 0 : -1;
}

static int
s_remove_tree (const char *dir)
{
    return nftw (dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

//  Random lowercase hex, size - 1 digits and a NUL
static void
s_random_hex (char *text, size_t size)
{
    uint8_t bytes [32];
    assert (size >= 3 && (size - 1) / 2 <= sizeof (bytes));
    randombytes_buf (bytes, (size - 1) / 2);
    umb_hex_encode (bytes, (size - 1) / 2, text);
    sodium_memzero (bytes, sizeof (bytes));
}

static double
s_seconds_since (int64_t start)
{
    return (double) (zclock_mono () - start) / 1000.0;
}

//  ---------------------------------------------------------------- the story

static void
s_begin (s_demo_t *self, const char *doing)
{
    self->step++;
    self->doing = doing;
    self->reason [0] = 0;
}

static void
s_say (s_demo_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_say (s_demo_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (self->out, "%2d. ", self->step);
    vfprintf (self->out, format, args);
    va_end (args);
    fputc ('\n', self->out);
    fflush (self->out);
}

//  Sets why the step failed; returns -1
static int
s_fail (s_demo_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static int
s_fail (s_demo_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->reason, sizeof (self->reason), format, args);
    va_end (args);
    return -1;
}

//  What the shared helpers said since mark (their "umbra: " and newlines dropped)
static const char *
s_why (s_demo_t *self, size_t mark, char *text, size_t size)
{
    fflush (self->why);
    const char *said = self->why_size > mark ? self->why_text + mark : "";
    if (strncmp (said, "umbra: ", 7) == 0)
        said += 7;
    snprintf (text, size, "%s", *said ? said : "no reason given");
    for (char *newline = strchr (text, '\n'); newline; newline = strchr (newline, '\n'))
        *newline = newline [1] ? ' ' : 0;
    return text;
}

//  ---------------------------------------------------------------- REST

//  method path body (borrowed; may be NULL) as party (NULL: anonymous). The
//  2xx answer (the caller's), or NULL with the reason set.
static json_t *
s_rest (s_demo_t *self, s_party_t *party, const char *method, const char *path, json_t *body)
{
    umb_cli_rest_t *rest = party ? party->rest : self->anon;
    assert (rest);
    fflush (self->why);
    size_t mark = self->why_size;
    json_t *answer = umb_cli_rest_call_json (rest, method, path, body);
    if (!answer) {
        char why [1024];
        s_fail (self, "%s %s: %s", method, path, s_why (self, mark, why, sizeof (why)));
    }
    return answer;
}

//  The same when only success matters
static int
s_rest_do (s_demo_t *self, s_party_t *party, const char *method, const char *path, json_t *body)
{
    json_t *answer = s_rest (self, party, method, path, body);
    json_decref (answer);
    return answer ? 0 : -1;
}

//  A client of the gateway with token (NULL: anonymous), saying what fails to why
static umb_cli_rest_t *
s_client (s_demo_t *self, const char *token)
{
    int exit_code = 0;
    umb_cli_rest_t *rest = umb_cli_rest_new (NULL, self->no_env, self->base, token, self->why,
                                             &exit_code);
    if (!rest)
        s_fail (self, "cannot make a client of %s", self->base);
    return rest;
}

//  Signs party in (username, password); sets party->rest and party->id
static int
s_sign_in (s_demo_t *self, s_party_t *party)
{
    json_t *login = json_pack ("{s:s, s:s}", "username", party->username,
                               "password", party->password);
    json_t *tokens = s_rest (self, NULL, "POST", "/users/tokens", login);
    json_decref (login);
    if (!tokens)
        return -1;
    party->token = strdup (umb_cli_rest_str (tokens, "access_token"));
    json_decref (tokens);
    party->rest = s_client (self, party->token);
    if (!party->rest)
        return -1;
    json_t *me = s_rest (self, party, "GET", "/users/me", NULL);
    if (!me)
        return -1;
    party->id = strdup (umb_cli_rest_str (me, "id"));
    bool admin = json_is_true (json_object_get (me, "is_admin"));
    json_decref (me);
    if (party == &self->admin && !admin)
        return s_fail (self, "'%s' is not a platform administrator", party->username);
    return 0;
}

static char *
s_path (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

static char *
s_path (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *path = zsys_vprintf (format, args);
    va_end (args);
    assert (path);
    return path;
}

//  ---------------------------------------------------------------- the steps

static int
s_step_admin (s_demo_t *self)
{
    s_begin (self, "the administrator signs in");
    snprintf (self->admin.username, sizeof (self->admin.username), "%s", self->admin_user);
    self->admin.password = strdup (self->admin_password);
    if (s_sign_in (self, &self->admin))
        return -1;
    s_say (self, "platform administrator '%s' signed in", self->admin.username);
    return 0;
}

static int
s_step_users (s_demo_t *self)
{
    s_begin (self, "register the users");
    for (int i = 0; i < S_PARTIES; i++) {
        s_party_t *party = &self->party [i];
        snprintf (party->username, sizeof (party->username), "%s-%s", s_cast [i].name,
                  self->suffix);
        party->password = calloc (1, 33);
        assert (party->password);
        s_random_hex (party->password, 33);
        json_t *user = json_pack ("{s:s, s:s}", "username", party->username,
                                  "password", party->password);
        int rc = s_rest_do (self, NULL, "POST", "/users", user);
        json_decref (user);
        if (rc || s_sign_in (self, party))
            return -1;
    }
    s_say (self, "users registered and signed in: %s (%s), %s and %s (%ss), %s (%s)",
           self->party [S_ADA].username, s_cast [S_ADA].roles, self->party [S_BOB].username,
           self->party [S_CY].username, s_cast [S_BOB].roles, self->party [S_DEE].username,
           s_cast [S_DEE].roles);
    return 0;
}

static int
s_step_workspace (s_demo_t *self)
{
    s_begin (self, "make the workspace");
    s_party_t *ada = &self->party [S_ADA];
    json_t *workspace = json_pack ("{s:s, s:s}", "name", self->workspace,
                                   "display_name", "umbra demo");
    int rc = s_rest_do (self, ada, "POST", "/workspaces", workspace);
    json_decref (workspace);
    if (rc)
        return -1;
    char *invitations = s_path ("/workspaces/%s/invitations", self->workspace);
    for (int i = S_BOB; i < S_PARTIES && rc == 0; i++) {
        json_t *invite = json_pack ("{s:s, s:s}", "username", self->party [i].username,
                                    "role", "member");
        json_t *invitation = s_rest (self, ada, "POST", invitations, invite);
        json_decref (invite);
        if (!invitation) {
            rc = -1;
            break;
        }
        char *accept = s_path ("/invitations/%s/accept", umb_cli_rest_str (invitation, "id"));
        rc = s_rest_do (self, &self->party [i], "POST", accept, NULL);
        zstr_free (&accept);
        json_decref (invitation);
    }
    zstr_free (&invitations);
    if (rc)
        return -1;
    s_say (self, "workspace %s made by ada (its admin); bob, cy and dee invited, each accepted",
           self->workspace);
    return 0;
}

#define S_DEMO_CREDIT 10000000         //  10 credits: far more than the run reserves

//  The workspace starts with no credit: the administrator adds some (a run
//  reserves its most before it starts)
static int
s_step_credit (s_demo_t *self)
{
    s_begin (self, "add credit");
    char *path = s_path ("/workspaces/%s/billing/credits", self->workspace);
    char reference [32];
    snprintf (reference, sizeof reference, "demo-%s", self->suffix);
    json_t *credit = json_pack ("{s:I, s:s}", "amount", (json_int_t) S_DEMO_CREDIT,
                                "reference", reference);
    json_t *answer = s_rest (self, &self->admin, "POST", path, credit);
    json_decref (credit);
    zstr_free (&path);
    if (!answer)
        return -1;
    s_say (self, "the administrator added %.6f credits to %s (reference %s)",
           S_DEMO_CREDIT / 1e6, self->workspace, reference);
    json_decref (answer);
    return 0;
}

//  The run's reservation is settled once its CVM goes: what it cost
static int
s_step_billing (s_demo_t *self)
{
    s_begin (self, "settle the run's cost");
    char *path = s_path ("/workspaces/%s/billing", self->workspace);
    json_t *account = NULL;
    int64_t deadline = zclock_mono () + 60000;
    while (true) {
        json_decref (account);
        account = s_rest (self, &self->party [S_ADA], "GET", path, NULL);
        json_t *balance = json_object_get (account, "balance");
        if (!account || json_integer_value (json_object_get (balance, "reserved")) == 0
        ||  zclock_mono () > deadline)
            break;
        zclock_sleep (200);
    }
    zstr_free (&path);
    json_t *balance = json_object_get (account, "balance");
    int64_t reserved = json_integer_value (json_object_get (balance, "reserved"));
    int64_t available = json_integer_value (json_object_get (balance, "available"));
    int rc = 0;
    if (!account)
        rc = -1;
    else
    if (reserved != 0)
        rc = s_fail (self, "the run's reservation was not settled within 60 s");
    else
        s_say (self, "the run cost %.6f credits (plan %s); %.6f left",
               (S_DEMO_CREDIT - available) / 1e6,
               json_string_value (json_object_get (account, "plan")), available / 1e6);
    json_decref (account);
    return rc;
}

static int
s_step_keys (s_demo_t *self)
{
    s_begin (self, "make the signing keys");
    char *dir = s_path ("%s/keys", self->work);
    int rc = mkdir (dir, 0700);
    zstr_free (&dir);
    if (rc)
        return s_fail (self, "cannot make %s/keys: %s", self->work, strerror (errno));
    for (int i = 0; i < S_PARTIES; i++) {
        s_party_t *party = &self->party [i];
        party->key_prefix = s_path ("%s/keys/%s", self->work, s_cast [i].name);
        //  `umbra keys generate --type T --out PREFIX`, as is
        char *argv [] = { "keys", "generate", "--type", (char *) s_cast [i].key_type,
                          "--out", party->key_prefix, NULL };
        char *said = NULL;
        size_t said_size = 0;
        FILE *out = open_memstream (&said, &said_size);
        assert (out);
        fflush (self->why);
        size_t mark = self->why_size;
        rc = umb_cli_keys_run (6, argv, out, self->why);
        fclose (out);
        free (said);
        if (rc) {
            char why [1024];
            return s_fail (self, "umbra keys generate for %s: %s", s_cast [i].name,
                           s_why (self, mark, why, sizeof (why)));
        }
        char reason [512];
        char *private_path = s_path ("%s.key", party->key_prefix);
        char *public_path = s_path ("%s.pub", party->key_prefix);
        party->key = umb_sig_private_load (private_path, reason, sizeof (reason));
        party->public_pem = s_read_file (public_path);
        zstr_free (&private_path);
        zstr_free (&public_path);
        if (!party->key || !party->public_pem)
            return s_fail (self, "%s's key: %s", s_cast [i].name,
                           party->key ? "cannot read the public key" : reason);
    }
    s_say (self, "signing keys made (`umbra keys generate`): ada ed25519, bob ecdsa-p256, "
           "cy ecdsa-p384, dee ed25519; each private key stays with its owner");
    return 0;
}

static int
s_step_assets (s_demo_t *self)
{
    s_begin (self, "write the assets");
    char *dir = s_path ("%s/assets", self->work);
    int rc = mkdir (dir, 0700);
    zstr_free (&dir);
    if (rc)
        return s_fail (self, "cannot make %s/assets: %s", self->work, strerror (errno));
    for (int i = 0; i < S_ASSETS; i++) {
        char *path = s_path ("%s/assets/%s", self->work, s_assets [i].file);
        FILE *file = fopen (path, "w");
        bool written = file && fputs (s_assets [i].text, file) >= 0;
        written = file && fclose (file) == 0 && written;
        //  The hash `umbra checksum` prints
        char reason [512] = "";
        if (written && umb_sig_sha3_file (path, self->hash [i], NULL, reason, sizeof (reason)) == 0)
            umb_hex_encode (self->hash [i], UMB_SIG_HASH_SIZE, self->hash_hex [i]);
        else
            written = false;
        if (!written) {
            s_fail (self, "%s: %s", path, *reason ? reason : strerror (errno));
            zstr_free (&path);
            return -1;
        }
        zstr_free (&path);
    }
    s_say (self, "assets written to %s/assets: ada's linreg.py (least squares in Python), "
           "bob's north.csv (8 points), cy's south.csv (7 points)", self->work);
    return 0;
}

static int
s_step_define (s_demo_t *self)
{
    s_begin (self, "define the computation");
    json_t *definition = json_pack (
        "{s:s, s:s, s:{s:s, s:s}, s:[{s:s, s:s}, {s:s, s:s}], s:[s], s:{s:s, s:i, s:i}, s:i}",
        "name", "linear regression",
        "description", "least squares over two parties' points; only dee sees the fit",
        "algorithm", "provider", self->party [S_ADA].username, "type", "python",
        "datasets", "provider", self->party [S_BOB].username, "filename", s_assets [1].file,
                    "provider", self->party [S_CY].username, "filename", s_assets [2].file,
        "consumers", self->party [S_DEE].username,
        "backend", "tee", "none", "vcpus", 1, "memory_mb", 512,
        "run_timeout_s", 120);
    assert (definition);
    char *path = s_path ("/workspaces/%s/computations", self->workspace);
    json_t *computation = s_rest (self, &self->party [S_ADA], "POST", path, definition);
    zstr_free (&path);
    json_decref (definition);
    if (!computation)
        return -1;
    self->computation = strdup (umb_cli_rest_str (computation, "id"));
    size_t participants = json_array_size (json_object_get (computation, "participants"));
    json_decref (computation);
    s_say (self, "computation %s defined by ada: linreg.py over north.csv (bob) and south.csv "
           "(cy), the result for dee alone; %zu participants", self->computation, participants);
    return 0;
}

static int
s_step_register (s_demo_t *self)
{
    s_begin (self, "register the keys and hashes");
    char *base = s_path ("/workspaces/%s/computations/%s", self->workspace, self->computation);
    int rc = 0;
    for (int i = 0; i < S_PARTIES && rc == 0; i++) {
        char *path = s_path ("%s/participants/me/key", base);
        json_t *key = json_pack ("{s:s}", "key", self->party [i].public_pem);
        rc = s_rest_do (self, &self->party [i], "PUT", path, key);
        json_decref (key);
        zstr_free (&path);
    }
    for (int i = 0; i < S_ASSETS && rc == 0; i++) {
        char *path = s_path ("%s/assets/%s", base, s_assets [i].asset);
        json_t *hash = json_pack ("{s:s}", "hash", self->hash_hex [i]);
        rc = s_rest_do (self, &self->party [s_assets [i].provider], "PUT", path, hash);
        json_decref (hash);
        zstr_free (&path);
    }
    json_t *check = NULL;
    if (rc == 0) {
        char *path = s_path ("%s/check", base);
        check = s_rest (self, &self->party [S_DEE], "GET", path, NULL);
        zstr_free (&path);
    }
    zstr_free (&base);
    if (!check)
        return -1;
    bool ready = json_is_true (json_object_get (check, "ready"));
    char *missing = json_dumps (json_object_get (check, "missing"), JSON_COMPACT);
    json_decref (check);
    if (!ready) {
        s_fail (self, "the computation is not ready; missing %s", missing ? missing : "?");
        free (missing);
        return -1;
    }
    free (missing);
    s_say (self, "each participant registered their public key, each provider the SHA3-256 "
           "of their asset (linreg.py %.12s..., north.csv %.12s..., south.csv %.12s...); ready",
           self->hash_hex [0], self->hash_hex [1], self->hash_hex [2]);
    return 0;
}

static int
s_step_host (s_demo_t *self)
{
    s_begin (self, "register the host");
    char *path = s_path ("/workspaces/%s/backends", self->workspace);
    json_t *request = json_pack ("{s:s, s:s, s:b}", "name", "demo", "uri", self->host_uri,
                                 "insecure_dev", 1);
    json_t *host = s_rest (self, &self->party [S_ADA], "POST", path, request);
    json_decref (request);
    zstr_free (&path);
    if (!host) {
        if (self->vm)
            return s_fail (self, "%s (--vm needs libvirt answering on qemu:///system)",
                           self->reason);
        return -1;
    }
    self->host = strdup (umb_cli_rest_str (host, "id"));
    json_decref (host);
    if (self->vm)
        s_say (self, "host %s registered by ada: VMs on this machine's libvirt, insecure_dev "
               "(a none VM under TCG: no TEE, nothing is attested)", self->host_uri);
    else
        s_say (self, "host %s registered by ada: umbra-agent as a local process, insecure_dev "
               "(no TEE: nothing is attested)", self->host_uri);
    return 0;
}

//  Polls the run until it is in state want (AwaitingAssets: with its agent's
//  endpoints) for at most timeout_ms. The run (the caller's), or NULL with
//  the reason when it ended otherwise or the time ran out.
static json_t *
s_wait_run (s_demo_t *self, const char *want, int64_t timeout_ms)
{
    char *path = s_path ("/workspaces/%s/computations/%s/runs/%s", self->workspace,
                         self->computation, self->run);
    int64_t deadline = zclock_mono () + timeout_ms;
    json_t *run = NULL;
    while (true) {
        json_decref (run);
        run = s_rest (self, &self->party [S_ADA], "GET", path, NULL);
        if (!run)
            break;
        const char *state = umb_cli_rest_str (run, "state");
        if (streq (state, want)
        &&  (!streq (want, "AwaitingAssets") || *umb_cli_rest_str (run, "agent_endpoint")))
            break;
        if (streq (state, "Completed") || streq (state, "Failed") || streq (state, "Cancelled")) {
            s_fail (self, "the run is %s, not %s: %s", state, want,
                    *umb_cli_rest_str (run, "reason") ? umb_cli_rest_str (run, "reason")
                                                     : "no reason given");
            json_decref (run);
            run = NULL;
            break;
        }
        if (zclock_mono () >= deadline) {
            s_fail (self, "the run is still %s after %" PRId64 " s, not %s", state,
                    timeout_ms / 1000, want);
            json_decref (run);
            run = NULL;
            break;
        }
        zclock_sleep (S_POLL_MS);
    }
    zstr_free (&path);
    return run;
}

static int
s_step_run (s_demo_t *self)
{
    s_begin (self, "start a run");
    int64_t started = zclock_mono ();
    char *path = s_path ("/workspaces/%s/computations/%s/runs", self->workspace,
                         self->computation);
    json_t *run = s_rest (self, &self->party [S_ADA], "POST", path, NULL);
    zstr_free (&path);
    if (!run)
        return -1;
    self->run = strdup (umb_cli_rest_str (run, "id"));
    json_decref (run);
    run = s_wait_run (self, "AwaitingAssets", self->vm ? S_BOOT_MS : S_PROVISION_MS);
    if (!run)
        return -1;
    self->cvm = strdup (umb_cli_rest_str (run, "cvm"));
    self->agent = strdup (umb_cli_rest_str (run, "agent_endpoint"));
    self->attest = strdup (umb_cli_rest_str (run, "attest_endpoint"));
    json_decref (run);
    s_say (self, "run %s started by ada; after %.1f s its CVM %s holds the manifest and the "
           "agent waits at %s (attestation %s)", self->run, s_seconds_since (started), self->cvm,
           self->agent, self->attest);
    return 0;
}

//  An attested, connected agent client (insecure_dev: these hosts have no TEE)
static umb_agent_client_t *
s_agent_open (s_demo_t *self)
{
    umb_agent_client_t *client = umb_agent_client_new (self->agent);
    if (!client) {
        s_fail (self, "the run's agent endpoint '%s' is not tcp://HOST:PORT", self->agent);
        return NULL;
    }
    umb_agent_client_set_attest_endpoint (client, self->attest);
    umb_agent_client_set_insecure_dev (client, true);
    umb_agent_client_set_timeout (client, S_AGENT_MS);
    if (umb_agent_client_connect (client)) {
        s_fail (self, "the agent at %s: %s", self->agent, umb_agent_client_reason (client));
        umb_agent_client_destroy (&client);
    }
    return client;
}

static int
s_step_upload (s_demo_t *self, int asset)
{
    int provider = s_assets [asset].provider;
    s_begin (self, asset ? "upload a dataset" : "upload the algorithm");
    umb_agent_client_t *client = s_agent_open (self);
    if (!client)
        return -1;
    char *path = s_path ("%s/assets/%s", self->work, s_assets [asset].file);
    int rc = umb_agent_client_upload (client, s_assets [asset].role, path,
                                      self->party [provider].key, self->hash [asset]);
    zstr_free (&path);
    if (rc)
        s_fail (self, "%s's %s: %s", s_cast [provider].name, s_assets [asset].file,
                umb_agent_client_reason (client));
    else
        s_say (self, "%s uploaded %s to the agent: attested (platform %s: no TEE, insecure dev), "
               "signed with their key over the agent's challenge; agent now %s",
               s_cast [provider].name, s_assets [asset].file, umb_agent_client_platform (client),
               umb_agent_client_state (client));
    umb_agent_client_destroy (&client);
    return rc ? -1 : 0;
}

static int
s_step_result (s_demo_t *self)
{
    s_begin (self, "fetch the result");
    json_t *run = s_wait_run (self, "ResultsReady", S_RUN_MS);
    if (!run)
        return -1;
    json_decref (run);
    umb_agent_client_t *client = s_agent_open (self);
    if (!client)
        return -1;
    char *tar = s_path ("%s/result.tar", self->work);
    char *dir = s_path ("%s/result", self->work);
    char reason [1024];
    int rc = umb_agent_client_result (client, self->party [S_DEE].key, tar);
    if (rc)
        s_fail (self, "dee's fetch: %s", umb_agent_client_reason (client));
    else
    if (mkdir (dir, 0700))
        rc = s_fail (self, "cannot make %s: %s", dir, strerror (errno));
    else
    if (umb_cli_agent_untar (tar, dir, false, reason, sizeof (reason)))
        rc = s_fail (self, "the result arrived but does not unpack: %s", reason);
    umb_agent_client_destroy (&client);
    if (rc == 0) {
        char *model = s_path ("%s/model.json", dir);
        self->result = s_read_file (model);
        zstr_free (&model);
        if (!self->result)
            rc = s_fail (self, "the result holds no model.json");
        else
            self->result [strcspn (self->result, "\n")] = 0;
    }
    zstr_free (&tar);
    zstr_free (&dir);
    if (rc)
        return -1;
    s_say (self, "the algorithm ran; dee fetched the result with a signed request, its hash "
           "checked, unpacked into %s/result", self->work);
    return 0;
}

static int
s_step_finish (s_demo_t *self)
{
    s_begin (self, "see the run end");
    json_t *run = s_wait_run (self, "Completed", S_FINISH_MS);
    if (!run)
        return -1;
    int64_t seconds = umb_cli_rest_int (run, "updated_at") - umb_cli_rest_int (run, "created_at");
    long long events = umb_cli_rest_int (run, "events");
    json_decref (run);
    //  The CVM goes with the run: wait for it, so that nothing of the run outlives the demo
    char *path = s_path ("/workspaces/%s/cvms/%s", self->workspace, self->cvm);
    int64_t deadline = zclock_mono () + S_FINISH_MS;
    const char *state = "";
    json_t *cvm = NULL;
    while (true) {
        json_decref (cvm);
        cvm = s_rest (self, &self->party [S_ADA], "GET", path, NULL);
        state = cvm ? umb_cli_rest_str (cvm, "state") : "";
        if (!cvm || streq (state, "Destroyed") || streq (state, "Failed")
        ||  zclock_mono () >= deadline)
            break;
        zclock_sleep (S_POLL_MS);
    }
    zstr_free (&path);
    if (cvm && !streq (state, "Destroyed"))
        s_fail (self, "the run's CVM %s is %s, not Destroyed", self->cvm, state);
    json_decref (cvm);
    if (*self->reason)
        return -1;
    s_say (self, "run %s Completed (%lld events, about %" PRId64 " s); its CVM %s destroyed",
           self->run, events, seconds, self->cvm);
    return 0;
}

static int
s_step_audit (s_demo_t *self)
{
    s_begin (self, "verify the audit trail");
    char *anchors = s_path ("%s/audit", self->work);
    //  As ada, with her token; getopt reorders argv and the token is wiped in place
    char *argv [] = { strdup ("audit"), strdup ("verify"), strdup ("--workspace"),
                      strdup (self->workspace), strdup ("--url"), strdup (self->base),
                      strdup ("--token"), strdup (self->party [S_ADA].token),
                      strdup ("--anchor-dir"), anchors, NULL };
    char *said = NULL;
    size_t said_size = 0;
    FILE *out = open_memstream (&said, &said_size);
    assert (out);
    fflush (self->why);
    size_t mark = self->why_size;
    int rc = umb_cli_audit_run (10, argv, self->no_env, out, self->why);
    fclose (out);
    if (rc) {
        char why [1024];
        s_fail (self, "umbra audit verify: %s", s_why (self, mark, why, sizeof (why)));
    }
    else {
        said [strcspn (said, "\n")] = 0;
        s_say (self, "%s (`umbra audit verify`: every record's hash and link checked)", said);
    }
    free (said);
    for (size_t i = 0; i < 10; i++) {
        s_wipe (argv [i], strlen (argv [i]));
        free (argv [i]);
    }
    return rc ? -1 : 0;
}

//  On a platform that outlives the demo (--url, --state), what the demo made
//  goes, best effort: its host (so that its URI is free again) and its users
static void
s_tidy (s_demo_t *self)
{
    if (!self->lasting || self->keep || !self->admin.rest)
        return;
    s_begin (self, "tidy up");
    int failures = 0;
    if (self->host) {
        char *path = s_path ("/workspaces/%s/backends/%s", self->workspace, self->host);
        failures += s_rest_do (self, &self->party [S_ADA], "DELETE", path, NULL) ? 1 : 0;
        zstr_free (&path);
    }
    int disabled = 0;
    for (int i = 0; i < S_PARTIES; i++) {
        if (!self->party [i].id)
            continue;
        char *path = s_path ("/users/%s/disable", self->party [i].id);
        if (s_rest_do (self, &self->admin, "POST", path, NULL))
            failures++;
        else
            disabled++;
        zstr_free (&path);
    }
    if (failures)
        fprintf (self->err, "umbra demo: tidying up: %s\n", self->reason);
    s_say (self, "tidied up: %s; %d demo user%s disabled by the administrator (workspace %s "
           "stays, with its audit trail)", self->host ? "host removed" : "no host",
           disabled, disabled == 1 ? "" : "s", self->workspace);
}

//  The result for people: the model and the fit
static void
s_print_result (s_demo_t *self)
{
    fprintf (self->out, "result (dee's results/model.json): %s\n", self->result);
    json_t *model = json_loads (self->result, 0, NULL);
    if (model)
        fprintf (self->out, "fit over n=%lld points: y = %.6f x %+.6f\n",
                 (long long) json_integer_value (json_object_get (model, "n")),
                 json_number_value (json_object_get (model, "slope")),
                 json_number_value (json_object_get (model, "intercept")));
    json_decref (model);
    fflush (self->out);
}

//  The whole story against the gateway at self->base; the exit code
static int
s_story (s_demo_t *self)
{
    self->anon = s_client (self, NULL);
    int rc = self->anon ? 0 : -1;
    if (rc == 0)
        rc = s_step_admin (self);
    if (rc == 0)
        rc = s_step_users (self);
    if (rc == 0)
        rc = s_step_workspace (self);
    if (rc == 0)
        rc = s_step_credit (self);
    if (rc == 0)
        rc = s_step_keys (self);
    if (rc == 0)
        rc = s_step_assets (self);
    if (rc == 0)
        rc = s_step_define (self);
    if (rc == 0)
        rc = s_step_register (self);
    if (rc == 0)
        rc = s_step_host (self);
    if (rc == 0)
        rc = s_step_run (self);
    for (int asset = 0; asset < S_ASSETS && rc == 0; asset++)
        rc = s_step_upload (self, asset);
    if (rc == 0)
        rc = s_step_result (self);
    if (rc == 0)
        rc = s_step_finish (self);
    if (rc == 0)
        s_print_result (self);
    if (rc == 0)
        rc = s_step_audit (self);
    if (rc == 0)
        rc = s_step_billing (self);
    if (rc) {
        fprintf (self->err, "umbra demo: step %d (%s) failed: %s\n", self->step,
                 self->doing ? self->doing : "start", self->reason);
        //  A run that is still live is stopped, so that its CVM goes
        if (self->run && self->party [S_ADA].rest) {
            char *path = s_path ("/workspaces/%s/computations/%s/runs/%s/stop",
                                 self->workspace, self->computation, self->run);
            json_decref (umb_cli_rest_call_json (self->party [S_ADA].rest, "POST", path, NULL));
            zstr_free (&path);
        }
    }
    s_tidy (self);
    return rc ? S_EXIT_FAILED : S_EXIT_OK;
}

//  ---------------------------------------------------------------- the platform in this process

//  umb_program's ready callback takes no argument: it hands the gateway's
//  port to the demo actor, which waits for it at S_HANDOFF.
static void
s_platform_ready (umb_runtime_t *runtime, char **answers)
{
    size_t gateway = umb_cli_platform_index ("gateway");
    zsock_t *handoff = zsock_new_push (">" S_HANDOFF);
    assert (handoff);
    zsock_set_linger (handoff, 1000);
    zstr_send (handoff, answers [gateway]);
    zsock_destroy (&handoff);
}

//  Runs the story once the platform is up, then asks umb_program_run to stop
//  it (SIGTERM, which every thread blocks and its sigwait takes)
static void
s_demo_actor (zsock_t *pipe, void *args)
{
    s_demo_t *self = args;
    zsock_t *handoff = zsock_new_pull ("@" S_HANDOFF);
    assert (handoff);
    zpoller_t *poller = zpoller_new (pipe, handoff, NULL);
    assert (poller);
    zsock_signal (pipe, 0);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == handoff) {
            char *port = zstr_recv (handoff);
            if (port && !self->told) {
                self->told = true;
                self->base = zsys_sprintf ("http://127.0.0.1:%s", port);
                fprintf (self->out, "umbra demo: the platform runs in this process: gateway %s, "
                         "state %s (auth, certs, backends, computations, gateway)\n", self->base,
                         self->state);
                fflush (self->out);
                self->exit_code = s_story (self);
                kill (getpid (), SIGTERM);
            }
            zstr_free (&port);
        }
        else {
            char *command = which == pipe ? zstr_recv (pipe) : NULL;
            bool stop = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (stop)
                break;
        }
    }
    zpoller_destroy (&poller);
    zsock_destroy (&handoff);
}

static umb_config_t *
s_platform_config (s_demo_t *self)
{
    umb_config_t *config = umb_config_new ();
    assert (config);
    char *error = NULL;
    const char *quiet [][2] = {
        { "log.level", "error" }, { "backends.none_accel", "tcg" }, { NULL }
    };
    for (size_t i = 0; quiet [i][0]; i++)
        if (umb_config_set (config, quiet [i][0], quiet [i][1], &error))
            assert (false);
    //  What the caller may tune
    char *tuned [sizeof (s_tunables) / sizeof (s_tunables [0])] = { NULL };
    size_t count = 0;
    for (size_t i = 0; s_tunables [i]; i++)
        if (s_env_entry (self->envp, s_tunables [i]))
            tuned [count++] = s_env_entry (self->envp, s_tunables [i]);
    if (umb_config_load_env (config, tuned, &error)) {
        fprintf (self->err, "umbra demo: %s\n", error ? error : "invalid settings");
        free (error);
        umb_config_destroy (&config);
        return NULL;
    }
    //  The demo's own
    const char *names [] = { "auth.endpoint", "auth.pub_endpoint", "certs.endpoint",
                             "certs.pub_endpoint", "backends.endpoint", "backends.pub_endpoint",
                             "computations.endpoint", "computations.pub_endpoint" };
    const char *files [] = { "auth", "auth-pub", "certs", "certs-pub", "backends", "backends-pub",
                             "computations", "computations-pub" };
    int rc = umb_config_set (config, "state_dir", self->state, &error)
          || umb_config_set (config, "certs.http_listen", "127.0.0.1:0", &error)
          || umb_config_set (config, "gateway.listen", "127.0.0.1:0", &error)
          || umb_config_set (config, "admin.username", self->admin_user, &error)
          || umb_config_set (config, "admin.password", self->admin_password, &error);
    for (size_t i = 0; rc == 0 && i < sizeof (names) / sizeof (names [0]); i++) {
        char *endpoint = zsys_sprintf ("ipc://%s/%s.ipc", self->work, files [i]);
        rc = umb_config_set (config, names [i], endpoint, &error);
        zstr_free (&endpoint);
    }
    if (rc) {
        fprintf (self->err, "umbra demo: %s\n", error ? error : "invalid settings");
        free (error);
        umb_config_destroy (&config);
    }
    return config;
}

//  The guest image a VM boots (backends.image_dir): 0, or -1 having said why
static int
s_check_image (s_demo_t *self, umb_config_t *config)
{
    const char *dir = umb_config_str (config, "backends.image_dir");
    const char *parts [] = { "vmlinux", "initramfs.cpio.gz", NULL };
    for (size_t i = 0; parts [i]; i++) {
        char *path = zsys_sprintf ("%s/%s", dir, parts [i]);
        bool there = access (path, R_OK) == 0;
        zstr_free (&path);
        if (!there) {
            fprintf (self->err, "umbra demo: --vm: no guest image in %s (no %s); build it with "
                     "guest/eos/build-image BUILD_DIR %s, or run without --vm\n", dir, parts [i],
                     dir);
            return -1;
        }
    }
    return 0;
}

static int
s_in_process (s_demo_t *self)
{
    //  A state directory of the caller's may hold an earlier demo's administrator
    self->admin_user = self->state ? zsys_sprintf ("demo-admin-%s", self->suffix)
                                   : strdup ("admin");
    self->admin_password = calloc (1, 33);
    assert (self->admin_user && self->admin_password);
    s_random_hex (self->admin_password, 33);
    char *state = NULL;
    if (!self->state)
        self->state = state = zsys_sprintf ("%s/state", self->work);
    umb_config_t *config = s_platform_config (self);
    if (config && self->vm && s_check_image (self, config))
        umb_config_destroy (&config);
    if (!config) {
        zstr_free (&state);
        return S_EXIT_FAILED;
    }
    //  Threads started from here on block the stop signals, as umb_program_run wants
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);
    zactor_t *demo = zactor_new (s_demo_actor, self);
    assert (demo);
    int rc = umb_program_run ("umbra demo", &config, umb_cli_platform (), s_platform_ready);
    zactor_destroy (&demo);
    if (!self->told)
        fprintf (self->err, "umbra demo: step 0 (start the platform) failed%s\n",
                 rc ? ": see above" : ": stopped before it was up");
    else
        fprintf (self->out, "umbra demo: platform stopped\n");
    self->state = NULL;
    zstr_free (&state);
    return self->told ? self->exit_code : S_EXIT_FAILED;
}

//  ---------------------------------------------------------------- the command

static int
s_usage_error (FILE *err, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static int
s_usage_error (FILE *err, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (err, "umbra demo: ");
    vfprintf (err, format, args);
    va_end (args);
    fprintf (err, "\n%s", s_usage);
    return S_EXIT_USAGE;
}

//  Reads the options into self: -1 when the demo should run, else the exit code
static int
s_parse (s_demo_t *self, int argc, char **argv)
{
    static const struct option options [] = {
        { "url",            required_argument, NULL, 'u' },
        { "vm",             no_argument,       NULL, 'v' },
        { "state",          required_argument, NULL, 's' },
        { "keep",           no_argument,       NULL, 'k' },
        { "admin-user",     required_argument, NULL, 'U' },
        { "admin-password", required_argument, NULL, 'P' },
        { "help",           no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    optind = 0;
    opterr = 0;
    int option;
    while ((option = getopt_long (argc, argv, ":h", options, NULL)) != -1) {
        switch (option) {
            case 'u': self->url = optarg; break;
            case 'v': self->vm = true; break;
            case 's': self->state = optarg; break;
            case 'k': self->keep = true; break;
            case 'U':
                free (self->admin_user);
                self->admin_user = strdup (optarg);
                break;
            case 'P': umb_cli_rest_take_secret (&self->admin_password, optarg); break;
            case 'h':
                fputs (s_usage, self->out);
                return S_EXIT_OK;
            case ':':
                return s_usage_error (self->err, "%s needs a value", argv [optind - 1]);
            default:
                return s_usage_error (self->err, "unknown option '%s'", argv [optind - 1]);
        }
    }
    if (optind < argc)
        return s_usage_error (self->err, "unexpected '%s'", argv [optind]);
    self->lasting = self->url || self->state;
    if (!self->url && (self->admin_user || self->admin_password))
        return s_usage_error (self->err, "--admin-user and --admin-password go with --url (the "
                              "platform run here makes its own administrator)");
    if (self->url && self->state)
        return s_usage_error (self->err, "--state is for the platform run here, not with --url");
    if (self->url && strncmp (self->url, "http://", 7) && strncmp (self->url, "https://", 8))
        return s_usage_error (self->err, "--url takes http://HOST:PORT, not '%s'", self->url);
    if (self->url) {
        const char *user = s_env (self->envp, "UMBRA_ADMIN_USERNAME");
        const char *password = s_env (self->envp, "UMBRA_ADMIN_PASSWORD");
        if (!self->admin_user && user && *user)
            self->admin_user = strdup (user);
        if (!self->admin_password && password && *password)
            self->admin_password = strdup (password);
        if (!self->admin_user || !self->admin_password)
            return s_usage_error (self->err, "--url needs a platform administrator: "
                                  "--admin-user and --admin-password, or UMBRA_ADMIN_USERNAME "
                                  "and UMBRA_ADMIN_PASSWORD");
    }
    return -1;
}

static void
s_party_clear (s_party_t *party)
{
    umb_cli_rest_destroy (&party->rest);
    umb_cli_rest_wipe (&party->password);
    umb_cli_rest_wipe (&party->token);
    free (party->id);
    free (party->key_prefix);
    free (party->public_pem);
    EVP_PKEY_free (party->key);
    sodium_memzero (party, sizeof (*party));
}

int
umb_cli_demo_run (int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    assert (argv && envp && out && err);
    if (sodium_init () < 0) {
        fprintf (err, "umbra demo: libsodium cannot start\n");
        return S_EXIT_FAILED;
    }
    s_demo_t *self = calloc (1, sizeof (s_demo_t));
    assert (self);
    self->out = out;
    self->err = err;
    self->envp = envp;
    self->started = zclock_mono ();
    int exit_code = s_parse (self, argc, argv);
    if (exit_code < 0) {
        self->why = open_memstream (&self->why_text, &self->why_size);
        assert (self->why);
        s_random_hex (self->suffix, 7);
        snprintf (self->workspace, sizeof (self->workspace), "demo-%s", self->suffix);
        const char *tmp = s_env (envp, "TMPDIR");
        self->work = zsys_sprintf ("%s/umbra-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp (self->work)) {
            fprintf (err, "umbra demo: cannot make a directory %s: %s\n", self->work,
                     strerror (errno));
            exit_code = S_EXIT_FAILED;
        }
        else {
            //  A host URI is registered once per platform: one that outlives the
            //  demo may hold an earlier demo's
            self->host_uri = self->vm ? zsys_sprintf ("qemu:///system")
                           : self->lasting ? zsys_sprintf ("process:///demo-%s", self->suffix)
                           : zsys_sprintf ("process:///");
            if (self->url) {
                self->base = strdup (self->url);
                fprintf (out, "umbra demo: using the platform at %s\n", self->base);
                exit_code = s_story (self);
            }
            else
                exit_code = s_in_process (self);
            if (self->keep)
                fprintf (out, "umbra demo: kept %s (keys, assets, result%s)\n", self->work,
                         self->url ? "" : ", the platform's state");
            else
            if (s_remove_tree (self->work))
                fprintf (err, "umbra demo: cannot remove %s: %s\n", self->work, strerror (errno));
            fprintf (out, "umbra demo: %s in %.1f s\n", exit_code == S_EXIT_OK ? "done"
                     : "failed", s_seconds_since (self->started));
        }
        fclose (self->why);
        free (self->why_text);
    }
    umb_cli_rest_destroy (&self->anon);
    s_party_clear (&self->admin);
    for (int i = 0; i < S_PARTIES; i++)
        s_party_clear (&self->party [i]);
    umb_cli_rest_wipe (&self->admin_password);
    free (self->admin_user);
    zstr_free (&self->work);
    free (self->base);
    zstr_free (&self->host_uri);
    free (self->computation);
    free (self->host);
    free (self->run);
    free (self->cvm);
    free (self->agent);
    free (self->attest);
    free (self->result);
    free (self);
    return exit_code;
}

int
umb_cli_demo (int argc, char **argv)
{
    extern char **environ;
    return umb_cli_demo_run (argc, argv, environ, stdout, stderr);
}

//  ---------------------------------------------------------------- selftest

UMB_CLI_TESTKIT_RUNNER (s_demo, umb_cli_demo_run, "demo")

void
umb_cli_demo_test (bool verbose)
{
    if (verbose)
        printf (" * umb_cli_demo: ");
    //  Usage
    UMB_CLI_TESTKIT_EXPECT (s_demo (NULL, NULL, "--help", NULL), 0, "usage: umbra demo", NULL);
    UMB_CLI_TESTKIT_EXPECT (s_demo (NULL, NULL, "--bogus", NULL), 2, NULL,
                            "unknown option '--bogus'");
    UMB_CLI_TESTKIT_EXPECT (s_demo (NULL, NULL, "extra", NULL), 2, NULL, "unexpected 'extra'");
    UMB_CLI_TESTKIT_EXPECT (s_demo (NULL, NULL, "--url", NULL), 2, NULL, "--url needs a value");
    UMB_CLI_TESTKIT_EXPECT (s_demo (NULL, NULL, "--url", "http://127.0.0.1:1", NULL), 2, NULL,
                            "needs a platform administrator");
    UMB_CLI_TESTKIT_EXPECT (s_demo (NULL, NULL, "--url", "ftp://x", "--admin-user", "a",
                                    "--admin-password", "b", NULL), 2, NULL, "--url takes");
    UMB_CLI_TESTKIT_EXPECT (s_demo (NULL, NULL, "--url", "http://127.0.0.1:1", "--state", "/tmp",
                                    NULL), 2, NULL, "--state is for");
    UMB_CLI_TESTKIT_EXPECT (s_demo (NULL, NULL, "--admin-user", "root", NULL), 2, NULL,
                            "go with --url");

    //  The whole story against a platform of this process (the kit's), as with --url
    //  (the kit holds two services: no certs, so agents' keys go uncertified)
    const char *services [] = { "backends", "computations", NULL };
    const char *settings [][2] = { { "backends.certify_agents", "false" }, { NULL } };
    umb_cli_testkit_t *kit = umb_cli_testkit_new ("umb-cli-demo", services, settings);
    const char *url = umb_cli_testkit_url (kit);
    //  Nobody there: the first step fails, says why, exit 1
    UMB_CLI_TESTKIT_EXPECT (s_demo (NULL, NULL, "--url", "http://127.0.0.1:1", "--admin-user",
                                    "root", "--admin-password", "x", NULL), 1, NULL,
                            "step 1 (the administrator signs in) failed: POST /users/tokens");
    //  A wrong password
    UMB_CLI_TESTKIT_EXPECT (s_demo (NULL, NULL, "--url", url, "--admin-user", "root",
                                    "--admin-password", "not-the-password", NULL), 1, NULL,
                            "401");
    umb_cli_testkit_run_t run = s_demo (NULL, NULL, "--url", url, "--admin-user", "root",
                                        "--admin-password", "root-password-0123", NULL);
    umb_cli_testkit_expect (&run, 0, "\"n\": 15", NULL);
    assert (strstr (run.out, "\"slope\": "));
    assert (strstr (run.out, "fit over n=15 points: y = 1.998571 x +1.031429"));
    assert (strstr (run.out, " verified: "));
    assert (strstr (run.out, "4 demo users disabled"));
    assert (strstr (run.out, "umbra demo: done in "));
    umb_cli_testkit_run_free (&run);
    umb_cli_testkit_destroy (&kit);
    if (verbose)
        printf ("OK\n");
}
