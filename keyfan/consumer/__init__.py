"""The consumer framework every department consumer is built on (see docs/consuming.md).

A department consumer is a ``DomainHandler`` plus ``ConsumerSettings``; ``create_consumer_app`` does the
rest: discovery decryption, outcome classification, denial memory, in-place retry, DLQ, audit, dedupe
and state in a Faust Table, ``/state`` and ``/metrics``.
"""

from keyfan.consumer.app import ConsumerApp, ConsumerRuntime, create_consumer_app, record_pipeline
from keyfan.consumer.audit import AuditRecord, AuditSink
from keyfan.consumer.denials import Denial, DenialMemory
from keyfan.consumer.handler import DomainHandler, State, count_foreign, parse_payload
from keyfan.consumer.metrics import ConsumerMetrics
from keyfan.consumer.outcomes import Classification, Outcome, classify
from keyfan.consumer.pipeline import RecordPipeline
from keyfan.consumer.records import DeadLetterSink, RawHeaders, RawRecord
from keyfan.retry import RetryPolicy

__all__ = [
    "AuditRecord",
    "AuditSink",
    "Classification",
    "ConsumerApp",
    "ConsumerMetrics",
    "ConsumerRuntime",
    "DeadLetterSink",
    "Denial",
    "DenialMemory",
    "DomainHandler",
    "Outcome",
    "RawHeaders",
    "RawRecord",
    "RecordPipeline",
    "RetryPolicy",
    "State",
    "classify",
    "count_foreign",
    "create_consumer_app",
    "parse_payload",
    "record_pipeline",
]
