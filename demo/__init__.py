"""`make demo`: the rotator's main job, end to end, on the local cloud (no Azure tenant needed)."""
