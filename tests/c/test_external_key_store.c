/* External key stores through the C ABI, against `keyplane xks-proxy` (the CLI binary named by
 * KP_CLI, which scripts/test-c builds and exports) serving the XKS proxy API over TLS with a
 * self-signed certificate, credentials it generates, and one external key: the store created with
 * kp_xks_proxy_options, connected, a key made with XksKeyId, Encrypt and Decrypt (double
 * encryption, blob algorithm 2) sized by kp_ciphertext_max_len and kp_blob_plaintext_len, single
 * and batch, and wrong proxy credentials failing the connection with INVALID_CREDENTIALS (the key
 * then unavailable). Also the ABI's checks on the new members: a secret with an embedded NUL, a
 * credential given by halves, HSM members beside XKS ones. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kp_scratch.h"

#define EXTERNAL_KEY "c-external-key-1"

/* The proxy's pid, stopped at exit even when a CHECK fails (CHECK calls exit). */
static pid_t proxy_pid = 0;

static void stop_proxy(void) {
  if (proxy_pid > 0) {
    kill(proxy_pid, SIGTERM);
    proxy_pid = 0;
  }
}
#define PLAIN "kept behind the proxy"

/* The string value of `"name":"..."` in a line of JSON (no escapes in the values read here). */
static int json_string(const char *json, const char *name, char *out, size_t cap) {
  char pattern[128];
  const char *start;
  const char *end;
  snprintf(pattern, sizeof pattern, "\"%s\":\"", name);
  start = strstr(json, pattern);
  if (start == NULL) {
    return 0;
  }
  start += strlen(pattern);
  end = strchr(start, '"');
  if (end == NULL || (size_t)(end - start) >= cap) {
    return 0;
  }
  memcpy(out, start, (size_t)(end - start));
  out[end - start] = '\0';
  return 1;
}

static const char *state_of(const struct kp_engine *engine, const char *id, char *code,
                            size_t code_cap) {
  static char state[64];
  struct kp_page *page = NULL;
  const struct kp_record *item;
  const char *value;
  OK(kp_describe_custom_key_stores(engine, id, NULL, 0, NULL, &page));
  CHECK(kp_page_len(page) == 1);
  item = kp_page_item(page, 0);
  snprintf(state, sizeof state, "%s", kp_record_string(item, KP_FIELD_CONNECTION_STATE));
  value = kp_record_string(item, KP_FIELD_CONNECTION_ERROR_CODE);
  snprintf(code, code_cap, "%s", value ? value : "");
  CHECK(strstr(kp_record_string(item, KP_FIELD_JSON), "XksProxyConfiguration") != NULL);
  kp_page_free(page);
  return state;
}

/* The sizing helpers against the real outputs under `key`: every size a helper returns is at
 * least what the call writes, and equal where the ABI promises exactness (`exact`: a key keyplane
 * or an HSM key store holds, whose blob is kp_ciphertext_len; every key's decryption sizes, read
 * from the blob). Encrypt, GenerateDataKey(WithoutPlaintext) and ReEncrypt to `key` from a blob
 * of `other`, single calls sized by the batch helpers' answers. */
static void check_sizes(const struct kp_engine *engine, const char *key, const char *other,
                        int exact) {
  static const size_t lengths[] = {1, 32, 1000};
  size_t i;
  for (i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
    uint8_t plaintext[1000];
    uint8_t blob[1600];
    uint8_t source[1600];
    uint8_t again[1600];
    size_t blob_len = 0;
    size_t source_len = 0;
    size_t again_len = 0;
    size_t size = 0;
    size_t cipher_size = 0;
    size_t key_size = 0;
    size_t got = 0;
    uint8_t opened[1000];
    struct kp_encrypt_item enc;
    struct kp_decrypt_item dec;
    struct kp_re_encrypt_item re;
    struct kp_data_key_item dk;
    struct kp_secret_buffer *secret = NULL;
    size_t n = lengths[i];
    memset(plaintext, 0x5a, sizeof plaintext);
    memset(&enc, 0, sizeof enc);
    enc.key_id = key;
    enc.plaintext = plaintext;
    enc.plaintext_len = n;
    OK(kp_encrypt_batch_sizes(&enc, 1, &size, NULL));
    CHECK(size == kp_ciphertext_max_len(n) && size <= sizeof blob);
    OK(kp_encrypt(engine, &enc, blob, size, &blob_len, NULL));
    CHECK(blob_len <= size && blob_len >= kp_ciphertext_len(n));
    CHECK(exact ? blob_len == kp_ciphertext_len(n) : blob_len > kp_ciphertext_len(n));
    CHECK(kp_blob_plaintext_len(blob, blob_len) == n);
    CHECK(kp_plaintext_len(blob_len) >= n);
    memset(&dec, 0, sizeof dec);
    dec.ciphertext = blob;
    dec.ciphertext_len = blob_len;
    OK(kp_decrypt_batch_sizes(&dec, 1, &size, NULL));
    CHECK(size == n);
    OK(kp_decrypt(engine, &dec, opened, size, &got, NULL));
    CHECK(got == n && memcmp(opened, plaintext, n) == 0);
    /* One byte short of the exact plaintext: refused before anything is written. */
    EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_decrypt(engine, &dec, opened, n - 1, &got, NULL));

    /* ReEncrypt to `key` from a blob of `other`. */
    enc.key_id = other;
    OK(kp_encrypt(engine, &enc, source, sizeof source, &source_len, NULL));
    memset(&re, 0, sizeof re);
    re.ciphertext = source;
    re.ciphertext_len = source_len;
    re.destination_key_id = key;
    OK(kp_re_encrypt_batch_sizes(&re, 1, &size, NULL));
    CHECK(size == kp_ciphertext_max_len(n));
    OK(kp_re_encrypt(engine, &re, again, size, &again_len, NULL));
    CHECK(again_len <= size && kp_blob_plaintext_len(again, again_len) == n);
    CHECK(exact ? again_len == kp_ciphertext_len(n) : again_len > kp_ciphertext_len(n));

    /* GenerateDataKey of n bytes (1 is below the service's minimum: skipped). */
    if (n >= 16 && n <= 1024) {
      memset(&dk, 0, sizeof dk);
      dk.key_id = key;
      dk.number_of_bytes = (uint32_t)n;
      OK(kp_generate_data_key_batch_sizes(&dk, 1, &key_size, &cipher_size, NULL, NULL));
      CHECK(key_size == n && cipher_size == kp_ciphertext_max_len(n));
      OK(kp_generate_data_key(engine, &dk, &secret, blob, cipher_size, &blob_len, NULL));
      CHECK(kp_secret_buffer_len(secret) == n);
      kp_secret_buffer_free(secret);
      CHECK(blob_len <= cipher_size && kp_blob_plaintext_len(blob, blob_len) == n);
      CHECK(exact ? blob_len == kp_ciphertext_len(n) : blob_len > kp_ciphertext_len(n));
      OK(kp_generate_data_key_without_plaintext(engine, &dk, blob, cipher_size, &blob_len, NULL));
      CHECK(blob_len <= cipher_size && kp_blob_plaintext_len(blob, blob_len) == n);
    }
  }
}

int main(void) {
  const char *dir;
  char command[2048];
  char line[4096];
  char endpoint[256] = "";
  char certificate[1024] = "";
  char ca[1200];
  char credentials[1024];
  char access_key_id[64] = "";
  char secret[128] = "";
  char uri_path[256] = "";
  char store[64];
  char key[64];
  char code[64];
  char bad_secret[128];
  const char *cli = getenv("KP_CLI");
  FILE *proxy;
  FILE *file;
  int ready = 0;
  size_t plain_len = strlen(PLAIN);
  struct kp_config *config = NULL;
  struct kp_engine *engine = NULL;
  struct kp_record *record = NULL;
  struct kp_xks_proxy_options xks;
  struct kp_create_key_options options;
  struct kp_encrypt_item enc;
  struct kp_decrypt_item dec;
  struct kp_out outs[2];
  struct kp_encrypt_item encs[2];
  uint8_t blob[512];
  uint8_t blob2[512];
  uint8_t small[512];
  size_t blob_len = 0;
  size_t sizes[2];
  uint8_t plain[64];
  size_t got = 0;

  if (cli == NULL) {
    fprintf(stderr, "set KP_CLI to the keyplane binary (scripts/test-c does)\n");
    return 1;
  }
  dir = kp_test_scratch_make("kp-c-xks");
  snprintf(credentials, sizeof credentials, "%s/xks-proxy.json", dir);
  snprintf(command, sizeof command, "'%s' --data-dir %s/proxy-data store init >/dev/null 2>&1", cli,
           dir);
  CHECK(system(command) == 0);
  /* `exec` keeps the shell's pid, which it prints first: the proxy is stopped by that pid. */
  snprintf(command, sizeof command,
           "echo $$; exec '%s' --json --data-dir %s/proxy-data xks-proxy --listen 127.0.0.1:0 "
           "--tls-self-signed --credentials %s --generate-credentials --create-key %s "
           "2>/dev/null",
           cli, dir, credentials, EXTERNAL_KEY);
  proxy = popen(command, "r");
  CHECK(proxy != NULL);
  CHECK(fgets(line, sizeof line, proxy) != NULL);
  proxy_pid = (pid_t)strtol(line, NULL, 10);
  CHECK(proxy_pid > 0);
  CHECK(atexit(stop_proxy) == 0);
  while (!ready && fgets(line, sizeof line, proxy) != NULL) {
    if (strstr(line, "\"event\":\"tls\"") != NULL) {
      CHECK(json_string(line, "certificate", certificate, sizeof certificate));
    } else if (strstr(line, "\"event\":\"listening\"") != NULL) {
      CHECK(json_string(line, "endpoint", endpoint, sizeof endpoint));
    } else if (strstr(line, "\"event\":\"ready\"") != NULL) {
      ready = 1;
    }
  }
  CHECK(ready && strncmp(endpoint, "https://", 8) == 0 && certificate[0] != '\0');
  if (certificate[0] == '/') {
    snprintf(ca, sizeof ca, "%s", certificate);
  } else {
    snprintf(ca, sizeof ca, "%s/proxy-data/%s", dir, certificate);
  }
  file = fopen(credentials, "r");
  CHECK(file != NULL);
  {
    char json[4096];
    size_t n = fread(json, 1, sizeof json - 1, file);
    json[n] = '\0';
    fclose(file);
    /* The file is pretty-printed JSON: drop the spaces after colons before reading it. */
    {
      char *r = json;
      char *w = json;
      int in_string = 0;
      for (; *r; r++) {
        if (*r == '"') {
          in_string = !in_string;
        }
        if (in_string || (*r != ' ' && *r != '\n')) {
          *w++ = *r;
        }
      }
      *w = '\0';
    }
    CHECK(json_string(json, "AccessKeyId", access_key_id, sizeof access_key_id));
    CHECK(json_string(json, "RawSecretAccessKey", secret, sizeof secret));
    CHECK(json_string(json, "XksProxyUriPath", uri_path, sizeof uri_path));
  }

  /* The engine trusts the proxy's self-signed certificate (read at kp_engine_new). */
  CHECK(setenv("KEYPLANE_XKS_CA_BUNDLE", ca, 1) == 0);
  OK(kp_config_new(&config));
  OK(kp_engine_new(config, &engine));

  memset(&xks, 0, sizeof xks);
  xks.uri_endpoint = endpoint;
  xks.uri_path = uri_path;
  xks.connectivity = "PUBLIC_ENDPOINT";
  xks.access_key_id = access_key_id;
  xks.raw_secret_access_key = (const uint8_t *)secret;
  xks.raw_secret_access_key_len = strlen(secret);

  /* The ABI's checks: a credential by halves, HSM members beside XKS ones, a secret with an
   * embedded NUL (refused by the service's rule, without echoing the secret). */
  xks.raw_secret_access_key = NULL;
  xks.raw_secret_access_key_len = 0;
  EXPECT(KP_STATUS_INVALID_ARGUMENT,
         kp_create_custom_key_store(engine, "c-xks", NULL, NULL, NULL, 0, &xks, &record));
  /* A pointer with length 0 is an empty secret, which the service's rule refuses. */
  xks.raw_secret_access_key = (const uint8_t *)secret;
  xks.raw_secret_access_key_len = 0;
  EXPECT(KP_STATUS_VALIDATION,
         kp_create_custom_key_store(engine, "c-xks", NULL, NULL, NULL, 0, &xks, &record));
  xks.raw_secret_access_key_len = strlen(secret);
  EXPECT(KP_STATUS_VALIDATION, kp_create_custom_key_store(engine, "c-xks", "cluster-x", NULL, NULL,
                                                           0, &xks, &record));
  memcpy(bad_secret, secret, strlen(secret) + 1);
  bad_secret[10] = '\0';
  xks.raw_secret_access_key = (const uint8_t *)bad_secret;
  EXPECT(KP_STATUS_VALIDATION,
         kp_create_custom_key_store(engine, "c-xks", NULL, NULL, NULL, 0, &xks, &record));
  CHECK(strstr(kp_test_last_error(), secret + 11) == NULL);
  xks.raw_secret_access_key = (const uint8_t *)secret;
  xks.uri_endpoint = NULL;
  EXPECT(KP_STATUS_VALIDATION,
         kp_create_custom_key_store(engine, "c-xks", NULL, NULL, NULL, 0, &xks, &record));
  CHECK(strstr(kp_test_last_error(), "XksProxyUriEndpoint") != NULL);
  xks.uri_endpoint = endpoint;

  OK(kp_create_custom_key_store(engine, "c-xks", NULL, NULL, NULL, 0, &xks, &record));
  snprintf(store, sizeof store, "%s", kp_record_string(record, KP_FIELD_CUSTOM_KEY_STORE_ID));
  kp_record_free(record);
  CHECK(strcmp(state_of(engine, store, code, sizeof code), "DISCONNECTED") == 0);
  EXPECT(KP_STATUS_XKS_PROXY_URI_IN_USE,
         kp_create_custom_key_store(engine, "c-xks-2", NULL, NULL, NULL, 0, &xks, &record));
  OK(kp_connect_custom_key_store(engine, store));
  CHECK(strcmp(state_of(engine, store, code, sizeof code), "CONNECTED") == 0);

  memset(&options, 0, sizeof options);
  options.origin = "EXTERNAL_KEY_STORE";
  EXPECT(KP_STATUS_XKS_KEY_NOT_FOUND,
         kp_create_key_in_custom_key_store(engine, &options, store, "not-a-key", &record));
  OK(kp_create_key_in_custom_key_store(engine, &options, store, EXTERNAL_KEY, &record));
  snprintf(key, sizeof key, "%s", kp_record_string(record, KP_FIELD_KEY_ID));
  CHECK(strcmp(kp_record_string(record, KP_FIELD_ORIGIN), "EXTERNAL_KEY_STORE") == 0);
  CHECK(strcmp(kp_record_string(record, KP_FIELD_CUSTOM_KEY_STORE_ID), store) == 0);
  CHECK(strstr(kp_record_string(record, KP_FIELD_JSON), "\"XksKeyConfiguration\"") != NULL);
  CHECK(strstr(kp_record_string(record, KP_FIELD_JSON), EXTERNAL_KEY) != NULL);
  kp_record_free(record);

  /* Encrypt: the double-encrypted blob is longer than kp_ciphertext_len says (that is exact for
   * keys keyplane or an HSM holds) and at most kp_ciphertext_max_len. */
  memset(&enc, 0, sizeof enc);
  enc.key_id = key;
  enc.plaintext = (const uint8_t *)PLAIN;
  enc.plaintext_len = plain_len;
  CHECK(kp_ciphertext_max_len(plain_len) <= sizeof blob);
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL,
         kp_encrypt(engine, &enc, small, kp_ciphertext_len(plain_len), &blob_len, NULL));
  OK(kp_encrypt(engine, &enc, blob, kp_ciphertext_max_len(plain_len), &blob_len, NULL));
  CHECK(blob[1] == 2);
  CHECK(blob_len > kp_ciphertext_len(plain_len) && blob_len <= kp_ciphertext_max_len(plain_len));
  CHECK(kp_blob_plaintext_len(blob, blob_len) == plain_len);
  CHECK(kp_plaintext_len(blob_len) >= plain_len);

  memset(&dec, 0, sizeof dec);
  dec.ciphertext = blob;
  dec.ciphertext_len = blob_len;
  OK(kp_decrypt(engine, &dec, plain, kp_blob_plaintext_len(blob, blob_len), &got, NULL));
  CHECK(got == plain_len && memcmp(plain, PLAIN, plain_len) == 0);

  /* A batch sized by kp_ciphertext_max_len, and its decryption sized by kp_decrypt_batch_sizes
   * (exact: read from each blob's framing). */
  encs[0] = enc;
  encs[1] = enc;
  outs[0].data = blob;
  outs[0].capacity = kp_ciphertext_max_len(plain_len);
  outs[1].data = blob2;
  outs[1].capacity = kp_ciphertext_max_len(plain_len);
  OK(kp_encrypt_batch(engine, encs, 2, outs));
  CHECK(outs[0].len <= outs[0].capacity && blob[1] == 2 && blob2[1] == 2);
  {
    struct kp_decrypt_item decs[2];
    uint8_t p0[64];
    uint8_t p1[64];
    memset(decs, 0, sizeof decs);
    decs[0].ciphertext = blob;
    decs[0].ciphertext_len = outs[0].len;
    decs[1].ciphertext = blob2;
    decs[1].ciphertext_len = outs[1].len;
    OK(kp_decrypt_batch_sizes(decs, 2, sizes, NULL));
    CHECK(sizes[0] == plain_len && sizes[1] == plain_len);
    outs[0].data = p0;
    outs[0].capacity = sizes[0];
    outs[1].data = p1;
    outs[1].capacity = sizes[1];
    OK(kp_decrypt_batch(engine, decs, 2, outs));
    CHECK(outs[0].len == plain_len && memcmp(p0, PLAIN, plain_len) == 0);
    CHECK(outs[1].len == plain_len && memcmp(p1, PLAIN, plain_len) == 0);
  }

  /* The sizing helpers for each key kind: keyplane-held (exact) and external (bounds). */
  {
    char held[64];
    memset(&options, 0, sizeof options);
    OK(kp_create_key(engine, &options, &record));
    snprintf(held, sizeof held, "%s", kp_record_string(record, KP_FIELD_KEY_ID));
    kp_record_free(record);
    check_sizes(engine, held, key, 1);
    check_sizes(engine, key, held, 0);
  }

  /* Wrong proxy credentials (a well-formed secret the proxy does not know): the connection fails
   * with INVALID_CREDENTIALS and the key is unavailable; the right ones connect it again. */
  OK(kp_disconnect_custom_key_store(engine, store));
  EXPECT(KP_STATUS_KEY_UNAVAILABLE, kp_decrypt(engine, &dec, plain, sizeof plain, &got, NULL));
  memcpy(bad_secret, secret, strlen(secret) + 1);
  bad_secret[0] = bad_secret[0] == 'A' ? 'B' : 'A';
  memset(&xks, 0, sizeof xks);
  xks.access_key_id = access_key_id;
  xks.raw_secret_access_key = (const uint8_t *)bad_secret;
  xks.raw_secret_access_key_len = strlen(bad_secret);
  OK(kp_update_custom_key_store(engine, store, NULL, NULL, 0, NULL, &xks));
  OK(kp_connect_custom_key_store(engine, store));
  CHECK(strcmp(state_of(engine, store, code, sizeof code), "FAILED") == 0);
  CHECK(strcmp(code, "INVALID_CREDENTIALS") == 0);
  EXPECT(KP_STATUS_KEY_UNAVAILABLE, kp_decrypt(engine, &dec, plain, sizeof plain, &got, NULL));
  OK(kp_disconnect_custom_key_store(engine, store));
  xks.raw_secret_access_key = (const uint8_t *)secret;
  xks.raw_secret_access_key_len = strlen(secret);
  OK(kp_update_custom_key_store(engine, store, "c-xks-renamed", NULL, 0, NULL, &xks));
  OK(kp_connect_custom_key_store(engine, store));
  CHECK(strcmp(state_of(engine, store, code, sizeof code), "CONNECTED") == 0);
  OK(kp_decrypt(engine, &dec, plain, sizeof plain, &got, NULL));
  CHECK(got == plain_len && memcmp(plain, PLAIN, plain_len) == 0);
  /* Proxy settings change only while DISCONNECTED, as the service's. */
  EXPECT(KP_STATUS_CUSTOM_KEY_STORE_INVALID_STATE,
         kp_update_custom_key_store(engine, store, NULL, NULL, 0, NULL, &xks));

  kp_engine_free(engine);
  kp_config_free(config);
  stop_proxy();
  while (fgets(line, sizeof line, proxy) != NULL) {
  }
  pclose(proxy);
  kp_test_scratch_remove();
  printf("test_external_key_store: %d checks passed\n", kp_test_checks);
  return 0;
}
