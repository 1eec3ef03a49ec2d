#!/usr/bin/env node
// The `callbox-device` command (package.json "bin"): runs the TypeScript program through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../main.ts');
await main(process.argv);
