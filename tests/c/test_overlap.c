/* Overlapping buffers are refused (KP_STATUS_OVERLAPPING_BUFFERS) before anything is read or
   written: encrypting in place (plaintext == ciphertext, a common C habit), single and batch, and
   decrypting a blob onto itself. Separate buffers work. Then one call of each other family that
   writes a buffer (Sign, Verify, MACs, GetPublicKey, DeriveSharedSecret, data key pairs, data
   keys, GenerateRandom, the sizes calls, the audit calls, the last error), in place and partly
   overlapping. */
#include <stdint.h>

#include "kp_test.h"

/* Expects `call` to be refused as overlapping with a message naming `a` and `b`. */
#define REFUSED(call, a, b)                                                          \
  do {                                                                               \
    EXPECT(KP_STATUS_OVERLAPPING_BUFFERS, call);                                     \
    CHECK(strstr(kp_test_last_error(), a) && strstr(kp_test_last_error(), b));       \
  } while (0)

/* Every family besides Encrypt and Decrypt, over one arena whose bytes must not change. */
static void other_families(kp_engine *engine, const char *symmetric) {
  char signer[128], hmac[128], agree[128];
  kp_test_new_key(engine, "ECC_NIST_P256", "SIGN_VERIFY", signer);
  kp_test_new_key(engine, "HMAC_256", "GENERATE_VERIFY_MAC", hmac);
  kp_test_new_key(engine, "ECC_NIST_P256", "KEY_AGREEMENT", agree);
  static uint64_t words[128];
  uint8_t *arena = (uint8_t *)words;
  for (size_t i = 0; i < sizeof words; i++) arena[i] = (uint8_t)i;
  static uint64_t before[128];
  memcpy(before, words, sizeof words);
  size_t len = 0;

  /* Sign: the signature over its message, in place and from the message's last byte. */
  kp_sign_item sign = {signer, arena, 32, 0, (uint32_t)KP_SIGNING_ALGORITHM_ECDSA_SHA_256};
  REFUSED(kp_sign(engine, &sign, arena, 256, &len, NULL), "request->message", "signature");
  REFUSED(kp_sign(engine, &sign, arena + 31, 256, &len, NULL), "request->message", "signature");
  kp_sign_item signs[2] = {sign, sign};
  signs[1].message = arena + 300;
  kp_out outs[2] = {{arena + 600, 80, 0, 7}, {arena + 290, 80, 0, 7}};
  REFUSED(kp_sign_batch(engine, signs, 2, outs), "outputs[1].data", "items[1].message");
  CHECK(outs[0].status == 7 && outs[1].status == 7);

  /* Verify: `info` over the signature; statuses over the message. */
  kp_verify_item verify = {signer, arena, 32, 0, arena + 64, 72,
                           (uint32_t)KP_SIGNING_ALGORITHM_ECDSA_SHA_256};
  REFUSED(kp_verify(engine, &verify, (kp_record **)(arena + 72)), "info", "request->signature");
  REFUSED(kp_verify_batch(engine, &verify, 1, (uint32_t *)(arena + 8)), "statuses",
          "items[0].message");

  /* GenerateMac and VerifyMac. */
  kp_mac_item mac = {hmac, arena, 32, (uint32_t)KP_MAC_ALGORITHM_HMAC_SHA_256};
  REFUSED(kp_generate_mac(engine, &mac, arena, 32, &len, NULL), "request->message", "mac");
  REFUSED(kp_generate_mac(engine, &mac, arena + 16, 32, &len, NULL), "request->message", "mac");
  kp_mac_item macs[2] = {mac, mac};
  macs[1].message = arena + 660;
  kp_out mac_outs[2] = {{arena + 600, 32, 0, 7}, {arena + 640, 32, 0, 7}};
  REFUSED(kp_generate_mac_batch(engine, macs, 2, mac_outs), "outputs[1].data", "items[1].message");
  kp_verify_mac_item verify_mac = {hmac, arena, 32, arena + 64, 32,
                                   (uint32_t)KP_MAC_ALGORITHM_HMAC_SHA_256};
  REFUSED(kp_verify_mac(engine, &verify_mac, (kp_record **)(arena + 64)), "info", "request->mac");
  REFUSED(kp_verify_mac_batch(engine, &verify_mac, 1, (uint32_t *)(arena + 88)), "statuses",
          "items[0].mac");

  /* The sizes calls: sizes written over the items; two size arrays sharing an entry. */
  REFUSED(kp_generate_mac_batch_sizes(macs, 2, (size_t *)macs, NULL), "sizes", "items");
  kp_data_key_item data_key = {symmetric, NULL, (uint32_t)KP_DATA_KEY_SPEC_AES_256, 0};
  kp_data_key_item data_keys[2] = {data_key, data_key};
  size_t lens[3];
  REFUSED(kp_generate_data_key_batch_sizes(data_keys, 2, lens, lens + 1, NULL, NULL), "key_lens",
          "ciphertext_lens");

  /* GetPublicKey: the kp_out's buffer is the kp_out itself. */
  kp_out public_key = {NULL, 64, 0, 7};
  public_key.data = (uint8_t *)&public_key;
  REFUSED(kp_get_public_key(engine, signer, &public_key, NULL), "public_key->data", "public_key");

  /* DeriveSharedSecret: the secret's handle written into the peer's public key. */
  REFUSED(kp_derive_shared_secret(engine, agree, (uint32_t)KP_KEY_AGREEMENT_ALGORITHM_ECDH, arena,
                                  91, (kp_secret_buffer **)(arena + 40), NULL),
          "shared_secret", "public_key");

  /* Data key pairs: the two buffers share a byte; one kp_out given for both. */
  kp_data_key_pair_item pair = {symmetric, NULL, (uint32_t)KP_DATA_KEY_PAIR_SPEC_ECC_NIST_P256};
  kp_out blob = {arena, 400, 0, 7}, public_out = {arena + 399, 200, 0, 7};
  kp_secret_buffer *private_key = NULL;
  REFUSED(kp_generate_data_key_pair(engine, &pair, &private_key, &blob, &public_out, NULL),
          "private_key_ciphertext->data", "public_key->data");
  blob.data = arena + 600; /* apart; `info` written into the public key's buffer */
  blob.capacity = 100;
  REFUSED(kp_generate_data_key_pair_without_plaintext(engine, &pair, &blob, &public_out,
                                                      (kp_record **)(arena + 400)),
          "info", "public_key->data");
  CHECK(private_key == NULL);

  /* GenerateDataKey: its length, or the secret's handle, written into the ciphertext. */
  const size_t data_blob = kp_ciphertext_len(32);
  kp_secret_buffer *secret = NULL;
  REFUSED(kp_generate_data_key(engine, &data_key, &secret, arena, data_blob, (size_t *)(arena + 8),
                               NULL),
          "ciphertext_len", "ciphertext");
  REFUSED(kp_generate_data_key(engine, &data_key, (kp_secret_buffer **)arena, arena, data_blob,
                               &len, NULL),
          "plaintext", "ciphertext");
  REFUSED(kp_generate_data_key_without_plaintext(engine, &data_key, arena, data_blob, &len,
                                                 (kp_record **)(arena + 16)),
          "info", "ciphertext");
  CHECK(secret == NULL);
  /* The batch: a ciphertext written into the secret buffer that receives the keys. */
  kp_secret_buffer *keys = NULL;
  OK(kp_secret_buffer_new(engine, 64, &keys));
  kp_out ciphertexts[2] = {{arena + 600, data_blob, 0, 7},
                           {kp_secret_buffer_data(keys) + 32, data_blob, 0, 7}};
  REFUSED(kp_generate_data_key_batch(engine, data_keys, 2, keys, ciphertexts),
          "ciphertexts[1].data", "plaintexts");
  CHECK(ciphertexts[0].status == 7 && ciphertexts[1].status == 7);
  kp_secret_buffer_free(keys);

  /* GenerateRandom's batch: two outputs sharing a byte; an output over the output array. */
  kp_out randoms[2] = {{arena, 100, 0, 7}, {arena + 99, 100, 0, 7}};
  REFUSED(kp_generate_random_batch(engine, randoms, 2), "outputs[1].data", "outputs[0].data");
  randoms[1].data = (uint8_t *)randoms;
  randoms[1].capacity = 16;
  REFUSED(kp_generate_random_batch(engine, randoms, 2), "outputs[1].data", "outputs");

  /* The audit calls, and the last error's length written into its message buffer. */
  REFUSED(kp_engine_audit_public_key(engine, arena, 100, (size_t *)(arena + 16)), "out_len", "out");
  REFUSED(kp_audit_verify("/nonexistent/audit.log", arena, 91, (kp_record **)(arena + 8)), "out",
          "public_key");
  EXPECT(KP_STATUS_OVERLAPPING_BUFFERS, kp_last_error_message((char *)arena, 64,
                                                              (size_t *)(arena + 8)));

  CHECK(memcmp(before, words, sizeof words) == 0); /* nothing written */
}

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

  other_families(engine, key_id);

  free(buffer);
  free(separate);
  kp_engine_free(engine);
  printf("test_overlap: %d checks passed\n", kp_test_checks);
  return 0;
}
