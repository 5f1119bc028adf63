"""Four simulated systems (GP, school, council, youth justice) over a synthetic population.

For the demo, the tests and the benchmark. The simulators are real aiohttp
servers speaking the wire formats the real systems would (FHIR R4 for the GP,
REST JSON for school and council, a REST JSON dialect of its own with UK dates
for youth justice), so the connectors cannot tell them apart. Every person in
them is invented.
"""

from connectors.simulators.council import create_council_app
from connectors.simulators.generate import FIXTURE_KEYS
from connectors.simulators.gp_fhir import create_gp_app
from connectors.simulators.knobs import KnobError, Knobs, Malformed
from connectors.simulators.population import Population
from connectors.simulators.records import Child
from connectors.simulators.runner import RunningSimulator, RunningSimulators, run_simulators
from connectors.simulators.school import create_school_app
from connectors.simulators.youth_justice import create_youth_justice_app

__all__ = [
    "FIXTURE_KEYS",
    "Child",
    "KnobError",
    "Knobs",
    "Malformed",
    "Population",
    "RunningSimulator",
    "RunningSimulators",
    "create_council_app",
    "create_gp_app",
    "create_school_app",
    "create_youth_justice_app",
    "run_simulators",
]
