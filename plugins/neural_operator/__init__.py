"""neural_operator plugin (work in progress)."""
