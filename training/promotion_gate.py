"""The promotion gate: does a new policy beat its parent beyond noise, on the same prompts and seeds?

The evaluate stage samples ``n`` completions per held-out prompt from the policy and from its parent with the
same seeds (``training.generate`` seeds each row by (seed, prompt, sample index)), runs their tests, and writes
per prompt the passing count and the degenerate count of each model (``paired`` in its result.json). From
those, ``decide`` promotes the policy only when all of these hold:

1. **Enough evidence**: at least ``min_completions`` completions per model (prompts x samples). The default,
   100, is the least that resolves a 10-point change in pass@1 (the step the learning benchmark aims for per
   round): a pass rate measured on N completions has a 95% interval of up to +-1.96 * sqrt(0.25 / N), that is
   +-0.20 at today's demo size (6 prompts x 4 samples = 24) and +-0.098 at 100.
2. **Not more degenerate**: the policy writes no more degenerate completions than its parent (see
   ``degenerate_reason``), give or take ``DEGENERATE_TOLERANCE`` (1%) of the completions, rounded down: one
   sample in 100-199. Degenerate samples are rare and land on different prompts from run to run (a probe
   round: 5 against 4 of 192, on 5 and 4 different prompts), so an exact "not above" refused a candidate at
   pass@1 0.250 against 0.130 on one sample's noise; the demo's failure (47 of 48 samples empty) is far past it.
3. **Better beyond noise**: its pass@1 is above the parent's and an exact one-sided paired permutation test
   on the prompts gives p < ``alpha`` (0.05). Per prompt, d = policy's passing count - parent's. Under "no
   difference" each nonzero d is as likely to have either sign, so p is the share of the 2^m sign
   assignments of the m nonzero |d| whose sum is at least the observed sum, computed exactly (no sampling,
   no seed). With equal |d| this is the exact sign test; it needs at least 5 prompts that differ to reach
   p < 0.05 (1/32), so a tie (every d = 0, p = 1) never promotes.

**Choosing among candidates.** A cycle may offer several of its stages' models (the recipe's ``select_from``,
e.g. the DPO model beside the online-RL one): the evaluate stage samples each on the same prompts and seeds,
``select_candidate`` picks the one that passes most (among those not failing rule 2), and the gate tests that
one at ``alpha`` divided by the number of candidates (Bonferroni): picking the best of k and then testing it at
``alpha`` would promote a no-better model up to k times as often.

A first model (no parent evaluated) is promoted when it has enough evidence, pass@1 > 0 and a degenerate rate
below 0.5: there is nothing to beat, but a model that never passes or mostly writes junk must not generate.

Django-free: the platform (``feedback/cycles/promotion.py``) calls ``decide_from_evaluation`` on the
evaluation it collects and records the returned ``Decision`` on the training run.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from training.sandbox.program import program_source

MIN_COMPLETIONS = 100
ALPHA = 0.05
FIRST_MODEL_MAX_DEGENERATE = 0.5
DEGENERATE_TOLERANCE = 0.01  # of the completions, rounded down: how many more degenerate samples are noise
REPETITIVE_MIN_LINES = 4


def degenerate_reason(prompt: str, completion: str, style: str = "humaneval") -> str:
    """Why a completion is degenerate ("empty", "unparseable", "repetitive"), or "" when it is not.

    - empty: nothing but whitespace;
    - unparseable: the program the sandbox runs (the prompt + the completion; the completion alone for an
      MBPP prose prompt) does not compile (``compile``, which parses like ``ast.parse`` and also refuses a
      ``return`` outside a function; nothing is run), e.g. a completion cut off mid-statement;
    - repetitive: at least 4 non-blank lines, at most half of them distinct (one line or two in a loop).
    Identical samples of one prompt are not counted: a confident model that is right repeats itself too.
    """
    if not completion.strip():
        return "empty"
    try:
        with warnings.catch_warnings():  # an invalid escape in sampled text warns; it still compiles
            warnings.simplefilter("ignore")
            compile(program_source(prompt=prompt, completion=completion, style=style), "<completion>", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return "unparseable"
    lines = [line.strip() for line in completion.splitlines() if line.strip()]
    if len(lines) >= REPETITIVE_MIN_LINES and len(set(lines)) * 2 <= len(lines):
        return "repetitive"
    return ""


@dataclass(frozen=True)
class Outcomes:
    """One model's evaluation: per prompt, how many of its ``n_samples`` completions passed / were degenerate."""

    prompt_ids: tuple
    n_samples: int
    passed: tuple[int, ...]
    degenerate: tuple[int, ...]

    @property
    def completions(self) -> int:
        return len(self.prompt_ids) * self.n_samples

    @property
    def pass_at_1(self) -> float:
        return sum(self.passed) / self.completions if self.completions else 0.0

    @property
    def degenerate_rate(self) -> float:
        return sum(self.degenerate) / self.completions if self.completions else 0.0


@dataclass(frozen=True)
class Decision:
    """The gate's answer and its evidence; ``summary`` is the line the platform shows."""

    promote: bool
    reason: str
    n_prompts: int = 0
    n_samples: int = 0
    pass_at_1: float | None = None
    parent_pass_at_1: float | None = None
    difference: float | None = None
    p_value: float | None = None
    prompts_better: int = 0
    prompts_worse: int = 0
    degenerate_rate: float | None = None
    parent_degenerate_rate: float | None = None
    min_completions: int = MIN_COMPLETIONS
    alpha: float = ALPHA
    candidates: int = 1  # the models the policy was chosen from; alpha is already divided by it
    chosen_from: str = ""  # those models' pass@1, the chosen one marked (the evaluate stage's ``candidates``)

    @property
    def summary(self) -> str:
        return f"{'promoted' if self.promote else 'kept parent'}: {self.reason}"

    def as_dict(self) -> dict:
        return {**asdict(self), "summary": self.summary}


def paired_permutation_p(differences: Sequence[int]) -> float:
    """One-sided exact p-value that the paired integer differences sum this high by chance (sign flips).

    With the m nonzero |d_i| and A = their sum, a sign assignment's total is 2T - A where T is the sum of the
    |d_i| given a plus sign; T's distribution over the 2^m assignments is a subset-sum count, built exactly.
    """
    sizes = [abs(int(d)) for d in differences if d]
    if not sizes:
        return 1.0
    total = sum(sizes)
    counts = np.zeros(total + 1)
    counts[0] = 1.0
    for size in sizes:  # each step halves: probabilities, never counts beyond float range
        counts[size:] = (counts[size:] + counts[: total + 1 - size].copy()) / 2
        counts[:size] /= 2
    observed = sum(int(d) for d in differences)
    at_least = -(-(observed + total) // 2)  # T >= (observed + A) / 2
    return float(min(1.0, counts[max(0, at_least) :].sum()))


def decide(
    policy: Outcomes,
    parent: Outcomes | None,
    *,
    min_completions: int = MIN_COMPLETIONS,
    alpha: float = ALPHA,
    candidates: int = 1,
) -> Decision:
    """Promote ``policy`` over ``parent`` (None for a first model)? See the module docstring for the rule.
    ``candidates``: how many models ``policy`` was picked from on these same outcomes (alpha is divided by it)."""
    if candidates < 1:
        raise ValueError(f"candidates must be at least 1; got {candidates}")
    alpha, asked = alpha / candidates, alpha
    base = {
        "n_prompts": len(policy.prompt_ids),
        "n_samples": policy.n_samples,
        "pass_at_1": round(policy.pass_at_1, 6),
        "degenerate_rate": round(policy.degenerate_rate, 6),
        "min_completions": min_completions,
        "alpha": alpha,
        "candidates": candidates,
    }
    size = f"{len(policy.prompt_ids)} prompts x {policy.n_samples} samples"
    if policy.completions < min_completions:
        return Decision(
            False, f"too few completions to tell ({size} = {policy.completions} < {min_completions})", **base
        )
    if parent is None:
        return _first_model(policy, base, size)
    if parent.prompt_ids != policy.prompt_ids or parent.n_samples != policy.n_samples:
        return Decision(False, "the policy and its parent were not evaluated on the same prompts and samples", **base)
    differences = [a - b for a, b in zip(policy.passed, parent.passed, strict=True)]
    evidence = {
        **base,
        "parent_pass_at_1": round(parent.pass_at_1, 6),
        "parent_degenerate_rate": round(parent.degenerate_rate, 6),
        "difference": round(policy.pass_at_1 - parent.pass_at_1, 6),
        "p_value": paired_permutation_p(differences),
        "prompts_better": sum(d > 0 for d in differences),
        "prompts_worse": sum(d < 0 for d in differences),
    }
    scores = f"pass@1 {policy.pass_at_1:.3f} vs parent {parent.pass_at_1:.3f}"
    if too_degenerate(policy, parent):
        rates = f"{policy.degenerate_rate:.3f} vs parent {parent.degenerate_rate:.3f}"
        return Decision(False, f"more degenerate completions than its parent ({rates}; {scores})", **evidence)
    if policy.pass_at_1 <= parent.pass_at_1:
        return Decision(False, f"not better than its parent ({scores}, {size})", **evidence)
    tested = f"{scores}, {evidence['difference']:+.3f}, p = {evidence['p_value']:.3g}"
    threshold = f"{alpha:.3g}" + (f" ({asked:g} / {candidates} candidates)" if candidates > 1 else "")
    if evidence["p_value"] >= alpha:
        return Decision(False, f"better within noise ({tested} >= {threshold}, {size})", **evidence)
    rates = f"degenerate {policy.degenerate_rate:.3f} vs {parent.degenerate_rate:.3f}"
    return Decision(True, f"beats its parent ({tested}, {size}; {rates})", **evidence)


def _first_model(policy: Outcomes, base: dict, size: str) -> Decision:
    scores = f"pass@1 {policy.pass_at_1:.3f}, degenerate {policy.degenerate_rate:.3f}, {size}, no parent evaluated"
    if policy.pass_at_1 <= 0:
        return Decision(False, f"a first model must pass some tests ({scores})", **base)
    if policy.degenerate_rate >= FIRST_MODEL_MAX_DEGENERATE:
        return Decision(False, f"a first model must write degenerate completions < half the time ({scores})", **base)
    return Decision(True, f"first model ({scores})", **base)


def too_degenerate(policy: Outcomes, parent: Outcomes) -> bool:
    """Rule 2: more degenerate completions than the parent, beyond the tolerance."""
    return sum(policy.degenerate) - sum(parent.degenerate) > int(DEGENERATE_TOLERANCE * policy.completions)


def select_candidate(candidates: dict[str, Outcomes], parent: Outcomes | None) -> str:
    """The name of the candidate the gate should judge: the most passing completions among those rule 2 lets
    through (all of them if none is), then the fewest degenerate ones, then the first named (a cycle names its
    last stage's model first)."""
    if not candidates:
        raise ValueError("select_candidate needs at least one candidate")
    names = list(candidates)
    eligible = [n for n in names if parent is None or not too_degenerate(candidates[n], parent)] or names
    return min(eligible, key=lambda n: (-sum(candidates[n].passed), sum(candidates[n].degenerate), names.index(n)))


def outcomes_from_evaluation(evaluation: dict, role: str) -> Outcomes | None:
    """``role``'s (policy, parent) outcomes from the evaluate stage's result (its ``paired`` block), or None."""
    paired = evaluation.get("paired") if isinstance(evaluation, dict) else None
    if not isinstance(paired, dict) or role not in (paired.get("passed") or {}):
        return None
    try:
        outcomes = Outcomes(
            prompt_ids=tuple(paired["prompt_ids"]),
            n_samples=int(paired["n_samples"]),
            passed=tuple(int(c) for c in paired["passed"][role]),
            degenerate=tuple(int(c) for c in paired["degenerate"][role]),
        )
    except (KeyError, TypeError, ValueError):
        return None
    lengths = {len(outcomes.prompt_ids), len(outcomes.passed), len(outcomes.degenerate)}
    return outcomes if len(lengths) == 1 else None


def decide_from_evaluation(evaluation: dict, *, min_completions: int = MIN_COMPLETIONS, alpha: float = ALPHA):
    """``decide`` on an evaluate stage's result.json (as the pipeline's summary carries it)."""
    policy = outcomes_from_evaluation(evaluation, "policy")
    if policy is None:
        return Decision(False, "the evaluation has no per-prompt outcomes for the policy (no held-out tests?)")
    parent = outcomes_from_evaluation(evaluation, "parent")
    try:
        candidates = max(1, int(evaluation.get("candidates_compared") or 1))
    except (TypeError, ValueError):
        candidates = 1
    decision = decide(policy, parent, min_completions=min_completions, alpha=alpha, candidates=candidates)
    return replace(decision, chosen_from=_chosen_from(evaluation)) if candidates > 1 else decision


def _chosen_from(evaluation: dict) -> str:
    """'dpo 0.254 (chosen), online_rl 0.181' from the evaluate stage's ``candidates``."""
    shown = []
    for c in evaluation.get("candidates") or []:
        if isinstance(c, dict):
            score = c.get("pass@1")
            text = f"{c.get('name')} {score:.3f}" if isinstance(score, (int, float)) else f"{c.get('name')} -"
            shown.append(text + (" (chosen)" if c.get("selected") else ""))
    return ", ".join(shown)
