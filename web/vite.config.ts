import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Built into web/dist and served by the API (Fastify) at / — same origin, no dev server needed.
// `npm run dev:web` proxies /api to a running `accunode api` on :8000 for development.
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 900,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8000' } },
});
