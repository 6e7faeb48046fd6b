"""``python -m finance_consumer``: run the finance consumer (settings from KEYFAN_* environment variables)."""

from finance_consumer.handler import FinanceHandler
from keyfan.consumer.run import main

if __name__ == "__main__":
    main("finance", FinanceHandler)
