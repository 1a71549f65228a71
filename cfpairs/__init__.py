"""cfpairs: counterfactual pair stores from Python, without the trainer.

    import cfpairs
    store = cfpairs.open_store("imdb.h5")

See README ("Using stores from Python") and docs/STORE.md for the format itself.
"""

from cfbuild import __version__
from cfbuild.api import PairStore, SplitView, open_store

__all__ = ["PairStore", "SplitView", "open_store", "__version__"]
