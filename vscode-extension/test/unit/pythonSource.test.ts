import assert from 'node:assert/strict';
import { test } from 'node:test';
import { extractDefinition, normalize, sameDefinition } from '../../src/pythonSource';

const MODULE = [
  'import functools',
  '',
  'def total(price, quantity):',
  '    return price',
  '',
  'class Cart:',
  '    def total(self):',
  '        return 0',
  '',
  '    @functools.cache',
  '    def tax(self):',
  '        def inner():',
  '            return 1',
  '',
  '        return inner()',
  '',
  'def total(price, quantity):',
  '    return price * quantity',
  '',
  'print(total(1, 2))',
].join('\n');

test('a method is found inside its class, decorators included', () => {
  assert.equal(
    extractDefinition(MODULE, 'Cart.tax'),
    ['    @functools.cache', '    def tax(self):', '        def inner():', '            return 1', '', '        return inner()'].join('\n'),
  );
});

test('a module-level name defined twice resolves to the last definition, as Python does', () => {
  assert.equal(extractDefinition(MODULE, 'total'), 'def total(price, quantity):\n    return price * quantity');
});

test("the method total is not confused with the module's total", () => {
  assert.equal(extractDefinition(MODULE, 'Cart.total'), '    def total(self):\n        return 0');
});

test('nested functions are reached through <locals>', () => {
  assert.equal(extractDefinition(MODULE, 'Cart.tax.<locals>.inner'), '        def inner():\n            return 1');
});

test('an absent definition is undefined', () => {
  assert.equal(extractDefinition(MODULE, 'Cart.missing'), undefined);
  assert.equal(extractDefinition(MODULE, 'Nope.total'), undefined);
});

test('indentation and trailing blanks do not count as a difference', () => {
  assert.equal(normalize('    def f():\r\n        return 1   \n\n'), 'def f():\n    return 1');
  assert.ok(sameDefinition('    def f():\n        return 1', 'def f():\n    return 1\n'));
  assert.ok(!sameDefinition('def f():\n    return 1', 'def f():\n    return 2'));
});
