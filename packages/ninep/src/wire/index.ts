export * from './buffer.js';
export * from './constants.js';
export * from './dirent.js';
export * from './frame.js';
export * from './messages.js';
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
export { errnoFromText, errorText, strerrorOf } from './errstr.js';
