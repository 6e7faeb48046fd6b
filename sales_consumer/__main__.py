"""``python -m sales_consumer``: run the sales consumer (settings from KEYFAN_* environment variables)."""

from keyfan.consumer.run import main
from sales_consumer.handler import SalesHandler

if __name__ == "__main__":
    main("sales", SalesHandler)
