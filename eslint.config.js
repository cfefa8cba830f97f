// Lint: typescript-eslint's type-aware rules (floating promises and unsafe `any` are bugs here)
// plus eslint-plugin-security for the static half of P22.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import security from 'eslint-plugin-security';

export default defineConfig(
  { ignores: ['node_modules/**', '.tools/**', '.taskflow/**', 'web/dist/**', 'web/dist.*/**', 'coverage/**', 'test-output/**'] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  security.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['bin/*.js', 'web/vite.config.ts'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // TypeScript itself reports undefined names, with knowledge of Node's globals.
      'no-undef': 'off',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Object keys here come from our own typed code, not from users; the rule flags every a[b].
      'security/detect-object-injection': 'off',
      // Paths are built from the validated data directory; this rule cannot see validation.
      'security/detect-non-literal-fs-filename': 'off',
      'no-restricted-syntax': [
        'error',
        { selector: 'TSEnumDeclaration', message: 'No enums: keep the syntax erasable.' },
        { selector: 'ExportDefaultDeclaration', message: 'No default exports.' },
      ],
    },
  },
  {
    files: ['eslint.config.js'],
    extends: [tseslint.configs.disableTypeChecked],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    // The web app (web/tsconfig.json: DOM types, so TypeScript knows the browser's globals). Same
    // type-aware rules; an arrow that only calls a setter is how React handlers are written.
    files: ['web/**/*.ts', 'web/**/*.tsx'],
    rules: {
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
    },
  },
  {
    // Vite reads its configuration from a default export.
    files: ['web/vite.config.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['**/*.test.ts', 'test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
    },
  },
);
