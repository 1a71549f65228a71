"""cfbuild: counterfactual pair stores from existing datasets."""

from cfpairs import __version__  # noqa: F401  (one version for the whole distribution)
