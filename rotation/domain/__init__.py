"""Plain data and pure decisions: names, Entra and Key Vault types, the rotation state and its tags,
requests, outcomes, lifetimes, validation back-off, the AADSTS catalogue and errors.

Nothing here does I/O or imports an SDK client; everything is unit-testable with plain values.
"""
