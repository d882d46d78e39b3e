#!/usr/bin/env python3
"""Create, flip or delete many SeiNodes on the local stack's API server, fast.

Talks to the API server directly (client certificate from the stack's PKI) with a pool of
threads, because one kubectl call per object is far too slow for 10,000 objects.

  populate.py create --namespace bench --count 10000 [--false-every 10] [--pad-kb 18]
  populate.py flip   --namespace bench --names n-1,n-7 --status False --reason TLSSecretNotFound [--timestamps f.json]
  populate.py delete --namespace bench --count 10000

Reads $SEINODE_STACK_DIR (default /tmp/seinode-stack). Prints one summary line.
"""
import argparse
import concurrent.futures
import datetime
import http.client
import json
import os
import ssl
import sys
import threading
import time

STACK = os.environ.get("SEINODE_STACK_DIR", "/tmp/seinode-stack")
LOCAL = threading.local()


def ports():
    out = {}
    with open(os.path.join(STACK, "ports.env")) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.strip().split("=", 1)
                out[k] = v
    return out


def conn():
    if not hasattr(LOCAL, "conn"):
        ctx = ssl.create_default_context(cafile=os.path.join(STACK, "pki/ca.crt"))
        ctx.load_cert_chain(os.path.join(STACK, "pki/admin.crt"), os.path.join(STACK, "pki/admin.key"))
        LOCAL.conn = http.client.HTTPSConnection("127.0.0.1", int(ports()["APISERVER_PORT"]), context=ctx, timeout=30)
    return LOCAL.conn


def call(method, path, body=None, content_type="application/json"):
    for attempt in range(5):
        try:
            c = conn()
            c.request(method, path, body=json.dumps(body) if body is not None else None,
                      headers={"Content-Type": content_type})
            r = c.getresponse()
            data = r.read()
            if r.status >= 500 or r.status == 429:
                time.sleep(0.2 * (attempt + 1))
                continue
            return r.status, data
        except (ConnectionError, http.client.HTTPException, OSError):
            if hasattr(LOCAL, "conn"):
                del LOCAL.conn
            time.sleep(0.2 * (attempt + 1))
    raise RuntimeError(f"{method} {path} failed 5 times")


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def base(ns):
    return f"/apis/sei.io/v1alpha1/namespaces/{ns}/seinodes"


def set_status(ns, name, status, reason):
    patch = {"status": {
        "phase": "Running",
        "sidecarTLS": {"secretName": f"{name}-tls", "requiredDNSNames": [
            f"{name}.{ns}.svc.cluster.local", f"{name}-0.{name}.{ns}.svc.cluster.local"]},
        "conditions": [{"type": "SidecarTLSSecretReady", "status": status, "reason": reason,
                        "message": "set by tests/bench/populate.py", "observedGeneration": 1,
                        "lastTransitionTime": now()}]}}
    code, data = call("PATCH", f"{base(ns)}/{name}/status", patch, "application/merge-patch+json")
    if code != 200:
        raise RuntimeError(f"status of {ns}/{name}: {code} {data[:200]!r}")


def create(ns, name, status, reason, pad_kb):
    obj = {"apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
           "metadata": {"name": name, "namespace": ns, "labels": {"bench": "true"}},
           "spec": {"chainId": "pacific-1", "image": "ghcr.io/sei-protocol/sei:v6.3.0",
                    "sidecar": {"image": "ghcr.io/sei-protocol/seictl:v1", "tls": {"secretName": f"{name}-tls"}},
                    "fullNode": {"snapshot": {"s3": {"targetHeight": 198740000}, "trustPeriod": "9999h0m0s"}}}}
    if pad_kb:
        # Realistic bulk: upstream SeiNodes carry large peer lists and overrides.
        obj["spec"]["overrides"] = {f"config.key.{i}": "v" * 90 for i in range(pad_kb * 10)}
    code, data = call("POST", base(ns), obj)
    if code not in (201, 409):
        raise RuntimeError(f"create {ns}/{name}: {code} {data[:200]!r}")
    set_status(ns, name, status, reason)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["create", "flip", "delete"])
    p.add_argument("--namespace", required=True)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--prefix", default="n")
    p.add_argument("--names", default="", help="comma-separated names, for flip")
    p.add_argument("--status", default="False")
    p.add_argument("--reason", default="TLSSecretNotFound")
    p.add_argument("--false-every", type=int, default=0, help="create: every Nth node False")
    p.add_argument("--pad-kb", type=int, default=0, help="create: add about this many KB to each spec")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--timestamps", help="flip: write {name: unix time the API server accepted the flip} here")
    a = p.parse_args()
    code, _ = call("GET", f"/api/v1/namespaces/{a.namespace}")
    if code == 404:
        call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": a.namespace}})
    start = time.time()
    names = [f"{a.prefix}-{i}" for i in range(a.count)] if a.count else [n for n in a.names.split(",") if n]
    with concurrent.futures.ThreadPoolExecutor(a.threads) as pool:
        if a.action == "create":
            def one(i_name):
                i, name = i_name
                broken = a.false_every and i % a.false_every == 0
                create(a.namespace, name, "False" if broken else "True",
                       "TLSSecretNotFound" if broken else "TLSSecretReady", a.pad_kb)
            list(pool.map(one, enumerate(names)))
        elif a.action == "flip":
            def flip(n):
                set_status(a.namespace, n, a.status, a.reason)
                return n, time.time()
            done = dict(pool.map(flip, names))
            if a.timestamps:
                with open(a.timestamps, "w") as f:
                    json.dump(done, f)
        else:
            list(pool.map(lambda n: call("DELETE", f"{base(a.namespace)}/{n}"), names))
    print(f"{a.action}: {len(names)} SeiNodes in {a.namespace} in {time.time() - start:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
