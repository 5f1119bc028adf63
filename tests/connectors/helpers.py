"""Constants and builders shared by the connector tests."""

from __future__ import annotations

import datetime as dt

from connectors.council_rest import CouncilRestConnector
from connectors.gp_fhir import GpFhirConnector
from connectors.school_rest import SchoolRestConnector

TODAY = dt.date(2026, 5, 1)
SIZE = 3_000
TIMEOUT = 1.0

KINDS = ("gp", "school", "council")
CONNECTOR_CLASSES = {"gp": GpFhirConnector, "school": SchoolRestConnector,
                     "council": CouncilRestConnector}


def make_connector(kind, url, timeout=TIMEOUT):
    """A connector of `kind` (gp, school, council) named after its kind."""
    return CONNECTOR_CLASSES[kind](kind, url, timeout_seconds=timeout, cache_ttl=5.0)
