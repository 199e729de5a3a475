"""The labelling page: one HTML document with its style and script, served by server.py.

The page shows one image large with the run's guess preselected. Keys: Enter confirms the guess (or
the class last picked), 1-9 answer a class (0-9 where the classes are named by digits), x "none of these", s skip, n a new class, z or Backspace
undo; every button can be clicked. The next images are fetched ahead, so the page moves on as soon
as a key is pressed; the answers go to the server one after another, in order, and a refused one
(another page answered the image first) is said in the status line. ``window.stochregTimings``
holds, for each answer, the milliseconds from the key to the next image drawn.
"""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stochreg label</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 0; background: #1e1f22; color: #e8e8e8; }
 header { display: flex; gap: 1.5em; align-items: baseline; padding: .6em 1em; background: #2b2d31; }
 header h1 { font-size: 1.1em; margin: 0; }
 #status { color: #f0b75e; }
 main { display: flex; flex-direction: column; align-items: center; padding: 1em; }
 #picture { width: auto; height: min(62vh, 560px); max-width: 92vw; background: #000; object-fit: contain; }
 #picture.small { image-rendering: pixelated; }
 #caption { margin: .6em 0; min-height: 1.4em; color: #b8bcc4; }
 #file { font-family: monospace; font-size: .85em; color: #8a8f98; }
 #choices { display: flex; flex-wrap: wrap; gap: .4em; justify-content: center; max-width: 92vw; }
 button { font-size: 1em; padding: .45em .9em; border-radius: 6px; border: 1px solid #4a4d55; background: #313338;
          color: #e8e8e8; cursor: pointer; }
 button.selected { background: #2f6f3e; border-color: #5fbf74; }
 button.other { background: #3a3240; }
 kbd { font-size: .8em; color: #9aa0aa; margin-right: .3em; }
 #done { font-size: 1.3em; margin-top: 3em; }
</style></head>
<body>
<header><h1>stochreg label: <span id="folder"></span></h1><span id="left"></span><span id="status"></span></header>
<main>
 <img id="picture" alt="">
 <div id="file"></div>
 <div id="caption"></div>
 <div id="choices"></div>
 <div id="done" hidden>Nothing left to label. Train again: <code>stochreg train --data FOLDER --init RUN</code></div>
</main>
<script>
const TOKEN = "{{TOKEN}}";
const state = { classes: [], items: [], cursor: 0, next: 0, left: 0, filling: null, done: [], chain: Promise.resolve(),
                selected: null, lastPicked: null, started: null };
window.stochregTimings = [];
const $ = (id) => document.getElementById(id);

async function api(path, body) {
  const options = { headers: { "X-Token": TOKEN } };
  if (body !== undefined) {
    options.method = "POST"; options.body = JSON.stringify(body); options.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}
const imageUrl = (file) => "/image?file=" + encodeURIComponent(file) + "&token=" + TOKEN;
function say(text) { $("status").textContent = text; }

// the next three images fetched ahead, so that the page moves on at once
function preload() {
  for (let k = state.cursor + 1; k < Math.min(state.items.length, state.cursor + 4); k++) new Image().src = imageUrl(state.items[k].file);
}

function refill() {
  if (state.filling || state.items.length - state.cursor > 8) return state.filling;
  state.filling = api("/api/queue?start=" + state.next + "&count=30").then((queue) => {
    const waiting = new Set(state.items.slice(state.cursor).map((item) => item.file));
    state.items.push(...queue.items.filter((item) => !waiting.has(item.file)));
    state.next = queue.next;
    preload();
  }).catch((error) => say(error.message)).finally(() => { state.filling = null; });
  return state.filling;
}

// Classes named 0-9 (digits) are answered by their own digit; other classes by 1-9 in order.
function keyOf(name) {
  const digits = state.classes.every((c) => /^[0-9]$/.test(c));
  const k = state.classes.indexOf(name);
  return digits ? name : k < 9 ? String(k + 1) : "";
}

function drawChoices() {
  const choices = $("choices");
  choices.replaceChildren();
  const add = (label, key, value, extra) => {
    const button = document.createElement("button");
    button.innerHTML = (key ? "<kbd>" + key + "</kbd>" : "");
    button.append(label);
    button.dataset.answer = value;
    if (extra) button.className = extra;
    if (value === state.selected) button.classList.add("selected");
    button.addEventListener("click", () => value === "+new" ? newClass() : value === "-undo" ? undo() : answer(value));
    choices.append(button);
  };
  state.classes.forEach((name) => add(name, keyOf(name), name));
  add("none of these", "x", "none", "other");
  add("skip", "s", "skip", "other");
  add("new class…", "n", "+new", "other");
  add("undo", "z", "-undo", "other");
}

function show() {
  const item = state.items[state.cursor];
  $("left").textContent = state.left + " left";
  if (!item) {
    $("picture").hidden = true; $("caption").textContent = ""; $("file").textContent = "";
    $("done").hidden = state.filling !== null;
    state.selected = null; drawChoices();
    return;
  }
  $("done").hidden = true; $("picture").hidden = false;
  const picture = $("picture");
  picture.onload = () => {
    picture.classList.toggle("small", picture.naturalWidth < 160 && picture.naturalHeight < 160); if (state.started !== null) { window.stochregTimings.push(performance.now() - state.started); state.started = null; } };
  picture.onerror = () => fetch(imageUrl(item.file)).then((r) => r.json()).then((data) => say("cannot show this image: "
      + (data.error || "unreadable") + "; skip it (s) or answer none of these (x)")).catch(() => {});
  picture.src = imageUrl(item.file);
  $("file").textContent = item.file;
  const guess = item.guess && state.classes.includes(item.guess) ? item.guess : null;
  state.selected = guess || (state.classes.includes(state.lastPicked) ? state.lastPicked : null);
  $("caption").textContent = guess ? "the model's guess: " + guess + " (" + Math.round(100 * item.confidence) + "%)"
      + (item.reason ? ", " + item.reason : "") : "";
  drawChoices();
  preload();
}

function answer(value, isNew) {
  const item = state.items[state.cursor];
  if (!item) return;
  if (value === null) { say("no class preselected: press a class's key or click it"); return; }
  state.started = performance.now();
  if (state.classes.includes(value)) state.lastPicked = value;
  const entry = { item: item, id: null };
  state.done.push(entry);
  state.cursor += 1;
  if (value !== "skip") state.left -= 1;
  state.chain = state.chain.then(() => api("/api/answer", { file: item.file, answer: value, new_class: !!isNew }))
    .then((record) => { entry.id = record.id; say(""); })
    .catch((error) => { state.done.splice(state.done.indexOf(entry), 1); if (value !== "skip") state.left += 1; say(error.message); });
  show();
  Promise.resolve(refill()).then(() => { if ($("picture").hidden) show(); });
}

function newClass() {
  const name = window.prompt("Name of the new class");
  if (!name) return;
  if (!state.classes.includes(name)) { state.classes.push(name); state.classes.sort(); }
  answer(name, true);
}

function undo() {
  const entry = state.done.pop();
  if (!entry) { say("nothing to undo"); return; }
  state.items.splice(state.cursor, 0, entry.item);
  state.left += 1;
  show();
  state.chain = state.chain.then(() => api("/api/undo", { id: entry.id })).then(() => say("undone: " + entry.item.file))
    .catch((error) => { state.items.splice(state.items.indexOf(entry.item), 1); state.left -= 1; say(error.message); show(); });
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key;
  if (key === "Enter" || key === " ") answer(state.selected);
  else if (/^[0-9]$/.test(key) && state.classes.some((c) => keyOf(c) === key)) answer(state.classes.find((c) => keyOf(c) === key));
  else if (key === "x") answer("none");
  else if (key === "s") answer("skip");
  else if (key === "n") newClass();
  else if (key === "z" || key === "Backspace") undo();
  else return;
  event.preventDefault();
});

api("/api/state").then((s) => {
  state.classes = s.classes; state.left = s.left; $("folder").textContent = s.folder;
  return refill();
}).then(show).catch((error) => say(error.message));
</script>
</body></html>
"""
