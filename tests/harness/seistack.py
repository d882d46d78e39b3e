#!/usr/bin/env python3
"""The local stack as the scripts and the tests see it, written once: its ports, free ports,
Prometheus and Alertmanager queries, and SeiNode fixtures. Standard library only.

Python, not a Rust xtask: the bench (tests/bench/compare, populate.py) and the webhook
receiver are Python and poll Prometheus in tight loops, where a subprocess per query would
cost more than the latency being measured; the demo (bash) and the Rust tests are occasional
callers, for whom one `python3` start per call is cheap. So the hot callers import this
module and the rest run its command line:

    seistack.py free-port [N]            N free loopback ports, one per line
    seistack.py env                      the stack's ports and URLs as one JSON object
    seistack.py api prometheus|alertmanager PATH [key=value ...]
                                         GET PATH; prints the response's `data` as JSON
    seistack.py query EXPR               Prometheus instant query: the result list as JSON
    seistack.py show EXPR                the same as `name{labels} value` lines (for people)
    seistack.py seinode NS NAME [--tls] [--status STATUS:REASON]
                                         a SeiNode manifest (JSON, which kubectl reads)

The stack is the one in $SEINODE_STACK_DIR (default /tmp/seinode-stack): `tests/stack/stack
up` writes its ports to ports.env there, and this module is the one reader of that file
outside the stack's own script.
"""

import json
import os
import socket
import sys
import urllib.parse
import urllib.request

DEFAULT_STACK_DIR = "/tmp/seinode-stack"
SEINODE_IMAGE = "ghcr.io/sei-protocol/sei:v6.3.0"
CHAIN_ID = "pacific-1"


def free_port():
    """A loopback port that was free a moment ago (the kernel's choice for port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_dir():
    return os.environ.get("SEINODE_STACK_DIR", DEFAULT_STACK_DIR)


class Stack:
    """A running local stack, read from its ports.env."""

    def __init__(self, directory=None):
        self.dir = directory or stack_dir()
        path = os.path.join(self.dir, "ports.env")
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise SystemExit(f"seistack: no local stack in {self.dir} ({e.strerror}): "
                             "start one with `tests/stack/stack up` or run `tests/run`")
        self.ports = {}
        for line in lines:
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                self.ports[key] = value

    def port(self, name):
        try:
            return int(self.ports[name])
        except KeyError:
            raise SystemExit(f"seistack: {name} is missing from {self.dir}/ports.env: "
                             "the stack is older than this checkout; run `tests/stack/stack up` again")

    def url(self, name):
        return f"http://127.0.0.1:{self.port(name)}"

    def env(self):
        """Ports, URLs and paths, as the Rust tests and the scripts read them."""
        out = dict(self.ports)
        out.update(
            STACK_DIR=self.dir,
            KUBECONFIG=os.path.join(self.dir, "kubeconfig"),
            PROMETHEUS_URL=self.url("PROMETHEUS_PORT"),
            ALERTMANAGER_URL=self.url("ALERTMANAGER_PORT"),
            OTLP_ENDPOINT=self.url("OTLP_GRPC_PORT"),
        )
        return out

    def prometheus(self):
        return Api(self.url("PROMETHEUS_PORT"))

    def alertmanager(self):
        return Api(self.url("ALERTMANAGER_PORT"))


class Api:
    """The JSON API of Prometheus (/api/v1/...) or Alertmanager (/api/v2/...)."""

    def __init__(self, url, timeout=10):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def get(self, path, params=None):
        """GET path; returns `data` of a Prometheus envelope, or the body as it is (Alertmanager)."""
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=self.timeout) as r:
            body = json.load(r)
        if isinstance(body, dict) and "status" in body and "data" in body:
            if body["status"] != "success":
                raise RuntimeError(f"GET {path} {params}: {body}")
            return body["data"]
        return body

    def query(self, expr):
        """An instant query's result list."""
        return self.get("/api/v1/query", {"query": expr})["result"]

    def scalar(self, expr):
        """The first value of an instant query, 0.0 when it returns nothing."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else 0.0


def show(result):
    """`name{labels} value` lines, without job and instance."""
    lines = []
    for r in result:
        m = dict(r["metric"])
        name = m.pop("__name__", "")
        labels = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(m.items()) if k not in ("job", "instance"))
        lines.append(f"{name}{{{labels}}} {r['value'][1]}")
    return lines


def seinode(ns, name, tls=False, status=None):
    """A full-node SeiNode, valid under the stack's CRD; with `tls`, a sidecar TLS Secret
    named NAME-tls (the seed's #258-era field). `status` is (status, reason) for a
    SidecarTLSSecretReady condition, which goes through the status subresource."""
    spec = {"chainId": CHAIN_ID, "image": SEINODE_IMAGE, "fullNode": {}}
    if tls:
        spec["sidecar"] = {"tls": {"secretName": f"{name}-tls"}}
    obj = {
        "apiVersion": "sei.io/v1alpha1",
        "kind": "SeiNode",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }
    if status is not None:
        value, reason = status
        obj["status"] = {"conditions": [{
            "type": "SidecarTLSSecretReady", "status": value, "reason": reason,
            "message": f"{reason}", "lastTransitionTime": "2026-11-01T00:00:00Z"}]}
    return obj


def _main(argv):
    usage = __doc__.split("\n\n")[2]
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    cmd, args = argv[0], argv[1:]
    if cmd == "free-port":
        # Held open together, so that N ports are N different ports.
        socks = []
        for _ in range(int(args[0]) if args else 1):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        for s in socks:
            print(s.getsockname()[1])
            s.close()
    elif cmd == "env":
        print(json.dumps(Stack().env()))
    elif cmd == "api":
        if len(args) < 2 or args[0] not in ("prometheus", "alertmanager"):
            print("seistack: api needs prometheus|alertmanager and a PATH", file=sys.stderr)
            return 2
        stack = Stack()
        api = stack.prometheus() if args[0] == "prometheus" else stack.alertmanager()
        params = [tuple(a.split("=", 1)) for a in args[2:]]
        print(json.dumps(api.get(args[1], params)))
    elif cmd in ("query", "show"):
        if len(args) != 1:
            print(f"seistack: {cmd} needs one PromQL expression", file=sys.stderr)
            return 2
        result = Stack().prometheus().query(args[0])
        print(json.dumps(result) if cmd == "query" else "\n".join(show(result)))
    elif cmd == "seinode":
        tls = "--tls" in args
        rest = [a for a in args if a != "--tls"]
        status = None
        if "--status" in rest:
            at = rest.index("--status")
            status = tuple(rest[at + 1].split(":", 1))
            del rest[at:at + 2]
        if len(rest) != 2:
            print("seistack: seinode needs NS NAME [--tls] [--status STATUS:REASON]", file=sys.stderr)
            return 2
        print(json.dumps(seinode(rest[0], rest[1], tls=tls, status=status)))
    else:
        print(f"seistack: unknown command {cmd!r}\n{usage}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
