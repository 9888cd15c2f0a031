'use strict';
// A headless Chromium for the playground's tests and screenshots: the system's (Debian's `chromium` package, which
// .ci/run installs), driven by playwright-core. Browsers are never downloaded.
const fs = require('fs');

// The Debian binary first (/usr/bin/chromium is a wrapper script around it), then other common locations.
const CANDIDATES = [
  process.env.CHROMIUM_PATH,
  '/usr/lib/chromium/chromium',
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
].filter(Boolean);

function chromiumPath() {
  return CANDIDATES.find((file) => fs.existsSync(file));
}

/**
 * Launches headless Chromium. Resolves {browser} or {skip: reason} when there is no Chromium or it cannot start
 * (e.g. a machine without root to apt-get install it).
 */
async function launchChromium() {
  const executablePath = chromiumPath();
  if (!executablePath)
    return { skip: `no Chromium found (${CANDIDATES.join(', ')}); install Debian's chromium package (.ci/run does) or set CHROMIUM_PATH` };
  const { chromium } = require('playwright-core');
  try {
    // --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
    const browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    return { browser };
  } catch (error) {
    return { skip: `Chromium at ${executablePath} did not start: ${error.message.split('\n')[0]}` };
  }
}

module.exports = { chromiumPath, launchChromium };
