"""Long articles are edited in pieces: split at headings, each piece under a token budget, joined back."""

from __future__ import annotations

import math

from app.integrations.llm import markup


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: about 4 bytes of UTF-8 per token. Right for English (4 characters
    per token), and for scripts of 2–3 bytes per character it errs on the safe side."""
    return math.ceil(len(text.encode("utf-8")) / 4)


def split_into_chunks(html: str, max_tokens: int) -> list[str]:
    """Split the article into pieces of at most `max_tokens` (estimated), cutting before headings
    where possible, else between top-level blocks. A single block larger than the budget (a huge
    table) becomes a piece of its own: blocks are never cut. Joining the pieces with "" gives back
    the article (as serialized by markup)."""
    blocks = markup.top_level_blocks(html)
    if estimate_tokens("".join(blocks)) <= max_tokens:
        return ["".join(blocks)] if blocks else []

    sections: list[list[str]] = []  # each starts at a heading (the first may not)
    for block in blocks:
        if markup.is_heading(block) or not sections:
            sections.append([])
        sections[-1].append(block)

    chunks: list[str] = []
    current: list[str] = []
    current_tokens = 0

    def flush() -> None:
        nonlocal current, current_tokens
        if current:
            chunks.append("".join(current))
        current, current_tokens = [], 0

    for section in sections:
        section_tokens = sum(estimate_tokens(b) for b in section)
        if current_tokens + section_tokens <= max_tokens:
            current.append("".join(section))
            current_tokens += section_tokens
            continue
        flush()
        if section_tokens <= max_tokens:
            current, current_tokens = ["".join(section)], section_tokens
            continue
        for block in section:  # a section too long on its own: cut between its blocks
            block_tokens = estimate_tokens(block)
            if current and current_tokens + block_tokens > max_tokens:
                flush()
            current.append(block)
            current_tokens += block_tokens
    flush()
    return chunks
