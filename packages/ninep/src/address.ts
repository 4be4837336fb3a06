/** A `tcp://HOST:PORT` or `unix:///path` address split into what net.listen/net.connect want. */
export function parseListenUrl(
  url: string,
): { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string } {
  if (url.startsWith('unix://')) {
    const path = url.slice('unix://'.length);
    if (!path.startsWith('/')) throw new TypeError(`unix socket path must be absolute: ${url}`);
    return { kind: 'unix', path };
  }
  if (url.startsWith('tcp://')) {
    const u = new URL(url);
    const port = u.port === '' ? 564 : Number(u.port);
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    if (!host || !Number.isInteger(port) || port < 0 || port > 65535)
      throw new TypeError(`bad tcp address: ${url}`);
    return { kind: 'tcp', host, port };
  }
  throw new TypeError(
    `unsupported listen address ${JSON.stringify(url)}: use tcp://HOST:PORT or unix:///path`,
  );
}
