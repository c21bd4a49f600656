"""Write feedback/fixtures/demo_prompts.jsonl from the tasks below, and check them.

    python scripts/make_demo_prompts.py          # write the file, then check it
    python scripts/make_demo_prompts.py --check  # only check the file as it is

The tasks were written by hand for codepref (none is taken from HumanEval or MBPP). Each has a
HumanEval-style prompt (signature + docstring), ``check(candidate)`` tests, and completions that
continue the prompt (prompt + completion is the program):

- demo-correct: a clear, correct body (must pass the tests);
- demo-clunky: correct but long-winded or unidiomatic (must pass);
- demo-subtle-bug: an off-by-one, a missed edge case or a wrong rule (must fail);
- demo-broken: a syntax error, a wrong algorithm or a crash (must fail).

The check runs every completion in its own ``python -I`` subprocess with a timeout and fails
loudly if a correct one fails or a buggy one passes. It runs our own code only; the real
sandbox for untrusted completions lives elsewhere in the project.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "feedback" / "fixtures" / "demo_prompts.jsonl"
MUST_PASS = {"demo-correct", "demo-clunky"}
MUST_FAIL = {"demo-subtle-bug", "demo-broken"}


def body(code: str) -> str:
    """A function body written flush-left here, indented to continue the prompt's function."""
    lines = textwrap.dedent(code).strip("\n").split("\n")
    return "\n".join(("    " + line) if line.strip() else "" for line in lines) + "\n"


def text(code: str) -> str:
    return textwrap.dedent(code).lstrip("\n")


TASKS: list[dict] = []


def task(id_, prompt, entry_point, tests, *, correct, clunky=None, subtle=None, broken=None):
    completions = [
        ("demo-correct", correct),
        ("demo-clunky", clunky),
        ("demo-subtle-bug", subtle),
        ("demo-broken", broken),
    ]
    TASKS.append(
        {
            "id": f"demo/{id_}",
            "prompt": text(prompt),
            "language": "python",
            "entry_point": entry_point,
            "tests": text(tests),
            "completions": [{"model": model, "text": body(code)} for model, code in completions if code is not None],
        }
    )


# --- strings ----------------------------------------------------------------------------------

task(
    "count-words",
    '''
    def count_words(text: str) -> dict:
        """Count how often each word occurs in text, ignoring case.

        Words are separated by whitespace; the punctuation marks . , ! ? ; : are stripped
        from both ends of a word, and what is left empty is not a word.
        >>> count_words("The cat. the hat!")
        {'the': 2, 'cat': 1, 'hat': 1}
        """
    ''',
    "count_words",
    """
    def check(candidate):
        assert candidate("The cat. the hat!") == {"the": 2, "cat": 1, "hat": 1}
        assert candidate("") == {}
        assert candidate("  ... !!  ") == {}
        assert candidate("Go, go, GO!") == {"go": 3}
        assert candidate("a\\tb\\nA") == {"a": 2, "b": 1}
    """,
    correct="""
    counts = {}
    for raw in text.split():
        word = raw.strip(".,!?;:").lower()
        if word:
            counts[word] = counts.get(word, 0) + 1
    return counts
    """,
    clunky="""
    result = dict()
    words = text.split()
    i = 0
    while i < len(words):
        w = words[i]
        while len(w) > 0 and w[0] in ".,!?;:":
            w = w[1:]
        while len(w) > 0 and w[len(w) - 1] in ".,!?;:":
            w = w[0:len(w) - 1]
        w = w.lower()
        if w != "":
            if w in result.keys():
                result[w] = result[w] + 1
            else:
                result[w] = 1
        i = i + 1
    return result
    """,
    subtle="""
    counts = {}
    for raw in text.split():
        word = raw.strip(".,!?;:")
        if word:
            counts[word] = counts.get(word, 0) + 1
    return counts
    """,
    broken="""
    return {word: text.count(word) for word in text.lower().split()}
    """,
)

task(
    "is-palindrome",
    '''
    def is_palindrome(s: str) -> bool:
        """Return True if s reads the same backwards, looking only at letters and digits
        and ignoring case.

        >>> is_palindrome("A man, a plan, a canal: Panama")
        True
        >>> is_palindrome("race a car")
        False
        """
    ''',
    "is_palindrome",
    """
    def check(candidate):
        assert candidate("A man, a plan, a canal: Panama") is True
        assert candidate("race a car") is False
        assert candidate("") is True
        assert candidate(".,!") is True
        assert candidate("No 'x' in Nixon") is True
        assert candidate("12321") is True
        assert candidate("123ab") is False
    """,
    correct="""
    kept = [ch.lower() for ch in s if ch.isalnum()]
    return kept == kept[::-1]
    """,
    clunky="""
    cleaned = ""
    for ch in s:
        if ch.isalnum() == True:
            cleaned = cleaned + ch.lower()
    reversed_cleaned = ""
    for i in range(len(cleaned) - 1, -1, -1):
        reversed_cleaned = reversed_cleaned + cleaned[i]
    if cleaned == reversed_cleaned:
        return True
    else:
        return False
    """,
    subtle="""
    lowered = s.lower().replace(" ", "")
    return lowered == lowered[::-1]
    """,
    broken="""
    kept = [ch.lower() for ch in s if ch.isalnum()
    return kept == reversed(kept)
    """,
)

task(
    "caesar",
    '''
    def caesar(text: str, shift: int) -> str:
        """Shift each ASCII letter of text by shift places in the alphabet, wrapping around and
        keeping its case. Other characters are left as they are. shift may be negative or larger
        than 26.

        >>> caesar("Hello, World!", 3)
        'Khoor, Zruog!'
        """
    ''',
    "caesar",
    """
    def check(candidate):
        assert candidate("Hello, World!", 3) == "Khoor, Zruog!"
        assert candidate("xyz", 3) == "abc"
        assert candidate("XYZ", 3) == "ABC"
        assert candidate("abc", -1) == "zab"
        assert candidate("abc", 52) == "abc"
        assert candidate("Zebra 42", 27) == "Afcsb 42"
        assert candidate("", 5) == ""
    """,
    correct="""
    out = []
    for ch in text:
        if "a" <= ch <= "z":
            out.append(chr((ord(ch) - ord("a") + shift) % 26 + ord("a")))
        elif "A" <= ch <= "Z":
            out.append(chr((ord(ch) - ord("A") + shift) % 26 + ord("A")))
        else:
            out.append(ch)
    return "".join(out)
    """,
    clunky="""
    lower = "abcdefghijklmnopqrstuvwxyz"
    upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    result = ""
    for ch in text:
        if ch in lower:
            idx = lower.index(ch)
            new_idx = idx + shift
            while new_idx < 0:
                new_idx = new_idx + 26
            while new_idx >= 26:
                new_idx = new_idx - 26
            result += lower[new_idx]
        elif ch in upper:
            idx = upper.index(ch)
            new_idx = idx + shift
            while new_idx < 0:
                new_idx = new_idx + 26
            while new_idx >= 26:
                new_idx = new_idx - 26
            result += upper[new_idx]
        else:
            result += ch
    return result
    """,
    subtle="""
    out = []
    for ch in text:
        if ch.isalpha():
            base = ord("a") if ch.islower() else ord("A")
            out.append(chr((ord(ch) - base + shift) % 25 + base))
        else:
            out.append(ch)
    return "".join(out)
    """,
    broken="""
    return "".join(chr(ord(ch) + shift) for ch in text)
    """,
)

task(
    "run-length-encode",
    '''
    def run_length_encode(s: str) -> str:
        """Encode s as runs: each run of one repeated character becomes the character followed
        by the length of the run.

        >>> run_length_encode("aaabcc")
        'a3b1c2'
        """
    ''',
    "run_length_encode",
    """
    def check(candidate):
        assert candidate("aaabcc") == "a3b1c2"
        assert candidate("") == ""
        assert candidate("x") == "x1"
        assert candidate("abab") == "a1b1a1b1"
        assert candidate("zzzzzzzzzzzz") == "z12"
    """,
    correct="""
    if not s:
        return ""
    parts = []
    current, count = s[0], 1
    for ch in s[1:]:
        if ch == current:
            count += 1
        else:
            parts.append(f"{current}{count}")
            current, count = ch, 1
    parts.append(f"{current}{count}")
    return "".join(parts)
    """,
    clunky="""
    from itertools import groupby
    answer = ""
    for key, group in groupby(s):
        n = 0
        for _ in group:
            n = n + 1
        answer = answer + str(key) + str(n)
    return answer
    """,
    subtle="""
    if not s:
        return ""
    parts = []
    current, count = s[0], 1
    for ch in s[1:]:
        if ch == current:
            count += 1
        else:
            parts.append(f"{current}{count}")
            current, count = ch, 1
    return "".join(parts)
    """,
    broken="""
    return "".join(ch + str(s.count(ch)) for ch in sorted(set(s)))
    """,
)

task(
    "run-length-decode",
    '''
    def run_length_decode(encoded: str) -> str:
        """Undo run-length encoding: each character is followed by its count in decimal,
        which may have several digits.

        >>> run_length_decode("a3b1c2")
        'aaabcc'
        """
    ''',
    "run_length_decode",
    """
    def check(candidate):
        assert candidate("a3b1c2") == "aaabcc"
        assert candidate("") == ""
        assert candidate("z12") == "z" * 12
        assert candidate("x1y10") == "x" + "y" * 10
        assert candidate("a0b2") == "bb"
    """,
    correct="""
    import re

    return "".join(ch * int(count) for ch, count in re.findall(r"(\\D)(\\d+)", encoded))
    """,
    clunky="""
    output = []
    i = 0
    while i < len(encoded):
        ch = encoded[i]
        i = i + 1
        digits = ""
        while i < len(encoded) and encoded[i] in "0123456789":
            digits = digits + encoded[i]
            i = i + 1
        for _ in range(int(digits)):
            output.append(ch)
    return "".join(output)
    """,
    subtle="""
    out = []
    for i in range(0, len(encoded), 2):
        out.append(encoded[i] * int(encoded[i + 1]))
    return "".join(out)
    """,
    broken="""
    return "".join(encoded[i] * encoded[i + 1] for i in range(0, len(encoded), 2))
    """,
)

task(
    "snake-to-camel",
    '''
    def snake_to_camel(name: str) -> str:
        """Turn a snake_case name into camelCase.

        The first part is lower-cased; every later part gets its first letter upper-cased and
        keeps the rest as written. Empty parts (from repeated, leading or trailing underscores)
        are dropped.
        >>> snake_to_camel("parse_http_URL")
        'parseHttpURL'
        """
    ''',
    "snake_to_camel",
    """
    def check(candidate):
        assert candidate("parse_http_URL") == "parseHttpURL"
        assert candidate("hello_world") == "helloWorld"
        assert candidate("_private__name_") == "privateName"
        assert candidate("single") == "single"
        assert candidate("Already") == "already"
        assert candidate("") == ""
    """,
    correct="""
    parts = [part for part in name.split("_") if part]
    if not parts:
        return ""
    return parts[0].lower() + "".join(part[0].upper() + part[1:] for part in parts[1:])
    """,
    clunky="""
    pieces = name.split("_")
    good = []
    for p in pieces:
        if len(p) != 0:
            good.append(p)
    out = ""
    for index in range(len(good)):
        if index == 0:
            out = out + good[index].lower()
        else:
            first = good[index][0]
            out = out + first.upper() + good[index][1:len(good[index])]
    return out
    """,
    subtle="""
    parts = [part for part in name.split("_") if part]
    if not parts:
        return ""
    return parts[0].lower() + "".join(part.capitalize() for part in parts[1:])
    """,
    broken="""
    return name.title().replace("_", "")
    """,
)

task(
    "camel-to-snake",
    '''
    def camel_to_snake(name: str) -> str:
        """Turn a camelCase or PascalCase name into snake_case.

        An underscore goes before each upper-case letter that follows a lower-case letter or a
        digit, and before the last capital of a run of capitals followed by a lower-case letter,
        so that acronyms stay together. The result is lower-case.
        >>> camel_to_snake("parseHTTPResponse")
        'parse_http_response'
        """
    ''',
    "camel_to_snake",
    """
    def check(candidate):
        assert candidate("parseHTTPResponse") == "parse_http_response"
        assert candidate("helloWorld") == "hello_world"
        assert candidate("HelloWorld") == "hello_world"
        assert candidate("getX2Value") == "get_x2_value"
        assert candidate("ID") == "id"
        assert candidate("simple") == "simple"
    """,
    correct="""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i > 0:
            prev = name[i - 1]
            nxt = name[i + 1] if i + 1 < len(name) else ""
            if prev.islower() or prev.isdigit() or (prev.isupper() and nxt.islower()):
                out.append("_")
        out.append(ch.lower())
    return "".join(out)
    """,
    clunky="""
    import re
    step_one = re.sub("([A-Z]+)([A-Z][a-z])", lambda m: m.group(1) + "_" + m.group(2), name)
    step_two = re.sub("([a-z0-9])([A-Z])", lambda m: m.group(1) + "_" + m.group(2), step_one)
    lowered = ""
    for c in step_two:
        lowered = lowered + c.lower()
    return lowered
    """,
    subtle="""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i > 0:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
    """,
    broken="""
    return "_".join(name).lower()
    """,
)

task(
    "longest-common-prefix",
    '''
    def longest_common_prefix(words: list) -> str:
        """Return the longest string that every word in words starts with ("" for no words).

        >>> longest_common_prefix(["flower", "flow", "flight"])
        'fl'
        """
    ''',
    "longest_common_prefix",
    """
    def check(candidate):
        assert candidate(["flower", "flow", "flight"]) == "fl"
        assert candidate(["dog", "racecar", "car"]) == ""
        assert candidate([]) == ""
        assert candidate(["alone"]) == "alone"
        assert candidate(["ab", "abc", "abcd"]) == "ab"
        assert candidate(["same", "same"]) == "same"
        assert candidate(["abc", "axc"]) == "a"
    """,
    correct="""
    if not words:
        return ""
    shortest = min(words, key=len)
    for i, ch in enumerate(shortest):
        if any(word[i] != ch for word in words):
            return shortest[:i]
    return shortest
    """,
    clunky="""
    if len(words) == 0:
        return ""
    prefix = words[0]
    for w in words[1:]:
        new_prefix = ""
        j = 0
        while j < len(prefix) and j < len(w):
            if prefix[j] == w[j]:
                new_prefix = new_prefix + prefix[j]
                j = j + 1
            else:
                break
        prefix = new_prefix
    return prefix
    """,
    subtle="""
    if not words:
        return ""
    prefix = ""
    for i in range(len(words[0])):
        ch = words[0][i]
        if all(len(word) > i and word[i] == ch for word in words):
            prefix += ch
    return prefix
    """,
    broken="""
    prefix = words[0]
    for word in words:
        while not word.startswith(prefix):
            prefix = prefix[:-1]
    return prefix
    """,
)

task(
    "word-wrap",
    '''
    def word_wrap(text: str, width: int) -> list:
        """Wrap text into lines of at most width characters, greedily, breaking only at
        whitespace. A word longer than width goes on a line of its own. Words on a line are
        separated by one space.

        >>> word_wrap("the quick brown fox", 10)
        ['the quick', 'brown fox']
        """
    ''',
    "word_wrap",
    """
    def check(candidate):
        assert candidate("the quick brown fox", 10) == ["the quick", "brown fox"]
        assert candidate("the quick brown fox", 9) == ["the quick", "brown fox"]
        assert candidate("", 5) == []
        assert candidate("extraordinary word", 5) == ["extraordinary", "word"]
        assert candidate("a b c d", 3) == ["a b", "c d"]
        assert candidate("  spaced    out  ", 20) == ["spaced out"]
    """,
    correct="""
    lines = []
    current = ""
    for word in text.split():
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines
    """,
    clunky="""
    import textwrap
    result = []
    wrapped = textwrap.wrap(" ".join(text.split()), width=width, break_long_words=False, break_on_hyphens=False)
    for line in wrapped:
        result.append(line)
    return result
    """,
    subtle="""
    lines = []
    current = ""
    for word in text.split():
        if not current:
            current = word
        elif len(current) + 1 + len(word) < width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines
    """,
    broken="""
    return [text[i:i + width] for i in range(0, len(text), width)]
    """,
)

task(
    "anagram-groups",
    '''
    def anagram_groups(words: list) -> list:
        """Group words that are anagrams of each other (same letters, same counts, case
        sensitive). Groups come in the order of their first word; words keep their order
        within a group.

        >>> anagram_groups(["eat", "tea", "tan", "ate", "nat", "bat"])
        [['eat', 'tea', 'ate'], ['tan', 'nat'], ['bat']]
        """
    ''',
    "anagram_groups",
    """
    def check(candidate):
        groups = candidate(["eat", "tea", "tan", "ate", "nat", "bat"])
        assert groups == [["eat", "tea", "ate"], ["tan", "nat"], ["bat"]]
        assert candidate([]) == []
        assert candidate(["a"]) == [["a"]]
        assert candidate(["ab", "ba", "abb", "bab"]) == [["ab", "ba"], ["abb", "bab"]]
        assert candidate(["aab", "abb"]) == [["aab"], ["abb"]]
    """,
    correct="""
    groups = {}
    for word in words:
        groups.setdefault("".join(sorted(word)), []).append(word)
    return list(groups.values())
    """,
    clunky="""
    result = []
    keys = []
    for w in words:
        k = sorted(list(w))
        found = False
        for idx in range(len(keys)):
            if keys[idx] == k:
                result[idx].append(w)
                found = True
        if found == False:
            keys.append(k)
            result.append([w])
    return result
    """,
    subtle="""
    groups = {}
    for word in words:
        groups.setdefault(frozenset(word), []).append(word)
    return list(groups.values())
    """,
    broken="""
    groups = {}
    for word in words:
        groups[sorted(word)].append(word)
    return list(groups.values())
    """,
)

task(
    "vowel-positions",
    '''
    def vowel_positions(s: str) -> list:
        """Return the indexes of the vowels (a, e, i, o, u, either case) in s.

        >>> vowel_positions("Education")
        [0, 2, 4, 6, 7]
        """
    ''',
    "vowel_positions",
    """
    def check(candidate):
        assert candidate("Education") == [0, 2, 4, 6, 7]
        assert candidate("rhythm") == []
        assert candidate("") == []
        assert candidate("AEIOU") == [0, 1, 2, 3, 4]
        assert candidate("xyzu") == [3]
    """,
    correct="""
    return [i for i, ch in enumerate(s) if ch.lower() in "aeiou"]
    """,
    clunky="""
    positions = []
    for i in range(0, len(s)):
        c = s[i]
        if c == "a" or c == "e" or c == "i" or c == "o" or c == "u" or \\
           c == "A" or c == "E" or c == "I" or c == "O" or c == "U":
            positions.append(i)
    return positions
    """,
    subtle="""
    return [i for i, ch in enumerate(s) if ch in "aeiou"]
    """,
)

# --- lists ------------------------------------------------------------------------------------

task(
    "rotate-right",
    '''
    def rotate_right(items: list, k: int) -> list:
        """Return a new list with items rotated k places to the right. k is zero or more and may
        be larger than the list.

        >>> rotate_right([1, 2, 3, 4, 5], 2)
        [4, 5, 1, 2, 3]
        """
    ''',
    "rotate_right",
    """
    def check(candidate):
        assert candidate([1, 2, 3, 4, 5], 2) == [4, 5, 1, 2, 3]
        assert candidate([1, 2, 3], 0) == [1, 2, 3]
        assert candidate([1, 2, 3], 3) == [1, 2, 3]
        assert candidate([1, 2, 3], 4) == [3, 1, 2]
        assert candidate([], 7) == []
        original = [1, 2]
        candidate(original, 1)
        assert original == [1, 2]
    """,
    correct="""
    if not items:
        return []
    k %= len(items)
    return items[-k:] + items[:-k] if k else list(items)
    """,
    clunky="""
    result = list(items)
    for _ in range(k):
        if len(result) > 0:
            last = result.pop()
            result.insert(0, last)
    return result
    """,
    subtle="""
    if not items or k == 0:
        return list(items)
    return items[-k:] + items[:-k]
    """,
    broken="""
    k = k % len(items)
    return items[k:] + items[:k]
    """,
)

task(
    "chunked",
    '''
    def chunked(items: list, size: int) -> list:
        """Split items into consecutive chunks of size elements; the last chunk may be shorter.
        A size below 1 raises ValueError.

        >>> chunked([1, 2, 3, 4, 5], 2)
        [[1, 2], [3, 4], [5]]
        """
    ''',
    "chunked",
    """
    def check(candidate):
        assert candidate([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
        assert candidate([1, 2, 3, 4], 2) == [[1, 2], [3, 4]]
        assert candidate([], 3) == []
        assert candidate([1], 5) == [[1]]
        try:
            candidate([1, 2], 0)
        except ValueError:
            pass
        else:
            raise AssertionError("size 0 must raise ValueError")
    """,
    correct="""
    if size < 1:
        raise ValueError("size must be at least 1")
    return [items[i:i + size] for i in range(0, len(items), size)]
    """,
    clunky="""
    if size <= 0:
        raise ValueError("bad size")
    out = []
    current = []
    for x in items:
        current.append(x)
        if len(current) == size:
            out.append(current)
            current = []
    if len(current) > 0:
        out.append(current)
    return out
    """,
    subtle="""
    if size < 1:
        raise ValueError("size must be at least 1")
    return [items[i:i + size] for i in range(0, len(items) - size + 1, size)]
    """,
    broken="""
    return [items[i::size] for i in range(size)]
    """,
)

task(
    "flatten",
    '''
    def flatten(nested: list) -> list:
        """Flatten arbitrarily nested lists into one list, keeping the order. Only lists are
        opened; tuples, strings and other values are kept as they are.

        >>> flatten([1, [2, [3, [4]], 5]])
        [1, 2, 3, 4, 5]
        """
    ''',
    "flatten",
    """
    def check(candidate):
        assert candidate([1, [2, [3, [4]], 5]]) == [1, 2, 3, 4, 5]
        assert candidate([]) == []
        assert candidate([[], [[]], [[[]]]]) == []
        assert candidate(["ab", ("c", "d"), ["e"]]) == ["ab", ("c", "d"), "e"]
        assert candidate([[1, 2], [3, [4, [5, [6]]]]]) == [1, 2, 3, 4, 5, 6]
    """,
    correct="""
    flat = []
    for item in nested:
        if isinstance(item, list):
            flat.extend(flatten(item))
        else:
            flat.append(item)
    return flat
    """,
    clunky="""
    stack = [iter(nested)]
    out = []
    while len(stack) > 0:
        try:
            item = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        if type(item) == list:
            stack.append(iter(item))
        else:
            out.append(item)
    return out
    """,
    subtle="""
    flat = []
    for item in nested:
        if isinstance(item, list):
            flat.extend(item)
        else:
            flat.append(item)
    return flat
    """,
    broken="""
    return sum(nested, [])
    """,
)

task(
    "second-largest",
    '''
    def second_largest(numbers: list):
        """Return the second largest distinct value in numbers, or None when there are fewer
        than two distinct values.

        >>> second_largest([4, 1, 4, 3])
        3
        """
    ''',
    "second_largest",
    """
    def check(candidate):
        assert candidate([4, 1, 4, 3]) == 3
        assert candidate([1, 2]) == 1
        assert candidate([5, 5, 5]) is None
        assert candidate([]) is None
        assert candidate([-1, -7, -3]) == -3
        assert candidate([10, 9, 10, 9, 8]) == 9
    """,
    correct="""
    distinct = sorted(set(numbers))
    return distinct[-2] if len(distinct) >= 2 else None
    """,
    clunky="""
    largest = None
    second = None
    for n in numbers:
        if largest == None or n > largest:
            if largest != None:
                second = largest
            largest = n
        elif n != largest:
            if second == None or n > second:
                second = n
    return second
    """,
    subtle="""
    if len(numbers) < 2:
        return None
    return sorted(numbers)[-2]
    """,
    broken="""
    numbers.remove(max(numbers))
    return max(numbers)
    """,
)

task(
    "moving-average",
    '''
    def moving_average(values: list, window: int) -> list:
        """Return the mean of every run of window consecutive values, in order. With fewer
        values than window, return an empty list.

        >>> moving_average([1, 2, 3, 4], 2)
        [1.5, 2.5, 3.5]
        """
    ''',
    "moving_average",
    """
    def check(candidate):
        assert candidate([1, 2, 3, 4], 2) == [1.5, 2.5, 3.5]
        assert candidate([1, 2, 3], 3) == [2.0]
        assert candidate([1, 2], 3) == []
        assert candidate([5, 5, 5, 5], 1) == [5.0, 5.0, 5.0, 5.0]
        assert candidate([0, 10, 20, 30, 40], 4) == [15.0, 25.0]
    """,
    correct="""
    if window > len(values):
        return []
    total = sum(values[:window])
    averages = [total / window]
    for i in range(window, len(values)):
        total += values[i] - values[i - window]
        averages.append(total / window)
    return averages
    """,
    clunky="""
    answer = []
    for start in range(len(values)):
        if start + window <= len(values):
            s = 0
            for j in range(start, start + window):
                s = s + values[j]
            answer.append(s / window)
    return answer
    """,
    subtle="""
    return [sum(values[i:i + window]) / window for i in range(len(values) - window)]
    """,
    broken="""
    return [sum(values[i:i + window]) // window for i in range(len(values) - window + 1)]
    """,
)

task(
    "merge-intervals",
    '''
    def merge_intervals(intervals: list) -> list:
        """Merge overlapping or touching [start, end] intervals and return them sorted by start.

        >>> merge_intervals([[1, 3], [8, 10], [2, 6]])
        [[1, 6], [8, 10]]
        """
    ''',
    "merge_intervals",
    """
    def check(candidate):
        assert candidate([[1, 3], [8, 10], [2, 6]]) == [[1, 6], [8, 10]]
        assert candidate([[1, 2], [2, 3]]) == [[1, 3]]
        assert candidate([]) == []
        assert candidate([[5, 7]]) == [[5, 7]]
        assert candidate([[1, 10], [2, 3], [4, 5]]) == [[1, 10]]
        assert candidate([[6, 8], [1, 2], [3, 4]]) == [[1, 2], [3, 4], [6, 8]]
    """,
    correct="""
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged
    """,
    clunky="""
    items = []
    for iv in intervals:
        items.append([iv[0], iv[1]])
    changed = True
    while changed:
        changed = False
        for i in range(len(items)):
            for j in range(len(items)):
                if i != j and not changed:
                    a = items[i]
                    b = items[j]
                    if a[0] <= b[1] and b[0] <= a[1]:
                        items[i] = [min(a[0], b[0]), max(a[1], b[1])]
                        del items[j]
                        changed = True
            if changed:
                break
    items.sort()
    return items
    """,
    subtle="""
    merged = []
    for start, end in sorted(intervals):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged
    """,
    broken="""
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return merged
    """,
)

task(
    "two-sum",
    '''
    def two_sum(numbers: list, target: int):
        """Return a tuple (i, j) with i < j of the first pair of positions (smallest j, then
        smallest i) whose values add up to target, or None. A position is used at most once.

        >>> two_sum([2, 7, 11, 15], 9)
        (0, 1)
        """
    ''',
    "two_sum",
    """
    def check(candidate):
        assert candidate([2, 7, 11, 15], 9) == (0, 1)
        assert candidate([3, 2, 4], 6) == (1, 2)
        assert candidate([3, 3], 6) == (0, 1)
        assert candidate([1, 2, 3], 7) is None
        assert candidate([], 0) is None
        assert candidate([5, 1, 5, 1], 6) == (0, 1)
    """,
    correct="""
    seen = {}
    for j, value in enumerate(numbers):
        if target - value in seen:
            return (seen[target - value], j)
        seen.setdefault(value, j)
    return None
    """,
    clunky="""
    for j in range(len(numbers)):
        for i in range(len(numbers)):
            if i < j:
                if numbers[i] + numbers[j] == target:
                    return (i, j)
    return None
    """,
    subtle="""
    for i, a in enumerate(numbers):
        for j, b in enumerate(numbers):
            if a + b == target:
                return (min(i, j), max(i, j))
    return None
    """,
    broken="""
    lookup = {value: i for i, value in enumerate(numbers)}
    for i, value in enumerate(numbers):
        if target - value in lookup:
            return (i, lookup[target - value])
    """,
)

task(
    "binary-search",
    '''
    def binary_search(sorted_items: list, target) -> int:
        """Return an index of target in the ascending list sorted_items, or -1 if it is not there.
        Use binary search.

        >>> binary_search([1, 3, 5, 7], 7)
        3
        """
    ''',
    "binary_search",
    """
    def check(candidate):
        assert candidate([1, 3, 5, 7], 7) == 3
        assert candidate([1, 3, 5, 7], 1) == 0
        assert candidate([1, 3, 5, 7], 4) == -1
        assert candidate([], 4) == -1
        assert candidate([2], 2) == 0
        items = list(range(0, 2000, 2))
        assert all(candidate(items, v) == v // 2 for v in items)
        assert candidate(items, 2001) == -1
    """,
    correct="""
    lo, hi = 0, len(sorted_items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if sorted_items[mid] == target:
            return mid
        if sorted_items[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1
    """,
    clunky="""
    import bisect
    position = bisect.bisect_left(sorted_items, target)
    if position != len(sorted_items):
        if sorted_items[position] == target:
            return position
        else:
            return -1
    else:
        return -1
    """,
    subtle="""
    lo, hi = 0, len(sorted_items) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_items[mid] == target:
            return mid
        if sorted_items[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1
    """,
    broken="""
    lo, hi = 0, len(sorted_items)
    while lo < hi:
        mid = (lo + hi) / 2
        if sorted_items[mid] == target:
            return mid
        lo = mid + 1
    return -1
    """,
)

task(
    "spiral-order",
    '''
    def spiral_order(matrix: list) -> list:
        """Return the elements of a rectangular matrix (a list of equal-length rows) in clockwise
        spiral order, starting at the top left.

        >>> spiral_order([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
        [1, 2, 3, 6, 9, 8, 7, 4, 5]
        """
    ''',
    "spiral_order",
    """
    def check(candidate):
        assert candidate([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == [1, 2, 3, 6, 9, 8, 7, 4, 5]
        assert candidate([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]) == [1, 2, 3, 4, 8, 12, 11, 10, 9, 5, 6, 7]
        assert candidate([]) == []
        assert candidate([[1]]) == [1]
        assert candidate([[1], [2], [3]]) == [1, 2, 3]
        assert candidate([[1, 2, 3]]) == [1, 2, 3]
    """,
    correct="""
    result = []
    top, bottom = 0, len(matrix) - 1
    left, right = 0, (len(matrix[0]) - 1) if matrix else -1
    while top <= bottom and left <= right:
        result.extend(matrix[top][c] for c in range(left, right + 1))
        result.extend(matrix[r][right] for r in range(top + 1, bottom + 1))
        if top < bottom:
            result.extend(matrix[bottom][c] for c in range(right - 1, left - 1, -1))
        if left < right:
            result.extend(matrix[r][left] for r in range(bottom - 1, top, -1))
        top, bottom, left, right = top + 1, bottom - 1, left + 1, right - 1
    return result
    """,
    clunky="""
    rows = [list(r) for r in matrix]
    out = []
    while len(rows) > 0:
        first = rows.pop(0)
        for v in first:
            out.append(v)
        # turn what is left counter-clockwise so the next edge is on top
        if len(rows) > 0:
            turned = []
            for c in range(len(rows[0]) - 1, -1, -1):
                new_row = []
                for r in range(len(rows)):
                    new_row.append(rows[r][c])
                turned.append(new_row)
            rows = turned
    return out
    """,
    subtle="""
    result = []
    top, bottom = 0, len(matrix) - 1
    left, right = 0, (len(matrix[0]) - 1) if matrix else -1
    while top <= bottom and left <= right:
        result.extend(matrix[top][c] for c in range(left, right + 1))
        result.extend(matrix[r][right] for r in range(top + 1, bottom + 1))
        result.extend(matrix[bottom][c] for c in range(right - 1, left - 1, -1))
        result.extend(matrix[r][left] for r in range(bottom - 1, top, -1))
        top, bottom, left, right = top + 1, bottom - 1, left + 1, right - 1
    return result
    """,
    broken="""
    return [value for row in matrix for value in row]
    """,
)

task(
    "transpose",
    '''
    def transpose(matrix: list) -> list:
        """Return the transpose of a rectangular matrix given as a list of rows (not
        necessarily square). The transpose of [] is [].

        >>> transpose([[1, 2, 3], [4, 5, 6]])
        [[1, 4], [2, 5], [3, 6]]
        """
    ''',
    "transpose",
    """
    def check(candidate):
        assert candidate([[1, 2, 3], [4, 5, 6]]) == [[1, 4], [2, 5], [3, 6]]
        assert candidate([[1, 2], [3, 4]]) == [[1, 3], [2, 4]]
        assert candidate([]) == []
        assert candidate([[7]]) == [[7]]
        assert candidate([[1], [2], [3]]) == [[1, 2, 3]]
    """,
    correct="""
    return [list(column) for column in zip(*matrix)]
    """,
    clunky="""
    if len(matrix) == 0:
        return []
    result = []
    for c in range(len(matrix[0])):
        result.append([])
    for r in range(len(matrix)):
        for c in range(len(matrix[0])):
            result[c].append(matrix[r][c])
    return result
    """,
    subtle="""
    n = len(matrix)
    return [[matrix[r][c] for r in range(n)] for c in range(n)]
    """,
    broken="""
    return list(zip(matrix))
    """,
)

task(
    "dedupe-keep-order",
    '''
    def dedupe(items: list) -> list:
        """Return items without repeats, keeping the first occurrence of each value in order.
        Values are hashable.

        >>> dedupe([3, 1, 3, 2, 1])
        [3, 1, 2]
        """
    ''',
    "dedupe",
    """
    def check(candidate):
        assert candidate([3, 1, 3, 2, 1]) == [3, 1, 2]
        assert candidate([]) == []
        assert candidate(["b", "a", "b"]) == ["b", "a"]
        assert candidate([1, True, 1.0, 2]) == [1, 2]
        assert candidate([5, 4, 3, 2, 1]) == [5, 4, 3, 2, 1]
    """,
    correct="""
    return list(dict.fromkeys(items))
    """,
    clunky="""
    result = []
    for i in range(len(items)):
        already = False
        for j in range(len(result)):
            if result[j] == items[i]:
                already = True
        if not already:
            result.append(items[i])
    return result
    """,
    subtle="""
    return list(dict.fromkeys(reversed(items)))[::-1]
    """,
    broken="""
    return list(set(items))
    """,
)

# --- dicts ------------------------------------------------------------------------------------

task(
    "invert-dict",
    '''
    def invert(mapping: dict) -> dict:
        """Invert mapping: each value maps to the list of keys that had it, in the mapping's order.

        >>> invert({"a": 1, "b": 2, "c": 1})
        {1: ['a', 'c'], 2: ['b']}
        """
    ''',
    "invert",
    """
    def check(candidate):
        assert candidate({"a": 1, "b": 2, "c": 1}) == {1: ["a", "c"], 2: ["b"]}
        assert candidate({}) == {}
        assert candidate({"x": "y"}) == {"y": ["x"]}
        assert candidate({1: 0, 2: 0, 3: 0}) == {0: [1, 2, 3]}
    """,
    correct="""
    inverted = {}
    for key, value in mapping.items():
        inverted.setdefault(value, []).append(key)
    return inverted
    """,
    clunky="""
    from collections import defaultdict
    tmp = defaultdict(list)
    for k in list(mapping.keys()):
        v = mapping[k]
        tmp[v] = tmp[v] + [k]
    out = {}
    for k in tmp:
        out[k] = tmp[k]
    return out
    """,
    subtle="""
    return {value: [key] for key, value in mapping.items()}
    """,
    broken="""
    return {value: key for key, value in mapping}
    """,
)

task(
    "deep-get",
    '''
    def deep_get(data, path: str, default=None):
        """Follow a dotted path through nested dicts and lists and return the value found, or
        default when any step is missing. A step into a list is a decimal index.

        >>> deep_get({"a": {"b": [10, {"c": 3}]}}, "a.b.1.c")
        3
        """
    ''',
    "deep_get",
    """
    def check(candidate):
        data = {"a": {"b": [10, {"c": 3}]}, "n": None}
        assert candidate(data, "a.b.1.c") == 3
        assert candidate(data, "a.b.0") == 10
        assert candidate(data, "a.x", "missing") == "missing"
        assert candidate(data, "a.b.5") is None
        assert candidate(data, "a.b.one", 0) == 0
        assert candidate(data, "n") is None
        assert candidate(data, "n.deeper", "d") == "d"
    """,
    correct="""
    current = data
    for step in path.split("."):
        if isinstance(current, dict) and step in current:
            current = current[step]
        elif isinstance(current, list) and step.isdigit() and int(step) < len(current):
            current = current[int(step)]
        else:
            return default
    return current
    """,
    clunky="""
    steps = path.split(".")
    value = data
    i = 0
    while i < len(steps):
        s = steps[i]
        if type(value) is dict:
            if s in value.keys():
                value = value[s]
            else:
                return default
        elif type(value) is list:
            try:
                idx = int(s)
            except ValueError:
                return default
            if idx >= 0 and idx < len(value):
                value = value[idx]
            else:
                return default
        else:
            return default
        i += 1
    return value
    """,
    subtle="""
    current = data
    for step in path.split("."):
        if isinstance(current, dict) and step in current:
            current = current[step]
        else:
            return default
    return current
    """,
    broken="""
    try:
        return eval("data" + "".join(f"[{step!r}]" for step in path.split(".")))
    except KeyError:
        return default
    """,
)

task(
    "deep-merge",
    '''
    def deep_merge(base: dict, override: dict) -> dict:
        """Return a new dict: override merged into base. Where both have a dict under the same
        key, those are merged the same way; otherwise override's value wins. Neither argument
        is changed.

        >>> deep_merge({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}})
        {'a': {'x': 1, 'y': 3}}
        """
    ''',
    "deep_merge",
    """
    def check(candidate):
        base = {"a": {"x": 1, "y": 2}, "b": 1}
        override = {"a": {"y": 3, "z": {"q": 1}}, "c": 2}
        assert candidate(base, override) == {"a": {"x": 1, "y": 3, "z": {"q": 1}}, "b": 1, "c": 2}
        assert base == {"a": {"x": 1, "y": 2}, "b": 1}
        assert override == {"a": {"y": 3, "z": {"q": 1}}, "c": 2}
        assert candidate({}, {}) == {}
        assert candidate({"a": {"x": 1}}, {"a": 5}) == {"a": 5}
        assert candidate({"a": 5}, {"a": {"x": 1}}) == {"a": {"x": 1}}
    """,
    correct="""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
    """,
    clunky="""
    import copy
    result = copy.deepcopy(base)
    for k in override:
        if k in result and type(result[k]) == dict and type(override[k]) == dict:
            result[k] = deep_merge(result[k], override[k])
        else:
            result[k] = copy.deepcopy(override[k])
    return result
    """,
    subtle="""
    merged = base
    for key, value in override.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
    """,
    broken="""
    return {**base, **override}
    """,
)

task(
    "group-by-length",
    '''
    def group_by_length(words: list) -> dict:
        """Map each word length to the words of that length, in their original order. Keys are
        in ascending order.

        >>> group_by_length(["ox", "cat", "be", "dog"])
        {2: ['ox', 'be'], 3: ['cat', 'dog']}
        """
    ''',
    "group_by_length",
    """
    def check(candidate):
        result = candidate(["ox", "cat", "be", "dog"])
        assert result == {2: ["ox", "be"], 3: ["cat", "dog"]}
        assert list(candidate(["ccc", "a", "bb"]).keys()) == [1, 2, 3]
        assert candidate([]) == {}
        assert candidate(["", "a"]) == {0: [""], 1: ["a"]}
    """,
    correct="""
    groups = {}
    for word in sorted(words, key=len):
        groups.setdefault(len(word), []).append(word)
    return groups
    """,
    clunky="""
    lengths = []
    for w in words:
        if len(w) not in lengths:
            lengths.append(len(w))
    lengths.sort()
    out = {}
    for n in lengths:
        out[n] = []
        for w in words:
            if len(w) == n:
                out[n].append(w)
    return out
    """,
    subtle="""
    groups = {}
    for word in words:
        groups.setdefault(len(word), []).append(word)
    return groups
    """,
    broken="""
    return {len(word): word for word in words}
    """,
)

task(
    "top-k-frequent",
    '''
    def top_k_frequent(items: list, k: int) -> list:
        """Return the k most frequent values in items, most frequent first; values with the same
        count come in the order they first appear in items.

        >>> top_k_frequent(["b", "a", "a", "c", "b", "a"], 2)
        ['a', 'b']
        """
    ''',
    "top_k_frequent",
    """
    def check(candidate):
        assert candidate(["b", "a", "a", "c", "b", "a"], 2) == ["a", "b"]
        assert candidate([3, 1, 2], 2) == [3, 1]
        assert candidate([], 3) == []
        assert candidate([1, 1, 2], 5) == [1, 2]
        assert candidate(["x", "y", "y", "x", "z"], 1) == ["x"]
    """,
    correct="""
    counts = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return sorted(counts, key=lambda item: -counts[item])[:k]
    """,
    clunky="""
    from collections import Counter
    c = Counter(items)
    order = []
    for x in items:
        if x not in order:
            order.append(x)
    result = []
    while len(result) < k and len(order) > 0:
        best = order[0]
        for x in order:
            if c[x] > c[best]:
                best = x
        result.append(best)
        order.remove(best)
    return result
    """,
    subtle="""
    from collections import Counter

    return [item for item, _ in sorted(Counter(items).items(), key=lambda kv: (-kv[1], kv[0]))][:k]
    """,
    broken="""
    from collections import Counter

    return Counter(items).most_common(k)
    """,
)

# --- maths ------------------------------------------------------------------------------------

task(
    "is-prime",
    '''
    def is_prime(n: int) -> bool:
        """Return True if n is a prime number. Numbers below 2 are not prime.

        >>> is_prime(7)
        True
        """
    ''',
    "is_prime",
    """
    def check(candidate):
        assert candidate(7) is True
        assert candidate(1) is False
        assert candidate(0) is False
        assert candidate(-7) is False
        assert candidate(2) is True
        assert candidate(9) is False
        assert candidate(49) is False
        assert candidate(7919) is True
        assert [n for n in range(30) if candidate(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    """,
    correct="""
    if n < 2:
        return False
    divisor = 2
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 1
    return True
    """,
    clunky="""
    if n < 2:
        return False
    count = 0
    for d in range(1, n + 1):
        if n % d == 0:
            count = count + 1
    if count == 2:
        return True
    return False
    """,
    subtle="""
    if n < 2:
        return False
    for divisor in range(2, int(n ** 0.5)):
        if n % divisor == 0:
            return False
    return True
    """,
    broken="""
    return n % 2 == 1 or n == 2
    """,
)

task(
    "prime-factors",
    '''
    def prime_factors(n: int) -> list:
        """Return the prime factors of n (n >= 2) in ascending order, repeated as often as they
        divide n.

        >>> prime_factors(360)
        [2, 2, 2, 3, 3, 5]
        """
    ''',
    "prime_factors",
    """
    def check(candidate):
        assert candidate(360) == [2, 2, 2, 3, 3, 5]
        assert candidate(2) == [2]
        assert candidate(97) == [97]
        assert candidate(2 * 101) == [2, 101]
        assert candidate(1024) == [2] * 10
        assert candidate(999983 * 3) == [3, 999983]
    """,
    correct="""
    factors = []
    divisor = 2
    while divisor * divisor <= n:
        while n % divisor == 0:
            factors.append(divisor)
            n //= divisor
        divisor += 1
    if n > 1:
        factors.append(n)
    return factors
    """,
    clunky="""
    result = []
    remaining = n
    candidate_factor = 2
    while remaining != 1:
        if candidate_factor * candidate_factor > remaining:
            result.append(remaining)
            break
        if remaining % candidate_factor == 0:
            result.append(candidate_factor)
            remaining = remaining // candidate_factor
        else:
            if candidate_factor == 2:
                candidate_factor = 3
            else:
                candidate_factor = candidate_factor + 2
    return result
    """,
    subtle="""
    factors = []
    divisor = 2
    while divisor * divisor <= n:
        while n % divisor == 0:
            factors.append(divisor)
            n //= divisor
        divisor += 1
    return factors
    """,
    broken="""
    return [d for d in range(2, n + 1) if n % d == 0 and all(d % p for p in range(2, d))]
    """,
)

task(
    "fibonacci",
    '''
    def fibonacci(n: int) -> int:
        """Return the n-th Fibonacci number, with fibonacci(0) == 0 and fibonacci(1) == 1.
        n can be as large as a few hundred.

        >>> fibonacci(10)
        55
        """
    ''',
    "fibonacci",
    """
    def check(candidate):
        assert candidate(0) == 0
        assert candidate(1) == 1
        assert candidate(2) == 1
        assert candidate(10) == 55
        assert candidate(90) == 2880067194370816120
        assert candidate(300) % 1000 == 600
    """,
    correct="""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
    """,
    clunky="""
    memo = {0: 0, 1: 1}
    i = 2
    while i <= n:
        memo[i] = memo[i - 1] + memo[i - 2]
        i = i + 1
    return memo[n]
    """,
    subtle="""
    a, b = 0, 1
    for _ in range(n - 1):
        a, b = b, a + b
    return b
    """,
    broken="""
    phi = (1 + 5 ** 0.5) / 2
    return round(phi ** n / 5 ** 0.5)
    """,
)

task(
    "digital-root",
    '''
    def digital_root(n: int) -> int:
        """Sum the decimal digits of n (n >= 0), then the digits of that sum, and so on until a
        single digit is left; return it.

        >>> digital_root(942)
        6
        """
    ''',
    "digital_root",
    """
    def check(candidate):
        assert candidate(942) == 6
        assert candidate(0) == 0
        assert candidate(7) == 7
        assert candidate(10) == 1
        assert candidate(99999999999) == 9
        assert candidate(132189) == 6
    """,
    correct="""
    while n >= 10:
        n = sum(int(digit) for digit in str(n))
    return n
    """,
    clunky="""
    number = n
    while True:
        if number < 10:
            return number
        total = 0
        for ch in str(number):
            total = total + int(ch)
        number = total
    """,
    subtle="""
    return n % 9 or 9
    """,
    broken="""
    return sum(int(digit) for digit in str(n))
    """,
)

task(
    "pascal-row",
    '''
    def pascal_row(n: int) -> list:
        """Return row n of Pascal's triangle (row 0 is [1]).

        >>> pascal_row(4)
        [1, 4, 6, 4, 1]
        """
    ''',
    "pascal_row",
    """
    def check(candidate):
        assert candidate(0) == [1]
        assert candidate(1) == [1, 1]
        assert candidate(4) == [1, 4, 6, 4, 1]
        assert candidate(10)[5] == 252
        assert sum(candidate(20)) == 2 ** 20
    """,
    correct="""
    row = [1]
    for k in range(n):
        row.append(row[k] * (n - k) // (k + 1))
    return row
    """,
    clunky="""
    triangle = [[1]]
    for i in range(1, n + 1):
        prev = triangle[i - 1]
        new = [1]
        for j in range(1, i):
            new.append(prev[j - 1] + prev[j])
        new.append(1)
        triangle.append(new)
    return triangle[n]
    """,
    subtle="""
    row = [1]
    for _ in range(n - 1):
        row = [1] + [row[i] + row[i + 1] for i in range(len(row) - 1)] + [1]
    return row
    """,
    broken="""
    return [n ** k for k in range(n + 1)]
    """,
)

task(
    "lcm-of-list",
    '''
    def lcm_of(numbers: list) -> int:
        """Return the least common multiple of a non-empty list of positive integers.

        >>> lcm_of([4, 6, 10])
        60
        """
    ''',
    "lcm_of",
    """
    def check(candidate):
        assert candidate([4, 6, 10]) == 60
        assert candidate([7]) == 7
        assert candidate([1, 1, 1]) == 1
        assert candidate([2, 3, 5, 7, 11]) == 2310
        assert candidate([12, 18]) == 36
    """,
    correct="""
    from math import gcd

    result = 1
    for number in numbers:
        result = result * number // gcd(result, number)
    return result
    """,
    clunky="""
    biggest = max(numbers)
    multiple = biggest
    while True:
        ok = True
        for x in numbers:
            if multiple % x != 0:
                ok = False
        if ok:
            return multiple
        multiple = multiple + biggest
    """,
    subtle="""
    result = 1
    for number in numbers:
        if result % number:
            result *= number
    return result
    """,
    broken="""
    from math import prod

    return prod(numbers)
    """,
)

task(
    "count-change",
    '''
    def count_change(amount: int, coins: list) -> int:
        """Return the number of ways to make amount from coins of the given (distinct, positive)
        values, using each value any number of times. The order of coins does not matter.

        >>> count_change(5, [1, 2, 5])
        4
        """
    ''',
    "count_change",
    """
    def check(candidate):
        assert candidate(5, [1, 2, 5]) == 4
        assert candidate(0, [1, 2]) == 1
        assert candidate(3, [2]) == 0
        assert candidate(10, [10]) == 1
        assert candidate(100, [1, 5, 10, 25, 50]) == 292
    """,
    correct="""
    ways = [1] + [0] * amount
    for coin in coins:
        for total in range(coin, amount + 1):
            ways[total] += ways[total - coin]
    return ways[amount]
    """,
    clunky="""
    def helper(remaining, index):
        if remaining == 0:
            return 1
        if remaining < 0 or index == len(coins):
            return 0
        return helper(remaining - coins[index], index) + helper(remaining, index + 1)

    return helper(amount, 0)
    """,
    subtle="""
    ways = [1] + [0] * amount
    for total in range(1, amount + 1):
        for coin in coins:
            if coin <= total:
                ways[total] += ways[total - coin]
    return ways[amount]
    """,
    broken="""
    return sum(1 for coin in coins if amount % coin == 0)
    """,
)

task(
    "format-bytes",
    '''
    def format_bytes(size: int) -> str:
        """Format a byte count with binary units (B, KiB, MiB, GiB, TiB): whole bytes below
        1024, otherwise one decimal place in the largest unit that keeps the number at least 1.

        >>> format_bytes(1536)
        '1.5 KiB'
        """
    ''',
    "format_bytes",
    """
    def check(candidate):
        assert candidate(0) == "0 B"
        assert candidate(1023) == "1023 B"
        assert candidate(1024) == "1.0 KiB"
        assert candidate(1536) == "1.5 KiB"
        assert candidate(5 * 1024 ** 3) == "5.0 GiB"
        assert candidate(1024 ** 5) == "1024.0 TiB"
    """,
    correct="""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    """,
    clunky="""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    i = 0
    v = size
    while v >= 1024 and i < 4:
        v = v / 1024
        i = i + 1
    if i == 0:
        return str(size) + " " + units[0]
    else:
        return "%.1f" % v + " " + units[i]
    """,
    subtle="""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    value = float(size)
    index = 0
    while value > 1024 and index < len(units) - 1:
        value /= 1024
        index += 1
    return f"{int(value)} B" if index == 0 else f"{value:.1f} {units[index]}"
    """,
    broken="""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    index = len(str(size)) // 3
    return f"{size / 1000 ** index:.1f} {units[index]}"
    """,
)

task(
    "compare-versions",
    '''
    def compare_versions(a: str, b: str) -> int:
        """Compare dotted version strings of non-negative integers: return -1 if a < b, 0 if they
        are equal and 1 if a > b. Missing parts count as 0, so "1.2" equals "1.2.0".

        >>> compare_versions("1.2.10", "1.2.9")
        1
        """
    ''',
    "compare_versions",
    """
    def check(candidate):
        assert candidate("1.2.10", "1.2.9") == 1
        assert candidate("1.2", "1.2.0") == 0
        assert candidate("0.9", "1.0") == -1
        assert candidate("2", "10") == -1
        assert candidate("1.0.1", "1") == 1
        assert candidate("3.01", "3.1") == 0
    """,
    correct="""
    left = [int(part) for part in a.split(".")]
    right = [int(part) for part in b.split(".")]
    width = max(len(left), len(right))
    left += [0] * (width - len(left))
    right += [0] * (width - len(right))
    return (left > right) - (left < right)
    """,
    clunky="""
    pa = a.split(".")
    pb = b.split(".")
    i = 0
    while i < len(pa) or i < len(pb):
        x = 0
        y = 0
        if i < len(pa):
            x = int(pa[i])
        if i < len(pb):
            y = int(pb[i])
        if x > y:
            return 1
        if x < y:
            return -1
        i = i + 1
    return 0
    """,
    subtle="""
    left = [int(part) for part in a.split(".")]
    right = [int(part) for part in b.split(".")]
    return (left > right) - (left < right)
    """,
    broken="""
    return (a > b) - (a < b)
    """,
)

# --- parsing ----------------------------------------------------------------------------------

task(
    "parse-duration",
    '''
    def parse_duration(text: str) -> int:
        """Parse a duration such as "1h30m", "45s" or "2h5s" into seconds. Units are h, m and s,
        each at most once and in that order; anything else raises ValueError.

        >>> parse_duration("1h30m")
        5400
        """
    ''',
    "parse_duration",
    """
    def check(candidate):
        assert candidate("1h30m") == 5400
        assert candidate("45s") == 45
        assert candidate("2h5s") == 7205
        assert candidate("0m") == 0
        assert candidate("10h10m10s") == 36610
        for bad in ["", "5", "1x", "30m1h", "h", "1h1h", "1.5h"]:
            try:
                candidate(bad)
            except ValueError:
                continue
            raise AssertionError(f"{bad!r} must raise ValueError")
    """,
    correct="""
    import re

    match = re.fullmatch(r"(?:(\\d+)h)?(?:(\\d+)m)?(?:(\\d+)s)?", text)
    if not text or match is None:
        raise ValueError(f"not a duration: {text!r}")
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return hours * 3600 + minutes * 60 + seconds
    """,
    clunky="""
    if text == "":
        raise ValueError("empty")
    total = 0
    number = ""
    allowed = ["h", "m", "s"]
    for ch in text:
        if ch.isdigit():
            number = number + ch
        elif ch in allowed:
            if number == "":
                raise ValueError("no number")
            position = allowed.index(ch)
            allowed = allowed[position + 1:]
            if ch == "h":
                total = total + int(number) * 3600
            elif ch == "m":
                total = total + int(number) * 60
            else:
                total = total + int(number)
            number = ""
        else:
            raise ValueError("bad character")
    if number != "":
        raise ValueError("number without unit")
    return total
    """,
    subtle="""
    import re

    parts = re.findall(r"(\\d+)([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    factor = {"h": 3600, "m": 60, "s": 1}
    return sum(int(number) * factor[unit] for number, unit in parts)
    """,
    broken="""
    hours, _, rest = text.partition("h")
    minutes, _, seconds = rest.partition("m")
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds.rstrip("s"))
    """,
)

task(
    "parse-query",
    '''
    def parse_query(query: str) -> dict:
        """Parse a URL query string into a dict of lists of values, in order of appearance.

        A leading "?" is ignored, "+" means a space and %XX escapes are decoded; a key without
        "=" gets the value "". Empty pieces between "&" are skipped.
        >>> parse_query("?a=1&b=two+words&a=%2F")
        {'a': ['1', '/'], 'b': ['two words']}
        """
    ''',
    "parse_query",
    """
    def check(candidate):
        assert candidate("?a=1&b=two+words&a=%2F") == {"a": ["1", "/"], "b": ["two words"]}
        assert candidate("") == {}
        assert candidate("flag&x=1") == {"flag": [""], "x": ["1"]}
        assert candidate("a=1&&b=2") == {"a": ["1"], "b": ["2"]}
        assert candidate("eq=a%3Db=c") == {"eq": ["a=b=c"]}
        assert candidate("k%20ey=v") == {"k ey": ["v"]}
    """,
    correct="""
    from urllib.parse import unquote_plus

    result = {}
    for piece in query.removeprefix("?").split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        result.setdefault(unquote_plus(key), []).append(unquote_plus(value))
    return result
    """,
    clunky="""
    from urllib.parse import parse_qsl
    q = query
    if q.startswith("?"):
        q = q[1:]
    pairs = parse_qsl(q, keep_blank_values=True)
    d = {}
    for pair in pairs:
        k = pair[0]
        v = pair[1]
        if k in d:
            d[k].append(v)
        else:
            d[k] = [v]
    return d
    """,
    subtle="""
    from urllib.parse import unquote

    result = {}
    for piece in query.lstrip("?").split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        result.setdefault(unquote(key), []).append(unquote(value))
    return result
    """,
    broken="""
    return dict(piece.split("=") for piece in query.lstrip("?").split("&"))
    """,
)

task(
    "parse-csv-line",
    '''
    def parse_csv_line(line: str) -> list:
        """Split one line of CSV into fields. Fields are separated by commas; a field in double
        quotes may contain commas, and "" inside quotes stands for one quote character.

        >>> parse_csv_line('a,"b,c",d')
        ['a', 'b,c', 'd']
        """
    ''',
    "parse_csv_line",
    '''
    def check(candidate):
        assert candidate('a,"b,c",d') == ["a", "b,c", "d"]
        assert candidate("") == [""]
        assert candidate("a,,b") == ["a", "", "b"]
        assert candidate('"say ""hi""",x') == ['say "hi"', "x"]
        assert candidate("one") == ["one"]
        assert candidate('x,""') == ["x", ""]
        assert candidate("trailing,") == ["trailing", ""]
    ''',
    correct="""
    fields, current, in_quotes, i = [], [], False, 0
    while i < len(line):
        ch = line[i]
        if in_quotes:
            if ch == '"' and line[i + 1:i + 2] == '"':
                current.append('"')
                i += 1
            elif ch == '"':
                in_quotes = False
            else:
                current.append(ch)
        elif ch == '"':
            in_quotes = True
        elif ch == ",":
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    fields.append("".join(current))
    return fields
    """,
    clunky="""
    import csv
    import io
    rows = list(csv.reader(io.StringIO(line)))
    if len(rows) == 0:
        return [""]
    else:
        result = []
        for field in rows[0]:
            result.append(field)
        return result
    """,
    subtle="""
    fields, current, in_quotes = [], [], False
    for ch in line:
        if ch == '"':
            in_quotes = not in_quotes
        elif ch == "," and not in_quotes:
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
    fields.append("".join(current))
    return fields
    """,
    broken="""
    return line.split(",")
    """,
)

task(
    "valid-ipv4",
    '''
    def is_valid_ipv4(address: str) -> bool:
        """Return True if address is a dotted IPv4 address: four decimal numbers from 0 to 255,
        digits only, without leading zeros (but "0" itself is fine).

        >>> is_valid_ipv4("192.168.0.1")
        True
        """
    ''',
    "is_valid_ipv4",
    """
    def check(candidate):
        assert candidate("192.168.0.1") is True
        assert candidate("0.0.0.0") is True
        assert candidate("255.255.255.255") is True
        assert candidate("256.1.1.1") is False
        assert candidate("1.2.3") is False
        assert candidate("1.2.3.4.5") is False
        assert candidate("01.2.3.4") is False
        assert candidate("1.2.3.-4") is False
        assert candidate("1.2.3.a") is False
        assert candidate("") is False
        assert candidate("1..2.3") is False
    """,
    correct="""
    parts = address.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not part.isdigit() or not part.isascii():
            return False
        if part != "0" and part.startswith("0"):
            return False
        if int(part) > 255:
            return False
    return True
    """,
    clunky="""
    import re
    if re.match(r"^(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})$", address) == None:
        return False
    nums = address.split(".")
    for n in nums:
        if len(n) > 1 and n[0] == "0":
            return False
        if int(n) < 0 or int(n) > 255:
            return False
    return True
    """,
    subtle="""
    parts = address.split(".")
    return len(parts) == 4 and all(part.isdigit() and 0 <= int(part) <= 255 for part in parts)
    """,
    broken="""
    return address.count(".") == 3
    """,
)

task(
    "balanced-brackets",
    '''
    def is_balanced(text: str) -> bool:
        """Return True if the brackets (), [] and {} in text are balanced and properly nested.
        Other characters are ignored.

        >>> is_balanced("f(a[1], {b: 2})")
        True
        >>> is_balanced("([)]")
        False
        """
    ''',
    "is_balanced",
    """
    def check(candidate):
        assert candidate("f(a[1], {b: 2})") is True
        assert candidate("([)]") is False
        assert candidate("") is True
        assert candidate("(((") is False
        assert candidate("())") is False
        assert candidate("}{") is False
        assert candidate("[{()}]()") is True
    """,
    correct="""
    closing = {")": "(", "]": "[", "}": "{"}
    stack = []
    for ch in text:
        if ch in "([{":
            stack.append(ch)
        elif ch in closing:
            if not stack or stack.pop() != closing[ch]:
                return False
    return not stack
    """,
    clunky="""
    s = ""
    for ch in text:
        if ch in "()[]{}":
            s = s + ch
    previous = None
    while previous != s:
        previous = s
        s = s.replace("()", "").replace("[]", "").replace("{}", "")
    return len(s) == 0
    """,
    subtle="""
    pairs = {"(": ")", "[": "]", "{": "}"}
    for opening, closing in pairs.items():
        depth = 0
        for ch in text:
            if ch == opening:
                depth += 1
            elif ch == closing:
                depth -= 1
                if depth < 0:
                    return False
        if depth != 0:
            return False
    return True
    """,
    broken="""
    stack = []
    for ch in text:
        if ch in "([{":
            stack.append(ch)
        elif ch in ")]}":
            stack.pop()
    return stack == []
    """,
)

task(
    "roman-to-int",
    '''
    def roman_to_int(numeral: str) -> int:
        """Convert a Roman numeral (I, V, X, L, C, D, M, with subtractive pairs such as IV and
        CM) to an integer.

        >>> roman_to_int("MCMXCIV")
        1994
        """
    ''',
    "roman_to_int",
    """
    def check(candidate):
        assert candidate("MCMXCIV") == 1994
        assert candidate("III") == 3
        assert candidate("IV") == 4
        assert candidate("IX") == 9
        assert candidate("LVIII") == 58
        assert candidate("MMMCMXCIX") == 3999
        assert candidate("XL") == 40
        assert candidate("V") == 5
    """,
    correct="""
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total = 0
    for i, ch in enumerate(numeral):
        value = values[ch]
        if i + 1 < len(numeral) and values[numeral[i + 1]] > value:
            total -= value
        else:
            total += value
    return total
    """,
    clunky="""
    s = numeral
    s = s.replace("CM", "DCCCC").replace("CD", "CCCC").replace("XC", "LXXXX")
    s = s.replace("XL", "XXXX").replace("IX", "VIIII").replace("IV", "IIII")
    n = 0
    for c in s:
        if c == "M":
            n += 1000
        elif c == "D":
            n += 500
        elif c == "C":
            n += 100
        elif c == "L":
            n += 50
        elif c == "X":
            n += 10
        elif c == "V":
            n += 5
        elif c == "I":
            n += 1
    return n
    """,
    subtle="""
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total = 0
    for i in range(len(numeral) - 1):
        if values[numeral[i]] < values[numeral[i + 1]]:
            total -= values[numeral[i]]
        else:
            total += values[numeral[i]]
    return total + values[numeral[-1]] if len(numeral) > 1 else total
    """,
    broken="""
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    return sum(values[ch] for ch in numeral)
    """,
)

task(
    "int-to-roman",
    '''
    def int_to_roman(number: int) -> str:
        """Write number (1 to 3999) as a Roman numeral, using subtractive pairs (IV, IX, XL, XC,
        CD, CM).

        >>> int_to_roman(1994)
        'MCMXCIV'
        """
    ''',
    "int_to_roman",
    """
    def check(candidate):
        assert candidate(1994) == "MCMXCIV"
        assert candidate(1) == "I"
        assert candidate(4) == "IV"
        assert candidate(49) == "XLIX"
        assert candidate(3999) == "MMMCMXCIX"
        assert candidate(2024) == "MMXXIV"
    """,
    correct="""
    table = [
        (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
        (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
    ]
    parts = []
    for value, symbol in table:
        count, number = divmod(number, value)
        parts.append(symbol * count)
    return "".join(parts)
    """,
    clunky="""
    thousands = ["", "M", "MM", "MMM"]
    hundreds = ["", "C", "CC", "CCC", "CD", "D", "DC", "DCC", "DCCC", "CM"]
    tens = ["", "X", "XX", "XXX", "XL", "L", "LX", "LXX", "LXXX", "XC"]
    ones = ["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX"]
    t = number // 1000
    h = (number % 1000) // 100
    te = (number % 100) // 10
    o = number % 10
    return thousands[t] + hundreds[h] + tens[te] + ones[o]
    """,
    subtle="""
    table = [(1000, "M"), (500, "D"), (100, "C"), (50, "L"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
    parts = []
    for value, symbol in table:
        count, number = divmod(number, value)
        parts.append(symbol * count)
    return "".join(parts)
    """,
    broken="""
    table = {1000: "M", 500: "D", 100: "C", 50: "L", 10: "X", 5: "V", 1: "I"}
    return "".join(table[value] * (number // value) for value in table)
    """,
)

# --- recursion --------------------------------------------------------------------------------

task(
    "unique-permutations",
    '''
    def unique_permutations(s: str) -> list:
        """Return every distinct rearrangement of the characters of s, sorted.

        >>> unique_permutations("aab")
        ['aab', 'aba', 'baa']
        """
    ''',
    "unique_permutations",
    """
    def check(candidate):
        assert candidate("aab") == ["aab", "aba", "baa"]
        assert candidate("") == [""]
        assert candidate("x") == ["x"]
        assert candidate("abc") == ["abc", "acb", "bac", "bca", "cab", "cba"]
        assert len(candidate("aabbc")) == 30
    """,
    correct="""
    if len(s) <= 1:
        return [s]
    results = set()
    for i, ch in enumerate(s):
        for rest in unique_permutations(s[:i] + s[i + 1:]):
            results.add(ch + rest)
    return sorted(results)
    """,
    clunky="""
    import itertools
    all_perms = itertools.permutations(s)
    strings = []
    for p in all_perms:
        joined = "".join(p)
        if joined not in strings:
            strings.append(joined)
    strings.sort()
    return strings
    """,
    subtle="""
    if len(s) <= 1:
        return [s]
    results = []
    for i, ch in enumerate(s):
        for rest in unique_permutations(s[:i] + s[i + 1:]):
            results.append(ch + rest)
    return sorted(results)
    """,
    broken="""
    return sorted(s[i:] + s[:i] for i in range(len(s)))
    """,
)

task(
    "power-set",
    '''
    def power_set(items: list) -> list:
        """Return all subsets of items as lists, each keeping the items' order. Subsets come
        shortest first; subsets of the same length are in the order of the positions they take.

        >>> power_set([1, 2, 3])
        [[], [1], [2], [3], [1, 2], [1, 3], [2, 3], [1, 2, 3]]
        """
    ''',
    "power_set",
    """
    def check(candidate):
        assert candidate([1, 2, 3]) == [[], [1], [2], [3], [1, 2], [1, 3], [2, 3], [1, 2, 3]]
        assert candidate([]) == [[]]
        assert candidate(["a"]) == [[], ["a"]]
        assert len(candidate(list(range(8)))) == 256
        assert candidate([3, 1]) == [[], [3], [1], [3, 1]]
        assert candidate([1, 2, 3, 4])[5:11] == [[1, 2], [1, 3], [1, 4], [2, 3], [2, 4], [3, 4]]
    """,
    correct="""
    from itertools import combinations

    return [list(subset) for size in range(len(items) + 1) for subset in combinations(items, size)]
    """,
    clunky="""
    def subsets_of_size(start, size):
        if size == 0:
            return [[]]
        out = []
        for i in range(start, len(items)):
            for tail in subsets_of_size(i + 1, size - 1):
                out.append([items[i]] + tail)
        return out

    everything = []
    for size in range(0, len(items) + 1):
        for sub in subsets_of_size(0, size):
            everything.append(sub)
    return everything
    """,
    subtle="""
    subsets = [[]]
    for item in items:
        subsets += [subset + [item] for subset in subsets]
    return sorted(subsets, key=len)
    """,
    broken="""
    return [items[:i] for i in range(len(items) + 1)]
    """,
)

task(
    "tree-depth",
    '''
    def tree_depth(tree) -> int:
        """A tree is None (empty) or a tuple (value, left, right) whose left and right are trees.
        Return the number of levels: 0 for None, 1 for a single node.

        >>> tree_depth((1, (2, None, None), None))
        2
        """
    ''',
    "tree_depth",
    """
    def check(candidate):
        assert candidate(None) == 0
        assert candidate((1, None, None)) == 1
        assert candidate((1, (2, None, None), None)) == 2
        assert candidate((1, None, (2, None, (3, (4, None, None), None)))) == 4
        balanced = (1, (2, (4, None, None), (5, None, None)), (3, None, None))
        assert candidate(balanced) == 3
        assert candidate((1, (2, None, None), (3, (4, None, None), None))) == 3
    """,
    correct="""
    if tree is None:
        return 0
    _, left, right = tree
    return 1 + max(tree_depth(left), tree_depth(right))
    """,
    clunky="""
    if tree == None:
        return 0
    level = 0
    current = [tree]
    while len(current) > 0:
        level = level + 1
        following = []
        for node in current:
            if node[1] != None:
                following.append(node[1])
            if node[2] != None:
                following.append(node[2])
        current = following
    return level
    """,
    subtle="""
    if tree is None:
        return 0
    _, left, right = tree
    return 1 + tree_depth(left if left is not None else right)
    """,
    broken="""
    if tree is None:
        return 0
    return 1 + tree_depth(tree[1]) + tree_depth(tree[2])
    """,
)

task(
    "hanoi-moves",
    '''
    def hanoi(n: int, source: str = "A", target: str = "C", spare: str = "B") -> list:
        """Return the moves, as (from, to) tuples, that carry a tower of n discs from source to
        target in the fewest moves, never putting a larger disc on a smaller one.

        >>> hanoi(2)
        [('A', 'B'), ('A', 'C'), ('B', 'C')]
        """
    ''',
    "hanoi",
    """
    def check(candidate):
        assert candidate(0) == []
        assert candidate(1) == [("A", "C")]
        assert candidate(2) == [("A", "B"), ("A", "C"), ("B", "C")]
        assert len(candidate(10)) == 1023
        pegs = {"A": list(range(6, 0, -1)), "B": [], "C": []}
        for source, target in candidate(6):
            disc = pegs[source].pop()
            assert not pegs[target] or pegs[target][-1] > disc
            pegs[target].append(disc)
        assert pegs["C"] == [6, 5, 4, 3, 2, 1]
    """,
    correct="""
    if n == 0:
        return []
    return hanoi(n - 1, source, spare, target) + [(source, target)] + hanoi(n - 1, spare, target, source)
    """,
    clunky="""
    moves = []

    def go(k, a, c, b):
        if k == 0:
            return None
        go(k - 1, a, b, c)
        moves.append((a, c))
        go(k - 1, b, c, a)
        return None

    go(n, source, target, spare)
    return moves
    """,
    subtle="""
    if n == 0:
        return []
    return hanoi(n - 1, source, target, spare) + [(source, target)] + hanoi(n - 1, spare, target, source)
    """,
    broken="""
    return [(source, target)] * (2 ** n - 1)
    """,
)

task(
    "nested-sum",
    '''
    def nested_sum(data) -> int:
        """Add up every int found anywhere inside data, which may be an int or a list, tuple or
        dict (dicts contribute their values, not their keys) nested to any depth. Strings and
        other values count as 0; bools are not numbers here.

        >>> nested_sum([1, (2, 3), {"a": [4], "b": "5"}])
        10
        """
    ''',
    "nested_sum",
    """
    def check(candidate):
        assert candidate([1, (2, 3), {"a": [4], "b": "5"}]) == 10
        assert candidate(7) == 7
        assert candidate([]) == 0
        assert candidate({1: 2, 3: {4: 5}}) == 7
        assert candidate([True, False, 2]) == 2
        assert candidate([[[[[-1]]]], None, 1.5]) == -1
    """,
    correct="""
    if isinstance(data, bool):
        return 0
    if isinstance(data, int):
        return data
    if isinstance(data, dict):
        return sum(nested_sum(value) for value in data.values())
    if isinstance(data, (list, tuple)):
        return sum(nested_sum(item) for item in data)
    return 0
    """,
    clunky="""
    total = 0
    todo = [data]
    while todo:
        x = todo.pop()
        if type(x) == int:
            total = total + x
        elif type(x) == dict:
            for k in x:
                todo.append(x[k])
        elif type(x) == list or type(x) == tuple:
            for y in x:
                todo.append(y)
    return total
    """,
    subtle="""
    if isinstance(data, int):
        return data
    if isinstance(data, dict):
        return sum(nested_sum(value) for value in data.values())
    if isinstance(data, (list, tuple)):
        return sum(nested_sum(item) for item in data)
    return 0
    """,
    broken="""
    if isinstance(data, (list, tuple, dict)):
        return sum(nested_sum(item) for item in data)
    return data if isinstance(data, int) else 0
    """,
)

# --- dates (standard library only) ------------------------------------------------------------

task(
    "is-leap-year",
    '''
    def is_leap_year(year: int) -> bool:
        """Return True if year is a leap year in the Gregorian calendar.

        >>> is_leap_year(2024)
        True
        """
    ''',
    "is_leap_year",
    """
    def check(candidate):
        assert candidate(2024) is True
        assert candidate(2023) is False
        assert candidate(1900) is False
        assert candidate(2000) is True
        assert candidate(2100) is False
        assert candidate(1600) is True
    """,
    correct="""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    """,
    clunky="""
    if year % 400 == 0:
        return True
    else:
        if year % 100 == 0:
            return False
        else:
            if year % 4 == 0:
                return True
            else:
                return False
    """,
    subtle="""
    return year % 4 == 0 and year % 100 != 0
    """,
    broken="""
    return year % 4 = 0
    """,
)

task(
    "days-between",
    '''
    from datetime import date


    def days_between(first: str, second: str) -> int:
        """Return the number of days between two ISO dates ("YYYY-MM-DD"), as a non-negative
        number whichever comes first.

        >>> days_between("2024-02-28", "2024-03-01")
        2
        """
    ''',
    "days_between",
    """
    def check(candidate):
        assert candidate("2024-02-28", "2024-03-01") == 2
        assert candidate("2023-02-28", "2023-03-01") == 1
        assert candidate("2024-03-01", "2024-02-28") == 2
        assert candidate("2000-01-01", "2000-01-01") == 0
        assert candidate("1999-12-31", "2001-01-01") == 367
    """,
    correct="""
    return abs((date.fromisoformat(second) - date.fromisoformat(first)).days)
    """,
    clunky="""
    y1, m1, d1 = first.split("-")
    y2, m2, d2 = second.split("-")
    a = date(int(y1), int(m1), int(d1))
    b = date(int(y2), int(m2), int(d2))
    if a > b:
        difference = a - b
    else:
        difference = b - a
    return int(difference.total_seconds() / 86400)
    """,
    subtle="""
    return (date.fromisoformat(second) - date.fromisoformat(first)).days
    """,
    broken="""
    y1, m1, d1 = map(int, first.split("-"))
    y2, m2, d2 = map(int, second.split("-"))
    return abs((y2 - y1) * 365 + (m2 - m1) * 30 + (d2 - d1))
    """,
)

task(
    "age-on",
    '''
    from datetime import date


    def age_on(born: str, on: str) -> int:
        """Return a person's age in whole years on the ISO date on, given their ISO birth date.
        Someone born on 29 February has their birthday on 1 March in other years.

        >>> age_on("1990-06-15", "2024-06-14")
        33
        """
    ''',
    "age_on",
    """
    def check(candidate):
        assert candidate("1990-06-15", "2024-06-14") == 33
        assert candidate("1990-06-15", "2024-06-15") == 34
        assert candidate("2000-02-29", "2023-02-28") == 22
        assert candidate("2000-02-29", "2023-03-01") == 23
        assert candidate("2000-02-29", "2024-02-29") == 24
        assert candidate("2020-01-01", "2020-12-31") == 0
    """,
    correct="""
    birth, day = date.fromisoformat(born), date.fromisoformat(on)
    age = day.year - birth.year
    if (day.month, day.day) < (birth.month, birth.day):
        age -= 1
    return age
    """,
    clunky="""
    b = date.fromisoformat(born)
    d = date.fromisoformat(on)
    years = 0
    y = b.year + 1
    while True:
        try:
            birthday = date(y, b.month, b.day)
        except ValueError:
            birthday = date(y, 3, 1)
        if birthday <= d:
            years = years + 1
            y = y + 1
        else:
            break
    return years
    """,
    subtle="""
    return (date.fromisoformat(on) - date.fromisoformat(born)).days // 365
    """,
    broken="""
    return int(on[:4]) - int(born[:4])
    """,
)

task(
    "add-business-days",
    '''
    from datetime import date, timedelta


    def add_business_days(start: str, days: int) -> str:
        """Return the ISO date that is days working days (Monday to Friday) after the ISO date
        start; days is zero or more. With days == 0 the answer is start itself.

        >>> add_business_days("2024-05-03", 1)
        '2024-05-06'
        """
    ''',
    "add_business_days",
    """
    def check(candidate):
        assert candidate("2024-05-03", 1) == "2024-05-06"
        assert candidate("2024-05-03", 0) == "2024-05-03"
        assert candidate("2024-05-06", 4) == "2024-05-10"
        assert candidate("2024-05-06", 5) == "2024-05-13"
        assert candidate("2024-05-04", 1) == "2024-05-06"
        assert candidate("2024-12-31", 10) == "2025-01-14"
    """,
    correct="""
    current = date.fromisoformat(start)
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current.isoformat()
    """,
    clunky="""
    d = date.fromisoformat(start)
    counted = 0
    for _ in range(100000):
        if counted == days:
            break
        d = d + timedelta(days=1)
        if d.strftime("%A") not in ["Saturday", "Sunday"]:
            counted = counted + 1
    return str(d)
    """,
    subtle="""
    current = date.fromisoformat(start)
    while days > 0:
        if current.weekday() < 5:
            days -= 1
        current += timedelta(days=1)
    return current.isoformat()
    """,
    broken="""
    return (date.fromisoformat(start) + timedelta(days=days * 7 // 5)).isoformat()
    """,
)

task(
    "weekday-name",
    '''
    from datetime import date


    def weekday_name(day: str) -> str:
        """Return the English name of the weekday of the ISO date day, e.g. "Monday".

        >>> weekday_name("2024-01-01")
        'Monday'
        """
    ''',
    "weekday_name",
    """
    def check(candidate):
        assert candidate("2024-01-01") == "Monday"
        assert candidate("2024-02-29") == "Thursday"
        assert candidate("2000-01-01") == "Saturday"
        assert candidate("1969-07-20") == "Sunday"
        assert candidate("2030-12-31") == "Tuesday"
    """,
    correct="""
    names = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    return names[date.fromisoformat(day).weekday()]
    """,
    clunky="""
    parts = day.split("-")
    d = date(int(parts[0]), int(parts[1]), int(parts[2]))
    n = d.isoweekday()
    if n == 1:
        return "Monday"
    if n == 2:
        return "Tuesday"
    if n == 3:
        return "Wednesday"
    if n == 4:
        return "Thursday"
    if n == 5:
        return "Friday"
    if n == 6:
        return "Saturday"
    return "Sunday"
    """,
    subtle="""
    names = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    return names[date.fromisoformat(day).weekday()]
    """,
    broken="""
    return date.fromisoformat(day).weekday
    """,
)

task(
    "month-calendar-weeks",
    '''
    import calendar


    def weeks_in_month(year: int, month: int) -> int:
        """Return on how many different Monday-to-Sunday weeks the days of the month fall.

        >>> weeks_in_month(2024, 9)
        6
        """
    ''',
    "weeks_in_month",
    """
    def check(candidate):
        assert candidate(2024, 9) == 6
        assert candidate(2021, 2) == 4
        assert candidate(2024, 2) == 5
        assert candidate(2024, 12) == 6
        assert candidate(2023, 10) == 6
        assert candidate(2025, 3) == 6
        assert candidate(2025, 6) == 6
    """,
    correct="""
    first_weekday, length = calendar.monthrange(year, month)
    return (first_weekday + length + 6) // 7
    """,
    clunky="""
    weeks = calendar.Calendar(firstweekday=0).monthdayscalendar(year, month)
    count = 0
    for week in weeks:
        has_day = False
        for d in week:
            if d != 0:
                has_day = True
        if has_day:
            count = count + 1
    return count
    """,
    subtle="""
    first_weekday, length = calendar.monthrange(year, month)
    return (first_weekday + length) // 7 + 1
    """,
    broken="""
    return calendar.monthrange(year, month)[1] // 7
    """,
)


def write() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    ids = [t["id"] for t in TASKS]
    assert len(ids) == len(set(ids)), "duplicate task ids"
    with OUT.open("w", encoding="utf-8") as fh:
        for entry in TASKS:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    print(f"wrote {len(TASKS)} prompts to {OUT}")


def run_one(entry: dict, completion: dict) -> bool:
    program = entry["prompt"] + completion["text"] + "\n\n" + entry["tests"] + f"\n\ncheck({entry['entry_point']})\n"
    try:
        result = subprocess.run([sys.executable, "-I", "-c", program], capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def check(path: Path = OUT) -> int:
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    jobs = [(entry, completion) for entry in entries for completion in entry["completions"]]
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda job: run_one(*job), jobs))
    problems = []
    for (entry, completion), passed in zip(jobs, outcomes, strict=True):
        model = completion["model"]
        if model in MUST_PASS and not passed:
            problems.append(f"{entry['id']}: {model} should pass but fails")
        if model in MUST_FAIL and passed:
            problems.append(f"{entry['id']}: {model} should fail but passes")
    print(f"checked {len(jobs)} completions of {len(entries)} prompts: {len(problems)} problems")
    for problem in problems:
        print("  " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the existing file")
    args = parser.parse_args()
    if not args.check:
        write()
    sys.exit(check())
