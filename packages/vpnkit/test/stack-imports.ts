export * from '../src/wire/index.js';
export { Reassembler } from '../src/stack/index.js';
