//  fuzz_gateway_json - libFuzzer target for the gateway's JSON request handling
//  (HTTP body -> JSON with limits -> mesh msgpack -> JSON) and for the way back
//  (a mesh reply body -> JSON, through the tree and written straight)
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "umb_json.h"
#include "umb_mp.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  The text the gateway sends for a reply, written straight from msgpack, is
//  the text of the reply's tree, byte for byte.
static void
s_check_text_same (umb_msg_t *msg, json_t *tree)
{
    char *expected = umb_json_dump (tree);
    size_t size = 0;
    char *text = umb_json_text_from_msg (msg, &size);
    assert (expected && text && size == strlen (text));
    assert (strcmp (text, expected) == 0);
    free (text);
    free (expected);
}

//  Serialises value and parses it again with the gateway's limits; what
//  parses must be the same value.
static void
s_check_text_round_trip (json_t *value)
{
    char *text = umb_json_dump (value);
    assert (text);
    char *error = NULL;
    json_t *again = umb_json_parse (text, strlen (text), &error);
    if (again) {
        assert (!error);
        assert (json_equal (again, value));
        json_decref (again);
    }
    else {
        //  only what the limits refuse: a NUL in a string or nesting a
        //  msgpack document may have and JSON may not (empty containers)
        assert (error);
        assert (strstr (error, "\\u0000") || strstr (error, "nested deeper"));
        free (error);
    }
    free (text);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  The bytes as an HTTP request body
    char *error = NULL;
    json_t *value = umb_json_parse ((const char *) data, size, &error);
    if (!value) {
        assert (error && strstr (error, "line ") && strstr (error, "column "));
        free (error);
    }
    else {
        assert (!error);
        umb_w_t *w = umb_w_new ();
        assert (w);
        //  what the parser accepts always converts, and the mesh decoder
        //  accepts what the gateway sends (depth, duplicates, UTF-8)
        assert (umb_json_to_mp (value, w) == 0);
        size_t mp_size;
        const void *mp = umb_w_data (w, &mp_size);
        umb_msg_t *msg = umb_msg_decode (mp, mp_size, &error);
        assert (msg && !error);
        assert (umb_msg_is_map (msg) == json_is_object (value));
        json_t *back = umb_json_from_msg (msg);
        assert (back);
        assert (json_equal (back, value));
        s_check_text_same (msg, back);
        s_check_text_round_trip (back);
        json_decref (back);
        umb_msg_destroy (&msg);
        umb_w_destroy (&w);
        json_decref (value);
    }

    //  The bytes as a mesh reply body: always becomes JSON the gateway can send
    umb_msg_t *reply = umb_msg_decode (data, size, &error);
    if (reply) {
        json_t *json = umb_json_from_msg (reply);
        assert (json);
        s_check_text_same (reply, json);
        s_check_text_round_trip (json);
        json_decref (json);
        umb_msg_destroy (&reply);
    }
    free (error);
    return 0;
}
