/**
 * A producer process for the crash test: stores half messages with `TransactionProducer.send`,
 * prints each one's ids as a JSON line from inside its local transaction, and then hangs there,
 * never committing, until the test SIGKILLs it.
 *
 *   SKYROCKET_ENDPOINT, SKYROCKET_API_KEY, TOPIC, PRODUCER_GROUP, BODIES (comma-separated)
 */
import { TransactionProducer } from '../../client/index.ts';

const env = process.env;
const producer = new TransactionProducer({
  endpoint: env['SKYROCKET_ENDPOINT'] as string,
  apiKey: env['SKYROCKET_API_KEY'] as string,
  producerGroup: env['PRODUCER_GROUP'] as string,
  topic: env['TOPIC'] as string,
});
for (const body of (env['BODIES'] as string).split(',')) {
  void producer.send(body, async (half) => {
    process.stdout.write(`${JSON.stringify({ body, ...half })}\n`);
    await new Promise(() => undefined); // the local transaction never finishes
    return 'COMMIT' as const;
  });
}
setInterval(() => undefined, 60_000);
