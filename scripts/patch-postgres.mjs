// postgres.js 3.4.x can crash the whole process when a connection closes while a small write is
// scheduled for the next tick: nextWrite() runs with socket === null and throws outside any
// query's promise (upstream porsager/postgres#1154/#1066/#1208; fixes not released). Found by
// the fault suite (PostgreSQL restarted under load). This makes the scheduled write a no-op on a
// closed connection: the queries it carried are already failed by the close handler.
// Idempotent; runs from `postinstall`.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
let root;
try {
  // The package exports no package.json; its CommonJS entry is <root>/cjs/src/index.js.
  root = path.resolve(path.dirname(require.resolve('postgres')), '..', '..');
} catch {
  process.exit(0); // not installed (yet): nothing to patch
}
const MARK = '/* accunode: closed-socket guard */';
const target = '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)';
// ESM (src/) and CommonJS (cjs/src/) builds carry the same code.
for (const file of [path.join(root, 'src', 'connection.js'), path.join(root, 'cjs', 'src', 'connection.js')]) {
  const src = readFileSync(file, 'utf8');
  if (src.includes(MARK)) continue;
  if (!src.includes(target)) {
    console.warn(`patch-postgres: ${file} does not have the expected nextWrite(); check whether the closed-socket crash is fixed upstream`);
    continue;
  }
  writeFileSync(
    file,
    src.replace(
      target,
      `  function nextWrite(fn) {\n    ${MARK}\n    if (!socket) { nextWriteTimer !== null && clearImmediate(nextWriteTimer); chunk = nextWriteTimer = null; return false }\n    const x = socket.write(chunk, fn)`,
    ),
  );
  console.log(`patch-postgres: guarded nextWrite() in ${path.relative(process.cwd(), file)}`);
}
