/*
 * libkeyplane's asymmetric and HMAC operations from C: Sign and Verify with every supported key
 * spec, GetPublicKey, GenerateMac and VerifyMac, DeriveSharedSecret, GenerateDataKeyPair(+
 * WithoutPlaintext), and Encrypt/Decrypt/ReEncrypt with RSA keys, singly and in batches; the
 * sizes calls; short buffers; bad enumerations; InvalidSignature and InvalidMac by flipping a bit.
 * Built against the installed library; run plain, under ASan/UBSan and under valgrind.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kp_test.h"

static const char *field(const kp_record *r, kp_field f) { return kp_record_string(r, (uint32_t)f); }

static void test_sizes(void) {
  CHECK(kp_signature_max_len("RSA_2048", KP_SIGNING_ALGORITHM_RSASSA_PSS_SHA_256) == 256);
  CHECK(kp_signature_max_len("RSA_3072", KP_SIGNING_ALGORITHM_RSASSA_PKCS1_V1_5_SHA_384) == 384);
  CHECK(kp_signature_max_len("RSA_4096", KP_SIGNING_ALGORITHM_RSASSA_PSS_SHA_512) == 512);
  CHECK(kp_signature_max_len("ECC_NIST_P256", KP_SIGNING_ALGORITHM_ECDSA_SHA_256) == 72);
  CHECK(kp_signature_max_len("ECC_SECG_P256K1", KP_SIGNING_ALGORITHM_ECDSA_SHA_256) == 72);
  CHECK(kp_signature_max_len("ECC_NIST_P384", KP_SIGNING_ALGORITHM_ECDSA_SHA_384) == 104);
  CHECK(kp_signature_max_len("ECC_NIST_P521", KP_SIGNING_ALGORITHM_ECDSA_SHA_512) == 139);
  CHECK(kp_signature_max_len("ECC_NIST_EDWARDS25519", KP_SIGNING_ALGORITHM_ED25519_SHA_512) == 64);
  /* Pairs that do not sign, unsupported specs, bad arguments: 0. */
  CHECK(kp_signature_max_len("ECC_NIST_P256", KP_SIGNING_ALGORITHM_ECDSA_SHA_384) == 0);
  CHECK(kp_signature_max_len("SYMMETRIC_DEFAULT", KP_SIGNING_ALGORITHM_ECDSA_SHA_256) == 0);
  CHECK(kp_signature_max_len("ML_DSA_44", KP_SIGNING_ALGORITHM_ML_DSA_SHAKE_256) == 0);
  CHECK(kp_signature_max_len("RSA_2048", 0) == 0);
  CHECK(kp_signature_max_len("RSA_2048", 99) == 0);
  CHECK(kp_signature_max_len("NOPE", KP_SIGNING_ALGORITHM_ECDSA_SHA_256) == 0);
  CHECK(kp_signature_max_len(NULL, KP_SIGNING_ALGORITHM_ECDSA_SHA_256) == 0);
  CHECK(kp_mac_len(KP_MAC_ALGORITHM_HMAC_SHA_224) == 28);
  CHECK(kp_mac_len(KP_MAC_ALGORITHM_HMAC_SHA_256) == 32);
  CHECK(kp_mac_len(KP_MAC_ALGORITHM_HMAC_SHA_384) == 48);
  CHECK(kp_mac_len(KP_MAC_ALGORITHM_HMAC_SHA_512) == 64 && KP_MAX_MAC_LEN == 64);
  CHECK(kp_mac_len(0) == 0 && kp_mac_len(5) == 0);
  CHECK(KP_MAX_SIGNATURE_LEN == 512 && KP_MAX_RSA_CIPHERTEXT_LEN == 512);
  CHECK(KP_MAX_PUBLIC_KEY_LEN == 550 && KP_MAX_PRIVATE_KEY_CIPHERTEXT_LEN > 2455);
}

struct signer {
  const char *spec;
  uint32_t algorithm;
  const char *name;
  size_t public_key_len;
};

static void test_sign_verify(kp_engine *engine) {
  const struct signer signers[] = {
      {"ECC_NIST_P256", KP_SIGNING_ALGORITHM_ECDSA_SHA_256, "ECDSA_SHA_256", 91},
      {"ECC_NIST_P384", KP_SIGNING_ALGORITHM_ECDSA_SHA_384, "ECDSA_SHA_384", 120},
      {"ECC_NIST_P521", KP_SIGNING_ALGORITHM_ECDSA_SHA_512, "ECDSA_SHA_512", 158},
      {"ECC_SECG_P256K1", KP_SIGNING_ALGORITHM_ECDSA_SHA_256, "ECDSA_SHA_256", 88},
      {"ECC_NIST_EDWARDS25519", KP_SIGNING_ALGORITHM_ED25519_SHA_512, "ED25519_SHA_512", 44},
      {"RSA_2048", KP_SIGNING_ALGORITHM_RSASSA_PSS_SHA_256, "RSASSA_PSS_SHA_256", 294},
      {"RSA_2048", KP_SIGNING_ALGORITHM_RSASSA_PKCS1_V1_5_SHA_512, "RSASSA_PKCS1_V1_5_SHA_512", 294},
  };
  const uint8_t message[] = "the message to sign";
  uint8_t digest[32], signature[KP_MAX_SIGNATURE_LEN], small[8], public_key[KP_MAX_PUBLIC_KEY_LEN];
  size_t i, len = 0, max;
  char id[64];
  kp_sign_item sign;
  kp_verify_item verify;
  kp_record *info = NULL;
  kp_out pk;

  for (i = 0; i < sizeof signers / sizeof signers[0]; i++) {
    const struct signer *s = &signers[i];
    kp_test_new_key(engine, s->spec, "SIGN_VERIFY", id);
    max = kp_signature_max_len(s->spec, s->algorithm);
    CHECK(max > 0);
    memset(&sign, 0, sizeof sign);
    sign.key_id = id;
    sign.message = message;
    sign.message_len = sizeof message - 1;
    sign.signing_algorithm = s->algorithm;
    len = 0;
    OK(kp_sign(engine, &sign, signature, max, &len, &info));
    CHECK(len > 0 && len <= max);
    CHECK(strstr(field(info, KP_FIELD_KEY_ID), id) != NULL);
    CHECK(strcmp(field(info, KP_FIELD_SIGNING_ALGORITHM), s->name) == 0);
    kp_record_free(info);
    info = NULL;

    memset(&verify, 0, sizeof verify);
    verify.key_id = id;
    verify.message = message;
    verify.message_len = sizeof message - 1;
    verify.signature = signature;
    verify.signature_len = len;
    verify.signing_algorithm = s->algorithm;
    OK(kp_verify(engine, &verify, &info));
    CHECK(strcmp(field(info, KP_FIELD_SIGNING_ALGORITHM), s->name) == 0);
    CHECK(strstr(field(info, KP_FIELD_KEY_ID), id) != NULL);
    kp_record_free(info);
    info = NULL;
    /* A flipped bit in the signature, or in the message: KMSInvalidSignatureException. */
    signature[len / 2] ^= 0x01;
    EXPECT(KP_STATUS_INVALID_SIGNATURE, kp_verify(engine, &verify, &info));
    CHECK(info == NULL);
    CHECK(strcmp(kp_status_exception_name(KP_STATUS_INVALID_SIGNATURE), "KMSInvalidSignatureException") == 0);
    signature[len / 2] ^= 0x01;
    verify.message_len -= 1;
    EXPECT(KP_STATUS_INVALID_SIGNATURE, kp_verify(engine, &verify, NULL));
    verify.message_len += 1;
    OK(kp_verify(engine, &verify, NULL));

    /* The public key: exact size, a short kp_out says the size needed. */
    memset(&pk, 0, sizeof pk);
    pk.data = public_key;
    pk.capacity = 10;
    pk.status = 77;
    EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_get_public_key(engine, id, &pk, &info));
    CHECK(pk.len == s->public_key_len && pk.status == KP_STATUS_BUFFER_TOO_SMALL && info == NULL);
    pk.capacity = pk.len;
    pk.len = 0;
    OK(kp_get_public_key(engine, id, &pk, &info));
    CHECK(pk.len == s->public_key_len && pk.status == KP_STATUS_OK && public_key[0] == 0x30);
    CHECK(strcmp(field(info, KP_FIELD_KEY_SPEC), s->spec) == 0);
    CHECK(strcmp(field(info, KP_FIELD_KEY_USAGE), "SIGN_VERIFY") == 0);
    CHECK(strstr(field(info, KP_FIELD_SIGNING_ALGORITHMS), s->name) != NULL);
    CHECK(strcmp(field(info, KP_FIELD_ENCRYPTION_ALGORITHMS), "") == 0);
    kp_record_free(info);
    info = NULL;

    /* A buffer shorter than the signature: nothing written. */
    len = 12345;
    memset(small, 0xAA, sizeof small);
    EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_sign(engine, &sign, small, sizeof small, &len, NULL));
    CHECK(len == 12345 && small[0] == 0xAA);
  }

  /* DIGEST messages (ECDSA over a SHA-256 digest), and their checks. */
  kp_test_new_key(engine, "ECC_NIST_P256", "SIGN_VERIFY", id);
  memset(digest, 0x5c, sizeof digest);
  memset(&sign, 0, sizeof sign);
  sign.key_id = id;
  sign.message = digest;
  sign.message_len = sizeof digest;
  sign.message_type = KP_MESSAGE_TYPE_DIGEST;
  sign.signing_algorithm = KP_SIGNING_ALGORITHM_ECDSA_SHA_256;
  OK(kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  memset(&verify, 0, sizeof verify);
  verify.key_id = id;
  verify.message = digest;
  verify.message_len = sizeof digest;
  verify.message_type = KP_MESSAGE_TYPE_DIGEST;
  verify.signature = signature;
  verify.signature_len = len;
  verify.signing_algorithm = KP_SIGNING_ALGORITHM_ECDSA_SHA_256;
  OK(kp_verify(engine, &verify, NULL));
  verify.message_type = KP_MESSAGE_TYPE_RAW; /* the same bytes as a RAW message: another message */
  EXPECT(KP_STATUS_INVALID_SIGNATURE, kp_verify(engine, &verify, NULL));
  sign.message_len = 31;
  EXPECT(KP_STATUS_VALIDATION, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  sign.message_len = sizeof digest;
  sign.message_type = KP_MESSAGE_TYPE_EXTERNAL_MU;
  EXPECT(KP_STATUS_UNSUPPORTED_OPERATION, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  sign.message_type = 7;
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  sign.message_type = KP_MESSAGE_TYPE_RAW;

  /* Failures: algorithm, enum, usage, arguments. */
  sign.signing_algorithm = KP_SIGNING_ALGORITHM_ECDSA_SHA_384; /* not this key's */
  EXPECT(KP_STATUS_INVALID_KEY_USAGE, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  CHECK(strstr(kp_test_last_error(), "Algorithm ECDSA_SHA_384 is incompatible with key spec") != NULL);
  sign.signing_algorithm = KP_SIGNING_ALGORITHM_RSASSA_PSS_SHA_256;
  EXPECT(KP_STATUS_INVALID_KEY_USAGE, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  sign.signing_algorithm = 0;
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  sign.signing_algorithm = 14;
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  sign.signing_algorithm = KP_SIGNING_ALGORITHM_ECDSA_SHA_256;
  sign.message_len = 0;
  EXPECT(KP_STATUS_VALIDATION, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  sign.message_len = 4097;
  sign.message = (const uint8_t *)calloc(4097, 1);
  EXPECT(KP_STATUS_VALIDATION, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  free((void *)sign.message);
  sign.message = message;
  sign.message_len = sizeof message - 1;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_sign(engine, &sign, NULL, sizeof signature, &len, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_sign(engine, &sign, signature, sizeof signature, NULL, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_sign(engine, NULL, signature, sizeof signature, &len, NULL));
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_sign(engine, &sign, signature, (size_t)-1, &len, NULL));
  sign.key_id = NULL;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  sign.key_id = "alias/no-such-key";
  EXPECT(KP_STATUS_NOT_FOUND, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  verify.signature = NULL;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_verify(engine, &verify, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_verify(engine, NULL, NULL));
  kp_test_new_key(engine, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", id);
  sign.key_id = id;
  EXPECT(KP_STATUS_INVALID_KEY_USAGE, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  memset(&pk, 0, sizeof pk);
  pk.data = public_key;
  pk.capacity = sizeof public_key;
  EXPECT(KP_STATUS_UNSUPPORTED_OPERATION, kp_get_public_key(engine, id, &pk, NULL));
  CHECK(pk.status == KP_STATUS_UNSUPPORTED_OPERATION);
  pk.data = NULL;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_get_public_key(engine, id, &pk, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_get_public_key(engine, id, NULL, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_get_public_key(engine, NULL, &pk, NULL));
  /* Ed25519ph is modelled, not supported. */
  kp_test_new_key(engine, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY", id);
  sign.key_id = id;
  sign.signing_algorithm = KP_SIGNING_ALGORITHM_ED25519_PH_SHA_512;
  EXPECT(KP_STATUS_UNSUPPORTED_OPERATION, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  /* A disabled key. */
  sign.signing_algorithm = KP_SIGNING_ALGORITHM_ED25519_SHA_512;
  OK(kp_disable_key(engine, id));
  EXPECT(KP_STATUS_DISABLED, kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  OK(kp_enable_key(engine, id));
  OK(kp_sign(engine, &sign, signature, sizeof signature, &len, NULL));
  CHECK(len == 64);
}

#define N 96

static void test_sign_batches(kp_engine *engine) {
  char p256[64], ed[64];
  static uint8_t messages[N][40], signatures[N][KP_MAX_SIGNATURE_LEN];
  kp_sign_item sign[N];
  kp_verify_item verify[N];
  kp_out out[N];
  uint32_t statuses[N];
  size_t i;

  kp_test_new_key(engine, "ECC_NIST_P256", "SIGN_VERIFY", p256);
  kp_test_new_key(engine, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY", ed);
  memset(sign, 0, sizeof sign);
  for (i = 0; i < N; i++) {
    memset(messages[i], (int)i, sizeof messages[i]);
    sign[i].key_id = i % 2 ? ed : p256;
    sign[i].message = messages[i];
    sign[i].message_len = 1 + i % sizeof messages[i];
    sign[i].signing_algorithm = i % 2 ? KP_SIGNING_ALGORITHM_ED25519_SHA_512 : KP_SIGNING_ALGORITHM_ECDSA_SHA_256;
    out[i].data = signatures[i];
    out[i].capacity = kp_signature_max_len(i % 2 ? "ECC_NIST_EDWARDS25519" : "ECC_NIST_P256", sign[i].signing_algorithm);
    out[i].len = 0;
    out[i].status = 77;
  }
  OK(kp_sign_batch(engine, sign, N, out));
  for (i = 0; i < N; i++) {
    CHECK(out[i].status == KP_STATUS_OK && out[i].len <= out[i].capacity);
    CHECK(i % 2 == 0 || out[i].len == 64);
  }
  memset(verify, 0, sizeof verify);
  for (i = 0; i < N; i++) {
    verify[i].key_id = sign[i].key_id;
    verify[i].message = sign[i].message;
    verify[i].message_len = sign[i].message_len;
    verify[i].signature = signatures[i];
    verify[i].signature_len = out[i].len;
    verify[i].signing_algorithm = sign[i].signing_algorithm;
    statuses[i] = 77;
  }
  OK(kp_verify_batch(engine, verify, N, statuses));
  for (i = 0; i < N; i++) CHECK(statuses[i] == KP_STATUS_OK);
  /* Items fail on their own: a flipped bit, a wrong algorithm, a NULL key, a bad enum. */
  signatures[4][3] ^= 0x80;
  verify[6].signing_algorithm = KP_SIGNING_ALGORITHM_ECDSA_SHA_512;
  verify[8].key_id = NULL;
  verify[10].signing_algorithm = 0;
  EXPECT(KP_STATUS_BATCH_ITEMS_FAILED, kp_verify_batch(engine, verify, N, statuses));
  CHECK(strstr(kp_test_last_error(), "4 of 96 items failed; first: item 4") != NULL);
  CHECK(statuses[4] == KP_STATUS_INVALID_SIGNATURE && statuses[6] == KP_STATUS_INVALID_KEY_USAGE);
  CHECK(statuses[8] == KP_STATUS_NULL_PARAMETER && statuses[10] == KP_STATUS_INVALID_ENUM_VALUE);
  CHECK(statuses[5] == KP_STATUS_OK && statuses[N - 1] == KP_STATUS_OK);
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_verify_batch(engine, verify, N, NULL));
  OK(kp_verify_batch(engine, NULL, 0, NULL));

  /* A short output: BUFFER_TOO_SMALL, and len says what is needed (Ed25519: 64). */
  out[1].capacity = 10;
  sign[2].signing_algorithm = 99;
  EXPECT(KP_STATUS_BATCH_ITEMS_FAILED, kp_sign_batch(engine, sign, N, out));
  CHECK(out[1].status == KP_STATUS_BUFFER_TOO_SMALL && out[1].len == 64);
  CHECK(out[2].status == KP_STATUS_INVALID_ENUM_VALUE);
  CHECK(out[0].status == KP_STATUS_OK && out[3].status == KP_STATUS_OK);
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_sign_batch(engine, sign, N, NULL));
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_sign_batch(engine, sign, (size_t)KP_MAX_BATCH_ITEMS + 1, out));
}

static void test_macs(kp_engine *engine) {
  const char *specs[4] = {"HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512"};
  const uint32_t algorithms[4] = {KP_MAC_ALGORITHM_HMAC_SHA_224, KP_MAC_ALGORITHM_HMAC_SHA_256,
                                  KP_MAC_ALGORITHM_HMAC_SHA_384, KP_MAC_ALGORITHM_HMAC_SHA_512};
  char ids[4][64];
  uint8_t mac[KP_MAX_MAC_LEN], again[KP_MAX_MAC_LEN];
  static uint8_t macs[N][KP_MAX_MAC_LEN];
  const uint8_t message[] = "authenticate me";
  size_t i, len = 0, sizes[N], total = 0, sum = 0;
  kp_mac_item item, items[N];
  kp_verify_mac_item check, checks[N];
  kp_out out[N];
  uint32_t statuses[N];
  kp_record *info = NULL;

  for (i = 0; i < 4; i++) {
    kp_test_new_key(engine, specs[i], "GENERATE_VERIFY_MAC", ids[i]);
    memset(&item, 0, sizeof item);
    item.key_id = ids[i];
    item.message = message;
    item.message_len = sizeof message - 1;
    item.mac_algorithm = algorithms[i];
    OK(kp_generate_mac(engine, &item, mac, sizeof mac, &len, &info));
    CHECK(len == kp_mac_len(algorithms[i]));
    CHECK(strstr(field(info, KP_FIELD_MAC_ALGORITHM), "HMAC_SHA_") == field(info, KP_FIELD_MAC_ALGORITHM));
    kp_record_free(info);
    info = NULL;
    OK(kp_generate_mac(engine, &item, again, len, &len, NULL)); /* exactly the MAC's size */
    CHECK(memcmp(mac, again, len) == 0);                           /* deterministic */
    EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_generate_mac(engine, &item, again, len - 1, &len, NULL));
    memset(&check, 0, sizeof check);
    check.key_id = ids[i];
    check.message = message;
    check.message_len = sizeof message - 1;
    check.mac = mac;
    check.mac_len = len;
    check.mac_algorithm = algorithms[i];
    OK(kp_verify_mac(engine, &check, &info));
    CHECK(strstr(field(info, KP_FIELD_KEY_ID), ids[i]) != NULL);
    kp_record_free(info);
    info = NULL;
    mac[0] ^= 0x04;
    EXPECT(KP_STATUS_INVALID_MAC, kp_verify_mac(engine, &check, &info));
    CHECK(info == NULL);
    mac[0] ^= 0x04;
    check.mac_len = len - 1; /* a truncated MAC does not verify either */
    EXPECT(KP_STATUS_INVALID_MAC, kp_verify_mac(engine, &check, NULL));
  }
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_INVALID_MAC), "KMSInvalidMacException") == 0);
  /* Wrong algorithm for the key, bad enumerations, empty and NULL messages, wrong key type. */
  item.key_id = ids[0];
  item.mac_algorithm = KP_MAC_ALGORITHM_HMAC_SHA_256;
  EXPECT(KP_STATUS_INVALID_KEY_USAGE, kp_generate_mac(engine, &item, mac, sizeof mac, &len, NULL));
  item.mac_algorithm = 0;
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_generate_mac(engine, &item, mac, sizeof mac, &len, NULL));
  item.mac_algorithm = KP_MAC_ALGORITHM_HMAC_SHA_224;
  item.message_len = 0;
  EXPECT(KP_STATUS_VALIDATION, kp_generate_mac(engine, &item, mac, sizeof mac, &len, NULL));
  item.message = NULL;
  item.message_len = 3;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_generate_mac(engine, &item, mac, sizeof mac, &len, NULL));
  item.message = message;
  kp_test_new_key(engine, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", ids[3]);
  item.key_id = ids[3];
  EXPECT(KP_STATUS_INVALID_KEY_USAGE, kp_generate_mac(engine, &item, mac, sizeof mac, &len, NULL));
  check.mac_algorithm = 9;
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_verify_mac(engine, &check, NULL));

  /* Batches over the worker pool, with their exact sizes. */
  memset(items, 0, sizeof items);
  for (i = 0; i < N; i++) {
    items[i].key_id = ids[i % 3];
    items[i].message = message;
    items[i].message_len = 1 + i % (sizeof message - 1);
    items[i].mac_algorithm = algorithms[i % 3];
  }
  OK(kp_generate_mac_batch_sizes(items, N, sizes, &total));
  for (i = 0; i < N; i++) {
    CHECK(sizes[i] == kp_mac_len(algorithms[i % 3]));
    sum += sizes[i];
    out[i].data = macs[i];
    out[i].capacity = sizes[i];
    out[i].status = 77;
  }
  CHECK(total == sum);
  OK(kp_generate_mac_batch(engine, items, N, out));
  memset(checks, 0, sizeof checks);
  for (i = 0; i < N; i++) {
    CHECK(out[i].status == KP_STATUS_OK && out[i].len == sizes[i]);
    checks[i].key_id = items[i].key_id;
    checks[i].message = items[i].message;
    checks[i].message_len = items[i].message_len;
    checks[i].mac = macs[i];
    checks[i].mac_len = out[i].len;
    checks[i].mac_algorithm = items[i].mac_algorithm;
  }
  OK(kp_verify_mac_batch(engine, checks, N, statuses));
  for (i = 0; i < N; i++) CHECK(statuses[i] == KP_STATUS_OK);
  macs[7][0] ^= 1;
  EXPECT(KP_STATUS_BATCH_ITEMS_FAILED, kp_verify_mac_batch(engine, checks, N, statuses));
  CHECK(statuses[7] == KP_STATUS_INVALID_MAC && statuses[6] == KP_STATUS_OK && statuses[8] == KP_STATUS_OK);
  out[5].capacity = sizes[5] - 1; /* checked before the engine runs */
  items[9].mac_algorithm = 77;
  EXPECT(KP_STATUS_BATCH_ITEMS_FAILED, kp_generate_mac_batch(engine, items, N, out));
  CHECK(out[5].status == KP_STATUS_BUFFER_TOO_SMALL && out[5].len == sizes[5]);
  CHECK(out[9].status == KP_STATUS_INVALID_ENUM_VALUE && out[10].status == KP_STATUS_OK);
  OK(kp_generate_mac_batch_sizes(items, N, sizes, NULL));
  CHECK(sizes[9] == 0);
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_generate_mac_batch_sizes(NULL, 3, sizes, &total));
}

static void test_rsa_encryption(kp_engine *engine) {
  char rsa[64], sym[64];
  const uint8_t plaintext[] = "a secret for RSA-OAEP";
  uint8_t ciphertext[KP_MAX_RSA_CIPHERTEXT_LEN], opened[600], small[100], blob[600];
  size_t len = 0, opened_len = 0, blob_len = 0, sizes[4], i;
  kp_encrypt_item enc, encs[4];
  kp_decrypt_item dec, decs[4];
  kp_re_encrypt_item re;
  kp_record *info = NULL;
  static uint8_t outs[4][KP_MAX_RSA_CIPHERTEXT_LEN], plains[4][600];
  kp_out out[4];

  kp_test_new_key(engine, "RSA_2048", "ENCRYPT_DECRYPT", rsa);
  kp_test_new_key(engine, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", sym);
  memset(&enc, 0, sizeof enc);
  enc.key_id = rsa;
  enc.plaintext = plaintext;
  enc.plaintext_len = sizeof plaintext - 1;
  enc.encryption_algorithm = KP_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_256;
  OK(kp_encrypt(engine, &enc, ciphertext, sizeof ciphertext, &len, &info));
  CHECK(len == 256); /* the modulus size */
  CHECK(strcmp(field(info, KP_FIELD_ENCRYPTION_ALGORITHM), "RSAES_OAEP_SHA_256") == 0);
  kp_record_free(info);
  info = NULL;
  /* Decrypt needs the key and the algorithm. */
  memset(&dec, 0, sizeof dec);
  dec.ciphertext = ciphertext;
  dec.ciphertext_len = len;
  dec.key_id = rsa;
  dec.encryption_algorithm = KP_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_256;
  OK(kp_decrypt(engine, &dec, opened, sizeof opened, &opened_len, &info));
  CHECK(opened_len == sizeof plaintext - 1 && memcmp(opened, plaintext, opened_len) == 0);
  CHECK(strcmp(field(info, KP_FIELD_ENCRYPTION_ALGORITHM), "RSAES_OAEP_SHA_256") == 0);
  kp_record_free(info);
  /* A buffer just the plaintext's size suffices; a shorter one writes nothing. */
  OK(kp_decrypt(engine, &dec, opened, sizeof plaintext - 1, &opened_len, NULL));
  opened_len = 12345;
  memset(small, 0xAA, sizeof small);
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_decrypt(engine, &dec, small, 5, &opened_len, NULL));
  CHECK(opened_len == 12345 && small[0] == 0xAA);
  dec.encryption_algorithm = 0;
  EXPECT(KP_STATUS_VALIDATION, kp_decrypt(engine, &dec, opened, sizeof opened, &opened_len, NULL));
  dec.encryption_algorithm = KP_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_1;
  EXPECT(KP_STATUS_INVALID_CIPHERTEXT, kp_decrypt(engine, &dec, opened, sizeof opened, &opened_len, NULL));
  dec.encryption_algorithm = KP_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_256;
  /* The ciphertext does not fit 100 bytes: nothing written. */
  len = 12345;
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_encrypt(engine, &enc, small, sizeof small, &len, NULL));
  CHECK(len == 12345 && small[0] == 0xAA);
  enc.encryption_algorithm = 0; /* SYMMETRIC_DEFAULT under an RSA key */
  EXPECT(KP_STATUS_INVALID_KEY_USAGE, kp_encrypt(engine, &enc, blob, sizeof blob, &len, NULL));
  enc.encryption_algorithm = KP_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_256;
  enc.plaintext_len = 300; /* over the OAEP limit of an RSA_2048 key (190 bytes) */
  enc.plaintext = opened;
  EXPECT(KP_STATUS_VALIDATION, kp_encrypt(engine, &enc, ciphertext, sizeof ciphertext, &len, NULL));
  enc.plaintext = plaintext;
  enc.plaintext_len = sizeof plaintext - 1;

  /* ReEncrypt RSA -> symmetric and back. */
  memset(&re, 0, sizeof re);
  re.ciphertext = ciphertext;
  re.ciphertext_len = 256;
  re.source_key_id = rsa;
  re.source_encryption_algorithm = KP_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_256;
  re.destination_key_id = sym;
  OK(kp_re_encrypt(engine, &re, blob, sizeof blob, &blob_len, NULL));
  CHECK(blob_len == kp_ciphertext_len(sizeof plaintext - 1));
  re.ciphertext = blob;
  re.ciphertext_len = blob_len;
  re.source_key_id = NULL;
  re.source_encryption_algorithm = 0;
  re.destination_key_id = rsa;
  re.destination_encryption_algorithm = KP_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_1;
  OK(kp_re_encrypt(engine, &re, ciphertext, sizeof ciphertext, &len, NULL));
  CHECK(len == 256);
  dec.encryption_algorithm = KP_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_1;
  OK(kp_decrypt(engine, &dec, opened, sizeof opened, &opened_len, NULL));
  CHECK(opened_len == sizeof plaintext - 1 && memcmp(opened, plaintext, opened_len) == 0);

  /* Batches that mix RSA and symmetric items; the sizes calls give bounds for RSA items. */
  for (i = 0; i < 4; i++) {
    encs[i] = enc;
    encs[i].key_id = i % 2 ? sym : rsa;
    encs[i].encryption_algorithm = i % 2 ? 0 : KP_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_256;
  }
  OK(kp_encrypt_batch_sizes(encs, 4, sizes, NULL));
  CHECK(sizes[0] == KP_MAX_RSA_CIPHERTEXT_LEN && sizes[1] == kp_ciphertext_max_len(sizeof plaintext - 1));
  for (i = 0; i < 4; i++) {
    out[i].data = outs[i];
    out[i].capacity = i % 2 ? sizes[i] : 256;
  }
  OK(kp_encrypt_batch(engine, encs, 4, out));
  CHECK(out[0].len == 256 && out[2].len == 256 && out[1].len == kp_ciphertext_len(sizeof plaintext - 1));
  for (i = 0; i < 4; i++) {
    memset(&decs[i], 0, sizeof decs[i]);
    decs[i].ciphertext = outs[i];
    decs[i].ciphertext_len = out[i].len;
    decs[i].key_id = i % 2 ? NULL : rsa;
    decs[i].encryption_algorithm = i % 2 ? 0 : KP_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_256;
  }
  OK(kp_decrypt_batch_sizes(decs, 4, sizes, NULL));
  CHECK(sizes[0] == 256 - 66 && sizes[1] == sizeof plaintext - 1);
  for (i = 0; i < 4; i++) {
    out[i].data = plains[i];
    out[i].capacity = sizes[i];
  }
  OK(kp_decrypt_batch(engine, decs, 4, out));
  for (i = 0; i < 4; i++) {
    CHECK(out[i].status == KP_STATUS_OK && out[i].len == sizeof plaintext - 1);
    CHECK(memcmp(plains[i], plaintext, out[i].len) == 0);
  }
  /* In a batch the engine writes in place: an RSA output that does not fit is refused by the
     engine (VALIDATION), and the failed item's buffer is zeroed. */
  for (i = 0; i < 4; i++) {
    out[i].data = outs[i];
    out[i].capacity = 256;
  }
  out[2].capacity = 100;
  memset(outs[2], 0xAA, 100);
  EXPECT(KP_STATUS_BATCH_ITEMS_FAILED, kp_encrypt_batch(engine, encs, 4, out));
  CHECK(out[2].status == KP_STATUS_VALIDATION && outs[2][0] == 0);
  CHECK(out[0].status == KP_STATUS_OK && out[3].status == KP_STATUS_OK);
  /* A symmetric item with a short buffer is refused before the engine runs, with the size. */
  out[2].capacity = 256;
  out[1].capacity = 10;
  EXPECT(KP_STATUS_BATCH_ITEMS_FAILED, kp_encrypt_batch(engine, encs, 4, out));
  CHECK(out[1].status == KP_STATUS_BUFFER_TOO_SMALL && out[1].len == kp_ciphertext_len(sizeof plaintext - 1));
}

static void test_agreement(kp_engine *engine) {
  char a[64], b[64], c[64], signer[64];
  uint8_t pa[KP_MAX_PUBLIC_KEY_LEN], pb[KP_MAX_PUBLIC_KEY_LEN], pc[KP_MAX_PUBLIC_KEY_LEN];
  kp_out out;
  kp_secret_buffer *ab = NULL, *ba = NULL, *x = NULL;
  kp_record *info = NULL;
  size_t la, lb, lc;

  kp_test_new_key(engine, "ECC_NIST_P256", "KEY_AGREEMENT", a);
  kp_test_new_key(engine, "ECC_NIST_P256", "KEY_AGREEMENT", b);
  kp_test_new_key(engine, "ECC_NIST_P384", "KEY_AGREEMENT", c);
  kp_test_new_key(engine, "ECC_NIST_P256", "SIGN_VERIFY", signer);
  memset(&out, 0, sizeof out);
  out.data = pa;
  out.capacity = sizeof pa;
  OK(kp_get_public_key(engine, a, &out, &info));
  la = out.len;
  CHECK(strcmp(field(info, KP_FIELD_KEY_AGREEMENT_ALGORITHMS), "ECDH") == 0);
  kp_record_free(info);
  info = NULL;
  out.data = pb;
  OK(kp_get_public_key(engine, b, &out, NULL));
  lb = out.len;
  out.data = pc;
  OK(kp_get_public_key(engine, c, &out, NULL));
  lc = out.len;
  CHECK(la == 91 && lb == 91 && lc == 120);

  OK(kp_derive_shared_secret(engine, a, KP_KEY_AGREEMENT_ALGORITHM_ECDH, pb, lb, &ab, &info));
  OK(kp_derive_shared_secret(engine, b, KP_KEY_AGREEMENT_ALGORITHM_ECDH, pa, la, &ba, NULL));
  CHECK(kp_secret_buffer_len(ab) == 32 && kp_secret_buffer_len(ba) == 32);
  CHECK(memcmp(kp_secret_buffer_data(ab), kp_secret_buffer_data(ba), 32) == 0);
  CHECK(strcmp(field(info, KP_FIELD_KEY_AGREEMENT_ALGORITHM), "ECDH") == 0);
  CHECK(strcmp(field(info, KP_FIELD_ORIGIN), "AWS_KMS") == 0);
  kp_record_free(info);
  kp_secret_buffer_free(ab);
  kp_secret_buffer_free(ba);

  /* A peer on another curve, a malformed key, a key that does not agree, bad arguments. */
  EXPECT(KP_STATUS_VALIDATION, kp_derive_shared_secret(engine, a, KP_KEY_AGREEMENT_ALGORITHM_ECDH, pc, lc, &x, NULL));
  pb[lb - 1] ^= 0xFF; /* no longer a point on the curve */
  EXPECT(KP_STATUS_VALIDATION, kp_derive_shared_secret(engine, a, KP_KEY_AGREEMENT_ALGORITHM_ECDH, pb, lb, &x, NULL));
  EXPECT(KP_STATUS_VALIDATION, kp_derive_shared_secret(engine, a, KP_KEY_AGREEMENT_ALGORITHM_ECDH, pa, 10, &x, NULL));
  EXPECT(KP_STATUS_INVALID_KEY_USAGE,
         kp_derive_shared_secret(engine, signer, KP_KEY_AGREEMENT_ALGORITHM_ECDH, pa, la, &x, NULL));
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_derive_shared_secret(engine, a, 0, pa, la, &x, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_derive_shared_secret(engine, a, KP_KEY_AGREEMENT_ALGORITHM_ECDH, NULL, la, &x, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_derive_shared_secret(engine, a, KP_KEY_AGREEMENT_ALGORITHM_ECDH, pa, la, NULL, NULL));
  CHECK(x == NULL);
}

static void test_data_key_pairs(kp_engine *engine) {
  const uint32_t specs[] = {KP_DATA_KEY_PAIR_SPEC_ECC_NIST_P256, KP_DATA_KEY_PAIR_SPEC_ECC_NIST_EDWARDS25519,
                            KP_DATA_KEY_PAIR_SPEC_ECC_SECG_P256K1, KP_DATA_KEY_PAIR_SPEC_RSA_2048};
  const size_t public_lens[] = {91, 44, 88, 294};
  const char *names[] = {"ECC_NIST_P256", "ECC_NIST_EDWARDS25519", "ECC_SECG_P256K1", "RSA_2048"};
  char sym[64], signer[64];
  uint8_t blob[KP_MAX_PRIVATE_KEY_CIPHERTEXT_LEN], public_key[KP_MAX_PUBLIC_KEY_LEN], opened[4096];
  size_t i, opened_len = 0;
  kp_data_key_pair_item item;
  kp_secret_buffer *private_key = NULL;
  kp_out ct, pk;
  kp_record *info = NULL;
  kp_context *ctx = NULL;
  kp_decrypt_item dec;

  kp_test_new_key(engine, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", sym);
  kp_test_new_key(engine, "ECC_NIST_P256", "SIGN_VERIFY", signer);
  OK(kp_context_new(&ctx));
  OK(kp_context_add(ctx, "purpose", "key pair"));
  for (i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    memset(&item, 0, sizeof item);
    item.key_id = sym;
    item.context = ctx;
    item.key_pair_spec = specs[i];
    memset(&ct, 0, sizeof ct);
    memset(&pk, 0, sizeof pk);
    ct.data = blob;
    ct.capacity = sizeof blob;
    pk.data = public_key;
    pk.capacity = sizeof public_key;
    OK(kp_generate_data_key_pair(engine, &item, &private_key, &ct, &pk, &info));
    CHECK(pk.len == public_lens[i] && pk.status == KP_STATUS_OK && ct.status == KP_STATUS_OK);
    CHECK(public_key[0] == 0x30 && kp_secret_buffer_data(private_key)[0] == 0x30); /* DER */
    CHECK(ct.len == kp_ciphertext_len(kp_secret_buffer_len(private_key)));
    CHECK(strcmp(field(info, KP_FIELD_KEY_PAIR_SPEC), names[i]) == 0);
    CHECK(strlen(field(info, KP_FIELD_KEY_MATERIAL_ID)) == 64 && strstr(field(info, KP_FIELD_KEY_ID), sym) != NULL);
    kp_record_free(info);
    info = NULL;
    /* The encrypted private key is a keyplane blob that decrypts (with the context) to it. */
    memset(&dec, 0, sizeof dec);
    dec.ciphertext = blob;
    dec.ciphertext_len = ct.len;
    dec.context = ctx;
    OK(kp_decrypt(engine, &dec, opened, sizeof opened, &opened_len, NULL));
    CHECK(opened_len == kp_secret_buffer_len(private_key));
    CHECK(memcmp(opened, kp_secret_buffer_data(private_key), opened_len) == 0);
    kp_secret_buffer_free(private_key);
    private_key = NULL;
    OK(kp_generate_data_key_pair_without_plaintext(engine, &item, &ct, &pk, NULL));
    CHECK(pk.len == public_lens[i]);
  }
  /* Short outputs: BUFFER_TOO_SMALL, nothing written, each len says what is needed. */
  item.key_pair_spec = KP_DATA_KEY_PAIR_SPEC_ECC_NIST_P384;
  ct.capacity = sizeof blob;
  pk.capacity = 50;
  ct.len = pk.len = 0;
  memset(public_key, 0xAA, sizeof public_key);
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_generate_data_key_pair(engine, &item, &private_key, &ct, &pk, NULL));
  CHECK(private_key == NULL && pk.len == 120 && ct.len == kp_ciphertext_len(185) && public_key[0] == 0xAA);
  CHECK(pk.status == KP_STATUS_BUFFER_TOO_SMALL && ct.status == KP_STATUS_BUFFER_TOO_SMALL);
  pk.capacity = sizeof public_key;
  ct.capacity = 100;
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_generate_data_key_pair_without_plaintext(engine, &item, &ct, &pk, NULL));
  CHECK(ct.len == kp_ciphertext_len(185));
  ct.capacity = sizeof blob;
  /* Failures: one kp_out for both, bad spec, unsupported spec, a key that cannot encrypt. */
  EXPECT(KP_STATUS_INVALID_ARGUMENT, kp_generate_data_key_pair(engine, &item, &private_key, &pk, &pk, NULL));
  item.key_pair_spec = 0;
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_generate_data_key_pair(engine, &item, &private_key, &ct, &pk, NULL));
  item.key_pair_spec = KP_DATA_KEY_PAIR_SPEC_SM2;
  EXPECT(KP_STATUS_UNSUPPORTED_OPERATION, kp_generate_data_key_pair(engine, &item, &private_key, &ct, &pk, NULL));
  item.key_pair_spec = KP_DATA_KEY_PAIR_SPEC_ECC_NIST_P256;
  item.key_id = signer;
  EXPECT(KP_STATUS_INVALID_KEY_USAGE, kp_generate_data_key_pair(engine, &item, &private_key, &ct, &pk, NULL));
  item.key_id = sym;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_generate_data_key_pair(engine, &item, NULL, &ct, &pk, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_generate_data_key_pair(engine, &item, &private_key, NULL, &pk, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_generate_data_key_pair_without_plaintext(engine, NULL, &ct, &pk, NULL));
  CHECK(private_key == NULL);
  kp_context_free(ctx);
}

static void test_larger_rsa(kp_engine *engine) {
  /* RSA_3072 and RSA_4096: signature and ciphertext sizes are their modulus sizes. Key generation
     is slow under valgrind, so KP_TEST_QUICK=1 skips this. */
  const char *quick = getenv("KP_TEST_QUICK");
  const char *specs[2] = {"RSA_3072", "RSA_4096"};
  const size_t modulus[2] = {384, 512}, public_lens[2] = {422, 550};
  uint8_t signature[KP_MAX_SIGNATURE_LEN], public_key[KP_MAX_PUBLIC_KEY_LEN];
  char id[64];
  size_t i, len = 0;
  kp_sign_item sign;
  kp_out pk;
  if (quick && strcmp(quick, "1") == 0) return;
  for (i = 0; i < 2; i++) {
    kp_test_new_key(engine, specs[i], "SIGN_VERIFY", id);
    memset(&sign, 0, sizeof sign);
    sign.key_id = id;
    sign.message = (const uint8_t *)"m";
    sign.message_len = 1;
    sign.signing_algorithm = KP_SIGNING_ALGORITHM_RSASSA_PSS_SHA_384;
    OK(kp_sign(engine, &sign, signature, kp_signature_max_len(specs[i], sign.signing_algorithm), &len, NULL));
    CHECK(len == modulus[i]);
    memset(&pk, 0, sizeof pk);
    pk.data = public_key;
    pk.capacity = sizeof public_key;
    OK(kp_get_public_key(engine, id, &pk, NULL));
    CHECK(pk.len == public_lens[i]);
  }
}

int main(void) {
  kp_config *config = NULL;
  kp_engine *engine = NULL;
  test_sizes();
  OK(kp_config_new(&config));
  OK(kp_config_set_region(config, "eu-west-1"));
  OK(kp_config_set_account_id(config, "123456789012"));
  OK(kp_config_set_worker_threads(config, 2));
  OK(kp_engine_new(config, &engine));
  kp_config_free(config);
  test_sign_verify(engine);
  test_sign_batches(engine);
  test_macs(engine);
  test_rsa_encryption(engine);
  test_agreement(engine);
  test_data_key_pairs(engine);
  test_larger_rsa(engine);
  kp_engine_free(engine);
  printf("test_asymmetric: %d checks passed\n", kp_test_checks);
  printf("%d passed, 0 failed\n", 1);
  return 0;
}
