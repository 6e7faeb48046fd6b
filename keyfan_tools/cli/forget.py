"""``keyfan forget``: erase a subject's personal data from every record, by deleting its key."""

from __future__ import annotations

import asyncio

import click
from pydantic import ValidationError

from keyfan.exceptions import KeyfanError, PublishFailed


@click.command()
@click.option("--department", "-d", required=True, help="The department whose records name the subject.")
@click.option("--subject", "-s", required=True, help="The subject's id (e.g. the customer id).")
@click.option(
    "--role-arn",
    envvar=["KEYFAN_ROLE_ARN", "KEYFAN_OWNER_ROLE_ARN"],
    default=None,
    help="Role to act as (default: $KEYFAN_ROLE_ARN, else the owner role from `keyfan local env`).",
)
def forget(department: str, subject: str, role_arn: str | None) -> None:
    """Delete SUBJECT's key in DEPARTMENT: its personal fields become unreadable in every record, past and
    replayed, once consumers' subject-key caches expire. Writes an audit record to the audit topic and
    prints it (metadata only)."""
    import boto3

    from keyfan.aws import botocore_session_for
    from keyfan.crypto.subjectkeys import subject_keys_from
    from keyfan.erasure import forget_subject, publish_erasure
    from keyfan.kafka_auth import aiokafka_options
    from keyfan.settings import ErasureSettings

    try:
        settings = ErasureSettings(**({"role_arn": role_arn} if role_arn else {}))  # type: ignore[arg-type]
    except ValidationError as exc:
        raise click.ClickException(f"invalid settings: {exc.errors()[0]['loc']}") from None
    try:
        session = botocore_session_for(settings, session_name="keyfan-forget")
        principal = str(boto3.Session(botocore_session=session).client("sts").get_caller_identity()["Arn"])
        record = forget_subject(
            subject_keys_from(settings, botocore_session=session),
            settings.registry(),
            department,
            subject,
            principal=principal,
            cache_bound_seconds=settings.subject_key_max_age_seconds,
        )
    except KeyfanError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    try:
        asyncio.run(
            publish_erasure(
                record, topic=settings.audit_topic, producer_options=aiokafka_options(settings, session)
            )
        )
    except PublishFailed as exc:
        click.echo(record.model_dump_json(), err=True)
        raise click.ClickException(
            f"the key is deleted, but the audit record was not written ({exc}); it is printed above: "
            "file it, or run this command again (it then records that no key was left)"
        ) from None
    click.echo(record.model_dump_json())
    if not record.key_deleted:
        click.echo(f"no key for this subject in {department}: nothing was left to forget", err=True)
