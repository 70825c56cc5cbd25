#!/usr/bin/python3
"""sleeper - an algorithm that runs far past its run_timeout_s."""
import time
time.sleep(120)
