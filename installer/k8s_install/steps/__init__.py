"""One module per concern; each defines Step subclasses that plan changes from the node's state.

A step never imports a command (tests/test_import_rules.py): what steps and commands share lives below both.
"""
