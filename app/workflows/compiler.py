"""Definition (a DAG of steps) -> plan (a tree of chains and groups) -> Celery canvas.

The plan is exact for series-parallel graphs: a step every other step is either before or after
("a cut") splits the chain; between two cuts, the independent parts run as a group, and whatever
follows a group waits for all of it (Celery makes `chain(group, task)` a chord). Parts nest
freely: a chain inside a group, a group inside a chord header. For a graph that is not
series-parallel (an "N" shape), the compiler adds a barrier (runs the first layer as a group, then
the rest), which is correct but may wait longer than needed; `copydesk workflows show` says so.

A `for_each` step compiles to one task that, at run time, replaces itself with a chord of one task
per item and a fan-in task (Celery's `Task.replace`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.workflows.schema import WorkflowDef


@dataclass
class Node:
    """A step in the plan."""

    step: str


@dataclass
class Chain:
    parts: list
    barrier: bool = False  # True when a barrier was added to a non-series-parallel graph


@dataclass
class Group:
    parts: list


@dataclass
class Plan:
    root: Chain
    notes: list[str] = field(default_factory=list)


def plan(wf: WorkflowDef) -> Plan:
    notes: list[str] = []
    root = _compile(set(wf.by_id), wf.needs, [s.id for s in wf.steps], notes)
    if not isinstance(root, Chain):
        root = Chain([root])
    return Plan(root=root, notes=notes)


def _compile(nodes: set[str], needs: dict[str, list[str]], order: list[str], notes: list[str]):
    nodes_ordered = _topo([n for n in order if n in nodes], needs, nodes)
    if len(nodes_ordered) == 1:
        return Node(nodes_ordered[0])
    anc = {n: _closure(n, needs, nodes) for n in nodes_ordered}
    desc = {n: {m for m in nodes_ordered if n in anc[m]} for n in nodes_ordered}
    cuts = [n for n in nodes_ordered if len(anc[n]) + len(desc[n]) == len(nodes_ordered) - 1]
    if cuts:
        parts: list = []
        before: set[str] = set()
        for cut in cuts:
            segment = (anc[cut] - before) - set(cuts)
            if segment:
                parts.append(_compile(segment, needs, order, notes))
            parts.append(Node(cut))
            before |= anc[cut] | {cut}
        tail = set(nodes_ordered) - before
        if tail:
            parts.append(_compile(tail, needs, order, notes))
        return _flatten(Chain(parts))
    components = _components(nodes_ordered, needs)
    if len(components) > 1:
        return Group([_compile(c, needs, order, notes) for c in components])
    # Not series-parallel: run the sources first (a barrier), then the rest.
    sources = {n for n in nodes_ordered if not (set(needs[n]) & nodes)}
    rest = set(nodes_ordered) - sources
    notes.append(
        f"barrier added after {', '.join(sorted(sources))}: the graph is not series-parallel, "
        "so the next steps wait for all of these"
    )
    return _flatten(Chain([_compile(sources, needs, order, notes), _compile(rest, needs, order, notes)], True))


def _flatten(chain: Chain) -> Chain:
    parts: list = []
    for part in chain.parts:
        parts.extend(part.parts if isinstance(part, Chain) and not part.barrier else [part])
    return Chain(parts, chain.barrier)


def _topo(candidates: list[str], needs: dict[str, list[str]], nodes: set[str]) -> list[str]:
    done: list[str] = []
    placed: set[str] = set()
    pending = list(candidates)
    while pending:
        for n in pending:
            if all(d in placed or d not in nodes for d in needs[n]):
                done.append(n)
                placed.add(n)
                pending.remove(n)
                break
        else:  # pragma: no cover - cycles are refused at load time
            raise ValueError("cycle")
    return done


def _closure(node: str, needs: dict[str, list[str]], nodes: set[str]) -> set[str]:
    seen: set[str] = set()
    stack = [d for d in needs[node] if d in nodes]
    while stack:
        d = stack.pop()
        if d not in seen:
            seen.add(d)
            stack.extend(x for x in needs[d] if x in nodes)
    return seen


def _components(nodes: list[str], needs: dict[str, list[str]]) -> list[set[str]]:
    node_set = set(nodes)
    adj: dict[str, set[str]] = {n: set() for n in nodes}
    for n in nodes:
        for d in needs[n]:
            if d in node_set:
                adj[n].add(d)
                adj[d].add(n)
    comps: list[set[str]] = []
    seen: set[str] = set()
    for n in nodes:
        if n in seen:
            continue
        comp: set[str] = set()
        stack = [n]
        while stack:
            x = stack.pop()
            if x not in comp:
                comp.add(x)
                stack.extend(adj[x] - comp)
        seen |= comp
        comps.append(comp)
    return comps


def render(p: Plan, wf: WorkflowDef) -> str:
    """The plan as an indented tree (for `copydesk workflows show`)."""
    lines: list[str] = []

    def label(step_id: str) -> str:
        s = wf.by_id[step_id]
        bits = [f"queue={wf.queue_of(s)}"]
        if s.kind != s.id:
            bits.append(f"task={s.kind}")
        if s.for_each:
            bits.append(f"for_each={s.for_each} (chord at run time)")
        if s.when:
            bits.append(f"when: {s.when}")
        if s.approval:
            bits.append("waits for approval")
        retry = wf.retry_of(s)
        if retry.attempts > 1:
            bits.append(f"retry {retry.attempts}x {retry.backoff} on {','.join(retry.on)}")
        if wf.timeout_of(s):
            bits.append(f"timeout={wf.timeout_of(s):g}s")
        return f"{step_id}  [{', '.join(bits)}]"

    def walk(node, depth: int, followed: bool) -> None:
        pad = "  " * depth
        if isinstance(node, Node):
            lines.append(pad + label(node.step))
        elif isinstance(node, Group):
            kind = "chord header (group)" if followed else "group"
            lines.append(pad + kind)
            for part in node.parts:
                walk(part, depth + 1, False)
        else:
            lines.append(pad + ("chain (with barrier)" if node.barrier else "chain"))
            for i, part in enumerate(node.parts):
                walk(part, depth + 1, i + 1 < len(node.parts))

    walk(p.root, 0, False)
    lines.append("  " + "finish_run  [marks the run succeeded]")
    return "\n".join(lines + [f"note: {n}" for n in p.notes])
