"""Step kinds: the named units of work a workflow definition can use as `task:`.

A kind is declared — its name, its result fields (which of them are lists, so a definition's
`for_each: parse.images` can be checked at load time) and its default queue — and implemented by a
function taking a `StepContext` and returning a JSON-able dict (the step's result, stored in
PostgreSQL and readable by later steps as `<step id>.<field>`).

The declaration is all a process needs to check a definition, create a run and send it, so only the
workers load implementations. The built-in kinds are declared here, in BUILTIN_KINDS, and implemented
in app/tasks/steps (`@implements`). A module named in STEP_MODULES declares and implements kinds of its
own (`@step_kind`); every process that loads definitions imports it, so it should import little.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.core.config import get_settings
from app.core.errors import ConfigurationError


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


@dataclass(frozen=True)
class StepKind:
    name: str
    outputs: Mapping[str, type] = field(default_factory=dict)  # result field -> type
    default_queue: str | None = None

    @property
    def list_outputs(self) -> frozenset[str]:
        """The result fields a `for_each` may go over."""
        return frozenset(name for name, kind in self.outputs.items() if kind is list)


BUILTIN_KINDS = (
    StepKind("store", {"kind": str, "size": int, "sha256": str}),
    StepKind("to_docx", {"docx_key": str}),
    StepKind("parse", {"images": list, "title": str, "words": int}),
    StepKind("transform", {"engine": str, "title": str}),
    StepKind("upload_image", {"url": str}, default_queue="io"),
    StepKind("publish", {"url": str, "publisher": str, "post_id": int, "site": str}, default_queue="io"),
)
# Names a stored run may still use: its definition is kept with it.
ALIASES = {"convert": "to_docx"}

_KINDS: dict[str, StepKind] = {kind.name: kind for kind in BUILTIN_KINDS}
_FUNCTIONS: dict[str, StepFunction] = {}


def implements(name: str) -> Callable[[StepFunction], StepFunction]:
    """Make a function the implementation of a declared kind."""
    if name not in _KINDS:
        raise ConfigurationError(f"step kind '{name}' is not declared")

    def register(func: StepFunction) -> StepFunction:
        _FUNCTIONS[name] = func
        return func

    return register


def step_kind(
    name: str, *, outputs: dict[str, type] | None = None, queue: str | None = None
) -> Callable[[StepFunction], StepFunction]:
    """Declare a kind and make the function its implementation (for the modules in STEP_MODULES)."""
    _KINDS[name] = StepKind(name, dict(outputs or {}), queue)
    return implements(name)


def kinds() -> dict[str, StepKind]:
    """Every declared kind, the STEP_MODULES' included."""
    for module in filter(None, (m.strip() for m in get_settings().step_modules.split(","))):
        importlib.import_module(module)  # a dictionary lookup once imported
    return dict(_KINDS)


def get_kind(name: str) -> StepKind:
    return kinds()[ALIASES.get(name, name)]


def implementation(name: str) -> StepFunction:
    """The function of a kind (in a worker, once app/tasks/steps and STEP_MODULES are imported)."""
    name = ALIASES.get(name, name)
    try:
        return _FUNCTIONS[name]
    except KeyError:
        raise ConfigurationError(f"step kind '{name}' has no implementation in this process") from None
