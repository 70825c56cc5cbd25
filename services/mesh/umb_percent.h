//  umb_percent - percent-decoding (RFC 3986) of URL paths and query strings
#ifndef UMB_PERCENT_H_INCLUDED
#define UMB_PERCENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Undoes the escapes of size bytes of text into dst, which has room for
//  size + 1 bytes, and terminates it; with plus, '+' means a space. Returns
//  the length (the bytes may hold NUL), or -1 for a bad escape. For bytes
//  that are not text (base64, DER); text wants umb_percent_decode_into.
int   umb_percent_unescape (char *dst, const char *text, size_t size, bool plus);

//  Decodes size bytes of text into dst, which has room for size + 1 bytes,
//  and terminates it. With plus, '+' means a space (query strings). Returns
//  the decoded length, or -1 for a bad escape, a NUL byte or invalid UTF-8.
int   umb_percent_decode_into (char *dst, const char *text, size_t size, bool plus);

//  The same into a new string (the caller frees it); NULL if the encoding is
//  bad, the result holds a NUL byte or is not UTF-8 (or out of memory).
char *umb_percent_decode (const char *text, size_t size, bool plus);

void  umb_percent_test (bool verbose);

#endif
