#!/usr/bin/python3
"""crash - an algorithm that fails: it says why on stderr and exits 3."""
import sys
print("about to fail on purpose", file=sys.stderr)
sys.exit(3)
