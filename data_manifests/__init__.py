"""Manifests of external sources: files, sizes, sha256, licence, citation (one JSON per source)."""
