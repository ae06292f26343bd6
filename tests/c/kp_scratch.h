/* A C test's scratch directory, for the files it hands to other programs (openssl, the CLI).
 * Needs mkdtemp: define _POSIX_C_SOURCE 200809L before the first include. */
#ifndef KP_SCRATCH_H
#define KP_SCRATCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kp_test.h"

#define KP_TEST_SCRATCH_CAP 128

/* The directory for temporary files: $TMPDIR (the suite sets its own, and checks that nothing
 * is left in it), else /tmp. */
static inline const char *kp_test_tmpdir(void) {
  const char *tmp = getenv("TMPDIR");
  return tmp != NULL && tmp[0] == '/' ? tmp : "/tmp";
}

/* kp_test_scratch_make("kp-name") makes $TMPDIR/kp-name-XXXXXX and returns its path,
 * kp_test_scratch_remove() removes it with everything in it. One per process. */
static inline char *kp_test_scratch(void) {
  static char dir[KP_TEST_SCRATCH_CAP];
  return dir;
}

static inline const char *kp_test_scratch_make(const char *prefix) {
  char *dir = kp_test_scratch();
  int n = snprintf(dir, KP_TEST_SCRATCH_CAP, "%s/%s-XXXXXX", kp_test_tmpdir(), prefix);
  CHECK(n > 0 && n < KP_TEST_SCRATCH_CAP);
  CHECK(mkdtemp(dir) != NULL);
  return dir;
}

static inline void kp_test_scratch_remove(void) {
  char command[160];
  CHECK(kp_test_scratch()[0] == '/');
  CHECK(snprintf(command, sizeof command, "rm -rf '%s'", kp_test_scratch()) > 0);
  CHECK(system(command) == 0);
}

/* The path `dir`/`name` into `out` (`cap` bytes). */
static inline void kp_test_join(char *out, size_t cap, const char *dir, const char *name) {
  int n = snprintf(out, cap, "%s/%s", dir, name);
  CHECK(n > 0 && (size_t)n < cap);
}

/* `name` in the scratch directory, into `out` (`cap` bytes). */
static inline void kp_test_path(char *out, size_t cap, const char *name) {
  kp_test_join(out, cap, kp_test_scratch(), name);
}

/* Writes `len` bytes of `data` into the scratch file `name`. */
static inline void kp_test_write_file(const char *name, const uint8_t *data, size_t len) {
  char p[256];
  FILE *f;
  kp_test_path(p, sizeof p, name);
  f = fopen(p, "wb");
  CHECK(f != NULL);
  CHECK(len == 0 || fwrite(data, 1, len, f) == len);
  CHECK(fclose(f) == 0);
}

/* The whole of the scratch file `name` into `data`, which must have room to spare (`cap` bytes);
 * returns its length. */
static inline size_t kp_test_read_file(const char *name, uint8_t *data, size_t cap) {
  char p[256];
  FILE *f;
  size_t n;
  kp_test_path(p, sizeof p, name);
  f = fopen(p, "rb");
  CHECK(f != NULL);
  n = fread(data, 1, cap, f);
  CHECK(n < cap); /* the whole file */
  CHECK(fclose(f) == 0);
  return n;
}

#endif
