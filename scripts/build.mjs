// `npm run build`: compiles src/ to dist/ with tsc and copies the non-TypeScript assets the
// gateway serves (the dashboard's app.js and app.css) next to the compiled code.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(`${root}dist`, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`], { stdio: 'inherit', cwd: root });
cpSync(`${root}src/routes/dashboard`, `${root}dist/routes/dashboard`, { recursive: true, filter: (src) => !src.endsWith('.ts') });
