"""Sampling completions from an OpenAI-compatible server (vLLM, TGI, llama.cpp server, Ollama), with retries.

Completions are cut at stop sequences the way local sampling cuts them (training.generate.truncate_at_stop).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from training.generate import DEFAULT_STOP, GenerationError, truncate_at_stop

logger = logging.getLogger(__name__)

OPENAI_MAX_STOP = 4  # OpenAI's API takes at most 4 stop sequences; the rest are applied here
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})

# Not the module random: every process that samples seeds it alike (transformers.set_seed), and the retries
# of workers seeded alike would then wait in step.
_jitter = random.SystemRandom()


@dataclass
class OpenAIClient:
    """The legacy completions API (``POST {base_url}/completions``) or, with ``endpoint="chat"``,
    ``/chat/completions``. Retries 429 / 5xx / connection failures with capped exponential backoff."""

    base_url: str
    model: str
    api_key: str | None = None
    endpoint: str = "completions"
    timeout: float = 120.0
    max_retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    session: object = field(default=None, repr=False)  # default: one requests.Session per thread

    def __post_init__(self):

        if self.endpoint not in ("completions", "chat"):
            raise GenerationError(f"endpoint must be 'completions' or 'chat'; got {self.endpoint!r}")
        if not self.base_url.startswith(("http://", "https://")):
            raise GenerationError(f"base URL must start with http:// or https://; got {self.base_url!r}")
        self._local = threading.local()

    @property
    def url(self) -> str:
        path = "chat/completions" if self.endpoint == "chat" else "completions"
        return f"{self.base_url.rstrip('/')}/{path}"

    def complete(
        self,
        prompt: str,
        *,
        n: int = 1,
        temperature: float = 0.8,
        top_p: float = 0.95,
        max_new_tokens: int = 128,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
        suffix: str | None = None,
    ) -> list[str]:
        """n completions of one prompt. Servers that return fewer choices than asked (llama.cpp, Ollama
        ignore n) are asked again for the rest."""
        stop = DEFAULT_STOP if stop is None else list(stop)
        texts: list[str] = []
        for attempt in range(n):  # a server returns at least one choice per request, or we fail below
            body: dict = {
                "model": self.model,
                "max_tokens": max_new_tokens,
                "temperature": temperature,
                "top_p": top_p,
                "n": n - len(texts),
            }
            if stop:
                body["stop"] = stop[:OPENAI_MAX_STOP]
            if seed is not None:
                body["seed"] = (seed + attempt) % (1 << 31)
            if self.endpoint == "chat":
                body["messages"] = [{"role": "user", "content": prompt}]
            else:
                body["prompt"] = prompt
                if suffix is not None:  # fill-in-the-middle, as OpenAI's completions API takes it
                    body["suffix"] = suffix
            choices = self._post(body).get("choices")
            if not isinstance(choices, list) or not choices:
                raise GenerationError(f"{self.url}: the response has no choices")
            for choice in sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0):
                texts.append(truncate_at_stop(self._choice_text(choice), stop))
            if len(texts) >= n:
                break
        return texts[:n]

    def _session(self):
        """The given session, or this thread's own: requests does not promise a Session is thread-safe."""
        import requests

        if self.session is not None:
            return self.session
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _choice_text(self, choice) -> str:
        try:
            text = choice["message"]["content"] if self.endpoint == "chat" else choice["text"]
        except (KeyError, TypeError):
            wanted = "message.content" if self.endpoint == "chat" else "text"
            raise GenerationError(f"{self.url}: a choice without {wanted}")
        if not isinstance(text, str):
            raise GenerationError(f"{self.url}: a choice whose text is not a string")
        return text

    def _post(self, body: dict) -> dict:
        import requests

        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self._session().post(self.url, json=body, headers=headers, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if last:
                    raise GenerationError(f"{self.url}: no answer after {attempt + 1} tries: {exc}") from exc
                self._sleep(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                logger.warning("%s answered %d; retrying", self.url, response.status_code)
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            if response.status_code >= 400:
                raise GenerationError(
                    f"{self.url}: HTTP {response.status_code}"
                    + (f" after {attempt + 1} tries" if attempt else "")
                    + f": {_error_message(response)}"
                )
            try:
                data = response.json()
            except ValueError:
                raise GenerationError(f"{self.url}: the response is not JSON: {response.text[:200]!r}")
            if not isinstance(data, dict):
                raise GenerationError(f"{self.url}: the response is not a JSON object")
            return data
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = min(self.max_backoff, self.backoff * 2**attempt)
        if retry_after:
            try:
                delay = min(self.max_backoff, max(0.0, float(retry_after)))
            except ValueError:
                pass  # an HTTP date: keep our own backoff
        time.sleep(delay * (0.5 + _jitter.random() / 2))  # jitter, so that workers do not retry in step


def _error_message(response) -> str:
    """The server's own words: OpenAI's {"error": {"message": ...}}, vLLM's {"message": ...}, or text."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300] or response.reason or "no message"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
        if data.get("message"):
            return str(data["message"])[:300]
        if data.get("detail"):
            return str(data["detail"])[:300]
    return str(data)[:300]
