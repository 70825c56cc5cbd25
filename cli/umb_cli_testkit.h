//  umb_cli_testkit - what the command-line clients' selftests share: the
//  platform's services behind a real gateway in this process, runs of a
//  command with its output captured, and requests that set the scene
//
//      const char *services [] = { "backends", NULL };
//      umb_cli_testkit_t *kit = umb_cli_testkit_new ("umb-cli-x", services, NULL);
//      umb_cli_testkit_run_t run = umb_cli_testkit_run (umb_cli_x_run, "x",
//          umb_cli_testkit_url (kit), token, "list", "--workspace", "lab", NULL);
//      umb_cli_testkit_expect (&run, 0, "NAME", NULL);
//      umb_cli_testkit_run_free (&run);
//      umb_cli_testkit_destroy (&kit);
#ifndef UMB_CLI_TESTKIT_H_INCLUDED
#define UMB_CLI_TESTKIT_H_INCLUDED

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <jansson.h>
#include "umb_http_client.h"

//  A command's entry point with its environment and streams given, as
//  umb_cli_certs_run.
typedef int (umb_cli_testkit_fn) (int argc, char **argv, char **envp, FILE *out, FILE *err);

//  What one run did; out and err are owned (umb_cli_testkit_run_free).
typedef struct {
    int   rc;
    char *out;
    char *err;
} umb_cli_testkit_run_t;

typedef struct _umb_cli_testkit_t umb_cli_testkit_t;

//  Starts auth, then each service named (of "certs", "backends" and "computations"; a
//  NULL-terminated list), then the gateway on 127.0.0.1:0, their endpoints
//  ipc:// in a new scratch directory /tmp/PREFIX-XXXXXX, with settings (pairs,
//  the last { NULL }; may be NULL) on top of the kit's. Asserts they started.
umb_cli_testkit_t *umb_cli_testkit_new (const char *prefix, const char *const *services,
                                        const char *const (*settings) [2]);
//  Stops what runs (in reverse), removes the scratch directory.
void        umb_cli_testkit_destroy (umb_cli_testkit_t **self_p);
//  "http://127.0.0.1:PORT" of the gateway (borrowed).
const char *umb_cli_testkit_url (umb_cli_testkit_t *self);
//  The scratch directory, for the test's own files (borrowed).
const char *umb_cli_testkit_dir (umb_cli_testkit_t *self);
//  Stops the gateway alone, so that clients find nobody there.
void        umb_cli_testkit_stop_gateway (umb_cli_testkit_t *self);

//  Runs `umbra COMMAND ARGS...` (NULL-terminated strings) through fn, with url
//  and token (either may be NULL) as UMBRA_CLIENT_URL and UMBRA_CLIENT_TOKEN.
umb_cli_testkit_run_t umb_cli_testkit_run (umb_cli_testkit_fn *fn, const char *command,
                                           const char *url, const char *token, ...);
umb_cli_testkit_run_t umb_cli_testkit_runv (umb_cli_testkit_fn *fn, const char *command,
                                            const char *url, const char *token, va_list args);
//  Defines `static umb_cli_testkit_run_t name (url, token, ARGS..., NULL)`:
//  umb_cli_testkit_run of fn as `umbra COMMAND ARGS...`, for a selftest.
#define UMB_CLI_TESTKIT_RUNNER(name, fn, command) \
    static umb_cli_testkit_run_t \
    name (const char *url, const char *token, ...) \
    { \
        va_list args; \
        va_start (args, token); \
        umb_cli_testkit_run_t run = umb_cli_testkit_runv (fn, command, url, token, args); \
        va_end (args); \
        return run; \
    }
//  Asserts the exit code and that out and err hold the parts given (when not
//  NULL), printing what came instead when they differ.
void  umb_cli_testkit_expect (umb_cli_testkit_run_t *run, int rc, const char *in_out,
                              const char *in_err);
void  umb_cli_testkit_run_free (umb_cli_testkit_run_t *run);
//  The first line of the run's out (an id, say), without the newline; the
//  caller frees.
char   *umb_cli_testkit_first_line (umb_cli_testkit_run_t *run);
//  The run's out parsed as JSON (the caller's); asserts that it is, printing
//  it when not.
json_t *umb_cli_testkit_json (umb_cli_testkit_run_t *run);

//  Runs the command (an umb_cli_testkit_run_t), checks it as
//  umb_cli_testkit_expect and frees it, in one.
#define UMB_CLI_TESTKIT_EXPECT(run_, rc_, in_out_, in_err_) do { \
        umb_cli_testkit_run_t expect_run_ = (run_); \
        umb_cli_testkit_expect (&expect_run_, rc_, in_out_, in_err_); \
        umb_cli_testkit_run_free (&expect_run_); \
    } while (0)

//  Everything written to stream (rewound), NUL-terminated; the caller frees.
char *umb_cli_testkit_slurp (FILE *stream, size_t *size);
//  Writes text (NUL-terminated), or size bytes of data, to the new file
//  dir/name; returns its path (the caller frees). Asserts it was written.
char *umb_cli_testkit_write (const char *dir, const char *name, const char *text);
char *umb_cli_testkit_write_data (const char *dir, const char *name, const void *data,
                                  size_t size);
//  The file at path, NUL-terminated, with its size and permission bits (each
//  when not NULL); NULL when it cannot be opened. The caller frees.
char *umb_cli_testkit_read (const char *path, size_t *size, mode_t *mode);
//  POSTs json (NULL: no body) and asserts the status; returns the answer's
//  string field (the caller frees), or NULL when field is NULL.
char *umb_cli_testkit_post (umb_http_client_t *client, const char *path, const char *json,
                            int status, const char *field);
//  Registers username and logs in; returns the access token (the caller frees).
char *umb_cli_testkit_user (const char *url, const char *username);
//  Creates workspace as owner (a token: its admin), invites member (a
//  username) as a member, and accepts as member_token.
void  umb_cli_testkit_workspace (const char *url, const char *workspace, const char *owner,
                                 const char *member, const char *member_token);

void  umb_cli_testkit_test (bool verbose);

#endif
