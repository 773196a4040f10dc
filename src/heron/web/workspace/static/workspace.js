// Heron's local workspace: a small Slack client for the Slack fake that `heron run`
// starts when no Slack tokens are configured. Plain JavaScript, no build step.
//
// Location hash: #/CHANNEL, #/CHANNEL/thread/TS (thread open), #/CHANNEL/message/TS.
"use strict";

(() => {
  const API = "/workspace/api";
  const STEPS = ["sent", "queued", "working", "answered"];
  const STEP_HELP = {
    sent: "In the workspace: the Slack fake sends it to Heron over Socket Mode",
    queued: "Heron acknowledged it, archived it and queued an event in PostgreSQL",
    working: "A worker claimed the event and is writing the answer",
    answered: "The answer was posted in the thread through the Web API; the event is complete",
  };
  const EMOJI = {
    "+1": "👍", thumbsup: "👍", white_check_mark: "✅", heavy_check_mark: "✔️", wave: "👋",
    eyes: "👀", tada: "🎉", rocket: "🚀", heart: "❤️", warning: "⚠️", x: "❌", fire: "🔥",
    thinking_face: "🤔", raised_hands: "🙌", smile: "😄", pray: "🙏", bulb: "💡", memo: "📝",
    hourglass_flowing_sand: "⏳", question: "❓", bug: "🐛", sparkles: "✨", ok_hand: "👌",
  };
  const COLORS = ["#4a154b", "#2eb67d", "#e01e5a", "#36c5f0", "#ecb22e", "#1264a3", "#7c3085"];

  const state = {
    info: null,
    users: new Map(),
    channels: [],
    current: null, // channel id
    thread: null, // thread_ts
    highlight: null, // a message ts to scroll to once
    seen: {},
  };
  const $ = (id) => document.getElementById(id);

  // -- the API ------------------------------------------------------------------------

  async function api(path, options) {
    const response = await fetch(API + path, options);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
    return body;
  }

  function post(channel, text, threadTs) {
    return api(`/channels/${encodeURIComponent(channel)}/messages`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(threadTs ? { text, thread_ts: threadTs } : { text }),
    });
  }

  // -- text: Slack mrkdwn and the Markdown of streamed answers ------------------------

  function escapeHtml(text) {
    return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }

  function unescapeSlack(text) {
    return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  const plain = (text) => escapeHtml(unescapeSlack(text));

  const PERMALINK =
    /^https:\/\/([a-z0-9-]+)\.slack\.com\/archives\/([A-Z0-9]+)\/p(\d+)(\d{6})(?:\?thread_ts=(\d+\.\d+))?/;

  function link(url, labelHtml) {
    const permalink = url.match(PERMALINK);
    if (permalink && state.info && permalink[1] === state.info.team.domain) {
      const [, , channel, seconds, micros, threadTs] = permalink;
      const ts = `${seconds}.${micros}`;
      const target = threadTs ? `#/${channel}/thread/${threadTs}` : `#/${channel}/message/${ts}`;
      return `<a class="permalink" href="${escapeHtml(target)}">${labelHtml}</a>`;
    }
    if (!/^(https?:|mailto:)/i.test(url)) return labelHtml;
    return `<a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer">${labelHtml}</a>`;
  }

  function slackToken(inner) {
    const bar = inner.indexOf("|");
    const target = bar < 0 ? inner : inner.slice(0, bar);
    const label = bar < 0 ? "" : inner.slice(bar + 1);
    if (target.startsWith("@")) {
      const user = state.users.get(target.slice(1));
      const name = user ? user.name : label || target.slice(1);
      const me = state.info && target.slice(1) === state.info.me.id ? " me" : "";
      return `<span class="mention${me}" data-user-id="${escapeHtml(target.slice(1))}">@${plain(name)}</span>`;
    }
    if (target.startsWith("#")) {
      const id = target.slice(1);
      const channel = state.channels.find((c) => c.id === id);
      const name = label || (channel ? channel.name : id);
      return `<a class="channel-link" href="#/${escapeHtml(id)}">#${plain(name)}</a>`;
    }
    if (target.startsWith("!")) {
      return `<span class="mention">@${plain(label || target.slice(1).split("^")[0])}</span>`;
    }
    const url = unescapeSlack(target);
    return link(url, label ? plain(label) : escapeHtml(url));
  }

  const INLINE = new RegExp(
    [
      /<([^<>\s][^<>]*)>/.source, // 1: a Slack token: <@U1>, <#C1|name>, <url|label>
      /`([^`\n]+)`/.source, // 2: code
      /\[([^\]\n]+)\]\((https?:\/\/[^)\s]+)\)/.source, // 3, 4: a Markdown link
      /\*\*([^*\n]+)\*\*/.source, // 5: Markdown bold
      /(?<![\w*])\*([^*\n]+)\*(?![\w*])/.source, // 6: mrkdwn bold
      /(?<![\w_])_([^_\n]+)_(?![\w_])/.source, // 7: italic
      /(?<![\w~])~([^~\n]+)~(?![\w~])/.source, // 8: strike-through
      /(https?:\/\/[^\s<]*[^\s<.,;:!?)'"])/.source, // 9: a bare URL
      /:([a-z0-9_+-]+):/.source, // 10: an emoji name
    ].join("|"),
    "g",
  );

  function inline(text) {
    let html = "";
    let position = 0;
    for (const m of text.matchAll(INLINE)) {
      html += plain(text.slice(position, m.index));
      position = m.index + m[0].length;
      if (m[1] !== undefined) html += slackToken(m[1]);
      else if (m[2] !== undefined) html += `<code>${plain(m[2])}</code>`;
      else if (m[3] !== undefined) html += link(m[4], inline(m[3]));
      else if (m[5] !== undefined) html += `<strong>${inline(m[5])}</strong>`;
      else if (m[6] !== undefined) html += `<strong>${inline(m[6])}</strong>`;
      else if (m[7] !== undefined) html += `<em>${inline(m[7])}</em>`;
      else if (m[8] !== undefined) html += `<del>${inline(m[8])}</del>`;
      else if (m[9] !== undefined) html += link(m[9], escapeHtml(m[9]));
      else html += EMOJI[m[10]] || plain(m[0]);
    }
    return html + plain(text.slice(position));
  }

  function blocks(text) {
    const out = [];
    let list = null;
    const closeList = () => {
      if (list) out.push(`<${list.tag}>${list.items.join("")}</${list.tag}>`);
      list = null;
    };
    for (const line of text.split("\n")) {
      const bullet = line.match(/^\s*(?:[-*•◦])\s+(.*)$/);
      const numbered = line.match(/^\s*\d+[.)]\s+(.*)$/);
      const item = bullet || numbered;
      if (item) {
        const tag = bullet ? "ul" : "ol";
        if (!list || list.tag !== tag) {
          closeList();
          list = { tag, items: [] };
        }
        list.items.push(`<li>${inline(item[1])}</li>`);
        continue;
      }
      closeList();
      const quote = line.match(/^(?:&gt;|>)\s?(.*)$/);
      const heading = line.match(/^#{1,6}\s+(.*)$/);
      if (quote) out.push(`<blockquote>${inline(quote[1])}</blockquote>`);
      else if (heading) out.push(`<span class="heading">${inline(heading[1])}</span>`);
      else out.push(`${inline(line)}<br>`);
    }
    closeList();
    return out.join("").replace(/(<br>)+$/, "");
  }

  function renderText(text) {
    return text
      .split("```")
      .map((part, i) => (i % 2 ? `<pre>${plain(part.replace(/^\n/, ""))}</pre>` : blocks(part)))
      .join("");
  }

  // -- messages -----------------------------------------------------------------------

  function element(tag, attributes = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "html") node.innerHTML = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  const tsDate = (ts) => new Date(parseFloat(ts) * 1000);
  const clock = (ts) => tsDate(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  function dayLabel(ts) {
    const day = tsDate(ts);
    const today = new Date();
    const yesterday = new Date(today.getTime() - 86400000);
    if (day.toDateString() === today.toDateString()) return "Today";
    if (day.toDateString() === yesterday.toDateString()) return "Yesterday";
    return day.toLocaleDateString([], { weekday: "long", month: "long", day: "numeric" });
  }

  function avatar(author) {
    let hash = 0;
    for (const c of author.id || author.name) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
    const color = author.is_bot ? "#0b6e4f" : COLORS[hash % COLORS.length];
    const letter = (author.real_name || author.name || "?").charAt(0).toUpperCase();
    return element("div", { class: "avatar", style: `background:${color}`, text: letter });
  }

  function journeyElement(question) {
    const stage = question.stage;
    const index = { sent: 0, queued: 1, retrying: 1, working: 2, failed: 2, answered: 3 }[stage];
    const node = element("div", {
      class: "journey",
      "data-testid": "question-status",
      "data-stage": stage,
      "data-event-id": question.event_id,
      title: "This message's way through Heron",
    });
    STEPS.forEach((step, i) => {
      if (i > 0) node.append(element("span", { class: "arrow", text: "→" }));
      let label = step;
      if (i === index && stage === "retrying") label = "retrying";
      if (i === index && stage === "failed") label = "failed";
      const status = i < index ? "done" : i === index ? "current" : "todo";
      node.append(element("span", { class: `step ${status}`, title: STEP_HELP[step], text: label }));
    });
    if (question.error) {
      node.append(element("span", { class: "note", text: question.error }));
    }
    if (question.event_id) {
      node.append(
        element("a", {
          href: "/dashboard",
          "data-testid": "question-dashboard-link",
          text: `event #${question.event_id} on the dashboard`,
        }),
      );
    }
    return node;
  }

  function messageElement(view, variant) {
    const who = view.author;
    const name = who.is_bot ? who.name : who.real_name || who.name;
    const meta = element("div", { class: "meta" }, [
      element("span", { class: "author", text: name }),
      view.is_bot ? element("span", { class: "badge", text: "APP" }) : null,
      element("time", { datetime: tsDate(view.ts).toISOString(), text: clock(view.ts) }),
      view.edited ? element("span", { class: "edited", text: "(edited)" }) : null,
    ]);
    const body = element("div", { class: "body" }, [
      meta,
      element("div", { class: "text", "data-testid": "message-text", html: renderText(view.text) }),
    ]);
    if (view.reactions.length) {
      body.append(
        element(
          "div",
          { class: "reactions" },
          view.reactions.map((r) =>
            element("span", {
              class: "reaction",
              "data-testid": "reaction",
              "data-name": r.name,
              title: `:${r.name}:`,
              text: `${EMOJI[r.name] || `:${r.name}:`} ${r.count}`,
            }),
          ),
        ),
      );
    }
    if (view.question) body.append(journeyElement(view.question));
    let actions = null;
    if (variant === "channel") {
      const open = () => openThread(view.ts);
      if (view.reply_count) {
        const label = `${view.reply_count} ${view.reply_count === 1 ? "reply" : "replies"}`;
        body.append(
          element("button", { class: "replies", type: "button", "data-testid": "replies-link", onclick: open }, [
            label,
            view.latest_reply ? element("span", { class: "last", text: `Last reply ${clock(view.latest_reply)}` }) : null,
          ]),
        );
      }
      actions = element("div", { class: "actions" }, [
        element("button", { type: "button", "data-testid": "reply-in-thread", onclick: open, text: "Reply in thread" }),
      ]);
    }
    const testid = { channel: "message", parent: "thread-parent", reply: "thread-reply" }[variant];
    return element(
      "li",
      {
        class: "message",
        "data-testid": testid,
        "data-ts": view.ts,
        "data-author": who.name,
        "data-bot": view.is_bot ? "true" : "false",
        id: variant === "channel" ? `m-${view.ts}` : null,
      },
      [avatar(who), body, actions],
    );
  }

  // Re-renders only the messages that changed, so a streamed answer does not flicker.
  function renderList(container, views, variant, empty) {
    const old = new Map();
    for (const node of container.children) old.set(node.dataset.key, node);
    const nodes = [];
    let day = null;
    for (const view of views) {
      const label = variant === "channel" ? dayLabel(view.ts) : null;
      if (label && label !== day) {
        day = label;
        const key = `day:${label}`;
        const node = old.get(key) || element("li", { class: "day" }, [element("span", { text: label })]);
        node.dataset.key = key;
        nodes.push(node);
      }
      const signature = JSON.stringify(view);
      let node = old.get(view.ts);
      if (!node || node.dataset.signature !== signature) {
        node = messageElement(view, variant);
        node.dataset.key = view.ts;
        node.dataset.signature = signature;
      }
      nodes.push(node);
    }
    if (!nodes.length && empty) nodes.push(element("li", { class: "empty", text: empty }));
    container.replaceChildren(...nodes);
  }

  function nearBottom(node) {
    return node.scrollHeight - node.scrollTop - node.clientHeight < 80;
  }

  // -- the sidebar --------------------------------------------------------------------

  function renderChannels() {
    const lists = { channel: $("channels"), dm: $("dms") };
    for (const list of Object.values(lists)) list.replaceChildren();
    for (const channel of state.channels) {
      const active = channel.id === state.current;
      // What was there when the page opened, and what is on screen, counts as read.
      if (active || !(channel.id in state.seen)) state.seen[channel.id] = channel.latest;
      const unread = !active && channel.latest !== state.seen[channel.id];
      const sigil =
        channel.kind === "dm"
          ? element("span", { class: "presence", title: "online" })
          : element("span", { class: "sigil", text: "#" });
      const item = element(
        "li",
        {
          class: [active ? "active" : "", unread ? "unread" : ""].join(" ").trim() || null,
          "data-testid": "channel-item",
          "data-channel-id": channel.id,
          "data-channel-name": channel.name,
          "data-kind": channel.kind,
        },
        [
          element("button", { type: "button", onclick: () => go(`#/${channel.id}`) }, [
            sigil,
            element("span", { text: channel.name }),
            channel.kind === "dm" ? element("span", { class: "badge", text: "APP" }) : null,
          ]),
        ],
      );
      lists[channel.kind].append(item);
    }
  }

  // -- loading ------------------------------------------------------------------------

  const currentChannel = () => state.channels.find((c) => c.id === state.current);

  async function loadChannel() {
    const channel = currentChannel();
    if (!channel) return;
    const list = $("messages");
    const stick = nearBottom(list);
    const { messages } = await api(`/channels/${channel.id}/messages`);
    const empty =
      channel.kind === "dm"
        ? "This is the beginning of your direct messages with heron. Ask it anything: no @ needed here."
        : `This is the very beginning of #${channel.name}.`;
    renderList(list, messages, "channel", empty);
    if (state.highlight) {
      const target = document.getElementById(`m-${state.highlight}`);
      state.highlight = null;
      if (target) {
        target.scrollIntoView({ block: "center" });
        target.classList.add("highlight");
        setTimeout(() => target.classList.remove("highlight"), 2500);
        return;
      }
    }
    if (stick) list.scrollTop = list.scrollHeight;
  }

  async function loadThread() {
    const panel = $("thread");
    const channel = currentChannel();
    if (!state.thread || !channel) {
      panel.hidden = true;
      $("app").classList.remove("with-thread");
      return;
    }
    let thread;
    try {
      thread = await api(`/channels/${channel.id}/threads/${state.thread}`);
    } catch (error) {
      state.thread = null;
      return loadThread();
    }
    panel.hidden = false;
    $("app").classList.add("with-thread");
    $("thread-channel").textContent = channel.kind === "dm" ? "heron" : `#${channel.name}`;
    const body = panel.querySelector(".thread-body");
    const stick = nearBottom(body);
    renderList($("thread-parent"), [thread.parent], "parent");
    const count = thread.replies.length;
    $("thread-divider").textContent = count ? `${count} ${count === 1 ? "reply" : "replies"}` : "";
    renderList($("thread-replies"), thread.replies, "reply");
    if (stick) body.scrollTop = body.scrollHeight;
  }

  async function loadChannels() {
    const { channels } = await api("/channels");
    state.channels = channels;
    renderChannels();
  }

  let running = null;
  let again = false;
  // One refresh at a time; a change announced meanwhile triggers one more.
  async function refresh() {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await loadChannels();
          await Promise.all([loadChannel(), loadThread()]);
        } catch (error) {
          toast(error.message);
        }
      } while (again);
    })();
    try {
      await running;
    } finally {
      running = null;
    }
  }

  // -- navigation ---------------------------------------------------------------------

  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  function route() {
    const [, channel, kind, ts] = location.hash.match(/^#\/([^/]+)(?:\/(thread|message)\/([\d.]+))?$/) || [];
    const known = state.channels.find((c) => c.id === channel || c.name === channel);
    const fallback = state.channels.find((c) => c.is_general) || state.channels[0];
    const target = known || fallback;
    if (!target) return;
    const switched = target.id !== state.current;
    state.current = target.id;
    state.thread = kind === "thread" ? ts : null;
    state.highlight = kind === "message" ? ts : null;
    $("channel-title").textContent = target.kind === "dm" ? "heron" : `# ${target.name}`;
    $("channel-topic").textContent = target.kind === "dm" ? "Your direct messages with Heron" : target.topic;
    $("composer-input").placeholder =
      target.kind === "dm"
        ? "Message heron: ask anything"
        : `Message #${target.name}: try “@heron how do I deploy?”`;
    if (switched) $("messages").replaceChildren();
    refresh();
    if (switched) $("composer-input").focus();
  }

  function openThread(ts) {
    go(`#/${state.current}/thread/${ts}`);
  }

  // -- composing ----------------------------------------------------------------------

  function composer(form, input, threadTs) {
    const send = async () => {
      const text = input.value;
      if (!text.trim()) return;
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const { message } = await post(state.current, text, threadTs());
        input.value = "";
        // A question's answer arrives in its thread: show it there.
        if (!threadTs() && message.question) openThread(message.ts);
        else refresh();
      } catch (error) {
        toast(error.message);
      } finally {
        button.disabled = false;
        input.focus();
      }
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        send();
      }
    });
  }

  let toastTimer = null;
  function toast(message) {
    const node = $("toast");
    node.textContent = message;
    node.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (node.hidden = true), 5000);
  }

  // -- the live feed ------------------------------------------------------------------

  function connectFeed() {
    const status = $("feed-status");
    if (!window.EventSource) {
      status.textContent = "updating every second";
      setInterval(refresh, 1000);
      return;
    }
    const source = new EventSource(`${API}/feed`);
    source.addEventListener("change", () => refresh());
    source.addEventListener("open", () => {
      status.dataset.live = "true";
      status.textContent = "live";
    });
    source.addEventListener("error", () => {
      status.dataset.live = "false";
      status.textContent = "reconnecting…";
    });
  }

  async function start() {
    composer($("composer"), $("composer-input"), () => null);
    composer($("thread-composer"), $("thread-input"), () => state.thread);
    $("thread-close").addEventListener("click", () => go(`#/${state.current}`));
    try {
      state.info = await api("/workspace");
    } catch (error) {
      toast(`Heron is not answering: ${error.message}`);
      return;
    }
    for (const user of state.info.users) state.users.set(user.id, user);
    state.channels = state.info.channels;
    document.querySelector("[data-testid=team-name]").textContent = state.info.team.name;
    $("me").textContent = `signed in as ${state.info.me.name}`;
    window.addEventListener("hashchange", route);
    route();
    connectFeed();
  }

  start();
})();
