"""The policy table as Markdown, for the README (a test keeps the two equal)."""

from __future__ import annotations

from gateway.core.policy.table import DEFAULT_PURPOSES, FIELD_POLICY, Scope

__all__ = ["markdown_fields", "markdown_purposes"]


def markdown_fields() -> str:
    """One row per schema field that has a rule of its own (inherited rows are left out)."""
    lines = ["| field | released by | reveals location | may hold sensitive items |",
             "|---|---|---|---|"]
    for key, rule in FIELD_POLICY.items():
        if rule.inherit:
            continue
        scopes = " or ".join(f"`{s.value}`" for s in rule.scopes) or "(no scope of its own)"
        lines.append(f"| `{key}` | {scopes} | {'yes' if rule.reveals_location else ''} | "
                     f"{'yes' if rule.sensitive else ''} |")
    return "\n".join(lines)


def markdown_purposes() -> str:
    """Which scopes each purpose may use."""
    scopes = [s for s in Scope if s.value.startswith("child.")]
    header = "| purpose | " + " | ".join(s.value.split(".")[1] for s in scopes) + " |"
    lines = [header, "|---|" + "---|" * len(scopes)]
    for purpose, allowed in DEFAULT_PURPOSES.items():
        marks = " | ".join("yes" if s in allowed else "**no**" for s in scopes)
        lines.append(f"| `{purpose}` | {marks} |")
    return "\n".join(lines)
