/**
 * A repository in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Hetzner, Wasabi…), under a
 * key prefix. Writes stream as a multipart upload (@aws-sdk/lib-storage): S3 shows an object
 * only once its upload completes, so readers see the old object or the whole new one, and a
 * failed upload is aborted so its parts do not linger.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Upload } from '@aws-sdk/lib-storage';
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { pipeline } from 'node:stream/promises';
import { BackupError } from './errors.ts';
import { checkListPrefix, checkObjectName } from './object-names.ts';
import type { ObjectInfo, Repository, RepositoryHealth, RepositoryPlacement } from './repository.ts';
import { credentialsFromEnv, readCredentialsFile, type S3Credentials } from './s3-credentials.ts';
import { StreamMeter } from './stream-meter.ts';

/** The AWS SDK, loaded on first use: it costs about half a second and 35 MB to load, which every
 * `taskflow wal` run (one per WAL segment) would pay even with no S3 repository configured. */
interface Sdk {
  s3: typeof import('@aws-sdk/client-s3');
  storage: typeof import('@aws-sdk/lib-storage');
}
let sdkLoading: Promise<Sdk> | null = null;
function loadSdk(): Promise<Sdk> {
  sdkLoading ??= Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(([s3, storage]) => ({ s3, storage }));
  return sdkLoading;
}

export interface S3RepositoryOptions extends RepositoryPlacement {
  bucket: string;
  /** Key prefix inside the bucket, `a/b` (no leading or trailing slash); empty for the bucket's top. */
  prefix: string;
  /** The service's URL for S3-compatible services (`https://fsn1.your-objectstorage.com`); AWS when absent. */
  endpoint?: string;
  /** Bucket in the path (`https://host/bucket/key`) rather than the host name; most non-AWS services want it. */
  forcePathStyle: boolean;
  /** A credentials file only its owner may read; without it, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. */
  credentialsFile?: string;
  /** PEM CA certificate(s) trusted for the endpoint besides Node's roots (a private CA). */
  caFile?: string;
  /** Size of one part of a multipart upload; an object may have 10 000 parts. */
  partSizeMiB: number;
  connectTimeoutSeconds: number;
  /** Where credentials come from without a file (process.env by default). */
  env?: NodeJS.ProcessEnv;
  /** Keys per listing request (S3's maximum, 1000, by default; tests lower it to exercise paging). */
  listPageSize?: number;
}

/** Parts uploaded at once: memory use is about (this + 1) × the part size. */
const UPLOAD_CONCURRENCY = 2;
const MAX_PARTS = 10_000;
/** A connection that stays silent this long is given up (a server that stopped answering). */
const SOCKET_IDLE_MS = 120_000;
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED']);
const DENIED_CODES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'AllAccessDisabled']);
/** What S3-compatible services answer when they have no room: MinIO's 507, Ceph RGW's quota error. */
const FULL_CODES = new Set(['XMinioStorageFull', 'QuotaExceeded', 'InsufficientStorage']);

interface SdkError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export class S3Repository implements Repository {
  readonly kind = 's3';
  readonly name: string;
  readonly region: string;
  readonly jurisdiction: string;
  readonly location: string;
  readonly #options: S3RepositoryOptions;
  readonly #prefix: string;
  #client: S3Client | null = null;

  constructor(options: S3RepositoryOptions) {
    this.name = options.name;
    this.region = options.region;
    this.jurisdiction = options.jurisdiction;
    this.#options = options;
    this.#prefix = options.prefix === '' ? '' : `${checkObjectName(options.prefix).join('/')}/`;
    const base = options.endpoint ? options.endpoint.replace(/\/+$/, '') : 's3:/';
    this.location = `${base}/${options.bucket}/${this.#prefix}`;
  }

  #where(): string {
    return `repository ${this.name} (${this.location})`;
  }

  /** The client, made on first use so that missing credentials fail an operation, not start-up. */
  async #s3(): Promise<{ client: S3Client; sdk: Sdk }> {
    const sdk = await loadSdk();
    if (this.#client) return { client: this.#client, sdk };
    const o = this.#options;
    const credentials: S3Credentials = o.credentialsFile ? readCredentialsFile(o.credentialsFile, this.name) : credentialsFromEnv(o.env ?? process.env, this.name);
    this.#client = new sdk.s3.S3Client({
      region: o.region,
      ...(o.endpoint ? { endpoint: o.endpoint } : {}),
      forcePathStyle: o.forcePathStyle,
      credentials,
      // Our own SHA-256 covers every object end to end; the SDK's default CRC trailers (aws-chunked
      // uploads) are not understood by many S3-compatible services.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: o.connectTimeoutSeconds * 1000,
        socketTimeout: SOCKET_IDLE_MS,
        ...(o.caFile ? { httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 50, ca: [...rootCertificates, this.#caPem(o.caFile)] }) } : {}),
      },
    });
    return { client: this.#client, sdk };
  }

  #caPem(file: string): string {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (err) {
      throw new BackupError('repository-failed', `${this.#where()}: cannot read its caFile ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new BackupError('repository-failed', `${this.#where()}: its caFile ${file} holds no PEM certificate`);
    return pem;
  }

  async #call<T>(fn: (client: S3Client, sdk: Sdk) => Promise<T>): Promise<T> {
    const { client, sdk } = await this.#s3();
    return fn(client, sdk);
  }

  #key(name: string): string {
    return `${this.#prefix}${checkObjectName(name).join('/')}`;
  }

  /** Maps an SDK or network failure to a BackupError naming the operation and the repository. */
  #fail(err: unknown, action: string, name?: string): BackupError {
    if (err instanceof BackupError) return err;
    const e = err as SdkError;
    const what = `cannot ${action}${name === undefined ? '' : ` ${name}`} in ${this.#where()}`;
    const status = e.$metadata?.httpStatusCode;
    const code = e.Code ?? e.name ?? '';
    if (NETWORK_CODES.has(e.code ?? '') || e.name === 'TimeoutError') {
      return new BackupError('repository-unreachable', `${what}: the service does not answer (${e.code ?? e.name ?? ''})`, { cause: err });
    }
    if (code === 'NoSuchBucket') return this.#noBucket(what, err);
    if (code === 'NoSuchKey') return new BackupError('object-not-found', `${what}: it does not exist`, { cause: err });
    if (status === 401 || status === 403 || DENIED_CODES.has(code)) {
      return new BackupError('repository-denied', `${what}: access denied (${code || status})`, { cause: err });
    }
    if (status === 507 || FULL_CODES.has(code)) return new BackupError('repository-full', `${what}: the repository is full (${code || status})`, { cause: err });
    return new BackupError('repository-failed', `${what}: ${e.message ?? code}`, { cause: err });
  }

  #noBucket(what: string, cause?: unknown): BackupError {
    return new BackupError('repository-unreachable', `${what}: bucket ${this.#options.bucket} does not exist`, cause === undefined ? {} : { cause });
  }

  /** After a 404 without a body (HEAD), whether the object or the whole bucket is missing. */
  async #missingObjectOrBucket(action: string, name: string): Promise<void> {
    try {
      await this.#call((c, sdk) => c.send(new sdk.s3.HeadBucketCommand({ Bucket: this.#options.bucket })));
    } catch (err) {
      if ((err as SdkError).$metadata?.httpStatusCode === 404) throw this.#noBucket(`cannot ${action} ${name} in ${this.#where()}`, err);
      throw this.#fail(err, action, name);
    }
  }

  async put(name: string, data: Readable): Promise<{ size: number }> {
    const key = this.#key(name);
    const meter = new StreamMeter();
    // Settles to the source's error or null, so that it is never an unobserved rejection.
    const feeding = pipeline(data, meter).then(
      () => null,
      (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
    );
    let upload: Upload | null = null;
    try {
      const { client, sdk } = await this.#s3();
      upload = new sdk.storage.Upload({
        client,
        params: { Bucket: this.#options.bucket, Key: key, Body: meter },
        partSize: this.#options.partSizeMiB * 1024 * 1024,
        queueSize: UPLOAD_CONCURRENCY,
        // We abort ourselves, so that a failed abort cannot hide why the upload failed.
        leavePartsOnError: true,
      });
      await upload.done();
      const fed = await feeding;
      if (fed !== null) throw fed;
      return { size: meter.bytes };
    } catch (err) {
      meter.destroy();
      const fed = await feeding;
      if (upload?.uploadId) {
        const uploadId = upload.uploadId;
        await this.#call((c, sdk) => c.send(new sdk.s3.AbortMultipartUploadCommand({ Bucket: this.#options.bucket, Key: key, UploadId: uploadId }))).catch(() => undefined);
      }
      // A source that failed is the cause; the upload only failed with it.
      if (fed !== null && !isPrematureClose(fed)) {
        throw new BackupError('repository-failed', `cannot write ${name} in ${this.#where()}: ${fed.message}`, { cause: fed });
      }
      if ((err as Error).message.startsWith(`Exceeded ${MAX_PARTS} parts`)) {
        throw new BackupError('repository-failed', `cannot write ${name} in ${this.#where()}: larger than ${MAX_PARTS} parts of ${this.#options.partSizeMiB} MiB; raise partSizeMiB`, {
          cause: err,
        });
      }
      throw this.#fail(err, 'write', name);
    }
  }

  async get(name: string): Promise<Readable> {
    const key = this.#key(name);
    let body: Readable;
    try {
      const out = await this.#call((c, sdk) => c.send(new sdk.s3.GetObjectCommand({ Bucket: this.#options.bucket, Key: key })));
      body = out.Body as unknown as Readable;
    } catch (err) {
      throw this.#fail(err, 'read', name);
    }
    const fail = (err: unknown): BackupError => this.#fail(err, 'read', name);
    return Readable.from(guarded(body, fail), { objectMode: false });
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    const key = this.#key(name);
    try {
      const head = await this.#call((c, sdk) => c.send(new sdk.s3.HeadObjectCommand({ Bucket: this.#options.bucket, Key: key })));
      return { name, size: head.ContentLength ?? 0, modified: head.LastModified ?? new Date(0) };
    } catch (err) {
      if ((err as SdkError).$metadata?.httpStatusCode !== 404) throw this.#fail(err, 'stat', name);
      await this.#missingObjectOrBucket('stat', name);
      return null;
    }
  }

  async list(prefix = ''): Promise<ObjectInfo[]> {
    checkListPrefix(prefix);
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        const continuation = token;
        page = await this.#call((c, sdk) =>
          c.send(
            new sdk.s3.ListObjectsV2Command({
              Bucket: this.#options.bucket,
              Prefix: `${this.#prefix}${prefix}`,
              MaxKeys: this.#options.listPageSize ?? 1000,
              ...(continuation ? { ContinuationToken: continuation } : {}),
            }),
          ),
        );
      } catch (err) {
        throw this.#fail(err, 'list', prefix || '/');
      }
      for (const object of page.Contents ?? []) {
        const objectName = (object.Key ?? '').slice(this.#prefix.length);
        // Keys no object name can reach (written by other tools) are not ours to list.
        if (!isObjectName(objectName)) continue;
        out.push({ name: objectName, size: object.Size ?? 0, modified: object.LastModified ?? new Date(0) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async delete(name: string): Promise<boolean> {
    // S3 answers a delete the same whether the object existed or not, so ask first.
    if ((await this.stat(name)) === null) return false;
    try {
      await this.#call((c, sdk) => c.send(new sdk.s3.DeleteObjectCommand({ Bucket: this.#options.bucket, Key: this.#key(name) })));
      return true;
    } catch (err) {
      throw this.#fail(err, 'delete', name);
    }
  }

  /** Reachable, bucket there, credentials accepted. S3 has no free space to report. */
  async probe(): Promise<RepositoryHealth> {
    try {
      await this.#call((c, sdk) => c.send(new sdk.s3.HeadBucketCommand({ Bucket: this.#options.bucket })));
      return { ok: true };
    } catch (err) {
      const failure = (err as SdkError).$metadata?.httpStatusCode === 404 ? this.#noBucket(`cannot reach ${this.#where()}`, err) : this.#fail(err, 'reach', 'the bucket');
      return { ok: false, message: failure.message };
    }
  }

  close(): Promise<void> {
    this.#client?.destroy();
    this.#client = null;
    return Promise.resolve();
  }
}

function isObjectName(name: string): boolean {
  try {
    checkObjectName(name);
    return true;
  } catch {
    return false;
  }
}

function isPrematureClose(err: unknown): boolean {
  return (err as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/** The body's bytes, with a connection lost halfway reported as a BackupError of the repository. */
async function* guarded(body: Readable, fail: (err: unknown) => BackupError): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of body) yield chunk as Buffer;
  } catch (err) {
    throw fail(err);
  }
}
