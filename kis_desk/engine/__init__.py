"""Headless engine: storage, detector, publishers and the collector that wires them. No Qt."""
