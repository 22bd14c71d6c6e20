/**
 * s3rver in a process of its own, for parents that lack OpenSSL's legacy provider (see
 * `embedded.ts`). Arguments: directory, host, port. Reports `{ port }` over IPC once it listens,
 * and stops when the IPC channel closes: on the parent's `disconnect`, or when the parent dies.
 */
import assert from 'node:assert/strict';
import S3rver from 's3rver';

const [directory, address, port] = process.argv.slice(2);
assert(directory !== undefined && address !== undefined && port !== undefined, 'usage: s3rver-process <dir> <host> <port>');
assert(process.send !== undefined, 's3rver-process must be started with an IPC channel');

const server = new S3rver({ address, port: Number(port), silent: true, directory });
const listening = await server.run();
process.send({ port: listening.port });
// Closing the server and the channel leaves the event loop empty, so the process ends by itself;
// idle keep-alive connections of clients would otherwise hold it open.
process.once('disconnect', () => {
  void server.close();
  server.httpServer?.closeAllConnections();
});
