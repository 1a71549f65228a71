"""cfbuild: counterfactual pair stores from existing datasets."""

from cfpairs import __version__  # noqa: F401  (one version for the whole distribution)
from cfpairs.outputs import register_folder_kind

register_folder_kind("export")  # the builder's output folders (cfbuild export)
