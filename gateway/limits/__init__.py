"""Harvesting limits: budgets of distinct children and request-rate limits, counted in Redis."""
