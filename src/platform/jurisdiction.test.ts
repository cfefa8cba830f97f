import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withinJurisdictions } from './jurisdiction.ts';

test('a subdivision lies inside its country; an allowed subdivision admits neither its country nor a sibling', () => {
  assert.equal(withinJurisdictions('DE', ['DE']), true);
  assert.equal(withinJurisdictions('DE-BY', ['DE']), true);
  assert.equal(withinJurisdictions('DE-BY', ['CH', 'DE']), true);
  assert.equal(withinJurisdictions('DE-BY', ['DE-BY']), true);
  assert.equal(withinJurisdictions('DE', ['DE-BY']), false);
  assert.equal(withinJurisdictions('DE-BE', ['DE-BY']), false);
  assert.equal(withinJurisdictions('DE-BE', ['DE-BY', 'DE-BE']), true);
  assert.equal(withinJurisdictions('AT-9', ['DE']), false);
  assert.equal(withinJurisdictions('DEU', ['DE']), false);
  assert.equal(withinJurisdictions('DE', []), false);
});
