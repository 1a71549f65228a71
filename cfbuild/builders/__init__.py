"""One builder per task: read sources, make pairs, hand arrays to the store writer."""
