"""The builder's name for the one user-error root both tools share (`k8s_install.errors.UserError`)."""

from __future__ import annotations

from k8s_install.errors import UserError

BundlerError = UserError

__all__ = ["BundlerError", "UserError"]
