/*
 * Envelope encryption (the AWS Encryption SDK's message format) from C: keyrings (keyplane key,
 * raw AES, raw RSA from an `openssl genpkey` key), one-shot and streaming encryption and
 * decryption in every suite, streaming in odd chunk sizes into tiny output buffers, the release
 * rule (no plaintext before its frame, or a signed message, authenticated), tampering,
 * truncation and trailing bytes, NULL, overlapping and short buffers, and interop with the
 * CLI (`keyplane encrypt-file` / `decrypt-file`) when KP_CLI names its binary (scripts/test-c
 * sets it; without it that part is reported as skipped).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kp_scratch.h"

static const uint16_t suites[] = {0x0578, 0x0478, 0x0378, 0x0178, 0x0078};
#define NSUITES (sizeof suites / sizeof suites[0])

static int is_v1(uint16_t suite) { return suite < 0x0400; }
static int is_signed(uint16_t suite) { return suite == 0x0578 || suite == 0x0378; }
static const char *policy_for(uint16_t suite) {
  return is_v1(suite) ? "REQUIRE_ENCRYPT_ALLOW_DECRYPT" : NULL;
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed) {
  size_t i;
  for (i = 0; i < n; i++) p[i] = (uint8_t)(i * 31u + seed * 7u + (i >> 8));
}

/* Streams `in` through `ctx` in `chunk`-byte updates with an output buffer of `cap` bytes,
 * appending the output to `out` (`*out_len`). Returns the first failing status (or OK), checking
 * the contract on every call. */
static kp_status stream(kp_envelope *ctx, const uint8_t *in, size_t n, size_t chunk, size_t cap,
                        uint8_t *out, size_t out_cap, size_t *out_len) {
  uint8_t buf[64];
  size_t off = 0, took, w, p;
  kp_status st;
  CHECK(cap >= 1 && cap <= sizeof buf);
  *out_len = 0;
  while (off < n) {
    size_t len = n - off < chunk ? n - off : chunk;
    took = w = p = 12345;
    st = kp_envelope_update(ctx, in + off, len, &took, buf, cap, &w, &p);
    if (st != KP_STATUS_OK && st != KP_STATUS_BUFFER_TOO_SMALL) {
      CHECK(w == 0 && p == 0);
      return st;
    }
    CHECK(took == 0 || took == len);
    CHECK(w <= cap);
    CHECK(st == KP_STATUS_OK ? (p == 0 && took == len) : p > 0);
    CHECK(*out_len + w <= out_cap);
    memcpy(out + *out_len, buf, w);
    *out_len += w;
    off += took;
  }
  do {
    w = p = 12345;
    st = kp_envelope_finish(ctx, buf, cap, &w, &p);
    if (st != KP_STATUS_OK && st != KP_STATUS_BUFFER_TOO_SMALL) {
      CHECK(w == 0 && p == 0);
      return st;
    }
    CHECK(w <= cap);
    CHECK(st == KP_STATUS_OK ? p == 0 : p > 0);
    CHECK(*out_len + w <= out_cap);
    memcpy(out + *out_len, buf, w);
    *out_len += w;
  } while (st == KP_STATUS_BUFFER_TOO_SMALL);
  return KP_STATUS_OK;
}

static kp_status stream_encrypt(kp_engine *engine, const kp_keyring *const *rings, size_t nrings,
                                const kp_context *context, uint32_t frame, uint16_t suite,
                                const uint8_t *pt, size_t n, size_t chunk, size_t cap,
                                uint8_t *out, size_t out_cap, size_t *out_len) {
  kp_envelope *ctx = NULL;
  kp_status st;
  OK(kp_envelope_encrypt_new(engine, rings, nrings, context, frame, suite, &ctx));
  st = stream(ctx, pt, n, chunk, cap, out, out_cap, out_len);
  kp_envelope_free(ctx);
  return st;
}

static kp_status stream_decrypt(kp_engine *engine, const kp_keyring *const *rings, size_t nrings,
                                const char *policy, const uint8_t *msg, size_t n, size_t chunk,
                                size_t cap, uint8_t *out, size_t out_cap, size_t *out_len) {
  kp_envelope *ctx = NULL;
  kp_status st;
  OK(kp_envelope_decrypt_new(engine, rings, nrings, policy, &ctx));
  st = stream(ctx, msg, n, chunk, cap, out, out_cap, out_len);
  kp_envelope_free(ctx);
  return st;
}

static kp_keyring *kms, *aes, *aes_other, *rsa, *rsa_public;
static kp_context *context;

/* The context a message carries: ours, plus the public key of a signed suite. (Its values are
 * checked by the CLI's --context in the interop test.) */
static void check_context(const kp_context *found, uint16_t suite) {
  CHECK(found != NULL);
  CHECK(kp_context_len(found) == (is_signed(suite) ? 2u : 1u));
}

static void make_keyrings(kp_engine *engine) {
  kp_record *md = NULL;
  uint8_t key[32], pem[8192];
  size_t pem_len;
  char command[512], p[256];
  OK(kp_create_key(engine, NULL, &md));
  OK(kp_keyring_kms_new(engine, kp_record_string(md, KP_FIELD_KEY_ID), &kms));
  kp_record_free(md);
  fill_pattern(key, sizeof key, 1);
  OK(kp_keyring_raw_aes_new("c-test", "aes-1", key, sizeof key, &aes));
  kp_test_write_file("aes.key", key, sizeof key);
  fill_pattern(key, sizeof key, 2);
  OK(kp_keyring_raw_aes_new("c-test", "aes-1", key, sizeof key, &aes_other));
  kp_test_path(p, sizeof p, "rsa.pem");
  CHECK(snprintf(command, sizeof command,
                 "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null",
                 p) > 0);
  CHECK(system(command) == 0);
  pem_len = kp_test_read_file("rsa.pem", pem, sizeof pem);
  OK(kp_keyring_raw_rsa_new("c-test", "rsa-1", "RSA_OAEP_SHA256_MGF1", pem, pem_len, &rsa));
  CHECK(snprintf(command, sizeof command, "openssl pkey -in %s -pubout -out %s/rsa.pub.pem", p,
                 kp_test_scratch()) > 0);
  CHECK(system(command) == 0);
  pem_len = kp_test_read_file("rsa.pub.pem", pem, sizeof pem);
  OK(kp_keyring_raw_rsa_new("c-test", "rsa-1", "RSA_OAEP_SHA256_MGF1", pem, pem_len,
                            &rsa_public));
  OK(kp_context_new(&context));
  OK(kp_context_add(context, "purpose", "test"));
}

#define MSG_CAP 20000
/* A one-keyring array argument. */
#define ONE(ring) ((const kp_keyring *const[]){(ring)})

/* Every suite: one-shot and streaming, each keyring alone decrypting, across both APIs. */
static void test_round_trips(kp_engine *engine) {
  static uint8_t pt[2000], msg[MSG_CAP], msg2[MSG_CAP], back[MSG_CAP];
  static const size_t sizes[] = {0, 1, 99, 300, 1234};
  const kp_keyring *all[3];
  size_t s, z, k, msg_len, msg2_len, back_len;
  all[0] = kms;
  all[1] = aes;
  all[2] = rsa_public; /* wraps only; `rsa` (the private key) unwraps */
  fill_pattern(pt, sizeof pt, 3);
  for (s = 0; s < NSUITES; s++) {
    uint16_t suite = suites[s];
    const char *policy = policy_for(suite);
    for (z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
      size_t n = sizes[z];
      kp_context *found = NULL;
      const kp_keyring *one[1];
      OK(kp_envelope_encrypt(engine, all, 3, context, 100, suite, pt, n, msg, MSG_CAP, &msg_len));
      /* The header says what it is: version, and the suite's id. */
      CHECK(msg[0] == (is_v1(suite) ? 1 : 2));
      CHECK(msg[is_v1(suite) ? 2 : 1] == (uint8_t)(suite >> 8));
      CHECK(msg[is_v1(suite) ? 3 : 2] == (uint8_t)suite);
      one[0] = kms;
      OK(kp_envelope_decrypt(engine, one, 1, policy, msg, msg_len, back, MSG_CAP, &back_len,
                             &found));
      CHECK(back_len == n && memcmp(back, pt, n) == 0);
      check_context(found, suite);
      kp_context_free(found);
      one[0] = rsa;
      OK(kp_envelope_decrypt(NULL, one, 1, policy, msg, msg_len, back, MSG_CAP, &back_len, NULL));
      CHECK(back_len == n && memcmp(back, pt, n) == 0);
      /* One-shot message, streamed back in odd chunks into tiny buffers, with each keyring. */
      for (k = 0; k < 2; k++) {
        one[0] = k == 0 ? aes : kms;
        OK(stream_decrypt(engine, one, 1, policy, msg, msg_len, 7 + 6 * k, 3 + 2 * k, back,
                          MSG_CAP, &back_len));
        CHECK(back_len == n && memcmp(back, pt, n) == 0);
      }
      /* Streamed message (chunks of 13, 5-byte output buffer), one-shot and streamed back. */
      OK(stream_encrypt(engine, all, 2, context, 100, suite, pt, n, 13, 5, msg2, MSG_CAP,
                        &msg2_len));
      CHECK(msg2[0] == (is_v1(suite) ? 1 : 2));
      one[0] = aes;
      OK(kp_envelope_decrypt(engine, one, 1, policy, msg2, msg2_len, back, MSG_CAP, &back_len,
                             NULL));
      CHECK(back_len == n && memcmp(back, pt, n) == 0);
      one[0] = kms;
      OK(stream_decrypt(engine, one, 1, policy, msg2, msg2_len, 64, 64, back, MSG_CAP,
                        &back_len));
      CHECK(back_len == n && memcmp(back, pt, n) == 0);
      /* A chunk of everything at once, a 1-byte output buffer. */
      OK(stream_decrypt(engine, one, 1, policy, msg2, msg2_len, msg2_len, 1, back, MSG_CAP,
                        &back_len));
      CHECK(back_len == n && memcmp(back, pt, n) == 0);
    }
    /* Every frame length from 1 up through a few, with odd chunkings. */
    {
      uint32_t fl;
      const kp_keyring *one[1];
      one[0] = aes;
      for (fl = 1; fl <= 5; fl++) {
        OK(stream_encrypt(engine, one, 1, NULL, fl, suite, pt, 17, 3, 7, msg, MSG_CAP, &msg_len));
        OK(stream_decrypt(engine, one, 1, policy, msg, msg_len, 5, 2, back, MSG_CAP, &back_len));
        CHECK(back_len == 17 && memcmp(back, pt, 17) == 0);
      }
    }
  }
  printf("round trips: %zu suites\n", (size_t)NSUITES);
}

/* Position of the first body byte of a 0x0478 message with one raw AES data key and an empty
 * context, for the tamper tests: found as where the first frame's sequence number 1 and IV
 * (eleven zero bytes and 1) begin. */
static size_t body_start(const uint8_t *msg, size_t len) {
  size_t i;
  static const uint8_t first[16] = {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  for (i = 0; i + 16 <= len; i++) {
    if (memcmp(msg + i, first, 16) == 0) return i;
  }
  CHECK(0);
  return 0;
}

static void test_release_rule(kp_engine *engine) {
  static uint8_t pt[400], msg[MSG_CAP], back[MSG_CAP];
  const kp_keyring *one[1];
  kp_envelope *ctx = NULL;
  size_t msg_len, took, w, p, body, i, got;
  uint8_t buf[512];
  one[0] = aes;
  fill_pattern(pt, sizeof pt, 4);
  OK(kp_envelope_encrypt(engine, one, 1, NULL, 100, 0x0478, pt, sizeof pt, msg, MSG_CAP,
                         &msg_len));
  body = body_start(msg, msg_len);
  /* Unsigned: the first frame (4 + 12 + 100 + 16 bytes) is released only once all of it is in. */
  OK(kp_envelope_decrypt_new(engine, one, 1, NULL, &ctx));
  OK(kp_envelope_update(ctx, msg, body + 131, &took, buf, sizeof buf, &w, &p));
  CHECK(took == body + 131 && w == 0 && p == 0);
  OK(kp_envelope_update(ctx, msg + body + 131, 1, &took, buf, sizeof buf, &w, &p));
  CHECK(took == 1 && w == 100 && p == 0 && memcmp(buf, pt, 100) == 0);
  /* Its context is known once the header is in. */
  {
    kp_context *found = NULL;
    OK(kp_envelope_message_context(ctx, &found));
    CHECK(kp_context_len(found) == 0);
    kp_context_free(found);
  }
  /* The rest byte by byte: never more than the frames that are whole. */
  got = 100;
  for (i = body + 132; i < msg_len; i++) {
    EXPECT(KP_STATUS_OK, kp_envelope_update(ctx, msg + i, 1, &took, buf, sizeof buf, &w, &p));
    CHECK(took == 1);
    CHECK(memcmp(buf, pt + got, w) == 0);
    got += w;
    CHECK(got == 100 * ((i + 1 - body) / 132) || i + 1 == msg_len);
  }
  OK(kp_envelope_finish(ctx, buf, sizeof buf, &w, &p));
  CHECK(w == 0 && p == 0 && got == sizeof pt);
  /* Finished: more input is refused, finish again is harmless. */
  EXPECT(KP_STATUS_VALIDATION, kp_envelope_update(ctx, msg, 1, &took, buf, sizeof buf, &w, &p));
  OK(kp_envelope_finish(ctx, buf, sizeof buf, &w, &p));
  CHECK(w == 0 && p == 0);
  kp_envelope_free(ctx);

  /* Signed: nothing at all until the last byte of the signature is in and verified. */
  OK(kp_envelope_encrypt(engine, one, 1, NULL, 100, 0x0578, pt, sizeof pt, msg, MSG_CAP,
                         &msg_len));
  OK(kp_envelope_decrypt_new(engine, one, 1, NULL, &ctx));
  for (i = 0; i + 1 < msg_len; i += 50) {
    size_t len = msg_len - 1 - i < 50 ? msg_len - 1 - i : 50;
    OK(kp_envelope_update(ctx, msg + i, len, &took, buf, sizeof buf, &w, &p));
    CHECK(took == len && w == 0 && p == 0);
  }
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL,
         kp_envelope_update(ctx, msg + msg_len - 1, 1, &took, buf, 10, &w, &p));
  CHECK(took == 1 && w == 10 && p == sizeof pt - 10 && memcmp(buf, pt, 10) == 0);
  OK(kp_envelope_finish(ctx, back, p, &w, &p));
  CHECK(w == sizeof pt - 10 && p == 0 && memcmp(back, pt + 10, w) == 0);
  kp_envelope_free(ctx);
  /* A signed message cut short (the signature missing): finish fails, nothing came out. */
  OK(kp_envelope_decrypt_new(engine, one, 1, NULL, &ctx));
  OK(kp_envelope_update(ctx, msg, msg_len - 30, &took, buf, sizeof buf, &w, &p));
  CHECK(w == 0 && p == 0);
  EXPECT(KP_STATUS_INVALID_CIPHERTEXT, kp_envelope_finish(ctx, buf, sizeof buf, &w, &p));
  CHECK(w == 0 && p == 0);
  kp_envelope_free(ctx);

  /* A bad signature: finish fails, and no plaintext ever came out. */
  msg[msg_len - 1] ^= 1;
  OK(kp_envelope_decrypt_new(engine, one, 1, NULL, &ctx));
  OK(kp_envelope_update(ctx, msg, msg_len - 1, &took, buf, sizeof buf, &w, &p));
  CHECK(w == 0);
  memset(buf, 0xAA, sizeof buf);
  EXPECT(KP_STATUS_INVALID_SIGNATURE,
         kp_envelope_update(ctx, msg + msg_len - 1, 1, &took, buf, sizeof buf, &w, &p));
  CHECK(w == 0 && p == 0);
  for (i = 0; i < sizeof buf; i++) CHECK(buf[i] == 0xAA || buf[i] == 0);
  /* The failure sticks. */
  EXPECT(KP_STATUS_INVALID_SIGNATURE, kp_envelope_finish(ctx, buf, sizeof buf, &w, &p));
  kp_envelope_free(ctx);
  EXPECT(KP_STATUS_INVALID_SIGNATURE, kp_envelope_decrypt(engine, one, 1, NULL, msg, msg_len,
                                                          back, MSG_CAP, &got, NULL));
  CHECK(got == 0);
  printf("release rule\n");
}

static void test_tamper_truncate(kp_engine *engine) {
  static uint8_t pt[250], msg[MSG_CAP], back[MSG_CAP];
  const kp_keyring *one[1];
  size_t msg_len, back_len, body, i, s;
  one[0] = aes;
  fill_pattern(pt, sizeof pt, 5);
  for (s = 0; s < 2; s++) {
    uint16_t suite = s == 0 ? 0x0478 : 0x0578;
    OK(kp_envelope_encrypt(engine, one, 1, NULL, 100, suite, pt, sizeof pt, msg, MSG_CAP,
                           &msg_len));
    body = s == 0 ? body_start(msg, msg_len) : 0;
    /* Every byte (0x0478) or every third (0x0578) flipped: refused, one-shot and streamed. */
    for (i = 0; i < msg_len; i += s == 0 ? 1 : 3) {
      kp_status st;
      msg[i] ^= 0x40;
      st = kp_envelope_decrypt(engine, one, 1, NULL, msg, msg_len, back, MSG_CAP, &back_len,
                               NULL);
      CHECK(st != KP_STATUS_OK && back_len == 0);
      if (s == 0 && i >= body) CHECK(st == KP_STATUS_INVALID_CIPHERTEXT);
      if (s == 0 && i % 5 == 0) {
        st = stream_decrypt(engine, one, 1, NULL, msg, msg_len, 9, 7, back, MSG_CAP, &back_len);
        CHECK(st != KP_STATUS_OK);
        if (i >= body) {
          CHECK(st == KP_STATUS_INVALID_CIPHERTEXT);
          /* Only whole frames before the tampered one came out, and they are right. */
          CHECK(back_len <= (i - body) / 132 * 100 && memcmp(back, pt, back_len) == 0);
        }
      }
      msg[i] ^= 0x40;
    }
    /* Every truncation: INVALID_CIPHERTEXT. */
    for (i = 0; i < msg_len; i += s == 0 ? 1 : 7) {
      EXPECT(KP_STATUS_INVALID_CIPHERTEXT,
             kp_envelope_decrypt(engine, one, 1, NULL, msg, i, back, MSG_CAP, &back_len, NULL));
      if (i % 11 == 0) {
        EXPECT(KP_STATUS_INVALID_CIPHERTEXT,
               stream_decrypt(engine, one, 1, NULL, msg, i, 8, 8, back, MSG_CAP, &back_len));
      }
    }
    /* A trailing byte, in the same chunk as the end or after it. */
    msg[msg_len] = 0;
    EXPECT(KP_STATUS_INVALID_CIPHERTEXT, kp_envelope_decrypt(engine, one, 1, NULL, msg,
                                                             msg_len + 1, back, MSG_CAP,
                                                             &back_len, NULL));
    EXPECT(KP_STATUS_INVALID_CIPHERTEXT, stream_decrypt(engine, one, 1, NULL, msg, msg_len + 1,
                                                        msg_len + 1, 64, back, MSG_CAP,
                                                        &back_len));
    EXPECT(KP_STATUS_INVALID_CIPHERTEXT, stream_decrypt(engine, one, 1, NULL, msg, msg_len + 1,
                                                        msg_len, 64, back, MSG_CAP, &back_len));
  }
  /* The wrong key, and a non-committing message under the default policy. */
  one[0] = aes_other;
  OK(kp_envelope_encrypt(engine, ONE(aes), 1, NULL, 0, 0, pt, 10, msg, MSG_CAP, &msg_len));
  EXPECT(KP_STATUS_INCORRECT_KEY, kp_envelope_decrypt(engine, one, 1, NULL, msg, msg_len, back,
                                                      MSG_CAP, &back_len, NULL));
  EXPECT(KP_STATUS_INCORRECT_KEY,
         stream_decrypt(engine, one, 1, NULL, msg, msg_len, 10, 10, back, MSG_CAP, &back_len));
  OK(kp_envelope_encrypt(engine, ONE(aes), 1, NULL, 0, 0x0178, pt, 10, msg, MSG_CAP, &msg_len));
  EXPECT(KP_STATUS_INVALID_CIPHERTEXT, kp_envelope_decrypt(engine, ONE(aes), 1, NULL, msg, msg_len,
                                                           back, MSG_CAP, &back_len, NULL));
  /* A public-key RSA keyring wraps but cannot unwrap. */
  OK(kp_envelope_encrypt(engine, ONE(rsa_public), 1, NULL, 0, 0, pt, 10, msg, MSG_CAP, &msg_len));
  EXPECT(KP_STATUS_INCORRECT_KEY, kp_envelope_decrypt(engine, ONE(rsa_public), 1, NULL, msg, msg_len,
                                                      back, MSG_CAP, &back_len, NULL));
  OK(kp_envelope_decrypt(engine, ONE(rsa), 1, NULL, msg, msg_len, back, MSG_CAP, &back_len, NULL));
  CHECK(back_len == 10);
  printf("tampering, truncation, trailing bytes\n");
}

static void test_arguments(kp_engine *engine) {
  static uint8_t pt[300], msg[MSG_CAP], back[MSG_CAP];
  const kp_keyring *one[1];
  const kp_keyring *none[1];
  kp_envelope *ctx = NULL;
  kp_keyring *ring = NULL;
  kp_context *reserved = NULL;
  size_t msg_len, len, took, w, p, needed;
  uint8_t key[32] = {0};
  one[0] = aes;
  none[0] = NULL;
  fill_pattern(pt, sizeof pt, 6);
  /* Keyrings. */
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_keyring_raw_aes_new(NULL, "n", key, 32, &ring));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_keyring_raw_aes_new("ns", "n", NULL, 32, &ring));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_keyring_raw_aes_new("ns", "n", key, 32, NULL));
  EXPECT(KP_STATUS_VALIDATION, kp_keyring_raw_aes_new("ns", "n", key, 31, &ring));
  EXPECT(KP_STATUS_VALIDATION, kp_keyring_raw_aes_new("aws-kms", "n", key, 32, &ring));
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE,
         kp_keyring_raw_rsa_new("ns", "n", "RSA_OAEP_MD5", key, 32, &ring));
  EXPECT(KP_STATUS_VALIDATION,
         kp_keyring_raw_rsa_new("ns", "n", "RSA_PKCS1", key, 32, &ring));
  EXPECT(KP_STATUS_NOT_FOUND, kp_keyring_kms_new(engine, "alias/none", &ring));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_keyring_kms_new(NULL, NULL, &ring));
  CHECK(ring == NULL);
  kp_keyring_free(NULL);
  /* Discovery decrypts any aws-kms data key of the engine, and only those. */
  OK(kp_keyring_kms_new(engine, NULL, &ring));
  OK(kp_envelope_encrypt(engine, ONE(kms), 1, NULL, 0, 0, pt, 5, msg, MSG_CAP, &msg_len));
  OK(kp_envelope_decrypt(engine, ONE(ring), 1, NULL, msg, msg_len, back,
                         MSG_CAP, &len, NULL));
  CHECK(len == 5 && memcmp(back, pt, 5) == 0);
  EXPECT(KP_STATUS_INCORRECT_KEY, kp_envelope_decrypt(engine, one, 1, NULL, msg, msg_len, back,
                                                      MSG_CAP, &len, NULL));
  kp_keyring_free(ring);
  ring = NULL;

  /* Settings. */
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_envelope_encrypt_new(engine, NULL, 1, NULL, 0, 0, &ctx));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_envelope_encrypt_new(engine, none, 1, NULL, 0, 0, &ctx));
  EXPECT(KP_STATUS_VALIDATION, kp_envelope_encrypt_new(engine, one, 0, NULL, 0, 0, &ctx));
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_envelope_encrypt_new(engine, one, 100000, NULL, 0, 0, &ctx));
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE,
         kp_envelope_encrypt_new(engine, one, 1, NULL, 0, 0x1234, &ctx));
  EXPECT(KP_STATUS_VALIDATION,
         kp_envelope_encrypt_new(engine, one, 1, NULL, 0x80000000u, 0, &ctx));
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_envelope_decrypt_new(engine, one, 1, "LAX", &ctx));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_envelope_decrypt_new(engine, one, 1, NULL, NULL));
  OK(kp_context_new(&reserved));
  OK(kp_context_add(reserved, "aws-crypto-public-key", "x"));
  EXPECT(KP_STATUS_VALIDATION, kp_envelope_encrypt_new(engine, one, 1, reserved, 0, 0, &ctx));
  kp_context_free(reserved);
  CHECK(ctx == NULL);

  /* One-shot short buffers: nothing written, the size that suffices reported. */
  memset(back, 0x55, 64);
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL,
         kp_envelope_encrypt(engine, one, 1, NULL, 0, 0, pt, 100, back, 64, &needed));
  CHECK(needed > 64);
  for (len = 0; len < 64; len++) CHECK(back[len] == 0x55);
  OK(kp_envelope_encrypt(engine, one, 1, NULL, 0, 0, pt, 100, msg, needed, &msg_len));
  CHECK(msg_len <= needed);
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL,
         kp_envelope_decrypt(engine, one, 1, NULL, msg, msg_len, back, 99, &len, NULL));
  CHECK(len == 100 && back[0] == 0x55);
  OK(kp_envelope_decrypt(engine, one, 1, NULL, msg, msg_len, back, 100, &len, NULL));
  CHECK(len == 100 && memcmp(back, pt, 100) == 0);
  EXPECT(KP_STATUS_NULL_PARAMETER,
         kp_envelope_decrypt(engine, one, 1, NULL, msg, msg_len, back, 100, NULL, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER,
         kp_envelope_decrypt(engine, one, 1, NULL, NULL, msg_len, back, 100, &len, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER,
         kp_envelope_encrypt(engine, one, 1, NULL, 0, 0, pt, 100, NULL, 1000, &len));
  /* Overlap: output over the input, or over an out-parameter. */
  memcpy(back, pt, 100);
  EXPECT(KP_STATUS_OVERLAPPING_BUFFERS,
         kp_envelope_encrypt(engine, one, 1, NULL, 0, 0, back, 100, back + 50, 2000, &len));
  EXPECT(KP_STATUS_OVERLAPPING_BUFFERS,
         kp_envelope_encrypt(engine, one, 1, NULL, 0, 0, back, 100, back + 200, 2000,
                             (size_t *)(void *)(back + 256)));
  memcpy(back, msg, msg_len);
  EXPECT(KP_STATUS_OVERLAPPING_BUFFERS,
         kp_envelope_decrypt(engine, one, 1, NULL, back, msg_len, back, MSG_CAP, &len, NULL));

  /* Streaming without room for output: input is taken while nothing is held, then not; the
   * held size is reported. */
  OK(kp_envelope_encrypt_new(engine, one, 1, NULL, 0, 0x0478, &ctx));
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_envelope_update(ctx, pt, 10, &took, NULL, 0, &w, &p));
  CHECK(took == 10 && w == 0 && p > 0);
  needed = p;
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_envelope_update(ctx, pt, 10, &took, NULL, 0, &w, &p));
  CHECK(took == 0 && w == 0 && p == needed);
  /* NULL and overlapping arguments are refused without ending the context. */
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_envelope_update(NULL, pt, 10, &took, back, 64, &w, &p));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_envelope_update(ctx, NULL, 10, &took, back, 64, &w, &p));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_envelope_update(ctx, pt, 10, &took, NULL, 64, &w, &p));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_envelope_update(ctx, pt, 10, NULL, back, 64, &w, &p));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_envelope_update(ctx, pt, 10, &took, back, 64, NULL, &p));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_envelope_finish(ctx, back, 64, &w, NULL));
  EXPECT(KP_STATUS_OVERLAPPING_BUFFERS,
         kp_envelope_update(ctx, back, 10, &took, back + 5, 64, &w, &p));
  EXPECT(KP_STATUS_OVERLAPPING_BUFFERS,
         kp_envelope_update(ctx, pt, 10, &took, back, 64, (size_t *)(void *)(back + 8), &p));
  EXPECT(KP_STATUS_INVALID_HANDLE,
         kp_envelope_update((kp_envelope *)(void *)context, pt, 10, &took, back, 64, &w, &p));
  {
    /* The context still works: the whole message comes out and decrypts. */
    size_t total = 0;
    for (;;) {
      kp_status st = kp_envelope_update(ctx, NULL, 0, &took, msg + total, 7, &w, &p);
      CHECK(took == 0 && w <= 7);
      total += w;
      if (st == KP_STATUS_OK) break;
      EXPECT(KP_STATUS_BUFFER_TOO_SMALL, st);
    }
    CHECK(total == needed);
    for (;;) {
      kp_status st = kp_envelope_finish(ctx, msg + total, 7, &w, &p);
      total += w;
      if (st == KP_STATUS_OK) break;
      EXPECT(KP_STATUS_BUFFER_TOO_SMALL, st);
    }
    OK(kp_envelope_decrypt(engine, one, 1, NULL, msg, total, back, MSG_CAP, &len, NULL));
    CHECK(len == 10 && memcmp(back, pt, 10) == 0);
  }
  kp_envelope_free(ctx);
  kp_envelope_free(NULL);
  /* A decryption context knows no encryption context before the header arrived. */
  OK(kp_envelope_decrypt_new(engine, one, 1, NULL, &ctx));
  {
    kp_context *found = NULL;
    EXPECT(KP_STATUS_VALIDATION, kp_envelope_message_context(ctx, &found));
    CHECK(found == NULL);
  }
  /* An unfinished message freed: no leak (checked by ASan and valgrind). */
  OK(kp_envelope_update(ctx, msg, 20, &took, back, 64, &w, &p));
  kp_envelope_free(ctx);
  printf("arguments\n");
}

/* Messages made here decrypt with `keyplane decrypt-file`, and the CLI's decrypt here. */
static void test_cli_interop(kp_engine *engine) {
  static uint8_t pt[5000], msg[MSG_CAP], back[MSG_CAP];
  const char *cli = getenv("KP_CLI");
  char command[2048], keyfile[256], rsafile[256], in[256], out[256];
  const kp_keyring *rings[2];
  size_t msg_len, len, s;
  if (cli == NULL || cli[0] == '\0') {
    /* Not a skip counted as a pass: scripts/test-c always sets it. */
    fprintf(stderr, "cli interop: KP_CLI must name the keyplane binary (scripts/test-c sets it)\n");
    exit(1);
  }
  kp_test_path(keyfile, sizeof keyfile, "aes.key");
  kp_test_path(rsafile, sizeof rsafile, "rsa.pem");
  kp_test_path(in, sizeof in, "in.bin");
  kp_test_path(out, sizeof out, "out.bin");
  fill_pattern(pt, sizeof pt, 7);
  rings[0] = aes;
  rings[1] = rsa;
  for (s = 0; s < NSUITES; s++) {
    uint16_t suite = suites[s];
    const char *policy = is_v1(suite) ? " --commitment-policy REQUIRE_ENCRYPT_ALLOW_DECRYPT" : "";
    /* C -> CLI (raw AES, and raw RSA alone). */
    OK(kp_envelope_encrypt(engine, rings, 2, context, 1000, suite, pt, sizeof pt, msg, MSG_CAP,
                           &msg_len));
    kp_test_write_file("msg.kpe", msg, msg_len);
    CHECK(snprintf(command, sizeof command,
                   "%s decrypt-file --quiet --raw-aes c-test,aes-1,%s --in %s/msg.kpe --out %s"
                   " --context purpose=test%s",
                   cli, keyfile, kp_test_scratch(), out, policy) > 0);
    CHECK(system(command) == 0);
    len = kp_test_read_file("out.bin", back, MSG_CAP);
    CHECK(len == sizeof pt && memcmp(back, pt, len) == 0);
    CHECK(snprintf(command, sizeof command,
                   "%s decrypt-file --quiet --raw-rsa c-test,rsa-1,RSA_OAEP_SHA256_MGF1,%s"
                   " --in %s/msg.kpe --out %s%s",
                   cli, rsafile, kp_test_scratch(), out, policy) > 0);
    CHECK(system(command) == 0);
    len = kp_test_read_file("out.bin", back, MSG_CAP);
    CHECK(len == sizeof pt && memcmp(back, pt, len) == 0);
    /* A tampered message: the CLI refuses it and leaves no output file. */
    msg[msg_len - 20] ^= 1;
    kp_test_write_file("msg.kpe", msg, msg_len);
    CHECK(snprintf(command, sizeof command,
                   "%s decrypt-file --quiet --raw-aes c-test,aes-1,%s --in %s/msg.kpe --out %s%s"
                   " 2>/dev/null",
                   cli, keyfile, kp_test_scratch(), out, policy) > 0);
    CHECK(system(command) != 0);
    CHECK(access(out, F_OK) != 0);
    /* CLI -> C, one-shot and streamed. */
    kp_test_write_file("in.bin", pt, sizeof pt);
    CHECK(snprintf(command, sizeof command,
                   "%s encrypt-file --quiet --raw-aes c-test,aes-1,%s --raw-rsa "
                   "c-test,rsa-1,RSA_OAEP_SHA256_MGF1,%s --suite %s --frame-length 333"
                   " --context purpose=test --in %s --out %s/cli.kpe",
                   cli, keyfile, rsafile,
                   suite == 0x0578   ? "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"
                   : suite == 0x0478 ? "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"
                   : suite == 0x0378 ? "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384"
                   : suite == 0x0178 ? "AES_256_GCM_IV12_TAG16_HKDF_SHA256"
                                     : "AES_256_GCM_IV12_TAG16_NO_KDF",
                   in, kp_test_scratch()) > 0);
    CHECK(system(command) == 0);
    msg_len = kp_test_read_file("cli.kpe", msg, MSG_CAP);
    CHECK(msg[0] == (is_v1(suite) ? 1 : 2));
    {
      kp_context *found = NULL;
      OK(kp_envelope_decrypt(engine, ONE(aes), 1, policy_for(suite), msg, msg_len, back, MSG_CAP,
                             &len, &found));
      CHECK(len == sizeof pt && memcmp(back, pt, len) == 0);
      check_context(found, suite);
      kp_context_free(found);
    }
    OK(stream_decrypt(engine, ONE(rsa), 1, policy_for(suite), msg, msg_len, 101, 17, back, MSG_CAP,
                      &len));
    CHECK(len == sizeof pt && memcmp(back, pt, len) == 0);
  }
  printf("cli interop: %zu suites both ways\n", (size_t)NSUITES);
}

int main(void) {
  kp_engine *engine = kp_test_new_engine(2);
  kp_test_scratch_make("kp-envelope");
  make_keyrings(engine);
  test_round_trips(engine);
  test_release_rule(engine);
  test_tamper_truncate(engine);
  test_arguments(engine);
  test_cli_interop(engine);
  kp_keyring_free(kms);
  kp_keyring_free(aes);
  kp_keyring_free(aes_other);
  kp_keyring_free(rsa);
  kp_keyring_free(rsa_public);
  kp_context_free(context);
  kp_engine_free(engine);
  kp_test_scratch_remove();
  printf("test_envelope: %d checks passed\n", kp_test_checks);
  printf("%d passed, 0 failed\n", 1);
  return 0;
}
