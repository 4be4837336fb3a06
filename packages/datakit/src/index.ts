export * from './store/index.js';
export * from './tree/index.js';
