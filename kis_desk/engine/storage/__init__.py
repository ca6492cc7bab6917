"""engine/storage."""
