"""The demo's accounting: every event is placed, and each department reads exactly its own."""

from __future__ import annotations

from keyfan_tools.demo.report import ConsumerCounts, DemoReport, Sample, account, render, settled

GENERATED = {"sales": 26, "finance": 24}


def _consumers(sales: tuple[int, int, int], finance: tuple[int, int, int]) -> dict[str, ConsumerCounts]:
    return {
        "sales": ConsumerCounts(decrypted=sales[0], access_denied=sales[1], dead_lettered=sales[2]),
        "finance": ConsumerCounts(decrypted=finance[0], access_denied=finance[1], dead_lettered=finance[2]),
    }


def test_a_clean_run_accounts_for_everything() -> None:
    consumers = _consumers((26, 24, 0), (24, 26, 0))

    assert settled(GENERATED, GENERATED, 0, consumers)
    assert account(GENERATED, GENERATED, 0, consumers) == (0, [])


def test_missing_records_are_unaccounted_and_not_settled() -> None:
    published = {"sales": 26, "finance": 20}  # 4 events never left the owner
    consumers = _consumers((26, 18, 0), (20, 26, 0))  # sales has not seen 2 records yet

    unaccounted, _ = account(GENERATED, published, 0, consumers)

    assert not settled(GENERATED, published, 0, consumers)
    assert unaccounted == 4 + 2


def test_owner_dead_letters_count_as_accounted() -> None:
    published = {"sales": 26, "finance": 23}
    consumers = _consumers((26, 23, 0), (23, 26, 0))

    assert account(GENERATED, published, 1, consumers) == (0, [])


def test_reading_another_departments_data_is_a_problem() -> None:
    # sales decrypted two finance records: an IAM leak, even though nothing is lost
    consumers = _consumers((28, 22, 0), (24, 26, 0))

    unaccounted, problems = account(GENERATED, GENERATED, 0, consumers)

    assert unaccounted == 0
    assert problems == [
        "sales decrypted 28 records, expected its own 26",
        "sales was denied 22 records, expected the others' 24",
    ]


def test_json_summary_has_the_documented_shape_and_render_says_ok() -> None:
    consumers = _consumers((26, 24, 0), (24, 26, 0))
    report = DemoReport(generated=GENERATED, published=GENERATED, consumers=consumers)

    assert report.summary() == {
        "generated": {"sales": 26, "finance": 24},
        "published": {"sales": 26, "finance": 24},
        "dead_lettered": 0,
        "consumers": {
            "sales": {"decrypted": 26, "access_denied": 24, "dead_lettered": 0},
            "finance": {"decrypted": 24, "access_denied": 26, "dead_lettered": 0},
        },
        "unaccounted": 0,
        "problems": [],
    }
    assert render(report).endswith("OK: every event accounted for.")


def test_the_sample_shows_the_record_before_and_after_its_subject_is_forgotten() -> None:
    sample = Sample(
        department="sales",
        partition=1,
        offset=0,
        event_id="e-1",
        ciphertext_bytes=512,
        ciphertext_preview="0201",
        key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        owner_view={"customer": "A*** B***", "email": "a***@example.com"},
        denied={"finance": "KMS Decrypt denied"},
        forgotten="****-****-1234",
        after_forget={"customer": "[shredded]", "email": "[shredded]"},
    )
    report = DemoReport(generated={"sales": 1}, published={"sales": 1}, consumers={}, sample=sample)
    text = render(report)
    before, after = text.split("keyfan forget --department sales --subject ****-****-1234")
    assert "A*** B***" in before and "[shredded]" not in before
    assert after.count("[shredded]") == 2 and "A*** B***" not in after
    assert "sample" not in report.summary()
