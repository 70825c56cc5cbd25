//  umb_cli_backup - `umbra backup` and `umbra restore`
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sodium.h>
#include <sqlite3.h>
#include <czmq.h>
#include "umb_cli_backup.h"
#include "umb_config.h"
#include "umb_hex.h"
#include "umb_cli_testkit.h"

#define S_EXIT_OK      0
#define S_EXIT_FAILED  1
#define S_EXIT_USAGE   2

#define S_MANIFEST       "MANIFEST"
#define S_MANIFEST_TMP   "MANIFEST.tmp"
#define S_FORMAT         "umbra-backup 1"
#define S_MANIFEST_MAX   (16 * 1024 * 1024)
#define S_CHUNK          65536
#define S_SHA_HEX        (crypto_hash_sha256_BYTES * 2 + 1)
#define S_SIZE_MAX       (INT64_C (1) << 53)
#define S_PAGES_PER_STEP 256            //  pages copied by each sqlite3_backup_step
#define S_BUSY_SLEEP_MS  20
#define S_BUSY_TRIES     250            //  5 s of SQLITE_BUSY/LOCKED in a row ends a copy
#define S_BUSY_TIMEOUT   5000

static const char s_backup_usage [] =
    "usage: umbra backup --out BACKUP_DIR [--state DIR] [--config FILE]\n"
    "\n"
    "Copies the platform's state while it runs: each SQLite database through the\n"
    "online backup API (all snapshots taken before any copy; each copy must pass\n"
    "PRAGMA integrity_check), then the keys and the CA with their modes, then\n"
    "BACKUP_DIR/MANIFEST (each file's size and SHA-256, the version, the time).\n"
    "BACKUP_DIR is made with mode 0700 and must be empty or absent. It holds the\n"
    "platform's secret keys: keep it as such.\n"
    "\n"
    "options:\n"
    "  --out DIR       where the backup goes\n"
    "  --state DIR     state directory (default: the settings, else $XDG_DATA_HOME/umbra)\n"
    "  --config FILE   settings file (INI: [section] key = value)\n"
    "Settings also come from UMBRA_* environment variables; see `umbra config`.\n";

static const char s_restore_usage [] =
    "usage: umbra restore --from BACKUP_DIR [--state NEW_DIR] [--config FILE]\n"
    "\n"
    "Checks every file of the backup against its MANIFEST (size and SHA-256; a\n"
    "changed, missing or extra file refuses the whole restore), then copies them\n"
    "into NEW_DIR, which must be empty or absent, in the default layout with\n"
    "their modes. Start the platform on NEW_DIR afterwards.\n"
    "\n"
    "options:\n"
    "  --from DIR      the backup (made by `umbra backup`)\n"
    "  --state DIR     state directory to fill (default: the settings, else\n"
    "                  $XDG_DATA_HOME/umbra)\n"
    "  --config FILE   settings file (INI: [section] key = value)\n"
    "Settings also come from UMBRA_* environment variables; see `umbra config`.\n";

//  Settings that move a database or a directory of the state out of its
//  default place, and that place (in the state and in a backup)
static const struct {
    const char *setting;
    const char *path;
    bool        database;
} s_relocations [] = {
    { "auth.db",         "auth/auth.db",                 true },
    { "certs.db",        "certs/certs.db",               true },
    { "computations.db", "computations/computations.db", true },
    { "backends.db",     "backends/backends.db",         true },
    { "billing.db",      "billing/billing.db",           true },
    { "mesh.keys_dir",   "keys",                         false },
    { "certs.ca_dir",    "certs/ca",                     false },
    { NULL }
};

//  Directories of the state that belong to running CVMs (their agents' working
//  directories, the links' control sockets), not to the platform's state
static const char *const s_excluded [] = { "backends/cvms", "backends/links", NULL };

//  One file of a backup
typedef struct {
    char    *source;            //  where it is read from: the state, or the backup
    char    *path;              //  relative: in the backup, and in a state
    bool     database;
    mode_t   mode;
    dev_t    dev;
    ino_t    ino;
    int64_t  size;
    char     sha256 [S_SHA_HEX];
    sqlite3 *db;                //  backup: the original, in a read transaction (its snapshot)
} s_entry_t;

//  One run of a command
typedef struct {
    const char *name;           //  "umbra backup", for messages
    FILE       *out;
    FILE       *err;
    s_entry_t  *entries;
    size_t      count;
    size_t      capacity;
    char      **created;        //  files and directories made, removed again on failure
    bool       *created_dir;
    size_t      created_count;
    size_t      created_capacity;
    char        version [64];   //  restore: the manifest's
    char        time [64];
} s_job_t;

//  What the command line asked for
typedef struct {
    const char *config;
    const char *state;
    const char *dir;            //  --out or --from
} s_args_t;

static void
s_job_init (s_job_t *job, const char *name, FILE *out, FILE *err)
{
    memset (job, 0, sizeof (*job));
    job->name = name;
    job->out = out;
    job->err = err;
}

static void
s_job_end (s_job_t *job)
{
    for (size_t i = 0; i < job->count; i++) {
        s_entry_t *entry = &job->entries [i];
        if (entry->db)
            sqlite3_close_v2 (entry->db);
        free (entry->source);
        free (entry->path);
    }
    free (job->entries);
    for (size_t i = 0; i < job->created_count; i++)
        free (job->created [i]);
    free (job->created);
    free (job->created_dir);
    memset (job, 0, sizeof (*job));
}

static s_entry_t *
s_entry_add (s_job_t *job, const char *source, const char *path, bool database)
{
    if (job->count == job->capacity) {
        job->capacity = job->capacity ? job->capacity * 2 : 32;
        job->entries = realloc (job->entries, job->capacity * sizeof (s_entry_t));
        assert (job->entries);
    }
    s_entry_t *entry = &job->entries [job->count++];
    memset (entry, 0, sizeof (*entry));
    entry->source = strdup (source);
    entry->path = strdup (path);
    assert (entry->source && entry->path);
    entry->database = database;
    return entry;
}

static s_entry_t *
s_entry_find (s_job_t *job, const char *path)
{
    for (size_t i = 0; i < job->count; i++)
        if (streq (job->entries [i].path, path))
            return &job->entries [i];
    return NULL;
}

static int
s_entry_compare (const void *a, const void *b)
{
    return strcmp (((const s_entry_t *) a)->path, ((const s_entry_t *) b)->path);
}

static void
s_created_add (s_job_t *job, const char *path, bool dir)
{
    if (job->created_count == job->created_capacity) {
        job->created_capacity = job->created_capacity ? job->created_capacity * 2 : 64;
        job->created = realloc (job->created, job->created_capacity * sizeof (char *));
        job->created_dir = realloc (job->created_dir, job->created_capacity * sizeof (bool));
        assert (job->created && job->created_dir);
    }
    job->created [job->created_count] = strdup (path);
    assert (job->created [job->created_count]);
    job->created_dir [job->created_count++] = dir;
}

//  Removes what this run made, newest first
static void
s_created_undo (s_job_t *job)
{
    while (job->created_count > 0) {
        size_t i = --job->created_count;
        if (job->created_dir [i])
            rmdir (job->created [i]);
        else {
            unlink (job->created [i]);
            //  SQLite's files beside a copy that failed
            static const char *const suffixes [] = { "-journal", "-wal", "-shm", NULL };
            for (size_t s = 0; suffixes [s]; s++) {
                char *side = zsys_sprintf ("%s%s", job->created [i], suffixes [s]);
                unlink (side);
                zstr_free (&side);
            }
        }
        free (job->created [i]);
    }
}

static bool
s_ends_with (const char *text, const char *suffix)
{
    size_t text_size = strlen (text), suffix_size = strlen (suffix);
    return text_size >= suffix_size && streq (text + text_size - suffix_size, suffix);
}

static const char *
s_getenv (char **envp, const char *name)
{
    size_t size = strlen (name);
    for (char **entry = envp; *entry; entry++)
        if (strncmp (*entry, name, size) == 0 && (*entry) [size] == '=')
            return *entry + size + 1;
    return NULL;
}

//  A path a manifest may name: relative, no empty, "." or ".." component, no
//  control character, and not the manifest itself
static bool
s_path_valid (const char *path)
{
    size_t size = strlen (path);
    if (size == 0 || size >= PATH_MAX / 2 || path [0] == '/' || path [size - 1] == '/'
    ||  streq (path, S_MANIFEST) || streq (path, S_MANIFEST_TMP))
        return false;
    for (const char *c = path; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            return false;
    const char *component = path;
    while (true) {
        const char *slash = strchr (component, '/');
        size_t length = slash ? (size_t) (slash - component) : strlen (component);
        if (length == 0
        ||  (length == 1 && component [0] == '.')
        ||  (length == 2 && component [0] == '.' && component [1] == '.'))
            return false;
        if (!slash)
            return true;
        component = slash + 1;
    }
}

//  An absolute path without symbolic links or "..", for a path that may not
//  exist yet (its deepest existing ancestor is resolved). The caller frees.
static char *
s_absolute (const char *path)
{
    char *resolved = realpath (path, NULL);
    if (resolved || errno != ENOENT)
        return resolved;
    char *copy = strdup (path), *copy2 = strdup (path);
    assert (copy && copy2);
    char *parent = dirname (copy);
    const char *base = basename (copy2);
    char *result = NULL;
    if (!streq (parent, path) && !streq (base, "..") && !streq (base, ".")) {
        char *resolved_parent = s_absolute (parent);
        if (resolved_parent)
            result = streq (resolved_parent, "/") ? zsys_sprintf ("/%s", base)
                                                  : zsys_sprintf ("%s/%s", resolved_parent, base);
        free (resolved_parent);
    }
    free (copy);
    free (copy2);
    return result;
}

//  True if inner is outer or under it (both absolute, resolved)
static bool
s_inside (const char *inner, const char *outer)
{
    size_t size = strlen (outer);
    if (streq (outer, "/"))
        return true;
    return strncmp (inner, outer, size) == 0 && (inner [size] == 0 || inner [size] == '/');
}

//  0 when path is an empty directory, 1 when it does not exist, -1 otherwise
//  (with the reason)
static int
s_empty_or_absent (s_job_t *job, const char *path, const char *what)
{
    struct stat st;
    if (lstat (path, &st)) {
        if (errno == ENOENT)
            return 1;
        fprintf (job->err, "%s: %s: %s\n", job->name, path, strerror (errno));
        return -1;
    }
    if (!S_ISDIR (st.st_mode)) {
        fprintf (job->err, "%s: %s %s is not a directory\n", job->name, what, path);
        return -1;
    }
    DIR *dir = opendir (path);
    if (!dir) {
        fprintf (job->err, "%s: %s: %s\n", job->name, path, strerror (errno));
        return -1;
    }
    struct dirent *item;
    bool empty = true;
    while ((item = readdir (dir)))
        if (!streq (item->d_name, ".") && !streq (item->d_name, ".."))
            empty = false;
    closedir (dir);
    if (!empty) {
        fprintf (job->err, "%s: %s %s is not empty; refusing to write into it\n", job->name,
                 what, path);
        return -1;
    }
    return 0;
}

//  mkdir -p with mode 0700, remembering what it made
static int
s_make_dirs (s_job_t *job, const char *path)
{
    char *copy = strdup (path);
    assert (copy);
    int rc = 0;
    for (char *slash = copy; rc == 0 && slash; ) {
        slash = strchr (slash + 1, '/');
        if (slash)
            *slash = 0;
        if (mkdir (copy, 0700) == 0)
            s_created_add (job, copy, true);
        else
        if (errno != EEXIST) {
            fprintf (job->err, "%s: cannot create %s: %s\n", job->name, copy, strerror (errno));
            rc = -1;
        }
        if (slash)
            *slash = '/';
    }
    free (copy);
    return rc;
}

//  Makes the directories of root/path above the file
static int
s_make_parents (s_job_t *job, const char *root, const char *path)
{
    char *full = zsys_sprintf ("%s/%s", root, path);
    char *slash = strrchr (full, '/');
    *slash = 0;
    int rc = s_make_dirs (job, full);
    zstr_free (&full);
    return rc;
}

static int
s_write_all (int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t written = write (fd, data, size);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return -1;
        data += written;
        size -= (size_t) written;
    }
    return 0;
}

//  Reads from to its end, hashing it and, when to >= 0, writing it there.
//  The buffer is wiped: what passes through may be a secret key.
static int
s_stream (int from, int to, int64_t *size, char sha256 [S_SHA_HEX], char *reason,
          size_t reason_size)
{
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    uint8_t buffer [S_CHUNK];
    int64_t total = 0;
    int rc = 0;
    while (rc == 0) {
        ssize_t got = read (from, buffer, sizeof (buffer));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf (reason, reason_size, "cannot read: %s", strerror (errno));
            rc = -1;
        }
        else
        if (got == 0)
            break;
        else {
            crypto_hash_sha256_update (&state, buffer, (size_t) got);
            total += got;
            if (to >= 0 && s_write_all (to, buffer, (size_t) got)) {
                snprintf (reason, reason_size, "cannot write: %s", strerror (errno));
                rc = -1;
            }
        }
    }
    uint8_t digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final (&state, digest);
    sodium_memzero (buffer, sizeof (buffer));
    sodium_memzero (&state, sizeof (state));
    if (rc == 0) {
        umb_hex_encode (digest, sizeof (digest), sha256);
        *size = total;
    }
    return rc;
}

//  Opens a regular file for reading, never through a symbolic link
static int
s_open_regular (const char *path, char *reason, size_t reason_size)
{
    int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf (reason, reason_size, "%s", errno == ENOENT ? "missing" : strerror (errno));
        return -1;
    }
    struct stat st;
    if (fstat (fd, &st) || !S_ISREG (st.st_mode)) {
        snprintf (reason, reason_size, "not a regular file");
        close (fd);
        return -1;
    }
    return fd;
}

//  The size and SHA-256 of the file at path
static int
s_hash_file (const char *path, int64_t *size, char sha256 [S_SHA_HEX], char *reason,
             size_t reason_size)
{
    int fd = s_open_regular (path, reason, reason_size);
    if (fd < 0)
        return -1;
    int rc = s_stream (fd, -1, size, sha256, reason, reason_size);
    close (fd);
    return rc;
}

//  Copies source to the new file dest (never overwritten), hashing what it
//  copies, then gives dest its mode. dest is 0600 until it is complete.
static int
s_copy_file (s_job_t *job, const char *source, const char *dest, mode_t mode, int64_t *size,
             char sha256 [S_SHA_HEX])
{
    char reason [256];
    int from = s_open_regular (source, reason, sizeof (reason));
    if (from < 0) {
        fprintf (job->err, "%s: %s: %s\n", job->name, source, reason);
        return -1;
    }
    int to = open (dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (to < 0) {
        fprintf (job->err, "%s: cannot create %s: %s\n", job->name, dest, strerror (errno));
        close (from);
        return -1;
    }
    s_created_add (job, dest, false);
    int rc = s_stream (from, to, size, sha256, reason, sizeof (reason));
    if (rc)
        fprintf (job->err, "%s: copying %s to %s: %s\n", job->name, source, dest, reason);
    else
    if (fchmod (to, mode) || fsync (to)) {
        fprintf (job->err, "%s: %s: %s\n", job->name, dest, strerror (errno));
        rc = -1;
    }
    close (from);
    if (close (to) && rc == 0) {
        fprintf (job->err, "%s: %s: %s\n", job->name, dest, strerror (errno));
        rc = -1;
    }
    return rc;
}

//  ---------------------------------------------------------------- the manifest

static void
s_time_now (char *text, size_t size)
{
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    strftime (text, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

//  Writes dir/MANIFEST: written as MANIFEST.tmp and renamed once complete, so
//  a backup is whole exactly when it has a MANIFEST. Every entry has its size
//  and hash. The last line counts the files and hashes the lines before it,
//  so a manifest cut short or edited by accident is refused.
static int
s_manifest_write (s_job_t *job, const char *dir, const char *state)
{
    char *text = NULL;
    size_t text_size = 0;
    FILE *body = open_memstream (&text, &text_size);
    assert (body);
    char now [64];
    s_time_now (now, sizeof (now));
    fprintf (body, "%s\nversion %s\ncreated %s\n", S_FORMAT, UMB_VERSION, now);
    bool printable = true;
    for (const char *c = state; *c; c++)
        printable = printable && (unsigned char) *c >= 0x20 && *c != 0x7f;
    if (printable)
        fprintf (body, "state %s\n", state);
    for (size_t i = 0; i < job->count; i++) {
        s_entry_t *entry = &job->entries [i];
        fprintf (body, "file %s %" PRId64 " %04o %s %s\n", entry->sha256, entry->size,
                 (unsigned) entry->mode, entry->database ? "db" : "file", entry->path);
    }
    fclose (body);
    uint8_t digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, (const uint8_t *) text, text_size);
    char hex [S_SHA_HEX];
    umb_hex_encode (digest, sizeof (digest), hex);
    char trailer [128];
    int trailer_size = snprintf (trailer, sizeof (trailer), "end %zu %s\n", job->count, hex);

    char *temporary = zsys_sprintf ("%s/%s", dir, S_MANIFEST_TMP);
    char *final = zsys_sprintf ("%s/%s", dir, S_MANIFEST);
    int rc = -1;
    int fd = open (temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        s_created_add (job, temporary, false);
        if (s_write_all (fd, (const uint8_t *) text, text_size) == 0
        &&  s_write_all (fd, (const uint8_t *) trailer, (size_t) trailer_size) == 0
        &&  fsync (fd) == 0)
            rc = 0;
        if (close (fd))
            rc = -1;
    }
    if (rc == 0 && rename (temporary, final) == 0) {
        //  The name in the undo list follows the file
        free (job->created [job->created_count - 1]);
        job->created [job->created_count - 1] = strdup (final);
        int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd >= 0) {
            fsync (dir_fd);
            close (dir_fd);
        }
    }
    else {
        fprintf (job->err, "%s: cannot write %s: %s\n", job->name, final, strerror (errno));
        rc = -1;
    }
    zstr_free (&temporary);
    zstr_free (&final);
    free (text);
    return rc;
}

//  Parses one "file SHA256 SIZE MODE KIND PATH" line (line without "file ")
static int
s_manifest_entry (s_job_t *job, const char *dir, char *line, char *reason, size_t reason_size)
{
    char *fields [5] = { NULL };
    char *cursor = line;
    for (int i = 0; i < 4; i++) {
        char *space = strchr (cursor, ' ');
        if (!space) {
            snprintf (reason, reason_size, "a file line has too few fields");
            return -1;
        }
        *space = 0;
        fields [i] = cursor;
        cursor = space + 1;
    }
    fields [4] = cursor;
    const char *sha = fields [0], *size_text = fields [1], *mode_text = fields [2];
    const char *kind = fields [3], *path = fields [4];
    if (!s_path_valid (path)) {
        snprintf (reason, reason_size, "names a file outside the backup or an invalid path");
        return -1;
    }
    bool sha_ok = strlen (sha) == S_SHA_HEX - 1;
    for (const char *c = sha; *c && sha_ok; c++)
        sha_ok = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f');
    char *end = NULL;
    errno = 0;
    long long size = strtoll (size_text, &end, 10);
    bool size_ok = *size_text >= '0' && *size_text <= '9' && end && *end == 0 && errno == 0
                && size >= 0 && size <= S_SIZE_MAX;
    long mode = strtol (mode_text, &end, 8);
    bool mode_ok = strlen (mode_text) == 4 && end && *end == 0 && mode >= 0 && mode <= 0777;
    bool kind_ok = streq (kind, "db") || streq (kind, "file");
    if (!sha_ok || !size_ok || !mode_ok || !kind_ok) {
        snprintf (reason, reason_size, "a bad %s for %s",
                  !sha_ok ? "SHA-256" : !size_ok ? "size" : !mode_ok ? "mode" : "kind", path);
        return -1;
    }
    if (s_entry_find (job, path)) {
        snprintf (reason, reason_size, "names %s twice", path);
        return -1;
    }
    char *source = zsys_sprintf ("%s/%s", dir, path);
    s_entry_t *entry = s_entry_add (job, source, path, streq (kind, "db"));
    zstr_free (&source);
    entry->size = size;
    //  Never more than the owner may write, nobody may execute; databases are
    //  the owner's alone
    entry->mode = entry->database ? 0600 : (mode_t) mode & 0644;
    memcpy (entry->sha256, sha, S_SHA_HEX);
    return 0;
}

//  Reads dir/MANIFEST into the job's entries (their sources under dir). 0,
//  or -1 with the reason.
static int
s_manifest_read (s_job_t *job, const char *dir, char *reason, size_t reason_size)
{
    char *path = zsys_sprintf ("%s/%s", dir, S_MANIFEST);
    char why [128];
    int fd = s_open_regular (path, why, sizeof (why));
    zstr_free (&path);
    if (fd < 0) {
        if (streq (why, "missing"))
            snprintf (reason, reason_size, "no %s: not a backup, or an unfinished one",
                      S_MANIFEST);
        else
            snprintf (reason, reason_size, "%s: %s", S_MANIFEST, why);
        return -1;
    }
    struct stat st;
    char *text = NULL;
    int rc = -1;
    if (fstat (fd, &st) || st.st_size > S_MANIFEST_MAX)
        snprintf (reason, reason_size, "%s is too large", S_MANIFEST);
    else {
        text = malloc ((size_t) st.st_size + 1);
        assert (text);
        ssize_t got = read (fd, text, (size_t) st.st_size);
        if (got != st.st_size)
            snprintf (reason, reason_size, "cannot read %s", S_MANIFEST);
        else {
            text [got] = 0;
            rc = 0;
        }
    }
    close (fd);
    if (rc)
        goto done;
    rc = -1;
    size_t size = (size_t) st.st_size;
    if (size == 0 || text [size - 1] != '\n' || strlen (text) != size) {
        snprintf (reason, reason_size, "%s is cut short or not text", S_MANIFEST);
        goto done;
    }
    //  The trailer: "end COUNT SHA256-of-what-precedes"
    text [size - 1] = 0;
    char *trailer = strrchr (text, '\n');
    text [size - 1] = '\n';
    if (!trailer || strncmp (trailer + 1, "end ", 4) != 0) {
        snprintf (reason, reason_size, "%s has no end line: cut short", S_MANIFEST);
        goto done;
    }
    size_t body_size = (size_t) (trailer + 1 - text);
    uint8_t digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, (const uint8_t *) text, body_size);
    char hex [S_SHA_HEX];
    umb_hex_encode (digest, sizeof (digest), hex);
    char expected [128];
    //  Its count is checked once the lines are read
    size_t count = 0;
    char listed_hex [S_SHA_HEX + 1] = "";
    if (sscanf (trailer + 1, "end %zu %65s", &count, listed_hex) != 2
    ||  !streq (listed_hex, hex)) {
        snprintf (reason, reason_size, "%s was changed: its end line does not match it",
                  S_MANIFEST);
        goto done;
    }
    snprintf (expected, sizeof (expected), "end %zu %s\n", count, hex);
    if (!streq (trailer + 1, expected)) {
        snprintf (reason, reason_size, "%s has a malformed end line", S_MANIFEST);
        goto done;
    }
    trailer [1] = 0;        //  the body alone from here

    char *line = text;
    int number = 0;
    while (*line) {
        char *newline = strchr (line, '\n');
        *newline = 0;
        number++;
        if (number == 1) {
            if (!streq (line, S_FORMAT)) {
                snprintf (reason, reason_size, "%s is not an umbra backup manifest (\"%s\" "
                          "expected on its first line)", S_MANIFEST, S_FORMAT);
                goto done;
            }
        }
        else
        if (strncmp (line, "version ", 8) == 0)
            snprintf (job->version, sizeof (job->version), "%s", line + 8);
        else
        if (strncmp (line, "created ", 8) == 0)
            snprintf (job->time, sizeof (job->time), "%s", line + 8);
        else
        if (strncmp (line, "state ", 6) == 0)
            ;               //  where it came from: for people
        else
        if (strncmp (line, "file ", 5) == 0) {
            char problem [256];
            if (s_manifest_entry (job, dir, line + 5, problem, sizeof (problem))) {
                snprintf (reason, reason_size, "%s line %d: %s", S_MANIFEST, number, problem);
                goto done;
            }
        }
        else {
            snprintf (reason, reason_size, "%s line %d is not understood", S_MANIFEST, number);
            goto done;
        }
        line = newline + 1;
    }
    if (count != job->count || !*job->version || !*job->time) {
        snprintf (reason, reason_size, "%s is incomplete", S_MANIFEST);
        goto done;
    }
    rc = 0;
done:
    free (text);
    return rc;
}

//  Adds to *unexpected the first file under dir that the manifest does not
//  name (or that is not a regular file or directory)
static int
s_find_unexpected (s_job_t *job, const char *dir, const char *prefix, char **unexpected)
{
    struct dirent **names = NULL;
    int count = scandir (dir, &names, NULL, alphasort);
    if (count < 0) {
        *unexpected = zsys_sprintf ("%s (%s)", prefix ? prefix : dir, strerror (errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < count; i++) {
        const char *name = names [i]->d_name;
        if (rc == 0 && !streq (name, ".") && !streq (name, "..")) {
            char *full = zsys_sprintf ("%s/%s", dir, name);
            char *path = prefix ? zsys_sprintf ("%s/%s", prefix, name) : strdup (name);
            struct stat st;
            if (lstat (full, &st))
                rc = -1;
            else
            if (S_ISDIR (st.st_mode))
                rc = s_find_unexpected (job, full, path, unexpected);
            else
            if (!S_ISREG (st.st_mode) || (!s_entry_find (job, path) && (prefix
                                          || !streq (name, S_MANIFEST))))
                rc = -1;
            if (rc && !*unexpected)
                *unexpected = strdup (path);
            zstr_free (&full);
            zstr_free (&path);
        }
        free (names [i]);
    }
    free (names);
    return rc;
}

//  Checks every file the manifest named against its size and hash, and that
//  the backup holds nothing else. Reads only.
static int
s_manifest_verify (s_job_t *job, const char *dir)
{
    int problems = 0;
    for (size_t i = 0; i < job->count; i++) {
        s_entry_t *entry = &job->entries [i];
        int64_t size = 0;
        char sha256 [S_SHA_HEX], reason [256];
        if (s_hash_file (entry->source, &size, sha256, reason, sizeof (reason)))
            fprintf (job->err, "%s: %s: %s\n", job->name, entry->path, reason);
        else
        if (size != entry->size)
            fprintf (job->err, "%s: %s: %" PRId64 " bytes, the manifest says %" PRId64 "\n",
                     job->name, entry->path, size, entry->size);
        else
        if (!streq (sha256, entry->sha256))
            fprintf (job->err, "%s: %s: changed since the backup (its SHA-256 differs)\n",
                     job->name, entry->path);
        else
            continue;
        problems++;
    }
    char *unexpected = NULL;
    if (s_find_unexpected (job, dir, NULL, &unexpected)) {
        fprintf (job->err, "%s: %s: not named by the manifest\n", job->name,
                 unexpected ? unexpected : "?");
        problems++;
    }
    free (unexpected);
    return problems ? -1 : 0;
}

//  ---------------------------------------------------------------- backup

//  Adds the files under source_dir, named prefix/... in the backup
static int
s_collect_dir (s_job_t *job, const char *source_dir, const char *prefix)
{
    struct dirent **names = NULL;
    int count = scandir (source_dir, &names, NULL, alphasort);
    if (count < 0) {
        fprintf (job->err, "%s: cannot read %s: %s\n", job->name, source_dir, strerror (errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < count; i++) {
        const char *name = names [i]->d_name;
        char *full = zsys_sprintf ("%s/%s", source_dir, name);
        char *path = prefix ? zsys_sprintf ("%s/%s", prefix, name) : strdup (name);
        struct stat st;
        bool skip = streq (name, ".") || streq (name, "..") || rc != 0;
        for (size_t e = 0; s_excluded [e] && !skip; e++)
            skip = streq (path, s_excluded [e]);
        if (skip)
            ;
        else
        if (lstat (full, &st)) {
            fprintf (job->err, "%s: %s: %s\n", job->name, full, strerror (errno));
            rc = -1;
        }
        else
        if (S_ISDIR (st.st_mode))
            rc = s_collect_dir (job, full, path);
        else
        if (!S_ISREG (st.st_mode))
            fprintf (job->err, "%s: leaving out %s: not a regular file\n", job->name, full);
        else
        if (!s_path_valid (path)) {
            fprintf (job->err, "%s: %s: a name a backup cannot hold\n", job->name, full);
            rc = -1;
        }
        else {
            //  SQLite's files beside a database are read through it
            bool side = false;
            static const char *const suffixes [] = { "-wal", "-shm", "-journal", NULL };
            for (size_t s = 0; suffixes [s] && !side; s++)
                if (s_ends_with (name, suffixes [s])) {
                    char *base = strndup (name, strlen (name) - strlen (suffixes [s]));
                    side = s_ends_with (base, ".db");
                    free (base);
                }
            bool seen = false;
            for (size_t e = 0; e < job->count && !seen; e++)
                seen = job->entries [e].dev == st.st_dev && job->entries [e].ino == st.st_ino;
            if (side || seen)
                ;
            else
            if (s_entry_find (job, path))
                fprintf (job->err, "%s: leaving out %s: the settings place %s elsewhere\n",
                         job->name, full, path);
            else {
                bool database = s_ends_with (name, ".db");
                s_entry_t *entry = s_entry_add (job, full, path, database);
                entry->mode = database ? 0600 : st.st_mode & 0644;
                entry->dev = st.st_dev;
                entry->ino = st.st_ino;
            }
        }
        zstr_free (&full);
        zstr_free (&path);
        free (names [i]);
    }
    free (names);
    return rc;
}

//  Every file to back up: first what settings relocate, then the state
static int
s_collect (s_job_t *job, umb_config_t *config, const char *state)
{
    for (size_t i = 0; s_relocations [i].setting; i++) {
        const char *where = umb_config_str (config, s_relocations [i].setting);
        if (!*where)
            continue;
        struct stat st;
        if (lstat (where, &st)) {
            fprintf (job->err, "%s: %s is set to %s, which cannot be read: %s\n", job->name,
                     s_relocations [i].setting, where, strerror (errno));
            return -1;
        }
        if (s_relocations [i].database && S_ISREG (st.st_mode)) {
            s_entry_t *entry = s_entry_add (job, where, s_relocations [i].path, true);
            entry->mode = 0600;
            entry->dev = st.st_dev;
            entry->ino = st.st_ino;
        }
        else
        if (!s_relocations [i].database && S_ISDIR (st.st_mode)) {
            if (s_collect_dir (job, where, s_relocations [i].path))
                return -1;
        }
        else {
            fprintf (job->err, "%s: %s is set to %s, which is not a %s\n", job->name,
                     s_relocations [i].setting, where,
                     s_relocations [i].database ? "file" : "directory");
            return -1;
        }
    }
    if (s_collect_dir (job, state, NULL))
        return -1;
    qsort (job->entries, job->count, sizeof (s_entry_t), s_entry_compare);
    return 0;
}

static int
s_exec (sqlite3 *db, const char *sql)
{
    return sqlite3_exec (db, sql, NULL, NULL, NULL);
}

//  Opens the original and starts a read transaction on it: its
//  snapshot, held until the copy is made. With WAL, the services keep writing
//  meanwhile, and the backup sees none of it (so it never restarts).
static int
s_snapshot (s_job_t *job, s_entry_t *entry)
{
    //  Opened for writing only so that, when the services are stopped, it
    //  cleans up the WAL's files on close as their last user would; it writes
    //  nothing (query_only) and never creates a database
    int rc = sqlite3_open_v2 (entry->source, &entry->db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout (entry->db, S_BUSY_TIMEOUT);
        rc = s_exec (entry->db, "PRAGMA query_only = 1");
    }
    if (rc == SQLITE_OK)
        rc = s_exec (entry->db, "BEGIN");
    //  The read transaction starts with the first read
    for (int tries = 0; rc == SQLITE_OK; ) {
        sqlite3_stmt *stmt = NULL;
        rc = sqlite3_prepare_v2 (entry->db, "SELECT COUNT(*) FROM sqlite_schema", -1, &stmt,
                                 NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step (stmt);
        sqlite3_finalize (stmt);
        if (rc == SQLITE_ROW) {
            rc = SQLITE_OK;
            break;
        }
        if (((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        &&  ++tries < S_BUSY_TRIES) {
            sqlite3_sleep (S_BUSY_SLEEP_MS);
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK) {
        fprintf (job->err, "%s: cannot read the database %s: %s\n", job->name, entry->source,
                 entry->db ? sqlite3_errmsg (entry->db) : sqlite3_errstr (rc));
        return -1;
    }
    return 0;
}

//  The copy's one-row answer to a pragma, into value
static int
s_pragma (sqlite3 *db, const char *sql, char *value, size_t size, int *rows)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL);
    *value = 0;
    *rows = 0;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step (stmt);
        if (rc == SQLITE_ROW && (*rows)++ == 0) {
            const unsigned char *text = sqlite3_column_text (stmt, 0);
            snprintf (value, size, "%s", text ? (const char *) text : "");
        }
    }
    sqlite3_finalize (stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

//  Copies the database's snapshot to dest through the online backup API, a
//  batch of pages a step (retried while the original is busy), makes it a
//  database of its own (no WAL beside it) and checks its integrity
static int
s_copy_database (s_job_t *job, s_entry_t *entry, const char *dest)
{
    //  The file exists before SQLite opens it, so it is 0600 from the start
    int fd = open (dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf (job->err, "%s: cannot create %s: %s\n", job->name, dest, strerror (errno));
        return -1;
    }
    close (fd);
    s_created_add (job, dest, false);
    sqlite3 *copy = NULL;
    int rc = sqlite3_open_v2 (dest, &copy, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
    sqlite3_backup *backup = rc == SQLITE_OK ? sqlite3_backup_init (copy, "main", entry->db, "main")
                                             : NULL;
    int pages = 0;
    if (backup) {
        int busy = 0;
        while (true) {
            rc = sqlite3_backup_step (backup, S_PAGES_PER_STEP);
            if (rc == SQLITE_OK)
                busy = 0;
            else
            if (((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
            &&  ++busy < S_BUSY_TRIES)
                sqlite3_sleep (S_BUSY_SLEEP_MS);
            else
                break;
        }
        pages = sqlite3_backup_pagecount (backup);
        int finished = sqlite3_backup_finish (backup);
        if (rc == SQLITE_DONE)
            rc = finished;
    }
    else
    if (rc == SQLITE_OK)
        rc = sqlite3_errcode (copy);
    if (rc != SQLITE_OK) {
        fprintf (job->err, "%s: cannot copy the database %s: %s\n", job->name, entry->source,
                 (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED
                 ? "still busy after retrying for 5 s" : sqlite3_errstr (rc));
        sqlite3_close_v2 (copy);
        return -1;
    }
    //  Done with the original: its snapshot is released
    s_exec (entry->db, "COMMIT");
    sqlite3_close_v2 (entry->db);
    entry->db = NULL;

    char mode [32], check [512];
    int rows = 0, check_rows = 0;
    if (s_pragma (copy, "PRAGMA journal_mode = DELETE", mode, sizeof (mode), &rows)
    ||  !streq (mode, "delete")) {
        fprintf (job->err, "%s: %s: cannot leave WAL mode: %s\n", job->name, dest,
                 sqlite3_errmsg (copy));
        sqlite3_close_v2 (copy);
        return -1;
    }
    if (s_pragma (copy, "PRAGMA integrity_check", check, sizeof (check), &check_rows)
    ||  check_rows != 1 || !streq (check, "ok")) {
        fprintf (job->err, "%s: the copy of %s fails PRAGMA integrity_check: %s%s\n", job->name,
                 entry->source, *check ? check : sqlite3_errmsg (copy),
                 check_rows > 1 ? " (and more)" : "");
        sqlite3_close_v2 (copy);
        return -1;
    }
    if (sqlite3_close (copy) != SQLITE_OK) {
        fprintf (job->err, "%s: cannot close %s\n", job->name, dest);
        sqlite3_close_v2 (copy);
        return -1;
    }
    char reason [256];
    if (s_hash_file (dest, &entry->size, entry->sha256, reason, sizeof (reason))) {
        fprintf (job->err, "%s: %s: %s\n", job->name, dest, reason);
        return -1;
    }
    fd = open (dest, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync (fd);
        close (fd);
    }
    fprintf (job->out, "%s: %d pages, integrity ok\n", entry->path, pages);
    return 0;
}

static int
s_backup (s_job_t *job, umb_config_t *config, const char *state, const char *out_dir)
{
    struct stat st;
    if (stat (state, &st) || !S_ISDIR (st.st_mode)) {
        fprintf (job->err, "%s: no state directory %s\n", job->name, state);
        return S_EXIT_FAILED;
    }
    int absent = s_empty_or_absent (job, out_dir, "backup directory");
    if (absent < 0)
        return S_EXIT_FAILED;
    char *state_real = realpath (state, NULL);
    char *out_real = s_absolute (out_dir);
    if (!state_real || !out_real || s_inside (out_real, state_real)) {
        if (state_real && out_real)
            fprintf (job->err, "%s: the backup directory %s is inside the state %s\n",
                     job->name, out_dir, state);
        else
            fprintf (job->err, "%s: cannot resolve %s\n", job->name, state_real ? out_dir : state);
        free (state_real);
        free (out_real);
        return S_EXIT_FAILED;
    }
    int rc = s_collect (job, config, state);
    size_t databases = 0;
    for (size_t i = 0; i < job->count && rc == 0; i++)
        if (job->entries [i].database) {
            databases++;
            rc = s_snapshot (job, &job->entries [i]);
        }
    if (rc == 0 && databases == 0) {
        fprintf (job->err, "%s: %s holds no database: not an umbra state\n", job->name, state);
        rc = -1;
    }
    if (rc == 0 && absent)
        rc = s_make_dirs (job, out_dir);
    if (rc == 0 && chmod (out_dir, 0700)) {
        fprintf (job->err, "%s: %s: %s\n", job->name, out_dir, strerror (errno));
        rc = -1;
    }
    //  Databases first: their snapshots are held until they are copied
    int64_t bytes = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++)
        for (size_t i = 0; i < job->count && rc == 0; i++) {
            s_entry_t *entry = &job->entries [i];
            if (entry->database != (pass == 0))
                continue;
            rc = s_make_parents (job, out_dir, entry->path);
            char *dest = zsys_sprintf ("%s/%s", out_dir, entry->path);
            if (rc == 0)
                rc = entry->database
                   ? s_copy_database (job, entry, dest)
                   : s_copy_file (job, entry->source, dest, entry->mode, &entry->size,
                                  entry->sha256);
            zstr_free (&dest);
            bytes += entry->size;
        }
    if (rc == 0)
        rc = s_manifest_write (job, out_dir, state_real);
    if (rc == 0)
        fprintf (job->out, "backed up %s into %s: %zu databases (integrity ok), %zu other "
                 "files, %" PRId64 " bytes; %s/%s lists them\n", state_real, out_real, databases,
                 job->count - databases, bytes, out_dir, S_MANIFEST);
    else {
        s_created_undo (job);
        fprintf (job->err, "%s: failed; nothing was kept in %s\n", job->name, out_dir);
    }
    free (state_real);
    free (out_real);
    return rc ? S_EXIT_FAILED : S_EXIT_OK;
}

//  ---------------------------------------------------------------- restore

static int
s_restore (s_job_t *job, umb_config_t *config, const char *state, const char *from)
{
    int absent = s_empty_or_absent (job, state, "state directory");
    if (absent < 0)
        return S_EXIT_FAILED;
    struct stat st;
    if (stat (from, &st) || !S_ISDIR (st.st_mode)) {
        fprintf (job->err, "%s: no backup directory %s\n", job->name, from);
        return S_EXIT_FAILED;
    }
    char *from_real = realpath (from, NULL);
    char *state_real = s_absolute (state);
    if (!from_real || !state_real || s_inside (state_real, from_real)
    ||  s_inside (from_real, state_real)) {
        fprintf (job->err, "%s: the state %s and the backup %s overlap\n", job->name, state,
                 from);
        free (from_real);
        free (state_real);
        return S_EXIT_FAILED;
    }
    free (from_real);
    free (state_real);
    char reason [512];
    if (s_manifest_read (job, from, reason, sizeof (reason))) {
        fprintf (job->err, "%s: refused: %s\n", job->name, reason);
        return S_EXIT_FAILED;
    }
    if (s_manifest_verify (job, from)) {
        fprintf (job->err, "%s: refused: the backup %s does not match its manifest; nothing "
                 "was written\n", job->name, from);
        return S_EXIT_FAILED;
    }
    int rc = 0;
    if (absent)
        rc = s_make_dirs (job, state);
    if (rc == 0 && chmod (state, 0700)) {
        fprintf (job->err, "%s: %s: %s\n", job->name, state, strerror (errno));
        rc = -1;
    }
    int64_t bytes = 0;
    for (size_t i = 0; i < job->count && rc == 0; i++) {
        s_entry_t *entry = &job->entries [i];
        rc = s_make_parents (job, state, entry->path);
        char *dest = zsys_sprintf ("%s/%s", state, entry->path);
        int64_t size = 0;
        char sha256 [S_SHA_HEX];
        if (rc == 0)
            rc = s_copy_file (job, entry->source, dest, entry->mode, &size, sha256);
        //  What was copied is what was verified, even if the backup changed since
        if (rc == 0 && (size != entry->size || !streq (sha256, entry->sha256))) {
            fprintf (job->err, "%s: %s changed while it was restored\n", job->name, entry->path);
            rc = -1;
        }
        zstr_free (&dest);
        bytes += size;
    }
    if (rc) {
        s_created_undo (job);
        fprintf (job->err, "%s: failed; what it wrote into %s was removed\n", job->name, state);
        return S_EXIT_FAILED;
    }
    int dir_fd = open (state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        fsync (dir_fd);
        close (dir_fd);
    }
    fprintf (job->out, "restored %zu files (%" PRId64 " bytes, verified against %s) of a backup "
             "made by umbra %s at %s into %s\n", job->count, bytes, S_MANIFEST, job->version,
             job->time, state);
    //  The restored layout is the default one: settings that move it elsewhere
    //  would start the platform on something else
    for (size_t i = 0; s_relocations [i].setting; i++) {
        const char *where = umb_config_str (config, s_relocations [i].setting);
        if (*where)
            fprintf (job->err, "%s: note: %s is set to %s; the restored one is %s/%s\n",
                     job->name, s_relocations [i].setting, where, state, s_relocations [i].path);
    }
    return S_EXIT_OK;
}

//  ---------------------------------------------------------------- command lines

//  Reads the options; 0 to go on, else the exit code + 1 (--help: 0 + 1)
static int
s_parse (int argc, char **argv, const char *name, const char *dir_option, const char *usage,
         s_args_t *args, FILE *out, FILE *err)
{
    const struct option options [] = {
        { "config",   required_argument, NULL, 'c' },
        { "state",    required_argument, NULL, 's' },
        { dir_option, required_argument, NULL, 'd' },
        { "help",     no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    memset (args, 0, sizeof (*args));
    optind = 0;
    opterr = 0;
    int option;
    while ((option = getopt_long (argc, argv, ":h", options, NULL)) != -1) {
        const char **slot = option == 'c' ? &args->config : option == 's' ? &args->state
                          : option == 'd' ? &args->dir : NULL;
        if (option == 'h') {
            fputs (usage, out);
            return S_EXIT_OK + 1;
        }
        if (slot && (*slot || !*optarg)) {
            fprintf (err, "%s: %s given twice or empty\n%s", name, argv [optind - 1], usage);
            return S_EXIT_USAGE + 1;
        }
        if (slot)
            *slot = optarg;
        else {
            fprintf (err, "%s: %s option '%s'\n%s", name,
                     option == ':' ? "incomplete" : "unknown", argv [optind - 1], usage);
            return S_EXIT_USAGE + 1;
        }
    }
    if (optind < argc) {
        fprintf (err, "%s: unexpected argument '%s'\n%s", name, argv [optind], usage);
        return S_EXIT_USAGE + 1;
    }
    if (!args->dir) {
        fprintf (err, "%s: --%s DIR is required\n%s", name, dir_option, usage);
        return S_EXIT_USAGE + 1;
    }
    return 0;
}

//  The settings: the file, the environment, --state; and the state directory
//  they name (the caller frees)
static umb_config_t *
s_settings (const s_args_t *args, char **envp, const char *name, FILE *err, char **state)
{
    umb_config_t *config = umb_config_new ();
    assert (config);
    char *error = NULL;
    if ((args->config && umb_config_load_file (config, args->config, &error))
    ||  umb_config_load_env (config, envp, &error)
    ||  (args->state && umb_config_set (config, "state_dir", args->state, &error))) {
        fprintf (err, "%s: %s\n", name, error ? error : "invalid settings");
        free (error);
        umb_config_destroy (&config);
        return NULL;
    }
    const char *configured = umb_config_str (config, "state_dir");
    const char *xdg = s_getenv (envp, "XDG_DATA_HOME");
    const char *home = s_getenv (envp, "HOME");
    *state = *configured ? strdup (configured)
           : xdg && *xdg == '/' ? zsys_sprintf ("%s/umbra", xdg)
           : zsys_sprintf ("%s/.local/share/umbra", home && *home ? home : ".");
    assert (*state);
    //  Trailing slashes would end up in the paths printed and compared
    size_t size = strlen (*state);
    while (size > 1 && (*state) [size - 1] == '/')
        (*state) [--size] = 0;
    return config;
}

static int
s_run (bool backup, int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    assert (envp && out && err);
    const char *name = backup ? "umbra backup" : "umbra restore";
    const char *usage = backup ? s_backup_usage : s_restore_usage;
    s_args_t args;
    int stop = s_parse (argc, argv, name, backup ? "out" : "from", usage, &args, out, err);
    if (stop)
        return stop - 1;
    char *state = NULL;
    umb_config_t *config = s_settings (&args, envp, name, err, &state);
    if (!config)
        return S_EXIT_USAGE;
    char *dir = strdup (args.dir);
    assert (dir);
    size_t size = strlen (dir);
    while (size > 1 && dir [size - 1] == '/')
        dir [--size] = 0;
    s_job_t job;
    s_job_init (&job, name, out, err);
    int rc = backup ? s_backup (&job, config, state, dir) : s_restore (&job, config, state, dir);
    s_job_end (&job);
    free (dir);
    free (state);
    umb_config_destroy (&config);
    fflush (out);
    return rc;
}

int
umb_cli_backup_run (int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    return s_run (true, argc, argv, envp, out, err);
}

int
umb_cli_restore_run (int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    return s_run (false, argc, argv, envp, out, err);
}

int
umb_cli_backup (int argc, char **argv)
{
    extern char **environ;
    return umb_cli_backup_run (argc, argv, environ, stdout, stderr);
}

int
umb_cli_restore (int argc, char **argv)
{
    extern char **environ;
    return umb_cli_restore_run (argc, argv, environ, stdout, stderr);
}

//  ---------------------------------------------------------------- selftest

UMB_CLI_TESTKIT_RUNNER (s_test_backup, umb_cli_backup_run, "backup")
UMB_CLI_TESTKIT_RUNNER (s_test_restore, umb_cli_restore_run, "restore")
#define S_EXPECT UMB_CLI_TESTKIT_EXPECT

static void
s_test_sql (sqlite3 *db, const char *sql)
{
    char *error = NULL;
    int rc = sqlite3_exec (db, sql, NULL, NULL, &error);
    if (rc != SQLITE_OK)
        fprintf (stderr, "selftest SQL failed: %s: %s\n", sql, error ? error : "?");
    assert (rc == SQLITE_OK);
}

//  Rows of table t in the database at path
static int64_t
s_test_rows (const char *path)
{
    sqlite3 *db = NULL;
    assert (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    assert (sqlite3_prepare_v2 (db, "SELECT COUNT(*) FROM t", -1, &stmt, NULL) == SQLITE_OK);
    assert (sqlite3_step (stmt) == SQLITE_ROW);
    int64_t rows = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return rows;
}

//  A service's connection writing while the backup runs
typedef struct {
    const char *path;
    bool        stop;
    int64_t     written;
} s_test_writer_t;

static void *
s_test_writer (void *arg)
{
    s_test_writer_t *writer = (s_test_writer_t *) arg;
    sqlite3 *db = NULL;
    assert (sqlite3_open (writer->path, &db) == SQLITE_OK);
    sqlite3_busy_timeout (db, 5000);
    while (!__atomic_load_n (&writer->stop, __ATOMIC_ACQUIRE)) {
        s_test_sql (db, "BEGIN IMMEDIATE");
        s_test_sql (db, "INSERT INTO t (x) VALUES (randomblob(200))");
        s_test_sql (db, "COMMIT");
        __atomic_add_fetch (&writer->written, 1, __ATOMIC_RELEASE);
    }
    sqlite3_close (db);
    return NULL;
}

static void
s_test_file (const char *dir, const char *name, const char *text, mode_t mode)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
    assert (chmod (path, mode) == 0);
    zstr_free (&path);
}

//  Flips one bit of the file's byte at offset
static void
s_test_flip (const char *path, off_t offset)
{
    int fd = open (path, O_RDWR);
    assert (fd >= 0);
    uint8_t byte;
    assert (pread (fd, &byte, 1, offset) == 1);
    byte ^= 1;
    assert (pwrite (fd, &byte, 1, offset) == 1);
    close (fd);
}

static bool
s_test_exists (const char *path)
{
    struct stat st;
    return lstat (path, &st) == 0;
}

//  The mode bits of path
static mode_t
s_test_mode (const char *path)
{
    struct stat st;
    assert (lstat (path, &st) == 0);
    return st.st_mode & 07777;
}

//  A manifest of the given body with its end line, written to dir/MANIFEST
static void
s_test_manifest (const char *dir, const char *body, size_t count)
{
    uint8_t digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, (const uint8_t *) body, strlen (body));
    char hex [S_SHA_HEX];
    umb_hex_encode (digest, sizeof (digest), hex);
    char *text = zsys_sprintf ("%send %zu %s\n", body, count, hex);
    char *path = zsys_sprintf ("%s/%s", dir, S_MANIFEST);
    unlink (path);
    s_test_file (dir, S_MANIFEST, text, 0600);
    zstr_free (&path);
    zstr_free (&text);
}

void
umb_cli_backup_test (bool verbose)
{
    if (verbose)
        printf (" * umb_cli_backup: ");
    assert (sodium_init () >= 0);
    char root [] = "/tmp/umb-cli-backup-XXXXXX";
    assert (mkdtemp (root));
    char *state = zsys_sprintf ("%s/state", root);
    char *backup = zsys_sprintf ("%s/backup", root);
    char *restored = zsys_sprintf ("%s/restored/deeper", root);
    char *refused = zsys_sprintf ("%s/refused", root);

    //  A state like a service's: a WAL database whose latest writes are still
    //  in its WAL, key pairs, a CA; what CVMs leave; a symbolic link
    char *path = zsys_sprintf ("%s/app", state);
    assert (mkdir (state, 0700) == 0 && mkdir (path, 0700) == 0);
    zstr_free (&path);
    char *db_path = zsys_sprintf ("%s/app/app.db", state);
    sqlite3 *held = NULL;
    assert (sqlite3_open (db_path, &held) == SQLITE_OK);
    s_test_sql (held, "PRAGMA journal_mode = WAL");
    s_test_sql (held, "PRAGMA wal_autocheckpoint = 0");
    s_test_sql (held, "CREATE TABLE t (id INTEGER PRIMARY KEY, x BLOB)");
    s_test_sql (held, "CREATE INDEX t_x ON t (x)");
    s_test_sql (held, "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                      "WHERE i < 2000) INSERT INTO t (x) SELECT randomblob(300) FROM n");
    path = zsys_sprintf ("%s/app/app.db-wal", state);
    assert (s_test_exists (path));
    zstr_free (&path);
    const char *const dirs [] = { "keys", "certs", "certs/ca", "backends", "backends/links",
                                  "backends/cvms", "backends/cvms/cvm_1", NULL };
    for (size_t i = 0; dirs [i]; i++) {
        path = zsys_sprintf ("%s/%s", state, dirs [i]);
        assert (mkdir (path, 0700) == 0);
        zstr_free (&path);
    }
    s_test_file (state, "keys/svc.key", "curve secret key: not to be printed\n", 0600);
    s_test_file (state, "keys/svc.pub", "curve public key\n", 0644);
    s_test_file (state, "certs/ca/root.key", "root secret key\n", 0600);
    s_test_file (state, "certs/ca/root.pem", "root certificate\n", 0644);
    s_test_file (state, "backends/cvms/cvm_1/dataset.csv", "a,b\n", 0600);
    s_test_file (state, "backends/links/cvm_1.control", "", 0600);
    path = zsys_sprintf ("%s/link", state);
    assert (symlink ("keys/svc.key", path) == 0);
    zstr_free (&path);

    //  Usage errors: exit 2, nothing written
    S_EXPECT (s_test_backup (NULL, NULL, "--state", state, NULL), 2, NULL,
              "umbra backup: --out DIR is required");
    S_EXPECT (s_test_backup (NULL, NULL, "--state", state, "--out", backup, "--bogus", NULL), 2,
              NULL, "umbra backup: unknown option '--bogus'");
    S_EXPECT (s_test_backup (NULL, NULL, "--state", state, "--out", backup, "extra", NULL), 2,
              NULL, "unexpected argument 'extra'");
    S_EXPECT (s_test_backup (NULL, NULL, "--state", state, "--out", NULL), 2, NULL,
              "incomplete option '--out'");
    S_EXPECT (s_test_backup (NULL, NULL, "--out", backup, "--out", backup, NULL), 2, NULL,
              "given twice or empty");
    S_EXPECT (s_test_backup (NULL, NULL, "--help", NULL), 0, "usage: umbra backup --out", NULL);
    S_EXPECT (s_test_restore (NULL, NULL, "--state", refused, NULL), 2, NULL,
              "umbra restore: --from DIR is required");
    S_EXPECT (s_test_restore (NULL, NULL, "--from", backup, "--to", refused, NULL), 2, NULL,
              "unknown option '--to'");
    path = zsys_sprintf ("%s/settings.ini", root);
    s_test_file (root, "settings.ini", "[auth]\nno_such_key = 1\n", 0600);
    S_EXPECT (s_test_backup (NULL, NULL, "--config", path, "--out", backup, NULL), 2, NULL,
              "no_such_key");
    zstr_free (&path);
    assert (!s_test_exists (backup) && !s_test_exists (refused));

    //  Nothing to back up, or a backup inside the state: refused
    path = zsys_sprintf ("%s/nowhere", root);
    S_EXPECT (s_test_backup (NULL, NULL, "--state", path, "--out", backup, NULL), 1, NULL,
              "no state directory");
    zstr_free (&path);
    path = zsys_sprintf ("%s/inside", state);
    S_EXPECT (s_test_backup (NULL, NULL, "--state", state, "--out", path, NULL), 1, NULL,
              "is inside the state");
    assert (!s_test_exists (path));
    zstr_free (&path);

    //  The backup, while another connection keeps writing
    int64_t before = s_test_rows (db_path);
    s_test_writer_t writer = { .path = db_path };
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_test_writer, &writer) == 0);
    while (__atomic_load_n (&writer.written, __ATOMIC_ACQUIRE) < 20)
        usleep (1000);
    umb_cli_testkit_run_t run = s_test_backup (NULL, NULL, "--state", state, "--out", backup,
                                               NULL);
    while (__atomic_load_n (&writer.written, __ATOMIC_ACQUIRE) < 40)
        usleep (1000);
    __atomic_store_n (&writer.stop, true, __ATOMIC_RELEASE);
    pthread_join (thread, NULL);
    umb_cli_testkit_expect (&run, 0, "app/app.db: ", NULL);
    assert (strstr (run.out, "integrity ok"));
    assert (strstr (run.out, "1 databases (integrity ok), 4 other files"));
    assert (strstr (run.err, "leaving out") && strstr (run.err, "/link: not a regular file"));
    //  Never a key's contents
    assert (!strstr (run.out, "not to be printed") && !strstr (run.err, "not to be printed"));
    umb_cli_testkit_run_free (&run);
    int64_t after = s_test_rows (db_path);

    assert (s_test_mode (backup) == 0700);
    path = zsys_sprintf ("%s/app/app.db", backup);
    int64_t copied = s_test_rows (path);
    assert (copied >= before + 20 && copied <= after);
    assert (s_test_mode (path) == 0600);
    zstr_free (&path);
    const char *const absent [] = { "app/app.db-wal", "app/app.db-shm", "app/app.db-journal",
                                    "backends", "link", S_MANIFEST_TMP, NULL };
    for (size_t i = 0; absent [i]; i++) {
        path = zsys_sprintf ("%s/%s", backup, absent [i]);
        assert (!s_test_exists (path));
        zstr_free (&path);
    }
    const struct { const char *name; mode_t mode; } modes [] = {
        { "keys/svc.key", 0600 }, { "keys/svc.pub", 0644 }, { "certs/ca/root.key", 0600 },
        { "certs/ca/root.pem", 0644 }, { "keys", 0700 }, { "certs/ca", 0700 },
        { S_MANIFEST, 0600 }, { NULL }
    };
    for (size_t i = 0; modes [i].name; i++) {
        path = zsys_sprintf ("%s/%s", backup, modes [i].name);
        assert (s_test_mode (path) == modes [i].mode);
        zstr_free (&path);
    }
    path = zsys_sprintf ("%s/keys/svc.key", backup);
    char *text = umb_cli_testkit_read (path, NULL, NULL);
    assert (text && streq (text, "curve secret key: not to be printed\n"));
    free (text);
    zstr_free (&path);
    path = zsys_sprintf ("%s/%s", backup, S_MANIFEST);
    text = umb_cli_testkit_read (path, NULL, NULL);
    const char *head = S_FORMAT "\nversion " UMB_VERSION "\ncreated ";
    assert (text && strncmp (text, head, strlen (head)) == 0);
    assert (strstr (text, " 0600 file keys/svc.key\n") && strstr (text, " 0600 db app/app.db\n"));
    assert (strstr (text, "\nend 5 "));
    free (text);
    zstr_free (&path);

    //  A target that is not empty: refused, whatever is in it
    S_EXPECT (s_test_backup (NULL, NULL, "--state", state, "--out", backup, NULL), 1, NULL,
              "is not empty; refusing to write into it");
    S_EXPECT (s_test_restore (NULL, NULL, "--from", backup, "--state", state, NULL), 1, NULL,
              "is not empty; refusing to write into it");

    //  The restore: the same files, modes and rows
    S_EXPECT (s_test_restore (NULL, NULL, "--from", backup, "--state", restored, NULL), 0,
              "restored 5 files", NULL);
    assert (s_test_mode (restored) == 0700);
    path = zsys_sprintf ("%s/app/app.db", restored);
    assert (s_test_rows (path) == copied && s_test_mode (path) == 0600);
    zstr_free (&path);
    for (size_t i = 0; modes [i].name; i++) {
        path = zsys_sprintf ("%s/%s", restored, modes [i].name);
        if (streq (modes [i].name, S_MANIFEST))
            assert (!s_test_exists (path));
        else
            assert (s_test_mode (path) == modes [i].mode);
        zstr_free (&path);
    }
    path = zsys_sprintf ("%s/certs/ca/root.key", restored);
    text = umb_cli_testkit_read (path, NULL, NULL);
    assert (text && streq (text, "root secret key\n"));
    free (text);
    zstr_free (&path);
    //  ... and not twice
    S_EXPECT (s_test_restore (NULL, NULL, "--from", backup, "--state", restored, NULL), 1, NULL,
              "is not empty");

    //  A changed byte, a missing file, an extra file, an edited manifest: the
    //  whole restore is refused and nothing is written
    path = zsys_sprintf ("%s/keys/svc.pub", backup);
    s_test_flip (path, 3);
    S_EXPECT (s_test_restore (NULL, NULL, "--from", backup, "--state", refused, NULL), 1, NULL,
              "keys/svc.pub: changed since the backup");
    assert (!s_test_exists (refused));
    s_test_flip (path, 3);
    zstr_free (&path);
    path = zsys_sprintf ("%s/app/app.db", backup);
    s_test_flip (path, 5000);
    S_EXPECT (s_test_restore (NULL, NULL, "--from", backup, "--state", refused, NULL), 1, NULL,
              "app/app.db: changed since the backup");
    assert (!s_test_exists (refused));
    s_test_flip (path, 5000);
    zstr_free (&path);
    path = zsys_sprintf ("%s/certs/ca/root.pem", backup);
    char *aside = zsys_sprintf ("%s/root.pem", root);
    assert (rename (path, aside) == 0);
    S_EXPECT (s_test_restore (NULL, NULL, "--from", backup, "--state", refused, NULL), 1, NULL,
              "certs/ca/root.pem: missing");
    assert (!s_test_exists (refused));
    assert (rename (aside, path) == 0);
    zstr_free (&aside);
    zstr_free (&path);
    s_test_file (backup, "certs/extra.pem", "", 0644);
    S_EXPECT (s_test_restore (NULL, NULL, "--from", backup, "--state", refused, NULL), 1, NULL,
              "certs/extra.pem: not named by the manifest");
    assert (!s_test_exists (refused));
    path = zsys_sprintf ("%s/certs/extra.pem", backup);
    assert (unlink (path) == 0);
    zstr_free (&path);
    path = zsys_sprintf ("%s/%s", backup, S_MANIFEST);
    char *manifest = umb_cli_testkit_read (path, NULL, NULL);
    assert (manifest);
    char *mode = strstr (manifest, " 0644 file keys/svc.pub");
    assert (mode);
    mode [3] = '6';                             //  0664: its end line no longer matches
    unlink (path);
    s_test_file (backup, S_MANIFEST, manifest, 0600);
    S_EXPECT (s_test_restore (NULL, NULL, "--from", backup, "--state", refused, NULL), 1, NULL,
              "MANIFEST was changed");
    assert (!s_test_exists (refused));
    //  Cut short
    strstr (manifest, "\nend ") [1] = 0;
    unlink (path);
    s_test_file (backup, S_MANIFEST, manifest, 0600);
    S_EXPECT (s_test_restore (NULL, NULL, "--from", backup, "--state", refused, NULL), 1, NULL,
              "has no end line");
    free (manifest);
    //  A manifest naming a path outside the backup, or a file twice, even
    //  with a matching end line; a directory without a manifest
    const char *sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    char *body = zsys_sprintf (S_FORMAT "\nversion 0\ncreated now\nfile %s 0 0600 file "
                               "../escape\n", sha);
    s_test_manifest (backup, body, 1);
    S_EXPECT (s_test_restore (NULL, NULL, "--from", backup, "--state", refused, NULL), 1, NULL,
              "names a file outside the backup");
    zstr_free (&body);
    body = zsys_sprintf (S_FORMAT "\nversion 0\ncreated now\nfile %s 0 0600 file a\n"
                         "file %s 0 0600 file a\n", sha, sha);
    s_test_manifest (backup, body, 2);
    S_EXPECT (s_test_restore (NULL, NULL, "--from", backup, "--state", refused, NULL), 1, NULL,
              "names a twice");
    zstr_free (&body);
    assert (unlink (path) == 0);
    S_EXPECT (s_test_restore (NULL, NULL, "--from", backup, "--state", refused, NULL), 1, NULL,
              "no MANIFEST: not a backup");
    assert (!s_test_exists (refused));
    zstr_free (&path);
    assert (s_path_valid ("a/b.db") && !s_path_valid ("/a") && !s_path_valid ("a//b")
            && !s_path_valid ("a/./b") && !s_path_valid ("a/") && !s_path_valid ("a\nb")
            && !s_path_valid (S_MANIFEST) && s_path_valid ("keys/" S_MANIFEST));

    sqlite3_close (held);
    zstr_free (&db_path);
    zstr_free (&state);
    zstr_free (&backup);
    zstr_free (&restored);
    zstr_free (&refused);
    char *command = zsys_sprintf ("rm -rf '%s'", root);
    assert (system (command) == 0);
    zstr_free (&command);
    if (verbose)
        printf ("OK\n");
}
