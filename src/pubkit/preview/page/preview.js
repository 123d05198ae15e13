// pubkit preview: the lesson list and the chosen lesson's pages, kept in step with the
// builds the server announces (server-sent events). Everything from the course is set as
// text (textContent), never as markup: a manuscript can put nothing on this page.
"use strict";

const ORDER = ["pdf", "handout", "instructor", "epub"];
const LABELS = { pdf: "PDF", handout: "Handout", instructor: "Instructor", epub: "EPUB" };

const view = {
  data: null,
  lesson: null,
  edition: "pdf",
  chapter: null,
  // What is on screen: "lesson|edition|version" (and chapter), so that only a new
  // version is fetched again.
  shown: null,
  loading: null,
  chapterScroll: 0,
};

const $ = (selector) => document.querySelector(selector);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function lessonsOf(data) {
  return data.modules.flatMap((module) => module.lessons);
}

function findLesson(id) {
  return view.data ? lessonsOf(view.data).find((lesson) => lesson.id === id) : undefined;
}

function figures(lesson) {
  const parts = [];
  if (lesson.minutes !== undefined) parts.push(`${lesson.minutes} min`);
  if (lesson.words !== undefined) parts.push(`${lesson.words.toLocaleString("en")} words`);
  if (lesson.pages !== undefined) parts.push(`${lesson.pages} ${lesson.pages === 1 ? "page" : "pages"}`);
  return parts.join(" · ");
}

// The place chosen, kept in the address: a reload comes back to it.
function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("lesson")) view.lesson = params.get("lesson");
  if (params.get("edition")) view.edition = params.get("edition");
}

function writeHash() {
  const params = new URLSearchParams({ lesson: view.lesson || "", edition: view.edition });
  history.replaceState(null, "", `#${params}`);
}

function render(data) {
  view.data = data;
  const lessons = lessonsOf(data);
  if (!findLesson(view.lesson) && lessons.length) view.lesson = lessons[0].id;
  // The course's words are in its language (hyphenation, capitals, a screen reader's
  // voice); the preview's own are English.
  for (const selector of ["#course-title", "#lessons", "#lesson-title"]) {
    $(selector).lang = data.course.language || "";
  }
  $("#course-title").textContent = data.course.title || "Course";
  document.title = `${data.course.title || "Course"} · pubkit preview`;
  renderStatus(data);
  renderList(data);
  renderLesson();
}

function renderStatus(data) {
  const status = $("#status");
  const failed = lessonsOf(data).filter((lesson) => lesson.state === "failed").length;
  const broken = data.messages.some((message) => message.severity === "error");
  status.className = data.busy ? "busy" : failed || broken ? "failed" : "";
  if (data.busy) status.textContent = "Building…";
  else if (broken && !lessonsOf(data).length) status.textContent = "The course could not be built";
  else if (failed) status.textContent = `${failed} ${failed === 1 ? "lesson" : "lessons"} failed`;
  else status.textContent = data.took === null ? "Up to date" : `Up to date · built in ${data.took.toFixed(1)} s`;
  const downloads = $("#downloads-link");
  downloads.hidden = !data.downloads;
}

function renderList(data) {
  const nav = $("#lessons");
  nav.replaceChildren(
    ...data.modules.map((module) =>
      element(
        "section",
        { class: "module" },
        element("h3", {}, module.number !== undefined ? `Module ${module.number} · ${module.title}` : module.title),
        element(
          "ul",
          {},
          ...module.lessons.map((lesson) => {
            const title = element("span", { class: "title" }, lesson.number ? `${lesson.number}. ${lesson.title}` : lesson.title);
            if (lesson.state !== "up to date") {
              title.append(element("span", { class: `state ${lesson.state.replace(/ /g, "-")}` }, lesson.state));
            }
            const button = element(
              "button",
              { class: "lesson", type: "button", "data-id": lesson.id, "aria-current": String(lesson.id === view.lesson) },
              title,
              element("span", { class: "figures" }, figures(lesson)),
            );
            button.addEventListener("click", () => choose(lesson.id, view.edition));
            return element("li", {}, button);
          }),
        ),
      ),
    ),
  );
}

function choose(lessonId, edition) {
  view.lesson = lessonId;
  view.edition = edition;
  view.chapter = null;
  writeHash();
  render(view.data);
}

function editionsOf(lesson) {
  return ORDER.filter((name) => name in lesson.editions).concat(
    Object.keys(lesson.editions).filter((name) => !ORDER.includes(name)),
  );
}

function renderLesson() {
  const lesson = findLesson(view.lesson);
  $("#lesson-title").textContent = lesson ? lesson.title : "";
  const names = lesson ? editionsOf(lesson) : [];
  if (names.length && !names.includes(view.edition)) view.edition = names[0];
  $("#editions").replaceChildren(
    ...names.map((name) => {
      const button = element(
        "button",
        { type: "button", role: "tab", "data-edition": name, "aria-selected": String(name === view.edition), title: lesson.editions[name].description },
        LABELS[name] || name,
      );
      button.addEventListener("click", () => choose(view.lesson, name));
      return button;
    }),
  );
  renderMessages(lesson);
  const edition = lesson && lesson.editions[view.edition];
  const open = $("#open-file");
  open.hidden = !edition;
  if (edition) open.href = `/files/${edition.path}?v=${edition.version}`;
  if (!edition) {
    showEmpty(lesson ? (lesson.state === "building" ? "Building this lesson…" : "This lesson has not been built yet: see the messages above.") : "No lessons yet.");
    return;
  }
  if (edition.paged) showPages(lesson, edition);
  else showChapter(lesson, edition);
}

function renderMessages(lesson) {
  const box = $("#messages");
  const messages = [...view.data.messages, ...(lesson ? lesson.messages : [])];
  box.hidden = !messages.length;
  const errors = messages.some((message) => message.severity === "error");
  box.className = errors ? "errors" : "warnings";
  const lines = messages.map((message) => element("p", { class: message.severity }, message.text));
  if (errors && lesson && Object.keys(lesson.editions).length) {
    lines.push(element("p", { class: "note" }, "Below: the last pages that built."));
  }
  box.replaceChildren(...lines);
}

function showEmpty(text) {
  $("#pages").hidden = true;
  $("#chapter-frame").hidden = true;
  $("#chapter").hidden = true;
  const empty = $("#empty");
  empty.hidden = false;
  empty.textContent = text;
  view.shown = null;
}

async function showPages(lesson, edition) {
  $("#empty").hidden = true;
  $("#chapter-frame").hidden = true;
  $("#chapter").hidden = true;
  const container = $("#pages");
  container.hidden = false;
  const place = `${lesson.id}|${view.edition}`;
  const key = `${place}|${edition.version}`;
  if (view.shown === key || view.loading === key) return;
  const same = view.shown !== null && view.shown.startsWith(`${place}|`);
  view.loading = key;
  const query = new URLSearchParams({ lesson: lesson.id, edition: view.edition });
  let answer;
  try {
    const response = await fetch(`/api/pages?${query}`, { cache: "no-store" });
    if (!response.ok) throw new Error(response.statusText);
    answer = await response.json();
  } catch (error) {
    view.loading = null;
    return;
  }
  if (view.loading !== key) return; // another lesson or version was asked for meanwhile
  view.loading = null;
  const top = container.scrollTop;
  if (!same) container.replaceChildren();
  const figures = [...container.children];
  answer.pages.forEach((page, index) => {
    const number = index + 1;
    query.set("n", number);
    query.set("v", answer.version);
    const source = `/api/page.png?${query}`;
    let figure = figures[index];
    if (!figure) {
      figure = element(
        "figure",
        { class: "page", "data-page": number },
        element("img", { alt: `Page ${number}`, loading: "lazy" }),
        element("span", { class: "folio", "aria-hidden": "true" }, number),
        element("figcaption", { class: "page-text" }),
      );
      container.append(figure);
    }
    figure.style.maxWidth = `${page.width}px`;
    const image = figure.querySelector("img");
    image.width = Math.round(page.width);
    image.height = Math.round(page.height);
    figure.querySelector(".page-text").textContent = page.text;
    if (!image.getAttribute("src")) {
      image.src = source;
    } else if (image.getAttribute("src") !== source) {
      // The new page is drawn off screen first: the old one stays until it is ready.
      const next = new Image();
      next.onload = () => { image.src = source; };
      next.src = source;
    }
  });
  figures.slice(answer.pages.length).forEach((figure) => figure.remove());
  container.scrollTop = same ? top : 0;
  view.shown = `${place}|${answer.version}`;
  container.dataset.version = answer.version;
}

async function showChapter(lesson, edition) {
  $("#empty").hidden = true;
  $("#pages").hidden = true;
  const frame = $("#chapter-frame");
  frame.hidden = false;
  const place = `${lesson.id}|epub`;
  const key = `${place}|${edition.version}|${view.chapter}`;
  if (view.shown === key || view.loading === key) return;
  view.loading = key;
  let answer;
  try {
    const response = await fetch(`/api/chapters?${new URLSearchParams({ lesson: lesson.id })}`, { cache: "no-store" });
    if (!response.ok) throw new Error(response.statusText);
    answer = await response.json();
  } catch (error) {
    view.loading = null;
    return;
  }
  if (view.loading !== key) return;
  view.loading = null;
  const chapters = answer.chapters;
  const text = chapters.filter((chapter) => chapter.kind === "text");
  if (!chapters.some((chapter) => chapter.path === view.chapter)) view.chapter = (text[0] || chapters[0] || {}).path || null;
  const select = $("#chapter");
  select.hidden = chapters.length < 2;
  select.replaceChildren(
    ...chapters.map((chapter) =>
      element("option", { value: chapter.path }, chapter.kind === "cover" ? "Cover" : text.length > 1 ? `Text ${text.indexOf(chapter) + 1}` : "Text"),
    ),
  );
  select.value = view.chapter;
  const same = view.shown !== null && view.shown.startsWith(`${place}|`) && view.shown.endsWith(`|${view.chapter}`);
  // Where the reader is, followed as they scroll: read from a document being replaced,
  // it could already be the next one's top.
  if (!same) view.chapterScroll = 0;
  const [module, name] = lesson.id.split("/");
  frame.onload = () => {
    try {
      const reader = frame.contentWindow;
      if (same) reader.scrollTo(0, view.chapterScroll); // a new version: where they were
      reader.addEventListener("scroll", () => { view.chapterScroll = reader.scrollY; }, { passive: true });
    } catch (error) {
      // a chapter that could not load keeps the frame's own error page
    }
  };
  frame.src = `/epub/${answer.version}/${encodeURIComponent(module)}/${encodeURIComponent(name)}/${view.chapter}`;
  view.shown = `${place}|${answer.version}|${view.chapter}`;
}

function connect() {
  const events = new EventSource("/api/events");
  events.addEventListener("state", (event) => render(JSON.parse(event.data)));
  events.addEventListener("error", () => {
    const status = $("#status");
    status.className = "failed";
    status.textContent = "Not connected: is pubkit preview still running?";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  readHash();
  $("#chapter").addEventListener("change", (event) => {
    view.chapter = event.target.value;
    renderLesson();
  });
  window.addEventListener("hashchange", () => {
    readHash();
    if (view.data) render(view.data);
  });
  connect();
});
