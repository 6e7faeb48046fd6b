"""The finance department's consumer: a FinanceHandler plus the shared consumer framework (keyfan.consumer)."""

from finance_consumer.handler import FinanceHandler

__all__ = ["FinanceHandler"]
