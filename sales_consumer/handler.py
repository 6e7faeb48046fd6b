"""Sales aggregates: order count, revenue per region and per product (each per currency)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from keyfan.consumer.aggregate import add_nested_money, merge_counts, merge_nested_money
from keyfan.consumer.handler import State, count_foreign, parse_payload
from keyfan.envelope import RecordMetadata
from keyfan.masking import mask_email, mask_name
from keyfan.models import SalesOrder


class SalesHandler:
    department = "sales"

    def initial_state(self) -> State:
        return {"orders": 0, "revenue_by_region": {}, "revenue_by_product": {}, "foreign_events": {}}

    def apply(self, state: State, metadata: RecordMetadata, data: Mapping[str, Any]) -> State:
        if metadata.department != self.department:
            return count_foreign(state, metadata.department)
        order = parse_payload(SalesOrder, data, "sales order")
        by_region = add_nested_money(state["revenue_by_region"], order.region, order.currency, order.total)
        by_product = dict(state["revenue_by_product"])
        for item in order.line_items:
            by_product = add_nested_money(
                by_product, item.product, order.currency, item.unit_price * item.quantity
            )
        return {
            "orders": state["orders"] + 1,
            "revenue_by_region": by_region,
            "revenue_by_product": by_product,
            "foreign_events": state["foreign_events"],
        }

    def merge(self, states: Iterable[State]) -> State:
        parts = list(states)
        return {
            "orders": sum(p["orders"] for p in parts),
            "revenue_by_region": merge_nested_money(p["revenue_by_region"] for p in parts),
            "revenue_by_product": merge_nested_money(p["revenue_by_product"] for p in parts),
            "foreign_events": merge_counts(p["foreign_events"] for p in parts),
        }

    def hint(self, metadata: RecordMetadata, data: Mapping[str, Any]) -> Mapping[str, str]:
        if metadata.department != self.department:
            return {}
        return {
            "customer": mask_name(str(data.get("customer_name", ""))),
            "email": mask_email(str(data.get("email", ""))),
        }
