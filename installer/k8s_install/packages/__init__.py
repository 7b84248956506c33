"""OS packages on the node: dnf from the bundle's repository, rpm version order."""
