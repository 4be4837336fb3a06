export * from './store/index.js';
export * from './tree/index.js';
export { DataKitServer, type DataKitServerOptions } from './server.js';
export {
  Branch,
  ConfigField,
  ConfigRecord,
  DataKitClient,
  DataKitError,
  type PathLike,
  Snapshot,
  Transaction,
} from './client.js';
