"""Five small patches that make moto 5.2.5 behave like AWS where Keyfan depends on it.

1. **Key-scoped IAM.** moto authorizes a request against the resource returned by the response class's
   ``_determine_resource``; KMS has none, so every KMS call is checked against ``"*"``. A policy that allows
   one key ARN then denies every key (its own included) and a Deny on one ARN is ignored. We give
   ``KmsResponse`` a ``_determine_resource`` that returns the key ARN the call really uses: from ``KeyId``
   (key id, key ARN, alias name or alias ARN, aliases resolved), and for ``Decrypt``/``ReEncrypt`` from the
   key id moto writes into the first 36 bytes of its ciphertext blob (AWS also authorizes Decrypt against the key
   that encrypted the blob, whatever ``KeyId`` says).
2. **The error shape.** moto denies with IAM's XML 403 ``AccessDenied``; KMS and DynamoDB answer
   ``AccessDeniedException`` as HTTP 400 JSON, and clients (ours, the Encryption SDK) branch on that code. We
   swap the IAM request class used for KMS and DynamoDB only, so other services keep moto's behaviour.
3. **Batch actions.** moto authorizes each API by its own name, so ``SendMessageBatch`` needs a
   ``sqs:SendMessageBatch`` permission, which does not exist in AWS: there the batch APIs are authorized as
   their single-message action (``sqs:SendMessage`` ...). We map them (``IAM_ACTION_ALIASES``), so that
   policies written for AWS work unchanged here.
4. **Atomic queue operations.** moto's server answers each request in its own thread, but its SQS queue is
   not thread-safe: ``Queue.delete_message`` rebuilds the message list outside the queue's lock (concurrent
   deletes resurrect each other's messages, a concurrent send can vanish), and ``receive_message`` checks
   visibility and marks a message received in two steps (two pollers can get the same message). Measured
   in-process with four threads, 400 messages and a 10 µs thread switch interval: 276 messages survived their deletion and one was delivered
   twice. We run those operations under the queue's own lock (a reentrant ``Condition``; a long poll's wait
   releases it), which makes each one atomic, as SQS is.
5. **Table-scoped IAM.** DynamoDB has no ``_determine_resource`` either: every call is checked against
   ``"*"``, so a policy naming the subject-key table's ARN denied that table too. We give ``DynamoHandler`` one that
   returns ``arn:<partition>:dynamodb:<region>:<account>:table/<TableName>`` (``.../index/<IndexName>`` for a
   Query or Scan of an index; a ``TableName`` that is already an ARN is kept). Calls that name no single table
   (ListTables, a batch over several tables) stay ``"*"``: stricter than AWS, which checks each table. IAM
   condition keys such as ``dynamodb:LeadingKeys`` are still not evaluated (moto's ``policy_conditions``
   knows only ``StringEquals``, and is given no request values for identity policies): a conditional Allow
   acts as an unconditional one.

The pure pieces (``kms_resource_arn``, ``key_id_from_ciphertext``, ``dynamodb_resource_arn``,
``access_denied_message``) are unit-tested without a server; ``apply_patches`` checks moto's shapes and
refuses to half-patch a moto it does not know (``LocalStackError``).

This module imports only the standard library, moto and ``keyfan.exceptions`` (itself standard library only):
docker-compose mounts it and ``keyfan/exceptions.py`` into moto's own image and applies it there.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from keyfan.exceptions import LocalStackError

SUPPORTED_MOTO = "5.2.5"
# moto's ciphertext blob: 36-byte key id, 12-byte IV, 16-byte tag, then the ciphertext (moto/kms/utils.py).
_KEY_ID_LEN = 36
_KEY_ID = re.compile(r"^(mrk-)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Actions whose key is named by the ciphertext rather than (or as well as) by a key id parameter.
_CIPHERTEXT_ACTIONS = frozenset({"Decrypt", "ReEncrypt"})
_KEY_PARAMS = ("KeyId", "TargetKeyId", "SourceKeyId", "DestinationKeyId")

# API name -> the IAM action AWS authorizes it as (only where the two differ).
IAM_ACTION_ALIASES: Mapping[str, str] = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}

_applied = False


def iam_action(api_action: str) -> str:
    """The IAM action that AWS checks for an API call."""
    return IAM_ACTION_ALIASES.get(api_action, api_action)


def key_id_from_ciphertext(blob: bytes) -> str | None:
    """The key id moto embedded in its ciphertext blob, or None if the bytes are not a moto blob."""
    if len(blob) < _KEY_ID_LEN:
        return None
    try:
        candidate = blob[:_KEY_ID_LEN].decode("ascii")
    except UnicodeDecodeError:
        return None
    return candidate if _KEY_ID.match(candidate) else None


def kms_resource_arn(
    action: str,
    params: Mapping[str, Any],
    *,
    region: str,
    account: str,
    partition: str = "aws",
    alias_to_key_id: Callable[[str], str | None],
) -> str:
    """The ARN IAM must authorize this KMS call against; ``"*"`` for calls that name no key (ListKeys...).

    ``params`` are the request's JSON parameters, with ``CiphertextBlob`` already base64-decoded to bytes.
    Unknown aliases stay alias ARNs (the call then fails with NotFound after authorization, as on AWS).
    """
    prefix = f"arn:{partition}:kms:{region}:{account}"
    if action in _CIPHERTEXT_ACTIONS:
        blob = params.get("CiphertextBlob")
        if isinstance(blob, bytes | bytearray):
            key_id = key_id_from_ciphertext(bytes(blob))
            if key_id:
                return f"{prefix}:key/{key_id}"
    for name in _KEY_PARAMS:
        value = params.get(name)
        if isinstance(value, str) and value:
            return _key_arn(value, prefix, alias_to_key_id)
    return "*"


def _key_arn(key_ref: str, prefix: str, alias_to_key_id: Callable[[str], str | None]) -> str:
    if key_ref.startswith("arn:"):
        if ":alias/" not in key_ref:
            return key_ref
        alias = "alias/" + key_ref.split(":alias/", 1)[1]
    elif key_ref.startswith("alias/"):
        alias = key_ref
    else:
        return f"{prefix}:key/{key_ref}"
    key_id = alias_to_key_id(alias)
    return f"{prefix}:key/{key_id}" if key_id else f"{prefix}:{alias}"


def access_denied_message(principal_arn: str, action: str, resource: str, *, explicit_deny: bool) -> str:
    """Worded like AWS's KMS denial, so logs and assertions read the same locally and in the cloud."""
    why = (
        "with an explicit deny in an identity-based policy"
        if explicit_deny
        else f"because no identity-based policy allows the {action} action"
    )
    return f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {why}"


def decode_kms_params(body: bytes | str | None) -> dict[str, Any]:
    """The JSON request body with ``CiphertextBlob`` base64-decoded; {} when it is not JSON."""
    if not body:
        return {}
    try:
        params = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(params, dict):
        return {}
    blob = params.get("CiphertextBlob")
    if isinstance(blob, str):
        try:
            params["CiphertextBlob"] = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            params["CiphertextBlob"] = b""
    return params


def determine_kms_resource(self: Any) -> str:
    """The resource of a KMS request: its key's ARN (what stock moto lacks, so it authorizes against "*").
    Installed as ``KmsResponse._determine_resource``; tests install it for one test only."""
    from moto.utilities.utils import get_partition  # moto loads only where the patches are applied

    return kms_resource_arn(
        self._get_action(),
        decode_kms_params(self.body),
        region=self.region,
        account=self.current_account,
        partition=get_partition(self.region),
        alias_to_key_id=self.kms_backend.get_key_id_from_alias,
    )


def dynamodb_resource_arn(
    action: str, params: Mapping[str, Any], *, region: str, account: str, partition: str = "aws"
) -> str:
    """The ARN IAM must authorize this DynamoDB call against; ``"*"`` for calls that name no single table.

    ``params`` are the request's JSON parameters. A ``TableName`` may already be a table ARN (DynamoDB
    accepts both); a Query or Scan of an index is authorized against the index, as on AWS.
    """
    name = params.get("TableName")
    if not isinstance(name, str) or not name:
        items = params.get("RequestItems")  # BatchGetItem, BatchWriteItem: one resource only if one table
        if isinstance(items, Mapping) and len(items) == 1:
            name = str(next(iter(items)))
        else:
            arn = params.get("ResourceArn")  # TagResource, ListTagsOfResource, resource policies
            return arn if isinstance(arn, str) and arn.startswith("arn:") else "*"
    table = name if name.startswith("arn:") else f"arn:{partition}:dynamodb:{region}:{account}:table/{name}"
    index = params.get("IndexName")
    if action in ("Query", "Scan") and isinstance(index, str) and index:
        return f"{table}/index/{index}"
    return table


def _json_params(body: Any) -> Mapping[str, Any]:
    if isinstance(body, Mapping):  # DynamoHandler.call_action swaps the body for its parsed parameters
        return body
    if not body:
        return {}
    try:
        params = json.loads(body)
    except (ValueError, UnicodeDecodeError, TypeError):
        return {}
    return params if isinstance(params, dict) else {}


def determine_dynamodb_resource(self: Any) -> str:
    """The resource of a DynamoDB request: its table's ARN (stock moto authorizes against "*").
    Installed as ``DynamoHandler._determine_resource``; tests install it for one test only."""
    from moto.utilities.utils import get_partition  # moto loads only where the patches are applied

    return dynamodb_resource_arn(
        self._get_action(),
        _json_params(self.body),
        region=self.region,
        account=self.current_account,
        partition=get_partition(self.region),
    )


@functools.cache
def _json_iam_request() -> type:
    """moto's ``IAMRequest``, denying as the JSON services do (patch 2). Built lazily."""
    from moto.core.exceptions import JsonRESTError
    from moto.iam.access_control import IAMPolicy, IAMRequest, PermissionResult

    class AccessDeniedException(JsonRESTError):
        code = 400

        def __init__(self, message: str) -> None:
            super().__init__("AccessDeniedException", message)

    class JsonIAMRequest(IAMRequest):
        """IAM check for KMS and DynamoDB: remembers the resource so the denial can name it, AWS-style."""

        _resource = "*"

        def check_action_permitted(self, resource: str) -> None:
            self._resource = resource
            super().check_action_permitted(resource)

        def _raise_access_denied(self) -> None:
            explicit = any(
                IAMPolicy(policy).is_action_permitted(self._action, self._resource) == PermissionResult.DENIED
                for policy in self._access_key.collect_policies()
            )
            raise AccessDeniedException(
                access_denied_message(
                    self._access_key.arn, self._action, self._resource, explicit_deny=explicit
                )
            )

    return JsonIAMRequest


def authorize_with_json_denial(self: Any, resource: str = "*") -> None:
    """Installed as ``_authenticate_and_authorize_normal_action`` of the KMS and DynamoDB response classes:
    a denial is a 400 JSON ``AccessDeniedException`` naming the resource, as those services answer it."""
    self._authenticate_and_authorize_action(_json_iam_request(), resource)


def apply_patches() -> None:
    """Patch moto's KMS, DynamoDB and SQS classes in this process. Idempotent; raises if moto changed."""
    global _applied
    if _applied:
        return

    import moto
    from moto.dynamodb.responses import DynamoHandler
    from moto.iam.access_control import IAMRequest, IAMRequestBase
    from moto.kms.responses import KmsResponse
    from moto.sqs.models import Queue, SQSBackend

    _check_shapes(moto.__version__, KmsResponse, IAMRequest)
    _check_dynamodb_shapes(moto.__version__, DynamoHandler)
    _check_sqs_shapes(moto.__version__, Queue, SQSBackend)

    original_init = IAMRequestBase.__init__

    def _init_with_aws_action(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._action = iam_action(self._action)

    _serialize_queue_operations(Queue, SQSBackend)
    IAMRequestBase.__init__ = _init_with_aws_action  # type: ignore[method-assign]
    KmsResponse._determine_resource = determine_kms_resource  # type: ignore[attr-defined]
    KmsResponse._authenticate_and_authorize_normal_action = authorize_with_json_denial  # type: ignore[method-assign]
    DynamoHandler._determine_resource = determine_dynamodb_resource  # type: ignore[attr-defined]
    DynamoHandler._authenticate_and_authorize_normal_action = authorize_with_json_denial  # type: ignore[method-assign]
    _applied = True


# SQSBackend methods (first argument: the queue name) that read-modify-write the queue's message list.
_SQS_BACKEND_OPERATIONS = (
    "receive_message",
    "change_message_visibility",
    "change_message_visibility_batch",
    "delete_message_batch",
    "purge_queue",
)


def _serialize_queue_operations(queue_class: Any, backend_class: Any) -> None:
    """Patch 4: each listed operation holds its queue's ``_messages_lock`` for the whole call."""

    def locked_backend_call(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            with self.get_queue(queue_name)._messages_lock:
                return method(self, queue_name, *args, **kwargs)

        return call

    original_delete = queue_class.delete_message

    @functools.wraps(original_delete)
    def delete_message(self: Any, receipt_handle: str) -> None:
        with self._messages_lock:
            original_delete(self, receipt_handle)

    queue_class.delete_message = delete_message
    for name in _SQS_BACKEND_OPERATIONS:
        setattr(backend_class, name, locked_backend_call(getattr(backend_class, name)))


def _check_sqs_shapes(version: str, queue_class: type, backend_class: type) -> None:
    missing = [
        f"{owner.__name__}.{name}"
        for owner, name in (
            (queue_class, "delete_message"),
            (queue_class, "wait_for_messages"),
            *((backend_class, name) for name in _SQS_BACKEND_OPERATIONS),
            (backend_class, "get_queue"),
        )
        if not hasattr(owner, name)
    ]
    lock = getattr(queue_class("probe", "us-east-1", "123456789012"), "_messages_lock", None)
    reentrant = isinstance(lock, threading.Condition) and isinstance(lock._lock, type(threading.RLock()))  # type: ignore[attr-defined]
    if missing or not reentrant:
        raise LocalStackError(
            f"keyfan's SQS locking patch targets moto {SUPPORTED_MOTO}; moto {version} differs (missing "
            f"{missing or 'nothing'}, reentrant queue lock: {reentrant}). Re-check keyfan_tools/local/moto_patches.py."
        )


def _check_dynamodb_shapes(version: str, dynamo_handler: type) -> None:
    missing = [
        name
        for name in (
            "_authenticate_and_authorize_action",
            "_authenticate_and_authorize_normal_action",
            "_get_action",
            "call_action",
        )
        if not hasattr(dynamo_handler, name)
    ]
    native = hasattr(dynamo_handler, "_determine_resource")
    if missing or native:
        raise LocalStackError(
            f"keyfan's DynamoDB authorization patch targets moto {SUPPORTED_MOTO}; moto {version} differs "
            f"(missing {missing or 'nothing'}, native _determine_resource: {native}). "
            "Re-check keyfan_tools/local/moto_patches.py."
        )


def _check_shapes(version: str, kms_response: type, iam_request: type) -> None:
    missing = [
        name
        for owner, name in (
            (kms_response, "_authenticate_and_authorize_action"),
            (kms_response, "_authenticate_and_authorize_normal_action"),
            (kms_response, "_get_action"),
            (kms_response, "kms_backend"),
            (iam_request, "check_action_permitted"),
            (iam_request, "_raise_access_denied"),
        )
        if not hasattr(owner, name)
    ]
    if missing or hasattr(kms_response, "_determine_resource"):
        raise LocalStackError(
            f"keyfan's KMS authorization patch targets moto {SUPPORTED_MOTO}; moto {version} differs "
            f"(missing {missing or 'nothing'}, native _determine_resource: "
            f"{hasattr(kms_response, '_determine_resource')}). Re-check keyfan_tools/local/moto_patches.py."
        )
    if version != SUPPORTED_MOTO:
        warnings.warn(
            f"keyfan's KMS patch was written for moto {SUPPORTED_MOTO}, running {version}: shapes still "
            "match, but re-run tests/e2e/test_iam_enforcement.py",
            RuntimeWarning,
            stacklevel=3,
        )
