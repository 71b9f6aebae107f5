"""``gateway console passwd USER``: put a user's password hash into gateway.yaml, keeping the rest of the file.

gateway.yaml is the admin's file, with their comments and order, so it is edited as text: the
user's entry is found with PyYAML's node positions and replaced (or added as one line), and the
result is checked by loading it before it replaces the file. Only the hash is written, never
the password.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..errors import GatewayError
from ..files import write_text_atomically
from ..i18n import _


class PasswdError(GatewayError):
    """gateway.yaml cannot be edited here (its console section is written in a way this command does not edit)."""


def _entry(role: str, password_hash: str) -> str:
    return f"{{ role: {role}, password_hash: {json.dumps(password_hash)} }}"


def _mapping_value(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _content_end(node: yaml.Node) -> int:
    """Where a node's own text ends: a block's end mark lies past the comments and blank lines that follow it."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1])
    return int(node.end_mark.index)


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _after_line(text: str, index: int) -> int:
    """The index just after the line holding ``index - 1`` (a node's end mark points past its last character)."""
    end = text.find("\n", max(index - 1, 0))
    return len(text) if end < 0 else end + 1


def with_password(text: str, user: str, password_hash: str, role: str | None) -> str:
    """``text`` (gateway.yaml) with ``user``'s hash (and role: kept when ``None``, viewer for a new user)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader) if text.strip() else None
    if root is not None and not isinstance(root, yaml.MappingNode):
        raise PasswdError(_("gateway.yaml is not a group of 'name: value' lines"))
    console = _mapping_value(root, "console") if root is not None else None
    if console is None:
        block = f"console:\n  users:\n    {user}: {_entry(role or 'viewer', password_hash)}\n"
        return text + ("" if not text or text.endswith("\n") else "\n") + block
    _console_key, console_node = console
    if not isinstance(console_node, yaml.MappingNode) or console_node.flow_style:
        raise PasswdError(_("the 'console:' section is written on one line; write it as indented lines to use "
                            "'gateway console passwd'"))
    users = _mapping_value(console_node, "users")
    if users is None:
        indent = " " * console_node.start_mark.column
        at = _line_start(text, console_node.start_mark.index)
        block = f"{indent}users:\n{indent}  {user}: {_entry(role or 'viewer', password_hash)}\n"
        return text[:at] + block + text[at:]
    users_key, users_node = users
    if isinstance(users_node, yaml.ScalarNode) and users_node.value in ("", "~", "null"):
        # ``users:`` with nothing after it
        at = _after_line(text, users_key.end_mark.index)
        indent = " " * (users_key.start_mark.column + 2)
        return text[:at] + f"{indent}{user}: {_entry(role or 'viewer', password_hash)}\n" + text[at:]
    if not isinstance(users_node, yaml.MappingNode):
        raise PasswdError(_("'users:' under 'console:' must hold one entry per user"))
    existing = _mapping_value(users_node, user)
    if existing is not None:
        _key, value = existing
        kept_role = role
        if kept_role is None:
            old_role = _mapping_value(value, "role")
            kept_role = old_role[1].value if old_role and isinstance(old_role[1], yaml.ScalarNode) else "viewer"
        # from just after the user's colon to the end of its value (a block of lines, or one line)
        start = text.index(":", _key.end_mark.index) + 1
        end = _content_end(value)
        while end > start and text[end - 1] in " \n":
            end -= 1
        return text[:start] + " " + _entry(kept_role, password_hash) + text[end:]
    if users_node.flow_style:
        raise PasswdError(_("the 'users:' of the console are written on one line; write one user per line to use "
                            "'gateway console passwd'"))
    indent = " " * users_node.start_mark.column
    at = _after_line(text, _content_end(users_node))
    return text[:at] + f"{indent}{user}: {_entry(role or 'viewer', password_hash)}\n" + text[at:]


def set_password(config: Path, user: str, password_hash: str, role: str | None) -> None:
    """Write the hash into ``config``; the file is replaced only if it still loads as a valid installation."""
    from ..config import ConsoleConfig
    from ..yamlload import parse_yaml

    text = config.read_text(encoding="utf-8")
    new = with_password(text, user, password_hash, role)
    data = parse_yaml(new, str(config)).data
    try:
        console = ConsoleConfig.model_validate(data.get("console") or {})
    except ValueError as exc:
        raise PasswdError(_("the console section of gateway.yaml is not valid; nothing was changed ({reason})").format(
            reason=exc)) from None
    entry = console.users.get(user)
    if entry is None or entry.password_hash != password_hash:
        raise PasswdError(_("the edited gateway.yaml would not hold the new password hash; nothing was changed"))
    write_text_atomically(config, new)
