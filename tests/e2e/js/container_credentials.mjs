// A Node service with no credvend code: the AWS SDK for JavaScript v3 reads its credentials from
// AWS_CONTAINER_CREDENTIALS_FULL_URI with the token in AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
// then calls STS GetCallerIdentity with them. Prints {"Arn": ...} (never the credentials).
//   node container_credentials.mjs default-chain   # the SDK's default provider chain
//   node container_credentials.mjs from-http       # @aws-sdk/credential-provider-http's fromHttp()
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { fromHttp } from "@aws-sdk/credential-provider-http";

const mode = process.argv[2] ?? "default-chain";
const client = new STSClient(mode === "from-http" ? { credentials: fromHttp({}) } : {});
const credentials = await client.config.credentials();
const identity = await client.send(new GetCallerIdentityCommand({}));
console.log(JSON.stringify({ Arn: identity.Arn, Expiration: credentials.expiration?.toISOString() ?? null }));
