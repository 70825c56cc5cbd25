#!/usr/bin/python3
"""replay - an attacker who captured a participant's signed agent.upload.begin sends it again.

    /usr/bin/python3 replay.py ENDPOINT KEY FILE

Written from proto/msgpack/agent.md alone (python3-zmq, python3-msgpack, openssl for the
signature): fetches the attestation with a fresh nonce and checks its binding, pins the agent key,
opens CURVE, takes a challenge, signs the upload statement for FILE as a dataset with KEY (an
ECDSA P-256 or Ed25519 private key PEM), sends agent.upload.begin (must be accepted), aborts that
upload, then sends the very same begin again: the agent must refuse it (403 bad_challenge),
because a challenge is consumed by the first request that presents it. Prints one line per step;
exits 0 only if the replay was refused.
"""
import hashlib
import os
import subprocess
import sys

import msgpack
import zmq
import zmq.utils.z85

TIMEOUT_MS = 10000


def fail(message):
    print("replay: FAIL: " + message)
    sys.exit(1)


class Link:
    def __init__(self, socket):
        self.socket = socket
        self.sequence = 0

    def call(self, op, body):
        self.sequence += 1
        rid = "replay-%d" % self.sequence
        header = {"v": 1, "id": rid, "op": op, "deadline_ms": TIMEOUT_MS}
        self.socket.send_multipart([msgpack.packb(header), msgpack.packb(body, use_bin_type=True)])
        while True:
            if not self.socket.poll(TIMEOUT_MS):
                fail("no answer to " + op)
            frames = self.socket.recv_multipart()
            if len(frames) != 2:
                fail("reply to %s is not [header][body]" % op)
            header = msgpack.unpackb(frames[0], raw=False)
            if header.get("id") == rid:
                return header, msgpack.unpackb(frames[1], raw=False)


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    endpoint, key, path = sys.argv[1:]
    host, port = endpoint.rsplit(":", 1)
    context = zmq.Context()

    # 1. the attestation, on the plain endpoint
    plain = context.socket(zmq.DEALER)
    plain.setsockopt(zmq.LINGER, 0)
    plain.connect("%s:%d" % (host, int(port) + 1))
    nonce = os.urandom(32)
    header, body = Link(plain).call("agent.attestation", {"nonce": nonce})
    if header["status"] != 200:
        fail("agent.attestation: %s" % header)
    agent_key = body["agent_key"]
    expected = hashlib.sha512(b"umbra-attest-v1" + zmq.utils.z85.decode(agent_key) + nonce).digest()
    if body["nonce"] != nonce or body["report_data"] != expected:
        fail("the attestation does not bind the agent key to our nonce")
    print("replay: attestation fetched (platform %s), agent key %s pinned" % (body["platform"], agent_key))

    # 2. CURVE to the participant endpoint with the pinned key
    secure = context.socket(zmq.DEALER)
    public, secret = zmq.curve_keypair()
    secure.setsockopt(zmq.CURVE_PUBLICKEY, public)
    secure.setsockopt(zmq.CURVE_SECRETKEY, secret)
    secure.setsockopt(zmq.CURVE_SERVERKEY, agent_key.encode())
    secure.setsockopt(zmq.LINGER, 0)
    secure.connect(endpoint)
    link = Link(secure)
    header, status = link.call("agent.status", {})
    if header["status"] != 200:
        fail("agent.status: %s" % header)
    computation = status["computation"]

    # 3. a genuine, signed begin
    header, body = link.call("agent.challenge", {})
    challenge = body["challenge"]
    data = open(path, "rb").read()
    digest = hashlib.sha3_256(data).digest()
    statement = (b"umbra-upload-v1\0dataset\0" + computation.encode() + b"\0" + digest + challenge)
    kind = subprocess.run(["openssl", "pkey", "-in", key, "-noout", "-text"], capture_output=True,
                          check=True).stdout.decode()
    if "ED25519" in kind:
        command = ["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin"]
    else:
        command = ["openssl", "dgst", "-sha256", "-sign", key]
    signature = subprocess.run(command, input=statement, capture_output=True, check=True).stdout
    begin = {"role": "dataset", "computation": computation, "hash": digest.hex(),
             "size": len(data), "challenge": challenge, "signature": signature}
    header, body = link.call("agent.upload.begin", begin)
    if header["status"] != 200:
        fail("the genuine begin was refused: %s" % header)
    print("replay: the genuine begin was accepted (upload %s); aborting it" % body["upload"])
    header, _ = link.call("agent.upload.abort", {"upload": body["upload"]})
    if header["status"] != 200:
        fail("agent.upload.abort: %s" % header)

    # 4. the captured begin, sent again
    header, body = link.call("agent.upload.begin", begin)
    if header["status"] == 200:
        fail("the replayed begin was accepted")
    print("replay: the replayed begin was refused: %d %s: %s"
          % (header["status"], header.get("code"), header.get("error")))
    if header["status"] != 403 or header.get("code") != "bad_challenge":
        fail("expected 403 bad_challenge")


if __name__ == "__main__":
    main()
