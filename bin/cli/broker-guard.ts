/**
 * Preloaded (`--import`) into the broker processes that `skyrocket dev` starts, which it starts
 * with an IPC channel. When `dev` goes away without stopping them (SIGKILL, a crash), the channel
 * closes, and the broker stops itself as on SIGTERM, instead of living on as an orphan that holds
 * the dev ports and writes to a data directory the next `dev` will open.
 */
if (process.channel !== undefined) {
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  // The broker decides when to exit; an open channel must not keep it alive.
  process.channel.unref();
}
