"""`writ.Client` and `writ.AsyncClient` against a real `writ serve --memory`."""

from __future__ import annotations

import pytest

import writ


def test_check_and_batch_check(writ_url: str, store_id: str) -> None:
    with writ.Client(writ_url, store_id) as client:
        assert client.check("user:anne", "viewer", "document:plans") is True
        assert client.check("user:anne", "viewer", "document:secret") is False
        answers = client.batch_check(
            [("user:anne", "viewer", "document:plans"), writ.CheckItem("user:anne", "viewer", "document:secret")]
        )
        assert answers == [True, False]


def test_obo_check_names_the_failing_principal_and_link(writ_url: str, store_id: str) -> None:
    with writ.Client(writ_url, store_id) as client:
        allowed = client.obo_check(["user:anne", "agent:planner"], "viewer", "document:plans")
        assert allowed.allowed and allowed.denied_by is None and allowed.revision > 0
        deputy = client.obo_check(["user:anne", "agent:planner"], "viewer", "document:secret")
        assert not deputy.allowed
        assert deputy.denied_by is not None
        assert (deputy.denied_by["kind"], deputy.denied_by["subject"]) == ("principal", "user:anne")
        link = client.obo_check(["user:anne", "agent:planner", "agent:researcher"], "can_call", "tool:search")
        assert link.denied_by is not None
        assert (link.denied_by["kind"], link.denied_by["subject"]) == ("delegation", "agent:researcher")


def test_audience_check_filter_and_explain(writ_url: str, store_id: str) -> None:
    with writ.Client(writ_url, store_id) as client:
        audience = client.audience_check(["user:anne", "agent:planner"], "viewer", ["document:plans", "document:secret"])
        assert [(r.object, r.allowed, r.denied_for) for r in audience.results] == [
            ("document:plans", True, []),
            ("document:secret", False, ["user:anne"]),
        ]
        visible = client.filter(["user:anne", "agent:planner"], "viewer", "document", ["secret", "plans", "none"])
        assert visible.allowed_ids == ["plans"]
        explained = client.explain("viewer", "document:secret", user="user:anne")
        assert explained["allowed"] is False
        with pytest.raises(ValueError):
            client.explain("viewer", "document:secret")


def test_errors_carry_the_servers_code(writ_url: str, store_id: str) -> None:
    with writ.Client(writ_url, store_id) as client:
        with pytest.raises(writ.WritError) as caught:
            client.check("user:anne", "no_such_relation", "document:plans")
    assert caught.value.status == 400
    assert caught.value.code == "validation_error"
    assert "no_such_relation" in caught.value.message
    with writ.Client(writ_url, "01HNOSUCHSTORE0000000000000") as client:
        with pytest.raises(writ.WritError) as caught:
            client.check("user:anne", "viewer", "document:plans")
    assert caught.value.code == "store_id_not_found"


@pytest.mark.anyio
async def test_async_client_mirrors_the_client(writ_url: str, store_id: str) -> None:
    async with writ.AsyncClient(writ_url, store_id) as client:
        decision = await client.obo_check(["user:anne", "agent:planner"], "viewer", "document:plans")
        assert decision.allowed
        assert (await client.filter(["user:anne"], "viewer", "document", ["plans", "secret"])).allowed_ids == ["plans"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_retrieval_calls_send_and_read_the_design_shapes() -> None:
    """The DESIGN §11 routes as `Call`s: what each sends, and how it reads the documented answer."""
    from writ.client import acl_tag_changes_call, acl_tags_call, memberships_call, visibility_call

    visibility = visibility_call(["user:anne"], "viewer", "document", max_ids=100)
    assert (visibility.method, visibility.route) == ("POST", "writ/visibility")
    assert visibility.body == {"principals": ["user:anne"], "relation": "viewer", "object_type": "document", "max_ids": 100}
    assert visibility.read({"visible": 2, "total": 9, "strategy": "ids", "ids": ["a", "b"], "revision": 7}) == writ.Visibility(
        visible=2, total=9, strategy="ids", revision=7, ids=["a", "b"]
    )
    assert visibility.read({"visible": 5000, "total": 9000, "strategy": "acl_tags", "revision": 7}).ids is None

    tags = acl_tags_call("document", "viewer", page_size=2)
    assert (tags.method, tags.route, tags.body) == ("GET", "writ/acl-tags", None)
    assert tags.params == {"object_type": "document", "relation": "viewer", "page_size": 2}
    page = {"exact": True, "revision": 7, "objects": [{"object": "document:d1", "tags": ["group:eng#member"]}], "continuation_token": "x"}
    objects = [writ.ObjectTags(object="document:d1", tags=["group:eng#member"])]
    assert tags.read(page) == writ.AclTags(exact=True, revision=7, objects=objects, continuation_token="x")

    changes = acl_tag_changes_call("document", "viewer", 7)
    assert (changes.route, changes.params) == ("writ/acl-tags/changes", {"object_type": "document", "relation": "viewer", "after_revision": 7})
    answer = changes.read({"exact": True, "objects": [{"object": "document:d1", "tags": []}], "revision": 9, "continuation_token": ""})
    objects = [writ.ObjectTags(object="document:d1", tags=[])]
    assert answer == writ.AclTagChanges(exact=True, objects=objects, revision=9, continuation_token="")

    memberships = memberships_call("user:anne")
    assert (memberships.method, memberships.route, memberships.body) == ("POST", "writ/memberships", {"principal": "user:anne"})
    assert memberships.read({"memberships": ["user:anne", "user:*"], "revision": 3}) == writ.Memberships(memberships=["user:anne", "user:*"], revision=3)


def test_list_objects_and_the_filter_counts(writ_url: str, store_id: str) -> None:
    with writ.Client(writ_url, store_id) as client:
        assert sorted(client.list_objects("agent:planner", "viewer", "document")) == ["document:plans", "document:secret"]
        visible = client.filter(["user:anne"], "viewer", "document", ["plans", "secret"])
        assert visible.allowed_ids == ["plans"]
        assert (visible.examined, visible.visible) == (2, 1)
