/** Loading data for a page, and running actions from forms, with their pending and error states. */
import { useCallback, useEffect, useRef, useState } from 'react';

export type Loaded<T> = { status: 'loading' } | { status: 'error'; error: unknown } | { status: 'ready'; data: T };

/**
 * Loads with `load` whenever `deps` change; `reload()` loads again and `set` replaces the data
 * (after a change the page made itself). Answers of an older load never replace a newer one.
 */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> & { reload: () => void; set: (update: (data: T) => T) => void } {
  const [state, setState] = useState<Loaded<T>>({ status: 'loading' });
  const generation = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  const run = useCallback(() => {
    const mine = ++generation.current;
    loadRef.current().then(
      (data) => {
        if (mine === generation.current) setState({ status: 'ready', data });
      },
      (error: unknown) => {
        if (mine === generation.current) setState({ status: 'error', error });
      },
    );
  }, []);

  useEffect(() => {
    setState({ status: 'loading' });
    run();
    return () => {
      generation.current++;
    };
    // The caller names what the load depends on.
  }, deps);

  const set = useCallback((update: (data: T) => T) => {
    setState((s) => (s.status === 'ready' ? { status: 'ready', data: update(s.data) } : s));
  }, []);

  return { ...state, reload: run, set };
}

export interface Action<A extends unknown[], R> {
  /** Runs the action; resolves with its result, or undefined when it failed (see `error`). */
  run: (...args: A) => Promise<R | undefined>;
  pending: boolean;
  error: unknown;
  clearError: () => void;
}

/** An action started by the user (a form's submit): one at a time, its failure kept for the page to show. */
export function useAction<A extends unknown[], R>(action: (...args: A) => Promise<R>): Action<A, R> {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const busy = useRef(false);
  const actionRef = useRef(action);
  actionRef.current = action;

  const run = useCallback(async (...args: A) => {
    if (busy.current) return undefined;
    busy.current = true;
    setPending(true);
    setError(null);
    try {
      return await actionRef.current(...args);
    } catch (err) {
      setError(err);
      return undefined;
    } finally {
      busy.current = false;
      setPending(false);
    }
  }, []);

  const clearError = useCallback(() => {
    setError(null);
  }, []);
  return { run, pending, error, clearError };
}
