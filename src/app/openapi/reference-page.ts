/**
 * The API reference as one HTML page, rendered on the server from the OpenAPI document: every
 * operation with its parameters, body and responses, schemas written as TypeScript-like types. It
 * has no script and no inline style (the page's CSP forbids both), only a stylesheet of its own.
 */
import type { OpenApiDocument, OpenApiOperation } from './document.ts';

const METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options'] as const;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

type Schema = Record<string, unknown>;

function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function literal(value: unknown): string {
  return value === undefined ? 'undefined' : JSON.stringify(value);
}

/** Escaped text with `code` spans as <code>. */
function prose(text: string): string {
  return escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>');
}

/** Constraints of a schema worth telling a client, in words. */
function constraints(schema: Schema): string[] {
  const out: string[] = [];
  const n = (key: string) => (typeof schema[key] === 'number' ? schema[key] : undefined);
  const [minL, maxL, min, max, minI, maxI] = [n('minLength'), n('maxLength'), n('minimum'), n('maximum'), n('minItems'), n('maxItems')];
  if (minL !== undefined && maxL !== undefined) out.push(`${minL}–${maxL} characters`);
  else if (maxL !== undefined) out.push(`at most ${maxL} characters`);
  else if (minL !== undefined) out.push(`at least ${minL} character${minL === 1 ? '' : 's'}`);
  if (min !== undefined) out.push(`≥ ${min}`);
  if (max !== undefined) out.push(`≤ ${max}`);
  if (minI !== undefined) out.push(`at least ${minI} item${minI === 1 ? '' : 's'}`);
  if (maxI !== undefined) out.push(`at most ${maxI} items`);
  if (schema.uniqueItems === true) out.push('no repeats');
  if (typeof schema.pattern === 'string') out.push(`pattern ${schema.pattern}`);
  if (typeof schema.minProperties === 'number') out.push(`at least ${schema.minProperties} field${schema.minProperties === 1 ? '' : 's'}`);
  if (typeof schema.description === 'string') out.push(schema.description.replace(/\s+/g, ' '));
  return out;
}

/** A schema as a TypeScript-like type, over several lines for objects. */
export function typeText(schema: unknown, indent = ''): string {
  if (!isSchema(schema)) return schema === false ? 'never' : 'any';
  if ('const' in schema) return literal(schema.const);
  if (Array.isArray(schema.enum)) return schema.enum.map(literal).join(' | ');
  for (const key of ['anyOf', 'oneOf'] as const) {
    const members = schema[key];
    if (Array.isArray(members)) return members.map((m) => typeText(m, indent)).join(' | ');
  }
  const type = schema.type;
  if (type === 'object' || isSchema(schema.properties)) {
    const properties = isSchema(schema.properties) ? Object.entries(schema.properties) : [];
    if (properties.length === 0) return 'object';
    const required = new Set(Array.isArray(schema.required) ? schema.required.map(String) : []);
    const inner = `${indent}  `;
    const lines = properties.map(([name, property]) => {
      const notes = isSchema(property) ? constraints(property) : [];
      return `${inner}${name}${required.has(name) ? '' : '?'}: ${typeText(property, inner)}${notes.length > 0 ? `  // ${notes.join('; ')}` : ''}`;
    });
    return `{\n${lines.join('\n')}\n${indent}}`;
  }
  if (type === 'array') {
    const item = typeText(schema.items, indent);
    return /[|\n]/.test(item) ? `(${item})[]` : `${item}[]`;
  }
  if (type === 'string' && typeof schema.format === 'string') return `string (${schema.format})`;
  if (Array.isArray(type)) return type.map(String).join(' | ');
  return typeof type === 'string' ? type : 'any';
}

function anchorOf(method: string, path: string): string {
  return `${method}-${path}`.replace(/[^A-Za-z0-9]+/g, '-').replace(/-+$/, '');
}

function schemaBlock(schema: unknown): string {
  const notes = isSchema(schema) ? constraints(schema) : [];
  return `<pre><code>${escapeHtml(typeText(schema))}${notes.length > 0 ? escapeHtml(`  // ${notes.join('; ')}`) : ''}</code></pre>`;
}

function contentBlocks(content: Record<string, { schema?: unknown }> | undefined): string {
  if (!content) return '';
  return Object.entries(content)
    .map(([type, media]) => `<p class="media">${escapeHtml(type)}</p>${schemaBlock(media.schema)}`)
    .join('');
}

function operationHtml(method: string, path: string, op: OpenApiOperation): string {
  const parts: string[] = [];
  parts.push(`<article id="${anchorOf(method, path)}">`);
  parts.push(`<h3><span class="method ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h3>`);
  if (op.summary) parts.push(`<p class="summary">${escapeHtml(op.summary)}</p>`);
  if (op.description) parts.push(...op.description.split(/\n\n+/).map((p) => `<p>${prose(p)}</p>`));
  const parameters = op.parameters ?? [];
  if (parameters.length > 0) {
    parts.push('<h4>Parameters</h4><table><thead><tr><th>name</th><th>in</th><th>type</th><th>required</th><th>notes</th></tr></thead><tbody>');
    for (const p of parameters) {
      const notes = isSchema(p.schema) ? constraints(p.schema) : [];
      if (p.description) notes.push(p.description);
      parts.push(
        `<tr><td><code>${escapeHtml(p.name)}</code></td><td>${escapeHtml(p.in)}</td><td><code>${escapeHtml(typeText(p.schema))}</code></td><td>${p.required ? 'yes' : 'no'}</td><td>${escapeHtml([...new Set(notes)].join('; '))}</td></tr>`,
      );
    }
    parts.push('</tbody></table>');
  }
  if (op.requestBody) parts.push(`<h4>Request body</h4>${contentBlocks(op.requestBody.content)}`);
  parts.push('<h4>Responses</h4><dl>');
  for (const [status, response] of Object.entries(op.responses)) {
    parts.push(`<dt><code>${escapeHtml(status)}</code> ${prose(response.description)}</dt><dd>${contentBlocks(response.content)}</dd>`);
  }
  parts.push('</dl></article>');
  return parts.join('\n');
}

/** The whole page, for a document and the address of its JSON and stylesheet. */
export function renderReferencePage(doc: OpenApiDocument, links: { json: string; stylesheet: string }): string {
  const byTag = new Map<string, { method: string; path: string; op: OpenApiOperation }[]>();
  for (const tag of doc.tags ?? []) byTag.set(tag.name, []);
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = op.tags?.[0] ?? 'other';
      const list = byTag.get(tag) ?? [];
      list.push({ method, path, op });
      byTag.set(tag, list);
    }
  }
  const described = new Map((doc.tags ?? []).map((t) => [t.name, t.description ?? '']));
  const sections = [...byTag].filter(([, ops]) => ops.length > 0);
  const nav = sections
    .map(([tag, ops]) => `<li><a href="#tag-${escapeHtml(tag)}">${escapeHtml(tag)}</a><ul>${ops.map(({ method, path, op }) => `<li><a href="#${anchorOf(method, path)}"><span class="method ${method}">${method.toUpperCase()}</span> ${escapeHtml(path)}</a>${op.summary ? ` ${escapeHtml(op.summary)}` : ''}</li>`).join('')}</ul></li>`)
    .join('\n');
  const main = sections
    .map(([tag, ops]) => `<section id="tag-${escapeHtml(tag)}"><h2>${escapeHtml(tag)}</h2>${described.get(tag) ? `<p>${escapeHtml(described.get(tag) ?? '')}</p>` : ''}\n${ops.map(({ method, path, op }) => operationHtml(method, path, op)).join('\n')}</section>`)
    .join('\n');
  const intro = (doc.info.description ?? '').split(/\n\n+/).map((p) => `<p>${prose(p.replace(/\n/g, ' '))}</p>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(doc.info.title)} reference</title>
<link rel="stylesheet" href="${escapeHtml(links.stylesheet)}">
</head>
<body>
<header><h1>${escapeHtml(doc.info.title)} <small>${escapeHtml(doc.info.version)}</small></h1>
${intro}
<p>Machine-readable: <a href="${escapeHtml(links.json)}">the OpenAPI ${escapeHtml(doc.openapi)} document</a>.</p></header>
<nav aria-label="Operations"><h2>Operations</h2><ul>
${nav}
</ul></nav>
<main>
${main}
</main>
</body>
</html>
`;
}

/** The page's stylesheet, served beside it (inline styles are not allowed). */
export const REFERENCE_CSS = `body{font:15px/1.5 system-ui,sans-serif;color:#1d2330;max-width:72rem;margin:0 auto;padding:1rem 1.5rem}
h1 small{font-size:.5em;color:#5b6472}
h2{border-bottom:1px solid #d6dae1;padding-bottom:.25rem;margin-top:2.5rem}
article{border:1px solid #d6dae1;border-radius:6px;padding:.25rem 1rem 1rem;margin:1rem 0}
h3{font-size:1.05rem}
h4{margin:1rem 0 .25rem;font-size:.9rem;text-transform:uppercase;letter-spacing:.04em;color:#5b6472}
pre{background:#f4f6f8;padding:.75rem;overflow:auto;border-radius:4px;font-size:13px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border:1px solid #d6dae1;padding:.25rem .5rem;text-align:left;vertical-align:top}
dt{font-weight:600;margin-top:.5rem}
dd{margin-left:1rem}
.media{margin:.25rem 0;color:#5b6472;font-size:13px}
.method{display:inline-block;min-width:4.2em;font:600 12px/1.6 ui-monospace,monospace;text-align:center;border-radius:3px;color:#fff;background:#5b6472}
.get{background:#1f6feb}.post{background:#1a7f37}.put{background:#9a6700}.patch{background:#8250df}.delete{background:#cf222e}
nav ul{list-style:none;padding-left:1rem}
nav a{text-decoration:none}
`;
