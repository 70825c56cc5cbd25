//  umb_json - JSON <-> msgpack for the gateway
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "umb_json.h"
#include "umb_utf8.h"

#define S_STREQ(a, b) (strcmp ((a), (b)) == 0)

//  ---------------------------------------------------------------- parsing

//  jansson nests up to 2048 levels; the mesh takes 32. Counting brackets
//  outside strings first refuses a deep document before a tree is built for
//  it, and says where it went too deep.
static int
s_check_depth (const char *text, size_t size, char **error)
{
    int depth = 0;
    int line = 1;
    size_t column = 0;
    bool in_string = false;
    bool escaped = false;
    for (size_t i = 0; i < size; i++) {
        char c = text [i];
        column++;
        if (c == '\n') {
            line++;
            column = 0;
        }
        if (in_string) {
            if (escaped)
                escaped = false;
            else
            if (c == '\\')
                escaped = true;
            else
            if (c == '"')
                in_string = false;
        }
        else
        if (c == '"')
            in_string = true;
        else
        if (c == '{' || c == '[') {
            if (++depth > UMB_JSON_MAX_DEPTH) {
                if (asprintf (error, "invalid JSON at line %d, column %zu: nested deeper than %d",
                              line, column, UMB_JSON_MAX_DEPTH) < 0)
                    *error = NULL;
                return -1;
            }
        }
        else
        if ((c == '}' || c == ']') && depth > 0)
            depth--;
    }
    return 0;
}

json_t *
umb_json_parse (const char *text, size_t size, char **error)
{
    assert (text || size == 0);
    assert (error);
    *error = NULL;
    if (s_check_depth (text, size, error))
        return NULL;
    json_error_t reason;
    json_t *value = json_loadb (text ? text : "", size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                                &reason);
    if (!value
    &&  asprintf (error, "invalid JSON at line %d, column %d: %s", reason.line, reason.column,
                  reason.text) < 0)
        *error = NULL;
    return value;
}

//  ---------------------------------------------------------------- JSON -> msgpack

static int
s_depth (json_t *value, int limit)
{
    if (!json_is_object (value) && !json_is_array (value))
        return 0;
    if (limit == 0)
        return 1;           //  one container more than allowed is enough to know
    int deepest = 0;
    if (json_is_object (value)) {
        const char *key;
        json_t *member;
        json_object_foreach (value, key, member) {
            int depth = s_depth (member, limit - 1);
            if (depth > deepest)
                deepest = depth;
        }
    }
    else {
        size_t index;
        json_t *member;
        json_array_foreach (value, index, member) {
            int depth = s_depth (member, limit - 1);
            if (depth > deepest)
                deepest = depth;
        }
    }
    return deepest + 1;
}

static void
s_write (json_t *value, umb_w_t *w)
{
    switch (json_typeof (value)) {
        case JSON_OBJECT: {
            const char *key;
            json_t *member;
            umb_w_map_begin (w);
            json_object_foreach (value, key, member) {
                umb_w_str (w, key);
                s_write (member, w);
            }
            umb_w_map_end (w);
            break;
        }
        case JSON_ARRAY: {
            size_t index;
            json_t *member;
            umb_w_array_begin (w);
            json_array_foreach (value, index, member)
                s_write (member, w);
            umb_w_array_end (w);
            break;
        }
        case JSON_STRING:
            umb_w_strn (w, json_string_value (value), json_string_length (value));
            break;
        case JSON_INTEGER:
            umb_w_int (w, (int64_t) json_integer_value (value));
            break;
        case JSON_REAL:
            umb_w_double (w, json_real_value (value));
            break;
        case JSON_TRUE:
            umb_w_bool (w, true);
            break;
        case JSON_FALSE:
            umb_w_bool (w, false);
            break;
        case JSON_NULL:
            umb_w_nil (w);
            break;
    }
}

int
umb_json_to_mp (json_t *value, umb_w_t *w)
{
    assert (value && w);
    if (s_depth (value, UMB_JSON_MAX_DEPTH) > UMB_JSON_MAX_DEPTH)
        return -1;
    s_write (value, w);
    return 0;
}

//  ---------------------------------------------------------------- msgpack -> JSON

//  A copy of size bytes at s with every byte that does not start a valid
//  UTF-8 sequence replaced by U+FFFD; *length set. Caller frees.
static char *
s_utf8_repair (const char *s, size_t size, size_t *length)
{
    char *copy = malloc (size * 3 + 1);
    if (!copy)
        return NULL;
    size_t out = 0;
    for (size_t i = 0; i < size; ) {
        size_t n = umb_utf8_sequence (s + i, size - i);
        if (n) {
            memcpy (copy + out, s + i, n);
            out += n;
            i += n;
        }
        else {
            memcpy (copy + out, "\xef\xbf\xbd", 3);
            out += 3;
            i++;
        }
    }
    copy [out] = 0;
    *length = out;
    return copy;
}

static json_t *
s_string (const char *s, size_t size)
{
    if (size == 0)
        return json_string_nocheck ("");    //  msgpack-c leaves ptr NULL then
    if (umb_utf8_valid (s, size))
        return json_stringn_nocheck (s, size);
    size_t length;
    char *repaired = s_utf8_repair (s, size, &length);
    json_t *value = repaired ? json_stringn_nocheck (repaired, length) : NULL;
    free (repaired);
    return value;
}

static json_t *
s_base64 (const void *data, size_t size)
{
    if (size == 0)
        return json_string_nocheck ("");
    size_t encoded_size = sodium_base64_ENCODED_LEN (size, sodium_base64_VARIANT_ORIGINAL);
    char *encoded = malloc (encoded_size);
    if (!encoded)
        return NULL;
    sodium_bin2base64 (encoded, encoded_size, data, size, sodium_base64_VARIANT_ORIGINAL);
    json_t *value = json_string_nocheck (encoded);
    free (encoded);
    return value;
}

//  A map key as a NUL-terminated UTF-8 string, or NULL to skip it. Caller frees.
static char *
s_key (const msgpack_object *key)
{
    if (key->type != MSGPACK_OBJECT_STR)
        return NULL;
    if (key->via.str.size == 0)
        return strdup ("");
    if (memchr (key->via.str.ptr, 0, key->via.str.size))
        return NULL;
    size_t length;
    return s_utf8_repair (key->via.str.ptr, key->via.str.size, &length);
}

static json_t *
s_from_object (const msgpack_object *object)
{
    switch (object->type) {
        case MSGPACK_OBJECT_NIL:
            return json_null ();
        case MSGPACK_OBJECT_BOOLEAN:
            return json_boolean (object->via.boolean);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            if (object->via.u64 > INT64_MAX)
                return json_real ((double) object->via.u64);
            return json_integer ((json_int_t) object->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return json_integer ((json_int_t) object->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            return isfinite (object->via.f64) ? json_real (object->via.f64) : json_null ();
        case MSGPACK_OBJECT_STR:
            return s_string (object->via.str.ptr, object->via.str.size);
        case MSGPACK_OBJECT_BIN:
            return s_base64 (object->via.bin.ptr, object->via.bin.size);
        case MSGPACK_OBJECT_ARRAY: {
            json_t *array = json_array ();
            for (uint32_t i = 0; array && i < object->via.array.size; i++) {
                json_t *member = s_from_object (&object->via.array.ptr [i]);
                if (json_array_append_new (array, member))
                    json_decref (array), array = NULL;
            }
            return array;
        }
        case MSGPACK_OBJECT_MAP: {
            json_t *map = json_object ();
            for (uint32_t i = 0; map && i < object->via.map.size; i++) {
                char *key = s_key (&object->via.map.ptr [i].key);
                if (!key)
                    continue;
                json_t *member = s_from_object (&object->via.map.ptr [i].val);
                if (json_object_set_new_nocheck (map, key, member))
                    json_decref (map), map = NULL;
                free (key);
            }
            return map;
        }
        default:
            return json_null ();    //  extensions are not part of umbra's protocol
    }
}

json_t *
umb_json_stringn (const char *text, size_t size)
{
    assert (text || size == 0);
    return s_string (text, size);
}

json_t *
umb_json_from_msg (umb_msg_t *node)
{
    assert (node);
    return s_from_object (umb_msg_object (node));
}

//  ---------------------------------------------------------------- msgpack -> JSON text

//  The same text as json_dumps (umb_json_from_msg (node), JSON_COMPACT |
//  JSON_ENCODE_ANY), written straight from the msgpack objects: no tree, no
//  allocation per value. A reply of a hundred computations spent most of the
//  gateway's time building and freeing jansson's tree.
typedef struct {
    char  *data;
    size_t size, capacity;
    bool   failed;
    bool   keys_repaired;               //  a key was not UTF-8: the tree path decides
} s_text_t;

static void
s_text_reserve (s_text_t *text, size_t more)
{
    if (text->failed || text->size + more + 1 <= text->capacity)
        return;
    size_t capacity = text->capacity ? text->capacity : 256;
    while (capacity < text->size + more + 1)
        capacity *= 2;
    char *data = realloc (text->data, capacity);
    if (!data) {
        text->failed = true;
        return;
    }
    text->data = data;
    text->capacity = capacity;
}

static void
s_text_put (s_text_t *text, const char *bytes, size_t size)
{
    if (size == 0)
        return;                         //  msgpack-c leaves an empty str's ptr NULL
    s_text_reserve (text, size);
    if (text->failed)
        return;
    memcpy (text->data + text->size, bytes, size);
    text->size += size;
}

static void
s_text_str (s_text_t *text, const char *literal)
{
    s_text_put (text, literal, strlen (literal));
}

//  A JSON string: jansson's escapes (", \, \b \f \n \r \t, other controls as
//  \u00XX), every byte that does not start valid UTF-8 as U+FFFD.
static void
s_text_string (s_text_t *text, const char *s, size_t size)
{
    s_text_reserve (text, size + 2);
    s_text_put (text, "\"", 1);
    if (size == 0) {
        s_text_put (text, "\"", 1);
        return;
    }
    size_t run = 0;                     //  bytes at s + run_start to copy as they are
    size_t run_start = 0;
    for (size_t i = 0; i < size; ) {
        unsigned char c = (unsigned char) s [i];
        const char *escape = NULL;
        char unicode [8];
        size_t n = 1;
        if (c < 0x80) {
            if (c == '"')
                escape = "\\\"";
            else
            if (c == '\\')
                escape = "\\\\";
            else
            if (c < 0x20) {
                switch (c) {
                    case '\b': escape = "\\b"; break;
                    case '\f': escape = "\\f"; break;
                    case '\n': escape = "\\n"; break;
                    case '\r': escape = "\\r"; break;
                    case '\t': escape = "\\t"; break;
                    default:
                        snprintf (unicode, sizeof unicode, "\\u%04X", c);
                        escape = unicode;
                }
            }
        }
        else {
            n = umb_utf8_sequence (s + i, size - i);
            if (n == 0) {
                escape = "\xef\xbf\xbd";
                n = 1;
            }
        }
        if (escape) {
            s_text_put (text, s + run_start, run);
            s_text_str (text, escape);
            run = 0;
            run_start = i + n;
        }
        else
            run += n;
        i += n;
    }
    s_text_put (text, s + run_start, run);
    s_text_put (text, "\"", 1);
}

//  As jansson prints a real: %.17g, with ".0" when it would read as an
//  integer, and the exponent without '+' or leading zeros.
static void
s_text_real (s_text_t *text, double value)
{
    char buffer [64];
    int length = snprintf (buffer, sizeof buffer, "%.17g", value);
    assert (length > 0 && (size_t) length < sizeof buffer - 3);
    if (!strchr (buffer, '.') && !strchr (buffer, 'e')) {
        memcpy (buffer + length, ".0", 3);
        length += 2;
    }
    char *exponent = strchr (buffer, 'e');
    if (exponent) {
        char *start = exponent + 1;
        char *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start)
            memmove (start, end, (size_t) (buffer + length + 1 - end));
    }
    s_text_str (text, buffer);
}

static void
s_text_value (s_text_t *text, const msgpack_object *object)
{
    char number [32];
    switch (object->type) {
        case MSGPACK_OBJECT_NIL:
            s_text_str (text, "null");
            break;
        case MSGPACK_OBJECT_BOOLEAN:
            s_text_str (text, object->via.boolean ? "true" : "false");
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            if (object->via.u64 > INT64_MAX)
                s_text_real (text, (double) object->via.u64);
            else {
                snprintf (number, sizeof number, "%" PRIu64, object->via.u64);
                s_text_str (text, number);
            }
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            snprintf (number, sizeof number, "%" PRId64, object->via.i64);
            s_text_str (text, number);
            break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            if (isfinite (object->via.f64))
                s_text_real (text, object->via.f64);
            else
                s_text_str (text, "null");
            break;
        case MSGPACK_OBJECT_STR:
            s_text_string (text, object->via.str.ptr, object->via.str.size);
            break;
        case MSGPACK_OBJECT_BIN: {
            size_t size = object->via.bin.size;
            size_t encoded = sodium_base64_ENCODED_LEN (size, sodium_base64_VARIANT_ORIGINAL);
            s_text_reserve (text, encoded + 2);
            if (text->failed)
                break;
            text->data [text->size++] = '"';
            if (size)
                sodium_bin2base64 (text->data + text->size, encoded,
                                   (const unsigned char *) object->via.bin.ptr, size,
                                   sodium_base64_VARIANT_ORIGINAL);
            text->size += size ? encoded - 1 : 0;
            text->data [text->size++] = '"';
            break;
        }
        case MSGPACK_OBJECT_ARRAY:
            s_text_put (text, "[", 1);
            for (uint32_t i = 0; i < object->via.array.size; i++) {
                if (i)
                    s_text_put (text, ",", 1);
                s_text_value (text, &object->via.array.ptr [i]);
            }
            s_text_put (text, "]", 1);
            break;
        case MSGPACK_OBJECT_MAP: {
            s_text_put (text, "{", 1);
            bool first = true;
            for (uint32_t i = 0; i < object->via.map.size; i++) {
                const msgpack_object *key = &object->via.map.ptr [i].key;
                if (key->type != MSGPACK_OBJECT_STR
                ||  (key->via.str.size && memchr (key->via.str.ptr, 0, key->via.str.size)))
                    continue;       //  as s_key: not a key JSON can hold
                //  Repaired keys may fall together, which jansson's object
                //  resolves (the last wins); leave such a rare map to it
                if (!umb_utf8_valid (key->via.str.ptr, key->via.str.size))
                    text->keys_repaired = true;
                if (!first)
                    s_text_put (text, ",", 1);
                first = false;
                s_text_string (text, key->via.str.ptr, key->via.str.size);
                s_text_put (text, ":", 1);
                s_text_value (text, &object->via.map.ptr [i].val);
            }
            s_text_put (text, "}", 1);
            break;
        }
        default:
            s_text_str (text, "null");
    }
}

char *
umb_json_text_from_msg (umb_msg_t *node, size_t *size)
{
    assert (node && size);
    s_text_t text = { NULL, 0, 0, false, false };
    s_text_value (&text, umb_msg_object (node));
    s_text_reserve (&text, 0);
    if (text.failed || text.keys_repaired) {
        free (text.data);
        if (text.failed)
            return NULL;
        json_t *value = umb_json_from_msg (node);
        char *dumped = value ? umb_json_dump (value) : NULL;
        json_decref (value);
        if (dumped)
            *size = strlen (dumped);
        return dumped;
    }
    text.data [text.size] = 0;
    *size = text.size;
    return text.data;
}

char *
umb_json_dump (json_t *value)
{
    assert (value);
    return json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
}

//  ---------------------------------------------------------------- selftest

//  The text written straight from msg is the text of its tree, byte for byte.
static void
s_test_text_same (umb_msg_t *msg, const char *expected)
{
    size_t size = 0;
    char *text = umb_json_text_from_msg (msg, &size);
    assert (text && size == strlen (text));
    if (strcmp (text, expected))
        fprintf (stderr, "written '%s'\n   tree '%s'\n", text, expected);
    assert (S_STREQ (text, expected));
    free (text);
}

//  JSON text -> msgpack -> decoded document -> JSON, checked against the
//  parsed original. Returns the decoded document for further checks.
static umb_msg_t *
s_test_round_trip (const char *text, umb_w_t *w)
{
    char *error = NULL;
    json_t *value = umb_json_parse (text, strlen (text), &error);
    if (!value)
        fprintf (stderr, "%s: %s\n", text, error);
    assert (value && !error);
    umb_w_reset (w);
    assert (umb_json_to_mp (value, w) == 0);
    size_t size;
    const void *data = umb_w_data (w, &size);
    umb_msg_t *msg = umb_msg_decode (data, size, &error);
    assert (msg && !error);
    json_t *back = umb_json_from_msg (msg);
    assert (back);
    assert (json_equal (value, back));
    char *dumped = umb_json_dump (back);
    s_test_text_same (msg, dumped);
    json_t *again = umb_json_parse (dumped, strlen (dumped), &error);
    assert (again && json_equal (again, value));
    free (dumped);
    json_decref (again);
    json_decref (back);
    json_decref (value);
    return msg;
}

static void
s_test_refused (const char *text, size_t size, const char *expected)
{
    char *error = NULL;
    json_t *value = umb_json_parse (text, size, &error);
    assert (!value);
    assert (error);
    if (!strstr (error, expected))
        fprintf (stderr, "'%s' does not hold '%s'\n", error, expected);
    assert (strstr (error, expected));
    assert (strstr (error, "line "));
    assert (strstr (error, "column "));
    free (error);
}

//  JSON text of a msgpack document written by hand.
static char *
s_test_from_mp (const void *data, size_t size)
{
    char *error = NULL;
    umb_msg_t *msg = umb_msg_decode (data, size, &error);
    assert (msg && !error);
    json_t *value = umb_json_from_msg (msg);
    assert (value);
    char *text = umb_json_dump (value);
    json_decref (value);
    s_test_text_same (msg, text);
    umb_msg_destroy (&msg);
    return text;
}

void
umb_json_test (bool verbose)
{
    if (verbose)
        printf (" * umb_json: ");
    umb_w_t *w = umb_w_new ();

    //  Every JSON type, and the mesh reader sees the fields it expects
    umb_msg_t *msg = s_test_round_trip (
        "{\"username\": \"alice\", \"age\": 42, \"ratio\": 0.25, \"admin\": false,"
        " \"ok\": true, \"nothing\": null, \"tags\": [\"a\", 1, -2, 3.5, [], {}],"
        " \"nested\": {\"deeper\": {\"x\": [[1], [2, {\"y\": \"z\"}]]}}}", w);
    assert (umb_msg_is_map (msg));
    assert (S_STREQ (umb_msg_str (msg, "username", 64, true), "alice"));
    assert (umb_msg_int (msg, "age", 0, 100, 0, true) == 42);
    assert (umb_msg_bool (msg, "ok", false, true));
    assert (!umb_msg_has (msg, "nothing"));
    umb_msg_t *tags = umb_msg_array (msg, "tags", 10, true);
    assert (tags && umb_msg_size (tags) == 6);
    assert (!umb_msg_failed (msg));
    //  Key order survives
    assert (S_STREQ (umb_msg_key_at (msg, 0), "username"));
    assert (S_STREQ (umb_msg_key_at (msg, 7), "nested"));
    umb_msg_destroy (&msg);

    //  Scalars and empty containers at the top
    const char *scalars [] = { "0", "-1", "1.5", "\"\"", "true", "false", "null", "[]", "{}",
                               "1e300", "-0.0", "  [1, 2]  ", NULL };
    for (size_t i = 0; scalars [i]; i++) {
        msg = s_test_round_trip (scalars [i], w);
        umb_msg_destroy (&msg);
    }

    //  Big integers: the int64 range round-trips exactly, beyond it is refused
    msg = s_test_round_trip ("{\"max\": 9223372036854775807, \"min\": -9223372036854775808}", w);
    assert (umb_msg_int (msg, "max", INT64_MIN, INT64_MAX, 0, true) == INT64_MAX);
    assert (umb_msg_int (msg, "min", INT64_MIN, INT64_MAX, 0, true) == INT64_MIN);
    umb_msg_destroy (&msg);
    s_test_refused ("{\"n\": 9223372036854775808}", 26, "too big");
    s_test_refused ("[-9223372036854775809]", 22, "too big");

    //  Unicode: escapes and raw UTF-8 become the same bytes
    msg = s_test_round_trip ("{\"a\": \"caf\\u00e9 \\ud83d\\ude00\", \"b\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\","
                             " \"\xe2\x82\xac\": \"euro\"}", w);
    assert (S_STREQ (umb_msg_str (msg, "a", 64, true), "caf\xc3\xa9 \xf0\x9f\x98\x80"));
    assert (S_STREQ (umb_msg_str (msg, "a", 64, true), umb_msg_str (msg, "b", 64, true)));
    assert (S_STREQ (umb_msg_str (msg, "\xe2\x82\xac", 64, true), "euro"));
    umb_msg_destroy (&msg);
    s_test_refused ("\"\\ud800\"", 8, "invalid Unicode");
    s_test_refused ("\"\xc3\x28\"", 4, "unable to decode byte");
    s_test_refused ("{\"a\": \"x\\u0000y\"}", 17, "\\u0000");

    //  Duplicate keys are refused, at any depth, with the position
    s_test_refused ("{\"role\": \"viewer\", \"role\": \"admin\"}", 35, "duplicate");
    s_test_refused ("{\"a\": {\n  \"b\": 1,\n  \"b\": 2}}", 27, "line 3");

    //  Errors say where
    s_test_refused ("{\n  \"a\": tru\n}", 14, "line 2");
    s_test_refused ("{\"a\": 1} x", 10, "end of file expected");
    s_test_refused ("", 0, "line ");
    s_test_refused ("{\"a\": 1", 7, "line 1");

    //  Depth: 32 containers are fine, 33 are refused, brackets in strings do not count
    char deep [400];
    for (int levels = 31; levels <= 33; levels++) {
        size_t at = 0;
        for (int i = 0; i < levels - 1; i++) {
            const char *open = i % 2 ? "[" : "{\"k\":";
            memcpy (deep + at, open, strlen (open));
            at += strlen (open);
        }
        memcpy (deep + at, "[]", 2);
        at += 2;
        for (int i = levels - 2; i >= 0; i--)
            deep [at++] = i % 2 ? ']' : '}';
        deep [at] = 0;
        if (levels <= UMB_JSON_MAX_DEPTH) {
            msg = s_test_round_trip (deep, w);
            umb_msg_destroy (&msg);
        }
        else
            s_test_refused (deep, at, "nested deeper than 32");
    }
    msg = s_test_round_trip ("[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\"]", w);
    umb_msg_destroy (&msg);

    //  A tree built by hand that is too deep is refused by the converter
    json_t *tower = json_array ();
    for (int i = 0; i < UMB_JSON_MAX_DEPTH; i++) {
        json_t *floor = json_array ();
        json_array_append_new (floor, tower);
        tower = floor;
    }
    umb_w_reset (w);
    assert (umb_json_to_mp (tower, w) == -1);
    assert (umb_w_size (w) == 0);
    json_decref (tower);

    //  msgpack -> JSON: bin as base64, non-string keys skipped, invalid
    //  UTF-8 repaired, NaN and extensions as null, huge unsigned as a real
    umb_w_reset (w);
    umb_w_map_begin (w);
    umb_w_key (w, "bin");
    umb_w_bin (w, "\x00\x01\xfe\xff", 4);
    umb_w_int (w, 7);                   //  a key that is not a string
    umb_w_str (w, "skipped");
    umb_w_key (w, "bad");
    umb_w_strn (w, "a\xff" "b\xc3", 4);
    umb_w_key (w, "nan");
    umb_w_double (w, NAN);
    umb_w_key (w, "inf");
    umb_w_double (w, -INFINITY);
    umb_w_key (w, "huge");
    umb_w_uint (w, UINT64_MAX);
    umb_w_key (w, "nul");
    umb_w_strn (w, "a\0b", 3);
    umb_w_strn (w, "k\0ey", 4);         //  a key holding NUL is skipped
    umb_w_str (w, "skipped too");
    umb_w_key (w, "empty");
    umb_w_bin (w, "", 0);
    umb_w_map_end (w);
    size_t size;
    const void *data = umb_w_data (w, &size);
    char *text = s_test_from_mp (data, size);
    assert (S_STREQ (text, "{\"bin\":\"AAH+/w==\",\"bad\":\"a\xef\xbf\xbd" "b\xef\xbf\xbd\","
                         "\"nan\":null,\"inf\":null,\"huge\":1.8446744073709552e19,"
                         "\"nul\":\"a\\u0000b\",\"empty\":\"\"}"));
    free (text);

    //  A key repaired into one already present: the later one counts
    umb_w_reset (w);
    umb_w_map_begin (w);
    umb_w_strn (w, "\xff", 1);
    umb_w_int (w, 1);
    umb_w_str (w, "\xef\xbf\xbd");
    umb_w_int (w, 2);
    umb_w_map_end (w);
    data = umb_w_data (w, &size);
    text = s_test_from_mp (data, size);
    assert (S_STREQ (text, "{\"\xef\xbf\xbd\":2}"));
    free (text);

    //  Escapes and reals as jansson writes them (s_test_from_mp compares the
    //  text written straight from msgpack with the tree's)
    umb_w_reset (w);
    umb_w_array_begin (w);
    umb_w_strn (w, "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f \xe2\x80\xa8", 18);
    const double reals [] = { 0.1, 1e-7, 1e21, -0.0, 1.5e300, 5e-324, 123456789012345678.0, 2.0 };
    for (size_t i = 0; i < sizeof reals / sizeof reals [0]; i++)
        umb_w_double (w, reals [i]);
    umb_w_int (w, INT64_MIN);
    umb_w_map_begin (w);
    umb_w_map_end (w);
    umb_w_array_end (w);
    data = umb_w_data (w, &size);
    text = s_test_from_mp (data, size);
    assert (S_STREQ (text, "[\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001F\x7f \xe2\x80\xa8\","
                         "0.10000000000000001,9.9999999999999995e-8,1e21,-0.0,1.5000000000000001e300,"
                         "4.9406564584124654e-324,1.2345678901234568e17,2.0,"
                         "-9223372036854775808,{}]"));
    free (text);

    umb_w_destroy (&w);
    if (verbose)
        printf ("OK\n");
}
