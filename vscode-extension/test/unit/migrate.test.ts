import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeGap, migrationKey, migrationTemplate, openGaps, parseMigration } from '../../src/migrate';

const CART = { module: 'shop.cart', qualname: 'Cart', instances: 3, lacking: { discount: 3, coupon: 1 } };

test('a gap is keyed module:qualname and prefilled with every lacking attribute', () => {
  assert.equal(migrationKey(CART), 'shop.cart:Cart');
  assert.equal(migrationTemplate(CART), '{"discount": 0, "coupon": 0}');
  assert.deepEqual(JSON.parse(migrationTemplate(CART)), { discount: 0, coupon: 0 });
  assert.equal(describeGap(CART), '3 live `shop.cart.Cart` instances lack `discount` (3), `coupon` (1)');
  assert.equal(describeGap({ ...CART, instances: 1, lacking: { discount: 1 } }), '1 live `shop.cart.Cart` instance lack `discount` (1)');
});

test('only gaps with something lacking ask a question', () => {
  assert.deepEqual(openGaps([CART, { ...CART, qualname: 'Other', lacking: {} }]), [CART]);
  assert.deepEqual(openGaps(undefined), []);
});

test('answers: a JSON object of identifiers to values, or def migrate(obj)', () => {
  assert.deepEqual(parseMigration(' {"discount": 0.1, "coupon": null, "tags": []} '), { migration: { discount: 0.1, coupon: null, tags: [] } });
  assert.deepEqual(parseMigration('{"réduction": 1}'), { migration: { réduction: 1 } });
  assert.deepEqual(parseMigration('def migrate(obj): obj.discount = 0'), { migration: 'def migrate(obj): obj.discount = 0' });
  const error = (text: string) => {
    const parsed = parseMigration(text);
    assert.ok('error' in parsed, `${text} should be refused`);
    return parsed.error;
  };
  assert.match(error(''), /JSON object/);
  assert.match(error('{"discount": }'), /^Not JSON/);
  assert.match(error('[1]'), /must be a JSON object/);
  assert.match(error('0'), /must be a JSON object/);
  assert.match(error('null'), /must be a JSON object/);
  assert.match(error('{}'), /at least one attribute/);
  assert.match(error('{"2x": 1, "a-b": 2, "ok": 3}'), /Python identifiers: "2x", "a-b"\.$/);
  assert.match(error('def other(obj): pass'), /^Not JSON/);
});
