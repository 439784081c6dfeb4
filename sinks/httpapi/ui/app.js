// Spine dashboard: plain JavaScript, no build step, no third-party code, so
// that it is served from the binary and works offline. Every piece of data
// comes from the /v1 API with the user's bearer token, and every string from
// the API is put into the page as text (createElement/textContent), never
// as markup: traits are customer-supplied.
'use strict';

(() => {
  const TOKEN_KEY = 'spine.token';
  const REFRESH_MS = 5000;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const MAX_GRAPH_NODES = 60; // beyond this a force layout is unreadable
  const LEVELS = ['anonymous', 'pseudonymous', 'registered', 'verified'];
  const STAGES = ['visitor', 'lead', 'registered', 'customer', 'loyal'];
  const PURPOSES = ['email_marketing', 'sms', 'personalization', 'analytics', 'third_party_sharing'];
  const TYPE_COLORS = {
    user_id: '#1f6feb', crm_id: '#8250df', email: '#d4a72c', phone: '#1a7f37',
    loyalty_id: '#bf3989', card_fp: '#cf222e', device_id: '#0a7ea4', anonymous_id: '#8d99a8',
  };
  const CHANNEL_COLORS = {
    web: '#1f6feb', mobile: '#8250df', iot: '#0a7ea4', pos: '#d4a72c',
    support: '#bf3989', ciam: '#1a7f37', unknown: '#8d99a8',
  };
  const LEVEL_COLORS = { anonymous: '#b6bec9', pseudonymous: '#d4a72c', registered: '#1f6feb', verified: '#1a7f37' };
  const LOG_COLORS = { merge: '#1f6feb', split: '#8250df', conflict: '#cf222e', quarantine: '#9a6700', release: '#1a7f37' };
  const fmt = new Intl.NumberFormat('en-US');
  const $ = (id) => document.getElementById(id);

  // ---- DOM helpers -------------------------------------------------------

  function append(el, kids) {
    for (const k of kids.flat()) {
      if (k === null || k === undefined || k === false) continue;
      el.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'on') for (const [ev, f] of Object.entries(v)) el.addEventListener(ev, f);
      else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? '' : v);
    }
    return append(el, kids);
  }

  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) el.setAttribute(k, v);
    }
    return append(el, kids);
  }

  // A native SVG tooltip: no script-driven hover needed.
  const tip = (text) => s('title', {}, text);

  function num(v) {
    return typeof v === 'number' && Number.isFinite(v) ? fmt.format(v) : '–';
  }

  function short(v, n) {
    v = String(v);
    return v.length > n ? v.slice(0, n - 1) + '…' : v;
  }

  function when(t) {
    if (!t || t.startsWith('0001-')) return '–';
    const d = new Date(t);
    return Number.isNaN(d.getTime()) ? String(t) : d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  }

  function money(currency, amount) {
    const n = Number(amount);
    try {
      return new Intl.NumberFormat('en-US', { style: 'currency', currency }).format(n);
    } catch {
      return `${amount} ${currency}`;
    }
  }

  // ---- API ---------------------------------------------------------------

  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
    describe() {
      return this.status ? `${this.message} (HTTP ${this.status})` : this.message;
    }
  }

  async function api(method, path, body) {
    const token = sessionStorage.getItem(TOKEN_KEY) || '';
    const opts = { method, cache: 'no-store', headers: { Authorization: 'Bearer ' + token, Accept: 'application/json' } };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new APIError(0, 'Spine is unreachable: ' + e.message);
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { /* not JSON: keep the status text */ }
    }
    if (!res.ok) {
      throw new APIError(res.status, (data && data.error) || res.statusText || 'request failed');
    }
    return data;
  }

  // ---- login -------------------------------------------------------------

  let timer = null;

  function showLogin(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(timer);
    $('login').hidden = false;
    $('signout').hidden = true;
    $('status-source').hidden = true;
    $('status-time').textContent = '';
    $('login-error').textContent = message || '';
    $('token').value = '';
    $('token').focus();
  }

  async function login(ev) {
    ev.preventDefault();
    const token = $('token').value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('login-submit').disabled = true;
    try {
      // The dashboard call doubles as the token check: 401 and 403 say
      // all there is to say, and 501 only means no KPI source.
      await api('GET', '/v1/dashboard');
    } catch (e) {
      if (e.status === 401 || e.status === 403) {
        $('login-submit').disabled = false;
        showLogin(e.describe());
        return;
      }
    }
    $('login-submit').disabled = false;
    $('login').hidden = true;
    $('signout').hidden = false;
    refresh();
  }

  // ---- overview ----------------------------------------------------------

  async function refresh() {
    clearTimeout(timer);
    if (!sessionStorage.getItem(TOKEN_KEY)) return;
    if (!document.hidden) {
      try {
        renderDashboard(await api('GET', '/v1/dashboard'));
      } catch (e) {
        if (e.status === 401) {
          showLogin(e.describe());
          return;
        }
        renderUnavailable(e);
      }
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  function setNote(text, cls) {
    const n = $('note');
    n.hidden = !text;
    n.className = 'note' + (cls ? ' ' + cls : '');
    n.textContent = text || '';
  }

  function setSource(label, cls) {
    const b = $('status-source');
    b.hidden = false;
    b.className = 'badge ' + cls;
    b.textContent = label;
  }

  function renderUnavailable(e) {
    const off = e.status === 501;
    setSource(off ? 'no KPI source' : 'error', 'off');
    setNote(off
      ? 'ClickHouse off: this Spine server has no source for dashboard figures (no ClickHouse sink, and the engine does not provide KPIs). Customer search and the identity graph still work.'
      : 'Could not load the dashboard: ' + e.describe(), 'off');
    $('status-time').textContent = 'checked ' + new Date().toLocaleTimeString('en-GB');
    for (const k of ['events', 'profiles', 'merges', 'conflicts', 'quarantined', 'dlq']) $('kpi-' + k).textContent = '–';
    for (const el of document.querySelectorAll('.panel .chart')) {
      el.replaceChildren(h('p', { class: 'empty' }, 'not available'));
    }
  }

  let lastDoc = null;
  let emptyText = 'no data yet';

  function renderDashboard(d) {
    lastDoc = d;
    const src = d.source === 'clickhouse' ? 'clickhouse' : 'engine';
    // The engine keeps no history or money per channel: an empty panel
    // there means "needs ClickHouse", not "nothing happened".
    emptyText = src === 'engine' ? 'needs ClickHouse: not tracked by the engine' : 'no data yet';
    setSource(src === 'clickhouse' ? 'source: ClickHouse' : 'source: engine · ClickHouse off', src);
    setNote(src === 'engine'
      ? 'ClickHouse off: these figures come from the engine\'s own state, so panels it does not track stay empty and history starts at the engine\'s start.'
      : '');
    $('status-time').textContent = 'updated ' + (d.generated_at ? new Date(d.generated_at).toLocaleTimeString('en-GB') : '–');
    const t = d.totals || {};
    for (const k of ['events', 'profiles', 'merges', 'conflicts', 'quarantined', 'dlq']) $('kpi-' + k).textContent = num(t[k]);
    chart('events_per_channel', eventsChart(d.events_per_channel));
    chart('identity_levels', barChart(order(d.identity_levels, 'level', LEVELS).map((r) => ({
      label: r.level, value: r.profiles, color: LEVEL_COLORS[r.level],
    }))));
    chart('lifecycle_funnel', funnelChart(order(d.lifecycle_funnel, 'stage', STAGES)));
    chart('revenue_by_channel', barChart((d.revenue_by_channel || []).map((r) => ({
      label: `${r.channel} · ${r.currency}`, value: Number(r.amount), text: money(r.currency, r.amount),
      color: CHANNEL_COLORS[r.channel],
    }))));
    chart('identity_log', barChart((d.identity_log || []).map((r) => ({
      label: r.type, value: r.count, color: LOG_COLORS[r.type],
    }))));
    chart('consent_rates', consentChart(order(d.consent_rates, 'purpose', PURPOSES)));
    chart('dlq', barChart((d.dlq || []).map((r) => ({
      label: `${r.channel} · ${r.reason}`, value: r.count, color: '#cf222e',
    })), 'no dead letters'));
  }

  function chart(key, node) {
    $('chart-' + key).replaceChildren(node);
  }

  // order sorts rows by a known order of their key, unknown keys last.
  function order(rows, key, known) {
    const rank = (v) => { const i = known.indexOf(v); return i < 0 ? known.length : i; };
    return [...(rows || [])].sort((a, b) => rank(a[key]) - rank(b[key]));
  }

  function empty(text) {
    return h('p', { class: 'empty' }, text || emptyText);
  }

  // Horizontal bars: one row per item, value at the end of the bar.
  function barChart(rows, emptyText) {
    rows = rows.filter((r) => Number.isFinite(r.value));
    if (!rows.length) return empty(emptyText);
    const W = 300, row = 30, labelW = 112, valueW = 70;
    const max = Math.max(...rows.map((r) => r.value), 1);
    const g = s('svg', { viewBox: `0 0 ${W} ${rows.length * row}`, role: 'img' });
    rows.forEach((r, i) => {
      const y = i * row;
      const w = Math.max(2, (W - labelW - valueW) * (r.value / max));
      const text = r.text || num(r.value);
      g.append(
        s('text', { x: 0, y: y + 19 }, short(r.label, 19), tip(r.label)),
        s('rect', { x: labelW, y: y + 7, width: w, height: 16, rx: 3, fill: r.color || '#1f6feb' }, tip(`${r.label}: ${text}`)),
        s('text', { x: labelW + w + 5, y: y + 19, class: 'value' }, text),
      );
    });
    return g;
  }

  // Stacked columns of events per time bucket, one colour per channel.
  function eventsChart(rows) {
    rows = rows || [];
    if (!rows.length) return empty();
    const buckets = [...new Set(rows.map((r) => r.bucket))].sort();
    const totals = {};
    for (const r of rows) totals[r.channel] = (totals[r.channel] || 0) + r.events;
    const channels = Object.keys(totals).sort((a, b) => totals[b] - totals[a]);
    const by = {};
    for (const r of rows) (by[r.bucket] ||= {})[r.channel] = r.events;
    const sums = buckets.map((b) => channels.reduce((a, c) => a + (by[b][c] || 0), 0));
    const max = niceMax(Math.max(...sums, 1));
    const W = 620, H = 220, L = 46, B = 20, T = 24;
    const plotW = W - L - 8, plotH = H - T - B;
    const step = plotW / buckets.length;
    const bw = Math.max(2, Math.min(48, step * 0.75));
    const g = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
    // legend
    let lx = L;
    for (const c of channels) {
      g.append(s('rect', { x: lx, y: 4, width: 10, height: 10, rx: 2, fill: CHANNEL_COLORS[c] || '#8d99a8' }),
        s('text', { x: lx + 14, y: 13 }, `${c} ${fmt.format(totals[c])}`));
      lx += 24 + 7 * (c.length + String(fmt.format(totals[c])).length);
    }
    for (let i = 0; i <= 4; i++) {
      const y = T + plotH - (plotH * i) / 4;
      g.append(s('line', { x1: L, x2: W - 8, y1: y, y2: y, class: 'axis' }),
        s('text', { x: L - 6, y: y + 4, 'text-anchor': 'end' }, compact((max * i) / 4)));
    }
    const span = buckets.length > 1 ? Date.parse(buckets.at(-1)) - Date.parse(buckets[0]) : 0;
    const labelEvery = Math.ceil(buckets.length / 8);
    buckets.forEach((b, i) => {
      const x = L + i * step + (step - bw) / 2;
      let y = T + plotH;
      for (const c of channels) {
        const v = by[b][c] || 0;
        if (!v) continue;
        const hgt = (plotH * v) / max;
        y -= hgt;
        g.append(s('rect', { x, y, width: bw, height: hgt, fill: CHANNEL_COLORS[c] || '#8d99a8' },
          tip(`${bucketLabel(b, span)} · ${c}: ${fmt.format(v)}`)));
      }
      if (i % labelEvery === 0) {
        g.append(s('text', { x: x + bw / 2, y: H - 5, 'text-anchor': 'middle' }, bucketLabel(b, span)));
      }
    });
    return g;
  }

  function bucketLabel(b, span) {
    const d = new Date(b);
    if (Number.isNaN(d.getTime())) return String(b);
    const iso = d.toISOString();
    return span && span <= 2 * 86400e3 ? iso.slice(11, 16) : iso.slice(5, 10);
  }

  function niceMax(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function compact(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(v % 1e6 ? 1 : 0) + 'M';
    if (v >= 1e3) return (v / 1e3).toFixed(v % 1e3 ? 1 : 0) + 'k';
    return String(Math.round(v));
  }

  // The funnel: bars centred and narrowing, each with the share of the
  // first stage and the median time the step from the previous stage took
  // (the nurturing time the design asks dashboards to show).
  function funnelChart(rows) {
    if (!rows.length) return empty();
    const W = 300, row = 44;
    const first = rows[0].profiles || 1;
    const max = Math.max(...rows.map((r) => r.profiles || 0), 1);
    const g = s('svg', { viewBox: `0 0 ${W} ${rows.length * row}`, role: 'img' });
    rows.forEach((r, i) => {
      const y = i * row;
      const w = Math.max(4, 150 * ((r.profiles || 0) / max));
      const pct = i === 0 ? '' : ` · ${Math.round((100 * (r.profiles || 0)) / first)}%`;
      const med = typeof r.median_hours_to_step === 'number' && i > 0 ? `median ${hours(r.median_hours_to_step)} after ${rows[i - 1].stage}` : '';
      g.append(
        s('rect', { x: 75 - w / 2 + 75, y: y + 4, width: w, height: 18, rx: 3, fill: '#1f6feb', opacity: 1 - i * 0.13 },
          tip(`${r.stage}: ${num(r.profiles)} profiles`)),
        s('text', { x: 0, y: y + 17 }, r.stage),
        s('text', { x: 232, y: y + 17, class: 'value' }, num(r.profiles) + pct),
        s('text', { x: 0, y: y + 36, class: 'sub' }, med),
      );
    });
    return g;
  }

  function hours(x) {
    if (x < 1) return `${Math.round(x * 60)} min`;
    if (x < 48) return `${x.toFixed(1)} h`;
    return `${(x / 24).toFixed(1)} d`;
  }

  // Consent: one 100% bar per purpose, granted against withdrawn.
  function consentChart(rows) {
    if (!rows.length) return empty();
    const W = 300, row = 36, barX = 0, barW = 300;
    const g = s('svg', { viewBox: `0 0 ${W} ${rows.length * row}`, role: 'img' });
    rows.forEach((r, i) => {
      const y = i * row;
      const all = (r.granted || 0) + (r.withdrawn || 0);
      const gw = all ? (barW * r.granted) / all : 0;
      const rate = all ? Math.round((100 * r.granted) / all) + '% granted' : 'no answers';
      g.append(
        s('text', { x: 0, y: y + 11 }, r.purpose.replaceAll('_', ' ')),
        s('text', { x: W, y: y + 11, 'text-anchor': 'end', class: 'sub' }, `${rate} · ${num(r.granted)} / ${num(r.withdrawn)}`),
        s('rect', { x: barX, y: y + 16, width: barW, height: 10, rx: 3, fill: all ? '#cf222e' : '#e1e5eb' },
          tip(`${r.purpose}: ${num(r.withdrawn)} withdrawn`)),
        s('rect', { x: barX, y: y + 16, width: gw, height: 10, rx: 3, fill: '#1a7f37' },
          tip(`${r.purpose}: ${num(r.granted)} granted`)),
      );
    });
    return g;
  }

  // ---- customer ----------------------------------------------------------

  let current = null; // {type, value}: the identifier last searched

  function showView(name) {
    for (const v of ['overview', 'customer']) {
      $('view-' + v).hidden = v !== name;
      $('tab-' + v).classList.toggle('active', v === name);
    }
  }

  async function search(ev) {
    if (ev) ev.preventDefault();
    const type = $('search-type').value;
    const value = $('search-value').value.trim();
    if (!value) return;
    current = { type, value };
    showView('customer');
    await loadCustomer();
  }

  async function loadCustomer(message) {
    const { type, value } = current;
    $('customer-empty').hidden = true;
    const err = $('customer-error');
    err.hidden = true;
    let p;
    try {
      p = await api('GET', `/v1/profiles?type=${encodeURIComponent(type)}&value=${encodeURIComponent(value)}`);
    } catch (e) {
      $('customer').hidden = true;
      if (e.status === 401) return showLogin(e.describe());
      err.hidden = false;
      err.textContent = e.status === 404 ? `No customer holds this ${type}.` : 'Search failed: ' + e.describe();
      return;
    }
    renderProfile(p);
    $('customer').hidden = false;
    await loadGraph(p.profile_id, message);
  }

  function renderProfile(p) {
    const c = p.computed || {};
    const events = Object.values(c.events_by_channel || {}).reduce((a, b) => a + b, 0);
    const spend = Object.entries(c.total_spend || {});
    const level = p.identity_level || 'anonymous';
    const figure = (id, value, label) => h('div', { class: 'figure' }, h('b', { id }, value), h('span', {}, label));
    const traits = Object.entries(p.traits || {}).sort(([a], [b]) => a.localeCompare(b));
    const consent = p.consent || {};
    $('profile').replaceChildren(
      h('div', { class: 'profile-head' },
        h('span', { class: 'mono', id: 'p-id' }, p.profile_id),
        h('span', { class: 'badge lvl-' + level, id: 'p-level' }, level),
        h('span', { class: 'badge', id: 'p-stage' }, c.lifecycle_stage || '–')),
      p.merged_from && p.merged_from.length
        ? h('p', { class: 'muted' }, `merged from ${p.merged_from.length} profile${p.merged_from.length > 1 ? 's' : ''}`) : null,
      h('div', { class: 'figures' },
        figure('p-orders', num(c.order_count), 'orders'),
        figure('p-events', num(events), 'events'),
        spendFigure(spend),
        figure('p-channels', num((c.channels || []).length), 'channels'),
        figure('p-tickets', num(c.tickets_opened), 'tickets'),
        figure('p-csat', c.avg_csat ? c.avg_csat.toFixed(1) : '–', 'avg CSAT')),
      h('h3', {}, 'Activity'),
      h('table', { class: 'kv' },
        kv('first seen', when(c.first_seen)), kv('last seen', when(c.last_seen)),
        kv('last channel', c.last_channel || '–'),
        kv('events by channel', Object.entries(c.events_by_channel || {}).sort((a, b) => b[1] - a[1])
          .map(([ch, n]) => `${ch} ${fmt.format(n)}`).join(', ') || '–'),
        kv('refunds', `${num(c.refund_count)}${Object.keys(c.refund_total || {}).length ? ' · ' + Object.entries(c.refund_total).map(([cur, v]) => money(cur, v)).join(' + ') : ''}`),
        kv('devices', num(c.devices)),
        lifecycleRows(c.lifecycle)),
      h('h3', {}, 'Traits'),
      traits.length ? h('table', { class: 'kv', id: 'p-traits' }, traits.map(([k, v]) => kv(k, typeof v === 'object' ? JSON.stringify(v) : String(v))))
        : h('p', { class: 'muted' }, 'none'),
      h('h3', {}, 'Consent'),
      h('table', { class: 'kv', id: 'p-consent' }, PURPOSES.map((pu) => {
        const st = consent[pu];
        return kv(pu.replaceAll('_', ' '), st
          ? h('span', {}, h('span', { class: st.value ? 'on' : 'offc' }, st.value ? 'granted' : 'withdrawn'),
            h('span', { class: 'muted' }, ` · ${st.source} · ${when(st.time)}`))
          : h('span', { class: 'muted' }, 'not given'));
      })),
    );
  }

  // spendFigure lists each currency on its own line: money is never
  // converted, so there is no single total to show.
  function spendFigure(spend) {
    const b = h('b', { id: 'p-spend', class: spend.length > 1 ? 'multi' : null });
    if (!spend.length) b.textContent = '–';
    spend.sort(([a], [c]) => a.localeCompare(c)).forEach(([cur, v], i) => append(b, [i ? h('br') : null, money(cur, v)]));
    return h('div', { class: 'figure' }, b, h('span', {}, 'total spend'));
  }

  function kv(k, v) {
    return h('tr', {}, h('td', {}, k), h('td', {}, v));
  }

  function lifecycleRows(lc) {
    if (!lc) return null;
    return STAGES.filter((st) => lc[st]).map((st) => kv('became ' + st, when(lc[st])));
  }

  async function loadGraph(id, message) {
    const msg = $('graph-message');
    msg.hidden = !message;
    msg.className = 'message';
    msg.textContent = message || '';
    let g;
    try {
      g = await api('GET', `/v1/profiles/${encodeURIComponent(id)}/graph`);
    } catch (e) {
      $('graph').replaceChildren(h('p', { class: 'muted' },
        e.status === 501 ? 'This engine does not serve identity graphs.' : 'Could not load the graph: ' + e.describe()));
      for (const t of ['links', 'candidates', 'conflicts']) $(t).replaceChildren();
      return;
    }
    renderGraph(g);
  }

  function flash(text, isError) {
    const msg = $('graph-message');
    msg.hidden = false;
    msg.className = 'message' + (isError ? ' error' : '');
    msg.textContent = text;
  }

  const idKey = (i) => i.type + '\u0000' + i.value;

  function renderGraph(g) {
    const ids = g.identifiers || [];
    const links = g.links || [];
    const shown = ids.slice(0, MAX_GRAPH_NODES);
    const index = new Map(shown.map((n, i) => [idKey(n), i]));
    const edges = links.map((l) => ({ l, a: index.get(idKey(l.a)), b: index.get(idKey(l.b)) }))
      .filter((e) => e.a !== undefined && e.b !== undefined);
    const W = 760, H = 390;
    const pos = layout(shown.length, edges, W, H);
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'identity graph' });
    for (const e of edges) {
      const [p, q] = [pos[e.a], pos[e.b]];
      const trust = e.l.evidence && e.l.evidence.trust || 'observed';
      const ch = e.l.evidence && e.l.evidence.channel || '';
      svg.append(s('line', { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: 'edge ' + trust },
        tip(`${trust} · ${ch} · ${when(e.l.evidence && e.l.evidence.time)}`)));
      // Trust labels help up to a few dozen edges; beyond, colour and dash
      // style (legend) carry it, and the tooltip has the rest.
      if (edges.length <= 40) {
        svg.append(s('text', { x: (p.x + q.x) / 2, y: (p.y + q.y) / 2 - 3, 'text-anchor': 'middle', class: 'edge-label' }, trust));
      }
    }
    shown.forEach((n, i) => {
      const p = pos[i];
      svg.append(s('g', { class: 'node' + (n.quarantined ? ' quarantined' : ''), 'data-type': n.type },
        s('circle', { cx: p.x, cy: p.y, r: 9, fill: TYPE_COLORS[n.type] || '#8d99a8' }),
        s('text', { x: p.x, y: p.y + 21, 'text-anchor': 'middle' }, short(n.value, 24)),
        tip(`${n.type}: ${n.value}\ntrust ${n.trust}, first seen ${when(n.first_seen)}${n.quarantined ? '\nquarantined' : ''}`)));
    });
    if (ids.length > shown.length) {
      svg.append(s('text', { x: 8, y: H - 8, class: 'sub' }, `showing ${shown.length} of ${ids.length} identifiers`));
    }
    $('graph').replaceChildren(svg);
    const types = [...new Set(shown.map((n) => n.type))];
    $('graph-legend').replaceChildren(...types.map((t) => h('span', {}, legendSwatch(TYPE_COLORS[t]), t)),
      h('span', { class: 'muted' }, 'links: verified ━ asserted ─ observed ┄'));

    $('links-count').textContent = `(${links.length})`;
    $('links').replaceChildren(...(links.length ? links.map((l) => h('tr', {},
      h('td', {}, idText(l.a), ' — ', idText(l.b)),
      h('td', {}, (l.evidence && l.evidence.trust) || '', h('br'), h('span', { class: 'muted' }, (l.evidence && l.evidence.channel) || '')),
      h('td', { class: 'actions' }, twoStep('Unlink', 'Confirm unlink', () => pairCommand('DELETE', l, 'Link removed'))),
    )) : [h('tr', {}, h('td', { class: 'muted' }, 'no links: a single identifier'))]));

    const cands = g.candidates || [];
    $('candidates').replaceChildren(...(cands.length ? cands.map((c) => h('tr', {},
      h('td', {}, idText(c.a), ' — ', idText(c.b), h('br'), h('span', { class: 'muted' }, `${c.reason || ''} · confidence ${c.confidence}`)),
      h('td', { class: 'actions' }, twoStep('Confirm', 'Really link', () => pairCommand('POST', c, 'Link confirmed'))),
    )) : [h('tr', {}, h('td', { class: 'muted' }, 'none'))]));

    const conflicts = g.conflicts || [];
    $('conflicts').replaceChildren(...(conflicts.length ? conflicts.map((c) => h('tr', {},
      h('td', {}, c.identifier ? idText(c.identifier) : c.type, h('br'),
        h('span', { class: 'muted' }, `${c.reason || c.type}${c.others && c.others.length ? ' · with ' + c.others.join(', ') : ''}`)),
    )) : [h('tr', {}, h('td', { class: 'muted' }, 'none'))]));
  }

  function legendSwatch(color) {
    const i = h('i');
    i.style.background = color || '#8d99a8'; // CSSOM: allowed by the CSP, unlike a style attribute
    return i;
  }

  function idText(i) {
    const span = h('span', { title: `${i.type}: ${i.value}` }, legendSwatch(TYPE_COLORS[i.type]), short(i.value, 30));
    return span;
  }

  // twoStep is a button that asks for a second click within 4 s before
  // acting: unlinking can split a customer in two, so one stray click must
  // not do it, and an in-page confirmation (unlike confirm()) keeps the
  // page scriptable by tests.
  function twoStep(label, confirmLabel, action) {
    let armed = null;
    const b = h('button', { type: 'button', class: 'small secondary', 'data-action': label.toLowerCase() }, label);
    b.addEventListener('click', async () => {
      if (!armed) {
        b.textContent = confirmLabel;
        b.className = 'small danger';
        armed = setTimeout(() => { armed = null; b.textContent = label; b.className = 'small secondary'; }, 4000);
        return;
      }
      clearTimeout(armed);
      armed = null;
      b.disabled = true;
      await action();
      b.disabled = false;
      b.textContent = label;
      b.className = 'small secondary';
    });
    return b;
  }

  async function pairCommand(method, pair, done) {
    const body = { a: { type: pair.a.type, value: pair.a.value }, b: { type: pair.b.type, value: pair.b.value } };
    try {
      await api(method, '/v1/links', body);
    } catch (e) {
      if (e.status === 401) return showLogin(e.describe());
      flash((method === 'DELETE' ? 'Could not unlink: ' : 'Could not link: ') + e.describe(), true);
      return;
    }
    // An unlink may split the profile: search again by the same
    // identifier to show whichever profile now holds it.
    await loadCustomer(done);
  }

  // layout places nodes with a small force simulation (repulsion between
  // all nodes, springs along links, a pull to the centre). It starts from a
  // circle, not random points, so the same graph always looks the same.
  function layout(n, edges, W, H) {
    const pos = [];
    for (let i = 0; i < n; i++) {
      const a = (2 * Math.PI * i) / Math.max(n, 1);
      pos.push({ x: W / 2 + (W / 3) * Math.cos(a), y: H / 2 + (H / 3) * Math.sin(a), dx: 0, dy: 0 });
    }
    if (n === 1) return [{ x: W / 2, y: H / 2 }];
    const k = Math.sqrt((W * H) / Math.max(n, 1)) * 0.7;
    let temp = W / 6;
    for (let it = 0; it < 400; it++) {
      for (const p of pos) { p.dx = 0; p.dy = 0; }
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          let dx = pos[i].x - pos[j].x, dy = pos[i].y - pos[j].y;
          const d2 = Math.max(dx * dx + dy * dy, 0.01);
          const f = (k * k) / d2;
          dx *= f; dy *= f;
          pos[i].dx += dx; pos[i].dy += dy; pos[j].dx -= dx; pos[j].dy -= dy;
        }
      }
      for (const e of edges) {
        const p = pos[e.a], q = pos[e.b];
        const dx = p.x - q.x, dy = p.y - q.y;
        const d = Math.max(Math.sqrt(dx * dx + dy * dy), 0.01);
        const f = d / k;
        p.dx -= dx * f; p.dy -= dy * f; q.dx += dx * f; q.dy += dy * f;
      }
      for (const p of pos) {
        p.dx += (W / 2 - p.x) * 0.05;
        p.dy += (H / 2 - p.y) * 0.05;
        const d = Math.max(Math.sqrt(p.dx * p.dx + p.dy * p.dy), 0.01);
        p.x += (p.dx / d) * Math.min(d, temp);
        p.y += (p.dy / d) * Math.min(d, temp);
      }
      temp = Math.max(temp * 0.98, 1);
    }
    // Turn the layout so that its long axis lies along the wide box (the
    // principal axis of the points), then fit it in, leaving room for
    // labels. Identity graphs are often chains (cookie - account - email -
    // card ...), which would otherwise sit diagonally in a corner.
    const cx = pos.reduce((a, p) => a + p.x, 0) / n, cy = pos.reduce((a, p) => a + p.y, 0) / n;
    let sxx = 0, syy = 0, sxy = 0;
    for (const p of pos) {
      sxx += (p.x - cx) ** 2; syy += (p.y - cy) ** 2; sxy += (p.x - cx) * (p.y - cy);
    }
    const th = -0.5 * Math.atan2(2 * sxy, sxx - syy);
    for (const p of pos) {
      const x = p.x - cx, y = p.y - cy;
      p.x = x * Math.cos(th) - y * Math.sin(th);
      p.y = x * Math.sin(th) + y * Math.cos(th);
    }
    const xs = pos.map((p) => p.x), ys = pos.map((p) => p.y);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const sx = (W - 160) / Math.max(x1 - x0, 1), sy = (H - 70) / Math.max(y1 - y0, 1);
    const sc = Math.min(sx, sy, 3);
    const ox = (W - (x1 - x0) * sc) / 2, oy = (H - (y1 - y0) * sc) / 2 - 8;
    return pos.map((p) => ({ x: ox + (p.x - x0) * sc, y: oy + (p.y - y0) * sc }));
  }

  // ---- start -------------------------------------------------------------

  function start() {
    $('login-form').addEventListener('submit', login);
    $('search').addEventListener('submit', search);
    $('signout').addEventListener('click', () => showLogin(''));
    for (const b of document.querySelectorAll('.tab')) b.addEventListener('click', () => showView(b.dataset.view));
    document.addEventListener('visibilitychange', () => { if (!document.hidden && sessionStorage.getItem(TOKEN_KEY)) refresh(); });
    if (sessionStorage.getItem(TOKEN_KEY)) {
      $('signout').hidden = false;
      refresh();
    } else {
      showLogin('');
    }
  }

  start();
  // Exposed for tests and the console: the last dashboard document.
  window.spineDashboard = () => lastDoc;
})();
