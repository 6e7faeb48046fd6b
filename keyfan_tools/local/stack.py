"""The embedded local stack: a Tansu broker and a patched moto server with IAM enforcement on.

``LocalStack(state_dir)`` is the one API for the CLI, the demo and the e2e tests::

    stack = LocalStack(tmp_path / "state")
    stack.up()                          # idempotent: a live stack is detected and left alone
    env = stack.env_for("sales")        # the environment a sales consumer process starts with
    kms = stack.session_for("sales").client("kms")
    stack.down()                        # stops exactly the pids it started, nothing else

Start-up order: processes on free ports, the two IAM users with auth still off, auth on, then everything else
(CloudFormation from ``iac/``, the runner's AssumeRole grant, topics) as the admin user, exactly as on AWS.
"""

from __future__ import annotations

import fcntl
import http.client
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
from pydantic import BaseModel, ConfigDict, Field

from keyfan.aws import session_for
from keyfan.departments import DepartmentRegistry
from keyfan.exceptions import LocalStackError
from keyfan.settings import KeyfanSettings
from keyfan_tools.local import broker, identities, motoserver, processes, provision, topics
from keyfan_tools.local.environment import identity_env, role_arn_for, stack_env
from keyfan_tools.local.state import (
    DEFAULT_STATE_DIR,
    STATE_DIR_ENV,
    AccessKey,
    ProcessInfo,
    StackState,
    Topics,
    clear_state,
    load_admin,
    load_state,
    save_admin,
    save_state,
)

AWS_CONFIG_FILE = "aws-config"
_PORT_ATTEMPTS = 3
_READY_TIMEOUT = 30.0


class ProcessStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    pid: int
    port: int
    alive: bool
    ours: bool
    listening: bool
    log: Path

    @property
    def healthy(self) -> bool:
        return self.alive and self.ours and self.listening


class StackStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    state_dir: Path
    recorded: bool
    processes: list[ProcessStatus] = Field(default_factory=list)
    provisioned: bool = False
    endpoint_url: str | None = None
    bootstrap_servers: str | None = None
    departments: list[str] = Field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return (
            self.recorded
            and self.provisioned
            and len(self.processes) == 2
            and all(p.healthy for p in self.processes)
        )

    def render(self) -> str:
        if not self.recorded:
            return f"local stack: not running (state dir {self.state_dir})"
        lines = [f"local stack: {'healthy' if self.healthy else 'UNHEALTHY'} (state dir {self.state_dir})"]
        for p in self.processes:
            what = (
                "healthy"
                if p.healthy
                else ("not ours" if p.alive and not p.ours else "dead" if not p.alive else "not listening")
            )
            lines.append(f"  {p.name:<6} pid {p.pid:<8} 127.0.0.1:{p.port:<6} {what}  log {p.log}")
        lines.append(f"  endpoint  {self.endpoint_url}   bootstrap {self.bootstrap_servers}")
        lines.append(f"  departments: {', '.join(self.departments) or '(not provisioned)'}")
        return "\n".join(lines)


class UpResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    started: bool
    notes: list[str] = Field(default_factory=list)
    seconds: float = 0.0


def default_state_dir(environ: dict[str, str] | None = None) -> Path:
    """``KEYFAN_STATE_DIR`` or ``./.keyfan``; read by entrypoints only."""
    env = os.environ if environ is None else environ
    return Path(env.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR).resolve()


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_iac_dir() -> Path:
    local = Path.cwd() / "iac"
    return local if local.is_dir() else _repo_root() / "iac"


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

    # ---------------------------------------------------------------- state
    @property
    def state(self) -> StackState:
        state = load_state(self.state_dir)
        if state is None:
            raise LocalStackError(f"no local stack in {self.state_dir} (run `keyfan local up`)")
        return state

    def is_up(self) -> bool:
        return self.status().healthy

    # ---------------------------------------------------------------- lifecycle
    def up(self) -> UpResult:
        """Start and provision the stack, or report the live one. Never fatal on a taken port or a dead pid."""
        began = time.monotonic()
        with self._locked():
            notes: list[str] = []
            recorded = load_state(self.state_dir)
            if recorded is not None:
                status = self._status(recorded)
                if status.healthy:
                    return UpResult(started=False, notes=[f"already running: {status.render()}"])
                broken = [f"{p.name} pid {p.pid}" for p in status.processes if not p.healthy]
                notes.append(
                    f"recorded stack is unhealthy ({', '.join(broken) or 'not provisioned'}): restarting cleanly"
                )
                notes += self._stop(recorded)
                self._clear()
            try:
                self._start(notes)
            except BaseException:
                leftover = load_state(self.state_dir)
                if leftover is not None:
                    self._stop(leftover)
                self._clear()
                raise
        return UpResult(started=True, notes=notes, seconds=round(time.monotonic() - began, 2))

    def down(self) -> list[str]:
        """Stop exactly the processes this stack started; returns what was done, line by line."""
        with self._locked():
            recorded = load_state(self.state_dir)
            if recorded is None:
                return [f"no local stack recorded in {self.state_dir}"]
            notes = self._stop(recorded)
            self._clear()
            return notes

    def provision(self) -> StackState:
        """Re-deploy the templates and topics (after editing departments.toml or iac/); idempotent."""
        with self._locked():
            state = self.state
            status = self._status(state)
            if not all(p.healthy for p in status.processes) or len(status.processes) != 2:
                raise LocalStackError(f"the local stack is not healthy:\n{status.render()}")
            return self._provision(state)

    def status(self) -> StackStatus:
        recorded = load_state(self.state_dir)
        if recorded is None:
            return StackStatus(state_dir=self.state_dir, recorded=False)
        return self._status(recorded)

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
        admin = load_admin(self.state_dir)
        return boto3.Session(botocore_session=self._botocore_session(admin), region_name=self.region)

    def session_for(self, identity: str) -> boto3.Session:
        """A session as a service of that identity would hold it: the runner's keys, then AssumeRole."""
        state = self.state
        if state.runner is None:
            raise LocalStackError("the local stack has no runner identity")
        base = self._botocore_session(state.runner)
        role = role_arn_for(state, identity)
        if role is None:
            return boto3.Session(botocore_session=base, region_name=state.region)
        settings = KeyfanSettings.model_validate({"role_arn": role, "AWS_REGION": state.region})
        return session_for(settings, base=base, session_name=f"keyfan-local-{identity}")

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

    # ---------------------------------------------------------------- internals
    def _registry(self) -> DepartmentRegistry:
        return DepartmentRegistry.load(self.departments_file)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Two `up`s racing (two terminals, two test sessions on one dir) must not start two stacks."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _clear(self) -> None:
        clear_state(self.state_dir)
        (self.state_dir / AWS_CONFIG_FILE).unlink(missing_ok=True)

    def _status(self, state: StackState) -> StackStatus:
        found = []
        for proc in state.processes():
            alive = processes.pid_alive(proc.pid)
            ours = alive and processes.is_our_process(proc.pid, proc.argv)
            found.append(
                ProcessStatus(
                    name=proc.name,
                    pid=proc.pid,
                    port=proc.port,
                    alive=alive,
                    ours=ours,
                    listening=ours and processes.listens_on(proc.pid, proc.port),
                    log=proc.log,
                )
            )
        return StackStatus(
            state_dir=self.state_dir,
            recorded=True,
            processes=found,
            provisioned=state.provisioned_at is not None,
            endpoint_url=state.endpoint_url,
            bootstrap_servers=state.bootstrap_servers,
            departments=sorted(state.departments),
        )

    def _stop(self, state: StackState) -> list[str]:
        notes = []
        for proc in state.processes():
            if not processes.pid_alive(proc.pid):
                notes.append(f"{proc.name} (pid {proc.pid}) was not running")
            elif not processes.is_our_process(proc.pid, proc.argv):
                notes.append(f"{proc.name}: pid {proc.pid} now runs something else; left alone")
            elif processes.terminate(proc.pid, proc.argv):
                notes.append(f"stopped {proc.name} (pid {proc.pid}, port {proc.port})")
        return notes

    def _spawn(self, name: str, argv_for: Callable[[int], list[str]], env: dict[str, str]) -> ProcessInfo:
        """Start on a free port; if another process grabs the port first, try another one."""
        log = self.state_dir / "logs" / f"{name}.log"
        last: LocalStackError | None = None
        for _ in range(_PORT_ATTEMPTS):
            port = processes.free_port()
            if processes.port_open(port):
                last = LocalStackError(f"port {port} is already taken")
                continue
            argv = argv_for(port)
            pid = processes.spawn_detached(argv, log, env)
            info = ProcessInfo(name=name, pid=pid, port=port, argv=argv, log=log)
            try:
                processes.wait_for_port(port, pid=pid, timeout=_READY_TIMEOUT, log=log)
            except LocalStackError as exc:
                processes.terminate(pid, argv)
                last = exc
                continue
            return info
        raise LocalStackError(f"could not start {name} after {_PORT_ATTEMPTS} attempts: {last}")

    def _start(self, notes: list[str]) -> None:
        registry = self._registry()  # fail on a bad registry before starting anything
        base_env = dict(os.environ)
        moto = self._spawn("moto", motoserver.moto_argv, motoserver.moto_env(base_env))
        state = StackState(
            region=self.region,
            name_prefix=self.name_prefix,
            departments_file=self.departments_file,
            moto=moto,
        )
        save_state(self.state_dir, state)  # from here on `down` can clean up, whatever happens next
        tansu = broker.tansu_binary()
        kafka = self._spawn(
            "broker", lambda port: broker.broker_argv(port, tansu), broker.broker_env(base_env)
        )
        state = state.model_copy(
            update={"broker": kafka, "topics": Topics(partitions=registry.partition_count)}
        )
        save_state(self.state_dir, state)
        self._bootstrap(state, registry)
        notes.append(
            f"moto on 127.0.0.1:{moto.port} (pid {moto.pid}), Tansu on 127.0.0.1:{kafka.port} (pid {kafka.pid})"
        )

    def attach(self, endpoint_url: str, bootstrap_servers: str) -> StackState:
        """Provision servers this stack did not start (docker-compose's moto and Kafka); idempotent.

        The first call creates the identities and switches moto's auth on; later calls only re-provision.
        """
        with self._locked():
            recorded = load_state(self.state_dir)
            if recorded is not None and recorded.provisioned_at is not None:
                return self._provision(recorded)
            registry = self._registry()
            state = StackState(
                region=self.region,
                name_prefix=self.name_prefix,
                departments_file=self.departments_file,
                external_endpoint_url=endpoint_url,
                external_bootstrap_servers=bootstrap_servers,
                topics=Topics(partitions=registry.partition_count),
            )
            save_state(self.state_dir, state)
            return self._bootstrap(state, registry)

    def _bootstrap(self, state: StackState, registry: DepartmentRegistry) -> StackState:
        """Identities with auth off, then auth on for good, then the templates and topics."""
        self._write_aws_config(state)
        iam = self._unauthenticated_client(state, "iam")
        admin = identities.create_admin(iam, self.name_prefix)
        runner = identities.create_runner(iam, self.name_prefix)
        save_admin(self.state_dir, admin)
        account = admin.user_arn.split(":")[4]
        state = state.model_copy(
            update={"runner": runner, "admin_arn": admin.user_arn, "account_id": account}
        )
        save_state(self.state_dir, state)
        self._enable_auth(state)
        return self._provision(state, registry)

    def _provision(self, state: StackState, registry: DepartmentRegistry | None = None) -> StackState:
        registry = registry or self._registry()
        if state.runner is None:
            raise LocalStackError("the local stack has no runner identity")
        admin = self.admin_session()
        cfn = admin.client("cloudformation")
        principals = [state.runner.user_arn]
        platform = provision.deploy_platform(
            cfn, self.iac_dir, prefix=self.name_prefix, local_principals=principals
        )
        departments = provision.deploy_departments(
            cfn,
            self.iac_dir,
            registry,
            prefix=self.name_prefix,
            owner_role_name=platform.owner_role_name,
            local_principals=principals,
        )
        roles = [
            platform.owner_role_arn,
            platform.generator_role_arn,
            *(d.role_arn for d in departments.values()),
        ]
        identities.grant_runner(admin.client("iam"), self.name_prefix, roles)
        wanted = state.topics.model_copy(update={"partitions": registry.partition_count})
        if state.bootstrap_servers is None:
            raise LocalStackError("the local stack has no broker")
        self.last_notes = topics.run_sync(
            topics.ensure_topics(state.bootstrap_servers, topics.topic_partitions(wanted))
        )
        state = state.model_copy(
            update={
                "platform": platform,
                "departments": departments,
                "topics": wanted,
                "departments_file": self.departments_file,
                "provisioned_at": datetime.now(UTC),
            }
        )
        save_state(self.state_dir, state)
        return state

    def _write_aws_config(self, state: StackState) -> None:
        """A private AWS config file so the stack's own sessions reach moto without touching os.environ."""
        text = f"[default]\nregion = {state.region}\nendpoint_url = {state.endpoint_url}\n"
        (self.state_dir / AWS_CONFIG_FILE).write_text(text, encoding="utf-8")

    def _botocore_session(self, key: AccessKey) -> botocore.session.Session:
        core = botocore.session.Session()
        core.set_config_variable("config_file", str(self.state_dir / AWS_CONFIG_FILE))
        core.set_config_variable("profile", "default")
        core.set_config_variable("region", self.region)
        core.set_credentials(key.access_key_id, key.secret_access_key.get_secret_value())
        return core

    def _unauthenticated_client(self, state: StackState, service: str) -> Any:
        """Used only before auth is on: moto accepts any well-formed keys then; these are throwaway."""
        core = botocore.session.Session()
        core.set_config_variable("config_file", str(self.state_dir / AWS_CONFIG_FILE))
        core.set_config_variable("profile", "default")
        core.set_credentials("AKIA" + os.urandom(8).hex().upper(), os.urandom(20).hex())
        return core.create_client(service, region_name=state.region)

    def _enable_auth(self, state: StackState) -> None:
        """From now on every call is signed and authorized (moto's reset-auth takes a raw body, not a form)."""
        endpoint = urlsplit(state.endpoint_url or "")
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
