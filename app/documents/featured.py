"""Which image is the featured image of a post: chosen, not merely the first one.

A featured image named by the sender (a `featured_image` directive or input: its position in the
manuscript, 1 = the first, its key, or a prefix of its hash of at least 8 characters) wins. Otherwise
the largest image (by pixels) whose short side is at least FEATURED_MIN_SIDE and whose long side is
at most FEATURED_MAX_RATIO times the short one: icons, bullets, rules, strips and spacer GIFs never
qualify. None when no image does.

Works on anything with `key`, `sha256`, `width` and `height` (ExtractedImage, the Asset rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

FEATURED_MIN_SIDE = 200  # pixels
FEATURED_MAX_RATIO = 3.0


class ImageLike(Protocol):
    key: str
    sha256: str
    width: int | None
    height: int | None


@dataclass(frozen=True)
class FeaturedChoice:
    image: Any | None  # one of the images, or None
    reason: str  # why this one (or why none), in an editor's words
    unknown_name: bool = False  # the sender named an image the article does not have


def qualifies(image: ImageLike) -> bool:
    width, height = image.width or 0, image.height or 0
    short, long = min(width, height), max(width, height)
    return short >= FEATURED_MIN_SIDE and long <= FEATURED_MAX_RATIO * short


def named_image(images: list, wanted: Any) -> Any | None:
    """The image a directive names (position, key or hash prefix), None when it names none."""
    text = str(wanted).strip() if wanted not in (None, "") else ""
    if not text:
        return None
    if text.isdigit():
        return images[int(text) - 1] if 1 <= int(text) <= len(images) else None
    for image in images:
        if text in (image.key, image.sha256) or (len(text) >= 8 and image.sha256.startswith(text.lower())):
            return image
    return None


def choose_featured_image(images: list, wanted: Any = None) -> FeaturedChoice:
    """The featured image among `images` (in manuscript order): the one `wanted` names, else the
    largest that qualifies, else none."""
    unknown = wanted not in (None, "")
    if unknown:
        named = named_image(images, wanted)
        if named is not None:
            return FeaturedChoice(named, "named by the sender")
    prefix = f"the featured image {str(wanted).strip()!r} is not one of the article's images: " if unknown else ""
    candidates = [image for image in images if qualifies(image)]
    if candidates:
        best = max(candidates, key=lambda image: (image.width or 0) * (image.height or 0))
        reason = f"the largest image that fits ({best.width}×{best.height})"
        return FeaturedChoice(best, prefix + reason, unknown)
    if not images:
        return FeaturedChoice(None, prefix + "no featured image: the article has no images", unknown)
    reason = (
        f"no featured image: none of the {len(images)} image(s) is at least {FEATURED_MIN_SIDE} px on "
        f"its short side with an aspect ratio within {FEATURED_MAX_RATIO:g}:1"
    )
    return FeaturedChoice(None, prefix + reason, unknown)
