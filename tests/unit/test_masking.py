"""Masked hints keep only what a person needs to recognise a value."""

from __future__ import annotations

from keyfan.masking import mask_card, mask_email, mask_iban, mask_id, mask_name, mask_phone


def test_masks_keep_only_a_hint() -> None:
    assert mask_card("4111111111111111") == "****-****-****-1111"
    assert mask_email("jane.doe@example.com") == "j***@example.com"
    assert mask_phone("+1 (555) 123-6789") == "***-***-6789"
    assert mask_iban("GB82WEST12345698765432") == "GB** **** 5432"
    assert mask_name("Jane Doe") == "J*** D***"


def test_short_values_are_fully_hidden() -> None:
    assert mask_card("123") == "***"
    assert mask_phone("12") == "***"
    assert mask_email("nobody") == "***"


def test_an_id_keeps_its_last_four_characters_only() -> None:
    assert mask_id("C-00310310") == "*****0310"
    assert mask_id("abc") == "***"
    assert mask_id("[shredded]") == "[shredded]"
