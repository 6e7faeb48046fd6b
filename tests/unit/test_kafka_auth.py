"""MSK IAM auth: off for plaintext brokers; on MSK, a signed token from the service's own credentials."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import botocore.session
import pytest

from keyfan.kafka_auth import MskIamTokenProvider, broker_credentials
from keyfan.settings import KafkaSettings


def _session() -> botocore.session.Session:
    session = botocore.session.Session()
    session.set_credentials("AKIAEXAMPLEEXAMPLE", "secret-example")
    return session


def test_local_brokers_get_no_credentials() -> None:
    assert broker_credentials(KafkaSettings(kafka_auth="none"), None) is None


def test_msk_iam_needs_a_session() -> None:
    with pytest.raises(ValueError, match="botocore session"):
        broker_credentials(KafkaSettings(kafka_auth="msk_iam"), None)


def test_msk_iam_uses_tls_and_oauthbearer() -> None:
    credentials = broker_credentials(KafkaSettings(kafka_auth="msk_iam", region="eu-west-1"), _session())

    assert credentials is not None
    assert credentials.mechanism.value == "OAUTHBEARER"
    assert credentials.ssl_context is not None


async def test_token_is_signed_by_the_services_own_access_key() -> None:
    token = await MskIamTokenProvider("eu-west-1", _session()).token()

    url = urlparse(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    query = parse_qs(url.query)
    assert url.hostname == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIAEXAMPLEEXAMPLE/")
