"""Why, in words: libsolv's problems as chains (request -> package requires X -> ... -> what is missing),
and for each chosen package the chain of requirements that brought it in."""

from __future__ import annotations

from collections import deque
from typing import Any, Deque, Dict, List, Sequence, Tuple

try:
    import solv
except ImportError:  # bundler.rpm.solver.require_libsolv says so before anything here runs
    solv = None

Chain = Tuple[str, ...]
Requests = Sequence[Tuple[str, set]]  # each request as written, with the solvable ids it selects


def _describe(info: Any, repo_names: str) -> str:
    kinds = solv.Solver
    if info.type == kinds.SOLVER_RULE_PKG_REQUIRES:
        return f"{info.solvable} requires {info.dep}"
    if info.type == kinds.SOLVER_RULE_PKG_NOTHING_PROVIDES_DEP:
        return f"{info.solvable} requires {info.dep}, which nothing in the repositories ({repo_names}) provides"
    if info.type in (kinds.SOLVER_RULE_JOB_NOTHING_PROVIDES_DEP, kinds.SOLVER_RULE_JOB_UNKNOWN_PACKAGE):
        return f"requested {info.dep}: nothing in the repositories ({repo_names}) provides it"
    return str(info.problemstr())


def _problem_chains(pool: Any, problem: Any, repo_names: str, requests: Requests) -> List[str]:
    """The rules of one problem ordered into chains: each starts at a package no other rule leads to."""
    infos = [info for rule in problem.findallproblemrules() for info in rule.allinfos()]
    provided = [{s.id for s in pool.whatprovides(i.dep)} if i.dep is not None else set() for i in infos]
    remaining = list(range(len(infos)))

    def leads_to(index: int) -> bool:
        solvable = infos[index].solvable
        return solvable is not None and any(solvable.id in provided[j] for j in remaining if j != index)

    chains = []
    while remaining:
        start = next((i for i in remaining if not leads_to(i)), remaining[0])
        chain = [start]
        remaining.remove(start)
        while True:
            step = next((j for j in remaining if infos[j].solvable is not None
                         and infos[j].solvable.id in provided[chain[-1]]), None)  # fmt: skip
            if step is None:
                break
            chain.append(step)
            remaining.remove(step)
        root = infos[start].solvable
        request = next((text for text, ids in requests if root is not None and root.id in ids), None)
        parts = ([f"requested {request}"] if request else []) + [_describe(infos[i], repo_names) for i in chain]
        chains.append(" -> ".join(parts))
    return list(dict.fromkeys(chains)) or [str(problem)]


def explain(pool: Any, problems: Sequence[Any], repo_names: str, requests: Requests) -> str:
    """libsolv's explanation of each problem as chains: the request, then each package and what it needs."""
    return "; ".join("; ".join(_problem_chains(pool, problem, repo_names, requests)) for problem in problems)


def requirement_chains(pool: Any, new: Sequence[Any], selected: Requests) -> Dict[int, Chain]:
    """Why each new package is there: the shortest chain of requirements from a request, found breadth-first
    in request order over the packages' own Requires (their metadata order), so the same inputs always give
    the same words (libsolv's decision order is not part of the answer: bundle.yaml must be reproducible)."""
    in_set = {solvable.id: solvable for solvable in new}
    chains: Dict[int, Chain] = {}
    queue: Deque[int] = deque()
    for request, ids in selected:
        for solvable_id in sorted(ids):
            if solvable_id in in_set and solvable_id not in chains:
                chains[solvable_id] = (f"requested {request}",)
                queue.append(solvable_id)
    while queue:
        solvable = in_set[queue.popleft()]
        for dep in solvable.lookup_deparray(solv.SOLVABLE_REQUIRES, 0):
            providers = sorted(pool.whatprovides(dep), key=lambda p: (p.name, p.arch, p.evr, p.id))
            for provider in providers:
                if provider.id in in_set and provider.id not in chains:
                    chains[provider.id] = chains[solvable.id] + (f"{solvable} requires {dep}",)
                    queue.append(provider.id)
    return {s.id: chains.get(s.id, ("needed by the transaction",)) for s in new}
