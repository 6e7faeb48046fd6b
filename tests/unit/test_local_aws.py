"""keyfan.aws: a role's session holds only the role's (refreshing) credentials, never the ambient ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from keyfan import aws
from keyfan.settings import KeyfanSettings

ROLE = "arn:aws:iam::123456789012:role/keyfan-sales-consumer"


def settings(**values: Any) -> KeyfanSettings:
    return KeyfanSettings.model_validate({"AWS_REGION": "eu-west-1", **values})


def test_without_a_role_the_ambient_session_is_used() -> None:
    base = botocore.session.Session()
    assert aws.botocore_session_for(settings(), base=base) is base
    assert aws.session_for(settings(), base=base).region_name == "eu-west-1"


def test_with_a_role_only_the_role_credentials_are_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given ambient keys in the environment and an STS that answers AssumeRole
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAAMBIENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient")
    calls: list[tuple[str, str]] = []

    def fake_fetch(self: Any) -> dict[str, Any]:
        calls.append((self._role_arn, self._session_name))
        return {
            "access_key": "ASIAROLE",
            "secret_key": "role-secret",
            "token": "role-token",
            "expiry_time": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        }

    monkeypatch.setattr(aws._AssumedRoleProvider, "_fetch", fake_fetch)
    base = botocore.session.Session()
    base.set_config_variable("config_file", str(tmp_path / "config"))

    # When a session is built for the role
    core = aws.botocore_session_for(settings(role_arn=ROLE), base=base, session_name="sales-1")
    credentials = core.get_credentials()

    # Then nothing is fetched until used, and what is used is the role's, refreshable, never the ambient keys
    assert credentials.method == "keyfan-assume-role"
    assert calls == []
    frozen = credentials.get_frozen_credentials()
    assert (frozen.access_key, frozen.token) == ("ASIAROLE", "role-token")
    assert calls == [(ROLE, "sales-1")]
    assert core.get_config_variable("region") == "eu-west-1"
    assert core.get_config_variable("config_file") == str(tmp_path / "config")
    assert (
        aws.session_for(settings(role_arn=ROLE), base=base).get_credentials().method == "keyfan-assume-role"
    )


def test_default_session_name_says_which_role_and_pid() -> None:
    name = aws.default_session_name(ROLE)
    assert name.startswith("keyfan-sales-consumer-")
    assert len(aws.default_session_name("arn:aws:iam::1:role/" + "r" * 80)) == 64
