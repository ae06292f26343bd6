/* Issue 17: the C ABI says what the engine says. The status names the service's exception
   (kp_status_exception_name) and kp_last_error_message ends with the service's exact message, for
   a missing key, an alias where only key ids are allowed, an empty plaintext and a signing
   algorithm that does not fit the key spec. The same cases, with the same texts, are asserted for the engine
   (engine/tests/service_behaviour.rs, service_messages.rs), the CLI's --json errors
   (cli/tests/service_parity.rs) and the Python client (python/tests/test_service_parity.py). */
#include <stdint.h>

#include "kp_test.h"

static const char *field(const kp_record *r, kp_field f) { return kp_record_string(r, (uint32_t)f); }

/* The status of the last call names `code`, and the last error ends with exactly `message`. */
static void expect_message(kp_status status, const char *code, const char *message) {
  const char *last = kp_test_last_error();
  const char *name = kp_status_exception_name((uint32_t)status);
  size_t len = strlen(last), want = strlen(message);
  if (name == NULL || strcmp(name, code) != 0 || len < want || strcmp(last + len - want, message) != 0) {
    fprintf(stderr, "status %s, last error \"%s\"\n  expected %s, \"%s\"\n",
            name ? name : "(none)", last, code, message);
    exit(1);
  }
  kp_test_checks++;
}

int main(void) {
  kp_engine *engine = NULL;
  kp_record *md = NULL;
  char key_id[64], ec_key[64], arn_prefix[128], expected[256];
  OK(kp_engine_new(NULL, &engine));

  kp_create_key_options options;
  memset(&options, 0, sizeof options);
  OK(kp_create_key(engine, &options, &md));
  strcpy(key_id, field(md, KP_FIELD_KEY_ID));
  /* arn:aws:kms:<region>:<account>: */
  strcpy(arn_prefix, field(md, KP_FIELD_ARN));
  *strstr(arn_prefix, "key/") = '\0';
  kp_record_free(md);
  options.key_spec = "ECC_NIST_P256";
  options.key_usage = "SIGN_VERIFY";
  OK(kp_create_key(engine, &options, &md));
  strcpy(ec_key, field(md, KP_FIELD_KEY_ID));
  kp_record_free(md);

  /* A missing key. */
  static const char missing[] = "11111111-2222-3333-4444-555555555555";
  EXPECT(KP_STATUS_NOT_FOUND, kp_describe_key(engine, missing, &md));
  snprintf(expected, sizeof expected, "Key '%skey/%s' does not exist", arn_prefix, missing);
  expect_message(KP_STATUS_NOT_FOUND, "NotFoundException", expected);

  /* An alias where the operation takes only a key id or key ARN. */
  OK(kp_create_alias(engine, "alias/app", key_id));
  EXPECT(KP_STATUS_NOT_FOUND, kp_enable_key(engine, "alias/app"));
  expect_message(KP_STATUS_NOT_FOUND, "NotFoundException", "Invalid keyId 'alias/app'");

  /* An empty plaintext: the generated validation, in the service's format. */
  static const uint8_t byte = 0;
  uint8_t blob[256];
  size_t written = 0;
  kp_encrypt_item item = {key_id, &byte, 0, NULL, 0};
  EXPECT(KP_STATUS_VALIDATION, kp_encrypt(engine, &item, blob, sizeof blob, &written, NULL));
  expect_message(KP_STATUS_VALIDATION, "ValidationException",
                 "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
                 "Member must have length greater than or equal to 1");

  /* A signing algorithm that does not fit the key spec. */
  static const uint8_t message[] = "hello";
  uint8_t signature[512];
  kp_sign_item sign = {ec_key, message, sizeof message - 1, 0, KP_SIGNING_ALGORITHM_ECDSA_SHA_384};
  EXPECT(KP_STATUS_INVALID_KEY_USAGE,
         kp_sign(engine, &sign, signature, sizeof signature, &written, NULL));
  expect_message(KP_STATUS_INVALID_KEY_USAGE, "InvalidKeyUsageException",
                 "Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_NIST_P256.");

  kp_engine_free(engine);
  printf("test_service_messages: %d checks passed\n", kp_test_checks);
  return 0;
}
