import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/**
 * The sweeps authenticate to the brokers with the deployment's internal secret. In AWS the
 * function's environment holds only the secret's ARN (`SKYROCKET_INTERNAL_SECRET_ARN`): anyone
 * allowed to read a function's configuration could read a secret kept in a variable. Locally
 * (`skyrocket dev`, tests) the secret itself comes as `SKYROCKET_INTERNAL_SECRET`.
 *
 * Returns the environment with `SKYROCKET_INTERNAL_SECRET` filled in from Secrets Manager when
 * only the ARN is given.
 */
export async function withInternalSecret(
  env: Readonly<Record<string, string | undefined>>,
  fetchSecret: (arn: string) => Promise<string | undefined> = fetchFromSecretsManager(env['AWS_REGION']),
): Promise<Record<string, string | undefined>> {
  if (env['SKYROCKET_INTERNAL_SECRET'] !== undefined && env['SKYROCKET_INTERNAL_SECRET'] !== '') return { ...env };
  const arn = env['SKYROCKET_INTERNAL_SECRET_ARN'];
  if (arn === undefined || arn === '') {
    throw new Error('SKYROCKET_INTERNAL_SECRET_ARN (or, locally, SKYROCKET_INTERNAL_SECRET) is required');
  }
  const secret = await fetchSecret(arn);
  if (secret === undefined || secret === '') throw new Error(`secret ${arn} has no string value`);
  return { ...env, SKYROCKET_INTERNAL_SECRET: secret };
}

function fetchFromSecretsManager(region: string | undefined): (arn: string) => Promise<string | undefined> {
  return async (arn) => {
    const client = new SecretsManagerClient(region === undefined ? {} : { region });
    try {
      return (await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString;
    } finally {
      client.destroy();
    }
  };
}
