// What both pages share: their strings in English and French, the credentials, the API calls, and the one
// place server HTML enters the page.
"use strict";

const STRINGS = {
  en: {
    actions: "Actions",
    adminView: "Admin",
    answered: "Answered",
    ask: "Ask",
    backToChat: "Chat",
    byDay: "Questions per day and share not found",
    chartLabel: "{questions} questions over {days} days; {rate} not found",
    chatModel: "Chat model",
    chunks: "Chunks",
    collection: "Collection",
    conversation: "Conversation",
    count: "Times",
    disliked: "Answers rated not helpful",
    down: "Not helpful",
    duration: "Duration",
    embeddingModel: "Embedding model",
    errorGeneric: "Something went wrong. Please try again.",
    errors: "Errors",
    extractive: "none (answers from passages)",
    failed: "failed",
    feedbackThanks: "Thanks for your feedback.",
    index: "Index",
    keys: "Enter sends, Shift+Enter starts a new line.",
    lastAsked: "Last asked",
    lastIngest: "Last good sync",
    legendNotFound: "not found (%)",
    legendQuestions: "questions",
    loading: "Loading…",
    newConversation: "New conversation",
    newConversationDone: "New conversation started.",
    noReport: "No report yet: it appears once questions have been asked.",
    noSyncs: "No sync yet.",
    notFound: "Not found",
    notSignedInAdmin: "This view needs the admin token (or your proxy's admin group).",
    ok: "ok",
    pages: "Pages",
    period: "Period",
    question: "Question",
    questionLabel: "Your question",
    questions: "Questions",
    rateLimited: "Too many questions at once: try again in {seconds} s.",
    ratings: "Helpful / not helpful",
    refresh: "Refresh",
    report: "Gap report",
    searching: "Searching the wiki…",
    send: "Send",
    signIn: "Sign in",
    signInHelp: "Paste the access token your administrator gave you. It is kept in this tab only.",
    signInHelpAdmin: "Paste the admin token (ADMIN_TOKEN). It is kept in this tab only.",
    signInTitle: "Sign in",
    signOut: "Sign out",
    skipToQuestion: "Skip to the question",
    sources: "Sources",
    space: "Space",
    spaces: "Spaces",
    allSpaces: "All spaces",
    started: "Started",
    sync: "Sync now",
    syncBusy: "A sync is already running.",
    syncQueued: "Sync asked of the writer replica ({writer}).",
    syncRunning: "Sync running…",
    syncStarted: "Sync started.",
    syncs: "Recent syncs",
    changes: "Added / updated / removed",
    status: "Status",
    tokenInvalid: "This token was refused.",
    tokenLabel: "Access token",
    topPages: "Most cited pages",
    perSpace: "Per space",
    comments: "Comments",
    unanswered: "Unanswered questions",
    up: "Helpful",
    welcome: "Ask anything about the wiki, in English or French. Every answer links the pages it used; follow-up questions keep the context.",
    writing: "Writing the answer…",
    you: "You",
    bot: "WikiBot",
    days: "Last {days} days",
    answer: "Answer",
    pageTitle: "Page",
    none: "None.",
  },
  fr: {
    actions: "Actions",
    adminView: "Administration",
    answered: "Répondues",
    ask: "Demander",
    backToChat: "Discussion",
    byDay: "Questions par jour et part sans réponse",
    chartLabel: "{questions} questions sur {days} jours ; {rate} sans réponse",
    chatModel: "Modèle de langage",
    chunks: "Passages",
    collection: "Collection",
    conversation: "Conversation",
    count: "Fois",
    disliked: "Réponses jugées pas utiles",
    down: "Pas utile",
    duration: "Durée",
    embeddingModel: "Modèle d’embedding",
    errorGeneric: "Un problème est survenu. Veuillez réessayer.",
    errors: "Erreurs",
    extractive: "aucun (réponses tirées des passages)",
    failed: "échec",
    feedbackThanks: "Merci pour votre avis.",
    index: "Index",
    keys: "Entrée envoie, Maj+Entrée ajoute une ligne.",
    lastAsked: "Dernière fois",
    lastIngest: "Dernière synchronisation réussie",
    legendNotFound: "sans réponse (%)",
    legendQuestions: "questions",
    loading: "Chargement…",
    newConversation: "Nouvelle conversation",
    newConversationDone: "Nouvelle conversation commencée.",
    noReport: "Pas encore de rapport : il apparaît une fois des questions posées.",
    noSyncs: "Aucune synchronisation pour l’instant.",
    notFound: "Sans réponse",
    notSignedInAdmin: "Cette vue demande le jeton d’administration (ou le groupe d’administration de votre proxy).",
    ok: "ok",
    pages: "Pages",
    period: "Période",
    question: "Question",
    questionLabel: "Votre question",
    questions: "Questions",
    rateLimited: "Trop de questions à la fois : réessayez dans {seconds} s.",
    ratings: "Utiles / pas utiles",
    refresh: "Actualiser",
    report: "Rapport des lacunes",
    searching: "Recherche dans le wiki…",
    send: "Envoyer",
    signIn: "Se connecter",
    signInHelp: "Collez le jeton d’accès fourni par votre administrateur. Il n’est gardé que dans cet onglet.",
    signInHelpAdmin: "Collez le jeton d’administration (ADMIN_TOKEN). Il n’est gardé que dans cet onglet.",
    signInTitle: "Connexion",
    signOut: "Se déconnecter",
    skipToQuestion: "Aller à la question",
    sources: "Sources",
    space: "Espace",
    spaces: "Espaces",
    allSpaces: "Tous les espaces",
    started: "Début",
    sync: "Synchroniser",
    syncBusy: "Une synchronisation est déjà en cours.",
    syncQueued: "Synchronisation demandée à la réplique qui écrit ({writer}).",
    syncRunning: "Synchronisation en cours…",
    syncStarted: "Synchronisation lancée.",
    syncs: "Synchronisations récentes",
    changes: "Ajoutées / modifiées / supprimées",
    status: "État",
    tokenInvalid: "Ce jeton a été refusé.",
    tokenLabel: "Jeton d’accès",
    topPages: "Pages les plus citées",
    perSpace: "Par espace",
    comments: "Commentaires",
    unanswered: "Questions sans réponse",
    up: "Utile",
    welcome: "Posez vos questions sur le wiki, en français ou en anglais. Chaque réponse cite les pages utilisées ; les questions de suivi gardent le contexte.",
    writing: "Rédaction de la réponse…",
    you: "Vous",
    bot: "WikiBot",
    days: "{days} derniers jours",
    answer: "Réponse",
    pageTitle: "Page",
    none: "Aucune.",
  },
};

// The browser's preferred languages, in order: the first we speak wins, English otherwise.
const LANG =
  (navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"])
    .map((tag) => String(tag).slice(0, 2).toLowerCase())
    .find((code) => code in STRINGS) || "en";

function t(key, values) {
  let text = STRINGS[LANG][key] ?? STRINGS.en[key] ?? key;
  for (const [name, value] of Object.entries(values || {})) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

function translatePage() {
  document.documentElement.lang = LANG;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
}

// The token lives in this tab only (sessionStorage) and travels in the Authorization header only. Behind an
// authenticating proxy there is none: the proxy vouches for the user.
const TOKEN_KEY = "wikibot.token";
const credentials = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const token = credentials.get();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") return body.error;
  } catch (_) {
    // not JSON: the generic sentence below
  }
  return t("errorGeneric");
}

// The one way HTML enters the page: the server's rendering of an answer (adapters/web/render.py), through a
// Trusted Types policy the Content-Security-Policy names. The HTML is parsed in an inert template (nothing runs or
// loads there), and, should the server ever get something wrong, anything but the renderer's own tags and
// attributes is dropped, and any link but to one of the answer's sources becomes its text.
const policy = window.trustedTypes ? window.trustedTypes.createPolicy("wikibot-html", { createHTML: (s) => s }) : null;
const TAGS = new Set("A BR BLOCKQUOTE CODE DEL DIV EM HR LI OL P PRE SPAN STRONG TABLE TBODY TD TH THEAD TR UL".split(" "));
const ATTRIBUTES = new Set(["class", "href", "title", "target", "rel", "start"]);

function setServerHTML(target, html, links) {
  const template = document.createElement("template");
  template.innerHTML = policy ? policy.createHTML(html) : html;
  for (const el of template.content.querySelectorAll("*")) {
    const href = el.getAttribute("href");
    if (!TAGS.has(el.tagName) || (el.tagName === "A" && !links.has(href))) {
      el.replaceWith(document.createTextNode(el.textContent));
      continue;
    }
    for (const attribute of [...el.attributes]) {
      if (!ATTRIBUTES.has(attribute.name)) el.removeAttribute(attribute.name);
    }
  }
  target.replaceChildren(template.content);
}

function element(tag, { text, className, attrs } = {}, children = []) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, value);
  el.append(...children);
  return el;
}

// The sign-in form both pages show when the server says 401; `help` names the sentence that says which token.
function signInForm({ help, onSignedIn }) {
  const input = element("input", {
    attrs: { id: "token", name: "token", type: "password", autocomplete: "current-password", required: "" },
  });
  const error = element("p", { className: "error", attrs: { id: "sign-in-error", role: "alert" } });
  error.hidden = true;
  // method=post and the policy's form-action 'none': should this script fail, the token never lands in a URL.
  const form = element("form", { attrs: { id: "sign-in-form", method: "post" } }, [
    element("label", { text: t("tokenLabel"), attrs: { for: "token" } }),
    input,
    error,
    element("button", { text: t("signIn"), attrs: { type: "submit" } }),
  ]);
  const section = element("section", { className: "card", attrs: { id: "sign-in", "aria-labelledby": "sign-in-title" } }, [
    element("h2", { text: t("signInTitle"), attrs: { id: "sign-in-title" } }),
    element("p", { text: t(help) }),
    form,
  ]);
  section.hidden = true;
  document.getElementById("main").prepend(section);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    credentials.set(token);
    const ok = await onSignedIn();
    if (ok) {
      input.value = "";
      error.hidden = true;
    } else {
      credentials.clear();
      error.textContent = t("tokenInvalid");
      error.hidden = false;
      input.focus();
      input.select(); // the next paste replaces the refused token
    }
  });
  return {
    show(message) {
      section.hidden = false;
      error.textContent = message || "";
      error.hidden = !message;
      input.focus();
    },
    hide() {
      section.hidden = true;
    },
  };
}
