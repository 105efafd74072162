// Herald console: verify a ledger entry's inclusion proof in the browser.
//
// The server is not trusted for the answer: the browser fetches the
// inclusion bundle (entry, audit path, signed checkpoint) and the published
// verifier keys, then checks with WebCrypto that
//   1. the entry re-hashes to entry_hash (docs/audit.md §1.1: SHA-256 over
//      "herald.ledger.entry.v1" 0x00 ‖ prev_hash bytes ‖ JCS(entry));
//   2. the RFC 6962 audit path leads from that leaf to a root (§2);
//   3. the checkpoint note (§3) is signed by a published Ed25519 key, and
//      its size and root are the ones the path was checked against.
// Any mismatch is reported as a failure, naming the step.
"use strict";
(() => {
  const enc = new TextEncoder();

  const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
  const unhex = (s) => {
    if (!/^[0-9a-f]{64}$/.test(s)) throw new Error("not a 32-byte hex hash: " + s);
    return Uint8Array.from(s.match(/../g), (h) => parseInt(h, 16));
  };
  const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let i = 0;
    for (const p of parts) { out.set(p, i); i += p.length; }
    return out;
  };
  const sha256 = async (b) => new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  // RFC 8785 (JCS): keys sorted by UTF-16 code units (JavaScript's default
  // sort), strings and numbers exactly as JSON.stringify writes them.
  const jcs = (v) => {
    if (v === null || typeof v !== "object") return JSON.stringify(v);
    if (Array.isArray(v)) return "[" + v.map(jcs).join(",") + "]";
    return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + jcs(v[k])).join(",") + "}";
  };

  // The entry's time in the hashed form YYYY-MM-DDTHH:MM:SS.ffffffZ.
  const ledgerTime = (s) => {
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(s);
    if (!m) throw new Error("unexpected time " + s);
    const secs = new Date(Date.parse(m[1] + m[3])).toISOString().slice(0, 19);
    return secs + "." + (m[2] || "").padEnd(6, "0").slice(0, 6) + "Z";
  };

  const entryHash = async (e) => {
    const view = { seq: e.seq, org: e.org, time: ledgerTime(e.time), kind: e.kind, actor: e.actor, prev_hash: e.prev_hash };
    if (e.refs && Object.keys(e.refs).length) view.refs = e.refs;
    if (e.attrs && Object.keys(e.attrs).length) view.attrs = e.attrs;
    if (e.payload_hash) view.payload_hash = e.payload_hash;
    return sha256(concat(enc.encode("herald.ledger.entry.v1"), new Uint8Array([0]), unhex(e.prev_hash), enc.encode(jcs(view))));
  };

  // RFC 9162 §2.1.3.2: the root an audit path leads to from leaf index in a
  // tree of size (arithmetic, not bit operators: seqs go beyond 2^32).
  const rootFromInclusion = async (index, size, leaf, path) => {
    if (index >= size) throw new Error("index beyond the tree");
    let fn = index, sn = size - 1, r = leaf;
    for (const p of path) {
      if (sn === 0) throw new Error("audit path too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat(new Uint8Array([1]), p, r));
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await sha256(concat(new Uint8Array([1]), r, p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("audit path too short");
    return r;
  };

  // A C2SP signed note: text, a blank line, "— name base64(keyhash ‖ sig)" lines.
  const verifyNote = async (note, vkeys) => {
    const cut = note.lastIndexOf("\n\n");
    if (cut < 0) throw new Error("checkpoint is not a signed note");
    const text = note.slice(0, cut + 1);
    const sigs = note.slice(cut + 2).split("\n").filter(Boolean);
    for (const vk of vkeys) {
      // name+hash+base64(key): the base64 part may itself contain "+".
      const i = vk.indexOf("+"), j = vk.indexOf("+", i + 1);
      if (i < 0 || j < 0) continue;
      const name = vk.slice(0, i), b64 = vk.slice(j + 1);
      const raw = unb64(b64);
      if (raw.length !== 33 || raw[0] !== 1) continue; // Ed25519 keys only
      const hash = (await sha256(concat(enc.encode(name + "\n"), raw))).slice(0, 4);
      const key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
      for (const line of sigs) {
        if (!line.startsWith("\u2014 " + name + " ")) continue;
        const sig = unb64(line.slice(("\u2014 " + name + " ").length));
        if (sig.length !== 68 || !equal(sig.slice(0, 4), hash)) continue;
        if (await crypto.subtle.verify({ name: "Ed25519" }, key, sig.slice(4), enc.encode(text))) {
          return { text, key: name };
        }
      }
    }
    throw new Error("the checkpoint is not signed by a published key");
  };

  const verify = async (seq) => {
    if (!window.crypto || !crypto.subtle) throw new Error("WebCrypto needs HTTPS (or localhost)");
    const pr = await fetch("/ledger/proof?seq=" + encodeURIComponent(seq), { credentials: "same-origin", headers: { Accept: "application/json" } });
    const b = await pr.json();
    if (!pr.ok) throw new Error(b.detail || b.title || "proof unavailable (" + pr.status + ")");
    const kr = await fetch("/v1/ledger/keys", { headers: { Accept: "application/json" } });
    if (!kr.ok) throw new Error("published keys unavailable (" + kr.status + ")");
    const vkeys = (await kr.json()).keys.map((k) => k.vkey);

    if (!b.entry || b.entry.seq !== b.seq) throw new Error("the bundle does not carry entry #" + seq);
    const eh = await entryHash(b.entry);
    if (hex(eh) !== b.entry_hash) throw new Error("entry #" + b.seq + " does not hash to its recorded hash: it was altered");
    const leaf = await sha256(concat(new Uint8Array([0]), eh));
    const root = await rootFromInclusion(b.seq, b.size, leaf, b.proof.map(unb64));
    const { text, key } = await verifyNote(b.checkpoint, vkeys);
    const lines = text.split("\n");
    if (Number(lines[1]) !== b.size) throw new Error("the signed checkpoint is for another size");
    if (!equal(unb64(lines[2]), root)) throw new Error("the audit path does not lead to the signed root");
    return { size: b.size, key, origin: lines[0] };
  };

  document.addEventListener("click", async (ev) => {
    const btn = ev.target.closest("button.verify");
    if (!btn) return;
    const out = document.getElementById("verify-" + btn.dataset.seq);
    out.dataset.state = "busy";
    out.className = "verify-result";
    out.textContent = out.dataset.busy;
    try {
      const r = await verify(Number(btn.dataset.seq));
      out.dataset.state = "ok";
      out.className = "verify-result ok";
      out.textContent = out.dataset.ok + " (" + r.origin + ", size " + r.size + ", key " + r.key + ")";
    } catch (e) {
      out.dataset.state = "bad";
      out.className = "verify-result bad";
      out.textContent = out.dataset.bad + ": " + e.message;
    }
  });
})();
