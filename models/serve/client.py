"""HTTP client for the inspection app, used by the Celery worker.

Imports no torch, transformers or ray: the worker must stay light. Every way the call
can fail surfaces as `InferenceUnavailable`, which the worker routes to human review.
"""

from __future__ import annotations

from typing import Any

import httpx

from models import logs
from models.contracts import InferenceResult, InferenceUnavailable, RegionToExplain
from models.serve.wire import explain_body, inspect_request


class HttpInferenceClient:
    """Implements `InferenceClient` over the app's JSON API."""

    def __init__(
        self, url: str, timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def infer(self, *, inspection_id: str, photos: list[bytes]) -> InferenceResult:
        headers, body = inspect_request(inspection_id, photos)
        data = self._post(self.url, content=body, headers=headers)
        try:
            return InferenceResult.from_dict(data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InferenceUnavailable(
                f"inference at {self.url} sent a malformed result: {exc!r}"
            ) from exc

    def explain(
        self,
        *,
        inspection_id: str,
        arm: str,
        photos: list[bytes],
        regions: list[RegionToExplain],
        language: str,
    ) -> list[str]:
        """One generated sentence per region, from the arm that classified the item."""
        url = self.url.rstrip("/") + "/explain"
        data = self._post(url, json=explain_body(inspection_id, arm, photos, regions, language))
        reasons = data.get("reasons") if isinstance(data, dict) else None
        if not isinstance(reasons, list) or len(reasons) != len(regions):
            raise InferenceUnavailable(f"explain at {url} sent a malformed answer")
        return [str(reason) for reason in reasons]

    def _post(self, url: str, **request: Any) -> Any:
        # The request that caused this work (an upload's) names Serve's request too: Serve
        # takes X-Request-ID as its own id, so its log lines carry it.
        headers = dict(request.pop("headers", None) or {})
        if request_id := logs.current().get("request_id"):
            headers[logs.REQUEST_ID_HEADER] = str(request_id)
        try:
            response = self._client.post(url, headers=headers, **request)
        except httpx.TimeoutException as exc:
            raise InferenceUnavailable(f"inference at {url} timed out: {exc}") from exc
        except httpx.HTTPError as exc:
            raise InferenceUnavailable(f"inference at {url} unreachable: {exc}") from exc
        if not response.is_success:
            raise InferenceUnavailable(
                f"inference at {url} answered {response.status_code}: {_error_message(response)}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise InferenceUnavailable(
                f"inference at {url} sent a malformed result: {exc!r}"
            ) from exc

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpInferenceClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def ping(url: str, timeout: float = 2.0, transport: httpx.BaseTransport | None = None) -> bool:
    """True when the app answers its health check with status ok."""
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.get(url)
        return response.is_success and response.json().get("status") == "ok"
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def _error_message(response: httpx.Response) -> str:
    try:
        data: Any = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])[:200]
    return response.text[:200]
