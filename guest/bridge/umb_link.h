//  umb_link - the bridge link's frame codec (proto/bridge.md, version 1)
//
//  Pure functions over byte buffers; no I/O. The decoder is peer-facing:
//  every input either decodes to a frame whose fields are within the limits
//  of its type, asks for more bytes, or is refused with a reason.
#ifndef UMB_LINK_H_INCLUDED
#define UMB_LINK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define UMB_LINK_HEADER_SIZE    8
#define UMB_LINK_HELLO_SIZE     20              //  HELLO payload
#define UMB_LINK_DATA_MAX       65536
#define UMB_LINK_NAME_MAX       64
#define UMB_LINK_REASON_MAX     256
#define UMB_LINK_FRAME_MAX      (UMB_LINK_HEADER_SIZE + UMB_LINK_DATA_MAX)
#define UMB_LINK_VERSION        1
#define UMB_LINK_WINDOW_MIN     4096
#define UMB_LINK_WINDOW_MAX     (16 * 1024 * 1024)
#define UMB_LINK_OPENER         0x80000000u     //  stream bit: the sender opened it
#define UMB_LINK_HELLO_REPLY    0x01

#define UMB_LINK_HELLO   0x01
#define UMB_LINK_OPEN    0x02
#define UMB_LINK_DATA    0x03
#define UMB_LINK_CREDIT  0x04
#define UMB_LINK_CLOSE   0x05
#define UMB_LINK_PING    0x06
#define UMB_LINK_PONG    0x07

#define UMB_LINK_CLOSE_NORMAL   0
#define UMB_LINK_CLOSE_REFUSED  1
#define UMB_LINK_CLOSE_ERROR    2

//  One decoded frame; payload points into the decoded buffer (borrowed).
typedef struct {
    uint8_t  type;
    uint32_t stream;                //  as on the wire (bit 31 included)
    uint32_t length;
    const uint8_t *payload;
    //  Decoded payload fields, by type
    uint8_t  hello_flags;
    uint64_t hello_session;
    uint32_t hello_window;
    uint32_t credit;                //  CREDIT increment
    uint8_t  close_code;            //  CLOSE code; reason = payload + 1, length - 1 bytes
} umb_link_frame_t;

//  Decodes the frame at the start of data. Returns the bytes it takes (> 0),
//  0 if more bytes are needed, or -1 (reason set) if it is malformed; a
//  header announcing more than its type allows is refused at once.
ssize_t umb_link_decode (const uint8_t *data, size_t size, umb_link_frame_t *frame,
                         char *reason, size_t reason_size);

//  Writes a frame header (8 bytes) at out.
void    umb_link_header (uint8_t *out, uint8_t type, uint32_t length, uint32_t stream);
//  Writes a whole HELLO frame (28 bytes) at out; returns its size.
size_t  umb_link_hello (uint8_t *out, uint8_t flags, uint64_t session, uint32_t window);

//  While waiting for the peer's HELLO: the number of leading bytes of data
//  that cannot start a HELLO frame and may be discarded (size if none can).
size_t  umb_link_scan (const uint8_t *data, size_t size);

//  A stream name: 1..64 bytes of [A-Za-z0-9._-].
bool    umb_link_name_valid (const char *name, size_t size);

void    umb_link_test (bool verbose);

#endif
