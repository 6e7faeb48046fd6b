"""The embedded local stack (Tansu broker + patched moto server with IAM on), for the demo and e2e tests.

``LocalStack`` (boto3, aiokafka) is imported on first use, so the ``keyfan`` command starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyfan_tools.local.config import default_state_dir
    from keyfan_tools.local.lifecycle import UpResult
    from keyfan_tools.local.stack import LocalStack
    from keyfan_tools.local.state import StackState
    from keyfan_tools.local.status import StackStatus

__all__ = ["LocalStack", "StackState", "StackStatus", "UpResult", "default_state_dir"]

_LAZY = {
    "LocalStack": "keyfan_tools.local.stack",
    "StackStatus": "keyfan_tools.local.status",
    "UpResult": "keyfan_tools.local.lifecycle",
    "default_state_dir": "keyfan_tools.local.config",
    "StackState": "keyfan_tools.local.state",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
