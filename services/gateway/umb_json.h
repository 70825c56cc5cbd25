//  umb_json - JSON <-> msgpack for the gateway: HTTP bodies are parsed with
//  limits and converted to mesh bodies; mesh replies are converted back
//
//  JSON objects are msgpack maps with string keys, arrays are arrays, strings
//  are str, integers are int, reals are float64, true/false/null are
//  bool/nil. Going back, what JSON cannot hold is mapped, never dropped
//  silently: bin becomes a base64 string (standard alphabet, padded), an
//  unsigned integer above INT64_MAX a real, NaN and infinities null,
//  extension types null, invalid UTF-8 in a str U+FFFD; map keys that are not
//  strings (or hold a NUL byte) are skipped.
#ifndef UMB_JSON_H_INCLUDED
#define UMB_JSON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "umb_mp.h"

//  Containers nested in one document, at most; the same as the mesh allows.
#define UMB_JSON_MAX_DEPTH 32

//  Parses exactly one JSON value from text (size bytes, need not end in NUL).
//  Refuses duplicate object keys, nesting deeper than UMB_JSON_MAX_DEPTH,
//  integers outside the int64 range, "\u0000", invalid UTF-8 and trailing
//  bytes. NULL with a message for people in *error ("invalid JSON at line 2,
//  column 7: ..."; caller frees). Returns a new reference.
json_t *umb_json_parse (const char *text, size_t size, char **error);

//  Appends value to w as one msgpack value. Returns 0, or -1 having written
//  nothing if value nests deeper than UMB_JSON_MAX_DEPTH (never for what
//  umb_json_parse returns).
int     umb_json_to_mp (json_t *value, umb_w_t *w);

//  Converts a msgpack node to JSON as described above. Returns a new
//  reference; NULL only when out of memory.
json_t *umb_json_from_msg (umb_msg_t *node);

//  A JSON string of size bytes of text, invalid UTF-8 repaired as above.
//  NULL only when out of memory.
json_t *umb_json_stringn (const char *text, size_t size);

//  The compact JSON text of a msgpack node (caller frees; *size its length),
//  byte for byte what umb_json_dump (umb_json_from_msg (node)) gives, without
//  building the tree. NULL only when out of memory.
char   *umb_json_text_from_msg (umb_msg_t *node, size_t *size);

//  Compact text of value (any type) for an HTTP body; caller frees.
char   *umb_json_dump (json_t *value);

void    umb_json_test (bool verbose);

#endif
