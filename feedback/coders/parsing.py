"""Reading prompts and completions from JSON Lines: each line parsed and checked, nothing stored.

Three line layouts are understood, told apart by their fields:

- the project's own: ``{"id", "prompt", "suffix"?, "language", "tests"?, "entry_point"?,
  "completions": [{"model", "text"}]}`` (``suffix``: fill-in-the-middle, the code after the gap; a completion
  goes between prompt and suffix), optionally with maintainer-authored gold pairs:
  ``"gold": [{"pair": [i, j], "answer", "explanation"?}]``, where i and j index ``completions`` and ``answer`` is
  ``first`` / ``second`` (which of the two is better), ``tie`` or ``both_bad``
- HumanEval as published: ``task_id``, ``prompt``, ``entry_point``, ``canonical_solution``, ``test``
- MBPP as published: ``task_id``, ``text``, ``code``, ``test_list`` (``test_setup_code``,
  ``challenge_test_list`` optional; the "sanitized" release's ``prompt`` / ``test_imports`` also work)

For HumanEval and MBPP the canonical solution becomes the prompt's reference solution and also a
completion by the model version named "canonical", so that every prompt has a known-good side.

Parsing never touches the database: every line is checked before anything is stored (``importing``),
which is what lets ``strict`` refuse a whole file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from django.conf import settings

from feedback.models import Prompt

CANONICAL_MODEL = "canonical"
MAX_NAME_LENGTH = 200  # ModelVersion.name, Prompt.external_id, Prompt.entry_point

_CHECK_FUNCTION = re.compile(r"^\s*def\s+check\s*\(", re.MULTILINE)
_ASSERT_LINE = re.compile(r"^\s*assert\b", re.MULTILINE)
_DEF_NAME = re.compile(r"^def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


class LineError(ValueError):
    """A line that cannot be imported, and why."""


class ImportFailed(Exception):
    """The file as a whole cannot be imported (not UTF-8, or a bad line under ``strict``); nothing was stored."""


@dataclass
class ParsedLine:
    number: int
    prompt: dict  # Prompt field values
    completions: list[tuple[str, str]]  # (model name, text)
    gold: list[tuple[int, int, str, str]] = field(default_factory=list)  # (i, j, answer, explanation)


# --- reading ----------------------------------------------------------------------------------


def decode_jsonl(data: bytes) -> list[str]:
    """The file's lines as text; a file that is not UTF-8 is refused as a whole, naming the first bad line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportFailed(f"the file is not UTF-8 text (first undecodable byte on line {line})") from None
    # Only "\n" ends a JSON Lines record: str.splitlines() would also split at U+2028 and friends,
    # which json.dumps(ensure_ascii=False) leaves raw inside strings.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# --- parsing ----------------------------------------------------------------------------------


def detect_test_style(tests: str, entry_point: str) -> str:
    """humaneval when the tests define check() and an entry point names the function; asserts when they assert."""
    if tests and entry_point and _CHECK_FUNCTION.search(tests):
        return Prompt.TestStyle.HUMANEVAL
    if tests and _ASSERT_LINE.search(tests):
        return Prompt.TestStyle.ASSERTS
    return Prompt.TestStyle.NONE


def parse_line(raw: str, *, number: int) -> ParsedLine | None:
    """One line of the file, checked; ``None`` for a blank line. Raises ``LineError`` with the reason."""
    if not raw.strip():
        return None
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LineError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise LineError("not valid JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise LineError(f"expected a JSON object, got {_json_type(obj)}")
    if "test_list" in obj or ("task_id" in obj and ("text" in obj or "code" in obj)):
        parsed = _parse_mbpp(obj, number)
    elif "task_id" in obj:
        parsed = _parse_humaneval(obj, number)
    else:
        parsed = _parse_own(obj, number)
    _refuse_nul_characters(parsed)
    return parsed


def _parse_own(obj: dict, number: int) -> ParsedLine:
    external_id = obj.get("id")
    if external_id is None:
        raise LineError('missing field "id"')
    if isinstance(external_id, bool) or not isinstance(external_id, (str, int)):
        raise LineError(f'"id" must be a string or an integer, got {_json_type(external_id)}')
    external_id = _short(str(external_id).strip(), "id")
    text = _text(obj, "prompt")
    suffix = _text(obj, "suffix", required=False)
    language = _language(obj)
    tests = _text(obj, "tests", required=False)
    entry_point = _entry_point(obj, "entry_point", required=False)
    if "completions" not in obj:
        raise LineError('missing field "completions" (use [] for a prompt without completions)')
    completions = _completions(obj["completions"])
    prompt = {
        "text": text,
        "suffix": suffix,
        "language": language,
        "tests": tests,
        "test_style": detect_test_style(tests, entry_point),
        "entry_point": entry_point,
        "reference_solution": "",
        "source": "codepref",
        "external_id": external_id,
    }
    gold = _gold(obj["gold"], len(completions)) if "gold" in obj else []
    return ParsedLine(number, prompt, completions, gold)


GOLD_ANSWERS = ("first", "second", "tie", "both_bad")
MAX_GOLD_EXPLANATION = 2000


def _gold(value, completions: int) -> list[tuple[int, int, str, str]]:
    """Maintainer-authored gold pairs of one line: indexes into its completions, the answer, the explanation."""
    if not isinstance(value, list):
        raise LineError(
            f'"gold" must be a list of {{"pair", "answer", "explanation"}} objects, got {_json_type(value)}'
        )
    gold = []
    for index, item in enumerate(value):
        where = f"gold[{index}]"
        if not isinstance(item, dict):
            raise LineError(f"{where} must be an object, got {_json_type(item)}")
        pair, answer, explanation = item.get("pair"), item.get("answer"), item.get("explanation", "")
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < completions for i in pair)
            or pair[0] == pair[1]
        ):
            raise LineError(f"{where}.pair must be two different indexes into completions (0 to {completions - 1})")
        if answer not in GOLD_ANSWERS:
            raise LineError(f"{where}.answer must be one of {', '.join(GOLD_ANSWERS)}")
        if not isinstance(explanation, str) or len(explanation) > MAX_GOLD_EXPLANATION:
            raise LineError(f"{where}.explanation must be a string of at most {MAX_GOLD_EXPLANATION} characters")
        gold.append((pair[0], pair[1], answer, explanation.strip()))
    return gold


def _parse_humaneval(obj: dict, number: int) -> ParsedLine:
    task_id = obj["task_id"]
    if not isinstance(task_id, str) or not task_id.strip():
        raise LineError(f'"task_id" must be a non-empty string in a HumanEval line, got {_json_type(task_id)}')
    text = _text(obj, "prompt")
    entry_point = _entry_point(obj, "entry_point", required=True)
    solution = _text(obj, "canonical_solution")
    tests = _text(obj, "test")
    prompt = {
        "text": text,
        "language": "python",
        "tests": tests,
        "test_style": detect_test_style(tests, entry_point),
        "entry_point": entry_point,
        "reference_solution": solution,
        "source": "humaneval",
        "external_id": _short(task_id.strip(), "task_id"),
    }
    return ParsedLine(number, prompt, [(CANONICAL_MODEL, solution)])


def _parse_mbpp(obj: dict, number: int) -> ParsedLine:
    task_id = obj.get("task_id")
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        raise LineError(f'"task_id" must be an integer in an MBPP line, got {_json_type(task_id)}')
    # The original release calls the description "text"; the sanitized one calls it "prompt".
    description = _text(obj, "text" if "text" in obj or "prompt" not in obj else "prompt")
    code = _text(obj, "code")
    test_list = _string_list(obj, "test_list", required=True)
    if not test_list:
        raise LineError('"test_list" is empty')
    challenge = _string_list(obj, "challenge_test_list", required=False)
    setup = obj.get("test_setup_code", "")
    if "test_imports" in obj:
        setup = "\n".join(_string_list(obj, "test_imports", required=False))
    if setup is None:
        setup = ""
    if not isinstance(setup, str):
        raise LineError(f'"test_setup_code" must be a string, got {_json_type(setup)}')
    tests = "\n".join(part for part in [setup.strip(), *test_list, *challenge] if part.strip()) + "\n"
    prompt = {
        "text": _mbpp_prompt(description, test_list[0]),
        "language": "python",
        "tests": tests,
        "test_style": detect_test_style(tests, ""),
        "entry_point": _mbpp_entry_point(code, tests),
        "reference_solution": code,
        "source": "mbpp",
        "external_id": f"MBPP/{task_id}",
    }
    return ParsedLine(number, prompt, [(CANONICAL_MODEL, code)])


def _mbpp_prompt(description: str, example: str) -> str:
    """MBPP gives no signature: a docstring with the task and one test shows the function's name and use."""
    body = f"{description.strip()}\n\nExample:\n    {example.strip()}\n"
    body = body.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return f'"""{body}"""\n'


def _mbpp_entry_point(code: str, tests: str) -> str:
    """The function the tests call: the first one defined in the solution that the tests name."""
    names = _DEF_NAME.findall(code)
    for name in names:
        if re.search(rf"\b{re.escape(name)}\s*\(", tests):
            return name
    return names[-1] if names else ""


def _text(obj: dict, key: str, *, required: bool = True) -> str:
    if key not in obj or obj[key] is None:
        if required:
            raise LineError(f'missing field "{key}"')
        return ""
    value = obj[key]
    if not isinstance(value, str):
        raise LineError(f'"{key}" must be a string, got {_json_type(value)}')
    if required and not value.strip():
        raise LineError(f'"{key}" is empty')
    return value


def _short(value: str, key: str) -> str:
    if len(value) > MAX_NAME_LENGTH:
        raise LineError(f'"{key}" is longer than {MAX_NAME_LENGTH} characters')
    return value


def _entry_point(obj: dict, key: str, *, required: bool) -> str:
    value = _text(obj, key, required=required).strip()
    if value and (len(value) > MAX_NAME_LENGTH or any(ch.isspace() for ch in value)):
        raise LineError(f'"{key}" must be a function name (no spaces, at most {MAX_NAME_LENGTH} characters)')
    return value


def _language(obj: dict) -> str:
    if "language" not in obj or obj["language"] is None:
        raise LineError('missing field "language"')
    value = obj["language"]
    if not isinstance(value, str):
        raise LineError(f'"language" must be a string, got {_json_type(value)}')
    language = value.strip().lower()
    known = settings.CODEPREF["LANGUAGES"]
    if language not in known:
        raise LineError(f"unknown language {value!r} (expected one of: {', '.join(known)})")
    return language


def _string_list(obj: dict, key: str, *, required: bool) -> list[str]:
    value = obj.get(key)
    if value is None:
        if required:
            raise LineError(f'missing field "{key}"')
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise LineError(f'"{key}" must be a list of strings')
    return value


def _completions(value) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise LineError(f'"completions" must be a list of {{"model", "text"}} objects, got {_json_type(value)}')
    completions = []
    for index, item in enumerate(value):
        where = f"completions[{index}]"
        if not isinstance(item, dict):
            raise LineError(f'{where} must be an object with "model" and "text", got {_json_type(item)}')
        model, text = item.get("model"), item.get("text")
        if not isinstance(model, str) or not model.strip():
            raise LineError(f"{where}.model must be a non-empty string")
        if not isinstance(text, str) or not text.strip():
            raise LineError(f"{where}.text must be a non-empty string")
        completions.append((_short(model.strip(), f"{where}.model"), text))
    return completions


def _refuse_nul_characters(parsed: ParsedLine) -> None:
    # PostgreSQL cannot store NUL in text; catching it here keeps --strict's promise of "checked first".
    texts = [value for value in parsed.prompt.values() if isinstance(value, str)]
    texts += [part for pair in parsed.completions for part in pair]
    texts += [explanation for *_pair, explanation in parsed.gold]
    if any("\x00" in text for text in texts):
        raise LineError("contains a NUL character (\\u0000), which cannot be stored")


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
