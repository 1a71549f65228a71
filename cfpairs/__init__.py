"""cfpairs: counterfactual pair stores, the format core (h5py and numpy only).

    import cfpairs
    with cfpairs.open_store("imdb.h5") as store:
        store["train"].pairs

See docs/READING.md for the reader and docs/STORE.md for the format itself.
"""

from cfpairs._version import __version__

__all__ = ["PairStore", "SplitView", "open_store", "__version__"]


def __getattr__(name: str):
    """The reader on first use (h5py and numpy load with it, not with every `cfpairs.*` module)."""
    if name in ("PairStore", "SplitView", "open_store"):
        from cfpairs import api  # noqa: PLC0415

        return getattr(api, name)
    raise AttributeError(f"module 'cfpairs' has no attribute {name!r}")
