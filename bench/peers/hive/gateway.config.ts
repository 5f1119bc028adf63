/**
 * Hive Gateway for the peer comparison (`python -m bench.peer`): the Mesh-composed
 * supergraph of the four simulated systems, behind the built-in JWT plugin.
 *
 *   NODE_ENV=production SUPERGRAPH_PATH=... JWKS_URL=... JWT_ISSUER=... JWT_AUDIENCE=... \
 *     npx hive-gateway supergraph --config-path gateway.config.ts --host 127.0.0.1 --port N
 *
 * Every request needs `Authorization: Bearer <JWT>`, signed ES256 or RS256 by a key of the
 * remote JWKS at JWKS_URL (fetched once, then cached by the plugin's JWKS client), with
 * that issuer and audience: a request without a token, or with one that fails any
 * check, is refused. Logging: errors only. No response cache, no rate limits, no
 * upstream retries or timeouts beyond the defaults, one process (fork 1).
 *
 * PEER_COUNT_UPSTREAM=1 (a separate gateway the bench starts before the measured one)
 * adds a plugin counting the gateway's upstream fetches by path, served as JSON at
 * /_peer/upstream-calls: that is how the bench shows the calls one request makes.
 */
import {
  createRemoteJwksSigningKeyProvider,
  defineConfig,
  extractFromHeader,
  type GatewayPlugin,
} from '@graphql-hive/gateway';

function setting(variable: string): string {
  const value = process.env[variable];
  if (!value) {
    throw new Error(`${variable} is not set`);
  }
  return value;
}

const COUNTS_PATH = '/_peer/upstream-calls';

/** Upstream fetches by URL path since start, at COUNTS_PATH. */
function upstreamCallCounter(): GatewayPlugin {
  const counts: Record<string, number> = {};
  return {
    onFetch({ url }) {
      const path = new URL(url).pathname;
      counts[path] = (counts[path] ?? 0) + 1;
    },
    onRequest({ url, endResponse, fetchAPI }) {
      if (url.pathname === COUNTS_PATH) {
        endResponse(fetchAPI.Response.json(counts));
      }
    },
  };
}

export const gatewayConfig = defineConfig({
  supergraph: setting('SUPERGRAPH_PATH'),
  logging: 'error',
  graphiql: false,
  landingPage: false,
  disableWebsockets: true,
  jwt: {
    signingKeyProviders: [createRemoteJwksSigningKeyProvider({ jwksUri: setting('JWKS_URL') })],
    tokenLookupLocations: [extractFromHeader({ name: 'authorization', prefix: 'Bearer' })],
    tokenVerification: {
      algorithms: ['ES256', 'RS256'],
      issuer: setting('JWT_ISSUER'),
      audience: setting('JWT_AUDIENCE'),
    },
    reject: { missingToken: true, invalidToken: true },
  },
  plugins: () => (process.env.PEER_COUNT_UPSTREAM === '1' ? [upstreamCallCounter()] : []),
});
