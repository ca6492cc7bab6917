"""kis-desk: a desktop market monitor for the Korea Investment & Securities Open API."""

__version__ = "0.1.0"
