// `npm run build`: compiles src/ to dist/ with tsc and copies the non-TypeScript assets the
// gateway serves (the dashboard's app.js and app.css) next to the compiled code. The build goes to
// a directory of its own and then takes dist/'s place, so a gateway or a test run starting from
// dist/ meanwhile never finds it half-written or gone.
import { execFileSync } from 'node:child_process';
import { cpSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const out = `${root}dist.build-${process.pid}`;
const old = `${root}dist.old-${process.pid}`;
rmSync(out, { recursive: true, force: true });
try {
  execFileSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`, '--outDir', out], { stdio: 'inherit', cwd: root });
  cpSync(`${root}src/routes/dashboard`, `${out}/routes/dashboard`, { recursive: true, filter: (src) => !src.endsWith('.ts') });
  try {
    renameSync(`${root}dist`, old);
  } catch {
    // no dist/ yet
  }
  renameSync(out, `${root}dist`);
} finally {
  rmSync(out, { recursive: true, force: true });
  rmSync(old, { recursive: true, force: true });
}
