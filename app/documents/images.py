"""Images of a package: identified from their header (Pillow), limited, deduplicated by content hash.

Only the header is read to learn format and pixel size; bytes pass through untouched except BMP and
TIFF (made PNG so browsers show them) and EMF/WMF (made PNG by LibreOffice when one is given).
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from typing import TYPE_CHECKING

from PIL import Image as PILImage

from app.documents.package import Package
from app.documents.result import ConversionReport, ExtractedImage

if TYPE_CHECKING:
    from app.documents.legacy import LibreOffice

# Pillow format -> (extension, content type) for formats browsers show as they are.
_WEB_FORMATS = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "GIF": ("gif", "image/gif"),
    "WEBP": ("webp", "image/webp"),
}
_OPEN_FORMATS = ["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "WMF"]


# What Word (and Office's "alt text" service) writes when it describes an image by itself: "Table
# Description automatically generated", "A picture containing text, sign", "… with medium
# confidence", "AI-generated content may be incorrect.", in the languages Office writes them in.
_GENERATED_ALT = re.compile(
    r"description (?:automatically generated|generated with|generated automatically)"
    r"|automatically generated description|ai-generated content may be incorrect"
    r"|generated with (?:very )?(?:high|medium|low) confidence"
    r"|automatisch generierte beschreibung|description générée automatiquement"
    r"|descripción generada automáticamente|descrizione generata automaticamente"
    r"|descrição gerada automaticamente|automatisch gegenereerde beschrijving"
    r"|автоматически созданное описание|自動的に生成された説明|自动生成的说明|自動產生的描述|자동 생성된 설명"
    r"|^(?:a picture containing|ein bild, das|une image contenant"
    r"|imagen que contiene|immagine che contiene|imagem que contém)\b",
    re.I,
)


def is_generated_alt(text: str) -> bool:
    """True when an alt text is one Office generated, not one a person wrote."""
    return bool(text) and bool(_GENERATED_ALT.search(" ".join(text.split())))


def _hash_key(data: bytes, ext: str) -> tuple[str, str]:
    digest = hashlib.sha256(data).hexdigest()
    return f"{digest}.{ext}", digest


def probe(data: bytes) -> tuple[str, int, int] | None:
    """(Pillow format, width, height) from the header only; None when not a known image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data), formats=_OPEN_FORMATS) as im:
                return im.format or "", im.size[0], im.size[1]
    except PILImage.DecompressionBombError:
        return "BOMB", 0, 0
    except Exception:  # Pillow raises many kinds on junk: all mean "not an image we can use"
        return None


def _vector_header(data: bytes) -> tuple[str, int, int] | None:
    """EMF, or WMF without the "placeable" header Pillow needs: still convertible by LibreOffice."""
    if data[40:44] == b" EMF" or (data[:2] in (b"\x01\x00", b"\x02\x00") and data[2:4] == b"\x09\x00"):
        return "WMF", 0, 0
    return None


class ImageStore:
    def __init__(self, package: Package, max_pixels: int, report: ConversionReport):
        self._package = package
        self._max_pixels = max_pixels
        self._report = report
        self._by_part: dict[str, ExtractedImage | None] = {}
        self._by_key: dict[str, ExtractedImage] = {}
        self._vector: list[tuple[ExtractedImage, str]] = []
        self._dropped: set[int] = set()

    def from_part(self, part: str) -> ExtractedImage | None:
        """The image stored in a package part (None, with a warning, when it cannot be used)."""
        if part in self._by_part:
            return self._by_part[part]
        image = self._load(part)
        self._by_part[part] = image
        return image

    def _load(self, part: str) -> ExtractedImage | None:
        data = self._package.read(part)
        if not data:
            self._report.drop("missing_image")
            self._report.warn(f"an image refers to a part that is not in the file ({part})")
            return None
        found = probe(data) or _vector_header(data)
        if found is None:
            self._report.drop("unreadable_image")
            self._report.warn(
                f"an image in an unsupported or damaged format was left out ({part.rsplit('/', 1)[-1]})"
            )
            return None
        fmt, width, height = found
        if fmt == "BOMB" or width * height > self._max_pixels:
            self._report.drop("image_over_limit")
            size = f"{width}×{height}, " if width else ""
            self._report.warn(
                f"an image ({size}over {self._max_pixels // 1_000_000} megapixels) was left out: too large"
            )
            return None
        if fmt in _WEB_FORMATS:
            ext, content_type = _WEB_FORMATS[fmt]
        elif fmt in ("BMP", "TIFF"):
            data = self._to_png(data)
            if data is None:
                self._report.drop("unreadable_image")
                return None
            self._report.approximate("image_converted_to_png")
            ext, content_type = "png", "image/png"
        else:  # WMF or EMF: vector formats browsers cannot show
            ext = "emf" if data[40:44] == b" EMF" else "wmf"
            content_type = f"image/{'emf' if ext == 'emf' else 'wmf'}"
        key, digest = _hash_key(data, ext)
        image = self._by_key.get(key)
        if image is None:
            image = ExtractedImage(
                key=key, sha256=digest, content_type=content_type, data=data, width=width, height=height
            )
            self._by_key[key] = image
            if ext in ("emf", "wmf"):
                self._vector.append((image, ext))
        return image

    @staticmethod
    def _to_png(data: bytes) -> bytes | None:
        try:
            with PILImage.open(io.BytesIO(data)) as im:
                out = io.BytesIO()
                im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") else "RGB").save(out, "PNG")
                return out.getvalue()
        except Exception:
            return None

    def kept(self) -> list[ExtractedImage]:
        return [image for image in self._by_key.values() if id(image) not in self._dropped]

    def is_dropped(self, image: ExtractedImage) -> bool:
        return id(image) in self._dropped

    def finish(self, libreoffice: LibreOffice | None) -> None:
        """Turn EMF/WMF into PNG (one LibreOffice call for all of them), or drop them with a warning."""
        if not self._vector:
            return
        converted: list[bytes | None] = [None] * len(self._vector)
        if libreoffice is not None:
            converted = libreoffice.vector_images_to_png([(img.data, ext) for img, ext in self._vector])
        for (image, ext), png in zip(self._vector, converted):
            found = probe(png) if png else None
            if png is None or found is None:
                self._dropped.add(id(image))
                self._report.drop("vector_image")
                reason = (
                    "LibreOffice could not convert it" if libreoffice else "LibreOffice is not available here"
                )
                article = "an" if ext.upper()[0] in "AEFHILMNORSX" else "a"  # as the letter is spoken
                self._report.warn(
                    f"{article} {ext.upper()} image was left out: browsers cannot show it and {reason}"
                )
                continue
            self._report.approximate("vector_image_converted_to_png")
            image.key, image.sha256 = _hash_key(png, "png")
            image.data, image.content_type = png, "image/png"
            image.width, image.height = found[1], found[2]
