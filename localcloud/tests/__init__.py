"""The local cloud's own test suite: the real Azure SDKs against it, no client of its own assumed."""
