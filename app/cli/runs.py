"""`copydesk login | logout | submit | runs | run | approve | reject | resume | cancel`: the REST API
from a terminal, with live progress bars.

Which API: `--api-url`, else COPYDESK_API_URL, else the URL saved by `copydesk login`, else PUBLIC_URL
(http://127.0.0.1:8000, what `copydesk dev` serves).
Which token: COPYDESK_TOKEN, else the one `copydesk login` saved in <config dir>/credentials.json
(~/.config/copydesk on Linux, XDG_CONFIG_HOME respected; the file is 0600), used only for the API it
was issued by.

Exit codes (every error is one line on stderr, starting with "copydesk:"):
  0  done: every run succeeded (submit), the command did what was asked
  1  a run failed or was cancelled, or the API refused (not a Word file, wrong state, no such run)
  2  bad usage: a file that does not exist, a bad option or id
  3  the API cannot be reached, or it failed (5xx)
  4  not logged in, the token was refused or expired, or the account may not do this
  5  not finished: a run waits for approval, or --timeout passed before every run ended
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import typer

TERMINAL = ("succeeded", "failed", "cancelled")
STOPPED = (*TERMINAL, "awaiting_approval")  # where `submit` stops waiting
OK, FAILED, USAGE, UNREACHABLE, AUTH, UNFINISHED = 0, 1, 2, 3, 4, 5


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = " ".join(str(message).split())  # one line
        self.code = code


def _fail(exc: CliError) -> None:
    from app.cli import fail

    fail(exc.message, exc.code)


# --- where and who -----------------------------------------------------------------------------------


def config_dir() -> Path:
    return Path(typer.get_app_dir("copydesk"))


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def _saved() -> dict[str, Any]:
    try:
        data = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _norm(url: str) -> str:
    return url.strip().rstrip("/")


def resolve_url(api_url: str | None) -> str:
    if api_url:
        url = api_url
    elif os.environ.get("COPYDESK_API_URL"):
        url = os.environ["COPYDESK_API_URL"]
    elif _saved().get("api_url"):
        url = _saved()["api_url"]
    else:
        from app.core.config import get_settings

        url = str(get_settings().public_url)
    if not re.match(r"^https?://[^\s/]+", url):
        raise CliError(f"the API URL must start with http:// or https:// (got {url!r})", USAGE)
    return _norm(url)


def resolve_token(url: str) -> str | None:
    if os.environ.get("COPYDESK_TOKEN"):
        return os.environ["COPYDESK_TOKEN"].strip()
    saved = _saved()
    # A token goes only to the API that issued it.
    if saved.get("token") and _norm(str(saved.get("api_url", ""))) == url:
        return str(saved["token"])
    return None


def _save_credentials(data: dict[str, Any]) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


# --- the API -------------------------------------------------------------------------------------------


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):  # FastAPI's default validation errors
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return json.dumps(body)[:300]


class Api:
    def __init__(self, api_url: str | None, *, auth: bool = True) -> None:
        self.url = resolve_url(api_url)
        headers = {"Accept": "application/json", "User-Agent": "copydesk-cli"}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=httpx.Timeout(60, connect=10))
        if auth:
            token = resolve_token(self.url)
            if not token:
                try:  # an API that cannot be reached says so first (exit 3), not "log in" (4)
                    self.call("GET", "/health")
                except CliError as exc:
                    if exc.code == UNREACHABLE:
                        self.close()
                        raise
                self.close()
                raise CliError(
                    f"not logged in to {self.url}: run `copydesk login` (or set COPYDESK_TOKEN)", AUTH
                )
            self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise CliError(f"the API at {self.url} did not answer in time", UNREACHABLE) from None
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach the API at {self.url}: {exc}", UNREACHABLE) from None
        if response.status_code == 401:
            raise CliError(
                f"{_detail(response)} — log in again with `copydesk login` (or set COPYDESK_TOKEN)", AUTH
            )
        if response.status_code == 403:
            raise CliError(_detail(response), AUTH)
        if response.status_code >= 500:
            raise CliError(f"the API failed ({response.status_code}): {_detail(response)}", UNREACHABLE)
        if response.status_code >= 400:
            raise CliError(_detail(response), FAILED)
        return response.json()

    def close(self) -> None:
        self.http.close()


def _run_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise CliError(f"{value!r} is not a run id (a UUID such as 6f1c…-…)", USAGE) from None


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


API_URL = typer.Option(
    None, "--api-url", metavar="URL", help="the Copydesk API (default: COPYDESK_API_URL, the login's, PUBLIC_URL)"
)
JSON_OUT = typer.Option(False, "--json", help="print JSON (for scripts) instead of text")


# --- login -----------------------------------------------------------------------------------------------


def login(
    email: str = typer.Option(..., "--email", prompt=True, envvar="COPYDESK_EMAIL", help="your login e-mail"),
    password: str = typer.Option(
        ..., "--password", prompt=True, hide_input=True, envvar="COPYDESK_PASSWORD",
        help="your password (prompted when not given; or COPYDESK_PASSWORD)",
    ),
    api_url: str | None = API_URL,
) -> None:
    """Log in and keep the token (0600 file in your config folder) for the other commands."""
    try:
        api = Api(api_url, auth=False)
        try:
            token = api.call("POST", "/auth/token", data={"username": email, "password": password})
        except CliError as exc:
            if exc.code == FAILED:  # a 4xx other than 401/403
                exc.code = AUTH
            raise
        finally:
            api.close()
        expires = int(time.time()) + int(token.get("expires_in") or 0)
        path = _save_credentials(
            {
                "api_url": api.url,
                "email": email.strip().lower(),
                "token": token["access_token"],
                "expires_at": expires,
            }
        )
    except CliError as exc:
        _fail(exc)
    typer.echo(f"logged in to {api.url} as {email.strip().lower()}; token saved in {path} "
               f"(valid until {time.strftime('%Y-%m-%d %H:%M', time.localtime(expires))})")


def logout() -> None:
    """Forget the saved token."""
    path = credentials_path()
    if path.exists():
        path.unlink()
        typer.echo(f"logged out (removed {path})")
    else:
        typer.echo("not logged in")


# --- submit ----------------------------------------------------------------------------------------------


def _progress_columns():
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    return (
        TextColumn("{task.description}", justify="left", markup=False, style="bold"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TextColumn("{task.fields[state]}", markup=False),
        TimeElapsedColumn(),
    )


def _wait_for_runs(api: Api, runs: dict[str, dict], timeout: float, show: bool) -> bool:
    """Poll each run until it stops (ends or waits for approval); rich progress bars on stderr.
    Returns False when the timeout passed first."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    deadline = time.monotonic() + timeout if timeout > 0 else None
    with Progress(*_progress_columns(), console=console, disable=not show, transient=False) as progress:
        tasks = {
            run_id: progress.add_task(
                entry["file"], total=max(entry["run"]["progress"]["total"], 1),
                completed=entry["run"]["progress"]["done"], state=entry["run"]["state"],
            )
            for run_id, entry in runs.items()
        }
        while True:
            waiting = [rid for rid, entry in runs.items() if entry["run"]["state"] not in STOPPED]
            for run_id in waiting:
                run = api.call("GET", f"/runs/{run_id}")
                runs[run_id]["run"] = run
                label = run["state"].replace("_", " ")
                if run["state"] == "failed" and run.get("error_step"):
                    label = f"failed at {run['error_step']}"
                progress.update(
                    tasks[run_id], total=max(run["progress"]["total"], 1),
                    completed=run["progress"]["done"], state=label,
                )
            if not [rid for rid, entry in runs.items() if entry["run"]["state"] not in STOPPED]:
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.5)


def submit(
    files: list[Path] = typer.Argument(..., help="Word manuscripts (.docx, .doc)"),
    workflow: str = typer.Option("publish_document", "--workflow", "-w", help="the workflow to run"),
    status: str | None = typer.Option(None, "--status", help="post status: draft, pending, publish, future"),
    category: str | None = typer.Option(None, "--category", help="post category"),
    tags: str | None = typer.Option(None, "--tags", help="comma-separated post tags"),
    no_wait: bool = typer.Option(False, "--no-wait", help="return once submitted, without waiting"),
    timeout: float = typer.Option(0, "--timeout", min=0, help="stop waiting after this many seconds"),
    json_out: bool = JSON_OUT,
    api_url: str | None = API_URL,
) -> None:
    """Upload manuscripts and follow their runs with live progress bars until every run ends. A file
    sent before is its document again: with new options (--status, --tags, --category) a new run
    updates its post; without, nothing runs again; either way its post's URL is printed.
    Exit 0 when all succeeded, 1 when any failed, 5 when one waits for approval or --timeout passed."""
    for path in files:
        if not path.is_file():
            _fail(CliError(f"{path}: no such file", USAGE))
        if not os.access(path, os.R_OK):
            _fail(CliError(f"{path}: cannot be read", USAGE))
    try:
        api = Api(api_url)
    except CliError as exc:
        _fail(exc)
    fields = {"workflow": workflow, "status": status, "category": category, "tags": tags}
    form = {k: v for k, v in fields.items() if v}
    results: list[dict[str, Any]] = []
    followed: dict[str, dict] = {}
    code = OK
    try:
        for path in files:
            try:
                with path.open("rb") as fh:
                    upload = {"file": (path.name, fh, "application/octet-stream")}
                    body = api.call("POST", "/documents", data=form, files=upload)
            except CliError as exc:
                if exc.code in (UNREACHABLE, AUTH):
                    raise  # every other file would fail the same way
                typer.echo(f"copydesk: {path.name}: {exc.message}", err=True)
                results.append({"file": str(path), "error": exc.message})
                code = FAILED
                continue
            entry = {
                "file": path.name,
                "path": str(path),
                "document": body["document"],
                "run": body.get("run"),
                "duplicate": body.get("duplicate", False),
                "updated": body.get("updated", False),
                "article_id": body.get("article_id"),
                "url": body.get("url"),
            }
            results.append(entry)
            if entry["run"] and entry["run"]["id"] not in followed:
                followed[entry["run"]["id"]] = entry
        finished = True
        if followed and not no_wait:
            finished = _wait_for_runs(api, followed, timeout, show=not json_out)
        for entry in results:
            article_id = (entry.get("run") or {}).get("article_id") or entry.get("article_id")
            if article_id:
                try:
                    article = api.call("GET", f"/articles/{article_id}")
                    entry["article_id"] = article_id
                    entry["url"] = article.get("wp_url") or article.get("preview_url")
                except CliError:
                    pass
    except CliError as exc:
        _fail(exc)
    finally:
        api.close()

    states = [entry["run"]["state"] for entry in results if entry.get("run")]
    if not no_wait:
        if any(s in ("failed", "cancelled") for s in states):
            code = FAILED
        elif code == OK and (not finished or any(s not in TERMINAL for s in states)):
            code = UNFINISHED
    if json_out:
        _print_json([_submission_json(entry) for entry in results])
    else:
        for entry in results:
            if "error" in entry:
                continue
            run = entry.get("run")
            if run is None:
                document_id = entry["document"]["id"]
                typer.echo(f"{entry['file']}: already submitted as document {document_id} (no run)")
                continue
            what = ""
            if entry["updated"]:
                what = "submitted before, its post updated with the new options: "
            elif entry["duplicate"]:
                what = "already submitted, nothing new to apply: "
            line = f"{entry['file']}: {what}{run['state'].replace('_', ' ')}  run {run['id']}"
            if run["state"] == "failed" and run.get("error"):
                line += f"\n  error: {run['error']}"
            if entry.get("url"):
                line += f"\n  {entry['url']}"
            typer.echo(line)
        if not finished:
            typer.echo(f"stopped waiting after {timeout:g}s; follow with `copydesk runs --watch`", err=True)
    raise typer.Exit(code)


def _submission_json(entry: dict[str, Any]) -> dict[str, Any]:
    if "error" in entry:
        return {"file": entry["file"], "error": entry["error"]}
    run = entry.get("run") or {}
    return {
        "file": entry["path"],
        "document_id": entry["document"]["id"],
        "duplicate": entry["duplicate"],
        "updated": entry["updated"],
        "run_id": run.get("id"),
        "workflow": run.get("workflow"),
        "state": run.get("state"),
        "progress": run.get("progress"),
        "error": run.get("error"),
        "error_step": run.get("error_step"),
        "warnings": run.get("warnings", []),
        "article_id": run.get("article_id") or entry.get("article_id"),
        "url": entry.get("url"),
    }


# --- runs and run -------------------------------------------------------------------------------------------


def run_title(run: dict) -> str:
    """What a person calls a run: its article's title, else its file's name (as the web page does)."""
    return run.get("title") or run.get("filename") or (
        "(untitled document)" if run.get("document_id") else f"{run['workflow']} run"
    )


def _runs_table(page: dict, width: int) -> Any:
    """Fits `width` (80 columns and up): the id (whole: `copydesk run ID` takes it), the title (whatever
    room is left, shortened with …, a failed run's error below it), state, progress as done/total; the
    creation time from 100 columns, the workflow from 120."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=f"{len(page['items'])} of {page['total']} runs", title_justify="left", box=box.SIMPLE_HEAD,
        show_edge=False, pad_edge=False, collapse_padding=True,
    )
    columns = ["run", "title", "state", "done"]
    if width >= 100:
        columns.append("created")
    if width >= 120:
        columns.insert(2, "workflow")
    for name in columns:
        if name == "title":
            table.add_column(name, ratio=1, min_width=12, overflow="ellipsis")
        elif name == "state":
            table.add_column(name, max_width=9, overflow="fold")  # "awaiting approval" on two lines
        else:
            table.add_column(name, no_wrap=True)
    for run in page["items"]:
        title = Text(run_title(run), no_wrap=True, overflow="ellipsis")  # Text: never markup
        if run.get("error"):
            title = Text("\n").join([title, Text(run["error"][:200], style="red", overflow="fold")])
        cells = {
            "run": Text(run["id"]),
            "title": title,
            "workflow": Text(run["workflow"]),
            "state": Text(run["state"].replace("_", " ")),
            "done": Text(f"{run['progress']['done']}/{run['progress']['total']}"),
            "created": Text(run["created_at"][5:16].replace("T", " ")),
        }
        table.add_row(*(cells[name] for name in columns))
    return table


def runs(
    state: list[str] = typer.Option(None, "--state", help="only runs in this state (repeatable)"),
    workflow: str | None = typer.Option(None, "--workflow", "-w"),
    limit: int = typer.Option(20, "--limit", min=1, max=500),
    watch: bool = typer.Option(False, "--watch", help="refresh every second until Ctrl-C"),
    json_out: bool = JSON_OUT,
    api_url: str | None = API_URL,
) -> None:
    """The newest runs with their state and progress."""
    from rich.console import Console

    if watch and json_out:
        _fail(CliError("--watch and --json do not go together", USAGE))
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["state"] = state
    if workflow:
        params["workflow"] = workflow
    try:
        api = Api(api_url)
        try:
            if json_out:
                _print_json(api.call("GET", "/runs", params=params))
                return
            console = Console()
            if not watch:
                console.print(_runs_table(api.call("GET", "/runs", params=params), console.width))
                return
            from rich.live import Live

            first = _runs_table(api.call("GET", "/runs", params=params), console.width)
            with Live(first, console=console, auto_refresh=False) as live:
                try:
                    while True:
                        time.sleep(1)
                        page = api.call("GET", "/runs", params=params)
                        live.update(_runs_table(page, console.width), refresh=True)
                except KeyboardInterrupt:
                    pass
        finally:
            api.close()
    except CliError as exc:
        _fail(exc)


def _duration(start: str | None, end: str | None) -> str:
    from datetime import datetime, timezone

    if not start:
        return ""
    begin = datetime.fromisoformat(start)
    finish = datetime.fromisoformat(end) if end else datetime.now(timezone.utc)
    seconds = (finish - begin).total_seconds()
    return f"{seconds:.1f}s" if seconds < 90 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def run(
    run_id: str = typer.Argument(..., help="the run id"),
    json_out: bool = JSON_OUT,
    api_url: str | None = API_URL,
) -> None:
    """One run: its state, progress and each step with attempts, retries, duration and error."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    try:
        run_id = _run_id(run_id)
        api = Api(api_url)
        try:
            data = api.call("GET", f"/runs/{run_id}")
        finally:
            api.close()
    except CliError as exc:
        _fail(exc)
    if json_out:
        _print_json(data)
        return
    console = Console()
    title = f"run {data['id']}  {data['workflow']} v{data['workflow_version']}"
    console.print(title, markup=False, style="bold")
    state = data["state"].replace("_", " ")
    console.print(f"state: {state}   progress: {data['progress']['text']}", markup=False)
    if data.get("error"):
        console.print(f"error: {data['error']}", markup=False, style="red")
    for warning in data.get("warnings") or []:
        console.print(f"warning: {warning}", markup=False, style="yellow")
    table = Table(title_justify="left")
    for name in ("step", "kind", "state", "attempts", "retries", "duration", "items", "summary / error"):
        table.add_column(name, overflow="fold")
    for step in data["steps"]:
        retries = sum(1 for a in step.get("attempt_log") or [] if isinstance(a, dict) and "next_wait" in a)
        items = ""
        if step.get("items_total") is not None:
            items = f"{step['items_done']}/{step['items_total']}"
            if step["items_failed"]:
                items += f" ({step['items_failed']} failed)"
        note = step.get("error") if step["state"] in ("failed", "retrying") else (step.get("summary") or "")
        table.add_row(*map(Text, (  # summaries quote manuscripts: plain text, never markup
            step["name"], step["task"], step["state"].replace("_", " "), str(step["attempts"]), str(retries),
            _duration(step.get("started_at"), step.get("finished_at")), items, note or "",
        )))
    console.print(table)
    if data.get("article_id"):
        console.print(f"article: {data['article_id']}", markup=False)


# --- actions -----------------------------------------------------------------------------------------


def _action(action: str, run_id: str, json_out: bool, api_url: str | None, body: dict | None = None) -> None:
    try:
        run_id = _run_id(run_id)
        api = Api(api_url)
        try:
            data = api.call("POST", f"/runs/{run_id}/{action}", json=body)
        finally:
            api.close()
    except CliError as exc:
        _fail(exc)
    if json_out:
        _print_json(data)
    else:
        typer.echo(f"run {data['id']}: {data['state'].replace('_', ' ')} ({data['progress']['text']})")


RUN_ID = typer.Argument(..., help="the run id")


def approve(run_id: str = RUN_ID, json_out: bool = JSON_OUT, api_url: str | None = API_URL) -> None:
    """Let a run waiting for approval go on."""
    _action("approve", run_id, json_out, api_url)


def reject(
    run_id: str = typer.Argument(..., help="the run id"),
    reason: str | None = typer.Option(None, "--reason", help="why (kept with the run)"),
    json_out: bool = JSON_OUT,
    api_url: str | None = API_URL,
) -> None:
    """Refuse a run waiting for approval: it ends cancelled."""
    _action("reject", run_id, json_out, api_url, {"reason": reason})


def resume(run_id: str = RUN_ID, json_out: bool = JSON_OUT, api_url: str | None = API_URL) -> None:
    """Re-run the failed (or cancelled) steps of a run and go on."""
    _action("resume", run_id, json_out, api_url)


def cancel(run_id: str = RUN_ID, json_out: bool = JSON_OUT, api_url: str | None = API_URL) -> None:
    """Stop a run: queued steps are not started."""
    _action("cancel", run_id, json_out, api_url)


def register(app: typer.Typer) -> None:
    app.command("login", help="Log in to the API and keep the token for the other commands.")(login)
    app.command("logout", help="Forget the saved token.")(logout)
    app.command("submit", help="Upload manuscripts and follow their runs with progress bars.")(submit)
    app.command("runs", help="List runs (--watch to follow them).")(runs)
    app.command("run", help="Show one run and its steps.")(run)
    for name, func in (("approve", approve), ("reject", reject), ("resume", resume), ("cancel", cancel)):
        app.command(name, help=func.__doc__.splitlines()[0])(func)
