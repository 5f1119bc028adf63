"""Strawberry types and resolvers: thin, reading decisions made once per child."""
