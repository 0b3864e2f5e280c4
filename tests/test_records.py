"""search/records.py: typed records with one JSON form each; old history lines (no version) still read."""
import dataclasses

import pytest

from arch_gpt.errors import UserInputError
from arch_gpt.search.records import HISTORY_VERSION, FitnessRecord, HistoryEntry, Timings

ENTRY = HistoryEntry(evaluation=3, generation=1, key="k", fitness=0.5, test_acc=None, params=12, cost_s=0.1,
                     error=None, cached=False, origin="mutation", parents=("a",), predicted_units=(0, 2),
                     best_fitness=0.7)


def test_history_entry_round_trip_is_versioned():
    data = ENTRY.to_json()
    assert data["v"] == HISTORY_VERSION and data["parents"] == ["a"] and data["predicted_units"] == [0, 2]
    assert HistoryEntry.from_json(data) == ENTRY


def test_a_history_line_written_before_versions_reads_as_version_1():
    legacy = {k: v for k, v in ENTRY.to_json().items() if k != "v"}
    assert HistoryEntry.from_json(legacy) == ENTRY


@pytest.mark.parametrize("change, match", [
    ({"v": 2}, "field 'v': history format 2"), ({"colour": 1}, "unknown field 'colour'"),
    ({"fitness": dataclasses.MISSING}, "missing field 'fitness'"),
])
def test_bad_history_lines_name_the_field(change, match):
    data = {**ENTRY.to_json(), **change}
    data = {k: v for k, v in data.items() if v is not dataclasses.MISSING}
    with pytest.raises(UserInputError, match=match):
        HistoryEntry.from_json(data, "history.jsonl: line 3")


def test_a_history_line_that_is_no_object():
    with pytest.raises(UserInputError, match="line 1: expected a JSON object, got list"):
        HistoryEntry.from_json([1, 2], "line 1")


def test_fitness_record_and_timings_round_trip():
    rec = FitnessRecord("k", 0.5, test_acc=0.4, params=3, cost_s=1.0, error=None, extra={"mode": "full"})
    assert FitnessRecord.from_json(rec.to_json()) == rec
    t = Timings(1.0, 0.5, 2.0, 3.0)
    assert Timings.from_json(t.to_json()) == t and t.rounded(0) == {"search_s": 1.0, "reconstruction_s": 0.0,
                                                                    "evaluation_s": 2.0, "total_s": 3.0,
                                                                    "screening_s": 0.0}
    with pytest.raises(UserInputError, match="checkpoint: unknown field 'when'"):
        Timings.from_json({"when": 1}, "checkpoint")
