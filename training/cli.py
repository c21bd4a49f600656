"""The stages' command lines: TRL's ``--config recipe.yaml`` plus flags, and stage messages on stderr."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("training")


def parse(parser, argv: Sequence[str] | None = None) -> tuple:
    """TRL's way: ``--config recipe.yaml`` sets defaults, flags override. A bad value exits with status 2
    and one line naming the problem (argparse's convention), not a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--config" in args:
        index = args.index("--config")
        if index + 1 >= len(args):
            parser.error("--config needs a path to a YAML recipe, e.g. training/recipes/tiny/dpo.yaml")
        path = Path(args[index + 1])
        if not path.is_file():
            parser.error(f"--config {path}: no such recipe file (expected e.g. training/recipes/tiny/dpo.yaml)")
    try:
        return tuple(parser.parse_args_and_config(args))
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))


def peek_option(argv: Sequence[str] | None, name: str, default: str) -> str:
    """The value of ``--name`` from the command line, else from the ``--config`` YAML, else the default.

    Needed where the option picks which dataclasses the parser is built from (online RL's algorithm).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    flag = f"--{name}"
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    if "--config" in args:
        index = args.index("--config")
        if index + 1 < len(args) and Path(args[index + 1]).is_file():
            import yaml

            with open(args[index + 1]) as handle:
                config = yaml.safe_load(handle) or {}
            if isinstance(config, dict) and config.get(name) is not None:
                return str(config[name])
    return default


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test's capture, a redirected console), not to the
    stream that was current when the handler was made."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup_logging() -> None:
    """Stage messages on stderr, next to the trainers' progress bars; transformers keeps its own warnings."""
    if not logger.handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("[%(asctime)s %(name)s] %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
