"""Test plugins whose names clash: see pyproject.toml."""


class Identity:
    """A do-nothing component; these plugins exist to test name resolution, not to compute anything."""

    def __init__(self, *args, **kwargs):
        self.args = args
