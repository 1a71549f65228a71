"""cfpairs: counterfactual pair stores, the format core (h5py and numpy only).

    import cfpairs
    with cfpairs.open_store("imdb.h5") as store:
        store["train"].pairs

See docs/READING.md for the reader and docs/STORE.md for the format itself.
"""

from cfpairs._version import __version__
from cfpairs.api import PairStore, SplitView, open_store

__all__ = ["PairStore", "SplitView", "open_store", "__version__"]
