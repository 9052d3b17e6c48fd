"""The quotes service: a searchable quote database (random, latest, search, import, collector)."""
