"""k8s-install: the node side of the offline Kubernetes bundle (pure Python, 3.9+).

Standard library, PyYAML and Jinja2 only, never the builder's dependencies; the command line parses without
Jinja2. tests/test_import_rules.py holds these rules.
"""

__version__ = "0.1.0"
