"""One WordPress site to publish to: where, as whom, and how its posts are written."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from app.core.errors import ConfigurationError

BODY_FORMATS = ("blocks", "html")
STATUSES = ("draft", "pending", "publish", "future", "private")
# Who may add a tag or category the site does not have (site option `create_terms`), each level
# allowing what the one before it does: nobody; the sender (what a person named: upload form, mail
# directive, mailbox default, the site's default category); also the OpenAI editor; also the offline
# editor. Tags are public pages of a site, so the offline editor's guesses are not made into terms
# unless a site asks for it.
CREATE_TERMS = ("never", "sender", "sender_and_llm", "always")
TERM_ORIGINS = ("sender", "llm", "offline")  # who named a term: its level is its index in CREATE_TERMS - 1


def may_create_terms(policy: str, origin: str) -> bool:
    """Whether a site whose `create_terms` is `policy` takes new terms named by `origin`."""
    return CREATE_TERMS.index(policy) >= TERM_ORIGINS.index(origin) + 1


@dataclass
class WordPressSite:
    url: str  # the site's address (its home), e.g. https://news.example.org or https://example.org/blog
    user: str
    app_password: str = field(repr=False)  # an application password (Users → Profile), not the login password
    body_format: str = "blocks"  # blocks: block editor markup; html: classic HTML
    import_images: bool = (
        True  # False: body images keep their storage URLs (the featured image is always imported)
    )
    default_status: str = "draft"
    default_category: str = ""  # used when a draft names no category ("" : WordPress's own default)
    timeout: float = 30.0  # seconds, per request
    upload_timeout: float = 300.0  # seconds, per media upload (WordPress makes the thumbnails while we wait)
    attempts: int = 5  # per request, for 429, 5xx and network failures
    backoff: float = 1.0  # first wait between attempts, doubled each time (with jitter)
    max_backoff: float = 60.0  # longest wait; a Retry-After above it is left to the caller's own retry
    verify_tls: bool = True
    create_terms: str = "sender_and_llm"  # who may add tags and categories the site lacks (CREATE_TERMS)
    featured_image_in_body: bool = False  # False: the featured image is taken out of the body
    transliterate_slugs: bool = False  # slugs in Latin letters instead of the title's script

    def __post_init__(self) -> None:
        self.url = self.url.strip().rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"The WordPress address {self.url!r} is not an http(s) URL.")
        if not self.user or not self.app_password:
            raise ConfigurationError(
                f"The WordPress site {self.url} needs a user name and an application password."
            )
        if self.body_format not in BODY_FORMATS:
            raise ConfigurationError(
                f"body_format must be one of {', '.join(BODY_FORMATS)}, not {self.body_format!r}."
            )
        if self.default_status not in STATUSES:
            raise ConfigurationError(
                f"default_status must be one of {', '.join(STATUSES)}, not {self.default_status!r}."
            )
        if self.create_terms not in CREATE_TERMS:
            raise ConfigurationError(
                f"create_terms must be one of {', '.join(CREATE_TERMS)}, not {self.create_terms!r}."
            )
        if self.attempts < 1:
            raise ConfigurationError("attempts must be at least 1.")

    @property
    def is_local(self) -> bool:
        """A loopback or .local/.test/.localhost address: WordPress may run as a 'local' environment there."""
        host = urlsplit(self.url).hostname or ""
        if host == "localhost" or host.endswith((".localhost", ".local", ".test")):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def uses_https(self) -> bool:
        return self.url.startswith("https://")
