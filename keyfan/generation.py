"""Realistic, seedable department events: what the generator Lambda sends to SQS.

Pure (no I/O). One seed always yields the same events, event ids and timestamps included, so a test or a
demo can regenerate exactly what it sent and look for those values where they must not be (the topic).
Departments are dealt round-robin, so ``count`` events over ``n`` departments give each ``count // n`` or
one more.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from faker import Faker

from keyfan.models import DepartmentEvent

SCHEMA_VERSION = 1
# With a seed, timestamps are offsets from this fixed instant, so the same seed gives the same events.
SEEDED_BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
EVENT_TYPES = {"sales": "order.created", "finance": "payment.settled"}
# Test card ranges (no real issuer): Visa 4000 00.., Mastercard 5555 55.., Amex 3782 82...
_TEST_CARD_PREFIXES = (("400000", 16), ("555555", 16), ("378282", 15))
_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK")
_REGIONS = ("emea", "amer", "apac")
_PRODUCTS = (
    ("KB-101", "Mechanical keyboard"),
    ("MS-220", "Wireless mouse"),
    ("MN-270", "27-inch monitor"),
    ("HD-050", "USB-C hub"),
    ("LP-014", "14-inch laptop"),
    ("CH-900", "Ergonomic chair"),
    ("HS-330", "Noise-cancelling headset"),
)


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        digit = int(char)
        if index % 2 == 0:  # these get doubled once the check digit is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_check_digit(number[:-1]) == number[-1]


@dataclass(frozen=True, slots=True)
class _Customer:
    customer_id: str
    name: str
    email: str
    phone: str
    address: dict[str, str]
    region: str


@dataclass(frozen=True, slots=True)
class _Account:
    account_id: str
    iban: str
    card_number: str


class _Generator:
    """Holds one seeded Faker and RNG; entities are drawn from small pools so keys repeat (ordering)."""

    def __init__(self, seed: int, count: int) -> None:
        self.rng = random.Random(seed)
        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)
        pool = max(5, count // 4)
        self.customers = [self._customer(i) for i in range(pool)]
        self.accounts = [self._account(i) for i in range(pool)]

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _customer(self, index: int) -> _Customer:
        fake = self.fake
        first, last = fake.first_name(), fake.last_name()
        # Index in the address keeps emails unique, so a test can search the topic for each one.
        email = f"{first}.{last}{index}@{fake.free_email_domain()}".lower()
        return _Customer(
            customer_id=f"C-{self.rng.randrange(10**8):08d}",
            name=f"{first} {last}",
            email=email,
            phone=fake.numerify("+1-###-###-####"),
            address={
                "street": fake.street_address(),
                "city": fake.city(),
                "postcode": fake.postcode(),
                "country": fake.country_code(),
            },
            region=self.rng.choice(_REGIONS),
        )

    def _card_number(self) -> str:
        prefix, length = self.rng.choice(_TEST_CARD_PREFIXES)
        body = prefix + "".join(str(self.rng.randrange(10)) for _ in range(length - len(prefix) - 1))
        return body + luhn_check_digit(body)

    def _account(self, index: int) -> _Account:
        return _Account(
            account_id=f"A-{self.rng.randrange(10**8):08d}-{index}",
            iban=self.fake.iban(),
            card_number=self._card_number(),
        )

    def money(self, low: int, high: int) -> str:
        return str(Decimal(self.rng.randrange(low * 100, high * 100)) / 100)

    def sales(self) -> dict[str, Any]:
        customer = self.rng.choice(self.customers)
        items = [
            {
                "sku": sku,
                "product": product,
                "quantity": self.rng.randint(1, 5),
                "unit_price": self.money(5, 900),
            }
            for sku, product in self.rng.sample(_PRODUCTS, self.rng.randint(1, 4))
        ]
        return {
            "order_id": f"O-{self.uuid().hex[:12]}",
            "customer_id": customer.customer_id,
            "customer_name": customer.name,
            "email": customer.email,
            "phone": customer.phone,
            "address": dict(customer.address),
            "region": customer.region,
            "currency": self.rng.choice(_CURRENCIES),
            "line_items": items,
        }

    def finance(self) -> dict[str, Any]:
        account = self.rng.choice(self.accounts)
        return {
            "payment_id": f"P-{self.uuid().hex[:12]}",
            "account_id": account.account_id,
            "card_number": account.card_number,
            "iban": account.iban,
            "amount": self.money(1, 5000),
            "currency": self.rng.choice(_CURRENCIES),
        }

    def generic(self, department: str) -> dict[str, Any]:
        """A department with no typed payload yet (e.g. a new ``hr``): any object with an entity id."""
        return {
            "entity_id": f"{department[:3].upper()}-{self.rng.randrange(10**6):06d}",
            "note": self.fake.sentence(nb_words=6),
            "reference": self.fake.bothify("??-####").upper(),
        }


def event_type_for(department: str) -> str:
    return EVENT_TYPES.get(department, f"{department}.record.created")


def generate_events(
    count: int,
    departments: Sequence[str],
    seed: int | None = None,
    *,
    base_time: datetime | None = None,
) -> list[DepartmentEvent]:
    """``count`` events dealt round-robin over ``departments``; the same seed gives the same events.

    Without a seed a random one is drawn and timestamps are relative to now.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if not departments and count:
        raise ValueError("at least one department is needed")
    if seed is None:
        seed = random.SystemRandom().getrandbits(63)
        base = base_time or datetime.now(UTC)
    else:
        base = base_time or SEEDED_BASE_TIME
    gen = _Generator(seed, count)
    events = []
    for index in range(count):
        department = departments[index % len(departments)]
        if department == "sales":
            data = gen.sales()
        elif department == "finance":
            data = gen.finance()
        else:
            data = gen.generic(department)
        events.append(
            DepartmentEvent(
                event_id=gen.uuid(),
                department=department,
                event_type=event_type_for(department),
                occurred_at=base - timedelta(seconds=gen.rng.randrange(0, 3600)),
                schema_version=SCHEMA_VERSION,
                data=data,
            )
        )
    return events


def to_message_body(event: DepartmentEvent) -> str:
    """The SQS message body for an event (compact JSON, what ``validation.parse_event`` reads)."""
    return event.model_dump_json()
