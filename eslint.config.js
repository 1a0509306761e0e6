import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'dist.next/', 'dist.old/', 'node_modules/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // An un-awaited promise is an error nobody will see: keel routes every failure to a supervisor.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['src/cli/**', 'bench/**', 'scripts/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // Layers: domain code (and the bus, topics and services it names) never reaches up into the components.
    // Only the actors, the config that names their kinds, the daemon and the CLI assemble them.
    files: ['src/**/*.ts', 'src/**/*.tsx'],
    ignores: ['src/actors/**', 'src/config/**', 'src/cli/**', 'src/daemon.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/actors', '**/actors/*'], message: 'domain code never imports src/actors: put the type with its domain (see README, Layout)' }] },
      ],
    },
  },
  {
    // src/ib/api.ts imports @stoqey/ib by its modules: the package's index loads rxjs, a sixth of a start.
    files: ['src/**/*.ts', 'src/**/*.tsx'],
    ignores: ['src/ib/api.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { paths: [{ name: '@stoqey/ib', allowTypeImports: true, message: 'import values from src/ib/api.ts: the package index loads rxjs at every start' }] },
      ],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    // The inspector page runs in the browser, not in node: only the browser globals it uses.
    files: ['src/inspector/web/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        history: 'readonly',
        WebSocket: 'readonly',
        fetch: 'readonly',
        requestAnimationFrame: 'readonly',
        setTimeout: 'readonly',
        setInterval: 'readonly',
        // Inherited from the node block above; there is no process in a page.
        process: 'off',
      },
    },
  },
);
