"""The prompt/completion boundary, measured: the same SFT with prompts split the old way and the new way.

    python bench/boundary.py                 # bootstrap test model, 60 SFT steps on the example snapshot
    python bench/boundary.py --steps 120 --preset demo

The old way is the rows and the prompting before training/boundary.py (the prompt keeps its trailing newline,
the completion starts with indentation, and generation prompts with the whole prompt). Prints, per variant,
the mean P(end-of-text) right after the held-out prompts as the model is prompted, and how many of the
samples (8 per prompt, stops as in generation) are empty. Target: the new way well under the old on both.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training import bootstrap, boundary, data, generate, sft  # noqa: E402

TINY_SFT = Path(__file__).resolve().parents[1] / "training" / "recipes" / "tiny" / "sft.yaml"


def measure(folder: Path, prompts: list[str]) -> dict:
    import torch

    model, tokenizer = generate.load(str(folder))
    p_eos = []
    for prompt in prompts:
        ids = torch.tensor([tokenizer(boundary.split_prompt(prompt)[0])["input_ids"]])
        with torch.no_grad():
            p_eos.append(float(model(input_ids=ids).logits[0, -1].softmax(-1)[tokenizer.eos_token_id]))
    samples = [s for texts in generate.generate(str(folder), prompts, n=8, max_new_tokens=48) for s in texts]
    return {
        "mean_p_eos_after_prompt": round(sum(p_eos) / len(p_eos), 4),
        "empty_samples": sum(not s.strip() for s in samples),
        "samples": len(samples),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="SFT steps (tiny recipe otherwise).")
    parser.add_argument("--preset", default="test", help="Bootstrap preset of the starting model.")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        base = bootstrap.build(out / "base", preset=args.preset, threads=2).path
        snapshot = data.write_example_snapshot(out / "snapshot")
        prompts = [p["prompt"] for p in data.prompt_rows(data.open_snapshot(snapshot), "test", with_tests_only=True)]
        real_rows, real_split = data.at_token_boundary, boundary.split_prompt
        try:
            for variant in ("old", "new"):
                old = variant == "old"
                data.at_token_boundary = (lambda p, *c: (p, *c)) if old else real_rows
                boundary.split_prompt = (lambda p: (p, "")) if old else real_split
                argv = ["--config", str(TINY_SFT), "--snapshot", str(snapshot), "--output_dir", str(out / variant)]
                argv += ["--model_name_or_path", str(base), "--max_steps", str(args.steps), "--disable_tqdm", "true"]
                sft.main(argv)
                results[variant] = measure(out / variant, prompts)
                print(variant, json.dumps(results[variant]), flush=True)
        finally:
            data.at_token_boundary, boundary.split_prompt = real_rows, real_split
    return results


if __name__ == "__main__":
    main()
