"""``keyfan consumer status`` prints a consumer's /state."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from keyfan_tools.cli import consumer as consumer_cli

STATE: dict[str, object] = {
    "department": "sales",
    "consumer_group": "keyfan-sales",
    "principal": "arn:aws:sts::1:assumed-role/keyfan-sales-consumer/x",
    "counters": {"decrypted": 3, "access_denied": 2, "dead_lettered": 1, "retries": 0, "kms_calls": 1},
    "denied_keys": ["arn:aws:kms:us-east-1:1:key/f"],
    "aggregates": {"orders": 3},
}


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    urls: list[str] = []

    def fake_fetch(url: str, timeout: float = 5.0) -> dict[str, object]:
        urls.append(url)
        return STATE

    monkeypatch.setattr(consumer_cli, "fetch_state", fake_fetch)
    return urls


def test_status_prints_counters(fetched: list[str]) -> None:
    result = CliRunner().invoke(
        consumer_cli.consumer, ["status", "--department", "sales", "--url", "http://h:1/state"]
    )
    assert result.exit_code == 0, result.output
    assert fetched == ["http://h:1/state"]
    assert "access_denied   2" in result.output
    assert '"orders": 3' in result.output


def test_status_json_and_default_url(fetched: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYFAN_WEB_PORT", "6123")
    result = CliRunner().invoke(consumer_cli.consumer, ["status", "-d", "sales", "--json"])
    assert result.exit_code == 0, result.output
    assert fetched == ["http://127.0.0.1:6123/state"]
    assert json.loads(result.output)["counters"]["decrypted"] == 3


def test_status_refuses_the_wrong_consumer(fetched: list[str]) -> None:
    result = CliRunner().invoke(
        consumer_cli.consumer, ["status", "-d", "finance", "--url", "http://h:1/state"]
    )
    assert result.exit_code != 0
    assert "not 'finance'" in result.output
