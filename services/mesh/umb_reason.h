//  umb_reason - the human reason a failing call writes for its caller
#ifndef UMB_REASON_H_INCLUDED
#define UMB_REASON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Formats the reason into reason (size bytes, always terminated, cut to
//  fit); does nothing when reason is NULL or size is 0. Returns -1, so a
//  failing path reads `return umb_reason_set (reason, size, "...", ...);`.
int  umb_reason_set (char *reason, size_t size, const char *format, ...)
     __attribute__ ((format (printf, 3, 4)));

void umb_reason_test (bool verbose);

#endif
