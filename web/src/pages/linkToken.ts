/**
 * The single-use token of a mail link (`/reset-password#token=…`, `/invitation#token=…`). It sits
 * after `#` so it never reaches a server log; once read it is removed from the address bar, so it
 * stays out of the history and of screenshots (and kept here for the page that read it).
 */
let taken: { pathname: string; token: string } | null = null;

export function takeLinkToken(): string | null {
  const { pathname, search, hash } = window.location;
  const fromLink = new URLSearchParams(hash.slice(1)).get('token');
  if (fromLink !== null) {
    taken = { pathname, token: fromLink };
    window.history.replaceState(window.history.state, '', `${pathname}${search}`);
    return fromLink;
  }
  return taken?.pathname === pathname ? taken.token : null;
}
