// Bundles the extension (dist/extension.js) and the end-to-end test module
// (out/e2e/suite.js) with esbuild; `vscode` is provided by the editor at run time.
import { build } from 'esbuild';

const common = { bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['vscode'], sourcemap: true, logLevel: 'warning' };
await build({ ...common, minify: true, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.js' });
await build({ ...common, entryPoints: ['test/e2e/suite/index.ts'], outfile: 'out/e2e/suite.js' });
