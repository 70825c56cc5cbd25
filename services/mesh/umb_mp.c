//  umb_mp - msgpack writer with self-counting containers, and a validating reader
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umb_mp.h"
#include "umb_utf8.h"

#define S_MAX_OPEN 32
#ifndef streq
#   define streq(s1, s2) (!strcmp ((s1), (s2)))
#endif

//  ---------------------------------------------------------------- writer

typedef struct {
    size_t offset;          //  where the 5-byte header sits
    size_t count;           //  values written inside (keys and values for maps)
    bool   is_map;
} s_open_t;

struct _umb_w_t {
    msgpack_sbuffer buffer;
    msgpack_packer  packer;
    s_open_t        open [S_MAX_OPEN];
    size_t          depth;
};

umb_w_t *
umb_w_new (void)
{
    umb_w_t *self = calloc (1, sizeof (umb_w_t));
    if (!self)
        return NULL;
    msgpack_sbuffer_init (&self->buffer);
    msgpack_packer_init (&self->packer, &self->buffer, msgpack_sbuffer_write);
    return self;
}

void
umb_w_destroy (umb_w_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        //  Reply bodies may hold secrets made for the caller (a private key)
        if ((*self_p)->buffer.data)
            explicit_bzero ((*self_p)->buffer.data, (*self_p)->buffer.size);
        msgpack_sbuffer_destroy (&(*self_p)->buffer);
        free (*self_p);
        *self_p = NULL;
    }
}

void
umb_w_reset (umb_w_t *self)
{
    assert (self);
    self->buffer.size = 0;
    self->depth = 0;
}

const void *
umb_w_data (umb_w_t *self, size_t *size)
{
    assert (self);
    assert (self->depth == 0);
    if (size)
        *size = self->buffer.size;
    return self->buffer.data;
}

size_t
umb_w_size (umb_w_t *self)
{
    assert (self);
    return self->buffer.size;
}

static void
s_counted (umb_w_t *self)
{
    if (self->depth > 0)
        self->open [self->depth - 1].count++;
}

static void
s_begin (umb_w_t *self, bool is_map)
{
    assert (self->depth < S_MAX_OPEN);
    s_counted (self);
    const char header [5] = { (char) (is_map ? 0xdf : 0xdd), 0, 0, 0, 0 };
    self->open [self->depth++] = (s_open_t) { self->buffer.size, 0, is_map };
    msgpack_sbuffer_write (&self->buffer, header, sizeof (header));
}

static void
s_end (umb_w_t *self, bool is_map)
{
    assert (self->depth > 0);
    s_open_t *open = &self->open [--self->depth];
    assert (open->is_map == is_map);
    size_t count = open->count;
    if (is_map) {
        assert (count % 2 == 0);
        count /= 2;
    }
    assert (count <= UINT32_MAX);
    unsigned char *header = (unsigned char *) self->buffer.data + open->offset + 1;
    header [0] = (unsigned char) (count >> 24);
    header [1] = (unsigned char) (count >> 16);
    header [2] = (unsigned char) (count >> 8);
    header [3] = (unsigned char) count;
}

void umb_w_map_begin (umb_w_t *self)   { assert (self); s_begin (self, true); }
void umb_w_map_end (umb_w_t *self)     { assert (self); s_end (self, true); }
void umb_w_array_begin (umb_w_t *self) { assert (self); s_begin (self, false); }
void umb_w_array_end (umb_w_t *self)   { assert (self); s_end (self, false); }

void
umb_w_strn (umb_w_t *self, const char *value, size_t size)
{
    assert (self);
    s_counted (self);
    msgpack_pack_str (&self->packer, size);
    msgpack_pack_str_body (&self->packer, value, size);
}

void
umb_w_str (umb_w_t *self, const char *value)
{
    if (value)
        umb_w_strn (self, value, strlen (value));
    else
        umb_w_nil (self);
}

void
umb_w_bin (umb_w_t *self, const void *data, size_t size)
{
    assert (self);
    s_counted (self);
    msgpack_pack_bin (&self->packer, size);
    msgpack_pack_bin_body (&self->packer, data, size);
}

void umb_w_int (umb_w_t *self, int64_t value)     { s_counted (self); msgpack_pack_int64 (&self->packer, value); }
void umb_w_uint (umb_w_t *self, uint64_t value)   { s_counted (self); msgpack_pack_uint64 (&self->packer, value); }
void umb_w_double (umb_w_t *self, double value)   { s_counted (self); msgpack_pack_double (&self->packer, value); }
void umb_w_nil (umb_w_t *self)                    { s_counted (self); msgpack_pack_nil (&self->packer); }

void
umb_w_bool (umb_w_t *self, bool value)
{
    s_counted (self);
    if (value)
        msgpack_pack_true (&self->packer);
    else
        msgpack_pack_false (&self->packer);
}

void
umb_w_raw (umb_w_t *self, const void *data, size_t size)
{
    assert (self);
    s_counted (self);
    msgpack_sbuffer_write (&self->buffer, data, size);
}

void umb_w_kv_str (umb_w_t *self, const char *key, const char *value)  { umb_w_str (self, key); umb_w_str (self, value); }
void umb_w_kv_int (umb_w_t *self, const char *key, int64_t value)      { umb_w_str (self, key); umb_w_int (self, value); }
void umb_w_kv_bool (umb_w_t *self, const char *key, bool value)        { umb_w_str (self, key); umb_w_bool (self, value); }
void umb_w_kv_double (umb_w_t *self, const char *key, double value)    { umb_w_str (self, key); umb_w_double (self, value); }

//  ---------------------------------------------------------------- reader

struct _umb_msg_t {
    const msgpack_object *object;
    umb_msg_t            *root;     //  self for the root document
    msgpack_zone         *zone;     //  root only: every node and copied string lives here
    msgpack_object        top;      //  root only: the decoded value
    char                 *error;    //  root only: first error
};

//  Walks the encoding without allocating, so a header claiming four billion
//  elements in a few bytes is refused before msgpack-c sizes an array for it.
static int
s_prescan (const unsigned char *data, size_t size, char *reason, size_t reason_size)
{
    size_t pending [UMB_MSG_MAX_DEPTH + 1];
    size_t depth = 0;
    size_t pos = 0;
    size_t values = 1;              //  values still expected at the current level
    while (true) {
        while (values == 0) {
            if (depth == 0) {
                if (pos != size) {
                    snprintf (reason, reason_size, "%zu trailing bytes after the value", size - pos);
                    return -1;
                }
                return 0;
            }
            values = pending [--depth];
        }
        if (pos >= size) {
            snprintf (reason, reason_size, "truncated at byte %zu", pos);
            return -1;
        }
        unsigned char tag = data [pos++];
        values--;
        uint64_t length = 0;        //  bytes that follow
        uint64_t children = 0;      //  nested values that follow
        size_t width = 0;           //  size field width
        if (tag <= 0x7f || tag >= 0xe0 || tag == 0xc0 || tag == 0xc2 || tag == 0xc3)
            ;
        else
        if ((tag & 0xe0) == 0xa0)
            length = tag & 0x1f;
        else
        if ((tag & 0xf0) == 0x90)
            children = tag & 0x0f;
        else
        if ((tag & 0xf0) == 0x80)
            children = 2 * (uint64_t) (tag & 0x0f);
        else
        switch (tag) {
            case 0xcc: case 0xd0: length = 1; break;
            case 0xcd: case 0xd1: length = 2; break;
            case 0xca: case 0xce: case 0xd2: length = 4; break;
            case 0xcb: case 0xcf: case 0xd3: length = 8; break;
            case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            case 0xc7: case 0xc8: case 0xc9:
                //  nothing in umbra's protocol uses them, and refusing them
                //  keeps every decoded document re-encodable as it came
                snprintf (reason, reason_size, "extension type at byte %zu is not allowed", pos - 1);
                return -1;
            case 0xc4: case 0xd9: width = 1; break;     //  bin8, str8
            case 0xc5: case 0xda: width = 2; break;
            case 0xc6: case 0xdb: width = 4; break;
            case 0xdc: case 0xde: width = 2; break;     //  array16, map16
            case 0xdd: case 0xdf: width = 4; break;
            default:
                snprintf (reason, reason_size, "invalid type byte 0x%02x at %zu", tag, pos - 1);
                return -1;
        }
        if (width) {
            if (size - pos < width) {
                snprintf (reason, reason_size, "truncated at byte %zu", pos);
                return -1;
            }
            uint64_t n = 0;
            for (size_t i = 0; i < width; i++)
                n = (n << 8) | data [pos++];
            if (tag == 0xdc || tag == 0xdd)
                children = n;
            else
            if (tag == 0xde || tag == 0xdf)
                children = 2 * n;
            else
                length = n;
        }
        if (length > size - pos) {
            snprintf (reason, reason_size, "truncated at byte %zu", pos);
            return -1;
        }
        pos += length;
        if (children) {
            //  every element takes at least one byte
            if (children > size - pos) {
                snprintf (reason, reason_size, "container at byte %zu claims more elements than bytes", pos);
                return -1;
            }
            if (depth == UMB_MSG_MAX_DEPTH) {
                snprintf (reason, reason_size, "nested deeper than %d", UMB_MSG_MAX_DEPTH);
                return -1;
            }
            pending [depth++] = values;
            values = children;
        }
    }
}

static int
s_key_compare (const void *a, const void *b)
{
    const msgpack_object_str *x = *(const msgpack_object_str * const *) a;
    const msgpack_object_str *y = *(const msgpack_object_str * const *) b;
    size_t n = x->size < y->size ? x->size : y->size;
    int rc = n ? memcmp (x->ptr, y->ptr, n) : 0;     //  ptr is NULL for ""
    return rc ? rc : (x->size > y->size) - (x->size < y->size);
}

//  Peers must not be able to send {"role":"viewer","role":"admin"} and have
//  two parsers disagree about which one counts.
static int
s_check_keys (const msgpack_object *object, char *reason, size_t reason_size)
{
    if (object->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < object->via.array.size; i++)
            if (s_check_keys (&object->via.array.ptr [i], reason, reason_size))
                return -1;
        return 0;
    }
    if (object->type != MSGPACK_OBJECT_MAP)
        return 0;
    uint32_t size = object->via.map.size;
    const msgpack_object_str **keys = size ? malloc (size * sizeof (*keys)) : NULL;
    if (size && !keys) {
        snprintf (reason, reason_size, "out of memory");
        return -1;
    }
    uint32_t strings = 0;
    for (uint32_t i = 0; i < size; i++) {
        const msgpack_object_kv *kv = &object->via.map.ptr [i];
        if (kv->key.type == MSGPACK_OBJECT_STR)
            keys [strings++] = &kv->key.via.str;
    }
    int rc = 0;
    if (strings > 1) {
        qsort (keys, strings, sizeof (*keys), s_key_compare);
        for (uint32_t i = 1; i < strings && rc == 0; i++)
            if (s_key_compare (&keys [i - 1], &keys [i]) == 0) {
                snprintf (reason, reason_size, "duplicate key '%.*s'",
                          (int) (keys [i]->size > 64 ? 64 : keys [i]->size), keys [i]->ptr);
                rc = -1;
            }
    }
    free (keys);
    for (uint32_t i = 0; i < size && rc == 0; i++)
        rc = s_check_keys (&object->via.map.ptr [i].val, reason, reason_size);
    return rc;
}

umb_msg_t *
umb_msg_decode (const void *data, size_t size, char **error)
{
    char reason [160] = "";
    if (error)
        *error = NULL;
    if (!data || size == 0)
        snprintf (reason, sizeof (reason), "empty");
    else
        s_prescan (data, size, reason, sizeof (reason));
    umb_msg_t *self = NULL;
    if (!*reason) {
        self = calloc (1, sizeof (umb_msg_t));
        msgpack_zone *zone = self ? msgpack_zone_new (MSGPACK_ZONE_CHUNK_SIZE) : NULL;
        if (!zone) {
            free (self);
            self = NULL;
            snprintf (reason, sizeof (reason), "out of memory");
        }
        else {
            self->zone = zone;
            self->root = self;
            self->object = &self->top;
            //  msgpack-c points str/bin objects into the input buffer; the
            //  document must not depend on the caller's (often a frame freed
            //  right after decoding), so it decodes its own copy.
            void *copy = msgpack_zone_malloc (zone, size);
            assert (copy);
            memcpy (copy, data, size);
            size_t offset = 0;
            msgpack_unpack_return rc = msgpack_unpack (copy, size, &offset, zone, &self->top);
            if (rc != MSGPACK_UNPACK_SUCCESS || offset != size)
                snprintf (reason, sizeof (reason), "not valid msgpack (%d)", (int) rc);
            else
                s_check_keys (&self->top, reason, sizeof (reason));
        }
    }
    if (*reason) {
        umb_msg_destroy (&self);
        if (error)
            *error = strdup (reason);
    }
    return self;
}

void
umb_msg_destroy (umb_msg_t **self_p)
{
    assert (self_p);
    umb_msg_t *self = *self_p;
    if (self) {
        assert (self->root == self);        //  nodes belong to their document
        if (self->zone)
            msgpack_zone_free (self->zone);
        free (self->error);
        free (self);
        *self_p = NULL;
    }
}

msgpack_object_type
umb_msg_type (umb_msg_t *self)
{
    assert (self);
    return self->object->type;
}

const msgpack_object *
umb_msg_object (umb_msg_t *self)
{
    assert (self);
    return self->object;
}

bool
umb_msg_is_map (umb_msg_t *self)
{
    return self && self->object->type == MSGPACK_OBJECT_MAP;
}

bool
umb_msg_failed (umb_msg_t *self)
{
    assert (self);
    return self->root->error != NULL;
}

const char *
umb_msg_error (umb_msg_t *self)
{
    assert (self);
    return self->root->error;
}

void
umb_msg_fail (umb_msg_t *self, const char *format, ...)
{
    assert (self);
    if (self->root->error)
        return;
    va_list args;
    va_start (args, format);
    if (vasprintf (&self->root->error, format, args) < 0)
        self->root->error = NULL;
    va_end (args);
    if (!self->root->error)
        self->root->error = strdup ("invalid message");
}

static umb_msg_t *
s_node (umb_msg_t *self, const msgpack_object *object)
{
    umb_msg_t *node = msgpack_zone_malloc (self->root->zone, sizeof (umb_msg_t));
    assert (node);
    *node = (umb_msg_t) { .object = object, .root = self->root };
    return node;
}

static const char *
s_type_name (msgpack_object_type type)
{
    switch (type) {
        case MSGPACK_OBJECT_NIL: return "nil";
        case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an integer";
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: return "a number";
        case MSGPACK_OBJECT_STR: return "a string";
        case MSGPACK_OBJECT_ARRAY: return "an array";
        case MSGPACK_OBJECT_MAP: return "a map";
        case MSGPACK_OBJECT_BIN: return "binary";
        default: return "an extension";
    }
}

//  The field's value, NULL if absent or nil. Records "missing" if required.
static const msgpack_object *
s_field (umb_msg_t *self, const char *key, bool required)
{
    assert (self);
    assert (key);
    if (self->object->type != MSGPACK_OBJECT_MAP) {
        umb_msg_fail (self, "expected a map, got %s", s_type_name (self->object->type));
        return NULL;
    }
    size_t key_size = strlen (key);
    const msgpack_object_map *map = &self->object->via.map;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr [i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == key_size
        &&  memcmp (k->via.str.ptr, key, key_size) == 0) {
            if (map->ptr [i].val.type != MSGPACK_OBJECT_NIL)
                return &map->ptr [i].val;
            break;
        }
    }
    if (required)
        umb_msg_fail (self, "field '%s' is required", key);
    return NULL;
}

static const char *
s_copy_str (umb_msg_t *self, const msgpack_object *value, size_t max_len, const char *what)
{
    if (value->type != MSGPACK_OBJECT_STR) {
        umb_msg_fail (self, "%s: expected a string, got %s", what, s_type_name (value->type));
        return NULL;
    }
    const msgpack_object_str *str = &value->via.str;
    if (str->size > max_len) {
        umb_msg_fail (self, "%s: longer than %zu bytes", what, max_len);
        return NULL;
    }
    if (str->size && memchr (str->ptr, 0, str->size)) {     //  ptr is NULL for ""
        umb_msg_fail (self, "%s: contains a NUL byte", what);
        return NULL;
    }
    if (!umb_utf8_valid (str->ptr, str->size)) {
        umb_msg_fail (self, "%s: not valid UTF-8", what);
        return NULL;
    }
    char *copy = msgpack_zone_malloc (self->root->zone, str->size + 1);
    assert (copy);
    if (str->size)
        memcpy (copy, str->ptr, str->size);
    copy [str->size] = 0;
    return copy;
}

bool
umb_msg_has (umb_msg_t *self, const char *key)
{
    return self->object->type == MSGPACK_OBJECT_MAP && s_field (self, key, false) != NULL;
}

const char *
umb_msg_str (umb_msg_t *self, const char *key, size_t max_len, bool required)
{
    const msgpack_object *value = s_field (self, key, required);
    if (!value)
        return NULL;
    char what [80];
    snprintf (what, sizeof (what), "field '%s'", key);
    return s_copy_str (self, value, max_len, what);
}

static bool
s_as_int (umb_msg_t *self, const msgpack_object *value, const char *what, int64_t *result)
{
    if (value->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (value->via.u64 > INT64_MAX) {
            umb_msg_fail (self, "%s: out of range", what);
            return false;
        }
        *result = (int64_t) value->via.u64;
        return true;
    }
    if (value->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *result = value->via.i64;
        return true;
    }
    umb_msg_fail (self, "%s: expected an integer, got %s", what, s_type_name (value->type));
    return false;
}

int64_t
umb_msg_int (umb_msg_t *self, const char *key, int64_t min, int64_t max, int64_t dflt,
             bool required)
{
    const msgpack_object *value = s_field (self, key, required);
    if (!value)
        return dflt;
    char what [80];
    snprintf (what, sizeof (what), "field '%s'", key);
    int64_t result;
    if (!s_as_int (self, value, what, &result))
        return dflt;
    if (result < min || result > max) {
        umb_msg_fail (self, "%s: %lld is outside %lld..%lld", what, (long long) result,
                      (long long) min, (long long) max);
        return dflt;
    }
    return result;
}

bool
umb_msg_bool (umb_msg_t *self, const char *key, bool dflt, bool required)
{
    const msgpack_object *value = s_field (self, key, required);
    if (!value)
        return dflt;
    if (value->type != MSGPACK_OBJECT_BOOLEAN) {
        umb_msg_fail (self, "field '%s': expected a boolean, got %s", key, s_type_name (value->type));
        return dflt;
    }
    return value->via.boolean;
}

const void *
umb_msg_bin (umb_msg_t *self, const char *key, size_t max_size, size_t *size, bool required)
{
    assert (size);
    *size = 0;
    const msgpack_object *value = s_field (self, key, required);
    if (!value)
        return NULL;
    if (value->type != MSGPACK_OBJECT_BIN && value->type != MSGPACK_OBJECT_STR) {
        umb_msg_fail (self, "field '%s': expected binary, got %s", key, s_type_name (value->type));
        return NULL;
    }
    //  bin and str share their layout in msgpack_object
    size_t length = value->type == MSGPACK_OBJECT_BIN ? value->via.bin.size : value->via.str.size;
    if (length > max_size) {
        umb_msg_fail (self, "field '%s': longer than %zu bytes", key, max_size);
        return NULL;
    }
    *size = length;
    return value->type == MSGPACK_OBJECT_BIN ? value->via.bin.ptr : value->via.str.ptr;
}

umb_msg_t *
umb_msg_map (umb_msg_t *self, const char *key, bool required)
{
    const msgpack_object *value = s_field (self, key, required);
    if (!value)
        return NULL;
    if (value->type != MSGPACK_OBJECT_MAP) {
        umb_msg_fail (self, "field '%s': expected a map, got %s", key, s_type_name (value->type));
        return NULL;
    }
    return s_node (self, value);
}

umb_msg_t *
umb_msg_array (umb_msg_t *self, const char *key, size_t max_items, bool required)
{
    const msgpack_object *value = s_field (self, key, required);
    if (!value)
        return NULL;
    if (value->type != MSGPACK_OBJECT_ARRAY) {
        umb_msg_fail (self, "field '%s': expected an array, got %s", key, s_type_name (value->type));
        return NULL;
    }
    if (value->via.array.size > max_items) {
        umb_msg_fail (self, "field '%s': more than %zu items", key, max_items);
        return NULL;
    }
    return s_node (self, value);
}

const char **
umb_msg_strv (umb_msg_t *self, const char *key, size_t max_items, size_t max_len,
              size_t *count, bool required)
{
    assert (count);
    *count = 0;
    umb_msg_t *array = umb_msg_array (self, key, max_items, required);
    if (!array)
        return NULL;
    size_t size = array->object->via.array.size;
    const char **vector = msgpack_zone_malloc (self->root->zone, (size + 1) * sizeof (char *));
    assert (vector);
    for (size_t i = 0; i < size; i++) {
        char what [96];
        snprintf (what, sizeof (what), "field '%s' item %zu", key, i);
        vector [i] = s_copy_str (self, &array->object->via.array.ptr [i], max_len, what);
        if (!vector [i])
            return NULL;
    }
    vector [size] = NULL;
    *count = size;
    return vector;
}

size_t
umb_msg_size (umb_msg_t *self)
{
    assert (self);
    if (self->object->type == MSGPACK_OBJECT_ARRAY)
        return self->object->via.array.size;
    if (self->object->type == MSGPACK_OBJECT_MAP)
        return self->object->via.map.size;
    return 0;
}

umb_msg_t *
umb_msg_at (umb_msg_t *self, size_t index)
{
    assert (self);
    assert (self->object->type == MSGPACK_OBJECT_ARRAY);
    assert (index < self->object->via.array.size);
    return s_node (self, &self->object->via.array.ptr [index]);
}

const char *
umb_msg_key_at (umb_msg_t *self, size_t index)
{
    assert (self);
    assert (self->object->type == MSGPACK_OBJECT_MAP);
    assert (index < self->object->via.map.size);
    const msgpack_object *key = &self->object->via.map.ptr [index].key;
    if (key->type != MSGPACK_OBJECT_STR)
        return NULL;
    return s_copy_str (self, key, SIZE_MAX, "map key");
}

umb_msg_t *
umb_msg_value_at (umb_msg_t *self, size_t index)
{
    assert (self);
    assert (self->object->type == MSGPACK_OBJECT_MAP);
    assert (index < self->object->via.map.size);
    return s_node (self, &self->object->via.map.ptr [index].val);
}

const char *
umb_msg_as_str (umb_msg_t *self, size_t max_len, const char *what)
{
    assert (self);
    return s_copy_str (self, self->object, max_len, what ? what : "value");
}

int64_t
umb_msg_as_int (umb_msg_t *self, const char *what)
{
    assert (self);
    int64_t result = 0;
    s_as_int (self, self->object, what ? what : "value", &result);
    return result;
}

double
umb_msg_as_double (umb_msg_t *self, const char *what)
{
    assert (self);
    const msgpack_object *value = self->object;
    switch (value->type) {
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: return value->via.f64;
        case MSGPACK_OBJECT_POSITIVE_INTEGER: return (double) value->via.u64;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: return (double) value->via.i64;
        default:
            umb_msg_fail (self, "%s: expected a number, got %s", what ? what : "value",
                          s_type_name (value->type));
            return 0;
    }
}

static void
s_write_object (umb_w_t *w, const msgpack_object *object)
{
    switch (object->type) {
        case MSGPACK_OBJECT_NIL: umb_w_nil (w); break;
        case MSGPACK_OBJECT_BOOLEAN: umb_w_bool (w, object->via.boolean); break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER: umb_w_uint (w, object->via.u64); break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: umb_w_int (w, object->via.i64); break;
        case MSGPACK_OBJECT_FLOAT32:
            s_counted (w);
            msgpack_pack_float (&w->packer, (float) object->via.f64);
            break;
        case MSGPACK_OBJECT_FLOAT64: umb_w_double (w, object->via.f64); break;
        case MSGPACK_OBJECT_STR: umb_w_strn (w, object->via.str.ptr, object->via.str.size); break;
        case MSGPACK_OBJECT_BIN: umb_w_bin (w, object->via.bin.ptr, object->via.bin.size); break;
        case MSGPACK_OBJECT_ARRAY:
            umb_w_array_begin (w);
            for (uint32_t i = 0; i < object->via.array.size; i++)
                s_write_object (w, &object->via.array.ptr [i]);
            umb_w_array_end (w);
            break;
        case MSGPACK_OBJECT_MAP:
            umb_w_map_begin (w);
            for (uint32_t i = 0; i < object->via.map.size; i++) {
                s_write_object (w, &object->via.map.ptr [i].key);
                s_write_object (w, &object->via.map.ptr [i].val);
            }
            umb_w_map_end (w);
            break;
        default:
            umb_w_nil (w);      //  extensions are not part of umbra's protocol
            break;
    }
}

void
umb_w_msg (umb_w_t *w, umb_msg_t *node)
{
    assert (w);
    assert (node);
    s_write_object (w, node->object);
}

//  ---------------------------------------------------------------- selftest

void
umb_mp_test (bool verbose)
{
    if (verbose)
        printf (" * umb_mp: ");

    //  Writer counts nested containers
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "username", "alice");
    umb_w_kv_int (w, "age", -42);
    umb_w_kv_bool (w, "admin", true);
    umb_w_key (w, "roles");
    umb_w_array_begin (w);
    umb_w_str (w, "admin");
    umb_w_str (w, "viewer");
    umb_w_array_end (w);
    umb_w_key (w, "nested");
    umb_w_map_begin (w);
    umb_w_kv_double (w, "pi", 3.5);
    umb_w_map_end (w);
    umb_w_kv_str (w, "none", NULL);
    umb_w_map_end (w);
    size_t size;
    const void *data = umb_w_data (w, &size);

    char *error = NULL;
    umb_msg_t *msg = umb_msg_decode (data, size, &error);
    assert (msg && !error);
    assert (umb_msg_is_map (msg));
    assert (umb_msg_size (msg) == 6);
    assert (streq (umb_msg_str (msg, "username", 64, true), "alice"));
    assert (umb_msg_int (msg, "age", -100, 100, 0, true) == -42);
    assert (umb_msg_bool (msg, "admin", false, true));
    assert (!umb_msg_has (msg, "none"));
    assert (umb_msg_str (msg, "none", 10, false) == NULL);
    size_t count;
    const char **roles = umb_msg_strv (msg, "roles", 8, 16, &count, true);
    assert (count == 2 && streq (roles [0], "admin") && streq (roles [1], "viewer") && !roles [2]);
    umb_msg_t *nested = umb_msg_map (msg, "nested", true);
    assert (umb_msg_as_double (umb_msg_value_at (nested, 0), NULL) == 3.5);
    assert (streq (umb_msg_key_at (nested, 0), "pi"));
    assert (!umb_msg_failed (msg));

    //  Re-encoding gives the same document
    umb_w_t *copy = umb_w_new ();
    umb_w_msg (copy, msg);
    size_t copy_size;
    const void *copy_data = umb_w_data (copy, &copy_size);
    assert (copy_size == size && memcmp (copy_data, data, size) == 0);
    umb_w_destroy (&copy);

    //  The first error sticks and names the field
    assert (umb_msg_str (msg, "age", 64, true) == NULL);
    assert (umb_msg_failed (msg));
    assert (strstr (umb_msg_error (msg), "'age'"));
    assert (strstr (umb_msg_error (msg), "expected a string"));
    umb_msg_int (msg, "missing", 0, 1, 0, true);
    assert (strstr (umb_msg_error (msg), "'age'"));
    umb_msg_destroy (&msg);
    assert (msg == NULL);

    //  Bounds, missing fields
    msg = umb_msg_decode (data, size, NULL);
    assert (umb_msg_int (msg, "age", 0, 100, 7, true) == 7);
    assert (strstr (umb_msg_error (msg), "outside"));
    umb_msg_destroy (&msg);
    msg = umb_msg_decode (data, size, NULL);
    assert (umb_msg_str (msg, "username", 3, true) == NULL);
    assert (strstr (umb_msg_error (msg), "longer than 3"));
    umb_msg_destroy (&msg);
    msg = umb_msg_decode (data, size, NULL);
    umb_msg_str (msg, "password", 64, true);
    assert (streq (umb_msg_error (msg), "field 'password' is required"));
    umb_msg_destroy (&msg);

    //  Malformed input is refused with a reason, never crashes
    const unsigned char truncated [] = { 0x81, 0xa1, 'a' };
    assert (!umb_msg_decode (truncated, sizeof (truncated), &error));
    assert (strstr (error, "truncated"));
    free (error);
    const unsigned char trailing [] = { 0x80, 0x00 };
    assert (!umb_msg_decode (trailing, sizeof (trailing), &error));
    assert (strstr (error, "trailing"));
    free (error);
    const unsigned char bomb [] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00 };
    assert (!umb_msg_decode (bomb, sizeof (bomb), &error));
    assert (strstr (error, "claims more"));
    free (error);
    const unsigned char extension [] = { 0xd7, 0x00, 0, 0, 0xd7, 0, 0, 0, 0, 0x5d };
    assert (!umb_msg_decode (extension, sizeof (extension), &error));
    assert (strstr (error, "extension"));
    free (error);
    const unsigned char bad_type [] = { 0xc1 };
    assert (!umb_msg_decode (bad_type, sizeof (bad_type), &error));
    free (error);
    assert (!umb_msg_decode (NULL, 0, &error));
    free (error);
    unsigned char deep [UMB_MSG_MAX_DEPTH + 2];
    memset (deep, 0x91, sizeof (deep));
    deep [sizeof (deep) - 1] = 0x00;
    assert (!umb_msg_decode (deep, sizeof (deep), &error));
    assert (strstr (error, "deeper"));
    free (error);
    const unsigned char dup [] = { 0x82, 0xa1, 'r', 0x01, 0xa1, 'r', 0x02 };
    assert (!umb_msg_decode (dup, sizeof (dup), &error));
    assert (strstr (error, "duplicate key 'r'"));
    free (error);

    //  Strings with NUL or broken UTF-8 are refused
    const unsigned char nul [] = { 0x81, 0xa1, 'k', 0xa3, 'a', 0x00, 'b' };
    msg = umb_msg_decode (nul, sizeof (nul), NULL);
    assert (msg && !umb_msg_str (msg, "k", 10, true) && strstr (umb_msg_error (msg), "NUL"));
    umb_msg_destroy (&msg);
    const unsigned char utf [] = { 0x81, 0xa1, 'k', 0xa2, 0xc0, 0x80 };
    msg = umb_msg_decode (utf, sizeof (utf), NULL);
    assert (msg && !umb_msg_str (msg, "k", 10, true) && strstr (umb_msg_error (msg), "UTF-8"));
    umb_msg_destroy (&msg);

    //  A non-map asked for fields records an error
    const unsigned char number [] = { 0x05 };
    msg = umb_msg_decode (number, sizeof (number), NULL);
    assert (msg && !umb_msg_is_map (msg));
    assert (umb_msg_as_int (msg, NULL) == 5);
    assert (!umb_msg_str (msg, "x", 1, false) && umb_msg_failed (msg));
    umb_msg_destroy (&msg);

    umb_w_reset (w);
    umb_w_map_begin (w);
    umb_w_map_end (w);
    data = umb_w_data (w, &size);
    assert (size == 5);
    msg = umb_msg_decode (data, size, NULL);
    assert (umb_msg_is_map (msg) && umb_msg_size (msg) == 0);
    umb_msg_destroy (&msg);
    umb_w_destroy (&w);
    umb_w_destroy (&w);

    if (verbose)
        printf ("OK\n");
}
