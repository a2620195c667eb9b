"""The scenario every client test drives: `schema/drive.fga`, a few tuples, and the answers that
model and those tuples imply (worked out by hand from the model's rewrites, noted beside each).

Tuples are `(user, relation, object)`, the order OpenFGA's clients take them in.
"""

MODEL_FILE = "schema/drive.fga"

WRITES = [
    ("user:bob", "member", "group:eng"),
    ("group:eng#member", "member", "group:all"),
    ("user:carl", "member", "group:all"),
    ("user:anne", "owner", "folder:root"),
    ("folder:root", "parent", "folder:sub"),
    ("group:all#member", "viewer", "folder:sub"),
    ("folder:sub", "parent", "document:plan"),
    ("user:dave", "editor", "document:plan"),
    ("user:bob", "blocked", "document:plan"),
    ("user:*", "viewer", "document:memo"),
    ("user:erin", "owner", "document:memo"),
    ("group:eng#member", "editor", "document:spec"),
    ("user:zed", "viewer", "document:spec"),
]

# Written above, then deleted in a second request.
DELETES = [("user:zed", "viewer", "document:spec")]

# The tuples left after the delete.
REMAINING = [t for t in WRITES if t not in DELETES]

CHECKS = [
    # anne owns folder:root → viewer of root → of sub (viewer from parent) → of plan.
    ("user:anne", "viewer", "document:plan", True),
    ("user:anne", "can_view", "document:plan", True),
    # bob ∈ eng ⊂ all, and all#member views sub → bob views plan; but bob is blocked.
    ("user:bob", "viewer", "document:plan", True),
    ("user:bob", "can_view", "document:plan", False),
    ("user:carl", "can_view", "document:plan", True),
    # can_share = editor and viewer; dave is a direct editor (editor ⊂ viewer).
    ("user:dave", "can_share", "document:plan", True),
    ("user:anne", "can_share", "document:plan", False),
    ("user:anne", "editor", "document:plan", False),
    # user:* views memo; erin owns it (owner ⊂ editor ⊂ viewer).
    ("user:nobody", "viewer", "document:memo", True),
    ("user:nobody", "can_share", "document:memo", False),
    ("user:erin", "can_share", "document:memo", True),
    ("user:bob", "editor", "document:spec", True),
    ("user:carl", "editor", "document:spec", False),
    # zed's only tuple was deleted.
    ("user:zed", "viewer", "document:spec", False),
    ("user:anne", "viewer", "folder:sub", True),
    ("user:carl", "viewer", "folder:root", False),
]

# (user, relation, type) → object ids
LIST_OBJECTS = [
    ("user:bob", "viewer", "document", ["memo", "plan", "spec"]),
    ("user:bob", "can_view", "document", ["memo", "spec"]),
    ("user:anne", "viewer", "document", ["memo", "plan"]),
    ("user:bob", "editor", "document", ["spec"]),
    ("user:carl", "viewer", "folder", ["sub"]),
    ("user:zed", "viewer", "document", ["memo"]),
]

# (object, relation, user-filter type) → users as "type:id" ("user:*" for the wildcard)
LIST_USERS = [
    ("document:plan", "viewer", "user", ["user:anne", "user:bob", "user:carl", "user:dave"]),
    ("document:plan", "can_view", "user", ["user:anne", "user:carl", "user:dave"]),
    ("document:memo", "viewer", "user", ["user:*", "user:erin"]),
    ("group:all", "member", "user", ["user:bob", "user:carl"]),
]

# (relation, object) → OpenFGA's expand tree (one level: direct subjects and rewrites, unexpanded)
EXPAND = [
    (
        "member",
        "group:eng",
        {"root": {"name": "group:eng#member", "leaf": {"users": {"users": ["user:bob"]}}}},
    ),
    (
        "editor",
        "document:spec",
        {
            "root": {
                "name": "document:spec#editor",
                "union": {
                    "nodes": [
                        {"name": "document:spec#editor", "leaf": {"users": {"users": ["group:eng#member"]}}},
                        {"name": "document:spec#editor", "leaf": {"computed": {"userset": "document:spec#owner"}}},
                    ]
                },
            }
        },
    ),
]

# The changelog: every write in order, then the delete.
CHANGES = [("TUPLE_OPERATION_WRITE", t) for t in WRITES] + [("TUPLE_OPERATION_DELETE", t) for t in DELETES]

ASSERTIONS = [
    ("user:anne", "viewer", "document:plan", True),
    ("user:bob", "can_view", "document:plan", False),
]


def tuple_text(t):
    user, relation, obj = t
    return f"{obj}#{relation}@{user}"
