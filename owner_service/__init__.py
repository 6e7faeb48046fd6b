"""The owner service: ``python -m owner_service``. A shell only; the code is in ``keyfan.owner``."""
