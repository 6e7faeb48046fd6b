"""`keyfan generate` runs the Lambda's own handler; stdout carries only the result."""

from __future__ import annotations

import json

from click.testing import CliRunner

from keyfan_tools.cli.generate import generate
from lambda_generator import handler as handler_module
from lambda_generator.handler import Dependencies
from tests.unit.test_lambda_generator import REGISTRY, StubSqs, _queue


def test_missing_settings_are_named(monkeypatch):
    monkeypatch.delenv("KEYFAN_QUEUE_URL", raising=False)
    result = CliRunner().invoke(generate, ["--count", "1"])
    assert result.exit_code != 0 and "KEYFAN_QUEUE_URL" in result.output


def test_json_output_is_the_handler_result(monkeypatch):
    stub = StubSqs()
    monkeypatch.setenv("KEYFAN_QUEUE_URL", "https://sqs/q")
    monkeypatch.setattr(
        handler_module, "default_dependencies", lambda settings: Dependencies(_queue(stub), REGISTRY)
    )
    result = CliRunner().invoke(
        generate, ["--count", "7", "--seed", "3", "--department", "finance", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["sent"] == 7 and summary["by_department"] == {"finance": 7}
    assert len(stub.delivered) == 7


def test_failures_make_a_non_zero_exit(monkeypatch):
    stub = StubSqs(fail={c: [(0, "InternalError", False)] for c in range(10)})
    monkeypatch.setenv("KEYFAN_QUEUE_URL", "https://sqs/q")
    monkeypatch.setattr(
        handler_module,
        "default_dependencies",
        lambda settings: Dependencies(_queue(stub, max_attempts=2), REGISTRY),
    )
    result = CliRunner().invoke(generate, ["--count", "2"])
    assert result.exit_code == 1
    assert "1 failed" in result.stdout
