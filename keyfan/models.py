"""The event contract: what an SQS message body is, and the typed payloads of the example departments.

Pure data, no I/O. The envelope (what goes on the topic) is in ``keyfan.envelope``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

EventType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")]
Money = Annotated[Decimal, Field(max_digits=14, decimal_places=2)]


class PersonalData:
    """Marks a payload field as personal data of the event's subject (``SUBJECT_FIELD``): what a customer
    may ask to have erased. ``keyfan.personal_data`` reads the marks; see docs/architecture.md,
    "Crypto-shredding"."""

    def __repr__(self) -> str:
        return "PERSONAL"


PERSONAL = PersonalData()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DepartmentEvent(_Strict):
    """One SQS message body: a department event whose ``data`` is the sensitive payload."""

    event_id: UUID
    department: str
    event_type: EventType
    occurred_at: AwareDatetime
    schema_version: int = Field(ge=1)
    data: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


class Address(_Strict):
    street: str
    city: str
    postcode: str
    country: str


class LineItem(_Strict):
    sku: str
    product: str
    quantity: int = Field(ge=1)
    unit_price: Money


class SalesOrder(_Strict):
    """Payload of a ``sales`` event: an order."""

    order_id: str
    customer_id: str
    customer_name: Annotated[str, PERSONAL]
    email: Annotated[str, PERSONAL]
    phone: Annotated[str, PERSONAL]
    address: Annotated[Address, PERSONAL]
    region: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    line_items: list[LineItem] = Field(min_length=1)

    @property
    def total(self) -> Decimal:
        return sum((item.unit_price * item.quantity for item in self.line_items), Decimal("0"))

    # The entity whose events stay in one partition, in order (``keyfan.routing``).
    ENTITY_FIELD: ClassVar[str] = "customer_id"
    # The person the personal fields are about.
    SUBJECT_FIELD: ClassVar[str] = "customer_id"


class FinancePayment(_Strict):
    """Payload of a ``finance`` event: a card payment settled to an account."""

    payment_id: str
    account_id: str
    card_number: Annotated[str, PERSONAL] = Field(pattern=r"^\d{12,19}$")
    iban: Annotated[str, PERSONAL] = Field(pattern=r"^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$")
    amount: Money
    currency: str = Field(pattern=r"^[A-Z]{3}$")

    ENTITY_FIELD: ClassVar[str] = "account_id"
    SUBJECT_FIELD: ClassVar[str] = "account_id"


# Departments with a typed payload. A department that is only in the registry (e.g. a new ``hr``) is
# accepted with any JSON object as ``data``; its entity key is ``data["entity_id"]`` or the event id.
PAYLOAD_MODELS: dict[str, type[SalesOrder] | type[FinancePayment]] = {
    "sales": SalesOrder,
    "finance": FinancePayment,
}


def entity_key(event: DepartmentEvent) -> str:
    """The key that keeps one entity's events in one partition, in order."""
    return entity_key_of(event.department, event.data, str(event.event_id)) or str(event.event_id)


def entity_key_of(department: str, data: Mapping[str, Any], event_id: str) -> str | None:
    """The entity key from a payload (also a decrypted one, where the consumer checks the routing).

    None when a typed department's payload lacks its entity field: such a payload fails its contract.
    """
    model = PAYLOAD_MODELS.get(department)
    value = data.get(model.ENTITY_FIELD if model is not None else "entity_id")
    if value is not None:
        return str(value)
    return None if model is not None else event_id
