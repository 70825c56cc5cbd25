#!/usr/bin/env python3
"""compose.py - deploy/docker-compose.yml and deploy/Containerfile, checked without a Docker engine.

- `docker-compose config` (Debian's docker-compose) accepts the compose file;
- its shape: a named volume per service, an init container that every service waits for, a
  health check on every service, only the gateway and the OCSP responder published, no secret
  in the image;
- the Containerfile's final stage installs runtime libraries that cover every shared library
  the built binaries load (the packages' dependency closure, from apt-cache);
- the services start as processes exactly as the compose file wires them (the same command,
  the same UMBRA_* environment, the same ports; service names resolve to 127.0.0.1, each named
  volume is a directory), init first; every health check passes; `umbra demo --url` runs the
  end-to-end scenario through the gateway; every process stops cleanly on SIGTERM.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("TEST_BUILD_DIR", os.path.join(ROOT, "build"))
COMPOSE = os.path.join(ROOT, "deploy", "docker-compose.yml")
CONTAINERFILE = os.path.join(ROOT, "deploy", "Containerfile")
ENV_EXAMPLE = os.path.join(ROOT, "deploy", "umbra.env.example")
# Where each program of the image is in the build tree
PROGRAMS = {
    "umbra": "cli/umbra", "umbra-auth": "services/auth/umbra-auth",
    "umbra-certs": "services/certs/umbra-certs", "umbra-billing": "services/billing/umbra-billing",
    "umbra-backends": "services/backends/umbra-backends",
    "umbra-computations": "services/computations/umbra-computations",
    "umbra-gateway": "services/gateway/umbra-gateway", "umbra-agent": "guest/agent/umbra-agent",
    "umbra-bridge": "guest/bridge/umbra-bridge",
}
SERVICES = ["auth", "certs", "billing", "backends", "computations", "gateway"]
checks = 0


def ok(what):
    global checks
    checks += 1
    print("ok %d - %s" % (checks, what), flush=True)


def fail(what):
    print("FAIL: " + what, file=sys.stderr, flush=True)
    sys.exit(1)


def resolved_config(env_file):
    """docker-compose config, as Debian's docker-compose prints it, parsed"""
    run = subprocess.run(["docker-compose", "-f", COMPOSE, "--env-file", env_file, "config"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        fail("docker-compose config refused the file: " + run.stderr)
    return yaml.safe_load(run.stdout)


def check_shape(config):
    services = config["services"]
    if set(services) != set(SERVICES) | {"init"}:
        fail("services: %s" % sorted(services))
    volumes = set(config.get("volumes", {}))
    for name in SERVICES:
        service = services[name]
        mounts = service.get("volumes", [])
        own = [m for m in mounts if (m["source"] if isinstance(m, dict) else m.split(":")[0]) == name]
        if len(mounts) != 1 or not own or name not in volumes:
            fail("%s: expected only its own named volume, got %s" % (name, mounts))
        if not service.get("healthcheck", {}).get("test"):
            fail("%s has no health check" % name)
        if service.get("depends_on", {}).get("init", {}).get("condition") != \
                "service_completed_successfully":
            fail("%s does not wait for init" % name)
        published = service.get("ports", [])
        if published and name not in ("gateway", "certs"):
            fail("%s publishes %s" % (name, published))
        if name in ("gateway", "certs") and len(published) != 1:
            fail("%s: expected one published port, got %s" % (name, published))
        if service.get("environment", {}).get("UMBRA_MESH_MAKE_KEYS") != "false":
            fail("%s would make key pairs of its own" % name)
        if "ALL" not in service.get("cap_drop", []) or not service.get("read_only"):
            fail("%s keeps capabilities or a writable image" % name)
    init = services["init"]
    if init["command"][:3] != ["umbra", "init", "--split"] or len(init["volumes"]) != len(SERVICES):
        fail("init: %s" % init)
    text = open(CONTAINERFILE).read()
    if re.search(r"(COPY|ADD)[^\n]*(\.key|keys|/ca\b)", text) or "USER umbra" not in text:
        fail("the Containerfile copies keys in, or runs as root")
    if len(re.findall(r"^FROM debian:12", text, re.M)) != 2:
        fail("the Containerfile is not a two-stage build on Debian 12")
    ok("docker-compose config accepts it: a named volume each, init first, health checks, only "
       "the gateway and OCSP published, no capabilities, no key in the image")


def check_runtime_libraries():
    """The final stage's packages (and what they depend on) hold every library the binaries load"""
    text = open(CONTAINERFILE).read()
    block = text.split("umbra-runtime-packages-begin")[1].split("umbra-runtime-packages-end")[0]
    listed = re.findall(r"\b(lib[a-z0-9.+-]+|ca-certificates)\b", block.split("install")[-1])
    closure = set(listed)
    depends = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends",
                              "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                              "--no-enhances"] + listed, capture_output=True, text=True).stdout
    closure |= {line.strip() for line in depends.splitlines() if line and not line.startswith(" ")}
    closure |= set(re.findall(r"Depends: <?([a-z0-9.+-]+)", depends))
    needed = {}
    for program, path in PROGRAMS.items():
        ldd = subprocess.run(["ldd", os.path.join(BUILD, path)], capture_output=True, text=True)
        for library in re.findall(r"=> (/\S+)", ldd.stdout):
            real = os.path.realpath(library)
            owner = None
            for candidate in (library, real, "/usr" + library, library.replace("/usr", "", 1)):
                found = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
                if found.returncode == 0:
                    owner = found.stdout.split(":")[0]
                    break
            if not owner:
                fail("no package owns %s (%s)" % (library, program))
            needed.setdefault(owner, program)
    missing = sorted(p for p in needed if p not in closure)
    if missing:
        fail("the image lacks %s (needed by %s)" % (missing, [needed[p] for p in missing]))
    ok("the image's %d runtime packages cover the %d packages whose libraries the %d programs "
       "load" % (len(listed), len(needed), len(PROGRAMS)))


def published(service, target):
    """The host port a compose service publishes target on"""
    for port in service.get("ports", []):
        if isinstance(port, dict) and int(port["target"]) == target:
            return str(port["published"])
        if isinstance(port, str) and port.endswith(":%d" % target):
            return port.split(":")[-2]
    fail("no published port for %d in %s" % (target, service.get("ports")))


def translate(value):
    """A compose value as this machine runs it: service names are 127.0.0.1"""
    return re.sub(r"tcp://(%s):" % "|".join(SERVICES), "tcp://127.0.0.1:", str(value))


def command(words):
    program = words[0]
    if program not in PROGRAMS:
        fail("the image has no %s" % program)
    return [os.path.join(BUILD, PROGRAMS[program])] + [str(w) for w in words[1:]]


class Platform:
    def __init__(self, config, work):
        self.config = config
        self.work = work
        self.processes = {}

    def volume(self, name):
        path = os.path.join(self.work, "volumes", name)
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path

    def environment(self, name, state):
        service = self.config["services"][name]
        env = {k: v for k, v in os.environ.items() if not k.startswith("UMBRA_")}
        # The image's own environment, then the service's
        env.update({"UMBRA_STATE_DIR": state, "UMBRA_LOG_FORMAT": "json"})
        for key, value in service.get("environment", {}).items():
            env[key] = translate(value)
        # The image's paths are this build's
        for key, value in list(env.items()):
            if key.startswith("UMBRA_") and value.startswith("/usr/bin/"):
                env[key] = command([os.path.basename(value)])[0]
            if key == "UMBRA_BACKENDS_IMAGE_DIR":
                env[key] = os.path.join(state, "eos")
        return env

    def init(self):
        service = self.config["services"]["init"]
        root = os.path.join(self.work, "init-root")
        os.makedirs(root)
        # Each volume at its mount point under the init container's root
        for mount in service["volumes"]:
            source = mount["source"] if isinstance(mount, dict) else mount.split(":")[0]
            target = mount["target"] if isinstance(mount, dict) else mount.split(":")[1]
            os.symlink(self.volume(source), os.path.join(root, os.path.basename(target)))
        words = [w.replace("/var/lib/umbra-init", root) for w in service["command"]]
        env = self.environment("init", os.path.join(self.work, "init-state"))
        run = subprocess.run(command(words), env=env, capture_output=True, text=True)
        if run.returncode != 0:
            fail("init: %s" % run.stderr)
        # six mesh identities, the CA, and its first issuing CA
        if run.stdout.count("made") != 8 or "(made, issues;" not in run.stdout:
            fail("init made %s" % run.stdout)
        again = subprocess.run(command(words), env=env, capture_output=True, text=True)
        if again.returncode != 0 or "made" in again.stdout:
            fail("init again: %s %s" % (again.stdout, again.stderr))
        for name in SERVICES:
            keys = os.path.join(self.volume(name), "keys")
            secrets = sorted(f for f in os.listdir(keys) if f.endswith(".key"))
            if secrets != [name + ".key"]:
                fail("%s's volume holds the secret keys %s" % (name, secrets))
        ok("init: every identity's key pair and the CA, each volume holding only its own secret "
           "key; run again, it keeps them")

    def start(self, name):
        service = self.config["services"][name]
        state = self.volume(name)
        log = open(os.path.join(self.work, name + ".log"), "w")
        self.processes[name] = subprocess.Popen(command(service["command"]),
                                                env=self.environment(name, state),
                                                stdout=log, stderr=subprocess.STDOUT)

    def healthy(self, name, deadline):
        service = self.config["services"][name]
        test = service["healthcheck"]["test"]
        words = test[1:] if test[0] in ("CMD", "CMD-SHELL") else test
        while True:
            if self.processes[name].poll() is not None:
                fail("%s exited %d: %s" % (name, self.processes[name].returncode,
                                           open(os.path.join(self.work, name + ".log")).read()[-2000:]))
            run = subprocess.run(command([translate(w) for w in words]),
                                 env=self.environment(name, self.volume(name)),
                                 capture_output=True, text=True)
            if run.returncode == 0:
                return run.stdout
            if time.time() > deadline:
                fail("%s is not healthy: %s %s" % (name, run.stdout, run.stderr))
            time.sleep(0.5)

    def stop(self):
        codes = {}
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                codes[name] = process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = "killed"
        return codes


def http(method, url, token=None, body=None):
    """curl: (status, parsed JSON body or text)"""
    words = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, url]
    if token:
        words += ["-H", "Authorization: Bearer " + token]
    if body is not None:
        words += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    out = subprocess.run(words, capture_output=True, text=True).stdout
    text, _, status = out.rpartition("\n")
    try:
        return int(status), json.loads(text)
    except ValueError:
        return int(status or 0), text


def metric(text, family, *labels):
    """The sum of family's samples whose labels hold every one of labels"""
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith(family + "{") and all(label in line for label in labels):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else None


def check_metrics(url, work, password):
    """/metrics covers every service: requests, errors, latencies, runs and CVMs by state, OCSP
    responses, billing refusals"""
    # A refusal (no credit: 402), an error (a workspace nobody has: 404), an OCSP answer
    user = {"username": "metrics-user", "password": "metrics-password-1"}
    http("POST", url + "/users", body=user)
    status, answer = http("POST", url + "/users/tokens", body=user)
    token = answer["access_token"]
    http("POST", url + "/workspaces", token, {"name": "metrics-lab"})
    http("POST", url + "/workspaces/metrics-lab/backends", token,
         {"name": "t", "uri": "test:///default"})
    status, answer = http("POST", url + "/workspaces/metrics-lab/cvms", token,
                          {"tee": "none", "vcpus": 1, "memory_mb": 128})
    if status != 402:
        fail("a CVM without credit: %d %s" % (status, answer))
    admin = http("POST", url + "/users/tokens", body={"username": "admin",
                                                      "password": password})[1]["access_token"]
    http("POST", url + "/workspaces/metrics-lab/billing/credits", admin,
         {"amount": 1000000, "reference": "metrics"})
    status, answer = http("POST", url + "/workspaces/metrics-lab/cvms", token,
                          {"tee": "none", "vcpus": 1, "memory_mb": 128})
    if status != 201:
        fail("a CVM with credit: %d %s" % (status, answer))
    status, _ = http("GET", url + "/workspaces/nowhere/computations", token)
    if status != 404:
        fail("an unknown workspace: %d" % status)
    status, chain = http("GET", url.replace("8080", "8081") + "/ca.pem")
    ca = os.path.join(work, "ca.pem")
    open(ca, "w").write(chain if isinstance(chain, str) else "")
    subprocess.run(["openssl", "ocsp", "-issuer", ca, "-serial", "0x1234", "-url",
                    url.replace("8080", "8081") + "/ocsp", "-noverify"], capture_output=True)
    deadline = time.time() + 30
    while True:
        text = http("GET", url + "/metrics")[1]
        missing = []
        for service in ("auth", "certs", "billing", "backends", "computations"):
            if not metric(text, "umbra_mesh_requests_total", 'service="%s"' % service):
                missing.append("requests of " + service)
            if not metric(text, "umbra_mesh_request_seconds_count", 'service="%s"' % service):
                missing.append("latencies of " + service)
        if not metric(text, "umbra_mesh_requests_total", 'status="404"'):
            missing.append("errors")
        if not metric(text, "umbra_http_requests_total", 'service="gateway"'):
            missing.append("the gateway's requests")
        if not metric(text, "umbra_runs", 'state="Completed"'):
            missing.append("runs by state")
        if not metric(text, "umbra_cvms", 'state="Running"'):
            missing.append("CVMs by state")
        if not metric(text, "umbra_ocsp_responses_total", 'service="certs"'):
            missing.append("OCSP responses")
        if not metric(text, "umbra_billing_refusals_total", 'limit="balance"'):
            missing.append("billing refusals")
        if not missing:
            break
        if time.time() > deadline:
            fail("/metrics lacks %s" % ", ".join(missing))
        time.sleep(1)
    ok("/metrics covers every service: requests, errors, latencies, runs and CVMs by state, "
       "OCSP responses, billing refusals")


def main():
    if shutil.which("docker-compose") is None:
        fail("docker-compose is not installed (scripts/install-deps installs it)")
    work = tempfile.mkdtemp(prefix="umbra-compose.")
    platform = None
    try:
        env_file = os.path.join(work, "umbra.env")
        password = "compose-admin-password-1"
        text = open(ENV_EXAMPLE).read()
        text = re.sub(r"^UMBRA_ADMIN_PASSWORD=.*$", "UMBRA_ADMIN_PASSWORD=" + password, text,
                      flags=re.M)
        open(env_file, "w").write(text)
        config = resolved_config(env_file)
        check_shape(config)
        check_runtime_libraries()

        platform = Platform(config, work)
        platform.init()
        deadline = time.time() + 60
        for name in SERVICES:
            platform.start(name)
        for name in SERVICES:
            platform.healthy(name, deadline)
        ok("the six services up as the compose file wires them; every health check passes")

        url = "http://127.0.0.1:%s" % published(config["services"]["gateway"], 8080)
        status = subprocess.run(command(["umbra", "status", "--url", url]), capture_output=True,
                                text=True)
        if status.returncode != 0 or status.stdout.count(" up ") != 6:
            fail("umbra status: %s %s" % (status.stdout, status.stderr))
        ok("umbra status: every service up through the gateway")

        demo_env = {k: v for k, v in os.environ.items() if not k.startswith("UMBRA_")}
        demo_env["UMBRA_ADMIN_PASSWORD"] = password
        demo = subprocess.run(command(["umbra", "demo", "--url", url, "--admin-user", "admin"]),
                              env=demo_env, capture_output=True, text=True, timeout=300)
        if demo.returncode != 0 or "the run cost" not in demo.stdout:
            fail("umbra demo through the composed platform: %s %s" % (demo.stdout[-3000:],
                                                                      demo.stderr[-2000:]))
        ok("umbra demo through the composed platform: %s" %
           [line for line in demo.stdout.splitlines() if line.startswith("result")][0][:100])

        ocsp = published(config["services"]["certs"], 8081)
        crl = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              "http://127.0.0.1:%s/crl" % ocsp], capture_output=True, text=True)
        if crl.stdout != "200":
            fail("the published OCSP/CRL responder answers %s" % crl.stdout)
        ok("the published OCSP/CRL responder answers (GET /crl 200)")

        check_metrics(url, work, password)
        for name in SERVICES:
            lines = open(os.path.join(work, name + ".log")).read().splitlines()
            records = [json.loads(line) for line in lines if line.strip()]
            if not records or not all("level" in r and "msg" in r and "ts" in r for r in records):
                fail("%s does not log JSON lines: %s" % (name, lines[:3]))
        ok("every service logs JSON lines (UMBRA_LOG_FORMAT=json, as the compose file sets)")

        codes = platform.stop()
        if any(code != 0 for code in codes.values()):
            fail("SIGTERM: %s" % codes)
        platform = None
        ok("every service stops cleanly on SIGTERM")
        print("compose: all %d checks passed" % checks)
    finally:
        if platform:
            platform.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
