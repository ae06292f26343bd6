/*
 * Many threads sharing one engine handle: single calls, batches large enough to run on the
 * engine's worker pool, data keys, control-plane calls and on-demand rotation, all at once; MAC
 * batches and signatures through each thread's own caller handle (kp_engine_for_principal) to the
 * same engine; each thread also checks that its last error is its own. KP_TEST_ITERATIONS sets the rounds per
 * thread (default 40; the valgrind run uses fewer).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kp_test.h"

#define THREADS 8
#define BATCH 96

static kp_engine *engine;
static char shared_key[64], hmac_key[64], signing_key[64];
static int iterations = 40;

struct worker {
  int index;
  int failed;
  char message[640];
};

#define FAIL(w, ...)                                              \
  do {                                                            \
    snprintf((w)->message, sizeof (w)->message, __VA_ARGS__);     \
    (w)->failed = 1;                                              \
    return NULL;                                                  \
  } while (0)

static void *work(void *arg) {
  struct worker *w = (struct worker *)arg;
  kp_context *ctx = NULL;
  kp_record *md = NULL;
  kp_secret_buffer *dk = NULL;
  kp_encrypt_item enc[BATCH];
  kp_decrypt_item dec[BATCH];
  kp_out out[BATCH];
  uint8_t plain[BATCH][48], blobs[BATCH][48 + 82], opened[BATCH][48];
  uint8_t blob[256], back[64], dk_blob[128];
  char own_key[64], tag_value[32], err[512];
  size_t len = 0, blob_len = 0, dk_blob_len = 0, err_len = 0;
  kp_data_key_item dki;
  kp_tag tag;
  kp_mac_item macs[BATCH];
  kp_verify_mac_item checks[BATCH];
  uint32_t statuses[BATCH];
  uint8_t mac_out[BATCH][32], signature[KP_MAX_SIGNATURE_LEN];
  size_t signature_len = 0;
  kp_sign_item sign;
  kp_verify_item verify;
  kp_engine *as_user = NULL;
  char principal[64];
  int round, i;

  snprintf(principal, sizeof principal, "arn:aws:iam::111122223333:user/worker-%d", w->index);
  if (kp_engine_for_principal(engine, principal, &as_user) != KP_STATUS_OK) FAIL(w, "for principal");
  if (kp_context_new(&ctx) != KP_STATUS_OK) FAIL(w, "context");
  snprintf(tag_value, sizeof tag_value, "thread-%d", w->index);
  if (kp_context_add(ctx, "thread", tag_value) != KP_STATUS_OK) FAIL(w, "context add");
  if (kp_create_key(engine, NULL, &md) != KP_STATUS_OK) FAIL(w, "create key");
  strcpy(own_key, kp_record_string(md, KP_FIELD_KEY_ID));
  kp_record_free(md);

  for (round = 0; round < iterations; round++) {
    const char *key = (round % 2) ? shared_key : own_key;
    /* A batch through the worker pool. */
    memset(enc, 0, sizeof enc);
    memset(dec, 0, sizeof dec);
    for (i = 0; i < BATCH; i++) {
      memset(plain[i], w->index * 31 + round + i, sizeof plain[i]);
      enc[i].key_id = key;
      enc[i].plaintext = plain[i];
      enc[i].plaintext_len = sizeof plain[i];
      enc[i].context = ctx;
      out[i].data = blobs[i];
      out[i].capacity = sizeof blobs[i];
    }
    if (kp_encrypt_batch(engine, enc, BATCH, out) != KP_STATUS_OK) FAIL(w, "encrypt batch");
    for (i = 0; i < BATCH; i++) {
      dec[i].ciphertext = blobs[i];
      dec[i].ciphertext_len = out[i].len;
      dec[i].context = ctx;
      out[i].data = opened[i];
      out[i].capacity = sizeof opened[i];
    }
    if (kp_decrypt_batch(engine, dec, BATCH, out) != KP_STATUS_OK) FAIL(w, "decrypt batch");
    for (i = 0; i < BATCH; i++) {
      if (out[i].len != sizeof plain[i] || memcmp(opened[i], plain[i], out[i].len) != 0)
        FAIL(w, "batch round trip, item %d", i);
    }
    /* Single calls. */
    if (kp_encrypt(engine, &enc[0], blob, sizeof blob, &blob_len, NULL) != KP_STATUS_OK) FAIL(w, "encrypt");
    dec[0].ciphertext = blob;
    dec[0].ciphertext_len = blob_len;
    if (kp_decrypt(engine, &dec[0], back, sizeof back, &len, NULL) != KP_STATUS_OK) FAIL(w, "decrypt");
    if (len != sizeof plain[0] || memcmp(back, plain[0], len) != 0) FAIL(w, "single round trip");
    memset(&dki, 0, sizeof dki);
    dki.key_id = key;
    dki.key_spec = KP_DATA_KEY_SPEC_AES_256;
    if (kp_generate_data_key(engine, &dki, &dk, dk_blob, sizeof dk_blob, &dk_blob_len, NULL) != KP_STATUS_OK)
      FAIL(w, "data key");
    dec[0].ciphertext = dk_blob;
    dec[0].ciphertext_len = dk_blob_len;
    dec[0].context = NULL;
    if (kp_decrypt(engine, &dec[0], back, sizeof back, &len, NULL) != KP_STATUS_OK) FAIL(w, "decrypt data key");
    if (len != 32 || memcmp(back, kp_secret_buffer_data(dk), 32) != 0) FAIL(w, "data key round trip");
    kp_secret_buffer_free(dk);
    dk = NULL;
    /* MACs in batches and a signature, through this thread's caller handle. */
    memset(macs, 0, sizeof macs);
    memset(checks, 0, sizeof checks);
    for (i = 0; i < BATCH; i++) {
      macs[i].key_id = hmac_key;
      macs[i].message = plain[i];
      macs[i].message_len = sizeof plain[i];
      macs[i].mac_algorithm = KP_MAC_ALGORITHM_HMAC_SHA_256;
      out[i].data = mac_out[i];
      out[i].capacity = sizeof mac_out[i];
    }
    if (kp_generate_mac_batch(as_user, macs, BATCH, out) != KP_STATUS_OK) FAIL(w, "mac batch");
    for (i = 0; i < BATCH; i++) {
      checks[i].key_id = hmac_key;
      checks[i].message = plain[i];
      checks[i].message_len = sizeof plain[i];
      checks[i].mac = mac_out[i];
      checks[i].mac_len = out[i].len;
      checks[i].mac_algorithm = KP_MAC_ALGORITHM_HMAC_SHA_256;
    }
    mac_out[round % BATCH][0] ^= 1;
    if (kp_verify_mac_batch(engine, checks, BATCH, statuses) != KP_STATUS_BATCH_ITEMS_FAILED) FAIL(w, "verify mac batch");
    for (i = 0; i < BATCH; i++) {
      uint32_t expected = i == round % BATCH ? KP_STATUS_INVALID_MAC : KP_STATUS_OK;
      if (statuses[i] != expected) FAIL(w, "verify mac item %d: %s", i, kp_status_name(statuses[i]));
    }
    memset(&sign, 0, sizeof sign);
    sign.key_id = signing_key;
    sign.message = plain[0];
    sign.message_len = sizeof plain[0];
    sign.signing_algorithm = KP_SIGNING_ALGORITHM_ECDSA_SHA_256;
    if (kp_sign(as_user, &sign, signature, sizeof signature, &signature_len, NULL) != KP_STATUS_OK) FAIL(w, "sign");
    memset(&verify, 0, sizeof verify);
    verify.key_id = signing_key;
    verify.message = plain[0];
    verify.message_len = sizeof plain[0];
    verify.signature = signature;
    verify.signature_len = signature_len;
    verify.signing_algorithm = KP_SIGNING_ALGORITHM_ECDSA_SHA_256;
    if (kp_verify(engine, &verify, NULL) != KP_STATUS_OK) FAIL(w, "verify");
    /* Control plane, and a rotation of the shared key now and then. */
    tag.key = "round";
    snprintf(tag_value, sizeof tag_value, "%d", round);
    tag.value = tag_value;
    if (kp_tag_resource(engine, own_key, &tag, 1) != KP_STATUS_OK) FAIL(w, "tag");
    if (kp_describe_key(engine, shared_key, &md) != KP_STATUS_OK) FAIL(w, "describe");
    kp_record_free(md);
    if (w->index == 0 && round % 8 == 0 && round < 8 * 20) {
      if (kp_rotate_key_on_demand(engine, shared_key, NULL) != KP_STATUS_OK) FAIL(w, "rotate");
    }
    /* This thread's error stays this thread's. */
    snprintf(tag_value, sizeof tag_value, "alias/missing-%d", w->index);
    enc[0].key_id = tag_value;
    if (kp_encrypt(engine, &enc[0], blob, sizeof blob, &blob_len, NULL) != KP_STATUS_NOT_FOUND) FAIL(w, "not found");
    if (kp_last_error_message(err, sizeof err, &err_len) != KP_STATUS_OK) FAIL(w, "last error");
    if (strstr(err, tag_value) == NULL) FAIL(w, "last error belongs to another thread: %s", err);
  }
  kp_context_free(ctx);
  kp_engine_free(as_user);
  return NULL;
}

int main(void) {
  pthread_t threads[THREADS];
  struct worker workers[THREADS];
  kp_config *config = NULL;
  kp_record *md = NULL;
  kp_create_key_options options;
  const char *env = getenv("KP_TEST_ITERATIONS");
  int i, failed = 0;
  if (env) iterations = atoi(env);
  OK(kp_config_new(&config));
  OK(kp_config_set_worker_threads(config, 2));
  OK(kp_engine_new(config, &engine));
  kp_config_free(config);
  OK(kp_create_key(engine, NULL, &md));
  strcpy(shared_key, kp_record_string(md, KP_FIELD_KEY_ID));
  kp_record_free(md);
  memset(&options, 0, sizeof options);
  options.key_spec = "HMAC_256";
  options.key_usage = "GENERATE_VERIFY_MAC";
  OK(kp_create_key(engine, &options, &md));
  strcpy(hmac_key, kp_record_string(md, KP_FIELD_KEY_ID));
  kp_record_free(md);
  options.key_spec = "ECC_NIST_P256";
  options.key_usage = "SIGN_VERIFY";
  OK(kp_create_key(engine, &options, &md));
  strcpy(signing_key, kp_record_string(md, KP_FIELD_KEY_ID));
  kp_record_free(md);
  for (i = 0; i < THREADS; i++) {
    workers[i].index = i;
    workers[i].failed = 0;
    CHECK(pthread_create(&threads[i], NULL, work, &workers[i]) == 0);
  }
  for (i = 0; i < THREADS; i++) {
    CHECK(pthread_join(threads[i], NULL) == 0);
    if (workers[i].failed) {
      fprintf(stderr, "thread %d: %s\n", i, workers[i].message);
      failed++;
    }
  }
  kp_engine_free(engine);
  printf("test_threads: %d threads x %d rounds on one engine\n", THREADS, iterations);
  printf("%d passed, %d failed\n", THREADS - failed, failed);
  return failed ? 1 : 0;
}
