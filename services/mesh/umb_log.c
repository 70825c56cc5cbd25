//  umb_log - leveled logger writing one line per record, plain text or JSON lines
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "umb_log.h"
#include "umb_utf8.h"

//  A whole record fits in PIPE_BUF, so one write(2) to a pipe (journald,
//  docker, a supervisor) is atomic and records from threads never interleave.
#define UMB_LOG_RECORD_MAX    4096
//  Component names are ours, but a long one must not eat the message budget.
#define UMB_LOG_COMPONENT_MAX 64

static const char s_ellipsis [] = "\xe2\x80\xa6";       //  U+2026

static const char *const s_text_names [] = { "DEBUG", "INFO ", "WARN ", "ERROR" };
static const char *const s_json_names [] = { "debug", "info", "warn", "error" };

struct _umb_log_t {
    char           *component;
    umb_log_level_t level;
    bool            json;
    int             fd;
};

typedef struct {
    char   data [UMB_LOG_RECORD_MAX];
    size_t used;
} s_record_t;

umb_log_t *
umb_log_new (const char *component, umb_log_level_t level, bool json)
{
    assert (component);
    assert (level >= UMB_LOG_DEBUG && level <= UMB_LOG_ERROR);
    umb_log_t *self = calloc (1, sizeof (umb_log_t));
    if (!self)
        return NULL;
    self->component = strdup (component);
    if (!self->component) {
        free (self);
        return NULL;
    }
    self->level = level;
    self->json = json;
    self->fd = STDERR_FILENO;
    return self;
}

umb_log_t *
umb_log_dup (umb_log_t *self, const char *component)
{
    assert (self);
    umb_log_t *copy = umb_log_new (component, self->level, self->json);
    if (copy)
        copy->fd = self->fd;
    return copy;
}

void
umb_log_destroy (umb_log_t **self_p)
{
    assert (self_p);
    umb_log_t *self = *self_p;
    if (self) {
        free (self->component);
        free (self);
        *self_p = NULL;
    }
}

void
umb_log_set_fd (umb_log_t *self, int fd)
{
    assert (self);
    assert (fd >= 0);
    self->fd = fd;
}

umb_log_level_t
umb_log_level (umb_log_t *self)
{
    assert (self);
    return self->level;
}

int
umb_log_level_parse (const char *text)
{
    assert (text);
    for (int level = UMB_LOG_DEBUG; level <= UMB_LOG_ERROR; level++)
        if (strcmp (text, s_json_names [level]) == 0)
            return level;
    return -1;
}

//  Encodes the character at text into piece and returns the bytes consumed.
//  Control characters (C0, DEL, C1) and bytes that are not UTF-8 become the
//  text "\n" or "\xNN", so the message is the same text in both formats and a
//  JSON consumer that prints it cannot be fed terminal escapes either.
static size_t
s_escape_next (const char *text, size_t size, bool json, char *piece, size_t *piece_size)
{
    static const char hex [] = "0123456789abcdef";
    const unsigned char *bytes = (const unsigned char *) text;
    size_t length = umb_utf8_sequence (bytes, size);
    size_t used = 0;

    if (length == 1 && bytes [0] >= 0x20 && bytes [0] != 0x7f) {
        if (json && (bytes [0] == '"' || bytes [0] == '\\'))
            piece [used++] = '\\';
        piece [used++] = text [0];
        *piece_size = used;
        return 1;
    }
    bool c1_control = length == 2 && bytes [0] == 0xc2 && bytes [1] < 0xa0;
    if (length > 1 && !c1_control) {
        memcpy (piece, text, length);
        *piece_size = length;
        return length;
    }
    if (json)
        piece [used++] = '\\';
    piece [used++] = '\\';
    if (bytes [0] == '\n')
        piece [used++] = 'n';
    else {
        piece [used++] = 'x';
        piece [used++] = hex [bytes [0] >> 4];
        piece [used++] = hex [bytes [0] & 15];
    }
    *piece_size = used;
    return 1;
}

static void
s_put (s_record_t *record, const char *text, size_t size)
{
    assert (record->used + size <= sizeof (record->data));
    memcpy (record->data + record->used, text, size);
    record->used += size;
}

static void
s_puts (s_record_t *record, const char *text)
{
    s_put (record, text, strlen (text));
}

//  Appends text escaped, ending the record at limit with an ellipsis if
//  it does not fit or was already cut short.
static void
s_put_escaped (s_record_t *record, const char *text, size_t size, size_t limit,
               bool json, bool truncated)
{
    const size_t reserve = sizeof (s_ellipsis) - 1;
    assert (limit <= sizeof (record->data) && record->used + reserve <= limit);
    size_t offset = 0;
    while (offset < size) {
        char piece [8];
        size_t piece_size;
        size_t consumed = s_escape_next (text + offset, size - offset, json, piece, &piece_size);
        if (record->used + piece_size + reserve > limit) {
            truncated = true;
            break;
        }
        s_put (record, piece, piece_size);
        offset += consumed;
    }
    if (truncated)
        s_puts (record, s_ellipsis);
}

static void
s_timestamp (char *buffer, size_t size)
{
    struct timespec now;
    struct tm tm;
    clock_gettime (CLOCK_REALTIME, &now);
    gmtime_r (&now.tv_sec, &tm);
    size_t used = strftime (buffer, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buffer + used, size - used, ".%03dZ", (int) (now.tv_nsec / 1000000));
}

void
umb_log_write (umb_log_t *self, umb_log_level_t level, const char *format, ...)
{
    assert (level >= UMB_LOG_DEBUG && level <= UMB_LOG_ERROR);
    assert (format);
    if (!self || level < self->level)
        return;

    //  Callers log an error and then return -1 to callers who read errno
    int saved_errno = errno;
    char message [UMB_LOG_RECORD_MAX];
    va_list args;
    va_start (args, format);
    int rc = vsnprintf (message, sizeof (message), format, args);
    va_end (args);
    size_t size = rc < 0? 0: (size_t) rc;
    bool truncated = size >= sizeof (message);
    if (truncated)
        size = sizeof (message) - 1;

    char timestamp [40];
    s_timestamp (timestamp, sizeof (timestamp));
    s_record_t record;
    record.used = 0;
    if (self->json) {
        s_puts (&record, "{\"ts\":\"");
        s_puts (&record, timestamp);
        s_puts (&record, "\",\"level\":\"");
        s_puts (&record, s_json_names [level]);
        s_puts (&record, "\",\"component\":\"");
        s_put_escaped (&record, self->component, strlen (self->component),
                       record.used + UMB_LOG_COMPONENT_MAX, true, false);
        s_puts (&record, "\",\"msg\":\"");
        s_put_escaped (&record, message, size, sizeof (record.data) - 3, true, truncated);
        s_puts (&record, "\"}\n");
    }
    else {
        s_puts (&record, timestamp);
        s_puts (&record, " ");
        s_puts (&record, s_text_names [level]);
        s_puts (&record, " ");
        s_put_escaped (&record, self->component, strlen (self->component),
                       record.used + UMB_LOG_COMPONENT_MAX, false, false);
        s_puts (&record, ": ");
        s_put_escaped (&record, message, size, sizeof (record.data) - 1, false, truncated);
        s_puts (&record, "\n");
    }
    size_t written = 0;
    while (written < record.used) {
        ssize_t count = write (self->fd, record.data + written, record.used - written);
        if (count < 0) {
            if (errno == EINTR)
                continue;
            break;              //  nowhere left to report it
        }
        written += (size_t) count;
    }
    errno = saved_errno;
}

//  --------------------------------------------------------------------------
//  Selftest

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <jansson.h>

#define UMB_LOG_TEST_THREADS 8
#define UMB_LOG_TEST_RECORDS 200

typedef struct {
    umb_log_t *log;
    int        number;
} s_test_thread_t;

static bool
s_streq (const char *left, const char *right)
{
    return strcmp (left, right) == 0;
}

//  Reads what is waiting on a non-blocking fd; caller frees.
static char *
s_test_drain (int fd)
{
    size_t size = 0, capacity = 65536;
    char *text = malloc (capacity + 1);
    assert (text);
    while (true) {
        if (size == capacity) {
            capacity *= 2;
            text = realloc (text, capacity + 1);
            assert (text);
        }
        ssize_t count = read (fd, text + size, capacity - size);
        if (count <= 0) {
            assert (count == 0 || errno == EAGAIN);
            break;
        }
        size += (size_t) count;
    }
    text [size] = 0;
    return text;
}

static bool
s_test_valid_utf8 (const char *text)
{
    size_t size = strlen (text);
    for (size_t offset = 0; offset < size; ) {
        size_t length = umb_utf8_sequence (text + offset, size - offset);
        if (length == 0)
            return false;
        offset += length;
    }
    return true;
}

static bool
s_test_timestamp_ok (const char *line)
{
    for (int index = 0; index < 24; index++) {
        char expect = "dddd-dd-ddTdd:dd:dd.dddZ" [index];
        if (expect == 'd'? (line [index] < '0' || line [index] > '9'): line [index] != expect)
            return false;
    }
    return true;
}

//  Checks a text record and returns what follows the timestamp.
static const char *
s_test_text_body (const char *record)
{
    assert (s_test_timestamp_ok (record));
    assert (record [24] == ' ');
    return record + 25;
}

static json_t *
s_test_json_record (const char *record)
{
    size_t size = strlen (record);
    assert (size > 0 && record [size - 1] == '\n');
    assert (strchr (record, '\n') == record + size - 1);
    json_error_t error;
    json_t *root = json_loads (record, 0, &error);
    if (!root)
        fprintf (stderr, "not JSON (%s): %s", error.text, record);
    assert (root && json_is_object (root));
    assert (json_object_size (root) == 4);
    const char *ts = json_string_value (json_object_get (root, "ts"));
    assert (ts && strlen (ts) == 24 && s_test_timestamp_ok (ts));
    return root;
}

static void *
s_test_thread (void *args)
{
    s_test_thread_t *thread = (s_test_thread_t *) args;
    char filler [2001];
    memset (filler, 'a' + thread->number, sizeof (filler) - 1);
    filler [sizeof (filler) - 1] = 0;
    for (int index = 0; index < UMB_LOG_TEST_RECORDS; index++)
        umb_log_info (thread->log, "thread %d record %d %s", thread->number, index, filler);
    return NULL;
}

void
umb_log_test (bool verbose)
{
    if (verbose)
        printf (" * umb_log: ");

    assert (umb_log_level_parse ("debug") == UMB_LOG_DEBUG);
    assert (umb_log_level_parse ("info") == UMB_LOG_INFO);
    assert (umb_log_level_parse ("warn") == UMB_LOG_WARN);
    assert (umb_log_level_parse ("error") == UMB_LOG_ERROR);
    assert (umb_log_level_parse ("INFO") == -1);
    assert (umb_log_level_parse ("warning") == -1);
    assert (umb_log_level_parse ("") == -1);

    int pipe_fds [2];
    int rc = pipe2 (pipe_fds, O_NONBLOCK | O_CLOEXEC);
    assert (rc == 0);

    //  Plain text, level filtering
    umb_log_t *log = umb_log_new ("auth", UMB_LOG_INFO, false);
    assert (log);
    assert (umb_log_level (log) == UMB_LOG_INFO);
    umb_log_set_fd (log, pipe_fds [1]);
    umb_log_debug (log, "dropped %d", 1);
    char *out = s_test_drain (pipe_fds [0]);
    assert (*out == 0);
    free (out);

    umb_log_info (log, "hello %s %d", "world", 42);
    out = s_test_drain (pipe_fds [0]);
    assert (s_streq (s_test_text_body (out), "INFO  auth: hello world 42\n"));
    free (out);
    umb_log_warn (log, "w");
    umb_log_error (log, "e");
    out = s_test_drain (pipe_fds [0]);
    assert (strlen (out) == 2 * 39);
    assert (strncmp (s_test_text_body (out), "WARN  auth: w\n", 14) == 0);
    assert (s_streq (s_test_text_body (out + 39), "ERROR auth: e\n"));
    free (out);

    //  A peer cannot forge a line or send terminal escapes
    umb_log_warn (log, "user %s", "bob\n2026-11-21T12:00:00.000Z INFO  auth: admin ok\x1b[2J\r\t\x7f");
    out = s_test_drain (pipe_fds [0]);
    assert (strchr (out, '\n') == out + strlen (out) - 1);
    assert (s_streq (s_test_text_body (out), "WARN  auth: user bob\\n2026-11-21T12:00:00.000Z "
                   "INFO  auth: admin ok\\x1b[2J\\x0d\\x09\\x7f\n"));
    free (out);

    //  UTF-8 passes; malformed bytes and C1 controls (U+009B is CSI) do not
    umb_log_info (log, "caf\xc3\xa9 \xe2\x9c\x93 \xff \xc0\xaf \xed\xa0\x80 \xc2\x9b \xe2\x9c");
    out = s_test_drain (pipe_fds [0]);
    assert (s_streq (s_test_text_body (out), "INFO  auth: caf\xc3\xa9 \xe2\x9c\x93 \\xff \\xc0\\xaf "
                   "\\xed\\xa0\\x80 \\xc2\\x9b \\xe2\\x9c\n"));
    assert (s_test_valid_utf8 (out));
    free (out);

    //  Long messages are cut to one PIPE_BUF record, on a character boundary
    char *big = malloc (20001);
    assert (big);
    memset (big, 'x', 20000);
    big [20000] = 0;
    umb_log_info (log, "%s", big);
    out = s_test_drain (pipe_fds [0]);
    size_t size = strlen (out);
    assert (size <= 4096 && size > 4000);
    assert (s_streq (out + size - 4, "\xe2\x80\xa6\n"));
    free (out);
    for (int index = 0; index < 10000; index++)
        memcpy (big + index * 2, "\xc3\xa9", 2);
    for (int shift = 0; shift < 2; shift++) {
        umb_log_info (log, "%.*s%s", shift, "y", big);
        out = s_test_drain (pipe_fds [0]);
        size = strlen (out);
        assert (size <= 4096 && size > 4000);
        assert (s_streq (out + size - 4, "\xe2\x80\xa6\n"));
        assert (s_test_valid_utf8 (out));
        assert (!strstr (out, "\\x"));
        free (out);
    }
    //  Logging does not clobber errno
    errno = ENOENT;
    umb_log_error (log, "open failed: %m");
    assert (errno == ENOENT);
    out = s_test_drain (pipe_fds [0]);
    assert (strstr (out, "open failed: No such file or directory\n"));
    free (out);

    //  A child shares fd, level and format
    umb_log_t *child = umb_log_dup (log, "auth.zap");
    assert (child);
    assert (umb_log_level (child) == UMB_LOG_INFO);
    umb_log_destroy (&log);
    assert (log == NULL);
    umb_log_destroy (&log);
    umb_log_debug (child, "dropped");
    umb_log_info (child, "admitted %s", "key");
    out = s_test_drain (pipe_fds [0]);
    assert (s_streq (s_test_text_body (out), "INFO  auth.zap: admitted key\n"));
    free (out);
    umb_log_destroy (&child);

    //  JSON lines
    log = umb_log_new ("gateway", UMB_LOG_DEBUG, true);
    assert (log);
    umb_log_set_fd (log, pipe_fds [1]);
    umb_log_debug (log, "q\"b\\n\nesc\x1b tab\t caf\xc3\xa9 bad\xfe end");
    out = s_test_drain (pipe_fds [0]);
    json_t *root = s_test_json_record (out);
    assert (s_streq (json_string_value (json_object_get (root, "level")), "debug"));
    assert (s_streq (json_string_value (json_object_get (root, "component")), "gateway"));
    assert (s_streq (json_string_value (json_object_get (root, "msg")),
                   "q\"b\\n\\nesc\\x1b tab\\x09 caf\xc3\xa9 bad\\xfe end"));
    json_decref (root);
    free (out);

    const char *levels [] = { "debug", "info", "warn", "error" };
    for (int level = UMB_LOG_DEBUG; level <= UMB_LOG_ERROR; level++) {
        umb_log_write (log, (umb_log_level_t) level, "level %d", level);
        out = s_test_drain (pipe_fds [0]);
        root = s_test_json_record (out);
        assert (s_streq (json_string_value (json_object_get (root, "level")), levels [level]));
        json_decref (root);
        free (out);
    }

    //  Escaping doubles the size of quotes; the record still fits and parses
    memset (big, '"', 5000);
    big [5000] = 0;
    umb_log_info (log, "%s", big);
    out = s_test_drain (pipe_fds [0]);
    assert (strlen (out) <= 4096);
    root = s_test_json_record (out);
    const char *msg = json_string_value (json_object_get (root, "msg"));
    assert (msg && strlen (msg) > 1900);
    assert (s_streq (msg + strlen (msg) - 3, "\xe2\x80\xa6"));
    json_decref (root);
    free (out);
    for (int index = 0; index < 6000; index++)
        big [index] = "\x01\xc3\xa9\\\n\xff" [index % 6];
    big [6000] = 0;
    umb_log_info (log, "%s", big);
    out = s_test_drain (pipe_fds [0]);
    assert (strlen (out) <= 4096);
    root = s_test_json_record (out);
    json_decref (root);
    free (out);
    umb_log_destroy (&log);

    //  Component names are escaped too
    log = umb_log_new ("we\"ird\n", UMB_LOG_INFO, true);
    assert (log);
    umb_log_set_fd (log, pipe_fds [1]);
    umb_log_info (log, "x");
    out = s_test_drain (pipe_fds [0]);
    root = s_test_json_record (out);
    assert (s_streq (json_string_value (json_object_get (root, "component")), "we\"ird\\n"));
    json_decref (root);
    free (out);
    umb_log_destroy (&log);
    free (big);
    close (pipe_fds [0]);
    close (pipe_fds [1]);

    //  Records from threads never interleave
    char path [] = "/tmp/umb_log_test_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    rc = fcntl (fd, F_SETFL, O_APPEND);
    assert (rc == 0);
    log = umb_log_new ("threads", UMB_LOG_INFO, false);
    assert (log);
    umb_log_set_fd (log, fd);
    pthread_t threads [UMB_LOG_TEST_THREADS];
    s_test_thread_t args [UMB_LOG_TEST_THREADS];
    for (int index = 0; index < UMB_LOG_TEST_THREADS; index++) {
        args [index] = (s_test_thread_t) { log, index };
        rc = pthread_create (&threads [index], NULL, s_test_thread, &args [index]);
        assert (rc == 0);
    }
    for (int index = 0; index < UMB_LOG_TEST_THREADS; index++)
        pthread_join (threads [index], NULL);
    umb_log_destroy (&log);

    FILE *file = fdopen (fd, "r");
    assert (file);
    rewind (file);
    char *line = NULL;
    size_t capacity = 0;
    int lines = 0;
    int next [UMB_LOG_TEST_THREADS] = { 0 };
    while (getline (&line, &capacity, file) > 0) {
        int number, index, consumed = 0;
        const char *body = s_test_text_body (line);
        rc = sscanf (body, "INFO  threads: thread %d record %d %n", &number, &index, &consumed);
        assert (rc == 2 && consumed > 0);
        assert (number >= 0 && number < UMB_LOG_TEST_THREADS);
        assert (index == next [number]);
        next [number]++;
        const char *filler = body + consumed;
        assert (strspn (filler, (char [2]) { (char) ('a' + number), 0 }) == 2000);
        assert (s_streq (filler + 2000, "\n"));
        lines++;
    }
    assert (lines == UMB_LOG_TEST_THREADS * UMB_LOG_TEST_RECORDS);
    free (line);
    fclose (file);
    unlink (path);

    if (verbose)
        printf ("OK\n");
}
