//  fuzz_envelope - libFuzzer target for the mesh envelope and body decoders (peer input)
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "umb_envelope.h"
#include "umb_mp.h"

//  Walks every node with the typed getters, as handlers do.
static void
s_walk (umb_msg_t *node, int depth)
{
    if (depth > UMB_MSG_MAX_DEPTH + 1)
        abort ();               //  the decoder promised a depth limit
    size_t size = umb_msg_size (node);
    if (umb_msg_type (node) == MSGPACK_OBJECT_ARRAY)
        for (size_t i = 0; i < size; i++)
            s_walk (umb_msg_at (node, i), depth + 1);
    else
    if (umb_msg_is_map (node)) {
        for (size_t i = 0; i < size; i++) {
            umb_msg_key_at (node, i);
            s_walk (umb_msg_value_at (node, i), depth + 1);
        }
        umb_msg_str (node, "username", 64, false);
        umb_msg_int (node, "ttl_s", 0, 1000, 0, false);
        size_t count;
        umb_msg_strv (node, "actions", 32, 64, &count, false);
    }
    else {
        umb_msg_as_str (node, 1024, NULL);
        umb_msg_as_int (node, NULL);
        umb_msg_as_double (node, NULL);
    }
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *error = NULL, *id = NULL;
    for (int is_reply = 0; is_reply < 2; is_reply++) {
        umb_envelope_t *envelope = umb_envelope_decode (data, size, is_reply, &error, &id);
        if (envelope) {
            assert (umb_envelope_id (envelope) && !error);
            umb_envelope_destroy (&envelope);
        }
        else
            assert (error);
        free (error);
        free (id);
        error = id = NULL;
    }
    umb_msg_t *msg = umb_msg_decode (data, size, &error);
    if (msg) {
        s_walk (msg, 0);
        //  What decodes re-encodes to something that decodes the same way
        umb_w_t *w = umb_w_new ();
        umb_w_msg (w, msg);
        size_t copy_size;
        const void *copy = umb_w_data (w, &copy_size);
        umb_msg_t *again = umb_msg_decode (copy, copy_size, NULL);
        assert (again);
        assert (umb_msg_type (again) == umb_msg_type (msg));
        assert (umb_msg_size (again) == umb_msg_size (msg));
        umb_msg_destroy (&again);
        umb_w_destroy (&w);
        umb_msg_destroy (&msg);
    }
    free (error);
    return 0;
}
