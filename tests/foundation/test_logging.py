"""ralf's diagnostics: silent by default, shown with -v / -vv, secrets masked whoever logs them."""

from __future__ import annotations

import io
import logging

import pytest

from ralf import log, settings


@pytest.fixture
def captured():
    stream = io.StringIO()
    log.configure(2, stream)
    yield stream
    log.reset()


def test_levels():
    assert [log.level_for(n) for n in (0, 1, 2, 3)] == [logging.WARNING, logging.INFO, logging.DEBUG, logging.DEBUG]


def test_a_secret_variable_read_through_settings_is_masked_in_every_record(captured):
    token = "tok-0123456789abcdef"
    assert settings.get("SEMAPHORE_TOKEN", {"SEMAPHORE_TOKEN": token}) == token
    logging.getLogger("ralf.somewhere").info("sending Authorization: Bearer %s", token)
    try:
        raise RuntimeError(f"failed with {token}")
    except RuntimeError:
        logging.getLogger("ralf.elsewhere").exception("request failed")
    text = captured.getvalue()
    assert "sending Authorization: Bearer ***" in text
    assert "failed with ***" in text  # the traceback too
    assert token not in text


def test_a_plain_variable_is_not_masked(captured):
    settings.get("SEMAPHORE_USER", {"SEMAPHORE_USER": "operator-name"})
    logging.getLogger("ralf.x").info("user %s", "operator-name")
    assert "user operator-name" in captured.getvalue()


def test_quiet_without_verbose(run_cli, repo_root):
    code, _, err = run_cli("validate", "--platform", str(repo_root / "platform.yaml"))
    assert code == 0 and "INFO" not in err and "DEBUG" not in err


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_shows_what_ralf_did_before_or_after_the_subcommand(run_cli, repo_root, where):
    platform = repo_root / "platform.yaml"
    args = ["-v", "validate", "--platform", str(platform)] if where == "before" else \
        ["validate", "-v", "--platform", str(platform)]
    code, _, err = run_cli(*args)
    assert code == 0
    assert f"ralf: INFO ralf.loader: platform ralf-homelab loaded from {platform}" in err.splitlines()
    code, _, err = run_cli("validate", "--platform", str(platform))  # the next run is quiet again
    assert "INFO" not in err
