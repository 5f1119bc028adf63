"""Connectors to the local systems (school, GP, council) that hold children's data."""
