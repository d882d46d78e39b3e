"""What the load benchmarks (tests/bench/scale, tests/bench/fleet-scale) share: a process's RSS
and CPU from /proc, the pid behind a port, a /metrics page as numbers, the collector's own
counts of refused and failed points, and a sampler of RSS, CPU and the load average per
phase. Standard library only.
"""
import importlib.machinery
import importlib.util
import os
import re
import subprocess
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

# Object series: every family's condition pair, its transition time, and the seed gauge.
OBJECT_SERIES = '{__name__=~".+_status_condition(_last_transition_timestamp_seconds)?|seinode_sidecar_tls_secret_ready",namespace="%s"}'

_TICKS = os.sysconf("SC_CLK_TCK")


def load_script(name):
    """A script of tests/bench without a .py suffix (fleet, scale) as a module."""
    path = os.path.join(HERE, name)
    mod_name = name.replace("-", "_")
    spec = importlib.util.spec_from_loader(mod_name, importlib.machinery.SourceFileLoader(mod_name, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid):
    """User and system CPU seconds of a process so far (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return None


def pid_listening(port):
    """The pid of the process listening on 127.0.0.1:port (the stack's collector)."""
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    m = re.search(r"pid=(\d+)", out)
    return int(m.group(1)) if m else None


def scrape(url, timeout=10):
    """Prometheus text format -> {name{labels}: value}."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


def metric_sum(metrics, name, where=None):
    """The sum of every series of `name` (or `name`_total, as newer exporters name
    counters) in a scrape, optionally only those whose labels match the regular expression
    `where`."""
    total = 0.0
    for key, v in metrics.items():
        base = key.split("{", 1)[0]
        if base in (name, name + "_total") and (where is None or re.search(where, key)):
            total += v
    return total


def collector_counts(url):
    """Points the collector refused (receiver: memory_limiter), failed to send or to enqueue,
    and sent (to remote write)."""
    m = scrape(url)
    return {"collector_refused": metric_sum(m, "otelcol_receiver_refused_metric_points"),
            "collector_send_failed": metric_sum(m, "otelcol_exporter_send_failed_metric_points"),
            "collector_enqueue_failed": metric_sum(m, "otelcol_exporter_enqueue_failed_metric_points"),
            "collector_sent": metric_sum(m, "otelcol_exporter_sent_metric_points")}


class Sampler(threading.Thread):
    """Every 0.5 s: the RSS of some processes and the machine's 1-minute load average; per
    phase (between two take() calls) the peak and last RSS, the CPU seconds each process
    used, and the load average's mean and maximum."""

    def __init__(self, interval=0.5):
        super().__init__(daemon=True)
        self.interval = interval
        self.pids, self.lock = {}, threading.Lock()
        self._reset()

    def _reset(self):
        self.peaks, self.last, self.loads = {}, {}, []
        self.started = time.time()
        self.cpu0 = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def watch(self, name, pid):
        with self.lock:
            self.pids[name] = pid
            self.cpu0[name] = cpu_seconds(pid) if pid else None

    def take(self):
        """The phase since the last take(): {"rss_peak": {name: MiB}, "rss_last": {...},
        "cpu_seconds": {...}, "seconds", "load_mean", "load_max"}."""
        with self.lock:
            cpu = {}
            for name, pid in self.pids.items():
                now, then = cpu_seconds(pid) if pid else None, self.cpu0.get(name)
                if now is not None and then is not None:
                    cpu[name] = now - then
            out = {"rss_peak": self.peaks, "rss_last": self.last, "cpu_seconds": cpu,
                   "seconds": time.time() - self.started,
                   # The machine's 1-minute load average over the phase: these figures depend on it.
                   "load_mean": sum(self.loads) / len(self.loads) if self.loads else 0.0,
                   "load_max": max(self.loads, default=0.0)}
            self._reset()
        return out

    def run(self):
        while True:
            with self.lock:
                for name, pid in self.pids.items():
                    if pid:
                        rss = rss_mib(pid)
                        self.peaks[name] = max(self.peaks.get(name, 0.0), rss)
                        self.last[name] = rss
                with open("/proc/loadavg") as f:
                    self.loads.append(float(f.read().split()[0]))
            time.sleep(self.interval)
