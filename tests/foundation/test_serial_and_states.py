"""One vocabulary of states (StrEnums that are their strings) and one path to JSON (ralf.serial)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ralf import serial
from ralf.states import CheckStatus, Result


def test_a_state_is_its_string_in_json_comparisons_and_sqlite():
    assert Result.SUCCEEDED == "succeeded" and f"{Result.NOT_RUN}" == "not run" and str(CheckStatus.NOT_CHECKED) == "NOT CHECKED"
    assert json.dumps({"r": Result.FAILED}) == '{"r": "failed"}'
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (result TEXT)")
    db.execute("INSERT INTO t VALUES (?)", (Result.STOPPED,))
    [(stored,)] = db.execute("SELECT result FROM t").fetchall()
    assert type(stored) is str and stored == Result.STOPPED  # an older journal's plain string compares equal


@dataclass
class _Inner(serial.Record):
    name: str
    state: Result


@dataclass
class _Outer(serial.Record):
    json_fields = ("title", "count", "inner", "where", "tags", "label=shout", "note")
    json_omit_empty = ("note",)

    title: str
    inner: list[_Inner]
    where: Path
    tags: tuple[str, ...] = ()
    note: str = ""
    hidden: str = "not in JSON"
    extra: dict = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.inner)

    def shout(self) -> str:
        return self.title.upper()


def test_a_record_emits_its_declared_fields_in_order_recursively():
    rec = _Outer("t", [_Inner("a", Result.SUCCEEDED), _Inner("b", Result.NOT_RUN)], Path("/x/y"), ("p", "q"))
    assert list(rec.to_dict().items()) == [
        ("title", "t"), ("count", 2),
        ("inner", [{"name": "a", "state": "succeeded"}, {"name": "b", "state": "not run"}]),
        ("where", "/x/y"), ("tags", ["p", "q"]), ("label", "T"),
    ]
    rec.note = "kept when set"
    assert rec.to_dict()["note"] == "kept when set"
    assert json.loads(serial.dumps(rec)) == rec.to_dict()


def test_to_data_of_plain_values():
    assert serial.to_data({1: (Result.FAILED, {Path("p")}), "k": None}) == {"1": ["failed", ["p"]], "k": None}
    assert serial.to_data(_Inner("x", Result.ERROR)) == {"name": "x", "state": "error"}
    assert serial.dumps("ü", indent=None) == '"ü"'


def test_the_journal_keeps_writing_the_same_plan_json(default_catalog, tmp_path):
    from ralf.journal import Journal
    from ralf.planner import build_plan

    plan = build_plan(default_catalog, "n8n")
    with Journal(tmp_path / "j.sqlite3") as j:
        run_id = j.start_run(plan, executor="local")
        j.update_step(run_id, 0, result=Result.SUCCEEDED)
        stored = j.db.execute("SELECT plan FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        assert json.loads(stored) == plan.to_dict()
        assert j.run(run_id)["steps"][0]["result"] == "succeeded"
