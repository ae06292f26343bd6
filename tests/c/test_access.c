/*
 * Who may do what, how often, and the record of it, from C: callers and engine handles bound to
 * them (AccessDenied for a stranger), key policies (MalformedPolicyDocument, the lockout check),
 * grants (InvalidGrantToken, InvalidGrantId), managed keys reached through a service, rate quotas
 * (Throttling), and the audit log: configuration, GetKeyLastUsage, verification of an intact, a
 * tampered and a truncated log (AuditUnavailable, AuditKey). Built against the installed library;
 * run plain, under ASan/UBSan and under valgrind.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kp_scratch.h"
#include "kp_test.h"

#define ACCOUNT "123456789012"
#define ROOT "arn:aws:iam::" ACCOUNT ":root"
#define ALICE "arn:aws:iam::" ACCOUNT ":user/alice"
#define BOB "arn:aws:iam::" ACCOUNT ":role/bob"
#define STRANGER "arn:aws:iam::999999999999:user/mallory"

static const char *field(const kp_record *r, kp_field f) { return kp_record_string(r, (uint32_t)f); }

static kp_engine *new_engine(void) {
  kp_config *config = NULL;
  kp_engine *engine = NULL;
  OK(kp_config_new(&config));
  OK(kp_config_set_region(config, "eu-west-1"));
  OK(kp_config_set_account_id(config, ACCOUNT));
  OK(kp_config_set_worker_threads(config, 2));
  OK(kp_engine_new(config, &engine));
  kp_config_free(config);
  return engine;
}

static void new_key(kp_engine *engine, const char *spec, const char *policy, char *id) {
  kp_create_key_options options;
  kp_record *md = NULL;
  memset(&options, 0, sizeof options);
  options.key_spec = spec;
  /* Every key spec but SYMMETRIC_DEFAULT needs a key usage, as in the service. */
  if (spec != NULL && strncmp(spec, "HMAC_", 5) == 0) options.key_usage = "GENERATE_VERIFY_MAC";
  options.policy = policy;
  OK(kp_create_key(engine, &options, &md));
  strcpy(id, field(md, KP_FIELD_KEY_ID));
  kp_record_free(md);
}

static kp_status encrypt(const kp_engine *engine, const char *key, const kp_context *ctx) {
  kp_encrypt_item item;
  uint8_t blob[128];
  size_t len = 0;
  memset(&item, 0, sizeof item);
  item.key_id = key;
  item.plaintext = (const uint8_t *)"hello";
  item.plaintext_len = 5;
  item.context = ctx;
  return kp_encrypt(engine, &item, blob, sizeof blob, &len, NULL);
}

static void test_callers(kp_engine *engine) {
  kp_caller *caller = NULL;
  kp_engine *alice = NULL, *stranger = NULL, *again = NULL;
  kp_record *md = NULL;
  char key[64], hmac[64], signer[64];
  uint8_t out[KP_MAX_SIGNATURE_LEN];
  size_t len = 0;
  kp_mac_item mac;
  kp_sign_item sign;

  EXPECT(KP_STATUS_VALIDATION, kp_caller_new("alice", &caller));
  EXPECT(KP_STATUS_VALIDATION, kp_caller_new("arn:aws:iam::12345:user/alice", &caller));
  EXPECT(KP_STATUS_VALIDATION, kp_caller_new("arn:aws:s3::" ACCOUNT ":user/alice", &caller));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_caller_new(NULL, &caller));
  EXPECT(KP_STATUS_INVALID_UTF8, kp_caller_new("\xff", &caller));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_caller_new(ALICE, NULL));
  CHECK(caller == NULL);
  OK(kp_caller_new(ALICE, &caller));
  OK(kp_caller_add_attribute(caller, "aws:PrincipalTag/team", "payments"));
  OK(kp_caller_set_via_service(caller, "s3.eu-west-1.amazonaws.com"));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_caller_add_attribute(caller, NULL, "v"));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_caller_set_via_service(caller, NULL));
  EXPECT(KP_STATUS_INVALID_HANDLE, kp_caller_add_attribute((kp_caller *)engine, "k", "v"));
  OK(kp_engine_for_caller(engine, caller, &alice));
  kp_caller_free(caller); /* the engine handle keeps its own copy */
  kp_caller_free(NULL);
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_engine_for_caller(engine, NULL, &again));
  EXPECT(KP_STATUS_INVALID_HANDLE, kp_engine_for_caller(engine, (const kp_caller *)engine, &again));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_engine_for_caller(NULL, (const kp_caller *)engine, &again));
  EXPECT(KP_STATUS_VALIDATION, kp_engine_for_principal(engine, "root", &again));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_engine_for_principal(engine, STRANGER, NULL));
  CHECK(again == NULL);
  OK(kp_engine_for_principal(engine, STRANGER, &stranger));
  /* A handle for a caller is a handle to the same engine: same keys, same worker pool. */
  CHECK(kp_engine_worker_threads(stranger) == kp_engine_worker_threads(engine));

  /* The default key policy lets the account's principals in, and no one else. */
  new_key(engine, NULL, NULL, key);
  OK(encrypt(engine, key, NULL));
  OK(encrypt(alice, key, NULL));
  EXPECT(KP_STATUS_ACCESS_DENIED, encrypt(stranger, key, NULL));
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_ACCESS_DENIED), "AccessDeniedException") == 0);
  CHECK(strstr(kp_test_last_error(), "mallory") != NULL);
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_describe_key(stranger, key, &md));
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_disable_key(stranger, key));
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_schedule_key_deletion(stranger, key, 7, NULL));
  OK(kp_describe_key(alice, key, &md));
  kp_record_free(md);
  md = NULL;
  /* ...for every kind of operation. */
  new_key(engine, "HMAC_256", NULL, hmac);
  memset(&mac, 0, sizeof mac);
  mac.key_id = hmac;
  mac.message = (const uint8_t *)"m";
  mac.message_len = 1;
  mac.mac_algorithm = KP_MAC_ALGORITHM_HMAC_SHA_256;
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_generate_mac(stranger, &mac, out, sizeof out, &len, NULL));
  OK(kp_generate_mac(alice, &mac, out, sizeof out, &len, NULL));
  {
    kp_create_key_options options;
    memset(&options, 0, sizeof options);
    options.key_spec = "ECC_NIST_P256";
    options.key_usage = "SIGN_VERIFY";
    OK(kp_create_key(engine, &options, &md));
    strcpy(signer, field(md, KP_FIELD_KEY_ID));
    kp_record_free(md);
    md = NULL;
  }
  memset(&sign, 0, sizeof sign);
  sign.key_id = signer;
  sign.message = (const uint8_t *)"m";
  sign.message_len = 1;
  sign.signing_algorithm = KP_SIGNING_ALGORITHM_ECDSA_SHA_256;
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_sign(stranger, &sign, out, sizeof out, &len, NULL));
  OK(kp_sign(alice, &sign, out, sizeof out, &len, NULL));
  /* The stranger's own account may not create keys in this one. */
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_create_key(stranger, NULL, &md));
  CHECK(md == NULL);

  /* Freeing a caller's handle leaves the engine running for the others. */
  kp_engine_free(stranger);
  kp_engine_free(alice);
  OK(encrypt(engine, key, NULL));
}

static void test_policies(kp_engine *engine) {
  const char *alice_only =
      "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"" ALICE
      "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}]}";
  const char *open_to_stranger =
      "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"root\",\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"" ROOT
      "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"},{\"Sid\":\"mallory\",\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"" STRANGER
      "\"},\"Action\":[\"kms:Encrypt\",\"kms:DescribeKey\"],\"Resource\":\"*\"}]}";
  char key[64], locked[64];
  kp_record *policy = NULL, *md = NULL;
  kp_page *page = NULL;
  kp_engine *alice = NULL, *stranger = NULL;
  kp_create_key_options options;

  OK(kp_engine_for_principal(engine, ALICE, &alice));
  OK(kp_engine_for_principal(engine, STRANGER, &stranger));
  new_key(engine, NULL, NULL, key);

  /* The default policy, its one name. */
  OK(kp_get_key_policy(engine, key, NULL, &policy));
  CHECK(strcmp(field(policy, KP_FIELD_POLICY_NAME), "default") == 0);
  CHECK(strstr(field(policy, KP_FIELD_POLICY), "\"kms:*\"") != NULL);
  CHECK(strstr(field(policy, KP_FIELD_POLICY), ROOT) != NULL);
  kp_record_free(policy);
  OK(kp_list_key_policies(engine, key, &page));
  CHECK(kp_page_len(page) == 1 && !kp_page_truncated(page));
  CHECK(strcmp(kp_record_string(kp_page_item(page, 0), KP_FIELD_POLICY_NAME), "default") == 0);
  kp_page_free(page);
  EXPECT(KP_STATUS_NOT_FOUND, kp_get_key_policy(engine, key, "other", &policy));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_get_key_policy(engine, key, NULL, NULL));
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_get_key_policy(stranger, key, NULL, &policy));

  /* Opening the key to the stranger, for some operations. */
  OK(kp_put_key_policy(engine, key, open_to_stranger, "default", 0));
  OK(encrypt(stranger, key, NULL));
  OK(kp_describe_key(stranger, key, &md));
  kp_record_free(md);
  md = NULL;
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_disable_key(stranger, key));
  OK(kp_get_key_policy(engine, key, "default", &policy));
  CHECK(strcmp(field(policy, KP_FIELD_POLICY), open_to_stranger) == 0); /* kept verbatim */
  kp_record_free(policy);

  /* Malformed documents and the lockout check: MalformedPolicyDocumentException. */
  EXPECT(KP_STATUS_MALFORMED_POLICY_DOCUMENT, kp_put_key_policy(engine, key, "{not json", NULL, 0));
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_MALFORMED_POLICY_DOCUMENT), "MalformedPolicyDocumentException") == 0);
  EXPECT(KP_STATUS_MALFORMED_POLICY_DOCUMENT,
         kp_put_key_policy(engine, key, "{\"Version\":\"2012-10-17\",\"Statement\":[]}", NULL, 0));
  EXPECT(KP_STATUS_MALFORMED_POLICY_DOCUMENT, kp_put_key_policy(engine, key, alice_only, NULL, 0));
  EXPECT(KP_STATUS_INVALID_ARGUMENT, kp_put_key_policy(engine, key, alice_only, NULL, 2));
  EXPECT(KP_STATUS_NOT_FOUND, kp_put_key_policy(engine, key, open_to_stranger, "other", 0));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_put_key_policy(engine, key, NULL, NULL, 0));
  /* With the check bypassed, the root locks itself out and alice takes over. */
  OK(kp_put_key_policy(engine, key, alice_only, NULL, 1));
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_put_key_policy(engine, key, open_to_stranger, NULL, 0));
  EXPECT(KP_STATUS_ACCESS_DENIED, encrypt(engine, key, NULL));
  OK(encrypt(alice, key, NULL));
  OK(kp_put_key_policy(alice, key, open_to_stranger, NULL, 1));
  OK(encrypt(engine, key, NULL));

  /* CreateKey with a policy: the same check, the same bypass. */
  memset(&options, 0, sizeof options);
  options.policy = alice_only;
  EXPECT(KP_STATUS_MALFORMED_POLICY_DOCUMENT, kp_create_key(engine, &options, &md));
  options.bypass_policy_lockout_safety_check = 3;
  EXPECT(KP_STATUS_INVALID_ARGUMENT, kp_create_key(engine, &options, &md));
  options.bypass_policy_lockout_safety_check = 1;
  OK(kp_create_key(engine, &options, &md));
  strcpy(locked, field(md, KP_FIELD_KEY_ID));
  kp_record_free(md);
  md = NULL;
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_describe_key(engine, locked, &md));
  OK(kp_describe_key(alice, locked, &md));
  kp_record_free(md);
  options.bypass_policy_lockout_safety_check = 0;
  options.policy = "[]";
  EXPECT(KP_STATUS_MALFORMED_POLICY_DOCUMENT, kp_create_key(engine, &options, &md));

  kp_engine_free(alice);
  kp_engine_free(stranger);
}

static void test_grants(kp_engine *engine) {
  const char *encrypt_decrypt[2] = {"Encrypt", "Decrypt"};
  const char *bad_ops[1] = {"Frobnicate"};
  const char *retire_ops[2] = {"Encrypt", "RetireGrant"};
  char key[64], grant_id[80], token[200], second_id[80];
  kp_engine *stranger = NULL, *bob = NULL;
  kp_context *ctx = NULL, *other = NULL;
  kp_create_grant_request request;
  kp_record *grant = NULL;
  kp_page *page = NULL;
  const kp_record *entry;
  int64_t created = 0;

  OK(kp_engine_for_principal(engine, STRANGER, &stranger));
  OK(kp_engine_for_principal(engine, BOB, &bob));
  OK(kp_context_new(&ctx));
  OK(kp_context_add(ctx, "tenant", "7"));
  OK(kp_context_new(&other));
  OK(kp_context_add(other, "tenant", "8"));
  new_key(engine, NULL, NULL, key);
  EXPECT(KP_STATUS_ACCESS_DENIED, encrypt(stranger, key, ctx));

  /* A grant lets the stranger encrypt, only with tenant=7 in the context; bob may retire it. */
  memset(&request, 0, sizeof request);
  request.key_id = key;
  request.grantee_principal = STRANGER;
  request.retiring_principal = BOB;
  request.operations = encrypt_decrypt;
  request.operation_count = 2;
  request.encryption_context_subset = ctx;
  request.name = "tenant-7";
  OK(kp_create_grant(engine, &request, &grant));
  CHECK(strlen(field(grant, KP_FIELD_GRANT_ID)) == 64);
  strcpy(grant_id, field(grant, KP_FIELD_GRANT_ID));
  strcpy(token, field(grant, KP_FIELD_GRANT_TOKEN));
  CHECK(strstr(field(grant, KP_FIELD_JSON), "GrantToken") != NULL);
  kp_record_free(grant);
  grant = NULL;
  OK(encrypt(stranger, key, ctx));
  EXPECT(KP_STATUS_ACCESS_DENIED, encrypt(stranger, key, other));
  EXPECT(KP_STATUS_ACCESS_DENIED, encrypt(stranger, key, NULL));

  /* ListGrants, whole and filtered. */
  OK(kp_list_grants(engine, key, NULL, NULL, 0, NULL, &page));
  CHECK(kp_page_len(page) == 1);
  entry = kp_page_item(page, 0);
  CHECK(strcmp(kp_record_string(entry, KP_FIELD_GRANT_ID), grant_id) == 0);
  CHECK(strcmp(kp_record_string(entry, KP_FIELD_GRANT_NAME), "tenant-7") == 0);
  CHECK(strcmp(kp_record_string(entry, KP_FIELD_GRANTEE_PRINCIPAL), STRANGER) == 0);
  CHECK(strcmp(kp_record_string(entry, KP_FIELD_RETIRING_PRINCIPAL), BOB) == 0);
  CHECK(strcmp(kp_record_string(entry, KP_FIELD_ISSUING_ACCOUNT), ROOT) == 0);
  CHECK(strcmp(kp_record_string(entry, KP_FIELD_OPERATIONS), "Encrypt,Decrypt") == 0);
  CHECK(strstr(kp_record_string(entry, KP_FIELD_KEY_ID), key) != NULL);
  CHECK(strstr(kp_record_string(entry, KP_FIELD_JSON), "EncryptionContextSubset") != NULL);
  CHECK(kp_record_int(entry, KP_FIELD_CREATION_DATE, &created) && created > 0);
  kp_page_free(page);
  OK(kp_list_grants(engine, key, NULL, ALICE, 0, NULL, &page));
  CHECK(kp_page_len(page) == 0);
  kp_page_free(page);
  OK(kp_list_grants(engine, key, grant_id, NULL, 10, NULL, &page));
  CHECK(kp_page_len(page) == 1);
  kp_page_free(page);
  OK(kp_list_retirable_grants(engine, BOB, 0, NULL, &page));
  CHECK(kp_page_len(page) == 1);
  CHECK(strcmp(kp_record_string(kp_page_item(page, 0), KP_FIELD_GRANT_ID), grant_id) == 0);
  kp_page_free(page);
  EXPECT(KP_STATUS_VALIDATION, kp_list_grants(engine, key, NULL, NULL, 1000, NULL, &page));
  EXPECT(KP_STATUS_INVALID_MARKER, kp_list_grants(engine, key, NULL, NULL, 0, "nope", &page));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_list_grants(engine, NULL, NULL, NULL, 0, NULL, &page));
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_list_grants(stranger, key, NULL, NULL, 0, NULL, &page));

  /* Requests the engine refuses. */
  request.operations = bad_ops;
  request.operation_count = 1;
  EXPECT(KP_STATUS_VALIDATION, kp_create_grant(engine, &request, &grant));
  request.operation_count = 0;
  EXPECT(KP_STATUS_VALIDATION, kp_create_grant(engine, &request, &grant));
  request.operations = NULL;
  request.operation_count = 2;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_create_grant(engine, &request, &grant));
  request.operations = encrypt_decrypt;
  request.operation_count = (size_t)1 << 40;
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_create_grant(engine, &request, &grant));
  request.operation_count = 2;
  request.encryption_context_equals = other; /* both constraints */
  EXPECT(KP_STATUS_VALIDATION, kp_create_grant(engine, &request, &grant));
  request.encryption_context_equals = NULL;
  request.grantee_principal = "mallory";
  EXPECT(KP_STATUS_VALIDATION, kp_create_grant(engine, &request, &grant));
  request.grantee_principal = STRANGER;
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_create_grant(stranger, &request, &grant));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_create_grant(engine, NULL, &grant));
  CHECK(grant == NULL);

  /* RetireGrant: InvalidGrantToken, InvalidGrantId, and who may. */
  EXPECT(KP_STATUS_INVALID_GRANT_TOKEN, kp_retire_grant(bob, "not-a-token", NULL, NULL));
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_INVALID_GRANT_TOKEN), "InvalidGrantTokenException") == 0);
  EXPECT(KP_STATUS_INVALID_GRANT_ID,
         kp_retire_grant(bob, NULL, key, "0000000000000000000000000000000000000000000000000000000000000000"));
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_INVALID_GRANT_ID), "InvalidGrantIdException") == 0);
  EXPECT(KP_STATUS_VALIDATION, kp_retire_grant(bob, NULL, key, NULL));
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_retire_grant(stranger, token, NULL, NULL)); /* not allowed to */
  OK(kp_retire_grant(bob, token, NULL, NULL));
  EXPECT(KP_STATUS_ACCESS_DENIED, encrypt(stranger, key, ctx));
  EXPECT(KP_STATUS_INVALID_GRANT_ID, kp_retire_grant(bob, token, NULL, NULL));

  /* A grant its grantee may retire; RevokeGrant by the key's administrator. */
  request.operations = retire_ops;
  request.retiring_principal = NULL;
  request.encryption_context_subset = NULL;
  request.name = NULL;
  OK(kp_create_grant(engine, &request, &grant));
  strcpy(grant_id, field(grant, KP_FIELD_GRANT_ID));
  kp_record_free(grant);
  OK(encrypt(stranger, key, NULL));
  OK(kp_retire_grant(stranger, NULL, key, grant_id));
  EXPECT(KP_STATUS_ACCESS_DENIED, encrypt(stranger, key, NULL));
  OK(kp_create_grant(engine, &request, &grant));
  strcpy(second_id, field(grant, KP_FIELD_GRANT_ID));
  kp_record_free(grant);
  EXPECT(KP_STATUS_INVALID_GRANT_ID, kp_revoke_grant(engine, key, grant_id));
  EXPECT(KP_STATUS_ACCESS_DENIED, kp_revoke_grant(stranger, key, second_id));
  OK(kp_revoke_grant(engine, key, second_id));
  EXPECT(KP_STATUS_ACCESS_DENIED, encrypt(stranger, key, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_revoke_grant(engine, key, NULL));

  kp_context_free(ctx);
  kp_context_free(other);
  kp_engine_free(stranger);
  kp_engine_free(bob);
}

static void test_managed_keys(kp_engine *engine) {
  kp_record *md = NULL, *again = NULL;
  kp_caller *caller = NULL;
  kp_engine *direct = NULL, *via_s3 = NULL;
  char arn[256];
  OK(kp_managed_key(engine, "s3", &md));
  CHECK(strcmp(field(md, KP_FIELD_KEY_MANAGER), "AWS") == 0);
  CHECK(strcmp(field(md, KP_FIELD_KEY_SPEC), "SYMMETRIC_DEFAULT") == 0);
  strcpy(arn, field(md, KP_FIELD_ARN));
  OK(kp_managed_key(engine, "s3", &again)); /* the same key the second time */
  CHECK(strcmp(field(again, KP_FIELD_ARN), arn) == 0);
  kp_record_free(again);
  kp_record_free(md);
  md = NULL;
  EXPECT(KP_STATUS_VALIDATION, kp_managed_key(engine, "S3!", &md));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_managed_key(engine, NULL, &md));
  CHECK(md == NULL);

  /* Principals of the account use it through the service, not directly. */
  OK(kp_engine_for_principal(engine, ALICE, &direct));
  OK(kp_caller_new(ALICE, &caller));
  OK(kp_caller_set_via_service(caller, "s3.eu-west-1.amazonaws.com"));
  OK(kp_engine_for_caller(engine, caller, &via_s3));
  kp_caller_free(caller);
  OK(encrypt(via_s3, "alias/aws/s3", NULL));
  EXPECT(KP_STATUS_ACCESS_DENIED, encrypt(direct, "alias/aws/s3", NULL));
  /* Nobody changes its policy. */
  EXPECT(KP_STATUS_ACCESS_DENIED,
         kp_put_key_policy(engine, arn,
                           "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"
                           "{\"AWS\":\"" ROOT "\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}]}",
                           NULL, 1));
  kp_engine_free(direct);
  kp_engine_free(via_s3);
}

static void test_throttling(void) {
  kp_config *config = NULL;
  kp_engine *engine = NULL;
  kp_record *md = NULL;
  char key[64];
  kp_encrypt_item items[3];
  kp_out out[3];
  uint8_t blobs[3][128];
  size_t i;
  OK(kp_config_new(&config));
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_config_set_rate_quota(config, 4, 10));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_config_set_rate_quota(NULL, 0, 10));
  OK(kp_config_set_service_rate_quotas(config));
  OK(kp_config_set_rate_quota(config, KP_QUOTA_FAMILY_SYMMETRIC_CRYPTO, 1));
  OK(kp_config_set_rate_quota(config, KP_QUOTA_FAMILY_CONTROL_PLANE, 0)); /* unlimited */
  OK(kp_engine_new(config, &engine));
  kp_config_free(config);
  OK(kp_create_key(engine, NULL, &md));
  strcpy(key, field(md, KP_FIELD_KEY_ID));
  kp_record_free(md);
  OK(kp_create_key(engine, NULL, &md)); /* the control plane is not limited */
  kp_record_free(md);
  /* One request a second: the first passes, the next is throttled. */
  OK(encrypt(engine, key, NULL));
  EXPECT(KP_STATUS_THROTTLING, encrypt(engine, key, NULL));
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_THROTTLING), "ThrottlingException") == 0);
  /* A batch over the quota fails every item. */
  memset(items, 0, sizeof items);
  for (i = 0; i < 3; i++) {
    items[i].key_id = key;
    items[i].plaintext = (const uint8_t *)"x";
    items[i].plaintext_len = 1;
    out[i].data = blobs[i];
    out[i].capacity = sizeof blobs[i];
  }
  EXPECT(KP_STATUS_BATCH_ITEMS_FAILED, kp_encrypt_batch(engine, items, 3, out));
  for (i = 0; i < 3; i++) CHECK(out[i].status == KP_STATUS_THROTTLING);
  kp_engine_free(engine);
}

/* Reads a whole file into a new buffer (NUL-terminated); its length into *len. */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *data;
  long size;
  CHECK(f != NULL);
  CHECK(fseek(f, 0, SEEK_END) == 0);
  size = ftell(f);
  CHECK(size >= 0 && fseek(f, 0, SEEK_SET) == 0);
  data = (char *)malloc((size_t)size + 1);
  CHECK(data != NULL && fread(data, 1, (size_t)size, f) == (size_t)size);
  data[size] = '\0';
  fclose(f);
  *len = (size_t)size;
  return data;
}

static void write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL && fwrite(data, 1, len, f) == len);
  fclose(f);
}

static kp_record *verify(const char *path, const uint8_t *public_key, size_t len, int64_t expected_verdict) {
  kp_record *report = NULL;
  int64_t verdict = -1;
  OK(kp_audit_verify(path, public_key, len, &report));
  CHECK(kp_record_int(report, KP_FIELD_AUDIT_VERDICT, &verdict));
  if (verdict != expected_verdict) {
    fprintf(stderr, "audit verdict %lld, expected %lld: %s\n", (long long)verdict, (long long)expected_verdict,
            field(report, KP_FIELD_AUDIT_SUMMARY));
  }
  CHECK(verdict == expected_verdict);
  return report;
}

static void test_audit(void) {
  const char *dir;
  char path[256], copy[256], missing[256], key_id[64];
  kp_secret_buffer *signing_key = NULL;
  kp_config *config = NULL;
  kp_engine *engine = NULL, *alice = NULL, *plain = NULL;
  kp_record *usage = NULL, *report = NULL, *digest = NULL;
  uint8_t public_key[128];
  size_t public_key_len = 0, len = 0;
  int64_t value = 0, records = 0;
  char *log, *at;

  dir = kp_test_scratch_make("kp-audit");
  snprintf(path, sizeof path, "%s/audit.log", dir);
  snprintf(copy, sizeof copy, "%s/copy.log", dir);
  snprintf(missing, sizeof missing, "%s/no/such/dir/audit.log", dir);
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_audit_generate_signing_key(5, &signing_key));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_audit_generate_signing_key(KP_LOCK_POLICY_WARN, NULL));
  OK(kp_audit_generate_signing_key(KP_LOCK_POLICY_WARN, &signing_key));
  CHECK(kp_secret_buffer_len(signing_key) > 100 && kp_secret_buffer_data(signing_key)[0] == 0x30);

  /* Settings refused before kp_config_set_audit, or malformed. */
  OK(kp_config_new(&config));
  OK(kp_config_set_region(config, "eu-west-1"));
  OK(kp_config_set_account_id(config, ACCOUNT));
  EXPECT(KP_STATUS_INVALID_ARGUMENT, kp_config_set_audit_durability(config, KP_AUDIT_DURABILITY_QUEUED));
  EXPECT(KP_STATUS_INVALID_ARGUMENT, kp_config_set_audit_digest_interval(config, 10, 0));
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_config_set_audit(config, path, kp_secret_buffer_data(signing_key), 0));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_config_set_audit(config, path, NULL, 10));
  /* A log that cannot be opened, a key that cannot sign: AuditUnavailable, no engine. */
  OK(kp_config_set_audit(config, missing, kp_secret_buffer_data(signing_key), kp_secret_buffer_len(signing_key)));
  EXPECT(KP_STATUS_AUDIT_UNAVAILABLE, kp_engine_new(config, &engine));
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_AUDIT_UNAVAILABLE), "KMSInternalException") == 0);
  CHECK(engine == NULL);
  OK(kp_config_set_audit(config, path, (const uint8_t *)"not a key", 9));
  EXPECT(KP_STATUS_AUDIT_UNAVAILABLE, kp_engine_new(config, &engine));
  CHECK(engine == NULL);
  OK(kp_config_set_audit(config, NULL, NULL, 0)); /* off again */
  OK(kp_engine_new(config, &plain));
  EXPECT(KP_STATUS_INVALID_ARGUMENT, kp_engine_audit_flush(plain));
  EXPECT(KP_STATUS_INVALID_ARGUMENT, kp_engine_audit_public_key(plain, public_key, sizeof public_key, &public_key_len));

  /* An audited engine. */
  OK(kp_config_set_audit(config, path, kp_secret_buffer_data(signing_key), kp_secret_buffer_len(signing_key)));
  OK(kp_config_set_audit_durability(config, KP_AUDIT_DURABILITY_SYNCED));
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_config_set_audit_durability(config, 2));
  OK(kp_config_set_audit_digest_interval(config, 1000, 0));
  OK(kp_engine_new(config, &engine));
  new_key(engine, NULL, NULL, key_id);
  OK(kp_get_key_last_usage(engine, key_id, &usage));
  CHECK(kp_record_int(usage, KP_FIELD_TRACKING_START_DATE, &value) && value > 0);
  CHECK(!kp_record_int(usage, KP_FIELD_LAST_USED_DATE, &value));
  CHECK(field(usage, KP_FIELD_LAST_USED_OPERATION) == NULL);
  kp_record_free(usage);
  OK(encrypt(engine, key_id, NULL));
  OK(kp_engine_for_principal(engine, ALICE, &alice));
  OK(encrypt(alice, key_id, NULL));
  OK(kp_get_key_last_usage(alice, key_id, &usage));
  CHECK(strcmp(field(usage, KP_FIELD_LAST_USED_OPERATION), "Encrypt") == 0);
  CHECK(kp_record_int(usage, KP_FIELD_LAST_USED_DATE, &value) && value > 0);
  CHECK(strlen(field(usage, KP_FIELD_CLOUD_TRAIL_EVENT_ID)) > 0 && strlen(field(usage, KP_FIELD_KMS_REQUEST_ID)) > 0);
  CHECK(strstr(field(usage, KP_FIELD_KEY_ID), key_id) != NULL);
  CHECK(kp_record_int(usage, KP_FIELD_CREATION_DATE, &value));
  CHECK(strstr(field(usage, KP_FIELD_JSON), "KeyLastUsage") != NULL);
  kp_record_free(usage);
  EXPECT(KP_STATUS_NOT_FOUND, kp_get_key_last_usage(engine, "alias/none", &usage));
  OK(kp_engine_audit_public_key(engine, public_key, sizeof public_key, &public_key_len));
  CHECK(public_key_len == 91);
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_engine_audit_public_key(engine, public_key, 90, &len));
  OK(kp_engine_audit_last_digest(engine, &digest));
  CHECK(field(digest, KP_FIELD_AUDIT_DIGEST_LINE) == NULL); /* none yet */
  kp_record_free(digest);
  OK(kp_engine_audit_flush(alice));
  OK(kp_engine_audit_write_digest(engine));
  OK(kp_engine_audit_last_digest(engine, &digest));
  CHECK(field(digest, KP_FIELD_AUDIT_DIGEST_LINE) != NULL);
  kp_record_free(digest);
  OK(encrypt(engine, key_id, NULL));
  OK(kp_engine_audit_flush(engine));

  /* While the engine runs: verified records, one not yet signed. */
  report = verify(path, public_key, public_key_len, KP_AUDIT_VERDICT_UNSIGNED_TAIL);
  CHECK(kp_record_int(report, KP_FIELD_AUDIT_UNSIGNED_TAIL, &value) && value >= 1);
  kp_record_free(report);
  kp_engine_free(alice);
  kp_engine_free(engine); /* the last handle: a final digest, then the log closes */

  report = verify(path, public_key, public_key_len, KP_AUDIT_VERDICT_INTACT);
  CHECK(kp_record_int(report, KP_FIELD_AUDIT_RECORDS, &records) && records >= 6);
  CHECK(kp_record_int(report, KP_FIELD_AUDIT_DIGESTS, &value) && value >= 2);
  CHECK(kp_record_int(report, KP_FIELD_AUDIT_LAST_SEQ, &value) && value == records);
  CHECK(kp_record_int(report, KP_FIELD_AUDIT_SIGNED_THROUGH, &value) && value == records);
  CHECK(kp_record_int(report, KP_FIELD_AUDIT_UNSIGNED_TAIL, &value) && value == 0);
  CHECK(!kp_record_int(report, KP_FIELD_AUDIT_PROBLEM_LINE, &value));
  CHECK(field(report, KP_FIELD_AUDIT_PROBLEM_KIND) == NULL);
  CHECK(strncmp(field(report, KP_FIELD_AUDIT_SUMMARY), "OK:", 3) == 0);
  kp_record_free(report);

  /* A modified record. */
  log = read_file(path, &len);
  at = strstr(log, "\"Encrypt\"");
  CHECK(at != NULL);
  at[1] = 'D'; /* "Dncrypt" */
  write_file(copy, log, len);
  report = verify(copy, public_key, public_key_len, KP_AUDIT_VERDICT_TAMPERED);
  CHECK(strcmp(field(report, KP_FIELD_AUDIT_PROBLEM_KIND), "modified record") == 0);
  CHECK(kp_record_int(report, KP_FIELD_AUDIT_PROBLEM_LINE, &value) && value >= 1);
  CHECK(strlen(field(report, KP_FIELD_AUDIT_PROBLEM_DETAIL)) > 0);
  CHECK(strncmp(field(report, KP_FIELD_AUDIT_SUMMARY), "TAMPERED", 8) == 0);
  kp_record_free(report);
  at[1] = 'E';
  /* A last line cut short by a crash. */
  write_file(copy, log, len);
  {
    FILE *f = fopen(copy, "ab");
    CHECK(f != NULL && fputs("{\"seq\":", f) >= 0);
    fclose(f);
  }
  report = verify(copy, public_key, public_key_len, KP_AUDIT_VERDICT_TRUNCATED);
  CHECK(kp_record_int(report, KP_FIELD_AUDIT_TRUNCATED_BYTES, &value) && value == 7);
  CHECK(kp_record_int(report, KP_FIELD_AUDIT_TRUNCATED_OFFSET, &value) && value == (int64_t)len);
  CHECK(kp_record_int(report, KP_FIELD_AUDIT_TRUNCATED_LINE, &value) && value > records);
  kp_record_free(report);
  free(log);

  /* A key that is not the log's, a key that is not a key, a log that is not there. */
  public_key[public_key_len - 1] ^= 1;
  report = NULL;
  if (kp_audit_verify(path, public_key, public_key_len, &report) == KP_STATUS_OK) {
    /* Still a point on the curve: a valid key of someone else, so the digests do not verify. */
    CHECK(kp_record_int(report, KP_FIELD_AUDIT_VERDICT, &value) && value == KP_AUDIT_VERDICT_TAMPERED);
    kp_record_free(report);
  } else {
    CHECK(kp_last_error_length() > 0);
  }
  public_key[public_key_len - 1] ^= 1;
  report = NULL;
  EXPECT(KP_STATUS_AUDIT_KEY, kp_audit_verify(path, (const uint8_t *)"garbage", 7, &report));
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_AUDIT_KEY), "KMSInternalException") == 0);
  EXPECT(KP_STATUS_AUDIT_UNAVAILABLE, kp_audit_verify(missing, public_key, public_key_len, &report));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_audit_verify(NULL, public_key, public_key_len, &report));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_audit_verify(path, public_key, public_key_len, NULL));
  CHECK(report == NULL);

  /* The log continues under a new engine with the same key (the configuration kept its copy;
     the caller's own is zeroed now). */
  kp_secret_buffer_free(signing_key);
  OK(kp_engine_new(config, &engine));
  kp_config_free(config);
  new_key(engine, NULL, NULL, key_id);
  kp_engine_free(engine);
  report = verify(path, public_key, public_key_len, KP_AUDIT_VERDICT_INTACT);
  CHECK(kp_record_int(report, KP_FIELD_AUDIT_RECORDS, &value) && value == records + 1);
  kp_record_free(report);

  /* Without an audit log, GetKeyLastUsage has nothing to say. */
  new_key(plain, NULL, NULL, key_id);
  OK(encrypt(plain, key_id, NULL));
  OK(kp_get_key_last_usage(plain, key_id, &usage));
  CHECK(!kp_record_int(usage, KP_FIELD_TRACKING_START_DATE, &value));
  CHECK(field(usage, KP_FIELD_LAST_USED_OPERATION) == NULL && field(usage, KP_FIELD_KEY_ID) != NULL);
  kp_record_free(usage);
  kp_engine_free(plain);

  CHECK(unlink(path) == 0 && unlink(copy) == 0 && rmdir(dir) == 0);
}

int main(void) {
  kp_engine *engine = new_engine();
  test_callers(engine);
  test_policies(engine);
  test_grants(engine);
  test_managed_keys(engine);
  kp_engine_free(engine);
  test_throttling();
  test_audit();
  printf("test_access: %d checks passed\n", kp_test_checks);
  printf("%d passed, 0 failed\n", 1);
  return 0;
}
