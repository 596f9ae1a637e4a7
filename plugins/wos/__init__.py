"""wos plugin (work in progress)."""
