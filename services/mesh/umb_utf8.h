//  umb_utf8 - the UTF-8 rules every reader of peer text shares
#ifndef UMB_UTF8_H_INCLUDED
#define UMB_UTF8_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Length (1..4) of the well-formed UTF-8 sequence at the start of text, or 0
//  if there is none there: a stray continuation byte, an overlong form, a
//  surrogate, a code point above U+10FFFF, or a sequence cut off by size.
size_t umb_utf8_sequence (const void *text, size_t size);
//  True if all size bytes are well-formed UTF-8 (NUL counts as valid).
bool   umb_utf8_valid (const void *text, size_t size);

void   umb_utf8_test (bool verbose);

#endif
