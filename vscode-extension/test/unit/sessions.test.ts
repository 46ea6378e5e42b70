import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FailedResponses } from '../../src/requests';
import { SessionRegistry } from '../../src/sessions';
import { ScriptedSession } from './fakes';

function launchWithChildren() {
  const failures = new FailedResponses();
  const registry = new SessionRegistry();
  const parent = new ScriptedSession('p', 'app.py', failures);
  const child = new ScriptedSession('c1', 'worker 101', failures, 'p');
  const grandchild = new ScriptedSession('c2', 'worker 102', failures, 'c1');
  const other = new ScriptedSession('o', 'other.py', failures);
  for (const session of [child, grandchild, parent, other]) registry.add(session);
  return { registry, parent, child, grandchild, other };
}

test('every process of a launch is a target, the top-level session first', () => {
  const { registry, parent, child, grandchild } = launchWithChildren();
  assert.deepEqual(registry.targets(grandchild).map((s) => s.id), [parent.id, child.id, grandchild.id]);
});

test('with two launches and no active livefix session there is no guess', () => {
  const { registry } = launchWithChildren();
  assert.deepEqual(registry.targets(undefined), []);
});

test('one launch is the target even when no session is active', () => {
  const { registry, other } = launchWithChildren();
  for (const id of ['p', 'c1', 'c2']) registry.remove(id);
  assert.deepEqual(registry.targets(undefined).map((s) => s.id), [other.id]);
});
