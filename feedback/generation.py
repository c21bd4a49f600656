"""Model versions and generation (the Django side of ``training/generate.py``).

A generation request is (prompts, model version, n, sampling parameters). Each sample of it has an
idempotency key, sha256 over (prompt id, model version id, sample index, canonical parameters), stored as
``Completion.request_key``: samples whose key is stored are not generated again, and local sampling is
seeded per key, so a re-run reproduces (and so does not add) even a sample that was dropped as a duplicate
of an existing completion. New completions are paired by the pairing policy and their tests are queued
once the transaction commits.
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
from django.db.models import Q

from training.generate import DEFAULT_STOP, GenerationError, generate_rows
from training.openai_client import OpenAIClient

from . import dispatch
from .models import Completion, ModelVersion, Pair, Prompt, content_hash
from .services import Conflict, ServiceError, pairs_form

logger = logging.getLogger(__name__)

MAX_N = 16
MAX_NEW_TOKENS = 2048
MAX_STOP_SEQUENCES = 16
MAX_STOP_LENGTH = 32
DEFAULT_PARAMS = {"temperature": 0.8, "top_p": 0.95, "max_new_tokens": 128, "seed": 0, "endpoint": "completions"}
# Parameters that change how the work is done, not what comes out: not part of the idempotency key.
EXECUTION_PARAMS = {"batch_size": 8}
PARAM_NAMES = (*DEFAULT_PARAMS, "stop", *EXECUTION_PARAMS)
ENDPOINTS = ("completions", "chat")
PAIRING_POLICIES = ("self", "arena")
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
    merged = {**DEFAULT_PARAMS, **EXECUTION_PARAMS, "stop": list(DEFAULT_STOP), **given}
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
    stop = list(DEFAULT_STOP) if merged["stop"] is None else merged["stop"]
    if isinstance(stop, str):
        stop = [stop]
    if (
        not isinstance(stop, list)
        or len(stop) > MAX_STOP_SEQUENCES
        or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_LENGTH for s in stop)
    ):
        raise ServiceError(
            f"stop must be a list of at most {MAX_STOP_SEQUENCES} strings of 1 to {MAX_STOP_LENGTH} characters"
        )
    clean["stop"] = list(dict.fromkeys(stop))  # order kept, repeats dropped
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


def _sampler(version: ModelVersion, clean: dict) -> Callable[[list[tuple[str, str]]], list[str]]:
    """A function from [(prompt text, request key)] to one completion text per row, for the version's backend."""
    if version.backend == ModelVersion.Backend.IMPORTED:
        raise ServiceError(f"model version {version.name!r} holds imported completions; it cannot generate")
    if not version.target:
        raise ServiceError(f"model version {version.name!r} has no target (a folder, hub id or served model name)")
    sampling = {
        "temperature": clean["temperature"],
        "top_p": clean["top_p"],
        "max_new_tokens": clean["max_new_tokens"],
        "stop": clean["stop"],
    }

    if version.backend == ModelVersion.Backend.TRANSFORMERS:
        target = _resolve_target(version.target)

        def sample_local(rows):
            return generate_rows(
                target, [(text, _seed_of(key)) for text, key in rows], batch_size=clean["batch_size"], **sampling
            )

        return sample_local

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
            def one(row):
                text, key = row
                return client.complete(text, n=1, seed=_seed_of(key) % (1 << 31), **sampling)[0]

            with ThreadPoolExecutor(max_workers=OPENAI_CONCURRENCY) as pool:
                return list(pool.map(one, rows))

        return sample_remote
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
) -> list[Completion]:
    """Generate n completions per prompt with one model version; returns the request's completions.

    Samples already stored for this request are skipped; a sample whose text (after normalising
    whitespace at line ends) equals an existing completion of the same prompt and model is dropped, as is
    an empty one. ``progress(done, total)`` is called after each stored chunk of samples.
    """
    n = _check_n(n)
    clean = generation_params_clean(params)
    canonical = canonical_params(clean)
    version = ModelVersion.objects.filter(pk=model_version_id).first()
    if version is None:
        raise ServiceError(f"model version {model_version_id} does not exist")
    try:
        ids = sorted({int(pk) for pk in prompt_ids})
    except (TypeError, ValueError):
        raise ServiceError("prompt_ids must be a list of integers")
    prompts = Prompt.objects.in_bulk(ids)
    missing = [pk for pk in ids if pk not in prompts]
    if missing:
        raise ServiceError(f"prompt(s) {', '.join(map(str, missing[:10]))} do not exist")
    _check_policy(settings.CODEPREF["PAIRING_POLICY"])  # a bad setting fails now, not after sampling
    try:
        sample = _sampler(version, clean)
    except GenerationError as exc:
        raise ServiceError(f"model version {version.name!r}: {exc}") from exc

    keys = {
        (pk, i): request_key(prompt_id=pk, model_version_id=version.pk, index=i, canonical=canonical)
        for pk in ids
        for i in range(n)
    }
    stored: set[str] = set()
    for chunk in _in_chunks(list(keys.values()), 1000):
        stored.update(Completion.objects.filter(request_key__in=chunk).values_list("request_key", flat=True))
    todo = [(pk, i, key) for (pk, i), key in keys.items() if key not in stored]
    if progress:
        progress(0, len(todo))

    stored_params = {k: v for k, v in clean.items() if k not in EXECUTION_PARAMS}
    done = 0
    for chunk in _in_chunks(todo, ROWS_PER_CHUNK):
        try:
            texts = sample([(prompts[pk].text, key) for pk, _, key in chunk])
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
                params={**stored_params, "sample": i},
                request_key=key,
            )
            for (pk, i, key), text in zip(chunk, texts, strict=True)
            if text.strip()
        ]
        with transaction.atomic():
            Completion.objects.bulk_create(rows, ignore_conflicts=True)
            new_ids = list(
                Completion.objects.filter(request_key__in=[r.request_key for r in rows]).values_list("pk", flat=True)
            )
            for pk in sorted({pk for pk, _, _ in chunk}):
                pairs_form_for_model(prompt=prompts[pk], model_version=version)
            # robust: a failing queue (or an eager sandbox run) must not undo what is already committed.
            if new_ids:
                dispatch.enqueue(
                    "feedback.tasks.run_tests", completion_ids=new_ids, on_error=_tests_not_queued(new_ids)
                )
        done += len(chunk)
        logger.info("%s: %d of %d samples generated, %d stored", version.name, done, len(todo), len(new_ids))
        if progress:
            progress(done, len(todo))

    found: list[Completion] = []
    for chunk in _in_chunks(list(keys.values()), 1000):
        found.extend(Completion.objects.filter(request_key__in=chunk))
    return sorted(found, key=lambda c: (c.prompt_id, c.params.get("sample", 0), c.pk))


def _check_policy(policy: str) -> str:
    if policy not in PAIRING_POLICIES:
        raise ServiceError(f"PAIRING_POLICY must be one of {', '.join(PAIRING_POLICIES)}; got {policy!r}")
    return policy


def pairs_form_for_model(*, prompt: Prompt, model_version: ModelVersion, policy: str | None = None) -> list[Pair]:
    """Pairs for a prompt after a model wrote completions for it, by the pairing policy.

    ``self``: two samples of this model. ``arena``: this model against its parent first, then against
    the other active versions; never two completions of the same model.
    """
    policy = _check_policy(policy or settings.CODEPREF["PAIRING_POLICY"])
    mine = list(Completion.objects.filter(prompt=prompt, model_version=model_version).select_related("prompt"))
    if policy == "self":
        return pairs_form(completions=mine)
    rivals = ModelVersion.objects.filter(Q(pk=model_version.parent_id) | Q(is_active=True)).exclude(
        pk=model_version.pk
    )
    formed: list[Pair] = []
    for rival in sorted(rivals, key=lambda v: (v.pk != model_version.parent_id, v.pk)):
        theirs = list(Completion.objects.filter(prompt=prompt, model_version=rival).select_related("prompt"))
        if theirs and mine:
            formed += pairs_form(completions=mine + theirs, cross_model_only=True)
    return formed


def _tests_not_queued(completion_ids: list[int]):
    def log_it(exc: Exception) -> None:
        # The completions are stored; `manage.py run_tests --all` picks them up once the broker is back.
        logger.warning("tests of %d new completion(s) not queued: %s", len(completion_ids), exc)

    return log_it


# --- the registry ---------------------------------------------------------------------------------


def model_version_register(
    *,
    name: str,
    backend: str,
    target: str,
    base_url: str = "",
    parent: ModelVersion | None = None,
    training_run=None,
    activate: bool = False,
    metrics: dict | None = None,
) -> ModelVersion:
    """Add a model version, or return the one of that name if it is the same generator (idempotent).

    The same name for a different backend or target is a Conflict: completions name their generator.
    """
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ServiceError("name must be 1 to 200 characters")
    if backend not in ModelVersion.Backend.values:
        raise ServiceError(f"backend must be one of {', '.join(ModelVersion.Backend.values)}; got {backend!r}")
    target = (target or "").strip()
    base_url = (base_url or "").strip()
    if backend != ModelVersion.Backend.IMPORTED and not target:
        raise ServiceError(f"a {backend} model version needs a target (a folder, hub id or served model name)")
    if backend == ModelVersion.Backend.OPENAI and base_url and not base_url.startswith(("http://", "https://")):
        raise ServiceError(f"base_url must start with http:// or https://; got {base_url!r}")
    with transaction.atomic():
        version, created = ModelVersion.objects.select_for_update().get_or_create(
            name=name,
            defaults={
                "backend": backend,
                "target": target,
                "base_url": base_url,
                "parent": parent,
                "training_run": training_run,
                "is_active": activate,
                "metrics": metrics or {},
            },
        )
        if not created:
            if (version.backend, version.target, version.base_url) != (backend, target, base_url):
                raise Conflict(
                    f"model version {name!r} already exists for {version.backend} {version.target!r}; "
                    "choose another name"
                )
            changed = []
            if metrics and version.metrics != metrics:
                version.metrics, changed = metrics, [*changed, "metrics"]
            if activate and not version.is_active:
                version.is_active, changed = True, [*changed, "is_active"]
            if changed:
                version.save(update_fields=changed)
    return version


def model_version_activate(*, model_version_id: int, active: bool = True) -> ModelVersion:
    version = ModelVersion.objects.filter(pk=model_version_id).first()
    if version is None:
        raise ServiceError(f"model version {model_version_id} does not exist")
    if active and version.backend == ModelVersion.Backend.IMPORTED:
        raise ServiceError(f"model version {version.name!r} holds imported completions; it cannot be active")
    ModelVersion.objects.filter(pk=version.pk).update(is_active=active)
    version.is_active = active
    return version


def model_version_bootstrap(
    *, out: str | Path | None = None, preset: str = "demo", seed: int = 0, activate: bool = True, **build_options
) -> ModelVersion:
    """Build (or find cached) the bootstrap model and register it as a transformers model version."""
    from training import bootstrap

    out = Path(out or settings.CODEPREF["MODEL"])
    try:
        result = bootstrap.build(out, preset=preset, seed=seed, **build_options)
    except ValueError as exc:
        raise ServiceError(str(exc))
    keep = ("preset", "seed", "steps", "stopped_by", "final_loss", "val_loss", "params", "seconds")
    return model_version_register(
        name=f"bootstrap-{preset}-seed{seed}",
        backend=ModelVersion.Backend.TRANSFORMERS,
        target=str(out),
        activate=activate,
        metrics={"bootstrap": {k: result.info.get(k) for k in keep}},
    )


def model_version_default(*, preset: str = "demo", seed: int = 0) -> ModelVersion:
    """The generator named by settings CODEPREF["MODEL"], registered and active.

    A folder path is where the bootstrap model lives: built there once, unless the folder already holds
    some other transformers model, which is then used as it is. Anything else is a hub id.
    """
    from training.bootstrap import INFO_FILE

    model = settings.CODEPREF["MODEL"]
    path = Path(model).expanduser()
    is_path = path.is_absolute() or model.startswith((".", "~")) or path.is_dir()
    if is_path and not ((path / "config.json").exists() and not (path / INFO_FILE).exists()):
        return model_version_bootstrap(out=path, preset=preset, seed=seed)
    name = f"default:{model}"[:200]
    return model_version_register(name=name, backend=ModelVersion.Backend.TRANSFORMERS, target=model, activate=True)
