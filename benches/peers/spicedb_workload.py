"""Dumps the workload of SpiceDB's bench_spicedb.py (../shared/peers/spicedb) for benches/spicedb.rs.

    python3 benches/peers/spicedb_workload.py OUT_DIR [--users N --groups N --docs N --seed S]

Writes OUT_DIR/relationships.txt (one `object#relation@subject` a line, exactly the peer's
gen_workload output) and OUT_DIR/queries.txt (`object relation subject`, the peer's 20,000 random
`view` checks, drawn with the same seeded generator). The peer's generator is imported, not copied;
its `driver` import (which needs the peer's venv) is stubbed, since only gen_workload is used.
"""

import argparse
import os
import random
import sys
import types

here = os.path.dirname(os.path.abspath(__file__))
peer = os.environ.get("WRIT_SHARED", os.path.join(here, "..", "..", "..", "shared")) + "/peers/spicedb"
if not os.path.exists(os.path.join(peer, "bench_spicedb.py")):
    sys.exit(f"the SpiceDB peer's bench_spicedb.py is not at {peer} (set WRIT_SHARED)")
sys.path.insert(0, peer)
sys.modules.setdefault("driver", types.SimpleNamespace(SpiceDB=None, CheckPermissionResponse=None))
import bench_spicedb  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--users", type=int, default=10_000)
ap.add_argument("--groups", type=int, default=1_000)
ap.add_argument("--docs", type=int, default=100_000)
ap.add_argument("--seed", type=int, default=42)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
rels, n_folders = bench_spicedb.gen_workload(a.users, a.groups, a.docs, a.seed)
with open(os.path.join(a.out, "relationships.txt"), "w") as f:
    f.writelines(r + "\n" for r in rels)
# bench_spicedb.main(): rnd = random.Random(a.seed + 1); 20,000 (document, view, user) queries
rnd = random.Random(a.seed + 1)
queries = [(f"document:d{rnd.randrange(a.docs)}", "view", f"user:u{rnd.randrange(a.users)}") for _ in range(20_000)]
with open(os.path.join(a.out, "queries.txt"), "w") as f:
    f.writelines(f"{o} {r} {s}\n" for o, r, s in queries)
print(f"workload: {len(rels)} relationships ({a.users} users, {a.groups} groups, {n_folders} folders, {a.docs} docs)")
