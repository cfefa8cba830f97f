/** Tenant slugs: DNS labels, lower case, short enough for the role and database names built from them. */

export const MAX_SLUG_LENGTH = 40;

/** Names that belong to the platform itself or invite confusion. */
export const RESERVED_SLUGS: ReadonlySet<string> = new Set([
  'www', 'api', 'ops', 'admin', 'app', 'status', 'mail', 'smtp', 'imap', 'pop', 'ftp', 'ssh', 'vpn',
  'static', 'assets', 'cdn', 'media', 'files', 'docs', 'help', 'support', 'billing', 'auth', 'login',
  'sso', 'oauth', 'id', 'account', 'accounts', 'dashboard', 'console', 'portal', 'internal', 'system',
  'root', 'localhost', 'taskflow', 'template', 'postgres', 'backup', 'backups', 'metrics', 'health',
  'dev', 'test', 'staging', 'demo-template', 'public', 'security', 'abuse', 'postmaster', 'hostmaster',
  'webmaster', 'ns', 'ns1', 'ns2', 'dns', 'mx', 'autoconfig', 'autodiscover', 'wpad', 'isatap',
]);

const LABEL_CHARS = /^[a-z0-9-]+$/;

/** Returns why a slug is not acceptable, or null when it is. */
export function slugProblem(slug: string): string | null {
  if (slug.length === 0) return 'a slug cannot be empty';
  if (slug.length > MAX_SLUG_LENGTH) return `a slug has at most ${MAX_SLUG_LENGTH} characters (got ${slug.length})`;
  if (slug !== slug.toLowerCase()) return 'a slug is lower case (a-z, 0-9 and -)';
  if (!LABEL_CHARS.test(slug) || slug.startsWith('-') || slug.endsWith('-')) return 'a slug is a DNS label: a-z, 0-9 and -, not starting or ending with -';
  if (slug.includes('--')) return "a slug cannot contain '--' (reserved for internationalised and encoded names)";
  if (RESERVED_SLUGS.has(slug)) return `'${slug}' is reserved`;
  return null;
}

/** The database and role names a tenant is created with; derived once and kept after renames. */
export function tenantObjectNames(slug: string): { database: string; ownerRole: string; loginRole: string } {
  const base = `tenant_${slug.replaceAll('-', '_')}`;
  return { database: base, ownerRole: `${base}_owner`, loginRole: `${base}_app` };
}
