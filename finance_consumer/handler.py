"""Finance aggregates: payment count and ledger totals per currency."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from keyfan.consumer.aggregate import add_money, merge_counts, merge_money
from keyfan.consumer.handler import State, count_foreign, parse_payload
from keyfan.envelope import RecordMetadata
from keyfan.masking import mask_card, mask_iban
from keyfan.models import FinancePayment


class FinanceHandler:
    department = "finance"

    def initial_state(self) -> State:
        return {"payments": 0, "ledger": {}, "foreign_events": {}}

    def apply(self, state: State, metadata: RecordMetadata, data: Mapping[str, Any]) -> State:
        if metadata.department != self.department:
            return count_foreign(state, metadata.department)
        payment = parse_payload(FinancePayment, data, "finance payment")
        return {
            "payments": state["payments"] + 1,
            "ledger": add_money(state["ledger"], payment.currency, payment.amount),
            "foreign_events": state["foreign_events"],
        }

    def merge(self, states: Iterable[State]) -> State:
        parts = list(states)
        return {
            "payments": sum(p["payments"] for p in parts),
            "ledger": merge_money(p["ledger"] for p in parts),
            "foreign_events": merge_counts(p["foreign_events"] for p in parts),
        }

    def hint(self, metadata: RecordMetadata, data: Mapping[str, Any]) -> Mapping[str, str]:
        if metadata.department != self.department:
            return {}
        return {
            "card": mask_card(str(data.get("card_number", ""))),
            "iban": mask_iban(str(data.get("iban", ""))),
        }
