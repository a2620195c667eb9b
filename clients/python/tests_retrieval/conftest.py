"""Fixtures for the retrieval tests: a real `writ serve --memory`, a store whose documents are
visible to one principal per fraction (100 %, 50 %, 10 %, 1 %, 0.1 % of N), seeded clustered
vectors, the same documents in real local Qdrant, Chroma and LanceDB collections, and a report
of the figures (round trips, latency) printed at the end of the run.

These tests need the heavy retrieval dependencies (requirements-retrieval.txt, `.ci/retrieval.sh`);
`.ci/python.sh` does not collect this folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pytest

CHECKOUT = Path(__file__).resolve().parents[3]

MODEL = """\
model
  schema 1.1
type user
  relations
    define delegate: [agent]
type agent
type group
  relations
    define member: [user]
type document
  relations
    define viewer: [user, user:*, group#member, agent]
"""

N = 3000
DIMENSIONS = 32
CLUSTERS = 24
K = 10
SEED = 20261207
# principal → fraction of the N documents it may see; the 100 % and 10 % ones through a group.
FRACTIONS = {"user:p100": 1.0, "user:p50": 0.5, "user:p10": 0.1, "user:p1": 0.01, "user:p01": 0.001}
GROUPS = {"user:p100": "group:everyone", "user:p10": "group:tenth"}
# An agent that sees what p50 sees, and acts for p10 (p10 delegates to it; p1 does not).
AGENT = "agent:helper"
DELEGATIONS = [(AGENT, "delegate", "user:p10")]


@dataclass
class Corpus:
    """The synthetic documents: ids `d0..`, vectors, query vectors, and who sees what."""

    ids: list[str]
    vectors: np.ndarray
    queries: np.ndarray
    visible: dict[str, set[str]]
    tags: dict[str, list[str]]

    def truth(self, principal: str, query: np.ndarray, k: int = K) -> list[str]:
        """The exact k nearest documents `principal` sees (L2), by brute force."""
        return self.nearest(self.visible[principal], query, k)

    def nearest(self, visible: set[str], query: np.ndarray, k: int = K) -> list[str]:
        """The exact k nearest of the `visible` documents (L2), by brute force."""
        rows = [i for i, doc in enumerate(self.ids) if doc in visible]
        if not rows:
            return []
        distances = ((self.vectors[rows] - query) ** 2).sum(axis=1)
        return [self.ids[rows[j]] for j in np.argsort(distances, kind="stable")[:k]]


def make_corpus() -> Corpus:
    rng = np.random.default_rng(SEED)
    centres = rng.normal(scale=4.0, size=(CLUSTERS, DIMENSIONS))
    labels = rng.integers(0, CLUSTERS, size=N)
    vectors = (centres[labels] + rng.normal(size=(N, DIMENSIONS))).astype(np.float32)
    queries = (centres[:5] + rng.normal(scale=0.5, size=(5, DIMENSIONS))).astype(np.float32)
    ids = [f"d{i}" for i in range(N)]
    visible: dict[str, set[str]] = {}
    tags: dict[str, list[str]] = {doc: [] for doc in ids}
    for principal, fraction in FRACTIONS.items():
        chosen = rng.permutation(N)[: max(1, round(fraction * N))]
        visible[principal] = {ids[i] for i in chosen}
        tag = f"{GROUPS[principal]}#member" if principal in GROUPS else principal
        for i in chosen:
            tags[ids[i]].append(tag)
            if principal == "user:p50":
                tags[ids[i]].append(AGENT)
    return Corpus(ids, vectors, queries, visible, tags)


def tuples(corpus: Corpus) -> list[dict[str, str]]:
    keys = [{"user": p, "relation": "member", "object": g} for p, g in GROUPS.items()]
    keys += [{"user": u, "relation": r, "object": o} for u, r, o in DELEGATIONS]
    for doc, doc_tags in corpus.tags.items():
        keys += [{"user": tag, "relation": "viewer", "object": f"document:{doc}"} for tag in doc_tags]
    return keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def start_writ(binary: Path, log_path: Path, *arguments: str) -> Iterator[str]:
    """`writ serve --memory` on a free port (with `arguments`), its log in `log_path`; yields its
    URL once `/healthz` answers, stops it on exit. The retriever bench starts its server here too."""
    port = free_port()
    # The server's log goes to a file (a pipe nobody reads would fill up and stall it).
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(binary), "serve", "--memory", "--listen", f"127.0.0.1:{port}", *arguments], stdout=subprocess.DEVNULL, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"writ exited with {process.returncode}: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("writ serve did not start within 30 s")
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def writ_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = Path(os.environ.get("WRIT_BIN", CHECKOUT / "target" / "debug" / "writ"))
    if not binary.is_file():
        pytest.fail(f"the writ binary {binary} does not exist: run `cargo build` or set WRIT_BIN")
    log_path = tmp_path_factory.mktemp("writ") / "writ.log"
    with start_writ(binary, log_path) as url:
        yield url
    print(f"writ log: {log_path}")


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return make_corpus()


@dataclass(frozen=True)
class WritStore:
    url: str
    store_id: str
    model_id: str


def new_store(writ_url: str, corpus: Corpus, name: str) -> WritStore:
    with httpx.Client(base_url=writ_url, timeout=30) as http:
        store = http.post("/stores", json={"name": name}).raise_for_status().json()["id"]
        model = http.put(f"/stores/{store}/writ/model", content=MODEL, headers={"Content-Type": "text/plain"})
        model_id = model.raise_for_status().json()["authorization_model_id"]
        keys = tuples(corpus)
        for start in range(0, len(keys), 1000):
            http.post(f"/stores/{store}/write", json={"writes": {"tuple_keys": keys[start : start + 1000]}}).raise_for_status()
    return WritStore(writ_url, str(store), str(model_id))


@pytest.fixture(scope="session")
def writ_store(writ_url: str, corpus: Corpus) -> WritStore:
    """The store the read-only tests share (tests that write make their own)."""
    return new_store(writ_url, corpus, "retrieval")


def server_has(writ_url: str, store_id: str, route: str, body: dict[str, Any] | None = None) -> bool:
    """Whether the server has a §11 route (an older binary answers 404 `undefined_endpoint`)."""
    if body is None:
        response = httpx.get(f"{writ_url}/stores/{store_id}/{route}", params={"object_type": "document", "relation": "viewer", "after_revision": 0})
    else:
        response = httpx.post(f"{writ_url}/stores/{store_id}/{route}", json=body)
    return not (response.status_code in (404, 405) and "undefined_endpoint" in response.text)


# ---- the vector stores, each holding the corpus with payloads doc_id, text, acl_tags ----


def payload(corpus: Corpus, i: int) -> dict[str, Any]:
    return {"doc_id": corpus.ids[i], "text": f"document {corpus.ids[i]}", "acl_tags": list(corpus.tags[corpus.ids[i]])}


def qdrant_store(corpus: Corpus, name: str) -> Any:
    from qdrant_client import QdrantClient, models

    from writ.retrieval.qdrant_store import QdrantStore

    client = QdrantClient(":memory:")
    client.create_collection(name, vectors_config=models.VectorParams(size=DIMENSIONS, distance=models.Distance.EUCLID))
    client.upload_points(
        name, [models.PointStruct(id=i, vector=corpus.vectors[i].tolist(), payload=payload(corpus, i)) for i in range(N)]
    )
    return QdrantStore(client, name)


def chroma_store(corpus: Corpus, name: str) -> Any:
    import chromadb

    from writ.retrieval.chroma_store import ChromaStore

    client = chromadb.EphemeralClient()
    # Exhaustive-enough HNSW so the ground truth (exact L2) is reachable; no embedding function:
    # the vectors are given, so Chroma never loads its default model.
    collection = client.create_collection(
        name, embedding_function=None, configuration={"hnsw": {"space": "l2", "ef_search": 2000, "ef_construction": 400}}
    )
    for start in range(0, N, 1000):
        rows = range(start, min(N, start + 1000))
        metadatas = []
        for i in rows:
            meta = payload(corpus, i)
            del meta["text"]
            if not meta["acl_tags"]:
                del meta["acl_tags"]
            metadatas.append(meta)
        collection.add(
            ids=[corpus.ids[i] for i in rows],
            embeddings=corpus.vectors[start : start + len(rows)],
            metadatas=metadatas,
            documents=[f"document {corpus.ids[i]}" for i in rows],
        )
    return ChromaStore(collection)


def lance_store(corpus: Corpus, name: str, folder: Path) -> Any:
    import lancedb
    import pyarrow as pa

    from writ.retrieval.lance_store import LanceStore

    schema = pa.schema(
        [
            pa.field("doc_id", pa.string()),
            pa.field("text", pa.string()),
            pa.field("acl_tags", pa.list_(pa.string())),
            pa.field("vector", pa.list_(pa.float32(), DIMENSIONS)),
        ]
    )
    rows = [{**payload(corpus, i), "vector": corpus.vectors[i].tolist()} for i in range(N)]
    table = lancedb.connect(folder).create_table(name, data=rows, schema=schema)
    return LanceStore(table)


STORES = ["qdrant", "chroma", "lancedb"]


def make_store(kind: str, corpus: Corpus, name: str, folder: Path) -> Any:
    if kind == "qdrant":
        return qdrant_store(corpus, name)
    if kind == "chroma":
        return chroma_store(corpus, name)
    return lance_store(corpus, name, folder)


@pytest.fixture(scope="session", params=STORES)
def vector_store(request: pytest.FixtureRequest, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Each store kind, built once for the read-only tests."""
    return make_store(request.param, corpus, f"shared-{request.param}", tmp_path_factory.mktemp(request.param))


# ---- the report: figures each test records, printed after the run ----


@dataclass
class Report:
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


REPORT = Report()


@pytest.fixture(scope="session")
def report() -> Report:
    return REPORT


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT.rows and not REPORT.notes:
        return
    terminalreporter.section("permission-aware retrieval: figures")
    header = ("store", "visible", "method", "queries", "hits/k", "recall@10", "searches/q", "writ calls/q", "ms/q", "underfilled")
    widths = [max(len(str(r[i])) for r in [header, *REPORT.rows]) for i in range(len(header))]
    for row in [header, *REPORT.rows]:
        terminalreporter.write_line("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    for note in REPORT.notes:
        terminalreporter.write_line(note)
