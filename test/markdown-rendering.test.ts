/**
 * Task descriptions and comments are Markdown. The API stores and returns the source only, as JSON
 * data (never HTML: see http-tasks.test.ts); the web app renders it with react-markdown and its
 * defaults. This proves that renderer, so configured, turns script and event-handler payloads into
 * inert text and drops dangerous URLs: nothing an author writes comes back executable.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import Markdown from 'react-markdown';
import { XSS_PAYLOADS } from './helpers/xss.ts';


/** Tags CommonMark itself produces: nothing an author can inject. */
const ALLOWED_TAGS = new Set(['p', 'a', 'img', 'em', 'strong', 'code', 'pre', 'blockquote', 'ul', 'ol', 'li', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'br']);
const ALLOWED_ATTRIBUTES = new Set(['href', 'src', 'alt', 'title', 'class']);

/** Every tag of an HTML string with its attribute names, as a browser's tokenizer reads them. */
function tags(html: string): { name: string; attributes: string[] }[] {
  const found: { name: string; attributes: string[] }[] = [];
  for (const m of html.matchAll(/<\/?([a-zA-Z][a-zA-Z0-9]*)([^>]*)>/g)) {
    // Attribute names: drop quoted values, then unquoted ones, and what is left are the names.
    const names = (m[2] ?? '').replace(/"[^"]*"|'[^']*'/g, '').replace(/\s*=\s*[^\s>]*/g, '');
    const attributes = names.split(/[\s/]+/).filter((a) => a !== '').map((a) => a.toLowerCase());
    found.push({ name: (m[1] ?? '').toLowerCase(), attributes });
  }
  return found;
}

/** What the web app shows for a description: react-markdown with its default options. */
function render(source: string): string {
  return renderToStaticMarkup(createElement(Markdown, null, source));
}

describe('Markdown as the web app renders it (react-markdown, defaults)', () => {
  test('renders CommonMark', () => {
    assert.equal(render('# Title\n\nSome *em* and **strong** and `code`.'), '<h1>Title</h1>\n<p>Some <em>em</em> and <strong>strong</strong> and <code>code</code>.</p>');
    assert.equal(render('[docs](https://example.com/a?b=1&c=2)'), '<p><a href="https://example.com/a?b=1&amp;c=2">docs</a></p>');
  });

  for (const payload of XSS_PAYLOADS) {
    test(`never executable: ${JSON.stringify(payload)}`, () => {
      const html = render(payload);
      const found = tags(html);
      for (const tag of found) {
        assert.ok(ALLOWED_TAGS.has(tag.name), `<${tag.name}> in ${html}`);
        for (const attribute of tag.attributes) assert.ok(ALLOWED_ATTRIBUTES.has(attribute), `${attribute} on <${tag.name}> in ${html}`);
      }
      for (const m of html.matchAll(/(?:href|src)="([^"]*)"/g)) {
        const url = (m[1] ?? '').replace(/&amp;/g, '&');
        assert.ok(/^(https?:|mailto:|#|\/)/i.test(url) || !/^[a-z][a-z0-9+.\s-]*:/i.test(url), `URL ${url} in ${html}`);
      }
      // Every '<' left opens one of the tags checked above: the rest of the payload is text.
      assert.equal(html.split('<').length - 1, found.length, html);
    });
  }

  test('raw HTML is shown as text, not dropped: the author sees what they wrote', () => {
    assert.equal(render('<b>bold?</b>'), '<p>&lt;b&gt;bold?&lt;/b&gt;</p>');
  });

  test('a dangerous link keeps its text and loses its URL', () => {
    assert.equal(render('[click](javascript:alert(1))'), '<p><a href="">click</a></p>');
  });
});
