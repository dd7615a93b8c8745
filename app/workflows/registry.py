"""Step kinds: the named units of work a workflow definition can use as `task:`.

A step kind is a function taking a `StepContext` and returning a JSON-able dict (the step's result,
stored in PostgreSQL and readable by later steps as `<step id>.<field>`). It declares which result
fields are lists, so a definition's `for_each: parse.images` can be checked at load time. Kinds are
registered by `app.tasks.steps` (thin adapters that call services in app/documents and
app/integrations).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepContext:
    run_id: uuid.UUID
    step: str  # the step's id in the definition
    kind: str
    payload: dict[str, Any]
    options: dict[str, Any]  # the step's `options:` from the definition
    document_id: uuid.UUID | None
    attempt: int  # 1 for the first attempt
    index: int | None = None  # fan-out item index
    item: Any = None  # fan-out item value
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # earlier steps' results
    warnings: list[str] = field(default_factory=list)

    @property
    def idempotency_key(self) -> str:
        """(run, step, item): a side effect done under this key must not be done twice."""
        suffix = "" if self.index is None else f":{self.index}"
        return f"{self.run_id}:{self.step}{suffix}"

    def warn(self, message: str) -> None:
        """A warning shown on the run (kept even when the step succeeds)."""
        if message not in self.warnings:
            self.warnings.append(message)


StepFunction = Callable[[StepContext], dict[str, Any] | None]


@dataclass
class StepKind:
    name: str
    func: StepFunction
    description: str = ""
    list_outputs: frozenset[str] = frozenset()  # result fields that are lists (usable in for_each)
    outputs: frozenset[str] = frozenset()  # every declared result field
    default_queue: str | None = None


_KINDS: dict[str, StepKind] = {}


def step_kind(
    name: str,
    *,
    description: str = "",
    outputs: dict[str, type] | None = None,
    queue: str | None = None,
) -> Callable[[StepFunction], StepFunction]:
    """Register a function as a step kind."""

    def register(func: StepFunction) -> StepFunction:
        outs = outputs or {}
        _KINDS[name] = StepKind(
            name=name,
            func=func,
            description=description or (func.__doc__ or "").strip().split("\n")[0],
            list_outputs=frozenset(k for k, t in outs.items() if t is list),
            outputs=frozenset(outs),
            default_queue=queue,
        )
        return func

    return register


def get_kind(name: str) -> StepKind:
    ensure_loaded()
    return _KINDS[name]


def kinds() -> dict[str, StepKind]:
    ensure_loaded()
    return dict(_KINDS)


_loaded = False
_loading = False
_load_lock = threading.RLock()


def ensure_loaded() -> None:
    """Import the modules that register step kinds: the built-in ones, then STEP_MODULES (once).
    Thread-safe: another thread asking meanwhile waits for the whole registry (two threads submitting
    the first documents of a process at once saw an empty one: "unknown task 'store' (known: )");
    a call made by those imports themselves (same thread) returns at once, as before."""
    global _loaded, _loading
    if _loaded:
        return
    with _load_lock:
        if _loaded or _loading:
            return
        _loading = True
        try:
            import importlib

            from app.core.config import get_settings

            importlib.import_module("app.tasks.steps")
            for module in filter(None, (m.strip() for m in get_settings().step_modules.split(","))):
                importlib.import_module(module)
            _loaded = True
        finally:
            _loading = False
