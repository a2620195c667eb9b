#!/usr/bin/env python3
"""Drives `benches/http_wrk.sh`: issue 34's workload under wrk, `/check` next to `/healthz`.

For each binary of WRIT_BINS and each decision-log mode of LOG_MODES a release `writ serve --memory`
runs pinned to core 0 (all of them at once; only the one being timed is busy), loaded with the
workload of `benches/http_workload.py` through `POST /stores/{id}/write` (10,000 tuples a request).
wrk runs pinned to core 1, one thread, CONNECTIONS connections. Each round times, per server,
`GET /healthz`, `POST /check` cycling over 20,000 varied pairs (half drawn to be allowed, half
uniform) and `POST /batch-check` cycling over 20 bodies of 1,000 varied checks; RUNS rounds, servers
interleaved within a round, so an A/B sees the same host noise. Reported: the median of the rounds,
the check/healthz throughput ratio (target >= 0.67) both as the ratio of the two medians and as the
median of the per-round ratios, the same for server CPU per request, and batch checks/s (target
>= 500,000).
Before timing, one batch is checked: every check drawn to be allowed must be.

Environment: WRIT_BINS (space-separated paths), LOG_MODES (default "deny off"), DURATION (5s),
CONNECTIONS (16), RUNS (3), SERVER_ARGS (extra `writ serve` flags). Standard library only.
"""

import json
import os
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DURATION = os.environ.get("DURATION", "5s")
CONNECTIONS = os.environ.get("CONNECTIONS", "16")
RUNS = int(os.environ.get("RUNS", "3"))
LOG_MODES = os.environ.get("LOG_MODES", "deny off").split()
SERVER_ARGS = shlex.split(os.environ.get("SERVER_ARGS", ""))
WRITE_CHUNK = 10_000

# Each wrk thread formats every request once, in `init`, and then hands them out in turn: the
# client's per-request cost stays that of a fixed request.
CYCLE_LUA = """
local path = "%s"
local requests = {}
local next_request = 0
function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(path) do
    requests[#requests + 1] = wrk.format("POST", nil, headers, line)
  end
end
function request()
  next_request = next_request %% #requests + 1
  return requests[next_request]
end
"""


def call(url, method="GET", body=None, content_type="application/json"):
    data = body if body is None or isinstance(body, bytes) else body.encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": content_type})
    with urllib.request.urlopen(request, timeout=60) as answer:
        text = answer.read()
    return json.loads(text) if text else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, mode, work, index):
        self.label = f"[{index}] log={mode} {binary}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["taskset", "-c", "0", binary, "serve", "--memory", "--max-batch-check", "1000"]
        args += ["--max-tuples-per-write", str(WRITE_CHUNK), "--decision-log", mode, *SERVER_ARGS]
        args += ["--listen", f"127.0.0.1:{self.port}"]
        self.log = open(os.path.join(work, f"server-{index}.log"), "w")
        # Request logs at info would add a formatted line per request; keep warnings only.
        env = dict(os.environ, RUST_LOG="warn")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        ready = False
        try:
            for _ in range(200):
                try:
                    call(self.url + "/readyz")
                    ready = True
                    break
                except OSError:
                    time.sleep(0.05)
            if not ready:
                raise SystemExit(f"writ did not start: see {self.log.name}")
        finally:
            # A server that never answered is not in the caller's list to stop: stop it here.
            if not ready:
                self.stop()

    def load(self, work):
        self.store = call(self.url + "/stores", "POST", json.dumps({"name": "wrk"}))["id"]
        with open(os.path.join(work, "model.fga"), "rb") as f:
            call(f"{self.url}/stores/{self.store}/writ/model", "PUT", f.read(), "text/plain")
        started = time.monotonic()
        for name in sorted(n for n in os.listdir(work) if n.startswith("writes-")):
            with open(os.path.join(work, name), "rb") as f:
                call(f"{self.url}/stores/{self.store}/write", "POST", f.read())
        seconds = time.monotonic() - started
        with open(os.path.join(work, "batches.jsonl"), "rb") as f:
            first_batch = f.readline()
        answer = call(f"{self.url}/stores/{self.store}/batch-check", "POST", first_batch)["result"]
        expected = json.load(open(os.path.join(work, "expected.json")))["allowed_by_construction"]
        wrong = [c for c in expected if answer.get(c, {}).get("allowed") is not True]
        errors = [c for c, entry in answer.items() if "error" in entry]
        if wrong or errors or len(answer) != 1000:
            raise SystemExit(f"{self.label}: {len(wrong)} checks drawn to be allowed are not, {len(errors)} errors")
        allowed = sum(1 for entry in answer.values() if entry.get("allowed"))
        print(f"{self.label}: loaded in {seconds:.1f} s; first batch {allowed / 10:.1f}% allowed, as drawn")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def cpu_seconds(pid):
    """User plus system CPU time of a process, all its threads, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url, script, duration, latency=True, pid=None):
    cpu_before = cpu_seconds(pid) if pid else 0.0
    # wrk gives up on a request after 2 s by default and the bench stops on any timeout; on a
    # host busy enough to starve the server's core for that long, allow 10 s before calling it one.
    args = ["taskset", "-c", "1", "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}", "--timeout", "10s"]
    if latency:
        args.append("--latency")
    if script:
        args += ["-s", script]
    out = subprocess.run(args + [url], check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors on {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    cpu_us = (cpu_seconds(pid) - cpu_before) * 1e6 / max(requests, 1) if pid else 0.0

    def percentile(p):
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 1, "ms": 1_000, "s": 1_000_000}[unit]

    if not latency:
        return {"rps": rps}
    return {"rps": rps, "p50": percentile(50), "p99": percentile(99), "cpu_us": cpu_us}


def main():
    binaries = sys.argv[1:]
    work = tempfile.mkdtemp(prefix="writ-wrk-")
    subprocess.run([sys.executable, os.path.join(HERE, "http_workload.py"), work, str(WRITE_CHUNK)], check=True)
    scripts = {}
    for kind, data in (("check", "checks.jsonl"), ("batch", "batches.jsonl")):
        scripts[kind] = os.path.join(work, f"{kind}.lua")
        with open(scripts[kind], "w") as f:
            f.write(CYCLE_LUA % os.path.join(work, data))
    servers = []
    try:
        for binary in binaries:
            for mode in LOG_MODES:
                servers.append(Server(binary, mode, work, len(servers)))
                servers[-1].load(work)
        endpoints = lambda s: {  # noqa: E731
            "healthz": (s.url + "/healthz", None),
            "check": (f"{s.url}/stores/{s.store}/check", scripts["check"]),
            "batch": (f"{s.url}/stores/{s.store}/batch-check", scripts["batch"]),
        }
        for server in servers:  # warm-up: caches, allocator, the decision log's steady state
            for url, script in endpoints(server).values():
                wrk(url, script, "2s", latency=False)
        print(f"wrk: 1 thread, {CONNECTIONS} connections, {DURATION} per endpoint, {RUNS} rounds; "
              "servers on core 0, wrk on core 1")
        results = {id(s): {k: [] for k in ("healthz", "check", "batch")} for s in servers}
        for round_ in range(RUNS):
            for server in servers:
                line = []
                for name, (url, script) in endpoints(server).items():
                    result = wrk(url, script, DURATION, pid=server.process.pid)
                    results[id(server)][name].append(result)
                    line.append(f"{name} {result['rps']:,.0f}/s ({result['cpu_us']:.1f} us CPU)")
                ratio = results[id(server)]["check"][-1]["rps"] / results[id(server)]["healthz"][-1]["rps"]
                print(f"round {round_ + 1} {server.label}: {', '.join(line)}; check/healthz {ratio:.2f}")
        print()
        for server in servers:
            r = results[id(server)]
            med = {n: {k: statistics.median(x[k] for x in r[n]) for k in ("rps", "p50", "p99", "cpu_us")} for n in r}
            ratios = sorted(c["rps"] / h["rps"] for c, h in zip(r["check"], r["healthz"]))
            batch = sorted(b["rps"] * 1000 for b in r["batch"])
            print(server.label)
            for n in ("healthz", "check"):
                print(f"  {n:8} median {med[n]['rps']:>9,.0f} req/s, p50 {med[n]['p50']:.0f} us, p99 {med[n]['p99']:.0f} us,"
                      f" server CPU {med[n]['cpu_us']:.1f} us/request")
            cpu_ratios = sorted(h["cpu_us"] / c["cpu_us"] for c, h in zip(r["check"], r["healthz"]))
            # Two ways to pair the rounds, both printed and named: the ratio of the medians (each
            # endpoint's median over the rounds, then one ratio) and the median of the per-round ratios.
            print(f"  healthz/check server CPU per request: ratio of medians "
                  f"{med['healthz']['cpu_us'] / med['check']['cpu_us']:.2f}; median of per-round ratios "
                  f"{statistics.median(cpu_ratios):.2f} (rounds {', '.join(f'{x:.2f}' for x in cpu_ratios)}; "
                  "the throughput ratio on a core of its own)")
            print(f"  check/healthz requests/s: ratio of medians {med['check']['rps'] / med['healthz']['rps']:.2f}; "
                  f"median of per-round ratios {statistics.median(ratios):.2f} "
                  f"(rounds {', '.join(f'{x:.2f}' for x in ratios)}; target >= 0.67)")
            print(f"  batch-check of 1,000: median {statistics.median(batch):,.0f} checks/s "
                  f"(runs {', '.join(f'{x:,.0f}' for x in batch)}; p50 {med['batch']['p50']:.0f} us; target >= 500,000); "
                  f"server CPU {med['batch']['cpu_us'] / 1000:.2f} us per check = {1e9 / max(med['batch']['cpu_us'], 1e-9):,.0f} checks per CPU-second")
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
