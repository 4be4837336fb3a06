export { FaultLink, type FaultOptions } from './fault.js';
export type { Link, LinkOffloads, TxOffload } from './link.js';
export { PcapLink } from './pcap.js';
export {
  connectQemu,
  describeAddress,
  type LengthPrefix,
  listenQemu,
  type StreamAddress,
  StreamLink,
} from './stream.js';
export { loadTapAddon, TapLink, tapAddonPath } from './tap.js';
export {
  acceptVmnet,
  connectVmnet,
  listenVmnet,
  macForUuid,
  type VmnetClient,
  VMNET_COMMAND_LEN,
  VMNET_HELLO_LEN,
  VMNET_RESPONSE_LEN,
} from './vmnet.js';
