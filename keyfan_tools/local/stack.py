"""The embedded local stack: a Tansu broker and a patched moto server with IAM enforcement on.

``LocalStack(state_dir)`` is the one API for the CLI, the demo and the e2e tests::

    stack = LocalStack(tmp_path / "state")
    stack.up()                          # idempotent: a live stack is detected and left alone
    env = stack.env_for("sales")        # the environment a sales consumer process starts with
    kms = stack.session_for("sales").client("kms")
    stack.down()                        # stops exactly the pids it started, nothing else

A façade: each job lives in its own module. ``lifecycle`` (up, down, attach, re-provision) over ``servers``,
``identities``, ``motoserver`` and ``provision``; ``status`` (health); ``environment`` (the services' env);
``sessions`` (boto3 sessions per identity); ``state`` (what is remembered in the state dir).
"""

from __future__ import annotations

from pathlib import Path

import boto3
import botocore.session

from keyfan_tools.local import lifecycle, sessions
from keyfan_tools.local.config import StackConfig, default_iac_dir, default_state_dir
from keyfan_tools.local.environment import identity_env, role_arn_for, stack_env
from keyfan_tools.local.lifecycle import UpResult
from keyfan_tools.local.provision import Provisioned
from keyfan_tools.local.state import StackState, Topics, require_state
from keyfan_tools.local.status import ProcessStatus, StackStatus, read_status

__all__ = [
    "LocalStack",
    "ProcessStatus",
    "StackStatus",
    "UpResult",
    "default_iac_dir",
    "default_state_dir",
]


class LocalStack:
    """Handle on one local stack, identified by its state directory (several can coexist on one machine)."""

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        departments_file: Path | None = None,
        iac_dir: Path | None = None,
        region: str = "us-east-1",
        name_prefix: str = "keyfan",
    ) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.departments_file = (departments_file or Path("departments.toml")).resolve()
        self.iac_dir = (iac_dir or default_iac_dir()).resolve()
        self.region = region
        self.name_prefix = name_prefix
        # What the last provision did beyond CloudFormation (topics created or re-created), for the CLI.
        self.last_notes: list[str] = []

    @property
    def _config(self) -> StackConfig:
        return StackConfig(
            state_dir=self.state_dir,
            departments_file=self.departments_file,
            iac_dir=self.iac_dir,
            region=self.region,
            name_prefix=self.name_prefix,
        )

    def _provisioned(self, provisioned: Provisioned) -> StackState:
        self.last_notes = provisioned.notes
        return provisioned.state

    # ---------------------------------------------------------------- state
    @property
    def state(self) -> StackState:
        return require_state(self.state_dir)

    def is_up(self) -> bool:
        return self.status().healthy

    # ---------------------------------------------------------------- lifecycle
    def up(self) -> UpResult:
        """Start and provision the stack, or report the live one. Never fatal on a taken port or a dead pid."""
        result, provisioned = lifecycle.up(self._config)
        if provisioned is not None:
            self._provisioned(provisioned)
        return result

    def down(self) -> list[str]:
        """Stop exactly the processes this stack started; returns what was done, line by line."""
        return lifecycle.down(self._config)

    def provision(self) -> StackState:
        """Re-deploy the templates and topics (after editing departments.toml or iac/); idempotent."""
        return self._provisioned(lifecycle.reprovision(self._config))

    def attach(self, endpoint_url: str, bootstrap_servers: str) -> StackState:
        """Provision servers this stack did not start (docker-compose's moto and Kafka); idempotent.

        The first call creates the identities and switches moto's auth on; later calls only re-provision.
        """
        return self._provisioned(lifecycle.attach(self._config, endpoint_url, bootstrap_servers))

    def status(self) -> StackStatus:
        return read_status(self.state_dir)

    # ---------------------------------------------------------------- what other code uses
    def env(self) -> dict[str, str]:
        return stack_env(self.state)

    def env_for(self, identity: str) -> dict[str, str]:
        """The environment of a service running as ``identity`` (owner, generator, a department, runner)."""
        return identity_env(self.state, identity)

    def role_arn(self, identity: str) -> str | None:
        return role_arn_for(self.state, identity)

    def admin_session(self) -> boto3.Session:
        """Ground truth for tests and provisioning: may do anything. Never hand it to a service."""
        return sessions.admin_session(self._config)

    def session_for(self, identity: str) -> boto3.Session:
        """A session as a service of that identity would hold it: the runner's keys, then AssumeRole."""
        return sessions.identity_session(self._config, self.state, identity)

    def botocore_session_for(self, identity: str) -> botocore.session.Session:
        """The same identity as ``session_for``, as the botocore session the Encryption SDK takes."""
        return self.session_for(identity)._session

    @property
    def endpoint_url(self) -> str:
        return self.env()["AWS_ENDPOINT_URL"]

    @property
    def bootstrap_servers(self) -> str:
        return self.env()["KEYFAN_BOOTSTRAP_SERVERS"]

    @property
    def topics(self) -> Topics:
        return self.state.topics

    @property
    def queue_url(self) -> str:
        return self.env()["KEYFAN_QUEUE_URL"]

    @property
    def dlq_url(self) -> str:
        return self.env()["KEYFAN_DLQ_URL"]
