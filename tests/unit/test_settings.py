"""Settings are read from the environment with production names, frozen, and validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from keyfan.settings import ConsumerSettings, KafkaSettings, OwnerSettings


def test_owner_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYFAN_QUEUE_URL", "http://q/1/keyfan-events")
    monkeypatch.setenv("KEYFAN_DLQ_URL", "http://q/1/keyfan-events-dlq")
    monkeypatch.setenv("KEYFAN_BOOTSTRAP_SERVERS", "kafka://127.0.0.1:9999, 127.0.0.1:9998")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("KEYFAN_ALGORITHM_SUITE", "unsigned")

    settings = OwnerSettings()

    assert settings.queue_url.endswith("keyfan-events")
    assert settings.bootstrap_servers == "127.0.0.1:9999,127.0.0.1:9998"
    assert settings.faust_broker == "kafka://127.0.0.1:9999;kafka://127.0.0.1:9998"
    assert settings.region == "eu-west-1"
    assert settings.algorithm_suite == "unsigned"
    assert settings.max_body_bytes == 256 * 1024
    assert settings.role_arn is None


def test_settings_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = KafkaSettings()
    with pytest.raises(ValidationError):
        settings.topic = "other"  # type: ignore[misc]


def test_required_settings_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYFAN_QUEUE_URL", raising=False)
    with pytest.raises(ValidationError, match="queue_url"):
        OwnerSettings()


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYFAN_QUEUE_URL", "q")
    monkeypatch.setenv("KEYFAN_DLQ_URL", "d")
    monkeypatch.setenv("KEYFAN_ALGORITHM_SUITE", "rot13")
    with pytest.raises(ValidationError, match="algorithm_suite"):
        OwnerSettings()


def test_consumer_group_defaults_to_department(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYFAN_DEPARTMENT", "finance")
    assert ConsumerSettings().consumer_group == "keyfan-finance"
    assert ConsumerSettings(group_id="custom").consumer_group == "custom"


def test_decrypt_cache_max_age_is_a_consumer_setting_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYFAN_DEPARTMENT", "sales")
    monkeypatch.setenv("KEYFAN_CACHE_MAX_AGE_SECONDS", "300")
    assert ConsumerSettings().decrypt_cache_max_age_seconds == 30.0  # the revocation bound, not 300

    monkeypatch.setenv("KEYFAN_DECRYPT_CACHE_MAX_AGE_SECONDS", "3.5")
    settings = ConsumerSettings()
    assert settings.decrypt_cache_max_age_seconds == 3.5
    assert settings.cache_max_age_seconds == 300.0
    for bad in ("0", "-1"):
        monkeypatch.setenv("KEYFAN_DECRYPT_CACHE_MAX_AGE_SECONDS", bad)
        with pytest.raises(ValidationError, match="decrypt_cache_max_age_seconds"):
            ConsumerSettings()


def test_a_department_app_reads_its_department_from_the_environment_or_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KEYFAN_DEPARTMENT", raising=False)
    assert ConsumerSettings.for_app("sales").department == "sales"
    monkeypatch.setenv("KEYFAN_DEPARTMENT", "finance")
    settings = ConsumerSettings.for_app("sales")
    assert settings.department == "finance" and isinstance(settings, ConsumerSettings)
    assert ConsumerSettings.for_app("sales", department="hr").department == "hr"  # a flag wins


def test_log_level_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYFAN_LOG_LEVEL", "DEBUG")
    assert ConsumerSettings.for_app("sales").log_level == "DEBUG"
