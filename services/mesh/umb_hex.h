//  umb_hex - bytes as lowercase hex, and strict hex back to bytes
#ifndef UMB_HEX_H_INCLUDED
#define UMB_HEX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Writes 2 * size lowercase hex digits and a NUL into out, which has room
//  for 2 * size + 1 bytes. Returns out.
char *umb_hex_encode (const uint8_t *data, size_t size, char *out);

//  The same into a new string (the caller frees it); NULL if out of memory.
char *umb_hex_encode_new (const uint8_t *data, size_t size);

//  Decodes hex, which must be exactly 2 * size hex digits (either case) and
//  then its NUL, into out (size bytes). 0 ok; -1 if hex is NULL, of another
//  length or holds a character that is not a hex digit (out is then
//  partly written). Not constant-time: for public values only.
int   umb_hex_decode (const char *hex, uint8_t *out, size_t size)
      __attribute__ ((warn_unused_result));

//  The value (0..15) of one hex digit of either case, or -1.
int   umb_hex_digit (char c);

void  umb_hex_test (bool verbose);

#endif
