import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { guestDir, runOurs } from './harness.js';

/**
 * The ISA suite built by guest/riscv/build.sh (isa/NAME.elf with NAME.expected, the transcript recorded on
 * qemu-system-riscv64): our UART output must match byte for byte.
 */
const dir = guestDir();
const isaDir = dir ? join(dir, 'isa') : undefined;
const names =
  isaDir && existsSync(isaDir)
    ? readdirSync(isaDir)
        .filter((f) => f.endsWith('.elf') && existsSync(join(isaDir, f.replace(/\.elf$/, '.expected'))))
        .map((f) => f.replace(/\.elf$/, ''))
        .sort()
    : [];

describe('guest ISA suite (reference transcripts from QEMU)', { concurrency: 1 }, () => {
  if (names.length === 0) {
    test('guest ISA programs', (t) => {
      t.skip('guest artefacts not built: run bash guest/riscv/build.sh (scripts/prepare.d does it in CI)');
    });
    return;
  }
  for (const name of names) {
    for (const mode of ['interpreter', 'wasm-interp', 'jit-all', 'wasm-all', 'wasm-batched'] as const) {
      test(`${name} (${mode})`, { timeout: 120_000 }, async () => {
        const elf = join(isaDir!, `${name}.elf`);
        const expected = readFileSync(join(isaDir!, `${name}.expected`), 'latin1');
        const ours = await runOurs(elf, 100_000, 128 << 20, mode);
        assert.deepEqual(ours.exit, { kind: 'poweroff', code: 0 });
        assert.equal(ours.output, expected);
      });
    }
  }
});
