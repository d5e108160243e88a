/** Debian's Chromium (tools/setup-e2e.sh installs it), driven by playwright-core, as MACHINE-NOTES says. */
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.NUGGETS_CHROMIUM ?? '/usr/bin/chromium';

if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: run bash tools/setup.sh (it calls tools/setup-e2e.sh)`);

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
