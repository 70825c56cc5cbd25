#!/usr/bin/python3
"""network - an algorithm that tries to reach a TCP listener on the host
(port in its first argument) and exfiltrate a secret; the sandbox has no network."""
import socket
import sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"exfiltrated secret\n")
s.close()
