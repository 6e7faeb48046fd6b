"""Fixtures shared by the functional tests: ``kms`` (moto's KMS with IAM on, scoped to key ARNs)."""

from tests.functional.test_crypto_datakeys import kms  # noqa: F401 (a fixture, defined with its helpers)
