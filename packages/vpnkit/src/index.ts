export * from './wire/index.js';
export * from './stack/index.js';
export * from './services/index.js';
export * from './link/index.js';
export * from './errors.js';
export { GuestNamespace, type GuestNamespaceOptions } from './netns.js';
export { RootlessRun, type RootlessRunOptions } from './rootless.js';
