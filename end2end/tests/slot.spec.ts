import { expect, test, type Page } from '@playwright/test';

/** Collects every console error and uncaught exception of the page. */
function recordErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  return errors;
}

/**
 * Makes the page a Telegram client's web view, as Telegram's mobile apps show a
 * Mini App: `TelegramWebviewProxy` is there, and records what the page tells
 * the client (`web_app_ready`, …) in `window.telegramEvents`.
 */
async function asTelegramWebView(page: Page) {
  await page.addInitScript(() => {
    const events: string[] = [];
    (window as any).telegramEvents = events;
    (window as any).TelegramWebviewProxy = { postEvent: (type: string) => events.push(type) };
  });
}

/** A fresh launch for a test user: the dev page signs initData as Telegram would. */
async function launchUrl(page: Page, query: string): Promise<string> {
  const response = await page.request.get(`/dev/sign-in?${query}&format=json`);
  expect(response.status()).toBe(200);
  const { initData } = await response.json();
  return `/#tgWebAppData=${encodeURIComponent(initData)}&tgWebAppVersion=8.0&tgWebAppPlatform=ios`;
}

/** Micro-units as amounts are written: at least two decimals, no trailing zeros beyond. */
function canonical(micros: number): string {
  const [units, fraction] = (micros / 1_000_000).toFixed(6).split('.');
  return `${units}.${fraction.replace(/0+$/, '').padEnd(2, '0')}`;
}

/** The paths of the page's requests to the sign-in endpoints, in order. */
function recordAuth(page: Page): string[] {
  const calls: string[] = [];
  page.on('request', (request) => {
    const path = new URL(request.url()).pathname;
    if (path.startsWith('/api/auth/')) calls.push(path);
  });
  return calls;
}

/** Amounts as the page shows them ("CHIPS 1,000.00") in micro-units. */
function micros(text: string): number {
  return Math.round(Number(text.replace(/[^0-9.-]/g, '')) * 1_000_000);
}

test('a player launched from Telegram signs in, spins, and sees what the spin did', async ({ page }) => {
  await asTelegramWebView(page);
  const launch = await launchUrl(page, 'id=700001&first_name=Ayla&language_code=az');
  const errors = recordErrors(page);
  const auth = recordAuth(page);
  await page.goto(launch);
  await expect(page.locator('main.lobby')).toHaveAttribute('data-hydrated', 'true');

  await page.getByRole('link', { name: 'Play the slot' }).click();
  const slot = page.locator('main.slot');
  await expect(slot).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.slot__player')).toHaveText('Playing as Ayla');
  await expect(page.locator('.slot__balance')).toHaveText('CHIPS 1,000.00');
  await expect(page.locator('.reel__symbol')).toHaveCount(15);
  // Signed in with the launch, once, and Telegram was told the app is ready.
  expect(auth).toEqual(['/api/auth/telegram']);
  expect(await page.evaluate(() => (window as any).telegramEvents)).toContain('web_app_ready');
  await page.screenshot({ path: 'screenshots/slot-ready.png', fullPage: true });

  await page.getByRole('radio', { name: '2.00' }).click();
  await expect(page.getByRole('radio', { name: '2.00' })).toHaveAttribute('aria-checked', 'true');
  const spin = page.getByRole('button', { name: 'Spin' });
  const answered = page.waitForResponse((r) => r.url().endsWith('/api/spin'));
  await spin.click();
  const receipt = await (await answered).json();
  expect(receipt.betAmount).toBe('2.00');

  const outcome = page.locator('.slot__outcome');
  await expect(outcome).toHaveAttribute('data-win', String(receipt.isWin));
  if (receipt.isWin) {
    await expect(page.locator('.slot__result')).toHaveText(/^You won /);
  } else {
    await expect(page.locator('.slot__result')).not.toHaveText(/won/);
  }
  // The page shows the new balance, to the cent (amounts are shown truncated).
  const expected = 1_000_000_000 + micros(receipt.net);
  expect(micros(receipt.balance)).toBe(expected);
  await expect(page.locator('.slot__balance')).not.toHaveText('CHIPS 1,000.00');
  expect(micros(await page.locator('.slot__balance').innerText())).toBe(Math.floor(expected / 10_000) * 10_000);
  const symbols = await page.locator('.reel__symbol').evaluateAll((cells) => cells.map((c) => c.getAttribute('data-symbol')));
  expect(symbols).toEqual(receipt.reels.flat());
  await page.screenshot({ path: 'screenshots/slot-after-spin.png', fullPage: true });

  // The button rests for the minimum interval, then takes the next spin.
  await expect(spin).toBeDisabled();
  await expect(spin).toBeEnabled({ timeout: 5_000 });

  // A reload in the same Telegram view renews the session by refresh token:
  // the launch's initData signs in once and is not sent again.
  await page.reload();
  await expect(page.locator('main.slot')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.slot__player')).toHaveText('Playing as Ayla');
  await expect(page.locator('.slot__balance')).toHaveText(/^CHIPS /);
  expect(micros(await page.locator('.slot__balance').innerText())).toBe(Math.floor(expected / 10_000) * 10_000);
  expect(auth).toEqual(['/api/auth/telegram', '/api/auth/refresh']);
  expect(errors).toEqual([]);
});

test('a launch link opened in a browser outside Telegram signs no one in', async ({ page }) => {
  // An attacker's link carrying their own fresh initData, opened by a victim
  // in an ordinary browser tab: no Telegram web view, no Telegram frame.
  const launch = await launchUrl(page, 'id=700666&first_name=Mallory');
  const auth = recordAuth(page);
  await page.goto(launch.replace('/#', '/slot#'));
  await expect(page.locator('main.slot')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.getByRole('alert')).toHaveText('Open the slot from the Cekpot bot in Telegram to play.');
  await expect(page.locator('.slot__player')).toHaveCount(0);
  expect(auth).toEqual([]);
});

test('opened outside Telegram, the slot says how to play', async ({ page }) => {
  await page.goto('/slot');
  await expect(page.locator('main.slot')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.getByRole('alert')).toHaveText('Open the slot from the Cekpot bot in Telegram to play.');
  await expect(page.getByRole('button', { name: 'Spin' })).toBeDisabled();
  await page.screenshot({ path: 'screenshots/slot-outside-telegram.png', fullPage: true });
});

test('a spin whose answer was lost is sent again with its key, and played once', async ({ page }) => {
  await asTelegramWebView(page);
  const launch = await launchUrl(page, 'id=700002&first_name=Kamran&language_code=az');
  const keys: string[] = [];
  let lost: any = null;
  await page.route('**/api/spin', async (route) => {
    keys.push(route.request().headers()['idempotency-key']);
    if (keys.length === 1) {
      // The spin reaches the server and is played, but its answer is lost
      // on the way back (a dropped mobile connection).
      lost = await (await route.fetch()).json();
      await route.abort('connectionreset');
    } else {
      await route.continue();
    }
  });
  await page.goto(launch);
  await page.getByRole('link', { name: 'Play the slot' }).click();
  await expect(page.locator('.slot__balance')).toHaveText('CHIPS 1,000.00');
  const answered = page.waitForResponse((r) => r.url().endsWith('/api/spin') && r.status() === 200);
  await page.getByRole('button', { name: 'Spin' }).click();
  const receipt = await (await answered).json();
  // Sent again after a second, with the same key: the server answers the
  // spin it played, and the wallet moved once.
  expect(keys).toHaveLength(2);
  expect(keys[1]).toBe(keys[0]);
  expect(receipt.spinId).toBe(lost.spinId);
  expect(micros(receipt.balance)).toBe(1_000_000_000 + micros(receipt.net));
  await expect(page.locator('.slot__outcome')).toHaveAttribute('data-win', String(receipt.isWin));
  expect(micros(await page.locator('.slot__balance').innerText())).toBe(
    Math.floor(micros(receipt.balance) / 10_000) * 10_000,
  );
});

/** Telegram's default light theme, as its clients pass it in the launch link. */
const LIGHT_THEME = {
  bg_color: '#ffffff',
  text_color: '#000000',
  hint_color: '#707579',
  link_color: '#3390ec',
  button_color: '#3390ec',
  button_text_color: '#ffffff',
  secondary_bg_color: '#f4f4f5',
  header_bg_color: '#ffffff',
  accent_text_color: '#3390ec',
  section_bg_color: '#ffffff',
  section_header_text_color: '#3390ec',
  subtitle_text_color: '#707579',
  destructive_text_color: '#e53935',
};

/** The page's computed value of `property` on the first element `selector` matches. */
async function computed(page: Page, selector: string, property: string): Promise<string> {
  return page.locator(selector).first().evaluate((e, p) => getComputedStyle(e).getPropertyValue(p), property);
}

test('in a light Telegram theme the app takes its colours, light scheme included', async ({ page }) => {
  await asTelegramWebView(page);
  const theme = `&tgWebAppThemeParams=${encodeURIComponent(JSON.stringify(LIGHT_THEME))}`;
  const launch = (await launchUrl(page, 'id=700003&first_name=Leyla')) + theme;
  const errors = recordErrors(page);
  await page.goto(launch);
  await expect(page.locator('main.lobby')).toHaveAttribute('data-hydrated', 'true');
  // Telegram's own script sets the variables; the page follows them.
  expect(await computed(page, 'body', 'background-color')).toBe('rgb(255, 255, 255)');
  expect(await computed(page, 'body', 'color')).toBe('rgb(0, 0, 0)');
  expect(await computed(page, ':root', 'color-scheme')).toBe('light');
  expect(await computed(page, '.jackpot__card', 'background-color')).toBe('rgb(244, 244, 245)');
  await page.screenshot({ path: 'screenshots/lobby-light.png', fullPage: true });

  await page.getByRole('link', { name: 'Play the slot' }).click();
  await expect(page.locator('main.slot')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.slot__player')).toHaveText('Playing as Leyla');
  // Telegram's button colour, flat, as its own buttons are.
  expect(await computed(page, '.slot__spin', 'background-image')).toBe(
    'linear-gradient(90deg, rgb(51, 144, 236), rgb(51, 144, 236))',
  );
  const answered = page.waitForResponse((r) => r.url().endsWith('/api/spin'));
  await page.getByRole('button', { name: 'Spin' }).click();
  const receipt = await (await answered).json();
  await expect(page.locator('.slot__outcome')).toHaveAttribute('data-win', String(receipt.isWin));
  // What went to the jackpots, to the micro-unit (0.5 % of 1.00 is 0.005).
  const contributed = receipt.contributions.reduce((sum: number, c: any) => sum + micros(c.amount), 0);
  await expect(page.locator('.slot__meta')).toHaveText(
    `Spin #${receipt.spinId} · ${canonical(contributed)} went to the jackpots · nonce ${receipt.fairness.nonce}`,
  );
  await page.screenshot({ path: 'screenshots/slot-light.png', fullPage: true });
  expect(errors).toEqual([]);
});
