"""The program and its tests, as the harness runs them: what code runs first, and the test chunks it counts."""

from __future__ import annotations

import ast


def program_source(*, prompt: str, completion: str, style: str) -> str:
    """What runs before the tests: HumanEval's prompt + completion; for MBPP, the prompt only if it is code.

    MBPP prompts are often prose ("Write a function to ..."), and the completion is then the whole function;
    a prompt is code when it parses alone or as a stub header (``def f(x):`` waiting for its body).
    """
    if style == "asserts" and prompt.strip() and not _parses(prompt) and not _parses(prompt + "\n    pass\n"):
        return completion
    return prompt + completion


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
        return True
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False


def split_tests(*, tests: str, style: str, entry_point: str) -> list[tuple[str, int, int]]:
    """The tests as (source, first line, asserts in it) chunks that the harness runs and counts one by one."""
    if style == "humaneval":
        if not entry_point.isidentifier():
            raise ValueError(f"HumanEval-style tests need entry_point, a Python name; got {entry_point!r}")
        return [(tests, 1, 0), (f"check({entry_point})\n", tests.count("\n") + 2, 1)]
    if style != "asserts":
        raise ValueError(f"style must be 'humaneval' or 'asserts'; got {style!r}")
    try:
        body = ast.parse(tests).body
    except (SyntaxError, ValueError):
        return [(tests, 1, 0)]  # the harness reports the syntax error
    lines = tests.splitlines(True)
    chunks: list[list[int]] = []  # [first line, last line, asserts]
    for node in body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        last = node.end_lineno or node.lineno
        asserts = 1 if isinstance(node, ast.Assert) else 0
        if chunks and first <= chunks[-1][1]:  # statements sharing a line ("a = 1; assert a") stay together
            chunks[-1][1] = max(chunks[-1][1], last)
            chunks[-1][2] += asserts
        else:
            chunks.append([first, last, asserts])
    return [("".join(lines[first - 1 : last]), first, asserts) for first, last, asserts in chunks]
