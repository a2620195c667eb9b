"""The gateway's mapping (DESIGN §8), read from the same config file as `writ serve --gateway`.

Mirrors `src/gateway/mapping.rs`, `id.rs` and the chain rule of `token.rs`: an entry is
`{relation, object, approval?}`, a name maps to one entry or a list (all required), `"*"` is the
default; `{tool}` (`{uri}`, `{prompt}`) and `{arguments.PATH}` placeholders; an array argument
gives one check per element. Fail closed: an unknown method, an unmapped name, or an argument
that is missing, not a scalar or not a valid id is a `Denial` or a `MappingError`, never an empty
list of checks. Pure: no I/O except `load_config`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, Union

import yaml

__all__ = [
    "MAX_CHECKS_PER_CALL",
    "MAX_ID_BYTES",
    "Check",
    "ConfigError",
    "Denial",
    "Entry",
    "EntryMap",
    "GatewayConfig",
    "ListPlan",
    "MappingError",
    "ServerMapping",
    "id_problem",
    "load_config",
    "parse_config",
    "principal_chain",
]

MAX_ID_BYTES = 256
MAX_CHECKS_PER_CALL = 256
MAX_ACTOR_DEPTH = 16

Primitive = Literal["tools", "resources", "prompts"]
_NAME_PLACEHOLDER: dict[str, str] = {"tools": "tool", "resources": "uri", "prompts": "prompt"}
_RELATION = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def id_problem(value: str) -> str | None:
    """Why `value` cannot be a Writ object id (`src/gateway/id.rs`), or None when it can."""
    if value == "":
        return "is empty"
    if len(value.encode()) > MAX_ID_BYTES:
        return "is longer than 256 bytes"
    if value.startswith("*"):
        return "starts with `*`"
    for c in value:
        if c in "#:":
            return "contains `#`" if c == "#" else "contains `:`"
    if any(c.isspace() for c in value):
        return "contains whitespace"
    if any(_is_control(c) for c in value):
        return "contains a control character"
    if ".." in re.split(r"[/\\]", value):
        return "contains a `..` path segment"
    return None


def _is_control(c: str) -> bool:
    code = ord(c)
    return code < 0x20 or 0x7F <= code <= 0x9F


class ConfigError(ValueError):
    """The config file was refused; `path` names the key (`servers.github.tools.x[1].object`)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"gateway config `{path}` {message}")
        self.path = path


class MappingError(ValueError):
    """The mapping cannot build a call's checks (JSON-RPC `-32602`): the call is refused."""


@dataclass(frozen=True)
class Denial:
    """Refused by the mapping itself, before any check (JSON-RPC `-32001`)."""

    message: str


@dataclass(frozen=True)
class Check:
    """Every principal of the chain must hold `relation` on `object` (`type:id`)."""

    relation: str
    object: str
    approval_required: bool = False


@dataclass(frozen=True)
class _Template:
    object_type: str
    # A part is ("literal", text), ("name", "") or ("argument", "a.b").
    parts: tuple[tuple[str, str], ...]

    @property
    def uses_arguments(self) -> bool:
        return any(kind == "argument" for kind, _ in self.parts)


@dataclass(frozen=True)
class Entry:
    """One mapping entry."""

    relation: str
    object: _Template
    approval_required: bool = False


def _parse_template(text: str, primitive: Primitive) -> _Template:
    if ":" not in text:
        raise ValueError(f"`{text}` is not of the form `type:id`")
    object_type, id_text = text.split(":", 1)
    if not object_type or any(c in "#@*{}:" or c.isspace() or _is_control(c) for c in object_type):
        raise ValueError(f"`{object_type}` is not a valid type (placeholders go in the id)")
    parts: list[tuple[str, str]] = []
    rest = id_text
    while rest:
        match = re.search(r"[{}]", rest)
        if match is None:
            parts.append(("literal", _literal(rest, text)))
            break
        at = match.start()
        if rest[at] == "}":
            raise ValueError(f"`{text}` has a `}}` without `{{`")
        if at > 0:
            parts.append(("literal", _literal(rest[:at], text)))
        close = rest.find("}", at)
        if close < 0:
            raise ValueError(f"`{text}` has a `{{` without `}}`")
        parts.append(_placeholder(rest[at + 1 : close], primitive))
        rest = rest[close + 1 :]
    if not parts:
        raise ValueError(f"`{text}` has an empty id")
    if len(parts) == 1 and parts[0][0] == "literal":
        problem = id_problem(parts[0][1])
        if problem is not None:
            raise ValueError(f"id `{parts[0][1]}` {problem}")
    return _Template(object_type, tuple(parts))


def _literal(text: str, template: str) -> str:
    if any(c in "#:@" or c.isspace() or _is_control(c) for c in text):
        raise ValueError(f"`{template}` has `#`, `:`, `@` or whitespace in its id")
    return text


def _placeholder(inner: str, primitive: Primitive) -> tuple[str, str]:
    name = _NAME_PLACEHOLDER[primitive]
    if inner == name:
        return ("name", "")
    if inner.startswith("arguments."):
        if primitive == "resources":
            raise ValueError(f"`{{{inner}}}`: resources have no arguments; use `{{uri}}`")
        path = inner[len("arguments.") :]
        if any(segment == "" for segment in path.split(".")):
            raise ValueError(f"`{{{inner}}}` has an empty path segment")
        return ("argument", path)
    if primitive == "resources":
        raise ValueError(f"unknown placeholder `{{{inner}}}`; use `{{{name}}}`")
    raise ValueError(f"unknown placeholder `{{{inner}}}`; use `{{{name}}}` or `{{arguments.NAME}}`")


def _read_entry(value: Any, primitive: Primitive, path: str) -> Entry:
    if not isinstance(value, dict):
        raise ConfigError(path, "must be `{relation, object, approval?}`")
    for key in value:
        if key not in ("relation", "object", "approval"):
            raise ConfigError(f"{path}.{key}", "is not a known key (relation, object, approval)")

    def text(key: str) -> str:
        if key not in value:
            raise ConfigError(f"{path}.{key}", "is required")
        if not isinstance(value[key], str):
            raise ConfigError(f"{path}.{key}", "must be a string")
        return str(value[key])

    relation = text("relation")
    if not _RELATION.match(relation):
        raise ConfigError(f"{path}.relation", f"`{relation}` is not a valid relation name")
    try:
        template = _parse_template(text("object"), primitive)
    except ValueError as error:
        raise ConfigError(f"{path}.object", str(error)) from None
    approval = value.get("approval")
    if approval is not None and approval != "required":
        raise ConfigError(f"{path}.approval", "must be `required` when present")
    return Entry(relation, template, approval == "required")


@dataclass(frozen=True)
class EntryMap:
    """One primitive's map: entries per name, and the `"*"` default."""

    named: Mapping[str, Sequence[Entry]] = field(default_factory=dict)
    default: Sequence[Entry] | None = None

    @staticmethod
    def from_value(value: Any, primitive: Primitive, path: str) -> EntryMap:
        if not isinstance(value, dict):
            raise ConfigError(path, "must be a map of name to entry")
        named: dict[str, list[Entry]] = {}
        default: list[Entry] | None = None
        for name, item in value.items():
            key_path = f"{path}.{name}"
            if isinstance(item, list):
                if not item:
                    raise ConfigError(key_path, "needs at least one entry (an empty list would allow everything)")
                entries = [_read_entry(e, primitive, f"{key_path}[{i}]") for i, e in enumerate(item)]
            else:
                entries = [_read_entry(item, primitive, key_path)]
            if name == "*":
                default = entries
            else:
                named[str(name)] = entries
        return EntryMap(named, default)

    def entries_for(self, name: str) -> Sequence[Entry] | None:
        """Its own entries, else the default, else None (unmapped)."""
        own = self.named.get(name)
        return own if own is not None else self.default


@dataclass(frozen=True)
class ListPlan:
    """A `*/list` filter: distinct argument-free checks (one batch) and what each name needs;
    `needs[i]` is None for a hidden name, else indices into `checks`."""

    checks: list[Check]
    names: list[str]
    needs: list[list[int] | None]

    def visible(self, allowed: Sequence[bool]) -> list[str]:
        """The names to show given the batch's answers; a missing answer counts as denied."""

        def allows(i: int) -> bool:
            return i < len(allowed) and bool(allowed[i])

        return [name for name, need in zip(self.names, self.needs) if need is not None and all(map(allows, need))]


Requirement = Union[
    Literal["pass"],
    tuple[Literal["filter"], Primitive],
    tuple[Literal["checks"], str, list[Check]],
    Denial,
]


@dataclass(frozen=True)
class ServerMapping:
    """A server's `tools`, `resources` and `prompts` maps."""

    tools: EntryMap = field(default_factory=EntryMap)
    resources: EntryMap = field(default_factory=EntryMap)
    prompts: EntryMap = field(default_factory=EntryMap)

    def _map(self, primitive: Primitive) -> EntryMap:
        return {"tools": self.tools, "resources": self.resources, "prompts": self.prompts}[primitive]

    def checks_for(self, primitive: Primitive, name: str, arguments: Mapping[str, Any] | None) -> list[Check] | Denial:
        """The checks calling `name` with `arguments` needs, or the mapping's denial; raises
        `MappingError` for an argument it cannot resolve."""
        if arguments is not None and not isinstance(arguments, Mapping):
            raise MappingError("invalid params: params.arguments must be an object")
        entries = self._map(primitive).entries_for(name)
        if entries is None:
            return Denial(f"{primitive[:-1]} `{name[:256]}` has no mapping")
        checks: list[Check] = []
        for entry in entries:
            _resolve(entry, primitive, name, arguments or {}, checks)
        return checks

    def requirement(self, method: str, params: Mapping[str, Any] | None) -> Requirement:
        """What the JSON-RPC request `method` with `params` needs (`mapping.rs`'s `requirement`)."""
        if method in ("initialize", "ping") or method.startswith("notifications/"):
            return "pass"
        lists: dict[str, Primitive] = {"tools/list": "tools", "resources/list": "resources", "prompts/list": "prompts"}
        if method in lists:
            return ("filter", lists[method])
        calls: dict[str, tuple[Primitive, str]] = {
            "tools/call": ("tools", "name"),
            "resources/read": ("resources", "uri"),
            "resources/subscribe": ("resources", "uri"),
            "resources/unsubscribe": ("resources", "uri"),
            "prompts/get": ("prompts", "name"),
        }
        if method not in calls:
            return Denial(f"method `{method[:128]}` is not allowed through the gateway")
        primitive, name_key = calls[method]
        if not isinstance(params, Mapping):
            raise MappingError(f"invalid params: `{method}` needs a params object")
        name = params.get(name_key)
        if not isinstance(name, str):
            raise MappingError(f"invalid params: `{method}` needs params.{name_key} as a string")
        checks = self.checks_for(primitive, name, params.get("arguments"))
        return checks if isinstance(checks, Denial) else ("checks", name, checks)

    def plan_list(self, primitive: Primitive, names: Sequence[str]) -> ListPlan:
        """Each name needs its argument-free entries; entries that read arguments wait for the call."""
        checks: list[Check] = []
        index_of: dict[Check, int] = {}
        needs: list[list[int] | None] = []
        for name in names:
            entries = self._map(primitive).entries_for(name)
            if entries is None:
                needs.append(None)
                continue
            item_checks: list[Check] = []
            try:
                for entry in entries:
                    if not entry.object.uses_arguments:
                        _resolve(entry, primitive, name, {}, item_checks)
            except MappingError:
                needs.append(None)
                continue
            indices = []
            for check in item_checks:
                if check not in index_of:
                    index_of[check] = len(checks)
                    checks.append(check)
                indices.append(index_of[check])
            needs.append(indices)
        return ListPlan(checks, list(names), needs)


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # serde_json prints finite floats the way JSON does; NaN and infinities are not JSON.
        return json.dumps(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value
    return None


def _checked(value: str, path: str) -> str:
    problem = id_problem(value)
    if problem is not None:
        raise MappingError(f"`{path}` cannot be part of an object id: it {problem}")
    return value


def _part_values(kind: str, text: str, primitive: Primitive, name: str, arguments: Mapping[str, Any]) -> list[str]:
    if kind == "literal":
        return [text]
    if kind == "name":
        return [_checked(name, _NAME_PLACEHOLDER[primitive])]
    path = f"arguments.{text}"
    value: Any = arguments
    for segment in text.split("."):
        value = value.get(segment) if isinstance(value, Mapping) else None
    if value is None:
        raise MappingError(f"argument `{path}` is missing")
    not_scalar = "must be a string, number or boolean, or a non-empty array of them"
    if isinstance(value, list):
        if not value:
            raise MappingError(f"argument `{path}` {not_scalar}")
        out = []
        for i, item in enumerate(value):
            element = f"{path}[{i}]"
            scalar = _scalar(item)
            if scalar is None:
                raise MappingError(f"argument `{element}` {not_scalar}")
            out.append(_checked(scalar, element))
        return out
    scalar = _scalar(value)
    if scalar is None:
        raise MappingError(f"argument `{path}` {not_scalar}")
    return [_checked(scalar, path)]


def _resolve(entry: Entry, primitive: Primitive, name: str, arguments: Mapping[str, Any], out: list[Check]) -> None:
    ids = [""]
    for kind, text in entry.object.parts:
        values = _part_values(kind, text, primitive, name, arguments)
        if len(ids) * len(values) + len(out) > MAX_CHECKS_PER_CALL:
            raise MappingError(f"the call expands to more than {MAX_CHECKS_PER_CALL} checks")
        ids = [prefix + value for prefix in ids for value in values]
    for object_id in ids:
        problem = id_problem(object_id)
        if problem is not None:
            path = "object" if len(object_id.encode()) > MAX_ID_BYTES else "object id"
            raise MappingError(f"`{path}` cannot be part of an object id: it {problem}")
        out.append(Check(entry.relation, f"{entry.object.object_type}:{object_id}", entry.approval_required))


@dataclass(frozen=True)
class GatewayConfig:
    """The parts of a gateway config the middleware uses: the store, the type names, the mode
    and each server's mapping. The proxy's keys (issuer, JWKS, upstream) are accepted, unused."""

    store: str
    servers: Mapping[str, ServerMapping]
    mode: Literal["enforce", "log_only"] = "enforce"
    user_type: str = "user"
    agent_type: str = "agent"


_TOP_KEYS = {
    "store",
    "issuer",
    "jwks_url",
    "jwks_file",
    "public_url",
    "mode",
    "user_type",
    "agent_type",
    "algorithms",
    "leeway_seconds",
    "upstream_connect_timeout_ms",
    "upstream_timeout_ms",
    "servers",
}
_SERVER_KEYS = {"upstream", "upstream_headers", "tools", "resources", "prompts"}


def _type_name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, "must be a non-empty string")
    if any(c in "#:@*" or c.isspace() or _is_control(c) for c in value):
        raise ConfigError(path, f"`{value}` is not a valid type name")
    return value


def parse_config(text: str, fmt: Literal["yaml", "json"] = "yaml") -> GatewayConfig:
    """Reads config text (YAML, or JSON), checking the keys the middleware relies on."""
    try:
        value = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ConfigError("(top level)", f"is not valid {fmt.upper()}: {error}") from None
    if not isinstance(value, dict):
        raise ConfigError("(top level)", "must be a map")
    for key in value:
        if key not in _TOP_KEYS:
            raise ConfigError(str(key), f"is not a known key ({', '.join(sorted(_TOP_KEYS))})")
    store = value.get("store")
    if not isinstance(store, str) or not store.strip():
        raise ConfigError("store", "is required")
    if any(c.isspace() for c in store):
        raise ConfigError("store", "must not contain whitespace")
    mode = value.get("mode", "enforce")
    if mode not in ("enforce", "log_only"):
        raise ConfigError("mode", f"is `{mode}`; use `enforce` or `log_only`")
    user_type = _type_name(value.get("user_type", "user"), "user_type")
    agent_type = _type_name(value.get("agent_type", "agent"), "agent_type")
    server_map = value.get("servers")
    if not isinstance(server_map, dict):
        raise ConfigError("servers", "is required: a map of server name to server")
    if not server_map:
        raise ConfigError("servers", "must name at least one server")
    servers: dict[str, ServerMapping] = {}
    for name, server in server_map.items():
        path = f"servers.{name}"
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
            raise ConfigError(path, "is not a valid server name (letters, digits, `-`, `_`): it is a URL path segment")
        if not isinstance(server, dict):
            raise ConfigError(path, "must be a map with `upstream`")
        for key in server:
            if key not in _SERVER_KEYS:
                raise ConfigError(f"{path}.{key}", f"is not a known key ({', '.join(sorted(_SERVER_KEYS))})")
        maps: dict[str, EntryMap] = {}
        for primitive in ("tools", "resources", "prompts"):
            if primitive in server:
                maps[primitive] = EntryMap.from_value(server[primitive], primitive, f"{path}.{primitive}")
        servers[name] = ServerMapping(**maps)
    return GatewayConfig(store, servers, mode, user_type, agent_type)


def load_config(path: str | Path) -> GatewayConfig:
    """Reads the config file `writ serve --gateway` reads: JSON for `.json`, YAML otherwise."""
    path = Path(path)
    fmt: Literal["yaml", "json"] = "json" if path.name.lower().endswith(".json") else "yaml"
    return parse_config(path.read_text(encoding="utf-8"), fmt)


def principal_chain(claims: Mapping[str, Any], user_type: str = "user", agent_type: str = "agent") -> list[str]:
    """The OBO chain of a verified claim set (DESIGN §8), human first, current actor last:
    `user:{sub}`, then each `act` from the innermost out; without `act`,
    `[user:{sub}, agent:{client_id or azp}]`; when `sub` is the client, `[agent:{sub}]`.
    Raises `ValueError` naming the claim when the claims cannot give a chain."""

    def id_claim(obj: Mapping[str, Any], key: str, path: str) -> str | None:
        if key not in obj:
            return None
        value = obj[key]
        if not isinstance(value, str):
            raise ValueError(f"claim `{path}` is not a string")
        problem = id_problem(value)
        if problem is not None:
            raise ValueError(f"claim `{path}` {problem}")
        return value

    subject = id_claim(claims, "sub", "sub")
    if subject is None:
        raise ValueError("claim `sub` is missing")
    client = id_claim(claims, "client_id", "client_id") if "client_id" in claims else id_claim(claims, "azp", "azp")
    actors: list[str] = []
    path = "act"
    actor = claims.get("act")
    while actor is not None:
        if len(actors) == MAX_ACTOR_DEPTH:
            raise ValueError(f"claim `{path}` nests deeper than 16 actors")
        if not isinstance(actor, Mapping):
            raise ValueError(f"claim `{path}` is not an object")
        actor_id = id_claim(actor, "sub", f"{path}.sub")
        if actor_id is None:
            raise ValueError(f"claim `{path}.sub` is missing")
        actors.append(actor_id)
        actor = actor.get("act")
        path += ".act"
    actors.reverse()
    for_itself = client == subject
    chain = [f"{agent_type if for_itself else user_type}:{subject}"]
    if not actors:
        if not for_itself:
            if client is None:
                raise ValueError("claim `client_id` is missing (and so is `azp`)")
            chain.append(f"{agent_type}:{client}")
    else:
        chain.extend(f"{agent_type}:{a}" for a in actors)
    return chain
