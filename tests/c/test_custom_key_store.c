/* HSM key stores through the C ABI, against a SoftHSMv2 token that this test has
 * scripts/lib/softhsm.sh (named by KEYPLANE_SOFTHSM, which scripts/test-c exports) make in a
 * temporary directory with its own SOFTHSM2_CONF (softhsm2-util, Debian's softhsm2): the token
 * configured with kp_config_add_pkcs11_token, the six custom key store calls, a key in the store,
 * Encrypt and Decrypt, the store disconnected (the key unavailable) and connected again, random
 * bytes from the token, and a wrong PIN failing with INVALID_CREDENTIALS. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kp_scratch.h"

#define CLUSTER "cluster-softhsmtoken"
#define PIN "1234567890"
#define ANCHOR "-----BEGIN CERTIFICATE-----\nc29mdGhzbQ==\n-----END CERTIFICATE-----\n"

/* A token labelled `label` in `dir`, made by scripts/lib/softhsm.sh (the one definition of a
 * test token): sets SOFTHSM2_CONF and returns the module's path (static storage). */
static const char *softhsm_token(const char *dir, const char *label) {
  static char module[1024];
  char command[1536];
  char line[1024];
  const char *script = getenv("KEYPLANE_SOFTHSM");
  FILE *made;
  if (script == NULL) {
    fprintf(stderr, "set KEYPLANE_SOFTHSM to scripts/lib/softhsm.sh (scripts/test-c does)\n");
    exit(1);
  }
  snprintf(command, sizeof command, "'%s' token '%s' '%s' '%s'", script, dir, label, PIN);
  made = popen(command, "r");
  CHECK(made != NULL);
  module[0] = '\0';
  while (fgets(line, sizeof line, made) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "SOFTHSM2_CONF=", 14) == 0) {
      CHECK(setenv("SOFTHSM2_CONF", line + 14, 1) == 0);
    } else if (strncmp(line, "SOFTHSM_MODULE=", 15) == 0) {
      snprintf(module, sizeof module, "%s", line + 15);
    }
  }
  CHECK(pclose(made) == 0);
  CHECK(module[0] != '\0' && getenv("SOFTHSM2_CONF") != NULL);
  return module;
}

static const char *state_of(const struct kp_engine *engine, const char *id, const char **error) {
  static char state[64];
  static char code[64];
  struct kp_page *page = NULL;
  const struct kp_record *item;
  const char *value;
  OK(kp_describe_custom_key_stores(engine, id, NULL, 0, NULL, &page));
  CHECK(kp_page_len(page) == 1);
  item = kp_page_item(page, 0);
  CHECK(strcmp(kp_record_string(item, KP_FIELD_CUSTOM_KEY_STORE_ID), id) == 0);
  CHECK(strcmp(kp_record_string(item, KP_FIELD_CLOUD_HSM_CLUSTER_ID), CLUSTER) == 0);
  CHECK(strstr(kp_record_string(item, KP_FIELD_JSON), PIN) == NULL);
  snprintf(state, sizeof state, "%s", kp_record_string(item, KP_FIELD_CONNECTION_STATE));
  value = kp_record_string(item, KP_FIELD_CONNECTION_ERROR_CODE);
  snprintf(code, sizeof code, "%s", value ? value : "");
  kp_page_free(page);
  if (error) {
    *error = code;
  }
  return state;
}

int main(void) {
  const char *dir;
  const char *module;
  struct kp_config *config = NULL;
  struct kp_engine *engine = NULL;
  struct kp_record *record = NULL;
  struct kp_create_key_options options;
  struct kp_decrypt_item dec;
  char store[64];
  char key[64];
  const char *error = NULL;
  uint8_t blob[256];
  size_t blob_len = 0;
  uint8_t plain[64];
  size_t plain_len = 0;
  uint8_t random_bytes[32];
  uint8_t zeros[32];

  dir = kp_test_scratch_make("kp-c-hsm");
  module = softhsm_token(dir, "keyplane");

  OK(kp_config_new(&config));
  OK(kp_config_add_pkcs11_token(config, CLUSTER, module, "keyplane"));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_config_add_pkcs11_token(config, CLUSTER, NULL, "keyplane"));
  OK(kp_engine_new(config, &engine));

  OK(kp_create_custom_key_store(engine, "softhsm", CLUSTER, ANCHOR, (const uint8_t *)PIN,
                                strlen(PIN), NULL, &record));
  snprintf(store, sizeof store, "%s", kp_record_string(record, KP_FIELD_CUSTOM_KEY_STORE_ID));
  kp_record_free(record);
  CHECK(strncmp(store, "cks-", 4) == 0 && strlen(store) == 21);
  CHECK(strcmp(state_of(engine, store, NULL), "DISCONNECTED") == 0);
  EXPECT(KP_STATUS_CLOUD_HSM_CLUSTER_IN_USE,
         kp_create_custom_key_store(engine, "other", CLUSTER, ANCHOR, (const uint8_t *)PIN,
                                    strlen(PIN), NULL, &record));
  EXPECT(KP_STATUS_CUSTOM_KEY_STORE_INVALID_STATE, kp_disconnect_custom_key_store(engine, store));

  /* Not connected: no key can be made in it. */
  memset(&options, 0, sizeof options);
  options.origin = "AWS_CLOUDHSM";
  EXPECT(KP_STATUS_CUSTOM_KEY_STORE_INVALID_STATE,
         kp_create_key_in_custom_key_store(engine, &options, store, NULL, &record));
  OK(kp_connect_custom_key_store(engine, store));
  CHECK(strcmp(state_of(engine, store, NULL), "CONNECTED") == 0);

  OK(kp_create_key_in_custom_key_store(engine, &options, store, NULL, &record));
  snprintf(key, sizeof key, "%s", kp_record_string(record, KP_FIELD_KEY_ID));
  CHECK(strcmp(kp_record_string(record, KP_FIELD_ORIGIN), "AWS_CLOUDHSM") == 0);
  CHECK(strcmp(kp_record_string(record, KP_FIELD_CUSTOM_KEY_STORE_ID), store) == 0);
  CHECK(strcmp(kp_record_string(record, KP_FIELD_CLOUD_HSM_CLUSTER_ID), CLUSTER) == 0);
  kp_record_free(record);

  dec = kp_test_encrypt_text(engine, key, "held by the HSM", blob, sizeof blob, &blob_len);
  OK(kp_decrypt(engine, &dec, plain, sizeof plain, &plain_len, NULL));
  CHECK(plain_len == 15 && memcmp(plain, "held by the HSM", 15) == 0);

  memset(random_bytes, 0, sizeof random_bytes);
  memset(zeros, 0, sizeof zeros);
  OK(kp_generate_random_from_custom_key_store(engine, store, sizeof random_bytes, random_bytes,
                                              sizeof random_bytes));
  CHECK(memcmp(random_bytes, zeros, sizeof zeros) != 0);

  /* Disconnected: the key is unavailable, and the store cannot be deleted while it holds it. */
  OK(kp_disconnect_custom_key_store(engine, store));
  EXPECT(KP_STATUS_KEY_UNAVAILABLE, kp_decrypt(engine, &dec, plain, sizeof plain, &plain_len, NULL));
  EXPECT(KP_STATUS_CUSTOM_KEY_STORE_HAS_CMKS, kp_delete_custom_key_store(engine, store));
  OK(kp_update_custom_key_store(engine, store, "renamed", NULL, 0, NULL, NULL));
  OK(kp_connect_custom_key_store(engine, store));
  OK(kp_decrypt(engine, &dec, plain, sizeof plain, &plain_len, NULL));
  CHECK(plain_len == 15 && memcmp(plain, "held by the HSM", 15) == 0);

  /* A wrong PIN: the store is FAILED with INVALID_CREDENTIALS; delete it once disconnected. */
  OK(kp_disconnect_custom_key_store(engine, store));
  OK(kp_update_custom_key_store(engine, store, NULL, (const uint8_t *)"not-the-pin", 11, NULL, NULL));
  OK(kp_connect_custom_key_store(engine, store));
  CHECK(strcmp(state_of(engine, store, &error), "FAILED") == 0);
  CHECK(strcmp(error, "INVALID_CREDENTIALS") == 0);
  EXPECT(KP_STATUS_CUSTOM_KEY_STORE_INVALID_STATE, kp_connect_custom_key_store(engine, store));
  EXPECT(KP_STATUS_CUSTOM_KEY_STORE_NOT_FOUND,
         kp_connect_custom_key_store(engine, "cks-00000000000000000"));

  kp_engine_free(engine);
  kp_config_free(config);
  kp_test_scratch_remove();
  printf("test_custom_key_store: %d checks passed\n", kp_test_checks);
  return 0;
}
