"""One aiohttp session per component and the mapping of HTTP failures to API errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from roomd.agents.errors import APIConnectionError, APIStatusError, APITimeoutError
from roomd.agents.types import APIConnectOptions, NotGivenOr, is_given

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class HTTPClient:
    """Base URL + key; the session is created on first use inside the running loop."""

    def __init__(self, *, base_url: str, api_key: str | None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._session: aiohttp.ClientSession | None = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers())
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @contextlib.asynccontextmanager
    async def post(
        self, path: str, *, conn_options: APIConnectOptions, json: Any = None, data: Any = None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST and yield the response once its status is 2xx; errors become APIErrors.

        ``conn_options.timeout`` bounds connecting and the wait for the response head
        (streams then run as long as the server keeps sending).
        """
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=conn_options.timeout, sock_read=conn_options.timeout)
        url = f"{self.base_url}{path}"
        try:
            async with self.session().post(url, json=json, data=data, timeout=timeout) as response:
                if response.status >= 400:
                    body = await response.text()
                    raise APIStatusError(
                        f"{url} answered {response.status}: {body[:500]}",
                        status_code=response.status,
                        request_id=response.headers.get("x-request-id"),
                        body=body,
                    )
                yield response
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise APITimeoutError(f"{url}: no answer within {conn_options.timeout}s") from exc
        except aiohttp.ClientResponseError as exc:
            raise APIStatusError(f"{url}: {exc.message}", status_code=exc.status) from exc
        except aiohttp.ClientError as exc:
            raise APIConnectionError(f"{url}: {exc}") from exc


def make_client(base_url: NotGivenOr[str | None], api_key: NotGivenOr[str | None], client: Any = None) -> HTTPClient:
    """Where requests go: an ``openai.AsyncClient``'s own URL and key when one is given (the
    reference accepts one; roomd only reads those two fields), else the arguments, else
    ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``, else OpenAI without a key (local servers need none)."""
    if client is not None:
        return HTTPClient(base_url=str(client.base_url), api_key=getattr(client, "api_key", None) or None)
    url = base_url if is_given(base_url) and base_url else os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    key = api_key if is_given(api_key) and api_key is not None else os.environ.get("OPENAI_API_KEY")
    return HTTPClient(base_url=url, api_key=key)
