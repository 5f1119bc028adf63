"""Field-release policy: pure code (no I/O, no await) over plain data.

Given who asks (scopes), why (purpose) and the merged facts about one child,
decide field by field what is released and, for what is withheld, why.
"""

from gateway.core.policy.decide import (
    Access,
    ChildState,
    Decision,
    Withheld,
    decide,
    is_servable,
    scope_reason,
)
from gateway.core.policy.table import (
    DEFAULT_PURPOSES,
    FIELD_OF_FACT,
    FIELD_POLICY,
    GUARDED,
    FieldRule,
    Scope,
)

__all__ = [
    "DEFAULT_PURPOSES",
    "FIELD_OF_FACT",
    "FIELD_POLICY",
    "GUARDED",
    "Access",
    "ChildState",
    "Decision",
    "FieldRule",
    "Scope",
    "Withheld",
    "decide",
    "is_servable",
    "scope_reason",
]
