"""cftrain: training on pair stores with gradient supervision."""

from cfpairs.outputs import register_folder_kind

register_folder_kind("run", "table", "sweep", "curve", "reference")  # the trainer's output folders
