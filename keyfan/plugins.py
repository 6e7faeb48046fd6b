"""The apps the core finds by name, through Python entry points (declared in ``pyproject.toml``).

Tooling (``keyfan_tools``: the bench, ``keyfan generate``) runs a department's handler or the generator
without importing the app that ships it: it asks here. Two groups:

- ``keyfan.handlers``: department name -> a zero-argument factory of that department's ``DomainHandler``
  (``sales = "sales_consumer.handler:SalesHandler"``);
- ``keyfan.generators``: name -> a ``LocalGenerator``, the generator run outside its platform
  (``lambda = "lambda_generator.handler:run_locally"``).

A new department's app declares its handler in its own packaging; nothing here changes. Entry points are
read when asked for, never at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from keyfan.exceptions import ConfigError

if TYPE_CHECKING:
    from keyfan.consumer.handler import DomainHandler
    from keyfan.settings import GeneratorSettings

HANDLERS = "keyfan.handlers"
GENERATORS = "keyfan.generators"
LAMBDA_GENERATOR = "lambda"


class LocalGenerator(Protocol):
    """Generate ``event["count"]`` events and send them as the deployed generator would; return its result.

    Writes nothing to stdout (logs and metrics go to stderr); raises ``KeyfanError`` for a bad request.
    """

    def __call__(self, event: Mapping[str, Any], settings: GeneratorSettings) -> dict[str, Any]: ...


def registered(group: str) -> list[str]:
    """The names registered in ``group``, sorted."""
    return sorted({entry.name for entry in entry_points(group=group)})


def _load(group: str, name: str, what: str) -> Any:
    found = list(entry_points(group=group, name=name))
    if not found:
        known = ", ".join(registered(group)) or "none"
        raise ConfigError(f"no {what} registered for {name!r} (entry points {group!r}: {known})")
    entry = found[0]
    try:
        return entry.load()
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"the {what} registered for {name!r} ({entry.value}) cannot be loaded: {exc}"
        ) from exc


def handler_for(department: str) -> DomainHandler:
    """A new instance of ``department``'s consumer handler, from the ``keyfan.handlers`` entry points."""
    handler: DomainHandler = _load(HANDLERS, department, "consumer handler")()
    if handler.department != department:
        raise ConfigError(
            f"the consumer handler registered for {department!r} is the {handler.department!r} handler"
        )
    return handler


def generator(name: str = LAMBDA_GENERATOR) -> LocalGenerator:
    """The generator registered as ``name`` in the ``keyfan.generators`` entry points."""
    loaded: LocalGenerator = _load(GENERATORS, name, "generator")
    return loaded
