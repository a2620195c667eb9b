"""Added latency of Writ's MCP gateway: `tools/call` through `writ serve --gateway` vs straight to
the same upstream (the `mcp` SDK `MCPServer` of tests/clients/mcp, stateless, JSON answers), under
the same load: one client, one keep-alive connection, requests alternating direct / gateway so
both see the same machine noise. Not a test: it prints the figures.

    WRIT_BIN=target/release/writ $VENV/bin/python benches/mcp_gateway.py [--calls 3000]

($VENV: the venv .ci/mcp.sh makes from tests/clients/mcp/requirements.txt.)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "clients" / "mcp"))
import conftest  # noqa: E402
import mint  # noqa: E402


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="writ-mcp-bench-"))
    key = mint.load_or_create_key(work / "keys")
    processes = []
    try:
        port = conftest.free_port()
        upstream = f"http://127.0.0.1:{port}/mcp"
        log = work / "upstream.log"
        with log.open("w") as out:
            processes.append(subprocess.Popen(
                [sys.executable, str(conftest.HERE / "upstream_server.py"), str(port), "/dev/null", "--json", "--stateless"],
                stdout=out, stderr=out))
        conftest.wait_for(upstream, processes[-1], log)
        data, writ_log = work / "data", work / "writ.log"
        store = conftest.make_store(data, writ_log)
        writ_port = conftest.free_port()
        writ_url = f"http://127.0.0.1:{writ_port}"
        config = work / "gateway.yaml"
        config.write_text(conftest.gateway_config(store, writ_url, work / "keys" / "jwks.json", "enforce", upstream, upstream))
        # the bench measures the gateway, not the decision log's writes: deny-only, as in production
        processes.append(conftest.start_writ(data, writ_log, writ_port, "--gateway", str(config), decision_log="deny"))
        gateway = f"{writ_url}/mcp/sdk"
        token = mint.sign(mint.claims("anne", gateway, client="planner"), key)
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "create_issue", "arguments": {"repo": "acme", "title": "t"}}}
        base = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}
        with httpx.Client(headers=base, timeout=30) as client:
            def timed(url: str, headers: dict) -> float:
                start = time.perf_counter()
                answer = client.post(url, json=body, headers=headers)
                elapsed = time.perf_counter() - start
                assert answer.status_code == 200 and "result" in answer.json(), answer.text
                return elapsed * 1000

            direct, through = [], []
            for i in range(args.warmup + args.calls):
                d = timed(upstream, {"authorization": "Bearer upstream-secret-42"})
                g = timed(gateway, {"authorization": f"Bearer {token}"})
                if i >= args.warmup:
                    direct.append(d)
                    through.append(g)
        print(f"tools/call, {args.calls} calls each, alternating, one connection (ms)")
        for name, samples in [("direct", direct), ("gateway", through)]:
            print(f"  {name:8} p50 {percentile(samples, 50):.3f}  p99 {percentile(samples, 99):.3f}  "
                  f"mean {statistics.fmean(samples):.3f}")
        print(f"  added    p50 {percentile(through, 50) - percentile(direct, 50):.3f}  "
              f"p99 {percentile(through, 99) - percentile(direct, 99):.3f}")
    finally:
        for process in processes:
            conftest.stop(process)


if __name__ == "__main__":
    main()
