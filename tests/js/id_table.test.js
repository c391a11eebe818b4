'use strict';
// js/api.js's IdTable: the task ids in flight.  Checked against a Map on
// random sequences, including a few long-lived ids while many short ones
// pass (the slot of a long one is reused: overflow), and growth.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { IdTable } = require(path.join(__dirname, '..', '..', 'js', 'api.js'));

function prng(seed) {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x100000000;
  };
}

function same(table, model) {
  assert.equal(table.size, model.size);
  const seen = new Map();
  table.forEach((rec, id) => seen.set(id, rec));
  assert.deepEqual([...seen.entries()].sort((a, b) => a[0] - b[0]),
                   [...model.entries()].sort((a, b) => a[0] - b[0]));
  assert.deepEqual(table.keys().sort((a, b) => a - b), [...model.keys()].sort((a, b) => a - b));
}

test('agrees with a Map: sequential ids, random completion order, long-lived ids', () => {
  for (const seed of [1, 2, 3, 42]) {
    const random = prng(seed);
    const table = new IdTable();
    const model = new Map();
    const longLived = [];
    let next = 1;
    for (let step = 0; step < 60000; step++) {
      const r = random();
      if (r < 0.55) {
        const id = next++;
        const rec = { id };
        table.set(id, rec);
        model.set(id, rec);
        if (random() < 0.001) longLived.push(id);
      } else if (model.size > 0) {
        // Complete one of the oldest few (roughly in order), never a long-lived one.
        const keys = [...model.keys()].slice(0, 8).filter((k) => !longLived.includes(k));
        if (keys.length === 0) continue;
        const id = keys[Math.floor(random() * keys.length)];
        assert.equal(table.delete(id), true);
        model.delete(id);
        assert.equal(table.get(id), undefined);
        assert.equal(table.has(id), false);
      }
      if (step % 5000 === 0) same(table, model);
    }
    for (const [id, rec] of model) {
      assert.equal(table.get(id), rec);
      assert.equal(table.has(id), true);
    }
    assert.equal(table.delete(next + 5), false);
    same(table, model);
  }
});

test('a stuck id does not make the table grow with the ids that pass it', () => {
  const table = new IdTable();
  table.set(1, { id: 1 });
  for (let id = 2; id < 200000; id++) {
    table.set(id, { id });
    table.delete(id);
  }
  assert.equal(table.size, 1);
  assert.equal(table.get(1).id, 1);
  assert.ok(table.mask < 4096, `grew to ${table.mask + 1} slots`);
});

test('20,000 in flight at once, then all completed', () => {
  const table = new IdTable();
  for (let id = 1; id <= 20000; id++) table.set(id, { id });
  assert.equal(table.size, 20000);
  for (let id = 1; id <= 20000; id++) assert.equal(table.get(id).id, id);
  for (let id = 20000; id >= 1; id--) assert.equal(table.delete(id), true);
  assert.equal(table.size, 0);
  assert.deepEqual(table.keys(), []);
});
