"""ContactPoint Gateway: a child's record resolved live from local systems, never copied."""
