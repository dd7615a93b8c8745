from __future__ import annotations

from pathlib import Path

import typer

from app.cli import fail

# The workflow modules are imported by the commands that use them (a tenth of a second less for every
# other `copydesk` command).

app = typer.Typer(no_args_is_help=True)


@app.command("validate")
def validate(files: list[Path] = typer.Argument(None, help="definition files (default: every installed one)")) -> None:
    """Check definitions: schema, unknown steps or tasks, cycles, for_each over non-lists."""
    from app.workflows.schema import DefinitionError, load_file, workflows

    if not files:
        try:
            found = workflows()
        except DefinitionError as exc:
            fail(exc.message, 1)
        for wf in found.values():
            typer.echo(f"ok  {wf.name} v{wf.version} ({len(wf.steps)} steps)")
        return
    bad = 0
    for path in files:
        try:
            wf = load_file(path)
        except DefinitionError as exc:
            bad += 1
            typer.echo(f"invalid  {exc.message}", err=True)
        else:
            typer.echo(f"ok  {path}: {wf.name} v{wf.version} ({len(wf.steps)} steps)")
    if bad:
        raise typer.Exit(1)


@app.command("show")
def show(name: str = typer.Argument(..., help="workflow name, or a definition file")) -> None:
    """The compiled canvas as a tree."""
    from app.workflows.compiler import plan, render
    from app.workflows.schema import get_workflow, load_file

    path = Path(name)
    wf = load_file(path) if path.suffix in (".yaml", ".yml") and path.exists() else get_workflow(name)
    typer.echo(f"{wf.name} v{wf.version}: {wf.description.strip()}".rstrip(": "))
    typer.echo(render(plan(wf), wf))
