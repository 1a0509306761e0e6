#!/usr/bin/env node
// Runs keel's TypeScript sources directly through tsx, so there is no build step to forget.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

// keel's own tsconfig wherever it is run from (JSX in the terminal inspector needs it).
register({ tsconfig: fileURLToPath(import.meta.resolve('../tsconfig.json')) });
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
process.exit(code);
