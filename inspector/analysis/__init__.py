"""Pure functions over a ModelGraph that return frozen results."""
