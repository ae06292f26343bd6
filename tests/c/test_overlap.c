/* Overlapping buffers are refused (KP_STATUS_OVERLAPPING_BUFFERS) before anything is read or
   written: encrypting in place (plaintext == ciphertext, a common C habit), single and batch, and
   decrypting a blob onto itself. Separate buffers work. */
#include <stdint.h>

#include "kp_test.h"

int main(void) {
  kp_engine *engine = NULL;
  OK(kp_engine_new(NULL, &engine));
  kp_record *md = NULL;
  char key_id[128];
  OK(kp_create_key(engine, NULL, &md));
  strcpy(key_id, kp_record_string(md, (uint32_t)KP_FIELD_KEY_ID));
  kp_record_free(md);

  static const char message[] = "card 4111 1111 1111 1111";
  const size_t len = sizeof message - 1;
  const size_t blob = kp_ciphertext_len(len);
  uint8_t *buffer = calloc(1, blob);
  uint8_t *separate = calloc(1, blob);
  CHECK(buffer && separate);
  memcpy(buffer, message, len);

  /* In place: the plaintext is the start of the ciphertext buffer. */
  kp_encrypt_item item = {key_id, buffer, len, NULL, 0};
  size_t written = 0;
  EXPECT(KP_STATUS_OVERLAPPING_BUFFERS, kp_encrypt(engine, &item, buffer, blob, &written, NULL));
  CHECK(strstr(kp_test_last_error(), "plaintext") && strstr(kp_test_last_error(), "ciphertext"));
  CHECK(memcmp(buffer, message, len) == 0); /* nothing written */
  CHECK(strcmp(kp_status_name(KP_STATUS_OVERLAPPING_BUFFERS), "KP_STATUS_OVERLAPPING_BUFFERS") == 0);

  /* A batch: item 1 seals over its own plaintext; no item runs. */
  kp_encrypt_item items[2] = {{key_id, (const uint8_t *)message, len, NULL, 0}, item};
  kp_out outputs[2] = {{separate, blob, 0, 12345}, {buffer, blob, 0, 12345}};
  EXPECT(KP_STATUS_OVERLAPPING_BUFFERS, kp_encrypt_batch(engine, items, 2, outputs));
  CHECK(strstr(kp_test_last_error(), "outputs[1].data") != NULL);
  CHECK(outputs[0].status == 12345 && outputs[1].status == 12345);

  /* Separate buffers work, and decrypting onto the blob itself is refused. */
  OK(kp_encrypt_batch(engine, items, 1, outputs));
  CHECK(outputs[0].status == KP_STATUS_OK && outputs[0].len == blob);
  kp_decrypt_item opening = {separate, blob, NULL, NULL, 0};
  EXPECT(KP_STATUS_OVERLAPPING_BUFFERS, kp_decrypt(engine, &opening, separate, len, &written, NULL));
  kp_out in_place = {separate + 8, len, 0, 0};
  EXPECT(KP_STATUS_OVERLAPPING_BUFFERS, kp_decrypt_batch(engine, &opening, 1, &in_place));
  OK(kp_decrypt(engine, &opening, buffer, blob, &written, NULL));
  CHECK(written == len && memcmp(buffer, message, len) == 0);

  free(buffer);
  free(separate);
  kp_engine_free(engine);
  printf("test_overlap: %d checks passed\n", kp_test_checks);
  return 0;
}
