"""Node plumbing: the machine the installer changes, its files, its state and their undo."""
