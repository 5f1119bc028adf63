"""Accountability: the tamper-evident audit log, the request notes it is made from, alerts out."""
