"""onnxruntime-web's files, taken from the npm registry's ``onnxruntime-web`` package when a site
is first built, checked against the package's pinned sha512 and cached; never shipped in the
repository (the WASM binaries are 15 and 29 MB, over the 10 MB limit for a tracked file) and
never fetched by the page (the site works offline).

``artgan web --fetch-runtime`` fills the cache ahead of time (CI does, before the tests); with no
registry at hand, ``--ort-web FILE.tgz`` takes the tarball ``npm pack onnxruntime-web@VERSION``
writes elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..errors import ArtganError
from .ops import ORT_WEB_VERSION

#: ``npm view onnxruntime-web@1.31.1 dist.integrity``
INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
DEFAULT_REGISTRY = "https://registry.npmjs.org/"

#: The WASM-only bundle and the single build it loads (SIMD, threads when the page is
#: cross-origin isolated).
WASM_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
#: The WebGPU bundle (it has the WASM backend too) and the build it loads.
WEBGPU_FILES = ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs",
                "ort-wasm-simd-threaded.asyncify.wasm")

LICENSE_TEXT = """onnxruntime-web {version}: https://www.npmjs.com/package/onnxruntime-web
(source: https://github.com/microsoft/onnxruntime, js/web), taken unchanged from the npm
registry's tarball {tarball} (sha512 checked: {integrity}).

MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "artgan" / "onnxruntime-web" / ORT_WEB_VERSION


def registry() -> str:
    """npm's own setting (``NPM_CONFIG_REGISTRY``, e.g. a mirror) or the public registry."""
    url = os.environ.get("NPM_CONFIG_REGISTRY") or os.environ.get("npm_config_registry") or DEFAULT_REGISTRY
    return url if url.endswith("/") else url + "/"


def tarball_url() -> str:
    return f"{registry()}onnxruntime-web/-/onnxruntime-web-{ORT_WEB_VERSION}.tgz"


def runtime_files(tarball: str | Path | None = None) -> Path:
    """The folder holding every file of :data:`WASM_FILES` and :data:`WEBGPU_FILES`: the cache,
    filled from ``tarball`` (a local ``.tgz``) or the registry when it lacks one."""
    folder = cache_dir()
    if tarball is None and all((folder / f).is_file() for f in (*WASM_FILES, *WEBGPU_FILES)):
        return folder
    if tarball is not None:
        try:
            data = Path(tarball).read_bytes()
        except OSError as exc:
            raise ArtganError(f"{tarball}: cannot read the onnxruntime-web tarball ({exc.strerror})") from None
        source = str(tarball)
    else:
        data, source = _download(), tarball_url()
    _check_integrity(data, source)
    _unpack(data, folder)
    return folder


def _download() -> bytes:
    import urllib.request

    url = tarball_url()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.read()
    except Exception as exc:  # URLError, timeouts, HTTP errors: all mean "not from here"
        reason = getattr(exc, "reason", None) or exc
        raise ArtganError(
            f"onnxruntime-web {ORT_WEB_VERSION} is not in the cache ({cache_dir()}) and {url} cannot be "
            f"fetched ({reason}); run `artgan web --fetch-runtime` where the npm registry is reachable "
            f"(NPM_CONFIG_REGISTRY names a mirror), or pass --ort-web FILE.tgz from "
            f"`npm pack onnxruntime-web@{ORT_WEB_VERSION}`") from None


def _check_integrity(data: bytes, source: str) -> None:
    algo, _, want = INTEGRITY.partition("-")
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != want:
        raise ArtganError(f"{source}: not onnxruntime-web {ORT_WEB_VERSION} (its sha512 differs from the "
                          f"registry's {INTEGRITY[:24]}...); use `npm pack onnxruntime-web@{ORT_WEB_VERSION}`")


def _unpack(data: bytes, folder: Path) -> None:
    """Extract the needed files (only those: the package holds 500) into ``folder``, atomically."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for name in (*WASM_FILES, *WEBGPU_FILES):
                member = tar.extractfile(f"package/dist/{name}")
                if member is None:
                    raise ArtganError(f"onnxruntime-web {ORT_WEB_VERSION}: package/dist/{name} missing from the tarball")
                (tmp / name).write_bytes(member.read())
        (tmp / "LICENSE.txt").write_text(LICENSE_TEXT.format(version=ORT_WEB_VERSION, tarball=tarball_url(),
                                                             integrity=INTEGRITY))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
