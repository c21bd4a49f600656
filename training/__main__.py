"""One entry point for every stage: ``python -m training <stage> [flags]`` is ``python -m training.<stage> [flags]``.

    python -m training pipeline --config training/recipes/tiny/pipeline.yaml --snapshot DIR --output_dir DIR \\
        --model_name_or_path DIR
    python -m training dpo --config training/recipes/tiny/dpo.yaml --snapshot DIR --output_dir DIR \\
        --model_name_or_path DIR
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = ("sft", "reward", "dpo", "online_rl", "evaluate", "pipeline", "data", "tiny", "bootstrap", "generate")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print(__doc__)
        print(f"commands: {', '.join(COMMANDS)}")
        return 0 if args and args[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"training.{args[0]}")
    sys.argv = [f"python -m training.{args[0]}", *args[1:]]
    outcome = module.main(args[1:])
    return outcome if isinstance(outcome, int) else 0


if __name__ == "__main__":
    sys.exit(main())
