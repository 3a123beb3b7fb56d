// The chat page: one conversation at a time, answers streamed as the model writes them.
"use strict";

const page = {
  chat: document.getElementById("chat"),
  log: document.getElementById("log"),
  welcome: document.getElementById("welcome"),
  form: document.getElementById("ask"),
  question: document.getElementById("question"),
  send: document.getElementById("send"),
  status: document.getElementById("status"),
  newConversation: document.getElementById("new-conversation"),
  adminLink: document.getElementById("admin-link"),
  signOut: document.getElementById("sign-out"),
};

// A conversation is named by an id of its own; the server keeps it apart per user.
function newSessionId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

let sessionId = newSessionId();
let busy = false;

function setStatus(text) {
  page.status.textContent = text;
}

function showSession() {
  // For whoever reads the page's state (tests, support): the id names nothing outside this user's sessions.
  page.chat.dataset.session = sessionId;
}

function addMessage(role) {
  const body = element("div", { className: "body" });
  const item = element("div", { className: `message ${role}` }, [
    element("p", { className: "who", text: t(role === "user" ? "you" : "bot") }),
    body,
  ]);
  page.welcome.hidden = true;
  page.log.append(item);
  item.scrollIntoView({ block: "end" });
  return { item, body };
}

function feedbackButtons(answerId) {
  const bar = element("div", { className: "feedback" });
  for (const rating of ["up", "down"]) {
    const icon = element("img", { attrs: { src: `/web/thumb-${rating}.svg`, alt: "", width: "18", height: "18" } });
    const button = element(
      "button",
      {
        className: "quiet",
        attrs: { type: "button", "aria-label": t(rating), title: t(rating), "aria-pressed": "false", "data-rating": rating },
      },
      [icon],
    );
    button.addEventListener("click", async () => {
      const response = await api("/feedback", { method: "POST", body: { answer_id: answerId, rating } });
      if (!response.ok) {
        setStatus(await errorText(response));
        return;
      }
      for (const other of bar.querySelectorAll("button")) other.setAttribute("aria-pressed", String(other === button));
      setStatus(t("feedbackThanks"));
    });
    bar.append(button);
  }
  return bar;
}

async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffered += decoder.decode(value || new Uint8Array(), { stream: !done });
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line) onEvent(JSON.parse(line));
    }
    if (done) return;
  }
}

async function ask(text) {
  busy = true;
  page.send.disabled = true;
  const mine = addMessage("user");
  mine.body.append(element("p", { className: "plain", text }));
  const answer = addMessage("bot");
  answer.item.setAttribute("aria-busy", "true");
  answer.body.append(element("p", { className: "typing", text: t("searching") }));
  setStatus(t("searching"));
  try {
    const response = await api("/query/stream", { method: "POST", body: { session_id: sessionId, query: text } });
    if (response.status === 401) {
      answer.item.remove();
      mine.item.remove();
      page.question.value = text;
      await requireSignIn(await errorText(response));
      return;
    }
    if (!response.ok) {
      const message =
        response.status === 429
          ? t("rateLimited", { seconds: response.headers.get("Retry-After") || "60" })
          : await errorText(response);
      answer.body.replaceChildren(element("p", { className: "error", text: message }));
      answer.item.classList.add("failed");
      return;
    }
    await readEvents(response, (event) => {
      if (event.event === "draft") {
        setServerHTML(answer.body, event.html, new Set());
        setStatus(t("writing"));
      } else if (event.event === "answer") {
        setServerHTML(answer.body, event.html, new Set(event.links || []));
        answer.item.dataset.kind = event.kind;
        if (event.answer_id) answer.item.append(feedbackButtons(event.answer_id));
      }
      answer.item.scrollIntoView({ block: "end" });
    });
    setStatus("");
  } catch (_) {
    answer.body.replaceChildren(element("p", { className: "error", text: t("errorGeneric") }));
    setStatus(t("errorGeneric"));
  } finally {
    answer.item.setAttribute("aria-busy", "false");
    busy = false;
    page.send.disabled = false;
  }
}

page.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = page.question.value.trim();
  if (!text || busy) return;
  page.question.value = "";
  page.question.focus();
  ask(text);
});

page.question.addEventListener("keydown", (event) => {
  // Enter sends; Shift+Enter is a new line; Enter that ends an IME composition is the composition's.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    page.form.requestSubmit();
  }
});

page.newConversation.addEventListener("click", async () => {
  const previous = sessionId;
  sessionId = newSessionId();
  showSession();
  page.log.replaceChildren();
  page.welcome.hidden = false;
  setStatus(t("newConversationDone"));
  page.question.focus();
  // The server forgets the old one too: nothing of it stays in the history kept for it.
  await api(`/reset-session/${previous}`, { method: "POST" });
});

page.signOut.addEventListener("click", () => {
  credentials.clear();
  window.location.reload();
});

const signIn = signInForm({ help: "signInHelp", onSignedIn: () => start() });

async function requireSignIn(message) {
  page.chat.hidden = true;
  page.signOut.hidden = true;
  signIn.show(message);
}

async function start() {
  const response = await api("/me");
  if (response.status === 401) {
    await requireSignIn(credentials.get() ? t("tokenInvalid") : "");
    return false;
  }
  if (!response.ok) {
    setStatus(await errorText(response));
    return false;
  }
  const me = await response.json();
  page.adminLink.hidden = !me.admin;
  page.signOut.hidden = !credentials.get();
  signIn.hide();
  page.chat.hidden = false;
  showSession();
  page.question.focus();
  return true;
}

translatePage();
start();
