"""What every type of `writ._generated` shares: its JSON both ways.

`from_json` reads an answer (keys it does not know are ignored, so a newer server's additions do
not break an older client; a missing required key raises `TypeError`); `to_json` writes a body
(fields left `None` are left out, as the server reads an absent and a null optional alike). A
field whose type is another generated class also takes a plain dict.
"""

from __future__ import annotations

import sys
from dataclasses import fields, is_dataclass
from typing import Any, ClassVar

__all__ = ["Wire"]


def _dump(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return value.to_json()  # type: ignore[attr-defined]
    if isinstance(value, (list, tuple)):
        return [_dump(item) for item in value]
    if isinstance(value, dict):
        return {key: _dump(item) for key, item in value.items()}
    return value


class Wire:
    """The base of the generated dataclasses. `_nested` maps a field holding another generated
    class to (that class's name in the same module, whether the field is a list of them)."""

    _nested: ClassVar[dict[str, tuple[str, bool]]] = {}

    def to_json(self) -> dict[str, Any]:
        values = ((f.name, getattr(self, f.name)) for f in fields(self))  # type: ignore[arg-type]
        return {name: _dump(value) for name, value in values if value is not None}

    @classmethod
    def from_json(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        module = sys.modules[cls.__module__]
        values = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name not in data:
                continue
            value = data[f.name]
            nested = cls._nested.get(f.name)
            if nested is not None and value is not None:
                reader = getattr(module, nested[0]).from_json
                value = [reader(item) for item in value] if nested[1] else reader(value)
            values[f.name] = value
        return cls(**values)
