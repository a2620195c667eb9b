#!/usr/bin/env python3
"""Issue 34's workload for the HTTP benches, as files `benches/http_wrk.sh` loads and replays.

The same seeded graph `benches/support/issue34.rs` builds for `benches/library.rs` (the same linear
congruential generator, drawn in the same order, so both benches see the same tuples and checks;
`tests/bench_workload.rs` compares the two through `--digest`): 10,000 users;
1,000 groups in three levels (100 / 300 / 600), each group below the top in one or two groups of
the level above, each user directly in 1-3 groups; a folder tree 5 deep with branching 4 (1,365
folders); 100,000 documents, each in a random leaf folder; `viewer` grants (each folder 0-2, each
document one with probability 0.1; 80% `group:gN#member`, 20% a user): about 134k tuples. Checks
`document:dN#viewer@user:uM`: even ones drawn among members of something granted on the
document's chain (allowed by construction), odd ones uniform (mostly denied).

Writes into OUT_DIR:
  model.fga          the model (DSL)
  writes-N.json      `POST /stores/{id}/write` bodies of at most WRITE_CHUNK tuples each
  checks.jsonl       one `/check` body per line (CHECK_PAIRS varied pairs, in draw order)
  batches.jsonl      one `/batch-check` body of 1,000 checks per line (BATCHES of them)
  expected.json      {"allowed_by_construction": [correlation ids of the first batch's even checks]}

Usage: python3 benches/http_workload.py OUT_DIR [WRITE_CHUNK]
       python3 benches/http_workload.py --digest N   # prints the workload's fingerprint with N checks
Standard library only.
"""

import json
import os
import re
import sys



def library_model():
    """The model of `benches/support/issue34.rs` (its `MODEL` constant), so the benches share one."""
    text = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "support", "issue34.rs")).read()
    found = re.search(r'pub const MODEL: &str = "(.*?)";', text, re.S)
    if not found:
        raise SystemExit("benches/support/issue34.rs has no `pub const MODEL: &str = \"...\";` to read the model from")
    return found.group(1)


USERS = 10_000
LEVELS = [100, 300, 600]
DEPTH = 5
FANOUT = 4
DOCUMENTS = 100_000
CHECK_PAIRS = 20_000
BATCH = 1_000
BATCHES = 20
MASK = (1 << 64) - 1


class Lcg:
    """benches/library.rs's generator: the same seed gives the same draws."""

    def __init__(self, seed):
        self.state = seed

    def below(self, n):
        self.state = (self.state * 6_364_136_223_846_793_005 + 1_442_695_040_888_963_407) & MASK
        return (self.state >> 33) % n


def workload(checks_wanted):
    rng = Lcg(0x5EED_0034)
    tuples = []
    starts = [0, LEVELS[0], LEVELS[0] + LEVELS[1]]
    groups = sum(LEVELS)
    children = [[] for _ in range(groups)]
    for level in range(1, len(LEVELS)):
        for group in range(starts[level], starts[level] + LEVELS[level]):
            first = starts[level - 1] + rng.below(LEVELS[level - 1])
            parents = [first]
            if rng.below(2) == 1:
                second = starts[level - 1] + rng.below(LEVELS[level - 1])
                if second != first:
                    parents.append(second)
            for parent in parents:
                children[parent].append(group)
                tuples.append((f"group:g{parent}", "member", f"group:g{group}#member"))
    members = [[] for _ in range(groups)]
    for user in range(USERS):
        chosen = []
        for _ in range(1 + rng.below(3)):
            group = rng.below(groups)
            if group not in chosen:
                chosen.append(group)
                members[group].append(user)
                tuples.append((f"group:g{group}", "member", f"user:u{user}"))
    folders = sum(FANOUT**d for d in range(DEPTH + 1))
    first_leaf = folders - FANOUT**DEPTH
    for folder in range(1, folders):
        tuples.append((f"folder:f{folder}", "parent", f"folder:f{(folder - 1) // FANOUT}"))

    def grant():
        if rng.below(10) < 8:
            return ("group", rng.below(groups))
        return ("user", rng.below(USERS))

    def subject(grantee):
        kind, n = grantee
        return f"user:u{n}" if kind == "user" else f"group:g{n}#member"

    folder_grants = [[] for _ in range(folders)]
    for folder in range(folders):
        for _ in range(rng.below(3)):
            grantee = grant()
            if all(subject(g) != subject(grantee) for g in folder_grants[folder]):
                folder_grants[folder].append(grantee)
                tuples.append((f"folder:f{folder}", "viewer", subject(grantee)))
    document_folder, document_grant = [], []
    for document in range(DOCUMENTS):
        folder = first_leaf + rng.below(FANOUT**DEPTH)
        document_folder.append(folder)
        tuples.append((f"document:d{document}", "parent", f"folder:f{folder}"))
        granted = grant() if rng.below(10) == 0 else None
        if granted is not None:
            tuples.append((f"document:d{document}", "viewer", subject(granted)))
        document_grant.append(granted)
    checks = []
    while len(checks) < checks_wanted:
        document = rng.below(DOCUMENTS)
        if len(checks) % 2 == 1:
            checks.append((document, rng.below(USERS)))
            continue
        chain = [document_grant[document]] if document_grant[document] is not None else []
        folder = document_folder[document]
        while folder is not None:
            chain.extend(folder_grants[folder])
            folder = (folder - 1) // FANOUT if folder > 0 else None
        if not chain:
            continue
        kind, n = chain[rng.below(len(chain))]
        if kind == "user":
            checks.append((document, n))
            continue
        below, at = [n], 0
        while at < len(below):
            below.extend(children[below[at]])
            at += 1
        with_members = [g for g in below if members[g]]
        if with_members:
            group = with_members[rng.below(len(with_members))]
            checks.append((document, members[group][rng.below(len(members[group]))]))
    return tuples, checks


def key(document, user):
    return {"user": f"user:u{user}", "relation": "viewer", "object": f"document:d{document}"}


def digest(checks_wanted):
    """`benches/support/issue34.rs`'s `digest`: tuple and check counts and the 64-bit FNV-1a of every
    tuple as `object#relation@subject` and every check as `dD uU`, one a line, in draw order."""
    tuples, checks = workload(checks_wanted)
    value = 0xCBF29CE484222325
    lines = [f"{o}#{r}@{s}\n" for (o, r, s) in tuples] + [f"d{d} u{u}\n" for (d, u) in checks]
    for byte in "".join(lines).encode():
        value = ((value ^ byte) * 0x100000001B3) & MASK
    return f"tuples={len(tuples)} checks={len(checks)} fnv1a64={value:016x}"


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--digest":
        print(digest(int(sys.argv[2])))
        return
    out = sys.argv[1]
    chunk = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    os.makedirs(out, exist_ok=True)
    tuples, checks = workload(max(CHECK_PAIRS, BATCH * BATCHES))
    with open(os.path.join(out, "model.fga"), "w") as f:
        f.write(library_model())
    for n, start in enumerate(range(0, len(tuples), chunk)):
        keys = [{"user": s, "relation": r, "object": o} for (o, r, s) in tuples[start : start + chunk]]
        with open(os.path.join(out, f"writes-{n:03}.json"), "w") as f:
            json.dump({"writes": {"tuple_keys": keys}}, f, separators=(",", ":"))
    with open(os.path.join(out, "checks.jsonl"), "w") as f:
        for document, user in checks[:CHECK_PAIRS]:
            f.write(json.dumps({"tuple_key": key(document, user)}, separators=(",", ":")) + "\n")
    with open(os.path.join(out, "batches.jsonl"), "w") as f:
        for b in range(BATCHES):
            items = [
                {"tuple_key": key(document, user), "correlation_id": f"c{i}"}
                for i, (document, user) in enumerate(checks[b * BATCH : (b + 1) * BATCH])
            ]
            f.write(json.dumps({"checks": items}, separators=(",", ":")) + "\n")
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"allowed_by_construction": [f"c{i}" for i in range(0, BATCH, 2)]}, f)
    print(f"workload: {len(tuples)} tuples, {CHECK_PAIRS} check pairs, {BATCHES} batches of {BATCH}", file=sys.stderr)


if __name__ == "__main__":
    main()
