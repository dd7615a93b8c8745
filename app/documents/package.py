"""The .docx package (a zip of XML parts) opened defensively, and file-type detection.

Everything here runs before any real decompression: the zip directory is checked against `Limits`
(entry count, declared sizes, compression ratio), parts are read only when asked for (zipfile never
inflates an entry past its declared size), and XML is parsed by one hardened lxml parser (no entity
resolution, no network, no DTD, libxml2's default depth and text-size limits).
"""

from __future__ import annotations

import io
import posixpath
import struct
import zipfile
import zlib
from dataclasses import dataclass

from lxml import etree

from app.core.errors import EncryptedDocument, InvalidDocument, LimitExceeded
from app.documents.ns import PKG_REL_NS, STRICT_TO_TRANSITIONAL

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
RTF_MAGIC = b"{\\rtf"
WORD2_MAGICS = (b"\xdb\xa5", b"\x9b\xa5")  # Word for Windows 2.0 and 1.x, before OLE2

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds that keep a hostile file from eating the worker (all checked before inflating)."""

    max_file_bytes: int = 100 * MB
    max_uncompressed_bytes: int = 1024 * MB  # sum of the declared sizes of all entries
    max_compression_ratio: float = 500.0  # per entry above 1 MB inflated (deflate tops out near 1030:1)
    max_zip_entries: int = 10_000
    max_xml_part_bytes: int = 128 * MB  # one XML part, inflated
    max_image_pixels: int = 60_000_000  # read from the image header; larger images are left out
    max_paragraphs: int = 200_000
    max_nesting: int = 24  # tables in tables, text boxes in text boxes


# One parser for every part: entities are never expanded, nothing is fetched, no DTD is loaded.
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    dtd_validation=False,
    remove_comments=True,
    remove_pis=True,
    collect_ids=False,
)


def parse_xml(data: bytes, what: str) -> etree._Element:
    """Parse one XML part with the hardened parser; InvalidDocument on malformed or DTD-carrying XML."""
    if b"purl.oclc.org/ooxml" in data:  # Strict OOXML: same vocabulary, other namespace URIs
        for strict, transitional in STRICT_TO_TRANSITIONAL:
            data = data.replace(strict, transitional)
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        if "entit" in (exc.msg or "").lower():
            raise InvalidDocument(
                f"{what} uses XML entities (an entity expansion attack): refusing it"
            ) from None
        raise InvalidDocument(f"{what} is damaged (malformed XML: {exc.msg})") from None
    if root is None:
        raise InvalidDocument(f"{what} is empty")
    if root.getroottree().docinfo.doctype:
        # Word never writes a DTD; one in a part is an entity attack (XXE, billion laughs).
        raise InvalidDocument(f"{what} declares a DTD, which Word never writes: refusing it as unsafe")
    return root


# --- detection -------------------------------------------------------------------------------


def detect_kind(data: bytes, filename: str = "") -> str:
    """'docx' or 'doc', decided by the bytes (the name only appears in messages).

    Raises InvalidDocument for anything else (including other Office formats) and EncryptedDocument
    for password-protected files.
    """
    name = filename or "the file"
    if not data:
        raise InvalidDocument(f"{name} is empty (0 bytes)")
    if data.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = {n.lower() for n in zf.namelist()}
                main = _main_part_name(zf, names)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError, zlib.error) as exc:
            raise InvalidDocument(f"{name} is a damaged zip archive, not a readable .docx ({exc})") from None
        if main is None:
            if any(n.startswith("xl/") for n in names):
                raise InvalidDocument(f"{name} is a spreadsheet (.xlsx), not a Word document")
            if any(n.startswith("ppt/") for n in names):
                raise InvalidDocument(f"{name} is a presentation (.pptx), not a Word document")
            raise InvalidDocument(f"{name} is a zip archive but not a Word document (no word/document.xml)")
        return "docx"
    if data.startswith(OLE2_MAGIC):
        streams = ole_stream_names(data)
        if "encryptedpackage" in streams:
            raise EncryptedDocument(f"{name} is password-protected; remove the password and send it again")
        if streams and "worddocument" not in streams:
            what = "a spreadsheet (.xls)" if {"workbook", "book"} & streams else "an Office file"
            raise InvalidDocument(f"{name} is {what}, not a Word document")
        if ole_word_encrypted(data):
            raise EncryptedDocument(f"{name} is password-protected; remove the password and send it again")
        return "doc"
    if data.lstrip()[:5] == RTF_MAGIC:
        return "doc"  # RTF saved with a .doc name: LibreOffice reads it like a .doc
    if data[:2] in WORD2_MAGICS and len(data) > 512:
        return "doc"
    raise InvalidDocument(f"{name} is not a Word document (.docx or .doc), whatever its name says")


def _main_part_name(zf: zipfile.ZipFile, lower_names: set[str]) -> str | None:
    if "word/document.xml" in lower_names:
        return "word/document.xml"
    # Some producers put the main part elsewhere; the package relationships say where.
    if "_rels/.rels" not in lower_names:
        return None
    info = next(i for i in zf.infolist() if i.filename.lower() == "_rels/.rels")
    if info.file_size > MB:
        return None
    try:
        rels = parse_xml(zf.read(info), "the package relationships")
    except InvalidDocument:
        return None
    for rel in rels.iter(f"{{{PKG_REL_NS}}}Relationship"):
        if rel.get("Type", "").endswith("/officeDocument") and rel.get("TargetMode") != "External":
            target = posixpath.normpath(rel.get("Target", "").lstrip("/")).lower()
            if target in lower_names and not target.startswith(("xl/", "ppt/")):
                return target
    return None


# --- OLE2 (compound file) just enough to tell .doc, encrypted .docx and encrypted .doc apart -------

_FREESECT = 0xFFFFFFFF
_ENDOFCHAIN = 0xFFFFFFFE


def _ole_layout(data: bytes) -> tuple[int, list[int]] | None:
    if len(data) < 512:
        return None
    shift = struct.unpack_from("<H", data, 0x1E)[0]
    if shift not in (9, 12):
        return None
    size = 1 << shift
    fat_ids = [s for s in struct.unpack_from("<109I", data, 0x4C) if s < _ENDOFCHAIN]
    fat: list[int] = []
    for sid in fat_ids:
        start = (sid + 1) * size
        if start + size > len(data):
            break
        fat.extend(struct.unpack_from(f"<{size // 4}I", data, start))
    return size, fat


def _ole_directory(data: bytes) -> list[tuple[str, int, int]]:
    """(name, start sector, size) of each directory entry; [] when the container is unreadable."""
    layout = _ole_layout(data)
    if layout is None:
        return []
    size, fat = layout
    sector = struct.unpack_from("<I", data, 0x30)[0]
    entries: list[tuple[str, int, int]] = []
    seen: set[int] = set()
    while sector < _ENDOFCHAIN and sector not in seen and len(seen) < 4096:
        seen.add(sector)
        start = (sector + 1) * size
        if start + size > len(data):
            break
        for off in range(start, start + size, 128):
            name_len = struct.unpack_from("<H", data, off + 0x40)[0]
            if 2 <= name_len <= 64:
                name = data[off : off + name_len - 2].decode("utf-16-le", "replace")
                first, length = struct.unpack_from("<II", data, off + 0x74)
                entries.append((name, first, length))
        sector = fat[sector] if sector < len(fat) else _ENDOFCHAIN
    return entries


def ole_stream_names(data: bytes) -> set[str]:
    return {name.lower() for name, _, _ in _ole_directory(data)}


def ole_word_encrypted(data: bytes) -> bool:
    """True when the WordDocument stream's FIB has fEncrypted set (a password-protected .doc)."""
    layout = _ole_layout(data)
    if layout is None:
        return False
    size = layout[0]
    for name, first, length in _ole_directory(data):
        if name == "WordDocument" and length >= 4096:  # big streams live in regular sectors
            off = (first + 1) * size
            if off + 12 <= len(data):
                ident, _, _, _, _, flags = struct.unpack_from("<HHHHHH", data, off)
                return ident in (0xA5EC, 0xA5DC) and bool(flags & 0x0100)
    return False


# --- the package -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Relationship:
    type: str  # the last segment of the type URI: "styles", "image", "hyperlink"...
    target: str  # a part name (lower-case, no leading /) or, when external, the URL as written
    external: bool


class Package:
    """Read-only access to the parts of a checked .docx zip."""

    def __init__(self, data: bytes, name: str, limits: Limits):
        self.name = name
        self.limits = limits
        if len(data) > limits.max_file_bytes:
            raise LimitExceeded(f"{name} is larger than {limits.max_file_bytes // MB} MB")
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError) as exc:
            raise InvalidDocument(f"{name} is a damaged zip archive ({exc})") from None
        if len(infos) > limits.max_zip_entries:
            raise LimitExceeded(f"{name} holds {len(infos)} parts (limit {limits.max_zip_entries})")
        total = sum(i.file_size for i in infos)
        if total > limits.max_uncompressed_bytes:
            raise LimitExceeded(
                f"{name} would expand to {total // MB} MB (limit {limits.max_uncompressed_bytes // MB} MB)"
            )
        for info in infos:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > MB and ratio > limits.max_compression_ratio:
                raise LimitExceeded(
                    f"{name} looks like a zip bomb: {info.filename} is compressed {ratio:.0f}:1 "
                    f"(limit {limits.max_compression_ratio:.0f}:1)"
                )
        self._infos = {i.filename.lower(): i for i in infos}
        self._rels: dict[str, dict[str, Relationship]] = {}
        self.main = self._find_main()

    def _find_main(self) -> str:
        for rel in self.rels("").values():
            if rel.type == "officeDocument" and not rel.external and rel.target in self._infos:
                return rel.target
        if "word/document.xml" in self._infos:
            return "word/document.xml"
        raise InvalidDocument(f"{self.name} is a zip archive but not a Word document (no main document part)")

    def size(self, part: str) -> int:
        info = self._infos.get(part)
        return info.file_size if info else 0

    def read(self, part: str) -> bytes | None:
        """The bytes of a part, or None when it does not exist."""
        info = self._infos.get(part.lower())
        if info is None:
            return None
        try:
            return self._zip.read(info)
        except RuntimeError as exc:  # an entry encrypted with a zip password
            raise InvalidDocument(f"{self.name}: part {info.filename} cannot be read ({exc})") from None
        except (zipfile.BadZipFile, EOFError, ValueError, OSError, zlib.error, NotImplementedError) as exc:
            raise InvalidDocument(
                f"{self.name} is damaged: part {info.filename} cannot be read ({exc})"
            ) from None

    def xml(self, part: str) -> etree._Element | None:
        """A parsed XML part, or None when it does not exist."""
        info = self._infos.get(part.lower())
        if info is None:
            return None
        if info.file_size > self.limits.max_xml_part_bytes:
            raise LimitExceeded(
                f"{self.name}: part {info.filename} is {info.file_size // MB} MB of XML "
                f"(limit {self.limits.max_xml_part_bytes // MB} MB)"
            )
        data = self.read(part)
        return parse_xml(data, f"{self.name} ({info.filename})") if data is not None else None

    def rels(self, part: str) -> dict[str, Relationship]:
        """The relationships of a part ("" for the package itself), by id."""
        if part in self._rels:
            return self._rels[part]
        folder, base = posixpath.split(part)
        rels_name = posixpath.join(folder, "_rels", base + ".rels")
        out: dict[str, Relationship] = {}
        root = self.xml(rels_name) if rels_name in self._infos else None
        if root is not None:
            for rel in root.iter(f"{{{PKG_REL_NS}}}Relationship"):
                rid, target = rel.get("Id"), rel.get("Target")
                if not rid or target is None:
                    continue
                kind = rel.get("Type", "").rsplit("/", 1)[-1]
                external = rel.get("TargetMode") == "External"
                if not external:
                    if target.startswith("/"):
                        target = target.lstrip("/")
                    else:
                        target = posixpath.join(folder, target)
                    target = posixpath.normpath(target).lower()
                out[rid] = Relationship(kind, target, external)
        self._rels[part] = out
        return out

    def related(self, part: str, kind: str) -> str | None:
        """The first internal part related to `part` by a relationship of this type."""
        for rel in self.rels(part).values():
            if rel.type == kind and not rel.external and rel.target in self._infos:
                return rel.target
        return None
