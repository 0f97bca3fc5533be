"""OpenTofu's machine output, read from real captures (tests/data/tofu): the ``-json`` UI stream and ``show -json``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ralf.errors import ExternalToolError
from ralf.stacks import tofu_json

DATA = Path(__file__).resolve().parents[1] / "data" / "tofu"


def lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


def test_init_json_is_read_as_messages_and_its_error_as_a_diagnostic():
    ok = lines("init.jsonl")
    assert tofu_json.errors(ok) == []
    assert [tofu_json.message(line)["type"] for line in ok] == [
        "version", "init_output", "init_output", "log", "init_output", "init_output"]
    assert tofu_json.errors(lines("init-error.jsonl")) == [
        'Failed to read file: The file "backend.hcl" could not be read.']


def test_an_import_plan_and_apply_count_the_import():
    plan = lines("plan-import.jsonl")
    assert tofu_json.errors(plan) == [] and tofu_json.change_count(plan) == 2  # 1 to import, 1 to change
    assert tofu_json.change_count(lines("apply-import.jsonl")) == 2
    assert [tofu_json.human(line) for line in lines("apply-import.jsonl")][-2] == (
        "Apply complete! Resources: 1 imported, 0 added, 1 changed, 0 destroyed.")


def test_the_saved_import_plan_is_an_update_not_a_destroy():
    plan = tofu_json.read_plan((DATA / "show-import.json").read_text())
    assert [(c.address, c.actions) for c in plan.changes] == [("terraform_data.this", ["update"])]
    assert plan.destructive == [] and plan.change_count == 1


def test_a_line_that_is_not_a_message_is_passed_through_for_the_log():
    assert tofu_json.message("There are some problems with the CLI configuration:") is None
    assert tofu_json.human("│ Warning: x") == "│ Warning: x"
    assert tofu_json.change_count(["{not json", "[]"]) is None


def test_an_unreadable_saved_plan_is_an_error_not_a_guess():
    with pytest.raises(ExternalToolError, match="cannot read the saved plan"):
        tofu_json.read_plan('{"resource_changes": [{"address": "x"}]}')
