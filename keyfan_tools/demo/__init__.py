"""The end-to-end demo: ``run_demo`` orchestrates, ``report`` accounts and renders."""

from keyfan_tools.demo.report import ConsumerCounts, DemoReport, account, render
from keyfan_tools.demo.run import run_demo

__all__ = ["ConsumerCounts", "DemoReport", "account", "render", "run_demo"]
