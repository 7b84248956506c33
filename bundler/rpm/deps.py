"""Dependency expressions as rpm writes them: `name [op evr]`, and rich (boolean) dependencies such as
`(a or b)`, `(a if b)`, `(a if b else c)`, `(a unless b)`, `(a and b)`, `(a with b)`, `(a without b)`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Tuple, Union

from bundler.rpm.repodata import Dependency
from bundler.rpm.vercmp import EVR, compare_evr

OPERATOR_FLAGS = {"=": "EQ", "==": "EQ", "<": "LT", "<=": "LE", ">": "GT", ">=": "GE"}
_SENSE = {
    "EQ": (False, True, False),
    "LT": (True, False, False),
    "LE": (True, True, False),
    "GT": (False, False, True),
    "GE": (False, True, True),
}  # fmt: skip  (less, equal, greater)
BOOLEAN_OPERATORS = ("and", "or", "if", "unless", "with", "without", "else")
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


@dataclass(frozen=True)
class Rich:
    """A boolean dependency: `operator` over `operands` (for if/unless, a third operand is the else part)."""

    operator: str
    operands: Tuple[Expression, ...]

    def __str__(self) -> str:
        if len(self.operands) == 3 and self.operator in ("if", "unless"):
            return f"({self.operands[0]} {self.operator} {self.operands[1]} else {self.operands[2]})"
        return "(" + f" {self.operator} ".join(str(o) for o in self.operands) + ")"


Expression = Union[Dependency, Rich]


def evr_matches(provide: Dependency, require: Dependency) -> bool:
    """Whether a Provides entry satisfies a Requires entry of the same name (rpm's range overlap)."""
    if provide.flags is None or require.flags is None or provide.evr is None or require.evr is None:
        return True
    sense = compare_evr(provide.evr, require.evr)
    p_less, p_equal, p_greater = _SENSE[provide.flags]
    r_less, r_equal, r_greater = _SENSE[require.flags]
    if sense < 0:
        return p_greater or r_less
    if sense > 0:
        return p_less or r_greater
    return (p_equal and r_equal) or (p_less and r_less) or (p_greater and r_greater)


def parse_simple(text: str) -> Dependency:
    """`name`, or `name OP [epoch:]version[-release]` (as the manifest writes package pins)."""
    parts = text.split()
    if len(parts) == 1:
        return Dependency(parts[0])
    if len(parts) == 3 and parts[1] in OPERATOR_FLAGS:
        return Dependency(parts[0], OPERATOR_FLAGS[parts[1]], EVR.parse(parts[2]))
    raise ValueError(f"{text!r} is not 'name' or 'name OP version'")


def parse_expression(dependency: Dependency) -> Expression:
    """A Requires entry as read from primary.xml: rich ones arrive as a name starting with '('."""
    if not dependency.name.startswith("("):
        return dependency
    tokens = _TOKEN.findall(dependency.name)
    expression, position = _parse_rich(tokens, 0, dependency.name)
    if position != len(tokens):
        raise ValueError(f"unexpected text after {dependency.name[:60]!r}")
    return expression


def _parse_rich(tokens: List[str], position: int, text: str) -> Tuple[Expression, int]:
    if tokens[position] != "(":
        raise ValueError(f"expected '(' in {text!r}")
    position += 1
    operands: List[Expression] = []
    operators: List[str] = []
    while True:
        if position >= len(tokens):
            raise ValueError(f"unbalanced parentheses in {text!r}")
        operand, position = _parse_operand(tokens, position, text)
        operands.append(operand)
        if position >= len(tokens):
            raise ValueError(f"unbalanced parentheses in {text!r}")
        token = tokens[position]
        position += 1
        if token == ")":
            break
        if token not in BOOLEAN_OPERATORS:
            raise ValueError(f"unknown operator {token!r} in {text!r}")
        operators.append(token)
    if not operators:
        return operands[0], position
    head = operators[0]
    if head in ("if", "unless"):
        if operators not in ([head], [head, "else"]):
            raise ValueError(f"{head} takes one condition and an optional else in {text!r}")
        return Rich(head, tuple(operands)), position
    if any(op != head for op in operators) or head == "else":
        raise ValueError(f"mixed operators without parentheses in {text!r}")
    if head in ("with", "without") and len(operands) != 2:
        raise ValueError(f"{head} takes two operands in {text!r}")
    return Rich(head, tuple(operands)), position


def _parse_operand(tokens: List[str], position: int, text: str) -> Tuple[Expression, int]:
    if tokens[position] == "(":
        return _parse_rich(tokens, position, text)
    name = tokens[position]
    position += 1
    if position + 1 < len(tokens) and tokens[position] in OPERATOR_FLAGS:
        evr = EVR.parse(tokens[position + 1])
        return Dependency(name, OPERATOR_FLAGS[tokens[position]], evr), position + 2
    return Dependency(name), position
