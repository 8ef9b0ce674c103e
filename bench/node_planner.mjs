// A dry-run planner as platforms write their own: readdirSync + statSync per file, classify by
// name prefix, plan by age (sessions older than 14 days, sender keys older than 3 days, all but
// the newest 50 pre-keys by id), print the plan as JSON lines. The benchmark's second peer for
// `wa-sessions cleanup --dry-run --json` (bench/baselines.py).
//
//   node bench/node_planner.mjs ROOT
import { readdirSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const DAY_MS = 86400000;
const SESSION_MAX_MS = 14 * DAY_MS;
const SENDER_KEY_MAX_MS = 3 * DAY_MS;
const PRE_KEYS_KEPT = 50;
const PROTECTED = ['creds', 'app-state-sync-key-', 'app-state-sync-version-', 'lid-mapping-'];

function category(name) {
  if (PROTECTED.some((prefix) => name.startsWith(prefix))) return 'protected';
  if (name.startsWith('pre-key-')) return 'pre-key';
  if (name.startsWith('session-')) return 'session';
  if (name.startsWith('sender-key-memory-')) return 'sender-key-memory';
  if (name.startsWith('sender-key-')) return 'sender-key';
  return 'other';
}

function plan(folder, now) {
  const lines = [];
  const preKeys = [];
  for (const name of readdirSync(folder)) {
    if (name.startsWith('.')) continue;
    const stats = statSync(join(folder, name));
    if (!stats.isFile()) continue;
    const kind = category(name);
    const age = now - stats.mtimeMs;
    if (kind === 'pre-key') {
      preKeys.push([parseInt(name.slice(8), 10), name, stats.size]);
    } else if (kind === 'session' && age > SESSION_MAX_MS) {
      lines.push({ file: name, category: kind, reason: `older than 14d (${Math.floor(age / DAY_MS)}d)`, bytes: stats.size });
    } else if (kind === 'sender-key' && age > SENDER_KEY_MAX_MS) {
      lines.push({ file: name, category: kind, reason: `older than 3d (${Math.floor(age / DAY_MS)}d)`, bytes: stats.size });
    }
  }
  preKeys.sort((a, b) => b[0] - a[0]);
  for (const [, name, size] of preKeys.slice(PRE_KEYS_KEPT)) {
    lines.push({ file: name, category: 'pre-key', reason: `beyond the newest ${PRE_KEYS_KEPT}`, bytes: size });
  }
  return lines;
}

const root = process.argv[2];
const now = Date.now();
for (const tenant of readdirSync(root).sort()) {
  if (!tenant.startsWith('company_')) continue;
  const text = plan(join(root, tenant), now)
    .map((line) => JSON.stringify({ company: tenant, ...line }))
    .join('\n');
  if (text) writeSync(1, text + '\n');
}
