export * from '../src/wire/index.js';
export { writeEthernetHeader as writeEthernetHeaderForTest } from '../src/wire/ethernet.js';
