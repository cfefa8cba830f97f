/**
 * A page's h1, which also names the browser tab. After a navigation inside the app, focus moves to
 * it, so that a screen reader announces the new page and Tab continues from its top.
 */
import { useEffect, useRef, type ReactNode } from 'react';
import { takeNavigatedInApp } from '../router.tsx';

export function PageHeading({ title, children }: { title: string; children?: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · TaskFlow`;
    if (takeNavigatedInApp()) ref.current?.focus();
  }, [title]);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children ?? title}
    </h1>
  );
}
