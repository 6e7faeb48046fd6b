"""The department registry: valid files load, every invalid one fails naming the entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyfan.departments import DepartmentRegistry
from keyfan.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _entry(name: str, partitions: list[int], **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "partitions": partitions,
        "key_alias": f"alias/keyfan-{name}",
        "consumer_identity": f"keyfan-{name}-consumer",
        **extra,
    }


def test_shipped_registry_loads() -> None:
    registry = DepartmentRegistry.load(ROOT / "departments.toml")

    assert registry.names == ("sales", "finance")
    assert registry.partition_count == 6
    assert registry.get("finance").partitions == (3, 4, 5)
    assert registry.owner_of(4) == registry.get("finance")
    assert registry.owner_of(99) is None


def test_adding_a_department_is_one_entry(tmp_path: Path) -> None:
    # Given the shipped file plus an `hr` entry, with no code change
    text = (ROOT / "departments.toml").read_text() + (
        '\n[[department]]\nname = "hr"\npartitions = [6]\nkey_alias = "alias/keyfan-hr"\n'
        'consumer_identity = "keyfan-hr-consumer"\n'
    )
    path = tmp_path / "departments.toml"
    path.write_text(text)

    registry = DepartmentRegistry.load(path)

    assert "hr" in registry
    assert registry.partition_count == 7


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "empty"),
        ([_entry("sales", [0]), _entry("sales", [1])], "'sales': duplicate name"),
        (
            [_entry("sales", [0, 1]), _entry("finance", [1, 2])],
            "'finance': partition 1 already belongs to 'sales'",
        ),
        ([_entry("sales", [0], colour="red")], "'sales': colour: Extra inputs are not permitted"),
        ([_entry("sales", [])], "'sales': partitions"),
        ([_entry("sales", [0, 0])], "'sales': partitions: Value error, partitions repeat"),
        ([_entry("sales", [-1])], "'sales': partitions"),
        ([_entry("Sales!", [0])], "'Sales!': name"),
        ([{**_entry("sales", [0]), "key_alias": "keyfan-sales"}], "'sales': key_alias"),
        ([{"name": "hr", "partitions": [0]}], "'hr': key_alias: Field required"),
    ],
)
def test_invalid_registry_fails_naming_the_entry(entries: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        DepartmentRegistry.from_mapping({"department": entries})


def test_unknown_top_level_key_fails() -> None:
    with pytest.raises(ConfigError, match="unknown top-level key"):
        DepartmentRegistry.from_mapping({"department": [_entry("sales", [0])], "departmnet": []})


def test_missing_and_malformed_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        DepartmentRegistry.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[department]\nname=")
    with pytest.raises(ConfigError, match=str(bad)):
        DepartmentRegistry.load(bad)


def test_unknown_department_lookup_names_the_known_ones() -> None:
    registry = DepartmentRegistry.from_mapping({"department": [_entry("sales", [0])]})
    with pytest.raises(ConfigError, match="unknown department 'hr' \\(known: sales\\)"):
        registry.get("hr")
