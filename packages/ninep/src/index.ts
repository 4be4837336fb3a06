export * from './backend.js';
export * from './wire/index.js';
export * from './server/index.js';
export * from './hostfs/index.js';
export * from './client/index.js';
