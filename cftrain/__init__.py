"""cftrain: training on pair stores with gradient supervision."""
