/*
 * ChaCha20-Poly1305 (RFC 8439) in place, for the age payload of backups
 * (src/platform/backup/age-cipher.ts), through the OpenSSL that Node itself carries and exports.
 *
 * Node's own crypto API cannot run this cipher in place: every Cipher#update allocates a new
 * output buffer and copies into it, which cost more than the cipher. Node's OpenSSL has the
 * AVX-512 and AVX2 code paths (ChaCha20_16x, poly1305_blocks_vpmadd52), about twice libsodium's
 * speed on the machines we measured. This module is only the call: it checks its arguments and
 * keeps one cipher context per thread (which holds the last key used until the next call).
 *
 * Built by scripts/bootstrap.sh (`gcc -shared` against Node's headers); without a compiler,
 * TaskFlow uses libsodium (sodium-native) instead, with the same results, slower.
 */
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>

#define KEY_BYTES 32
#define NONCE_BYTES 12
#define TAG_BYTES 16
/* The batch layout of src/platform/backup/age-payload.ts. */
#define CHUNK_BYTES 65536
#define SEALED_CHUNK_BYTES (CHUNK_BYTES + TAG_BYTES)
#define BATCH_CHUNKS 16
#define BATCH_BYTES (BATCH_CHUNKS * SEALED_CHUNK_BYTES)
#define TAGS_AT (BATCH_CHUNKS * CHUNK_BYTES)
/* 2^48 chunks of 64 KiB: the counter fits the nonce's last six counter bytes and a double. */
#define MAX_CHUNKS (1ULL << 48)

/* One context per thread: TaskFlow's worker threads each call from their own thread. */
static __thread EVP_CIPHER_CTX *seal_ctx = NULL;
static __thread EVP_CIPHER_CTX *open_ctx = NULL;

static int view_of(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, (void **)data, &buffer, &offset) != napi_ok) return 0;
  return type == napi_uint8_array;
}

static int offset_of(napi_env env, napi_value value, int64_t *out) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number) return 0;
  if (napi_get_value_int64(env, value, out) != napi_ok) return 0;
  return *out >= 0 && *out <= INT32_MAX;
}

static EVP_CIPHER_CTX *context(EVP_CIPHER_CTX **slot, int encrypt) {
  if (*slot != NULL) return *slot;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx == NULL) return NULL;
  if (EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL, encrypt) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
  }
  *slot = ctx;
  return ctx;
}

/* Seals bytes[0, length) in place with its tag after it; 1 on success. */
static int seal_in_place(EVP_CIPHER_CTX *ctx, uint8_t *text, int length, const uint8_t *key, const uint8_t *nonce) {
  int written = 0, final = 0;
  return ctx != NULL && EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 && EVP_EncryptUpdate(ctx, text, &written, text, length) == 1 &&
         EVP_EncryptFinal_ex(ctx, text + written, &final) == 1 && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_BYTES, text + length) == 1;
}

/* Opens bytes[0, length) in place against `tag`; 1 if it authenticated, else the bytes are zeroed. */
static int open_in_place(EVP_CIPHER_CTX *ctx, uint8_t *text, int length, const uint8_t *key, const uint8_t *nonce, const uint8_t *tag_at) {
  uint8_t tag[TAG_BYTES];
  memcpy(tag, tag_at, TAG_BYTES);
  int written = 0, final = 0;
  int ok = ctx != NULL && EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_BYTES, tag) == 1 &&
           EVP_DecryptUpdate(ctx, text, &written, text, length) == 1 && EVP_DecryptFinal_ex(ctx, text + written, &final) == 1;
  if (!ok) OPENSSL_cleanse(text, (size_t)length);
  return ok;
}

/*
 * The common arguments: (bytes, at, length, key, nonce). Checks that [at, at + length + extra)
 * lies inside bytes, the key is 32 bytes and the nonce 12.
 */
static int common_args(napi_env env, napi_value *argv, size_t extra, uint8_t **bytes, int64_t *at, int64_t *length, uint8_t **key, uint8_t **nonce, const char *usage) {
  size_t bytes_length, key_length, nonce_length;
  if (!view_of(env, argv[0], bytes, &bytes_length) || !offset_of(env, argv[1], at) || !offset_of(env, argv[2], length) ||
      !view_of(env, argv[3], key, &key_length) || !view_of(env, argv[4], nonce, &nonce_length)) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  if (key_length != KEY_BYTES || nonce_length != NONCE_BYTES) {
    napi_throw_range_error(env, NULL, "the key must be 32 bytes and the nonce 12");
    return 0;
  }
  if ((uint64_t)*at + (uint64_t)*length + extra > bytes_length) {
    napi_throw_range_error(env, NULL, "the range lies outside the buffer");
    return 0;
  }
  return 1;
}

/* seal(bytes, at, length, key, nonce): encrypts bytes[at, at + length) in place and writes the tag after it. */
static napi_value seal(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5) {
    napi_throw_type_error(env, NULL, "seal(bytes, at, length, key, nonce)");
    return NULL;
  }
  uint8_t *bytes, *key, *nonce;
  int64_t at, length;
  if (!common_args(env, argv, TAG_BYTES, &bytes, &at, &length, &key, &nonce, "seal(bytes, at, length, key, nonce)")) return NULL;
  if (!seal_in_place(context(&seal_ctx, 1), bytes + at, (int)length, key, nonce)) napi_throw_error(env, NULL, "OpenSSL could not seal the chunk");
  return NULL;
}

/*
 * open(bytes, at, length, key, nonce, tags, tagAt): decrypts bytes[at, at + length) in place
 * if it authenticates against the tag at tags[tagAt, tagAt + 16). Returns whether it did; a
 * chunk that does not authenticate is zeroed, so no unauthenticated plaintext is left behind.
 */
static napi_value open_chunk(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  const char *usage = "open(bytes, at, length, key, nonce, tags, tagAt)";
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 7) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  uint8_t *bytes, *key, *nonce, *tags;
  int64_t at, length, tag_at;
  size_t tags_length;
  if (!common_args(env, argv, 0, &bytes, &at, &length, &key, &nonce, usage)) return NULL;
  if (!view_of(env, argv[5], &tags, &tags_length) || !offset_of(env, argv[6], &tag_at)) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  if ((uint64_t)tag_at + TAG_BYTES > tags_length) {
    napi_throw_range_error(env, NULL, "the tag lies outside its buffer");
    return NULL;
  }
  /* The tag may sit in the bytes being decrypted over; open_in_place takes a copy first. */
  int ok = open_in_place(context(&open_ctx, 0), bytes + at, (int)length, key, nonce, tags + tag_at);
  napi_value result;
  napi_get_boolean(env, ok, &result);
  return result;
}

/* A batch run on libuv's thread pool, with what it needs copied out of JavaScript. */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref memory;
  uint8_t *bytes;
  uint8_t key[KEY_BYTES];
  uint64_t first;
  uint32_t lengths[BATCH_CHUNKS];
  uint32_t count;
  int seal;
  int final;
  /* -1: every chunk sealed or opened; else the index of the first that did not open. */
  int failed;
  int error;
} batch_job;

static void run_batch_work(napi_env env, void *data) {
  (void)env;
  batch_job *job = data;
  EVP_CIPHER_CTX *ctx = job->seal ? context(&seal_ctx, 1) : context(&open_ctx, 0);
  uint8_t nonce[NONCE_BYTES] = {0};
  job->failed = -1;
  for (uint32_t i = 0; i < job->count; i++) {
    uint64_t counter = job->first + i;
    for (int b = 0; b < 6; b++) nonce[10 - b] = (uint8_t)(counter >> (8 * b));
    nonce[11] = job->final && i == job->count - 1 ? 1 : 0;
    if (job->seal) {
      if (!seal_in_place(ctx, job->bytes + (size_t)i * SEALED_CHUNK_BYTES, (int)job->lengths[i], job->key, nonce)) {
        job->error = 1;
        break;
      }
      continue;
    }
    if (!open_in_place(ctx, job->bytes + (size_t)i * CHUNK_BYTES, (int)job->lengths[i] - TAG_BYTES, job->key, nonce, job->bytes + TAGS_AT + (size_t)i * TAG_BYTES)) {
      job->failed = (int)i;
      break;
    }
  }
}

static void finish_batch_work(napi_env env, napi_status status, void *data) {
  batch_job *job = data;
  OPENSSL_cleanse(job->key, KEY_BYTES);
  napi_value result;
  if (status != napi_ok || job->error) {
    napi_value message;
    napi_create_string_utf8(env, status != napi_ok ? "the age batch was cancelled" : "OpenSSL could not seal the batch", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_reject_deferred(env, job->deferred, result);
  } else {
    napi_create_int32(env, job->failed, &result);
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->memory);
  napi_delete_async_work(env, job->work);
  free(job);
}

/*
 * runBatch(bytes, key, first, lengths, final, seal): seals or opens a batch of chunks laid out
 * as age-payload.ts lays them, in place, on libuv's thread pool; resolves to the index of the
 * first chunk that did not open, or -1. `bytes` must not be touched until it settles (it is held
 * alive meanwhile).
 */
static napi_value run_batch(napi_env env, napi_callback_info info) {
  const char *usage = "runBatch(bytes, key, first, lengths, final, seal)";
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  uint8_t *bytes, *key;
  size_t bytes_length, key_length;
  double first;
  bool is_array = false, final, seal;
  uint32_t count = 0;
  napi_valuetype first_type;
  if (!view_of(env, argv[0], &bytes, &bytes_length) || !view_of(env, argv[1], &key, &key_length) || napi_typeof(env, argv[2], &first_type) != napi_ok ||
      first_type != napi_number || napi_get_value_double(env, argv[2], &first) != napi_ok || napi_is_array(env, argv[3], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[3], &count) != napi_ok || napi_get_value_bool(env, argv[4], &final) != napi_ok ||
      napi_get_value_bool(env, argv[5], &seal) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  if (key_length != KEY_BYTES) {
    napi_throw_range_error(env, NULL, "the key must be 32 bytes");
    return NULL;
  }
  if (count < 1 || count > BATCH_CHUNKS || !(first >= 0) || first != (double)(uint64_t)first || (uint64_t)first + count > MAX_CHUNKS) {
    napi_throw_range_error(env, NULL, "a batch is 1 to 16 chunks with counters below 2^48");
    return NULL;
  }
  batch_job *job = calloc(1, sizeof(batch_job));
  if (job == NULL) {
    napi_throw_error(env, NULL, "out of memory for an age batch");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    double given;
    napi_valuetype type;
    if (napi_get_element(env, argv[3], i, &element) != napi_ok || napi_typeof(env, element, &type) != napi_ok || type != napi_number ||
        napi_get_value_double(env, element, &given) != napi_ok) {
      free(job);
      napi_throw_type_error(env, NULL, usage);
      return NULL;
    }
    if (!(given >= 0 && given <= SEALED_CHUNK_BYTES) || given != (double)(uint32_t)given) {
      free(job);
      napi_throw_range_error(env, NULL, "a chunk length must be a whole number of bytes that fits the batch");
      return NULL;
    }
    uint32_t length = (uint32_t)given;
    /* Each chunk and (opening) its tag slot must lie inside the batch. */
    size_t end = seal ? (size_t)i * SEALED_CHUNK_BYTES + length + TAG_BYTES : (size_t)TAGS_AT + ((size_t)i + 1) * TAG_BYTES;
    int fits = seal ? length <= CHUNK_BYTES : length >= TAG_BYTES && length <= SEALED_CHUNK_BYTES;
    if (!fits || end > bytes_length || (!seal && (size_t)i * CHUNK_BYTES + length - TAG_BYTES > bytes_length)) {
      free(job);
      napi_throw_range_error(env, NULL, "a chunk lies outside the batch");
      return NULL;
    }
    job->lengths[i] = length;
  }
  job->bytes = bytes;
  memcpy(job->key, key, KEY_BYTES);
  job->first = (uint64_t)first;
  job->count = count;
  job->seal = seal;
  job->final = final;
  napi_value name, promise;
  napi_create_string_utf8(env, "taskflow:age-batch", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[0], 1, &job->memory) != napi_ok || napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_async_work(env, NULL, name, run_batch_work, finish_batch_work, job, &job->work) != napi_ok || napi_queue_async_work(env, job->work) != napi_ok) {
    /* Not reached in practice; the job's parts may leak, the key is wiped. */
    OPENSSL_cleanse(job->key, KEY_BYTES);
    napi_throw_error(env, NULL, "could not queue the age batch");
    return NULL;
  }
  return promise;
}

/* The OpenSSL version the cipher runs in, for diagnostics. */
static napi_value version(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_string_utf8(env, OpenSSL_version(OPENSSL_VERSION), NAPI_AUTO_LENGTH, &result);
  return result;
}

NAPI_MODULE_INIT() {
#ifdef __GLIBC__
  /*
   * The age stream's 1 MiB batches are handed on as its output and freed by V8 in bursts (a
   * young-generation collection every 16 batches, young-gc.ts). glibc would give such a burst
   * back to the kernel (its trim threshold follows the largest block freed, 2 MiB here), so the
   * next batches took fresh pages, a page fault per 4 KiB: up to half the time of encrypting on
   * the machines we measured. Keeping 64 MiB of freed memory for reuse (and blocks under 4 MiB
   * out of mmap, as glibc's own adaptive threshold would after the first) removes those faults;
   * both stay well inside glibc's own adaptive limits (32 MiB, 64 MiB).
   */
  mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
  napi_property_descriptor properties[] = {
    {"seal", NULL, seal, NULL, NULL, NULL, napi_enumerable, NULL},
    {"open", NULL, open_chunk, NULL, NULL, NULL, napi_enumerable, NULL},
    {"version", NULL, version, NULL, NULL, NULL, napi_enumerable, NULL},
    {"runBatch", NULL, run_batch, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties) != napi_ok) return NULL;
  return exports;
}
