"""``python -m keyfan.local.compose_provision --env-dir DIR``: docker-compose's one-shot provisioner.

Does for compose's moto and Kafka containers what ``keyfan local up`` does for the embedded stack, using
the same code (``LocalStack.attach``): deploy ``iac/`` into moto, create the topics, create the runner,
switch moto's IAM auth on. It then writes one env file per service identity (``owner.env``,
``generator.env``, ``<department>.env``) that the service containers source. Safe to re-run.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.request
from pathlib import Path

import click

from keyfan.exceptions import KeyfanError
from keyfan.local.environment import RUNNER, identities, identity_env, render_exports
from keyfan.local.stack import LocalStack


def wait_for(endpoint_url: str, bootstrap_servers: str, timeout: float) -> None:
    """Compose's healthchecks should make this instant; it guards a manual run."""
    host, _, port = bootstrap_servers.split(",")[0].rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=3):  # noqa: S310 (compose network)
                pass
            with socket.create_connection((host, int(port)), timeout=3):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise KeyfanError(
                    f"moto at {endpoint_url} or Kafka at {bootstrap_servers} not reachable"
                ) from None
            time.sleep(1)


def write_env_files(stack: LocalStack, env_dir: Path) -> list[Path]:
    state = stack.state
    written = []
    for identity in identities(state):
        if identity == RUNNER:
            continue
        path = env_dir / f"{identity}.env"
        path.write_text(render_exports(identity_env(state, identity)) + "\n", encoding="utf-8")
        path.chmod(0o600)
        written.append(path)
    return written


@click.command()
@click.option(
    "--env-dir", type=click.Path(path_type=Path), required=True, help="Where to write <identity>.env."
)
@click.option("--timeout", type=float, default=120.0, show_default=True)
def main(env_dir: Path, timeout: float) -> None:
    endpoint_url = os.environ.get("AWS_ENDPOINT_URL")
    bootstrap = os.environ.get("KEYFAN_BOOTSTRAP_SERVERS")
    if not endpoint_url or not bootstrap:
        raise click.ClickException("AWS_ENDPOINT_URL and KEYFAN_BOOTSTRAP_SERVERS must be set")
    env_dir.mkdir(parents=True, exist_ok=True)
    departments_file = Path(os.environ.get("KEYFAN_DEPARTMENTS_FILE", "departments.toml"))
    stack = LocalStack(env_dir / "stack", departments_file=departments_file)
    try:
        wait_for(endpoint_url, bootstrap, timeout)
        stack.attach(endpoint_url, bootstrap)
        for path in write_env_files(stack, env_dir):
            click.echo(f"wrote {path}")
    except KeyfanError as exc:
        click.echo(f"provisioning failed: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
