// Drives the OLD React dashboard's workspace page, unchanged, against our workspace API, in
// headless Chromium, and reports what a user sees. A manual compatibility check, not a test of
// `uv run pytest` (the old dashboard is not part of this repository): run it through
// tests/compat/old_dashboard.sh, which exports the dashboard, starts its Vite server with the
// proxy pointed at our API and calls this script.
//
//   DASHBOARD_URL  the old dashboard's Vite server, e.g. http://127.0.0.1:39080
//   API_URL        our workspace API, e.g. http://127.0.0.1:3200 (read directly to compare)
//   SHOTS          folder for the screenshots
//   CHROMIUM       the browser (default /usr/bin/chromium)
//
// Each step prints `ok` or `FAIL` with what was expected and what the page or the API showed;
// the exit code is the number of failed steps.

"use strict";

const { chromium } = require("playwright-core");
const fs = require("node:fs");
const path = require("node:path");

const DASHBOARD_URL = process.env.DASHBOARD_URL || "http://127.0.0.1:39080";
const API_URL = process.env.API_URL || "http://127.0.0.1:3200";
const SHOTS = process.env.SHOTS || "/tmp/old-dashboard-shots";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// A slug no seeded category uses, so runs against a used database do not collide.
const SLUG = process.env.SLUG || `alertas-ui-${Date.now().toString(36)}`;
const DISPLAY = "Alertas UI";

let failures = 0;
const check = (step, ok, detail) => {
  if (!ok) failures += 1;
  console.log(`${ok ? "ok  " : "FAIL"}  ${step}${detail ? `: ${detail}` : ""}`);
};

async function api(pathname, init) {
  const response = await fetch(API_URL + pathname, init);
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

async function shot(page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`      screenshot ${file}`);
}

// The categories table of the "Categorias" card: one entry per row as the user reads it.
async function categoryRows(page) {
  return page.$$eval("table", (tables) => {
    const table = tables.find((t) => /Ordem/.test(t.querySelector("thead")?.textContent || ""));
    if (!table) return null;
    return [...table.querySelectorAll("tbody tr")].map((tr) => {
      const cells = [...tr.querySelectorAll("td")];
      if (cells.length < 5) return { text: tr.textContent.trim() };
      const name = cells[1].querySelector("span.font-medium")?.textContent?.trim();
      const slug = (cells[1].textContent.match(/slug:\s*(\S+)/) || [])[1];
      return {
        order: cells[0].textContent.trim(),
        display: name,
        slug,
        description: cells[2].textContent.trim(),
        status: cells[3].textContent.trim(),
      };
    });
  });
}

function rowOf(rows, slug) {
  return (rows || []).find((r) => r.slug === slug);
}

async function waitForRows(page, predicate, timeout = 8000) {
  const deadline = Date.now() + timeout;
  let rows = null;
  while (Date.now() < deadline) {
    rows = await categoryRows(page);
    if (rows && predicate(rows)) return rows;
    await page.waitForTimeout(200);
  }
  return rows;
}

// Runs one step; an exception fails the step (with a screenshot) and the next step still runs.
async function step(page, name, body) {
  try {
    await body();
  } catch (error) {
    failures += 1;
    console.log(`FAIL  ${name} stopped: ${error.message.split("\n")[0]}`);
    await shot(page, `error-${name.replace(/\W+/g, "-")}`).catch(() => {});
  }
}

async function visibleText(page) {
  return page.evaluate(() => document.body.innerText);
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-gpu",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1440, height: 2600 } });
  const workspaceCalls = [];
  page.on("response", (r) => {
    if (r.url().includes("/api/workspace/"))
      workspaceCalls.push(`${r.request().method()} ${r.url().replace(DASHBOARD_URL, "")} → ${r.status()}`);
  });
  page.on("dialog", (d) => d.accept()); // the delete confirmation
  page.setDefaultTimeout(8000);
  const row = page.locator("tbody tr", { hasText: `slug: ${SLUG}` });
  let rows = null;
  let items = [];
  try {
    await page.goto(`${DASHBOARD_URL}/#/workspace`, { waitUntil: "domcontentloaded", timeout: 60000 });
    await page.getByText("Categorias", { exact: true }).first().waitFor({ timeout: 30000 });

    // 1. The list: display names, active state and order as the API holds them.
    await step(page, "list", async () => {
      const all = (await api("/api/categories?active_only=false")).body.data || [];
      rows = await waitForRows(page, (r) => r.length >= all.length && r.every((x) => x.slug));
      await shot(page, "1-categories");
      const wrong = all.filter((c) => {
        const row = rowOf(rows, c.name);
        return (
          !row ||
          row.display !== c.display_name ||
          row.order !== String(c.display_order) ||
          row.status !== (c.is_active ? "Ativa" : "Inativa")
        );
      });
      check(
        "categories list: display name, order and Ativa/Inativa of every category",
        wrong.length === 0 && all.length > 0,
        wrong.length
          ? `${wrong.length} of ${all.length} wrong, e.g. API ${JSON.stringify(wrong[0])} page ${JSON.stringify(rowOf(rows, wrong[0].name))}`
          : `${all.length} rows, first ${JSON.stringify(rows[0])}`,
      );
      const orders = rows.map((r) => Number(r.order));
      check(
        "categories in display order",
        orders.every((o, i) => i === 0 || orders[i - 1] <= o),
        orders.join(","),
      );
    });

    // 2. Create "Alertas UI", order 1: first with a description the API refuses (the form must
    //    say why), then with a good one.
    await step(page, "create", async () => {
      await page.locator('button[title="Adicionar categoria"]').click();
      await page.getByPlaceholder("Ex.: Documentação").fill(DISPLAY);
      await page.getByPlaceholder("documentacao-interna").fill(SLUG);
      await page.getByPlaceholder("Contextualize quando utilizar esta categoria (opcional)").fill("x".repeat(501));
      await page.locator('input[type="number"]').fill("1");
      await page.getByRole("button", { name: "Criar categoria" }).click();
      await page
        .getByText("must be at most 500 characters", { exact: false })
        .first()
        .waitFor()
        .catch(() => {});
      await shot(page, "2-create-refused");
      const said = await visibleText(page);
      check(
        "create refused: the form says why",
        said.includes("description must be at most 500 characters"),
        (said.match(/.*(undefined|must be|Failed).*/) || ["(no message)"])[0],
      );
      await page.getByPlaceholder("Contextualize quando utilizar esta categoria (opcional)").fill("Alertas de preço");
      await page.getByRole("button", { name: "Criar categoria" }).click();
      rows = await waitForRows(page, (r) => Boolean(rowOf(r, SLUG)));
      await shot(page, "2-created");
      const stored = (await api(`/api/categories/${SLUG}`)).body.data;
      check(
        "create: stored with the display name and order typed",
        stored && stored.display_name === DISPLAY && stored.display_order === 1,
        JSON.stringify(stored && { display_name: stored.display_name, display_order: stored.display_order }),
      );
      check(
        "create: the new row shows them",
        rowOf(rows, SLUG)?.display === DISPLAY && rowOf(rows, SLUG)?.order === "1",
        JSON.stringify(rowOf(rows, SLUG)),
      );
    });

    // 3. Edit it: display name and description.
    await step(page, "edit", async () => {
      await row.locator('button[title="Editar categoria"]').click();
      await page.getByPlaceholder("Ex.: Documentação").fill("Alertas de Preço");
      await page
        .getByPlaceholder("Contextualize quando utilizar esta categoria (opcional)")
        .fill("Quando o preço cruza um alvo");
      await page.getByRole("button", { name: "Salvar alterações" }).click();
      rows = await waitForRows(page, (r) => rowOf(r, SLUG)?.display === "Alertas de Preço");
      await shot(page, "3-edited");
      const stored = (await api(`/api/categories/${SLUG}`)).body.data;
      check(
        "edit: stored",
        stored && stored.display_name === "Alertas de Preço" && stored.description === "Quando o preço cruza um alvo",
        JSON.stringify(stored && { display_name: stored.display_name, description: stored.description }),
      );
      check("edit: shown", rowOf(rows, SLUG)?.display === "Alertas de Preço", JSON.stringify(rowOf(rows, SLUG)));
    });

    // 4. Toggle: Ativa → Inativa, still listed after a reload, then back.
    await step(page, "toggle", async () => {
      await row.getByRole("button", { name: "Ativa", exact: true }).click();
      rows = await waitForRows(page, (r) => rowOf(r, SLUG)?.status === "Inativa");
      const stored = (await api(`/api/categories/${SLUG}`)).body.data;
      check(
        "toggle: Inativa on the page and is_active false in the API",
        rowOf(rows, SLUG)?.status === "Inativa" && stored?.is_active === false,
        `${rowOf(rows, SLUG)?.status} / ${stored?.is_active}`,
      );
      await page.getByRole("button", { name: "Atualizar" }).click();
      rows = await waitForRows(page, (r) => Boolean(rowOf(r, SLUG)));
      await shot(page, "4-toggled-off");
      check(
        "toggle: the inactive category is still listed after Atualizar",
        rowOf(rows, SLUG)?.status === "Inativa",
        JSON.stringify(rowOf(rows, SLUG)),
      );
      await row.getByRole("button", { name: "Inativa", exact: true }).click();
      rows = await waitForRows(page, (r) => rowOf(r, SLUG)?.status === "Ativa");
      check("toggle back: Ativa", rowOf(rows, SLUG)?.status === "Ativa", JSON.stringify(rowOf(rows, SLUG)));
    });

    // 5. Create an item in the new category.
    await step(page, "item", async () => {
      await page.locator('button[title="Adicionar Item"]').click();
      const dialog = page.getByRole("dialog");
      await dialog.locator("#title").fill("Alerta de stop no BOVAW32");
      await dialog.locator("#description").fill("Avisar quando o preço tocar 0,70");
      await dialog.locator(`#category option[value="${SLUG}"]`).waitFor({ state: "attached", timeout: 8000 });
      const offered = await dialog.locator("#category option").evaluateAll((os) => os.map((o) => o.value));
      check(
        "new item: the active categories are offered",
        offered.includes(SLUG) && offered.includes("feature"),
        offered.join(","),
      );
      await dialog.locator("#category").selectOption(SLUG);
      await dialog.locator("#priority").selectOption("high");
      await dialog.locator("#tags").fill("alertas, bovaw32");
      await dialog.getByRole("button", { name: "Adicionar Item" }).click();
      await page
        .getByText("criado com sucesso", { exact: false })
        .waitFor({ timeout: 8000 })
        .catch(() => {});
      await shot(page, "5-item-created");
      items = (await api(`/api/items?category=${SLUG}`)).body.data || [];
      check(
        "new item: stored",
        items.length === 1 && items[0].priority === "high" && items[0].tags.join(",") === "alertas,bovaw32",
        JSON.stringify(
          items.map((i) => ({ title: i.title, category: i.category, priority: i.priority, tags: i.tags })),
        ),
      );
      await dialog.waitFor({ state: "detached", timeout: 8000 }).catch(() => {});
      const text = await visibleText(page);
      check("new item: listed on the page", text.includes("Alerta de stop no BOVAW32"));
    });

    // 6. Delete the category while the item uses it: refused with the old message.
    await step(page, "delete-refused", async () => {
      await row.locator('button[title="Excluir categoria"]').click();
      await page
        .getByText("items are using it", { exact: false })
        .first()
        .waitFor({ timeout: 8000 })
        .catch(() => {});
      await shot(page, "6-delete-refused");
      const refusal = await visibleText(page);
      check(
        "delete while in use: the page says why",
        refusal.includes(`Cannot delete category '${SLUG}' - 1 items are using it`),
        (refusal.match(/.*(Cannot delete|Failed|JSON|undefined).*/) || ["(no message)"])[0],
      );
      check("delete while in use: the category is kept", (await api(`/api/categories/${SLUG}`)).status === 200);
    });

    // 7. Delete the item (through the API), then the category through the page.
    await step(page, "delete", async () => {
      for (const item of items) await api(`/api/items/${item.id}`, { method: "DELETE" });
      await page.getByRole("button", { name: "Atualizar" }).click();
      await waitForRows(page, (r) => Boolean(rowOf(r, SLUG)));
      await row.locator('button[title="Excluir categoria"]').click();
      rows = await waitForRows(page, (r) => !rowOf(r, SLUG));
      await page.waitForTimeout(500);
      await shot(page, "7-deleted");
      const after = await visibleText(page);
      check("delete: gone from the page", !rowOf(rows, SLUG));
      check("delete: gone from the API (404)", (await api(`/api/categories/${SLUG}`)).status === 404);
      check(
        "delete: no error shown",
        !/Unexpected end of JSON|Failed to delete|Erro\n/.test(after),
        (after.match(/.*(Unexpected|Failed|Erro).*/) || [""])[0],
      );
    });
  } catch (error) {
    failures += 1;
    console.log(`FAIL  the run stopped: ${error.message.split("\n")[0]}`);
    await shot(page, "error").catch(() => {});
  } finally {
    console.log("\nworkspace requests the page made:");
    for (const call of [...new Set(workspaceCalls)]) console.log(`  ${call}`);
    await browser.close();
  }
  console.log(`\n${failures === 0 ? "all steps passed" : `${failures} step(s) failed`}; screenshots in ${SHOTS}`);
  process.exit(failures);
}

main();
