import { expect, it } from 'vitest';
import { canEnter, searchBit } from '../../src/db/data-directory.ts';

const postgres = { uid: 101, gid: 104 };
const dir = (mode: number, uid = 0, gid = 0) => ({ path: '/d', mode: 0o040000 | mode, uid, gid });

it('decides by the one permission class that applies: owner, else group, else others', () => {
  // A stranger: only the others' bit counts.
  expect(canEnter(dir(0o700), postgres)).toBe(false);
  expect(canEnter(dir(0o701), postgres)).toBe(true);
  expect(searchBit(dir(0o700), postgres)).toBe(0o001);
  // Its group: the group's bit, whatever the others may.
  expect(canEnter(dir(0o701, 0, 104), postgres)).toBe(false);
  expect(canEnter(dir(0o710, 0, 104), postgres)).toBe(true);
  expect(searchBit(dir(0o700, 0, 104), postgres)).toBe(0o010);
  // Its own directory: the owner's bit, even when the others' would let anyone in.
  expect(canEnter(dir(0o611, 101, 104), postgres)).toBe(false);
  expect(searchBit(dir(0o611, 101, 104), postgres)).toBe(0o100);
  // A user not created yet is a stranger to every directory; root enters anything.
  expect(canEnter(dir(0o750, 0, 0), { uid: -1, gid: -1 })).toBe(false);
  expect(canEnter(dir(0o000, 5, 5), { uid: 0, gid: 0 })).toBe(true);
});
