"""Legacy Word (.doc, or RTF named .doc) -> .docx, and EMF/WMF pictures -> PNG, through LibreOffice.

What the measurements in notes/dovecot-libreoffice-postgres-redis.md call for:
- a private profile per process (-env:UserInstallation): two soffice sharing a profile fail silently;
  the profile is reused by later calls of the same process (a warm start is faster);
- one soffice call for a whole batch (20 files: 1.7 s, against 27.5 s one by one);
- a timeout, with the whole process group killed (soffice.bin is a child of soffice);
- soffice exits 0 when it could not read a file: success means "the output file exists";
- the header bytes are checked first: a text file named .doc would be "converted" as text.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

from PIL import Image, ImageChops

from app.core.errors import CopydeskError, DependencyMissing, InvalidDocument, TimedOut
from app.documents.package import RTF_MAGIC, ZIP_MAGIC, detect_kind

DEBIAN_PACKAGES = "libreoffice-writer-nogui libreoffice-draw-nogui"
_DOCX_FILTER = "docx:MS Word 2007 XML"
_profile_locks: dict[str, threading.Lock] = {}
_profile_locks_guard = threading.Lock()
_profiles_to_remove: set[str] = set()


class LibreOffice:
    """One LibreOffice installation, used with this process's private profile."""

    def __init__(
        self, path: str = "soffice", timeout: float = 120.0, profile_dir: str | os.PathLike | None = None
    ):
        self.path = path
        self.timeout = timeout
        self._profile_dir = Path(profile_dir) if profile_dir else None

    @classmethod
    def find(cls, path: str = "soffice", timeout: float = 120.0) -> LibreOffice | None:
        """A LibreOffice when `path` names an installed soffice, else None."""
        return cls(path, timeout) if shutil.which(path) else None

    def executable(self) -> str:
        found = shutil.which(self.path)
        if found is None:
            raise DependencyMissing(
                f"LibreOffice is not installed here (no '{self.path}' program): install LibreOffice "
                f"(Debian: apt-get install {DEBIAN_PACKAGES}) or set SOFFICE_PATH"
            )
        return found

    def profile(self) -> Path:
        """This process's own LibreOffice profile (created by soffice on first use, removed at exit)."""
        if self._profile_dir is None:
            self._profile_dir = Path(tempfile.gettempdir()) / f"copydesk-lo-{os.getpid()}"
            with _profile_locks_guard:
                if str(self._profile_dir) not in _profiles_to_remove:
                    _profiles_to_remove.add(str(self._profile_dir))
                    atexit.register(shutil.rmtree, self._profile_dir, True)
        return self._profile_dir

    # --- documents -----------------------------------------------------------------------------

    def doc_to_docx(self, data: bytes, filename: str = "") -> bytes:
        result = self.docs_to_docx([data], [filename])[0]
        if isinstance(result, CopydeskError):
            raise result
        return result

    def docs_to_docx(
        self, documents: list[bytes], filenames: list[str] | None = None
    ) -> list[bytes | CopydeskError]:
        """Convert many .doc files with one soffice call. Each result is the .docx bytes or the
        error for that file (a bad file never fails the others). .docx input is returned as is."""
        names = [
            (filenames[i] if filenames and i < len(filenames) else "") or f"document {i + 1}"
            for i in range(len(documents))
        ]
        results: list[bytes | CopydeskError | None] = [None] * len(documents)
        todo: list[int] = []
        for i, data in enumerate(documents):
            try:
                kind = detect_kind(data, names[i])
            except CopydeskError as exc:
                results[i] = exc
                continue
            if kind == "docx":
                results[i] = data
            else:
                todo.append(i)
        if todo:
            try:
                exe = self.executable()
            except DependencyMissing as exc:
                for i in todo:
                    results[i] = exc
                todo = []
            if todo:
                self._convert_batch(exe, documents, names, todo, results)
        return results  # type: ignore[return-value]

    def _convert_batch(self, exe, documents, names, todo, results) -> None:
        with tempfile.TemporaryDirectory(prefix="copydesk-doc-") as work:
            inputs = []
            for i in todo:
                ext = "rtf" if documents[i].lstrip()[:5] == RTF_MAGIC else "doc"
                path = Path(work, f"in{i}.{ext}")
                path.write_bytes(documents[i])
                inputs.append(path)
            out = Path(work, "out")
            finished = self._run(exe, ["--convert-to", _DOCX_FILTER, "--outdir", str(out), *map(str, inputs)])
            for i, path in zip(todo, inputs):
                produced = out / f"in{i}.docx"
                if not produced.exists() and not finished:
                    # The batch timed out: give this file a call of its own.
                    if not self._run(exe, ["--convert-to", _DOCX_FILTER, "--outdir", str(out), str(path)]):
                        results[i] = TimedOut(
                            f"LibreOffice took longer than {self.timeout:.0f} s on {names[i]}"
                        )
                        continue
                results[i] = self._read_output(produced, names[i])

    @staticmethod
    def _read_output(produced: Path, name: str) -> bytes | CopydeskError:
        data = produced.read_bytes() if produced.exists() else b""
        if data.startswith(ZIP_MAGIC):
            return data
        return InvalidDocument(
            f"LibreOffice could not read {name}: the file is damaged or not really a Word document"
        )

    # --- pictures ------------------------------------------------------------------------------

    def vector_images_to_png(self, images: list[tuple[bytes, str]]) -> list[bytes | None]:
        """EMF/WMF (bytes, "emf"|"wmf") -> PNG bytes cropped to the drawing, None where it failed."""
        try:
            exe = self.executable()
        except DependencyMissing:
            return [None] * len(images)
        with tempfile.TemporaryDirectory(prefix="copydesk-img-") as work:
            inputs = []
            for i, (data, ext) in enumerate(images):
                path = Path(work, f"img{i}.{ext}")
                path.write_bytes(data)
                inputs.append(path)
            out = Path(work, "out")
            self._run(exe, ["--convert-to", "png", "--outdir", str(out), *map(str, inputs)])
            results: list[bytes | None] = []
            for i in range(len(images)):
                produced = out / f"img{i}.png"
                results.append(_crop_page(produced.read_bytes()) if produced.exists() else None)
            return results

    # --- running soffice -----------------------------------------------------------------------

    def _run(self, exe: str, args: list[str]) -> bool:
        """Run soffice with this process's profile; False when it had to be killed for the timeout."""
        profile = self.profile()
        command = [
            exe,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--invisible",
            "--nologo",
            "--nodefault",
            "--norestore",
            "--nolockcheck",
            *args,
        ]
        with _profile_lock(profile):  # two soffice on one profile: one of them fails silently
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so a timeout kills soffice.bin too
            )
            try:
                proc.wait(timeout=self.timeout)
                return True
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
                return False


def _profile_lock(profile: Path) -> threading.Lock:
    with _profile_locks_guard:
        return _profile_locks.setdefault(str(profile), threading.Lock())


def _crop_page(png: bytes) -> bytes | None:
    """LibreOffice draws the picture on a white page: keep only the drawing."""
    try:
        with Image.open(io.BytesIO(png)) as im:
            rgb = im.convert("RGB")
            box = ImageChops.difference(rgb, Image.new("RGB", rgb.size, (255, 255, 255))).getbbox()
            if box is None:
                return None  # an empty page: nothing was drawn
            out = io.BytesIO()
            im.crop(box).save(out, "PNG")
            return out.getvalue()
    except Exception:
        return None


def docs_to_docx(
    documents: list[bytes],
    *,
    soffice: str = "soffice",
    timeout: float = 120.0,
    filenames: list[str] | None = None,
) -> list[bytes | CopydeskError]:
    """Batch .doc -> .docx for a worker: one soffice call for all of them (see LibreOffice)."""
    return LibreOffice(soffice, timeout).docs_to_docx(documents, filenames)


def doc_to_docx(
    data: bytes, filename: str = "", *, soffice: str = "soffice", timeout: float = 120.0
) -> bytes:
    """One .doc -> .docx; raises the typed error when it cannot be converted."""
    return LibreOffice(soffice, timeout).doc_to_docx(data, filename)
