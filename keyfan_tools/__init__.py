"""Keyfan's development tooling: the ``keyfan`` command, the embedded local stack, the demo and the bench.

Not part of the runtime: the image that runs in ECS does not carry this package. Tooling may import the
core (``keyfan``); the core never imports tooling, and tooling never imports an app (``owner_service``, the
department consumers, ``lambda_generator``): it finds them through the entry points the core reads
(``keyfan.plugins``) or starts them as processes (``python -m owner_service``).
"""
