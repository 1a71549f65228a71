"""cftrain: training on pair stores with gradient supervision."""

from cfpairs.outputs import register_folder_kind

register_folder_kind("run", "table", "sweep", "curve")  # the trainer's output folders
