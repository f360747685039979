"""The service core: the ports (what the rotator needs from Graph, Key Vault, Entra and a lock), the
reconciler that drives one secret to its desired state, rollback, the sweep and adoption.

It speaks in domain words and depends on the ports only, never on an adapter.
"""
