/**
 * API keys and what they allow: pure functions, shared by the name server, its route cache and
 * the broker's request handling.
 *
 * A key is stored only as its SHA-256, which is also the principals table's key, so checking a
 * key is one GetItem (or one map lookup in the route cache). No secret is ever compared in our
 * code, so nothing needs a constant-time comparison: timing how a lookup finds or misses the
 * hash of an input an attacker chose tells them nothing about any stored key.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface Permissions {
  /** Manage topics, groups and principals, and publish and subscribe everywhere. @default false */
  admin?: boolean;
  /** Topics the principal may send to, or `'*'` for every topic. @default [] */
  publish?: string[];
  /** Consumer groups the principal may receive as, or `'*'` for every group. @default [] */
  subscribe?: string[];
}

export interface Principal {
  name: string;
  permissions: Permissions;
  /** SHA-256 of the API key, hex. Not a secret by itself, but never worth showing. */
  keyHash: string;
  createdAt: number;
}

export type Action = 'admin' | 'publish' | 'subscribe';

/** In a permission list, every topic or every group. */
export const wildcard = '*';

/**
 * Whether a principal may do `action` on `resource` (a topic for publish, a consumer group for
 * subscribe; ignored for admin). Admin may do everything; otherwise a resource must be listed by
 * name, or `'*'` must be listed, under the action.
 */
export function authorize(principal: Pick<Principal, 'permissions'>, action: Action, resource: string): boolean {
  const { admin, publish, subscribe } = principal.permissions;
  if (admin === true) return true;
  if (action === 'admin') return false;
  const granted = action === 'publish' ? publish : subscribe;
  return granted !== undefined && (granted.includes(wildcard) || granted.includes(resource));
}

/** A new API key: `sk_` and 32 random bytes in base64url (46 characters). */
export function generateApiKey(): string {
  return `sk_${randomBytes(32).toString('base64url')}`;
}

/** The SHA-256 of an API key, hex: the principals table's key. */
export function hashApiKey(apiKey: string): string {
  return createHash('sha256').update(apiKey, 'utf8').digest('hex');
}

const apiKeyPattern = /^[\x21-\x7e]{16,256}$/;

/** Whether a value can be an API key at all: 16 to 256 printable ASCII characters. */
export function isWellFormedApiKey(apiKey: unknown): apiKey is string {
  return typeof apiKey === 'string' && apiKeyPattern.test(apiKey);
}
