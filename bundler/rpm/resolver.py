"""Compute the set of RPMs to bundle: the requested packages and, transitively, whatever provides their
requirements, minus what a minimal install already has (or everything, for the full closure).

Choice rules, in order: a requirement already met by a chosen (or, for the minimal closure, an assumed)
package needs nothing; otherwise the provider named like the requirement wins over other providers, then
the newest epoch:version-release, then the target arch over noarch, then the earlier repository. A pinned
name (`kubeadm = 1.29.6`, or every package of a `--lock`) only ever takes a matching version. One version
per name; no backtracking: a conflict is reported with both requirement chains.
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from bundler.errors import BundlerError
from bundler.rpm.deps import Expression, Rich, evr_matches, parse_expression
from bundler.rpm.pool import Pool
from bundler.rpm.repodata import Dependency, Package
from bundler.rpm.vercmp import compare_evr

Chain = Tuple[str, ...]
IMPLICIT_PREFIXES = ("rpmlib(",)  # met by rpm itself, never by a package


class UnresolvableError(BundlerError):
    pass


@dataclass(frozen=True)
class Resolution:
    packages: Tuple[Package, ...]  # sorted by name
    requested: Tuple[str, ...]  # the package chosen for each request, in request order
    chains: Dict[str, Chain]  # package name -> why it is in the set


def short(package: Package) -> str:
    epoch = f"{package.evr.epoch}:" if package.evr.epoch else ""
    return f"{package.name}-{epoch}{package.evr.version}-{package.evr.release}.{package.arch}"


class Resolver:
    def __init__(
        self,
        pool: Pool,
        pins: Optional[Mapping[str, Dependency]] = None,
        assumed: FrozenSet[str] = frozenset(),
        full: bool = False,
    ) -> None:
        self.pool = pool
        self.pins = dict(pins or {})
        self.assumed = frozenset() if full else assumed
        self.selected: Dict[str, Package] = {}
        self.chains: Dict[str, Chain] = {}
        self.queue: Deque[Tuple[Expression, Chain]] = deque()
        self.conditionals: List[Tuple[Rich, Chain]] = []

    # -- what is already there -------------------------------------------------------------------
    def allowed(self, package: Package) -> bool:
        pin = self.pins.get(package.name)
        return pin is None or evr_matches(Dependency(package.name, "EQ", package.evr), pin)

    def candidates(self, requirement: Dependency) -> List[Package]:
        return [p for p in self.pool.providers(requirement) if self.allowed(p)]

    def met(self, expression: Expression) -> bool:
        if isinstance(expression, Dependency):
            if expression.name.startswith(IMPLICIT_PREFIXES) or expression.name in self.assumed:
                return True
            return any(
                self.selected.get(p.name) is p or p.name in self.assumed for p in self.pool.providers(expression)
            )
        operator, operands = expression.operator, expression.operands
        if operator == "and":
            return all(self.met(o) for o in operands)
        if operator == "or":
            return any(self.met(o) for o in operands)
        if operator in ("if", "unless"):
            branch = self._branch(expression)
            return branch is None or self.met(branch)
        return any(self.selected.get(p.name) is p for p in self._combined(expression))

    def _branch(self, expression: Rich) -> Optional[Expression]:
        """The operand an if/unless dependency needs now (None: nothing)."""
        condition = self.met(expression.operands[1])
        otherwise = expression.operands[2] if len(expression.operands) == 3 else None
        if expression.operator == "if":
            return expression.operands[0] if condition else otherwise
        return otherwise if condition else expression.operands[0]

    def _combined(self, expression: Rich) -> List[Package]:
        """Providers for `(a with b)` (one package meeting both) and `(a without b)`."""
        first, second = expression.operands
        if not isinstance(first, Dependency) or not isinstance(second, Dependency):
            raise BundlerError(f"nested rich dependency {expression} inside with/without is not supported")
        others = self.pool.providers(second)
        if expression.operator == "with":
            return [p for p in self.candidates(first) if p in others]
        return [p for p in self.candidates(first) if p not in others]

    # -- choosing ----------------------------------------------------------------------------------
    def best(self, requirement_name: str, packages: Sequence[Package]) -> Package:
        def order(left: Package, right: Package) -> int:
            for key in (
                (left.name == requirement_name) - (right.name == requirement_name),
                compare_evr(left.evr, right.evr),
                (left.arch != "noarch") - (right.arch != "noarch"),
                self.pool.repo_rank(right) - self.pool.repo_rank(left),
            ):
                if key:
                    return 1 if key > 0 else -1
            return (left.name < right.name) - (left.name > right.name)

        return max(packages, key=functools.cmp_to_key(order))

    def select(self, package: Package, chain: Chain) -> None:
        chosen = self.selected.get(package.name)
        if chosen is package:
            return
        if chosen is not None:
            first, second = " -> ".join(chain), " -> ".join(self.chains[package.name])
            raise UnresolvableError(
                f"RPM {package.name} is needed as {short(package)} ({first})"
                f" and as {short(chosen)} ({second}); "
                "pin one version in the manifest's rpm packages"
            )
        self.selected[package.name] = package
        self.chains[package.name] = chain
        here = short(package)
        for requirement in package.requires:
            if requirement.name.startswith(IMPLICIT_PREFIXES):
                continue
            try:
                expression = parse_expression(requirement)
            except ValueError as error:
                raise UnresolvableError(f"RPM {here}: cannot read requirement {requirement}: {error}") from None
            self.queue.append((expression, chain + (f"{here} requires {requirement}",)))

    def require(self, expression: Expression, chain: Chain) -> None:
        if self.met(expression):
            return
        if isinstance(expression, Dependency):
            found = [p for p in self.candidates(expression) if p.name not in self.selected]
            if not found:
                self._fail(expression, chain)
            self.select(self.best(expression.name, found), chain)
        elif expression.operator == "and":
            for operand in expression.operands:
                self.queue.append((operand, chain))
        elif expression.operator == "or":
            for operand in expression.operands:
                if self.available(operand):
                    self.require(operand, chain)
                    return
            self._fail(expression, chain)
        elif expression.operator in ("if", "unless"):
            self.conditionals.append((expression, chain))
        else:
            found = [p for p in self._combined(expression) if p.name not in self.selected]
            if not found:
                self._fail(expression, chain)
            first = expression.operands[0]
            self.select(self.best(first.name if isinstance(first, Dependency) else "", found), chain)

    def available(self, expression: Expression) -> bool:
        """Could this operand be met from the repositories (used to pick an `or` alternative)?"""
        if self.met(expression):
            return True
        if isinstance(expression, Dependency):
            return any(p.name not in self.selected for p in self.candidates(expression))
        if expression.operator == "and":
            return all(self.available(o) for o in expression.operands)
        if expression.operator == "or":
            return any(self.available(o) for o in expression.operands)
        if expression.operator in ("if", "unless"):
            return True
        return bool(self._combined(expression))

    def _fail(self, expression: Expression, chain: Chain) -> None:
        repos = ", ".join(self.pool.repo_order)
        reason = f"nothing in the repositories ({repos}) provides {expression}"
        if isinstance(expression, Dependency):
            pinned = self.pins.get(expression.name)
            other = self.selected.get(expression.name)
            if other is not None:
                reason = f"{short(other)} was already chosen and does not satisfy {expression}"
            elif pinned is not None and self.pool.providers(expression):
                reason = f"{expression.name} is pinned to {pinned} and no such version is available"
        raise UnresolvableError(f"cannot resolve RPM requirement {' -> '.join(chain)}: {reason}")

    # -- the whole closure ---------------------------------------------------------------------------
    def resolve(self, requests: Sequence[Dependency]) -> Resolution:
        requested: List[str] = []
        for request in requests:  # as `dnf install NAME`: the package of that name, else what provides it
            found = [p for p in self.candidates(request) if p.name == request.name] or self.candidates(request)
            if not found:
                self._fail(request, (f"requested {request}",))
            chosen = self.best(request.name, found)
            self.select(chosen, (f"requested {request}",))
            requested.append(chosen.name)
        while True:
            while self.queue:
                self.require(*self.queue.popleft())
            for expression, chain in self.conditionals:  # re-checked until the set stops growing
                branch = self._branch(expression)
                if branch is not None and not self.met(branch):
                    self.queue.append((branch, chain))
            if not self.queue:
                break
        packages = tuple(self.selected[name] for name in sorted(self.selected))
        return Resolution(packages, tuple(requested), dict(self.chains))
