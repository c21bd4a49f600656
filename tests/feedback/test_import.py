"""Importing prompts from JSON Lines: the three schemas, bad lines, re-import, --strict, pairs."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.core.management import CommandError, call_command

from feedback.coders import importing, parsing
from feedback.models import Completion, ModelVersion, Pair, Prompt
from tests.fake_tasks import RecordingTask

pytestmark = pytest.mark.django_db

# Samples written for these tests, laid out field for field as the published datasets are.
HUMANEVAL_LINE = {
    "task_id": "HumanEval/990",
    "prompt": (
        'def double_all(xs: list) -> list:\n    """Return every element of xs doubled.\n'
        '    >>> double_all([1, 2])\n    [2, 4]\n    """\n'
    ),
    "canonical_solution": "    return [x * 2 for x in xs]\n",
    "test": (
        "\n\nMETADATA = {}\n\n\ndef check(candidate):\n"
        "    assert candidate([]) == []\n    assert candidate([1, 2]) == [2, 4]\n"
    ),
    "entry_point": "double_all",
}
MBPP_LINE = {
    "task_id": 991,
    "text": 'Write a function to count the vowels in a "word".',
    "code": "def count_vowels(word):\r\n  return sum(1 for ch in word if ch in 'aeiou')",
    "test_list": [
        "assert count_vowels('banana') == 3",
        "assert count_vowels('rhythm') == 0",
        "assert count_vowels('') == 0",
    ],
    "test_setup_code": "",
    "challenge_test_list": [],
}


def own_line(id_="own/1", *, prompt="def f(x):\n    ", completions=None, **extra):
    line = {
        "id": id_,
        "prompt": prompt,
        "language": "python",
        "tests": "def check(candidate):\n    assert candidate(1) == 2\n",
        "entry_point": "f",
        "completions": completions
        if completions is not None
        else [
            {"model": "m1", "text": "return x + 1\n"},
            {"model": "m2", "text": "return x * 2\n"},
            {"model": "m3", "text": "return 2\n"},
        ],
    }
    line.update(extra)
    return json.dumps(line)


def write(tmp_path, *lines, name="prompts.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return str(path)


def counts():
    return Prompt.objects.count(), Completion.objects.count(), Pair.objects.count()


def test_own_schema_line_is_imported_with_completions_and_pairs(tmp_path, capsys):
    call_command("import_prompts", write(tmp_path, own_line()))
    prompt = Prompt.objects.get()
    assert (prompt.external_id, prompt.source, prompt.language) == ("own/1", "codepref", "python")
    assert prompt.test_style == Prompt.TestStyle.HUMANEVAL
    assert prompt.entry_point == "f"
    assert sorted(prompt.completions.values_list("model_version__name", flat=True)) == ["m1", "m2", "m3"]
    assert set(ModelVersion.objects.values_list("backend", flat=True)) == {ModelVersion.Backend.IMPORTED}
    assert Pair.objects.filter(prompt=prompt).count() == 3
    out = capsys.readouterr().out
    assert "1 prompts added, 0 already present, 3 completions added, 3 pairs formed, 0 bad lines" in out


def test_test_style_follows_what_the_tests_contain():
    asserts = parsing.parse_line(own_line(tests="assert f(1) == 2\n", entry_point=None), number=1)
    untested = parsing.parse_line(own_line(tests=None), number=1)
    check_without_entry_point = parsing.parse_line(own_line(entry_point=""), number=1)
    assert asserts.prompt["test_style"] == Prompt.TestStyle.ASSERTS
    assert untested.prompt["test_style"] == Prompt.TestStyle.NONE
    assert check_without_entry_point.prompt["test_style"] == Prompt.TestStyle.ASSERTS


def test_humaneval_line_keeps_its_canonical_solution_as_reference_and_completion(tmp_path):
    call_command("import_prompts", write(tmp_path, HUMANEVAL_LINE))
    prompt = Prompt.objects.get()
    assert (prompt.source, prompt.external_id, prompt.entry_point) == ("humaneval", "HumanEval/990", "double_all")
    assert prompt.test_style == Prompt.TestStyle.HUMANEVAL
    assert prompt.text == HUMANEVAL_LINE["prompt"]
    assert prompt.tests == HUMANEVAL_LINE["test"]
    assert prompt.reference_solution == HUMANEVAL_LINE["canonical_solution"]
    completion = Completion.objects.get()
    assert (completion.model_version.name, completion.text) == ("canonical", HUMANEVAL_LINE["canonical_solution"])
    assert completion.model_version.backend == ModelVersion.Backend.IMPORTED


def test_mbpp_line_becomes_a_docstring_prompt_with_assert_tests(tmp_path):
    call_command("import_prompts", write(tmp_path, MBPP_LINE))
    prompt = Prompt.objects.get()
    assert (prompt.source, prompt.external_id, prompt.language) == ("mbpp", "MBPP/991", "python")
    assert prompt.test_style == Prompt.TestStyle.ASSERTS
    assert prompt.entry_point == "count_vowels"
    assert prompt.tests == "\n".join(MBPP_LINE["test_list"]) + "\n"
    assert prompt.reference_solution == MBPP_LINE["code"]
    assert prompt.text.startswith('"""Write a function to count the vowels')
    assert "assert count_vowels('banana') == 3" in prompt.text
    assert Completion.objects.get().text == MBPP_LINE["code"]
    # The prompt is a valid Python docstring, quotes in the description included, and the program runs.
    program = prompt.text + prompt.reference_solution + "\n" + prompt.tests
    namespace = {}
    exec(compile(program, "mbpp", "exec"), namespace)  # noqa: S102 - our own sample
    assert namespace["__doc__"].startswith('Write a function to count the vowels in a "word".')


def test_mbpp_setup_code_goes_before_the_asserts():
    line = dict(MBPP_LINE, test_setup_code="import math", challenge_test_list=["assert count_vowels('aa') == 2"])
    parsed = parsing.parse_line(json.dumps(line), number=1)
    assert parsed.prompt["tests"].splitlines() == [
        "import math",
        *MBPP_LINE["test_list"],
        "assert count_vowels('aa') == 2",
    ]


def test_all_three_schemas_import_from_one_file(tmp_path):
    call_command("import_prompts", write(tmp_path, own_line(), HUMANEVAL_LINE, MBPP_LINE))
    assert sorted(Prompt.objects.values_list("source", flat=True)) == ["codepref", "humaneval", "mbpp"]
    assert Completion.objects.count() == 5


def test_importing_the_same_file_twice_adds_nothing(tmp_path, capsys):
    path = write(tmp_path, own_line(), HUMANEVAL_LINE, MBPP_LINE, own_line("own/2", prompt="def g(y):\n    "))
    call_command("import_prompts", path)
    before = counts(), ModelVersion.objects.count()
    capsys.readouterr()
    call_command("import_prompts", path)
    assert (counts(), ModelVersion.objects.count()) == before
    assert (
        "0 prompts added, 4 already present, 0 completions added, 0 pairs formed, 0 bad lines"
        in capsys.readouterr().out
    )


def test_a_prompt_repeated_within_a_file_is_stored_once(tmp_path):
    call_command("import_prompts", write(tmp_path, own_line("a"), own_line("b")))
    assert counts() == (1, 3, 3)


def test_new_completions_for_a_known_prompt_are_added_and_paired(tmp_path):
    call_command("import_prompts", write(tmp_path, own_line(completions=[{"model": "m1", "text": "return x + 1\n"}])))
    assert counts() == (1, 1, 0)
    call_command("import_prompts", write(tmp_path, own_line(), name="more.jsonl"))
    assert counts() == (1, 3, 3)


BAD_LINES = [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({"id": "x", "language": "python", "completions": []}), 'missing field "prompt"'),
    (own_line(prompt="   \n"), '"prompt" is empty'),
    (own_line(prompt=42), '"prompt" must be a string'),
    (own_line(language="klingon"), "unknown language 'klingon'"),
    (own_line(language=None), 'missing field "language"'),
    (own_line(completions="return 1"), '"completions" must be a list'),
    (own_line(completions=[{"model": "m1"}]), "completions[0].text must be a non-empty string"),
    (own_line(completions=[{"text": "return 1"}]), "completions[0].model must be a non-empty string"),
    (own_line(completions=["return 1"]), "completions[0] must be an object"),
    (json.dumps({"id": "x", "prompt": "p", "language": "python"}), 'missing field "completions"'),
    (own_line(prompt="def f():\x00"), "NUL character"),
    (json.dumps({**HUMANEVAL_LINE, "entry_point": None}), 'missing field "entry_point"'),
    (json.dumps({**MBPP_LINE, "task_id": "991"}), '"task_id" must be an integer'),
    (json.dumps({**MBPP_LINE, "test_list": "assert x"}), '"test_list" must be a list of strings'),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES, ids=[reason for _, reason in BAD_LINES])
def test_a_malformed_line_is_named_with_its_reason_and_stores_nothing(tmp_path, capsys, line, reason):
    path = write(tmp_path, own_line("good", prompt="def good(x):\n    "), line)
    with pytest.raises(CommandError, match=r"first on line 2: .*" + re.escape(reason)):
        call_command("import_prompts", path)
    assert list(Prompt.objects.values_list("external_id", flat=True)) == ["good"]
    assert Completion.objects.filter(prompt__external_id="good").count() == Completion.objects.count() == 3
    assert re.search(r"line 2: .*" + re.escape(reason), capsys.readouterr().err)


def test_every_bad_line_is_reported_and_the_good_ones_between_them_are_imported(tmp_path, capsys):
    path = write(tmp_path, "{", own_line("a"), "", "[]", own_line("b", prompt="def b(x):\n    "), "nope")
    with pytest.raises(CommandError, match="3 bad line"):
        call_command("import_prompts", path)
    err = capsys.readouterr().err
    assert (
        "line 1: not valid JSON" in err and "line 4: expected a JSON object" in err and "line 6: not valid JSON" in err
    )
    assert sorted(Prompt.objects.values_list("external_id", flat=True)) == ["a", "b"]


def test_strict_import_with_one_bad_line_stores_nothing(tmp_path):
    path = write(tmp_path, own_line(), HUMANEVAL_LINE, own_line("bad", language="cobol"), MBPP_LINE)
    with pytest.raises(CommandError, match=r"line 3: unknown language 'cobol'.*nothing was imported"):
        call_command("import_prompts", path, "--strict")
    assert counts() == (0, 0, 0)
    assert ModelVersion.objects.count() == 0


def test_strict_import_of_a_clean_file_imports_everything(tmp_path):
    call_command("import_prompts", write(tmp_path, own_line(), HUMANEVAL_LINE, MBPP_LINE), "--strict")
    assert counts() == (3, 5, 3)


def fail_at_line(monkeypatch, number):
    """Make the database refuse any write that includes the given line (after writing it)."""
    from django.db import DataError

    real = importing._Store.lines

    def failing(self, batch):
        tally = real(self, batch)
        if any(line.number == number for line in batch):
            raise DataError("simulated failure after writing")
        return tally

    monkeypatch.setattr(importing._Store, "lines", failing)


def test_a_line_failing_at_the_database_is_rolled_back_alone(tmp_path, monkeypatch):
    fail_at_line(monkeypatch, 2)
    fresh = [{"model": "fresh", "text": "return 0\n"}, {"model": "m1", "text": "return 1\n"}]
    path = write(
        tmp_path,
        own_line("a"),
        own_line("b", prompt="def b(x):\n    ", completions=fresh),
        own_line("c", prompt="def c():\n", completions=fresh),
    )
    with pytest.raises(CommandError, match="first on line 2: could not be stored"):
        call_command("import_prompts", path)
    assert sorted(Prompt.objects.values_list("external_id", flat=True)) == ["a", "c"]
    assert Completion.objects.filter(prompt__external_id="c").count() == 2
    # "fresh" was first created inside the rolled-back batch and line 2's savepoint; line 3 made it again.
    assert ModelVersion.objects.filter(name="fresh").count() == 1
    assert Pair.objects.count() == 4


def test_a_line_failing_at_the_database_under_strict_stores_nothing(tmp_path, monkeypatch):
    fail_at_line(monkeypatch, 3)
    path = write(tmp_path, own_line("a"), HUMANEVAL_LINE, MBPP_LINE)
    with pytest.raises(CommandError, match=r"line 3: could not be stored .*nothing was imported"):
        call_command("import_prompts", path, "--strict")
    assert counts() == (0, 0, 0)


def test_lines_are_written_in_batches(tmp_path, monkeypatch, settings):
    monkeypatch.setattr(importing, "BATCH_LINES", 2)
    lines = [own_line(f"p{i}", prompt=f"def p{i}():\n") for i in range(5)]
    call_command("import_prompts", write(tmp_path, *lines, own_line("p0", prompt="def p0():\n")))
    assert counts() == (5, 15, 15)


def test_pairs_are_capped_per_prompt(tmp_path, settings):
    completions = [{"model": f"m{i}", "text": f"return {i}\n"} for i in range(6)]  # 15 possible pairs
    call_command("import_prompts", write(tmp_path, own_line(completions=completions)))
    assert Pair.objects.count() == settings.CODEPREF["MAX_PAIRS_PER_PROMPT"] == 6
    Pair.objects.all().delete()
    call_command(
        "import_prompts", write(tmp_path, own_line(completions=completions), name="b.jsonl"), "--max-pairs", "4"
    )
    assert Pair.objects.count() == 4
    pair = Pair.objects.first()
    assert pair.completion_a_id < pair.completion_b_id
    assert pair.language == "python"


def test_completions_identical_after_whitespace_are_kept_but_not_paired(tmp_path):
    completions = [
        {"model": "m1", "text": "return x + 1\n"},
        {"model": "m2", "text": "return  x +  1"},
        {"model": "m3", "text": "return x - 1\n"},
    ]
    call_command("import_prompts", write(tmp_path, own_line(completions=completions)))
    assert Completion.objects.count() == 3
    pairs = {
        tuple(sorted([p.completion_a.model_version.name, p.completion_b.model_version.name]))
        for p in Pair.objects.all()
    }
    assert pairs == {("m1", "m3"), ("m2", "m3")}


def test_the_same_text_twice_under_one_model_is_one_completion(tmp_path):
    completions = [{"model": "m1", "text": "return 1\n"}, {"model": "m1", "text": "return 1\n"}]
    call_command("import_prompts", write(tmp_path, own_line(completions=completions)))
    assert counts() == (1, 1, 0)


def test_only_newlines_end_a_line(tmp_path):
    path = tmp_path / "raw.jsonl"
    separator_inside = own_line("u2028", prompt="def f():\n    # a\u2028b\n")
    text = json.dumps(json.loads(separator_inside), ensure_ascii=False)
    assert "\u2028" in text
    path.write_bytes(text.encode() + b"\r\n" + own_line("crlf", prompt="def g():\n").encode() + b"\r\n")
    call_command("import_prompts", str(path))
    assert sorted(Prompt.objects.values_list("external_id", flat=True)) == ["crlf", "u2028"]
    assert "\u2028" in Prompt.objects.get(external_id="u2028").text


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_prompts", str(tmp_path / "absent.jsonl"))


def test_a_file_that_is_not_utf8_is_a_clear_error_and_stores_nothing(tmp_path):
    path = tmp_path / "latin1.jsonl"
    latin1 = own_line("b").replace('"def f', '"d\xe9f').encode("latin-1")  # json.dumps would escape it
    path.write_bytes(own_line().encode() + b"\n" + latin1 + b"\n")
    with pytest.raises(CommandError, match=r"not UTF-8 .*line 2"):
        call_command("import_prompts", str(path))
    assert counts() == (0, 0, 0)


def test_new_completion_ids_are_sent_to_the_test_task_after_commit(
    tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    recorder = RecordingTask().install(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_prompts", write(tmp_path, own_line(), HUMANEVAL_LINE))
    assert recorder.names == ["feedback.tasks.run_tests"]
    assert len(recorder.sent) == 1
    ids = recorder.sent[0]["completion_ids"]
    assert sorted(ids) == sorted(Completion.objects.values_list("pk", flat=True))
    assert len(ids) == 4
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        call_command("import_prompts", write(tmp_path, own_line(), name="again.jsonl"))
    assert callbacks == []  # nothing new, nothing to test


def test_a_broker_failure_after_import_is_logged_and_the_import_kept(
    tmp_path, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    RecordingTask(fail=True).install(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_prompts", write(tmp_path, own_line(), HUMANEVAL_LINE))
    assert Completion.objects.count() == 4
    assert "could not queue their tests" in caplog.text


def test_a_humaneval_sized_file_imports_quickly(tmp_path):
    lines = [
        {
            **HUMANEVAL_LINE,
            "task_id": f"HumanEval/{i}",
            "prompt": HUMANEVAL_LINE["prompt"].replace("double_all", f"f{i}"),
        }
        for i in range(164)
    ]
    path = write(tmp_path, *lines)
    started = time.perf_counter()
    call_command("import_prompts", path)
    elapsed = time.perf_counter() - started
    assert Prompt.objects.count() == 164
    assert elapsed < 5, f"164 lines took {elapsed:.2f}s"
