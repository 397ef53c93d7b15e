// `npm run build` (and the first half of `npm start`): transpiles src/ to dist/ with esbuild, one
// output file per source file (no bundling: dist/ mirrors src/, so paths such as the migrations
// folder resolve as they do from src/), and copies the non-TypeScript assets the gateway serves
// (the dashboard's scripts and styles) next to them. esbuild is a production dependency (tsx runs
// on it too), so this works after `npm ci --omit=dev`; it does not type-check: that is
// `npm run typecheck` (tsc), which CI runs.
//
// The build goes to a directory of its own and then takes dist/'s place, so a gateway or a test
// run starting from dist/ meanwhile never finds it half-written or gone.
import { cpSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const out = `${root}dist.build-${process.pid}`;
const old = `${root}dist.old-${process.pid}`;
// Human progress on stderr (stdout stays for the gateway's JSON logs); quiet when LOG_LEVEL asks
// for warnings or less, as the gateway's own start lines are.
const quiet = ['warn', 'error', 'fatal', 'silent'].includes((process.env.LOG_LEVEL ?? '').trim().toLowerCase());
const say = (line) => quiet || process.stderr.write(`${line}\n`);

/** src/**\/*.ts without the tests (tsconfig.build.json's selection). */
function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

const started = performance.now();
say('building dist/ from src/ (esbuild; type checks are npm run typecheck) ...');
rmSync(out, { recursive: true, force: true });
try {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    throw new Error(`esbuild is not installed (${err.message}): run npm ci first`);
  }
  const entryPoints = sources(src);
  const result = await esbuild.build({
    entryPoints,
    outdir: out,
    outbase: src,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    bundle: false,
    sourcemap: false,
    logLevel: 'silent',
  });
  for (const warning of result.warnings) say(`build warning: ${warning.text}`);
  cpSync(join(src, 'routes/dashboard'), join(out, 'routes/dashboard'), { recursive: true, filter: (path) => !path.endsWith('.ts') });
  try {
    renameSync(`${root}dist`, old);
  } catch {
    // no dist/ yet
  }
  renameSync(out, `${root}dist`);
  say(`built dist/ (${entryPoints.length} files) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
} catch (err) {
  // esbuild's own report names file, line and column of each syntax error: one line each.
  const errors = err.errors?.length
    ? err.errors.map((e) => `build error: ${e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ` : ''}${e.text}`)
    : [`build error: ${err.message}`];
  for (const line of errors) process.stderr.write(`${line}\n`);
  process.exitCode = 1;
} finally {
  rmSync(out, { recursive: true, force: true });
  rmSync(old, { recursive: true, force: true });
}
