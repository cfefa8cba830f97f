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

#define KEY_BYTES 32
#define NONCE_BYTES 12
#define TAG_BYTES 16

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
  EVP_CIPHER_CTX *ctx = context(&seal_ctx, 1);
  uint8_t *text = bytes + at;
  int written = 0, final = 0;
  if (ctx == NULL || EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1 || EVP_EncryptUpdate(ctx, text, &written, text, (int)length) != 1 ||
      EVP_EncryptFinal_ex(ctx, text + written, &final) != 1 || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_BYTES, text + length) != 1) {
    napi_throw_error(env, NULL, "OpenSSL could not seal the chunk");
  }
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
  EVP_CIPHER_CTX *ctx = context(&open_ctx, 0);
  uint8_t *text = bytes + at;
  uint8_t tag[TAG_BYTES];
  /* The tag may sit in the bytes being decrypted over; take a copy first. */
  for (int i = 0; i < TAG_BYTES; i++) tag[i] = tags[tag_at + i];
  int written = 0, final = 0;
  if (ctx == NULL || EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) != 1 || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_BYTES, tag) != 1 ||
      EVP_DecryptUpdate(ctx, text, &written, text, (int)length) != 1) {
    OPENSSL_cleanse(text, (size_t)length);
    napi_throw_error(env, NULL, "OpenSSL could not open the chunk");
    return NULL;
  }
  int ok = EVP_DecryptFinal_ex(ctx, text + written, &final) == 1;
  if (!ok) OPENSSL_cleanse(text, (size_t)length);
  napi_value result;
  napi_get_boolean(env, ok, &result);
  return result;
}

/* The OpenSSL version the cipher runs in, for diagnostics. */
static napi_value version(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_string_utf8(env, OpenSSL_version(OPENSSL_VERSION), NAPI_AUTO_LENGTH, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor properties[] = {
    {"seal", NULL, seal, NULL, NULL, NULL, napi_enumerable, NULL},
    {"open", NULL, open_chunk, NULL, NULL, NULL, napi_enumerable, NULL},
    {"version", NULL, version, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties) != napi_ok) return NULL;
  return exports;
}
