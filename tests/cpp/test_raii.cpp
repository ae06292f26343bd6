// libkeyplane from C++, as a C++ service would use it: RAII owners for every handle (so nothing
// leaks on an early return or an exception), exceptions carrying the status and the message, one
// engine shared by std::threads, engine handles bound to other principals, signatures, MACs and
// data key pairs. Builds as C++11 and later against the installed library.
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

  // Another handle to the same engine, calling as `principal` (owned like any other).
  Engine as(const std::string& principal) const {
    kp_engine* e = nullptr;
    check(kp_engine_for_principal(get(), principal.c_str(), &e));
    return Engine(e);
  }

  Record create_key(const std::string& spec, const std::string& usage) {
    kp_create_key_options o;
    std::memset(&o, 0, sizeof o);
    o.key_spec = spec.c_str();
    o.key_usage = usage.c_str();
    kp_record* r = nullptr;
    check(kp_create_key(get(), &o, &r));
    return Record(r);
  }

  std::vector<uint8_t> sign(const std::string& key, const std::string& message,
                            kp_signing_algorithm algorithm) const {
    kp_sign_item item;
    std::memset(&item, 0, sizeof item);
    item.key_id = key.c_str();
    item.message = reinterpret_cast<const uint8_t*>(message.data());
    item.message_len = message.size();
    item.signing_algorithm = algorithm;
    std::vector<uint8_t> signature(KP_MAX_SIGNATURE_LEN);
    size_t len = 0;
    check(kp_sign(get(), &item, signature.data(), signature.size(), &len, nullptr));
    signature.resize(len);
    return signature;
  }

  // Throws kp::Error with KP_STATUS_INVALID_SIGNATURE for a signature that does not verify.
  void verify(const std::string& key, const std::string& message, const std::vector<uint8_t>& signature,
              kp_signing_algorithm algorithm) const {
    kp_verify_item item;
    std::memset(&item, 0, sizeof item);
    item.key_id = key.c_str();
    item.message = reinterpret_cast<const uint8_t*>(message.data());
    item.message_len = message.size();
    item.signature = signature.data();
    item.signature_len = signature.size();
    item.signing_algorithm = algorithm;
    check(kp_verify(get(), &item, nullptr));
  }

  // The public key, asking first with no buffer: BUFFER_TOO_SMALL says the size.
  std::vector<uint8_t> public_key(const std::string& key) const {
    kp_out out;
    std::memset(&out, 0, sizeof out);
    kp_status status = kp_get_public_key(get(), key.c_str(), &out, nullptr);
    if (status != KP_STATUS_BUFFER_TOO_SMALL) check(status);
    std::vector<uint8_t> der(out.len);
    out.data = der.data();
    out.capacity = der.size();
    check(kp_get_public_key(get(), key.c_str(), &out, nullptr));
    return der;
  }

  // MACs of many messages in one call; returns each item's status with its MAC.
  std::vector<std::pair<kp_status, std::vector<uint8_t> > > macs(const std::string& key,
                                                                 const std::vector<std::string>& messages) const {
    std::vector<kp_mac_item> items(messages.size());
    std::vector<kp_out> outs(messages.size());
    std::vector<std::pair<kp_status, std::vector<uint8_t> > > result(messages.size());
    for (size_t i = 0; i < messages.size(); i++) {
      std::memset(&items[i], 0, sizeof items[i]);
      items[i].key_id = key.c_str();
      items[i].message = reinterpret_cast<const uint8_t*>(messages[i].data());
      items[i].message_len = messages[i].size();
      items[i].mac_algorithm = KP_MAC_ALGORITHM_HMAC_SHA_256;
      result[i].second.resize(kp_mac_len(items[i].mac_algorithm));
      outs[i].data = result[i].second.data();
      outs[i].capacity = result[i].second.size();
    }
    kp_status status = kp_generate_mac_batch(get(), items.data(), items.size(), outs.data());
    if (status != KP_STATUS_BATCH_ITEMS_FAILED) check(status);
    for (size_t i = 0; i < messages.size(); i++) result[i].first = static_cast<kp_status>(outs[i].status);
    return result;
  }

  // A data key pair: the private key in locked memory owned by the SecretPtr, the public key and
  // the encrypted private key in vectors.
  struct KeyPair {
    SecretPtr private_key;
    std::vector<uint8_t> public_key, encrypted_private_key;
  };
  KeyPair data_key_pair(const std::string& key, kp_data_key_pair_spec spec) const {
    kp_data_key_pair_item item;
    std::memset(&item, 0, sizeof item);
    item.key_id = key.c_str();
    item.key_pair_spec = spec;
    KeyPair pair;
    pair.public_key.resize(KP_MAX_PUBLIC_KEY_LEN);
    pair.encrypted_private_key.resize(KP_MAX_PRIVATE_KEY_CIPHERTEXT_LEN);
    kp_out ct, pk;
    std::memset(&ct, 0, sizeof ct);
    std::memset(&pk, 0, sizeof pk);
    ct.data = pair.encrypted_private_key.data();
    ct.capacity = pair.encrypted_private_key.size();
    pk.data = pair.public_key.data();
    pk.capacity = pair.public_key.size();
    kp_secret_buffer* secret = nullptr;
    check(kp_generate_data_key_pair(get(), &item, &secret, &ct, &pk, nullptr));
    pair.private_key.reset(secret);
    pair.public_key.resize(pk.len);
    pair.encrypted_private_key.resize(ct.len);
    return pair;
  }

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
  explicit Engine(kp_engine* e) : e_(e) {}
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

  // Engine handles for other principals: the account's users get in, strangers do not.
  {
    const char* stranger_arn = "arn:aws:iam::999999999999:user/mallory";
    kp::Engine alice = engine.as("arn:aws:iam::111122223333:user/alice");
    kp::Engine stranger = engine.as(stranger_arn);
    REQUIRE(alice.decrypt(engine.encrypt(id, pt, &ctx), &ctx) == pt);
    thrown = false;
    try {
      stranger.encrypt(id, pt);
    } catch (const kp::Error& e) {
      thrown = e.status() == KP_STATUS_ACCESS_DENIED && std::string(e.what()).find("mallory") != std::string::npos;
    }
    REQUIRE(thrown);
    thrown = false;
    try {
      engine.as("mallory");
    } catch (const kp::Error& e) {
      thrown = e.status() == KP_STATUS_VALIDATION;
    }
    REQUIRE(thrown);

    // Signatures: sign as alice, verify as the root; a flipped bit throws InvalidSignature.
    kp::Record signer = engine.create_key("ECC_NIST_P256", "SIGN_VERIFY");
    const std::string signer_id = signer.str(KP_FIELD_KEY_ID);
    std::vector<uint8_t> signature = alice.sign(signer_id, "an order", KP_SIGNING_ALGORITHM_ECDSA_SHA_256);
    REQUIRE(signature.size() <= kp_signature_max_len("ECC_NIST_P256", KP_SIGNING_ALGORITHM_ECDSA_SHA_256));
    engine.verify(signer_id, "an order", signature, KP_SIGNING_ALGORITHM_ECDSA_SHA_256);
    signature[signature.size() / 2] ^= 1;
    thrown = false;
    try {
      engine.verify(signer_id, "an order", signature, KP_SIGNING_ALGORITHM_ECDSA_SHA_256);
    } catch (const kp::Error& e) {
      thrown = e.status() == KP_STATUS_INVALID_SIGNATURE;
    }
    REQUIRE(thrown);
    REQUIRE(engine.public_key(signer_id).size() == 91);

    // MACs in a batch: each item's own status.
    kp::Record mac_key = engine.create_key("HMAC_256", "GENERATE_VERIFY_MAC");
    std::vector<std::string> messages;
    messages.push_back("one");
    messages.push_back("");  // refused: empty
    messages.push_back("three");
    std::vector<std::pair<kp_status, std::vector<uint8_t> > > macs = alice.macs(mac_key.str(KP_FIELD_KEY_ID), messages);
    REQUIRE(macs[0].first == KP_STATUS_OK && macs[0].second.size() == 32);
    REQUIRE(macs[1].first == KP_STATUS_VALIDATION && macs[2].first == KP_STATUS_OK);
    REQUIRE(macs[0].second != macs[2].second);

    // A data key pair: the encrypted private key opens to the one in the secret buffer.
    kp::Engine::KeyPair pair = alice.data_key_pair(id, KP_DATA_KEY_PAIR_SPEC_ECC_NIST_P256);
    REQUIRE(pair.public_key.size() == 91);
    std::vector<uint8_t> opened = engine.decrypt(pair.encrypted_private_key);
    REQUIRE(opened.size() == kp_secret_buffer_len(pair.private_key.get()));
    REQUIRE(std::memcmp(opened.data(), kp_secret_buffer_data(pair.private_key.get()), opened.size()) == 0);
  }  // alice's and the stranger's handles are freed here; the engine keeps running
  REQUIRE(engine.decrypt(engine.encrypt(id, pt)) == pt);

  // Move semantics: owners transfer, never double-free.
  kp::Engine moved_from(4096);
  std::unique_ptr<kp::Engine> holder(new kp::Engine(4096));
  REQUIRE(holder->get() != nullptr);
  holder.reset();

  std::cout << "test_raii: engine, records, contexts, secrets, batches, 6 threads, callers, "
               "signatures, MACs, key pairs\n";
  std::cout << "1 passed, 0 failed\n";
  return 0;
}
