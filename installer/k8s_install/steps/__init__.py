"""One module per concern; each defines Step subclasses that plan changes from the node's state."""
