"""The OpenAI editor: chat completions with structured output, checked, chunked, retried in one place.

Retries have one owner. The SDK client is built with max_retries=0 and tenacity retries what may
succeed later (429 honouring Retry-After, 5xx, timeouts, connection errors); the SDK's own retries on
top would multiply the attempts (3 × 3 = 9 requests were measured). 400/401/403/404 fail at once.

What leaves the editor tells its caller what to do next, so no caller needs retries of its own:
- RateLimited only when the server asked for a wait longer than `max_wait` (after that one request):
  come back after `retry_after` seconds (a workflow puts the step back on the broker with that
  countdown: the publish_document transform step retries `rate_limited` only).
- Any other error is final: permanent ones at once, transient ones after `max_attempts` requests
  ("… after 6 attempts"; a 429 that outlasts them leaves as ServiceUnavailable). Retrying them again
  outside would multiply the requests.
Every error that leaves `edit` carries `usage` (an attribute): what the edit had spent until then.

Long articles are edited in parts. With a `part_cache`, each part whose edit passed the checks is
cached, so an edit that failed half-way (and is run again by a resume) does not pay for those parts
twice.

Content failures are separate from transport failures: an answer that is not valid JSON, or whose
body breaks the structure checks, gets one more chance with the complaint. If that fails too, the
original body is kept and the result carries a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import openai
import pydantic
import tenacity
from openai import OpenAI

from app.core.errors import (
    AuthenticationFailed,
    ConfigurationError,
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
from app.integrations.llm import checks, markup, prompts
from app.integrations.llm.base import EditRequest, EditResult, Usage
from app.integrations.llm.cache import EditCache
from app.integrations.llm.chunking import split_into_chunks
from app.integrations.llm.fields import PostFields, field_problems, settle_fields, slugify
from app.integrations.llm.offline import OfflineEditor, shorten
from app.integrations.llm.pricing import DEFAULT_PRICES, estimate_cost
from app.integrations.retry_after import retry_after as retry_after_of

log = logging.getLogger(__name__)

SUMMARY_CHARS = 6_000  # what the post-fields call of a long article sees of its opening
EXCERPT_CHARS = 400  # the prompt asks for 300; a little slack before cutting


class _WaitRetryAfter(tenacity.wait.wait_base):
    """The server's Retry-After when it sent one, else exponential backoff with jitter."""

    def __init__(self, fallback: tenacity.wait.wait_base, max_wait: float) -> None:
        self.fallback = fallback
        self.max_wait = max_wait

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after > 0:
            return min(retry_after, self.max_wait)
        return self.fallback(retry_state)


@dataclass
class _Job:
    """One edit: the effective model and temperature, and what it has cost so far."""

    request: EditRequest
    model: str
    temperature: float | None
    usage: Usage = field(default_factory=Usage)
    warnings: list[str] = field(default_factory=list)
    cached_parts: int = 0


@dataclass
class _Answer:
    parsed: pydantic.BaseModel | None  # the last answer that was valid JSON of the right shape
    problems: list[str]  # what is wrong with the final answer (empty: it passed)


class OpenAIEditor:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        model: str = "gpt-4o-mini",
        temperature: float | None = 0.2,  # None: not sent (models that accept only their default)
        timeout: float = 120.0,  # seconds per connect/read, as httpx counts it
        max_attempts: int = 6,  # HTTP attempts per model call: at 30% failing requests, 0.3^6 = 0.07% lost
        max_wait: float = 30.0,  # longest wait between attempts; a longer Retry-After is raised
        backoff: float = 1.0,  # first exponential backoff step, seconds
        content_attempts: int = 2,  # answers per call: the first and one after the complaint
        chunk_tokens: int = 6_000,  # the largest piece of article per call (estimated tokens)
        prices: Mapping[str, tuple[float, float]] = DEFAULT_PRICES,
        http_client=None,  # the SDK's own HTTP client type (httpx2.Client here): proxies, custom TLS
        sleep: Callable[[float], None] = time.sleep,
        part_cache: EditCache | None = None,  # parts of long articles, by what the model is sent
    ) -> None:
        if not api_key:
            raise ConfigurationError("the OpenAI editor needs an API key (OPENAI_API_KEY)")
        self.model = model
        self.temperature = temperature
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.backoff = backoff
        self.content_attempts = max(1, content_attempts)
        self.chunk_tokens = chunk_tokens
        self.prices = prices
        self.part_cache = part_cache
        self._api_key = api_key
        self._sleep = sleep
        self._client = OpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=0,  # tenacity owns retries (see the module docstring)
            http_client=http_client,
        )
        # For messages and the cache namespace: never with credentials someone put in the URL.
        url = urlsplit(str(self._client.base_url))
        host = url.netloc.rpartition("@")[2]
        self.base_url = urlunsplit(url._replace(netloc=host))

    @property
    def engine(self) -> str:
        return f"openai:{self.model}"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIEditor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- the edit ---------------------------------------------------------------------------

    def edit(self, request: EditRequest) -> EditResult:
        job = _Job(
            request=request,
            model=request.model or self.model,
            temperature=self.temperature if request.temperature is None else request.temperature,
        )
        try:
            return self._edit(job)
        except CopydeskError as exc:
            exc.usage = self._priced(job)  # what was spent before the failure (a run records it)
            raise

    def _edit(self, job: _Job) -> EditResult:
        request = job.request
        html = markup.clean_html(request.html, drop_leading_heading=request.title)
        protected = markup.protect(html)
        chunks = split_into_chunks(protected.html, self.chunk_tokens)
        if not chunks:
            result = OfflineEditor().edit(request)
            result.engine = f"openai:{job.model}"
            result.warnings.append("the article is empty: nothing was sent to the model")
            return result

        if len(chunks) == 1:
            body, post_fields, kept_original = self._edit_whole(job, protected.html)
        else:
            body, kept_original = self._edit_parts(job, chunks)
            post_fields = self._ask(
                job,
                [
                    prompts.system_message(request.instructions),
                    prompts.post_fields_message(self._summary(html), **self._context(request)),
                ],
                prompts.post_fields_model(request.categories, with_body=False),
            ).parsed
        edited_html = markup.sanitize(markup.restore(body, protected))
        return self._result(job, edited_html, post_fields, kept_original, len(chunks))

    def _edit_whole(self, job: _Job, article: str):
        """One call for the body and the post fields: (body, post fields or None, kept original)."""
        request = job.request
        answer = self._ask(
            job,
            [
                prompts.system_message(request.instructions),
                prompts.whole_article_message(article, **self._context(request)),
            ],
            prompts.post_fields_model(request.categories, with_body=True),
            check=lambda a: checks.check_edit(article, a.body_html, language=request.language),
        )
        if not answer.problems:
            return answer.parsed.body_html, answer.parsed, False
        job.warnings.append(
            "the model's rewrite was rejected, so the original body is kept: " + "; ".join(answer.problems)
        )
        return article, answer.parsed, True  # the post fields of a valid answer are still good

    def _edit_parts(self, job: _Job, chunks: list[str]) -> tuple[str, bool]:
        """One call per part (body only): (the joined body, whether a part kept its original)."""
        request = job.request
        system = prompts.system_message(request.instructions)
        bodies, kept_original = [], False
        for number, chunk in enumerate(chunks, 1):
            message = prompts.part_message(
                chunk, part=number, parts=len(chunks), title=request.title, language=request.language
            )
            key = self._part_key(job, [system, message])
            cached = self._cached_part(key)
            if cached is not None:
                job.cached_parts += 1
                bodies.append(cached)
                continue
            answer = self._ask(
                job,
                [system, message],
                prompts.EditedBody,
                check=lambda a, chunk=chunk: checks.check_edit(chunk, a.body_html, language=request.language),
            )
            if answer.problems:
                kept_original = True
                bodies.append(chunk)
                job.warnings.append(
                    f"part {number} of {len(chunks)}: the model's rewrite was rejected, so the original "
                    "text of that part is kept: " + "; ".join(answer.problems)
                )
            else:
                bodies.append(answer.parsed.body_html)
                self._cache_part(key, answer.parsed.body_html)
        return "".join(bodies), kept_original

    def _part_key(self, job: _Job, messages: list[dict]) -> str:
        """Everything that makes a part's answer: the messages (instructions and the part), the
        model, the temperature, the prompt version and the server."""
        parts = {
            "kind": "part",
            "prompt_version": prompts.PROMPT_VERSION,
            "namespace": self.base_url,
            "model": job.model,
            "temperature": job.temperature,
            "messages": messages,
        }
        return "part:" + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def _cached_part(self, key: str) -> str | None:
        if self.part_cache is None:
            return None
        try:
            hit = self.part_cache.get(key)
        except Exception:
            log.warning("the part cache could not be read; editing without it", exc_info=True)
            return None
        body = (hit or {}).get("body_html")
        return body if isinstance(body, str) else None

    def _cache_part(self, key: str, body_html: str) -> None:
        if self.part_cache is None:
            return
        try:
            self.part_cache.put(key, {"body_html": body_html})
        except Exception:
            log.warning("an edited part could not be cached", exc_info=True)

    @staticmethod
    def _context(request: EditRequest) -> dict:
        return {
            "title": request.title,
            "keywords": request.keywords,
            "categories": request.categories,
            "language": request.language,
            "site_tags": [term.name for term in request.site_tags],
        }

    @staticmethod
    def _summary(html: str) -> str:
        outline = "\n".join(f"- {h}" for h in markup.headings_of(html))
        opening = shorten(markup.text_of(html), SUMMARY_CHARS)
        return f"Outline:\n{outline}\n\nOpening:\n{opening}" if outline else opening

    def _result(self, job: _Job, html: str, post_fields, kept_original: bool, chunks: int) -> EditResult:
        request = job.request
        if post_fields is None:
            job.warnings.append(
                "the model did not answer the post fields as valid JSON twice: title, excerpt, tags and "
                "category come from the offline editor"
            )
            offline = OfflineEditor().edit(request)
            title, excerpt, slug = offline.title, offline.excerpt, offline.slug
            tags, category = offline.tags, offline.category
        else:
            title = " ".join(post_fields.title.split()) or request.title or "Untitled"
            excerpt = shorten(post_fields.excerpt, EXCERPT_CHARS)
            slug = slugify(post_fields.slug or title, transliterate=request.transliterate_slug)
            # A slug in another language or script than the article's (a translated one) is not its
            # own: the title's words are.
            if field_problems("slug", slug, markup.text_of(request.html) or request.text,
                              transliterated_slug=request.transliterate_slug):  # fmt: skip
                slug = slugify(title, transliterate=request.transliterate_slug)
            tags = _clean_tags(post_fields.tags)
            category = self._category(job, getattr(post_fields, "category", None))
            if kept_original:
                # The rewrite failed its checks: its post fields are suspect too. Each one is used
                # only when it passes its own checks, else the document's own value.
                offline = OfflineEditor().edit(request)
                own = PostFields(offline.title, offline.excerpt, offline.slug, offline.tags)
                settled, notes = settle_fields(
                    PostFields(title, excerpt, slug, tags),
                    own,
                    markup.text_of(request.html) or request.text,
                    transliterated_slug=request.transliterate_slug,
                )
                title, excerpt, slug, tags = settled.title, settled.excerpt, settled.slug, settled.tags
                job.warnings.extend(notes)
        # WordPress shows the title above the body: a leading heading that repeats it goes.
        html = markup.clean_html(html, drop_leading_heading=title)

        usage = self._priced(job)
        return EditResult(
            html=html,
            title=title,
            excerpt=excerpt,
            slug=slug,
            tags=tags,
            category=category,
            engine=f"openai:{job.model}",
            warnings=job.warnings,
            usage=usage,
            kept_original_body=kept_original,
            chunks=chunks,
            cached_parts=job.cached_parts,
        )

    def _priced(self, job: _Job) -> Usage:
        usage = job.usage
        usage.cost_usd, usage.note = estimate_cost(
            job.model, usage.prompt_tokens, usage.completion_tokens, self.prices
        )
        return usage

    @staticmethod
    def _category(job: _Job, answer: str | None) -> str | None:
        if not answer:
            return None
        by_name = {c.casefold(): c for c in job.request.categories}
        category = by_name.get(answer.strip().casefold())
        if category is None:  # servers without strict schemas can answer outside the enum
            job.warnings.append(f"the model chose the category {answer!r}, which the site does not have")
        return category

    # --- one call: up to content_attempts answers, each with transport retries ---------------

    def _ask(self, job: _Job, messages: list[dict], shape, check=None) -> _Answer:
        messages = list(messages)
        best: pydantic.BaseModel | None = None
        problems: list[str] = []
        raw_content = ""
        for attempt in range(1, self.content_attempts + 1):
            if attempt > 1:  # the second chance sees its previous answer and what was wrong with it
                messages += [
                    {"role": "assistant", "content": raw_content},
                    prompts.complaint_message(problems),
                ]
            raw_content, parsed, problem = self._complete(job, messages, shape)
            if problem is not None:
                problems = [problem]
                continue
            best = parsed
            problems = check(parsed) if check else []
            if not problems:
                break
        return _Answer(best, problems)

    def _complete(self, job: _Job, messages: list[dict], shape):
        """One answer: (its raw text, the parsed answer or None, the problem with it or None)."""
        raw = self._with_retries(job, messages, shape)
        try:
            body = raw.http_response.json()
        except ValueError:
            raise RemoteError(
                f"the model server ({self.base_url}) answered with a body that is not JSON"
            ) from None
        usage = body.get("usage") or {}
        job.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        job.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
        choices = body.get("choices") or [{}]
        content = (choices[0].get("message") or {}).get("content") or ""
        try:
            message = raw.parse().choices[0].message
        except pydantic.ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(p) for p in first.get("loc", ()))
            detail = first.get("msg", "invalid") + (f" at {where}" if where else "")
            return content, None, f"the answer was not a valid JSON object of the requested shape ({detail})"
        except openai.LengthFinishReasonError:
            return content, None, "the answer was cut off before its end; answer again, completely"
        except openai.ContentFilterFinishReasonError:
            return content, None, "the answer was stopped by the content filter"
        if message.refusal:
            return content, None, f"the model refused: {message.refusal}"
        if message.parsed is None:
            return content, None, "the answer was empty"
        return content, message.parsed, None

    def _with_retries(self, job: _Job, messages: list[dict], shape):
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(self._worth_retrying),
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=_WaitRetryAfter(
                tenacity.wait_exponential_jitter(
                    multiplier=self.backoff, jitter=self.backoff, max=self.max_wait
                ),
                self.max_wait,
            ),
            sleep=self._sleep,
            before_sleep=tenacity.before_sleep_log(log, logging.WARNING),
            reraise=True,
        )
        extra = {} if job.temperature is None else {"temperature": job.temperature}
        try:
            for attempt in retrying:
                with attempt:
                    job.usage.requests += 1
                    try:
                        return self._client.chat.completions.with_raw_response.parse(
                            model=job.model, messages=messages, response_format=shape, **extra
                        )
                    except openai.APIError as exc:
                        raise self._translate(exc) from None
        except TransientError as exc:
            if self._worth_retrying(exc):  # tenacity would have gone on: the attempts ran out
                attempts = retrying.statistics.get("attempt_number", self.max_attempts)
                raise self._gave_up(exc, attempts) from None
            raise
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    @staticmethod
    def _gave_up(exc: TransientError, attempts: int) -> TransientError:
        """The final error after the last attempt: no retry_after (nobody should wait and try again)."""
        after = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        details = {**exc.details, "attempts": attempts}
        if isinstance(exc, RateLimited):  # not a hand-up: the server never asked for a long wait
            return ServiceUnavailable(f"{exc.message} (still rate limited {after})", details=details)
        return type(exc)(f"{exc.message} ({after})", details=details)

    def _worth_retrying(self, exc: BaseException) -> bool:
        if not isinstance(exc, TransientError):
            return False
        # A long Retry-After is not waited out here: the error goes up with retry_after set, so the
        # workflow can put the step back on the broker with that countdown instead of holding a worker.
        return exc.retry_after is None or exc.retry_after <= self.max_wait

    # --- errors ----------------------------------------------------------------------------

    def _translate(self, exc: openai.APIError) -> CopydeskError:
        where = f"the model server ({self.base_url})"
        if isinstance(exc, openai.APITimeoutError):
            return TimedOut(f"{where} did not answer within {self.timeout:g} s")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            reason = f": {type(cause).__name__}: {cause}" if cause else ""
            return ConnectionFailed(self._redact(f"could not connect to {where}{reason}"))
        if not isinstance(exc, openai.APIStatusError):
            return RemoteError(self._redact(f"{where} answered something unexpected: {exc.message}"))

        status = exc.status_code
        message = self._redact(_server_message(exc))
        retry_after = retry_after_of(exc.response.headers)
        said = f"{where} answered {status}: {message}"
        if status == 429:
            return RateLimited(said, retry_after=retry_after, details={"status": status})
        if status == 408:
            return TimedOut(said, details={"status": status})
        if status >= 500 or status == 409:
            return ServiceUnavailable(said, retry_after=retry_after, details={"status": status})
        if status == 401:
            return AuthenticationFailed(
                f"{where} refused the API key (401): {message}", details={"status": status}
            )
        if status == 403:
            return PermissionDenied(said, details={"status": status})
        if status == 404:
            return NotFound(said, details={"status": status})
        return RemoteError(said, details={"status": status})

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    if isinstance(body, str) and body.strip():
        return shorten(body, 300)
    return exc.message


def _clean_tags(tags: list[str], limit: int = 10) -> list[str]:
    out: dict[str, str] = {}
    for tag in tags:
        tag = " ".join(str(tag).strip(" #,.;").split())
        if tag and len(tag) <= 60:
            out.setdefault(tag.casefold(), tag)
    return list(out.values())[:limit]
