"""The example dashboard in headless Chromium, against the demo stack over real sockets."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from gateway.auth.devissuer import mint_dev_token

WAIT = 15
LOCATION_FIELDS = ("address", "carers", "education", "primaryCare")


def wait(browser, condition):
    return WebDriverWait(browser, WAIT).until(condition)


def open_dashboard(browser, stack, *, without=(), fragment=""):
    """The dashboard with a fresh demo token for the default scopes less `without`."""
    browser.get(f"{stack.gateway}/dashboard{fragment}")
    wait(browser, lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    for scope in without:
        box = browser.find_element(By.CSS_SELECTOR, f"input[name=scope][value='{scope}']")
        if box.is_selected():
            box.click()
    browser.find_element(By.ID, "get-token").click()
    wait(browser, lambda b: b.find_element(By.ID, "token").get_attribute("value"))


def fill(browser, element_id, value):
    field = browser.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)


def search_nhs(browser, nhs):
    fill(browser, "nhs-number", nhs)
    browser.find_element(By.ID, "search").click()


def open_first_match(browser):
    wait(browser, ec.element_to_be_clickable((By.CSS_SELECTOR, "#matches button"))).click()
    wait(browser, ec.presence_of_element_located((By.ID, "record-name")))


def field_text(browser, key):
    return browser.find_element(By.CSS_SELECTOR, f"dd[data-field='{key}']").text


def systems(browser):
    rows = browser.find_elements(By.CSS_SELECTOR, "table.systems tr[data-connector]")
    return {row.get_attribute("data-connector"):
            (row.find_element(By.CSS_SELECTOR, "[data-status]").get_attribute("data-status"),
             row.find_element(By.CSS_SELECTOR, "[data-from-cache]")
             .get_attribute("data-from-cache"))
            for row in rows}


def test_search_by_nhs_number_shows_the_record_and_each_system(browser, stack, screenshot):
    # The README's click path: the banner's link, "Get a demo token", "Search", "Open ...".
    child = stack.population.child(stack.population.fixtures()["ordinary"])
    open_dashboard(browser, stack, fragment=f"#nhs={child.nhs_number}")
    assert browser.find_element(By.ID, "nhs-number").get_attribute("value") == child.nhs_number
    browser.find_element(By.ID, "search").click()
    open_first_match(browser)
    assert browser.find_element(By.ID, "record-name").text.endswith(child.family)
    assert field_text(browser, "nhsNumber") == child.nhs_number
    assert child.home.postcode in field_text(browser, "address")
    assert "withheld" not in browser.find_element(By.ID, "record").text
    states = systems(browser)
    assert set(states) == {"gp", "school", "council", "youth_justice"}
    # findChildren has just asked every system, so the record may come from the cache.
    assert all(status == "ok" and cached in ("true", "false") for status, cached in states.values())
    answers = browser.find_elements(By.CSS_SELECTOR, "table.systems td[data-from-cache]")
    assert {a.text for a in answers} <= {"from cache", "live"}
    screenshot("dashboard-search-nhs-number")


def test_search_by_name_date_of_birth_and_postcode(browser, stack, screenshot):
    child = stack.population.child(stack.population.fixtures()["sensitive_unconsented"])
    open_dashboard(browser, stack)
    fill(browser, "family-name", child.family)
    fill(browser, "date-of-birth", child.date_of_birth.isoformat())
    fill(browser, "postcode", child.home.postcode)
    browser.find_element(By.ID, "search").click()
    match = wait(browser, ec.element_to_be_clickable((By.CSS_SELECTOR, "#matches button")))
    assert child.family in match.text
    assert child.date_of_birth.isoformat() in match.text
    screenshot("dashboard-search-name-dob-postcode")
    match.click()
    wait(browser, ec.presence_of_element_located((By.ID, "record-name")))
    services = field_text(browser, "services")
    # Its sensitive service has no recorded consent: absent, with no gap or hint.
    assert "sensitive" not in services.lower()
    assert "withheld" not in services


def test_a_shielded_child_has_its_location_withheld(browser, stack, screenshot):
    nhs = stack.population.fixtures()["shielded"]
    open_dashboard(browser, stack)
    search_nhs(browser, nhs)
    open_first_match(browser)
    assert "shielded" in browser.find_element(By.ID, "record-name").text
    for key in LOCATION_FIELDS:
        assert field_text(browser, key) == "withheld: SHIELDED", key
    assert field_text(browser, "nhsNumber") == nhs
    screenshot("dashboard-shielded-child")


def test_a_missing_scope_is_named(browser, stack, screenshot):
    open_dashboard(browser, stack, without=("child.health.read",))
    search_nhs(browser, stack.population.fixtures()["ordinary"])
    open_first_match(browser)
    assert field_text(browser, "primaryCare") == "withheld: FORBIDDEN (needs child.health.read)"
    assert "withheld" not in field_text(browser, "education")
    screenshot("dashboard-forbidden-scope")


def test_a_system_down_costs_only_its_own_fields(browser, stack, screenshot):
    nhs = stack.population.fixtures()["multi_service"]  # looked up by no other test: not cached
    open_dashboard(browser, stack)
    stack.set_down("gp", True)
    try:
        search_nhs(browser, nhs)
        open_first_match(browser)
        states = systems(browser)
        screenshot("dashboard-system-down")
    finally:
        stack.set_down("gp", False)
    assert states["gp"][0] == "unavailable"
    gp_row = browser.find_element(By.CSS_SELECTOR, "tr[data-connector='gp']")
    assert gp_row.find_element(By.CSS_SELECTOR, "[data-from-cache]").text == "no answer"
    assert {states[s][0] for s in ("school", "council", "youth_justice")} == {"ok"}
    assert field_text(browser, "primaryCare") == "unavailable: UPSTREAM_UNAVAILABLE"
    assert "withheld" not in field_text(browser, "education")


@pytest.mark.parametrize("token", [
    pytest.param("not-a-token", id="garbage"),
    pytest.param(mint_dev_token("someone", "child.identity.read", amr=None), id="no-mfa"),
])
def test_a_refused_token_shows_a_clear_message_and_no_data(browser, stack, screenshot, token):
    open_dashboard(browser, stack)
    fill(browser, "token", token)
    search_nhs(browser, stack.population.fixtures()["ordinary"])
    message = wait(browser, lambda b: b.find_element(By.ID, "message").text)
    assert "refused the token (UNAUTHENTICATED)" in message
    assert browser.find_elements(By.CSS_SELECTOR, "#matches li") == []
    assert browser.find_elements(By.ID, "record-name") == []
    screenshot(f"dashboard-refused-token-{'garbage' if token == 'not-a-token' else 'no-mfa'}")


def test_a_page_on_another_loopback_origin_may_call_the_api(browser, stack, screenshot):
    token = mint_dev_token("cross-origin", "child.identity.read", amr=["mfa"])
    nhs = stack.population.fixtures()["ordinary"]
    browser.get(f"{stack.other_origin}/cross-origin.html"
                f"#gateway={stack.gateway}&token={token}&nhs={nhs}")
    result = wait(browser, lambda b: (t := b.find_element(By.ID, "result").text) != "waiting"
                  and t)
    screenshot("cross-origin-page")
    assert result == "status 200, found 1"
