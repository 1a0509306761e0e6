/**
 * The compiled build: bin/keel.js runs dist/ only while it is a build of the
 * sources as they are now, and otherwise runs the sources through tsx, saying
 * so (KEEL_SOURCE=1: silently, as asked). The mechanism is tried on a small
 * project in a temp directory (keel's own bin/ and build script, a two-line
 * main), so the test neither needs nor disturbs keel's dist/.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { buildState, inputFiles, STAMP } from '../../bin/build-state.js';
import { runKeel } from '../support/process.js';

const REPO = resolve('.');
/** Prints how it runs: 'compiled' from dist/, 'source' through tsx. */
const MAIN = `export async function main(argv: string[]): Promise<number> {
  process.stdout.write(\`\${import.meta.url.endsWith('.js') ? 'compiled' : 'source'} \${argv.join(' ')}\\n\`);
  return 0;
}
`;

/** A project laid out like keel: its bin/ and scripts/build.js, tsconfigs, a main, a web page, keel's node_modules. */
function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-build-'));
  for (const file of ['bin/keel.js', 'bin/build-state.js', 'scripts/build.js', 'tsconfig.json', 'tsconfig.build.json']) cpSync(join(REPO, file), join(dir, file));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'), 'dir');
  mkdirSync(join(dir, 'src/cli'), { recursive: true });
  writeFileSync(join(dir, 'src/cli/main.ts'), MAIN);
  mkdirSync(join(dir, 'src/inspector/web'), { recursive: true });
  writeFileSync(join(dir, 'src/inspector/web/index.html'), '<!doctype html><script type="module" src="page.js"></script>\n');
  writeFileSync(join(dir, 'src/inspector/web/page.js'), "// served as it is written\nexport const x = 1;\n");
  return dir;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  const child = spawn(process.execPath, args, { cwd: dir, env: { ...process.env, KEEL_SOURCE: undefined, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

const keel = (dir: string, env: NodeJS.ProcessEnv = {}) => run(dir, ['bin/keel.js', 'hello'], env);

const build = (dir: string) => run(dir, ['scripts/build.js']);

test('the build state: a stamp of the inputs is current until a source file or tsconfig changes, appears or goes', () => {
  const dir = project();
  assert.deepEqual(buildState(dir), { current: false, reason: 'there is no build in dist/' });
  const stamp = () => {
    mkdirSync(join(dir, 'dist'), { recursive: true });
    writeFileSync(join(dir, STAMP), JSON.stringify({ files: inputFiles(dir) }));
  };
  stamp();
  assert.deepEqual(buildState(dir), { current: true });
  assert.deepEqual(Object.keys(inputFiles(dir)), ['src/cli/main.ts', 'src/inspector/web/index.html', 'src/inspector/web/page.js', 'tsconfig.json', 'tsconfig.build.json']);

  writeFileSync(join(dir, 'src/cli/main.ts'), `${MAIN}// edited\n`);
  assert.deepEqual(buildState(dir), { current: false, reason: 'src/cli/main.ts changed since dist/ was built' });
  stamp();
  // The same bytes with another mtime (git checkout, a save without changes) count as changed: never the other way round.
  const { mtime } = statSync(join(dir, 'tsconfig.json'));
  utimesSync(join(dir, 'tsconfig.json'), mtime, new Date(mtime.getTime() - 60_000));
  assert.deepEqual(buildState(dir), { current: false, reason: 'tsconfig.json changed since dist/ was built' });
  stamp();
  writeFileSync(join(dir, 'src/extra.ts'), 'export const extra = 1;\n');
  assert.deepEqual(buildState(dir), { current: false, reason: 'src/extra.ts is new since dist/ was built' });
  stamp();
  rmSync(join(dir, 'src/extra.ts'));
  assert.deepEqual(buildState(dir), { current: false, reason: 'src/extra.ts is gone since dist/ was built' });
  stamp();
  // Editors' hidden lock and swap files are not sources.
  writeFileSync(join(dir, 'src/cli/.main.ts.swp'), 'x');
  assert.deepEqual(buildState(dir), { current: true });
});

test('bin/keel.js runs dist/ only while it is current; else the sources through tsx, with one line on stderr', { timeout: 180_000 }, async () => {
  const dir = project();
  const none = await keel(dir);
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stdout, 'source hello\n');
  assert.match(none.stderr, /^keel: there is no build in dist\/; running the sources through tsx \(slower to start\): npm run build to refresh dist\/\n$/);

  const built = await build(dir);
  assert.equal(built.code, 0, built.stderr);
  assert.deepEqual(buildState(dir), { current: true });
  assert.ok(!existsSync(join(dir, 'dist.next')) && !existsSync(join(dir, 'dist.old')), 'no build directories left behind');
  // The inspector's page is served from dist/ as written: copied, not compiled.
  assert.deepEqual(readdirSync(join(dir, 'dist/inspector/web')).sort(), ['index.html', 'page.js']);
  assert.equal(readFileSync(join(dir, 'dist/inspector/web/page.js'), 'utf8'), readFileSync(join(dir, 'src/inspector/web/page.js'), 'utf8'));

  const compiled = await keel(dir);
  assert.deepEqual(compiled, { code: 0, stdout: 'compiled hello\n', stderr: '' });
  assert.deepEqual(await keel(dir, { KEEL_SOURCE: '1' }), { code: 0, stdout: 'source hello\n', stderr: '' }, 'KEEL_SOURCE=1 runs the sources, silently');

  writeFileSync(join(dir, 'src/cli/main.ts'), MAIN.replace("'source'", "'source, edited'"));
  const stale = await keel(dir);
  assert.equal(stale.stdout, 'source, edited hello\n', 'the edited source runs, not the stale build');
  assert.equal(stale.stderr, 'keel: src/cli/main.ts changed since dist/ was built; running the sources through tsx (slower to start): npm run build to refresh dist/\n');

  // A build that fails leaves the last one in place, still stale: it is never stamped as current.
  writeFileSync(join(dir, 'src/cli/main.ts'), `${MAIN}export const wrong: number = 'text';\n`);
  const failed = await build(dir);
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /tsc failed; dist\/ is unchanged/);
  assert.ok(existsSync(join(dir, 'dist/cli/main.js')));
  assert.deepEqual(buildState(dir), { current: false, reason: 'src/cli/main.ts changed since dist/ was built' });
  assert.equal((await keel(dir)).stdout, 'source hello\n');
});

test('keel --version says whether it runs compiled or from the sources, as the state of dist/ says it must', async () => {
  const source = runKeel(['--version'], { KEEL_SOURCE: '1' });
  assert.equal(await source.exited, 0);
  assert.deepEqual(source.stdout, [`keel 0.1.0 (sources through tsx: ${join(REPO, 'src/cli/main.ts')})`]);
  assert.deepEqual(source.stderr, []);

  const state = buildState(REPO);
  const plain = runKeel(['--version'], { KEEL_SOURCE: undefined });
  assert.equal(await plain.exited, 0);
  if (state.current) {
    assert.deepEqual(plain.stdout, [`keel 0.1.0 (compiled: ${join(REPO, 'dist/cli/main.js')})`]);
    assert.deepEqual(plain.stderr, []);
  } else {
    assert.deepEqual(plain.stdout, [`keel 0.1.0 (sources through tsx: ${join(REPO, 'src/cli/main.ts')})`]);
    assert.deepEqual(plain.stderr, [`keel: ${state.reason}; running the sources through tsx (slower to start): npm run build to refresh dist/`]);
  }
});

test('compiled, the inference pool and the drift monitor start their threads from dist/ under plain node', { timeout: 60_000 }, async (t) => {
  const state = buildState(REPO);
  if (!state.current) {
    t.skip(`${state.reason}: npm run build to test the compiled workers`);
    return;
  }
  const script = `const { InferencePool } = await import(${JSON.stringify(join(REPO, 'dist/models/inference/pool.js'))});
const { MonitorThread } = await import(${JSON.stringify(join(REPO, 'dist/models/monitor-thread.js'))});
const { DEFAULT_MONITOR } = await import(${JSON.stringify(join(REPO, 'dist/models/monitor.js'))});
const pool = await InferencePool.start({ workers: 2, timeoutMs: 30000 });
console.log('workers ready: ' + pool.size);
await pool.close();
const monitor = await MonitorThread.start(['SPY'], 4, 1000, DEFAULT_MONITOR, (err) => { throw err; });
console.log('drift monitor: ' + (await monitor.report()).length + ' models watched');
await monitor.close();`;
  const ran = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 50_000 });
  assert.equal(ran.status, 0, ran.stderr);
  assert.equal(ran.stdout, 'workers ready: 2\ndrift monitor: 0 models watched\n');
});
