import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { HAVE_TOOLCHAIN, buildProgram, cleanupBuilds, runOurs } from './harness.js';

after(cleanupBuilds);

test(
  'an idle guest (WFI until a timer 300 ms ahead) costs almost no host CPU',
  { timeout: 30_000 },
  async (t) => {
    if (!HAVE_TOOLCHAIN) return t.skip('riscv64-linux-gnu-gcc not installed');
    const elf = buildProgram('idle.c');
    const wall0 = performance.now();
    const cpu0 = process.cpuUsage();
    const r = await runOurs(elf, 10_000);
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - wall0;
    const cpuMs = (cpu.user + cpu.system) / 1000;
    assert.deepEqual(r.exit, { kind: 'poweroff', code: 0 });
    assert.match(r.output, /slept-enough=0000000000000001/);
    assert.ok(wallMs >= 290, `woke too early: ${wallMs} ms`);
    // spinning would burn ~300 ms of CPU; sleeping costs a few ms of bookkeeping
    assert.ok(cpuMs < 150, `used ${cpuMs.toFixed(0)} ms of CPU in ${wallMs.toFixed(0)} ms of wall time`);
    t.diagnostic(`wall ${wallMs.toFixed(0)} ms, CPU ${cpuMs.toFixed(0)} ms, ${r.instructions} instructions`);
  },
);
