/**
 * The ChaCha20-Poly1305 that seals and opens the age payload's chunks in place. Two
 * implementations with the same results:
 * - `openssl`: Node's own OpenSSL called in place through native/age-aead.c, which
 *   scripts/bootstrap.sh builds with the machine's C compiler against Node's headers. Node's crypto
 *   API allocates and copies every output, which cost more than the cipher; in place, OpenSSL's
 *   AVX-512/AVX2 code runs at about twice libsodium's speed (bench/README.md).
 * - `libsodium` (sodium-native, prebuilt): used when the module was not built.
 * `TASKFLOW_AGE_CIPHER=openssl|libsodium` picks one (the benchmark runs both); an `openssl` that
 * was asked for but is not built is an error, never a silent fallback.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import sodiumNative from 'sodium-native';
import { BackupError } from './errors.ts';

export const TAG_BYTES = 16;

export interface ChunkCipher {
  readonly name: 'openssl' | 'libsodium';
  /** Encrypts bytes[at, at + length) in place and writes its 16-byte tag right after it. */
  seal(bytes: Uint8Array, at: number, length: number, key: Uint8Array, nonce: Uint8Array): void;
  /**
   * Decrypts bytes[at, at + length) in place if it authenticates against the tag at
   * tags[tagAt, tagAt + 16); returns whether it did (the bytes are then not plaintext).
   */
  open(bytes: Uint8Array, at: number, length: number, key: Uint8Array, nonce: Uint8Array, tags: Uint8Array, tagAt: number): boolean;
  /**
   * `openssl` only: runs whole batches (age-payload.ts's layout) on libuv's thread pool, so no
   * worker thread is needed.
   */
  readonly batches?: BatchRunner;
}

/** Runs age payload batches off the JavaScript thread. */
export interface BatchRunner {
  /**
   * Seals or opens `bytes` in place; resolves to the index of the first chunk that did not open,
   * or -1. `bytes` must not be touched until it settles.
   */
  run(bytes: Buffer, key: Uint8Array, first: number, lengths: number[], final: boolean, seal: boolean): Promise<number>;
}

/** The libsodium calls used (@types/sodium-native lists only the XChaCha variants). */
interface Aead {
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_chacha20poly1305_ietf_decrypt_detached(m: Uint8Array, nsec: null, c: Uint8Array, mac: Uint8Array, ad: null, npub: Uint8Array, k: Uint8Array): void;
}

const libsodium: ChunkCipher = {
  name: 'libsodium',
  seal(bytes, at, length, key, nonce) {
    // libsodium allows the ciphertext to start where the plaintext does.
    const sodium = sodiumNative as unknown as Aead;
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(bytes.subarray(at, at + length + TAG_BYTES), bytes.subarray(at, at + length), null, null, nonce, key);
  },
  open(bytes, at, length, key, nonce, tags, tagAt) {
    const sodium = sodiumNative as unknown as Aead;
    const body = bytes.subarray(at, at + length);
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt_detached(body, null, body, tags.subarray(tagAt, tagAt + TAG_BYTES), null, nonce, key);
      return true;
    } catch {
      return false;
    }
  },
};

interface NativeAead {
  seal(bytes: Uint8Array, at: number, length: number, key: Uint8Array, nonce: Uint8Array): void;
  open(bytes: Uint8Array, at: number, length: number, key: Uint8Array, nonce: Uint8Array, tags: Uint8Array, tagAt: number): boolean;
  version(): string;
  runBatch(bytes: Buffer, key: Uint8Array, first: number, lengths: number[], final: boolean, seal: boolean): Promise<number>;
}

/** Where native/build.sh puts the module. */
export const NATIVE_AEAD_PATH = fileURLToPath(new URL('../../../native/build/age-aead.node', import.meta.url));

function loadOpenssl(): (ChunkCipher & { version: string }) | null {
  if (!existsSync(NATIVE_AEAD_PATH)) return null;
  const native = createRequire(import.meta.url)(NATIVE_AEAD_PATH) as NativeAead;
  return {
    name: 'openssl',
    seal: (bytes, at, length, key, nonce) => {
      native.seal(bytes, at, length, key, nonce);
    },
    open: (bytes, at, length, key, nonce, tags, tagAt) => native.open(bytes, at, length, key, nonce, tags, tagAt),
    batches: {
      run: (bytes, key, first, lengths, final, seal) => native.runBatch(bytes, key, first, lengths, final, seal),
    },
    version: native.version(),
  };
}

let chosen: ChunkCipher | null = null;

/** The cipher this process uses, chosen on first use (see the module comment). */
export function chunkCipher(): ChunkCipher {
  if (chosen) return chosen;
  const wanted = process.env.TASKFLOW_AGE_CIPHER || 'auto';
  if (wanted === 'libsodium') return (chosen = libsodium);
  if (wanted !== 'auto' && wanted !== 'openssl') {
    throw new BackupError('age-cipher', `TASKFLOW_AGE_CIPHER is '${wanted}'; it may be openssl, libsodium or unset`);
  }
  let openssl: ChunkCipher | null = null;
  try {
    openssl = loadOpenssl();
  } catch (err) {
    if (wanted === 'openssl') throw new BackupError('age-cipher', `the OpenSSL cipher module ${NATIVE_AEAD_PATH} does not load: ${(err as Error).message}; rebuild it with native/build.sh`);
  }
  if (openssl) return (chosen = openssl);
  if (wanted === 'openssl') throw new BackupError('age-cipher', `TASKFLOW_AGE_CIPHER=openssl but ${NATIVE_AEAD_PATH} is not built: run native/build.sh (needs a C compiler)`);
  return (chosen = libsodium);
}

/** The other implementations, for tests that hold them to the same results. */
export function allChunkCiphers(): ChunkCipher[] {
  const openssl = (() => {
    try {
      return loadOpenssl();
    } catch {
      return null;
    }
  })();
  return openssl ? [openssl, libsodium] : [libsodium];
}
