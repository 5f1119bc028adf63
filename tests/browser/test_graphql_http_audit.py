"""The GraphQL-over-HTTP audit frontend clients rely on, run against the demo as they would.

`graphql-http`'s own `serverAudits`, through the checked-in runner beside this
checkout (`../shared/tools/graphql-http-audit.mjs`), with one token at full speed.
Its packages come from the npm registry, pinned by `audit/package-lock.json`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.auth.devissuer import mint_dev_token
from tests.browser.conftest import ROOT

AUDIT = ROOT.parent / "shared" / "tools" / "graphql-http-audit.mjs"
PACKAGES = Path(__file__).parent / "audit"


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm and AUDIT.exists():
        return node, npm
    reason = f"the audit needs node, npm and {AUDIT.name} beside the checkout (../shared/tools)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def test_the_demo_passes_every_must_and_should(stack, tmp_path):
    node, npm = _tools()
    for name in ("package.json", "package-lock.json"):
        shutil.copy(PACKAGES / name, tmp_path / name)
    shutil.copy(AUDIT, tmp_path / AUDIT.name)
    subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=tmp_path,
                   check=True, capture_output=True, timeout=180)
    token = mint_dev_token("audit-client", "child.identity.read")
    result = subprocess.run([node, AUDIT.name, f"{stack.gateway}/graphql", token],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MUST 13/13, SHOULD 23/23" in result.stdout, result.stdout
