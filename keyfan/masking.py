"""Masked hints of sensitive values, for people reading logs and reports. Never the value itself.

A field that arrived shredded or withheld (``keyfan.personal_data``) is shown as its marker: there is
nothing to mask, and a masked marker would look like a value.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from keyfan.personal_data import is_marker


def _markers_as_they_are(mask: Callable[[str], str]) -> Callable[[str], str]:
    @functools.wraps(mask)
    def masked(value: str) -> str:
        return value if is_marker(value) else mask(value)

    return masked


def mask_tail(value: str, keep: int = 4, *, group: int = 4, sep: str = "-") -> str:
    """``4111111111111111`` -> ``****-****-****-1111``."""
    digits = "".join(ch for ch in value if ch.isalnum())
    if len(digits) <= keep:
        return "*" * len(digits)
    hidden = len(digits) - keep
    masked = "*" * hidden + digits[-keep:]
    return sep.join(masked[i : i + group] for i in range(0, len(masked), group))


@_markers_as_they_are
def mask_id(identifier: str) -> str:
    """``C-00310310`` -> ``*****0310``: an id's last four characters, for matching a request to a record."""
    return mask_tail(identifier, 4, group=64, sep="")


@_markers_as_they_are
def mask_card(number: str) -> str:
    return mask_tail(number)


@_markers_as_they_are
def mask_iban(iban: str) -> str:
    compact = iban.replace(" ", "")
    return compact[:2] + "**" + " **** " + mask_tail(compact, 4, group=64, sep="")[-4:]


@_markers_as_they_are
def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


@_markers_as_they_are
def mask_phone(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return "***-***-" + digits[-4:] if len(digits) > 4 else "***"


@_markers_as_they_are
def mask_name(name: str) -> str:
    return " ".join(part[:1] + "***" for part in name.split())
