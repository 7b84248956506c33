"""The one YAML loader of both tools: PyYAML's pure-Python safe loader, refusing aliases.

The node runs from a zipapp that carries no compiled code, so it parses with pure-Python PyYAML; the builder
reads every YAML file (bundle.yaml, --lock, --from, cluster.yaml, the release manifests) with the same loader,
so a file the builder accepts is a file every node accepts (libyaml, for one, lets a tab stand between a value
and its comment; the pure-Python scanner refuses it).

Files the tools write (bundle.yaml, a --lock or --from bundle.yaml, DELTA.yaml) are read refusing aliases:
the builder never writes one, and nested aliases expand exponentially for whoever walks the result (a few
hundred bytes can stand for gigabytes). Files people write (cluster.yaml, the secrets, release manifests) may
use anchors and aliases (`allow_aliases=True`); their readers check each field and quote values cut short.
"""

from __future__ import annotations

from typing import Any, Iterator, Type, Union

import yaml


class NoAliasLoader(yaml.SafeLoader):
    """The pure-Python safe loader, refusing `*alias` references."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"uses the YAML alias *{event.anchor}, which the builder never writes", event.start_mark
            )
        return super().compose_node(parent, index)


class NoAliasDumper(yaml.SafeDumper):
    """What the builder writes YAML with: a value used twice is written twice, never as an alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _loader(allow_aliases: bool) -> Type[yaml.SafeLoader]:
    return yaml.SafeLoader if allow_aliases else NoAliasLoader  # both pure Python, never libyaml


def load_yaml(text: Union[str, bytes], allow_aliases: bool = False) -> Any:
    """One YAML document as Python values; raises yaml.YAMLError (a tab, or an alias unless allowed)."""
    return yaml.load(text, Loader=_loader(allow_aliases))  # noqa: S506 (the safe loader)


def load_yaml_all(text: Union[str, bytes], allow_aliases: bool = False) -> Iterator[Any]:
    """Every document of a multi-document YAML stream, with the same loader."""
    return yaml.load_all(text, Loader=_loader(allow_aliases))  # noqa: S506 (the safe loader)


def dump_yaml(data: Any) -> str:
    """Block-style YAML in the mapping's own key order, never an alias (how bundle.yaml is written)."""
    return str(yaml.dump(data, Dumper=NoAliasDumper, sort_keys=False, default_flow_style=False))
