"""bench/learning.py's output: learning.json assembled from the arms, the plot, and the targets' verdicts."""

from __future__ import annotations

from pathlib import Path

from bench.learning_measure import rise_interval

PASS_RISE = 0.10  # held-out pass@1 up by 10 points absolute within 3 rounds, outside the 95% intervals
LABEL_ACCURACY = 0.90
REWARD_ACCURACY = 0.90
ROUND_SECONDS = 15 * 60
KEEP = (
    "round",
    "pass_at_1",
    "pass_at_1_low",
    "pass_at_1_high",
    "pass_at_1_low_template",
    "pass_at_1_high_template",
    "by_prompt",
    "promoted",
    "parent",
    "candidate",
    "promotion",
    "gate",
    "measure_seconds",
    "reward_accuracy_before",
    "reward_accuracy_after",
    "reward_accuracy_grounded_before",
    "reward_accuracy_grounded_after",
    "reward_accuracy_examples_alone",
    "reward_heldout_pairs",
    "reward_dropped_too_long",
    "reward_accuracy_heldout_ladder",
    "policy_preference_before",
    "policy_preference_after",
    "dpo_heldout_pairs",
    "rl_reward_curve",
    "rl_tests_pass_rate",
    "sft_examples",
    "label_accuracy",
    "crowd_majority_accuracy",
    "crowd",
    "quality_control",
    "votes_used",
    "completions",
    "completions_passed",
    "completions_empty",
    "generator",
    "cycle",
    "seconds",
    "round_seconds",
)


def _rounds(arm: dict) -> list[dict]:
    """Round 0 (the bootstrap: round 1's parent, same prompts and seeds), then each round's record."""
    records = arm.get("rounds") or []
    out = []
    if records:
        out.append({"round": 0, **records[0]["parent"], "model": "bootstrap"})
    out += [{k: r.get(k) for k in KEEP} for r in records]
    return out


def assemble(
    records: dict[str, dict], *, bootstrap: dict, args: dict, templates: dict[str, str] | None = None
) -> dict:
    """``templates``: each held-out prompt's template (the paired rise's interval draws whole templates)."""
    result: dict = {
        "interval": "95% percentile bootstraps of per-prompt pass rates (2,000 resamples): pass_at_1_low/high draw "
        "prompts, pass_at_1_low/high_template draw whole templates (the verdict's)",
        "bootstrap_model": bootstrap,
        "settings": {k: str(v) for k, v in args.items() if k != "arm"},
        "crowds": {arm: record.get("mix") for arm, record in records.items()},
        "quality_control": args.get("quality_control") or None,
        "rounds": _rounds(records.get("main", {})),
    }
    for arm, record in records.items():
        if arm != "main":
            result[arm] = {"rounds": _rounds(record)}
    result["targets"] = targets(result, templates)
    return result


def _rise(rounds: list[dict], templates: dict[str, str] | None = None) -> dict:
    """The rise of pass@1 from round 0 to the model active after round 3 (or the last round, if fewer); whether
    that round's interval clears round 0's, over
    prompts and over templates (the verdict's: the held-out prompts share templates); and the paired rise's own
    interval over templates (the same prompts and seeds in both rounds)."""
    rise = {"value": None, "round": None, "outside_intervals": False, "outside_prompt_intervals": False}
    if len(rounds) < 2 or rounds[0]["pass_at_1"] is None:
        return rise
    base = rounds[0]
    # The model the loop holds after its first 3 rounds (or fewer), not the best of them: with pass@1 read on a
    # report set the gate never saw, a later round may measure below an earlier one, and picking the best
    # round on the report set would select on it.
    best = rounds[min(3, len(rounds) - 1)]
    if best["pass_at_1"] is None:
        return rise
    by_prompt = best["pass_at_1_low"] > base["pass_at_1_high"]
    verdict, outside = "prompts", by_prompt  # records written before the intervals over templates
    if best.get("pass_at_1_low_template") is not None and base.get("pass_at_1_high_template") is not None:
        verdict, outside = "templates", best["pass_at_1_low_template"] > base["pass_at_1_high_template"]
    rise.update(
        value=round(best["pass_at_1"] - base["pass_at_1"], 4),
        round=best["round"],
        outside_intervals=outside,
        verdict_intervals=verdict,
        outside_prompt_intervals=by_prompt,
    )
    if base.get("by_prompt") and best.get("by_prompt"):
        rise["paired"] = rise_interval(base["by_prompt"], best["by_prompt"], templates or {})
    return rise


def targets(result: dict, templates: dict[str, str] | None = None) -> dict:
    main = result["rounds"][1:]
    rise = _rise(result["rounds"], templates)
    swapped = result.get("control_swapped", {}).get("rounds") or []
    swapped_rise = _rise(swapped, templates)
    worse = [
        r["round"]
        for r in main
        if r["promoted"] and (r["candidate"]["pass_at_1"] or 0) < (r["parent"]["pass_at_1"] or 0)
    ]
    worse += [
        f"{arm} round {r['round']}"
        for arm in result
        if arm.startswith("control_")
        for r in (result[arm].get("rounds") or [])[1:]
        if r["promoted"] and (r["candidate"]["pass_at_1"] or 0) < (r["parent"]["pass_at_1"] or 0)
    ]
    labels = [r["label_accuracy"]["accuracy"] for r in main if r["label_accuracy"]["accuracy"] is not None]
    rewards = [
        r["reward_accuracy_heldout_ladder"]["accuracy"]
        for r in main
        if r["reward_accuracy_heldout_ladder"]["accuracy"] is not None
    ]
    grounded = [
        r["reward_accuracy_heldout_ladder"]["grounded_accuracy"]
        for r in main
        if r["reward_accuracy_heldout_ladder"].get("grounded_accuracy") is not None
    ]
    seconds = [r["round_seconds"] for arm in _arms(result) for r in arm[1:]]
    return {
        "pass_rise": {
            **rise,
            "target": PASS_RISE,
            "met": rise["value"] is not None and rise["value"] >= PASS_RISE and rise["outside_intervals"],
            # The same prompts and seeds before and after: the paired rise's interval over templates is the test
            # that fits. Met when even its lower end is a rise of PASS_RISE.
            "met_paired": (rise.get("paired") or {}).get("low") is not None and rise["paired"]["low"] >= PASS_RISE,
        },
        "swapped_does_not_rise": {
            **swapped_rise,
            "met": bool(swapped)
            and not (
                swapped_rise["value"] is not None
                and swapped_rise["value"] > 0
                and (swapped_rise["outside_intervals"] or swapped_rise["outside_prompt_intervals"])
            ),
        },
        "no_worse_promoted": {"value": worse, "met": not worse},
        "label_accuracy": {
            "value": min(labels) if labels else None,
            "target": LABEL_ACCURACY,
            "met": bool(labels) and min(labels) >= LABEL_ACCURACY,
        },
        "reward_accuracy_heldout": {
            "value": min(rewards) if rewards else None,
            "target": REWARD_ACCURACY,
            "met": bool(rewards) and min(rewards) >= REWARD_ACCURACY,
        },
        "grounded_reward_accuracy_heldout": {
            "value": min(grounded) if grounded else None,
            "target": REWARD_ACCURACY,
            "met": bool(grounded) and min(grounded) >= REWARD_ACCURACY,
        },
        "round_seconds": {
            "value": max(seconds) if seconds else None,
            "target": ROUND_SECONDS,
            "met": bool(seconds) and max(seconds) < ROUND_SECONDS,
        },
    }


def _arms(result: dict) -> list[list[dict]]:
    return [result["rounds"]] + [result[k]["rounds"] for k in result if k.startswith("control_")]


def summary(result: dict) -> str:
    def f(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = []
    for name, rounds in [("main", result["rounds"])] + [
        (k, result[k]["rounds"]) for k in result if k.startswith("control_")
    ]:
        trail = ", ".join(
            f"r{r['round']} {f(r['pass_at_1'])} [{f(r['pass_at_1_low'])}, {f(r['pass_at_1_high'])}]"
            + (
                f" (templates [{f(r['pass_at_1_low_template'])}, {f(r['pass_at_1_high_template'])}])"
                if r.get("pass_at_1_low_template") is not None
                else ""
            )
            + ("" if r["round"] == 0 else (" promoted" if r["promoted"] else " kept"))
            for r in rounds
        )
        lines.append(f"{name}: held-out pass@1 {trail}")
    t = result["targets"]
    rise = t["pass_rise"]
    paired = rise.get("paired") or {}
    lines += [
        f"pass@1 rise within 3 rounds: {f(rise['value'])} (target {rise['target']:.2f}, ratio "
        f"{f(rise['value'] / rise['target']) if rise['value'] is not None else 'n/a'}; outside intervals: "
        f"{rise['outside_intervals']} over {rise.get('verdict_intervals', 'templates')}, "
        f"{rise['outside_prompt_intervals']} over prompts): "
        f"{'MET' if rise['met'] else 'NOT MET'}",
        f"paired rise r0 -> r{rise['round']}: {f(paired.get('value'))} [{f(paired.get('low'))}, "
        f"{f(paired.get('high'))}] over {paired.get('templates')} templates ({paired.get('prompts')} prompts); "
        f"its lower end >= {rise['target']:.2f}: {'MET' if rise.get('met_paired') else 'NOT MET'}"
        if paired
        else "paired rise: n/a",
        (
            f"swapped control rise: {f(t['swapped_does_not_rise']['value'])} (outside intervals: "
            f"{t['swapped_does_not_rise']['outside_intervals']}): does not rise "
            f"{'MET' if t['swapped_does_not_rise']['met'] else 'NOT MET'}"
        )
        if "control_swapped" in result
        else "swapped control: not run (--controls swapped)",
        f"rounds promoting a worse model: {t['no_worse_promoted']['value'] or 'none'}: "
        f"{'MET' if t['no_worse_promoted']['met'] else 'NOT MET'}",
    ]
    for key, what in (
        ("label_accuracy", "honest exported label accuracy (min over rounds)"),
        ("reward_accuracy_heldout", "reward accuracy, held-out test-decided ladder pairs (min)"),
        ("grounded_reward_accuracy_heldout", "the same, grounded in the prompts' docstring examples (min)"),
    ):
        if key not in t:  # a learning.json written before the grounded figure
            continue
        value, target = t[key]["value"], t[key]["target"]
        ratio = f(value / target) if value is not None else "n/a"
        lines.append(
            f"{what}: {f(value)} (target {target:.2f}, ratio {ratio}): {'MET' if t[key]['met'] else 'NOT MET'}"
        )
    lines += _bad_crowd_lines(result)
    sec = t["round_seconds"]
    ratio = f(sec["value"] / sec["target"]) if sec["value"] is not None else "n/a"
    lines.append(
        f"slowest round: {sec['value']}s (target < {sec['target']}s, ratio {ratio}): "
        f"{'MET' if sec['met'] else 'NOT MET'}"
    )
    return "\n".join(lines)


def _bad_crowd_lines(result: dict) -> list[str]:
    """The 25% bad crowd with and without quality control, beside the honest crowd: exported label accuracy (rows
    the tests decide) and the rows exported where the tests cannot decide. There an honest judge says tie or
    both bad, so every such preference row is noise that the bad volunteers put in."""
    if "control_bad25" not in result and "control_bad25_qc" not in result:
        return []
    lines = []
    for arm, what in (("main", "honest crowd"), ("control_bad25_qc", "25% bad, with quality control"),
                      ("control_bad25", "25% bad, without quality control")):  # fmt: skip
        rounds = (result["rounds"] if arm == "main" else (result.get(arm) or {}).get("rounds")) or []
        if len(rounds) > 1:
            labels = [r["label_accuracy"] for r in rounds[1:]]
            accuracy = ", ".join("n/a" if x["accuracy"] is None else f"{x['accuracy']:.3f}" for x in labels)
            noise = ", ".join(f"{x['rows'] - x['test_decided']}/{x['rows']}" for x in labels)
            lines.append(
                f"{what}: exported label accuracy by round {accuracy}; rows the tests do not decide / rows "
                f"exported {noise}"
            )
    return lines


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.6))
    arms = [("main (honest crowd)", result["rounds"])] + [
        (k.replace("_", " "), result[k]["rounds"]) for k in result if k.startswith("control_")
    ]
    for index, (name, rounds) in enumerate(arms):
        shift = (index - (len(arms) - 1) / 2) * 0.08  # side by side: the arms often share a value
        shown = [r for r in rounds if r["pass_at_1"] is not None]
        if not shown:
            continue
        xs = [r["round"] + shift for r in shown]
        ys = [r["pass_at_1"] for r in shown]
        kind = "_template" if all(r.get("pass_at_1_low_template") is not None for r in shown) else ""
        low = [y - r[f"pass_at_1_low{kind}"] for y, r in zip(ys, shown, strict=True)]
        high = [r[f"pass_at_1_high{kind}"] - y for y, r in zip(ys, shown, strict=True)]
        line = ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=4, label=f"{name}: active model")
        tried = [r for r in shown if r.get("candidate")]
        ax.plot(
            [r["round"] + shift for r in tried],
            [r["candidate"]["pass_at_1"] for r in tried],
            linestyle="none",
            marker="x",
            markersize=8,
            color=line[0].get_color(),
            label=f"{name}: candidate (gate kept the parent)"
            if not any(r["promoted"] for r in tried)
            else f"{name}: candidate",
        )
    ax.set_xticks(sorted({r["round"] for _, rounds in arms for r in rounds}))
    ax.set_xlabel("round (0 = bootstrap model)")
    over = "templates" if all(r.get("pass_at_1_low_template") is not None for r in result["rounds"]) else "prompts"
    ax.set_ylabel(f"held-out ladder pass@1 (95% bootstrap over {over})")
    ax.set_title("The closed loop: active model after each round")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
