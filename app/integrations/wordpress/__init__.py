"""Publishing to WordPress (REST API, httpx) or to the local preview."""

from app.integrations.wordpress.base import PostDraft, PostImage, PublishedPost, Publisher
from app.integrations.wordpress.client import WordPressClient
from app.integrations.wordpress.publisher import MediaIndex, WordPressPublisher
from app.integrations.wordpress.settings import WordPressSite

__all__ = [
    "MediaIndex",
    "PostDraft",
    "PostImage",
    "PublishedPost",
    "Publisher",
    "WordPressClient",
    "WordPressPublisher",
    "WordPressSite",
]
