// The browser side of examples/multichat.py: a chat over a WebSocket that
// carries txgetty's line framing.
//
// Every message is a *binary* WebSocket message holding whole lines of UTF-8
// text, each ending in "\n" (txgetty's LineCodec applied to each message).
// A text message would be refused by the server with close code 1003.
//
// The protocol part (LineFraming, ChatConnection, chatURL) uses only the
// WebSocket API, so it also runs in Node.js (node --experimental-websocket);
// the page part at the end runs only in a browser.
"use strict";

/** Turns text into line-framed bytes and binary messages back into lines. */
class LineFraming {
  constructor() {
    this.encoder = new TextEncoder();
    this.decoder = new TextDecoder("utf-8");
    this.partial = "";
  }

  /** @returns {Uint8Array} one line, UTF-8, ending in "\n". */
  encode(line) {
    if (line.includes("\n")) {
      throw new Error("a line cannot contain a line break");
    }
    return this.encoder.encode(line + "\n");
  }

  /** @returns {string[]} the complete lines of one binary message (ArrayBuffer). */
  decode(buffer) {
    const text = this.partial + this.decoder.decode(buffer, { stream: true });
    const lines = text.split("\n");
    this.partial = lines.pop();
    return lines.map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line));
  }
}

/** One connection to the chat; reports lines and status changes to callbacks. */
class ChatConnection {
  /**
   * @param {string} url the WebSocket URL, e.g. ws://127.0.0.1:8080/chat
   * @param {{onLine: function(string), onStatus: function(string, boolean)}} callbacks
   */
  constructor(url, callbacks) {
    this.url = url;
    this.onLine = callbacks.onLine;
    this.onStatus = callbacks.onStatus;
    this.socket = null;
  }

  open() {
    const framing = new LineFraming();
    const socket = (this.socket = new WebSocket(this.url));
    socket.binaryType = "arraybuffer";
    this.onStatus(`connecting to ${this.url}`, false);
    socket.onopen = () => this.onStatus(`connected to ${this.url}`, true);
    socket.onmessage = (event) => {
      if (typeof event.data === "string") {
        this.onLine("* (a text message was ignored: the chat speaks binary messages)");
        return;
      }
      for (const line of framing.decode(event.data)) {
        this.onLine(line);
      }
    };
    socket.onclose = (event) => {
      const reason = event.reason ? `: ${event.reason}` : "";
      this.onStatus(`disconnected (close code ${event.code}${reason})`, false);
    };
  }

  /** Sends each line of `text` as one binary message; returns whether it could. */
  send(text) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      return false;
    }
    const framing = new LineFraming();
    for (const line of text.split("\n")) {
      this.socket.send(framing.encode(line));
    }
    return true;
  }

  close() {
    if (this.socket) {
      this.socket.close(1000, "bye");
    }
  }
}

/** @returns {string} the WebSocket URL of `path` on the server that served the page. */
function chatURL(location, path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

if (typeof module !== "undefined") {
  module.exports = { LineFraming, ChatConnection, chatURL };
}

if (typeof document !== "undefined") {
  document.addEventListener("DOMContentLoaded", () => {
    const log = document.getElementById("log");
    const status = document.getElementById("status");
    const form = document.getElementById("say");
    const input = document.getElementById("line");
    const reconnect = document.getElementById("reconnect");

    const show = (line) => {
      const item = document.createElement("li");
      item.textContent = line;
      if (line.startsWith("*")) {
        item.className = "notice";
      }
      log.appendChild(item);
      log.scrollTop = log.scrollHeight;
    };

    if (location.protocol !== "http:" && location.protocol !== "https:") {
      status.textContent = "open this page from the multichat server (http://HOST:PORT/), not from a file";
      return;
    }
    const path = new URLSearchParams(location.search).get("path") || "/chat";
    const chat = new ChatConnection(chatURL(location, path), {
      onLine: show,
      onStatus: (text, connected) => {
        status.textContent = text;
        reconnect.hidden = connected;
        input.disabled = !connected;
        if (connected) {
          input.focus();
        }
      },
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (input.value && chat.send(input.value)) {
        input.value = "";
      }
    });
    reconnect.addEventListener("click", () => chat.open());
    chat.open();
  });
}
