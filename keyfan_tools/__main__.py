"""``python -m keyfan_tools`` is the ``keyfan`` command (used where the console script is not on PATH)."""

from keyfan_tools.cli import main

main()
