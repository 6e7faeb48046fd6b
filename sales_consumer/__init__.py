"""The sales department's consumer: a SalesHandler plus the shared consumer framework (keyfan.consumer)."""

from sales_consumer.handler import SalesHandler

__all__ = ["SalesHandler"]
