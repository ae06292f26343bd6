// The AWS SDK for JavaScript v3 (@aws-sdk/client-kms from npm) against `keyplane serve`.
// Endpoint from KP_URL, credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the server's
// certificate trusted through NODE_EXTRA_CA_CERTS. Prints `ok NAME` or `FAIL NAME: why` per check
// and exits non-zero on any failure.
import {
  KMSClient,
  CreateKeyCommand,
  EncryptCommand,
  DecryptCommand,
  GenerateDataKeyCommand,
  ListKeysCommand,
  DescribeKeyCommand,
  paginateListKeys,
} from "@aws-sdk/client-kms";
import { randomBytes } from "node:crypto";

const endpoint = process.env.KP_URL;
if (!endpoint) {
  console.log("FAIL setup: KP_URL is not set");
  process.exit(1);
}
const kms = new KMSClient({ endpoint, region: process.env.AWS_REGION || "us-east-1", maxAttempts: 1 });

let failures = 0;
async function check(name, body) {
  try {
    await body();
    console.log(`ok ${name}`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${name}: ${e && e.name}: ${e && e.message}`);
  }
}
function expect(condition, what) {
  if (!condition) throw new Error(what);
}
const same = (a, b) => Buffer.from(a).equals(Buffer.from(b));

let key;
await check("CreateKey", async () => {
  const out = await kms.send(new CreateKeyCommand({ Description: "aws-sdk-js" }));
  key = out.KeyMetadata;
  expect(key.KeyState === "Enabled", `state ${key.KeyState}`);
  expect(key.CreationDate instanceof Date && !isNaN(key.CreationDate), `CreationDate ${key.CreationDate}`);
  expect(/^[0-9a-f-]{36}$/.test(out.$metadata.requestId || ""), `request id ${out.$metadata.requestId}`);
});

await check("Encrypt and Decrypt round trip", async () => {
  const plaintext = randomBytes(3000);
  const context = { app: "js" };
  const sealed = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext, EncryptionContext: context }));
  expect(sealed.KeyId === key.Arn, `KeyId ${sealed.KeyId}`);
  const opened = await kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: context }));
  expect(same(opened.Plaintext, plaintext), "plaintext differs");
});

await check("GenerateDataKey", async () => {
  const dk = await kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: "AES_256" }));
  expect(dk.Plaintext.length === 32, `length ${dk.Plaintext.length}`);
  const opened = await kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob }));
  expect(same(opened.Plaintext, dk.Plaintext), "data key differs");
});

await check("ListKeys (paginated, Limit 2)", async () => {
  for (let i = 0; i < 3; i++) await kms.send(new CreateKeyCommand({ Description: `js page ${i}` }));
  const ids = [];
  let pages = 0;
  for await (const page of paginateListKeys({ client: kms, pageSize: 2 }, {})) {
    pages += 1;
    expect(page.Keys.length <= 2, `page of ${page.Keys.length}`);
    ids.push(...page.Keys.map((k) => k.KeyId));
  }
  expect(pages >= 2, `${pages} pages`);
  expect(ids.includes(key.KeyId), "created key not listed");
  expect(new Set(ids).size === ids.length, "a key listed twice");
  const one = await kms.send(new ListKeysCommand({ Limit: 1 }));
  expect(one.Truncated === true && one.NextMarker, "Truncated/NextMarker");
});

await check("NotFoundException", async () => {
  try {
    await kms.send(new DescribeKeyCommand({ KeyId: "11111111-2222-3333-4444-555555555555" }));
  } catch (e) {
    expect(e.name === "NotFoundException", `got ${e.name}`);
    expect(/does not exist/.test(e.message), `message ${e.message}`);
    expect(e.$metadata.httpStatusCode === 400, `status ${e.$metadata.httpStatusCode}`);
    return;
  }
  throw new Error("no error");
});

await check("InvalidSignatureException for a wrong secret", async () => {
  const wrong = new KMSClient({
    endpoint,
    region: "us-east-1",
    maxAttempts: 1,
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: "x".repeat(40) },
  });
  try {
    await wrong.send(new DescribeKeyCommand({ KeyId: key.KeyId }));
  } catch (e) {
    expect(e.name === "InvalidSignatureException", `got ${e.name}`);
    return;
  }
  throw new Error("no error");
});

process.exit(failures === 0 ? 0 : 1);
