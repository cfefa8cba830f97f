/**
 * A real S3-compatible server for the S3 repository suites: s3rver (npm, dev dependency) in its
 * own Node process on a free loopback port, with one bucket and a credentials file. The driver
 * talks to it through a small recording HTTP proxy, so tests can see which requests it sent.
 *
 * s3rver builds its ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only offers
 * through its legacy provider; the server process is started with --openssl-legacy-provider
 * (the driver under test runs in the test process, without it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { S3Repository, type S3RepositoryOptions } from '../src/platform/backup/s3-repository.ts';
import { tempDir } from './helpers/platform.ts';

const require = createRequire(import.meta.url);
/** s3rver's one account (it checks the key id; V4 signatures it does not verify). */
export const S3RVER_KEY = 'S3RVER';

/** Why the S3 suites cannot run here, or null when they can. */
export function s3rverUnavailable(): string | null {
  try {
    require.resolve('s3rver/bin/s3rver.js');
    return null;
  } catch {
    return 's3rver (an npm dev dependency) is not installed: npm ci';
  }
}

export interface TestS3 {
  endpoint: string;
  port: number;
  bucket: string;
  /** s3rver's data directory: objects are `<bucket>/<key>._S3rver_object`. */
  dataDir: string;
  /** A 0600 file with s3rver's credentials. */
  credentialsFile: string;
  /** A repository on the bucket under `prefix`, with the fixture's credentials. */
  repository(options?: Partial<S3RepositoryOptions>): S3Repository;
  /** The stored bytes of an object, read from s3rver's files behind the driver's back. */
  storedBytes(key: string): Buffer | null;
  /** Every request the server answered, as `METHOD /path?query STATUS`. */
  requests(): string[];
  stop(): Promise<void>;
  start(): Promise<void>;
  cleanup(): Promise<void>;
}

/** `tls`: the proxy in front of s3rver speaks HTTPS with this certificate (the endpoint is https://). */
export async function startS3rver(bucket = 'taskflow-test', options: { tls?: { cert: string; key: string } } = {}): Promise<TestS3> {
  const root = tempDir('s3rver');
  const dataDir = join(root, 'data');
  const credentialsFile = join(root, 'credentials');
  writeFileSync(credentialsFile, `[default]\naws_access_key_id = ${S3RVER_KEY}\naws_secret_access_key = ${S3RVER_KEY}\n`, { mode: 0o600 });
  const port = await freePort();
  const serverPort = await freePort();
  const endpoint = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  let log = '';
  const requests: string[] = [];
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const upstream = request({ host: '127.0.0.1', port: serverPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      requests.push(`${req.method ?? ''} ${req.url ?? ''} ${answer.statusCode ?? 0}`);
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  const proxy: Server | HttpsServer = options.tls ? createHttpsServer(options.tls, forward) : createServer(forward);

  const start = async (): Promise<void> => {
    const proc = spawn(
      process.execPath,
      ['--openssl-legacy-provider', require.resolve('s3rver/bin/s3rver.js'), '-s', '-d', dataDir, '-a', '127.0.0.1', '-p', String(serverPort), '--configure-bucket', bucket],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, NO_COLOR: '1', FORCE_COLOR: '0' } },
    );
    child = proc;
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (text: string) => {
      log += text;
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`s3rver did not start within 15 s: ${log}`));
      }, 15_000);
      proc.stdout.on('data', (text: string) => {
        log += text;
        if (log.includes(`listening on 127.0.0.1:${serverPort}`)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited (${code}): ${log}`));
      });
    });
    await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
  };
  const stop = async (): Promise<void> => {
    const proc = child;
    child = null;
    if (proxy.listening) {
      const closed = new Promise((resolve) => proxy.close(resolve));
      proxy.closeAllConnections();
      await closed;
    }
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    endpoint,
    port,
    bucket,
    dataDir,
    credentialsFile,
    repository(options = {}) {
      return new S3Repository({
        name: 'bucket',
        region: 'us-east-1',
        jurisdiction: 'DE',
        bucket,
        prefix: 'repo',
        endpoint,
        forcePathStyle: true,
        credentialsFile,
        partSizeMiB: 5,
        connectTimeoutSeconds: 2,
        ...options,
      });
    },
    storedBytes(key) {
      const file = join(dataDir, bucket, `${key}._S3rver_object`);
      return existsSync(file) ? readFileSync(file) : null;
    },
    requests: () => [...requests],
    start,
    stop,
    async cleanup() {
      await stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
