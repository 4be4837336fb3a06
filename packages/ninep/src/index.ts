export * from './backend.js';
export * from './wire/index.js';
