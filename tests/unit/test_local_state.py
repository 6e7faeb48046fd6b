"""The stack's saved state: round trip, file modes, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from keyfan.exceptions import LocalStackError
from keyfan_tools.local.state import (
    AccessKey,
    DepartmentResources,
    PlatformResources,
    ProcessInfo,
    StackState,
    Topics,
    clear_state,
    load_admin,
    load_state,
    save_admin,
    save_state,
)


def make_state(tmp_path: Path) -> StackState:
    return StackState(
        region="us-east-1",
        departments_file=tmp_path / "departments.toml",
        moto=ProcessInfo(
            name="moto", pid=11, port=5001, argv=["python", "-m", "x"], log=tmp_path / "moto.log"
        ),
        broker=ProcessInfo(
            name="broker", pid=12, port=9093, argv=["tansu", "broker"], log=tmp_path / "b.log"
        ),
        runner=AccessKey(
            user_arn="arn:aws:iam::123456789012:user/keyfan-local-runner",
            access_key_id="AKIARUNNER",
            secret_access_key=SecretStr("runner-secret"),
        ),
        platform=PlatformResources(
            stack_name="keyfan-platform",
            queue_url="https://sqs/q",
            queue_arn="arn:q",
            dlq_url="https://sqs/dlq",
            dlq_arn="arn:dlq",
            owner_role_arn="arn:aws:iam::123456789012:role/keyfan-owner",
            owner_role_name="keyfan-owner",
            generator_role_arn="arn:aws:iam::123456789012:role/keyfan-generator",
            subject_key_table="keyfan-subject-keys",
        ),
        departments={
            "sales": DepartmentResources(
                name="sales",
                partitions=(0, 1, 2),
                key_arn="arn:aws:kms:us-east-1:123456789012:key/k1",
                key_alias="alias/keyfan-sales",
                role_arn="arn:aws:iam::123456789012:role/keyfan-sales-consumer",
                stack_name="keyfan-dept-sales",
            )
        },
        topics=Topics(partitions=6),
    )


def test_state_round_trips_with_secrets_and_mode_600(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    save_state(tmp_path, state)

    loaded = load_state(tmp_path)

    assert loaded == state
    assert loaded is not None and loaded.runner is not None
    assert loaded.runner.secret_access_key.get_secret_value() == "runner-secret"
    assert (tmp_path / "state.json").stat().st_mode & 0o777 == 0o600
    assert "runner-secret" not in repr(loaded)


def test_a_state_saved_before_the_subject_key_table_still_loads(tmp_path: Path) -> None:
    # so that `keyfan local down` can still stop a stack started by an older Keyfan
    save_state(tmp_path, make_state(tmp_path))
    path = tmp_path / "state.json"
    data = json.loads(path.read_text())
    del data["platform"]["subject_key_table"]
    path.write_text(json.dumps(data))

    loaded = load_state(tmp_path)

    assert loaded is not None and loaded.platform is not None
    assert loaded.platform.subject_key_table == ""


def test_derived_addresses(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    assert state.endpoint_url == "http://127.0.0.1:5001"
    assert state.bootstrap_servers == "127.0.0.1:9093"
    assert [p.name for p in state.processes()] == ["moto", "broker"]
    empty = StackState(region="us-east-1", departments_file=tmp_path / "d.toml")
    assert empty.endpoint_url is None and empty.bootstrap_servers is None and empty.processes() == []


def test_missing_state_is_none_and_corrupt_state_is_an_error(tmp_path: Path) -> None:
    assert load_state(tmp_path) is None
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(LocalStackError, match="remove the file"):
        load_state(tmp_path)


def test_admin_keys_live_apart_and_private(tmp_path: Path) -> None:
    with pytest.raises(LocalStackError, match="is the local stack up"):
        load_admin(tmp_path)
    admin = AccessKey(
        user_arn="arn:admin", access_key_id="AKIAADMIN", secret_access_key=SecretStr("admin-secret")
    )
    save_admin(tmp_path, admin)
    save_state(tmp_path, make_state(tmp_path))

    assert load_admin(tmp_path).secret_access_key.get_secret_value() == "admin-secret"
    assert (tmp_path / "admin.json").stat().st_mode & 0o777 == 0o600
    assert "admin-secret" not in (tmp_path / "state.json").read_text()

    clear_state(tmp_path)
    assert not (tmp_path / "admin.json").exists() and not (tmp_path / "state.json").exists()
