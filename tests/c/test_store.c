/* Durable stores from C: a store created in a temporary directory keeps its keys across engines and
 * processes (a second run of this program decrypts); the root-key callback; and each way opening
 * fails (wrong or missing root key, open-only on a missing directory, a read-only data directory,
 * a newer schema, a damaged file, a bad address) is its own
 * status with a message, never a crash.
 *
 *   test_store                              the whole test
 *   test_store --decrypt DIR BLOB PLAIN     (run by the test) opens DIR open-only, decrypts BLOB
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kp_scratch.h"

static const char plaintext[] = "a record that outlives its process";

static kp_config *store_config(const char *dir, int open_only) {
  char address[512];
  kp_config *config = NULL;
  int n = snprintf(address, sizeof address, "sqlite:%s", dir);
  CHECK(n > 0 && (size_t)n < sizeof address);
  OK(kp_config_new(&config));
  OK(kp_config_set_store(config, address));
  OK(kp_config_set_open_only(config, open_only != 0));
  return config;
}

/* Opens `dir` and expects `status` with `needle` in the message; nothing is returned. */
static void expect_open_fails(kp_config *config, uint32_t status, const char *needle) {
  kp_engine *engine = NULL;
  EXPECT_MSG(status, needle, kp_engine_new(config, &engine));
  CHECK(engine == NULL);
  kp_config_free(config);
}

static size_t encrypt(kp_engine *engine, const char *key, uint8_t *blob, size_t cap) {
  kp_encrypt_item enc;
  size_t len = 0;
  memset(&enc, 0, sizeof enc);
  enc.key_id = key;
  enc.plaintext = (const uint8_t *)plaintext;
  enc.plaintext_len = sizeof plaintext;
  OK(kp_encrypt(engine, &enc, blob, cap, &len, NULL));
  return len;
}

static void decrypt_and_check(kp_engine *engine, const uint8_t *blob, size_t len) {
  kp_decrypt_item dec;
  uint8_t out[256];
  size_t out_len = 0;
  memset(&dec, 0, sizeof dec);
  dec.ciphertext = blob;
  dec.ciphertext_len = len;
  dec.key_id = "alias/store-test";
  OK(kp_decrypt(engine, &dec, out, sizeof out, &out_len, NULL));
  CHECK(out_len == sizeof plaintext && memcmp(out, plaintext, out_len) == 0);
}

/* Makes a key with the alias alias/store-test and returns a ciphertext under it. */
static size_t make_key(kp_engine *engine, uint8_t *blob, size_t cap) {
  kp_record *md = NULL;
  OK(kp_create_key(engine, NULL, &md));
  OK(kp_create_alias(engine, "alias/store-test", kp_record_string(md, KP_FIELD_KEY_ID)));
  kp_record_free(md);
  return encrypt(engine, "alias/store-test", blob, cap);
}

/* The second process: open only, the default root key (the data directory's key file). */
static int decrypt_in_this_process(const char *dir, const char *blob_path) {
  uint8_t blob[512];
  kp_engine *engine = NULL;
  kp_config *config = store_config(dir, 1);
  FILE *f = fopen(blob_path, "rb");
  size_t len;
  CHECK(f != NULL);
  len = fread(blob, 1, sizeof blob, f);
  fclose(f);
  OK(kp_engine_new(config, &engine));
  kp_config_free(config);
  decrypt_and_check(engine, blob, len);
  kp_engine_free(engine);
  return 0;
}

/* ---- the root-key callback -------------------------------------------------------------- */

typedef struct {
  uint8_t key[32];
  int calls;
  int fail;
} key_holder;

static int give_root_key(void *user_data, uint8_t *key_out, size_t key_len) {
  key_holder *holder = (key_holder *)user_data;
  holder->calls++;
  if (holder->fail || key_len != sizeof holder->key) return -1;
  memcpy(key_out, holder->key, key_len);
  return 0;
}

static void callback_path(const char *tmp) {
  char dir[512], key_file[600];
  uint8_t blob[512];
  size_t len;
  kp_engine *engine = NULL;
  kp_config *config;
  key_holder holder;
  struct stat st;
  memset(&holder, 0, sizeof holder);
  memset(holder.key, 0x5a, sizeof holder.key);
  kp_test_join(dir, sizeof dir, tmp, "callback");

  config = store_config(dir, 0);
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_config_set_root_key_callback(config, NULL, &holder));
  OK(kp_config_set_root_key_callback(config, give_root_key, &holder));
  OK(kp_engine_new(config, &engine));
  CHECK(holder.calls >= 1);
  kp_test_join(key_file, sizeof key_file, dir, "root.key");
  CHECK(stat(key_file, &st) != 0 && errno == ENOENT); /* the key never touched the disk */
  len = make_key(engine, blob, sizeof blob);
  kp_engine_free(engine);

  /* Reopened through the callback: the same key decrypts. */
  OK(kp_config_set_open_only(config, true));
  OK(kp_engine_new(config, &engine));
  decrypt_and_check(engine, blob, len);
  kp_engine_free(engine);

  /* Another key from the callback: the wrong root key, named as the callback. */
  holder.key[0] ^= 1;
  EXPECT_MSG(KP_STATUS_STORE_WRONG_ROOT_KEY, "kp_root_key_callback", kp_engine_new(config, &engine));
  /* The callback failing: the root key is missing. */
  holder.key[0] ^= 1;
  holder.fail = 1;
  EXPECT_MSG(KP_STATUS_STORE_ROOT_KEY_MISSING, "returned -1", kp_engine_new(config, &engine));
  kp_config_free(config);
}

/* ---- a read-only data directory (as an unprivileged user when run as root) ------------------ */

static void read_only_directory(const char *tmp) {
  char base[512], dir[600];
  int status = 0;
  pid_t pid;
  kp_test_join(base, sizeof base, tmp, "readonly");
  CHECK(mkdir(base, 0755) == 0);
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    kp_engine *engine = NULL;
    kp_config *config;
    if (geteuid() == 0) {
      /* root ignores permissions: drop to nobody for this check. */
      if (chown(base, 65534, 65534) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    }
    kp_test_join(dir, sizeof dir, base, "data");
    config = store_config(dir, 0);
    OK(kp_config_set_lock_policy(config, KP_LOCK_POLICY_WARN));
    OK(kp_engine_new(config, &engine));
    kp_engine_free(engine);
    engine = NULL;
    CHECK(chmod(dir, 0500) == 0);
    EXPECT_MSG(KP_STATUS_STORE_READ_ONLY, dir, kp_engine_new(config, &engine));
    CHECK(engine == NULL);
    /* A missing store below a read-only directory cannot be created either. */
    kp_test_join(dir, sizeof dir, base, "data/sub");
    kp_config_free(config);
    config = store_config(dir, 0);
    OK(kp_config_set_lock_policy(config, KP_LOCK_POLICY_WARN));
    EXPECT(KP_STATUS_STORE_READ_ONLY, kp_engine_new(config, &engine));
    kp_config_free(config);
    kp_test_join(dir, sizeof dir, base, "data");
    CHECK(chmod(dir, 0700) == 0);
    _exit(0);
  }
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- a store from a newer schema, and a damaged one ------------------------------------------ */

static void newer_schema_and_damage(const char *tmp) {
  char dir[512], db[600];
  uint8_t version[4] = {0, 0, 0x7f, 0};
  kp_engine *engine = NULL;
  kp_config *config;
  int fd;
  kp_test_join(dir, sizeof dir, tmp, "schema");
  config = store_config(dir, 0);
  OK(kp_engine_new(config, &engine));
  kp_engine_free(engine);
  kp_config_free(config);
  /* SQLite's header keeps the schema version (PRAGMA user_version) at offset 60, big-endian. */
  kp_test_join(db, sizeof db, dir, "keyplane.db");
  fd = open(db, O_WRONLY);
  CHECK(fd >= 0);
  CHECK(pwrite(fd, version, sizeof version, 60) == (ssize_t)sizeof version);
  CHECK(close(fd) == 0);
  expect_open_fails(store_config(dir, 1), KP_STATUS_STORE_NEWER_SCHEMA, "newer");

  fd = open(db, O_WRONLY | O_TRUNC);
  CHECK(fd >= 0);
  CHECK(write(fd, "not a database, not even close, at all.....", 43) == 43);
  CHECK(close(fd) == 0);
  expect_open_fails(store_config(dir, 1), KP_STATUS_STORE_DAMAGED, "keyplane.db");
}

int main(int argc, char **argv) {
  const char *tmp;
  char dir[512], path[600], blob_path[600], absent[600];
  char *child[5];
  uint8_t blob[512], blob2[512];
  size_t len;
  kp_engine *engine = NULL, *second = NULL;
  kp_config *config;
  struct stat st;
  FILE *f;

  if (argc == 4 && strcmp(argv[1], "--decrypt") == 0) return decrypt_in_this_process(argv[2], argv[3]);
  unsetenv("KEYPLANE_ROOT_KEY");
  unsetenv("KEYPLANE_ROOT_KEY_FILE");
  unsetenv("KEYPLANE_STORE");
  tmp = kp_test_scratch_make("kp-store");
  CHECK(chmod(tmp, 0755) == 0);
  kp_test_join(dir, sizeof dir, tmp, "data");

  /* Addresses refused up front. */
  OK(kp_config_new(&config));
  EXPECT_MSG(KP_STATUS_STORE_UNKNOWN_SCHEME, "mysql", kp_config_set_store(config, "mysql://db/keys"));
  /* A PostgreSQL fleet store is a known scheme (opened, and tested, in scripts/test-postgres). */
  OK(kp_config_set_store(config, "postgres://keyplane@db.example/keys"));
  EXPECT(KP_STATUS_STORE_BAD_ADDRESS, kp_config_set_store(config, "/var/lib/keyplane"));
  EXPECT(KP_STATUS_STORE_BAD_ADDRESS, kp_config_set_store(config, "sqlite:"));
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_config_set_root_key_passphrase(config, (const uint8_t *)"", 0));
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_config_set_store_audit(config, NULL, 9, 0));
  OK(kp_config_set_store(config, "memory:"));
  OK(kp_config_set_store(config, NULL));
  kp_config_free(config);

  /* Open only, on a directory that does not exist: a clear status, and nothing created. */
  kp_test_join(absent, sizeof absent, tmp, "absent");
  expect_open_fails(store_config(absent, 1), KP_STATUS_STORE_MISSING, absent);
  CHECK(stat(absent, &st) != 0 && errno == ENOENT);

  /* Created on first use, with a private root key file; a key, an alias and a ciphertext. */
  config = store_config(dir, 0);
  OK(kp_config_set_store_audit(config, NULL, KP_AUDIT_DURABILITY_SYNCED, 200));
  OK(kp_engine_new(config, &engine));
  kp_test_join(path, sizeof path, dir, "root.key");
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
  len = make_key(engine, blob, sizeof blob);

  /* A second engine while the first is open: both audit, each into a segment of its own. */
  OK(kp_engine_new(config, &second));
  CHECK(encrypt(second, "alias/store-test", blob2, sizeof blob2) > 0);
  kp_engine_free(second);
  kp_engine_free(engine);
  kp_config_free(config);
  kp_test_join(path, sizeof path, dir, "audit/segments");
  CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
  kp_test_join(path, sizeof path, dir, "audit/audit-signing-key.der");
  CHECK(stat(path, &st) == 0);

  /* Reopened by a new engine in this process. */
  config = store_config(dir, 1);
  OK(kp_engine_new(config, &engine));
  decrypt_and_check(engine, blob, len);
  kp_engine_free(engine);
  kp_config_free(config);

  /* And by a new process. */
  kp_test_join(blob_path, sizeof blob_path, tmp, "blob.bin");
  f = fopen(blob_path, "wb");
  CHECK(f != NULL && fwrite(blob, 1, len, f) == len);
  CHECK(fclose(f) == 0);
  child[0] = argv[0];
  child[1] = "--decrypt";
  child[2] = dir;
  child[3] = blob_path;
  child[4] = NULL;
  kp_test_run_child(child);

  /* From the environment, as the CLI reads it: KEYPLANE_HOME names the data directory. */
  CHECK(setenv("KEYPLANE_HOME", dir, 1) == 0);
  OK(kp_config_from_env(&config));
  OK(kp_engine_new(config, &engine));
  decrypt_and_check(engine, blob, len);
  kp_engine_free(engine);
  kp_config_free(config);
  CHECK(setenv("KEYPLANE_STORE", "mysql://later", 1) == 0);
  EXPECT(KP_STATUS_STORE_UNKNOWN_SCHEME, kp_config_from_env(&config));
  unsetenv("KEYPLANE_STORE");
  unsetenv("KEYPLANE_HOME");

  /* Wrong and missing root keys, named. */
  config = store_config(dir, 1);
  CHECK(setenv("KP_TEST_OTHER_ROOT_KEY", "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=", 1) == 0);
  OK(kp_config_set_root_key_env(config, "KP_TEST_OTHER_ROOT_KEY"));
  expect_open_fails(config, KP_STATUS_STORE_WRONG_ROOT_KEY, "KP_TEST_OTHER_ROOT_KEY");
  config = store_config(dir, 1);
  OK(kp_config_set_root_key_env(config, "KP_TEST_UNSET_ROOT_KEY"));
  expect_open_fails(config, KP_STATUS_STORE_ROOT_KEY_MISSING, "KP_TEST_UNSET_ROOT_KEY");
  config = store_config(dir, 1);
  kp_test_join(path, sizeof path, tmp, "no-such.key");
  OK(kp_config_set_root_key_file(config, path));
  expect_open_fails(config, KP_STATUS_STORE_ROOT_KEY_MISSING, "no-such.key");
  kp_test_join(path, sizeof path, dir, "root.key");
  CHECK(chmod(path, 0644) == 0);
  expect_open_fails(store_config(dir, 1), KP_STATUS_STORE_ROOT_KEY_PERMISSIONS, "root.key");
  CHECK(chmod(path, 0600) == 0);

  callback_path(tmp);
  read_only_directory(tmp);
  newer_schema_and_damage(tmp);

  printf("test_store: %d checks passed\n", kp_test_checks);
  kp_test_scratch_remove();
  return 0;
}
