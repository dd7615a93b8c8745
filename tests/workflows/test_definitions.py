"""Definitions are validated at load (schema + graph) and compile to the expected canvas shape."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.workflows.compiler import Group, Node, plan, render
from app.workflows.conditions import ConditionError, evaluate
from app.workflows.schema import DefinitionError, get_workflow, load_file, parse_definition

pytestmark = pytest.mark.usefixtures("test_definitions_env")


@pytest.fixture(scope="module")
def test_definitions_env():
    # The test step kinds and definitions (the worker gets the same through its environment), for
    # this module only.
    from tests.fixtures.stack import TEST_STEP_MODULE, TEST_WORKFLOWS_DIR, process_environment

    with process_environment({"STEP_MODULES": TEST_STEP_MODULE, "WORKFLOWS_DIR": str(TEST_WORKFLOWS_DIR)}):
        yield


def write(tmp_path: Path, text: str, name: str = "wf.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def shape(node):
    if isinstance(node, Node):
        return node.step
    if isinstance(node, Group):
        return {"group": [shape(p) for p in node.parts]}
    return [shape(p) for p in node.parts]


def test_publish_document_compiles_to_chain_with_chord():
    wf = get_workflow("publish_document")
    assert shape(plan(wf).root) == [
        "store", "to_docx", "parse", {"group": ["transform", "upload_image"]}, "publish",
    ]
    tree = render(plan(wf), wf)
    assert "chord header (group)" in tree and "for_each=parse.images (chord at run time)" in tree


def test_nesting_group_in_chain_in_chord_header():
    wf = get_workflow("t_nested")
    assert shape(plan(wf).root) == ["a", {"group": [["b", {"group": ["c", "d"]}, "e"], "f"]}, "g"]
    assert plan(wf).notes == []


def test_non_series_parallel_graph_gets_a_barrier_and_says_so(tmp_path):
    # N shape: c needs a, d needs a and b. No exact chain/group form exists.
    wf = load_file(write(tmp_path, """
        name: n_shape
        version: 1
        default_queue: io
        steps:
          - {id: a, task: t_work, needs: []}
          - {id: b, task: t_work, needs: []}
          - {id: c, task: t_work, needs: [a]}
          - {id: d, task: t_work, needs: [a, b]}
    """))
    p = plan(wf)
    assert shape(p.root) == [{"group": ["a", "b"]}, {"group": ["c", "d"]}]
    assert p.notes and "barrier" in p.notes[0]


def test_cycle_is_reported_as_a_cycle(tmp_path):
    path = write(tmp_path, """
        name: loop
        version: 1
        steps:
          - {id: a, task: t_work, needs: [c]}
          - {id: b, task: t_work, needs: [a]}
          - {id: c, task: t_work, needs: [b]}
    """, "loop.yaml")
    with pytest.raises(DefinitionError) as err:
        load_file(path)
    assert "loop.yaml" in err.value.message
    assert "cycle" in err.value.message
    assert "a -> b -> c -> a" in err.value.message


def test_unknown_task_and_unknown_need_name_the_step(tmp_path):
    with pytest.raises(DefinitionError) as err:
        load_file(write(tmp_path, """
            name: bad
            version: 1
            steps:
              - {id: first, task: t_work}
              - {id: second, task: no_such_kind, needs: [frist]}
        """))
    message = err.value.message
    assert "step 'second': unknown task 'no_such_kind'" in message
    assert "step 'second': needs unknown step 'frist'" in message


def test_for_each_over_something_that_is_not_a_list(tmp_path):
    with pytest.raises(DefinitionError) as err:
        load_file(write(tmp_path, """
            name: bad_fanout
            version: 1
            steps:
              - {id: produce, task: t_work}
              - {id: each, task: t_item, for_each: produce.n}
        """))
    assert "step 'each': for_each over 'produce.n', which is not a list" in err.value.message


def test_for_each_must_read_an_earlier_step(tmp_path):
    with pytest.raises(DefinitionError) as err:
        load_file(write(tmp_path, """
            name: bad_fanout2
            version: 1
            steps:
              - {id: each, task: t_item, for_each: produce.items, needs: []}
              - {id: produce, task: t_list, needs: []}
        """))
    assert "does not (directly or not) need" in err.value.message


def test_schema_errors_name_the_step_and_field(tmp_path):
    with pytest.raises(DefinitionError) as err:
        load_file(write(tmp_path, """
            name: bad_retry
            version: 1
            steps:
              - {id: only, task: t_work, retry: {attempts: 0, on: [no_such_error]}}
        """))
    assert "step 'only' field 'retry.attempts'" in err.value.message
    assert "unknown error kind" in err.value.message


def test_unquoted_yaml_on_key_means_on(tmp_path):
    wf = load_file(write(tmp_path, """
        name: yaml_on
        version: 1
        steps:
          - id: only
            task: t_work
            retry: {attempts: 3, on: [rate_limited]}
    """))
    assert wf.retry_of(wf.steps[0]).on == ["rate_limited"]


def test_condition_errors_are_refused_at_load(tmp_path):
    with pytest.raises(DefinitionError) as err:
        load_file(write(tmp_path, """
            name: bad_when
            version: 1
            steps:
              - {id: only, task: t_work, when: "__import__('os').system('id')"}
        """))
    assert "step 'only': invalid condition" in err.value.message


@pytest.mark.parametrize(
    "expr, data, expected",
    [
        ('document.kind == "doc"', {"document": {"kind": "doc"}}, True),
        ('document.kind == "doc"', {"document": {"kind": "docx"}}, False),
        ("not payload.skip", {"payload": {"skip": True}}, False),
        ("payload.missing == null", {"payload": {}}, True),
        ("len(parse.images) > 0 and payload.status in ['draft', 'pending']",
         {"parse": {"images": ["a"]}, "payload": {"status": "draft"}}, True),
        ("payload.n > 3", {"payload": {}}, False),  # missing data compares false, never raises
    ],
)
def test_conditions(expr, data, expected):
    assert evaluate(expr, data) is expected


@pytest.mark.parametrize("expr", ["open('/etc/passwd')", "payload.__class__", "[x for x in y]", "a if b else c", "lambda: 1"])
def test_conditions_refuse_anything_else(expr):
    with pytest.raises(ConditionError):
        evaluate(expr, {})


def test_retry_waits_grow_and_honour_retry_after():
    wf = parse_definition({
        "name": "w", "version": 1,
        "steps": [{"id": "s", "task": "t_work",
                   "retry": {"attempts": 5, "backoff": "exponential", "initial_wait": 1, "max_wait": 3, "jitter": 0}}],
    })
    policy = wf.retry_of(wf.steps[0])
    assert [policy.wait_before(n) for n in (2, 3, 4, 5)] == [1, 2, 3, 3]
    assert policy.wait_before(2, retry_after=7.5) == 7.5


def test_cli_validate_and_show(tmp_path):
    from app.cli import app

    runner = CliRunner()
    good = runner.invoke(app, ["workflows", "validate"])
    assert good.exit_code == 0, good.output
    assert "ok  publish_document v1" in good.output
    loop = write(tmp_path, """
        name: loop
        version: 1
        steps:
          - {id: a, task: t_work, needs: [b]}
          - {id: b, task: t_work, needs: [a]}
    """, "loop.yaml")
    bad = runner.invoke(app, ["workflows", "validate", str(loop)])
    assert bad.exit_code == 1
    assert "cycle" in bad.output
    assert "a -> b -> a" in bad.output or "b -> a -> b" in bad.output
    shown = runner.invoke(app, ["workflows", "show", "publish_document"])
    assert shown.exit_code == 0
    assert "chord header (group)" in shown.output
