"""Getting the passive anti-spoofing models into the folder `REALNAME_PAD_MODEL_DIR` names.

They are in no wheel, and the service never downloads anything at run time: a deployer runs one of these
once (through `python -m server models ...`), and every file is checked against its pinned SHA-256
before it is put in place.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .files import ModelFileError, verify_sha256
from .pad import PAD_FILES, PadModelFile

SOURCE_REPOSITORY = "https://github.com/yakhyo/face-anti-spoofing"
SOURCE_COMMIT = "c175efef505bc275f7835cc9aa2aecab305ac184"
SOURCE_FOLDER = "weights"
DOWNLOAD_TIMEOUT_S = 60.0
INSTALL_TIMEOUT_S = 10.0  # `models install` on a machine without internet must not hang
MAX_DOWNLOAD_BYTES = 8 * 1024 * 1024  # each file is about 1.7 MB


def source_url(spec: PadModelFile) -> str:
    return f"{SOURCE_REPOSITORY}/raw/{SOURCE_COMMIT}/{SOURCE_FOLDER}/{spec.name}"


def _install(candidate: Path, spec: PadModelFile, dest_dir: Path) -> Path:
    """Verify a file, then move it into place atomically (a half-written model is never left behind)."""
    verify_sha256(candidate, spec.sha256)
    target = dest_dir / spec.name
    with tempfile.NamedTemporaryFile(dir=dest_dir, prefix=f".{spec.name}.", delete=False) as staging:
        staged = Path(staging.name)
    try:
        shutil.copyfile(candidate, staged)
        staged.chmod(0o644)
        staged.replace(target)
    finally:
        staged.unlink(missing_ok=True)
    return target


def import_pad_models(source_dir: str | Path, dest_dir: str | Path) -> list[Path]:
    """Copy MiniFASNetV2.onnx and MiniFASNetV1SE.onnx from a folder (e.g. a checkout or a download made
    elsewhere) into `dest_dir`, refusing any file whose SHA-256 is not the pinned one."""
    source, dest = Path(source_dir).expanduser(), Path(dest_dir).expanduser()
    missing = [spec.name for spec in PAD_FILES if not (source / spec.name).is_file()]
    if missing:
        raise ModelFileError(f"{source} lacks {', '.join(missing)}")
    for spec in PAD_FILES:  # check both before installing either
        verify_sha256(source / spec.name, spec.sha256)
    dest.mkdir(parents=True, exist_ok=True)
    return [_install(source / spec.name, spec, dest) for spec in PAD_FILES]


def fetch_pad_models(dest_dir: str | Path, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> list[Path]:
    """Download both files from the source repository at the pinned commit into `dest_dir`, checked.

    Needs access to github.com; on a machine without it, download the two files elsewhere and use
    import_pad_models. Raises ModelFileError with a plain message on any network or checksum failure.
    """
    dest = Path(dest_dir).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".download-") as scratch:
        downloaded = Path(scratch)
        for spec in PAD_FILES:
            _download(source_url(spec), downloaded / spec.name, timeout_s)
        return import_pad_models(downloaded, dest)


def _download(url: str, target: Path, timeout_s: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "realname-models"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response, open(target, "wb") as out:
            received = 0
            while chunk := response.read(1 << 16):
                received += len(chunk)
                if received > MAX_DOWNLOAD_BYTES:
                    raise ModelFileError(f"{url} is larger than expected; refusing it")
                out.write(chunk)
    except urllib.error.HTTPError as error:
        raise ModelFileError(f"could not download {url}: HTTP {error.code}") from error
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ModelFileError(
            f"could not download {url} ({reason}); without access to github.com, fetch the files elsewhere "
            "and import them from a folder"
        ) from error
