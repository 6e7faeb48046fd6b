"""Shared fixtures for e2e tests: one real local stack (Tansu + patched moto, IAM on) for the whole session.

Usage in any e2e test::

    def test_something(local_stack):
        env = {**os.environ, **local_stack.env_for("owner")}     # start a service as the owner
        kms = local_stack.session_for("sales").client("kms")      # act as the sales consumer
        truth = local_stack.admin_session().client("sqs")         # ground truth, may do anything
        local_stack.bootstrap_servers, local_stack.topics.events, local_stack.queue_url

The stack lives in a temporary state dir, never the user's ``.keyfan/``, and is torn down at the end of the
session; the teardown fails the session if any of its processes survives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keyfan.crypto.subjectkeys import subject_keys_from
from keyfan.departments import DepartmentRegistry
from keyfan.owner import owner_encryptor
from keyfan.settings import OwnerSettings, WireName
from keyfan_tools.local import LocalStack
from keyfan_tools.local.processes import is_our_process, pid_alive, terminate
from keyfan_tools.local.services import ServiceProcess
from tests.e2e.consumer_kit import World

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e is an e2e test, whether or not its module says so."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(
        tmp_path_factory.mktemp("keyfan-state"),
        departments_file=REPO / "departments.toml",
        iac_dir=REPO / "iac",
    )
    stack.up()
    started = stack.state.processes()  # kept in memory: teardown works even if the state dir is gone
    try:
        yield stack
    finally:
        stack.down()
        survivors = [p for p in started if pid_alive(p.pid) and is_our_process(p.pid, p.argv)]
        for proc in survivors:
            terminate(proc.pid, proc.argv)
        assert not survivors, f"local stack processes still running after down: {survivors}"


def _world(stack: LocalStack, wire: WireName) -> World:
    env = stack.env()
    # the owner's defaults, on ``wire``, with the stack's key table
    settings = OwnerSettings.model_construct(wire=wire, subject_key_table=env["KEYFAN_SUBJECT_KEY_TABLE"])
    keys = {"sales": env["KEYFAN_SALES_KEY_ARN"], "finance": env["KEYFAN_FINANCE_KEY_ARN"]}
    session = stack.botocore_session_for("owner")
    return World(
        stack=stack,
        registry=DepartmentRegistry.load(REPO / "departments.toml"),
        encryptor=owner_encryptor(settings, keys, botocore_session=session),
        bootstrap=stack.bootstrap_servers,
        subject_keys=subject_keys_from(settings, botocore_session=session, key_ids=keys),
    )


@pytest.fixture(scope="module")
def world(local_stack: LocalStack) -> World:
    """Records encrypted as the owner encrypts them by default (wire v2), under the owner's role, with the
    owner's own factory (consuming-side tests)."""
    return _world(local_stack, "v2")


@pytest.fixture(scope="module")
def world_v1(local_stack: LocalStack) -> World:
    """The same with ``KEYFAN_WIRE=esdk``: wire v1 records (one signed Encryption SDK message each)."""
    return _world(local_stack, "esdk")


@pytest.fixture
def services() -> Iterator[list[ServiceProcess]]:
    """Every consumer a test starts; SIGKILLed in teardown if still running."""
    started: list[ServiceProcess] = []
    yield started
    for service in started:
        service.kill()
