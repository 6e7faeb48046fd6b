"""``python -m keyfan`` is the ``keyfan`` command (used where the console script is not on PATH)."""

from keyfan.cli import main

main()
