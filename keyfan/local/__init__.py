"""The embedded local stack (Tansu broker + patched moto server with IAM on), for the demo and e2e tests."""

from keyfan.local.stack import LocalStack, StackStatus, UpResult, default_state_dir
from keyfan.local.state import StackState

__all__ = ["LocalStack", "StackState", "StackStatus", "UpResult", "default_state_dir"]
