"""sales_consumer."""
