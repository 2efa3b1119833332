import { expect, test, type Page } from '@playwright/test';

const JACKPOTS = ['Cekpot Mega', 'Caspian Treasure', 'Lucky Sevens'];

/** Collects every console error and uncaught exception of the page. */
function recordErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('requestfailed', (request) => errors.push(`requestfailed: ${request.url()}`));
  return errors;
}

test('the server renders the lobby with every demo jackpot', async ({ request }) => {
  const response = await request.get('/');
  expect(response.status()).toBe(200);
  const html = await response.text();
  for (const name of JACKPOTS) expect(html).toContain(name);
  expect(html).toContain('data-hydrated="false"');
});

test('the lobby hydrates and its tier filter works', async ({ page }) => {
  const errors = recordErrors(page);
  await page.goto('/');

  const lobby = page.locator('main.lobby');
  await expect(lobby).toHaveAttribute('data-hydrated', 'true');
  const cards = page.locator('li.jackpot');
  await expect(cards).toHaveCount(3);
  await expect(page.locator('.jackpot__name')).toHaveText(JACKPOTS);
  await expect(page.locator('.jackpot__amount')).toHaveText(['10,000.00', '1,000.00', '100.00']);
  await expect(page.getByRole('progressbar').first()).toHaveAttribute('aria-valuenow', '10.0');
  await page.screenshot({ path: 'screenshots/lobby.png', fullPage: true });

  const mega = page.getByRole('button', { name: 'Mega', exact: true });
  await mega.click();
  await expect(mega).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByRole('button', { name: 'All', exact: true })).toHaveAttribute('aria-pressed', 'false');
  await expect(page.locator('li.jackpot:visible')).toHaveCount(1);
  await expect(page.locator('li.jackpot:visible .jackpot__name')).toHaveText('Cekpot Mega');
  await page.screenshot({ path: 'screenshots/lobby-mega-filter.png', fullPage: true });

  await page.getByRole('button', { name: 'All', exact: true }).click();
  await expect(page.locator('li.jackpot:visible')).toHaveCount(3);

  expect(errors).toEqual([]);
});
