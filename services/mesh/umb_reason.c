//  umb_reason - the human reason a failing call writes for its caller
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "umb_reason.h"

int
umb_reason_set (char *reason, size_t size, const char *format, ...)
{
    assert (format);
    if (reason && size) {
        va_list args;
        va_start (args, format);
        vsnprintf (reason, size, format, args);
        va_end (args);
    }
    return -1;
}

//  ---------------------------------------------------------------- selftest

void
umb_reason_test (bool verbose)
{
    if (verbose)
        printf (" * umb_reason: ");
    char reason [16];
    memset (reason, 'x', sizeof (reason));
    assert (umb_reason_set (reason, sizeof (reason), "%s %d", "code", 42) == -1);
    assert (strcmp (reason, "code 42") == 0);

    //  Cut to fit, always terminated, nothing written past size
    char big [8];
    memset (big, 'x', sizeof (big));
    assert (umb_reason_set (big, 5, "%s", "abcdefgh") == -1);
    assert (strcmp (big, "abcd") == 0);
    assert (big [5] == 'x' && big [7] == 'x');

    //  No room: nothing written, still -1
    memset (reason, 'x', sizeof (reason));
    assert (umb_reason_set (NULL, 0, "no %s", "buffer") == -1);
    assert (umb_reason_set (NULL, sizeof (reason), "no %s", "buffer") == -1);
    assert (umb_reason_set (reason, 0, "no %s", "room") == -1);
    assert (reason [0] == 'x');

    //  Size 1: only the terminator fits
    assert (umb_reason_set (reason, 1, "%s", "gone") == -1);
    assert (reason [0] == 0 && reason [1] == 'x');
    if (verbose)
        printf ("OK\n");
}
