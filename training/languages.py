"""Per-language generation defaults: where a completion stops.

Small and large code models alike rarely stop on their own, so generation cuts a completion at the first
stop sequence after its own first statement (``training.generate.truncate_at_stop``). Python's set is
Codex/HumanEval's as bigcode-evaluation-harness extends it; the others follow MultiPL-E's translators, which
the harness uses for its multi-language HumanEval. A model version can override them (its
``stop_sequences``), and a generation request can give its own ``stop``.
"""

from __future__ import annotations

PYTHON_STOP = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#", "\n@", "\nassert ", "\n```")
_C_LIKE_BLOCK = ("\n}",)
_JS = ("\nfunction ", "\n/*", "\n//", "\nconsole.log")
_JVM_METHOD = ("\n    }\n",)

STOP_SEQUENCES: dict[str, tuple[str, ...]] = {
    "python": PYTHON_STOP,
    "javascript": _JS,
    "typescript": _JS,
    "java": _JVM_METHOD,
    "csharp": _JVM_METHOD,
    "cpp": _C_LIKE_BLOCK,
    "c": _C_LIKE_BLOCK,
    "rust": _C_LIKE_BLOCK,
    "go": ("\nfunc", "struct", "\n// "),
    "php": ("\nfunction", "\n?>", "\n//", "\n#"),
    "ruby": ("\nclass", "\ndef", "\n#", "\n\n"),
    "shell": _C_LIKE_BLOCK,
}
# Common spellings of the same language (import files and hub datasets use both).
ALIASES = {
    "py": "python",
    "js": "javascript",
    "ts": "typescript",
    "c++": "cpp",
    "cs": "csharp",
    "c#": "csharp",
    "rs": "rust",
    "rb": "ruby",
    "sh": "shell",
    "bash": "shell",
}
# A language without its own set still stops at a new markdown fence or at the end of a file.
FALLBACK_STOP = ("\n```", "\n<file_sep>")


def normalise(language: str) -> str:
    key = (language or "python").strip().lower()
    return ALIASES.get(key, key)


def stop_sequences(language: str, override: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The stop sequences for a prompt of ``language``: the override when given (a model version's own),
    else the language's defaults, else a fallback that only stops at a fence."""
    if override:
        return list(override)
    return list(STOP_SEQUENCES.get(normalise(language), FALLBACK_STOP))
