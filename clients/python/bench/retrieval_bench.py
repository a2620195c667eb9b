#!/usr/bin/env python3
"""The retriever at ~1M tuples (issue 31): end-to-end latency and vector-store round trips of
`writ.retrieval.Retriever` against plain post-filtering (top-k, then `writ/filter`), for
principals who see 100 %, 50 %, 10 %, 1 % and 0.1 % of the documents.

Run by hand, not by CI (it takes minutes); `benches/README.md` has the command and the figures:

    WRIT_BIN=target/release/writ ~/.cache/writ-ci/venv-retrieval-*/bin/python \\
        clients/python/bench/retrieval_bench.py

It starts `writ serve --memory`, writes the tuples over HTTP, builds a LanceDB table on disk
(flat, exact search: no index, so the ground truth is the store's own order) of synthetic
clustered vectors (seeded, no model downloads) with each document's ACL tags, then for each
principal times `--queries` retrievals of k and the same queries post-filtered. Every retrieval
is checked against the exact nearest neighbours of the visible set (recall@k must be 1.0).

Tuples: one `viewer` per document for `group:everyone#member` (p100's group), the 50 %, 10 %
(through `group:tenth`), 1 % and 0.1 % principals' grants, and `--noise` grants per document to
random other users, so the index holds about 1M tuples at the default sizes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from writ import Client
from writ.retrieval import Options, Retriever
from writ.retrieval.lance_store import LanceStore

CHECKOUT = Path(__file__).resolve().parents[3]
# The retrieval tests' model and server start (`tests_retrieval/conftest.py`): one copy of each.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests_retrieval"))
from conftest import MODEL, start_writ  # noqa: E402

DIMENSIONS = 32
CLUSTERS = 64
SEED = 20261207
FRACTIONS = {"user:p100": 1.0, "user:p50": 0.5, "user:p10": 0.1, "user:p1": 0.01, "user:p01": 0.001}
GROUPS = {"user:p100": "group:everyone", "user:p10": "group:tenth"}
NOISE_USERS = 50_000


def corpus(docs: int, noise: int) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, np.ndarray], list[list[str]]]:
    """Ids, vectors, query vectors, each principal's visible rows, each document's ACL tags."""
    rng = np.random.default_rng(SEED)
    centres = rng.normal(scale=4.0, size=(CLUSTERS, DIMENSIONS))
    labels = rng.integers(0, CLUSTERS, size=docs)
    vectors = (centres[labels] + rng.normal(size=(docs, DIMENSIONS))).astype(np.float32)
    queries = (centres[rng.integers(0, CLUSTERS, size=64)] + rng.normal(scale=0.5, size=(64, DIMENSIONS))).astype(np.float32)
    ids = [f"d{i}" for i in range(docs)]
    tags: list[list[str]] = [[] for _ in range(docs)]
    visible: dict[str, np.ndarray] = {}
    for principal, fraction in FRACTIONS.items():
        rows = np.sort(rng.permutation(docs)[: max(1, round(fraction * docs))])
        visible[principal] = rows
        tag = f"{GROUPS[principal]}#member" if principal in GROUPS else principal
        for row in rows:
            tags[row].append(tag)
    for row, users in enumerate(rng.integers(0, NOISE_USERS, size=(docs, noise))):
        tags[row].extend(f"user:n{u}" for u in sorted(set(users.tolist())))
    return ids, vectors, queries, visible, tags


def load_writ(url: str, ids: list[str], tags: list[list[str]]) -> tuple[str, int]:
    """A store with the model and every tuple; returns its id and the tuple count."""
    with httpx.Client(base_url=url, timeout=120) as http:
        store = http.post("/stores", json={"name": "retrieval-bench"}).raise_for_status().json()["id"]
        http.put(f"/stores/{store}/writ/model", content=MODEL, headers={"Content-Type": "text/plain"}).raise_for_status()
        keys = [{"user": p, "relation": "member", "object": g} for p, g in GROUPS.items()]
        keys += [{"user": tag, "relation": "viewer", "object": f"document:{doc}"} for doc, doc_tags in zip(ids, tags) for tag in doc_tags]
        for start in range(0, len(keys), 10_000):
            batch = {"writes": {"tuple_keys": keys[start : start + 10_000]}}
            http.post(f"/stores/{store}/write", json=batch).raise_for_status()
    return str(store), len(keys)


def load_lance(folder: Path, ids: list[str], vectors: np.ndarray, tags: list[list[str]]) -> Any:
    import lancedb
    import pyarrow as pa

    table = pa.table(
        {
            "doc_id": pa.array(ids, pa.string()),
            "acl_tags": pa.array(tags, pa.list_(pa.string())),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), DIMENSIONS),
        }
    )
    return lancedb.connect(folder).create_table("bench", data=table)


def exact(vectors: np.ndarray, rows: np.ndarray, ids: list[str], query: np.ndarray, k: int) -> list[str]:
    distances = ((vectors[rows] - query) ** 2).sum(axis=1)
    return [ids[rows[j]] for j in np.argsort(distances, kind="stable")[:k]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--docs", type=int, default=220_000, help="documents (default 220,000: ~1M tuples with --noise 3)")
    parser.add_argument("--noise", type=int, default=3, help="viewer grants per document to random other users")
    parser.add_argument("--queries", type=int, default=20, help="queries per principal")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    binary = Path(os.environ.get("WRIT_BIN", CHECKOUT / "target" / "release" / "writ"))
    if not binary.is_file():
        print(f"no writ binary at {binary}: `cargo build --release` or set WRIT_BIN", file=sys.stderr)
        return 2

    started = time.monotonic()
    ids, vectors, queries, visible, tags = corpus(args.docs, args.noise)
    queries = queries[: args.queries]
    with tempfile.TemporaryDirectory(prefix="writ-retrieval-bench-") as scratch:
        with start_writ(binary, Path(scratch) / "writ.log", "--max-tuples-per-write", "10000") as url:
            store_id, tuples = load_writ(url, ids, tags)
            loaded = time.monotonic()
            print(f"writ: {tuples:,} tuples for {args.docs:,} documents loaded in {loaded - started:.0f} s")
            table = load_lance(Path(scratch) / "lance", ids, vectors, tags)
            print(f"lancedb: {table.count_rows():,} rows in {time.monotonic() - loaded:.0f} s (flat search)")
            store = LanceStore(table)
            with Client(url, store_id, timeout=120) as client:
                retriever = Retriever(client, store, relation="viewer", object_type="document", options=Options())
                rows = [run(client, retriever, store, principal, vectors, ids, visible[principal], queries, args.k) for principal in FRACTIONS]
    header = ("principal", "visible", "strategy", "retriever ms", "searches", "writ calls", "hits", "post-filter ms", "post-filter hits")
    print("\n" + " | ".join(header))
    for row in rows:
        print(" | ".join(str(cell) for cell in row))
    return 0


def run(
    client: Client,
    retriever: Retriever,
    store: LanceStore,
    principal: str,
    vectors: np.ndarray,
    ids: list[str],
    rows: np.ndarray,
    queries: np.ndarray,
    k: int,
) -> tuple[Any, ...]:
    """One principal's row: medians over the queries (a first, untimed query warms both sides)."""
    retriever.search(principal, queries[0].tolist(), k)
    times, searches, calls, hits, strategies = [], [], [], [], set()
    post_times, post_hits = [], []
    for query in queries:
        vector = query.tolist()
        began = time.perf_counter()
        found = retriever.search(principal, vector, k)
        times.append((time.perf_counter() - began) * 1000)
        got = [hit.id for hit in found.hits]
        want = exact(vectors, rows, ids, query, k)
        if got != want:
            raise AssertionError(f"{principal}: recall below 1.0: got {got}, want {want}")
        if found.underfilled:
            raise AssertionError(f"{principal}: the retriever under-filled")
        searches.append(found.rounds)
        calls.append(found.writ_calls)
        hits.append(len(got))
        strategies.add(found.strategy)
        # Plain post-filtering: the store's top-k, then whatever of it `filter` lets through.
        began = time.perf_counter()
        top = store.search(vector, k, 0, None)
        allowed = client.filter([principal], "viewer", "document", [hit.id for hit in top]).allowed_ids
        post_times.append((time.perf_counter() - began) * 1000)
        post_hits.append(len(allowed))
    return (
        principal,
        f"{len(rows):,} ({len(rows) / len(ids):.1%})",
        "/".join(sorted(strategies)),
        f"{statistics.median(times):.1f}",
        f"{statistics.median(searches):g}",
        f"{statistics.median(calls):g}",
        f"{statistics.median(hits):g}/{k}",
        f"{statistics.median(post_times):.1f}",
        f"{statistics.median(post_hits):g}/{k} (min {min(post_hits)})",
    )


if __name__ == "__main__":
    sys.exit(main())
