"""Folders vault creates are 0700 under any umask, the missing parents included: a parent made
0777 under `umask 000` (~/.local/share, ~/.local/state) would let any local user move the vault
folder away and put their own in its place."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import IntegrityError
from vault.fs.paths import ensure_private_dir


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@settings(max_examples=60, deadline=None)
@given(mask=st.integers(0, 0o777), depth=st.integers(1, 4))
def test_every_created_folder_is_0700_under_any_umask(mask: int, depth: int) -> None:
    with tempfile.TemporaryDirectory() as base:
        created = [Path(base).joinpath(*(f"p{i}" for i in range(n + 1))) for n in range(depth)]
        with _umask(mask):
            ensure_private_dir(created[-1])
        for folder in created:
            st_ = os.lstat(folder)
            assert stat.S_ISDIR(st_.st_mode)
            assert stat.S_IMODE(st_.st_mode) == 0o700, (oct(mask), folder)
            assert st_.st_uid == os.geteuid()


@settings(max_examples=20, deadline=None)
@given(mask=st.integers(0, 0o777), mode=st.sampled_from([0o755, 0o711, 0o750]))
def test_existing_parents_are_left_as_they_are(mask: int, mode: int) -> None:
    with tempfile.TemporaryDirectory() as base:
        parent = Path(base) / "home"
        parent.mkdir()
        parent.chmod(mode)
        with _umask(mask):
            ensure_private_dir(parent / "a" / "vault")
        assert stat.S_IMODE(os.lstat(parent).st_mode) == mode
        assert stat.S_IMODE(os.lstat(parent / "a").st_mode) == 0o700


def test_a_symlink_in_place_of_the_vault_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "vault").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(IntegrityError, match="symlink"):
        ensure_private_dir(tmp_path / "vault")


def test_a_file_in_place_of_a_parent_is_refused(tmp_path: Path) -> None:
    (tmp_path / "share").write_text("")
    with pytest.raises(IntegrityError, match="cannot create folder"):
        ensure_private_dir(tmp_path / "share" / "vault")
