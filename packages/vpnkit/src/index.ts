export * from './wire/index.js';
export * from './stack/index.js';
