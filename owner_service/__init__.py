"""owner_service."""
