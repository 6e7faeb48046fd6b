"""Our moto server entrypoint: ``python -m keyfan_tools.local.motoserver --port N``.

It exists only to apply our patches (KMS and DynamoDB authorization, SQS; see ``moto_patches``) inside the
server process before moto starts serving; everything else is moto's own ``moto_server``. Beside it: the argv and
environment the stack starts it with, and ``enable_auth``, the switch the stack flips once its users exist.
"""

from __future__ import annotations

import argparse
import http.client
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from keyfan.exceptions import LocalStackError
from keyfan_tools.local.processes import LOCALHOST

MODULE = "keyfan_tools.local.motoserver"


def moto_argv(port: int, python: str | None = None) -> list[str]:
    return [python or sys.executable, "-m", MODULE, "--host", LOCALHOST, "--port", str(port)]


def moto_env(base: dict[str, str]) -> dict[str, str]:
    """Auth starts off (so the stack can create its users) and is switched on later over the moto API.

    Credentials and endpoint variables from the caller's shell are dropped: the server needs none, and an
    ``AWS_ENDPOINT_URL`` pointing at itself would only confuse moto's own internal clients.
    """
    env = {k: v for k, v in base.items() if not k.startswith(("AWS_", "MOTO_", "KEYFAN_"))}
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = "inf"
    return env


def enable_auth(endpoint_url: str | None) -> None:
    """From now on every call is signed and authorized (moto's reset-auth takes a raw body, not a form)."""
    endpoint = urlsplit(endpoint_url or "")
    if not endpoint.hostname:
        raise LocalStackError("the local stack has no moto server")
    conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port or 80, timeout=10)
    try:
        conn.request("POST", "/moto-api/reset-auth", body=b"0", headers={"Content-Type": "text/plain"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise LocalStackError(f"moto refused to turn auth on: HTTP {response.status}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=MODULE, description=__doc__)
    parser.add_argument("--host", default=LOCALHOST)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    from moto import server

    from keyfan_tools.local.moto_patches import apply_patches

    apply_patches()
    server.main(["--host", args.host, "--port", str(args.port)])


if __name__ == "__main__":
    main()
