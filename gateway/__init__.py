"""The edge of the stack: forwards each service's prefix to its instances, checks tokens and rate
limits on the way, and serves the merged API docs, health and the home page."""
