/*
 * libkeyplane's C API, call by call: every operation, every status code the engine can produce
 * through this build, NULL pointers, bad lengths and handles, short output buffers. Built against
 * the installed library (pkg-config and CMake); run plain, under ASan/UBSan and under valgrind.
 *
 * KP_TEST_UNSAFE=1 in the environment adds the checks that read freed handles (they are undefined
 * behaviour that the library detects on a best-effort basis, so sanitizers rightly object).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kp_test.h"

static const char *field(const kp_record *r, kp_field f) { return kp_record_string(r, (uint32_t)f); }

static kp_engine *new_engine(kp_manual_clock *clock) {
  kp_config *config = NULL;
  kp_engine *engine = NULL;
  OK(kp_config_new(&config));
  OK(kp_config_set_region(config, "eu-west-1"));
  OK(kp_config_set_account_id(config, "123456789012"));
  OK(kp_config_set_worker_threads(config, 2));
  OK(kp_config_set_lock_policy(config, KP_LOCK_POLICY_REQUIRE));
  OK(kp_config_set_max_plaintext_bytes(config, 16384));
  OK(kp_config_set_max_keys(config, 50));
  OK(kp_config_set_messages_per_derived_key(config, 1000));
  OK(kp_config_set_scheduler_interval_ms(config, 0));
  if (clock) OK(kp_config_set_manual_clock(config, clock));
  OK(kp_engine_new(config, &engine));
  kp_config_free(config);
  CHECK(kp_engine_max_plaintext_bytes(engine) == 16384);
  CHECK(kp_engine_worker_threads(engine) == 2);
  return engine;
}

/* Creates a symmetric key and copies its id into `id` (64 bytes). */
static void new_key(kp_engine *engine, char *id) {
  kp_record *md = NULL;
  OK(kp_create_key(engine, NULL, &md));
  strcpy(id, field(md, KP_FIELD_KEY_ID));
  kp_record_free(md);
}

static void test_version_and_statuses(void) {
  char expected[32];
  uint32_t all[] = {0,    100,  101,  102,  103,  104,  105,  106,  200,  299,  1000, 1001, 1100,
                    1101, 1102, 1200, 1201, 1202, 1203, 1204, 1300, 1301, 1302, 1303, 1400, 1401,
                    1500, 1501, 1600, 1601, 1602, 1700, 1701, 1702, 1703, 1704, 1705, 1800, 1801,
                    1900, 1901, 1902, 1999};
  size_t i;
  snprintf(expected, sizeof expected, "%d.%d.%d", KP_VERSION_MAJOR, KP_VERSION_MINOR, KP_VERSION_PATCH);
  CHECK(strcmp(kp_version(), KP_VERSION) == 0);
  CHECK(strcmp(kp_version(), expected) == 0);
  CHECK(KP_VERSION_NUMBER == KP_VERSION_MAJOR * 10000 + KP_VERSION_MINOR * 100 + KP_VERSION_PATCH);
  /* The library runs on AWS-LC's FIPS module exactly when built so (scripts/test-c sets
     KP_EXPECT_FIPS=1 for its FIPS build). */
  CHECK(kp_fips_mode() == (getenv("KP_EXPECT_FIPS") != NULL && strcmp(getenv("KP_EXPECT_FIPS"), "1") == 0));
  for (i = 0; i < sizeof all / sizeof all[0]; i++) {
    const char *name = kp_status_name(all[i]);
    CHECK(strncmp(name, "KP_STATUS_", 10) == 0 && strcmp(name, "KP_STATUS_UNKNOWN") != 0);
    CHECK((all[i] >= 1000) == (kp_status_exception_name(all[i]) != NULL));
  }
  CHECK(strcmp(kp_status_name(KP_STATUS_NOT_FOUND), "KP_STATUS_NOT_FOUND") == 0);
  CHECK(strcmp(kp_status_name(42), "KP_STATUS_UNKNOWN") == 0);
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_INVALID_STATE), "KMSInvalidStateException") == 0);
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_INTERNAL), "KMSInternalException") == 0);
  CHECK(strcmp(kp_status_name(KP_STATUS_MALFORMED_POLICY_DOCUMENT), "KP_STATUS_MALFORMED_POLICY_DOCUMENT") == 0);
  CHECK(strcmp(kp_status_name(KP_STATUS_AUDIT_KEY), "KP_STATUS_AUDIT_KEY") == 0);
  CHECK(KP_STATUS_MALFORMED_POLICY_DOCUMENT == 1700 && KP_STATUS_INVALID_GRANT_TOKEN == 1701);
  CHECK(KP_STATUS_INVALID_GRANT_ID == 1702 && KP_STATUS_AUDIT_UNAVAILABLE == 1800 && KP_STATUS_AUDIT_KEY == 1801);
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_INCORRECT_KEY_MATERIAL), "IncorrectKeyMaterialException") == 0);
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_INVALID_IMPORT_TOKEN), "InvalidImportTokenException") == 0);
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_EXPIRED_IMPORT_TOKEN), "ExpiredImportTokenException") == 0);
  CHECK(kp_status_exception_name(1706) == NULL && kp_status_exception_name(1802) == NULL);
  CHECK(kp_status_exception_name(1603) == NULL && kp_status_exception_name(1903) == NULL);
  CHECK(kp_status_exception_name(2000) == NULL && kp_status_exception_name(0xFFFFFFFFu) == NULL);
  CHECK(KP_STATUS_DRY_RUN_OPERATION == 1602);
  CHECK(strcmp(kp_status_name(KP_STATUS_DRY_RUN_OPERATION), "KP_STATUS_DRY_RUN_OPERATION") == 0);
  CHECK(strcmp(kp_status_exception_name(KP_STATUS_DRY_RUN_OPERATION), "DryRunOperationException") == 0);
  CHECK(kp_ciphertext_len(10) == 10 + KP_CIPHERTEXT_OVERHEAD);
  CHECK(kp_ciphertext_len(0) == 0 && kp_ciphertext_len((size_t)-1) == 0);
  CHECK(kp_plaintext_len(10 + KP_CIPHERTEXT_OVERHEAD) == 10);
  CHECK(kp_plaintext_len(KP_CIPHERTEXT_OVERHEAD) == 0 && kp_plaintext_len(3) == 0);
}

static void test_last_error(void) {
  char buf[256];
  char small[4] = {'x', 'x', 'x', 'x'};
  size_t len = 0;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_config_new(NULL));
  OK(kp_last_error_message(buf, sizeof buf, &len));
  CHECK(len == strlen(buf) && strstr(buf, "out is NULL") != NULL);
  CHECK(kp_last_error_length() == len);
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_last_error_message(small, sizeof small, &len));
  CHECK(len == strlen(buf) && small[0] == 'x');
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_last_error_message(NULL, 10, &len));
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_last_error_message(buf, (size_t)-1, &len));
  OK(kp_last_error_message(buf, sizeof buf, NULL));
}

static void test_config(void) {
  kp_config *config = NULL;
  kp_engine *engine = NULL;
  kp_manual_clock *clock = NULL;
  OK(kp_config_new(&config));
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_config_set_lock_policy(config, 7));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_config_set_region(config, NULL));
  EXPECT(KP_STATUS_INVALID_UTF8, kp_config_set_region(config, "\xff\xfe"));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_config_set_region(NULL, "x"));
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_config_set_worker_threads(config, 1000000));
  OK(kp_config_set_lock_policy(config, KP_LOCK_POLICY_WARN));
  /* Settings the engine refuses fail kp_engine_new with VALIDATION, and write nothing. */
  OK(kp_config_set_max_plaintext_bytes(config, 10));
  EXPECT(KP_STATUS_VALIDATION, kp_engine_new(config, &engine));
  CHECK(engine == NULL);
  OK(kp_config_set_max_plaintext_bytes(config, 4096));
  OK(kp_config_set_account_id(config, "not-an-account"));
  EXPECT(KP_STATUS_VALIDATION, kp_engine_new(config, &engine));
  OK(kp_config_set_account_id(config, "111122223333"));
  OK(kp_config_set_messages_per_derived_key(config, 0));
  EXPECT(KP_STATUS_VALIDATION, kp_engine_new(config, &engine));
  OK(kp_config_set_messages_per_derived_key(config, 1u << 20));
  OK(kp_manual_clock_new(1000, &clock));
  OK(kp_config_set_manual_clock(config, clock));
  OK(kp_config_set_manual_clock(config, NULL));
  /* A staleness bound needs a scheduler that follows the store within it. */
  OK(kp_config_set_max_staleness_ms(config, 1000));
  EXPECT(KP_STATUS_VALIDATION, kp_engine_new(config, &engine));
  CHECK(engine == NULL);
  OK(kp_config_set_max_staleness_ms(config, 0));
  OK(kp_config_set_scheduler_interval_ms(config, 3600000));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_engine_new(config, NULL));
  OK(kp_engine_new(config, &engine));
  OK(kp_engine_run_due_tasks(engine));
  kp_engine_free(engine);
  engine = NULL;
  OK(kp_engine_new(NULL, &engine)); /* defaults */
  CHECK(kp_engine_max_plaintext_bytes(engine) == 4096);
  kp_engine_free(engine);
  CHECK(kp_manual_clock_now_ms(clock) == 1000);
  OK(kp_manual_clock_advance_ms(clock, 500));
  CHECK(kp_manual_clock_now_ms(clock) == 1500);
  kp_manual_clock_free(clock);
  kp_config_free(config);
  kp_config_free(NULL);
  kp_engine_free(NULL);
  kp_manual_clock_free(NULL);
  kp_context_free(NULL);
  kp_record_free(NULL);
  kp_page_free(NULL);
  kp_secret_buffer_free(NULL);
}

static void test_handles(kp_engine *engine) {
  /* Something that is not a handle of the right type is refused, not used. */
  uint64_t fake[8] = {0};
  kp_context *context = NULL;
  kp_record *md = NULL;
  char misaligned_storage[64];
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_describe_key(NULL, "alias/x", &md));
  EXPECT(KP_STATUS_INVALID_HANDLE, kp_describe_key((const kp_engine *)fake, "alias/x", &md));
  OK(kp_context_new(&context));
  EXPECT(KP_STATUS_INVALID_HANDLE, kp_describe_key((const kp_engine *)context, "alias/x", &md));
  EXPECT(KP_STATUS_INVALID_HANDLE,
         kp_describe_key((const kp_engine *)(misaligned_storage + 1), "alias/x", &md));
  CHECK(kp_page_len((const kp_page *)context) == 0);
  CHECK(kp_record_string((const kp_record *)context, KP_FIELD_KEY_ID) == NULL);
  CHECK(kp_engine_worker_threads((const kp_engine *)fake) == 0);
  /* Freeing something of the wrong type leaves it alone. */
  kp_engine_free((kp_engine *)context);
  CHECK(kp_context_len(context) == 0);
  kp_context_free(context);
  CHECK(md == NULL);
  (void)engine;
}

static void test_freed_handles(void) {
  /* Reads freed memory on purpose: only when KP_TEST_UNSAFE=1 (plain builds). */
  kp_context *context = NULL;
  kp_engine *engine = NULL;
  kp_record *md = NULL;
  const char *unsafe = getenv("KP_TEST_UNSAFE");
  if (!unsafe || strcmp(unsafe, "1") != 0) return;
  OK(kp_context_new(&context));
  kp_context_free(context);
  EXPECT(KP_STATUS_INVALID_HANDLE, kp_context_add(context, "k", "v"));
  kp_context_free(context); /* a second free is detected and ignored */
  OK(kp_engine_new(NULL, &engine));
  kp_engine_free(engine);
  EXPECT(KP_STATUS_INVALID_HANDLE, kp_describe_key(engine, "alias/x", &md));
  CHECK(md == NULL);
}

static void test_keys(kp_engine *engine, kp_manual_clock *clock) {
  kp_tag tags[2] = {{"team", "payments"}, {"env", "test"}};
  kp_create_key_options options;
  kp_record *md = NULL, *status = NULL;
  kp_page *page = NULL, *next = NULL;
  char id[64], arn[256], marker[128];
  int64_t created = 0, deletion = 0, window = 0;
  bool flag = true;
  const char *json;

  memset(&options, 0, sizeof options);
  options.description = "orders";
  options.key_usage = "ENCRYPT_DECRYPT";
  options.key_spec = "SYMMETRIC_DEFAULT";
  options.origin = "AWS_KMS";
  options.tags = tags;
  options.tag_count = 2;
  OK(kp_create_key(engine, &options, &md));
  strcpy(id, field(md, KP_FIELD_KEY_ID));
  strcpy(arn, field(md, KP_FIELD_ARN));
  CHECK(strlen(id) == 36);
  CHECK(strncmp(arn, "arn:aws:kms:eu-west-1:123456789012:key/", 39) == 0);
  CHECK(strcmp(field(md, KP_FIELD_DESCRIPTION), "orders") == 0);
  CHECK(strcmp(field(md, KP_FIELD_KEY_STATE), "Enabled") == 0);
  CHECK(strcmp(field(md, KP_FIELD_KEY_SPEC), "SYMMETRIC_DEFAULT") == 0);
  CHECK(strcmp(field(md, KP_FIELD_KEY_USAGE), "ENCRYPT_DECRYPT") == 0);
  CHECK(strcmp(field(md, KP_FIELD_ORIGIN), "AWS_KMS") == 0);
  CHECK(strcmp(field(md, KP_FIELD_KEY_MANAGER), "CUSTOMER") == 0);
  CHECK(strcmp(field(md, KP_FIELD_AWS_ACCOUNT_ID), "123456789012") == 0);
  CHECK(strcmp(field(md, KP_FIELD_ENCRYPTION_ALGORITHMS), "SYMMETRIC_DEFAULT") == 0);
  CHECK(strlen(field(md, KP_FIELD_CURRENT_KEY_MATERIAL_ID)) == 64);
  CHECK(field(md, KP_FIELD_TAG_KEY) == NULL);
  json = field(md, KP_FIELD_JSON);
  CHECK(json && strstr(json, "\"KeyState\":\"Enabled\"") != NULL);
  CHECK(kp_record_int(md, KP_FIELD_CREATION_DATE, &created) && created == kp_manual_clock_now_ms(clock));
  CHECK(!kp_record_int(md, KP_FIELD_DELETION_DATE, &deletion));
  CHECK(!kp_record_int(md, KP_FIELD_KEY_ID, &deletion)); /* a string, not an int */
  CHECK(kp_record_bool(md, KP_FIELD_ENABLED, &flag) && flag);
  CHECK(kp_record_bool(md, KP_FIELD_MULTI_REGION, &flag) && !flag);
  CHECK(kp_record_bool(md, KP_FIELD_KEY_ROTATION_ENABLED, &flag) && !flag);
  CHECK(!kp_record_bool(md, KP_FIELD_ENABLED, NULL));
  kp_record_free(md);
  md = NULL;

  /* Options the engine refuses (and *out stays untouched). */
  memset(&options, 0, sizeof options);
  options.key_spec = "AES_512";
  EXPECT(KP_STATUS_VALIDATION, kp_create_key(engine, &options, &md));
  options.key_spec = NULL;
  /* multi_region = 1: a multi-Region primary key (mrk-<32 hex>); 2 is no boolean. */
  options.multi_region = 1;
  OK(kp_create_key(engine, &options, &md));
  CHECK(strncmp(field(md, KP_FIELD_KEY_ID), "mrk-", 4) == 0 && strlen(field(md, KP_FIELD_KEY_ID)) == 36);
  CHECK(kp_record_bool(md, KP_FIELD_MULTI_REGION, &flag) && flag);
  kp_record_free(md);
  md = NULL;
  options.multi_region = 2;
  EXPECT(KP_STATUS_INVALID_ARGUMENT, kp_create_key(engine, &options, &md));
  options.multi_region = 0;
  options.tag_count = 1;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_create_key(engine, &options, &md));
  tags[0].key = "aws:reserved";
  options.tags = tags;
  EXPECT(KP_STATUS_TAG, kp_create_key(engine, &options, &md));
  tags[0].key = "team";
  options.tag_count = (size_t)-1;
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_create_key(engine, &options, &md));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_create_key(engine, NULL, NULL));
  CHECK(md == NULL);

  /* Describe by id, ARN; failures. */
  OK(kp_describe_key(engine, arn, &md));
  CHECK(strcmp(field(md, KP_FIELD_KEY_ID), id) == 0);
  kp_record_free(md);
  EXPECT(KP_STATUS_NOT_FOUND, kp_describe_key(engine, "00000000-0000-4000-8000-000000000000", &md));
  EXPECT(KP_STATUS_NOT_FOUND, kp_describe_key(engine, "arn:aws:kms:eu-west-1:123456789012:nonsense", &md));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_describe_key(engine, NULL, &md));
  EXPECT(KP_STATUS_INVALID_UTF8, kp_describe_key(engine, "\xc3\x28", &md));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_describe_key(engine, id, NULL));

  OK(kp_update_key_description(engine, id, "orders v2"));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_update_key_description(engine, id, NULL));
  OK(kp_describe_key(engine, id, &md));
  CHECK(strcmp(field(md, KP_FIELD_DESCRIPTION), "orders v2") == 0);
  kp_record_free(md);

  /* ListKeys, a page at a time. */
  new_key(engine, marker);
  OK(kp_list_keys(engine, 1, NULL, &page));
  CHECK(kp_page_len(page) == 1 && kp_page_truncated(page) && kp_page_next_marker(page) != NULL);
  CHECK(kp_page_item(page, 1) == NULL);
  CHECK(strlen(kp_record_string(kp_page_item(page, 0), KP_FIELD_KEY_ID)) == 36);
  kp_record_free((kp_record *)kp_page_item(page, 0)); /* belongs to the page: ignored */
  CHECK(kp_page_item(page, 0) != NULL);
  strcpy(marker, kp_page_next_marker(page));
  OK(kp_list_keys(engine, 0, marker, &next));
  CHECK(kp_page_len(next) >= 1);
  kp_page_free(next);
  kp_page_free(page);
  EXPECT(KP_STATUS_INVALID_MARKER, kp_list_keys(engine, 10, "not-a-marker", &page));
  EXPECT(KP_STATUS_VALIDATION, kp_list_keys(engine, 5000, NULL, &page));

  /* Disable, enable. */
  OK(kp_disable_key(engine, id));
  OK(kp_describe_key(engine, id, &md));
  CHECK(strcmp(field(md, KP_FIELD_KEY_STATE), "Disabled") == 0);
  kp_record_free(md);
  OK(kp_enable_key(engine, id));
  md = NULL;

  /* Deletion: scheduled, cancelled, scheduled again and carried out when the clock says so. */
  EXPECT(KP_STATUS_VALIDATION, kp_schedule_key_deletion(engine, id, 3, NULL));
  OK(kp_schedule_key_deletion(engine, id, 7, &status));
  CHECK(kp_record_int(status, KP_FIELD_DELETION_DATE, &deletion));
  CHECK(deletion == kp_manual_clock_now_ms(clock) + 7LL * 24 * 3600 * 1000);
  CHECK(kp_record_int(status, KP_FIELD_PENDING_WINDOW_IN_DAYS, &window) && window == 7);
  CHECK(strcmp(field(status, KP_FIELD_KEY_STATE), "PendingDeletion") == 0);
  CHECK(strcmp(field(status, KP_FIELD_KEY_ID), arn) == 0);
  kp_record_free(status);
  EXPECT(KP_STATUS_INVALID_STATE, kp_enable_key(engine, id));
  OK(kp_cancel_key_deletion(engine, id, &status));
  CHECK(strcmp(field(status, KP_FIELD_KEY_ID), arn) == 0);
  kp_record_free(status);
  OK(kp_describe_key(engine, id, &md));
  CHECK(strcmp(field(md, KP_FIELD_KEY_STATE), "Disabled") == 0);
  kp_record_free(md);
  OK(kp_schedule_key_deletion(engine, id, 0, NULL));
  OK(kp_manual_clock_advance_ms(clock, 31ULL * 24 * 3600 * 1000));
  OK(kp_engine_run_due_tasks(engine));
  md = NULL;
  EXPECT(KP_STATUS_NOT_FOUND, kp_describe_key(engine, id, &md));
  EXPECT(KP_STATUS_NOT_FOUND, kp_enable_key(engine, id));
  EXPECT(KP_STATUS_NOT_FOUND, kp_disable_key(engine, id));
  EXPECT(KP_STATUS_NOT_FOUND, kp_cancel_key_deletion(engine, id, NULL));
  CHECK(md == NULL);
}

static void test_limit(void) {
  kp_config *config = NULL;
  kp_engine *engine = NULL;
  kp_record *md = NULL;
  OK(kp_config_new(&config));
  OK(kp_config_set_max_keys(config, 1));
  OK(kp_engine_new(config, &engine));
  OK(kp_create_key(engine, NULL, &md));
  kp_record_free(md);
  md = NULL;
  EXPECT(KP_STATUS_LIMIT_EXCEEDED, kp_create_key(engine, NULL, &md));
  CHECK(md == NULL);
  kp_engine_free(engine);
  kp_config_free(config);
}

static void test_aliases(kp_engine *engine) {
  char a[64], b[64];
  kp_page *page = NULL;
  kp_record *md = NULL;
  int64_t date = 0;
  new_key(engine, a);
  new_key(engine, b);
  OK(kp_create_alias(engine, "alias/orders", a));
  EXPECT(KP_STATUS_ALREADY_EXISTS, kp_create_alias(engine, "alias/orders", b));
  EXPECT(KP_STATUS_VALIDATION, kp_create_alias(engine, "orders", a));
  CHECK(strstr(kp_test_last_error(), "Alias must start with the prefix \"alias/\".") != NULL);
  EXPECT(KP_STATUS_NOT_AUTHORIZED, kp_create_alias(engine, "alias/aws/reserved", a));
  /* An alias as the target: the service refuses it before looking anything up. */
  EXPECT(KP_STATUS_VALIDATION, kp_create_alias(engine, "alias/other", "alias/missing"));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_create_alias(engine, "alias/other", NULL));
  OK(kp_describe_key(engine, "alias/orders", &md));
  CHECK(strcmp(field(md, KP_FIELD_KEY_ID), a) == 0);
  kp_record_free(md);
  OK(kp_describe_key(engine, "arn:aws:kms:eu-west-1:123456789012:alias/orders", &md));
  kp_record_free(md);
  OK(kp_list_aliases(engine, a, 0, NULL, &page));
  CHECK(kp_page_len(page) == 1 && !kp_page_truncated(page) && kp_page_next_marker(page) == NULL);
  CHECK(strcmp(kp_record_string(kp_page_item(page, 0), KP_FIELD_ALIAS_NAME), "alias/orders") == 0);
  CHECK(strcmp(kp_record_string(kp_page_item(page, 0), KP_FIELD_TARGET_KEY_ID), a) == 0);
  CHECK(strstr(kp_record_string(kp_page_item(page, 0), KP_FIELD_ALIAS_ARN), ":alias/orders") != NULL);
  CHECK(kp_record_int(kp_page_item(page, 0), KP_FIELD_LAST_UPDATED_DATE, &date));
  kp_page_free(page);
  OK(kp_update_alias(engine, "alias/orders", b));
  /* Every alias: alias/orders, and the integrated services' predefined alias/aws/... aliases,
     which have no target key and no dates until their managed key is first used. */
  OK(kp_list_aliases(engine, NULL, 100, NULL, &page));
  size_t with_target = 0, predefined = 0;
  for (size_t i = 0; i < kp_page_len(page); i++) {
    const kp_record *item = kp_page_item(page, i);
    const char *name = kp_record_string(item, KP_FIELD_ALIAS_NAME);
    const char *target = kp_record_string(item, KP_FIELD_TARGET_KEY_ID);
    if (strncmp(name, "alias/aws/", 10) == 0) {
      predefined++;
      CHECK(target == NULL && !kp_record_int(item, KP_FIELD_CREATION_DATE, &date));
    } else {
      with_target++;
      CHECK(strcmp(name, "alias/orders") == 0 && strcmp(target, b) == 0);
    }
  }
  CHECK(with_target == 1 && predefined > 0);
  kp_page_free(page);
  OK(kp_delete_alias(engine, "alias/orders"));
  EXPECT(KP_STATUS_NOT_FOUND, kp_delete_alias(engine, "alias/orders"));
  EXPECT(KP_STATUS_NOT_FOUND, kp_update_alias(engine, "alias/orders", a));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_delete_alias(engine, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_list_aliases(engine, NULL, 0, NULL, NULL));
}

static void test_tags(kp_engine *engine) {
  char id[64];
  kp_tag tags[3] = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
  const char *remove[2] = {"b", "zz"};
  kp_page *page = NULL;
  new_key(engine, id);
  OK(kp_tag_resource(engine, id, tags, 3));
  OK(kp_tag_resource(engine, id, NULL, 0));
  OK(kp_list_resource_tags(engine, id, 2, NULL, &page));
  CHECK(kp_page_len(page) == 2 && kp_page_truncated(page));
  CHECK(strcmp(kp_record_string(kp_page_item(page, 0), KP_FIELD_TAG_KEY), "a") == 0);
  CHECK(strcmp(kp_record_string(kp_page_item(page, 1), KP_FIELD_TAG_VALUE), "2") == 0);
  kp_page_free(page);
  OK(kp_untag_resource(engine, id, remove, 2));
  OK(kp_list_resource_tags(engine, id, 0, NULL, &page));
  CHECK(kp_page_len(page) == 2);
  CHECK(strcmp(kp_record_string(kp_page_item(page, 1), KP_FIELD_TAG_KEY), "c") == 0);
  kp_page_free(page);
  tags[0].key = "";
  EXPECT(KP_STATUS_TAG, kp_tag_resource(engine, id, tags, 1));
  tags[0].value = NULL;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_tag_resource(engine, id, tags, 1));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_tag_resource(engine, id, NULL, 2));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_untag_resource(engine, id, NULL, 1));
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_untag_resource(engine, id, remove, (size_t)1 << 40));
  EXPECT(KP_STATUS_NOT_FOUND, kp_list_resource_tags(engine, "alias/none", 0, NULL, &page));
}

static void test_rotation(kp_engine *engine) {
  char id[64];
  kp_record *status = NULL, *info = NULL;
  kp_page *page = NULL;
  bool enabled = false;
  int64_t period = 0, next = 0;
  uint8_t blob[200], plain[64], rotated[200];
  size_t blob_len = 0, plain_len = 0, rotated_len = 0;
  kp_encrypt_item enc;
  kp_decrypt_item dec;
  int i;
  new_key(engine, id);
  memset(&enc, 0, sizeof enc);
  enc.key_id = id;
  enc.plaintext = (const uint8_t *)"before rotation";
  enc.plaintext_len = 15;
  OK(kp_encrypt(engine, &enc, blob, sizeof blob, &blob_len, NULL));

  EXPECT(KP_STATUS_VALIDATION, kp_enable_key_rotation(engine, id, 30));
  OK(kp_enable_key_rotation(engine, id, 90));
  OK(kp_get_key_rotation_status(engine, id, &status));
  CHECK(kp_record_bool(status, KP_FIELD_KEY_ROTATION_ENABLED, &enabled) && enabled);
  CHECK(kp_record_int(status, KP_FIELD_ROTATION_PERIOD_IN_DAYS, &period) && period == 90);
  CHECK(kp_record_int(status, KP_FIELD_NEXT_ROTATION_DATE, &next));
  kp_record_free(status);
  OK(kp_rotate_key_on_demand(engine, id, &info));
  CHECK(strstr(field(info, KP_FIELD_KEY_ID), id) != NULL);
  kp_record_free(info);
  OK(kp_rotate_key_on_demand(engine, id, NULL));
  OK(kp_list_key_rotations(engine, id, 0, NULL, &page));
  CHECK(kp_page_len(page) == 2);
  CHECK(strcmp(kp_record_string(kp_page_item(page, 0), KP_FIELD_ROTATION_TYPE), "ON_DEMAND") == 0);
  CHECK(strlen(kp_record_string(kp_page_item(page, 0), KP_FIELD_KEY_MATERIAL_ID)) == 64);
  CHECK(kp_record_int(kp_page_item(page, 1), KP_FIELD_ROTATION_DATE, &next));
  kp_page_free(page);
  /* Old ciphertexts still decrypt; new ones use the new material. */
  memset(&dec, 0, sizeof dec);
  dec.ciphertext = blob;
  dec.ciphertext_len = blob_len;
  OK(kp_decrypt(engine, &dec, plain, sizeof plain, &plain_len, &info));
  CHECK(plain_len == 15 && memcmp(plain, "before rotation", 15) == 0);
  CHECK(strlen(field(info, KP_FIELD_KEY_MATERIAL_ID)) == 64);
  kp_record_free(info);
  OK(kp_encrypt(engine, &enc, rotated, sizeof rotated, &rotated_len, NULL));
  CHECK(rotated_len == blob_len && memcmp(rotated + 18, blob + 18, 4) != 0); /* key version */
  OK(kp_disable_key_rotation(engine, id));
  OK(kp_get_key_rotation_status(engine, id, &status));
  CHECK(kp_record_bool(status, KP_FIELD_KEY_ROTATION_ENABLED, &enabled) && !enabled);
  CHECK(!kp_record_int(status, KP_FIELD_ROTATION_PERIOD_IN_DAYS, &period));
  kp_record_free(status);
  for (i = 2; i < 25; i++) OK(kp_rotate_key_on_demand(engine, id, NULL));
  EXPECT(KP_STATUS_LIMIT_EXCEEDED, kp_rotate_key_on_demand(engine, id, NULL));
  EXPECT(KP_STATUS_NOT_FOUND, kp_get_key_rotation_status(engine, "alias/none", &status));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_list_key_rotations(engine, NULL, 0, NULL, &page));
}

static void test_single_calls(kp_engine *engine) {
  char a[64], b[64];
  kp_context *ctx = NULL, *other = NULL;
  kp_record *info = NULL;
  kp_secret_buffer *key = NULL;
  uint8_t plaintext[300], blob[400], out[400], moved[400], random[1024];
  static uint8_t big[16384], big_blob[16384 + 82], too_long[16385];
  size_t len = 0, blob_len = 0, moved_len = 0, i;
  kp_encrypt_item enc;
  kp_decrypt_item dec;
  kp_re_encrypt_item re;
  kp_data_key_item dk;

  new_key(engine, a);
  new_key(engine, b);
  OK(kp_create_alias(engine, "alias/single", a));
  OK(kp_context_new(&ctx));
  OK(kp_context_add(ctx, "tenant", "42"));
  OK(kp_context_add(ctx, "purpose", "test"));
  OK(kp_context_add(ctx, "tenant", "43")); /* replaces */
  CHECK(kp_context_len(ctx) == 2);
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_context_add(ctx, NULL, "v"));
  EXPECT(KP_STATUS_INVALID_UTF8, kp_context_add(ctx, "k", "\xff"));
  OK(kp_context_new(&other));
  for (i = 0; i < sizeof plaintext; i++) plaintext[i] = (uint8_t)i;

  /* Encrypt and decrypt, with a context, reporting the key. */
  memset(&enc, 0, sizeof enc);
  enc.key_id = "alias/single";
  enc.plaintext = plaintext;
  enc.plaintext_len = sizeof plaintext;
  enc.context = ctx;
  OK(kp_encrypt(engine, &enc, blob, sizeof blob, &blob_len, &info));
  CHECK(blob_len == kp_ciphertext_len(sizeof plaintext) && blob[0] == 1);
  CHECK(strstr(field(info, KP_FIELD_KEY_ID), a) != NULL);
  CHECK(strcmp(field(info, KP_FIELD_ENCRYPTION_ALGORITHM), "SYMMETRIC_DEFAULT") == 0);
  kp_record_free(info);
  memset(&dec, 0, sizeof dec);
  dec.ciphertext = blob;
  dec.ciphertext_len = blob_len;
  dec.context = ctx;
  dec.key_id = a;
  dec.encryption_algorithm = KP_ENCRYPTION_ALGORITHM_SYMMETRIC_DEFAULT;
  OK(kp_decrypt(engine, &dec, out, sizeof out, &len, NULL));
  CHECK(len == sizeof plaintext && memcmp(out, plaintext, len) == 0);

  /* Decrypt's failures: context, key, tampering, length; nothing written on failure but, once
   * the engine opened the blob in place, zeros over the plaintext's room. */
  memset(out, 0xAA, sizeof out);
  len = 12345;
  dec.context = other;
  EXPECT(KP_STATUS_INVALID_CIPHERTEXT, kp_decrypt(engine, &dec, out, sizeof out, &len, NULL));
  CHECK(len == 12345 && out[0] == 0 && out[sizeof plaintext - 1] == 0 && out[sizeof plaintext] == 0xAA);
  memset(out, 0xAA, sizeof out);
  dec.context = ctx;
  dec.key_id = b;
  EXPECT(KP_STATUS_INCORRECT_KEY, kp_decrypt(engine, &dec, out, sizeof out, &len, NULL));
  dec.key_id = NULL;
  blob[100] ^= 1;
  EXPECT(KP_STATUS_INVALID_CIPHERTEXT, kp_decrypt(engine, &dec, out, sizeof out, &len, NULL));
  blob[100] ^= 1;
  CHECK(out[0] == 0);
  memset(out, 0xAA, sizeof out);
  dec.ciphertext_len = 10;
  EXPECT(KP_STATUS_INVALID_CIPHERTEXT, kp_decrypt(engine, &dec, out, sizeof out, &len, NULL));
  dec.ciphertext_len = blob_len;
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_decrypt(engine, &dec, out, sizeof plaintext - 1, &len, NULL));
  CHECK(len == 12345 && out[0] == 0xAA);
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_decrypt(engine, &dec, NULL, sizeof out, &len, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_decrypt(engine, &dec, out, sizeof out, NULL, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_decrypt(engine, NULL, out, sizeof out, &len, NULL));
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_decrypt(engine, &dec, out, (size_t)-1, &len, NULL));
  dec.ciphertext_len = (size_t)-1;
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_decrypt(engine, &dec, out, sizeof out, &len, NULL));
  dec.ciphertext_len = blob_len;
  dec.ciphertext = NULL;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_decrypt(engine, &dec, out, sizeof out, &len, NULL));
  dec.ciphertext = blob;
  dec.encryption_algorithm = 99;
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_decrypt(engine, &dec, out, sizeof out, &len, NULL));
  dec.encryption_algorithm = 0;
  dec.context = (const kp_context *)engine;
  EXPECT(KP_STATUS_INVALID_HANDLE, kp_decrypt(engine, &dec, out, sizeof out, &len, NULL));
  dec.context = ctx;
  CHECK(len == 12345 && out[0] == 0xAA);

  /* Encrypt's failures. */
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_encrypt(engine, &enc, blob, blob_len - 1, &len, NULL));
  enc.plaintext_len = 0;
  EXPECT(KP_STATUS_VALIDATION, kp_encrypt(engine, &enc, blob, sizeof blob, &len, NULL));
  /* A plaintext really that long (a length beyond its buffer could reach `blob`, an overlap). */
  enc.plaintext = too_long;
  enc.plaintext_len = sizeof too_long;
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_encrypt(engine, &enc, blob, sizeof blob, &len, NULL));
  enc.plaintext = plaintext;
  enc.plaintext_len = sizeof plaintext;
  enc.encryption_algorithm = KP_ENCRYPTION_ALGORITHM_RSAES_OAEP_SHA_256;
  EXPECT(KP_STATUS_INVALID_KEY_USAGE, kp_encrypt(engine, &enc, blob, sizeof blob, &len, NULL));
  enc.encryption_algorithm = 0;
  enc.key_id = "alias/missing";
  EXPECT(KP_STATUS_NOT_FOUND, kp_encrypt(engine, &enc, blob, sizeof blob, &len, NULL));
  enc.key_id = NULL;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_encrypt(engine, &enc, blob, sizeof blob, &len, NULL));
  enc.key_id = a;
  OK(kp_disable_key(engine, a));
  EXPECT(KP_STATUS_DISABLED, kp_encrypt(engine, &enc, blob, sizeof blob, &len, NULL));
  OK(kp_enable_key(engine, a));

  /* The 16 KiB plaintext limit configured for this engine. */
  memset(big, 7, sizeof big);
  enc.plaintext = big;
  enc.plaintext_len = 16384;
  OK(kp_encrypt(engine, &enc, big_blob, sizeof big_blob, &len, NULL));
  CHECK(len == sizeof big_blob);
  enc.plaintext = plaintext;
  enc.plaintext_len = sizeof plaintext;

  /* ReEncrypt into another key and context. */
  memset(&re, 0, sizeof re);
  re.ciphertext = blob;
  re.ciphertext_len = blob_len;
  re.source_context = ctx;
  re.destination_key_id = b;
  re.destination_context = other;
  OK(kp_re_encrypt(engine, &re, moved, sizeof moved, &moved_len, &info));
  CHECK(moved_len == blob_len);
  CHECK(strstr(field(info, KP_FIELD_KEY_ID), b) != NULL);
  CHECK(strstr(field(info, KP_FIELD_SOURCE_KEY_ID), a) != NULL);
  CHECK(strlen(field(info, KP_FIELD_SOURCE_KEY_MATERIAL_ID)) == 64);
  CHECK(strlen(field(info, KP_FIELD_DESTINATION_KEY_MATERIAL_ID)) == 64);
  CHECK(strcmp(field(info, KP_FIELD_SOURCE_ENCRYPTION_ALGORITHM), "SYMMETRIC_DEFAULT") == 0);
  CHECK(strcmp(field(info, KP_FIELD_DESTINATION_ENCRYPTION_ALGORITHM), "SYMMETRIC_DEFAULT") == 0);
  kp_record_free(info);
  dec.ciphertext = moved;
  dec.ciphertext_len = moved_len;
  dec.context = other;
  OK(kp_decrypt(engine, &dec, out, sizeof out, &len, NULL));
  CHECK(len == sizeof plaintext && memcmp(out, plaintext, len) == 0);
  re.destination_key_id = NULL;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_re_encrypt(engine, &re, moved, sizeof moved, &moved_len, NULL));
  re.destination_key_id = b;
  re.source_context = NULL;
  EXPECT(KP_STATUS_INVALID_CIPHERTEXT, kp_re_encrypt(engine, &re, moved, sizeof moved, &moved_len, NULL));
  re.source_context = ctx;
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_re_encrypt(engine, &re, moved, 5, &moved_len, NULL));

  /* GenerateDataKey: the plaintext key in a secret buffer, the same key inside the blob. */
  memset(&dk, 0, sizeof dk);
  dk.key_id = a;
  dk.context = ctx;
  dk.key_spec = KP_DATA_KEY_SPEC_AES_256;
  OK(kp_generate_data_key(engine, &dk, &key, blob, sizeof blob, &blob_len, &info));
  CHECK(kp_secret_buffer_len(key) == 32 && blob_len == kp_ciphertext_len(32));
  CHECK(strstr(field(info, KP_FIELD_KEY_ID), a) != NULL && strlen(field(info, KP_FIELD_KEY_MATERIAL_ID)) == 64);
  kp_record_free(info);
  dec.ciphertext = blob;
  dec.ciphertext_len = blob_len;
  dec.context = ctx;
  OK(kp_decrypt(engine, &dec, out, sizeof out, &len, NULL));
  CHECK(len == 32 && memcmp(out, kp_secret_buffer_data(key), 32) == 0);
  kp_secret_buffer_free(key);
  key = NULL;
  dk.key_spec = KP_DATA_KEY_SPEC_AES_128;
  OK(kp_generate_data_key(engine, &dk, &key, blob, sizeof blob, &blob_len, NULL));
  CHECK(kp_secret_buffer_len(key) == 16);
  kp_secret_buffer_free(key);
  key = NULL;
  dk.key_spec = 0;
  dk.number_of_bytes = 64;
  OK(kp_generate_data_key_without_plaintext(engine, &dk, blob, sizeof blob, &blob_len, &info));
  CHECK(blob_len == kp_ciphertext_len(64) && strlen(field(info, KP_FIELD_KEY_MATERIAL_ID)) == 64);
  kp_record_free(info);
  dk.key_spec = KP_DATA_KEY_SPEC_AES_256; /* both given */
  EXPECT(KP_STATUS_VALIDATION, kp_generate_data_key(engine, &dk, &key, blob, sizeof blob, &blob_len, NULL));
  dk.key_spec = 0;
  dk.number_of_bytes = 0; /* neither given */
  EXPECT(KP_STATUS_VALIDATION, kp_generate_data_key_without_plaintext(engine, &dk, blob, sizeof blob, &blob_len, NULL));
  dk.number_of_bytes = 2000;
  EXPECT(KP_STATUS_VALIDATION, kp_generate_data_key(engine, &dk, &key, blob, sizeof blob, &blob_len, NULL));
  dk.number_of_bytes = 0;
  dk.key_spec = 9;
  EXPECT(KP_STATUS_INVALID_ENUM_VALUE, kp_generate_data_key(engine, &dk, &key, blob, sizeof blob, &blob_len, NULL));
  dk.key_spec = KP_DATA_KEY_SPEC_AES_256;
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_generate_data_key(engine, &dk, &key, blob, 50, &blob_len, NULL));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_generate_data_key(engine, &dk, NULL, blob, sizeof blob, &blob_len, NULL));
  CHECK(key == NULL);

  /* GenerateRandom. */
  memset(random, 0, sizeof random);
  OK(kp_generate_random(engine, 1024, random, sizeof random));
  for (i = 0, len = 0; i < sizeof random; i++) len += random[i] != 0;
  CHECK(len > 900);
  EXPECT(KP_STATUS_VALIDATION, kp_generate_random(engine, 0, random, sizeof random));
  EXPECT(KP_STATUS_VALIDATION, kp_generate_random(engine, 1025, random, sizeof random));
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_generate_random(engine, 16, random, 8));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_generate_random(engine, 16, NULL, 16));

  /* Secret buffers. */
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_secret_buffer_new(engine, 0, &key));
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_secret_buffer_new(engine, KP_MAX_SECRET_BUFFER + 1, &key));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_secret_buffer_new(NULL, 10, &key));
  OK(kp_secret_buffer_new(engine, 100, &key));
  CHECK(kp_secret_buffer_len(key) == 100 && kp_secret_buffer_data(key)[99] == 0);
  kp_secret_buffer_free(key);

  OK(kp_delete_alias(engine, "alias/single"));
  kp_context_free(ctx);
  kp_context_free(other);
}

#define N 200

static void test_batches(kp_engine *engine) {
  char a[64], b[64];
  /* Room for a blob under a key of any kind: the sizes calls answer what always suffices. */
  static uint8_t plain[N][64], blobs[N][64 + 82 + KP_CIPHERTEXT_MAX_WRAPPING_OVERHEAD],
      opened[N][64], moved[N][64 + 82 + KP_CIPHERTEXT_MAX_WRAPPING_OVERHEAD], random[N][32];
  static uint8_t dk_blobs[N][1024 + 82 + KP_CIPHERTEXT_MAX_WRAPPING_OVERHEAD];
  kp_encrypt_item enc[N];
  kp_decrypt_item dec[N];
  kp_re_encrypt_item re[N];
  kp_data_key_item dk[N];
  kp_out out[N];
  size_t sizes[N], key_lens[N], blob_lens[N], total = 0, total_keys = 0, total_blobs = 0, offset, i;
  kp_context *ctx = NULL;
  kp_secret_buffer *keys = NULL;
  uint8_t dk_plain[1024];
  size_t dk_plain_len = 0;

  new_key(engine, a);
  new_key(engine, b);
  OK(kp_context_new(&ctx));
  OK(kp_context_add(ctx, "batch", "yes"));

  memset(enc, 0, sizeof enc);
  for (i = 0; i < N; i++) {
    memset(plain[i], (int)i, sizeof plain[i]);
    enc[i].key_id = a;
    enc[i].plaintext = plain[i];
    enc[i].plaintext_len = 1 + i % 64;
    enc[i].context = i % 2 ? ctx : NULL;
  }
  OK(kp_encrypt_batch_sizes(enc, N, sizes, &total));
  for (i = 0, offset = 0; i < N; i++) {
    /* Enough for a key in an external key store; a keyplane key writes kp_ciphertext_len. */
    CHECK(sizes[i] == kp_ciphertext_max_len(1 + i % 64));
    CHECK(sizes[i] == 1 + i % 64 + 82 + KP_CIPHERTEXT_MAX_WRAPPING_OVERHEAD);
    offset += sizes[i];
  }
  CHECK(total == offset);
  OK(kp_encrypt_batch_sizes(enc, N, NULL, NULL));
  for (i = 0; i < N; i++) {
    out[i].data = blobs[i];
    out[i].capacity = sizes[i];
    out[i].len = 0;
    out[i].status = 77;
  }
  OK(kp_encrypt_batch(engine, enc, N, out));
  for (i = 0; i < N; i++) {
    CHECK(out[i].status == KP_STATUS_OK && out[i].len == kp_ciphertext_len(1 + i % 64));
  }
  /* kp_ciphertext_len is exact for a keyplane key: a buffer of just that size works. */
  for (i = 0; i < N; i++) out[i].capacity = kp_ciphertext_len(1 + i % 64);
  OK(kp_encrypt_batch(engine, enc, N, out));
  for (i = 0; i < N; i++) CHECK(out[i].len == out[i].capacity);

  /* Items fail on their own: a missing key, a NULL key id, a short buffer, a bad enum. */
  enc[3].key_id = "alias/missing";
  enc[5].key_id = NULL;
  out[7].capacity = 10;
  enc[9].encryption_algorithm = 1234;
  for (i = 0; i < N; i++) out[i].status = 77;
  EXPECT(KP_STATUS_BATCH_ITEMS_FAILED, kp_encrypt_batch(engine, enc, N, out));
  CHECK(strstr(kp_test_last_error(), "4 of 200 items failed; first: item 3") != NULL);
  CHECK(out[3].status == KP_STATUS_NOT_FOUND);
  CHECK(out[5].status == KP_STATUS_NULL_PARAMETER);
  /* The least size needed (that of a keyplane key's blob). */
  CHECK(out[7].status == KP_STATUS_BUFFER_TOO_SMALL && out[7].len == kp_ciphertext_len(1 + 7 % 64));
  CHECK(out[9].status == KP_STATUS_INVALID_ENUM_VALUE);
  for (i = 10; i < N; i++) CHECK(out[i].status == KP_STATUS_OK);
  enc[3].key_id = a;
  enc[5].key_id = a;
  out[7].capacity = sizes[7];
  enc[9].encryption_algorithm = 0;
  OK(kp_encrypt_batch(engine, enc, N, out));

  /* Whole-call argument errors write nothing. */
  out[0].status = 77;
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_encrypt_batch(engine, NULL, N, out));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_encrypt_batch(engine, enc, N, NULL));
  EXPECT(KP_STATUS_INVALID_LENGTH, kp_encrypt_batch(engine, enc, (size_t)KP_MAX_BATCH_ITEMS + 1, out));
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_encrypt_batch(NULL, enc, N, out));
  CHECK(out[0].status == 77);
  OK(kp_encrypt_batch(engine, NULL, 0, NULL)); /* an empty batch does nothing */
  out[0].status = KP_STATUS_OK;

  /* Decrypt them all. */
  memset(dec, 0, sizeof dec);
  for (i = 0; i < N; i++) {
    dec[i].ciphertext = blobs[i];
    dec[i].ciphertext_len = out[i].len;
    dec[i].context = enc[i].context;
  }
  OK(kp_decrypt_batch_sizes(dec, N, sizes, &total));
  for (i = 0; i < N; i++) {
    CHECK(sizes[i] == 1 + i % 64);
    out[i].data = opened[i];
    out[i].capacity = sizes[i];
  }
  OK(kp_decrypt_batch(engine, dec, N, out));
  for (i = 0; i < N; i++) {
    CHECK(out[i].status == KP_STATUS_OK && out[i].len == 1 + i % 64);
    CHECK(memcmp(opened[i], plain[i], out[i].len) == 0);
  }
  dec[1].context = NULL; /* wrong context */
  dec[2].ciphertext_len = 5;
  EXPECT(KP_STATUS_BATCH_ITEMS_FAILED, kp_decrypt_batch(engine, dec, N, out));
  CHECK(out[1].status == KP_STATUS_INVALID_CIPHERTEXT && out[2].status == KP_STATUS_INVALID_CIPHERTEXT);
  CHECK(out[0].status == KP_STATUS_OK);
  dec[1].context = ctx;
  dec[2].ciphertext_len = 82 + 3;

  /* ReEncrypt them all under b. */
  memset(re, 0, sizeof re);
  for (i = 0; i < N; i++) {
    re[i].ciphertext = blobs[i];
    re[i].ciphertext_len = dec[i].ciphertext_len;
    re[i].source_context = dec[i].context;
    re[i].destination_key_id = b;
    re[i].destination_context = ctx;
  }
  OK(kp_re_encrypt_batch_sizes(re, N, sizes, NULL));
  for (i = 0; i < N; i++) {
    CHECK(sizes[i] == kp_ciphertext_max_len(1 + i % 64) && sizes[i] >= re[i].ciphertext_len);
    out[i].data = moved[i];
    out[i].capacity = sizes[i];
  }
  OK(kp_re_encrypt_batch(engine, re, N, out));
  for (i = 0; i < N; i++) {
    dec[i].ciphertext = moved[i];
    dec[i].ciphertext_len = out[i].len;
    dec[i].context = ctx;
    dec[i].key_id = b;
    out[i].data = opened[i];
    out[i].capacity = sizeof opened[i];
  }
  OK(kp_decrypt_batch(engine, dec, N, out));
  for (i = 0; i < N; i++) CHECK(memcmp(opened[i], plain[i], out[i].len) == 0);
  for (i = 0; i < N; i++) {
    out[i].data = moved[i];
    out[i].capacity = sizeof moved[i];
  }
  re[4].destination_key_id = "alias/missing";
  EXPECT(KP_STATUS_BATCH_ITEMS_FAILED, kp_re_encrypt_batch(engine, re, N, out));
  CHECK(out[4].status == KP_STATUS_NOT_FOUND);

  /* Data keys: plaintexts into one secret buffer, at prefix-sum offsets. */
  memset(dk, 0, sizeof dk);
  for (i = 0; i < N; i++) {
    dk[i].key_id = a;
    dk[i].context = ctx;
    if (i % 3 == 0) dk[i].key_spec = KP_DATA_KEY_SPEC_AES_256;
    else if (i % 3 == 1) dk[i].key_spec = KP_DATA_KEY_SPEC_AES_128;
    else dk[i].number_of_bytes = (uint32_t)(1 + i);
  }
  dk[N - 1].key_spec = 0; /* invalid: neither spec nor length */
  dk[N - 1].number_of_bytes = 0;
  OK(kp_generate_data_key_batch_sizes(dk, N, key_lens, blob_lens, &total_keys, &total_blobs));
  CHECK(key_lens[0] == 32 && key_lens[1] == 16 && key_lens[2] == 3 && key_lens[N - 1] == 0);
  CHECK(blob_lens[0] == kp_ciphertext_max_len(32) && blob_lens[N - 1] == 0);
  OK(kp_secret_buffer_new(engine, total_keys, &keys));
  for (i = 0; i < N; i++) {
    out[i].data = dk_blobs[i];
    out[i].capacity = sizeof dk_blobs[i];
  }
  EXPECT(KP_STATUS_BATCH_ITEMS_FAILED, kp_generate_data_key_batch(engine, dk, N, keys, out));
  CHECK(out[N - 1].status == KP_STATUS_VALIDATION);
  dec[0].key_id = NULL;
  dec[0].context = ctx;
  for (i = 0, offset = 0; i < N - 1; i++) {
    CHECK(out[i].status == KP_STATUS_OK && out[i].len == kp_ciphertext_len(key_lens[i]));
    CHECK(out[i].len <= blob_lens[i]);
    if (i % 17 == 0) {
      dec[0].ciphertext = dk_blobs[i];
      dec[0].ciphertext_len = out[i].len;
      OK(kp_decrypt(engine, &dec[0], dk_plain, sizeof dk_plain, &dk_plain_len, NULL));
      CHECK(dk_plain_len == key_lens[i]);
      CHECK(memcmp(dk_plain, kp_secret_buffer_data(keys) + offset, dk_plain_len) == 0);
    }
    offset += key_lens[i];
  }
  kp_secret_buffer_free(keys);
  OK(kp_secret_buffer_new(engine, total_keys - 1, &keys));
  EXPECT(KP_STATUS_BUFFER_TOO_SMALL, kp_generate_data_key_batch(engine, dk, N, keys, out));
  EXPECT(KP_STATUS_INVALID_HANDLE, kp_generate_data_key_batch(engine, dk, N, (kp_secret_buffer *)ctx, out));
  kp_secret_buffer_free(keys);
  dk[N - 1].number_of_bytes = 8;
  OK(kp_generate_data_key_without_plaintext_batch(engine, dk, N, out));
  for (i = 0; i < N; i++) CHECK(out[i].len == kp_ciphertext_len(i == N - 1 ? 8 : key_lens[i]));

  /* Random bytes: each output's capacity is the number wanted. */
  for (i = 0; i < N; i++) {
    out[i].data = random[i];
    out[i].capacity = 1 + i % 32;
  }
  OK(kp_generate_random_batch(engine, out, N));
  for (i = 0; i < N; i++) CHECK(out[i].status == KP_STATUS_OK && out[i].len == 1 + i % 32);
  out[0].capacity = 0;
  out[1].data = NULL;
  EXPECT(KP_STATUS_BATCH_ITEMS_FAILED, kp_generate_random_batch(engine, out, N));
  CHECK(out[0].status == KP_STATUS_VALIDATION && out[1].status == KP_STATUS_NULL_PARAMETER);
  CHECK(out[2].status == KP_STATUS_OK);
  EXPECT(KP_STATUS_NULL_PARAMETER, kp_generate_random_batch(engine, NULL, 3));

  kp_context_free(ctx);
}

int main(void) {
  kp_manual_clock *clock = NULL;
  kp_engine *engine;
  test_version_and_statuses();
  test_last_error();
  test_config();
  test_limit();
  OK(kp_manual_clock_new(1700000000000LL, &clock));
  engine = new_engine(clock);
  test_handles(engine);
  test_freed_handles();
  test_keys(engine, clock);
  test_aliases(engine);
  test_tags(engine);
  test_rotation(engine);
  test_single_calls(engine);
  test_batches(engine);
  kp_engine_free(engine);
  kp_manual_clock_free(clock);
  printf("test_api: %d checks passed\n", kp_test_checks);
  printf("%d passed, 0 failed\n", 1);
  return 0;
}
