"""`when:` conditions: a tiny, safe expression language over run data (no eval of Python).

Allowed: names and dotted paths (`document.kind`, `payload.approval`, `parse.images`), string/number/
boolean/null literals (`true`, `false`, `null` as well as Python's spellings), lists, comparisons
(== != < <= > >= in, not in), `and`, `or`, `not`, and `len(x)`. A missing path reads as null.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

_CONSTANTS = {"true": True, "false": False, "null": None, "none": None}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: b is not None and a in b,
    ast.NotIn: lambda a, b: b is None or a not in b,
}


class ConditionError(ValueError):
    pass


def parse_condition(text: str) -> ast.Expression:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"invalid condition {text!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(
            node,
            (
                ast.Expression,
                ast.BoolOp,
                ast.And,
                ast.Or,
                ast.UnaryOp,
                ast.Not,
                ast.Compare,
                ast.Name,
                ast.Load,
                ast.Attribute,
                ast.Constant,
                ast.List,
                ast.Tuple,
                ast.Call,
                *_COMPARE,
            ),
        ):
            raise ConditionError(f"invalid condition {text!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id == "len" and len(node.args) == 1 and not node.keywords
        ):
            raise ConditionError(f"invalid condition {text!r}: only len(x) may be called")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ConditionError(f"invalid condition {text!r}: private names are not allowed")
    return tree


def names_used(text: str) -> set[str]:
    """The root names a condition reads (to check them against the workflow's steps)."""
    tree = parse_condition(text)
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id.lower() not in _CONSTANTS and node.id != "len":
            roots.add(node.id)
    return roots


def evaluate(text: str, data: dict[str, Any]) -> bool:
    return bool(_eval(parse_condition(text).body, data))


def _eval(node: ast.AST, data: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id.lower() in _CONSTANTS and node.id not in data:
            return _CONSTANTS[node.id.lower()]
        return data.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _eval(node.value, data)
        return base.get(node.attr) if isinstance(base, dict) else None
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, data) for e in node.elts]
    if isinstance(node, ast.UnaryOp):  # only `not`
        return not _eval(node.operand, data)
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, data) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Call):  # only len()
        value = _eval(node.args[0], data)
        return len(value) if hasattr(value, "__len__") else 0
    if isinstance(node, ast.Compare):
        left = _eval(node.left, data)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator, data)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:  # e.g. None < 3: a condition on missing data is false
                return False
            left = right
        return True
    raise ConditionError(f"unsupported expression {type(node).__name__}")  # pragma: no cover
