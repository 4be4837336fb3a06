import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Errno, NinePError, errnoName } from '../src/index.js';

test('NinePError carries errno and defaults its message to the errno name', () => {
  const e = new NinePError(Errno.ENOENT);
  assert.equal(e.errno, 2);
  assert.equal(e.message, 'ENOENT');
  assert.equal(
    new NinePError(Errno.EINVAL, 'Attempt to seek in stream').message,
    'Attempt to seek in stream',
  );
  assert.equal(errnoName(9999), 'errno 9999');
});
