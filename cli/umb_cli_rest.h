//  umb_cli_rest - what the gateway's command-line clients (`umbra certs`,
//  `umbra backends`, `umbra cvms`) share: settings to an HTTP client, calls
//  whose failures are explained on stderr, and printing JSON answers
//
//      int exit_code;
//      umb_cli_rest_t *rest = umb_cli_rest_new (config_path, envp, url, token, stderr, &exit_code);
//      if (!rest)
//          return exit_code;
//      json_t *host = umb_cli_rest_call_json (rest, "GET", "/workspaces/lab/backends/h1", NULL);
//      if (host)
//          printf ("%s\n", umb_cli_rest_str (host, "status"));
//      umb_cli_rest_destroy (&rest);
#ifndef UMB_CLI_REST_H_INCLUDED
#define UMB_CLI_REST_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <getopt.h>
#include <jansson.h>
#include "umb_config.h"
#include "umb_http_client.h"

#define UMB_CLI_REST_EXIT_OK      0
#define UMB_CLI_REST_EXIT_FAILED  1
#define UMB_CLI_REST_EXIT_USAGE   2

typedef struct _umb_cli_rest_t umb_cli_rest_t;

//  Settings: config_path (when not NULL), then UMBRA_* variables in envp, then
//  the flags url and token (either may be NULL); then a client of client.url
//  with client.token. NULL having said why on err, with *exit_code 2 (bad
//  settings) or 1 (libcurl cannot start). err is borrowed for messages.
umb_cli_rest_t    *umb_cli_rest_new (const char *config_path, char **envp, const char *url,
                                     const char *token, FILE *err, int *exit_code);
void               umb_cli_rest_destroy (umb_cli_rest_t **self_p);

//  Both borrowed: the settings (to read e.g. gateway.timeout_ms) and the client
//  (to change its time limit).
umb_config_t      *umb_cli_rest_config (umb_cli_rest_t *self);
umb_http_client_t *umb_cli_rest_client (umb_cli_rest_t *self);

//  Sends method ("GET", "POST" with body, an empty object when NULL, or
//  "DELETE") to path (percent-encoded). 0 with *response holding a 2xx answer,
//  or -1 having said why on err ("umbra: 404 not_found: no host 'x'"), the
//  response cleared. The body's text is wiped once sent.
int     umb_cli_rest_call (umb_cli_rest_t *self, const char *method, const char *path, json_t *body,
                           umb_http_response_t *response) __attribute__ ((warn_unused_result));
//  The same; the 2xx answer as a JSON object (the caller's), or NULL having
//  said why.
json_t *umb_cli_rest_call_json (umb_cli_rest_t *self, const char *method, const char *path,
                                json_t *body);

//  Every page of the list at path (a GET; "items" and "next" in each answer,
//  the next page asked for with "cursor"), page_size items a request (0: the
//  service's default); with limit (not 0) one page of limit items. The caller's:
//  one page as it came, or every page's items as one with "next" null. NULL
//  having said why on err.
json_t *umb_cli_rest_list (umb_cli_rest_t *self, const char *path, int64_t limit,
                           int64_t page_size);

//  Appends "?name=value" or "&name=value" (value percent-encoded) to *path_p,
//  which is freed and replaced (still the caller's).
void        umb_cli_rest_query (char **path_p, const char *name, const char *value);
void        umb_cli_rest_query_int (char **path_p, const char *name, int64_t value);

//  Reading a command line, `umbra GROUP COMMAND [OPTIONS] [ARGUMENTS]`:
//
//      if (argc < 2 || umb_cli_rest_is_help (argv [1]))
//          ...the group's usage
//      umb_cli_rest_getopt_start (&argc, &argv);
//      char name [64];
//      while ((option = umb_cli_rest_getopt (argc, argv, ":", options, name,
//                                            sizeof (name))) != -1)
//          ...
//          default:
//              rc = umb_cli_rest_option_error (err, option, argv [optind - 1], "cvms", "list");
//
//  Whether arg asks for help ("help", "--help" or "-h").
bool        umb_cli_rest_is_help (const char *arg);
//  Skips GROUP in *argc_p and *argv_p, so that argv [0] is COMMAND as getopt
//  wants it, and has GNU getopt start afresh, leaving messages to the caller.
void        umb_cli_rest_getopt_start (int *argc_p, char ***argv_p);
//  getopt_long over argv, with name (size bytes) set to the option as the user
//  wrote it ("--limit", "-w"), for messages.
int         umb_cli_rest_getopt (int argc, char **argv, const char *shortopts,
                                 const struct option *options, char *name, size_t size);
//  Says on err why getopt refused arg (option ':': it needs a value; else it is
//  unknown for `GROUP COMMAND`); returns UMB_CLI_REST_EXIT_USAGE.
int         umb_cli_rest_option_error (FILE *err, int option, const char *arg, const char *group,
                                       const char *command);
//  A number option's value (name as the user wrote it, for the message):
//  digits, at least min. 0 with *value, or -1 having said why on err.
int         umb_cli_rest_number (FILE *err, const char *name, const char *text, int64_t min,
                                 int64_t *value) __attribute__ ((warn_unused_result));
//  Whether value is one of choices (NULL-terminated).
bool        umb_cli_rest_one_of (const char *value, const char *const *choices);

//  The exit code of a command whose answer is root (taken; NULL when the call
//  failed, having said why), after printing it as JSON to out when json. A
//  caller that prints answers for people does so first, when not json.
int     umb_cli_rest_answer (FILE *out, bool json, json_t *root);

//  A --token (or other secret) argument: *secret_p, wiped and freed when set,
//  becomes a copy of arg, and arg is wiped in place so that it does not linger
//  in /proc/PID/cmdline.
void        umb_cli_rest_take_secret (char **secret_p, char *arg);
//  Wipes and frees *secret_p; NULLs it.
void        umb_cli_rest_wipe (char **secret_p);

//  The string at key, "" when there is none (borrowed).
const char *umb_cli_rest_str (json_t *object, const char *key);
//  The integer at key, 0 when there is none.
long long   umb_cli_rest_int (json_t *object, const char *key);
//  The Unix time at key as "2024-05-01T12:00:00Z", "-" when there is none.
void        umb_cli_rest_time (json_t *object, const char *key, char *text, size_t size);
//  value, indented, and a newline.
void        umb_cli_rest_print_json (FILE *out, json_t *value);
//  text with every control character shown as '?' (peer text never steers
//  the terminal).
void        umb_cli_rest_print_text (FILE *out, const char *text);
//  An event of a log (a CVM's, a run's) on one line: with json the event as
//  compact JSON, else "SEQ  TIME  SOURCE  TYPE  STATE  MESSAGE".
void        umb_cli_rest_print_event (FILE *out, json_t *event, bool json);

//  A command's usage text, every line indented by two spaces.
void        umb_cli_rest_usage (FILE *stream, const char *usage);
//  "usage: umbra GROUP COMMAND [OPTIONS]" and the heading of the commands'
//  usage texts, which follow.
void        umb_cli_rest_usage_group (FILE *stream, const char *group);
//  "usage: umbra GROUP" and the command's usage text (a usage error, --help).
void        umb_cli_rest_usage_command (FILE *stream, const char *group, const char *usage);
//  The options every command takes (--url, --token, --config) and the exit codes.
void        umb_cli_rest_usage_common (FILE *stream);

void        umb_cli_rest_test (bool verbose);

#endif
