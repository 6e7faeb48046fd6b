"""``python -m keyfan_tools.bench.workers.twin``: the plaintext twin of a department consumer, as a worker.

The consumer service's own factory (``keyfan.consumer.create_consumer_app``) and the department's own
handler (through its entry point), with the benchmark's ``PlaintextDecryptor`` instead of the KMS one. Only
the codec differs from ``python -m sales_consumer``, so the difference in records/s is the cost of
decryption in the worker users run. Settings come from the same ``KEYFAN_*`` variables.
"""

from __future__ import annotations

from keyfan.consumer.app import ConsumerApp, create_consumer_app
from keyfan.logs import logging_config
from keyfan.plugins import handler_for
from keyfan.settings import ConsumerSettings
from keyfan.worker import run_worker
from keyfan_tools.bench.codecs import PlaintextDecryptor
from keyfan_tools.bench.paths.consumer import READER


def create_twin_app(settings: ConsumerSettings) -> ConsumerApp:
    """The department's consumer app reading ``keyfan-content: plaintext`` records (and only those)."""
    # The pipeline picks a decryptor by the record's keyfan-content: the twin's reads plaintext only.
    return create_consumer_app(
        settings,
        handler_for(settings.department),
        decryptors=(PlaintextDecryptor(),),
        principal=settings.role_arn,
    )


def main() -> None:
    settings = ConsumerSettings.for_app(READER)  # KEYFAN_DEPARTMENT overrides it, as for a service
    run_worker(
        create_twin_app(settings),
        data_dir=settings.data_dir / settings.consumer_group,
        loglevel=settings.log_level,
        logging_config=logging_config(f"{settings.department}-twin", settings.log_level),
    )


if __name__ == "__main__":
    main()
