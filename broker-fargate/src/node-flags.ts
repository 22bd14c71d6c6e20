/**
 * V8 flags the broker runs with, wherever it is started: `skyrocket dev` and the benchmarks pass
 * them on the command line, and the container image sets the same in NODE_OPTIONS (a test keeps
 * the two in step).
 *
 * A receive or send of a thousand messages allocates a few MiB of short-lived objects and
 * buffers; with V8's default 16 MiB semi-space, scavenges came often enough to promote
 * in-flight objects and start full collections, which doubled the broker's CPU per message in
 * some catch-up runs (`npm run bench -- --workloads catchup`). 32 MiB kept every run on the fast
 * side, for at most 32 MiB more memory.
 */
export const brokerNodeFlags: readonly string[] = ['--max-semi-space-size=32'];
