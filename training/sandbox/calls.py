"""Tests as calls and checks, so that the verdict is reached outside the sandbox (the *strong* path).

A test that can be expressed as calls of the program's function with literal arguments, each followed by a
check of the returned value against literals, is split here (on the trusted side) into:

- the calls, sent to the sandbox: ``(function name, args, kwargs)`` with plain values only; the sandboxed
  process computes the return values and writes them back as tagged JSON (``values.py``), nothing else;
- the checks, kept here: each assert's expression, in which every call of the function is replaced by its
  output, evaluated by a small interpreter (``judge.py``) on the decoded values.

What is accepted, as EvalPlus parses HumanEval and MBPP: HumanEval's ``def check(candidate):`` whose body is
asserts (plus imports, ``pass``, a docstring), with module-level imports and literal assignments
(``METADATA = {...}``); MBPP's module of asserts and imports. Each assert's expression may use the function
called with literal arguments, literals, comparisons (``==``, ``!=``, ``<``, ``is``, ``in`` ...), ``not``,
``and``/``or``, ``+``/``-`` on numbers, ``math.isclose`` and a few pure builtins (``abs``, ``round``,
``set``, ``sorted``, ``len`` ...). Anything else (loops, helpers, variables, expected values computed by
code) makes the whole test *weak*: it runs on the in-process path, whose verdict the program can forge.
"""

from __future__ import annotations

import ast
import builtins
import operator
from dataclasses import dataclass

# Pure functions the supervisor may apply to decoded outputs (plain data), by the name the test uses.
SAFE_FUNCTIONS = frozenset(
    {"abs", "round", "len", "set", "frozenset", "sorted", "tuple", "list", "dict", "bool", "int", "float", "str"}
    | {"sum", "min", "max", "any", "all"}
)
_MATH_FUNCTIONS = frozenset({"isclose"})
_BIN_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)
_FOLD_OPS = (*_BIN_OPS, ast.Pow)
MAX_FOLDED_ITEMS = 100_000  # "[0] * n" and "'ab' * n" folded here, no bigger than this
_OUT = "__codepref_output__"  # the name of a call's output inside a rewritten check


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple
    kwargs: dict


@dataclass(frozen=True)
class Check:
    expression: ast.expr  # the assert's test, each call of the function replaced by Name(_OUT + index)
    source: str  # the assert as written, for the note on a failure


@dataclass(frozen=True)
class CallPlan:
    setup: str  # the tests' imports, run in the program's scope before the calls (as the tests would)
    calls: list[Call]
    checks: list[Check]


class NotExpressible(ValueError):
    """The test needs code run beside the program; it stays on the weak path."""


def call_plan(*, tests: str, style: str, entry_point: str) -> CallPlan | None:
    """The test as calls and checks, or None when it cannot be expressed so (then its verdict is weak)."""
    try:
        module = ast.parse(tests)
        if style == "humaneval":
            return _humaneval(module, tests, entry_point)
        if style == "asserts":
            return _asserts(module, tests)
    except (NotExpressible, SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    return None


def verdict_strength(*, tests: str, style: str, entry_point: str = "") -> str:
    """ "strong" when these tests will be judged outside the sandbox, "weak" when they take the in-process path."""
    return "strong" if call_plan(tests=tests, style=style, entry_point=entry_point) else "weak"


def _humaneval(module: ast.Module, tests: str, entry_point: str) -> CallPlan:
    if not entry_point.isidentifier():
        raise NotExpressible("no entry point")
    setup: list[ast.stmt] = []
    check = None
    for node in module.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            setup.append(node)
        elif isinstance(node, ast.FunctionDef) and node.name == "check" and check is None:
            check = node
        elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            ast.literal_eval(node.value)  # METADATA and the like: never seen by the calls
        elif not _is_docstring(node):
            raise NotExpressible(f"a module-level {type(node).__name__}")
    args = check.args if check is not None else None
    if args is None or check.decorator_list or len(args.args) != 1 or args.vararg or args.kwonlyargs:
        raise NotExpressible("no plain check(candidate)")
    if args.kwarg or args.posonlyargs or args.defaults:
        raise NotExpressible("no plain check(candidate)")
    builder = _PlanBuilder(tests, candidate=args.args[0].arg, function=entry_point)
    for node in check.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            setup.append(node)
        elif not (isinstance(node, ast.Pass) or _is_docstring(node)):
            builder.add(node)
    return builder.plan(setup)


def _asserts(module: ast.Module, tests: str) -> CallPlan:
    builder = _PlanBuilder(tests, candidate=None, function=None)
    setup: list[ast.stmt] = []
    for node in module.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            setup.append(node)
        else:
            builder.add(node)
    return builder.plan(setup)


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


class _PlanBuilder:
    """Turns assert statements into calls and checks. ``candidate``: the name standing for the function
    (HumanEval's parameter, called as ``function``); None for MBPP, where any other called name is the
    program's function, called by that name."""

    def __init__(self, tests: str, *, candidate: str | None, function: str | None):
        self.tests = tests
        self.candidate = candidate
        self.function = function
        self.calls: list[Call] = []
        self.checks: list[Check] = []

    def add(self, node: ast.stmt) -> None:
        if not isinstance(node, ast.Assert):
            raise NotExpressible(f"a {type(node).__name__} among the asserts")
        source = ast.get_source_segment(self.tests, node) or ast.unparse(node)
        first = len(self.calls)
        expression = self._rewrite(node.test)
        if len(self.calls) == first:
            # No call of the function: a constant assert ("assert True, 'debugging aid'") decides nothing,
            # anything else needs code.
            if constant(node.test):
                return
            raise NotExpressible("an assert that is false without calling the function")
        ast.fix_missing_locations(expression)
        self.checks.append(Check(expression, source))

    def plan(self, setup: list[ast.stmt]) -> CallPlan:
        if not self.checks:
            raise NotExpressible("no assert calls the function")
        setup_source = "".join(ast.get_source_segment(self.tests, node) + "\n" for node in setup)
        return CallPlan(setup=setup_source, calls=self.calls, checks=self.checks)

    def _rewrite(self, node: ast.expr) -> ast.expr:
        """A copy of the expression with each call of the function replaced by its output's name; raises
        NotExpressible on anything the supervisor will not evaluate."""
        try:
            return ast.Constant(constant(node))  # a literal, or arithmetic on literals ("2 ** 20", "[2] * 10")
        except NotExpressible:
            pass
        if isinstance(node, ast.Call):
            return self._rewrite_call(node)
        if isinstance(node, ast.Compare):
            return ast.Compare(self._rewrite(node.left), node.ops, [self._rewrite(c) for c in node.comparators])
        if isinstance(node, ast.BoolOp):
            return ast.BoolOp(node.op, [self._rewrite(v) for v in node.values])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub | ast.UAdd):
            return ast.UnaryOp(node.op, self._rewrite(node.operand))
        if isinstance(node, ast.BinOp) and isinstance(node.op, _BIN_OPS):
            first = len(self.calls)
            rewritten = ast.BinOp(self._rewrite(node.left), node.op, self._rewrite(node.right))
            if len(self.calls) == first:  # literals that would not fold: too big, or not numbers
                raise NotExpressible("arithmetic on literals that does not fold")
            return rewritten
        if isinstance(node, ast.Subscript):  # an element or a slice of an output, at literal positions
            index = node.slice
            if isinstance(index, ast.Slice):
                parts = (index.lower, index.upper, index.step)
                index = ast.Constant(slice(*(constant(p) if p is not None else None for p in parts)))
            else:
                index = ast.Constant(constant(index))
            return ast.Subscript(self._rewrite(node.value), index, ast.Load())
        raise NotExpressible(f"{type(node).__name__} in an assert")

    def _rewrite_call(self, node: ast.Call) -> ast.expr:
        func = node.func
        if isinstance(func, ast.Name) and self._is_function(func.id):
            if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
                raise NotExpressible("a call with * or **")
            args = tuple(constant(a) for a in node.args)
            kwargs = {k.arg: constant(k.value) for k in node.keywords}
            self.calls.append(Call(self.function or func.id, args, kwargs))
            return ast.Name(f"{_OUT}{len(self.calls) - 1}", ast.Load())
        if isinstance(func, ast.Name) and func.id in SAFE_FUNCTIONS:
            name = func.id
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "math"
            and func.attr in _MATH_FUNCTIONS
        ):
            name = f"math.{func.attr}"
        else:
            raise NotExpressible(f"a call of {ast.unparse(func)}")
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise NotExpressible("a call with * or **")
        keywords = [ast.keyword(k.arg, self._rewrite(k.value)) for k in node.keywords]
        return ast.Call(ast.Name(name, ast.Load()), [self._rewrite(a) for a in node.args], keywords)

    def _is_function(self, name: str) -> bool:
        """Whether a called name is the program's function. In MBPP any name but the safe functions, ``math``
        and the other builtins: a builtin would be computed in the sandbox, where the program can replace it."""
        if self.candidate is not None:
            return name == self.candidate
        return name not in SAFE_FUNCTIONS and name != "math" and not hasattr(builtins, name)


def constant(node: ast.expr) -> object:
    """The value of a literal, or of arithmetic on literals (folded here, bounded); NotExpressible otherwise."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = constant(node.operand)
        if isinstance(value, int | float | complex):
            return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp) and isinstance(node.op, _FOLD_OPS):
        return _fold(node.op, constant(node.left), constant(node.right))
    raise NotExpressible(f"{type(node).__name__} is not a literal")


def _fold(op: ast.operator, left: object, right: object) -> object:
    numbers = isinstance(left, int | float) and isinstance(right, int | float)
    sequence = isinstance(left, list | tuple | str) and isinstance(right, int) and not isinstance(right, bool)
    try:
        if numbers and isinstance(op, ast.Pow):
            if abs(right) > 1024 or (isinstance(left, int) and abs(left).bit_length() > 64):
                raise NotExpressible("a power too large to fold")
            return left**right
        if numbers:
            return _ARITHMETIC[type(op)](left, right)
        if sequence and isinstance(op, ast.Mult) and len(left) * max(right, 0) <= MAX_FOLDED_ITEMS:
            return left * right
        if type(left) is type(right) and isinstance(left, list | tuple | str) and isinstance(op, ast.Add):
            if len(left) + len(right) <= MAX_FOLDED_ITEMS:
                return left + right
    except (ArithmeticError, TypeError, ValueError):
        pass
    raise NotExpressible(f"{type(op).__name__} on these literals")


_ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


def output_name(index: int) -> str:
    return f"{_OUT}{index}"
