"""The kit's version, in one place (the manifest, icp.json and the cache key read it)."""

__version__ = "0.1.0"
