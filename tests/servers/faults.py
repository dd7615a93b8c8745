"""Probabilistic, seeded fault injection shared by the test servers (OSS, OpenAI; the WordPress
mu-plugin computes the very same decisions in PHP).

A server in random-fault mode numbers the requests it considers (those matching `method` / `path`)
1, 2, 3… in arrival order, and request n gets a fault when u1(n) < ratio, where u1, u2, u3 are read
from md5(f"{seed}:{n}") (three 32-bit slices / 2**32). The fault's kind is chosen from `mix` (weights)
by u2, and when `after` > 0 the fault hits after the work was done (the answer is lost) when
u3 < after. The same seed therefore gives the same sequence of faults for the same sequence of
requests, whatever the server, run after run; only the interleaving of concurrent clients varies.

Kinds: "429" (with Retry-After: `retry_after` seconds), "500", "timeout" (the server holds the request
for `delay` seconds, past the client's timeout, or, where the server can and `delay` is 0, drops the
connection without an answer).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from dataclasses import dataclass, field

KINDS = ("429", "500", "timeout")
DEFAULT_MIX = {"429": 1.0, "500": 1.0, "timeout": 1.0}


def uniforms(seed: int | str, n: int) -> tuple[float, float, float]:
    digest = hashlib.md5(f"{seed}:{n}".encode()).hexdigest()
    return tuple(int(digest[i : i + 8], 16) / 2**32 for i in (0, 8, 16))  # type: ignore[return-value]


def pick(mix: dict[str, float], u: float) -> str:
    """The kind whose cumulative weight u falls into (mix in its given order)."""
    total = sum(mix.values())
    acc = 0.0
    for kind, weight in mix.items():
        acc += weight / total
        if u < acc:
            return kind
    return list(mix)[-1]


@dataclass
class Decision:
    n: int
    kind: str  # 429 | 500 | timeout
    after: bool  # True: the work is done first, then the answer is lost


@dataclass
class RandomFaults:
    ratio: float
    seed: int | str = 0
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    retry_after: float = 1.0
    delay: float = 0.0
    after: float = 0.0
    method: str | None = None
    path: str | None = None  # a regular expression searched in the request's path
    seen: int = 0  # requests considered so far
    served: Counter = field(default_factory=Counter)  # faults served, by kind
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.ratio <= 1:
            raise ValueError(f"ratio must be between 0 and 1, not {self.ratio}")
        unknown = set(self.mix) - set(KINDS)
        if unknown or not self.mix or sum(self.mix.values()) <= 0:
            raise ValueError(f"mix must weigh some of {KINDS}, not {self.mix}")
        self.mix = {str(k): float(v) for k, v in self.mix.items() if v > 0}

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and (
            self.path is None or re.search(self.path, path) is not None
        )

    def take(self, method: str, path: str) -> Decision | None:
        """Number this request and decide its fault (None: served normally)."""
        if not self.matches(method, path):
            return None
        with self._lock:
            self.seen += 1
            n = self.seen
        u1, u2, u3 = uniforms(self.seed, n)
        if u1 >= self.ratio:
            return None
        decision = Decision(n, pick(self.mix, u2), u3 < self.after)
        with self._lock:
            self.served[decision.kind] += 1
        return decision

    def summary(self) -> dict:
        return {"seen": self.seen, "served": dict(self.served), "total": sum(self.served.values())}
