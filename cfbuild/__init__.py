"""cfbuild: counterfactual pair stores from existing datasets."""

__version__ = "0.1.0"
