"""A task ladder: small, real Python function tasks with docstrings and unit tests, by difficulty level.

    python -m training.ladder --split train --n 200 --seed 0 --out var/ladder-train.jsonl
    python -m training.ladder --split heldout --n 60 --seed 1 --out var/ladder-heldout.jsonl

Each task composes ``level`` primitive steps (string, list, dict and arithmetic transforms) into one
function: the prompt is its signature and docstring (with one worked example), the reference solution is its
body, and the tests are HumanEval's ``check(candidate)`` with asserts whose expected values come from running
the reference (this module's own code, never a model's). Records are in HumanEval's published schema, which
``manage.py import_prompts`` reads (the reference becomes the prompt's known-good completion).

Decontamination is by template, not by text: a template is the sequence of steps, whatever the function is
called and whatever constants it uses. A template is held out by a hash of its key, so a renamed or
re-parameterised copy of a held-out task can never appear in the training split. Everything is deterministic
given the seed.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

HELD_OUT_FRACTION = 0.25
SPLITS = ("train", "heldout")
TESTS_PER_TASK = 5
LEVELS = (1, 2, 3)


@dataclass(frozen=True)
class Step:
    """One primitive transform: a statement rewriting ``x`` (with an optional constant ``k``)."""

    key: str
    source: str  # the type it takes: "str", "list", "int"
    result: str  # the type it gives: "str", "list", "int", "dict", "bool"
    code: str  # e.g. "x = x[::-1]"; may use {k}
    words: str  # e.g. "reverse it"; may use {k}
    k_range: tuple[int, int] | None = None


STEPS: tuple[Step, ...] = (
    # strings
    Step("str.upper", "str", "str", "x = x.upper()", "convert it to upper case"),
    Step("str.lower", "str", "str", "x = x.lower()", "convert it to lower case"),
    Step("str.reverse", "str", "str", "x = x[::-1]", "reverse it"),
    Step("str.strip", "str", "str", "x = x.strip()", "remove leading and trailing whitespace"),
    Step("str.no_vowels", "str", "str", 'x = "".join(c for c in x if c.lower() not in "aeiou")', "remove the vowels"),
    Step("str.double", "str", "str", 'x = "".join(c + c for c in x)', "write every character twice"),
    Step("str.first_k", "str", "str", "x = x[:{k}]", "keep the first {k} characters", (1, 5)),
    Step("str.drop_k", "str", "str", "x = x[{k}:]", "drop the first {k} characters", (1, 4)),
    Step("str.swapcase", "str", "str", "x = x.swapcase()", "swap the case of every letter"),
    Step("str.len", "str", "int", "x = len(x)", "take its length"),
    Step("str.words", "str", "list", "x = [len(w) for w in x.split()]", "list the lengths of its words"),
    Step("str.codes", "str", "list", "x = [ord(c) % 10 for c in x]", "list each character's code modulo 10"),
    Step("str.count", "str", "dict", "x = {{c: x.count(c) for c in sorted(set(x))}}", "count each character"),
    # lists of integers
    Step("list.sort", "list", "list", "x = sorted(x)", "sort it in ascending order"),
    Step("list.reverse", "list", "list", "x = x[::-1]", "reverse it"),
    Step("list.evens", "list", "list", "x = [v for v in x if v % 2 == 0]", "keep only the even numbers"),
    Step("list.odds", "list", "list", "x = [v for v in x if v % 2 != 0]", "keep only the odd numbers"),
    Step("list.add_k", "list", "list", "x = [v + {k} for v in x]", "add {k} to every number", (1, 9)),
    Step("list.times_k", "list", "list", "x = [v * {k} for v in x]", "multiply every number by {k}", (2, 5)),
    Step("list.square", "list", "list", "x = [v * v for v in x]", "square every number"),
    Step("list.unique", "list", "list", "x = list(dict.fromkeys(x))", "drop repeated numbers, keeping first ones"),
    Step("list.positive", "list", "list", "x = [v for v in x if v > 0]", "keep only the positive numbers"),
    Step("list.take_k", "list", "list", "x = x[:{k}]", "keep the first {k} numbers", (1, 4)),
    Step("list.sum", "list", "int", "x = sum(x)", "add the numbers up"),
    Step("list.max", "list", "int", "x = max(x, default=0)", "take the largest number (0 if there is none)"),
    Step("list.len", "list", "int", "x = len(x)", "count the numbers"),
    Step("list.count", "list", "dict", "x = {{v: x.count(v) for v in sorted(set(x))}}", "count each number"),
    # integers
    Step("int.add_k", "int", "int", "x = x + {k}", "add {k}", (1, 20)),
    Step("int.times_k", "int", "int", "x = x * {k}", "multiply by {k}", (2, 7)),
    Step("int.square", "int", "int", "x = x * x", "square it"),
    Step("int.abs", "int", "int", "x = abs(x)", "take its absolute value"),
    Step("int.mod_k", "int", "int", "x = x % {k}", "take the remainder after dividing by {k}", (2, 9)),
    Step("int.digits", "int", "list", "x = [int(d) for d in str(abs(x))]", "list the digits of its absolute value"),
    Step("int.even", "int", "bool", "x = x % 2 == 0", "tell whether it is even"),
)
_BY_SOURCE = {kind: [s for s in STEPS if s.source == kind] for kind in ("str", "list", "int")}
_ANNOTATION = {"str": "str", "list": "list[int]", "int": "int", "dict": "dict", "bool": "bool"}
_NOUN = {"str": "a string", "list": "a list of integers", "int": "an integer"}
_NAME_WORDS = ("transform", "process", "convert", "reshape", "compute", "derive", "map", "apply")


@dataclass(frozen=True)
class Task:
    task_id: str
    template: str  # the steps' keys joined by ">": what decontamination compares
    level: int
    split: str
    entry_point: str
    prompt: str
    canonical_solution: str
    test: str

    def record(self) -> dict:
        """HumanEval's schema (what ``import_prompts`` reads), plus the ladder's own fields."""
        return asdict(self)


def template_split(template: str, *, held_out_fraction: float = HELD_OUT_FRACTION) -> str:
    digest = hashlib.sha256(f"codepref-ladder-v1:{template}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") < held_out_fraction * 2.0**64 else "train"


def templates(level: int) -> list[tuple[Step, ...]]:
    """Every chain of ``level`` steps whose types fit, no step twice in a row, ending in a non-bool value
    except at the last step."""
    chains: list[tuple[Step, ...]] = []
    for start in ("str", "list", "int"):
        frontier: list[tuple[Step, ...]] = [(s,) for s in _BY_SOURCE[start]]
        for _ in range(level - 1):
            frontier = [
                chain + (nxt,)
                for chain in frontier
                if chain[-1].result in _BY_SOURCE
                for nxt in _BY_SOURCE[chain[-1].result]
                if nxt.key != chain[-1].key
            ]
        chains.extend(frontier)
    return chains


def _inputs(kind: str, rng: random.Random, n: int) -> list:
    words = ("alpha", "Beta", "gamma", "Delta", "echo", "fox", "  tea ", "Sky", "iota", "queue", "rhythm")
    makers: dict[str, Callable[[], object]] = {
        "str": lambda: " ".join(rng.sample(words, rng.randint(1, 3))),
        "list": lambda: [rng.randint(-9, 20) for _ in range(rng.randint(0, 7))],
        "int": lambda: rng.randint(-50, 99),
    }
    seen: list = []
    while len(seen) < n:
        value = makers[kind]()
        if value not in seen:
            seen.append(value)
    return seen


def _task(chain: Sequence[Step], *, rng: random.Random, index: int, split: str) -> Task | None:
    ks = [rng.randint(*step.k_range) if step.k_range else None for step in chain]
    lines = [step.code.format(k=k) for step, k in zip(chain, ks, strict=True)]
    phrases = [step.words.format(k=k) for step, k in zip(chain, ks, strict=True)]
    name = f"{rng.choice(_NAME_WORDS)}_{index}"
    source, result = chain[0].source, chain[-1].result
    body = "".join(f"    {line}\n" for line in lines) + "    return x\n"
    reference = _compile(name, source, body)
    cases = [(value, reference(_copy(value))) for value in _inputs(source, rng, TESTS_PER_TASK + 1)]
    if len({repr(out) for _, out in cases}) < 2:
        return None  # a task whose answer does not depend on its input tests nothing
    example_in, example_out = cases[0]
    summary = textwrap.fill(
        f'"""Given {_NOUN[source]}, {", then ".join(phrases)}; return the result.',
        width=96,
        initial_indent="    ",
        subsequent_indent="    ",
    )
    prompt = (
        f"def {name}(x: {_ANNOTATION[source]}) -> {_ANNOTATION[result]}:\n"
        f"{summary}\n"
        f"    >>> {name}({example_in!r})\n"
        f"    {example_out!r}\n"
        f'    """\n'
    )
    test = "def check(candidate):\n" + "".join(
        f"    assert candidate({value!r}) == {out!r}\n" for value, out in cases[1:]
    )
    template = ">".join(step.key for step in chain)
    return Task(f"ladder/{split}/{index}", template, len(chain), split, name, prompt, body, test)


def _compile(name: str, source: str, body: str) -> Callable:
    namespace: dict = {}
    exec(f"def {name}(x):\n{body}", namespace)  # noqa: S102 (this module's own generated code)
    return namespace[name]


def _copy(value):
    return list(value) if isinstance(value, list) else value


def ladder_tasks(
    *,
    n: int,
    seed: int,
    split: str = "train",
    levels: Sequence[int] = LEVELS,
    held_out_fraction: float = HELD_OUT_FRACTION,
) -> list[Task]:
    """``n`` tasks of the split, spread evenly over ``levels``, deterministic given ``seed``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    rng = random.Random(f"{seed}:{split}")
    pools = {
        level: [
            c
            for c in templates(level)
            if template_split(">".join(s.key for s in c), held_out_fraction=held_out_fraction) == split
        ]
        for level in levels
    }
    tasks: list[Task] = []
    for index, level in zip(range(n), itertools.cycle(levels)):
        for _attempt in range(20):
            task = _task(rng.choice(pools[level]), rng=rng, index=index, split=split)
            if task is not None:
                tasks.append(task)
                break
    return tasks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=SPLITS, default="train")
    parser.add_argument("--n", type=int, default=200, help="tasks to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--levels", default="1,2,3", help="comma-separated step counts")
    parser.add_argument("--out", type=Path, required=True, help="JSON Lines file to write")
    args = parser.parse_args(argv)
    levels = [int(v) for v in args.levels.split(",")]
    if args.n < 1 or not levels or min(levels) < 1:
        parser.error("--n and every level must be at least 1")
    tasks = ladder_tasks(n=args.n, seed=args.seed, split=args.split, levels=levels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(task.record()) + "\n" for task in tasks))
    print(f"{len(tasks)} {args.split} tasks ({len({t.template for t in tasks})} templates) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
