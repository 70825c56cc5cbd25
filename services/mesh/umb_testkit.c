//  umb_testkit - what the service selftests share: mesh calls through the
//  real client, checks on their replies, and scratch directories
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <czmq.h>
#include "umb_testkit.h"

umb_reply_t *
umb_testkit_callw (umb_client_t *client, const char *op, const char *token, umb_w_t *w)
{
    umb_reply_t *reply = umb_client_callw (client, op, token, w, UMB_TESTKIT_TIMEOUT, NULL);
    umb_w_destroy (&w);
    return reply;
}

umb_reply_t *
umb_testkit_call (umb_client_t *client, const char *op, const char *token, ...)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    va_list args;
    va_start (args, token);
    const char *key;
    while ((key = va_arg (args, const char *))) {
        const char *value = va_arg (args, const char *);
        umb_w_kv_str (w, key, value);
    }
    va_end (args);
    umb_w_map_end (w);
    return umb_testkit_callw (client, op, token, w);
}

void
umb_testkit_expect (umb_reply_t **reply_p, int status, const char *code, const char *error_part)
{
    umb_reply_t *reply = *reply_p;
    if (umb_reply_status (reply) != status
    ||  (code && !(umb_reply_code (reply) && streq (umb_reply_code (reply), code)))
    ||  (error_part && !(umb_reply_error (reply) && strstr (umb_reply_error (reply), error_part))))
        fprintf (stderr, "expected %d %s '%s', got %d %s '%s'\n", status, code ? code : "",
                 error_part ? error_part : "", umb_reply_status (reply),
                 umb_reply_code (reply) ? umb_reply_code (reply) : "",
                 umb_reply_error (reply) ? umb_reply_error (reply) : "");
    assert (umb_reply_status (reply) == status);
    if (code)
        assert (umb_reply_code (reply) && streq (umb_reply_code (reply), code));
    if (error_part)
        assert (umb_reply_error (reply) && strstr (umb_reply_error (reply), error_part));
    umb_reply_destroy (reply_p);
}

char *
umb_testkit_dup (umb_reply_t *reply, const char *key, size_t max)
{
    const char *value = umb_msg_str (umb_reply_body (reply), key, max, false);
    assert (value);
    return strdup (value);
}

int64_t
umb_testkit_int (umb_reply_t *reply, const char *key)
{
    return umb_msg_int (umb_reply_body (reply), key, INT64_MIN, INT64_MAX, -1, true);
}

void
umb_testkit_remove_dir (const char *dir)
{
    assert (dir);
    char *command = zsys_sprintf ("rm -rf '%s'", dir);
    assert (system (command) == 0);
    zstr_free (&command);
}

//  ---------------------------------------------------------------- selftest

//  The mesh-call helpers run against real services in the auth and certs
//  selftests; here, the scratch directories.
void
umb_testkit_test (bool verbose)
{
    if (verbose)
        printf (" * umb_testkit: ");
    char dir [] = "/tmp/umb-testkit-XXXXXX";
    assert (mkdtemp (dir));
    char *deep = zsys_sprintf ("%s/a/b", dir);
    assert (zsys_dir_create ("%s", deep) == 0);
    char *file = zsys_sprintf ("%s/file", deep);
    FILE *handle = fopen (file, "w");
    assert (handle);
    fputs ("x", handle);
    fclose (handle);
    umb_testkit_remove_dir (dir);
    struct stat info;
    assert (stat (dir, &info) == -1);
    umb_testkit_remove_dir (dir);       //  already gone: fine
    zstr_free (&file);
    zstr_free (&deep);
    if (verbose)
        printf ("OK\n");
}
