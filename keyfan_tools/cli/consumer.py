"""``keyfan consumer``: look at a running department consumer."""

from __future__ import annotations

import json
import urllib.request

import click

from keyfan.exceptions import ConfigError


def state_url(department: str, url: str | None) -> str:
    """Explicit ``--url`` wins; else the department consumer's settings (env) give the web port."""
    if url:
        return url
    from keyfan.settings import ConsumerSettings

    settings = ConsumerSettings(department=department)
    return f"http://127.0.0.1:{settings.web_port}/state"


def fetch_state(url: str, timeout: float = 5.0) -> dict[str, object]:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"not an http(s) URL: {url}")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
        data = json.loads(response.read())
    if not isinstance(data, dict):
        raise ConfigError(f"{url} did not return a JSON object")
    return data


@click.group()
def consumer() -> None:
    """Department consumers."""


@consumer.command()
@click.option("--department", "-d", required=True, help="Department whose consumer to ask.")
@click.option("--url", default=None, help="The consumer's /state URL (default: from KEYFAN_WEB_PORT).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
def status(department: str, url: str | None, as_json: bool) -> None:
    """Counters and aggregates of a running consumer (its /state endpoint)."""
    target = state_url(department, url)
    try:
        data = fetch_state(target)
    except OSError as exc:
        raise click.ClickException(f"cannot reach {target}: {exc}") from exc
    if data.get("department") != department:
        raise click.ClickException(f"{target} is the {data.get('department')!r} consumer, not {department!r}")
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    counters = data.get("counters", {})
    click.echo(f"department      {data['department']}  (group {data.get('consumer_group')})")
    click.echo(f"principal       {data.get('principal')}")
    if isinstance(counters, dict):
        for name in (
            "decrypted",
            "access_denied",
            "dead_lettered",
            "duplicate_events",
            "retries",
            "redelivered",
            "kms_calls",
        ):
            click.echo(f"{name:<15} {counters.get(name, 0)}")
    click.echo(f"denied keys     {', '.join(data.get('denied_keys', []) or []) or '-'}")  # type: ignore[arg-type]
    click.echo("aggregates")
    click.echo(json.dumps(data.get("aggregates", {}), indent=2, sort_keys=True))
