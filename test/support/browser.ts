/** Debian's chromium, headless, for playwright-core: `npx playwright install` cannot download anything here. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

/** chromium from PATH, or a failure that says how to get it. */
export function chromiumPath(): string {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(d, 'chromium');
    if (d && existsSync(candidate)) return candidate;
  }
  assert.fail('chromium is not on PATH: the browser tests need it (apt-get install chromium; .ci/run installs it)');
}
