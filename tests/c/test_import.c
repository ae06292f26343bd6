/*
 * Importing key material from C: kp_get_parameters_for_import, kp_import_key_material and
 * kp_delete_imported_key_material. The material is wrapped as a user would wrap it, with the
 * `openssl pkeyutl` command line (RSAES_OAEP_SHA_256) on the public key written to a file.
 * Checks the records, DescribeKey's VALID_TO and EXPIRATION_MODEL, encryption under the imported
 * material, re-import after deletion, and each refusal's status: another key's token, altered
 * material, different material, a refused wrapping algorithm, short buffers, NULL arguments.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kp_scratch.h"

static const char *field(const kp_record *r, kp_field f) { return kp_record_string(r, (uint32_t)f); }

/* RSA-OAEP-SHA256 of `material` to the DER public key `public_key`, by the openssl command line. */
static size_t openssl_wrap(const uint8_t *public_key, size_t public_key_len, const uint8_t *material,
                           size_t material_len, uint8_t *out, size_t cap) {
  char command[1024];
  int n;
  kp_test_write_file("wrapping.der", public_key, public_key_len);
  kp_test_write_file("material.bin", material, material_len);
  n = snprintf(command, sizeof command,
               "openssl pkeyutl -encrypt -pubin -inkey %s/wrapping.der -keyform DER"
               " -in %s/material.bin -out %s/material.wrapped -pkeyopt rsa_padding_mode:oaep"
               " -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256",
               kp_test_scratch(), kp_test_scratch(), kp_test_scratch());
  CHECK(n > 0 && (size_t)n < sizeof command);
  CHECK(system(command) == 0);
  return kp_test_read_file("material.wrapped", out, cap);
}

static void new_external_key(kp_engine *engine, char *id) {
  kp_create_key_options options;
  kp_record *md = NULL;
  memset(&options, 0, sizeof options);
  options.origin = "EXTERNAL";
  OK(kp_create_key(engine, &options, &md));
  CHECK(strcmp(field(md, KP_FIELD_KEY_STATE), "PendingImport") == 0);
  CHECK(strcmp(field(md, KP_FIELD_ORIGIN), "EXTERNAL") == 0);
  strcpy(id, field(md, KP_FIELD_KEY_ID));
  kp_record_free(md);
}

struct params {
  uint8_t public_key[KP_MAX_PUBLIC_KEY_LEN];
  uint8_t token[KP_MAX_IMPORT_TOKEN_LEN];
  kp_out pk;
  kp_out tok;
};

static void get_params(kp_engine *engine, const char *id, struct params *p) {
  kp_record *info = NULL;
  int64_t valid_to = 0;
  memset(p, 0, sizeof *p);
  p->pk.data = p->public_key;
  p->pk.capacity = sizeof p->public_key;
  p->tok.data = p->token;
  p->tok.capacity = sizeof p->token;
  OK(kp_get_parameters_for_import(engine, id, "RSAES_OAEP_SHA_256", "RSA_2048", &p->pk, &p->tok,
                                  &info));
  CHECK(p->pk.status == KP_STATUS_OK && p->tok.status == KP_STATUS_OK);
  CHECK(p->pk.len == 294); /* RSA-2048 SubjectPublicKeyInfo */
  CHECK(p->tok.len > 1000 && p->tok.len <= KP_MAX_IMPORT_TOKEN_LEN);
  CHECK(strstr(field(info, KP_FIELD_KEY_ID), id) != NULL);
  CHECK(kp_record_int(info, KP_FIELD_PARAMETERS_VALID_TO, &valid_to) && valid_to > 0);
  kp_record_free(info);
}

static void state_is(kp_engine *engine, const char *id, const char *state) {
  kp_record *md = NULL;
  OK(kp_describe_key(engine, id, &md));
  if (strcmp(field(md, KP_FIELD_KEY_STATE), state) != 0) {
    fprintf(stderr, "key state %s, expected %s\n", field(md, KP_FIELD_KEY_STATE), state);
    exit(1);
  }
  kp_record_free(md);
}

static void test_import_lifecycle(kp_engine *engine) {
  char id[64], other[64], material_id[65];
  struct params p, q;
  uint8_t material[32], different[32], wrapped[600], altered[600], blob[200], plain[64];
  size_t wrapped_len, blob_len = 0, plain_len = 0;
  kp_record *out = NULL, *md = NULL;
  kp_decrypt_item dec;
  int64_t valid_to = 0, wanted;
  memset(material, 0x5a, sizeof material);
  memset(different, 0xa5, sizeof different);
  new_external_key(engine, id);
  new_external_key(engine, other);
  get_params(engine, id, &p);
  get_params(engine, other, &q);
  wrapped_len = openssl_wrap(p.public_key, p.pk.len, material, sizeof material, wrapped,
                             sizeof wrapped);
  CHECK(wrapped_len == 256);

  /* Another key's token; altered material; nothing is stored. */
  EXPECT(KP_STATUS_INVALID_IMPORT_TOKEN,
         kp_import_key_material(engine, id, q.token, q.tok.len, wrapped, wrapped_len, 0,
                                "KEY_MATERIAL_DOES_NOT_EXPIRE", NULL, NULL, NULL, NULL));
  memcpy(altered, wrapped, wrapped_len);
  altered[7] ^= 1;
  EXPECT(KP_STATUS_INVALID_CIPHERTEXT,
         kp_import_key_material(engine, id, p.token, p.tok.len, altered, wrapped_len, 0,
                                "KEY_MATERIAL_DOES_NOT_EXPIRE", NULL, NULL, NULL, NULL));
  /* KEY_MATERIAL_EXPIRES (the default) needs a ValidTo. */
  EXPECT(KP_STATUS_VALIDATION,
         kp_import_key_material(engine, id, p.token, p.tok.len, wrapped, wrapped_len, 0, NULL,
                                NULL, NULL, NULL, NULL));
  EXPECT(KP_STATUS_VALIDATION,
         kp_import_key_material(engine, id, p.token, p.tok.len, wrapped, wrapped_len, 0,
                                "NEVER", NULL, NULL, NULL, NULL));
  state_is(engine, id, "PendingImport");

  /* The import, expiring in 30 days. */
  OK(kp_describe_key(engine, id, &md));
  CHECK(kp_record_int(md, KP_FIELD_CREATION_DATE, &wanted));
  kp_record_free(md);
  wanted += (int64_t)30 * 24 * 3600 * 1000;
  OK(kp_import_key_material(engine, id, p.token, p.tok.len, wrapped, wrapped_len, wanted, NULL,
                            NULL, "first import", NULL, &out));
  CHECK(strstr(field(out, KP_FIELD_KEY_ID), id) != NULL);
  CHECK(strlen(field(out, KP_FIELD_KEY_MATERIAL_ID)) == 64);
  strcpy(material_id, field(out, KP_FIELD_KEY_MATERIAL_ID));
  kp_record_free(out);
  OK(kp_describe_key(engine, id, &md));
  CHECK(strcmp(field(md, KP_FIELD_KEY_STATE), "Enabled") == 0);
  CHECK(strcmp(field(md, KP_FIELD_EXPIRATION_MODEL), "KEY_MATERIAL_EXPIRES") == 0);
  CHECK(kp_record_int(md, KP_FIELD_VALID_TO, &valid_to) && valid_to == wanted);
  CHECK(strcmp(field(md, KP_FIELD_CURRENT_KEY_MATERIAL_ID), material_id) == 0);
  kp_record_free(md);

  dec = kp_test_encrypt_text(engine, id, "imported from C", blob, sizeof blob, &blob_len);

  /* Delete: PendingImport; different material is refused; the same returns. */
  OK(kp_delete_imported_key_material(engine, id, NULL, &out));
  CHECK(strcmp(field(out, KP_FIELD_KEY_MATERIAL_ID), material_id) == 0);
  kp_record_free(out);
  state_is(engine, id, "PendingImport");
  EXPECT(KP_STATUS_INVALID_STATE, kp_decrypt(engine, &dec, plain, sizeof plain, &plain_len, NULL));
  wrapped_len = openssl_wrap(p.public_key, p.pk.len, different, sizeof different, wrapped,
                             sizeof wrapped);
  EXPECT(KP_STATUS_INCORRECT_KEY_MATERIAL,
         kp_import_key_material(engine, id, p.token, p.tok.len, wrapped, wrapped_len, 0,
                                "KEY_MATERIAL_DOES_NOT_EXPIRE", NULL, NULL, NULL, NULL));
  wrapped_len = openssl_wrap(p.public_key, p.pk.len, material, sizeof material, wrapped,
                             sizeof wrapped);
  OK(kp_import_key_material(engine, id, p.token, p.tok.len, wrapped, wrapped_len, 0,
                            "KEY_MATERIAL_DOES_NOT_EXPIRE", "EXISTING_KEY_MATERIAL", NULL,
                            material_id, NULL));
  state_is(engine, id, "Enabled");
  OK(kp_decrypt(engine, &dec, plain, sizeof plain, &plain_len, NULL));
  CHECK(plain_len == 15 && memcmp(plain, "imported from C", 15) == 0);
  OK(kp_describe_key(engine, id, &md));
  CHECK(strcmp(field(md, KP_FIELD_EXPIRATION_MODEL), "KEY_MATERIAL_DOES_NOT_EXPIRE") == 0);
  CHECK(!kp_record_int(md, KP_FIELD_VALID_TO, &valid_to));
  kp_record_free(md);
  EXPECT(KP_STATUS_NOT_FOUND,
         kp_delete_imported_key_material(
             engine, id, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL));
}

static void test_refusals_and_arguments(kp_engine *engine) {
  char id[64];
  uint8_t small[16], token[KP_MAX_IMPORT_TOKEN_LEN];
  kp_out pk, tok;
  new_external_key(engine, id);
  memset(&pk, 0, sizeof pk);
  memset(&tok, 0, sizeof tok);
  /* A refused wrapping algorithm and key spec say so. */
  pk.data = small;
  pk.capacity = sizeof small;
  tok.data = token;
  tok.capacity = sizeof token;
  EXPECT(KP_STATUS_UNSUPPORTED_OPERATION,
         kp_get_parameters_for_import(engine, id, "RSAES_PKCS1_V1_5", "RSA_2048", &pk, &tok, NULL));
  CHECK(strstr(kp_test_last_error(), "RSAES_PKCS1_V1_5") != NULL);
  EXPECT(KP_STATUS_UNSUPPORTED_OPERATION,
         kp_get_parameters_for_import(engine, id, "SM2PKE", "SM2", &pk, &tok, NULL));
  EXPECT(KP_STATUS_VALIDATION,
         kp_get_parameters_for_import(engine, id, "RSAES_OAEP_SHA_512", "RSA_2048", &pk, &tok,
                                      NULL));
  /* A public key buffer too small: BUFFER_TOO_SMALL with the size needed. */
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL,
         kp_get_parameters_for_import(engine, id, "RSAES_OAEP_SHA_256", "RSA_3072", &pk, &tok,
                                      NULL));
  CHECK(pk.status == KP_STATUS_BUFFER_TOO_SMALL && pk.len == 422);
  /* NULL and overlapping arguments are refused before anything runs. */
  EXPECT(KP_STATUS_NULL_PARAMETER,
         kp_get_parameters_for_import(engine, NULL, "RSAES_OAEP_SHA_256", "RSA_2048", &pk, &tok,
                                      NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER,
         kp_get_parameters_for_import(engine, id, "RSAES_OAEP_SHA_256", "RSA_2048", NULL, &tok,
                                      NULL));
  EXPECT(KP_STATUS_OVERLAPPING_BUFFERS,
         kp_get_parameters_for_import(engine, id, "RSAES_OAEP_SHA_256", "RSA_2048", &tok, &tok,
                                      NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER,
         kp_import_key_material(engine, id, NULL, 10, token, 10, 0, NULL, NULL, NULL, NULL, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_delete_imported_key_material(NULL, id, NULL, NULL));
  state_is(engine, id, "PendingImport");
}

int main(void) {
  kp_engine *engine = kp_test_new_engine(2);
  kp_test_scratch_make("kp-import");
  test_import_lifecycle(engine);
  test_refusals_and_arguments(engine);
  kp_engine_free(engine);
  kp_test_scratch_remove();
  printf("test_import: %d checks passed\n", kp_test_checks);
  printf("%d passed, 0 failed\n", 1);
  return 0;
}
