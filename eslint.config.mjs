// ESLint for the TypeScript library and server (typescript-eslint, type-aware rules off for speed) and for the
// JavaScript around them (bin, scripts, tests, bench). Formatting is Prettier's job (.prettierrc.json).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'runtime/',
      'build/',
      '.cache/',
      'prebuilds/',
      'test/fixtures/',
      'bench/results/',
      'lib/playground/dist/',
    ],
  },
  js.configs.recommended,
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', ecmaVersion: 2023, globals: { ...globals.node } },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module', ecmaVersion: 2023, globals: { ...globals.node } },
  },
  ...tseslint.configs.recommended.map((config) => ({ ...config, files: ['lib/**/*.ts'] })),
  {
    files: ['lib/**/*.ts'],
    rules: {
      // The binding and runtime lookups load modules by computed path.
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    rules: { 'no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }] },
  },
);
