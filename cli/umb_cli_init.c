//  umb_cli_init - `umbra init`: the mesh identities' key pairs and the CA,
//  made once before a deployment's first start (an init container, or an
//  operator before the systemd units start)
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include "umb_cli_init.h"
#include "umb_program.h"
#include "umb_keys.h"
#include "umb_runtime.h"
#include "umb_ca.h"
#include "umb_testkit.h"

static const char s_usage [] =
    "usage: umbra init [--split DIR] [--rotate-issuer] [--config FILE] [--state DIR]\n"
    "\n"
    "Makes what a deployment needs before its first start, once: the CURVE key pair of\n"
    "every mesh identity and the platform's CA (root, issuing and OCSP signer). What\n"
    "exists already is kept, so running it again changes nothing.\n"
    "\n"
    "  --state DIR   one state directory for every service (one host: `umbra up`, the\n"
    "                systemd units): DIR/keys and the CA in certs.ca_dir (default\n"
    "                DIR/certs/ca)\n"
    "  --split DIR   a state directory per service (containers: one volume each):\n"
    "                DIR/NAME/keys holds NAME's secret key and every public key, so no\n"
    "                container holds another's secret; the CA goes to DIR/certs/certs/ca.\n"
    "                The services then run with mesh.make_keys = false.\n"
    "  --rotate-issuer  with the platform stopped: a new issuing CA under the same root,\n"
    "                which issues from the next start on. Certificates issued before stay\n"
    "                valid: their issuing CA keeps signing their CRL and answering OCSP\n"
    "                for them until it expires. Needs the root key (root.key).\n"
    "  --config FILE settings file (certs.key_type, certs.public_url, ...)\n"
    "Settings also come from UMBRA_* environment variables; see `umbra config`.\n";

//  Copies file from to to with mode (to is replaced); 0, -1
static int
s_copy (const char *from, const char *to, mode_t mode)
{
    FILE *in = fopen (from, "rb");
    if (!in)
        return -1;
    char *temporary = zsys_sprintf ("%s.tmp.%d", to, (int) getpid ());
    unlink (temporary);
    int fd = open (temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    FILE *out = fd >= 0 ? fdopen (fd, "wb") : NULL;
    int rc = out ? 0 : -1;
    char buffer [4096];
    size_t size;
    while (rc == 0 && (size = fread (buffer, 1, sizeof buffer, in)) > 0)
        if (fwrite (buffer, 1, size, out) != size)
            rc = -1;
    if (ferror (in))
        rc = -1;
    fclose (in);
    if (out && fclose (out))
        rc = -1;
    else
    if (!out && fd >= 0)
        close (fd);
    if (rc == 0)
        rc = rename (temporary, to);
    unlink (temporary);
    zstr_free (&temporary);
    return rc;
}

//  Makes (or keeps) name's key pair in dir and says which; 0, -1
static int
s_identity (const char *dir, const char *name, umb_log_t *log)
{
    char *secret = zsys_sprintf ("%s/%s.key", dir, name);
    bool existed = access (secret, F_OK) == 0;
    zstr_free (&secret);
    zcert_t *cert = umb_keys_load (dir, name, true, log);
    if (!cert) {
        fprintf (stderr, "umbra init: cannot make the key pair of '%s' in %s\n", name, dir);
        return -1;
    }
    printf ("mesh identity %-13s %s  (%s, %s)\n", name, zcert_public_txt (cert),
            existed ? "kept" : "made", dir);
    zcert_destroy (&cert);
    return 0;
}

//  Makes (or keeps) the CA in dir and says which, rotating its issuing CA
//  when asked; 0, -1
static int
s_ca (umb_config_t *config, const char *dir, bool rotate, umb_log_t *log)
{
    char *root = zsys_sprintf ("%s/root.key", dir);
    bool existed = access (root, F_OK) == 0;
    zstr_free (&root);
    int key_type = umb_ca_key_type_parse (umb_config_str (config, "certs.key_type"));
    const char *public_url = umb_config_str (config, "certs.public_url");
    char *base = *public_url ? strdup (public_url)
                             : zsys_sprintf ("http://%s", umb_config_str (config, "certs.http_listen"));
    char *ocsp = zsys_sprintf ("%s/ocsp", base);
    char *crl = zsys_sprintf ("%s/crl", base);
    if (mkdir (dir, 0700) && errno != EEXIST)
        umb_log_error (log, "cannot create %s: %s", dir, strerror (errno));
    umb_ca_t *ca = NULL;
    if (rotate && !existed)
        fprintf (stderr, "umbra init: there is no CA in %s to rotate\n", dir);
    else
    if (key_type >= 0)
        ca = umb_ca_load_or_create (dir, (umb_ca_key_type_t) key_type, ocsp, crl, log);
    int rc = ca ? 0 : -1;
    char made [41] = "";
    if (ca && rotate && umb_ca_rotate (ca, made)) {
        fprintf (stderr, "umbra init: cannot make a new issuing CA in %s (is root.key there?)\n",
                 dir);
        rc = -1;
    }
    if (rc == 0) {
        unsigned char digest [EVP_MAX_MD_SIZE];
        unsigned int length = 0;
        char hex [2 * EVP_MAX_MD_SIZE + 1] = "";
        if (X509_digest (umb_ca_root (ca), EVP_sha256 (), digest, &length))
            for (unsigned int i = 0; i < length; i++)
                snprintf (hex + 2 * i, 3, "%02x", digest [i]);
        printf ("CA %s  (%s; root SHA-256 %s)\n", dir, existed ? "kept" : "made", hex);
        for (size_t i = 0; i < umb_ca_issuer_count (ca); i++) {
            umb_ca_issuer_t issuer;
            umb_ca_issuer (ca, i, &issuer);
            printf ("issuing CA %s  (%s%s; until %lld)\n", issuer.id,
                    streq (issuer.id, made) ? "made" : i == 0 && !existed ? "made" : "kept",
                    issuer.current ? ", issues" : ", answers for what it issued",
                    (long long) issuer.not_after);
        }
    }
    else
    if (!(rotate && !existed))
        fprintf (stderr, "umbra init: cannot %s the CA in %s\n", ca ? "rotate" : "make", dir);
    umb_ca_destroy (&ca);
    zstr_free (&base);
    zstr_free (&ocsp);
    zstr_free (&crl);
    return rc;
}

//  The per-service layout: each identity's key pair made in its own state's
//  keys directory, then every public key copied into every one of them
static int
s_split (umb_config_t *config, const char *root, bool rotate, umb_log_t *log)
{
    const char *const *names = umb_runtime_identities ();
    int rc = 0;
    for (size_t i = 0; names [i] && rc == 0; i++) {
        char *keys = zsys_sprintf ("%s/%s/keys", root, names [i]);
        rc = umb_runtime_make_dirs (keys) ? -1 : s_identity (keys, names [i], log);
        zstr_free (&keys);
    }
    for (size_t from = 0; names [from] && rc == 0; from++)
        for (size_t to = 0; names [to] && rc == 0; to++) {
            if (from == to)
                continue;
            char *source = zsys_sprintf ("%s/%s/keys/%s.pub", root, names [from],
                                         names [from]);
            char *target = zsys_sprintf ("%s/%s/keys/%s.pub", root, names [to],
                                         names [from]);
            rc = s_copy (source, target, 0644);
            if (rc)
                fprintf (stderr, "umbra init: cannot copy %s to %s: %s\n", source, target,
                         strerror (errno));
            zstr_free (&source);
            zstr_free (&target);
        }
    if (rc == 0) {
        char *ca = zsys_sprintf ("%s/certs/certs/ca", root);
        rc = umb_runtime_make_dirs (ca) ? -1 : s_ca (config, ca, rotate, log);
        zstr_free (&ca);
    }
    return rc;
}

//  The one-state layout
static int
s_single (umb_config_t *config, bool rotate, umb_log_t *log)
{
    char *state = umb_runtime_state_path (config);
    char *keys = umb_runtime_keys_path (config);
    const char *configured;
    configured = umb_config_str (config, "certs.ca_dir");
    char *ca = *configured ? strdup (configured) : zsys_sprintf ("%s/certs/ca", state);
    const char *const *names = umb_runtime_identities ();
    int rc = umb_runtime_make_dirs (keys) || umb_runtime_make_dirs (ca) ? -1 : 0;
    if (rc)
        fprintf (stderr, "umbra init: cannot create %s or %s: %s\n", keys, ca, strerror (errno));
    for (size_t i = 0; names [i] && rc == 0; i++)
        rc = s_identity (keys, names [i], log);
    if (rc == 0)
        rc = s_ca (config, ca, rotate, log);
    zstr_free (&keys);
    zstr_free (&ca);
    zstr_free (&state);
    return rc;
}

int
umb_cli_init (int argc, char **argv)
{
    //  --split DIR is init's own; the rest are the settings' options
    char *split = NULL;
    bool rotate = false;
    char **rest = calloc ((size_t) argc + 1, sizeof (char *));
    assert (rest);
    int count = 0;
    for (int i = 0; i < argc; i++) {
        if (streq (argv [i], "--rotate-issuer"))
            rotate = true;
        else
        if (streq (argv [i], "--split") && i + 1 < argc && !split)
            split = argv [++i];
        else
        if (strncmp (argv [i], "--split=", 8) == 0 && !split)
            split = argv [i] + 8;
        else
        if (streq (argv [i], "--split")) {
            fprintf (stderr, "umbra init: --split takes a directory, once\n%s", s_usage);
            free (rest);
            return UMB_EXIT_USAGE;
        }
        else
            rest [count++] = argv [i];
    }
    int exit_code = UMB_EXIT_OK;
    umb_config_t *config = umb_program_config ("umbra init", s_usage, false, count, rest,
                                               &exit_code);
    free (rest);
    if (!config)
        return exit_code;
    if (split && !*split) {
        fprintf (stderr, "umbra init: --split takes a directory\n");
        umb_config_destroy (&config);
        return UMB_EXIT_USAGE;
    }
    umb_log_t *log = umb_log_new ("init", UMB_LOG_ERROR, false);
    int rc = split ? s_split (config, split, rotate, log) : s_single (config, rotate, log);
    umb_log_destroy (&log);
    umb_config_destroy (&config);
    return rc ? UMB_EXIT_FAILED : UMB_EXIT_OK;
}

//  ---------------------------------------------------------------- selftest

//  Runs umbra init with argv (NULL-terminated) and its output in out (caller frees)
static int
s_test_run (char *const *argv, char **out)
{
    int argc = 0;
    while (argv [argc])
        argc++;
    fflush (stdout);
    char path [] = "/tmp/umb-init-out-XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    int saved = dup (STDOUT_FILENO);
    dup2 (fd, STDOUT_FILENO);
    int rc = umb_cli_init (argc, (char **) argv);
    fflush (stdout);
    dup2 (saved, STDOUT_FILENO);
    close (saved);
    off_t size = lseek (fd, 0, SEEK_END);
    *out = calloc (1, (size_t) size + 1);
    assert (*out);
    assert (pread (fd, *out, (size_t) size, 0) == size);
    close (fd);
    unlink (path);
    return rc;
}

void
umb_cli_init_test (bool verbose)
{
    if (verbose)
        printf (" * umb_cli_init: ");
    char dir [] = "/tmp/umb-cli-init-XXXXXX";
    assert (mkdtemp (dir));
    char *out = NULL;
    //  The split layout: each service holds its own secret and every public key
    const char *const *names = umb_runtime_identities ();
    char *root = zsys_sprintf ("%s/volumes", dir);
    char *argv [] = { "init", "--split", root, NULL };
    assert (s_test_run (argv, &out) == 0);
    assert (strstr (out, "mesh identity billing") && strstr (out, "(made,"));
    assert (strstr (out, "CA ") && strstr (out, "(made; root SHA-256 "));
    for (size_t i = 0; names [i]; i++)
        for (size_t j = 0; names [j]; j++) {
            char *secret = zsys_sprintf ("%s/%s/keys/%s.key", root, names [i],
                                         names [j]);
            char *public = zsys_sprintf ("%s/%s/keys/%s.pub", root, names [i],
                                         names [j]);
            struct stat st;
            assert ((stat (secret, &st) == 0) == (i == j));
            assert (i != j || (st.st_mode & 0777) == 0600);
            char *own_dir = zsys_sprintf ("%s/%s/keys", root, names [j]);
            char *their_dir = zsys_sprintf ("%s/%s/keys", root, names [i]);
            char *mine = umb_keys_public (own_dir, names [j]);
            char *copied = umb_keys_public (their_dir, names [j]);
            assert (mine && copied && streq (mine, copied));
            zstr_free (&own_dir);
            zstr_free (&their_dir);
            assert (access (public, R_OK) == 0);
            zstr_free (&secret);
            zstr_free (&public);
            zstr_free (&mine);
            zstr_free (&copied);
        }
    char *root_key = zsys_sprintf ("%s/certs/certs/ca/root.key", root);
    struct stat st;
    assert (stat (root_key, &st) == 0 && (st.st_mode & 077) == 0);
    //  Again: everything is kept, nothing made
    char *first = out;
    assert (s_test_run (argv, &out) == 0);
    assert (!strstr (out, "made"));
    char *line = strstr (first, "mesh identity auth");
    assert (line && strstr (out, "mesh identity auth"));
    assert (strncmp (line, strstr (out, "mesh identity auth"), 60) == 0);
    zstr_free (&first);
    zstr_free (&out);
    //  One state for every service
    char *state = zsys_sprintf ("%s/state", dir);
    char *single [] = { "init", "--state", state, NULL };
    assert (s_test_run (single, &out) == 0);
    char *ca_root = zsys_sprintf ("%s/certs/ca/root.pem", state);
    char *auth_key = zsys_sprintf ("%s/keys/auth.key", state);
    assert (access (ca_root, R_OK) == 0 && access (auth_key, R_OK) == 0);
    assert (strstr (out, ", issues;") && !strstr (out, "answers for what it issued"));
    zstr_free (&out);
    //  A new issuing CA: it issues, the first answers for what it issued, and
    //  both are there at the next load
    char *rotate [] = { "init", "--state", state, "--rotate-issuer", NULL };
    assert (s_test_run (rotate, &out) == 0);
    assert (strstr (out, "(made, issues;") && strstr (out, "(kept, answers for what it issued;"));
    zstr_free (&out);
    assert (s_test_run (single, &out) == 0);
    assert (strstr (out, "(kept, issues;") && strstr (out, "(kept, answers for what it issued;")
            && !strstr (out, "made"));
    zstr_free (&out);
    char *issuers = zsys_sprintf ("%s/certs/ca/issuers", state);
    assert (access (issuers, R_OK) == 0);
    zstr_free (&issuers);
    //  Nothing to rotate where there is no CA
    char *empty = zsys_sprintf ("%s/empty", dir);
    char *nothing [] = { "init", "--state", empty, "--rotate-issuer", NULL };
    assert (s_test_run (nothing, &out) == UMB_EXIT_FAILED);
    zstr_free (&out);
    zstr_free (&empty);
    //  Usage errors
    char *bad [] = { "init", "--split", NULL };
    assert (s_test_run (bad, &out) == UMB_EXIT_USAGE);
    zstr_free (&out);
    char *unknown [] = { "init", "--bogus", NULL };
    assert (s_test_run (unknown, &out) == UMB_EXIT_USAGE);
    zstr_free (&out);
    zstr_free (&ca_root);
    zstr_free (&auth_key);
    zstr_free (&state);
    zstr_free (&root_key);
    zstr_free (&root);
    umb_testkit_remove_dir (dir);
    if (verbose)
        printf ("OK\n");
}
