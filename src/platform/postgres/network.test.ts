import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hbaAddress, isExposed, isLoopback, listenAddressesOf, networkContains, networkProblems, parseNetwork, sameAddresses, type NetworkConfig } from './network.ts';

const none: NetworkConfig = { listenAddresses: ['127.0.0.1'], hostNames: [], allowedNetworks: { replication: [], clients: [], allowEverywhere: false } };

test('networks parse to their pg_hba form; a single address is a /32 or /128', () => {
  assert.equal(hbaAddress(parseNetwork('10.0.2.0/24')), '10.0.2.0/24');
  assert.equal(hbaAddress(parseNetwork('10.0.2.7')), '10.0.2.7/32');
  assert.equal(hbaAddress(parseNetwork('FD00:0:0:0::/64')), 'fd00::/64');
  assert.equal(hbaAddress(parseNetwork('::1')), '::1/128');
  assert.ok(networkContains(parseNetwork('10.0.0.0/8'), '10.200.3.4'));
  assert.ok(!networkContains(parseNetwork('10.0.0.0/8'), '11.0.0.1'));
  assert.ok(!networkContains(parseNetwork('10.0.0.0/8'), '::1'));
});

test('bad networks say what is wrong and what was probably meant', () => {
  assert.throws(() => parseNetwork('10.0.2.7/24'), /has address bits set past its \/24 prefix: the network is 10\.0\.2\.0\/24 \(or write 10\.0\.2\.7\/32/);
  assert.throws(() => parseNetwork('10.0.0.0/33'), /prefix of an IPv4 network is 0 to 32/);
  assert.throws(() => parseNetwork('fd00::/129'), /prefix of an IPv6 network is 0 to 128/);
  assert.throws(() => parseNetwork('office-lan'), /is not an IP network/);
  assert.throws(() => parseNetwork('10.0.0.0/8/8'), /is not an IP network/);
});

test('the configuration check names each bad key; a /0 needs allowEverywhere', () => {
  const problems = networkProblems({
    listenAddresses: ['0.0.0.0', 'db1'],
    hostNames: ['*.example.net', 'db1.example.net'],
    allowedNetworks: { replication: ['0.0.0.0/0'], clients: ['::/0', '10.0.0.0/8'], allowEverywhere: false },
  });
  assert.equal(problems.length, 5, problems.join('\n'));
  assert.match(problems[0] ?? '', /^postgres\.listenAddresses: '0\.0\.0\.0' would listen on every interface/);
  assert.match(problems[1] ?? '', /^postgres\.listenAddresses: 'db1' is not an IP address/);
  assert.match(problems[2] ?? '', /^postgres\.hostNames: '\*\.example\.net' is not a DNS name/);
  assert.match(problems[3] ?? '', /^postgres\.allowedNetworks\.replication: '0\.0\.0\.0\/0' lets every address on the internet/);
  assert.match(problems[4] ?? '', /^postgres\.allowedNetworks\.clients: '::\/0'/);
  assert.deepEqual(networkProblems({ ...none, allowedNetworks: { replication: ['0.0.0.0/0'], clients: [], allowEverywhere: true } }), []);
});

test('loopback is always listened on, first; the default opens nothing', () => {
  assert.deepEqual(listenAddressesOf({ listenAddresses: ['10.0.1.5'] }), ['127.0.0.1', '10.0.1.5']);
  assert.deepEqual(listenAddressesOf({ listenAddresses: ['10.0.1.5', '127.0.0.1'] }), ['127.0.0.1', '10.0.1.5']);
  assert.ok(sameAddresses(['127.0.0.1', ' ::1'], ['0:0:0:0:0:0:0:1', '127.0.0.1']));
  assert.ok(!sameAddresses(['127.0.0.1'], ['127.0.0.1', '127.0.0.2']));
  assert.ok(isLoopback('127.0.0.2') && isLoopback('::1') && !isLoopback('10.0.0.1'));
  assert.equal(isExposed(none), false);
  assert.equal(isExposed({ ...none, listenAddresses: ['127.0.0.1', '127.0.0.2'] }), false, 'loopback addresses are this machine');
  assert.equal(isExposed({ ...none, allowedNetworks: { ...none.allowedNetworks, clients: ['10.0.0.0/8'] } }), true);
});
