"""The implementations of the built-in step kinds (declared in app/workflows/registry.py), one module
each: thin adapters that load what the step needs, call one service (app/documents, app/integrations)
and record the result. Only the workers import them."""

from app.tasks.steps import convert, parse, publish, store, transform, upload  # noqa: F401
