"""The step kinds of the publish_document workflow, one module each: thin adapters that load what
the step needs, call one service (app/documents, app/integrations) and record the result.
Importing this package registers them."""

from app.tasks.steps import convert, parse, publish, store, transform, upload  # noqa: F401
