// A C++ service that envelope-encrypts a file in batches with libkeyplane.
//
//   envelope_service INPUT SEALED OUTPUT [DATA_DIR]
//
// Its KMS key lives in a durable keyplane store: DATA_DIR if given, else as the `keyplane` tool
// finds it ($KEYPLANE_STORE, $KEYPLANE_HOME, else ./keyplane-data), created on first use with a
// root key file DATA_DIR/root.key (mode 0600). The first run creates the key and its alias; later
// runs (and any other process on the same data directory, such as `keyplane decrypt`) reuse it.
// Every request is recorded in DATA_DIR/audit/audit.log (`keyplane audit verify` checks it).
//
// The file is cut into 64 KiB chunks; for every 64 chunks, ONE call to keyplane
// (kp_generate_data_key_batch) makes 64 fresh AES-256 data keys, in plaintext (in a locked
// kp_secret_buffer the library zeroes when freed) and wrapped under a KMS key. Each chunk is sealed
// locally with its own data key (AES-256-GCM via OpenSSL, the chunk number as associated data),
// and only the wrapped key travels with it. Opening is the mirror image: one kp_decrypt_batch
// unwraps 64 data keys into a secret buffer, then each chunk is opened locally.
//
// SEALED layout: "KPE1", then per chunk: u32 wrapped key length, wrapped key (a keyplane
// ciphertext blob), u32 chunk length, ciphertext, 16-byte GCM tag. Integers are little-endian.
#include <keyplane.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

const size_t kChunk = 64 * 1024;
const size_t kBatch = 64;
const size_t kKeyLen = 32;
const size_t kTagLen = 16;

void check(kp_status status, const char* what) {
  if (status == KP_STATUS_OK) return;
  std::string message(kp_last_error_length() + 1, '\0');
  size_t len = 0;
  kp_last_error_message(&message[0], message.size(), &len);
  message.resize(len);
  throw std::runtime_error(std::string(what) + ": " + kp_status_name(status) + ": " + message);
}

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
typedef std::unique_ptr<kp_config, Deleter<kp_config, kp_config_free> > ConfigPtr;
typedef std::unique_ptr<kp_engine, Deleter<kp_engine, kp_engine_free> > EnginePtr;
typedef std::unique_ptr<kp_context, Deleter<kp_context, kp_context_free> > ContextPtr;
typedef std::unique_ptr<kp_secret_buffer, Deleter<kp_secret_buffer, kp_secret_buffer_free> > SecretPtr;
typedef std::unique_ptr<kp_record, Deleter<kp_record, kp_record_free> > RecordPtr;
typedef std::unique_ptr<EVP_CIPHER_CTX, Deleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free> > CipherPtr;

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; i++) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t get_u32(std::istream& in) {
  unsigned char b[4];
  if (!in.read(reinterpret_cast<char*>(b), 4)) throw std::runtime_error("truncated sealed file");
  return b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
}

// AES-256-GCM with a key used for exactly one chunk, so the nonce can be fixed (all zero).
bool gcm(bool seal, const uint8_t* key, uint64_t chunk_no, const uint8_t* in, size_t len, uint8_t* out,
         uint8_t* tag) {
  CipherPtr ctx(EVP_CIPHER_CTX_new());
  const uint8_t nonce[12] = {0};
  uint8_t aad[8];
  int n = 0;
  for (int i = 0; i < 8; i++) aad[i] = static_cast<uint8_t>(chunk_no >> (8 * i));
  if (!ctx || EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, nonce, seal ? 1 : 0) != 1)
    return false;
  if (EVP_CipherUpdate(ctx.get(), nullptr, &n, aad, sizeof aad) != 1) return false;
  if (len > 0 && EVP_CipherUpdate(ctx.get(), out, &n, in, static_cast<int>(len)) != 1) return false;
  if (!seal && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagLen, tag) != 1) return false;
  if (EVP_CipherFinal_ex(ctx.get(), out + n, &n) != 1) return false;
  return !seal || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagLen, tag) == 1;
}

struct Service {
  EnginePtr engine;
  ContextPtr context;
  std::string key;

  explicit Service(const char* data_dir) {
    kp_config* config = nullptr;
    check(kp_config_from_env(&config), "kp_config_from_env");
    ConfigPtr owned(config);
    if (data_dir != nullptr) {
      std::string address = std::string("sqlite:") + data_dir;
      check(kp_config_set_store(config, address.c_str()), "kp_config_set_store");
    }
    kp_engine* e = nullptr;
    check(kp_engine_new(config, &e), "kp_engine_new");
    engine.reset(e);
    key = "alias/envelope-example";
    kp_record* md = nullptr;
    kp_status found = kp_describe_key(engine.get(), key.c_str(), &md);
    if (found == KP_STATUS_OK) {
      kp_record_free(md);
      std::cerr << "using the key " << key << " kept in the store\n";
    } else if (found == KP_STATUS_NOT_FOUND) {
      kp_create_key_options options;
      std::memset(&options, 0, sizeof options);
      options.description = "envelope example";
      check(kp_create_key(engine.get(), &options, &md), "kp_create_key");
      RecordPtr record(md);
      check(kp_create_alias(engine.get(), key.c_str(), kp_record_string(md, KP_FIELD_KEY_ID)), "kp_create_alias");
      std::cerr << "created the key " << key << " in the store\n";
    } else {
      check(found, "kp_describe_key");
    }
    kp_context* c = nullptr;
    check(kp_context_new(&c), "kp_context_new");
    context.reset(c);
    check(kp_context_add(c, "purpose", "envelope-example"), "kp_context_add");
  }

  // Seals `n` chunks (chunk numbers first..first+n-1) from `data` into `out`.
  void seal_batch(const std::vector<uint8_t>& data, size_t n, uint64_t first, std::string& out) {
    std::vector<kp_data_key_item> items(n);
    for (size_t i = 0; i < n; i++) {
      std::memset(&items[i], 0, sizeof items[i]);
      items[i].key_id = key.c_str();
      items[i].context = context.get();
      items[i].key_spec = KP_DATA_KEY_SPEC_AES_256;
    }
    size_t total_keys = 0;
    check(kp_generate_data_key_batch_sizes(items.data(), n, nullptr, nullptr, &total_keys, nullptr), "sizes");
    kp_secret_buffer* raw = nullptr;
    check(kp_secret_buffer_new(engine.get(), total_keys, &raw), "kp_secret_buffer_new");
    SecretPtr keys(raw);
    std::vector<std::vector<uint8_t> > wrapped(n, std::vector<uint8_t>(kp_ciphertext_len(kKeyLen)));
    std::vector<kp_out> outs(n);
    for (size_t i = 0; i < n; i++) {
      outs[i].data = wrapped[i].data();
      outs[i].capacity = wrapped[i].size();
    }
    check(kp_generate_data_key_batch(engine.get(), items.data(), n, keys.get(), outs.data()),
          "kp_generate_data_key_batch");
    std::vector<uint8_t> sealed(kChunk);
    uint8_t tag[kTagLen];
    for (size_t i = 0; i < n; i++) {
      size_t start = i * kChunk;
      size_t len = std::min(kChunk, data.size() - start);
      const uint8_t* data_key = kp_secret_buffer_data(keys.get()) + i * kKeyLen;
      if (!gcm(true, data_key, first + i, data.data() + start, len, sealed.data(), tag))
        throw std::runtime_error("AES-GCM seal failed");
      put_u32(out, static_cast<uint32_t>(outs[i].len));
      out.append(reinterpret_cast<const char*>(wrapped[i].data()), outs[i].len);
      put_u32(out, static_cast<uint32_t>(len));
      out.append(reinterpret_cast<const char*>(sealed.data()), len);
      out.append(reinterpret_cast<const char*>(tag), kTagLen);
    }
  }

  struct Sealed {
    std::vector<uint8_t> wrapped, body;
    uint8_t tag[kTagLen];
  };

  // Opens a batch of chunks: one kp_decrypt_batch for all the data keys.
  void open_batch(const std::vector<Sealed>& chunks, uint64_t first, std::ofstream& out) {
    size_t n = chunks.size();
    std::vector<kp_decrypt_item> items(n);
    std::vector<kp_out> outs(n);
    kp_secret_buffer* raw = nullptr;
    check(kp_secret_buffer_new(engine.get(), n * kKeyLen, &raw), "kp_secret_buffer_new");
    SecretPtr keys(raw);
    for (size_t i = 0; i < n; i++) {
      std::memset(&items[i], 0, sizeof items[i]);
      items[i].ciphertext = chunks[i].wrapped.data();
      items[i].ciphertext_len = chunks[i].wrapped.size();
      items[i].context = context.get();
      outs[i].data = kp_secret_buffer_data(keys.get()) + i * kKeyLen;
      outs[i].capacity = kKeyLen;
    }
    check(kp_decrypt_batch(engine.get(), items.data(), n, outs.data()), "kp_decrypt_batch");
    std::vector<uint8_t> plain(kChunk);
    for (size_t i = 0; i < n; i++) {
      uint8_t tag[kTagLen];
      std::memcpy(tag, chunks[i].tag, kTagLen);
      if (outs[i].len != kKeyLen ||
          !gcm(false, outs[i].data, first + i, chunks[i].body.data(), chunks[i].body.size(), plain.data(), tag))
        throw std::runtime_error("chunk " + std::to_string(first + i) + " failed to authenticate");
      out.write(reinterpret_cast<const char*>(plain.data()), static_cast<std::streamsize>(chunks[i].body.size()));
    }
  }
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::cerr << "usage: " << argv[0] << " INPUT SEALED OUTPUT [DATA_DIR]\n";
    return 2;
  }
  try {
    Service service(argc == 5 ? argv[4] : nullptr);
    std::ifstream input(argv[1], std::ios::binary);
    if (!input) throw std::runtime_error(std::string("cannot read ") + argv[1]);
    std::string sealed("KPE1");
    uint64_t chunk_no = 0, bytes = 0;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    for (;;) {
      std::vector<uint8_t> data(kChunk * kBatch);
      input.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size()));
      size_t got = static_cast<size_t>(input.gcount());
      if (got == 0) break;
      data.resize(got);
      size_t n = (got + kChunk - 1) / kChunk;
      service.seal_batch(data, n, chunk_no, sealed);
      chunk_no += n;
      bytes += got;
    }
    double seal_s = seconds_since(t0);
    std::ofstream(argv[2], std::ios::binary).write(sealed.data(), static_cast<std::streamsize>(sealed.size()));

    std::ifstream in(argv[2], std::ios::binary);
    std::ofstream out(argv[3], std::ios::binary);
    char magic[4];
    if (!in.read(magic, 4) || std::memcmp(magic, "KPE1", 4) != 0) throw std::runtime_error("not a KPE1 file");
    t0 = std::chrono::steady_clock::now();
    uint64_t opened = 0;
    std::vector<Service::Sealed> batch;
    while (in.peek() != EOF) {
      Service::Sealed c;
      c.wrapped.resize(get_u32(in));
      in.read(reinterpret_cast<char*>(c.wrapped.data()), static_cast<std::streamsize>(c.wrapped.size()));
      c.body.resize(get_u32(in));
      if (c.body.size() > kChunk) throw std::runtime_error("chunk too large");
      in.read(reinterpret_cast<char*>(c.body.data()), static_cast<std::streamsize>(c.body.size()));
      if (!in.read(reinterpret_cast<char*>(c.tag), kTagLen)) throw std::runtime_error("truncated sealed file");
      batch.push_back(c);
      if (batch.size() == kBatch) {
        service.open_batch(batch, opened, out);
        opened += batch.size();
        batch.clear();
      }
    }
    if (!batch.empty()) {
      service.open_batch(batch, opened, out);
      opened += batch.size();
    }
    double open_s = seconds_since(t0);
    std::printf("sealed %llu bytes in %llu chunks (%llu keyplane batch calls): %.1f MB/s; opened: %.1f MB/s\n",
                static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(chunk_no),
                static_cast<unsigned long long>((chunk_no + kBatch - 1) / kBatch), bytes / seal_s / 1e6,
                bytes / open_s / 1e6);
    return opened == chunk_no ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "envelope_service: " << e.what() << "\n";
    return 1;
  }
}
