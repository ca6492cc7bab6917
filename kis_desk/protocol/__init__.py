"""KIS wire protocol: pure functions and immutable values, no I/O."""
