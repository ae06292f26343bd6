// libkeyplane from C++, as a C++ service would use it: RAII owners for every handle (so nothing
// leaks on an early return or an exception), exceptions carrying the status and the message, and
// one engine shared by std::threads. Builds as C++11 and later against the installed library.
#include <keyplane.h>

#include <cstdint>
#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kp {

// A failed call: its status and the library's message.
class Error : public std::runtime_error {
 public:
  Error(kp_status status, const std::string& message)
      : std::runtime_error(std::string(kp_status_name(status)) + ": " + message), status_(status) {}
  kp_status status() const { return status_; }

 private:
  kp_status status_;
};

inline std::string last_error() {
  std::string message(kp_last_error_length() + 1, '\0');
  size_t len = 0;
  if (kp_last_error_message(&message[0], message.size(), &len) != KP_STATUS_OK) return "?";
  message.resize(len);
  return message;
}

inline void check(kp_status status) {
  if (status != KP_STATUS_OK) throw Error(status, last_error());
}

// unique_ptr with the matching kp_*_free for each handle type.
template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
template <typename T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, Deleter<T, Free>>;

using RecordPtr = Owned<kp_record, kp_record_free>;
using SecretPtr = Owned<kp_secret_buffer, kp_secret_buffer_free>;

class Record {
 public:
  explicit Record(kp_record* r) : r_(r) {}
  std::string str(kp_field f) const {
    const char* s = kp_record_string(r_.get(), f);
    if (!s) throw std::out_of_range("record has no such string field");
    return s;
  }
  bool has(kp_field f) const { return kp_record_string(r_.get(), f) != nullptr; }

 private:
  RecordPtr r_;
};

class Context {
 public:
  Context() {
    kp_context* c = nullptr;
    check(kp_context_new(&c));
    c_.reset(c);
  }
  Context& add(const std::string& k, const std::string& v) {
    check(kp_context_add(c_.get(), k.c_str(), v.c_str()));
    return *this;
  }
  const kp_context* get() const { return c_.get(); }

 private:
  Owned<kp_context, kp_context_free> c_;
};

class Engine {
 public:
  explicit Engine(size_t max_plaintext = 4096) {
    kp_config* raw = nullptr;
    check(kp_config_new(&raw));
    Owned<kp_config, kp_config_free> config(raw);
    check(kp_config_set_max_plaintext_bytes(config.get(), max_plaintext));
    kp_engine* e = nullptr;
    check(kp_engine_new(config.get(), &e));
    e_.reset(e);
  }
  const kp_engine* get() const { return e_.get(); }

  Record create_key(const std::string& description) {
    kp_create_key_options o;
    std::memset(&o, 0, sizeof o);
    o.description = description.c_str();
    kp_record* r = nullptr;
    check(kp_create_key(get(), &o, &r));
    return Record(r);
  }

  std::vector<uint8_t> encrypt(const std::string& key, const std::vector<uint8_t>& pt,
                               const Context* ctx = nullptr) const {
    kp_encrypt_item item;
    std::memset(&item, 0, sizeof item);
    item.key_id = key.c_str();
    item.plaintext = pt.data();
    item.plaintext_len = pt.size();
    item.context = ctx ? ctx->get() : nullptr;
    std::vector<uint8_t> blob(kp_ciphertext_len(pt.size()));
    size_t len = 0;
    check(kp_encrypt(get(), &item, blob.data(), blob.size(), &len, nullptr));
    blob.resize(len);
    return blob;
  }

  std::vector<uint8_t> decrypt(const std::vector<uint8_t>& blob, const Context* ctx = nullptr) const {
    kp_decrypt_item item;
    std::memset(&item, 0, sizeof item);
    item.ciphertext = blob.data();
    item.ciphertext_len = blob.size();
    item.context = ctx ? ctx->get() : nullptr;
    std::vector<uint8_t> pt(kp_plaintext_len(blob.size()));
    size_t len = 0;
    check(kp_decrypt(get(), &item, pt.data(), pt.size(), &len, nullptr));
    pt.resize(len);
    return pt;
  }

  // Encrypts many plaintexts; throws if any item failed.
  std::vector<std::vector<uint8_t>> encrypt_batch(const std::string& key,
                                                  const std::vector<std::vector<uint8_t>>& pts) const {
    std::vector<kp_encrypt_item> items(pts.size());
    std::vector<kp_out> outs(pts.size());
    std::vector<std::vector<uint8_t>> blobs(pts.size());
    for (size_t i = 0; i < pts.size(); i++) {
      std::memset(&items[i], 0, sizeof items[i]);
      items[i].key_id = key.c_str();
      items[i].plaintext = pts[i].data();
      items[i].plaintext_len = pts[i].size();
      blobs[i].resize(kp_ciphertext_len(pts[i].size()));
      outs[i].data = blobs[i].data();
      outs[i].capacity = blobs[i].size();
    }
    check(kp_encrypt_batch(get(), items.data(), items.size(), outs.data()));
    for (size_t i = 0; i < pts.size(); i++) blobs[i].resize(outs[i].len);
    return blobs;
  }

  // A data key: plaintext in locked memory owned by the SecretPtr, and its encrypted copy.
  std::pair<SecretPtr, std::vector<uint8_t>> data_key(const std::string& key) const {
    kp_data_key_item item;
    std::memset(&item, 0, sizeof item);
    item.key_id = key.c_str();
    item.key_spec = KP_DATA_KEY_SPEC_AES_256;
    std::vector<uint8_t> blob(kp_ciphertext_len(32));
    size_t len = 0;
    kp_secret_buffer* secret = nullptr;
    check(kp_generate_data_key(get(), &item, &secret, blob.data(), blob.size(), &len, nullptr));
    return std::make_pair(SecretPtr(secret), blob);
  }

 private:
  Owned<kp_engine, kp_engine_free> e_;
};

}  // namespace kp

#define REQUIRE(cond)                                                              \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::cerr << __FILE__ << ":" << __LINE__ << ": REQUIRE failed: " #cond "\n"; \
      return 1;                                                                    \
    }                                                                              \
  } while (0)

int main() {
  kp::Engine engine(16384);
  kp::Record key = engine.create_key("c++");
  const std::string id = key.str(KP_FIELD_KEY_ID);
  REQUIRE(key.str(KP_FIELD_DESCRIPTION) == "c++");
  REQUIRE(!key.has(KP_FIELD_TAG_KEY));
  REQUIRE(std::string(kp_version()) == KP_VERSION);

  // Round trips, with and without a context; a 16 KiB plaintext.
  kp::Context ctx;
  ctx.add("service", "orders");
  std::vector<uint8_t> pt(16384, 0x5a);
  REQUIRE(engine.decrypt(engine.encrypt(id, pt, &ctx), &ctx) == pt);

  // Errors surface as exceptions with the status; the RAII owners clean up on the way out.
  bool thrown = false;
  try {
    engine.decrypt(engine.encrypt(id, pt, &ctx));  // context missing
  } catch (const kp::Error& e) {
    thrown = e.status() == KP_STATUS_INVALID_CIPHERTEXT &&
             std::string(e.what()).find("KP_STATUS_INVALID_CIPHERTEXT") == 0;
  }
  REQUIRE(thrown);
  thrown = false;
  try {
    engine.encrypt("alias/none", pt);
  } catch (const kp::Error& e) {
    thrown = e.status() == KP_STATUS_NOT_FOUND;
  }
  REQUIRE(thrown);

  // Data keys in secret buffers (zeroed when the SecretPtr goes).
  {
    std::pair<kp::SecretPtr, std::vector<uint8_t>> dk = engine.data_key(id);
    std::vector<uint8_t> again = engine.decrypt(dk.second);
    REQUIRE(again.size() == kp_secret_buffer_len(dk.first.get()));
    REQUIRE(std::memcmp(again.data(), kp_secret_buffer_data(dk.first.get()), again.size()) == 0);
  }

  // One engine, many std::threads, batches and single calls.
  std::vector<std::thread> threads;
  std::vector<int> ok(6, 0);
  for (int t = 0; t < 6; t++) {
    threads.emplace_back([&engine, &id, &ok, t]() {
      try {
        std::vector<std::vector<uint8_t>> pts;
        for (int i = 0; i < 100; i++) pts.push_back(std::vector<uint8_t>(1 + (i * 7 + t) % 500, (uint8_t)i));
        for (int round = 0; round < 10; round++) {
          std::vector<std::vector<uint8_t>> blobs = engine.encrypt_batch(id, pts);
          for (size_t i = 0; i < pts.size(); i += 9) {
            if (engine.decrypt(blobs[i]) != pts[i]) return;
          }
        }
        ok[t] = 1;
      } catch (const std::exception& e) {
        std::cerr << "thread " << t << ": " << e.what() << "\n";
      }
    });
  }
  for (size_t t = 0; t < threads.size(); t++) threads[t].join();
  for (size_t t = 0; t < ok.size(); t++) REQUIRE(ok[t] == 1);

  // Move semantics: owners transfer, never double-free.
  kp::Engine moved_from(4096);
  std::unique_ptr<kp::Engine> holder(new kp::Engine(4096));
  REQUIRE(holder->get() != nullptr);
  holder.reset();

  std::cout << "test_raii: engine, records, contexts, secrets, batches, 6 threads\n";
  std::cout << "1 passed, 0 failed\n";
  return 0;
}
