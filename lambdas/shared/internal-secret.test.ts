import { describe, expect, it } from 'vitest';
import { withInternalSecret } from './internal-secret.ts';

// Secrets Manager has no local stand-in here (no LocalStack without a container runtime), so the
// fetch is passed in; the real client is the one-line default.
describe('withInternalSecret', () => {
  it('keeps a secret given directly (local mode) without fetching', async () => {
    const env = await withInternalSecret({ SKYROCKET_INTERNAL_SECRET: 's'.repeat(32), SKYROCKET_INTERNAL_SECRET_ARN: 'arn:x' }, async () => {
      throw new Error('must not fetch');
    });
    expect(env['SKYROCKET_INTERNAL_SECRET']).toBe('s'.repeat(32));
  });

  it('fetches the secret by its ARN in AWS', async () => {
    const asked: string[] = [];
    const env = await withInternalSecret({ SKYROCKET_INTERNAL_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:1:secret:x' }, async (arn) => {
      asked.push(arn);
      return 'from-secrets-manager-0123456789';
    });
    expect(asked).toEqual(['arn:aws:secretsmanager:eu-west-1:1:secret:x']);
    expect(env['SKYROCKET_INTERNAL_SECRET']).toBe('from-secrets-manager-0123456789');
  });

  it('says what is missing', async () => {
    await expect(withInternalSecret({})).rejects.toThrow(/SKYROCKET_INTERNAL_SECRET_ARN/);
    await expect(withInternalSecret({ SKYROCKET_INTERNAL_SECRET_ARN: 'arn:x' }, async () => undefined)).rejects.toThrow(/no string value/);
  });
});
