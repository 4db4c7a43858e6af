/**
 * Servers on a loopback address (serve, dashboard) answer requests addressed to a loopback name only.
 * A web page of another site can point its own name at 127.0.0.1 (DNS rebinding) and then read the
 * answers as same-origin; its requests still carry that name in Host.
 */
const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "::1"]);

export function isLoopback(name: string): boolean {
  const bare = name.replace(/^\[|\]$/g, "").toLowerCase();
  return LOOPBACK_NAMES.has(bare) || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

/** Why `req` is refused by a server listening on `listening`, or null when it is answered. */
export function foreignHost(req: Request, listening: string): string | null {
  if (!isLoopback(listening)) return null;
  const host = req.headers.get("host");
  if (host === null) return null; // HTTP/1.0 without Host: not a browser
  const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d*$/, "");
  if (isLoopback(name)) return null;
  return `This server listens on ${listening} and answers requests addressed to 127.0.0.1, localhost or [::1], not to "${host}" (a web page of another site reaching it that way is refused). To serve under other names, start it with --host.`;
}
