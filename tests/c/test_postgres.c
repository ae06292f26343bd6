/* A PostgreSQL fleet store from C (issue 19): an engine on `postgres://...` makes a key, an alias
 * and a grant; a second engine (another node: its own KEYPLANE_HOME, the same root key) opened on
 * the same database sees all three and decrypts what the first encrypted; a bad address and an
 * unreachable server are their own statuses with a message, never a crash.
 *
 *   test_postgres ADDRESS   ADDRESS: an empty database on the server scripts/test-c starts
 *                           (scripts/lib/postgres-cluster.sh). Without it: NOT RUN, a failure under
 *                           CI=true.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "kp_scratch.h"
#include "kp_test.h"

static const char plaintext[] = "shared by the fleet";

/* An engine on `address` as the node whose directory is `node`, with the fleet's root key file. */
static kp_engine *node_engine(const char *address, const char *node, const char *root_key,
                              int open_only) {
  kp_config *config = NULL;
  kp_engine *engine = NULL;
  CHECK(setenv("KEYPLANE_HOME", node, 1) == 0);
  OK(kp_config_new(&config));
  OK(kp_config_set_store(config, address));
  OK(kp_config_set_root_key_file(config, root_key));
  OK(kp_config_set_open_only(config, open_only != 0));
  OK(kp_engine_new(config, &engine));
  kp_config_free(config);
  return engine;
}

static void copy_field(char *out, size_t cap, const kp_record *record, uint32_t field) {
  const char *value = kp_record_string(record, field);
  CHECK(value != NULL && strlen(value) < cap);
  memcpy(out, value, strlen(value) + 1);
}

int main(int argc, char **argv) {
  const char *dir;
  char node_a[256], node_b[256], root_key[256], key_id[128], grant_id[128];
  const char *address = argc > 1 ? argv[1] : NULL;
  if (address == NULL || address[0] == '\0') {
    const char *ci = getenv("CI");
    fprintf(stderr, "test_postgres: NOT RUN: no database address (scripts/test-c starts one)\n");
    return ci != NULL && strcmp(ci, "true") == 0 ? 1 : 0;
  }
  /* The nodes' directories and the fleet's root key file, removed at the end. */
  dir = kp_test_scratch_make("kp-test-postgres");
  snprintf(node_a, sizeof node_a, "%s/node-a", dir);
  snprintf(node_b, sizeof node_b, "%s/node-b", dir);
  snprintf(root_key, sizeof root_key, "%s/root.key", dir);

  /* Node A creates the store (and the root key file) and makes a key, an alias and a grant. */
  kp_engine *a = node_engine(address, node_a, root_key, 0);
  kp_create_key_options options;
  memset(&options, 0, sizeof options);
  options.description = "fleet from C";
  kp_record *made = NULL;
  OK(kp_create_key(a, &options, &made));
  copy_field(key_id, sizeof key_id, made, KP_FIELD_KEY_ID);
  kp_record_free(made);
  OK(kp_create_alias(a, "alias/fleet-c", key_id));
  const char *operations[] = {"Encrypt", "Decrypt"};
  kp_create_grant_request grant;
  memset(&grant, 0, sizeof grant);
  grant.key_id = key_id;
  grant.grantee_principal = "arn:aws:iam::111122223333:role/worker";
  grant.operations = operations;
  grant.operation_count = 2;
  kp_record *granted = NULL;
  OK(kp_create_grant(a, &grant, &granted));
  copy_field(grant_id, sizeof grant_id, granted, KP_FIELD_GRANT_ID);
  kp_record_free(granted);
  kp_encrypt_item enc;
  memset(&enc, 0, sizeof enc);
  enc.key_id = "alias/fleet-c";
  enc.plaintext = (const uint8_t *)plaintext;
  enc.plaintext_len = sizeof plaintext;
  uint8_t blob[512];
  size_t blob_len = 0;
  OK(kp_encrypt(a, &enc, blob, sizeof blob, &blob_len, NULL));

  /* Node B, opened on the same database, sees all three. */
  kp_engine *b = node_engine(address, node_b, root_key, 1);
  kp_record *described = NULL;
  OK(kp_describe_key(b, "alias/fleet-c", &described));
  CHECK(strcmp(kp_record_string(described, KP_FIELD_DESCRIPTION), "fleet from C") == 0);
  CHECK(strcmp(kp_record_string(described, KP_FIELD_KEY_ID), key_id) == 0);
  kp_record_free(described);
  kp_page *aliases = NULL;
  OK(kp_list_aliases(b, key_id, 0, NULL, &aliases));
  CHECK(kp_page_len(aliases) == 1);
  CHECK(strcmp(kp_record_string(kp_page_item(aliases, 0), KP_FIELD_ALIAS_NAME),
               "alias/fleet-c") == 0);
  kp_page_free(aliases);
  kp_page *grants = NULL;
  OK(kp_list_grants(b, key_id, NULL, NULL, 0, NULL, &grants));
  CHECK(kp_page_len(grants) == 1);
  CHECK(strcmp(kp_record_string(kp_page_item(grants, 0), KP_FIELD_GRANT_ID), grant_id) == 0);
  kp_page_free(grants);
  kp_decrypt_item dec;
  memset(&dec, 0, sizeof dec);
  dec.ciphertext = blob;
  dec.ciphertext_len = blob_len;
  uint8_t out[256];
  size_t out_len = 0;
  OK(kp_decrypt(b, &dec, out, sizeof out, &out_len, NULL));
  CHECK(out_len == sizeof plaintext && memcmp(out, plaintext, out_len) == 0);

  /* A disable on B: A's next control-plane call follows it, and A's data plane refuses. */
  OK(kp_disable_key(b, key_id));
  kp_record *on_a = NULL;
  OK(kp_describe_key(a, key_id, &on_a));
  CHECK(strcmp(kp_record_string(on_a, KP_FIELD_KEY_STATE), "Disabled") == 0);
  kp_record_free(on_a);
  EXPECT(KP_STATUS_DISABLED, kp_encrypt(a, &enc, blob, sizeof blob, &blob_len, NULL));
  kp_engine_free(b);
  kp_engine_free(a);

  /* A server nothing answers: its own status, saying so; an address that is not one: refused. */
  kp_config *config = NULL;
  kp_engine *none = NULL;
  OK(kp_config_new(&config));
  OK(kp_config_set_store(config, "postgres://nobody@127.0.0.1:1/none"));
  OK(kp_config_set_root_key_file(config, root_key));
  OK(kp_config_set_open_only(config, 1));
  EXPECT_MSG(KP_STATUS_STORE_UNREACHABLE, "cannot be reached", kp_engine_new(config, &none));
  CHECK(none == NULL);
  kp_config_free(config);
  OK(kp_config_new(&config));
  EXPECT_MSG(KP_STATUS_STORE_BAD_ADDRESS, "names no database", kp_config_set_store(config, "postgres://"));
  kp_config_free(config);

  kp_test_scratch_remove();
  printf("test_postgres: %d checks passed\n", kp_test_checks);
  return 0;
}
