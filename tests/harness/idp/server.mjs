#!/usr/bin/env node
// Local OAuth 2.0 / OpenID Connect provider for vault's tests and demo.
//
// Built on the npm package `oidc-provider` (v9). It listens on 127.0.0.1 only,
// prints ONE JSON line to stdout when ready:
//   {"issuer": "http://127.0.0.1:PORT", "port": PORT, "pid": PID}
// and writes everything else to stderr. See README.md for the flags, the
// test-only endpoints and the behaviour of oidc-provider that this relies on.

import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

// oidc-provider prints some notices with console.info (i.e. to stdout) and
// warns about Node 20 at import time. stdout is reserved for the ready line,
// so route console.log/console.info to stderr BEFORE importing it.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

const { default: Provider } = await import('oidc-provider');
// Not in the package's documented API, but the package has no "exports" map and the
// version is pinned: used only to size the in-memory store (--store-size).
const { default: MemoryAdapter } = await import('oidc-provider/lib/adapters/memory_adapter.js');
const { default: LRU } = await import('oidc-provider/lib/helpers/lru.js');

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const PUBLIC_CLIENT_ID = 'vault-cli';
const LOOPBACK_REDIRECT_URI = 'http://127.0.0.1/callback';
const INTROSPECTOR_ID = 'introspector';
const INTROSPECTOR_SECRET = 'introspector-secret';
const SLOW_DOWN_STEP_MS = 5000; // RFC 8628 section 3.5: add 5 seconds

// ---------------------------------------------------------------- arguments

function usage() {
  return `usage: node server.mjs [options]
  --port N                    port to listen on (default 0: a free port)
  --access-ttl SECONDS        access token lifetime (default 3600)
  --refresh-ttl SECONDS       refresh token lifetime (default 86400)
  --device-code-ttl SECONDS   device code lifetime (default 600)
  --interval SECONDS          "interval" sent in the device authorization response (default 1)
  --slow-down-first N         answer slow_down to the first N polls of each device code (default 0)
  --slow-down-tolerance-ms MS a poll this much early is still accepted (default 50)
  --no-rotate-refresh         do not rotate refresh tokens (rotation is on by default)
  --grant-extra-scope S       add scope S to every token response's "scope" (misbehaviour)
  --grant-extra-scope-on-refresh S
                              add scope S to the "scope" of refresh_token grant responses only
  --token-type T              rewrite "token_type" in token responses to T (misbehaviour)
  --omit-scope                remove "scope" from token responses (misbehaviour)
  --store-size N              entries the in-memory store keeps (default 1000, oidc-provider's own)
  --refresh-delay-ms MS       hold each refresh_token grant's answer back MS ms after the grant
                              was made (the presented refresh token is spent by then; default 0)
  -h, --help                  show this help`;
}

function parseCli(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '0' },
        'access-ttl': { type: 'string', default: '3600' },
        'refresh-ttl': { type: 'string', default: '86400' },
        'device-code-ttl': { type: 'string', default: '600' },
        interval: { type: 'string', default: '1' },
        'slow-down-first': { type: 'string', default: '0' },
        'slow-down-tolerance-ms': { type: 'string', default: '50' },
        'no-rotate-refresh': { type: 'boolean', default: false },
        'grant-extra-scope': { type: 'string' },
        'grant-extra-scope-on-refresh': { type: 'string' },
        'token-type': { type: 'string' },
        'omit-scope': { type: 'boolean', default: false },
        'store-size': { type: 'string', default: '1000' },
        'refresh-delay-ms': { type: 'string', default: '0' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    console.error(`server.mjs: ${err.message}\n${usage()}`);
    process.exit(2);
  }
  const v = parsed.values;
  if (v.help) {
    console.error(usage());
    process.exit(0);
  }

  const int = (name, min) => {
    const raw = v[name];
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) {
      console.error(`server.mjs: --${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
      process.exit(2);
    }
    return n;
  };

  return {
    port: int('port', 0),
    accessTtl: int('access-ttl', 1),
    refreshTtl: int('refresh-ttl', 1),
    deviceCodeTtl: int('device-code-ttl', 1),
    interval: int('interval', 0),
    slowDownFirst: int('slow-down-first', 0),
    slowDownToleranceMs: int('slow-down-tolerance-ms', 0),
    rotateRefresh: !v['no-rotate-refresh'],
    grantExtraScope: v['grant-extra-scope'] || null,
    grantExtraScopeOnRefresh: v['grant-extra-scope-on-refresh'] || null,
    tokenType: v['token-type'] || null,
    omitScope: v['omit-scope'],
    storeSize: int('store-size', 1),
    refreshDelayMs: int('refresh-delay-ms', 0),
  };
}

const opts = parseCli(process.argv.slice(2));

// ---------------------------------------------------------------- helpers

function sha256Hex(value) {
  return createHash('sha256').update(value).digest('hex');
}

async function readRawBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) {
      throw new Error('request entity too large');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function jsonError(ctx, status, error, description) {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = description ? { error, error_description: description } : { error };
}

// ---------------------------------------------------------------- poll state

// device_code -> { key, intervalMs, lastPollMs, count, finished, consumed, expiresAtMs }
//   finished: a poll got an answer other than authorization_pending (no more
//             slow_down checks); consumed: it got one other than that or
//             expired_token (the code was used, denied or is unknown).
const deviceState = new Map();
// key (user_code, or sha256 hex of an unknown device_code) -> [{ t, result, status }]
const pollLog = new Map();

function stateFor(deviceCode) {
  let state = deviceState.get(deviceCode);
  if (!state) {
    // A device code we did not see issued (or a garbage one): key by hash.
    state = {
      key: sha256Hex(deviceCode),
      intervalMs: opts.interval * 1000,
      lastPollMs: null,
      count: 0,
      finished: false,
      consumed: false,
      expiresAtMs: null,
    };
    deviceState.set(deviceCode, state);
  }
  return state;
}

// Every refresh_token grant and every successful device_code grant, in order:
// { t, grant_type, status, result, error_detail, presented_sha256, issued_refresh_sha256,
//   issued_access_sha256 }. Tokens appear only as SHA-256 hex.
const grantLog = [];
// Every revocation request: { t, client_id, status, token_sha256, token_type_hint, found }.
const revocationLog = [];

function sha256OrNull(value) {
  return typeof value === 'string' && value ? sha256Hex(value) : null;
}

function recordGrant(ctx, params, t) {
  const grantType = params.get('grant_type');
  const body = ctx.body && typeof ctx.body === 'object' ? ctx.body : {};
  const ok = ctx.status === 200 && Boolean(body.access_token);
  if (grantType !== 'refresh_token'
      && !((grantType === DEVICE_CODE_GRANT || grantType === 'authorization_code') && ok)) return;
  grantLog.push({
    t,
    grant_type: grantType,
    status: ctx.status,
    result: ok ? 'ok' : (body.error || `http_${ctx.status}`),
    // oidc-provider's own reason, e.g. "refresh token already used" for a replayed one.
    error_detail: ok ? null : (ctx.state.grantErrorDetail || null),
    presented_sha256: grantType === 'refresh_token' ? sha256OrNull(params.get('refresh_token')) : null,
    issued_refresh_sha256: ok ? sha256OrNull(body.refresh_token) : null,
    issued_access_sha256: ok ? sha256OrNull(body.access_token) : null,
  });
}

function recordPoll(state, entry) {
  let list = pollLog.get(state.key);
  if (!list) {
    list = [];
    pollLog.set(state.key, list);
  }
  list.push(entry);
}

// ---------------------------------------------------------------- accounts

async function findAccount(_ctx, sub) {
  return {
    accountId: sub,
    async claims() {
      return {
        sub,
        name: sub,
        preferred_username: sub,
        email: `${sub}@example.test`,
        email_verified: true,
      };
    },
  };
}

// ---------------------------------------------------------------- provider

function makeConfiguration() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

  const allowedFor = (client, token) => client.clientId === INTROSPECTOR_ID
    || client.clientId === token.clientId;

  return {
    clients: [
      {
        client_id: PUBLIC_CLIENT_ID,
        client_name: 'vault CLI',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        // The authorization code grant with PKCE (required for a public client) and the
        // loopback redirect of RFC 8252 section 7.3: for a native client oidc-provider
        // accepts this URI on any port of 127.0.0.1.
        grant_types: [DEVICE_CODE_GRANT, 'refresh_token', 'authorization_code'],
        response_types: ['code'],
        redirect_uris: [LOOPBACK_REDIRECT_URI],
      },
      {
        client_id: INTROSPECTOR_ID,
        client_secret: INTROSPECTOR_SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: [],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    findAccount,
    scopes: [
      'openid', 'offline_access', 'profile', 'email',
      'repo', 'read:org', 'read:user', 'write:org', 'admin:org',
    ],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: {
        enabled: true,
        // Default: a confidential client may not revoke another client's
        // token (it gets invalid_request). Let `introspector` revoke any.
        allowedPolicy: async (_ctx, client, token) => allowedFor(client, token),
      },
      introspection: {
        enabled: true,
        // Default already lets confidential clients introspect any token;
        // made explicit here so only `introspector` (or the owner) can.
        allowedPolicy: async (_ctx, client, token) => allowedFor(client, token),
      },
    },
    // The default already issues one for offline_access when the client may
    // use refresh_token; made unconditional for the public client.
    issueRefreshToken: async (_ctx, client, source) => client.clientId === PUBLIC_CLIENT_ID
      || (client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access')),
    rotateRefreshToken: () => opts.rotateRefresh,
    // Revoking any token (access or refresh, by its client or by the
    // introspector) destroys the whole grant.
    revokeGrantPolicy: () => true,
    ttl: {
      AccessToken: () => opts.accessTtl,
      RefreshToken: () => opts.refreshTtl,
      DeviceCode: () => opts.deviceCodeTtl,
      IdToken: () => opts.accessTtl,
      Grant: () => Math.max(opts.accessTtl, opts.refreshTtl) + opts.deviceCodeTtl,
      Session: () => Math.max(opts.accessTtl, opts.refreshTtl) + opts.deviceCodeTtl,
      Interaction: () => Math.max(opts.deviceCodeTtl, 60),
    },
    // Stack traces of 5xx errors go to stderr via the server_error event.
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
      ctx.body = `<!DOCTYPE html><html><head><title>oops! something went wrong</title></head><body>
<h1>oops! something went wrong</h1>
${Object.entries(out).map(([k, v]) => `<p><strong>${esc(k)}</strong>: <span id="${esc(k)}">${esc(v)}</span></p>`).join('\n')}
</body></html>`;
    },
  };
}

// ---------------------------------------------------------------- middleware

// Every request other than the test-only ones: { t, method, path } (no query string).
const requestLog = [];

// Test-only endpoints, answered before oidc-provider sees the request.
async function testEndpoints(ctx, next) {
  if (ctx.path === '/_test/requests' && ctx.method === 'GET') {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { requests: requestLog };
    return;
  }
  if (!ctx.path.startsWith('/_test/')) {
    requestLog.push({ t: Date.now(), method: ctx.method, path: ctx.path });
  }
  if (ctx.path === '/_test/polls' && ctx.method === 'GET') {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = Object.fromEntries(pollLog);
    return;
  }
  if (ctx.path === '/_test/grants' && ctx.method === 'GET') {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { grants: grantLog, revocations: revocationLog };
    return;
  }
  if (ctx.path === '/_test/config' && ctx.method === 'GET') {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ...opts };
    return;
  }
  await next();
}

// Adds "interval" to the device authorization response (oidc-provider v9 sends
// none) and remembers device_code -> user_code for the poll log.
async function deviceAuthorization(ctx, next) {
  await next();
  if (ctx.path !== '/device/auth' || ctx.method !== 'POST') return;
  const body = ctx.body;
  if (ctx.status !== 200 || !body || typeof body !== 'object' || !body.device_code) return;
  ctx.body = { ...body, interval: opts.interval };
  deviceState.set(body.device_code, {
    key: body.user_code,
    intervalMs: opts.interval * 1000,
    lastPollMs: null,
    count: 0,
    finished: false,
    consumed: false,
    expiresAtMs: Date.now() + Number(body.expires_in) * 1000,
  });
  pollLog.set(body.user_code, []);
}

// Token endpoint: slow_down enforcement for device_code polls, poll logging,
// and the response-rewriting misbehaviours.
async function tokenEndpoint(ctx, next) {
  if (ctx.path !== '/token' || ctx.method !== 'POST' || !ctx.is('application/x-www-form-urlencoded')) {
    await next();
    return;
  }

  // Read the body ourselves; oidc-provider's body parser falls back to
  // req.body when the stream was already consumed.
  let raw;
  try {
    raw = await readRawBody(ctx.req);
  } catch (err) {
    jsonError(ctx, 400, 'invalid_request', `failed to read the request body: ${err.message}`);
    return;
  }
  ctx.req.body = raw;
  const params = new URLSearchParams(raw);

  let state = null;
  const startedMs = Date.now();
  if (params.get('grant_type') === DEVICE_CODE_GRANT && params.get('device_code')) {
    state = stateFor(params.get('device_code'));
    const now = Date.now();
    state.count += 1;
    const previous = state.lastPollMs;
    state.lastPollMs = now;

    // Only pending device codes are rate limited: once a poll got a final
    // answer (tokens, access_denied, expired_token ...), later polls go
    // straight to oidc-provider (a replay then gets invalid_grant).
    const forced = state.count <= opts.slowDownFirst;
    const early = !state.finished && previous !== null
      && now - previous + opts.slowDownToleranceMs < state.intervalMs;
    if (forced || early) {
      state.intervalMs += SLOW_DOWN_STEP_MS;
      recordPoll(state, {
        t: now,
        result: 'slow_down',
        status: 400,
        forced,
        since_previous_ms: previous === null ? null : now - previous,
        required_interval_ms: state.intervalMs,
      });
      jsonError(ctx, 400, 'slow_down', forced
        ? 'forced slow_down (--slow-down-first)'
        : `polling too fast; wait at least ${state.intervalMs / 1000} seconds between polls`);
      return;
    }

    try {
      await next();
      // oidc-provider's in-memory store drops a device code clockTolerance
      // (15 s) after it expires; from then on it answers invalid_grant. Keep
      // answering expired_token for a code we issued and that has expired.
      if (!state.consumed && state.expiresAtMs !== null && now >= state.expiresAtMs
          && ctx.status === 400 && ctx.body?.error === 'invalid_grant') {
        jsonError(ctx, 400, 'expired_token', 'device code is expired');
      }
    } finally {
      const body = ctx.body && typeof ctx.body === 'object' ? ctx.body : {};
      const result = ctx.status === 200 && body.access_token ? 'ok' : (body.error || `http_${ctx.status}`);
      if (result !== 'authorization_pending') state.finished = true;
      if (result !== 'authorization_pending' && result !== 'expired_token') state.consumed = true;
      recordPoll(state, {
        t: now,
        result,
        status: ctx.status,
        since_previous_ms: previous === null ? null : now - previous,
        required_interval_ms: state.intervalMs,
      });
    }
  } else {
    await next();
  }
  recordGrant(ctx, params, startedMs);
  if (opts.refreshDelayMs > 0 && params.get('grant_type') === 'refresh_token') {
    // A slow provider: the grant is made (and logged) now, its answer sent later.
    await new Promise((resolve) => setTimeout(resolve, opts.refreshDelayMs));
  }

  const body = ctx.body;
  if (ctx.status === 200 && body && typeof body === 'object' && body.access_token) {
    const rewritten = { ...body };
    const extra = [opts.grantExtraScope];
    if (params.get('grant_type') === 'refresh_token') extra.push(opts.grantExtraScopeOnRefresh);
    for (const scope of extra.filter(Boolean)) {
      const scopes = (rewritten.scope || '').split(' ').filter(Boolean);
      if (!scopes.includes(scope)) scopes.push(scope);
      rewritten.scope = scopes.join(' ');
    }
    if (opts.tokenType) rewritten.token_type = opts.tokenType;
    if (opts.omitScope) delete rewritten.scope;
    ctx.body = rewritten;
  }
}

// With --grant-extra-scope, introspection of an active token reports the extra
// scope too, so the misbehaving server is at least consistent with itself.
async function introspectionEndpoint(ctx, next) {
  await next();
  if (!opts.grantExtraScope || ctx.path !== '/token/introspection' || ctx.method !== 'POST') return;
  const body = ctx.body;
  if (ctx.status !== 200 || !body || typeof body !== 'object' || body.active !== true) return;
  const scopes = (body.scope || '').split(' ').filter(Boolean);
  if (!scopes.includes(opts.grantExtraScope)) scopes.push(opts.grantExtraScope);
  ctx.body = { ...body, scope: scopes.join(' ') };
}

// Logs every revocation request (token as SHA-256 hex) for /_test/grants.
async function revocationEndpoint(ctx, next) {
  if (ctx.path !== '/token/revocation' || ctx.method !== 'POST') {
    await next();
    return;
  }
  const t = Date.now();
  try {
    await next();
  } finally {
    const oidc = ctx.oidc;
    const entities = oidc?.entities || {};
    revocationLog.push({
      t,
      client_id: oidc?.client?.clientId || null,
      status: ctx.status,
      token_sha256: sha256OrNull(oidc?.params?.token),
      token_type_hint: oidc?.params?.token_type_hint || null,
      found: entities.RefreshToken ? 'RefreshToken' : (entities.AccessToken ? 'AccessToken' : null),
    });
  }
}

// ---------------------------------------------------------------- startup

let handler = (_req, res) => {
  res.statusCode = 503;
  res.end('starting');
};
const server = createServer((req, res) => handler(req, res));

server.on('error', (err) => {
  console.error(`server.mjs: ${err.stack || err}`);
  process.exit(1);
});

server.listen(opts.port, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const configuration = makeConfiguration();
  if (opts.storeSize !== 1000) {
    // oidc-provider's default memory adapter is an LRU of 1000 entries (about ten per
    // login): a long load test would evict live grants. Same adapter, bigger store.
    const store = new LRU({ maxSize: opts.storeSize });
    // 15: oidc-provider's default clockTolerance, which its own memory adapter is given.
    configuration.adapter = (model) => new MemoryAdapter(model, store, 15);
  }
  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (_ctx, err) => console.error('server_error:', err));
  provider.on('grant.error', (ctx, err) => {
    ctx.state.grantErrorDetail = err.error_detail || err.message;
    if (err.error !== 'authorization_pending') console.error('grant.error:', err.error, err.message);
  });

  provider.use(testEndpoints);
  provider.use(deviceAuthorization);
  provider.use(tokenEndpoint);
  provider.use(introspectionEndpoint);
  provider.use(revocationEndpoint);

  handler = provider.callback();

  // stderr first: once the ready line is on stdout, a reader may look at stderr at once.
  console.error(`oidc test provider ready at ${issuer} (options: ${JSON.stringify(opts)})`);
  process.stdout.write(`${JSON.stringify({ issuer, port, pid: process.pid })}\n`);
});

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`received ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
