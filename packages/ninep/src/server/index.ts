export { ServerConnection, type ServerOptions, defaultLogger } from './connection.js';
export { type Listener, NinePServer } from './server.js';
export { parseListenUrl } from '../address.js';
