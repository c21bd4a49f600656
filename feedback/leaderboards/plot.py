"""The model leaderboard's plot: each rated model's rating with its simultaneous 95% interval, a PNG (matplotlib Agg).

A file, not inline SVG or a script: the page's CSP allows images from the site and nothing inline.
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def ratings_png(models: list[dict]) -> bytes:
    """The PNG for the rows of a model board that have a rating (best at the top); b"" when none has."""
    rated = [row for row in models if row.get("rating") is not None]
    if not rated:
        return b""
    rated = sorted(rated, key=lambda row: row["rating"])
    figure = Figure(figsize=(7.0, 1.2 + 0.45 * len(rated)), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(rated)))
    ratings = [row["rating"] for row in rated]
    below = [row["rating"] - row["ci_low"] for row in rated]
    above = [row["ci_high"] - row["rating"] for row in rated]
    axes.errorbar(ratings, positions, xerr=[below, above], fmt="o", color="#2563eb", ecolor="#64748b", capsize=4)
    # Names are shown as typed: parse_math off, or a "$" in a name would start math text (a lone one fails).
    axes.set_yticks(positions, [_short(row["model"]) for row in rated], parse_math=False)
    axes.set_xlabel("Bradley-Terry rating (Elo scale), simultaneous 95% intervals (bootstrap max-t)")
    axes.grid(axis="x", alpha=0.3)
    axes.set_ylim(-0.7, len(rated) - 0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _short(name: str, limit: int = 32) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
