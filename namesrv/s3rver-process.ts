/**
 * s3rver in a process of its own, for parents that lack OpenSSL's legacy provider (see
 * `embedded.ts`). Arguments: directory, host, port. Reports an `S3rverProcessMessage` over IPC,
 * and stops when the IPC channel closes: on the parent's `disconnect`, or when the parent dies.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';
import type { S3rverProcessMessage } from './embedded.ts';

const [directory, host, port] = process.argv.slice(2);
assert(directory !== undefined && host !== undefined && port !== undefined, 'usage: s3rver-process <dir> <host> <port>');
const send = process.send?.bind(process);
assert(send !== undefined, 's3rver-process must be started with an IPC channel');
const report = (message: S3rverProcessMessage) => send(message);

const server = createServer(new S3rver({ silent: true, directory }).callback());
server.once('error', (error) => {
  report({ error: error.message });
  process.disconnect();
});
server.listen(Number(port), host, () => report({ port: (server.address() as AddressInfo).port }));

// Closing the server and the channel leaves the event loop empty, so the process ends by itself;
// idle keep-alive connections of clients would otherwise hold it open.
process.once('disconnect', () => {
  server.close();
  server.closeAllConnections();
});
