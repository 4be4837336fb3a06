export { ByteQueue } from './byte-queue.js';
export { Reassembler } from './reassembly.js';
export {
  NetworkStack,
  type IcmpEchoHandler,
  type StackOptions,
  type StackStats,
  type TcpListener,
  type UdpHandler,
} from './stack.js';
export { TcpConnection, type TcpCloseReason, type TcpState } from './tcp.js';
