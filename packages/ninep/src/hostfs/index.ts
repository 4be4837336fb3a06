export { HostFsBackend, type HostFsOptions, toNinePError } from './hostfs.js';
