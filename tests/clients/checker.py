"""Shared pieces of the client acceptance tests (stdlib only).

`Checker` compares each answer with the expected one, prints one line per mismatch, and ends with
`RESULT passed=N failed=M`, which `.ci/clients.sh` adds up. `http_json` is a tiny urllib client
for the plain-HTTP tests.
"""

import json
import sys
import traceback
import urllib.error
import urllib.request


class Checker:
    """Counts comparisons; a failed one prints what was asked, what came back and what was expected."""

    def __init__(self, suite):
        self.suite = suite
        self.passed = 0
        self.failed = 0

    def equal(self, name, got, want):
        if got == want:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL [{self.suite}] {name}\n  got:  {got!r}\n  want: {want!r}", flush=True)

    def true(self, name, condition, detail=""):
        self.equal(name + (f" ({detail})" if detail else ""), bool(condition), True)

    def run(self, name, step):
        """Runs one step; an exception (a client error, a refused request) counts as one failure."""
        try:
            step()
        except Exception:  # noqa: BLE001 - any client exception is a failed acceptance step
            self.failed += 1
            print(f"FAIL [{self.suite}] {name}: raised\n{traceback.format_exc()}", flush=True)

    def finish(self):
        print(f"RESULT suite={self.suite} passed={self.passed} failed={self.failed}", flush=True)
        return 0 if self.failed == 0 and self.passed > 0 else 1


def http_json(method, url, body=None, headers=None, timeout=10):
    """Sends `body` as JSON (or raw bytes); returns `(status, parsed JSON or None)`; 4xx/5xx do not raise."""
    data = None
    all_headers = dict(headers or {})
    if isinstance(body, (bytes, str)):
        data = body.encode() if isinstance(body, str) else body
    elif body is not None:
        data = json.dumps(body).encode()
        all_headers.setdefault("content-type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def base_url():
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} http://127.0.0.1:PORT [more args]")
    return sys.argv[1].rstrip("/")
