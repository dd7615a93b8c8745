"""The allow-list every piece of HTML leaves through (nh3): what the writers emit and nothing else.

The writers already escape text and vet URLs; this is the second, independent guarantee that no
script, event handler, style or foreign URL scheme reaches WordPress.
"""

from __future__ import annotations

import nh3

MATHML_TAGS = {
    "math", "mrow", "mi", "mn", "mo", "mtext", "mfrac", "msup", "msub", "msubsup", "msqrt", "mroot",
    "munder", "mover", "munderover", "mmultiscripts", "mprescripts", "mtable", "mtr", "mtd", "menclose",
}  # fmt: skip

TAGS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "strong", "em", "u", "s", "sub", "sup", "span",
    "code", "pre", "blockquote", "a", "img", "figure", "figcaption", "ul", "ol", "li",
    "table", "thead", "tbody", "tr", "th", "td", "section",
} | MATHML_TAGS  # fmt: skip

_HEADING_ID = {f"h{n}": {"id"} for n in range(1, 7)}

ATTRIBUTES = {
    **_HEADING_ID,
    "p": {"id"},
    "a": {"href", "id"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start", "type"},
    "li": {"id"},
    "th": {"colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
    "math": {"display"},
    "mfrac": {"linethickness"},
    "mover": {"accent"},
    "menclose": {"notation"},
}

CLASSES = {"span": {"smallcaps"}, "section": {"footnotes"}}

URL_SCHEMES = {"http", "https", "mailto", "tel", "ftp", "ftps", "news", "sms", "copydesk-image"}

# Block markup: the same, plus the classes and attributes core blocks save, and the block comments.
BLOCK_CLASSES = {
    **CLASSES,
    **{f"h{n}": {"wp-block-heading"} for n in range(1, 7)},
    "ul": {"wp-block-list"},
    "ol": {"wp-block-list"},
    "figure": {"wp-block-table", "wp-block-image"},
    "figcaption": {"wp-element-caption"},
    "blockquote": {"wp-block-quote"},
    "pre": {"wp-block-code"},
    "sup": {"fn"},
}
BLOCK_ATTRIBUTES = {**ATTRIBUTES, "ol": {"start", "type", "style"}, "ul": {"style"}, "sup": {"data-fn"}}


def _cleaner(attributes: dict, classes: dict, **options) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=TAGS,
        attributes=attributes,
        allowed_classes=classes,
        url_schemes=URL_SCHEMES,
        link_rel=None,
        **options,
    )


_html = _cleaner(ATTRIBUTES, CLASSES, strip_comments=True)
# Block delimiters are comments; the writers never put document text in one.
_blocks = _cleaner(
    BLOCK_ATTRIBUTES, BLOCK_CLASSES, strip_comments=False, filter_style_properties={"list-style-type"}
)


def clean_html(html: str) -> str:
    return _html.clean(html)


def clean_blocks(markup: str) -> str:
    return _blocks.clean(markup)
