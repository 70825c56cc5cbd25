//  umb_upload - one streamed upload to a file, hashed while written; archive jobs
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <czmq.h>
#include <openssl/evp.h>
#include "umb_upload.h"

struct _umb_upload_t {
    char       *temp_path;
    int         fd;
    uint64_t    size;
    uint64_t    received;
    uint64_t    flushed;            //  written back and dropped from the page cache up to here
    EVP_MD_CTX *md;
    uint8_t     hash [UMB_UPLOAD_HASH_SIZE];
    bool        hashed;
    bool        broken;
    bool        committed;
};

umb_upload_t *
umb_upload_new (const char *dir, uint64_t size, char *reason, size_t reason_size)
{
    assert (dir);
    umb_upload_t *self = calloc (1, sizeof (umb_upload_t));
    assert (self);
    if (asprintf (&self->temp_path, "%s/.upload.XXXXXX", dir) < 0) {
        free (self);
        return NULL;
    }
    self->fd = mkostemp (self->temp_path, O_CLOEXEC);
    if (self->fd == -1) {
        snprintf (reason, reason_size, "cannot create a file in %s: %s", dir, strerror (errno));
        free (self->temp_path);
        free (self);
        return NULL;
    }
    self->size = size;
    self->md = EVP_MD_CTX_new ();
    EVP_MD *sha3 = EVP_MD_fetch (NULL, "SHA3-256", NULL);
    if (!self->md || !sha3 || EVP_DigestInit_ex (self->md, sha3, NULL) != 1) {
        snprintf (reason, reason_size, "SHA3-256 is not available");
        EVP_MD_free (sha3);
        umb_upload_destroy (&self);
        return NULL;
    }
    EVP_MD_free (sha3);
    return self;
}

void
umb_upload_destroy (umb_upload_t **self_p)
{
    assert (self_p);
    umb_upload_t *self = *self_p;
    if (self) {
        if (self->fd != -1)
            close (self->fd);
        if (!self->committed)
            unlink (self->temp_path);
        EVP_MD_CTX_free (self->md);
        free (self->temp_path);
        free (self);
        *self_p = NULL;
    }
}

//  Streams the file out of the page cache as it arrives: each full window is
//  sent to the disk at once, and the window before it, written back by now,
//  is dropped from the cache. The agent's footprint in the guest's memory
//  stays at two windows whatever the file size, and writes land on pages the
//  kernel just freed instead of ever more fresh ones (measured: a third of
//  the agent's time went into first-touching new page-cache pages on a 1 GiB
//  upload). Advisory: failures here only cost speed.
#define S_WRITE_BEHIND_WINDOW (8 * 1024 * 1024)

static void
s_write_behind (umb_upload_t *self)
{
    while (self->received - self->flushed >= 2 * (uint64_t) S_WRITE_BEHIND_WINDOW) {
        off_t older = (off_t) self->flushed;
        off_t newer = older + S_WRITE_BEHIND_WINDOW;
        sync_file_range (self->fd, newer, S_WRITE_BEHIND_WINDOW, SYNC_FILE_RANGE_WRITE);
        sync_file_range (self->fd, older, S_WRITE_BEHIND_WINDOW,
                         SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE
                         | SYNC_FILE_RANGE_WAIT_AFTER);
        posix_fadvise (self->fd, older, S_WRITE_BEHIND_WINDOW, POSIX_FADV_DONTNEED);
        self->flushed += S_WRITE_BEHIND_WINDOW;
    }
}

int
umb_upload_write (umb_upload_t *self, const void *data, size_t size, bool *too_large,
                  char *reason, size_t reason_size)
{
    assert (self && (data || size == 0));
    if (too_large)
        *too_large = false;
    if (self->broken || self->hashed || self->fd == -1) {
        snprintf (reason, reason_size, "the upload can take no more data");
        return -1;
    }
    if (size > self->size - self->received) {
        snprintf (reason, reason_size, "%" PRIu64 " bytes is more than the announced size of %" PRIu64,
                  self->received + size, self->size);
        if (too_large)
            *too_large = true;
        self->broken = true;
        return -1;
    }
    const char *cursor = data;
    size_t left = size;
    while (left > 0) {
        ssize_t done = write (self->fd, cursor, left);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0) {
            snprintf (reason, reason_size, "cannot write the upload: %s",
                      done < 0 ? strerror (errno) : "no space");
            self->broken = true;
            return -1;
        }
        cursor += done;
        left -= (size_t) done;
    }
    EVP_DigestUpdate (self->md, data, size);
    self->received += size;
    s_write_behind (self);
    return 0;
}

uint64_t umb_upload_received (umb_upload_t *self) { assert (self); return self->received; }
uint64_t umb_upload_size (umb_upload_t *self)     { assert (self); return self->size; }

void
umb_upload_hash (umb_upload_t *self, uint8_t hash [UMB_UPLOAD_HASH_SIZE])
{
    assert (self && hash);
    if (!self->hashed) {
        unsigned int length = 0;
        EVP_DigestFinal_ex (self->md, self->hash, &length);
        assert (length == UMB_UPLOAD_HASH_SIZE);
        self->hashed = true;
    }
    memcpy (hash, self->hash, UMB_UPLOAD_HASH_SIZE);
}

int
umb_upload_commit (umb_upload_t *self, const char *path, mode_t mode, char *reason,
                   size_t reason_size)
{
    assert (self && path);
    assert (self->hashed);
    if (self->broken || self->committed) {
        snprintf (reason, reason_size, "the upload cannot be committed");
        return -1;
    }
    if (fchmod (self->fd, mode) == -1 || fsync (self->fd) == -1 || close (self->fd) == -1) {
        self->fd = -1;
        snprintf (reason, reason_size, "cannot finish the upload: %s", strerror (errno));
        return -1;
    }
    self->fd = -1;
    if (rename (self->temp_path, path) == -1) {
        snprintf (reason, reason_size, "cannot store the upload as %s: %s", path, strerror (errno));
        return -1;
    }
    self->committed = true;
    return 0;
}

int
umb_upload_hash_file (const char *path, uint8_t hash [UMB_UPLOAD_HASH_SIZE], uint64_t *size,
                      char *reason, size_t reason_size)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        snprintf (reason, reason_size, "cannot open %s: %s", path, strerror (errno));
        return -1;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new ();
    EVP_MD *sha3 = EVP_MD_fetch (NULL, "SHA3-256", NULL);
    int rc = -1;
    uint64_t total = 0;
    if (md && sha3 && EVP_DigestInit_ex (md, sha3, NULL) == 1) {
        char *buffer = malloc (65536);
        assert (buffer);
        ssize_t got;
        while ((got = read (fd, buffer, 65536)) > 0 || (got < 0 && errno == EINTR)) {
            if (got > 0) {
                EVP_DigestUpdate (md, buffer, (size_t) got);
                total += (uint64_t) got;
            }
        }
        free (buffer);
        unsigned int length = 0;
        if (got == 0 && EVP_DigestFinal_ex (md, hash, &length) == 1)
            rc = 0;
        else
            snprintf (reason, reason_size, "cannot read %s: %s", path, strerror (errno));
    }
    else
        snprintf (reason, reason_size, "SHA3-256 is not available");
    EVP_MD_free (sha3);
    EVP_MD_CTX_free (md);
    close (fd);
    if (size)
        *size = total;
    return rc;
}

//  ---------------------------------------------------------------- jobs

struct _umb_upload_job_t {
    pid_t  pid;
    int    fd;
    bool   eof;
    bool   reaped;
    char  *what;              //  "unpacking data.tar", for reasons
    char  *sanitize;          //  directory to clean up after an unpack, or NULL
    char   tail [512];        //  the end of the child's output
    size_t tail_size;
};

static umb_upload_job_t *
s_job_spawn (const char *const argv [], const char *what, char *reason, size_t reason_size)
{
    int pipe_fds [2];
    if (pipe2 (pipe_fds, O_CLOEXEC) == -1) {
        snprintf (reason, reason_size, "cannot make a pipe: %s", strerror (errno));
        return NULL;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2 (&actions, pipe_fds [1], 1);
    posix_spawn_file_actions_adddup2 (&actions, pipe_fds [1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init (&attr);
    //  its own process group, so a kill reaches a decompressor it started
    posix_spawnattr_setpgroup (&attr, 0);
    sigset_t none, all;
    sigemptyset (&none);
    sigfillset (&all);
    posix_spawnattr_setsigmask (&attr, &none);
    posix_spawnattr_setsigdefault (&attr, &all);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK
                                   | POSIX_SPAWN_SETSIGDEF);
    char *const envp [] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };
    pid_t pid = -1;
    int rc = posix_spawn (&pid, argv [0], &actions, &attr, (char *const *) argv, envp);
    posix_spawn_file_actions_destroy (&actions);
    posix_spawnattr_destroy (&attr);
    close (pipe_fds [1]);
    if (rc != 0) {
        close (pipe_fds [0]);
        snprintf (reason, reason_size, "cannot run %s: %s", argv [0], strerror (rc));
        return NULL;
    }
    umb_upload_job_t *self = calloc (1, sizeof (umb_upload_job_t));
    assert (self);
    self->pid = pid;
    self->fd = pipe_fds [0];
    self->what = strdup (what);
    return self;
}

umb_upload_job_t *
umb_upload_unpack_start (const char *archive, const char *dest, char *reason, size_t reason_size)
{
    assert (archive && dest);
    unsigned char magic [4] = { 0 };
    int fd = open (archive, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        snprintf (reason, reason_size, "cannot open the archive: %s", strerror (errno));
        return NULL;
    }
    ssize_t got = read (fd, magic, sizeof magic);
    close (fd);
    umb_upload_job_t *self = NULL;
    if (got == 4 && memcmp (magic, "PK\x03\x04", 4) == 0) {
        //  Python's zipfile never makes symbolic links and drops absolute and
        //  ".." parts of names; unzip is the fallback for guests without Python
        if (access ("/usr/bin/python3", X_OK) == 0) {
            const char *argv [] = { "/usr/bin/python3", "-I", "-c",
                                    "import sys, zipfile\n"
                                    "zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])\n",
                                    archive, dest, NULL };
            self = s_job_spawn (argv, "unpacking a zip archive", reason, reason_size);
        }
        else
        if (access ("/usr/bin/unzip", X_OK) == 0) {
            const char *argv [] = { "/usr/bin/unzip", "-qq", "-n", archive, "-d", dest, NULL };
            self = s_job_spawn (argv, "unpacking a zip archive", reason, reason_size);
        }
        else {
            snprintf (reason, reason_size, "zip archives need python3 or unzip, which this guest lacks");
            return NULL;
        }
    }
    else {
        const char *argv [] = { "/bin/tar", "-x", "-f", archive, "-C", dest,
                                "--no-same-owner", "--no-same-permissions", "--no-overwrite-dir",
                                NULL };
        self = s_job_spawn (argv, "unpacking a tar archive", reason, reason_size);
    }
    if (self)
        self->sanitize = strdup (dest);
    return self;
}

umb_upload_job_t *
umb_upload_pack_start (const char *dir, const char *tar_path, char *reason, size_t reason_size)
{
    assert (dir && tar_path);
    const char *argv [] = { "/bin/tar", "-C", dir, "-c", "-f", tar_path, "--format=ustar",
                            "--numeric-owner", "--owner=0", "--group=0", "--sort=name", ".", NULL };
    return s_job_spawn (argv, "packing the results", reason, reason_size);
}

int
umb_upload_job_fd (umb_upload_job_t *self)
{
    assert (self);
    return self->fd;
}

int
umb_upload_job_read (umb_upload_job_t *self)
{
    assert (self);
    if (self->eof)
        return 1;
    char buffer [4096];
    ssize_t got = read (self->fd, buffer, sizeof buffer);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (got <= 0) {
        self->eof = true;
        return 1;
    }
    //  keep the last bytes only
    size_t size = (size_t) got;
    if (size >= sizeof self->tail) {
        memcpy (self->tail, buffer + size - sizeof self->tail, sizeof self->tail);
        self->tail_size = sizeof self->tail;
    }
    else {
        size_t keep = self->tail_size + size > sizeof self->tail ? sizeof self->tail - size
                                                                  : self->tail_size;
        memmove (self->tail, self->tail + self->tail_size - keep, keep);
        memcpy (self->tail + keep, buffer, size);
        self->tail_size = keep + size;
    }
    return 0;
}

//  An unpacked dataset holds only directories, regular files and symbolic
//  links, read-only, without set-id bits, whatever the archive said.
static int
s_sanitize_one (const char *path, const struct stat *info, int type, struct FTW *ftw)
{
    (void) ftw;
    if (type == FTW_SL || type == FTW_SLN)
        return 0;
    if (type == FTW_F && !S_ISREG (info->st_mode)) {
        unlink (path);                  //  devices, fifos, sockets
        return 0;
    }
    if (type == FTW_F)
        chmod (path, (info->st_mode & 0111) ? 0555 : 0444);
    else
    if (type == FTW_DP)
        chmod (path, 0555);
    return 0;
}

static void
s_last_line (const char *text, size_t size, char *line, size_t line_size)
{
    while (size > 0 && (text [size - 1] == '\n' || text [size - 1] == '\r'))
        size--;
    size_t start = size;
    while (start > 0 && text [start - 1] != '\n')
        start--;
    size_t length = size - start;
    if (length >= line_size)
        length = line_size - 1;
    for (size_t i = 0; i < length; i++) {
        char c = text [start + i];
        line [i] = (c >= 32 && c < 127) ? c : '?';
    }
    line [length] = 0;
}

int
umb_upload_job_finish (umb_upload_job_t *self, char *reason, size_t reason_size)
{
    assert (self);
    int status = 0;
    if (!self->reaped) {
        while (waitpid (self->pid, &status, 0) == -1 && errno == EINTR)
            ;
        self->reaped = true;
    }
    char line [256];
    s_last_line (self->tail, self->tail_size, line, sizeof line);
    if (WIFEXITED (status) && WEXITSTATUS (status) == 0) {
        if (self->sanitize)
            nftw (self->sanitize, s_sanitize_one, 32, FTW_PHYS | FTW_DEPTH);
        return 0;
    }
    if (WIFEXITED (status))
        snprintf (reason, reason_size, "%s failed (exit %d)%s%s", self->what, WEXITSTATUS (status),
                  *line ? ": " : "", line);
    else
        snprintf (reason, reason_size, "%s failed (signal %d)", self->what,
                  WIFSIGNALED (status) ? WTERMSIG (status) : 0);
    return -1;
}

void
umb_upload_job_destroy (umb_upload_job_t **self_p)
{
    assert (self_p);
    umb_upload_job_t *self = *self_p;
    if (self) {
        if (!self->reaped) {
            kill (-self->pid, SIGKILL);
            kill (self->pid, SIGKILL);
            while (waitpid (self->pid, NULL, 0) == -1 && errno == EINTR)
                ;
        }
        close (self->fd);
        free (self->what);
        free (self->sanitize);
        free (self);
        *self_p = NULL;
    }
}

int
umb_upload_job_wait (umb_upload_job_t **self_p, char *reason, size_t reason_size)
{
    assert (self_p && *self_p);
    while (umb_upload_job_read (*self_p) == 0)
        ;
    int rc = umb_upload_job_finish (*self_p, reason, reason_size);
    umb_upload_job_destroy (self_p);
    return rc;
}

//  ---------------------------------------------------------------- selftest

static void
s_test_run (const char *command)
{
    int rc = system (command);
    assert (rc == 0);
}

void
umb_upload_test (bool verbose)
{
    printf (" * umb_upload: ");
    char dir [] = "/tmp/umb_upload_test.XXXXXX";
    assert (mkdtemp (dir));
    char reason [512] = "";
    char path [4096], command [8192];

    //  Streamed write, hashed while written: SHA3-256("abc") (FIPS 202 vector)
    umb_upload_t *upload = umb_upload_new (dir, 3, reason, sizeof reason);
    assert (upload);
    bool too_large = true;
    assert (umb_upload_write (upload, "a", 1, &too_large, reason, sizeof reason) == 0);
    assert (!too_large);
    assert (umb_upload_write (upload, "bc", 2, &too_large, reason, sizeof reason) == 0);
    assert (umb_upload_received (upload) == 3);
    uint8_t hash [32];
    umb_upload_hash (upload, hash);
    static const uint8_t abc [32] = {
        0x3a, 0x98, 0x5d, 0xa7, 0x4f, 0xe2, 0x25, 0xb2, 0x04, 0x5c, 0x17, 0x2d, 0x6b, 0xd3, 0x90, 0xbd,
        0x85, 0x5f, 0x08, 0x6e, 0x3e, 0x9d, 0x52, 0x5b, 0x46, 0xbf, 0xe2, 0x45, 0x11, 0x43, 0x15, 0x32 };
    assert (memcmp (hash, abc, 32) == 0);
    snprintf (path, sizeof path, "%s/abc", dir);
    assert (umb_upload_commit (upload, path, 0444, reason, sizeof reason) == 0);
    umb_upload_destroy (&upload);
    struct stat info;
    assert (stat (path, &info) == 0 && info.st_size == 3 && (info.st_mode & 0777) == 0444);
    uint64_t size = 0;
    assert (umb_upload_hash_file (path, hash, &size, reason, sizeof reason) == 0);
    assert (size == 3 && memcmp (hash, abc, 32) == 0);
    unlink (path);

    //  More than announced is refused; an abandoned upload leaves no file
    upload = umb_upload_new (dir, 4, reason, sizeof reason);
    assert (umb_upload_write (upload, "abc", 3, &too_large, reason, sizeof reason) == 0);
    assert (umb_upload_write (upload, "de", 2, &too_large, reason, sizeof reason) == -1);
    assert (too_large && strstr (reason, "announced size"));
    assert (umb_upload_write (upload, "d", 1, &too_large, reason, sizeof reason) == -1);
    umb_upload_destroy (&upload);
    snprintf (command, sizeof command, "test -z \"$(ls -A %s)\"", dir);
    s_test_run (command);

    //  Unpack a tar.gz; a member with ".." or an absolute path never lands outside
    snprintf (command, sizeof command,
              "cd %s && mkdir -p src/sub out && echo one > src/a.txt && echo two > src/sub/b.txt"
              " && chmod 4755 src/a.txt && mkfifo src/fifo"
              " && tar -C src -czf good.tgz . && rm -rf src", dir);
    s_test_run (command);
    snprintf (path, sizeof path, "%s/good.tgz", dir);
    char out [4096];
    snprintf (out, sizeof out, "%s/out", dir);
    umb_upload_job_t *job = umb_upload_unpack_start (path, out, reason, sizeof reason);
    assert (job);
    assert (umb_upload_job_wait (&job, reason, sizeof reason) == 0);
    snprintf (path, sizeof path, "%s/out/sub/b.txt", dir);
    assert (stat (path, &info) == 0 && info.st_size == 4);
    snprintf (path, sizeof path, "%s/out/a.txt", dir);
    assert (stat (path, &info) == 0 && (info.st_mode & 07777) == 0555);
    snprintf (path, sizeof path, "%s/out/fifo", dir);
    assert (lstat (path, &info) == -1);

    //  A hostile tar: ../escape.txt and /tmp-absolute names
    snprintf (command, sizeof command,
              "cd %s && mkdir -p evil/in out2 && echo bad > evil/escape.txt && echo abs > evil/abs.txt"
              " && tar -C evil/in -cf evil.tar --absolute-names ../escape.txt %s/evil/abs.txt"
              " 2>/dev/null", dir, dir);
    s_test_run (command);
    snprintf (path, sizeof path, "%s/evil.tar", dir);
    snprintf (out, sizeof out, "%s/out2", dir);
    job = umb_upload_unpack_start (path, out, reason, sizeof reason);
    assert (job);
    //  tar may or may not call this a failure; nothing may escape either way
    umb_upload_job_wait (&job, reason, sizeof reason);
    snprintf (path, sizeof path, "%s/escape.txt", dir);
    assert (access (path, F_OK) == -1);
    snprintf (path, sizeof path, "%s/out2%s/evil/abs.txt", dir, dir);
    assert (access (path, F_OK) == 0);         //  leading "/" stripped: inside out2

    //  A symbolic link pointing out, then a member through it: nothing lands outside
    snprintf (command, sizeof command,
              "cd %s && mkdir -p outside out4 && /usr/bin/python3 -c \"import io, sys, tarfile\n"
              "t = tarfile.open('link.tar', 'w')\n"
              "l = tarfile.TarInfo('a'); l.type = tarfile.SYMTYPE; l.linkname = '%s/outside'\n"
              "t.addfile(l)\n"
              "r = tarfile.TarInfo('b'); r.type = tarfile.SYMTYPE; r.linkname = '../outside'\n"
              "t.addfile(r)\n"
              "for name in ('a/pwn.txt', 'b/pwn2.txt'):\n"
              "    f = tarfile.TarInfo(name); f.size = 3; t.addfile(f, io.BytesIO(b'bad'))\n"
              "t.close()\"", dir, dir);
    if (access ("/usr/bin/python3", X_OK) == 0) {
        s_test_run (command);
        snprintf (path, sizeof path, "%s/link.tar", dir);
        snprintf (out, sizeof out, "%s/out4", dir);
        job = umb_upload_unpack_start (path, out, reason, sizeof reason);
        assert (job);
        umb_upload_job_wait (&job, reason, sizeof reason);
        snprintf (path, sizeof path, "%s/outside/pwn.txt", dir);
        assert (access (path, F_OK) == -1);
        snprintf (path, sizeof path, "%s/outside/pwn2.txt", dir);
        assert (access (path, F_OK) == -1);
    }

    //  Not an archive: failure with tar's reason
    snprintf (path, sizeof path, "%s/junk", dir);
    FILE *file = fopen (path, "w");
    fputs ("this is not a tar archive at all, it is just some text\n", file);
    fclose (file);
    job = umb_upload_unpack_start (path, out, reason, sizeof reason);
    assert (job);
    assert (umb_upload_job_wait (&job, reason, sizeof reason) == -1);
    assert (strstr (reason, "unpacking a tar archive failed"));

    //  zip (python3 builds the archive, and unpacks it)
    if (access ("/usr/bin/python3", X_OK) == 0) {
        snprintf (command, sizeof command,
                  "cd %s && mkdir out3 && /usr/bin/python3 -c \"import zipfile; "
                  "z = zipfile.ZipFile('d.zip', 'w'); z.writestr('x/y.csv', 'a,b\\n'); "
                  "z.writestr('../zz.txt', 'no'); z.writestr('/abs.txt', 'no'); z.close()\"", dir);
        s_test_run (command);
        snprintf (path, sizeof path, "%s/d.zip", dir);
        snprintf (out, sizeof out, "%s/out3", dir);
        job = umb_upload_unpack_start (path, out, reason, sizeof reason);
        assert (job);
        umb_upload_job_wait (&job, reason, sizeof reason);
        snprintf (path, sizeof path, "%s/out3/x/y.csv", dir);
        assert (access (path, F_OK) == 0);
        snprintf (path, sizeof path, "%s/zz.txt", dir);
        assert (access (path, F_OK) == -1);
        assert (access ("/abs.txt", F_OK) == -1);
    }

    //  Pack a directory into ustar
    snprintf (command, sizeof command,
              "cd %s && mkdir -p res/deep && echo 42 > res/answer.txt && echo x > res/deep/y", dir);
    s_test_run (command);
    snprintf (path, sizeof path, "%s/res", dir);
    snprintf (out, sizeof out, "%s/result.tar", dir);
    job = umb_upload_pack_start (path, out, reason, sizeof reason);
    assert (job && umb_upload_job_fd (job) >= 0);
    assert (umb_upload_job_wait (&job, reason, sizeof reason) == 0);
    file = fopen (out, "rb");
    assert (file);
    char block [512];
    assert (fread (block, 1, 512, file) == 512);
    fclose (file);
    assert (memcmp (block + 257, "ustar\0" "00", 8) == 0);
    snprintf (command, sizeof command, "tar -tf %s | grep -q '^./deep/y$'", out);
    s_test_run (command);

    //  A job killed midway is reaped
    snprintf (path, sizeof path, "%s/no-such-dir", dir);
    job = umb_upload_pack_start (path, out, reason, sizeof reason);
    assert (job);
    umb_upload_job_destroy (&job);
    assert (!job);

    snprintf (command, sizeof command, "chmod -R u+w %s && rm -rf %s", dir, dir);
    s_test_run (command);
    assert (access (dir, F_OK) == -1);
    if (verbose)
        printf ("(tar, tar.gz, zip, ustar) ");
    printf ("OK\n");
}
