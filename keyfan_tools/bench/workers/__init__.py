"""Faust workers the benchmark starts as subprocesses, next to the real consumer service (``python -m
sales_consumer``): its plaintext twin (``twin``) and a bare Faust agent (``bare``). Each serves ``/state`` so
the benchmark can see how many records it has handled."""
