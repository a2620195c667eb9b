"""Drives a running Writ with OpenFGA's own Python SDK (`openfga-sdk`), unchanged, and compares
every answer with the one `drive_case` derives from the model and tuples.

    python sdk_test.py http://127.0.0.1:PORT /path/to/fga

The model is written with the `fga` CLI (`fga model write --file schema/drive.fga`), as a user would.
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checker import Checker, base_url  # noqa: E402
import drive_case as case  # noqa: E402

from openfga_sdk import ClientConfiguration  # noqa: E402
from openfga_sdk.client.models import (  # noqa: E402
    ClientAssertion,
    ClientBatchCheckItem,
    ClientBatchCheckRequest,
    ClientCheckRequest,
    ClientExpandRequest,
    ClientListObjectsRequest,
    ClientListRelationsRequest,
    ClientReadChangesRequest,
    ClientTuple,
    ClientWriteRequest,
)
from openfga_sdk.client.models.list_users_request import ClientListUsersRequest  # noqa: E402
from openfga_sdk.client.models.write_conflict_opts import (  # noqa: E402
    ClientWriteRequestOnDuplicateWrites,
    ClientWriteRequestOnMissingDeletes,
    ConflictOptions,
)
from openfga_sdk.exceptions import ApiException  # noqa: E402
from openfga_sdk.models import CreateStoreRequest, FgaObject, ReadRequestTupleKey, UserTypeFilter  # noqa: E402
from openfga_sdk.sync import OpenFgaClient  # noqa: E402


def client_tuple(t):
    user, relation, obj = t
    return ClientTuple(user=user, relation=relation, object=obj)


def strip_none(value):
    """The SDK's `to_dict()` lists every field, set or not; OpenFGA's JSON omits the unset ones."""
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_none(v) for v in value]
    return value


def user_text(user):
    if user.object is not None:
        return f"{user.object.type}:{user.object.id}"
    if user.wildcard is not None:
        return f"{user.wildcard.type}:*"
    return f"{user.userset.type}:{user.userset.id}#{user.userset.relation}"


def main():
    url = base_url()
    fga = sys.argv[2]
    check = Checker("sdk")
    fga_client = OpenFgaClient(ClientConfiguration(api_url=url))
    state = {}

    def create_store():
        store = fga_client.create_store(CreateStoreRequest(name="sdk-acceptance"))
        check.true("create_store returns an id", store.id, repr(store))
        check.equal("create_store name", store.name, "sdk-acceptance")
        state["store"] = store.id
        fga_client.set_store_id(store.id)
        check.equal("get_store", fga_client.get_store().id, store.id)
        listed = [s.id for s in fga_client.list_stores().stores]
        check.true("list_stores includes the new store", store.id in listed, repr(listed))

    check.run("create store", create_store)
    if "store" not in state:
        return check.finish()

    def write_model():
        out = subprocess.run(
            [fga, "model", "write", "--api-url", url, "--store-id", state["store"], "--file", case.MODEL_FILE],
            capture_output=True,
            text=True,
            timeout=30,
        )
        check.equal("fga model write exit code", out.returncode, 0)
        model_id = json.loads(out.stdout)["authorization_model_id"]
        state["model"] = model_id
        latest = fga_client.read_latest_authorization_model()
        check.equal("read_latest_authorization_model id", latest.authorization_model.id, model_id)
        types = sorted(t.type for t in latest.authorization_model.type_definitions)
        check.equal("model types", types, ["document", "folder", "group", "user"])
        fga_client.set_authorization_model_id(model_id)
        models = fga_client.read_authorization_models()
        check.equal("read_authorization_models", [m.id for m in models.authorization_models], [model_id])

    check.run("write model with fga", write_model)
    if "model" not in state:
        return check.finish()

    def write_and_delete():
        fga_client.write(ClientWriteRequest(writes=[client_tuple(t) for t in case.WRITES]))
        fga_client.delete_tuples([client_tuple(t) for t in case.DELETES])

    check.run("write and delete tuples", write_and_delete)

    def duplicate_write_is_refused():
        try:
            fga_client.write_tuples([client_tuple(case.WRITES[0])])
            check.true("duplicate write raises", False)
        except ApiException as error:
            check.equal("duplicate write status", error.status, 400)
            code = error.code
            check.equal("duplicate write code", code, "write_failed_due_to_invalid_input")

    check.run("duplicate write", duplicate_write_is_refused)

    def conflict_options_ignore():
        ignore = {
            "conflict": ConflictOptions(
                on_duplicate_writes=ClientWriteRequestOnDuplicateWrites.IGNORE,
                on_missing_deletes=ClientWriteRequestOnMissingDeletes.IGNORE,
            )
        }
        # Re-writing an existing tuple and deleting a missing one are no-ops with `ignore`.
        fga_client.write(
            ClientWriteRequest(writes=[client_tuple(case.WRITES[0])], deletes=[client_tuple(case.DELETES[0])]), ignore
        )
        remaining = fga_client.read(ReadRequestTupleKey(object=case.WRITES[0][2]))
        check.equal(
            "on_duplicate/on_missing ignore change nothing",
            sorted((t.key.user, t.key.relation, t.key.object) for t in remaining.tuples),
            sorted(t for t in case.REMAINING if t[2] == case.WRITES[0][2]),
        )

    check.run("conflict options", conflict_options_ignore)

    def checks():
        for user, relation, obj, want in case.CHECKS:
            got = fga_client.check(ClientCheckRequest(user=user, relation=relation, object=obj)).allowed
            check.equal(f"check {obj}#{relation}@{user}", got, want)

    check.run("check", checks)

    def batch_check():
        items = [
            ClientBatchCheckItem(user=u, relation=r, object=o, correlation_id=f"c{i}")
            for i, (u, r, o, _) in enumerate(case.CHECKS)
        ]
        response = fga_client.batch_check(ClientBatchCheckRequest(checks=items))
        got = {r.correlation_id: (r.allowed, r.error) for r in response.result}
        want = {f"c{i}": (allowed, None) for i, (_, _, _, allowed) in enumerate(case.CHECKS)}
        check.equal("batch_check results by correlation id", got, want)

    check.run("batch check", batch_check)

    def list_objects():
        for user, relation, object_type, want in case.LIST_OBJECTS:
            got = fga_client.list_objects(ClientListObjectsRequest(user=user, relation=relation, type=object_type))
            check.equal(
                f"list_objects {object_type}#{relation}@{user}",
                sorted(got.objects),
                [f"{object_type}:{i}" for i in want],
            )

    check.run("list objects", list_objects)

    def streamed_list_objects():
        for user, relation, object_type, want in case.LIST_OBJECTS:
            got = fga_client.streamed_list_objects(ClientListObjectsRequest(user=user, relation=relation, type=object_type))
            check.equal(
                f"streamed_list_objects {object_type}#{relation}@{user}",
                sorted(r.object for r in got),
                [f"{object_type}:{i}" for i in want],
            )

    check.run("streamed list objects", streamed_list_objects)

    def contextual_tuples():
        # carl gains editor on spec for this request only; the store is unchanged afterwards.
        extra = [ClientTuple(user="user:carl", relation="editor", object="document:spec")]
        got = fga_client.check(
            ClientCheckRequest(user="user:carl", relation="editor", object="document:spec", contextual_tuples=extra)
        )
        check.equal("check with a contextual tuple", got.allowed, True)
        got = fga_client.list_objects(
            ClientListObjectsRequest(user="user:carl", relation="editor", type="document", contextual_tuples=extra)
        )
        check.equal("list_objects with a contextual tuple", got.objects, ["document:spec"])
        got = fga_client.check(ClientCheckRequest(user="user:carl", relation="editor", object="document:spec"))
        check.equal("contextual tuples are not stored", got.allowed, False)

    check.run("contextual tuples", contextual_tuples)

    def list_relations():
        relations = ["owner", "editor", "viewer", "blocked", "can_share", "can_view"]
        got = fga_client.list_relations(
            ClientListRelationsRequest(user="user:dave", relations=relations, object="document:plan")
        )
        check.equal("list_relations dave on plan", sorted(got), ["can_share", "can_view", "editor", "viewer"])

    check.run("list relations", list_relations)

    def list_users():
        for obj, relation, user_type, want in case.LIST_USERS:
            object_type, object_id = obj.split(":", 1)
            got = fga_client.list_users(
                ClientListUsersRequest(
                    object=FgaObject(type=object_type, id=object_id),
                    relation=relation,
                    user_filters=[UserTypeFilter(type=user_type)],
                )
            )
            check.equal(f"list_users {obj}#{relation} [{user_type}]", sorted(user_text(u) for u in got.users), want)

    check.run("list users", list_users)

    def read_paginated():
        seen, token, pages = [], None, 0
        while True:
            options = {"page_size": 5}
            if token:
                options["continuation_token"] = token
            page = fga_client.read(ReadRequestTupleKey(), options)
            pages += 1
            check.true("a read page holds at most page_size tuples", len(page.tuples) <= 5, str(len(page.tuples)))
            seen += [(t.key.user, t.key.relation, t.key.object) for t in page.tuples]
            token = page.continuation_token
            if not token or pages > 20:
                break
        check.equal("read (all pages) returns the remaining tuples", sorted(seen), sorted(case.REMAINING))
        check.true("read took several pages", pages >= 3, f"pages={pages}")
        plan = fga_client.read(ReadRequestTupleKey(object="document:plan"))
        check.equal(
            "read by object",
            sorted((t.key.user, t.key.relation, t.key.object) for t in plan.tuples),
            sorted(t for t in case.REMAINING if t[2] == "document:plan"),
        )
        bob_docs = fga_client.read(ReadRequestTupleKey(user="user:bob", object="document:"))
        check.equal(
            "read by user and object type",
            sorted((t.key.user, t.key.relation, t.key.object) for t in bob_docs.tuples),
            [("user:bob", "blocked", "document:plan")],
        )

    check.run("read", read_paginated)

    def read_changes():
        def all_changes(object_type):
            seen, token = [], None
            for _ in range(20):
                options = {"page_size": 4}
                if token:
                    options["continuation_token"] = token
                page = fga_client.read_changes(ClientReadChangesRequest(type=object_type), options)
                if not page.changes:
                    break
                seen += [(c.operation, (c.tuple_key.user, c.tuple_key.relation, c.tuple_key.object)) for c in page.changes]
                token = page.continuation_token
                if not token:
                    break
            return seen

        check.equal("read_changes (all types, paged)", all_changes(""), case.CHANGES)
        check.equal(
            "read_changes type=document",
            all_changes("document"),
            [c for c in case.CHANGES if c[1][2].startswith("document:")],
        )

    check.run("read changes", read_changes)

    def expand():
        for relation, obj, want in case.EXPAND:
            got = fga_client.expand(ClientExpandRequest(relation=relation, object=obj))
            check.equal(f"expand {obj}#{relation}", strip_none(got.tree.to_dict()), want)

    check.run("expand", expand)

    def assertions():
        fga_client.write_assertions(
            [ClientAssertion(user=u, relation=r, object=o, expectation=e) for u, r, o, e in case.ASSERTIONS]
        )
        got = fga_client.read_assertions()
        check.equal("read_assertions model id", got.authorization_model_id, state["model"])
        check.equal(
            "read_assertions",
            [(a.tuple_key.user, a.tuple_key.relation, a.tuple_key.object, a.expectation) for a in got.assertions],
            case.ASSERTIONS,
        )

    check.run("assertions", assertions)

    def unknown_store_is_404():
        other = OpenFgaClient(ClientConfiguration(api_url=url, store_id="01JAAAAAAAAAAAAAAAAAAAAAAA"))
        try:
            other.get_store()
            check.true("unknown store raises", False)
        except ApiException as error:
            check.equal("unknown store status", error.status, 404)
            check.equal("unknown store code", error.code, "store_id_not_found")

    check.run("unknown store", unknown_store_is_404)
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
