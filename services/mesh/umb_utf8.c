//  umb_utf8 - the UTF-8 rules every reader of peer text shares
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "umb_utf8.h"

size_t
umb_utf8_sequence (const void *text, size_t size)
{
    const unsigned char *s = text;
    if (size == 0)
        return 0;
    if (s [0] < 0x80)
        return 1;
    size_t length;
    uint32_t code, lowest;
    if ((s [0] & 0xe0) == 0xc0) { length = 2; code = s [0] & 0x1f; lowest = 0x80; }
    else
    if ((s [0] & 0xf0) == 0xe0) { length = 3; code = s [0] & 0x0f; lowest = 0x800; }
    else
    if ((s [0] & 0xf8) == 0xf0) { length = 4; code = s [0] & 0x07; lowest = 0x10000; }
    else
        return 0;
    if (size < length)
        return 0;
    for (size_t i = 1; i < length; i++) {
        if ((s [i] & 0xc0) != 0x80)
            return 0;
        code = (code << 6) | (s [i] & 0x3f);
    }
    if (code < lowest || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        return 0;
    return length;
}

bool
umb_utf8_valid (const void *text, size_t size)
{
    const unsigned char *s = text;
    size_t offset = 0;
    while (offset < size) {
        size_t length = umb_utf8_sequence (s + offset, size - offset);
        if (length == 0)
            return false;
        offset += length;
    }
    return true;
}

void
umb_utf8_test (bool verbose)
{
    if (verbose)
        printf (" * umb_utf8: ");
    static const struct {
        const char *bytes;
        size_t      first;      //  expected length of the first sequence
    } cases [] = {
        { "a", 1 }, { "\xc3\xa9", 2 }, { "\xe2\x82\xac", 3 }, { "\xf0\x9f\x94\x92", 4 },
        { "\xc0\x80", 0 },              //  overlong NUL
        { "\xe0\x80\xaf", 0 },          //  overlong '/'
        { "\xed\xa0\x80", 0 },          //  surrogate U+D800
        { "\xf4\x90\x80\x80", 0 },      //  above U+10FFFF
        { "\x80", 0 },                  //  stray continuation
        { "\xe2\x82", 0 },              //  cut off
        { "\xff", 0 },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        size_t size = strlen (cases [i].bytes);
        assert (umb_utf8_sequence (cases [i].bytes, size) == cases [i].first);
        assert (umb_utf8_valid (cases [i].bytes, size) == (cases [i].first == size));
    }
    assert (umb_utf8_sequence ("", 0) == 0);
    assert (umb_utf8_valid ("", 0));
    assert (umb_utf8_valid ("a\0b", 3));
    assert (umb_utf8_valid ("caf\xc3\xa9 \xe2\x82\xac", 9));
    assert (!umb_utf8_valid ("caf\xc3", 4));
    if (verbose)
        printf ("OK\n");
}
