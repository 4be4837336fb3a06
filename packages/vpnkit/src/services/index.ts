export {
  defaultConfig,
  inSubnet,
  netmask,
  parseForward,
  type PortForward,
  type VpnkitConfig,
} from './config.js';
export { DhcpServer } from './dhcp-server.js';
export { DnsForwarder, parseHosts, parseResolvConf } from './dns-forwarder.js';
export { describeForward, PortForwarder } from './forwarder.js';
export { Nat, splice } from './nat.js';
export { Vpnkit } from './vpnkit.js';
export { createControlHttpServer, type ForwardTarget, parseControlName, PortControlFs } from './control.js';
export { IcmpForwarder } from './icmp.js';
