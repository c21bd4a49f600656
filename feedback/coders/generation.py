"""Generation: completions from a model version (the Django side of ``training/generate.py``).

A generation request is (prompts, model version, n, sampling parameters). Each sample of it has an
idempotency key, sha256 over (prompt id, model version id, sample index, canonical parameters), stored as
``Completion.request_key``: samples whose key is stored are not generated again, and local sampling is
seeded per key, so a re-run reproduces (and so does not add) even a sample that was dropped as a duplicate
of an existing completion. New completions are paired by the pairing policy and their tests are queued
once the transaction commits.

A local (transformers) model is prompted up to the prompt's last non-blank character, where training puts the
prompt/completion boundary, and writes the rest; ``generate_rows`` maps that back, so a stored completion is
one of the prompt as stored: the sandbox runs prompt + completion (training/boundary.py). A served model
(OpenAI-compatible) gets the prompt as it is.

A model version's ``prompt_prefix`` (e.g. StarCoder's published HumanEval prefix) goes before every prompt it
is sent, and completions stop at the request's ``stop`` list, else the version's own, else the defaults of
the prompt's language (training/languages.py); the stop list used is stored in each completion's params.
A model that ships its own code loads only when its version has ``trust_remote_code`` set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.db import transaction

from feedback import dispatch
from feedback.errors import ServiceError
from feedback.models import Completion, ModelVersion, Prompt, content_hash
from training.generate import GenerationError, generate_rows
from training.generate import load as load_model
from training.languages import stop_sequences
from training.openai_client import OpenAIClient

from .model_input import Row, check_can_fill, rows_for, version_fim_template
from .pairing import pairing_policy_check, pairs_form_for_model
from .seed_settings import stop_sequences_clean

logger = logging.getLogger(__name__)

MAX_N = 16
MAX_NEW_TOKENS = 2048
DEFAULT_PARAMS = {"temperature": 0.8, "top_p": 0.95, "max_new_tokens": 128, "seed": 0, "endpoint": "completions"}
# Parameters that change how the work is done, not what comes out: not part of the idempotency key.
EXECUTION_PARAMS = {"batch_size": 8}
PARAM_NAMES = (*DEFAULT_PARAMS, "stop", *EXECUTION_PARAMS)
ENDPOINTS = ("completions", "chat")
ROWS_PER_CHUNK = 64  # rows generated between commits: a crash loses at most this much work
OPENAI_CONCURRENCY = 4


def _number(params: dict, name: str, low: float, high: float, *, integer: bool = False):
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        kind = "an integer" if integer else "a number"
        raise ServiceError(f"{name} must be {kind} from {low} to {high}; got {value!r}")
    if not low <= value <= high:
        raise ServiceError(f"{name} must be from {low} to {high}; got {value!r}")
    return int(value) if integer else float(value)


def generation_params_clean(params: dict | None) -> dict:
    """Sampling parameters with defaults filled in, checked; ServiceError names the first bad one."""
    if params is not None and not isinstance(params, dict):
        raise ServiceError(f"params must be an object of {', '.join(PARAM_NAMES)}")
    given = dict(params or {})
    unknown = sorted(set(given) - set(PARAM_NAMES))
    if unknown:
        raise ServiceError(f"unknown generation parameter(s) {', '.join(unknown)}; known: {', '.join(PARAM_NAMES)}")
    merged = {**DEFAULT_PARAMS, **EXECUTION_PARAMS, "stop": None, **given}
    clean = {
        "temperature": _number(merged, "temperature", 0, 2),
        "top_p": _number(merged, "top_p", 0, 1),
        "max_new_tokens": _number(merged, "max_new_tokens", 1, MAX_NEW_TOKENS, integer=True),
        "seed": _number(merged, "seed", 0, 2**31 - 1, integer=True),
        "batch_size": _number(merged, "batch_size", 1, 64, integer=True),
    }
    if merged["endpoint"] not in ENDPOINTS:
        raise ServiceError(f"endpoint must be one of {', '.join(ENDPOINTS)}; got {merged['endpoint']!r}")
    clean["endpoint"] = merged["endpoint"]
    stop = merged["stop"]
    if stop is None:
        # Unset: each prompt's language decides (or the model version's own list): see _row_stop.
        clean["stop"] = None
        return clean
    if isinstance(stop, str):
        stop = [stop]
    clean["stop"] = list(dict.fromkeys(stop_sequences_clean(stop, name="stop")))  # order kept, repeats dropped
    return clean


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise ServiceError(f"n must be an integer from 1 to {MAX_N}; got {n!r}")
    return n


def canonical_params(clean: dict) -> str:
    """The parameters that decide the output, as one stable JSON string."""
    return json.dumps(
        {k: v for k, v in clean.items() if k not in EXECUTION_PARAMS}, sort_keys=True, separators=(",", ":")
    )


def request_key(*, prompt_id: int, model_version_id: int, index: int, canonical: str) -> str:
    return hashlib.sha256(f"{prompt_id}\x00{model_version_id}\x00{index}\x00{canonical}".encode()).hexdigest()


def _seed_of(key: str) -> int:
    return int(key[:15], 16)  # 60 bits of the key: the sample's own random stream


def _resolve_target(target: str) -> str:
    """A relative folder is taken from the project root (where `make demo` puts the model)."""
    path = Path(target).expanduser()
    if not path.is_absolute() and (Path(settings.BASE_DIR) / path).is_dir():
        return str(Path(settings.BASE_DIR) / path)
    return target


def _row_stop(version: ModelVersion, clean: dict, prompt: Prompt) -> list[str]:
    """The request's own stop list, else the model version's, else the prompt language's defaults."""
    if clean["stop"] is not None:
        return clean["stop"]
    return stop_sequences(prompt.language, version.stop_sequences or None)


class _Sampler:
    """A backend's sampling function (rows -> one completion text each) and how it fills gaps."""

    def __init__(self, sample: Callable[[list[Row]], list[str]], *, template: str | None, suffix_parameter: bool):
        self.sample, self.template, self.suffix_parameter = sample, template, suffix_parameter


def _sampler(version: ModelVersion, clean: dict) -> _Sampler:
    """Sampling for the version's backend, from rows (model_input.Row: the text the model is sent, the sample's
    key, its stop sequences) to one completion text per row."""
    if version.backend == ModelVersion.Backend.IMPORTED:
        raise ServiceError(f"model version {version.name!r} holds imported completions; it cannot generate")
    if not version.target:
        raise ServiceError(f"model version {version.name!r} has no target (a folder, hub id or served model name)")
    sampling = {
        "temperature": clean["temperature"],
        "top_p": clean["top_p"],
        "max_new_tokens": clean["max_new_tokens"],
    }
    if version.backend == ModelVersion.Backend.TRANSFORMERS:
        target = _resolve_target(version.target)

        def sample_local(rows: list[Row]) -> list[str]:
            texts: list[str] = [""] * len(rows)
            by_stop: dict[tuple, list[int]] = {}
            for i, row in enumerate(rows):
                by_stop.setdefault(row.stop, []).append(i)
            for stop, members in by_stop.items():  # one batch run per stop list (usually one language)
                out = generate_rows(
                    target,
                    [(rows[i].text, _seed_of(rows[i].key)) for i in members],
                    batch_size=clean["batch_size"],
                    stop=list(stop),
                    trust_remote_code=version.trust_remote_code,
                    **sampling,
                )
                for i, text in zip(members, out, strict=True):
                    texts[i] = text
            return texts

        try:
            _, tokenizer = load_model(target, trust_remote_code=version.trust_remote_code)
        except GenerationError as exc:
            raise ServiceError(f"model version {version.name!r}: {exc}") from exc
        template = version_fim_template(version, tokenizer=tokenizer)
        return _Sampler(sample_local, template=template, suffix_parameter=False)

    if version.backend == ModelVersion.Backend.OPENAI:
        client = OpenAIClient(
            base_url=version.base_url or settings.CODEPREF["OPENAI_BASE_URL"],
            model=version.target,
            api_key=os.environ.get(settings.CODEPREF["OPENAI_API_KEY_ENV"]) or None,
            endpoint=clean["endpoint"],
        )

        def sample_remote(rows):
            # One request per sample, seeded by its key: servers that honour seeds (vLLM, OpenAI) then
            # reproduce a sample on a re-run, and servers that ignore n still give one each.
            def one(row: Row) -> str:
                seed = _seed_of(row.key) % (1 << 31)
                return client.complete(row.text, n=1, seed=seed, stop=list(row.stop), suffix=row.suffix, **sampling)[0]

            with ThreadPoolExecutor(max_workers=OPENAI_CONCURRENCY) as pool:
                return list(pool.map(one, rows))

        return _Sampler(sample_remote, template=version_fim_template(version), suffix_parameter=True)
    raise ServiceError(f"model version {version.name!r} has an unknown backend {version.backend!r}")


def _in_chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def completions_generate(
    *,
    prompt_ids: Sequence[int],
    model_version_id: int,
    n: int,
    params: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
    form_pairs: bool = True,
) -> list[Completion]:
    """Generate n completions per prompt with one model version; returns the request's completions.

    Samples already stored for this request are skipped; a sample whose text (after normalising
    whitespace at line ends) equals an existing completion of the same prompt and model is dropped, as is
    an empty one. ``progress(done, total)`` is called after each stored chunk of samples. With ``form_pairs``
    off the caller forms the pairs itself (the demo screens them first).
    """
    n = _check_n(n)
    clean = generation_params_clean(params)
    canonical = canonical_params(clean)
    version = ModelVersion.objects.filter(pk=model_version_id).first()
    if version is None:
        raise ServiceError(f"model version {model_version_id} does not exist")
    prompts = _prompts(prompt_ids)
    pairing_policy_check(settings.CODEPREF["PAIRING_POLICY"])  # a bad setting fails now, not after sampling
    sampler = _sampler_that_fills(version, clean, prompts)

    keys = {
        (pk, i): request_key(prompt_id=pk, model_version_id=version.pk, index=i, canonical=canonical)
        for pk in prompts
        for i in range(n)
    }
    todo = _not_stored(keys)
    if progress:
        progress(0, len(todo))

    stored_params = {k: v for k, v in clean.items() if k not in EXECUTION_PARAMS}
    done = 0
    for chunk in _in_chunks(todo, ROWS_PER_CHUNK):
        new_ids = _store_chunk(
            chunk,
            prompts=prompts,
            version=version,
            sampler=sampler,
            params=stored_params,
            clean=clean,
            form_pairs=form_pairs,
        )
        done += len(chunk)
        logger.info("%s: %d of %d samples generated, %d stored", version.name, done, len(todo), len(new_ids))
        if progress:
            progress(done, len(todo))
    return _completions_of(keys)


def _sampler_that_fills(version: ModelVersion, clean: dict, prompts: dict[int, Prompt]) -> _Sampler:
    """The version's sampler, once it is known to fill every prompt's gap: a gap the model cannot fill is
    refused before anything is sampled."""
    try:
        sampler = _sampler(version, clean)
    except GenerationError as exc:
        raise ServiceError(f"model version {version.name!r}: {exc}") from exc
    check_can_fill(
        version, list(prompts.values()), template=sampler.template, suffix_parameter=sampler.suffix_parameter
    )
    return sampler


def _not_stored(keys: dict[tuple[int, int], str]) -> list[tuple[int, int, str]]:
    """(prompt id, sample index, request key) of the samples whose request key no completion has yet."""
    stored: set[str] = set()
    for chunk in _in_chunks(list(keys.values()), 1000):
        stored.update(Completion.objects.filter(request_key__in=chunk).values_list("request_key", flat=True))
    return [(pk, i, key) for (pk, i), key in keys.items() if key not in stored]


def _completions_of(keys: dict[tuple[int, int], str]) -> list[Completion]:
    """The completions stored under these request keys, by prompt, then sample index."""
    found: list[Completion] = []
    for chunk in _in_chunks(list(keys.values()), 1000):
        found.extend(Completion.objects.filter(request_key__in=chunk))
    return sorted(found, key=lambda c: (c.prompt_id, c.params.get("sample", 0), c.pk))


def _prompts(prompt_ids: Sequence[int]) -> dict[int, Prompt]:
    """The prompts by id, in id order; ServiceError names missing ones."""
    try:
        ids = sorted({int(pk) for pk in prompt_ids})
    except (TypeError, ValueError):
        raise ServiceError("prompt_ids must be a list of integers")
    prompts = Prompt.objects.in_bulk(ids)
    missing = [pk for pk in ids if pk not in prompts]
    if missing:
        raise ServiceError(f"prompt(s) {', '.join(map(str, missing[:10]))} do not exist")
    return {pk: prompts[pk] for pk in ids}


def _store_chunk(
    chunk: list[tuple[int, int, str]],
    *,
    prompts: dict[int, Prompt],
    version: ModelVersion,
    sampler: _Sampler,
    params: dict,
    clean: dict,
    form_pairs: bool = True,
) -> list[int]:
    """Sample one chunk of (prompt id, sample index, request key), store it, pair it, queue its tests."""
    rows = rows_for(
        version,
        [prompts[pk] for pk, _, _ in chunk],
        [key for _, _, key in chunk],
        [tuple(_row_stop(version, clean, prompts[pk])) for pk, _, _ in chunk],
        template=sampler.template,
        suffix_parameter=sampler.suffix_parameter,
    )
    stops = [row.stop for row in rows]
    try:
        texts = sampler.sample(rows)
    except GenerationError as exc:
        raise ServiceError(f"model version {version.name!r}: {exc}") from exc
    # A model can emit NUL, which PostgreSQL cannot store in text: keep the sample, mark the byte.
    texts = [text.replace("\x00", "\ufffd") for text in texts]
    rows = [
        Completion(
            prompt_id=pk,
            model_version=version,
            text=text,
            text_hash=content_hash(text),
            params={**params, "sample": i, "stop": list(stop)},
            request_key=key,
        )
        for (pk, i, key), text, stop in zip(chunk, texts, stops, strict=True)
        if text.strip()
    ]
    with transaction.atomic():
        Completion.objects.bulk_create(rows, ignore_conflicts=True)
        new_ids = list(
            Completion.objects.filter(request_key__in=[r.request_key for r in rows]).values_list("pk", flat=True)
        )
        for pk in sorted({pk for pk, _, _ in chunk}) if form_pairs else ():
            pairs_form_for_model(prompt=prompts[pk], model_version=version)
        # robust: a failing queue (or an eager sandbox run) must not undo what is already committed.
        if new_ids:
            dispatch.enqueue("feedback.tasks.run_tests", completion_ids=new_ids, on_error=_tests_not_queued(new_ids))
    return new_ids


def _tests_not_queued(completion_ids: list[int]):
    def log_it(exc: Exception) -> None:
        # The completions are stored; `manage.py run_tests --all` picks them up once the broker is back.
        logger.warning("tests of %d new completion(s) not queued: %s", len(completion_ids), exc)

    return log_it
