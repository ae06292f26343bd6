/* Multi-Region keys from C: two Regions, each an engine on its own durable store (with its own root
 * key file), given the other Region's store with kp_config_add_region_store. The primary Region
 * replicates a key (kp_replicate_key); a second process of the replica's Region, sharing nothing but
 * the store files, decrypts what the primary encrypted, also after a rotation; the replica refuses
 * rotation; kp_update_primary_region swaps the roles; bad arguments are statuses, never crashes.
 *
 *   test_multi_region                                  the whole test
 *   test_multi_region --decrypt WEST EAST BLOB PLAIN   (run by the test) the replica Region's process
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kp_scratch.h"

/* The engine of `region` on the store in `own`, given `peer_region`'s store in `peer`. */
static kp_engine *region_engine(const char *region, const char *own, const char *peer_region,
                                const char *peer) {
  char address[600], peer_address[700];
  kp_config *config = NULL;
  kp_engine *engine = NULL;
  int n = snprintf(address, sizeof address, "sqlite:%s", own);
  CHECK(n > 0 && (size_t)n < sizeof address);
  n = snprintf(peer_address, sizeof peer_address, "%s=sqlite:%s", peer_region, peer);
  CHECK(n > 0 && (size_t)n < sizeof peer_address);
  OK(kp_config_new(&config));
  OK(kp_config_set_region(config, region));
  OK(kp_config_set_store(config, address));
  OK(kp_config_disable_audit(config));
  OK(kp_config_add_region_store(config, peer_address));
  OK(kp_engine_new(config, &engine));
  kp_config_free(config);
  return engine;
}

static size_t seal(kp_engine *engine, const char *key, const char *text, uint8_t *blob, size_t cap) {
  kp_encrypt_item enc;
  size_t len = 0;
  memset(&enc, 0, sizeof enc);
  enc.key_id = key;
  enc.plaintext = (const uint8_t *)text;
  enc.plaintext_len = strlen(text);
  OK(kp_encrypt(engine, &enc, blob, cap, &len, NULL));
  return len;
}

/* The replica Region's process: decrypts the blob in BLOB and compares it with PLAIN. */
static int decrypt_in_west(const char *west, const char *east, const char *blob_path,
                           const char *plain) {
  uint8_t blob[512], out[256];
  size_t len, out_len = 0;
  kp_decrypt_item dec;
  kp_engine *engine = region_engine("eu-west-1", west, "us-east-1", east);
  FILE *f = fopen(blob_path, "rb");
  CHECK(f != NULL);
  len = fread(blob, 1, sizeof blob, f);
  fclose(f);
  memset(&dec, 0, sizeof dec);
  dec.ciphertext = blob;
  dec.ciphertext_len = len;
  OK(kp_decrypt(engine, &dec, out, sizeof out, &out_len, NULL));
  CHECK(out_len == strlen(plain) && memcmp(out, plain, out_len) == 0);
  kp_engine_free(engine);
  return 0;
}

/* Creates the SQLite store in `dir` (an engine of its own makes it, with its own root key file). */
static void create_store(const char *dir) {
  char address[600];
  kp_config *config = NULL;
  kp_engine *engine = NULL;
  int n = snprintf(address, sizeof address, "sqlite:%s", dir);
  CHECK(n > 0 && (size_t)n < sizeof address);
  OK(kp_config_new(&config));
  OK(kp_config_set_store(config, address));
  OK(kp_config_disable_audit(config));
  OK(kp_engine_new(config, &engine));
  kp_config_free(config);
  kp_engine_free(engine);
}

static void decrypt_in_other_process(const char *self, const char *west, const char *east,
                                     const char *blob_path, const uint8_t *blob, size_t len,
                                     const char *plain) {
  char *argv[7];
  FILE *f = fopen(blob_path, "wb");
  CHECK(f != NULL);
  CHECK(fwrite(blob, 1, len, f) == len);
  fclose(f);
  argv[0] = (char *)self;
  argv[1] = (char *)"--decrypt";
  argv[2] = (char *)west;
  argv[3] = (char *)east;
  argv[4] = (char *)blob_path;
  argv[5] = (char *)plain;
  argv[6] = NULL;
  kp_test_run_child(argv);
}

static void expect_json_has(kp_record *record, const char *needle) {
  const char *json = kp_record_string(record, KP_FIELD_JSON);
  CHECK(json != NULL);
  if (strstr(json, needle) == NULL) {
    fprintf(stderr, "JSON lacks %s: %s\n", needle, json);
    exit(1);
  }
}

int main(int argc, char **argv) {
  const char *tmp;
  char east[512], west[512], blob_path[600];
  char key[64];
  uint8_t blob[512];
  size_t len;
  kp_engine *east_engine = NULL, *west_engine = NULL;
  kp_config *config = NULL;
  kp_record *md = NULL, *replica = NULL;
  kp_create_key_options create;
  kp_replicate_key_options options;
  kp_tag tag = {"region", "west"};

  if (argc == 6 && strcmp(argv[1], "--decrypt") == 0) {
    return decrypt_in_west(argv[2], argv[3], argv[4], argv[5]);
  }
  unsetenv("KEYPLANE_ROOT_KEY");
  unsetenv("KEYPLANE_ROOT_KEY_FILE");
  unsetenv("KEYPLANE_STORE");
  tmp = kp_test_scratch_make("kp-mrk");
  kp_test_join(east, sizeof east, tmp, "east");
  kp_test_join(west, sizeof west, tmp, "west");
  kp_test_join(blob_path, sizeof blob_path, tmp, "blob");

  /* Bad Region store values are refused up front. */
  OK(kp_config_new(&config));
  EXPECT(KP_STATUS_STORE_BAD_ADDRESS, kp_config_add_region_store(config, "eu-west-1"));
  EXPECT(KP_STATUS_STORE_BAD_ADDRESS, kp_config_add_region_store(config, "eu-west-1=memory:"));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_config_add_region_store(config, NULL));
  kp_config_free(config);

  /* Each Region's store. */
  create_store(west);
  create_store(east);
  east_engine = region_engine("us-east-1", east, "eu-west-1", west);

  memset(&create, 0, sizeof create);
  create.multi_region = 1;
  OK(kp_create_key(east_engine, &create, &md));
  CHECK(strlen(kp_record_string(md, KP_FIELD_KEY_ID)) == 36);
  CHECK(strncmp(kp_record_string(md, KP_FIELD_KEY_ID), "mrk-", 4) == 0);
  strcpy(key, kp_record_string(md, KP_FIELD_KEY_ID));
  expect_json_has(md, "\"MultiRegionKeyType\":\"PRIMARY\"");
  kp_record_free(md);

  /* Replicate, with the replica's own description and tag. */
  memset(&options, 0, sizeof options);
  options.description = "replica";
  options.tags = &tag;
  options.tag_count = 1;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_replicate_key(east_engine, key, NULL, &options, &replica));
  EXPECT(KP_STATUS_UNSUPPORTED_OPERATION,
         kp_replicate_key(east_engine, key, "ap-south-1", &options, &replica));
  OK(kp_replicate_key(east_engine, key, "eu-west-1", &options, &replica));
  CHECK(strcmp(kp_record_string(replica, KP_FIELD_KEY_ID), key) == 0);
  CHECK(strstr(kp_record_string(replica, KP_FIELD_ARN), "arn:aws:kms:eu-west-1:") != NULL);
  CHECK(strcmp(kp_record_string(replica, KP_FIELD_KEY_STATE), "Enabled") == 0);
  expect_json_has(replica, "\"ReplicaTags\":[{\"TagKey\":\"region\",\"TagValue\":\"west\"}]");
  expect_json_has(replica, "\"MultiRegionKeyType\":\"REPLICA\"");
  kp_record_free(replica);
  EXPECT(KP_STATUS_ALREADY_EXISTS, kp_replicate_key(east_engine, key, "eu-west-1", NULL, NULL));

  /* A ciphertext of the primary decrypts in another process of the replica's Region. */
  len = seal(east_engine, key, "sealed in us-east-1", blob, sizeof blob);
  decrypt_in_other_process(argv[0], west, east, blob_path, blob, len, "sealed in us-east-1");
  OK(kp_rotate_key_on_demand(east_engine, key, NULL));
  len = seal(east_engine, key, "after a rotation", blob, sizeof blob);
  decrypt_in_other_process(argv[0], west, east, blob_path, blob, len, "after a rotation");

  /* The replica refuses shared changes; the swap makes it the primary. */
  west_engine = region_engine("eu-west-1", west, "us-east-1", east);
  EXPECT(KP_STATUS_UNSUPPORTED_OPERATION, kp_rotate_key_on_demand(west_engine, key, NULL));
  EXPECT(KP_STATUS_UNSUPPORTED_OPERATION, kp_update_primary_region(west_engine, key, "us-east-1"));
  EXPECT(KP_STATUS_NOT_FOUND, kp_update_primary_region(east_engine, key, "ap-south-1"));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_update_primary_region(east_engine, NULL, "eu-west-1"));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_update_primary_region(NULL, key, "eu-west-1"));
  OK(kp_update_primary_region(east_engine, key, "eu-west-1"));
  OK(kp_describe_key(west_engine, key, &md));
  expect_json_has(md, "\"MultiRegionKeyType\":\"PRIMARY\"");
  kp_record_free(md);
  OK(kp_rotate_key_on_demand(west_engine, key, NULL));
  EXPECT(KP_STATUS_UNSUPPORTED_OPERATION, kp_rotate_key_on_demand(east_engine, key, NULL));

  kp_engine_free(west_engine);
  kp_engine_free(east_engine);
  printf("test_multi_region: %d checks passed\n", kp_test_checks);
  kp_test_scratch_remove();
  return 0;
}
