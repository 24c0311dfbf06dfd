"""vault.store.names: the names-only index beside the vault, as written and as read back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.store.model import PAYLOAD_MAGIC
from vault.store.names import index_path, payload_names, read_index, write_index

NAMES = st.lists(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,20}", fullmatch=True), max_size=8, unique=True
)


def _payload(names: list[str]) -> bytes:
    lines = b"".join(f'{n}\t{{"access_token": "SECRET"}}\n'.encode() for n in names)
    return PAYLOAD_MAGIC + b'#meta\t{"v": 1}\n' + lines


@pytest.fixture
def vault_file(tmp_path: Path) -> Path:
    folder = tmp_path / "v"
    folder.mkdir(mode=0o700)
    return folder / "vault.enc"


@settings(max_examples=50, deadline=None)
@given(NAMES)
def test_the_index_reads_back_the_payloads_names_and_nothing_else(names: list[str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as top:
        os.chmod(top, 0o700)
        vault_file = Path(top) / "vault.enc"
        write_index(vault_file, _payload(names))
        assert read_index(vault_file) == sorted(names)
        assert b"SECRET" not in index_path(vault_file).read_bytes()
        assert os.stat(index_path(vault_file)).st_mode & 0o777 == 0o600


def test_payload_names_leave_the_meta_line_out() -> None:
    assert payload_names(_payload(["a", "b"])) == ["a", "b"]
    assert payload_names(b"not a payload") == []


def test_an_unwritable_folder_removes_a_stale_index(vault_file: Path) -> None:
    write_index(vault_file, _payload(["old"]))
    blocker = vault_file.with_name(".vault.names.tmp")
    blocker.mkdir()  # the temporary cannot be made: the write fails
    (blocker / "x").write_text("")
    write_index(vault_file, _payload(["new"]))
    assert read_index(vault_file) is None


def test_no_index_reads_as_none(vault_file: Path) -> None:
    assert read_index(vault_file) is None
