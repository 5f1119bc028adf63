"""The short-lived cache of source answers: encrypted values under keyed-hash keys."""

from gateway.cache.sealing import CacheSealer
from gateway.cache.stores import CacheStore, MemoryStore, RedisStore

__all__ = ["CacheSealer", "CacheStore", "MemoryStore", "RedisStore"]
