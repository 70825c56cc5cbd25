//  umb_link - the bridge link's frame codec (proto/bridge.md, version 1)
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "umb_link.h"

static const uint8_t s_hello_prefix [] = {
    UMB_LINK_HELLO, 0, 0, UMB_LINK_HELLO_SIZE, 0, 0, 0, 0, 'U', 'M', 'B', 'L', UMB_LINK_VERSION
};

static uint32_t
s_get32 (const uint8_t *p)
{
    return (uint32_t) p [0] << 24 | (uint32_t) p [1] << 16 | (uint32_t) p [2] << 8 | p [3];
}

static void
s_put32 (uint8_t *p, uint32_t v)
{
    p [0] = (uint8_t) (v >> 24);
    p [1] = (uint8_t) (v >> 16);
    p [2] = (uint8_t) (v >> 8);
    p [3] = (uint8_t) v;
}

static ssize_t
s_fail (char *reason, size_t reason_size, const char *text, unsigned type, uint32_t value)
{
    if (reason && reason_size)
        snprintf (reason, reason_size, "%s (type 0x%02x, %u)", text, type, value);
    return -1;
}

bool
umb_link_name_valid (const char *name, size_t size)
{
    if (!name || size == 0 || size > UMB_LINK_NAME_MAX)
        return false;
    for (size_t i = 0; i < size; i++) {
        char c = name [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

ssize_t
umb_link_decode (const uint8_t *data, size_t size, umb_link_frame_t *frame,
                 char *reason, size_t reason_size)
{
    assert (frame);
    if (size < UMB_LINK_HEADER_SIZE)
        return 0;
    memset (frame, 0, sizeof *frame);
    frame->type = data [0];
    frame->length = (uint32_t) data [1] << 16 | (uint32_t) data [2] << 8 | data [3];
    frame->stream = s_get32 (data + 4);
    uint32_t length = frame->length;
    uint32_t id = frame->stream & ~UMB_LINK_OPENER;
    unsigned type = frame->type;

    //  Limits first, so an oversize header is refused before its payload arrives
    switch (type) {
        case UMB_LINK_HELLO:
        case UMB_LINK_PING:
        case UMB_LINK_PONG:
            if (frame->stream != 0)
                return s_fail (reason, reason_size, "link frame on a stream", type, frame->stream);
            if (length != (type == UMB_LINK_HELLO? UMB_LINK_HELLO_SIZE: 8))
                return s_fail (reason, reason_size, "bad length", type, length);
            break;
        case UMB_LINK_OPEN:
            if (!(frame->stream & UMB_LINK_OPENER))
                return s_fail (reason, reason_size, "OPEN without the opener bit", type, frame->stream);
            if (length < 1 || length > UMB_LINK_NAME_MAX)
                return s_fail (reason, reason_size, "bad length", type, length);
            break;
        case UMB_LINK_DATA:
            if (length < 1 || length > UMB_LINK_DATA_MAX)
                return s_fail (reason, reason_size, "bad length", type, length);
            break;
        case UMB_LINK_CREDIT:
            if (length != 4)
                return s_fail (reason, reason_size, "bad length", type, length);
            break;
        case UMB_LINK_CLOSE:
            if (length < 1 || length > 1 + UMB_LINK_REASON_MAX)
                return s_fail (reason, reason_size, "bad length", type, length);
            break;
        default:
            return s_fail (reason, reason_size, "unknown frame type", type, length);
    }
    if (type != UMB_LINK_HELLO && type != UMB_LINK_PING && type != UMB_LINK_PONG && id == 0)
        return s_fail (reason, reason_size, "stream id 0", type, frame->stream);
    if (size < UMB_LINK_HEADER_SIZE + (size_t) length)
        return 0;
    const uint8_t *p = data + UMB_LINK_HEADER_SIZE;
    frame->payload = p;

    switch (type) {
        case UMB_LINK_HELLO:
            if (memcmp (p, "UMBL", 4))
                return s_fail (reason, reason_size, "bad HELLO magic", type, 0);
            if (p [4] != UMB_LINK_VERSION)
                return s_fail (reason, reason_size, "unsupported version", type, p [4]);
            if (p [5] & ~UMB_LINK_HELLO_REPLY)
                return s_fail (reason, reason_size, "unknown HELLO flags", type, p [5]);
            if (p [6] || p [7])
                return s_fail (reason, reason_size, "HELLO reserved field not zero", type, 0);
            frame->hello_flags = p [5];
            frame->hello_session = (uint64_t) s_get32 (p + 8) << 32 | s_get32 (p + 12);
            frame->hello_window = s_get32 (p + 16);
            if (frame->hello_session == 0)
                return s_fail (reason, reason_size, "HELLO session 0", type, 0);
            if (frame->hello_window < UMB_LINK_WINDOW_MIN || frame->hello_window > UMB_LINK_WINDOW_MAX)
                return s_fail (reason, reason_size, "HELLO window out of range", type, frame->hello_window);
            break;
        case UMB_LINK_OPEN:
            if (!umb_link_name_valid ((const char *) p, length))
                return s_fail (reason, reason_size, "invalid stream name", type, length);
            break;
        case UMB_LINK_CREDIT:
            frame->credit = s_get32 (p);
            if (frame->credit == 0)
                return s_fail (reason, reason_size, "CREDIT of 0", type, 0);
            break;
        case UMB_LINK_CLOSE:
            frame->close_code = p [0];
            if (frame->close_code > UMB_LINK_CLOSE_ERROR)
                return s_fail (reason, reason_size, "unknown CLOSE code", type, p [0]);
            break;
        default:
            break;
    }
    return (ssize_t) (UMB_LINK_HEADER_SIZE + length);
}

void
umb_link_header (uint8_t *out, uint8_t type, uint32_t length, uint32_t stream)
{
    assert (out);
    assert (length <= 0xFFFFFF);
    out [0] = type;
    out [1] = (uint8_t) (length >> 16);
    out [2] = (uint8_t) (length >> 8);
    out [3] = (uint8_t) length;
    s_put32 (out + 4, stream);
}

size_t
umb_link_hello (uint8_t *out, uint8_t flags, uint64_t session, uint32_t window)
{
    umb_link_header (out, UMB_LINK_HELLO, UMB_LINK_HELLO_SIZE, 0);
    uint8_t *p = out + UMB_LINK_HEADER_SIZE;
    memcpy (p, "UMBL", 4);
    p [4] = UMB_LINK_VERSION;
    p [5] = flags;
    p [6] = p [7] = 0;
    s_put32 (p + 8, (uint32_t) (session >> 32));
    s_put32 (p + 12, (uint32_t) session);
    s_put32 (p + 16, window);
    return UMB_LINK_HEADER_SIZE + UMB_LINK_HELLO_SIZE;
}

size_t
umb_link_scan (const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        size_t n = size - i < sizeof s_hello_prefix? size - i: sizeof s_hello_prefix;
        if (memcmp (data + i, s_hello_prefix, n) == 0)
            return i;
    }
    return size;
}

void
umb_link_test (bool verbose)
{
    printf (" * umb_link: ");
    char reason [128];
    umb_link_frame_t frame;
    uint8_t buf [UMB_LINK_FRAME_MAX + 16];

    //  HELLO round trip, and every shorter prefix asks for more
    size_t size = umb_link_hello (buf, UMB_LINK_HELLO_REPLY, 0x0102030405060708ULL, 262144);
    assert (size == 28);
    for (size_t n = 0; n < size; n++)
        assert (umb_link_decode (buf, n, &frame, reason, sizeof reason) == 0);
    assert (umb_link_decode (buf, size, &frame, reason, sizeof reason) == 28);
    assert (frame.type == UMB_LINK_HELLO && frame.hello_flags == UMB_LINK_HELLO_REPLY);
    assert (frame.hello_session == 0x0102030405060708ULL && frame.hello_window == 262144);
    //  Known bytes (proto/bridge.md)
    const uint8_t known [] = { 0x01, 0, 0, 0x14, 0, 0, 0, 0, 0x55, 0x4D, 0x42, 0x4C, 1, 1, 0, 0,
                               1, 2, 3, 4, 5, 6, 7, 8, 0, 4, 0, 0 };
    assert (memcmp (buf, known, sizeof known) == 0);
    //  Bad HELLOs
    buf [8] = 'X';
    assert (umb_link_decode (buf, size, &frame, reason, sizeof reason) == -1);
    buf [8] = 'U';
    buf [12] = 2;
    assert (umb_link_decode (buf, size, &frame, reason, sizeof reason) == -1);
    assert (strstr (reason, "version"));
    umb_link_hello (buf, 0, 0, 262144);
    assert (umb_link_decode (buf, size, &frame, reason, sizeof reason) == -1);
    umb_link_hello (buf, 0, 1, 100);
    assert (umb_link_decode (buf, size, &frame, reason, sizeof reason) == -1);
    umb_link_hello (buf, 4, 1, 8192);
    assert (umb_link_decode (buf, size, &frame, reason, sizeof reason) == -1);

    //  OPEN
    umb_link_header (buf, UMB_LINK_OPEN, 7, UMB_LINK_OPENER | 1);
    memcpy (buf + 8, "control", 7);
    assert (umb_link_decode (buf, 15, &frame, reason, sizeof reason) == 15);
    assert (frame.stream == (UMB_LINK_OPENER | 1) && frame.length == 7);
    assert (memcmp (frame.payload, "control", 7) == 0);
    umb_link_header (buf, UMB_LINK_OPEN, 7, 1);
    assert (umb_link_decode (buf, 15, &frame, reason, sizeof reason) == -1);
    umb_link_header (buf, UMB_LINK_OPEN, 7, UMB_LINK_OPENER | 1);
    buf [9] = '/';
    assert (umb_link_decode (buf, 15, &frame, reason, sizeof reason) == -1);
    umb_link_header (buf, UMB_LINK_OPEN, 65, UMB_LINK_OPENER | 1);
    assert (umb_link_decode (buf, 8, &frame, reason, sizeof reason) == -1);

    //  DATA: the maximum, one more is refused from the header alone
    umb_link_header (buf, UMB_LINK_DATA, UMB_LINK_DATA_MAX, 5);
    memset (buf + 8, 0xAB, UMB_LINK_DATA_MAX);
    assert (umb_link_decode (buf, 8 + UMB_LINK_DATA_MAX - 1, &frame, reason, sizeof reason) == 0);
    assert (umb_link_decode (buf, UMB_LINK_FRAME_MAX, &frame, reason, sizeof reason) == UMB_LINK_FRAME_MAX);
    umb_link_header (buf, UMB_LINK_DATA, UMB_LINK_DATA_MAX + 1, 5);
    assert (umb_link_decode (buf, 8, &frame, reason, sizeof reason) == -1);
    umb_link_header (buf, UMB_LINK_DATA, 0, 5);
    assert (umb_link_decode (buf, 8, &frame, reason, sizeof reason) == -1);
    umb_link_header (buf, UMB_LINK_DATA, 1, UMB_LINK_OPENER);
    assert (umb_link_decode (buf, 9, &frame, reason, sizeof reason) == -1);
    assert (strstr (reason, "stream id 0"));

    //  CREDIT, CLOSE, PING, unknown
    umb_link_header (buf, UMB_LINK_CREDIT, 4, 3);
    memcpy (buf + 8, "\x00\x01\x00\x00", 4);
    assert (umb_link_decode (buf, 12, &frame, reason, sizeof reason) == 12 && frame.credit == 65536);
    memset (buf + 8, 0, 4);
    assert (umb_link_decode (buf, 12, &frame, reason, sizeof reason) == -1);
    umb_link_header (buf, UMB_LINK_CLOSE, 3, 3);
    memcpy (buf + 8, "\x01no", 3);
    assert (umb_link_decode (buf, 11, &frame, reason, sizeof reason) == 11 && frame.close_code == 1);
    buf [8] = 9;
    assert (umb_link_decode (buf, 11, &frame, reason, sizeof reason) == -1);
    umb_link_header (buf, UMB_LINK_PING, 8, 0);
    assert (umb_link_decode (buf, 16, &frame, reason, sizeof reason) == 16);
    umb_link_header (buf, UMB_LINK_PING, 8, 1);
    assert (umb_link_decode (buf, 16, &frame, reason, sizeof reason) == -1);
    umb_link_header (buf, 0x42, 1, 1);
    assert (umb_link_decode (buf, 9, &frame, reason, sizeof reason) == -1);
    assert (strstr (reason, "unknown"));

    //  Scan: garbage before a HELLO is skipped; a partial prefix at the end is kept
    memset (buf, 0x55, 100);
    size = umb_link_hello (buf + 100, 0, 7, 8192);
    assert (umb_link_scan (buf, 100 + size) == 100);
    assert (umb_link_scan (buf, 105) == 100);
    assert (umb_link_scan (buf, 100) == 100);
    buf [99] = 0x01;
    assert (umb_link_scan (buf, 100) == 99);
    assert (umb_link_scan (buf, 0) == 0);

    assert (umb_link_name_valid ("attest", 6));
    assert (!umb_link_name_valid ("a b", 3));
    assert (!umb_link_name_valid ("", 0));
    printf ("OK\n");
}
