import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Type } from 'typebox';
import type { OpenApiDocument } from './document.ts';
import { escapeHtml, renderReferencePage, typeText } from './reference-page.ts';

describe('typeText', () => {
  test('writes schemas as TypeScript-like types, with their constraints', () => {
    const schema = Type.Object(
      {
        title: Type.String({ minLength: 1, maxLength: 500 }),
        due: Type.Optional(Type.Union([Type.String({ format: 'date' }), Type.Null()])),
        priority: Type.Union([Type.Literal('low'), Type.Literal('high')]),
        labels: Type.Array(Type.String(), { maxItems: 20, uniqueItems: true }),
        owner: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        anything: Type.Unknown(),
      },
      { additionalProperties: false },
    );
    assert.equal(
      typeText(schema),
      [
        '{',
        '  title: string  // 1–500 characters',
        '  due?: string (date) | null',
        '  priority: "low" | "high"',
        '  labels: string[]  // at most 20 items; no repeats',
        '  owner: {',
        '    id: string (uuid)',
        '  }',
        '  anything: any',
        '}',
      ].join('\n'),
    );
    assert.equal(typeText(Type.Array(Type.Union([Type.String(), Type.Null()]))), '(string | null)[]');
    assert.equal(typeText({ type: 'string', enum: ['a', 'b'] }), '"a" | "b"');
  });
});

describe('renderReferencePage', () => {
  const doc: OpenApiDocument = {
    openapi: '3.1.0',
    info: { title: 'API <beta>', version: '1.0', description: 'Send `If-Match`.' },
    tags: [{ name: 'things', description: 'Things & more' }],
    paths: {
      '/api/things/{id}': {
        get: {
          summary: '<img src=x onerror=alert(1)>',
          tags: ['things'],
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
          responses: { '200': { description: 'OK', content: { 'application/json': { schema: { type: 'object', properties: { name: { type: 'string', pattern: '^<script>$' } } } } } } },
        },
      },
    },
  };

  test('escapes everything it is given and has no script or inline style', () => {
    const html = renderReferencePage(doc, { json: '/api/openapi.json', stylesheet: '/api/reference.css' });
    assert.doesNotMatch(html, /<script|<style|\sstyle=|<img/i);
    assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt;'));
    assert.ok(html.includes('pattern ^&lt;script&gt;$'));
    assert.ok(html.includes('<title>API &lt;beta&gt; reference</title>'));
    assert.ok(html.includes('<p>Send <code>If-Match</code>.</p>'));
    assert.ok(html.includes('<a href="#get-api-things-id">'), 'a table of contents links each operation');
    assert.ok(html.includes('<tr><td><code>id</code></td><td>path</td><td><code>string (uuid)</code></td><td>yes</td>'));
  });

  test('escapeHtml covers the five characters that matter in text and attributes', () => {
    assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });
});
