"""The version of the whole distribution (cfpairs, cfbuild, cftrain): one place, importing nothing."""

__version__ = "0.3.0"
