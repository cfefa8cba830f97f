import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { PROBLEMS, problemType, type ProblemCode } from './errors.ts';

interface DocumentedCode {
  status: number;
  title: string;
  line: number;
}

const ERRORS_DOC = new URL('../docs/errors.md', import.meta.url);

/**
 * The rows of the codes table in docs/errors.md, the one headed
 * `| code | status | title | when it happens | what the client should do |`.
 */
function documentedCodes(markdown: string): Map<string, DocumentedCode> {
  const lines = markdown.split('\n');
  const header = lines.findIndex((text) => /^\|\s*code\s*\|\s*status\s*\|\s*title\s*\|/.test(text));
  assert.notEqual(header, -1, 'docs/errors.md has no table headed | code | status | title |');
  const rows = new Map<string, DocumentedCode>();
  // header + 1 is the |---| separator; the table ends at the first line that is not a row.
  for (let index = header + 2; index < lines.length && lines[index]?.startsWith('|'); index++) {
    const line = index + 1;
    // '| a | b |' splits into ['', 'a', 'b', '']: five columns make seven cells.
    const cells = (lines[index] ?? '').split('|').map((cell) => cell.trim());
    assert.equal(cells.length, 7, `docs/errors.md line ${line}: a row has five columns (is there a | inside a cell?)`);
    const code = /^`([a-z][a-z-]*)`$/.exec(cells[1] ?? '')?.[1];
    assert.ok(code !== undefined, `docs/errors.md line ${line}: the first column is a code in backticks`);
    assert.ok(!rows.has(code), `docs/errors.md line ${line}: '${code}' is documented twice`);
    rows.set(code, { status: Number(cells[2]), title: cells[3] ?? '', line });
  }
  return rows;
}

test('docs/errors.md documents every problem code with its HTTP status and title', () => {
  const documented = documentedCodes(readFileSync(ERRORS_DOC, 'utf8'));
  // Every disagreement at once, so one run tells what to add or fix.
  const wrong: string[] = [];
  for (const [code, { status, title }] of Object.entries(PROBLEMS)) {
    const row = documented.get(code);
    if (!row) {
      wrong.push(`'${code}' (${status}, ${title}) has no row`);
      continue;
    }
    if (row.status !== status) wrong.push(`line ${row.line}: '${code}' says ${row.status}; PROBLEMS says ${status}`);
    // The title is also what /problems/<code> serves: the page and the server must say the same.
    if (row.title !== title) wrong.push(`line ${row.line}: '${code}' is titled '${row.title}'; PROBLEMS says '${title}'`);
  }
  assert.deepEqual(wrong, [], `docs/errors.md disagrees with PROBLEMS in src/errors.ts:\n  ${wrong.join('\n  ')}`);
});

test('docs/errors.md documents no code that PROBLEMS does not have', () => {
  const documented = documentedCodes(readFileSync(ERRORS_DOC, 'utf8'));
  const unknown = [...documented.keys()].filter((code) => !Object.hasOwn(PROBLEMS, code));
  assert.deepEqual(unknown, []);
});

test('a problem type is the path the server answers for its code', () => {
  const code: ProblemCode = 'precondition-failed';
  assert.equal(problemType(code), '/problems/precondition-failed');
});
