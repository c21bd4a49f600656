"""The trusted supervisor's judgement on the strong path: the outputs the sandbox returned, against the checks.

The sandboxed process writes ``codepref-sandbox-outputs <nonce> <calls>`` then one JSON line: per call either
``["ok", value]`` (``values.py``), ``["raise", "TypeError: ..."]`` (an Exception: the assert would have
raised, so the check fails) or ``["exit", "SystemExit: 0"]`` (anything else: an error, as on the weak path),
or ``["unencodable", "Foo"]`` (a type the encoder does not write). Nothing the program does in its process
can make a check true without returning the value the test expects: the expected values never enter the
sandbox, and every check is evaluated here.
"""

from __future__ import annotations

import ast
import builtins
import hmac
import json
import math
import operator

from training.sandbox.calls import SAFE_FUNCTIONS, CallPlan, output_name
from training.sandbox.values import BadValue, decode

OUTPUTS_TAG = b"codepref-sandbox-outputs"
_FUNCTIONS = {name: getattr(builtins, name) for name in SAFE_FUNCTIONS}
_FUNCTIONS["math.isclose"] = math.isclose
_NUMBERS = (int, float, complex)
_ORDERING = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
_ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


class Unjudgeable(ValueError):
    """A check the supervisor will not evaluate on these values (an operation outside the numbers)."""


def judge(report: bytes, *, nonce: bytes, plan: CallPlan) -> tuple[str | None, str]:
    """(outcome, note) from the outputs; (None, why) when the report is not a whole outputs report."""
    if not report:
        return None, "no report"
    head, sep, body = report.partition(b"\n")
    parts = head.split(b" ")
    if not sep or len(parts) != 3 or parts[0] != OUTPUTS_TAG or not hmac.compare_digest(parts[1], nonce):
        return None, "no outputs report with this run's nonce"
    if parts[2] != str(len(plan.calls)).encode():
        return None, "an outputs report for another number of calls"
    line, sep, rest = body.partition(b"\n")
    if not sep or rest:
        return None, "bytes around the outputs report"
    try:
        results = json.loads(line)
    except (ValueError, RecursionError):
        return None, "an outputs report that is not JSON"
    if not isinstance(results, list) or len(results) != len(plan.calls):
        return None, "an outputs report without one result per call"
    outputs: dict[str, object] = {}
    for index, result in enumerate(results):
        if not (isinstance(result, list) and len(result) == 2):
            return None, f"a malformed result for call {index}"
        kind, value = result
        call = _describe(plan, index)
        if kind == "exit":
            return "error", f"{call} ended the run: {str(value)[:200]}"
        if kind == "ok":
            try:
                outputs[output_name(index)] = decode(value)
            except (BadValue, RecursionError) as exc:
                return None, f"a malformed output of call {index}: {exc}"
        elif kind not in ("raise", "unencodable"):
            return None, f"an unknown result kind for call {index}"
    for index, result in enumerate(results):
        if result[0] == "raise":
            return "failed", f"{_describe(plan, index)} raised {str(result[1])[:300]}"
        if result[0] == "unencodable":
            return "failed", f"{_describe(plan, index)} returned a {str(result[1])[:80]}, which no check accepts"
    for check in plan.checks:
        try:
            held = bool(evaluate(check.expression, outputs))
        except (Unjudgeable, ArithmeticError, LookupError, TypeError, ValueError, RecursionError, MemoryError) as exc:
            return "failed", f"AssertionError (judged outside the sandbox): {check.source}: {type(exc).__name__}"
        if not held:
            got = ", ".join(_short(outputs[n.id]) for n in _output_names(check.expression))
            return "failed", f"AssertionError (judged outside the sandbox): {check.source}; the call returned {got}"
    return "passed", ""


def _describe(plan: CallPlan, index: int) -> str:
    call = plan.calls[index]
    args = [_short(a) for a in call.args] + [f"{k}={_short(v)}" for k, v in call.kwargs.items()]
    return _short_text(f"{call.function}({', '.join(args)})")


def _short(value: object) -> str:
    try:
        return _short_text(repr(value))
    except ValueError:  # an int beyond the digits repr() writes
        return f"a {type(value).__name__} too long to show"


def _short_text(text: str) -> str:
    return text if len(text) <= 200 else text[:200] + "..."


def _output_names(node: ast.AST) -> list[ast.Name]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Name) and n.id.startswith(output_name(0)[:-1])]


def evaluate(node: ast.expr, outputs: dict[str, object]) -> object:
    """The value of a rewritten check (``calls.py`` accepts nothing this does not handle)."""
    if isinstance(node, ast.Name):
        return outputs[node.id]
    if isinstance(node, ast.Call):
        args = [evaluate(a, outputs) for a in node.args]
        kwargs = {k.arg: evaluate(k.value, outputs) for k in node.keywords}
        return _FUNCTIONS[node.func.id](*args, **kwargs)
    if isinstance(node, ast.Compare):
        left = evaluate(node.left, outputs)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = evaluate(comparator, outputs)
            if not _compare(op, left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        value = None
        for item in node.values:
            value = evaluate(item, outputs)
            if isinstance(node.op, ast.And) != bool(value):
                return value
        return value
    if isinstance(node, ast.UnaryOp):
        operand = evaluate(node.operand, outputs)
        if isinstance(node.op, ast.Not):
            return not operand
        _numbers(operand)
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BinOp):
        left, right = _numbers(evaluate(node.left, outputs)), _numbers(evaluate(node.right, outputs))
        return _ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.Subscript):
        return evaluate(node.value, outputs)[node.slice.value]
    return ast.literal_eval(node)


def _numbers(value: object) -> object:
    if not isinstance(value, _NUMBERS):  # bools are ints; "ab" * 10**9 is not evaluated here
        raise Unjudgeable(f"arithmetic on a {type(value).__name__}")
    return value


def _compare(op: ast.cmpop, left: object, right: object) -> bool:
    kind = type(op)
    if kind is ast.Eq:
        return left == right
    if kind is ast.NotEq:
        return left != right
    if kind is ast.Is:
        return left is right if _singleton(right) or _singleton(left) else _raise("is between values")
    if kind is ast.IsNot:
        return left is not right if _singleton(right) or _singleton(left) else _raise("is not between values")
    if kind is ast.In:
        return left in right
    if kind is ast.NotIn:
        return left not in right
    if kind in _ORDERING:
        return _ORDERING[kind](left, right)
    return _raise(f"the operator {kind.__name__}")


def _singleton(value: object) -> bool:
    return value is None or value is True or value is False


def _raise(what: str) -> bool:
    raise Unjudgeable(what)
