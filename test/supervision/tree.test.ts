import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkTree, criticalPath, findTreeProblems, startLevels, TreeError } from '../../src/supervision/tree.js';

const node = (id: string, ...dependsOn: string[]) => ({ id, dependsOn });

test('a cycle is refused with every member named in order', () => {
  const problems = findTreeProblems([node('journal'), node('a', 'c', 'journal'), node('b', 'a'), node('c', 'b')]);
  assert.deepEqual(problems, ['dependency cycle: a -> c -> b -> a']);
});

test('a component that depends on itself is a cycle of one', () => {
  assert.deepEqual(findTreeProblems([node('a', 'a')]), ['dependency cycle: a -> a']);
});

test('unknown dependencies and duplicate ids are each named', () => {
  const problems = findTreeProblems([node('a', 'ghost'), node('b'), node('b', 'a')]);
  assert.deepEqual(problems, ["component 'b' is defined twice", "component 'a' depends on unknown component 'ghost'"]);
});

test('checkTree throws a TreeError that lists the problems', () => {
  assert.throws(
    () => checkTree([node('x', 'y'), node('y', 'x')]),
    (err: unknown) => err instanceof TreeError && err.problems.length === 1 && err.message.includes('x -> y -> x'),
  );
});

test('start levels follow the dependency edges, declaration order within a level', () => {
  const levels = startLevels([node('paper_trader', 'predictor', 'risk_gate'), node('journal'), node('risk_gate', 'journal'), node('predictor', 'journal')]);
  assert.deepEqual(levels, [['journal'], ['risk_gate', 'predictor'], ['paper_trader']]);
});

test('critical path is the longest chain of delays', () => {
  const nodes = [node('a'), node('b'), node('c', 'a'), node('d', 'b')];
  const delays: Record<string, number> = { a: 100, b: 10, c: 10, d: 100 };
  assert.equal(criticalPath(nodes, (id) => delays[id]!), 110);
});
