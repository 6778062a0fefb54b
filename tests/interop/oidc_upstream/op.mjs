// panva's oidc-provider (npm, a certified OpenID provider) as the upstream
// OpenID provider of tests/api/upstream_oidc.rs: one confidential client
// (the ENT), two people, PKCE required, RP-initiated logout. The login and
// consent pages are the provider's development interactions (any password).
//
// Usage: node op.mjs <redirect_uri> <post_logout_redirect_uri>
// Prints the port it listens on (127.0.0.1, chosen by the system).

import http from 'node:http';
import Provider from 'oidc-provider';

const [redirectUri, postLogoutUri] = process.argv.slice(2);

// Standard output carries the port only (the test stops reading it then):
// the provider's notices go to standard error.
console.log = console.info = console.warn = (...args) => console.error(...args);

// `fr_edu_id` plays ÉduConnect's identifier: only in userinfo (the ID token
// of a code flow carries `sub` alone), so the ENT must ask userinfo for it.
const people = {
  'zoe.martin': { given_name: 'Zoé', family_name: 'Martin', email: 'zoe.martin@example.test', fr_edu_id: '4242' },
  'leo.petit': { given_name: 'Léo', family_name: 'Petit', email: 'leo.petit@example.test', fr_edu_id: '9999' },
};

const configuration = {
  clients: [{
    client_id: 'ent-touraine',
    client_secret: 'Secret-Du-Client-ENT-2026',
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [postLogoutUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  scopes: ['openid', 'profile', 'email', 'ent'],
  claims: {
    openid: ['sub'],
    profile: ['given_name', 'family_name'],
    email: ['email'],
    ent: ['fr_edu_id'],
  },
  pkce: { required: () => true },
  async findAccount(_ctx, id) {
    const person = people[id];
    if (!person) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...person }; } };
  },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  cookies: { keys: ['cle-de-test-des-cookies-du-fournisseur'] },
};

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, configuration);
  server.on('request', provider.callback());
  process.stdout.write(`${port}\n`);
});
