//  umb_hex - bytes as lowercase hex, and strict hex back to bytes
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umb_hex.h"

char *
umb_hex_encode (const uint8_t *data, size_t size, char *out)
{
    static const char digits [] = "0123456789abcdef";
    assert (data || size == 0);
    assert (out);
    for (size_t i = 0; i < size; i++) {
        out [2 * i] = digits [data [i] >> 4];
        out [2 * i + 1] = digits [data [i] & 15];
    }
    out [2 * size] = 0;
    return out;
}

char *
umb_hex_encode_new (const uint8_t *data, size_t size)
{
    assert (size < ((size_t) -1) / 2);
    char *out = (char *) malloc (2 * size + 1);
    return out ? umb_hex_encode (data, size, out) : NULL;
}

int
umb_hex_digit (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
umb_hex_decode (const char *hex, uint8_t *out, size_t size)
{
    assert (out || size == 0);
    if (!hex || strnlen (hex, 2 * size + 1) != 2 * size)
        return -1;
    for (size_t i = 0; i < size; i++) {
        int high = umb_hex_digit (hex [2 * i]);
        int low = umb_hex_digit (hex [2 * i + 1]);
        if (high < 0 || low < 0)
            return -1;
        out [i] = (uint8_t) (high << 4 | low);
    }
    return 0;
}

//  ---------------------------------------------------------------- selftest

void
umb_hex_test (bool verbose)
{
    if (verbose)
        printf (" * umb_hex: ");
    const uint8_t bytes [] = { 0x00, 0x9f, 0xa0, 0xff };
    char hex [9];
    assert (umb_hex_encode (bytes, 4, hex) == hex);
    assert (strcmp (hex, "009fa0ff") == 0);
    assert (strcmp (umb_hex_encode (bytes, 0, hex), "") == 0);
    assert (strcmp (umb_hex_encode (NULL, 0, hex), "") == 0);
    char *copy = umb_hex_encode_new (bytes, 4);
    assert (copy && strcmp (copy, "009fa0ff") == 0);
    free (copy);

    //  Every byte value, and back (either case)
    uint8_t all [256], back [256];
    char all_hex [513];
    for (size_t i = 0; i < 256; i++)
        all [i] = (uint8_t) i;
    umb_hex_encode (all, 256, all_hex);
    assert (strncmp (all_hex, "000102", 6) == 0 && strcmp (all_hex + 500, "fafbfcfdfeff") == 0);
    assert (umb_hex_decode (all_hex, back, 256) == 0);
    assert (memcmp (all, back, 256) == 0);
    for (char *c = all_hex; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char) (*c - 'a' + 'A');
    memset (back, 0, sizeof (back));
    assert (umb_hex_decode (all_hex, back, 256) == 0);
    assert (memcmp (all, back, 256) == 0);

    //  Exact length, hex digits only
    uint8_t four [4];
    assert (umb_hex_decode ("009FA0ff", four, 4) == 0);
    assert (memcmp (four, bytes, 4) == 0);
    assert (umb_hex_decode ("", four, 0) == 0);
    assert (umb_hex_decode ("009fa0f", four, 4) == -1);      //  short
    assert (umb_hex_decode ("009fa0fff", four, 4) == -1);    //  long
    assert (umb_hex_decode ("009fa0fg", four, 4) == -1);     //  not hex
    assert (umb_hex_decode (" 09fa0ff", four, 4) == -1);
    assert (umb_hex_decode ("0x9fa0ff", four, 4) == -1);
    assert (umb_hex_decode ("009fa0f\n", four, 4) == -1);
    assert (umb_hex_decode ("00", four, 0) == -1);
    assert (umb_hex_decode (NULL, four, 4) == -1);

    assert (umb_hex_digit ('0') == 0 && umb_hex_digit ('9') == 9);
    assert (umb_hex_digit ('a') == 10 && umb_hex_digit ('F') == 15);
    assert (umb_hex_digit ('g') == -1 && umb_hex_digit ('/') == -1
         && umb_hex_digit (':') == -1 && umb_hex_digit ('@') == -1 && umb_hex_digit (0) == -1);
    if (verbose)
        printf ("OK\n");
}
