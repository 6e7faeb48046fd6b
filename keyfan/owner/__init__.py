"""The owner: SQS messages in, encrypted records on the shared topic out (see docs/producing.md).

``create_owner_app(settings)`` builds the whole service: the pipeline (validate, route, encrypt under the
department's key, publish, delete), its pollers, delete batching and ``/metrics``.
"""

from keyfan.owner.app import FaustPublisher, OwnerService, create_owner_app, owner_encryptor, owner_runner
from keyfan.owner.deletes import DeleteBatcher
from keyfan.owner.metrics import OwnerMetrics
from keyfan.owner.pipeline import MessageOutcome, OwnerPipeline, key_arns_for
from keyfan.owner.ports import DeadLetterQueue, Publisher, WorkQueue
from keyfan.owner.runner import OwnerRunner, accounted
from keyfan.retry import RetryPolicy

__all__ = [
    "DeadLetterQueue",
    "DeleteBatcher",
    "FaustPublisher",
    "MessageOutcome",
    "OwnerMetrics",
    "OwnerPipeline",
    "OwnerRunner",
    "OwnerService",
    "Publisher",
    "RetryPolicy",
    "WorkQueue",
    "accounted",
    "create_owner_app",
    "key_arns_for",
    "owner_encryptor",
    "owner_runner",
]
