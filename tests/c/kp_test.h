/* Small helpers shared by the C tests: checks that print where they failed and exit non-zero. */
#ifndef KP_TEST_H
#define KP_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyplane.h"

static int kp_test_checks = 0;

/* The calling thread's last error message (static buffer: single-threaded use only). */
static const char *kp_test_last_error(void) {
  static char buf[4096];
  size_t len = 0;
  if (kp_last_error_message(buf, sizeof buf, &len) != KP_STATUS_OK) {
    return "(could not read the last error)";
  }
  return buf;
}

#define CHECK(cond)                                                                  \
  do {                                                                               \
    kp_test_checks++;                                                                \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

/* Runs a call and checks its status; prints both names and the last error otherwise. */
#define EXPECT(expected, call)                                                       \
  do {                                                                               \
    uint32_t kp_got_ = (uint32_t)(call);                                             \
    kp_test_checks++;                                                                \
    if (kp_got_ != (uint32_t)(expected)) {                                           \
      fprintf(stderr, "%s:%d: %s\n  returned %s, expected %s\n  last error: %s\n",   \
              __FILE__, __LINE__, #call, kp_status_name(kp_got_),                    \
              kp_status_name((uint32_t)(expected)), kp_test_last_error());           \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

#define OK(call) EXPECT(KP_STATUS_OK, call)

/* Runs `call` and checks that it failed with `status` and a message containing `needle`. */
#define EXPECT_MSG(status, needle, call)                                              \
  do {                                                                                \
    EXPECT(status, call);                                                             \
    if (strstr(kp_test_last_error(), (needle)) == NULL) {                             \
      fprintf(stderr, "%s:%d: message lacks '%s': %s\n", __FILE__, __LINE__, (needle), \
              kp_test_last_error());                                                  \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

/* Creates a key of `spec` for `usage` and copies its id into `id` (64 bytes); checks that the key
 * reports the spec it was created with. */
static inline void kp_test_new_key(kp_engine *engine, const char *spec, const char *usage,
                                   char *id) {
  kp_create_key_options options;
  kp_record *md = NULL;
  memset(&options, 0, sizeof options);
  options.key_spec = spec;
  options.key_usage = usage;
  OK(kp_create_key(engine, &options, &md));
  CHECK(strcmp(kp_record_string(md, (uint32_t)KP_FIELD_KEY_SPEC), spec) == 0);
  strcpy(id, kp_record_string(md, (uint32_t)KP_FIELD_KEY_ID));
  kp_record_free(md);
}

/* Encrypts the string `text` under `key` into `blob` (`capacity` bytes, `*blob_len` written) and
 * returns the request that decrypts it. */
static inline kp_decrypt_item kp_test_encrypt_text(kp_engine *engine, const char *key,
                                                   const char *text, uint8_t *blob,
                                                   size_t capacity, size_t *blob_len) {
  kp_encrypt_item enc;
  kp_decrypt_item dec;
  memset(&enc, 0, sizeof enc);
  enc.key_id = key;
  enc.plaintext = (const uint8_t *)text;
  enc.plaintext_len = strlen(text);
  OK(kp_encrypt(engine, &enc, blob, capacity, blob_len, NULL));
  memset(&dec, 0, sizeof dec);
  dec.ciphertext = blob;
  dec.ciphertext_len = *blob_len;
  return dec;
}

/* A new engine in memory with `worker_threads` workers and the default settings otherwise. */
static inline kp_engine *kp_test_new_engine(uint32_t worker_threads) {
  kp_config *config = NULL;
  kp_engine *engine = NULL;
  OK(kp_config_new(&config));
  OK(kp_config_set_worker_threads(config, worker_threads));
  OK(kp_engine_new(config, &engine));
  kp_config_free(config);
  return engine;
}

/* Runs `argv[0]` with `argv` in a child process and requires it to exit 0. */
static inline void kp_test_run_child(char *const argv[]) {
  int status = 0;
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    execv(argv[0], argv);
    _exit(127);
  }
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

#endif
