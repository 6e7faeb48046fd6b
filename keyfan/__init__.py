"""Keyfan core."""
