/** Starts the web app in the page's #root. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app.tsx';
// Classes only: the Content-Security-Policy allows no inline style. Later files refine earlier ones.
import './styles/base.css';
import './styles/controls.css';
import './styles/board.css';
import './styles/pages.css';
import './styles/phone.css';

const root = document.getElementById('root');
if (!root) throw new Error('the page has no #root element');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
