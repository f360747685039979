"""Where the Azurite runner finds Azurite: `$AZURITE_BIN`, then the caller's folders, then PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from localcloud.azurite import BIN_ENV, AzuriteMissing, executable


def _fake(folder: Path, name: str = "azurite-blob") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture(autouse=True)
def _node_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("node") is None:
        pytest.skip("Azurite needs node, and so does this check")
    monkeypatch.delenv(BIN_ENV, raising=False)


def test_the_environment_wins_then_the_callers_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_env, from_caller = _fake(tmp_path / "env"), _fake(tmp_path / "caller")
    assert executable("azurite-blob", [tmp_path / "caller"]) == from_caller
    monkeypatch.setenv(BIN_ENV, str(tmp_path / "env"))
    assert executable("azurite-blob", [tmp_path / "caller"]) == from_env


def test_path_is_the_last_resort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = _fake(tmp_path / "path")
    monkeypatch.setenv("PATH", f"{tmp_path / 'path'}{os.pathsep}{os.environ['PATH']}")
    assert executable("azurite-blob", [tmp_path / "empty"]) == on_path


def test_missing_azurite_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(Path(shutil.which("node") or "").parent))
    with pytest.raises(AzuriteMissing, match="npm install azurite") as missing:
        executable("azurite-blob", [tmp_path / "nothing-here"])
    assert str(tmp_path / "nothing-here") in str(missing.value)
