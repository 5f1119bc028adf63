// Starts GraphiQL against this gateway's /graphql, with the token header preset as a placeholder.
"use strict";

(function start() {
  const HEADERS = JSON.stringify(
    { Authorization: "Bearer <paste a token from: contactpoint dev-token ...>" }, null, 2);
  const QUERY = `# ContactPoint Gateway (development). Put your token in the Headers pane first,
# and in Variables: {"search": {"nhsNumber": "<one from: contactpoint demo --fixtures>"}}
query FindChildren($search: ChildSearch!) {
  findChildren(search: $search, purpose: SAFEGUARDING) {
    id
    name { given family }
    dateOfBirth
  }
}
`;

  const fetcher = GraphiQL.createFetcher({ url: new URL("/graphql", window.location.href).href });
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, {
    fetcher,
    defaultQuery: QUERY,
    defaultHeaders: HEADERS,
    defaultEditorToolsVisibility: "headers",
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
  }));
})();
