/**
 * A quick accessibility check of the page in the browser, in the spirit of axe's basic rules: one
 * main landmark and one h1, a language, every form control labelled, every button and link named,
 * ids unique, and every id that a label or ARIA attribute points to present. It is no substitute
 * for axe or a screen reader, but it catches the slips that are easy to make.
 */
import type { Page } from 'playwright-core';

// Runs in the page, so it is a string: the suites are type-checked without the DOM's types.
const CHECK = `(() => {
  const problems = [];
  const text = (el) => (el.getAttribute('aria-label') || el.textContent || el.getAttribute('title') || '').trim();
  const named = (el) => {
    if (text(el) !== '') return true;
    const by = el.getAttribute('aria-labelledby');
    return by !== null && by.split(/\\s+/).some((id) => (document.getElementById(id)?.textContent ?? '').trim() !== '');
  };
  if (document.querySelectorAll('main').length !== 1) problems.push('not exactly one <main>');
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one <h1>: ' + document.querySelectorAll('h1').length);
  if (!document.documentElement.lang) problems.push('no lang on <html>');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    if ((el.labels?.length ?? 0) === 0 && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby')) problems.push('unlabelled ' + el.tagName.toLowerCase() + ' ' + (el.name || el.id));
  }
  for (const el of document.querySelectorAll('button, a[href], summary, [role=button]')) {
    if (!named(el)) problems.push('no accessible name: ' + el.outerHTML.slice(0, 100));
  }
  const ids = new Map();
  for (const el of document.querySelectorAll('[id]')) ids.set(el.id, (ids.get(el.id) ?? 0) + 1);
  for (const [id, n] of ids) if (n > 1) problems.push('id used ' + n + ' times: ' + id);
  for (const el of document.querySelectorAll('[aria-describedby], [aria-labelledby], label[for]')) {
    const refs = [el.getAttribute('aria-describedby'), el.getAttribute('aria-labelledby'), el.getAttribute('for')].filter(Boolean).join(' ').split(/\\s+/);
    for (const id of refs) if (id && !document.getElementById(id)) problems.push('points to a missing id ' + id + ': ' + el.outerHTML.slice(0, 100));
  }
  for (const el of document.querySelectorAll('img')) if (!el.hasAttribute('alt')) problems.push('image without alt: ' + el.outerHTML.slice(0, 100));
  return problems;
})()`;

/** What the check finds on the page as it is now; empty when nothing. */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(CHECK);
}
