"""The prompt's own worked examples as a check: a signal every volunteer and the policy can see, judged in the
sandbox, that grounds the learned reward.

HumanEval-style prompts (and every ladder prompt) show their function at work in the docstring::

    def add(x: int, y: int) -> int:
        \"\"\"Add two numbers.
        >>> add(2, 3)
        5
        \"\"\"

``example_tests(prompt)`` turns those doctest lines into a ``check(candidate)`` of asserts
(``assert candidate(2, 3) == 5``) for the prompt's last function, keeping only examples whose arguments and
expected value are literals, so the verdict is always the sandbox's *strong* one (training.sandbox.calls: the
expected values never enter the sandbox). ``examples_pass`` runs a completion against them: True, False, or
None for a prompt without usable examples.

The examples are not the truth. They are part of the prompt, so a completion can special-case them; the
prompt's hidden tests (the ones the evaluate stage and the promotion gate read) stay out of the policy's reach.
What the examples are good for is ranking: a completion that gets its own docstring's example wrong is worse
than one that gets it right, whatever a small reward model thinks of its text. ``grounded_scores`` adds
``weight`` (a step larger than the reward model's spread) to the score of each completion that passes them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

_DOCTEST = re.compile(r"^[ \t]*>>>[ \t]?(?P<call>\S.*)\n[ \t]*(?P<want>\S.*)$", re.MULTILINE)
_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(?P<name>[A-Za-z_]\w*)[ \t]*\(", re.MULTILINE)
DEFAULT_WEIGHT = 10.0


@dataclass(frozen=True)
class Example:
    args: str  # the call's argument list as written, e.g. "2, 3"
    want: str  # the expected value as written, e.g. "5"


def entry_point(prompt: str) -> str | None:
    """The function the completion writes: the prompt's last ``def``."""
    names = _DEF.findall(prompt)
    return names[-1] if names else None


def examples(prompt: str) -> list[Example]:
    """The doctest examples of the prompt's last function whose arguments and expected value are literals."""
    name = entry_point(prompt)
    if name is None:
        return []
    found = []
    for match in _DOCTEST.finditer(prompt):
        want = _literal(match["want"].strip())
        call = _literal_call(match["call"].strip(), name)
        if call is not None and want is not None:
            found.append(Example(call, want))
    return found


def _literal_call(source: str, name: str) -> str | None:
    """``name(<literal args>)``'s argument source, or None for anything else (another function, a print, a
    variable, an expression around the call)."""
    try:
        node = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name):
        return None
    values = [*node.args, *(k.value for k in node.keywords)]
    if any(isinstance(v, ast.Starred) for v in node.args) or any(k.arg is None for k in node.keywords):
        return None
    if not all(_is_literal_node(v) for v in values):
        return None
    keywords = [f"{k.arg}={ast.unparse(k.value)}" for k in node.keywords]
    return ", ".join([*(ast.unparse(v) for v in node.args), *keywords])


def _literal(source: str) -> str | None:
    """A literal's normal source (comments and spacing gone), or None when ``source`` is not one."""
    if source.startswith(">>>"):
        return None
    try:
        node = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    return ast.unparse(node) if _is_literal_node(node) else None


def _is_literal_node(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def example_tests(prompt: str) -> tuple[str, str] | None:
    """(``check(candidate)`` source, entry point) for the prompt's examples, or None when it has none that
    the sandbox can judge strongly."""
    from training.sandbox import verdict_strength

    name = entry_point(prompt)
    found = examples(prompt)
    if name is None or not found:
        return None
    tests = "def check(candidate):\n" + "".join(f"    assert candidate({e.args}) == {e.want}\n" for e in found)
    if verdict_strength(tests=tests, style="humaneval", entry_point=name) != "strong":
        return None
    return tests, name


def examples_pass(
    prompts: Sequence[str],
    completions: Sequence[str],
    *,
    timeout: float = 10.0,
    memory_mb: int = 1024,
    workers: int | None = None,
) -> list[bool | None]:
    """Whether each completion (already cut at its stop sequences) passes its prompt's examples in the sandbox;
    None where the prompt has none. Each prompt is parsed once however many completions it has."""
    from training.sandbox import SandboxJob, run_many

    checks = {prompt: example_tests(prompt) for prompt in set(prompts)}
    jobs, where = [], []
    for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        check = checks[prompt]
        if check is None:
            continue
        tests, name = check
        jobs.append(
            SandboxJob(
                prompt=prompt,
                completion=completion,
                tests=tests,
                entry_point=name,
                timeout=timeout,
                memory_mb=memory_mb,
            )
        )
        where.append(i)
    passed: list[bool | None] = [None] * len(completions)
    for i, result in zip(where, run_many(jobs, workers=workers), strict=True):
        passed[i] = result.outcome == "passed"
    return passed


def grounded_scores(scores: Sequence[float], passed: Sequence[bool | None], *, weight: float) -> list[float]:
    """The learned score plus ``weight`` for a completion that passes its prompt's examples."""
    return [score + (weight if ok else 0.0) for score, ok in zip(scores, passed, strict=True)]
