export { ServerConnection, type ServerOptions, defaultLogger } from './connection.js';
export {
  attrFromStat,
  dontTouchStat,
  flagsToOpenMode,
  direntType,
  makeRdev,
  deviceNumbers,
  nineModeToUnix,
  openModeToFlags,
  statFromAttr,
  unixModeTo9p,
} from './convert.js';
export { type Listener, NinePServer, parseListenUrl } from './server.js';
