"""Field-release policy: pure code (no I/O, no await) over plain data.

Given who asks (scopes), why (purpose) and the merged facts about one child,
decide field by field what is released and, for what is withheld, why.
"""

from gateway.policy.decide import Access, ChildState, Decision, Withheld, decide, is_servable
from gateway.policy.table import FIELD_POLICY, FieldRule, Scope

__all__ = [
    "FIELD_POLICY",
    "Access",
    "ChildState",
    "Decision",
    "FieldRule",
    "Scope",
    "Withheld",
    "decide",
    "is_servable",
]
