"""Keys derived from configured secrets, opaque child ids, and pseudonyms."""
