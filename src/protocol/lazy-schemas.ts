/**
 * The zod schemas of messages.ts, imported on first need. Importing zod costs
 * more CPU than the rest of `run -- true` (~100 ms on Node 20), and an
 * ordinary session never needs it: every well-formed request passes the
 * zod-free checks of wire.ts. A malformed request, a SuperExecMessage (an
 * escalation) or an odd listener frame loads them; a failed import rejects,
 * and the caller denies.
 */
type Schemas = typeof import('./messages.js');

let loading: Promise<Schemas> | undefined;
let loaded: Schemas | undefined;

export function loadSchemas(): Promise<Schemas> {
  if (loading === undefined) {
    loading = import('./messages.js').then((m) => (loaded = m));
    // Handled here too: a caller may start the load and leave before awaiting it (the frame never came).
    loading.catch(() => {});
  }
  return loading;
}

/** The schemas if an earlier loadSchemas() has finished (a synchronous caller's fast way in). */
export function schemasIfLoaded(): Schemas | undefined {
  return loaded;
}
