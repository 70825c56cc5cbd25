//  umb_bytes - little-endian fields of TEE evidence (internal to guest/attest)
#ifndef UMB_BYTES_H_INCLUDED
#define UMB_BYTES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The caller has checked that the bytes are there; these read, not validate.
static inline uint16_t
umb_bytes_le16 (const uint8_t *data)
{
    return (uint16_t) (data [0] | data [1] << 8);
}

static inline uint32_t
umb_bytes_le32 (const uint8_t *data)
{
    return (uint32_t) data [0] | (uint32_t) data [1] << 8
         | (uint32_t) data [2] << 16 | (uint32_t) data [3] << 24;
}

static inline uint64_t
umb_bytes_le64 (const uint8_t *data)
{
    return (uint64_t) umb_bytes_le32 (data) | (uint64_t) umb_bytes_le32 (data + 4) << 32;
}

//  True if all size bytes are zero (reserved fields, unused slots)
static inline bool
umb_bytes_is_zero (const uint8_t *data, size_t size)
{
    uint8_t bits = 0;
    for (size_t i = 0; i < size; i++)
        bits |= data [i];
    return bits == 0;
}

#endif
