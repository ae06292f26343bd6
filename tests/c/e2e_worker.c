/* The C process of the cross-binding end-to-end test (scripts/test-bindings): a service that links
 * libkeyplane (through pkg-config) and shares a data directory with the CLI and a Python process.
 *
 *   e2e_worker encrypt HOME KEY COUNT BATCH OUT   encrypts COUNT records ("record-N") under KEY in
 *                                                 batches of BATCH, one hex blob a line in OUT
 *   e2e_worker follow HOME KEY STOPFILE           long-lived: encrypts one item at a time (every
 *                                                 5 ms) until STOPFILE exists, printing
 *                                                 "<unix ns> ok <key version>", "<unix ns> disabled"
 *                                                 or "<unix ns> error <status>" for each call
 *   e2e_worker churn HOME ACKFILE                 forever (until killed): creates a key, encrypts a
 *                                                 batch under it; appends "key <id>" and
 *                                                 "ct <id> <hex plaintext> <hex blob>" to ACKFILE,
 *                                                 fsynced, only after each call returned
 *
 * encrypt and follow end with "requests N": the audited requests this process made. The engine
 * opens sqlite:HOME with the library's defaults (root key HOME/root.key, audit log in HOME/audit,
 * the default scheduler interval) unless KP_E2E_INTERVAL_MS sets the interval.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kp_test.h"

#define RECORD_MAX 64
#define BLOB_MAX (RECORD_MAX + 82)

static kp_engine *open_engine(const char *home) {
  char address[1024];
  kp_config *config = NULL;
  kp_engine *engine = NULL;
  const char *interval = getenv("KP_E2E_INTERVAL_MS");
  int n = snprintf(address, sizeof address, "sqlite:%s", home);
  CHECK(n > 0 && (size_t)n < sizeof address);
  OK(kp_config_new(&config));
  OK(kp_config_set_store(config, address));
  OK(kp_config_set_lock_policy(config, KP_LOCK_POLICY_WARN));
  if (interval != NULL) {
    OK(kp_config_set_scheduler_interval_ms(config, strtoull(interval, NULL, 10)));
  }
  OK(kp_engine_new(config, &engine));
  kp_config_free(config);
  return engine;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The key version in a blob (docs/ciphertext-format.md: bytes 18..22, big-endian). */
static uint32_t blob_version(const uint8_t *blob, size_t len) {
  CHECK(len >= 22);
  return ((uint32_t)blob[18] << 24) | ((uint32_t)blob[19] << 16) | ((uint32_t)blob[20] << 8) |
         (uint32_t)blob[21];
}

static void put_hex(FILE *f, const uint8_t *bytes, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    fprintf(f, "%02x", bytes[i]);
  }
}

static int encrypt_file(const char *home, const char *key, size_t count, size_t batch,
                        const char *out_path) {
  kp_engine *engine = open_engine(home);
  FILE *out = fopen(out_path, "w");
  kp_encrypt_item *items = calloc(batch, sizeof *items);
  kp_out *outs = calloc(batch, sizeof *outs);
  char *records = calloc(batch, RECORD_MAX);
  uint8_t *blobs = calloc(batch, BLOB_MAX);
  size_t done = 0, requests = 0, i;
  CHECK(out != NULL && items != NULL && outs != NULL && records != NULL && blobs != NULL);
  while (done < count) {
    size_t n = count - done < batch ? count - done : batch;
    for (i = 0; i < n; i++) {
      char *record = records + i * RECORD_MAX;
      int len = snprintf(record, RECORD_MAX, "record-%06zu", done + i);
      items[i].key_id = key;
      items[i].plaintext = (const uint8_t *)record;
      items[i].plaintext_len = (size_t)len;
      outs[i].data = blobs + i * BLOB_MAX;
      outs[i].capacity = BLOB_MAX;
    }
    OK(kp_encrypt_batch(engine, items, n, outs));
    requests++;
    for (i = 0; i < n; i++) {
      CHECK(outs[i].status == KP_STATUS_OK);
      put_hex(out, outs[i].data, outs[i].len);
      fputc('\n', out);
    }
    done += n;
  }
  CHECK(fclose(out) == 0);
  free(items);
  free(outs);
  free(records);
  free(blobs);
  kp_engine_free(engine);
  printf("requests %zu\n", requests);
  return 0;
}

static int follow(const char *home, const char *key, const char *stop_file) {
  kp_engine *engine = open_engine(home);
  static const char item[] = "followed";
  size_t requests = 0;
  struct stat st;
  struct timespec pause = {0, 5000000};
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("ready\n");
  while (stat(stop_file, &st) != 0) {
    kp_encrypt_item enc;
    uint8_t blob[BLOB_MAX];
    size_t len = 0;
    kp_status status;
    memset(&enc, 0, sizeof enc);
    enc.key_id = key;
    enc.plaintext = (const uint8_t *)item;
    enc.plaintext_len = sizeof item - 1;
    status = kp_encrypt(engine, &enc, blob, sizeof blob, &len, NULL);
    requests++;
    if (status == KP_STATUS_OK) {
      printf("%llu ok %u\n", (unsigned long long)now_ns(), blob_version(blob, len));
    } else if (status == KP_STATUS_DISABLED) {
      printf("%llu disabled\n", (unsigned long long)now_ns());
    } else {
      printf("%llu error %u %s\n", (unsigned long long)now_ns(), status, kp_test_last_error());
    }
    nanosleep(&pause, NULL);
  }
  kp_engine_free(engine);
  printf("requests %zu\n", requests);
  return 0;
}

/* Appends `line` to the acknowledgement file and fsyncs it. */
static void ack(int fd, const char *line, size_t len) {
  CHECK(write(fd, line, len) == (ssize_t)len);
  CHECK(fsync(fd) == 0);
}

/* Ends the line a killed predecessor left unfinished (a write() can stop part way when SIGKILL
 * arrives between the pages it copies), so that this worker's first acknowledgement starts a line
 * of its own. Every line ends with " ."; the checker counts only lines that do. */
static void end_torn_line(int fd) {
  off_t size = lseek(fd, 0, SEEK_END);
  char last = '\n';
  CHECK(size >= 0);
  if (size > 0) {
    CHECK(pread(fd, &last, 1, size - 1) == 1);
  }
  if (last != '\n') {
    ack(fd, "\n", 1);
  }
}

/* CreateKey, tried again while it answers CONFLICT: with every worker creating keys and some
 * killed mid-commit, the store can keep changing through the engine's own 8 tries, and the
 * error says to retry the request (docs/store.md, "Conflicts"). Any other status is returned. */
static kp_status create_key_retrying(kp_engine *engine, kp_record **md) {
  kp_status status = kp_create_key(engine, NULL, md);
  int tries = 1;
  while (status == KP_STATUS_CONFLICT && tries < 100) {
    status = kp_create_key(engine, NULL, md);
    tries++;
  }
  return status;
}

static int churn(const char *home, const char *ack_path) {
  enum { BATCH = 16 };
  kp_engine *engine = open_engine(home);
  int fd = open(ack_path, O_RDWR | O_CREAT | O_APPEND, 0600);
  unsigned long round = 0;
  CHECK(fd >= 0);
  end_torn_line(fd);
  for (;;) {
    kp_record *md = NULL;
    kp_encrypt_item items[BATCH];
    kp_out outs[BATCH];
    char records[BATCH][RECORD_MAX];
    uint8_t blobs[BATCH][BLOB_MAX];
    char key[64];
    char line[1024];
    size_t i;
    int n;
    OK(create_key_retrying(engine, &md));
    n = snprintf(key, sizeof key, "%s", kp_record_string(md, KP_FIELD_KEY_ID));
    CHECK(n > 0 && (size_t)n < sizeof key);
    kp_record_free(md);
    n = snprintf(line, sizeof line, "key %s .\n", key);
    ack(fd, line, (size_t)n);
    memset(items, 0, sizeof items);
    memset(outs, 0, sizeof outs);
    for (i = 0; i < BATCH; i++) {
      int len = snprintf(records[i], RECORD_MAX, "c-%d-%lu-%zu", (int)getpid(), round, i);
      items[i].key_id = key;
      items[i].plaintext = (const uint8_t *)records[i];
      items[i].plaintext_len = (size_t)len;
      outs[i].data = blobs[i];
      outs[i].capacity = BLOB_MAX;
    }
    OK(kp_encrypt_batch(engine, items, BATCH, outs));
    for (i = 0; i < BATCH; i++) {
      FILE *mem;
      char *buf = NULL;
      size_t size = 0;
      mem = open_memstream(&buf, &size);
      CHECK(mem != NULL);
      fprintf(mem, "ct %s ", key);
      put_hex(mem, (const uint8_t *)records[i], items[i].plaintext_len);
      fputc(' ', mem);
      put_hex(mem, outs[i].data, outs[i].len);
      fputs(" .\n", mem);
      CHECK(fclose(mem) == 0);
      ack(fd, buf, size);
      free(buf);
    }
    round++;
  }
}

int main(int argc, char **argv) {
  if (argc == 7 && strcmp(argv[1], "encrypt") == 0) {
    return encrypt_file(argv[2], argv[3], strtoull(argv[4], NULL, 10),
                        strtoull(argv[5], NULL, 10), argv[6]);
  }
  if (argc == 5 && strcmp(argv[1], "follow") == 0) {
    return follow(argv[2], argv[3], argv[4]);
  }
  if (argc == 4 && strcmp(argv[1], "churn") == 0) {
    return churn(argv[2], argv[3]);
  }
  fprintf(stderr, "usage: e2e_worker encrypt|follow|churn ... (see the source)\n");
  return 2;
}
