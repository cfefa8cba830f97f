/** Printing data: aligned tables for people, JSON for programs. */

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Prints rows as an aligned table with a header line. */
export function printTable(columns: string[], rows: (string | number | null)[][]): void {
  const cells = rows.map((r) => r.map((c) => (c === null ? '-' : String(c))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  process.stdout.write(line(columns.map((c) => c.toUpperCase())) + '\n');
  for (const r of cells) process.stdout.write(line(r) + '\n');
}

/** Prints key/value pairs, aligned. */
export function printFields(fields: [string, string | number | null][]): void {
  const width = Math.max(...fields.map(([k]) => k.length));
  for (const [k, v] of fields) process.stdout.write(`${(k + ':').padEnd(width + 2)}${v === null ? '-' : String(v)}\n`);
}

export function note(message: string): void {
  process.stderr.write(message + '\n');
}
