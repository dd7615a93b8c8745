"""Declarative workflows: YAML definitions -> validated graph -> Celery canvas, with run state in
PostgreSQL (see schema, compiler, state, engine, intake)."""
