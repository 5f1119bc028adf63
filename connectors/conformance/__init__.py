"""The conformance kit: checks a council runs against its own system before registering it.

`run_checks` loads a manifest, points it at a base URL and runs the checks
named in `CHECK_NAMES`, in that order, each giving one `CheckResult`. A
check that cannot run because an earlier one failed is a failure whose
reason is ``"not run: <check> failed"``, never a silent skip. Reasons name
only the NHS numbers the user gave, JSON paths, HTTP statuses and timings:
never a child's data. ``contactpoint connector check`` (in
`gateway.web.connector_cli`) prints them.
"""

from connectors.conformance.kit import DEFAULT_UNKNOWN_NHS, run_checks
from connectors.conformance.results import CHECK_NAMES, CheckResult

__all__ = ["CHECK_NAMES", "DEFAULT_UNKNOWN_NHS", "CheckResult", "run_checks"]
