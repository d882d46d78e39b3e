#!/usr/bin/env python3
"""Create, flip or delete many SeiNodes on the local stack's API server, fast.

Talks to the API server directly (client certificate from the stack's PKI) with a pool of
threads, because one kubectl call per object is far too slow for 10,000 objects.

  populate.py create --namespace bench --count 10000 [--false-every 10] [--realistic-kb 20]
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


def peer(i, seed):
    """A Tendermint peer address as sei-k8s-controller resolves them: node id @ host:port."""
    node_id = f"{(seed * 2654435761 + i * 40503) & 0xffffffffffffffff:016x}" * 2 + f"{i:08x}"
    return f"{node_id[:40]}@sei-peer-{i}.p2p.pacific-1.seinetwork.io:26656"


def conditions(name, status, reason):
    """status.conditions as upstream's controller writes them: the TLS one among others."""
    t = now()
    tls_message = ("Secret %s-tls is a valid kubernetes.io/tls Secret covering the required SANs" % name
                   if status == "True" else
                   "set by tests/bench/populate.py: Secret %s-tls: %s" % (name, reason))
    return [
        {"type": "Ready", "status": "True", "reason": "Running", "observedGeneration": 1,
         "lastTransitionTime": "2026-11-01T00:00:00Z", "message": "node is running and in sync with the chain"},
        {"type": "SnapshotRestored", "status": "True", "reason": "RestoreComplete", "observedGeneration": 1,
         "lastTransitionTime": "2026-11-01T00:00:00Z",
         "message": "restored snapshot at height 198740000 from s3://sei-snapshots/pacific-1/198740000.tar.zst"},
        {"type": "SidecarTLSSecretReady", "status": status, "reason": reason, "observedGeneration": 1,
         "lastTransitionTime": t, "message": tls_message},
        {"type": "PeersResolved", "status": "True", "reason": "PeersResolved", "observedGeneration": 1,
         "lastTransitionTime": "2026-11-01T00:00:00Z", "message": "resolved 96 peers from static, label and ec2Tags sources"},
    ]


def full_status(ns, name, status, reason, kb):
    """A status as upstream's CRD allows: phase, resolved peers, a finished plan, sidecarTLS, conditions."""
    seed = sum(map(ord, name))
    n = max(0, kb) * 9 // 2  # with the spec below and metadata: about `kb` KB per object
    tasks = [{"id": f"{name}-task-{i}", "type": ["DownloadSnapshot", "ConfigureGenesis", "ConfigApply",
                                                   "MarkReady", "ConfigValidate"][i % 5],
              "status": "Complete", "retryCount": 0, "maxRetries": 3,
              "submittedAt": "2026-11-01T00:00:00Z",
              "params": {"height": 198740000 + i, "bucket": "sei-snapshots", "prefix": f"pacific-1/{name}/{i}"}}
             for i in range(max(1, n // 6))]
    return {
        "phase": "Running", "phaseTransitionTime": "2026-11-01T00:00:00Z",
        "currentImage": "ghcr.io/sei-protocol/sei:v6.3.0",
        "externalAddress": f"{name}.{ns}.p2p.pacific-1.seinetwork.io:26656",
        "resolvedPeers": [peer(i, seed) for i in range(n)],
        "plan": {"id": f"{name}-plan-1", "phase": "Complete", "tasks": tasks},
        "sidecarTLS": {"secretName": f"{name}-tls", "requiredDNSNames": [
            f"{name}.{ns}.svc.cluster.local", f"{name}-0.{name}.{ns}.svc.cluster.local"]},
        "conditions": conditions(name, status, reason),
    }


def full_spec(ns, name, kb):
    """A spec as upstream's CRD allows: full node with snapshot, peers, overrides, sidecar with TLS."""
    seed = sum(map(ord, name)) + 7
    n = max(0, kb) * 5 // 2
    return {
        "chainId": "pacific-1", "image": "ghcr.io/sei-protocol/sei:v6.3.0",
        "entrypoint": {"command": ["seid"], "args": ["start", "--home", "/sei", "--log_format", "json"]},
        "podLabels": {"app.kubernetes.io/part-of": "sei", "sei.io/chain": "pacific-1", "team": "infra"},
        "sidecar": {"image": "ghcr.io/sei-protocol/seictl:v1", "port": 7777,
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                    "tls": {"secretName": f"{name}-tls"}},
        "fullNode": {"snapshot": {"s3": {"targetHeight": 198740000}, "trustPeriod": "9999h0m0s",
                                  "backfillBlocks": 1000, "bootstrapImage": "ghcr.io/sei-protocol/sei:v6.3.0"},
                     "snapshotGeneration": {"tendermint": {"keepRecent": 5, "publish": {}}}},
        "peers": [{"static": {"addresses": [peer(i, seed) for i in range(n)]}},
                  {"label": {"namespace": ns, "selector": {"sei.io/chain": "pacific-1", "sei.io/role": "sentry"}}},
                  {"ec2Tags": {"region": "us-east-2", "tags": {"sei.io/chain": "pacific-1", "sei.io/role": "rpc"}}}],
        "overrides": {f"config.{sect}.{key}": val for sect, key, val in [
            ("p2p", "max_num_inbound_peers", "80"), ("p2p", "max_num_outbound_peers", "40"),
            ("p2p", "send_rate", "20480000"), ("p2p", "recv_rate", "20480000"),
            ("mempool", "size", "5000"), ("mempool", "cache_size", "10000"),
            ("consensus", "timeout_commit", "400ms"), ("rpc", "max_open_connections", "900"),
            ("statesync", "enable", "false"), ("db", "backend", "pebbledb")][: 2 + n // 2]},
    }


def set_status(ns, name, status, reason, kb=0):
    if kb:
        patch = {"status": full_status(ns, name, status, reason, kb)}
    else:
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


def flip_condition(ns, name, status, reason):
    """Changes only the SidecarTLSSecretReady condition, keeping the rest of the status.

    A JSON patch that tests the condition's type first, so it never rewrites another condition.
    Falls back to a merge patch for objects made without --realistic-kb."""
    idx = 2
    ops = [{"op": "test", "path": f"/status/conditions/{idx}/type", "value": "SidecarTLSSecretReady"},
           {"op": "replace", "path": f"/status/conditions/{idx}/status", "value": status},
           {"op": "replace", "path": f"/status/conditions/{idx}/reason", "value": reason},
           {"op": "replace", "path": f"/status/conditions/{idx}/lastTransitionTime", "value": now()},
           {"op": "replace", "path": f"/status/conditions/{idx}/message",
            "value": f"set by tests/bench/populate.py: {status} {reason}"}]
    code, data = call("PATCH", f"{base(ns)}/{name}/status", ops, "application/json-patch+json")
    if code == 200:
        return
    if code in (422, 409, 400):
        set_status(ns, name, status, reason)
        return
    raise RuntimeError(f"flip of {ns}/{name}: {code} {data[:200]!r}")


def create(ns, name, status, reason, realistic_kb):
    if realistic_kb:
        spec = full_spec(ns, name, realistic_kb)
    else:
        spec = {"chainId": "pacific-1", "image": "ghcr.io/sei-protocol/sei:v6.3.0",
                "sidecar": {"image": "ghcr.io/sei-protocol/seictl:v1", "tls": {"secretName": f"{name}-tls"}},
                "fullNode": {"snapshot": {"s3": {"targetHeight": 198740000}, "trustPeriod": "9999h0m0s"}}}
    obj = {"apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
           "metadata": {"name": name, "namespace": ns, "labels": {"bench": "true", "sei.io/chain": "pacific-1"}},
           "spec": spec}
    code, data = call("POST", base(ns), obj)
    if code not in (201, 409):
        raise RuntimeError(f"create {ns}/{name}: {code} {data[:200]!r}")
    set_status(ns, name, status, reason, realistic_kb)


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
    p.add_argument("--realistic-kb", type=int, default=0,
                   help="create: full spec and status as the upstream CRD allows, about this many KB per object "
                        "(as the API server returns it); 0: a minimal object")
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
                       "TLSSecretNotFound" if broken else "TLSSecretReady", a.realistic_kb)
            list(pool.map(one, enumerate(names)))
        elif a.action == "flip":
            def flip(n):
                flip_condition(a.namespace, n, a.status, a.reason)
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
