"""Loopback servers that speak real protocols, for tests and local development (nothing here
reaches the network beyond 127.0.0.1)."""
