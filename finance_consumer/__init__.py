"""finance_consumer."""
