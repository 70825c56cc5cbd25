#!/usr/bin/python3
"""python_client - a mesh client written only from the protocol spec, run against a real `umbra up`.

    /usr/bin/python3 tests/integration/python_client.py

It proves that proto/msgpack/envelope.md and proto/msgpack/auth.md describe what travels on the
wire: it speaks CURVE + [header][body] msgpack to the auth service with nothing but Debian's
python3-zmq and python3-msgpack, walks through users, tokens, workspaces, invitations and members,
verifies an access token's EdDSA signature against auth.jwks itself, checks the error replies, and
checks that a CURVE key outside the mesh allow-list is never answered.

TEST_BUILD_DIR (default: <repo>/build) names the build directory holding
cli/umbra. One line is printed per check; the first failure exits 1 with the reason.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import msgpack
import zmq

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TEST_BUILD_DIR") or os.path.join(REPO, "build")
UMBRA = os.path.join(BUILD, "cli", "umbra")

STARTUP_S = 60          # the platform must answer sys.ping within this
CALL_TIMEOUT_MS = 5000  # one request's deadline
STRANGER_WAIT_MS = 1500 # a refused key must stay unanswered this long
STOP_S = 20             # SIGTERM must end the platform within this


class Failure(Exception):
    pass


class Timeout(Failure):
    pass


def ok(what):
    print("ok   " + what, flush=True)


def expect(condition, what):
    if not condition:
        raise Failure(what)


# ---------------------------------------------------------------- Ed25519 (RFC 8032)

def _ed25519_verify_library(public, message, signature):
    """(valid, library) with a Debian-packaged library; (None, None) if there is none."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        pass
    else:
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
            return True, "python3-cryptography"
        except InvalidSignature:
            return False, "python3-cryptography"
    try:
        import nacl.exceptions
        import nacl.signing
    except ImportError:
        return None, None
    try:
        nacl.signing.VerifyKey(public).verify(message, signature)
        return True, "python3-nacl"
    except nacl.exceptions.BadSignatureError:
        return False, "python3-nacl"


# The reference verification of RFC 8032 section 6, used only where neither python3-cryptography
# nor python3-nacl is installed, so the signature is never left unchecked.
_P = 2 ** 255 - 19
_L = 2 ** 252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _point_add(a, b):
    pa, pb = (a[1] - a[0]) * (b[1] - b[0]) % _P, (a[1] + a[0]) * (b[1] + b[0]) % _P
    pc, pd = 2 * a[3] * b[3] * _D % _P, 2 * a[2] * b[2] % _P
    e, f, g, h = pb - pa, pd - pc, pd + pc, pb + pa
    return (e * f, g * h, f * g, e * h)


def _point_mul(s, point):
    result = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            result = _point_add(result, point)
        point = _point_add(point, point)
        s >>= 1
    return result


def _point_equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _recover_x(y, sign):
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _point_decompress(data):
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % _P)


def _ed25519_verify_reference(public, message, signature):
    a = _point_decompress(public)
    r = _point_decompress(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _L
    return _point_equal(_point_mul(s, _G), _point_add(r, _point_mul(h, a)))


def ed25519_verify(public, message, signature):
    """(valid, how) for a 32-byte key and a 64-byte signature."""
    if len(public) != 32 or len(signature) != 64:
        return False, "sizes"
    valid, library = _ed25519_verify_library(public, message, signature)
    if valid is not None:
        return valid, library
    return _ed25519_verify_reference(public, message, signature), "RFC 8032 reference code"


def b64url_decode(text):
    expect(isinstance(text, str) and re.fullmatch(r"[A-Za-z0-9_-]*", text) is not None,
           "not unpadded base64url: %r" % (text,))
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------- the mesh client

def curve_socket(context, server_key, public, secret):
    sock = context.socket(zmq.DEALER)
    sock.curve_serverkey = server_key
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.linger = 0
    return sock


class MeshClient:
    """A DEALER speaking the envelope of proto/msgpack/envelope.md; calls are matched by id."""

    def __init__(self, context, endpoint, server_key, public, secret):
        self.sock = curve_socket(context, server_key, public, secret)
        self.sock.connect(endpoint)
        self.sequence = 0

    def next_id(self):
        self.sequence += 1
        return "py-%d.%d" % (os.getpid(), self.sequence)

    def send_raw(self, header_bytes, body_bytes):
        self.sock.send_multipart([header_bytes, body_bytes])

    def receive(self, timeout_ms=CALL_TIMEOUT_MS):
        """The next reply as (header, body), checked against envelope.md; None after timeout_ms."""
        if not self.sock.poll(timeout_ms, zmq.POLLIN):
            return None
        frames = self.sock.recv_multipart()
        expect(len(frames) == 2, "a reply has exactly two frames, got %d" % len(frames))
        header = decode_map(frames[0], "reply header")
        body = decode_map(frames[1], "reply body")
        check_reply_header(header)
        return header, body

    def call_raw(self, header_bytes, body_bytes, want_id, timeout_ms=CALL_TIMEOUT_MS):
        """Sends two frames as given; waits for the reply whose id is want_id."""
        self.send_raw(header_bytes, body_bytes)
        deadline = time.monotonic() + timeout_ms / 1000
        others = []
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            reply = self.receive(left) if left > 0 else None
            if reply is None:
                raise Timeout("no reply with id %r within %d ms%s" % (
                    want_id, timeout_ms, "; replies came with ids %r" % others if others else ""))
            if reply[0]["id"] == want_id:
                return reply
            # a reply to an abandoned request: the spec says to discard it by id
            others.append(reply[0]["id"])

    def call(self, op, body=None, token=None, header_extra=None, timeout_ms=CALL_TIMEOUT_MS):
        request_id = self.next_id()
        header = {"v": 1, "id": request_id, "op": op, "deadline_ms": timeout_ms}
        if token is not None:
            header["token"] = token
        if header_extra:
            header.update(header_extra)
        return self.call_raw(pack(header), pack(body if body is not None else {}),
                             request_id, timeout_ms)

    def close(self):
        self.sock.close(0)


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


def decode_map(data, what):
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as error:
        raise Failure("%s is not valid msgpack (%s): %r" % (what, error, data[:64]))
    expect(isinstance(value, dict), "%s is not a msgpack map: %r" % (what, value))
    expect(all(isinstance(key, str) for key in value), "%s has non-string keys: %r" % (what, value))
    return value


def check_reply_header(header):
    """The reply header table of envelope.md."""
    expect(header.get("v") == 1, "reply header v is not 1: %r" % header)
    expect(isinstance(header.get("id"), str), "reply header id is not a string: %r" % header)
    status = header.get("status")
    expect(isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599,
           "reply header status is not an HTTP status: %r" % header)
    expect(isinstance(header.get("retryable"), bool),
           "reply header retryable is not a bool: %r" % header)
    if status >= 300:
        expect(isinstance(header.get("code"), str) and header["code"],
               "error reply without a code: %r" % header)
        expect(isinstance(header.get("error"), str) and header["error"],
               "error reply without an error message: %r" % header)


# The status table of envelope.md; 409 is open-ended ("conflict", "already_member", ...)
CODES = {200: {"ok"}, 201: {"created"}, 400: {"bad_request", "bad_envelope", "bad_body"},
         401: {"unauthenticated"}, 403: {"forbidden"}, 404: {"not_found", "unknown_operation"},
         413: {"too_large"}, 422: {"invalid_argument"}, 429: {"too_many_requests"},
         500: {"internal"}, 503: {"unavailable"}}


def expect_status(reply, status, what, code=None):
    header, body = reply
    if header["status"] != status or (code is not None and header.get("code") != code):
        raise Failure("%s: expected %d%s, got %d %s: %s (body %r)" % (
            what, status, " " + code if code else "", header["status"], header.get("code", ""),
            header.get("error", ""), body))
    if status >= 300:
        expect(body == {}, "%s: an error reply carries an empty body map, got %r" % (what, body))
        if status in CODES and header["code"] not in CODES[status]:
            raise Failure("%s: code %r is not one of envelope.md's codes for %d: %s" % (
                what, header["code"], status, ", ".join(sorted(CODES[status]))))
    return body


def expect_fields(value, fields, what, exact=False):
    """fields: {name: type or tuple of types}; bools are not ints here. exact: no other keys
    (auth.md: "Every object below is a msgpack map with exactly these keys")."""
    expect(isinstance(value, dict), "%s is not a map: %r" % (what, value))
    if exact:
        expect(set(value) == set(fields), "%s has keys %s, auth.md says exactly %s" % (
            what, sorted(value), sorted(fields)))
    for name, kind in fields.items():
        expect(name in value, "%s has no '%s': %r" % (what, name, value))
        item = value[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if bool not in kinds and isinstance(item, bool):
            raise Failure("%s.%s is a bool, expected %s: %r" % (what, name, kinds, value))
        expect(isinstance(item, kinds), "%s.%s is %s, expected %s: %r" % (
            what, name, type(item).__name__, "/".join(k.__name__ for k in kinds), value))


# The objects of auth.md ("Objects in replies")
USER = {"id": str, "username": str, "email": (str, type(None)), "is_admin": bool,
        "disabled": bool, "created_at": int}
PUBLIC_USER = {"id": str, "username": str}
TOKENS = {"access_token": str, "refresh_token": str, "token_type": str, "expires_in": int,
          "refresh_expires_in": int, "user": dict}
WORKSPACE = {"id": str, "name": str, "display_name": str, "role": str, "created_at": int}
MEMBER = {"user_id": str, "username": str, "role": str, "joined_at": int}
INVITATION = {"id": str, "workspace_id": str, "workspace_name": str, "username": str,
              "role": str, "state": str, "invited_by": str, "created_at": int}
JWK = {"kty": str, "crv": str, "x": str, "kid": str, "alg": str, "use": str}
CLAIMS = {"iss": str, "sub": str, "name": str, "sid": str, "jti": str, "iat": int, "nbf": int,
          "exp": int}


def expect_id(value, prefix, what):
    """auth.md: ids are a prefix and 16 lowercase hex digits."""
    expect(isinstance(value, str) and re.fullmatch(re.escape(prefix) + "[0-9a-f]{16}", value),
           "%s %r is not %s + 16 lowercase hex digits" % (what, value, prefix))


def check_time(value, what):
    now = time.time()
    expect(now - 3600 <= value <= now + 60, "%s is not a recent time in seconds: %r" % (what, value))


# ---------------------------------------------------------------- the platform

def free_ports(count):
    """count distinct free ports, held open together while the kernel picks them."""
    held = [socket.socket() for _ in range(count)]
    try:
        for sock in held:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


def zpl_public_key(path):
    """The public-key of a ZPL certificate (CZMQ's format)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    match = re.search(r'^\s*public-key\s*=\s*"([^"]{40})"\s*$', text, re.M)
    expect(match is not None, "%s has no 40-character public-key" % path)
    return match.group(1)


class Platform:
    def __init__(self, work):
        self.state = os.path.join(work, "state")
        self.allow_dir = os.path.join(work, "allow")
        self.log_path = os.path.join(work, "umbra.log")
        (self.auth_port, self.pub_port, self.gateway_port,
         self.certs_port, self.certs_pub_port, self.certs_http_port) = free_ports(6)
        self.endpoint = "tcp://127.0.0.1:%d" % self.auth_port
        self.process = None
        self.log = None

    def start(self):
        expect(os.access(UMBRA, os.X_OK), "%s is not built (set TEST_BUILD_DIR)" % UMBRA)
        env = dict(os.environ)
        env.update({
            "UMBRA_AUTH_ENDPOINT": self.endpoint,
            "UMBRA_AUTH_PUB_ENDPOINT": "tcp://127.0.0.1:%d" % self.pub_port,
            "UMBRA_CERTS_ENDPOINT": "tcp://127.0.0.1:%d" % self.certs_port,
            "UMBRA_CERTS_PUB_ENDPOINT": "tcp://127.0.0.1:%d" % self.certs_pub_port,
            "UMBRA_CERTS_HTTP_LISTEN": "127.0.0.1:%d" % self.certs_http_port,
            "UMBRA_MESH_ALLOW_DIR": self.allow_dir,
            "UMBRA_LOG_LEVEL": "debug",
        })
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [UMBRA, "up", "--state", self.state, "--listen", "127.0.0.1:%d" % self.gateway_port],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def wait_listening(self, deadline):
        """Connects to auth's ROUTER port until it accepts; waiting is done in process.wait."""
        while True:
            expect(self.alive(), "umbra up exited with %s before listening" % self.process.poll())
            try:
                with socket.create_connection(("127.0.0.1", self.auth_port), timeout=0.5):
                    return
            except OSError:
                pass
            expect(time.monotonic() < deadline, "auth did not listen on %s within %d s"
                   % (self.endpoint, STARTUP_S))
            try:
                self.process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass

    def stop(self):
        """SIGTERM; returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            raise Failure("umbra up did not stop within %d s of SIGTERM" % STOP_S)

    def kill(self):
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log:
            self.log.close()
            self.log = None


# ---------------------------------------------------------------- the checks

def run(work):
    context = zmq.Context()
    platform = Platform(work)
    try:
        return walk(context, platform)
    finally:
        platform.kill()
        context.destroy(linger=0)


def walk(context, platform):
    expect(zmq.has("curve"), "this libzmq has no CURVE")
    public, secret = zmq.curve_keypair()
    os.makedirs(platform.allow_dir)
    with open(os.path.join(platform.allow_dir, "python-client.pub"), "w", encoding="ascii") as handle:
        handle.write("#   umbra mesh identity 'python-client'\n"
                     "metadata\n"
                     "    name = \"python-client\"\n"
                     "curve\n"
                     "    public-key = \"%s\"\n" % public.decode("ascii"))
    ok("wrote python-client.pub (ZPL) into the allow dir")

    platform.start()
    deadline = time.monotonic() + STARTUP_S
    platform.wait_listening(deadline)
    key_path = os.path.join(platform.state, "keys", "auth.pub")
    while not os.path.exists(key_path):
        expect(platform.alive() and time.monotonic() < deadline, "no %s" % key_path)
        try:
            platform.process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass
    server_key = zpl_public_key(key_path).encode("ascii")
    ok("auth listens on %s; its key from keys/auth.pub" % platform.endpoint)

    client = MeshClient(context, platform.endpoint, server_key, public, secret)
    # The first ping waits for the CURVE handshake and the service's loop
    while True:
        expect(platform.alive(), "umbra up exited with %s" % platform.process.poll())
        try:
            reply = client.call("sys.ping", timeout_ms=1000)
            break
        except Timeout:
            expect(time.monotonic() < deadline, "no answer to sys.ping within %d s" % STARTUP_S)
    body = expect_status(reply, 200, "sys.ping")
    expect_fields(body, {"service": str, "time_ms": int}, "sys.ping reply")
    expect(body["service"] == "auth", "sys.ping names service %r" % body["service"])
    expect(abs(body["time_ms"] - time.time() * 1000) < 60000,
           "sys.ping time_ms is not now in milliseconds: %r" % body["time_ms"])
    ok("sys.ping -> 200 {service: auth, time_ms}")

    body = expect_status(client.call("sys.health"), 200, "sys.health")
    expect_fields(body, {"service": str, "status": str, "uptime_s": int}, "sys.health reply")
    expect(body["status"] == "ok" and body["service"] == "auth", "sys.health: %r" % body)
    ok("sys.health -> 200 {service: auth, status: ok, uptime_s: %d}" % body["uptime_s"])

    # Forward compatibility: unknown header keys are ignored, nil counts as absent
    expect_status(client.call("sys.ping", header_extra={"x_trace": "abc", "token": None}), 200,
                  "unknown header key and nil token")
    ok("an unknown header key and a nil token are ignored")

    # Pipelining: several requests in flight, replies matched by id
    ids = [client.next_id() for _ in range(3)]
    for request_id in ids:
        client.send_raw(pack({"v": 1, "id": request_id, "op": "sys.ping",
                              "deadline_ms": CALL_TIMEOUT_MS}), pack({}))
    seen = set()
    for _ in ids:
        reply = client.receive()
        expect(reply is not None, "a pipelined sys.ping was not answered")
        expect_status(reply, 200, "pipelined sys.ping")
        seen.add(reply[0]["id"])
    expect(seen == set(ids), "pipelined replies carry ids %r, sent %r" % (seen, ids))
    ok("3 pipelined requests, 3 replies matched by id")

    # ---- users and tokens
    suffix = "%d" % (os.getpid() % 100000)
    alice_name, bob_name = "alice" + suffix, "bob" + suffix
    alice_password, bob_password = "alice-password-1", "bob-password-12"
    alice = expect_status(client.call("auth.users.register", {
        "username": alice_name, "password": alice_password, "email": "alice@example.org"}),
        201, "register alice")
    expect_fields(alice, USER, "user", exact=True)
    expect_id(alice["id"], "usr_", "user id")
    expect(alice["username"] == alice_name and alice["email"] == "alice@example.org"
           and not alice["is_admin"] and not alice["disabled"], "registered user: %r" % alice)
    check_time(alice["created_at"], "user.created_at")
    ok("auth.users.register alice -> 201 user {id: %s, ...}" % alice["id"])
    bob = expect_status(client.call("auth.users.register", {
        "username": bob_name, "password": bob_password, "email": None}), 201, "register bob")
    expect_fields(bob, USER, "user", exact=True)
    expect_id(bob["id"], "usr_", "user id")
    expect(bob["username"] == bob_name and bob["id"] != alice["id"] and bob["email"] is None,
           "second user (registered with email nil, so email nil): %r" % bob)
    ok("auth.users.register bob (email nil) -> 201, email nil")

    tokens = expect_status(client.call("auth.tokens.create", {
        "username": alice_name, "password": alice_password}), 201, "alice logs in")
    expect_fields(tokens, TOKENS, "tokens", exact=True)
    expect_fields(tokens["user"], PUBLIC_USER, "tokens.user", exact=True)
    expect(tokens["token_type"] == "Bearer", "token_type: %r" % tokens["token_type"])
    expect(re.fullmatch(r"umr_[A-Za-z0-9_-]{43}", tokens["refresh_token"]) is not None,
           "refresh_token is not umr_ + 43 base64url characters: %d characters"
           % len(tokens["refresh_token"]))
    expect(tokens["expires_in"] > 0 and tokens["refresh_expires_in"] > tokens["expires_in"],
           "token lifetimes: %r" % tokens)
    expect(tokens["user"].get("id") == alice["id"] and tokens["user"].get("username") == alice_name,
           "tokens.user: %r" % tokens["user"])
    alice_token = tokens["access_token"]
    alice_ttl = tokens["expires_in"]
    ok("auth.tokens.create alice -> 201 tokens (Bearer, expires_in %d)" % tokens["expires_in"])
    tokens = expect_status(client.call("auth.tokens.create", {
        "username": bob_name, "password": bob_password}), 201, "bob logs in")
    bob_token = tokens["access_token"]
    ok("auth.tokens.create bob -> 201")

    me = expect_status(client.call("auth.users.get", {"user": "me"}, token=alice_token), 200,
                       "auth.users.get me")
    expect_fields(me, USER, "full user", exact=True)
    expect(me == alice, "auth.users.get me: %r, registered %r" % (me, alice))
    ok("auth.users.get {user: me} with alice's token -> alice, full user")
    other = expect_status(client.call("auth.users.get", {"user": bob_name}, token=alice_token),
                          200, "auth.users.get bob as alice")
    expect_fields(other, PUBLIC_USER, "public user", exact=True)
    expect(other == {"id": bob["id"], "username": bob_name}, "bob seen by alice: %r" % other)
    ok("auth.users.get {user: bob} with alice's token -> public {id, username}")

    # ---- workspaces, invitations, members
    ws_name = "acme" + suffix
    workspace = expect_status(client.call("auth.workspaces.create", {
        "name": ws_name, "display_name": "Acme"}, token=alice_token), 201, "create workspace")
    expect_fields(workspace, WORKSPACE, "workspace", exact=True)
    expect_id(workspace["id"], "ws_", "workspace id")
    expect(workspace["name"] == ws_name and workspace["role"] == "admin"
           and workspace["display_name"] == "Acme",
           "created workspace: %r" % workspace)
    check_time(workspace["created_at"], "workspace.created_at")
    ok("auth.workspaces.create -> 201 workspace {id: %s, role: admin}" % workspace["id"])

    listed = expect_status(client.call("auth.workspaces.list", token=alice_token), 200,
                           "list workspaces")
    expect_fields(listed, {"items": list}, "workspaces.list reply")
    expect(listed["items"] == [workspace], "alice's workspaces: %r" % listed)
    ok("auth.workspaces.list -> the one workspace")

    invitation = expect_status(client.call("auth.invitations.create", {
        "workspace": ws_name, "username": bob_name, "role": "member"}, token=alice_token),
        201, "invite bob")
    expect_fields(invitation, INVITATION, "invitation", exact=True)
    expect_id(invitation["id"], "inv_", "invitation id")
    check_time(invitation["created_at"], "invitation.created_at")
    expect(invitation["invited_by"] == alice_name,
           "invited_by is the inviter's username: %r" % invitation["invited_by"])
    expect(invitation["workspace_id"] == workspace["id"] and invitation["workspace_name"] == ws_name
           and invitation["username"] == bob_name and invitation["role"] == "member"
           and invitation["state"] == "pending", "invitation: %r" % invitation)
    ok("auth.invitations.create bob as member -> 201 invitation (pending)")

    mine = expect_status(client.call("auth.invitations.mine", token=bob_token), 200,
                         "bob's invitations")
    expect_fields(mine, {"items": list}, "invitations.mine reply")
    expect(mine["items"] == [invitation], "bob's invitations: %r, sent %r" % (mine, invitation))
    ok("auth.invitations.mine (bob) lists it")

    accepted = expect_status(client.call("auth.invitations.accept", {
        "invitation": invitation["id"]}, token=bob_token), 200, "bob accepts")
    expect_fields(accepted, {"invitation": dict, "member": dict}, "invitations.accept reply", True)
    expect_fields(accepted["invitation"], INVITATION, "accepted invitation", exact=True)
    expect_fields(accepted["member"], MEMBER, "new member", exact=True)
    expect(accepted["invitation"] == dict(invitation, state="accepted"),
           "accepted invitation: %r, sent %r" % (accepted["invitation"], invitation))
    expect(accepted["member"]["user_id"] == bob["id"] and accepted["member"]["role"] == "member",
           "new member: %r" % accepted["member"])
    ok("auth.invitations.accept (bob) -> 200 {invitation: accepted, member: member}")

    members = expect_status(client.call("auth.members.list", {"workspace": workspace["id"]},
                                        token=bob_token), 200, "list members")
    expect_fields(members, {"items": list}, "members.list reply", exact=True)
    for member in members["items"]:
        expect_fields(member, MEMBER, "member", exact=True)
        check_time(member["joined_at"], "member.joined_at")
    roles = [(m["username"], m["user_id"], m["role"]) for m in members["items"]]
    want = [(alice_name, alice["id"], "admin"), (bob_name, bob["id"], "member")]
    expect(roles == want, "members (by username): %r, expected %r" % (roles, want))
    expect(accepted["member"] in members["items"], "the accepted member is not listed as it was")
    ok("auth.members.list (bob, by id) -> alice admin, bob member, by username")

    # ---- JWKS and the token's signature, checked here
    jwks = expect_status(client.call("auth.jwks"), 200, "auth.jwks")
    expect_fields(jwks, {"keys": list}, "jwks", exact=True)
    for key in jwks["keys"]:
        expect_fields(key, JWK, "jwk", exact=True)
        expect(key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
               and key["use"] == "sig", "jwk: %r" % key)
    parts = alice_token.split(".")
    expect(len(parts) == 3, "an access token is a compact JWS of three parts")
    jose = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    signature = b64url_decode(parts[2])
    expect(jose == {"alg": "EdDSA", "typ": "JWT", "kid": jose.get("kid")} and jose.get("kid"),
           "token header: %r" % jose)
    keys = [k for k in jwks["keys"] if isinstance(k, dict) and k.get("kid") == jose.get("kid")]
    expect(len(keys) == 1, "the token's kid %r is not exactly once in the JWKS %r"
           % (jose.get("kid"), jwks))
    jwk = keys[0]
    public_key = b64url_decode(jwk.get("x"))
    signing_input = (parts[0] + "." + parts[1]).encode("ascii")
    valid, how = ed25519_verify(public_key, signing_input, signature)
    expect(valid, "the access token's signature does not verify with the JWKS key")
    forged = bytes([signature[0] ^ 1]) + signature[1:]
    expect(not ed25519_verify(public_key, signing_input, forged)[0],
           "a flipped signature bit still verifies: the check is broken")
    expect_fields(claims, CLAIMS, "token claims", exact=True)
    expect(claims["iss"] == "umbra" and claims["sub"] == alice["id"] and claims["name"] == alice_name,
           "token claims iss/sub/name: %r" % claims)
    expect_id(claims["sid"], "ses_", "claim sid")
    expect(re.fullmatch("[0-9a-f]{16}", claims["jti"]) is not None, "claim jti: %r" % claims["jti"])
    check_time(claims["iat"], "claim iat")
    expect(claims["nbf"] == claims["iat"] and claims["exp"] == claims["iat"] + alice_ttl,
           "claims: nbf = iat and exp = iat + expires_in: %r" % claims)
    ok("auth.jwks -> the token's EdDSA signature verifies here (%s); claims as auth.md says" % how)

    # ---- error replies: each answered with the request's id; the service stays up
    def still_up(after):
        expect_status(client.call("sys.ping"), 200, "sys.ping after " + after)

    reply = client.call("auth.no.such.op")
    expect_status(reply, 404, "unknown op", "unknown_operation")
    still_up("an unknown op")
    ok("unknown op -> 404 unknown_operation")

    reply = client.call("auth.users.register", {"username": "carol" + suffix})
    expect_status(reply, 400, "missing password", "bad_request")
    still_up("a missing field")
    ok("missing field -> 400 %s (auth.users.register without password)" % reply[0]["code"])

    reply = client.call("auth.users.register", {"username": "carol" + suffix,
                                                 "password": 12345678901})
    expect_status(reply, 400, "password of the wrong type", "bad_request")
    still_up("a wrong type")
    ok("wrong type -> 400 %s (password as int)" % reply[0]["code"])

    # auth.md, "Two kinds of bad input": a well-typed value breaking a rule is 422, not 400
    expect_status(client.call("auth.users.register", {"username": "carol" + suffix,
                                                      "password": "short"}),
                  422, "a short password", "invalid_argument")
    expect_status(client.call("auth.users.register", {"username": alice_name,
                                                      "password": "another-password"}),
                  409, "a taken username", "username_taken")
    still_up("rule violations")
    ok("short password -> 422 invalid_argument; taken username -> 409 username_taken")

    forged_token = "%s.%s.%s%s" % (parts[0], parts[1], "B" if parts[2][0] == "A" else "A", parts[2][1:])
    expect_status(client.call("auth.workspaces.list", token=forged_token), 401,
                  "forged token", "unauthenticated")
    expect_status(client.call("auth.workspaces.list", token="not-a-token"), 401,
                  "garbage token", "unauthenticated")
    expect_status(client.call("auth.workspaces.list"), 401, "no token", "unauthenticated")
    still_up("bad tokens")
    ok("bad token (forged, garbage, none) -> 401 unauthenticated")

    request_id = client.next_id()
    reply = client.call_raw(pack({"v": 2, "id": request_id, "op": "sys.ping",
                                  "deadline_ms": CALL_TIMEOUT_MS}), pack({}), request_id)
    expect_status(reply, 400, "v=2")
    still_up("v=2")
    ok("header v=2 -> 400 %s, same id" % reply[0]["code"])

    request_id = client.next_id()
    reply = client.call_raw(pack({"v": 1, "id": request_id, "op": "auth.users.register",
                                  "deadline_ms": CALL_TIMEOUT_MS}), b"\xc1\x93\x01", request_id)
    expect_status(reply, 400, "malformed msgpack body")
    still_up("a malformed body")
    ok("malformed msgpack body -> 400 %s, same id" % reply[0]["code"])

    request_id = client.next_id()
    expect_status(client.call_raw(pack({"v": 1, "id": request_id, "op": "sys.ping"}), pack({}),
                                  request_id), 400, "no deadline_ms")
    still_up("a header without deadline_ms")
    ok("header without deadline_ms -> 400, same id")

    expect_status(client.call("auth.users.register", {"username": "x" * (1024 * 1024 + 1),
                                                      "password": "long-enough-password"}),
                  413, "a body over 1 MiB", "too_large")
    still_up("a body over the limit")
    ok("body over 1 MiB -> 413 too_large")

    # The header cannot be read, so the reply's id is "" (envelope.md, reply header)
    reply = client.call_raw(pack([1, "py-array", "sys.ping", CALL_TIMEOUT_MS]), pack({}), "")
    expect_status(reply, 400, "header not a map")
    still_up("a header that is not a map")
    ok("header that is not a map -> 400 %s, id \"\"" % reply[0]["code"])

    # ---- admission: a key outside the allow-list is never answered
    stranger_public, stranger_secret = zmq.curve_keypair()
    stranger = curve_socket(context, server_key, stranger_public, stranger_secret)
    stranger.connect(platform.endpoint)
    stranger.send_multipart([pack({"v": 1, "id": "stranger-1", "op": "sys.ping",
                                   "deadline_ms": CALL_TIMEOUT_MS}), pack({})])
    answered = stranger.poll(STRANGER_WAIT_MS, zmq.POLLIN)
    stranger.close(0)
    expect(not answered, "a CURVE key outside the allow-list got a reply")
    ok("a fresh CURVE key not in the allow dir gets no reply within %.1f s" % (STRANGER_WAIT_MS / 1000))
    expect_status(client.call("sys.ping"), 200, "sys.ping of the allowed client")
    ok("the allowed client still gets answers")
    client.close()

    rc = platform.stop()
    expect(rc == 0, "umbra up exited %s on SIGTERM" % rc)
    ok("SIGTERM -> umbra up exits 0")


def main():
    work = tempfile.mkdtemp(prefix="umbra-pyclient.")
    platform_log = os.path.join(work, "umbra.log")
    try:
        run(work)
    except Failure as failure:
        print("FAIL: %s" % failure, flush=True)
        if os.path.exists(platform_log):
            with open(platform_log, "rb") as handle:
                tail = b"".join(handle.readlines()[-40:]).decode("utf-8", "replace")
            print("---- last lines of the platform's log\n" + tail, flush=True)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("python_client passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
