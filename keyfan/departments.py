"""The department registry: which department owns which partitions of the shared topic, under which key.

Loaded once at start-up from ``departments.toml``; every problem is a ``ConfigError`` naming the entry.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from keyfan.exceptions import ConfigError

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class Department(BaseModel):
    """One registry entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    partitions: tuple[int, ...] = Field(min_length=1)
    key_alias: str
    consumer_identity: str

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be lowercase letters, digits and dashes, starting with a letter")
        return value

    @field_validator("partitions")
    @classmethod
    def _valid_partitions(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(p < 0 for p in value):
            raise ValueError("partitions must be >= 0")
        if len(set(value)) != len(value):
            raise ValueError("partitions repeat within the entry")
        return tuple(sorted(value))

    @field_validator("key_alias")
    @classmethod
    def _valid_alias(cls, value: str) -> str:
        if not value.startswith("alias/") or value.startswith("alias/aws/"):
            raise ValueError("must look like 'alias/<name>' and not be an AWS-managed alias")
        return value


class DepartmentRegistry:
    """The validated, immutable set of departments."""

    def __init__(self, departments: list[Department]) -> None:
        if not departments:
            raise ConfigError("department registry is empty: add at least one [[department]] entry")
        by_name: dict[str, Department] = {}
        owner_of: dict[int, str] = {}
        for dept in departments:
            if dept.name in by_name:
                raise ConfigError(f"department {dept.name!r}: duplicate name")
            for partition in dept.partitions:
                if partition in owner_of:
                    raise ConfigError(
                        f"department {dept.name!r}: partition {partition} already belongs to "
                        f"{owner_of[partition]!r}"
                    )
                owner_of[partition] = dept.name
            by_name[dept.name] = dept
        self._by_name = by_name
        self._owner_of = owner_of

    def __iter__(self) -> Iterator[Department]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    @property
    def partition_count(self) -> int:
        """How many partitions the shared topic needs to hold every department's range."""
        return max(self._owner_of) + 1

    def get(self, name: str) -> Department:
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(f"unknown department {name!r} (known: {', '.join(self._by_name)})") from None

    def owner_of(self, partition: int) -> Department | None:
        name = self._owner_of.get(partition)
        return self._by_name[name] if name else None

    @classmethod
    def from_mapping(cls, raw: object) -> DepartmentRegistry:
        if not isinstance(raw, dict):
            raise ConfigError("department registry must be a table with [[department]] entries")
        unknown = set(raw) - {"department"}
        if unknown:
            raise ConfigError(f"department registry: unknown top-level key(s) {sorted(unknown)}")
        entries = raw.get("department", [])
        if not isinstance(entries, list):
            raise ConfigError("department registry: 'department' must be an array of tables")
        departments = []
        for index, entry in enumerate(entries):
            label = entry.get("name", f"#{index + 1}") if isinstance(entry, dict) else f"#{index + 1}"
            try:
                departments.append(Department.model_validate(entry))
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}" for err in exc.errors()
                )
                raise ConfigError(f"department {label!r}: {problems}") from exc
        return cls(departments)

    @classmethod
    def load(cls, path: Path) -> DepartmentRegistry:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"department registry not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"department registry {path}: {exc}") from exc
        return cls.from_mapping(raw)
