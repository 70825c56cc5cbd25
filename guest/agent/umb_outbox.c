//  umb_outbox - the agent's bounded on-disk event queue
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <czmq.h>
#include "umb_outbox.h"

struct _umb_outbox_t {
    char     *dir;
    size_t    max_bytes;
    uint64_t  first;            //  seq of sizes [0]; meaningful when count > 0
    uint64_t  last;             //  last seq given
    uint32_t *sizes;            //  file size of seq first + i (0: missing)
    size_t    count;
    size_t    alloc;
    size_t    bytes;
    uint64_t  dropped;          //  log lines dropped, not yet stored as an event
};

static void
s_path (umb_outbox_t *self, uint64_t seq, char *path, size_t size)
{
    snprintf (path, size, "%s/%020" PRIu64 ".ev", self->dir, seq);
}

static int
s_write_file (const char *dir, const char *name, const void *data, size_t size, bool sync)
{
    char tmp [4096], path [4096];
    snprintf (tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf (path, sizeof path, "%s/%s", dir, name);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1)
        return -1;
    const char *cursor = data;
    size_t left = size;
    while (left > 0) {
        ssize_t done = write (fd, cursor, left);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0) {
            close (fd);
            unlink (tmp);
            return -1;
        }
        cursor += done;
        left -= (size_t) done;
    }
    if ((sync && fdatasync (fd) == -1) || close (fd) == -1 || rename (tmp, path) == -1) {
        unlink (tmp);
        return -1;
    }
    return 0;
}

static void
s_push (umb_outbox_t *self, uint64_t seq, uint32_t size)
{
    if (self->count == 0)
        self->first = seq;
    assert (seq >= self->first);
    size_t index = (size_t) (seq - self->first);
    if (index >= self->alloc) {
        size_t alloc = self->alloc ? self->alloc * 2 : 64;
        while (alloc <= index)
            alloc *= 2;
        self->sizes = realloc (self->sizes, alloc * sizeof (uint32_t));
        assert (self->sizes);
        memset (self->sizes + self->alloc, 0, (alloc - self->alloc) * sizeof (uint32_t));
        self->alloc = alloc;
    }
    self->sizes [index] = size;
    if (index + 1 > self->count)
        self->count = index + 1;
    self->bytes += size;
}

static int
s_compare_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

umb_outbox_t *
umb_outbox_new (const char *dir, size_t max_bytes, char *reason, size_t reason_size)
{
    assert (dir);
    if (mkdir (dir, 0700) == -1 && errno != EEXIST) {
        snprintf (reason, reason_size, "cannot create %s: %s", dir, strerror (errno));
        return NULL;
    }
    DIR *handle = opendir (dir);
    if (!handle) {
        snprintf (reason, reason_size, "cannot open %s: %s", dir, strerror (errno));
        return NULL;
    }
    umb_outbox_t *self = calloc (1, sizeof (umb_outbox_t));
    assert (self);
    self->dir = strdup (dir);
    self->max_bytes = max_bytes;

    //  Continue where the last process stopped
    uint64_t *seqs = NULL;
    size_t seq_count = 0, seq_alloc = 0;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        const char *name = entry->d_name;
        size_t length = strlen (name);
        if (name [0] == '.' && length > 4 && streq (name + length - 4, ".tmp")) {
            char path [4096];
            snprintf (path, sizeof path, "%s/%s", dir, name);
            unlink (path);              //  a write the last process did not finish
            continue;
        }
        if (length != 23 || !streq (name + 20, ".ev") || strspn (name, "0123456789") != 20)
            continue;
        if (seq_count == seq_alloc) {
            seq_alloc = seq_alloc ? seq_alloc * 2 : 64;
            seqs = realloc (seqs, seq_alloc * sizeof (uint64_t));
            assert (seqs);
        }
        seqs [seq_count++] = strtoull (name, NULL, 10);
    }
    closedir (handle);
    if (seq_count)
        qsort (seqs, seq_count, sizeof (uint64_t), s_compare_u64);
    for (size_t i = 0; i < seq_count; i++) {
        char path [4096];
        s_path (self, seqs [i], path, sizeof path);
        struct stat info;
        if (seqs [i] == 0 || stat (path, &info) == -1)
            continue;
        s_push (self, seqs [i], (uint32_t) info.st_size);
        self->last = seqs [i];
    }
    free (seqs);
    char path [4096];
    snprintf (path, sizeof path, "%s/acked", dir);
    FILE *file = fopen (path, "r");
    if (file) {
        uint64_t acked = 0;
        if (fscanf (file, "%" SCNu64, &acked) == 1 && acked > self->last)
            self->last = acked;
        fclose (file);
    }
    return self;
}

void
umb_outbox_destroy (umb_outbox_t **self_p)
{
    assert (self_p);
    umb_outbox_t *self = *self_p;
    if (self) {
        free (self->sizes);
        free (self->dir);
        free (self);
        *self_p = NULL;
    }
}

static int64_t
s_store (umb_outbox_t *self, const char *type, const char *state, const char *message,
         char *reason, size_t reason_size)
{
    uint64_t seq = self->last + 1;
    size_t length = message ? strlen (message) : 0;
    if (length > UMB_OUTBOX_MAX_MESSAGE)
        length = UMB_OUTBOX_MAX_MESSAGE;
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_int (w, "seq", (int64_t) seq);
    umb_w_kv_int (w, "time", (int64_t) time (NULL));
    umb_w_kv_str (w, "type", type);
    umb_w_kv_str (w, "state", state ? state : "");
    umb_w_key (w, "message");
    umb_w_strn (w, message ? message : "", length);
    umb_w_map_end (w);
    size_t size;
    const void *data = umb_w_data (w, &size);
    char name [32];
    snprintf (name, sizeof name, "%020" PRIu64 ".ev", seq);
    int rc = s_write_file (self->dir, name, data, size, !streq (type, "log"));
    umb_w_destroy (&w);
    if (rc == -1) {
        snprintf (reason, reason_size, "cannot write event %" PRIu64 " in %s: %s", seq, self->dir,
                  strerror (errno));
        return -1;
    }
    self->last = seq;
    s_push (self, seq, (uint32_t) size);
    return (int64_t) seq;
}

static int
s_flush_dropped (umb_outbox_t *self, const char *state, char *reason, size_t reason_size)
{
    if (self->dropped == 0)
        return 0;
    char message [96];
    snprintf (message, sizeof message, "%" PRIu64 " log line%s did not fit the event queue",
              self->dropped, self->dropped == 1 ? "" : "s");
    if (s_store (self, "dropped", state, message, reason, reason_size) < 0)
        return -1;
    self->dropped = 0;
    return 0;
}

int64_t
umb_outbox_append (umb_outbox_t *self, const char *type, const char *state, const char *message,
                   char *reason, size_t reason_size)
{
    assert (self && type);
    assert (streq (type, "state") || streq (type, "log") || streq (type, "dropped"));
    if (streq (type, "log")) {
        //  room for the line and a dropped notice; leave it to the next ack otherwise
        size_t estimate = 64 + strlen (type) + (state ? strlen (state) : 0)
                        + (message ? strlen (message) : 0);
        if (self->dropped > 0 || self->bytes + estimate > self->max_bytes) {
            if (self->dropped > 0 && self->bytes + estimate + 160 <= self->max_bytes) {
                if (s_flush_dropped (self, state, reason, reason_size))
                    return -1;
            }
            else {
                self->dropped++;
                return 0;
            }
        }
    }
    else
    if (s_flush_dropped (self, state, reason, reason_size))
        return -1;
    return s_store (self, type, state, message, reason, reason_size);
}

size_t
umb_outbox_ack (umb_outbox_t *self, uint64_t upto)
{
    assert (self);
    if (upto > self->last)
        upto = self->last;
    size_t deleted = 0;
    while (self->count > 0 && self->first <= upto) {
        if (self->sizes [0] > 0) {
            char path [4096];
            s_path (self, self->first, path, sizeof path);
            unlink (path);
            self->bytes -= self->sizes [0];
            deleted++;
        }
        memmove (self->sizes, self->sizes + 1, (self->count - 1) * sizeof (uint32_t));
        self->sizes [--self->count] = 0;
        self->first++;
    }
    if (deleted) {
        //  so sequence numbers continue after a restart with an empty queue
        char text [32];
        int length = snprintf (text, sizeof text, "%" PRIu64 "\n", upto);
        s_write_file (self->dir, "acked", text, (size_t) length, false);
        //  room was made: report dropped lines now rather than with the next line
        char reason [256];
        if (self->dropped > 0 && self->bytes + 256 <= self->max_bytes)
            s_flush_dropped (self, NULL, reason, sizeof reason);
    }
    return deleted;
}

size_t
umb_outbox_read (umb_outbox_t *self, uint64_t after, size_t max, umb_w_t *w)
{
    assert (self && w);
    umb_w_array_begin (w);
    size_t written = 0;
    uint64_t seq = after + 1 > self->first ? after + 1 : self->first;
    for (; self->count > 0 && seq < self->first + self->count && written < max; seq++) {
        uint32_t size = self->sizes [seq - self->first];
        if (size == 0)
            continue;
        char path [4096];
        s_path (self, seq, path, sizeof path);
        int fd = open (path, O_RDONLY | O_CLOEXEC);
        if (fd == -1)
            continue;
        char *data = malloc (size);
        assert (data);
        ssize_t got = read (fd, data, size);
        close (fd);
        //  only a complete, valid map goes out: a damaged file is skipped
        char *error = NULL;
        umb_msg_t *msg = got == (ssize_t) size ? umb_msg_decode (data, size, &error) : NULL;
        if (msg && umb_msg_is_map (msg)) {
            umb_w_raw (w, data, size);
            written++;
        }
        free (error);
        umb_msg_destroy (&msg);
        free (data);
    }
    umb_w_array_end (w);
    return written;
}

uint64_t umb_outbox_last (umb_outbox_t *self)  { assert (self); return self->last; }
uint64_t umb_outbox_first (umb_outbox_t *self) { assert (self); return self->count ? self->first : 0; }
size_t   umb_outbox_bytes (umb_outbox_t *self) { assert (self); return self->bytes; }
uint64_t umb_outbox_pending_dropped (umb_outbox_t *self) { assert (self); return self->dropped; }

size_t
umb_outbox_count (umb_outbox_t *self)
{
    assert (self);
    size_t kept = 0;
    for (size_t i = 0; i < self->count; i++)
        kept += self->sizes [i] > 0;
    return kept;
}

//  ---------------------------------------------------------------- selftest

static umb_msg_t *
s_test_read (umb_outbox_t *outbox, uint64_t after, size_t max, size_t expect)
{
    umb_w_t *w = umb_w_new ();
    assert (umb_outbox_read (outbox, after, max, w) == expect);
    size_t size;
    const void *data = umb_w_data (w, &size);
    umb_msg_t *msg = umb_msg_decode (data, size, NULL);
    assert (msg && umb_msg_type (msg) == MSGPACK_OBJECT_ARRAY && umb_msg_size (msg) == expect);
    umb_w_destroy (&w);
    return msg;
}

void
umb_outbox_test (bool verbose)
{
    printf (" * umb_outbox: ");
    char dir [] = "/tmp/umb_outbox_test.XXXXXX";
    assert (mkdtemp (dir));
    char events [4096];
    snprintf (events, sizeof events, "%s/events", dir);
    char reason [256] = "";

    umb_outbox_t *outbox = umb_outbox_new (events, 2000, reason, sizeof reason);
    assert (outbox);
    assert (umb_outbox_last (outbox) == 0 && umb_outbox_first (outbox) == 0);
    assert (umb_outbox_append (outbox, "state", "Idle", "started", reason, sizeof reason) == 1);
    assert (umb_outbox_append (outbox, "log", "Running", "stdout: hello", reason, sizeof reason) == 2);
    umb_msg_t *msg = s_test_read (outbox, 0, 10, 2);
    umb_msg_t *event = umb_msg_at (msg, 1);
    assert (umb_msg_int (event, "seq", 0, INT64_MAX, 0, true) == 2);
    assert (streq (umb_msg_str (event, "type", 10, true), "log"));
    assert (streq (umb_msg_str (event, "state", 20, true), "Running"));
    assert (streq (umb_msg_str (event, "message", 100, true), "stdout: hello"));
    assert (umb_msg_int (event, "time", 0, INT64_MAX, 0, true) > 1600000000);
    umb_msg_destroy (&msg);
    msg = s_test_read (outbox, 1, 10, 1);
    umb_msg_destroy (&msg);
    msg = s_test_read (outbox, 0, 1, 1);
    umb_msg_destroy (&msg);

    //  The bound: log lines beyond it are counted, state events always kept
    char line [300];
    memset (line, 'x', sizeof line - 1);
    line [sizeof line - 1] = 0;
    size_t stored = 0, dropped = 0;
    for (int i = 0; i < 20; i++) {
        int64_t seq = umb_outbox_append (outbox, "log", "Running", line, reason, sizeof reason);
        assert (seq >= 0);
        if (seq > 0)
            stored++;
        else
            dropped++;
    }
    assert (stored >= 3 && dropped >= 10);
    assert (umb_outbox_bytes (outbox) <= 2000);
    assert (umb_outbox_pending_dropped (outbox) == dropped);
    uint64_t before = umb_outbox_last (outbox);
    //  A state event over the bound is kept, after a dropped notice
    int64_t seq = umb_outbox_append (outbox, "state", "Failed", "crash", reason, sizeof reason);
    assert (seq == (int64_t) before + 2);
    assert (umb_outbox_pending_dropped (outbox) == 0);
    msg = s_test_read (outbox, before, 10, 2);
    event = umb_msg_at (msg, 0);
    assert (streq (umb_msg_str (event, "type", 10, true), "dropped"));
    char expect [64];
    snprintf (expect, sizeof expect, "%zu log lines", dropped);
    assert (strstr (umb_msg_str (event, "message", 100, true), expect));
    assert (streq (umb_msg_str (umb_msg_at (msg, 1), "type", 10, true), "state"));
    umb_msg_destroy (&msg);

    //  Acknowledgement deletes the files
    uint64_t last = umb_outbox_last (outbox);
    assert (umb_outbox_ack (outbox, 2) == 2);
    assert (umb_outbox_first (outbox) == 3);
    char path [8300];
    snprintf (path, sizeof path, "%s/%020d.ev", events, 1);
    assert (access (path, F_OK) == -1);
    msg = s_test_read (outbox, 0, 100, last - 2);
    assert (umb_msg_int (umb_msg_at (msg, 0), "seq", 0, INT64_MAX, 0, true) == 3);
    umb_msg_destroy (&msg);
    size_t kept = umb_outbox_count (outbox);
    size_t bytes = umb_outbox_bytes (outbox);

    //  Reopen after a restart: same events, numbering continues
    umb_outbox_destroy (&outbox);
    outbox = umb_outbox_new (events, 2000, reason, sizeof reason);
    assert (outbox);
    assert (umb_outbox_last (outbox) == last);
    assert (umb_outbox_first (outbox) == 3);
    assert (umb_outbox_count (outbox) == kept && umb_outbox_bytes (outbox) == bytes);
    msg = s_test_read (outbox, 2, 100, kept);
    umb_msg_destroy (&msg);

    //  Ack everything, reopen: the queue is empty and numbering still continues
    assert (umb_outbox_ack (outbox, last) == kept);
    assert (umb_outbox_ack (outbox, last + 100) == 0);
    assert (umb_outbox_bytes (outbox) == 0 && umb_outbox_first (outbox) == 0);
    //  room again: a line that fits is stored
    assert (umb_outbox_append (outbox, "log", "Running", "stderr: late", reason, sizeof reason)
            == (int64_t) last + 1);
    umb_outbox_ack (outbox, last + 1);
    umb_outbox_destroy (&outbox);
    outbox = umb_outbox_new (events, 2000, reason, sizeof reason);
    assert (umb_outbox_last (outbox) == last + 1);
    assert (umb_outbox_append (outbox, "state", "Complete", NULL, reason, sizeof reason)
            == (int64_t) last + 2);
    msg = s_test_read (outbox, last + 1, 100, 1);
    umb_msg_destroy (&msg);

    //  A long line is cut to the maximum
    char *huge = malloc (10000);
    memset (huge, 'y', 9999);
    huge [9999] = 0;
    umb_outbox_destroy (&outbox);
    outbox = umb_outbox_new (events, 100000, reason, sizeof reason);
    seq = umb_outbox_append (outbox, "log", "Running", huge, reason, sizeof reason);
    assert (seq > 0);
    msg = s_test_read (outbox, (uint64_t) seq - 1, 1, 1);
    assert (strlen (umb_msg_str (umb_msg_at (msg, 0), "message", 20000, true)) == UMB_OUTBOX_MAX_MESSAGE);
    umb_msg_destroy (&msg);
    free (huge);
    umb_outbox_destroy (&outbox);

    //  An unusable directory is refused with the reason
    assert (!umb_outbox_new ("/proc/umb_outbox_nope/x", 1000, reason, sizeof reason));
    assert (strstr (reason, "cannot"));

    DIR *handle = opendir (events);
    if (handle) {
        struct dirent *entry;
        while ((entry = readdir (handle))) {
            if (entry->d_name [0] == '.' && (!entry->d_name [1] || streq (entry->d_name, "..")))
                continue;
            snprintf (path, sizeof path, "%s/%s", events, entry->d_name);
            unlink (path);
        }
        closedir (handle);
    }
    rmdir (events);
    rmdir (dir);
    assert (access (dir, F_OK) == -1);
    if (verbose)
        printf ("(%zu of 20 lines dropped) ", dropped);
    printf ("OK\n");
}
