"""One module per source format: read files, check them, hand back plain rows."""
