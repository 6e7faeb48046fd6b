"""The write-behind table: a batch reads its own writes, the table sees each key once, under the event that
made the change (its changelog partition), last-changed last; a discarded batch leaves the table as it was."""

from __future__ import annotations

from typing import Any

from faust.streams import current_event

from keyfan.consumer.writebehind import WriteBehindTable


class Event:
    """Stands for a Faust event: only its identity matters here."""

    def __init__(self, partition: int) -> None:
        self.partition = partition


class RecordingTable(dict[str, Any]):
    """A dict that notes every write and the event Faust would have taken as current for it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.writes: list[tuple[str, Any, int | None]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        event = current_event()
        self.writes.append((key, value, event.partition if event is not None else None))  # type: ignore[attr-defined]
        super().__setitem__(key, value)

    def pop(self, key: str, default: Any = None) -> Any:
        event = current_event()
        self.writes.append((key, "<deleted>", event.partition if event is not None else None))  # type: ignore[attr-defined]
        return super().pop(key, default)


def _batch(table: RecordingTable) -> tuple[WriteBehindTable, list[Event | None]]:
    now: list[Event | None] = [None]
    return WriteBehindTable(table, event=lambda: now[0]), now  # type: ignore[arg-type,return-value]


def test_a_batch_reads_its_own_writes_and_the_table_sees_none_until_applied() -> None:
    table = RecordingTable({"0": {"position": 4}, "event:old": [0, 1]})
    batch, now = _batch(table)
    now[0] = Event(0)
    batch["0"] = {"position": 5}
    batch["event:a"] = [0, 5]
    del batch["event:old"]
    assert batch["0"] == {"position": 5} and batch.get("event:a") == [0, 5]
    assert "event:old" not in batch and batch.get("event:old") is None
    assert sorted(batch) == ["0", "event:a"] and len(batch) == 2
    assert dict(batch.items()) == {"0": {"position": 5}, "event:a": [0, 5]}
    # the table itself is untouched
    assert table == {"0": {"position": 4}, "event:old": [0, 1]} and table.writes == []
    assert batch.pending == 3


def test_apply_writes_each_key_once_last_changed_last_under_the_event_that_changed_it() -> None:
    table = RecordingTable()
    batch, now = _batch(table)
    # records of partitions 0 and 3 interleaved, as one fetch delivers them
    for offset, partition in enumerate([0, 3, 0, 3, 0]):
        now[0] = Event(partition)
        batch[f"event:{offset}"] = [partition, offset]
        batch[str(partition)] = {"position": offset}
    now[0] = Event(3)  # the last event of the batch belongs to partition 3
    batch.apply()
    # each key written once, under its own partition's event, and each slot after its partition's event ids
    keys = [k for k, _, _ in table.writes]
    assert len(keys) == len(set(keys)) == 7
    assert all(p == int(v[0]) for k, v, p in table.writes if k.startswith("event:"))
    assert {k: p for k, _, p in table.writes if not k.startswith("event:")} == {"0": 0, "3": 3}
    for slot, partition in (("0", 0), ("3", 3)):
        ids = [i for i, (k, v, _) in enumerate(table.writes) if k.startswith("event:") and v[0] == partition]
        assert max(ids) < keys.index(slot)
    assert table["0"] == {"position": 4} and table["3"] == {"position": 3}
    assert batch.pending == 0 and current_event() is None  # the current event is restored


def test_a_discarded_batch_leaves_the_table_as_it_was() -> None:
    table = RecordingTable({"0": {"position": 4}})
    batch, now = _batch(table)
    now[0] = Event(0)
    batch["0"] = {"position": 9}
    batch["event:x"] = [0, 9]
    batch.discard()
    assert batch["0"] == {"position": 4} and "event:x" not in batch
    batch.apply()
    assert table.writes == [] and table == {"0": {"position": 4}}


def test_deletes_are_applied_as_deletes() -> None:
    table = RecordingTable({"event:old": [0, 1]})
    batch, now = _batch(table)
    now[0] = Event(0)
    batch.pop("event:old")
    batch.apply()
    assert table == {} and table.writes == [("event:old", "<deleted>", 0)]
