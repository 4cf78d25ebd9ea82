"""Test support code: the deterministic apt drift fixture (local repo, debs, image contexts)."""
