#!/usr/bin/env node
// The compiled CLI is built by `npm ci` (prepare) and `npm start` (prestart).
import '../dist/entrypoints/cli.js';
