// The example dashboard: find a child, then show the record as the gateway released it.
// Every value reaches the page through textContent: nothing from the API is parsed as HTML.
import { ApiError, runDocument } from "./api.js";

const $ = (id) => document.getElementById(id);

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function say(text, kind = "error") {
  const box = $("message");
  box.className = kind;
  box.textContent = text;
}

function token() {
  return $("token").value.trim();
}

function fullName(name) {
  return name ? `${name.given.join(" ")} ${name.family}` : null;
}

function address(value) {
  return value ? [...value.lines, value.postcode].filter(Boolean).join(", ") : null;
}

function withheld(error) {
  const code = error.extensions?.code ?? "ERROR";
  if (code === "FORBIDDEN") {
    const scope = error.extensions?.scope;
    return `withheld: FORBIDDEN (${scope ? `needs ${scope}` : error.message})`;
  }
  if (code === "SHIELDED") return "withheld: SHIELDED";
  if (code === "UPSTREAM_UNAVAILABLE") return "unavailable: UPSTREAM_UNAVAILABLE";
  return `withheld: ${code}`;
}

function errorsByPath(errors) {
  const byPath = new Map();
  for (const error of errors ?? []) {
    if (Array.isArray(error.path)) byPath.set(error.path.join("."), error);
  }
  return byPath;
}

function explain(error) {
  if (error instanceof ApiError) {
    if (error.code === "UNAUTHENTICATED") {
      return `The gateway refused the token (UNAUTHENTICATED): ${error.message} `
        + "Get a new token (they live 10 minutes) and try again.";
    }
    return `${error.code}: ${error.message}`;
  }
  return `Something went wrong: ${error.message}`;
}

function clearResults() {
  $("matches").replaceChildren();
  $("record").replaceChildren(element("p", "Choose a match to see the record.", { class: "note" }));
}

function context() {
  const caseReference = $("case-reference").value.trim();
  return { purpose: $("purpose").value, caseReference: caseReference || null };
}

function searchInput() {
  const value = (id) => $(id).value.trim();
  if (value("nhs-number")) return { nhsNumber: value("nhs-number") };
  const search = {};
  for (const [id, key] of [["family-name", "familyName"], ["given-name", "givenName"],
    ["date-of-birth", "dateOfBirth"], ["postcode", "postcode"]]) {
    if (value(id)) search[key] = value(id);
  }
  if (search.familyName && search.dateOfBirth && (search.givenName || search.postcode)) {
    return search;
  }
  return null;
}

async function search(event) {
  event.preventDefault();
  clearResults();
  say("");
  if (!token()) return say("Paste a token, or get a demo token, first.");
  const searchFor = searchInput();
  if (!searchFor) {
    return say("Give an NHS number, or a family name, a date of birth and a given name or postcode.");
  }
  try {
    const body = await runDocument("FindChildren", { search: searchFor, ...context() }, token());
    if (body.errors?.length) say(body.errors.map((e) => `${e.extensions?.code}: ${e.message}`).join(" "));
    showMatches(body.data.findChildren ?? []);
  } catch (error) {
    say(explain(error));
  }
}

function showMatches(matches) {
  if (matches.length === 0) {
    say("No child matched.", "info");
    return;
  }
  const list = $("matches");
  for (const match of matches) {
    const button = element("button", `Open ${fullName(match.name) ?? "(name withheld)"}, born ${match.dateOfBirth ?? "?"}`,
      { type: "button", class: "open-record" });
    button.addEventListener("click", () => openRecord(match.id));
    const item = element("li");
    item.append(button);
    list.append(item);
  }
}

async function openRecord(id) {
  say("");
  const record = $("record");
  record.replaceChildren(element("p", "Asking the systems…", { class: "note" }));
  try {
    const body = await runDocument("Child", { id, ...context() }, token());
    showRecord(body.data.child, errorsByPath(body.errors), body.errors ?? []);
  } catch (error) {
    record.replaceChildren();
    say(explain(error));
  }
}

function fieldValue(value, error, render) {
  if (error) {
    const kind = error.extensions?.code === "UPSTREAM_UNAVAILABLE" ? "unavailable" : "withheld";
    return element("span", withheld(error), { class: kind });
  }
  if (value === null || value === undefined) return element("span", "not recorded", { class: "note" });
  return render(value);
}

function text(value) {
  return element("span", value);
}

function organisation(value) {
  const parts = [value.name, value.phone, address(value.address)].filter(Boolean);
  return element("span", parts.join(" · "));
}

function listOf(items, renderItem) {
  if (items.length === 0) return element("span", "none recorded", { class: "note" });
  const list = element("ul", null, { class: "plain" });
  items.forEach((item, index) => list.append(renderItem(item, index)));
  return list;
}

function carers(errors) {
  return (items) => listOf(items, (carer, index) => {
    const item = element("li", [fullName(carer.name), carer.relationship && `(${carer.relationship})`,
      carer.phone].filter(Boolean).join(" "));
    const error = errors.get(`child.carers.${index}.address`);
    item.append(" — address: ", fieldValue(carer.address, error, (v) => text(address(v))));
    return item;
  });
}

function services(errors) {
  return (items) => listOf(items, (service, index) => {
    const item = element("li", `${service.kind}: ${service.name}`
      + `${service.sensitive ? " (sensitive)" : ""}${service.source ? ` — from ${service.source}` : ""}`);
    const error = errors.get(`child.services.${index}.contact`);
    item.append(" — contact: ", fieldValue(service.contact, error, text));
    return item;
  });
}

function showRecord(child, errors, allErrors) {
  const record = $("record");
  record.replaceChildren();
  if (!child) {
    const reasons = allErrors.map((e) => `${e.extensions?.code}: ${e.message}`).join(" ");
    say(reasons || "No record.");
    return;
  }
  const name = errors.get("child.name") ? null : fullName(child.name);
  const heading = element("h3", name ?? "Name withheld", { id: "record-name" });
  if (child.shielded) heading.append(" ", element("span", "shielded", { class: "badge" }));
  const fields = element("dl", null, { class: "fields" });
  const rows = [
    ["NHS number", "nhsNumber", text],
    ["Date of birth", "dateOfBirth", text],
    ["Gender", "gender", text],
    ["Shielded", "shielded", (v) => text(v ? "yes" : "no")],
    ["Address", "address", (v) => text(address(v))],
    ["Carers", "carers", carers(errors)],
    ["School", "education", (v) => organisation(v.school)],
    ["GP practice", "primaryCare", (v) => organisation(v.practice)],
    ["Services", "services", services(errors)],
  ];
  for (const [label, key, render] of rows) {
    fields.append(element("dt", label));
    const value = element("dd", null, { "data-field": key });
    value.append(fieldValue(child[key], errors.get(`child.${key}`), render));
    fields.append(value);
  }
  record.append(heading, fields, systemsTable(child.sources ?? []));
  const others = allErrors.filter((e) => !Array.isArray(e.path) || e.path[0] !== "child");
  if (others.length) say(others.map((e) => `${e.extensions?.code}: ${e.message}`).join(" "));
}

function systemsTable(sources) {
  const table = element("table", null, { class: "systems" });
  table.append(element("caption", "Systems asked for this record"));
  const head = element("tr");
  for (const title of ["System", "Status", "Answer"]) head.append(element("th", title, { scope: "col" }));
  table.append(head);
  for (const source of sources) {
    const row = element("tr", null, { "data-connector": source.connector });
    row.append(element("th", source.connector, { scope: "row" }),
      element("td", source.status, { class: `status-${source.status}`, "data-status": source.status }),
      element("td", source.status !== "ok" ? "no answer" : source.fromCache ? "from cache" : "live",
        { "data-from-cache": String(source.fromCache) }));
    table.append(row);
  }
  return table;
}

async function getToken() {
  const note = $("token-note");
  const scopes = [...document.querySelectorAll("input[name=scope]:checked")].map((box) => box.value);
  note.textContent = "";
  try {
    const response = await fetch("/dashboard/dev-token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ scopes }),
    });
    if (response.status === 404) {
      note.textContent = "This gateway mints no demo tokens: paste one from contactpoint dev-token.";
      return;
    }
    const body = await response.json();
    if (!response.ok) {
      note.textContent = body.error ?? `HTTP ${response.status}`;
      return;
    }
    $("token").value = body.token;
    note.textContent = `Token for ${body.subject}, valid ${Math.round(body.expiresIn / 60)} minutes.`;
  } catch (error) {
    note.textContent = "The gateway could not be reached.";
  }
}

// `#nhs=...` (the demo's banner links one) fills in the form; the fragment never leaves the browser.
const linked = new URLSearchParams(window.location.hash.slice(1)).get("nhs");
if (linked) $("nhs-number").value = linked;

$("search-form").addEventListener("submit", search);
$("get-token").addEventListener("click", getToken);
$("token").addEventListener("input", () => { $("token-note").textContent = ""; });
document.body.dataset.ready = "true";
