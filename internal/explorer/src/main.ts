// The explorer's script: routes on the path and renders the page.
import { NeedToken, setToken, token } from "./api.js";
import { h, replace } from "./dom.js";
import { checkpointPage, entryPage, overviewPage, searchPage, verifyPage } from "./pages.js";

async function route(main: HTMLElement): Promise<void> {
  const path = location.pathname;
  const m = /^\/entries\/(.+)$/.exec(path);
  if (path === "/") return overviewPage(main);
  if (path === "/search") return searchPage(main, new URLSearchParams(location.search));
  if (path === "/checkpoints") return checkpointPage(main);
  if (path === "/verify") return verifyPage(main);
  if (m) return entryPage(main, decodeURIComponent(m[1]!));
  replace(main, h("h1", {}, "Not found"), h("p", {}, "This page does not exist. ", h("a", { href: "/" }, "Back to the log.")));
}

function tokenForm(main: HTMLElement, err: NeedToken): void {
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", required: true });
  const form = h(
    "form",
    {
      class: "tokenform",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        setToken(input.value.trim());
        location.reload();
      },
    },
    h("label", { for: "token" }, "Read token (kept in this tab only)"),
    input,
    h("p", {}, h("button", { type: "submit" }, "Use this token")),
  );
  replace(
    main,
    h("h1", {}, "This log needs a token to read"),
    h(
      "p",
      {},
      token()
        ? `The token you gave was refused (${err.code}). Give another one.`
        : "Reading this log requires authentication. Give a bearer token that has the read permission; it is kept in this browser tab's session storage and sent only to this log.",
    ),
    form,
  );
  input.focus();
}

async function start(): Promise<void> {
  const main = document.getElementById("main")!;
  // The nav link of the current page.
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav a")) {
    if (a.getAttribute("href") === location.pathname && !a.classList.contains("brand")) a.setAttribute("aria-current", "page");
  }
  try {
    await route(main);
  } catch (e) {
    if (e instanceof NeedToken) return tokenForm(main, e);
    replace(main, h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, e instanceof Error ? e.message : String(e)));
  } finally {
    document.body.dataset.ready = "true";
  }
}

void start();
