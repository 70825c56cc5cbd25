//  umb_percent - percent-decoding (RFC 3986) of URL paths and query strings
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umb_percent.h"
#include "umb_hex.h"
#include "umb_utf8.h"

int
umb_percent_unescape (char *dst, const char *text, size_t size, bool plus)
{
    assert (dst && (text || size == 0));
    size_t out = 0;
    for (size_t i = 0; i < size; i++) {
        char c = text [i];
        if (c == '%') {
            if (size - i < 3 || umb_hex_digit (text [i + 1]) < 0 || umb_hex_digit (text [i + 2]) < 0)
                return -1;
            c = (char) (umb_hex_digit (text [i + 1]) * 16 + umb_hex_digit (text [i + 2]));
            i += 2;
        }
        else
        if (c == '+' && plus)
            c = ' ';
        dst [out++] = c;
    }
    dst [out] = 0;
    return (int) out;
}

int
umb_percent_decode_into (char *dst, const char *text, size_t size, bool plus)
{
    int out = umb_percent_unescape (dst, text, size, plus);
    if (out < 0 || memchr (dst, 0, (size_t) out) || !umb_utf8_valid (dst, (size_t) out))
        return -1;
    return out;
}

char *
umb_percent_decode (const char *text, size_t size, bool plus)
{
    assert (text || size == 0);
    if (size > INT32_MAX)
        return NULL;
    char *value = malloc (size + 1);
    if (value && umb_percent_decode_into (value, text ? text : "", size, plus) < 0) {
        free (value);
        value = NULL;
    }
    return value;
}

//  ---------------------------------------------------------------- selftest

void
umb_percent_test (bool verbose)
{
    if (verbose)
        printf (" * umb_percent: ");
    char *value = umb_percent_decode ("a+b%2Bc", 7, true);
    assert (value && strcmp (value, "a b+c") == 0);
    free (value);
    value = umb_percent_decode ("a+b", 3, false);
    assert (value && strcmp (value, "a+b") == 0);
    free (value);
    value = umb_percent_decode ("", 0, true);
    assert (value && strcmp (value, "") == 0);
    free (value);
    value = umb_percent_decode (NULL, 0, false);
    assert (value && strcmp (value, "") == 0);
    free (value);
    value = umb_percent_decode ("%2d%2D%c3%A9x", 13, false);
    assert (value && strcmp (value, "--\xc3\xa9x") == 0);
    free (value);
    assert (umb_percent_decode ("%G0", 3, true) == NULL);
    assert (umb_percent_decode ("%0G", 3, true) == NULL);
    assert (umb_percent_decode ("%FF", 3, true) == NULL);     //  not UTF-8
    assert (umb_percent_decode ("%00", 3, true) == NULL);     //  NUL
    assert (umb_percent_decode ("ab%4", 4, true) == NULL);    //  cut off
    assert (umb_percent_decode ("ab%", 3, true) == NULL);

    //  Into a buffer: only size bytes are read; the length comes back
    char buffer [8];
    assert (umb_percent_decode_into (buffer, "a%20b/rest", 5, false) == 3);
    assert (strcmp (buffer, "a b") == 0);
    assert (umb_percent_decode_into (buffer, "x%2", 3, false) == -1);

    //  Unescaping alone keeps what is not text
    assert (umb_percent_unescape (buffer, "a%00%FF+", 8, false) == 4);
    assert (memcmp (buffer, "a\0\xff+", 5) == 0);
    assert (umb_percent_unescape (buffer, "a%00%FF+", 8, true) == 4);
    assert (memcmp (buffer, "a\0\xff ", 5) == 0);
    assert (umb_percent_unescape (buffer, "%zz", 3, false) == -1);
    assert (umb_percent_unescape (buffer, "ab%4", 4, false) == -1);
    if (verbose)
        printf ("OK\n");
}
