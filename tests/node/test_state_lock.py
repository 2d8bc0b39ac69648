"""One node per state directory: the lock refuses a second holder, names the first, and lets go when released."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from federation.errors import ConfigError
from federation.node.state_lock import LOCK_NAME, StateLock, hold_state_dir


def test_a_second_lock_on_the_same_directory_names_the_directory_and_the_holders_pid(tmp_path: Path) -> None:
    state = tmp_path / "state" / "north-district"
    with StateLock.acquire(state):
        assert (state / LOCK_NAME).read_text().strip() == str(os.getpid())
        with pytest.raises(ConfigError, match=f"pid {os.getpid()}") as refused:
            StateLock.acquire(state)  # another open file description conflicts, as another process's would
        assert refused.value.path == str(state)
        assert "already uses this state directory" in str(refused.value)


def test_a_released_lock_can_be_taken_again(tmp_path: Path) -> None:
    first = StateLock.acquire(tmp_path)
    first.release()
    first.release()  # releasing twice is harmless
    assert not first.held
    with StateLock.acquire(tmp_path) as second:
        assert second.held


def test_a_holder_that_has_not_written_its_pid_yet_is_still_refused(tmp_path: Path) -> None:
    fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ConfigError, match="pid unknown"):
            StateLock.acquire(tmp_path)
    finally:
        os.close(fd)


def test_a_node_restarted_in_the_same_process_shares_the_lock_it_holds(tmp_path: Path) -> None:
    state = tmp_path / "state"
    held = hold_state_dir(state)
    try:
        assert hold_state_dir(tmp_path / "state" / ".." / "state") is held
        with pytest.raises(ConfigError, match="already uses"):
            StateLock.acquire(state)
    finally:
        held.release()
    assert hold_state_dir(state) is not held  # a released lock is taken afresh
    hold_state_dir(state).release()


def test_start_node_refuses_a_locked_state_directory_before_loading_anything(tmp_path: Path) -> None:
    from federation.node.serve import start_node

    manifest = tmp_path / "nodes" / "north-district.toml"
    manifest.parent.mkdir()
    manifest.write_text(
        '[node]\nid = "north-district"\nkind = "department"\n'
        '[data]\npath = "missing.csv"\nschema = "missing-schema.toml"\n[data.columns]\nfirm_id = "reg_no"\n'
        '[policy]\npath = "missing-policy.toml"\n'
        '[tls]\ndir = "pki"\n'
    )
    state = tmp_path / "elsewhere"
    with StateLock.acquire(state), pytest.raises(ConfigError, match="already uses this state directory"):
        start_node(manifest, state_dir=state)  # the missing data and policy files are never reached
