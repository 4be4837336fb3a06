export {
  type ClientDirEntry,
  type ClientOptions,
  type Fid,
  NinePClient,
  NinePClientError,
} from './client.js';
