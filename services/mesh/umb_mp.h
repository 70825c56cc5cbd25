//  umb_mp - msgpack writer with self-counting containers, and a validating reader
//
//  umb_w_t writes msgpack. Maps and arrays are opened and closed; their element
//  counts are filled in on close (32-bit headers), so callers never count.
//
//  umb_msg_t is a decoded msgpack document, or a node inside one. Field getters
//  validate type and bounds and record the first error in the document
//  ("field 'username': expected a string"), so handlers read every field and
//  then check umb_msg_failed once. Strings come back NUL-terminated; strings
//  holding a NUL byte are refused. Nodes are owned by their root document.
#ifndef UMB_MP_H_INCLUDED
#define UMB_MP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

//  ---------------------------------------------------------------- writer
typedef struct _umb_w_t umb_w_t;

umb_w_t    *umb_w_new (void);
void        umb_w_destroy (umb_w_t **self_p);
//  Empties the buffer for reuse (open containers are discarded).
void        umb_w_reset (umb_w_t *self);
//  Encoded bytes so far; asserts every container is closed.
const void *umb_w_data (umb_w_t *self, size_t *size);
size_t      umb_w_size (umb_w_t *self);

void umb_w_map_begin (umb_w_t *self);
void umb_w_map_end (umb_w_t *self);        //  asserts keys and values pair up
void umb_w_array_begin (umb_w_t *self);
void umb_w_array_end (umb_w_t *self);
void umb_w_str (umb_w_t *self, const char *value);     //  NULL writes nil
void umb_w_strn (umb_w_t *self, const char *value, size_t size);
void umb_w_bin (umb_w_t *self, const void *data, size_t size);
void umb_w_int (umb_w_t *self, int64_t value);
void umb_w_uint (umb_w_t *self, uint64_t value);
void umb_w_double (umb_w_t *self, double value);
void umb_w_bool (umb_w_t *self, bool value);
void umb_w_nil (umb_w_t *self);
//  Appends one complete, already-encoded msgpack value.
void umb_w_raw (umb_w_t *self, const void *data, size_t size);
//  Map entries in one call.
void umb_w_kv_str (umb_w_t *self, const char *key, const char *value);
void umb_w_kv_int (umb_w_t *self, const char *key, int64_t value);
void umb_w_kv_bool (umb_w_t *self, const char *key, bool value);
void umb_w_kv_double (umb_w_t *self, const char *key, double value);
#define umb_w_key umb_w_str

//  ---------------------------------------------------------------- reader
typedef struct _umb_msg_t umb_msg_t;

//  Limits every decoder applies to peer input.
#define UMB_MSG_MAX_DEPTH 32

//  Decodes exactly one msgpack value filling data (copied: the document does
//  not refer to data afterwards). NULL with a reason in
//  *error (caller frees) if it is malformed, truncated, has trailing bytes or
//  nests deeper than UMB_MSG_MAX_DEPTH.
umb_msg_t  *umb_msg_decode (const void *data, size_t size, char **error);
//  Destroys a root document and every node handed out from it.
void        umb_msg_destroy (umb_msg_t **self_p);

msgpack_object_type umb_msg_type (umb_msg_t *self);
const msgpack_object *umb_msg_object (umb_msg_t *self);
bool        umb_msg_is_map (umb_msg_t *self);

//  Map fields. A missing or nil field is absent: with required, that is an
//  error; otherwise the default comes back. A wrong type is always an error.
bool        umb_msg_has (umb_msg_t *self, const char *key);
const char *umb_msg_str (umb_msg_t *self, const char *key, size_t max_len, bool required);
int64_t     umb_msg_int (umb_msg_t *self, const char *key, int64_t min, int64_t max,
                         int64_t dflt, bool required);
bool        umb_msg_bool (umb_msg_t *self, const char *key, bool dflt, bool required);
//  bin (or str) bytes, borrowed; *size set.
const void *umb_msg_bin (umb_msg_t *self, const char *key, size_t max_size, size_t *size,
                         bool required);
umb_msg_t  *umb_msg_map (umb_msg_t *self, const char *key, bool required);
umb_msg_t  *umb_msg_array (umb_msg_t *self, const char *key, size_t max_items, bool required);
//  An array of strings as a NULL-terminated vector owned by the document.
const char **umb_msg_strv (umb_msg_t *self, const char *key, size_t max_items, size_t max_len,
                           size_t *count, bool required);

//  Containers: elements of an array, or the pairs of a map.
size_t      umb_msg_size (umb_msg_t *self);
umb_msg_t  *umb_msg_at (umb_msg_t *self, size_t index);          //  array element
const char *umb_msg_key_at (umb_msg_t *self, size_t index);      //  map key (NULL if not a string)
umb_msg_t  *umb_msg_value_at (umb_msg_t *self, size_t index);    //  map value

//  Scalars of this node. what names it in error messages.
const char *umb_msg_as_str (umb_msg_t *self, size_t max_len, const char *what);
int64_t     umb_msg_as_int (umb_msg_t *self, const char *what);
double      umb_msg_as_double (umb_msg_t *self, const char *what);

//  The document's first error, if any. umb_msg_fail records one by hand
//  (e.g. a semantic check), keeping the first.
bool        umb_msg_failed (umb_msg_t *self);
const char *umb_msg_error (umb_msg_t *self);
void        umb_msg_fail (umb_msg_t *self, const char *format, ...)
                __attribute__ ((format (printf, 2, 3)));

//  Re-encodes this node into a writer.
void        umb_w_msg (umb_w_t *w, umb_msg_t *node);

void        umb_mp_test (bool verbose);

#endif
