#!/usr/bin/env python3
"""The local stack as the scripts and the tests see it, written once: its ports, free ports,
Prometheus and Alertmanager queries, SeiNode fixtures and condition patches, and the
notifications its webhook received. Standard library only.

Python, not a Rust xtask: the bench (tests/bench/compare, populate.py) and the webhook
receiver are Python and poll Prometheus in tight loops, where a subprocess per query would
cost more than the latency being measured; the demo (bash) and the Rust tests are occasional
callers, for whom one `python3` start per call is cheap, or who keep one `serve` process
open. So the hot callers import this module and the rest run its command line:

    seistack.py free-port [N]            N free loopback ports, one per line
    seistack.py env                      the stack's ports and URLs as one JSON object
    seistack.py api prometheus|alertmanager|URL PATH [key=value ...]
                                         GET PATH; prints the response's `data` as JSON
    seistack.py post prometheus|alertmanager|URL PATH JSON
                                         POST the JSON body; prints the answer's JSON
    seistack.py query EXPR               Prometheus instant query: the result list as JSON
    seistack.py show EXPR                the same as `name{labels} value` lines (for people)
    seistack.py seinode NS NAME [--tls] [--status STATUS:REASON]
                                         a SeiNode manifest (JSON, which kubectl reads)
    seistack.py condition TYPE STATUS REASON [--message TEXT] [--object FILE|-]
                                         a status merge patch setting one condition, its
                                         lastTransitionTime now; with --object (e.g. `kubectl
                                         get -o json` on stdin), all of that object's
                                         conditions with this one set (its time moved only
                                         when its status changes), as a controller writes them
    seistack.py notifications [--alert NAME] [--namespace NS] [--status firing|resolved]
                                         the alerts the stack's webhook received, one JSON
                                         object a line, oldest first
    seistack.py pages [--alert NAME] [--namespace NS] [--status firing|resolved]
                                         the same as lines for people
    seistack.py serve                    any of the above, one per stdin line (a JSON list
                                         of arguments), each answered on one stdout line:
                                         {"ok": its output} or {"err": what it said}; for
                                         callers that query in loops (the Rust tests keep
                                         one per test thread: no start-up per query)

The stack is the one in $SEINODE_STACK_DIR (default /tmp/seinode-stack): `tests/stack/stack
up` writes its ports to ports.env there, and this module is the one reader of that file
outside the stack's own script.
"""

import datetime
import json
import os
import socket
import ssl
import sys
import urllib.parse
import urllib.request

DEFAULT_STACK_DIR = "/tmp/seinode-stack"
SEINODE_IMAGE = "ghcr.io/sei-protocol/sei:v6.3.0"
CHAIN_ID = "pacific-1"


def free_port():
    """A loopback port that was free a moment ago (the kernel's choice for port 0)."""
    return free_ports(1)[0]


def free_ports(n):
    """N different loopback ports that were free a moment ago (held open together while
    the kernel picks them, so that no two are the same)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def read_env(path):
    """KEY=VALUE lines of a file such as ports.env or tests/stack/versions.env (no quoting,
    no `export`; `#` lines are comments)."""
    out = {}
    with open(path) as f:
        for line in f.read().splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                out[key] = value
    return out


def now():
    """The current time as Kubernetes writes a condition's lastTransitionTime."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stack_dir():
    return os.environ.get("SEINODE_STACK_DIR", DEFAULT_STACK_DIR)


class Stack:
    """A running local stack, read from its ports.env."""

    def __init__(self, directory=None):
        self.dir = directory or stack_dir()
        try:
            self.ports = read_env(os.path.join(self.dir, "ports.env"))
        except OSError as e:
            raise SystemExit(f"seistack: no local stack in {self.dir} ({e.strerror}): "
                             "start one with `tests/stack/stack up` or run `tests/run`")

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
            # The collector's OTLP/HTTP metrics URL (--otlp-protocol http/protobuf).
            OTLP_HTTP_ENDPOINT=self.url("OTLP_HTTP_PORT") + "/v1/metrics",
            # Prometheus' own OTLP receiver (--otlp-receiver prometheus).
            PROMETHEUS_OTLP_ENDPOINT=self.url("PROMETHEUS_PORT") + "/api/v1/otlp/v1/metrics",
        )
        return out

    def pki(self, name):
        """A file of the stack's PKI: ca.crt, admin.crt, admin.key, ..."""
        return os.path.join(self.dir, "pki", name)

    def apiserver_tls(self):
        """An SSL context that trusts the stack's CA and presents its admin (system:masters)
        client certificate, for talking to the API server without kubectl."""
        ctx = ssl.create_default_context(cafile=self.pki("ca.crt"))
        ctx.load_cert_chain(self.pki("admin.crt"), self.pki("admin.key"))
        return ctx

    def webhook_log(self):
        """The JSON-lines file the stack's webhook receiver appends every notification to."""
        return os.path.join(self.dir, "webhook", "notifications.jsonl")

    def notifications(self, alert=None, namespace=None, status=None):
        return notifications(self.webhook_log(), alert, namespace, status)

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

    def post(self, path, body):
        """POST `body` as JSON to path; returns the answer's JSON, or None when it has none."""
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as r:
            text = r.read()
        return json.loads(text) if text.strip() else None

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


def sei_object(kind, ns, name, spec, labels=None):
    """An object of one of the sei.io/v1alpha1 kinds (SeiNode, SeiNetwork, SeiNodeTask,
    SeiNodeTaskWorkflow)."""
    metadata = {"name": name, "namespace": ns}
    if labels is not None:
        metadata["labels"] = dict(labels)
    return {"apiVersion": "sei.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}


def seinode(ns, name, tls=False, status=None, labels=None, full_node=None, validator=None):
    """A full-node SeiNode, valid under the stack's CRD; with `tls`, a sidecar TLS Secret
    named NAME-tls (the seed's #258-era field). `status` is (status, reason) for a
    SidecarTLSSecretReady condition, which goes through the status subresource.
    `full_node` is spec.fullNode (default {}); with `validator`, spec.validator instead."""
    spec = {"chainId": CHAIN_ID, "image": SEINODE_IMAGE}
    if validator is not None:
        spec["validator"] = validator
    else:
        spec["fullNode"] = {} if full_node is None else full_node
    if tls:
        spec["sidecar"] = {"tls": {"secretName": f"{name}-tls"}}
    obj = sei_object("SeiNode", ns, name, spec, labels)
    if status is not None:
        value, reason = status
        obj["status"] = {"conditions": [{
            "type": "SidecarTLSSecretReady", "status": value, "reason": reason,
            "message": f"{reason}", "lastTransitionTime": "2026-11-01T00:00:00Z"}]}
    return obj


def set_condition(conditions, ctype, status, reason, message=None):
    """Sets the condition of type `ctype` in the list `conditions` (in place, and returns
    it) as a controller does: status, reason and message; lastTransitionTime moves only when
    the status changes. A missing condition is appended, its time now."""
    message = reason if message is None else message
    for c in conditions:
        if c.get("type") == ctype:
            if c.get("status") != status or "lastTransitionTime" not in c:
                c["lastTransitionTime"] = now()
            c.update(status=status, reason=reason, message=message)
            return conditions
    conditions.append({"type": ctype, "status": status, "reason": reason, "message": message,
                       "lastTransitionTime": now()})
    return conditions


def notifications(log, alert=None, namespace=None, status=None):
    """The alerts of the webhook's notifications in `log`, oldest first, as Alertmanager
    sent them (status, labels, annotations, startsAt, ...); one per alert per notification.
    Filtered by alertname, namespace label and status where given. No log yet: none."""
    try:
        with open(log) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        if not line.strip():
            continue
        for a in json.loads(line).get("alerts", []):
            labels = a.get("labels", {})
            if ((alert is None or labels.get("alertname") == alert)
                    and (namespace is None or labels.get("namespace") == namespace)
                    and (status is None or a.get("status") == status)):
                out.append(a)
    return out


def show_pages(alerts):
    """Two lines an alert: `[STATUS] alertname severity=... ns/name reason=...` and its summary."""
    lines = []
    for a in alerts:
        labels, ann = a.get("labels", {}), a.get("annotations", {})
        lines.append(f'[{a["status"].upper()}] {labels.get("alertname")} severity={labels.get("severity")} '
                     f'{labels.get("namespace")}/{labels.get("name")} reason={ann.get("reason", "?")}')
        lines.append(f'    {ann.get("summary", "")}')
    return lines


def _options(args, names):
    """Splits `--name VALUE` options (of `names`) from the other arguments; None when an
    option has no value or is not known."""
    opts, rest, i = {}, [], 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            if a[2:] not in names or i + 1 >= len(args):
                return None, None
            opts[a[2:]] = args[i + 1]
            i += 2
        else:
            rest.append(a)
            i += 1
    return opts, rest


def _main(argv):
    usage = __doc__.split("\n\n")[2]
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    cmd, args = argv[0], argv[1:]
    if cmd == "free-port":
        for port in free_ports(int(args[0]) if args else 1):
            print(port)
    elif cmd == "env":
        print(json.dumps(Stack().env()))
    elif cmd in ("api", "post"):
        if len(args) < 2 or not (args[0] in ("prometheus", "alertmanager") or args[0].startswith("http")):
            print(f"seistack: {cmd} needs prometheus, alertmanager or a URL, and a PATH", file=sys.stderr)
            return 2
        if args[0].startswith("http"):
            api = Api(args[0])
        else:
            stack = Stack()
            api = stack.prometheus() if args[0] == "prometheus" else stack.alertmanager()
        if cmd == "post":
            if len(args) != 3:
                print("seistack: post needs a JSON body after the PATH", file=sys.stderr)
                return 2
            print(json.dumps(api.post(args[1], json.loads(args[2]))))
        else:
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
    elif cmd == "condition":
        opts, rest = _options(args, ("message", "object"))
        if rest is None or len(rest) != 3:
            print("seistack: condition needs TYPE STATUS REASON [--message TEXT] [--object FILE|-]",
                  file=sys.stderr)
            return 2
        conditions = []
        if "object" in opts:
            if opts["object"] == "-":
                obj = json.load(sys.stdin)
            else:
                with open(opts["object"]) as f:
                    obj = json.load(f)
            conditions = (obj.get("status") or {}).get("conditions") or []
        set_condition(conditions, *rest, message=opts.get("message"))
        print(json.dumps({"status": {"conditions": conditions}}))
    elif cmd in ("notifications", "pages"):
        opts, rest = _options(args, ("alert", "namespace", "status"))
        if rest is None or rest:
            print(f"seistack: {cmd} takes only [--alert NAME] [--namespace NS] [--status firing|resolved]",
                  file=sys.stderr)
            return 2
        alerts = Stack().notifications(opts.get("alert"), opts.get("namespace"), opts.get("status"))
        lines = [json.dumps(a) for a in alerts] if cmd == "notifications" else show_pages(alerts)
        if lines:
            print("\n".join(lines))
    else:
        print(f"seistack: unknown command {cmd!r}\n{usage}", file=sys.stderr)
        return 2
    return 0


def _serve():
    """`serve`: one command per stdin line, one JSON answer per stdout line, until EOF."""
    import contextlib
    import io
    import traceback
    reply_to = sys.stdout
    for line in sys.stdin:
        out, err = io.StringIO(), io.StringIO()
        try:
            args = json.loads(line)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = _main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
            if not isinstance(e.code, int):
                err.write(str(e.code))
        except Exception:  # one failed command is its answer, not the end of the server
            code = 1
            err.write(traceback.format_exc())
        answer = {"ok": out.getvalue()} if code == 0 else {"err": err.getvalue() or out.getvalue()}
        reply_to.write(json.dumps(answer) + "\n")
        reply_to.flush()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        sys.exit(_serve())
    sys.exit(_main(sys.argv[1:]))
