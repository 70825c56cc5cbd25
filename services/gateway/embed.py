#!/usr/bin/env python3
# embed.py - turns a file into a C source defining one function that returns
# its bytes (a build step): embed.py SOURCE TARGET [FUNCTION HEADER]; the
# default is umb_openapi_embedded () from umb_openapi.h
import sys

def main():
    source, target = sys.argv[1], sys.argv[2]
    function = sys.argv[3] if len(sys.argv) > 3 else 'umb_openapi_embedded'
    header = sys.argv[4] if len(sys.argv) > 4 else 'umb_openapi.h'
    data = open(source, 'rb').read()
    lines = []
    for i in range(0, len(data), 16):
        lines.append('    ' + ''.join('0x%02x, ' % b for b in data[i:i + 16]).rstrip())
    with open(target, 'w') as out:
        out.write('//  generated from %s by embed.py; do not edit\n' % source.split('/')[-1])
        out.write('#include "%s"\n\n' % header)
        out.write('static const unsigned char s_data [] = {\n')
        out.write('\n'.join(lines))
        out.write('\n    0x00\n};\n\n')
        out.write('const char *\n%s (size_t *size)\n{\n' % function)
        out.write('    *size = sizeof (s_data) - 1;\n    return (const char *) s_data;\n}\n')

if __name__ == '__main__':
    main()
