import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decideLeader, type PatroniMember, type PatroniView } from './patroni.ts';

const A = 'http://127.0.0.1:8008';
const B = 'http://127.0.0.1:8009';

function member(name: string, role: string, api: string, port: number): PatroniMember {
  return { name, role, state: 'running', api_url: `${api}/patroni`, host: '127.0.0.1', port, timeline: 3 };
}

function view(endpoint: string, members: PatroniMember[] | null, self: PatroniView['self'], error: string | null = null): PatroniView {
  return { endpoint, cluster: members ? { members } : null, self, error };
}

const healthy = [member('pg1', 'leader', A, 5432), member('pg2', 'sync_standby', B, 5433)];

describe('decideLeader', () => {
  test('the lock holder running as a primary is the primary, at its PostgreSQL address', () => {
    const result = decideLeader([view(A, healthy, { role: 'master', state: 'running' }), view(B, healthy, { role: 'replica', state: 'running' })]);
    assert.deepEqual(result, { primary: { name: 'pg1', host: '127.0.0.1', port: 5432, timeline: 3 } });
  });

  test('a leader whose own endpoint is silent (killed, its lock not yet expired) is not used', () => {
    const result = decideLeader([view(A, null, null, 'ECONNREFUSED'), view(B, healthy, { role: 'replica', state: 'running' })]);
    assert.equal(result.primary, null);
    assert.match(result.reason ?? '', /the Patroni leader pg1 does not answer/);
  });

  test('a new lock holder still promoting is not used yet', () => {
    const promoting = [member('pg1', 'replica', A, 5432), member('pg2', 'leader', B, 5433)];
    const result = decideLeader([view(A, null, null, 'ECONNREFUSED'), view(B, promoting, { role: 'replica', state: 'running' })]);
    assert.equal(result.primary, null);
    assert.match(result.reason ?? '', /pg2 is not running as a primary yet/);
  });

  test('no lock holder, and no member answering, are said so', () => {
    const noLeader = [member('pg1', 'replica', A, 5432), member('pg2', 'replica', B, 5433)];
    assert.match(decideLeader([view(A, noLeader, { role: 'replica', state: 'running' })]).reason ?? '', /no Patroni member holds the leader lock/);
    assert.match(decideLeader([view(A, null, null, 'ECONNREFUSED'), view(B, null, null, 'no answer in time')]).reason ?? '', /no Patroni member answers .*ECONNREFUSED/);
  });

  test('two members claiming to lead are both refused, as a split brain', () => {
    // pg2 runs as a primary without the lock (promoted behind Patroni's back, or not yet demoted).
    const result = decideLeader([view(A, healthy, { role: 'master', state: 'running' }), view(B, healthy, { role: 'primary', state: 'running' })]);
    assert.equal(result.primary, null);
    assert.deepEqual(result.splitBrain?.nodes, ['pg1', 'pg2']);
    assert.match(result.splitBrain.summary, /pg1 and pg2 both claim to be the primary/);

    // Members that see different lock holders (two etcd clusters, a partition).
    const other = [member('pg1', 'replica', A, 5432), member('pg2', 'leader', B, 5433)];
    const split = decideLeader([view(A, healthy, { role: 'master', state: 'running' }), view(B, other, { role: 'replica', state: 'running' })]);
    assert.equal(split.primary, null);
    assert.deepEqual(split.splitBrain?.nodes, ['pg1', 'pg2']);
  });
});
