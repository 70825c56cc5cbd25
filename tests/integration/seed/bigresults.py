#!/usr/bin/python3
"""bigresults - an algorithm that writes 3 MiB of results (the cap is 1 MiB)."""
import os
with open(os.path.join(os.environ.get("UMBRA_RESULTS", "results"), "big.bin"), "wb") as f:
    for _ in range(3 * 16):
        f.write(os.urandom(64 * 1024))
