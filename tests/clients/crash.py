"""Crash test: acknowledged writes survive SIGKILL, and every write request is all or nothing.

    python3 crash.py /path/to/writ [--rounds 6] [--clients 4]

Each round starts `writ serve --data-dir DIR` (the same DIR every round), lets several clients write
batches of 5-50 tuples (each request on its own object `doc:r<round>c<client>s<seq>`, so a request's
tuples are exactly the tuples of that object), SIGKILLs the server mid-load, restarts it on the same
data and checks, over every request of every round so far (with list-users: one call per request):
  - a request answered 200 (acknowledged) has all its tuples;
  - a request with no answer (in flight at the kill) has all of its tuples or none;
  - a request answered with an error has none;
  - the revision keeps counting up: a new write gets a revision above every acknowledged one;
  - `read` and `check` agree for a sample of acknowledged requests.
Prints the rounds, the acknowledged writes and the result; exits 1 on any violation.
Stdlib only; the server listens on 127.0.0.1; every loop is bounded.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

MODEL = """model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    """One keep-alive connection; reconnects after an error."""

    def __init__(self, port, timeout=10):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def call(self, method, path, body=None, content_type="application/json"):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        data = body if isinstance(body, str) else (json.dumps(body) if body is not None else None)
        try:
            self.conn.request(method, path, body=data, headers={"content-type": content_type})
            response = self.conn.getresponse()
            raw = response.read()
        except Exception:
            self.close()
            raise
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode(errors="replace")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Server:
    def __init__(self, binary, data_dir, log_path):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.process = None
        self.port = None

    def start(self):
        self.port = free_port()
        log = open(self.log_path, "ab")
        env = dict(os.environ, RUST_LOG="warn")
        self.process = subprocess.Popen(
            [self.binary, "serve", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}"],
            stdout=log,
            stderr=log,
            env=env,
        )
        log.close()
        client = Http(self.port, timeout=1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"writ exited with {self.process.returncode} at start; see {self.log_path}")
            try:
                status, _ = client.call("GET", "/readyz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("writ did not become ready in 30 s")

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


def run_load(port, store, round_no, clients, requests):
    """Writes from `clients` threads until `stop` is set; appends (object, n, outcome, revision) to requests."""
    stop = threading.Event()
    lock = threading.Lock()

    def client(client_no):
        rng = random.Random(round_no * 1000 + client_no)
        http_client = Http(port, timeout=10)
        seq = 0
        while not stop.is_set() and seq < 100000:
            seq += 1
            obj = f"doc:r{round_no}c{client_no}s{seq}"
            n = rng.randint(5, 50)
            keys = [{"user": f"user:u{i}", "relation": "viewer", "object": obj} for i in range(n)]
            try:
                status, body = http_client.call("POST", f"/stores/{store}/write", {"writes": {"tuple_keys": keys}})
                if status == 200:
                    outcome, revision = "acked", body.get("revision")
                else:
                    outcome, revision = f"refused {status}: {body}", None
            except Exception:  # noqa: BLE001 - the server died under this request: outcome unknown
                outcome, revision = "unknown", None
                with lock:
                    requests.append((obj, n, outcome, revision))
                break
            with lock:
                requests.append((obj, n, outcome, revision))
        http_client.close()

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    return stop, threads


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="writ-crash-")
    data_dir = os.path.join(work, "data")
    server = Server(args.binary, data_dir, os.path.join(work, "server.log"))
    started = time.monotonic()
    failures = []
    requests = []  # every write request of every round: (object, tuple count, outcome, revision)
    try:
        server.start()
        api = Http(server.port)
        status, store = api.call("POST", "/stores", {"name": "crash"})
        assert status == 201, (status, store)
        store = store["id"]
        status, body = api.call("PUT", f"/stores/{store}/writ/model", MODEL, "text/plain")
        assert status == 201, (status, body)
        api.close()

        for round_no in range(1, args.rounds + 1):
            before = len(requests)
            stop, threads = run_load(server.port, store, round_no, args.clients, requests)
            time.sleep(rng.uniform(0.4, 1.2))
            server.kill()  # SIGKILL mid-load: requests are in flight
            stop.set()
            for t in threads:
                t.join(timeout=15)
            this_round = requests[before:]
            t0 = time.monotonic()
            server.start()
            t1 = time.monotonic()
            round_failures, applied_in_flight = verify(server.port, store, requests, round_no)
            failures += round_failures
            t2 = time.monotonic()
            print(f"  restart {t1 - t0:.1f} s, verify {t2 - t1:.1f} s", flush=True)
            acked = sum(1 for r in this_round if r[2] == "acked")
            unknown = sum(1 for r in this_round if r[2] == "unknown")
            print(
                f"round {round_no}: {len(this_round)} write requests, {acked} acknowledged "
                f"({sum(r[1] for r in this_round if r[2] == 'acked')} tuples), {unknown} in flight at SIGKILL "
                f"({applied_in_flight} of them applied whole, the rest absent); "
                f"violations so far: {len(failures)}",
                flush=True,
            )
        server.kill()
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)

    acked = [r for r in requests if r[2] == "acked"]
    for failure in failures[:20]:
        print("FAIL", failure)
    elapsed = time.monotonic() - started
    print(
        f"crash: {args.rounds} rounds, {len(requests)} write requests, {len(acked)} acknowledged "
        f"({sum(r[1] for r in acked)} tuples), {len(failures)} violations, {elapsed:.1f} s",
        flush=True,
    )
    if not acked:
        print("FAIL no write was acknowledged: the test tested nothing")
        return 1
    return 1 if failures else 0


def verify(port, store, requests, round_no):
    """Checks every request so far against the restarted server; returns the violations and how
    many of this round's in-flight requests were applied (whole)."""
    api = Http(port)
    failures = []
    max_acked_revision = 0
    acked_sample = []
    applied_in_flight = 0
    for obj, n, outcome, revision in requests:
        # list-users answers from the index in one call; `read` scans the whole store per call, so it
        # is used below for a sample only.
        request = {"object": {"type": "doc", "id": obj.split(":", 1)[1]}, "relation": "viewer", "user_filters": [{"type": "user"}]}
        status, body = api.call("POST", f"/stores/{store}/list-users", request)
        if status != 200:
            failures.append(f"round {round_no}: list-users {obj} answered {status}: {body}")
            continue
        users = sorted(int(u["object"]["id"][1:]) for u in body["users"])
        whole = users == list(range(n))
        if outcome == "acked":
            max_acked_revision = max(max_acked_revision, revision or 0)
            acked_sample.append((obj, n))
            if not whole:
                failures.append(f"round {round_no}: acknowledged {obj} ({n} tuples) has {len(users)} after restart")
        elif outcome == "unknown":
            if users and not whole:
                failures.append(f"round {round_no}: in-flight {obj} ({n} tuples) is partly applied: {len(users)}")
            elif whole and obj.startswith(f"doc:r{round_no}c"):
                applied_in_flight += 1
        elif users:
            failures.append(f"round {round_no}: refused {obj} ({outcome}) left {len(users)} tuples")
    for obj, n in random.Random(round_no).sample(acked_sample, min(10, len(acked_sample))):
        status, body = api.call("POST", f"/stores/{store}/read", {"tuple_key": {"object": obj}, "page_size": 100})
        got = sorted(t["key"]["user"] for t in body["tuples"]) if status == 200 else (status, body)
        if got != sorted(f"user:u{i}" for i in range(n)):
            failures.append(f"round {round_no}: read {obj} answered {got}")
    for obj, n in random.Random(round_no).sample(acked_sample, min(30, len(acked_sample))):
        user = f"user:u{n - 1}"
        status, body = api.call("POST", f"/stores/{store}/check", {"tuple_key": {"user": user, "relation": "viewer", "object": obj}})
        if (status, body.get("allowed") if isinstance(body, dict) else body) != (200, True):
            failures.append(f"round {round_no}: check {obj}#viewer@{user} answered {status} {body}")
    probe = f"doc:probe{round_no}"
    status, body = api.call(
        "POST", f"/stores/{store}/write", {"writes": {"tuple_keys": [{"user": "user:p", "relation": "viewer", "object": probe}]}}
    )
    if status != 200 or not isinstance(body.get("revision"), int) or body["revision"] <= max_acked_revision:
        failures.append(f"round {round_no}: a write after restart got {status} {body}; max acknowledged revision {max_acked_revision}")
    api.close()
    return failures, applied_in_flight


if __name__ == "__main__":
    sys.exit(main())
