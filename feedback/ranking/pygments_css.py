"""``feedback/static/feedback/pygments.css``: Pygments' token colours, each moved just far enough from the code
pane's background to read at WCAG AA (4.5:1): "friendly" for light screens, "github-dark" for dark ones.

Regenerate with ``python -m feedback.ranking.pygments_css > feedback/static/feedback/pygments.css``; a test
checks that the file is this module's output and that every colour in it passes.
"""

from __future__ import annotations

import re

from .highlight import CSS_CLASS, stylesheet

LIGHT_CODE_BG = "#fbfbfc"  # site.css --code-bg, light
DARK_CODE_BG = "#0d1117"  # site.css --code-bg, dark
MIN_CONTRAST = 4.5
_TARGET = 4.6  # a little above, so rounding to hex never lands below
_COLOUR = re.compile(r"(?<![-\w])color: (#[0-9A-Fa-f]{3,6})\b")
_BACKGROUND = re.compile(r"background-color: (#[0-9A-Fa-f]{3,6})\b")

HEADER = """/* Pygments token colours for .hl code panes, written by feedback/ranking/pygments_css.py:
   "friendly" for light screens, "github-dark" for dark ones, each colour moved to at least 4.5:1 against its
   background (WCAG AA). Backgrounds come from site.css. */
"""


def rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _luminance(colour: tuple[int, int, int]) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(foreground: str, background: str) -> float:
    """The WCAG contrast ratio of two ``#rrggbb`` / ``#rgb`` colours."""
    a, b = sorted((_luminance(rgb(foreground)), _luminance(rgb(background))), reverse=True)
    return (a + 0.05) / (b + 0.05)


def readable(foreground: str, background: str) -> str:
    """``foreground`` unchanged if it reads on ``background``, else mixed towards black (on a light
    background) or white (on a dark one) in small steps until it does."""
    if contrast(foreground, background) >= MIN_CONTRAST:
        return foreground
    towards = 0 if _luminance(rgb(background)) > 0.18 else 255
    r, g, b = rgb(foreground)
    for step in range(1, 101):
        t = step / 100
        mixed = "#{:02X}{:02X}{:02X}".format(*(round(c + (towards - c) * t) for c in (r, g, b)))
        if contrast(mixed, background) >= _TARGET:
            return mixed
    return "#000000" if towards == 0 else "#FFFFFF"


def _rules(style: str, background: str) -> list[str]:
    rules = []
    for line in stylesheet(style).splitlines():
        if line.startswith(f".{CSS_CLASS} {{"):
            # The pane's own background comes from site.css; keep only a default text colour.
            colour = _COLOUR.search(line)
            if colour:
                rules.append(f".{CSS_CLASS} {{ color: {readable(colour.group(1), background)} }}")
            continue
        if not line.startswith(f".{CSS_CLASS} ."):
            continue
        own = _BACKGROUND.search(line)
        bg = own.group(1) if own else background
        rules.append(_COLOUR.sub(lambda m, bg=bg: f"color: {readable(m.group(1), bg)}", line))
    return rules


def stylesheet_file() -> str:
    light = _rules("friendly", LIGHT_CODE_BG)
    dark = _rules("github-dark", DARK_CODE_BG)
    body = "\n".join(light) + "\n@media (prefers-color-scheme: dark) {\n" + "\n".join(f"  {r}" for r in dark)
    return HEADER + body + "\n}\n"


if __name__ == "__main__":
    print(stylesheet_file(), end="")
