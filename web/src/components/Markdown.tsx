/**
 * Markdown written by users (task descriptions, comments), rendered by react-markdown with its
 * defaults: it builds React elements and never raw HTML (which shows as the text it is), and its URL
 * filter drops javascript: and data: links. test/markdown-rendering.test.ts holds it to that.
 * Images of other sites do not load: the page's Content-Security-Policy allows this site's only.
 */
import ReactMarkdown from 'react-markdown';

export function Markdown({ text }: { text: string }) {
  return (
    <div className="markdown">
      <ReactMarkdown>{text}</ReactMarkdown>
    </div>
  );
}
