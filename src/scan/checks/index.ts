/** Every check, in the order a scan runs them: cheap and read-only first, throttling last. */
import type { Check } from '../types.ts';
import { bruteForce, enumeration } from './accounts.ts';
import { hostileBodies } from './bodies.ts';
import { csrf } from './csrf.ts';
import { errorLeaks, securityHeaders } from './headers.ts';
import { pathTraversal, sqlInjection, xss } from './injection.ts';
import { sessionFixation, signOut } from './sessions.ts';
import { crossTenant, guessedIds } from './tenancy.ts';
import { cookieFlags, tlsVersions } from './transport.ts';

export const ALL_CHECKS: Check[] = [
  tlsVersions,
  securityHeaders,
  cookieFlags,
  errorLeaks,
  csrf,
  sessionFixation,
  signOut,
  crossTenant,
  guessedIds,
  pathTraversal,
  hostileBodies,
  xss,
  sqlInjection,
  enumeration,
  bruteForce,
];
