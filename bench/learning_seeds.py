"""The loop's rise averaged over runs: is it the recipe or one lucky seed?

    python bench/learning.py --rounds 3 --heldout 384 --seed 1 --out var/bench/seed1   # and --seed 2, ...
    python bench/learning_seeds.py var/bench/seed1 var/bench/seed2 var/bench/seed3

Reads each DIR/learning.json (and DIR/heldout.jsonl: the runs must share their held-out prompts, as runs of
bench/learning.py with the same --heldout do). For every arm it prints each run's rise from round 0 to the last
round (the model the loop ends with; not the best round, which would favour lucky runs), then:
- the mean rise over runs with a 95% t interval over runs (the seed-to-seed spread);
- the paired rise pooled over runs: per prompt, the last round's pass rate minus round 0's, averaged over runs,
  with a 95% bootstrap interval drawing whole templates (the prompts' spread).
Writes DIR_OF_FIRST/../seeds.json unless --out names another file.

With ``--against B1 B2 ...`` (runs of another recipe, a control, on the same seeds), it compares the two recipes
instead, arm by arm: runs are matched by their ``--seed``, and a pair whose round 0 differs (another bootstrap
model or report set: not a controlled comparison) is refused. Per seed, the last round's pass@1 of the runs
minus the control's, paired over prompts, with its interval over templates; then the mean difference over seeds
with a 95% t interval over seeds, and the difference pooled over seeds (per prompt, averaged over seeds) with its
interval over templates. Writes DIR_OF_FIRST/../compare.json unless --out names another file.

``--round N`` reads every run as if it had stopped after round N (runs cut short, or one round of longer runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.learning_measure import heldout_templates, rise_interval  # noqa: E402


def load(run: Path) -> tuple[dict, dict[str, str]]:
    try:
        return json.loads((run / "learning.json").read_text()), heldout_templates(run / "heldout.jsonl")
    except OSError as error:
        raise SystemExit(f"{run}: not a bench/learning.py output folder ({error})") from error


def up_to(name: str, result: dict, last: int) -> dict:
    """The run as if it had stopped after round ``last`` (``--round``): every arm's later rounds dropped; a run
    whose main arm never reached that round is refused, so that no run is compared at an earlier round."""
    if not any(r["round"] == last for r in result["rounds"]):
        reached = max((r["round"] for r in result["rounds"]), default=None)
        raise SystemExit(f"{name}: no round {last} (its last round is {reached})")
    cut = {**result, "rounds": [r for r in result["rounds"] if r["round"] <= last]}
    for arm in [k for k in result if k.startswith("control_") and isinstance(result[k], dict)]:
        cut[arm] = {**result[arm], "rounds": [r for r in result[arm].get("rounds") or [] if r["round"] <= last]}
    return cut


def arm_rounds(result: dict, arm: str) -> list[dict]:
    return result["rounds"] if arm == "main" else (result.get(arm) or {}).get("rounds") or []


def t_interval(values: list[float]) -> tuple[float | None, float | None]:
    if len(values) < 2:
        return None, None
    from scipy import stats

    mean, sem = statistics.fmean(values), statistics.stdev(values) / len(values) ** 0.5
    half = stats.t.ppf(0.975, len(values) - 1) * sem
    return round(mean - half, 4), round(mean + half, 4)


def pooled_paired(pairs: list[tuple[dict[str, float], dict[str, float]]], templates: dict[str, str]) -> dict:
    """The paired change pooled over runs: per prompt the runs share, the mean of the ``after`` rates minus the mean
    of the ``before`` rates (each pair: per-prompt pass rates on the same prompts and seeds), with its 95%
    interval over templates."""
    before: dict[str, list[float]] = {}
    after: dict[str, list[float]] = {}
    for first, last in pairs:
        for prompt in set(first) & set(last):
            before.setdefault(prompt, []).append(first[prompt])
            after.setdefault(prompt, []).append(last[prompt])
    counts = {len(v) for v in before.values()}
    shared = {p for p, v in before.items() if len(v) == max(counts)}  # prompts every run evaluated
    return rise_interval(
        {p: statistics.fmean(before[p]) for p in shared}, {p: statistics.fmean(after[p]) for p in shared}, templates
    )


def combine(runs: list[tuple[str, dict, dict[str, str]]], arm: str) -> dict | None:
    per_run, rates = [], []
    templates: dict[str, str] = {}
    for name, result, run_templates in runs:
        rounds = arm_rounds(result, arm)
        if len(rounds) < 2 or not rounds[0].get("by_prompt") or not rounds[-1].get("by_prompt"):
            continue
        templates.update(run_templates)
        first, last = rounds[0], rounds[-1]
        paired = rise_interval(first["by_prompt"], last["by_prompt"], run_templates)
        per_run.append({"run": name, "last_round": last["round"], "r0": first["pass_at_1"],
                        "last": last["pass_at_1"], "rise": paired["value"], "paired": paired})  # fmt: skip
        rates.append((first["by_prompt"], last["by_prompt"]))
    if not per_run:
        return None
    rises = [r["rise"] for r in per_run]
    low, high = t_interval(rises)
    return {"runs": per_run, "mean_rise": round(statistics.fmean(rises), 4), "t_low": low, "t_high": high,
            "pooled_paired": pooled_paired(rates, templates)}  # fmt: skip


def seed_of(result: dict) -> str:
    return str((result.get("settings") or {}).get("seed", "0"))


def compare(runs: list[tuple[str, dict, dict[str, str]]], against: list[tuple[str, dict, dict[str, str]]], arm: str):
    """``runs`` against ``against`` (a control recipe), matched by seed: the last round's pass@1 difference per
    seed, over seeds (t interval) and pooled over prompts (interval over templates). None without pairs."""
    controls = {seed_of(result): (name, result) for name, result, _ in against}
    pairs, rates, templates = [], [], {}
    for name, result, run_templates in runs:
        seed = seed_of(result)
        if seed not in controls:
            raise SystemExit(f"{name}: no run of --seed {seed} among --against")
        control_name, control = controls[seed]
        mine, theirs = arm_rounds(result, arm), arm_rounds(control, arm)
        ends = (mine[0], mine[-1], theirs[0], theirs[-1]) if min(len(mine), len(theirs)) >= 2 else ()
        if not ends or not all(r.get("by_prompt") for r in ends):
            continue
        if mine[0]["by_prompt"] != theirs[0]["by_prompt"]:
            raise SystemExit(
                f"{name} and {control_name}: round 0 differs (another bootstrap model or report set), "
                "so the comparison would not be controlled"
            )
        templates.update(run_templates)
        paired = rise_interval(theirs[-1]["by_prompt"], mine[-1]["by_prompt"], run_templates)
        pairs.append({"seed": seed, "run": name, "control": control_name, "r0": mine[0]["pass_at_1"],
                      "last": mine[-1]["pass_at_1"], "control_last": theirs[-1]["pass_at_1"],
                      "difference": paired["value"], "paired": paired})  # fmt: skip
        rates.append((theirs[-1]["by_prompt"], mine[-1]["by_prompt"]))
    if not pairs:
        return None
    values = [p["difference"] for p in pairs]
    low, high = t_interval(values)
    return {"pairs": pairs, "mean_difference": round(statistics.fmean(values), 4), "t_low": low, "t_high": high,
            "pooled_paired": pooled_paired(rates, templates)}  # fmt: skip


def refuse_repeated_seeds(*sides: list[tuple[str, dict, dict[str, str]]]) -> None:
    """Each seed once on each side of a comparison."""
    for side in sides:
        seeds = [seed_of(result) for _, result, _ in side]
        if twice := sorted({s for s in seeds if seeds.count(s) > 1}):
            raise SystemExit(f"two runs of --seed {', '.join(twice)} on one side: each seed is compared once")


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _over_templates(paired: dict) -> str:
    return f"[{_f(paired['low'])}, {_f(paired['high'])}] over {paired['templates']} templates"


def _overall(arm: str, what: str, unit: str, count: int, mean, low, high, pooled: dict) -> str:
    return (
        f"{arm}: mean {what} over {count} {unit} {_f(mean)} (95% t interval over {unit} [{_f(low)}, {_f(high)}]); "
        f"pooled paired {what} {_f(pooled['value'])} {_over_templates(pooled)} ({pooled['prompts']} prompts)"
    )


def compare_summary(compared: dict[str, dict]) -> str:
    lines = []
    for arm, c in compared.items():
        lines += [
            f"{arm} seed {p['seed']}: r0 {_f(p['r0'])}; last {_f(p['last'])} ({p['run']}) against "
            f"{_f(p['control_last'])} ({p['control']}): {_f(p['difference'])} {_over_templates(p['paired'])}"
            for p in c["pairs"]
        ]
        lines.append(_overall(arm, "difference", "seeds", len(c["pairs"]), c["mean_difference"], c["t_low"],
                              c["t_high"], c["pooled_paired"]))  # fmt: skip
    return "\n".join(lines)


def summary(combined: dict[str, dict]) -> str:
    lines = []
    for arm, c in combined.items():
        lines += [
            f"{arm} {r['run']}: r0 {_f(r['r0'])} -> r{r['last_round']} {_f(r['last'])}, rise {_f(r['rise'])} "
            f"{_over_templates(r['paired'])}"
            for r in c["runs"]
        ]
        lines.append(_overall(arm, "rise", "runs", len(c["runs"]), c["mean_rise"], c["t_low"], c["t_high"],
                              c["pooled_paired"]))  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="bench/learning.py --out folders")
    parser.add_argument("--against", nargs="+", type=Path, default=[], help="a control recipe's runs, same seeds")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (default: beside the runs)")
    parser.add_argument(
        "--round",
        type=int,
        default=None,
        help="compare the models active after this round instead of each run's last (every run must have reached it)",
    )
    args = parser.parse_args(argv)
    if args.round is not None and args.round < 1:
        raise SystemExit("--round must be at least 1 (round 0 is the bootstrap model)")

    def read(run: Path) -> tuple[str, dict, dict[str, str]]:
        result, templates = load(run)
        return str(run), (result if args.round is None else up_to(str(run), result, args.round)), templates

    runs = [read(run) for run in args.runs]
    arms = ["main"] + sorted({k for _, result, _ in runs for k in result if k.startswith("control_")})
    if args.against:
        against = [read(run) for run in args.against]
        refuse_repeated_seeds(runs, against)
        compared = {arm: c for arm in arms if (c := compare(runs, against, arm)) is not None}
        if not compared:
            raise SystemExit("no pair of runs has a round after round 0 with per-prompt pass rates (by_prompt)")
        out = args.out or args.runs[0].resolve().parent / "compare.json"
        out.write_text(json.dumps(compared, indent=2) + "\n")
        print(compare_summary(compared))
        print(f"wrote {out}")
        return 0
    combined = {arm: c for arm in arms if (c := combine(runs, arm)) is not None}
    if not combined:
        raise SystemExit("no run has a round after round 0 with per-prompt pass rates (by_prompt)")
    out = args.out or args.runs[0].resolve().parent / "seeds.json"
    out.write_text(json.dumps(combined, indent=2) + "\n")
    print(summary(combined))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
