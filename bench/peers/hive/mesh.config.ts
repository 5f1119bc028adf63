/**
 * Mesh composition of the four simulated systems (connectors/simulators) as REST sources.
 *
 *   GP_URL=... SCHOOL_URL=... COUNCIL_URL=... YOUTH_JUSTICE_URL=... \
 *     npx mesh-compose --output /some/where/supergraph.graphql
 *
 * `python -m bench.peer` sets the four base URLs from the simulators' announcement (their
 * ports are picked by the OS each run) and composes into its temporary folder. Each
 * source is described by an OpenAPI document under openapi/, written from the
 * simulators and from what the gateway's connectors call (connectors/*.py, manifests).
 * The GP is asked for FHIR JSON, as our `fhir_r4` connector asks for it.
 */
import { defineConfig } from '@graphql-mesh/compose-cli';
import { loadOpenAPISubgraph } from '@omnigraph/openapi';

function baseUrl(variable: string): string {
  const value = process.env[variable];
  if (!value) {
    throw new Error(`${variable}: the simulated system's base URL is not set`);
  }
  return value;
}

export const composeConfig = defineConfig({
  subgraphs: [
    {
      sourceHandler: loadOpenAPISubgraph('gp', {
        source: './openapi/gp.yaml',
        endpoint: baseUrl('GP_URL'),
        operationHeaders: { accept: 'application/fhir+json' },
      }),
    },
    {
      sourceHandler: loadOpenAPISubgraph('school', {
        source: './openapi/school.yaml',
        endpoint: baseUrl('SCHOOL_URL'),
      }),
    },
    {
      sourceHandler: loadOpenAPISubgraph('council', {
        source: './openapi/council.yaml',
        endpoint: baseUrl('COUNCIL_URL'),
      }),
    },
    {
      sourceHandler: loadOpenAPISubgraph('youth_justice', {
        source: './openapi/youth_justice.yaml',
        endpoint: baseUrl('YOUTH_JUSTICE_URL'),
      }),
    },
  ],
});
