"""GraphiQL in headless Chromium: served offline by the gateway, the token header explained."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gateway.auth.devissuer import mint_dev_token
from gateway.web.pages import graphiql_installed


def test_graphiql_runs_with_every_asset_from_the_gateway(browser, stack, screenshot):
    assert graphiql_installed(), "GraphiQL's assets are missing: run scripts/bootstrap"
    browser.get_log("browser")  # forget earlier pages' messages
    browser.get(stack.gateway + "/graphql")
    WebDriverWait(browser, 15).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, ".graphiql-container .graphiql-editors"))
    help_text = browser.find_element(By.CSS_SELECTOR, ".token-help").text
    assert "Authorization" in help_text
    assert "contactpoint dev-token" in help_text
    headers = WebDriverWait(browser, 10).until(lambda b: b.execute_script(
        "return [...document.querySelectorAll('.graphiql-editor-tool .CodeMirror')]"
        ".map(e => e.CodeMirror.getValue()).join('\\n')"))
    assert "Bearer <paste a token" in headers
    screenshot("graphiql-offline")
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    gateway = urlsplit(stack.gateway).netloc
    assert resources, "the page loaded no resources"
    assert {urlsplit(url).netloc for url in resources if url.startswith("http")} == {gateway}
    # GraphiQL asks for the schema at once, with the placeholder: refused, and nothing else.
    logs = [entry["message"] for entry in browser.get_log("browser")
            if entry["level"] == "SEVERE" and "/graphql - " not in entry["message"]]
    assert logs == []


def test_graphiql_runs_a_query_with_a_pasted_token(browser, stack, screenshot):
    token = mint_dev_token("graphiql-user", "child.identity.read", amr=["mfa"])
    nhs = stack.population.fixtures()["ordinary"]
    browser.get(stack.gateway + "/graphql")
    WebDriverWait(browser, 15).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, ".graphiql-query-editor .CodeMirror"))
    browser.execute_script("""
        const [token, nhs] = arguments;
        for (const e of document.querySelectorAll('.graphiql-editor-tool .CodeMirror')) {
          if (e.CodeMirror.getValue().includes('Authorization')) {
            e.CodeMirror.setValue(JSON.stringify({Authorization: 'Bearer ' + token}));
          }
        }
        document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(
          `query FindChildren { findChildren(search: {nhsNumber: "${nhs}"},`
          + ` purpose: SAFEGUARDING) { id } }`);
    """, token, nhs)
    browser.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
    response = WebDriverWait(browser, 15).until(lambda b: b.execute_script(
        "const e = document.querySelector('.graphiql-response .CodeMirror');"
        "return e && e.CodeMirror.getValue().includes('findChildren') && e.CodeMirror.getValue()"))
    screenshot("graphiql-query-with-token")
    assert len(json.loads(response)["data"]["findChildren"]) == 1
