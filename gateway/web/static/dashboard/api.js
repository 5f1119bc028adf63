// The dashboard's only way to the gateway: the public /graphql API, trusted documents by id.
import { documentIds } from "./documents.js";

/** A failure the user should read: the HTTP status, the error code and the gateway's words. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Run the trusted document `name` with `variables`, as the holder of `token`.
 * Resolves to the GraphQL response ({data, errors}); rejects with ApiError when
 * the request was refused whole (no data at all).
 */
export async function runDocument(name, variables, token) {
  const documentId = documentIds[name];
  if (documentId === undefined) {
    throw new Error(`No trusted document named ${name}`);
  }
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        Authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ documentId, variables }),
    });
  } catch (error) {
    throw new ApiError(0, "NETWORK", "The gateway could not be reached.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    body = null;
  }
  const first = body && Array.isArray(body.errors) ? body.errors[0] : undefined;
  if (!response.ok || body === null || !("data" in body) || body.data === null && first) {
    const code = first?.extensions?.code ?? `HTTP_${response.status}`;
    const message = first?.message ?? `The gateway answered HTTP ${response.status}.`;
    throw new ApiError(response.status, code, message);
  }
  return body;
}
