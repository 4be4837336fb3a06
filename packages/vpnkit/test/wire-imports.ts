// The wire layer as the tests see it: the public API plus one internal writer.
export * from '../src/wire/index.js';
export { writeEthernetHeader as emitEthernetHeaderForTest } from '../src/wire/ethernet.js';
