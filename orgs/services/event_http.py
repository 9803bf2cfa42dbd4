"""The HTTP call of an event delivery: one POST, pooled connections per worker process.

No redirect is followed (a 3xx is a failed attempt) and nothing is retried here (the delivery's
backoff decides). In live mode the host is resolved and checked (core.public_urls) before every
call, and the connection goes to that very address, with TLS verified for the URL's host name.
"""

import threading

import urllib3

from core.public_urls import check_public_url, parse_http_url

TIMEOUT = urllib3.Timeout(connect=3.0, read=10.0)
EXCERPT_BYTES = 500

_pools = urllib3.PoolManager(num_pools=50, maxsize=4, retries=False, timeout=TIMEOUT)
_pinned: dict[tuple[str, str, int], urllib3.HTTPSConnectionPool] = {}
_pinned_lock = threading.Lock()


def post(url: str, body: bytes, headers: dict[str, str], *, live: bool) -> tuple[int, str]:
    """POST `body` to `url`; returns (status, the answer's first bytes). Raises on a network error,
    and UnsafeUrl when live mode refuses the address."""
    if live:
        response = _post_pinned(url, body, headers)
    else:
        response = _pools.request(
            "POST", url, body=body, headers=headers, redirect=False, preload_content=False
        )
    try:
        excerpt = response.read(EXCERPT_BYTES, decode_content=True)
    finally:
        response.drain_conn()
        response.release_conn()
    return response.status, excerpt.decode("utf-8", "replace")


def _post_pinned(url: str, body: bytes, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
    address = check_public_url(url)
    _, host, port = parse_http_url(url, require_https=True)
    key = (host, address, port)
    with _pinned_lock:
        pool = _pinned.get(key)
        if pool is None:
            pool = urllib3.HTTPSConnectionPool(
                address,
                port,
                server_hostname=host,
                assert_hostname=host,
                maxsize=4,
                retries=False,
                timeout=TIMEOUT,
            )
            _pinned[key] = pool
    path = url.split(host, 1)[1]
    path = path[path.index("/") :] if "/" in path else "/"
    host_header = host if port == 443 else f"{host}:{port}"
    return pool.urlopen(
        "POST",
        path,
        body=body,
        headers={**headers, "host": host_header},
        redirect=False,
        preload_content=False,
    )
