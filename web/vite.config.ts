/** Builds the web app (web/) into web/dist, which the server serves (src/app/plugins/web.ts). */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Everything the page needs is a file under /assets/: the Content-Security-Policy allows no inline
    // script or style, and data: URIs only for images.
    assetsInlineLimit: 0,
    sourcemap: false,
  },
});
