export * from './buffer.js';
export * from './constants.js';
export * from './dirent.js';
export * from './frame.js';
export * from './messages.js';
