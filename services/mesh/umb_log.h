//  umb_log - leveled logger writing one line per record, plain text or JSON lines
#ifndef UMB_LOG_H_INCLUDED
#define UMB_LOG_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

typedef enum {
    UMB_LOG_DEBUG = 0,
    UMB_LOG_INFO  = 1,
    UMB_LOG_WARN  = 2,
    UMB_LOG_ERROR = 3
} umb_log_level_t;

typedef struct _umb_log_t umb_log_t;

//  Creates a logger for a component ("auth", "gateway", ...). Writes to stderr
//  unless umb_log_set_fd is called. Never fails except on out of memory (NULL).
umb_log_t *umb_log_new (const char *component, umb_log_level_t level, bool json);
//  A child logger sharing level, format and fd, with another component name.
umb_log_t *umb_log_dup (umb_log_t *self, const char *component);
void       umb_log_destroy (umb_log_t **self_p);

//  Writes records to fd (borrowed; the logger never closes it).
void       umb_log_set_fd (umb_log_t *self, int fd);
umb_log_level_t umb_log_level (umb_log_t *self);

//  Parses "debug|info|warn|error"; returns -1 if unknown.
int        umb_log_level_parse (const char *text);

//  Formats and writes one record atomically (a single write(2)), thread-safe.
//  Control characters in the message are escaped so a peer cannot forge lines.
//  Callers never pass secrets (passwords, tokens, private keys) here.
//  A NULL logger drops the record (modules used without logging, tests).
void       umb_log_write (umb_log_t *self, umb_log_level_t level, const char *format, ...)
               __attribute__ ((format (printf, 3, 4)));

#define umb_log_debug(log, ...) umb_log_write ((log), UMB_LOG_DEBUG, __VA_ARGS__)
#define umb_log_info(log, ...)  umb_log_write ((log), UMB_LOG_INFO,  __VA_ARGS__)
#define umb_log_warn(log, ...)  umb_log_write ((log), UMB_LOG_WARN,  __VA_ARGS__)
#define umb_log_error(log, ...) umb_log_write ((log), UMB_LOG_ERROR, __VA_ARGS__)

void       umb_log_test (bool verbose);

#endif
