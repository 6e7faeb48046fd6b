"""The owner's Faust app: configured for Tansu (acks=all, no idempotence), serves /metrics, no I/O at build."""

from __future__ import annotations

from keyfan.crypto import KmsObserver
from keyfan.owner import OwnerMetrics, OwnerService, create_owner_app
from keyfan.settings import OwnerSettings


def _settings(**overrides) -> OwnerSettings:
    return OwnerSettings(queue_url="https://sqs/q", dlq_url="https://sqs/dlq", **overrides)


def test_app_is_configured_for_at_least_once_on_tansu():
    app = create_owner_app(
        _settings(bootstrap_servers="127.0.0.1:19092", broker_session_timeout=3.0, web_port=7001)
    )
    assert app.conf.producer_acks == -1
    assert str(app.conf.processing_guarantee.value) == "at_least_once"
    assert app.conf.broker_session_timeout == 3.0
    assert app.conf.web_port == 7001
    assert [str(url) for url in app.conf.broker] == ["kafka://127.0.0.1:19092"]
    assert any(isinstance(service, OwnerService) for service in app._extra_services)


async def test_metrics_page_serves_prometheus_text_including_kms_calls():
    metrics = OwnerMetrics()
    observer = KmsObserver()
    observer.calls["GenerateDataKey"] += 2
    metrics.watch_kms(observer)
    metrics.published.labels("sales", "1").inc()
    app = create_owner_app(_settings(), metrics=metrics)
    view_class = type(app.web.views["/metrics"])
    view = view_class(app, app.web)
    response = await view.get(None)  # type: ignore[arg-type]
    body = response.body.decode()
    assert response.headers["Content-Type"].startswith("text/plain")
    assert 'keyfan_owner_published_total{department="sales",partition="1"} 1.0' in body
    assert 'keyfan_kms_calls_total{operation="GenerateDataKey"} 2.0' in body
