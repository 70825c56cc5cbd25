//  umb_cli_keys - `umbra keys generate` and `umbra checksum`
#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <jansson.h>
#include "umb_cli_keys.h"
#include "umb_hex.h"
#include "umb_sig.h"

#define S_EXIT_OK      0
#define S_EXIT_FAILED  1
#define S_EXIT_USAGE   2

#define S_DEFAULT_PREFIX "umbra-key"

static const char s_keys_usage [] =
    "usage: umbra keys generate [--type ed25519|ecdsa|ecdsa-p384|rsa] [--out PREFIX]\n"
    "\n"
    "Makes a participant's signing key: PREFIX.key (private, PKCS#8 PEM, mode 0600)\n"
    "and PREFIX.pub (public PEM: the manifest's userKey). The default type is\n"
    "ed25519 and the default PREFIX \"umbra-key\"; ecdsa is P-256, rsa is 3072 bits\n"
    "(ec-p256, ec-p384 and rsa-3072 are accepted too).\n"
    "Existing files are never overwritten.\n";

static const char s_checksum_usage [] =
    "usage: umbra checksum FILE [--manifest]\n"
    "\n"
    "Prints the file's SHA3-256 as 64 lowercase hex chars: the \"hash\" a manifest\n"
    "names an algorithm or dataset by. With --manifest, prints it as the JSON a\n"
    "manifest entry takes: {\"hash\": \"<hex>\"}.\n";

//  The last three are the names `umbra certs --key-type` uses
static const char *const s_types [] = {
    "ed25519", "ecdsa", "ecdsa-p256", "ecdsa-p384", "rsa", "ec-p256", "ec-p384", "rsa-3072", NULL
};

//  Matches "--name VALUE", "--name=VALUE" or "-s VALUE" at argv [*index];
//  sets *value (NULL when the value is missing) and advances *index.
static bool
s_option (int argc, char **argv, int *index, const char *name, const char *short_name,
          const char **value)
{
    const char *arg = argv [*index];
    size_t name_len = strlen (name);
    if (strncmp (arg, name, name_len) == 0 && arg [name_len] == '=') {
        *value = arg + name_len + 1;
        return true;
    }
    if (strcmp (arg, name) == 0 || (short_name && strcmp (arg, short_name) == 0)) {
        *value = *index + 1 < argc ? argv [++*index] : NULL;
        return true;
    }
    return false;
}

static int
s_generate (int argc, char **argv, FILE *out, FILE *err)
{
    const char *type = "ed25519";
    const char *prefix = S_DEFAULT_PREFIX;
    for (int i = 2; i < argc; i++) {
        const char *value = NULL;
        if (strcmp (argv [i], "--help") == 0 || strcmp (argv [i], "-h") == 0) {
            fputs (s_keys_usage, out);
            return S_EXIT_OK;
        }
        if (s_option (argc, argv, &i, "--type", "-t", &value)) {
            if (!value) {
                fprintf (err, "umbra: --type needs a value\n");
                return S_EXIT_USAGE;
            }
            type = value;
        }
        else
        if (s_option (argc, argv, &i, "--out", "-o", &value)) {
            if (!value || !*value) {
                fprintf (err, "umbra: --out needs a value\n");
                return S_EXIT_USAGE;
            }
            prefix = value;
        }
        else {
            fprintf (err, "umbra: unexpected '%s' for keys generate\n%s", argv [i], s_keys_usage);
            return S_EXIT_USAGE;
        }
    }
    bool known = false;
    for (size_t i = 0; s_types [i]; i++)
        known = known || strcmp (s_types [i], type) == 0;
    if (!known) {
        fprintf (err, "umbra: unknown key type '%s' (ed25519, ecdsa, ecdsa-p384, rsa)\n", type);
        return S_EXIT_USAGE;
    }
    char private_path [PATH_MAX], public_path [PATH_MAX];
    if (snprintf (private_path, sizeof (private_path), "%s.key", prefix) >= (int) sizeof (private_path)
    ||  snprintf (public_path, sizeof (public_path), "%s.pub", prefix) >= (int) sizeof (public_path)) {
        fprintf (err, "umbra: --out is too long\n");
        return S_EXIT_USAGE;
    }
    EVP_PKEY *key = umb_sig_key_generate (type);
    if (!key) {
        fprintf (err, "umbra: cannot generate a %s key\n", type);
        return S_EXIT_FAILED;
    }
    char reason [512];
    int rc = umb_sig_key_save (key, private_path, public_path, reason, sizeof (reason));
    umb_sig_key_type_t kind = umb_sig_key_check (key, NULL, 0);
    EVP_PKEY_free (key);
    if (rc) {
        fprintf (err, "umbra: %s\n", reason);
        return S_EXIT_FAILED;
    }
    fprintf (out, "%s key written: %s (private, mode 0600: keep it secret) and %s "
                  "(public: the manifest's userKey)\n",
             umb_sig_key_type_name (kind), private_path, public_path);
    return S_EXIT_OK;
}

int
umb_cli_keys_run (int argc, char **argv, FILE *out, FILE *err)
{
    assert (out && err);
    if (argc < 2) {
        fputs (s_keys_usage, err);
        return S_EXIT_USAGE;
    }
    const char *command = argv [1];
    if (strcmp (command, "help") == 0 || strcmp (command, "--help") == 0 || strcmp (command, "-h") == 0) {
        fputs (s_keys_usage, out);
        return S_EXIT_OK;
    }
    if (strcmp (command, "generate") == 0)
        return s_generate (argc, argv, out, err);
    fprintf (err, "umbra: unknown command 'keys %s'\n%s", command, s_keys_usage);
    return S_EXIT_USAGE;
}

int
umb_cli_keys (int argc, char **argv)
{
    return umb_cli_keys_run (argc, argv, stdout, stderr);
}

int
umb_cli_checksum_run (int argc, char **argv, FILE *out, FILE *err)
{
    assert (out && err);
    const char *path = NULL;
    bool manifest = false;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        if (!options_done && strcmp (arg, "--") == 0)
            options_done = true;
        else
        if (!options_done && (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0)) {
            fputs (s_checksum_usage, out);
            return S_EXIT_OK;
        }
        else
        if (!options_done && strcmp (arg, "--manifest") == 0)
            manifest = true;
        else
        if (!options_done && arg [0] == '-' && arg [1]) {
            fprintf (err, "umbra: unknown option '%s' for checksum\n%s", arg, s_checksum_usage);
            return S_EXIT_USAGE;
        }
        else
        if (path) {
            fprintf (err, "umbra: checksum takes one FILE\n%s", s_checksum_usage);
            return S_EXIT_USAGE;
        }
        else
            path = arg;
    }
    if (!path) {
        fputs (s_checksum_usage, err);
        return S_EXIT_USAGE;
    }
    uint8_t hash [UMB_SIG_HASH_SIZE];
    char reason [512];
    if (umb_sig_sha3_file (strcmp (path, "-") == 0 ? "/dev/stdin" : path, hash, NULL,
                           reason, sizeof (reason))) {
        fprintf (err, "umbra: %s\n", reason);
        return S_EXIT_FAILED;
    }
    char hex [UMB_SIG_HASH_HEX_SIZE];
    umb_hex_encode (hash, sizeof (hash), hex);
    if (manifest)
        fprintf (out, "{\"hash\": \"%s\"}\n", hex);
    else
        fprintf (out, "%s\n", hex);
    return S_EXIT_OK;
}

int
umb_cli_checksum (int argc, char **argv)
{
    return umb_cli_checksum_run (argc, argv, stdout, stderr);
}

//  ---------------------------------------------------------------------------
//  Selftest

//  Runs fn with argv (NULL-terminated), capturing out and err (the caller
//  frees them); returns the exit code.
static int
s_test_run (int (*fn) (int, char **, FILE *, FILE *), const char **args, char **out_text, char **err_text)
{
    char *argv [16];
    int argc = 0;
    while (args [argc]) {
        assert (argc < 15);
        argv [argc] = strdup (args [argc]);
        argc++;
    }
    argv [argc] = NULL;
    size_t out_size = 0, err_size = 0;
    FILE *out = open_memstream (out_text, &out_size);
    FILE *err = open_memstream (err_text, &err_size);
    assert (out && err);
    int rc = fn (argc, argv, out, err);
    fclose (out);
    fclose (err);
    for (int i = 0; i < argc; i++)
        free (argv [i]);
    return rc;
}

void
umb_cli_keys_test (bool verbose)
{
    printf (" * umb_cli_keys: ");
    char dir [] = "/tmp/umb_cli_keys_test.XXXXXX";
    assert (mkdtemp (dir));
    char prefix [PATH_MAX], key_path [PATH_MAX + 8], pub_path [PATH_MAX + 8], reason [256];
    char *out = NULL, *err = NULL;

    //  Every type; the files load as keys of that type, and sign and verify
    static const struct {
        const char *type;
        umb_sig_key_type_t expect;
    } types [] = {
        { "ed25519",    UMB_SIG_KEY_ED25519 },
        { "ecdsa",      UMB_SIG_KEY_ECDSA_P256 },
        { "ecdsa-p384", UMB_SIG_KEY_ECDSA_P384 },
        { "rsa",        UMB_SIG_KEY_RSA },
        { NULL }
    };
    for (size_t i = 0; types [i].type; i++) {
        snprintf (prefix, sizeof (prefix), "%s/%s", dir, types [i].type);
        snprintf (key_path, sizeof (key_path), "%s.key", prefix);
        snprintf (pub_path, sizeof (pub_path), "%s.pub", prefix);
        const char *args [] = { "keys", "generate", "--type", types [i].type, "--out", prefix, NULL };
        assert (s_test_run (umb_cli_keys_run, args, &out, &err) == 0);
        assert (strstr (out, key_path) && strstr (out, pub_path));
        assert (*err == 0);
        free (out);
        free (err);
        struct stat st;
        assert (stat (key_path, &st) == 0 && (st.st_mode & 0777) == 0600);
        assert (stat (pub_path, &st) == 0 && (st.st_mode & 0777) == 0644);
        EVP_PKEY *priv = umb_sig_private_load (key_path, reason, sizeof (reason));
        EVP_PKEY *pub = umb_sig_public_load (pub_path, reason, sizeof (reason));
        assert (priv && pub);
        assert (umb_sig_key_check (pub, NULL, 0) == types [i].expect);
        assert (umb_sig_key_equal (priv, pub));
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        assert (umb_sig_sign (priv, (const uint8_t *) "x", 1, &sig, &sig_len) == 0);
        assert (umb_sig_verify (pub, (const uint8_t *) "x", 1, sig, sig_len, reason, sizeof (reason)) == 0);
        free (sig);
        EVP_PKEY_free (priv);
        EVP_PKEY_free (pub);
        //  Never overwritten: exit 1 with the reason, the files untouched
        struct stat before;
        assert (stat (key_path, &before) == 0);
        const char *again [] = { "keys", "generate", "--type=ed25519", "--out=", NULL };
        char out_arg [PATH_MAX + 8];
        snprintf (out_arg, sizeof (out_arg), "--out=%s", prefix);
        again [3] = out_arg;
        assert (s_test_run (umb_cli_keys_run, again, &out, &err) == 1);
        assert (strstr (err, "exists"));
        free (out);
        free (err);
        assert (stat (key_path, &st) == 0 && st.st_ino == before.st_ino && st.st_size == before.st_size);
        unlink (key_path);
        unlink (pub_path);
    }
    //  The default prefix, in the current directory
    char cwd [PATH_MAX];
    assert (getcwd (cwd, sizeof (cwd)));
    assert (chdir (dir) == 0);
    const char *defaults [] = { "keys", "generate", NULL };
    assert (s_test_run (umb_cli_keys_run, defaults, &out, &err) == 0);
    assert (strstr (out, "ed25519 key written: umbra-key.key"));
    free (out);
    free (err);
    assert (access ("umbra-key.key", F_OK) == 0 && access ("umbra-key.pub", F_OK) == 0);
    unlink ("umbra-key.key");
    unlink ("umbra-key.pub");
    assert (chdir (cwd) == 0);

    //  `umbra certs`' key type names work too
    snprintf (prefix, sizeof (prefix), "%s/alias", dir);
    const char *alias [] = { "keys", "generate", "--type", "ec-p384", "--out", prefix, NULL };
    assert (s_test_run (umb_cli_keys_run, alias, &out, &err) == 0);
    assert (strstr (out, "ecdsa-p384 key written"));
    free (out);
    free (err);
    snprintf (key_path, sizeof (key_path), "%s.key", prefix);
    snprintf (pub_path, sizeof (pub_path), "%s.pub", prefix);
    unlink (key_path);
    unlink (pub_path);

    //  Usage errors: exit 2
    const char *bad_type [] = { "keys", "generate", "--type", "dsa", NULL };
    assert (s_test_run (umb_cli_keys_run, bad_type, &out, &err) == 2);
    assert (strstr (err, "unknown key type 'dsa'"));
    free (out);
    free (err);
    const char *no_value [] = { "keys", "generate", "--type", NULL };
    assert (s_test_run (umb_cli_keys_run, no_value, &out, &err) == 2);
    free (out);
    free (err);
    const char *unknown [] = { "keys", "generate", "--force", NULL };
    assert (s_test_run (umb_cli_keys_run, unknown, &out, &err) == 2);
    free (out);
    free (err);
    const char *no_command [] = { "keys", NULL };
    assert (s_test_run (umb_cli_keys_run, no_command, &out, &err) == 2);
    free (out);
    free (err);
    const char *other [] = { "keys", "list", NULL };
    assert (s_test_run (umb_cli_keys_run, other, &out, &err) == 2);
    free (out);
    free (err);
    const char *help [] = { "keys", "generate", "--help", NULL };
    assert (s_test_run (umb_cli_keys_run, help, &out, &err) == 0);
    assert (strstr (out, "usage: umbra keys generate"));
    free (out);
    free (err);
    //  Cannot write there: exit 1
    snprintf (prefix, sizeof (prefix), "%s/missing/k", dir);
    const char *nowhere [] = { "keys", "generate", "-o", prefix, NULL };
    assert (s_test_run (umb_cli_keys_run, nowhere, &out, &err) == 1);
    free (out);
    free (err);

    //  checksum: SHA3-256("abc") (FIPS 202), plain and in the manifest's form
    char file [PATH_MAX + 8];
    snprintf (file, sizeof (file), "%s/abc.txt", dir);
    FILE *handle = fopen (file, "w");
    assert (handle);
    fputs ("abc", handle);
    fclose (handle);
    static const char abc [] = "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532";
    const char *sum [] = { "checksum", file, NULL };
    assert (s_test_run (umb_cli_checksum_run, sum, &out, &err) == 0);
    assert (strcmp (out, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532\n") == 0);
    free (out);
    free (err);
    const char *sum_manifest [] = { "checksum", "--manifest", file, NULL };
    assert (s_test_run (umb_cli_checksum_run, sum_manifest, &out, &err) == 0);
    json_error_t error;
    json_t *snippet = json_loads (out, 0, &error);
    assert (snippet && json_object_size (snippet) == 1);
    assert (strcmp (json_string_value (json_object_get (snippet, "hash")), abc) == 0);
    json_decref (snippet);
    free (out);
    free (err);
    const char *missing [] = { "checksum", "/nonexistent/file", NULL };
    assert (s_test_run (umb_cli_checksum_run, missing, &out, &err) == 1);
    assert (strstr (err, "cannot open"));
    free (out);
    free (err);
    const char *none [] = { "checksum", NULL };
    assert (s_test_run (umb_cli_checksum_run, none, &out, &err) == 2);
    free (out);
    free (err);
    const char *two [] = { "checksum", file, file, NULL };
    assert (s_test_run (umb_cli_checksum_run, two, &out, &err) == 2);
    free (out);
    free (err);
    const char *bad_option [] = { "checksum", "--sha256", file, NULL };
    assert (s_test_run (umb_cli_checksum_run, bad_option, &out, &err) == 2);
    free (out);
    free (err);
    const char *directory [] = { "checksum", dir, NULL };
    assert (s_test_run (umb_cli_checksum_run, directory, &out, &err) == 1);
    free (out);
    free (err);
    unlink (file);
    assert (rmdir (dir) == 0);
    printf ("OK\n");
}
