"""`pip install .` gives a `rotation` command equivalent to `python -m rotation`, and installs only the
rotator (not the edge, the local cloud, the demo or the tests)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import rotation.cli

ROOT = Path(__file__).resolve().parents[2]


def test_the_console_script_is_the_module_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"rotation": "rotation.cli:main"}
    module, _, attribute = project["scripts"]["rotation"].partition(":")
    assert getattr(sys.modules[module], attribute) is rotation.cli.main


def test_the_wheel_holds_the_rotator_and_its_command(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", tmp_path, ROOT],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0 and "No module named" in built.stderr and "setuptools" in built.stderr:
        pytest.skip("setuptools is not installed in this environment")
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("entra_secret_rotator-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.startswith("entra_secret_rotator-")}
    assert tops == {"rotation"}
    for room in ("domain", "service", "adapters", "tools", "cli"):
        assert f"rotation/{room}/__init__.py" in names
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    assert "rotation = rotation.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_command_names_itself(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/rotation", "--help"])
    with pytest.raises(SystemExit):
        rotation.cli.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: rotation ")
    monkeypatch.setattr(sys, "argv", ["/repo/rotation/__main__.py"])
    with pytest.raises(SystemExit):
        rotation.cli.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m rotation ")
