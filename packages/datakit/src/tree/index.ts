export { DataKit, type DataKitOptions } from './datakit.js';
export { VfsError } from './errors.js';
export { VfsNode, vfsBackend } from './fsnode.js';
export * from './vfs.js';
