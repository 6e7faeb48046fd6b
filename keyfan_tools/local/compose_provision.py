"""``python -m keyfan_tools.local.compose_provision --env-dir DIR``: docker-compose's one-shot provisioner.

Does for compose's moto and Kafka containers what ``keyfan local up`` does for the embedded stack, using
the same code (``LocalStack.attach``): deploy ``iac/`` into moto, create the topics, create the runner,
switch moto's IAM auth on. It then writes one env file per service identity (``owner.env``,
``generator.env``, ``<department>.env``) that the service containers source. Safe to re-run.

Its settings (``ProvisionSettings``) come from the environment compose gives it, like every service's.
"""

from __future__ import annotations

import socket
import sys
import time
import urllib.request
from pathlib import Path

import click
from pydantic import AliasChoices, Field, ValidationError

from keyfan.exceptions import KeyfanError
from keyfan.settings import KafkaSettings
from keyfan_tools.local.environment import RUNNER, identities, identity_env, render_exports
from keyfan_tools.local.stack import LocalStack


class ProvisionSettings(KafkaSettings):
    """What the provisioner reads: compose's moto (``AWS_ENDPOINT_URL``) and Kafka (``KEYFAN_BOOTSTRAP_SERVERS``).

    Both are required: the services' loopback defaults mean nothing inside a container.
    """

    endpoint_url: str = Field(validation_alias=AliasChoices("AWS_ENDPOINT_URL"), min_length=1)
    bootstrap_servers: str = Field(min_length=1)


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
    try:
        settings = ProvisionSettings()  # type: ignore[call-arg]  # required fields come from the environment
    except ValidationError as exc:
        names = [str(e["loc"][0]) for e in exc.errors() if e["loc"]]
        invalid = ", ".join(n if n.startswith("AWS_") else f"KEYFAN_{n.upper()}" for n in names)
        raise click.ClickException(
            f"missing or invalid settings: {invalid} (AWS_ENDPOINT_URL and KEYFAN_BOOTSTRAP_SERVERS must be set)"
        ) from None
    env_dir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(env_dir / "stack", departments_file=settings.departments_file)
    try:
        wait_for(settings.endpoint_url, settings.bootstrap_servers, timeout)
        stack.attach(settings.endpoint_url, settings.bootstrap_servers)
        for path in write_env_files(stack, env_dir):
            click.echo(f"wrote {path}")
    except KeyfanError as exc:
        click.echo(f"provisioning failed: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
