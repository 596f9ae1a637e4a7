"""aas plugin (work in progress)."""
