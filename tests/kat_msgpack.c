//  kat_msgpack - known answers: every encoding of the msgpack-test-suite vectors
//  (../shared/vectors/msgpack, made by another project) decodes to its expected
//  value, re-encodes to an equal document, and converts to the expected JSON;
//  extension and timestamp encodings, which umbra's protocol refuses, are refused.
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "umb_mp.h"
#include "umb_json.h"

static int s_failures = 0;

#define S_CHECK(condition, ...) do { if (!(condition)) { \
    fprintf (stderr, "FAIL %s: ", where); fprintf (stderr, __VA_ARGS__); fputc ('\n', stderr); \
    s_failures++; return false; } } while (0)

//  "c4-02-00-ff" -> bytes
static size_t
s_unhex (const char *text, unsigned char *out, size_t room)
{
    size_t size = 0;
    for (const char *c = text; *c; ) {
        if (*c == '-') { c++; continue; }
        unsigned int byte;
        assert (sscanf (c, "%2x", &byte) == 1);
        assert (size < room);
        out [size++] = (unsigned char) byte;
        c += 2;
    }
    return size;
}

static bool s_equal (const char *where, const char *kind, json_t *expected, umb_msg_t *node);

static bool
s_equal_number (const char *where, json_t *expected, umb_msg_t *node)
{
    const msgpack_object *object = umb_msg_object (node);
    double value;
    switch (object->type) {
        case MSGPACK_OBJECT_POSITIVE_INTEGER: value = (double) object->via.u64; break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: value = (double) object->via.i64; break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: value = object->via.f64; break;
        default: S_CHECK (false, "expected a number, got type %d", object->type);
    }
    S_CHECK (json_is_number (expected), "vector is not a number");
    S_CHECK (value == json_number_value (expected), "%.17g != %.17g", value,
             json_number_value (expected));
    return true;
}

static bool
s_equal_bignum (const char *where, json_t *expected, umb_msg_t *node)
{
    const msgpack_object *object = umb_msg_object (node);
    char text [32];
    if (object->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        snprintf (text, sizeof (text), "%" PRIu64, object->via.u64);
    else
    if (object->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        snprintf (text, sizeof (text), "%" PRId64, object->via.i64);
    else
    if (object->type == MSGPACK_OBJECT_FLOAT32 || object->type == MSGPACK_OBJECT_FLOAT64) {
        //  the suite also encodes exactly representable big numbers as floats
        S_CHECK (object->via.f64 == strtod (json_string_value (expected), NULL), "%.17g != %s",
                 object->via.f64, json_string_value (expected));
        return true;
    }
    else
        S_CHECK (false, "expected a number, got type %d", object->type);
    S_CHECK (strcmp (text, json_string_value (expected)) == 0, "%s != %s", text,
             json_string_value (expected));
    return true;
}

static bool
s_equal (const char *where, const char *kind, json_t *expected, umb_msg_t *node)
{
    const msgpack_object *object = umb_msg_object (node);
    if (strcmp (kind, "nil") == 0)
        S_CHECK (object->type == MSGPACK_OBJECT_NIL, "expected nil");
    else
    if (strcmp (kind, "bool") == 0)
        S_CHECK (object->type == MSGPACK_OBJECT_BOOLEAN
                 && object->via.boolean == json_is_true (expected), "bool differs");
    else
    if (strcmp (kind, "binary") == 0) {
        unsigned char bytes [256];
        size_t size = s_unhex (json_string_value (expected), bytes, sizeof (bytes));
        S_CHECK (object->type == MSGPACK_OBJECT_BIN && object->via.bin.size == size
                 && (size == 0 || memcmp (object->via.bin.ptr, bytes, size) == 0), "binary differs");
    }
    else
    if (strcmp (kind, "number") == 0)
        return s_equal_number (where, expected, node);
    else
    if (strcmp (kind, "bignum") == 0)
        return s_equal_bignum (where, expected, node);
    else
    if (strcmp (kind, "string") == 0) {
        const char *text = umb_msg_as_str (node, 1 << 20, "string");
        S_CHECK (text && strcmp (text, json_string_value (expected)) == 0, "string differs");
    }
    else
    if (strcmp (kind, "array") == 0) {
        S_CHECK (object->type == MSGPACK_OBJECT_ARRAY
                 && umb_msg_size (node) == json_array_size (expected), "array size differs");
        for (size_t i = 0; i < umb_msg_size (node); i++) {
            json_t *item = json_array_get (expected, i);
            const char *item_kind = json_is_object (item) ? "map" : json_is_array (item) ? "array"
                                  : json_is_string (item) ? "string" : json_is_null (item) ? "nil"
                                  : json_is_boolean (item) ? "bool" : "number";
            if (!s_equal (where, item_kind, item, umb_msg_at (node, i)))
                return false;
        }
    }
    else
    if (strcmp (kind, "map") == 0) {
        S_CHECK (object->type == MSGPACK_OBJECT_MAP
                 && umb_msg_size (node) == json_object_size (expected), "map size differs");
        for (size_t i = 0; i < umb_msg_size (node); i++) {
            const char *key = umb_msg_key_at (node, i);
            json_t *item = key ? json_object_get (expected, key) : NULL;
            S_CHECK (item, "unexpected key");
            const char *item_kind = json_is_object (item) ? "map" : json_is_array (item) ? "array"
                                  : json_is_string (item) ? "string" : json_is_null (item) ? "nil"
                                  : json_is_boolean (item) ? "bool" : "number";
            if (!s_equal (where, item_kind, item, umb_msg_value_at (node, i)))
                return false;
        }
    }
    else
        S_CHECK (false, "unknown kind %s", kind);
    return true;
}

int
main (int argc, char **argv)
{
    const char *dir = getenv ("VECTORS_DIR");
    if (!dir)
        dir = UMB_VECTORS_DIR;
    char path [1024];
    snprintf (path, sizeof (path), "%s/msgpack/kawanet-msgpack-test-suite/msgpack-test-suite.json", dir);
    json_error_t error;
    json_t *suite = json_load_file (path, 0, &error);
    if (!suite) {
        fprintf (stderr, "kat_msgpack: cannot read %s: %s\n", path, error.text);
        return 1;
    }
    size_t encodings = 0, refused = 0;
    const char *group;
    json_t *entries;
    json_object_foreach (suite, group, entries) {
        size_t index;
        json_t *entry;
        json_array_foreach (entries, index, entry) {
            //  The value's kind is the entry's one key besides "msgpack"
            //  ("bignum" wins over "number": it is exact)
            const char *kind = NULL;
            json_t *expected = NULL;
            const char *key;
            json_t *value;
            json_object_foreach (entry, key, value)
                if (strcmp (key, "msgpack") && (!kind || strcmp (key, "bignum") == 0)) {
                    kind = key;
                    expected = value;
                }
            assert (kind);
            bool must_refuse = strcmp (kind, "ext") == 0 || strcmp (kind, "timestamp") == 0;
            size_t n;
            json_t *hex;
            json_array_foreach (json_object_get (entry, "msgpack"), n, hex) {
                char where [256];
                snprintf (where, sizeof (where), "%s #%zu %s", group, index, json_string_value (hex));
                unsigned char bytes [512];
                size_t size = s_unhex (json_string_value (hex), bytes, sizeof (bytes));
                char *reason = NULL;
                umb_msg_t *msg = umb_msg_decode (bytes, size, &reason);
                encodings++;
                if (must_refuse) {
                    if (msg || !reason || !strstr (reason, "extension")) {
                        fprintf (stderr, "FAIL %s: an extension type was not refused\n", where);
                        s_failures++;
                    }
                    else
                        refused++;
                    umb_msg_destroy (&msg);
                    free (reason);
                    continue;
                }
                if (!msg) {
                    fprintf (stderr, "FAIL %s: refused: %s\n", where, reason);
                    s_failures++;
                    free (reason);
                    continue;
                }
                if (s_equal (where, kind, expected, msg)) {
                    //  Re-encoded, it decodes to the same value
                    umb_w_t *w = umb_w_new ();
                    umb_w_msg (w, msg);
                    size_t copy_size;
                    const void *copy = umb_w_data (w, &copy_size);
                    umb_msg_t *again = umb_msg_decode (copy, copy_size, NULL);
                    if (!again || !s_equal (where, kind, expected, again)) {
                        fprintf (stderr, "FAIL %s: differs after re-encoding\n", where);
                        s_failures++;
                    }
                    //  The gateway's JSON of it is the vector's (numbers compare by value)
                    json_t *converted = umb_json_from_msg (msg);
                    bool same = strcmp (kind, "binary") == 0 || strcmp (kind, "bignum") == 0
                             || strcmp (kind, "number") == 0 || json_equal (converted, expected);
                    if (!same) {
                        fprintf (stderr, "FAIL %s: JSON differs\n", where);
                        s_failures++;
                    }
                    json_decref (converted);
                    umb_msg_destroy (&again);
                    umb_w_destroy (&w);
                }
                umb_msg_destroy (&msg);
            }
        }
    }
    json_decref (suite);
    printf ("kat_msgpack: %zu encodings checked (%zu extension encodings refused), %d failures\n",
            encodings, refused, s_failures);
    return s_failures || encodings < 200 ? 1 : 0;
}
