"""Shared values below the feed and the engine: ticks, events, errors, back-off, the heap rule."""
