/* Small helpers shared by the C tests: checks that print where they failed and exit non-zero. */
#ifndef KP_TEST_H
#define KP_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#endif
