#!/usr/bin/env python3
"""Create, flip or delete many SeiNodes on the local stack's API server, fast.

Talks to the API server directly (client certificate from the stack's PKI) with a pool of
threads, because one kubectl call per object is far too slow for 10,000 objects.

  populate.py create --namespace bench --count 10000 [--false-every 10] [--realistic-kb 20]
  populate.py flip   --namespace bench --names n-1,n-7 --status False --reason TLSSecretNotFound [--timestamps f.json]
  populate.py delete --namespace bench --count 10000
  populate.py conditions --namespace cond-1000 --count 1000   # all four kinds, every condition

`conditions` creates the fleet of tests/bench/compare --scenario conditions: COUNT SeiNodes
valid under the current (2d670ad) CRDs with the conditions upstream's controller sets (see
conditions_fleet), plus COUNT/50 SeiNetworks, COUNT/10 SeiNodeTasks and COUNT/20
SeiNodeTaskWorkflows (at least one of each: 10 SeiNodes come with one of each kind); each object is created, then its status written through the status
subresource, as the controller does.

Reads the stack in $SEINODE_STACK_DIR (default /tmp/seinode-stack) through
tests/harness/seistack.py. Prints one summary line.
"""
import sys
sys.dont_write_bytecode = True  # seistack is imported; keep the tree clean
import argparse
import concurrent.futures
import http.client
import json
import os
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import seistack  # noqa: E402

LOCAL = threading.local()
# Fields every benchmark object carries, beside what seistack's base objects have.
LABELS = {"bench": "true", "sei.io/chain": seistack.CHAIN_ID}
IMAGE = seistack.SEINODE_IMAGE
SIDECAR_IMAGE = "ghcr.io/sei-protocol/seictl:v1"
_STACK = []


def stack():
    """The stack in $SEINODE_STACK_DIR, read once (at the first call, after `stack up`)."""
    if not _STACK:
        _STACK.append(seistack.Stack())
    return _STACK[0]


def conn():
    if not hasattr(LOCAL, "conn"):
        s = stack()
        LOCAL.conn = http.client.HTTPSConnection("127.0.0.1", s.port("APISERVER_PORT"),
                                                 context=s.apiserver_tls(), timeout=30)
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


now = seistack.now


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
    spec = seistack.seinode(ns, name, tls=True, full_node={
        "snapshot": {"s3": {"targetHeight": 198740000}, "trustPeriod": "9999h0m0s",
                     "backfillBlocks": 1000, "bootstrapImage": IMAGE},
        "snapshotGeneration": {"tendermint": {"keepRecent": 5, "publish": {}}}})["spec"]
    spec["sidecar"].update(
        image=SIDECAR_IMAGE, port=7777,
        resources={"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}})
    spec.update({
        "entrypoint": {"command": ["seid"], "args": ["start", "--home", "/sei", "--log_format", "json"]},
        "podLabels": {"app.kubernetes.io/part-of": "sei", "sei.io/chain": "pacific-1", "team": "infra"},
        "peers": [{"static": {"addresses": [peer(i, seed) for i in range(n)]}},
                  {"label": {"namespace": ns, "selector": {"sei.io/chain": "pacific-1", "sei.io/role": "sentry"}}},
                  {"ec2Tags": {"region": "us-east-2", "tags": {"sei.io/chain": "pacific-1", "sei.io/role": "rpc"}}}],
        "overrides": {f"config.{sect}.{key}": val for sect, key, val in [
            ("p2p", "max_num_inbound_peers", "80"), ("p2p", "max_num_outbound_peers", "40"),
            ("p2p", "send_rate", "20480000"), ("p2p", "recv_rate", "20480000"),
            ("mempool", "size", "5000"), ("mempool", "cache_size", "10000"),
            ("consensus", "timeout_commit", "400ms"), ("rpc", "max_open_connections", "900"),
            ("statesync", "enable", "false"), ("db", "backend", "pebbledb")][: 2 + n // 2]},
    })
    return spec


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


def seinode_object(ns, name, realistic_kb):
    """The SeiNode `create` makes: seistack's with TLS, and a snapshot and the sidecar's image
    (minimal), or the full spec of full_spec (--realistic-kb)."""
    if realistic_kb:
        return seistack.sei_object("SeiNode", ns, name, full_spec(ns, name, realistic_kb), LABELS)
    obj = seistack.seinode(ns, name, tls=True, labels=LABELS, full_node={
        "snapshot": {"s3": {"targetHeight": 198740000}, "trustPeriod": "9999h0m0s"}})
    obj["spec"]["sidecar"]["image"] = SIDECAR_IMAGE
    return obj


def create(ns, name, status, reason, realistic_kb):
    code, data = call("POST", base(ns), seinode_object(ns, name, realistic_kb))
    if code not in (201, 409):
        raise RuntimeError(f"create {ns}/{name}: {code} {data[:200]!r}")
    set_status(ns, name, status, reason, realistic_kb)


# ---------------------------------------------------------------- all four kinds (--scenario conditions)

PLURALS = {"SeiNode": "seinodes", "SeiNetwork": "seinetworks", "SeiNodeTask": "seinodetasks",
           "SeiNodeTaskWorkflow": "seinodetaskworkflows"}
# The condition flipped to measure latency (on validators) and, per kind, the one the churn
# flips; each is the first entry of status.conditions, so a JSON patch can test and replace it.
# (kind, healthy status, healthy reason, changed status, changed reason)
FLIP = {
    "validator": ("SigningKeyReady", "True", "SigningKeyValidated", "False", "SigningKeyNotReady"),
    "fullnode": ("SidecarReady", "True", "Ready", "Unknown", "Unreachable"),
    "SeiNetwork": ("NodesReady", "True", "AllNodesReady", "False", "NodesInitializing"),
    "SeiNodeTask": ("TargetReady", "True", "PhaseMet", "False", "PhaseNotMet"),
    "SeiNodeTaskWorkflow": ("Adopted", "True", "Adopted", "False", "TargetNotReady"),
}


def kbase(ns, kind):
    return f"/apis/sei.io/v1alpha1/namespaces/{ns}/{PLURALS[kind]}"


def cond(ctype, status, reason, message, ltt="2026-11-01T00:00:00Z"):
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": ltt, "observedGeneration": 1}


def node_role(i):
    """Nine SeiNodes in ten are validators (signing key, node key and operator keyring from
    Secrets, data volume imported: 9 conditions); the tenth a full node by state sync (6)."""
    return "fullnode" if i % 10 == 9 else "validator"


def node_conditions(name, role):
    t0 = "2026-11-01T00:00:00Z"
    first = FLIP[role]
    if role == "validator":
        head = [cond("SigningKeyReady", "True", "SigningKeyValidated",
                     f"signing key Secret {name}-priv-validator-key validated", t0),
                cond("NodeKeyReady", "True", "NodeKeyValidated", f"node key Secret {name}-node-key validated", t0),
                cond("OperatorKeyringReady", "True", "OperatorKeyringValidated",
                     f"operator keyring Secret {name}-operator-keyring validated", t0),
                cond("SidecarReady", "True", "Ready", "sidecar returned 200", t0)]
    else:
        head = [cond("SidecarReady", "True", "Ready", "sidecar returned 200", t0)]
    assert head[0]["type"] == first[0]
    return head + [
        cond("ImportPVCReady", "True", "PVCValidated", f"PVC {name}-data is Bound, ReadWriteOnce, 2Ti", t0),
        cond("StateSyncReady", "True", "Ready", "2 state syncers resolved", t0),
        cond("NodeUpdateInProgress", "False", "UpdateComplete", f"image {IMAGE} rolled out", t0),
        cond("Paused", "False", "NotPaused", "spec.paused is unset or false", t0),
        cond("WorkflowInProgress", "False", "NoWorkflow", "no workflow adopted", t0),
    ]


def node_object(ns, i):
    name = f"n-{i}"
    role = node_role(i)
    seed = sum(map(ord, name))
    peers = [peer(k, seed) for k in range(8)]
    if role == "validator":
        spec = seistack.seinode(ns, name, validator={
            "snapshot": {"s3": {"targetHeight": 198740000}, "trustPeriod": "9999h0m0s"},
            "signingKey": {"secret": {"secretName": f"{name}-priv-validator-key"}},
            "nodeKey": {"secret": {"secretName": f"{name}-node-key"}},
            "operatorKeyring": {"secret": {"secretName": f"{name}-operator-keyring", "keyName": "node_admin",
                                           "passphraseSecretRef": {"secretName": f"{name}-keyring-passphrase",
                                                                   "key": "passphrase"}}}})["spec"]
        spec["sidecar"] = {"image": SIDECAR_IMAGE, "port": 7777,
                           "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}}
    else:
        spec = seistack.seinode(ns, name, full_node={
            "snapshot": {"stateSync": {}, "rpcServers": ["rpc-0.pacific-1.svc:26657", "rpc-1.pacific-1.svc:26657"],
                         "trustPeriod": "168h0m0s"},
            "snapshotGeneration": {"tendermint": {"keepRecent": 5}}})["spec"]
    spec.update({"podLabels": {"team": "infra"},
                 "dataVolume": {"import": {"pvcName": f"{name}-data"}},
                 "peers": [{"static": {"addresses": peers[:2]}},
                           {"label": {"selector": {"sei.io/chain": "pacific-1", "sei.io/role": "sentry"}}}],
                 "overrides": {"config.p2p.max_num_inbound_peers": "40", "config.mempool.size": "5000"}})
    status = {"phase": "Running", "phaseTransitionTime": "2026-11-01T00:00:00Z",
              "currentImage": IMAGE, "currentSidecarImage": SIDECAR_IMAGE,
              "statefulSet": {"name": name, "uid": f"6f1d2c1e-0b7a-4a4e-9d55-{i:012d}"},
              "resolvedPeers": peers,
              "conditions": node_conditions(name, role)}
    if role == "fullnode":
        status["resolvedStateSyncers"] = ["rpc-0.pacific-1.svc:26657", "rpc-1.pacific-1.svc:26657"]
    return "SeiNode", role, name, spec, status


def network_object(ns, j):
    name = f"net-{j}"
    t0 = "2026-11-01T00:00:00Z"
    spec = {"image": IMAGE, "replicas": 4, "deletionPolicy": "Retain",
            "genesis": {"chainId": f"bench-{j}", "stakingAmount": "10000000usei", "maxCeremonyDuration": "30m"},
            "sidecar": {"image": SIDECAR_IMAGE}}
    status = {"phase": "Ready", "replicas": 4, "readyReplicas": 4, "upToDateReplicas": 4, "observedGeneration": 1,
              "genesisHash": f"{j:064x}",
              "nodes": [{"name": f"{name}-{k}", "phase": "Running", "currentImage": IMAGE} for k in range(4)],
              "conditions": [
                  cond("NodesReady", "True", "AllNodesReady", "4/4 nodes ready", t0),
                  cond("GenesisCeremonyComplete", "True", "Complete", "genesis ceremony completed", t0),
                  cond("PlanInProgress", "False", "PlanComplete", "Plan completed successfully", t0),
                  cond("RolloutInProgress", "False", "AllUpToDate", "4/4 replicas on spec.image", t0),
                  cond("Paused", "False", "NotPaused", "spec.paused is unset or false", t0)]}
    return "SeiNetwork", "SeiNetwork", name, spec, status


def task_object(ns, j):
    name = f"task-{j}"
    target = f"n-{j * 10}"  # a validator
    spec = {"kind": "UpdateNodeImage",
            "target": {"nodeRef": {"name": target}, "requirePhase": "Running", "requirePhaseTimeout": "5m"},
            "timeoutSeconds": 1800, "updateNodeImage": {"image": IMAGE}}
    status = {"phase": "Complete", "phaseTransitionTime": "2026-11-01T00:05:00Z",
              "startedAt": "2026-11-01T00:00:00Z", "targetFirstObservedAt": "2026-11-01T00:00:00Z",
              "observedGeneration": 1,
              "task": {"id": f"{name}-1", "status": "Complete", "submittedAt": "2026-11-01T00:00:01Z",
                       "executionStartedAt": "2026-11-01T00:00:02Z"},
              "outputs": {"updateNodeImage": {"appliedImage": IMAGE}},
              "conditions": [
                  cond("TargetReady", "True", "PhaseMet", f"target {target} is Running", "2026-11-01T00:00:00Z"),
                  cond("Ready", "True", "TaskComplete", "", "2026-11-01T00:05:00Z")]}
    return "SeiNodeTask", "SeiNodeTask", name, spec, status


def workflow_object(ns, j):
    name = f"wf-{j}"
    target = f"n-{j * 20 + 9}"  # a full node
    t0 = "2026-11-01T00:01:00Z"
    spec = {"kind": "StateSync",
            "target": {"nodeRef": {"name": target}, "requirePhase": "Running", "requirePhaseTimeout": "10m"},
            "stateSync": {"rpcServers": ["rpc-0.pacific-1.svc:26657", "rpc-1.pacific-1.svc:26657"],
                          "migration": {"kind": "GigaStore", "gigaStore": {"backend": "pebbledb"}}}}
    status = {"phase": "Complete", "observedGeneration": 1,
              "conditions": [
                  cond("Adopted", "True", "Adopted", "plan compiled and persisted", t0),
                  cond("Ready", "True", "WorkflowComplete", "recipe completed", "2026-11-01T01:00:00Z"),
                  cond("Failed", "False", "NotFailed", "workflow has not failed", t0)]}
    return "SeiNodeTaskWorkflow", "SeiNodeTaskWorkflow", name, spec, status


def conditions_fleet(ns, count):
    """Every object of the `conditions` scenario: (kind, flip role, name, spec, status).

    COUNT SeiNodes (node_role), COUNT/50 SeiNetworks (4 validators each, after the genesis
    ceremony: 5 conditions), COUNT/10 SeiNodeTasks (completed UpdateNodeImage: TargetReady
    and Ready), COUNT/20 SeiNodeTaskWorkflows (completed StateSync: Adopted, Ready, Failed).
    Every condition is in its healthy steady state, so no shipped alert rule is pending or
    firing between measurements (their ALERTS samples would count as ingested samples)."""
    out = [node_object(ns, i) for i in range(count)]
    out += [network_object(ns, j) for j in range(max(1, count // 50))]
    out += [task_object(ns, j) for j in range(max(1, count // 10))]
    out += [workflow_object(ns, j) for j in range(max(1, count // 20))]
    return out


def fleet_counts(count):
    """{kind: objects}, and the number of conditions, of conditions_fleet(count)."""
    objs = conditions_fleet("x", count)
    kinds = {}
    for kind, _, _, _, _ in objs:
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds, sum(len(o[4]["conditions"]) for o in objs)


def create_object(ns, kind, name, spec, status):
    code, data = call("POST", kbase(ns, kind), seistack.sei_object(kind, ns, name, spec, LABELS))
    if code not in (201, 409):
        raise RuntimeError(f"create {kind} {ns}/{name}: {code} {data[:300]!r}")
    write_status(ns, kind, name, status)


def write_status(ns, kind, name, status):
    code, data = call("PATCH", f"{kbase(ns, kind)}/{name}/status", {"status": status}, "application/merge-patch+json")
    if code != 200:
        raise RuntimeError(f"status of {kind} {ns}/{name}: {code} {data[:300]!r}")


def flip_first(ns, kind, name, ctype, status, reason, message=None):
    """Rewrites status.conditions[0] (tested to be `ctype`): status, reason, message and
    lastTransitionTime, leaving every other condition as it is."""
    ops = [{"op": "test", "path": "/status/conditions/0/type", "value": ctype},
           {"op": "replace", "path": "/status/conditions/0/status", "value": status},
           {"op": "replace", "path": "/status/conditions/0/reason", "value": reason},
           {"op": "replace", "path": "/status/conditions/0/lastTransitionTime", "value": now()},
           {"op": "replace", "path": "/status/conditions/0/message",
            "value": message or f"set by tests/bench/populate.py: {status} {reason}"}]
    code, data = call("PATCH", f"{kbase(ns, kind)}/{name}/status", ops, "application/json-patch+json")
    if code != 200:
        raise RuntimeError(f"flip of {kind} {ns}/{name}: {code} {data[:300]!r}")


def list_all(ns, kind, limit=500):
    items, cont = [], ""
    while True:
        code, data = call("GET", f"{kbase(ns, kind)}?limit={limit}" + (f"&continue={cont}" if cont else ""))
        if code != 200:
            raise RuntimeError(f"list {kind} in {ns}: {code} {data[:300]!r}")
        body = json.loads(data)
        items += body["items"]
        cont = body["metadata"].get("continue")
        if not cont:
            return items


def create_conditions_fleet(ns, count, threads=8):
    """Creates conditions_fleet(ns, count); objects that exist already keep their spec, and
    their status is written again (which also undoes flips an interrupted run left)."""
    fleet = conditions_fleet(ns, count)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda o: create_object(ns, o[0], o[2], o[3], o[4]), fleet))
    return len(fleet)


def reset_conditions_fleet(ns, count, threads=8):
    """Writes again the status of every object whose first condition is not in its healthy
    state (flips an interrupted run left behind); returns how many were reset."""
    fleet = {(o[0], o[2]): o for o in conditions_fleet(ns, count)}
    todo = []
    for kind in PLURALS:
        for item in list_all(ns, kind):
            key = (kind, item["metadata"]["name"])
            o = fleet.get(key)
            if o is None:
                continue
            want = o[4]["conditions"][0]
            have = ((item.get("status") or {}).get("conditions") or [{}])[0]
            if (have.get("status"), have.get("reason")) != (want["status"], want["reason"]):
                todo.append(o)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda o: write_status(ns, o[0], o[2], o[4]), todo))
    return len(todo)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["create", "flip", "delete", "conditions"])
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
    if a.action == "conditions":
        made = create_conditions_fleet(a.namespace, a.count, a.threads)
        kinds, conds = fleet_counts(a.count)
        print(f"conditions: {made} objects ({kinds}, {conds} conditions) in {a.namespace} "
              f"in {time.time() - start:.1f}s", file=sys.stderr)
        return
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
