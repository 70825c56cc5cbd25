#!/usr/bin/python3
"""agent_protocol - a client of the agent written only from proto/msgpack/agent.md (and envelope.md),
run against the real umbra-agent binary in standalone mode.

    /usr/bin/python3 tests/integration/agent_protocol.py

It fetches attestation evidence from the plain attestation endpoint and checks the report_data
binding, pins the agent key from it, speaks CURVE + [header][body] msgpack to the participant
endpoint, checks the refusals (wrong state, not ready, replayed challenge, wrong signer, unknown
asset, hash mismatch, out of order, control operations from a participant), uploads the algorithm
and a dataset with credit-based pipelining, follows the run through agent.events.pull as the control
side, fetches the result tar with pipelined chunk requests, confirms it, and checks that the agent
exits 0 once Complete (--exit-when-done). Also: SIGTERM stops an idle agent, usage errors exit 2.

Needs only Debian's python3-zmq, python3-msgpack and the openssl command (Ed25519 signatures).
TEST_BUILD_DIR (default: <repo>/build) names the build directory holding guest/agent/umbra-agent.
One line is printed per check; the first failure exits 1 with the reason.
"""

import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

import msgpack
import zmq
from zmq.utils import z85

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("TEST_BUILD_DIR") or os.path.join(REPO, "build"))
AGENT = os.path.join(BUILD, "guest", "agent", "umbra-agent")

CALL_TIMEOUT_MS = 10000
RUN_TIMEOUT_S = 60


class Failure(Exception):
    pass


def ok(what):
    print("ok   " + what, flush=True)


def expect(condition, what):
    if not condition:
        raise Failure(what)


# ---------------------------------------------------------------- helpers

def free_port_pair():
    """A port p such that p and p + 1 are both free (the attestation endpoint is the next port)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65534:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise Failure("no free pair of ports")


def openssl(*args, data=None):
    result = subprocess.run(["openssl"] + list(args), input=data, capture_output=True)
    if result.returncode != 0:
        raise Failure("openssl %s: %s" % (" ".join(args), result.stderr.decode(errors="replace")))
    return result.stdout


class Key:
    """An Ed25519 key pair handled by the openssl command."""

    def __init__(self, directory, name):
        self.path = os.path.join(directory, name + ".pem")
        openssl("genpkey", "-algorithm", "ed25519", "-out", self.path)
        self.public_pem = openssl("pkey", "-in", self.path, "-pubout").decode()
        self.directory = directory

    def sign(self, message):
        path = os.path.join(self.directory, "statement.bin")
        with open(path, "wb") as f:
            f.write(message)
        return openssl("pkeyutl", "-sign", "-inkey", self.path, "-rawin", "-in", path)


def upload_statement(role, computation, asset_hash, challenge):
    return (b"umbra-upload-v1\x00" + role.encode() + b"\x00" + computation.encode() + b"\x00"
            + asset_hash + challenge)


def result_statement(computation, challenge):
    return b"umbra-result-v1\x00" + computation.encode() + b"\x00" + challenge


class Connection:
    """One DEALER connection; requests are matched to replies by id, so calls may be pipelined."""

    def __init__(self, context, endpoint, server_key=None, keypair=None):
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if server_key is not None:
            public, secret = keypair if keypair else zmq.curve_keypair()
            self.socket.curve_publickey = public
            self.socket.curve_secretkey = secret
            self.socket.curve_serverkey = server_key
        self.socket.connect(endpoint)
        self.counter = 0
        self.pending = {}

    def send(self, op, body=None):
        self.counter += 1
        request_id = "py-%d" % self.counter
        header = {"v": 1, "id": request_id, "op": op, "deadline_ms": CALL_TIMEOUT_MS}
        self.socket.send_multipart([msgpack.packb(header), msgpack.packb(body or {})])
        return request_id

    def receive(self, request_id, timeout_ms=CALL_TIMEOUT_MS):
        deadline = time.monotonic() + timeout_ms / 1000
        while request_id not in self.pending:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0 or not self.socket.poll(left):
                raise Failure("no reply to %s within %d ms" % (request_id, timeout_ms))
            frames = self.socket.recv_multipart()
            expect(len(frames) == 2, "a reply is two frames, got %d" % len(frames))
            header = msgpack.unpackb(frames[0], raw=False)
            body = msgpack.unpackb(frames[1], raw=False)
            expect(isinstance(header, dict) and header.get("v") == 1, "reply header %r" % header)
            expect(isinstance(body, dict), "reply body is a map")
            self.pending[header["id"]] = (header, body)
        return self.pending.pop(request_id)

    def call(self, op, body=None, timeout_ms=CALL_TIMEOUT_MS):
        return self.receive(self.send(op, body), timeout_ms)

    def close(self):
        self.socket.close(0)


def expect_status(reply, status, code=None, what=""):
    header, _ = reply
    detail = "%s: got %s %s (%s)" % (what, header.get("status"), header.get("code"), header.get("error"))
    expect(header.get("status") == status, "expected %d %s; %s" % (status, code or "", detail))
    if code:
        expect(header.get("code") == code, "expected code %s; %s" % (code, detail))
    if status >= 300:
        expect(isinstance(header.get("error"), str) and header["error"], "an error says why")
    return reply[1]


def challenge(conn):
    body = expect_status(conn.call("agent.challenge"), 200, what="agent.challenge")
    expect(isinstance(body["challenge"], bytes) and len(body["challenge"]) == 32, "challenge is bin 32")
    expect(body["expires_in_ms"] > 0, "expires_in_ms")
    return body["challenge"]


def begin(conn, role, computation, data, key, size=None, hash_of=None, nonce=None):
    asset_hash = hashlib.sha3_256(hash_of if hash_of is not None else data).digest()
    nonce = nonce if nonce is not None else challenge(conn)
    return conn.call("agent.upload.begin", {
        "role": role, "computation": computation, "hash": asset_hash.hex(),
        "size": len(data) if size is None else size, "challenge": nonce,
        "signature": key.sign(upload_statement(role, computation, asset_hash, nonce))})


def upload(conn, role, computation, data, key, hash_of=None):
    """The whole upload, keeping at most `credit` chunks in flight. Returns the end reply."""
    reply = begin(conn, role, computation, data, key, hash_of=hash_of)
    if reply[0]["status"] != 200:
        return reply
    body = reply[1]
    upload_id, chunk_size, credit = body["upload"], body["chunk_size"], body["credit"]
    expect(chunk_size > 0 and credit > 0, "chunk_size and credit are positive")
    chunks = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)]
    in_flight = []
    peak = 0
    for seq, chunk in enumerate(chunks):
        while len(in_flight) >= credit:
            answer = expect_status(conn.receive(in_flight.pop(0)), 200, what="chunk")
            credit = answer["credit"]
        in_flight.append(conn.send("agent.upload.chunk", {"upload": upload_id, "seq": seq, "data": chunk}))
        peak = max(peak, len(in_flight))
    for request_id in in_flight:
        expect_status(conn.receive(request_id), 200, what="chunk")
    upload.peak = peak
    return conn.call("agent.upload.end", {"upload": upload_id, "chunks": len(chunks)})


def status(conn):
    return expect_status(conn.call("agent.status"), 200, what="agent.status")


def result_begin(conn, computation, key, nonce=None):
    nonce = nonce if nonce is not None else challenge(conn)
    return conn.call("agent.result.begin", {
        "computation": computation, "challenge": nonce,
        "signature": key.sign(result_statement(computation, nonce)), "key": key.public_pem})


# ---------------------------------------------------------------- the checks

def check_attestation(context, endpoint, printed_key):
    conn = Connection(context, endpoint)          # plain ZMTP, NULL mechanism
    nonce = os.urandom(32)
    body = expect_status(conn.call("agent.attestation", {"nonce": nonce}), 200, what="attestation")
    expect(body["platform"] == "none" and body["insecure"] is True, "platform none is insecure")
    expect(body["agent_key"] == printed_key, "the evidence names the agent's key")
    expect(body["nonce"] == nonce, "the nonce is echoed")
    raw_key = z85.decode(body["agent_key"].encode())
    expected = hashlib.sha512(b"umbra-attest-v1" + raw_key + nonce).digest()
    expect(body["report_data"] == expected, "report_data = SHA-512(prefix || key || nonce)")
    expect(body["evidence"] == b"" and isinstance(body["certs"], bytes), "no evidence without a TEE")
    ok("attestation: report_data binds the agent key and the nonce; insecure says so")
    expect_status(conn.call("agent.status"), 404, what="other op on the attestation endpoint")
    expect_status(conn.call("agent.attestation", {"nonce": os.urandom(16)}), 400, what="short nonce")
    expect_status(conn.call("agent.attestation", {}), 400, what="no nonce")
    ok("attestation endpoint: other operations 404, a nonce outside 32..64 bytes 400")
    conn.close()
    return body["agent_key"]


def run_computation(context, tmp):
    algo_key, data_key = Key(tmp, "algo"), Key(tmp, "data")
    consumer, stranger = Key(tmp, "consumer"), Key(tmp, "stranger")
    algorithm = (b"#!/bin/sh\n"
                 b"echo \"lines: $(wc -l < datasets/numbers.txt)\"\n"
                 b"echo warming up >&2\n"
                 b"sort -n datasets/numbers.txt | tail -n 1 > results/max.txt\n"
                 b"cp datasets/numbers.txt results/copy.txt\n")
    # big enough for several chunks of the agent's chunk size, to exercise the credit
    dataset = "".join("%d\n" % ((i * 7919) % 100003) for i in range(40000)).encode()
    computation = "py-comp-1"
    manifest = {
        "id": computation, "name": "agent protocol test", "description": "",
        "algorithm": {"hash": hashlib.sha3_256(algorithm).hexdigest(), "userKey": algo_key.public_pem,
                      "type": "bin"},
        "datasets": [{"hash": hashlib.sha3_256(dataset).hexdigest(), "userKey": data_key.public_pem,
                      "filename": "numbers.txt"}],
        "result_consumers": [{"userKey": consumer.public_pem}],
        "agent_config": {"port": "7002"},
        "run_timeout_s": RUN_TIMEOUT_S,
    }
    manifest_path = os.path.join(tmp, "manifest.json")
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    control_public, control_secret = zmq.curve_keypair()
    port = free_port_pair()
    workdir = os.path.join(tmp, "work")
    agent = subprocess.Popen(
        [AGENT, "--manifest", manifest_path, "--listen", "tcp://127.0.0.1:%d" % port,
         "--attestation", "none", "--workdir", workdir, "--exit-when-done",
         "--control-key", control_public.decode(), "--chunk-size", "65536", "--credit", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = agent.stdout.readline().decode()
        match = re.match(r"umbra-agent: listening on (\S+) attestation (\S+) key (\S{40})$", line.strip())
        if not match:
            raise Failure("no ready line; got %r, stderr %r" % (line, agent.stderr.read(4000)))
        endpoint, attest_endpoint, printed_key = match.groups()
        expect(endpoint == "tcp://127.0.0.1:%d" % port, "listens where told")
        expect(attest_endpoint == "tcp://127.0.0.1:%d" % (port + 1), "attestation on the next port")
        ok("umbra-agent prints its endpoints and key")

        agent_key = check_attestation(context, attest_endpoint, printed_key).encode()

        # A client that pinned another key never completes the handshake
        wrong = Connection(context, endpoint, zmq.curve_keypair()[0])
        request_id = wrong.send("agent.status")
        try:
            wrong.receive(request_id, timeout_ms=1000)
            raise Failure("a client with the wrong server key got an answer")
        except Failure as error:
            expect("no reply" in str(error), str(error))
        wrong.close()
        ok("a client pinning another key gets no answer")

        conn = Connection(context, endpoint, agent_key)
        control = Connection(context, endpoint, agent_key, (control_public, control_secret))
        body = status(conn)
        expect(body["state"] == "ReceivingAlgorithm", "standalone starts in ReceivingAlgorithm")
        expect(body["computation"] == computation, "status names the computation")
        expect(body["algorithm"] == {"hash": manifest["algorithm"]["hash"], "received": False},
               "status: algorithm not yet received")
        expect(body["datasets"][0]["filename"] == "numbers.txt" and not body["datasets"][0]["received"],
               "status: dataset listed")
        expect(body["consumers"] == [{"fetched": False}], "status: one consumer")
        ok("agent.status over CURVE: ReceivingAlgorithm with the manifest's assets")

        # ------------------------------------------------ refusals
        expect_status(conn.call("agent.control.stop", {"reason": "me"}), 403, what="control op by participant")
        expect_status(conn.call("agent.events.pull", {"after": 0}), 403, what="events by participant")
        ok("control operations from a participant key: 403")
        expect_status(begin(conn, "dataset", computation, dataset, data_key), 409, "wrong_state",
                      "dataset before algorithm")
        ok("a dataset before the algorithm: 409 wrong_state")
        expect_status(result_begin(conn, computation, consumer), 409, "not_ready", "result before run")
        expect_status(result_begin(conn, computation, stranger), 403, "not_a_consumer", "stranger")
        ok("a result before the run: 409 not_ready; a stranger: 403 not_a_consumer")
        expect_status(begin(conn, "algorithm", computation, algorithm, data_key), 403, "bad_signature",
                      "wrong signer")
        ok("the algorithm signed by another key: 403 bad_signature")
        nonce = challenge(conn)
        expect_status(begin(conn, "algorithm", computation, algorithm, stranger, nonce=nonce), 403,
                      "bad_signature", "first use of a challenge")
        expect_status(begin(conn, "algorithm", computation, algorithm, algo_key, nonce=nonce), 403,
                      "bad_challenge", "replayed challenge")
        ok("a challenge is spent by its first use: the replay gets 403 bad_challenge")
        expect_status(begin(conn, "algorithm", "other", algorithm, algo_key), 403, "forbidden",
                      "another computation")
        expect_status(begin(conn, "algorithm", computation, b"other bytes", algo_key), 404,
                      "unknown_asset", "unknown hash")
        ok("another computation: 403; a hash not in the manifest: 404 unknown_asset")
        forged = b"#!/bin/sh\necho pwned\n" + b" " * (len(algorithm) - 21)
        expect_status(upload(conn, "algorithm", computation, forged, algo_key, hash_of=algorithm), 422,
                      "hash_mismatch", "forged content")
        expect(status(conn)["state"] == "ReceivingAlgorithm", "state unchanged after hash mismatch")
        ok("bytes that are not the manifest's: 422 hash_mismatch, state unchanged")
        reply = expect_status(begin(conn, "algorithm", computation, algorithm, algo_key), 200, what="begin")
        upload_id = reply["upload"]
        expect_status(conn.call("agent.upload.chunk", {"upload": upload_id, "seq": 1, "data": b"x"}), 409,
                      "out_of_order", "chunk 1 first")
        expect_status(conn.call("agent.upload.chunk", {"upload": upload_id, "seq": 0, "data": b"x"}), 404,
                      "unknown_upload", "after the abort")
        ok("a chunk out of order aborts the upload: 409 out_of_order, then 404 unknown_upload")
        reply = expect_status(begin(conn, "algorithm", computation, algorithm, algo_key, size=4), 200,
                              what="begin small")
        expect_status(conn.call("agent.upload.chunk", {"upload": reply["upload"], "seq": 0,
                                                       "data": algorithm[:8]}), 413, "too_large", "too big")
        ok("more bytes than announced: 413 too_large")
        expect_status(conn.call("agent.upload.abort", {"upload": "nope"}), 404, "unknown_upload", "abort")

        # ------------------------------------------------ uploads
        body = expect_status(upload(conn, "algorithm", computation, algorithm, algo_key), 200,
                             what="algorithm upload")
        expect(body["state"] == "ReceivingData" and body["size"] == len(algorithm), "algorithm recorded")
        expect(body["hash"] == manifest["algorithm"]["hash"], "the agent computed the same hash")
        ok("algorithm uploaded and verified; ReceivingData")
        expect_status(begin(conn, "algorithm", computation, algorithm, algo_key), 409, "wrong_state",
                      "algorithm again")
        body = expect_status(upload(conn, "dataset", computation, dataset, data_key), 200, what="dataset")
        expect(upload.peak > 1, "chunks were pipelined (peak %d in flight)" % upload.peak)
        expect(body["state"] in ("Running", "ConsumingResults"), "the run starts after the last dataset")
        ok("dataset of %d bytes uploaded with up to %d chunks in flight; %s"
           % (len(dataset), upload.peak, body["state"]))
        expect_status(begin(conn, "dataset", computation, dataset, data_key), 409, None, "dataset again")

        # ------------------------------------------------ events as the control side
        after, states, logs = 0, [], []
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while "ConsumingResults" not in states and "Failed" not in states:
            expect(time.monotonic() < deadline, "the run ends within %d s" % RUN_TIMEOUT_S)
            body = expect_status(control.call("agent.events.pull", {"after": after, "max": 100,
                                                                    "wait_ms": 2000}), 200, what="pull")
            for event in body["events"]:
                expect(event["seq"] == after + 1, "events are numbered without gaps")
                after = event["seq"]
                expect(event["type"] in ("state", "log", "dropped"), "event type %r" % event["type"])
                expect(isinstance(event["time"], int) and isinstance(event["state"], str), "event fields")
                if event["type"] == "state":
                    states.append(event["state"])
                elif event["type"] == "log":
                    logs.append(event["message"])
            expect(body["last"] >= after, "last is the newest sequence number")
        expect("Failed" not in states, "the run failed: %s" % status(conn).get("reason"))
        expect("stdout: lines: 40000" in logs, "stdout line as a log event (got %r)" % logs)
        expect("stderr: warming up" in logs, "stderr line as a log event")
        ok("agent.events.pull (long poll): states %s, output lines as log events" % " -> ".join(states))
        body = expect_status(control.call("agent.events.pull", {"after": after, "wait_ms": 0}), 200,
                             what="ack")
        expect(body["events"] == [], "acknowledged events are not sent again")

        # ------------------------------------------------ results
        expect_status(result_begin(conn, computation, stranger), 403, "not_a_consumer", "stranger")
        nonce = challenge(conn)
        expect_status(conn.call("agent.result.begin", {
            "computation": computation, "challenge": nonce,
            "signature": stranger.sign(result_statement(computation, nonce)),
            "key": consumer.public_pem}), 403, "bad_signature", "consumer key, stranger's signature")
        ok("results: a stranger 403 not_a_consumer, a borrowed key 403 bad_signature")
        body = expect_status(result_begin(conn, computation, consumer), 200, what="result.begin")
        download, size, chunk_size = body["download"], body["size"], body["chunk_size"]
        count = (size + chunk_size - 1) // chunk_size
        requests = [conn.send("agent.result.chunk", {"download": download, "seq": seq}) for seq in range(count)]
        data = b""
        for seq, request_id in enumerate(requests):
            chunk = expect_status(conn.receive(request_id), 200, what="result.chunk")
            expect(chunk["seq"] == seq, "chunk seq")
            data += chunk["data"]
        expect(len(data) == size, "the result has the announced size")
        expect(hashlib.sha3_256(data).hexdigest() == body["hash"], "the result has the announced SHA3-256")
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            expect(tar.format == tarfile.USTAR_FORMAT or True, "tar")
            members = {m.name: m for m in tar.getmembers()}
            expect("./max.txt" in members and "./copy.txt" in members, "result members %r" % list(members))
            top = tar.extractfile(members["./max.txt"]).read().decode().strip()
            expect(top == str(max((i * 7919) % 100003 for i in range(40000))), "max.txt is right")
            expect(tar.extractfile(members["./copy.txt"]).read() == dataset, "copy.txt is the dataset")
        expect(data[257:263] == b"ustar\x00", "the result is a POSIX ustar archive")
        ok("result fetched with %d pipelined chunk requests: ustar, hash matches, contents right" % count)
        body = expect_status(conn.call("agent.result.end", {"download": download}), 200, what="result.end")
        expect(body["state"] == "Complete", "Complete once the only consumer confirmed")
        ok("agent.result.end: Complete")
        conn.close()
        control.close()
        try:
            code = agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise Failure("--exit-when-done: the agent did not exit")
        expect(code == 0, "exit code 0 after Complete, got %d; stderr ends: %s"
               % (code, agent.stderr.read()[-3000:].decode(errors="replace")))
        ok("--exit-when-done: exit 0 after Complete")
        expect(not os.path.exists(os.path.join(workdir, "uploads")) or
               not [n for n in os.listdir(os.path.join(workdir, "uploads")) if n.startswith(".upload")],
               "no partial upload left")
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def check_sigterm_kills_run(context, tmp):
    """SIGTERM while the algorithm runs: the agent exits 0 and the algorithm is gone."""
    algo_key = Key(tmp, "algo2")
    marker = "%d.%d" % (os.getpid() % 1000 + 100, int(time.time()) % 1000)   # a unique sleep length
    algorithm = ("#!/bin/sh\necho started\nexec sleep %s\n" % marker).encode()
    manifest = {"id": "py-comp-2", "algorithm": {"hash": hashlib.sha3_256(algorithm).hexdigest(),
                                                 "userKey": algo_key.public_pem, "type": "bin"},
                "datasets": [], "result_consumers": [{"userKey": algo_key.public_pem}]}
    path = os.path.join(tmp, "manifest2.json")
    with open(path, "w") as f:
        json.dump(manifest, f)
    control_public, control_secret = zmq.curve_keypair()
    port = free_port_pair()
    agent = subprocess.Popen(
        [AGENT, "--manifest", path, "--listen", "tcp://127.0.0.1:%d" % port, "--attestation", "none",
         "--workdir", "work2", "--control-key", control_public.decode()],      # relative: cwd is tmp
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp)
    try:
        line = agent.stdout.readline().decode().split()
        endpoint, key = line[3], line[7].encode()
        conn = Connection(context, endpoint, key)
        control = Connection(context, endpoint, key, (control_public, control_secret))
        expect_status(upload(conn, "algorithm", "py-comp-2", algorithm, algo_key), 200, what="upload")
        after, logs = 0, []
        deadline = time.monotonic() + 30
        while "stdout: started" not in logs:
            expect(time.monotonic() < deadline, "the algorithm starts")
            body = expect_status(control.call("agent.events.pull", {"after": after, "wait_ms": 1000}), 200)
            for event in body["events"]:
                after = event["seq"]
                logs.append(event["message"])
        running = subprocess.run(["pgrep", "-f", "sleep %s" % marker], capture_output=True).stdout
        expect(running.strip(), "the algorithm runs (pgrep finds it)")
        conn.close()
        control.close()
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=15)
        expect(code == 0, "SIGTERM while running: exit 0, got %d" % code)
        running = subprocess.run(["pgrep", "-f", "sleep %s" % marker], capture_output=True).stdout
        expect(not running.strip(), "the algorithm was killed with the agent")
        ok("SIGTERM while the algorithm runs (relative --workdir): the agent exits 0 and kills it")
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def check_signals_and_usage(tmp):
    port = free_port_pair()
    agent = subprocess.Popen(
        [AGENT, "--listen", "tcp://127.0.0.1:%d" % port, "--attestation", "none",
         "--workdir", os.path.join(tmp, "idle")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = agent.stdout.readline().decode()
    expect(line.startswith("umbra-agent: listening on "), "ready line, got %r" % line)
    agent.send_signal(signal.SIGTERM)
    try:
        code = agent.wait(timeout=10)
    except subprocess.TimeoutExpired:
        agent.kill()
        raise Failure("SIGTERM did not stop the agent")
    expect(code == 0, "SIGTERM: exit 0, got %d" % code)
    warning = agent.stderr.read().decode()
    expect("INSECURE" in warning, "--attestation none warns loudly at start")
    ok("--attestation none warns at start; SIGTERM stops the agent (exit 0)")
    result = subprocess.run([AGENT, "--listen", "tcp://127.0.0.1:1"], capture_output=True)
    expect(result.returncode == 2, "a missing --workdir is a usage error (2)")
    result = subprocess.run([AGENT, "--bogus"], capture_output=True)
    expect(result.returncode == 2, "an unknown option is a usage error (2)")
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        f.write("{\"id\": \"x\"}")
    result = subprocess.run([AGENT, "--listen", "tcp://127.0.0.1:%d" % free_port_pair(), "--attestation",
                             "none", "--workdir", os.path.join(tmp, "bad"), "--manifest", bad],
                            capture_output=True, timeout=20)
    expect(result.returncode == 1 and result.stderr, "an invalid manifest: exit 1 with the reason")
    ok("usage errors exit 2; an invalid manifest exits 1 with the reason")


def main():
    if not os.access(AGENT, os.X_OK):
        print("FAIL %s is not built (set TEST_BUILD_DIR)" % AGENT)
        return 1
    if not zmq.has("curve"):
        print("FAIL libzmq without CURVE")
        return 1
    tmp = tempfile.mkdtemp(prefix="agent_protocol.")
    context = zmq.Context()
    try:
        run_computation(context, tmp)
        check_sigterm_kills_run(context, tmp)
        check_signals_and_usage(tmp)
    except Failure as error:
        print("FAIL " + str(error), flush=True)
        return 1
    finally:
        context.destroy(linger=0)
        shutil.rmtree(tmp, ignore_errors=True)
    print("agent_protocol: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
