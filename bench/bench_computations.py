#!/usr/bin/python3
"""bench_computations.py - the load generator and run driver of bench/bench_computations.sh.

  bench_computations.py rest URL WORKSPACE COUNT CONNECTIONS
      COUNT POST /workspaces/{ws}/computations over CONNECTIONS keep-alive connections, then every
      connection walks the whole listing (GET ...?limit=100&cursor=...) until about COUNT / 5 pages
      were read; the peers with the same generator and connections: COUNT authenticated
      GET /workspaces (auth only) and COUNT GET /workspaces without a token (401 from the
      gateway alone, no mesh call: the ceiling of this generator on this machine).
  bench_computations.py runs URL WORKSPACE N WORKDIR
      N computations (linreg.py, one dataset, the caller holding every role), then N runs started
      at once; each followed live (?follow=1) and driven with the real CLI as soon as it is
      AwaitingAssets: umbra algo, umbra data, and at ResultsReady umbra result, until Completed.
      Then every run's event log and its CVM's backends event log are counted.
  bench_computations.py bare AGENT WORKDIR ROUNDS
      the peer: ROUNDS sequential standalone umbra-agent --manifest (WORKDIR/manifest.json, the
      platform's own manifest of one of the computations) driven by the same CLI steps.

Environment: TOKEN (the bearer token), UMBRA (the CLI), SEED (linreg.py and data1.csv), KEY (the
participant's keys KEY.key and KEY.pub, as `umbra keys generate --out KEY` writes them). Prints
`KEY = VALUE` figure lines (cmp.*) and notes; exits 1 when something failed to work (a non-2xx answer where 2xx was due, a listing that
misses computations), with the reason on stderr. Standard library only."""
import http.client
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
import urllib.parse


def die(message):
    print("bench_computations.py: " + message, file=sys.stderr)
    sys.exit(1)


def percentile(values, p):
    """nearest-rank percentile of values (p in 0..100)"""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def median(values):
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return float("nan")
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


# ---------------------------------------------------------------- a lean keep-alive HTTP load generator
class Conn:
    """One keep-alive connection with one request in flight, driven by a job: a generator that
    yields (method, path, body or None) and is sent back (status, body bytes)."""

    def __init__(self, host, port, token, job):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.host = "%s:%d" % (host, port)
        self.token = token
        self.job = job
        self.buf = b""
        self.out = b""
        self.started = 0.0
        self.kind = None

    def request(self, kind, method, path, body):
        head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, self.host)
        if self.token:
            head += "Authorization: Bearer %s\r\n" % self.token
        if body is not None:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self.out = (head + "\r\n").encode() + (body or b"")
        self.kind = kind
        self.started = time.perf_counter()
        sent = self.sock.send(self.out)
        self.out = self.out[sent:]

    def response(self):
        """(status, body) once the whole answer is in self.buf, else None"""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buf[:end].decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            size = int(headers["content-length"])
            if len(self.buf) < end + 4 + size:
                return None
            body = self.buf[end + 4:end + 4 + size]
            self.buf = self.buf[end + 4 + size:]
            return status, body
        if headers.get("transfer-encoding", "").lower() == "chunked":
            pos, body = end + 4, b""
            while True:
                eol = self.buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                size = int(self.buf[pos:eol].split(b";")[0], 16)
                if len(self.buf) < eol + 2 + size + 2:
                    return None
                body += self.buf[eol + 2:eol + 2 + size]
                pos = eol + 2 + size + 2
                if size == 0:
                    self.buf = self.buf[pos:]
                    return status, body
        die("an answer with neither Content-Length nor chunked encoding: %r" % head)


def drive(url, token, jobs):
    """Runs one job per connection until all are done. Returns (wall seconds, {kind: [latency s]},
    failures [str])"""
    parts = urllib.parse.urlsplit(url)
    sel = selectors.DefaultSelector()
    latencies, failures = {}, []
    conns = []
    for job in jobs:
        conns.append(Conn(parts.hostname, parts.port, token, job))
    t0 = time.perf_counter()
    live = 0
    for c in conns:
        try:
            kind, method, path, body = next(c.job)
        except StopIteration:
            continue
        c.request(kind, method, path, body)
        sel.register(c.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0), c)
        live += 1
    while live:
        ready = sel.select(60)
        if not ready:
            die("no answer in 60 s on %d connections" % live)
        for key, events in ready:
            c = key.data
            if events & selectors.EVENT_WRITE and c.out:
                sent = c.sock.send(c.out)
                c.out = c.out[sent:]
                if not c.out:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
            if not events & selectors.EVENT_READ:
                continue
            data = c.sock.recv(1 << 20)
            if not data:
                die("the gateway closed a connection mid-request (%s)" % c.kind)
            c.buf += data
            answer = c.response()
            if answer is None:
                continue
            latencies.setdefault(c.kind, []).append(time.perf_counter() - c.started)
            try:
                kind, method, path, body = c.job.send(answer)
            except StopIteration:
                sel.unregister(c.sock)
                c.sock.close()
                live -= 1
                continue
            c.request(kind, method, path, body)
            if c.out:
                sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    return time.perf_counter() - t0, latencies, failures


def figures(name, count, wall, lat):
    print("cmp.%s.requests = %d" % (name, count))
    print("cmp.%s.requests_per_s = %.1f" % (name, count / wall))
    print("cmp.%s.p50_ms = %.2f" % (name, percentile(lat, 50) * 1000))
    print("cmp.%s.p99_ms = %.2f" % (name, percentile(lat, 99) * 1000))
    sys.stdout.flush()


def cmd_rest(url, workspace, count, connections):
    token = os.environ["TOKEN"]
    ws = urllib.parse.quote(workspace)

    def simple(kind, path, left, expect=200):
        while left[0] > 0:
            left[0] -= 1
            status, body = yield kind, "GET", path, None
            if status != expect:
                die("GET %s -> %d: %s" % (path, status, body[:300]))

    # Warm-up (not reported): the gateway's threads and connections, auth's caches
    left = [200]
    drive(url, token, [simple("warm", "/workspaces", left) for _ in range(connections)])

    # The generator's ceiling: GET /workspaces without a token, answered 401 by the gateway alone
    # (no mesh call; /health would ask every service)
    left = [count]
    wall, lat, _ = drive(url, None, [simple("gateway", "/workspaces", left, 401)
                                     for _ in range(connections)])
    figures("gateway", count, wall, lat["gateway"])

    # The peer: authenticated GET /workspaces
    left = [count]
    wall, lat, _ = drive(url, token, [simple("workspaces", "/workspaces", left) for _ in range(connections)])
    figures("workspaces", count, wall, lat["workspaces"])

    # Creates: each a membership lookup through auth and a transaction with its audit record
    me = json.loads(subprocess.run(["curl", "-sf", "-H", "Authorization: Bearer " + token,
                                    url + "/users/me"], capture_output=True, check=True).stdout)["id"]
    counter = [0]

    def creator():
        while counter[0] < count:
            counter[0] += 1
            body = json.dumps({"name": "bench-%05d" % counter[0], "description": "bench",
                               "algorithm": {"provider": me, "type": "python"},
                               "datasets": [{"provider": me, "filename": "data1.csv"}],
                               "consumers": [me],
                               "backend": {"tee": "none", "vcpus": 1, "memory_mb": 128}}).encode()
            status, reply = yield "create", "POST", "/workspaces/%s/computations" % ws, body
            if status != 201:
                die("POST computations -> %d: %s" % (status, reply[:300]))

    wall, lat, _ = drive(url, token, [creator() for _ in range(connections)])
    figures("create", count, wall, lat["create"])

    # Listing: each connection walks the whole listing, page by page, until the page budget is spent
    pages = [max(connections, count // 5)]
    walks, seen_counts = [0], []

    def walker():
        while pages[0] > 0:
            cursor, seen = None, set()
            while True:
                path = "/workspaces/%s/computations?limit=100" % ws
                if cursor:
                    path += "&cursor=" + urllib.parse.quote(cursor, safe="")
                pages[0] -= 1
                status, reply = yield "list", "GET", path, None
                if status != 200:
                    die("GET %s -> %d: %s" % (path, status, reply[:300]))
                page = json.loads(reply)
                seen.update(item["id"] for item in page["items"])
                cursor = page.get("next")
                if not cursor:
                    break
            walks[0] += 1
            seen_counts.append(len(seen))

    wall, lat, _ = drive(url, token, [walker() for _ in range(connections)])
    n = len(lat["list"])
    figures("list", n, wall, lat["list"])
    print("cmp.list.walks = %d" % walks[0])
    print("cmp.list.items_per_s = %.0f" % (sum(seen_counts) / wall))
    if any(s != count for s in seen_counts):
        die("a walk of the listing saw %s computations, not %d" % (sorted(set(seen_counts)), count))


# ---------------------------------------------------------------- runs
class Api:
    """A small JSON client of the gateway (one connection per call: it is used from many threads)"""

    def __init__(self, url, token):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.token = parts.hostname, parts.port, token

    retried = []                        # the 5xx answers retried: "METHOD path-kind: status code"

    def call(self, method, path, body=None, timeout=60):
        """A GET answered 502..504 (the platform too busy to answer in time) is retried, 5 times
        at most, and counted"""
        for attempt in range(6):
            status, reply = self.call_once(method, path, body, timeout)
            if method != "GET" or status not in (502, 503, 504) or attempt == 5:
                return status, reply
            Api.retried.append("GET %s: %d %s" % (self.kind(path), status,
                                                  (reply.get("error") or {}).get("code")))
            time.sleep(0.2)

    @staticmethod
    def kind(path):
        """a path with its ids folded"""
        return "/".join("{id}" if "_" in part and part.split("_")[0] in ("cmp", "run", "cvm") else part
                        for part in path.split("?")[0].split("/"))

    def call_once(self, method, path, body, timeout):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        headers = {"Authorization": "Bearer " + self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        conn.close()
        try:
            return response.status, json.loads(raw) if raw else {}
        except ValueError:
            return response.status, {"raw": raw[:300].decode("latin-1")}

    def ok(self, method, path, body=None, expect=(200, 201)):
        status, reply = self.call(method, path, body)
        if status not in expect:
            die("%s %s -> %d: %s" % (method, path, status, reply))
        return reply


def cli(args, log):
    """the real CLI; (ok, the last line of its output)"""
    done = subprocess.run([os.environ["UMBRA"]] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL)
    text = done.stdout.decode(errors="replace").strip()
    with open(log, "a") as out:
        out.write("$ umbra %s\n%s\n" % (" ".join(args[:2]), text))
    return done.returncode == 0, (text.splitlines() or ["exit %d" % done.returncode])[-1]


FINAL = ("Completed", "Failed", "Cancelled")


class Run(threading.Thread):
    """One run: started at the barrier, followed live, driven by the CLI at each state"""

    def __init__(self, api, url, ws, cmp, workdir, barrier, deadline_s):
        super().__init__(daemon=True)
        self.api, self.url, self.ws, self.cmp = api, url, ws, cmp
        self.workdir, self.barrier, self.deadline_s = workdir, barrier, deadline_s
        self.run_id = None
        self.cvm = None
        self.started = self.awaiting = self.endpoints = self.results = self.completed = None
        self.uploaded = self.fetched = None
        self.stream_errors = []
        self.state = None
        self.failure = None
        self.steps = {}

    def fail(self, why):
        if not self.failure:
            self.failure = why

    def run_steps(self, agent, attest, key):
        common = ["--agent", agent, "--attest-endpoint", attest, "--insecure-dev"]
        log = os.path.join(self.workdir, "cli.log")
        seed = os.environ["SEED"]
        for name, args in (("algo", ["algo", os.path.join(seed, "linreg.py"), "--key", key]),
                           ("data", ["data", os.path.join(seed, "data1.csv"), "--key", key])):
            t = time.monotonic()
            ok, last = cli(args + common, log)
            self.steps[name] = time.monotonic() - t
            if not ok:
                self.fail("umbra %s: %s" % (name, last))
                return False
        return True

    def fetch_result(self, agent, attest, key):
        out = os.path.join(self.workdir, "result")
        t = time.monotonic()
        ok, last = cli(["result", "--key", key, "-o", out, "--agent", agent, "--attest-endpoint", attest,
                        "--insecure-dev"], os.path.join(self.workdir, "cli.log"))
        self.steps["result"] = time.monotonic() - t
        if not ok:
            self.fail("umbra result: %s" % last)
            return False
        try:
            model = json.load(open(os.path.join(out, "model.json")))
            if not model.get("n"):
                self.fail("the result: %r" % model)
        except (OSError, ValueError) as error:
            self.fail("the result: %s" % error)
        return True

    def events(self, base, end):
        """The run's events, followed live (?follow=1, Server-Sent Events); a stream that ends
        with an error event is resumed (Last-Event-ID), and the error counted"""
        last = None
        while time.monotonic() < end:
            conn = http.client.HTTPConnection(self.api.host, self.api.port,
                                              timeout=max(1, end - time.monotonic()))
            headers = {"Authorization": "Bearer " + self.api.token, "Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            conn.request("GET", base + "/runs/%s/events?follow=1" % self.run_id, headers=headers)
            stream = conn.getresponse()
            if stream.status in (502, 503, 504):
                Api.retried.append("GET %s?follow=1: %d" % (Api.kind(base) + "/runs/{id}/events",
                                                            stream.status))
                conn.close()
                time.sleep(0.2)
                continue
            if stream.status != 200:
                self.fail("follow: %d %s" % (stream.status, stream.read()[:300]))
                return
            kind, seq, data = None, None, []
            try:
                while True:
                    line = stream.readline()
                    if not line:
                        break               # the stream ended without its end event
                    line = line.decode().rstrip("\r\n")
                    if line.startswith("data: "):
                        data.append(line[6:])
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("id: "):
                        seq = int(line[4:])
                    elif not line and data:
                        event = json.loads("\n".join(data))
                        if seq is not None:
                            last = seq
                        if kind == "end":
                            self.state = event.get("state", self.state)
                            return
                        if kind == "error":
                            self.stream_errors.append("%s %s: %s" % (event.get("status"), event.get("code"),
                                                                      event.get("message")))
                            break
                        yield event
                        kind, seq, data = None, None, []
            finally:
                conn.close()
            if len(self.stream_errors) > 20:
                self.fail("the event stream failed %d times: %s" % (len(self.stream_errors),
                                                                   self.stream_errors[-1]))
                return

    def run(self):
        try:
            self.follow()
        except Exception as error:      # a thread must not die silently: it is a failure
            self.fail("%s: %s" % (type(error).__name__, error))

    def follow(self):
        os.makedirs(self.workdir, exist_ok=True)
        key = os.environ["KEY"] + ".key"
        base = "/workspaces/%s/computations/%s" % (self.ws, self.cmp)
        self.barrier.wait()
        self.started = time.monotonic()
        status, reply = self.api.call("POST", base + "/runs")
        if status != 201:
            self.fail("start: %d %s" % (status, reply))
            return
        self.run_id = reply["id"]
        end = self.started + self.deadline_s
        agent = attest = None
        uploaded = fetched = False
        for event in self.events(base, end):
            if event.get("source") == "computations" and event.get("type") == "state":
                self.state = event["state"]
            elif not (self.state == "AwaitingAssets" and event.get("source") == "computations"):
                continue
            now = time.monotonic()
            if self.state == "AwaitingAssets" and not uploaded:
                # The endpoints follow the state: computations asks backends for them and stores
                # them with an info event ("participants reach the agent at ...")
                self.awaiting = self.awaiting or now
                status, row = self.api.call("GET", base + "/runs/" + self.run_id)
                if status != 200:
                    self.fail("GET the run: %d %s" % (status, row))
                    break
                agent, attest, self.cvm = row.get("agent_endpoint"), row.get("attest_endpoint"), row.get("cvm")
                if not agent:
                    continue
                self.endpoints = time.monotonic()
                uploaded = True
                if not self.run_steps(agent, attest, key):
                    break
                self.uploaded = time.monotonic()
            elif self.state == "ResultsReady" and not fetched:
                self.results = now
                fetched = True
                if not self.fetch_result(agent, attest, key):
                    break
                self.fetched = time.monotonic()
            elif self.state in FINAL:
                if self.state == "Completed":
                    self.completed = now
                break
        status, row = self.api.call("GET", base + "/runs/" + self.run_id)
        if status != 200:
            self.fail("GET the run at its end: %d %s" % (status, row))
            return
        self.cvm = self.cvm or row.get("cvm")
        if row.get("state") not in FINAL:
            if time.monotonic() >= end:
                self.fail("still %s after %d s" % (row.get("state"), self.deadline_s))
                self.api.call("POST", base + "/runs/%s/stop" % self.run_id)
            else:
                self.fail("still %s when its event stream ended" % row.get("state"))
        elif row.get("state") != "Completed":
            self.fail("%s: %s" % (row.get("state"), row.get("reason")))
        elif self.completed is None:
            self.completed = time.monotonic()


def count_events(api, path):
    """every event of a log read in pages of 1000: (count, list of events)"""
    after, events = 0, []
    while True:
        reply = api.ok("GET", "%s?after=%d&max=1000" % (path, after))
        page = reply.get("events", [])
        events += page
        if not page or page[-1]["seq"] >= reply.get("last", 0):
            return events
        after = page[-1]["seq"]


def cmd_runs(url, workspace, n, workdir):
    api = Api(url, os.environ["TOKEN"])
    ws = urllib.parse.quote(workspace)
    seed = os.environ["SEED"]
    me = api.ok("GET", "/users/me")["id"]
    checksum = lambda f: subprocess.run([os.environ["UMBRA"], "checksum", os.path.join(seed, f)],
                                        capture_output=True, check=True, text=True).stdout.strip()
    algo_hash, data_hash = checksum("linreg.py"), checksum("data1.csv")
    pub = open(os.environ["KEY"] + ".pub").read()
    cmps = []
    for i in range(n):
        row = api.ok("POST", "/workspaces/%s/computations" % ws,
                     {"name": "run-%03d" % i, "algorithm": {"provider": me, "type": "python", "hash": algo_hash},
                      "datasets": [{"provider": me, "filename": "data1.csv", "hash": data_hash}],
                      "consumers": [me], "backend": {"tee": "none", "vcpus": 1, "memory_mb": 128},
                      "run_timeout_s": 120})
        api.ok("PUT", "/workspaces/%s/computations/%s/participants/me/key" % (ws, row["id"]), {"key": pub})
        cmps.append(row["id"])
    manifest = api.ok("GET", "/workspaces/%s/computations/%s/manifest" % (ws, cmps[0]))["manifest"]
    with open(os.path.join(workdir, "manifest.json"), "w") as out:
        out.write(manifest)
    print("%d computations ready (linreg.py, data1.csv, one participant in every role)" % n)
    sys.stdout.flush()

    barrier = threading.Barrier(n + 1)
    runs = [Run(api, url, ws, cmp, os.path.join(workdir, "run-%03d" % i), barrier, 150)
            for i, cmp in enumerate(cmps)]
    for r in runs:
        r.start()
    barrier.wait()
    t0 = time.monotonic()
    for r in runs:
        r.join(170)
    wall = time.monotonic() - t0

    done = [r for r in runs if r.completed and not r.failure]
    failed = [r for r in runs if r not in done]
    for r in failed:
        print("failed: %s run %s: %s" % (r.cmp, r.run_id, r.failure or "no end"))
    e2e = [r.completed - r.started for r in done]
    stage = lambda a, b: median([getattr(r, b) - getattr(r, a) for r in done
                                 if getattr(r, a) is not None and getattr(r, b) is not None])
    errors = [e for r in runs for e in r.stream_errors]
    for text in sorted(set(errors)):
        print("event stream error (resumed with Last-Event-ID), %d times: %s" % (errors.count(text), text))
    first = min(r.started for r in runs if r.started)
    last = max([r.completed for r in done] or [time.monotonic()])
    window = last - first

    # The runs' CVMs are destroyed once the runs end (computations asks backends): until every
    # host's capacity.cvms is 0, at most 120 s
    torn, live = None, None
    while time.monotonic() < last + 120:
        live = sum(h["capacity"]["cvms"] for h in api.ok("GET", "/workspaces/%s/backends" % ws)["items"])
        if live == 0:
            torn = time.monotonic()
            break
        time.sleep(0.1)
    if torn is None:
        print("note: %d CVMs of finished runs were still live 120 s after the last run ended" % live)

    # Event logs: the run's (computations) and its CVM's (backends), over the same window
    run_events, cvm_events, sources = 0, 0, {}
    for r in runs:
        if not r.run_id:
            continue
        events = count_events(api, "/workspaces/%s/computations/%s/runs/%s/events" % (ws, r.cmp, r.run_id))
        run_events += len(events)
        for e in events:
            sources[e["source"]] = sources.get(e["source"], 0) + 1
        if r.cvm:
            cvm_events += len(count_events(api, "/workspaces/%s/cvms/%s/events" % (ws, r.cvm)))
    started_runs = sum(1 for r in runs if r.run_id)
    print("cmp.runs = %d" % n)
    print("cmp.runs_completed = %d" % len(done))
    print("cmp.runs_failed = %d" % len(failed))
    print("cmp.runs_wall_s = %.2f" % wall)
    print("cmp.run_e2e_median_s = %.2f" % median(e2e))
    print("cmp.run_e2e_p99_s = %.2f" % percentile(e2e, 99))
    print("cmp.run_e2e_min_s = %.2f" % (min(e2e) if e2e else float("nan")))
    # Medians of each stage: start -> AwaitingAssets -> its endpoints stored -> umbra algo and
    # data done -> ResultsReady -> umbra result done -> Completed
    print("cmp.run_provision_median_s = %.2f" % stage("started", "awaiting"))
    print("cmp.run_endpoints_median_s = %.2f" % stage("awaiting", "endpoints"))
    print("cmp.run_uploads_median_s = %.2f" % stage("endpoints", "uploaded"))
    print("cmp.run_compute_median_s = %.2f" % stage("uploaded", "results"))
    print("cmp.run_result_median_s = %.2f" % stage("results", "fetched"))
    print("cmp.run_finish_median_s = %.2f" % stage("fetched", "completed"))
    print("cmp.stream_errors = %d" % len(errors))
    for text in sorted(set(Api.retried)):
        print("retried, %d times: %s" % (Api.retried.count(text), text))
    print("cmp.gets_retried = %d" % len(Api.retried))
    print("cmp.teardown_s = %s" % ("%.2f" % (torn - last) if torn else "n/a"))
    print("cmp.events_window_s = %.2f" % window)
    print("cmp.run_events = %d" % run_events)
    print("cmp.run_events_per_run = %.1f" % (run_events / max(1, started_runs)))
    print("cmp.run_events_per_s = %.1f" % (run_events / window))
    print("cmp.run_events_by_source = %s" % ",".join("%s:%d" % kv for kv in sorted(sources.items())))
    print("cmp.cvm_events = %d" % cvm_events)
    print("cmp.cvm_events_per_run = %.1f" % (cvm_events / max(1, started_runs)))
    print("cmp.cvm_events_per_s = %.1f" % (cvm_events / window))
    print("cmp.events_ratio = %.2f" % (run_events / cvm_events if cvm_events else float("nan")))


def free_port_pair():
    while True:
        a = socket.socket()
        a.bind(("127.0.0.1", 0))
        port = a.getsockname()[1]
        b = socket.socket()
        try:
            b.bind(("127.0.0.1", port + 1))
            a.close()
            b.close()
            return port
        except OSError:
            a.close()
            b.close()


def cmd_bare(agent_bin, workdir, rounds):
    seed, key = os.environ["SEED"], os.environ["KEY"] + ".key"
    manifest = os.path.join(workdir, "manifest.json")
    times, steps = [], {"algo": [], "data": [], "result": []}
    for i in range(rounds):
        port = free_port_pair()
        agent, attest = "tcp://127.0.0.1:%d" % port, "tcp://127.0.0.1:%d" % (port + 1)
        common = ["--agent", agent, "--attest-endpoint", attest, "--insecure-dev"]
        round_dir = os.path.join(workdir, "bare-%d" % i)
        os.makedirs(round_dir)
        log = os.path.join(round_dir, "cli.log")
        started = time.monotonic()
        child = subprocess.Popen([agent_bin, "--manifest", manifest, "--listen", agent, "--attest-listen", attest,
                                  "--attestation", "none", "--workdir", os.path.join(round_dir, "agent"),
                                  "--exit-when-done"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            line = child.stdout.readline()
            if b"listening on" not in line:
                die("the standalone agent did not start: %r (exit %s)" % (line, child.poll()))
            for name, args in (("algo", ["algo", os.path.join(seed, "linreg.py"), "--key", key]),
                               ("data", ["data", os.path.join(seed, "data1.csv"), "--key", key])):
                t = time.monotonic()
                ok, last = cli(args + common, log)
                steps[name].append(time.monotonic() - t)
                if not ok:
                    die("bare round %d: umbra %s: %s" % (i, name, last))
            # No event stream here: the agent's state is polled (every 20 ms) until results are ready
            deadline = time.monotonic() + 60
            while True:
                done = subprocess.run([os.environ["UMBRA"], "agent", "status", "--json"] + common,
                                      capture_output=True, text=True)
                state = json.loads(done.stdout).get("state") if done.returncode == 0 else None
                if state in ("ConsumingResults", "Complete"):
                    break
                if state in ("Failed", "Stopped") or time.monotonic() > deadline:
                    die("bare round %d: the agent is %s" % (i, state))
                time.sleep(0.02)
            t = time.monotonic()
            ok, last = cli(["result", "--key", key, "-o", os.path.join(round_dir, "result")] + common, log)
            steps["result"].append(time.monotonic() - t)
            if not ok:
                die("bare round %d: umbra result: %s" % (i, last))
            rc = child.wait(60)              # --exit-when-done: it exits once Complete
            finished = time.monotonic()
            if rc != 0:
                die("bare round %d: the agent exited %d" % (i, rc))
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
        times.append(finished - started)
    print("cmp.bare_rounds = %s" % ",".join("%.2f" % t for t in times))
    print("cmp.bare_e2e_median_s = %.2f" % median(times))
    print("cmp.bare_uploads_median_s = %.2f" % median([a + d for a, d in zip(steps["algo"], steps["data"])]))
    print("cmp.bare_result_median_s = %.2f" % median(steps["result"]))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        die("usage: see the header of this file")
    command, args = sys.argv[1], sys.argv[2:]
    if command == "rest" and len(args) == 4:
        cmd_rest(args[0], args[1], int(args[2]), int(args[3]))
    elif command == "runs" and len(args) == 4:
        cmd_runs(args[0], args[1], int(args[2]), args[3])
    elif command == "bare" and len(args) == 3:
        cmd_bare(args[0], args[1], int(args[2]))
    else:
        die("usage: see the header of this file")
