"""Policy and config folders are trusted only along a trusted path, as OpenSSH's StrictModes
checks a key's folders: every folder from the one named up to / is owned by root or you and
not writable by group or others, unless it is sticky (/tmp: others may add entries there but
not rename or remove yours). Whoever can write a folder on the way can rename the
administrator's policy away, and every command would then run with no rules."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import ConfigError
from vault.fs.paths import check_trusted_path

WRITABLE = [0o777, 0o775, 0o770, 0o757, 0o722, 0o720, 0o702]
SAFE = [0o755, 0o700, 0o711, 0o750, 0o1777, 0o1775, 0o1770]


def _chain(base: Path, depth: int) -> list[Path]:
    return [base.joinpath(*(f"d{i}" for i in range(n + 1))) for n in range(depth)]


@settings(max_examples=80, deadline=None)
@given(
    depth=st.integers(1, 4),
    level=st.integers(0, 3),
    mode=st.sampled_from(WRITABLE),
    exists=st.booleans(),
)
def test_a_writable_folder_anywhere_on_the_path_is_refused(
    depth: int, level: int, mode: int, exists: bool
) -> None:
    with tempfile.TemporaryDirectory() as base:
        folders = _chain(Path(base), depth)
        folders[-1].mkdir(parents=True)
        bad = folders[min(level, depth - 1)]
        bad.chmod(mode)
        target = folders[-1] / "policies"
        if exists:
            target.mkdir()
        try:
            with pytest.raises(ConfigError) as info:
                check_trusted_path(target, "policy folder")
            assert str(bad) in info.value.message
            assert f"{mode:04o}" in info.value.message
        finally:
            bad.chmod(0o700)


@settings(max_examples=40, deadline=None)
@given(depth=st.integers(1, 4), modes=st.lists(st.sampled_from(SAFE), min_size=4, max_size=4))
def test_a_path_of_safe_or_sticky_folders_is_trusted(depth: int, modes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as base:
        folders = _chain(Path(base), depth)
        folders[-1].mkdir(parents=True)
        try:
            for folder, mode in zip(folders, modes, strict=False):
                folder.chmod(mode)
            check_trusted_path(folders[-1], "policy folder")
            check_trusted_path(folders[-1] / "missing" / "policies", "policy folder")
        finally:
            for folder in folders:
                folder.chmod(0o700)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder away needs root")
def test_a_folder_of_another_user_on_the_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "theirs" / "policies").mkdir(parents=True)
    os.chown(tmp_path / "theirs", 65534, 65534)
    with pytest.raises(ConfigError, match="owned by uid 65534"):
        check_trusted_path(tmp_path / "theirs" / "policies", "policy folder")


def test_the_folder_behind_a_symlink_is_checked_too(tmp_path: Path) -> None:
    (tmp_path / "loose" / "policies").mkdir(parents=True)
    (tmp_path / "loose").chmod(0o777)
    (tmp_path / "tidy").mkdir(mode=0o755)
    (tmp_path / "tidy" / "policies").symlink_to(tmp_path / "loose" / "policies")
    try:
        with pytest.raises(ConfigError, match="loose"):
            check_trusted_path(tmp_path / "tidy" / "policies", "policy folder")
    finally:
        (tmp_path / "loose").chmod(0o700)
