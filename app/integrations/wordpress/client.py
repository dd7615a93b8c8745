"""A small client for the WordPress REST API (wp/v2) on httpx: typed errors, retries, the calls we need.

Errors map to app.core.errors, with WordPress's own error code and message in the text and in
`details` (`wordpress_code`, `status`):
- 401 → AuthenticationFailed, at once, with the likely cause (a wrong application password, or a site
  that refuses application passwords: WordPress accepts them only over HTTPS or on a 'local' site);
- 403 → PermissionDenied, 404 → NotFound, other 4xx → RemoteError, at once;
- 429 → RateLimited, 5xx → ServiceUnavailable, network failures → ConnectionFailed / TimedOut:
  retried with exponential backoff and jitter (tenacity), honouring Retry-After, then raised.

Only idempotent requests are retried as they are. A create is retried as a unit that first looks for
what the lost attempt may have created (see `create_post`, `upload_media`).

The REST root is `<site>/wp-json/`; a site on plain permalinks (where that path redirects to the home
page) is detected on the first such answer and then addressed as `<site>/?rest_route=/…`.
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    wait_exponential_jitter,
)

from app.core.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    CopydeskError,
    NotFound,
    PermissionDenied,
    RateLimited,
    RemoteError,
    ServiceUnavailable,
    TimedOut,
    TransientError,
)
from app.integrations.retry_after import parse_retry_after
from app.integrations.wordpress.settings import WordPressSite

log = logging.getLogger(__name__)

T = TypeVar("T")
ALL_STATUSES = "publish,future,draft,pending,private,trash"
USER_AGENT = "Copydesk (+WordPress REST publisher)"
_TAGS = re.compile(r"<[^>]+>")


class _WaitRetryAfter:
    """Wait what the server asked for (Retry-After), else exponential backoff with jitter."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.fallback = wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return float(retry_after) if retry_after is not None else self.fallback(state)


class WordPressClient:
    """One site's REST API. Thread-safe for concurrent requests (one httpx.Client underneath)."""

    def __init__(self, site: WordPressSite, *, transport: httpx.BaseTransport | None = None) -> None:
        self.site = site
        self._http = httpx.Client(
            auth=(site.user, site.app_password),
            timeout=httpx.Timeout(site.timeout, connect=min(10.0, site.timeout)),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            # a redirect means a wrong address or plain permalinks: never follow it with credentials
            follow_redirects=False,
            verify=site.verify_tls,
            transport=transport,
        )
        self.rest_route_mode = False
        self.retries = 0
        self._terms: dict[tuple[str, str], int] = {}
        self.created_terms: list[tuple[str, str]] = []  # (taxonomy, name) of the terms this client created
        self._me: dict | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WordPressClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- transport -------------------------------------------------------------------------------

    def _url(self, route: str, params: dict | None) -> tuple[str, dict]:
        route = route.lstrip("/")
        params = dict(params or {})
        if self.rest_route_mode:
            return f"{self.site.url}/", {"rest_route": f"/{route}", **params}
        return f"{self.site.url}/wp-json/{route}", params

    def _send(self, method: str, route: str, **kwargs: Any) -> httpx.Response:
        url, params = self._url(route, kwargs.pop("params", None))
        try:
            return self._http.request(method, url, params=params, **kwargs)
        except httpx.TimeoutException as exc:
            raise TimedOut(
                f"WordPress at {self.site.url} did not answer {method} /{route.lstrip('/')} in time "
                f"({exc.__class__.__name__}).",
                details={"method": method, "route": route},
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectionFailed(
                f"Cannot reach WordPress at {self.site.url}: {exc.__class__.__name__}: {exc}",
                details={"method": method, "route": route},
            ) from exc

    def request(self, method: str, route: str, *, retry: bool = True, **kwargs: Any) -> httpx.Response:
        """One REST call: the successful response, or a typed error. `retry`: retry 429/5xx/network
        failures (only for requests that are safe to repeat)."""
        if retry:
            return self.retrying(lambda: self.request(method, route, retry=False, **kwargs))
        response = self._send(method, route, **kwargs)
        if self._looks_like_plain_permalinks(response):
            self.rest_route_mode = True
            log.info("WordPress at %s has plain permalinks: using ?rest_route=", self.site.url)
            response = self._send(method, route, **kwargs)
        if response.is_success:
            return response
        raise self._error(response, method, route)

    def json(self, method: str, route: str, **kwargs: Any) -> Any:
        response = self.request(method, route, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise RemoteError(
                f"WordPress at {self.site.url} answered {method} /{route} with something that is not JSON "
                f"({response.headers.get('content-type', 'no content type')}): is this the site's address, "
                "or does a security plugin block the REST API?",
                details={"status": response.status_code, "method": method, "route": route},
            ) from None

    def retrying(self, fn: Callable[[], T]) -> T:
        """Run fn, retrying transient errors with backoff (Retry-After honoured up to max_backoff)."""
        retryer = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_any(stop_after_attempt(self.site.attempts), self._retry_after_too_long),
            wait=_WaitRetryAfter(self.site.backoff, self.site.max_backoff),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return retryer(fn)

    def _retry_after_too_long(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return (getattr(exc, "retry_after", None) or 0) > self.site.max_backoff

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "WordPress %s: attempt %d failed (%s), retrying in %.1fs",
            self.site.url,
            state.attempt_number,
            exc,
            state.next_action.sleep if state.next_action else 0,
        )

    def _looks_like_plain_permalinks(self, response: httpx.Response) -> bool:
        if self.rest_route_mode or not (response.is_redirect or response.status_code == 404):
            return False
        return "application/json" not in response.headers.get("content-type", "")

    # --- errors ----------------------------------------------------------------------------------

    def _error(self, response: httpx.Response, method: str, route: str) -> CopydeskError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        wp_code, wp_message = "", ""
        if isinstance(body, dict):
            wp_code = str(body.get("code") or "")
            wp_message = html.unescape(_TAGS.sub("", str(body.get("message") or ""))).strip()
            params = (body.get("data") or {}).get("params") if isinstance(body.get("data"), dict) else None
            if isinstance(params, dict) and params:
                wp_message += " " + "; ".join(f"{k}: {v}" for k, v in params.items())
        said = (
            f"{wp_code}: {wp_message}"
            if wp_code
            else (wp_message or response.reason_phrase or "no explanation")
        )
        where = f"{method} /{route.lstrip('/')}"
        details = {"status": status, "wordpress_code": wp_code, "method": method, "route": route}
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, dict) and data.get("term_id"):
            details["term_id"] = data["term_id"]  # term_exists names the term that exists
        retry_after = parse_retry_after(response.headers.get("retry-after"))

        if status == 401:
            return AuthenticationFailed(self._explain_401(said), details=details)
        if status == 403:
            return PermissionDenied(
                f"WordPress at {self.site.url} refused {where} for user {self.site.user!r} ({said}). "
                "The account's role lacks the capability (publishing, uploading files and creating "
                "categories need an Editor or Administrator), or a security plugin blocks the REST API.",
                details=details,
            )
        if status == 404:
            return NotFound(f"WordPress at {self.site.url}: {where} was not found ({said}).", details=details)
        if status == 429:
            return RateLimited(
                f"WordPress at {self.site.url} asks us to slow down (429 on {where}: {said}).",
                retry_after=retry_after,
                details=details,
            )
        if status >= 500:
            return ServiceUnavailable(
                f"WordPress at {self.site.url} failed on {where} ({status} {said}).",
                retry_after=retry_after,
                details=details,
            )
        if 300 <= status < 400:
            return RemoteError(
                f"WordPress at {self.site.url} redirected {where} to {response.headers.get('location', '?')}"
                ": "
                "is the configured address the site's own (http vs https, www, a sub-folder)?",
                details=details,
            )
        return RemoteError(
            f"WordPress at {self.site.url} refused {where} ({status} {said}).", details=details
        )

    def _explain_401(self, said: str) -> str:
        who = f"user {self.site.user!r}"
        base = f"WordPress at {self.site.url} did not accept the credentials of {who} ({said})."
        if self.application_passwords_available() is False:
            if not self.site.uses_https and not self.site.is_local:
                return (
                    base + " This site refuses application passwords over plain HTTP: WordPress accepts "
                    "them only over HTTPS (or on a site whose environment type is 'local'). "
                    "Use the site's https:// address."
                )
            return (
                base + " This site does not accept application passwords: WordPress allows them only over "
                "HTTPS or on a 'local' site, and a plugin or the site's settings may turn them off."
            )
        return (
            base + " Check the user name and the application password (Users → Profile → Application "
            "Passwords); the account's login password does not work here."
        )

    def application_passwords_available(self) -> bool | None:
        """What the REST index says (its `authentication` lists application-passwords when available);
        None when the index cannot be read."""
        try:
            response = self._send("GET", "", params={"_fields": "authentication"})
            index = response.json() if response.is_success else None
        except (CopydeskError, ValueError):
            return None
        if not isinstance(index, dict):
            return None
        return "application-passwords" in (index.get("authentication") or {})

    # --- calls -----------------------------------------------------------------------------------

    def me(self) -> dict:
        """The authenticated user with its capabilities: a cheap check of the address and credentials.
        Asked once per client, before anything else: without it, bad credentials would surface as
        whatever the first call says to an anonymous visitor (e.g. 400 "Status is forbidden")."""
        if self._me is None:
            self._me = self.json(
                "GET",
                "wp/v2/users/me",
                params={"context": "edit", "_fields": "id,name,slug,roles,capabilities"},
            )
        return self._me

    def get_post(self, post_id: int) -> dict | None:
        """The post in any status (trash included), None when it does not exist (deleted for good)."""
        try:
            return self.json("GET", f"wp/v2/posts/{int(post_id)}", params={"context": "edit"})
        except NotFound:
            return None

    def find_posts(
        self, search: str, *, fields: str = "id,status,link,slug,content", retry: bool = True
    ) -> list[dict]:
        """Posts in any status (trash included) that WordPress's search matches (title, excerpt, content)."""
        return self.json(
            "GET",
            "wp/v2/posts",
            retry=retry,
            params={
                "search": search,
                "status": ALL_STATUSES,
                "context": "edit",
                "per_page": 100,
                "orderby": "id",
                "order": "asc",
                "_fields": fields,
            },
        )

    def update_post(self, post_id: int, payload: dict) -> dict:
        return self.json("POST", f"wp/v2/posts/{int(post_id)}", json=payload)

    def create_post(self, payload: dict, *, find_existing: Callable[[], dict | None]) -> tuple[dict, bool]:
        """Create a post, exactly once: after a failed attempt (a 5xx or a timeout may come after
        WordPress wrote the post), `find_existing` is asked first and what it finds is updated instead.
        Returns (post, created)."""
        attempt = 0

        def once() -> tuple[dict, bool]:
            nonlocal attempt
            attempt += 1
            if attempt > 1:
                found = find_existing()
                if found is not None:
                    return self.json("POST", f"wp/v2/posts/{found['id']}", json=payload, retry=False), False
            return self.json("POST", "wp/v2/posts", json=payload, retry=False), True

        return self.retrying(once)

    def term_id(self, taxonomy: str, name: str, *, create: bool = True) -> int | None:
        """The id of the category or tag with this name (case-insensitive), created when missing
        (`create`; else None). Names created are listed in `created_terms`."""
        name = " ".join(name.split())
        cache_key = (taxonomy, name.casefold())
        if cache_key in self._terms:
            return self._terms[cache_key]
        found = self.json(
            "GET", f"wp/v2/{taxonomy}", params={"search": name, "per_page": 100, "_fields": "id,name"}
        )
        term_id = next(
            (t["id"] for t in found if html.unescape(t["name"]).casefold() == name.casefold()), None
        )
        if term_id is None:
            if not create:
                return None
            term_id = self.retrying(lambda: self._create_term(taxonomy, name))
            self.created_terms.append((taxonomy, name))
        self._terms[cache_key] = term_id
        return term_id

    def terms(
        self, taxonomy: str, *, limit: int = 1000, orderby: str = "count", fields: str = "id,name,slug,count"
    ) -> list[dict]:
        """The site's categories or tags (names unescaped), at most `limit`: the most used first, or
        by `orderby` ("name")."""
        order = "desc" if orderby == "count" else "asc"
        out: list[dict] = []
        page = 1
        while len(out) < limit:
            response = self.request(
                "GET",
                f"wp/v2/{taxonomy}",
                params={"per_page": 100, "page": page, "orderby": orderby, "order": order, "_fields": fields},
            )
            batch = response.json()
            out.extend({**t, "name": html.unescape(t["name"])} for t in batch)
            if not batch or page >= int(response.headers.get("X-WP-TotalPages") or 1):
                break
            page += 1
        return out[:limit]

    def _create_term(self, taxonomy: str, name: str) -> int:
        try:
            return self.json("POST", f"wp/v2/{taxonomy}", json={"name": name}, retry=False)["id"]
        except RemoteError as exc:
            # The name exists (maybe with other case or entities the search missed, or created by a
            # lost attempt): WordPress tells which term it is.
            if exc.details.get("wordpress_code") == "term_exists" and exc.details.get("term_id"):
                return int(exc.details["term_id"])
            raise

    def media(self, *, retry: bool = True, **params: Any) -> list[dict]:
        """Media library items, e.g. media(slug="a,b") or media(include="1,2")."""
        params = {
            "per_page": 100,
            "context": "edit",
            "_fields": "id,slug,source_url,alt_text,caption,mime_type,post",
            **params,
        }
        return self.json("GET", "wp/v2/media", params=params, retry=retry)

    def attach_media(self, media_id: int, post_id: int) -> dict:
        """Attach a media item to a post (its `post` field): setting it again changes nothing."""
        return self.json("POST", f"wp/v2/media/{int(media_id)}", json={"post": int(post_id)})

    def upload_media(
        self,
        data: bytes,
        *,
        filename: str,
        content_type: str,
        params: dict,
        find_existing: Callable[[], dict | None],
    ) -> dict:
        """Upload a file to the media library as a raw body (no upload_max_filesize limit on that path).
        A retry first asks `find_existing`, so a lost answer does not leave a second copy."""
        disposition = (
            f'attachment; filename="{filename}"'.encode()
        )  # raw UTF-8: WordPress 6.1 refuses filename*=
        attempt = 0

        def once() -> dict:
            nonlocal attempt
            attempt += 1
            if attempt > 1:
                found = find_existing()
                if found is not None:
                    return found
            return self.json(
                "POST",
                "wp/v2/media",
                retry=False,
                content=data,
                params=params,
                headers={"Content-Type": content_type, "Content-Disposition": disposition},
                timeout=httpx.Timeout(self.site.upload_timeout, connect=min(10.0, self.site.timeout)),
            )

        started = time.monotonic()
        media = self.retrying(once)
        log.debug("uploaded %s (%d bytes) in %.2fs", filename, len(data), time.monotonic() - started)
        return media
