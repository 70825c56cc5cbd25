//  umb_keys - CURVE key pairs of mesh identities, kept as files in a key directory
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sodium.h>
#include "umb_keys.h"
#include "umb_testkit.h"

static char *
s_path (const char *dir, const char *name, const char *suffix)
{
    char *path = NULL;
    if (asprintf (&path, "%s/%s.%s", dir, name, suffix) < 0)
        return NULL;
    return path;
}

//  Names become file names: no separators, no dot files.
static bool
s_name_valid (const char *name)
{
    if (!*name || *name == '.' || strlen (name) > 64)
        return false;
    for (const char *c = name; *c; c++)
        if (!(isalnum ((unsigned char) *c) || *c == '-' || *c == '_' || *c == '.'))
            return false;
    return true;
}

//  Writes the whole file under a temporary name first, so no reader ever sees
//  it half-written, then links it into place: link fails if the name exists,
//  which settles a race between two processes making the same identity.
static int
s_publish_file (const char *path, mode_t mode, bool replace, const char *name,
                const char *public_txt, const char *secret_txt)
{
    char *temporary = NULL;
    if (asprintf (&temporary, "%s.tmp.%d", path, (int) getpid ()) < 0)
        return -1;
    unlink (temporary);
    int fd = open (temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        free (temporary);
        return -1;
    }
    char *text = NULL;
    int size = asprintf (&text,
        "#   umbra mesh identity '%s'%s\n"
        "metadata\n"
        "    name = \"%s\"\n"
        "curve\n"
        "    public-key = \"%s\"\n"
        "%s%s%s",
        name, secret_txt ? ": SECRET, keep private" : "", name, public_txt,
        secret_txt ? "    secret-key = \"" : "", secret_txt ? secret_txt : "",
        secret_txt ? "\"\n" : "");
    int rc = -1;
    if (size > 0 && write (fd, text, (size_t) size) == size && fsync (fd) == 0)
        rc = 0;
    if (text) {
        sodium_memzero (text, (size_t) size);
        free (text);
    }
    close (fd);
    if (rc == 0)
        rc = replace ? rename (temporary, path) : link (temporary, path);
    int saved = errno;
    unlink (temporary);
    free (temporary);
    errno = saved;
    return rc;
}

zcert_t *
umb_keys_load (const char *dir, const char *name, bool create, umb_log_t *log)
{
    assert (dir && name);
    if (!s_name_valid (name)) {
        umb_log_error (log, "keys: '%s' is not a valid identity name", name);
        return NULL;
    }
    if (mkdir (dir, 0700) && errno != EEXIST) {
        umb_log_error (log, "keys: cannot create %s: %s", dir, strerror (errno));
        return NULL;
    }
    char *secret_path = s_path (dir, name, "key");
    char *public_path = s_path (dir, name, "pub");
    zcert_t *cert = NULL;
    struct stat st;
    if (!secret_path || !public_path)
        goto done;
    if (stat (secret_path, &st) == 0) {
load:
        if (st.st_mode & 077) {
            umb_log_error (log, "keys: %s is readable by group or others (mode %03o); refusing it",
                           secret_path, (unsigned) (st.st_mode & 0777));
            goto done;
        }
        cert = zcert_load (secret_path);
        if (!cert || zcert_secret_txt (cert) [0] == 0
        ||  streq (zcert_secret_txt (cert), "0000000000000000000000000000000000000000")) {
            umb_log_error (log, "keys: %s is not a valid key file", secret_path);
            zcert_destroy (&cert);
        }
        goto done;
    }
    if (!create) {
        umb_log_error (log, "keys: %s does not exist (mesh.make_keys is off: `umbra init` makes "
                       "the key pairs)", secret_path);
        goto done;
    }
    cert = zcert_new ();
    if (!cert)
        goto done;
    if (s_publish_file (secret_path, 0600, false, name, zcert_public_txt (cert),
                        zcert_secret_txt (cert))) {
        zcert_destroy (&cert);
        if (errno == EEXIST && stat (secret_path, &st) == 0)
            goto load;          //  another process made it first: theirs counts
        umb_log_error (log, "keys: cannot write %s: %s", secret_path, strerror (errno));
        goto done;
    }
    if (s_publish_file (public_path, 0644, true, name, zcert_public_txt (cert), NULL)) {
        umb_log_error (log, "keys: cannot write %s: %s", public_path, strerror (errno));
        unlink (secret_path);
        zcert_destroy (&cert);
        goto done;
    }
    umb_log_info (log, "keys: created mesh identity '%s' (public key %s)", name,
                  zcert_public_txt (cert));
done:
    free (secret_path);
    free (public_path);
    return cert;
}

char *
umb_keys_public (const char *dir, const char *name)
{
    assert (dir && name);
    if (!s_name_valid (name))
        return NULL;
    char *path = s_path (dir, name, "pub");
    zcert_t *cert = path ? zcert_load (path) : NULL;
    free (path);
    if (!cert) {
        //  The winner of a creation race writes the .pub just after the .key
        path = s_path (dir, name, "key");
        cert = path ? zcert_load (path) : NULL;
        free (path);
    }
    char *result = NULL;
    if (cert && strlen (zcert_public_txt (cert)) == 40)
        result = strdup (zcert_public_txt (cert));
    zcert_destroy (&cert);
    return result;
}

void
umb_keys_test (bool verbose)
{
    if (verbose)
        printf (" * umb_keys: ");
    char dir [] = "/tmp/umb-keys-XXXXXX";
    assert (mkdtemp (dir));
    char sub [64];
    snprintf (sub, sizeof (sub), "%s/keys", dir);
    zcert_t *first = umb_keys_load (sub, "auth", true, NULL);
    assert (first);
    char path [128];
    snprintf (path, sizeof (path), "%s/auth.key", sub);
    struct stat st;
    assert (stat (path, &st) == 0 && (st.st_mode & 0777) == 0600);
    zcert_t *again = umb_keys_load (sub, "auth", true, NULL);
    assert (again);
    assert (streq (zcert_public_txt (first), zcert_public_txt (again)));
    assert (streq (zcert_secret_txt (first), zcert_secret_txt (again)));
    char *public_txt = umb_keys_public (sub, "auth");
    assert (public_txt && streq (public_txt, zcert_public_txt (first)));
    free (public_txt);
    assert (umb_keys_public (sub, "nobody") == NULL);
    assert (umb_keys_load (sub, "../evil", true, NULL) == NULL);
    //  Without create, only what exists is loaded: nothing is made
    zcert_t *loaded = umb_keys_load (sub, "auth", false, NULL);
    assert (loaded && streq (zcert_secret_txt (loaded), zcert_secret_txt (first)));
    zcert_destroy (&loaded);
    assert (umb_keys_load (sub, "billing", false, NULL) == NULL);
    assert (umb_keys_public (sub, "billing") == NULL);

    //  Processes racing to make one identity all end up with the same key
    char race [96];
    snprintf (race, sizeof (race), "%s/race", dir);
    int pipes [2];
    assert (pipe (pipes) == 0);
    for (int child = 0; child < 4; child++)
        if (fork () == 0) {
            zcert_t *mine = umb_keys_load (race, "contested", true, NULL);
            char line [41] = "";
            if (mine)
                memcpy (line, zcert_public_txt (mine), 40);
            _exit (write (pipes [1], line, 40) == 40 ? 0 : 1);
        }
    close (pipes [1]);
    char *winner = NULL;
    for (int child = 0; child < 4; child++) {
        char line [41] = "";
        assert (read (pipes [0], line, 40) == 40);
        assert (line [0]);              //  no child failed
        if (!winner)
            winner = strdup (line);
        assert (streq (winner, line));
    }
    close (pipes [0]);
    while (wait (NULL) > 0)
        ;
    char *race_public = umb_keys_public (race, "contested");
    assert (race_public && streq (race_public, winner));
    free (race_public);
    free (winner);

    //  A secret key readable by others is refused
    assert (chmod (path, 0644) == 0);
    assert (umb_keys_load (sub, "auth", true, NULL) == NULL);
    //  A corrupt key file is refused
    assert (unlink (path) == 0);
    int fd = open (path, O_WRONLY | O_CREAT, 0600);
    assert (fd >= 0);
    assert (write (fd, "garbage\n", 8) == 8);
    close (fd);
    assert (umb_keys_load (sub, "auth", true, NULL) == NULL);

    zcert_destroy (&first);
    zcert_destroy (&again);
    umb_testkit_remove_dir (dir);
    if (verbose)
        printf ("OK\n");
}
