#!/usr/bin/env python3
# embed.py - turns a file into a C source defining umb_openapi_embedded () (build step)
import sys

def main():
    source, target = sys.argv[1], sys.argv[2]
    data = open(source, 'rb').read()
    lines = []
    for i in range(0, len(data), 16):
        lines.append('    ' + ''.join('0x%02x, ' % b for b in data[i:i + 16]).rstrip())
    with open(target, 'w') as out:
        out.write('//  generated from %s by embed.py; do not edit\n' % source.split('/')[-1])
        out.write('#include "umb_openapi.h"\n\n')
        out.write('static const unsigned char s_data [] = {\n')
        out.write('\n'.join(lines))
        out.write('\n    0x00\n};\n\n')
        out.write('const char *\numb_openapi_embedded (size_t *size)\n{\n')
        out.write('    *size = sizeof (s_data) - 1;\n    return (const char *) s_data;\n}\n')

if __name__ == '__main__':
    main()
