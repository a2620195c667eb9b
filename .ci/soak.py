#!/usr/bin/env python3
"""Soak driver for .ci/soak.sh (Python standard library only).

Loads a drive-like model and data into a fresh store, then runs WORKERS client threads for
--seconds, each in a bounded loop of mixed operations on keep-alive connections. Each worker owns
its own documents, so its writes always add a missing tuple and its deletes remove a present one,
and the data set stays the same size (it oscillates around a fixed target) for the whole run.
Samples the server's RSS every half second. Exits non-zero on any 5xx, any failed request, or RSS
growth above 10% after warm-up (the first half of the run; median of the last quarter of samples
after it against the median of the first quarter) beyond the changelog's own size: the store keeps every change
(OpenFGA's ReadChanges history; about 425 bytes each in memory, measured), so each write or delete
acknowledged after warm-up is allowed CHANGE_BYTES; the raw growth is printed too.
"""
import argparse
import statistics
import http.client
import json
import os
import random
import sys
import threading
import time

WORKERS = 4
DOCS_PER_WORKER = 200
USERS = 200
TARGET_TUPLES_PER_WORKER = 400
CHANGE_BYTES = 512
MAX_ITERATIONS = 5_000_000  # per worker; the deadline normally ends the loop long before

MODEL = """model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: [user, group#member] or owner or viewer from parent
type document
  relations
    define parent: [folder]
    define owner: [user]
    define editor: [user, group#member] or owner
    define viewer: [user, user:*, group#member] or editor or viewer from parent
    define blocked: [user]
    define can_view: viewer but not blocked
"""


class Client:
    def __init__(self, port):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None, content_type="application/json"):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = {"content-type": content_type} if data is not None else {}
        for attempt in (0, 1):
            try:
                self.connection.request(method, path, body=data, headers=headers)
                response = self.connection.getresponse()
                payload = response.read()
                return response.status, payload
            except (http.client.HTTPException, ConnectionError):
                # One reconnect for a keep-alive connection the server closed; a second failure counts.
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 1:
                    raise


def must(status, payload, what):
    if status // 100 != 2:
        sys.exit(f"soak setup: {what} answered {status}: {payload[:300]!r}")
    return json.loads(payload) if payload else None


def setup(port):
    client = Client(port)
    store = must(*client.call("POST", "/stores", {"name": "soak"}), "create store")["id"]
    must(*client.call("PUT", f"/stores/{store}/writ/model", MODEL.encode(), "text/plain"), "write model")
    tuples = []
    for g in range(20):
        for u in range(g * 10, g * 10 + 15):
            tuples.append((f"user:u{u % USERS}", "member", f"group:g{g}"))
        if g > 0:
            tuples.append((f"group:g{g - 1}#member", "member", f"group:g{g}"))
    for f in range(50):
        if f > 0:
            tuples.append((f"folder:f{(f - 1) // 3}", "parent", f"folder:f{f}"))
        tuples.append((f"group:g{f % 20}#member", "viewer", f"folder:f{f}"))
    for w in range(WORKERS):
        for d in range(DOCS_PER_WORKER):
            doc = f"document:w{w}-{d}"
            tuples.append((f"folder:f{d % 50}", "parent", doc))
            tuples.append((f"user:u{(d * 7) % USERS}", "owner", doc))
            if d % 10 == 0:
                tuples.append((f"user:u{(d * 3) % USERS}", "blocked", doc))
    for start in range(0, len(tuples), 100):
        keys = [{"user": u, "relation": r, "object": o} for u, r, o in tuples[start:start + 100]]
        must(*client.call("POST", f"/stores/{store}/write", {"writes": {"tuple_keys": keys}}), "seed write")
    return store, len(tuples)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = {}
        self.status = {}
        self.failures = []
        self.change_times = []

    def record(self, op, seconds, status):
        with self.lock:
            self.latencies.setdefault(op, []).append(seconds)
            self.status[status] = self.status.get(status, 0) + 1

    def fail(self, message):
        with self.lock:
            if len(self.failures) < 20:
                self.failures.append(message)


# The mix: (share, operation); "change" is a write or a delete that keeps the data set's size.
MIX = [(0.45, "check"), (0.05, "batch-check"), (0.10, "list-objects"), (0.05, "list-users"), (0.07, "read"),
       (0.08, "expand"), (0.20, "change")]
# SOAK_OPS=check,change (for instance) narrows the mix to those operations, equally shared, to
# find which one a regression comes from.
if os.environ.get("SOAK_OPS"):
    MIX = [(1.0, name) for name in os.environ["SOAK_OPS"].split(",")]


def pick(rng):
    roll = rng.random() * sum(share for share, _ in MIX)
    for share, name in MIX:
        roll -= share
        if roll < 0:
            return name
    return MIX[-1][1]


def worker(port, store, index, deadline, stats):
    rng = random.Random(index)
    client = Client(port)
    present = set()
    base = f"/stores/{store}"

    def user():
        return f"user:u{rng.randrange(USERS)}"

    def doc():
        return f"document:w{rng.randrange(WORKERS)}-{rng.randrange(DOCS_PER_WORKER)}"

    def own_tuple():
        return (user(), "viewer", f"document:w{index}-{rng.randrange(DOCS_PER_WORKER)}")

    for _ in range(MAX_ITERATIONS):
        if time.monotonic() >= deadline:
            break
        op = pick(rng)
        if op == "check":
            path = "/check"
            body = {"tuple_key": {"user": user(), "relation": rng.choice(["viewer", "can_view", "editor"]), "object": doc()}}
        elif op == "batch-check":
            path = "/batch-check"
            body = {"checks": [{"tuple_key": {"user": user(), "relation": "can_view", "object": doc()},
                                "correlation_id": str(i)} for i in range(10)]}
        elif op == "list-objects":
            path = "/list-objects"
            body = {"type": "document", "relation": "viewer", "user": user()}
        elif op == "list-users":
            path = "/list-users"
            body = {"object": {"type": "document", "id": doc().split(":")[1]}, "relation": "viewer",
                    "user_filters": [{"type": "user"}]}
        elif op == "read":
            path = "/read"
            body = {"tuple_key": {"object": doc()}, "page_size": 50}
        elif op == "expand":
            path = "/expand"
            body = {"tuple_key": {"relation": "viewer", "object": doc()}}
        else:
            delete = len(present) >= TARGET_TUPLES_PER_WORKER or (present and rng.random() < 0.4)
            if delete:
                key = rng.choice(sorted(present)) if len(present) < 64 else next(iter(present))
                op, path = "delete", "/write"
                body = {"deletes": {"tuple_keys": [{"user": key[0], "relation": key[1], "object": key[2]}]}}
            else:
                key = own_tuple()
                while key in present:
                    key = own_tuple()
                op, path = "write", "/write"
                body = {"writes": {"tuple_keys": [{"user": key[0], "relation": key[1], "object": key[2]}]}}
        started = time.perf_counter()
        try:
            status, payload = client.call("POST", base + path, body)
        except Exception as error:  # a dropped connection is a failure, never a retry loop
            stats.fail(f"{op}: {error!r}")
            stats.record(op, time.perf_counter() - started, "error")
            continue
        stats.record(op, time.perf_counter() - started, status)
        if status != 200:
            stats.fail(f"{op} {json.dumps(body)[:200]} answered {status}: {payload[:200]!r}")
        elif op == "write":
            present.add(key)
            stats.change_times.append(time.monotonic())
        elif op == "delete":
            present.discard(key)
            stats.change_times.append(time.monotonic())


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()

    for _ in range(200):  # the server is up within 20 s or the soak fails
        try:
            if Client(args.port).call("GET", "/healthz")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        sys.exit("soak: the server never answered /healthz")

    store, seeded = setup(args.port)
    stats = Stats()
    started = time.monotonic()
    deadline = started + args.seconds
    # The debug server's RSS climbs for its first 35-55 s (measured: 58 MiB at 18 s, 71 at 36 s, then
    # flat at 68-74 MiB to 180 s), so a warm-up of a third of a 60 s run put the first window on the
    # climb and failed main's own code in 1 of 3 runs. Half of the run, of a run of 120 s, is past it.
    warm_up = max(5.0, args.seconds / 2)
    samples = []

    def sample():
        while time.monotonic() < deadline:
            samples.append((time.monotonic() - started, rss_kib(args.pid)))
            time.sleep(0.5)

    threads = [threading.Thread(target=worker, args=(args.port, store, i, deadline, stats)) for i in range(WORKERS)]
    threads.append(threading.Thread(target=sample))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    total = sum(len(v) for v in stats.latencies.values())
    print(f"soak: {elapsed:.0f} s, {WORKERS} workers, {seeded} seeded tuples, {total} requests "
          f"({total / elapsed:.0f}/s), statuses {dict(sorted(stats.status.items(), key=str))}")
    print(f"{'operation':<14}{'count':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    everything = []
    for op in sorted(stats.latencies):
        values = sorted(stats.latencies[op])
        everything.extend(values)
        print(f"{op:<14}{len(values):>9}{percentile(values, 0.5) * 1e3:>9.2f}"
              f"{percentile(values, 0.99) * 1e3:>9.2f}{values[-1] * 1e3:>9.2f}")
    everything.sort()
    print(f"{'all':<14}{len(everything):>9}{percentile(everything, 0.5) * 1e3:>9.2f}"
          f"{percentile(everything, 0.99) * 1e3:>9.2f}{everything[-1] * 1e3:>9.2f}")

    after = [rss for at, rss in samples if at >= warm_up]
    problems = []
    if len(after) < 2:
        problems.append("too few RSS samples after warm-up")
    else:
        # The allocator returns and takes back pages in bursts (RSS moves by several percent from one
        # sample to the next), so levels are medians of windows: the first and the last quarter of
        # the samples after warm-up. A leak raises the late level; a burst moves one sample.
        window = max(1, len(after) // 4)
        baseline = statistics.median(after[:window])
        level = statistics.median(after[-window:])
        peak, last = max(after), after[-1]
        changes = sum(1 for at in stats.change_times if at - started >= warm_up)
        allowance_kib = changes * CHANGE_BYTES / 1024
        raw = (level - baseline) / baseline
        growth = (level - baseline - allowance_kib) / baseline
        print(f"rss: start {samples[0][1] / 1024:.1f} MiB, first quarter after {warm_up:.0f} s warm-up "
              f"{baseline / 1024:.1f} MiB (median), last quarter {level / 1024:.1f} MiB (median), "
              f"peak {peak / 1024:.1f} MiB, end {last / 1024:.1f} MiB; raw growth {raw * 100:.1f}%, "
              f"{changes} changes after warm-up ({allowance_kib / 1024:.1f} MiB changelog allowance), "
              f"growth beyond the changelog {growth * 100:.1f}%")
        step = max(1, len(samples) // 10)
        print("rss timeline (s: MiB): " + ", ".join(f"{at:.0f}: {rss / 1024:.1f}" for at, rss in samples[::step]))
        if growth > 0.10:
            problems.append(f"RSS grew {growth * 100:.1f}% after warm-up beyond the changelog (limit 10%)")
    server_errors = sum(n for s, n in stats.status.items() if isinstance(s, int) and s >= 500)
    if server_errors:
        problems.append(f"{server_errors} answers were 5xx")
    if stats.failures:
        problems.append(f"{sum(n for s, n in stats.status.items() if s != 200)} requests failed, e.g. "
                        + "; ".join(stats.failures[:5]))
    for problem in problems:
        print(f"soak FAILED: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
